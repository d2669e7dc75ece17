#version 450
// attention.comp - causal grouped-query attention forward, one workgroup per (b, h, query):
// keys are processed in chunks of WG with an online softmax (running max and sum), scores
// one per invocation, the output accumulated over head-dim slots. Writes out and lse.
#include "lt_common.glsl"
#define WG 64u
#include "lt_reduce.glsl"
#include "lt_attn.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 out_, lse, q, k, v, seg;
    uint B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv, has_lse, has_seg;
    float scale;
    uint window;
} p;
shared float qs[MAX_HD];
shared float ps[WG];
void main()
{
    uint g = lt_group();
    if (g >= p.B * p.H * p.Tq)
        return;
    uint i = g % p.Tq, h = (g / p.Tq) % p.H, b = g / (p.Tq * p.H);
    uint kh = h / (p.H / p.Hkv);
    uint tid = gl_LocalInvocationID.x;
    uint qbase = ((b * p.Tq + i) * p.H + h) * p.hd;
    for (uint d = tid; d < p.hd; d += WG)
        qs[d] = F32Buf(p.q).d[qbase + d];
    barrier();
    float acc[ACC];
    for (uint r = 0u; r < ACC; r++)
        acc[r] = 0.0;
    float m = -1.0 / 0.0, l = 0.0;
    uint limit = min(min(p.q_offset + i + 1u, p.n_kv), p.Tk);
    for (uint j0 = lt_attn_first(i, p.q_offset, p.window); j0 < limit; j0 += WG) {
        uint j = j0 + tid;
        float s = -1.0 / 0.0;
        if (j < limit && lt_attn_ok(b, i, j, p.Tq, p.q_offset, p.n_kv, p.window, p.has_seg, p.seg)) {
            uint kb = ((b * p.Tk + j) * p.Hkv + kh) * p.hd;
            float dot = 0.0;
            for (uint d = 0u; d < p.hd; d++)
                dot = fma(qs[d], lt_ld(p.k, p.kvdt, kb + d), dot);
            s = dot * p.scale;
        }
        float cm = lt_wg_max(s);
        float nm = max(m, cm);
        if (nm == -1.0 / 0.0) // nothing visible yet
            continue;
        float e = s == -1.0 / 0.0 ? 0.0 : exp(s - nm);
        ps[tid] = e;
        float f = m == -1.0 / 0.0 ? 0.0 : exp(m - nm);
        l = l * f + lt_wg_sum(e); // the sum's barriers also publish ps
        for (uint r = 0u; r < ACC; r++)
            acc[r] *= f;
        uint cnt = min(WG, limit - j0);
        for (uint t = 0u; t < cnt; t++) {
            float pt = ps[t];
            if (pt == 0.0)
                continue;
            uint vb = ((b * p.Tk + j0 + t) * p.Hkv + kh) * p.hd;
            for (uint r = 0u; r < ACC; r++) {
                uint d = tid + r * WG;
                if (d < p.hd)
                    acc[r] = fma(pt, lt_ld(p.v, p.kvdt, vb + d), acc[r]);
            }
        }
        m = nm;
        barrier();
    }
    float inv = l > 0.0 ? 1.0 / l : 0.0;
    for (uint r = 0u; r < ACC; r++) {
        uint d = tid + r * WG;
        if (d < p.hd)
            F32Buf(p.out_).d[qbase + d] = acc[r] * inv;
    }
    if (p.has_lse != 0u && tid == 0u)
        F32Buf(p.lse).d[(b * p.H + h) * p.Tq + i] = l > 0.0 ? m + log(l) : -1.0 / 0.0;
}
