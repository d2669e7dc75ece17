/*
 * model_init.h - a new random model saved as a Hugging Face folder (config.json +
 * model.safetensors), for tests and for pretraining from scratch.
 */
#ifndef LATHE_MODEL_INIT_H
#define LATHE_MODEL_INIT_H

#include "config.h"

typedef struct lt_model_init_opts {
    lt_arch arch;       /* LT_ARCH_LLAMA or LT_ARCH_GPT2 (also qwen2, mistral) */
    int64_t dim, n_layers, n_heads, n_kv_heads, ffn, vocab, max_pos;
    bool tie_embeddings;
    uint64_t seed;
    float std;          /* weight init std (0.02 as HF) */
    int save_dtype;     /* lt_dtype: LT_F32, LT_F16 or LT_BF16 */
} lt_model_init_opts;

/* Defaults for arch: dim 64, 2 layers, 4 heads, ffn as the family does, vocab 256, max_pos
 * 256, tied for gpt2, seed 0, std 0.02, F32. */
void lt_model_init_defaults(lt_model_init_opts *o, lt_arch arch);

/*
 * Fill cfg from o (validated: sizes positive, heads divide dim and kv heads divide heads,
 * head_dim even for rotary models). Writes dir/config.json and dir/model.safetensors, each
 * atomically (temporary file, fsync, rename); creates dir if missing. Weights are drawn from
 * N(0, std) with splitmix64 + Box-Muller, norms are ones and biases zeros.
 */
lt_model_status lt_model_init_random(const lt_model_init_opts *o, const char *dir,
                                     lt_model_config *cfg, char *err, size_t errlen);

#endif
