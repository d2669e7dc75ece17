#!/bin/sh
# gen.sh - regenerate the training reference fixtures from the PyTorch reference tool.
#
# For the tiny models in ../models (llama_gqa: GQA, untied; qwen2_bias: q/k/v biases, F16
# storage; gpt2: fused c_attn, tied) this writes, per case, a trimmed ref file: the batch
# (input_ids, targets), the loss, every trainable tensor's gradient after one forward+backward
# (grad.<HF name>, or lora.<PEFT name> + grad.lora.<PEFT name> for LoRA r=4 with B ~ N(0,
# 0.02) so that grad(A) is non-zero), and with --train-steps 20 the loss before each AdamW
# step (lr 1e-3, no weight decay) plus after the last (*_lora_steps for LoRA). LoRA cases also
# keep the logits and an adapter folder (adapter_config.json + adapter_model.safetensors)
# written by the reference.
# Run from anywhere with Debian's python3 (python3-torch):  sh tests/data/train/gen.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
ref=${TORCH_REF:-$repo/../shared/tools/torch_ref.py}
py=${PYTHON:-/usr/bin/python3}
models="$here/../models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" "$ref" tokens --vocab 128 --n 18 --seed 3 --out "$tmp/tok.bin"

# keep: input_ids, targets, loss, losses, grad.*, lora.*, and logits for LoRA cases
trim() {
    TORCH_REF_REEXEC=1 "$py" - "$ref" "$1" "$2" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)
t, meta = tr.load_safetensors(sys.argv[2])
lora = any(k.startswith("lora.") for k in t)
keep = {k: v for k, v in t.items()
        if k in ("input_ids", "targets", "loss", "losses") or k.startswith(("grad.", "lora."))
        or (lora and k == "logits")}
tr.save_safetensors(sys.argv[3], keep, meta)
PY
}

# name | model | extra ref flags
case_() {
    name=$1; model=$2; shift 2
    "$py" "$ref" ref --model "$models/$model" --tokens "$tmp/tok.bin" --batch 2 --seq 8 \
        --out "$tmp/$name.st" "$@"
    trim "$tmp/$name.st" "$here/$name.safetensors"
}

case_ llama_full llama_gqa --train-steps 20
case_ qwen2_full qwen2_bias
case_ gpt2_full gpt2 --train-steps 20
rm -rf "$here/llama_lora_adapter" "$here/gpt2_lora_adapter"
# LoRA: the tool's lora.* tensors (and its --lora-out adapter) share memory with the live
# parameters, so after --train-steps they hold the trained values. The gradient case (and the
# adapter) is therefore made without steps; the trajectory case, from the same seeds, keeps
# only its losses and starts from the gradient case's lora.* tensors.
lora="--lora-r 4 --lora-alpha 8 --lora-b-std 0.02"
case_ llama_lora llama_gqa $lora --lora-out "$here/llama_lora_adapter"
case_ gpt2_lora gpt2 $lora --lora-out "$here/gpt2_lora_adapter"
for m in llama_gqa:llama gpt2:gpt2; do
    "$py" "$ref" ref --model "$models/${m%%:*}" --tokens "$tmp/tok.bin" --batch 2 --seq 8 \
        --out "$tmp/traj.st" $lora --train-steps 20
    TORCH_REF_REEXEC=1 "$py" - "$ref" "$tmp/traj.st" "$here/${m##*:}_lora_steps.safetensors" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)
t, meta = tr.load_safetensors(sys.argv[2])
tr.save_safetensors(sys.argv[3], {"losses": t["losses"]}, meta)
PY
done
# the adapters name their base by absolute path; make it repository-relative
for a in llama_lora_adapter gpt2_lora_adapter; do
    sed -i 's#"base_model_name_or_path": ".*"#"base_model_name_or_path": "tests/data/models/'"${a%_lora_adapter}"'"#' \
        "$here/$a/adapter_config.json"
done

# 64 tokens past a scaled rotary's original context or a sliding window (the long fixtures of
# ../models), full fine-tuning gradients through tests/data/models/scaled_ref.py
"$py" "$ref" tokens --vocab 128 --n 80 --seed 5 --out "$tmp/tok64.bin"
for m in llama3_long yarn_long mistral_window; do
    "$py" "$models/scaled_ref.py" "$ref" ref --model "$models/$m" --tokens "$tmp/tok64.bin" \
        --batch 1 --seq 64 --out "$tmp/$m.st"
    trim "$tmp/$m.st" "$here/${m}_full.safetensors"
done
