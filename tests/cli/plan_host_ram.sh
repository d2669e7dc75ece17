#!/bin/bash
# plan_host_ram.sh - the estimator's host RAM (estimate_overhead.c) against the peak resident
# set of the run the plan writes: `lathe plan` on the bundled model and a raw-text dataset
# (CPU, batch 1), then `lathe train` of the config it wrote for two steps under
# /usr/bin/time; the peak RSS must be within 15% of the plan's host_ram for the chosen method.
# usage: bash plan_host_ram.sh /path/to/lathe /path/to/tests/data
lathe=$1
model="$(cd "$(dirname "$0")/../../assets/model" && pwd)"
pass=0
fail=0
tmp=$(mktemp -d)
[ -n "$KEEP" ] || trap 'rm -rf "$tmp"' EXIT
ws="$tmp/ws"

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

if [ ! -x /usr/bin/time ]; then
    echo "SKIP: /usr/bin/time is not installed"
    exit 0
fi
# 3000 rows of about 150 words: tokenized, each keeps seq_len tokens
awk 'BEGIN { srand(7); split("the model learns a small task from many short examples and keeps its general knowledge while the adapter trains quickly on one device", w, " ");
    for (i = 0; i < 3000; i++) { s = ""; for (j = 0; j < 150; j++) s = s (j ? " " : "") w[int(rand() * 23) + 1]; printf("{\"text\": \"%s\"}\n", s) } }' \
    >"$tmp/text.jsonl"
"$lathe" data import --workspace "$ws" --name raw "$tmp/text.jsonl" >/dev/null 2>&1
check "dataset imported" test $? -eq 0
"$lathe" plan --workspace "$ws" --model "$model" --data raw --need vocabulary --device cpu \
    --threads 2 --no-calibrate --no-save --batch 1 --out "$tmp/run.json" --json \
    </dev/null >"$tmp/plan.json" 2>"$tmp/err"
check "plan exits 0" test $? -eq 0
method=$(grep -o '"estimated_as":[[:space:]]*"[a-z_0-9]*"' "$tmp/plan.json" | grep -o '"[a-z_0-9]*"$' | tr -d '"')
check "the plan trains lora on the cpu" test "$method" = lora
# host_ram_gb of the chosen method's estimate (without checkpointing): the "lora" object
est=$(awk '/"lora":[[:space:]]*\{/ { on = 1 } on && /"host_ram_gb"/ { gsub(/[^0-9.e+-]/, "", $2); print $2; exit }' \
    FS=: "$tmp/plan.json")
check "the plan records host_ram_gb ($est)" test -n "$est"
sed -i 's/^{/{"max_steps": 2, "threads": 2,/' "$tmp/run.json"
/usr/bin/time -f "%M" -o "$tmp/rss" "$lathe" train --workspace "$ws" "$tmp/run.json" \
    >"$tmp/train.out" 2>"$tmp/train.err"
check "the planned config trains" test $? -eq 0
rss_kb=$(tail -1 "$tmp/rss")
ratio=$(awk -v e="$est" -v k="$rss_kb" 'BEGIN { if (k > 0) printf "%.3f", e * 1e9 / (k * 1024) }')
echo "host RAM: estimated $est GB, measured peak RSS ${rss_kb} KiB, ratio $ratio"
if [ -n "$LATHE_TEST_SANITIZE" ]; then
    echo "SKIP: the RSS comparison (sanitizer build: shadow memory inflates the RSS)"
else
    check "host_ram within 15% of the peak RSS (ratio $ratio)" \
        awk -v r="$ratio" 'BEGIN { exit !(r >= 0.85 && r <= 1.15) }'
fi

echo "$pass passed, $fail failed"
test "$fail" -eq 0
