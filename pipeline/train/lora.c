/*
 * lora.c - LoRA adapters as the model sees them: which projections an option set targets,
 * their widths and Hugging Face module paths (for PEFT names), allocation and PEFT's
 * initialisation. The forward pass applies an attached adapter (forward.c); the backward
 * pass computes its gradients (backward.c). This file never touches the optimizer.
 */
#include "train_impl.h"

#include <math.h>
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

uint32_t lt_lora_slots(const lt_model *m, uint32_t t) { return lt_lora_slots_of(&m->cfg, t); }

uint32_t lt_lora_slots_of(const lt_model_config *c, uint32_t t)
{
    uint32_t s = 0;
    if (c->arch == LT_ARCH_GPT2) {
        if (t & (LT_LORA_Q | LT_LORA_K | LT_LORA_V | LT_LORA_ATTN))
            s |= 1u << LT_LSLOT_ATTN;
        if (t & LT_LORA_O)
            s |= 1u << LT_LSLOT_O;
        if (t & LT_LORA_UP)
            s |= 1u << LT_LSLOT_UP;
        if (t & LT_LORA_DOWN)
            s |= 1u << LT_LSLOT_DOWN;
        return s;
    }
    static const uint32_t bit[] = {LT_LORA_Q,    LT_LORA_K,  LT_LORA_V,   LT_LORA_O,
                                   LT_LORA_GATE, LT_LORA_UP, LT_LORA_DOWN};
    for (int i = 0; i < 7; i++)
        if (t & bit[i])
            s |= 1u << i;
    return s;
}

void lt_lora_slot_dims(const lt_model *m, int s, int64_t *in, int64_t *out)
{
    lt_lora_slot_dims_of(&m->cfg, s, in, out);
}

void lt_lora_slot_dims_of(const lt_model_config *c, int s, int64_t *in, int64_t *out)
{
    const int64_t D = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    switch (s) {
    case LT_LSLOT_Q: *in = D, *out = qd; break;
    case LT_LSLOT_K:
    case LT_LSLOT_V: *in = D, *out = kvd; break;
    case LT_LSLOT_O: *in = qd, *out = D; break;
    case LT_LSLOT_GATE:
    case LT_LSLOT_UP: *in = D, *out = c->ffn; break;
    case LT_LSLOT_DOWN: *in = c->ffn, *out = D; break;
    default: *in = D, *out = 3 * D; break; /* LT_LSLOT_ATTN */
    }
}

const char *lt_lora_slot_target(const lt_model *m, int s)
{
    static const char *llama[] = {"q_proj",    "k_proj",  "v_proj",    "o_proj",
                                  "gate_proj", "up_proj", "down_proj", "c_attn"};
    static const char *gpt2[] = {"c_attn", "c_attn", "c_attn", "c_proj",
                                 "",       "c_fc",   "c_proj", "c_attn"};
    if (s < 0 || s >= LT_LSLOT_COUNT)
        return "";
    return m->cfg.arch == LT_ARCH_GPT2 ? gpt2[s] : llama[s];
}

void lt_lora_module_path(const lt_model *m, int l, int s, char *buf, size_t n)
{
    if (m->cfg.arch == LT_ARCH_GPT2) {
        static const char *p[] = {"attn.c_attn", "attn.c_attn", "attn.c_attn", "attn.c_proj",
                                  "mlp.gate",    "mlp.c_fc",    "mlp.c_proj",  "attn.c_attn"};
        snprintf(buf, n, "transformer.h.%d.%s", l, p[s]);
    } else {
        static const char *p[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                  "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                  "mlp.down_proj",    "self_attn.qkv"};
        snprintf(buf, n, "model.layers.%d.%s", l, p[s]);
    }
}

void lt_lora_free(lt_lora_adapter *a)
{
    if (!a)
        return;
    for (int64_t l = 0; a->mods && l < a->n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            lt_lora_module *mo = &a->mods[l][s];
            for (int k = 0; k < 3; k++)
                lt_tensor_free(mo->Bpart[k]);
            lt_tensor_free(mo->A);
            lt_tensor_free(mo->B);
        }
    free(a->mods);
    free(a);
}

lt_model_status lt_lora_alloc(lt_model *m, uint32_t slots, int r, float scale, float dropout,
                              lt_lora_adapter **out, char *err, size_t errlen)
{
    if (!m || !out || r <= 0 || !(dropout >= 0.0f && dropout < 1.0f) || !isfinite(scale))
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "lora: bad rank %d, scale %g or dropout %g (want r > 0, 0 <= dropout < 1)",
                    r, (double)scale, (double)dropout);
    if (!slots)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "lora: no target module exists in a %s model", lt_arch_name(m->cfg.arch));
    *out = NULL;
    lt_lora_adapter *a = calloc(1, sizeof(*a));
    if (!a)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    a->r = r;
    a->scale = scale;
    a->dropout = dropout;
    a->n_layers = m->cfg.n_layers;
    a->mods = calloc((size_t)a->n_layers, sizeof(*a->mods));
    if (!a->mods)
        goto oom;
    for (int64_t l = 0; l < a->n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            if (!(slots & (1u << s)))
                continue;
            lt_lora_module *mo = &a->mods[l][s];
            lt_lora_slot_dims(m, s, &mo->in, &mo->out);
            mo->A = lt_tensor_new_2d(m->dev, LT_F32, r, mo->in);
            mo->B = lt_tensor_new_2d(m->dev, LT_F32, mo->out, r);
            if (!mo->A || !mo->B)
                goto oom;
            if (s == LT_LSLOT_ATTN)
                for (int k = 0; k < 3; k++) {
                    int64_t shape[2] = {mo->out / 3, r};
                    mo->Bpart[k] = lt_tensor_view(mo->B, k * shape[0] * r, 2, shape);
                    if (!mo->Bpart[k])
                        goto oom;
                }
        }
    *out = a;
    return LT_MODEL_OK;
oom:
    fail(LT_MODEL_ERR_OOM, err, errlen, "lora: cannot allocate adapters of rank %d: %s", r,
         lt_device_last_error(m->dev));
    lt_lora_free(a);
    return LT_MODEL_ERR_OOM;
}

lt_model_status lt_lora_init(lt_lora_adapter *a, uint64_t seed, char *err, size_t errlen)
{
    uint64_t rng = seed;
    for (int64_t l = 0; l < a->n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            lt_lora_module *mo = &a->mods[l][s];
            if (!mo->A)
                continue;
            int64_t n = a->r * mo->in;
            float *h = malloc((size_t)n * sizeof(float));
            if (!h)
                return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
            float bound = 1.0f / sqrtf((float)mo->in);
            for (int64_t i = 0; i < n; i++) {
                double u = (double)(lt_splitmix64(&rng) >> 11) * (1.0 / 9007199254740992.0);
                h[i] = (float)((2.0 * u - 1.0) * bound);
            }
            lt_status st = lt_tensor_upload_f32(mo->A, h, n);
            free(h);
            if (st == LT_OK)
                st = lt_fill(mo->B, 0.0f);
            if (st != LT_OK)
                return fail(LT_MODEL_ERR_DEVICE, err, errlen, "lora init: %s",
                            lt_device_last_error(lt_tensor_device(mo->A)));
        }
    return LT_MODEL_OK;
}
