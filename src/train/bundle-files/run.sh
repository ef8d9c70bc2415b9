#!/usr/bin/env bash
# An invagent training job: preflight → environment → train → merge → convert → verify → checksum.
# Each finished stage leaves state/<stage>.done, so running this script again (after a dropped
# connection, a reboot, or a failure that was fixed) goes on where it stopped. Progress lines
# start with "@@invagent " and hold one JSON object; state/status.json says how the last run ended.
# Settings: job.env (written by invagent); the trainer's commands: stages.sh.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
. ./job.env
. ./stages.sh
mkdir -p state out

event() { printf '@@invagent %s\n' "$1"; }
json_string() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }

exec 9>state/run.lock
if ! flock -n 9; then
  echo "run.sh: job $JOB_ID is already running here (state/run.lock is held)" >&2
  exit 75
fi
echo $$ >state/run.pid
rm -f state/status.json

# The Python the stages run with: the host's own, or a virtual environment the environment stage made.
PY="$BOOT_PYTHON"
if [ -f state/python.env ]; then . state/python.env; fi
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Training hosts have no network as a rule: nothing may try the Hugging Face Hub (and wait for it).
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
if [ -f state/gpu.env ]; then . state/gpu.env; fi

CURRENT=start
finish() { # status stage exit-code
  printf '{"status":"%s","stage":"%s","exitCode":%d,"finishedAt":"%s"}\n' "$1" "$2" "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >state/status.json.tmp
  mv state/status.json.tmp state/status.json
}
on_signal() {
  trap - TERM INT
  event "{\"event\":\"job-cancelled\",\"stage\":\"$CURRENT\"}"
  finish cancelled "$CURRENT" 143
  exit 143
}
trap on_signal TERM INT

run_stage() { # stage-name function
  local name=$1 started code
  CURRENT=$name
  if [ -e "state/$name.done" ]; then
    event "{\"event\":\"stage-skipped\",\"stage\":\"$name\"}"
    return 0
  fi
  event "{\"event\":\"stage-start\",\"stage\":\"$name\"}"
  started=$(date +%s)
  "$2"
  code=$?
  if [ "$code" -ne 0 ]; then
    event "{\"event\":\"stage-failed\",\"stage\":\"$name\",\"exitCode\":$code}"
    finish failed "$name" "$code"
    exit "$code"
  fi
  touch "state/$name.done"
  event "{\"event\":\"stage-done\",\"stage\":\"$name\",\"seconds\":$(($(date +%s) - started))}"
}

preflight_fail() { # check message
  event "{\"event\":\"preflight-failed\",\"check\":\"$1\",\"message\":$(json_string "$2")}"
  echo "preflight ($1): $2" >&2
  return 3
}

preflight() {
  local version gpus best index name total free cap free_kib
  if ! command -v "$BOOT_PYTHON" >/dev/null 2>&1; then
    preflight_fail python "$BOOT_PYTHON is not installed on this host: install Python 3.10 or later, or name another interpreter in runtime.python"
    return
  fi
  version=$("$BOOT_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>&1) || {
    preflight_fail python "$BOOT_PYTHON does not run: $version"
    return
  }
  if ! "$BOOT_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    preflight_fail python "Python $version is too old: 3.10 or later is needed (runtime.python names the interpreter)"
    return
  fi
  if [ "$INSTALL" = venv ] && ! "$BOOT_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    preflight_fail python "Python $version cannot create virtual environments: install python3-venv, or set runtime.install: host to use its own packages"
    return
  fi
  event "{\"event\":\"preflight-python\",\"version\":\"$version\"}"

  if ! command -v nvidia-smi >/dev/null 2>&1; then
    preflight_fail gpu "nvidia-smi is not installed: this host has no NVIDIA driver, and training needs a CUDA GPU"
    return
  fi
  # compute_cap is unknown to old drivers: ask without it then.
  gpus=$(nvidia-smi --query-gpu=index,name,memory.total,memory.free,compute_cap --format=csv,noheader,nounits 2>/dev/null) ||
    gpus=$(nvidia-smi --query-gpu=index,name,memory.total,memory.free --format=csv,noheader,nounits 2>&1) || {
    preflight_fail gpu "nvidia-smi fails: $gpus"
    return
  }
  # The GPU with the most free memory.
  best=$(printf '%s\n' "$gpus" | awk -F', *' 'NF >= 4 && $4 ~ /^[0-9]+$/ && ($4 + 0 > max || line == "") { max = $4 + 0; line = $1 "\t" $2 "\t" $3 "\t" $4 "\t" (NF >= 5 ? $5 : "unknown") } END { print line }')
  if [ -z "$best" ]; then
    preflight_fail gpu "nvidia-smi lists no GPU: $gpus"
    return
  fi
  IFS=$'\t' read -r index name total free cap <<<"$best"
  if [ "$free" -lt "$MIN_FREE_VRAM_MIB" ]; then
    preflight_fail gpu "GPU $index ($name) has $free MiB free of $total MiB, the job needs $MIN_FREE_VRAM_MIB MiB (runtime.minFreeVramGiB): stop what else runs on it, or use a larger GPU"
    return
  fi
  if [ "$COMPUTE_DTYPE" = bfloat16 ] && [ "$cap" != unknown ] && awk -v cap="$cap" 'BEGIN { exit !(cap + 0 < 8) }'; then
    preflight_fail gpu "GPU $index ($name) has compute capability $cap, without bfloat16: set quantization.computeDtype: float16 and merge.dtype: float16"
    return
  fi
  printf 'export CUDA_VISIBLE_DEVICES=%s\n' "$index" >state/gpu.env
  export CUDA_VISIBLE_DEVICES="$index"
  event "{\"event\":\"preflight-gpu\",\"index\":$index,\"name\":$(json_string "$name"),\"totalMiB\":$total,\"freeMiB\":$free,\"computeCapability\":$(json_string "$cap")}"

  free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
  if [ -z "$free_kib" ] || [ $((free_kib / 1024)) -lt "$MIN_FREE_DISK_MIB" ]; then
    preflight_fail disk "$((${free_kib:-0} / 1048576)) GiB free in $PWD, the job needs $((MIN_FREE_DISK_MIB / 1024)) GiB (runtime.minFreeDiskGiB): free some space, or use another --remote-dir"
    return
  fi
  event "{\"event\":\"preflight-disk\",\"freeMiB\":$((free_kib / 1024))}"
}

environment_fail() { # message
  event "{\"event\":\"error\",\"stage\":\"environment\",\"message\":$(json_string "$1")}"
  echo "environment: $1" >&2
  return 3
}

use_python() { # interpreter: the stages after this one run with it, also after a restart
  PY=$1
  printf 'PY=%q\n' "$1" >state/python.env
}

# runtime.install: host — the host's Python when its packages pass the checks; what is missing comes from
# the wheels the bundle carries (no index, no network), into a venv that still sees the host's packages.
install_missing() {
  local missing
  "$BOOT_PYTHON" train.py probe-env || return
  if [ ! -s out/missing.txt ]; then
    use_python "$BOOT_PYTHON"
    return 0
  fi
  missing=$(tr '\n' ' ' <out/missing.txt)
  if [ ! -d wheels ]; then
    environment_fail "$BOOT_PYTHON lacks ${missing% }, and the bundle carries no wheels: install them on this host, \
or set runtime.wheels to a folder of wheels for them"
    return
  fi
  if [ ! -x .venv/bin/python ]; then "$BOOT_PYTHON" -m venv --system-site-packages .venv || return; fi
  # shellcheck disable=SC2086 # one requirement per word
  .venv/bin/python -m pip install --no-index --find-links wheels --no-input $missing || {
    environment_fail "the carried wheels do not provide ${missing% } for $("$BOOT_PYTHON" --version 2>&1)"
    return
  }
  use_python "$PWD/.venv/bin/python"
}

# Whether pip's index answers: without a network, fail now instead of after pip's retries.
index_reachable() {
  "$BOOT_PYTHON" - <<'PYTHON'
import os, socket, sys
from urllib.parse import urlparse
url = urlparse(os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple")
try:
    socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=5).close()
except OSError as error:
    print("%s: %s" % (url.hostname, error))
    sys.exit(1)
PYTHON
}

# runtime.install: venv — a virtual environment with requirements.txt's exact versions.
install_venv() {
  local reason
  if [ ! -d wheels ] && ! reason=$(index_reachable); then
    environment_fail "pip cannot reach its package index ($reason): this host has no network. \
Set runtime.install: host to use its own packages, or runtime.wheels to carry wheels"
    return
  fi
  if [ ! -x .venv/bin/python ]; then "$BOOT_PYTHON" -m venv .venv || return; fi
  if [ -d wheels ]; then
    .venv/bin/python -m pip install --no-index --find-links wheels --no-input -r requirements.txt || return
  else
    .venv/bin/python -m pip install --no-input --retries 1 --timeout 30 -r requirements.txt || return
  fi
  use_python "$PWD/.venv/bin/python"
}

environment() {
  case "$INSTALL" in
    host) install_missing || return ;;
    venv) install_venv || return ;;
    *) use_python "$BOOT_PYTHON" ;;
  esac
  event "{\"event\":\"python\",\"install\":\"$INSTALL\",\"python\":$(json_string "$PY")}"
  check_env
}

verify() {
  "$BOOT_PYTHON" verify_gguf.py out/model.gguf --metrics out/metrics.json --name-file out/model-name.txt --out out/verify.json
}

checksum() {
  sha256sum out/model.gguf | cut -d ' ' -f 1 >out/model.gguf.sha256.tmp && mv out/model.gguf.sha256.tmp out/model.gguf.sha256
}

event "{\"event\":\"job-start\",\"job\":\"$JOB_ID\",\"pid\":$$}"
run_stage preflight preflight
run_stage environment environment
run_stage train train
run_stage merge merge
run_stage convert convert
run_stage verify verify
run_stage checksum checksum
CURRENT=done
finish complete done 0
event '{"event":"job-complete"}'
