#!/usr/bin/env bash
# capture_views.sh - text captures of every dashboard view, for the README's "What the views
# look like". Opens `lathe` on a workspace in a private tmux server (100x30, UTF-8, no colour
# needed: capture-pane -p keeps only the text), visits Data, Wizard, Train, Runs, Eval and
# Devices, plus the Data view's import form, and prints each screen in a fenced block. The
# captures are checked to hold no escape character.
#
# usage: scripts/capture_views.sh WORKSPACE [LATHE]
#   WORKSPACE  a workspace with data, runs and evaluations, e.g. one made by
#              `lathe demo --workspace /tmp/x`
#   LATHE      the lathe binary (default: build/lathe)
set -eu
WS=${1:?usage: scripts/capture_views.sh WORKSPACE [LATHE]}
LATHE=${2:-build/lathe}
command -v tmux >/dev/null || { echo "capture_views.sh: tmux is needed" >&2; exit 1; }
[ -x "$LATHE" ] || { echo "capture_views.sh: no lathe binary at $LATHE" >&2; exit 1; }
[ -f "$WS/lathe.db" ] || { echo "capture_views.sh: $WS holds no lathe.db" >&2; exit 1; }
LATHE=$(cd "$(dirname "$LATHE")" && pwd)/$(basename "$LATHE")
WS=$(cd "$WS" && pwd)

SOCK=lathe_capture_$$
T="tmux -L $SOCK -f /dev/null"
trap '$T kill-server >/dev/null 2>&1 || true' EXIT
$T new-session -d -s cap -x 100 -y 30 \
    "env LANG=C.UTF-8 LC_ALL=C.UTF-8 '$LATHE' --workspace '$WS'"

screen() { $T capture-pane -p -t cap; }
keys() { $T send-keys -t cap "$@"; sleep 0.5; }
# Waits (at most 20 s) for a fixed string on the screen.
wait_for() {
    local i
    for i in $(seq 1 100); do
        if screen | grep -qF -- "$1"; then return 0; fi
        sleep 0.2
    done
    echo "capture_views.sh: the screen never showed '$1'" >&2
    screen >&2
    exit 1
}
# Prints the screen under a heading; the workspace path is shown as WORKSPACE.
show() {
    local text
    sleep 1 # let the view finish loading (histograms, curves)
    text=$(screen)
    if grep -q $'\x1b' <<<"$text"; then
        echo "capture_views.sh: an escape character reached the screen in $1" >&2
        exit 1
    fi
    printf '%s\n\n```\n%s\n```\n\n' "$1" "${text//$WS/WORKSPACE}"
}

wait_for "workspace:"
keys 1
wait_for "datasets ("
show "**Data** (datasets, stats and length histogram, bad rows or removed duplicates, the last background job):"
keys i
wait_for "import a file"
show "**Data, i** (import a file as a background job; Tab completes the path):"
keys Escape
keys 2
wait_for "Which dataset?"
show "**Wizard** (dataset, model folder, the decision tree's questions, the method with its memory estimate, the config editor):"
keys 4
wait_for "runs ("
keys Enter
wait_for "loss  run"
show "**Train** (the selected run: loss curve, numbers, ETA, events):"
keys 4
wait_for "runs ("
show "**Runs** (every run; Space marks runs to overlay their curves, d shows the config diff):"
keys 5
wait_for "evaluations ("
show "**Eval** (every evaluation, sortable; e starts one; samples side by side):"
keys 6
wait_for "devices"
show "**Devices**:"
keys q
