#version 450
// embedding_scan.comp - second pass of the embedding backward: one workgroup turns counts[V]
// into bucket starts, offsets[v] = sum of counts[u] for u < v (offsets[V] = tokens counted),
// and copies them to cursor[V], the fill position of each bucket for embedding_sort.comp.
// Each invocation scans a contiguous chunk; the chunk totals are scanned in shared memory.
#include "lt_common.glsl"
#define WG 256u
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 counts, offsets, cursor; // V, V + 1 and V ints
    uint V;
} p;
shared int part[WG];
void main()
{
    uint t = gl_LocalInvocationID.x;
    uint chunk = (p.V + WG - 1u) / WG;
    uint lo = min(t * chunk, p.V), hi = min(lo + chunk, p.V);
    I32Buf cnt = I32Buf(p.counts);
    int s = 0;
    for (uint v = lo; v < hi; v++)
        s += cnt.d[v];
    part[t] = s;
    barrier();
    if (t == 0u) {
        int run = 0;
        for (uint u = 0u; u < WG; u++) {
            int c = part[u];
            part[u] = run;
            run += c;
        }
        I32Buf(p.offsets).d[p.V] = run;
    }
    barrier();
    int run = part[t];
    for (uint v = lo; v < hi; v++) {
        I32Buf(p.offsets).d[v] = run;
        I32Buf(p.cursor).d[v] = run;
        run += cnt.d[v];
    }
}
