#version 450
// matmul_txd.comp - matmul for CPU-type Vulkan devices (lavapipe): no shared memory, no
// barriers. Each invocation computes an 8 x 8 block of C straight from texel fetches of A
// and B (4 elements of K per fetch, 16 fetches per 256 fma), because there shared-memory
// loads and barriers are slow while texel fetches are vectorised. An operand whose contiguous
// dimension and first element are 4-aligned (flag bits in p.vec, as matmul_tx) is read 4
// elements per fetch, any other one element per fetch. Each output sums its K
// products in increasing k with fma, the same order as every other matmul variant.
// Specialization constants: 0 trans_a, 1 trans_b, 2 dtype of A, 3 dtype of B, 4 the vec
// flags (a variant per alignment, so the aligned one stays as lean as it was). Push constants
// as matmul_tx. A workgroup of 64 covers a 64 x 64 tile of C for batch gl_WorkGroupID.z.
#extension GL_EXT_control_flow_attributes : require
#include "lt_common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint TRANS_A = 0u;
layout(constant_id = 1) const uint TRANS_B = 0u;
layout(constant_id = 2) const uint DTA = 0u;
layout(constant_id = 3) const uint DTB = 0u;
layout(constant_id = 4) const uint VEC = 3u; // p.vec, fixed per pipeline

layout(set = 0, binding = 0) uniform usamplerBuffer TA;
layout(set = 0, binding = 1) uniform usamplerBuffer TB;

layout(push_constant) uniform P {
    uvec2 c;
    uint M, N, K;
    uint a_bstride, b_bstride;
    uint a_off, b_off;
    uint vec;
    float alpha, beta;
    uint k_lo, k_hi; // this dispatch sums k in [k_lo, k_hi) (k_lo a multiple of 4)
} p;

float lt_dec16(uint dt, uint h) { return dt == DT_F16 ? lt_f16_to_f32(h) : lt_bf16_to_f32(h); }

// elements e .. e + 3 of a view of dtype dt (e a multiple of 4)
vec4 tx4a(uint e)
{
    if (DTA == DT_F32)
        return uintBitsToFloat(texelFetch(TA, int(e >> 2)));
    uvec4 v = texelFetch(TA, int(e >> 3));
    uvec2 w = (e & 4u) != 0u ? v.zw : v.xy;
    return vec4(lt_dec16(DTA, w.x & 0xffffu), lt_dec16(DTA, w.x >> 16),
                lt_dec16(DTA, w.y & 0xffffu), lt_dec16(DTA, w.y >> 16));
}
vec4 tx4b(uint e)
{
    if (DTB == DT_F32)
        return uintBitsToFloat(texelFetch(TB, int(e >> 2)));
    uvec4 v = texelFetch(TB, int(e >> 3));
    uvec2 w = (e & 4u) != 0u ? v.zw : v.xy;
    return vec4(lt_dec16(DTB, w.x & 0xffffu), lt_dec16(DTB, w.x >> 16),
                lt_dec16(DTB, w.y & 0xffffu), lt_dec16(DTB, w.y >> 16));
}

// element e of a view of dtype dt (any alignment)
float tx1(usamplerBuffer t, uint dt, uint e)
{
    if (dt == DT_F32)
        return uintBitsToFloat(texelFetch(t, int(e >> 2))[e & 3u]);
    uint w = texelFetch(t, int(e >> 3))[(e >> 1) & 3u];
    return lt_dec16(dt, (e & 1u) != 0u ? w >> 16 : w & 0xffffu);
}
// op(A)(m, k) and op(B)(k, n) one element at a time, 0 outside the product and this K range
float lda(uint m, uint k, uint abase)
{
    if (m >= p.M || k >= p.k_hi)
        return 0.0;
    return tx1(TA, DTA, abase + (TRANS_A == 0u ? m * p.K + k : k * p.M + m));
}
float ldb(uint k, uint n, uint bbase)
{
    if (n >= p.N || k >= p.k_hi)
        return 0.0;
    return tx1(TB, DTB, bbase + (TRANS_B == 0u ? k * p.N + n : n * p.K + k));
}

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint mb = gl_WorkGroupID.y * 64u + (tid / 8u) * 8u; // this invocation's rows mb .. mb+7
    uint nb = gl_WorkGroupID.x * 64u + (tid % 8u) * 8u; // and columns nb .. nb+7
    uint bz = gl_WorkGroupID.z;
    uint abase = p.a_off + bz * p.a_bstride, bbase = p.b_off + bz * p.b_bstride;
    float acc[8][8];
    [[unroll]] for (uint i = 0u; i < 8u; i++)
        [[unroll]] for (uint j = 0u; j < 8u; j++)
            acc[i][j] = 0.0;

    for (uint k = p.k_lo; k < p.k_hi; k += 4u) {
        float a[8][4], b[4][8]; // a[i][kk] = A(mb+i, k+kk), b[kk][j] = B(k+kk, nb+j)
        if ((VEC & 1u) == 0u) { // A not 4-aligned: element by element
            [[unroll]] for (uint i = 0u; i < 8u; i++)
                [[unroll]] for (uint kk = 0u; kk < 4u; kk++)
                    a[i][kk] = lda(mb + i, k + kk, abase);
        } else if (TRANS_A == 0u) { // A rows run along k (K % 4 == 0)
            [[unroll]] for (uint i = 0u; i < 8u; i++) {
                uint m = min(mb + i, p.M - 1u);
                vec4 v = tx4a(abase + m * p.K + k);
                if (mb + i >= p.M)
                    v = vec4(0.0);
                a[i][0] = v.x; a[i][1] = v.y; a[i][2] = v.z; a[i][3] = v.w;
            }
        } else { // A^T rows run along m (M % 4 == 0)
            [[unroll]] for (uint kk = 0u; kk < 4u; kk++) {
                uint kc = min(k + kk, p.k_hi - 1u);
                [[unroll]] for (uint h = 0u; h < 2u; h++) {
                    uint m = mb + 4u * h;
                    vec4 v = tx4a(abase + kc * p.M + min(m, p.M - 4u));
                    if (m >= p.M || k + kk >= p.k_hi)
                        v = vec4(0.0);
                    a[4u * h][kk] = v.x; a[4u * h + 1u][kk] = v.y;
                    a[4u * h + 2u][kk] = v.z; a[4u * h + 3u][kk] = v.w;
                }
            }
        }
        if ((VEC & 2u) == 0u) { // B not 4-aligned: element by element
            [[unroll]] for (uint kk = 0u; kk < 4u; kk++)
                [[unroll]] for (uint j = 0u; j < 8u; j++)
                    b[kk][j] = ldb(k + kk, nb + j, bbase);
        } else if (TRANS_B == 0u) { // B rows run along n (N % 4 == 0)
            [[unroll]] for (uint kk = 0u; kk < 4u; kk++) {
                uint kc = min(k + kk, p.k_hi - 1u);
                [[unroll]] for (uint h = 0u; h < 2u; h++) {
                    uint n = nb + 4u * h;
                    vec4 v = tx4b(bbase + kc * p.N + min(n, p.N - 4u));
                    if (n >= p.N || k + kk >= p.k_hi)
                        v = vec4(0.0);
                    b[kk][4u * h] = v.x; b[kk][4u * h + 1u] = v.y;
                    b[kk][4u * h + 2u] = v.z; b[kk][4u * h + 3u] = v.w;
                }
            }
        } else { // B^T rows run along k (K % 4 == 0)
            [[unroll]] for (uint j = 0u; j < 8u; j++) {
                uint n = min(nb + j, p.N - 1u);
                vec4 v = tx4b(bbase + n * p.K + k);
                if (nb + j >= p.N)
                    v = vec4(0.0);
                b[0][j] = v.x; b[1][j] = v.y; b[2][j] = v.z; b[3][j] = v.w;
            }
        }
        [[unroll]] for (uint kk = 0u; kk < 4u; kk++)
            [[unroll]] for (uint i = 0u; i < 8u; i++)
                [[unroll]] for (uint j = 0u; j < 8u; j++)
                    acc[i][j] = fma(a[i][kk], b[kk][j], acc[i][j]);
    }
    F32Buf C = F32Buf(p.c);
    uint cbase = bz * p.M * p.N;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint m = mb + i;
        if (m >= p.M)
            break;
        [[unroll]] for (uint j = 0u; j < 8u; j++) {
            uint n = nb + j;
            if (n < p.N) {
                uint ci = cbase + m * p.N + n;
                float r = p.alpha * acc[i][j];
                if (p.beta != 0.0)
                    r += p.beta * C.d[ci];
                C.d[ci] = r;
            }
        }
    }
}
