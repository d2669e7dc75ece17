/*
 * compute_impl.h - what a backend implements, and the structs behind compute.h's handles.
 *
 * Only compute/ includes this file. The front end (the .c files in compute/) validates every argument
 * (shapes, dtypes, devices) and writes the error message; a backend's op is called only with
 * arguments that passed, so backends never re-check and never format user-facing errors
 * except for device failures.
 */
#ifndef LATHE_COMPUTE_IMPL_H
#define LATHE_COMPUTE_IMPL_H

#include "compute.h"

#include <stdarg.h>

struct lt_tensor {
    lt_device *dev;
    lt_dtype dtype;
    int ndim;
    int64_t shape[LT_MAX_DIMS];
    int64_t numel;
    void *buf;         /* backend allocation (CPU: host pointer to the allocation's start) */
    size_t offset;     /* byte offset of element 0 within buf (non-zero for views) */
    size_t alloc_bytes; /* bytes allocated for buf; 0 for views */
    lt_tensor *parent; /* the tensor owning buf, for views; NULL otherwise */
    char name[64];
    lt_tensor *prev, *next; /* the device's list of live tensors */
    bool nf4_dq;            /* LT_NF4: the absmax scales are double-quantized */
};

/* Precomputed matmul geometry, filled by the front end (see lt_matmul in compute.h). */
typedef struct lt_matmul_geom {
    int64_t batch;        /* number of C matrices */
    int64_t M, N, K;
    bool a_batched;       /* A has a batch dim (else broadcast) */
    bool b_batched;
} lt_matmul_geom;

#define LT_PROFILE_MAX 64

typedef struct lt_backend lt_backend;

struct lt_device {
    const lt_backend *be;
    void *impl; /* backend state */
    lt_device_kind kind;
    char name[256];
    char err[2048];
    char oom_hint[512]; /* appended to every LT_ERR_OOM message ("" = none) */
    int n_threads;
    size_t mem_in_use, mem_peak;
    size_t host_in_use, host_peak; /* host-resident bytes registered by callers */
    bool profiling;
    int n_profile;
    lt_profile_entry profile[LT_PROFILE_MAX];
    lt_tensor *tensors; /* list of live tensors, freed at close */
};

/*
 * The op table. Every entry returns LT_OK or a device failure (with lt_dev_error set).
 * Arguments have been validated by the front end. Optional tensors are NULL when absent.
 */
struct lt_backend {
    const char *name;
    bool profiles_itself; /* true: the backend fills dev->profile (GPU timestamps) */

    void (*close)(lt_device *dev);
    lt_status (*sync)(lt_device *dev);
    /* Allocate bytes of device memory: *buf receives the backend's handle. */
    lt_status (*alloc)(lt_device *dev, size_t bytes, void **buf);
    void (*release)(lt_device *dev, void *buf);
    lt_status (*upload)(lt_device *dev, lt_tensor *t, const void *src, size_t bytes);
    lt_status (*download)(lt_device *dev, const lt_tensor *t, void *dst, size_t bytes);
    /* lt_device_mem_budget; NULL: the front end answers from the host's memory */
    bool (*mem_budget)(lt_device *dev, uint64_t *budget_bytes, uint64_t *usage_bytes);

    lt_status (*fill)(lt_device *dev, lt_tensor *t, float value);
    lt_status (*copy)(lt_device *dev, lt_tensor *dst, const lt_tensor *src);
    lt_status (*matmul)(lt_device *dev, lt_tensor *C, const lt_tensor *A, const lt_tensor *B,
                        bool trans_a, bool trans_b, float alpha, float beta,
                        const lt_matmul_geom *g);
    lt_status (*embedding)(lt_device *dev, lt_tensor *out, const lt_tensor *table,
                           const lt_tensor *ids);
    lt_status (*embedding_backward)(lt_device *dev, lt_tensor *dtable, const lt_tensor *dout,
                                    const lt_tensor *ids);
    lt_status (*rmsnorm)(lt_device *dev, lt_tensor *out, lt_tensor *rstd, const lt_tensor *x,
                         const lt_tensor *w, float eps);
    lt_status (*rmsnorm_backward)(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                  const lt_tensor *dout, const lt_tensor *x,
                                  const lt_tensor *w, const lt_tensor *rstd);
    lt_status (*layernorm)(lt_device *dev, lt_tensor *out, lt_tensor *mean, lt_tensor *rstd,
                           const lt_tensor *x, const lt_tensor *w, const lt_tensor *b,
                           float eps);
    lt_status (*layernorm_backward)(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                    lt_tensor *db, const lt_tensor *dout, const lt_tensor *x,
                                    const lt_tensor *w, const lt_tensor *mean,
                                    const lt_tensor *rstd);
    /* inverse: false = forward rotation, true = the backward (inverse) rotation */
    lt_status (*rope)(lt_device *dev, lt_tensor *x, const lt_tensor *pos, const lt_tensor *inv_freq,
                      float mscale, bool inverse);
    lt_status (*attention)(lt_device *dev, lt_tensor *out, lt_tensor *lse, const lt_tensor *q,
                           const lt_tensor *k, const lt_tensor *v, const lt_tensor *seg,
                           const lt_attn_params *p);
    lt_status (*attention_backward)(lt_device *dev, lt_tensor *dq, lt_tensor *dk,
                                    lt_tensor *dv, const lt_tensor *dout, const lt_tensor *q,
                                    const lt_tensor *k, const lt_tensor *v,
                                    const lt_tensor *out, const lt_tensor *lse,
                                    const lt_tensor *seg, const lt_attn_params *p);
    lt_status (*silu)(lt_device *dev, lt_tensor *out, const lt_tensor *x);
    lt_status (*silu_backward)(lt_device *dev, lt_tensor *dx, const lt_tensor *dout,
                               const lt_tensor *x);
    lt_status (*gelu)(lt_device *dev, lt_tensor *out, const lt_tensor *x);
    lt_status (*gelu_backward)(lt_device *dev, lt_tensor *dx, const lt_tensor *dout,
                               const lt_tensor *x);
    lt_status (*swiglu)(lt_device *dev, lt_tensor *out, const lt_tensor *gate,
                        const lt_tensor *up);
    lt_status (*swiglu_backward)(lt_device *dev, lt_tensor *dgate, lt_tensor *dup,
                                 const lt_tensor *dout, const lt_tensor *gate,
                                 const lt_tensor *up);
    /* out = x * keep(first + i) * scale (lt_dropout's mask for p, key and first); out may
     * alias x */
    lt_status (*dropout)(lt_device *dev, lt_tensor *out, const lt_tensor *x, float p, float scale,
                         uint64_t key, uint64_t first);
    lt_status (*cross_entropy)(lt_device *dev, lt_tensor *loss, lt_tensor *row_loss,
                               lt_tensor *dlogits, const lt_tensor *logits,
                               const lt_tensor *labels, int ignore_index, float grad_scale,
                               int64_t n_counted);
    lt_status (*logprob_gather)(lt_device *dev, lt_tensor *out, const lt_tensor *logits,
                                const lt_tensor *ids);
    lt_status (*logprob_gather_backward)(lt_device *dev, lt_tensor *dlogits,
                                         const lt_tensor *dout, const lt_tensor *logits,
                                         const lt_tensor *ids);
    lt_status (*add)(lt_device *dev, lt_tensor *out, const lt_tensor *a, const lt_tensor *b);
    lt_status (*scale)(lt_device *dev, lt_tensor *x, float alpha);
    lt_status (*axpy)(lt_device *dev, lt_tensor *y, float alpha, const lt_tensor *x);
    lt_status (*bias_add)(lt_device *dev, lt_tensor *x, const lt_tensor *b);
    lt_status (*bias_backward)(lt_device *dev, lt_tensor *db, const lt_tensor *dout);
    lt_status (*adamw)(lt_device *dev, lt_tensor *param, const lt_tensor *grad, lt_tensor *m,
                       lt_tensor *v, const lt_adamw_params *p, float grad_scale);
    lt_status (*grad_norm)(lt_device *dev, lt_tensor *out, lt_tensor *const *grads,
                           int n_grads);
    lt_status (*clip_grad_norm)(lt_device *dev, lt_tensor *const *grads, int n_grads,
                                const lt_tensor *norm, float max_norm);
    /* lt_matmul with B in LT_NF4 (A F32, B 2-D); NULL when the backend has no NF4 path */
    lt_status (*matmul_nf4)(lt_device *dev, lt_tensor *C, const lt_tensor *A,
                            const lt_tensor *B, bool trans_a, bool trans_b, float alpha,
                            float beta, const lt_matmul_geom *g);
};

/* Set the device's last error (printf-style) and return status. An LT_ERR_OOM message gets
 * the device's OOM hint (lt_device_set_oom_hint) appended unless it already holds it. */
lt_status lt_dev_error(lt_device *dev, lt_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Backend constructors: fill dev->be, dev->impl, dev->name, dev->n_threads.
 * On failure return non-OK with a message in err. */
lt_status lt_cpu_backend_init(lt_device *dev, int n_threads, char *err, size_t errlen);
/* index: the Vulkan physical device index; allow_cpu_type: open lavapipe-like devices too. */
lt_status lt_vk_backend_init(lt_device *dev, int index, char *err, size_t errlen);
/* Index of the device "auto" would pick (discrete, then integrated), or -1 if none. */
int lt_vk_auto_index(void);

/* The CPU backend's view of a tensor's memory. */
static inline void *lt_cpu_data(const lt_tensor *t) { return (char *)t->buf + t->offset; }

#endif /* LATHE_COMPUTE_IMPL_H */
