#version 450
// cross_entropy.comp - fused softmax + cross-entropy, one workgroup per row, never storing
// probabilities: row_loss[i] = logsumexp(x_i) - x_i[label]; dlogits (may be the logits
// themselves: every element is read before the same invocation overwrites it) =
// grad_scale * (softmax - onehot) / denom. Ignored rows give 0; a label outside [0, V) raises
// flag 1 and counts as ignored. denom: the host's n_counted, else the count kernel's result.
#include "lt_common.glsl"
#define WG 256u
#include "lt_reduce.glsl"
layout(local_size_x = WG) in;
layout(push_constant) uniform P {
    uvec2 dlogits, row_loss, logits, labels, count, flag;
    uint N, V, has_dl;
    int ignore_index;
    float grad_scale, denom; // denom 0: use count
} p;
void main()
{
    uint row = lt_group();
    if (row >= p.N)
        return;
    uint tid = gl_LocalInvocationID.x;
    int label = I32Buf(p.labels).d[row];
    uint base = row * p.V;
    F32Buf x = F32Buf(p.logits);
    bool ignored = label == p.ignore_index;
    if (!ignored && (label < 0 || uint(label) >= p.V)) {
        ignored = true;
        if (tid == 0u) {
            U32Buf(p.flag).d[5] = uint(label);
            U32Buf(p.flag).d[1] = 1u;
        }
    }
    if (ignored) {
        if (tid == 0u)
            F32Buf(p.row_loss).d[row] = 0.0;
        if (p.has_dl != 0u)
            for (uint d = tid; d < p.V; d += WG)
                F32Buf(p.dlogits).d[base + d] = 0.0;
        return;
    }
    float xl = x.d[base + uint(label)];
    float m = -1.0 / 0.0;
    for (uint d = tid; d < p.V; d += WG)
        m = max(m, x.d[base + d]);
    m = lt_wg_max(m);
    float s = 0.0;
    for (uint d = tid; d < p.V; d += WG)
        s += exp(x.d[base + d] - m);
    float lse = m + log(lt_wg_sum(s)); // barriers: every read of xl happened before writes
    if (tid == 0u)
        F32Buf(p.row_loss).d[row] = lse - xl;
    if (p.has_dl != 0u) {
        float denom = p.denom > 0.0 ? p.denom : float(U32Buf(p.count).d[0]);
        float k = denom > 0.0 ? p.grad_scale / denom : 0.0;
        for (uint d = tid; d < p.V; d += WG) {
            float pr = exp(x.d[base + d] - lse);
            F32Buf(p.dlogits).d[base + d] = k * (pr - (d == uint(label) ? 1.0 : 0.0));
        }
    }
}
