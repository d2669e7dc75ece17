#!/bin/bash
# Regenerates the tokenizer fixtures in this folder from the reference implementations
# (npm: gpt-3-encoder, @huggingface/tokenizers). Needs node and the network once; the tests
# themselves need neither. Usage: bash tests/data/tok/gen_fixtures.sh [SCRATCH_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=${1:-${TMPDIR:-/tmp}/lathe-tokref}
mkdir -p "$scratch"
if [ ! -d "$scratch/node_modules/@huggingface/tokenizers" ] || [ ! -d "$scratch/node_modules/gpt-3-encoder" ]; then
    (cd "$scratch" && npm init -y >/dev/null && npm install gpt-3-encoder@1.1.4 @huggingface/tokenizers@0.2.0)
fi
TOKREF="$scratch" node "$here/gen_fixtures.mjs"
