/*
 * cmd_eval.c - `lathe eval`: evaluate a base model (zero-shot, k-shot), runs and adapters on
 * a dataset split into one table; `lathe eval show EVAL` and `lathe eval compare EVAL...`
 * print stored evaluations as Markdown, CSV or JSON, with samples side by side.
 *
 * Only parsing and printing live here; the work is pipeline/eval's, the rows the store's.
 * Dataset and model strings are printed sanitized.
 */
#include "cli.h"
#include "cmd_data.h"

#include "eval/eval.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
    "usage: lathe eval --model DIR [--adapter DIR | --run RUN]... --data NAME [options]\n"
    "       lathe eval show EVAL [--samples N] [--worst] [--format markdown|csv|json]\n"
    "       lathe eval compare EVAL... | --runs RUN... [--samples N] [--worst] [--format F]\n"
    "  --split NAME            split to evaluate (test)\n"
    "  --baselines LIST        base-model baselines: zero, kshot:K, none (zero, or\n"
    "                          zero alone when no run or adapter is given)\n"
    "  --max-rows N            rows of the split at most (all)\n"
    "  --max-new-tokens N      greedy generation length (64)\n"
    "  --batch N               rows per forward pass in generation and the loss (8);\n"
    "                          the outputs are those of one row at a time\n"
    "  --em LIST               exact-match normalisation: none, squad, or a list of\n"
    "                          case,punct,articles,space (space)\n"
    "  --general NAME          forgetting check: perplexity on this dataset's text\n"
    "  --seed S                k-shot example draw (1234)\n"
    "  --template NAME         chat family when the template is not recognised\n"
    "  --samples N             rows shown side by side (3; 0 = none)\n"
    "  --worst                 worst rows first (lowest ROUGE-L of the last system)\n"
    "  --format F              markdown (default), csv or json\n"
    "  --progress-file PATH    keep one line there, \"FRACTION TEXT\", replaced as rows are\n"
    "                          done (FRACTION over every system's rows)\n"
    "  --device auto|cpu|vulkan:N  --threads N  --workspace DIR  --json\n";

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct view {
    int64_t id;
    cJSON *res;
    cJSON *samples; /* array of {sample_id, prompt, reference, output, scores} */
} view;

/* Where the systems' rows stand, for --progress-file: a system is over once its done reaches
 * its total; the next call starts the next one. */
typedef struct eval_progress {
    int n_systems;
    int index;        /* system now running */
    bool system_done; /* the last call ended a system */
} eval_progress;

static void progress(void *ctx, const char *system, int64_t done, int64_t total)
{
    eval_progress *p = ctx;
    if (p->system_done) {
        p->index++;
        p->system_done = false;
    }
    if (done >= total)
        p->system_done = true;
    int k = p->index < p->n_systems ? p->index : p->n_systems - 1;
    double f = total > 0 ? (double)(done < total ? done : total) / (double)total : 1;
    lt_data_progress(done >= total, ((double)k + f) / (double)p->n_systems,
                     "system %d/%d: %lld/%lld rows", k + 1, p->n_systems, (long long)done,
                     (long long)total);
    if (isatty(2)) {
        fprintf(stderr, "\r%-24.24s %lld/%lld rows", system, (long long)done, (long long)total);
        if (done == total)
            fputc('\n', stderr);
    } else if (done == total || done % 50 == 0)
        fprintf(stderr, "%s: %lld/%lld rows\n", system, (long long)done, (long long)total);
}

static bool view_load(lt_store *st, int64_t id, view *v)
{
    lt_store_iter *it = NULL;
    lt_store_eval e;
    memset(v, 0, sizeof(*v));
    if (lt_store_eval_get(st, id, &it, &e) != LT_STORE_OK)
        return false;
    v->id = id;
    v->res = cJSON_Parse(e.results);
    lt_store_iter_free(it);
    v->samples = cJSON_CreateArray();
    lt_store_eval_sample s;
    if (!v->res || lt_store_eval_samples_iter(st, id, &it) != LT_STORE_OK)
        return false;
    while (lt_store_eval_samples_next(it, &s) == LT_STORE_OK) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "sample_id", (double)s.sample_id);
        cJSON_AddStringToObject(o, "prompt", s.prompt ? s.prompt : "");
        cJSON_AddStringToObject(o, "reference", s.reference ? s.reference : "");
        cJSON_AddStringToObject(o, "output", s.output ? s.output : "");
        cJSON *sc = s.scores ? cJSON_Parse(s.scores) : NULL;
        cJSON_AddItemToObject(o, "scores", sc ? sc : cJSON_CreateObject());
        cJSON_AddItemToArray(v->samples, o);
    }
    lt_store_iter_free(it);
    return true;
}

static void view_free(view *v)
{
    cJSON_Delete(v->res);
    cJSON_Delete(v->samples);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(x) ? x->valuestring : "";
}

/* CSV field: quoted, quotes doubled, control characters made visible. */
static void csv_field(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            fputs("\"\"", stdout);
        else {
            char c[2] = {*s, 0};
            lt_cli_print_sanitized(stdout, c, false);
        }
    }
    putchar('"');
}

static const char *cols[] = {"loss",     "ppl",      "exact_match", "rougeL", "bleu",
                             "accuracy", "macro_f1", "json_valid",  "acc",    "acc_norm"};
enum { N_COLS = 10 };

static void print_table(view *v, int n, const char *fmt)
{
    bool has[N_COLS] = {0}, forget = false;
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_GetObjectItem(v[i].res, "metrics");
        for (int k = 0; k < N_COLS; k++)
            has[k] |= cJSON_IsNumber(cJSON_GetObjectItem(m, cols[k]));
        forget |= cJSON_GetObjectItem(v[i].res, "forgetting") != NULL;
    }
    bool csv = !strcmp(fmt, "csv");
    const char *sep = csv ? "," : " | ";
    printf(csv ? "eval,system" : "| eval | system");
    for (int k = 0; k < N_COLS; k++)
        if (has[k])
            printf("%s%s", sep, cols[k]);
    if (forget)
        printf("%sgeneral_ppl%sgeneral_ppl_change", sep, sep);
    printf(csv ? "\n" : " |\n");
    if (!csv) {
        printf("|---|---");
        for (int k = 0; k < N_COLS + 2 * forget; k++)
            if (k >= N_COLS || has[k])
                printf("|---");
        printf("|\n");
    }
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_GetObjectItem(v[i].res, "metrics");
        printf(csv ? "%lld," : "| %lld | ", (long long)v[i].id);
        if (csv)
            csv_field(str(v[i].res, "system"));
        else
            lt_cli_print_sanitized(stdout, str(v[i].res, "system"), false);
        for (int k = 0; k < N_COLS; k++) {
            if (!has[k])
                continue;
            double x = num(m, cols[k]);
            bool pct = k >= 2 && k != 4;
            if (isnan(x))
                printf("%s", sep);
            else
                printf("%s%.4g", sep, pct ? 100 * x : x);
        }
        if (forget) {
            cJSON *f = cJSON_GetObjectItem(v[i].res, "forgetting");
            printf("%s%.4g%s%+.4g", sep, num(f, "ppl"), sep, num(f, "change"));
        }
        printf(csv ? "\n" : " |\n");
    }
    if (!csv)
        printf("\n%s in percent%s.\n",
               has[8] || has[9] ? "acc (best summed log-probability) and acc_norm (per character)"
                                : "exact_match, rougeL, accuracy, macro_f1, json_valid",
               has[4] ? "; bleu 0-100" : "");
}

static double row_key(cJSON *s)
{
    cJSON *sc = cJSON_GetObjectItem(s, "scores");
    double a = num(sc, "acc");
    if (!isnan(a)) /* multiple choice: wrong rows first, then by the gold choice's margin */
        return a + num(sc, "acc_norm");
    double r = num(sc, "rougeL");
    return isnan(r) ? 0 : r + num(sc, "exact_match");
}

/* Prints n_show rows side by side; rows are the first view's samples matched by sample_id. */
static void print_samples(view *v, int n, int n_show, bool worst)
{
    int rows = cJSON_GetArraySize(v[0].samples);
    int *order = malloc(((size_t)rows + 1) * sizeof(int));
    if (!order)
        return;
    for (int i = 0; i < rows; i++)
        order[i] = i;
    if (worst) { /* insertion sort by the last system's scores, lowest first (stable) */
        cJSON *last = v[n - 1].samples;
        for (int i = 1; i < rows; i++)
            for (int j = i; j > 0 && row_key(cJSON_GetArrayItem(last, order[j])) <
                                         row_key(cJSON_GetArrayItem(last, order[j - 1]));
                 j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    }
    for (int r = 0; r < rows && r < n_show; r++) {
        cJSON *s0 = cJSON_GetArrayItem(v[0].samples, order[r]);
        printf("\n--- row %d (sample %lld)\nprompt:    ", order[r] + 1,
               (long long)num(s0, "sample_id"));
        lt_cli_print_sanitized(stdout, str(s0, "prompt"), false);
        printf("\nreference: ");
        lt_cli_print_sanitized(stdout, str(s0, "reference"), false);
        putchar('\n');
        for (int i = 0; i < n; i++) {
            cJSON *s = cJSON_GetArrayItem(v[i].samples, order[r]);
            cJSON *sc = cJSON_GetObjectItem(s, "scores");
            printf("[");
            lt_cli_print_sanitized(stdout, str(v[i].res, "system"), false);
            if (cJSON_IsArray(cJSON_GetObjectItem(sc, "loglik"))) {
                printf("] acc %g acc_norm %g: ", num(sc, "acc"), num(sc, "acc_norm"));
                lt_cli_print_sanitized(stdout, str(s, "output"), false);
                printf("\n    log-probs:");
                cJSON *ll = cJSON_GetObjectItem(sc, "loglik"), *x;
                int j = 0;
                cJSON_ArrayForEach(x, ll)
                {
                    printf(" %c%s%.3f", 'A' + j, j == (int)num(sc, "gold") ? "*" : " ",
                           x->valuedouble);
                    j++;
                }
                printf("  (* gold)");
            } else {
                printf("] em %g rougeL %.3f: ", num(sc, "exact_match"), num(sc, "rougeL"));
                lt_cli_print_sanitized(stdout, str(s, "output"), false);
            }
            putchar('\n');
        }
    }
    free(order);
}

static void print_views(view *v, int n, const char *fmt, int n_show, bool worst)
{
    if (!strcmp(fmt, "json")) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "eval", (double)v[i].id);
            cJSON_AddItemReferenceToObject(o, "results", v[i].res);
            if (n_show > 0)
                cJSON_AddItemReferenceToObject(o, "samples", v[i].samples);
            cJSON_AddItemToArray(a, o);
        }
        char *s = cJSON_PrintUnformatted(a);
        if (s)
            puts(s);
        cJSON_free(s);
        cJSON_Delete(a);
        return;
    }
    print_table(v, n, fmt);
    if (!strcmp(fmt, "markdown")) {
        cJSON *r = v[0].res;
        printf("\ndataset ");
        lt_cli_print_sanitized(stdout, str(r, "dataset"), false);
        printf(" v%g split ", num(r, "dataset_version"));
        lt_cli_print_sanitized(stdout, str(r, "split"), false);
        cJSON *dec = cJSON_GetObjectItem(r, "decoding");
        if (dec)
            printf(", %g rows; greedy, %g new tokens at most; exact match normalised: %s\n",
                   num(r, "n_rows"), num(dec, "max_new_tokens"), str(r, "em_normalize"));
        else
            printf(", %g rows; multiple choice scored by log-likelihood (acc_norm per "
                   "character)\n",
                   num(r, "n_rows"));
        if (n_show > 0)
            print_samples(v, n, n_show, worst);
    }
}

static int show_evals(lt_store *st, int64_t *ids, int n, const char *fmt, int n_show,
                      bool worst)
{
    view *v = calloc((size_t)n, sizeof(view));
    int rc = LT_EXIT_OK;
    if (!v)
        return LT_EXIT_FAIL;
    for (int i = 0; i < n; i++)
        if (!view_load(st, ids[i], &v[i])) {
            rc = lt_cli_fail("eval", LT_EXIT_FAIL, "no eval %lld", (long long)ids[i]);
            break;
        }
    if (rc == LT_EXIT_OK)
        print_views(v, n, fmt, n_show, worst);
    for (int i = 0; i < n; i++)
        view_free(&v[i]);
    free(v);
    return rc;
}

/* The newest eval of a run. */
static bool run_latest_eval(lt_store *st, const char *run, int64_t *id)
{
    int64_t run_id;
    lt_store_iter *it = NULL;
    lt_store_eval e;
    if (lt_store_run_find(st, run, &run_id) != LT_STORE_OK ||
        lt_store_evals_iter(st, run_id, &it) != LT_STORE_OK)
        return false;
    bool ok = lt_store_evals_next(it, &e) == LT_STORE_OK;
    if (ok)
        *id = e.id;
    lt_store_iter_free(it);
    return ok;
}

static bool parse_i64(const char *s, int64_t lo, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo)
        return false;
    *out = v;
    return true;
}

int lt_cmd_eval(int argc, char **argv)
{
    lt_cli_common cc;
    lt_cli_common_defaults(&cc);
    lt_eval_opts o;
    lt_eval_opts_default(&o);
    const char *fmt = "markdown", *baselines = NULL, *sub = NULL;
    const char *runs[LT_EVAL_MAX_SYSTEMS], *adapters[LT_EVAL_MAX_SYSTEMS];
    int n_runs = 0, n_adapters = 0, n_show = 3, n_ids = 0;
    int64_t ids[64];
    bool worst = false, by_runs = false;
    int first = 1;
    if (argc > 1 && (!strcmp(argv[1], "show") || !strcmp(argv[1], "compare"))) {
        sub = argv[1];
        first = 2;
    }
    for (int i = first; i < argc; i++) {
        int r = lt_cli_common_parse(&cc, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return LT_EXIT_OK;
        } else if (!strcmp(a, "--worst")) {
            worst = true;
            continue;
        } else if (!strcmp(a, "--runs")) {
            by_runs = true;
            continue;
        } else if (a[0] != '-') {
            if (!sub || n_ids >= 64)
                return lt_cli_fail("eval", LT_EXIT_USAGE, "unexpected argument %s\n%s", a, help);
            if (by_runs)
                ids[n_ids] = -1; /* a run, resolved once the store is open */
            else if (!parse_i64(a, 1, &ids[n_ids]))
                return lt_cli_fail("eval", LT_EXIT_USAGE, "%s: expected an eval id", a);
            n_ids++;
            continue;
        }
        if (!v)
            return lt_cli_fail("eval", LT_EXIT_USAGE, "%s needs a value\n%s", a, help);
        i++;
        if (!strcmp(a, "--model"))
            o.model = v;
        else if (!strcmp(a, "--data"))
            o.dataset = v;
        else if (!strcmp(a, "--split"))
            o.split = v;
        else if (!strcmp(a, "--adapter") && n_adapters < LT_EVAL_MAX_SYSTEMS)
            adapters[n_adapters++] = v;
        else if (!strcmp(a, "--run") && n_runs < LT_EVAL_MAX_SYSTEMS)
            runs[n_runs++] = v;
        else if (!strcmp(a, "--baselines"))
            baselines = v;
        else if (!strcmp(a, "--general"))
            o.general = v;
        else if (!strcmp(a, "--template"))
            o.chat_template = v;
        else if (!strcmp(a, "--progress-file"))
            lt_data_progress_set(v);
        else if (!strcmp(a, "--format") &&
                 (!strcmp(v, "markdown") || !strcmp(v, "csv") || !strcmp(v, "json")))
            fmt = v;
        else if (!strcmp(a, "--em")) {
            if ((o.em_flags = lt_em_flags_parse(v)) < 0)
                return lt_cli_fail("eval", LT_EXIT_USAGE,
                                   "--em: none, squad, or case,punct,articles,space");
        } else if (!strcmp(a, "--max-rows") && parse_i64(v, 1, &x))
            o.max_rows = x;
        else if (!strcmp(a, "--max-new-tokens") && parse_i64(v, 1, &x) && x <= 100000)
            o.max_new_tokens = (int)x;
        else if (!strcmp(a, "--batch") && parse_i64(v, 1, &x) && x <= 256)
            o.batch = (int)x;
        else if (!strcmp(a, "--samples") && parse_i64(v, 0, &x))
            n_show = (int)(x > 1000000 ? 1000000 : x);
        else if (!strcmp(a, "--seed") && parse_i64(v, 0, &x))
            o.seed = (uint64_t)x;
        else
            return lt_cli_fail("eval", LT_EXIT_USAGE, "%s %s: bad option or value\n%s", a, v,
                               help);
    }
    if (cc.json)
        fmt = "json";
    lt_store *st = NULL;
    char err[2048];
    int rc = LT_EXIT_FAIL;
    if (sub) {
        if (n_ids == 0 || (!strcmp(sub, "show") && n_ids != 1))
            return lt_cli_fail("eval", LT_EXIT_USAGE, "%s needs %s\n%s", sub,
                               strcmp(sub, "show") ? "EVAL ids (or --runs RUN...)" : "one EVAL",
                               help);
        if (lt_store_open(cc.workspace, &st, err, sizeof(err)) != LT_STORE_OK)
            return lt_cli_fail("eval", LT_EXIT_FAIL, "%s", err);
        if (by_runs) {
            int k = 0;
            for (int i = first; i < argc && k < n_ids; i++) {
                if (argv[i][0] == '-' || !strcmp(argv[i - 1], "--format") ||
                    !strcmp(argv[i - 1], "--samples") || !strcmp(argv[i - 1], "--workspace") ||
                    !strcmp(argv[i - 1], "--progress-file"))
                    continue;
                if (!run_latest_eval(st, argv[i], &ids[k])) {
                    lt_cli_print_sanitized(stderr, argv[i], false);
                    rc = lt_cli_fail("eval", LT_EXIT_FAIL, ": no such run, or it has no eval");
                    goto out;
                }
                k++;
            }
        }
        rc = show_evals(st, ids, n_ids, fmt, !strcmp(fmt, "markdown") || !strcmp(fmt, "json")
                                                 ? n_show : 0, worst);
        goto out;
    }
    if (!o.dataset)
        return lt_cli_fail("eval", LT_EXIT_USAGE, "need --data NAME\n%s", help);
    if (!o.model && n_runs == 0)
        return lt_cli_fail("eval", LT_EXIT_USAGE, "need --model DIR (or --run RUN)\n%s", help);
    /* systems: the baselines, then each run and adapter */
    const char *bl = baselines ? baselines : "zero";
    if (!strcmp(bl, "none") && n_runs + n_adapters == 0)
        return lt_cli_fail("eval", LT_EXIT_USAGE, "--baselines none leaves nothing to evaluate");
    for (const char *p = bl; *p && strcmp(bl, "none");) {
        size_t n = strcspn(p, ",");
        int64_t k;
        char tok[32];
        snprintf(tok, sizeof(tok), "%.*s", (int)(n < 31 ? n : 31), p);
        if (o.n_systems >= LT_EVAL_MAX_SYSTEMS)
            return lt_cli_fail("eval", LT_EXIT_USAGE, "too many systems");
        if (!strcmp(tok, "zero"))
            o.systems[o.n_systems++] = (lt_eval_system){0};
        else if (!strncmp(tok, "kshot:", 6) && parse_i64(tok + 6, 1, &k) && k <= 64)
            o.systems[o.n_systems++] = (lt_eval_system){NULL, (int)k, NULL, 0};
        else
            return lt_cli_fail("eval", LT_EXIT_USAGE,
                               "--baselines: zero, kshot:K (K 1-64) or none, comma-separated");
        p += n + (p[n] == ',');
    }
    if (lt_store_open(cc.workspace, &st, err, sizeof(err)) != LT_STORE_OK)
        return lt_cli_fail("eval", LT_EXIT_FAIL, "%s", err);
    for (int i = 0; i < n_runs; i++) {
        int64_t rid;
        if (o.n_systems >= LT_EVAL_MAX_SYSTEMS || lt_store_run_find(st, runs[i], &rid) != LT_STORE_OK) {
            fprintf(stderr, "lathe eval: no run ");
            lt_cli_print_sanitized(stderr, runs[i], false);
            fputc('\n', stderr);
            goto out;
        }
        o.systems[o.n_systems++] = (lt_eval_system){NULL, 0, NULL, rid};
    }
    for (int i = 0; i < n_adapters && o.n_systems < LT_EVAL_MAX_SYSTEMS; i++)
        o.systems[o.n_systems++] = (lt_eval_system){NULL, 0, adapters[i], 0};
    o.device = cc.device;
    o.threads = cc.threads;
    o.interrupt = &interrupted;
    eval_progress ep = {.n_systems = o.n_systems};
    o.progress = progress;
    o.ctx = &ep;
    lt_data_progress(true, 0, "starting %d system%s", o.n_systems, o.n_systems == 1 ? "" : "s");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int64_t eids[LT_EVAL_MAX_SYSTEMS];
    lt_eval_status es = lt_eval_run(st, &o, eids, err, sizeof(err));
    if (es != LT_EVAL_OK) {
        fprintf(stderr, "lathe eval: ");
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        rc = es == LT_EVAL_USAGE ? LT_EXIT_USAGE : LT_EXIT_FAIL;
        goto out;
    }
    rc = show_evals(st, eids, o.n_systems, fmt, n_show, worst);
out:
    lt_store_close(st);
    return rc;
}
