#!/bin/bash
# demo.sh - end-to-end check of `lathe demo` on the bundled model and example data, CPU
# backend: the planted duplicates and malformed rows are found, the fine-tuned model's exact
# match beats the base model zero-shot and 2-shot, the exports load back (the merged folder is
# stored in the base's bf16, so its greedy text may differ from base + adapter), the bundled model
# matches its recorded checksums, and a folder the demo did not make is never touched.
# usage: bash demo.sh /path/to/lathe /path/to/tests/data
lathe=$1
data=$2
assets=$(cd "$data/../../assets" && pwd)
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, command...
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}
jget() { # jget FILE PYTHON-EXPRESSION-ON-j
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}
# what scripts/gen_corpus.py planted in assets/data/people.jsonl
planted() { python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import gen_corpus; \
print(gen_corpus.PLANTED[sys.argv[2]])" "$assets/../scripts" "$1"; }

check "demo --help" "$lathe" demo --help >/dev/null
"$lathe" demo --bogus >/dev/null 2>&1
check "unknown option is a usage error" test $? -eq 2
check "bundled model matches SHA256SUMS" bash -c "cd '$assets/model' && sha256sum -c --quiet SHA256SUMS"
python3 "$assets/../scripts/gen_corpus.py" examples --out "$tmp/regen" >/dev/null
check "example data regenerates bit for bit" cmp -s "$tmp/regen/people.jsonl" "$assets/data/people.jsonl"

mkdir -p "$tmp/mine" && echo keep >"$tmp/mine/notes.txt"
"$lathe" demo --workspace "$tmp/mine" --assets "$assets" >/dev/null 2>"$tmp/err"
check "a folder the demo did not make is refused" test $? -eq 1
check "refusal says why" grep -q "not made by 'lathe demo'" "$tmp/err"
check "the folder is untouched" test -s "$tmp/mine/notes.txt"

ws=$tmp/ws
start=$(date +%s)
# The sanitizer build (LATHE_TEST_QUICK=1, set by tests/CMakeLists.txt) runs every step with
# one training epoch: the same code paths, checked for memory errors, in a few minutes. Whether
# the fine-tune beats the baselines is checked by the Release build, which trains in full.
quick=${LATHE_TEST_QUICK:-0}
epochs=()
[ "$quick" = 1 ] && epochs=(--epochs 1)
"$lathe" demo --workspace "$ws" --assets "$assets" --device cpu --json "${epochs[@]}" \
    >"$tmp/demo.json" 2>"$tmp/demo.log"
rc=$?
echo "lathe demo: exit $rc in $(($(date +%s) - start)) s"
check "demo exits 0" test $rc -eq 0
[ $rc -eq 0 ] || tail -30 "$tmp/demo.log"
check "demo JSON says ok" test "$(jget "$tmp/demo.json" 'j["ok"]')" = True
check "malformed rows reported" test "$(jget "$tmp/demo.json" 'j["import"]["bad_rows"]')" -eq "$(planted malformed)"
check "exact duplicates found" test "$(jget "$tmp/demo.json" 'j["dedup"]["exact"]')" -eq "$(planted exact)"
check "near duplicates found" test "$(jget "$tmp/demo.json" 'j["dedup"]["near"]')" -eq "$(planted near)"
check "issues listed with reasons" test "$("$lathe" data issues people --workspace "$ws" | grep -c 'error:')" -eq "$(planted malformed)"
check "progress lines while training" grep -q "^step [0-9]*/[0-9]*" "$tmp/demo.log"
check "where to look next" grep -q "where to look next" "$tmp/demo.log"

em() { jget "$tmp/demo.json" "[e['exact_match'] for e in j['eval'] if e['system'] == '$1'][0]"; }
em0=$(em "base zero-shot")
em2=$(em "base 2-shot")
emf=$(em "run 1")
echo "exact match: base zero-shot $em0, base 2-shot $em2, fine-tuned $emf"
if [ "$quick" = 1 ]; then
    echo "quick run (one epoch): the exact-match comparison is checked by the Release build"
    check "exact match reported for every system" test -n "$em0" -a -n "$em2" -a -n "$emf"
else
    check "fine-tuned beats zero-shot" awk -v a="$emf" -v b="$em0" 'BEGIN{exit !(a > b)}'
    check "fine-tuned beats 2-shot" awk -v a="$emf" -v b="$em2" 'BEGIN{exit !(a > b)}'
fi
"$lathe" eval show 3 --format json --workspace "$ws" >"$tmp/show.json"
check "the store agrees (eval show)" grep -q '"system":"run 1"' "$tmp/show.json"

ids=$("$lathe" tokenizer encode --model "$assets/model" --file <(printf 'Nina is 27 and lives in Oslo.'))
ids=$(echo "$ids" | tr ' ' ',')
"$lathe" generate --model "$assets/model" --adapter "$ws/exports/people-lora" --prompt-ids "$ids" \
    --max-tokens 8 --device cpu --threads 2 >"$tmp/gen1" 2>&1
check "exported PEFT adapter loads back" test $? -eq 0
"$lathe" generate --model "$ws/exports/people-merged" --prompt-ids "$ids" --max-tokens 8 \
    --device cpu --threads 2 >"$tmp/gen2" 2>&1
check "exported merged model loads back" test $? -eq 0
check "merged model generates" test -s "$tmp/gen2"

"$lathe" demo --workspace "$ws" --assets "$assets" --bogus >/dev/null 2>&1
check "a bad option leaves the earlier demo alone" test -s "$ws/lathe.db"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
