/*
 * eval_mc.c - multiple-choice evaluation by log-likelihood, as lm-evaluation-harness scores
 * its multiple_choice tasks: each choice is a continuation of the prompt, its score the sum
 * of its tokens' log-probabilities; acc takes the choice with the highest sum, acc_norm the
 * highest sum divided by the choice's length in characters (the harness's
 * process_results: completion_len = len(choice) for each choice string, pred_norm =
 * argmax(lls / completion_len); ties go to the first choice, as np.argmax). metrics.c has
 * the rule (lt_mc_score).
 *
 * The prompt is the row's user turn (the question with its lettered choices, as the
 * importer rendered it) with the system prompt and any k-shot examples before it, rendered
 * with the model's chat template and its generation prompt, exactly as generation renders
 * prompts for the other datasets; the continuation is the choice's text as the assistant's
 * reply, without the template's end-of-turn. The prompt runs through the model once into a
 * KV cache; each choice continues it and the cache is cut back to the prompt.
 * Generation metrics are not computed for multiple-choice data.
 */
#include "eval/eval_impl.h"

#include "model/forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest run of continuation tokens in one forward (longer choices take several). */
#define MC_CHUNK 64

struct eval_mc_scorer {
    lt_model *m;
    int64_t ctx;      /* the model's context */
    lt_forward *pre;  /* [1, ctx], last position's logits only */
    lt_forward *cont; /* [1, MC_CHUNK], every position's logits */
    lt_kv_cache *cache;
    float *logits; /* [MC_CHUNK, V] */
};

lt_eval_status eval_mc_scorer_new(lt_model *m, eval_mc_scorer **out, char *err, size_t errlen)
{
    const lt_model_config *mc = lt_model_get_config(m);
    eval_mc_scorer *s = calloc(1, sizeof(*s));
    char e[512];
    *out = NULL;
    if (!s)
        return LT_EVAL_NOMEM;
    s->m = m;
    s->ctx = mc->max_pos; /* a sliding window is masked in attention, not a cap */
    lt_forward_opts fp = {.max_batch = 1, .max_seq = s->ctx, .last_logits_only = true},
                    fc = {.max_batch = 1, .max_seq = MC_CHUNK};
    if (lt_forward_new(m, &fp, &s->pre, e, sizeof(e)) != LT_MODEL_OK ||
        lt_forward_new(m, &fc, &s->cont, e, sizeof(e)) != LT_MODEL_OK ||
        lt_kv_cache_new(m, 1, s->ctx, &s->cache, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "multiple-choice workspace: %s", e);
        eval_mc_scorer_free(s);
        return LT_EVAL_MODEL;
    }
    if (!(s->logits = malloc((size_t)(MC_CHUNK * mc->vocab) * sizeof(float)))) {
        eval_mc_scorer_free(s);
        return LT_EVAL_NOMEM;
    }
    *out = s;
    return LT_EVAL_OK;
}

void eval_mc_scorer_free(eval_mc_scorer *s)
{
    if (!s)
        return;
    lt_kv_cache_free(s->cache);
    lt_forward_free(s->pre);
    lt_forward_free(s->cont);
    free(s->logits);
    free(s);
}

/* log softmax(x)[id] in double. */
static double log_prob(const float *x, int64_t V, int32_t id)
{
    double mx = x[0], sum = 0;
    for (int64_t v = 1; v < V; v++)
        mx = x[v] > mx ? x[v] : mx;
    for (int64_t v = 0; v < V; v++)
        sum += exp((double)x[v] - mx);
    return (double)x[id] - mx - log(sum);
}

/* The continuation of one choice: the tokens of the conversation msgs + {assistant: choice}
 * that start inside the choice's text, or in the whitespace some templates put between the
 * generation prompt and the reply (Llama 2's " "; such a token carries the space, as
 * lm-evaluation-harness's " " + choice continuations do). The rendered text has the prompt
 * with its generation prompt up to byte p_len. OUT full (the conversation's tokens), *c0 and
 * *c1 (the continuation is full[c0..c1)). */
static lt_eval_status choice_tokens(const lt_tokenizer *tok, lt_chat_family fam, lt_chat_msg *msgs,
                                    int n_msgs, const char *choice, size_t p_len, lt_tok_ids *full,
                                    int64_t *c0, int64_t *c1, char *err, size_t errlen)
{
    char e[LT_TOK_ERR_LEN];
    lt_chat_text txt = {0};
    msgs[n_msgs] = (lt_chat_msg){"assistant", choice};
    full->n = 0;
    if (lt_chat_render(tok, fam, msgs, (size_t)n_msgs + 1, false, &txt, e, sizeof(e)) !=
            LT_TOK_OK ||
        lt_tokenizer_encode_chat(tok, fam, msgs, (size_t)n_msgs + 1, false, full, e, sizeof(e)) !=
            LT_TOK_OK) {
        lt_chat_text_free(&txt);
        snprintf(err, errlen, "encoding a choice: %s", e);
        return LT_EVAL_DATA;
    }
    /* templates may trim the reply: compare the choice without surrounding whitespace */
    const char *cs = choice + strspn(choice, " \t\r\n");
    size_t cl = strlen(cs);
    while (cl > 0 && strchr(" \t\r\n", cs[cl - 1]))
        cl--;
    size_t q = p_len;
    while (q < txt.n && strchr(" \t\r\n", txt.text[q]) && txt.text[q])
        q++;
    bool placed = txt.n >= p_len && txt.n >= q + cl && memcmp(txt.text + q, cs, cl) == 0;
    lt_chat_text_free(&txt);
    if (!placed) {
        snprintf(err, errlen,
                 "the %s chat template does not put the assistant's reply right after its "
                 "generation prompt; multiple-choice scoring needs that",
                 lt_chat_family_name(fam));
        return LT_EVAL_DATA;
    }
    int64_t a = 0, b;
    while (a < (int64_t)full->n && full->offsets[a] < p_len)
        a++;
    for (b = a; b < (int64_t)full->n && full->offsets[b] < q + cl; b++)
        ;
    *c0 = a;
    *c1 = b;
    return LT_EVAL_OK;
}

/* Runs ids[0..n) continuing cache row 0 (its length is the ids' first position) and adds to
 * *ll the log-probabilities of next[0..n) (next[t] follows ids[t]). */
static lt_eval_status continue_row(eval_mc_scorer *s, const int32_t *ids, const int32_t *next,
                                   int64_t n, double *ll, char *err, size_t errlen)
{
    const int64_t V = lt_model_get_config(s->m)->vocab, row = 0;
    char e[512];
    for (int64_t a = 0; a < n; a += MC_CHUNK) {
        int64_t k = n - a < MC_CHUNK ? n - a : MC_CHUNK;
        lt_tensor *lg = NULL;
        if (lt_forward_run_rows(s->cont, ids + a, 1, k, s->cache, &row, &lg, e, sizeof(e)) !=
                LT_MODEL_OK ||
            lt_tensor_download_f32(lg, s->logits, k * V) != LT_OK) {
            snprintf(err, errlen, "scoring a choice: %s", e);
            return LT_EVAL_MODEL;
        }
        for (int64_t t = 0; t < k; t++)
            *ll += log_prob(s->logits + t * V, V, next[a + t]);
    }
    return LT_EVAL_OK;
}

lt_eval_status eval_mc_logliks(eval_mc_scorer *s, const lt_tokenizer *tok, lt_chat_family fam,
                               const lt_chat_msg *msgs, int n_msgs, const char *const *choices,
                               int n_choices, double *ll, int64_t *n_tok, bool *too_long, char *err,
                               size_t errlen)
{
    const int64_t V = lt_model_get_config(s->m)->vocab, row = 0;
    lt_chat_msg *m = calloc((size_t)n_msgs + 1, sizeof(lt_chat_msg));
    lt_chat_text pt = {0};
    lt_tok_ids p = {0}, full = {0};
    float *last = malloc((size_t)V * sizeof(float));
    char e[LT_TOK_ERR_LEN > 512 ? LT_TOK_ERR_LEN : 512];
    lt_eval_status rc = LT_EVAL_OK;
    *too_long = false;
    if (!m || !last) {
        rc = LT_EVAL_NOMEM;
        goto out;
    }
    memcpy(m, msgs, (size_t)n_msgs * sizeof(lt_chat_msg));
    if (lt_chat_render(tok, fam, m, (size_t)n_msgs, true, &pt, e, sizeof(e)) != LT_TOK_OK ||
        lt_tokenizer_encode_chat(tok, fam, m, (size_t)n_msgs, true, &p, e, sizeof(e)) !=
            LT_TOK_OK) {
        snprintf(err, errlen, "encoding a prompt: %s", e);
        rc = LT_EVAL_DATA;
        goto out;
    }
    int64_t np = (int64_t)p.n;
    bool prefilled = false;
    for (int j = 0; j < n_choices && rc == LT_EVAL_OK; j++) {
        int64_t c0, c1;
        ll[j] = 0;
        n_tok[j] = 0;
        if ((rc = choice_tokens(tok, fam, m, n_msgs, choices[j], pt.n, &full, &c0, &c1, err,
                                errlen)) != LT_EVAL_OK)
            break;
        n_tok[j] = c1 - c0;
        if (c1 > s->ctx || c1 == c0) {
            *too_long = c1 > s->ctx;
            if (c1 == c0) {
                snprintf(err, errlen, "choice %d has no tokens", j + 1);
                rc = LT_EVAL_DATA;
            }
            break;
        }
        /* the context this choice continues: the shared prompt when the tokens agree (they
         * do unless a token spans the prompt's end), else its own prefix, run without sharing */
        bool shared = c0 == np && memcmp(full.ids, p.ids, (size_t)np * sizeof(int32_t)) == 0;
        lt_tensor *lg = NULL;
        if (shared && !prefilled) {
            lt_kv_cache_truncate_row(s->cache, row, 0);
            if (lt_forward_run_rows(s->pre, p.ids, 1, np, s->cache, &row, &lg, e, sizeof(e)) !=
                    LT_MODEL_OK ||
                lt_tensor_download_f32(lg, last, V) != LT_OK) {
                snprintf(err, errlen, "scoring a prompt: %s", e);
                rc = LT_EVAL_MODEL;
                break;
            }
            prefilled = true;
        }
        if (!shared) {
            prefilled = false;
            lt_kv_cache_truncate_row(s->cache, row, 0);
            if (lt_forward_run_rows(s->pre, full.ids, 1, c0, s->cache, &row, &lg, e, sizeof(e)) !=
                    LT_MODEL_OK ||
                lt_tensor_download_f32(lg, s->logits, V) != LT_OK) {
                snprintf(err, errlen, "scoring a choice: %s", e);
                rc = LT_EVAL_MODEL;
                break;
            }
            ll[j] = log_prob(s->logits, V, full.ids[c0]);
        } else {
            lt_kv_cache_truncate_row(s->cache, row, np);
            ll[j] = log_prob(last, V, full.ids[c0]);
        }
        /* tokens c0 .. c1-2 predict c0+1 .. c1-1 */
        rc = continue_row(s, full.ids + c0, full.ids + c0 + 1, c1 - c0 - 1, &ll[j], err, errlen);
    }
out:
    lt_chat_text_free(&pt);
    lt_tok_ids_free(&p);
    lt_tok_ids_free(&full);
    free(m);
    free(last);
    return rc;
}

lt_eval_status eval_mc_rows(ectx *c, const lt_eval_system *sys, const char *label, lt_model *m,
                            int64_t eval_id, const double *row_nll, const int64_t *row_n,
                            cJSON *metrics, char *err, size_t errlen)
{
    const lt_eval_opts *o = c->o;
    const lt_model_config *mc = lt_model_get_config(m);
    int64_t n = c->rows.n;
    double acc_sum = 0, accn_sum = 0;
    int shots_used = -1;
    eval_mc_scorer *sc = NULL;
    lt_tok_ids enc = {0};
    lt_eval_status rc = eval_mc_scorer_new(m, &sc, err, errlen);
    for (int64_t i = 0; i < n && rc == LT_EVAL_OK; i++) {
        if (o->interrupt && *o->interrupt) {
            rc = LT_EVAL_INTERRUPTED;
            break;
        }
        const erow *w = &c->rows.r[i];
        double ll[LT_EVAL_MC_MAX];
        int64_t nt[LT_EVAL_MC_MAX], nch[LT_EVAL_MC_MAX];
        int64_t longest = 0;
        if (w->n_choices > LT_EVAL_MC_MAX) {
            snprintf(err, errlen, "row %lld has %d choices (at most %d)", (long long)i,
                     w->n_choices, LT_EVAL_MC_MAX);
            rc = LT_EVAL_DATA;
            break;
        }
        for (int j = 0; j < w->n_choices; j++) {
            nch[j] = lt_utf8_len(w->choices[j]);
            longest =
                (int64_t)strlen(w->choices[j]) > longest ? (int64_t)strlen(w->choices[j]) : longest;
        }
        lt_chat_msg *msgs = NULL;
        int nm = 0, used = 0;
        /* room for the longest choice (its bytes bound its tokens) and an end-of-turn */
        rc = eval_prompt_msgs(c->tok, c->fam, w, &c->shots, sys->k_shot, mc->max_pos, longest + 2,
                              &msgs, &nm, &used, &enc, err, errlen);
        if (rc != LT_EVAL_OK)
            break;
        shots_used = shots_used < 0 || used < shots_used ? used : shots_used;
        bool too_long = false;
        rc = eval_mc_logliks(sc, c->tok, c->fam, msgs, nm, w->choices, w->n_choices, ll, nt,
                             &too_long, err, errlen);
        free(msgs);
        if (rc != LT_EVAL_OK) {
            char e[512];
            snprintf(e, sizeof(e), "%s", err);
            snprintf(err, errlen, "row %lld: %s", (long long)i, e);
            break;
        }
        int acc = 0, accn = 0, pred = -1, pred_norm = -1;
        if (!too_long) {
            lt_mc_score(ll, nch, w->n_choices, w->gold, &acc, &accn);
            pred = pred_norm = 0;
            for (int j = 1; j < w->n_choices; j++) {
                pred = ll[j] > ll[pred] ? j : pred;
                pred_norm =
                    ll[j] / (double)(nch[j] > 0 ? nch[j] : 1) >
                            ll[pred_norm] / (double)(nch[pred_norm] > 0 ? nch[pred_norm] : 1)
                        ? j
                        : pred_norm;
            }
        }
        acc_sum += acc;
        accn_sum += accn;
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "acc", acc);
        cJSON_AddNumberToObject(s, "acc_norm", accn);
        cJSON_AddNumberToObject(s, "pred", pred);
        cJSON_AddNumberToObject(s, "pred_norm", pred_norm);
        cJSON_AddNumberToObject(s, "gold", w->gold);
        cJSON *lla = cJSON_AddArrayToObject(s, "loglik");
        cJSON *nta = cJSON_AddArrayToObject(s, "n_tokens");
        cJSON *nca = cJSON_AddArrayToObject(s, "n_chars");
        for (int j = 0; j < w->n_choices && !too_long; j++) {
            cJSON_AddItemToArray(lla, cJSON_CreateNumber(ll[j]));
            cJSON_AddItemToArray(nta, cJSON_CreateNumber((double)nt[j]));
            cJSON_AddItemToArray(nca, cJSON_CreateNumber((double)nch[j]));
        }
        if (row_n && row_n[i] > 0)
            cJSON_AddNumberToObject(s, "loss", row_nll[i] / (double)row_n[i]);
        if (too_long)
            cJSON_AddBoolToObject(s, "prompt_too_long", true);
        char *scs = cJSON_PrintUnformatted(s);
        cJSON_Delete(s);
        lt_store_eval_sample es = {w->sample_id, w->prompt, w->choices[w->gold],
                                   pred >= 0 ? w->choices[pred] : "", scs};
        if (!scs || lt_store_eval_sample_add(c->st, eval_id, &es) != LT_STORE_OK) {
            snprintf(err, errlen, "storing a sample: %s", lt_store_errmsg(c->st));
            rc = LT_EVAL_STORE;
        }
        free(scs);
        if (o->progress)
            o->progress(o->ctx, label, i + 1, n);
    }
    if (rc == LT_EVAL_OK && n > 0) {
        eval_add_metric(metrics, "acc", acc_sum / (double)n);
        eval_add_metric(metrics, "acc_norm", accn_sum / (double)n);
        if (sys->k_shot > 0)
            cJSON_AddNumberToObject(metrics, "shots_used", shots_used);
    }
    lt_tok_ids_free(&enc);
    eval_mc_scorer_free(sc);
    return rc;
}
