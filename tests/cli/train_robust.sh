#!/bin/bash
# train_robust.sh - training runs under hostile conditions, on a tiny random model: a relative
# --workspace used again from another folder (resume and export find their checkpoints);
# kill -9 mid-run: the run is seen failed (process gone) and a resume keeps every step of
# the metric curve; a checkpoint that cannot be written fails the run; a model with NaN
# weights makes generate fail, not print nothing, and its GGUF export fail its check without
# leaving files behind.
# usage: bash train_robust.sh /path/to/lathe /path/to/tests/data
lathe=$1
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}

# a small chat dataset, a tokenizer trained on it and a random llama with that vocabulary
for ((i = 0; i < 24; i++)); do
    printf '{"instruction": "say the cat %d", "output": "dog %d ran far"}\n' $i $((i % 5))
done >"$tmp/chat.jsonl"
"$lathe" tokenizer train --vocab 300 --out "$tmp/m" "$tmp/chat.jsonl" >/dev/null 2>&1
"$lathe" model init --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --vocab 300 \
    --seq 64 --seed 3 "$tmp/m" >/dev/null
mkdir -p "$tmp/a" "$tmp/b"
cat >"$tmp/a/cfg.json" <<EOF
{"model": "$tmp/m", "dataset": "chat", "method": "full", "seq_len": 64, "batch_size": 4,
 "epochs": 2, "checkpoint": {"every": 2}, "seed": 1}
EOF

# a relative --workspace: the run is resumed and exported from another folder
cd "$tmp/a" || exit 1
"$lathe" data import "$tmp/chat.jsonl" --name chat --workspace ws >/dev/null
LATHE_TRAIN_STOP_AFTER=3 "$lathe" train --device cpu --threads 1 cfg.json --workspace ws \
    >/dev/null 2>&1
check "relative workspace: run stopped with a checkpoint" test -s ws/runs/1/checkpoints/step-3.ckpt
cd "$tmp/b" || exit 1
"$lathe" train --resume 1 --device cpu --threads 1 --workspace ../a/ws >"$tmp/resume.out" 2>&1
check "relative workspace: resume from another folder exits 0" test $? -eq 0
"$lathe" export 1 --format merged out --device cpu --workspace ../a/ws >"$tmp/export.out" 2>&1
check "relative workspace: export from another folder exits 0" test $? -eq 0
check "relative workspace: the model was written" test -s out/model.safetensors
"$lathe" runs show 1 --workspace ../a/ws >"$tmp/show.out" 2>&1
check "relative workspace: the run is done" grep -q "done" "$tmp/show.out"
cd "$tmp" || exit 1

# kill -9 in the middle of a run, then --resume: the loss curve has every step
cat >"$tmp/long.json" <<EOF
{"model": "$tmp/m", "dataset": "chat", "method": "full", "seq_len": 64, "batch_size": 4,
 "epochs": 40, "checkpoint": {"every": 3, "keep_last": 2}, "seed": 1}
EOF
ws=$tmp/ws9
"$lathe" data import "$tmp/chat.jsonl" --name chat --workspace "$ws" >/dev/null
"$lathe" train --device cpu --threads 1 "$tmp/long.json" --workspace "$ws" >/dev/null 2>&1 &
pid=$!
for ((i = 0; i < 600; i++)); do
    ls "$ws"/runs/1/checkpoints/step-*.ckpt >/dev/null 2>&1 && break
    sleep 0.01
done
sleep 0.$((RANDOM % 3))
kill -KILL $pid
wait $pid 2>/dev/null
# any reader marks the dead run failed; a stop request to it is refused
"$lathe" runs --workspace "$ws" >"$tmp/runs9.out" 2>&1
check "killed run: lathe runs lists it failed" grep -q "^1 *failed" "$tmp/runs9.out"
"$lathe" runs show 1 --workspace "$ws" >"$tmp/show9.out" 2>&1
check "killed run: runs show says the process is gone" grep -q "^run 1  failed: process gone" "$tmp/show9.out"
"$lathe" runs stop 1 --workspace "$ws" >/dev/null 2>"$tmp/stop9.out"
check "killed run: runs stop exits 1" test $? -eq 1
check "killed run: runs stop says why" grep -q "run 1 is failed (process gone" "$tmp/stop9.out"
"$lathe" train --resume 1 --device cpu --threads 1 --workspace "$ws" >"$tmp/resume9.out" 2>&1
check "kill -9 then resume: exits 0" test $? -eq 0
check "kill -9 then resume: resumed from a checkpoint" grep -q "resumed from" "$tmp/resume9.out"
missing=$(python3 - "$ws/lathe.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
steps = {r[0] for r in db.execute("SELECT step FROM metrics WHERE run_id=1 AND name='loss'")}
print(len([s for s in range(1, 241) if s not in steps]))
PY
)
check "kill -9 then resume: every step of the loss curve is there ($missing missing)" test "$missing" = 0

# files a run writes are private: checkpoints 0600 in a 0700 run folder (umask 022 here)
check "checkpoint files are 0600" \
    test "$(stat -c %a "$(ls "$ws"/runs/1/checkpoints/*.ckpt | head -1)")" = 600
check "the run folder is 0700" test "$(stat -c %a "$ws/runs/1")" = 700

# a checkpoint that cannot be written (its name taken by a folder) fails the run with the reason
ws=$tmp/ws8
"$lathe" data import "$tmp/chat.jsonl" --name chat --workspace "$ws" >/dev/null
mkdir -p "$ws/runs/1/checkpoints/step-4.ckpt"
"$lathe" train --device cpu --threads 1 "$tmp/a/cfg.json" --workspace "$ws" >"$tmp/ck.out" 2>&1
check "unwritable checkpoint: train exits 1" test $? -eq 1
check "unwritable checkpoint: the reason names the step and the file" \
    grep -q "checkpoint at step 4 could not be written: .*step-4.ckpt" "$tmp/ck.out"
"$lathe" runs show 1 --workspace "$ws" >"$tmp/ck.show" 2>&1
check "unwritable checkpoint: the run is failed, not done" grep -q "^run 1  failed" "$tmp/ck.show"
check "unwritable checkpoint: no step after it was trained" \
    test "$(sed -n 's/^  steps *//p' "$tmp/ck.show")" = 4

# a model whose weights are NaN: generate fails naming the cause, never empty text with exit 0
cp -r "$tmp/m" "$tmp/mnan"
python3 - "$tmp/mnan/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
for k, v in json.loads(b[8:8 + n]).items():
    if k != '__metadata__' and v['dtype'] == 'F32':
        s, e = v['data_offsets']
        b[8 + n + s:8 + n + e] = struct.pack('<f', float('nan')) * ((e - s) // 4)
open(p, 'wb').write(b)
PY
"$lathe" generate --model "$tmp/mnan" --device cpu --threads 1 --prompt "say the cat" \
    >"$tmp/nan.out" 2>"$tmp/nan.err"
check "NaN weights: generate exits 1" test $? -eq 1
check "NaN weights: the error says the logits are not finite" grep -q "logits are not finite (NaN" "$tmp/nan.err"

# a GGUF export whose check fails leaves nothing behind, so the next attempt is not "exists"
mkdir -p "$tmp/gg"
for attempt in 1 2; do
    "$lathe" export --model "$tmp/mnan" --format gguf "$tmp/gg/m.gguf" --device cpu --threads 1 \
        >/dev/null 2>"$tmp/gg.err"
    check "failed GGUF check (attempt $attempt): exit 1" test $? -eq 1
    check "failed GGUF check (attempt $attempt): the check failed, not 'exists'" \
        bash -c '! grep -q "exists" "$1" && grep -q "check of" "$1"' _ "$tmp/gg.err"
    check "failed GGUF check (attempt $attempt): no .gguf or .Modelfile left" \
        test -z "$(ls -A "$tmp/gg")"
done

# generate --model FILE.gguf --prompt reads the tokenizer from the GGUF's metadata
"$lathe" export --model "$tmp/m" --format gguf "$tmp/m.gguf" --no-check --device cpu >/dev/null 2>&1
"$lathe" generate --model "$tmp/m.gguf" --prompt "say the cat" --max-tokens 3 --device cpu \
    --threads 1 >/dev/null 2>"$tmp/gen.err"
check "generate --model X.gguf --prompt: exit 0" test $? -eq 0
check "a GGUF export is 0600 like every file lathe writes" test "$(stat -c %a "$tmp/m.gguf")" = 600
cp "$tmp/m.gguf" "$tmp/m.bin"
"$lathe" generate --model "$tmp/m.bin" --prompt "hi" --device cpu >/dev/null 2>"$tmp/gen.err"
check "generate --model FILE (not a folder): says so" grep -q "is a file, not a model folder" "$tmp/gen.err"

out=$("$lathe" plan --model "$tmp/m" --data chat --out "$tmp/a/cfg.json" --workspace "$tmp/a/ws" --no-calibrate 2>&1)
check "plan --out over an existing file: refused with --force hint" grep -q "cfg.json exists; add --force" <<<"$out"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
