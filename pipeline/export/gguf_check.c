/*
 * gguf_check.c - reload an exported GGUF and compare it with its source model: logits on
 * chat prompts, the end-of-turn id, and a greedy reply. Never writes anything.
 */
#include "export/gguf_check.h"

#include "data/sha256.h"
#include "export/gguf_impl.h"
#include "model/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double lt_gguf_check_tolerance(lt_ggml_type dt, double scale)
{
    /* f32: the same weights, only summation order can differ. f16 rounds each weight to 11
     * significant bits (relative 2^-11), bf16 to 8 (2^-8), Q8_0 to half a step of
     * max|block|/127; through a few layers the relative logit error stays within a few
     * times the weight error, so allow 8x the per-weight relative error of the scale. */
    double s = scale > 1.0 ? scale : 1.0;
    switch (dt) {
    case LT_GGML_F32: return 1e-4 * s;
    case LT_GGML_F16: return 8.0 / 2048.0 * s;
    case LT_GGML_BF16: return 8.0 / 256.0 * s;
    case LT_GGML_Q8_0: return 8.0 / 254.0 * s;
    }
    return 0;
}

/* Last-position logits [V] of m on ids (malloc'd), or NULL with err set. */
static float *logits(lt_model *m, const int32_t *ids, int64_t T, char *err, size_t errlen)
{
    lt_forward *f = NULL;
    lt_tensor *lg = NULL;
    int64_t V = lt_model_get_config(m)->vocab;
    lt_forward_opts fo = {.max_batch = 1, .max_seq = T};
    float *h = NULL;
    if (lt_forward_new(m, &fo, &f, err, errlen) == LT_MODEL_OK &&
        lt_forward_run(f, ids, 1, T, NULL, &lg, err, errlen) == LT_MODEL_OK &&
        (h = malloc((size_t)(T * V) * sizeof(float))) &&
        lt_tensor_download_f32(lg, h, T * V) != LT_OK) {
        free(h);
        h = NULL;
        snprintf(err, errlen, "cannot read logits back");
    }
    lt_forward_free(f);
    return h;
}

static lt_model_status prompt_ids(const lt_tokenizer *tok, const char *text, lt_tok_ids *ids,
                                  char *err, size_t errlen)
{
    lt_chat_family fam = LT_CHAT_NONE;
    const char *tmpl = lt_tokenizer_chat_template(tok);
    if (tmpl)
        fam = lt_chat_detect(tmpl);
    lt_chat_msg m = {"user", text};
    lt_tok_status s = fam != LT_CHAT_NONE
                          ? lt_tokenizer_encode_chat(tok, fam, &m, 1, true, ids, err, errlen)
                          : lt_tokenizer_encode(tok, text, strlen(text), LT_TOK_ADD_SPECIAL, ids,
                                                err, errlen);
    return s == LT_TOK_OK ? LT_MODEL_OK : LT_MODEL_ERR_ARG;
}

static int32_t tokenizer_eot(const lt_tokenizer *tok)
{
    const char *tmpl = lt_tokenizer_chat_template(tok);
    lt_chat_family f = tmpl ? lt_chat_detect(tmpl) : LT_CHAT_NONE;
    int id = -1;
    if (f == LT_CHAT_CHATML)
        id = lt_tokenizer_piece_id(tok, "<|im_end|>");
    else if (f == LT_CHAT_LLAMA3)
        id = lt_tokenizer_piece_id(tok, "<|eot_id|>");
    return id >= 0 ? id : lt_tokenizer_eos_id(tok);
}

lt_model_status lt_gguf_check_model(lt_model *src, const lt_tokenizer *tok,
                                    const char *gguf_path, lt_ggml_type dt, lt_gguf_check *out,
                                    char *err, size_t errlen)
{
    static const char *prompts[] = {"Hello! Who are you?", "What is 2 + 2?",
                                    "Write one sentence about the sea."};
    lt_model *g = NULL;
    lt_gguf_file *f = NULL;
    lt_tok_ids ids = {0};
    char e[1024];
    memset(out, 0, sizeof(*out));
    lt_model_status st = lt_model_load(gguf_path, lt_model_get_device(src), LT_MODEL_DTYPE_STORED,
                                       &g, err, errlen);
    if (st)
        return st;
    const lt_model_config *cs = lt_model_get_config(src), *cg = lt_model_get_config(g);
    if (cs->vocab != cg->vocab) {
        st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen, "%s: vocab %lld, the source has %lld",
                       gguf_path, (long long)cg->vocab, (long long)cs->vocab);
        goto out;
    }
    for (int p = 0; p < 3; p++) {
        ids.n = 0;
        if ((st = prompt_ids(tok, prompts[p], &ids, err, errlen)))
            goto out;
        int64_t T = (int64_t)ids.n, V = cs->vocab;
        if (T > cs->max_pos)
            T = cs->max_pos;
        float *a = logits(src, ids.ids, T, e, sizeof(e)), *b = a ? logits(g, ids.ids, T, e, sizeof(e)) : NULL;
        if (!a || !b) {
            free(a);
            st = gguf_fail(LT_MODEL_ERR_DEVICE, err, errlen, "forward: %s", e);
            goto out;
        }
        for (int64_t i = 0; i < T * V; i++) {
            out->max_logit_err = fmax(out->max_logit_err, fabs((double)a[i] - b[i]));
            out->logit_scale = fmax(out->logit_scale, fabs((double)a[i]));
            if (isnan(b[i]))
                out->max_logit_err = INFINITY;
        }
        free(a);
        free(b);
        out->n_prompts++;
    }
    out->tol = lt_gguf_check_tolerance(dt, out->logit_scale);
    out->logits_ok = out->max_logit_err <= out->tol;
    /* the end-of-turn token: the GGUF's eot (else eos) against the tokenizer's */
    if ((st = lt_gguf_open(gguf_path, &f, err, errlen)))
        goto out;
    int64_t v;
    out->eot_id = tokenizer_eot(tok);
    if (out->eot_id < 0 && cs->n_eos > 0) /* no tokenizer_config.json: the config's eos */
        out->eot_id = cs->eos_ids[0];
    out->gguf_eot_id = lt_gguf_get_int(f, "tokenizer.ggml.eot_token_id", &v) ||
                               lt_gguf_get_int(f, "tokenizer.ggml.eos_token_id", &v)
                           ? (int32_t)v
                           : -1;
    /* a model without any end token (a base model) has nothing to lose */
    out->eot_ok = out->eot_id < 0 ? out->gguf_eot_id < 0
                                  : out->gguf_eot_id == out->eot_id &&
                                        lt_model_config_is_eos(cg, out->eot_id);
    /* one greedy reply from each, stopping at the end-of-turn */
    ids.n = 0;
    if ((st = prompt_ids(tok, prompts[0], &ids, err, errlen)))
        goto out;
    int32_t ra[32], rb[32];
    lt_generate_opts go;
    memset(&go, 0, sizeof(go));
    go.max_new_tokens = 32;
    lt_sampler_defaults(&go.sampler);
    go.stop_at_eos = true;
    go.stop_ids = &out->eot_id;
    go.n_stop_ids = out->eot_id >= 0 ? 1 : 0;
    if ((st = lt_generate(src, ids.ids, (int)ids.n, &go, ra, &out->n_src, err, errlen)))
        goto out;
    go.stop_ids = NULL; /* the GGUF model stops on its own metadata's ids only */
    go.n_stop_ids = 0;
    if ((st = lt_generate(g, ids.ids, (int)ids.n, &go, rb, &out->n_gguf, err, errlen)))
        goto out;
    out->src_stopped = out->n_src > 0 && ra[out->n_src - 1] == out->eot_id;
    out->gguf_stopped = out->n_gguf > 0 && lt_model_config_is_eos(cg, rb[out->n_gguf - 1]);
    out->reply_same = out->n_src == out->n_gguf && !memcmp(ra, rb, (size_t)out->n_src * 4);
    out->ok = out->logits_ok && out->eot_ok && (out->reply_same || dt != LT_GGML_F32);
out:
    lt_tok_ids_free(&ids);
    lt_gguf_close(f);
    lt_model_free(g);
    return st;
}

bool lt_export_hash_file(const char *path, char hex[65], int64_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static __thread unsigned char buf[1 << 16];
    lt_sha256 h;
    lt_sha256_init(&h);
    size_t k;
    *bytes = 0;
    while ((k = fread(buf, 1, sizeof(buf), f)) > 0) {
        lt_sha256_update(&h, buf, k);
        *bytes += (int64_t)k;
    }
    bool ok = !ferror(f);
    fclose(f);
    uint8_t dig[32];
    lt_sha256_final(&h, dig, hex);
    return ok;
}
