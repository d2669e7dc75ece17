#version 450
// attention_bwd_dkdv.comp - attention backward, part 2, one workgroup per (b, kv head, key j)
// looping over the query heads of its group and their queries in order (no atomics):
// dv_j = sum p_ij dout_i, dk_j = scale * sum ds_ij q_i (written).
#include "lt_common.glsl"
#define WG 64u
#include "lt_reduce.glsl"
#include "lt_attn.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 dk, dv, dout, q, k, v, lse, delta, seg;
    uint B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv, has_seg;
    float scale;
    uint window;
} p;
shared float ks[MAX_HD];
shared float vs[MAX_HD];
shared float pss[WG];
shared float dss[WG];
void main()
{
    uint g = lt_group();
    if (g >= p.B * p.Hkv * p.Tk)
        return;
    uint j = g % p.Tk, kh = (g / p.Tk) % p.Hkv, b = g / (p.Tk * p.Hkv);
    uint tid = gl_LocalInvocationID.x;
    uint kb = ((b * p.Tk + j) * p.Hkv + kh) * p.hd;
    for (uint d = tid; d < p.hd; d += WG) {
        ks[d] = lt_ld(p.k, p.kvdt, kb + d);
        vs[d] = lt_ld(p.v, p.kvdt, kb + d);
    }
    barrier();
    float ak[ACC], av[ACC];
    for (uint r = 0u; r < ACC; r++) {
        ak[r] = 0.0;
        av[r] = 0.0;
    }
    uint G = p.H / p.Hkv;
    // queries that can see key j: q_offset + i >= j
    uint i_start = j > p.q_offset ? j - p.q_offset : 0u;
    bool live = j < p.n_kv;
    for (uint hg = 0u; hg < G && live; hg++) {
        uint h = kh * G + hg;
        for (uint i0 = i_start; i0 < p.Tq; i0 += WG) {
            uint i = i0 + tid;
            float pr = 0.0, ds = 0.0;
            if (i < p.Tq && lt_attn_ok(b, i, j, p.Tq, p.q_offset, p.n_kv, p.window, p.has_seg, p.seg)) {
                uint qb = ((b * p.Tq + i) * p.H + h) * p.hd;
                float s = 0.0, dp = 0.0;
                for (uint d = 0u; d < p.hd; d++) {
                    s = fma(F32Buf(p.q).d[qb + d], ks[d], s);
                    dp = fma(F32Buf(p.dout).d[qb + d], vs[d], dp);
                }
                uint li = (b * p.H + h) * p.Tq + i;
                pr = exp(s * p.scale - F32Buf(p.lse).d[li]);
                ds = pr * (dp - F32Buf(p.delta).d[li]);
            }
            pss[tid] = pr;
            dss[tid] = ds;
            barrier();
            uint cnt = min(WG, p.Tq - i0);
            for (uint t = 0u; t < cnt; t++) {
                float pt = pss[t], dt = dss[t];
                if (pt == 0.0 && dt == 0.0)
                    continue;
                uint qb = ((b * p.Tq + i0 + t) * p.H + h) * p.hd;
                for (uint r = 0u; r < ACC; r++) {
                    uint d = tid + r * WG;
                    if (d < p.hd) {
                        av[r] = fma(pt, F32Buf(p.dout).d[qb + d], av[r]);
                        ak[r] = fma(dt, F32Buf(p.q).d[qb + d], ak[r]);
                    }
                }
            }
            barrier();
        }
    }
    for (uint r = 0u; r < ACC; r++) {
        uint d = tid + r * WG;
        if (d < p.hd) {
            F32Buf(p.dk).d[kb + d] = ak[r] * p.scale;
            F32Buf(p.dv).d[kb + d] = av[r];
        }
    }
}
