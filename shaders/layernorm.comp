#version 450
// layernorm.comp - out = (x - mean) * rstd * w + b per row (biased variance); one workgroup
// per row, fixed-order reductions; mean and rstd optionally kept for the backward.
#include "lt_common.glsl"
#define WG 256u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 out_, mean, rstd, x, w, b;
    uint N, D, wdt, bdt, has_stats;
    float eps;
} p;
void main()
{
    uint row = lt_group();
    if (row >= p.N)
        return;
    F32Buf x = F32Buf(p.x);
    uint base = row * p.D;
    float s = 0.0;
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG)
        s += x.d[base + d];
    float mu = lt_wg_sum(s) / float(p.D);
    float v = 0.0;
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG) {
        float c = x.d[base + d] - mu;
        v = fma(c, c, v);
    }
    float r = 1.0 / sqrt(lt_wg_sum(v) / float(p.D) + p.eps);
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += WG)
        F32Buf(p.out_).d[base + d] =
            (x.d[base + d] - mu) * r * lt_ld(p.w, p.wdt, d) + lt_ld(p.b, p.bdt, d);
    if (gl_LocalInvocationID.x == 0u) {
        if ((p.has_stats & 1u) != 0u)
            F32Buf(p.mean).d[row] = mu;
        if ((p.has_stats & 2u) != 0u)
            F32Buf(p.rstd).d[row] = r;
    }
}
