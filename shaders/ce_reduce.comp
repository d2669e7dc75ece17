#version 450
// ce_reduce.comp - the cross-entropy's single-workgroup reductions, fixed order:
// mode 0: count[0] = number of labels that are not ignore_index (uint);
// mode 1: loss[0] = sum(row_loss) / denom (denom 0: the count; a zero denominator: 0).
#include "lt_common.glsl"
#define WG 256u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 out_, in_, count;
    uint N, mode;
    int ignore_index;
    float denom;
} p;
void main()
{
    uint tid = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint i = tid; i < p.N; i += WG) {
        if (p.mode == 0u)
            s += I32Buf(p.in_).d[i] != p.ignore_index ? 1.0 : 0.0;
        else
            s += F32Buf(p.in_).d[i];
    }
    s = lt_wg_sum(s);
    if (tid != 0u)
        return;
    if (p.mode == 0u) {
        U32Buf(p.out_).d[0] = uint(s);
    } else {
        float c = float(U32Buf(p.count).d[0]);
        float denom = p.denom > 0.0 ? p.denom : c;
        F32Buf(p.out_).d[0] = denom > 0.0 ? s / denom : 0.0;
    }
}
