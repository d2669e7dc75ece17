/*
 * cli.c - the subcommand table and the options every command shares.
 */
#include "cli.h"
#include "sanitize.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const lt_command lt_commands[] = {
    {"devices", "list compute devices (CPU and Vulkan)", lt_cmd_devices},
    {"data", "import, inspect, dedup, filter, split and export datasets", lt_cmd_data},
    {"bench", "benchmark ops on a device (lathe bench ops)", lt_cmd_bench},
    {"model", "inspect a model folder, or create a random one (model info|init)", lt_cmd_model},
    {"generate", "generate text from a model (greedy or sampled, streaming)", lt_cmd_generate},
    {"tokenizer", "encode, decode, or train a tokenizer (tokenizer encode|decode|train)", lt_cmd_tokenizer},
    {"plan", "choose a method, estimate memory and time, write a training config", lt_cmd_plan},
    {"train", "train a model from a config (full, freeze, LoRA; resumable)", lt_cmd_train},
    {"runs", "list training runs, show one, or stop/pause/resume/checkpoint it", lt_cmd_runs},
    {"watch", "open the dashboard's live view of a run (lathe watch RUN)", lt_cmd_watch},
    {"eval", "evaluate base, few-shot, runs and adapters on a split; show and compare evals", lt_cmd_eval},
    {"export", "export a run or model as PEFT, merged, GGUF (+ Modelfile) or GGUF LoRA", lt_cmd_export},
    {"demo", "the whole pipeline on the bundled model and example data, headless", lt_cmd_demo},
    {0, 0, 0},
};

void lt_cli_common_defaults(lt_cli_common *c)
{
    const char *d = getenv("LATHE_DEVICE");
    const char *t = getenv("LATHE_THREADS");
    const char *w = getenv("LATHE_HOME");
    c->device = (d && *d) ? d : "auto";
    c->threads = (t && *t) ? atoi(t) : 0;
    if (c->threads < 0)
        c->threads = 0;
    c->workspace = (w && *w) ? w : ".lathe";
    c->json = false;
}

/* Matches "--name" (value in the next argument) or "--name=value"; NULL if no match. */
static const char *option_value(const char *name, int argc, char **argv, int *i, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *missing = false;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

int lt_cli_common_parse(lt_cli_common *c, int argc, char **argv, int *i)
{
    bool missing;
    const char *v;
    if (strcmp(argv[*i], "--json") == 0) {
        c->json = true;
        return 1;
    }
    if ((v = option_value("--device", argc, argv, i, &missing)) || missing) {
        if (!v) {
            fprintf(stderr, "lathe: --device needs a value: auto, cpu or vulkan:N\n");
            return -1;
        }
        c->device = v;
        return 1;
    }
    if ((v = option_value("--threads", argc, argv, i, &missing)) || missing) {
        char *end = NULL;
        long n = v ? strtol(v, &end, 10) : -1;
        if (!v || *end || n < 0 || n > 4096) {
            fprintf(stderr, "lathe: --threads needs a number from 0 to 4096 (0 = all cores)\n");
            return -1;
        }
        c->threads = (int)n;
        return 1;
    }
    if ((v = option_value("--workspace", argc, argv, i, &missing)) || missing) {
        if (!v || !*v) {
            fprintf(stderr, "lathe: --workspace needs a directory\n");
            return -1;
        }
        c->workspace = v;
        return 1;
    }
    return 0;
}

int lt_cli_fail(const char *cmd, int code, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lathe %s: ", cmd);
    lt_cli_print_sanitized(stderr, msg, true);
    fputc('\n', stderr);
    return code;
}

void lt_cli_apply_umask(void)
{
    mode_t mask = 077;
    const char *v = getenv("LATHE_UMASK");
    if (v && *v) {
        char *end = NULL;
        long m = strtol(v, &end, 8);
        if (*end || m < 0 || m > 0777)
            fprintf(stderr, "lathe: LATHE_UMASK=%.16s is not an octal mask from 000 to 777; "
                            "using 077 (files readable by their owner alone)\n", v);
        else
            mask = (mode_t)m;
    }
    umask(mask);
}

int lt_cli_check_overwrite(const char *cmd, const char *path, bool force)
{
    struct stat sb;
    if (force || lstat(path, &sb) != 0)
        return LT_EXIT_OK;
    return lt_cli_fail(cmd, LT_EXIT_USAGE, "%s exists; add --force to replace it", path);
}

void lt_cli_print_sanitized(FILE *f, const char *s, bool keep_newlines)
{
    lt_sanitize_write(f, s, s ? strlen(s) : 0, keep_newlines, false);
}

/* ---- stderr through the sanitizer ---- */

typedef struct sane_stream {
    FILE *out;       /* the real stream, on fd 2 */
    char carry[4];   /* the start of a UTF-8 character the next write completes */
    size_t n_carry;
} sane_stream;

static ssize_t sane_write(void *cookie, const char *buf, size_t size)
{
    sane_stream *ss = cookie;
    char tmp[4096 + 4];
    size_t done = 0;
    while (done < size) {
        size_t take = size - done < 4096 ? size - done : 4096;
        memcpy(tmp, ss->carry, ss->n_carry);
        memcpy(tmp + ss->n_carry, buf + done, take);
        size_t n = ss->n_carry + take;
        ss->n_carry = lt_utf8_incomplete_tail(tmp, n);
        memcpy(ss->carry, tmp + n - ss->n_carry, ss->n_carry);
        if (lt_sanitize_write(ss->out, tmp, n - ss->n_carry, true, true) != 0)
            return done ? (ssize_t)done : -1;
        done += take;
    }
    fflush(ss->out);
    return (ssize_t)size;
}

static int sane_close(void *cookie)
{
    sane_stream *ss = cookie;
    if (ss->n_carry)
        lt_sanitize_write(ss->out, ss->carry, ss->n_carry, true, true);
    return fflush(ss->out);
}

void lt_cli_sanitize_stderr(void)
{
    static sane_stream ss;
    /* fd 2 itself, not a copy: a detached run that moves fd 2 to its log keeps logging */
    ss.out = fdopen(STDERR_FILENO, "w");
    if (!ss.out)
        return; /* stderr stays as it is */
    cookie_io_functions_t io = {.write = sane_write, .close = sane_close};
    FILE *f = fopencookie(&ss, "w", io);
    if (!f)
        return; /* ss.out is left open: closing it would close fd 2 */
    setvbuf(f, NULL, _IONBF, 0); /* progress lines end in \r, not \n: shown at once */
    fflush(stderr);
    stderr = f;
}
