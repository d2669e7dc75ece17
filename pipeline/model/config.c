/*
 * config.c - config.json for llama, mistral, qwen2 and gpt2, with transformers' defaults.
 *
 * Every field is type-checked: a string where a number belongs, a negative size, heads that do
 * not divide, is an error naming the field. Fields that change the arithmetic in ways lathe
 * does not implement (rope_scaling other than "default", exotic activations, GPT-2's per-layer
 * attention scaling) are LT_MODEL_ERR_UNSUPPORTED.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lt_model_status_str(lt_model_status s)
{
    switch (s) {
    case LT_MODEL_OK: return "ok";
    case LT_MODEL_ERR_IO: return "i/o error";
    case LT_MODEL_ERR_FORMAT: return "malformed file";
    case LT_MODEL_ERR_CONFIG: return "bad config";
    case LT_MODEL_ERR_UNSUPPORTED: return "unsupported model";
    case LT_MODEL_ERR_TENSOR: return "bad tensor";
    case LT_MODEL_ERR_DEVICE: return "device error";
    case LT_MODEL_ERR_OOM: return "out of memory";
    case LT_MODEL_ERR_ARG: return "bad argument";
    }
    return "unknown status";
}

const char *lt_arch_name(lt_arch a)
{
    switch (a) {
    case LT_ARCH_LLAMA: return "llama";
    case LT_ARCH_MISTRAL: return "mistral";
    case LT_ARCH_QWEN2: return "qwen2";
    case LT_ARCH_GPT2: return "gpt2";
    }
    return "?";
}

bool lt_arch_is_llama_like(lt_arch a) { return a != LT_ARCH_GPT2; }

static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

typedef struct ctx {
    const cJSON *root;
    const char *label;
    char *err;
    size_t errlen;
} ctx;

/* Reads an integer field. Absent or null: *out = dflt, unless required (dflt < -1 signals). */
static lt_model_status get_int(ctx *c, const char *key, int64_t dflt, bool required,
                               int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!j || cJSON_IsNull(j)) {
        if (required)
            return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen, "%s: missing field \"%s\"",
                        c->label, key);
        *out = dflt;
        return LT_MODEL_OK;
    }
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                    "%s: \"%s\" must be an integer in [%lld, %lld]", c->label, key, (long long)lo,
                    (long long)hi);
    *out = (int64_t)d;
    return LT_MODEL_OK;
}

static lt_model_status get_num(ctx *c, const cJSON *obj, const char *key, double dflt,
                               double *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j)) {
        *out = dflt;
        return LT_MODEL_OK;
    }
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0) || !isfinite(j->valuedouble))
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen, "%s: \"%s\" must be a positive number",
                    c->label, key);
    *out = j->valuedouble;
    return LT_MODEL_OK;
}

static lt_model_status get_bool(ctx *c, const char *key, bool dflt, bool *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!j || cJSON_IsNull(j)) {
        *out = dflt;
        return LT_MODEL_OK;
    }
    if (!cJSON_IsBool(j))
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen, "%s: \"%s\" must be true or false",
                    c->label, key);
    *out = cJSON_IsTrue(j);
    return LT_MODEL_OK;
}

static lt_model_status get_string(ctx *c, const char *key, const char **out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c->root, key);
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return LT_MODEL_OK;
    if (!cJSON_IsString(j))
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen, "%s: \"%s\" must be a string",
                    c->label, key);
    *out = j->valuestring;
    return LT_MODEL_OK;
}

static lt_model_status parse_eos(ctx *c, lt_model_config *o)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c->root, "eos_token_id");
    o->n_eos = 0;
    if (!j || cJSON_IsNull(j))
        return LT_MODEL_OK;
    const cJSON *items = cJSON_IsArray(j) ? j->child : j;
    for (const cJSON *e = items; e; e = cJSON_IsArray(j) ? e->next : NULL) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > INT32_MAX ||
            e->valuedouble != floor(e->valuedouble) || o->n_eos == LT_MODEL_MAX_EOS)
            return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                        "%s: \"eos_token_id\" must be a token id or a list of at most %d ids",
                        c->label, LT_MODEL_MAX_EOS);
        o->eos_ids[o->n_eos++] = (int32_t)e->valuedouble;
    }
    return LT_MODEL_OK;
}

/* rope_theta at the top level or inside rope_parameters; rope_scaling must be absent/default. */
static lt_model_status parse_rope(ctx *c, lt_model_config *o)
{
    lt_model_status st = get_num(c, c->root, "rope_theta", 10000.0, &o->rope_theta);
    if (st != LT_MODEL_OK)
        return st;
    const char *keys[] = {"rope_parameters", "rope_scaling"};
    for (int i = 0; i < 2; i++) {
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(c->root, keys[i]);
        if (!rp || cJSON_IsNull(rp))
            continue;
        if (!cJSON_IsObject(rp))
            return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen, "%s: \"%s\" must be an object",
                        c->label, keys[i]);
        if (i == 0 && cJSON_GetObjectItemCaseSensitive(rp, "rope_theta") &&
            (st = get_num(c, rp, "rope_theta", 10000.0, &o->rope_theta)) != LT_MODEL_OK)
            return st;
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        if (!ty)
            ty = cJSON_GetObjectItemCaseSensitive(rp, "type");
        if (ty && !(cJSON_IsString(ty) && strcmp(ty->valuestring, "default") == 0))
            return fail(LT_MODEL_ERR_UNSUPPORTED, c->err, c->errlen,
                        "%s: %s type \"%.32s\" is not supported (only plain rotary positions)",
                        c->label, keys[i], cJSON_IsString(ty) ? ty->valuestring : "?");
    }
    return LT_MODEL_OK;
}

static lt_model_status parse_llama(ctx *c, lt_model_config *o)
{
    lt_model_status st;
    const int64_t BIG = (int64_t)1 << 31;
    const char *act = NULL;
    double eps;
    bool attn_bias = false, use_sw = false;
    if ((st = get_int(c, "hidden_size", 0, true, 1, BIG, &o->dim)) ||
        (st = get_int(c, "intermediate_size", 0, true, 1, BIG, &o->ffn)) ||
        (st = get_int(c, "num_hidden_layers", 0, true, 1, 100000, &o->n_layers)) ||
        (st = get_int(c, "num_attention_heads", 0, true, 1, 100000, &o->n_heads)) ||
        (st = get_int(c, "num_key_value_heads", o->n_heads, false, 1, 100000, &o->n_kv_heads)) ||
        (st = get_int(c, "head_dim", 0, false, 0, 1 << 16, &o->head_dim)) ||
        (st = get_int(c, "vocab_size", 0, true, 1, BIG, &o->vocab)) ||
        (st = get_int(c, "max_position_embeddings", 2048, false, 1, BIG, &o->max_pos)) ||
        (st = get_num(c, c->root, "rms_norm_eps", 1e-6, &eps)) || (st = parse_rope(c, o)) ||
        (st = get_bool(c, "tie_word_embeddings", false, &o->tie_embeddings)) ||
        (st = get_bool(c, "attention_bias", false, &attn_bias)) ||
        (st = get_bool(c, "mlp_bias", false, &o->mlp_bias)) ||
        (st = get_string(c, "hidden_act", &act)))
        return st;
    o->norm_eps = (float)eps;
    if (o->head_dim == 0) {
        if (o->dim % o->n_heads)
            return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                        "%s: hidden_size %lld is not a multiple of num_attention_heads %lld",
                        c->label, (long long)o->dim, (long long)o->n_heads);
        o->head_dim = o->dim / o->n_heads;
    }
    if (o->head_dim % 2)
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                    "%s: head_dim %lld must be even for rotary positions", c->label,
                    (long long)o->head_dim);
    if (act && strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return fail(LT_MODEL_ERR_UNSUPPORTED, c->err, c->errlen,
                    "%s: hidden_act \"%.32s\" is not supported (expected \"silu\")", c->label, act);
    if (o->arch == LT_ARCH_QWEN2) {
        o->qkv_bias = true; /* implied by the architecture */
        o->o_bias = false; /* Qwen2's o_proj has no bias */
        if ((st = get_bool(c, "use_sliding_window", false, &use_sw)))
            return st;
    } else {
        o->qkv_bias = o->o_bias = attn_bias;
        use_sw = o->arch == LT_ARCH_MISTRAL;
    }
    /* an explicit null means no window; absent means Mistral's default of 4096 */
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(c->root, "sliding_window");
    if (use_sw && !cJSON_IsNull(sw) &&
        (st = get_int(c, "sliding_window", o->arch == LT_ARCH_MISTRAL ? 4096 : 0, false, 0, BIG,
                      &o->sliding_window)))
        return st;
    return LT_MODEL_OK;
}

static lt_model_status parse_gpt2(ctx *c, lt_model_config *o)
{
    lt_model_status st;
    const int64_t BIG = (int64_t)1 << 31;
    const char *act = NULL;
    double eps;
    bool inv_layer = false;
    if ((st = get_int(c, "n_embd", 768, false, 1, BIG, &o->dim)) ||
        (st = get_int(c, "n_layer", 12, false, 1, 100000, &o->n_layers)) ||
        (st = get_int(c, "n_head", 12, false, 1, 100000, &o->n_heads)) ||
        (st = get_int(c, "n_inner", 0, false, 1, BIG, &o->ffn)) ||
        (st = get_int(c, "vocab_size", 50257, false, 1, BIG, &o->vocab)) ||
        (st = get_int(c, "n_positions", 1024, false, 1, BIG, &o->max_pos)) ||
        (st = get_num(c, c->root, "layer_norm_epsilon", 1e-5, &eps)) ||
        (st = get_bool(c, "tie_word_embeddings", true, &o->tie_embeddings)) ||
        (st = get_bool(c, "scale_attn_by_inverse_layer_idx", false, &inv_layer)) ||
        (st = get_string(c, "activation_function", &act)))
        return st;
    if (o->ffn == 0)
        o->ffn = 4 * o->dim;
    o->norm_eps = (float)eps;
    if (o->dim % o->n_heads)
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                    "%s: n_embd %lld is not a multiple of n_head %lld", c->label,
                    (long long)o->dim, (long long)o->n_heads);
    o->n_kv_heads = o->n_heads;
    o->head_dim = o->dim / o->n_heads;
    o->qkv_bias = o->o_bias = o->mlp_bias = true;
    if (act && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0 &&
        strcmp(act, "gelu_fast") != 0)
        return fail(LT_MODEL_ERR_UNSUPPORTED, c->err, c->errlen,
                    "%s: activation_function \"%.32s\" is not supported (expected \"gelu_new\")",
                    c->label, act);
    if (inv_layer)
        return fail(LT_MODEL_ERR_UNSUPPORTED, c->err, c->errlen,
                    "%s: scale_attn_by_inverse_layer_idx is not supported", c->label);
    return LT_MODEL_OK;
}

lt_model_status lt_model_config_parse(const char *json, size_t len, const char *label,
                                      lt_model_config *out, char *err, size_t errlen)
{
    lt_model_status st = LT_MODEL_OK;
    if (!json || !out)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "lt_model_config_parse: NULL argument");
    memset(out, 0, sizeof(*out));
    label = label ? label : "config.json";
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: not a JSON object", label);
        goto out;
    }
    ctx c = {root, label, err, errlen};
    const char *mt = NULL;
    if ((st = get_string(&c, "model_type", &mt)))
        goto out;
    if (!mt) {
        st = fail(LT_MODEL_ERR_CONFIG, err, errlen, "%s: missing field \"model_type\"", label);
        goto out;
    }
    if (strcmp(mt, "llama") == 0)
        out->arch = LT_ARCH_LLAMA;
    else if (strcmp(mt, "mistral") == 0)
        out->arch = LT_ARCH_MISTRAL;
    else if (strcmp(mt, "qwen2") == 0)
        out->arch = LT_ARCH_QWEN2;
    else if (strcmp(mt, "gpt2") == 0)
        out->arch = LT_ARCH_GPT2;
    else {
        st = fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                  "%s: model_type \"%.64s\" is not supported (expected llama, mistral, qwen2 or "
                  "gpt2)",
                  label, mt);
        goto out;
    }
    st = out->arch == LT_ARCH_GPT2 ? parse_gpt2(&c, out) : parse_llama(&c, out);
    if (st)
        goto out;
    if (out->n_heads % out->n_kv_heads) {
        st = fail(LT_MODEL_ERR_CONFIG, err, errlen,
                  "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                  label, (long long)out->n_heads, (long long)out->n_kv_heads);
        goto out;
    }
    int64_t bos;
    if ((st = get_int(&c, "bos_token_id", -1, false, 0, INT32_MAX, &bos)) ||
        (st = parse_eos(&c, out)))
        goto out;
    out->bos_id = (int32_t)bos;
    const char *td = NULL;
    if ((st = get_string(&c, "torch_dtype", &td)))
        goto out;
    if (!td && (st = get_string(&c, "dtype", &td)))
        goto out;
    snprintf(out->torch_dtype, sizeof(out->torch_dtype), "%s", td ? td : "");
out:
    cJSON_Delete(root);
    return st;
}

lt_model_status lt_model_config_load(const char *dir, lt_model_config *out, char *err,
                                     size_t errlen)
{
    if (!dir || !out)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "lt_model_config_load: NULL argument");
    size_t n = strlen(dir);
    char *path = malloc(n + 16);
    if (!path)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    if (n > 5 && strcmp(dir + n - 5, ".json") == 0)
        snprintf(path, n + 16, "%s", dir);
    else
        snprintf(path, n + 16, "%s/config.json", dir);
    lt_model_status st = LT_MODEL_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        st = fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot open", path);
        goto out_path;
    }
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || len > (16L << 20) || fseek(f, 0, SEEK_SET) != 0) {
        st = fail(LT_MODEL_ERR_IO, err, errlen, "%s: unreadable or larger than 16 MiB", path);
        goto out_file;
    }
    buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        st = fail(buf ? LT_MODEL_ERR_IO : LT_MODEL_ERR_OOM, err, errlen, "%s: cannot read", path);
        goto out_file;
    }
    st = lt_model_config_parse(buf, (size_t)len, path, out, err, errlen);
out_file:
    free(buf);
    fclose(f);
out_path:
    free(path);
    return st;
}

bool lt_model_config_is_eos(const lt_model_config *c, int32_t id)
{
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id)
            return true;
    return false;
}

static void add_eos(cJSON *o, const lt_model_config *c)
{
    if (c->n_eos == 1)
        cJSON_AddNumberToObject(o, "eos_token_id", c->eos_ids[0]);
    else if (c->n_eos > 1) {
        cJSON *a = cJSON_AddArrayToObject(o, "eos_token_id");
        for (int i = 0; a && i < c->n_eos; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(c->eos_ids[i]));
    }
    if (c->bos_id >= 0)
        cJSON_AddNumberToObject(o, "bos_token_id", c->bos_id);
}

char *lt_model_config_to_json(const lt_model_config *c)
{
    static const char *arch_class[] = {"LlamaForCausalLM", "MistralForCausalLM",
                                       "Qwen2ForCausalLM", "GPT2LMHeadModel"};
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON *a = cJSON_AddArrayToObject(o, "architectures");
    if (a)
        cJSON_AddItemToArray(a, cJSON_CreateString(arch_class[c->arch]));
    cJSON_AddStringToObject(o, "model_type", lt_arch_name(c->arch));
    if (c->arch == LT_ARCH_GPT2) {
        cJSON_AddNumberToObject(o, "n_embd", (double)c->dim);
        cJSON_AddNumberToObject(o, "n_layer", (double)c->n_layers);
        cJSON_AddNumberToObject(o, "n_head", (double)c->n_heads);
        cJSON_AddNumberToObject(o, "n_inner", (double)c->ffn);
        cJSON_AddNumberToObject(o, "n_positions", (double)c->max_pos);
        cJSON_AddNumberToObject(o, "n_ctx", (double)c->max_pos);
        cJSON_AddNumberToObject(o, "vocab_size", (double)c->vocab);
        cJSON_AddNumberToObject(o, "layer_norm_epsilon", c->norm_eps);
        cJSON_AddStringToObject(o, "activation_function", "gelu_new");
    } else {
        cJSON_AddNumberToObject(o, "hidden_size", (double)c->dim);
        cJSON_AddNumberToObject(o, "intermediate_size", (double)c->ffn);
        cJSON_AddNumberToObject(o, "num_hidden_layers", (double)c->n_layers);
        cJSON_AddNumberToObject(o, "num_attention_heads", (double)c->n_heads);
        cJSON_AddNumberToObject(o, "num_key_value_heads", (double)c->n_kv_heads);
        cJSON_AddNumberToObject(o, "head_dim", (double)c->head_dim);
        cJSON_AddNumberToObject(o, "vocab_size", (double)c->vocab);
        cJSON_AddNumberToObject(o, "max_position_embeddings", (double)c->max_pos);
        cJSON_AddNumberToObject(o, "rms_norm_eps", c->norm_eps);
        cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
        cJSON_AddNullToObject(o, "rope_scaling");
        cJSON_AddStringToObject(o, "hidden_act", "silu");
        if (c->arch != LT_ARCH_QWEN2) {
            cJSON_AddBoolToObject(o, "attention_bias", c->qkv_bias);
            cJSON_AddBoolToObject(o, "mlp_bias", c->mlp_bias);
        }
        if (c->arch == LT_ARCH_QWEN2)
            cJSON_AddBoolToObject(o, "use_sliding_window", c->sliding_window > 0);
        if (c->sliding_window > 0)
            cJSON_AddNumberToObject(o, "sliding_window", (double)c->sliding_window);
        else if (c->arch == LT_ARCH_MISTRAL)
            cJSON_AddNullToObject(o, "sliding_window");
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings);
    add_eos(o, c);
    cJSON_AddStringToObject(o, "torch_dtype", c->torch_dtype[0] ? c->torch_dtype : "float32");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}
