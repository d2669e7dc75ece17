// lt_attn.glsl - shared by the attention shaders: masks and row dot products.
// Layouts: q, out, dq [B, Tq, H, hd]; k, v [B, Tk, Hkv, hd] (any float dtype); lse, delta
// [B, H, Tq]; seg [B, Tq] (Tq == Tk when present). hd <= MAX_HD.
#define MAX_HD 256u
#define ACC (MAX_HD / WG)

// may query i (0-based in Tq) attend to key j? window > 0: only the window keys ending at
// the query (j > q_offset + i - window)
bool lt_attn_ok(uint b, uint i, uint j, uint Tq, uint q_offset, uint n_kv, uint window,
                uint has_seg, uvec2 seg)
{
    if (j > q_offset + i || j >= n_kv || (window != 0u && j + window <= q_offset + i))
        return false;
    if (has_seg != 0u && I32Buf(seg).d[b * Tq + i] != I32Buf(seg).d[b * Tq + j])
        return false;
    return true;
}

// first key query i may see (0 without a sliding window)
uint lt_attn_first(uint i, uint q_offset, uint window)
{
    return window != 0u && q_offset + i + 1u > window ? q_offset + i + 1u - window : 0u;
}
