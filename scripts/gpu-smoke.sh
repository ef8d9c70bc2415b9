#!/usr/bin/env bash
# The fine-tune, end to end on a real GPU, without a download: a tiny Phi-3 (4 layers, hidden 256, random
# weights, Phi-3's real tokenizer from the vocabulary llama.cpp ships) trained for a few hundred steps by the
# job bundle `invagent train --runner bundle` writes (train.py, merge, llama.cpp's converter, verify).
#
#   scripts/gpu-smoke.sh prepare [DIR]      here (node, llama.cpp source): the bundle, the vocabulary, the job
#   scripts/gpu-smoke.sh run [DIR] [OUT]    on the GPU machine (python3 with torch, transformers, peft, …):
#                                           builds the checkpoint, runs the bundle, writes OUT/report.json
#   scripts/gpu-smoke.sh import [DIR] RESULTS   here: `invagent train --resume JOB --results RESULTS/job`
#                                           fetches, checks (token ids in llama.cpp), quantizes, registers
#
# DIR defaults to .invagent/gpu-smoke; OUT to $OUT (the device runner's output folder) or DIR/out. Sized to
# finish in a few minutes on one H100 (most of it Python imports); the report says what happened.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ACTION=${1:-}
DIR=${2:-$ROOT/.invagent/gpu-smoke}
# Where the checkpoint is built on the GPU machine: the bundle's config names this folder as baseModel.
# "phi-3-mini" in the name lets invagent measure lengths with the Phi-3 vocabulary it ships.
BASE=/tmp/invagent-gpu-smoke/phi-3-mini-tiny

prepare() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  rm -rf "$DIR/jobs" "$DIR/data"
  mkdir -p "$DIR/data"
  # Real playbook examples, trimmed: 160 to train on (20 steps an epoch at batch 8), 24 held out.
  head -n 160 "$ROOT/datasets/playbook.jsonl" >"$DIR/data/train.jsonl"
  head -n 24 "$ROOT/datasets/eval.jsonl" >"$DIR/data/eval.jsonl"
  cat >"$DIR/smoke.yaml" <<YAML
baseModel: $BASE
seed: 7
lora:
  r: 64
  alpha: 128
  dropout: 0
  # lm_head too: the base is random, so the output layer must learn as well
  targetModules: [qkv_proj, o_proj, gate_up_proj, down_proj, lm_head]
training:
  epochs: 15
  learningRate: 0.002
  maxLength: 2048
  batchSize: 8
  gradientAccumulationSteps: 1
  warmupSteps: 10
  loggingSteps: 10
  evalSteps: 50
  saveSteps: 100
  gradientCheckpointing: false
quantization:
  load4bit: false
runtime:
  install: host
  minFreeVramGiB: 4
  minFreeDiskGiB: 2
quant: Q8_0
YAML
  (cd "$ROOT" && node bin/run.js train --runner bundle --dataset "$DIR/data/train.jsonl" --eval "$DIR/data/eval.jsonl" \
    --config "$DIR/smoke.yaml" --name tiny-phi3-smoke --jobs-dir "$DIR/jobs" --json) >"$DIR/bundle.json"
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(r.jobId)' "$DIR/bundle.json" >"$DIR/job-id"
  # The vocabulary the checkpoint's tokenizer is written from (taken out of node-llama-cpp's llama.cpp source).
  (cd "$ROOT" && node --input-type=module -e '
    const {bundledVocab} = await import("./dist/src/llama/vocab.js")
    const {copyFileSync} = await import("node:fs")
    copyFileSync(await bundledVocab("phi-3"), process.argv[1])' "$DIR/ggml-vocab-phi-3.gguf")
  echo "prepared job $(cat "$DIR/job-id") in $DIR"
}

run() {
  local out=${1:-${OUT:-$DIR/out}} job started
  DIR=$(cd "$DIR" && pwd)
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  job=$(cat "$DIR/job-id")
  started=$(date +%s)
  python3 --version
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  rm -rf "$BASE" "$out/job"
  python3 "$ROOT/scripts/tiny_phi3.py" "$BASE" --vocab "$DIR/ggml-vocab-phi-3.gguf" --weights --layers 4 --hidden 256
  # The bundle unpacked and checked as the printed commands say; run.sh's output is its log.
  mkdir -p "$out/job"
  tar -xzf "$DIR/jobs/$job/bundle.tar.gz" -C "$out/job"
  (cd "$out/job" && sha256sum --check --quiet SHA256SUMS)
  local code=0
  (cd "$out/job" && bash run.sh >run.log 2>&1) || code=$?
  tail -n 25 "$out/job/run.log"
  # The job folder comes back without what is only needed on the host (the merged weights, checkpoints).
  rm -rf "$out/job/out/merged" "$out/job/out/checkpoint" "$out/job/.venv" "$out/job/llama.cpp"
  python3 "$ROOT/scripts/gpu_smoke_report.py" "$out/job" "$code" "$(($(date +%s) - started))" >"$out/report.json"
  cat "$out/report.json"
  return "$code"
}

import_results() {
  local results=${1:?the folder run wrote (holding job/)}
  DIR=$(cd "$DIR" && pwd)
  (cd "$ROOT" && node bin/run.js train --resume "$(cat "$DIR/job-id")" --results "$results/job" --jobs-dir "$DIR/jobs" \
    --models-dir "$DIR/models" --adapters-dir "$DIR/adapters" --json)
}

case "$ACTION" in
  prepare) prepare ;;
  run) run "${3:-}" ;;
  import) import_results "${3:-}" ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 64
    ;;
esac
