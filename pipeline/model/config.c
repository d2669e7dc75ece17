/*
 * config.c - config.json for llama, mistral, qwen2 and gpt2, with transformers' defaults.
 *
 * Every field is type-checked: a string where a number belongs, a negative size, heads that do
 * not divide, is an error naming the field. Fields that change the arithmetic in ways lathe
 * does not implement (rope_scaling other than default, linear, llama3 and yarn, exotic
 * activations, GPT-2's per-layer attention scaling) are LT_MODEL_ERR_UNSUPPORTED.
 */
#include "config.h"

#include "compute.h"

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

/* An optional number of obj: absent or null leaves *out; otherwise it must be a finite number
 * (> 0 when positive). */
static lt_model_status rope_num(ctx *c, const cJSON *obj, const char *where, const char *key,
                                bool required, bool positive, double *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j)) {
        if (required)
            return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                        "%s: \"%s\" needs \"%s\" for this rope type", c->label, where, key);
        return LT_MODEL_OK;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || (positive && !(j->valuedouble > 0)))
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen, "%s: \"%s.%s\" must be a %snumber",
                    c->label, where, key, positive ? "positive " : "");
    *out = j->valuedouble;
    return LT_MODEL_OK;
}

/* The scaling type and its parameters from rope_scaling / rope_parameters object rp. */
static lt_model_status parse_rope_scaling(ctx *c, const cJSON *rp, const char *where,
                                          lt_model_config *o)
{
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
    if (!ty || cJSON_IsNull(ty))
        ty = cJSON_GetObjectItemCaseSensitive(rp, "type");
    if (!ty || cJSON_IsNull(ty))
        return LT_MODEL_OK;
    const char *names[] = {"default", "linear", "llama3", "yarn"};
    int t = -1;
    for (int i = 0; i < 4 && cJSON_IsString(ty); i++)
        if (strcmp(ty->valuestring, names[i]) == 0)
            t = i;
    if (t < 0)
        return fail(LT_MODEL_ERR_UNSUPPORTED, c->err, c->errlen,
                    "%s: %s type '%.32s' is not supported; supported: default, linear, llama3, "
                    "yarn",
                    c->label, where, cJSON_IsString(ty) ? ty->valuestring : "(not a string)");
    lt_rope_scaling *r = &o->rope_scaling;
    memset(r, 0, sizeof *r);
    r->type = (lt_rope_type)t;
    if (r->type == LT_ROPE_DEFAULT)
        return LT_MODEL_OK;
    lt_model_status st;
    double omax = 0, trunc_d = 1;
    if ((st = rope_num(c, rp, where, "factor", true, true, &r->factor)))
        return st;
    if (r->type == LT_ROPE_LLAMA3 &&
        ((st = rope_num(c, rp, where, "low_freq_factor", true, true, &r->low_freq_factor)) ||
         (st = rope_num(c, rp, where, "high_freq_factor", true, true, &r->high_freq_factor))))
        return st;
    if (r->type == LT_ROPE_LLAMA3 && !(r->high_freq_factor > r->low_freq_factor))
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                    "%s: \"%s\": high_freq_factor %g must exceed low_freq_factor %g", c->label,
                    where, r->high_freq_factor, r->low_freq_factor);
    if (r->type == LT_ROPE_LLAMA3 || r->type == LT_ROPE_YARN) {
        if ((st = rope_num(c, rp, where, "original_max_position_embeddings",
                           r->type == LT_ROPE_LLAMA3, true, &omax)))
            return st;
        if (omax != floor(omax) || omax > 1e12)
            return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                        "%s: \"%s.original_max_position_embeddings\" must be an integer", c->label,
                        where);
        r->original_max_pos = (int64_t)omax;
    }
    if (r->type != LT_ROPE_YARN)
        return LT_MODEL_OK;
    r->beta_fast = 32;
    r->beta_slow = 1;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(rp, "truncate");
    if (tr && !cJSON_IsNull(tr) && !cJSON_IsBool(tr))
        return fail(LT_MODEL_ERR_CONFIG, c->err, c->errlen,
                    "%s: \"%s.truncate\" must be true or false", c->label, where);
    trunc_d = tr && cJSON_IsFalse(tr) ? 0 : 1;
    r->truncate = trunc_d != 0;
    if ((st = rope_num(c, rp, where, "beta_fast", false, true, &r->beta_fast)) ||
        (st = rope_num(c, rp, where, "beta_slow", false, true, &r->beta_slow)) ||
        (st = rope_num(c, rp, where, "mscale", false, false, &r->mscale)) ||
        (st = rope_num(c, rp, where, "mscale_all_dim", false, false, &r->mscale_all_dim)) ||
        (st = rope_num(c, rp, where, "attention_factor", false, true, &r->attention_factor)))
        return st;
    return LT_MODEL_OK;
}

/* rope_theta at the top level or inside rope_parameters; the scaling from either object. */
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
        if (o->rope_scaling.type == LT_ROPE_DEFAULT &&
            (st = parse_rope_scaling(c, rp, keys[i], o)) != LT_MODEL_OK)
            return st;
    }
    if (o->rope_scaling.type == LT_ROPE_YARN && o->rope_scaling.original_max_pos == 0)
        o->rope_scaling.original_max_pos = o->max_pos;
    return LT_MODEL_OK;
}

#define LT_CFG_PI 3.14159265358979323846

/* YaRN's magnitude correction g(f, m) = 0.1 m ln f + 1 (1 when f <= 1). */
static double yarn_get_mscale(double f, double m)
{
    return f <= 1 ? 1.0 : 0.1 * m * log(f) + 1.0;
}

/* YaRN's correction dimension: the pair index whose wavelength makes n rotations over the
 * original context L. */
static double yarn_corr_dim(double n, double dim, double theta, double L)
{
    return dim * log(L / (n * 2 * LT_CFG_PI)) / (2 * log(theta));
}

void lt_model_rope_freqs(const lt_model_config *c, float *inv, float *mscale)
{
    const int64_t hd = c->head_dim, half = hd / 2;
    const lt_rope_scaling *r = &c->rope_scaling;
    const float theta = (float)c->rope_theta;
    *mscale = 1.0f;
    lt_rope_inv_freq(inv, hd, theta);
    if (r->type == LT_ROPE_LINEAR) {
        for (int64_t i = 0; i < half; i++)
            inv[i] /= (float)r->factor;
    } else if (r->type == LT_ROPE_LLAMA3) {
        /* float32 throughout, the Python scalars rounded to float as torch does */
        const float L = (float)r->original_max_pos, lo = (float)r->low_freq_factor,
                    factor = (float)r->factor;
        const float lo_wl = (float)((double)r->original_max_pos / r->low_freq_factor);
        const float hi_wl = (float)((double)r->original_max_pos / r->high_freq_factor);
        const float span = (float)(r->high_freq_factor - r->low_freq_factor);
        for (int64_t i = 0; i < half; i++) {
            float f = inv[i], wl = (float)(2 * LT_CFG_PI) / f;
            float scaled = wl > lo_wl ? f / factor : f;
            if (!(wl < hi_wl) && !(wl > lo_wl)) {
                float s = (L / wl - lo) / span;
                scaled = (1.0f - s) * scaled / factor + s * scaled;
            }
            inv[i] = scaled;
        }
    } else if (r->type == LT_ROPE_YARN) {
        const double dim = (double)hd, L = (double)r->original_max_pos;
        double low = yarn_corr_dim(r->beta_fast, dim, c->rope_theta, L);
        double high = yarn_corr_dim(r->beta_slow, dim, c->rope_theta, L);
        if (r->truncate) {
            low = floor(low);
            high = ceil(high);
        }
        low = low > 0 ? low : 0;
        high = high < dim - 1 ? high : dim - 1;
        if (low == high)
            high += 0.001;
        const float factor = (float)r->factor, lo_f = (float)low, span = (float)(high - low);
        for (int64_t i = 0; i < half; i++) {
            float pos_freq = powf(theta, (float)(2 * i) / (float)hd);
            float extra = 1.0f / pos_freq, inter = 1.0f / (factor * pos_freq);
            float ramp = ((float)i - lo_f) / span;
            ramp = ramp < 0.0f ? 0.0f : ramp > 1.0f ? 1.0f : ramp;
            float ef = 1.0f - ramp; /* extrapolation weight */
            inv[i] = inter * (1.0f - ef) + extra * ef;
        }
        double af = r->attention_factor;
        if (!(af > 0))
            af = r->mscale != 0 && r->mscale_all_dim != 0
                     ? yarn_get_mscale(r->factor, r->mscale) /
                           yarn_get_mscale(r->factor, r->mscale_all_dim)
                     : yarn_get_mscale(r->factor, 1.0);
        *mscale = (float)af;
    }
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
        if ((st = get_bool(c, "use_sliding_window", false, &use_sw)) ||
            (st = get_int(c, "max_window_layers", 28, false, 0, 100000, &o->window_from_layer)))
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

/* "rope_scaling": null, or the type with the parameters it was read with. */
static void add_rope_scaling(cJSON *o, const lt_rope_scaling *r)
{
    static const char *names[] = {"default", "linear", "llama3", "yarn"};
    cJSON *rs = r->type == LT_ROPE_DEFAULT ? NULL : cJSON_AddObjectToObject(o, "rope_scaling");
    if (!rs) {
        cJSON_AddNullToObject(o, "rope_scaling");
        return;
    }
    cJSON_AddStringToObject(rs, "rope_type", names[r->type]);
    cJSON_AddNumberToObject(rs, "factor", r->factor);
    if (r->type == LT_ROPE_LLAMA3) {
        cJSON_AddNumberToObject(rs, "low_freq_factor", r->low_freq_factor);
        cJSON_AddNumberToObject(rs, "high_freq_factor", r->high_freq_factor);
    }
    if (r->type == LT_ROPE_LLAMA3 || r->type == LT_ROPE_YARN)
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings",
                                (double)r->original_max_pos);
    if (r->type != LT_ROPE_YARN)
        return;
    cJSON_AddNumberToObject(rs, "beta_fast", r->beta_fast);
    cJSON_AddNumberToObject(rs, "beta_slow", r->beta_slow);
    if (r->mscale != 0)
        cJSON_AddNumberToObject(rs, "mscale", r->mscale);
    if (r->mscale_all_dim != 0)
        cJSON_AddNumberToObject(rs, "mscale_all_dim", r->mscale_all_dim);
    if (r->attention_factor > 0)
        cJSON_AddNumberToObject(rs, "attention_factor", r->attention_factor);
    if (!r->truncate)
        cJSON_AddBoolToObject(rs, "truncate", false);
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
        add_rope_scaling(o, &c->rope_scaling);
        cJSON_AddStringToObject(o, "hidden_act", "silu");
        if (c->arch != LT_ARCH_QWEN2) {
            cJSON_AddBoolToObject(o, "attention_bias", c->qkv_bias);
            cJSON_AddBoolToObject(o, "mlp_bias", c->mlp_bias);
        }
        if (c->arch == LT_ARCH_QWEN2) {
            cJSON_AddBoolToObject(o, "use_sliding_window", c->sliding_window > 0);
            cJSON_AddNumberToObject(o, "max_window_layers", (double)c->window_from_layer);
        }
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
