#!/bin/sh
# gen.sh - regenerate the tiny model fixtures and their PyTorch reference outputs.
#
# Each folder holds a Hugging Face style model (config.json + model.safetensors), ref.safetensors
# (input_ids [B,T] I32, logits [B,T,V] F32, hidden.0..L and hidden.final [B,T,dim] F32) and
# generate.txt (a prompt and the greedy continuation the reference computes with a KV cache).
# The reference tool is the plain-PyTorch torch_ref.py kept beside the repository
# (TORCH_REF overrides its path); run with Debian's python3 (python3-torch):
#   sh tests/data/models/gen.sh
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
