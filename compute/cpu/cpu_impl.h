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
lt_status lt_cpu_rope(lt_device *dev, lt_tensor *x, const lt_tensor *pos, float theta,
                      bool inverse);
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
