#!/usr/bin/env bash
# gen_coopmat_spv.sh - regenerate the committed SPIR-V of the cooperative-matrix shaders,
# shaders/prebuilt/matmul_coopmat*.spv, with a glslc that knows GL_KHR_cooperative_matrix, and
# write each module's source hash (shaders/shader_hash.cmake) beside it as NAME.spv.sha256.
#
#   scripts/gen_coopmat_spv.sh [GLSLC]
#
# Debian 12's glslc rejects the extension, so a build there uses these files; configure time
# checks the hash and ignores (with a warning) a module whose sources changed since. Run this
# after editing shaders/matmul_coopmat*.comp or anything they include, and commit the result.
# GLSLC: the compiler to use; default $GLSLC, else the one trixie-vk.sh unpacks (Debian 13's
# glslc, glslang 15) from ../shared/tools/trixie-vk.sh (or $LATHE_TRIXIE_VK) into
# build/trixie-vk (or $LATHE_TRIXIE_VK_DEST). A shader this glslc cannot compile (the bfloat16
# one needs GL_EXT_bfloat16, newer than glslang 15) keeps no committed module. Each module is
# checked with spirv-val (the one beside GLSLC, else on PATH) before it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

glslc=${1:-${GLSLC:-}}
if [ -z "$glslc" ]; then
    setup=${LATHE_TRIXIE_VK:-../shared/tools/trixie-vk.sh}
    [ -f "$setup" ] || { echo "no glslc given and no $setup" >&2; exit 1; }
    eval "$(bash "$setup" "${LATHE_TRIXIE_VK_DEST:-build/trixie-vk}")"
    glslc=$GLSLC
fi
val=$(dirname "$glslc")/spirv-val
[ -x "$val" ] || val=$(command -v spirv-val || true)
[ -n "$val" ] || { echo "no spirv-val beside $glslc or on PATH" >&2; exit 1; }
echo "glslc: $("$glslc" --version | head -n 1)"

mkdir -p shaders/prebuilt
for src in shaders/matmul_coopmat*.comp; do
    name=$(basename "$src" .comp)
    out=shaders/prebuilt/$name.spv
    if ! "$glslc" --target-env=vulkan1.3 -O -Werror -I shaders/include -o "$out.tmp" "$src" \
        2>"$out.log"; then
        echo "$name: not compiled by this glslc ($(head -n 1 "$out.log")); no module kept"
        rm -f "$out.tmp" "$out.log" "$out" "$out.sha256"
        continue
    fi
    rm -f "$out.log"
    "$val" --target-env vulkan1.3 "$out.tmp"
    mv "$out.tmp" "$out"
    cmake -DSRC="$src" -DINCLUDE_DIR=shaders/include -DOUT="$out.sha256" \
        -P shaders/shader_hash.cmake
    echo "$name: $(wc -c <"$out") bytes, sources $(cut -c1-16 "$out.sha256")"
done
