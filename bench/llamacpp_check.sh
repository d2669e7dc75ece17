#!/bin/bash
# llamacpp_check.sh - checks lathe's GGUF exports against a real llama.cpp build (outside CI):
# a tiny llama with a trained byte-level BPE tokenizer gets a short LoRA run; the merged model
# is exported as GGUF (f32 and q8_0), the base model as GGUF and the adapter as a GGUF LoRA;
# llama-cli must load each and generate, and llama-perplexity computes the perplexity of the
# same text for the merged model and for base + adapter (the two should agree closely, and
# f32 vs q8_0 within quantization noise).
#
# usage: LLAMA_CPP_DIR=/path/to/llama.cpp/build bash bench/llamacpp_check.sh [path/to/lathe]
#   LLAMA_CPP_DIR holds bin/llama-cli and bin/llama-perplexity (a cmake build of llama.cpp).
#   KEEP=1 keeps the scratch folder and prints its path.
set -u
lathe=${1:-./build/lathe}
bin=${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp build folder}/bin
for t in llama-cli llama-perplexity; do
    [ -x "$bin/$t" ] || { echo "no $bin/$t" >&2; exit 2; }
done
tmp=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] && echo "scratch: $tmp" || trap 'rm -rf "$tmp"' EXIT
ws=$tmp/ws
L() { "$lathe" "$@" --workspace "$ws"; }
fails=0
ok() { echo "ok:   $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# data: short instruction/answer pairs over a small vocabulary
words=(the cat sat on a mat dog ran far away quick brown fox jumps over lazy river)
RANDOM=7
for ((i = 0; i < 200; i++)); do
    q="" a=""
    for ((j = 0; j < 3 + RANDOM % 4; j++)); do q="$q ${words[RANDOM % 17]}"; done
    for ((j = 0; j < 2 + RANDOM % 6; j++)); do a="$a ${words[RANDOM % 17]}"; done
    printf '{"instruction": "say%s", "output": "%s"}\n' "$q" "${a# }"
done >"$tmp/chat.jsonl"
sed -n 's/.*"output": "\(.*\)"}/\1./p' "$tmp/chat.jsonl" | tr '\n' ' ' | fold -w 200 >"$tmp/text.txt"
"$lathe" tokenizer train --vocab 320 --out "$tmp/m" "$tmp/chat.jsonl" >/dev/null 2>&1 || exit 1
"$lathe" model init --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --vocab 320 \
    --seq 256 --seed 3 "$tmp/m" >/dev/null || exit 1
L data import "$tmp/chat.jsonl" --name chat >/dev/null && L data split chat --val 0.1 --test 0 >/dev/null
cat >"$tmp/lora.json" <<JSON
{"model": "$tmp/m", "dataset": "chat", "method": "lora", "lora": {"r": 8, "alpha": 16},
 "seq_len": 64, "batch_size": 8, "epochs": 3, "optimizer": {"lr": 0.01}, "seed": 1}
JSON
L train "$tmp/lora.json" >"$tmp/train.out" 2>&1 || { bad "lathe train"; exit 1; }

L export 1 --format gguf --dtype f32 "$tmp/merged_f32.gguf" | sed 's/^/  lathe: /'
L export 1 --format gguf --dtype q8_0 "$tmp/merged_q8_0.gguf" | sed 's/^/  lathe: /'
L export --model "$tmp/m" --format gguf --dtype f32 "$tmp/base_f32.gguf" >/dev/null
L export 1 --format gguf-lora "$tmp/adapter.gguf" >/dev/null

gen() { # name, args...
    local name=$1
    shift
    if "$bin/llama-cli" "$@" -p "say the cat" -n 16 --temp 0 -no-cnv --no-warmup \
        >"$tmp/$name.cli" 2>&1; then
        ok "llama-cli loads and generates: $name"
    else
        bad "llama-cli $name (see $tmp/$name.cli)"; tail -5 "$tmp/$name.cli"
    fi
}
gen merged_f32 -m "$tmp/merged_f32.gguf"
gen merged_q8_0 -m "$tmp/merged_q8_0.gguf"
gen base_lora -m "$tmp/base_f32.gguf" --lora "$tmp/adapter.gguf"

ppl() { # name, args... -> prints the final estimate
    "$bin/llama-perplexity" "$@" -f "$tmp/text.txt" -c 64 -b 64 >"$tmp/$1.ppl" 2>&1
    sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$tmp/$1.ppl"
}
p1=$(ppl merged_f32 -m "$tmp/merged_f32.gguf")
p2=$(ppl merged_q8_0 -m "$tmp/merged_q8_0.gguf")
p3=$(ppl base_lora -m "$tmp/base_f32.gguf" --lora "$tmp/adapter.gguf")
p4=$(ppl base -m "$tmp/base_f32.gguf")
echo "llama.cpp perplexity on $tmp/text.txt (ctx 64):"
echo "  merged f32 ${p1:-?}  merged q8_0 ${p2:-?}  base+adapter ${p3:-?}  base alone ${p4:-?}"
[ -n "$p1" ] && [ -n "$p3" ] && awk -v a="$p1" -v b="$p3" 'BEGIN{exit !(a/b < 1.01 && b/a < 1.01)}' \
    && ok "merged and base+adapter agree within 1%" || bad "merged vs base+adapter perplexity"
[ -n "$p1" ] && [ -n "$p4" ] && awk -v a="$p1" -v b="$p4" 'BEGIN{exit !(a < b)}' \
    && ok "training lowered the perplexity" || bad "trained model not better than base"
echo "lathe's own view of the run (validation loss, perplexity = exp(loss)):"
grep "val_loss" "$tmp/train.out" | tail -1 | sed 's/^/  /'
echo "$fails failures"
[ "$fails" -eq 0 ]
