#!/bin/bash
# model.sh - end-to-end checks of `lathe model info|init` and `lathe generate`.
# usage: bash model.sh /path/to/lathe /path/to/tests/data
lathe=$1
data=$2
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

out=$("$lathe" model info "$data/models/llama_gqa")
check "info names the architecture" grep -q "architecture   llama" <<<"$out"
check "info counts parameters" grep -q "parameters     26784" <<<"$out"
out=$("$lathe" model info --json "$data/models/gpt2")
check "info --json" grep -q '"architecture":[[:space:]]*"gpt2"' <<<"$out"
out=$("$lathe" model info "$data/models/llama3_long")
check "info shows llama3 rope scaling" grep -q "positions      llama3 rope scaling x8 over 32" <<<"$out"
out=$("$lathe" model info "$data/models/mistral_window")
check "info shows the sliding window" grep -q "positions      sliding window 16" <<<"$out"
out=$("$lathe" model info --json "$data/models/yarn_long")
check "info --json: yarn" grep -q '"type":[[:space:]]*"yarn"' <<<"$out"
"$lathe" model info "$tmp/nothing" 2>"$tmp/err"
check "info on a missing folder exits 1" test $? -eq 1
check "info error names config.json" grep -q "config.json" "$tmp/err"
"$lathe" model info >/dev/null 2>&1
check "info without DIR is a usage error" test $? -eq 2
check "model --help" "$lathe" model info --help >/dev/null

"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 64 --seq 32 \
    --seed 5 "$tmp/m" >/dev/null
check "init exits 0" test $? -eq 0
check "init writes config.json" test -s "$tmp/m/config.json"
check "init writes weights" test -s "$tmp/m/model.safetensors"
"$lathe" model init --arch gpt2 --dim 30 --heads 4 "$tmp/bad" 2>/dev/null
check "init with dim not divisible by heads is a usage error" test $? -eq 2
"$lathe" model init --arch rwkv "$tmp/bad" 2>/dev/null
check "init with an unknown arch is a usage error" test $? -eq 2

ids=$("$lathe" generate --device cpu --model "$tmp/m" --prompt-ids 1,2,3 --max-tokens 5 2>/dev/null)
check "generate prints 5 ids" test "$(tr ',' '\n' <<<"$ids" | grep -c .)" -eq 5
want=$(sed -n 's/^greedy //p' "$data/models/gpt2/generate.txt")
got=$("$lathe" generate --device cpu --model "$data/models/gpt2" --prompt-ids 5,17,99,3,42 \
    --max-tokens 12 --no-stop 2>/dev/null)
check "greedy ids match the reference" test "$got" = "$want"
j=$("$lathe" generate --device cpu --model "$tmp/m" --prompt-ids 1,2,3 --max-tokens 4 \
    --temperature 0.9 --top-p 0.9 --seed 11 --json)
j2=$("$lathe" generate --device cpu --model "$tmp/m" --prompt-ids 1,2,3 --max-tokens 4 \
    --temperature 0.9 --top-p 0.9 --seed 11 --json)
check "generate --json has ids" grep -q '"generated_ids":\[' <<<"$j"
check "same seed, same sample" test "$(sed 's/"seconds".*//' <<<"$j")" = "$(sed 's/"seconds".*//' <<<"$j2")"
"$lathe" generate --device cpu --model "$tmp/m" --prompt-ids 1,2,999 2>"$tmp/err" >/dev/null
check "out-of-vocabulary prompt id fails" test $? -ne 0
check "error names the id" grep -q "999" "$tmp/err"
"$lathe" generate --device cpu --model "$tmp/m" --prompt "hello" 2>"$tmp/err" >/dev/null
check "--prompt without a tokenizer fails clearly" grep -q "tokenizer" "$tmp/err"
"$lathe" generate --model "$tmp/m" >/dev/null 2>&1
check "generate without a prompt is a usage error" test $? -eq 2
check "generate --help" "$lathe" generate --help >/dev/null

# text prompts through a tokenizer (the Qwen2-style byte-level BPE fixture); the model's
# vocabulary is sized from the tokenizer so that every id it produces is in range
if [ -f "$data/tok/qwen2/tokenizer.json" ]; then
    n_tok=$(grep -o '"id": *[0-9]*' "$data/tok/qwen2/tokenizer.json" | grep -o '[0-9]*$' | sort -n | tail -1)
    n_vocab=$(( (n_tok + 8) / 8 * 8 ))
    "$lathe" model init --arch llama --dim 32 --layers 1 --heads 4 --vocab "$n_vocab" --seq 64 \
        "$tmp/t" >/dev/null
    cp "$data/tok/qwen2/tokenizer.json" "$tmp/t/"
    printf '{"chat_template": "{%% for m in messages %%}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n{%% endfor %%}{%% if add_generation_prompt %%}<|im_start|>assistant\\n{%% endif %%}", "eos_token": "<|im_end|>"}' \
        >"$tmp/t/tokenizer_config.json"
    j=$("$lathe" generate --device cpu --model "$tmp/t" --prompt "hello world" --max-tokens 3 \
        --json 2>"$tmp/err")
    check "text prompt is tokenized" grep -q '"prompt_ids":\[[0-9]' <<<"$j"
    check "text prompt: decoded text in --json" grep -q '"text":' <<<"$j"
    j=$("$lathe" generate --device cpu --model "$tmp/t" --prompt "hi" --chat --max-tokens 2 \
        --json 2>"$tmp/err")
    im_start=$(printf '<|im_start|>' | "$lathe" tokenizer encode --model "$tmp/t" --no-add-special)
    check "<|im_start|> is one special token" test -n "$im_start" -a "${im_start// /}" = "$im_start"
    check "chat prompt starts with <|im_start|> ($im_start)" grep -q "\"prompt_ids\":\[$im_start," <<<"$j"
    out=$("$lathe" model info "$tmp/t")
    check "info reports the tokenizer" grep -q "tokenizer      byte-level BPE.* tokens" <<<"$out"
    check "info reports the chat template" grep -q "chat template  chatml" <<<"$out"
fi

echo "$pass passed, $fail failed"
test "$fail" -eq 0
