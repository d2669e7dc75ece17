#!/usr/bin/env bash
# vk_mesa26.sh SETUP DEST PROGRAM [ARGS...] - run a test program on Mesa 26.1's lavapipe (the CPU
# Vulkan driver with cooperative matrices) on a Debian 12 machine, next to the system's own
# lavapipe that the other tests use.
#
# SETUP is trixie-vk.sh (it unpacks Debian 13's lavapipe and glslc into a folder without
# touching system packages and prints the variables to export; see its header). DEST is the
# folder it unpacks into: it must be writable (the build tree's trixie-vk/ by default), SETUP
# itself may be read-only. The program runs through "$VK_RUN", the unpacked dynamic loader, and
# sees only that driver, with LATHE_TEST_VK_REQUIRED=1 so that finding no device fails it.
#
# Exit 77 (ctest: skipped, never passed) when SETUP is missing or cannot set up (no network,
# no mirror, no space): the reason goes to stdout. Otherwise the program's own status.
# CMake passes SETUP from LATHE_TRIXIE_VK (default ../shared/tools/trixie-vk.sh beside the
# source tree) and DEST from LATHE_TRIXIE_VK_DEST; the environment variables of the same
# names override both at test time.
set -u

setup=${LATHE_TRIXIE_VK:-${1:-}}
dest=${LATHE_TRIXIE_VK_DEST:-${2:-}}
shift 2 || { echo "usage: vk_mesa26.sh SETUP DEST PROGRAM [ARGS...]" >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: vk_mesa26.sh SETUP DEST PROGRAM [ARGS...]" >&2; exit 2; }

skip() { echo "SKIP: Mesa 26.1 lavapipe not available: $*"; exit 77; }

[ -n "$setup" ] && [ -f "$setup" ] || skip "no setup script (${setup:-unset}; set LATHE_TRIXIE_VK)"
[ -n "$dest" ] || skip "no target folder (set LATHE_TRIXIE_VK_DEST)"
mkdir -p "$dest" 2>/dev/null || skip "cannot create $dest"
[ -w "$dest" ] || skip "$dest is not writable"

# one setup at a time: ctest -j runs several of these tests at once
log=$dest.log
exports=$(
    exec 9>"$dest.lock"
    flock 9
    bash "$setup" "$dest" 2>"$log"
) || skip "$setup $dest failed: $(tail -n 3 "$log" 2>/dev/null | tr '\n' ' ')"
eval "$exports"
[ -n "${VK_RUN:-}" ] && [ -x "$VK_RUN" ] || skip "$setup printed no usable VK_RUN"

export LATHE_TEST_VK_REQUIRED=1
"$VK_RUN" "$@"
