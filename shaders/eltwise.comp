#version 450
// eltwise.comp - the elementwise ops, one invocation per element, chosen by mode:
//  0 add o = a + b          1 scale o *= alpha        2 axpy o += alpha a
//  3 silu o = silu(a)       4 silu' o = b silu'(a)    5 gelu o = gelu(a)
//  6 gelu' o = b gelu'(a)   7 swiglu o = silu(a) c    8 swiglu' o = b c silu'(a), o1 = b silu(a)
//  9 bias o[i] += a[i % D] (a of dtype adt)          10 clip o *= min(1, alpha / (a[0] + 1e-6))
// (in modes 4, 6 and 8, b is the incoming gradient; c is "up")
#include "lt_common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform P {
    uvec2 o, o1, a, b, c;
    uint n, mode, D, adt;
    float alpha;
} p;

float sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }
float tanh_stable(float u)
{
    float t = exp(-2.0 * abs(u));
    float r = (1.0 - t) / (1.0 + t);
    return u < 0.0 ? -r : r;
}
const float GELU_K = 0.7978845608028654; // sqrt(2 / pi)
const float GELU_C = 0.044715;

void main()
{
    uint i = lt_group() * 256u + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    F32Buf o = F32Buf(p.o), a = F32Buf(p.a), b = F32Buf(p.b);
    uint mode = p.mode;
    if (mode == 0u) {
        o.d[i] = a.d[i] + b.d[i];
    } else if (mode == 1u) {
        o.d[i] = o.d[i] * p.alpha;
    } else if (mode == 2u) {
        o.d[i] = fma(p.alpha, a.d[i], o.d[i]);
    } else if (mode == 3u) {
        float x = a.d[i];
        o.d[i] = x * sigmoid(x);
    } else if (mode == 4u) {
        float x = a.d[i], s = sigmoid(x);
        o.d[i] = b.d[i] * s * (1.0 + x * (1.0 - s));
    } else if (mode == 5u) {
        float x = a.d[i];
        float t = tanh_stable(GELU_K * (x + GELU_C * x * x * x));
        o.d[i] = 0.5 * x * (1.0 + t);
    } else if (mode == 6u) {
        float x = a.d[i];
        float t = tanh_stable(GELU_K * (x + GELU_C * x * x * x));
        float dt = GELU_K * (1.0 + 3.0 * GELU_C * x * x);
        o.d[i] = b.d[i] * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dt);
    } else if (mode == 7u) {
        float x = a.d[i];
        o.d[i] = x * sigmoid(x) * F32Buf(p.c).d[i];
    } else if (mode == 8u) {
        float x = a.d[i], s = sigmoid(x), g = b.d[i], up = F32Buf(p.c).d[i];
        o.d[i] = g * up * s * (1.0 + x * (1.0 - s));
        F32Buf(p.o1).d[i] = g * x * s;
    } else if (mode == 9u) {
        o.d[i] = o.d[i] + lt_ld(p.a, p.adt, i % p.D);
    } else if (mode == 10u) {
        float f = min(1.0, p.alpha / (a.d[0] + 1e-6));
        o.d[i] = o.d[i] * f;
    }
}
