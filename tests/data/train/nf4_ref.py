#!/usr/bin/env python3
"""nf4_ref.py - lathe's NF4 quantization (bitsandbytes' 16 code values, blocks of 64, high nibble
first, optional double quantization of the absmax values) written again in numpy, to make the
QLoRA reference: it quantizes and dequantizes a model folder's layer projection weights
(q/k/v/o/gate/up/down_proj) exactly as lathe's loader does and writes a folder whose weights are
the dequantized values, which torch_ref.py then loads as an ordinary fp32 model.

    nf4_ref.py MODEL_DIR OUT_DIR [--double-quant]

Arithmetic follows compute/nf4.c step by step in float32: absmax per block; x / absmax; the
nearest code (ties to the lower index); with double quantization the mean of all absmax values
(accumulated in float64, rounded to float32), then per group of 256 blocks the scale
max|absmax - mean| and q = rint((absmax - mean) / scale * 127) clamped to [-127, 127], and the
dequantized absmax q / 127 * scale + mean.
"""
import importlib.util
import json
import os
import shutil
import sys

import numpy as np

CODES = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                  0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                  0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                  0.7229568362236023, 1.0], dtype=np.float32)
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def nf4_roundtrip(w, double_quant):
    x = np.ascontiguousarray(w, dtype=np.float32).reshape(-1)
    n = x.size
    nb = (n + 63) // 64
    pad = np.zeros(nb * 64, dtype=np.float32)
    pad[:n] = x
    blocks = pad.reshape(nb, 64)
    absmax = np.abs(blocks).max(axis=1).astype(np.float32)
    safe = np.where(absmax > 0, absmax, np.float32(1)).astype(np.float32)
    scaled = np.where(absmax[:, None] > 0, blocks / safe[:, None], np.float32(0)).astype(np.float32)
    dist = np.abs(scaled[:, :, None] - CODES[None, None, :]).astype(np.float32)
    idx = dist.argmin(axis=2)  # first minimum: ties to the lower index
    if double_quant:
        mean = np.float32(np.float64(absmax.astype(np.float64).sum()) / nb)
        centred = (absmax - mean).astype(np.float32)
        deq = np.empty(nb, dtype=np.float32)
        for g0 in range(0, nb, 256):
            c = centred[g0:g0 + 256]
            sc = np.float32(np.abs(c).max())
            if sc > 0:
                q = np.rint((c / sc * np.float32(127)).astype(np.float32))
            else:
                q = np.zeros_like(c)
            q = np.clip(q, -127, 127).astype(np.float32)
            deq[g0:g0 + 256] = (q / np.float32(127) * sc + mean).astype(np.float32)
        absmax = deq
    out = (CODES[idx] * absmax[:, None]).astype(np.float32).reshape(-1)[:n]
    return out.reshape(w.shape)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: nf4_ref.py MODEL_DIR OUT_DIR [--double-quant]")
    src, dst = sys.argv[1], sys.argv[2]
    dq = "--double-quant" in sys.argv[3:]
    ref = os.environ.get("TORCH_REF") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../../shared/tools/torch_ref.py")
    spec = importlib.util.spec_from_file_location("torch_ref", ref)
    tr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tr)
    t, meta = tr.load_safetensors(os.path.join(src, "model.safetensors"))
    out = {}
    for k, v in t.items():
        a = v.numpy() if hasattr(v, "numpy") else np.asarray(v)
        if a.ndim == 2 and any(p in k for p in PROJ):
            a = nf4_roundtrip(a.astype(np.float32), dq)
        out[k] = np.ascontiguousarray(a.astype(np.float32))
    os.makedirs(dst, exist_ok=True)
    tr.save_safetensors(os.path.join(dst, "model.safetensors"), out, meta)
    for f in os.listdir(src):
        if f != "model.safetensors" and os.path.isfile(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    cfg = os.path.join(dst, "config.json")
    with open(cfg) as fh:
        c = json.load(fh)
    c["torch_dtype"] = "float32"
    with open(cfg, "w") as fh:
        json.dump(c, fh, indent=2)


if __name__ == "__main__":
    main()
