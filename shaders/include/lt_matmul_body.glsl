// lt_matmul_body.glsl - tiled matmul C = alpha * op(A) op(B) + beta * C with fp32 accumulation.
// The including file defines BM, BN (the C tile), BK (the K slice) and TM, TN (each
// invocation's register tile); WG = (BM / TM) * (BN / TN) invocations per workgroup.
// A workgroup computes one BM x BN tile of C for batch entry gl_WorkGroupID.z: slices of A
// and B are staged in shared memory, each invocation keeps TM x TN accumulators, rows and
// columns strided across invocations so shared reads avoid bank conflicts and C stores are
// coalesced. Specialization constants: 0 trans_a, 1 trans_b, 2 dtype of A, 3 dtype of B.
#include "lt_common.glsl"

#define WG ((BM / TM) * (BN / TN))
layout(local_size_x = WG) in;
layout(constant_id = 0) const uint TRANS_A = 0u;
layout(constant_id = 1) const uint TRANS_B = 0u;
layout(constant_id = 2) const uint DTA = 0u;
layout(constant_id = 3) const uint DTB = 0u;

layout(push_constant) uniform P {
    uvec2 c, a, b;
    uint M, N, K;
    uint a_bstride, b_bstride; // elements between batch entries (0: broadcast)
    float alpha, beta;
    uint k_lo, k_hi; // this dispatch sums k in [k_lo, k_hi) (the host may split K)
} p;

shared float As[BK][BM + 4];
shared float Bs[BK][BN + 4];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint tr = tid / (BN / TN), tc = tid % (BN / TN);
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN, bz = gl_WorkGroupID.z;
    uint abase = bz * p.a_bstride, bbase = bz * p.b_bstride;
    float acc[TM][TN];
    for (uint i = 0u; i < TM; i++)
        for (uint j = 0u; j < TN; j++)
            acc[i][j] = 0.0;

    for (uint k0 = p.k_lo; k0 < p.k_hi; k0 += BK) {
        for (uint idx = tid; idx < BM * BK; idx += WG) {
            uint mm, kk;
            if (TRANS_A == 0u) { mm = idx / BK; kk = idx % BK; }
            else { kk = idx / BM; mm = idx % BM; }
            uint m = m0 + mm, k = k0 + kk;
            float v = 0.0;
            if (m < p.M && k < p.k_hi)
                v = lt_ld(p.a, DTA, abase + (TRANS_A == 0u ? m * p.K + k : k * p.M + m));
            As[kk][mm] = v;
        }
        for (uint idx = tid; idx < BN * BK; idx += WG) {
            uint nn, kk;
            if (TRANS_B == 0u) { kk = idx / BN; nn = idx % BN; }
            else { nn = idx / BK; kk = idx % BK; }
            uint n = n0 + nn, k = k0 + kk;
            float v = 0.0;
            if (n < p.N && k < p.k_hi)
                v = lt_ld(p.b, DTB, bbase + (TRANS_B == 0u ? k * p.N + n : n * p.K + k));
            Bs[kk][nn] = v;
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float av[TM], bv[TN];
            for (uint i = 0u; i < TM; i++)
                av[i] = As[kk][tr + i * (BM / TM)];
            for (uint j = 0u; j < TN; j++)
                bv[j] = Bs[kk][tc + j * (BN / TN)];
            for (uint i = 0u; i < TM; i++)
                for (uint j = 0u; j < TN; j++)
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier();
    }
    F32Buf C = F32Buf(p.c);
    uint cbase = bz * p.M * p.N;
    for (uint i = 0u; i < TM; i++) {
        uint m = m0 + tr + i * (BM / TM);
        if (m >= p.M)
            continue;
        for (uint j = 0u; j < TN; j++) {
            uint n = n0 + tc + j * (BN / TN);
            if (n >= p.N)
                continue;
            uint ci = cbase + m * p.N + n;
            float r = p.alpha * acc[i][j];
            if (p.beta != 0.0)
                r += p.beta * C.d[ci];
            C.d[ci] = r;
        }
    }
}
