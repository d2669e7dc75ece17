#!/usr/bin/env bash
# concurrency.sh - processes sharing one workspace at once: parallel `data import --append`
# into one dataset keeps every row (20 rounds), parallel first imports into a new workspace
# all succeed (the schema migration runs once), and the same --name imported twice at once
# gives the friendly "exists" message, never a raw SQLite constraint error.
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

# three first imports into a new workspace at once: two distinct names, both kept (the schema
# migration runs once), and a third taking one of those names, told the name is taken
failed=0
raw=0
for round in $(seq 1 $ROUNDS); do
    ws="$WS/first$round"
    "$LATHE" data import "$WS/part1.jsonl" --name one --workspace "$ws" >"$WS/first.a" 2>&1 &
    a=$!
    "$LATHE" data import "$WS/part2.jsonl" --name two --workspace "$ws" >"$WS/first.b" 2>&1 &
    b=$!
    "$LATHE" data import "$WS/part3.jsonl" --name two --workspace "$ws" >"$WS/first.c" 2>&1 &
    c=$!
    wait $a
    ra=$?
    wait $b
    rb=$?
    wait $c
    rc=$?
    grep -qi "constraint\|migration\|locked\|busy" "$WS"/first.[abc] && raw=$((raw + 1))
    ok=0
    if [ "$ra" -eq 0 ] && (((rb == 0) + (rc == 0) == 1)); then
        if [ "$rb" -ne 0 ]; then loser="$WS/first.b"; else loser="$WS/first.c"; fi
        grep -q "a dataset named 'two'" "$loser" && ok=1
    fi
    if [ "$ok" -ne 1 ]; then
        failed=$((failed + 1))
        echo "round $round: rc $ra $rb $rc:" && cat "$WS"/first.[abc]
    fi
    rm -rf "$ws"
done
check "parallel first imports: each distinct name kept, in $ROUNDS rounds" test "$failed" -eq 0
check "parallel first imports: no raw SQLite or migration error" test "$raw" -eq 0

echo "$pass passed, $fail failed"
test "$fail" -eq 0
