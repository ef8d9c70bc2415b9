# The trainer's commands, called by run.sh (which sets PY, the Python with the job's packages).
# Each must exit non-zero on failure; what it prints lands in run.log.

check_env() { "$PY" train.py check-env; }

train() { "$PY" train.py train; }

merge() { "$PY" train.py merge; }

# llama.cpp's converter from the same source as the llama-server that will serve the model.
# The GGUF's general.name comes from the merge stage (out/model-name.txt), not from the folder ("Merged"):
# llama.cpp reads Phi-3's whitespace rule off that name.
convert() {
  local name=""
  rm -f out/model.gguf.partial
  if [ -f out/model-name.txt ]; then name=$(head -n 1 out/model-name.txt); fi
  "$PY" llama.cpp/convert_hf_to_gguf.py out/merged --outtype "$OUTTYPE" ${name:+--model-name "$name"} --outfile out/model.gguf.partial &&
    mv out/model.gguf.partial out/model.gguf
}
