/*
 * train_loop.c - the steps of a run: gradient accumulation with a token-weighted mean, the
 * schedule, clipping and NaN/Inf skips (through trainer.h), evaluation with early stopping
 * and the overfitting warning, checkpoints (write, keep the last K and the best, resume),
 * batched metrics, signals and control requests from the store.
 *
 * Everything that decides what the next step computes lives in lt_ckpt_state, so a run
 * resumed from a checkpoint repeats exactly what the uninterrupted run would have done.
 */
#include "train/train_run.h"

#include "export/peft.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

void trun_flush_metrics(trun *r)
{
    if (r->n_metrics == 0)
        return;
    if (lt_store_metrics_put(r->st, r->run_id, r->metrics, r->n_metrics) != LT_STORE_OK &&
        r->o->on_message)
        r->o->on_message(r->o->ctx, "warning", "could not write metrics to the store");
    r->n_metrics = 0;
    r->last_flush = trun_now();
}

static void metric(trun *r, const char *name, double v)
{
    if (r->n_metrics == METRIC_BUF)
        trun_flush_metrics(r);
    r->metrics[r->n_metrics++] = (lt_store_metric){r->s.step, name, v, wall_now()};
}

void trun_metric(trun *r, const char *name, double v)
{
    metric(r, name, v);
}

/* ---- checkpoints ---- */

/* The tensors a checkpoint holds: trainer state, and for freeze "half" every layer's
 * weights (layers trained in earlier rounds live only in the model). OUT *ts malloc'd; the
 * names too (free with free_tensors). */
static int ckpt_tensors(trun *r, lt_ckpt_tensor **ts)
{
    int ns = lt_trainer_n_state(r->tr);
    int nm = r->c->method == LT_METHOD_FREEZE && r->c->freeze_kind == LT_FREEZE_HALF
                 ? lt_model_param_count(r->model)
                 : 0;
    *ts = calloc((size_t)(3 * ns + nm + 1), sizeof(lt_ckpt_tensor));
    if (!*ts)
        return -1;
    int k = 0;
    for (int i = 0; i < ns; i++) {
        const lt_trainer_state *s = lt_trainer_state_at(r->tr, i);
        const char *pre[3] = {"param:", "m:", "v:"};
        lt_tensor *t[3] = {s->param, s->m, s->v};
        for (int j = 0; j < 3; j++) {
            size_t n = strlen(pre[j]) + strlen(s->name) + 1;
            char *name = malloc(n);
            if (!name)
                return -1;
            snprintf(name, n, "%s%s", pre[j], s->name);
            (*ts)[k++] = (lt_ckpt_tensor){name, t[j]};
        }
    }
    for (int i = 0; i < nm; i++) {
        const lt_model_param *p = lt_model_param_at(r->model, i);
        if (p->layer < 0 || r->train_layer[p->layer])
            continue; /* trained now: in the trainer's state */
        size_t n = strlen(p->name) + 6;
        char *name = malloc(n);
        if (!name)
            return -1;
        snprintf(name, n, "base:%s", p->name);
        (*ts)[k++] = (lt_ckpt_tensor){name, p->tensor};
    }
    return k;
}

static void free_tensors(lt_ckpt_tensor *ts, int n)
{
    if (!ts)
        return;
    for (int i = 0; i < n; i++)
        free((char *)ts[i].name);
    free(ts);
}

/* Keeps the newest keep_last checkpoints and the keep_best with the lowest validation loss;
 * deletes the rest (file and row). */
static void prune_checkpoints(trun *r)
{
    lt_store_iter *it = NULL;
    int64_t ids[4096], steps[4096];
    double loss[4096];
    char *paths[4096];
    int n = 0;
    if (lt_store_checkpoints_iter(r->st, r->run_id, &it) != LT_STORE_OK)
        return;
    lt_store_checkpoint c;
    while (n < 4096 && lt_store_checkpoints_next(it, &c) == LT_STORE_OK) {
        if (c.kind && strcmp(c.kind, "adapter") == 0)
            continue; /* an exported folder, not a checkpoint */
        ids[n] = c.id;
        steps[n] = c.step;
        loss[n] = c.loss;
        paths[n] = strdup(c.path ? c.path : "");
        n++;
    }
    lt_store_iter_free(it);
    for (int i = 0; i < n; i++) {
        int newer = 0, better = 0;
        for (int j = 0; j < n; j++) {
            if (steps[j] > steps[i] || (steps[j] == steps[i] && ids[j] > ids[i]))
                newer++;
            if (!isnan(loss[j]) && (isnan(loss[i]) || loss[j] < loss[i] ||
                                    (loss[j] == loss[i] && steps[j] < steps[i])))
                better++;
        }
        bool best = !isnan(loss[i]) && better < r->c->keep_best;
        if (newer < r->c->keep_last || best) {
            lt_store_checkpoint_set_kind(r->st, ids[i], best ? "best" : "last");
        } else {
            if (paths[i] && paths[i][0])
                unlink(paths[i]);
            lt_store_checkpoint_delete(r->st, ids[i]);
        }
    }
    for (int i = 0; i < n; i++)
        free(paths[i]);
}

/* Writes a checkpoint of the current step (once per step). val_loss: NaN when not known. */
static bool write_checkpoint(trun *r, double val_loss)
{
    if (r->last_ckpt_step == r->s.step && isnan(val_loss))
        return true;
    /* the metrics of every step up to this one reach the store first: a run killed after
     * the checkpoint resumes from it and recomputes only later steps, so a metric still in
     * the buffer would be lost for good */
    trun_flush_metrics(r);
    char path[4300];
    snprintf(path, sizeof(path), "%s/checkpoints/step-%lld.ckpt", r->dir, (long long)r->s.step);
    lt_ckpt_tensor *ts = NULL;
    int n = ckpt_tensors(r, &ts);
    char err[1024];
    bool ok = n >= 0;
    r->s.adam_step = lt_trainer_adam_step(r->tr);
    if (!ok)
        snprintf(err, sizeof(err), "out of memory listing the checkpoint's tensors");
    else
        ok = lt_ckpt_write(path, &r->s, ts, n, err, sizeof(err));
    if (!ok && n >= 0) { /* one retry, for a passing error (space freed, a network hiccup) */
        trun_event(r, "warning", "checkpoint at step %lld failed (%s); retrying once",
                   (long long)r->s.step, err);
        usleep(500000);
        ok = lt_ckpt_write(path, &r->s, ts, n, err, sizeof(err));
    }
    free_tensors(ts, n > 0 ? n : 0);
    if (!ok) {
        /* training on without a durable checkpoint would lose the work on any crash: the
         * loop fails the run with this reason */
        char last[64] = "none";
        if (r->last_ckpt_step >= 0)
            snprintf(last, sizeof(last), "step %lld", (long long)r->last_ckpt_step);
        snprintf(r->ckpt_error, sizeof(r->ckpt_error),
                 "the checkpoint at step %lld could not be written: %s (the last durable "
                 "checkpoint: %s)",
                 (long long)r->s.step, err, last);
        trun_event(r, "error", "%s", r->ckpt_error);
        return false;
    }
    if (r->last_ckpt_step == r->s.step) {
        /* the same step again (now with its validation loss): replace the row */
        lt_store_iter *it = NULL;
        lt_store_checkpoint c;
        int64_t del[16];
        int nd = 0;
        if (lt_store_checkpoints_iter(r->st, r->run_id, &it) == LT_STORE_OK) {
            while (lt_store_checkpoints_next(it, &c) == LT_STORE_OK)
                if (c.step == r->s.step && nd < 16)
                    del[nd++] = c.id;
            lt_store_iter_free(it);
        }
        for (int i = 0; i < nd; i++)
            lt_store_checkpoint_delete(r->st, del[i]);
    }
    lt_store_checkpoint row = {0, r->run_id, r->s.step, path, "last", val_loss, 0};
    lt_store_checkpoint_add(r->st, &row, NULL);
    r->last_ckpt_step = r->s.step;
    prune_checkpoints(r);
    return true;
}

bool trun_resume(trun *r, bool *found, char *err, size_t errlen)
{
    lt_store_iter *it = NULL;
    char path[4300] = "";
    int64_t best_step = -1;
    *found = false;
    if (lt_store_checkpoints_iter(r->st, r->run_id, &it) != LT_STORE_OK) {
        snprintf(err, errlen, "cannot list the run's checkpoints: %s", lt_store_errmsg(r->st));
        return false;
    }
    lt_store_checkpoint c;
    while (lt_store_checkpoints_next(it, &c) == LT_STORE_OK)
        if (c.step > best_step && c.path && !(c.kind && strcmp(c.kind, "adapter") == 0)) {
            best_step = c.step;
            snprintf(path, sizeof(path), "%s", c.path);
        }
    lt_store_iter_free(it);
    if (best_step < 0)
        return true;
    lt_ckpt_state s;
    if (!lt_ckpt_read_state(path, &s, err, errlen))
        return false;
    if (strcmp(s.config_hash, r->c->hash) != 0) {
        snprintf(err, errlen, "%s: written under another config (hash %.12s, now %.12s)", path,
                 s.config_hash, r->c->hash);
        return false;
    }
    r->s = s;
    if (r->c->method == LT_METHOD_FREEZE && r->c->freeze_kind == LT_FREEZE_HALF &&
        !trun_make_trainer(r, err, errlen))
        return false;
    lt_ckpt_tensor *ts = NULL;
    int n = ckpt_tensors(r, &ts);
    bool ok = n >= 0 && lt_ckpt_load(path, ts, n, err, errlen);
    free_tensors(ts, n > 0 ? n : 0);
    if (!ok)
        return false;
    lt_trainer_set_adam_step(r->tr, s.adam_step);
    lt_rows_free(&r->rows);
    if (!lt_rows_plan(&r->train, true, r->c->packing, r->seq_len, r->c->seed, s.epoch,
                      &r->rows)) {
        snprintf(err, errlen, "out of memory planning the epoch");
        return false;
    }
    r->last_ckpt_step = s.step;
    r->res->best_val = s.best_val;
    *found = true;
    trun_event(r, "info", "resumed from %s (step %lld, epoch %lld)", path, (long long)s.step,
               (long long)s.epoch);
    return true;
}

/* ---- evaluation ---- */

static bool evaluate(trun *r, double *val_loss)
{
    if (r->pref)
        return trun_pref_evaluate(r, val_loss);
    double sum = 0;
    int64_t n = 0;
    char err[1024];
    for (int64_t row = 0; row < r->val_rows.n_rows; row += r->c->batch_size) {
        int64_t nb = r->val_rows.n_rows - row;
        if (nb > r->c->batch_size)
            nb = r->c->batch_size;
        if (!lt_batch_build(&r->val, &r->val_rows, row, nb, false, r->pad_id, &r->buf))
            return false;
        double ls = 0;
        int64_t nt = 0;
        if (lt_trainer_eval(r->tr, &r->buf.b, &ls, &nt, err, sizeof(err)) != LT_MODEL_OK) {
            trun_event(r, "error", "evaluation failed: %s", err);
            return false;
        }
        sum += ls;
        n += nt;
    }
    *val_loss = n ? sum / (double)n : NAN;
    return n > 0;
}

/* Evaluates, records, tracks the best and patience, warns on overfitting. Returns true when
 * early stopping says to stop. */
static bool eval_step(trun *r)
{
    double vl;
    if (!r->has_val || !evaluate(r, &vl))
        return false;
    double ppl = r->pref ? NAN : exp(vl); /* a preference loss has no perplexity */
    metric(r, "val_loss", vl);
    if (!r->pref)
        metric(r, "val_ppl", ppl);
    trun_flush_metrics(r);
    double tl = r->s.train_loss_n ? r->s.train_loss_sum / (double)r->s.train_loss_n : NAN;
    r->s.train_loss_sum = 0;
    r->s.train_loss_n = 0;
    if (r->s.n_hist == LT_CKPT_HISTORY) {
        memmove(r->s.hist_val, r->s.hist_val + 1, (LT_CKPT_HISTORY - 1) * sizeof(double));
        memmove(r->s.hist_train, r->s.hist_train + 1, (LT_CKPT_HISTORY - 1) * sizeof(double));
        r->s.n_hist--;
    }
    r->s.hist_val[r->s.n_hist] = vl;
    r->s.hist_train[r->s.n_hist] = tl;
    r->s.n_hist++;
    int k = r->c->overfit_window;
    if (r->s.n_hist >= k) {
        bool rising = true;
        for (int64_t i = r->s.n_hist - k + 1; i < r->s.n_hist; i++)
            if (!(r->s.hist_val[i] > r->s.hist_val[i - 1] &&
                  r->s.hist_train[i] < r->s.hist_train[i - 1]))
                rising = false;
        if (rising)
            trun_event(r, "overfit",
                       "validation loss rose for %d evaluations in a row (%.4f -> %.4f) while "
                       "the training loss fell: the model may be overfitting (fewer epochs, a "
                       "lower learning rate, more data or early stopping help)",
                       k - 1, r->s.hist_val[r->s.n_hist - k], vl);
    }
    bool improved = isnan(r->s.best_val) || vl < r->s.best_val;
    if (improved) {
        r->s.best_val = vl;
        r->s.best_step = r->s.step;
        r->s.evals_since_best = 0;
    } else {
        r->s.evals_since_best++;
    }
    r->res->best_val = r->s.best_val;
    if (r->o->on_progress) {
        lt_train_progress p = {0};
        p.run_id = r->run_id;
        p.step = r->s.step;
        p.total_steps = r->total_steps;
        p.epoch = r->s.epoch;
        p.is_eval = true;
        p.val_loss = vl;
        p.val_ppl = ppl;
        r->o->on_progress(r->o->ctx, &p);
    }
    if (improved && r->c->keep_best > 0)
        write_checkpoint(r, vl);
    return r->c->eval_patience > 0 && r->s.evals_since_best >= r->c->eval_patience;
}

/* ---- control ---- */

/* Handles pending control requests. Returns 1 to stop, 0 to go on. Pauses block here. */
static int poll_control(trun *r)
{
    bool paused = false;
    for (;;) {
        int64_t id;
        char cmd[32];
        lt_store_status s = lt_store_control_poll(r->st, r->run_id, &id, cmd, sizeof(cmd));
        if (s == LT_STORE_OK) {
            lt_store_control_ack(r->st, id);
            trun_event(r, "control", "%s requested at step %lld", cmd, (long long)r->s.step);
            if (strcmp(cmd, "stop") == 0)
                return 1;
            if (strcmp(cmd, "checkpoint") == 0)
                write_checkpoint(r, NAN);
            if (strcmp(cmd, "pause") == 0 && !paused) {
                paused = true;
                trun_flush_metrics(r);
                lt_store_run_set_status(r->st, r->run_id, "paused", "paused", 0);
            }
            if (strcmp(cmd, "resume") == 0 && paused) {
                paused = false;
                lt_store_run_set_status(r->st, r->run_id, "running", "", 0);
            }
            continue;
        }
        if (!paused)
            return 0;
        if (r->o->stop && *r->o->stop)
            return 1;
        usleep(200000);
    }
}

/* ---- the loop ---- */

/* Moves to the next epoch (or the next freeze round) when the plan is used up. */
static bool next_rows(trun *r)
{
    if (r->s.row < r->rows.n_rows)
        return true;
    r->s.epoch++;
    r->s.row = 0;
    lt_rows_free(&r->rows);
    return lt_rows_plan(&r->train, true, r->c->packing, r->seq_len, r->c->seed, r->s.epoch,
                        &r->rows);
}

static void finish(trun *r, const char *status, const char *msg)
{
    trun_flush_metrics(r);
    snprintf(r->res->status, sizeof(r->res->status), "%s", status);
    snprintf(r->res->message, sizeof(r->res->message), "%s", msg);
    r->res->steps = r->s.step;
    lt_store_run_set_status(r->st, r->run_id, status, msg, 0);
}

/* One optimizer step over up to grad_accum micro-batches. Returns false on a device error
 * (message in err). OUT *loss (mean over labelled tokens), *skipped. */
static bool one_step(trun *r, double *loss, double *gnorm, bool *skipped, int64_t *n_tok,
                     char *err, size_t errlen)
{
    if (r->pref)
        return trun_pref_step(r, loss, gnorm, skipped, n_tok, err, errlen);
    const lt_train_config *c = r->c;
    int64_t row0 = r->s.row;
    int64_t n_micro = 0, denom = 0;
    /* count the labelled tokens of the group first (the token-weighted mean's denominator) */
    for (int64_t row = row0; n_micro < c->grad_accum && row < r->rows.n_rows; n_micro++) {
        int64_t nb = r->rows.n_rows - row < c->batch_size ? r->rows.n_rows - row : c->batch_size;
        if (!lt_batch_build(&r->train, &r->rows, row, nb, c->packing, r->pad_id, &r->buf)) {
            snprintf(err, errlen, "out of memory building a batch");
            return false;
        }
        denom += r->buf.n_labels;
        row += nb;
    }
    double loss_sum = 0;
    int64_t tok_sum = 0;
    int64_t row = row0;
    for (int64_t m = 0; m < n_micro; m++) {
        int64_t nb = r->rows.n_rows - row < c->batch_size ? r->rows.n_rows - row : c->batch_size;
        lt_batch_build(&r->train, &r->rows, row, nb, c->packing, r->pad_id, &r->buf);
        double l = 0;
        int64_t nt = 0;
        if (lt_trainer_forward_backward(r->tr, &r->buf.b, denom, 1.0f, &l, &nt, err, errlen) !=
            LT_MODEL_OK)
            return false;
        loss_sum += l * (double)nt;
        tok_sum += nt;
        row += nb;
    }
    r->s.row = row;
    double lr = lt_schedule_lr(&r->sched, r->s.step);
    if (lt_trainer_step(r->tr, (float)lr, (float)c->max_grad_norm, gnorm, skipped, err,
                        errlen) != LT_MODEL_OK)
        return false;
    *loss = tok_sum ? loss_sum / (double)tok_sum : NAN;
    if (!isfinite(*loss))
        *skipped = true;
    *n_tok = tok_sum;
    return true;
}

void trun_loop(trun *r)
{
    const lt_train_config *c = r->c;
    char err[1024];
    r->t_start = trun_now();
    r->last_flush = r->t_start;
    double last_progress = 0;
    /* the steps the run comes to (epoch-based configs name none), for the dashboard's ETA */
    metric(r, "total_steps", (double)r->total_steps);
    while (r->s.step < r->total_steps) {
        if (!next_rows(r)) {
            finish(r, "failed", "out of memory planning the next epoch");
            return;
        }
        /* freeze "half": a new round swaps the trained half */
        if (c->method == LT_METHOD_FREEZE && c->freeze_kind == LT_FREEZE_HALF) {
            int64_t per = c->freeze_round_steps > 0 ? c->freeze_round_steps : r->steps_per_epoch;
            int64_t round = r->s.step / per;
            if (round != r->s.round) {
                r->s.round = round;
                if (!trun_make_trainer(r, err, sizeof(err))) {
                    finish(r, "failed", err);
                    return;
                }
                trun_event(r, "info", "round %lld: training the %s layers", (long long)round,
                           round % 2 ? "odd" : "even");
            }
        }
        double t0 = trun_now(), loss = NAN, gn = NAN;
        bool skipped = false;
        int64_t ntok = 0;
        double lr = lt_schedule_lr(&r->sched, r->s.step);
        if (!one_step(r, &loss, &gn, &skipped, &ntok, err, sizeof(err))) {
            char msg[1200];
            snprintf(msg, sizeof(msg), "step %lld failed: %s", (long long)r->s.step + 1, err);
            trun_event(r, "error", "%s", msg);
            finish(r, "failed", msg);
            return;
        }
        r->s.step++;
        double dt = trun_now() - t0;
        r->tokens_since_start += ntok;
        if (skipped) {
            r->s.nan_run++;
            trun_event(r, "nan", "step %lld: loss %g, gradient norm %g: not finite, update "
                       "skipped (%lld in a row)", (long long)r->s.step, loss, gn,
                       (long long)r->s.nan_run);
            if (r->s.nan_run >= c->nan_tolerance) {
                char msg[600];
                snprintf(msg, sizeof(msg),
                         "stopped after %lld non-finite steps in a row; the last good "
                         "checkpoint is intact. Likely causes: a learning rate too high "
                         "(now %g), half precision overflowing (train in f32 or bf16), no "
                         "gradient clipping (max_grad_norm), or bad samples",
                         (long long)r->s.nan_run, c->lr);
                trun_event(r, "error", "%s", msg);
                finish(r, "failed", msg);
                return;
            }
        } else {
            r->s.nan_run = 0;
            r->s.tokens_seen += ntok;
            r->s.train_loss_sum += loss;
            r->s.train_loss_n++;
            r->res->last_loss = loss;
        }
        double tps = dt > 0 ? (double)ntok / dt : 0;
        metric(r, "loss", loss);
        metric(r, "lr", lr);
        metric(r, "grad_norm", gn);
        metric(r, "tokens_per_s", tps);
        metric(r, "mem_bytes", (double)lt_device_mem_in_use(r->dev));
        metric(r, "host_mem_bytes", (double)lt_device_host_mem_in_use(r->dev));
        if (r->pref)
            trun_pref_metrics(r);
        double now = trun_now();
        if (now - r->last_flush >= 1.0 || r->n_metrics >= METRIC_BUF - 8)
            trun_flush_metrics(r);
        if (r->o->on_progress) {
            double el = now - r->t_start;
            lt_train_progress p = {0};
            p.run_id = r->run_id;
            p.step = r->s.step;
            p.total_steps = r->total_steps;
            p.epoch = r->s.epoch;
            p.loss = loss;
            p.lr = lr;
            p.grad_norm = gn;
            p.tokens_per_s = el > 0 ? (double)r->tokens_since_start / el : tps;
            p.eta_s = r->s.step > 0 ? el / (double)r->s.step *
                                          (double)(r->total_steps - r->s.step)
                                    : 0;
            (void)last_progress;
            r->o->on_progress(r->o->ctx, &p);
        }
        bool stop_early = false;
        if (c->eval_every > 0 && r->s.step % c->eval_every == 0)
            stop_early = eval_step(r);
        if (c->ckpt_every > 0 && r->s.step % c->ckpt_every == 0)
            write_checkpoint(r, NAN);
        if (stop_early && !r->ckpt_error[0]) {
            if (!write_checkpoint(r, NAN)) {
                finish(r, "failed", r->ckpt_error);
                return;
            }
            char msg[200];
            snprintf(msg, sizeof(msg), "early stopping: no better validation loss in %d "
                     "evaluations (best %.4f at step %lld)", c->eval_patience, r->s.best_val,
                     (long long)r->s.best_step);
            trun_event(r, "info", "%s", msg);
            finish(r, "done", msg);
            return;
        }
        bool stop = (r->o->stop && *r->o->stop) ||
                    (r->o->stop_after_step > 0 && r->s.step >= r->o->stop_after_step) ||
                    poll_control(r) == 1;
        if (!r->ckpt_error[0] && stop)
            write_checkpoint(r, NAN);
        if (r->ckpt_error[0]) {
            finish(r, "failed", r->ckpt_error);
            return;
        }
        if (stop) {
            char msg[200];
            snprintf(msg, sizeof(msg), "stopped at step %lld of %lld; continue with lathe "
                     "train --resume %lld", (long long)r->s.step, (long long)r->total_steps,
                     (long long)r->run_id);
            finish(r, "stopped", msg);
            return;
        }
    }
    if (r->has_val && !(c->eval_every > 0 && r->s.step % c->eval_every == 0))
        eval_step(r);
    if (!write_checkpoint(r, NAN)) {
        finish(r, "failed", r->ckpt_error);
        return;
    }
    char msg[1400];
    snprintf(msg, sizeof(msg), "finished %lld steps", (long long)r->s.step);
    if (c->method == LT_METHOD_LORA) {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/adapter", r->dir);
        if (lt_peft_write(r->tr, dir, c->model, err, sizeof(err)) == LT_MODEL_OK) {
            lt_store_checkpoint row = {0, r->run_id, r->s.step, dir, "adapter", NAN, 0};
            lt_store_checkpoint_add(r->st, &row, NULL);
            trun_event(r, "info", "LoRA adapter exported as a PEFT folder: %s", dir);
        } else {
            snprintf(msg, sizeof(msg), "finished %lld steps, but the adapter export failed: %s",
                     (long long)r->s.step, err);
            trun_event(r, "error", "%s", msg);
        }
    }
    finish(r, "done", msg);
}
