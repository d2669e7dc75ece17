/*
 * cmd_model.c - `lathe model info DIR|FILE.gguf` (what a model folder or GGUF file holds,
 * without loading it) and `lathe model init` (a random model saved as a Hugging Face folder).
 *
 * Only argument parsing and printing live here; the work is pipeline/model's.
 */
#include "cli.h"

#include "export/gguf_model.h"
#include "model/model.h"
#include "model/model_init.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *info_help =
    "usage: lathe model info DIR|FILE.gguf [--json]\n"
    "  Architecture, parameters by kind, stored dtype, tokenizer and chat template, and the\n"
    "  memory the weights take once loaded, read from config.json, the safetensors headers\n"
    "  and tokenizer.json (no weights are read). A GGUF file (a model or a LoRA adapter) is\n"
    "  described from its metadata and tensor infos.\n";

static const char *init_help =
    "usage: lathe model init --arch llama|gpt2 [options] OUT_DIR\n"
    "  Write a random model (config.json + model.safetensors) for tests or pretraining.\n"
    "  --dim N         hidden size (64)          --layers N     layers (2)\n"
    "  --heads N       attention heads (4)       --kv-heads N   llama kv heads (= heads)\n"
    "  --ffn N         MLP size (llama 8*dim/3 rounded to 16, gpt2 4*dim)\n"
    "  --vocab N       vocabulary (256)          --seq N        max positions (256)\n"
    "  --tie | --untie tie lm_head to the embeddings (gpt2 tied, llama untied by default)\n"
    "  --seed N        random seed (0)           --dtype f32|f16|bf16  stored dtype (f32)\n"
    "  --force         replace a config.json or model.safetensors already in OUT_DIR\n"
    "  --json          print the result as JSON\n";

/* Tokenizer facts for info: kind and chat template family, or whether tokenizer.json exists. */
static void tokenizer_facts(const char *dir, char *kind, size_t kn, char *tmpl, size_t tn)
{
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *tok = NULL;
    snprintf(kind, kn, "absent");
    snprintf(tmpl, tn, "none");
    if (lt_tokenizer_load_dir(dir, &tok, err, sizeof(err)) != LT_TOK_OK) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/tokenizer.json", dir);
        FILE *f = fopen(p, "r");
        if (f) {
            fclose(f);
            snprintf(kind, kn, "tokenizer.json present (unreadable: %.200s)", err);
        }
        return;
    }
    snprintf(kind, kn, "%s", lt_tokenizer_kind(tok));
    const char *t = lt_tokenizer_chat_template(tok);
    if (t) {
        lt_chat_family fam = lt_chat_detect(t);
        snprintf(tmpl, tn, "%s", fam == LT_CHAT_NONE ? "unrecognised" : lt_chat_family_name(fam));
    }
    lt_tokenizer_free(tok);
}

static void human_bytes(char *buf, size_t n, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* `model info FILE.gguf`: the file's metadata as lathe reads it. */
static const char *rope_type_name(lt_rope_type t)
{
    return t == LT_ROPE_LINEAR   ? "linear"
           : t == LT_ROPE_LLAMA3 ? "llama3"
           : t == LT_ROPE_YARN   ? "yarn"
                                 : "default";
}

/* The model's shape and parameter counts, as `model info --json` reports them for a folder
 * and for a GGUF file alike. */
static void config_json(cJSON *o, const lt_model_config *c, const int64_t *params, int64_t total)
{
    cJSON_AddNumberToObject(o, "hidden_size", (double)c->dim);
    cJSON_AddNumberToObject(o, "layers", (double)c->n_layers);
    cJSON_AddNumberToObject(o, "heads", (double)c->n_heads);
    cJSON_AddNumberToObject(o, "kv_heads", (double)c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", (double)c->head_dim);
    cJSON_AddNumberToObject(o, "ffn", (double)c->ffn);
    cJSON_AddNumberToObject(o, "vocab_size", (double)c->vocab);
    cJSON_AddNumberToObject(o, "context", (double)c->max_pos);
    cJSON_AddBoolToObject(o, "tied_embeddings", c->tie_embeddings);
    if (c->rope_scaling.type == LT_ROPE_DEFAULT) {
        cJSON_AddNullToObject(o, "rope_scaling");
    } else {
        cJSON *r = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddStringToObject(r, "type", rope_type_name(c->rope_scaling.type));
        cJSON_AddNumberToObject(r, "factor", c->rope_scaling.factor);
        if (c->rope_scaling.original_max_pos > 0)
            cJSON_AddNumberToObject(r, "original_context",
                                    (double)c->rope_scaling.original_max_pos);
    }
    if (c->sliding_window > 0)
        cJSON_AddNumberToObject(o, "sliding_window", (double)c->sliding_window);
    else
        cJSON_AddNullToObject(o, "sliding_window");
    cJSON *p = cJSON_AddObjectToObject(o, "parameters");
    for (int k = 0; k < LT_PARAM_KIND_COUNT; k++)
        cJSON_AddNumberToObject(p, lt_param_kind_name((lt_param_kind)k), (double)params[k]);
    cJSON_AddNumberToObject(p, "total", (double)total);
}

/* The same facts as text lines. */
static void config_print(const lt_model_config *c, const int64_t *params, int64_t total)
{
    printf("shape          dim %lld, %lld layers, %lld heads (%lld kv, head_dim %lld), ffn %lld\n",
           (long long)c->dim, (long long)c->n_layers, (long long)c->n_heads,
           (long long)c->n_kv_heads, (long long)c->head_dim, (long long)c->ffn);
    printf("vocab          %lld, context %lld%s\n", (long long)c->vocab, (long long)c->max_pos,
           c->tie_embeddings ? ", tied embeddings" : "");
    if (c->rope_scaling.type != LT_ROPE_DEFAULT || c->sliding_window > 0) {
        printf("positions      ");
        if (c->rope_scaling.type != LT_ROPE_DEFAULT)
            printf("%s rope scaling x%g", rope_type_name(c->rope_scaling.type),
                   c->rope_scaling.factor);
        if (c->rope_scaling.original_max_pos > 0)
            printf(" over %lld", (long long)c->rope_scaling.original_max_pos);
        if (c->sliding_window > 0)
            printf("%ssliding window %lld", c->rope_scaling.type != LT_ROPE_DEFAULT ? ", " : "",
                   (long long)c->sliding_window);
        printf("\n");
    }
    printf("parameters     %lld\n", (long long)total);
    for (int k = 0; k < LT_PARAM_KIND_COUNT; k++)
        printf("  %-12s %lld\n", lt_param_kind_name((lt_param_kind)k), (long long)params[k]);
}

static int gguf_info(const char *path, bool json)
{
    char err[1024], fbytes[32], mem[32];
    lt_gguf_summary g;
    if (lt_gguf_inspect(path, &g, err, sizeof(err)) != LT_MODEL_OK) {
        fprintf(stderr, "lathe model info: ");
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        return LT_EXIT_FAIL;
    }
    bool adapter = !strcmp(g.type, "adapter");
    const lt_model_config *c = &g.cfg;
    human_bytes(fbytes, sizeof(fbytes), (double)g.file_bytes);
    /* lathe dequantizes a GGUF to F32 on load */
    human_bytes(mem, sizeof(mem), 4.0 * (double)g.total_params);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "format", "gguf");
        cJSON_AddNumberToObject(o, "version", g.version);
        cJSON_AddStringToObject(o, "type", g.type);
        cJSON_AddStringToObject(o, "name", g.name);
        cJSON_AddStringToObject(o, "architecture", adapter ? g.arch : lt_arch_name(c->arch));
        cJSON_AddNumberToObject(o, "file_bytes", (double)g.file_bytes);
        cJSON_AddNumberToObject(o, "tensors", g.n_tensors);
        cJSON_AddStringToObject(o, "dtype", g.dtypes);
        if (adapter) {
            cJSON_AddNumberToObject(o, "lora_rank", (double)g.lora_rank);
            cJSON_AddNumberToObject(o, "lora_alpha", g.lora_alpha);
            cJSON_AddNumberToObject(o, "adapted_matrices", g.n_lora);
            cJSON_AddNumberToObject(o, "parameters", (double)g.total_params);
        } else {
            config_json(o, c, g.params, g.total_params);
            cJSON_AddNumberToObject(o, "weight_bytes", 4.0 * (double)g.total_params);
            cJSON_AddStringToObject(o, "tokenizer", g.tok_model);
            cJSON_AddStringToObject(o, "pre_tokenizer", g.tok_pre);
            cJSON_AddNumberToObject(o, "tokens", (double)g.n_tokens);
            cJSON_AddNumberToObject(o, "bos_id", g.bos_id);
            cJSON_AddNumberToObject(o, "eos_id", g.eos_id);
            cJSON_AddNumberToObject(o, "eot_id", g.eot_id);
            cJSON_AddBoolToObject(o, "add_bos", g.add_bos);
            cJSON_AddStringToObject(o, "chat_template", g.chat);
        }
        char *txt = cJSON_Print(o);
        if (txt)
            puts(txt);
        cJSON_free(txt);
        cJSON_Delete(o);
        return LT_EXIT_OK;
    }
    printf("file           GGUF v%u, %s, %s, %d tensors\n", (unsigned)g.version,
           adapter ? "LoRA adapter" : "model", fbytes, g.n_tensors);
    printf("name           ");
    lt_cli_print_sanitized(stdout, g.name[0] ? g.name : "(none)", false);
    printf("\narchitecture   ");
    lt_cli_print_sanitized(stdout, adapter ? g.arch : lt_arch_name(c->arch), false);
    putchar('\n');
    if (adapter) {
        printf("lora           rank %lld, alpha %g, %d adapted matrices\n",
               (long long)g.lora_rank, g.lora_alpha, g.n_lora);
        printf("parameters     %lld\n", (long long)g.total_params);
        printf("dtype          %s\n", g.dtypes);
        return LT_EXIT_OK;
    }
    config_print(c, g.params, g.total_params);
    printf("dtype          %s\n", g.dtypes);
    printf("memory to load %s (F32)\n", mem);
    printf("tokenizer      ");
    if (g.tok_model[0]) {
        lt_cli_print_sanitized(stdout, g.tok_model, false);
        printf(", pre-tokenizer ");
        lt_cli_print_sanitized(stdout, g.tok_pre[0] ? g.tok_pre : "(none)", false);
        printf(", %lld tokens, bos %d, eos %d, eot %d, add_bos %s\n", (long long)g.n_tokens,
               (int)g.bos_id, (int)g.eos_id, (int)g.eot_id, g.add_bos ? "yes" : "no");
    } else {
        printf("absent\n");
    }
    printf("chat template  %s\n", g.chat);
    return LT_EXIT_OK;
}

static int model_info(int argc, char **argv)
{
    lt_cli_common cc;
    lt_cli_common_defaults(&cc);
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&cc, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(info_help, stdout);
            return LT_EXIT_OK;
        }
        if (argv[i][0] == '-' || dir)
            return lt_cli_fail("model info", LT_EXIT_USAGE, "unexpected argument %s\n%s",
                               argv[i], info_help);
        dir = argv[i];
    }
    if (!dir)
        return lt_cli_fail("model info", LT_EXIT_USAGE, "missing DIR\n%s", info_help);
    if (lt_gguf_is_path(dir))
        return gguf_info(dir, cc.json);
    char err[1024];
    lt_model_summary s;
    if (lt_model_inspect(dir, &s, err, sizeof(err)) != LT_MODEL_OK) {
        fprintf(stderr, "lathe model info: ");
        lt_cli_print_sanitized(stderr, err, false);
        fputc('\n', stderr);
        return LT_EXIT_FAIL;
    }
    char kind[320], tmpl[64], mem[32];
    tokenizer_facts(dir, kind, sizeof(kind), tmpl, sizeof(tmpl));
    /* loaded: matrices keep their dtype, vectors become F32; approximate with stored bytes */
    human_bytes(mem, sizeof(mem), (double)s.weight_bytes);
    const lt_model_config *c = &s.cfg;
    if (cc.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "architecture", lt_arch_name(c->arch));
        config_json(o, c, s.params, s.total_params);
        cJSON_AddStringToObject(o, "dtype", s.dtypes);
        cJSON_AddNumberToObject(o, "weight_bytes", (double)s.weight_bytes);
        cJSON_AddNumberToObject(o, "files", s.n_files);
        cJSON_AddNumberToObject(o, "ignored_tensors", s.n_ignored);
        cJSON_AddStringToObject(o, "tokenizer", kind);
        cJSON_AddStringToObject(o, "chat_template", tmpl);
        char *txt = cJSON_Print(o);
        if (txt)
            puts(txt);
        cJSON_free(txt);
        cJSON_Delete(o);
        return LT_EXIT_OK;
    }
    printf("architecture   %s\n", lt_arch_name(c->arch));
    config_print(c, s.params, s.total_params);
    printf("dtype          %s (%d file%s)\n", s.dtypes, s.n_files, s.n_files == 1 ? "" : "s");
    printf("memory to load %s\n", mem);
    printf("tokenizer      ");
    lt_cli_print_sanitized(stdout, kind, false);
    printf("\nchat template  %s\n", tmpl);
    return LT_EXIT_OK;
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int model_init(int argc, char **argv)
{
    lt_cli_common cc;
    lt_cli_common_defaults(&cc);
    const char *out = NULL, *arch = NULL, *dtype = "f32";
    struct {
        const char *name;
        int64_t v;
        bool set;
    } nums[] = {{"--dim", 0, 0},   {"--layers", 0, 0}, {"--heads", 0, 0}, {"--kv-heads", 0, 0},
                {"--ffn", 0, 0},   {"--vocab", 0, 0},  {"--seq", 0, 0},   {"--seed", 0, 0}};
    int tie = -1;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&cc, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r)
            continue;
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(init_help, stdout);
            return LT_EXIT_OK;
        }
        if (!strcmp(a, "--force")) {
            force = true;
            continue;
        }
        if (!strcmp(a, "--tie") || !strcmp(a, "--untie")) {
            tie = !strcmp(a, "--tie");
            continue;
        }
        if (!strcmp(a, "--arch") || !strcmp(a, "--dtype")) {
            if (i + 1 >= argc)
                return lt_cli_fail("model init", LT_EXIT_USAGE, "%s needs a value", a);
            *(!strcmp(a, "--arch") ? &arch : &dtype) = argv[++i];
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (strcmp(a, nums[k].name) != 0)
                continue;
            if (i + 1 >= argc || !parse_i64(argv[i + 1], 0, (int64_t)1 << 40, &nums[k].v))
                return lt_cli_fail("model init", LT_EXIT_USAGE, "%s needs a non-negative number",
                                   a);
            nums[k].set = true;
            matched = true;
            i++;
        }
        if (matched)
            continue;
        if (a[0] == '-' || out)
            return lt_cli_fail("model init", LT_EXIT_USAGE, "unexpected argument %s\n%s", a,
                               init_help);
        out = a;
    }
    if (!out || !arch)
        return lt_cli_fail("model init", LT_EXIT_USAGE, "need --arch and OUT_DIR\n%s",
                           init_help);
    lt_model_init_opts o;
    if (!strcmp(arch, "llama"))
        lt_model_init_defaults(&o, LT_ARCH_LLAMA);
    else if (!strcmp(arch, "gpt2"))
        lt_model_init_defaults(&o, LT_ARCH_GPT2);
    else if (!strcmp(arch, "qwen2"))
        lt_model_init_defaults(&o, LT_ARCH_QWEN2);
    else
        return lt_cli_fail("model init", LT_EXIT_USAGE, "--arch must be llama, qwen2 or gpt2");
    int64_t *dst[] = {&o.dim, &o.n_layers, &o.n_heads, &o.n_kv_heads,
                      &o.ffn, &o.vocab,    &o.max_pos};
    for (int k = 0; k < 7; k++)
        if (nums[k].set)
            *dst[k] = nums[k].v;
    if (nums[0].set && !nums[4].set)
        o.ffn = o.arch == LT_ARCH_GPT2 ? 4 * o.dim : 0;
    if (!nums[3].set)
        o.n_kv_heads = o.n_heads;
    o.seed = (uint64_t)nums[7].v;
    if (tie >= 0)
        o.tie_embeddings = tie;
    if (!strcmp(dtype, "f32"))
        o.save_dtype = LT_F32;
    else if (!strcmp(dtype, "f16"))
        o.save_dtype = LT_F16;
    else if (!strcmp(dtype, "bf16"))
        o.save_dtype = LT_BF16;
    else
        return lt_cli_fail("model init", LT_EXIT_USAGE, "--dtype must be f32, f16 or bf16");
    char err[1024], have[4200];
    /* a tokenizer.json already there is kept (train the tokenizer first, then the model) */
    const char *mine[] = {"config.json", "model.safetensors"};
    for (int k = 0; k < 2; k++) {
        snprintf(have, sizeof(have), "%s/%s", out, mine[k]);
        int rc = lt_cli_check_overwrite("model init", have, force);
        if (rc != LT_EXIT_OK)
            return rc;
    }
    lt_model_config cfg;
    lt_model_status st = lt_model_init_random(&o, out, &cfg, err, sizeof(err));
    if (st != LT_MODEL_OK)
        return lt_cli_fail("model init", st == LT_MODEL_ERR_ARG ? LT_EXIT_USAGE : LT_EXIT_FAIL,
                           "%s", err);
    lt_model_summary s;
    if (lt_model_inspect(out, &s, err, sizeof(err)) != LT_MODEL_OK)
        return lt_cli_fail("model init", LT_EXIT_FAIL, "wrote %s but cannot read it back: %s",
                           out, err);
    if (cc.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dir", out);
        cJSON_AddStringToObject(o, "architecture", lt_arch_name(cfg.arch));
        cJSON_AddNumberToObject(o, "parameters", (double)s.total_params);
        char *txt = cJSON_PrintUnformatted(o);
        if (txt)
            puts(txt);
        cJSON_free(txt);
        cJSON_Delete(o);
    } else
        printf("wrote a random %s model (%lld parameters, %s) to %s\n", lt_arch_name(cfg.arch),
               (long long)s.total_params, dtype, out);
    return LT_EXIT_OK;
}

int lt_cmd_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: lathe model info DIR [--json]\n"
               "       lathe model init --arch llama|gpt2 [options] OUT_DIR\n");
        return argc < 2 ? LT_EXIT_USAGE : LT_EXIT_OK;
    }
    if (!strcmp(argv[1], "info"))
        return model_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "init"))
        return model_init(argc - 1, argv + 1);
    return lt_cli_fail("model", LT_EXIT_USAGE, "unknown subcommand %s (info, init)", argv[1]);
}
