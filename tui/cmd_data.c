/*
 * cmd_data.c - `lathe data ...`: import, list, show, issues, inspect, dedup, filter, split,
 * export. Parses options and prints; the work is in pipeline/data and the store. Every string
 * that came from a dataset is printed through lt_cli_print_sanitized.
 */
#include "cli.h"
#include "cmd_data.h"
#include "data/data.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

bool lt_data_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        *value = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (*i + 1 >= argc) {
        *value = NULL;
        return true;
    }
    (*i)++;
    *value = argv[*i];
    return true;
}

bool lt_data_num(const char *cmd, const char *opt, const char *v, double lo, double hi,
                 double *out)
{
    char *end = NULL;
    double d = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || d < lo || d > hi) {
        lt_cli_fail(cmd, LT_EXIT_USAGE, "%s needs a number from %g to %g", opt, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

int lt_data_open(const char *cmd, const lt_cli_common *c, lt_store **st)
{
    char err[1024];
    lt_store_status s = lt_store_open(c->workspace, st, err, sizeof err);
    if (s != LT_STORE_OK)
        return lt_cli_fail(cmd, LT_EXIT_FAIL, "%s", err);
    return LT_EXIT_OK;
}

static const char *progress_path;
static double progress_last;

void lt_data_progress_set(const char *path)
{
    progress_path = path && *path ? path : NULL;
}

void lt_data_progress(bool force, double frac, const char *fmt, ...)
{
    if (!progress_path)
        return;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double now = (double)t.tv_sec + (double)t.tv_nsec / 1e9;
    if (!force && now - progress_last < 0.1)
        return;
    progress_last = now;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", progress_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "%.4f ", frac);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
    if (fclose(f) == 0)
        rename(tmp, progress_path);
    else
        unlink(tmp);
}

static int usage_error(const char *cmd, const char *arg)
{
    return lt_cli_fail(cmd, LT_EXIT_USAGE, "unexpected argument '%s' (see --help)", arg);
}

/* ---- import ---- */

static void progress(void *ctx, const char *path, int64_t done, int64_t total, int64_t rows)
{
    bool quiet = *(const bool *)ctx; /* --json: the progress file only */
    const char *base = strrchr(path, '/');
    lt_data_progress(done >= total, total > 0 ? (double)done / (double)total : -1,
                     "importing %s: %.1f / %.1f MB, %lld rows", base ? base + 1 : path,
                     (double)done / 1e6, (double)total / 1e6, (long long)rows);
    if (quiet)
        return;
    bool tty = isatty(2);
    fprintf(stderr, "%s", tty ? "\r" : "");
    fprintf(stderr, "importing ");
    lt_cli_print_sanitized(stderr, path, false);
    fprintf(stderr, ": %.1f / %.1f MB, %lld rows%s", (double)done / 1e6, (double)total / 1e6,
            (long long)rows, tty ? "\x1b[K" : "\n");
}

static int cmd_import(int argc, char **argv, lt_cli_common *c)
{
    static const char *help =
        "usage: lathe data import FILE... [--name NAME] [--format auto|alpaca|sharegpt|messages|"
        "preference|text|\n"
        "                         multiple_choice]\n"
        "                         [--field-map FIELD=COLUMN ...] [--strict] [--append]\n"
        "                         [--max-chars N] [--max-row-bytes N] [--progress-file PATH]\n"
        "                         [--workspace DIR] [--json]\n\n"
        "Reads JSONL, JSON arrays and CSV (UTF-8), validates every row, normalizes it into one\n"
        "sample shape and stores it. Bad rows are recorded with file, line and reason (see\n"
        "'lathe data issues NAME') and never stop the good rows, unless --strict.\n"
        "--field-map maps a canonical field to a column: instruction input output system\n"
        "history conversations from value messages role content prompt chosen rejected text\n"
        "question choices answer. Multiple-choice rows (question or query, a list of choices,\n"
        "answer as an index, a letter or the choice's text; also gold, ARC's choices\n"
        "{text, label} with answerKey) are detected by their fields.\n"
        "--append adds the rows to an existing dataset as a new version.\n"
        "--progress-file keeps one line there, \"FRACTION TEXT\", replaced as the import goes\n"
        "(the dashboard's background jobs read it; dedup, filter and split take it too).\n";
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0, rc = LT_EXIT_USAGE;
    lt_store *st = NULL;
    if (!files)
        return LT_EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        double d;
        int r = lt_cli_common_parse(c, argc, argv, &i);
        if (r < 0)
            goto done;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            rc = LT_EXIT_OK;
            goto done;
        } else if (strcmp(argv[i], "--strict") == 0) {
            o.strict = true;
        } else if (strcmp(argv[i], "--append") == 0) {
            o.append = true;
        } else if (lt_data_opt(argc, argv, &i, "--progress-file", &v)) {
            if (!v || !*v) {
                lt_cli_fail("data import", LT_EXIT_USAGE, "--progress-file needs a path");
                goto done;
            }
            lt_data_progress_set(v);
        } else if (lt_data_opt(argc, argv, &i, "--name", &v)) {
            if (!v || !*v) {
                lt_cli_fail("data import", LT_EXIT_USAGE, "--name needs a value");
                goto done;
            }
            o.name = v;
        } else if (lt_data_opt(argc, argv, &i, "--format", &v)) {
            int f = v ? lt_data_format_parse(v) : -1;
            if (f < 0) {
                lt_cli_fail("data import", LT_EXIT_USAGE,
                            "--format: expected auto, alpaca, sharegpt, messages, preference, "
                            "text or multiple_choice (mc)");
                goto done;
            }
            o.format = (lt_data_format)f;
        } else if (lt_data_opt(argc, argv, &i, "--field-map", &v)) {
            if (!v || o.n_field_map == LT_DATA_MAX_FIELD_MAP) {
                lt_cli_fail("data import", LT_EXIT_USAGE, "--field-map needs FIELD=COLUMN "
                                                          "(at most 16)");
                goto done;
            }
            o.field_map[o.n_field_map++] = v;
        } else if (lt_data_opt(argc, argv, &i, "--max-chars", &v)) {
            if (!lt_data_num("data import", "--max-chars", v, 1, 1e12, &d))
                goto done;
            o.max_chars = (int64_t)d;
        } else if (lt_data_opt(argc, argv, &i, "--max-row-bytes", &v)) {
            if (!lt_data_num("data import", "--max-row-bytes", v, 256, 1 << 30, &d))
                goto done;
            o.max_row_bytes = (int64_t)d;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            rc = lt_cli_fail("data import", LT_EXIT_USAGE, "unknown option '%s' (see --help)",
                             argv[i]);
            goto done;
        } else {
            files[n_files++] = argv[i];
        }
    }
    if (n_files == 0) {
        rc = lt_cli_fail("data import", LT_EXIT_USAGE, "no input files (see --help)");
        goto done;
    }
    rc = lt_data_open("data import", c, &st);
    if (rc != LT_EXIT_OK)
        goto done;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    o.interrupt = &interrupted;
    bool quiet = c->json;
    o.progress = c->json && !progress_path ? NULL : progress;
    o.progress_ctx = &quiet;
    lt_data_progress(true, 0, "importing");
    char err[1024];
    lt_data_import_result res;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lt_data_status s = lt_data_import(st, files, n_files, &o, &res, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (o.progress && !quiet && isatty(2))
        fputc('\n', stderr);
    if (s != LT_DATA_OK) {
        fprintf(stderr, "lathe data import: ");
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        rc = s == LT_DATA_USAGE ? LT_EXIT_USAGE : LT_EXIT_FAIL;
        goto done;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    const char *name = res.name;
    if (c->json) {
        printf("{\"dataset_id\":%lld,\"version\":%d,\"format\":\"%s\",\"rows\":%lld,"
               "\"bad_rows\":%lld,\"warnings\":%lld,\"bytes\":%lld,\"seconds\":%.3f}\n",
               (long long)res.dataset_id, res.version, lt_data_format_name(res.format),
               (long long)res.n_rows, (long long)res.n_bad, (long long)res.n_warnings,
               (long long)res.bytes, secs);
    } else {
        printf("imported ");
        lt_cli_print_sanitized(stdout, name, false);
        printf("%sversion %d: %lld rows (%s), %lld bad rows, %lld warnings, %.1f MB in %.2f s "
               "(%.1f MB/s)\n",
               *name ? " " : "", res.version, (long long)res.n_rows,
               lt_data_format_name(res.format), (long long)res.n_bad,
               (long long)res.n_warnings, (double)res.bytes / 1e6, secs,
               secs > 0 ? (double)res.bytes / 1e6 / secs : 0.0);
        if (res.n_bad || res.n_warnings) {
            printf("see the reasons with: lathe data issues ");
            lt_cli_print_sanitized(stdout, *name ? name : "NAME", false);
            printf("\n");
        }
    }
    rc = LT_EXIT_OK;
done:
    lt_store_close(st);
    free(files);
    return rc;
}

/* ---- list, show, issues ---- */

static int cmd_list(int argc, char **argv, lt_cli_common *c)
{
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(c, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: lathe data list [--json] [--workspace DIR]\n\n"
                   "Lists datasets with their latest version, format, rows and issues.\n");
            return LT_EXIT_OK;
        }
        return usage_error("data list", argv[i]);
    }
    lt_store *st = NULL;
    int rc = lt_data_open("data list", c, &st);
    if (rc != LT_EXIT_OK)
        return rc;
    lt_store_iter *it = NULL;
    lt_store_version v;
    if (lt_store_datasets_iter(st, &it) != LT_STORE_OK) {
        lt_store_close(st);
        return lt_cli_fail("data list", LT_EXIT_FAIL, "database error");
    }
    cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
    int n = 0;
    if (!c->json)
        printf("%-24s %7s %-10s %-10s %10s %8s\n", "NAME", "VERSION", "KIND", "FORMAT", "ROWS",
               "ISSUES");
    while (lt_store_datasets_next(it, &v) == LT_STORE_OK) {
        n++;
        if (arr) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", v.name);
            cJSON_AddNumberToObject(o, "version", v.version);
            cJSON_AddStringToObject(o, "kind", v.kind);
            cJSON_AddStringToObject(o, "format", v.format);
            cJSON_AddNumberToObject(o, "rows", (double)v.n_rows);
            cJSON_AddNumberToObject(o, "issues", (double)v.n_issues);
            cJSON_AddNumberToObject(o, "created_at", (double)v.created_at);
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        char name[25];
        snprintf(name, sizeof name, "%s", v.name);
        lt_cli_print_sanitized(stdout, name, false);
        printf("%*s %7d %-10s %-10s %10lld %8lld\n", (int)(25 - strlen(name)), "", v.version,
               v.kind, v.format, (long long)v.n_rows, (long long)v.n_issues);
    }
    lt_store_iter_free(it);
    if (arr) {
        char *s = cJSON_PrintUnformatted(arr);
        puts(s ? s : "[]");
        free(s);
        cJSON_Delete(arr);
    } else if (n == 0) {
        printf("(no datasets; import one with: lathe data import FILE --name NAME)\n");
    }
    lt_store_close(st);
    return LT_EXIT_OK;
}

/* Common "NAME [ROW]" parsing with --version N. */
static int parse_named(const char *cmd, int argc, char **argv, lt_cli_common *c,
                       const char *help, const char **name, const char **extra, int *version)
{
    *name = NULL;
    if (extra)
        *extra = NULL;
    *version = 0;
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
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return lt_cli_fail(cmd, LT_EXIT_USAGE, "unknown option '%s' (see --help)", argv[i]);
        } else if (!*name) {
            *name = argv[i];
        } else if (extra && !*extra) {
            *extra = argv[i];
        } else {
            return usage_error(cmd, argv[i]);
        }
    }
    if (!*name || (extra && !*extra))
        return lt_cli_fail(cmd, LT_EXIT_USAGE, "missing arguments (see --help)");
    return LT_EXIT_OK;
}

static int cmd_show(int argc, char **argv, lt_cli_common *c)
{
    const char *name, *row_s;
    int version;
    int rc = parse_named("data show", argc, argv, c,
                         "usage: lathe data show NAME ROW [--version N] [--json]\n\n"
                         "Prints one normalized sample with its source file and line.\n",
                         &name, &row_s, &version);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    char *end = NULL;
    long long row = strtoll(row_s, &end, 10);
    if (*end || row < 0)
        return lt_cli_fail("data show", LT_EXIT_USAGE, "ROW must be a row number >= 0");
    lt_store *st = NULL;
    if ((rc = lt_data_open("data show", c, &st)) != LT_EXIT_OK)
        return rc;
    lt_store_version v;
    lt_store_sample s;
    if (lt_store_version_get(st, name, version, &v) != LT_STORE_OK) {
        lt_store_close(st);
        return lt_cli_fail("data show", LT_EXIT_FAIL, "no dataset by that name%s",
                           version ? " at that version" : "");
    }
    if (lt_store_sample_get(st, v.version_id, row, &s) != LT_STORE_OK) {
        lt_store_close(st);
        return lt_cli_fail("data show", LT_EXIT_FAIL,
                           "row %lld is not in version %d (removed by dedup or a filter, or "
                           "out of range)",
                           row, v.version);
    }
    cJSON *j = cJSON_Parse(s.data);
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "row", (double)s.row);
        cJSON_AddStringToObject(o, "file", s.path ? s.path : "");
        cJSON_AddNumberToObject(o, "line", (double)s.line);
        cJSON_AddStringToObject(o, "format", s.format);
        if (s.split)
            cJSON_AddStringToObject(o, "split", s.split);
        cJSON_AddItemToObject(o, "sample", j ? j : cJSON_CreateNull());
        j = NULL;
        char *p = cJSON_PrintUnformatted(o);
        puts(p ? p : "{}");
        free(p);
        cJSON_Delete(o);
    } else {
        printf("row %lld (%s) from ", (long long)s.row, s.format);
        lt_cli_print_sanitized(stdout, s.path ? s.path : "?", false);
        printf(":%lld%s%s\n", (long long)s.line, s.split ? ", split " : "",
               s.split ? s.split : "");
        const cJSON *sys = cJSON_GetObjectItemCaseSensitive(j, "system");
        if (cJSON_IsString(sys)) {
            printf("\n[system]\n");
            lt_cli_print_sanitized(stdout, sys->valuestring, true);
            printf("\n");
        }
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "turns"))
        {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, "role");
            const cJSON *ct = cJSON_GetObjectItemCaseSensitive(t, "content");
            printf("\n[%s]\n", cJSON_IsString(r) ? r->valuestring : "?");
            lt_cli_print_sanitized(stdout, cJSON_IsString(ct) ? ct->valuestring : "", true);
            printf("\n");
        }
        static const char *keys[] = {"chosen", "rejected", "text"};
        for (int k = 0; k < 3; k++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
            if (cJSON_IsString(x)) {
                printf("\n[%s]\n", keys[k]);
                lt_cli_print_sanitized(stdout, x->valuestring, true);
                printf("\n");
            }
        }
    }
    cJSON_Delete(j);
    lt_store_close(st);
    return LT_EXIT_OK;
}

static int cmd_issues(int argc, char **argv, lt_cli_common *c)
{
    const char *name;
    int version;
    int rc = parse_named("data issues", argc, argv, c,
                         "usage: lathe data issues NAME [--version N] [--json]\n\n"
                         "Lists bad rows (errors: not imported) and warnings (kept, flagged) with\n"
                         "file, line, byte column, reason and the start of the raw text.\n",
                         &name, NULL, &version);
    if (rc != LT_EXIT_OK)
        return rc < 0 ? LT_EXIT_OK : rc;
    lt_store *st = NULL;
    if ((rc = lt_data_open("data issues", c, &st)) != LT_EXIT_OK)
        return rc;
    lt_store_version v;
    lt_store_iter *it = NULL;
    if (lt_store_version_get(st, name, version, &v) != LT_STORE_OK ||
        lt_store_issues_iter(st, v.dataset_id, version, &it) != LT_STORE_OK) {
        lt_store_close(st);
        return lt_cli_fail("data issues", LT_EXIT_FAIL, "no dataset by that name");
    }
    lt_store_issue is;
    cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
    int n = 0;
    while (lt_store_issues_next(it, &is) == LT_STORE_OK) {
        n++;
        if (arr) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", is.path);
            cJSON_AddNumberToObject(o, "line", (double)is.line);
            cJSON_AddNumberToObject(o, "column", (double)is.column);
            cJSON_AddStringToObject(o, "severity", is.severity);
            cJSON_AddStringToObject(o, "reason", is.reason);
            cJSON_AddStringToObject(o, "raw", is.raw);
            if (is.row >= 0)
                cJSON_AddNumberToObject(o, "row", (double)is.row);
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        lt_cli_print_sanitized(stdout, is.path, false);
        printf(":%lld", (long long)is.line);
        if (is.column > 0)
            printf(":%lld", (long long)is.column);
        printf(": %s: ", is.severity);
        lt_cli_print_sanitized(stdout, is.reason, false);
        char raw[101];
        snprintf(raw, sizeof raw, "%s", is.raw);
        if (raw[0]) {
            printf("\n    raw: ");
            lt_cli_print_sanitized(stdout, raw, false);
            if (strlen(is.raw) > 100)
                printf("...");
        }
        printf("\n");
    }
    lt_store_iter_free(it);
    if (arr) {
        char *s = cJSON_PrintUnformatted(arr);
        puts(s ? s : "[]");
        free(s);
        cJSON_Delete(arr);
    } else if (n == 0) {
        printf("no issues\n");
    }
    lt_store_close(st);
    return LT_EXIT_OK;
}

/* ---- dispatch ---- */

static const struct {
    const char *name, *summary;
    int (*run)(int argc, char **argv, lt_cli_common *c);
} subs[] = {
    {"import", "read, validate and store JSONL/JSON/CSV files", cmd_import},
    {"list", "list datasets", cmd_list},
    {"show", "print one sample", cmd_show},
    {"issues", "list bad rows and warnings with their reasons", cmd_issues},
    {"inspect", "statistics: formats, lengths, repeats, labels, scripts, duplicates",
     lt_data_cmd_inspect},
    {"dedup", "remove exact and near duplicates (MinHash LSH) into a new version",
     lt_data_cmd_dedup},
    {"filter", "drop rows by length, repetition, non-printables or regex", lt_data_cmd_filter},
    {"split", "deterministic train/val/test split, duplicates kept together", lt_data_cmd_split},
    {"export", "write a version or split as JSONL", lt_data_cmd_export},
};

int lt_cmd_data(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: lathe data <command> [options]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
            fprintf(f, "  %-8s %s\n", subs[i].name, subs[i].summary);
        fprintf(f, "\nEvery command takes --workspace DIR and --json; 'lathe data <command> "
                   "--help' for its options.\n");
        return argc < 2 ? LT_EXIT_USAGE : LT_EXIT_OK;
    }
    lt_cli_common c;
    lt_cli_common_defaults(&c);
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1, &c);
    return lt_cli_fail("data", LT_EXIT_USAGE, "unknown command '%s' (see lathe data --help)",
                       argv[1]);
}
