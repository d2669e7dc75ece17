#!/bin/bash
# bench/generate.sh - generation speed (tokens/s) of a small random model on the CPU, with the
# KV cache, greedy. Builds nothing: pass the path of a built lathe binary (default ./build/lathe).
#   usage: bench/generate.sh [path/to/lathe] [--device cpu|vulkan:N] [--arch llama|gpt2]
#          [--dim N] [--layers N] [--vocab N] [--tokens N]
set -u
LATHE=${1:-./build/lathe}
shift || true
device=cpu arch=llama dim=256 layers=4 vocab=4096 tokens=128
while [ $# -gt 0 ]; do
    case $1 in
    --device) device=$2 ;;
    --arch) arch=$2 ;;
    --dim) dim=$2 ;;
    --layers) layers=$2 ;;
    --vocab) vocab=$2 ;;
    --tokens) tokens=$2 ;;
    *) echo "bench/generate.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
if [ ! -x "$LATHE" ]; then echo "bench/generate.sh: no lathe binary at $LATHE" >&2; exit 2; fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq=$((tokens + 16))
"$LATHE" model init --arch "$arch" --dim "$dim" --layers "$layers" --heads 4 --vocab "$vocab" \
    --seq "$seq" --seed 1 "$tmp/m" >/dev/null || exit 1
echo "model: $arch dim $dim, $layers layers, vocab $vocab; prompt 8 tokens, $tokens new, greedy, $device"
for run in 1 2 3; do
    "$LATHE" generate --model "$tmp/m" --device "$device" --prompt-ids 1,2,3,4,5,6,7,8 \
        --max-tokens "$tokens" --no-stop --json |
        sed -n 's/.*"generated_ids":\[\([^]]*\)\].*"seconds":\([0-9.e+-]*\).*/\1 \2/p' |
        awk -v run=$run '{ n = split($1, a, ","); printf "run %d: %d tokens in %.3f s = %.1f tokens/s\n", run, n, $2, n / $2 }'
done
