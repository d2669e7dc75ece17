/*
 * run_load.h - a training run's model as it stands at one of its checkpoints: the base model
 * the run recorded, a trainer of the run's own method (full, freeze, LoRA) on it, and the
 * checkpoint's parameters loaded into that trainer. For exporting (and anything else that
 * needs "the trained model of run N") without re-implementing the run's setup.
 */
#ifndef LATHE_RUN_LOAD_H
#define LATHE_RUN_LOAD_H

#include "store.h"
#include "train/trainer.h"

typedef struct lt_run_loaded {
    lt_model *model;       /* owned */
    lt_trainer *trainer;   /* owned; its LoRA adapter (if any) is attached to model */
    const struct lt_lora_adapter *adapter; /* the trainer's adapter (LoRA runs), else NULL */
    lt_train_method method;
    char model_dir[4096];  /* the base model folder the run recorded */
    char ckpt_path[4400];
    int64_t ckpt_id, ckpt_step;
    char ckpt_kind[16];
} lt_run_loaded;

/*
 * Load run_id at a checkpoint: which is "last" (NULL: the largest step), "best" (the one
 * kind "best", else the lowest validation loss) or a step number. On success the caller owns
 * out's model and trainer and frees them with lt_run_unload. On failure err says what is
 * missing (no such run, no checkpoint, a base model that moved).
 */
lt_model_status lt_run_load(lt_store *st, lt_device *dev, int64_t run_id, const char *which,
                            lt_run_loaded *out, char *err, size_t errlen);
void lt_run_unload(lt_run_loaded *l);

#endif
