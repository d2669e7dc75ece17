#!/bin/bash
# devices_check.sh - `lathe devices --check`: pass/fail per op and per Vulkan device, exit 1
# with the op named when a device disagrees (a wrong op injected with LATHE_DEVCHECK_INJECT),
# JSON output, a training run refused on such a device with the verdict cached in the
# workspace, and a clear line (exit 0) where there is no Vulkan device.
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

# a training run on a device that disagrees is refused with the op named, and the verdict is
# cached in the workspace (LATHE_DEVCHECK=on: lavapipe is checked too)
for i in $(seq 1 24); do
    printf '{"instruction": "say the cat %d", "output": "sat on a mat %d"}\n' "$i" "$i"
done >"$tmp/chat.jsonl"
"$lathe" tokenizer train --vocab 300 --out "$tmp/m" "$tmp/chat.jsonl" >/dev/null 2>&1
"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 300 \
    --seq 64 --seed 3 "$tmp/m" >/dev/null
"$lathe" data import "$tmp/chat.jsonl" --name chat --workspace "$tmp/ws" >/dev/null
printf '{"model": "%s", "dataset": "chat", "method": "full", "seq_len": 64, "batch_size": 4, "epochs": 1}\n' \
    "$tmp/m" >"$tmp/run.json"
LATHE_DEVCHECK=on LATHE_DEVCHECK_INJECT="adamw param" "$lathe" train --device vulkan:0 \
    "$tmp/run.json" --workspace "$tmp/ws" >"$tmp/train.out" 2>&1
check "training on a wrong device exits 1" test $? -eq 1
check "the refusal names the op" grep -q "disagrees with the CPU backend on adamw param" "$tmp/train.out"
check "the verdict is cached" grep -q '"failed":[[:space:]]*"adamw param"' "$tmp/ws/devcheck.json"

"$lathe" devices --check --bogus >/dev/null 2>&1
check "unknown option is a usage error" test $? -eq 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
