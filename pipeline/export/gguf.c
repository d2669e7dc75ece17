/*
 * gguf.c - GGUF v3 bytes: element encodings (F16, BF16, Q8_0) and the writer (key/values
 * and tensors collected in memory, written through a temporary file, fsynced and renamed).
 * The validating reader is in gguf_parse.c.
 */
#include "export/gguf.h"

#include "compute.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* ---- element types ----------------------------------------------------------------------- */

const char *lt_ggml_type_name(uint32_t t)
{
    switch (t) {
    case LT_GGML_F32: return "F32";
    case LT_GGML_F16: return "F16";
    case LT_GGML_Q8_0: return "Q8_0";
    case LT_GGML_BF16: return "BF16";
    default: return "?";
    }
}

const char *lt_gguf_type_name(uint32_t t)
{
    static const char *names[] = {"u8",     "i8",    "u16",  "i16", "u32", "i32", "f32",
                                  "bool",   "string", "array", "u64", "i64", "f64"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

size_t lt_ggml_nbytes(lt_ggml_type t, int64_t numel)
{
    switch (t) {
    case LT_GGML_F32: return (size_t)numel * 4;
    case LT_GGML_F16:
    case LT_GGML_BF16: return (size_t)numel * 2;
    case LT_GGML_Q8_0: return (size_t)(numel / LT_GGUF_Q8_0_BLOCK) * 34;
    }
    return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

void lt_ggml_encode(lt_ggml_type t, const float *x, int64_t n, void *out)
{
    uint8_t *o = out;
    if (t == LT_GGML_F32) {
        memcpy(o, x, (size_t)n * 4);
    } else if (t == LT_GGML_F16 || t == LT_GGML_BF16) {
        for (int64_t i = 0; i < n; i++)
            put16(o + 2 * i, t == LT_GGML_F16 ? lt_f32_to_f16(x[i]) : lt_f32_to_bf16(x[i]));
    } else if (t == LT_GGML_Q8_0) {
        for (int64_t b = 0; b < n / LT_GGUF_Q8_0_BLOCK; b++) {
            const float *xb = x + b * LT_GGUF_Q8_0_BLOCK;
            uint8_t *ob = o + b * 34;
            float amax = 0.0f;
            for (int j = 0; j < LT_GGUF_Q8_0_BLOCK; j++)
                amax = fmaxf(amax, fabsf(xb[j]));
            const float d = amax / 127.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            put16(ob, lt_f32_to_f16(d));
            for (int j = 0; j < LT_GGUF_Q8_0_BLOCK; j++)
                ob[2 + j] = (uint8_t)(int8_t)roundf(xb[j] * id);
        }
    }
}

void lt_ggml_decode(lt_ggml_type t, const void *in, int64_t n, float *out)
{
    const uint8_t *p = in;
    if (t == LT_GGML_F32) {
        memcpy(out, p, (size_t)n * 4);
    } else if (t == LT_GGML_F16 || t == LT_GGML_BF16) {
        for (int64_t i = 0; i < n; i++)
            out[i] = t == LT_GGML_F16 ? lt_f16_to_f32(get16(p + 2 * i))
                                      : lt_bf16_to_f32(get16(p + 2 * i));
    } else if (t == LT_GGML_Q8_0) {
        for (int64_t b = 0; b < n / LT_GGUF_Q8_0_BLOCK; b++) {
            const uint8_t *pb = p + b * 34;
            float d = lt_f16_to_f32(get16(pb));
            for (int j = 0; j < LT_GGUF_Q8_0_BLOCK; j++)
                out[b * LT_GGUF_Q8_0_BLOCK + j] = d * (float)(int8_t)pb[2 + j];
        }
    }
}

/* ---- writer -------------------------------------------------------------------------------- */

typedef struct wtensor {
    char *name;
    lt_ggml_type type;
    int ndim;
    uint64_t ne[LT_GGUF_MAX_DIMS]; /* ggml order */
    void *data;
    size_t bytes;
    bool owned;
} wtensor;

struct lt_gguf_writer {
    uint8_t *kv; /* serialized key/values */
    size_t kv_n, kv_cap;
    uint64_t n_kv;
    char **keys;
    wtensor *t;
    int n_t, cap_t;
    bool oom;
};

lt_gguf_writer *lt_gguf_writer_new(void) { return calloc(1, sizeof(lt_gguf_writer)); }

void lt_gguf_writer_free(lt_gguf_writer *w)
{
    if (!w)
        return;
    for (uint64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    for (int i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (w->t[i].owned)
            free(w->t[i].data);
    }
    free(w->t);
    free(w->kv);
    free(w);
}

static bool kv_put(lt_gguf_writer *w, const void *p, size_t n)
{
    if (w->kv_n + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_n + n)
            cap *= 2;
        uint8_t *q = realloc(w->kv, cap);
        if (!q)
            return false;
        w->kv = q;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_n, p, n);
    w->kv_n += n;
    return true;
}

static bool kv_u32(lt_gguf_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return kv_put(w, b, 4);
}

static bool kv_u64(lt_gguf_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return kv_put(w, b, 8);
}

static bool kv_str(lt_gguf_writer *w, const char *s)
{
    size_t n = strlen(s);
    return kv_u64(w, n) && kv_put(w, s, n);
}

/* Starts a key/value: the key and its type. */
static bool kv_begin(lt_gguf_writer *w, const char *key, lt_gguf_type type)
{
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return false;
    char **k = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof(char *));
    if (!k)
        return false;
    w->keys = k;
    if (!(k[w->n_kv] = strdup(key)))
        return false;
    w->n_kv++;
    return kv_str(w, key) && kv_u32(w, (uint32_t)type);
}

bool lt_gguf_set_str(lt_gguf_writer *w, const char *key, const char *val)
{
    return kv_begin(w, key, LT_GGUF_STRING) && kv_str(w, val);
}

bool lt_gguf_set_u32(lt_gguf_writer *w, const char *key, uint32_t val)
{
    return kv_begin(w, key, LT_GGUF_U32) && kv_u32(w, val);
}

bool lt_gguf_set_i32(lt_gguf_writer *w, const char *key, int32_t val)
{
    return kv_begin(w, key, LT_GGUF_I32) && kv_u32(w, (uint32_t)val);
}

bool lt_gguf_set_f32(lt_gguf_writer *w, const char *key, float val)
{
    uint32_t u;
    memcpy(&u, &val, 4);
    return kv_begin(w, key, LT_GGUF_F32) && kv_u32(w, u);
}

bool lt_gguf_set_bool(lt_gguf_writer *w, const char *key, bool val)
{
    uint8_t b = val ? 1 : 0;
    return kv_begin(w, key, LT_GGUF_BOOL) && kv_put(w, &b, 1);
}

bool lt_gguf_set_arr_str(lt_gguf_writer *w, const char *key, const char *const *vals, size_t n)
{
    if (!kv_begin(w, key, LT_GGUF_ARRAY) || !kv_u32(w, LT_GGUF_STRING) || !kv_u64(w, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!kv_str(w, vals[i]))
            return false;
    return true;
}

bool lt_gguf_set_arr_i32(lt_gguf_writer *w, const char *key, const int32_t *vals, size_t n)
{
    if (!kv_begin(w, key, LT_GGUF_ARRAY) || !kv_u32(w, LT_GGUF_I32) || !kv_u64(w, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!kv_u32(w, (uint32_t)vals[i]))
            return false;
    return true;
}

bool lt_gguf_set_arr_f32(lt_gguf_writer *w, const char *key, const float *vals, size_t n)
{
    if (!kv_begin(w, key, LT_GGUF_ARRAY) || !kv_u32(w, LT_GGUF_F32) || !kv_u64(w, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &vals[i], 4);
        if (!kv_u32(w, u))
            return false;
    }
    return true;
}

lt_model_status lt_gguf_add_tensor(lt_gguf_writer *w, const char *name, lt_ggml_type t,
                                   int ndim, const int64_t *shape, void *data, size_t bytes,
                                   bool owned, char *err, size_t errlen)
{
    lt_model_status st = LT_MODEL_OK;
    int64_t numel = 1;
    if (ndim < 1 || ndim > LT_GGUF_MAX_DIMS) {
        st = fail(LT_MODEL_ERR_ARG, err, errlen, "%s: %d dimensions (GGUF takes 1 to 4)", name,
                  ndim);
        goto out;
    }
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    if (t == LT_GGML_Q8_0 && shape[ndim - 1] % LT_GGUF_Q8_0_BLOCK) {
        st = fail(LT_MODEL_ERR_ARG, err, errlen,
                  "%s: rows of %lld elements cannot be Q8_0 (a multiple of 32 is needed)", name,
                  (long long)shape[ndim - 1]);
        goto out;
    }
    if (lt_ggml_nbytes(t, numel) != bytes || bytes == 0) {
        st = fail(LT_MODEL_ERR_ARG, err, errlen, "%s: %zu bytes given, %s needs %zu", name,
                  bytes, lt_ggml_type_name(t), lt_ggml_nbytes(t, numel));
        goto out;
    }
    for (int i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) {
            st = fail(LT_MODEL_ERR_ARG, err, errlen, "%s: tensor added twice", name);
            goto out;
        }
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *q = realloc(w->t, (size_t)cap * sizeof(*q));
        if (!q) {
            st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
            goto out;
        }
        w->t = q;
        w->cap_t = cap;
    }
    wtensor *x = &w->t[w->n_t];
    memset(x, 0, sizeof(*x));
    if (!(x->name = strdup(name))) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    x->type = t;
    x->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        x->ne[i] = (uint64_t)shape[ndim - 1 - i];
    x->data = data;
    x->bytes = bytes;
    x->owned = owned;
    w->n_t++;
    return LT_MODEL_OK;
out:
    if (owned)
        free(data);
    return st;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static bool wr(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

static bool wr_u32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return wr(f, b, 4);
}

static bool wr_u64(FILE *f, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return wr(f, b, 8);
}

static bool wr_pad(FILE *f, uint64_t *pos, uint64_t align)
{
    static const uint8_t zeros[64];
    uint64_t to = align_up(*pos, align);
    bool ok = wr(f, zeros, (size_t)(to - *pos));
    *pos = to;
    return ok;
}

lt_model_status lt_gguf_writer_write(lt_gguf_writer *w, const char *path, char *err,
                                     size_t errlen)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16), *dirbuf = strdup(path);
    FILE *f = NULL;
    lt_model_status st = LT_MODEL_ERR_IO;
    if (!tmp || !dirbuf) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out_free;
    }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fail(st, err, errlen, "%s: cannot create a temporary file beside it: %s", path,
             strerror(errno));
        goto out_free;
    }
    mode_t mask = umask(0); /* mkstemp made it 0600: give it the mode the umask gives */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    if (!(f = fdopen(fd, "wb"))) {
        close(fd);
        fail(st, err, errlen, "%s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    uint64_t pos = 0;
    bool ok = wr(f, "GGUF", 4) && wr_u32(f, LT_GGUF_VERSION) && wr_u64(f, (uint64_t)w->n_t) &&
              wr_u64(f, w->n_kv) && wr(f, w->kv, w->kv_n);
    pos = 24 + w->kv_n;
    uint64_t off = 0;
    for (int i = 0; ok && i < w->n_t; i++) {
        const wtensor *x = &w->t[i];
        size_t nl = strlen(x->name);
        ok = wr_u64(f, nl) && wr(f, x->name, nl) && wr_u32(f, (uint32_t)x->ndim);
        for (int d = 0; ok && d < x->ndim; d++)
            ok = wr_u64(f, x->ne[d]);
        ok = ok && wr_u32(f, (uint32_t)x->type) && wr_u64(f, off);
        pos += 8 + nl + 4 + 8 * (uint64_t)x->ndim + 4 + 8;
        off = align_up(off + x->bytes, LT_GGUF_ALIGNMENT);
    }
    ok = ok && wr_pad(f, &pos, LT_GGUF_ALIGNMENT);
    for (int i = 0; ok && i < w->n_t; i++) {
        ok = wr(f, w->t[i].data, w->t[i].bytes);
        pos += w->t[i].bytes;
        ok = ok && wr_pad(f, &pos, LT_GGUF_ALIGNMENT);
    }
    if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fail(st, err, errlen, "%s: writing failed: %s", path, strerror(errno ? errno : EIO));
        fclose(f);
        goto out_unlink;
    }
    if (fclose(f) != 0) {
        fail(st, err, errlen, "%s: closing failed: %s", path, strerror(errno));
        goto out_unlink;
    }
    if (rename(tmp, path) != 0) {
        fail(st, err, errlen, "%s: cannot rename the temporary file into place: %s", path,
             strerror(errno));
        goto out_unlink;
    }
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    st = LT_MODEL_OK;
    goto out_free;
out_unlink:
    unlink(tmp);
out_free:
    free(tmp);
    free(dirbuf);
    return st;
}

