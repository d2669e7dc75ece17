#version 450
// colsum.comp - deterministic column reductions over rows, one invocation per column summing
// rows in order: mode 0 RMSNorm dw += sum g x rstd; mode 1 LayerNorm dw += sum g xhat and
// db += sum g; mode 2 bias db += sum g.
#include "lt_common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 dw, db, g, x, mean, rstd;
    uint N, D, mode, has_dw, has_db;
} p;
void main()
{
    uint d = lt_group() * 64u + gl_LocalInvocationID.x;
    if (d >= p.D)
        return;
    F32Buf g = F32Buf(p.g);
    float sw = 0.0, sb = 0.0;
    for (uint i = 0u; i < p.N; i++) {
        float gv = g.d[i * p.D + d];
        if (p.mode == 0u)
            sw += gv * F32Buf(p.x).d[i * p.D + d] * F32Buf(p.rstd).d[i];
        else if (p.mode == 1u)
            sw += gv * (F32Buf(p.x).d[i * p.D + d] - F32Buf(p.mean).d[i]) * F32Buf(p.rstd).d[i];
        sb += gv;
    }
    if (p.has_dw != 0u)
        F32Buf(p.dw).d[d] += sw;
    if (p.has_db != 0u)
        F32Buf(p.db).d[d] += sb;
}
