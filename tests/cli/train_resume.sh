#!/bin/bash
# train_resume.sh - end-to-end checks of `lathe train` and `lathe runs` on a tiny random model:
# a run to the end, config errors naming the JSON path, fit checks, SIGTERM at an arbitrary
# step and --resume ending bit-identical to an uninterrupted run, a damaged checkpoint
# refused, control requests, --detach, runs list/show.
# usage: bash train_resume.sh /path/to/lathe /path/to/tests/data
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
L() { "$lathe" "$@" --workspace "$ws"; }

# a small chat dataset, a tokenizer trained on it and a random llama with that vocabulary
python_free_data() {
    local words=(the cat sat on a mat dog ran far away quick brown fox jumps over lazy river)
    local i j q a
    RANDOM=7
    for ((i = 0; i < 48; i++)); do
        q="" a=""
        for ((j = 0; j < 3 + RANDOM % 5; j++)); do q="$q ${words[RANDOM % 17]}"; done
        for ((j = 0; j < 2 + RANDOM % 8; j++)); do a="$a ${words[RANDOM % 17]}"; done
        printf '{"instruction": "say%s", "output": "%s"}\n' "$q" "${a# }"
    done
}
python_free_data >"$tmp/chat.jsonl"
"$lathe" tokenizer train --vocab 300 --out "$tmp/m" "$tmp/chat.jsonl" >/dev/null 2>&1
"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 300 \
    --seq 64 --seed 3 "$tmp/m" >/dev/null
L data import "$tmp/chat.jsonl" --name chat >/dev/null
L data split chat --val 0.2 --test 0 >/dev/null
check "fixture: model and dataset" test -s "$tmp/m/tokenizer.json"

cat >"$tmp/full.json" <<EOF
{"model": "$tmp/m", "dataset": "chat", "method": "full", "seq_len": 64, "batch_size": 4,
 "grad_accum": 2, "epochs": 6, "optimizer": {"lr": 0.005}, "schedule": {"type": "cosine",
 "warmup_steps": 2}, "eval": {"every": 4}, "checkpoint": {"every": 3, "keep_last": 2},
 "seed": 11}
EOF

# the uninterrupted run
L train --device cpu --threads 1 "$tmp/full.json" >"$tmp/a.out" 2>&1
check "train exits 0" test $? -eq 0
check "train prints progress lines" grep -q "^step 1/" "$tmp/a.out"
check "train prints eval lines" grep -q "val_loss" "$tmp/a.out"
final=$(sed -n 's/.*finished \([0-9]*\) steps.*/\1/p' "$tmp/a.out")
check "run finished" test -n "$final"
check "final checkpoint written" test -s "$ws/runs/1/checkpoints/step-$final.ckpt"
check "keep_last + best prunes old checkpoints" test "$(ls "$ws/runs/1/checkpoints" | wc -l)" -le 3

# SIGTERM at whatever step the run has reached, then --resume: bitwise the same end
"$lathe" train --workspace "$ws" --device cpu --threads 1 "$tmp/full.json" >"$tmp/b.out" 2>&1 &
pid=$!
for ((i = 0; i < 200; i++)); do
    grep -q "^step [0-9]" "$tmp/b.out" 2>/dev/null && break
    sleep 0.01
done
kill -TERM $pid 2>/dev/null
wait $pid
st=$(L runs show 2 --json | grep -o '"status":[[:space:]]*"[a-z]*"' | head -1)
if grep -q '"stopped"' <<<"$st"; then
    check "SIGTERM stops the run with a checkpoint" ls "$ws/runs/2/checkpoints/"*.ckpt >/dev/null
    L train --device cpu --threads 1 --resume 2 >"$tmp/c.out" 2>&1
    check "resume exits 0" test $? -eq 0
    check "resume logs where it continued" grep -q "resumed from" "$tmp/c.out"
else
    # the run was already done when the signal came: still a complete run
    check "run finished before the signal" grep -q '"done"' <<<"$st"
fi
check "SIGTERM+resume ends bitwise identical" \
    cmp -s "$ws/runs/1/checkpoints/step-$final.ckpt" "$ws/runs/2/checkpoints/step-$final.ckpt"

# gradient checkpointing (with the kept layer inputs offloaded to host memory) trains the same
# bits; "auto" (the default) records its decision as a run event
sed 's/"seed": 11}/"seed": 11, "gradient_checkpointing": true, "offload_activations": true}/' \
    "$tmp/full.json" >"$tmp/ckpt.json"
L train --device cpu --threads 1 --json "$tmp/ckpt.json" >"$tmp/k.out" 2>/dev/null
kid=$(sed -n 's/.*"run_id":\([0-9]*\).*/\1/p' "$tmp/k.out")
tensors() { tail -c +449 "$1" | head -c -32; } # past the state and config hash, no checksum
check "checkpointing + offload: the same tensors, bit for bit" \
    cmp -s <(tensors "$ws/runs/1/checkpoints/step-$final.ckpt") \
    <(tensors "$ws/runs/$kid/checkpoints/step-$final.ckpt")
check "checkpointing + offload: the same state before the config hash" \
    cmp -s <(head -c 384 "$ws/runs/1/checkpoints/step-$final.ckpt") \
    <(head -c 384 "$ws/runs/$kid/checkpoints/step-$final.ckpt")
check "auto checkpointing decision is a run event" \
    bash -c "'$lathe' runs show 1 --workspace '$ws' | grep -q 'gradient checkpointing (auto): off'"

# a deterministic stop at a random step, resumed
k=$((RANDOM % (final - 1) + 1))
LATHE_TRAIN_STOP_AFTER=$k L train --device cpu --threads 1 "$tmp/full.json" >/dev/null 2>&1
check "stopped at step $k" test -s "$ws/runs/4/checkpoints/step-$k.ckpt"
L train --device cpu --threads 1 --resume 4 >/dev/null 2>&1
check "stop at step $k + resume ends bitwise identical" \
    cmp -s "$ws/runs/1/checkpoints/step-$final.ckpt" "$ws/runs/4/checkpoints/step-$final.ckpt"

# a damaged checkpoint is refused
LATHE_TRAIN_STOP_AFTER=2 L train --device cpu --threads 1 "$tmp/full.json" >/dev/null 2>&1
ck="$ws/runs/5/checkpoints/step-2.ckpt"
printf '\x55' | dd of="$ck" bs=1 seek=200 conv=notrunc 2>/dev/null
L train --device cpu --threads 1 --resume 5 >/dev/null 2>"$tmp/err"
check "damaged checkpoint: exit 1" test $? -eq 1
check "damaged checkpoint: says checksum" grep -q "checksum" "$tmp/err"

# config errors name the JSON path; unknown keys are errors
bad() { # name, json, expected text
    printf '%s' "$2" >"$tmp/bad.json"
    L train "$tmp/bad.json" >/dev/null 2>"$tmp/err"
    local rc=$?
    check "$1: exit 2" test $rc -eq 2
    check "$1: message" grep -qF -- "$3" "$tmp/err"
}
bad "negative rank" "{\"model\": \"$tmp/m\", \"dataset\": \"chat\", \"lora\": {\"r\": -1}}" \
    '$.lora.r: expected a positive integer'
bad "typo" "{\"model\": \"$tmp/m\", \"dataset\": \"chat\", \"epoch\": 2}" '$.epoch: unknown key'
bad "bad target" "{\"model\": \"$tmp/m\", \"dataset\": \"chat\", \"lora\": {\"target_modules\": [\"q_proj\", \"qq\"]}}" \
    '$.lora.target_modules[1]'
bad "not JSON" "{\"model\": " "not valid JSON"
# fit checks before training
printf '{"model": "%s", "dataset": "chat", "seq_len": 4096}' "$tmp/m" >"$tmp/long.json"
L train --device cpu "$tmp/long.json" >/dev/null 2>"$tmp/err"
check "seq_len longer than the model's context: exit 1" test $? -eq 1
check "seq_len message" grep -q '$.seq_len: 4096 is longer than the model' "$tmp/err"
printf '{"model": "%s", "dataset": "nothing"}' "$tmp/m" >"$tmp/nods.json"
L train --device cpu "$tmp/nods.json" >/dev/null 2>"$tmp/err"
check "missing dataset named" grep -q "no dataset 'nothing'" "$tmp/err"
mkdir -p "$tmp/m2" && cp "$tmp/m/config.json" "$tmp/m/model.safetensors" "$tmp/m/tokenizer.json" "$tmp/m2/"
printf '{"model": "%s", "dataset": "chat", "seq_len": 64}' "$tmp/m2" >"$tmp/notmpl.json"
L train --device cpu "$tmp/notmpl.json" >/dev/null 2>"$tmp/err"
check "chat data without a chat template is refused" grep -q '$.template' "$tmp/err"

# LoRA with packing and a file imported on the fly, control requests through the store
cat >"$tmp/lora.json" <<EOF
{"model": "$tmp/m", "dataset": {"file": "$tmp/chat.jsonl"}, "method": "lora",
 "lora": {"r": 4, "alpha": 8, "target_modules": "all-linear"}, "packing": true,
 "seq_len": 64, "batch_size": 2, "max_steps": 5, "seed": 3}
EOF
L train --device cpu --threads 1 --json "$tmp/lora.json" >"$tmp/l.out" 2>/dev/null
check "lora + packing + file dataset: done" grep -q '"status":"done","steps":5' "$tmp/l.out"
id=$(sed -n 's/.*"run_id":\([0-9]*\).*/\1/p' "$tmp/l.out")
check "lora run exports a PEFT adapter" test -s "$ws/runs/$id/adapter/adapter_config.json"
L runs stop "$id" >/dev/null 2>"$tmp/err"
check "stop on a finished run: exit 1" test $? -eq 1
check "stop on a finished run: says no process reads it" grep -q "is done.*no process" "$tmp/err"

# LoRA dropout (masks drawn on the device from the seed, the step and the micro-batch): a run
# stopped at step 3 and resumed ends bitwise identical to an uninterrupted one
cat >"$tmp/drop.json" <<EOF
{"model": "$tmp/m", "dataset": "chat", "method": "lora", "lora": {"r": 4, "alpha": 8,
 "dropout": 0.2, "target_modules": "all-linear"}, "packing": true, "seq_len": 64,
 "batch_size": 2, "grad_accum": 2, "max_steps": 5, "seed": 3}
EOF
L train --device cpu --threads 1 --json "$tmp/drop.json" >"$tmp/d1.out" 2>/dev/null
d1=$(sed -n 's/.*"run_id":\([0-9]*\).*/\1/p' "$tmp/d1.out")
LATHE_TRAIN_STOP_AFTER=3 L train --device cpu --threads 1 --json "$tmp/drop.json" \
    >"$tmp/d2.out" 2>/dev/null
d2=$(sed -n 's/.*"run_id":\([0-9]*\).*/\1/p' "$tmp/d2.out")
L train --device cpu --threads 1 --resume "$d2" >/dev/null 2>&1
check "lora dropout: stop at step 3 + resume ends bitwise identical" \
    cmp -s "$ws/runs/$d1/checkpoints/step-5.ckpt" "$ws/runs/$d2/checkpoints/step-5.ckpt"
sed 's/"dropout": 0.2,/"dropout": 0.0,/' "$tmp/drop.json" >"$tmp/nodrop.json"
L train --device cpu --threads 1 --json "$tmp/nodrop.json" >"$tmp/d3.out" 2>/dev/null
d3=$(sed -n 's/.*"run_id":\([0-9]*\).*/\1/p' "$tmp/d3.out")
differ() { ! cmp -s "$1" "$2"; }
check "lora dropout changes the training" \
    differ "$ws/runs/$d1/checkpoints/step-5.ckpt" "$ws/runs/$d3/checkpoints/step-5.ckpt"

# --detach: a run id on stdout, the log in the workspace
sed 's/"max_steps": 5/"max_steps": 400/' "$tmp/lora.json" >"$tmp/long_lora.json"
did=$(L train --device cpu --threads 1 --detach "$tmp/long_lora.json" 2>/dev/null)
check "--detach prints a run id" grep -qE '^[0-9]+$' <<<"$did"
L runs stop "$did" >/dev/null
for ((i = 0; i < 300; i++)); do
    L runs show "$did" --json | grep -q '"status":[[:space:]]*"\(stopped\|done\)"' && break
    sleep 0.1
done
check "--detach log in the workspace" test -s "$ws/runs/$did/train.log"
check "the detached run obeyed stop (or finished)" \
    bash -c "'$lathe' runs show $did --json --workspace '$ws' | grep -q '\"status\":[[:space:]]*\"\\(stopped\\|done\\)\"'"
check "stop request acknowledged as an event" \
    bash -c "'$lathe' runs show $did --workspace '$ws' | grep -q 'control\\|finished'"

out=$(L runs)
check "runs lists every run" test "$(grep -cE '^[0-9]+ ' <<<"$out")" -ge 6
check "runs show --json has checkpoints" bash -c "'$lathe' runs show 1 --json --workspace '$ws' | grep -q '\"checkpoints\"'"
check "runs show has the best val loss" bash -c "'$lathe' runs show 1 --workspace '$ws' | grep -q 'best val loss'"
L runs show 999 >/dev/null 2>&1
check "runs show of a missing run exits 1" test $? -eq 1
"$lathe" train >/dev/null 2>&1
check "train without a config is a usage error" test $? -eq 2
check "train --help" "$lathe" train --help >/dev/null
check "runs --help" "$lathe" runs --help >/dev/null

echo "$pass passed, $fail failed"
test "$fail" -eq 0
