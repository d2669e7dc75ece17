/*
 * gguf_impl.h - internals shared by the GGUF model files (gguf_model.c: export, gguf_tok.c:
 * tokenizer metadata, gguf_read.c: GGUF back to a Hugging Face folder). Only pipeline/export
 * includes this file.
 */
#ifndef LATHE_GGUF_IMPL_H
#define LATHE_GGUF_IMPL_H

#include "export/gguf.h"
#include "export/gguf_model.h"

#include <stdarg.h>

lt_model_status gguf_fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Tokenizer keys (tokenizer.ggml.*, tokenizer.chat_template) for the tokenizer in src_dir,
 * padded with unused tokens up to n_vocab (the model's embedding rows). cfg supplies eos ids
 * when the tokenizer names none. info receives the model/pre names and special ids.
 */
lt_model_status gguf_tok_write(lt_gguf_writer *w, const char *src_dir, int64_t n_vocab,
                               const lt_model_config *cfg, lt_gguf_export_info *info, char *err,
                               size_t errlen);

/*
 * tokenizer.json and tokenizer_config.json for out_dir rebuilt from a GGUF's byte-level BPE
 * ("gpt2") metadata. Returns LT_MODEL_ERR_UNSUPPORTED (nothing written) for other tokenizer
 * models.
 */
lt_model_status gguf_tok_to_hf(const lt_gguf_file *f, const char *out_dir, char *err,
                               size_t errlen);

/* The same two files as text (malloc'd, the caller frees both; NULL on failure). */
lt_model_status gguf_tok_json(const lt_gguf_file *f, char **tok_json, char **cfg_json, char *err,
                              size_t errlen);

#endif
