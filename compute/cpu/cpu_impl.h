/*
 * cpu_impl.h - shared internals of the CPU backend (the files in compute/cpu): the op functions the
 * backend table points at, and small helpers for reading tensors of any float dtype.
 *
 * Arguments reaching these functions were validated by the front end; nothing here checks
 * shapes or formats user-facing errors. Parallel loops use OpenMP with a static schedule and
 * the device's thread count, and every reduction runs in a fixed order.
 */
#ifndef LATHE_CPU_IMPL_H
#define LATHE_CPU_IMPL_H

#include "compute_impl.h"

#include <math.h>
#include <string.h>

static inline float lt_cpu_load(const void *base, lt_dtype dt, int64_t i)
{
    switch (dt) {
    case LT_F16: return lt_f16_to_f32(((const uint16_t *)base)[i]);
    case LT_BF16: return lt_bf16_to_f32(((const uint16_t *)base)[i]);
    default: return ((const float *)base)[i];
    }
}

static inline void lt_cpu_store(void *base, lt_dtype dt, int64_t i, float v)
{
    switch (dt) {
    case LT_F16: ((uint16_t *)base)[i] = lt_f32_to_f16(v); break;
    case LT_BF16: ((uint16_t *)base)[i] = lt_f32_to_bf16(v); break;
    default: ((float *)base)[i] = v; break;
    }
}

/* The row kernels' loops must vectorise: GCC if-converts the float selects below only when
 * floating-point operations are known not to trap (lathe never enables FP exceptions). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/*
 * exp(x) in float for the row kernels (softmax, attention, cross-entropy, SiLU): Cody-Waite
 * reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial for exp(r) (Cephes expf, within
 * 1 ulp of the correctly rounded result for normal results) and 2^n built in the exponent
 * bits. Branch-free, so a loop over it vectorises (`#pragma omp simd`). Inputs below -87.3
 * (and -inf) give 0, inputs above 88.7 give +inf; NaN gives NaN.
 */
static inline float lt_cpu_expf(float x)
{
    const float hi = 88.72283905206835f, lo = -87.33654475055310f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    xc = xc == xc ? xc : 0.0f; /* NaN: any finite stand-in (the result is x), so the integer
                                * conversion and shifts below stay defined */
    /* round xc / ln2 to the nearest integer with the 1.5 * 2^23 trick */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f; /* ln2 in two parts */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    /* 2^n as two factors, so n = 128 (xc near hi) does not overflow the exponent field */
    int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1; /* n in [-126, 128] */
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    y = y * s1 * s2;
    y = x < lo ? 0.0f : y;
    y = x > hi ? INFINITY : y;
    return x != x ? x : y;
}

/* Converts n elements of a float tensor's memory (from element i0) into dst. */
void lt_cpu_to_f32(float *dst, const void *base, lt_dtype dt, int64_t i0, int64_t n);

static inline float *lt_cpu_f(const lt_tensor *t) { return (float *)lt_cpu_data(t); }
static inline int32_t *lt_cpu_i(const lt_tensor *t) { return (int32_t *)lt_cpu_data(t); }
static inline int lt_cpu_nt(const lt_device *dev) { return dev->n_threads > 0 ? dev->n_threads : 1; }

lt_status lt_cpu_matmul(lt_device *dev, lt_tensor *C, const lt_tensor *A, const lt_tensor *B,
                        bool trans_a, bool trans_b, float alpha, float beta,
                        const lt_matmul_geom *g);
/* lt_matmul with B in NF4 (cpu_nf4.c). */
lt_status lt_cpu_matmul_nf4(lt_device *dev, lt_tensor *C, const lt_tensor *A,
                            const lt_tensor *B, bool trans_a, bool trans_b, float alpha,
                            float beta, const lt_matmul_geom *g);

lt_status lt_cpu_embedding(lt_device *dev, lt_tensor *out, const lt_tensor *table,
                           const lt_tensor *ids);
lt_status lt_cpu_embedding_backward(lt_device *dev, lt_tensor *dtable, const lt_tensor *dout,
                                    const lt_tensor *ids);
lt_status lt_cpu_rmsnorm(lt_device *dev, lt_tensor *out, lt_tensor *rstd, const lt_tensor *x,
                         const lt_tensor *w, float eps);
lt_status lt_cpu_rmsnorm_backward(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                  const lt_tensor *dout, const lt_tensor *x, const lt_tensor *w,
                                  const lt_tensor *rstd);
lt_status lt_cpu_layernorm(lt_device *dev, lt_tensor *out, lt_tensor *mean, lt_tensor *rstd,
                           const lt_tensor *x, const lt_tensor *w, const lt_tensor *b,
                           float eps);
lt_status lt_cpu_layernorm_backward(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                    lt_tensor *db, const lt_tensor *dout, const lt_tensor *x,
                                    const lt_tensor *w, const lt_tensor *mean,
                                    const lt_tensor *rstd);
lt_status lt_cpu_rope(lt_device *dev, lt_tensor *x, const lt_tensor *pos, const lt_tensor *inv_freq,
                      float mscale, bool inverse);
lt_status lt_cpu_cross_entropy(lt_device *dev, lt_tensor *loss, lt_tensor *row_loss,
                               lt_tensor *dlogits, const lt_tensor *logits,
                               const lt_tensor *labels, int ignore_index, float grad_scale,
                               int64_t n_counted);
lt_status lt_cpu_logprob_gather(lt_device *dev, lt_tensor *out, const lt_tensor *logits,
                                const lt_tensor *ids);
lt_status lt_cpu_logprob_gather_backward(lt_device *dev, lt_tensor *dlogits,
                                         const lt_tensor *dout, const lt_tensor *logits,
                                         const lt_tensor *ids);
lt_status lt_cpu_attention(lt_device *dev, lt_tensor *out, lt_tensor *lse, const lt_tensor *q,
                           const lt_tensor *k, const lt_tensor *v, const lt_tensor *seg,
                           const lt_attn_params *p);
lt_status lt_cpu_attention_backward(lt_device *dev, lt_tensor *dq, lt_tensor *dk,
                                    lt_tensor *dv, const lt_tensor *dout, const lt_tensor *q,
                                    const lt_tensor *k, const lt_tensor *v,
                                    const lt_tensor *out, const lt_tensor *lse,
                                    const lt_tensor *seg, const lt_attn_params *p);

#endif
