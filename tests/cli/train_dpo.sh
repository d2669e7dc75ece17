#!/bin/bash
# train_dpo.sh - end-to-end checks of `lathe train` with the preference objectives on a tiny
# random llama: a synthetic preference set (the chosen answers use one half of the vocabulary,
# the rejected ones the other half, so the preference is learnable from the answer alone),
# DPO with LoRA and ORPO (full) to the end, reward metrics in the store with the accuracy
# ending above 0.9, the adapter exported, bad rows reported at import and at training,
# --strict, a dataset with no usable pair, and a DPO run stopped and resumed.
# usage: bash train_dpo.sh /path/to/lathe /path/to/tests/data
lathe=$1
pass=0
fail=0
tmp=$(mktemp -d)
trap '[ -n "$KEEP" ] || rm -rf "$tmp"' EXIT

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

ws=$tmp/ws
L() { "$lathe" "$@" --workspace "$ws"; }
db() { sqlite3 "$ws/lathe.db" "$1"; }

# prompts from a neutral vocabulary; chosen from GOOD, rejected from BAD
neutral=(say tell me about the a of what is why how)
good=(cat dog fox sun tree bird fish star)
bad=(rock mud dust ash rust fog gray cold)
gen() {
    local i j p c r
    RANDOM=5
    for ((i = 0; i < 72; i++)); do
        p="" c="" r=""
        for ((j = 0; j < 2 + RANDOM % 4; j++)); do p="$p ${neutral[RANDOM % 11]}"; done
        for ((j = 0; j < 2 + RANDOM % 3; j++)); do c="$c ${good[RANDOM % 8]}"; done
        for ((j = 0; j < 2 + RANDOM % 3; j++)); do r="$r ${bad[RANDOM % 8]}"; done
        printf '{"prompt": "%s", "chosen": "%s", "rejected": "%s"}\n' "${p# }" "${c# }" "${r# }"
    done
}
gen >"$tmp/pref.jsonl"
# bad rows: identical answers and a missing rejected (refused at import), a prompt longer
# than the context (reported by train)
long=$(for ((i = 0; i < 80; i++)); do printf 'tell me about the sun '; done)
{
    echo '{"prompt": "say a", "chosen": "cat dog", "rejected": "cat dog"}'
    echo '{"prompt": "say the", "chosen": "fox sun"}'
    printf '{"prompt": "%s", "chosen": "cat", "rejected": "rock"}\n' "$long"
} >>"$tmp/pref.jsonl"

# tokenizer trained on the text, a random llama with that vocabulary
gen | sed 's/"prompt"/"instruction"/; s/"chosen"/"output"/' >"$tmp/tok.jsonl"
"$lathe" tokenizer train --vocab 280 --out "$tmp/m" "$tmp/tok.jsonl" >/dev/null 2>&1
"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 280 \
    --seq 64 --seed 3 "$tmp/m" >/dev/null
check "fixture: model" test -s "$tmp/m/tokenizer.json"

L data import "$tmp/pref.jsonl" --name pref >"$tmp/import.out" 2>&1
check "import reports the two bad rows" grep -q "2 bad\|bad: 2\|2 rows rejected" "$tmp/import.out"
L data split pref --val 0.15 --test 0 >/dev/null
check "import recorded the identical pair" \
    test "$(db "select count(*) from row_issues where reason like '%identical%'")" -ge 1

cat >"$tmp/dpo.json" <<EOF
{"model": "$tmp/m", "dataset": "pref", "objective": "dpo", "dpo": {"beta": 0.1},
 "method": "lora", "lora": {"r": 8, "alpha": 16, "target_modules": "all-linear"},
 "seq_len": 64, "batch_size": 8, "grad_accum": 2, "max_steps": 40,
 "optimizer": {"lr": 0.01}, "schedule": {"type": "constant", "warmup_steps": 2},
 "eval": {"every": 10}, "checkpoint": {"every": 10, "keep_last": 2}, "seed": 4}
EOF
L train --device cpu --threads 1 "$tmp/dpo.json" >"$tmp/dpo.out" 2>"$tmp/dpo.err"
check "dpo train exits 0" test $? -eq 0
check "dpo run finished" grep -q "done: finished 40 steps" "$tmp/dpo.out"
check "the long row is reported with its row and reason" \
    grep -q "row [0-9]* (line 75): prompt ([0-9]* tokens) + chosen ([0-9]* tokens) = [0-9]* tokens, longer than the context (64); pair skipped" "$tmp/dpo.err"
check "skipped pairs are counted" grep -q "1 of [0-9]* preference pairs in the training split skipped" "$tmp/dpo.err"
check "the reference is computed before training" grep -q "reference log-probs of [0-9]* pairs" "$tmp/dpo.err"
check "bad rows recorded as run events" \
    test "$(db "select count(*) from run_events where run_id = 1 and message like '%longer than the context%'")" -ge 1
for m in loss rewards/chosen rewards/rejected rewards/margins rewards/accuracies lr grad_norm \
    tokens_per_s val_loss val_rewards/accuracies; do
    check "dpo metric $m every step or eval" \
        test "$(db "select count(*) from metrics where run_id = 1 and name = '$m'")" -ge 4
done
acc=$(db "select avg(value) from (select value from metrics where run_id = 1 and name = 'rewards/accuracies' order by step desc limit 5)")
check "dpo reward accuracy ends above 0.9 (last 5 steps: $acc)" awk "BEGIN{exit !($acc > 0.9)}"
vacc=$(db "select value from metrics where run_id = 1 and name = 'val_rewards/accuracies' order by step desc limit 1")
check "dpo validation reward accuracy above 0.9 ($vacc)" awk "BEGIN{exit !($vacc > 0.9)}"
margin=$(db "select value from metrics where run_id = 1 and name = 'rewards/margins' order by step desc limit 1")
check "dpo margin positive ($margin)" awk "BEGIN{exit !($margin > 0)}"
check "dpo exports the adapter" test -s "$ws/runs/1/adapter/adapter_config.json"
check "dpo adapter weights" test -s "$ws/runs/1/adapter/adapter_model.safetensors"

cat >"$tmp/orpo.json" <<EOF
{"model": "$tmp/m", "dataset": "pref", "objective": "orpo", "orpo": {"beta": 0.5},
 "method": "full", "seq_len": 64, "batch_size": 8, "max_steps": 40,
 "optimizer": {"lr": 0.003}, "schedule": {"type": "constant", "warmup_steps": 2},
 "eval": {"every": 20}, "seed": 4}
EOF
L train --device cpu --threads 1 "$tmp/orpo.json" >"$tmp/orpo.out" 2>"$tmp/orpo.err"
check "orpo train exits 0" test $? -eq 0
check "orpo run finished" grep -q "done: finished 40 steps" "$tmp/orpo.out"
acc=$(db "select avg(value) from (select value from metrics where run_id = 2 and name = 'rewards/accuracies' order by step desc limit 5)")
check "orpo reward accuracy ends above 0.9 (last 5 steps: $acc)" awk "BEGIN{exit !($acc > 0.9)}"
check "orpo records its nll" test "$(db "select count(*) from metrics where run_id = 2 and name = 'nll_loss'")" -ge 40

# --strict: the long row is an error naming it, and no run is left behind
L train --device cpu --threads 1 --strict "$tmp/dpo.json" >"$tmp/strict.out" 2>&1
check "--strict fails" test $? -eq 1
check "--strict names the row and reason" grep -q "line 75): prompt.*longer than the context (64) (--strict" "$tmp/strict.out"
check "--strict leaves no run" test "$(db "select count(*) from runs")" -eq 2

# a dataset without usable pairs: SFT rows (no chosen/rejected) and only over-long pairs
printf '{"instruction": "say a", "output": "cat"}\n{"instruction": "say the", "output": "dog"}\n' >"$tmp/sft.jsonl"
L data import "$tmp/sft.jsonl" --name sft >/dev/null 2>&1
sed 's/"dataset": "pref"/"dataset": "sft"/' "$tmp/dpo.json" >"$tmp/sft.json"
L train --device cpu --threads 1 "$tmp/sft.json" >"$tmp/sft.out" 2>&1
check "sft data for dpo fails" test $? -eq 1
check "sft rows reported: no chosen answer" grep -q "row 0 (line 1): has no chosen answer" "$tmp/sft.out"
check "no usable pair is a clear error" grep -q "none of the 2 samples is a usable preference pair" "$tmp/sft.out"

# full fine-tuning DPO stopped and resumed ends where the uninterrupted run ends
cat >"$tmp/full.json" <<EOF
{"model": "$tmp/m", "dataset": "pref", "objective": "dpo", "method": "full", "seq_len": 64,
 "batch_size": 8, "max_steps": 8, "optimizer": {"lr": 0.002}, "seed": 9}
EOF
L train --device cpu --threads 1 "$tmp/full.json" >/dev/null 2>&1
LATHE_TRAIN_STOP_AFTER=3 L train --device cpu --threads 1 "$tmp/full.json" >"$tmp/s.out" 2>&1
id=$(sed -n 's/^run \([0-9]*\) stopped.*/\1/p' "$tmp/s.out")
check "full dpo stops at step 3" test -n "$id"
L train --device cpu --threads 1 --resume "$id" >"$tmp/r.out" 2>&1
check "full dpo resume exits 0" test $? -eq 0
check "resume recomputes the reference from the base weights" grep -q "reference log-probs" "$tmp/r.out"
check "full dpo resumed run ends bitwise identical" \
    cmp -s "$ws/runs/$((id - 1))/checkpoints/step-8.ckpt" "$ws/runs/$id/checkpoints/step-8.ckpt"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
