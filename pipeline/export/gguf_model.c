/*
 * gguf_model.c - a Hugging Face model folder, or a PEFT adapter for one, written as a GGUF
 * file llama.cpp loads: the architecture keys, llama.cpp's tensor names, the q/k permutation
 * for arch llama, GPT-2's Conv1D weights transposed, and the element type per tensor.
 *
 * It reads safetensors and JSON only; it never touches a compute device.
 */
#include "export/export_impl.h"
#include "export/gguf_impl.h"
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool lt_gguf_is_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 5 && !strcmp(path + n - 5, ".gguf");
}

void lt_gguf_permute_rows(const float *in, float *out, int64_t n_head, int64_t hd, int64_t cols,
                          bool inverse)
{
    const int64_t half = hd / 2;
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t j = 0; j < 2; j++)
            for (int64_t i = 0; i < half; i++) {
                int64_t hf = h * hd + j * half + i; /* HF (rotate_half) row */
                int64_t gg = h * hd + i * 2 + j;    /* llama.cpp (interleaved) row */
                const float *src = in + (inverse ? gg : hf) * cols;
                memcpy(out + (inverse ? hf : gg) * cols, src, (size_t)cols * sizeof(float));
            }
}

/* GGUF's architecture name for a config, or NULL when GGUF cannot express it. */
static const char *gguf_arch(const lt_model_config *c)
{
    switch (c->arch) {
    case LT_ARCH_LLAMA:
    case LT_ARCH_MISTRAL: return "llama";
    case LT_ARCH_QWEN2: return "qwen2";
    case LT_ARCH_GPT2: return "gpt2";
    }
    return NULL;
}

/* What to do with one source tensor. */
typedef struct tmap {
    char name[96];   /* the GGUF name, e.g. "blk.3.attn_q.weight" */
    bool transpose;  /* GPT-2 Conv1D [in, out] -> [out, in] */
    int64_t perm_heads; /* > 0: llama q/k rows permuted with this many heads */
    bool skip;       /* a buffer, not a parameter */
} tmap;

/* Maps a Hugging Face tensor name of config c to its GGUF name; false when unknown. */
static bool map_name(const lt_model_config *c, const char *hf, tmap *m)
{
    memset(m, 0, sizeof(*m));
    const char *n = hf;
    bool llama_perm = c->arch == LT_ARCH_LLAMA || c->arch == LT_ARCH_MISTRAL;
    const char *leaf = strrchr(n, '.');
    if (!leaf)
        return false;
    const char *wb = leaf + 1; /* "weight" / "bias" */
    if (c->arch == LT_ARCH_GPT2) {
        if (!strncmp(n, "transformer.", 12))
            n += 12;
        int layer;
        char rest[64];
        if (!strcmp(n, "wte.weight"))
            return snprintf(m->name, sizeof(m->name), "token_embd.weight"), true;
        if (!strcmp(n, "wpe.weight"))
            return snprintf(m->name, sizeof(m->name), "position_embd.weight"), true;
        if (!strncmp(n, "ln_f.", 5))
            return snprintf(m->name, sizeof(m->name), "output_norm.%s", wb), true;
        if (!strcmp(n, "lm_head.weight"))
            return snprintf(m->name, sizeof(m->name), "output.weight"), true;
        if (sscanf(n, "h.%d.%63s", &layer, rest) != 2)
            return false;
        static const struct { const char *hf, *gg; bool conv; } T[] = {
            {"ln_1.", "attn_norm", false},  {"attn.c_attn.", "attn_qkv", true},
            {"attn.c_proj.", "attn_output", true}, {"ln_2.", "ffn_norm", false},
            {"mlp.c_fc.", "ffn_up", true},  {"mlp.c_proj.", "ffn_down", true},
        };
        if (!strcmp(rest, "attn.bias") || !strcmp(rest, "attn.masked_bias"))
            return m->skip = true, true;
        for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++)
            if (!strncmp(rest, T[i].hf, strlen(T[i].hf))) {
                snprintf(m->name, sizeof(m->name), "blk.%d.%s.%s", layer, T[i].gg, wb);
                m->transpose = T[i].conv && !strcmp(wb, "weight");
                return true;
            }
        return false;
    }
    if (!strcmp(n, "model.embed_tokens.weight"))
        return snprintf(m->name, sizeof(m->name), "token_embd.weight"), true;
    if (!strcmp(n, "model.norm.weight"))
        return snprintf(m->name, sizeof(m->name), "output_norm.weight"), true;
    if (!strcmp(n, "lm_head.weight"))
        return snprintf(m->name, sizeof(m->name), "output.weight"), true;
    int layer;
    char rest[64];
    if (sscanf(n, "model.layers.%d.%63s", &layer, rest) != 2)
        return false;
    if (strstr(rest, "rotary_emb."))
        return m->skip = true, true;
    static const struct { const char *hf, *gg; } T[] = {
        {"input_layernorm.", "attn_norm"},     {"self_attn.q_proj.", "attn_q"},
        {"self_attn.k_proj.", "attn_k"},       {"self_attn.v_proj.", "attn_v"},
        {"self_attn.o_proj.", "attn_output"},  {"post_attention_layernorm.", "ffn_norm"},
        {"mlp.gate_proj.", "ffn_gate"},        {"mlp.up_proj.", "ffn_up"},
        {"mlp.down_proj.", "ffn_down"},
    };
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++)
        if (!strncmp(rest, T[i].hf, strlen(T[i].hf))) {
            snprintf(m->name, sizeof(m->name), "blk.%d.%s.%s", layer, T[i].gg, wb);
            if (llama_perm && i == 1)
                m->perm_heads = c->n_heads;
            if (llama_perm && i == 2)
                m->perm_heads = c->n_kv_heads;
            return true;
        }
    return false;
}

/* A safetensors tensor as F32 host memory (malloc'd), or NULL. */
static float *to_f32(const lt_st_tensor *t)
{
    float *f = malloc((size_t)t->numel * sizeof(float) + 1);
    if (!f)
        return NULL;
    const uint8_t *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case LT_ST_F32: memcpy(&f[i], p + 4 * i, 4); break;
        case LT_ST_F16: f[i] = lt_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); break;
        case LT_ST_BF16: f[i] = lt_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); break;
        case LT_ST_F64: {
            double d;
            memcpy(&d, p + 8 * i, 8);
            f[i] = (float)d;
            break;
        }
        default: free(f); return NULL;
        }
    }
    return f;
}

/* Transposes / permutes x (shape [rows, cols], F32) in place per m. */
static bool transform(const tmap *m, float **x, int64_t *rows, int64_t *cols, int64_t hd)
{
    if (!m->transpose && !m->perm_heads)
        return true;
    float *y = malloc((size_t)(*rows * *cols) * sizeof(float) + 1);
    if (!y)
        return false;
    if (m->transpose) {
        for (int64_t r = 0; r < *rows; r++)
            for (int64_t c = 0; c < *cols; c++)
                y[c * *rows + r] = (*x)[r * *cols + c];
        int64_t t = *rows;
        *rows = *cols;
        *cols = t;
    } else {
        lt_gguf_permute_rows(*x, y, m->perm_heads, hd, *cols, false);
    }
    free(*x);
    *x = y;
    return true;
}

/* Encodes x (F32, numel n, owned) as type t and adds it. */
static lt_model_status add_f32(lt_gguf_writer *w, const char *name, lt_ggml_type t, int ndim,
                               const int64_t *shape, float *x, char *err, size_t errlen)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    if (t == LT_GGML_F32)
        return lt_gguf_add_tensor(w, name, t, ndim, shape, x, (size_t)n * 4, true, err, errlen);
    size_t bytes = lt_ggml_nbytes(t, n);
    void *buf = malloc(bytes + 1);
    if (!buf) {
        free(x);
        return gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of memory", name);
    }
    lt_ggml_encode(t, x, n, buf);
    free(x);
    return lt_gguf_add_tensor(w, name, t, ndim, shape, buf, bytes, true, err, errlen);
}

static bool arch_keys(lt_gguf_writer *w, const char *a, const lt_model_config *c)
{
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof(k), "%s.%s", a, suffix), k)
    bool ok = lt_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_pos) &&
              lt_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim) &&
              lt_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layers) &&
              lt_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn) &&
              lt_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
    if (c->arch == LT_ARCH_GPT2)
        return ok && lt_gguf_set_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps);
    ok = ok && lt_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads) &&
         lt_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim) &&
         lt_gguf_set_f32(w, KEY("rope.freq_base"), (float)c->rope_theta) &&
         lt_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps) &&
         lt_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab);
    if (ok && c->head_dim * c->n_heads != c->dim)
        ok = lt_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim) &&
             lt_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
#undef KEY
    return ok;
}

static uint32_t file_type(lt_ggml_type t)
{
    switch (t) {
    case LT_GGML_F16: return 1;
    case LT_GGML_Q8_0: return 7;
    case LT_GGML_BF16: return 32;
    default: return 0;
    }
}

static void base_name(const char *dir, char *out, size_t n)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/')
        tmp[--l] = 0;
    const char *s = strrchr(tmp, '/');
    snprintf(out, n, "%s", s ? s + 1 : tmp);
}

/* Config and general keys shared by models and adapters. */
static lt_model_status open_base(const char *dir, lt_model_config *c, const char **arch,
                                 char *err, size_t errlen)
{
    lt_model_status st = lt_model_config_load(dir, c, err, errlen);
    if (st)
        return st;
    if (!(*arch = gguf_arch(c)))
        return gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                         "%s: architecture %s has no GGUF form lathe writes", dir,
                         lt_arch_name(c->arch));
    if (c->arch != LT_ARCH_GPT2 && c->head_dim % 2)
        return gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                         "%s: odd head_dim %lld cannot take the rotary permutation", dir,
                         (long long)c->head_dim);
    return LT_MODEL_OK;
}

lt_model_status lt_gguf_export_model(const char *src_dir, const char *out_path,
                                     const lt_gguf_export_opts *o, lt_gguf_export_info *info,
                                     char *err, size_t errlen)
{
    lt_model_config c;
    lt_model_summary sum;
    lt_st_set *set = NULL;
    lt_gguf_writer *w = NULL;
    const char *arch;
    lt_gguf_export_info local;
    char name[256];
    if (!info)
        info = &local;
    memset(info, 0, sizeof(*info));
    info->bos_id = info->eos_id = info->eot_id = -1;
    lt_ggml_type dt = o ? o->dtype : LT_GGML_F32;
    if (dt != LT_GGML_F32 && dt != LT_GGML_F16 && dt != LT_GGML_BF16 && dt != LT_GGML_Q8_0)
        return gguf_fail(LT_MODEL_ERR_ARG, err, errlen, "GGUF dtype %u is not one lathe writes",
                         (unsigned)dt);
    lt_model_status st = open_base(src_dir, &c, &arch, err, errlen);
    if (st)
        return st;
    if (c.rope_scaling.type != LT_ROPE_DEFAULT)
        return gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                         "%s: rope_scaling (%s) is not written to GGUF yet; the file would "
                         "run with plain rotary positions. Export the safetensors folder "
                         "instead",
                         src_dir,
                         c.rope_scaling.type == LT_ROPE_LLAMA3 ? "llama3"
                         : c.rope_scaling.type == LT_ROPE_YARN ? "yarn"
                                                               : "linear");
    if (c.sliding_window > 0 && c.sliding_window < c.max_pos)
        snprintf(info->note, sizeof(info->note),
                 "sliding window %lld is not expressed in GGUF's llama architecture",
                 (long long)c.sliding_window);
    /* the same checks lt_model_load makes: every tensor present, right shape, float dtype */
    if ((st = lt_model_inspect(src_dir, &sum, err, errlen)))
        return st;
    lt_st_status sst = lt_st_set_open_dir(src_dir, &set, err, errlen);
    if (sst)
        return sst == LT_ST_ERR_IO ? LT_MODEL_ERR_IO : LT_MODEL_ERR_FORMAT;
    if (!(w = lt_gguf_writer_new())) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    snprintf(info->arch, sizeof(info->arch), "%s", arch);
    if (o && o->name)
        snprintf(name, sizeof(name), "%s", o->name);
    else
        base_name(src_dir, name, sizeof(name));
    bool ok = lt_gguf_set_str(w, "general.architecture", arch) &&
              lt_gguf_set_str(w, "general.type", "model") &&
              lt_gguf_set_str(w, "general.name", name) &&
              lt_gguf_set_u32(w, "general.alignment", LT_GGUF_ALIGNMENT) &&
              lt_gguf_set_u32(w, "general.file_type", file_type(dt)) &&
              (dt != LT_GGML_Q8_0 || lt_gguf_set_u32(w, "general.quantization_version", 2)) &&
              arch_keys(w, arch, &c);
    if (!ok) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory (keys)");
        goto out;
    }
    if ((st = gguf_tok_write(w, src_dir, c.vocab, &c, info, err, errlen)))
        goto out;
    for (int i = 0; i < lt_st_set_count(set); i++) {
        const lt_st_tensor *t = lt_st_set_at(set, i);
        tmap m;
        if (!map_name(&c, t->name, &m) || m.skip)
            continue; /* lt_model_inspect vouched for every tensor the model needs */
        if (c.tie_embeddings && !strcmp(m.name, "output.weight"))
            continue;
        float *x = to_f32(t);
        if (!x) {
            st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen, "%s: dtype %s cannot be read as F32",
                           t->name, lt_st_dtype_name(t->dtype));
            goto out;
        }
        int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        if (t->ndim == 1 && m.perm_heads) { /* a q/k bias: one column */
            cols = 1;
        }
        if (!transform(&m, &x, &rows, &cols, c.head_dim)) {
            free(x);
            st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of memory", t->name);
            goto out;
        }
        lt_ggml_type tt = t->ndim == 1 ? LT_GGML_F32 : dt;
        if (tt == LT_GGML_Q8_0 && cols % LT_GGUF_Q8_0_BLOCK) {
            tt = LT_GGML_F16;
            info->n_fallback++;
        }
        int64_t shape[2] = {rows, cols};
        if ((st = add_f32(w, m.name, tt, t->ndim, t->ndim == 1 ? &rows : shape, x, err,
                          errlen)))
            goto out;
        info->n_tensors++;
    }
    st = lt_gguf_writer_write(w, out_path, err, errlen);
out:
    lt_gguf_writer_free(w);
    lt_st_set_close(set);
    return st;
}

/* ---- LoRA adapters ----------------------------------------------------------------------- */

/* PEFT name -> the base tensor's HF name and which of A / B it is. */
static bool peft_split(const char *n, char *base, size_t bn, bool *is_b)
{
    const char *pre = "base_model.model.";
    if (strncmp(n, pre, strlen(pre)) != 0)
        return false;
    n += strlen(pre);
    const char *a = strstr(n, ".lora_A.weight"), *b = strstr(n, ".lora_B.weight");
    const char *cut = a ? a : b;
    if (!cut || cut[14] != 0)
        return false;
    *is_b = b != NULL;
    snprintf(base, bn, "%.*s.weight", (int)(cut - n), n);
    return true;
}

lt_model_status lt_gguf_export_lora(const char *peft_dir, const char *base_dir,
                                    const char *out_path, lt_gguf_export_info *info, char *err,
                                    size_t errlen)
{
    lt_model_config c;
    const char *arch;
    lt_st_file *sf = NULL;
    lt_gguf_writer *w = NULL;
    cJSON *cfg = NULL;
    char *text = NULL, path[4200], name[256];
    lt_gguf_export_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof(*info));
    info->bos_id = info->eos_id = info->eot_id = -1;
    lt_model_status st = open_base(base_dir, &c, &arch, err, errlen);
    if (st)
        return st;
    snprintf(info->arch, sizeof(info->arch), "%s", arch);
    snprintf(path, sizeof(path), "%s/adapter_config.json", peft_dir);
    size_t len;
    if (!(text = lt_export_read_file(path, &len)) || !(cfg = cJSON_ParseWithLength(text, len))) {
        st = gguf_fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot read it as JSON", path);
        goto out;
    }
    const char *pt = cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "peft_type"));
    const cJSON *r = cJSON_GetObjectItem(cfg, "r"), *al = cJSON_GetObjectItem(cfg, "lora_alpha");
    if (!pt || strcmp(pt, "LORA") || !cJSON_IsNumber(r) || r->valuedouble < 1 ||
        !cJSON_IsNumber(al)) {
        st = gguf_fail(LT_MODEL_ERR_CONFIG, err, errlen,
                       "%s: peft_type \"LORA\", r >= 1 and lora_alpha expected", path);
        goto out;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItem(cfg, "use_dora"))) {
        st = gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                       "%s: DoRA adapters have no GGUF form in llama.cpp", path);
        goto out;
    }
    const cJSON *rp = cJSON_GetObjectItem(cfg, "rank_pattern"),
                *ap = cJSON_GetObjectItem(cfg, "alpha_pattern");
    if ((cJSON_IsObject(rp) && rp->child) || (cJSON_IsObject(ap) && ap->child)) {
        st = gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                       "%s: rank_pattern / alpha_pattern: GGUF adapters hold one alpha", path);
        goto out;
    }
    double rank = r->valuedouble, alpha = al->valuedouble;
    /* llama.cpp scales by alpha / r; rsLoRA's alpha / sqrt(r) is alpha * sqrt(r) / r */
    if (cJSON_IsTrue(cJSON_GetObjectItem(cfg, "use_rslora")))
        alpha *= sqrt(rank);
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", peft_dir);
    if (lt_st_open(path, &sf, err, errlen) != LT_ST_OK) {
        st = LT_MODEL_ERR_FORMAT;
        goto out;
    }
    if (!(w = lt_gguf_writer_new())) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    base_name(base_dir, name, sizeof(name));
    strncat(name, " LoRA", sizeof(name) - strlen(name) - 1);
    if (!lt_gguf_set_str(w, "general.architecture", arch) ||
        !lt_gguf_set_str(w, "general.type", "adapter") ||
        !lt_gguf_set_str(w, "general.name", name) ||
        !lt_gguf_set_u32(w, "general.alignment", LT_GGUF_ALIGNMENT) ||
        !lt_gguf_set_str(w, "adapter.type", "lora") ||
        !lt_gguf_set_f32(w, "adapter.lora.alpha", (float)alpha)) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory (keys)");
        goto out;
    }
    for (int i = 0; i < lt_st_count(sf); i++) {
        const lt_st_tensor *t = lt_st_at(sf, i);
        char base[160], gname[128];
        bool is_b;
        tmap m;
        if (!peft_split(t->name, base, sizeof(base), &is_b) || !map_name(&c, base, &m) ||
            m.skip || t->ndim != 2) {
            st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen,
                           "%s: tensor %s is not a LoRA A/B matrix of a module GGUF names", path,
                           t->name);
            goto out;
        }
        float *x = to_f32(t);
        if (!x) {
            st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "%s: cannot read as F32", t->name);
            goto out;
        }
        int64_t rows = t->shape[0], cols = t->shape[1];
        /* A [r, in] and B [out, r] keep PEFT's shapes (Conv1D targets included: PEFT stores
         * them as for Linear); only B's rows follow the base's q/k permutation */
        tmap tm = {.perm_heads = is_b ? m.perm_heads : 0};
        if (!transform(&tm, &x, &rows, &cols, c.head_dim)) {
            free(x);
            st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of memory", t->name);
            goto out;
        }
        snprintf(gname, sizeof(gname), "%s.lora_%c", m.name, is_b ? 'b' : 'a');
        int64_t shape[2] = {rows, cols};
        if ((st = add_f32(w, gname, LT_GGML_F32, 2, shape, x, err, errlen)))
            goto out;
        info->n_tensors++;
    }
    if (info->n_tensors == 0) {
        st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen, "%s: no LoRA tensors", path);
        goto out;
    }
    st = lt_gguf_writer_write(w, out_path, err, errlen);
out:
    lt_gguf_writer_free(w);
    lt_st_close(sf);
    cJSON_Delete(cfg);
    free(text);
    return st;
}
