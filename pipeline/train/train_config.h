/*
 * train_config.h - the training run's config file (JSON): parsing, validation with errors that
 * name the JSON path, defaults, the canonical form stored with a run and its hash.
 *
 * The schema is documented in README.md ("Training config"). Unknown keys are errors, so a
 * typo never silently falls back to a default. Nothing here touches a model, a device or the
 * store; the fit checks against a model and a dataset live in train.c.
 */
#ifndef LATHE_TRAIN_CONFIG_H
#define LATHE_TRAIN_CONFIG_H

#include "train/schedule.h"
#include "train/trainer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lt_objective {
    LT_OBJECTIVE_SFT = 0,
    LT_OBJECTIVE_PRETRAIN,
    LT_OBJECTIVE_DPO,  /* preference pairs, a reference model (pref.h) */
    LT_OBJECTIVE_ORPO, /* preference pairs, no reference (pref.h) */
} lt_objective;

typedef enum lt_dpo_loss { LT_DPO_SIGMOID = 0, LT_DPO_IPO } lt_dpo_loss;

typedef enum lt_freeze_kind {
    LT_FREEZE_LAST = 0, /* "last:N": the last N layers train */
    LT_FREEZE_LIST,     /* [i, j, ...]: these layers train */
    LT_FREEZE_HALF,     /* "half": alternate halves per round (see lt_freeze_layers) */
} lt_freeze_kind;

#define LT_TRAIN_MAX_LAYERS 256

/* Activation recomputation ("gradient_checkpointing"): auto turns it on when the run without
 * it does not fit the device (train.c decides, by the trainer's own sizing). */
typedef enum lt_grad_ckpt {
    LT_GRAD_CKPT_AUTO = 0,
    LT_GRAD_CKPT_ON,
    LT_GRAD_CKPT_OFF,
} lt_grad_ckpt;

typedef struct lt_train_config {
    /* what to train on */
    char *model;           /* model folder */
    char *dataset;         /* dataset name in the store, or NULL when dataset_file is set */
    int dataset_version;   /* 0 = latest */
    char *dataset_file;    /* a file imported on the fly (data workbench importer) */
    char *split;           /* "train" (all rows when the dataset has no splits) */
    lt_objective objective;
    char *chat_template;   /* family override ("chatml", ...) or NULL */

    /* method */
    lt_train_method method;
    bool qlora;            /* "method": "qlora": LoRA on a base quantized to NF4 at load */
    bool qlora_double_quant; /* "qlora": {"double_quant"} (default true) */
    lt_lora_opts lora;     /* targets as LT_LORA_* bits; seed = config seed */
    bool lora_all_linear;  /* "all-linear": every linear layer of the architecture */
    lt_freeze_kind freeze_kind;
    int freeze_last;       /* LT_FREEZE_LAST */
    int freeze_list[LT_TRAIN_MAX_LAYERS];
    int n_freeze_list;
    int64_t freeze_round_steps; /* LT_FREEZE_HALF: optimizer steps per round; 0 = one epoch */
    bool freeze_train_embeddings; /* freeze: embeddings, head and final norm train too */

    /* preference objectives: "dpo": {"beta", "loss_type"}, "orpo": {"beta"} */
    double dpo_beta;       /* 0.1 */
    lt_dpo_loss dpo_loss;  /* "sigmoid" (default) or "ipo" */
    double orpo_beta;      /* 0.1 */

    /* batches */
    int64_t seq_len;       /* 0 (default) = the model's context, at most 2048 */
    int64_t batch_size, grad_accum;
    bool packing, train_on_prompt;
    int64_t epochs, max_steps; /* max_steps > 0 overrides epochs */

    /* optimization */
    double lr, beta1, beta2, eps, weight_decay;
    lt_sched_kind sched;
    int64_t warmup_steps;  /* -1 when warmup_ratio is used */
    double warmup_ratio;
    double min_lr_ratio;
    double max_grad_norm;  /* 0 = no clipping */

    /* evaluation, checkpoints, robustness */
    int64_t eval_every;    /* optimizer steps; 0 = only at the end when a split exists */
    char *eval_split;      /* "val" */
    int eval_patience;     /* evals without improvement before stopping; 0 = never */
    int overfit_window;    /* K evals of rising val loss with falling train loss warn */
    int64_t ckpt_every;    /* optimizer steps; 0 = only at the end and on stop */
    int keep_last, keep_best;
    uint64_t seed;
    char *device;          /* NULL = the command line's / LATHE_DEVICE */
    int threads;           /* 0 = the command line's */
    int nan_tolerance;     /* consecutive skipped (NaN/Inf) steps that stop the run */

    /* memory */
    lt_grad_ckpt grad_ckpt;   /* "gradient_checkpointing": "auto" (default), true or false */
    bool offload_activations; /* with checkpointing: the kept layer inputs in host memory */

    char *json;            /* the canonical config (every field, defaults filled in) */
    char hash[65];         /* sha256 hex of json */
} lt_train_config;

/* Fills every default (no model, no dataset). */
void lt_train_config_defaults(lt_train_config *c);

/*
 * Parses and validates a config from JSON text. label names the source in messages. On error
 * returns false and err holds e.g. "run.json: $.lora.r: expected a positive integer, got -1".
 * On success c owns its strings (free with lt_train_config_free) and c->json / c->hash hold
 * the canonical form. Relative model/dataset_file paths are resolved against base_dir when
 * base_dir is non-NULL.
 */
bool lt_train_config_parse(const char *json, size_t n, const char *label, const char *base_dir,
                           lt_train_config *c, char *err, size_t errlen);
/* Reads a file and parses it (base_dir = the file's folder). */
bool lt_train_config_load(const char *path, lt_train_config *c, char *err, size_t errlen);
void lt_train_config_free(lt_train_config *c);

const char *lt_objective_name(lt_objective o);  /* "sft", "pretrain", "dpo", "orpo" */
const char *lt_method_name(lt_train_method m);  /* "full", "freeze", "lora" */
/* The method as the config names it ("qlora" for LoRA on an NF4 base). */
const char *lt_train_config_method_name(const lt_train_config *c);

/*
 * Which layers train in round `round` (0-based) for a model of n_layers layers. OUT
 * train_layer[n_layers]. last:N trains the last N; a list trains those; half trains the even
 * layers (0, 2, 4, ...) in even rounds and the odd layers in odd rounds, so that every layer
 * is trained in every second round and the frozen half keeps the knowledge of the base
 * (Half Fine-Tuning). Returns false with a message when the config names a layer the model
 * does not have.
 */
bool lt_freeze_layers(const lt_train_config *c, int n_layers, int64_t round, bool *train_layer,
                      char *err, size_t errlen);

/* The trainer options a config implies for model mc: method, LoRA (targets resolved for
 * "all-linear", seeded by the run's seed), the freeze layers given in train_layer (the caller
 * computes them with lt_freeze_layers; NULL for other methods) and AdamW's hyper-parameters.
 * max_batch and max_seq are left 0 for the caller. */
void lt_train_config_trainer_opts(const lt_train_config *c, const lt_model_config *mc,
                                  const bool *train_layer, lt_trainer_opts *to);

#endif
