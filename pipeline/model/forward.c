/*
 * forward.c - the forward pass of the Llama family and GPT-2 on the compute API, with a KV
 * cache for generation.
 *
 * Buffers are allocated once per workspace at the largest [B, T]; each run cuts views of the
 * exact shapes out of them (compute tensors are contiguous, so a view is a prefix). This file
 * records ops only; it never reads device memory back and uploads only ids, positions and
 * segments. LoRA dropout masks are drawn on the device (lt_dropout, keyed per module).
 *
 * Training runs (lt_forward_run_packed) take per-token positions and segment ids; an attached
 * LoRA adapter (model_impl.h) adds scale * (dropout(x) A^T) B^T to its projections, keeping
 * u = scale * x A^T per layer and slot for the backward pass.
 */
#include "model_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lt_kv_cache {
    lt_model *m;
    int64_t batch, max_len, len;
    int64_t *row_len;   /* [batch] positions filled per row (lt_forward_run_rows) */
    lt_tensor **k, **v; /* [n_layers] of [B, Tmax, Hkv, hd] F32 */
};

/* Flat buffers of one layer (aliases of layer 0's when activations are not kept). */
typedef struct layer_bufs {
    lt_tensor *x_mid, *h1, *h2, *mean1, *rstd1, *mean2, *rstd2;
    lt_tensor *q, *k, *v, *att, *lse, *gate, *up, *act;
} layer_bufs;

struct lt_forward {
    lt_model *m;
    lt_forward_opts o;
    lt_tensor **resid;   /* [n_layers + 1] residual buffers (all one buffer unless kept) */
    layer_bufs *lb;      /* [n_layers] */
    lt_tensor *tmp, *hf, *meanf, *rstdf, *logits, *ids, *pos;
    lt_tensor **alloc;   /* every flat buffer, to free */
    int n_alloc, cap_alloc;
    lt_tensor **views;   /* this run's views */
    int n_views, cap_views;
    lt_forward_acts acts;
    int32_t *host_pos;
    lt_tensor *seg;      /* [N] I32 segment ids of a packed run */
    bool train;          /* LoRA dropout active */
    uint64_t seed;       /* keys the dropout masks (lt_lora_dropout_key) */
    /* LoRA buffers for the attached adapter they were made for (lora_for, r, dropout) */
    const lt_lora_adapter *lora_for;
    int lora_r;
    float lora_dropout;
    lt_tensor **lora_u; /* [n_layers * LT_LSLOT_COUNT] flat, NULL where absent */
    lt_tensor *lora_xd; /* [N * max(D, F, H * hd)] one module's dropped input, or NULL */
};

static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* ---- KV cache ---------------------------------------------------------------------------- */

lt_model_status lt_kv_cache_new(lt_model *m, int64_t batch, int64_t max_len, lt_kv_cache **out,
                                char *err, size_t errlen)
{
    if (!m || !out || batch <= 0 || max_len <= 0)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "kv cache: bad batch %lld or length %lld",
                    (long long)batch, (long long)max_len);
    *out = NULL;
    const lt_model_config *c = &m->cfg;
    lt_kv_cache *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    kv->m = m;
    kv->batch = batch;
    kv->max_len = max_len;
    kv->k = calloc((size_t)c->n_layers, sizeof(lt_tensor *));
    kv->v = calloc((size_t)c->n_layers, sizeof(lt_tensor *));
    kv->row_len = calloc((size_t)batch, sizeof(int64_t));
    if (!kv->k || !kv->v || !kv->row_len)
        goto err_oom;
    for (int64_t l = 0; l < c->n_layers; l++) {
        kv->k[l] = lt_tensor_new_4d(m->dev, LT_F32, batch, max_len, c->n_kv_heads, c->head_dim);
        kv->v[l] = lt_tensor_new_4d(m->dev, LT_F32, batch, max_len, c->n_kv_heads, c->head_dim);
        if (!kv->k[l] || !kv->v[l])
            goto err_oom;
    }
    *out = kv;
    return LT_MODEL_OK;
err_oom:
    fail(LT_MODEL_ERR_OOM, err, errlen, "kv cache [%lld, %lld, %lld, %lld] x %lld layers: %s",
         (long long)batch, (long long)max_len, (long long)c->n_kv_heads, (long long)c->head_dim,
         (long long)c->n_layers, lt_device_last_error(m->dev));
    lt_kv_cache_free(kv);
    return LT_MODEL_ERR_OOM;
}

void lt_kv_cache_free(lt_kv_cache *c)
{
    if (!c)
        return;
    for (int64_t l = 0; c->k && c->v && l < c->m->cfg.n_layers; l++) {
        lt_tensor_free(c->k[l]);
        lt_tensor_free(c->v[l]);
    }
    free(c->k);
    free(c->v);
    free(c->row_len);
    free(c);
}

int64_t lt_kv_cache_len(const lt_kv_cache *c) { return c->len; }
int64_t lt_kv_cache_capacity(const lt_kv_cache *c) { return c->max_len; }
void lt_kv_cache_reset(lt_kv_cache *c)
{
    c->len = 0;
    memset(c->row_len, 0, (size_t)c->batch * sizeof(int64_t));
}

int64_t lt_kv_cache_row_len(const lt_kv_cache *c, int64_t row)
{
    return row >= 0 && row < c->batch ? c->row_len[row] : -1;
}

void lt_kv_cache_truncate_row(lt_kv_cache *c, int64_t row, int64_t len)
{
    if (row >= 0 && row < c->batch && len >= 0 && len < c->row_len[row])
        c->row_len[row] = len;
}

/* ---- workspace --------------------------------------------------------------------------- */

static lt_tensor *flat(lt_forward *f, lt_dtype dt, int64_t n)
{
    if (f->n_alloc == f->cap_alloc) {
        int nc = f->cap_alloc ? 2 * f->cap_alloc : 64;
        lt_tensor **na = realloc(f->alloc, (size_t)nc * sizeof(*na));
        if (!na)
            return NULL;
        f->alloc = na;
        f->cap_alloc = nc;
    }
    lt_tensor *t = lt_tensor_new_1d(f->m->dev, dt, n > 0 ? n : 1);
    if (t)
        f->alloc[f->n_alloc++] = t;
    return t;
}

static bool alloc_layer(lt_forward *f, layer_bufs *b, int64_t N, int64_t Bm, int64_t Tm)
{
    const lt_model_config *c = &f->m->cfg;
    const int64_t D = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    b->x_mid = f->o.keep_activations ? flat(f, LT_F32, N * D) : f->resid[0];
    b->h1 = flat(f, LT_F32, N * D);
    b->h2 = f->o.keep_activations ? flat(f, LT_F32, N * D) : b->h1;
    b->mean1 = flat(f, LT_F32, N);
    b->rstd1 = flat(f, LT_F32, N);
    b->mean2 = f->o.keep_activations ? flat(f, LT_F32, N) : b->mean1;
    b->rstd2 = f->o.keep_activations ? flat(f, LT_F32, N) : b->rstd1;
    b->q = flat(f, LT_F32, N * qd);
    b->k = flat(f, LT_F32, N * kvd);
    b->v = flat(f, LT_F32, N * kvd);
    b->att = flat(f, LT_F32, N * qd);
    b->lse = f->o.keep_activations ? flat(f, LT_F32, Bm * c->n_heads * Tm) : NULL;
    b->gate = flat(f, LT_F32, N * c->ffn);
    b->up = flat(f, LT_F32, N * c->ffn);
    b->act = flat(f, LT_F32, N * c->ffn);
    return b->x_mid && b->h1 && b->h2 && b->mean1 && b->rstd1 && b->mean2 && b->rstd2 && b->q &&
           b->k && b->v && b->att && (b->lse || !f->o.keep_activations) && b->gate && b->up &&
           b->act;
}

lt_model_status lt_forward_new(lt_model *m, const lt_forward_opts *o, lt_forward **out,
                               char *err, size_t errlen)
{
    if (!m || !o || !out || o->max_batch <= 0 || o->max_seq <= 0 || o->logits_chunk < 0 ||
        (o->logits_chunk > 0 && o->last_logits_only))
        return fail(LT_MODEL_ERR_ARG, err, errlen, "forward: bad arguments");
    *out = NULL;
    const lt_model_config *c = &m->cfg;
    const int64_t Bm = o->max_batch, Tm = o->max_seq, N = Bm * Tm, D = c->dim, L = c->n_layers;
    lt_forward *f = calloc(1, sizeof(*f));
    if (!f)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    f->m = m;
    f->o = *o;
    f->resid = calloc((size_t)L + 1, sizeof(lt_tensor *));
    f->lb = calloc((size_t)L, sizeof(layer_bufs));
    f->acts.layers = calloc((size_t)L, sizeof(lt_layer_acts));
    f->host_pos = malloc((size_t)N * sizeof(int32_t));
    if (!f->resid || !f->lb || !f->acts.layers || !f->host_pos)
        goto err_oom;
    for (int64_t l = 0; l <= L; l++) {
        f->resid[l] = (o->keep_activations || l == 0) ? flat(f, LT_F32, N * D) : f->resid[0];
        if (!f->resid[l])
            goto err_oom;
    }
    for (int64_t l = 0; l < L; l++) {
        if (l > 0 && !o->keep_activations)
            f->lb[l] = f->lb[0];
        else if (!alloc_layer(f, &f->lb[l], N, Bm, Tm))
            goto err_oom;
    }
    f->tmp = flat(f, LT_F32, N * D);
    f->hf = flat(f, LT_F32, N * D);
    f->meanf = flat(f, LT_F32, N);
    f->rstdf = flat(f, LT_F32, N);
    f->logits = flat(f, LT_F32,
                     (o->last_logits_only   ? Bm
                      : o->logits_chunk > 0 ? (o->logits_chunk < N ? o->logits_chunk : N)
                                            : N) *
                         c->vocab);
    f->ids = flat(f, LT_I32, N);
    f->pos = flat(f, LT_I32, N);
    f->seg = flat(f, LT_I32, N);
    if (!f->tmp || !f->hf || !f->meanf || !f->rstdf || !f->logits || !f->ids || !f->pos ||
        !f->seg)
        goto err_oom;
    *out = f;
    return LT_MODEL_OK;
err_oom:
    fail(LT_MODEL_ERR_OOM, err, errlen, "forward buffers for [%lld, %lld] tokens: %s",
         (long long)Bm, (long long)Tm, lt_device_last_error(m->dev));
    lt_forward_free(f);
    return LT_MODEL_ERR_OOM;
}

static void free_views(lt_forward *f)
{
    for (int i = f->n_views - 1; i >= 0; i--)
        lt_tensor_free(f->views[i]);
    f->n_views = 0;
}

static void free_lora_bufs(lt_forward *f)
{
    int n = (int)f->m->cfg.n_layers * LT_LSLOT_COUNT;
    for (int i = 0; i < n && f->lora_u; i++)
        lt_tensor_free(f->lora_u[i]);
    free(f->lora_u);
    lt_tensor_free(f->lora_xd);
    f->lora_u = NULL;
    f->lora_xd = NULL;
    f->lora_for = NULL;
}

/* Makes the LoRA buffers match the attached adapter (none when detached). Inference shares
 * one u buffer per slot across layers (each is used right after it is written). */
static bool ensure_lora_bufs(lt_forward *f)
{
    const lt_lora_adapter *a = f->m->lora;
    if (a == f->lora_for && (!a || (a->r == f->lora_r && a->dropout == f->lora_dropout))) {
        /* the same adapter (or one at the same address): every module must have its buffer */
        bool complete = true;
        for (int64_t l = 0; a && l < a->n_layers && l < f->m->cfg.n_layers; l++)
            for (int s = 0; s < LT_LSLOT_COUNT; s++)
                if (a->mods[l][s].A &&
                    !f->lora_u[f->o.keep_activations ? l * LT_LSLOT_COUNT + s : s])
                    complete = false;
        if (complete)
            return true;
    }
    free_lora_bufs(f);
    if (!a)
        return true;
    const lt_model_config *c = &f->m->cfg;
    const int64_t N = f->o.max_batch * f->o.max_seq, L = c->n_layers;
    const int n = (int)L * LT_LSLOT_COUNT;
    bool kept = f->o.keep_activations, drop = kept && a->dropout > 0;
    f->lora_u = calloc((size_t)n, sizeof(lt_tensor *));
    int64_t wide = c->dim > c->ffn ? c->dim : c->ffn;
    if (c->n_heads * c->head_dim > wide)
        wide = c->n_heads * c->head_dim;
    f->lora_xd = drop ? lt_tensor_new_1d(f->m->dev, LT_F32, N * wide) : NULL;
    if (!f->lora_u || (drop && !f->lora_xd))
        goto oom;
    for (int64_t l = 0; l < L && l < a->n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            const lt_lora_module *mo = &a->mods[l][s];
            int i = (int)l * LT_LSLOT_COUNT + s;
            if (!mo->A)
                continue;
            int iu = kept ? i : s;
            if (!f->lora_u[iu]) {
                f->lora_u[iu] = lt_tensor_new_1d(f->m->dev, LT_F32, N * a->r);
                if (!f->lora_u[iu])
                    goto oom;
            }
        }
    f->lora_for = a;
    f->lora_r = a->r;
    f->lora_dropout = a->dropout;
    return true;
oom:
    free_lora_bufs(f);
    return false;
}

void lt_forward_set_train(lt_forward *f, bool train, uint64_t seed)
{
    f->train = train;
    f->seed = seed;
}

void lt_model_attach_lora(lt_model *m, const lt_lora_adapter *a) { m->lora = a; }

void lt_forward_free(lt_forward *f)
{
    if (!f)
        return;
    free_views(f);
    free_lora_bufs(f);
    free(f->views);
    for (int i = f->n_alloc - 1; i >= 0; i--)
        lt_tensor_free(f->alloc[i]);
    free(f->alloc);
    free(f->resid);
    free(f->lb);
    free(f->acts.layers);
    free(f->host_pos);
    free(f);
}

/* A view of buffer p at element offset off with the given shape; NULL p gives NULL. */
static lt_tensor *vw(lt_forward *f, lt_tensor *p, int64_t off, int ndim, int64_t d0, int64_t d1,
                     int64_t d2, int64_t d3, bool *ok)
{
    if (!p || !*ok)
        return NULL;
    if (f->n_views == f->cap_views) {
        int nc = f->cap_views ? 2 * f->cap_views : 256;
        lt_tensor **nv = realloc(f->views, (size_t)nc * sizeof(*nv));
        if (!nv) {
            *ok = false;
            return NULL;
        }
        f->views = nv;
        f->cap_views = nc;
    }
    int64_t shape[4] = {d0, d1, d2, d3};
    lt_tensor *t = lt_tensor_view(p, off, ndim, shape);
    if (!t)
        *ok = false;
    else
        f->views[f->n_views++] = t;
    return t;
}

/* Cuts this run's views ([B, T]) out of the flat buffers into f->acts. */
static bool make_views(lt_forward *f, int64_t B, int64_t T)
{
    const lt_model_config *c = &f->m->cfg;
    const int64_t N = B * T, D = c->dim, H = c->n_heads, Hk = c->n_kv_heads, hd = c->head_dim,
                  F = c->ffn, V = c->vocab;
    bool ok = true;
    lt_forward_acts *a = &f->acts;
    a->B = B;
    a->T = T;
    a->ids = vw(f, f->ids, 0, 1, N, 0, 0, 0, &ok);
    a->pos = vw(f, f->pos, 0, 1, N, 0, 0, 0, &ok);
    a->seg = NULL;
    const lt_lora_adapter *ad = f->lora_for;
    lt_tensor *prev_out = vw(f, f->resid[0], 0, 2, N, D, 0, 0, &ok);
    for (int64_t l = 0; l < c->n_layers; l++) {
        layer_bufs *b = &f->lb[l];
        lt_layer_acts *la = &a->layers[l];
        la->x = prev_out;
        la->h1 = vw(f, b->h1, 0, 2, N, D, 0, 0, &ok);
        la->mean1 = vw(f, b->mean1, 0, 1, N, 0, 0, 0, &ok);
        la->rstd1 = vw(f, b->rstd1, 0, 1, N, 0, 0, 0, &ok);
        la->q = vw(f, b->q, 0, 4, B, T, H, hd, &ok);
        la->k = vw(f, b->k, 0, 4, B, T, Hk, hd, &ok);
        la->v = vw(f, b->v, 0, 4, B, T, Hk, hd, &ok);
        la->att = vw(f, b->att, 0, 4, B, T, H, hd, &ok);
        la->lse = vw(f, b->lse, 0, 3, B, H, T, 0, &ok);
        la->x_mid = vw(f, b->x_mid, 0, 2, N, D, 0, 0, &ok);
        la->h2 = vw(f, b->h2, 0, 2, N, D, 0, 0, &ok);
        la->mean2 = vw(f, b->mean2, 0, 1, N, 0, 0, 0, &ok);
        la->rstd2 = vw(f, b->rstd2, 0, 1, N, 0, 0, 0, &ok);
        la->gate = vw(f, b->gate, 0, 2, N, F, 0, 0, &ok);
        la->up = vw(f, b->up, 0, 2, N, F, 0, 0, &ok);
        la->act = vw(f, b->act, 0, 2, N, F, 0, 0, &ok);
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            const lt_lora_module *mo = ad && l < ad->n_layers ? &ad->mods[l][s] : NULL;
            int i = (int)l * LT_LSLOT_COUNT + s, i0 = f->o.keep_activations ? i : s;
            la->lora_u[s] = NULL;
            if (!mo || !mo->A)
                continue;
            la->lora_u[s] = vw(f, f->lora_u[i0], 0, 2, N, ad->r, 0, 0, &ok);
        }
        prev_out = vw(f, f->resid[l + 1], 0, 2, N, D, 0, 0, &ok);
    }
    a->x_final = prev_out;
    a->hf = vw(f, f->hf, 0, 2, N, D, 0, 0, &ok);
    a->meanf = vw(f, f->meanf, 0, 1, N, 0, 0, 0, &ok);
    a->rstdf = vw(f, f->rstdf, 0, 1, N, 0, 0, 0, &ok);
    a->logits = f->o.logits_chunk > 0
                    ? NULL
                    : vw(f, f->logits, 0, 2, f->o.last_logits_only ? B : N, V, 0, 0, &ok);
    a->lora_dropout = f->lora_xd && f->train ? ad->dropout : 0.0f;
    a->lora_seed = f->seed;
    return ok;
}

/* y[N, out] = x W^T (+ b), or x W for a Conv1D weight. */
static lt_status linear(lt_tensor *y, const lt_tensor *x, const lt_linear *w)
{
    lt_status s = lt_matmul(y, x, w->w, false, !w->conv1d, 1.0f, 0.0f);
    if (s == LT_OK && w->b)
        s = lt_bias_add(y, w->b);
    return s;
}

static lt_status norm(const lt_model *m, lt_tensor *out, lt_tensor *mean, lt_tensor *rstd,
                      const lt_tensor *x, const lt_tensor *w, const lt_tensor *b)
{
    if (m->cfg.arch == LT_ARCH_GPT2)
        return lt_layernorm(out, mean, rstd, x, w, b, m->cfg.norm_eps);
    return lt_rmsnorm(out, rstd, x, w, m->cfg.norm_eps);
}

#define CK(expr)                                                                              \
    do {                                                                                      \
        if ((s = (expr)) != LT_OK)                                                            \
            goto dev_fail;                                                                    \
    } while (0)

/* LoRA on slot s of layer l: y[k] += u Bk^T with u = scale * dropout(x) A^T (ny = 3 outputs
 * for GPT-2's fused c_attn, else 1). A no-op when the slot has no adapter. */
static lt_status lora_fwd(lt_forward *f, int64_t l, lt_layer_acts *la, int s, lt_tensor *const *y,
                          int ny, const lt_tensor *x)
{
    const lt_lora_adapter *ad = f->m->lora;
    if (!ad || l >= ad->n_layers || !ad->mods[l][s].A || !la->lora_u[s])
        return LT_OK;
    const lt_lora_module *mo = &ad->mods[l][s];
    lt_status st = LT_OK;
    const lt_tensor *xin = x;
    float p = f->acts.lora_dropout;
    if (p > 0) { /* xd = dropout(x), in the shared scratch; the backward redraws it */
        bool ok = true;
        lt_tensor *xd = vw(f, f->lora_xd, 0, 2, lt_tensor_dim(x, 0), mo->in, 0, 0, &ok);
        if (!ok)
            return LT_ERR_OOM;
        if ((st = lt_dropout(xd, x, p, lt_lora_dropout_key(f->acts.lora_seed, l, s))) != LT_OK)
            return st;
        xin = xd;
    }
    if ((st = lt_matmul(la->lora_u[s], xin, mo->A, false, true, ad->scale, 0.0f)) != LT_OK)
        return st;
    for (int k = 0; k < ny && st == LT_OK; k++)
        st = lt_matmul(y[k], la->lora_u[s], ny == 3 ? mo->Bpart[k] : mo->B, false, true, 1.0f,
                       1.0f);
    return st;
}

/* One transformer layer: la->x -> out. */
static lt_model_status run_layer(lt_forward *f, int64_t l, lt_layer_acts *la, lt_tensor *out,
                                 lt_kv_cache *cache, const int64_t *rows, int64_t p0, char *err,
                                 size_t errlen)
{
    lt_model *m = f->m;
    const lt_model_config *c = &m->cfg;
    const lt_layer_weights *w = &m->layers[l];
    const int64_t B = f->acts.B, T = f->acts.T, N = B * T, H = c->n_heads, Hk = c->n_kv_heads,
                  hd = c->head_dim, D = c->dim;
    bool ok = true, gpt2 = c->arch == LT_ARCH_GPT2;
    lt_status s = LT_OK;
    lt_tensor *tmp = vw(f, f->tmp, 0, 2, N, D, 0, 0, &ok);
    lt_tensor *q2 = vw(f, la->q, 0, 2, N, H * hd, 0, 0, &ok);
    lt_tensor *k2 = vw(f, la->k, 0, 2, N, Hk * hd, 0, 0, &ok);
    lt_tensor *v2 = vw(f, la->v, 0, 2, N, Hk * hd, 0, 0, &ok);
    lt_tensor *att2 = vw(f, la->att, 0, 2, N, H * hd, 0, 0, &ok);
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "layer %lld: cannot make views", (long long)l);
    CK(norm(m, la->h1, gpt2 ? la->mean1 : NULL, la->rstd1, la->x, w->ln1_w, w->ln1_b));
    CK(linear(q2, la->h1, &w->q));
    CK(linear(k2, la->h1, &w->k));
    CK(linear(v2, la->h1, &w->v));
    lt_tensor *qkv3[3] = {q2, k2, v2};
    CK(lora_fwd(f, l, la, LT_LSLOT_Q, &q2, 1, la->h1));
    CK(lora_fwd(f, l, la, LT_LSLOT_K, &k2, 1, la->h1));
    CK(lora_fwd(f, l, la, LT_LSLOT_V, &v2, 1, la->h1));
    CK(lora_fwd(f, l, la, LT_LSLOT_ATTN, qkv3, 3, la->h1));
    if (!gpt2) {
        lt_tensor *q3 = vw(f, la->q, 0, 3, N, H, hd, 0, &ok);
        lt_tensor *k3 = vw(f, la->k, 0, 3, N, Hk, hd, 0, &ok);
        if (!ok)
            return fail(LT_MODEL_ERR_OOM, err, errlen, "cannot make views");
        CK(lt_rope(q3, f->acts.pos, m->rope_inv, m->rope_mscale));
        CK(lt_rope(k3, f->acts.pos, m->rope_inv, m->rope_mscale));
    }
    lt_attn_params ap = {1.0f / sqrtf((float)hd), 0, 0, lt_model_layer_window(c, l)};
    if (cache) {
        const int64_t row = Hk * hd, Tm = cache->max_len;
        for (int64_t b = 0; b < B; b++) {
            int64_t cb = rows ? rows[b] : b, pb = rows ? cache->row_len[cb] : p0;
            lt_tensor *dk = vw(f, cache->k[l], (cb * Tm + pb) * row, 1, T * row, 0, 0, 0, &ok);
            lt_tensor *dv = vw(f, cache->v[l], (cb * Tm + pb) * row, 1, T * row, 0, 0, 0, &ok);
            lt_tensor *sk = vw(f, la->k, b * T * row, 1, T * row, 0, 0, 0, &ok);
            lt_tensor *sv = vw(f, la->v, b * T * row, 1, T * row, 0, 0, 0, &ok);
            if (!ok)
                return fail(LT_MODEL_ERR_OOM, err, errlen, "cannot make cache views");
            CK(lt_copy(dk, sk));
            CK(lt_copy(dv, sv));
        }
        if (rows) {
            /* rows at different lengths: one attention per row over its own cache row */
            for (int64_t b = 0; b < B; b++) {
                int64_t cb = rows[b], pb = cache->row_len[cb];
                lt_tensor *qb = vw(f, la->q, b * T * H * hd, 4, 1, T, H, hd, &ok);
                lt_tensor *ob = vw(f, la->att, b * T * H * hd, 4, 1, T, H, hd, &ok);
                lt_tensor *kb = vw(f, cache->k[l], cb * Tm * row, 4, 1, Tm, Hk, hd, &ok);
                lt_tensor *vb = vw(f, cache->v[l], cb * Tm * row, 4, 1, Tm, Hk, hd, &ok);
                if (!ok)
                    return fail(LT_MODEL_ERR_OOM, err, errlen, "cannot make cache views");
                lt_attn_params apb = {ap.scale, pb, pb + T, ap.window};
                CK(lt_attention(ob, NULL, qb, kb, vb, NULL, &apb));
            }
        } else {
            ap.q_offset = p0;
            ap.n_kv = p0 + T;
            CK(lt_attention(la->att, NULL, la->q, cache->k[l], cache->v[l], NULL, &ap));
        }
    } else {
        CK(lt_attention(la->att, la->lse, la->q, la->k, la->v, f->acts.seg, &ap));
    }
    CK(linear(tmp, att2, &w->o));
    CK(lora_fwd(f, l, la, LT_LSLOT_O, &tmp, 1, att2));
    CK(lt_add(la->x_mid, la->x, tmp));
    CK(norm(m, la->h2, gpt2 ? la->mean2 : NULL, la->rstd2, la->x_mid, w->ln2_w, w->ln2_b));
    if (gpt2) {
        CK(linear(la->up, la->h2, &w->up));
        CK(lora_fwd(f, l, la, LT_LSLOT_UP, &la->up, 1, la->h2));
        CK(lt_gelu(la->act, la->up));
    } else {
        CK(linear(la->gate, la->h2, &w->gate));
        CK(lora_fwd(f, l, la, LT_LSLOT_GATE, &la->gate, 1, la->h2));
        CK(linear(la->up, la->h2, &w->up));
        CK(lora_fwd(f, l, la, LT_LSLOT_UP, &la->up, 1, la->h2));
        CK(lt_swiglu(la->act, la->gate, la->up));
    }
    CK(linear(tmp, la->act, &w->down));
    CK(lora_fwd(f, l, la, LT_LSLOT_DOWN, &tmp, 1, la->act));
    CK(lt_add(out, la->x_mid, tmp));
    return LT_MODEL_OK;
dev_fail:
    return fail(LT_MODEL_ERR_DEVICE, err, errlen, "layer %lld: %s: %s", (long long)l,
                lt_status_str(s), lt_device_last_error(m->dev));
}

static lt_model_status run(lt_forward *f, const int32_t *ids, const int32_t *pos,
                           const int32_t *seg, int64_t B, int64_t T, lt_kv_cache *cache,
                           const int64_t *rows, lt_tensor **logits, char *err, size_t errlen)
{
    if (!f || !ids || !logits)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "forward: NULL argument");
    *logits = NULL;
    lt_model *m = f->m;
    const lt_model_config *c = &m->cfg;
    if (B <= 0 || T <= 0 || B > f->o.max_batch || T > f->o.max_seq)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "forward: batch [%lld, %lld] outside the workspace's [%lld, %lld]",
                    (long long)B, (long long)T, (long long)f->o.max_batch,
                    (long long)f->o.max_seq);
    int64_t p0 = 0, p_end = T;
    if (cache && rows) {
        if (cache->m != m || B > cache->batch)
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "forward: kv cache of batch %lld cannot take %lld rows",
                        (long long)cache->batch, (long long)B);
        for (int64_t b = 0; b < B; b++) {
            int64_t r = rows[b];
            bool dup = false;
            for (int64_t k = 0; k < b && !dup; k++)
                dup = rows[k] == r;
            if (r < 0 || r >= cache->batch || dup || cache->row_len[r] + T > cache->max_len)
                return fail(LT_MODEL_ERR_ARG, err, errlen,
                            "forward: kv cache row %lld (of %lld%s) cannot take %lld more "
                            "positions",
                            (long long)r, (long long)cache->batch, dup ? ", given twice" : "",
                            (long long)T);
            if (cache->row_len[r] + T > p_end)
                p_end = cache->row_len[r] + T;
        }
    } else if (cache) {
        if (cache->m != m || cache->batch != B || cache->len + T > cache->max_len)
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "forward: kv cache (batch %lld, %lld of %lld positions used) cannot take "
                        "[%lld, %lld] more",
                        (long long)cache->batch, (long long)cache->len,
                        (long long)cache->max_len, (long long)B, (long long)T);
        p0 = cache->len;
        p_end = p0 + T;
    }
    if (c->arch == LT_ARCH_GPT2 && p_end > c->max_pos)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "forward: position %lld is beyond gpt2's n_positions %lld",
                    (long long)(p_end - 1), (long long)c->max_pos);
    const int64_t N = B * T, D = c->dim, V = c->vocab;
    for (int64_t i = 0; i < N; i++) {
        if (ids[i] < 0 || ids[i] >= V)
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "forward: token id %d at position %lld is outside the vocabulary [0, %lld)",
                        ids[i], (long long)i, (long long)V);
        f->host_pos[i] = pos    ? pos[i]
                         : rows ? (int32_t)(cache->row_len[rows[i / T]] + i % T)
                                : (int32_t)(p0 + i % T);
        if (f->host_pos[i] < 0 || (c->arch == LT_ARCH_GPT2 && f->host_pos[i] >= c->max_pos))
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "forward: position %d of token %lld is outside [0, %lld)",
                        f->host_pos[i], (long long)i,
                        (long long)(c->arch == LT_ARCH_GPT2 ? c->max_pos : INT32_MAX));
    }
    lt_status s = lt_device_sync(m->dev); /* the previous run's views may still be in use */
    if (s != LT_OK)
        goto dev_fail;
    free_views(f);
    if (!ensure_lora_bufs(f))
        return fail(LT_MODEL_ERR_OOM, err, errlen, "forward: cannot allocate LoRA buffers: %s",
                    lt_device_last_error(m->dev));
    if (!make_views(f, B, T))
        return fail(LT_MODEL_ERR_OOM, err, errlen, "forward: cannot make views: %s",
                    lt_device_last_error(m->dev));
    lt_forward_acts *a = &f->acts;
    CK(lt_tensor_upload(a->ids, ids, (size_t)N * sizeof(int32_t)));
    CK(lt_tensor_upload(a->pos, f->host_pos, (size_t)N * sizeof(int32_t)));
    if (seg) {
        bool ok = true;
        a->seg = vw(f, f->seg, 0, 2, B, T, 0, 0, &ok);
        if (!ok)
            return fail(LT_MODEL_ERR_OOM, err, errlen, "forward: cannot make views");
        CK(lt_tensor_upload(a->seg, seg, (size_t)N * sizeof(int32_t)));
    }
    lt_tensor *x0 = a->layers ? a->layers[0].x : a->x_final;
    CK(lt_embedding(x0, m->tok_emb, a->ids));
    if (c->arch == LT_ARCH_GPT2) {
        bool ok = true;
        lt_tensor *tmp = vw(f, f->tmp, 0, 2, N, D, 0, 0, &ok);
        if (!ok)
            return fail(LT_MODEL_ERR_OOM, err, errlen, "forward: cannot make views");
        CK(lt_embedding(tmp, m->pos_emb, a->pos));
        CK(lt_add(x0, x0, tmp));
    }
    for (int64_t l = 0; l < c->n_layers; l++) {
        lt_tensor *out = l + 1 < c->n_layers ? a->layers[l + 1].x : a->x_final;
        lt_model_status ms = run_layer(f, l, &a->layers[l], out, cache, rows, p0, err, errlen);
        if (ms)
            return ms;
    }
    CK(norm(m, a->hf, c->arch == LT_ARCH_GPT2 ? a->meanf : NULL, a->rstdf, a->x_final, m->lnf_w,
            m->lnf_b));
    if (f->o.last_logits_only) {
        bool ok = true;
        for (int64_t b = 0; b < B; b++) {
            lt_tensor *row = vw(f, f->hf, (b * T + T - 1) * D, 2, 1, D, 0, 0, &ok);
            lt_tensor *out = vw(f, f->logits, b * V, 2, 1, V, 0, 0, &ok);
            if (!ok)
                return fail(LT_MODEL_ERR_OOM, err, errlen, "forward: cannot make views");
            CK(linear(out, row, &m->lm_head));
        }
    } else if (a->logits) { /* else lt_forward_logits, a chunk at a time */
        CK(linear(a->logits, a->hf, &m->lm_head));
    }
    if (cache && rows) {
        for (int64_t b = 0; b < B; b++)
            cache->row_len[rows[b]] += T;
    } else if (cache) {
        cache->len += T;
        for (int64_t b = 0; b < B; b++)
            cache->row_len[b] = cache->len;
    }
    *logits = a->logits;
    return LT_MODEL_OK;
dev_fail:
    return fail(LT_MODEL_ERR_DEVICE, err, errlen, "forward: %s: %s", lt_status_str(s),
                lt_device_last_error(m->dev));
}

lt_model_status lt_forward_run(lt_forward *f, const int32_t *ids, int64_t B, int64_t T,
                               lt_kv_cache *cache, lt_tensor **logits, char *err, size_t errlen)
{
    return run(f, ids, NULL, NULL, B, T, cache, NULL, logits, err, errlen);
}

lt_model_status lt_forward_run_rows(lt_forward *f, const int32_t *ids, int64_t B, int64_t T,
                                    lt_kv_cache *cache, const int64_t *rows, lt_tensor **logits,
                                    char *err, size_t errlen)
{
    if (!cache || !rows)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "forward: rows run needs a cache and rows");
    return run(f, ids, NULL, NULL, B, T, cache, rows, logits, err, errlen);
}

lt_model_status lt_forward_run_packed(lt_forward *f, const int32_t *ids, const int32_t *pos,
                                      const int32_t *seg, int64_t B, int64_t T,
                                      lt_tensor **logits, char *err, size_t errlen)
{
    return run(f, ids, pos, seg, B, T, NULL, NULL, logits, err, errlen);
}

int64_t lt_logits_chunk_rows(int64_t vocab, int64_t max_rows)
{
    int64_t rows = vocab > 0 ? LT_LOGITS_CHUNK_BYTES / (vocab * (int64_t)sizeof(float)) : 1;
    const char *cap = getenv("LATHE_LOGITS_CHUNK_ROWS"); /* tests: many chunks on tiny models */
    if (cap && atoll(cap) > 0 && atoll(cap) < rows)
        rows = atoll(cap);
    if (rows > max_rows)
        rows = max_rows;
    return rows > 0 ? rows : 1;
}

lt_model_status lt_forward_logits(lt_forward *f, int64_t r0, int64_t n, lt_tensor **logits,
                                  char *err, size_t errlen)
{
    if (!f || !logits)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "forward logits: NULL argument");
    *logits = NULL;
    const int64_t N = f->acts.B * f->acts.T, D = f->m->cfg.dim, V = f->m->cfg.vocab;
    if (f->o.logits_chunk <= 0 || !f->acts.hf)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "forward logits: the workspace computes its logits in its runs (made "
                    "without logits_chunk) or has not run");
    if (r0 < 0 || n <= 0 || n > f->o.logits_chunk || r0 + n > N)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "forward logits: rows [%lld, %lld) outside the run's %lld rows or more than "
                    "a chunk of %lld",
                    (long long)r0, (long long)(r0 + n), (long long)N, (long long)f->o.logits_chunk);
    bool ok = true;
    lt_tensor *h = vw(f, f->hf, r0 * D, 2, n, D, 0, 0, &ok);
    lt_tensor *out = vw(f, f->logits, 0, 2, n, V, 0, 0, &ok);
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "forward logits: cannot make views: %s",
                    lt_device_last_error(f->m->dev));
    lt_status s = linear(out, h, &f->m->lm_head);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "forward logits: %s: %s", lt_status_str(s),
                    lt_device_last_error(f->m->dev));
    *logits = out;
    return LT_MODEL_OK;
}

lt_tensor *lt_forward_hidden(const lt_forward *f, int l)
{
    const lt_model_config *c = &f->m->cfg;
    if (!f->o.keep_activations || l < 0 || l > c->n_layers + 1 || !f->acts.hf)
        return NULL;
    if (l == c->n_layers + 1)
        return f->acts.hf;
    if (l == c->n_layers)
        return f->acts.x_final;
    return f->acts.layers[l].x;
}

const lt_forward_acts *lt_forward_get_acts(const lt_forward *f) { return &f->acts; }
