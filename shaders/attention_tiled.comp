#version 450
// attention_tiled.comp - causal grouped-query attention forward, flash style: a workgroup
// takes QB = 8 consecutive queries of one (b, h) and walks the keys in tiles of KT = 8 staged
// in shared memory (with the queries), so each K/V row is read once per 8 queries instead of
// once per query. Invocation t scores pair (t / 8, t % 8) of the tile; then invocation t
// updates query t / 8's online softmax (running max and sum, same for its 8 invocations)
// and its output slots d = t % 8 + 8r. Every sum runs in a fixed order: same bits each run.
// Needs 3 * 8 * MAX_HD floats of shared memory (24 KiB); the host falls back to attention.comp
// on devices with less. Writes out and lse, like attention.comp.
#extension GL_EXT_control_flow_attributes : require
#include "lt_common.glsl"
#define WG 64u
#include "lt_attn.glsl"
#define QB 8u
#define KT 8u
#define NR (MAX_HD / 8u) // output slots per invocation
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 out_, lse, q, k, v, seg;
    uint B, Tq, Tk, H, Hkv, hd, kvdt, q_offset, n_kv, has_lse, has_seg;
    float scale;
    uint window;
} p;
shared float qs[QB][MAX_HD];
shared float ks[KT][MAX_HD];
shared float vs[KT][MAX_HD];
shared float sc[QB][KT];
void main()
{
    uint nqt = (p.Tq + QB - 1u) / QB;
    uint g = lt_group();
    if (g >= p.B * p.H * nqt)
        return;
    uint i0 = (g % nqt) * QB, h = (g / nqt) % p.H, b = g / (nqt * p.H);
    uint kh = h / (p.H / p.Hkv);
    uint tid = gl_LocalInvocationID.x;
    for (uint x = tid; x < QB * p.hd; x += WG) {
        uint qq = x / p.hd, d = x % p.hd, i = i0 + qq;
        qs[qq][d] = i < p.Tq ? F32Buf(p.q).d[((b * p.Tq + i) * p.H + h) * p.hd + d] : 0.0;
    }
    uint qa = tid / 8u, lane = tid % 8u; // this invocation's query and output slots
    float acc[NR];
    [[unroll]] for (uint r = 0u; r < NR; r++)
        acc[r] = 0.0;
    float m = -1.0 / 0.0, l = 0.0;
    uint i_last = min(i0 + QB, p.Tq) - 1u;
    uint limit = min(min(p.q_offset + i_last + 1u, p.n_kv), p.Tk); // of the last query
    for (uint j0 = lt_attn_first(i0, p.q_offset, p.window); j0 < limit; j0 += KT) {
        for (uint x = tid; x < KT * p.hd; x += WG) {
            uint kk = x / p.hd, d = x % p.hd, j = j0 + kk;
            float kv = 0.0, vv = 0.0;
            if (j < p.Tk) {
                uint kb = ((b * p.Tk + j) * p.Hkv + kh) * p.hd + d;
                kv = lt_ld(p.k, p.kvdt, kb);
                vv = lt_ld(p.v, p.kvdt, kb);
            }
            ks[kk][d] = kv;
            vs[kk][d] = vv;
        }
        barrier();
        { // score of (query tid / 8, key tid % 8)
            uint qi = tid / KT, kj = tid % KT, i = i0 + qi, j = j0 + kj;
            float s = -1.0 / 0.0;
            if (i < p.Tq && j < p.Tk &&
                lt_attn_ok(b, i, j, p.Tq, p.q_offset, p.n_kv, p.window, p.has_seg, p.seg)) {
                float dot = 0.0;
                for (uint d = 0u; d < p.hd; d++)
                    dot = fma(qs[qi][d], ks[kj][d], dot);
                s = dot * p.scale;
            }
            sc[qi][kj] = s;
        }
        barrier();
        float cm = -1.0 / 0.0;
        [[unroll]] for (uint j = 0u; j < KT; j++)
            cm = max(cm, sc[qa][j]);
        float nm = max(m, cm);
        if (nm != -1.0 / 0.0) { // something visible so far
            float f = m == -1.0 / 0.0 ? 0.0 : exp(m - nm);
            float e[KT], se = 0.0;
            [[unroll]] for (uint j = 0u; j < KT; j++) {
                float s = sc[qa][j];
                e[j] = s == -1.0 / 0.0 ? 0.0 : exp(s - nm);
                se += e[j];
            }
            l = l * f + se;
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                uint d = lane + 8u * r;
                if (d < p.hd) {
                    float a = acc[r] * f;
                    [[unroll]] for (uint j = 0u; j < KT; j++)
                        if (e[j] != 0.0)
                            a = fma(e[j], vs[j][d], a);
                    acc[r] = a;
                }
            }
            m = nm;
        }
        barrier();
    }
    uint i = i0 + qa;
    if (i >= p.Tq)
        return;
    uint qbase = ((b * p.Tq + i) * p.H + h) * p.hd;
    float inv = l > 0.0 ? 1.0 / l : 0.0;
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        uint d = lane + 8u * r;
        if (d < p.hd)
            F32Buf(p.out_).d[qbase + d] = acc[r] * inv;
    }
    if (p.has_lse != 0u && lane == 0u)
        F32Buf(p.lse).d[(b * p.H + h) * p.Tq + i] = l > 0.0 ? m + log(l) : -1.0 / 0.0;
}
