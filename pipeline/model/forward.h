/*
 * forward.h - the forward pass of a loaded model on its device, and the KV cache.
 *
 * A forward workspace (lt_forward) owns the activation buffers for batches of up to
 * max_batch x max_seq tokens. Each run takes token ids [B, T] from the host and leaves the
 * logits on the device. With keep_activations every layer's activations are kept for a
 * backward pass (model_impl.h describes them); without, buffers are shared across layers.
 *
 * A KV cache (lt_kv_cache) holds, per layer, keys and values [B, Tmax, Hkv, hd] F32 after
 * rotary. A run given a cache treats its tokens as continuing the cached positions (the
 * first run fills the prompt), writes their keys and values into the cache and attends over
 * everything cached so far. lt_forward_run_rows instead continues chosen rows of a cache, each
 * at its own length (batched decoding of prompts of different lengths).
 */
#ifndef LATHE_FORWARD_H
#define LATHE_FORWARD_H

#include "model.h"

typedef struct lt_kv_cache lt_kv_cache;

/* A cache for batch rows of up to max_len positions. The caller owns *out and frees it with
 * lt_kv_cache_free before freeing the model. */
lt_model_status lt_kv_cache_new(lt_model *m, int64_t batch, int64_t max_len, lt_kv_cache **out,
                                char *err, size_t errlen);
void lt_kv_cache_free(lt_kv_cache *c);
int64_t lt_kv_cache_len(const lt_kv_cache *c);      /* positions filled */
int64_t lt_kv_cache_capacity(const lt_kv_cache *c); /* max_len */
void lt_kv_cache_reset(lt_kv_cache *c);             /* forget every position */
/* Positions filled in one row (lt_forward_run_rows); -1 for a row out of range. */
int64_t lt_kv_cache_row_len(const lt_kv_cache *c, int64_t row);
/* Forgets a row's positions from len on (a shorter len only): the row continues from len, as
 * when several continuations of one prompt are scored, or the row takes a new prompt. */
void lt_kv_cache_truncate_row(lt_kv_cache *c, int64_t row, int64_t len);

typedef struct lt_forward lt_forward;

typedef struct lt_forward_opts {
    int64_t max_batch, max_seq; /* largest [B, T] a run may take */
    bool keep_activations;      /* keep every layer's activations (training) */
    bool last_logits_only;      /* logits of each row's last position only: [B, V] */
    /* > 0: runs stop at the final norm and leave no logits (*logits is NULL); the output
     * layer runs through lt_forward_logits, at most logits_chunk rows at a time, so [tokens x
     * vocab] logits never exist (training, evaluation). 0: every row's logits in the run.
     * Not with last_logits_only. */
    int64_t logits_chunk;
} lt_forward_opts;

/* The bound on one chunk of logits: LT_LOGITS_CHUNK_BYTES (64 MiB) of fp32. */
#define LT_LOGITS_CHUNK_BYTES ((int64_t)64 << 20)
/* Rows per chunk for a vocabulary of vocab: floor(LT_LOGITS_CHUNK_BYTES / (vocab * 4)), at
 * least 1 and at most max_rows (e.g. 130 rows for a 128,256-token vocabulary). The
 * environment variable LATHE_LOGITS_CHUNK_ROWS=n lowers it to n (tests use it to run tiny
 * models in many chunks). */
int64_t lt_logits_chunk_rows(int64_t vocab, int64_t max_rows);

/* How a training workspace spends memory (lt_forward_new_mem; zeros = lt_forward_new). */
typedef struct lt_forward_mem_opts {
    bool recompute;      /* with keep_activations: keep only each layer's input; the backward
                            recomputes a layer into one layer's shared buffers */
    bool offload_inputs; /* with recompute: the kept inputs live in host memory */
    int64_t mlp_chunk;   /* tokens per MLP chunk; 0 = lt_forward_mlp_chunk */
} lt_forward_mem_opts;

/* The MLP (per token) runs over chunks of this many tokens with buffers for one chunk: an
 * [chunk, ffn] F32 buffer of at most 16 MiB (a multiple of 32 tokens, at least 32). */
int64_t lt_forward_mlp_chunk(const lt_model_config *c);

/*
 * The bytes a workspace with options o would allocate on the device for a model of shape c
 * (the same code that allocates, counting), with the LoRA buffers of an adapter of rank
 * lora_r on slots lora_slots (LT_LSLOT_* bits of model_impl.h; 0 = none) and dropout
 * lora_dropout. OUT (each may be NULL): *device all of it, *logits the part that is the
 * output layer's logits, *host the host bytes (offloaded layer inputs).
 */
void lt_forward_plan_bytes(const lt_model_config *c, const lt_forward_opts *o,
                           const lt_forward_mem_opts *mo, int lora_r, uint32_t lora_slots,
                           float lora_dropout, uint64_t *device, uint64_t *logits,
                           uint64_t *host);

/* The caller owns *out (free with lt_forward_free before the model). */
lt_model_status lt_forward_new(lt_model *m, const lt_forward_opts *o, lt_forward **out,
                               char *err, size_t errlen);
/* As lt_forward_new with memory options (mo NULL = zeros). Offloaded inputs are registered as
 * host-resident bytes on m's device (lt_device_host_mem_add) while the workspace lives. */
lt_model_status lt_forward_new_mem(lt_model *m, const lt_forward_opts *o,
                                   const lt_forward_mem_opts *mo, lt_forward **out, char *err,
                                   size_t errlen);
void lt_forward_free(lt_forward *f);

/*
 * Run ids [B * T] (row-major [B, T], host memory, each in [0, vocab)). cache: NULL, or a cache
 * with batch B and room for T more positions. *logits (OUT) is [B*T, V] F32, or [B, V] with
 * last_logits_only, or NULL with logits_chunk (lt_forward_logits); it belongs to f and stays
 * valid until the next run.
 */
lt_model_status lt_forward_run(lt_forward *f, const int32_t *ids, int64_t B, int64_t T,
                               lt_kv_cache *cache, lt_tensor **logits, char *err, size_t errlen);

/*
 * As lt_forward_run with a cache whose rows stand at different lengths: ids [B, T] continue
 * cache rows rows[0..B) (distinct, each in [0, the cache's batch); B may be smaller than the
 * cache's batch), row rows[b] at its own length lt_kv_cache_row_len. Each row's tokens take
 * the positions after its own cached ones and attend over its own row only; the other rows
 * of the cache are untouched. A cache is advanced either by lt_forward_run or by this
 * function, not both.
 */
lt_model_status lt_forward_run_rows(lt_forward *f, const int32_t *ids, int64_t B, int64_t T,
                                    lt_kv_cache *cache, const int64_t *rows, lt_tensor **logits,
                                    char *err, size_t errlen);

/*
 * A training or evaluation run over packed rows: as lt_forward_run without a cache, with each
 * token's position (pos [B * T], restarting per packed example; NULL = 0..T-1 in every row)
 * and segment id (seg [B * T]; tokens attend only to earlier tokens of their own segment;
 * NULL = one segment per row). Positions must lie in [0, max_pos) for gpt2, >= 0 otherwise.
 */
lt_model_status lt_forward_run_packed(lt_forward *f, const int32_t *ids, const int32_t *pos,
                                      const int32_t *seg, int64_t B, int64_t T,
                                      lt_tensor **logits, char *err, size_t errlen);

/*
 * The logits of rows [r0, r0 + n) of the last run (row r = b * T + t) in a workspace made
 * with logits_chunk > 0: *logits (OUT) [n, V] F32 = hf[r0 .. r0 + n) lm_head^T, owned by f and
 * valid until the next call or run (each call overwrites the same buffer). n in
 * [1, logits_chunk], r0 + n <= B * T.
 */
lt_model_status lt_forward_logits(lt_forward *f, int64_t r0, int64_t n, lt_tensor **logits,
                                  char *err, size_t errlen);

/* The residual stream of the last run: l = 0 the embeddings, l = i after layer i (1-based),
 * l = n_layers + 1 after the final norm; [B*T, D] F32, owned by f. Needs keep_activations
 * (NULL otherwise, or when l is out of range). */
lt_tensor *lt_forward_hidden(const lt_forward *f, int l);

#endif
