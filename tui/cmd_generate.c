/*
 * cmd_generate.c - `lathe generate`: load a model, take a prompt as text (through the
 * model's tokenizer, optionally as a chat turn) or as token ids, and stream the continuation.
 *
 * Only parsing and printing live here; tokenizing, the forward pass and sampling are
 * pipeline's. Generated text is printed sanitized, as it arrives.
 */
#include "cli.h"
#include "export/gguf_model.h"

#include "export/gguf_model.h"
#include "export/peft.h"
#include "model/generate.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *help =
    "usage: lathe generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [options]\n"
    "  --chat                  render the prompt as a user turn with the chat template\n"
    "  --template NAME         chat family when the template is not recognised\n"
    "                          (chatml, llama3, llama2, alpaca)\n"
    "  --max-tokens N          new tokens at most (64)\n"
    "  --temperature T         0 = greedy (default 0)\n"
    "  --top-k K               keep the K most likely tokens (0 = off)\n"
    "  --top-p P               keep the smallest set with probability >= P (1 = off)\n"
    "  --repetition-penalty R  >1 discourages repeats (1 = off)\n"
    "  --seed S                random seed for sampling (0)\n"
    "  --no-stop               keep going past the end-of-sequence token\n"
    "  --adapter DIR           apply a PEFT LoRA adapter folder to the model\n"
    "  --device auto|cpu|vulkan:N  --threads N  --json\n";

typedef struct stream_ctx {
    const lt_tokenizer *tok;
    int32_t *ids; /* generated so far */
    int n;
    size_t printed; /* bytes of decoded text already printed */
    bool print;
} stream_ctx;

/* Prints the newly decoded bytes (decoding everything keeps multi-byte characters whole). */
static bool on_token(void *user, int32_t t)
{
    stream_ctx *s = user;
    s->ids[s->n++] = t;
    if (!s->print)
        return true;
    if (!s->tok) {
        printf("%s%d", s->n > 1 ? "," : "", t);
        fflush(stdout);
        return true;
    }
    char *txt = NULL, err[LT_TOK_ERR_LEN];
    size_t n = 0;
    if (lt_tokenizer_decode(s->tok, s->ids, (size_t)s->n, LT_TOK_SKIP_SPECIAL, &txt, &n, err,
                            sizeof(err)) == LT_TOK_OK &&
        n > s->printed) {
        /* hold back an incomplete UTF-8 sequence at the end */
        size_t end = n;
        for (size_t k = 1; k <= 4 && k <= n - s->printed; k++) {
            unsigned char c = (unsigned char)txt[n - k];
            if ((c & 0xc0) == 0x80)
                continue;
            size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (need > k)
                end = n - k;
            break;
        }
        if (end > s->printed) {
            char save = txt[end];
            txt[end] = 0;
            lt_cli_print_sanitized(stdout, txt + s->printed, true);
            txt[end] = save;
            s->printed = end;
            fflush(stdout);
        }
    }
    free(txt);
    return true;
}

static int parse_ids(const char *s, int32_t **out, int *n)
{
    int cap = 16;
    *n = 0;
    *out = malloc((size_t)cap * sizeof(int32_t));
    while (*out && *s) {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX)
            return -1;
        if (*n == cap) {
            int32_t *g = realloc(*out, (size_t)(cap *= 2) * sizeof(int32_t));
            if (!g)
                return -1;
            *out = g;
        }
        (*out)[(*n)++] = (int32_t)v;
        s = end;
        if (*s == ',' || *s == ' ')
            s++;
    }
    return *out && *n > 0 ? 0 : -1;
}

static void print_json(const int32_t *prompt, int np, const int32_t *gen, int ng,
                       const char *text, double secs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *p = cJSON_AddArrayToObject(o, "prompt_ids");
    for (int i = 0; i < np; i++)
        cJSON_AddItemToArray(p, cJSON_CreateNumber(prompt[i]));
    cJSON *g = cJSON_AddArrayToObject(o, "generated_ids");
    for (int i = 0; i < ng; i++)
        cJSON_AddItemToArray(g, cJSON_CreateNumber(gen[i]));
    if (text)
        cJSON_AddStringToObject(o, "text", text);
    cJSON_AddNumberToObject(o, "seconds", secs);
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        puts(s);
    cJSON_free(s);
    cJSON_Delete(o);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int lt_cmd_generate(int argc, char **argv)
{
    lt_cli_common cc;
    lt_cli_common_defaults(&cc);
    const char *model = NULL, *prompt = NULL, *prompt_ids = NULL, *tmpl = NULL;
    const char *adapter_dir = NULL;
    lt_lora_adapter *adapter = NULL;
    bool chat = false, stop = true;
    lt_generate_opts go = {0};
    lt_sampler_defaults(&go.sampler);
    go.max_new_tokens = 64;
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&cc, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return LT_EXIT_OK;
        } else if (!strcmp(a, "--chat")) {
            chat = true;
            continue;
        } else if (!strcmp(a, "--no-stop")) {
            stop = false;
            continue;
        }
        if (!v)
            return lt_cli_fail("generate", LT_EXIT_USAGE, "unexpected argument %s\n%s", a, help);
        i++;
        errno = 0;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--adapter"))
            adapter_dir = v;
        else if (!strcmp(a, "--prompt"))
            prompt = v;
        else if (!strcmp(a, "--prompt-ids"))
            prompt_ids = v;
        else if (!strcmp(a, "--template"))
            tmpl = v;
        else if (!strcmp(a, "--max-tokens")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 1000000)
                return lt_cli_fail("generate", LT_EXIT_USAGE, "--max-tokens: 0 to 1000000");
            go.max_new_tokens = (int)n;
        } else if (!strcmp(a, "--temperature") || !strcmp(a, "--top-p") ||
                   !strcmp(a, "--repetition-penalty")) {
            float f = strtof(v, &end);
            if (*end || !isfinite(f) || f < 0 || (!strcmp(a, "--top-p") && f > 1) ||
                (!strcmp(a, "--repetition-penalty") && f <= 0))
                return lt_cli_fail("generate", LT_EXIT_USAGE, "%s: bad value %s", a, v);
            *(!strcmp(a, "--temperature") ? &go.sampler.temperature
              : !strcmp(a, "--top-p")     ? &go.sampler.top_p
                                          : &go.sampler.repetition_penalty) = f;
        } else if (!strcmp(a, "--top-k")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > INT32_MAX)
                return lt_cli_fail("generate", LT_EXIT_USAGE, "--top-k: a number >= 0");
            go.sampler.top_k = (int)n;
        } else if (!strcmp(a, "--seed")) {
            unsigned long long n = strtoull(v, &end, 10);
            if (*end || errno)
                return lt_cli_fail("generate", LT_EXIT_USAGE, "--seed: a number");
            go.sampler.seed = n;
        } else
            return lt_cli_fail("generate", LT_EXIT_USAGE, "unexpected argument %s\n%s", a, help);
    }
    if (!model || (!prompt == !prompt_ids))
        return lt_cli_fail("generate", LT_EXIT_USAGE,
                           "need --model and one of --prompt or --prompt-ids\n%s", help);
    if (chat && !prompt)
        return lt_cli_fail("generate", LT_EXIT_USAGE, "--chat needs --prompt TEXT");

    int rc = LT_EXIT_FAIL;
    char err[1024];
    lt_tokenizer *tok = NULL;
    lt_device *dev = NULL;
    lt_model *m = NULL;
    int32_t *ids = NULL, *gen = NULL, stop_ids[2];
    int np = 0, ng = 0;
    lt_tok_ids enc = {0};
    char *text = NULL;
    /* text needs a tokenizer; with ids it is optional (decoded output when present) */
    struct stat msb;
    if (!lt_gguf_is_path(model) && stat(model, &msb) == 0 && !S_ISDIR(msb.st_mode)) {
        lt_cli_fail("generate", LT_EXIT_USAGE,
                    "--model %s is a file, not a model folder (config.json, *.safetensors, "
                    "tokenizer.json); a GGUF file is read when its name ends in .gguf",
                    model);
        rc = LT_EXIT_USAGE;
        goto out;
    }
    bool tok_ok = lt_gguf_is_path(model)
                      ? lt_gguf_tokenizer_load(model, &tok, err, sizeof(err)) == LT_MODEL_OK
                      : lt_tokenizer_load_dir(model, &tok, err, sizeof(err)) == LT_TOK_OK;
    if (!tok_ok && prompt) {
        lt_cli_fail("generate", LT_EXIT_FAIL, "--prompt needs the model's tokenizer: %s", err);
        goto out;
    }
    if (prompt_ids) {
        if (parse_ids(prompt_ids, &ids, &np) != 0) {
            rc = lt_cli_fail("generate", LT_EXIT_USAGE,
                             "--prompt-ids: expected comma-separated token ids");
            goto out;
        }
    } else {
        lt_tok_status ts;
        if (chat) {
            lt_chat_family fam = tmpl ? lt_chat_family_parse(tmpl) : LT_CHAT_NONE;
            lt_chat_msg msg = {"user", prompt};
            if (tmpl && fam == LT_CHAT_NONE) {
                rc = lt_cli_fail("generate", LT_EXIT_USAGE, "--template: unknown family %s",
                                 tmpl);
                goto out;
            }
            ts = lt_tokenizer_chat_family(tok, fam, &fam, err, sizeof(err));
            if (ts == LT_TOK_OK)
                ts = lt_tokenizer_encode_chat(tok, fam, &msg, 1, true, &enc, err, sizeof(err));
        } else {
            ts = lt_tokenizer_encode(tok, prompt, strlen(prompt), LT_TOK_ADD_SPECIAL, &enc, err,
                                     sizeof(err));
        }
        if (ts != LT_TOK_OK || enc.n == 0) {
            lt_cli_fail("generate", LT_EXIT_FAIL, "tokenizing the prompt: %s",
                        ts ? err : "empty prompt");
            goto out;
        }
        np = (int)enc.n;
        ids = malloc((size_t)np * sizeof(int32_t));
        if (!ids)
            goto out;
        memcpy(ids, enc.ids, (size_t)np * sizeof(int32_t));
    }
    dev = lt_device_open(cc.device, cc.threads, err, sizeof(err));
    if (!dev) {
        lt_cli_fail("generate", LT_EXIT_FAIL, "device %s: %s", cc.device, err);
        goto out;
    }
    if (lt_model_load(model, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) != LT_MODEL_OK) {
        fprintf(stderr, "lathe generate: ");
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        goto out;
    }
    if (adapter_dir && (lt_peft_load(m, adapter_dir, &adapter, err, sizeof(err)) != LT_MODEL_OK ||
                        lt_peft_attach(m, adapter, err, sizeof(err)) != LT_MODEL_OK)) {
        fprintf(stderr, "lathe generate: adapter: ");
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        goto out;
    }
    gen = malloc(((size_t)go.max_new_tokens + 1) * sizeof(int32_t));
    if (!gen)
        goto out;
    stream_ctx sc = {tok, gen, 0, 0, !cc.json};
    go.on_token = on_token;
    go.user = &sc;
    go.stop_at_eos = stop;
    if (tok && lt_tokenizer_eos_id(tok) >= 0) {
        stop_ids[0] = lt_tokenizer_eos_id(tok);
        go.stop_ids = stop_ids;
        go.n_stop_ids = 1;
    }
    int32_t *out_ids = malloc(((size_t)go.max_new_tokens + 1) * sizeof(int32_t));
    if (!out_ids)
        goto out;
    double t0 = now_s();
    lt_model_status st = lt_generate(m, ids, np, &go, out_ids, &ng, err, sizeof(err));
    double secs = now_s() - t0;
    free(out_ids);
    if (st != LT_MODEL_OK) {
        if (!cc.json)
            putchar('\n');
        lt_cli_fail("generate", st == LT_MODEL_ERR_ARG ? LT_EXIT_USAGE : LT_EXIT_FAIL, "%s", err);
        rc = st == LT_MODEL_ERR_ARG ? LT_EXIT_USAGE : LT_EXIT_FAIL;
        goto out;
    }
    if (cc.json) {
        size_t tn = 0;
        if (tok)
            lt_tokenizer_decode(tok, gen, (size_t)ng, LT_TOK_SKIP_SPECIAL, &text, &tn, err,
                                sizeof(err));
        print_json(ids, np, gen, ng, text, secs);
    } else {
        putchar('\n');
        fprintf(stderr, "%d tokens in %.2f s (%.1f tokens/s)\n", ng, secs,
                secs > 0 ? ng / secs : 0.0);
    }
    rc = LT_EXIT_OK;
out:
    free(text);
    free(gen);
    free(ids);
    lt_tok_ids_free(&enc);
    if (m)
        lt_peft_attach(m, NULL, err, sizeof(err));
    lt_peft_free(adapter);
    lt_model_free(m);
    lt_device_close(dev);
    lt_tokenizer_free(tok);
    return rc;
}
