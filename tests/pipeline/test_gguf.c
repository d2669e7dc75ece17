/*
 * test_gguf.c - GGUF export and import: keys and value types as the spec says, tensor names
 * and reversed dims, the q/k permutation (arch llama only), round trips (F32 bit-identical,
 * Q8_0 within half a quantization step, F16/BF16 within their rounding), logits of the
 * reloaded model against the source, the tokenizer rebuilt from metadata, LoRA adapters,
 * Modelfile templates against lathe's chat renderer, and bad files refused cleanly.
 */
#include "export/gguf_model.h"
#include "export/modelfile.h"
#include "model/forward.h"
#include "model/model_init.h"
#include "model/safetensors.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[2048];
static char tmp[256];

static void copy_file(const char *src, const char *dst)
{
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    char buf[65536];
    size_t k;
    while (a && b && (k = fread(buf, 1, sizeof(buf), a)) > 0)
        fwrite(buf, 1, k, b);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
}

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

/* A random model of arch with tokenizer fixture tok (770 ids) and a chat template. */
static void make_model(const char *dir, lt_arch arch, const char *tok, bool tied,
                       const char *tok_config)
{
    lt_model_init_opts o;
    lt_model_config c;
    lt_model_init_defaults(&o, arch);
    o.dim = 64;
    o.n_heads = 4;
    o.n_kv_heads = arch == LT_ARCH_GPT2 ? 4 : 2;
    o.ffn = 96;
    o.vocab = 772; /* 770 tokens + 2 unused rows */
    o.tie_embeddings = tied;
    o.seed = 5;
    CHECK(lt_model_init_random(&o, dir, &c, err, sizeof(err)) == LT_MODEL_OK, "init: %s", err);
    char src[600], dst[600];
    snprintf(src, sizeof(src), "%s/tok/%s/tokenizer.json", LATHE_TEST_DATA, tok);
    snprintf(dst, sizeof(dst), "%s/tokenizer.json", dir);
    copy_file(src, dst);
    snprintf(dst, sizeof(dst), "%s/tokenizer_config.json", dir);
    write_text(dst, tok_config);
}

static const char *CHATML_CFG =
    "{\"bos_token\": null, \"eos_token\": \"<|im_end|>\", \"pad_token\": \"<|endoftext|>\","
    " \"chat_template\": \"{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\\\n' + "
    "m['content'] + '<|im_end|>' + '\\\\n'}}{% endfor %}\"}";
static const char *LLAMA3_CFG =
    "{\"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\", \"chat_template\":"
    " \"{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>"
    "\\n\\n{{ m.content }}<|eot_id|>{% endfor %}\"}";

static const lt_gguf_kv *kv_of(const lt_gguf_file *f, const char *key, lt_gguf_type t,
                               lt_gguf_type at)
{
    const lt_gguf_kv *kv = lt_gguf_find_kv(f, key);
    CHECK(kv != NULL, "key %s missing", key);
    if (!kv)
        return NULL;
    CHECK(kv->type == t, "key %s: type %s, %s expected", key, lt_gguf_type_name(kv->type),
          lt_gguf_type_name(t));
    if (t == LT_GGUF_ARRAY)
        CHECK(kv->arr_type == at, "key %s: items %s, %s expected", key,
              lt_gguf_type_name(kv->arr_type), lt_gguf_type_name(at));
    return kv;
}

static void check_keys(const char *path, const char *arch, int64_t vocab, bool tied)
{
    lt_gguf_file *f = NULL;
    CHECK(lt_gguf_open(path, &f, err, sizeof(err)) == LT_MODEL_OK, "open: %s", err);
    if (!f)
        return;
    CHECK(lt_gguf_version(f) == 3, "version %u", lt_gguf_version(f));
    const lt_gguf_kv *kv = kv_of(f, "general.architecture", LT_GGUF_STRING, 0);
    CHECK(kv && !strcmp(kv->str, arch), "architecture %s", kv ? kv->str : "?");
    kv = kv_of(f, "general.alignment", LT_GGUF_U32, 0);
    CHECK(kv && kv->u == 32, "alignment");
    kv_of(f, "general.name", LT_GGUF_STRING, 0);
    kv_of(f, "general.file_type", LT_GGUF_U32, 0);
    char k[128];
    const char *u32keys[] = {"context_length", "embedding_length", "block_count",
                             "feed_forward_length", "attention.head_count"};
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof(k), "%s.%s", arch, u32keys[i]);
        kv_of(f, k, LT_GGUF_U32, 0);
    }
    if (strcmp(arch, "gpt2") != 0) {
        snprintf(k, sizeof(k), "%s.attention.head_count_kv", arch);
        kv = kv_of(f, k, LT_GGUF_U32, 0);
        CHECK(kv && kv->u == 2, "head_count_kv");
        snprintf(k, sizeof(k), "%s.rope.dimension_count", arch);
        kv = kv_of(f, k, LT_GGUF_U32, 0);
        CHECK(kv && kv->u == 16, "rope.dimension_count");
        snprintf(k, sizeof(k), "%s.rope.freq_base", arch);
        kv_of(f, k, LT_GGUF_F32, 0);
        snprintf(k, sizeof(k), "%s.attention.layer_norm_rms_epsilon", arch);
        kv_of(f, k, LT_GGUF_F32, 0);
    } else {
        kv_of(f, "gpt2.attention.layer_norm_epsilon", LT_GGUF_F32, 0);
    }
    kv = kv_of(f, "tokenizer.ggml.model", LT_GGUF_STRING, 0);
    CHECK(kv && !strcmp(kv->str, "gpt2"), "tokenizer model");
    kv_of(f, "tokenizer.ggml.pre", LT_GGUF_STRING, 0);
    kv = kv_of(f, "tokenizer.ggml.tokens", LT_GGUF_ARRAY, LT_GGUF_STRING);
    CHECK(kv && (int64_t)kv->n == vocab, "tokens: %llu", kv ? (unsigned long long)kv->n : 0);
    kv = kv_of(f, "tokenizer.ggml.token_type", LT_GGUF_ARRAY, LT_GGUF_I32);
    CHECK(kv && lt_gguf_arr_int(kv, 0) == 1 && lt_gguf_arr_int(kv, 767) == 3 &&
              (!strcmp(arch, "llama") || lt_gguf_arr_int(kv, 771) == 5),
          "token types normal / control / unused");
    kv = kv_of(f, "tokenizer.ggml.merges", LT_GGUF_ARRAY, LT_GGUF_STRING);
    CHECK(kv && kv->n == 500 && strchr(kv->strs[0], ' '), "merges");
    kv_of(f, "tokenizer.ggml.eos_token_id", LT_GGUF_U32, 0);
    kv_of(f, "tokenizer.ggml.add_bos_token", LT_GGUF_BOOL, 0);
    kv_of(f, "tokenizer.chat_template", LT_GGUF_STRING, 0);
    const lt_gguf_tensor *t = lt_gguf_find_tensor(f, "token_embd.weight");
    CHECK(t && t->ne[0] == 64 && t->ne[1] == vocab, "token_embd dims reversed");
    CHECK((lt_gguf_find_tensor(f, "output.weight") == NULL) == tied, "output iff untied");
    CHECK(lt_gguf_find_tensor(f, "output_norm.weight") != NULL, "output_norm");
    if (!strcmp(arch, "gpt2")) {
        t = lt_gguf_find_tensor(f, "blk.1.attn_qkv.weight");
        CHECK(t && t->ne[0] == 64 && t->ne[1] == 192, "attn_qkv [3D, D] after transpose");
        t = lt_gguf_find_tensor(f, "blk.0.ffn_up.weight");
        CHECK(t && t->ne[0] == 64 && t->ne[1] == 96, "ffn_up [F, D]");
        CHECK(lt_gguf_find_tensor(f, "position_embd.weight") &&
                  lt_gguf_find_tensor(f, "blk.0.attn_norm.bias"),
              "gpt2 position_embd and norm biases");
    } else {
        t = lt_gguf_find_tensor(f, "blk.1.attn_k.weight");
        CHECK(t && t->ne[0] == 64 && t->ne[1] == 32, "attn_k [Hkv*hd, D]");
        CHECK(lt_gguf_find_tensor(f, "blk.0.ffn_gate.weight") != NULL, "ffn_gate");
        CHECK((lt_gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL) == !strcmp(arch, "qwen2"),
              "q bias iff qwen2");
    }
    lt_gguf_close(f);
}

/* Max |a - b| over the tensors of two folders with the same names (in F32). */
static double folder_diff(const char *a, const char *b, int *n_cmp)
{
    lt_st_set *x = NULL, *y = NULL;
    double worst = 0;
    *n_cmp = 0;
    if (lt_st_set_open_dir(a, &x, err, sizeof(err)) || lt_st_set_open_dir(b, &y, err, sizeof(err))) {
        CHECK(0, "open: %s", err);
        lt_st_set_close(x);
        return INFINITY;
    }
    for (int i = 0; i < lt_st_set_count(x); i++) {
        const lt_st_tensor *t = lt_st_set_at(x, i);
        const char *nm = strncmp(t->name, "transformer.", 12) ? t->name : t->name + 12;
        const lt_st_tensor *u = lt_st_set_find(y, nm, NULL);
        if (!u) {
            CHECK(0, "%s missing after the round trip", t->name);
            continue;
        }
        CHECK(u->numel == t->numel && u->ndim == t->ndim && u->shape[0] == t->shape[0],
              "%s: shape", t->name);
        if (u->numel != t->numel || t->dtype != LT_ST_F32)
            continue;
        const float *p = t->data;
        float *q = malloc((size_t)u->numel * 4);
        for (int64_t j = 0; j < u->numel; j++) {
            const uint8_t *s = (const uint8_t *)u->data;
            q[j] = u->dtype == LT_ST_F32 ? ((const float *)u->data)[j]
                                         : lt_f16_to_f32((uint16_t)(s[2 * j] | s[2 * j + 1] << 8));
        }
        double amax = 1e-30, d = 0;
        for (int64_t j = 0; j < t->numel; j++) {
            amax = fmax(amax, fabs((double)p[j]));
            d = fmax(d, fabs((double)p[j] - q[j]));
        }
        worst = fmax(worst, d / amax); /* relative to the tensor's largest value */
        free(q);
        (*n_cmp)++;
    }
    lt_st_set_close(x);
    lt_st_set_close(y);
    return worst;
}

static float *logits(lt_device *dev, const char *path, const int32_t *ids, int64_t T, int64_t V)
{
    lt_model *m = NULL;
    lt_forward *f = NULL;
    lt_tensor *lg = NULL;
    float *h = NULL;
    lt_forward_opts fo = {.max_batch = 1, .max_seq = T};
    if (lt_model_load(path, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) == LT_MODEL_OK &&
        lt_forward_new(m, &fo, &f, err, sizeof(err)) == LT_MODEL_OK &&
        lt_forward_run(f, ids, 1, T, NULL, &lg, err, sizeof(err)) == LT_MODEL_OK &&
        (h = malloc((size_t)(T * V) * 4)))
        lt_tensor_download_f32(lg, h, T * V);
    CHECK(h != NULL, "%s: %s", path, err);
    lt_forward_free(f);
    lt_model_free(m);
    return h;
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* Export src as arch in each dtype, check keys, re-read, compare tensors and logits. */
static void round_trip(lt_device *dev, const char *name, lt_arch arch, const char *tok,
                       bool tied, const char *cfg)
{
    char src[300], out[300], back[300];
    snprintf(src, sizeof(src), "%s/%s", tmp, name);
    make_model(src, arch, tok, tied, cfg);
    const lt_ggml_type dts[4] = {LT_GGML_F32, LT_GGML_F16, LT_GGML_BF16, LT_GGML_Q8_0};
    /* logits tolerance per dtype: random weights with std 0.02 and logits of size ~0.1;
     * F16 keeps 11 bits (relative 5e-4), BF16 8 bits (4e-3), Q8_0 ~1/254 of a block's max */
    const double tol[4] = {1e-4, 2e-3, 1.5e-2, 1.5e-2};
    const int32_t ids[6] = {5, 17, 300, 766, 2, 44};
    float *ref = logits(dev, src, ids, 6, 772);
    for (int d = 0; d < 4; d++) {
        snprintf(out, sizeof(out), "%s/%s_%s.gguf", tmp, name, lt_ggml_type_name(dts[d]));
        lt_gguf_export_opts o = {dts[d], NULL};
        lt_gguf_export_info info;
        CHECK(lt_gguf_export_model(src, out, &o, &info, err, sizeof(err)) == LT_MODEL_OK,
              "%s export: %s", name, err);
        if (d == 0) {
            check_keys(out, arch == LT_ARCH_GPT2 ? "gpt2" : arch == LT_ARCH_QWEN2 ? "qwen2" : "llama",
                       772, tied);
            CHECK(info.eot_id >= 0, "%s: end-of-turn id found (%d)", name, info.eot_id);
        }
        snprintf(back, sizeof(back), "%s/%s_back_%d", tmp, name, d);
        CHECK(lt_gguf_to_hf(out, back, LT_GGML_F32, err, sizeof(err)) == LT_MODEL_OK,
              "%s to_hf: %s", name, err);
        int n_cmp;
        double diff = folder_diff(src, back, &n_cmp);
        /* relative to a tensor's max |x|: f16 keeps 11 significant bits, bf16 8, and Q8_0
         * rounds to half a step of max|block| / 127, with d itself rounded to f16 */
        const double wtol[4] = {0.0, 1.0 / 2048, 1.0 / 256, 1.0 / 254 + 1.0 / 2048};
        CHECK(n_cmp > 8 && diff <= wtol[d], "%s %s: tensors differ by %g (tolerance %g)", name,
              lt_ggml_type_name(dts[d]), diff, wtol[d]);
        float *got = logits(dev, out, ids, 6, 772);
        double ld = 0;
        for (int64_t j = 0; ref && got && j < 6 * 772; j++)
            ld = fmax(ld, fabs((double)ref[j] - got[j]));
        CHECK(ref && got && ld <= tol[d], "%s %s: logits differ by %g (tolerance %g)", name,
              lt_ggml_type_name(dts[d]), ld, tol[d]);
        printf("%s %s: max tensor error %.3g (of max |w|), max logit error %.3g\n", name,
               lt_ggml_type_name(dts[d]), diff, ld);
        free(got);
        if (d == 0) { /* the tokenizer rebuilt from metadata encodes as the source's */
            lt_tokenizer *a = NULL, *b = NULL;
            const char *s = "Hello world, 12345 tokens!\n<|im_start|>user ok";
            lt_tok_ids x = {0}, y = {0};
            CHECK(lt_tokenizer_load_dir(src, &a, err, sizeof(err)) == LT_TOK_OK &&
                      lt_tokenizer_load_dir(back, &b, err, sizeof(err)) == LT_TOK_OK,
                  "tokenizers: %s", err);
            if (a && b) {
                lt_tokenizer_encode(a, s, strlen(s), LT_TOK_ADD_SPECIAL, &x, err, sizeof(err));
                lt_tokenizer_encode(b, s, strlen(s), LT_TOK_ADD_SPECIAL, &y, err, sizeof(err));
                CHECK(x.n > 5 && x.n == y.n && !memcmp(x.ids, y.ids, x.n * 4),
                      "%s: rebuilt tokenizer encodes alike (%zu vs %zu ids)", name, x.n, y.n);
                CHECK(lt_tokenizer_chat_template(b) &&
                          !strcmp(lt_tokenizer_chat_template(a), lt_tokenizer_chat_template(b)),
                      "chat template kept");
                CHECK(lt_tokenizer_eos_id(a) == lt_tokenizer_eos_id(b), "eos kept");
            }
            lt_tok_ids_free(&x);
            lt_tok_ids_free(&y);
            lt_tokenizer_free(a);
            lt_tokenizer_free(b);
        }
    }
    free(ref);
}

/* Loading a GGUF streams its tensors into the model: the same bytes as loading the folder
 * lt_gguf_to_hf writes, in every weight dtype (stored, BF16, NF4 with double quantization),
 * and nothing written to TMPDIR. */
static void streamed_load(lt_device *dev, const char *name, const char *dtype_name)
{
    char gg[300], back[300], tdir[300];
    snprintf(gg, sizeof(gg), "%s/%s_%s.gguf", tmp, name, dtype_name);
    snprintf(back, sizeof(back), "%s/%s_streamed_ref", tmp, name);
    snprintf(tdir, sizeof(tdir), "%s/tmpdir_%s", tmp, name);
    mkdir(tdir, 0755);
    CHECK(lt_gguf_to_hf(gg, back, LT_GGML_F32, err, sizeof(err)) == LT_MODEL_OK, "%s: %s", gg, err);
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", tdir, 1);
    const int dts[3] = {LT_MODEL_DTYPE_STORED, LT_BF16, LT_MODEL_DTYPE_NF4_DQ};
    for (int d = 0; d < (strcmp(name, "gpt2") ? 3 : 2); d++) {
        lt_model *a = NULL, *b = NULL;
        CHECK(lt_model_load(gg, dev, dts[d], &a, err, sizeof(err)) == LT_MODEL_OK,
              "%s dtype %d: streamed load: %s", gg, dts[d], err);
        CHECK(lt_model_load(back, dev, dts[d], &b, err, sizeof(err)) == LT_MODEL_OK,
              "%s dtype %d: folder load: %s", back, dts[d], err);
        int same = 0, n = a && b ? lt_model_param_count(a) : -1;
        for (int i = 0; a && b && i < n && i < lt_model_param_count(b); i++) {
            const lt_model_param *pa = lt_model_param_at(a, i), *pb = lt_model_param_at(b, i);
            size_t bytes = lt_tensor_bytes(pa->tensor);
            char *x = malloc(bytes + 1), *y = malloc(bytes + 1);
            same += !strcmp(pa->name, pb->name) && bytes == lt_tensor_bytes(pb->tensor) &&
                    lt_tensor_download(pa->tensor, x, bytes) == LT_OK &&
                    lt_tensor_download(pb->tensor, y, bytes) == LT_OK && !memcmp(x, y, bytes);
            free(x);
            free(y);
        }
        CHECK(n > 8 && same == n && lt_model_param_count(b) == n,
              "%s dtype %d: %d of %d parameters identical to the folder's", gg, dts[d], same, n);
        lt_model_free(a);
        lt_model_free(b);
    }
    if (saved) {
        setenv("TMPDIR", saved, 1);
        free(saved);
    } else {
        unsetenv("TMPDIR");
    }
    CHECK(rmdir(tdir) == 0, "%s: the load left files in TMPDIR", gg);
}

/* lathe's reader against @huggingface/gguf's view of the same deterministic export
 * (tests/data/gguf/llama_q8_0_ref.json, made by gen_ref.sh). */
static void second_reader(void)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/gguf/llama_q8_0_ref.json", LATHE_TEST_DATA);
    FILE *f = fopen(p, "rb");
    static char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    cJSON *ref = cJSON_Parse(buf);
    lt_gguf_file *g = NULL;
    snprintf(p, sizeof(p), "%s/llama_Q8_0.gguf", tmp);
    CHECK(ref && lt_gguf_open(p, &g, err, sizeof(err)) == LT_MODEL_OK, "ref/open: %s", err);
    if (!ref || !g) {
        cJSON_Delete(ref);
        lt_gguf_close(g);
        return;
    }
    const cJSON *e;
    int keys = 0, tensors = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(ref, "metadata"))
    {
        const lt_gguf_kv *kv = lt_gguf_find_kv(g, e->string);
        int type = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "type"));
        const cJSON *v = cJSON_GetObjectItem(e, "value");
        bool same = kv && (int)kv->type == type;
        if (same && type == LT_GGUF_ARRAY)
            same = (int)kv->arr_type == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "sub_type")) &&
                   kv->n == (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "count"));
        else if (same && cJSON_IsString(v))
            same = !strcmp(kv->str, v->valuestring);
        else if (same && cJSON_IsBool(v))
            same = (kv->u != 0) == cJSON_IsTrue(v);
        else if (same && cJSON_IsNumber(v))
            same = type == LT_GGUF_F32 ? (float)kv->f == (float)v->valuedouble
                                       : (double)kv->u == v->valuedouble;
        CHECK(same, "key %s: lathe and @huggingface/gguf disagree", e->string);
        keys++;
    }
    CHECK(keys == lt_gguf_kv_count(g), "%d keys in the reference, %d read", keys,
          lt_gguf_kv_count(g));
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(ref, "tensors"))
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
        const lt_gguf_tensor *t = name ? lt_gguf_find_tensor(g, name) : NULL;
        const cJSON *ne = cJSON_GetObjectItem(e, "ne");
        bool same = t && (int)t->type == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "type")) &&
                    t->offset == (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "offset")) &&
                    t->ndim == cJSON_GetArraySize(ne);
        for (int d = 0; same && d < t->ndim; d++)
            same = t->ne[d] == (int64_t)cJSON_GetNumberValue(cJSON_GetArrayItem(ne, d));
        CHECK(same, "tensor %s: lathe and @huggingface/gguf disagree", name ? name : "?");
        tensors++;
    }
    CHECK(tensors == lt_gguf_tensor_count(g), "%d tensors in the reference, %d read", tensors,
          lt_gguf_tensor_count(g));
    cJSON_Delete(ref);
    lt_gguf_close(g);
}

static void permutation(void)
{
    float x[4 * 8 * 3], y[4 * 8 * 3], z[4 * 8 * 3];
    for (int i = 0; i < 96; i++)
        x[i] = (float)i;
    lt_gguf_permute_rows(x, y, 4, 8, 3, false);
    lt_gguf_permute_rows(y, z, 4, 8, 3, true);
    CHECK(!memcmp(x, z, sizeof(x)), "permutation inverse");
    /* head 1, HF row 8 + 4 + 1 (second half, i = 1) goes to interleaved row 8 + 2*1 + 1 */
    CHECK(y[(8 + 3) * 3] == x[(8 + 5) * 3], "permuted row: %g", y[(8 + 3) * 3]);
    CHECK(y[(8 + 2) * 3] == x[(8 + 1) * 3], "permuted row (first half)");
}

/* The export's q rows against the source: permuted for llama, as-is for qwen2. */
static void permutation_in_file(const char *name, bool permuted)
{
    char src[300], out[300];
    snprintf(src, sizeof(src), "%s/%s", tmp, name);
    snprintf(out, sizeof(out), "%s/%s_F32.gguf", tmp, name);
    lt_st_set *s = NULL;
    lt_gguf_file *g = NULL;
    if (lt_st_set_open_dir(src, &s, err, sizeof(err)) ||
        lt_gguf_open(out, &g, err, sizeof(err))) {
        CHECK(0, "open: %s", err);
        lt_st_set_close(s);
        return;
    }
    const lt_st_tensor *q = lt_st_set_find(s, "model.layers.0.self_attn.q_proj.weight", NULL);
    const lt_gguf_tensor *gq = lt_gguf_find_tensor(g, "blk.0.attn_q.weight");
    if (q && gq) {
        const float *a = q->data, *b = gq->data;
        /* row 1 of GGUF head 0 is HF row hd/2 = 8 when permuted, HF row 1 otherwise */
        int want = permuted ? 8 : 1;
        CHECK(!memcmp(b + 64, a + want * 64, 64 * 4), "%s: q row 1 comes from HF row %d", name,
              want);
    } else {
        CHECK(0, "q tensors missing");
    }
    lt_st_set_close(s);
    lt_gguf_close(g);
}

static void lora(void)
{
    char base[600], peft[600], out[300];
    snprintf(base, sizeof(base), "%s/models/llama_gqa", LATHE_TEST_DATA);
    snprintf(peft, sizeof(peft), "%s/train/llama_lora_adapter", LATHE_TEST_DATA);
    snprintf(out, sizeof(out), "%s/adapter.gguf", tmp);
    lt_gguf_export_info info;
    CHECK(lt_gguf_export_lora(peft, base, out, &info, err, sizeof(err)) == LT_MODEL_OK,
          "lora: %s", err);
    lt_gguf_file *g = NULL;
    lt_st_file *s = NULL;
    lt_model_config c;
    char p[700];
    snprintf(p, sizeof(p), "%s/adapter_model.safetensors", peft);
    if (lt_gguf_open(out, &g, err, sizeof(err)) || lt_st_open(p, &s, err, sizeof(err)) ||
        lt_model_config_load(base, &c, err, sizeof(err))) {
        CHECK(0, "open: %s", err);
        lt_gguf_close(g);
        lt_st_close(s);
        return;
    }
    CHECK(lt_gguf_get_str(g, "general.type") && !strcmp(lt_gguf_get_str(g, "general.type"), "adapter"),
          "general.type adapter");
    CHECK(lt_gguf_get_str(g, "adapter.type") && !strcmp(lt_gguf_get_str(g, "adapter.type"), "lora"),
          "adapter.type lora");
    const lt_gguf_kv *al = lt_gguf_find_kv(g, "adapter.lora.alpha");
    CHECK(al && al->type == LT_GGUF_F32 && al->f == 8.0, "alpha f32 8");
    CHECK(lt_gguf_tensor_count(g) == lt_st_count(s), "one GGUF tensor per PEFT tensor");
    const lt_gguf_tensor *a = lt_gguf_find_tensor(g, "blk.1.attn_q.weight.lora_a");
    const lt_gguf_tensor *b = lt_gguf_find_tensor(g, "blk.1.attn_k.weight.lora_b");
    const lt_st_tensor *pb =
        lt_st_find(s, "base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight");
    CHECK(a && a->ne[0] == c.dim && a->ne[1] == 4, "lora_a ne [in, r]");
    CHECK(b && pb && b->ne[0] == 4 && b->ne[1] == c.n_kv_heads * c.head_dim, "lora_b ne [r, out]");
    if (b && pb) { /* B's rows permuted with the kv heads */
        float *want = malloc((size_t)pb->numel * 4);
        lt_gguf_permute_rows(pb->data, want, c.n_kv_heads, c.head_dim, 4, false);
        CHECK(!memcmp(want, b->data, (size_t)pb->numel * 4), "lora_b rows permuted");
        free(want);
    }
    lt_gguf_close(g);
    lt_st_close(s);
}

/* lt_gguf_inspect: a model's config, parameters by kind and tokenizer facts from the file
 * alone; an adapter's rank, alpha and pairs; a file lathe cannot load refused by name. */
static void inspect(void)
{
    char path[300], src[300], bad[300];
    lt_gguf_summary g;
    lt_model_summary ms;
    snprintf(src, sizeof(src), "%s/llama", tmp);
    snprintf(path, sizeof(path), "%s/llama_Q8_0.gguf", tmp);
    CHECK(lt_model_inspect(src, &ms, err, sizeof(err)) == LT_MODEL_OK, "inspect src: %s", err);
    CHECK(lt_gguf_inspect(path, &g, err, sizeof(err)) == LT_MODEL_OK, "inspect: %s", err);
    CHECK(!strcmp(g.type, "model") && !strcmp(g.arch, "llama") && g.version == 3,
          "type %s, arch %s, v%u", g.type, g.arch, (unsigned)g.version);
    CHECK(g.cfg.arch == LT_ARCH_LLAMA && g.cfg.dim == ms.cfg.dim &&
              g.cfg.n_layers == ms.cfg.n_layers && g.cfg.n_kv_heads == ms.cfg.n_kv_heads &&
              g.cfg.ffn == ms.cfg.ffn && g.cfg.vocab == 772,
          "config read back (dim %lld, kv %lld, vocab %lld)", (long long)g.cfg.dim,
          (long long)g.cfg.n_kv_heads, (long long)g.cfg.vocab);
    CHECK(g.total_params == ms.total_params, "params %lld, source %lld",
          (long long)g.total_params, (long long)ms.total_params);
    for (int k = 0; k < LT_PARAM_KIND_COUNT; k++)
        CHECK(g.params[k] == ms.params[k], "%s: %lld, source %lld",
              lt_param_kind_name((lt_param_kind)k), (long long)g.params[k],
              (long long)ms.params[k]);
    /* norms stay F32, matrices Q8_0 (all rows of this model are multiples of 32) */
    CHECK(!strcmp(g.dtypes, "F32+Q8_0") || !strcmp(g.dtypes, "Q8_0+F32"), "dtypes %s",
          g.dtypes);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && g.file_bytes == (uint64_t)sb.st_size &&
              g.tensor_bytes < g.file_bytes && g.tensor_bytes > (uint64_t)g.total_params,
          "bytes: file %llu, tensors %llu", (unsigned long long)g.file_bytes,
          (unsigned long long)g.tensor_bytes);
    CHECK(!strcmp(g.tok_model, "gpt2") && !strcmp(g.tok_pre, "llama-bpe") && g.n_tokens == 772,
          "tokenizer %s/%s, %lld tokens", g.tok_model, g.tok_pre, (long long)g.n_tokens);
    CHECK(!strcmp(g.chat, "llama3") && g.eot_id >= 0 && g.eos_id >= 0, "chat %s, eot %d",
          g.chat, g.eot_id);

    snprintf(path, sizeof(path), "%s/adapter.gguf", tmp);
    CHECK(lt_gguf_inspect(path, &g, err, sizeof(err)) == LT_MODEL_OK, "inspect adapter: %s",
          err);
    CHECK(!strcmp(g.type, "adapter") && !strcmp(g.arch, "llama"), "adapter %s %s", g.type,
          g.arch);
    CHECK(g.lora_rank == 4 && g.lora_alpha == 8.0 && g.n_lora > 0 &&
              g.n_tensors == 2 * g.n_lora && !strcmp(g.dtypes, "F32"),
          "rank %lld, alpha %g, %d pairs of %d tensors, %s", (long long)g.lora_rank,
          g.lora_alpha, g.n_lora, g.n_tensors, g.dtypes);

    /* a model file without a required key: refused, naming it */
    lt_gguf_writer *w = lt_gguf_writer_new();
    float x[4] = {0};
    int64_t shape[2] = {2, 2};
    snprintf(bad, sizeof(bad), "%s/nokey.gguf", tmp);
    CHECK(w && lt_gguf_set_str(w, "general.architecture", "llama") &&
              lt_gguf_add_tensor(w, "token_embd.weight", LT_GGML_F32, 2, shape, x, sizeof(x),
                                 false, err, sizeof(err)) == LT_MODEL_OK &&
              lt_gguf_writer_write(w, bad, err, sizeof(err)) == LT_MODEL_OK,
          "write: %s", err);
    lt_gguf_writer_free(w);
    CHECK(lt_gguf_inspect(bad, &g, err, sizeof(err)) == LT_MODEL_ERR_CONFIG &&
              strstr(err, "llama.embedding_length") && strstr(err, "nokey.gguf"),
          "missing key named: %s", err);
    snprintf(bad, sizeof(bad), "%s/absent.gguf", tmp);
    CHECK(lt_gguf_inspect(bad, &g, err, sizeof(err)) != LT_MODEL_OK && strstr(err, "absent"),
          "absent file: %s", err);
}

/* ---- a Go-template renderer for the subset the Modelfile uses ---------------------------- */

typedef struct gmsg {
    const char *role, *content;
} gmsg;

/* Renders t[0..n) for message m (or the top level when m is NULL); appends to out. Handles
 * {{ range .Messages }}, {{ .Role }}, {{ .Content }}, {{ if eq .Role "x" }}, {{ else if eq
 * .Role "x" }}, {{ else }}, {{ end }}. Returns the position after the block it rendered. */
static size_t go_block(const char *t, size_t i, const gmsg *m, const gmsg *msgs, int nm,
                       bool active, char *out, int depth);

static size_t skip_action(const char *t, size_t i, char *act, size_t an)
{
    const char *e = strstr(t + i, "}}");
    size_t s = i + 2, len = (size_t)(e - t) - s;
    while (len && t[s] == ' ')
        s++, len--;
    while (len && t[s + len - 1] == ' ')
        len--;
    snprintf(act, an, "%.*s", (int)len, t + s);
    return (size_t)(e - t) + 2;
}

static bool role_is(const gmsg *m, const char *act, const char *prefix)
{
    char want[32];
    if (strncmp(act, prefix, strlen(prefix)) != 0 || !m)
        return false;
    sscanf(act + strlen(prefix), "\"%31[^\"]\"", want);
    return !strcmp(m->role, want);
}

static size_t go_block(const char *t, size_t i, const gmsg *m, const gmsg *msgs, int nm,
                       bool active, char *out, int depth)
{
    char act[128];
    while (t[i]) {
        if (strncmp(t + i, "{{", 2) != 0) {
            if (active)
                strncat(out, t + i, 1);
            i++;
            continue;
        }
        size_t at = i;
        i = skip_action(t, i, act, sizeof(act));
        if (!strcmp(act, "end") || !strncmp(act, "else", 4))
            return depth ? at : i; /* the caller decides */
        if (!strcmp(act, ".Role")) {
            if (active)
                strcat(out, m->role);
        } else if (!strcmp(act, ".Content")) {
            if (active)
                strcat(out, m->content);
        } else if (!strcmp(act, "range .Messages")) {
            size_t end = i;
            for (int k = 0; k < nm; k++)
                end = go_block(t, i, &msgs[k], msgs, nm, active, out, depth + 1);
            if (nm == 0)
                end = go_block(t, i, NULL, msgs, nm, false, out, depth + 1);
            i = skip_action(t, end, act, sizeof(act)); /* {{ end }} */
        } else if (!strncmp(act, "if ", 3)) {
            bool taken = false, cond = role_is(m, act, "if eq .Role ");
            size_t j = go_block(t, i, m, msgs, nm, active && cond, out, depth + 1);
            taken = cond;
            for (;;) {
                j = skip_action(t, j, act, sizeof(act));
                if (!strcmp(act, "end"))
                    break;
                bool c2 = !strcmp(act, "else") || role_is(m, act, "else if eq .Role ");
                j = go_block(t, j, m, msgs, nm, active && !taken && c2, out, depth + 1);
                taken = taken || c2;
            }
            i = j;
        }
    }
    return i;
}

static void modelfile_family(const char *tokdir, lt_chat_family fam, const char *bos_text,
                             bool with_system)
{
    lt_tokenizer *tok = NULL;
    if (tokdir) {
        char d[600];
        snprintf(d, sizeof(d), "%s/%s", tmp, tokdir);
        CHECK(lt_tokenizer_load_dir(d, &tok, err, sizeof(err)) == LT_TOK_OK, "%s", err);
    }
    lt_modelfile_opts o = {0};
    char *sysbuf = NULL;
    if (tok)
        lt_modelfile_from_tokenizer(tok, &o, &sysbuf);
    o.family = fam;
    o.from = "./model.gguf";
    char *text = lt_modelfile_render(&o);
    char *tmpl = lt_modelfile_template(fam, o.bos, o.eos);
    CHECK(text && strstr(text, "FROM ./model.gguf\n") && strstr(text, "PARAMETER stop"),
          "Modelfile lines");
    gmsg conv[4] = {{"system", "You are terse."},
                    {"user", "What is 2+2?"},
                    {"assistant", "4."},
                    {"user", "And 3+3?"}};
    int first = with_system ? 0 : 1, nm = 4 - first;
    /* Ollama puts the Modelfile's SYSTEM first when the conversation has none */
    gmsg withsys[5];
    int n2 = 0;
    const char *sys = NULL;
    if (text && (sys = strstr(text, "\nSYSTEM \"")) && !with_system) {
        static char sb[512];
        sscanf(sys + 9, "%511[^\"]", sb);
        withsys[n2++] = (gmsg){"system", sb};
    }
    for (int k = first; k < 4; k++)
        withsys[n2++] = conv[k];
    char *got = calloc(1, 8192);
    go_block(tmpl, 0, NULL, withsys, n2, true, got, 0);
    lt_chat_msg cm[4];
    for (int k = 0; k < nm; k++)
        cm[k] = (lt_chat_msg){conv[first + k].role, conv[first + k].content};
    lt_chat_text ct;
    CHECK(lt_chat_render(tok, fam, cm, (size_t)nm, fam != LT_CHAT_LLAMA2, &ct, err, sizeof(err)) ==
              LT_TOK_OK,
          "render: %s", err);
    const char *want = ct.text;
    if (bos_text && !strncmp(want, bos_text, strlen(bos_text)))
        want += strlen(bos_text); /* the runtime adds bos */
    CHECK(!strcmp(got, want), "%s: Modelfile template renders\n[%s]\nlathe renders\n[%s]",
          lt_chat_family_name(fam), got, want);
    lt_chat_text_free(&ct);
    free(got);
    free(tmpl);
    free(text);
    free(sysbuf);
    lt_tokenizer_free(tok);
}

static void bad_input(void)
{
    char p[700], d[300];
    /* truncations and byte flips of a valid file are refused or read, never crash */
    snprintf(p, sizeof(p), "%s/llama_F32.gguf", tmp);
    FILE *f = fopen(p, "rb");
    static uint8_t buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 1000, "fixture read");
    int refused = 0;
    uint64_t rng = 1;
    for (int k = 0; k < 400; k++) {
        static uint8_t mut[1 << 20];
        memcpy(mut, buf, n);
        size_t len = n;
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        if (k % 2)
            len = (size_t)(rng >> 33) % n;
        else
            mut[(rng >> 33) % 4096 % n] ^= (uint8_t)(1u << (rng >> 60 & 7));
        lt_gguf_file *g = NULL;
        if (lt_gguf_parse(mut, len, "mutant", &g, err, sizeof(err)) != LT_MODEL_OK)
            refused++;
        lt_gguf_close(g);
    }
    CHECK(refused >= 200, "truncated files refused (%d of 400 mutants)", refused);
    lt_gguf_file *g = NULL;
    CHECK(lt_gguf_parse(buf, 100, "short", &g, err, sizeof(err)) == LT_MODEL_ERR_FORMAT &&
              strstr(err, "short"),
          "a truncated file names itself: %s", err);
    /* an architecture GGUF cannot express */
    snprintf(d, sizeof(d), "%s/falcon", tmp);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/config.json", d);
    write_text(p, "{\"model_type\": \"falcon\", \"hidden_size\": 64}");
    snprintf(p, sizeof(p), "%s/x.gguf", tmp);
    lt_gguf_export_opts o = {LT_GGML_F32, NULL};
    lt_model_status st = lt_gguf_export_model(d, p, &o, NULL, err, sizeof(err));
    CHECK(st != LT_MODEL_OK && strstr(err, "falcon") && access(p, F_OK) != 0,
          "unsupported architecture refused, no file: %s", err);
    /* a model without a tokenizer: no file under the final name */
    snprintf(d, sizeof(d), "%s/models/llama_gqa", LATHE_TEST_DATA);
    st = lt_gguf_export_model(d, p, &o, NULL, err, sizeof(err));
    CHECK(st != LT_MODEL_OK && strstr(err, "tokenizer") && access(p, F_OK) != 0,
          "missing tokenizer refused: %s", err);
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_set_str(w, "general.architecture", "llama");
    CHECK(!lt_gguf_set_str(w, "general.architecture", "llama"), "duplicate key refused");
    /* a full disk (a 64 KiB file size limit makes writes fail with EFBIG): an error, the old
     * file untouched, no temporary file left */
    snprintf(d, sizeof(d), "%s/full", tmp);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/out.gguf", d);
    write_text(p, "old");
    float *big = calloc(65536, sizeof(float));
    int64_t shape[2] = {256, 256};
    lt_gguf_add_tensor(w, "token_embd.weight", LT_GGML_F32, 2, shape, big, 65536 * 4, true, err,
                       sizeof(err));
    struct rlimit old, lim = {65536, 65536};
    getrlimit(RLIMIT_FSIZE, &old);
    lim.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    st = lt_gguf_writer_write(w, p, err, sizeof(err));
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    CHECK(st == LT_MODEL_ERR_IO && strstr(err, "out.gguf"), "full disk: %s", err);
    FILE *of = fopen(p, "rb");
    char got[8] = "";
    if (of) {
        CHECK(fread(got, 1, sizeof(got) - 1, of) == 3, "old file size");
        fclose(of);
    }
    CHECK(!strcmp(got, "old"), "old file untouched after a failed write");
    int n_entries = 0;
    DIR *dd = opendir(d);
    struct dirent *de;
    while (dd && (de = readdir(dd)))
        n_entries += de->d_name[0] != '.';
    if (dd)
        closedir(dd);
    CHECK(n_entries == 1, "no temporary file left (%d entries)", n_entries);
    lt_gguf_writer_free(w);
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/lathe_test_gguf_%d", (int)getpid());
    mkdir(tmp, 0755);
    lt_device *dev = lt_device_open("cpu", 1, err, sizeof(err));
    CHECK(dev != NULL, "cpu: %s", err);
    if (!dev)
        return test_summary();
    permutation();
    round_trip(dev, "llama", LT_ARCH_LLAMA, "llama3", false, LLAMA3_CFG);
    round_trip(dev, "qwen2", LT_ARCH_QWEN2, "qwen2", true, CHATML_CFG);
    round_trip(dev, "gpt2", LT_ARCH_GPT2, "smollm", true, CHATML_CFG);
    permutation_in_file("llama", true);
    streamed_load(dev, "llama", "Q8_0");
    streamed_load(dev, "qwen2", "BF16");
    streamed_load(dev, "gpt2", "F16");
    second_reader();
    permutation_in_file("qwen2", false);
    lora();
    inspect();
    modelfile_family("qwen2", LT_CHAT_CHATML, NULL, true);
    modelfile_family("qwen2", LT_CHAT_CHATML, NULL, false);
    modelfile_family("llama", LT_CHAT_LLAMA3, "<|begin_of_text|>", true);
    modelfile_family(NULL, LT_CHAT_LLAMA2, "<s>", false);
    modelfile_family(NULL, LT_CHAT_ALPACA, NULL, false);
    modelfile_family(NULL, LT_CHAT_ALPACA, NULL, true);
    bad_input();
    lt_device_close(dev);
    if (getenv("LATHE_GGUF_KEEP")) /* tests/data/gguf/gen_ref.sh reads the exports */
        printf("kept %s\n", tmp);
    else
        rm_rf(tmp);
    return test_summary();
}
