"""scaled_ref.py - torch_ref.py with YaRN rotary scaling and a sliding-window mask added.

torch_ref.py (the plain-PyTorch reference beside the repository) implements plain and llama3
rotary positions and plain causal attention. This wrapper imports it, replaces two functions
and then runs its command line unchanged:

- rope_cos_sin: "yarn" computed as transformers' _compute_yarn_parameters does (float32
  inverse frequencies blended by a linear ramp between the correction dimensions of beta_fast
  and beta_slow over original_max_position_embeddings; cos and sin multiplied by the attention
  factor, 0.1 ln(factor) + 1 unless given); every other type goes to the original.
- causal_attention: with a sliding window W (config.json "sliding_window" of a mistral model),
  query i at position p sees keys k with p - W < k <= p, as transformers' sliding-window mask.

Usage: python3 scaled_ref.py TORCH_REF.py <torch_ref arguments...>
"""
import importlib.util
import math
import os
import sys

os.environ["TORCH_REF_REEXEC"] = "1"  # the imported tool must not re-execute this script
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)
torch = tr.torch

WINDOW = [0]
_rope_orig = tr.rope_cos_sin
_config_orig = tr.config_from_hf


def yarn_inv_freq(head_dim, theta, s, max_pos):
    dim = head_dim
    factor = s["factor"]
    L = s.get("original_max_position_embeddings") or max_pos
    beta_fast = s.get("beta_fast") or 32
    beta_slow = s.get("beta_slow") or 1

    def get_mscale(scale, m=1):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    af = s.get("attention_factor")
    if af is None:
        if s.get("mscale") and s.get("mscale_all_dim"):
            af = float(get_mscale(factor, s["mscale"]) / get_mscale(factor, s["mscale_all_dim"]))
        else:
            af = get_mscale(factor)

    def corr(n):
        return (dim * math.log(L / (n * 2 * math.pi))) / (2 * math.log(theta))

    low, high = corr(beta_fast), corr(beta_slow)
    if s.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = theta ** (torch.arange(0, dim, 2).to(dtype=torch.float) / dim)
    extra, inter = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    ef = 1 - ramp
    return inter * (1 - ef) + extra * ef, af


def rope_cos_sin(T, head_dim, theta, dtype, scaling=None):
    if not (scaling and scaling.get("rope_type", scaling.get("type")) == "yarn"):
        return _rope_orig(T, head_dim, theta, dtype, scaling)
    inv_freq, af = yarn_inv_freq(head_dim, theta, scaling, scaling.get("_max_pos"))
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * af).to(dtype), (emb.sin() * af).to(dtype)


def causal_attention(q, k, v):
    Tq, Tk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
    pos_q = torch.arange(Tq).unsqueeze(1) + (Tk - Tq)
    pos_k = torch.arange(Tk).unsqueeze(0)
    mask = pos_k > pos_q
    if WINDOW[0] > 0:
        mask = mask | (pos_k <= pos_q - WINDOW[0])
    att = torch.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
    return torch.matmul(att, v)


def config_from_hf(h):
    c = _config_orig(h)
    if h.get("model_type") == "mistral" and h.get("sliding_window"):
        WINDOW[0] = int(h["sliding_window"])
    if c.get("rope_scaling"):
        c["rope_scaling"] = dict(c["rope_scaling"], _max_pos=c["max_pos"])
    return c


tr.rope_cos_sin = rope_cos_sin
tr.causal_attention = causal_attention
tr.config_from_hf = config_from_hf
sys.argv = [sys.argv[1]] + sys.argv[2:]
tr.main()
