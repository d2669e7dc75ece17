#version 450
// dropout.comp - inverted dropout with Philox4x32-10 (lt_dropout in compute.h defines the
// mask): element i has the 64-bit counter first + i. Invocation b draws block j0 + b
// (j0 = first / 4; counter {j lo, j hi, 0, 0}, key {key lo, key hi}) and handles elements
// 4b - lead .. 4b - lead + 3 (lead = first % 4) that lie in [0, n); element i is kept iff
// (word[(first + i) % 4] >> 8) * 2^-24 >= p and becomes x * scale, else 0. o may alias x
// (each element is read, then written, by one invocation). The host refuses tensors past
// 2^32 - 7 elements.
#include "lt_common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 o, x;
    uvec2 key; // low word first
    uvec2 j0;  // first / 4, low word first
    uint n, lead;
    float p, scale;
} p;

uvec4 philox(uvec4 c, uvec2 k)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0)
            k += uvec2(0x9E3779B9u, 0xBB67AE85u);
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, c.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
        c = uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

void main()
{
    uint b = lt_group() * 256u + gl_LocalInvocationID.x;
    if (b >= (p.n + p.lead + 3u) / 4u)
        return;
    uint carry;
    uint jlo = uaddCarry(p.j0.x, b, carry);
    uvec4 w = philox(uvec4(jlo, p.j0.y + carry, 0u, 0u), p.key);
    F32Buf o = F32Buf(p.o), x = F32Buf(p.x);
    for (uint t = 0u; t < 4u; t++) {
        uint c = b * 4u + t; // element c - lead
        if (c < p.lead)
            continue;
        uint i = c - p.lead;
        if (i >= p.n)
            break;
        float u = float(w[t] >> 8) * (1.0 / 16777216.0);
        float v = x.d[i];
        o.d[i] = u >= p.p ? v * p.scale : 0.0;
    }
}
