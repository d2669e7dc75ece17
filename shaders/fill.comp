#version 450
// fill.comp - t[:] = value for any dtype; 16-bit tensors are written a word per invocation.
#include "lt_common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 t;
    uint n, dt;
    float value;
    int ivalue;
} p;
void main()
{
    uint i = lt_group() * 256u + gl_LocalInvocationID.x;
    if (p.dt == DT_F32) {
        if (i < p.n)
            F32Buf(p.t).d[i] = p.value;
    } else if (p.dt == DT_I32) {
        if (i < p.n)
            I32Buf(p.t).d[i] = p.ivalue;
    } else if (i < lt_words(p.t, p.n)) {
        uint b = lt_to16(p.dt, p.value);
        lt_st16_word(p.t, i, p.n, b, b);
    }
}
