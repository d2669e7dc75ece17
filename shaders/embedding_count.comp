#version 450
// embedding_count.comp - first pass of the deterministic embedding backward (a counting sort
// of tokens by id): counts[id] += 1 for every token with a valid id. Integer atomics, so the
// counts are exact whatever the order. Next: embedding_scan.comp.
#include "lt_common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 ids, counts; // counts: V ints, zeroed by the host
    uint N, V;
} p;
void main()
{
    uint i = lt_group() * 64u + gl_LocalInvocationID.x;
    if (i >= p.N)
        return;
    int id = I32Buf(p.ids).d[i];
    if (id >= 0 && uint(id) < p.V)
        atomicAdd(I32Buf(p.counts).d[id], 1);
}
