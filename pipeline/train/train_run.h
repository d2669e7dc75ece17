/*
 * train_run.h - the state of one training run shared by train.c (setup, fit checks, run
 * records) and train_loop.c (steps, evaluation, checkpoints, control). Internal to
 * pipeline/train.
 */
#ifndef LATHE_TRAIN_RUN_H
#define LATHE_TRAIN_RUN_H

#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/schedule.h"
#include "train/train.h"
#include "train/trainer.h"

#include <stdio.h>

#define METRIC_BUF 256

typedef struct trun_pref trun_pref; /* preference objectives (train_pref.c) */

typedef struct trun {
    lt_store *st;
    const lt_train_config *c;
    const lt_train_opts *o;
    lt_train_result *res;
    int64_t run_id;
    char dir[4096];          /* WORKSPACE/runs/<id> */

    lt_device *dev;
    lt_model *model;
    lt_tokenizer *tok;
    lt_trainer *tr;
    bool *train_layer;       /* freeze: layers training this round */
    int n_layers;
    int32_t pad_id;
    int64_t seq_len;         /* the config's, or the model's context (at most 2048) */

    lt_examples train, val;  /* preference objectives: the chosen sides */
    trun_pref *pref;         /* non-NULL for dpo / orpo */
    bool has_val;
    lt_rows rows;            /* the current epoch's plan */
    lt_rows val_rows;
    lt_batch_buf buf;
    int64_t steps_per_epoch, total_steps;
    lt_schedule sched;

    lt_ckpt_state s;         /* everything a checkpoint restores */
    int64_t last_ckpt_step;  /* step of the newest checkpoint written (-1 none) */
    char ckpt_error[1200];   /* why a checkpoint could not be written ("" none): fails the run */

    lt_store_metric metrics[METRIC_BUF];
    int n_metrics;
    double last_flush;       /* monotonic seconds */
    double t_start;
    int64_t tokens_since_start;
    int ckpt_auto;           /* "auto" checkpointing decided: -1 not yet, 0 off, 1 on */
    char ckpt_note[512];     /* that decision, until the run exists to record it */
} trun;

/* Monotonic seconds. */
double trun_now(void);
/* Sends a message to the caller and records it as a run event. */
void trun_event(trun *r, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes buffered metrics now. */
void trun_flush_metrics(trun *r);
/* (Re)creates the trainer for the current freeze round (or once for other methods). */
bool trun_make_trainer(trun *r, char *err, size_t errlen);
/* Newest checkpoint of the run: loads it into the trainer and r->s. false with err when the
 * run has one that cannot be used; *found false when it has none. */
bool trun_resume(trun *r, bool *found, char *err, size_t errlen);
/* The loop until done, stopped or failed; fills r->res. */
void trun_loop(trun *r);
/* Buffers one metric of the current step. */
void trun_metric(trun *r, const char *name, double v);

/* ---- preference objectives (train_pref.c) ---- */

bool trun_pref_enabled(const lt_train_config *c);
/* Reads, checks and encodes the pairs of split (NULL = all members) into r->train (val:
 * r->val) and the rejected sides; every bad row is reported (a run event and a message) and
 * skipped, or is an error under strict. No usable training pair is an error. OUT hash_hex
 * (may be NULL) as lt_examples_load. Allocates r->pref. */
bool trun_pref_load(trun *r, int64_t version_id, const char *split, const lt_encode_opts *eo,
                    bool val, bool strict, char *hash_hex, char *err, size_t errlen);
/* The objective on r->tr; DPO: every pair's reference log-probs, before any update. */
bool trun_pref_start(trun *r, char *err, size_t errlen);
/* After the trainer was remade. */
void trun_pref_set_trainer(trun *r);
/* Records the bad rows found while loading as events of the (now existing) run. */
void trun_pref_report(trun *r);
/* One optimizer step over up to grad_accum micro-batches of pairs (as one_step). */
bool trun_pref_step(trun *r, double *loss, double *gnorm, bool *skipped, int64_t *n_tok,
                    char *err, size_t errlen);
/* The last step's reward metrics. */
void trun_pref_metrics(trun *r);
/* Mean preference loss over the validation pairs; records the validation reward metrics. */
bool trun_pref_evaluate(trun *r, double *val_loss);
void trun_pref_free(trun *r);

#endif
