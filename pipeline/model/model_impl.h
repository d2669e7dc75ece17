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

/* LoRA: where an adapter sits in a layer. LT_LSLOT_ATTN is GPT-2's fused c_attn (one A
 * [r, D], one B [3D, r] whose row blocks feed q, k and v). */
typedef enum lt_lora_slot {
    LT_LSLOT_Q = 0,
    LT_LSLOT_K,
    LT_LSLOT_V,
    LT_LSLOT_O,
    LT_LSLOT_GATE,
    LT_LSLOT_UP,
    LT_LSLOT_DOWN,
    LT_LSLOT_ATTN,
    LT_LSLOT_COUNT
} lt_lora_slot;

/* One adapter: y += scale * (dropout(x) A^T) B^T. Absent when A is NULL. */
typedef struct lt_lora_module {
    lt_tensor *A;        /* [r, in] F32 */
    lt_tensor *B;        /* [out, r] F32 */
    lt_tensor *Bpart[3]; /* LT_LSLOT_ATTN: views of B's rows [D, r] for q, k, v */
    int64_t in, out;
} lt_lora_module;

/* Low-rank adapters on a model's projections. Owned by whoever made it (the trainer, or
 * the adapter loader); the model only points at it while it is attached. */
typedef struct lt_lora_adapter {
    int r;
    float scale;   /* alpha / r, or alpha / sqrt(r) with rsLoRA */
    float dropout; /* on the adapter's input, training runs only */
    int64_t n_layers;
    lt_lora_module (*mods)[LT_LSLOT_COUNT]; /* [n_layers][LT_LSLOT_COUNT] */
} lt_lora_adapter;

struct lt_model {
    lt_model_config cfg;
    const lt_lora_adapter *lora; /* attached adapter applied by every forward, or NULL */
    lt_device *dev;
    lt_tensor *tok_emb;        /* [V, D] */
    lt_tensor *pos_emb;        /* gpt2: [max_pos, D] */
    lt_tensor *lnf_w, *lnf_b;  /* [D] final norm */
    lt_linear lm_head;         /* w [V, D]; == tok_emb when tied */
    lt_layer_weights *layers;  /* [n_layers] */
    lt_tensor *rope_inv;       /* [hd/2] F32 rotary inverse frequencies (scaling applied);
                                  NULL for gpt2 */
    float rope_mscale;         /* cos/sin factor of the rotary (YaRN), 1 otherwise */
    lt_model_param *params;    /* one per file tensor used */
    int n_params;
    lt_tensor **owned;         /* every handle to free; views first */
    int n_owned, cap_owned;
    size_t weight_bytes;
    bool nf4_dq;               /* loading: NF4 weights double-quantize their scales */
    /* lt_model_host_embeddings: the input table [V, D] in host memory (tok_emb is then NULL),
     * in its stored dtype (F32, F16 or BF16) */
    void *emb_host;
    lt_dtype emb_host_dtype;
    size_t emb_host_bytes;
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
    /* [N, F] before the activation (gpt2: up = c_fc output; gate NULL) and after it, when
     * every layer keeps its activations; NULL otherwise (lt_forward_mlp_acts gives a chunk) */
    lt_tensor *gate, *up;
    lt_tensor *act;          /* swiglu(gate, up) / gelu(up) */
    /* LoRA (when an adapter is attached): per slot u = scale * xd A^T [N, r], xd being the
     * adapter's input after dropout. xd is not kept: the backward redraws it from the slot's
     * input with lt_dropout(.., lora_dropout, lt_lora_dropout_key(lora_seed, l, s),
     * row0 * in), so that element (row, col) of the batch's [N, in] input gets the same draw
     * in every chunking and when the layer is recomputed. */
    lt_tensor *lora_u[LT_LSLOT_COUNT];
    /* the first token row these views start at: 0 for a whole layer, t0 for an MLP chunk
     * (lt_forward_mlp_acts); a slot's dropout counter starts at row0 * in */
    int64_t row0;
} lt_layer_acts;

typedef struct lt_forward_acts {
    int64_t B, T;
    lt_tensor *ids, *pos;     /* [N] I32 */
    lt_tensor *seg;           /* [B, T] I32 segment ids of a packed run, or NULL */
    lt_layer_acts *layers;    /* [n_layers] */
    lt_tensor *x_final;       /* [N, D] residual after the last layer */
    lt_tensor *hf;            /* [N, D] after the final norm */
    lt_tensor *meanf, *rstdf; /* [N] */
    lt_tensor *logits;        /* [N, V] (or [B, V] with last_logits_only) */
    float lora_dropout;       /* LoRA dropout probability in this run (0: none) */
    uint64_t lora_seed;       /* lt_forward_set_train's seed, keying each module's mask */
} lt_forward_acts;

/* The sliding window of layer l for lt_attn_params.window (0 = none). */
static inline int64_t lt_model_layer_window(const lt_model_config *c, int64_t l)
{
    return c->sliding_window > 0 && l >= c->window_from_layer ? c->sliding_window : 0;
}

/* The activations of the last lt_forward_run (for the backward pass). */
const lt_forward_acts *lt_forward_get_acts(const lt_forward *f);

/* Recomputation (a workspace made with recompute): re-runs layer l of the last run from its
 * kept input (fetched back from the host when offloaded) up to the second norm, into the
 * shared buffers, with the dropout masks the forward drew; a->layers[l] then holds them. */
lt_model_status lt_forward_recompute_layer(lt_forward *f, int64_t l, char *err, size_t errlen);
bool lt_forward_recomputes(const lt_forward *f);

/* Tokens per MLP chunk of this workspace: the MLP runs, and its backward must run, over
 * chunks [t0, t0 + n) with t0 a multiple of it and n = min(chunk, N - t0). */
int64_t lt_forward_chunk(const lt_forward *f);

/* The forward's [N, D] F32 scratch (a projection's output before the residual add): free
 * between a forward pass and the next, outside lt_forward_recompute_layer and
 * lt_forward_mlp_acts, so a backward pass may borrow it for its own scratch. */
lt_tensor *lt_forward_scratch(lt_forward *f);

/* The MLP activations of layer l for tokens [t0, t0 + n) of the last run as views in *ca
 * (OUT; valid until the next call for this layer's chunk buffers): x_mid, h2, gate, up, act
 * [n, ...] and the MLP slots' LoRA u rows, row0 = t0; the other fields are layer l's.
 * Recomputed (with the forward's dropout draws, chunks taken in order after
 * lt_forward_recompute_layer) unless every layer keeps its own. */
lt_model_status lt_forward_mlp_acts(lt_forward *f, int64_t l, int64_t t0, int64_t n,
                                    lt_layer_acts *ca, char *err, size_t errlen);

/* Training mode: LoRA dropout applies only while train is true; the mask of the adapter in
 * slot s of layer l is lt_dropout's with key lt_lora_dropout_key(seed, l, s), drawn on the
 * device, so a run given the same seed (a resumed run, a recomputed layer, the backward)
 * draws the same masks. */
void lt_forward_set_train(lt_forward *f, bool train, uint64_t seed);

/* Attach an adapter to m (NULL detaches). Forward workspaces made before or after see it;
 * the adapter must outlive its attachment. */
void lt_model_attach_lora(lt_model *m, const lt_lora_adapter *a);

/* splitmix64 step, shared by LoRA init and the dropout seeds. */
static inline uint64_t lt_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The dropout key of the adapter in slot s of layer l for a forward seeded with seed:
 * splitmix64 of seed ^ ((l * LT_LSLOT_COUNT + s + 1) * 0xd1342543de82ef95). Every module
 * (and every layer's q, k and v, which share an input) draws its own mask. */
static inline uint64_t lt_lora_dropout_key(uint64_t seed, int64_t l, int s)
{
    uint64_t z = seed ^ ((uint64_t)(l * LT_LSLOT_COUNT + s + 1) * 0xd1342543de82ef95ull);
    return lt_splitmix64(&z);
}

#endif
