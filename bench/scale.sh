#!/usr/bin/env bash
# scale.sh - lathe at real size, on this machine's CPU backend: random-weight bf16 models with
# exactly the shapes of Llama-3.2-1B and Llama-3.1-8B (written by scale_model.py into a scratch
# folder outside the repository; nothing generated is committed), trained on random tokens.
#
#   1B: LoRA r=16 all-linear and QLoRA (NF4, double quant), seq 512 and 2048, batch 1, with
#       and without gradient checkpointing: tokens/s, the trainer's peak tracked device-class
#       memory, host-resident memory, the estimator's figure for the same run, peak RSS.
#       PyTorch (torch_ref.py bench, the same 1B shape, LoRA r=16 on every linear layer, same
#       threads) runs beside it in the same run at seq 512: tokens/s and peak RSS.
#   8B: one QLoRA step at seq 512 and at 2048 with checkpointing (and offloaded layer inputs):
#       peak tracked memory, host memory, peak RSS and the estimate.
#
# Prints one table. Ratios, not absolute times, are what carries from one machine to another.
#
# usage: bench/scale.sh [LATHE=build/lathe] [DIR=$TMPDIR/lathe-scale]
#   PARTS   which parts to run, in order (default "1b-512 1b-2048 8b-512 8b-2048"; 1b-512
#           includes the PyTorch run, right after lathe's LoRA run without checkpointing so
#           both see the same machine load)
#   ROWS    a file the result rows are appended to (default: a temporary one); give the same
#           file to several invocations to print one table over all of them
#   THREADS threads on both sides (default 2)
#   STEPS   timed steps per 1B run (default 1) after one warm-up step at seq 512 (none at
#           2048, where the first step's one-time costs are small); 8B runs time one step
#   PYTHON  the interpreter with torch (default /usr/bin/python3); TORCH_REF the reference tool
#           (default ../shared/tools/torch_ref.py beside the repository)
# Needs about 19 GB of disk in DIR and 16 GB of RAM for the 8B part.
set -eu
LATHE=${1:-build/lathe}
DIR=${2:-${TMPDIR:-/tmp}/lathe-scale}
PARTS=${PARTS:-"1b-512 1b-2048 8b-512 8b-2048"}
THREADS=${THREADS:-2}
STEPS=${STEPS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
REF=${TORCH_REF:-$HERE/../../shared/tools/torch_ref.py}
PY=${PYTHON:-/usr/bin/python3}
mkdir -p "$DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lathe_scale.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

model() { # model SHAPE: writes the folder once
    [ -f "$DIR/$1/config.json" ] || "$PY" "$HERE/scale_model.py" --shape "$1" --out "$DIR/$1" >&2
}
rss() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }
field() { # field FILE KEY: a number from lathe bench train --json's single result
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r.get(sys.argv[2], ""))' "$1" "$2"
}

ROWS=${ROWS:-$TMP/rows}
touch "$ROWS"
lathe_run() { # lathe_run LABEL SHAPE METHOD SEQ CKPT WARMUP STEPS [extra args]
    local label=$1 shape=$2 method=$3 seq=$4 ckpt=$5 warm=$6 steps=$7
    shift 7
    model "$shape"
    echo "== lathe $label $method seq $seq checkpointing $ckpt" >&2
    /usr/bin/time -v -o "$TMP/t" "$LATHE" bench train --model "$DIR/$shape" --method "$method" \
        --seq "$seq" --batch 1 --lora-r 16 --checkpointing "$ckpt" --warmup "$warm" \
        --steps "$steps" --repeats 1 --threads "$THREADS" --device cpu --json "$@" \
        >"$TMP/o" 2>"$TMP/e" || { cat "$TMP/e" >&2; return 1; }
    printf '%s %s %s %s %s %s %s %s %s\n' "$label" "$method" "$seq" "$ckpt" \
        "$(field "$TMP/o" tokens_per_s_median)" "$(field "$TMP/o" device_peak_mb)" \
        "$(field "$TMP/o" host_peak_mb)" "$(field "$TMP/o" estimate_mb)" "$(rss "$TMP/t")" >>"$ROWS"
}

uptime | sed 's/^/machine load at start:/'
torch_1b() { # PyTorch on the 1B shape, LoRA r=16 on every linear layer, seq 512
    echo "== PyTorch 1B lora seq 512" >&2
    OMP_NUM_THREADS=$THREADS /usr/bin/time -v -o "$TMP/t" "$PY" "$REF" bench --arch llama \
        --dim 2048 --layers 16 --heads 32 --kv-heads 8 --ffn 8192 --vocab 128256 --tie \
        --seq 512 --batch 1 --method lora --lora-r 16 --lora-alpha 32 --warmup 1 \
        --steps "$STEPS" --repeats 1 --threads "$THREADS" >"$TMP/o" 2>&1 ||
        { cat "$TMP/o" >&2; return 1; }
    tps=$(awk '$1 == "RESULT" {for (i = 1; i < NF; i++) if ($i == "tokens/s") print $(i + 1)}' "$TMP/o")
    printf 'PyTorch-1B lora 512 off %s - - - %s\n' "$tps" "$(rss "$TMP/t")" >>"$ROWS"
}

for part in $PARTS; do
    case $part in
    1b-512)
        lathe_run 1B llama-3.2-1b lora 512 off 1 "$STEPS"
        torch_1b
        lathe_run 1B llama-3.2-1b lora 512 on 1 "$STEPS"
        lathe_run 1B llama-3.2-1b qlora 512 off 1 "$STEPS"
        lathe_run 1B llama-3.2-1b qlora 512 on 1 "$STEPS" ;;
    1b-2048)
        for method in lora qlora; do
            for ckpt in off on; do
                lathe_run 1B llama-3.2-1b "$method" 2048 "$ckpt" 0 "$STEPS"
            done
        done ;;
    8b-512 | 8b-2048)
        lathe_run 8B llama-3.1-8b qlora "${part#8b-}" on 0 1 --offload ;;
    *) echo "scale.sh: unknown part '$part' (1b-512, 1b-2048, 8b-512, 8b-2048)" >&2; exit 2 ;;
    esac
done
uptime | sed 's/^/machine load at end:/'

echo
printf '%-10s %-6s %5s %5s %9s %11s %9s %11s %7s %9s\n' model method seq ckpt tok/s \
    tracked_MB host_MB estimate_MB est/trk peak_RSS
awk '{ ratio = ($6 > 0 && $8 != "-" && $8 != "") ? sprintf("%.3f", $8 / $6) : "-";
       printf "%-10s %-6s %5s %5s %9.1f %11s %9s %11s %7s %9s\n", $1, $2, $3, $4, $5,
              ($6 == "" ? "-" : sprintf("%.0f", $6)), ($7 == "" ? "-" : ($7 == "-" ? "-" : sprintf("%.0f", $7))),
              ($8 == "" ? "-" : ($8 == "-" ? "-" : sprintf("%.0f", $8))), ratio, $9 }' "$ROWS"
# the 1B LoRA seq 512 ratio against PyTorch on the same shape and threads
awk '$1 == "1B" && $2 == "lora" && $3 == 512 && $4 == "off" {lt = $5; lr = $9}
     $1 == "PyTorch-1B" {pt = $5; pr = $9}
     END { if (lt && pt) printf "\n1B LoRA seq 512: lathe/PyTorch tokens/s %.2fx, peak RSS %s vs %s MB\n", lt / pt, lr, pr }' "$ROWS"
