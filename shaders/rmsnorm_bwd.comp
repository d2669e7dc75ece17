#version 450
// rmsnorm_bwd.comp - dx = r * w * g - r^3 * x * mean(w * g * x) per row (written); dw is
// reduced over rows separately by colsum.comp.
#include "lt_common.glsl"
#define WG 256u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 dx, dout, x, w, rstd;
    uint N, D, wdt;
} p;
void main()
{
    uint row = lt_group();
    if (row >= p.N)
        return;
    F32Buf x = F32Buf(p.x), g = F32Buf(p.dout);
    uint base = row * p.D;
    float r = F32Buf(p.rstd).d[row];
    float s = 0.0;
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG)
        s += lt_ld(p.w, p.wdt, d) * g.d[base + d] * x.d[base + d];
    s = lt_wg_sum(s) / float(p.D);
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG) {
        float wg = lt_ld(p.w, p.wdt, d) * g.d[base + d];
        F32Buf(p.dx).d[base + d] = r * wg - r * r * r * x.d[base + d] * s;
    }
}
