/*
 * view_train.c - the Train view: one run live. Loss curve (train and validation) with EMA,
 * log scale and zoom; learning rate and gradient norm curves on tall terminals; numbers
 * (step, progress, ETA, rates, memory); warnings (NaN, overfitting, a process that died);
 * events; and the pause/resume/stop/checkpoint requests, posted to the store for the trainer
 * to acknowledge.
 *
 * Polls only metric rows newer than the last seen step. update changes state; draw draws.
 */
#include "dash.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { M_LOSS, M_VAL, M_LR, M_GNORM, M_TPS, M_MEM, M_HOST, M_COUNT };
static const char *const METRIC[M_COUNT] = {"loss",         "val_loss",  "lr",
                                            "grad_norm",    "tokens_per_s", "mem_bytes",
                                            "host_mem_bytes"};
static const int64_t ZOOMS[] = {0, 100, 1000, 10000};
#define N_EVENTS 64

typedef struct ev_row {
    int64_t step;
    char kind[16];
    char message[240];
} ev_row;

typedef struct train_view {
    int64_t run_id;              /* shown; 0 before the first load */
    bool have_run;
    char name[64], status[24], method[16], model[200], device[32], message[240];
    int64_t pid, started_at, ended_at;
    int64_t max_steps, epochs;   /* from the config (max_steps, else the trainer's recorded
                                  * total_steps for epoch-based runs); 0 when unknown */
    bool dead;
    lt_series s[M_COUNT];
    double t_first, t_last;      /* wall time of the first and last loss rows */
    int64_t step_first;
    ev_row ev[N_EVENTS];
    int n_ev;
    bool nan_seen, overfit_seen;
    char pending[16];            /* oldest unacknowledged control request */
    bool ema, log_y;
    int zoom;
    char log_tail[2048];
} train_view;

static void *train_init(lt_dash *d)
{
    (void)d;
    return calloc(1, sizeof(train_view));
}

static void train_free(void *state)
{
    train_view *v = state;
    for (int i = 0; i < M_COUNT; i++)
        lt_series_free(&v->s[i]);
    free(v);
}

static void train_resize(void *state, const lt_layout *lay)
{
    (void)state;
    (void)lay;
}

static void copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

/* The newest run, when the view was opened without one. */
static int64_t newest_run(lt_dash *d)
{
    lt_store_iter *it = NULL;
    lt_store_run r;
    int64_t id = 0;
    if (lt_store_runs_iter(d->st, &it) != LT_STORE_OK)
        return 0;
    if (lt_store_runs_next(it, &r) == LT_STORE_OK)
        id = r.id;
    lt_store_iter_free(it);
    return id;
}

static void reset(train_view *v, int64_t run_id)
{
    for (int i = 0; i < M_COUNT; i++)
        lt_series_clear(&v->s[i]);
    v->run_id = run_id;
    v->have_run = false;
    v->n_ev = 0;
    v->nan_seen = v->overfit_seen = false;
    v->t_first = v->t_last = 0;
    v->log_tail[0] = '\0';
}

static void load_run(train_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    lt_store_run r;
    if (lt_store_run_get(d->st, v->run_id, &it, &r) != LT_STORE_OK) {
        v->have_run = false;
        return;
    }
    v->have_run = true;
    copy(v->name, sizeof v->name, r.name);
    copy(v->status, sizeof v->status, r.status);
    copy(v->method, sizeof v->method, r.method);
    copy(v->model, sizeof v->model, r.model_path);
    copy(v->device, sizeof v->device, r.device);
    copy(v->message, sizeof v->message, r.message);
    v->pid = r.pid;
    v->started_at = r.started_at;
    v->ended_at = r.ended_at;
    v->dead = lt_dash_run_gone(r.status, r.pid, r.message);
    cJSON *cfg = cJSON_Parse(r.config ? r.config : "{}");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(cfg, "max_steps");
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(cfg, "epochs");
    v->max_steps = cJSON_IsNumber(ms) ? (int64_t)ms->valuedouble : 0;
    v->epochs = cJSON_IsNumber(ep) ? (int64_t)ep->valuedouble : 0;
    cJSON_Delete(cfg);
    lt_store_iter_free(it);
    if (v->max_steps == 0) { /* epochs: the trainer records the steps they come to */
        lt_store_metric m;
        if (lt_store_metrics_iter_after(d->st, v->run_id, "total_steps", INT64_MIN, &it) ==
            LT_STORE_OK) {
            while (lt_store_metrics_next(it, &m) == LT_STORE_OK)
                v->max_steps = isfinite(m.value) && m.value > 0 ? (int64_t)m.value : 0;
            lt_store_iter_free(it);
        }
    }
}

static void load_metrics(train_view *v, lt_dash *d)
{
    for (int k = 0; k < M_COUNT; k++) {
        lt_series *s = &v->s[k];
        int64_t after = s->n ? s->step[s->n - 1] : INT64_MIN;
        lt_store_iter *it = NULL;
        if (lt_store_metrics_iter_after(d->st, v->run_id, METRIC[k], after, &it) != LT_STORE_OK)
            continue;
        lt_store_metric m;
        while (lt_store_metrics_next(it, &m) == LT_STORE_OK) {
            if (!lt_series_push(s, m.step, m.value))
                break;
            if (k == M_LOSS) {
                if (v->t_first == 0) {
                    v->t_first = m.t;
                    v->step_first = m.step;
                }
                v->t_last = m.t;
                if (!isfinite(m.value))
                    v->nan_seen = true;
            }
        }
        lt_store_iter_free(it);
    }
    /* validation loss rising three evaluations in a row */
    const lt_series *val = &v->s[M_VAL];
    if (val->n >= 3 && val->value[val->n - 1] > val->value[val->n - 2] &&
        val->value[val->n - 2] > val->value[val->n - 3])
        v->overfit_seen = true;
}

static void load_events(train_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    lt_store_run_event e;
    if (lt_store_run_events_iter(d->st, v->run_id, &it) != LT_STORE_OK)
        return;
    v->n_ev = 0;
    while (lt_store_run_events_next(it, &e) == LT_STORE_OK) {
        if (v->n_ev == N_EVENTS) {
            memmove(&v->ev[0], &v->ev[1], (N_EVENTS - 1) * sizeof(ev_row));
            v->n_ev--;
        }
        ev_row *w = &v->ev[v->n_ev++];
        w->step = e.step;
        copy(w->kind, sizeof w->kind, e.kind);
        copy(w->message, sizeof w->message, e.message);
        if (e.kind && strcmp(e.kind, "nan") == 0)
            v->nan_seen = true;
        if (e.kind && strcmp(e.kind, "overfit") == 0)
            v->overfit_seen = true;
    }
    lt_store_iter_free(it);
}

static bool train_update(void *state, lt_dash *d, bool changed)
{
    train_view *v = state;
    int64_t want = d->run_id ? d->run_id : newest_run(d);
    if (want != v->run_id) {
        reset(v, want);
        changed = true;
    }
    if (!changed || !v->run_id)
        return changed;
    load_run(v, d);
    if (!v->have_run)
        return true;
    load_metrics(v, d);
    load_events(v, d);
    int64_t cid;
    if (lt_store_control_poll(d->st, v->run_id, &cid, v->pending, sizeof v->pending) !=
        LT_STORE_OK)
        v->pending[0] = '\0';
    v->log_tail[0] = '\0';
    if (v->dead || strcmp(v->status, "failed") == 0)
        lt_dash_run_log_tail(d->workspace, v->run_id, 8, v->log_tail, sizeof v->log_tail);
    return true;
}

static double last_of(const lt_series *s, int64_t *step)
{
    if (!s->n)
        return NAN;
    if (step)
        *step = s->step[s->n - 1];
    return s->value[s->n - 1];
}

/* v with fmt, or "-" when there is no value yet. */
static const char *num(double v, const char *fmt, char *out, size_t outsz)
{
    if (isnan(v))
        snprintf(out, outsz, "-");
    else
        snprintf(out, outsz, fmt, v);
    return out;
}

static void draw_plot(const train_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    char title[160], zoom[32] = "";
    if (ZOOMS[v->zoom])
        snprintf(zoom, sizeof zoom, "  [last %lld]", (long long)ZOOMS[v->zoom]);
    snprintf(title, sizeof title, "loss  run %lld%s%s%s", (long long)v->run_id,
             v->ema ? "  [EMA]" : "", v->log_y ? "  [log]" : "", zoom);
    lt_dash_box(d, box, title, true);
    int x = in.x + 1;
    x += lt_dash_put(d, in.y, x, in.w - 1, LT_STYLE_SERIES1, "-- train loss  ");
    lt_dash_put(d, in.y, x, in.x + in.w - x, LT_STYLE_SERIES2, "-- val loss");
    const lt_series *ser[2] = {&v->s[M_LOSS], &v->s[M_VAL]};
    lt_plot_opts o = {.log_y = v->log_y, .ema = v->ema, .last_n = ZOOMS[v->zoom],
                      .ascii = !d->utf8};
    lt_plot p;
    if (!lt_plot_render(&p, in.w, in.h - 1, ser, 2, &o))
        return;
    lt_dash_plot(d, &p, in.y + 1, in.x);
    if (p.empty)
        lt_dash_put(d, in.y + in.h / 2, in.x + 12, in.w - 12, LT_STYLE_DIM,
                    v->run_id ? "waiting for the first steps..." : "no run to show");
    lt_plot_free(&p);
}

static void draw_aux(const train_view *v, const lt_dash *d, lt_rect box)
{
    int half = box.w / 2;
    lt_rect a = {box.y, box.x, box.h, half}, b = {box.y, box.x + half, box.h, box.w - half};
    const int keys[2] = {M_LR, M_GNORM};
    const char *titles[2] = {"learning rate", "gradient norm"};
    lt_rect boxes[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        lt_dash_box(d, boxes[k], titles[k], false);
        lt_rect in = lt_rect_inner(boxes[k]);
        const lt_series *ser[1] = {&v->s[keys[k]]};
        lt_plot_opts o = {.last_n = ZOOMS[v->zoom], .ascii = !d->utf8};
        lt_plot p;
        if (!lt_plot_render(&p, in.w, in.h, ser, 1, &o))
            continue;
        lt_dash_plot(d, &p, in.y, in.x);
        lt_plot_free(&p);
    }
}

static lt_style status_style(const train_view *v)
{
    if (v->dead || strcmp(v->status, "failed") == 0)
        return LT_STYLE_ERR;
    if (strcmp(v->status, "running") == 0)
        return LT_STYLE_OK;
    if (strcmp(v->status, "paused") == 0 || strcmp(v->status, "stopped") == 0)
        return LT_STYLE_WARN;
    return LT_STYLE_NORMAL;
}

static void draw_stats(const train_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    lt_dash_box(d, box, "status", false);
    if (!v->have_run) {
        lt_dash_put(d, in.y, in.x, in.w, LT_STYLE_DIM,
                    v->run_id ? "run not found" : "No runs yet: lathe train CONFIG --detach");
        return;
    }
    int y = in.y, end = in.y + in.h, w = in.w;
    char a[48], b[48];
    if (v->dead)
        lt_dash_put(d, y++, in.x, w, LT_STYLE_ERR, "FAILED: process gone");
    else
        lt_dash_putf(d, y++, in.x, w, status_style(v), "%s%s%s", v->status,
                     v->pending[0] ? "  (" : "", v->pending[0] ? "asked: " : "");
    if (v->pending[0] && !v->dead)
        lt_dash_putf(d, y - 1, in.x + (int)strlen(v->status) + 9, w - (int)strlen(v->status) - 9,
                     LT_STYLE_WARN, "%s, waiting)", v->pending);
    int64_t step = 0;
    double loss = last_of(&v->s[M_LOSS], &step);
    if (y < end) {
        if (v->max_steps > 0)
            lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "step   %lld / %lld", (long long)step,
                         (long long)v->max_steps);
        else
            lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "step   %lld  (%lld epochs)",
                         (long long)step, (long long)v->epochs);
    }
    if (y < end && v->max_steps > 0)
        lt_dash_bar(d, y++, in.x, w, (double)step / (double)v->max_steps, LT_STYLE_OK);
    double rate = (v->t_last > v->t_first && step > v->step_first)
                      ? (double)(step - v->step_first) / (v->t_last - v->t_first)
                      : 0;
    if (y < end) {
        if (strcmp(v->status, "running") == 0 && !v->dead && rate > 0 && v->max_steps > step) {
            lt_dash_duration((double)(v->max_steps - step) / rate, a, sizeof a);
            lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "ETA    %s  (%.2f steps/s)", a, rate);
        } else {
            lt_dash_duration(v->started_at ? (double)((v->ended_at ? v->ended_at : time(NULL)) -
                                                      v->started_at)
                                           : 0,
                             a, sizeof a);
            lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "time   %s", a);
        }
    }
    if (y < end)
        lt_dash_putf(d, y++, in.x, w, isfinite(loss) || !v->s[M_LOSS].n ? LT_STYLE_NORMAL
                                                                          : LT_STYLE_ERR,
                     "loss   %s",
                     v->s[M_LOSS].n && !isfinite(loss) ? "NaN/Inf" : num(loss, "%.4f", a, sizeof a));
    int64_t vstep = 0;
    double val = last_of(&v->s[M_VAL], &vstep);
    if (y < end && v->s[M_VAL].n)
        lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "val    %.4f (step %lld)", val,
                     (long long)vstep);
    if (y < end)
        lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "lr     %s",
                     num(last_of(&v->s[M_LR], NULL), "%.3g", a, sizeof a));
    if (y < end)
        lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "gnorm  %s",
                     num(last_of(&v->s[M_GNORM], NULL), "%.3g", a, sizeof a));
    if (y < end)
        lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "tok/s  %s",
                     num(last_of(&v->s[M_TPS], NULL), "%.0f", a, sizeof a));
    if (y < end) {
        double mem = last_of(&v->s[M_MEM], NULL);
        if (isfinite(mem))
            lt_dash_bytes(mem, b, sizeof b);
        else
            snprintf(b, sizeof b, "-");
        double host = last_of(&v->s[M_HOST], NULL); /* offloaded inputs, host-side table */
        char hb[32] = "";
        if (isfinite(host) && host > 0) {
            char t[24];
            lt_dash_bytes(host, t, sizeof t);
            snprintf(hb, sizeof hb, " + %s host", t);
        }
        lt_dash_putf(d, y++, in.x, w, LT_STYLE_NORMAL, "memory %s%s on %s", b, hb,
                     v->device[0] ? v->device : "?");
    }
    if (y < end)
        lt_dash_putf(d, y++, in.x, w, LT_STYLE_DIM, "%s %s", v->method, v->model);
    if (y < end && v->nan_seen)
        lt_dash_put(d, y++, in.x, w, LT_STYLE_ERR, "! NaN/Inf loss seen (steps skipped)");
    if (y < end && v->overfit_seen)
        lt_dash_put(d, y++, in.x, w, LT_STYLE_WARN, "! overfitting: val loss rising");
}

static void draw_events(const train_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    bool log = v->log_tail[0] != '\0';
    lt_dash_box(d, box, log ? "last log lines" : "events", false);
    if (log) {
        /* the last in.h lines of the tail */
        const char *p = v->log_tail;
        int total = 1;
        for (const char *q = p; *q; q++)
            total += *q == '\n';
        int skip = total - in.h, y = in.y;
        while (*p && y < in.y + in.h) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            if (skip-- <= 0) {
                char line[512];
                snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), p);
                lt_dash_put(d, y++, in.x, in.w, LT_STYLE_DIM, line);
            }
            p = nl ? nl + 1 : p + len;
        }
        return;
    }
    int first = v->n_ev > in.h ? v->n_ev - in.h : 0;
    if (v->n_ev == 0 && v->message[0])
        lt_dash_put(d, in.y, in.x, in.w, LT_STYLE_DIM, v->message);
    for (int i = first, y = in.y; i < v->n_ev; i++, y++) {
        const ev_row *e = &v->ev[i];
        lt_style st = strcmp(e->kind, "nan") == 0 || strcmp(e->kind, "error") == 0
                          ? LT_STYLE_ERR
                      : strcmp(e->kind, "overfit") == 0 || strcmp(e->kind, "warning") == 0
                          ? LT_STYLE_WARN
                          : LT_STYLE_NORMAL;
        char line[320];
        snprintf(line, sizeof line, "%6lld %-8s %s", (long long)e->step, e->kind, e->message);
        lt_dash_put(d, y, in.x, in.w, st, line);
    }
}

static void train_draw(const void *state, const lt_dash *d, const lt_layout *lay)
{
    const train_view *v = state;
    const lt_rect *r;
    if ((r = lt_layout_pane(lay, LT_PANE_PLOT)))
        draw_plot(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_AUX)))
        draw_aux(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_STATS)))
        draw_stats(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_EVENTS)))
        draw_events(v, d, *r);
}

static int post(train_view *v, lt_dash *d, const char *cmd)
{
    if (!v->have_run || v->dead ||
        (strcmp(v->status, "running") != 0 && strcmp(v->status, "paused") != 0)) {
        lt_dash_say(d, "run %lld is not running: nothing to %s", (long long)v->run_id, cmd);
        return LT_KEY_HANDLED;
    }
    int64_t id;
    if (lt_store_control_post(d->st, v->run_id, cmd, &id) != LT_STORE_OK) {
        lt_dash_say(d, "could not post %s: %s", cmd, lt_store_errmsg(d->st));
        return LT_KEY_HANDLED;
    }
    snprintf(v->pending, sizeof v->pending, "%s", cmd);
    lt_dash_say(d, "%s requested; the trainer acknowledges between steps", cmd);
    return LT_KEY_HANDLED;
}

static int train_key(void *state, lt_dash *d, int ch)
{
    train_view *v = state;
    switch (ch) {
    case 'e':
        v->ema = !v->ema;
        return LT_KEY_HANDLED;
    case 'L':
        v->log_y = !v->log_y;
        return LT_KEY_HANDLED;
    case 'z':
        v->zoom = (v->zoom + 1) % (int)(sizeof ZOOMS / sizeof *ZOOMS);
        return LT_KEY_HANDLED;
    case 'p':
        return post(v, d, "pause");
    case 'r':
        return post(v, d, "resume");
    case 's':
        return post(v, d, "stop");
    case 'c':
        return post(v, d, "checkpoint");
    case 27:
        d->switch_to = LT_VIEW_RUNS;
        return LT_KEY_HANDLED;
    }
    return LT_KEY_IGNORED;
}

static const char *train_footer(const void *state)
{
    (void)state;
    return "e EMA  L log  z zoom  p pause  r resume  s stop  c ckpt  Esc runs";
}

const lt_view_ops lt_view_train_ops = {
    LT_VIEW_TRAIN, train_init, train_free, train_resize, train_update, train_draw, train_key,
    train_footer, NULL,
};
