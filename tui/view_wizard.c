/*
 * view_wizard.c - the Wizard view: a guided form over `lathe plan`. Pick a dataset, type the
 * model folder (Tab completes paths), then answer the decision tree one question at a time
 * with the rationale of each step shown; at the leaf, the method, its rationale, the memory
 * estimate of every method against the device's budget, and the config. s saves the plan and
 * its training config; e edits the saved config's fields (learning rate, epochs, batch size,
 * sequence length, LoRA rank and alpha, ...) in a form, checked by the training config parser
 * before it is written back; t starts `lathe train CONFIG --detach` and opens the Train view.
 *
 * The facts (device memory, the model's shape, the dataset's lengths) can take a while to
 * gather, so every step runs `lathe plan` as a child process (its own session, output to
 * files under WORKSPACE/plans/) and update only checks whether it finished: the dashboard never
 * blocks. The questions' choices come from the decision tree compiled into the program.
 */
#include "dash.h"
#include "plan/plan.h"
#include "train/train_config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWERS 16
#define MAX_CHOICES 16
#define MAX_DS 256

typedef enum w_stage { W_DATA, W_MODEL, W_RUNNING, W_QUESTION, W_RESULT, W_ERROR, W_EDIT } w_stage;
typedef enum w_job { J_PLAN, J_SAVE, J_TRAIN } w_job;

typedef struct wizard_view {
    w_stage stage;
    char ds[MAX_DS][96];
    lt_list list;
    char dataset[96];
    char model[1024];
    char answers[MAX_ANSWERS][128]; /* "key=value" */
    int n_answers;
    /* the child running lathe plan / lathe train */
    pid_t pid;
    w_job job;
    char out_path[4200], err_path[4200], config_path[4200];
    /* a question */
    lt_plan_tree *tree;
    char key[64], question[256];
    const char *values[MAX_CHOICES], *labels[MAX_CHOICES];
    int n_choices, choice;
    /* the result */
    cJSON *plan;
    bool saved;
    char error[600];
    int64_t plan_id;
    lt_form form;       /* W_EDIT: the config's fields */
    bool edited;
} wizard_view;

static void *wizard_init(lt_dash *d)
{
    (void)d;
    return calloc(1, sizeof(wizard_view));
}

static void wizard_free(void *state)
{
    wizard_view *v = state;
    if (v->pid > 0) {
        kill(v->pid, SIGTERM);
        waitpid(v->pid, NULL, 0);
    }
    lt_plan_tree_free(v->tree);
    cJSON_Delete(v->plan);
    free(v);
}

static void wizard_resize(void *state, const lt_layout *lay)
{
    wizard_view *v = state;
    const lt_rect *r = lt_layout_pane(lay, LT_PANE_MAIN);
    v->list.height = r ? r->h - 6 : 1;
    lt_list_fix(&v->list);
}

static void load_datasets(wizard_view *v, lt_dash *d)
{
    lt_store_iter *it = NULL;
    lt_store_version s;
    int n = 0;
    if (lt_store_datasets_iter(d->st, &it) != LT_STORE_OK)
        return;
    while (n < MAX_DS && lt_store_datasets_next(it, &s) == LT_STORE_OK)
        snprintf(v->ds[n++], sizeof v->ds[0], "%s", s.name ? s.name : "");
    lt_store_iter_free(it);
    v->list.n = n;
    lt_list_fix(&v->list);
}

/* Starts lathe (this program) with argv in its own session, stdout and stderr to files. */
static bool spawn(wizard_view *v, lt_dash *d, char *const *argv, w_job job)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/plans", d->workspace);
    mkdir(dir, 0755);
    snprintf(v->out_path, sizeof v->out_path, "%s/wizard-%d.out", dir, (int)getpid());
    snprintf(v->err_path, sizeof v->err_path, "%s/wizard-%d.err", dir, (int)getpid());
    pid_t pid = lt_dash_spawn(argv, v->out_path, v->err_path, v->error, sizeof v->error);
    if (pid < 0)
        return false;
    v->pid = pid;
    v->job = job;
    v->stage = W_RUNNING;
    return true;
}

static void run_plan(wizard_view *v, lt_dash *d, bool save)
{
    char *argv[64];
    int n = 0;
    argv[n++] = "lathe";
    argv[n++] = "plan";
    argv[n++] = "--model";
    argv[n++] = v->model;
    argv[n++] = "--data";
    argv[n++] = v->dataset;
    argv[n++] = "--workspace";
    argv[n++] = (char *)d->workspace;
    argv[n++] = "--json";
    argv[n++] = "--no-calibrate";
    if (save) {
        snprintf(v->config_path, sizeof v->config_path, "%s/plans/%s-%ld.json", d->workspace,
                 v->dataset, (long)time(NULL));
        argv[n++] = "--out";
        argv[n++] = v->config_path;
    } else {
        argv[n++] = "--no-save";
    }
    for (int i = 0; i < v->n_answers; i++) {
        argv[n++] = "--answer";
        argv[n++] = v->answers[i];
    }
    argv[n] = NULL;
    spawn(v, d, argv, save ? J_SAVE : J_PLAN);
}

/* Reads a small file into a malloc'd string (NULL on failure). */
static char *slurp(const char *path)
{
    return lt_dash_slurp(path, (1 << 20) - 1);
}

/* The plan stopped at a question: load its text and choices from the tree. */
static bool set_question(wizard_view *v, const char *err_text)
{
    const char *q = strstr(err_text, "question ");
    if (!q)
        return false;
    q += strlen("question ");
    size_t len = strcspn(q, " (");
    if (len == 0 || len >= sizeof v->key)
        return false;
    memcpy(v->key, q, len);
    v->key[len] = '\0';
    if (!v->tree) {
        char e[256];
        v->tree = lt_plan_tree_builtin(e, sizeof e);
        if (!v->tree)
            return false;
    }
    const char *text = lt_plan_tree_question(v->tree, v->key, v->values, v->labels, MAX_CHOICES,
                                             &v->n_choices);
    if (!text)
        return false;
    snprintf(v->question, sizeof v->question, "%s", text);
    v->choice = 0;
    const char *def = lt_plan_tree_default(v->tree, v->key);
    for (int i = 0; def && i < v->n_choices; i++)
        if (strcmp(v->values[i], def) == 0)
            v->choice = i;
    v->stage = W_QUESTION;
    return true;
}

static void job_done(wizard_view *v, lt_dash *d, int status)
{
    char *out = slurp(v->out_path), *err = slurp(v->err_path);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    v->pid = 0;
    if (v->job == J_TRAIN) {
        long long run = out ? atoll(out) : 0;
        if (ok && run > 0) {
            d->run_id = run;
            d->switch_to = LT_VIEW_TRAIN;
            lt_dash_say(d, "run %lld started in the background", run);
            v->stage = W_RESULT;
        } else {
            v->stage = W_ERROR;
            snprintf(v->error, sizeof v->error, "lathe train failed: %s", err ? err : "?");
        }
        goto done;
    }
    cJSON *plan = ok && out ? cJSON_Parse(out) : NULL;
    if (plan) {
        cJSON_Delete(v->plan);
        v->plan = plan;
        v->stage = W_RESULT;
        if (v->job == J_SAVE) {
            v->saved = true;
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(plan, "plan_id");
            v->plan_id = cJSON_IsNumber(id) ? (int64_t)id->valuedouble : 0;
        }
    } else if (!(err && set_question(v, err))) {
        v->stage = W_ERROR;
        snprintf(v->error, sizeof v->error, "%s", err && *err ? err : "lathe plan failed");
    }
done:
    free(out);
    free(err);
    unlink(v->out_path);
    unlink(v->err_path);
}

static bool wizard_update(void *state, lt_dash *d, bool changed)
{
    wizard_view *v = state;
    if (v->pid > 0) {
        int status;
        if (waitpid(v->pid, &status, WNOHANG) == v->pid) {
            job_done(v, d, status);
            return true;
        }
    }
    if (changed && v->stage == W_DATA) {
        load_datasets(v, d);
        return true;
    }
    return false;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : "";
}

/* The steps taken so far, each with its rationale. Returns the next free row. */
static int draw_path(const cJSON *plan, const lt_dash *d, int y, int end, lt_rect in)
{
    const cJSON *step;
    cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(plan, "path"))
    {
        if (y + 1 >= end)
            break;
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "%s: %s", str(step, "question"),
                     str(step, "value"));
        lt_dash_putf(d, y++, in.x + 2, in.w - 2, LT_STYLE_DIM, "%s", str(step, "why"));
    }
    return y;
}

static void draw_result(const wizard_view *v, const lt_dash *d, lt_rect in)
{
    const cJSON *p = v->plan;
    int y = in.y, end = in.y + in.h;
    lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_TITLE, "method: %s   (%s on %s)", str(p, "method"),
                 v->model, v->dataset);
    lt_dash_put(d, y++, in.x, in.w, LT_STYLE_NORMAL, str(p, "rationale"));
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(p, "fit");
    double budget = num(cJSON_GetObjectItemCaseSensitive(p, "estimates"), "budget_gb");
    if (isnan(budget))
        budget = num(fit, "budget_gb");
    if (isnan(budget))
        budget = num(cJSON_GetObjectItemCaseSensitive(p, "facts"), "memory_gb");
    if (y < end && !isnan(budget))
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_TITLE, "%-14s %10s %8s  fits in %.2f GB?",
                     "memory", "peak GB", "RAM GB", budget);
    else if (y < end)
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_TITLE, "%-14s %10s  (device memory unknown)",
                     "memory", "peak GB");
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(p, "estimates"))
    {
        if (!cJSON_IsObject(m) || y >= end)
            continue;
        double peak = num(m, "peak_gb"), ram = num(m, "host_ram_gb");
        bool fits = !isnan(budget) && peak <= budget;
        if (isnan(budget))
            lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "%-14s %10.3f %8.2f", m->string,
                         peak, ram);
        else
            lt_dash_putf(d, y++, in.x, in.w, fits ? LT_STYLE_OK : LT_STYLE_ERR,
                         "%-14s %10.3f %8.2f  %s by %.2f GB", m->string, peak, ram,
                         fits ? "fits" : "does not fit", fabs(budget - peak));
    }
    if (y < end && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "choice")))
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_DIM, "chosen: %s", str(p, "choice"));
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(p, "warnings"))
    if (y < end && cJSON_IsString(w))
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_WARN, "! %s", w->valuestring);
    if (y < end) {
        bool trains = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(p, "config"));
        if (v->saved)
            lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_OK, "saved: %s (plan %lld)%s",
                         v->config_path, (long long)v->plan_id,
                         trains ? "  t: start training" : "  (this method trains nothing)");
        else
            lt_dash_put(d, y++, in.x, in.w, LT_STYLE_TITLE, "s: save the plan and its config");
        if (v->saved && trains && y < end)
            lt_dash_put(d, y++, in.x, in.w, v->edited ? LT_STYLE_OK : LT_STYLE_TITLE,
                        v->edited ? "config edited and saved  e: edit again  t: start training"
                                  : "e: edit the config's fields before training");
    }
    draw_path(p, d, y + 1, end, in);
}

static void wizard_draw(const void *state, const lt_dash *d, const lt_layout *lay)
{
    const wizard_view *v = state;
    const lt_rect *r = lt_layout_pane(lay, LT_PANE_MAIN);
    if (!r)
        return;
    lt_rect in = lt_rect_inner(*r);
    lt_dash_box(d, *r, "wizard", true);
    int y = in.y;
    switch (v->stage) {
    case W_DATA:
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_TITLE, "1. Which dataset? (Enter picks)");
        if (v->list.n == 0)
            lt_dash_put(d, y + 1, in.x + 2, in.w - 2, LT_STYLE_DIM,
                        "No datasets yet: lathe data import FILE");
        for (int i = v->list.top; i < v->list.n && y < in.y + in.h - 1; i++, y++) {
            if (i == v->list.sel)
                lt_dash_fill(d, y, in.x, in.w, LT_STYLE_SELECT);
            lt_dash_putf(d, y, in.x, in.w, i == v->list.sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL,
                         "%s %s", i == v->list.sel ? ">" : " ", v->ds[i]);
        }
        lt_list_draw_search(&v->list, d, r->y + r->h - 1, r->x + 2, r->w - 4);
        break;
    case W_MODEL:
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "dataset: %s", v->dataset);
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_TITLE,
                    "2. The model folder (config.json, safetensors, tokenizer.json):");
        lt_dash_putf(d, y++, in.x + 2, in.w - 2, LT_STYLE_SELECT, "%s_", v->model);
        lt_dash_put(d, y++, in.x + 2, in.w - 2, LT_STYLE_DIM,
                    "Tab completes, Enter goes on, Esc back");
        break;
    case W_RUNNING:
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_DIM,
                    v->job == J_TRAIN ? "starting training..." : "gathering facts, walking the tree...");
        break;
    case W_QUESTION:
        lt_dash_putf(d, y++, in.x, in.w, LT_STYLE_NORMAL, "dataset %s, model %s", v->dataset,
                     v->model);
        for (int i = 0; i < v->n_answers && y < in.y + in.h; i++)
            lt_dash_putf(d, y++, in.x + 2, in.w - 2, LT_STYLE_DIM, "answered %s", v->answers[i]);
        lt_dash_put(d, ++y, in.x, in.w, LT_STYLE_TITLE, v->question);
        y++;
        for (int i = 0; i < v->n_choices && y < in.y + in.h; i++, y++) {
            bool sel = i == v->choice;
            if (sel)
                lt_dash_fill(d, y, in.x, in.w, LT_STYLE_SELECT);
            lt_dash_putf(d, y, in.x, in.w, sel ? LT_STYLE_SELECT : LT_STYLE_NORMAL,
                         "%s %d  %s  (%s)", sel ? ">" : " ", i + 1, v->labels[i] ? v->labels[i] : v->values[i],
                         v->values[i]);
        }
        break;
    case W_RESULT:
        if (v->plan)
            draw_result(v, d, in);
        break;
    case W_EDIT:
        if (v->plan)
            draw_result(v, d, in);
        lt_form_draw(&v->form, d);
        break;
    case W_ERROR:
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_ERR, "That did not work:");
        lt_dash_put(d, y++, in.x, in.w, LT_STYLE_NORMAL, v->error);
        lt_dash_put(d, y + 1, in.x, in.w, LT_STYLE_DIM, "Esc starts over");
        break;
    }
}

/* ---- editing the saved config ---- */

/* Numbers offered first, in this order, even when the config leaves them out (an empty field
 * sets nothing); the config's other scalar keys follow. lora.* only for LoRA configs. */
static const char *const EDIT_FIRST[] = {
    "optimizer.lr", "epochs",       "max_steps",    "batch_size",
    "grad_accum",   "seq_len",      "lora.r",       "lora.alpha",
    "lora.dropout", "schedule.warmup_ratio", "optimizer.weight_decay", "seed",
};

/* The config value at "a" or "a.b" (NULL when absent). */
static cJSON *config_at(cJSON *cfg, const char *key)
{
    const char *dot = strchr(key, '.');
    if (!dot)
        return cJSON_GetObjectItemCaseSensitive(cfg, key);
    char head[64];
    snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(cfg, head);
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, dot + 1) : NULL;
}

static bool scalar(const cJSON *x)
{
    return cJSON_IsNumber(x) || cJSON_IsString(x) || cJSON_IsBool(x);
}

static void add_field(lt_form *f, const char *key, const cJSON *x)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->f[i].key, key) == 0)
            return;
    char val[1024];
    if (!x)
        val[0] = '\0';
    else if (cJSON_IsString(x))
        snprintf(val, sizeof val, "%s", x->valuestring);
    else if (cJSON_IsBool(x))
        snprintf(val, sizeof val, "%s", cJSON_IsTrue(x) ? "true" : "false");
    else
        snprintf(val, sizeof val, "%.10g", x->valuedouble);
    lt_form_add(f, key, key, strcmp(key, "model") == 0 ? LT_FIELD_PATH : LT_FIELD_TEXT, val);
}

static bool open_editor(wizard_view *v)
{
    char *text = slurp(v->config_path);
    cJSON *cfg = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        snprintf(v->error, sizeof v->error, "%.500s: cannot read the saved config", v->config_path);
        v->stage = W_ERROR;
        return false;
    }
    lt_form *f = &v->form;
    lt_form_init(f, "training config",
                 "checked by the training config parser when saved; an empty field sets nothing");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(cfg, "method");
    bool lora = cJSON_IsString(method) && strstr(method->valuestring, "lora");
    for (size_t i = 0; i < sizeof EDIT_FIRST / sizeof *EDIT_FIRST; i++) {
        const cJSON *x = config_at(cfg, EDIT_FIRST[i]);
        if (scalar(x) || (!x && (lora || strncmp(EDIT_FIRST[i], "lora.", 5) != 0)))
            add_field(f, EDIT_FIRST[i], x);
    }
    const cJSON *x;
    cJSON_ArrayForEach(x, cfg)
    {
        if (scalar(x))
            add_field(f, x->string, x);
        else if (cJSON_IsObject(x)) {
            const cJSON *y;
            cJSON_ArrayForEach(y, x)
            {
                char key[128];
                snprintf(key, sizeof key, "%s.%s", x->string, y->string);
                if (scalar(y) && strlen(key) < sizeof f->f[0].key)
                    add_field(f, key, y);
            }
        }
    }
    cJSON_Delete(cfg);
    v->stage = W_EDIT;
    return true;
}

/* Puts the form's values into the config, checks it with the training config parser and
 * writes it back. False with the form's error naming the field when a value is refused. */
static bool save_editor(wizard_view *v)
{
    lt_form *f = &v->form;
    char *text = slurp(v->config_path);
    cJSON *cfg = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        snprintf(f->error, sizeof f->error, "%.200s: cannot read the saved config",
                 v->config_path);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < f->n && ok; i++) {
        const lt_form_field *x = &f->f[i];
        cJSON *old = config_at(cfg, x->key);
        cJSON *nv = NULL;
        if (!old && !x->value[0])
            continue; /* left out, left empty */
        if (cJSON_IsString(old)) {
            nv = cJSON_CreateString(x->value);
        } else if (cJSON_IsBool(old)) {
            if (strcmp(x->value, "true") && strcmp(x->value, "false")) {
                snprintf(f->error, sizeof f->error, "%s: expected true or false", x->key);
                ok = false;
            } else {
                nv = cJSON_CreateBool(strcmp(x->value, "true") == 0);
            }
        } else {
            char *end = NULL;
            double dv = strtod(x->value, &end);
            if (!*x->value || end == x->value || *end || !isfinite(dv)) {
                snprintf(f->error, sizeof f->error, "%s: expected a number, got '%.40s'",
                         x->key, x->value);
                ok = false;
            } else {
                nv = cJSON_CreateNumber(dv);
            }
        }
        if (!ok) {
            f->cur = i;
            break;
        }
        const char *dot = strchr(x->key, '.');
        cJSON *parent = cfg;
        if (dot) {
            char head[64];
            snprintf(head, sizeof head, "%.*s", (int)(dot - x->key), x->key);
            parent = cJSON_GetObjectItemCaseSensitive(cfg, head);
            if (!parent)
                parent = cJSON_AddObjectToObject(cfg, head);
        }
        const char *leaf = dot ? dot + 1 : x->key;
        if (nv && cJSON_IsObject(parent) && old)
            cJSON_ReplaceItemInObjectCaseSensitive(parent, leaf, nv);
        else if (nv && cJSON_IsObject(parent))
            cJSON_AddItemToObject(parent, leaf, nv);
        else
            cJSON_Delete(nv);
    }
    char *json = ok ? cJSON_Print(cfg) : NULL;
    cJSON_Delete(cfg);
    if (!json) {
        if (ok)
            snprintf(f->error, sizeof f->error, "out of memory");
        return false;
    }
    /* the training config parser has the last word; its messages name the field ($.lora.r) */
    lt_train_config c;
    char err[512], dir[4200];
    snprintf(dir, sizeof dir, "%s", v->config_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    const char *base = strrchr(v->config_path, '/');
    if (!lt_train_config_parse(json, strlen(json), base ? base + 1 : v->config_path, dir, &c,
                               err, sizeof err)) {
        snprintf(f->error, sizeof f->error, "%.299s", err);
        free(json);
        return false;
    }
    lt_train_config_free(&c);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", v->config_path);
    FILE *out = fopen(tmp, "w");
    bool wrote = out && fputs(json, out) >= 0 && fputc('\n', out) != EOF;
    if (out && fclose(out) != 0)
        wrote = false;
    free(json);
    if (!wrote || rename(tmp, v->config_path) != 0) {
        unlink(tmp);
        snprintf(f->error, sizeof f->error, "%.200s: cannot write (%s)", v->config_path,
                 strerror(errno));
        return false;
    }
    return true;
}

static int key_edit(wizard_view *v, lt_dash *d, int ch)
{
    int r = lt_form_key(&v->form, ch);
    if (r == LT_FORM_CANCEL) {
        v->stage = W_RESULT;
    } else if (r == LT_FORM_SUBMIT && save_editor(v)) {
        v->form.open = false;
        v->edited = true;
        v->stage = W_RESULT;
        lt_dash_say(d, "config saved: %s", v->config_path);
    }
    return LT_KEY_HANDLED | LT_KEY_MODAL;
}

static int key_model(wizard_view *v, lt_dash *d, int ch)
{
    size_t len = strlen(v->model);
    if (ch == 27) {
        v->stage = W_DATA;
    } else if (ch == '\t') {
        lt_dash_complete_path(v->model, sizeof v->model);
    } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        while (len > 1 && v->model[len - 1] == '/')
            v->model[--len] = '\0';
        char abs[PATH_MAX];
        /* the config names the model from its own folder: give it an absolute path */
        if (len && realpath(v->model, abs) && strlen(abs) < sizeof v->model)
            memcpy(v->model, abs, strlen(abs) + 1);
        if (len) {
            v->n_answers = 0;
            run_plan(v, d, false);
        }
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        if (len)
            v->model[len - 1] = '\0';
    } else if (ch >= 0x20 && ch < 0x7f && len + 1 < sizeof v->model) {
        v->model[len] = (char)ch;
        v->model[len + 1] = '\0';
    }
    return LT_KEY_HANDLED | LT_KEY_MODAL;
}

static int wizard_key(void *state, lt_dash *d, int ch)
{
    wizard_view *v = state;
    switch (v->stage) {
    case W_DATA: {
        int r = lt_list_key(&v->list, ch, NULL, NULL);
        if (r != LT_KEY_IGNORED)
            return r;
        if ((ch == '\n' || ch == '\r' || ch == KEY_ENTER) && v->list.n > 0) {
            snprintf(v->dataset, sizeof v->dataset, "%s", v->ds[v->list.sel]);
            v->stage = W_MODEL;
            return LT_KEY_HANDLED;
        }
        return LT_KEY_IGNORED;
    }
    case W_MODEL:
        return key_model(v, d, ch);
    case W_QUESTION:
        if (ch == KEY_UP || ch == 'k') {
            v->choice = v->choice > 0 ? v->choice - 1 : 0;
        } else if (ch == KEY_DOWN || ch == 'j') {
            v->choice = v->choice + 1 < v->n_choices ? v->choice + 1 : v->choice;
        } else if (ch >= '1' && ch <= '9' && ch - '1' < v->n_choices) {
            v->choice = ch - '1';
        } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
            if (v->n_answers < MAX_ANSWERS && v->n_choices > 0) {
                snprintf(v->answers[v->n_answers++], sizeof v->answers[0], "%s=%s", v->key,
                         v->values[v->choice]);
                run_plan(v, d, false);
            }
        } else if (ch == 27) {
            v->stage = W_MODEL;
        } else {
            return LT_KEY_IGNORED;
        }
        return LT_KEY_HANDLED | LT_KEY_MODAL;
    case W_EDIT:
        return key_edit(v, d, ch);
    case W_RESULT:
        if (ch == 'e' && v->saved &&
            cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(v->plan, "config"))) {
            open_editor(v);
            return LT_KEY_HANDLED;
        }
        if (ch == 's' && v->plan) {
            run_plan(v, d, true);
            return LT_KEY_HANDLED;
        }
        if (ch == 't' && v->saved &&
            cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(v->plan, "config"))) {
            char *argv[] = {"lathe", "train", v->config_path, "--detach", "--workspace",
                            (char *)d->workspace, NULL};
            spawn(v, d, argv, J_TRAIN);
            return LT_KEY_HANDLED;
        }
        if (ch == 27) {
            v->stage = W_DATA;
            v->saved = v->edited = false;
            return LT_KEY_HANDLED;
        }
        return LT_KEY_IGNORED;
    case W_ERROR:
        if (ch == 27) {
            v->stage = W_DATA;
            return LT_KEY_HANDLED;
        }
        return LT_KEY_IGNORED;
    case W_RUNNING:
        break;
    }
    return LT_KEY_IGNORED;
}

static const char *wizard_footer(const void *state)
{
    const wizard_view *v = state;
    switch (v->stage) {
    case W_DATA:
        return "Enter pick  / search";
    case W_MODEL:
        return "type a path  Tab complete  Enter go on  Esc back";
    case W_QUESTION:
        return "Up/Down or 1-9 choose  Enter answer  Esc back";
    case W_RESULT:
        return v->saved ? "e edit config  t start training  Esc start over"
                        : "s save plan and config  Esc start over";
    case W_EDIT:
        return "";
    default:
        return "Esc start over";
    }
}

static int wizard_mouse(void *state, lt_dash *d, int kind, int y, int x)
{
    wizard_view *v = state;
    const lt_rect *r = lt_layout_pane(&d->lay, LT_PANE_MAIN);
    if (v->stage != W_DATA || !r)
        return LT_KEY_IGNORED;
    return lt_list_mouse_keys(&v->list, kind, y, x, *r, r->y + 2, wizard_key, v, d);
}

const lt_view_ops lt_view_wizard_ops = {
    LT_VIEW_WIZARD, wizard_init, wizard_free, wizard_resize, wizard_update, wizard_draw,
    wizard_key, wizard_footer, wizard_mouse,
};
