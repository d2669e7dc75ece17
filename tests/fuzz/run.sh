#!/bin/bash
# run.sh - build the libFuzzer targets with clang and run each for a while (60 s default).
#   usage: tests/fuzz/run.sh [seconds]
# Not part of ctest (it takes minutes). Crashes are written to $FUZZ_OUT (default
# /tmp/lathe-fuzz) as crash-*;
# the script exits non-zero when any target finds one.
set -u
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-${TMPDIR:-/tmp}/lathe-fuzz}
mkdir -p "$out/corpus_safetensors"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -std=c11"
inc="-I$repo/pipeline -I$repo/pipeline/model -I$repo/compute"
clang $cflags $inc "$here/fuzz_safetensors.c" "$repo/pipeline/model/safetensors.c" \
    "$repo/pipeline/model/config.c" -lcjson -lm -o "$out/fuzz_safetensors" || exit 2
# seed corpus: the fixture files (small) and their configs
for f in "$repo"/tests/data/models/*/model.safetensors "$repo"/tests/data/models/*/config.json; do
    cp "$f" "$out/corpus_safetensors/$(basename "$(dirname "$f")")_$(basename "$f")"
done
cd "$out" && ./fuzz_safetensors -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 \
    corpus_safetensors 2>&1 | tail -n 5
ls crash-* >/dev/null 2>&1 && { echo "crashes found in $out"; exit 1; }
echo "fuzz_safetensors: no crashes in ${secs} s"
