/*
 * safetensors.h - reading and writing safetensors files, and sharded model folders.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of JSON describing
 * each tensor (dtype, shape, data_offsets relative to the data buffer), then the data buffer.
 * The reader maps the file and checks every header entry against the file before anyone can
 * touch tensor data: a known dtype, shape product * element size == end - begin, offsets inside
 * the data buffer, no two tensors overlapping, no holes, unique names, a sane header length,
 * valid UTF-8 JSON, and a string-to-string "__metadata__". A file that passes can be read
 * without further checks; one that fails is rejected whole, with a message naming the file,
 * the tensor and what was expected.
 *
 * This module knows bytes and shapes only; it never knows what a model is.
 */
#ifndef LATHE_SAFETENSORS_H
#define LATHE_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lt_st_status {
    LT_ST_OK = 0,
    LT_ST_ERR_IO,        /* the file could not be opened, mapped, read or written */
    LT_ST_ERR_FORMAT,    /* the bytes are not a valid safetensors file / index */
    LT_ST_ERR_NOT_FOUND, /* no tensor of that name */
    LT_ST_ERR_ARG,       /* a bad argument from the caller */
    LT_ST_ERR_OOM,
} lt_st_status;

const char *lt_st_status_str(lt_st_status s);

typedef enum lt_st_dtype {
    LT_ST_F64 = 0,
    LT_ST_F32,
    LT_ST_F16,
    LT_ST_BF16,
    LT_ST_I64,
    LT_ST_I32,
    LT_ST_I16,
    LT_ST_I8,
    LT_ST_U64,
    LT_ST_U32,
    LT_ST_U16,
    LT_ST_U8,
    LT_ST_BOOL,
    LT_ST_F8_E4M3,
    LT_ST_F8_E5M2,
    LT_ST_DTYPE_COUNT
} lt_st_dtype;

const char *lt_st_dtype_name(lt_st_dtype dt); /* "F32", "BF16", ... */
size_t lt_st_dtype_size(lt_st_dtype dt);      /* bytes per element */
/* Parses a header dtype name; returns false when unknown. */
bool lt_st_dtype_parse(const char *name, lt_st_dtype *out);

#define LT_ST_MAX_DIMS 8
/* Largest header accepted, as the format's reference implementation. */
#define LT_ST_MAX_HEADER_BYTES 100000000u

/* One tensor of an open file. Pointers stay valid until the file is closed. */
typedef struct lt_st_tensor {
    const char *name;
    lt_st_dtype dtype;
    int ndim;
    int64_t shape[LT_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte offsets within the data buffer, end exclusive */
    const void *data;    /* points into the mapping: end - begin bytes, little-endian */
} lt_st_tensor;

typedef struct lt_st_file lt_st_file;

/*
 * Open and validate a file (mmap, read-only). On success *out owns the mapping; close it with
 * lt_st_close. On failure *out is NULL and err (errlen bytes) names the file and the problem.
 */
lt_st_status lt_st_open(const char *path, lt_st_file **out, char *err, size_t errlen);

/*
 * Validate a file already in memory (tests, fuzzing). buf is borrowed: it must outlive the
 * handle. label names the buffer in messages.
 */
lt_st_status lt_st_parse(const void *buf, size_t len, const char *label, lt_st_file **out,
                         char *err, size_t errlen);

void lt_st_close(lt_st_file *f);

const char *lt_st_path(const lt_st_file *f); /* the path or label given at open */
int lt_st_count(const lt_st_file *f);        /* tensors, in data-offset order */
const lt_st_tensor *lt_st_at(const lt_st_file *f, int i);
const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name); /* NULL if absent */
/* Tells the kernel that t's bytes (a tensor of f) will not be read again soon: the pages of
 * a mapped file are dropped from the process's resident set (they are read back from the file
 * if touched again). Loading a model tensor by tensor this way keeps the peak RSS at what was
 * uploaded, not the size of the files. A no-op for buffers given to lt_st_parse. */
void lt_st_evict(const lt_st_file *f, const lt_st_tensor *t);
/* A "__metadata__" value, or NULL. */
const char *lt_st_metadata(const lt_st_file *f, const char *key);
int lt_st_metadata_count(const lt_st_file *f);
/* The i-th metadata pair; returns false when i is out of range. */
bool lt_st_metadata_at(const lt_st_file *f, int i, const char **key, const char **value);

/* ---- a model folder: model.safetensors, or model.safetensors.index.json and its shards ---- */

typedef struct lt_st_set lt_st_set;

/*
 * Open the weights of a Hugging Face folder: model.safetensors if present, else the shards
 * listed by model.safetensors.index.json (every shard validated; every weight_map entry must
 * name a tensor present in that shard; a tensor in two shards is an error). The caller owns
 * the set and closes it with lt_st_set_close.
 */
lt_st_status lt_st_set_open_dir(const char *dir, lt_st_set **out, char *err, size_t errlen);
void lt_st_set_close(lt_st_set *s);
int lt_st_set_count(const lt_st_set *s); /* tensors over all files */
const lt_st_tensor *lt_st_set_at(const lt_st_set *s, int i);
/* Finds a tensor by name; *file (may be NULL) receives the file holding it. */
const lt_st_tensor *lt_st_set_find(const lt_st_set *s, const char *name, const lt_st_file **file);
int lt_st_set_file_count(const lt_st_set *s);
const lt_st_file *lt_st_set_file(const lt_st_set *s, int i);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct lt_st_writer lt_st_writer;

lt_st_writer *lt_st_writer_new(void); /* NULL when out of memory; free with lt_st_writer_free */
void lt_st_writer_free(lt_st_writer *w);

/*
 * Add a tensor. data (bytes = numel * element size, little-endian) is borrowed: it must stay
 * valid until lt_st_writer_write returns. Names must be unique and not "__metadata__".
 */
lt_st_status lt_st_writer_add(lt_st_writer *w, const char *name, lt_st_dtype dt, int ndim,
                              const int64_t *shape, const void *data, size_t bytes, char *err,
                              size_t errlen);
/* Add (or replace) a "__metadata__" string; both strings are copied. */
lt_st_status lt_st_writer_set_metadata(lt_st_writer *w, const char *key, const char *value);

/*
 * Write the file atomically: a temporary file beside path, fsync, rename over path, fsync of
 * the folder. Tensors are laid out in the order added; the header is padded with spaces to a
 * multiple of 8 bytes.
 */
lt_st_status lt_st_writer_write(lt_st_writer *w, const char *path, char *err, size_t errlen);

#endif
