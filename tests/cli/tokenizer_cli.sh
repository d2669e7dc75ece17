#!/bin/bash
# tokenizer_cli.sh - `lathe tokenizer encode|decode|train` end to end: ids round-trip through
# the command line, --json shows pieces, --chat renders and marks assistant tokens, bad input
# gives exit 1 or 2 with a message, model strings reach the terminal sanitized.
# Usage: bash tokenizer_cli.sh /path/to/lathe /path/to/tests/data
lathe=$1
data=$2/tok
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # check NAME CONDITION-EXIT-STATUS
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

"$lathe" tokenizer --help > "$tmp/help" 2>&1
check "tokenizer --help exits 0" $?
grep -q "tokenizer train" "$tmp/help"
check "help names train" $?
"$lathe" tokenizer > /dev/null 2>&1
[ $? -eq 2 ]; check "no subcommand is a usage error" $?
"$lathe" tokenizer encode --help > /dev/null 2>&1
check "encode --help exits 0" $?

# round trip through the command line, for each fixture model
text=$'Hello world, it\'s 12345 tokens\n\n  and CJK 日本語 😀 café'
for m in llama3 qwen2 sp sp_meta; do
    ids=$(printf '%s' "$text" | "$lathe" tokenizer encode --model "$data/$m" --no-add-special)
    check "$m: encode exits 0" $?
    [ -n "$ids" ]; check "$m: ids printed" $?
    # shellcheck disable=SC2086
    "$lathe" tokenizer decode --model "$data/$m" $ids > "$tmp/dec"
    check "$m: decode exits 0" $?
    printf '%s\n' "$text" | cmp -s - "$tmp/dec"
    check "$m: decode(encode(text)) == text" $?
done
# ids from stdin too
printf 'abc' | "$lathe" tokenizer encode --model "$data/llama3" --no-add-special \
    | "$lathe" tokenizer decode --model "$data/llama3" > "$tmp/dec2"
printf 'abc\n' | cmp -s - "$tmp/dec2"
check "decode reads ids from stdin" $?

# bos from the post-processor, and --json pieces
printf 'Hi' | "$lathe" tokenizer encode --model "$data/llama3" --json > "$tmp/j"
check "encode --json exits 0" $?
grep -q '"piece": "<|begin_of_text|>"' "$tmp/j" && grep -q '"special": true' "$tmp/j"
check "--json shows the bos piece as special" $?

# chat
cat > "$tmp/conv.json" <<'JSON'
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
 {"role": "assistant", "content": "Hello!"}]}
JSON
"$lathe" tokenizer encode --model "$data/qwen2" --chat --file "$tmp/conv.json" > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] && grep -q -- "--template" "$tmp/err"
check "no chat template: exit 1, says how to choose one" $?
"$lathe" tokenizer encode --model "$data/qwen2" --chat --template chatml --json \
    --file "$tmp/conv.json" > "$tmp/cj"
check "--chat --template chatml exits 0" $?
grep -q '"template": "chatml"' "$tmp/cj"
check "--json names the template family" $?
n_assist=$(grep -c '"assistant": true' "$tmp/cj")
[ "$n_assist" -ge 2 ]; check "assistant tokens marked ($n_assist)" $?
grep '"assistant": true' "$tmp/cj" | grep -q '<|im_end|>'
check "the end-of-turn marker is an assistant token" $?
"$lathe" tokenizer encode --model "$data/qwen2" --chat --template nope < "$tmp/conv.json" > /dev/null 2>&1
[ $? -eq 2 ]; check "--template nope is a usage error" $?
echo '{"messages": [{"role": "user"}]}' | "$lathe" tokenizer encode --model "$data/qwen2" --chat \
    --template chatml > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] && grep -q "messages\[0\]" "$tmp/err"
check "a bad conversation names the message" $?

# bad input
"$lathe" tokenizer encode --model "$tmp/none" < /dev/null > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] && grep -q "tokenizer.json" "$tmp/err"
check "a missing model names tokenizer.json" $?
mkdir -p "$tmp/bad" && printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}' > "$tmp/bad/tokenizer.json"
"$lathe" tokenizer encode --model "$tmp/bad" < /dev/null > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] && grep -q "model.merges\[0\]" "$tmp/err"
check "a bad merge names model.merges[0]" $?
"$lathe" tokenizer decode --model "$data/llama3" 999999 > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] && grep -q "999999" "$tmp/err"
check "an unknown id is an error" $?
"$lathe" tokenizer decode --model "$data/llama3" abc > /dev/null 2>&1
[ $? -eq 2 ]; check "a non-number id is a usage error" $?

# model strings are sanitized: byte 0x1b decodes to a visible escape, never a raw ESC
"$lathe" tokenizer decode --model "$data/llama3" 27 > "$tmp/esc"
! grep -q $'\x1b' "$tmp/esc" && grep -q 'x1b' "$tmp/esc"
check "ESC is shown escaped" $?

# train
for i in $(seq 1 200); do echo "the lathe tokenizer trains merges on pairs of bytes $i"; done > "$tmp/corpus.txt"
"$lathe" tokenizer train --vocab 300 --out "$tmp/trained" "$tmp/corpus.txt" 2> /dev/null
check "train exits 0" $?
[ -f "$tmp/trained/tokenizer.json" ] && [ -f "$tmp/trained/tokenizer_config.json" ]
check "train writes tokenizer.json and tokenizer_config.json" $?
ids=$(printf 'the lathe tokenizer' | "$lathe" tokenizer encode --model "$tmp/trained")
n=$(echo "$ids" | wc -w)
[ "$n" -ge 1 ] && [ "$n" -le 6 ]; check "trained tokenizer merges frequent words ($n tokens)" $?
"$lathe" tokenizer train --out "$tmp/x" "$tmp/corpus.txt" > /dev/null 2>&1
[ $? -eq 2 ]; check "train without --vocab is a usage error" $?

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
