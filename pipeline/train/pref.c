/*
 * pref.c - DPO and ORPO on a trainer (pref.h): sequence log-probs of chosen and rejected rows
 * through lt_logprob_gather, the losses and their gradients per sequence on the host (in
 * double), the per-token gradient sent back through lt_logprob_gather_backward, then the
 * model's backward pass; reference log-probs cached per pair id. The output layer runs a
 * chunk of rows at a time (lt_trainer_logits): [tokens x vocab] logits never exist, and the
 * backward recomputes each chunk's logits (the same bits) instead of keeping them.
 *
 * Never touches the store or files; all device work goes through compute.h.
 */
#include "train/pref.h"

#include "train_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_entry {
    int64_t id;
    double chosen, rejected;
    bool used;
} ref_entry;

struct lt_pref {
    lt_trainer *t;
    lt_pref_opts o;
    int64_t cap_n;                   /* tokens the scratch tensors hold */
    lt_tensor *gids, *logp, *dout;   /* [cap_n] I32, F32, F32 */
    lt_tensor *dlogits;              /* [chunk, V] F32: one chunk's dloss/dlogits */
    int64_t chunk;                   /* rows dlogits holds */
    int32_t *h_gids;                 /* host copies [cap_n] */
    float *h_logp, *h_dout;
    ref_entry *cache;                /* open addressing, cap_cache a power of two */
    int64_t cap_cache, n_cache;
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

lt_model_status lt_pref_new(lt_trainer *t, const lt_pref_opts *o, lt_pref **out, char *err,
                            size_t errlen)
{
    if (!t || !o || !out)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "pref: NULL argument");
    if (!(o->beta > 0) || !isfinite(o->beta))
        return fail(LT_MODEL_ERR_ARG, err, errlen, "pref: beta %g must be a positive number",
                    (double)o->beta);
    if (o->kind != LT_PREF_DPO && o->kind != LT_PREF_DPO_IPO && o->kind != LT_PREF_ORPO)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "pref: unknown objective %d", (int)o->kind);
    lt_pref *p = calloc(1, sizeof(*p));
    if (!p)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "pref: out of memory");
    p->t = t;
    p->o = *o;
    *out = p;
    return LT_MODEL_OK;
}

static void free_scratch(lt_pref *p)
{
    lt_tensor_free(p->gids);
    lt_tensor_free(p->logp);
    lt_tensor_free(p->dout);
    lt_tensor_free(p->dlogits);
    free(p->h_gids);
    free(p->h_logp);
    free(p->h_dout);
    p->gids = p->logp = p->dout = p->dlogits = NULL;
    p->h_gids = NULL;
    p->h_logp = p->h_dout = NULL;
    p->cap_n = 0;
    p->chunk = 0;
}

void lt_pref_free(lt_pref *p)
{
    if (!p)
        return;
    free_scratch(p);
    free(p->cache);
    free(p);
}

void lt_pref_set_trainer(lt_pref *p, lt_trainer *t)
{
    if (p && t)
        p->t = t;
}

/* Scratch for n tokens (grows, never shrinks) and one chunk of the trainer's logits. */
static lt_model_status scratch(lt_pref *p, int64_t n, char *err, size_t errlen)
{
    if (n <= p->cap_n && p->chunk == lt_trainer_logits_chunk(p->t))
        return LT_MODEL_OK;
    if (n < p->cap_n)
        n = p->cap_n;
    free_scratch(p);
    lt_model *m = lt_trainer_model(p->t);
    lt_device *dev = lt_model_get_device(m);
    const int64_t V = lt_model_get_config(m)->vocab;
    p->gids = lt_tensor_new_1d(dev, LT_I32, n);
    p->logp = lt_tensor_new_1d(dev, LT_F32, n);
    p->dout = lt_tensor_new_1d(dev, LT_F32, n);
    p->chunk = lt_trainer_logits_chunk(p->t);
    p->dlogits = lt_tensor_new_2d(dev, LT_F32, p->chunk, V);
    p->h_gids = malloc((size_t)n * sizeof(int32_t));
    p->h_logp = malloc((size_t)n * sizeof(float));
    p->h_dout = malloc((size_t)n * sizeof(float));
    if (!p->gids || !p->logp || !p->dout || !p->dlogits || !p->h_gids || !p->h_logp ||
        !p->h_dout) {
        free_scratch(p);
        return fail(LT_MODEL_ERR_OOM, err, errlen,
                    "pref: cannot allocate scratch for %lld tokens (chunks of %lld x %lld "
                    "vocabulary): %s",
                    (long long)n, (long long)lt_trainer_logits_chunk(p->t), (long long)V,
                    lt_device_last_error(dev));
    }
    p->cap_n = n;
    return LT_MODEL_OK;
}

/* [n] views of the scratch vectors, from element off. */
static lt_tensor *vec_at(lt_tensor *t, int64_t off, int64_t n)
{
    int64_t s[1] = {n};
    return lt_tensor_view(t, off, 1, s);
}
static lt_tensor *vec(lt_tensor *t, int64_t n) { return vec_at(t, 0, n); }

/*
 * Forward on the batch's 2P rows (adapter detached when reference), per-token log-probs of
 * the labels a chunk of rows at a time, and the sums S[row] / counts n[row] on the host.
 */
static lt_model_status seq_logps(lt_pref *p, const lt_pref_batch *b, bool train, bool reference,
                                 double *S, int64_t *cnt, char *err, size_t errlen)
{
    const int64_t R = 2 * b->P, N = R * b->T;
    lt_model *m = lt_trainer_model(p->t);
    lt_device *dev = lt_model_get_device(m);
    lt_model_status st = scratch(p, N, err, errlen);
    if (st)
        return st;
    for (int64_t i = 0; i < N; i++)
        p->h_gids[i] = b->labels[i] == -100 ? 0 : b->labels[i];
    lt_batch lb = {.B = R, .T = b->T, .ids = b->ids, .labels = b->labels};
    const lt_lora_adapter *ad = lt_trainer_lora(p->t);
    if (reference && ad)
        lt_model_attach_lora(m, NULL);
    st = lt_trainer_run_forward(p->t, &lb, train, err, errlen);
    if (reference && ad)
        lt_model_attach_lora(m, ad);
    if (st)
        return st;
    lt_tensor *g = vec(p->gids, N), *lp = vec(p->logp, N);
    lt_status s = g && lp ? LT_OK : LT_ERR_OOM;
    if (s == LT_OK)
        s = lt_tensor_upload(g, p->h_gids, (size_t)N * sizeof(int32_t));
    for (int64_t r0 = 0; s == LT_OK && r0 < N; r0 += p->chunk) {
        int64_t k = N - r0 < p->chunk ? N - r0 : p->chunk;
        lt_tensor *lg = NULL, *gc = vec_at(p->gids, r0, k), *lc = vec_at(p->logp, r0, k);
        if ((st = lt_trainer_logits(p->t, r0, k, &lg, err, errlen)))
            s = LT_ERR_DEVICE;
        else
            s = gc && lc ? lt_logprob_gather(lc, lg, gc) : LT_ERR_OOM;
        lt_tensor_free(gc);
        lt_tensor_free(lc);
    }
    if (st) {
        lt_tensor_free(g);
        lt_tensor_free(lp);
        return st;
    }
    if (s == LT_OK)
        s = lt_tensor_download_f32(lp, p->h_logp, N);
    lt_tensor_free(g);
    lt_tensor_free(lp);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "pref: sequence log-probs: %s",
                    lt_device_last_error(dev));
    for (int64_t r = 0; r < R; r++) {
        double sum = 0;
        int64_t c = 0;
        for (int64_t k = r * b->T; k < (r + 1) * b->T; k++)
            if (b->labels[k] != -100) {
                sum += p->h_logp[k];
                c++;
            }
        if (c == 0)
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "pref: pair %lld: the %s row has no response token to score (labels "
                        "all -100)",
                        (long long)(r % b->P), r < b->P ? "chosen" : "rejected");
        S[r] = sum;
        cnt[r] = c;
    }
    return LT_MODEL_OK;
}

/* ---- reference cache -------------------------------------------------------------------- */

static uint64_t hash_id(int64_t id)
{
    uint64_t s = (uint64_t)id;
    return lt_splitmix64(&s);
}

static ref_entry *cache_slot(const lt_pref *p, int64_t id)
{
    if (!p->cap_cache)
        return NULL;
    uint64_t mask = (uint64_t)p->cap_cache - 1;
    for (uint64_t h = hash_id(id) & mask;; h = (h + 1) & mask)
        if (!p->cache[h].used || p->cache[h].id == id)
            return &p->cache[h];
}

static bool cache_put(lt_pref *p, int64_t id, double c, double r)
{
    if (2 * (p->n_cache + 1) > p->cap_cache) {
        int64_t nc = p->cap_cache ? 2 * p->cap_cache : 256;
        ref_entry *old = p->cache;
        int64_t oc = p->cap_cache;
        p->cache = calloc((size_t)nc, sizeof(ref_entry));
        if (!p->cache) {
            p->cache = old;
            return false;
        }
        p->cap_cache = nc;
        for (int64_t i = 0; i < oc; i++)
            if (old[i].used)
                *cache_slot(p, old[i].id) = old[i];
        free(old);
    }
    ref_entry *e = cache_slot(p, id);
    if (!e->used)
        p->n_cache++;
    *e = (ref_entry){id, c, r, true};
    return true;
}

bool lt_pref_reference(const lt_pref *p, int64_t pair_id, double *chosen, double *rejected)
{
    const ref_entry *e = p ? cache_slot(p, pair_id) : NULL;
    if (!e || !e->used)
        return false;
    if (chosen)
        *chosen = e->chosen;
    if (rejected)
        *rejected = e->rejected;
    return true;
}

static lt_model_status check_batch(const lt_pref_batch *b, bool need_ids, char *err,
                                   size_t errlen)
{
    if (!b || b->P <= 0 || b->T <= 0 || !b->ids || !b->labels || (need_ids && !b->pair_ids))
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "pref: batch of %lld pairs x %lld tokens is empty or lacks ids, labels or "
                    "(DPO) pair ids",
                    b ? (long long)b->P : 0LL, b ? (long long)b->T : 0LL);
    return LT_MODEL_OK;
}

lt_model_status lt_pref_fill_reference(lt_pref *p, const lt_pref_batch *b, char *err,
                                       size_t errlen)
{
    if (!p)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "pref: NULL");
    if (p->o.kind == LT_PREF_ORPO)
        return LT_MODEL_OK;
    lt_model_status st = check_batch(b, true, err, errlen);
    if (st)
        return st;
    bool all = true;
    for (int64_t i = 0; i < b->P && all; i++)
        all = lt_pref_reference(p, b->pair_ids[i], NULL, NULL);
    if (all)
        return LT_MODEL_OK;
    const int64_t R = 2 * b->P;
    double *S = malloc((size_t)R * sizeof(double));
    int64_t *n = malloc((size_t)R * sizeof(int64_t));
    if (!S || !n)
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "pref: out of memory");
    else
        st = seq_logps(p, b, false, true, S, n, err, errlen);
    for (int64_t i = 0; !st && i < b->P; i++)
        if (!cache_put(p, b->pair_ids[i], S[i], S[b->P + i]))
            st = fail(LT_MODEL_ERR_OOM, err, errlen, "pref: reference cache: out of memory");
    free(S);
    free(n);
    return st;
}

/* ---- losses ----------------------------------------------------------------------------- */

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
/* log(1 - e^l) for l < 0, stable near 0 and for very negative l */
static double log1mexp(double l)
{
    if (l > -1e-12)
        l = -1e-12;
    return l > -0.693147 ? log(-expm1(l)) : log1p(-exp(l));
}

/* Loss, statistics and dL/dS per row (dS [2P]) from the sums S and counts n. */
static void pref_loss(const lt_pref *p, const lt_pref_batch *b, const double *S,
                      const int64_t *n, double *dS, lt_pref_stats *st)
{
    const int64_t P = b->P;
    const double beta = p->o.beta;
    memset(st, 0, sizeof(*st));
    st->pairs = P;
    int64_t nc_all = 0;
    double nll_sum = 0;
    for (int64_t i = 0; i < P; i++) {
        nc_all += n[i];
        nll_sum -= S[i];
    }
    for (int64_t i = 0; i < P; i++) {
        const double Sc = S[i], Sr = S[P + i];
        const double nc = (double)n[i], nr = (double)n[P + i];
        double rc, rr, li, dc, dr;
        if (p->o.kind == LT_PREF_ORPO) {
            double lc = Sc / nc, lr = Sr / nr;
            double z = (lc - lr) - (log1mexp(lc) - log1mexp(lr));
            li = beta * softplus(-z);
            double g = -beta * sigmoid(-z) / (double)P; /* dL/dz */
            /* dz/dlc = 1 / (1 - e^lc); dz/dlr = -1 / (1 - e^lr) */
            dc = -1.0 / (double)nc_all + g / (-expm1(fmin(lc, -1e-12))) / nc;
            dr = -g / (-expm1(fmin(lr, -1e-12))) / nr;
            rc = beta * lc;
            rr = beta * lr;
            st->log_odds += z / (double)P;
        } else {
            double Rc = 0, Rr = 0;
            lt_pref_reference(p, b->pair_ids[i], &Rc, &Rr);
            rc = beta * (Sc - Rc);
            rr = beta * (Sr - Rr);
            if (p->o.kind == LT_PREF_DPO) {
                double d = (Sc - Rc) - (Sr - Rr);
                li = softplus(-beta * d);
                double g = -beta * sigmoid(-beta * d) / (double)P;
                dc = g;
                dr = -g;
            } else {
                double d = (Sc - Rc) / nc - (Sr - Rr) / nr, e = d - 1.0 / (2.0 * beta);
                li = e * e;
                double g = 2.0 * e / (double)P;
                dc = g / nc;
                dr = -g / nr;
            }
        }
        dS[i] = dc;
        dS[P + i] = dr;
        st->loss += li / (double)P;
        st->reward_chosen += rc / (double)P;
        st->reward_rejected += rr / (double)P;
        st->accuracy += (rc > rr ? 1.0 : 0.0) / (double)P;
    }
    st->margin = st->reward_chosen - st->reward_rejected;
    if (p->o.kind == LT_PREF_ORPO) {
        st->nll = nll_sum / (double)nc_all;
        st->loss += st->nll;
    }
}

static lt_model_status run(lt_pref *p, const lt_pref_batch *b, bool grad, float grad_scale,
                           lt_pref_stats *out, char *err, size_t errlen)
{
    if (!p)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "pref: NULL");
    const bool dpo = p->o.kind != LT_PREF_ORPO;
    lt_model_status st = check_batch(b, dpo, err, errlen);
    if (st)
        return st;
    if (dpo && (st = lt_pref_fill_reference(p, b, err, errlen)))
        return st;
    const int64_t R = 2 * b->P, N = R * b->T;
    double *S = malloc((size_t)R * sizeof(double)), *dS = malloc((size_t)R * sizeof(double));
    int64_t *n = malloc((size_t)R * sizeof(int64_t));
    lt_tensor *dout = NULL;
    lt_pref_stats ps;
    lt_device *dev = lt_model_get_device(lt_trainer_model(p->t));
    if (!S || !dS || !n) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "pref: out of memory");
        goto out;
    }
    if ((st = seq_logps(p, b, grad, false, S, n, err, errlen)))
        goto out;
    pref_loss(p, b, S, n, dS, &ps);
    if (out)
        *out = ps;
    if (!grad)
        goto out;
    for (int64_t k = 0; k < N; k++)
        p->h_dout[k] = b->labels[k] == -100 ? 0.0f : (float)(dS[k / b->T] * grad_scale);
    dout = vec(p->dout, N);
    lt_status s = dout ? lt_tensor_upload(dout, p->h_dout, (size_t)N * sizeof(float))
                       : LT_ERR_OOM;
    /* per chunk: the logits again, dloss/dlogits into the chunk scratch, through the head */
    for (int64_t r0 = 0; s == LT_OK && !st && r0 < N; r0 += p->chunk) {
        int64_t k = N - r0 < p->chunk ? N - r0 : p->chunk,
                s2[2] = {k, lt_tensor_dim(p->dlogits, 1)};
        lt_tensor *lg = NULL, *dl = lt_tensor_view(p->dlogits, 0, 2, s2);
        lt_tensor *gc = vec_at(p->gids, r0, k), *dc = vec_at(p->dout, r0, k);
        if (!dl || !gc || !dc)
            s = LT_ERR_OOM;
        else if (!(st = lt_trainer_logits(p->t, r0, k, &lg, err, errlen)) &&
                 (s = lt_fill(dl, 0.0f)) == LT_OK &&
                 (s = lt_logprob_gather_backward(dl, dc, lg, gc)) == LT_OK)
            st = lt_trainer_head_backward(p->t, r0, dl, err, errlen);
        lt_tensor_free(dl);
        lt_tensor_free(gc);
        lt_tensor_free(dc);
    }
    if (!st && s != LT_OK) {
        st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "pref: loss gradient: %s",
                  lt_device_last_error(dev));
        goto out;
    }
    if (!st)
        st = lt_trainer_run_backward(p->t, err, errlen);
out:
    lt_tensor_free(dout);
    free(S);
    free(dS);
    free(n);
    return st;
}

lt_model_status lt_pref_forward_backward(lt_pref *p, const lt_pref_batch *b, float grad_scale,
                                         lt_pref_stats *st, char *err, size_t errlen)
{
    if (!isfinite(grad_scale))
        return fail(LT_MODEL_ERR_ARG, err, errlen, "pref: grad_scale %g must be finite",
                    (double)grad_scale);
    return run(p, b, true, grad_scale, st, err, errlen);
}

lt_model_status lt_pref_eval(lt_pref *p, const lt_pref_batch *b, lt_pref_stats *st, char *err,
                             size_t errlen)
{
    return run(p, b, false, 1.0f, st, err, errlen);
}
