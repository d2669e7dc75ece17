/*
 * backward.c - the backward pass of the Llama family (llama, mistral, qwen2) and GPT-2 on the
 * compute API, walking the activations the forward pass kept, from dlogits down to the
 * embeddings, with LoRA adapters on any projection.
 *
 * Gradients of weights accumulate into the slots an lt_model_grads names (NULL = frozen, then
 * that weight gradient is never computed); gradients of activations live in this file's
 * scratch buffers. Data gradients below the lowest trainable tensor are skipped. Like the
 * forward pass, this file only records ops; LoRA dropout masks are redrawn on the device from
 * the forward's seed (lt_lora_dropout_key), never stored.
 */
#include "train_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lt_backward {
    lt_model *m;
    bool counting;                 /* sizing only: buffers are counted, not made */
    uint64_t counted;
    int64_t max_n;                 /* max_batch * max_seq */
    int64_t chunk;                 /* MLP tokens per chunk (the forward's) */
    lt_tensor *dres, *dh, *dtmp;   /* [N, D]; dtmp may be the forward's scratch (borrowed) */
    lt_tensor *dq, *datt;          /* [N, H * hd]; datt is dh's buffer when H * hd <= D */
    lt_tensor *dk, *dv;            /* [N, Hkv * hd] */
    lt_tensor *dact;               /* [chunk, F] */
    lt_tensor *dup;                /* [chunk, F] gpt2 (Llama: SwiGLU's backward writes dgate
                                      and dup over the chunk's gate and up) */
    bool borrowed;                 /* dtmp belongs to the forward workspace */
    lt_tensor *du;                 /* [N, r] LoRA */
    lt_tensor *dxd;                /* [N, max(D, H * hd)] or [chunk, F] LoRA with dropout: xd,
                                      then its gradient */
    int64_t wide;                  /* elements of dxd */
    float lora_dropout;            /* the running forward's (lt_forward_acts) */
    uint64_t lora_seed;
    int64_t head_rows; /* rows lt_backward_head has filled since the last run */
    lt_tensor **views;
    int n_views, cap_views;
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

void lt_backward_free(lt_backward *bw)
{
    if (!bw)
        return;
    for (int i = bw->n_views - 1; i >= 0; i--)
        lt_tensor_free(bw->views[i]);
    free(bw->views);
    lt_tensor *all[] = {bw->dres, bw->dh,  bw->borrowed ? NULL : bw->dtmp,
                        bw->dq,   bw->datt == bw->dh ? NULL : bw->datt,
                        bw->dk,   bw->dv,  bw->dup, bw->dact, bw->du, bw->dxd};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        lt_tensor_free(all[i]);
    free(bw);
}

/* Stands for a buffer while counting: never dereferenced, only compared with NULL. */
static char counted_buffer;

static lt_tensor *buf(lt_backward *bw, int64_t n)
{
    if (bw->counting) {
        bw->counted += (uint64_t)n * sizeof(float);
        return (lt_tensor *)(void *)&counted_buffer;
    }
    return lt_tensor_new_1d(bw->m->dev, LT_F32, n);
}

/* Every buffer, in one order for allocating and for counting (scratch: the forward's, lent
 * as dtmp; NULL = its own). */
static bool alloc_all(lt_backward *bw, const lt_model_config *c, int lora_r, bool dropout,
                      lt_tensor *scratch)
{
    const int64_t N = bw->max_n, Nc = bw->chunk, D = c->dim, qd = c->n_heads * c->head_dim,
                  kvd = c->n_kv_heads * c->head_dim, F = c->ffn;
    bw->wide = N * (D > qd ? D : qd);
    if (Nc * F > bw->wide)
        bw->wide = Nc * F;
    const bool gpt2 = c->arch == LT_ARCH_GPT2;
    bw->dres = buf(bw, N * D);
    bw->dh = buf(bw, N * D);
    bw->borrowed = scratch != NULL;
    bw->dtmp = scratch ? scratch : buf(bw, N * D);
    bw->dq = buf(bw, N * qd);
    /* the attention output's gradient lives while dh is dead (from the second norm's backward
     * to the q/k/v projections' backward) */
    bw->datt = qd <= D ? bw->dh : buf(bw, N * qd);
    bw->dk = buf(bw, N * kvd);
    bw->dv = buf(bw, N * kvd);
    bw->dup = gpt2 ? buf(bw, Nc * F) : NULL;
    bw->dact = buf(bw, Nc * F);
    bool ok = bw->dres && bw->dh && bw->dtmp && bw->dq && bw->datt && bw->dk && bw->dv &&
              (bw->dup || !gpt2) && bw->dact;
    if (ok && lora_r > 0) {
        bw->du = buf(bw, N * lora_r);
        ok = bw->du != NULL;
        if (ok && dropout) {
            bw->dxd = buf(bw, bw->wide);
            ok = bw->dxd != NULL;
        }
    }
    return ok;
}

static lt_model_status backward_new(lt_model *m, int64_t max_batch, int64_t max_seq,
                                    int64_t chunk, int lora_r, bool dropout, lt_tensor *scratch,
                                    lt_backward **out, char *err, size_t errlen)
{
    if (!m || !out || max_batch <= 0 || max_seq <= 0 || chunk <= 0)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "backward: bad arguments");
    lt_backward *bw = calloc(1, sizeof(*bw));
    if (!bw)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    bw->m = m;
    bw->max_n = max_batch * max_seq;
    bw->chunk = chunk < bw->max_n ? chunk : bw->max_n;
    if (!alloc_all(bw, &m->cfg, lora_r, dropout, scratch)) {
        fail(LT_MODEL_ERR_OOM, err, errlen, "backward buffers for %lld tokens: %s",
             (long long)bw->max_n, lt_device_last_error(m->dev));
        lt_backward_free(bw);
        return LT_MODEL_ERR_OOM;
    }
    *out = bw;
    return LT_MODEL_OK;
}

lt_model_status lt_backward_new(lt_model *m, int64_t max_batch, int64_t max_seq, int lora_r,
                                lt_backward **out, char *err, size_t errlen)
{
    int64_t chunk = m ? lt_forward_mlp_chunk(&m->cfg) : 1;
    return backward_new(m, max_batch, max_seq, chunk, lora_r, lora_r > 0, NULL, out, err,
                        errlen);
}

lt_model_status lt_backward_new_for(lt_model *m, lt_forward *f, int64_t max_batch,
                                    int64_t max_seq, int lora_r, bool lora_dropout,
                                    lt_backward **out, char *err, size_t errlen)
{
    if (!f)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "backward: no forward workspace");
    return backward_new(m, max_batch, max_seq, lt_forward_chunk(f), lora_r, lora_dropout,
                        lt_forward_scratch(f), out, err, errlen);
}

uint64_t lt_backward_plan_bytes(const lt_model_config *c, int64_t max_batch, int64_t max_seq,
                                int64_t chunk, int lora_r, bool lora_dropout)
{
    lt_backward bw;
    memset(&bw, 0, sizeof(bw));
    bw.counting = true;
    bw.max_n = max_batch * max_seq;
    bw.chunk = chunk > 0 && chunk < bw.max_n ? chunk : bw.max_n;
    alloc_all(&bw, c, lora_r, lora_dropout, (lt_tensor *)(void *)&counted_buffer);
    return bw.counted;
}

/* A view of p's first elements with the given shape (freed at the end of the run). */
static lt_tensor *bv(lt_backward *bw, lt_tensor *p, int ndim, int64_t d0, int64_t d1,
                     int64_t d2, int64_t d3, bool *ok)
{
    if (!*ok || !p)
        return NULL;
    if (bw->n_views == bw->cap_views) {
        int nc = bw->cap_views ? 2 * bw->cap_views : 128;
        lt_tensor **nv = realloc(bw->views, (size_t)nc * sizeof(*nv));
        if (!nv) {
            *ok = false;
            return NULL;
        }
        bw->views = nv;
        bw->cap_views = nc;
    }
    int64_t shape[4] = {d0, d1, d2, d3};
    lt_tensor *t = lt_tensor_view(p, 0, ndim, shape);
    if (!t)
        *ok = false;
    else
        bw->views[bw->n_views++] = t;
    return t;
}

/* Through y = x W^T + b (or x W for Conv1D): dx = dy W (beta 0 writes, 1 accumulates; dx
 * NULL = not wanted), dW += dy^T x, db += colsum(dy). */
static lt_status linear_bwd(lt_tensor *dx, float beta, const lt_linear_grad *g,
                            const lt_tensor *dy, const lt_tensor *x, const lt_linear *lin)
{
    lt_status s = LT_OK;
    if (dx)
        s = lt_matmul(dx, dy, lin->w, false, lin->conv1d, 1.0f, beta);
    if (s == LT_OK && g && g->w)
        s = lt_matmul_backward(NULL, g->w, dy, x, lin->w, false, !lin->conv1d);
    if (s == LT_OK && g && g->b)
        s = lt_bias_backward(g->b, dy);
    return s;
}

/*
 * Through an adapter on slot s: y[k] += u Bk^T, u = scale * xd A^T. With du' = sum_k dy[k] Bk:
 * dBk += dy[k]^T u, dA += scale * du'^T xd, dx += scale * (du' A) * mask / (1 - p) (dx NULL =
 * not wanted). Under dropout, xd = dropout(x) is redrawn with the forward's key into bw->dxd,
 * which then holds the gradient through the mask.
 */
static lt_status lora_bwd(lt_backward *bw, const lt_layer_acts *la, int64_t l, int s,
                          const lt_lora_module *g, lt_tensor *const *dy, int ny,
                          const lt_tensor *x, lt_tensor *dx, int64_t N, bool *ok)
{
    const lt_lora_adapter *ad = bw->m->lora;
    if (!ad || l >= ad->n_layers || !ad->mods[l][s].A || !la->lora_u[s])
        return LT_OK;
    const lt_lora_module *mo = &ad->mods[l][s];
    lt_tensor *du = bv(bw, bw->du, 2, N, ad->r, 0, 0, ok);
    if (!*ok)
        return LT_ERR_OOM;
    lt_status st = LT_OK;
    for (int k = 0; k < ny && st == LT_OK; k++) {
        const lt_tensor *Bk = ny == 3 ? mo->Bpart[k] : mo->B;
        st = lt_matmul(du, dy[k], Bk, false, false, 1.0f, k ? 1.0f : 0.0f);
        lt_tensor *gB = g ? (ny == 3 ? g->Bpart[k] : g->B) : NULL;
        if (st == LT_OK && gB)
            st = lt_matmul(gB, dy[k], la->lora_u[s], true, false, 1.0f, 1.0f);
    }
    const float p = bw->lora_dropout;
    const uint64_t key = lt_lora_dropout_key(bw->lora_seed, l, s);
    const uint64_t first = (uint64_t)la->row0 * (uint64_t)mo->in; /* la's rows' counters */
    lt_tensor *dxd = p > 0 ? bv(bw, bw->dxd, 2, N, mo->in, 0, 0, ok) : NULL;
    if (!*ok)
        return LT_ERR_OOM;
    if (st == LT_OK && g && g->A) {
        if (dxd && (st = lt_dropout(dxd, x, p, key, first)) != LT_OK) /* as the forward drew */
            return st;
        st = lt_matmul(g->A, du, dxd ? dxd : x, true, false, ad->scale, 1.0f);
    }
    if (st != LT_OK || !dx)
        return st;
    if (!dxd)
        return lt_matmul(dx, du, mo->A, false, false, ad->scale, 1.0f);
    if ((st = lt_matmul(dxd, du, mo->A, false, false, ad->scale, 0.0f)) != LT_OK ||
        (st = lt_dropout_backward(dxd, dxd, p, key, first)) != LT_OK)
        return st;
    return lt_add(dx, dx, dxd);
}

static lt_status norm_bwd(const lt_model *m, lt_tensor *dx, lt_tensor *gw, lt_tensor *gb,
                          const lt_tensor *dy, const lt_tensor *x, const lt_tensor *w,
                          const lt_tensor *mean, const lt_tensor *rstd)
{
    if (m->cfg.arch == LT_ARCH_GPT2)
        return lt_layernorm_backward(dx, gw, gb, dy, x, w, mean, rstd);
    return lt_rmsnorm_backward(dx, gw, dy, x, w, rstd);
}

static bool layer_trains(const lt_layer_grads *g)
{
    if (g->ln1_w || g->ln1_b || g->ln2_w || g->ln2_b)
        return true;
    const lt_linear_grad *ls[] = {&g->q, &g->k, &g->v, &g->o, &g->gate, &g->up, &g->down};
    for (int i = 0; i < 7; i++)
        if (ls[i]->w || ls[i]->b)
            return true;
    for (int s = 0; s < LT_LSLOT_COUNT; s++)
        if (g->lora[s].A)
            return true;
    return false;
}

#define CK(expr)                                                                              \
    do {                                                                                      \
        if ((s = (expr)) != LT_OK)                                                            \
            goto dev_fail;                                                                    \
    } while (0)

/* A view of rows [t0, t0 + n) of a [*, width] buffer p (freed at the end of the run). */
static lt_tensor *rows_of(lt_backward *bw, lt_tensor *p, int64_t t0, int64_t n, int64_t width,
                          bool *ok)
{
    if (!*ok || !p)
        return NULL;
    if (bw->n_views == bw->cap_views) {
        int nc = bw->cap_views ? 2 * bw->cap_views : 128;
        lt_tensor **nv = realloc(bw->views, (size_t)nc * sizeof(*nv));
        if (!nv) {
            *ok = false;
            return NULL;
        }
        bw->views = nv;
        bw->cap_views = nc;
    }
    int64_t shape[2] = {n, width};
    lt_tensor *t = lt_tensor_view(p, t0 * width, 2, shape);
    if (!t)
        *ok = false;
    else
        bw->views[bw->n_views++] = t;
    return t;
}

/*
 * The MLP of layer l backward, a chunk of tokens at a time (the forward's chunks, so the
 * weight gradients accumulate in one order whether or not the layer was recomputed): from
 * dres (dL/d(layer output)) to dh (dL/dh2), the chunk's activations kept or recomputed.
 */
static lt_model_status mlp_bwd(lt_backward *bw, lt_forward *f, int64_t l,
                               const lt_layer_grads *g, char *err, size_t errlen)
{
    lt_model *m = bw->m;
    const lt_model_config *c = &m->cfg;
    const lt_layer_weights *w = &m->layers[l];
    const lt_forward_acts *a = lt_forward_get_acts(f);
    const int64_t N = a->B * a->T, D = c->dim, F = c->ffn, chunk = lt_forward_chunk(f);
    const bool gpt2 = c->arch == LT_ARCH_GPT2;
    const lt_lora_module *gl = g->lora;
    lt_status s = LT_OK;
    bool ok = true;
    for (int64_t t0 = 0; t0 < N; t0 += chunk) {
        const int64_t n = N - t0 < chunk ? N - t0 : chunk;
        lt_layer_acts ca;
        lt_model_status ms = lt_forward_mlp_acts(f, l, t0, n, &ca, err, errlen);
        if (ms)
            return ms;
        lt_tensor *dres = rows_of(bw, bw->dres, t0, n, D, &ok);
        lt_tensor *dh = rows_of(bw, bw->dh, t0, n, D, &ok);
        lt_tensor *dact = rows_of(bw, bw->dact, 0, n, F, &ok);
        lt_tensor *dgate = gpt2 ? NULL : ca.gate; /* written over the chunk's gate and up */
        lt_tensor *dup = gpt2 ? rows_of(bw, bw->dup, 0, n, F, &ok) : ca.up;
        if (!ok)
            goto dev_fail;
        /* out = x_mid + down(act) */
        CK(linear_bwd(dact, 0.0f, &g->down, dres, ca.act, &w->down));
        CK(lora_bwd(bw, &ca, l, LT_LSLOT_DOWN, &gl[LT_LSLOT_DOWN], &dres, 1, ca.act, dact, n,
                    &ok));
        if (gpt2) {
            CK(lt_gelu_backward(dup, dact, ca.up));
        } else {
            CK(lt_swiglu_backward(dgate, dup, dact, ca.gate, ca.up));
        }
        CK(linear_bwd(dh, 0.0f, &g->up, dup, ca.h2, &w->up));
        CK(lora_bwd(bw, &ca, l, LT_LSLOT_UP, &gl[LT_LSLOT_UP], &dup, 1, ca.h2, dh, n, &ok));
        if (!gpt2) {
            CK(linear_bwd(dh, 1.0f, &g->gate, dgate, ca.h2, &w->gate));
            CK(lora_bwd(bw, &ca, l, LT_LSLOT_GATE, &gl[LT_LSLOT_GATE], &dgate, 1, ca.h2, dh, n,
                        &ok));
        }
    }
    return LT_MODEL_OK;
dev_fail:
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "backward layer %lld: cannot make views",
                    (long long)l);
    return fail(LT_MODEL_ERR_DEVICE, err, errlen, "backward layer %lld MLP: %s: %s",
                (long long)l, lt_status_str(s), lt_device_last_error(m->dev));
}

/* One layer backward: bw->dres holds dL/d(layer output) and leaves holding dL/d(layer
 * input) (when need_dx). A recomputing workspace first recomputes the layer's forward. */
static lt_model_status layer_bwd(lt_backward *bw, lt_forward *f, int64_t l,
                                 const lt_layer_grads *g, bool need_dx, char *err,
                                 size_t errlen)
{
    if (lt_forward_recomputes(f)) {
        lt_model_status ms = lt_forward_recompute_layer(f, l, err, errlen);
        if (ms)
            return ms;
    }
    const lt_forward_acts *a = lt_forward_get_acts(f);
    lt_model *m = bw->m;
    const lt_model_config *c = &m->cfg;
    const lt_layer_weights *w = &m->layers[l];
    const lt_layer_acts *la = &a->layers[l];
    const int64_t B = a->B, T = a->T, N = B * T, D = c->dim, H = c->n_heads,
                  Hk = c->n_kv_heads, hd = c->head_dim;
    const bool gpt2 = c->arch == LT_ARCH_GPT2;
    lt_status s = LT_OK;
    bool ok = true;
    lt_tensor *dres = bv(bw, bw->dres, 2, N, D, 0, 0, &ok);
    lt_tensor *dh = bv(bw, bw->dh, 2, N, D, 0, 0, &ok);
    lt_tensor *dtmp = bv(bw, bw->dtmp, 2, N, D, 0, 0, &ok);
    lt_tensor *datt2 = bv(bw, bw->datt, 2, N, H * hd, 0, 0, &ok);
    lt_tensor *datt4 = bv(bw, bw->datt, 4, B, T, H, hd, &ok);
    lt_tensor *dq2 = bv(bw, bw->dq, 2, N, H * hd, 0, 0, &ok);
    lt_tensor *dq3 = bv(bw, bw->dq, 3, N, H, hd, 0, &ok);
    lt_tensor *dq4 = bv(bw, bw->dq, 4, B, T, H, hd, &ok);
    lt_tensor *dk2 = bv(bw, bw->dk, 2, N, Hk * hd, 0, 0, &ok);
    lt_tensor *dk3 = bv(bw, bw->dk, 3, N, Hk, hd, 0, &ok);
    lt_tensor *dk4 = bv(bw, bw->dk, 4, B, T, Hk, hd, &ok);
    lt_tensor *dv2 = bv(bw, bw->dv, 2, N, Hk * hd, 0, 0, &ok);
    lt_tensor *dv4 = bv(bw, bw->dv, 4, B, T, Hk, hd, &ok);
    lt_tensor *att2 = bv(bw, la->att, 2, N, H * hd, 0, 0, &ok);
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "backward layer %lld: cannot make views",
                    (long long)l);
    const lt_lora_module *gl = g->lora;
    lt_model_status ms = mlp_bwd(bw, f, l, g, err, errlen);
    if (ms)
        return ms;
    CK(norm_bwd(m, dtmp, g->ln2_w, g->ln2_b, dh, la->x_mid, w->ln2_w, la->mean2, la->rstd2));
    CK(lt_add(dres, dres, dtmp));
    /* attention: x_mid = x + o(attention(q, k, v)) */
    CK(linear_bwd(datt2, 0.0f, &g->o, dres, att2, &w->o));
    CK(lora_bwd(bw, la, l, LT_LSLOT_O, &gl[LT_LSLOT_O], &dres, 1, att2, datt2, N, &ok));
    lt_attn_params ap = {1.0f / sqrtf((float)hd), 0, 0, lt_model_layer_window(c, l)};
    CK(lt_attention_backward(dq4, dk4, dv4, datt4, la->q, la->k, la->v, la->att, la->lse, a->seg,
                             &ap));
    if (!gpt2) {
        CK(lt_rope_backward(dq3, a->pos, m->rope_inv, m->rope_mscale));
        CK(lt_rope_backward(dk3, a->pos, m->rope_inv, m->rope_mscale));
    }
    bool need_dh1 = need_dx || g->ln1_w || g->ln1_b;
    lt_tensor *dqkv[3] = {dq2, dk2, dv2};
    CK(linear_bwd(need_dh1 ? dh : NULL, 0.0f, &g->q, dq2, la->h1, &w->q));
    CK(linear_bwd(need_dh1 ? dh : NULL, 1.0f, &g->k, dk2, la->h1, &w->k));
    CK(linear_bwd(need_dh1 ? dh : NULL, 1.0f, &g->v, dv2, la->h1, &w->v));
    for (int j = 0; j < 3; j++)
        CK(lora_bwd(bw, la, l, LT_LSLOT_Q + j, &gl[LT_LSLOT_Q + j], &dqkv[j], 1, la->h1,
                    need_dh1 ? dh : NULL, N, &ok));
    CK(lora_bwd(bw, la, l, LT_LSLOT_ATTN, &gl[LT_LSLOT_ATTN], dqkv, 3, la->h1,
                need_dh1 ? dh : NULL, N, &ok));
    if (need_dh1) {
        CK(norm_bwd(m, dtmp, g->ln1_w, g->ln1_b, dh, la->x, w->ln1_w, la->mean1, la->rstd1));
        if (need_dx)
            CK(lt_add(dres, dres, dtmp));
    }
    return LT_MODEL_OK;
dev_fail:
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "backward layer %lld: cannot make views",
                    (long long)l);
    return fail(LT_MODEL_ERR_DEVICE, err, errlen, "backward layer %lld: %s: %s", (long long)l,
                lt_status_str(s), lt_device_last_error(m->dev));
}

/* Whether anything below the output layer trains: the final norm, a layer, the embeddings
 * (then dL/dhf is needed; else only lm_head's own gradient is). */
static bool head_needs_dhf(const lt_model *m, const lt_model_grads *g)
{
    if (g->tok_emb || g->pos_emb || g->lnf_w || g->lnf_b)
        return true;
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        if (layer_trains(&g->layers[l]))
            return true;
    return false;
}

lt_model_status lt_backward_head(lt_backward *bw, const lt_forward *f, const lt_model_grads *g,
                                 int64_t r0, const lt_tensor *dlogits, char *err, size_t errlen)
{
    if (!bw || !f || !g || !dlogits)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "backward head: NULL argument");
    lt_model *m = bw->m;
    const lt_forward_acts *a = lt_forward_get_acts(f);
    const int64_t N = a->B * a->T, D = m->cfg.dim, n = lt_tensor_dim(dlogits, 0);
    if (a->logits || !a->hf || N > bw->max_n || lt_tensor_ndim(dlogits) != 2 ||
        lt_tensor_dim(dlogits, 1) != m->cfg.vocab || r0 < 0 || n <= 0 || r0 + n > N)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "backward head: dlogits [%lld, %lld] at row %lld does not fit the last run "
                    "(%lld rows of vocabulary %lld, made with logits_chunk)",
                    (long long)n, (long long)lt_tensor_dim(dlogits, 1), (long long)r0, (long long)N,
                    (long long)m->cfg.vocab);
    int64_t shape[2] = {n, D};
    lt_tensor *h = lt_tensor_view(a->hf, r0 * D, 2, shape);
    lt_tensor *dh = head_needs_dhf(m, g) ? lt_tensor_view(bw->dh, r0 * D, 2, shape) : NULL;
    lt_linear_grad gh = {g->lm_head, NULL};
    lt_status s = !h || (!dh && head_needs_dhf(m, g)) ? LT_ERR_OOM : LT_OK;
    if (s == LT_OK)
        s = linear_bwd(dh, 0.0f, &gh, dlogits, h, &m->lm_head);
    lt_tensor_free(h);
    lt_tensor_free(dh);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "backward head rows [%lld, %lld): %s: %s",
                    (long long)r0, (long long)(r0 + n), lt_status_str(s),
                    lt_device_last_error(m->dev));
    bw->head_rows += n;
    return LT_MODEL_OK;
}

lt_model_status lt_backward_run(lt_backward *bw, lt_forward *f, const lt_model_grads *g,
                                char *err, size_t errlen)
{
    if (!bw || !f || !g)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "backward: NULL argument");
    lt_model *m = bw->m;
    const lt_model_config *c = &m->cfg;
    const lt_forward_acts *a = lt_forward_get_acts(f);
    const int64_t N = a->B * a->T, D = c->dim, L = c->n_layers;
    const bool chunked = !a->logits; /* the head's backward ran through lt_backward_head */
    const int64_t head_rows = bw->head_rows;
    bw->head_rows = 0;
    if (N > bw->max_n || !a->hf || (!chunked && lt_tensor_dim(a->logits, 0) != N) ||
        (L > 0 && !a->layers[0].lse))
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "backward: the forward run (%lld tokens) kept no activations for all tokens "
                    "or exceeds the backward workspace (%lld tokens)",
                    (long long)N, (long long)bw->max_n);
    if (chunked && head_rows != N)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "backward: the output layer's backward (lt_backward_head) covered %lld of "
                    "the run's %lld rows",
                    (long long)head_rows, (long long)N);
    if (m->lora && !bw->du)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "backward: an adapter is attached but the workspace was made without LoRA");
    for (int i = bw->n_views - 1; i >= 0; i--)
        lt_tensor_free(bw->views[i]);
    bw->n_views = 0;
    /* the lowest layer whose weights train; below it no data gradient is needed */
    bool emb = g->tok_emb || g->pos_emb;
    int64_t lowest = L;
    for (int64_t l = 0; l < L; l++)
        if (layer_trains(&g->layers[l])) {
            lowest = l;
            break;
        }
    lt_status s = LT_OK;
    bool ok = true;
    lt_tensor *dres = bv(bw, bw->dres, 2, N, D, 0, 0, &ok);
    lt_tensor *dhf = bv(bw, bw->dh, 2, N, D, 0, 0, &ok);
    if (!ok)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "backward: cannot make views");
    bw->lora_dropout = a->lora_dropout;
    bw->lora_seed = a->lora_seed;
    lt_linear_grad gh = {g->lm_head, NULL};
    bool below = emb || lowest < L;
    if (!chunked) /* dloss/dlogits of every row in the forward's logits */
        CK(linear_bwd(below || g->lnf_w || g->lnf_b ? dhf : NULL, 0.0f, &gh, a->logits, a->hf,
                      &m->lm_head));
    if (below || g->lnf_w || g->lnf_b)
        CK(norm_bwd(m, dres, g->lnf_w, g->lnf_b, dhf, a->x_final, m->lnf_w, a->meanf, a->rstdf));
    for (int64_t l = L - 1; below && l >= lowest; l--) {
        lt_model_status ms = layer_bwd(bw, f, l, &g->layers[l], emb || l > lowest, err, errlen);
        if (ms)
            return ms;
    }
    if (emb) {
        if (g->tok_emb)
            CK(lt_embedding_backward(g->tok_emb, dres, a->ids));
        if (g->pos_emb)
            CK(lt_embedding_backward(g->pos_emb, dres, a->pos));
    }
    return LT_MODEL_OK;
dev_fail:
    return fail(LT_MODEL_ERR_DEVICE, err, errlen, "backward: %s: %s", lt_status_str(s),
                lt_device_last_error(m->dev));
}
