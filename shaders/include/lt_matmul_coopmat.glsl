// lt_matmul_coopmat.glsl - matmul C = alpha * op(A) op(B) + beta * C on cooperative matrices
// (GL_KHR_cooperative_matrix): 16-bit inputs (ELT: float16_t or bfloat16_t, set by the
// including file), fp32 accumulation. Built only where glslc accepts the extension and used
// only after the host's self-test against the tiled kernel; the tiled path always remains.
// A workgroup of 4 subgroups (WG = 4 * subgroup size, specialization constant 4) computes a
// 64 x 64 tile of C; subgroup s owns the 32 x 32 quadrant s as NQ x NQ accumulators of
// CM x CM, (M, N, K) = (CM, CM, CM) the configuration the host found in the device's list:
// CM is 16 unless the including file defines it (8: matmul_coopmat8, lavapipe's shape).
// A and B are staged in shared memory as ELT, row-major, with strides that keep every
// coopMatLoad 16-byte aligned; the epilogue goes through a per-subgroup 16 x 16 fp32 staging
// area so edges, alpha and beta are applied element by element.
// Specialization constants: 0 trans_a, 1 trans_b, 2 dtype of A, 3 dtype of B, 4 WG.
// The results are deterministic on one device but sum K in another order than the tiled
// kernels: they match them within rounding, not bit for bit.
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#include "lt_common.glsl"

#ifndef CM
#define CM 16
#endif
#define NQ (32u / uint(CM)) // accumulators per quadrant side
#define BM 64u
#define BN 64u
#define BK 32u
#define SA (BK + 8u) // row stride of As, elements (80 bytes)
#define SB (BN + 8u) // row stride of Bs, elements (144 bytes)

layout(local_size_x_id = 4) in;
layout(constant_id = 0) const uint TRANS_A = 0u;
layout(constant_id = 1) const uint TRANS_B = 0u;
layout(constant_id = 2) const uint DTA = 1u;
layout(constant_id = 3) const uint DTB = 1u;
layout(constant_id = 4) const uint WG = 128u;

layout(push_constant) uniform P {
    uvec2 c, a, b;
    uint M, N, K;
    uint a_bstride, b_bstride;
    float alpha, beta;
} p;

shared ELT As[BM * SA];
shared ELT Bs[BK * SB];
shared float Cs[4u * uint(CM * CM)];

void main()
{
    uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID;
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN, bz = gl_WorkGroupID.z;
    uint abase = bz * p.a_bstride, bbase = bz * p.b_bstride;
    uint qm = (sg / 2u) * 32u, qn = (sg % 2u) * 32u;
    coopmat<float, gl_ScopeSubgroup, CM, CM, gl_MatrixUseAccumulator> acc[NQ * NQ]; // [NQ i + j]
    [[unroll]] for (uint q = 0u; q < NQ * NQ; q++)
        acc[q] = coopmat<float, gl_ScopeSubgroup, CM, CM, gl_MatrixUseAccumulator>(0.0);

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        for (uint idx = tid; idx < BM * BK; idx += WG) {
            uint mm, kk;
            if (TRANS_A == 0u) { mm = idx / BK; kk = idx % BK; }
            else { kk = idx / BM; mm = idx % BM; }
            uint m = m0 + mm, k = k0 + kk;
            float v = 0.0;
            if (m < p.M && k < p.K)
                v = lt_ld(p.a, DTA, abase + (TRANS_A == 0u ? m * p.K + k : k * p.M + m));
            As[mm * SA + kk] = ELT(v);
        }
        for (uint idx = tid; idx < BN * BK; idx += WG) {
            uint nn, kk;
            if (TRANS_B == 0u) { kk = idx / BN; nn = idx % BN; }
            else { nn = idx / BK; kk = idx % BK; }
            uint n = n0 + nn, k = k0 + kk;
            float v = 0.0;
            if (n < p.N && k < p.K)
                v = lt_ld(p.b, DTB, bbase + (TRANS_B == 0u ? k * p.N + n : n * p.K + k));
            Bs[kk * SB + nn] = ELT(v);
        }
        barrier();
        if (sg < 4u) {
            [[unroll]] for (uint kk = 0u; kk < BK; kk += uint(CM)) {
                coopmat<ELT, gl_ScopeSubgroup, CM, CM, gl_MatrixUseA> a[NQ];
                coopmat<ELT, gl_ScopeSubgroup, CM, CM, gl_MatrixUseB> b[NQ];
                [[unroll]] for (uint i = 0u; i < NQ; i++)
                    coopMatLoad(a[i], As, (qm + uint(CM) * i) * SA + kk, SA,
                                gl_CooperativeMatrixLayoutRowMajor);
                [[unroll]] for (uint j = 0u; j < NQ; j++)
                    coopMatLoad(b[j], Bs, kk * SB + qn + uint(CM) * j, SB,
                                gl_CooperativeMatrixLayoutRowMajor);
                [[unroll]] for (uint i = 0u; i < NQ; i++)
                    [[unroll]] for (uint j = 0u; j < NQ; j++)
                        acc[NQ * i + j] = coopMatMulAdd(a[i], b[j], acc[NQ * i + j]);
            }
        }
        barrier();
    }
    if (sg >= 4u)
        return;
    F32Buf C = F32Buf(p.c);
    uint cbase = bz * p.M * p.N;
    const uint CC = uint(CM * CM);
    [[unroll]] for (uint i = 0u; i < NQ; i++)
        [[unroll]] for (uint j = 0u; j < NQ; j++) {
            coopMatStore(acc[NQ * i + j], Cs, sg * CC, uint(CM),
                         gl_CooperativeMatrixLayoutRowMajor);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = gl_SubgroupInvocationID; e < CC; e += gl_SubgroupSize) {
                uint m = m0 + qm + uint(CM) * i + e / uint(CM);
                uint n = n0 + qn + uint(CM) * j + e % uint(CM);
                if (m < p.M && n < p.N) {
                    uint ci = cbase + m * p.N + n;
                    float r = p.alpha * Cs[sg * CC + e];
                    if (p.beta != 0.0)
                        r += p.beta * C.d[ci];
                    C.d[ci] = r;
                }
            }
            subgroupBarrier();
        }
}
