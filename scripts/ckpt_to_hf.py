#!/usr/bin/env python3
"""ckpt_to_hf.py - a full-training checkpoint of lathe as a Hugging Face model folder.

  scripts/ckpt_to_hf.py CHECKPOINT SRC_DIR OUT_DIR [--dtype bf16|f16|f32]

Reads WORKSPACE/runs/<id>/checkpoints/step-N.ckpt (format in pipeline/train/checkpoint.h:
magic, version, loop state, named tensors, sha256 of everything before it), keeps the
"param:" tensors (the weights; the AdamW moments "m:" and "v:" are dropped), and writes
OUT_DIR/model.safetensors (tensors in name order, converted with round-to-nearest-even),
copying config.json, tokenizer.json and tokenizer_config.json from SRC_DIR (the folder the
run started from). The output depends only on the checkpoint's bytes, so the same
checkpoint gives the same folder bit for bit. Standard library only.

Used by scripts/build_base_model.sh; refuses a damaged checkpoint.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
from array import array

MAGIC = b"LATHECKP"
STATE_BYTES = 12 * 8 + 16 * 8 * 2 + 8 + 8 + 64  # lt_ckpt_state as written (version 1)
DTYPES = {0: ("F32", 4), 1: ("F16", 2), 2: ("BF16", 2)}


def read_checkpoint(path):
    """Returns {name: (dtype_code, shape, bytes)} of the parameter tensors."""
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 16 + STATE_BYTES + 32 or b[:8] != MAGIC:
        raise ValueError(f"{path}: not a lathe checkpoint")
    if hashlib.sha256(b[:-32]).digest() != b[-32:]:
        raise ValueError(f"{path}: checksum mismatch (damaged checkpoint)")
    version, n = struct.unpack_from("<II", b, 8)
    if version != 1:
        raise ValueError(f"{path}: checkpoint version {version}, this script reads 1")
    off, out = 16 + STATE_BYTES, {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", b, off)
        name = b[off + 4:off + 4 + ln].decode()
        off += 4 + ln
        dt, nd = struct.unpack_from("<II", b, off)
        shape = struct.unpack_from(f"<{nd}Q", b, off + 8)
        off += 8 + 8 * nd
        (nb,) = struct.unpack_from("<Q", b, off)
        off += 8
        if off + nb > len(b) - 32 or dt not in DTYPES:
            raise ValueError(f"{path}: tensor {name}: bad size or dtype")
        if name.startswith("param:"):
            out[name[len("param:"):]] = (dt, shape, b[off:off + nb])
        off += nb
    if not out:
        raise ValueError(f"{path}: no parameter tensors (is this a LoRA run?)")
    return out


def f32_to_16(data, to):
    """f32 bytes -> bf16 (round to nearest even) or f16 bytes."""
    src = array("f")
    src.frombytes(data)
    if sys.byteorder != "little":
        src.byteswap()
    if to == "F16":
        return struct.pack(f"<{len(src)}e", *src)
    words = array("I", src.tobytes())
    out = array("H", bytes(2 * len(words)))
    for i, w in enumerate(words):
        if (w & 0x7F800000) == 0x7F800000 and (w & 0x7FFFFF):
            out[i] = (w >> 16) | 0x40  # NaN stays NaN
        else:
            out[i] = ((w + 0x7FFF + ((w >> 16) & 1)) >> 16) & 0xFFFF
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def write_safetensors(path, tensors, dtype):
    header, blobs, pos = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dt, shape, data = tensors[name]
        if dtype != "F32" and dt == 0:
            data = f32_to_16(data, dtype)
            tag = dtype
        else:
            tag = DTYPES[dt][0]
        header[name] = {"dtype": tag, "shape": list(shape), "data_offsets": [pos, pos + len(data)]}
        blobs.append(data)
        pos += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("src_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--dtype", choices=["bf16", "f16", "f32"], default="bf16")
    a = ap.parse_args()
    try:
        tensors = read_checkpoint(a.checkpoint)
    except (OSError, ValueError) as e:
        print(f"ckpt_to_hf: {e}", file=sys.stderr)
        return 1
    os.makedirs(a.out_dir, exist_ok=True)
    write_safetensors(os.path.join(a.out_dir, "model.safetensors"), tensors, a.dtype.upper())
    for f in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        if os.path.abspath(os.path.join(a.src_dir, f)) != os.path.abspath(os.path.join(a.out_dir, f)):
            shutil.copyfile(os.path.join(a.src_dir, f), os.path.join(a.out_dir, f))
    print(f"wrote {len(tensors)} tensors ({a.dtype}) to {a.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
