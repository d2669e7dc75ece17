#!/bin/bash
# gen_ref.sh - regenerate llama_q8_0_ref.json: run test_gguf keeping its exports, then read
# the Q8_0 llama export with @huggingface/gguf (installed in a scratch folder, never here).
# usage: bash gen_ref.sh /path/to/build/tests/test_gguf
set -eu
here=$(cd "$(dirname "$0")" && pwd)
scratch=${TMPDIR:-/tmp}/lathe-ggufref
mkdir -p "$scratch"
[ -d "$scratch/node_modules/@huggingface/gguf" ] || (cd "$scratch" && npm install @huggingface/gguf >/dev/null)
dir=$(LATHE_GGUF_KEEP=1 "$1" | sed -n 's/^kept //p')
cp "$here/gguf_dump.mjs" "$scratch/"
node "$scratch/gguf_dump.mjs" "$dir/llama_Q8_0.gguf" >"$here/llama_q8_0_ref.json"
rm -rf "$dir"
