#version 450
// embedding.comp - out[i, :] = table[ids[i], :] (table of any float dtype); an id outside
// [0, V) writes zeros and raises flag 0 for the host to report at the next sync.
#include "lt_common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 out_, table, ids, flag;
    uint N, D, V, dt;
} p;
void main()
{
    uint g = lt_group() * 256u + gl_LocalInvocationID.x;
    if (g >= p.N * p.D)
        return;
    uint i = g / p.D, d = g % p.D;
    int id = I32Buf(p.ids).d[i];
    float v = 0.0;
    if (id >= 0 && uint(id) < p.V) {
        v = lt_ld(p.table, p.dt, uint(id) * p.D + d);
    } else if (d == 0u) {
        U32Buf(p.flag).d[4] = uint(id);
        U32Buf(p.flag).d[0] = 1u;
    }
    F32Buf(p.out_).d[g] = v;
}
