#version 450
// embedding_sort.comp - third pass of the embedding backward: a stable scatter of token
// indices into their id's bucket, sorted[offsets[id] + k] = the k-th token (in token order)
// with that id. One workgroup walks the tokens in blocks of 256: within a block each token's
// rank among equal ids comes from shared memory, the bucket cursor advances by the block's
// count after a barrier, so the result is the same every run. O(N * 256) work in all.
#include "lt_common.glsl"
#define WG 256u
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 ids, cursor, sorted; // cursor: V ints (bucket starts on entry), sorted: N ints
    uint N, V;
    uint b_lo, b_hi; // this dispatch walks tokens [b_lo, b_hi) (b_lo a multiple of 256)
} p;
// the cursor is read and advanced by different invocations of the workgroup
layout(buffer_reference, std430, buffer_reference_align = 4) coherent buffer CohI32 { int d[]; };
shared int blk[WG];
void main()
{
    uint t = gl_LocalInvocationID.x;
    CohI32 cur = CohI32(p.cursor);
    for (uint b0 = p.b_lo; b0 < p.b_hi; b0 += WG) {
        uint i = b0 + t;
        int id = i < p.N ? I32Buf(p.ids).d[i] : -1;
        bool valid = id >= 0 && uint(id) < p.V;
        blk[t] = valid ? id : -1;
        barrier();
        uint rank = 0u;
        bool last = true;
        uint n = min(WG, p.N - b0);
        for (uint j = 0u; j < n; j++) {
            bool same = valid && blk[j] == id;
            rank += same && j < t ? 1u : 0u;
            last = last && !(same && j > t);
        }
        int base = valid ? cur.d[id] : 0;
        memoryBarrierBuffer();
        barrier(); // every base read before any cursor moves
        if (valid) {
            I32Buf(p.sorted).d[uint(base) + rank] = int(i);
            if (last)
                cur.d[id] = base + int(rank) + 1;
        }
        memoryBarrierBuffer();
        barrier();
    }
}
