/*
 * model.c - the parameter layout each architecture implies, checking a folder's tensors
 * against it, and uploading the weights to a device.
 *
 * One table (build_specs) lists every tensor a config needs, with its shape, kind and the
 * slot it fills; loading, inspecting and random init all walk that table, so they cannot
 * disagree about names or shapes. Tensor data is read only after the whole table checked out.
 */
#include "model_impl.h"
#include "safetensors.h"
#include "export/gguf_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_specs.h"

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

const char *lt_param_kind_name(lt_param_kind k)
{
    static const char *n[] = {"embeddings", "attention", "mlp", "norms", "lm_head"};
    return (unsigned)k < LT_PARAM_KIND_COUNT ? n[k] : "?";
}

static void add_spec(lt_wspec_list *l, lt_param_kind kind, int layer, lt_param_layout layout,
                     int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void add_spec(lt_wspec_list *l, lt_param_kind kind, int layer, lt_param_layout layout,
                     int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
{
    if (l->n >= l->cap)
        return; /* caller sized the table; never happens */
    lt_wspec *s = &l->s[l->n++];
    memset(s, 0, sizeof(*s));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof(s->name), fmt, ap);
    va_end(ap);
    s->kind = kind;
    s->layer = layer;
    s->layout = layout;
    s->ndim = ndim;
    s->shape[0] = d0;
    s->shape[1] = d1;
}

lt_model_status lt_wspec_build(const lt_model_config *c, const char *gpt2_prefix,
                               lt_wspec_list *out)
{
    out->cap = (int)(16 * c->n_layers + 8);
    out->n = 0;
    out->s = calloc((size_t)out->cap, sizeof(lt_wspec));
    if (!out->s)
        return LT_MODEL_ERR_OOM;
    const int64_t D = c->dim, F = c->ffn, V = c->vocab, qd = c->n_heads * c->head_dim,
                  kvd = c->n_kv_heads * c->head_dim;
    if (c->arch == LT_ARCH_GPT2) {
        const char *p = gpt2_prefix;
        add_spec(out, LT_PARAM_EMBEDDING, -1, LT_LAYOUT_PLAIN, 2, V, D, "%swte.weight", p);
        add_spec(out, LT_PARAM_EMBEDDING, -1, LT_LAYOUT_PLAIN, 2, c->max_pos, D, "%swpe.weight", p);
        for (int i = 0; i < c->n_layers; i++) {
            add_spec(out, LT_PARAM_NORM, i, LT_LAYOUT_PLAIN, 1, D, 0, "%sh.%d.ln_1.weight", p, i);
            add_spec(out, LT_PARAM_NORM, i, LT_LAYOUT_PLAIN, 1, D, 0, "%sh.%d.ln_1.bias", p, i);
            add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_QKV_BLOCKS, 2, D, 3 * D,
                     "%sh.%d.attn.c_attn.weight", p, i);
            add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_PLAIN, 1, 3 * D, 0,
                     "%sh.%d.attn.c_attn.bias", p, i);
            add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_CONV1D, 2, D, D,
                     "%sh.%d.attn.c_proj.weight", p, i);
            add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_PLAIN, 1, D, 0,
                     "%sh.%d.attn.c_proj.bias", p, i);
            add_spec(out, LT_PARAM_NORM, i, LT_LAYOUT_PLAIN, 1, D, 0, "%sh.%d.ln_2.weight", p, i);
            add_spec(out, LT_PARAM_NORM, i, LT_LAYOUT_PLAIN, 1, D, 0, "%sh.%d.ln_2.bias", p, i);
            add_spec(out, LT_PARAM_MLP, i, LT_LAYOUT_CONV1D, 2, D, F, "%sh.%d.mlp.c_fc.weight", p,
                     i);
            add_spec(out, LT_PARAM_MLP, i, LT_LAYOUT_PLAIN, 1, F, 0, "%sh.%d.mlp.c_fc.bias", p, i);
            add_spec(out, LT_PARAM_MLP, i, LT_LAYOUT_CONV1D, 2, F, D, "%sh.%d.mlp.c_proj.weight",
                     p, i);
            add_spec(out, LT_PARAM_MLP, i, LT_LAYOUT_PLAIN, 1, D, 0, "%sh.%d.mlp.c_proj.bias", p,
                     i);
        }
        add_spec(out, LT_PARAM_NORM, -1, LT_LAYOUT_PLAIN, 1, D, 0, "%sln_f.weight", p);
        add_spec(out, LT_PARAM_NORM, -1, LT_LAYOUT_PLAIN, 1, D, 0, "%sln_f.bias", p);
    } else {
        add_spec(out, LT_PARAM_EMBEDDING, -1, LT_LAYOUT_PLAIN, 2, V, D, "model.embed_tokens.weight");
        for (int i = 0; i < c->n_layers; i++) {
            const char *pre = "model.layers";
            add_spec(out, LT_PARAM_NORM, i, LT_LAYOUT_PLAIN, 1, D, 0,
                     "%s.%d.input_layernorm.weight", pre, i);
            static const char *proj[] = {"q", "k", "v"};
            for (int j = 0; j < 3; j++) {
                int64_t o = j == 0 ? qd : kvd;
                add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_PLAIN, 2, o, D,
                         "%s.%d.self_attn.%s_proj.weight", pre, i, proj[j]);
                if (c->qkv_bias)
                    add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_PLAIN, 1, o, 0,
                             "%s.%d.self_attn.%s_proj.bias", pre, i, proj[j]);
            }
            add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_PLAIN, 2, D, qd,
                     "%s.%d.self_attn.o_proj.weight", pre, i);
            if (c->o_bias)
                add_spec(out, LT_PARAM_ATTENTION, i, LT_LAYOUT_PLAIN, 1, D, 0,
                         "%s.%d.self_attn.o_proj.bias", pre, i);
            add_spec(out, LT_PARAM_NORM, i, LT_LAYOUT_PLAIN, 1, D, 0,
                     "%s.%d.post_attention_layernorm.weight", pre, i);
            static const char *mlp[] = {"gate", "up", "down"};
            for (int j = 0; j < 3; j++) {
                int64_t o = j < 2 ? F : D, in = j < 2 ? D : F;
                add_spec(out, LT_PARAM_MLP, i, LT_LAYOUT_PLAIN, 2, o, in,
                         "%s.%d.mlp.%s_proj.weight", pre, i, mlp[j]);
                if (c->mlp_bias)
                    add_spec(out, LT_PARAM_MLP, i, LT_LAYOUT_PLAIN, 1, o, 0,
                             "%s.%d.mlp.%s_proj.bias", pre, i, mlp[j]);
            }
        }
        add_spec(out, LT_PARAM_NORM, -1, LT_LAYOUT_PLAIN, 1, D, 0, "model.norm.weight");
    }
    if (!c->tie_embeddings)
        add_spec(out, LT_PARAM_LM_HEAD, -1, LT_LAYOUT_PLAIN, 2, V, D, "lm_head.weight");
    return LT_MODEL_OK;
}

/* GPT-2 checkpoints name tensors with or without "transformer."; pick what the file uses. */
static const char *gpt2_prefix_of(const lt_st_set *s)
{
    return lt_st_set_find(s, "transformer.wte.weight", NULL) ? "transformer." : "";
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < n)
        snprintf(buf + at, n - at, "]");
}

lt_model_status lt_wspec_check(const lt_wspec_list *l, const lt_st_set *set, const char *dir,
                               char *err, size_t errlen)
{
    for (int i = 0; i < l->n; i++) {
        const lt_wspec *s = &l->s[i];
        const lt_st_tensor *t = lt_st_set_find(set, s->name, NULL);
        char want[64], got[64];
        shape_str(want, sizeof(want), s->ndim, s->shape);
        if (!t)
            return fail(LT_MODEL_ERR_TENSOR, err, errlen,
                        "%s: tensor \"%s\" is missing (expected shape %s)", dir, s->name, want);
        bool same = t->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++)
            same = t->shape[d] == s->shape[d];
        if (!same) {
            shape_str(got, sizeof(got), t->ndim, t->shape);
            return fail(LT_MODEL_ERR_TENSOR, err, errlen,
                        "%s: tensor \"%s\" has shape %s, the config implies %s", dir, s->name, got,
                        want);
        }
        if (t->dtype != LT_ST_F32 && t->dtype != LT_ST_F16 && t->dtype != LT_ST_BF16 &&
            t->dtype != LT_ST_F64)
            return fail(LT_MODEL_ERR_TENSOR, err, errlen,
                        "%s: tensor \"%s\" has dtype %s, expected F32, F16 or BF16", dir, s->name,
                        lt_st_dtype_name(t->dtype));
    }
    return LT_MODEL_OK;
}

lt_model_status lt_model_inspect(const char *dir, lt_model_summary *out, char *err,
                                 size_t errlen)
{
    lt_st_set *set = NULL;
    lt_wspec_list l = {0};
    if (!dir || !out)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "lt_model_inspect: NULL argument");
    memset(out, 0, sizeof(*out));
    lt_model_status st = lt_model_config_load(dir, &out->cfg, err, errlen);
    if (st)
        return st;
    lt_st_status sst = lt_st_set_open_dir(dir, &set, err, errlen);
    if (sst)
        return sst == LT_ST_ERR_IO ? LT_MODEL_ERR_IO : LT_MODEL_ERR_FORMAT;
    if ((st = lt_wspec_build(&out->cfg, gpt2_prefix_of(set), &l)) ||
        (st = lt_wspec_check(&l, set, dir, err, errlen)))
        goto out;
    bool seen[LT_ST_DTYPE_COUNT] = {0};
    for (int i = 0; i < l.n; i++) {
        const lt_st_tensor *t = lt_st_set_find(set, l.s[i].name, NULL);
        out->params[l.s[i].kind] += t->numel;
        out->total_params += t->numel;
        out->weight_bytes += t->end - t->begin;
        seen[t->dtype] = true;
    }
    for (int d = 0; d < LT_ST_DTYPE_COUNT; d++) {
        if (!seen[d])
            continue;
        size_t at = strlen(out->dtypes);
        snprintf(out->dtypes + at, sizeof(out->dtypes) - at, "%s%s", at ? "+" : "",
                 lt_st_dtype_name((lt_st_dtype)d));
    }
    out->n_files = lt_st_set_file_count(set);
    out->n_tensors = lt_st_set_count(set);
    out->n_ignored = out->n_tensors - l.n;
out:
    free(l.s);
    lt_st_set_close(set);
    return st;
}

/* ---- loading ----------------------------------------------------------------------------- */

static bool own(lt_model *m, lt_tensor *t)
{
    if (!t)
        return false;
    if (m->n_owned == m->cap_owned) {
        int nc = m->cap_owned ? 2 * m->cap_owned : 64;
        lt_tensor **no = realloc(m->owned, (size_t)nc * sizeof(*no));
        if (!no) {
            lt_tensor_free(t);
            return false;
        }
        m->owned = no;
        m->cap_owned = nc;
    }
    m->owned[m->n_owned++] = t;
    return true;
}

static float elem_f32(const uint8_t *p, lt_st_dtype dt)
{
    switch (dt) {
    case LT_ST_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case LT_ST_F64: {
        double d;
        memcpy(&d, p, 8);
        return (float)d;
    }
    case LT_ST_F16: return lt_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    case LT_ST_BF16: return lt_bf16_to_f32((uint16_t)(p[0] | p[1] << 8));
    default: return 0.0f;
    }
}

static lt_dtype st_to_lt(lt_st_dtype d)
{
    return d == LT_ST_F16 ? LT_F16 : d == LT_ST_BF16 ? LT_BF16 : LT_F32;
}

/* Uploads file tensor t (validated) into a new device tensor of dtype dt and shape s. */
static lt_tensor *upload(lt_model *m, const lt_st_tensor *t, const lt_wspec *s, lt_dtype dt,
                         char *err, size_t errlen)
{
    int64_t shape[3];
    int ndim = s->ndim;
    shape[0] = s->shape[0];
    shape[1] = s->shape[1];
    if (s->layout == LT_LAYOUT_QKV_BLOCKS) { /* [in, 3*out] -> [3, in, out] */
        ndim = 3;
        shape[0] = 3;
        shape[1] = s->shape[0];
        shape[2] = s->shape[1] / 3;
    }
    lt_tensor *dt_t = dt == LT_NF4 ? lt_tensor_new_nf4(m->dev, ndim, shape, m->nf4_dq)
                                   : lt_tensor_new(m->dev, dt, ndim, shape);
    if (!own(m, dt_t)) {
        fail(LT_MODEL_ERR_OOM, err, errlen, "%s: cannot allocate on the device: %s", s->name,
             lt_device_last_error(m->dev));
        return NULL;
    }
    lt_tensor_set_name(dt_t, s->name);
    size_t esz = lt_st_dtype_size(t->dtype);
    const uint8_t *src = t->data;
    uint8_t *perm = NULL;
    if (s->layout == LT_LAYOUT_QKV_BLOCKS) {
        int64_t in = s->shape[0], out3 = s->shape[1], o = out3 / 3;
        perm = malloc((size_t)(t->end - t->begin));
        if (!perm) {
            fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of host memory", s->name);
            return NULL;
        }
        for (int64_t r = 0; r < in; r++)
            for (int b = 0; b < 3; b++)
                memcpy(perm + ((size_t)(b * in + r) * (size_t)o) * esz,
                       src + ((size_t)(r * out3 + b * o)) * esz, (size_t)o * esz);
        src = perm;
    }
    lt_status cs;
    if (dt != LT_NF4 && st_to_lt(t->dtype) == dt && t->dtype != LT_ST_F64) {
        cs = lt_tensor_upload(dt_t, src, (size_t)(t->end - t->begin));
    } else {
        float *f = malloc((size_t)t->numel * sizeof(float) + 1);
        if (!f) {
            free(perm);
            fail(LT_MODEL_ERR_OOM, err, errlen, "%s: out of host memory", s->name);
            return NULL;
        }
#pragma omp parallel for schedule(static) if (t->numel >= (1 << 16))
        for (int64_t i = 0; i < t->numel; i++)
            f[i] = elem_f32(src + (size_t)i * esz, t->dtype);
        cs = lt_tensor_upload_f32(dt_t, f, t->numel);
        free(f);
    }
    free(perm);
    if (cs != LT_OK) {
        fail(LT_MODEL_ERR_DEVICE, err, errlen, "%s: upload failed: %s", s->name,
             lt_device_last_error(m->dev));
        return NULL;
    }
    m->weight_bytes += lt_tensor_bytes(dt_t);
    return dt_t;
}

static lt_tensor *view(lt_model *m, lt_tensor *p, int64_t off, int ndim, int64_t d0, int64_t d1)
{
    int64_t shape[2] = {d0, d1};
    lt_tensor *v = lt_tensor_view(p, off, ndim, shape);
    return own(m, v) ? v : NULL;
}

/* Points the model's slots at the uploaded tensor for spec s. */
static bool assign(lt_model *m, const lt_wspec *s, lt_tensor *t)
{
    const lt_model_config *c = &m->cfg;
    const char *n = s->name;
    const char *leaf = strrchr(n, '.');
    bool is_w = leaf && strcmp(leaf, ".weight") == 0;
    if (s->layer < 0) {
        if (strstr(n, "wte.") || strstr(n, "embed_tokens."))
            m->tok_emb = t;
        else if (strstr(n, "wpe."))
            m->pos_emb = t;
        else if (strcmp(n, "lm_head.weight") == 0)
            m->lm_head.w = t;
        else if (is_w)
            m->lnf_w = t;
        else
            m->lnf_b = t;
        return true;
    }
    lt_layer_weights *L = &m->layers[s->layer];
    lt_linear *lin = NULL;
    if (strstr(n, "input_layernorm") || strstr(n, ".ln_1.")) {
        *(is_w ? &L->ln1_w : &L->ln1_b) = t;
        return true;
    }
    if (strstr(n, "post_attention_layernorm") || strstr(n, ".ln_2.")) {
        *(is_w ? &L->ln2_w : &L->ln2_b) = t;
        return true;
    }
    if (strstr(n, ".c_attn.")) {
        const int64_t D = c->dim;
        for (int j = 0; j < 3; j++) {
            lt_linear *qkv = j == 0 ? &L->q : j == 1 ? &L->k : &L->v;
            if (is_w) {
                L->qkv_w = t;
                qkv->w = view(m, t, j * D * D, 2, D, D);
                qkv->conv1d = true;
                if (!qkv->w)
                    return false;
            } else {
                L->qkv_b = t;
                qkv->b = view(m, t, j * D, 1, D, 0);
                if (!qkv->b)
                    return false;
            }
        }
        return true;
    } else if (strstr(n, ".q_proj."))
        lin = &L->q;
    else if (strstr(n, ".k_proj."))
        lin = &L->k;
    else if (strstr(n, ".v_proj."))
        lin = &L->v;
    else if (strstr(n, ".o_proj.") || strstr(n, ".attn.c_proj."))
        lin = &L->o;
    else if (strstr(n, ".gate_proj."))
        lin = &L->gate;
    else if (strstr(n, ".up_proj.") || strstr(n, ".c_fc."))
        lin = &L->up;
    else if (strstr(n, ".down_proj.") || strstr(n, ".mlp.c_proj."))
        lin = &L->down;
    if (!lin)
        return false;
    *(is_w ? &lin->w : &lin->b) = t;
    if (is_w)
        lin->conv1d = s->layout == LT_LAYOUT_CONV1D;
    return true;
}

/* The rotary inverse frequencies of m's config (its rope_scaling applied) on the device. */
static lt_model_status rope_setup(lt_model *m, char *err, size_t errlen)
{
    m->rope_mscale = 1.0f;
    if (!lt_arch_is_llama_like(m->cfg.arch))
        return LT_MODEL_OK;
    const int64_t half = m->cfg.head_dim / 2;
    float *inv = malloc((size_t)half * sizeof(float));
    m->rope_inv = lt_tensor_new_1d(m->dev, LT_F32, half);
    if (!inv || !own(m, m->rope_inv)) {
        free(inv);
        return fail(LT_MODEL_ERR_OOM, err, errlen, "rotary frequencies: out of memory: %s",
                    lt_device_last_error(m->dev));
    }
    lt_tensor_set_name(m->rope_inv, "rope.inv_freq");
    lt_model_rope_freqs(&m->cfg, inv, &m->rope_mscale);
    lt_status s = lt_tensor_upload(m->rope_inv, inv, (size_t)half * sizeof(float));
    free(inv);
    if (s != LT_OK)
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "rotary frequencies: upload failed: %s",
                    lt_device_last_error(m->dev));
    return LT_MODEL_OK;
}

/* lt_model_source of a safetensors folder: the mapped tensor itself. */
static lt_model_status st_get(void *ctx, const lt_wspec *s, lt_st_tensor *t, char *err,
                              size_t errlen)
{
    const lt_st_tensor *f = lt_st_set_find(ctx, s->name, NULL);
    if (!f)
        return fail(LT_MODEL_ERR_TENSOR, err, errlen, "tensor \"%s\" is missing", s->name);
    *t = *f;
    return LT_MODEL_OK;
}

/* lt_model_source of a safetensors folder, after the upload: the file's pages of the tensor
 * leave the resident set, so loading keeps the peak RSS at what was uploaded, not at the size
 * of the files. */
static void st_put(void *ctx, const lt_wspec *s, const lt_st_tensor *t)
{
    const lt_st_file *file = NULL;
    (void)t;
    if (lt_st_set_find(ctx, s->name, &file))
        lt_st_evict(file, lt_st_find(file, s->name));
}

lt_model_status lt_model_load(const char *dir, lt_device *dev, int weight_dtype, lt_model **out,
                              char *err, size_t errlen)
{
    lt_st_set *set = NULL;
    lt_wspec_list l = {0};
    lt_model_config cfg;
    if (!dir || !dev || !out)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "lt_model_load: NULL argument");
    *out = NULL;
    if (lt_gguf_is_path(dir)) /* a GGUF file: streamed tensor by tensor */
        return lt_gguf_model_load(dir, dev, weight_dtype, out, err, errlen);
    lt_model_status st = lt_model_config_load(dir, &cfg, err, errlen);
    if (st)
        return st;
    lt_st_status sst = lt_st_set_open_dir(dir, &set, err, errlen);
    if (sst)
        return sst == LT_ST_ERR_IO ? LT_MODEL_ERR_IO : LT_MODEL_ERR_FORMAT;
    if (!(st = lt_wspec_build(&cfg, gpt2_prefix_of(set), &l)) &&
        !(st = lt_wspec_check(&l, set, dir, err, errlen))) {
        lt_model_source src = {set, dir, st_get, st_put};
        st = lt_model_load_from(&cfg, &l, &src, dev, weight_dtype, out, err, errlen);
    }
    free(l.s);
    lt_st_set_close(set);
    return st;
}

lt_model_status lt_model_load_from(const lt_model_config *cfg, const lt_wspec_list *l,
                                   const lt_model_source *src, lt_device *dev, int weight_dtype,
                                   lt_model **out, char *err, size_t errlen)
{
    const char *dir = src->label;
    const bool nf4 = weight_dtype == LT_NF4 || weight_dtype == LT_MODEL_DTYPE_NF4_DQ;
    if (weight_dtype != LT_MODEL_DTYPE_STORED && !nf4 &&
        (weight_dtype < 0 || weight_dtype >= LT_DTYPE_COUNT || weight_dtype == LT_I32))
        return fail(LT_MODEL_ERR_ARG, err, errlen, "lt_model_load: bad weight dtype %d",
                    weight_dtype);
    *out = NULL;
    lt_model *m = calloc(1, sizeof(*m));
    if (!m)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    m->dev = dev;
    m->cfg = *cfg;
    lt_model_status st = LT_MODEL_OK;
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof(lt_layer_weights));
    m->params = calloc((size_t)l->n, sizeof(lt_model_param));
    if (!m->layers || !m->params) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto err_model;
    }
    for (int i = 0; i < l->n; i++) {
        const lt_wspec *s = &l->s[i];
        lt_st_tensor tt;
        if ((st = src->get(src->ctx, s, &tt, err, errlen)))
            goto err_model;
        const lt_st_tensor *t = &tt;
        lt_dtype dt = st_to_lt(t->dtype);
        bool quantize = nf4 && s->ndim == 2 &&
                        (s->kind == LT_PARAM_ATTENTION || s->kind == LT_PARAM_MLP);
        if (quantize && s->layout != LT_LAYOUT_PLAIN) {
            st = fail(LT_MODEL_ERR_ARG, err, errlen,
                      "%s: tensor \"%s\" is a GPT-2 Conv1D weight ([in, out]%s); NF4 "
                      "quantization (QLoRA) supports Linear [out, in] weights only (Llama-family "
                      "models): use LoRA for this model",
                      dir, s->name, s->layout == LT_LAYOUT_QKV_BLOCKS ? ", fused q/k/v" : "");
            goto err_model;
        }
        if (s->ndim == 1)
            dt = LT_F32;
        else if (quantize)
            dt = LT_NF4;
        else if (weight_dtype != LT_MODEL_DTYPE_STORED && !nf4)
            dt = (lt_dtype)weight_dtype;
        m->nf4_dq = weight_dtype == LT_MODEL_DTYPE_NF4_DQ;
        lt_tensor *dtt = upload(m, t, s, dt, err, errlen);
        if (src->put)
            src->put(src->ctx, s, t);
        if (!dtt) {
            st = LT_MODEL_ERR_DEVICE;
            goto err_model;
        }
        if (!assign(m, s, dtt)) {
            st = fail(LT_MODEL_ERR_OOM, err, errlen, "%s: cannot place tensor \"%s\"", dir,
                      s->name);
            goto err_model;
        }
        lt_model_param *p = &m->params[m->n_params];
        p->name = strdup(s->name);
        if (!p->name) {
            st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
            goto err_model;
        }
        m->n_params++;
        p->tensor = dtt;
        p->kind = s->kind;
        p->layout = s->layout;
        p->layer = s->layer;
    }
    if (m->cfg.tie_embeddings)
        m->lm_head.w = m->tok_emb;
    if ((st = rope_setup(m, err, errlen)))
        goto err_model;
    *out = m;
    return LT_MODEL_OK;
err_model:
    lt_model_free(m);
    return st;
}

lt_model_status lt_model_host_embeddings(lt_model *m, char *err, size_t errlen)
{
    if (!m)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "host embeddings: no model");
    if (m->emb_host)
        return LT_MODEL_OK;
    lt_tensor *t = m->tok_emb;
    lt_dtype dt = t ? lt_tensor_dtype(t) : LT_F32;
    if (!t || m->lm_head.w == t || m->cfg.tie_embeddings)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "host embeddings: the input embedding table is tied to the output layer, "
                    "which needs it on the device");
    if (dt != LT_F32 && dt != LT_F16 && dt != LT_BF16)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "host embeddings: the table is stored as %s (F32, F16 or BF16 expected)",
                    lt_dtype_name(dt));
    size_t bytes = lt_tensor_bytes(t);
    void *h = malloc(bytes);
    if (!h)
        return fail(LT_MODEL_ERR_OOM, err, errlen,
                    "host embeddings: cannot allocate %zu bytes of host memory", bytes);
    if (lt_tensor_download(t, h, bytes) != LT_OK) {
        free(h);
        return fail(LT_MODEL_ERR_DEVICE, err, errlen, "host embeddings: %s",
                    lt_device_last_error(m->dev));
    }
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].tensor == t)
            m->params[i].tensor = NULL;
    for (int i = 0; i < m->n_owned; i++)
        if (m->owned[i] == t)
            m->owned[i] = NULL;
    lt_tensor_free(t);
    m->tok_emb = NULL;
    m->emb_host = h;
    m->emb_host_dtype = dt;
    m->emb_host_bytes = bytes;
    m->weight_bytes = m->weight_bytes > bytes ? m->weight_bytes - bytes : 0;
    lt_device_host_mem_add(m->dev, (int64_t)bytes);
    return LT_MODEL_OK;
}

size_t lt_model_host_embedding_bytes(const lt_model *m) { return m ? m->emb_host_bytes : 0; }

void lt_model_free(lt_model *m)
{
    if (!m)
        return;
    if (m->emb_host) {
        free(m->emb_host);
        lt_device_host_mem_add(m->dev, -(int64_t)m->emb_host_bytes);
    }
    /* views were added after their parents: free in reverse */
    for (int i = m->n_owned - 1; i >= 0; i--)
        lt_tensor_free(m->owned[i]);
    free(m->owned);
    for (int i = 0; i < m->n_params; i++)
        free((char *)m->params[i].name);
    free(m->layers);
    free(m->params);
    free(m);
}

const lt_model_config *lt_model_get_config(const lt_model *m) { return &m->cfg; }
lt_device *lt_model_get_device(const lt_model *m) { return m->dev; }
int lt_model_param_count(const lt_model *m) { return m->n_params; }

const lt_model_param *lt_model_param_at(const lt_model *m, int i)
{
    return (i >= 0 && i < m->n_params) ? &m->params[i] : NULL;
}

size_t lt_model_weight_bytes(const lt_model *m) { return m->weight_bytes; }
