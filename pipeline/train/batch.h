/*
 * batch.h - from stored samples to training batches: encoding (chat template, assistant-only
 * labels, raw text for pretraining), truncation, the per-epoch row plan (deterministic
 * shuffle, best-fit-decreasing packing) and the assembly of one lt_batch.
 *
 * Labels are shifted: labels[t] is the token at t+1 when that token counts (an assistant
 * token, or any token with train_on_prompt or pretraining), else -100; the last position of
 * every example is -100. Nothing here touches a device.
 *
 * The shuffle is Fisher-Yates driven by splitmix64 (Steele, Lea, Flood 2014) seeded with
 * seed + 0x9E3779B97F4A7C15 * (epoch + 1): for i from n-1 down to 1, j = next() % (i + 1),
 * swap. The same seed gives the same order on every machine, so a data position (epoch, row)
 * is enough to resume.
 */
#ifndef LATHE_TRAIN_BATCH_H
#define LATHE_TRAIN_BATCH_H

#include "store.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every example of a split, tokenized: ids and labels concatenated, example i at
 * [start[i], start[i+1]). */
typedef struct lt_examples {
    int32_t *ids;
    int32_t *labels;
    int64_t *start;       /* [n + 1] */
    int64_t n, cap_ex, n_tok, cap_tok;
    int64_t n_truncated;  /* examples cut to seq_len */
    int64_t n_skipped;    /* samples with nothing to learn (no labelled token) */
    int64_t n_labels;     /* labelled positions over all examples */
} lt_examples;

typedef struct lt_encode_opts {
    bool pretrain;        /* raw text, every token counts, eos appended */
    bool train_on_prompt; /* chat: every token counts */
    lt_chat_family family;/* chat family (LT_CHAT_NONE for pretrain on text) */
    int64_t seq_len;      /* longest example kept (longer ones are truncated) */
    int32_t eos_id;       /* -1 when the tokenizer has none */
} lt_encode_opts;

/* Encodes one normalized sample (the data workbench's sample shape) and appends it to ex.
 * A sample of the wrong kind (no turns for chat, no text for pretrain) is an error naming
 * what is missing; one with no labelled token is counted in n_skipped. */
bool lt_examples_add(lt_examples *ex, const lt_tokenizer *tok, const lt_encode_opts *o,
                     const char *sample_json, char *err, size_t errlen);

/*
 * Encodes every member of a dataset version in split (NULL = all members) in row order.
 * OUT hash_hex (65 bytes, may be NULL): sha256 over the samples' text hashes, the lineage
 * of what was trained on. err names the sample row of a failure.
 */
bool lt_examples_load(lt_store *st, int64_t version_id, const char *split,
                      const lt_tokenizer *tok, const lt_encode_opts *o, lt_examples *ex,
                      char *hash_hex, char *err, size_t errlen);
void lt_examples_free(lt_examples *ex);

/* The rows of one epoch: row r holds examples member[off[r] .. off[r+1]). */
typedef struct lt_rows {
    int64_t *member;
    int64_t *off; /* [n_rows + 1] */
    int64_t n_rows;
} lt_rows;

/* The splitmix64 step (state advanced, value returned). */
uint64_t lt_rows_rng_next(uint64_t *state);

/*
 * Plans an epoch. shuffle: example order shuffled as described above (epoch picks the
 * stream); otherwise row order. packing: best-fit decreasing into rows of seq_len tokens
 * (longest first, ties by shuffled position; each goes into the open row with the least room
 * that still fits it, else a new row), then the rows are shuffled with the same stream.
 */
bool lt_rows_plan(const lt_examples *ex, bool shuffle, bool packing, int64_t seq_len,
                  uint64_t seed, int64_t epoch, lt_rows *out);
void lt_rows_free(lt_rows *r);

/* Host buffers behind an lt_batch. */
typedef struct lt_batch_buf {
    lt_batch b;
    int32_t *ids, *labels, *positions, *segments;
    size_t cap;
    int64_t n_labels; /* labelled positions in the batch */
} lt_batch_buf;

/*
 * Assembles rows [row0, row0 + n) of a plan into buf->b. T is the longest row in the batch.
 * Unpacked rows are right-padded (pad_id, label -100) with positions and segments NULL;
 * packed rows carry positions restarting at every example and segment ids (padding gets a
 * segment of its own).
 */
bool lt_batch_build(const lt_examples *ex, const lt_rows *rows, int64_t row0, int64_t n,
                    bool packed, int32_t pad_id, lt_batch_buf *buf);
void lt_batch_buf_free(lt_batch_buf *buf);

#endif
