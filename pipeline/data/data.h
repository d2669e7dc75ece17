/*
 * data.h - the data workbench: import (read, validate, normalize, store), inspect, dedup,
 * filter, split and export of fine-tuning datasets.
 *
 * Every sample is stored in one normalized JSON shape (the "sample shape"):
 *   {"system": "...",                                  optional
 *    "turns": [{"role": "user"|"assistant"|"tool", "content": "..."}, ...],
 *    "chosen": "...", "rejected": "...",               preference pairs only
 *    "text": "...",                                    raw text only
 *    "question": "...", "choices": ["...", ...], "answer": N}   multiple choice only
 * Chat formats (alpaca, sharegpt, messages) fill turns; preference fills turns with the prompt
 * and chosen/rejected with the two answers; raw text fills text. Multiple choice keeps the
 * question, the choices and the 0-based index of the correct one, and also fills turns: a
 * user turn with the question and the lettered choices (lt_data_mc_prompt) and an assistant
 * turn with the correct choice's text. So training, dedup, filters, split (stratified by
 * "response": the correct choice) and the chat exports read it as a question and its answer,
 * and evaluation scores each choice as a continuation of that same user turn.
 *
 * Functions take an open store and return an lt_data_status; err receives a sentence naming
 * the file, line, field and what was expected. Nothing here prints to the terminal.
 */
#ifndef LATHE_DATA_H
#define LATHE_DATA_H

#include "store.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lt_data_status {
    LT_DATA_OK = 0,
    LT_DATA_USAGE,       /* bad options (a value out of range, an unknown format) */
    LT_DATA_IO,          /* a file could not be opened, read or written */
    LT_DATA_ENCODING,    /* not UTF-8: UTF-16, NUL bytes, a binary file */
    LT_DATA_EMPTY,       /* an empty file, or no good row at all */
    LT_DATA_STRICT,      /* --strict and at least one bad row */
    LT_DATA_INTERRUPTED, /* the interrupt flag was raised; nothing was kept */
    LT_DATA_NOT_FOUND,   /* no such dataset, version or row */
    LT_DATA_STORE,       /* the database reported an error */
    LT_DATA_NOMEM,
} lt_data_status;

const char *lt_data_status_str(lt_data_status s);

typedef enum lt_data_format {
    LT_DATA_FORMAT_AUTO = 0,
    LT_DATA_FORMAT_ALPACA,
    LT_DATA_FORMAT_SHAREGPT,
    LT_DATA_FORMAT_MESSAGES,
    LT_DATA_FORMAT_PREFERENCE,
    LT_DATA_FORMAT_TEXT,
    LT_DATA_FORMAT_MULTIPLE_CHOICE,
} lt_data_format;

/* "auto", "alpaca", ..., "multiple_choice" ("mc" is accepted too); lt_data_format_parse
 * returns -1 for an unknown name. */
const char *lt_data_format_name(lt_data_format f);
int lt_data_format_parse(const char *name);

/* Sample flags stored with each sample. */
enum { LT_SAMPLE_FLAG_CONTROL_CHARS = 1 };

#define LT_DATA_MAX_FIELD_MAP 16

typedef struct lt_data_import_opts {
    const char *name;              /* dataset name; NULL = the first file's base name */
    lt_data_format format;         /* LT_DATA_FORMAT_AUTO to detect from the first good row */
    const char *field_map[LT_DATA_MAX_FIELD_MAP]; /* "canonical=column", e.g. "output=answer" */
    int n_field_map;
    bool strict;                   /* any bad row fails the import, nothing kept */
    bool append;                   /* add rows to an existing dataset as a new version */
    int64_t max_row_bytes;         /* rows longer than this are bad rows; 0 = 16 MiB */
    int64_t max_chars;             /* samples over this many characters are bad; 0 = none */
    int64_t batch_rows;            /* rows per transaction; 0 = 20000 */
    bool no_signatures;            /* skip the MinHash signatures computed for dedup while
                                    * importing (on a second thread) */
    volatile sig_atomic_t *interrupt; /* raised by a signal handler: abandon, keep nothing */
    void (*progress)(void *ctx, const char *path, int64_t bytes_done, int64_t bytes_total,
                     int64_t rows);
    void *progress_ctx;
} lt_data_import_opts;

typedef struct lt_data_import_result {
    int64_t dataset_id;
    int64_t version_id;
    int version;
    lt_data_format format;
    int64_t n_rows;      /* good rows stored */
    int64_t n_bad;       /* rows rejected (each with a row issue) */
    int64_t n_warnings;  /* rows kept with a warning */
    int64_t bytes;       /* bytes read over all files */
    char name[256];      /* the dataset's name (given or taken from the first file) */
} lt_data_import_result;

void lt_data_import_opts_default(lt_data_import_opts *o);

/*
 * Imports files into a dataset (a new one, or with o->append a new version of an existing
 * one). File-level problems (missing, empty, UTF-16, binary) fail the import and keep
 * nothing. Row-level problems become row issues; the good rows are kept. A JSON array cut off
 * half way or a CSV quote never closed keeps the rows before it and records an issue.
 * On interruption or failure the partly written version is removed.
 */
lt_data_status lt_data_import(lt_store *st, const char *const *paths, int n_paths,
                              const lt_data_import_opts *o, lt_data_import_result *res,
                              char *err, size_t errlen);

/* Progress of dedup, filter and split: called on the calling thread only, every few thousand
 * rows and at the end of each phase, with done <= total and done non-decreasing within a
 * phase. Dedup's phases, in order: "signatures" (members read, signatures computed), "bands"
 * (LSH bands bucketed), "verify" (candidate pairs checked), "clusters" (members assigned a
 * keeper); filter has "rows"; split runs dedup's phases then "splits". */
typedef void (*lt_data_progress_fn)(void *ctx, const char *phase, int64_t done, int64_t total);

/* ---- dedup ---- */

typedef enum lt_data_keep { LT_DATA_KEEP_LONGEST = 0, LT_DATA_KEEP_FIRST } lt_data_keep;

typedef struct lt_data_dedup_opts {
    double threshold;    /* Jaccard similarity for near duplicates; 0.8 */
    int ngram;           /* word n-gram shingles; 5 */
    int char_shingles;   /* > 0: character k-gram shingles instead of words (CJK) */
    lt_data_keep keep;   /* which row of a cluster stays */
    bool exact_only;     /* skip MinHash */
    int threads;         /* 0 = all usable cores */
    int version;         /* 0 = latest */
    bool dry_run;        /* find clusters, write no version */
    /* OUT, for tests: verified near pairs (row a, row b, Jaccard) when non-NULL. Owned by
     * the caller after the call (free()). */
    int64_t **pairs_out;
    double **pair_sim_out;
    int64_t *n_pairs_out;
    /* OUT, for split and tests: when non-NULL, every member row of the input version and
     * the row index of its cluster's first row (its own row when alone). Both malloc'd, owned
     * by the caller; *n_groups_out entries. */
    int64_t **group_rows_out;
    int64_t **group_ids_out;
    int64_t *n_groups_out;
    lt_data_progress_fn progress; /* NULL = none */
    void *progress_ctx;
} lt_data_dedup_opts;

typedef struct lt_data_dedup_result {
    int64_t version_id;
    int version;
    int64_t n_in;          /* members of the input version */
    int64_t n_exact;       /* rows removed as exact duplicates */
    int64_t n_near;        /* rows removed as near duplicates */
    int64_t n_clusters;    /* clusters with more than one row */
    int64_t n_candidates;  /* LSH candidate pairs checked */
    int64_t n_signatures_computed; /* signatures computed now (the rest were stored) */
    int bands, rows;       /* LSH banding chosen for the threshold */
} lt_data_dedup_result;

void lt_data_dedup_opts_default(lt_data_dedup_opts *o);
lt_data_status lt_data_dedup(lt_store *st, const char *name, const lt_data_dedup_opts *o,
                             lt_data_dedup_result *res, char *err, size_t errlen);

/* ---- filter ---- */

#define LT_DATA_MAX_REGEX 8

typedef struct lt_data_filter_opts {
    int version;
    int64_t min_chars, max_chars;          /* 0 = no bound */
    double max_repeated_line_ratio;        /* share of lines that repeat an earlier line; <0 off */
    double max_repeated_ngram_ratio;       /* share of word 3-grams seen before; <0 off */
    double max_nonprintable_ratio;         /* share of control code points; <0 off */
    const char *regex[LT_DATA_MAX_REGEX];  /* "field=RE": drop rows whose field matches RE */
    int n_regex;
    lt_data_progress_fn progress; /* NULL = none */
    void *progress_ctx;
} lt_data_filter_opts;

typedef struct lt_data_filter_result {
    int64_t version_id;
    int version;
    int64_t n_in, n_dropped;
} lt_data_filter_result;

void lt_data_filter_opts_default(lt_data_filter_opts *o);
lt_data_status lt_data_filter(lt_store *st, const char *name, const lt_data_filter_opts *o,
                              lt_data_filter_result *res, char *err, size_t errlen);

/* ---- split ---- */

typedef struct lt_data_split_opts {
    int version;
    double val, test;        /* shares in [0, 1) */
    uint64_t seed;
    const char *stratify_by; /* a sample field ("system", "response", or a turn role) or NULL */
    lt_data_progress_fn progress; /* NULL = none */
    void *progress_ctx;
} lt_data_split_opts;

typedef struct lt_data_split_result {
    int64_t version_id;
    int64_t n_train, n_val, n_test;
} lt_data_split_result;

lt_data_status lt_data_split(lt_store *st, const char *name, const lt_data_split_opts *o,
                             lt_data_split_result *res, char *err, size_t errlen);

/* ---- export ---- */

/* Writes the members of a version (only one split when split is non-NULL) as JSONL in a
 * format: "alpaca", "sharegpt", "messages", "multiple_choice" ({"question", "choices",
 * "answer"}, "system" when set; only multiple-choice samples can be written so) or "jsonl"
 * (the sample shape). Written to a
 * temporary name and renamed. An existing out_path is replaced only when overwrite is true;
 * otherwise LT_DATA_USAGE, checked first and again, atomically, when the file is put in
 * place (a file created meanwhile is not clobbered). OUT *n_written. */
lt_data_status lt_data_export(lt_store *st, const char *name, int version, const char *split,
                              const char *format, const char *out_path, bool overwrite,
                              int64_t *n_written, char *err, size_t errlen);

/* ---- inspect ---- */

typedef struct lt_data_inspect_opts {
    int version;
    int top_n;                 /* repeated responses shown; 10 */
    int64_t max_len;           /* truncation share reported for this length; 0 = skip */
    /* Token counting hook: when set, token lengths are reported too (the tokenizer lives
     * in pipeline/tokenizer and is passed in by the caller). Returns the token count, <0 on
     * error. */
    long (*count_tokens)(void *ctx, const char *text);
    void *count_tokens_ctx;
} lt_data_inspect_opts;

/* Builds the report as a cJSON object (returned as void* to keep cJSON out of this header's
 * contract for callers that don't use it). OUT *report: a cJSON*, freed with cJSON_Delete. */
lt_data_status lt_data_inspect(lt_store *st, const char *name, const lt_data_inspect_opts *o,
                               void **report, char *err, size_t errlen);

/* ---- multiple choice ---- */

#define LT_DATA_MC_MAX_CHOICES 26 /* lettered A to Z */

/* The user turn of a multiple-choice sample: the question, a blank line, then one line per
 * choice, "A. first", "B. second", ... OUT: malloc'd string (caller frees), NULL when out
 * of memory. */
char *lt_data_mc_prompt(const char *question, const char *const *choices, int n_choices);

/* The text of a normalized sample as dedup and filters see it: system, turns, chosen,
 * rejected and text joined by newlines. OUT: malloc'd string, freed by the caller. NULL on
 * bad JSON. *response_out (may be NULL) gets the last assistant turn or chosen (malloc'd). */
char *lt_data_sample_text(const char *sample_json, char **response_out);

#endif
