#version 450
// copy.comp - dst = src converting between f32/f16/bf16 (round to nearest even); i32 copies.
#include "lt_common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 dst, src;
    uint n, ddt, sdt;
} p;
void main()
{
    uint i = lt_group() * 256u + gl_LocalInvocationID.x;
    if (p.ddt == DT_I32) {
        if (i < p.n)
            I32Buf(p.dst).d[i] = I32Buf(p.src).d[i];
    } else if (p.ddt == DT_F32) {
        if (i < p.n)
            F32Buf(p.dst).d[i] = lt_ld(p.src, p.sdt, i);
    } else if (i < lt_words(p.dst, p.n)) {
        int e0 = lt_w_e0(p.dst, i);
        uint b0 = 0u, b1 = 0u;
        if (e0 >= 0 && uint(e0) < p.n)
            b0 = lt_to16(p.ddt, lt_ld(p.src, p.sdt, uint(e0)));
        if (uint(e0 + 1) < p.n)
            b1 = lt_to16(p.ddt, lt_ld(p.src, p.sdt, uint(e0 + 1)));
        lt_st16_word(p.dst, i, p.n, b0, b1);
    }
}
