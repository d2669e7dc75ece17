/*
 * eval.h - evaluating models on a dataset split: the base model zero-shot and k-shot, any
 * number of training runs and adapters, side by side, with the results and per-row samples
 * written to the store (evals, eval_samples; one evals row per system).
 *
 * Per system: loss and perplexity over the response tokens (the chat template and the
 * assistant-only labels training uses, so exp(mean loss) equals the training engine's
 * evaluation on the same split); greedy generation with the KV cache (settings recorded);
 * exact match, ROUGE-L, corpus BLEU, and when the references look like it, classification
 * tables and a JSON-validity rate (metrics.h); and a forgetting check, the perplexity on a
 * held-out general text dataset, reported as a change from the base model.
 *
 * Bad input (no such dataset or split, rows without a reference answer, a run trained on a
 * different base model) is an error before any model work. Nothing here prints.
 */
#ifndef LATHE_EVAL_H
#define LATHE_EVAL_H

#include "eval/metrics.h"
#include "store.h"

#include <signal.h>

typedef struct lt_eval_system {
    const char *label;   /* shown in tables; NULL = made from the fields below */
    int k_shot;          /* base model with k examples from the train split as prior turns */
    const char *adapter; /* a PEFT LoRA folder applied to the base model, or NULL */
    int64_t run_id;      /* a training run's newest checkpoint, or 0 */
} lt_eval_system;

#define LT_EVAL_MAX_SYSTEMS 16

typedef struct lt_eval_opts {
    const char *model;         /* base model folder; NULL = the first run's model */
    const char *device;        /* "auto", "cpu", "vulkan:N" */
    int threads;
    const char *dataset;       /* dataset name in the store */
    int version;               /* 0 = latest */
    const char *split;         /* "test" */
    int64_t max_rows;          /* 0 = every row of the split */
    int max_new_tokens;        /* 64 */
    int batch;                 /* rows per forward in generation and the loss pass (8);
                                * 1 runs one row at a time, with the same results */
    int em_flags;              /* LT_EM_* for exact match and labels */
    uint64_t seed;             /* k-shot draw */
    const char *chat_template; /* family override or NULL */
    const char *general;       /* forgetting check: a dataset of general text, or NULL */
    int64_t general_rows;      /* rows of it used; 0 = 64 */
    lt_eval_system systems[LT_EVAL_MAX_SYSTEMS];
    int n_systems;
    volatile sig_atomic_t *interrupt;
    /* called after each row of each system */
    void (*progress)(void *ctx, const char *system, int64_t done, int64_t total);
    void *ctx;
} lt_eval_opts;

void lt_eval_opts_default(lt_eval_opts *o);

/*
 * Runs every system and stores one eval per system. OUT eval_ids[n_systems] (the new evals'
 * ids, in the order of o->systems). err names what was wrong on failure; nothing is stored
 * for a system that did not finish.
 */
lt_eval_status lt_eval_run(lt_store *st, const lt_eval_opts *o, int64_t *eval_ids, char *err,
                           size_t errlen);

#endif
