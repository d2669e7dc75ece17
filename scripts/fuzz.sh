#!/bin/bash
# fuzz.sh - builds and runs lathe's libFuzzer targets with clang (-fsanitize=fuzzer,address,
# undefined). Not part of the normal build or of ctest: run by hand or in a long CI job.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, all targets)
# Crashes are written to build-fuzz/<target>/crash-*; the seed corpus comes from tests/data.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(tokenizer)
out=$root/build-fuzz
mkdir -p "$out"
flags="-std=c11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
for t in "${targets[@]}"; do
    case $t in
    tokenizer)
        srcs=("$root"/pipeline/tokenizer/*.c)
        seeds=$out/$t/seeds
        mkdir -p "$seeds"
        # seeds: the small fixture tokenizers followed by a NUL and some text
        for m in sp sp_meta llama3 qwen2; do
            { cat "$root/tests/data/tok/$m/tokenizer.json"; printf '\0Hello <|im_start|> w\xc3\xb6rld 123 \xff'; } > "$seeds/$m"
        done
        ;;
    *) echo "unknown fuzz target: $t" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    clang $flags -I"$root/pipeline" "$root/tests/fuzz/fuzz_$t.c" "${srcs[@]}" -lcjson -lpthread \
        -o "$out/fuzz_$t"
    mkdir -p "$out/$t/corpus"
    (cd "$out/$t" && "$out/fuzz_$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 corpus seeds) 2>&1 | tail -25
done
