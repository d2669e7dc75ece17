/*
 * forward.c - the forward pass of the Llama family and GPT-2 on the compute API, with a KV
 * cache for generation.
 *
 * Buffers are allocated once per workspace at the largest [B, T]; each run cuts views of the
 * exact shapes out of them (compute tensors are contiguous, so a view is a prefix). This file
 * records ops only; it reads device memory back only to offload kept layer inputs to the host
 * (recomputation), and uploads ids, positions, segments, those inputs and the rows of a
 * host-resident embedding table. LoRA dropout masks are drawn on the device (lt_dropout,
 * keyed per module, counted per element of the module's [N, in] input).
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

/* Flat buffers of one layer (aliases of layer 0's unless every layer keeps its own). gate,
 * up and act hold [N, F] when the layer keeps them, else one MLP chunk [chunk, F]. */
typedef struct layer_bufs {
    lt_tensor *x_mid, *h1, *h2, *mean1, *rstd1, *mean2, *rstd2;
    lt_tensor *q, *k, *v, *att, *lse, *gate, *up, *act;
} layer_bufs;

struct lt_forward {
    lt_model *m;
    const lt_model_config *cfg; /* m's, or the shape being sized (counting) */
    lt_forward_opts o;
    lt_forward_mem_opts mo;
    int64_t chunk;       /* MLP tokens per chunk */
    bool per_layer;      /* keep without recompute: every layer has its own buffers */
    bool counting;       /* sizing only: flat() counts bytes and allocates nothing */
    uint64_t counted;    /* bytes flat() would have allocated (counting) */
    uint64_t counted_logits; /* of which the logits buffer */
    float **saved;       /* offload: [n_layers] host copies of each layer's input [N * D] */
    uint64_t saved_bytes; /* host bytes registered for saved */
    float *host_emb;     /* [N * D] rows of a host-resident embedding table (registered) */
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
    lt_tensor *lora_xd; /* one module's dropped input (alloc_lora), or NULL */
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

/* Stands for a buffer while counting: never dereferenced, only compared with NULL. */
static char counted_buffer;

static lt_tensor *flat(lt_forward *f, lt_dtype dt, int64_t n)
{
    if (f->counting) {
        f->counted += (uint64_t)lt_dtype_size(dt) * (uint64_t)(n > 0 ? n : 1);
        return (lt_tensor *)(void *)&counted_buffer;
    }
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
    const lt_model_config *c = f->cfg;
    const int64_t D = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const int64_t mlp_rows = f->per_layer ? N : f->chunk;
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
    b->gate = c->arch == LT_ARCH_GPT2 ? NULL : flat(f, LT_F32, mlp_rows * c->ffn);
    b->up = flat(f, LT_F32, mlp_rows * c->ffn);
    b->act = flat(f, LT_F32, mlp_rows * c->ffn);
    return b->x_mid && b->h1 && b->h2 && b->mean1 && b->rstd1 && b->mean2 && b->rstd2 && b->q &&
           b->k && b->v && b->att && (b->lse || !f->o.keep_activations) &&
           (b->gate || c->arch == LT_ARCH_GPT2) && b->up && b->act;
}

int64_t lt_forward_mlp_chunk(const lt_model_config *c)
{
    /* an [chunk, F] F32 buffer of at most 16 MiB, a multiple of 32 tokens, at least 32 */
    int64_t chunk = ((int64_t)16 << 20) / (4 * (c->ffn > 0 ? c->ffn : 1));
    chunk -= chunk % 32;
    return chunk < 32 ? 32 : chunk;
}

/* Sets f's derived fields from f->o and f->cfg. */
static void set_shape(lt_forward *f)
{
    const int64_t N = f->o.max_batch * f->o.max_seq;
    if (!f->o.keep_activations)
        f->mo.recompute = false;
    if (!f->mo.recompute)
        f->mo.offload_inputs = false;
    f->per_layer = f->o.keep_activations && !f->mo.recompute;
    f->chunk = f->mo.mlp_chunk > 0 ? f->mo.mlp_chunk : lt_forward_mlp_chunk(f->cfg);
    if (f->chunk > N)
        f->chunk = N;
}

/* Every flat buffer of the workspace, in one order for allocating and for counting. */
static bool alloc_all(lt_forward *f)
{
    const lt_model_config *c = f->cfg;
    const lt_forward_opts *o = &f->o;
    const bool off = f->mo.offload_inputs;
    const int64_t Bm = o->max_batch, Tm = o->max_seq, N = Bm * Tm, D = c->dim, L = c->n_layers;
    /* the residual stream: one buffer per layer input when kept on the device, else one
     * buffer that each layer overwrites with its output (its input is dead by then; offloaded
     * inputs come back into it for the recomputation) */
    for (int64_t l = 0; l <= L; l++) {
        bool own = l == 0 || (o->keep_activations && !off);
        f->resid[l] = own ? flat(f, LT_F32, N * D) : f->resid[0];
        if (!f->resid[l])
            return false;
    }
    for (int64_t l = 0; l < L; l++) {
        if (l > 0 && !f->per_layer)
            f->lb[l] = f->lb[0];
        else if (!alloc_layer(f, &f->lb[l], N, Bm, Tm))
            return false;
    }
    f->tmp = flat(f, LT_F32, N * D);
    /* recomputing, the layers' buffers are idle from the final norm until the output layer's
     * backward is done: the final norm's output takes the first norm's */
    f->hf = f->mo.recompute ? f->lb[0].h1 : flat(f, LT_F32, N * D);
    f->meanf = flat(f, LT_F32, N);
    f->rstdf = flat(f, LT_F32, N);
    /* the output layer's logits: [B, V], one chunk [logits_chunk, V] (lt_forward_logits) or
     * [N, V] */
    uint64_t before = f->counted;
    f->logits = flat(f, LT_F32,
                     (o->last_logits_only   ? Bm
                      : o->logits_chunk > 0 ? (o->logits_chunk < N ? o->logits_chunk : N)
                                            : N) *
                         c->vocab);
    f->counted_logits = f->counted - before;
    f->ids = flat(f, LT_I32, N);
    f->pos = flat(f, LT_I32, N);
    f->seg = flat(f, LT_I32, N);
    return f->tmp && f->hf && f->meanf && f->rstdf && f->logits && f->ids && f->pos && f->seg;
}

static bool alloc_lora(lt_forward *f, const lt_lora_adapter *a, int r, uint32_t slots,
                       float dropout);

void lt_forward_plan_bytes(const lt_model_config *c, const lt_forward_opts *o,
                           const lt_forward_mem_opts *mo, int lora_r, uint32_t lora_slots,
                           float lora_dropout, uint64_t *device, uint64_t *logits,
                           uint64_t *host)
{
    lt_forward f;
    memset(&f, 0, sizeof(f));
    f.cfg = c;
    f.o = *o;
    if (mo)
        f.mo = *mo;
    f.counting = true;
    set_shape(&f);
    const int64_t L = c->n_layers, N = o->max_batch * o->max_seq;
    f.resid = calloc((size_t)L + 1, sizeof(lt_tensor *));
    f.lb = calloc((size_t)L > 0 ? (size_t)L : 1, sizeof(layer_bufs));
    if (f.resid && f.lb) {
        alloc_all(&f);
        if (lora_r > 0 && lora_slots)
            alloc_lora(&f, NULL, lora_r, lora_slots, lora_dropout);
    }
    free(f.resid);
    free(f.lb);
    if (device)
        *device = f.counted;
    if (logits)
        *logits = f.counted_logits;
    if (host)
        *host = f.mo.offload_inputs ? (uint64_t)L * (uint64_t)N * (uint64_t)c->dim * 4u : 0;
}

lt_model_status lt_forward_new(lt_model *m, const lt_forward_opts *o, lt_forward **out,
                               char *err, size_t errlen)
{
    return lt_forward_new_mem(m, o, NULL, out, err, errlen);
}

lt_model_status lt_forward_new_mem(lt_model *m, const lt_forward_opts *o,
                                   const lt_forward_mem_opts *mo, lt_forward **out, char *err,
                                   size_t errlen)
{
    if (!m || !o || !out || o->max_batch <= 0 || o->max_seq <= 0 || (mo && mo->mlp_chunk < 0) ||
        o->logits_chunk < 0 || (o->logits_chunk > 0 && o->last_logits_only))
        return fail(LT_MODEL_ERR_ARG, err, errlen, "forward: bad arguments");
    *out = NULL;
    const lt_model_config *c = &m->cfg;
    const int64_t Bm = o->max_batch, Tm = o->max_seq, N = Bm * Tm, D = c->dim, L = c->n_layers;
    lt_forward *f = calloc(1, sizeof(*f));
    if (!f)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    f->m = m;
    f->cfg = c;
    f->o = *o;
    if (mo)
        f->mo = *mo;
    set_shape(f);
    f->resid = calloc((size_t)L + 1, sizeof(lt_tensor *));
    f->lb = calloc((size_t)L, sizeof(layer_bufs));
    f->acts.layers = calloc((size_t)L, sizeof(lt_layer_acts));
    f->host_pos = malloc((size_t)N * sizeof(int32_t));
    if (!f->resid || !f->lb || !f->acts.layers || !f->host_pos)
        goto err_oom;
    if (f->mo.offload_inputs) {
        f->saved = calloc((size_t)L + 1, sizeof(float *));
        if (!f->saved)
            goto err_oom;
        for (int64_t l = 0; l < L; l++)
            if (!(f->saved[l] = malloc((size_t)(N * D) * sizeof(float))))
                goto err_oom;
        f->saved_bytes = (uint64_t)L * (uint64_t)(N * D) * sizeof(float);
        lt_device_host_mem_add(m->dev, (int64_t)f->saved_bytes);
    }
    if (!alloc_all(f))
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

/* Where slot s of layer l keeps its LoRA buffers: one per layer and slot when every layer
 * keeps its activations, else one per slot shared by the layers (each layer's are used
 * right after they are written, or recomputed before its backward). */
static int lora_index(const lt_forward *f, int64_t l, int s)
{
    return f->per_layer ? (int)l * LT_LSLOT_COUNT + s : s;
}

static lt_tensor *lora_buf(lt_forward *f, int64_t n)
{
    if (f->counting) {
        f->counted += (uint64_t)n * sizeof(float);
        return (lt_tensor *)(void *)&counted_buffer;
    }
    return lt_tensor_new_1d(f->m->dev, LT_F32, n);
}

/* Allocates (or counts) the buffers for adapter a into f's lora arrays; without a (counting
 * only), for an adapter of rank r on the LT_LSLOT_* bits slots of every layer. Under dropout,
 * one scratch holds the dropped input of the module running: [N, max(D, H * hd)] for the
 * attention's slots, [chunk, max(D, F)] for the MLP's (the masks are drawn on the device and
 * redrawn by the backward, never kept). */
static bool alloc_lora(lt_forward *f, const lt_lora_adapter *a, int r, uint32_t slots,
                       float dropout)
{
    const lt_model_config *c = f->cfg;
    const int64_t N = f->o.max_batch * f->o.max_seq, L = c->n_layers;
    const int n = (int)L * LT_LSLOT_COUNT;
    if (a) {
        r = a->r;
        dropout = a->dropout;
    }
    bool drop = f->o.keep_activations && dropout > 0;
    lt_tensor **u = calloc((size_t)n, sizeof(lt_tensor *));
    bool ok = u != NULL, given = ok && !f->counting;
    if (given) /* f owns them now: free_lora_bufs releases whatever was made */
        f->lora_u = u;
    for (int64_t l = 0; ok && l < L && (!a || l < a->n_layers); l++)
        for (int s = 0; ok && s < LT_LSLOT_COUNT; s++) {
            int i = lora_index(f, l, s);
            bool has = a ? a->mods[l][s].A != NULL : (slots >> s) & 1u;
            if (!has || u[i])
                continue;
            ok = (u[i] = lora_buf(f, N * r)) != NULL;
        }
    if (ok && drop) {
        const int64_t qd = c->n_heads * c->head_dim, F = c->ffn;
        int64_t wide = N * (c->dim > qd ? c->dim : qd);
        if (f->chunk * F > wide)
            wide = f->chunk * F;
        lt_tensor *xd = lora_buf(f, wide);
        ok = xd != NULL;
        if (given)
            f->lora_xd = xd;
    }
    if (!given)
        free(u);
    return ok;
}

/* Makes the LoRA buffers match the attached adapter (none when detached). */
static bool ensure_lora_bufs(lt_forward *f)
{
    const lt_lora_adapter *a = f->m->lora;
    if (a == f->lora_for && (!a || (a->r == f->lora_r && a->dropout == f->lora_dropout))) {
        /* the same adapter (or one at the same address): every module must have its buffer */
        bool complete = true;
        for (int64_t l = 0; a && l < a->n_layers && l < f->m->cfg.n_layers; l++)
            for (int s = 0; s < LT_LSLOT_COUNT; s++)
                if (a->mods[l][s].A && !f->lora_u[lora_index(f, l, s)])
                    complete = false;
        if (complete)
            return true;
    }
    free_lora_bufs(f);
    if (!a)
        return true;
    if (!alloc_lora(f, a, 0, 0, 0.0f)) {
        free_lora_bufs(f);
        return false;
    }
    f->lora_for = a;
    f->lora_r = a->r;
    f->lora_dropout = a->dropout;
    return true;
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
    if (f->host_emb) {
        free(f->host_emb);
        lt_device_host_mem_add(f->m->dev, -(int64_t)((size_t)(f->o.max_batch * f->o.max_seq *
                                                              f->cfg->dim) *
                                                     sizeof(float)));
    }
    if (f->saved) {
        for (int64_t l = 0; l < f->cfg->n_layers; l++)
            free(f->saved[l]);
        free(f->saved);
        lt_device_host_mem_add(f->m->dev, -(int64_t)f->saved_bytes);
    }
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
        la->row0 = 0;
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
        /* the MLP's [N, F] buffers exist only where the layer keeps them (else per chunk) */
        la->gate = f->per_layer ? vw(f, b->gate, 0, 2, N, F, 0, 0, &ok) : NULL;
        la->up = f->per_layer ? vw(f, b->up, 0, 2, N, F, 0, 0, &ok) : NULL;
        la->act = f->per_layer ? vw(f, b->act, 0, 2, N, F, 0, 0, &ok) : NULL;
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            const lt_lora_module *mo = ad && l < ad->n_layers ? &ad->mods[l][s] : NULL;
            int i = lora_index(f, l, s);
            la->lora_u[s] = NULL;
            if (!mo || !mo->A)
                continue;
            la->lora_u[s] = vw(f, f->lora_u[i], 0, 2, N, ad->r, 0, 0, &ok);
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
 * for GPT-2's fused c_attn, else 1). x holds rows [la->row0, la->row0 + n) of the slot's
 * [N, in] input; the mask's counter starts at la->row0 * in, so element (row, col) of the
 * input gets one draw however the rows are chunked. A no-op when the slot has no adapter. */
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
        if ((st = lt_dropout(xd, x, p, lt_lora_dropout_key(f->acts.lora_seed, l, s),
                             (uint64_t)la->row0 * (uint64_t)mo->in)) != LT_OK)
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

/*
 * Tokens [t0, t0 + n) of layer l's MLP (it is per token, so it runs a chunk at a time with
 * buffers for one chunk unless the layer keeps [N, F]; every mode chunks alike, so the ops
 * and their bits do not depend on the mode). *ca (OUT) receives la with the chunk's rows:
 * x_mid, h2, gate, up, act [n, ...] and the MLP slots' LoRA u, with row0 = t0 (the MLP
 * slots' dropout masks are drawn at the rows' own counters, so every chunking draws the
 * whole layer's mask). compute: run
 * h2 -> gate, up -> act and the LoRA u of every MLP slot; then out (when given) rows =
 * x_mid rows + down(act) (without out, the base down projection is skipped: only its
 * adapter's u is wanted, for a recomputation).
 */
static lt_status mlp_chunk(lt_forward *f, int64_t l, const lt_layer_acts *la, int64_t t0,
                           int64_t n, bool compute, lt_tensor *out, lt_layer_acts *ca, bool *ok)
{
    const lt_model *m = f->m;
    const lt_model_config *c = &m->cfg;
    const lt_layer_weights *w = &m->layers[l];
    const layer_bufs *b = &f->lb[l];
    const lt_lora_adapter *ad = f->lora_for;
    const int64_t D = c->dim, F = c->ffn, r0 = f->per_layer ? t0 : 0;
    const bool gpt2 = c->arch == LT_ARCH_GPT2;
    *ca = *la;
    ca->x = NULL;
    ca->row0 = t0;
    ca->x_mid = vw(f, la->x_mid, t0 * D, 2, n, D, 0, 0, ok);
    ca->h2 = vw(f, la->h2, t0 * D, 2, n, D, 0, 0, ok);
    ca->gate = gpt2 ? NULL : vw(f, b->gate, r0 * F, 2, n, F, 0, 0, ok);
    ca->up = vw(f, b->up, r0 * F, 2, n, F, 0, 0, ok);
    ca->act = vw(f, b->act, r0 * F, 2, n, F, 0, 0, ok);
    const int mlp[3] = {LT_LSLOT_GATE, LT_LSLOT_UP, LT_LSLOT_DOWN};
    for (int j = 0; j < 3; j++) {
        int s = mlp[j];
        if (!la->lora_u[s])
            continue;
        ca->lora_u[s] = vw(f, la->lora_u[s], t0 * ad->r, 2, n, ad->r, 0, 0, ok);
    }
    lt_tensor *tmp = vw(f, f->tmp, t0 * D, 2, n, D, 0, 0, ok);
    lt_tensor *oc = out ? vw(f, out, t0 * D, 2, n, D, 0, 0, ok) : NULL;
    if (!*ok)
        return LT_ERR_OOM;
    if (!compute)
        return LT_OK;
    lt_status s = LT_OK;
    if (gpt2) {
        CK(linear(ca->up, ca->h2, &w->up));
        CK(lora_fwd(f, l, ca, LT_LSLOT_UP, &ca->up, 1, ca->h2));
        CK(lt_gelu(ca->act, ca->up));
    } else {
        CK(linear(ca->gate, ca->h2, &w->gate));
        CK(lora_fwd(f, l, ca, LT_LSLOT_GATE, &ca->gate, 1, ca->h2));
        CK(linear(ca->up, ca->h2, &w->up));
        CK(lora_fwd(f, l, ca, LT_LSLOT_UP, &ca->up, 1, ca->h2));
        CK(lt_swiglu(ca->act, ca->gate, ca->up));
    }
    if (oc)
        CK(linear(tmp, ca->act, &w->down));
    CK(lora_fwd(f, l, ca, LT_LSLOT_DOWN, &tmp, 1, ca->act));
    if (oc)
        CK(lt_add(oc, ca->x_mid, tmp));
    return LT_OK;
dev_fail:
    return s;
}

/* One transformer layer: la->x -> out; attn_only (a recomputation) stops after the second
 * norm, leaving the MLP to lt_forward_mlp_acts. */
static lt_model_status run_layer(lt_forward *f, int64_t l, lt_layer_acts *la, lt_tensor *out,
                                 lt_kv_cache *cache, const int64_t *rows, int64_t p0,
                                 bool attn_only, char *err, size_t errlen)
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
    if (attn_only)
        return LT_MODEL_OK;
    for (int64_t t0 = 0; t0 < N; t0 += f->chunk) {
        lt_layer_acts ca;
        int64_t n = N - t0 < f->chunk ? N - t0 : f->chunk;
        if ((s = mlp_chunk(f, l, la, t0, n, true, out, &ca, &ok)) != LT_OK)
            break;
    }
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "layer %lld: cannot make views", (long long)l);
    if (s != LT_OK)
        goto dev_fail;
    return LT_MODEL_OK;
dev_fail:
    return fail(LT_MODEL_ERR_DEVICE, err, errlen, "layer %lld: %s: %s", (long long)l,
                lt_status_str(s), lt_device_last_error(m->dev));
}

/* x0 [N, D] = rows ids of the model's host-resident embedding table (gathered on the host,
 * converted to F32 and uploaded). */
static lt_status gather_host_rows(lt_forward *f, lt_tensor *x0, const int32_t *ids, int64_t N)
{
    const lt_model *m = f->m;
    const int64_t D = m->cfg.dim, Nmax = f->o.max_batch * f->o.max_seq;
    if (!f->host_emb) {
        if (!(f->host_emb = malloc((size_t)(Nmax * D) * sizeof(float))))
            return LT_ERR_OOM;
        lt_device_host_mem_add(m->dev, (int64_t)((size_t)(Nmax * D) * sizeof(float)));
    }
    for (int64_t i = 0; i < N; i++) {
        float *o = f->host_emb + i * D;
        if (m->emb_host_dtype == LT_F32) {
            memcpy(o, (const float *)m->emb_host + (int64_t)ids[i] * D, (size_t)D * sizeof(float));
            continue;
        }
        const uint16_t *r = (const uint16_t *)m->emb_host + (int64_t)ids[i] * D;
        for (int64_t j = 0; j < D; j++)
            o[j] = m->emb_host_dtype == LT_BF16 ? lt_bf16_to_f32(r[j]) : lt_f16_to_f32(r[j]);
    }
    return lt_tensor_upload_f32(x0, f->host_emb, N * D);
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
    if (m->emb_host)
        CK(gather_host_rows(f, x0, ids, N));
    else
        CK(lt_embedding(x0, m->tok_emb, a->ids));
    if (c->arch == LT_ARCH_GPT2) {
        bool ok = true;
        lt_tensor *tmp = vw(f, f->tmp, 0, 2, N, D, 0, 0, &ok);
        if (!ok)
            return fail(LT_MODEL_ERR_OOM, err, errlen, "forward: cannot make views");
        CK(lt_embedding(tmp, m->pos_emb, a->pos));
        CK(lt_add(x0, x0, tmp));
    }
    if (f->saved && c->n_layers > 0) /* offload: each layer's input goes to the host */
        CK(lt_tensor_download_f32(x0, f->saved[0], N * D));
    for (int64_t l = 0; l < c->n_layers; l++) {
        lt_tensor *out = l + 1 < c->n_layers ? a->layers[l + 1].x : a->x_final;
        lt_model_status ms =
            run_layer(f, l, &a->layers[l], out, cache, rows, p0, false, err, errlen);
        if (ms)
            return ms;
        if (f->saved && l + 1 < c->n_layers)
            CK(lt_tensor_download_f32(out, f->saved[l + 1], N * D));
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
    if (!f->o.keep_activations || l < 0 || l > c->n_layers + 1 || !f->acts.hf ||
        (f->saved && l < c->n_layers))
        return NULL;
    if (l == c->n_layers + 1)
        return f->acts.hf;
    if (l == c->n_layers)
        return f->acts.x_final;
    return f->acts.layers[l].x;
}

const lt_forward_acts *lt_forward_get_acts(const lt_forward *f) { return &f->acts; }

int64_t lt_forward_chunk(const lt_forward *f) { return f->chunk; }

lt_tensor *lt_forward_scratch(lt_forward *f) { return f->tmp; }

bool lt_forward_recomputes(const lt_forward *f) { return f->mo.recompute; }

lt_model_status lt_forward_recompute_layer(lt_forward *f, int64_t l, char *err, size_t errlen)
{
    lt_model *m = f->m;
    lt_forward_acts *a = &f->acts;
    const int64_t N = a->B * a->T, D = m->cfg.dim;
    if (!f->mo.recompute || l < 0 || l >= m->cfg.n_layers || !a->layers || !a->hf)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "forward: layer %lld cannot be recomputed (no recomputing run)",
                    (long long)l);
    lt_layer_acts *la = &a->layers[l];
    lt_status s = LT_OK;
    if (f->saved && (s = lt_tensor_upload_f32(la->x, f->saved[l], N * D)) != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "forward: layer %lld input: %s: %s",
                    (long long)l, lt_status_str(s), lt_device_last_error(m->dev));
    return run_layer(f, l, la, NULL, NULL, NULL, 0, true, err, errlen);
}

lt_model_status lt_forward_mlp_acts(lt_forward *f, int64_t l, int64_t t0, int64_t n,
                                    lt_layer_acts *ca, char *err, size_t errlen)
{
    lt_forward_acts *a = &f->acts;
    const int64_t N = a->B * a->T;
    if (l < 0 || l >= f->m->cfg.n_layers || !a->layers || t0 < 0 || n <= 0 || n > f->chunk ||
        t0 + n > N)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "forward: MLP rows [%lld, %lld) of layer %lld outside %lld tokens in chunks "
                    "of %lld",
                    (long long)t0, (long long)(t0 + n), (long long)l, (long long)N,
                    (long long)f->chunk);
    bool ok = true;
    lt_status s = mlp_chunk(f, l, &a->layers[l], t0, n, !f->per_layer, NULL, ca, &ok);
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "forward: layer %lld: cannot make views",
                    (long long)l);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "forward: layer %lld MLP: %s: %s",
                    (long long)l, lt_status_str(s), lt_device_last_error(f->m->dev));
    return LT_MODEL_OK;
}
