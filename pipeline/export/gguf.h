/*
 * gguf.h - the GGUF file format (version 3), as ggml's docs/gguf.md defines it: a writer that
 * collects key/values and tensors and writes them atomically, and a reader that validates a
 * whole file before anyone touches its data. Tensor element types: F32, F16, BF16 and Q8_0
 * (blocks of 32: an f16 scale d = max|x| / 127 and 32 int8 q = round(x / d)).
 *
 * Layout: "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key/values (u64-length strings,
 * u32 value type, value), the tensor infos (name, u32 n_dims, u64 ne[n_dims] in ggml order,
 * i.e. numpy's shape reversed, u32 ggml type, u64 offset into the data section), padding to
 * general.alignment (32 unless the file says otherwise), the data section (each tensor at an
 * aligned offset). Everything little-endian.
 *
 * This module knows bytes and keys only; what a model's keys mean is in gguf_model.h.
 * It never trusts a length, count or offset from a file before checking it against the file.
 */
#ifndef LATHE_GGUF_H
#define LATHE_GGUF_H

#include "model/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LT_GGUF_VERSION 3
#define LT_GGUF_ALIGNMENT 32
#define LT_GGUF_MAX_DIMS 4
#define LT_GGUF_Q8_0_BLOCK 32 /* elements per Q8_0 block (34 bytes: f16 d, 32 x int8) */

typedef enum lt_gguf_type {
    LT_GGUF_U8 = 0,
    LT_GGUF_I8 = 1,
    LT_GGUF_U16 = 2,
    LT_GGUF_I16 = 3,
    LT_GGUF_U32 = 4,
    LT_GGUF_I32 = 5,
    LT_GGUF_F32 = 6,
    LT_GGUF_BOOL = 7,
    LT_GGUF_STRING = 8,
    LT_GGUF_ARRAY = 9,
    LT_GGUF_U64 = 10,
    LT_GGUF_I64 = 11,
    LT_GGUF_F64 = 12,
} lt_gguf_type;

/* ggml tensor types lathe reads and writes. */
typedef enum lt_ggml_type {
    LT_GGML_F32 = 0,
    LT_GGML_F16 = 1,
    LT_GGML_Q8_0 = 8,
    LT_GGML_BF16 = 30,
} lt_ggml_type;

const char *lt_ggml_type_name(uint32_t t); /* "F32", "F16", "Q8_0", "BF16", "?" */
const char *lt_gguf_type_name(uint32_t t); /* "u32", "string", ... */
/* Bytes of numel elements of type t (numel a multiple of 32 for Q8_0); 0 for an unknown t. */
size_t lt_ggml_nbytes(lt_ggml_type t, int64_t numel);

/* Converts n floats into t's encoding at out (lt_ggml_nbytes(t, n) bytes; n % 32 == 0 for
 * Q8_0), and back. Q8_0 follows ggml's reference quantizer bit for bit. */
void lt_ggml_encode(lt_ggml_type t, const float *x, int64_t n, void *out);
void lt_ggml_decode(lt_ggml_type t, const void *in, int64_t n, float *out);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct lt_gguf_writer lt_gguf_writer;

lt_gguf_writer *lt_gguf_writer_new(void); /* NULL when out of memory; lt_gguf_writer_free */
void lt_gguf_writer_free(lt_gguf_writer *w);

/* Key/values, written in the order set. Each returns false when out of memory or when the
 * key is already set (a programmer error the caller reports). Values are copied. */
bool lt_gguf_set_str(lt_gguf_writer *w, const char *key, const char *val);
bool lt_gguf_set_u32(lt_gguf_writer *w, const char *key, uint32_t val);
bool lt_gguf_set_i32(lt_gguf_writer *w, const char *key, int32_t val);
bool lt_gguf_set_f32(lt_gguf_writer *w, const char *key, float val);
bool lt_gguf_set_bool(lt_gguf_writer *w, const char *key, bool val);
bool lt_gguf_set_arr_str(lt_gguf_writer *w, const char *key, const char *const *vals, size_t n);
bool lt_gguf_set_arr_i32(lt_gguf_writer *w, const char *key, const int32_t *vals, size_t n);
bool lt_gguf_set_arr_f32(lt_gguf_writer *w, const char *key, const float *vals, size_t n);

/*
 * Add a tensor of numpy shape shape[ndim] (outermost first; written reversed) whose data is
 * already in type t's encoding (bytes = lt_ggml_nbytes). data: when owned, the writer frees it
 * (malloc'd) with itself, even on failure; else it is borrowed until the write returns.
 */
lt_model_status lt_gguf_add_tensor(lt_gguf_writer *w, const char *name, lt_ggml_type t,
                                   int ndim, const int64_t *shape, void *data, size_t bytes,
                                   bool owned, char *err, size_t errlen);

/* Write the file: a temporary file beside path, fsync, rename over path, fsync the folder.
 * On any failure (a full disk included) the temporary file is removed and path untouched. */
lt_model_status lt_gguf_writer_write(lt_gguf_writer *w, const char *path, char *err,
                                     size_t errlen);

/* ---- reader ---------------------------------------------------------------------------- */

typedef struct lt_gguf_kv {
    char *key;
    lt_gguf_type type;     /* of the value; for arrays the array itself */
    lt_gguf_type arr_type; /* arrays: the items' type (never ARRAY: nested arrays refused) */
    uint64_t n;            /* arrays: item count */
    uint64_t u;            /* unsigned integer scalars and bool */
    int64_t i;             /* signed integer scalars */
    double f;              /* f32 / f64 scalars */
    char *str;             /* string scalar, NUL-terminated (may hold NULs inside: str_len) */
    size_t str_len;
    char **strs;           /* string arrays: n strings, NUL-terminated */
    const void *items;     /* numeric arrays: n items in the file (unaligned, little-endian) */
} lt_gguf_kv;

typedef struct lt_gguf_tensor {
    char *name;
    lt_ggml_type type;
    int ndim;
    int64_t ne[LT_GGUF_MAX_DIMS]; /* ggml order: ne[0] is the innermost (row length) */
    int64_t numel;
    uint64_t offset;              /* in the data section */
    size_t bytes;
    const void *data;             /* into the file's bytes */
} lt_gguf_tensor;

typedef struct lt_gguf_file lt_gguf_file;

/* Open and validate path (read whole or mapped). On failure *out is NULL and err names the
 * file, the key or tensor, and what was expected. Close with lt_gguf_close. */
lt_model_status lt_gguf_open(const char *path, lt_gguf_file **out, char *err, size_t errlen);
/* Validate a buffer already in memory (tests, fuzzing); buf is borrowed for the handle's
 * life. */
lt_model_status lt_gguf_parse(const void *buf, size_t len, const char *label, lt_gguf_file **out,
                              char *err, size_t errlen);
void lt_gguf_close(lt_gguf_file *f);

uint32_t lt_gguf_version(const lt_gguf_file *f);
int lt_gguf_kv_count(const lt_gguf_file *f);
const lt_gguf_kv *lt_gguf_kv_at(const lt_gguf_file *f, int i);
const lt_gguf_kv *lt_gguf_find_kv(const lt_gguf_file *f, const char *key); /* NULL if absent */
int lt_gguf_tensor_count(const lt_gguf_file *f);
const lt_gguf_tensor *lt_gguf_tensor_at(const lt_gguf_file *f, int i);
const lt_gguf_tensor *lt_gguf_find_tensor(const lt_gguf_file *f, const char *name);

/* Typed lookups: false when the key is absent or of another kind. get_int accepts every
 * integer type (range-checked into int64), get_float f32 and f64. */
bool lt_gguf_get_int(const lt_gguf_file *f, const char *key, int64_t *out);
bool lt_gguf_get_float(const lt_gguf_file *f, const char *key, double *out);
bool lt_gguf_get_bool(const lt_gguf_file *f, const char *key, bool *out);
const char *lt_gguf_get_str(const lt_gguf_file *f, const char *key);
/* Item i of a numeric array as int64 / double (the caller checks i < kv->n). */
int64_t lt_gguf_arr_int(const lt_gguf_kv *kv, uint64_t i);
double lt_gguf_arr_float(const lt_gguf_kv *kv, uint64_t i);

#endif
