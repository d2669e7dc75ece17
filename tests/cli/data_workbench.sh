#!/usr/bin/env bash
# data_workbench.sh - `lathe data` end to end with the real binary: import of every fixture
# format, issues, show (with escapes made visible), inspect text and JSON, dedup, filter,
# split, export, bad files and usage errors with their exit codes.
# usage: bash data_workbench.sh /path/to/lathe /path/to/tests/data
set -u
LATHE=$1
DATA=$2/datasets
WS=$(mktemp -d /tmp/lathe_cli_data.XXXXXX)
trap 'rm -rf "$WS"' EXIT
pass=0
fail=0

check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

run() { "$LATHE" "$@" --workspace "$WS/ws"; }

out=$(run data import "$DATA/alpaca_mixed.jsonl" --name alpaca 2>&1)
check "import exit 0" test $? -eq 0
check "import summary" grep -q "5 rows (alpaca), 5 bad rows, 1 warnings" <<<"$out"

out=$(run data issues alpaca)
check "issues list malformed JSON with column" grep -q "alpaca_mixed.jsonl:3:63: error: malformed JSON" <<<"$out"
check "issues list missing field" grep -q "missing field 'output'" <<<"$out"
check "issues warning" grep -q "warning: line 7: control character" <<<"$out"
check "raw text of a bad row is sanitized" grep -q 'raw: {"instruction": "Ring the bell"' <<<"$out"

out=$(run data show alpaca 2)
check "show sanitizes escape sequences" grep -q 'Done\\x07 and \\x1b\[31mred' <<<"$out"
check "show never prints a raw ESC" bash -c '! grep -q $'"'"'\x1b'"'"' <<<"$1"' _ "$out"

out=$(run data issues alpaca --json)
check "issues --json parses" python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert len(d)==6 and d[0]["line"]==3 and d[0]["column"]==63' <<<"$out"

for f in sharegpt_mixed.jsonl messages_array.json preference_mixed.jsonl text_mixed.jsonl qa.csv sentiment.jsonl; do
    run data import "$DATA/$f" >/dev/null 2>&1
    check "import $f" test $? -eq 0
done

out=$(run data list)
check "list shows datasets" grep -q "sharegpt_mixed" <<<"$out"
out=$(run data list --json)
check "list --json" python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert len(d)==7' <<<"$out"

out=$(run data inspect sentiment)
check "inspect label balance" grep -q "labels (responses come from 2 values; imbalance 5.0:1)" <<<"$out"
check "inspect histogram" grep -q "characters per sample: min" <<<"$out"
check "inspect says dedup has not run" grep -q "dedup has not run" <<<"$out"
out=$(run data inspect sentiment --model /nonexistent 2>&1)
check "inspect without a tokenizer says so" grep -q "token lengths need a tokenizer" <<<"$out"

TOK=$2/tok/gpt2/tokenizer.json.gz
if [ -f "$TOK" ]; then
    mkdir -p "$WS/gpt2" && gzip -dc "$TOK" >"$WS/gpt2/tokenizer.json"
    out=$(run data inspect sentiment --model "$WS/gpt2" --max-len 17 --json)
    check "inspect token lengths with a tokenizer" python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); t=d["tokens"]; assert t["count"]==60 and t["min"]>10 and 0<t["truncated_share"]<=1, t' <<<"$out"
fi

out=$(run data import "$DATA/sentiment.jsonl" --name sentiment --append)
check "append" grep -q "version 2" <<<"$out"
out=$(run data dedup sentiment --json --progress-file "$WS/dedup.progress")
check "dedup progress file ends at 1" grep -q '^1.0000 dedup' "$WS/dedup.progress"
check "dedup removes the appended copy" python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["exact_removed"]==60 and d["version"]==3, d' <<<"$out"
out=$(run data inspect sentiment --json)
check "inspect duplicate rate" python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["duplicates"]["dedup_ran"] and d["duplicates"]["exact_removed"]==60 and d["rows"]==60' <<<"$out"

out=$(run data filter sentiment --regex 'response=^neg')
check "filter" grep -q "60 rows in, 10 dropped, 50 kept: new version 4" <<<"$out"
out=$(run data show sentiment 0 2>&1)
check "dropped row not in latest version" test $? -eq 1
out=$(run data show sentiment 0 --version 1)
check "older version still has it" grep -q "negative" <<<"$out"

out=$(run data split sentiment --val 0.1 --test 0.1 --seed 3 --stratify-by response --progress-file "$WS/split.progress")
check "split progress file ends at 1" grep -q '^1.0000 split' "$WS/split.progress"
check "split counts" grep -q "train 40, val 5, test 5" <<<"$out"
for fmt in alpaca sharegpt messages jsonl; do
    run data export sentiment "$WS/out_$fmt.jsonl" --split train --format $fmt >/dev/null
    check "export $fmt" test "$(wc -l <"$WS/out_$fmt.jsonl")" -eq 40
done
check "alpaca export shape" python3 -c 'import json; r=json.loads(open("'"$WS"'/out_alpaca.jsonl").readline()); assert r["output"]=="positive" and r["instruction"].startswith("Classify")'
check "sharegpt export shape" python3 -c 'import json; r=json.loads(open("'"$WS"'/out_sharegpt.jsonl").readline()); assert [t["from"] for t in r["conversations"]]==["human","gpt"]'
run data import "$WS/out_sharegpt.jsonl" --name roundtrip >/dev/null 2>&1
check "export re-imports" test $? -eq 0

# bad files: clear message, exit 1, nothing left behind
printf '\xff\xfe{\x00}\x00' >"$WS/u16.jsonl"
out=$(run data import "$WS/u16.jsonl" 2>&1)
check "UTF-16 exit 1" test $? -eq 1
check "UTF-16 message" grep -q "UTF-16" <<<"$out"
: >"$WS/empty.jsonl"
out=$(run data import "$WS/empty.jsonl" 2>&1)
check "empty message" grep -q "the file is empty" <<<"$out"
head -c 3000 /dev/urandom >"$WS/blob.bin"
out=$(run data import "$WS/blob.bin" 2>&1)
check "binary exit 1" test $? -eq 1
out=$(run data list --json)
check "bad files left no dataset" python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert len(d)==8, len(d)' <<<"$out"
out=$(run data import "$DATA/alpaca_mixed.jsonl" --name strict --strict 2>&1)
check "--strict exit 1" test $? -eq 1
check "--strict message" grep -q -- "--strict: 5 bad rows" <<<"$out"

# usage
run data import >/dev/null 2>&1
check "no files: exit 2" test $? -eq 2
run data dedup sentiment --threshold 7 >/dev/null 2>&1
check "bad threshold: exit 2" test $? -eq 2
run data frobnicate >/dev/null 2>&1
check "unknown subcommand: exit 2" test $? -eq 2
run data show nosuch 1 >/dev/null 2>&1
check "unknown dataset: exit 1" test $? -eq 1
for sub in import list show issues inspect dedup filter split export; do
    "$LATHE" data $sub --help | grep -q "usage: lathe data $sub"
    check "$sub --help" test $? -eq 0
done

echo "$pass passed, $fail failed"
test "$fail" -eq 0
