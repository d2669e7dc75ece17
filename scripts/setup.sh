#!/usr/bin/env bash
# setup.sh - install what lathe needs, build it, and run the demo or the test suite.
#
#   scripts/setup.sh demo    install packages, build, run the demo, open the dashboard
#   scripts/setup.sh test    install packages, build (normal + sanitizers), run every test
#   scripts/setup.sh build   build only (Release, into build/)
#   scripts/setup.sh deps    install the Debian/Ubuntu packages only
#
# Works on a fresh Debian 12 or Ubuntu 24.04 machine, as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config git
          libncurses-dev libcjson-dev libsqlite3-dev
          libvulkan-dev glslc spirv-tools mesa-vulkan-drivers vulkan-validationlayers
          libopenblas-dev libopenblas0-openmp tmux python3)

JOBS=$(nproc 2>/dev/null || echo 2)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

deps() {
    if [ "${LATHE_SKIP_DEPS:-0}" = 1 ]; then return 0; fi
    echo "== installing packages: ${PACKAGES[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${PACKAGES[@]}" >/dev/null
}

build() {   # build DIR [cmake args...]
    local dir=$1; shift
    echo "== building $dir"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

run_tests() {   # run_tests DIR
    echo "== testing $1"
    ctest --test-dir "$1" --output-on-failure -j "$JOBS"
}

case "${1:-}" in
deps)
    deps ;;
build)
    build build -DCMAKE_BUILD_TYPE=Release ;;
test)
    deps
    build build -DCMAKE_BUILD_TYPE=Release
    run_tests build
    # Mesa's lavapipe keeps allocations alive at exit that LeakSanitizer would report;
    # lathe's own leaks are still caught by the CPU-only tests.
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DLATHE_SANITIZE=ON
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=print_stacktrace=1 run_tests build-asan
    echo "== all tests passed (Release and AddressSanitizer+UBSan builds)"
    ;;
demo)
    deps
    build build -DCMAKE_BUILD_TYPE=Release
    if ./build/lathe --help | grep -q '^  demo '; then
        ./build/lathe demo --workspace "${LATHE_HOME:-$HOME/.lathe-demo}"
        if [ -t 1 ]; then exec ./build/lathe --workspace "${LATHE_HOME:-$HOME/.lathe-demo}"; fi
    else
        ./build/lathe devices
    fi
    ;;
*)
    echo "usage: scripts/setup.sh demo|test|build|deps" >&2
    exit 2 ;;
esac
