#version 450
// layernorm_bwd.comp - dx = r * (w g - mean(w g) - xhat * mean(w g xhat)) per row (written);
// dw and db are reduced over rows separately by colsum.comp.
#include "lt_common.glsl"
#define WG 256u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 dx, dout, x, w, mean, rstd;
    uint N, D, wdt;
} p;
void main()
{
    uint row = lt_group();
    if (row >= p.N)
        return;
    F32Buf x = F32Buf(p.x), g = F32Buf(p.dout);
    uint base = row * p.D;
    float mu = F32Buf(p.mean).d[row], r = F32Buf(p.rstd).d[row];
    float s1 = 0.0, s2 = 0.0;
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG) {
        float wg = lt_ld(p.w, p.wdt, d) * g.d[base + d];
        s1 += wg;
        s2 += wg * (x.d[base + d] - mu) * r;
    }
    s1 = lt_wg_sum(s1) / float(p.D);
    s2 = lt_wg_sum(s2) / float(p.D);
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG) {
        float wg = lt_ld(p.w, p.wdt, d) * g.d[base + d];
        float xh = (x.d[base + d] - mu) * r;
        F32Buf(p.dx).d[base + d] = r * (wg - s1 - xh * s2);
    }
}
