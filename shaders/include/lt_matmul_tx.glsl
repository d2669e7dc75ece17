// lt_matmul_tx.glsl - tiled matmul C = alpha * op(A) op(B) + beta * C with fp32 accumulation,
// A and B read through uniform texel buffers (R32G32B32A32_UINT: 16 bytes per texel, any
// float dtype decoded from the bits) because storage-buffer loads take a slow scalar path on
// some drivers (lavapipe) while texel fetches are vectorised; C is written by address.
// A workgroup computes one BM x BN tile of C for batch entry gl_WorkGroupID.z; each invocation
// keeps TM x TN = 8 x 8 accumulators; K advances in slices of BK = 16 staged in shared memory.
// When an operand's contiguous dimension is a multiple of 4 and its first element is 4-aligned
// in its view (flag bits in p.vec), it is loaded 4 elements per fetch, else one at a time.
// Every output sums its K products in increasing k with fma, the same order in every variant,
// so results are bit-identical run to run.
// Specialization constants: 0 trans_a, 1 trans_b, 2 dtype of A, 3 dtype of B, 4 BM, 5 BN,
// 6 the workgroup size (BM / TM) * (BN / TN).
#include "lt_common.glsl"
#extension GL_EXT_control_flow_attributes : require

#define TM 8u
#define TN 8u
#define BK 16u
layout(local_size_x_id = 6) in;
layout(constant_id = 0) const uint TRANS_A = 0u;
layout(constant_id = 1) const uint TRANS_B = 0u;
layout(constant_id = 2) const uint DTA = 0u;
layout(constant_id = 3) const uint DTB = 0u;
layout(constant_id = 4) const uint BM = 64u;
layout(constant_id = 5) const uint BN = 64u;
layout(constant_id = 6) const uint WG = 64u;

layout(set = 0, binding = 0) uniform usamplerBuffer TA;
layout(set = 0, binding = 1) uniform usamplerBuffer TB;

layout(push_constant) uniform P {
    uvec2 c;
    uint M, N, K;
    uint a_bstride, b_bstride; // elements between batch entries (0: broadcast)
    uint a_off, b_off;         // element index of A[0] / B[0] in its view
    uint vec;                  // bit 0: A loads by 4, bit 1: B loads by 4
    float alpha, beta;
    uint k_lo, k_hi;           // this dispatch sums k in [k_lo, k_hi) (the host may split K)
} p;

shared float As[BK][BM + 4u];
shared float Bs[BK][BN + 4u];

float lt_dec16(uint dt, uint h) { return dt == DT_F16 ? lt_f16_to_f32(h) : lt_bf16_to_f32(h); }

// element e of a view holding dtype dt
float tx1(usamplerBuffer t, uint dt, uint e)
{
    if (dt == DT_F32)
        return uintBitsToFloat(texelFetch(t, int(e >> 2))[e & 3u]);
    uint w = texelFetch(t, int(e >> 3))[(e >> 1) & 3u];
    return lt_dec16(dt, (e & 1u) != 0u ? w >> 16 : w & 0xffffu);
}

// elements e .. e + 3 (e a multiple of 4)
vec4 tx4(usamplerBuffer t, uint dt, uint e)
{
    if (dt == DT_F32)
        return uintBitsToFloat(texelFetch(t, int(e >> 2)));
    uvec4 v = texelFetch(t, int(e >> 3));
    uvec2 w = (e & 4u) != 0u ? v.zw : v.xy;
    return vec4(lt_dec16(dt, w.x & 0xffffu), lt_dec16(dt, w.x >> 16), lt_dec16(dt, w.y & 0xffffu),
                lt_dec16(dt, w.y >> 16));
}

void load_a(uint tid, uint m0, uint k0, uint abase)
{
    if ((p.vec & 1u) != 0u && TRANS_A == 0u) { // rows of A run along k
        for (uint g = tid; g < BM * (BK / 4u); g += WG) {
            uint mm = g / (BK / 4u), kq = (g % (BK / 4u)) * 4u;
            uint m = m0 + mm, k = k0 + kq;
            vec4 v = vec4(0.0);
            if (m < p.M && k < p.k_hi)
                v = tx4(TA, DTA, p.a_off + abase + m * p.K + k);
            As[kq][mm] = v.x;
            As[kq + 1u][mm] = v.y;
            As[kq + 2u][mm] = v.z;
            As[kq + 3u][mm] = v.w;
        }
    } else if ((p.vec & 1u) != 0u) { // A^T: rows run along m
        for (uint g = tid; g < BK * (BM / 4u); g += WG) {
            uint kk = g / (BM / 4u), mq = (g % (BM / 4u)) * 4u;
            uint m = m0 + mq, k = k0 + kk;
            vec4 v = vec4(0.0);
            if (m < p.M && k < p.k_hi)
                v = tx4(TA, DTA, p.a_off + abase + k * p.M + m);
            As[kk][mq] = v.x;
            As[kk][mq + 1u] = v.y;
            As[kk][mq + 2u] = v.z;
            As[kk][mq + 3u] = v.w;
        }
    } else {
        for (uint idx = tid; idx < BM * BK; idx += WG) {
            uint mm, kk;
            if (TRANS_A == 0u) { mm = idx / BK; kk = idx % BK; }
            else { kk = idx / BM; mm = idx % BM; }
            uint m = m0 + mm, k = k0 + kk;
            float v = 0.0;
            if (m < p.M && k < p.k_hi)
                v = tx1(TA, DTA, p.a_off + abase + (TRANS_A == 0u ? m * p.K + k : k * p.M + m));
            As[kk][mm] = v;
        }
    }
}

void load_b(uint tid, uint n0, uint k0, uint bbase)
{
    if ((p.vec & 2u) != 0u && TRANS_B == 0u) { // rows of B run along n
        for (uint g = tid; g < BK * (BN / 4u); g += WG) {
            uint kk = g / (BN / 4u), nq = (g % (BN / 4u)) * 4u;
            uint n = n0 + nq, k = k0 + kk;
            vec4 v = vec4(0.0);
            if (n < p.N && k < p.k_hi)
                v = tx4(TB, DTB, p.b_off + bbase + k * p.N + n);
            Bs[kk][nq] = v.x;
            Bs[kk][nq + 1u] = v.y;
            Bs[kk][nq + 2u] = v.z;
            Bs[kk][nq + 3u] = v.w;
        }
    } else if ((p.vec & 2u) != 0u) { // B^T: rows run along k
        for (uint g = tid; g < BN * (BK / 4u); g += WG) {
            uint nn = g / (BK / 4u), kq = (g % (BK / 4u)) * 4u;
            uint n = n0 + nn, k = k0 + kq;
            vec4 v = vec4(0.0);
            if (n < p.N && k < p.k_hi)
                v = tx4(TB, DTB, p.b_off + bbase + n * p.K + k);
            Bs[kq][nn] = v.x;
            Bs[kq + 1u][nn] = v.y;
            Bs[kq + 2u][nn] = v.z;
            Bs[kq + 3u][nn] = v.w;
        }
    } else {
        for (uint idx = tid; idx < BN * BK; idx += WG) {
            uint nn, kk;
            if (TRANS_B == 0u) { kk = idx / BN; nn = idx % BN; }
            else { nn = idx / BK; kk = idx % BK; }
            uint n = n0 + nn, k = k0 + kk;
            float v = 0.0;
            if (n < p.N && k < p.k_hi)
                v = tx1(TB, DTB, p.b_off + bbase + (TRANS_B == 0u ? k * p.N + n : n * p.K + k));
            Bs[kk][nn] = v;
        }
    }
}

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint tr = tid / (BN / TN), tc = tid % (BN / TN);
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN, bz = gl_WorkGroupID.z;
    uint abase = bz * p.a_bstride, bbase = bz * p.b_bstride;
    float acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; i++)
        [[unroll]] for (uint j = 0u; j < TN; j++)
            acc[i][j] = 0.0;

    for (uint k0 = p.k_lo; k0 < p.k_hi; k0 += BK) {
        load_a(tid, m0, k0, abase);
        load_b(tid, n0, k0, bbase);
        barrier();
        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            float av[TM], bv[TN];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                av[i] = As[kk][tr + i * (BM / TM)];
            [[unroll]] for (uint j = 0u; j < TN; j++)
                bv[j] = Bs[kk][tc + j * (BN / TN)];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TN; j++)
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier();
    }
    F32Buf C = F32Buf(p.c);
    uint cbase = bz * p.M * p.N;
    [[unroll]] for (uint i = 0u; i < TM; i++) {
        uint m = m0 + tr + i * (BM / TM);
        if (m >= p.M)
            continue;
        [[unroll]] for (uint j = 0u; j < TN; j++) {
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
