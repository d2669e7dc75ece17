/*
 * eval.c - running systems (base zero-shot / k-shot, runs, adapters) over a dataset split:
 * per-row loss over response tokens, greedy generation with the KV cache, the metrics of
 * metrics.h, the forgetting check, and the results and samples written to the store.
 * Every check on the input happens before the first model is loaded.
 */
#include "eval/eval_impl.h"

#include "model/forward.h"
#include "model/generate.h"
#include "tokenizer/tokenizer.h"
#include "train/batch.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_eval_opts_default(lt_eval_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->device = "auto";
    o->split = "test";
    o->max_new_tokens = 64;
    o->batch = 8;
    o->em_flags = LT_EM_SPACE;
    o->seed = 1234;
}

static void erows_free(erows *v)
{
    for (int64_t i = 0; i < v->n; i++) {
        free(v->r[i].json);
        free(v->r[i].msgs);
        free(v->r[i].choices);
        cJSON_Delete(v->r[i].doc);
    }
    free(v->r);
    memset(v, 0, sizeof(*v));
}

/* Parses a sample into a row; false with err when it has no reference answer. */
static bool row_parse(erow *w, char *err, size_t errlen)
{
    cJSON *turns = cJSON_GetObjectItem(w->doc, "turns");
    cJSON *sys = cJSON_GetObjectItem(w->doc, "system");
    int n = cJSON_GetArraySize(turns), last = -1;
    for (int i = 0; i < n; i++) {
        cJSON *role = cJSON_GetObjectItem(cJSON_GetArrayItem(turns, i), "role");
        if (cJSON_IsString(role) && !strcmp(role->valuestring, "assistant"))
            last = i;
    }
    if (last < 0) {
        snprintf(err, errlen, "no assistant turn to use as the reference answer");
        return false;
    }
    if (!(w->msgs = calloc((size_t)n + 2, sizeof(lt_chat_msg))))
        return false;
    if (cJSON_IsString(sys) && sys->valuestring[0])
        w->msgs[w->n_msgs++] = (lt_chat_msg){"system", sys->valuestring};
    for (int i = 0; i <= last; i++) {
        cJSON *t = cJSON_GetArrayItem(turns, i);
        cJSON *role = cJSON_GetObjectItem(t, "role"), *c = cJSON_GetObjectItem(t, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(c)) {
            snprintf(err, errlen, "turn %d has no role or content", i);
            return false;
        }
        if (i == last)
            w->reference = c->valuestring;
        else {
            w->msgs[w->n_msgs++] = (lt_chat_msg){role->valuestring, c->valuestring};
            if (!strcmp(role->valuestring, "user"))
                w->prompt = c->valuestring;
        }
    }
    if (!w->prompt)
        w->prompt = "";
    /* multiple choice: the choices and the correct one's index, as the importer stored them */
    cJSON *ch = cJSON_GetObjectItem(w->doc, "choices"), *ans = cJSON_GetObjectItem(w->doc, "answer");
    int nc = cJSON_GetArraySize(ch);
    if (cJSON_IsArray(ch) && cJSON_IsNumber(ans) && nc >= 2) {
        if (ans->valueint < 0 || ans->valueint >= nc) {
            snprintf(err, errlen, "answer %d is not one of the %d choices", ans->valueint, nc);
            return false;
        }
        if (!(w->choices = calloc((size_t)nc, sizeof(char *))))
            return false;
        for (int i = 0; i < nc; i++) {
            cJSON *x = cJSON_GetArrayItem(ch, i);
            if (!cJSON_IsString(x)) {
                snprintf(err, errlen, "choice %d is not a string", i + 1);
                return false;
            }
            w->choices[i] = x->valuestring;
        }
        w->n_choices = nc;
        w->gold = ans->valueint;
    }
    return true;
}

/* Reads up to max rows of a split. require_ref: every row must have a reference answer. */
static lt_eval_status rows_load(lt_store *st, int64_t version_id, const char *split,
                                int64_t max, bool require_ref, erows *out, char *err,
                                size_t errlen)
{
    lt_store_iter *it = NULL;
    lt_store_sample s;
    lt_eval_status rc = LT_EVAL_OK;
    if (lt_store_samples_iter(st, version_id, split, &it) != LT_STORE_OK) {
        snprintf(err, errlen, "reading samples: %s", lt_store_errmsg(st));
        return LT_EVAL_STORE;
    }
    while ((max <= 0 || out->n < max) && lt_store_samples_next(it, &s) == LT_STORE_OK) {
        if (out->n == out->cap) {
            int64_t cap = out->cap ? out->cap * 2 : 64;
            erow *g = realloc(out->r, (size_t)cap * sizeof(erow));
            if (!g) {
                rc = LT_EVAL_NOMEM;
                break;
            }
            out->r = g;
            out->cap = cap;
        }
        erow *w = &out->r[out->n++];
        memset(w, 0, sizeof(*w));
        w->sample_id = s.id;
        if (!(w->json = strdup(s.data)) || !(w->doc = cJSON_Parse(w->json))) {
            rc = LT_EVAL_NOMEM;
            break;
        }
        char e[256];
        if (require_ref && !row_parse(w, e, sizeof(e))) {
            snprintf(err, errlen, "row %lld: %s; generation metrics need references",
                     (long long)s.row, e);
            rc = LT_EVAL_DATA;
            break;
        }
    }
    lt_store_iter_free(it);
    if (rc == LT_EVAL_NOMEM)
        snprintf(err, errlen, "out of memory reading samples");
    return rc;
}

/* Sum of NLL over the labelled positions of one row of logits [T, V] (labels shifted, -100 =
 * none), in double as log-sum-exp. */
static void row_nll(const float *logits, const int32_t *labels, int64_t T, int64_t V,
                    double *nll, int64_t *n_tok)
{
    for (int64_t t = 0; t < T; t++) {
        if (labels[t] < 0)
            continue;
        const float *x = logits + t * V;
        double mx = x[0], s = 0;
        for (int64_t v = 1; v < V; v++)
            mx = x[v] > mx ? x[v] : mx;
        for (int64_t v = 0; v < V; v++)
            s += exp((double)x[v] - mx);
        *nll += mx + log(s) - (double)x[labels[t]];
        (*n_tok)++;
    }
}

static int64_t ex_len(const lt_examples *ex, int64_t i) { return ex->start[i + 1] - ex->start[i]; }

/* (length, index) pairs sorted longest first, then by index. */
static int cmp_len_desc(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] > y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Loss over the examples' labelled tokens; per-row sums in row_nll/row_n when non-NULL.
 * Examples run `batch` at a time, right-padded to the longest of the group (sorted by length
 * so groups are even): under the causal mask padding after an example never reaches it, so
 * each example's loss is what it is alone. The group is shrunk so that its tokens times the
 * vocabulary stay under 64 Mi; the output layer runs lt_logits_chunk_rows rows at a time
 * (at most LT_LOGITS_CHUNK_BYTES of logits, on the device and in the host copy). */
static lt_eval_status examples_loss(lt_model *m, const lt_examples *ex, int batch,
                                    const int64_t *row_ex, int64_t n_rows, double *out_nll,
                                    int64_t *out_n, double *nll, int64_t *n_tok, char *err,
                                    size_t errlen)
{
    const lt_model_config *mc = lt_model_get_config(m);
    const int64_t V = mc->vocab;
    int64_t max_t = 1;
    *nll = 0;
    *n_tok = 0;
    if (ex->n == 0)
        return LT_EVAL_OK;
    for (int64_t i = 0; i < ex->n; i++)
        max_t = ex_len(ex, i) > max_t ? ex_len(ex, i) : max_t;
    int64_t B = batch > 0 ? batch : 1;
    while (B > 1 && B * max_t * V > ((int64_t)64 << 20))
        B--;
    B = B < ex->n ? B : ex->n;
    const int64_t chunk = lt_logits_chunk_rows(V, B * max_t);
    lt_forward_opts fo = {.max_batch = B, .max_seq = max_t, .logits_chunk = chunk};
    lt_forward *fw = NULL;
    char e[512];
    if (lt_forward_new(m, &fo, &fw, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "forward workspace: %s", e);
        return LT_EVAL_MODEL;
    }
    float *logits = malloc((size_t)(chunk * V) * sizeof(float));
    int32_t *ids = malloc((size_t)(B * max_t) * sizeof(int32_t));
    int64_t *order = malloc((size_t)ex->n * 2 * sizeof(int64_t));
    double *ex_nll = calloc((size_t)ex->n, sizeof(double));
    int64_t *ex_n = calloc((size_t)ex->n, sizeof(int64_t));
    lt_eval_status rc = logits && ids && order && ex_nll && ex_n ? LT_EVAL_OK : LT_EVAL_NOMEM;
    if (rc == LT_EVAL_OK) {
        for (int64_t i = 0; i < ex->n; i++) {
            order[2 * i] = ex_len(ex, i);
            order[2 * i + 1] = i;
        }
        qsort(order, (size_t)ex->n, 2 * sizeof(int64_t), cmp_len_desc);
        for (int64_t i = 0; i < ex->n; i++)
            order[i] = order[2 * i + 1];
    }
    for (int64_t g = 0; rc == LT_EVAL_OK && g < ex->n; g += B) {
        int64_t nb = ex->n - g < B ? ex->n - g : B, T = ex_len(ex, order[g]);
        for (int64_t b = 0; b < nb; b++) {
            int64_t i = order[g + b], L = ex_len(ex, i);
            memcpy(ids + b * T, ex->ids + ex->start[i], (size_t)L * sizeof(int32_t));
            for (int64_t t = L; t < T; t++)
                ids[b * T + t] = 0; /* padding after the example: never attended to */
        }
        lt_tensor *lg = NULL;
        if (lt_forward_run(fw, ids, nb, T, NULL, &lg, e, sizeof(e)) != LT_MODEL_OK) {
            snprintf(err, errlen, "forward pass: %s", e);
            rc = LT_EVAL_MODEL;
            break;
        }
        /* rows r = b * T + t a chunk at a time; each example's positions stay in order */
        for (int64_t r0 = 0; rc == LT_EVAL_OK && r0 < nb * T; r0 += chunk) {
            int64_t k = nb * T - r0 < chunk ? nb * T - r0 : chunk;
            if (lt_forward_logits(fw, r0, k, &lg, e, sizeof(e)) != LT_MODEL_OK ||
                lt_tensor_download_f32(lg, logits, k * V) != LT_OK) {
                snprintf(err, errlen, "output layer: %s", e);
                rc = LT_EVAL_MODEL;
                break;
            }
            for (int64_t r = r0; r < r0 + k;) {
                int64_t b = r / T, t = r % T, i = order[g + b], L = ex_len(ex, i);
                int64_t end = (b + 1) * T < r0 + k ? (b + 1) * T : r0 + k; /* this row's part */
                if (t < L)
                    row_nll(logits + (r - r0) * V, ex->labels + ex->start[i] + t,
                            (end - r < L - t ? end - r : L - t), V, &ex_nll[i], &ex_n[i]);
                r = end;
            }
        }
    }
    for (int64_t i = 0; rc == LT_EVAL_OK && i < ex->n; i++) { /* summed in example order */
        *nll += ex_nll[i];
        *n_tok += ex_n[i];
    }
    for (int64_t r = 0; rc == LT_EVAL_OK && row_ex && r < n_rows; r++)
        if (row_ex[r] >= 0) {
            out_nll[r] = ex_nll[row_ex[r]];
            out_n[r] = ex_n[row_ex[r]];
        }
    free(logits);
    free(ids);
    free(order);
    free(ex_nll);
    free(ex_n);
    lt_forward_free(fw);
    return rc;
}

/* The k-shot examples: drawn from the train split with seed. */
static lt_eval_status shots_load(lt_store *st, int64_t version_id, uint64_t seed, eshots *s,
                                 char *err, size_t errlen)
{
    lt_eval_status rc = rows_load(st, version_id, "train", 4096, false, &s->rows, err, errlen);
    if (rc != LT_EVAL_OK)
        return rc;
    int64_t n = 0;
    for (int64_t i = 0; i < s->rows.n; i++) {
        char e[64];
        erow *w = &s->rows.r[i];
        if (row_parse(w, e, sizeof(e)) && w->prompt[0])
            s->rows.r[n++] = *w;
        else {
            free(w->json);
            free(w->msgs);
            free(w->choices);
            cJSON_Delete(w->doc);
        }
    }
    s->rows.n = n;
    if (!(s->order = malloc((size_t)(n + 1) * sizeof(int64_t))))
        return LT_EVAL_NOMEM;
    for (int64_t i = 0; i < n; i++)
        s->order[i] = i;
    uint64_t state = seed;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(lt_rng_next(&state) % (uint64_t)(i + 1));
        int64_t t = s->order[i];
        s->order[i] = s->order[j];
        s->order[j] = t;
    }
    return LT_EVAL_OK;
}

lt_eval_status eval_prompt_msgs(const lt_tokenizer *tok, lt_chat_family fam, const erow *w,
                                const eshots *sh, int k, int64_t ctx, int64_t reserve,
                                lt_chat_msg **msgs, int *n_out, int *used, lt_tok_ids *enc,
                                char *err, size_t errlen)
{
    if (k > (int)sh->rows.n)
        k = (int)sh->rows.n;
    lt_chat_msg *m = calloc((size_t)(w->n_msgs + 2 * k + 1), sizeof(lt_chat_msg));
    if (!m)
        return LT_EVAL_NOMEM;
    for (; k >= 0; k--) {
        int n = 0;
        int first = w->n_msgs > 0 && !strcmp(w->msgs[0].role, "system");
        if (first)
            m[n++] = w->msgs[0];
        for (int i = 0; i < k; i++) {
            const erow *s = &sh->rows.r[sh->order[i]];
            m[n++] = (lt_chat_msg){"user", s->prompt};
            m[n++] = (lt_chat_msg){"assistant", s->reference};
        }
        for (int i = first; i < w->n_msgs; i++)
            m[n++] = w->msgs[i];
        enc->n = 0;
        char e[LT_TOK_ERR_LEN];
        lt_tok_status ts = lt_tokenizer_encode_chat(tok, fam, m, (size_t)n, true, enc, e,
                                                    sizeof(e));
        if (ts != LT_TOK_OK) {
            snprintf(err, errlen, "encoding a prompt: %s", e);
            free(m);
            return LT_EVAL_DATA;
        }
        *n_out = n;
        if ((int64_t)enc->n + reserve <= ctx || k == 0)
            break;
    }
    *used = k;
    *msgs = m;
    return LT_EVAL_OK;
}

void eval_add_metric(cJSON *m, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(m, name, v);
    else
        cJSON_AddNullToObject(m, name);
}

/* Generation progress of lt_generate_batch, passed on per row. */
typedef struct gen_progress {
    const lt_eval_opts *o;
    const char *label;
    int64_t total;
} gen_progress;

static bool on_generated(void *ctx, int done)
{
    gen_progress *g = ctx;
    if (g->o->progress)
        g->o->progress(g->o->ctx, g->label, done, g->total);
    return !(g->o->interrupt && *g->o->interrupt);
}

/* Generation and scores for every row of one system; fills metrics and stores samples. The
 * prompts are encoded first, then generated o->batch at a time (lt_generate_batch). */
static lt_eval_status run_rows(ectx *c, const lt_eval_system *sys, const char *label,
                               lt_model *m, int64_t eval_id, const double *row_nll,
                               const int64_t *row_n, cJSON *metrics, char *err, size_t errlen)
{
    const lt_eval_opts *o = c->o;
    const lt_model_config *mc = lt_model_get_config(m);
    int64_t n = c->rows.n;
    char **outs = calloc((size_t)n + 1, sizeof(char *));
    int32_t **gen = calloc((size_t)n + 1, sizeof(int32_t *));
    int32_t **pids = calloc((size_t)n + 1, sizeof(int32_t *));
    int *n_p = calloc((size_t)n + 1, sizeof(int)), *n_gen = calloc((size_t)n + 1, sizeof(int));
    int *budget = calloc((size_t)n + 1, sizeof(int));
    const int32_t **bp = calloc((size_t)n + 1, sizeof(int32_t *));
    int32_t **bo = calloc((size_t)n + 1, sizeof(int32_t *));
    int *bn = calloc((size_t)n + 1, sizeof(int)), *bng = calloc((size_t)n + 1, sizeof(int));
    lt_tok_ids enc = {0};
    lt_bleu_stats bs = {0};
    double em_sum = 0, rouge_sum = 0, json_ok = 0;
    int shots_used = -1, nb = 0;
    lt_eval_status rc = (outs && gen && pids && n_p && n_gen && budget && bp && bo && bn && bng)
                            ? LT_EVAL_OK
                            : LT_EVAL_NOMEM;
    for (int64_t i = 0; i < n && rc == LT_EVAL_OK; i++) {
        const erow *w = &c->rows.r[i];
        int used = 0, nm = 0;
        lt_chat_msg *msgs = NULL;
        rc = eval_prompt_msgs(c->tok, c->fam, w, &c->shots, sys->k_shot, mc->max_pos,
                              o->max_new_tokens, &msgs, &nm, &used, &enc, err, errlen);
        free(msgs);
        if (rc != LT_EVAL_OK)
            break;
        shots_used = shots_used < 0 || used < shots_used ? used : shots_used;
        int left = (int)(mc->max_pos - (int64_t)enc.n);
        budget[i] = left < o->max_new_tokens ? left : o->max_new_tokens;
        n_p[i] = (int)enc.n;
        if (!(pids[i] = malloc((enc.n + 1) * sizeof(int32_t))) ||
            !(gen[i] = malloc(((size_t)o->max_new_tokens + 2) * sizeof(int32_t)))) {
            rc = LT_EVAL_NOMEM;
            break;
        }
        memcpy(pids[i], enc.ids, enc.n * sizeof(int32_t));
        if (budget[i] > 0) { /* rows whose prompt fills the context generate nothing */
            bp[nb] = pids[i];
            bn[nb] = n_p[i];
            bo[nb++] = gen[i];
        }
    }
    if (rc == LT_EVAL_OK && nb > 0) {
        lt_generate_opts go = {0};
        lt_sampler_defaults(&go.sampler);
        go.max_new_tokens = o->max_new_tokens;
        go.stop_at_eos = true;
        go.stop_ids = c->stop_ids;
        go.n_stop_ids = c->n_stop;
        gen_progress gp = {o, label, n};
        char e[1024];
        if (lt_generate_batch(m, bp, bn, nb, o->batch > 0 ? o->batch : 1, &go, bo, bng,
                              on_generated, &gp, e, sizeof(e)) != LT_MODEL_OK) {
            snprintf(err, errlen, "generating: %s", e);
            rc = LT_EVAL_MODEL;
        }
        for (int64_t i = 0, k = 0; i < n && rc == LT_EVAL_OK; i++)
            if (budget[i] > 0)
                n_gen[i] = bng[k++];
    }
    if (rc == LT_EVAL_OK && o->interrupt && *o->interrupt)
        rc = LT_EVAL_INTERRUPTED;
    if (rc == LT_EVAL_OK && o->progress && nb < n)
        o->progress(o->ctx, label, n, n);
    for (int64_t i = 0; i < n && rc == LT_EVAL_OK; i++) {
        const erow *w = &c->rows.r[i];
        char e[1024];
        size_t tn = 0;
        if (lt_tokenizer_decode(c->tok, gen[i], (size_t)n_gen[i], LT_TOK_SKIP_SPECIAL, &outs[i],
                                &tn, e, sizeof(e)) != LT_TOK_OK) {
            snprintf(err, errlen, "decoding row %lld: %s", (long long)i, e);
            rc = LT_EVAL_MODEL;
            break;
        }
        int em = lt_exact_match(outs[i], w->reference, o->em_flags);
        lt_rouge rg;
        lt_bleu_stats one = {0};
        if (em < 0 || lt_rouge_l(outs[i], w->reference, &rg) != LT_EVAL_OK ||
            lt_bleu_add(&bs, outs[i], &w->reference, 1) != LT_EVAL_OK ||
            lt_bleu_add(&one, outs[i], &w->reference, 1) != LT_EVAL_OK) {
            rc = LT_EVAL_NOMEM;
            break;
        }
        em_sum += em;
        rouge_sum += rg.f;
        bool jv = c->json_like && lt_json_valid(outs[i]);
        json_ok += jv;
        cJSON *sc = cJSON_CreateObject();
        cJSON_AddNumberToObject(sc, "exact_match", em);
        cJSON_AddNumberToObject(sc, "rougeL", rg.f);
        cJSON_AddNumberToObject(sc, "bleu", lt_bleu_score(&one, true, NULL, NULL));
        if (row_n && row_n[i] > 0)
            cJSON_AddNumberToObject(sc, "loss", row_nll[i] / (double)row_n[i]);
        if (c->json_like)
            cJSON_AddBoolToObject(sc, "json_valid", jv);
        if (budget[i] <= 0)
            cJSON_AddBoolToObject(sc, "prompt_too_long", true);
        char *scs = cJSON_PrintUnformatted(sc);
        cJSON_Delete(sc);
        lt_store_eval_sample es = {w->sample_id, w->prompt, w->reference, outs[i], scs};
        if (!scs || lt_store_eval_sample_add(c->st, eval_id, &es) != LT_STORE_OK) {
            snprintf(err, errlen, "storing a sample: %s", lt_store_errmsg(c->st));
            rc = LT_EVAL_STORE;
        }
        free(scs);
    }
    if (rc == LT_EVAL_OK && n > 0) {
        eval_add_metric(metrics, "exact_match", em_sum / (double)n);
        eval_add_metric(metrics, "rougeL", rouge_sum / (double)n);
        double p[4], bp;
        eval_add_metric(metrics, "bleu", lt_bleu_score(&bs, false, p, &bp));
        eval_add_metric(metrics, "bleu_bp", bp);
        if (c->json_like)
            eval_add_metric(metrics, "json_valid", json_ok / (double)n);
        if (sys->k_shot > 0)
            cJSON_AddNumberToObject(metrics, "shots_used", shots_used);
        if (c->classif) {
            const char **refs = malloc((size_t)n * sizeof(char *));
            lt_classif cl;
            if (refs) {
                for (int64_t i = 0; i < n; i++)
                    refs[i] = c->rows.r[i].reference;
                if (lt_classif_compute((const char *const *)outs, refs, n, o->em_flags, &cl) ==
                    LT_EVAL_OK) {
                    eval_add_metric(metrics, "accuracy", cl.accuracy);
                    eval_add_metric(metrics, "macro_f1", cl.macro_f1);
                    cJSON *cls = cJSON_AddArrayToObject(metrics, "classes");
                    cJSON *cm = cJSON_AddArrayToObject(metrics, "confusion");
                    for (int k = 0; k < cl.n_labels; k++) {
                        cJSON *x = cJSON_CreateObject();
                        cJSON_AddStringToObject(x, "label", cl.labels[k]);
                        cJSON_AddNumberToObject(x, "precision", cl.precision[k]);
                        cJSON_AddNumberToObject(x, "recall", cl.recall[k]);
                        cJSON_AddNumberToObject(x, "f1", cl.f1[k]);
                        cJSON_AddNumberToObject(x, "support", (double)cl.support[k]);
                        cJSON_AddItemToArray(cls, x);
                        cJSON *row = cJSON_CreateArray();
                        for (int j = 0; j <= cl.n_labels; j++)
                            cJSON_AddItemToArray(
                                row, cJSON_CreateNumber(
                                         (double)cl.confusion[k * (cl.n_labels + 1) + j]));
                        cJSON_AddItemToArray(cm, row);
                    }
                    lt_classif_free(&cl);
                }
                free(refs);
            }
        }
    }
    for (int64_t i = 0; i < n; i++) {
        if (outs)
            free(outs[i]);
        if (gen)
            free(gen[i]);
        if (pids)
            free(pids[i]);
    }
    free(outs);
    free(gen);
    free(pids);
    free(n_p);
    free(n_gen);
    free(budget);
    free(bp);
    free(bo);
    free(bn);
    free(bng);
    lt_tok_ids_free(&enc);
    return rc;
}

/* Encodes rows as training does (chat template, assistant labels; raw text for general). */
static lt_eval_status rows_examples(ectx *c, const erows *rows, bool pretrain, lt_examples *ex,
                                    int64_t *row_ex, char *err, size_t errlen)
{
    lt_encode_opts eo = c->eo;
    eo.pretrain = pretrain;
    for (int64_t i = 0; i < rows->n; i++) {
        int64_t before = ex->n;
        char e[512];
        if (!lt_examples_add(ex, c->tok, &eo, rows->r[i].json, e, sizeof(e))) {
            snprintf(err, errlen, "encoding row %lld: %s", (long long)i, e);
            return LT_EVAL_DATA;
        }
        if (row_ex)
            row_ex[i] = ex->n > before ? ex->n - 1 : -1;
    }
    return LT_EVAL_OK;
}

static void system_label(const lt_eval_system *s, char *buf, size_t n)
{
    if (s->label)
        snprintf(buf, n, "%s", s->label);
    else if (s->run_id > 0)
        snprintf(buf, n, "run %lld", (long long)s->run_id);
    else if (s->adapter)
        snprintf(buf, n, "adapter %s", s->adapter);
    else if (s->k_shot > 0)
        snprintf(buf, n, "base %d-shot", s->k_shot);
    else
        snprintf(buf, n, "base zero-shot");
}

/* Evaluates one system and stores it. */
static lt_eval_status eval_system(ectx *c, const lt_eval_system *sys, int64_t *eval_id,
                                  char *err, size_t errlen)
{
    const lt_eval_opts *o = c->o;
    eval_loaded l;
    char label[512], emn[64];
    lt_examples ex = {0}, gx = {0};
    int64_t n = c->rows.n, *row_ex = calloc((size_t)n + 1, sizeof(int64_t)),
            *row_n = calloc((size_t)n + 1, sizeof(int64_t));
    double *row_nll = calloc((size_t)n + 1, sizeof(double));
    cJSON *res = cJSON_CreateObject(), *metrics = cJSON_CreateObject();
    char *js = NULL;
    system_label(sys, label, sizeof(label));
    lt_eval_status rc = eval_system_load(c->st, c->dev, c->dir, sys, &l, err, errlen);
    if (rc != LT_EVAL_OK)
        goto out;
    if (!row_ex || !row_n || !row_nll || !res || !metrics) {
        rc = LT_EVAL_NOMEM;
        goto unload;
    }
    lt_store_eval e = {0, sys->run_id, c->ver.version_id, o->split, "{}", 0};
    if (lt_store_eval_add(c->st, &e, eval_id) != LT_STORE_OK) {
        snprintf(err, errlen, "storing the eval: %s", lt_store_errmsg(c->st));
        rc = LT_EVAL_STORE;
        goto unload;
    }
    /* loss over response tokens: the zero-shot prompt, as training saw the rows */
    double nll = 0;
    int64_t nt = 0;
    if ((rc = rows_examples(c, &c->rows, false, &ex, row_ex, err, errlen)) != LT_EVAL_OK ||
        (rc = examples_loss(l.model, &ex, o->batch, row_ex, n, row_nll, row_n, &nll, &nt,
                            err, errlen)) != LT_EVAL_OK)
        goto unload;
    eval_add_metric(metrics, "loss", nt ? nll / (double)nt : NAN);
    eval_add_metric(metrics, "ppl", lt_perplexity(nll, nt));
    cJSON_AddNumberToObject(metrics, "loss_tokens", (double)nt);
    if (c->mc)
        rc = eval_mc_rows(c, sys, label, l.model, *eval_id, row_nll, row_n, metrics, err, errlen);
    else
        rc = run_rows(c, sys, label, l.model, *eval_id, row_nll, row_n, metrics, err, errlen);
    if (rc != LT_EVAL_OK)
        goto unload;
    if (c->general.n > 0) {
        double gn = 0;
        int64_t gt = 0;
        if ((rc = rows_examples(c, &c->general, true, &gx, NULL, err, errlen)) != LT_EVAL_OK ||
            (rc = examples_loss(l.model, &gx, o->batch, NULL, 0, NULL, NULL, &gn, &gt, err,
                                errlen)) != LT_EVAL_OK)
            goto unload;
        double ppl = lt_perplexity(gn, gt);
        cJSON *f = cJSON_AddObjectToObject(res, "forgetting");
        cJSON_AddStringToObject(f, "dataset", o->general);
        eval_add_metric(f, "ppl", ppl);
        if (isnan(c->base_general_ppl))
            c->base_general_ppl = ppl;
        eval_add_metric(f, "base_ppl", c->base_general_ppl);
        eval_add_metric(f, "change", ppl - c->base_general_ppl);
        eval_add_metric(f, "change_pct", 100.0 * (ppl - c->base_general_ppl) / c->base_general_ppl);
    }
    cJSON_AddStringToObject(res, "system", label);
    cJSON_AddStringToObject(res, "model", c->dir);
    char hash[65] = "";
    if (eval_model_hash(c->dir, hash))
        cJSON_AddStringToObject(res, "model_hash", hash);
    if (sys->adapter)
        cJSON_AddStringToObject(res, "adapter", sys->adapter);
    if (sys->run_id > 0)
        cJSON_AddNumberToObject(res, "run", (double)sys->run_id);
    if (l.detail[0])
        cJSON_AddStringToObject(res, "detail", l.detail);
    cJSON_AddNumberToObject(res, "k_shot", sys->k_shot);
    cJSON_AddNumberToObject(res, "seed", (double)o->seed);
    cJSON_AddStringToObject(res, "dataset", c->ds_name);
    cJSON_AddNumberToObject(res, "dataset_version", c->ver.version);
    cJSON_AddNumberToObject(res, "dataset_version_id", (double)c->ver.version_id);
    cJSON_AddStringToObject(res, "split", o->split);
    cJSON_AddNumberToObject(res, "n_rows", (double)n);
    cJSON_AddStringToObject(res, "chat_template", lt_chat_family_name(c->fam));
    if (c->mc) {
        cJSON *sc = cJSON_AddObjectToObject(res, "scoring");
        cJSON_AddStringToObject(sc, "method", "loglikelihood");
        cJSON_AddStringToObject(sc, "normalisation", "characters");
        cJSON_AddBoolToObject(sc, "kv_cache", true);
    } else {
        cJSON *dec = cJSON_AddObjectToObject(res, "decoding");
        cJSON_AddStringToObject(dec, "strategy", "greedy");
        cJSON_AddNumberToObject(dec, "max_new_tokens", o->max_new_tokens);
        cJSON_AddBoolToObject(dec, "stop_at_eos", true);
        cJSON_AddBoolToObject(dec, "kv_cache", true);
        cJSON_AddNumberToObject(dec, "batch", o->batch);
    }
    lt_em_flags_name(o->em_flags, emn, sizeof(emn));
    cJSON_AddStringToObject(res, "em_normalize", emn);
    cJSON_AddItemToObject(res, "metrics", metrics);
    metrics = NULL;
    if (!(js = cJSON_PrintUnformatted(res)) ||
        lt_store_eval_set_results(c->st, *eval_id, js) != LT_STORE_OK) {
        snprintf(err, errlen, "storing results: %s", lt_store_errmsg(c->st));
        rc = LT_EVAL_STORE;
    }
unload:
    eval_system_unload(&l);
out:
    free(js);
    cJSON_Delete(res);
    cJSON_Delete(metrics);
    lt_examples_free(&ex);
    lt_examples_free(&gx);
    free(row_ex);
    free(row_n);
    free(row_nll);
    return rc;
}

/* Finds the dataset version and checks the split and the rows before any model work. */
static lt_eval_status prepare(ectx *c, char *err, size_t errlen)
{
    const lt_eval_opts *o = c->o;
    if (lt_store_version_get(c->st, o->dataset, o->version, &c->ver) != LT_STORE_OK) {
        snprintf(err, errlen, "no dataset named '%s'%s", o->dataset,
                 o->version ? " at that version" : "");
        return LT_EVAL_NOT_FOUND;
    }
    snprintf(c->ds_name, sizeof(c->ds_name), "%s", c->ver.name);
    lt_eval_status rc = rows_load(c->st, c->ver.version_id, o->split, o->max_rows, true,
                                  &c->rows, err, errlen);
    if (rc != LT_EVAL_OK)
        return rc;
    if (c->rows.n == 0) {
        snprintf(err, errlen, "dataset '%s' has no split '%s' (split it with lathe data split)",
                 c->ds_name, o->split);
        return LT_EVAL_NOT_FOUND;
    }
    bool need_shots = false;
    for (int i = 0; i < o->n_systems; i++)
        need_shots |= o->systems[i].k_shot > 0;
    if (need_shots) {
        if ((rc = shots_load(c->st, c->ver.version_id, o->seed, &c->shots, err, errlen)))
            return rc;
        if (c->shots.rows.n == 0) {
            snprintf(err, errlen, "k-shot baselines need a train split with user/assistant rows "
                                  "in '%s'", c->ds_name);
            return LT_EVAL_DATA;
        }
    }
    if (o->general) {
        lt_store_version gv;
        if (lt_store_version_get(c->st, o->general, 0, &gv) != LT_STORE_OK) {
            snprintf(err, errlen, "--general: no dataset named '%s'", o->general);
            return LT_EVAL_NOT_FOUND;
        }
        rc = rows_load(c->st, gv.version_id, NULL, o->general_rows ? o->general_rows : 64,
                       false, &c->general, err, errlen);
        if (rc != LT_EVAL_OK)
            return rc;
    }
    c->mc = true;
    for (int64_t i = 0; i < c->rows.n; i++)
        c->mc = c->mc && c->rows.r[i].choices;
    const char **refs = malloc((size_t)c->rows.n * sizeof(char *));
    if (!refs)
        return LT_EVAL_NOMEM;
    c->json_like = !c->mc;
    for (int64_t i = 0; i < c->rows.n; i++) {
        refs[i] = c->rows.r[i].reference;
        const char *p = refs[i] + strspn(refs[i], " \t\r\n");
        c->json_like = c->json_like && (*p == '{' || *p == '[') && lt_json_valid(refs[i]);
    }
    c->classif = !c->mc && lt_classif_detect(refs, c->rows.n, o->em_flags, 20);
    free(refs);
    for (int i = 0; i < o->n_systems; i++)
        if ((rc = eval_system_check(c->st, c->dir, &o->systems[i], err, errlen)))
            return rc;
    return LT_EVAL_OK;
}

lt_eval_status lt_eval_run(lt_store *st, const lt_eval_opts *o, int64_t *eval_ids, char *err,
                           size_t errlen)
{
    ectx c;
    memset(&c, 0, sizeof(c));
    c.st = st;
    c.o = o;
    c.base_general_ppl = NAN;
    char dir[4096] = "", e[1024];
    lt_model_config mc;
    if (!o->dataset || o->n_systems < 1 || o->n_systems > LT_EVAL_MAX_SYSTEMS ||
        o->max_new_tokens < 1 || o->batch < 1) {
        snprintf(err, errlen, "need a dataset, 1 to %d systems, max_new_tokens >= 1 and a batch "
                              ">= 1",
                 LT_EVAL_MAX_SYSTEMS);
        return LT_EVAL_USAGE;
    }
    lt_eval_status rc = LT_EVAL_OK;
    if (o->model)
        snprintf(dir, sizeof(dir), "%s", o->model);
    for (int i = 0; i < o->n_systems && !dir[0] && rc == LT_EVAL_OK; i++)
        if (o->systems[i].run_id > 0)
            rc = eval_run_model(st, o->systems[i].run_id, dir, sizeof(dir), err, errlen);
    if (rc != LT_EVAL_OK)
        return rc;
    if (!dir[0]) {
        snprintf(err, errlen, "need --model DIR (or --run RUN to take the run's model)");
        return LT_EVAL_USAGE;
    }
    c.dir = dir;
    if (lt_model_config_load(dir, &mc, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "%s", e);
        return LT_EVAL_MODEL;
    }
    if (lt_tokenizer_load_dir(dir, &c.tok, e, sizeof(e)) != LT_TOK_OK) {
        snprintf(err, errlen, "the model folder needs a tokenizer: %s", e);
        return LT_EVAL_MODEL;
    }
    lt_chat_family force = o->chat_template ? lt_chat_family_parse(o->chat_template)
                                            : LT_CHAT_NONE;
    if (lt_tokenizer_chat_family(c.tok, force, &c.fam, e, sizeof(e)) != LT_TOK_OK) {
        snprintf(err, errlen, "%s", e);
        rc = LT_EVAL_MODEL;
        goto out;
    }
    c.eo.family = c.fam;
    c.eo.seq_len = mc.max_pos < 2048 ? mc.max_pos : 2048;
    c.eo.eos_id = lt_tokenizer_eos_id(c.tok);
    static const char *ends[] = {"<|im_end|>", "<|eot_id|>", "</s>", "<|endoftext|>"};
    for (int i = 0; i < 4; i++) {
        int id = lt_tokenizer_piece_id(c.tok, ends[i]);
        if (id >= 0)
            c.stop_ids[c.n_stop++] = id;
    }
    if ((rc = prepare(&c, err, errlen)) != LT_EVAL_OK)
        goto out;
    if (!(c.dev = lt_device_open(o->device ? o->device : "auto", o->threads, e, sizeof(e)))) {
        snprintf(err, errlen, "device %s: %s", o->device, e);
        rc = LT_EVAL_MODEL;
        goto out;
    }
    for (int i = 0; i < o->n_systems && rc == LT_EVAL_OK; i++)
        rc = eval_system(&c, &o->systems[i], &eval_ids[i], err, errlen);
out:
    erows_free(&c.rows);
    erows_free(&c.general);
    erows_free(&c.shots.rows);
    free(c.shots.order);
    lt_device_close(c.dev);
    lt_tokenizer_free(c.tok);
    return rc;
}
