#version 450
// logprob.comp - row-wise log-softmax gather, one workgroup per row.
// mode 0: out[i] = x_i[id_i] - logsumexp(x_i);
// mode 1: dlogits[i, :] += dout[i] * (onehot(id_i) - softmax(x_i)).
// An id outside [0, V) raises flag 2 and gives 0 (no gradient).
#include "lt_common.glsl"
#define WG 256u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 out_, logits, ids, dout, flag;
    uint N, V, mode;
} p;
void main()
{
    uint row = lt_group();
    if (row >= p.N)
        return;
    uint tid = gl_LocalInvocationID.x;
    int id = I32Buf(p.ids).d[row];
    uint base = row * p.V;
    F32Buf x = F32Buf(p.logits);
    if (id < 0 || uint(id) >= p.V) {
        if (tid == 0u) {
            U32Buf(p.flag).d[6] = uint(id);
            U32Buf(p.flag).d[2] = 1u;
            if (p.mode == 0u)
                F32Buf(p.out_).d[row] = 0.0;
        }
        return;
    }
    float m = -1.0 / 0.0;
    for (uint d = tid; d < p.V; d += WG)
        m = max(m, x.d[base + d]);
    m = lt_wg_max(m);
    float s = 0.0;
    for (uint d = tid; d < p.V; d += WG)
        s += exp(x.d[base + d] - m);
    float lse = m + log(lt_wg_sum(s));
    if (p.mode == 0u) {
        if (tid == 0u)
            F32Buf(p.out_).d[row] = x.d[base + uint(id)] - lse;
        return;
    }
    float g = F32Buf(p.dout).d[row];
    for (uint d = tid; d < p.V; d += WG) {
        float pr = exp(x.d[base + d] - lse);
        F32Buf(p.out_).d[base + d] += g * ((d == uint(id) ? 1.0 : 0.0) - pr);
    }
}
