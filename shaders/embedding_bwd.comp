#version 450
// embedding_bwd.comp - last pass of the embedding backward: dtable[id, :] += dout[i, :] for
// every token, deterministically. After the counting sort (embedding_count, _scan, _sort)
// sorted[offsets[id] .. offsets[id + 1]) lists id's tokens in token order; the workgroup of
// the first of them adds their rows in that order, so each dtable row has exactly one writer
// and sums in the same order as the CPU backend.
#include "lt_common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 dtable, dout, ids, offsets, sorted;
    uint N, D, V;
} p;
void main()
{
    uint i = lt_group();
    if (i >= p.N)
        return;
    int id = I32Buf(p.ids).d[i];
    if (id < 0 || uint(id) >= p.V)
        return;
    int lo = I32Buf(p.offsets).d[id], hi = I32Buf(p.offsets).d[id + 1];
    if (I32Buf(p.sorted).d[lo] != int(i))
        return; // not the first token of its id
    F32Buf dt = F32Buf(p.dtable);
    F32Buf go = F32Buf(p.dout);
    for (uint d = gl_LocalInvocationID.x; d < p.D; d += 64u) {
        uint o = uint(id) * p.D + d;
        float acc = dt.d[o];
        for (int k = lo; k < hi; k++)
            acc += go.d[uint(I32Buf(p.sorted).d[k]) * p.D + d];
        dt.d[o] = acc;
    }
}
