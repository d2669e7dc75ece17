#version 450
// attention_bwd_dq.comp - attention backward, part 1, one workgroup per (b, h, query i):
// delta_i = dout_i . out_i (kept for part 2), then over keys in order
// ds_ij = p_ij (dout_i . v_j - delta_i), dq_i = scale * sum_j ds_ij k_j (written).
#include "lt_common.glsl"
#define WG 64u
#include "lt_reduce.glsl"
#include "lt_attn.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 dq, delta, dout, out_, q, k, v, lse, seg;
    uint B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv, has_seg;
    float scale;
    uint window;
} p;
shared float qs[MAX_HD];
shared float gs[MAX_HD];
shared float dss[WG];
void main()
{
    uint g = lt_group();
    if (g >= p.B * p.H * p.Tq)
        return;
    uint i = g % p.Tq, h = (g / p.Tq) % p.H, b = g / (p.Tq * p.H);
    uint kh = h / (p.H / p.Hkv);
    uint tid = gl_LocalInvocationID.x;
    uint qbase = ((b * p.Tq + i) * p.H + h) * p.hd;
    float dl = 0.0;
    for (uint d = tid; d < p.hd; d += WG) {
        qs[d] = F32Buf(p.q).d[qbase + d];
        gs[d] = F32Buf(p.dout).d[qbase + d];
        dl += gs[d] * F32Buf(p.out_).d[qbase + d];
    }
    float delta = lt_wg_sum(dl); // its barriers also publish qs and gs
    uint li = (b * p.H + h) * p.Tq + i;
    float lse = F32Buf(p.lse).d[li];
    float acc[ACC];
    for (uint r = 0u; r < ACC; r++)
        acc[r] = 0.0;
    uint limit = min(min(p.q_offset + i + 1u, p.n_kv), p.Tk);
    for (uint j0 = 0u; j0 < limit; j0 += WG) {
        uint j = j0 + tid;
        float ds = 0.0;
        if (j < limit && lt_attn_ok(b, i, j, p.Tq, p.q_offset, p.n_kv, p.window, p.has_seg, p.seg)) {
            uint kb = ((b * p.Tk + j) * p.Hkv + kh) * p.hd;
            float s = 0.0, dp = 0.0;
            for (uint d = 0u; d < p.hd; d++) {
                s = fma(qs[d], lt_ld(p.k, p.kvdt, kb + d), s);
                dp = fma(gs[d], lt_ld(p.v, p.kvdt, kb + d), dp);
            }
            float pr = exp(s * p.scale - lse);
            ds = pr * (dp - delta);
        }
        dss[tid] = ds;
        barrier();
        uint cnt = min(WG, limit - j0);
        for (uint t = 0u; t < cnt; t++) {
            float dt = dss[t];
            if (dt == 0.0)
                continue;
            uint kb = ((b * p.Tk + j0 + t) * p.Hkv + kh) * p.hd;
            for (uint r = 0u; r < ACC; r++) {
                uint d = tid + r * WG;
                if (d < p.hd)
                    acc[r] = fma(dt, lt_ld(p.k, p.kvdt, kb + d), acc[r]);
            }
        }
        barrier();
    }
    for (uint r = 0u; r < ACC; r++) {
        uint d = tid + r * WG;
        if (d < p.hd)
            F32Buf(p.dq).d[qbase + d] = acc[r] * p.scale;
    }
    if (tid == 0u)
        F32Buf(p.delta).d[li] = delta;
}
