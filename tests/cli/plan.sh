#!/bin/bash
# plan.sh - end-to-end checks of `lathe plan`: non-interactive answers from flags and a file,
# the saved plan and the config it writes, --json and --explain, and bad input (missing
# answers off a terminal, contradictions, unknown values, an unknown model or dataset).
# usage: bash plan.sh /path/to/lathe /path/to/tests/data
lathe=$1
data=$2
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ws="$tmp/ws"
model="$data/models/llama_gqa"

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

"$lathe" data import --workspace "$ws" --name chat "$data/datasets/alpaca_mixed.jsonl" >/dev/null 2>&1
"$lathe" data import --workspace "$ws" --name pref "$data/datasets/preference_mixed.jsonl" >/dev/null 2>&1
"$lathe" data import --workspace "$ws" --name raw "$data/datasets/text_mixed.jsonl" >/dev/null 2>&1
# --device cpu: the facts come from RAM (no Vulkan loader); --fact device=gpu plays a GPU
run() { "$lathe" plan --workspace "$ws" --model "$model" --device cpu --no-calibrate "$@" </dev/null; }

out=$(run --data chat --need style --fewshot-tried yes --fact device=gpu --memory-gb 24 \
    --out "$tmp/run.json" --explain 2>"$tmp/err")
check "plan exits 0" test $? -eq 0
check "plan chooses lora for 24 GB" grep -q "^method   lora" <<<"$out"
check "explain prints each step's reason" grep -q "because" <<<"$out"
check "plan names the few-shot step" grep -q "fewshot_tried = yes" <<<"$out"
check "plan is saved" grep -q "plan [0-9]* saved" <<<"$out"
check "config written" test -s "$tmp/run.json"
check "config has the method" grep -q '"method":[[:space:]]*"lora"' "$tmp/run.json"
check "config has grad_accum" grep -q '"grad_accum"' "$tmp/run.json"
check "tiny dataset warns about the split" grep -q "too few to hold out" <<<"$out"

out=$(run --data chat --need style --fewshot-tried yes --fact device=gpu --memory-gb 8 --json)
check "a tiny model fits LoRA on 8 GB: the estimate decides, not a threshold" \
    grep -q '"leaf":[[:space:]]*"leaf_lora"' <<<"$out"
check "json derives the fit facts" grep -q '"qlora_ckpt_fits":[[:space:]]*true' <<<"$out"
# the fit facts can be given: LoRA does not fit, with or without checkpointing: QLoRA
out=$(run --data chat --need style --fewshot-tried yes --fact device=gpu --memory-gb 8 \
    --fact lora_fits=no --fact lora_ckpt_fits=no --out "$tmp/q.json" --json)
check "json record" grep -q '"leaf":[[:space:]]*"leaf_qlora"' <<<"$out"
check "json records the path" grep -q '"path"' <<<"$out"
check "json records the facts" grep -q '"n_examples"' <<<"$out"
check "json records why the method was chosen" grep -q '"choice":.*lora_ckpt_fits = false' <<<"$out"
check "qlora: no stale warning that NF4 is missing" bash -c '! grep -q "NF4 yet" <<<"$1"' _ "$out"
check "qlora config trains qlora" grep -q '"method":[[:space:]]*"qlora"' "$tmp/q.json"
check "qlora config has its settings" grep -q '"double_quant":[[:space:]]*true' "$tmp/q.json"
check "qlora without checkpointing says nothing of it" \
    bash -c '! grep -q gradient_checkpointing "$1"' _ "$tmp/q.json"
out=$(run --data chat --need style --fewshot-tried yes --fact device=gpu --memory-gb 8 \
    --fact lora_fits=no --out "$tmp/c.json" --explain)
check "lora with checkpointing when only that fits" grep -q "^chosen   lora with gradient checkpointing" <<<"$out"
check "the config turns checkpointing on" grep -q '"gradient_checkpointing":[[:space:]]*true' "$tmp/c.json"
check "explain prints the per-method table" grep -q "^  lora+ckpt " <<<"$out"
check "explain prints the budget" grep -q "budget .* GB (device memory less" <<<"$out"

out=$("$lathe" plan --workspace "$ws" --model "$model" --device cpu --data chat --need style \
    --fewshot-tried yes </dev/null)
check "calibrated time per epoch" grep -q "per epoch" <<<"$out"
check "calibration cached in the workspace" test -s "$ws/calibration.json"

# interactive: on a terminal (script gives the command a pty) questions are asked in turn,
# the facts shown first, Enter taking a question's default
if command -v script >/dev/null; then
    out=$(printf '3\n\n' | script -qec "'$lathe' plan --workspace '$ws' --model '$model' \
        --device cpu --no-calibrate --data chat" /dev/null)
    check "interactive: facts shown before the first question" grep -q "^facts" <<<"$out"
    check "interactive: the need is asked" grep -q "What should the model gain" <<<"$out"
    check "interactive: the default is offered" grep -q "Enter = no" <<<"$out"
    check "interactive: Enter took the default (few-shot first)" grep -q "^method   fewshot" <<<"$out"
fi

echo '{"need": "knowledge"}' >"$tmp/a.json"
out=$(run --data chat --answers "$tmp/a.json")
check "answers file: rag" grep -q "^method   rag" <<<"$out"

out=$(run --data pref --need preference --fact device=gpu --memory-gb 80 --json)
check "preference pairs: dpo with room for a reference" grep -q '"method":[[:space:]]*"dpo"' <<<"$out"
out=$(run --data pref --need preference --fact device=gpu --memory-gb 80 --fact reference_fits=no --json)
check "no room for a reference: orpo" grep -q '"method":[[:space:]]*"orpo"' <<<"$out"
out=$(run --data chat --need preference)
check "no pairs: says what is missing" grep -q "chosen" <<<"$out"
out=$(run --data raw --need vocabulary --fact device=cpu --json)
check "raw text: continued pretraining on the cpu" grep -q '"objective":[[:space:]]*"pretrain"' <<<"$out"

run --data chat >/dev/null 2>"$tmp/err"
check "missing answer off a terminal exits 2" test $? -eq 2
check "missing answer names the question" grep -q "question need" "$tmp/err"
run --data chat --need style --answers "$tmp/a.json" >/dev/null 2>"$tmp/err"
check "contradictory answers exit 2" test $? -eq 2
check "contradiction named" grep -q "contradictory answers for need" "$tmp/err"
run --data chat --need everything >/dev/null 2>"$tmp/err"
check "unknown value exits 2" test $? -eq 2
check "unknown value lists the choices" grep -q "knowledge_style" "$tmp/err"
run --data chat --answer colour=blue >/dev/null 2>"$tmp/err"
check "unknown question exits 2" test $? -eq 2
"$lathe" plan --workspace "$ws" --model "$tmp/nomodel" --device cpu --data chat --need style </dev/null \
    >/dev/null 2>"$tmp/err"
check "unknown model exits 1" test $? -eq 1
check "unknown model named" grep -q "nomodel" "$tmp/err"
run --data nodata --need style >/dev/null 2>"$tmp/err"
check "unknown dataset exits 1" test $? -eq 1
check "unknown dataset named" grep -q "nodata" "$tmp/err"
run --data chat --need style --fewshot-tried yes --fact device=gpu --fact memory_gb=x \
    >/dev/null 2>"$tmp/err"
check "a non-numeric memory fact is refused, not guessed" test $? -ne 0
check "plan --help" "$lathe" plan --help >/dev/null
"$lathe" plan >/dev/null 2>&1
check "plan without --model is a usage error" test $? -eq 2

echo "$pass passed, $fail failed"
test "$fail" -eq 0
