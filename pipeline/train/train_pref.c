/*
 * train_pref.c - the preference objectives (DPO, ORPO) inside a training run: preference pairs
 * read from the store and checked row by row, both answers rendered with the chat template
 * (prompt as the user turn, chosen or rejected as the assistant turn, labels on the final
 * answer only), unpacked batches of P pairs (2P rows: chosen first), gradient accumulation
 * weighted by pairs, evaluation (preference loss and reward accuracy) and the reward metrics.
 *
 * The loss and its gradient are pref.c's. The chosen sides live in r->train / r->val so the
 * epoch plans, resume and step counting of train_loop.c apply unchanged; the rejected sides
 * and the sample ids are kept here, aligned by example index.
 *
 * DPO reference log-probs are computed for every pair (train and validation) right after the
 * model is loaded from its folder and before a checkpoint is restored or any update is made,
 * so they come from the base weights, also on resume (the run refuses to resume when the
 * model folder changed). They are not stored in checkpoints.
 *
 * Never prints; messages go through trun_event.
 */
#include "train/pref.h"
#include "train/train_run.h"

#include "data/sha256.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREF_MAX_REPORTED 64 /* bad-row messages kept for the run's events */

struct trun_pref {
    lt_pref *p;
    lt_examples rej, val_rej;   /* rejected sides, aligned with r->train / r->val */
    int64_t *pid, *val_pid;     /* sample id of every kept pair (the reference cache key) */
    int32_t *ids, *labels;      /* batch buffers [2P * T] */
    int64_t *bpid;              /* [P] */
    size_t cap_tok, cap_pairs;
    lt_pref_stats last;         /* the last step's statistics */
    int64_t n_bad;              /* pairs skipped over both splits */
    char *reported[PREF_MAX_REPORTED];
    int n_reported;
};

bool trun_pref_enabled(const lt_train_config *c)
{
    return c->objective == LT_OBJECTIVE_DPO || c->objective == LT_OBJECTIVE_ORPO;
}

void trun_pref_free(trun *r)
{
    trun_pref *q = r->pref;
    if (!q)
        return;
    lt_pref_free(q->p);
    lt_examples_free(&q->rej);
    lt_examples_free(&q->val_rej);
    free(q->pid);
    free(q->val_pid);
    free(q->ids);
    free(q->labels);
    free(q->bpid);
    for (int i = 0; i < q->n_reported; i++)
        free(q->reported[i]);
    free(q);
    r->pref = NULL;
}

/* Removes the newest example of ex. */
static void pop_example(lt_examples *ex)
{
    if (ex->n == 0)
        return;
    int64_t a = ex->start[ex->n - 1], b = ex->start[ex->n];
    for (int64_t k = a; k < b; k++)
        if (ex->labels[k] != -100)
            ex->n_labels--;
    ex->n_tok = a;
    ex->n--;
}

/*
 * Encodes one side (sample JSON whose "chosen" is the answer) and appends it to ex, labels on
 * the final assistant turn only. Returns 1 when the row is bad (why says so; nothing kept),
 * -1 on an encoding error (err), 0 when kept.
 */
static int add_side(lt_examples *ex, const lt_tokenizer *tok, const lt_encode_opts *eo,
                    int64_t ctx, const char *json, const char *side, char *why, size_t wn,
                    char *err, size_t errlen)
{
    int64_t n0 = ex->n, sk0 = ex->n_skipped;
    if (!lt_examples_add(ex, tok, eo, json, err, errlen))
        return -1;
    if (ex->n == n0) {
        ex->n_skipped = sk0;
        snprintf(why, wn, "the %s answer has no token to score after the chat template", side);
        return 1;
    }
    int64_t a = ex->start[n0], b = ex->start[ex->n];
    int64_t len = b - a, k = b - 1;
    /* the final answer is the last run of labelled positions; earlier assistant turns of a
     * multi-turn prompt are prompt here */
    while (k >= a && ex->labels[k] == -100)
        k--;
    int64_t end = k;
    while (k >= a && ex->labels[k] != -100)
        k--;
    int64_t n_resp = end - k;
    if (len > ctx) {
        snprintf(why, wn,
                 "prompt (%lld tokens) + %s (%lld tokens) = %lld tokens, longer than the "
                 "context (%lld)",
                 (long long)(len - n_resp), side, (long long)n_resp, (long long)len,
                 (long long)ctx);
        pop_example(ex);
        return 1;
    }
    for (; k >= a; k--)
        if (ex->labels[k] != -100) {
            ex->labels[k] = -100;
            ex->n_labels--;
        }
    return 0;
}

/* Checks and encodes one stored sample. 0 kept, 1 bad (why), -1 error (err). */
static int add_pair(trun *r, lt_examples *ch, lt_examples *rj, const lt_encode_opts *eo,
                    const char *data, char *why, size_t wn, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(data);
    int rc = 1;
    char *rjson = NULL;
    if (!cJSON_IsObject(root)) {
        snprintf(why, wn, "is not a JSON object");
        goto done;
    }
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(root, "turns");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "chosen");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, "rejected");
    if (!cJSON_IsArray(turns) || cJSON_GetArraySize(turns) == 0) {
        snprintf(why, wn, "has no prompt");
        goto done;
    }
    if (!cJSON_IsString(c) || !c->valuestring[strspn(c->valuestring, " \t\r\n")]) {
        snprintf(why, wn, "has no chosen answer");
        goto done;
    }
    if (!cJSON_IsString(x) || !x->valuestring[strspn(x->valuestring, " \t\r\n")]) {
        snprintf(why, wn, "has no rejected answer");
        goto done;
    }
    if (strcmp(c->valuestring, x->valuestring) == 0) {
        snprintf(why, wn, "chosen and rejected are identical");
        goto done;
    }
    if (!cJSON_ReplaceItemInObjectCaseSensitive(root, "chosen",
                                                cJSON_CreateString(x->valuestring)) ||
        !(rjson = cJSON_PrintUnformatted(root))) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        goto done;
    }
    rc = add_side(ch, r->tok, eo, r->seq_len, data, "chosen", why, wn, err, errlen);
    if (rc != 0)
        goto done;
    rc = add_side(rj, r->tok, eo, r->seq_len, rjson, "rejected", why, wn, err, errlen);
    if (rc != 0)
        pop_example(ch);
done:
    free(rjson);
    cJSON_Delete(root);
    return rc;
}

static void keep_report(trun_pref *q, const char *msg)
{
    if (q->n_reported < PREF_MAX_REPORTED && (q->reported[q->n_reported] = strdup(msg)))
        q->n_reported++;
}

bool trun_pref_load(trun *r, int64_t version_id, const char *split, const lt_encode_opts *eo_in,
                    bool val, bool strict, char *hash_hex, char *err, size_t errlen)
{
    trun_pref *q = r->pref;
    if (!q && !(q = r->pref = calloc(1, sizeof(*q)))) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    lt_examples *ch = val ? &r->val : &r->train, *rj = val ? &q->val_rej : &q->rej;
    int64_t **pid = val ? &q->val_pid : &q->pid;
    lt_encode_opts eo = *eo_in;
    eo.pretrain = false;
    eo.train_on_prompt = false; /* the score is over the answer alone */
    eo.seq_len = INT64_MAX / 4; /* long rows are reported, never truncated */
    memset(ch, 0, sizeof(*ch));
    memset(rj, 0, sizeof(*rj));
    lt_store_iter *it = NULL;
    if (lt_store_samples_iter(r->st, version_id, split, &it) != LT_STORE_OK) {
        snprintf(err, errlen, "cannot read the dataset's samples: %s", lt_store_errmsg(r->st));
        return false;
    }
    lt_sha256 h;
    lt_sha256_init(&h);
    lt_store_sample s;
    lt_store_status rc;
    int64_t n_all = 0, n_bad = 0, cap = 0;
    bool ok = true;
    while ((rc = lt_store_samples_next(it, &s)) == LT_STORE_OK) {
        char why[300] = "", e[400] = "";
        n_all++;
        if (s.text_hash)
            lt_sha256_update(&h, s.text_hash, strlen(s.text_hash));
        int k = add_pair(r, ch, rj, &eo, s.data ? s.data : "", why, sizeof(why), e, sizeof(e));
        if (k < 0) {
            snprintf(err, errlen, "sample at row %lld: %s", (long long)s.row, e);
            ok = false;
            break;
        }
        if (k > 0) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s row %lld (line %lld): %s", val ? "validation" : "training",
                     (long long)s.row, (long long)s.line, why);
            if (strict) {
                snprintf(err, errlen, "%s (--strict: no pair is skipped)", msg);
                ok = false;
                break;
            }
            n_bad++;
            char full[600];
            snprintf(full, sizeof(full), "%s; pair skipped", msg);
            trun_event(r, "warning", "%s", full);
            keep_report(q, full);
            continue;
        }
        if (ch->n > cap) {
            int64_t nc = cap ? cap * 2 : 256;
            int64_t *np = realloc(*pid, (size_t)nc * sizeof(int64_t));
            if (!np) {
                snprintf(err, errlen, "out of memory");
                ok = false;
                break;
            }
            *pid = np;
            cap = nc;
        }
        (*pid)[ch->n - 1] = s.id;
    }
    if (ok && rc != LT_STORE_DONE) {
        snprintf(err, errlen, "reading samples failed: %s", lt_store_errmsg(r->st));
        ok = false;
    }
    lt_store_iter_free(it);
    uint8_t d[32];
    char hex[65];
    lt_sha256_final(&h, d, hex);
    if (hash_hex)
        memcpy(hash_hex, hex, 65);
    if (!ok)
        return false;
    q->n_bad += n_bad;
    if (n_bad) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%lld of %lld preference pairs in the %s split skipped "
                 "(reasons above)", (long long)n_bad, (long long)n_all,
                 val ? "validation" : "training");
        trun_event(r, "warning", "%s", msg);
        keep_report(q, msg);
    }
    if (!val && ch->n == 0) {
        snprintf(err, errlen,
                 "none of the %lld samples is a usable preference pair (prompt, chosen and "
                 "rejected, different answers, within the context of %lld tokens)%s",
                 (long long)n_all, (long long)r->seq_len,
                 n_bad ? "; see the rows reported above" : "");
        return false;
    }
    return true;
}

void trun_pref_report(trun *r)
{
    trun_pref *q = r->pref;
    if (!q || r->run_id <= 0)
        return;
    for (int i = 0; i < q->n_reported; i++)
        lt_store_run_event_add(r->st, r->run_id, r->s.step, "warning", q->reported[i]);
}

/* Assembles rows [row0, row0 + n) of plan into b (chosen rows, then rejected rows). */
static bool build(trun_pref *q, const lt_examples *ch, const lt_examples *rj, const int64_t *pid,
                  const lt_rows *rows, int64_t row0, int64_t n, int32_t pad, lt_pref_batch *b,
                  int64_t *n_lab)
{
    int64_t T = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t e = rows->member[rows->off[row0 + i]];
        int64_t lc = ch->start[e + 1] - ch->start[e], lr = rj->start[e + 1] - rj->start[e];
        if (lc > T)
            T = lc;
        if (lr > T)
            T = lr;
    }
    size_t need = (size_t)(2 * n * T);
    if (need > q->cap_tok) {
        int32_t *a = realloc(q->ids, need * sizeof(int32_t));
        if (!a)
            return false;
        q->ids = a;
        int32_t *l = realloc(q->labels, need * sizeof(int32_t));
        if (!l)
            return false;
        q->labels = l;
        q->cap_tok = need;
    }
    if ((size_t)n > q->cap_pairs) {
        int64_t *p = realloc(q->bpid, (size_t)n * sizeof(int64_t));
        if (!p)
            return false;
        q->bpid = p;
        q->cap_pairs = (size_t)n;
    }
    *n_lab = 0;
    for (int64_t side = 0; side < 2; side++)
        for (int64_t i = 0; i < n; i++) {
            const lt_examples *ex = side ? rj : ch;
            int64_t e = rows->member[rows->off[row0 + i]];
            int64_t a = ex->start[e], len = ex->start[e + 1] - a;
            int32_t *ids = q->ids + (side * n + i) * T, *lab = q->labels + (side * n + i) * T;
            for (int64_t t = 0; t < T; t++) {
                ids[t] = t < len ? ex->ids[a + t] : pad;
                lab[t] = t < len ? ex->labels[a + t] : -100;
                *n_lab += lab[t] != -100;
            }
            if (side == 0)
                q->bpid[i] = pid[e];
        }
    *b = (lt_pref_batch){n, T, q->ids, q->labels, q->bpid};
    return true;
}

static lt_pref_opts pref_opts(const lt_train_config *c)
{
    lt_pref_opts o;
    if (c->objective == LT_OBJECTIVE_ORPO) {
        o.kind = LT_PREF_ORPO;
        o.beta = (float)c->orpo_beta;
    } else {
        o.kind = c->dpo_loss == LT_DPO_IPO ? LT_PREF_DPO_IPO : LT_PREF_DPO;
        o.beta = (float)c->dpo_beta;
    }
    return o;
}

/* Reference log-probs of every pair of one split (DPO). */
static bool fill_split(trun *r, const lt_examples *ch, const lt_examples *rj, const int64_t *pid,
                       char *err, size_t errlen)
{
    trun_pref *q = r->pref;
    lt_rows rows;
    if (!lt_rows_plan(ch, false, false, r->seq_len, 0, 0, &rows)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = true;
    for (int64_t row = 0; ok && row < rows.n_rows; row += r->c->batch_size) {
        int64_t nb = rows.n_rows - row < r->c->batch_size ? rows.n_rows - row : r->c->batch_size;
        lt_pref_batch b;
        int64_t nl;
        char e[1024];
        if (!build(q, ch, rj, pid, &rows, row, nb, r->pad_id, &b, &nl)) {
            snprintf(err, errlen, "out of memory building a batch");
            ok = false;
        } else if (lt_pref_fill_reference(q->p, &b, e, sizeof(e)) != LT_MODEL_OK) {
            snprintf(err, errlen, "reference log-probs: %s", e);
            ok = false;
        }
    }
    lt_rows_free(&rows);
    return ok;
}

bool trun_pref_start(trun *r, char *err, size_t errlen)
{
    trun_pref *q = r->pref;
    lt_pref_opts o = pref_opts(r->c);
    char e[1024];
    if (lt_pref_new(r->tr, &o, &q->p, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "%s", e);
        return false;
    }
    if (o.kind == LT_PREF_ORPO)
        return true;
    double t0 = trun_now();
    if (!fill_split(r, &r->train, &q->rej, q->pid, err, errlen) ||
        (r->has_val && !fill_split(r, &r->val, &q->val_rej, q->val_pid, err, errlen)))
        return false;
    trun_event(r, "info", "reference log-probs of %lld pairs computed from the %s in %.1f s",
               (long long)(r->train.n + (r->has_val ? r->val.n : 0)),
               r->c->method == LT_METHOD_LORA ? "base (adapter off)" : "base weights",
               trun_now() - t0);
    return true;
}

void trun_pref_set_trainer(trun *r)
{
    if (r->pref && r->pref->p)
        lt_pref_set_trainer(r->pref->p, r->tr);
}

static void add_stats(lt_pref_stats *acc, const lt_pref_stats *s, double w)
{
    acc->loss += s->loss * w;
    acc->reward_chosen += s->reward_chosen * w;
    acc->reward_rejected += s->reward_rejected * w;
    acc->margin += s->margin * w;
    acc->accuracy += s->accuracy * w;
    acc->nll += s->nll * w;
    acc->log_odds += s->log_odds * w;
}

static void div_stats(lt_pref_stats *acc, double n)
{
    lt_pref_stats z = {0};
    add_stats(&z, acc, n > 0 ? 1.0 / n : NAN);
    z.pairs = acc->pairs;
    *acc = z;
}

bool trun_pref_step(trun *r, double *loss, double *gnorm, bool *skipped, int64_t *n_tok,
                    char *err, size_t errlen)
{
    const lt_train_config *c = r->c;
    trun_pref *q = r->pref;
    int64_t row0 = r->s.row, n_micro = 0, pairs = 0, row = row0;
    for (; n_micro < c->grad_accum && row < r->rows.n_rows; n_micro++) {
        int64_t nb = r->rows.n_rows - row < c->batch_size ? r->rows.n_rows - row : c->batch_size;
        pairs += nb;
        row += nb;
    }
    lt_pref_stats acc = {0};
    int64_t tok = 0;
    row = row0;
    for (int64_t m = 0; m < n_micro; m++) {
        int64_t nb = r->rows.n_rows - row < c->batch_size ? r->rows.n_rows - row : c->batch_size;
        lt_pref_batch b;
        lt_pref_stats ps;
        int64_t nl = 0;
        if (!build(q, &r->train, &q->rej, q->pid, &r->rows, row, nb, r->pad_id, &b, &nl)) {
            snprintf(err, errlen, "out of memory building a batch");
            return false;
        }
        /* the mean over the step's pairs: each micro-batch weighs by its pairs */
        if (lt_pref_forward_backward(q->p, &b, (float)((double)nb / (double)pairs), &ps, err,
                                     errlen) != LT_MODEL_OK)
            return false;
        add_stats(&acc, &ps, (double)nb);
        tok += nl;
        row += nb;
    }
    r->s.row = row;
    double lr = lt_schedule_lr(&r->sched, r->s.step);
    if (lt_trainer_step(r->tr, (float)lr, (float)c->max_grad_norm, gnorm, skipped, err,
                        errlen) != LT_MODEL_OK)
        return false;
    div_stats(&acc, (double)pairs);
    acc.pairs = pairs;
    q->last = acc;
    *loss = acc.loss;
    if (!isfinite(*loss))
        *skipped = true;
    *n_tok = tok;
    return true;
}

void trun_pref_metrics(trun *r)
{
    const lt_pref_stats *s = &r->pref->last;
    trun_metric(r, "rewards/chosen", s->reward_chosen);
    trun_metric(r, "rewards/rejected", s->reward_rejected);
    trun_metric(r, "rewards/margins", s->margin);
    trun_metric(r, "rewards/accuracies", s->accuracy);
    if (r->c->objective == LT_OBJECTIVE_ORPO) {
        trun_metric(r, "nll_loss", s->nll);
        trun_metric(r, "log_odds_ratio", s->log_odds);
    }
}

bool trun_pref_evaluate(trun *r, double *val_loss)
{
    trun_pref *q = r->pref;
    lt_pref_stats acc = {0};
    int64_t pairs = 0;
    char err[1024];
    for (int64_t row = 0; row < r->val_rows.n_rows; row += r->c->batch_size) {
        int64_t nb = r->val_rows.n_rows - row;
        if (nb > r->c->batch_size)
            nb = r->c->batch_size;
        lt_pref_batch b;
        lt_pref_stats ps;
        int64_t nl;
        if (!build(q, &r->val, &q->val_rej, q->val_pid, &r->val_rows, row, nb, r->pad_id, &b,
                   &nl))
            return false;
        if (lt_pref_eval(q->p, &b, &ps, err, sizeof(err)) != LT_MODEL_OK) {
            trun_event(r, "error", "evaluation failed: %s", err);
            return false;
        }
        add_stats(&acc, &ps, (double)nb);
        pairs += nb;
    }
    if (pairs == 0)
        return false;
    div_stats(&acc, (double)pairs);
    trun_metric(r, "val_rewards/accuracies", acc.accuracy);
    trun_metric(r, "val_rewards/margins", acc.margin);
    *val_loss = acc.loss;
    return true;
}
