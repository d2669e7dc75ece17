/*
 * cmd_plan.c - `lathe plan`: the method wizard on the command line. Gathers the facts, walks
 * the decision tree with answers from flags, an answers file, or (on a terminal) plain
 * prompts one question at a time, and prints and saves the plan and its config.
 *
 * Only options, prompts and printing live here; the tree, the facts, the estimator and the
 * config are pipeline/plan's. Off a terminal it never waits for input: a missing answer is
 * an error naming the question and the flag that gives it.
 */
#include "cli.h"

#include "plan/plan.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
    "usage: lathe plan --model DIR --data NAME [answers] [options]\n"
    "  Choose a fine-tuning method from what the task needs, the device and the data, estimate\n"
    "  its memory and time, and write a training config (lathe train CONFIG.json).\n"
    "  On a terminal, questions without an answer are asked one at a time; otherwise a\n"
    "  missing answer is an error naming the question.\n"
    "answers:\n"
    "  --answers FILE             a JSON object of answers, e.g. {\"need\": \"style\"}\n"
    "  --need X                   knowledge, knowledge_style, style, edge_cases, domain,\n"
    "                             distill, new_task, preference, vocabulary\n"
    "  --concern-forgetting yes|no  must the model keep its general abilities?\n"
    "  --fewshot-tried yes|no     was few-shot prompting tried and found lacking?\n"
    "  --answer KEY=VALUE         any question of the tree by its key\n"
    "facts (gathered; these override):\n"
    "  --memory-gb N              device memory in GB\n"
    "  --fact KEY=VALUE           any fact (numbers, true/false, or text), e.g. device=gpu\n"
    "options:\n"
    "  --seq-len N  --batch N (effective, 16)  --epochs N\n"
    "  --explain                  print the path with the rationale at each step, and every\n"
    "                             method's memory (with and without gradient checkpointing)\n"
    "                             part by part against the budget, and why the leaf chose\n"
    "  --out FILE                 write the training config there (--force replaces a file)\n"
    "  --tree FILE                use another decision tree (JSON) than the built-in one\n"
    "  --no-calibrate             no throughput measurement (no time estimate unless cached)\n"
    "  --no-save                  do not record the plan in the store\n"
    "  --device auto|cpu|vulkan:N  --threads N  --workspace DIR  --json\n";

typedef struct plan_args {
    lt_cli_common cc;
    const char *model, *data, *answers_file, *out, *tree_file;
    double memory_gb;
    int64_t seq_len, batch, epochs;
    bool explain, no_calibrate, no_save, force;
    cJSON *answers, *overrides; /* from flags */
} plan_args;

static int parse_i64(const char *opt, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "lathe plan: %s needs an integer from %lld to %lld\n", opt,
                (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* Sets an answer from a flag; a different value for the same key is a contradiction. */
static int set_answer(cJSON *a, const char *key, const char *value, const char *from)
{
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(a, key);
    if (old && cJSON_IsString(old) && strcmp(old->valuestring, value) != 0) {
        fprintf(stderr, "lathe plan: contradictory answers for %s: \"%s\" and \"%s\" (%s)\n",
                key, old->valuestring, value, from);
        return -1;
    }
    if (!old)
        cJSON_AddStringToObject(a, key, value);
    return 0;
}

/* A fact override's text as a JSON value: number, boolean, or string. */
static cJSON *fact_value(const char *v)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (*v && end && !*end && isfinite(d))
        return cJSON_CreateNumber(d);
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
        return cJSON_CreateBool(1);
    if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
        return cJSON_CreateBool(0);
    return cJSON_CreateString(v);
}

static int parse_args(int argc, char **argv, plan_args *a)
{
    for (int i = 1; i < argc; i++) {
        int c = lt_cli_common_parse(&a->cc, argc, argv, &i);
        if (c < 0)
            return -1;
        if (c > 0)
            continue;
        const char *o = argv[i];
        bool has = i + 1 < argc;
        const char *v = has ? argv[i + 1] : NULL;
#define NEEDV                                                                                 \
    do {                                                                                      \
        if (!has) {                                                                           \
            fprintf(stderr, "lathe plan: %s needs a value\n", o);                             \
            return -1;                                                                        \
        }                                                                                     \
        i++;                                                                                  \
    } while (0)
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            fputs(help, stdout);
            return 1;
        } else if (strcmp(o, "--model") == 0) {
            NEEDV;
            a->model = v;
        } else if (strcmp(o, "--data") == 0) {
            NEEDV;
            a->data = v;
        } else if (strcmp(o, "--answers") == 0) {
            NEEDV;
            a->answers_file = v;
        } else if (strcmp(o, "--out") == 0) {
            NEEDV;
            a->out = v;
        } else if (strcmp(o, "--tree") == 0) {
            NEEDV;
            a->tree_file = v;
        } else if (strcmp(o, "--need") == 0 || strcmp(o, "--concern-forgetting") == 0 ||
                   strcmp(o, "--fewshot-tried") == 0) {
            NEEDV;
            const char *key = o[2] == 'n' ? "need" : o[2] == 'c' ? "concern_forgetting"
                                                                 : "fewshot_tried";
            if (set_answer(a->answers, key, v, o) < 0)
                return -1;
        } else if (strcmp(o, "--answer") == 0 || strcmp(o, "--fact") == 0) {
            NEEDV;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) {
                fprintf(stderr, "lathe plan: %s needs KEY=VALUE, got \"%s\"\n", o, v);
                return -1;
            }
            char key[64];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - v) < 63 ? (int)(eq - v) : 63, v);
            if (o[2] == 'a') {
                if (set_answer(a->answers, key, eq + 1, o) < 0)
                    return -1;
            } else {
                cJSON_DeleteItemFromObjectCaseSensitive(a->overrides, key);
                cJSON_AddItemToObject(a->overrides, key, fact_value(eq + 1));
            }
        } else if (strcmp(o, "--memory-gb") == 0) {
            NEEDV;
            char *end = NULL;
            a->memory_gb = strtod(v, &end);
            if (*end || !(a->memory_gb > 0 && a->memory_gb < 1e6)) {
                fprintf(stderr, "lathe plan: --memory-gb needs a positive number of GB\n");
                return -1;
            }
        } else if (strcmp(o, "--seq-len") == 0) {
            NEEDV;
            if (parse_i64(o, v, 2, 1 << 20, &a->seq_len) < 0)
                return -1;
        } else if (strcmp(o, "--batch") == 0) {
            NEEDV;
            if (parse_i64(o, v, 1, 65536, &a->batch) < 0)
                return -1;
        } else if (strcmp(o, "--epochs") == 0) {
            NEEDV;
            if (parse_i64(o, v, 1, 100000, &a->epochs) < 0)
                return -1;
        } else if (strcmp(o, "--explain") == 0) {
            a->explain = true;
        } else if (strcmp(o, "--no-calibrate") == 0) {
            a->no_calibrate = true;
        } else if (strcmp(o, "--no-save") == 0) {
            a->no_save = true;
        } else if (strcmp(o, "--force") == 0) {
            a->force = true;
        } else {
            fprintf(stderr, "lathe plan: unknown option %s (lathe plan --help)\n", o);
            return -1;
        }
#undef NEEDV
    }
    if (!a->model || !a->data) {
        fprintf(stderr, "lathe plan: give --model DIR and --data NAME (lathe plan --help)\n");
        return -1;
    }
    return 0;
}

static char *read_file(const char *path, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            if (cap > (64u << 20)) {
                snprintf(err, errlen, "%s: larger than 64 MiB", path);
                goto bad;
            }
            char *nb = realloc(buf, cap);
            if (!nb)
                goto bad;
            buf = nb;
        }
        size_t k = fread(buf + *n, 1, 4096, f);
        *n += k;
        if (k < 4096)
            break;
    }
    buf[*n] = 0;
    fclose(f);
    return buf;
bad:
    free(buf);
    fclose(f);
    return NULL;
}

/* Merges the answers file into the flag answers; the file's values must be strings and
 * agree with the flags. */
static int load_answers(const char *path, cJSON *answers)
{
    char err[512];
    size_t n = 0;
    char *text = read_file(path, &n, err, sizeof(err));
    if (!text)
    {
        lt_cli_fail("plan", LT_EXIT_USAGE, "--answers %s", err);
        return -1;
    }
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    int rc = 0;
    if (!cJSON_IsObject(j)) {
        lt_cli_fail("plan", LT_EXIT_USAGE, "%s: $: expected a JSON object of answers", path);
        rc = -1;
    }
    for (const cJSON *x = j && rc == 0 ? j->child : NULL; x && rc == 0; x = x->next) {
        if (!cJSON_IsString(x)) {
            lt_cli_fail("plan", LT_EXIT_USAGE, "%s: $.%s: expected a string answer", path,
                        x->string);
            rc = -1;
        } else if (set_answer(answers, x->string, x->valuestring, path) < 0) {
            rc = -1;
        }
    }
    cJSON_Delete(j);
    return rc;
}

/* Every answer names a question of the tree and one of its choices. */
static int check_answers(const lt_plan_tree *t, const cJSON *answers)
{
    for (const cJSON *x = answers->child; x; x = x->next) {
        const char *vals[32], *labels[32];
        int n = 0;
        const char *q = lt_plan_tree_question(t, x->string, vals, labels, 32, &n);
        char list[512] = "";
        if (!q || n == 0) {
            const char *keys[32];
            int k = lt_plan_tree_questions(t, keys, 32);
            for (int i = 0; i < k && i < 32; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                         keys[i]);
            lt_cli_fail("plan", LT_EXIT_USAGE,
                        "answer %s: the tree has no such question (questions: %s)", x->string,
                        list);
            return -1;
        }
        bool ok = false;
        for (int i = 0; i < n && i < 32; i++) {
            ok |= strcmp(vals[i], x->valuestring) == 0;
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                     vals[i]);
        }
        if (!ok) {
            lt_cli_fail("plan", LT_EXIT_USAGE, "answer %s=\"%s\" is not one of the choices (%s)",
                        x->string, x->valuestring, list);
            return -1;
        }
    }
    return 0;
}

/* Asks one question on the terminal; returns the value chosen (owned by the tree) or NULL on
 * end of input. */
static const char *prompt_answer(const lt_plan_tree *t, const char *key)
{
    const char *vals[32], *labels[32];
    int n = 0;
    const char *q = lt_plan_tree_question(t, key, vals, labels, 32, &n);
    const char *dflt = lt_plan_tree_default(t, key);
    for (;;) {
        printf("\n%s\n", q ? q : key);
        for (int i = 0; i < n && i < 32; i++)
            printf("  %d) %s - %s\n", i + 1, vals[i], labels[i]);
        if (dflt)
            printf("choice [1-%d, Enter = %s]: ", n, dflt);
        else
            printf("choice [1-%d]: ", n);
        fflush(stdout);
        char line[128];
        if (!fgets(line, sizeof(line), stdin))
            return NULL;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] && dflt)
            return dflt;
        char *end = NULL;
        long k = strtol(line, &end, 10);
        if (end != line && !*end && k >= 1 && k <= n)
            return vals[k - 1];
        for (int i = 0; i < n && i < 32; i++)
            if (strcmp(line, vals[i]) == 0)
                return vals[i];
        printf("  (type a number from 1 to %d, or the value)\n", n);
    }
}

/* Asks for a fact on the terminal (a number or yes/no); NULL at end of input. */
static cJSON *prompt_fact(const char *fact, const char *note)
{
    for (;;) {
        printf("\nThe fact \"%s\" is unknown%s%s.\nValue (a number, yes/no, cpu/gpu): ", fact,
               note && *note ? ": " : "", note ? note : "");
        fflush(stdout);
        char line[128];
        if (!fgets(line, sizeof(line), stdin))
            return NULL;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0])
            return fact_value(line);
    }
}

int lt_cmd_plan_print(const cJSON *record, bool explain, int64_t plan_id, const char *out);
void lt_cmd_plan_print_facts(const cJSON *facts);

static int write_config(const char *path, const cJSON *cfg)
{
    char *text = cJSON_Print(cfg);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    bool ok = fd >= 0;
    if (ok) {
        size_t n = strlen(text);
        ok = write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
        if (!ok)
            unlink(tmp);
    }
    free(text);
    if (!ok)
        return lt_cli_fail("plan", LT_EXIT_FAIL, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int lt_cmd_plan(int argc, char **argv)
{
    plan_args a = {0};
    lt_cli_common_defaults(&a.cc);
    a.answers = cJSON_CreateObject();
    a.overrides = cJSON_CreateObject();
    lt_plan_tree *tree = NULL;
    lt_store *st = NULL;
    cJSON *facts = NULL, *path = NULL, *record = NULL;
    lt_device *dev = NULL;
    char err[1024] = "", missing[512] = "";
    int rc = LT_EXIT_USAGE;
    int pr = parse_args(argc, argv, &a);
    if (pr != 0) {
        rc = pr > 0 ? LT_EXIT_OK : LT_EXIT_USAGE;
        goto cleanup;
    }
    if (a.out && (rc = lt_cli_check_overwrite("plan", a.out, a.force)) != LT_EXIT_OK)
        goto cleanup;
    rc = LT_EXIT_USAGE;
    if (a.answers_file && load_answers(a.answers_file, a.answers) < 0)
        goto cleanup;
    if (a.tree_file) {
        size_t n = 0;
        char *text = read_file(a.tree_file, &n, err, sizeof(err));
        tree = text ? lt_plan_tree_parse(text, n, a.tree_file, err, sizeof(err)) : NULL;
        free(text);
    } else {
        tree = lt_plan_tree_builtin(err, sizeof(err));
    }
    if (!tree) {
        rc = lt_cli_fail("plan", LT_EXIT_FAIL, "%s", err);
        goto cleanup;
    }
    if (check_answers(tree, a.answers) < 0)
        goto cleanup;
    rc = LT_EXIT_FAIL;
    if (lt_store_open(lt_store_workspace_resolve(a.cc.workspace), &st, err, sizeof(err)) !=
        LT_STORE_OK) {
        lt_cli_fail("plan", LT_EXIT_FAIL, "%s", err);
        goto cleanup;
    }
    lt_plan_facts_opts fo = {a.model, a.data, a.cc.device, a.cc.threads, a.memory_gb,
                             a.overrides};
    lt_model_summary ms;
    void *fv = NULL;
    if (!lt_plan_facts_gather(st, &fo, &fv, &ms, missing, sizeof(missing), err, sizeof(err))) {
        fprintf(stderr, "lathe plan: ");
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        goto cleanup;
    }
    facts = fv;
    { /* throughput for the time estimate: measured, or the cache with --no-calibrate */
        char cerr[256] = "";
        double gf = 0;
        bool cached = false;
        dev = a.no_calibrate ? NULL
                             : lt_device_open(a.cc.device, a.cc.threads, cerr, sizeof(cerr));
        if (lt_plan_calibrate(dev, lt_store_workspace(st), &gf, &cached, cerr, sizeof(cerr))) {
            cJSON_AddNumberToObject(facts, "train_gflops", gf);
            cJSON_AddBoolToObject(facts, "train_gflops_cached", cached);
        }
    }
    /* a plan made for a named device trains on it (the estimate was for that device) */
    lt_plan_opts po = {a.seq_len, a.batch, a.epochs,
                       strcmp(a.cc.device, "auto") != 0 ? a.cc.device : NULL};
    bool tty = isatty(0), shown = false;
    lt_plan_walk_status ws;
    const char *leaf = NULL, *miss = NULL;
    for (;;) {
        lt_plan_derive(facts, &ms.cfg, &po);
        cJSON_Delete(path);
        void *pv = NULL;
        ws = lt_plan_tree_walk(tree, a.answers, facts, &pv, &leaf, &miss, err, sizeof(err));
        path = pv;
        if (ws == LT_PLAN_WALK_LEAF)
            break;
        if (ws == LT_PLAN_WALK_BAD) {
            rc = lt_cli_fail("plan", LT_EXIT_USAGE, "%s", err);
            goto cleanup;
        }
        if (!tty) {
            const char *vals[32], *labels[32];
            int n = 0;
            const char *q = lt_plan_tree_question(tree, miss, vals, labels, 32, &n);
            if (ws == LT_PLAN_WALK_NEED_ANSWER)
                rc = lt_cli_fail("plan", LT_EXIT_USAGE,
                                 "question %s (\"%s\") has no answer: give --answer %s=VALUE "
                                 "or an --answers file (not on a terminal, so not asked)",
                                 miss, q ? q : "", miss);
            else
                rc = lt_cli_fail("plan", LT_EXIT_USAGE,
                                 "the fact %s is unknown%s%s: give --fact %s=VALUE%s", miss,
                                 *missing ? " (" : "", *missing ? missing : "", miss,
                                 strcmp(miss, "memory_gb") == 0 ? " or --memory-gb N" : "");
            if (*missing && ws == LT_PLAN_WALK_NEED_FACT)
                fputs(")\n", stderr);
            goto cleanup;
        }
        if (!shown) { /* what is already known, before the first question */
            lt_cmd_plan_print_facts(facts);
            shown = true;
        }
        if (ws == LT_PLAN_WALK_NEED_ANSWER) {
            const char *v = prompt_answer(tree, miss);
            if (!v) {
                rc = lt_cli_fail("plan", LT_EXIT_USAGE, "no answer to %s (end of input)", miss);
                goto cleanup;
            }
            cJSON_AddStringToObject(a.answers, miss, v);
        } else {
            cJSON *v = prompt_fact(miss, missing);
            if (!v) {
                rc = lt_cli_fail("plan", LT_EXIT_USAGE, "no value for %s (end of input)", miss);
                goto cleanup;
            }
            cJSON_AddItemToObject(facts, miss, v);
            cJSON_AddItemToObject(a.overrides, miss, cJSON_Duplicate(v, 1));
        }
    }
    void *rv = NULL;
    if (!lt_plan_build(tree, leaf, a.answers, facts, path, &ms.cfg, &po, &rv, err, sizeof(err))) {
        lt_cli_fail("plan", LT_EXIT_FAIL, "%s", err);
        goto cleanup;
    }
    record = rv;
    if (cJSON_GetArraySize(a.overrides) > 0)
        cJSON_AddItemToObject(record, "overrides", cJSON_Duplicate(a.overrides, 1));
    int64_t plan_id = 0;
    if (!a.no_save && !lt_plan_save(st, record, &plan_id, err, sizeof(err))) {
        lt_cli_fail("plan", LT_EXIT_FAIL, "%s", err);
        goto cleanup;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(record, "config");
    if (a.out && cJSON_IsObject(cfg) && write_config(a.out, cfg) != 0)
        goto cleanup;
    if (a.out && !cJSON_IsObject(cfg))
        fprintf(stderr, "lathe plan: no config written to %s: the chosen method needs no "
                        "training run lathe can do\n", a.out);
    if (a.cc.json) {
        cJSON_AddNumberToObject(record, "plan_id", (double)plan_id);
        char *s = cJSON_Print(record);
        if (s)
            puts(s);
        free(s);
    } else {
        lt_cmd_plan_print(record, a.explain, plan_id, a.out);
    }
    rc = LT_EXIT_OK;
cleanup:
    cJSON_Delete(record);
    cJSON_Delete(path);
    cJSON_Delete(facts);
    cJSON_Delete(a.answers);
    cJSON_Delete(a.overrides);
    lt_plan_tree_free(tree);
    if (dev)
        lt_device_close(dev);
    lt_store_close(st);
    return rc;
}
