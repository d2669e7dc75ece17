#version 450
// embedding_chain.comp - first pass of the deterministic embedding backward: for each token
// i, chain[i] = the next j > i with the same id (or N), and first[i] = 1 when no earlier token
// has its id. The second pass (embedding_bwd.comp) follows the chains in token order.
#include "lt_common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 ids, chain; // chain: 2N ints, [0, N) next, [N, 2N) first
    uint N;
} p;
void main()
{
    uint i = lt_group() * 64u + gl_LocalInvocationID.x;
    if (i >= p.N)
        return;
    I32Buf ids = I32Buf(p.ids);
    int id = ids.d[i];
    int first = 1;
    for (uint j = 0u; j < i; j++)
        if (ids.d[j] == id) {
            first = 0;
            break;
        }
    uint next = p.N;
    for (uint j = i + 1u; j < p.N; j++)
        if (ids.d[j] == id) {
            next = j;
            break;
        }
    I32Buf(p.chain).d[i] = int(next);
    I32Buf(p.chain).d[p.N + i] = first;
}
