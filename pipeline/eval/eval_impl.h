/*
 * eval_impl.h - what eval.c, eval_system.c and eval_mc.c share: the rows of a split, the
 * state of one evaluation, a system's loaded model (the base, the base with an adapter
 * attached, or the base with a run's trained weights), the model folder hash runs record,
 * and multiple-choice scoring. Included outside pipeline/eval only by its tests.
 */
#ifndef LATHE_EVAL_IMPL_H
#define LATHE_EVAL_IMPL_H

#include "eval/eval.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/batch.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>

/* One row: the prompt messages (system, turns before the last assistant turn), the
 * reference (the last assistant turn) and the sample as stored. A multiple-choice row also
 * has its choices (pointers into doc) and the index of the correct one. */
typedef struct erow {
    int64_t sample_id;
    char *json;
    cJSON *doc;
    lt_chat_msg *msgs;
    int n_msgs;
    const char *prompt;    /* the last user turn, for display */
    const char *reference; /* the last assistant turn */
    const char **choices;  /* [n_choices], malloc'd; NULL when not multiple choice */
    int n_choices, gold;
} erow;

typedef struct erows {
    erow *r;
    int64_t n, cap;
} erows;

/* The k-shot examples: (user, assistant) pairs from the train split, drawn with seed. */
typedef struct eshots {
    erows rows;
    int64_t *order;
} eshots;

/* The state of one evaluation across systems. */
typedef struct ectx {
    lt_store *st;
    const lt_eval_opts *o;
    lt_device *dev;
    lt_tokenizer *tok;
    lt_chat_family fam;
    lt_encode_opts eo;
    const char *dir;
    lt_store_version ver;
    char ds_name[256];
    erows rows, general;
    eshots shots;
    int32_t stop_ids[4];
    int n_stop;
    double base_general_ppl;
    bool json_like, classif;
    bool mc; /* every row is multiple choice: scored by log-likelihood, no generation */
} ectx;

/* Adds a number (null when not finite) to a metrics object. */
void eval_add_metric(cJSON *m, const char *name, double v);

/* The prompt messages of row w with k shots as prior turns (system first), dropping shots
 * until the encoded prompt plus reserve tokens fits ctx. OUT *msgs (malloc'd, strings
 * borrowed from the rows), *n, *used (shots kept), enc (the prompt encoded with the generation
 * prompt). */
lt_eval_status eval_prompt_msgs(const lt_tokenizer *tok, lt_chat_family fam, const erow *w,
                                const eshots *sh, int k, int64_t ctx, int64_t reserve,
                                lt_chat_msg **msgs, int *n, int *used, lt_tok_ids *enc,
                                char *err, size_t errlen);

/* ---- multiple choice (eval_mc.c) ---- */

#define LT_EVAL_MC_MAX 26 /* choices per row, as the importer allows */

/* Scores choices as continuations of a prompt: the prompt runs once into a KV cache, then
 * each choice's tokens continue it and the cache is cut back to the prompt. */
typedef struct eval_mc_scorer eval_mc_scorer;

lt_eval_status eval_mc_scorer_new(lt_model *m, eval_mc_scorer **out, char *err, size_t errlen);
void eval_mc_scorer_free(eval_mc_scorer *s);

/*
 * The summed log-probability of each choice as the assistant's reply to msgs (rendered with
 * the chat family and its generation prompt): the tokens of the choice's text only, not the
 * template's end-of-turn (lm-evaluation-harness scores the continuation alone). OUT ll[i],
 * n_tok[i] (the choice's tokens); *too_long when the prompt and a choice exceed the context
 * (nothing scored).
 */
lt_eval_status eval_mc_logliks(eval_mc_scorer *s, const lt_tokenizer *tok, lt_chat_family fam,
                               const lt_chat_msg *msgs, int n_msgs,
                               const char *const *choices, int n_choices, double *ll,
                               int64_t *n_tok, bool *too_long, char *err, size_t errlen);

/* Scores every row of c->rows for one system: acc and acc_norm into metrics, a sample per
 * row (chosen choice, gold, per-choice log-probabilities) into the store. */
lt_eval_status eval_mc_rows(ectx *c, const lt_eval_system *sys, const char *label, lt_model *m,
                            int64_t eval_id, const double *row_nll, const int64_t *row_n,
                            cJSON *metrics, char *err, size_t errlen);

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
