#!/bin/bash
# llamacpp_check.sh - checks lathe's GGUF exports against a real llama.cpp build (outside CI).
#
# Two models:
#   bundled  assets/model exported as GGUF f32 and q8_0;
#   tiny     a tiny llama with a trained byte-level BPE tokenizer gets a short LoRA run; the
#            merged model is exported as GGUF (f32 and q8_0), the base model as GGUF f32 and
#            the adapter as a GGUF LoRA (llama.cpp's --lora).
# For each file it checks that llama.cpp loads it and generates, and prints side by side:
#   - tokenization: llama-tokenize's ids of a text against `lathe tokenizer encode`'s;
#   - perplexity: llama-perplexity's against lathe's on the same text, the same tokens and the
#     same windows (bench/llamacpp_ppl.c repeats llama-perplexity's procedure: the text
#     tokenized whole, cut into chunks of CTX tokens, the second half of each chunk scored;
#     lathe reads the very GGUF file llama.cpp is given, except for base+adapter, where
#     lathe's figure is the merged f32 file's);
#   - greedy generation of a chat reply (ChatML prompt): llama-completion's text against
#     `lathe generate --chat`'s on the source folder (the model before rounding to the GGUF
#     dtype, so q8_0 replies may differ), and whether llama.cpp stops at the end-of-turn
#     token.
#
# usage: LLAMA_CPP_DIR=/path/to/llama.cpp/build bash bench/llamacpp_check.sh [path/to/lathe]
#   LLAMA_CPP_DIR holds bin/llama-perplexity, bin/llama-tokenize and bin/llama-completion
#   (llama.cpp's plain completion tool; builds older than its split from llama-cli have only
#   bin/llama-cli, used with -no-cnv). The lathe binary's build folder must hold the static
#   libraries (pipeline/, compute/, shaders/) that bench/llamacpp_ppl.c is linked with.
#   Needs gcc and python3. KEEP=1 keeps the scratch folder and prints its path. THREADS=N
#   (2) for both sides. Never part of CI: llama.cpp is built outside the repository, e.g.
#     cmake -S llama.cpp -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF \
#       -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF
#     cmake --build build -j2 --target llama-perplexity llama-completion llama-tokenize
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
lathe=$(realpath "${1:-$root/build/lathe}")
build=$(dirname "$lathe")
bin=${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp build folder}/bin
threads=${THREADS:-2}
for t in llama-perplexity llama-tokenize; do
    [ -x "$bin/$t" ] || { echo "no $bin/$t" >&2; exit 2; }
done
if [ -x "$bin/llama-completion" ]; then
    complete=("$bin/llama-completion")
elif [ -x "$bin/llama-cli" ]; then
    complete=("$bin/llama-cli")
else
    echo "no $bin/llama-completion or $bin/llama-cli" >&2
    exit 2
fi
tmp=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] && echo "scratch: $tmp" || trap 'rm -rf "$tmp"' EXIT
ws=$tmp/ws
L() { "$lathe" "$@" --workspace "$ws" --device cpu --threads "$threads"; }
fails=0
ok() { echo "ok:   $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
echo "load: $(uptime | sed 's/.*load/load/')"

# lathe's perplexity in llama-perplexity's windows
gcc -std=c11 -O2 -I"$root/pipeline" -I"$root/compute" "$root/bench/llamacpp_ppl.c" \
    "$build/pipeline/liblathe_pipeline.a" "$build/compute/liblathe_compute.a" \
    "$build/shaders/liblathe_shaders.a" -lcjson -lopenblas -fopenmp -lm -ldl -lpthread \
    -o "$tmp/lathe_ppl" || { echo "cannot build bench/llamacpp_ppl.c against $build" >&2; exit 2; }

# ---- fixtures --------------------------------------------------------------------------
# bundled: the first 120 texts of assets/data/people_text.jsonl, one per line
/usr/bin/python3 - "$root/assets/data/people_text.jsonl" >"$tmp/people.txt" <<'PY'
import json, sys
rows = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")][:120]
sys.stdout.write("\n".join(rows) + "\n")
PY
L export --model "$root/assets/model" --format gguf --dtype f32 "$tmp/bundled_f32.gguf" >/dev/null
L export --model "$root/assets/model" --format gguf --dtype q8_0 "$tmp/bundled_q8_0.gguf" >/dev/null

# tiny: short instruction/answer pairs over a small vocabulary, a LoRA run
words=(the cat sat on a mat dog ran far away quick brown fox jumps over lazy river)
RANDOM=7
for ((i = 0; i < 200; i++)); do
    q="" a=""
    for ((j = 0; j < 3 + RANDOM % 4; j++)); do q="$q ${words[RANDOM % 17]}"; done
    for ((j = 0; j < 2 + RANDOM % 6; j++)); do a="$a ${words[RANDOM % 17]}"; done
    printf '{"instruction": "say%s", "output": "%s"}\n' "$q" "${a# }"
done >"$tmp/chat.jsonl"
sed -n 's/.*"output": "\(.*\)"}/\1./p' "$tmp/chat.jsonl" | tr '\n' ' ' | fold -w 200 >"$tmp/tiny.txt"
echo >>"$tmp/tiny.txt"
"$lathe" tokenizer train --vocab 320 --out "$tmp/m" "$tmp/chat.jsonl" >/dev/null 2>&1 || exit 1
"$lathe" model init --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --vocab 320 \
    --seq 256 --seed 3 "$tmp/m" >/dev/null || exit 1
L data import "$tmp/chat.jsonl" --name chat >/dev/null && L data split chat --val 0.1 --test 0 >/dev/null
cat >"$tmp/lora.json" <<JSON
{"model": "$tmp/m", "dataset": "chat", "method": "lora", "lora": {"r": 8, "alpha": 16},
 "seq_len": 64, "batch_size": 8, "epochs": 3, "optimizer": {"lr": 0.01}, "seed": 1}
JSON
L train "$tmp/lora.json" >"$tmp/train.out" 2>&1 || { bad "lathe train"; exit 1; }
L export 1 --format gguf --dtype f32 "$tmp/merged_f32.gguf" >/dev/null
L export 1 --format gguf --dtype q8_0 "$tmp/merged_q8_0.gguf" >/dev/null
L export --model "$tmp/m" --format gguf --dtype f32 "$tmp/base_f32.gguf" >/dev/null
L export 1 --format gguf-lora "$tmp/adapter.gguf" >/dev/null
L export 1 --format merged "$tmp/merged" >/dev/null

# ---- checks ----------------------------------------------------------------------------
ids() { tr -c '0-9' ' ' | xargs; } # any list of integers -> "1 2 3"

tokcheck() { # name, gguf, model dir, text
    "$bin/llama-tokenize" -m "$2" -f "$4" --ids --log-disable 2>/dev/null | ids >"$tmp/$1.tok.l"
    "$lathe" tokenizer encode --model "$3" --file "$4" | ids >"$tmp/$1.tok.t"
    local n
    n=$(wc -w <"$tmp/$1.tok.t")
    if [ "$n" -gt 0 ] && cmp -s "$tmp/$1.tok.l" "$tmp/$1.tok.t"; then
        ok "tokenization of $(basename "$4") ($n tokens) equal: $1"
    else
        bad "tokenization differs: $1 (llama.cpp $(wc -w <"$tmp/$1.tok.l") tokens, lathe $n)"
    fi
}
tokcheck bundled "$tmp/bundled_f32.gguf" "$root/assets/model" "$tmp/people.txt"
tokcheck tiny "$tmp/merged_f32.gguf" "$tmp/m" "$tmp/tiny.txt"

gen() { # name, model folder for lathe, prompt, llama.cpp args...
    local name=$1 lmodel=$2 prompt=$3
    shift 3
    local raw
    raw=$(printf '<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\nx' "$prompt")
    raw=${raw%x} # keeps the trailing newline that $(...) would drop
    if ! "${complete[@]}" "$@" -p "$raw" -n 48 --temp 0 -no-cnv --no-warmup -t "$threads" \
        --no-display-prompt >"$tmp/$name.gen" 2>"$tmp/$name.gen.err"; then
        bad "llama.cpp does not load or generate: $name (see $tmp/$name.gen.err)"
        tail -5 "$tmp/$name.gen.err"
        return
    fi
    local lc stopped=no
    grep -q '\[end of text\]' "$tmp/$name.gen" "$tmp/$name.gen.err" && stopped=yes
    lc=$(sed 's/ *\[end of text\]//' "$tmp/$name.gen" | tr -d '\n')
    "$lathe" generate --model "$lmodel" --chat --prompt "$prompt" --max-tokens 48 --json \
        --device cpu --threads "$threads" >"$tmp/$name.lg" 2>&1
    local lt
    lt=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"], end="")' \
        "$tmp/$name.lg" 2>/dev/null | tr -d '\n')
    ok "llama.cpp loads and generates: $name (stops at end of turn: $stopped)"
    "$bin/llama-tokenize" "${@:1:2}" -p "$raw" --ids --log-disable 2>/dev/null | ids >"$tmp/$name.pt.l"
    /usr/bin/python3 -c 'import json,sys; print(*json.load(open(sys.argv[1]))["prompt_ids"])' \
        "$tmp/$name.lg" 2>/dev/null >"$tmp/$name.pt.t"
    cmp -s "$tmp/$name.pt.l" "$tmp/$name.pt.t" && ok "chat prompt tokens equal: $name" \
        || bad "chat prompt tokens differ: $name"
    printf '        llama.cpp: %q\n        lathe:     %q\n' "$lc" "$lt"
    [ "$stopped" = yes ] || bad "llama.cpp did not stop at the end-of-turn token: $name"
    [ "$lc" = "$lt" ] && ok "greedy replies identical: $name" || echo "note: greedy replies differ: $name"
}
ask="Give the age group of the person as JSON: young (under 40), middle or senior (65 and over).

Aged 23, Nina now lives in Vienna."
gen bundled_f32 "$root/assets/model" "$ask" -m "$tmp/bundled_f32.gguf"
gen bundled_q8_0 "$root/assets/model" "$ask" -m "$tmp/bundled_q8_0.gguf"
gen merged_f32 "$tmp/merged" "say the cat sat" -m "$tmp/merged_f32.gguf"
gen merged_q8_0 "$tmp/merged" "say the cat sat" -m "$tmp/merged_q8_0.gguf"
gen base_lora "$tmp/merged" "say the cat sat" -m "$tmp/base_f32.gguf" --lora "$tmp/adapter.gguf"

ppl() { # name, ctx, text, lathe model, llama.cpp args...
    local name=$1 ctx=$2 text=$3 lmodel=$4
    shift 4
    "$bin/llama-perplexity" "$@" -f "$text" -c "$ctx" -b "$ctx" -t "$threads" \
        >"$tmp/$name.ppl" 2>&1
    "$tmp/lathe_ppl" "$lmodel" "$text" "$ctx" >"$tmp/$name.lppl" 2>&1
    local a b
    a=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$tmp/$name.ppl")
    b=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$tmp/$name.lppl")
    printf '  %-13s ctx %-4s llama.cpp %-9s lathe %-9s ratio %s   (%s)\n' "$name" "$ctx" "${a:-?}" \
        "${b:-?}" "$([ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN{printf "%.5f", a/b}')" \
        "$(sed -n 's/^lathe: //p' "$tmp/$name.lppl")"
    [ -n "$a" ] || { bad "llama-perplexity $name (see $tmp/$name.ppl)"; tail -3 "$tmp/$name.ppl"; }
    [ -n "$b" ] || { bad "lathe perplexity $name"; cat "$tmp/$name.lppl"; }
    eval "ppl_$name=\${a:-0} lppl_$name=\${b:-0}"
}
echo "perplexity on the same tokens and windows:"
ppl bundled_f32 128 "$tmp/people.txt" "$tmp/bundled_f32.gguf" -m "$tmp/bundled_f32.gguf"
ppl bundled_q8_0 128 "$tmp/people.txt" "$tmp/bundled_q8_0.gguf" -m "$tmp/bundled_q8_0.gguf"
ppl merged_f32 64 "$tmp/tiny.txt" "$tmp/merged_f32.gguf" -m "$tmp/merged_f32.gguf"
ppl merged_q8_0 64 "$tmp/tiny.txt" "$tmp/merged_q8_0.gguf" -m "$tmp/merged_q8_0.gguf"
ppl base_lora 64 "$tmp/tiny.txt" "$tmp/merged_f32.gguf" -m "$tmp/base_f32.gguf" --lora "$tmp/adapter.gguf"
ppl base 64 "$tmp/tiny.txt" "$tmp/base_f32.gguf" -m "$tmp/base_f32.gguf"
ppl merged_hf 64 "$tmp/tiny.txt" "$tmp/merged" -m "$tmp/merged_f32.gguf"

within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN{exit !(a > 0 && b > 0 && a/b < 1+t && b/a < 1+t)}'; }
# f32: the same arithmetic up to summation order; q8_0: llama.cpp also quantizes the
# activations to 8 bits in its q8_0 matmuls, lathe dequantizes the weights to F32
for n in bundled_f32 merged_f32 base; do
    p=ppl_$n q=lppl_$n
    within "${!p}" "${!q}" 0.001 && ok "$n: llama.cpp and lathe agree within 0.1%" \
        || bad "$n: llama.cpp ${!p} vs lathe ${!q}"
done
for n in bundled_q8_0 merged_q8_0; do
    p=ppl_$n q=lppl_$n
    within "${!p}" "${!q}" 0.01 && ok "$n: llama.cpp and lathe agree within 1%" \
        || bad "$n: llama.cpp ${!p} vs lathe ${!q}"
done
within "$ppl_merged_f32" "$ppl_base_lora" 0.001 && ok "merged and base+adapter agree within 0.1%" \
    || bad "merged $ppl_merged_f32 vs base+adapter $ppl_base_lora"
within "$lppl_merged_f32" "$lppl_merged_hf" 0.001 && ok "lathe: merged GGUF and merged folder agree" \
    || bad "lathe: merged GGUF $lppl_merged_f32 vs merged folder $lppl_merged_hf"
# the adapter is really applied: base+adapter moves away from the base alone (by more than
# the 0.1% within which it must equal the merged model)
within "$ppl_base_lora" "$ppl_base" 0.001 && bad "base+adapter $ppl_base_lora equals base $ppl_base" \
    || ok "the adapter changes llama.cpp's perplexity (base $ppl_base, base+adapter $ppl_base_lora)"
echo "lathe's own view of the run (validation loss, perplexity = exp(loss) on response tokens):"
grep "val_loss" "$tmp/train.out" | tail -1 | sed 's/^/  /'
echo "$fails failures"
[ "$fails" -eq 0 ]
