#version 450
// sumsq.comp - the deterministic global gradient norm in two stages with fixed partitions
// (independent of the device): mode 0, workgroup k of PARTS sums x^2 over its contiguous
// slice of one tensor into partial[slot * PARTS + k]; mode 1, one workgroup sums the n
// partials in order and writes out[0] = sqrt(total).
#include "lt_common.glsl"
#define WG 256u
#define PARTS 64u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 out_, x;
    uint n, mode, slot;
} p;
void main()
{
    uint tid = gl_LocalInvocationID.x;
    F32Buf x = F32Buf(p.x);
    float s = 0.0;
    if (p.mode == 0u) {
        uint k = lt_group();
        uint chunk = (p.n + PARTS - 1u) / PARTS;
        uint lo = k * chunk, hi = min(p.n, lo + chunk);
        for (uint i = lo + tid; i < hi; i += WG)
            s = fma(x.d[i], x.d[i], s);
        s = lt_wg_sum(s);
        if (tid == 0u)
            F32Buf(p.out_).d[p.slot * PARTS + k] = s;
    } else {
        for (uint i = tid; i < p.n; i += WG)
            s += x.d[i];
        s = lt_wg_sum(s);
        if (tid == 0u)
            F32Buf(p.out_).d[0] = sqrt(s);
    }
}
