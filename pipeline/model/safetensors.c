/*
 * safetensors.c - the safetensors reader (mmap + full header validation) and writer.
 *
 * Every check happens in parse_header() before a tensor becomes visible: after it succeeds,
 * each tensor's [begin, end) lies inside the data buffer and matches its dtype and shape, and
 * the tensors tile the buffer exactly. Nothing here ever reads tensor bytes on the way in.
 * The sharded-folder reader lives in safetensors_set.c.
 */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct lt_st_file {
    char *path;
    void *map;          /* the mapping (NULL for lt_st_parse buffers) */
    size_t map_bytes;
    const uint8_t *buf; /* the whole file */
    size_t len;
    lt_st_tensor *tensors; /* sorted by begin */
    int n_tensors;
    int *by_name; /* indices into tensors, sorted by name */
    char **meta_keys, **meta_values;
    int n_meta;
};

static const struct {
    const char *name;
    size_t size;
} dtype_table[LT_ST_DTYPE_COUNT] = {
    [LT_ST_F64] = {"F64", 8},   [LT_ST_F32] = {"F32", 4},         [LT_ST_F16] = {"F16", 2},
    [LT_ST_BF16] = {"BF16", 2}, [LT_ST_I64] = {"I64", 8},         [LT_ST_I32] = {"I32", 4},
    [LT_ST_I16] = {"I16", 2},   [LT_ST_I8] = {"I8", 1},           [LT_ST_U64] = {"U64", 8},
    [LT_ST_U32] = {"U32", 4},   [LT_ST_U16] = {"U16", 2},         [LT_ST_U8] = {"U8", 1},
    [LT_ST_BOOL] = {"BOOL", 1}, [LT_ST_F8_E4M3] = {"F8_E4M3", 1}, [LT_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *lt_st_status_str(lt_st_status s)
{
    switch (s) {
    case LT_ST_OK: return "ok";
    case LT_ST_ERR_IO: return "i/o error";
    case LT_ST_ERR_FORMAT: return "invalid safetensors data";
    case LT_ST_ERR_NOT_FOUND: return "not found";
    case LT_ST_ERR_ARG: return "bad argument";
    case LT_ST_ERR_OOM: return "out of memory";
    }
    return "unknown status";
}

const char *lt_st_dtype_name(lt_st_dtype dt)
{
    return (unsigned)dt < LT_ST_DTYPE_COUNT ? dtype_table[dt].name : "?";
}

size_t lt_st_dtype_size(lt_st_dtype dt)
{
    return (unsigned)dt < LT_ST_DTYPE_COUNT ? dtype_table[dt].size : 0;
}

bool lt_st_dtype_parse(const char *name, lt_st_dtype *out)
{
    for (int i = 0; i < LT_ST_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (lt_st_dtype)i;
            return true;
        }
    }
    return false;
}

static lt_st_status fail(lt_st_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lt_st_status fail(lt_st_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else
            return false;
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* A JSON number that is a non-negative integer exactly representable (< 2^53). */
static bool json_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return false;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static int cmp_begin(const void *a, const void *b)
{
    const lt_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_name_idx(const void *a, const void *b, void *base)
{
    const lt_st_tensor *t = base;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

static void free_contents(lt_st_file *f)
{
    for (int i = 0; i < f->n_tensors; i++)
        free((char *)f->tensors[i].name);
    free(f->tensors);
    free(f->by_name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
}

static lt_st_status parse_metadata(lt_st_file *f, const cJSON *m, char *err, size_t errlen)
{
    if (!cJSON_IsObject(m))
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: \"__metadata__\" must be an object of strings", f->path);
    int n = cJSON_GetArraySize(m);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values)
        return fail(LT_ST_ERR_OOM, err, errlen, "%s: out of memory", f->path);
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->string)
            return fail(LT_ST_ERR_FORMAT, err, errlen,
                        "%s: \"__metadata__\" value of \"%.64s\" is not a string", f->path,
                        e->string ? e->string : "");
        f->meta_keys[f->n_meta] = strdup(e->string);
        f->meta_values[f->n_meta] = strdup(e->valuestring);
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1])
            return fail(LT_ST_ERR_OOM, err, errlen, "%s: out of memory", f->path);
    }
    return LT_ST_OK;
}

static lt_st_status parse_entry(lt_st_file *f, const cJSON *e, uint64_t data_len,
                                lt_st_tensor *t, char *err, size_t errlen)
{
    const char *nm = e->string;
    if (!cJSON_IsObject(e))
        return fail(LT_ST_ERR_FORMAT, err, errlen, "%s: tensor \"%.128s\": entry is not an object",
                    f->path, nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd))
        return fail(LT_ST_ERR_FORMAT, err, errlen, "%s: tensor \"%.128s\": missing string \"dtype\"",
                    f->path, nm);
    if (!lt_st_dtype_parse(jd->valuestring, &t->dtype))
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: tensor \"%.128s\": unknown dtype \"%.32s\" (expected F64, F32, F16, BF16, "
                    "I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3 or F8_E5M2)",
                    f->path, nm, jd->valuestring);
    if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > LT_ST_MAX_DIMS)
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: tensor \"%.128s\": \"shape\" must be an array of at most %d integers",
                    f->path, nm, LT_ST_MAX_DIMS);
    uint64_t numel = 1;
    t->ndim = 0;
    for (const cJSON *d = js->child; d; d = d->next) {
        uint64_t v;
        if (!json_u64(d, &v) || v > (uint64_t)INT64_MAX)
            return fail(LT_ST_ERR_FORMAT, err, errlen,
                        "%s: tensor \"%.128s\": shape entries must be non-negative integers",
                        f->path, nm);
        if (__builtin_mul_overflow(numel, v, &numel))
            return fail(LT_ST_ERR_FORMAT, err, errlen,
                        "%s: tensor \"%.128s\": shape product overflows", f->path, nm);
        t->shape[t->ndim++] = (int64_t)v;
    }
    uint64_t b, en, bytes;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_u64(jo->child, &b) ||
        !json_u64(jo->child->next, &en))
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: tensor \"%.128s\": \"data_offsets\" must be [begin, end] integers",
                    f->path, nm);
    if (en < b || en > data_len)
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: tensor \"%.128s\": data_offsets [%llu, %llu] leave the data buffer of "
                    "%llu bytes",
                    f->path, nm, (unsigned long long)b, (unsigned long long)en,
                    (unsigned long long)data_len);
    if (__builtin_mul_overflow(numel, (uint64_t)lt_st_dtype_size(t->dtype), &bytes) ||
        bytes != en - b)
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: tensor \"%.128s\": %s shape with %llu elements needs %llu bytes but "
                    "data_offsets span %llu",
                    f->path, nm, lt_st_dtype_name(t->dtype), (unsigned long long)numel,
                    (unsigned long long)(numel * lt_st_dtype_size(t->dtype)),
                    (unsigned long long)(en - b));
    t->numel = (int64_t)numel;
    t->begin = b;
    t->end = en;
    t->name = strdup(nm);
    if (!t->name)
        return fail(LT_ST_ERR_OOM, err, errlen, "%s: out of memory", f->path);
    return LT_ST_OK;
}

/* Validates f->buf[0, f->len) and fills the tables. */
static lt_st_status parse_header(lt_st_file *f, char *err, size_t errlen)
{
    lt_st_status st = LT_ST_OK;
    cJSON *root = NULL;
    if (f->len < 8)
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: truncated: %zu bytes, less than the 8-byte header length", f->path,
                    f->len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | f->buf[i];
    if (n < 2 || n > LT_ST_MAX_HEADER_BYTES)
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: header length %llu is not in [2, %u]", f->path, (unsigned long long)n,
                    LT_ST_MAX_HEADER_BYTES);
    if (n > f->len - 8)
        return fail(LT_ST_ERR_FORMAT, err, errlen,
                    "%s: truncated: header length %llu but only %zu bytes follow", f->path,
                    (unsigned long long)n, f->len - 8);
    const char *hdr = (const char *)f->buf + 8;
    uint64_t data_len = f->len - 8 - n;
    if (hdr[0] != '{')
        return fail(LT_ST_ERR_FORMAT, err, errlen, "%s: header does not start with '{'", f->path);
    if (!utf8_valid((const uint8_t *)hdr, n) || memchr(hdr, 0, n))
        return fail(LT_ST_ERR_FORMAT, err, errlen, "%s: header is not valid UTF-8 text", f->path);
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, n, &end, false);
    if (!root || !cJSON_IsObject(root))
        st = fail(LT_ST_ERR_FORMAT, err, errlen, "%s: header is not a valid JSON object%s",
                  f->path, root ? "" : " (parse error)");
    if (st != LT_ST_OK)
        goto out_json;
    for (const char *p = end; p < hdr + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = fail(LT_ST_ERR_FORMAT, err, errlen,
                      "%s: unexpected bytes after the header's JSON object", f->path);
            goto out_json;
        }
    }
    int count = cJSON_GetArraySize(root);
    f->tensors = calloc((size_t)count + 1, sizeof(lt_st_tensor));
    f->by_name = calloc((size_t)count + 1, sizeof(int));
    if (!f->tensors || !f->by_name) {
        st = fail(LT_ST_ERR_OOM, err, errlen, "%s: out of memory", f->path);
        goto out_json;
    }
    bool seen_meta = false;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string) {
            st = fail(LT_ST_ERR_FORMAT, err, errlen, "%s: header entry without a name", f->path);
            goto out_json;
        }
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta) {
                st = fail(LT_ST_ERR_FORMAT, err, errlen, "%s: two \"__metadata__\" entries",
                          f->path);
                goto out_json;
            }
            seen_meta = true;
            if ((st = parse_metadata(f, e, err, errlen)) != LT_ST_OK)
                goto out_json;
            continue;
        }
        if ((st = parse_entry(f, e, data_len, &f->tensors[f->n_tensors], err, errlen)) != LT_ST_OK)
            goto out_json;
        f->n_tensors++;
    }
    /* Tile check: sorted by offset, each tensor starts where the previous ended. */
    qsort(f->tensors, (size_t)f->n_tensors, sizeof(lt_st_tensor), cmp_begin);
    uint64_t at = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        lt_st_tensor *t = &f->tensors[i];
        if (t->begin != at) {
            st = fail(LT_ST_ERR_FORMAT, err, errlen,
                      "%s: tensor \"%.128s\" starts at byte %llu of the data buffer, expected %llu "
                      "(%s)",
                      f->path, t->name, (unsigned long long)t->begin, (unsigned long long)at,
                      t->begin > at ? "a hole before it" : "it overlaps the previous tensor");
            goto out_json;
        }
        at = t->end;
        t->data = f->buf + 8 + n + t->begin;
    }
    if (at != data_len) {
        st = fail(LT_ST_ERR_FORMAT, err, errlen,
                  "%s: tensors cover %llu bytes but the data buffer holds %llu (%s)", f->path,
                  (unsigned long long)at, (unsigned long long)data_len,
                  "trailing bytes or a truncated file");
        goto out_json;
    }
    for (int i = 0; i < f->n_tensors; i++)
        f->by_name[i] = i;
    qsort_r(f->by_name, (size_t)f->n_tensors, sizeof(int), cmp_name_idx, f->tensors);
    for (int i = 1; i < f->n_tensors; i++) {
        if (strcmp(f->tensors[f->by_name[i]].name, f->tensors[f->by_name[i - 1]].name) == 0) {
            st = fail(LT_ST_ERR_FORMAT, err, errlen, "%s: tensor \"%.128s\" appears twice",
                      f->path, f->tensors[f->by_name[i]].name);
            goto out_json;
        }
    }
out_json:
    cJSON_Delete(root);
    return st;
}

static lt_st_file *file_new(const char *label)
{
    lt_st_file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->path = strdup(label ? label : "(buffer)");
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

lt_st_status lt_st_parse(const void *buf, size_t len, const char *label, lt_st_file **out,
                         char *err, size_t errlen)
{
    if (!out || (!buf && len))
        return fail(LT_ST_ERR_ARG, err, errlen, "lt_st_parse: NULL argument");
    *out = NULL;
    lt_st_file *f = file_new(label);
    if (!f)
        return fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
    f->buf = buf;
    f->len = len;
    lt_st_status st = parse_header(f, err, errlen);
    if (st != LT_ST_OK) {
        lt_st_close(f);
        return st;
    }
    *out = f;
    return LT_ST_OK;
}

lt_st_status lt_st_open(const char *path, lt_st_file **out, char *err, size_t errlen)
{
    lt_st_status st;
    if (!path || !out)
        return fail(LT_ST_ERR_ARG, err, errlen, "lt_st_open: NULL argument");
    *out = NULL;
    lt_st_file *f = file_new(path);
    if (!f)
        return fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = fail(LT_ST_ERR_IO, err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto err_file;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = fail(LT_ST_ERR_IO, err, errlen, "%s: not a regular file", path);
        goto err_fd;
    }
    f->len = (size_t)sb.st_size;
    if (f->len > 0) {
        f->map = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            st = fail(LT_ST_ERR_IO, err, errlen, "%s: cannot map: %s", path, strerror(errno));
            goto err_fd;
        }
        f->map_bytes = f->len;
        f->buf = f->map;
    }
    close(fd);
    if ((st = parse_header(f, err, errlen)) != LT_ST_OK)
        goto err_file;
    *out = f;
    return LT_ST_OK;
err_fd:
    close(fd);
err_file:
    lt_st_close(f);
    return st;
}

void lt_st_close(lt_st_file *f)
{
    if (!f)
        return;
    free_contents(f);
    if (f->map)
        munmap(f->map, f->map_bytes);
    free(f->path);
    free(f);
}

void lt_st_evict(const lt_st_file *f, const lt_st_tensor *t)
{
    if (!f || !t || !f->map || t->end <= t->begin)
        return;
    /* whole pages inside the tensor's bytes only: a neighbour sharing a page keeps it */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)t->data, hi = lo + (uintptr_t)(t->end - t->begin);
    lo = (lo + page - 1) & ~(page - 1);
    hi &= ~(page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

const char *lt_st_path(const lt_st_file *f) { return f->path; }
int lt_st_count(const lt_st_file *f) { return f->n_tensors; }

const lt_st_tensor *lt_st_at(const lt_st_file *f, int i)
{
    return (i >= 0 && i < f->n_tensors) ? &f->tensors[i] : NULL;
}

const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name)
{
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[f->by_name[mid]].name);
        if (c == 0)
            return &f->tensors[f->by_name[mid]];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *lt_st_metadata(const lt_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

int lt_st_metadata_count(const lt_st_file *f) { return f->n_meta; }

bool lt_st_metadata_at(const lt_st_file *f, int i, const char **key, const char **value)
{
    if (i < 0 || i >= f->n_meta)
        return false;
    *key = f->meta_keys[i];
    *value = f->meta_values[i];
    return true;
}

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct wentry {
    char *name;
    lt_st_dtype dtype;
    int ndim;
    int64_t shape[LT_ST_MAX_DIMS];
    const void *data;
    size_t bytes;
} wentry;

struct lt_st_writer {
    wentry *e;
    int n, cap;
    char **mk, **mv;
    int nm;
};

lt_st_writer *lt_st_writer_new(void) { return calloc(1, sizeof(lt_st_writer)); }

void lt_st_writer_free(lt_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->e[i].name);
    for (int i = 0; i < w->nm; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->e);
    free(w->mk);
    free(w->mv);
    free(w);
}

lt_st_status lt_st_writer_add(lt_st_writer *w, const char *name, lt_st_dtype dt, int ndim,
                              const int64_t *shape, const void *data, size_t bytes, char *err,
                              size_t errlen)
{
    if (!w || !name || !*name || (unsigned)dt >= LT_ST_DTYPE_COUNT || ndim < 0 ||
        ndim > LT_ST_MAX_DIMS || (ndim && !shape) || (bytes && !data))
        return fail(LT_ST_ERR_ARG, err, errlen, "safetensors writer: bad argument for \"%.128s\"",
                    name ? name : "(null)");
    if (strcmp(name, "__metadata__") == 0)
        return fail(LT_ST_ERR_ARG, err, errlen, "safetensors writer: reserved name __metadata__");
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
            return fail(LT_ST_ERR_ARG, err, errlen, "safetensors writer: bad shape for \"%.128s\"",
                        name);
    }
    if (numel * lt_st_dtype_size(dt) != bytes)
        return fail(LT_ST_ERR_ARG, err, errlen,
                    "safetensors writer: \"%.128s\" has %zu bytes, shape and dtype need %llu", name,
                    bytes, (unsigned long long)(numel * lt_st_dtype_size(dt)));
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return fail(LT_ST_ERR_ARG, err, errlen, "safetensors writer: \"%.128s\" added twice",
                        name);
    if (w->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 32;
        wentry *ne = realloc(w->e, (size_t)nc * sizeof(wentry));
        if (!ne)
            return fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
        w->e = ne;
        w->cap = nc;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    if (!e->name)
        return fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
    e->dtype = dt;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->data = data;
    e->bytes = bytes;
    w->n++;
    return LT_ST_OK;
}

lt_st_status lt_st_writer_set_metadata(lt_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return LT_ST_ERR_ARG;
    for (int i = 0; i < w->nm; i++) {
        if (strcmp(w->mk[i], key) == 0) {
            char *v = strdup(value);
            if (!v)
                return LT_ST_ERR_OOM;
            free(w->mv[i]);
            w->mv[i] = v;
            return LT_ST_OK;
        }
    }
    char **nk = realloc(w->mk, (size_t)(w->nm + 1) * sizeof(char *));
    if (!nk)
        return LT_ST_ERR_OOM;
    w->mk = nk;
    char **nv = realloc(w->mv, (size_t)(w->nm + 1) * sizeof(char *));
    if (!nv)
        return LT_ST_ERR_OOM;
    w->mv = nv;
    w->mk[w->nm] = strdup(key);
    w->mv[w->nm] = strdup(value);
    if (!w->mk[w->nm] || !w->mv[w->nm]) {
        free(w->mk[w->nm]);
        free(w->mv[w->nm]);
        return LT_ST_ERR_OOM;
    }
    w->nm++;
    return LT_ST_OK;
}

static char *build_header(const lt_st_writer *w, size_t *out_len)
{
    char *s = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    if (w->nm) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; m && i < w->nm; i++)
            if (!cJSON_AddStringToObject(m, w->mk[i], w->mv[i]))
                goto out;
        if (!m)
            goto out;
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wentry *e = &w->e[i];
        cJSON *o = cJSON_AddObjectToObject(root, e->name);
        if (!o || !cJSON_AddStringToObject(o, "dtype", lt_st_dtype_name(e->dtype)))
            goto out;
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        if (!sh || !of)
            goto out;
        for (int d = 0; d < e->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + e->bytes)));
        off += e->bytes;
    }
    char *txt = cJSON_PrintUnformatted(root);
    if (!txt)
        goto out;
    size_t n = strlen(txt), padded = (n + 7) / 8 * 8;
    s = malloc(padded + 1);
    if (s) {
        memcpy(s, txt, n);
        memset(s + n, ' ', padded - n);
        s[padded] = 0;
        *out_len = padded;
    }
    cJSON_free(txt);
out:
    cJSON_Delete(root);
    return s;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        b += k;
        n -= (size_t)k;
    }
    return true;
}

lt_st_status lt_st_writer_write(lt_st_writer *w, const char *path, char *err, size_t errlen)
{
    lt_st_status st = LT_ST_OK;
    if (!w || !path)
        return fail(LT_ST_ERR_ARG, err, errlen, "safetensors writer: NULL argument");
    size_t hlen = 0;
    char *hdr = build_header(w, &hlen);
    if (!hdr)
        return fail(LT_ST_ERR_OOM, err, errlen, "%s: out of memory building the header", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    char *dirbuf = strdup(path);
    if (!tmp || !dirbuf) {
        st = fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
        goto out_hdr;
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = fail(LT_ST_ERR_IO, err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        goto out_hdr;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    bool ok = write_all(fd, len8, 8) && write_all(fd, hdr, hlen);
    for (int i = 0; ok && i < w->n; i++)
        ok = write_all(fd, w->e[i].data, w->e[i].bytes);
    if (!ok || fsync(fd) != 0) {
        st = fail(LT_ST_ERR_IO, err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out_hdr;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        st = fail(LT_ST_ERR_IO, err, errlen, "%s: cannot finish writing: %s", path,
                  strerror(errno));
        unlink(tmp);
        goto out_hdr;
    }
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out_hdr:
    free(tmp);
    free(dirbuf);
    free(hdr);
    return st;
}
