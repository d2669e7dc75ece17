#!/usr/bin/env bash
# train_bench.sh - training throughput of lathe's CPU backend against PyTorch on the same
# machine, threads and shapes: full fine-tuning and LoRA (r=8 on every linear layer), fp32,
# presets tiny (llama dim 256, 4 layers, vocab 4096, seq 256, batch 8) and small (dim 512,
# 8 layers, vocab 8192, seq 256, batch 4). Each side runs under /usr/bin/time for its peak RSS;
# the two sides alternate per preset so that they see the same machine load. Prints tokens/s,
# the lathe/PyTorch ratio per method and peak RSS.
#
# usage: bench/train_bench.sh [LATHE=build/lathe] [PRESETS="tiny small"] [THREADS=2]
#   WARMUP, STEPS and REPEATS (environment; default 2, 5, 3) set the warm-up steps and the
#   timed windows (tokens/s is the median window) on both sides. TORCH_REF overrides the reference tool (default ../shared/tools/torch_ref.py beside the
#   repository); PYTHON the interpreter (default /usr/bin/python3, Debian's python3-torch).
set -eu
LATHE=${1:-build/lathe}
PRESETS=${2:-"tiny small"}
THREADS=${3:-2}
W="--warmup ${WARMUP:-2} --steps ${STEPS:-5} --repeats ${REPEATS:-3}"
HERE=$(cd "$(dirname "$0")" && pwd)
REF=${TORCH_REF:-$HERE/../../shared/tools/torch_ref.py}
PY=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lathe_train_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

rss() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }
# tokens/s of METHOD in a RESULT line: "RESULT <arch|preset> <method> ... tokens/s X"
tps() { awk -v m="$2" '$1 == "RESULT" && $3 == m {for (i = 1; i < NF; i++) if ($i == "tokens/s") print $(i + 1)}' "$1"; }

uptime | sed 's/^/machine load at start:/'
printf '%-6s %-5s %12s %12s %7s %10s %10s\n' preset method lathe_tok/s torch_tok/s ratio lathe_MB torch_MB
for p in $PRESETS; do
    for m in full lora; do
        /usr/bin/time -v -o "$TMP/lt.time" "$LATHE" bench train --preset "$p" --method "$m" \
            --threads "$THREADS" --device cpu $W >"$TMP/lt.out" 2>&1 || { cat "$TMP/lt.out"; exit 1; }
        OMP_NUM_THREADS=$THREADS /usr/bin/time -v -o "$TMP/pt.time" "$PY" "$REF" bench --preset "$p" \
            --method "$m" --threads "$THREADS" $W >"$TMP/pt.out" 2>&1 || { cat "$TMP/pt.out"; exit 1; }
        lt=$(tps "$TMP/lt.out" "$m")
        pt=$(tps "$TMP/pt.out" "$m")
        printf '%-6s %-5s %12.1f %12.1f %6.2fx %10s %10s\n' "$p" "$m" "$lt" "$pt" \
            "$(echo "$lt $pt" | awk '{print $1 / $2}')" "$(rss "$TMP/lt.time")" "$(rss "$TMP/pt.time")"
        grep -h '^RESULT' "$TMP/lt.out" "$TMP/pt.out" | sed 's/^/    /'
    done
done
uptime | sed 's/^/machine load at end:/'
