/*
 * gguf_check.h - proof that an exported GGUF behaves like the model it came from: the file
 * loaded back through lathe's GGUF reader, logits on a few chat prompts compared with the
 * source model within the dtype's error, the end-of-turn id in the metadata compared with the
 * tokenizer's, and one greedy reply from each model compared token by token.
 */
#ifndef LATHE_GGUF_CHECK_H
#define LATHE_GGUF_CHECK_H

#include "export/gguf_model.h"
#include "tokenizer/tokenizer.h"

typedef struct lt_gguf_check {
    int n_prompts;
    double max_logit_err;   /* max |logit_src - logit_gguf| over prompts and positions */
    double logit_scale;     /* max |logit_src| */
    double tol;             /* allowed max_logit_err for the dtype */
    bool logits_ok;
    int32_t eot_id;         /* the tokenizer's end-of-turn id (-1 none) */
    int32_t gguf_eot_id;    /* the GGUF's eot (else eos) id */
    bool eot_ok;            /* equal, and in the reloaded model's stop set */
    int n_src, n_gguf;      /* tokens of the greedy replies */
    bool src_stopped, gguf_stopped; /* ended at a stop token */
    bool reply_same;        /* identical tokens */
    bool ok;                /* logits_ok && eot_ok && (reply_same or the dtype is lossy) */
} lt_gguf_check;

/* The logit tolerance for an export dtype, given the source logits' largest magnitude. */
double lt_gguf_check_tolerance(lt_ggml_type dt, double logit_scale);

/*
 * Load gguf_path on src's device and compare it with src (as it is, adapter attached or not),
 * prompting with tok's chat template (plain text when it has none). On a failure to load or
 * run err says why and the status is not OK; a mismatch is OK with out->ok false.
 */
lt_model_status lt_gguf_check_model(lt_model *src, const lt_tokenizer *tok,
                                    const char *gguf_path, lt_ggml_type dt, lt_gguf_check *out,
                                    char *err, size_t errlen);

/* sha256 (64 hex digits + NUL) and size of a file; false on a read error. */
bool lt_export_hash_file(const char *path, char hex[65], int64_t *bytes);

#endif
