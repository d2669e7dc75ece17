#!/bin/bash
# devices_check.sh - `lathe devices --check`: pass/fail per op and per Vulkan device, exit 1
# with the op named when a device disagrees (a wrong op injected with LATHE_DEVCHECK_INJECT),
# JSON output, and a clear line (exit 0) where there is no Vulkan device.
# usage: bash devices_check.sh /path/to/lathe /path/to/tests/data
lathe=$1
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LATHE_CACHE_DIR=off

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

"$lathe" devices --check >"$tmp/out" 2>&1
rc=$?
if grep -q "nothing to check" "$tmp/out"; then
    check "no Vulkan device: exit 0" test $rc -eq 0
    echo "SKIP: no Vulkan device, the per-op check not run"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
fi
check "a working device passes (exit $rc)" test $rc -eq 0
check "a line per op" grep -q "ok   rmsnorm_backward dx" "$tmp/out"
check "the long reduction is checked" grep -q "ok   matmul K=300001" "$tmp/out"
check "a verdict per device" grep -q "pass: 30 ops agree with the CPU backend" "$tmp/out"

LATHE_DEVCHECK_INJECT="attention_backward dv" "$lathe" devices --check >"$tmp/bad" 2>&1
check "a wrong op fails the command" test $? -eq 1
check "the op is marked" grep -q "FAIL attention_backward dv" "$tmp/bad"
check "and named in the verdict" \
    grep -q "FAIL: disagrees with the CPU backend on attention_backward dv" "$tmp/bad"

LATHE_DEVCHECK_INJECT="swiglu" "$lathe" devices --check --json >"$tmp/json" 2>/dev/null
check "--json exits 1 on a failure" test $? -eq 1
check "--json names the op" grep -q '"failed_op":[[:space:]]*"swiglu"' "$tmp/json"
check "--json overall verdict" grep -q '"pass":[[:space:]]*false' "$tmp/json"

"$lathe" devices --check --bogus >/dev/null 2>&1
check "unknown option is a usage error" test $? -eq 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
