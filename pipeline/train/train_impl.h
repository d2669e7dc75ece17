/*
 * train_impl.h - the training engine's internals shared by trainer.c, backward.c, lora.c and
 * the export module: gradient slots mirroring the model's weights, the backward workspace,
 * and LoRA adapters (allocation, PEFT module names).
 *
 * Only pipeline/ includes this file. N = batch * seq tokens, D = dim, F = ffn, V = vocab.
 */
#ifndef LATHE_TRAIN_IMPL_H
#define LATHE_TRAIN_IMPL_H

#include "model/model_impl.h"
#include "trainer.h"

/* Gradients of one projection (NULL = frozen). */
typedef struct lt_linear_grad {
    lt_tensor *w; /* shape of the weight as on the device */
    lt_tensor *b;
} lt_linear_grad;

typedef struct lt_layer_grads {
    lt_tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    lt_linear_grad q, k, v, o, gate, up, down; /* gpt2 q, k, v: views of the c_attn grads */
    lt_lora_module lora[LT_LSLOT_COUNT];       /* grads of each adapter's A and B */
} lt_layer_grads;

/* Every gradient buffer the backward pass writes into (F32, accumulating); NULL = frozen. */
typedef struct lt_model_grads {
    lt_tensor *tok_emb, *pos_emb, *lnf_w, *lnf_b;
    lt_tensor *lm_head;      /* == tok_emb when the embeddings are tied */
    lt_layer_grads *layers;  /* [n_layers] */
} lt_model_grads;

/* ---- backward.c ------------------------------------------------------------------------- */

typedef struct lt_backward lt_backward;

/* Scratch for backward passes over up to max_batch x max_seq tokens; lora_r / lora_in: the
 * attached adapter's rank and widest input (0 without LoRA). Caller owns *out. */
lt_model_status lt_backward_new(lt_model *m, int64_t max_batch, int64_t max_seq, int lora_r,
                                lt_backward **out, char *err, size_t errlen);
/* As lt_backward_new for the forward workspace f: its MLP chunking, and its scratch
 * (lt_forward_scratch) borrowed; the LoRA dropout scratch only when lora_dropout. The
 * backward writes SwiGLU's gradients over the gate and up activations of each MLP chunk. */
lt_model_status lt_backward_new_for(lt_model *m, lt_forward *f, int64_t max_batch,
                                    int64_t max_seq, int lora_r, bool lora_dropout,
                                    lt_backward **out, char *err, size_t errlen);
/* The device bytes lt_backward_new_for would allocate (the same code, counting). */
uint64_t lt_backward_plan_bytes(const lt_model_config *c, int64_t max_batch, int64_t max_seq,
                                int64_t chunk, int lora_r, bool lora_dropout);
void lt_backward_free(lt_backward *bw);

/*
 * The output layer's backward for rows [r0, r0 + n) of f's last run, f made with
 * logits_chunk (its logits computed by lt_forward_logits a chunk at a time): dlogits [n, V]
 * is the chunk's dloss/dlogits; dL/dhf of those rows is written into the workspace (when
 * anything below the head trains) and lm_head's gradient accumulates into g->lm_head (when it
 * trains). Every row of the run must be covered once before lt_backward_run.
 */
lt_model_status lt_backward_head(lt_backward *bw, const lt_forward *f, const lt_model_grads *g,
                                 int64_t r0, const lt_tensor *dlogits, char *err, size_t errlen);

/*
 * The backward pass of f's last run (made with keep_activations). Without logits_chunk, its
 * logits buffer must already hold dloss/dlogits (lt_cross_entropy writes it in place); with
 * logits_chunk, lt_backward_head must have run over every row, and the pass starts from the
 * dL/dhf it left. A workspace made with recompute has each layer recomputed right before its
 * backward (f's shared buffers change). Gradients accumulate into g; the model's attached
 * adapter (if any) gets its grads from g->layers[l].lora.
 */
lt_model_status lt_backward_run(lt_backward *bw, lt_forward *f, const lt_model_grads *g,
                                char *err, size_t errlen);

/* ---- lora.c ----------------------------------------------------------------------------- */

/* Which slots o->targets selects for m's architecture (LT_LSLOT_* bits). GPT-2 has one fused
 * c_attn: LT_LORA_ATTN, or any of Q/K/V, selects it whole (PEFT cannot name a block). */
uint32_t lt_lora_slots(const lt_model *m, uint32_t targets);

/* The input and output widths of slot s of m's layers. */
void lt_lora_slot_dims(const lt_model *m, int s, int64_t *in, int64_t *out);
/* The same two from a model's shape alone (sizing without a model). */
uint32_t lt_lora_slots_of(const lt_model_config *c, uint32_t targets);
void lt_lora_slot_dims_of(const lt_model_config *c, int s, int64_t *in, int64_t *out);

/* The Hugging Face module path of slot s in layer l ("model.layers.3.self_attn.q_proj",
 * "transformer.h.0.attn.c_attn"), and the target_modules entry ("q_proj", "c_attn"). */
void lt_lora_module_path(const lt_model *m, int l, int s, char *buf, size_t n);
const char *lt_lora_slot_target(const lt_model *m, int s);

/*
 * A new adapter on m's slots (LT_LSLOT_* bits) with rank r: A and B allocated F32 on m's
 * device, not initialised. The caller owns *out (lt_lora_free, before the model).
 */
lt_model_status lt_lora_alloc(lt_model *m, uint32_t slots, int r, float scale, float dropout,
                              lt_lora_adapter **out, char *err, size_t errlen);
/* PEFT's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform, a = sqrt(5)), B = 0. */
lt_model_status lt_lora_init(lt_lora_adapter *a, uint64_t seed, char *err, size_t errlen);
void lt_lora_free(lt_lora_adapter *a);

/* ---- trainer.c: what export needs ----------------------------------------------------- */

const lt_lora_adapter *lt_trainer_lora(const lt_trainer *t); /* NULL unless LoRA */
lt_model *lt_trainer_model(const lt_trainer *t);
const lt_lora_opts *lt_trainer_lora_opts(const lt_trainer *t);
/* The accumulated gradient of state i (F32, shape of its param), for tests and checks. */
lt_tensor *lt_trainer_grad(const lt_trainer *t, int i);

/*
 * For objectives that write their own loss gradient (pref.c), a chunk of rows at a time so
 * that [N, V] logits never exist:
 * - lt_trainer_run_forward: the forward pass on b (checked as lt_trainer_forward_backward
 *   does; train = dropout on, activations kept), stopping at the final norm;
 * - lt_trainer_logits: *logits (OUT) [n, V] of rows [r0, r0 + n) of that run (row = b * T +
 *   t), n <= lt_trainer_logits_chunk; owned by the trainer, overwritten by the next call (a
 *   second call on the same rows gives the same values);
 * - lt_trainer_head_backward: the chunk's dloss/dlogits [n, V] (any buffer of the caller's)
 *   through the output layer; every row once, then
 * - lt_trainer_run_backward: the rest of the backward pass, accumulating into the gradients.
 */
lt_model_status lt_trainer_run_forward(lt_trainer *t, const lt_batch *b, bool train, char *err,
                                       size_t errlen);
int64_t lt_trainer_logits_chunk(const lt_trainer *t);
lt_model_status lt_trainer_logits(lt_trainer *t, int64_t r0, int64_t n, lt_tensor **logits,
                                  char *err, size_t errlen);
lt_model_status lt_trainer_head_backward(lt_trainer *t, int64_t r0, const lt_tensor *dlogits,
                                         char *err, size_t errlen);
lt_model_status lt_trainer_run_backward(lt_trainer *t, char *err, size_t errlen);

#endif
