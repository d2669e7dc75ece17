/*
 * pref.h - preference optimisation on a trainer: DPO (sigmoid and IPO losses, a reference
 * model) and ORPO (no reference), as TRL defines them (REFERENCE "Preference optimisation").
 *
 * A preference batch holds P pairs as 2P rows of equal length T: rows 0..P-1 the chosen
 * responses, rows P..2P-1 the rejected ones, each row prompt + response with labels -100 on
 * the prompt and padding, so the labelled tokens are the response. The sequence log-probability
 * of a row is the sum of log p(label) over its labelled tokens (lt_logprob_gather). The loss's
 * gradient per token is computed on the host from those sums and sent back through
 * lt_logprob_gather_backward into the model's backward pass.
 *
 * Reference log-probabilities (DPO) are computed once per pair and cached in memory, keyed by
 * the sample id: under LoRA with the adapter detached (the frozen base), otherwise with the
 * model as it is when first asked, so the caller fills the cache before the first update (that
 * is the frozen copy of full fine-tuning, without keeping a second model on the device).
 * Nothing here reads files or the store.
 */
#ifndef LATHE_PREF_H
#define LATHE_PREF_H

#include "train/trainer.h"

typedef enum lt_pref_kind {
    LT_PREF_DPO = 0,  /* -log sigmoid(beta * delta), delta on summed log-probs */
    LT_PREF_DPO_IPO,  /* (delta - 1/(2 beta))^2, delta on per-token averages (TRL's ipo) */
    LT_PREF_ORPO,     /* NLL(chosen) - beta * log sigmoid(log odds), averages per token */
} lt_pref_kind;

typedef struct lt_pref_opts {
    lt_pref_kind kind;
    float beta; /* 0.1 in TRL */
} lt_pref_opts;

typedef struct lt_pref_batch {
    int64_t P, T;            /* pairs, row length */
    const int32_t *ids;      /* [2P * T] */
    const int32_t *labels;   /* [2P * T], -100 = not scored */
    const int64_t *pair_ids; /* [P] sample ids keying the reference cache (DPO) */
} lt_pref_batch;

/* Means over the batch's pairs. DPO rewards are beta (log pi - log pi_ref) per side; ORPO's
 * are beta times the average per-token log-prob. accuracy: the share of pairs whose chosen
 * reward exceeds the rejected one. */
typedef struct lt_pref_stats {
    double loss;
    double reward_chosen, reward_rejected, margin, accuracy;
    double nll;      /* ORPO: the chosen tokens' mean NLL */
    double log_odds; /* ORPO: mean log odds ratio */
    int64_t pairs;
} lt_pref_stats;

typedef struct lt_pref lt_pref;

/* A preference objective on t's model for batches up to t's max batch (2P rows) and seq. The
 * caller owns *out (lt_pref_free, before the trainer). */
lt_model_status lt_pref_new(lt_trainer *t, const lt_pref_opts *o, lt_pref **out, char *err,
                            size_t errlen);
void lt_pref_free(lt_pref *p);
/* Points p at a new trainer of the same model (a run remakes its trainer per freeze round);
 * the reference cache is kept. */
void lt_pref_set_trainer(lt_pref *p, lt_trainer *t);

/*
 * DPO: computes and caches the reference log-probs of the batch's pairs that are not cached
 * yet (forward only, adapter off under LoRA). ORPO: nothing to do. Called by
 * lt_pref_forward_backward when needed; call it over the whole set first for full fine-tuning.
 */
lt_model_status lt_pref_fill_reference(lt_pref *p, const lt_pref_batch *b, char *err,
                                       size_t errlen);
/* Cached reference log-probs of pair id (OUT chosen, rejected); false when not cached. */
bool lt_pref_reference(const lt_pref *p, int64_t pair_id, double *chosen, double *rejected);

/* Forward + backward of the batch's loss (mean over its pairs) times grad_scale; gradients
 * accumulate in the trainer. *st (OUT, may be NULL) receives the batch's statistics. A row
 * without a labelled token is an LT_MODEL_ERR_ARG naming it. */
lt_model_status lt_pref_forward_backward(lt_pref *p, const lt_pref_batch *b, float grad_scale,
                                         lt_pref_stats *st, char *err, size_t errlen);
/* The same statistics without gradients (evaluation; dropout off). */
lt_model_status lt_pref_eval(lt_pref *p, const lt_pref_batch *b, lt_pref_stats *st, char *err,
                             size_t errlen);

#endif
