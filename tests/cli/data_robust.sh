#!/usr/bin/env bash
# data_robust.sh - `lathe data` on hostile input with the real binary: NUL characters (escaped
# and raw, past the binary probe) refused per row with their line and field; no raw escape
# or bidi control on stdout or stderr whatever a file name, argument or row holds; a FIFO
# imported without hanging, and ended by SIGTERM when its writer stalls; nothing overwritten
# without --force; clear messages for deep nesting, lone CR, header-only CSV, duplicate keys,
# out-of-range numbers, trailing data, and no large database left by a killed import; alpaca import/export a round trip; the workspace 0700 and files 0600 whatever the umask, LATHE_UMASK for teams.
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

# ---- terminal injection: no raw ESC, C1 or bidi control reaches stdout or stderr ----
E=$'x\e]52;c;aGk=\a\e[2J\u202e'
raw_bytes() { # text -> true when it carries ESC, BEL, CSI (U+009B) or a bidi control
    LC_ALL=C grep -q $'\e\|\a\|\xc2\x9b\|\xe2\x80[\xaa-\xae]\|\xe2\x81[\xa6-\xa9]\|\xe2\x80[\x8e\x8f]\|\xd8\x9c' <<<"$1"
}
export -f raw_bytes
cp "$WS/nul_escape.jsonl" "$WS/$E.jsonl" # a bad row, so the import names the dataset twice
out=$(run data import "$WS/$E.jsonl" 2>&1)
check "import of a file named with escapes exits 0" test $? -eq 0
check "import echoes the default name escaped" grep -qF 'x\x1b]52;c;aGk=\x07\x1b[2J\u202e' <<<"$out"
check "import prints no raw escape" bash -c '! raw_bytes "$1"' _ "$out"
for cmd in "runs show" "runs stop" "runs pause" "watch" "eval show" "export" "train --resume" \
    "data show" "data issues" "data inspect" "data export" "data dedup" "plan --data" "runs"; do
    out=$(run $cmd "$E" 2>&1 </dev/null)
    check "$cmd ARG with escapes: nothing raw on stdout or stderr" bash -c '! raw_bytes "$1"' _ "$out"
done
out=$("$LATHE" "$E" 2>&1)
check "unknown command with escapes: nothing raw" bash -c '! raw_bytes "$1"' _ "$out"
printf '{"instruction": "rtl \xe2\x80\xae here", "output": "ok \\u202e \\u2066 \\u200f"}\n' >"$WS/bidi.jsonl"
run data import "$WS/bidi.jsonl" >/dev/null 2>&1
out=$(run data show bidi 0 2>&1)
check "data show makes U+202E visible" grep -qF 'rtl \u202e here' <<<"$out"
check "data show: no raw bidi control" bash -c '! raw_bytes "$1"' _ "$out"
"$LATHE" tokenizer train --vocab 300 --out "$WS/tk" "$WS/bidi.jsonl" >/dev/null 2>&1
ids=$(printf 'a \xe2\x80\xae b \e[2J' | "$LATHE" tokenizer encode --model "$WS/tk" 2>/dev/null)
out=$("$LATHE" tokenizer decode --model "$WS/tk" $ids 2>&1)
check "tokenizer decode makes U+202E and ESC visible" grep -qF 'a \u202e b \x1b[2J' <<<"$out"
check "tokenizer decode: nothing raw" bash -c '! raw_bytes "$1"' _ "$out"

# ---- --force: nothing the user named is replaced without it ----
echo "keep me" >"$WS/existing.jsonl"
run data export bidi "$WS/existing.jsonl" >/dev/null 2>"$WS/err"
check "data export over an existing file: exit 2" test $? -eq 2
check "data export over an existing file: says --force" grep -q "existing.jsonl exists; add --force" "$WS/err"
check "data export over an existing file: the file is untouched" grep -qx "keep me" "$WS/existing.jsonl"
run data export bidi "$WS/existing.jsonl" --force >/dev/null 2>&1
check "data export --force replaces it" bash -c '! grep -q "keep me" "$1"' _ "$WS/existing.jsonl"
"$LATHE" tokenizer train --vocab 300 --out "$WS/tk" "$WS/bidi.jsonl" >/dev/null 2>"$WS/err"
check "tokenizer train over a tokenizer: exit 2 with --force hint" grep -q "tokenizer.json exists; add --force" "$WS/err"
"$LATHE" model init --arch llama --dim 32 --layers 1 --heads 4 --vocab 300 --seq 64 "$WS/tk" >/dev/null 2>&1
check "model init beside a tokenizer: exit 0" test $? -eq 0
"$LATHE" model init --arch llama --dim 32 --layers 1 --heads 4 --vocab 300 --seq 64 "$WS/tk" >/dev/null 2>"$WS/err"
check "model init over a model: refused with --force hint" grep -q "config.json exists; add --force" "$WS/err"

# ---- file modes: the workspace 0700 and its files 0600 whatever the umask; LATHE_UMASK ----
(umask 000 && "$LATHE" data import "$WS/bidi.jsonl" --workspace "$WS/open" >/dev/null 2>&1)
check "umask 000: workspace 0700" test "$(stat -c %a "$WS/open")" = 700
check "umask 000: lathe.db 0600" test "$(stat -c %a "$WS/open/lathe.db")" = 600
(umask 000 && LATHE_UMASK=007 "$LATHE" data import "$WS/bidi.jsonl" --workspace "$WS/team" >/dev/null 2>&1)
check "LATHE_UMASK=007: workspace 0770" test "$(stat -c %a "$WS/team")" = 770
check "LATHE_UMASK=007: lathe.db 0660 (the group can write it)" test "$(stat -c %a "$WS/team/lathe.db")" = 660
(umask 000 && "$LATHE" data export bidi "$WS/open.jsonl" --workspace "$WS/open" >/dev/null 2>&1)
check "umask 000: an export is 0600" test "$(stat -c %a "$WS/open.jsonl")" = 600
out=$(LATHE_UMASK=9x "$LATHE" data list --workspace "$WS/open" 2>&1)
check "a bad LATHE_UMASK is reported" grep -q "LATHE_UMASK=9x is not an octal mask" <<<"$out"

# ---- alpaca import then export is a round trip: the input field comes back on its own ----
cat >"$WS/al.jsonl" <<'EOF'
{"instruction": "Translate to French", "input": "good morning", "output": "bonjour"}
{"instruction": "Say hi", "input": "", "output": "hi"}
{"instruction": "Sum", "input": "2 and 3\nplease", "output": "5", "system": "be brief", "history": [["q1", "a1"]]}
EOF
run data import "$WS/al.jsonl" >/dev/null 2>&1
run data export al "$WS/al_out.jsonl" --format alpaca >/dev/null 2>&1
check "alpaca export: 3 rows" test "$(wc -l <"$WS/al_out.jsonl")" -eq 3
check "alpaca import then export gives back every row" python3 -c '
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
sys.exit(0 if a == b else 1)' "$WS/al.jsonl" "$WS/al_out.jsonl"
run data import "$WS/al_out.jsonl" --name al2 >/dev/null 2>&1
run data export al2 "$WS/al_out2.jsonl" --format alpaca >/dev/null 2>&1
check "alpaca round trip is stable" cmp -s "$WS/al_out.jsonl" "$WS/al_out2.jsonl"

# ---- clear messages: deep nesting, lone CR, header-only CSV, warnings the parser would hide ----
python3 -c '
import sys
d = "[" * 1200 + "]" * 1200
open(sys.argv[1], "w").write("{\"text\": \"ok\"}\n{\"text\": \"x\", \"deep\": %s}\n"
    "{\"text\": \"y\", \"text\": \"z\"}\n{\"text\": \"n\", \"score\": 1e-999}\n" % d)' "$WS/odd.jsonl"
out=$(run data import "$WS/odd.jsonl" 2>&1)
check "odd JSON: 3 rows kept, 1 bad, 2 warnings" grep -q "3 rows (text), 1 bad rows, 2 warnings" <<<"$out"
out=$(run data issues odd)
check "nesting 1201 deep is named as such, not 'malformed'" grep -q "odd.jsonl:2:1: error: JSON at line 2 is nested 1201 levels deep" <<<"$out"
check "a duplicate key is a warning" grep -q "odd.jsonl:3: warning: .*duplicate key 'text'" <<<"$out"
check "1e-999 is a warning" grep -q "odd.jsonl:4: warning: .*out of range for a double" <<<"$out"
printf '[{"text": "a"}, {"text": "b"}] {"text": "c"}\n' >"$WS/trail.json"
run data import "$WS/trail.json" >/dev/null 2>&1
out=$(run data issues trail)
check "trailing data after a JSON array is reported" grep -q "trailing data after the JSON array" <<<"$out"
printf '{"text": "a"}\r{"text": "b"}\r' >"$WS/cr.jsonl"
out=$(run data import "$WS/cr.jsonl" 2>&1)
check "lone CR line endings: named" grep -q "lines end in a lone CR" <<<"$out"
printf 'instruction,output\n' >"$WS/header.csv"
out=$(run data import "$WS/header.csv" 2>&1)
check "header-only CSV: says so" grep -q "the CSV file holds its header line and no data rows" <<<"$out"

# ---- a killed import leaves no large database behind once it is cleaned up ----
python3 -c '
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(60000):
        f.write(json.dumps({"instruction": "question %d about things" % i,
                            "output": "answer %d " % i + "lorem ipsum dolor sit amet " * 3}) + "\n")' "$WS/big.jsonl"
"$LATHE" data import "$WS/big.jsonl" --workspace "$WS/killed" >/dev/null 2>&1 &
imp=$!
python3 - "$WS/killed/lathe.db" <<'PY' # until a batch of rows is committed (at most 30 s)
import os, sqlite3, sys, time
for _ in range(600):
    try:
        if not os.path.exists(sys.argv[1] + "-wal"):
            raise sqlite3.Error("not created yet")
        if sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM samples").fetchone()[0]:
            break
    except sqlite3.Error:
        pass
    time.sleep(0.05)
PY
kill -KILL $imp 2>/dev/null
wait $imp 2>/dev/null
"$LATHE" data list --workspace "$WS/killed" >/dev/null 2>&1
check "killed import: the cleaned-up database is small ($(stat -c %s "$WS/killed/lathe.db") bytes)" \
    test "$(stat -c %s "$WS/killed/lathe.db")" -lt 1000000

# ---- a FIFO: read once (hashed as it is read), never opened twice; SIGTERM ends it ----
mkfifo "$WS/pipe.jsonl"
cat "$WS/nul_escape.jsonl" "$WS/bidi.jsonl" >"$WS/pipe.jsonl" &
writer=$!
timeout -s KILL 20 "$LATHE" data import "$WS/pipe.jsonl" --name piped --workspace "$WS/ws" \
    >"$WS/fifo.out" 2>&1
rc=$?
kill $writer 2>/dev/null
wait $writer 2>/dev/null
check "FIFO import ends (exit $rc, not killed by the timeout)" test $rc -eq 0
check "FIFO import keeps its rows" grep -q "2 rows (alpaca), 1 bad rows" "$WS/fifo.out"
sleep 30 >"$WS/pipe.jsonl" & # a writer that never writes
writer=$!
"$LATHE" data import "$WS/pipe.jsonl" --name stalled --workspace "$WS/ws" >"$WS/fifo.out" 2>&1 &
importer=$!
sleep 0.3
kill -TERM $importer
for ((i = 0; i < 100; i++)); do kill -0 $importer 2>/dev/null || break; sleep 0.1; done
kill -0 $importer 2>/dev/null && { kill -KILL $importer; echo "importer hung after SIGTERM"; }
wait $importer
rc=$?
kill $writer 2>/dev/null
wait $writer 2>/dev/null
check "stalled FIFO: SIGTERM ends the import with exit 1" test $rc -eq 1
check "stalled FIFO: says it was interrupted" grep -q "interrupted" "$WS/fifo.out"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
