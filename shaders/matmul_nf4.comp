#version 450
// matmul_nf4.comp - C = alpha * op(A) op(B) + beta * C with A in F32 and B an NF4 weight
// (2-D, packed as compute/nf4.c lays it out: codes two per byte, the first element in the
// high nibble; then fp32 absmax per block of 64, or with double quantization u8 codes per
// block, fp32 scales per 256 blocks and one fp32 mean). B is dequantized element by element
// in the tile loader into shared memory as lt_nf4_codes[q] * absmax in fp32, the same
// products the CPU backend forms, so only the summation order differs from the CPU.
// Tiles of 16x16 outputs, one per invocation; K walked in order in steps of 16, so each
// output is a fixed-order fp32 sum (the same bits every run). z indexes the batch of A and C.
#include "lt_common.glsl"
layout(local_size_x = 16, local_size_y = 16) in;
layout(push_constant) uniform P {
    uvec2 c, a, b;
    uint M, N, K, a_bstride;
    uint trans_a, trans_b, dq;
    uint scale_word; // the absmax f32 (or, with dq, the u8 absmax codes) from b, in words
    uint dq_word;    // dq: the f32 scales from b, in words; the mean follows the n_dq scales
    uint n_dq;
    float alpha, beta;
} p;

const float codes[16] = float[16](
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0);

shared float As[16][17];
shared float Bs[16][17];

float absmax(U32Buf w, uint j)
{
    if (p.dq == 0u)
        return uintBitsToFloat(w.d[p.scale_word + j]);
    uint byte = (w.d[p.scale_word + (j >> 2)] >> (8u * (j & 3u))) & 0xffu;
    int q = int(byte << 24) >> 24; // sign-extend the int8 code
    float sc = uintBitsToFloat(w.d[p.dq_word + j / 256u]);
    float mean = uintBitsToFloat(w.d[p.dq_word + p.n_dq]);
    precise float s = float(q) / 127.0 * sc;
    precise float r = s + mean;
    return r;
}

// element i of B (flat index into its [rows, cols] storage), dequantized
float b_elem(U32Buf w, uint i)
{
    uint byte = (w.d[i >> 3] >> (8u * ((i >> 1) & 3u))) & 0xffu;
    uint q = (i & 1u) != 0u ? (byte & 15u) : (byte >> 4);
    precise float v = codes[q] * absmax(w, i / 64u);
    return v;
}

void main()
{
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint col = gl_WorkGroupID.x * 16u + tx, row = gl_WorkGroupID.y * 16u + ty;
    uint bz = gl_WorkGroupID.z;
    F32Buf A = F32Buf(p.a);
    U32Buf B = U32Buf(p.b);
    uint a0 = bz * p.a_bstride;
    float acc = 0.0;
    for (uint k0 = 0u; k0 < p.K; k0 += 16u) {
        // A tile: rows of this group, k0 + tx
        uint ka = k0 + tx;
        float av = 0.0;
        if (row < p.M && ka < p.K)
            av = A.d[a0 + (p.trans_a != 0u ? ka * p.M + row : row * p.K + ka)];
        As[ty][tx] = av;
        // B tile: k0 + ty, columns of this group
        uint kb = k0 + ty;
        float bv = 0.0;
        if (col < p.N && kb < p.K)
            bv = b_elem(B, p.trans_b != 0u ? col * p.K + kb : kb * p.N + col);
        Bs[ty][tx] = bv;
        barrier();
        uint kn = min(16u, p.K - k0);
        for (uint k = 0u; k < kn; k++)
            acc += As[ty][k] * Bs[k][tx];
        barrier();
    }
    if (row >= p.M || col >= p.N)
        return;
    uint ci = bz * p.M * p.N + row * p.N + col;
    F32Buf C = F32Buf(p.c);
    float v = p.alpha * acc;
    if (p.beta != 0.0)
        v += p.beta * C.d[ci];
    C.d[ci] = v;
}
