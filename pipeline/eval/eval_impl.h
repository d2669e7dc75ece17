/*
 * eval_impl.h - what eval.c and eval_system.c share: a system's loaded model (the base, the
 * base with an adapter attached, or the base with a run's trained weights) and the model
 * folder hash runs record. Never included outside pipeline/eval.
 */
#ifndef LATHE_EVAL_IMPL_H
#define LATHE_EVAL_IMPL_H

#include "eval/eval.h"
#include "model/model.h"
#include "train/trainer.h"

typedef struct eval_loaded {
    lt_model *model;
    lt_trainer *trainer; /* a run's trained weights live in its state */
    void *adapter;       /* lt_lora_adapter when PEFT support is built */
    char model_dir[4096];
    char detail[512];    /* e.g. "checkpoint step-40.ckpt" */
} eval_loaded;

/* sha256 over config.json and the *.safetensors headers (sorted by name), as training records
 * it in runs.model_hash. false when the folder cannot be read. */
bool eval_model_hash(const char *dir, char hex[65]);

/* The model folder of a run (its recorded model_path), copied into out. */
lt_eval_status eval_run_model(lt_store *st, int64_t run_id, char *out, size_t n, char *err,
                              size_t errlen);

/* Checks, before any work, that sys can be evaluated on base model dir: the run exists, has a
 * checkpoint and was trained on a model with the same hash; the adapter folder exists. */
lt_eval_status eval_system_check(lt_store *st, const char *dir, const lt_eval_system *sys,
                                 char *err, size_t errlen);

/* Loads the model for sys onto dev. Free with eval_system_unload. */
lt_eval_status eval_system_load(lt_store *st, lt_device *dev, const char *dir,
                                const lt_eval_system *sys, eval_loaded *out, char *err,
                                size_t errlen);
void eval_system_unload(eval_loaded *l);

#endif
