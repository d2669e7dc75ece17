#version 450
// rope.comp - rotary position embedding, "rotate_half" layout, in place on x [N, H, hd];
// one invocation per (token, head, pair), cos and sin scaled by mscale. inverse rotates the
// other way (the backward).
#include "lt_common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 x, pos, inv;
    uint N, H, hd, inverse;
    float mscale;
} p;
void main()
{
    uint half_ = p.hd / 2u;
    uint g = lt_group() * 64u + gl_LocalInvocationID.x;
    if (g >= p.N * p.H * half_)
        return;
    uint i = g % half_, row = g / half_, n = row / p.H;
    float f = F32Buf(p.inv).d[i]; // inverse frequency of pair i, made on the host
    float a = float(I32Buf(p.pos).d[n]) * f;
    float c = p.mscale * cos(a), s = p.mscale * sin(a);
    if (p.inverse != 0u)
        s = -s;
    F32Buf x = F32Buf(p.x);
    uint o = row * p.hd + i;
    float x0 = x.d[o], x1 = x.d[o + half_];
    x.d[o] = x0 * c - x1 * s;
    x.d[o + half_] = x1 * c + x0 * s;
}
