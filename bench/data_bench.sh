#!/usr/bin/env bash
# data_bench.sh - throughput of the data workbench: import + exact + near dedup of a
# generated instruction dataset, in MB/s end to end, with the peak resident memory of each
# step (from /usr/bin/time -v). The peer, in the same run: the sqlite3 shell loading the same
# file as one text row per line (no parsing, validation, hashing or dedup), i.e. the bare
# cost of getting these bytes into SQLite; lathe/peer is the ratio of end-to-end throughputs.
#
# usage: bench/data_bench.sh [SIZE_MB=100] [LATHE=build/lathe]
#   SIZE_MB=500 for the full-size run. The generated file is cached in $TMPDIR.
set -eu
SIZE=${1:-100}
LATHE=${2:-build/lathe}
TMP=${TMPDIR:-/tmp}
DATA=$TMP/lathe_bench_data_${SIZE}mb.jsonl
WS=$(mktemp -d "$TMP/lathe_bench_ws.XXXXXX")
trap 'rm -rf "$WS"' EXIT
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ! -s "$DATA" ]; then
    echo "generating $DATA ($SIZE MB)..."
    python3 "$HERE/data_gen.py" "$DATA" "$SIZE"
fi
BYTES=$(stat -c %s "$DATA")

step() { # name, command...: runs it under /usr/bin/time, prints seconds and peak RSS
    local name=$1
    shift
    /usr/bin/time -v -o "$WS/time.$name" "$@" >"$WS/out.$name" 2>"$WS/err.$name" || {
        cat "$WS/err.$name"
        exit 1
    }
    local secs rss cpu
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$WS/time.$name")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WS/time.$name")
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$WS/time.$name")
    echo "$name $secs $rss $cpu"
}

echo "lathe data bench: $(awk -v b="$BYTES" 'BEGIN {printf "%.1f MB", b/1e6}') of alpaca JSONL, $(nproc) cores"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
R1=$(step import "$LATHE" data import "$DATA" --name bench --workspace "$WS/ws" --json)
R2=$(step dedup "$LATHE" data dedup bench --workspace "$WS/ws" --json)
cat "$WS/out.import" "$WS/out.dedup"
DB=$(du -sh "$WS/ws" | cut -f1)
R3=""
if command -v sqlite3 >/dev/null; then
    # the peer: one text column per line, in one transaction, WAL like lathe's store
    printf 'PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\nCREATE TABLE rows(line TEXT);\n.mode ascii\n.separator "\\037" "\\n"\n.import %s rows\n' \
        "$DATA" >"$WS/peer.sql"
    R3=$(step peer sqlite3 "$WS/peer.db" ".read $WS/peer.sql")
fi
echo "$R1
$R2
$R3" | awk -v b="$BYTES" '
    NF == 4 { t[$1] = $2; rss[$1] = $3; cpu[$1] = $4 }
    NF == 4 && $1 != "peer" { total += $2; tcpu += $4; if ($3 > peak) peak = $3 }
    function row(name, s, c, r) {
        printf "%-22s %7.2f s  %7.1f MB/s  cpu %7.2f s  peak RSS %7.1f MB\n", name, s, b/1e6/s, c, r/1024
    }
    END {
        row("lathe import", t["import"], cpu["import"], rss["import"])
        row("lathe dedup", t["dedup"], cpu["dedup"], rss["dedup"])
        row("lathe end to end", total, tcpu, peak)
        if ("peer" in t) {
            row("peer sqlite3 .import", t["peer"], cpu["peer"], rss["peer"])
            printf "lathe end to end / peer: %.2f (throughput ratio; the peer only stores lines)\n", t["peer"]/total
        }
        printf "END TO END: %.1f MB/s, peak RSS %.1f MB\n", b/1e6/total, peak/1024
    }'
echo "database: $DB; load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
