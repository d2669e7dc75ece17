/*
 * run_load.c - rebuild a run's trained model from the store: the run's config, its base
 * model, a trainer of the same method and options, a chosen checkpoint loaded into it, and a
 * master-copy sync so F16/BF16 model tensors receive the fp32 master values.
 */
#include "train/run_load.h"

#include "train/checkpoint.h"
#include "train/train_config.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lt_model_status fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return st;
}

/* Picks the checkpoint: "last"/NULL, "best" or a step number. */
static bool pick(lt_store *st, int64_t run_id, const char *which, lt_run_loaded *l)
{
    lt_store_iter *it = NULL;
    lt_store_checkpoint c;
    bool best = which && !strcmp(which, "best");
    char *end = NULL;
    long long want = which && !best && strcmp(which, "last") ? strtoll(which, &end, 10) : -1;
    double best_loss = INFINITY;
    bool have = false, have_kind_best = false;
    l->ckpt_step = -1;
    if (lt_store_checkpoints_iter(st, run_id, &it) != LT_STORE_OK)
        return false;
    while (lt_store_checkpoints_next(it, &c) == LT_STORE_OK) {
        if (!c.path)
            continue;
        bool take;
        if (want >= 0)
            take = c.step == want;
        else if (best) {
            bool kb = c.kind && !strcmp(c.kind, "best");
            take = (kb && !have_kind_best) || (!have_kind_best && !kb && c.loss < best_loss);
            if (kb)
                have_kind_best = true;
            if (take && !isnan(c.loss))
                best_loss = c.loss;
        } else
            take = c.step > l->ckpt_step;
        if (take) {
            have = true;
            l->ckpt_step = c.step;
            l->ckpt_id = c.id;
            snprintf(l->ckpt_path, sizeof(l->ckpt_path), "%s", c.path);
            snprintf(l->ckpt_kind, sizeof(l->ckpt_kind), "%s", c.kind ? c.kind : "");
        }
    }
    lt_store_iter_free(it);
    return have;
}

lt_model_status lt_run_load(lt_store *st, lt_device *dev, int64_t run_id, const char *which,
                            lt_run_loaded *l, char *err, size_t errlen)
{
    lt_store_iter *it = NULL;
    lt_store_run r;
    lt_train_config c;
    lt_ckpt_tensor *ts = NULL;
    int nt = 0;
    bool *train_layer = NULL;
    char e[1024];
    lt_model_status rc = LT_MODEL_ERR_ARG;
    memset(l, 0, sizeof(*l));
    memset(&c, 0, sizeof(c));
    if (lt_store_run_get(st, run_id, &it, &r) != LT_STORE_OK)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "run %lld: not found", (long long)run_id);
    snprintf(l->model_dir, sizeof(l->model_dir), "%s", r.model_path ? r.model_path : "");
    bool parsed = lt_train_config_parse(r.config, strlen(r.config), "run config", NULL, &c, e,
                                        sizeof(e));
    lt_store_iter_free(it);
    if (!parsed) {
        fail(LT_MODEL_ERR_CONFIG, err, errlen, "run %lld: %s", (long long)run_id, e);
        goto out;
    }
    if (!l->model_dir[0]) {
        fail(LT_MODEL_ERR_CONFIG, err, errlen, "run %lld has no model folder recorded",
             (long long)run_id);
        goto out;
    }
    if (!pick(st, run_id, which, l)) {
        fail(LT_MODEL_ERR_ARG, err, errlen, "run %lld has no %s checkpoint%s%s",
             (long long)run_id, which ? which : "finished", which ? "" : " (train it first)",
             "");
        goto out;
    }
    /* a QLoRA run's adapter was trained on the NF4 base: evaluate it on the same */
    int wdt = !c.qlora ? LT_MODEL_DTYPE_STORED
                       : c.qlora_double_quant ? LT_MODEL_DTYPE_NF4_DQ : (int)LT_NF4;
    if ((rc = lt_model_load(l->model_dir, dev, wdt, &l->model, err, errlen)))
        goto out;
    const lt_model_config *mc = lt_model_get_config(l->model);
    l->method = c.method;
    rc = LT_MODEL_ERR_UNSUPPORTED;
    if (c.method == LT_METHOD_FREEZE) {
        if (c.freeze_kind == LT_FREEZE_HALF) {
            fail(rc, err, errlen, "run %lld: a \"half\" freeze run cannot be rebuilt from its "
                 "checkpoint yet", (long long)run_id);
            goto out;
        }
        if (!(train_layer = calloc((size_t)mc->n_layers + 1, sizeof(bool))) ||
            !lt_freeze_layers(&c, (int)mc->n_layers, 0, train_layer, e, sizeof(e))) {
            fail(LT_MODEL_ERR_OOM, err, errlen, "run %lld: %s", (long long)run_id,
                 train_layer ? e : "no memory");
            goto out;
        }
    }
    lt_trainer_opts to;
    lt_train_config_trainer_opts(&c, mc, train_layer, &to);
    to.max_batch = 1;
    to.max_seq = c.seq_len ? c.seq_len : (mc->max_pos < 2048 ? mc->max_pos : 2048);
    if ((rc = lt_trainer_new(l->model, &to, &l->trainer, e, sizeof(e)))) {
        fail(rc, err, errlen, "run %lld: trainer: %s", (long long)run_id, e);
        goto out;
    }
    int ns = lt_trainer_n_state(l->trainer);
    rc = LT_MODEL_ERR_OOM;
    if (!(ts = calloc((size_t)(3 * ns + 1), sizeof(*ts))))
        goto out;
    for (int i = 0; i < ns; i++) {
        const lt_trainer_state *s = lt_trainer_state_at(l->trainer, i);
        const char *pre[3] = {"param:", "m:", "v:"};
        lt_tensor *t[3] = {s->param, s->m, s->v};
        for (int j = 0; j < 3; j++) {
            size_t n = strlen(pre[j]) + strlen(s->name) + 1;
            char *name = malloc(n);
            if (!name)
                goto out;
            snprintf(name, n, "%s%s", pre[j], s->name);
            ts[nt++] = (lt_ckpt_tensor){name, t[j]};
        }
    }
    rc = LT_MODEL_ERR_FORMAT;
    if (!lt_ckpt_load(l->ckpt_path, ts, nt, e, sizeof(e))) {
        fail(rc, err, errlen, "run %lld: %s", (long long)run_id, e);
        goto out;
    }
    if ((rc = lt_trainer_sync_model(l->trainer, e, sizeof(e)))) {
        fail(rc, err, errlen, "run %lld: %s", (long long)run_id, e);
        goto out;
    }
    l->adapter = lt_trainer_lora(l->trainer);
    rc = LT_MODEL_OK;
out:
    for (int i = 0; i < nt; i++)
        free((char *)ts[i].name);
    free(ts);
    free(train_layer);
    lt_train_config_free(&c);
    if (rc != LT_MODEL_OK)
        lt_run_unload(l);
    return rc;
}

void lt_run_unload(lt_run_loaded *l)
{
    lt_trainer_free(l->trainer);
    l->trainer = NULL;
    lt_model_free(l->model);
    l->model = NULL;
}
