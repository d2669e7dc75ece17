/*
 * view_runs.c - the Runs view: every run with status, method, model, dataset, best validation
 * loss and duration; the selected run's detail (with the last log lines of a run that died
 * without a word); up to four marked runs' loss curves overlaid; two runs' configs as a diff.
 * Also the run helpers the Train view shares (dead-process check, log tail).
 *
 * Reads through store functions only; update changes state, draw only draws.
 */
#include "dash.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_MARKS 4
#define MAX_DIFF 200

bool lt_dash_run_dead(const char *status, int64_t pid)
{
    if (!status || (strcmp(status, "running") != 0 && strcmp(status, "paused") != 0))
        return false;
    if (pid <= 0)
        return true;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

bool lt_dash_run_gone(const char *status, int64_t pid, const char *message)
{
    return lt_dash_run_dead(status, pid) ||
           (status && strcmp(status, "failed") == 0 && message &&
            strncmp(message, "process gone", 12) == 0);
}

bool lt_dash_run_log_tail(const char *workspace, int64_t run_id, int n, char *out,
                          size_t outsz)
{
    char dir[4096], best[4608] = "", path[4608];
    time_t best_t = 0;
    bool ok = false;
    if (outsz)
        out[0] = '\0';
    snprintf(dir, sizeof dir, "%s/runs/%lld", workspace, (long long)run_id);
    DIR *dh = opendir(dir);
    if (!dh)
        return false;
    struct dirent *e;
    while ((e = readdir(dh))) {
        size_t len = strlen(e->d_name);
        struct stat sb;
        if (len < 5 || strcmp(e->d_name + len - 4, ".log") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_mtime >= best_t) {
            best_t = sb.st_mtime;
            snprintf(best, sizeof best, "%s", path);
        }
    }
    closedir(dh);
    if (!best[0])
        return false;
    FILE *f = fopen(best, "rb");
    if (!f)
        return false;
    /* the last 8 KiB hold the last lines of any sane log */
    char buf[8192];
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    }
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
        buf[--got] = '\0';
    size_t start = got;
    for (int lines = 0; start > 0; start--)
        if (buf[start - 1] == '\n' && ++lines == n)
            break;
    snprintf(out, outsz, "%s", buf + start);
    ok = true;
    return ok;
}

typedef struct run_row {
    int64_t id;
    char name[64], status[24], method[16], model[160], dataset[80], device[32];
    char message[200];
    char search[400];
    double best_val, last_loss;
    int64_t best_step, last_step;
    double duration;
    int64_t created_at;
    bool has_val, has_loss, dead;
} run_row;

typedef struct runs_view {
    run_row *rows;
    lt_list list;
    int64_t marks[MAX_MARKS];
    int n_marks;
    lt_series curves[MAX_MARKS];
    int64_t curve_run[MAX_MARKS];
    const char *curve_name[MAX_MARKS];
    int n_curves;
    bool diff;
    char *diff_lines[MAX_DIFF];
    int n_diff;
    char log_tail[2048];
    int64_t log_run;
} runs_view;

static const char *row_text(const void *ctx, int i)
{
    const runs_view *v = ctx;
    return v->rows[i].search;
}

static void copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static const char *basename_of(const char *p)
{
    if (!p)
        return "";
    const char *s = strrchr(p, '/');
    while (s && s[1] == '\0' && s > p) { /* "models/gpt2/" */
        const char *q = s - 1;
        while (q > p && *q != '/')
            q--;
        return *q == '/' ? q + 1 : q;
    }
    return s ? s + 1 : p;
}

/* Re-reads every run. */
static void load_runs(runs_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    run_row *rows = NULL;
    int n = 0, cap = 0;
    if (lt_store_runs_iter(d->st, &it) != LT_STORE_OK)
        return;
    lt_store_run r;
    time_t now = time(NULL);
    while (lt_store_runs_next(it, &r) == LT_STORE_OK) {
        if (n == cap) {
            int nc = cap ? cap * 2 : 32;
            run_row *g = realloc(rows, (size_t)nc * sizeof(*g));
            if (!g)
                break;
            rows = g;
            cap = nc;
        }
        run_row *w = &rows[n++];
        memset(w, 0, sizeof(*w));
        w->id = r.id;
        copy(w->name, sizeof w->name, r.name);
        copy(w->status, sizeof w->status, r.status);
        copy(w->method, sizeof w->method, r.method);
        copy(w->model, sizeof w->model, basename_of(r.model_path));
        copy(w->device, sizeof w->device, r.device);
        copy(w->message, sizeof w->message, r.message);
        w->created_at = r.created_at;
        w->dead = lt_dash_run_gone(r.status, r.pid, r.message);
        int64_t end = r.ended_at ? r.ended_at : (w->dead ? r.started_at : (int64_t)now);
        w->duration = r.started_at ? (double)(end - r.started_at) : 0;
        if (r.dataset_version_id)
            lt_store_version_label(d->st, r.dataset_version_id, w->dataset, sizeof w->dataset);
    }
    lt_store_iter_free(it);
    for (int i = 0; i < n; i++) {
        run_row *w = &rows[i];
        int64_t cnt;
        double mn, last;
        int64_t mn_step, last_step;
        if (lt_store_metric_summary(d->st, w->id, "val_loss", &cnt, &last, &last_step, &mn,
                                    &mn_step) == LT_STORE_OK && cnt > 0) {
            w->has_val = true;
            w->best_val = mn;
            w->best_step = mn_step;
        }
        if (lt_store_metric_summary(d->st, w->id, "loss", &cnt, &last, &last_step, &mn,
                                    &mn_step) == LT_STORE_OK && cnt > 0) {
            w->has_loss = true;
            w->last_loss = last;
            w->last_step = last_step;
        }
        snprintf(w->search, sizeof w->search, "%lld %s %s %s %s %s", (long long)w->id, w->name,
                 w->status, w->method, w->model, w->dataset);
    }
    free(v->rows);
    v->rows = rows;
    v->list.n = n;
    lt_list_fix(&v->list);
}

/* Which curves the plot pane shows: the marked runs' training loss, or the selected run's
 * training and validation loss. Keeps series already loaded and fetches only new rows. */
static void load_curves(runs_view *v, lt_dash *d, bool changed)
{
    int64_t want_run[MAX_MARKS];
    const char *want_name[MAX_MARKS];
    int n = 0;
    if (v->n_marks > 0) {
        for (int i = 0; i < v->n_marks; i++) {
            want_run[n] = v->marks[i];
            want_name[n++] = "loss";
        }
    } else if (v->list.n > 0) {
        want_run[0] = want_run[1] = v->rows[v->list.sel].id;
        want_name[0] = "loss";
        want_name[1] = "val_loss";
        n = 2;
    }
    bool same = n == v->n_curves;
    for (int i = 0; same && i < n; i++)
        same = want_run[i] == v->curve_run[i] && strcmp(want_name[i], v->curve_name[i]) == 0;
    if (same && !changed)
        return;
    for (int i = 0; i < n; i++) {
        if (!same) {
            lt_series_clear(&v->curves[i]);
            v->curve_run[i] = want_run[i];
            v->curve_name[i] = want_name[i];
        }
        lt_series *s = &v->curves[i];
        int64_t after = s->n ? s->step[s->n - 1] : INT64_MIN;
        lt_store_iter *it = NULL;
        if (lt_store_metrics_iter_after(d->st, want_run[i], want_name[i], after, &it) !=
            LT_STORE_OK)
            continue;
        lt_store_metric m;
        while (lt_store_metrics_next(it, &m) == LT_STORE_OK)
            if (!lt_series_push(s, m.step, m.value))
                break;
        lt_store_iter_free(it);
    }
    v->n_curves = n;
}

static void free_diff(runs_view *v)
{
    for (int i = 0; i < v->n_diff; i++)
        free(v->diff_lines[i]);
    v->n_diff = 0;
}

/* Flattens a JSON config into "a.b.c" -> printed value pairs (parallel arrays). */
static void flatten(const cJSON *o, const char *prefix, char **keys, char **vals, int *n, int max)
{
    for (const cJSON *c = o ? o->child : NULL; c && *n < max; c = c->next) {
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", c->string ? c->string : "?");
        if (cJSON_IsObject(c)) {
            flatten(c, key, keys, vals, n, max);
            continue;
        }
        char *val = cJSON_PrintUnformatted(c);
        keys[*n] = strdup(key);
        vals[*n] = val;
        if (!keys[*n] || !vals[*n]) {
            free(keys[*n]);
            free(vals[*n]);
            return;
        }
        (*n)++;
    }
}

/* Builds the diff of two runs' configs: one line per key whose values differ. */
static void build_diff(runs_view *v, lt_dash *d, int64_t a, int64_t b)
{
    enum { MAXK = 256 };
    char *ka[MAXK], *va[MAXK], *kb[MAXK], *vb[MAXK];
    int na = 0, nb = 0;
    cJSON *ja = NULL, *jb = NULL;
    lt_store_iter *it = NULL;
    lt_store_run r;
    free_diff(v);
    if (lt_store_run_get(d->st, a, &it, &r) == LT_STORE_OK) {
        ja = cJSON_Parse(r.config ? r.config : "{}");
        lt_store_iter_free(it);
    }
    if (lt_store_run_get(d->st, b, &it, &r) == LT_STORE_OK) {
        jb = cJSON_Parse(r.config ? r.config : "{}");
        lt_store_iter_free(it);
    }
    flatten(ja, "", ka, va, &na, MAXK);
    flatten(jb, "", kb, vb, &nb, MAXK);
    char line[512];
    snprintf(line, sizeof line, "config diff: run %lld | run %lld", (long long)a, (long long)b);
    v->diff_lines[v->n_diff++] = strdup(line);
    for (int i = 0; i < na && v->n_diff < MAX_DIFF; i++) {
        const char *other = NULL;
        for (int j = 0; j < nb; j++)
            if (strcmp(ka[i], kb[j]) == 0)
                other = vb[j];
        if (other && strcmp(other, va[i]) == 0)
            continue;
        snprintf(line, sizeof line, "%s: %s | %s", ka[i], va[i], other ? other : "(none)");
        v->diff_lines[v->n_diff++] = strdup(line);
    }
    for (int j = 0; j < nb && v->n_diff < MAX_DIFF; j++) {
        bool found = false;
        for (int i = 0; i < na && !found; i++)
            found = strcmp(ka[i], kb[j]) == 0;
        if (!found) {
            snprintf(line, sizeof line, "%s: (none) | %s", kb[j], vb[j]);
            v->diff_lines[v->n_diff++] = strdup(line);
        }
    }
    if (v->n_diff == 1)
        v->diff_lines[v->n_diff++] = strdup("(the configs are the same)");
    for (int i = 0; i < na; i++)
        free(ka[i]), free(va[i]);
    for (int j = 0; j < nb; j++)
        free(kb[j]), free(vb[j]);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    /* strdup may have failed: drop the holes */
    int k = 0;
    for (int i = 0; i < v->n_diff; i++)
        if (v->diff_lines[i])
            v->diff_lines[k++] = v->diff_lines[i];
    v->n_diff = k;
}

static void *runs_init(lt_dash *d)
{
    (void)d;
    return calloc(1, sizeof(runs_view));
}

static void runs_free(void *state)
{
    runs_view *v = state;
    free(v->rows);
    for (int i = 0; i < MAX_MARKS; i++)
        lt_series_free(&v->curves[i]);
    free_diff(v);
    free(v);
}

static void runs_resize(void *state, const lt_layout *lay)
{
    runs_view *v = state;
    const lt_rect *r = lt_layout_pane(lay, LT_PANE_LIST);
    v->list.height = r ? r->h - 3 : 1; /* border and the column header */
    lt_list_fix(&v->list);
}

static void refresh_log(runs_view *v, lt_dash *d)
{
    v->log_tail[0] = '\0';
    v->log_run = 0;
    if (v->list.n == 0 || !v->rows[v->list.sel].dead)
        return;
    v->log_run = v->rows[v->list.sel].id;
    lt_dash_run_log_tail(d->workspace, v->log_run, 6, v->log_tail, sizeof v->log_tail);
}

static bool runs_update(void *state, lt_dash *d, bool changed)
{
    runs_view *v = state;
    if (!changed)
        return false;
    load_runs(v, d);
    load_curves(v, d, true);
    refresh_log(v, d);
    return true;
}

static bool is_marked(const runs_view *v, int64_t id)
{
    for (int i = 0; i < v->n_marks; i++)
        if (v->marks[i] == id)
            return true;
    return false;
}

static lt_style status_style(const run_row *w)
{
    if (w->dead || strcmp(w->status, "failed") == 0)
        return LT_STYLE_ERR;
    if (strcmp(w->status, "running") == 0)
        return LT_STYLE_OK;
    if (strcmp(w->status, "paused") == 0 || strcmp(w->status, "stopped") == 0)
        return LT_STYLE_WARN;
    return LT_STYLE_NORMAL;
}

static void draw_list(const runs_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    char title[64];
    snprintf(title, sizeof title, "runs (%d)", v->list.n);
    lt_dash_box(d, box, title, true);
    lt_dash_putf(d, in.y, in.x, in.w, LT_STYLE_TITLE, "  %-5s %-9s %-7s %-16s %-16s %9s %8s",
                 "id", "status", "method", "model", "dataset", "best val", "time");
    if (v->list.n == 0)
        lt_dash_put(d, in.y + 1, in.x + 1, in.w - 2, LT_STYLE_DIM,
                    "No runs yet. Start one with lathe train CONFIG --detach.");
    for (int row = 0; row < in.h - 1 && v->list.top + row < v->list.n; row++) {
        int i = v->list.top + row;
        const run_row *w = &v->rows[i];
        int y = in.y + 1 + row;
        bool sel = i == v->list.sel;
        char val[16] = "-", dur[16];
        if (w->has_val)
            snprintf(val, sizeof val, "%.4f", w->best_val);
        lt_dash_duration(w->duration, dur, sizeof dur);
        if (sel)
            lt_dash_fill(d, y, in.x, in.w, LT_STYLE_SELECT);
        lt_style st = sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL;
        int x = in.x;
        x += lt_dash_putf(d, y, x, in.w, st, "%c %-5lld ", is_marked(v, w->id) ? '*' : ' ',
                          (long long)w->id);
        lt_dash_putf(d, y, x, 10, sel ? st : status_style(w), "%-9s",
                     w->dead ? "failed?" : w->status);
        x += 10;
        lt_dash_putf(d, y, x, in.x + in.w - x, st, "%-7.7s %-16.16s %-16.16s %9s %8s", w->method,
                     w->model, w->dataset[0] ? w->dataset : "-", val, dur);
    }
    lt_list_draw_search(&v->list, d, box.y + box.h - 1, box.x + 2, box.w - 4);
}

static void draw_detail(const runs_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    if (v->diff && v->n_diff > 0) {
        lt_dash_box(d, box, "config diff", true);
        for (int i = 0; i < v->n_diff && i < in.h; i++)
            lt_dash_put(d, in.y + i, in.x, in.w, i == 0 ? LT_STYLE_TITLE : LT_STYLE_NORMAL,
                        v->diff_lines[i]);
        return;
    }
    lt_dash_box(d, box, "run", false);
    if (v->list.n == 0)
        return;
    const run_row *w = &v->rows[v->list.sel];
    int y = in.y, end = in.y + in.h;
    char dur[16];
    lt_dash_duration(w->duration, dur, sizeof dur);
    lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_TITLE, "run %lld %s", (long long)w->id, w->name);
    if (w->dead)
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_ERR, "failed: process gone without a word");
    else
        lt_dash_putf(d, y++, in.x, in.w, status_style(w), "status  %s", w->status);
    if (y < end)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "method  %s on %s", w->method,
                     w->device[0] ? w->device : "?");
    if (y < end)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "model   %s", w->model);
    if (y < end)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "data    %s",
                     w->dataset[0] ? w->dataset : "-");
    if (y < end && w->has_loss)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "loss    %.4f at step %lld",
                     w->last_loss, (long long)w->last_step);
    if (y < end && w->has_val)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "best val %.4f at step %lld",
                     w->best_val, (long long)w->best_step);
    if (y < end)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "time    %s", dur);
    if (y < end && w->message[0])
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_DIM, w->message);
    if (w->dead && v->log_run == w->id && v->log_tail[0]) {
        const char *p = v->log_tail;
        while (*p && y < end) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), p);
            lt_dash_put(d, y++, in.x, in.w, LT_STYLE_DIM, line);
            p = nl ? nl + 1 : p + len;
        }
    }
}

static void draw_curves(const runs_view *v, const lt_dash *d, lt_rect box)
{
    static const lt_style SER[] = {LT_STYLE_SERIES1, LT_STYLE_SERIES2, LT_STYLE_SERIES3,
                                   LT_STYLE_SERIES4};
    lt_rect in = lt_rect_inner(box);
    lt_dash_box(d, box, v->n_marks ? "loss, marked runs" : "loss (train, val)", false);
    const lt_series *ser[MAX_MARKS];
    for (int i = 0; i < v->n_curves; i++)
        ser[i] = &v->curves[i];
    lt_plot_opts o = {.ascii = !d->utf8};
    lt_plot p;
    if (!lt_plot_render(&p, in.w, in.h - 1, ser, v->n_curves, &o))
        return;
    if (p.empty)
        lt_dash_put(d, in.y + in.h / 2, in.x + 10, in.w - 10, LT_STYLE_DIM, "no metrics yet");
    lt_dash_plot(d, &p, in.y + 1, in.x);
    lt_plot_free(&p);
    int x = in.x + 1;
    for (int i = 0; i < v->n_curves && x < in.x + in.w; i++) {
        char lab[48];
        if (v->n_marks)
            snprintf(lab, sizeof lab, "-- run %lld  ", (long long)v->curve_run[i]);
        else
            snprintf(lab, sizeof lab, "-- %s  ", v->curve_name[i]);
        x += lt_dash_put(d, in.y, x, in.x + in.w - x, SER[i], lab);
    }
}

static void runs_draw(const void *state, const lt_dash *d, const lt_layout *lay)
{
    const runs_view *v = state;
    const lt_rect *r;
    if ((r = lt_layout_pane(lay, LT_PANE_LIST)))
        draw_list(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_STATS)))
        draw_detail(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_PLOT)))
        draw_curves(v, d, *r);
}

static void toggle_mark(runs_view *v, int64_t id)
{
    for (int i = 0; i < v->n_marks; i++)
        if (v->marks[i] == id) {
            memmove(&v->marks[i], &v->marks[i + 1], (size_t)(v->n_marks - i - 1) * sizeof(int64_t));
            v->n_marks--;
            return;
        }
    if (v->n_marks < MAX_MARKS)
        v->marks[v->n_marks++] = id;
}

static int runs_key(void *state, lt_dash *d, int ch)
{
    runs_view *v = state;
    int sel = v->list.sel;
    int r = lt_list_key(&v->list, ch == ' ' ? 0 : ch, row_text, v);
    if (r != LT_KEY_IGNORED) {
        if (v->list.sel != sel) {
            v->diff = false;
            load_curves(v, d, false);
            refresh_log(v, d);
        }
        return r;
    }
    if (v->list.n == 0)
        return LT_KEY_IGNORED;
    int64_t id = v->rows[v->list.sel].id;
    switch (ch) {
    case '\n':
    case '\r':
    case KEY_ENTER:
        d->run_id = id;
        d->switch_to = LT_VIEW_TRAIN;
        return LT_KEY_HANDLED;
    case ' ':
        toggle_mark(v, id);
        v->diff = false;
        load_curves(v, d, false);
        return LT_KEY_HANDLED;
    case 'd': {
        int64_t a = v->n_marks >= 1 ? v->marks[0] : id;
        int64_t b = v->n_marks >= 2 ? v->marks[1] : id;
        if (a == b) {
            lt_dash_say(d, "mark two runs with Space, or one and select another, then d");
            return LT_KEY_HANDLED;
        }
        build_diff(v, d, a, b);
        v->diff = true;
        return LT_KEY_HANDLED;
    }
    case 27:
        if (v->diff || v->n_marks) {
            v->diff = false;
            v->n_marks = 0;
            load_curves(v, d, false);
            return LT_KEY_HANDLED;
        }
        return LT_KEY_IGNORED;
    }
    return LT_KEY_IGNORED;
}

static const char *runs_footer(const void *state)
{
    (void)state;
    return "Enter watch  Space mark  d diff  / search  Esc clear";
}

static int runs_mouse(void *state, lt_dash *d, int kind, int y, int x)
{
    runs_view *v = state;
    const lt_rect *r = lt_layout_pane(&d->lay, LT_PANE_LIST);
    if (!r)
        return LT_KEY_IGNORED;
    return lt_list_mouse_keys(&v->list, kind, y, x, *r, r->y + 2, runs_key, v, d);
}

const lt_view_ops lt_view_runs_ops = {
    LT_VIEW_RUNS, runs_init, runs_free, runs_resize, runs_update, runs_draw, runs_key,
    runs_footer, runs_mouse,
};
