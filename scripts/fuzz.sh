#!/bin/bash
# fuzz.sh - builds and runs lathe's libFuzzer targets with clang (-fsanitize=fuzzer,address,
# undefined). Not part of the normal build or of ctest: run by hand or in a long CI job. (The
# normal build replays each target over its committed seeds, tests/fuzz/corpus/<target>/, as
# the tests fuzz_<target>_corpus, with tests/fuzz/fuzz_driver.c.)
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, all targets)
# Targets: tokenizer safetensors gguf data chat. Crashes are written to
# build-fuzz/<target>/crash-*; the corpus grows in build-fuzz/<target>/corpus (copy the small,
# interesting inputs it finds into tests/fuzz/corpus/<target>/ to keep them checked).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(tokenizer safetensors gguf data chat)
out=$root/build-fuzz
mkdir -p "$out"
flags="-std=c11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
inc=(-I"$root/pipeline" -I"$root/compute" -I"$root/store")
for t in "${targets[@]}"; do
    case $t in
    tokenizer) srcs=("$root"/pipeline/tokenizer/*.c) ;;
    safetensors) srcs=("$root/pipeline/model/safetensors.c" "$root/pipeline/model/config.c") ;;
    gguf)
        srcs=("$root/pipeline/export/gguf.c" "$root/pipeline/export/gguf_parse.c")
        flags_t=-DFUZZ_F16 # the half-float conversions come from the target, not compute
        ;;
    data)
        srcs=("$root"/pipeline/data/data_{read,format,text}.c "$root/pipeline/data/sha256.c"
            "$root"/pipeline/tokenizer/unicode*.c)
        ;;
    chat) srcs=("$root"/pipeline/tokenizer/*.c) ;;
    *) echo "unknown fuzz target: $t" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    clang $flags ${flags_t:-} "${inc[@]}" "$root/tests/fuzz/fuzz_$t.c" "${srcs[@]}" -lcjson \
        -lpthread -lm -o "$out/fuzz_$t"
    flags_t=
    mkdir -p "$out/$t/corpus"
    (cd "$out/$t" && "$out/fuzz_$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 corpus "$root/tests/fuzz/corpus/$t") 2>&1 | tail -25
done
