#!/bin/bash
# export_gguf.sh - end-to-end checks of `lathe export`: a LoRA run and a full run on a tiny
# random llama with a trained tokenizer, exported as PEFT, merged, GGUF in every dtype (with
# the check against the source and an Ollama Modelfile) and as a GGUF LoRA adapter; exports
# recorded in the store; bad input (output exists, unknown run, no checkpoint, adapter of a
# full run, unsupported architecture) refused with no file left behind.
# usage: bash export_gguf.sh /path/to/lathe /path/to/tests/data
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

ws=$tmp/ws
L() { "$lathe" "$@" --workspace "$ws" --device cpu --threads 1; }

words=(the cat sat on a mat dog ran far away quick brown fox jumps over lazy river)
RANDOM=7
for ((i = 0; i < 40; i++)); do
    q="" a=""
    for ((j = 0; j < 3 + RANDOM % 4; j++)); do q="$q ${words[RANDOM % 17]}"; done
    for ((j = 0; j < 2 + RANDOM % 5; j++)); do a="$a ${words[RANDOM % 17]}"; done
    printf '{"instruction": "say%s", "output": "%s"}\n' "$q" "${a# }"
done >"$tmp/chat.jsonl"
"$lathe" tokenizer train --vocab 300 --out "$tmp/m" "$tmp/chat.jsonl" >/dev/null 2>&1
"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 300 \
    --seq 64 --seed 3 "$tmp/m" >/dev/null
L data import "$tmp/chat.jsonl" --name chat >/dev/null
L data split chat --val 0.2 --test 0 >/dev/null
check "fixture: model and dataset" test -s "$tmp/m/tokenizer.json"

run_cfg() { # method extra
    cat <<JSON
{"model": "$tmp/m", "dataset": "chat", "method": "$1", $2 "seq_len": 64, "batch_size": 4,
 "epochs": 2, "optimizer": {"lr": 0.01}, "checkpoint": {"every": 4}, "seed": 11}
JSON
}
run_cfg lora '"lora": {"r": 4, "alpha": 8, "rslora": true},' >"$tmp/lora.json"
run_cfg full '' >"$tmp/full.json"
L train "$tmp/lora.json" >"$tmp/t1.out" 2>&1
check "lora run trains" test $? -eq 0
L train "$tmp/full.json" >"$tmp/t2.out" 2>&1
check "full run trains" test $? -eq 0

out=$tmp/out
mkdir -p "$out"
# GGUF in every dtype, checked against the trained model
for dt in f32 f16 bf16 q8_0; do
    L export 1 --format gguf --dtype $dt "$out/m_$dt.gguf" >"$tmp/e_$dt.out" 2>&1
    check "gguf $dt exports and passes its check" test $? -eq 0
    check "gguf $dt: logits within tolerance" grep -q "max logit error .*: ok" "$tmp/e_$dt.out"
    check "gguf $dt: end-of-turn id matches" grep -q "end-of-turn id .*: ok" "$tmp/e_$dt.out"
    check "gguf $dt: Modelfile beside it" test -s "$out/m_$dt.Modelfile"
done
check "f32 reply identical to the trained model's" grep -q "identical" "$tmp/e_f32.out"
check "GGUF magic" test "$(head -c 4 "$out/m_f32.gguf")" = "GGUF"
check "q8_0 smaller than f32" test "$(stat -c %s "$out/m_q8_0.gguf")" -lt "$(stat -c %s "$out/m_f32.gguf")"
check "Modelfile FROM" grep -q '^FROM ./m_f32.gguf$' "$out/m_f32.Modelfile"
check "Modelfile ChatML template" grep -q '<|im_start|>{{ .Role }}' "$out/m_f32.Modelfile"
check "Modelfile stop token" grep -q '^PARAMETER stop "<|im_end|>"$' "$out/m_f32.Modelfile"
sha=$(sha256sum "$out/m_f32.gguf" | cut -c1-64)
check "recorded sha256 printed" grep -q "$sha" "$tmp/e_f32.out"
n=$(sqlite3 "$ws/lathe.db" "SELECT COUNT(*) FROM export_files WHERE sha256='$sha'" 2>/dev/null || echo skip)
[ "$n" = skip ] || check "export recorded in the store with its sha256" test "$n" = 1

# the GGUF is a model source for lathe itself
L generate --model "$out/m_f32.gguf" --prompt-ids 5,17,42 --max-tokens 4 >"$tmp/g.out" 2>&1
check "lathe generate reads the GGUF" test $? -eq 0
# text prompts: the tokenizer is rebuilt in memory from the file's metadata
L generate --model "$out/m_f32.gguf" --prompt "Hello world" --max-tokens 4 --temperature 0 \
    >"$tmp/gt.out" 2>&1
check "lathe generate --prompt on the GGUF (tokenizer from its metadata)" test $? -eq 0

# model info describes a GGUF file from its metadata
"$lathe" model info "$out/m_q8_0.gguf" >"$tmp/i.out" 2>&1
check "model info reads a GGUF model" test $? -eq 0
check "model info: file and shape" grep -q "GGUF v3, model" "$tmp/i.out"
check "model info: shape" grep -q "dim 32, 2 layers, 4 heads (2 kv" "$tmp/i.out"
check "model info: dtypes" grep -q "^dtype .*Q8_0" "$tmp/i.out"
check "model info: chat template" grep -q "^chat template  chatml" "$tmp/i.out"
"$lathe" model info "$out/m_q8_0.gguf" --json >"$tmp/i.json" 2>&1
check "model info --json: vocab" grep -q '"vocab_size":.300' "$tmp/i.json"
printf 'GGUF\3\0\0\0' >"$tmp/trunc.gguf"
"$lathe" model info "$tmp/trunc.gguf" >"$tmp/i.out" 2>&1
check "model info: truncated GGUF refused" test $? -eq 1
check "model info: message names the file" grep -q "trunc.gguf" "$tmp/i.out"

# LoRA adapter as GGUF, PEFT and merged folders
L export 1 --format gguf-lora "$out/adapter.gguf" >"$tmp/l.out" 2>&1
check "gguf-lora exports" test $? -eq 0
check "gguf-lora Modelfile has ADAPTER" grep -q '^ADAPTER ./adapter.gguf$' "$out/adapter.Modelfile"
"$lathe" model info "$out/adapter.gguf" >"$tmp/i.out" 2>&1
# rsLoRA: llama.cpp scales by alpha / r, so alpha 8 is written as 8 * sqrt(4)
check "model info reads a GGUF adapter" grep -q "rank 4, alpha 16," "$tmp/i.out"
L export 1 --format peft "$out/peft" >/dev/null 2>&1
check "peft exports" test -s "$out/peft/adapter_config.json"
L export 2 --format merged "$out/merged" >/dev/null 2>&1
check "merged exports" test -s "$out/merged/model.safetensors"
L export 2 --format gguf --checkpoint best "$out/full.gguf" >"$tmp/f.out" 2>&1
check "full run gguf (best checkpoint)" test $? -eq 0
L export --model "$tmp/m" --format gguf --dtype q8_0 "$out/base.gguf" >"$tmp/b.out" 2>&1
check "plain model folder exports" test $? -eq 0
L export --model "$tmp/m" --adapter "$out/peft" --format gguf-lora "$out/a2.gguf" >/dev/null 2>&1
check "plain folder + PEFT adapter as gguf-lora" test $? -eq 0
check "same adapter bytes from run and folder" cmp -s "$out/adapter.gguf" "$out/a2.gguf"

# a SentencePiece-style vocabulary (byte fallback) without tokenizer_config.json
"$lathe" model init --arch llama --dim 32 --layers 1 --heads 4 --kv-heads 2 --vocab 640 \
    --seq 64 "$tmp/sp" >/dev/null
cp "$data/tok/sp/tokenizer.json" "$tmp/sp/"
L export --model "$tmp/sp" --format gguf "$out/sp.gguf" >"$tmp/sp.out" 2>&1
check "SentencePiece-style vocabulary exports and checks" test $? -eq 0

# bad input
L export 1 --format gguf "$out/m_f32.gguf" >"$tmp/x.out" 2>&1
check "existing output refused" test $? -eq 1
check "existing output: message" grep -q "already exists (use --force" "$tmp/x.out"
L export 1 --format gguf --force "$out/m_f32.gguf" >/dev/null 2>&1
check "--force replaces" test $? -eq 0
L export 9 --format gguf "$out/n.gguf" >"$tmp/x.out" 2>&1
check "unknown run refused" test $? -eq 1 -a ! -e "$out/n.gguf"
L export 2 --format gguf-lora "$out/n.gguf" >"$tmp/x.out" 2>&1
check "adapter of a full run refused" grep -q "only LoRA runs" "$tmp/x.out"
check "no file left" test ! -e "$out/n.gguf"
L export 1 --format gguf --checkpoint 999 "$out/n.gguf" >"$tmp/x.out" 2>&1
check "missing checkpoint refused" grep -q "no 999 checkpoint" "$tmp/x.out"
L export 1 --format gguf --dtype q4 "$out/n.gguf" >/dev/null 2>&1
check "bad dtype is usage" test $? -eq 2
cat >"$tmp/nock.json" <<JSON
{"model": "$tmp/m", "dataset": "chat", "method": "full", "seq_len": 64, "batch_size": 4,
 "epochs": 1, "max_steps": 1, "seed": 1}
JSON
mkdir -p "$tmp/falcon"
printf '{"model_type": "falcon", "hidden_size": 32}' >"$tmp/falcon/config.json"
L export --model "$tmp/falcon" --format gguf "$out/n.gguf" >"$tmp/x.out" 2>&1
check "unsupported architecture refused" grep -q "falcon" "$tmp/x.out"
check "no partial file" test -z "$(ls "$out" | grep -e '^n\.' -e 'tmp' -e 'stage')"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
