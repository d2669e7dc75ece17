/*
 * cli.c - the subcommand table and the options every command shares.
 */
#include "cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
    va_list ap;
    fprintf(stderr, "lathe %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

void lt_cli_print_sanitized(FILE *f, const char *s, bool keep_newlines)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if (ch == '\n' && keep_newlines)
            fputc('\n', f);
        else if (ch == '\t')
            fputc('\t', f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else if (ch == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            /* C1 control characters (U+0080..U+009F) include CSI */
            fprintf(f, "\\u%04x", p[1]);
            p++;
        } else
            fputc(ch, f);
    }
}
