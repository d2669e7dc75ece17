#!/usr/bin/env bash
# concurrency.sh - processes sharing one workspace at once: parallel `data import --append`
# into one dataset keeps every row (20 rounds).
# usage: bash concurrency.sh /path/to/lathe /path/to/tests/data
set -u
LATHE=$1
WS=$(mktemp -d /tmp/lathe_cli_conc.XXXXXX)
trap 'rm -rf "$WS"' EXIT
pass=0
fail=0

check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

ROUNDS=20
APPENDS=3
ROWS=12

# distinct rows per file, so no round can pass by deduplication or by chance
for f in $(seq 0 $APPENDS); do
    for r in $(seq 1 $ROWS); do
        echo "{\"instruction\": \"file $f row $r\", \"output\": \"answer $f.$r\"}"
    done >"$WS/part$f.jsonl"
done

rows_of() { # workspace -> rows of the latest version of dataset d
    "$LATHE" data list --workspace "$1" | awk '$1 == "d" { print $5 }'
}

lost=0
bad_rc=0
for round in $(seq 1 $ROUNDS); do
    ws="$WS/append$round"
    "$LATHE" data import "$WS/part0.jsonl" --name d --workspace "$ws" >/dev/null 2>&1 || bad_rc=$((bad_rc + 1))
    pids=()
    for f in $(seq 1 $APPENDS); do
        "$LATHE" data import "$WS/part$f.jsonl" --name d --append --workspace "$ws" >"$ws.out$f" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || bad_rc=$((bad_rc + 1)); done
    n=$(rows_of "$ws")
    if [ "$n" != $(((APPENDS + 1) * ROWS)) ]; then
        lost=$((lost + 1))
        echo "round $round: $n rows, expected $(((APPENDS + 1) * ROWS))"
    fi
    # the row indexes of the newest version name distinct rows
    dup=$("$LATHE" data export d "$ws.export.jsonl" --workspace "$ws" >/dev/null 2>&1 &&
        sort "$ws.export.jsonl" | uniq -d | wc -l)
    [ "$dup" = 0 ] || lost=$((lost + 1))
    rm -rf "$ws" "$ws".*
done
check "parallel appends: every exit 0" test "$bad_rc" -eq 0
check "parallel appends: no row lost in $ROUNDS rounds" test "$lost" -eq 0

echo "$pass passed, $fail failed"
test "$fail" -eq 0
