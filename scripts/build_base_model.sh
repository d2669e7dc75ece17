#!/usr/bin/env bash
# build_base_model.sh - rebuild the bundled base model (assets/model) from nothing.
#
#   scripts/build_base_model.sh [OUT_DIR]      (default assets/model; LATHE=path/to/lathe)
#
# 1. generate the corpus (scripts/gen_corpus.py, seed 12: prose about people, places, jobs and
#    numbers, facts restated and lists read back, JSON in other shapes than the demo task,
#    ChatML question/answer chats);
# 2. train a byte-level BPE tokenizer on it (lathe tokenizer train);
# 3. make a random Llama model (lathe model init, seed 12, bf16, vocabulary 1536);
# 4. pretrain it on the corpus (lathe train, objective pretrain, method full) on the CPU
#    backend with 1 thread (faster than 2 for a model this small, and the thread count fixes
#    the order of every sum): the same bits every time;
# 5. export the run's last checkpoint as a Hugging Face folder (lathe export --format merged:
#    the weights in the bf16 of the initial folder, its config and tokenizer files) and record
#    the checksums in OUT_DIR/SHA256SUMS.
# Takes 8 to 35 minutes on 2 cores (idle to busy). Rebuilding reproduces
# assets/model/SHA256SUMS with the lathe of the same commit.
# BASE_STEPS=N shortens step 4 (for checking determinism quickly; not the shipped model).
set -euo pipefail
cd "$(dirname "$0")/.."
LATHE=${LATHE:-build/lathe}
OUT=${1:-assets/model}
STEPS=${BASE_STEPS:-250}
[ -x "$LATHE" ] || { echo "build_base_model: $LATHE not found (scripts/setup.sh build)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== corpus"
python3 scripts/gen_corpus.py corpus --seed 12 --paragraphs 40000 --out "$work/corpus"
echo "== tokenizer"
"$LATHE" tokenizer train --vocab 2048 --out "$work/init" "$work/corpus/corpus.txt"
echo "== random model"
"$LATHE" model init --arch llama --dim 256 --layers 4 --heads 4 --vocab 1536 --seq 256 \
    --seed 12 --dtype bf16 "$work/init"
echo "== pretraining ($STEPS steps)"
cat >"$work/pretrain.json" <<EOF
{"model": "init", "dataset": {"file": "corpus/corpus.jsonl"}, "objective": "pretrain",
 "method": "full", "seq_len": 256, "packing": true, "batch_size": 8, "max_steps": $STEPS,
 "optimizer": {"lr": 0.002},
 "schedule": {"type": "cosine", "warmup_steps": 20, "min_lr_ratio": 0.1},
 "checkpoint": {"every": 0, "keep_last": 1, "keep_best": 0}, "seed": 12}
EOF
"$LATHE" train "$work/pretrain.json" --device cpu --threads 1 --workspace "$work/ws"
echo "== export"
"$LATHE" export 1 --format merged --checkpoint last --device cpu --threads 1 \
    --workspace "$work/ws" "$work/hf"
mkdir -p "$OUT"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    cp "$work/hf/$f" "$OUT/$f"
done
(cd "$OUT" && sha256sum config.json model.safetensors tokenizer.json tokenizer_config.json \
    >SHA256SUMS && cat SHA256SUMS)
echo "build_base_model: $OUT in ${SECONDS} s"
