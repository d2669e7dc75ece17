/*
 * merged.c - write a model (fully trained, or a base with a LoRA adapter merged in) as a
 * Hugging Face folder (merged.h). Weights come back from the device to the host, adapters are
 * merged in fp32, each tensor is converted back to the file's layout and to the dtype the
 * source folder stored it in. This file never changes the model on the device.
 */
#include "export_impl.h"
#include "merged.h"
#include "model/safetensors.h"
#include "train/train_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* The adapter slot whose delta lands on weight x of layer l, or -1. */
static int slot_of(const lt_model *m, int l, const lt_tensor *x)
{
    const lt_layer_weights *w = &m->layers[l];
    if (x == w->qkv_w)
        return LT_LSLOT_ATTN;
    const lt_tensor *ws[] = {w->q.w, w->k.w, w->v.w, w->o.w, w->gate.w, w->up.w, w->down.w};
    for (int s = 0; s < 7; s++)
        if (x == ws[s])
            return s;
    return -1;
}

/* W += scale * B A in W's device layout: Linear [out, in], Conv1D [in, out], or c_attn's
 * [3, in, out] blocks fed by B's row blocks. */
static lt_model_status merge_delta(const lt_lora_adapter *a, const lt_lora_module *mo,
                                   lt_param_layout layout, float *W, char *err, size_t errlen)
{
    const int64_t r = a->r, in = mo->in, out = mo->out;
    float *A = malloc((size_t)(r * in) * sizeof(float));
    float *B = malloc((size_t)(out * r) * sizeof(float));
    lt_model_status st = LT_MODEL_OK;
    if (!A || !B || lt_tensor_download_f32(mo->A, A, r * in) != LT_OK ||
        lt_tensor_download_f32(mo->B, B, out * r) != LT_OK) {
        st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "merge: cannot read the adapter");
        goto out;
    }
    const int64_t blk = layout == LT_LAYOUT_QKV_BLOCKS ? out / 3 : out;
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) {
            double d = 0;
            for (int64_t k = 0; k < r; k++)
                d += (double)B[o * r + k] * (double)A[k * in + i];
            float delta = (float)(a->scale * d);
            if (layout == LT_LAYOUT_PLAIN)
                W[o * in + i] += delta;
            else if (layout == LT_LAYOUT_CONV1D)
                W[i * out + o] += delta;
            else /* block o / blk: [in, blk] */
                W[((o / blk) * in + i) * blk + o % blk] += delta;
        }
out:
    free(A);
    free(B);
    return st;
}

/* Converts n floats into dtype dt at dst. */
static void convert(const float *src, int64_t n, lt_st_dtype dt, void *dst)
{
    for (int64_t i = 0; i < n; i++) {
        if (dt == LT_ST_F16) {
            uint16_t h = lt_f32_to_f16(src[i]);
            memcpy((uint8_t *)dst + 2 * i, &h, 2);
        } else if (dt == LT_ST_BF16) {
            uint16_t h = lt_f32_to_bf16(src[i]);
            memcpy((uint8_t *)dst + 2 * i, &h, 2);
        } else {
            memcpy((uint8_t *)dst + 4 * i, &src[i], 4);
        }
    }
}

static lt_model_status copy_file(const char *src_dir, const char *out_dir, const char *name,
                                 bool required, char *err, size_t errlen)
{
    char src[4096], dst[4096];
    snprintf(src, sizeof(src), "%s/%s", src_dir, name);
    snprintf(dst, sizeof(dst), "%s/%s", out_dir, name);
    size_t len = 0;
    char *data = lt_export_read_file(src, &len);
    if (!data)
        return required || errno != ENOENT
                   ? fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot read: %s", src,
                          strerror(errno))
                   : LT_MODEL_OK;
    lt_model_status st = lt_export_write_file(dst, data, len, err, errlen);
    free(data);
    return st;
}

lt_model_status lt_export_merged(const lt_model *m, const lt_lora_adapter *a,
                                 const char *src_dir, const char *out_dir, bool all_f32,
                                 char *err, size_t errlen)
{
    if (!m || !src_dir || !out_dir)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "merge: NULL argument");
    if (a && a->n_layers != m->cfg.n_layers)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "merge: adapter and model layers differ");
    lt_st_set *set = NULL;
    lt_st_writer *w = NULL;
    void **bufs = NULL;
    float *h = NULL;
    lt_model_status st = lt_export_mkdir(out_dir, err, errlen);
    if (st)
        return st;
    if (lt_st_set_open_dir(src_dir, &set, err, errlen) != LT_ST_OK)
        return LT_MODEL_ERR_FORMAT;
    w = lt_st_writer_new();
    bufs = calloc((size_t)m->n_params, sizeof(void *));
    if (!w || !bufs) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto cleanup;
    }
    lt_st_writer_set_metadata(w, "format", "pt");
    for (int i = 0; i < m->n_params; i++) {
        const lt_model_param *p = &m->params[i];
        const lt_st_tensor *ft = lt_st_set_find(set, p->name, NULL);
        int64_t n = lt_tensor_numel(p->tensor);
        if (!ft || ft->numel != n) {
            st = fail(LT_MODEL_ERR_TENSOR, err, errlen,
                      "merge: %s is missing from %s or has another size", p->name, src_dir);
            goto cleanup;
        }
        free(h);
        h = malloc((size_t)n * sizeof(float));
        if (!h || lt_tensor_download_f32(p->tensor, h, n) != LT_OK) {
            st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "merge: cannot read %s", p->name);
            goto cleanup;
        }
        int s = a && p->layer >= 0 ? slot_of(m, p->layer, p->tensor) : -1;
        if (s >= 0 && a->mods[p->layer][s].A &&
            (st = merge_delta(a, &a->mods[p->layer][s], p->layout, h, err, errlen)))
            goto cleanup;
        lt_st_dtype dt = !all_f32 && (ft->dtype == LT_ST_F16 || ft->dtype == LT_ST_BF16)
                             ? ft->dtype
                             : LT_ST_F32;
        size_t esz = lt_st_dtype_size(dt);
        bufs[i] = malloc((size_t)n * esz);
        if (!bufs[i]) {
            st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
            goto cleanup;
        }
        if (p->layout == LT_LAYOUT_QKV_BLOCKS) { /* [3, in, out] -> [in, 3 * out] */
            int64_t in = lt_tensor_dim(p->tensor, 1), o = lt_tensor_dim(p->tensor, 2);
            float *f = malloc((size_t)n * sizeof(float));
            if (!f) {
                st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
                goto cleanup;
            }
            for (int64_t b = 0; b < 3; b++)
                for (int64_t r = 0; r < in; r++)
                    memcpy(f + r * 3 * o + b * o, h + (b * in + r) * o, (size_t)o * sizeof(float));
            free(h);
            h = f;
        }
        convert(h, n, dt, bufs[i]);
        if (lt_st_writer_add(w, p->name, dt, ft->ndim, ft->shape, bufs[i], (size_t)n * esz, err,
                             errlen) != LT_ST_OK) {
            st = LT_MODEL_ERR_FORMAT;
            goto cleanup;
        }
    }
    static const char *tok_files[] = {"tokenizer.json",      "tokenizer_config.json",
                                      "special_tokens_map.json", "generation_config.json",
                                      "vocab.json",          "merges.txt",
                                      "tokenizer.model",     "added_tokens.json",
                                      "chat_template.jinja"};
    for (size_t i = 0; i < sizeof(tok_files) / sizeof(tok_files[0]); i++)
        if ((st = copy_file(src_dir, out_dir, tok_files[i], false, err, errlen)))
            goto cleanup;
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors", out_dir);
    if (lt_st_writer_write(w, path, err, errlen) != LT_ST_OK) {
        st = LT_MODEL_ERR_IO;
        goto cleanup;
    }
    st = copy_file(src_dir, out_dir, "config.json", true, err, errlen);
cleanup:
    free(h);
    for (int i = 0; bufs && i < m->n_params; i++)
        free(bufs[i]);
    free(bufs);
    lt_st_writer_free(w);
    lt_st_set_close(set);
    return st;
}
