#!/bin/sh
# gen_qlora.sh - regenerate the QLoRA gradient fixtures: the Llama fixture model's projection
# weights are NF4-quantized and dequantized by nf4_ref.py (the same arithmetic as lathe's
# loader), with and without double quantization, and torch_ref.py computes one LoRA
# forward+backward (r 4, alpha 8, B ~ N(0, 0.02)) on those dequantized weights; lathe must give
# the same gradients with its base held in NF4. Trimmed to input_ids, targets, loss, lora.* and
# grad.lora.*.   Run with Debian's python3 (python3-torch):  sh tests/data/train/gen_qlora.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
ref=${TORCH_REF:-$repo/../shared/tools/torch_ref.py}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$ref" tokens --vocab 128 --n 18 --seed 3 --out "$tmp/tok.bin"
for v in nf4:"" nf4dq:--double-quant; do
    name=${v%%:*}; flag=${v#*:}
    TORCH_REF="$ref" "$py" "$here/nf4_ref.py" "$here/../models/llama_gqa" "$tmp/$name" $flag
    "$py" "$ref" ref --model "$tmp/$name" --tokens "$tmp/tok.bin" --batch 2 --seq 8 \
        --lora-r 4 --lora-alpha 8 --lora-b-std 0.02 --out "$tmp/$name.st"
    TORCH_REF_REEXEC=1 "$py" - "$ref" "$tmp/$name.st" "$here/llama_q${name#nf4}lora.safetensors" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)
t, meta = tr.load_safetensors(sys.argv[2])
keep = {k: v for k, v in t.items()
        if k in ("input_ids", "targets", "loss") or k.startswith(("grad.lora.", "lora."))}
tr.save_safetensors(sys.argv[3], keep, meta)
PY
done
