/*
 * generate.c - sampling (penalty, temperature, top-k, top-p, seeded draw) and the decode loop.
 *
 * The loop prefills the prompt through the KV cache in one run, then feeds one token per
 * step, downloading only the last position's logits. With recompute it re-runs the whole
 * sequence every step instead: slower, but the reference the cache is tested against.
 * lt_generate_batch runs many prompts through one cache, one decode step for all rows.
 */
#include "generate.h"

#include "model_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void lt_sampler_defaults(lt_sampler *s)
{
    s->temperature = 0.0f;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->repetition_penalty = 1.0f;
    s->seed = 0;
}

uint64_t lt_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct cand {
    float v;
    int32_t id;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

int32_t lt_sample(float *logits, int64_t V, const int32_t *history, int64_t n_history,
                  const lt_sampler *s, uint64_t *rng)
{
    if (s->repetition_penalty > 0 && s->repetition_penalty != 1.0f) {
        for (int64_t i = 0; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= V)
                continue;
            /* a token seen twice is penalised once, as HF's gather/scatter */
            bool seen = false;
            for (int64_t j = 0; j < i && !seen; j++)
                seen = history[j] == t;
            if (seen)
                continue;
            logits[t] = logits[t] > 0 ? logits[t] / s->repetition_penalty
                                      : logits[t] * s->repetition_penalty;
        }
    }
    if (!(s->temperature > 0)) {
        int64_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > logits[best])
                best = i;
        return (int32_t)best;
    }
    cand *c = malloc((size_t)V * sizeof(cand));
    if (!c)
        return -1;
    for (int64_t i = 0; i < V; i++) {
        c[i].v = logits[i] / s->temperature;
        c[i].id = (int32_t)i;
    }
    qsort(c, (size_t)V, sizeof(cand), cmp_cand);
    int64_t n = V;
    if (s->top_k > 0 && s->top_k < n)
        n = s->top_k;
    /* softmax over the kept candidates (sorted, so c[0] is the max) */
    double sum = 0;
    const float top = c[0].v;
    for (int64_t i = 0; i < n; i++) {
        c[i].v = expf(c[i].v - top);
        sum += c[i].v;
    }
    if (s->top_p > 0 && s->top_p < 1) {
        /* smallest prefix whose probability reaches top_p (at least one token) */
        double acc = 0;
        int64_t keep = 0;
        while (keep < n) {
            acc += c[keep].v / sum;
            keep++;
            if (acc >= s->top_p)
                break;
        }
        n = keep;
        sum = 0;
        for (int64_t i = 0; i < n; i++)
            sum += c[i].v;
    }
    double u = (double)(lt_rng_next(rng) >> 40) * (1.0 / 16777216.0) * sum;
    int32_t pick = c[n - 1].id;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += c[i].v;
        if (u < acc) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    return pick;
}

static bool is_stop(const lt_model_config *c, const lt_generate_opts *o, int32_t t)
{
    if (!o->stop_at_eos)
        return false;
    if (lt_model_config_is_eos(c, t))
        return true;
    for (int i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids[i] == t)
            return true;
    return false;
}

/* Fails when a logit is NaN or +inf (a model with NaN or overflowing weights): a sampler
 * would pick a token from garbage, and greedy decoding on NaN ends at once with empty text. */
static lt_model_status check_logits(const float *logits, int64_t V, int64_t pos, char *err,
                                    size_t errlen)
{
    for (int64_t i = 0; i < V; i++)
        if (logits[i] != logits[i] || logits[i] == INFINITY)
            return fail(LT_MODEL_ERR_TENSOR, err, errlen,
                        "generate: the model's logits are not finite (%s at vocabulary id %lld, "
                        "position %lld): its weights hold NaN or overflow; check the model files "
                        "or the checkpoint they came from",
                        logits[i] != logits[i] ? "NaN" : "+inf", (long long)i, (long long)pos);
    return LT_MODEL_OK;
}

lt_model_status lt_generate(lt_model *m, const int32_t *prompt, int n_prompt,
                            const lt_generate_opts *o, int32_t *out, int *n_out, char *err,
                            size_t errlen)
{
    if (!m || !prompt || !o || !n_out || (o->max_new_tokens > 0 && !out) || n_prompt <= 0 ||
        o->max_new_tokens < 0)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "generate: need a non-empty prompt and max_new_tokens >= 0");
    *n_out = 0;
    const lt_model_config *c = &m->cfg;
    int64_t ctx = c->max_pos; /* a sliding window is masked in attention, not a cap */
    if (n_prompt > ctx)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "generate: prompt of %d tokens is longer than the model's context %lld",
                    n_prompt, (long long)ctx);
    int64_t total = n_prompt + (int64_t)o->max_new_tokens;
    if (total > ctx)
        total = ctx;
    const int64_t V = c->vocab;
    lt_forward *fw = NULL;
    lt_kv_cache *cache = NULL;
    int32_t *seq = malloc((size_t)total * sizeof(int32_t));
    float *logits = malloc((size_t)V * sizeof(float));
    lt_model_status st = LT_MODEL_OK;
    if (!seq || !logits) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    memcpy(seq, prompt, (size_t)n_prompt * sizeof(int32_t));
    lt_forward_opts fo = {.max_batch = 1, .max_seq = total, .last_logits_only = true};
    if ((st = lt_forward_new(m, &fo, &fw, err, errlen)))
        goto out;
    if (!o->recompute && (st = lt_kv_cache_new(m, 1, total, &cache, err, errlen)))
        goto out;
    uint64_t rng = o->sampler.seed;
    int64_t len = n_prompt, fed = 0;
    while (len < total) {
        lt_tensor *lg = NULL;
        if (o->recompute)
            st = lt_forward_run(fw, seq, 1, len, NULL, &lg, err, errlen);
        else
            st = lt_forward_run(fw, seq + fed, 1, len - fed, cache, &lg, err, errlen);
        if (st)
            goto out;
        fed = len;
        lt_status s = lt_tensor_download(lg, logits, (size_t)V * sizeof(float));
        if (s != LT_OK) {
            st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "generate: reading logits: %s",
                      lt_device_last_error(m->dev));
            goto out;
        }
        if ((st = check_logits(logits, V, len, err, errlen)))
            goto out;
        int32_t t = lt_sample(logits, V, seq, len, &o->sampler, &rng);
        if (t < 0) {
            st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
            goto out;
        }
        seq[len++] = t;
        out[(*n_out)++] = t;
        if (o->on_token && !o->on_token(o->user, t))
            break;
        if (is_stop(c, o, t))
            break;
    }
out:
    lt_kv_cache_free(cache);
    lt_forward_free(fw);
    free(logits);
    free(seq);
    return st;
}

/* One slot of a batched generation: the prompt it holds and its sequence so far. */
typedef struct gen_slot {
    int prompt;   /* index into the prompts, -1 when free */
    int64_t len;  /* tokens in seq */
    int64_t cap;  /* the sequence's cap: prompt + max_new, at most the context */
    int32_t *seq; /* [max_total] */
    uint64_t rng;
} gen_slot;

/* Takes one token for slot s from logits [V]; true when the slot is finished. */
static bool slot_take(const lt_model_config *c, const lt_generate_opts *o, gen_slot *s,
                      float *logits, int32_t *const *outs, int *n_outs, bool *oom)
{
    int32_t t = lt_sample(logits, c->vocab, s->seq, s->len, &o->sampler, &s->rng);
    if (t < 0) {
        *oom = true;
        return true;
    }
    s->seq[s->len++] = t;
    outs[s->prompt][n_outs[s->prompt]++] = t;
    return is_stop(c, o, t) || s->len >= s->cap;
}

lt_model_status lt_generate_batch(lt_model *m, const int32_t *const *prompts, const int *n_prompts,
                                  int n, int batch, const lt_generate_opts *o, int32_t *const *outs,
                                  int *n_outs, bool (*progress)(void *ctx, int done),
                                  void *progress_ctx, char *err, size_t errlen)
{
    if (!m || !o || n < 0 || batch < 1 || o->recompute || o->max_new_tokens < 0 ||
        (n > 0 && (!prompts || !n_prompts || !outs || !n_outs)))
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "generate: need prompts, a batch >= 1 and max_new_tokens >= 0 (no "
                    "recompute)");
    const lt_model_config *c = &m->cfg;
    int64_t ctx = c->max_pos; /* a sliding window is masked in attention, not a cap */
    int64_t max_total = 1, max_prompt = 1;
    for (int i = 0; i < n; i++) {
        n_outs[i] = 0;
        if (n_prompts[i] <= 0 || n_prompts[i] > ctx)
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "generate: prompt %d has %d tokens (expected 1 to the model's context "
                        "%lld)",
                        i, n_prompts[i], (long long)ctx);
        int64_t total = n_prompts[i] + (int64_t)o->max_new_tokens;
        total = total < ctx ? total : ctx;
        max_total = total > max_total ? total : max_total;
        max_prompt = n_prompts[i] > max_prompt ? n_prompts[i] : max_prompt;
    }
    if (n == 0 || o->max_new_tokens == 0)
        return LT_MODEL_OK;
    int B = batch < n ? batch : n;
    const int64_t V = c->vocab;
    lt_forward *pre = NULL, *dec = NULL;
    lt_kv_cache *cache = NULL;
    gen_slot *slots = calloc((size_t)B, sizeof(gen_slot));
    float *logits = malloc((size_t)(B * V) * sizeof(float));
    int32_t *step_ids = malloc((size_t)B * sizeof(int32_t));
    int64_t *rows = malloc((size_t)B * sizeof(int64_t));
    int *slot_of = malloc((size_t)B * sizeof(int));
    lt_model_status st = LT_MODEL_OK;
    bool oom = !slots || !logits || !step_ids || !rows || !slot_of;
    for (int b = 0; !oom && b < B; b++) {
        slots[b].prompt = -1;
        oom = !(slots[b].seq = malloc((size_t)max_total * sizeof(int32_t)));
    }
    if (oom) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    /* prefill one prompt at a time (batch 1, as lt_generate); decode all rows at once */
    lt_forward_opts fpre = {.max_batch = 1, .max_seq = max_prompt, .last_logits_only = true},
                    fdec = {.max_batch = B, .max_seq = 1, .last_logits_only = true};
    if ((st = lt_forward_new(m, &fpre, &pre, err, errlen)) ||
        (st = lt_forward_new(m, &fdec, &dec, err, errlen)) ||
        (st = lt_kv_cache_new(m, B, max_total, &cache, err, errlen)))
        goto out;
    int next = 0, done = 0, active = 0;
    while (done < n) {
        /* fill free slots with the next prompts, prefilling each and taking its first token */
        for (int b = 0; b < B && next < n; b++) {
            gen_slot *s = &slots[b];
            if (s->prompt >= 0)
                continue;
            int i = next++;
            int64_t r = b;
            lt_tensor *lg = NULL;
            s->prompt = i;
            s->len = n_prompts[i];
            s->cap = n_prompts[i] + (int64_t)o->max_new_tokens;
            s->cap = s->cap < ctx ? s->cap : ctx;
            s->rng = o->sampler.seed;
            memcpy(s->seq, prompts[i], (size_t)n_prompts[i] * sizeof(int32_t));
            lt_kv_cache_truncate_row(cache, r, 0);
            if ((st = lt_forward_run_rows(pre, prompts[i], 1, n_prompts[i], cache, &r, &lg, err,
                                          errlen)))
                goto out;
            if (lt_tensor_download(lg, logits, (size_t)V * sizeof(float)) != LT_OK) {
                st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "generate: reading logits: %s",
                          lt_device_last_error(m->dev));
                goto out;
            }
            if ((st = check_logits(logits, V, s->len, err, errlen)))
                goto out;
            active++;
            if (s->len >= s->cap || slot_take(c, o, s, logits, outs, n_outs, &oom)) {
                s->prompt = -1;
                active--;
                done++;
                if (progress && !progress(progress_ctx, done))
                    goto out;
                b--; /* refill this slot at once */
            }
            if (oom) {
                st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
                goto out;
            }
        }
        if (active == 0)
            continue;
        int nb = 0;
        for (int b = 0; b < B; b++)
            if (slots[b].prompt >= 0) {
                step_ids[nb] = slots[b].seq[slots[b].len - 1];
                rows[nb] = b;
                slot_of[nb++] = b;
            }
        lt_tensor *lg = NULL;
        if ((st = lt_forward_run_rows(dec, step_ids, nb, 1, cache, rows, &lg, err, errlen)))
            goto out;
        if (lt_tensor_download(lg, logits, (size_t)(nb * V) * sizeof(float)) != LT_OK) {
            st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "generate: reading logits: %s",
                      lt_device_last_error(m->dev));
            goto out;
        }
        for (int k = 0; k < nb; k++) {
            gen_slot *s = &slots[slot_of[k]];
            if (slot_take(c, o, s, logits + (int64_t)k * V, outs, n_outs, &oom)) {
                s->prompt = -1;
                active--;
                done++;
                if (progress && !progress(progress_ctx, done))
                    goto out;
            }
            if (oom) {
                st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
                goto out;
            }
        }
    }
out:
    lt_kv_cache_free(cache);
    lt_forward_free(dec);
    lt_forward_free(pre);
    for (int b = 0; slots && b < B; b++)
        free(slots[b].seq);
    free(slots);
    free(logits);
    free(step_ids);
    free(rows);
    free(slot_of);
    return st;
}
