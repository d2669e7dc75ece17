/*
 * data_impl.h - what the data workbench's files share: the streaming file reader, the
 * row normalizer/validator, text normalization, hashing and MinHash. Not a public contract;
 * tests include it to check the pieces one by one.
 */
#ifndef LATHE_DATA_IMPL_H
#define LATHE_DATA_IMPL_H

#include "data.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- data_read.c: streaming readers for JSONL, JSON arrays and CSV ---- */

typedef enum lt_container { LT_CONTAINER_JSONL, LT_CONTAINER_ARRAY, LT_CONTAINER_CSV } lt_container;

typedef struct lt_reader lt_reader;

typedef enum lt_read_kind {
    LT_READ_ROW,  /* row->json holds the parsed object */
    LT_READ_BAD,  /* row->reason says why; row->raw is the (possibly truncated) raw text */
    LT_READ_EOF,
    LT_READ_RAW,  /* with lt_reader_defer_parse: row->raw is one JSON row to parse */
} lt_read_kind;

typedef struct lt_read_row {
    cJSON *json;        /* owned by the reader, freed at the next call */
    const char *raw;    /* the row's raw bytes, NUL-terminated; valid until the next call */
    size_t raw_len;
    int64_t line;       /* 1-based line where the row starts */
    int64_t column;     /* 1-based byte column of the problem for bad rows; 0 if none */
    char reason[512];
} lt_read_row;

/* Opens a file and checks it is non-empty UTF-8 text; detects the container from the name
 * and the first bytes. File-level problems return LT_DATA_ENCODING/EMPTY/IO with err set. */
lt_data_status lt_reader_open(const char *path, int64_t max_row_bytes, lt_reader **out,
                              char *err, size_t errlen);
lt_read_kind lt_reader_next(lt_reader *r, lt_read_row *row);
lt_container lt_reader_container(const lt_reader *r);
/* JSONL and JSON-array rows come back as LT_READ_RAW, to be parsed elsewhere with
 * lt_parse_row (CSV rows are still parsed, they are cheap). */
void lt_reader_defer_parse(lt_reader *r, bool on);
/* Takes ownership of the current row's JSON (the caller frees it with cJSON_Delete). */
cJSON *lt_reader_take_json(lt_reader *r);
/* Checks UTF-8 and parses one raw row as a JSON object. OUT *json (caller frees) on
 * LT_READ_ROW; reason and *column (1-based byte column, 0 if none) on LT_READ_BAD. */
lt_read_kind lt_parse_row(const char *raw, size_t n, int64_t line, cJSON **json, char *reason,
                          size_t rlen, int64_t *column);
int64_t lt_reader_bytes_read(const lt_reader *r);
int64_t lt_reader_file_size(const lt_reader *r);
/* The errno of a failed read (0 when none): a reader stops at a read error as at the end of
 * the file, so the caller must ask before it keeps what was read. An interrupted read
 * (EINTR, a signal) counts. */
int lt_reader_error(const lt_reader *r);
/* Valid after LT_READ_EOF: hex sha256 of every byte of the file. */
const char *lt_reader_sha256(lt_reader *r);
void lt_reader_close(lt_reader *r);

/* Returns the byte offset of the first invalid UTF-8 sequence in s[0..n), or -1. */
int64_t lt_utf8_invalid_at(const char *s, size_t n);
/* Number of code points in valid UTF-8. */
int64_t lt_utf8_count(const char *s, size_t n);

/* ---- data_format.c: detection, validation, normalization ---- */

typedef struct lt_field_map {
    const char *canon[LT_DATA_MAX_FIELD_MAP];
    const char *column[LT_DATA_MAX_FIELD_MAP];
    int n;
} lt_field_map;

/* Parses "canon=column" strings; err says which is malformed. */
bool lt_field_map_parse(lt_field_map *m, const char *const *specs, int n, char *err,
                        size_t errlen);

/* Detects the format of one parsed row; LT_DATA_FORMAT_AUTO when it fits none. */
lt_data_format lt_format_detect(const cJSON *row, const lt_field_map *m);

typedef struct lt_norm_sample {
    char *json;            /* normalized sample JSON (malloc'd) */
    char *text;            /* dedup text (malloc'd) */
    int64_t n_chars;
    int64_t n_response_chars;
    int n_turns;
    int flags;
    char warning[256];     /* non-empty when a warning applies (row kept) */
} lt_norm_sample;

/* Validates and normalizes one row in format f. Returns true with *out filled, or false with
 * reason set (the row is bad). Frees nothing of row. */
bool lt_format_normalize(const cJSON *row, lt_data_format f, const lt_field_map *m,
                         lt_norm_sample *out, char *reason, size_t reason_len);
void lt_norm_sample_free(lt_norm_sample *s);

/* ---- data_rowpool.c: rows validated and signed on worker threads ---- */

/* One row on its way to the store. Inputs are set by the reading thread; outputs by
 * lt_row_process, on any thread. lt_row_job_clear frees what it owns. */
typedef struct lt_row_job {
    lt_read_kind kind;      /* LT_READ_RAW (raw to parse), LT_READ_ROW (json), LT_READ_BAD */
    char *raw;              /* copy (truncated for bad rows); owned when raw_owned */
    bool raw_owned;
    size_t raw_len;
    cJSON *json;            /* owned */
    int64_t line, column;
    char reason[600];       /* why the row is bad */
    bool good;
    lt_norm_sample ns;      /* owned; ns.text is freed by lt_row_process once used */
    char hash[33];          /* hash of the normalized text */
    bool has_sig;
    uint16_t sig[128];      /* LT_MINHASH_PERM values, see lt_minhash */
} lt_row_job;

typedef struct lt_row_ctx {
    lt_data_format format;  /* known (not AUTO) */
    const lt_field_map *map;
    int64_t max_chars;
    bool sign;              /* compute the MinHash signature (word 5-grams) */
} lt_row_ctx;

void lt_row_process(const lt_row_ctx *c, lt_row_job *j);
void lt_row_job_clear(lt_row_job *j);

typedef struct lt_row_pool lt_row_pool;
/* Starts n_threads workers (0 = one per core). NULL if threads cannot start. */
lt_row_pool *lt_row_pool_new(int n_threads);
/* Starts processing jobs[0..n) on the workers and returns; lt_row_pool_wait waits. */
void lt_row_pool_run(lt_row_pool *p, const lt_row_ctx *c, lt_row_job *jobs, int n);
void lt_row_pool_wait(lt_row_pool *p);
void lt_row_pool_free(lt_row_pool *p);

/* The parameter key of the signatures computed at import (dedup's default shingles). */
#define LT_IMPORT_SIG_PARAMS "w5:p128:b16"

/* ---- data_text.c: normalization for exact dedup, shingles, MinHash ---- */

/* Normalizes text for duplicate detection into out (capacity >= n + 1): see data_text.c for
 * what is and is not folded. Returns the length written. */
size_t lt_text_normalize(const char *s, size_t n, char *out);
/* 128-bit hash of bytes as 32 hex digits. */
void lt_hash128_hex(const void *data, size_t n, char hex[33]);
uint64_t lt_hash64(const void *data, size_t n, uint64_t seed);

#define LT_MINHASH_PERM 128

typedef struct lt_shingle_opts {
    int ngram;         /* word n-grams (when char_shingles == 0) */
    int char_shingles; /* character k-grams when > 0 */
    bool unsorted;     /* skip sorting and duplicate removal (enough for MinHash) */
    bool normalized;   /* the text already went through lt_text_normalize */
} lt_shingle_opts;

/* Sorted, unique 64-bit shingle hashes of normalized text (unless o->unsorted). OUT *hashes
 * malloc'd. Returns the count (a text shorter than one shingle gives one shingle of the whole text; empty: 0). */
size_t lt_shingles(const char *text, size_t n, const lt_shingle_opts *o, uint64_t **hashes);
/* Jaccard similarity of two sorted unique sets. */
double lt_jaccard_sorted(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);
/* Jaccard similarity of two texts under the shingle options. */
double lt_text_jaccard(const char *a, const char *b, const lt_shingle_opts *o);
/* MinHash signature of a shingle set: LT_MINHASH_PERM minima of 32-bit permutations, of
 * which the top 16 bits are kept (b-bit MinHash: half the storage; a chance equality of two
 * 16-bit values only adds LSH candidates, which the Jaccard check removes). */
void lt_minhash(const uint64_t *shingles, size_t n, uint16_t sig[LT_MINHASH_PERM]);
/* Chooses bands x rows (b*r <= n_perm) minimizing the weighted false-positive plus
 * false-negative area at the threshold (weights in data_text.c). */
void lt_lsh_params(double threshold, int n_perm, int *bands, int *rows);

#endif
