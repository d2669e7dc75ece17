#!/usr/bin/env bash
# spirv_val.sh SETUP DEST SPV_DIR... - spirv-val on every SPIR-V module lathe embeds (the
# build's shaders/spv) and commits (shaders/prebuilt), each for the Vulkan version it is built
# for (vulkan1.3 for the cooperative-matrix ones, vulkan1.2 for the rest).
#
# The validator: Debian 13's, unpacked by trixie-vk.sh (SETUP, into DEST, as tests/
# vk_mesa26.sh does), which knows SPV_KHR_cooperative_matrix; else spirv-val on PATH (Debian
# 12's spirv-tools), which then checks the other modules and reports the cooperative-matrix
# ones as skipped. Exit 77 (ctest: skipped) when there is no validator at all.
set -u
setup=${LATHE_TRIXIE_VK:-${1:-}}
dest=${LATHE_TRIXIE_VK_DEST:-${2:-}}
shift 2 || exit 2

val=
if [ -n "$setup" ] && [ -f "$setup" ] && [ -n "$dest" ] && mkdir -p "$dest" 2>/dev/null; then
    if exports=$(exec 9>"$dest.lock"; flock 9; bash "$setup" "$dest" 2>"$dest.log"); then
        eval "$exports"
        [ -x "$dest/bin/spirv-val" ] && val=$dest/bin/spirv-val
    fi
fi
new=1
if [ -z "$val" ]; then
    val=$(command -v spirv-val || true)
    new=0
fi
[ -n "$val" ] || { echo "SKIP: no spirv-val (install spirv-tools, or let trixie-vk.sh set up)"; exit 77; }
echo "validator: $val ($("$val" --version 2>&1 | head -n 1))"

n=0 bad=0 skipped=0
for dir in "$@"; do
    for spv in "$dir"/*.spv; do
        [ -e "$spv" ] || continue
        name=$(basename "$spv" .spv)
        env=vulkan1.2
        case $name in matmul_coopmat*) env=vulkan1.3 ;; esac
        if [ "$env" = vulkan1.3 ] && [ "$new" = 0 ]; then
            echo "SKIP: $spv (cooperative matrices need a newer spirv-val)"
            skipped=$((skipped + 1))
            continue
        fi
        n=$((n + 1))
        if ! out=$("$val" --target-env "$env" "$spv" 2>&1); then
            echo "FAIL: $spv ($env): $out"
            bad=$((bad + 1))
        fi
    done
done
echo "$n modules validated, $bad failed, $skipped skipped"
[ "$n" -gt 0 ] || { echo "no modules found in $*"; exit 1; }
[ "$bad" -eq 0 ]
