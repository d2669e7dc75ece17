/*
 * cmd_tokenizer.c - `lathe tokenizer encode|decode|train`: the tool to reach for when a
 * template or a special token looks wrong. Parses arguments and prints; the work is in
 * pipeline/tokenizer. Every piece or text that came from a model goes out sanitized.
 */
#include "cli.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void help_main(FILE *f)
{
    fprintf(f,
            "usage: lathe tokenizer encode --model DIR [--file F] [--json] [--chat [--template X]\n"
            "                              [--generation-prompt]] [--no-add-special] [--no-special-split]\n"
            "       lathe tokenizer decode --model DIR [--skip-special] [--json] IDS...\n"
            "       lathe tokenizer train --vocab N [--out DIR] [--min-frequency N] [--force] FILES...\n\n"
            "encode  prints the token ids of the text in F (or stdin), one line; --json prints each\n"
            "        id with its piece. --chat reads a JSON list of {\"role\", \"content\"} messages\n"
            "        (or {\"messages\": [...]}) and renders it with the model's chat template first;\n"
            "        --template chatml|llama3|llama2|alpaca chooses the family when the template is\n"
            "        missing or not recognised. With --chat --json each token says whether it is an\n"
            "        assistant token (what training learns).\n"
            "decode  prints the text of the ids (from the arguments, or stdin when none are given).\n"
            "train   trains a byte-level BPE tokenizer (GPT-2 pre-tokenizer) on the files and writes\n"
            "        DIR/tokenizer.json and DIR/tokenizer_config.json (ChatML template; special\n"
            "        tokens <|endoftext|>, <|im_start|>, <|im_end|>). Default DIR: ./tokenizer.\n");
}

/* Reads all of f; malloc'd, NUL-terminated. */
static char *read_all(FILE *f, size_t *n)
{
    size_t cap = 65536, k = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + k, 1, cap - k - 1, f)) > 0) {
        k += r;
        if (k + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    if (buf)
        buf[k] = '\0';
    *n = k;
    return buf;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static int utf8_len(const unsigned char *p)
{
    int n = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 && p[0] < 0xE0 ? 2 : 0;
    if (p[0] >= 0xF5)
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && p[0] == 0xE0 && p[1] < 0xA0) || (n == 3 && p[0] == 0xED && p[1] >= 0xA0) ||
        (n == 4 && p[0] == 0xF0 && p[1] < 0x90) || (n == 4 && p[0] == 0xF4 && p[1] >= 0x90))
        return 0;
    return n;
}

/* A JSON string with every control character (C0, DEL, C1) escaped and each byte that is
 * not valid UTF-8 written as U+FFFD. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int n;
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else if (*p < 0x80)
            fputc(*p, f);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fprintf(f, "\\u%04x", p[1]);
            p++;
        } else if ((n = utf8_len(p)) > 0) {
            fwrite(p, 1, (size_t)n, f);
            p += n - 1;
        } else
            fprintf(f, "\\ufffd");
    }
    fputc('"', f);
}

static lt_tokenizer *load(const char *dir)
{
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = NULL;
    if (!dir) {
        fprintf(stderr, "lathe tokenizer: --model DIR is required\n");
        return NULL;
    }
    if (lt_tokenizer_load_dir(dir, &t, err, sizeof err) != LT_TOK_OK) {
        fputs("lathe tokenizer: ", stderr);
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
    }
    return t;
}

/* Parses a messages list into msgs (pointing into root). */
static int parse_messages(const cJSON *root, lt_chat_msg **out, size_t *n, char *err, size_t en)
{
    const cJSON *list = cJSON_IsObject(root) ? cJSON_GetObjectItem(root, "messages") : root, *e;
    size_t k = 0;
    if (!cJSON_IsArray(list)) {
        snprintf(err, en, "expected a JSON list of {\"role\", \"content\"} or {\"messages\": [...]}");
        return -1;
    }
    *out = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof **out);
    if (!*out) {
        snprintf(err, en, "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(e, list)
    {
        (*out)[k].role = cJSON_GetStringValue(cJSON_GetObjectItem(e, "role"));
        (*out)[k].content = cJSON_GetStringValue(cJSON_GetObjectItem(e, "content"));
        if (!(*out)[k].role || !(*out)[k].content) {
            snprintf(err, en, "messages[%zu]: expected {\"role\": string, \"content\": string}", k);
            return -1;
        }
        k++;
    }
    *n = k;
    return 0;
}

static int cmd_encode(int argc, char **argv)
{
    lt_cli_common common;
    const char *model = NULL, *file = NULL, *tmpl = NULL;
    bool chat = false, gen = false, add_special = true, split_special = true;
    int rc = LT_EXIT_FAIL;
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = NULL;
    char *text = NULL;
    cJSON *conv = NULL;
    lt_chat_msg *msgs = NULL;
    lt_tok_ids ids = {0};
    lt_chat_family fam = LT_CHAT_NONE;
    size_t n = 0, n_msgs = 0;

    lt_cli_common_defaults(&common);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = lt_cli_common_parse(&common, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help_main(stdout);
            return LT_EXIT_OK;
        } else if (strcmp(a, "--model") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(a, "--file") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(a, "--template") == 0 && i + 1 < argc)
            tmpl = argv[++i];
        else if (strcmp(a, "--chat") == 0)
            chat = true;
        else if (strcmp(a, "--generation-prompt") == 0)
            gen = true;
        else if (strcmp(a, "--no-add-special") == 0)
            add_special = false;
        else if (strcmp(a, "--no-special-split") == 0)
            split_special = false;
        else
            return lt_cli_fail("tokenizer encode", LT_EXIT_USAGE,
                               "unknown or incomplete option '%s' (see --help)", a);
    }
    if (!model)
        return lt_cli_fail("tokenizer encode", LT_EXIT_USAGE, "--model DIR is required");
    if (tmpl && (fam = lt_chat_family_parse(tmpl)) == LT_CHAT_NONE)
        return lt_cli_fail("tokenizer encode", LT_EXIT_USAGE,
                           "--template: expected chatml, llama3, llama2 or alpaca");
    if (!(t = load(model)))
        goto done;
    FILE *in = file ? fopen(file, "rb") : stdin;
    if (!in) {
        lt_cli_fail("tokenizer encode", LT_EXIT_FAIL, "%s: cannot read: %s", file,
                    strerror(errno));
        goto done;
    }
    text = read_all(in, &n);
    if (file)
        fclose(in);
    if (!text)
        goto done;
    lt_tok_status s;
    if (chat) {
        if (!(conv = cJSON_ParseWithLength(text, n)) ||
            parse_messages(conv, &msgs, &n_msgs, err, sizeof err) < 0) {
            lt_cli_fail("tokenizer encode", LT_EXIT_FAIL, "--chat input: %s",
                        conv ? err : "not valid JSON");
            goto done;
        }
        s = lt_tokenizer_chat_family(t, fam, &fam, err, sizeof err);
        if (s == LT_TOK_OK)
            s = lt_tokenizer_encode_chat(t, fam, msgs, n_msgs, gen, &ids, err, sizeof err);
        if (s == LT_TOK_OK && !common.json)
            fprintf(stderr, "template: %s (%s)\n", lt_chat_family_name(fam),
                    tmpl ? "chosen with --template" : "recognised in the model's chat template");
    } else
        s = lt_tokenizer_encode(t, text, n,
                                (add_special ? LT_TOK_ADD_SPECIAL : 0) |
                                    (split_special ? 0 : LT_TOK_NO_SPECIAL_SPLIT),
                                &ids, err, sizeof err);
    if (s != LT_TOK_OK) {
        fputs("lathe tokenizer encode: ", stderr);
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        goto done;
    }
    if (common.json) {
        printf("{\"kind\": ");
        json_string(stdout, lt_tokenizer_kind(t));
        if (chat)
            printf(", \"template\": \"%s\"", lt_chat_family_name(fam));
        printf(", \"n_tokens\": %zu, \"tokens\": [", ids.n);
        for (size_t i = 0; i < ids.n; i++) {
            printf("%s\n  {\"id\": %d, \"piece\": ", i ? "," : "", ids.ids[i]);
            json_string(stdout, lt_tokenizer_piece(t, ids.ids[i]));
            printf(", \"offset\": %u", ids.offsets[i]);
            if (lt_tokenizer_is_special(t, ids.ids[i]))
                printf(", \"special\": true");
            if (chat)
                printf(", \"assistant\": %s", ids.mask[i] ? "true" : "false");
            printf("}");
        }
        printf("\n]}\n");
    } else {
        for (size_t i = 0; i < ids.n; i++)
            printf("%s%d", i ? " " : "", ids.ids[i]);
        printf("\n");
    }
    rc = LT_EXIT_OK;
done:
    lt_tok_ids_free(&ids);
    free(msgs);
    cJSON_Delete(conv);
    free(text);
    lt_tokenizer_free(t);
    return rc;
}

static int cmd_decode(int argc, char **argv)
{
    lt_cli_common common;
    const char *model = NULL;
    int flags = 0, rc = LT_EXIT_FAIL;
    lt_tok_ids ids = {0};
    lt_tokenizer *t = NULL;
    char *in = NULL, *out = NULL;
    char err[LT_TOK_ERR_LEN];
    size_t n_args = 0;
    lt_cli_common_defaults(&common);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = lt_cli_common_parse(&common, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help_main(stdout);
            return LT_EXIT_OK;
        } else if (strcmp(a, "--model") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(a, "--skip-special") == 0)
            flags |= LT_TOK_SKIP_SPECIAL;
        else if (a[0] == '-' && !(a[1] >= '0' && a[1] <= '9'))
            return lt_cli_fail("tokenizer decode", LT_EXIT_USAGE,
                               "unknown or incomplete option '%s' (see --help)", a);
        else
            n_args++;
    }
    if (!model)
        return lt_cli_fail("tokenizer decode", LT_EXIT_USAGE, "--model DIR is required");
    /* ids from the arguments, else stdin */
    size_t n_in = 0;
    if (n_args == 0 && !(in = read_all(stdin, &n_in)))
        goto done;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && !(argv[i][1] >= '0' && argv[i][1] <= '9')) {
            if (strcmp(argv[i], "--model") == 0)
                i++;
            continue;
        }
        if (n_args == 0)
            break;
        char *end;
        errno = 0;
        long v = strtol(argv[i], &end, 10);
        if (*end || errno || v < INT32_MIN || v > INT32_MAX) {
            rc = lt_cli_fail("tokenizer decode", LT_EXIT_USAGE, "'%s' is not a token id",
                             argv[i]);
            goto done;
        }
        if (!(ids.ids = realloc(ids.ids, (ids.n + 1) * sizeof *ids.ids)))
            goto done;
        ids.ids[ids.n++] = (int32_t)v;
    }
    for (char *p = in, *end; p && *p; p = end) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == ',' || *p == '\r' || *p == '[' ||
               *p == ']')
            p++;
        if (!*p)
            break;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX) {
            rc = lt_cli_fail("tokenizer decode", LT_EXIT_USAGE,
                             "stdin: expected token ids separated by spaces");
            goto done;
        }
        if (!(ids.ids = realloc(ids.ids, (ids.n + 1) * sizeof *ids.ids)))
            goto done;
        ids.ids[ids.n++] = (int32_t)v;
    }
    if (!(t = load(model)))
        goto done;
    size_t on = 0;
    if (lt_tokenizer_decode(t, ids.ids, ids.n, flags, &out, &on, err, sizeof err) != LT_TOK_OK) {
        fputs("lathe tokenizer decode: ", stderr);
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        goto done;
    }
    if (common.json) {
        printf("{\"text\": ");
        json_string(stdout, out);
        printf("}\n");
    } else {
        lt_cli_print_sanitized(stdout, out, true);
        printf("\n");
    }
    rc = LT_EXIT_OK;
done:
    free(ids.ids);
    free(in);
    free(out);
    lt_tokenizer_free(t);
    return rc;
}

static int cmd_train(int argc, char **argv)
{
    lt_cli_common common;
    lt_bpe_train_opts o = {0, 2, true};
    const char *out = "tokenizer";
    bool force = false;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int n_files = 0, rc = LT_EXIT_USAGE;
    char err[LT_TOK_ERR_LEN];
    if (!files)
        return LT_EXIT_FAIL;
    lt_cli_common_defaults(&common);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = lt_cli_common_parse(&common, argc, argv, &i);
        if (r < 0)
            goto done;
        if (r > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help_main(stdout);
            rc = LT_EXIT_OK;
            goto done;
        } else if (strcmp(a, "--vocab") == 0 && i + 1 < argc)
            o.vocab_size = atoi(argv[++i]);
        else if (strcmp(a, "--min-frequency") == 0 && i + 1 < argc)
            o.min_frequency = atoi(argv[++i]);
        else if (strcmp(a, "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(a, "--force") == 0)
            force = true;
        else if (a[0] == '-') {
            lt_cli_fail("tokenizer train", LT_EXIT_USAGE,
                        "unknown or incomplete option '%s' (see --help)", a);
            goto done;
        } else
            files[n_files++] = a;
    }
    if (o.vocab_size <= 0 || n_files == 0) {
        lt_cli_fail("tokenizer train", LT_EXIT_USAGE, "needs --vocab N and at least one file");
        goto done;
    }
    char tok_path[4200];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", out);
    if ((rc = lt_cli_check_overwrite("tokenizer train", tok_path, force)) != LT_EXIT_OK)
        goto done;
    rc = LT_EXIT_USAGE;
    if (lt_bpe_train(files, n_files, &o, out, err, sizeof err) != LT_TOK_OK) {
        rc = LT_EXIT_FAIL;
        fputs("lathe tokenizer train: ", stderr);
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        goto done;
    }
    rc = LT_EXIT_OK;
done:
    free(files);
    return rc;
}

int lt_cmd_tokenizer(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? LT_EXIT_USAGE : LT_EXIT_OK;
    }
    if (strcmp(argv[1], "encode") == 0)
        return cmd_encode(argc - 1, argv + 1);
    if (strcmp(argv[1], "decode") == 0)
        return cmd_decode(argc - 1, argv + 1);
    if (strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    fprintf(stderr, "lathe tokenizer: unknown subcommand '%s'\n\n", argv[1]);
    help_main(stderr);
    return LT_EXIT_USAGE;
}
