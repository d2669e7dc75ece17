/*
 * view_data.c - the Data view: datasets with their counts; for the selected one its stats and
 * length histogram (the data workbench's inspect report), its bad rows with reasons, and the
 * near-duplicate pairs dedup removed, side by side with the words that differ marked.
 *
 * Actions, each a background job running the real `lathe data ...` command (dash_job.c) with
 * its progress under the list: i imports a file (a form: path with Tab completion, name,
 * format), d deduplicates, f filters (lengths in characters, repetition and control-character
 * ratios, a regex), s splits (val/test fractions, seed). The list refreshes when a job ends and
 * the job's last lines stay in its box.
 *
 * Every string from a dataset is drawn through the sanitizer. update changes state; draw draws.
 */
#include "dash.h"
#include "data/data.h"
#include "sanitize.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ISSUES 500
#define MAX_PAIRS 200
#define TEXT_KEEP 600 /* bytes of each duplicate's text kept for display */

typedef struct ds_row {
    int64_t dataset_id;
    int version;
    char name[96], format[24];
    int64_t n_rows, n_issues;
} ds_row;

typedef struct issue_row {
    char where[160];
    char reason[200];
    char raw[240];
    bool error;
} issue_row;

typedef struct pair_row {
    double similarity;
    char kind[8];
    char kept[TEXT_KEEP], removed[TEXT_KEEP];
} pair_row;

enum { PAGE_ISSUES = 0, PAGE_DUPES = 1 };
typedef enum form_kind { F_IMPORT, F_DEDUP, F_FILTER, F_SPLIT } form_kind;
static const char *const FORMATS[] = {"auto", "alpaca", "sharegpt", "messages", "preference",
                                      "text"};

typedef struct data_view {
    ds_row *rows;
    lt_list list;
    int64_t loaded_id;   /* dataset whose details are loaded */
    int loaded_version;
    cJSON *report;       /* inspect report of the loaded dataset, NULL when none */
    char report_err[200];
    issue_row *issues;
    int n_issues;
    pair_row *pairs;
    int n_pairs;
    bool detail_focus;
    int page;
    int scroll;
    int detail_h;
    lt_form form;        /* an action's options, while open */
    form_kind form_kind;
    lt_dash_job job;     /* the last action started here */
    char select_name[96]; /* select this dataset once the list has it (after an import) */
} data_view;

static const char *row_text(const void *ctx, int i)
{
    return ((const data_view *)ctx)->rows[i].name;
}

static void *data_init(lt_dash *d)
{
    (void)d;
    return calloc(1, sizeof(data_view));
}

static void clear_detail(data_view *v)
{
    cJSON_Delete(v->report);
    v->report = NULL;
    free(v->issues);
    free(v->pairs);
    v->issues = NULL;
    v->pairs = NULL;
    v->n_issues = v->n_pairs = 0;
    v->report_err[0] = '\0';
    v->scroll = 0;
}

static void data_free(void *state)
{
    data_view *v = state;
    clear_detail(v);
    lt_dash_job_clear(&v->job);
    free(v->rows);
    free(v);
}

static void data_resize(void *state, const lt_layout *lay)
{
    data_view *v = state;
    const lt_rect *r = lt_layout_pane(lay, LT_PANE_LIST);
    v->list.height = r ? r->h - 3 : 1;
    const lt_rect *e = lt_layout_pane(lay, LT_PANE_EVENTS);
    v->detail_h = e ? e->h - 2 : 1;
    lt_list_fix(&v->list);
}

static void copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static void load_list(data_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    ds_row *rows = NULL;
    int n = 0, cap = 0;
    if (lt_store_datasets_iter(d->st, &it) != LT_STORE_OK)
        return;
    lt_store_version s;
    while (lt_store_datasets_next(it, &s) == LT_STORE_OK) {
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            ds_row *g = realloc(rows, (size_t)nc * sizeof(*g));
            if (!g)
                break;
            rows = g;
            cap = nc;
        }
        ds_row *w = &rows[n++];
        w->dataset_id = s.dataset_id;
        w->version = s.version;
        copy(w->name, sizeof w->name, s.name);
        copy(w->format, sizeof w->format, s.format);
        w->n_rows = s.n_rows;
        w->n_issues = s.n_issues;
    }
    lt_store_iter_free(it);
    free(v->rows);
    v->rows = rows;
    v->list.n = n;
    lt_list_fix(&v->list);
}

static void load_issues(data_view *v, lt_dash *d, const ds_row *ds)
{
    lt_store_iter *it = NULL;
    if (lt_store_issues_iter(d->st, ds->dataset_id, ds->version, &it) != LT_STORE_OK)
        return;
    v->issues = calloc(MAX_ISSUES, sizeof(issue_row));
    lt_store_issue is;
    while (v->issues && v->n_issues < MAX_ISSUES && lt_store_issues_next(it, &is) == LT_STORE_OK) {
        issue_row *w = &v->issues[v->n_issues++];
        const char *base = is.path ? strrchr(is.path, '/') : NULL;
        snprintf(w->where, sizeof w->where, "%s:%lld", base ? base + 1 : is.path ? is.path : "?",
                 (long long)is.line);
        copy(w->reason, sizeof w->reason, is.reason);
        copy(w->raw, sizeof w->raw, is.raw);
        w->error = is.severity && strcmp(is.severity, "error") == 0;
    }
    lt_store_iter_free(it);
}

/* The text of a sample, first TEXT_KEEP bytes, into out. */
static void sample_text(lt_dash *d, int64_t sample_id, char *out, size_t outsz)
{
    lt_store_sample s;
    out[0] = '\0';
    if (lt_store_sample_get_id(d->st, sample_id, &s) != LT_STORE_OK)
        return;
    char *t = lt_data_sample_text(s.data, NULL);
    copy(out, outsz, t ? t : s.data);
    free(t);
}

static void load_pairs(data_view *v, lt_dash *d, const ds_row *ds)
{
    lt_store_iter *it = NULL;
    if (lt_store_dedup_pairs_iter(d->st, ds->dataset_id, ds->version, &it) != LT_STORE_OK)
        return;
    v->pairs = calloc(MAX_PAIRS, sizeof(pair_row));
    int64_t ids[MAX_PAIRS][2];
    lt_store_dedup_pair p;
    while (v->pairs && v->n_pairs < MAX_PAIRS && lt_store_dedup_pairs_next(it, &p) == LT_STORE_OK) {
        pair_row *w = &v->pairs[v->n_pairs];
        w->similarity = p.similarity;
        copy(w->kind, sizeof w->kind, p.kind);
        ids[v->n_pairs][0] = p.kept_sample_id;
        ids[v->n_pairs][1] = p.removed_sample_id;
        v->n_pairs++;
    }
    lt_store_iter_free(it); /* before other statements run on the store */
    for (int i = 0; i < v->n_pairs; i++) {
        sample_text(d, ids[i][0], v->pairs[i].kept, TEXT_KEEP);
        sample_text(d, ids[i][1], v->pairs[i].removed, TEXT_KEEP);
    }
}

static void load_detail(data_view *v, lt_dash *d)
{
    clear_detail(v);
    v->loaded_id = 0;
    if (v->list.n == 0)
        return;
    const ds_row *ds = &v->rows[v->list.sel];
    v->loaded_id = ds->dataset_id;
    v->loaded_version = ds->version;
    lt_data_inspect_opts o = {.version = ds->version, .top_n = 5};
    void *rep = NULL;
    if (lt_data_inspect(d->st, ds->name, &o, &rep, v->report_err, sizeof v->report_err) ==
        LT_DATA_OK)
        v->report = rep;
    load_issues(v, d, ds);
    load_pairs(v, d, ds);
}

static bool data_update(void *state, lt_dash *d, bool changed)
{
    data_view *v = state;
    bool job_changed = lt_dash_job_poll(&v->job);
    if (job_changed && v->job.state != LT_JOB_RUNNING) {
        changed = true; /* the job wrote a dataset version: read it now */
        lt_dash_say(d, "%s: %s", v->job.state == LT_JOB_DONE ? "done" : "FAILED",
                    v->job.n_result ? v->job.result[0] : v->job.what);
    }
    if (!changed)
        return job_changed || v->job.state == LT_JOB_RUNNING; /* the bar moves */
    int64_t keep = v->list.n ? v->rows[v->list.sel].dataset_id : 0;
    load_list(v, d);
    for (int i = 0; i < v->list.n; i++)
        if (v->select_name[0] ? strcmp(v->rows[i].name, v->select_name) == 0
                              : v->rows[i].dataset_id == keep)
            v->list.sel = i;
    if (v->select_name[0] && v->job.state != LT_JOB_RUNNING)
        v->select_name[0] = '\0';
    lt_list_fix(&v->list);
    const ds_row *ds = v->list.n ? &v->rows[v->list.sel] : NULL;
    if (!ds || ds->dataset_id != v->loaded_id || ds->version != v->loaded_version)
        load_detail(v, d);
    return true;
}

static void draw_list(const data_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    char title[48];
    snprintf(title, sizeof title, "datasets (%d)", v->list.n);
    lt_dash_box(d, box, title, !v->detail_focus);
    lt_dash_putf(d, in.y, in.x, in.w, LT_STYLE_TITLE, "%-*s %6s %4s", in.w - 13 > 0 ? in.w - 13 : 1,
                 "name", "rows", "bad");
    if (v->list.n == 0) {
        lt_dash_put(d, in.y + 1, in.x, in.w, LT_STYLE_DIM, "No datasets yet.");
        lt_dash_put(d, in.y + 2, in.x, in.w, LT_STYLE_DIM, "i imports a file");
    }
    for (int row = 0; row < in.h - 1 && v->list.top + row < v->list.n; row++) {
        int i = v->list.top + row;
        const ds_row *w = &v->rows[i];
        int y = in.y + 1 + row;
        bool sel = i == v->list.sel;
        lt_style st = sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL;
        if (sel)
            lt_dash_fill(d, y, in.x, in.w, LT_STYLE_SELECT);
        char name[128];
        snprintf(name, sizeof name, "%s v%d", w->name, w->version);
        lt_dash_put(d, y, in.x, in.w - 13, st, name);
        lt_dash_putf(d, y, in.x + in.w - 12, 12, w->n_issues && !sel ? LT_STYLE_WARN : st,
                     "%6lld %4lld", (long long)w->n_rows, (long long)w->n_issues);
    }
    lt_list_draw_search(&v->list, d, box.y + box.h - 1, box.x + 2, box.w - 4);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : 0;
}

static void draw_stats(const data_view *v, const lt_dash *d, lt_rect box)
{
    lt_rect in = lt_rect_inner(box);
    lt_dash_box(d, box, "stats", false);
    if (!v->report) {
        lt_dash_put(d, in.y, in.x, in.w, LT_STYLE_DIM,
                    v->report_err[0] ? v->report_err : "select a dataset");
        return;
    }
    const cJSON *r = v->report;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(r, "format");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
    int y = in.y, end = in.y + in.h;
    lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_TITLE, "%s v%.0f  %s  %.0f rows  %.0f bad rows",
                 cJSON_IsString(name) ? name->valuestring : "?", num(r, "version"),
                 cJSON_IsString(fmt) ? fmt->valuestring : "?", num(r, "rows"), num(r, "issues"));
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(r, "chars");
    if (y < end)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL,
                     "chars  min %.0f  median %.0f  p95 %.0f  max %.0f  mean %.0f", num(ch, "min"),
                     num(ch, "p50"), num(ch, "p95"), num(ch, "max"), num(ch, "mean"));
    const cJSON *du = cJSON_GetObjectItemCaseSensitive(r, "duplicates");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(r, "responses");
    if (y < end)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL,
                     "empty responses %.0f  very short %.0f  control chars %.0f  dedup: %s",
                     num(resp, "empty"), num(resp, "very_short"), num(r, "control_char_rows"),
                     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(du, "dedup_ran")) ? "ran"
                                                                                      : "not run");
    /* the length histogram, one bar per power-of-two bucket */
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(ch, "histogram");
    double maxc = 1;
    const cJSON *b;
    cJSON_ArrayForEach(b, h) if (num(b, "count") > maxc) maxc = num(b, "count");
    if (y < end)
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_DIM, "length (chars)   rows");
    cJSON_ArrayForEach(b, h)
    {
        if (y >= end)
            break;
        int x = in.x + lt_dash_putf(d, y, in.x, in.w, LT_STYLE_NORMAL, "%6.0f-%-7.0f %6.0f ",
                                    num(b, "from"), num(b, "to"), num(b, "count"));
        int bw = in.x + in.w - x;
        int fill = (int)(num(b, "count") / maxc * bw + 0.5);
        if (num(b, "count") > 0 && fill == 0)
            fill = 1;
        lt_dash_blocks(d, y, x, fill, LT_STYLE_SERIES1);
        y++;
    }
}

static void draw_issues(const data_view *v, const lt_dash *d, lt_rect in)
{
    if (v->n_issues == 0)
        lt_dash_put(d, in.y, in.x, in.w, LT_STYLE_DIM, "no bad rows");
    for (int i = v->scroll, y = in.y; i < v->n_issues && y + 1 < in.y + in.h; i++) {
        const issue_row *w = &v->issues[i];
        char line[400];
        snprintf(line, sizeof line, "%s %s: %s", w->error ? "dropped" : "kept", w->where,
                 w->reason);
        lt_dash_put(d, y++, in.x, in.w, w->error ? LT_STYLE_ERR : LT_STYLE_WARN, line);
        lt_dash_put(d, y++, in.x + 2, in.w - 2, LT_STYLE_DIM, w->raw);
    }
}

/* Prints text word by word in w columns over up to h rows, marking words absent in other. */
static void draw_marked(const lt_dash *d, int y, int x, int w, int h, const char *text,
                        const char *other)
{
    int cx = 0, row = 0;
    const char *p = text;
    while (*p && row < h) {
        while (*p == ' ' || *p == '\n' || *p == '\t')
            p++;
        size_t len = strcspn(p, " \n\t");
        if (!len)
            break;
        char word[128];
        snprintf(word, sizeof word, "%.*s", (int)(len < 127 ? len : 127), p);
        bool differs = true;
        for (const char *q = other; q && *q && differs;) {
            while (*q == ' ' || *q == '\n' || *q == '\t')
                q++;
            size_t l2 = strcspn(q, " \n\t");
            if (l2 == len && strncmp(q, p, len) == 0)
                differs = false;
            q += l2;
        }
        char shown[256];
        int ww = lt_sanitize(word, -1, shown, sizeof shown, w, true, NULL);
        if (cx > 0 && cx + 1 + ww > w) {
            row++;
            cx = 0;
            if (row >= h)
                break;
        }
        if (cx > 0)
            cx++;
        lt_dash_put(d, y + row, x + cx, w - cx, differs ? LT_STYLE_WARN : LT_STYLE_NORMAL, word);
        cx += ww;
        p += len;
    }
}

static void draw_pairs(const data_view *v, const lt_dash *d, lt_rect in)
{
    if (v->n_pairs == 0) {
        lt_dash_put(d, in.y, in.x, in.w, LT_STYLE_DIM,
                    "no duplicates removed (lathe data dedup NAME finds them)");
        return;
    }
    int half = (in.w - 1) / 2;
    lt_dash_put(d, in.y, in.x, half, LT_STYLE_TITLE, "kept");
    lt_dash_put(d, in.y, in.x + half + 1, in.w - half - 1, LT_STYLE_TITLE, "removed");
    int per = 4; /* rows per pair: header + 3 of text */
    for (int i = v->scroll, y = in.y + 1; i < v->n_pairs && y + per <= in.y + in.h; i++) {
        const pair_row *w = &v->pairs[i];
        lt_dash_putf(d, y, in.x, in.w, LT_STYLE_DIM, "%s duplicate, similarity %.2f", w->kind,
                     w->similarity);
        draw_marked(d, y + 1, in.x, half, per - 1, w->kept, w->removed);
        draw_marked(d, y + 1, in.x + half + 1, in.w - half - 1, per - 1, w->removed, w->kept);
        y += per;
    }
}

static void data_draw(const void *state, const lt_dash *d, const lt_layout *lay)
{
    const data_view *v = state;
    const lt_rect *r;
    if ((r = lt_layout_pane(lay, LT_PANE_LIST)))
        draw_list(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_JOBS))) {
        lt_dash_box(d, *r, "job", false);
        lt_dash_job_draw(d, &v->job, lt_rect_inner(*r));
    }
    if ((r = lt_layout_pane(lay, LT_PANE_STATS)))
        draw_stats(v, d, *r);
    if ((r = lt_layout_pane(lay, LT_PANE_EVENTS))) {
        char title[80];
        snprintf(title, sizeof title, "%s  bad rows (%d) | duplicates (%d)  %s",
                 v->page == PAGE_ISSUES ? ">" : " ", v->n_issues, v->n_pairs,
                 v->page == PAGE_DUPES ? "<" : " ");
        lt_dash_box(d, *r, title, v->detail_focus);
        lt_rect in = lt_rect_inner(*r);
        if (v->page == PAGE_ISSUES)
            draw_issues(v, d, in);
        else
            draw_pairs(v, d, in);
    }
    if (v->form.open)
        lt_form_draw(&v->form, d);
}

/* ---- actions ---- */

static void open_form(data_view *v, lt_dash *d, form_kind k)
{
    const char *ds = v->list.n ? v->rows[v->list.sel].name : "";
    char title[160];
    if (k != F_IMPORT && !v->list.n) {
        lt_dash_say(d, "no dataset to work on: i imports one");
        return;
    }
    if (v->job.state == LT_JOB_RUNNING) {
        lt_dash_say(d, "a job is running here; wait for it to finish");
        return;
    }
    lt_form *f = &v->form;
    v->form_kind = k;
    switch (k) {
    case F_IMPORT:
        lt_form_init(f, "import a file", "JSONL, JSON or CSV; bad rows are kept aside with reasons");
        lt_form_add(f, "file", "file", LT_FIELD_PATH, "");
        lt_form_add(f, "name", "dataset name", LT_FIELD_TEXT, "");
        lt_form_field *x = lt_form_add(f, "format", "format", LT_FIELD_NAME, "auto");
        x->cands = FORMATS;
        x->n_cands = (int)(sizeof FORMATS / sizeof *FORMATS);
        break;
    case F_DEDUP:
        snprintf(title, sizeof title, "deduplicate %.60s", ds);
        lt_form_init(f, title, "exact and near duplicates (MinHash, Jaccard >= threshold)");
        lt_form_add(f, "threshold", "threshold", LT_FIELD_TEXT, "0.8");
        lt_form_add(f, "ngram", "word n-gram", LT_FIELD_TEXT, "5");
        break;
    case F_FILTER:
        snprintf(title, sizeof title, "filter %.60s", ds);
        lt_form_init(f, title, "empty fields are not applied; lengths in characters");
        lt_form_add(f, "min-chars", "min length", LT_FIELD_TEXT, "");
        lt_form_add(f, "max-chars", "max length", LT_FIELD_TEXT, "");
        lt_form_add(f, "max-repeated-line-ratio", "max repeated lines", LT_FIELD_TEXT, "");
        lt_form_add(f, "max-repeated-ngram-ratio", "max repeated 3-grams", LT_FIELD_TEXT, "");
        lt_form_add(f, "max-nonprintable-ratio", "max control chars", LT_FIELD_TEXT, "");
        lt_form_add(f, "regex", "drop FIELD=REGEX", LT_FIELD_TEXT, "");
        break;
    case F_SPLIT:
        snprintf(title, sizeof title, "split %.60s", ds);
        lt_form_init(f, title, "near-duplicate clusters stay in one split");
        lt_form_add(f, "val", "val fraction", LT_FIELD_TEXT, "0.05");
        lt_form_add(f, "test", "test fraction", LT_FIELD_TEXT, "0.05");
        lt_form_add(f, "seed", "seed", LT_FIELD_TEXT, "0");
        break;
    }
}

/* Checks the form and starts the job. False (the form stays open, its error set) when a value
 * is refused. */
static bool submit(data_view *v, lt_dash *d)
{
    lt_form *f = &v->form;
    char *argv[40];
    char nums[8][32];
    int n = 0, k = 0;
    double x;
    const char *ds = v->list.n ? v->rows[v->list.sel].name : "";
    char what[128];
    argv[n++] = "lathe";
    argv[n++] = "data";
    /* option name, bounds as the command takes them */
    static const struct {
        form_kind form;
        const char *key;
        double lo, hi;
    } NUMS[] = {
        {F_DEDUP, "threshold", 0.05, 1},
        {F_DEDUP, "ngram", 1, 64},
        {F_FILTER, "min-chars", 0, 1e12},
        {F_FILTER, "max-chars", 1, 1e12},
        {F_FILTER, "max-repeated-line-ratio", 0, 1},
        {F_FILTER, "max-repeated-ngram-ratio", 0, 1},
        {F_FILTER, "max-nonprintable-ratio", 0, 1},
        {F_SPLIT, "val", 0, 0.99},
        {F_SPLIT, "test", 0, 0.99},
        {F_SPLIT, "seed", 0, 9007199254740991.0},
    };
    char opt[10][48];
    if (v->form_kind == F_IMPORT) {
        const char *file = lt_form_get(f, "file"), *name = lt_form_get(f, "name");
        const char *fmt = lt_form_get(f, "format");
        if (!file || !*file) {
            snprintf(f->error, sizeof f->error, "file: which file? (Tab completes)");
            return false;
        }
        bool fmt_ok = false;
        for (size_t i = 0; i < sizeof FORMATS / sizeof *FORMATS; i++)
            fmt_ok |= fmt && strcmp(fmt, FORMATS[i]) == 0;
        if (!fmt_ok) {
            snprintf(f->error, sizeof f->error,
                     "format: auto, alpaca, sharegpt, messages, preference or text");
            f->cur = 2;
            return false;
        }
        argv[n++] = "import";
        argv[n++] = (char *)file;
        if (name && *name) {
            argv[n++] = "--name";
            argv[n++] = (char *)name;
        }
        argv[n++] = "--format";
        argv[n++] = (char *)fmt;
        const char *base = strrchr(file, '/');
        snprintf(what, sizeof what, "import %.60s%s%.50s", base ? base + 1 : file,
                 name && *name ? " as " : "", name ? name : "");
        snprintf(v->select_name, sizeof v->select_name, "%s", name ? name : "");
    } else {
        static const char *const CMD[] = {"import", "dedup", "filter", "split"};
        argv[n++] = (char *)CMD[v->form_kind];
        argv[n++] = (char *)ds;
        for (size_t i = 0; i < sizeof NUMS / sizeof *NUMS; i++) {
            if (NUMS[i].form != v->form_kind)
                continue;
            int r = lt_form_number(f, NUMS[i].key, NUMS[i].lo, NUMS[i].hi, &x);
            if (r < 0)
                return false;
            if (r == 0)
                continue;
            snprintf(opt[k], sizeof opt[k], "--%s", NUMS[i].key);
            snprintf(nums[k], sizeof nums[k], "%.17g", x);
            argv[n++] = opt[k];
            argv[n++] = nums[k];
            k++;
        }
        const char *re = v->form_kind == F_FILTER ? lt_form_get(f, "regex") : NULL;
        if (re && *re) {
            if (!strchr(re, '=')) {
                snprintf(f->error, sizeof f->error,
                         "drop FIELD=REGEX: expected FIELD=REGEX, e.g. response=^Sorry");
                f->cur = 5;
                return false;
            }
            argv[n++] = "--regex";
            argv[n++] = (char *)re;
        }
        snprintf(what, sizeof what, "%s %.80s", CMD[v->form_kind], ds);
        if (v->form_kind != F_SPLIT) /* a new version of the same dataset */
            snprintf(v->select_name, sizeof v->select_name, "%s", ds);
    }
    argv[n++] = "--workspace";
    argv[n++] = (char *)d->workspace;
    argv[n] = NULL;
    lt_dash_job_clear(&v->job);
    if (!lt_dash_job_start(&v->job, d->workspace, what, argv, true)) {
        snprintf(f->error, sizeof f->error, "%s", v->job.result[0]);
        return false;
    }
    f->open = false;
    return true;
}

static int form_key(data_view *v, lt_dash *d, int ch)
{
    int r = lt_form_key(&v->form, ch);
    if (r == LT_FORM_CANCEL)
        v->form.open = false;
    else if (r == LT_FORM_SUBMIT)
        submit(v, d);
    return LT_KEY_HANDLED | LT_KEY_MODAL;
}

static int data_key(void *state, lt_dash *d, int ch)
{
    data_view *v = state;
    if (v->form.open)
        return form_key(v, d, ch);
    if (v->detail_focus) {
        int n = v->page == PAGE_ISSUES ? v->n_issues : v->n_pairs;
        switch (ch) {
        case 27:
            v->detail_focus = false;
            return LT_KEY_HANDLED;
        case KEY_LEFT:
        case 'h':
        case KEY_RIGHT:
        case 'l':
            v->page = 1 - v->page;
            v->scroll = 0;
            return LT_KEY_HANDLED;
        case KEY_UP:
        case 'k':
            if (v->scroll > 0)
                v->scroll--;
            return LT_KEY_HANDLED;
        case KEY_DOWN:
        case 'j':
            if (v->scroll + 1 < n)
                v->scroll++;
            return LT_KEY_HANDLED;
        }
        return LT_KEY_IGNORED;
    }
    int sel = v->list.sel;
    int r = lt_list_key(&v->list, ch, row_text, v);
    if (r != LT_KEY_IGNORED) {
        if (v->list.sel != sel)
            load_detail(v, d);
        return r;
    }
    if ((ch == '\n' || ch == '\r' || ch == KEY_ENTER) && v->list.n > 0) {
        v->detail_focus = true;
        return LT_KEY_HANDLED;
    }
    switch (ch) {
    case 'i':
        open_form(v, d, F_IMPORT);
        return LT_KEY_HANDLED;
    case 'd':
        open_form(v, d, F_DEDUP);
        return LT_KEY_HANDLED;
    case 'f':
        open_form(v, d, F_FILTER);
        return LT_KEY_HANDLED;
    case 's':
        open_form(v, d, F_SPLIT);
        return LT_KEY_HANDLED;
    }
    return LT_KEY_IGNORED;
}

static int data_mouse(void *state, lt_dash *d, int kind, int y, int x)
{
    data_view *v = state;
    if (v->form.open)
        return LT_KEY_IGNORED;
    const lt_rect *r = lt_layout_pane(&d->lay, LT_PANE_LIST);
    if (r && lt_list_mouse_keys(&v->list, kind, y, x, *r, r->y + 2, data_key, v, d)) {
        v->detail_focus = false;
        return LT_KEY_HANDLED;
    }
    r = lt_layout_pane(&d->lay, LT_PANE_EVENTS);
    if (r && y >= r->y && y < r->y + r->h && x >= r->x && x < r->x + r->w) {
        int n = v->page == PAGE_ISSUES ? v->n_issues : v->n_pairs;
        if (kind == LT_MOUSE_WHEEL_UP && v->scroll > 0)
            v->scroll--;
        else if (kind == LT_MOUSE_WHEEL_DOWN && v->scroll + 1 < n)
            v->scroll++;
        else if (kind == LT_MOUSE_CLICK)
            v->detail_focus = true;
        return LT_KEY_HANDLED;
    }
    return LT_KEY_IGNORED;
}

static const char *data_footer(const void *state)
{
    const data_view *v = state;
    if (v->form.open)
        return "";
    return v->detail_focus ? "Left/Right bad rows/duplicates  Up/Down scroll  Esc back"
                           : "Enter open  i import  d dedup  f filter  s split  / search";
}

const lt_view_ops lt_view_data_ops = {
    LT_VIEW_DATA, data_init, data_free, data_resize, data_update, data_draw, data_key,
    data_footer, data_mouse,
};
