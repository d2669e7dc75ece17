#!/bin/sh
# gen.sh - regenerate the tiny model fixtures and their PyTorch reference outputs.
#
# Each folder holds a Hugging Face style model (config.json + model.safetensors), ref.safetensors
# (input_ids [B,T] I32, logits [B,T,V] F32, hidden.0..L and hidden.final [B,T,dim] F32) and
# generate.txt (a prompt and the greedy continuation the reference computes with a KV cache).
# The reference tool is the plain-PyTorch torch_ref.py kept beside the repository
# (TORCH_REF overrides its path); run with Debian's python3 (python3-torch):
#   sh tests/data/models/gen.sh
# The long fixtures (64 tokens, past the original context of a scaled rotary or past a sliding
# window) run through scaled_ref.py, which adds YaRN and the window mask to torch_ref.py.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
ref=${TORCH_REF:-$repo/../shared/tools/torch_ref.py}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" "$ref" tokens --vocab 128 --n 18 --seed 1 --out "$tmp/tok.bin"

# name | init flags | save dtype
gen() {
    name=$1; dtype=$2; shift 2
    out="$here/$name"
    rm -rf "$out"
    "$py" "$ref" init "$@" --seq 8 --batch 2 --vocab 128 --layers 2 --seed 7 --save-dtype "$dtype" \
        --out "$out"
    "$py" "$ref" ref --model "$out" --tokens "$tmp/tok.bin" --batch 2 --seq 8 --out "$tmp/ref.st"
    # keep the forward outputs only (no gradients): the fixture stays small. TORCH_REF_REEXEC
    # stops the imported tool from re-executing this interpreter (it would lose the script on stdin)
    TORCH_REF_REEXEC=1 "$py" - "$ref" "$tmp/ref.st" "$out/ref.safetensors" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)
t, meta = tr.load_safetensors(sys.argv[2])
keep = {k: v for k, v in t.items() if k in ("input_ids", "logits") or k.startswith("hidden.")}
tr.save_safetensors(sys.argv[3], keep, {"format": "torch_ref", "arch": meta.get("arch", "")})
PY
    prompt=5,17,99,3,42
    ids=$("$py" "$ref" generate --model "$out" --prompt-ids $prompt --max-new 12 --margins \
        | tee "$tmp/gen.txt" | head -n 1)
    margin=$(grep '^min_margin' "$tmp/gen.txt")
    printf 'prompt %s\ngreedy %s\n# %s\n' "$prompt" "$ids" "$margin" >"$out/generate.txt"
}

gen llama_gqa f32 --arch llama --dim 32 --heads 4 --kv-heads 2 --ffn 64 --untie
gen llama_tied bf16 --arch llama --dim 32 --heads 4 --kv-heads 4 --ffn 64 --tie
gen qwen2_bias f16 --arch qwen2 --dim 32 --heads 4 --kv-heads 2 --ffn 64 --untie
gen gpt2 f32 --arch gpt2 --dim 32 --heads 4 --ffn 64 --max-pos 64 --tie

# long fixtures: one sequence of 64 tokens past the scaled model's original context (32 for
# llama3: torch_ref caps it at max_pos/2; 16 for yarn) or past a sliding window of 16.
# name | seed (one whose greedy margins are wide) | config edit (python, on dict c) | init flags
"$py" "$ref" tokens --vocab 128 --n 80 --seed 3 --out "$tmp/tok64.bin"
gen_long() {
    name=$1; seed=$2; edit=$3; shift 3
    out="$here/$name"
    rm -rf "$out"
    "$py" "$ref" init "$@" --seq 64 --batch 1 --vocab 128 --layers 2 --dim 32 --ffn 64 \
        --max-pos 64 --untie --seed "$seed" --save-dtype bf16 --out "$out"
    "$py" - "$out/config.json" "$edit" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
    "$py" "$here/scaled_ref.py" "$ref" ref --model "$out" --tokens "$tmp/tok64.bin" --batch 1 \
        --seq 64 --out "$tmp/ref.st"
    TORCH_REF_REEXEC=1 "$py" - "$ref" "$tmp/ref.st" "$out/ref.safetensors" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)
t, meta = tr.load_safetensors(sys.argv[2])
keep = {k: v for k, v in t.items() if k in ("input_ids", "logits") or k.startswith("hidden.")}
tr.save_safetensors(sys.argv[3], keep, {"format": "torch_ref", "arch": meta.get("arch", "")})
PY
    prompt=5,17,99,3,42
    "$py" "$here/scaled_ref.py" "$ref" generate --model "$out" --prompt-ids $prompt \
        --max-new 40 --margins >"$tmp/gen.txt"
    ids=$(head -n 1 "$tmp/gen.txt")
    margin=$(grep '^min_margin' "$tmp/gen.txt")
    printf 'prompt %s\ngreedy %s\n# %s\n' "$prompt" "$ids" "$margin" >"$out/generate.txt"
}

gen_long llama3_long 14 'pass' --arch llama --heads 2 --kv-heads 1 --rope-scaling llama3
gen_long yarn_long 11 'c["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}' \
    --arch qwen2 --heads 1 --kv-heads 1
gen_long mistral_window 11 'c.update(model_type="mistral", architectures=["MistralForCausalLM"], sliding_window=16)' \
    --arch llama --heads 2 --kv-heads 1
