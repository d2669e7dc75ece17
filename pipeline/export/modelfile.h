/*
 * modelfile.h - an Ollama Modelfile for an exported GGUF: FROM the file beside it, a TEMPLATE
 * in Go-template syntax that renders the same prompt as the model's chat template family
 * (ChatML, Llama-3, Llama-2 [INST], Alpaca), SYSTEM for a default system message, stop
 * tokens and sampling PARAMETER lines.
 *
 * The template leaves out a leading bos token: llama.cpp (and so Ollama) adds it itself when
 * tokenizer.ggml.add_bos_token is true, which is how lathe writes such vocabularies.
 */
#ifndef LATHE_MODELFILE_H
#define LATHE_MODELFILE_H

#include "model/config.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>

typedef struct lt_modelfile_opts {
    const char *from;       /* the FROM line's path, e.g. "./model.gguf" */
    const char *adapter;    /* an ADAPTER line's path, or NULL */
    lt_chat_family family;  /* LT_CHAT_NONE: a plain {{ .Prompt }} template */
    const char *bos;        /* the bos token's text (Llama-2 turns after the first start with it) */
    const char *eos;        /* the eos token's text (Llama-2, Alpaca turns end with it) */
    const char *system;     /* a default system message, or NULL */
    int64_t num_ctx;        /* PARAMETER num_ctx; 0 = leave out */
} lt_modelfile_opts;

/* The Go template for a family (bos, eos: the tokens' text). Returns malloc'd text the caller
 * frees, or NULL when out of memory. */
char *lt_modelfile_template(lt_chat_family f, const char *bos, const char *eos);

/* The whole Modelfile text (malloc'd; caller frees), or NULL when out of memory. */
char *lt_modelfile_render(const lt_modelfile_opts *o);

/* Fill o's family, eos and default system from a tokenizer (its chat template); o->from and
 * o->num_ctx are left to the caller. Strings point into tok or static storage; system is
 * malloc'd into *system_buf (caller frees, may stay NULL). */
void lt_modelfile_from_tokenizer(const lt_tokenizer *tok, lt_modelfile_opts *o,
                                 char **system_buf);

/* Render and write atomically to path. */
lt_model_status lt_modelfile_write(const lt_modelfile_opts *o, const char *path, char *err,
                                   size_t errlen);

#endif
