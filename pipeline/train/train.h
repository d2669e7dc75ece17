/*
 * train.h - a training run from a config: fit checks, the run's records in the store, the
 * loop (accumulation, schedule, clipping, evaluation, early stopping, NaN handling),
 * checkpoints with exact resume, signals and control requests.
 *
 * The loop talks to the numerics only through trainer.h, and to the terminal only through
 * the callbacks below (the CLI formats; nothing here prints).
 */
#ifndef LATHE_TRAIN_H
#define LATHE_TRAIN_H

#include "store.h"
#include "train/train_config.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct lt_train_progress {
    int64_t run_id;
    int64_t step, total_steps, epoch;
    double loss, lr, grad_norm, tokens_per_s, eta_s;
    bool is_eval;       /* an evaluation just finished: val_loss / val_ppl are set */
    double val_loss, val_ppl;
} lt_train_progress;

typedef struct lt_train_opts {
    const char *device;  /* overrides the config's device when non-NULL */
    int threads;         /* overrides the config's threads when > 0 */
    int64_t resume_run;  /* continue this run from its newest checkpoint; 0 = a new run */
    volatile sig_atomic_t *stop; /* raised by SIGINT/SIGTERM: finish the step, checkpoint, stop */
    int64_t stop_after_step; /* tests: behave as if stopped after this step (0 = never) */
    bool strict;         /* dpo/orpo: a bad preference pair is an error instead of skipped */
    void (*on_start)(void *ctx, int64_t run_id, const char *run_dir);
    void (*on_progress)(void *ctx, const lt_train_progress *p);
    void (*on_message)(void *ctx, const char *kind, const char *text); /* warnings, info */
    void *ctx;
} lt_train_opts;

typedef struct lt_train_result {
    int64_t run_id;
    char status[16];     /* "done", "stopped", "failed" */
    int64_t steps;       /* optimizer steps at the end */
    double last_loss;    /* NaN when no step ran */
    double best_val;     /* NaN when never evaluated */
    char message[512];
} lt_train_result;

/*
 * Runs (or resumes) training. Problems found before the first step (bad paths, a model and
 * dataset that do not fit, a damaged checkpoint) return false with err set and leave no
 * running run behind. Once the run exists the return is true and res->status says how it
 * ended ("failed" with res->message for NaN stops and device errors).
 */
bool lt_train_run(lt_store *st, const lt_train_config *c, const lt_train_opts *o,
                  lt_train_result *res, char *err, size_t errlen);

#endif
