// lt_common.glsl - what every lathe shader shares: tensors addressed by buffer device
// address (a uvec2 holding the byte address of element 0, passed in push constants), dtype
// codes matching lt_dtype, loads of any float dtype as fp32, f16/bf16 conversions that round
// to nearest even exactly like the CPU backend, and 16-bit stores that never disturb the
// neighbouring element. Nothing here depends on 16-bit storage or float16 features.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference_uvec2 : require

layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32Buf { float d[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer U32Buf { uint d[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer I32Buf { int d[]; };

#define DT_F32 0u
#define DT_F16 1u
#define DT_BF16 2u
#define DT_I32 3u

// the flat index of this workgroup (the host splits large grids over x and y)
uint lt_group() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

// 16-bit tensors: the 4-byte aligned word base and the element offset (0 or 1) within it
uvec2 lt_wbase(uvec2 a) { return uvec2(a.x & ~3u, a.y); }
uint lt_hoff(uvec2 a) { return (a.x >> 1) & 1u; }

float lt_f16_to_f32(uint h)
{
    uint s = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu;
    uint m = h & 0x3ffu;
    if (e == 0u) {
        float v = float(m) * (1.0 / 16777216.0);
        return s != 0u ? -v : v;
    }
    if (e == 31u)
        return uintBitsToFloat(s | 0x7f800000u | (m << 13));
    return uintBitsToFloat(s | ((e + 112u) << 23) | (m << 13));
}

uint lt_f32_to_f16(float f)
{
    uint x = floatBitsToUint(f);
    uint s = (x >> 16) & 0x8000u;
    uint ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)
        return s | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u);
    if (ax >= 0x477ff000u) // rounds to infinity
        return s | 0x7c00u;
    if (ax < 0x38800000u) { // half subnormal range
        if (ax <= 0x33000000u) // <= 2^-25: rounds to zero (the tie goes to even 0)
            return s;
        uint e = ax >> 23;
        uint m = (ax & 0x7fffffu) | 0x800000u;
        uint shift = 126u - e;
        uint q = m >> shift;
        uint rem = m & ((1u << shift) - 1u);
        uint half_ = 1u << (shift - 1u);
        if (rem > half_ || (rem == half_ && (q & 1u) != 0u))
            q++;
        return s | q;
    }
    uint r = ax - 0x38000000u;
    return s | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13);
}

float lt_bf16_to_f32(uint b) { return uintBitsToFloat(b << 16); }

uint lt_f32_to_bf16(float f)
{
    uint x = floatBitsToUint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (x >> 16) | 0x40u;
    return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}

uint lt_to16(uint dt, float v) { return dt == DT_F16 ? lt_f32_to_f16(v) : lt_f32_to_bf16(v); }

// element i of a tensor of float dtype dt, as fp32
float lt_ld(uvec2 a, uint dt, uint i)
{
    if (dt == DT_F32)
        return F32Buf(a).d[i];
    uint j = i + lt_hoff(a);
    uint w = U32Buf(lt_wbase(a)).d[j >> 1];
    uint h = (j & 1u) != 0u ? (w >> 16) : (w & 0xffffu);
    return dt == DT_F16 ? lt_f16_to_f32(h) : lt_bf16_to_f32(h);
}

// 16-bit stores, one 32-bit word per invocation: word w (counted from the tensor's word base)
// holds elements e0 = 2w - hoff and e0 + 1. Elements outside [0, n) are left untouched, with
// atomics so a neighbour written by another dispatch at the same time survives.
int lt_w_e0(uvec2 a, uint w) { return int(2u * w) - int(lt_hoff(a)); }
uint lt_words(uvec2 a, uint n) { return (n + lt_hoff(a) + 1u) / 2u; }
void lt_st16_word(uvec2 a, uint w, uint n, uint b0, uint b1)
{
    U32Buf wb = U32Buf(lt_wbase(a));
    int e0 = lt_w_e0(a, w);
    bool ok0 = e0 >= 0 && uint(e0) < n;
    bool ok1 = uint(e0 + 1) < n;
    if (ok0 && ok1) {
        wb.d[w] = (b0 & 0xffffu) | (b1 << 16);
    } else if (ok0) {
        atomicAnd(wb.d[w], 0xffff0000u);
        atomicOr(wb.d[w], b0 & 0xffffu);
    } else if (ok1) {
        atomicAnd(wb.d[w], 0x0000ffffu);
        atomicOr(wb.d[w], b1 << 16);
    }
}
