#!/bin/bash
# eval_workbench.sh - end-to-end checks of `lathe eval`: a tiny model fine-tuned on a small
# synthetic task ("repeat WORD N" -> "WORD N") scores a higher exact match than its base
# zero-shot and 2-shot baselines; its perplexity equals exp(validation loss) from the
# training engine on the same split; one row at a time (--batch 1) gives the same outputs and
# loss as batched evaluation; show/compare/export; bad input fails before any work.
# usage: bash eval_workbench.sh /path/to/lathe /path/to/tests/data
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
num() { # the N-th (0-based) "KEY":number in FILE: num N KEY FILE
    tr '{' '\n' <"$3" | grep -o "\"$2\":[-0-9.e+]*" | sed -n "$(($1 + 1))p" | cut -d: -f2
}

check "eval --help" "$lathe" eval --help >/dev/null
"$lathe" eval --data x >/dev/null 2>&1
check "no model is a usage error" test $? -eq 2
"$lathe" eval --model m --data x --baselines kshot:0 >/dev/null 2>&1
check "bad --baselines is a usage error" test $? -eq 2
"$lathe" eval --model m --data x --em bogus >/dev/null 2>&1
check "bad --em is a usage error" test $? -eq 2

words=(red blue green cat dog sun moon tree fish bird)
for ((i = 0; i < 60; i++)); do
    printf '{"instruction": "repeat %s %d", "output": "%s %d"}\n' "${words[i % 10]}" $((i % 7)) \
        "${words[i % 10]}" $((i % 7))
done >"$tmp/task.jsonl"
for ((i = 0; i < 8; i++)); do printf '{"text": "the %s sat by the %s"}\n' "${words[i]}" \
    "${words[9 - i]}"; done >"$tmp/general.jsonl"
"$lathe" tokenizer train --vocab 300 --out "$tmp/m" "$tmp/task.jsonl" >/dev/null 2>&1
"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 300 \
    --seq 128 --seed 3 "$tmp/m" >/dev/null
mkdir -p "$tmp/other" && cp "$tmp/m"/tok* "$tmp/other/"
"$lathe" model init --arch llama --dim 16 --layers 2 --heads 2 --kv-heads 1 --vocab 300 \
    --seq 64 --seed 3 "$tmp/other" >/dev/null
L data import "$tmp/task.jsonl" --name task >/dev/null
L data import "$tmp/general.jsonl" --name general >/dev/null
L data split task --val 0 --test 0.2 >/dev/null
L data split general --val 0 --test 0.5 >/dev/null
check "fixture: model and dataset" test -s "$tmp/m/tokenizer.json"

# bad input, before any work
L eval --device cpu --model "$tmp/m" --data nope >/dev/null 2>"$tmp/err"
check "unknown dataset fails" test $? -eq 1
check "error names the dataset" grep -q "nope" "$tmp/err"
L eval --device cpu --model "$tmp/m" --data task --split dev >/dev/null 2>"$tmp/err"
check "missing split fails" test $? -eq 1
check "error names the split" grep -q "split 'dev'" "$tmp/err"
L eval --device cpu --model "$tmp/m" --data general >/dev/null 2>"$tmp/err"
check "dataset without references fails" grep -q "need references" "$tmp/err"

cat >"$tmp/full.json" <<EOF
{"model": "$tmp/m", "dataset": "task", "method": "full", "seq_len": 64, "batch_size": 8,
 "epochs": 40, "optimizer": {"lr": 0.01}, "eval": {"split": "test"}, "seed": 1}
EOF
L train --device cpu --threads 1 "$tmp/full.json" >"$tmp/train.out" 2>&1
check "training the fixture run" test $? -eq 0

L eval --device cpu --model "$tmp/other" --data task --run 1 >/dev/null 2>"$tmp/err"
check "a run of another base model fails" test $? -eq 1
check "error says different base model" grep -q "different base model" "$tmp/err"

L eval --device cpu --threads 1 --model "$tmp/m" --data task --baselines zero,kshot:2 --run 1 \
    --general general --max-new-tokens 8 --samples 0 --json >"$tmp/e.json" 2>"$tmp/progress"
check "eval exits 0" test $? -eq 0
check "progress lines" grep -q "12/12 rows" "$tmp/progress"
em0=$(num 0 exact_match "$tmp/e.json")
em1=$(num 1 exact_match "$tmp/e.json")
em2=$(num 2 exact_match "$tmp/e.json")
echo "exact match: base zero-shot $em0, base 2-shot $em1, fine-tuned $em2"
check "fine-tuned beats zero-shot" awk -v a="$em2" -v b="$em0" 'BEGIN{exit !(a > b)}'
check "fine-tuned beats 2-shot" awk -v a="$em2" -v b="$em1" 'BEGIN{exit !(a > b)}'
check "shots were used" grep -q '"shots_used":2' "$tmp/e.json"
check "decoding recorded" grep -q '"decoding":{"strategy":"greedy","max_new_tokens":8' "$tmp/e.json"
check "forgetting check reported" grep -q '"forgetting":{"dataset":"general"' "$tmp/e.json"
loss=$(num 2 loss "$tmp/e.json")
val=$(L runs show 1 --json | tr -d '\t ' | sed -n 's/^"val_loss":\([-0-9.e+]*\),*$/\1/p' | head -1)
echo "run 1: eval loss $loss, training val_loss $val"
check "eval loss equals the trainer's validation loss" \
    awk -v a="$loss" -v b="$val" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(b > 0 && d <= 1e-3*b)}'

L eval show 3 >"$tmp/show.md"
check "show prints a markdown table" grep -q "^| 3 | run 1 |" "$tmp/show.md"
check "show prints samples side by side" grep -q "^\[run 1\] em 1" "$tmp/show.md"
L eval compare 1 2 3 --format csv >"$tmp/c.csv"
check "compare as CSV" test "$(grep -c '^[0-9]*,"' "$tmp/c.csv")" -eq 3
L eval compare --runs 1 --format json >"$tmp/c.json"
check "compare by run" grep -q '"eval":3' "$tmp/c.json"
L eval compare 1 3 --worst --samples 2 >"$tmp/w.md"
check "worst rows first" grep -q "row" "$tmp/w.md"
L eval show 99 >/dev/null 2>&1
check "show of an unknown eval fails" test $? -eq 1

# one row at a time (--batch 1) gives the same outputs and loss as the default batch of 8
L eval --device cpu --threads 1 --model "$tmp/m" --data task --run 1 --baselines none \
    --batch 1 --max-new-tokens 8 --samples 0 --json >"$tmp/e1.json" 2>/dev/null
check "batch 1: same exact match" test "$(num 0 exact_match "$tmp/e1.json")" = "$em2"
check "batch 1: same loss" awk -v a="$(num 0 loss "$tmp/e1.json")" -v b="$loss" \
    'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 1e-6*b)}'
# the output layer a few rows at a time (chunks end inside examples): the same loss
LATHE_LOGITS_CHUNK_ROWS=3 L eval --device cpu --threads 1 --model "$tmp/m" --data task \
    --run 1 --baselines none --max-new-tokens 8 --samples 0 --json >"$tmp/e3.json" 2>/dev/null
check "logits in chunks of 3 rows: same loss" awk -v a="$(num 0 loss "$tmp/e3.json")" \
    -v b="$loss" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 1e-6*b)}'
outputs() { L eval show "$1" --format json --samples 1000 | tr '{' '\n' | grep -o '"output":"[^"]*"'; }
check "every row's output compared" test "$(outputs 3 | wc -l)" -eq 12
check "batch 1: the same generated text on every row" \
    cmp -s <(outputs 3) <(outputs "$(sed -n 's/^\[{"eval":\([0-9]*\).*/\1/p' "$tmp/e1.json")")

# a LoRA run evaluated two ways: from its checkpoint (--run) and from the PEFT adapter the run
# exported (--adapter), after the base zero-shot baseline (system 0); the same weights must give the same loss and the same outputs
cat >"$tmp/lora.json" <<EOF
{"model": "$tmp/m", "dataset": "task", "method": "lora", "lora": {"r": 4, "alpha": 8,
 "target_modules": "all-linear"}, "seq_len": 64, "batch_size": 8, "epochs": 4,
 "optimizer": {"lr": 0.01}, "eval": {"split": "test"}, "seed": 2}
EOF
L train --device cpu --threads 1 "$tmp/lora.json" >"$tmp/train2.out" 2>&1
check "training a LoRA run" test $? -eq 0
check "the LoRA run exported its adapter" test -s "$ws/runs/2/adapter/adapter_model.safetensors"
L eval --device cpu --threads 1 --model "$tmp/m" --data task --run 2 \
    --adapter "$ws/runs/2/adapter" --max-new-tokens 8 --samples 0 --json >"$tmp/a.json" 2>"$tmp/err"
check "eval of a run and its adapter exits 0" test $? -eq 0
la=$(num 1 loss "$tmp/a.json")
lb=$(num 2 loss "$tmp/a.json")
ea=$(num 1 exact_match "$tmp/a.json")
eb=$(num 2 exact_match "$tmp/a.json")
echo "LoRA run 2: loss from checkpoint $la, from adapter $lb; exact match $ea, $eb"
check "adapter loss equals the run's" \
    awk -v a="$la" -v b="$lb" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(a > 0 && d <= 1e-5*a)}'
check "adapter exact match equals the run's" test "$ea" = "$eb"
L eval --device cpu --model "$tmp/other" --data task --adapter "$ws/runs/2/adapter" \
    >/dev/null 2>"$tmp/err"
check "an adapter for another base model fails" test $? -ne 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
