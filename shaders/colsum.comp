#version 450
// colsum.comp - deterministic column reductions over rows: mode 0 RMSNorm dw += sum g x rstd;
// mode 1 LayerNorm dw += sum g xhat and db += sum g; mode 2 bias db += sum g.
// Two stages with a partition fixed by N alone (so the same bits every run): stage 0, one
// invocation per (column, partition) sums the partition's rows in order; with one partition
// it adds straight into dw/db, else it writes partials[part][col] (sw, then sb at + P*D).
// Stage 1 (mode ignored), one invocation per column, adds the P partials in order.
// Workgroups: x covers columns by 64, y the partitions.
#include "lt_common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
    uvec2 dw, db, g, x, mean, rstd, part;
    uint N, D, mode, has_dw, has_db;
    uint stage, n_parts, rows; // rows per partition
} p;
void main()
{
    uint d = gl_WorkGroupID.x * 64u + gl_LocalInvocationID.x;
    if (d >= p.D)
        return;
    F32Buf pt = F32Buf(p.part);
    uint pd = p.n_parts * p.D;
    float sw = 0.0, sb = 0.0;
    if (p.stage == 1u) {
        for (uint k = 0u; k < p.n_parts; k++) {
            sw += pt.d[k * p.D + d];
            sb += pt.d[pd + k * p.D + d];
        }
    } else {
        F32Buf g = F32Buf(p.g);
        uint k = gl_WorkGroupID.y;
        uint lo = k * p.rows, hi = min(lo + p.rows, p.N);
        for (uint i = lo; i < hi; i++) {
            float gv = g.d[i * p.D + d];
            if (p.mode == 0u)
                sw += gv * F32Buf(p.x).d[i * p.D + d] * F32Buf(p.rstd).d[i];
            else if (p.mode == 1u)
                sw += gv * (F32Buf(p.x).d[i * p.D + d] - F32Buf(p.mean).d[i]) *
                      F32Buf(p.rstd).d[i];
            sb += gv;
        }
        if (p.n_parts > 1u) {
            pt.d[k * p.D + d] = sw;
            pt.d[pd + k * p.D + d] = sb;
            return;
        }
    }
    if (p.has_dw != 0u)
        F32Buf(p.dw).d[d] += sw;
    if (p.has_db != 0u)
        F32Buf(p.db).d[d] += sb;
}
