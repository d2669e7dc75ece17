/*
 * view_eval.c - the Eval view: every evaluation in the store as a table (system, dataset and
 * split, rows, loss, perplexity, exact match, ROUGE-L, BLEU, accuracy), sortable by any
 * metric; the selected evaluation's samples with prompt, reference and output side by side,
 * scrolled with the keyboard.
 *
 * e starts an evaluation: a form picks the dataset and split, one or more runs (Tab steps
 * through their names, comma-separated), the baselines (zero-shot, k-shot) and a row limit, and
 * `lathe eval` runs as a background job (dash_job.c) with its progress (--progress-file: rows
 * done over every system) under the table; its results join the table when it ends.
 *
 * Model outputs and prompts are untrusted: drawn through the sanitizer. update changes state;
 * draw draws.
 */
#include "dash.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES 300
#define SAMPLE_KEEP 400
#define MAX_NAMES 128
#define LT_EVAL_FORM_RUNS 8

enum { C_LOSS, C_PPL, C_EM, C_ROUGE, C_BLEU, C_ACC, C_COUNT };
static const char *const COL_KEY[C_COUNT] = {"loss", "ppl", "exact_match", "rougeL", "bleu",
                                             "accuracy"};
static const char *const COL_TITLE[C_COUNT] = {"loss", "ppl", "EM", "ROUGE-L", "BLEU", "acc"};
static const bool COL_LOWER_BETTER[C_COUNT] = {true, true, false, false, false, false};

typedef struct eval_row {
    int64_t id;
    char system[64], dataset[64], split[16];
    int64_t n_rows;
    double m[C_COUNT]; /* NaN when absent */
    char search[160];
} eval_row;

typedef struct sample_row {
    char prompt[SAMPLE_KEEP], reference[SAMPLE_KEEP], output[SAMPLE_KEEP];
} sample_row;

typedef struct eval_view {
    eval_row *rows;
    lt_list list;
    int sort_col;      /* -1: newest first */
    bool sort_reverse;
    int64_t loaded_id; /* eval whose samples are loaded */
    sample_row *samples;
    int n_samples;
    bool samples_focus;
    int scroll;
    lt_form form;              /* a new evaluation's options, while open */
    lt_dash_job job;           /* the evaluation started here */
    char ds_names[MAX_NAMES][96], run_names[MAX_NAMES][64];
    const char *ds_cands[MAX_NAMES], *run_cands[MAX_NAMES];
    int n_ds, n_runs;
} eval_view;

static const char *const SPLITS[] = {"test", "val", "train"};

static const char *row_text(const void *ctx, int i)
{
    return ((const eval_view *)ctx)->rows[i].search;
}

static void *eval_init(lt_dash *d)
{
    (void)d;
    eval_view *v = calloc(1, sizeof(eval_view));
    if (v)
        v->sort_col = -1;
    return v;
}

static void eval_free(void *state)
{
    eval_view *v = state;
    free(v->rows);
    free(v->samples);
    lt_dash_job_clear(&v->job);
    free(v);
}

static void eval_resize(void *state, const lt_layout *lay)
{
    eval_view *v = state;
    const lt_rect *r = lt_layout_pane(lay, LT_PANE_LIST);
    v->list.height = r ? r->h - 3 : 1;
    lt_list_fix(&v->list);
}

static void copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* Sort key of column c for row w: NaN rows last whatever the direction. */
static int sort_col_g;
static bool sort_rev_g;
static int cmp_rows(const void *a, const void *b)
{
    const eval_row *x = a, *y = b;
    if (sort_col_g < 0)
        return (x->id < y->id) - (x->id > y->id);
    double u = x->m[sort_col_g], w = y->m[sort_col_g];
    if (isnan(u) || isnan(w))
        return isnan(u) - isnan(w);
    int c = (u > w) - (u < w);
    if (!COL_LOWER_BETTER[sort_col_g])
        c = -c; /* best first */
    return sort_rev_g ? -c : c;
}

static void sort_rows(eval_view *v)
{
    int64_t sel_id = v->list.n ? v->rows[v->list.sel].id : 0;
    sort_col_g = v->sort_col;
    sort_rev_g = v->sort_reverse;
    if (v->list.n > 1)
        qsort(v->rows, (size_t)v->list.n, sizeof(eval_row), cmp_rows);
    for (int i = 0; i < v->list.n; i++)
        if (v->rows[i].id == sel_id)
            v->list.sel = i;
    lt_list_fix(&v->list);
}

static void load_evals(eval_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    eval_row *rows = NULL;
    int n = 0, cap = 0;
    if (lt_store_evals_iter(d->st, 0, &it) != LT_STORE_OK)
        return;
    lt_store_eval e;
    while (lt_store_evals_next(it, &e) == LT_STORE_OK) {
        if (n == cap) {
            int nc = cap ? cap * 2 : 32;
            eval_row *g = realloc(rows, (size_t)nc * sizeof(*g));
            if (!g)
                break;
            rows = g;
            cap = nc;
        }
        eval_row *w = &rows[n++];
        memset(w, 0, sizeof(*w));
        w->id = e.id;
        copy(w->split, sizeof w->split, e.split);
        cJSON *res = cJSON_Parse(e.results ? e.results : "{}");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(res, "metrics");
        copy(w->system, sizeof w->system, str_of(res, "system"));
        const char *ds = str_of(res, "dataset");
        double dv = num_of(res, "dataset_version");
        if (ds)
            snprintf(w->dataset, sizeof w->dataset, "%s v%.0f", ds, isnan(dv) ? 0 : dv);
        double nr = num_of(res, "n_rows");
        w->n_rows = isnan(nr) ? 0 : (int64_t)nr;
        for (int c = 0; c < C_COUNT; c++)
            w->m[c] = num_of(m, COL_KEY[c]);
        cJSON_Delete(res);
        snprintf(w->search, sizeof w->search, "%lld %s %s %s", (long long)w->id, w->system,
                 w->dataset, w->split);
    }
    lt_store_iter_free(it);
    free(v->rows);
    v->rows = rows;
    v->list.n = n;
    sort_rows(v);
}

static void load_samples(eval_view *v, lt_dash *d)
{
    free(v->samples);
    v->samples = NULL;
    v->n_samples = 0;
    v->scroll = 0;
    v->loaded_id = v->list.n ? v->rows[v->list.sel].id : 0;
    if (!v->loaded_id)
        return;
    lt_store_iter *it = NULL;
    if (lt_store_eval_samples_iter(d->st, v->loaded_id, &it) != LT_STORE_OK)
        return;
    v->samples = calloc(MAX_SAMPLES, sizeof(sample_row));
    lt_store_eval_sample s;
    while (v->samples && v->n_samples < MAX_SAMPLES &&
           lt_store_eval_samples_next(it, &s) == LT_STORE_OK) {
        sample_row *w = &v->samples[v->n_samples++];
        copy(w->prompt, sizeof w->prompt, s.prompt);
        copy(w->reference, sizeof w->reference, s.reference);
        copy(w->output, sizeof w->output, s.output);
    }
    lt_store_iter_free(it);
}

static bool eval_update(void *state, lt_dash *d, bool changed)
{
    eval_view *v = state;
    bool job_changed = lt_dash_job_poll(&v->job);
    if (job_changed && v->job.state != LT_JOB_RUNNING) {
        changed = true;
        lt_dash_say(d, "%s: %s", v->job.what, v->job.state == LT_JOB_DONE ? "done" : "FAILED");
        if (v->job.state == LT_JOB_DONE)
            v->sort_col = -1; /* newest first: the new results on top */
    }
    if (!changed)
        return job_changed || v->job.state == LT_JOB_RUNNING;
    load_evals(v, d);
    int64_t sel = v->list.n ? v->rows[v->list.sel].id : 0;
    if (sel != v->loaded_id)
        load_samples(v, d);
    return true;
}

static void draw_table(const eval_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    char title[96];
    snprintf(title, sizeof title, "evaluations (%d)%s%s%s", v->list.n,
             v->sort_col >= 0 ? "  sorted by " : "", v->sort_col >= 0 ? COL_TITLE[v->sort_col] : "",
             v->sort_col >= 0 && v->sort_reverse ? ", worst first" : "");
    lt_dash_box(d, box, title, !v->samples_focus);
    int fixed = 6 + 8 * C_COUNT + 7;
    int name_w = (in.w - fixed) / 2 > 8 ? (in.w - fixed) / 2 : 8;
    int x = in.x + lt_dash_putf(d, in.y, in.x, in.w, LT_STYLE_TITLE, "%-5s %-*.*s %-*.*s %6s",
                                "id", name_w, name_w, "system", name_w, name_w, "dataset", "rows");
    for (int c = 0; c < C_COUNT; c++)
        x += lt_dash_putf(d, in.y, x, in.x + in.w - x,
                          c == v->sort_col ? LT_STYLE_WARN : LT_STYLE_TITLE, " %7s", COL_TITLE[c]);
    if (v->list.n == 0)
        lt_dash_put(d, in.y + 1, in.x, in.w, LT_STYLE_DIM,
                    "No evaluations yet: lathe eval --help shows how to run one.");
    for (int row = 0; row < in.h - 1 && v->list.top + row < v->list.n; row++) {
        int i = v->list.top + row;
        const eval_row *w = &v->rows[i];
        int y = in.y + 1 + row;
        bool sel = i == v->list.sel;
        lt_style st = sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL;
        if (sel)
            lt_dash_fill(d, y, in.x, in.w, LT_STYLE_SELECT);
        char ds[96];
        snprintf(ds, sizeof ds, "%s%s%s", w->dataset, w->split[0] ? "/" : "", w->split);
        x = in.x + lt_dash_putf(d, y, in.x, in.w, st, "%-5lld ", (long long)w->id);
        lt_dash_put(d, y, x, name_w, st, w->system);
        x += name_w + 1;
        lt_dash_put(d, y, x, name_w, st, ds);
        x += name_w;
        x += lt_dash_putf(d, y, x, in.x + in.w - x, st, " %6lld", (long long)w->n_rows);
        for (int c = 0; c < C_COUNT; c++) {
            if (isnan(w->m[c]))
                x += lt_dash_putf(d, y, x, in.x + in.w - x, st, " %7s", "-");
            else if (fabs(w->m[c]) >= 1e5) /* a perplexity in the millions keeps its column */
                x += lt_dash_putf(d, y, x, in.x + in.w - x, st, " %7.1e", w->m[c]);
            else
                x += lt_dash_putf(d, y, x, in.x + in.w - x, st,
                                  c == C_PPL ? " %7.2f" : " %7.4f", w->m[c]);
        }
    }
    lt_list_draw_search(&v->list, d, box.y + box.h - 1, box.x + 2, box.w - 4);
}

/* Wraps text into w columns over at most h rows starting at (y, x). */
static void draw_wrapped(const lt_dash *d, int y, int x, int w, int h, const char *text,
                         lt_style style)
{
    char line[256];
    const char *p = text;
    for (int r = 0; r < h && *p; r++) {
        /* take up to w bytes; the sanitizer measures in columns and stops at w */
        size_t len = strlen(p);
        size_t take = len < sizeof line - 1 ? len : sizeof line - 1;
        memcpy(line, p, take);
        line[take] = '\0';
        int used = lt_dash_put(d, y + r, x, w, style, line);
        /* advance by about the columns drawn; escapes make the input shorter than the output */
        size_t adv = 0;
        int cols = 0;
        while (p[adv] && cols < used) {
            unsigned char c = (unsigned char)p[adv];
            cols += (c < 0x20 || c == 0x7f) ? 4 : ((c & 0xc0) != 0x80);
            adv++;
        }
        while (p[adv] && ((unsigned char)p[adv] & 0xc0) == 0x80)
            adv++;
        if (adv == 0)
            break;
        p += adv;
    }
}

static void draw_samples(const eval_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    char title[64];
    snprintf(title, sizeof title, "samples (%d)", v->n_samples);
    lt_dash_box(d, box, title, v->samples_focus);
    if (v->n_samples == 0) {
        lt_dash_put(d, in.y, in.x, in.w, LT_STYLE_DIM, "no samples for this evaluation");
        return;
    }
    int cw = (in.w - 2) / 3;
    const char *heads[3] = {"prompt", "reference", "output"};
    for (int k = 0; k < 3; k++)
        lt_dash_put(d, in.y, in.x + k * (cw + 1), cw, LT_STYLE_TITLE, heads[k]);
    const int per = 4;
    for (int i = v->scroll, y = in.y + 1; i < v->n_samples && y + per <= in.y + in.h; i++) {
        const sample_row *s = &v->samples[i];
        lt_dash_putf(d, y, in.x, in.w, LT_STYLE_DIM, "#%d", i + 1);
        draw_wrapped(d, y + 1, in.x, cw, per - 1, s->prompt, LT_STYLE_NORMAL);
        draw_wrapped(d, y + 1, in.x + cw + 1, cw, per - 1, s->reference, LT_STYLE_NORMAL);
        draw_wrapped(d, y + 1, in.x + 2 * (cw + 1), cw, per - 1, s->output,
                     strcmp(s->output, s->reference) == 0 ? LT_STYLE_OK : LT_STYLE_WARN);
        y += per;
    }
}

static void eval_draw(const void *state, const lt_dash *d, const lt_layout *lay)
{
    const eval_view *v = state;
    const lt_rect *r;
    if ((r = lt_layout_pane(lay, LT_PANE_LIST)))
        draw_table(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_EVENTS)))
        draw_samples(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_JOBS))) {
        lt_dash_box(d, *r, "new evaluation (e)", false);
        lt_dash_job_draw(d, &v->job, lt_rect_inner(*r));
    }
    if (v->form.open)
        lt_form_draw(&v->form, d);
}

/* ---- starting an evaluation ---- */

static void load_names(eval_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    v->n_ds = v->n_runs = 0;
    lt_store_version s;
    if (lt_store_datasets_iter(d->st, &it) == LT_STORE_OK) {
        while (v->n_ds < MAX_NAMES && lt_store_datasets_next(it, &s) == LT_STORE_OK) {
            copy(v->ds_names[v->n_ds], sizeof v->ds_names[0], s.name);
            v->ds_cands[v->n_ds] = v->ds_names[v->n_ds];
            v->n_ds++;
        }
        lt_store_iter_free(it);
    }
    lt_store_run r;
    if (lt_store_runs_iter(d->st, &it) == LT_STORE_OK) {
        while (v->n_runs < MAX_NAMES && lt_store_runs_next(it, &r) == LT_STORE_OK) {
            /* names with a comma or none at all go by id */
            if (r.name && *r.name && !strchr(r.name, ','))
                copy(v->run_names[v->n_runs], sizeof v->run_names[0], r.name);
            else
                snprintf(v->run_names[v->n_runs], sizeof v->run_names[0], "%lld",
                         (long long)r.id);
            v->run_cands[v->n_runs] = v->run_names[v->n_runs];
            v->n_runs++;
        }
        lt_store_iter_free(it);
    }
}

static void open_form(eval_view *v, lt_dash *d)
{
    if (v->job.state == LT_JOB_RUNNING) {
        lt_dash_say(d, "an evaluation is running; wait for it to finish");
        return;
    }
    load_names(v, d);
    if (v->n_ds == 0) {
        lt_dash_say(d, "no datasets to evaluate on: import one in the Data view");
        return;
    }
    lt_form *f = &v->form;
    lt_form_init(f, "new evaluation",
                 "runs: ids or names, comma-separated; baselines: zero, kshot:K or none");
    lt_form_field *x = lt_form_add(f, "data", "dataset", LT_FIELD_NAME, v->ds_names[0]);
    x->cands = v->ds_cands;
    x->n_cands = v->n_ds;
    x = lt_form_add(f, "split", "split", LT_FIELD_NAME, "test");
    x->cands = SPLITS;
    x->n_cands = 3;
    x = lt_form_add(f, "runs", "runs", LT_FIELD_NAME, v->n_runs ? v->run_names[0] : "");
    x->cands = v->run_cands;
    x->n_cands = v->n_runs;
    lt_form_add(f, "baselines", "baselines", LT_FIELD_TEXT, "zero");
    lt_form_add(f, "max-rows", "rows at most", LT_FIELD_TEXT, "");
    lt_form_add(f, "model", "model folder", LT_FIELD_PATH, "");
}

static bool in_list(const char *s, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static bool submit(eval_view *v, lt_dash *d)
{
    lt_form *f = &v->form;
    char *argv[64];
    char runs[LT_EVAL_FORM_RUNS][64];
    char rows[32];
    int n = 0, nr = 0;
    const char *ds = lt_form_get(f, "data"), *split = lt_form_get(f, "split");
    const char *rl = lt_form_get(f, "runs"), *bl = lt_form_get(f, "baselines");
    const char *model = lt_form_get(f, "model");
    if (!in_list(ds, v->ds_cands, v->n_ds)) {
        snprintf(f->error, sizeof f->error, "dataset: no dataset '%.60s' (Tab steps through them)",
                 ds);
        f->cur = 0;
        return false;
    }
    if (!*split) {
        snprintf(f->error, sizeof f->error, "split: test, val or train");
        f->cur = 1;
        return false;
    }
    for (const char *p = rl; *p;) { /* runs, comma-separated */
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == ' ')
            len--;
        if (!len)
            break;
        if (nr == LT_EVAL_FORM_RUNS || len >= sizeof runs[0]) {
            snprintf(f->error, sizeof f->error, "runs: at most %d names", LT_EVAL_FORM_RUNS);
            f->cur = 2;
            return false;
        }
        snprintf(runs[nr], sizeof runs[0], "%.*s", (int)len, p);
        if (!in_list(runs[nr], v->run_cands, v->n_runs)) {
            snprintf(f->error, sizeof f->error, "runs: no run '%.60s' (Tab steps through them)",
                     runs[nr]);
            f->cur = 2;
            return false;
        }
        nr++;
        p += strcspn(p, ",");
    }
    if (nr == 0 && !*model) {
        snprintf(f->error, sizeof f->error,
                 "model folder: needed when no run is named (the baselines run on it)");
        f->cur = 5;
        return false;
    }
    double mr = 0;
    int got = lt_form_number(f, "max-rows", 1, 1e9, &mr);
    if (got < 0)
        return false;
    argv[n++] = "lathe";
    argv[n++] = "eval";
    argv[n++] = "--data";
    argv[n++] = (char *)ds;
    argv[n++] = "--split";
    argv[n++] = (char *)split;
    for (int i = 0; i < nr; i++) {
        argv[n++] = "--run";
        argv[n++] = runs[i];
    }
    if (*model) {
        argv[n++] = "--model";
        argv[n++] = (char *)model;
    }
    argv[n++] = "--baselines";
    argv[n++] = (char *)(*bl ? bl : "none");
    if (got > 0) {
        snprintf(rows, sizeof rows, "%.0f", mr);
        argv[n++] = "--max-rows";
        argv[n++] = rows;
    }
    argv[n++] = "--samples";
    argv[n++] = "0";
    argv[n++] = "--workspace";
    argv[n++] = (char *)d->workspace;
    argv[n] = NULL;
    char what[128];
    snprintf(what, sizeof what, "eval on %.40s/%.10s: %d run%s, baselines %.30s", ds, split, nr,
             nr == 1 ? "" : "s", *bl ? bl : "none");
    lt_dash_job_clear(&v->job);
    if (!lt_dash_job_start(&v->job, d->workspace, what, argv, true)) {
        snprintf(f->error, sizeof f->error, "%s", v->job.result[0]);
        return false;
    }
    f->open = false;
    return true;
}

static int eval_key(void *state, lt_dash *d, int ch)
{
    eval_view *v = state;
    if (v->form.open) {
        int r = lt_form_key(&v->form, ch);
        if (r == LT_FORM_CANCEL)
            v->form.open = false;
        else if (r == LT_FORM_SUBMIT)
            submit(v, d);
        return LT_KEY_HANDLED | LT_KEY_MODAL;
    }
    if (v->samples_focus) {
        switch (ch) {
        case 27:
            v->samples_focus = false;
            return LT_KEY_HANDLED;
        case KEY_UP:
        case 'k':
            if (v->scroll > 0)
                v->scroll--;
            return LT_KEY_HANDLED;
        case KEY_DOWN:
        case 'j':
            if (v->scroll + 1 < v->n_samples)
                v->scroll++;
            return LT_KEY_HANDLED;
        }
        return LT_KEY_IGNORED;
    }
    int sel = v->list.sel;
    int r = lt_list_key(&v->list, ch, row_text, v);
    if (r != LT_KEY_IGNORED) {
        if (v->list.sel != sel)
            load_samples(v, d);
        return r;
    }
    switch (ch) {
    case 'e':
        open_form(v, d);
        return LT_KEY_HANDLED;
    case 's':
        v->sort_col = v->sort_col + 1 >= C_COUNT ? -1 : v->sort_col + 1;
        sort_rows(v);
        return LT_KEY_HANDLED;
    case 'r':
        v->sort_reverse = !v->sort_reverse;
        sort_rows(v);
        return LT_KEY_HANDLED;
    case '\n':
    case '\r':
    case KEY_ENTER:
        if (v->n_samples > 0)
            v->samples_focus = true;
        return LT_KEY_HANDLED;
    }
    return LT_KEY_IGNORED;
}

static const char *eval_footer(const void *state)
{
    const eval_view *v = state;
    if (v->form.open)
        return "";
    return v->samples_focus ? "Up/Down scroll samples  Esc back"
                            : "e evaluate  s sort  r reverse  Enter samples  / search";
}

static int eval_mouse(void *state, lt_dash *d, int kind, int y, int x)
{
    eval_view *v = state;
    if (v->form.open)
        return LT_KEY_IGNORED;
    const lt_rect *r = lt_layout_pane(&d->lay, LT_PANE_LIST);
    if (r && lt_list_mouse_keys(&v->list, kind, y, x, *r, r->y + 2, eval_key, v, d)) {
        v->samples_focus = false;
        return LT_KEY_HANDLED;
    }
    r = lt_layout_pane(&d->lay, LT_PANE_EVENTS);
    if (r && y >= r->y && y < r->y + r->h && x >= r->x && x < r->x + r->w) {
        if (kind == LT_MOUSE_WHEEL_UP && v->scroll > 0)
            v->scroll--;
        else if (kind == LT_MOUSE_WHEEL_DOWN && v->scroll + 1 < v->n_samples)
            v->scroll++;
        return LT_KEY_HANDLED;
    }
    return LT_KEY_IGNORED;
}

const lt_view_ops lt_view_eval_ops = {
    LT_VIEW_EVAL, eval_init, eval_free, eval_resize, eval_update, eval_draw, eval_key,
    eval_footer, eval_mouse,
};
