/*
 * eval_system.c - loading what a system under evaluation runs: the base model, the base with
 * a PEFT adapter attached (when export/peft.h is part of the build), or the base with a
 * training run's newest checkpoint loaded into a trainer of the run's own method; and the
 * checks done before any work (the run's recorded base model hash against the base given).
 */
#include "eval/eval_impl.h"

#include "data/sha256.h"
#include "train/checkpoint.h"
#include "train/train_config.h"

#if defined(__has_include)
#if __has_include("export/peft.h")
#include "export/peft.h"
#define EVAL_HAS_PEFT 1
#endif
#endif

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool lt_eval_has_adapters(void)
{
#ifdef EVAL_HAS_PEFT
    return true;
#else
    return false;
#endif
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool eval_model_hash(const char *dir, char hex[65])
{
    lt_sha256 h;
    lt_sha256_init(&h);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    char *names[256];
    int n = 0;
    bool ok = true;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (!strcmp(e->d_name, "config.json") ||
            (l > 12 && !strcmp(e->d_name + l - 12, ".safetensors")))
            if (!(names[n++] = strdup(e->d_name)))
                ok = false;
    }
    closedir(d);
    if (!ok) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        return false;
    }
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    /* as training hashes it: config.json whole, each safetensors file's length prefix and
     * JSON header (names, dtypes, shapes, offsets) */
    static uint8_t buf[1 << 16];
    for (int i = 0; i < n; i++) {
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            ok = false;
        } else {
            uint64_t want = UINT64_MAX;
            if (strcmp(names[i], "config.json") != 0) {
                uint8_t hdr[8];
                want = 0;
                if (fread(hdr, 1, 8, f) == 8)
                    for (int k = 7; k >= 0; k--)
                        want = (want << 8) | hdr[k];
                lt_sha256_update(&h, hdr, 8);
            }
            while (want > 0) {
                size_t k = fread(buf, 1, want < sizeof(buf) ? (size_t)want : sizeof(buf), f);
                if (k == 0)
                    break;
                lt_sha256_update(&h, buf, k);
                want -= k;
            }
            fclose(f);
        }
        free(names[i]);
    }
    uint8_t dig[32];
    lt_sha256_final(&h, dig, hex);
    return ok;
}

/* The run's newest checkpoint path (largest step). */
static lt_eval_status run_checkpoint(lt_store *st, int64_t run_id, char *path, size_t n,
                                     int64_t *step)
{
    lt_store_iter *it = NULL;
    lt_store_checkpoint c;
    *step = -1;
    if (lt_store_checkpoints_iter(st, run_id, &it) != LT_STORE_OK)
        return LT_EVAL_STORE;
    while (lt_store_checkpoints_next(it, &c) == LT_STORE_OK)
        if (c.path && c.step > *step) {
            *step = c.step;
            snprintf(path, n, "%s", c.path);
        }
    lt_store_iter_free(it);
    return *step >= 0 ? LT_EVAL_OK : LT_EVAL_NOT_FOUND;
}

lt_eval_status eval_run_model(lt_store *st, int64_t run_id, char *out, size_t n, char *err,
                              size_t errlen)
{
    lt_store_iter *it = NULL;
    lt_store_run r;
    lt_store_status s = lt_store_run_get(st, run_id, &it, &r);
    if (s != LT_STORE_OK) {
        snprintf(err, errlen, "run %lld: %s", (long long)run_id, lt_store_status_str(s));
        return s == LT_STORE_NOT_FOUND ? LT_EVAL_NOT_FOUND : LT_EVAL_STORE;
    }
    snprintf(out, n, "%s", r.model_path ? r.model_path : "");
    lt_store_iter_free(it);
    if (!out[0]) {
        snprintf(err, errlen, "run %lld has no model folder recorded", (long long)run_id);
        return LT_EVAL_NOT_FOUND;
    }
    return LT_EVAL_OK;
}

lt_eval_status eval_system_check(lt_store *st, const char *dir, const lt_eval_system *sys,
                                 char *err, size_t errlen)
{
    struct stat sb;
    if (sys->adapter) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/adapter_config.json", sys->adapter);
        if (stat(p, &sb) != 0) {
            snprintf(err, errlen, "--adapter %s: no adapter_config.json there", sys->adapter);
            return LT_EVAL_NOT_FOUND;
        }
        if (!lt_eval_has_adapters()) {
            snprintf(err, errlen, "--adapter: this build has no PEFT adapter loader");
            return LT_EVAL_USAGE;
        }
    }
    if (sys->run_id <= 0)
        return LT_EVAL_OK;
    lt_store_iter *it = NULL;
    lt_store_run r;
    lt_store_status s = lt_store_run_get(st, sys->run_id, &it, &r);
    if (s != LT_STORE_OK) {
        snprintf(err, errlen, "run %lld: %s", (long long)sys->run_id, lt_store_status_str(s));
        return s == LT_STORE_NOT_FOUND ? LT_EVAL_NOT_FOUND : LT_EVAL_STORE;
    }
    char want[65] = "", have[65] = "";
    snprintf(want, sizeof(want), "%s", r.model_hash ? r.model_hash : "");
    lt_store_iter_free(it);
    if (want[0] && (!eval_model_hash(dir, have) || strcmp(want, have) != 0)) {
        snprintf(err, errlen,
                 "run %lld was trained on a different base model than %s (recorded model hash "
                 "%.12s, this folder's %.12s)",
                 (long long)sys->run_id, dir, want, have[0] ? have : "unreadable");
        return LT_EVAL_DATA;
    }
    char path[4400];
    int64_t step;
    lt_eval_status es = run_checkpoint(st, sys->run_id, path, sizeof(path), &step);
    if (es != LT_EVAL_OK) {
        snprintf(err, errlen, "run %lld has no checkpoint to evaluate", (long long)sys->run_id);
        return es;
    }
    return LT_EVAL_OK;
}

/* Makes a trainer of the run's method on l->model and loads the checkpoint into it. */
static lt_eval_status load_run(lt_store *st, int64_t run_id, eval_loaded *l, char *err,
                               size_t errlen)
{
    lt_store_iter *it = NULL;
    lt_store_run r;
    lt_train_config c;
    lt_eval_status rc = LT_EVAL_MODEL;
    lt_ckpt_tensor *ts = NULL;
    int nt = 0;
    bool *train_layer = NULL;
    char e[1024], path[4400];
    int64_t step;
    memset(&c, 0, sizeof(c));
    if (lt_store_run_get(st, run_id, &it, &r) != LT_STORE_OK) {
        snprintf(err, errlen, "run %lld: not found", (long long)run_id);
        return LT_EVAL_NOT_FOUND;
    }
    bool parsed = lt_train_config_parse(r.config, strlen(r.config), "run config", NULL, &c, e,
                                        sizeof(e));
    lt_store_iter_free(it);
    if (!parsed) {
        snprintf(err, errlen, "run %lld: %s", (long long)run_id, e);
        goto out;
    }
    if (run_checkpoint(st, run_id, path, sizeof(path), &step) != LT_EVAL_OK) {
        snprintf(err, errlen, "run %lld has no checkpoint", (long long)run_id);
        goto out;
    }
    const lt_model_config *mc = lt_model_get_config(l->model);
    lt_trainer_opts to;
    memset(&to, 0, sizeof(to));
    to.method = c.method;
    to.lora = c.lora;
    to.lora.seed = c.seed;
    if (c.method == LT_METHOD_LORA && c.lora_all_linear)
        to.lora.targets = lt_arch_is_llama_like(mc->arch)
                              ? (LT_LORA_Q | LT_LORA_K | LT_LORA_V | LT_LORA_O | LT_LORA_GATE |
                                 LT_LORA_UP | LT_LORA_DOWN)
                              : (LT_LORA_ATTN | LT_LORA_O | LT_LORA_UP | LT_LORA_DOWN);
    if (c.method == LT_METHOD_FREEZE) {
        if (c.freeze_kind == LT_FREEZE_HALF) {
            snprintf(err, errlen, "run %lld: evaluating a \"half\" freeze run from its checkpoint "
                                  "is not supported yet (export it first)", (long long)run_id);
            goto out;
        }
        if (!(train_layer = calloc((size_t)mc->n_layers + 1, sizeof(bool))) ||
            !lt_freeze_layers(&c, (int)mc->n_layers, 0, train_layer, e, sizeof(e))) {
            snprintf(err, errlen, "run %lld: %s", (long long)run_id, train_layer ? e : "no memory");
            goto out;
        }
        to.train_layer = train_layer;
        to.train_embeddings = c.freeze_train_embeddings;
    }
    to.beta1 = (float)c.beta1;
    to.beta2 = (float)c.beta2;
    to.eps = (float)c.eps;
    to.max_batch = 1;
    to.max_seq = c.seq_len ? c.seq_len : (mc->max_pos < 2048 ? mc->max_pos : 2048);
    if (lt_trainer_new(l->model, &to, &l->trainer, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "run %lld: trainer: %s", (long long)run_id, e);
        goto out;
    }
    int ns = lt_trainer_n_state(l->trainer);
    if (!(ts = calloc((size_t)(3 * ns + 1), sizeof(*ts)))) {
        rc = LT_EVAL_NOMEM;
        goto out;
    }
    for (int i = 0; i < ns; i++) {
        const lt_trainer_state *s = lt_trainer_state_at(l->trainer, i);
        const char *pre[3] = {"param:", "m:", "v:"};
        lt_tensor *t[3] = {s->param, s->m, s->v};
        for (int j = 0; j < 3; j++) {
            size_t n = strlen(pre[j]) + strlen(s->name) + 1;
            char *name = malloc(n);
            if (!name) {
                rc = LT_EVAL_NOMEM;
                goto out;
            }
            snprintf(name, n, "%s%s", pre[j], s->name);
            ts[nt++] = (lt_ckpt_tensor){name, t[j]};
        }
    }
    if (!lt_ckpt_load(path, ts, nt, e, sizeof(e))) {
        snprintf(err, errlen, "run %lld: %s", (long long)run_id, e);
        goto out;
    }
    /* a zero-learning-rate update rounds fp32 master copies into F16/BF16 model tensors
     * (a no-op on F32 models, whose trainable tensors are the model's own) */
    double gn;
    bool skipped;
    if (lt_trainer_step(l->trainer, 0.0f, 0.0f, &gn, &skipped, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "run %lld: %s", (long long)run_id, e);
        goto out;
    }
    const char *base = strrchr(path, '/');
    snprintf(l->detail, sizeof(l->detail), "%s, %.400s", lt_method_name(c.method),
             base ? base + 1 : path);
    rc = LT_EVAL_OK;
out:
    for (int i = 0; i < nt; i++)
        free((char *)ts[i].name);
    free(ts);
    free(train_layer);
    lt_train_config_free(&c);
    return rc;
}

lt_eval_status eval_system_load(lt_store *st, lt_device *dev, const char *dir,
                                const lt_eval_system *sys, eval_loaded *l, char *err,
                                size_t errlen)
{
    char e[1024];
    memset(l, 0, sizeof(*l));
    snprintf(l->model_dir, sizeof(l->model_dir), "%s", dir);
    if (lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &l->model, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "%s", e);
        return LT_EVAL_MODEL;
    }
    lt_eval_status rc = LT_EVAL_OK;
    if (sys->run_id > 0)
        rc = load_run(st, sys->run_id, l, err, errlen);
#ifdef EVAL_HAS_PEFT
    if (rc == LT_EVAL_OK && sys->adapter) {
        lt_lora_adapter *a = NULL;
        if (lt_peft_load(l->model, sys->adapter, &a, e, sizeof(e)) != LT_MODEL_OK ||
            lt_peft_attach(l->model, a, e, sizeof(e)) != LT_MODEL_OK) {
            snprintf(err, errlen, "adapter %s does not fit %s: %s", sys->adapter, dir, e);
            lt_peft_free(a);
            rc = LT_EVAL_DATA;
        } else {
            l->adapter = a;
            snprintf(l->detail, sizeof(l->detail), "adapter %s", sys->adapter);
        }
    }
#else
    if (rc == LT_EVAL_OK && sys->adapter) {
        snprintf(err, errlen, "--adapter: this build has no PEFT adapter loader");
        rc = LT_EVAL_USAGE;
    }
#endif
    if (rc != LT_EVAL_OK)
        eval_system_unload(l);
    return rc;
}

void eval_system_unload(eval_loaded *l)
{
#ifdef EVAL_HAS_PEFT
    if (l->adapter) {
        char e[256];
        lt_peft_attach(l->model, NULL, e, sizeof(e));
        lt_peft_free(l->adapter);
    }
#endif
    l->adapter = NULL;
    lt_trainer_free(l->trainer);
    l->trainer = NULL;
    lt_model_free(l->model);
    l->model = NULL;
}
