#!/usr/bin/env bash
# tui_dashboard.sh - the dashboard end to end: the real binary in a private tmux server
# (new-session -x 100 -y 30, send-keys, capture-pane). A workspace with a dataset whose rows
# hold escape sequences (imported with `lathe data import`, deduplicated) and two runs written
# through store functions by the test_dash_store fixture writer: a finished run with 3000 steps
# of metrics and a run whose process died without a word. Moves between views, opens the run,
# finds loss values and axis labels, resizes the pane (too small, then large), checks that no
# raw escape reaches the screen, quits (the terminal is restored), and `lathe watch RUN`.
# The Data view's actions as background jobs: import through the form (the path completed with
# Tab) a file whose rows hold escape sequences, dedup, split and filter, each job finishing and
# the counts changing; a refused form value. The mouse: X10 reports sent with send-keys -H
# (a click on a tab, on a list row, the wheel).
# Also the refusals that happen before the terminal: a missing workspace, a newer database.
# usage: bash tui_dashboard.sh /path/to/lathe /path/to/tests/data
set -u
LATHE=$1
FIXTURE=$(dirname "$LATHE")/tests/test_dash_store
TMP=$(mktemp -d /tmp/lathe_cli_tui.XXXXXX)
SOCK=lathe_tui_test_$$
T="tmux -L $SOCK -f /dev/null"
trap '$T kill-server >/dev/null 2>&1; rm -rf "$TMP"' EXIT
pass=0
fail=0

check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

S=dash # the session the helpers talk to
screen() { $T capture-pane -p -t "$S" 2>/dev/null; }

# Waits (at most 20 s) until the pane shows a fixed string; prints the screen on failure.
wait_for() {
    local what=$1 i
    for i in $(seq 1 100); do
        if screen | grep -qF -- "$what"; then return 0; fi
        sleep 0.2
    done
    echo "--- screen while waiting for: $what"
    screen
    return 1
}

keys() { $T send-keys -t "$S" "$@"; sleep 0.3; }

# An X10 mouse report (ESC [ M button x+33 y+33), press then release, at cell (x, y).
mouse() { # x y [button: 0 left, 64 wheel up, 65 wheel down]
    local b=$((32 + ${3:-0})) cx cy
    cx=$(printf %x $((33 + $1)))
    cy=$(printf %x $((33 + $2)))
    $T send-keys -t "$S" -H 1b 5b 4d "$(printf %x $b)" "$cx" "$cy"
    if [ "${3:-0}" -eq 0 ]; then $T send-keys -t "$S" -H 1b 5b 4d 23 "$cx" "$cy"; fi
    sleep 0.3
}

no_raw_escapes() {
    ! $T capture-pane -p -t "$S" | grep -q $'\x1b' && ! $T capture-pane -p -t "$S" | grep -q $'\xc2\x9b'
}

# ---- refusals before the terminal ----
out=$("$LATHE" --workspace "$TMP/missing" </dev/null 2>&1)
check "missing workspace: exit 1" test $? -eq 1
check "missing workspace: says so" grep -q "does not exist" <<<"$out"
check "missing workspace: nothing created" test ! -e "$TMP/missing"

if command -v sqlite3 >/dev/null; then
    "$LATHE" data list --workspace "$TMP/newer" >/dev/null 2>&1
    sqlite3 "$TMP/newer/lathe.db" "PRAGMA user_version=999" >/dev/null
    out=$("$LATHE" --workspace "$TMP/newer" </dev/null 2>&1)
    check "newer database: exit 1" test $? -eq 1
    check "newer database: says why" grep -qi "newer" <<<"$out"
fi

# ---- the workspace ----
WS=$TMP/ws
cat >"$TMP/esc.jsonl" <<'EOF'
{"instruction": "Say hi \u001b[31mRED\u001b[0m now to the whole team today and tell them the weekly meeting moved to the large room on the third floor", "output": "hi there \u009b2J friend, the meeting moved"}
{"instruction": "Say hi \u001b[31mRED\u001b[0m now to the whole team today and tell them the weekly meeting moved to the small room on the third floor", "output": "hi there \u009b2J friend, the meeting moved"}
{"instruction": "What is two plus two?", "output": "four"}
{"instruction": "bad row", "output": 5}
not json {
EOF
"$LATHE" data import "$TMP/esc.jsonl" --name escapes --workspace "$WS" >/dev/null 2>&1
check "import exit 0" test $? -eq 0
"$LATHE" data dedup escapes --threshold 0.5 --ngram 2 --workspace "$WS" >/dev/null 2>&1
check "dedup exit 0" test $? -eq 0
ids=$("$FIXTURE" --make-runs "$WS")
check "fixture runs written" test "$ids" = "1 2"

out=$("$LATHE" watch 99 --workspace "$WS" </dev/null 2>&1)
check "watch unknown run: exit 1" test $? -eq 1
check "watch unknown run: says so" grep -q "no run '99'" <<<"$out"

# ---- the dashboard in tmux ----
$T new-session -d -s dash -x 100 -y 30 \
    "env LANG=C.UTF-8 LC_ALL=C.UTF-8 LATHE_VK_LOADER=/nonexistent '$LATHE' --workspace '$WS'; echo \"EXITED \$?\"; sleep 60"
check "runs view opens" wait_for "runs (2)"
check "header names the workspace" wait_for "workspace: $WS"
check "tab bar" wait_for "1 Data   2 Wizard   3 Train   4 Runs   5 Eval   6 Devices"
check "dead run shown as failed" wait_for "failed: process gone"
check "dead run shows its last log lines" wait_for "out of memory: killed"
check "finished run's best val loss in the list" wait_for "0.6892"

keys j Enter
check "train view on run 1" wait_for "loss  run 1"
check "loss value" wait_for "loss   0.5588"
check "top axis label keeps the spike" wait_for "9.75"
check "x axis label, last step" wait_for "3000"
check "x axis label, word" wait_for "step 1"
check "NaN event highlighted" wait_for "NaN/Inf loss seen"
keys e
check "EMA toggle" wait_for "[EMA]"
keys z
check "zoom to last 100" wait_for "[last 100]"
check "zoomed axis starts at 2901" wait_for "2901"
keys L
check "log scale toggle" wait_for "[log]"
keys p
check "pause refused on a finished run" wait_for "is not running"

keys 1
check "data view lists the dataset" wait_for "escapes v2"
check "stats and histogram" wait_for "length (chars)"
keys Enter
check "bad rows with reasons" wait_for "control character"
keys Right
check "duplicates side by side" wait_for "similarity"
check "escape sequences made visible" wait_for '\x1b[31mRED'
check "no raw ESC on screen" bash -c "! $T capture-pane -p -t dash | grep -q \$'\\x1b'"
check "no C1 CSI on screen" bash -c "! $T capture-pane -p -t dash | grep -q \$'\\xc2\\x9b'"
keys Escape

keys /
keys e s c
keys Enter
check "search in the list" wait_for "/esc"

keys 5
check "eval view lists evaluations" wait_for "evaluations (2)"
check "eval metric columns" wait_for "ROUGE-L"
check "eval BLEU value" wait_for "41.2000"
keys s
check "sorted by loss" wait_for "sorted by loss"
first=$(screen | grep -nE "fixture-done|base " | head -1)
check "best loss first" grep -q "fixture-done" <<<"$first"
keys j Enter
check "samples side by side" wait_for "reference"
check "model output escapes made visible" wait_for '\x1b[2Jthere \u009b0m'
check "no raw ESC on the eval screen" bash -c "! $T capture-pane -p -t dash | grep -q \$'\\x1b'"
keys Escape

keys 6
check "devices view" wait_for "cores"
keys Tab
check "Tab wraps to Data" wait_for "datasets (1)"
keys BTab
check "Shift-Tab back to Devices" wait_for "devices"

# ---- Data view actions: background jobs with progress ----
cat >"$TMP/typed_rows.jsonl" <<'EOF'
{"instruction": "Print \u001b[2J\u001b[H and ring \u0007 the bell", "output": "done \u009b31m now"}
{"instruction": "Print \u001b[2J\u001b[H and ring \u0007 the bell", "output": "done \u009b31m now"}
{"instruction": "What is two plus two?", "output": "four"}
{"instruction": "Name a colour of the sky on a clear day", "output": "blue"}
{"instruction": "Name a fruit that is long and yellow and grows in bunches", "output": "banana"}
{"instruction": "Name a vegetable", "output": "carrot"}
EOF
keys 1
check "data view for the actions" wait_for "datasets (1)"
keys i
check "import form" wait_for "import a file"
keys -l "$TMP/typed_r"
keys Tab
check "Tab completes the file name" wait_for "typed_rows.jsonl_"
keys Down
keys -l typed
keys Enter
check "import job: the new dataset listed" wait_for "datasets (2)"
check "import job: 6 rows" wait_for "typed v1  alpaca  6 rows"
check "import job: its result line" wait_for "done"
keys Enter Right # the detail box still shows the duplicates page from before: to bad rows
check "the imported rows' escapes flagged" wait_for "control character U+001B"
check "no raw escapes after the import" no_raw_escapes
keys Escape
keys d
check "dedup form" wait_for "deduplicate typed"
keys Enter
check "dedup job: a new version with the duplicate gone" wait_for "typed v2  alpaca  5 rows"
check "dedup job: its summary" wait_for "1 exact"
keys Enter Right
check "the removed duplicate's escapes made visible" wait_for '\x1b[2J\x1b[H'
check "no raw escapes in the duplicates" no_raw_escapes
keys Escape
keys s
check "split form" wait_for "split typed"
keys C-u
keys -l 0.2
keys Enter
check "split job: the counts" wait_for "(seed 0)"
check "split job: a validation share" bash -c "$T capture-pane -p -t dash | grep -qE 'train 4, val 1'"
keys f
check "filter form" wait_for "filter typed"
keys -l abc
keys Enter
check "filter: a bad value names the field" wait_for "min length: expected a number"
keys C-u
keys Down
keys -l 40
keys Enter
check "filter job: the long rows dropped" wait_for "typed v3  alpaca  2 rows"
check "no raw escapes after the jobs" no_raw_escapes

# ---- the mouse (X10 reports, as tmux passes them to the pane) ----
mouse 41 1
check "click on the Eval tab" wait_for "evaluations (2)"
mouse 3 1
check "click on the Data tab" wait_for "datasets (2)"
mouse 5 4
check "click on the first dataset row selects it" wait_for "escapes v2  alpaca"
mouse 5 6 65
check "the wheel moves down the list" wait_for "typed v3  alpaca"
mouse 5 6 64
check "the wheel moves up the list" wait_for "escapes v2  alpaca"
keys j
check "the keyboard still works after the mouse" wait_for "typed v3  alpaca"

keys '?'
check "help" wait_for "q leaves the dashboard"
keys x

# resize mid-run: too small, then big
$T resize-window -t dash -x 70 -y 20
check "too small message" wait_for "Terminal too small"
$T resize-window -t dash -x 130 -y 45
# tmux resizes the pane a moment later: keys sent before that meet the too-small screen
check "relayout at 130x45: header" wait_for "workspace:"
keys 3
check "relayout at 130x45: aux curves" wait_for "learning rate"
$T resize-window -t dash -x 80 -y 24
check "80x24 train view" wait_for "loss  run 1"
keys 4
check "80x24 runs view" wait_for "runs (2)"

keys q
check "q leaves with exit 0" wait_for "EXITED 0"
check "terminal restored: no header left" bash -c "! $T capture-pane -p -t dash | grep -q 'Tab/1-6 views'"

# ---- lathe watch RUN ----
# (a second session first: killing the only one would take the server down under us)
$T new-session -d -s watch -x 100 -y 30 \
    "env LANG=C.UTF-8 LC_ALL=C.UTF-8 NO_COLOR=1 '$LATHE' watch fixture-done --workspace '$WS'; echo \"EXITED \$?\"; sleep 60"
$T kill-session -t dash 2>/dev/null
S=watch
check "watch opens the train view" wait_for "loss  run 1"
check "watch shows the step" wait_for "step   3000 / 3000"
keys q
check "watch quits" wait_for "EXITED 0"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
