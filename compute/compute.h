/*
 * compute.h - lathe's compute layer: devices, tensors and the op table.
 *
 * This header is the whole contract the rest of lathe sees. It knows tensors, devices and ops;
 * it must never know about models, datasets, SQLite or the terminal.
 *
 * Execution model. Ops are *recorded* on a device. The CPU backend runs each op as it is
 * called; the Vulkan backend appends it to a command buffer and submits when lt_device_sync()
 * is called, when a download needs the data, or when its recording budget fills. Code written
 * against this header must therefore never read tensor memory except through
 * lt_tensor_download() (which synchronises).
 *
 * Errors. Every op returns an lt_status. On failure nothing was recorded, and
 * lt_device_last_error() holds a message naming the op, the tensors' shapes and dtypes and
 * what was expected. Bad arguments from callers never abort.
 *
 * Determinism. For a fixed device and thread count, the same op on the same inputs gives the
 * same bits. Reductions run in a fixed order; no float atomics feed a result.
 *
 * Precision. Arithmetic and accumulation are fp32. Storage dtypes are F32, F16 and BF16 for
 * floats (conversions round to nearest even), I32 for token ids, labels, positions and
 * segment ids.
 */
#ifndef LATHE_COMPUTE_H
#define LATHE_COMPUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LT_MAX_DIMS 4

typedef enum lt_status {
    LT_OK = 0,
    LT_ERR_ARG,         /* a NULL or out-of-range argument */
    LT_ERR_SHAPE,       /* shapes do not fit together */
    LT_ERR_DTYPE,       /* a dtype the op does not take */
    LT_ERR_DEVICE_MISMATCH, /* tensors live on different devices */
    LT_ERR_OOM,         /* host or device allocation failed */
    LT_ERR_DEVICE,      /* the device failed (lost, driver error) */
    LT_ERR_UNSUPPORTED, /* the device lacks a feature the op needs */
    LT_ERR_NOT_FOUND,   /* no such device */
} lt_status;

/* A static string for the status, never NULL. */
const char *lt_status_str(lt_status s);

typedef enum lt_dtype {
    LT_F32 = 0,
    LT_F16,
    LT_BF16,
    LT_I32,
    LT_NF4, /* 4-bit NormalFloat, frozen QLoRA weights only (see "NF4" below) */
    LT_DTYPE_COUNT
} lt_dtype;

const char *lt_dtype_name(lt_dtype dt); /* "f32", "f16", "bf16", "i32", "nf4" */
size_t lt_dtype_size(lt_dtype dt);      /* bytes per element; 0 for NF4 (packed, see below) */
bool lt_dtype_is_float(lt_dtype dt);

/* ---- scalar conversions (round to nearest even; NaN stays NaN) ---------------------------- */
uint16_t lt_f32_to_f16(float f);
float lt_f16_to_f32(uint16_t h);
uint16_t lt_f32_to_bf16(float f);
float lt_bf16_to_f32(uint16_t b);

/* ---- devices ------------------------------------------------------------------------------ */

typedef struct lt_device lt_device;
typedef struct lt_tensor lt_tensor;

typedef enum lt_device_kind { LT_DEVICE_CPU = 0, LT_DEVICE_VULKAN } lt_device_kind;

/*
 * Open a device. spec: "cpu", "vulkan:N", "auto" or NULL (same as "auto"; reads LATHE_DEVICE
 * first if set). "auto" picks a discrete GPU, then an integrated one, else the CPU; it never
 * picks a CPU-type Vulkan device (lavapipe), which only an explicit "vulkan:N" opens.
 * n_threads: CPU threads, 0 = LATHE_THREADS if set, else the cores available.
 * On failure returns NULL and writes a message into err (errlen bytes, may be 0).
 * The caller owns the device and frees it with lt_device_close().
 */
lt_device *lt_device_open(const char *spec, int n_threads, char *err, size_t errlen);
void lt_device_close(lt_device *dev); /* frees every tensor still alive on it */

lt_device_kind lt_device_get_kind(const lt_device *dev);
const char *lt_device_name(const lt_device *dev);      /* e.g. "cpu (AMD EPYC ..., 2 threads)" */
int lt_device_threads(const lt_device *dev);           /* CPU threads used by the backend */
const char *lt_device_last_error(const lt_device *dev); /* "" when none; owned by dev */

/* Wait until every recorded op has finished. */
lt_status lt_device_sync(lt_device *dev);

/* Memory accounting: bytes currently allocated for tensors, and the high-water mark since the
 * device was opened or lt_device_reset_peak() was called. */
size_t lt_device_mem_in_use(const lt_device *dev);
size_t lt_device_mem_peak(const lt_device *dev);
void lt_device_reset_peak(lt_device *dev); /* resets the host-resident peak too */

/* Host-resident bytes: memory a caller keeps in host RAM on behalf of device work (layer
 * inputs offloaded for recomputation, an input-embedding table gathered on the host). The
 * caller registers what it allocates (delta_bytes > 0) and releases it (delta_bytes < 0);
 * these bytes are counted apart from the device-class figures above, on every backend (the
 * CPU backend's tensors are device-class even though they sit in RAM). */
void lt_device_host_mem_add(lt_device *dev, int64_t delta_bytes);
size_t lt_device_host_mem_in_use(const lt_device *dev);
size_t lt_device_host_mem_peak(const lt_device *dev);

/*
 * The memory budget of the device's tensor memory, as the driver reports it: *budget_bytes is
 * how much this process may hold in all, *usage_bytes how much it holds now (so about
 * budget - usage is free). Returns false (both left 0) when the device cannot tell.
 *   Vulkan: the heap tensors come from. With VK_EXT_memory_budget (enabled where the device
 *     lists it) the driver's heapBudget and heapUsage for this process; without it, the heap's
 *     size and the bytes of lathe's memory blocks. LATHE_VK_BUDGET_BYTES (when set and
 *     smaller) caps the budget, and usage is then lathe's blocks.
 *   CPU: host RAM: budget = MemAvailable from /proc/meminfo + lt_device_mem_in_use(), usage =
 *     lt_device_mem_in_use(); false where /proc/meminfo cannot be read.
 * Cheap enough to call per step (one driver query, or one small file read).
 */
bool lt_device_mem_budget(const lt_device *dev, uint64_t *budget_bytes, uint64_t *usage_bytes);

/*
 * Text appended to every out-of-memory message of this device (after "; "), so the layer that
 * knows the run can say what to change, e.g. "the estimate for this run is 7.9 GB; lower
 * batch_size or seq_len, or turn on gradient_checkpointing or qlora". The text is copied
 * (at most 511 bytes); NULL or "" removes the hint.
 * Out-of-memory messages themselves (LT_ERR_OOM in lt_device_last_error) name the device,
 * the bytes asked for, the bytes lathe has in use and the budget (as above).
 */
void lt_device_set_oom_hint(lt_device *dev, const char *hint);

/* Profiling: when enabled, each op's time is accumulated per op name (GPU timestamps on
 * Vulkan, wall clock on the CPU). lt_device_profile_report() writes one line per op. */
void lt_device_set_profiling(lt_device *dev, bool on);
typedef struct lt_profile_entry {
    const char *op; /* static string */
    uint64_t calls;
    double seconds;
} lt_profile_entry;
/* Fills up to max entries, returns how many op names have been profiled. */
int lt_device_profile(const lt_device *dev, lt_profile_entry *out, int max);

/* ---- tensors ------------------------------------------------------------------------------ */

/*
 * Tensors are dense, row-major and contiguous; shape[0] is the outermost dimension.
 * lt_tensor_new allocates uninitialised device memory. The caller owns the handle and frees
 * it with lt_tensor_free (or lt_device_close frees it). Returns NULL on failure, with the
 * reason in lt_device_last_error().
 */
lt_tensor *lt_tensor_new(lt_device *dev, lt_dtype dt, int ndim, const int64_t *shape);
lt_tensor *lt_tensor_new_1d(lt_device *dev, lt_dtype dt, int64_t n0);
lt_tensor *lt_tensor_new_2d(lt_device *dev, lt_dtype dt, int64_t n0, int64_t n1);
lt_tensor *lt_tensor_new_3d(lt_device *dev, lt_dtype dt, int64_t n0, int64_t n1, int64_t n2);
lt_tensor *lt_tensor_new_4d(lt_device *dev, lt_dtype dt, int64_t n0, int64_t n1, int64_t n2,
                            int64_t n3);

/*
 * A view shares memory with its parent: elements [offset, offset + prod(shape)) of the
 * parent, seen with a new shape. Freeing the view does not free the memory; the parent must
 * outlive its views. Returns NULL if the range leaves the parent.
 */
lt_tensor *lt_tensor_view(lt_tensor *parent, int64_t offset, int ndim, const int64_t *shape);

void lt_tensor_free(lt_tensor *t);

lt_device *lt_tensor_device(const lt_tensor *t);
lt_dtype lt_tensor_dtype(const lt_tensor *t);
int lt_tensor_ndim(const lt_tensor *t);
int64_t lt_tensor_dim(const lt_tensor *t, int i); /* negative i counts from the end */
int64_t lt_tensor_numel(const lt_tensor *t);
size_t lt_tensor_bytes(const lt_tensor *t);
/* Writes "f32[2, 3, 4]" into buf; returns buf. */
char *lt_tensor_describe(const lt_tensor *t, char *buf, size_t buflen);
/* An optional name used in error messages; the string is copied. */
void lt_tensor_set_name(lt_tensor *t, const char *name);
const char *lt_tensor_name(const lt_tensor *t);

/* Copy bytes between host and tensor. bytes must equal lt_tensor_bytes(t). Data is in the
 * tensor's dtype. download synchronises the device. */
lt_status lt_tensor_upload(lt_tensor *t, const void *src, size_t bytes);
lt_status lt_tensor_download(const lt_tensor *t, void *dst, size_t bytes);
/* Convenience: upload/download f32 host data to/from a float tensor of any dtype, converting
 * (round to nearest even). n must equal numel. */
lt_status lt_tensor_upload_f32(lt_tensor *t, const float *src, int64_t n);
lt_status lt_tensor_download_f32(const lt_tensor *t, float *dst, int64_t n);

/* ---- ops ---------------------------------------------------------------------------------- *
 * Shapes below use N for rows (tokens: batch*seq flattened), D for the feature size.
 * "accumulates" means the result is added to what the output already holds (gradients).
 * Unless said otherwise, float inputs and outputs are F32.
 */

/* t[:] = value (float tensors of any dtype; I32 takes the value truncated). */
lt_status lt_fill(lt_tensor *t, float value);
/* dst = src, converting between F32/F16/BF16 (round to nearest even); same numel. I32 -> I32
 * copies. */
lt_status lt_copy(lt_tensor *dst, const lt_tensor *src);

/*
 * Matrix multiply: C = alpha * op(A) @ op(B) + beta * C, fp32 accumulation.
 *   op(A): [.., M, K] (A stored [.., M, K], or [.., K, M] with trans_a)
 *   op(B): [.., K, N] (B stored [.., K, N], or [.., N, K] with trans_b)
 *   C:     [.., M, N] F32
 * A and B may be F32, F16 or BF16. Batched: A, B and C are 2-D or 3-D; a 2-D operand is
 * broadcast across the batch of the other (a weight shared by all batch entries). When
 * beta == 0, C's previous contents are ignored (NaN in C does not propagate).
 * A Linear layer y = x W^T (W stored [out, in] as in Hugging Face) is
 * lt_matmul(y, x, W, false, true, 1, 0); its gradients are lt_matmul_backward below.
 */
lt_status lt_matmul(lt_tensor *C, const lt_tensor *A, const lt_tensor *B, bool trans_a,
                    bool trans_b, float alpha, float beta);

/*
 * Gradients of C = op(A) @ op(B) given dC. dA and dB may be NULL (not wanted); when present
 * they accumulate (dX += ...), are F32 and have the shape of A and B as stored. A 2-D
 * operand broadcast over a batch receives the sum over the batch.
 */
lt_status lt_matmul_backward(lt_tensor *dA, lt_tensor *dB, const lt_tensor *dC,
                             const lt_tensor *A, const lt_tensor *B, bool trans_a,
                             bool trans_b);

/*
 * Embedding lookup: out[i, :] = table[ids[i], :]. table [V, D] any float dtype, ids [N] I32
 * (any shape with N elements), out [N, D] F32. An id outside [0, V) is LT_ERR_ARG (checked
 * on the host for the CPU backend; the Vulkan backend writes zeros and flags the error at
 * the next sync).
 */
lt_status lt_embedding(lt_tensor *out, const lt_tensor *table, const lt_tensor *ids);
/* dtable[ids[i], :] += dout[i, :], deterministic (no atomics): dtable [V, D] F32. */
lt_status lt_embedding_backward(lt_tensor *dtable, const lt_tensor *dout, const lt_tensor *ids);

/*
 * RMSNorm over the last dim: out = x / sqrt(mean(x^2) + eps) * w.
 * x, out [N, D] F32; w [D] any float dtype; rstd [N] F32 (written, for the backward; may be
 * NULL in inference).
 */
lt_status lt_rmsnorm(lt_tensor *out, lt_tensor *rstd, const lt_tensor *x, const lt_tensor *w,
                     float eps);
/* dx = (written, not accumulated) gradient w.r.t. x; dw accumulates (may be NULL). */
lt_status lt_rmsnorm_backward(lt_tensor *dx, lt_tensor *dw, const lt_tensor *dout,
                              const lt_tensor *x, const lt_tensor *w, const lt_tensor *rstd);

/*
 * LayerNorm over the last dim: out = (x - mean) / sqrt(var + eps) * w + b (biased variance).
 * mean, rstd [N] F32 written for the backward (may be NULL in inference).
 */
lt_status lt_layernorm(lt_tensor *out, lt_tensor *mean, lt_tensor *rstd, const lt_tensor *x,
                       const lt_tensor *w, const lt_tensor *b, float eps);
/* dx written; dw, db accumulate (may be NULL). */
lt_status lt_layernorm_backward(lt_tensor *dx, lt_tensor *dw, lt_tensor *db,
                                const lt_tensor *dout, const lt_tensor *x, const lt_tensor *w,
                                const lt_tensor *mean, const lt_tensor *rstd);

/*
 * Rotary position embedding, Hugging Face "rotate_half" layout, in place.
 * x [N, H, hd] F32 (hd even), pos [N] I32 (each token's position: restarts per packed
 * example, or starts at the cache length in generation), inv_freq [hd/2] F32: the inverse
 * frequency of each pair (plain rotary: lt_rope_inv_freq; scaled variants such as Llama 3's
 * or YaRN's rescale it on the host once at load). mscale: cos and sin are both multiplied by
 * it (YaRN's attention factor, so q.k logits scale by its square); 1 for every other model.
 * For i < hd/2, a = pos * inv_freq[i] (in float), c = mscale cos a, s = mscale sin a:
 *   x'[i]        = x[i] c - x[i + hd/2] s
 *   x'[i + hd/2] = x[i + hd/2] c + x[i] s
 * The backward applies the transpose (the inverse rotation, times mscale) to the gradient,
 * in place.
 */
lt_status lt_rope(lt_tensor *x, const lt_tensor *pos, const lt_tensor *inv_freq, float mscale);
lt_status lt_rope_backward(lt_tensor *dx, const lt_tensor *pos, const lt_tensor *inv_freq,
                           float mscale);

/*
 * Plain rotary inverse frequencies, as Hugging Face computes them in float32:
 * inv[i] = 1 / powf(theta, (float)(2i) / (float)hd), i < hd/2. inv holds hd/2 floats.
 */
void lt_rope_inv_freq(float *inv, int64_t hd, float theta);

/*
 * Causal multi-head attention with grouped-query heads.
 *   q   [B, Tq, H, hd]        F32
 *   k,v [B, Tk, Hkv, hd]      F32 (or F16/BF16 for a KV cache); H % Hkv == 0, query head h
 *                              reads kv head h / (H / Hkv)
 *   out [B, Tq, H, hd]        F32
 *   lse [B, H, Tq]            F32, log-sum-exp of each query's scores (for the backward; may
 *                              be NULL in inference)
 *   seg [B, Tq] I32 or NULL   segment ids for packed sequences: a query attends only to keys
 *                              of its own segment (needs Tq == Tk and q_offset == 0)
 * Query i (0-based within Tq) sits at position q_offset + i of the key sequence and attends
 * to keys j <= q_offset + i, j < n_kv. n_kv = 0 means Tk.
 * window > 0 (a sliding window, Mistral's sliding_window W): query i also needs
 * j > q_offset + i - window, i.e. it sees the W keys ending at itself, as Hugging Face's
 * sliding-window mask does (key k visible from query q iff q - W < k <= q); 0 = no window.
 * scale: usually 1/sqrt(hd).
 */
typedef struct lt_attn_params {
    float scale;
    int64_t q_offset;
    int64_t n_kv;
    int64_t window;
} lt_attn_params;

lt_status lt_attention(lt_tensor *out, lt_tensor *lse, const lt_tensor *q, const lt_tensor *k,
                       const lt_tensor *v, const lt_tensor *seg, const lt_attn_params *p);
/* dq, dk, dv written (not accumulated), F32, shapes of q, k, v. */
lt_status lt_attention_backward(lt_tensor *dq, lt_tensor *dk, lt_tensor *dv,
                                const lt_tensor *dout, const lt_tensor *q, const lt_tensor *k,
                                const lt_tensor *v, const lt_tensor *out, const lt_tensor *lse,
                                const lt_tensor *seg, const lt_attn_params *p);

/* Activations (elementwise, F32, same numel). out may alias x. */
lt_status lt_silu(lt_tensor *out, const lt_tensor *x);
lt_status lt_silu_backward(lt_tensor *dx, const lt_tensor *dout, const lt_tensor *x);
/* GELU, tanh approximation (HF "gelu_new"). */
lt_status lt_gelu(lt_tensor *out, const lt_tensor *x);
lt_status lt_gelu_backward(lt_tensor *dx, const lt_tensor *dout, const lt_tensor *x);
/* SwiGLU: out = silu(gate) * up. dgate, dup written. */
lt_status lt_swiglu(lt_tensor *out, const lt_tensor *gate, const lt_tensor *up);
lt_status lt_swiglu_backward(lt_tensor *dgate, lt_tensor *dup, const lt_tensor *dout,
                             const lt_tensor *gate, const lt_tensor *up);

/*
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the
 * Random123 reference): one block of 4 32-bit words from a 128-bit counter ctr and a 64-bit
 * key. Round: (hi0, lo0) = 0xD2511F53 * c0, (hi1, lo1) = 0xCD9E8D57 * c2 (64-bit products),
 * c = {hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0}; 10 rounds, the key bumped between rounds by
 * k0 += 0x9E3779B9, k1 += 0xBB67AE85. A pure function, for lt_dropout and its tests.
 */
void lt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/*
 * Dropout's mask, exactly (so that any implementation, a Python reference included, can
 * reproduce it): element i (flat, row-major, 0-based) of the tensor given has the 64-bit
 * counter c = first + i; it uses Philox block j = c / 4 with counter
 * {j & 0xFFFFFFFF, j >> 32, 0, 0} and key {key & 0xFFFFFFFF, key >> 32}, and takes word
 * w = out[c % 4] of that block. Element i is kept iff (w >> 8) * 2^-24 >= p (u
 * in [0, 1) with 24 bits, exact in fp32); a kept element becomes x[i] * s with
 * s = (float)(1 / (1 - p)) computed in fp32 as 1.0f / (1.0f - p), a dropped one 0. The
 * Vulkan backend takes tensors of fewer than 2^32 - 6 elements (else LT_ERR_UNSUPPORTED).
 */
/* Inverted dropout with a counter-based generator (Philox4x32-10, keyed by key): element i
 * of x is kept with probability 1 - p and scaled by 1 / (1 - p), else set to 0. The decision
 * for element i is a pure function of (key, first + i), the same on every backend and thread
 * count, so a backward or a recomputation redraws the same mask instead of storing it.
 * first is the counter of x's element 0: a view of rows [t0, t0 + n) of a [N, in] tensor
 * given first = t0 * in draws exactly the whole tensor's mask for those rows (first = 0: the
 * tensor's own). out may alias x. p in [0, 1). */
lt_status lt_dropout(lt_tensor *out, const lt_tensor *x, float p, uint64_t key, uint64_t first);
/* dx = dout * mask / (1 - p) with the mask lt_dropout(.., p, key, first) drew; dx may alias
 * dout. */
lt_status lt_dropout_backward(lt_tensor *dx, const lt_tensor *dout, float p, uint64_t key,
                              uint64_t first);

/*
 * Fused softmax + cross-entropy over the last dim, never storing probabilities.
 *   logits [N, V] F32, labels [N] I32 (label == ignore_index is not counted)
 *   loss   [1] F32: mean negative log-likelihood over the counted rows (0 if none)
 *   row_loss [N] F32 or NULL: each row's NLL (0 for ignored rows)
 *   dlogits [N, V] F32 or NULL; may be the logits tensor itself (overwritten):
 *           grad_scale * (softmax - onehot) / n_counted, 0 on ignored rows.
 *   n_counted: when > 0, the denominator to use instead of this call's own count (for
 *           gradient accumulation across micro-batches with a token-weighted mean).
 * A label outside [0, V) other than ignore_index is LT_ERR_ARG.
 */
lt_status lt_cross_entropy(lt_tensor *loss, lt_tensor *row_loss, lt_tensor *dlogits,
                           const lt_tensor *logits, const lt_tensor *labels, int ignore_index,
                           float grad_scale, int64_t n_counted);

/*
 * Row-wise log-softmax gather: out[i] = log_softmax(logits[i, :])[ids[i]].
 * logits [N, V] F32, ids [N] I32, out [N] F32. Used by DPO and evaluation.
 * Backward: dlogits[i, :] += dout[i] * (onehot(ids[i]) - softmax(logits[i, :])).
 */
lt_status lt_logprob_gather(lt_tensor *out, const lt_tensor *logits, const lt_tensor *ids);
lt_status lt_logprob_gather_backward(lt_tensor *dlogits, const lt_tensor *dout,
                                     const lt_tensor *logits, const lt_tensor *ids);

/* Elementwise on F32 tensors of equal numel: out = a + b (out may alias a or b). */
lt_status lt_add(lt_tensor *out, const lt_tensor *a, const lt_tensor *b);
/* x *= alpha. */
lt_status lt_scale(lt_tensor *x, float alpha);
/* y += alpha * x. */
lt_status lt_axpy(lt_tensor *y, float alpha, const lt_tensor *x);
/* Bias over rows: x[N, D] += b[D] (b any float dtype). Backward: db[D] += sum_i dx[i, :]
 * (fixed order). */
lt_status lt_bias_add(lt_tensor *x, const lt_tensor *b);
lt_status lt_bias_backward(lt_tensor *db, const lt_tensor *dout);

/*
 * AdamW, PyTorch's formula (torch.optim.AdamW, amsgrad off):
 *   p *= 1 - lr * weight_decay
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   m_hat = m / (1 - beta1^step);  v_hat = v / (1 - beta2^step)
 *   p -= lr * m_hat / (sqrt(v_hat) + eps)
 * param F32 (or F16/BF16, updated in fp32 and rounded), grad/m/v F32, same numel.
 * step counts from 1. grad_scale multiplies the gradient first (clipping, accumulation).
 */
typedef struct lt_adamw_params {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;
} lt_adamw_params;
lt_status lt_adamw(lt_tensor *param, const lt_tensor *grad, lt_tensor *m, lt_tensor *v,
                   const lt_adamw_params *p, float grad_scale);

/*
 * Global gradient norm: out [1] F32 = sqrt(sum over tensors of sum(g^2)), deterministic.
 * lt_clip_grad_norm then scales every gradient by min(1, max_norm / (norm + 1e-6)) reading
 * the norm on the device (no host round trip), as torch.nn.utils.clip_grad_norm_.
 */
lt_status lt_grad_norm(lt_tensor *out, lt_tensor *const *grads, int n_grads);
lt_status lt_clip_grad_norm(lt_tensor *const *grads, int n_grads, const lt_tensor *norm,
                            float max_norm);

/* ---- NF4 (QLoRA's 4-bit NormalFloat, bitsandbytes' definition) ---------------------------- *
 * An NF4 tensor is one allocation laid out as
 *   codes   ceil(numel/2) bytes: two 4-bit code indices per byte, the first element in the
 *           HIGH nibble; padded to a multiple of 4 bytes
 *   scales  without double quantization: absmax f32 [n_blocks], one per LT_NF4_BLOCK elements;
 *           with it: absmax_q u8 [n_blocks] (padded to 4 bytes), then f32 [ceil(n_blocks /
 *           LT_NF4_DQ_BLOCK)] scales, then one f32 mean: absmax = q/127 * scale + mean, the
 *           8-bit code being symmetric linear over each block of 256 absmax values minus
 *           their mean.
 * Element i dequantizes to lt_nf4_codes[code_i] * absmax[i / LT_NF4_BLOCK]. lt_tensor_bytes
 * counts codes and scales, so memory accounting sees the real cost (~0.5 byte per element +
 * 4/64, or + ~1/64 with double quantization). lt_tensor_upload/download move these raw bytes;
 * lt_tensor_upload_f32 quantizes (nearest code) and lt_tensor_download_f32 dequantizes.
 * Ops take NF4 only as lt_matmul's B (a weight, 2-D, either trans_b): blocks are dequantized
 * on the fly into fp32. NF4 tensors have no views and are never written by ops.
 */
#define LT_NF4_BLOCK 64
#define LT_NF4_DQ_BLOCK 256
extern const float lt_nf4_codes[16];

/* Bytes an NF4 tensor of numel elements takes (codes + scales). */
size_t lt_nf4_bytes(int64_t numel, bool double_quant);
/* Quantize n floats into dst (lt_nf4_bytes(n, double_quant) bytes) to the nearest code of
 * each element scaled by its block's absmax. Non-finite inputs quantize as 0. Runs on every
 * OpenMP thread; lt_nf4_quantize_threads takes the count (0 = all). The bytes are the same
 * for every thread count. */
void lt_nf4_quantize(void *dst, const float *src, int64_t n, bool double_quant);
void lt_nf4_quantize_threads(void *dst, const float *src, int64_t n, bool double_quant,
                             int n_threads);
/* Dequantize elements [i0, i0 + count) of an NF4 buffer holding numel elements into dst. */
void lt_nf4_dequantize(float *dst, const void *src, int64_t numel, bool double_quant,
                       int64_t i0, int64_t count);
/* The absmax of block j of an NF4 buffer (after double-quantization when used). */
float lt_nf4_absmax(const void *src, int64_t numel, bool double_quant, int64_t j);
/* A new NF4 tensor (uninitialised), with or without double quantization of its scales.
 * lt_tensor_new(dev, LT_NF4, ...) is the same without double quantization. */
lt_tensor *lt_tensor_new_nf4(lt_device *dev, int ndim, const int64_t *shape, bool double_quant);
bool lt_tensor_nf4_double_quant(const lt_tensor *t);

/* ---- enumeration (for `lathe devices`) ---------------------------------------------------- */

typedef struct lt_cpu_info {
    char model[128];
    int logical_cores;
    int usable_cores; /* from the affinity mask */
    char simd[64];    /* e.g. "avx2 fma f16c" */
    uint64_t ram_bytes;
    uint64_t ram_available_bytes;
} lt_cpu_info;
void lt_cpu_info_get(lt_cpu_info *out);

#define LT_VK_MAX_HEAPS 16
typedef struct lt_vk_device_info {
    int index;
    char name[256];
    char type[32]; /* "discrete", "integrated", "virtual", "cpu", "other" */
    char driver[256];
    char api_version[32];
    uint32_t vendor_id, device_id;
    int n_heaps;
    uint64_t heap_bytes[LT_VK_MAX_HEAPS];
    bool heap_device_local[LT_VK_MAX_HEAPS];
    uint64_t max_allocation_bytes;
    uint64_t max_storage_buffer_range;
    uint32_t max_shared_memory_bytes;
    uint32_t max_workgroup_invocations;
    uint32_t subgroup_size;
    bool fp16, bf16, int8, int16_storage, timestamps;
    bool cooperative_matrix;
} lt_vk_device_info;

/*
 * Enumerate Vulkan physical devices. Returns the count written (<= max), or -1 when Vulkan is
 * unavailable (no loader, no driver), with the reason in why (whylen bytes).
 */
int lt_vk_enumerate(lt_vk_device_info *out, int max, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif /* LATHE_COMPUTE_H */
