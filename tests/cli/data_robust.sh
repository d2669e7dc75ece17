#!/usr/bin/env bash
# data_robust.sh - `lathe data` on hostile input with the real binary: NUL characters (escaped
# and raw, past the binary probe) refused per row with their line and field.
# usage: bash data_robust.sh /path/to/lathe /path/to/tests/data
set -u
LATHE=$1
WS=$(mktemp -d /tmp/lathe_cli_robust.XXXXXX)
trap 'rm -rf "$WS"' EXIT
pass=0
fail=0

check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

run() { "$LATHE" "$@" --workspace "$WS/ws"; }

# ---- NUL characters: a bad row naming line and field, never a silently shortened text ----
printf '{"instruction": "hi", "output": "a\\u0000b"}\n{"instruction": "ok", "output": "fine"}\n' \
    >"$WS/nul_escape.jsonl"
out=$(run data import "$WS/nul_escape.jsonl" 2>&1)
check "\\u0000: one good row, one bad" grep -q "1 rows (alpaca), 1 bad rows" <<<"$out"
out=$(run data issues nul_escape)
check "\\u0000: the issue names line, column and field" \
    grep -q "nul_escape.jsonl:1:35: error: NUL character.*field 'output'" <<<"$out"
{
    for i in $(seq 1 200); do printf '{"text": "row %d with enough padding to pass the probe"}\n' "$i"; done
    printf '{"text": "x\0y"}\n'
} >"$WS/nul_raw.jsonl"
out=$(run data import "$WS/nul_raw.jsonl" 2>&1)
check "raw NUL past 8 KB: 200 good rows, 1 bad" grep -q "200 rows (text), 1 bad rows" <<<"$out"
out=$(run data issues nul_raw)
check "raw NUL: the issue names line 201 and field" \
    grep -q "nul_raw.jsonl:201:12: error: NUL character.*field 'text'" <<<"$out"
{
    printf 'instruction,output\n'
    for i in $(seq 1 200); do printf 'q%d,an answer long enough to pass the binary probe\n' "$i"; done
    printf 'ab,"c\0d"\n'
} >"$WS/nul.csv"
out=$(run data import "$WS/nul.csv" 2>&1)
check "raw NUL in CSV: 200 good rows, 1 bad" grep -q "200 rows (alpaca), 1 bad rows" <<<"$out"
out=$(run data issues nul)
check "raw NUL in CSV: the issue names line and column" \
    grep -q "nul.csv:202:6: error: NUL byte.*column 'output'" <<<"$out"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
