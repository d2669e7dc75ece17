/*
 * trainer.h - one model being trained: its trainable parameters (full, freeze or LoRA), their
 * gradients and optimizer state, and the two moves of a training step: forward+backward on a
 * batch (gradients accumulate) and the optimizer update.
 *
 * This is the boundary between the numerics (model backward, LoRA, AdamW; trainer.c,
 * backward.c, lora.c) and the run loop (config, batches, checkpoints, store; train.c). The
 * loop never touches model internals; the numerics never touch the store or files.
 * All device work is recorded on the model's device; values come back to the host only where
 * a function says so (the loss, the gradient norm).
 */
#ifndef LATHE_TRAINER_H
#define LATHE_TRAINER_H

#include "model/model.h"

#include <stdbool.h>
#include <stdint.h>

/* A batch in host memory, rows of equal length T (padding carries label -100). */
typedef struct lt_batch {
    int64_t B, T;
    const int32_t *ids;       /* [B*T] input token ids */
    const int32_t *labels;    /* [B*T] target of each position (the next token), -100 = none */
    const int32_t *positions; /* [B*T] position ids (restart per packed example), or NULL =
                                 0..T-1 in every row */
    const int32_t *segments;  /* [B*T] segment ids for packed rows, or NULL = one per row */
} lt_batch;

typedef enum lt_train_method {
    LT_METHOD_FULL = 0, /* every parameter trains */
    LT_METHOD_FREEZE,   /* only chosen layers (and optionally embeddings/head) train */
    LT_METHOD_LORA,     /* frozen base, low-rank adapters on chosen projections */
} lt_train_method;

/* LoRA target modules, as Hugging Face module names. */
enum {
    LT_LORA_Q = 1u << 0,    /* q_proj (gpt2: Q, K or V selects the whole fused c_attn, the
                               module PEFT can name) */
    LT_LORA_K = 1u << 1,    /* k_proj */
    LT_LORA_V = 1u << 2,    /* v_proj */
    LT_LORA_O = 1u << 3,    /* o_proj / attn.c_proj */
    LT_LORA_GATE = 1u << 4, /* gate_proj */
    LT_LORA_UP = 1u << 5,   /* up_proj / mlp.c_fc */
    LT_LORA_DOWN = 1u << 6, /* down_proj / mlp.c_proj */
    LT_LORA_ATTN = 1u << 7, /* gpt2 c_attn as one fused module (q, k and v together) */
};

/* The LT_LORA_* bits of every linear projection of an architecture ("all-linear"): q, k, v, o,
 * gate, up, down for the Llama family; c_attn (fused q/k/v), c_proj, c_fc, mlp.c_proj for
 * GPT-2. */
uint32_t lt_lora_all_linear(lt_arch arch);

typedef struct lt_lora_opts {
    int r;
    float alpha;
    float dropout;     /* on the adapter's input, as PEFT */
    bool rslora;       /* scale alpha / sqrt(r) instead of alpha / r */
    uint32_t targets;  /* LT_LORA_* bits */
    uint64_t seed;     /* A ~ kaiming-uniform(a = sqrt(5)), B = 0, as PEFT */
} lt_lora_opts;

typedef struct lt_trainer_opts {
    lt_train_method method;
    lt_lora_opts lora;
    /* freeze: train_layer[i] says whether layer i trains (n_layers entries, NULL = all) */
    const bool *train_layer;
    bool train_embeddings; /* freeze: also train embeddings / lm_head / final norm */
    /* AdamW hyper-parameters (the learning rate comes with each step) */
    float beta1, beta2, eps, weight_decay; /* decay skips norms and biases */
    int64_t max_batch, max_seq;            /* largest batch a step takes */
    /* rows of logits per chunk of the output layer and loss (0 = lt_logits_chunk_rows: at
     * most LT_LOGITS_CHUNK_BYTES, 64 MiB, of fp32 logits); [tokens x vocab] never exists */
    int64_t logits_chunk;
    /* memory: recompute (gradient checkpointing) keeps only each layer's input and redoes the
     * layer's forward right before its backward (the same gradients, bit for bit on the CPU
     * backend); offload_activations keeps those inputs in host memory; mlp_chunk: tokens per
     * MLP chunk (0 = automatic, lt_forward_mlp_chunk) */
    bool recompute, offload_activations;
    int64_t mlp_chunk;
} lt_trainer_opts;

typedef struct lt_trainer lt_trainer;

/* The memory of a trainer with options o, by part, from the sizing code of the buffers it
 * allocates (lt_forward_plan_bytes, lt_backward_plan_bytes; the model's own weights are not
 * included). */
typedef struct lt_trainer_mem {
    uint64_t state;       /* device: adapters + grads + moments + master */
    uint64_t adapters;    /* LoRA A and B (F32) */
    uint64_t grads;       /* F32 gradients of what trains */
    uint64_t moments;     /* AdamW m and v */
    uint64_t master;      /* F32 master copies of 16-bit tensors that train */
    uint64_t activations; /* device: the forward workspace (kept activations or layer inputs,
                             one layer's recompute buffers, logits) */
    uint64_t logits;      /* of which the output layer's logits: one chunk [logits_chunk, V] */
    uint64_t backward;    /* device: the backward workspace */
    uint64_t other;       /* device: labels, loss, norm */
    uint64_t device;      /* the sum of the device parts */
    uint64_t host;        /* host-resident: offloaded layer inputs */
} lt_trainer_mem;

/* Fills *mem for a model of shape c. trainable: elements that train under full or freeze (the
 * model's parameter count for full; ignored for LoRA, which is sized from o->lora); master:
 * how many of them are stored in 16 bits (each has an fp32 master copy). */
void lt_trainer_plan_mem(const lt_model_config *c, const lt_trainer_opts *o, int64_t trainable,
                         int64_t master, lt_trainer_mem *mem);
/* The same for the trainer lt_trainer_new(m, o) would make: the tensors it would train (by
 * method, train_layer and train_embeddings) and their master copies counted on m. */
void lt_trainer_plan_mem_for(const lt_model *m, const lt_trainer_opts *o, lt_trainer_mem *mem);

/* Make a trainer for m (which must outlive it). err names what is wrong. The caller owns *out
 * and frees it with lt_trainer_free. */
lt_model_status lt_trainer_new(lt_model *m, const lt_trainer_opts *o, lt_trainer **out,
                               char *err, size_t errlen);
void lt_trainer_free(lt_trainer *t);

/*
 * Forward and backward on one micro-batch; gradients accumulate into the trainer's gradient
 * buffers. The loss gradient is scaled by grad_scale / n_counted where n_counted is the batch's
 * own count of labelled tokens, or denom_tokens when > 0 (a token-weighted mean over several
 * micro-batches). *loss (OUT, may be NULL) is the batch's mean NLL over labelled tokens,
 * read back from the device; *n_tokens (OUT, may be NULL) the labelled tokens counted.
 * The output layer and the loss run a chunk of rows at a time (logits_chunk), forward and
 * backward; the loss is the sum of per-row NLLs, read back once per call, over the count.
 * train: false = evaluation only (no gradients, dropout off).
 */
lt_model_status lt_trainer_forward_backward(lt_trainer *t, const lt_batch *b, int64_t denom_tokens,
                                            float grad_scale, double *loss, int64_t *n_tokens,
                                            char *err, size_t errlen);
lt_model_status lt_trainer_eval(lt_trainer *t, const lt_batch *b, double *loss_sum,
                                int64_t *n_tokens, char *err, size_t errlen);

/*
 * The update: global gradient norm (OUT *grad_norm, read back), clipping to max_norm when
 * max_norm > 0, a check for NaN/Inf (then nothing is updated and *skipped is true), AdamW with
 * learning rate lr (the optimizer's step count advances only on applied updates), and the
 * gradients zeroed for the next accumulation.
 */
lt_model_status lt_trainer_step(lt_trainer *t, float lr, float max_norm, double *grad_norm,
                                bool *skipped, char *err, size_t errlen);

/* Write the fp32 master copies of a full fine-tune of an F16/BF16 model into the model's own
 * tensors (a no-op when the trainable tensors are the model's, as for F32 models and LoRA).
 * Forward passes through the trainer do this themselves; call it after loading a checkpoint
 * into the trainer and before using the model without the trainer (generation, export). */
lt_model_status lt_trainer_sync_model(lt_trainer *t, char *err, size_t errlen);

/* Zero the accumulated gradients without updating. */
lt_model_status lt_trainer_zero_grad(lt_trainer *t, char *err, size_t errlen);

/* ---- state for checkpoints and export -------------------------------------------------- */

typedef struct lt_trainer_state {
    const char *name;   /* the parameter's name: the HF tensor name for base weights, the
                           PEFT name (base_model.model.<module>.lora_A.weight) for adapters */
    lt_tensor *param;   /* the trainable tensor (F32) */
    lt_tensor *m, *v;   /* AdamW moments, F32, same shape */
    lt_param_layout layout; /* how param's shape relates to the file's (GPT-2 c_attn weights
                               are [3, in, out] blocks on the device: LT_LAYOUT_QKV_BLOCKS) */
} lt_trainer_state;

int lt_trainer_n_state(const lt_trainer *t);
const lt_trainer_state *lt_trainer_state_at(const lt_trainer *t, int i);
int64_t lt_trainer_adam_step(const lt_trainer *t); /* updates applied so far */
void lt_trainer_set_adam_step(lt_trainer *t, int64_t step);
int64_t lt_trainer_n_trainable(const lt_trainer *t); /* trainable parameters (elements) */

#endif
