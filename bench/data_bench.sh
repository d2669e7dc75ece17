#!/usr/bin/env bash
# data_bench.sh - throughput of the data workbench: import + exact + near dedup of a
# generated instruction dataset, in MB/s end to end, with the peak resident memory of each
# step (from /usr/bin/time -v).
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
R1=$(step import "$LATHE" data import "$DATA" --name bench --workspace "$WS/ws" --json)
R2=$(step dedup "$LATHE" data dedup bench --workspace "$WS/ws" --json)
cat "$WS/out.import" "$WS/out.dedup"
echo "$R1
$R2" | awk -v b="$BYTES" '
    { t[$1] = $2; rss[$1] = $3; cpu[$1] = $4; total += $2; tcpu += $4; if ($3 > peak) peak = $3 }
    END {
        printf "import:      %6.2f s  %6.1f MB/s  cpu %6.2f s  peak RSS %6.1f MB\n", t["import"], b/1e6/t["import"], cpu["import"], rss["import"]/1024
        printf "dedup:       %6.2f s  %6.1f MB/s  cpu %6.2f s  peak RSS %6.1f MB\n", t["dedup"], b/1e6/t["dedup"], cpu["dedup"], rss["dedup"]/1024
        printf "end to end:  %6.2f s  %6.1f MB/s  cpu %6.2f s  peak RSS %6.1f MB\n", total, b/1e6/total, tcpu, peak/1024
    }'
echo "database: $(du -sh "$WS/ws" | cut -f1); load average while running: $(cut -d' ' -f1-3 /proc/loadavg)"
