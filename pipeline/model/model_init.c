/*
 * model_init.c - writes a seeded random model as a Hugging Face folder.
 *
 * The tensor list comes from the same table the loader checks (model_specs.h), so whatever
 * this writes, lt_model_load reads back.
 */
#include "model_init.h"

#include "compute.h"
#include "generate.h"
#include "model_specs.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

void lt_model_init_defaults(lt_model_init_opts *o, lt_arch arch)
{
    memset(o, 0, sizeof(*o));
    o->arch = arch;
    o->dim = 64;
    o->n_layers = 2;
    o->n_heads = 4;
    o->n_kv_heads = 4;
    o->ffn = arch == LT_ARCH_GPT2 ? 4 * o->dim : 0; /* 0: derived from dim */
    o->vocab = 256;
    o->max_pos = 256;
    o->tie_embeddings = arch == LT_ARCH_GPT2;
    o->std = 0.02f;
    o->save_dtype = LT_F32;
}

static lt_model_status build_config(const lt_model_init_opts *o, lt_model_config *c, char *err,
                                    size_t errlen)
{
    memset(c, 0, sizeof(*c));
    const int64_t BIG = (int64_t)1 << 30;
    if (o->dim <= 0 || o->dim > BIG || o->n_layers <= 0 || o->n_layers > 4096 ||
        o->n_heads <= 0 || o->vocab <= 0 || o->vocab > BIG || o->max_pos <= 0 ||
        o->max_pos > BIG || o->ffn < 0 || o->ffn > BIG || o->n_kv_heads < 0)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "model init: sizes must be positive (dim, layers, heads, vocab, seq)");
    if (o->dim % o->n_heads)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "model init: dim %lld is not a multiple of "
                    "heads %lld", (long long)o->dim, (long long)o->n_heads);
    c->arch = o->arch;
    c->dim = o->dim;
    c->n_layers = o->n_layers;
    c->n_heads = o->n_heads;
    c->n_kv_heads = o->n_kv_heads ? o->n_kv_heads : o->n_heads;
    c->head_dim = o->dim / o->n_heads;
    c->vocab = o->vocab;
    c->max_pos = o->max_pos;
    c->tie_embeddings = o->tie_embeddings;
    c->rope_theta = 10000.0;
    if (o->arch == LT_ARCH_GPT2) {
        c->ffn = o->ffn ? o->ffn : 4 * o->dim;
        c->norm_eps = 1e-5f;
        c->qkv_bias = c->o_bias = c->mlp_bias = true;
        if (c->n_kv_heads != c->n_heads)
            return fail(LT_MODEL_ERR_ARG, err, errlen, "model init: gpt2 has no kv heads");
        c->bos_id = (int32_t)(o->vocab - 1);
    } else {
        c->ffn = o->ffn ? o->ffn : (8 * o->dim / 3 + 15) / 16 * 16;
        c->norm_eps = 1e-5f;
        c->qkv_bias = o->arch == LT_ARCH_QWEN2;
        c->bos_id = o->vocab > 1 ? 1 : 0;
        if (c->head_dim % 2)
            return fail(LT_MODEL_ERR_ARG, err, errlen,
                        "model init: head dim %lld must be even for rotary positions",
                        (long long)c->head_dim);
    }
    if (c->n_heads % c->n_kv_heads)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "model init: heads %lld is not a multiple of kv heads %lld",
                    (long long)c->n_heads, (long long)c->n_kv_heads);
    c->n_eos = 1;
    c->eos_ids[0] = o->arch == LT_ARCH_GPT2 ? (int32_t)(o->vocab - 1) : (o->vocab > 2 ? 2 : 0);
    snprintf(c->torch_dtype, sizeof(c->torch_dtype), "%s",
             o->save_dtype == LT_BF16  ? "bfloat16"
             : o->save_dtype == LT_F16 ? "float16"
                                       : "float32");
    return LT_MODEL_OK;
}

static float gauss(uint64_t *rng)
{
    double u1 = ((double)(lt_rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(lt_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static lt_model_status write_text_atomic(const char *path, const char *text, char *err,
                                         size_t errlen)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    lt_model_status st = LT_MODEL_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0) {
        st = fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    } else if (close(fd) != 0 || rename(tmp, path) != 0) {
        st = fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return st;
}

/* Fills data (numel elements of the save dtype) for one tensor. */
static void fill_tensor(const lt_wspec *s, int64_t numel, int dt, float std, uint64_t *rng,
                        void *data, int64_t n_layers)
{
    const char *leaf = strrchr(s->name, '.');
    bool is_bias = leaf && strcmp(leaf, ".bias") == 0;
    bool is_norm = s->kind == LT_PARAM_NORM;
    float sd = std;
    if (strstr(s->name, "c_proj.weight") || strstr(s->name, "o_proj") ||
        strstr(s->name, "down_proj"))
        sd = std / sqrtf(2.0f * (float)n_layers); /* GPT-2's scaled residual init */
    if (strstr(s->name, "wpe."))
        sd = 0.01f;
    for (int64_t i = 0; i < numel; i++) {
        float v = is_norm ? (is_bias ? 0.0f : 1.0f) : is_bias ? 0.0f : sd * gauss(rng);
        if (dt == LT_F32)
            memcpy((float *)data + i, &v, 4);
        else
            ((uint16_t *)data)[i] = dt == LT_F16 ? lt_f32_to_f16(v) : lt_f32_to_bf16(v);
    }
}

lt_model_status lt_model_init_random(const lt_model_init_opts *o, const char *dir,
                                     lt_model_config *cfg, char *err, size_t errlen)
{
    lt_model_config local;
    lt_model_config *c = cfg ? cfg : &local;
    lt_wspec_list l = {0};
    lt_st_writer *w = NULL;
    void **bufs = NULL;
    char *json = NULL, *path = NULL;
    if (!o || !dir)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "model init: NULL argument");
    if (o->save_dtype != LT_F32 && o->save_dtype != LT_F16 && o->save_dtype != LT_BF16)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "model init: dtype must be f32, f16 or bf16");
    lt_model_status st = build_config(o, c, err, errlen);
    if (st)
        return st;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot create: %s", dir, strerror(errno));
    if ((st = lt_wspec_build(c, "transformer.", &l)))
        goto out;
    w = lt_st_writer_new();
    bufs = calloc((size_t)l.n + 1, sizeof(void *));
    path = malloc(strlen(dir) + 32);
    if (!w || !bufs || !path) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    uint64_t rng = o->seed;
    const lt_st_dtype sdt = o->save_dtype == LT_F32   ? LT_ST_F32
                            : o->save_dtype == LT_F16 ? LT_ST_F16
                                                      : LT_ST_BF16;
    for (int i = 0; i < l.n; i++) {
        const lt_wspec *s = &l.s[i];
        int64_t numel = s->shape[0] * (s->ndim == 2 ? s->shape[1] : 1);
        size_t bytes = (size_t)numel * lt_st_dtype_size(sdt);
        bufs[i] = malloc(bytes + 1);
        if (!bufs[i]) {
            st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory for %s", s->name);
            goto out;
        }
        fill_tensor(s, numel, o->save_dtype, o->std > 0 ? o->std : 0.02f, &rng, bufs[i],
                    c->n_layers);
        if (lt_st_writer_add(w, s->name, sdt, s->ndim, s->shape, bufs[i], bytes, err, errlen)) {
            st = LT_MODEL_ERR_ARG;
            goto out;
        }
    }
    lt_st_writer_set_metadata(w, "format", "pt");
    sprintf(path, "%s/model.safetensors", dir);
    if (lt_st_writer_write(w, path, err, errlen)) {
        st = LT_MODEL_ERR_IO;
        goto out;
    }
    json = lt_model_config_to_json(c);
    if (!json) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    sprintf(path, "%s/config.json", dir);
    st = write_text_atomic(path, json, err, errlen);
out:
    for (int i = 0; bufs && i < l.n; i++)
        free(bufs[i]);
    free(bufs);
    free(json);
    free(path);
    free(l.s);
    lt_st_writer_free(w);
    return st;
}
