/*
 * generate.h - text generation: sampling from logits and the decode loop with a KV cache.
 *
 * Sampling follows the order of Hugging Face's generate(): repetition penalty, temperature,
 * top-k, top-p, then a draw. temperature 0 is greedy (ties go to the lowest id, as
 * torch.argmax). The random numbers come from splitmix64 (Steele, Lea and Flood 2014):
 * state += 0x9e3779b97f4a7c15, then the state is mixed into a 64-bit output; a uniform float
 * in [0, 1) is the top 24 bits times 2^-24. The same seed gives the same tokens on every
 * machine for the same logits.
 */
#ifndef LATHE_GENERATE_H
#define LATHE_GENERATE_H

#include "forward.h"

typedef struct lt_sampler {
    float temperature;        /* 0 = greedy */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off */
    float repetition_penalty; /* 1 = off; HF: logit / r when > 0, logit * r otherwise */
    uint64_t seed;
} lt_sampler;

void lt_sampler_defaults(lt_sampler *s); /* greedy, no penalty, seed 0 */

/* splitmix64: advances *state and returns the next 64 random bits. */
uint64_t lt_rng_next(uint64_t *state);

/*
 * Pick a token from logits [V] (modified in place by the penalty and temperature). history:
 * the ids seen so far (prompt and generated), for the repetition penalty. scratch: V floats
 * and V ints of caller memory, or NULL to allocate. Returns the id, or -1 when out of memory.
 */
int32_t lt_sample(float *logits, int64_t V, const int32_t *history, int64_t n_history,
                  const lt_sampler *s, uint64_t *rng);

/* Called for each new token; return false to stop. */
typedef bool (*lt_token_fn)(void *user, int32_t token);

typedef struct lt_generate_opts {
    int max_new_tokens;
    lt_sampler sampler;
    bool stop_at_eos;       /* stop after any of the config's eos ids (or stop_ids) */
    const int32_t *stop_ids; /* extra stop ids (e.g. a chat template's end token) */
    int n_stop_ids;
    bool recompute;         /* no KV cache: re-run the whole sequence each step (tests) */
    lt_token_fn on_token;   /* may be NULL */
    void *user;
} lt_generate_opts;

/*
 * Generate after prompt[n_prompt] (batch 1). out receives the new ids (room for
 * max_new_tokens), *n_out how many; the stop token, when hit, is included. The sequence is
 * capped at the model's context (max_position_embeddings, the sliding window).
 */
lt_model_status lt_generate(lt_model *m, const int32_t *prompt, int n_prompt,
                            const lt_generate_opts *o, int32_t *out, int *n_out, char *err,
                            size_t errlen);

/*
 * Generates after n prompts, up to `batch` of them at a time. Each prompt is prefilled alone
 * into its row of a shared KV cache (the computation lt_generate does), then every
 * unfinished row takes one decode step per forward, all rows together, each at its own
 * length (lt_forward_run_rows); a finished row's slot takes the next prompt. Every prompt
 * gets its own sampler stream seeded with o->sampler.seed, so the tokens equal lt_generate's
 * for each prompt alone (greedy: the same ids, up to the rounding of a batched matmul; the
 * tests check). outs[i] has room for max_new_tokens ids; n_outs[i] receives the count.
 * o->recompute must be false and o->on_token is not called. progress (may be NULL) is called
 * with the number of prompts finished so far; when it returns false generation stops there
 * (the unfinished prompts keep what they have).
 */
lt_model_status lt_generate_batch(lt_model *m, const int32_t *const *prompts,
                                  const int *n_prompts, int n, int batch,
                                  const lt_generate_opts *o, int32_t *const *outs, int *n_outs,
                                  bool (*progress)(void *ctx, int done), void *progress_ctx,
                                  char *err, size_t errlen);

#endif
