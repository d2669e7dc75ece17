#version 450
// embedding_bwd.comp - dtable[id, :] += dout[i, :] for every token, deterministically: one
// workgroup per token that is the first of its id walks that id's chain in token order, so
// each dtable row has exactly one writer and sums in the same order as the CPU backend.
#include "lt_common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 dtable, dout, ids, chain;
    uint N, D, V;
} p;
void main()
{
    uint i = lt_group();
    if (i >= p.N || I32Buf(p.chain).d[p.N + i] == 0)
        return;
    int id = I32Buf(p.ids).d[i];
    if (id < 0 || uint(id) >= p.V)
        return;
    F32Buf dt = F32Buf(p.dtable);
    F32Buf go = F32Buf(p.dout);
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += 64u) {
        uint o = uint(id) * p.D + d;
        float acc = dt.d[o];
        for (uint j = i; j < p.N; j = uint(I32Buf(p.chain).d[j]))
            acc += go.d[j * p.D + d];
        dt.d[o] = acc;
    }
}
