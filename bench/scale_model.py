#!/usr/bin/env python3
"""scale_model.py - write a random-weight model folder with exactly the shape of a real model
(Llama-3.2-1B or Llama-3.1-8B), for benchmarks at real size.

The folder holds config.json (the fields of the real model's config.json: vocabulary 128,256,
grouped-query attention 32/8, rope_theta 500000, rope_scaling of type llama3), sharded bf16
safetensors (model-0000N-of-0000M.safetensors + model.safetensors.index.json, <= 4 GiB a
shard) and a small byte-level tokenizer copied from the bundled model (its ids are a subset of
the vocabulary; benchmarks train on random ids).

Tensors are written one at a time, so memory stays at one tensor (the 8B embedding table is
1.05 GB in bf16): an 8B model in fp32 would not fit a 24 GiB machine. Weights are random bf16
values of magnitude in [2^-7, 2^-6) with random signs (uniform on a log scale is not needed:
speed and memory do not depend on the values); norm weights are 1.

Never write the output inside the repository: the folders are 2.5 GB (1B) and 16 GB (8B).

usage: scale_model.py --shape llama-3.2-1b|llama-3.1-8b --out DIR [--layers N] [--seed S]
  --layers N keeps the shape of every tensor but only N layers (for quick checks).
Needs python3-numpy.
"""
import argparse
import json
import os
import shutil
import struct
import sys

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("scale_model.py: needs numpy (apt-get install python3-numpy)")

SHAPES = {
    # the fields of meta-llama/Llama-3.2-1B's config.json
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                         max_position_embeddings=131072, tie_word_embeddings=True,
                         rope_scaling={"factor": 32.0, "high_freq_factor": 4.0,
                                       "low_freq_factor": 1.0,
                                       "original_max_position_embeddings": 8192,
                                       "rope_type": "llama3"}),
    # the fields of meta-llama/Llama-3.1-8B's config.json
    "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                         max_position_embeddings=131072, tie_word_embeddings=False,
                         rope_scaling={"factor": 8.0, "high_freq_factor": 4.0,
                                       "low_freq_factor": 1.0,
                                       "original_max_position_embeddings": 8192,
                                       "rope_type": "llama3"}),
}

SHARD_BYTES = 4 << 30


def config_for(shape, layers):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
         "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 128000,
         "eos_token_id": 128001, "hidden_act": "silu", "initializer_range": 0.02,
         "mlp_bias": False, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
         "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 128256}
    c.update(SHAPES[shape])
    if layers:
        c["num_hidden_layers"] = layers
    return c


def tensors_for(c):
    """(name, shape, is_norm) in the order Hugging Face writes them."""
    D, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = c["head_dim"]
    qd, kvd = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", (V, D), False)]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (D,), True),
                (p + "self_attn.q_proj.weight", (qd, D), False),
                (p + "self_attn.k_proj.weight", (kvd, D), False),
                (p + "self_attn.v_proj.weight", (kvd, D), False),
                (p + "self_attn.o_proj.weight", (D, qd), False),
                (p + "post_attention_layernorm.weight", (D,), True),
                (p + "mlp.gate_proj.weight", (F, D), False),
                (p + "mlp.up_proj.weight", (F, D), False),
                (p + "mlp.down_proj.weight", (D, F), False)]
    out.append(("model.norm.weight", (D,), True))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (V, D), False))
    return out


def nbytes(shape):
    n = 2
    for d in shape:
        n *= d
    return n


def write_tensor(f, shape, is_norm, rng):
    n = nbytes(shape) // 2
    if is_norm:
        np.full(n, 0x3F80, dtype="<u2").tofile(f)  # bf16 1.0
        return
    step = 1 << 26  # 64 Mi elements at a time
    for i in range(0, n, step):
        k = min(step, n - i)
        bits = rng.integers(0, 1 << 16, size=k, dtype=np.uint16)
        # sign and 7 mantissa bits random, exponent 120: +-[2^-7, 2^-6)
        ((bits & 0x807F) | 0x3C00).astype("<u2").tofile(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    out = os.path.abspath(a.out)
    if out == repo or out.startswith(repo + os.sep):
        sys.exit("scale_model.py: --out must be outside the repository")
    os.makedirs(out, exist_ok=True)
    c = config_for(a.shape, a.layers)
    ts = tensors_for(c)
    # shards of at most SHARD_BYTES, in order
    shards, cur, size = [], [], 0
    for t in ts:
        b = nbytes(t[1])
        if cur and size + b > SHARD_BYTES:
            shards.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += b
    shards.append(cur)
    rng = np.random.default_rng(a.seed)
    weight_map, total = {}, 0
    for si, shard in enumerate(shards):
        fname = f"model-{si + 1:05d}-of-{len(shards):05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape, _ in shard:
            b = nbytes(shape)
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + b]}
            off += b
            weight_map[name] = fname
        hj = json.dumps(header, separators=(",", ":")).encode()
        hj += b" " * (-len(hj) % 8)
        tmp = os.path.join(out, fname + ".tmp")
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hj)))
            f.write(hj)
            for name, shape, is_norm in shard:
                write_tensor(f, shape, is_norm, rng)
        os.replace(tmp, os.path.join(out, fname))
        total += off
        print(f"wrote {fname}: {len(shard)} tensors, {off / 1e9:.2f} GB", flush=True)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(repo, "assets", "model", name), os.path.join(out, name))
    params = sum(nbytes(t[1]) // 2 for t in ts)
    print(f"{out}: {a.shape} shape, {c['num_hidden_layers']} layers, {params / 1e9:.3f} B "
          f"parameters, {total / 1e9:.2f} GB bf16")


if __name__ == "__main__":
    main()
