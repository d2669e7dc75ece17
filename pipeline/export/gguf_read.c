/*
 * gguf_read.c - a GGUF model file as a lathe model source: the metadata back into a
 * config.json, the tensors back into Hugging Face names and layouts (dims reversed, GPT-2
 * Conv1D transposed back, the llama q/k permutation undone, Q8_0 dequantized) in a
 * model.safetensors, the tokenizer rebuilt where the metadata allows, and lt_model_load on
 * that folder. Every key it needs is checked for presence, type and range; the file itself
 * was validated by lt_gguf_open.
 */
#include "export/export_impl.h"
#include "export/gguf_impl.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A required positive integer key "<arch>.<suffix>". */
static bool need_int(const lt_gguf_file *f, const char *arch, const char *suffix, int64_t lo,
                     int64_t hi, int64_t *out, char *err, size_t errlen)
{
    char k[96];
    snprintf(k, sizeof(k), "%s.%s", arch, suffix);
    if (!lt_gguf_get_int(f, k, out) || *out < lo || *out > hi) {
        gguf_fail(LT_MODEL_ERR_CONFIG, err, errlen,
                  "GGUF key %s: an integer in [%lld, %lld] expected", k, (long long)lo,
                  (long long)hi);
        return false;
    }
    return true;
}

static lt_model_status read_config(const lt_gguf_file *f, lt_model_config *c, char *err,
                                   size_t errlen)
{
    memset(c, 0, sizeof(*c));
    const char *arch = lt_gguf_get_str(f, "general.architecture");
    const char *type = lt_gguf_get_str(f, "general.type");
    if (type && strcmp(type, "model") != 0)
        return gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                         "general.type \"%s\": a model GGUF expected (load adapters with their "
                         "base)", type);
    if (!arch)
        return gguf_fail(LT_MODEL_ERR_CONFIG, err, errlen, "general.architecture missing");
    if (!strcmp(arch, "llama"))
        c->arch = LT_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2"))
        c->arch = LT_ARCH_QWEN2;
    else if (!strcmp(arch, "gpt2"))
        c->arch = LT_ARCH_GPT2;
    else
        return gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                         "general.architecture \"%s\": lathe reads llama, qwen2 and gpt2", arch);
    const int64_t BIG = (int64_t)1 << 31;
    if (!need_int(f, arch, "embedding_length", 1, BIG, &c->dim, err, errlen) ||
        !need_int(f, arch, "block_count", 1, 100000, &c->n_layers, err, errlen) ||
        !need_int(f, arch, "attention.head_count", 1, c->dim, &c->n_heads, err, errlen) ||
        !need_int(f, arch, "feed_forward_length", 1, BIG, &c->ffn, err, errlen) ||
        !need_int(f, arch, "context_length", 1, BIG, &c->max_pos, err, errlen))
        return LT_MODEL_ERR_CONFIG;
    char k[96];
    double d;
    const lt_gguf_tensor *emb = lt_gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->ndim != 2 || emb->ne[0] != c->dim)
        return gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen,
                         "token_embd.weight: a [vocab, %lld] matrix expected", (long long)c->dim);
    c->vocab = emb->ne[1];
    c->rope_theta = 10000.0;
    if (c->arch == LT_ARCH_GPT2) {
        c->n_kv_heads = c->n_heads;
        c->head_dim = c->dim / c->n_heads;
        snprintf(k, sizeof(k), "%s.attention.layer_norm_epsilon", arch);
        c->norm_eps = lt_gguf_get_float(f, k, &d) ? (float)d : 1e-5f;
        c->qkv_bias = c->o_bias = c->mlp_bias = true;
    } else {
        snprintf(k, sizeof(k), "%s.attention.head_count_kv", arch);
        if (!lt_gguf_find_kv(f, k))
            c->n_kv_heads = c->n_heads;
        else if (!need_int(f, arch, "attention.head_count_kv", 1, c->n_heads, &c->n_kv_heads,
                           err, errlen))
            return LT_MODEL_ERR_CONFIG;
        snprintf(k, sizeof(k), "%s.attention.key_length", arch);
        if (!lt_gguf_find_kv(f, k))
            c->head_dim = c->dim / c->n_heads;
        else if (!need_int(f, arch, "attention.key_length", 2, 65536, &c->head_dim, err, errlen))
            return LT_MODEL_ERR_CONFIG;
        if (c->n_heads % c->n_kv_heads || c->head_dim % 2 || c->head_dim < 2)
            return gguf_fail(LT_MODEL_ERR_CONFIG, err, errlen,
                             "%s: %lld heads, %lld kv heads, head_dim %lld do not fit", arch,
                             (long long)c->n_heads, (long long)c->n_kv_heads,
                             (long long)c->head_dim);
        snprintf(k, sizeof(k), "%s.attention.layer_norm_rms_epsilon", arch);
        c->norm_eps = lt_gguf_get_float(f, k, &d) ? (float)d : 1e-6f;
        snprintf(k, sizeof(k), "%s.rope.freq_base", arch);
        if (lt_gguf_get_float(f, k, &d))
            c->rope_theta = d;
        snprintf(k, sizeof(k), "%s.rope.scaling.type", arch);
        const char *sc = lt_gguf_get_str(f, k);
        if (sc && strcmp(sc, "none") != 0)
            return gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                             "%s: rope scaling \"%s\" is not supported", k, sc);
        c->qkv_bias = lt_gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL;
        c->o_bias = lt_gguf_find_tensor(f, "blk.0.attn_output.bias") != NULL;
        c->mlp_bias = lt_gguf_find_tensor(f, "blk.0.ffn_up.bias") != NULL;
    }
    if (!(c->norm_eps > 0.0f) || !(c->rope_theta > 0.0))
        return gguf_fail(LT_MODEL_ERR_CONFIG, err, errlen, "%s: norm epsilon and rope base must "
                         "be positive", arch);
    c->tie_embeddings = lt_gguf_find_tensor(f, "output.weight") == NULL;
    int64_t id;
    c->bos_id = lt_gguf_get_int(f, "tokenizer.ggml.bos_token_id", &id) && id >= 0 &&
                        id < c->vocab ? (int32_t)id : -1;
    /* generation stops at eos and at the chat template's end-of-turn token */
    const char *keys[2] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"};
    for (int i = 0; i < 2; i++)
        if (lt_gguf_get_int(f, keys[i], &id) && id >= 0 && id < c->vocab &&
            !lt_model_config_is_eos(c, (int32_t)id))
            c->eos_ids[c->n_eos++] = (int32_t)id;
    snprintf(c->torch_dtype, sizeof(c->torch_dtype), "float32");
    return LT_MODEL_OK;
}

/* The Hugging Face name of a GGUF tensor and how to get back to its layout. */
typedef struct rmap {
    char hf[128];
    bool transpose;
    int64_t perm_heads;
} rmap;

static bool rmap_name(const lt_model_config *c, const char *g, rmap *m)
{
    memset(m, 0, sizeof(*m));
    const char *leaf = strrchr(g, '.');
    if (!leaf)
        return false;
    const char *wb = leaf + 1;
    bool gpt2 = c->arch == LT_ARCH_GPT2, perm = c->arch == LT_ARCH_LLAMA;
    if (!strcmp(g, "token_embd.weight"))
        return snprintf(m->hf, sizeof(m->hf), gpt2 ? "wte.weight" : "model.embed_tokens.weight"),
               true;
    if (gpt2 && !strcmp(g, "position_embd.weight"))
        return snprintf(m->hf, sizeof(m->hf), "wpe.weight"), true;
    if (!strncmp(g, "output_norm.", 12))
        return snprintf(m->hf, sizeof(m->hf), gpt2 ? "ln_f.%s" : "model.norm.%s", wb), true;
    if (!strcmp(g, "output.weight"))
        return snprintf(m->hf, sizeof(m->hf), "lm_head.weight"), true;
    int layer, nc = 0;
    char part[48];
    if (sscanf(g, "blk.%d.%47[a-z_]%n", &layer, part, &nc) != 2 || layer < 0 ||
        layer >= c->n_layers || g[nc] != '.')
        return false;
    static const struct { const char *gg, *llama, *gpt2; int perm; bool conv; } T[] = {
        {"attn_norm", "input_layernorm", "ln_1", 0, false},
        {"attn_q", "self_attn.q_proj", NULL, 1, false},
        {"attn_k", "self_attn.k_proj", NULL, 2, false},
        {"attn_v", "self_attn.v_proj", NULL, 0, false},
        {"attn_qkv", NULL, "attn.c_attn", 0, true},
        {"attn_output", "self_attn.o_proj", "attn.c_proj", 0, true},
        {"ffn_norm", "post_attention_layernorm", "ln_2", 0, false},
        {"ffn_gate", "mlp.gate_proj", NULL, 0, false},
        {"ffn_up", "mlp.up_proj", "mlp.c_fc", 0, true},
        {"ffn_down", "mlp.down_proj", "mlp.c_proj", 0, true},
    };
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
        if (strcmp(part, T[i].gg) != 0)
            continue;
        const char *h = gpt2 ? T[i].gpt2 : T[i].llama;
        if (!h)
            return false;
        if (gpt2)
            snprintf(m->hf, sizeof(m->hf), "h.%d.%s.%s", layer, h, wb);
        else
            snprintf(m->hf, sizeof(m->hf), "model.layers.%d.%s.%s", layer, h, wb);
        m->transpose = gpt2 && T[i].conv && !strcmp(wb, "weight");
        if (perm && T[i].perm)
            m->perm_heads = T[i].perm == 1 ? c->n_heads : c->n_kv_heads;
        return true;
    }
    return false;
}

static lt_model_status write_weights(const lt_gguf_file *f, const lt_model_config *c,
                                     const char *path, lt_ggml_type dtype, char *err,
                                     size_t errlen)
{
    lt_model_status st = LT_MODEL_OK;
    lt_st_writer *w = lt_st_writer_new();
    int n = lt_gguf_tensor_count(f);
    void **bufs = calloc((size_t)n + 1, sizeof(void *));
    if (!w || !bufs) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const lt_gguf_tensor *t = lt_gguf_tensor_at(f, i);
        rmap m;
        if (!rmap_name(c, t->name, &m) || t->ndim > 2) {
            st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen,
                           "tensor %s: not a tensor of a %s model lathe knows", t->name,
                           lt_arch_name(c->arch));
            goto out;
        }
        int64_t rows = t->ndim == 2 ? t->ne[1] : t->ne[0], cols = t->ndim == 2 ? t->ne[0] : 1;
        float *x = malloc((size_t)t->numel * sizeof(float) + 1), *y = NULL;
        if (!x) {
            st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of memory", t->name);
            goto out;
        }
        lt_ggml_decode(t->type, t->data, t->numel, x);
        if (m.transpose || m.perm_heads) {
            if (m.perm_heads && rows != m.perm_heads * c->head_dim) {
                free(x);
                st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen,
                               "tensor %s: %lld rows, %lld heads x %lld expected", t->name,
                               (long long)rows, (long long)m.perm_heads, (long long)c->head_dim);
                goto out;
            }
            if (!(y = malloc((size_t)t->numel * sizeof(float) + 1))) {
                free(x);
                st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of memory", t->name);
                goto out;
            }
            if (m.transpose) {
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t k = 0; k < cols; k++)
                        y[k * rows + r] = x[r * cols + k];
                int64_t tmp = rows;
                rows = cols;
                cols = tmp;
            } else {
                lt_gguf_permute_rows(x, y, m.perm_heads, c->head_dim, cols, true);
            }
            free(x);
            x = y;
        }
        int64_t shape[2] = {rows, cols};
        lt_st_dtype sd = LT_ST_F32;
        size_t bytes = (size_t)t->numel * 4;
        if (dtype == LT_GGML_F16 && t->ndim == 2) {
            uint16_t *h = malloc((size_t)t->numel * 2 + 1);
            if (!h) {
                free(x);
                st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of memory", t->name);
                goto out;
            }
            for (int64_t j = 0; j < t->numel; j++)
                h[j] = lt_f32_to_f16(x[j]);
            free(x);
            x = (float *)(void *)h;
            sd = LT_ST_F16;
            bytes = (size_t)t->numel * 2;
        }
        bufs[i] = x;
        if (lt_st_writer_add(w, m.hf, sd, t->ndim, shape, x, bytes, err, errlen) != LT_ST_OK) {
            st = LT_MODEL_ERR_TENSOR;
            goto out;
        }
    }
    if (lt_st_writer_write(w, path, err, errlen) != LT_ST_OK)
        st = LT_MODEL_ERR_IO;
out:
    if (bufs)
        for (int i = 0; i < n; i++)
            free(bufs[i]);
    free(bufs);
    lt_st_writer_free(w);
    return st;
}

/* Copies dir(path)/name into out_dir when it exists. */
static void copy_beside(const char *path, const char *out_dir, const char *name)
{
    char src[4200], dst[4200];
    const char *slash = strrchr(path, '/');
    snprintf(src, sizeof(src), "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, name);
    snprintf(dst, sizeof(dst), "%s/%s", out_dir, name);
    size_t len;
    char *data = lt_export_read_file(src, &len);
    if (data) {
        char e[256];
        lt_export_write_file(dst, data, len, e, sizeof(e));
        free(data);
    }
}

lt_model_status lt_gguf_to_hf(const char *path, const char *out_dir, lt_ggml_type dtype,
                              char *err, size_t errlen)
{
    lt_gguf_file *f = NULL;
    lt_model_config c;
    char e[1024], p[4200];
    char *json = NULL;
    lt_model_status st = lt_gguf_open(path, &f, err, errlen);
    if (st)
        return st;
    if ((st = read_config(f, &c, e, sizeof(e)))) {
        gguf_fail(st, err, errlen, "%s: %s", path, e);
        goto out;
    }
    if ((st = lt_export_mkdir(out_dir, err, errlen)))
        goto out;
    snprintf(p, sizeof(p), "%s/model.safetensors", out_dir);
    if ((st = write_weights(f, &c, p, dtype, e, sizeof(e)))) {
        gguf_fail(st, err, errlen, "%s: %s", path, e);
        goto out;
    }
    if (gguf_tok_to_hf(f, out_dir, e, sizeof(e)) == LT_MODEL_ERR_UNSUPPORTED) {
        copy_beside(path, out_dir, "tokenizer.json");
        copy_beside(path, out_dir, "tokenizer_config.json");
    }
    snprintf(p, sizeof(p), "%s/config.json", out_dir);
    if (!(json = lt_model_config_to_json(&c))) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    st = lt_export_write_file(p, json, strlen(json), err, errlen);
out:
    free(json);
    lt_gguf_close(f);
    return st;
}

/* The parameter kind of a GGUF tensor name (llama.cpp's names). */
static lt_param_kind gguf_kind(const char *n)
{
    if (!strncmp(n, "token_embd.", 11) || !strncmp(n, "position_embd.", 14))
        return LT_PARAM_EMBEDDING;
    if (!strncmp(n, "output.", 7))
        return LT_PARAM_LM_HEAD;
    if (strstr(n, "_norm."))
        return LT_PARAM_NORM;
    if (strstr(n, ".attn_"))
        return LT_PARAM_ATTENTION;
    return LT_PARAM_MLP;
}

/* Appends name to a "+"-separated list unless it is there already. */
static void add_dtype(char *list, size_t n, const char *name)
{
    size_t l = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += l)
        if ((p == list || p[-1] == '+') && (p[l] == 0 || p[l] == '+'))
            return;
    size_t used = strlen(list);
    snprintf(list + used, n - used, "%s%s", used ? "+" : "", name);
}

lt_model_status lt_gguf_inspect(const char *path, lt_gguf_summary *out, char *err,
                                size_t errlen)
{
    lt_gguf_file *f = NULL;
    char e[1024];
    memset(out, 0, sizeof(*out));
    out->bos_id = out->eos_id = out->eot_id = -1;
    lt_model_status st = lt_gguf_open(path, &f, err, errlen);
    if (st)
        return st;
    struct stat sb;
    if (stat(path, &sb) == 0)
        out->file_bytes = (uint64_t)sb.st_size;
    out->version = lt_gguf_version(f);
    const char *type = lt_gguf_get_str(f, "general.type");
    const char *arch = lt_gguf_get_str(f, "general.architecture");
    const char *name = lt_gguf_get_str(f, "general.name");
    snprintf(out->type, sizeof(out->type), "%s", type ? type : "model");
    snprintf(out->arch, sizeof(out->arch), "%s", arch ? arch : "");
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    bool adapter = !strcmp(out->type, "adapter");
    if (!adapter && (st = read_config(f, &out->cfg, e, sizeof(e)))) {
        gguf_fail(st, err, errlen, "%s: %s", path, e);
        goto out;
    }
    if (adapter && !arch) {
        st = gguf_fail(LT_MODEL_ERR_CONFIG, err, errlen, "%s: general.architecture missing",
                       path);
        goto out;
    }
    out->n_tensors = lt_gguf_tensor_count(f);
    for (int i = 0; i < out->n_tensors; i++) {
        const lt_gguf_tensor *t = lt_gguf_tensor_at(f, i);
        out->total_params += t->numel;
        out->tensor_bytes += t->bytes;
        add_dtype(out->dtypes, sizeof(out->dtypes), lt_ggml_type_name(t->type));
        if (!adapter) {
            out->params[gguf_kind(t->name)] += t->numel;
            continue;
        }
        size_t l = strlen(t->name);
        if (l > 7 && !strcmp(t->name + l - 7, ".lora_a")) {
            if (!out->n_lora++)
                out->lora_rank = t->ndim == 2 ? t->ne[1] : 0;
        } else if (!(l > 7 && !strcmp(t->name + l - 7, ".lora_b"))) {
            st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen,
                           "%s: tensor %s: an adapter holds .lora_a and .lora_b tensors only",
                           path, t->name);
            goto out;
        }
    }
    if (adapter) {
        double a;
        if (lt_gguf_get_float(f, "adapter.lora.alpha", &a))
            out->lora_alpha = a;
        goto out;
    }
    const char *tm = lt_gguf_get_str(f, "tokenizer.ggml.model");
    const char *tp = lt_gguf_get_str(f, "tokenizer.ggml.pre");
    snprintf(out->tok_model, sizeof(out->tok_model), "%s", tm ? tm : "");
    snprintf(out->tok_pre, sizeof(out->tok_pre), "%s", tp ? tp : "");
    const lt_gguf_kv *toks = lt_gguf_find_kv(f, "tokenizer.ggml.tokens");
    out->n_tokens = toks && toks->type == LT_GGUF_ARRAY ? (int64_t)toks->n : 0;
    const char *idk[3] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.eot_token_id"};
    int32_t *ids[3] = {&out->bos_id, &out->eos_id, &out->eot_id};
    for (int k = 0; k < 3; k++) {
        int64_t id;
        if (lt_gguf_get_int(f, idk[k], &id) && id >= 0 && id < out->n_tokens)
            *ids[k] = (int32_t)id;
    }
    lt_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &out->add_bos);
    const char *tmpl = lt_gguf_get_str(f, "tokenizer.chat_template");
    lt_chat_family fam = tmpl ? lt_chat_detect(tmpl) : LT_CHAT_NONE;
    snprintf(out->chat, sizeof(out->chat), "%s",
             !tmpl ? "none" : fam == LT_CHAT_NONE ? "unrecognised" : lt_chat_family_name(fam));
out:
    lt_gguf_close(f);
    return st;
}

/* Removes the plain files of dir, then dir. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4400];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

lt_model_status lt_gguf_model_load(const char *path, lt_device *dev, int weight_dtype,
                                   lt_model **out, char *err, size_t errlen)
{
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/lathe-gguf-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir))
        return gguf_fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot make a temporary folder: %s",
                         dir, strerror(errno));
    lt_ggml_type dt = weight_dtype == LT_F16 ? LT_GGML_F16 : LT_GGML_F32;
    lt_model_status st = lt_gguf_to_hf(path, dir, dt, err, errlen);
    if (!st)
        st = lt_model_load(dir, dev, weight_dtype, out, err, errlen);
    remove_dir(dir);
    return st;
}

lt_model_status lt_gguf_tokenizer_load(const char *path, lt_tokenizer **out, char *err,
                                       size_t errlen)
{
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096], e[1024];
    lt_gguf_file *f = NULL;
    *out = NULL;
    snprintf(dir, sizeof(dir), "%s/lathe-gguf-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir))
        return gguf_fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot make a temporary folder: %s",
                         dir, strerror(errno));
    lt_model_status st = lt_gguf_open(path, &f, err, errlen);
    if (!st && (st = gguf_tok_to_hf(f, dir, e, sizeof(e))) == LT_MODEL_ERR_UNSUPPORTED) {
        copy_beside(path, dir, "tokenizer.json"); /* what the export left beside the file */
        copy_beside(path, dir, "tokenizer_config.json");
        st = LT_MODEL_OK;
    } else if (st && f) {
        gguf_fail(st, err, errlen, "%s: %s", path, e);
    }
    lt_gguf_close(f);
    if (!st && lt_tokenizer_load_dir(dir, out, e, sizeof(e)) != LT_TOK_OK)
        st = gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                       "%s: no tokenizer lathe can use in its metadata (%s)", path, e);
    remove_dir(dir);
    return st;
}
