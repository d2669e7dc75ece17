#version 450
// adamw.comp - PyTorch's AdamW step, elementwise; bias corrections come from the host.
// A 16-bit param is updated in fp32 and rounded, one 32-bit word (two params) per invocation.
#include "lt_common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 param, grad, m, v;
    uint n, pdt;
    float lr, beta1, beta2, eps, wd, bc1, bc2, gscale;
} p;
float step_one(uint i, float w)
{
    float g = F32Buf(p.grad).d[i] * p.gscale;
    float m = p.beta1 * F32Buf(p.m).d[i] + (1.0 - p.beta1) * g;
    float v = p.beta2 * F32Buf(p.v).d[i] + (1.0 - p.beta2) * g * g;
    F32Buf(p.m).d[i] = m;
    F32Buf(p.v).d[i] = v;
    w *= 1.0 - p.lr * p.wd;
    return w - p.lr * (m / p.bc1) / (sqrt(v / p.bc2) + p.eps);
}
void main()
{
    uint i = lt_group() * 256u + gl_LocalInvocationID.x;
    if (p.pdt == DT_F32) {
        if (i < p.n)
            F32Buf(p.param).d[i] = step_one(i, F32Buf(p.param).d[i]);
    } else if (i < lt_words(p.param, p.n)) {
        int e0 = lt_w_e0(p.param, i);
        uint b0 = 0u, b1 = 0u;
        if (e0 >= 0 && uint(e0) < p.n)
            b0 = lt_to16(p.pdt, step_one(uint(e0), lt_ld(p.param, p.pdt, uint(e0))));
        if (uint(e0 + 1) < p.n)
            b1 = lt_to16(p.pdt, step_one(uint(e0 + 1), lt_ld(p.param, p.pdt, uint(e0 + 1))));
        lt_st16_word(p.param, i, p.n, b0, b1);
    }
}
