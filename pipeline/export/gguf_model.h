/*
 * gguf_model.h - models and LoRA adapters as GGUF files for llama.cpp (and Ollama, LM Studio),
 * and GGUF files read back as a lathe model source.
 *
 * Export maps a Hugging Face folder (config.json, safetensors, tokenizer.json,
 * tokenizer_config.json) to llama.cpp's names and keys: architecture "llama" (Llama, Mistral),
 * "qwen2" or "gpt2"; q/k rows permuted from HF's rotate_half layout to interleaved pairs for
 * arch llama only (qwen2 uses NEOX rotary in llama.cpp, which is HF's layout); GPT-2 Conv1D
 * weights transposed to [out, in]; norms and biases always F32; matrices in the asked dtype
 * (Q8_0 falls back to F16 for rows not a multiple of 32). The tokenizer goes in as
 * tokenizer.ggml.* keys: "gpt2" (byte-level BPE: tokens, token types, merges) or "llama"
 * (SentencePiece-style BPE with byte fallback: tokens, scores, types), the pre-tokenizer name
 * llama.cpp knows for the split ("gpt-2", "llama-bpe", "qwen2", "smollm", "default"), special
 * ids, add_bos_token and the chat template.
 *
 * Reading inverts every step (dims, transposes, the permutation, dequantization), streamed
 * tensor by tensor into a model (lt_gguf_model_load) or written as a Hugging Face folder
 * (lt_gguf_to_hf).
 */
#ifndef LATHE_GGUF_MODEL_H
#define LATHE_GGUF_MODEL_H

#include "export/gguf.h"
#include "model/model.h"

typedef struct lt_gguf_export_opts {
    lt_ggml_type dtype; /* of the 2-D weights: F32, F16, BF16 or Q8_0 */
    const char *name;   /* general.name; NULL = the source folder's name */
} lt_gguf_export_opts;

typedef struct lt_gguf_export_info {
    char arch[16];      /* "llama", "qwen2", "gpt2" */
    char tok_model[16]; /* "gpt2", "llama" */
    char tok_pre[24];   /* "gpt-2", "llama-bpe", "qwen2", "smollm", "default" */
    char chat[16];      /* chat family of the template, "none" when there is none */
    int32_t bos_id, eos_id, eot_id; /* -1 when absent; eot: the template's end-of-turn */
    int n_tensors;
    int n_fallback;     /* Q8_0 matrices written as F16 (rows not a multiple of 32) */
    char note[256];     /* a warning worth showing (unknown pre-tokenizer, ...), or "" */
} lt_gguf_export_info;

/* True when path names a GGUF file (ends in ".gguf"). */
bool lt_gguf_is_path(const char *path);


/*
 * Write the model in src_dir as one GGUF file at out_path (atomically). An architecture or
 * tokenizer GGUF cannot express is LT_MODEL_ERR_UNSUPPORTED naming what; info (may be NULL)
 * says what was written.
 */
lt_model_status lt_gguf_export_model(const char *src_dir, const char *out_path,
                                     const lt_gguf_export_opts *o, lt_gguf_export_info *info,
                                     char *err, size_t errlen);

/*
 * Write the PEFT LoRA adapter in peft_dir (adapter_config.json, adapter_model.safetensors)
 * for the base model in base_dir as a GGUF adapter: general.type "adapter", adapter.type
 * "lora", adapter.lora.alpha (rsLoRA folded in: alpha * sqrt(r), since llama.cpp scales by
 * alpha / r), tensors "<base tensor>.lora_a" [r, in] and ".lora_b" [out, r] in F32, B's rows
 * permuted as the base's for q/k of arch llama.
 */
lt_model_status lt_gguf_export_lora(const char *peft_dir, const char *base_dir,
                                    const char *out_path, lt_gguf_export_info *info, char *err,
                                    size_t errlen);

/*
 * Rewrite the GGUF model at path as a Hugging Face folder out_dir (created if missing):
 * config.json, model.safetensors (F32, or F16 when dtype is LT_GGML_F16) and, for byte-level
 * BPE vocabularies, tokenizer.json and tokenizer_config.json from the metadata (other
 * tokenizers: a tokenizer.json beside the GGUF file is copied when there is one).
 */
lt_model_status lt_gguf_to_hf(const char *path, const char *out_dir, lt_ggml_type dtype,
                              char *err, size_t errlen);

/* What a GGUF file holds, from its metadata and tensor infos (no tensor data is read). */
typedef struct lt_gguf_summary {
    uint32_t version;
    char type[16];       /* general.type: "model" or "adapter" ("model" when absent) */
    char arch[24];       /* general.architecture */
    char name[128];      /* general.name, "" when absent */
    uint64_t file_bytes;
    int n_tensors;
    int64_t total_params;       /* elements over all tensors */
    uint64_t tensor_bytes;      /* bytes of the tensor data as stored */
    char dtypes[48];            /* the tensors' ggml types, e.g. "F32+Q8_0+F16" */
    /* models only: */
    lt_model_config cfg;        /* as lathe reads it (lt_model_load of the file) */
    int64_t params[LT_PARAM_KIND_COUNT]; /* elements by kind, from the tensor names */
    char tok_model[16], tok_pre[24]; /* tokenizer.ggml.model / .pre, "" when absent */
    int64_t n_tokens;           /* entries of tokenizer.ggml.tokens */
    int32_t bos_id, eos_id, eot_id; /* -1 when absent */
    bool add_bos;
    char chat[16];              /* chat family of tokenizer.chat_template, "none" or
                                 * "unrecognised" */
    /* adapters only: */
    double lora_alpha;          /* adapter.lora.alpha, 0 when absent */
    int64_t lora_rank;          /* rows of the first .lora_a tensor */
    int n_lora;                 /* adapted matrices (lora_a / lora_b pairs) */
} lt_gguf_summary;

/*
 * Validate the GGUF file at path (as lt_gguf_open does) and describe it. A model's keys are
 * checked as lt_model_load would check them (the config is read the same way), so a file
 * that lathe cannot load fails here too, naming the key. Adapters need only
 * general.architecture and their lora tensors.
 */
lt_model_status lt_gguf_inspect(const char *path, lt_gguf_summary *out, char *err,
                                size_t errlen);

/*
 * lt_model_load for a GGUF file (lt_model_load calls it for a ".gguf" path): every tensor is
 * checked first (names, shapes), then each is decoded (F32, F16, BF16, Q8_0 dequantized) into
 * one fp32 buffer in the Hugging Face layout and uploaded in the dtype weight_dtype asks for
 * (stored = F32, or F16/BF16/NF4 as for lt_model_load), so the host holds about one tensor
 * (two while a q/k permutation or transpose runs) beyond the mapped file. No folder is written.
 */
lt_model_status lt_gguf_model_load(const char *path, lt_device *dev, int weight_dtype,
                                   lt_model **out, char *err, size_t errlen);

/*
 * The tokenizer of the GGUF model at path, rebuilt in memory from its byte-level BPE metadata
 * (as lt_gguf_to_hf writes it); other vocabularies load from a tokenizer.json (and
 * tokenizer_config.json) beside the file, else an error saying so. *out owned by the caller
 * (lt_tokenizer_free).
 */
typedef struct lt_tokenizer lt_tokenizer;
lt_model_status lt_gguf_tokenizer_load(const char *path, lt_tokenizer **out, char *err,
                                       size_t errlen);

/*
 * llama.cpp's q/k row permutation for arch llama on a [n_head * hd, cols] matrix (F32, row
 * major): rows of head h go from HF's (half, i) order to (i, half), i.e.
 * reshape(n_head, 2, hd/2, cols).swapaxes(1, 2). inverse undoes it. in != out.
 */
void lt_gguf_permute_rows(const float *in, float *out, int64_t n_head, int64_t hd, int64_t cols,
                          bool inverse);

#endif
