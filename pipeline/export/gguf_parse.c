/*
 * gguf_parse.c - the validating GGUF reader. It checks every count, length, type, shape and
 * offset against the bytes that are there before it allocates or reads; a file that passes
 * can be used without further checks. It must never read outside the buffer, whatever the
 * input (tests/fuzz/fuzz_gguf.c holds it to that).
 */
#include "export/gguf.h"

#include <errno.h>
#include <fcntl.h>
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

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* ---- reader -------------------------------------------------------------------------------- */

struct lt_gguf_file {
    char *label;
    const uint8_t *buf;
    size_t len;
    void *map; /* mmap'd by lt_gguf_open, or NULL */
    size_t map_len;
    uint32_t version;
    lt_gguf_kv *kv;
    uint64_t n_kv;
    lt_gguf_tensor *t;
    uint64_t n_t;
};

typedef struct cur {
    const uint8_t *p;
    size_t left;
} cur;

static bool rd(cur *c, void *out, size_t n)
{
    if (c->left < n)
        return false;
    memcpy(out, c->p, n);
    c->p += n;
    c->left -= n;
    return true;
}

static bool rd_u32(cur *c, uint32_t *v)
{
    uint8_t b[4];
    if (!rd(c, b, 4))
        return false;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

static bool rd_u64(cur *c, uint64_t *v)
{
    uint8_t b[8];
    if (!rd(c, b, 8))
        return false;
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = *v << 8 | b[i];
    return true;
}

/* A string: u64 length + bytes, copied NUL-terminated into *out (malloc'd). */
static int rd_str(cur *c, char **out, size_t *len)
{
    uint64_t n;
    if (!rd_u64(c, &n) || n > c->left)
        return -1;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return -2;
    memcpy(s, c->p, (size_t)n);
    s[n] = 0;
    c->p += n;
    c->left -= (size_t)n;
    *out = s;
    if (len)
        *len = (size_t)n;
    return 0;
}

static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case LT_GGUF_U8:
    case LT_GGUF_I8:
    case LT_GGUF_BOOL: return 1;
    case LT_GGUF_U16:
    case LT_GGUF_I16: return 2;
    case LT_GGUF_U32:
    case LT_GGUF_I32:
    case LT_GGUF_F32: return 4;
    case LT_GGUF_U64:
    case LT_GGUF_I64:
    case LT_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Reads a scalar of type t (size checked) into kv's u / i / f. */
static void scalar_value(lt_gguf_kv *kv, uint32_t t, const uint8_t *p)
{
    uint64_t u = 0;
    size_t n = scalar_size(t);
    for (size_t k = n; k-- > 0;)
        u = u << 8 | p[k];
    kv->u = u;
    switch (t) {
    case LT_GGUF_I8: kv->i = (int8_t)u; break;
    case LT_GGUF_I16: kv->i = (int16_t)u; break;
    case LT_GGUF_I32: kv->i = (int32_t)u; break;
    case LT_GGUF_I64: kv->i = (int64_t)u; break;
    case LT_GGUF_F32: {
        float x;
        uint32_t v = (uint32_t)u;
        memcpy(&x, &v, 4);
        kv->f = x;
        break;
    }
    case LT_GGUF_F64: memcpy(&kv->f, &u, 8); break;
    default: kv->i = u > INT64_MAX ? INT64_MAX : (int64_t)u; break;
    }
}

static lt_model_status read_kv(lt_gguf_file *f, cur *c, lt_gguf_kv *kv, uint64_t idx,
                               char *err, size_t errlen)
{
    const char *L = f->label;
    uint32_t t;
    int r = rd_str(c, &kv->key, NULL);
    if (r)
        return r == -2 ? fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory")
                       : fail(LT_MODEL_ERR_FORMAT, err, errlen,
                              "%s: key/value %llu: key runs past the end of the file", L,
                              (unsigned long long)idx);
    if (!rd_u32(c, &t))
        return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: key %s: truncated value type", L,
                    kv->key);
    kv->type = (lt_gguf_type)t;
    if (t == LT_GGUF_STRING) {
        r = rd_str(c, &kv->str, &kv->str_len);
        if (r)
            return r == -2 ? fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory")
                           : fail(LT_MODEL_ERR_FORMAT, err, errlen,
                                  "%s: key %s: string runs past the end of the file", L, kv->key);
        return LT_MODEL_OK;
    }
    if (t == LT_GGUF_ARRAY) {
        uint32_t at;
        uint64_t n;
        if (!rd_u32(c, &at) || !rd_u64(c, &n))
            return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: key %s: truncated array header",
                        L, kv->key);
        kv->arr_type = (lt_gguf_type)at;
        kv->n = n;
        if (at == LT_GGUF_STRING) {
            if (n > c->left / 8) /* each string takes at least its 8-byte length */
                return fail(LT_MODEL_ERR_FORMAT, err, errlen,
                            "%s: key %s: %llu strings cannot fit in the %zu bytes left", L,
                            kv->key, (unsigned long long)n, c->left);
            if (!(kv->strs = calloc((size_t)n + 1, sizeof(char *))))
                return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
            for (uint64_t i = 0; i < n; i++)
                if ((r = rd_str(c, &kv->strs[i], NULL)))
                    return r == -2 ? fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory")
                                   : fail(LT_MODEL_ERR_FORMAT, err, errlen,
                                          "%s: key %s: string %llu runs past the end of the file",
                                          L, kv->key, (unsigned long long)i);
            return LT_MODEL_OK;
        }
        size_t es = scalar_size(at);
        if (!es)
            return fail(LT_MODEL_ERR_FORMAT, err, errlen,
                        "%s: key %s: array of type %u (%s) is not supported", L, kv->key, at,
                        lt_gguf_type_name(at));
        if (n > c->left / es)
            return fail(LT_MODEL_ERR_FORMAT, err, errlen,
                        "%s: key %s: %llu items of %zu bytes run past the end of the file", L,
                        kv->key, (unsigned long long)n, es);
        kv->items = c->p;
        c->p += n * es;
        c->left -= n * es;
        return LT_MODEL_OK;
    }
    size_t es = scalar_size(t);
    if (!es)
        return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: key %s: unknown value type %u", L,
                    kv->key, t);
    if (c->left < es)
        return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: key %s: truncated value", L,
                    kv->key);
    scalar_value(kv, t, c->p);
    if (t == LT_GGUF_BOOL && kv->u > 1)
        return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: key %s: bool value %llu (0 or 1)",
                    L, kv->key, (unsigned long long)kv->u);
    c->p += es;
    c->left -= es;
    return LT_MODEL_OK;
}

static lt_model_status read_tensor_info(lt_gguf_file *f, cur *c, lt_gguf_tensor *x,
                                        uint64_t idx, char *err, size_t errlen)
{
    const char *L = f->label;
    uint32_t nd, type;
    int r = rd_str(c, &x->name, NULL);
    if (r)
        return r == -2 ? fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory")
                       : fail(LT_MODEL_ERR_FORMAT, err, errlen,
                              "%s: tensor info %llu: name runs past the end of the file", L,
                              (unsigned long long)idx);
    if (!rd_u32(c, &nd))
        return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: tensor %s: truncated info", L,
                    x->name);
    if (nd < 1 || nd > LT_GGUF_MAX_DIMS)
        return fail(LT_MODEL_ERR_FORMAT, err, errlen,
                    "%s: tensor %s: %u dimensions (1 to 4 expected)", L, x->name, nd);
    x->ndim = (int)nd;
    x->numel = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if (!rd_u64(c, &ne))
            return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: tensor %s: truncated info", L,
                        x->name);
        if (ne == 0 || ne > (uint64_t)INT64_MAX / (uint64_t)x->numel ||
            (uint64_t)x->numel * ne > ((uint64_t)1 << 50))
            return fail(LT_MODEL_ERR_FORMAT, err, errlen,
                        "%s: tensor %s: dimension %u is %llu (1 to 2^50 elements in all expected)",
                        L, x->name, d, (unsigned long long)ne);
        x->ne[d] = (int64_t)ne;
        x->numel *= (int64_t)ne;
    }
    for (int d = x->ndim; d < LT_GGUF_MAX_DIMS; d++)
        x->ne[d] = 1;
    if (!rd_u32(c, &type) || !rd_u64(c, &x->offset))
        return fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: tensor %s: truncated info", L,
                    x->name);
    if (type != LT_GGML_F32 && type != LT_GGML_F16 && type != LT_GGML_BF16 &&
        type != LT_GGML_Q8_0)
        return fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                    "%s: tensor %s: ggml type %u is not one lathe reads (F32, F16, BF16, Q8_0)",
                    L, x->name, type);
    x->type = (lt_ggml_type)type;
    if (type == LT_GGML_Q8_0 && x->ne[0] % LT_GGUF_Q8_0_BLOCK)
        return fail(LT_MODEL_ERR_FORMAT, err, errlen,
                    "%s: tensor %s: Q8_0 rows of %lld elements (a multiple of 32 expected)", L,
                    x->name, (long long)x->ne[0]);
    x->bytes = lt_ggml_nbytes(x->type, x->numel);
    return LT_MODEL_OK;
}

static int cmp_off(const void *a, const void *b)
{
    const lt_gguf_tensor *x = *(const lt_gguf_tensor *const *)a, *y = *(const lt_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const lt_gguf_tensor *const *)a)->name,
                  (*(const lt_gguf_tensor *const *)b)->name);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(const lt_gguf_kv *const *)a)->key, (*(const lt_gguf_kv *const *)b)->key);
}

/* Unique names, aligned offsets, every tensor inside the data section, no overlaps. */
static lt_model_status check_layout(lt_gguf_file *f, uint64_t data_start, uint64_t align,
                                    char *err, size_t errlen)
{
    lt_model_status st = LT_MODEL_OK;
    size_t n = (size_t)(f->n_t > f->n_kv ? f->n_t : f->n_kv);
    const void **v = malloc((n + 1) * sizeof(void *));
    if (!v)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    for (uint64_t i = 0; i < f->n_kv; i++)
        v[i] = &f->kv[i];
    qsort(v, (size_t)f->n_kv, sizeof(void *), cmp_key);
    for (uint64_t i = 1; i < f->n_kv; i++)
        if (!strcmp(((const lt_gguf_kv *)v[i])->key, ((const lt_gguf_kv *)v[i - 1])->key)) {
            st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: key %s appears twice", f->label,
                      ((const lt_gguf_kv *)v[i])->key);
            goto out;
        }
    for (uint64_t i = 0; i < f->n_t; i++)
        v[i] = &f->t[i];
    qsort(v, (size_t)f->n_t, sizeof(void *), cmp_name);
    for (uint64_t i = 1; i < f->n_t; i++)
        if (!strcmp(((const lt_gguf_tensor *)v[i])->name,
                    ((const lt_gguf_tensor *)v[i - 1])->name)) {
            st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: tensor %s appears twice", f->label,
                      ((const lt_gguf_tensor *)v[i])->name);
            goto out;
        }
    qsort(v, (size_t)f->n_t, sizeof(void *), cmp_off);
    uint64_t data_len = f->len - data_start, end = 0;
    for (uint64_t i = 0; i < f->n_t; i++) {
        lt_gguf_tensor *x = (lt_gguf_tensor *)v[i];
        if (x->offset % align) {
            st = fail(LT_MODEL_ERR_FORMAT, err, errlen,
                      "%s: tensor %s: offset %llu is not a multiple of the alignment %llu",
                      f->label, x->name, (unsigned long long)x->offset,
                      (unsigned long long)align);
            goto out;
        }
        if (x->offset > data_len || x->bytes > data_len - x->offset) {
            st = fail(LT_MODEL_ERR_FORMAT, err, errlen,
                      "%s: tensor %s: bytes [%llu, +%zu) lie outside the %llu-byte data section",
                      f->label, x->name, (unsigned long long)x->offset, x->bytes,
                      (unsigned long long)data_len);
            goto out;
        }
        if (x->offset < end) {
            st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: tensor %s overlaps the one before",
                      f->label, x->name);
            goto out;
        }
        end = x->offset + x->bytes;
        x->data = f->buf + data_start + x->offset;
    }
out:
    free(v);
    return st;
}

lt_model_status lt_gguf_parse(const void *buf, size_t len, const char *label, lt_gguf_file **out,
                              char *err, size_t errlen)
{
    lt_model_status st;
    *out = NULL;
    lt_gguf_file *f = calloc(1, sizeof(*f));
    if (!f || !(f->label = strdup(label ? label : "(buffer)"))) {
        free(f);
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    }
    f->buf = buf;
    f->len = len;
    cur c = {buf, len};
    char magic[4];
    uint64_t n_t, n_kv;
    if (!rd(&c, magic, 4) || memcmp(magic, "GGUF", 4) != 0) {
        st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: not a GGUF file (no \"GGUF\" magic)",
                  f->label);
        goto err_file;
    }
    if (!rd_u32(&c, &f->version) || !rd_u64(&c, &n_t) || !rd_u64(&c, &n_kv)) {
        st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: truncated header", f->label);
        goto err_file;
    }
    if (f->version != 2 && f->version != 3) {
        st = fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                  "%s: GGUF version %u (lathe reads versions 2 and 3)", f->label, f->version);
        goto err_file;
    }
    /* each key/value takes at least 12 bytes, each tensor info at least 24 */
    if (n_kv > c.left / 12 || n_t > c.left / 24) {
        st = fail(LT_MODEL_ERR_FORMAT, err, errlen,
                  "%s: %llu key/values and %llu tensors cannot fit in a %zu-byte file", f->label,
                  (unsigned long long)n_kv, (unsigned long long)n_t, len);
        goto err_file;
    }
    f->kv = calloc((size_t)n_kv + 1, sizeof(*f->kv));
    f->t = calloc((size_t)n_t + 1, sizeof(*f->t));
    if (!f->kv || !f->t) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto err_file;
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        f->n_kv = i + 1;
        if ((st = read_kv(f, &c, &f->kv[i], i, err, errlen)))
            goto err_file;
    }
    for (uint64_t i = 0; i < n_t; i++) {
        f->n_t = i + 1;
        if ((st = read_tensor_info(f, &c, &f->t[i], i, err, errlen)))
            goto err_file;
    }
    uint64_t align = LT_GGUF_ALIGNMENT;
    const lt_gguf_kv *a = lt_gguf_find_kv(f, "general.alignment");
    if (a) {
        if (a->type != LT_GGUF_U32 || a->u == 0 || (a->u & (a->u - 1)) || a->u > 65536) {
            st = fail(LT_MODEL_ERR_FORMAT, err, errlen,
                      "%s: general.alignment must be a u32 power of two up to 65536", f->label);
            goto err_file;
        }
        align = a->u;
    }
    uint64_t data_start = align_up((uint64_t)(len - c.left), align);
    if (data_start > len) {
        if (n_t) {
            st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: no data section after the header",
                      f->label);
            goto err_file;
        }
        data_start = len;
    }
    if ((st = check_layout(f, data_start, align, err, errlen)))
        goto err_file;
    *out = f;
    return LT_MODEL_OK;
err_file:
    lt_gguf_close(f);
    return st;
}

lt_model_status lt_gguf_open(const char *path, lt_gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return fail(LT_MODEL_ERR_IO, err, errlen, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 24) {
        close(fd);
        return fail(sb.st_size < 24 ? LT_MODEL_ERR_FORMAT : LT_MODEL_ERR_IO, err, errlen,
                    "%s: not a regular file of at least 24 bytes", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot map: %s", path, strerror(errno));
    lt_model_status st = lt_gguf_parse(map, (size_t)sb.st_size, path, out, err, errlen);
    if (st) {
        munmap(map, (size_t)sb.st_size);
        return st;
    }
    (*out)->map = map;
    (*out)->map_len = (size_t)sb.st_size;
    return LT_MODEL_OK;
}

void lt_gguf_close(lt_gguf_file *f)
{
    if (!f)
        return;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        lt_gguf_kv *kv = &f->kv[i];
        free(kv->key);
        free(kv->str);
        if (kv->strs)
            for (uint64_t j = 0; j < kv->n && kv->strs[j]; j++)
                free(kv->strs[j]);
        free(kv->strs);
    }
    for (uint64_t i = 0; i < f->n_t; i++)
        free(f->t[i].name);
    free(f->kv);
    free(f->t);
    if (f->map)
        munmap(f->map, f->map_len);
    free(f->label);
    free(f);
}

uint32_t lt_gguf_version(const lt_gguf_file *f) { return f->version; }
int lt_gguf_kv_count(const lt_gguf_file *f) { return (int)f->n_kv; }
const lt_gguf_kv *lt_gguf_kv_at(const lt_gguf_file *f, int i)
{
    return i >= 0 && (uint64_t)i < f->n_kv ? &f->kv[i] : NULL;
}
int lt_gguf_tensor_count(const lt_gguf_file *f) { return (int)f->n_t; }
const lt_gguf_tensor *lt_gguf_tensor_at(const lt_gguf_file *f, int i)
{
    return i >= 0 && (uint64_t)i < f->n_t ? &f->t[i] : NULL;
}

const lt_gguf_kv *lt_gguf_find_kv(const lt_gguf_file *f, const char *key)
{
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].key && !strcmp(f->kv[i].key, key))
            return &f->kv[i];
    return NULL;
}

const lt_gguf_tensor *lt_gguf_find_tensor(const lt_gguf_file *f, const char *name)
{
    for (uint64_t i = 0; i < f->n_t; i++)
        if (f->t[i].name && !strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

static bool is_int_type(uint32_t t)
{
    return t <= LT_GGUF_I32 || t == LT_GGUF_U64 || t == LT_GGUF_I64;
}

bool lt_gguf_get_int(const lt_gguf_file *f, const char *key, int64_t *out)
{
    const lt_gguf_kv *kv = lt_gguf_find_kv(f, key);
    if (!kv || !is_int_type(kv->type) || (kv->type == LT_GGUF_U64 && kv->u > INT64_MAX))
        return false;
    *out = kv->i;
    return true;
}

bool lt_gguf_get_float(const lt_gguf_file *f, const char *key, double *out)
{
    const lt_gguf_kv *kv = lt_gguf_find_kv(f, key);
    if (!kv || (kv->type != LT_GGUF_F32 && kv->type != LT_GGUF_F64))
        return false;
    *out = kv->f;
    return true;
}

bool lt_gguf_get_bool(const lt_gguf_file *f, const char *key, bool *out)
{
    const lt_gguf_kv *kv = lt_gguf_find_kv(f, key);
    if (!kv || kv->type != LT_GGUF_BOOL)
        return false;
    *out = kv->u != 0;
    return true;
}

const char *lt_gguf_get_str(const lt_gguf_file *f, const char *key)
{
    const lt_gguf_kv *kv = lt_gguf_find_kv(f, key);
    return kv && kv->type == LT_GGUF_STRING ? kv->str : NULL;
}

int64_t lt_gguf_arr_int(const lt_gguf_kv *kv, uint64_t i)
{
    lt_gguf_kv tmp;
    size_t es = scalar_size(kv->arr_type);
    memset(&tmp, 0, sizeof(tmp));
    scalar_value(&tmp, kv->arr_type, (const uint8_t *)kv->items + i * es);
    return kv->arr_type == LT_GGUF_F32 || kv->arr_type == LT_GGUF_F64 ? (int64_t)tmp.f : tmp.i;
}

double lt_gguf_arr_float(const lt_gguf_kv *kv, uint64_t i)
{
    lt_gguf_kv tmp;
    size_t es = scalar_size(kv->arr_type);
    memset(&tmp, 0, sizeof(tmp));
    scalar_value(&tmp, kv->arr_type, (const uint8_t *)kv->items + i * es);
    return kv->arr_type == LT_GGUF_F32 || kv->arr_type == LT_GGUF_F64 ? tmp.f : (double)tmp.i;
}
