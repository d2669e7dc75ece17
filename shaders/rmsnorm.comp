#version 450
// rmsnorm.comp - out = x * rstd * w per row, rstd = 1 / sqrt(mean(x^2) + eps); one workgroup
// per row, sum of squares reduced in a fixed order.
#include "lt_common.glsl"
#define WG 256u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 out_, rstd, x, w;
    uint N, D, wdt, has_rstd;
    float eps;
} p;
void main()
{
    uint row = lt_group();
    if (row >= p.N)
        return;
    F32Buf x = F32Buf(p.x);
    uint base = row * p.D;
    float ss = 0.0;
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG) {
        float v = x.d[base + d];
        ss = fma(v, v, ss);
    }
    ss = lt_wg_sum(ss);
    float r = 1.0 / sqrt(ss / float(p.D) + p.eps);
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG)
        F32Buf(p.out_).d[base + d] = x.d[base + d] * r * lt_ld(p.w, p.wdt, d);
    if (p.has_rstd != 0u && gl_LocalInvocationID.x == 0u)
        F32Buf(p.rstd).d[row] = r;
}
