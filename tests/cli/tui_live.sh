#!/usr/bin/env bash
# tui_live.sh - the dashboard watching a real training run: a tiny random llama and a small
# chat dataset, `lathe train --detach` in the background, `lathe watch RUN` in a private tmux
# server. The step advances on screen; q leaves while training goes on and reopening shows
# it further along; pause, resume and stop go through the store and the trainer's
# acknowledgements show up (status paused, running, stopped, control events). Then the wizard:
# dataset, model folder (Tab completion), two questions, the plan with its estimate, save, and
# start training from it, watched in the Train view; before starting, the config is edited in
# the dashboard (a value that is not a number and one the training config parser refuses are
# named, a good one is written to the config file) and the epoch-based run shows its total steps
# and an ETA. An evaluation started from the Eval view (the stopped run and the zero-shot
# baseline on the validation split) runs as a background job and its rows join the table.
# Vulkan is kept out (LATHE_VK_LOADER points
# nowhere): the plan's device probe would otherwise load lavapipe, whose JIT leaks trip the
# sanitizer build.
# usage: bash tui_live.sh /path/to/lathe /path/to/tests/data
set -u
LATHE=$1
TMP=$(mktemp -d /tmp/lathe_cli_tui_live.XXXXXX)
SOCK=lathe_tui_live_$$
T="tmux -L $SOCK -f /dev/null"
WS=$TMP/ws
RUN=""
cleanup() {
    $T kill-server >/dev/null 2>&1
    if [ -n "$RUN" ]; then "$LATHE" runs stop "$RUN" --workspace "$WS" >/dev/null 2>&1; fi
    sleep 0.5
    rm -rf "$TMP"
}
trap cleanup EXIT
pass=0
fail=0

check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

S=live
screen() { $T capture-pane -p -t "$S" 2>/dev/null; }

# Waits (at most 30 s) until the pane shows a fixed string; prints the screen on failure.
wait_for() {
    local what=$1 i
    for i in $(seq 1 150); do
        if screen | grep -qF -- "$what"; then return 0; fi
        sleep 0.2
    done
    echo "--- screen while waiting for: $what"
    screen
    return 1
}

keys() { $T send-keys -t "$S" "$@"; sleep 0.3; }

# The step shown in the status pane ("step   N / M"), or -1.
shown_step() {
    local s
    s=$(screen | sed -n 's/.*step   \([0-9][0-9]*\) \/ .*/\1/p' | head -1)
    echo "${s:--1}"
}

# ---- a tiny model and dataset ----
words=(the cat sat on a mat dog ran far away quick brown fox jumps over lazy river)
RANDOM=7
for ((i = 0; i < 48; i++)); do
    q="" a=""
    for ((j = 0; j < 3 + RANDOM % 5; j++)); do q="$q ${words[RANDOM % 17]}"; done
    for ((j = 0; j < 2 + RANDOM % 8; j++)); do a="$a ${words[RANDOM % 17]}"; done
    printf '{"instruction": "say%s", "output": "%s"}\n' "$q" "${a# }"
done >"$TMP/chat.jsonl"
"$LATHE" tokenizer train --vocab 300 --out "$TMP/m" "$TMP/chat.jsonl" >/dev/null 2>&1
"$LATHE" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 300 \
    --seq 64 --seed 3 "$TMP/m" >/dev/null 2>&1
"$LATHE" data import "$TMP/chat.jsonl" --name chat --workspace "$WS" >/dev/null 2>&1
"$LATHE" data split chat --val 0.2 --test 0 --workspace "$WS" >/dev/null 2>&1
cat >"$TMP/lora.json" <<EOF
{"model": "$TMP/m", "dataset": "chat", "method": "lora",
 "lora": {"r": 4, "alpha": 8, "target_modules": "all-linear"},
 "seq_len": 64, "batch_size": 2, "max_steps": 100000, "eval": {"every": 20}, "seed": 3}
EOF
RUN=$("$LATHE" train --device cpu --threads 1 --detach "$TMP/lora.json" --workspace "$WS" 2>/dev/null)
check "train --detach prints a run id" grep -qE '^[0-9]+$' <<<"$RUN"

# ---- watch it ----
$T new-session -d -s live -x 100 -y 30 \
    "env LANG=C.UTF-8 LC_ALL=C.UTF-8 LATHE_VK_LOADER=/nonexistent '$LATHE' watch '$RUN' --workspace '$WS'; echo \"EXITED \$?\"; sleep 60"
check "watch opens the run" wait_for "loss  run $RUN"
check "the run is running" wait_for "running"
check "the header counts it" wait_for "1 running"
first=-1
for i in $(seq 1 100); do
    first=$(shown_step)
    [ "$first" -gt 0 ] && break
    sleep 0.2
done
check "a step is shown ($first)" test "$first" -gt 0
later=$first
for i in $(seq 1 150); do
    later=$(shown_step)
    [ "$later" -gt "$first" ] && break
    sleep 0.2
done
check "the step advances ($first -> $later)" test "$later" -gt "$first"
check "validation loss arrives" wait_for "val    "

# q leaves; training goes on; reopening shows it further along
keys q
check "q leaves" wait_for "EXITED 0"
status=$("$LATHE" runs show "$RUN" --json --workspace "$WS" 2>/dev/null)
check "training keeps running after q" grep -q '"status":[[:space:]]*"running"' <<<"$status"
$T new-session -d -s live2 -x 100 -y 30 \
    "env LANG=C.UTF-8 LC_ALL=C.UTF-8 LATHE_VK_LOADER=/nonexistent '$LATHE' --workspace '$WS'; echo \"EXITED \$?\"; sleep 60"
$T kill-session -t live 2>/dev/null
S=live2
check "reopened dashboard lists the run" wait_for "runs (1)"
keys Enter
check "Enter opens it in the Train view" wait_for "loss  run $RUN"
again=-1
for i in $(seq 1 100); do
    again=$(shown_step)
    [ "$again" -gt "$later" ] && break
    sleep 0.2
done
check "reopened at a later step ($later -> $again)" test "$again" -gt "$later"

# control through the store, acknowledged by the trainer
keys p
check "pause acknowledged: status paused" wait_for "paused"
check "pause event" wait_for "pause requested at step"
keys r
check "resume acknowledged" wait_for "resume requested at step"
keys s
check "stop acknowledged: status stopped" wait_for "stopped"
check "header: no jobs running" wait_for "no jobs running"

# an evaluation started from the Eval view, as a background job
keys 5
check "eval view" wait_for "evaluations (0)"
keys e
check "new evaluation form" wait_for "new evaluation"
check "the form offers the run" wait_for "runs "
keys Down
keys C-u
keys -l val
keys Down Down Down
keys -l 4
keys Enter
check "the evaluation's rows join the table" wait_for "evaluations (2)"
check "the zero-shot baseline row" wait_for "base zero-shot"
check "the job says done" wait_for "done"
out=$("$LATHE" eval show 1 --format json --workspace "$WS" 2>/dev/null)
check "the evaluation is in the store" grep -q '"n_rows"' <<<"$out"
keys q
check "q leaves again" wait_for "EXITED 0"
RUN=""

# ---- the wizard: dataset, model folder, questions, plan, save, start training ----
$T new-session -d -s wiz -x 100 -y 30 \
    "env LANG=C.UTF-8 LC_ALL=C.UTF-8 LATHE_VK_LOADER=/nonexistent '$LATHE' --workspace '$WS'; echo \"EXITED \$?\"; sleep 60"
$T kill-session -t live2 2>/dev/null
S=wiz
check "dashboard for the wizard" wait_for "runs (1)"
keys 2
check "wizard asks for a dataset" wait_for "Which dataset?"
keys Enter
check "wizard asks for the model folder" wait_for "The model folder"
keys -l "$TMP/m"
keys Tab
check "Tab completes the model folder" wait_for "$TMP/m/"
keys Enter
check "first question of the tree" wait_for "What should the model gain from this work?"
keys 3 Enter
check "the answer is kept" wait_for "answered need=style"
check "second question" wait_for "few-shot prompting"
keys 2 Enter
check "a method with its rationale" wait_for "method: lora"
check "memory estimate table" wait_for "peak GB"
check "the path with reasons" wait_for "How many training examples are there?"
keys s
check "plan and config saved" wait_for "t: start training"
keys e
check "config editor opens on the learning rate" wait_for ">optimizer.lr"
keys C-u
keys -l abc
keys Enter
check "not a number: the field named" wait_for "optimizer.lr: expected a number, got 'abc'"
keys C-u
keys -l -- -1
keys Enter
check "refused by the training config parser: the field named" wait_for '$.optimizer.lr'
keys C-u
keys -l 0.0005
keys Enter
check "edited config saved" wait_for "config edited and saved"
cfg=$(ls "$WS"/plans/*.json 2>/dev/null | head -1)
check "the config file holds the new learning rate" grep -qE '"lr":[[:space:]]*0.0005' "$cfg"
keys t
check "training started from the wizard: Train view" wait_for "loss  run 2"
check "the wizard's run is running" wait_for "running"
RUN=2
w1=-1
for i in $(seq 1 150); do
    w1=$(screen | sed -n 's/.*step   \([0-9][0-9]*\) .*/\1/p' | head -1)
    [ "${w1:--1}" -gt 1 ] && break
    sleep 0.2
done
check "the wizard's run advances (${w1:-none})" test "${w1:--1}" -gt 1
# the config counts epochs: the trainer records the steps they come to, so the view has a total
check "epoch-based run: step of a total" bash -c "$T capture-pane -p -t wiz | grep -qE 'step +[0-9]+ / [0-9]+'"
# the planned run is short (a few epochs of 38 examples): it ends on its own
check "the wizard's run finishes" wait_for "done"
keys q
check "q leaves the wizard session" wait_for "EXITED 0"
RUN=""

echo "$pass passed, $fail failed"
test "$fail" -eq 0
