#!/bin/bash
# adapter_bench.sh - end-to-end checks of `lathe generate --adapter DIR` (a PEFT folder written
# by the PyTorch reference changes the greedy continuation; a mismatched or missing adapter
# fails with a message) and of `lathe bench train` on bad options (the timing run itself is
# bench/train_bench.sh; tests never time anything).
# usage: bash adapter_bench.sh /path/to/lathe /path/to/tests/data
lathe=$1
data=$2
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

m="$data/models/llama_gqa"
base=$("$lathe" generate --device cpu --model "$m" --prompt-ids 5,17,99 --max-tokens 8 2>/dev/null)
with=$("$lathe" generate --device cpu --model "$m" --adapter "$data/train/llama_lora_adapter" \
    --prompt-ids 5,17,99 --max-tokens 8 2>/dev/null)
check "generate with an adapter succeeds" test -n "$with"
check "the adapter changes the continuation" test "$base" != "$with"
again=$("$lathe" generate --device cpu --model "$m" --adapter "$data/train/llama_lora_adapter" \
    --prompt-ids 5,17,99 --max-tokens 8 2>/dev/null)
check "generation with an adapter is deterministic" test "$with" = "$again"
"$lathe" generate --device cpu --model "$m" --adapter "$data/train/gpt2_lora_adapter" \
    --prompt-ids 5,17,99 --max-tokens 4 >/dev/null 2>"$tmp/err"
check "a gpt2 adapter on a llama exits 1" test $? -eq 1
check "the error names the tensor" grep -q "transformer.h.0.attn.c_attn" "$tmp/err"
"$lathe" generate --device cpu --model "$m" --adapter "$tmp/none" --prompt-ids 5 \
    --max-tokens 4 >/dev/null 2>"$tmp/err"
check "a missing adapter exits 1" test $? -eq 1
check "the error names adapter_config.json" grep -q "adapter_config.json" "$tmp/err"
"$lathe" bench train --preset huge >/dev/null 2>&1
check "bench train with an unknown preset is a usage error" test $? -eq 2
"$lathe" bench train --method sgd --steps 1 --repeats 1 --warmup 0 >/dev/null 2>&1
check "bench train with an unknown method fails" test $? -ne 0
check "bench train --help" "$lathe" bench train --help >/dev/null

echo "$pass passed, $fail failed"
test "$fail" -eq 0
