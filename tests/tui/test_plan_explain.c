/*
 * test_plan_explain.c - `lathe plan --explain` on a Llama-3.1-8B-shaped folder: config.json
 * with the model's exact fields and a model.safetensors whose header lists every tensor
 * (bf16, 16 GB of data) and whose data region is a hole made with ftruncate, so it costs no
 * disk. At 24 GB and 80 GB of device memory, seq 2048 and batch 1 it checks:
 *   - every method's row (full f32/bf16, freeze, LoRA, QLoRA, each with and without
 *     checkpointing) prints the numbers of lt_plan_estimate for the plan's options, and
 *     whether it fits the budget;
 *   - the leaf is the first of the tree's order (full, full+ckpt, lora, lora+ckpt, qlora,
 *     qlora+ckpt) whose estimate fits, and the choice line says why;
 *   - 80 GB never chooses full fine-tuning for 8B (it needs over 150 GB); when the estimator
 *     models checkpointing, 24 GB chooses LoRA with checkpointing or QLoRA.
 * Until rope_scaling "llama3" loads, the fixture leaves it out (the test says so).
 */
#include "cli.h"
#include "plan/plan.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GB 1e9

static char root[256], model_dir[300], ws[300];

/* Llama-3.1-8B's config.json, with or without its rope_scaling. */
static bool write_config(bool rope_scaling)
{
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false,\n"
            " \"attention_dropout\": 0.0, \"bos_token_id\": 128000,\n"
            " \"eos_token_id\": [128001, 128008, 128009], \"hidden_act\": \"silu\",\n"
            " \"hidden_size\": 4096, \"initializer_range\": 0.02, \"intermediate_size\": 14336,\n"
            " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"model_type\": "
            "\"llama\",\n"
            " \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 8,\n"
            " \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05,\n");
    if (rope_scaling)
        fprintf(f, " \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, "
                   "\"high_freq_factor\": 4.0,\n"
                   "   \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},\n");
    fprintf(f, " \"rope_theta\": 500000.0, \"tie_word_embeddings\": false, \"torch_dtype\": "
               "\"bfloat16\",\n"
               " \"transformers_version\": \"4.43.0.dev0\", \"use_cache\": true, \"vocab_size\": "
               "128256}\n");
    return fclose(f) == 0;
}

/* Appends one tensor to the header; *off advances by its bf16 bytes. */
static size_t tensor(char *h, size_t n, size_t cap, const char *name, int64_t a, int64_t b,
                     uint64_t *off)
{
    uint64_t bytes = (uint64_t)a * (uint64_t)(b ? b : 1) * 2;
    int k = b ? snprintf(h + n, cap - n,
                         "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld,%lld],"
                         "\"data_offsets\":[%llu,%llu]}",
                         n > 1 ? "," : "", name, (long long)a, (long long)b,
                         (unsigned long long)*off, (unsigned long long)(*off + bytes))
              : snprintf(h + n, cap - n,
                         "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld],"
                         "\"data_offsets\":[%llu,%llu]}",
                         n > 1 ? "," : "", name, (long long)a, (unsigned long long)*off,
                         (unsigned long long)(*off + bytes));
    *off += bytes;
    return n + (size_t)k;
}

/* model.safetensors: the header, then a hole as long as the tensors' data. */
static bool write_safetensors(void)
{
    const int64_t D = 4096, F = 14336, V = 128256, KV = 1024;
    size_t cap = 1 << 16, n = 0;
    char *h = malloc(cap);
    uint64_t off = 0;
    char name[96];
    bool ok = false;
    if (!h)
        return false;
    h[n++] = '{';
    n = tensor(h, n, cap, "model.embed_tokens.weight", V, D, &off);
    for (int i = 0; i < 32; i++) {
        static const char *const parts[] = {
            "input_layernorm",  "self_attn.q_proj", "self_attn.k_proj",
            "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
            "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
        const int64_t rows[] = {D, D, KV, KV, D, D, F, F, D}, cols[] = {0, D, D, D, D, 0, D, D, F};
        for (int p = 0; p < 9; p++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, parts[p]);
            n = tensor(h, n, cap, name, rows[p], cols[p], &off);
        }
    }
    n = tensor(h, n, cap, "model.norm.weight", D, 0, &off);
    n = tensor(h, n, cap, "lm_head.weight", V, D, &off);
    h[n++] = '}';
    while (n % 8)
        h[n++] = ' ';
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        uint64_t hl = n;
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(hl >> (8 * i));
        ok = write(fd, le, 8) == 8 && write(fd, h, n) == (ssize_t)n &&
             ftruncate(fd, (off_t)(8 + n + off)) == 0;
        ok = close(fd) == 0 && ok;
    }
    free(h);
    return ok;
}

/* Runs a lathe command's entry point with stdout in a file; its exit code. */
static int capture(int (*cmd)(int, char **), int argc, char **argv, const char *out)
{
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0)
        return -1;
    dup2(fd, 1);
    close(fd);
    int rc = cmd(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    return b;
}

/* The tree's order of the fit facts and their leaves. */
static const struct {
    const char *fact, *leaf;
    lt_est_method m; /* LT_EST_METHOD_COUNT: the model's full method (bf16 here) */
    bool ckpt;
} ORDER[] = {
    {"full_fits", "leaf_full", LT_EST_FULL_BF16, false},
    {"full_ckpt_fits", "leaf_full_ckpt", LT_EST_FULL_BF16, true},
    {"lora_fits", "leaf_lora", LT_EST_LORA, false},
    {"lora_ckpt_fits", "leaf_lora_ckpt", LT_EST_LORA, true},
    {"qlora_fits", "leaf_qlora", LT_EST_QLORA, false},
    {"qlora_ckpt_fits", "leaf_qlora_ckpt", LT_EST_QLORA, true},
};

static void explain_at(const lt_model_config *cfg, const char *mem)
{
    char out[400], jout[400];
    snprintf(out, sizeof out, "%s/explain_%s.txt", root, mem);
    snprintf(jout, sizeof jout, "%s/explain_%s.json", root, mem);
    char *argv[] = {"plan",
                    "--workspace",
                    ws,
                    "--model",
                    model_dir,
                    "--data",
                    "chat",
                    "--device",
                    "cpu",
                    "--threads",
                    "2",
                    "--no-calibrate",
                    "--no-save",
                    "--need",
                    "new_task",
                    "--concern-forgetting",
                    "no",
                    "--fact",
                    "n_examples=50000",
                    "--fact",
                    "device=gpu",
                    "--memory-gb",
                    (char *)mem,
                    "--seq-len",
                    "2048",
                    "--batch",
                    "1",
                    "--explain",
                    NULL};
    int argc = (int)(sizeof argv / sizeof *argv) - 1;
    CHECK(capture(lt_cmd_plan, argc, argv, out) == 0, "%s GB: lathe plan --explain exits 0", mem);
    argv[argc - 1] = "--json";
    CHECK(capture(lt_cmd_plan, argc, argv, jout) == 0, "%s GB: lathe plan --json exits 0", mem);
    char *text = slurp(out), *js = slurp(jout);
    cJSON *rec = js ? cJSON_Parse(js) : NULL;
    const cJSON *facts = cJSON_GetObjectItemCaseSensitive(rec, "facts");
    const cJSON *leafj = cJSON_GetObjectItemCaseSensitive(rec, "leaf");
    CHECK(text && facts && cJSON_IsString(leafj), "%s GB: the plan printed and recorded", mem);
    if (!text || !facts || !cJSON_IsString(leafj))
        goto cleanup;
    printf("--- lathe plan --explain, Llama-3.1-8B shape, %s GB ---\n%s", mem, text);
    CHECK(strstr(text, "memory estimates (seq 2048, batch 1)") != NULL, "%s GB: seq 2048 batch 1",
          mem);

    /* every row equals lt_plan_estimate for the plan's options */
    static const lt_est_method rows[] = {LT_EST_FULL_F32, LT_EST_FULL_BF16, LT_EST_FREEZE,
                                         LT_EST_LORA, LT_EST_QLORA};
    uint64_t bytes = (uint64_t)(atof(mem) * GB);
    lt_fit f0;
    lt_est_opts o0 = lt_plan_est_opts(LT_EST_LORA, facts, 2048);
    lt_plan_fit(cfg, &o0, true, bytes, 1, &f0);
    char want[512];
    snprintf(want, sizeof want, "budget %.2f GB", (double)f0.budget / GB);
    CHECK(strstr(text, want) != NULL, "%s GB: prints the budget (%s)", mem, want);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        for (int ck = 0; ck < 2; ck++) {
            lt_est_opts o = lt_plan_est_opts(rows[i], facts, 2048);
            o.checkpointing = ck;
            lt_estimate e;
            lt_plan_estimate(cfg, &o, true, &e);
            lt_fit f;
            lt_plan_fit(cfg, &o, true, bytes, 1, &f);
            char name[64];
            snprintf(name, sizeof name, "%s%s", lt_est_method_name(rows[i]), ck ? "+ckpt" : "");
            snprintf(want, sizeof want,
                     "  %-15s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f  %s\n", name,
                     (double)e.peak / GB, (double)e.weights / GB,
                     (double)(e.master + e.adapters + e.grads + e.moments) / GB,
                     (double)(e.activations + e.backward) / GB, (double)e.logits / GB,
                     (double)(e.workspace + e.overhead) / GB, (double)e.host / GB,
                     (double)e.host_ram / GB, f.fits ? "yes" : "no");
            CHECK(strstr(text, want) != NULL, "%s GB: row printed as lt_plan_estimate has it:%s",
                  mem, want);
        }

    /* the leaf: the first in the tree's order that fits */
    const char *expect = "leaf_too_big";
    for (size_t i = 0; i < sizeof ORDER / sizeof *ORDER; i++) {
        lt_est_opts o = lt_plan_est_opts(ORDER[i].m, facts, 2048);
        o.checkpointing = ORDER[i].ckpt;
        lt_fit f;
        lt_plan_fit(cfg, &o, true, bytes, 1, &f);
        const cJSON *fact = cJSON_GetObjectItemCaseSensitive(facts, ORDER[i].fact);
        CHECK(cJSON_IsBool(fact) && cJSON_IsTrue(fact) == f.fits, "%s GB: fact %s = %s", mem,
              ORDER[i].fact, f.fits ? "true" : "false");
        if (f.fits) {
            expect = ORDER[i].leaf;
            break;
        }
    }
    const char *leaf = leafj->valuestring;
    printf("%s GB: leaf %s (expected %s)\n", mem, leaf, expect);
    CHECK(strcmp(leaf, expect) == 0, "%s GB: leaf %s, the cheapest that fits is %s", mem, leaf,
          expect);
    CHECK(strstr(text, "\nchosen   ") != NULL, "%s GB: the choice is explained", mem);
    CHECK(strncmp(leaf, "leaf_full", 9) != 0, "%s GB: 8B never fits full fine-tuning", mem);
    if (strcmp(mem, "80") == 0)
        CHECK(strncmp(leaf, "leaf_lora", 9) == 0, "80 GB: LoRA for 8B (%s)", leaf);
    /* checkpointing modelled by the estimator: 24 GB must find LoRA+ckpt or QLoRA */
    lt_est_opts a = lt_plan_est_opts(LT_EST_LORA, facts, 2048), b = a;
    b.checkpointing = true;
    lt_estimate ea, eb;
    lt_plan_estimate(cfg, &a, true, &ea);
    lt_plan_estimate(cfg, &b, true, &eb);
    if (strcmp(mem, "24") == 0 && eb.peak < ea.peak)
        CHECK(strcmp(leaf, "leaf_lora_ckpt") == 0 || strncmp(leaf, "leaf_qlora", 10) == 0,
              "24 GB: LoRA with checkpointing or QLoRA for 8B (%s)", leaf);
    else if (strcmp(mem, "24") == 0)
        printf("note: the estimator does not model checkpointing yet (same peak with and "
               "without), so 24 GB finds %s\n",
               leaf);
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(rec, "config");
    if (strstr(leaf, "_ckpt")) {
        const cJSON *gc = cJSON_GetObjectItemCaseSensitive(config, "gradient_checkpointing");
        CHECK(cJSON_IsTrue(gc), "%s GB: the config turns checkpointing on", mem);
    }
cleanup:
    cJSON_Delete(rec);
    free(text);
    free(js);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/lathe_plan_explain_%ld", (long)getpid());
    snprintf(model_dir, sizeof model_dir, "%s/llama31_8b", root);
    snprintf(ws, sizeof ws, "%s/ws", root);
    CHECK(mkdir(root, 0755) == 0 && mkdir(model_dir, 0755) == 0, "scratch folder %s", root);
    CHECK(write_config(true) && write_safetensors(), "8B-shaped folder written");
    struct stat st;
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    CHECK(stat(path, &st) == 0 && st.st_size > 16000000000LL && st.st_blocks * 512LL < (1 << 20),
          "the data region is a hole: %lld bytes long, %lld on disk", (long long)st.st_size,
          (long long)st.st_blocks * 512LL);
    lt_model_summary s;
    char err[512] = "";
    lt_model_status ms = lt_model_inspect(model_dir, &s, err, sizeof err);
    if (ms != LT_MODEL_OK && strstr(err, "rope_scaling")) {
        printf("note: this build refuses rope_scaling llama3 (%s); the fixture leaves it out\n",
               err);
        CHECK(write_config(false), "config without rope_scaling");
        ms = lt_model_inspect(model_dir, &s, err, sizeof err);
    }
    CHECK(ms == LT_MODEL_OK, "inspect: %s", err);
    if (ms == LT_MODEL_OK) {
        CHECK(s.total_params == 8030261248LL, "Llama-3.1-8B has 8,030,261,248 parameters (%lld)",
              (long long)s.total_params);
        char data[512];
        snprintf(data, sizeof data, "%s/datasets/alpaca_mixed.jsonl", LATHE_TEST_DATA);
        char *imp[] = {"data", "import", "--workspace", ws, "--name", "chat", data, NULL};
        snprintf(path, sizeof path, "%s/import.txt", root);
        CHECK(capture(lt_cmd_data, 7, imp, path) == 0, "dataset imported");
        explain_at(&s.cfg, "24");
        explain_at(&s.cfg, "80");
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return test_summary();
}
