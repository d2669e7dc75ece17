/*
 * checkpoint.h - the training checkpoint file: the loop's state (steps, data position, RNG,
 * early-stopping counters, config hash) and a table of named tensors (trainable parameters
 * and AdamW moments), with a checksum.
 *
 * Layout (little-endian), version 1:
 *   "LATHECKP"  8 bytes magic
 *   u32 version, u32 n_tensors
 *   the state: the fields of lt_ckpt_state in order, i64/f64 each, config_hash as 64 bytes
 *   n_tensors times: u32 name_len, name, u32 dtype (lt_dtype), u32 ndim, u64 dims[ndim],
 *                    u64 n_bytes, the bytes as stored on the device
 *   sha256 of everything before it (32 bytes)
 * Written to PATH.tmp, fsynced, renamed over PATH and the folder fsynced, so a crash leaves
 * either the old file or the new one. A file whose checksum fails is refused before anything
 * is loaded.
 */
#ifndef LATHE_TRAIN_CHECKPOINT_H
#define LATHE_TRAIN_CHECKPOINT_H

#include "compute.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LT_CKPT_VERSION 1
#define LT_CKPT_HISTORY 16

typedef struct lt_ckpt_state {
    int64_t step;             /* optimizer steps taken (applied or skipped) */
    int64_t adam_step;        /* updates applied (the optimizer's own count) */
    int64_t epoch;            /* data position: epoch and next row of its plan */
    int64_t row;
    int64_t round;            /* freeze "half": the current round */
    uint64_t rng;             /* the loop's random state */
    int64_t tokens_seen;      /* labelled tokens trained on */
    double best_val;          /* best validation loss so far, NaN when none */
    int64_t best_step;
    int64_t evals_since_best; /* for patience */
    int64_t nan_run;          /* consecutive skipped steps */
    int64_t n_hist;           /* evals in the history below (at most LT_CKPT_HISTORY) */
    double hist_val[LT_CKPT_HISTORY];   /* recent validation losses, oldest first */
    double hist_train[LT_CKPT_HISTORY]; /* train loss (mean since the previous eval) */
    double train_loss_sum;    /* step losses summed since the last eval */
    int64_t train_loss_n;
    char config_hash[65];
} lt_ckpt_state;

typedef struct lt_ckpt_tensor {
    const char *name;
    lt_tensor *t;
} lt_ckpt_tensor;

/* Writes a checkpoint (downloading each tensor). err names the file and what failed. */
bool lt_ckpt_write(const char *path, const lt_ckpt_state *s, const lt_ckpt_tensor *ts, int n,
                   char *err, size_t errlen);

/* Checks magic, version and checksum, and reads the state. */
bool lt_ckpt_read_state(const char *path, lt_ckpt_state *s, char *err, size_t errlen);

/* Verifies the file, then uploads every tensor of ts from it: each must be present with the
 * same dtype and shape; a tensor in the file that ts does not name is an error too. */
bool lt_ckpt_load(const char *path, const lt_ckpt_tensor *ts, int n, char *err, size_t errlen);

#endif
