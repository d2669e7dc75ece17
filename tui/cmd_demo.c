/*
 * cmd_demo.c - `lathe demo`: the whole pipeline, headless, on the bundled base model
 * (assets/model) and the example instruction dataset (assets/data/people.jsonl), into a fresh
 * workspace: import (with the planted malformed rows reported), issues, inspect, dedup,
 * split, plan, LoRA training, evaluation against the base model's zero-shot and 2-shot
 * baselines, export, and where to look next.
 *
 * Each step is the subcommand a person would type, run as a child process of this same binary
 * (fork + exec of /proc/self/exe) and printed before it runs. Why not call the subcommand
 * functions in this process: each of them owns its process state (getopt's globals, the
 * trainer's SIGINT/SIGTERM handlers, device and thread pools, stdout buffering and exit
 * paths), so running them one after another in one process would couple them in ways no
 * subcommand was written for; a child per step is exactly what the printed command does when
 * typed. The numbers of the closing summary are read back from the store (the spine), never
 * scraped from the children's output. Export runs `lathe export` (PEFT, merged, GGUF); a
 * build without that subcommand falls back to pipeline/export directly (the run's PEFT folder
 * copied, base + adapter merged into a Hugging Face folder).
 *
 * Never touches a workspace it did not make: a folder that is neither empty nor marked by an
 * earlier demo (DEMO_MARK) is refused.
 */
#include "cli.h"

#include "export/merged.h"
#include "export/peft.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEMO_MARK "demo.json"
#define DEMO_DATASET "people"
#define MAX_ARGS 40

static const char *HELP =
    "usage: lathe demo [--workspace DIR] [--assets DIR] [--epochs N] [--device D] [--threads N]\n"
    "                  [--json]\n"
    "  Runs the whole pipeline headless on the bundled base model and the example dataset:\n"
    "  import (with its malformed rows), issues, inspect, dedup, split, plan, LoRA training,\n"
    "  evaluation (base zero-shot, base 2-shot, fine-tuned), export, then says where to look.\n"
    "  Every step is printed as the command that repeats it by hand.\n"
    "  --workspace DIR  a new or empty folder, or one an earlier demo made (it is remade);\n"
    "                   default $LATHE_HOME or ./.lathe\n"
    "  --assets DIR     the folder holding model/ and data/ (default: found next to the\n"
    "                   binary, or ./assets; or $LATHE_ASSETS)\n"
    "  --epochs N       LoRA training epochs (default 24; fewer is quicker and learns less)\n"
    "  --json           the children's output goes to stderr; a summary as JSON on stdout\n"
    "  Exit: 0 done, 1 a step failed, 2 bad usage.\n";

typedef struct demo {
    lt_cli_common cc;
    int epochs; /* LoRA training epochs */
    char ws[PATH_MAX];     /* absolute workspace */
    char assets[PATH_MAX]; /* absolute assets folder */
    char model[PATH_MAX];  /* assets/model */
    char data[PATH_MAX];   /* assets/data/people.jsonl */
    char threads[16];
    FILE *out;             /* human text: stdout, or stderr with --json */
    int step;
    double t0;
} demo;

/* snprintf that says whether it fit (paths here are checked where it matters; messages may
 * be cut). Through vsnprintf, so the compiler's truncation guesses about fixed buffers stay
 * out of the way. */
static bool fmt(char *out, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static bool fmt(char *out, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int k = vsnprintf(out, n, f, ap);
    va_end(ap);
    return k >= 0 && (size_t)k < n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool is_file(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    struct stat sb;
    fmt(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The assets folder: --assets, $LATHE_ASSETS, next to the binary (build/lathe -> assets/),
 * or ./assets. It must hold model/config.json and data/people.jsonl. */
static bool find_assets(demo *d, const char *given)
{
    char exe[PATH_MAX] = {0};
    char cands[4][PATH_MAX];
    int n = 0;
    if (given)
        fmt(cands[n++], PATH_MAX, "%s", given);
    else {
        const char *env = getenv("LATHE_ASSETS");
        if (env && *env)
            fmt(cands[n++], PATH_MAX, "%s", env);
        ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (k > 0) {
            exe[k] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = '\0';
            fmt(cands[n++], PATH_MAX, "%.*s/../assets", PATH_MAX - 16, exe);
            fmt(cands[n++], PATH_MAX, "%.*s/assets", PATH_MAX - 16, exe);
        }
        fmt(cands[n++], PATH_MAX, "assets");
    }
    for (int i = 0; i < n; i++) {
        char m[PATH_MAX + 16], dd[PATH_MAX + 16];
        fmt(m, sizeof(m), "%s/model", cands[i]);
        fmt(dd, sizeof(dd), "%s/data", cands[i]);
        if (is_file(m, "config.json") && is_file(dd, "people.jsonl") &&
            realpath(cands[i], d->assets)) {
            fmt(d->model, sizeof(d->model), "%.*s/model", PATH_MAX - 8, d->assets);
            fmt(d->data, sizeof(d->data), "%.*s/data/people.jsonl", PATH_MAX - 24,
                     d->assets);
            return true;
        }
    }
    return false;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Makes d->ws a fresh, empty workspace marked as the demo's. false with err when the folder
 * holds something the demo did not make, or cannot be made. */
static bool fresh_workspace(demo *d, char *err, size_t errlen)
{
    const char *ws = d->cc.workspace;
    struct stat sb;
    if (stat(ws, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            fmt(err, errlen, "%s exists and is not a folder", ws);
            return false;
        }
        if (is_file(ws, DEMO_MARK)) {
            if (nftw(ws, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
                fmt(err, errlen, "cannot remove the earlier demo in %s: %s", ws,
                         strerror(errno));
                return false;
            }
        } else if (rmdir(ws) != 0 && errno != ENOENT) {
            fmt(err, errlen,
                     "%s is not empty and was not made by 'lathe demo'; choose another folder "
                     "with --workspace DIR",
                     ws);
            return false;
        }
    }
    if (mkdir(ws, 0755) != 0) {
        fmt(err, errlen, "cannot create %s: %s", ws, strerror(errno));
        return false;
    }
    if (!realpath(ws, d->ws)) {
        fmt(err, errlen, "%s: %s", ws, strerror(errno));
        return false;
    }
    char mark[PATH_MAX + 16];
    fmt(mark, sizeof(mark), "%s/" DEMO_MARK, d->ws);
    FILE *f = fopen(mark, "w");
    if (!f || fprintf(f, "{\"made_by\": \"lathe demo\", \"assets\": \"%s\"}\n", d->assets) < 0 ||
        fclose(f) != 0) {
        fmt(err, errlen, "cannot write %s", mark);
        return false;
    }
    return true;
}

/* Prints argv as a shell command line ("lathe ..."), quoting what needs it. */
static void print_command(FILE *f, char *const argv[])
{
    fputs("$ lathe", f);
    for (int i = 1; argv[i]; i++) {
        const char *a = argv[i];
        bool plain = *a != '\0';
        for (const char *p = a; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,",
                        *p))
                plain = false;
        fputc(' ', f);
        if (plain)
            lt_cli_print_sanitized(f, a, false);
        else {
            fputc('\'', f);
            for (const char *p = a; *p; p++) {
                if (*p == '\'')
                    fputs("'\\''", f);
                else
                    fputc(*p, f);
            }
            fputc('\'', f);
        }
    }
    fputc('\n', f);
}

/* Runs one step: prints its title and command, then runs this binary with argv (argv[0] is
 * "lathe") in a child. stdin is /dev/null (nothing is asked); with --json the child's stdout
 * goes to stderr. Returns the child's exit code (LT_EXIT_FAIL when it could not run). */
static int run_step(demo *d, const char *title, char *const argv[])
{
    d->step++;
    fprintf(d->out, "\n== %d. %s\n", d->step, title);
    print_command(d->out, argv);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "lathe demo: fork: %s\n", strerror(errno));
        return LT_EXIT_FAIL;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            close(null);
        }
        if (d->cc.json)
            dup2(STDERR_FILENO, STDOUT_FILENO);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "lathe demo: cannot run /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return LT_EXIT_FAIL;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    fprintf(stderr, "lathe demo: step %d ended by signal %d\n", d->step,
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return LT_EXIT_FAIL;
}

/* argv builder: the fixed words, then --workspace (and --device/--threads when compute). */
typedef struct args {
    char *v[MAX_ARGS + 1];
    int n;
} args;

static void add(args *a, const char *s)
{
    if (a->n < MAX_ARGS)
        a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

/* compute: 0 no device options, 1 the demo's --device and --threads, 2 the same but one
 * thread unless --threads was given (a model this small is a chain of tiny ops that more
 * threads only slow down: four to ten times on a busy 2-core machine). */
static void add_common(demo *d, args *a, int compute)
{
    add(a, "--workspace");
    add(a, d->ws);
    if (compute) {
        add(a, "--device");
        add(a, d->cc.device);
        if (compute == 2 && d->cc.threads == 0) {
            add(a, "--threads");
            add(a, "1");
        } else if (d->cc.threads > 0) {
            add(a, "--threads");
            add(a, d->threads);
        }
    }
}

static bool has_command(const char *name)
{
    for (const lt_command *c = lt_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return true;
    return false;
}

/* The training config: the wizard's (plan.json) when it wrote one, with the demo's
 * settings for a 3.85 M parameter model on a CPU; else the demo's own. Written to path. */
static bool write_train_config(demo *d, const char *plan_path, const char *path, char *err,
                               size_t errlen)
{
    cJSON *c = NULL;
    FILE *f = fopen(plan_path, "rb");
    if (f) {
        char buf[16384];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        c = cJSON_Parse(buf);
    }
    if (!c) {
        c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "method", "lora");
        cJSON_AddStringToObject(c, "objective", "sft");
    }
    /* A tiny model learns a new output format fast at a higher LoRA learning rate than the
     * wizard's default (chosen for models of billions of parameters). */
    cJSON_DeleteItemFromObject(c, "model");
    cJSON_AddStringToObject(c, "model", d->model);
    cJSON_DeleteItemFromObject(c, "dataset");
    cJSON *ds = cJSON_AddObjectToObject(c, "dataset");
    cJSON_AddStringToObject(ds, "name", DEMO_DATASET);
    cJSON_AddStringToObject(ds, "split", "train");
    cJSON_DeleteItemFromObject(c, "epochs");
    cJSON_AddNumberToObject(c, "epochs", d->epochs);
    cJSON_DeleteItemFromObject(c, "seq_len");
    cJSON_AddNumberToObject(c, "seq_len", 96);
    cJSON_DeleteItemFromObject(c, "optimizer");
    cJSON *opt = cJSON_AddObjectToObject(c, "optimizer");
    cJSON_AddNumberToObject(opt, "lr", 0.003);
    /* Validation every 10 steps for the curves, but no early stopping: the model learns the
     * answer format and the commonest field first, and to read the job out of the prompt only
     * after a long plateau of the validation loss, which the wizard's patience would cut short
     * (24 epochs: 88 % exact match; 12: 43 %). */
    cJSON_DeleteItemFromObject(c, "eval");
    cJSON *ev = cJSON_AddObjectToObject(c, "eval");
    cJSON_AddNumberToObject(ev, "every", 10);
    cJSON_AddStringToObject(ev, "split", "val");
    cJSON_AddNumberToObject(ev, "patience", 0);
    cJSON_DeleteItemFromObject(c, "seed");
    cJSON_AddNumberToObject(c, "seed", 12);
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    f = text ? fopen(path, "w") : NULL;
    bool ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = false;
    free(text);
    if (!ok)
        fmt(err, errlen, "cannot write %s", path);
    return ok;
}

static bool copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb");
    FILE *b = a ? fopen(to, "wb") : NULL;
    bool ok = a && b;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof(buf), a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b && fclose(b) != 0)
        ok = false;
    return ok;
}

/* Export: the run's PEFT adapter copied to exports/people-lora, and base + adapter merged
 * into a Hugging Face folder at exports/people-merged (pipeline/export). */
static bool export_step(demo *d, const char *adapter_dir, char *err, size_t errlen)
{
    char dir[PATH_MAX + 64], from[PATH_MAX + 64], to[PATH_MAX + 128];
    d->step++;
    fprintf(d->out, "\n== %d. export\n", d->step);
    fmt(dir, sizeof(dir), "%s/exports", d->ws);
    mkdir(dir, 0755);
    fmt(dir, sizeof(dir), "%s/exports/people-lora", d->ws);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fmt(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return false;
    }
    static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors"};
    for (int i = 0; i < 2; i++) {
        fmt(from, sizeof(from), "%s/%s", adapter_dir, files[i]);
        fmt(to, sizeof(to), "%s/%s", dir, files[i]);
        if (!copy_file(from, to)) {
            fmt(err, errlen, "cannot copy %s to %s", from, to);
            return false;
        }
    }
    fprintf(d->out, "PEFT adapter (Hugging Face peft loads it): %s\n", dir);

    char merged[PATH_MAX + 64];
    fmt(merged, sizeof(merged), "%s/exports/people-merged", d->ws);
    lt_device *dev = lt_device_open(d->cc.device, d->cc.threads, err, errlen);
    lt_model *m = NULL;
    lt_lora_adapter *a = NULL;
    bool ok = false;
    if (!dev)
        return false;
    if (lt_model_load(d->model, dev, LT_MODEL_DTYPE_STORED, &m, err, errlen) != LT_MODEL_OK)
        goto close_device;
    if (lt_peft_load(m, adapter_dir, &a, err, errlen) != LT_MODEL_OK)
        goto free_model;
    if (lt_export_merged(m, a, d->model, merged, false, err, errlen) != LT_MODEL_OK)
        goto free_adapter;
    fprintf(d->out, "merged model (transformers and lathe load it): %s\n", merged);
    if (!has_command("export"))
        fprintf(d->out, "GGUF: not in this build (lathe export --format gguf)\n");
    ok = true;
free_adapter:
    lt_peft_free(a);
free_model:
    lt_model_free(m);
close_device:
    lt_device_close(dev);
    return ok;
}

/* ---- the summary, from the store ---- */

typedef struct summary {
    int64_t rows_in, bad_rows, kept, exact, near;
    int64_t run_id;
    char run_status[32];
    double last_loss, best_val;
    int n_evals;
    char eval_system[8][64];
    double eval_em[8], eval_json[8];
} summary;

static void read_summary(demo *d, summary *s)
{
    memset(s, 0, sizeof(*s));
    s->last_loss = s->best_val = NAN;
    lt_store *st = NULL;
    char err[512];
    if (lt_store_open(d->ws, &st, err, sizeof(err)) != LT_STORE_OK)
        return;
    lt_store_iter *it = NULL;
    lt_store_version v;
    int64_t n_clusters = 0;
    if (lt_store_version_get(st, DEMO_DATASET, 1, &v) == LT_STORE_OK) {
        s->rows_in = v.n_rows;
        if (lt_store_issues_iter(st, v.dataset_id, 1, &it) == LT_STORE_OK) {
            lt_store_issue is;
            while (lt_store_issues_next(it, &is) == LT_STORE_OK)
                if (is.severity && strcmp(is.severity, "error") == 0)
                    s->bad_rows++;
            lt_store_iter_free(it);
        }
    }
    if (lt_store_version_get(st, DEMO_DATASET, 2, &v) == LT_STORE_OK) {
        s->kept = v.n_rows;
        lt_store_dedup_counts(st, v.version_id, &s->exact, &s->near, &n_clusters);
    }
    lt_store_run r;
    if (lt_store_runs_iter(st, &it) == LT_STORE_OK) {
        if (lt_store_runs_next(it, &r) == LT_STORE_OK) {
            s->run_id = r.id;
            fmt(s->run_status, sizeof(s->run_status), "%s", r.status ? r.status : "");
        }
        lt_store_iter_free(it);
    }
    int64_t n, step;
    double min;
    if (s->run_id) {
        lt_store_metric_summary(st, s->run_id, "loss", &n, &s->last_loss, &step, &min, &step);
        lt_store_metric_summary(st, s->run_id, "val_loss", &n, &min, &step, &s->best_val, &step);
    }
    /* evals are listed newest first; the summary shows them in the order they ran */
    lt_store_eval e;
    if (lt_store_evals_iter(st, 0, &it) == LT_STORE_OK) {
        while (s->n_evals < 8 && lt_store_evals_next(it, &e) == LT_STORE_OK) {
            cJSON *j = e.results ? cJSON_Parse(e.results) : NULL;
            const cJSON *sys = cJSON_GetObjectItemCaseSensitive(j, "system");
            const cJSON *met = cJSON_GetObjectItemCaseSensitive(j, "metrics");
            const cJSON *em = cJSON_GetObjectItemCaseSensitive(met, "exact_match");
            const cJSON *jv = cJSON_GetObjectItemCaseSensitive(met, "json_valid");
            if (cJSON_IsString(sys) && cJSON_IsNumber(em)) {
                int k = s->n_evals++;
                memmove(&s->eval_system[1], &s->eval_system[0], sizeof(s->eval_system[0]) * k);
                memmove(&s->eval_em[1], &s->eval_em[0], sizeof(double) * k);
                memmove(&s->eval_json[1], &s->eval_json[0], sizeof(double) * k);
                fmt(s->eval_system[0], sizeof(s->eval_system[0]), "%s", sys->valuestring);
                s->eval_em[0] = em->valuedouble;
                s->eval_json[0] = cJSON_IsNumber(jv) ? jv->valuedouble : NAN;
            }
            cJSON_Delete(j);
        }
        lt_store_iter_free(it);
    }
    lt_store_close(st);
}

static void print_summary_json(const demo *d, const summary *s, bool ok, double wall_s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "ok", ok);
    cJSON_AddStringToObject(j, "workspace", d->ws);
    cJSON_AddStringToObject(j, "model", d->model);
    cJSON_AddNumberToObject(j, "wall_s", wall_s);
    cJSON *imp = cJSON_AddObjectToObject(j, "import");
    cJSON_AddNumberToObject(imp, "rows", (double)s->rows_in);
    cJSON_AddNumberToObject(imp, "bad_rows", (double)s->bad_rows);
    cJSON *dd = cJSON_AddObjectToObject(j, "dedup");
    cJSON_AddNumberToObject(dd, "exact", (double)s->exact);
    cJSON_AddNumberToObject(dd, "near", (double)s->near);
    cJSON_AddNumberToObject(dd, "kept", (double)s->kept);
    cJSON *run = cJSON_AddObjectToObject(j, "run");
    cJSON_AddNumberToObject(run, "id", (double)s->run_id);
    cJSON_AddStringToObject(run, "status", s->run_status);
    if (isfinite(s->last_loss))
        cJSON_AddNumberToObject(run, "last_loss", s->last_loss);
    if (isfinite(s->best_val))
        cJSON_AddNumberToObject(run, "best_val_loss", s->best_val);
    cJSON *ev = cJSON_AddArrayToObject(j, "eval");
    for (int i = 0; i < s->n_evals; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "system", s->eval_system[i]);
        cJSON_AddNumberToObject(o, "exact_match", s->eval_em[i]);
        if (isfinite(s->eval_json[i]))
            cJSON_AddNumberToObject(o, "json_valid", s->eval_json[i]);
        cJSON_AddItemToArray(ev, o);
    }
    char p[PATH_MAX + 64];
    cJSON *ex = cJSON_AddObjectToObject(j, "exports");
    fmt(p, sizeof(p), "%s/exports/people-lora", d->ws);
    cJSON_AddStringToObject(ex, "peft", p);
    fmt(p, sizeof(p), "%s/exports/people-merged", d->ws);
    cJSON_AddStringToObject(ex, "merged", p);
    char *text = cJSON_Print(j);
    if (text)
        printf("%s\n", text);
    free(text);
    cJSON_Delete(j);
}

static void print_summary(const demo *d, const summary *s, double wall_s)
{
    FILE *f = d->out;
    fprintf(f, "\n== summary (%.0f s)\n", wall_s);
    fprintf(f, "data      %lld rows imported, %lld malformed rows reported; dedup removed %lld "
               "exact and %lld near duplicates, %lld rows kept\n",
            (long long)s->rows_in, (long long)s->bad_rows, (long long)s->exact,
            (long long)s->near, (long long)s->kept);
    fprintf(f, "training  run %lld %s, last loss %.4f, best validation loss %.4f\n",
            (long long)s->run_id, s->run_status, s->last_loss, s->best_val);
    fprintf(f, "exact match on the test split (the metric the task is judged by):\n");
    for (int i = 0; i < s->n_evals; i++)
        fprintf(f, "  %-16s %5.1f %%   (valid JSON %5.1f %%)\n", s->eval_system[i],
                100.0 * s->eval_em[i], 100.0 * s->eval_json[i]);
    fprintf(f, "\nwhere to look next:\n");
    fprintf(f, "  lathe --workspace %s                 the dashboard on this workspace\n", d->ws);
    fprintf(f, "  lathe runs show %lld --workspace %s    the run: config, metrics, checkpoints\n",
            (long long)s->run_id, d->ws);
    fprintf(f, "  lathe eval show 3 --worst --workspace %s    where the fine-tuned model errs\n",
            d->ws);
    fprintf(f, "  lathe data issues %s --workspace %s    the malformed rows\n", DEMO_DATASET,
            d->ws);
    fprintf(f, "  lathe generate --model %s --adapter %s/exports/people-lora --chat \\\n"
               "      --prompt 'Give the field of work of the person as JSON: food, health, arts, "
               "trades, transport or office.\n"
               "Tom, 41, works as a baker in Oslo.'\n",
            d->model, d->ws);
    fprintf(f, "  %s/data  also holds a preference-pair set (DPO) and raw text for continued "
               "pretraining\n",
            d->assets);
}

static int parse_args(demo *d, int argc, char **argv, const char **assets)
{
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&d->cc, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(HELP, stdout);
            return -1;
        }
        if (strcmp(argv[i], "--assets") == 0 && i + 1 < argc) {
            *assets = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 1000) {
                fprintf(stderr, "lathe demo: --epochs needs a number from 1 to 1000\n");
                return LT_EXIT_USAGE;
            }
            d->epochs = (int)n;
            continue;
        }
        fprintf(stderr, "lathe demo: unknown option '%s'\n\n%s", argv[i], HELP);
        return LT_EXIT_USAGE;
    }
    return LT_EXIT_OK;
}

int lt_cmd_demo(int argc, char **argv)
{
    demo d;
    memset(&d, 0, sizeof(d));
    lt_cli_common_defaults(&d.cc);
    d.epochs = 24;
    const char *assets = NULL;
    int rc = parse_args(&d, argc, argv, &assets);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    d.out = d.cc.json ? stderr : stdout;
    fmt(d.threads, sizeof(d.threads), "%d", d.cc.threads);
    d.t0 = now_s();
    char err[1024];
    summary s;
    if (!find_assets(&d, assets))
        return lt_cli_fail("demo", LT_EXIT_FAIL,
                           "no bundled assets found (model/config.json and data/people.jsonl); "
                           "pass --assets DIR (the repository's assets/ folder)");
    if (!fresh_workspace(&d, err, sizeof(err)))
        return lt_cli_fail("demo", LT_EXIT_FAIL, "%s", err);
    fprintf(d.out, "lathe demo: the bundled model %s learns to answer in a JSON format\n"
                   "(%s: a person's name and city, out of a sentence), in the workspace %s\n",
            d.model, d.data, d.ws);

    char plan_path[PATH_MAX + 32], cfg_path[PATH_MAX + 32], adapter[PATH_MAX + 64];
    fmt(plan_path, sizeof(plan_path), "%s/plan.json", d.ws);
    fmt(cfg_path, sizeof(cfg_path), "%s/demo-train.json", d.ws);
    args a;

#define STEP(title, compute, ...)                                                            \
    do {                                                                                     \
        a.n = 0;                                                                             \
        const char *w_[] = {"lathe", __VA_ARGS__, NULL};                                     \
        for (int k_ = 0; w_[k_]; k_++)                                                       \
            add(&a, w_[k_]);                                                                 \
        add_common(&d, &a, compute);                                                         \
        rc = run_step(&d, title, a.v);                                                       \
    } while (0)

    STEP("import the example dataset (it has planted duplicates and malformed rows)", 0,
         "data", "import", d.data, "--name", DEMO_DATASET);
    if (rc != LT_EXIT_OK)
        goto failed;
    STEP("the malformed rows, with file, line and reason", 0, "data", "issues",
         DEMO_DATASET);
    if (rc != LT_EXIT_OK)
        goto failed;
    STEP("inspect: formats, lengths in tokens, repeats, duplicates", 0, "data", "inspect",
         DEMO_DATASET, "--model", d.model, "--top", "3");
    if (rc != LT_EXIT_OK)
        goto failed;
    STEP("deduplicate: exact and near (MinHash LSH) duplicates", 0, "data", "dedup",
         DEMO_DATASET);
    if (rc != LT_EXIT_OK)
        goto failed;
    STEP("split train/val/test (near duplicates kept together)", 0, "data", "split",
         DEMO_DATASET, "--val", "0.05", "--test", "0.1", "--seed", "12");
    if (rc != LT_EXIT_OK)
        goto failed;
    if (has_command("plan")) {
        STEP("plan: the wizard chooses the method from this machine, the model and the data",
             1, "plan", "--model", d.model, "--data", DEMO_DATASET, "--need", "new_task",
             "--fewshot-tried", "yes", "--concern-forgetting", "no", "--out", plan_path,
             "--force");
        if (rc != LT_EXIT_OK)
            fprintf(d.out, "(the wizard failed; the demo trains with its own LoRA settings)\n");
    }
    if (!write_train_config(&d, plan_path, cfg_path, err, sizeof(err))) {
        lt_cli_fail("demo", LT_EXIT_FAIL, "%s", err);
        goto failed;
    }
    fprintf(d.out, "\nthe demo trains with the plan, at a learning rate and length for a model "
                   "this small:\n");
    {
        FILE *f = fopen(cfg_path, "r");
        char line[512];
        while (f && fgets(line, sizeof(line), f))
            fputs(line, d.out);
        if (f)
            fclose(f);
    }
    STEP("LoRA fine-tuning", 2, "train", cfg_path);
    if (rc != LT_EXIT_OK)
        goto failed;
    fmt(adapter, sizeof(adapter), "%s/runs/1/adapter", d.ws);
    STEP("evaluate on the test split: base zero-shot, base 2-shot, fine-tuned", 2, "eval",
         "--model", d.model, "--data", DEMO_DATASET, "--run", "1", "--baselines",
         "zero,kshot:2", "--max-new-tokens", "32", "--samples", "2");
    if (rc != LT_EXIT_OK)
        goto failed;
    if (has_command("export")) {
        char peft[PATH_MAX + 64], merged[PATH_MAX + 64], gguf[PATH_MAX + 64];
        fmt(peft, sizeof(peft), "%s/exports/people-lora", d.ws);
        fmt(merged, sizeof(merged), "%s/exports/people-merged", d.ws);
        fmt(gguf, sizeof(gguf), "%s/exports/people.gguf", d.ws);
        char exports[PATH_MAX + 16];
        fmt(exports, sizeof(exports), "%s/exports", d.ws);
        mkdir(exports, 0755);
        STEP("export: PEFT adapter (Hugging Face peft)", 2, "export", "1", "--format", "peft",
             peft);
        if (rc != LT_EXIT_OK)
            goto failed;
        STEP("export: merged Hugging Face folder (transformers)", 2, "export", "1", "--format",
             "merged", merged);
        if (rc != LT_EXIT_OK)
            goto failed;
        STEP("export: GGUF (llama.cpp)", 2, "export", "1", "--format", "gguf", gguf);
        if (rc != LT_EXIT_OK) /* the adapters and the merged folder are the demo's exports */
            fprintf(d.out, "(the GGUF export reported a problem above; the demo goes on)\n");
        rc = LT_EXIT_OK;
    } else if (!export_step(&d, adapter, err, sizeof(err))) {
        lt_cli_fail("demo", LT_EXIT_FAIL, "export: %s", err);
        rc = LT_EXIT_FAIL;
        goto failed;
    }
#undef STEP

    read_summary(&d, &s);
    print_summary(&d, &s, now_s() - d.t0);
    if (d.cc.json)
        print_summary_json(&d, &s, true, now_s() - d.t0);
    return LT_EXIT_OK;

failed:
    fprintf(stderr, "lathe demo: step %d failed (exit %d); the workspace %s shows how far it "
                    "got\n",
            d.step, rc, d.ws);
    if (d.cc.json) {
        read_summary(&d, &s);
        print_summary_json(&d, &s, false, now_s() - d.t0);
    }
    return LT_EXIT_FAIL;
}
