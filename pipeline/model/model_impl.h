/*
 * model_impl.h - the layout behind lt_model and lt_forward, for the model module and the
 * training engine (backward passes walk the same weights and activations).
 *
 * Only pipeline/ includes this file. N = batch * seq tokens, D = dim, H = heads,
 * Hkv = kv heads, hd = head_dim, F = ffn, V = vocab.
 */
#ifndef LATHE_MODEL_IMPL_H
#define LATHE_MODEL_IMPL_H

#include "forward.h"
#include "model.h"

/* A projection y = x W^T + b (Linear, w [out, in]) or y = x W + b (conv1d, w [in, out]). */
typedef struct lt_linear {
    lt_tensor *w;
    lt_tensor *b; /* [out] F32 or NULL */
    bool conv1d;
} lt_linear;

typedef struct lt_layer_weights {
    lt_tensor *ln1_w, *ln1_b; /* [D] input_layernorm / ln_1 (bias: gpt2 only) */
    lt_tensor *ln2_w, *ln2_b; /* [D] post_attention_layernorm / ln_2 */
    lt_linear q, k, v, o;     /* gpt2: q, k, v are views into qkv_w / qkv_b */
    lt_linear gate, up, down; /* gpt2: gate unused, up = c_fc, down = mlp.c_proj */
    lt_tensor *qkv_w;         /* gpt2: [3, D, D] (q, k, v blocks of c_attn) */
    lt_tensor *qkv_b;         /* gpt2: [3D] */
} lt_layer_weights;

struct lt_model {
    lt_model_config cfg;
    lt_device *dev;
    lt_tensor *tok_emb;        /* [V, D] */
    lt_tensor *pos_emb;        /* gpt2: [max_pos, D] */
    lt_tensor *lnf_w, *lnf_b;  /* [D] final norm */
    lt_linear lm_head;         /* w [V, D]; == tok_emb when tied */
    lt_layer_weights *layers;  /* [n_layers] */
    lt_model_param *params;    /* one per file tensor used */
    int n_params;
    lt_tensor **owned;         /* every handle to free; views first */
    int n_owned, cap_owned;
    size_t weight_bytes;
};

/* Activations of one layer for one forward call (views, valid until the next run). */
typedef struct lt_layer_acts {
    lt_tensor *x;            /* [N, D] residual stream entering the layer */
    lt_tensor *h1;           /* [N, D] after the first norm */
    lt_tensor *mean1, *rstd1; /* [N] norm statistics (mean1: gpt2 only) */
    lt_tensor *q;            /* [B, T, H, hd] after bias and rotary */
    lt_tensor *k, *v;        /* [B, T, Hkv, hd] of this call's tokens (after rotary) */
    lt_tensor *att;          /* [B, T, H, hd] attention output */
    lt_tensor *lse;          /* [B, H, T] or NULL in inference */
    lt_tensor *x_mid;        /* [N, D] residual after attention */
    lt_tensor *h2;           /* [N, D] after the second norm */
    lt_tensor *mean2, *rstd2;
    lt_tensor *gate, *up;    /* [N, F] before the activation (gpt2: up = c_fc output) */
    lt_tensor *act;          /* [N, F] swiglu(gate, up) / gelu(up) */
} lt_layer_acts;

typedef struct lt_forward_acts {
    int64_t B, T;
    lt_tensor *ids, *pos;     /* [N] I32 */
    lt_layer_acts *layers;    /* [n_layers] */
    lt_tensor *x_final;       /* [N, D] residual after the last layer */
    lt_tensor *hf;            /* [N, D] after the final norm */
    lt_tensor *meanf, *rstdf; /* [N] */
    lt_tensor *logits;        /* [N, V] (or [B, V] with last_logits_only) */
} lt_forward_acts;

/* The activations of the last lt_forward_run (for the backward pass). */
const lt_forward_acts *lt_forward_get_acts(const lt_forward *f);

#endif
