/*
 * config.h - a model's Hugging Face config.json, read into one plain struct, and the status
 * values every part of the model module (config, weights, forward, generation) returns.
 *
 * Families: llama, mistral, qwen2 (the Llama family: RMSNorm, rotary, SwiGLU) and gpt2
 * (LayerNorm, learned positions, GELU). Defaults follow transformers' configuration classes;
 * fields the forward pass cannot honour (rope_scaling, unknown activations) are errors that
 * name the field, never silently ignored.
 */
#ifndef LATHE_MODEL_CONFIG_H
#define LATHE_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lt_model_status {
    LT_MODEL_OK = 0,
    LT_MODEL_ERR_IO,          /* a file is missing or unreadable */
    LT_MODEL_ERR_FORMAT,      /* a file is malformed (JSON, safetensors) */
    LT_MODEL_ERR_CONFIG,      /* config.json has a missing or bad field */
    LT_MODEL_ERR_UNSUPPORTED, /* a valid model lathe cannot run (architecture, feature) */
    LT_MODEL_ERR_TENSOR,      /* a tensor is missing, or of the wrong shape or dtype */
    LT_MODEL_ERR_DEVICE,      /* the compute layer failed */
    LT_MODEL_ERR_OOM,
    LT_MODEL_ERR_ARG, /* a bad argument from the caller (token id out of range, ...) */
} lt_model_status;

const char *lt_model_status_str(lt_model_status s);

typedef enum lt_arch {
    LT_ARCH_LLAMA = 0,
    LT_ARCH_MISTRAL,
    LT_ARCH_QWEN2,
    LT_ARCH_GPT2,
} lt_arch;

const char *lt_arch_name(lt_arch a); /* "llama", "mistral", "qwen2", "gpt2" */

/* True for the Llama family (RMSNorm, rotary positions, SwiGLU, separate q/k/v). */
bool lt_arch_is_llama_like(lt_arch a);

#define LT_MODEL_MAX_EOS 8

/* rope_scaling (or transformers 5's rope_parameters) "rope_type" / "type". */
typedef enum lt_rope_type {
    LT_ROPE_DEFAULT = 0, /* absent, null or "default": plain rotary */
    LT_ROPE_LINEAR,      /* inv_freq / factor */
    LT_ROPE_LLAMA3,      /* Llama 3.1's frequency bands */
    LT_ROPE_YARN,        /* YaRN: blended frequencies, cos/sin times the attention factor */
} lt_rope_type;

/* The scaling parameters, as read (0 marks an absent optional value). */
typedef struct lt_rope_scaling {
    lt_rope_type type;
    double factor;                 /* linear, llama3, yarn (required) */
    double low_freq_factor;        /* llama3 (required) */
    double high_freq_factor;       /* llama3 (required) */
    int64_t original_max_pos;      /* llama3 (required); yarn (absent: max_pos) */
    double beta_fast, beta_slow;   /* yarn (32, 1) */
    double mscale, mscale_all_dim; /* yarn, 0 = absent */
    double attention_factor;       /* yarn, 0 = absent (derived from factor) */
    bool truncate;                 /* yarn: floor/ceil the correction range (true) */
} lt_rope_scaling;

typedef struct lt_model_config {
    lt_arch arch;
    int64_t dim;        /* hidden_size / n_embd */
    int64_t n_layers;   /* num_hidden_layers / n_layer */
    int64_t n_heads;    /* num_attention_heads / n_head */
    int64_t n_kv_heads; /* num_key_value_heads (absent = n_heads) */
    int64_t head_dim;   /* head_dim (absent = dim / n_heads) */
    int64_t ffn;        /* intermediate_size / n_inner (null = 4 * dim) */
    int64_t vocab;      /* vocab_size */
    int64_t max_pos;    /* max_position_embeddings / n_positions */
    int64_t sliding_window; /* mistral / qwen2 with use_sliding_window; 0 = none */
    float norm_eps;     /* rms_norm_eps (1e-6 default) / layer_norm_epsilon (1e-5) */
    double rope_theta;  /* rope_theta or rope_parameters.rope_theta (10000 default) */
    lt_rope_scaling rope_scaling; /* rope_scaling / rope_parameters (type default = none) */
    int64_t window_from_layer;    /* the sliding window applies to layers >= this (qwen2's
                                     max_window_layers; 0 for mistral) */
    bool tie_embeddings; /* tie_word_embeddings (llama false, gpt2 true by default) */
    bool qkv_bias;      /* biases on q, k, v (qwen2, gpt2, llama attention_bias) */
    bool o_bias;        /* bias on the attention output (gpt2, llama attention_bias) */
    bool mlp_bias;      /* biases in the MLP (gpt2, llama mlp_bias) */
    int32_t bos_id;     /* -1 when absent */
    int n_eos;          /* eos_token_id as int or list; 0 when absent */
    int32_t eos_ids[LT_MODEL_MAX_EOS];
    char torch_dtype[16]; /* "float32", "bfloat16", ... or "" */
} lt_model_config;

/*
 * Parse config.json text (len bytes, need not be NUL-terminated). label names the file in
 * messages. On failure err names the field and what was expected.
 */
lt_model_status lt_model_config_parse(const char *json, size_t len, const char *label,
                                      lt_model_config *out, char *err, size_t errlen);

/*
 * The rotary inverse frequency of each of the head_dim/2 pairs, rescaled as the config's
 * rope_scaling says (transformers' _compute_{default,linear,llama3,yarn}_parameters, in float32
 * as they compute it), into inv (head_dim/2 floats), and the factor cos and sin are multiplied
 * by into *mscale (YaRN's attention factor; 1 otherwise). Plain rotary gives exactly
 * lt_rope_inv_freq(inv, head_dim, (float)rope_theta).
 */
void lt_model_rope_freqs(const lt_model_config *c, float *inv, float *mscale);

/* Read DIR/config.json (dir may also be the path of a .json file). */
lt_model_status lt_model_config_load(const char *dir, lt_model_config *out, char *err,
                                     size_t errlen);

/*
 * The config as Hugging Face writes it (architectures, model_type, every field above).
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL when out of memory.
 */
char *lt_model_config_to_json(const lt_model_config *c);

/* True when id is one of the config's eos ids. */
bool lt_model_config_is_eos(const lt_model_config *c, int32_t id);

#endif
