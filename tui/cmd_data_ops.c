/*
 * cmd_data_ops.c - `lathe data inspect|dedup|filter|split|export`: option parsing and
 * printing for the commands that work on a stored dataset. The work is in pipeline/data.
 */
#include "cli.h"
#include "cmd_data.h"
#include "data/data.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Parses NAME plus --version and command options via a callback. Returns LT_EXIT_OK, an exit
 * code, or -1 when --help was printed. */
typedef int (*opt_fn)(void *ctx, int argc, char **argv, int *i);

static int parse(const char *cmd, int argc, char **argv, lt_cli_common *c, const char *help,
                 opt_fn fn, void *ctx, const char **name, const char **out, int *version)
{
    *name = NULL;
    if (out)
        *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        double d;
        int r = lt_cli_common_parse(c, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return -1;
        }
        if (lt_data_opt(argc, argv, &i, "--version", &v)) {
            if (!lt_data_num(cmd, "--version", v, 1, 1e9, &d))
                return LT_EXIT_USAGE;
            *version = (int)d;
            continue;
        }
        if (lt_data_opt(argc, argv, &i, "--progress-file", &v)) {
            if (!v || !*v)
                return lt_cli_fail(cmd, LT_EXIT_USAGE, "--progress-file needs a path");
            lt_data_progress_set(v);
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            r = fn ? fn(ctx, argc, argv, &i) : 0;
            if (r < 0)
                return LT_EXIT_USAGE;
            if (r == 0)
                return lt_cli_fail(cmd, LT_EXIT_USAGE, "unknown option '%s' (see --help)",
                                   argv[i]);
            continue;
        }
        if (!*name)
            *name = argv[i];
        else if (out && !*out)
            *out = argv[i];
        else
            return lt_cli_fail(cmd, LT_EXIT_USAGE, "unexpected argument '%s'", argv[i]);
    }
    if (!*name)
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "missing the dataset NAME (see --help)");
    if (out && !*out)
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "missing the output file (see --help)");
    return LT_EXIT_OK;
}

static int fail_data(const char *cmd, lt_data_status s, const char *err)
{
    fprintf(stderr, "lathe %s: ", cmd);
    lt_cli_print_sanitized(stderr, err, false);
    fputc('\n', stderr);
    return s == LT_DATA_USAGE ? LT_EXIT_USAGE : LT_EXIT_FAIL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- inspect ---- */

typedef struct inspect_ctx {
    lt_data_inspect_opts o;
    const char *model;
} inspect_ctx;

static int inspect_opt(void *ctx, int argc, char **argv, int *i)
{
    inspect_ctx *x = ctx;
    const char *v;
    double d;
    if (lt_data_opt(argc, argv, i, "--model", &v)) {
        if (!v)
            return -1;
        x->model = v;
        return 1;
    }
    if (lt_data_opt(argc, argv, i, "--max-len", &v)) {
        if (!lt_data_num("data inspect", "--max-len", v, 1, 1e9, &d))
            return -1;
        x->o.max_len = (int64_t)d;
        return 1;
    }
    if (lt_data_opt(argc, argv, i, "--top", &v)) {
        if (!lt_data_num("data inspect", "--top", v, 1, 1000, &d))
            return -1;
        x->o.top_n = (int)d;
        return 1;
    }
    return 0;
}

static long count_tokens(void *ctx, const char *text)
{
    lt_tok_ids ids = {0};
    char err[LT_TOK_ERR_LEN];
    lt_tok_status s = lt_tokenizer_encode(ctx, text, strlen(text), 0, &ids, err, sizeof err);
    long n = s == LT_TOK_OK ? (long)ids.n : -1;
    lt_tok_ids_free(&ids);
    return n;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : 0;
}

static void print_dist(const char *title, const cJSON *d)
{
    if (!d || num(d, "count") == 0)
        return;
    printf("\n%s: min %.0f  p10 %.0f  p50 %.0f  p90 %.0f  p99 %.0f  max %.0f  mean %.1f\n",
           title, num(d, "min"), num(d, "p10"), num(d, "p50"), num(d, "p90"), num(d, "p99"),
           num(d, "max"), num(d, "mean"));
    double total = num(d, "count"), peak = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(d, "histogram"))
        peak = num(b, "count") > peak ? num(b, "count") : peak;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(d, "histogram"))
    {
        int bar = peak > 0 ? (int)(40.0 * num(b, "count") / peak + 0.5) : 0;
        printf("  %7.0f-%-7.0f %8.0f %5.1f%% ", num(b, "from"), num(b, "to") - 1,
               num(b, "count"), 100.0 * num(b, "count") / total);
        for (int k = 0; k < bar; k++)
            fputs("#", stdout);
        putchar('\n');
    }
    if (cJSON_GetObjectItemCaseSensitive(d, "truncated_share"))
        printf("  over max length %.0f: %.2f%% would be truncated\n", num(d, "max_len"),
               100.0 * num(d, "truncated_share"));
}

static void print_report(const cJSON *r, const char *token_note)
{
    const cJSON *j;
    printf("dataset ");
    lt_cli_print_sanitized(stdout, cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring,
                           false);
    printf(" version %.0f: %.0f rows, format %s, %.0f issues recorded\n", num(r, "version"),
           num(r, "rows"), cJSON_GetObjectItemCaseSensitive(r, "format")->valuestring,
           num(r, "issues"));
    printf("\nturns per sample:");
    cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(r, "turns"))
        printf("  %s: %.0f", j->string, j->valuedouble);
    const cJSON *ro = cJSON_GetObjectItemCaseSensitive(r, "roles");
    printf("\nroles: user %.0f, assistant %.0f, tool %.0f, system prompts %.0f\n",
           num(ro, "user"), num(ro, "assistant"), num(ro, "tool"), num(ro, "system"));
    print_dist("characters per sample", cJSON_GetObjectItemCaseSensitive(r, "chars"));
    print_dist("characters per response", cJSON_GetObjectItemCaseSensitive(r, "response_chars"));
    if (cJSON_GetObjectItemCaseSensitive(r, "tokens"))
        print_dist("tokens per sample", cJSON_GetObjectItemCaseSensitive(r, "tokens"));
    else if (token_note)
        printf("\n%s\n", token_note);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(r, "responses");
    printf("\nresponses: %.0f empty, %.0f very short (< %.0f characters)", num(rs, "empty"),
           num(rs, "very_short"), num(rs, "very_short_below_chars"));
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rs, "very_short_rows")) > 0) {
        printf(", rows");
        cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(rs, "very_short_rows"))
            printf(" %.0f", j->valuedouble);
    }
    printf("\nrows with control characters (flagged): %.0f\n", num(r, "control_char_rows"));
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(r, "top_repeated_responses");
    if (cJSON_GetArraySize(top) > 0) {
        printf("\nmost repeated responses:\n");
        cJSON_ArrayForEach(j, top)
        {
            char s[61];
            snprintf(s, sizeof s, "%s",
                     cJSON_GetObjectItemCaseSensitive(j, "response")->valuestring);
            printf("  %6.0fx (first row %.0f) ", num(j, "count"), num(j, "first_row"));
            lt_cli_print_sanitized(stdout, s, false);
            putchar('\n');
        }
    }
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(r, "labels");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(lb, "classification_like"))) {
        printf("\nlabels (responses come from %.0f values; imbalance %.1f:1):\n",
               num(lb, "distinct_responses"), num(lb, "imbalance_ratio"));
        cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(lb, "counts"))
        {
            char s[41];
            snprintf(s, sizeof s, "%s",
                     cJSON_GetObjectItemCaseSensitive(j, "response")->valuestring);
            printf("  %6.0f %5.1f%%  ", num(j, "count"), 100 * num(j, "share"));
            lt_cli_print_sanitized(stdout, s, false);
            putchar('\n');
        }
    }
    printf("\nscripts (share of letters):");
    cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(r, "scripts"))
        printf("  %s %.1f%%", j->string, 100 * j->valuedouble);
    const cJSON *du = cJSON_GetObjectItemCaseSensitive(r, "duplicates");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(du, "dedup_ran")))
        printf("\nduplicates removed: %.0f exact (%.2f%%), %.0f near (%.2f%%)\n",
               num(du, "exact_removed"), 100 * num(du, "exact_rate"), num(du, "near_removed"),
               100 * num(du, "near_rate"));
    else
        printf("\nduplicates: dedup has not run (lathe data dedup NAME)\n");
}

int lt_data_cmd_inspect(int argc, char **argv, lt_cli_common *c)
{
    static const char *help =
        "usage: lathe data inspect NAME [--version N] [--model DIR] [--max-len N] [--top N] "
        "[--json]\n\n"
        "Counts by format, turns and roles; length distributions in characters (and tokens\n"
        "with --model, using its tokenizer.json; --max-len reports the share truncated);\n"
        "empty and very short responses; most repeated responses; label balance when\n"
        "responses come from a small set; script mix by Unicode block; duplicate rates.\n";
    inspect_ctx x = {0};
    const char *name;
    int rc = parse("data inspect", argc, argv, c, help, inspect_opt, &x, &name, NULL,
                   &x.o.version);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    lt_tokenizer *tok = NULL;
    char note[700] = "";
    if (x.model) {
        char terr[LT_TOK_ERR_LEN];
        if (lt_tokenizer_load_dir(x.model, &tok, terr, sizeof terr) == LT_TOK_OK) {
            x.o.count_tokens = count_tokens;
            x.o.count_tokens_ctx = tok;
        } else {
            snprintf(note, sizeof note, "token lengths need a tokenizer: %s", terr);
        }
    }
    lt_store *st = NULL;
    if ((rc = lt_data_open("data inspect", c, &st)) != LT_EXIT_OK)
        goto free_tok;
    char err[1024];
    void *rep = NULL;
    lt_data_status s = lt_data_inspect(st, name, &x.o, &rep, err, sizeof err);
    if (s != LT_DATA_OK) {
        rc = fail_data("data inspect", s, err);
        goto close_store;
    }
    if (note[0])
        cJSON_AddStringToObject(rep, "tokens_note", note);
    if (c->json) {
        char *p = cJSON_PrintUnformatted(rep);
        puts(p ? p : "{}");
        free(p);
    } else {
        if (note[0])
            lt_cli_print_sanitized(stderr, note, false), fputc('\n', stderr);
        print_report(rep, note[0] ? note : NULL);
    }
    cJSON_Delete(rep);
    rc = LT_EXIT_OK;
close_store:
    lt_store_close(st);
free_tok:
    lt_tokenizer_free(tok);
    return rc;
}

/* ---- progress of dedup, filter and split ---- */

/* A job's phases mapped onto one fraction for --progress-file: dedup's phases take the first
 * dedup_share of it (the signatures most, as they read every row), split's own phase the
 * rest; filter's single phase all of it. */
typedef struct phase_progress {
    const char *verb;
    double dedup_share;
} phase_progress;

static void phase_progress_cb(void *ctx, const char *phase, int64_t done, int64_t total)
{
    const phase_progress *p = ctx;
    static const struct {
        const char *phase;
        double lo, hi; /* of the dedup share */
    } spans[] = {
        {"signatures", 0, 0.6}, {"bands", 0.6, 0.7}, {"verify", 0.7, 0.9}, {"clusters", 0.9, 1}};
    double lo = 0, hi = 1;
    for (size_t k = 0; k < sizeof spans / sizeof spans[0]; k++)
        if (strcmp(phase, spans[k].phase) == 0) {
            lo = spans[k].lo * p->dedup_share;
            hi = spans[k].hi * p->dedup_share;
        }
    if (strcmp(phase, "splits") == 0)
        lo = p->dedup_share;
    double f = total > 0 ? (double)done / (double)total : 1;
    lt_data_progress(done >= total, lo + (hi - lo) * f, "%s: %s %lld / %lld", p->verb, phase,
                     (long long)done, (long long)total);
}

/* ---- dedup ---- */

static int dedup_opt(void *ctx, int argc, char **argv, int *i)
{
    lt_data_dedup_opts *o = ctx;
    const char *v;
    double d;
    if (lt_data_opt(argc, argv, i, "--threshold", &v)) {
        if (!lt_data_num("data dedup", "--threshold", v, 0.05, 1, &d))
            return -1;
        o->threshold = d;
    } else if (lt_data_opt(argc, argv, i, "--ngram", &v)) {
        if (!lt_data_num("data dedup", "--ngram", v, 1, 64, &d))
            return -1;
        o->ngram = (int)d;
    } else if (lt_data_opt(argc, argv, i, "--char-shingles", &v)) {
        if (!lt_data_num("data dedup", "--char-shingles", v, 1, 64, &d))
            return -1;
        o->char_shingles = (int)d;
    } else if (lt_data_opt(argc, argv, i, "--keep", &v)) {
        if (v && strcmp(v, "longest") == 0)
            o->keep = LT_DATA_KEEP_LONGEST;
        else if (v && strcmp(v, "first") == 0)
            o->keep = LT_DATA_KEEP_FIRST;
        else {
            lt_cli_fail("data dedup", LT_EXIT_USAGE, "--keep: expected longest or first");
            return -1;
        }
    } else if (strcmp(argv[*i], "--exact-only") == 0) {
        o->exact_only = true;
    } else if (strcmp(argv[*i], "--dry-run") == 0) {
        o->dry_run = true;
    } else {
        return 0;
    }
    return 1;
}

int lt_data_cmd_dedup(int argc, char **argv, lt_cli_common *c)
{
    static const char *help =
        "usage: lathe data dedup NAME [--threshold 0.8] [--ngram 5] [--char-shingles K]\n"
        "                        [--keep longest|first] [--exact-only] [--dry-run] [--version N]\n"
        "                        [--threads N] [--progress-file PATH] [--json]\n\n"
        "Removes exact duplicates (same text after case folding and whitespace collapsing) and\n"
        "near duplicates (MinHash LSH over word n-grams, or character k-grams for CJK, each\n"
        "candidate verified by true Jaccard >= threshold) into a new version. One row per\n"
        "cluster stays: the longest response (ties: the first row), or the first row with\n"
        "--keep first. Signatures are stored, so rows imported later are compared with what\n"
        "is stored without recomputing it.\n";
    lt_data_dedup_opts o;
    lt_data_dedup_opts_default(&o);
    const char *name;
    int rc = parse("data dedup", argc, argv, c, help, dedup_opt, &o, &name, NULL, &o.version);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    o.threads = c->threads;
    lt_store *st = NULL;
    if ((rc = lt_data_open("data dedup", c, &st)) != LT_EXIT_OK)
        return rc;
    char err[1024];
    lt_data_dedup_result r;
    double t0 = now_s();
    lt_data_progress(true, 0, "finding duplicates in %s", name);
    phase_progress pp = {"dedup", 1};
    o.progress = phase_progress_cb;
    o.progress_ctx = &pp;
    lt_data_status s = lt_data_dedup(st, name, &o, &r, err, sizeof err);
    lt_data_progress(true, 1, "dedup finished");
    double secs = now_s() - t0;
    lt_store_close(st);
    if (s != LT_DATA_OK)
        return fail_data("data dedup", s, err);
    if (c->json) {
        printf("{\"version\":%d,\"rows_in\":%lld,\"exact_removed\":%lld,\"near_removed\":%lld,"
               "\"clusters\":%lld,\"candidates\":%lld,\"signatures_computed\":%lld,"
               "\"bands\":%d,\"rows_per_band\":%d,\"seconds\":%.3f}\n",
               r.version, (long long)r.n_in, (long long)r.n_exact, (long long)r.n_near,
               (long long)r.n_clusters, (long long)r.n_candidates,
               (long long)r.n_signatures_computed, r.bands, r.rows, secs);
        return LT_EXIT_OK;
    }
    printf("%lld rows in: %lld exact and %lld near duplicates removed in %lld clusters; "
           "%lld rows kept\n",
           (long long)r.n_in, (long long)r.n_exact, (long long)r.n_near, (long long)r.n_clusters,
           (long long)(r.n_in - r.n_exact - r.n_near));
    if (!o.exact_only)
        printf("MinHash: %d bands x %d rows, %lld candidate pairs verified, %lld signatures "
               "computed (the rest were stored)\n",
               r.bands, r.rows, (long long)r.n_candidates, (long long)r.n_signatures_computed);
    if (o.dry_run)
        printf("dry run: no version written (%.2f s)\n", secs);
    else
        printf("new version %d (%.2f s)\n", r.version, secs);
    return LT_EXIT_OK;
}

/* ---- filter ---- */

static int filter_opt(void *ctx, int argc, char **argv, int *i)
{
    lt_data_filter_opts *o = ctx;
    const char *v;
    double d;
    if (lt_data_opt(argc, argv, i, "--min-chars", &v)) {
        if (!lt_data_num("data filter", "--min-chars", v, 0, 1e12, &d))
            return -1;
        o->min_chars = (int64_t)d;
    } else if (lt_data_opt(argc, argv, i, "--max-chars", &v)) {
        if (!lt_data_num("data filter", "--max-chars", v, 1, 1e12, &d))
            return -1;
        o->max_chars = (int64_t)d;
    } else if (lt_data_opt(argc, argv, i, "--max-repeated-line-ratio", &v)) {
        if (!lt_data_num("data filter", "--max-repeated-line-ratio", v, 0, 1, &d))
            return -1;
        o->max_repeated_line_ratio = d;
    } else if (lt_data_opt(argc, argv, i, "--max-repeated-ngram-ratio", &v)) {
        if (!lt_data_num("data filter", "--max-repeated-ngram-ratio", v, 0, 1, &d))
            return -1;
        o->max_repeated_ngram_ratio = d;
    } else if (lt_data_opt(argc, argv, i, "--max-nonprintable-ratio", &v)) {
        if (!lt_data_num("data filter", "--max-nonprintable-ratio", v, 0, 1, &d))
            return -1;
        o->max_nonprintable_ratio = d;
    } else if (lt_data_opt(argc, argv, i, "--regex", &v)) {
        if (!v || o->n_regex == LT_DATA_MAX_REGEX) {
            lt_cli_fail("data filter", LT_EXIT_USAGE, "--regex needs FIELD=REGEX (at most %d)",
                        LT_DATA_MAX_REGEX);
            return -1;
        }
        o->regex[o->n_regex++] = v;
    } else {
        return 0;
    }
    return 1;
}

int lt_data_cmd_filter(int argc, char **argv, lt_cli_common *c)
{
    static const char *help =
        "usage: lathe data filter NAME [--min-chars N] [--max-chars N]\n"
        "                         [--max-repeated-line-ratio R] [--max-repeated-ngram-ratio R]\n"
        "                         [--max-nonprintable-ratio R] [--regex FIELD=REGEX ...]\n"
        "                         [--version N] [--progress-file PATH] [--json]\n\n"
        "Writes a new version without the rows that break a rule; each drop is recorded with\n"
        "its rule. Lengths count characters over the whole sample. Ratios: share of lines\n"
        "repeating an earlier line, share of word 3-grams seen before in the sample, share of\n"
        "control characters. --regex drops rows whose FIELD matches the POSIX extended regex;\n"
        "FIELD is text, response, prompt, system, user, assistant, chosen or rejected.\n";
    lt_data_filter_opts o;
    lt_data_filter_opts_default(&o);
    const char *name;
    int rc = parse("data filter", argc, argv, c, help, filter_opt, &o, &name, NULL, &o.version);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    lt_store *st = NULL;
    if ((rc = lt_data_open("data filter", c, &st)) != LT_EXIT_OK)
        return rc;
    char err[1024];
    lt_data_filter_result r;
    lt_data_progress(true, 0, "filtering %s", name);
    phase_progress pp = {"filter", 1};
    o.progress = phase_progress_cb;
    o.progress_ctx = &pp;
    lt_data_status s = lt_data_filter(st, name, &o, &r, err, sizeof err);
    lt_data_progress(true, 1, "filter finished");
    lt_store_close(st);
    if (s != LT_DATA_OK)
        return fail_data("data filter", s, err);
    if (c->json)
        printf("{\"version\":%d,\"rows_in\":%lld,\"dropped\":%lld}\n", r.version,
               (long long)r.n_in, (long long)r.n_dropped);
    else
        printf("%lld rows in, %lld dropped, %lld kept: new version %d\n", (long long)r.n_in,
               (long long)r.n_dropped, (long long)(r.n_in - r.n_dropped), r.version);
    return LT_EXIT_OK;
}

/* ---- split ---- */

static int split_opt(void *ctx, int argc, char **argv, int *i)
{
    lt_data_split_opts *o = ctx;
    const char *v;
    double d;
    if (lt_data_opt(argc, argv, i, "--val", &v)) {
        if (!lt_data_num("data split", "--val", v, 0, 0.99, &d))
            return -1;
        o->val = d;
    } else if (lt_data_opt(argc, argv, i, "--test", &v)) {
        if (!lt_data_num("data split", "--test", v, 0, 0.99, &d))
            return -1;
        o->test = d;
    } else if (lt_data_opt(argc, argv, i, "--seed", &v)) {
        if (!lt_data_num("data split", "--seed", v, 0, 9007199254740991.0, &d))
            return -1;
        o->seed = (uint64_t)d;
    } else if (lt_data_opt(argc, argv, i, "--stratify-by", &v)) {
        if (!v)
            return -1;
        o->stratify_by = v;
    } else {
        return 0;
    }
    return 1;
}

int lt_data_cmd_split(int argc, char **argv, lt_cli_common *c)
{
    static const char *help =
        "usage: lathe data split NAME [--val 0.05] [--test 0.05] [--seed S]\n"
        "                        [--stratify-by FIELD] [--version N] [--progress-file PATH]\n"
        "                        [--json]\n\n"
        "Assigns every row of the version to train, val or test. Deterministic for a seed;\n"
        "near-duplicate clusters (MinHash, Jaccard >= 0.7) stay in one split so nothing leaks\n"
        "into evaluation. --stratify-by keeps the shares per value of FIELD (response, system,\n"
        "or any top-level sample field).\n";
    lt_data_split_opts o = {.val = 0.05, .test = 0.05};
    const char *name;
    int rc = parse("data split", argc, argv, c, help, split_opt, &o, &name, NULL, &o.version);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    lt_store *st = NULL;
    if ((rc = lt_data_open("data split", c, &st)) != LT_EXIT_OK)
        return rc;
    char err[1024];
    lt_data_split_result r;
    lt_data_progress(true, 0, "splitting %s", name);
    phase_progress pp = {"split", 0.9};
    o.progress = phase_progress_cb;
    o.progress_ctx = &pp;
    lt_data_status s = lt_data_split(st, name, &o, &r, err, sizeof err);
    lt_data_progress(true, 1, "split finished");
    lt_store_close(st);
    if (s != LT_DATA_OK)
        return fail_data("data split", s, err);
    if (c->json)
        printf("{\"train\":%lld,\"val\":%lld,\"test\":%lld,\"seed\":%llu}\n",
               (long long)r.n_train, (long long)r.n_val, (long long)r.n_test,
               (unsigned long long)o.seed);
    else
        printf("train %lld, val %lld, test %lld (seed %llu)\n", (long long)r.n_train,
               (long long)r.n_val, (long long)r.n_test, (unsigned long long)o.seed);
    return LT_EXIT_OK;
}

/* ---- export ---- */

typedef struct export_ctx {
    const char *split, *format;
    bool force;
} export_ctx;

static int export_opt(void *ctx, int argc, char **argv, int *i)
{
    export_ctx *x = ctx;
    const char *v;
    if (strcmp(argv[*i], "--force") == 0) {
        x->force = true;
    } else if (lt_data_opt(argc, argv, i, "--split", &v)) {
        if (!v)
            return -1;
        x->split = v;
    } else if (lt_data_opt(argc, argv, i, "--format", &v)) {
        if (!v)
            return -1;
        x->format = v;
    } else {
        return 0;
    }
    return 1;
}

int lt_data_cmd_export(int argc, char **argv, lt_cli_common *c)
{
    static const char *help =
        "usage: lathe data export NAME OUT.jsonl [--split train|val|test]\n"
        "                         [--format alpaca|sharegpt|messages|multiple_choice|jsonl]\n"
        "                         [--version N] [--force]\n\n"
        "Writes the version (or one split) as JSONL. jsonl is lathe's own sample shape.\n"
        "The file is written under a temporary name and renamed when complete; an existing\n"
        "OUT is replaced only with --force.\n";
    export_ctx x = {NULL, "jsonl", false};
    const char *name, *out;
    int version = 0;
    int rc = parse("data export", argc, argv, c, help, export_opt, &x, &name, &out, &version);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    lt_store *st = NULL;
    if ((rc = lt_data_open("data export", c, &st)) != LT_EXIT_OK)
        return rc;
    char err[1024];
    int64_t n = 0;
    lt_data_status s =
        lt_data_export(st, name, version, x.split, x.format, out, x.force, &n, err, sizeof err);
    lt_store_close(st);
    if (s != LT_DATA_OK)
        return fail_data("data export", s, err);
    if (c->json)
        printf("{\"rows\":%lld,\"format\":\"%s\"}\n", (long long)n, x.format);
    else {
        printf("wrote %lld rows (%s) to ", (long long)n, x.format);
        lt_cli_print_sanitized(stdout, out, false);
        putchar('\n');
    }
    return LT_EXIT_OK;
}
