#!/bin/bash
# eval_mc.sh - multiple-choice data end to end: import (auto-detected, bad rows with reasons),
# export back to the multiple-choice layout, training on the rows (question with lettered
# choices as the prompt, the correct choice as the reply), and `lathe eval` scoring acc and
# acc_norm from each choice's log-likelihood: a tiny model fine-tuned on a small synthetic
# task ("which one is a colour?") beats its zero-shot and 2-shot baselines; per-row samples
# with per-choice log-probabilities; batched and one-row-at-a-time evaluation agree.
# usage: bash eval_mc.sh /path/to/lathe /path/to/tests/data
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

# the committed fixture: every layout and every kind of bad row
L data import "$data/eval/mc_mixed.jsonl" --name fixture --json >"$tmp/imp.json"
check "fixture detected as multiple choice" grep -q '"format":"multiple_choice"' "$tmp/imp.json"
check "fixture: 8 good rows" grep -q '"rows":8' "$tmp/imp.json"
L data issues fixture >"$tmp/issues"
check "fewer than 2 choices" grep -q ":7: error: .*has 1 choice, expected at least 2" "$tmp/issues"
check "empty choice" grep -q ":8: error: .*choice 2 of 'choices' is empty" "$tmp/issues"
check "answer out of range" grep -q ":9: error: .*is 4, out of range" "$tmp/issues"
check "duplicate choices" grep -q ":10: error: .*choices 1 and 3 of 'choices' are identical" \
    "$tmp/issues"
L data inspect fixture --json >"$tmp/inspect.json"
check "inspect: choices and answer positions" grep -q \
    '"multiple_choice":{"rows":8,"choices":{"2":2,"3":3,"4":3},"answer_position":{"A":1,"B":5,"C":2}}' \
    "$tmp/inspect.json"
L data export fixture "$tmp/back.jsonl" --format multiple_choice >/dev/null
check "export as multiple choice" grep -qx \
    '{"question":"Which animal is a mammal?","choices":\["shark","whale","trout","eel"\],"answer":1}' \
    "$tmp/back.jsonl"
L data import "$tmp/back.jsonl" --name back >/dev/null
L data export back "$tmp/back2.jsonl" --format multiple_choice >/dev/null
check "export and import round trip" cmp -s "$tmp/back.jsonl" "$tmp/back2.jsonl"
L data import "$data/eval/mc_mixed.jsonl" --name forced --format mc >/dev/null
check "--format mc" test $? -eq 0

# a synthetic task: which of three words is a colour (the colour moves between A, B and C)
colours=(red blue green yellow)
animals=(cat dog fish bird)
things=(tree sun moon car)
for ((i = 0; i < 72; i++)); do
    c=${colours[i % 4]} a=${animals[(i / 4) % 4]} t=${things[(i / 2) % 4]}
    case $((i % 3)) in
    0) ch="\"$c\", \"$a\", \"$t\"" ;;
    1) ch="\"$a\", \"$c\", \"$t\"" ;;
    2) ch="\"$t\", \"$a\", \"$c\"" ;;
    esac
    printf '{"question": "which one is a colour?", "choices": [%s], "answer": "%s"}\n' "$ch" "$c"
done >"$tmp/task.jsonl"
"$lathe" tokenizer train --vocab 300 --out "$tmp/m" "$tmp/task.jsonl" >/dev/null 2>&1
"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 300 \
    --seq 256 --seed 5 "$tmp/m" >/dev/null
L data import "$tmp/task.jsonl" --name task >/dev/null
L data split task --val 0 --test 0.25 --seed 3 >/dev/null
check "fixture: model and dataset" test -s "$tmp/m/tokenizer.json"

cat >"$tmp/full.json" <<EOF
{"model": "$tmp/m", "dataset": "task", "method": "full", "seq_len": 64, "batch_size": 8,
 "epochs": 30, "optimizer": {"lr": 0.01}, "eval": {"split": "test"}, "seed": 1}
EOF
L train --device cpu --threads 1 "$tmp/full.json" >"$tmp/train.out" 2>&1
check "training on multiple-choice rows" test $? -eq 0

L eval --device cpu --threads 1 --model "$tmp/m" --data task --baselines zero,kshot:2 --run 1 \
    --samples 0 --json >"$tmp/e.json" 2>"$tmp/progress"
check "eval exits 0" test $? -eq 0
check "progress lines" grep -q "18/18 rows" "$tmp/progress"
a0=$(num 0 acc "$tmp/e.json")
a1=$(num 1 acc "$tmp/e.json")
a2=$(num 2 acc "$tmp/e.json")
n2=$(num 2 acc_norm "$tmp/e.json")
echo "acc: base zero-shot $a0, base 2-shot $a1, fine-tuned $a2 (acc_norm $n2)"
check "fine-tuned acc beats zero-shot" awk -v a="$a2" -v b="$a0" 'BEGIN{exit !(a > b)}'
check "fine-tuned acc beats 2-shot" awk -v a="$a2" -v b="$a1" 'BEGIN{exit !(a > b)}'
check "fine-tuned acc_norm above chance" awk -v a="$n2" 'BEGIN{exit !(a > 0.5)}'
check "shots were used" grep -q '"shots_used":2' "$tmp/e.json"
check "scoring recorded" grep -q '"scoring":{"method":"loglikelihood"' "$tmp/e.json"
check "no generation metrics" test "$(grep -c exact_match "$tmp/e.json")" -eq 0

L eval show 3 >"$tmp/show.md"
check "show has acc and acc_norm columns" grep -q "^| eval | system | loss | ppl | acc | acc_norm |" \
    "$tmp/show.md"
check "show names the scoring" grep -q "multiple choice scored by log-likelihood" "$tmp/show.md"
check "show prints per-choice log-probs" grep -q "^    log-probs: A.-[0-9.]* B.-[0-9.]* C.-" \
    "$tmp/show.md"
L eval show 3 --format json >"$tmp/s.json"
check "samples keep gold, prediction and log-probs" \
    grep -q '"scores":{"acc":[01],"acc_norm":[01],"pred":[0-2],"pred_norm":[0-2],"gold":[0-2],"loglik":\[' \
    "$tmp/s.json"

# one row at a time gives the same table
L eval --device cpu --threads 1 --model "$tmp/m" --data task --run 1 --baselines none --batch 1 --samples 0 \
    --json >"$tmp/e1.json" 2>/dev/null
check "batch 1: same acc" test "$(num 0 acc "$tmp/e1.json")" = "$a2"
check "batch 1: same loss" awk -v a="$(num 0 loss "$tmp/e1.json")" \
    -v b="$(num 2 loss "$tmp/e.json")" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 1e-5*a)}'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
