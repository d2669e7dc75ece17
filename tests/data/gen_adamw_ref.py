#!/usr/bin/env python3
"""Generates tests/data/adamw_ref.bin: 10 steps of torch.optim.AdamW with
torch.nn.utils.clip_grad_norm_ before each step, for tests/compute/test_adamw.c.

Regenerate with:  /usr/bin/python3 tests/data/gen_adamw_ref.py tests/data/adamw_ref.bin

Layout (little-endian):
  magic b"LTAW", i32 version 1, i32 n_params, i32 n_steps, i32 numel[n_params]
  f32 lr, beta1, beta2, eps, weight_decay, max_norm
  f32 initial params (all params concatenated)
  per step: f32 grads before clipping (concatenated), f32 total norm returned by
            clip_grad_norm_, f32 grads after clipping, f32 params after the step
"""
import struct
import sys

import torch

torch.manual_seed(1234)
shapes = [(7,), (3, 5), (33,)]
lr, betas, eps, wd, max_norm, steps = 0.01, (0.9, 0.999), 1e-8, 0.1, 1.0, 10
params = [torch.nn.Parameter(torch.randn(s, dtype=torch.float32)) for s in shapes]
opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)

out = bytearray()
out += b"LTAW" + struct.pack("<iii", 1, len(shapes), steps)
out += struct.pack("<%di" % len(shapes), *[p.numel() for p in params])
out += struct.pack("<6f", lr, betas[0], betas[1], eps, wd, max_norm)


def flat(ts):
    return torch.cat([t.detach().reshape(-1) for t in ts]).numpy().astype("<f4").tobytes()


out += flat(params)
for step in range(steps):
    scale = 0.5 if step % 2 == 0 else 0.05  # alternate clipped and unclipped steps
    for p in params:
        p.grad = torch.randn(p.shape, dtype=torch.float32) * scale
    out += flat([p.grad for p in params])
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    out += struct.pack("<f", float(norm))
    out += flat([p.grad for p in params])
    opt.step()
    out += flat(params)

with open(sys.argv[1] if len(sys.argv) > 1 else "adamw_ref.bin", "wb") as f:
    f.write(out)
