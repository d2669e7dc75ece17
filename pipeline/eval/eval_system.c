/*
 * eval_system.c - loading what a system under evaluation runs: the base model, the base with
 * a PEFT adapter attached, or a training run's model at its newest checkpoint (loaded by
 * train/run_load.h, as export does); and the
 * checks done before any work (the run's recorded base model hash against the base given).
 */
#include "eval/eval_impl.h"

#include "data/sha256.h"
#include "train/checkpoint.h"
#include "train/train_config.h"

#include "export/peft.h"
#include "train/run_load.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


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

lt_eval_status eval_system_load(lt_store *st, lt_device *dev, const char *dir,
                                const lt_eval_system *sys, eval_loaded *l, char *err,
                                size_t errlen)
{
    char e[1024];
    memset(l, 0, sizeof(*l));
    snprintf(l->model_dir, sizeof(l->model_dir), "%s", dir);
    if (sys->run_id > 0) {
        /* the run's own base (eval_system_check matched its hash with dir's) with the run's
         * newest checkpoint loaded into a trainer of the run's method */
        lt_run_loaded rl;
        if (lt_run_load(st, dev, sys->run_id, "last", &rl, e, sizeof(e)) != LT_MODEL_OK) {
            snprintf(err, errlen, "%s", e);
            return LT_EVAL_MODEL;
        }
        l->model = rl.model;
        l->trainer = rl.trainer;
        const char *base = strrchr(rl.ckpt_path, '/');
        snprintf(l->detail, sizeof(l->detail), "%s, %.400s", lt_method_name(rl.method),
                 base ? base + 1 : rl.ckpt_path);
        return LT_EVAL_OK;
    }
    if (lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &l->model, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "%s", e);
        return LT_EVAL_MODEL;
    }
    lt_eval_status rc = LT_EVAL_OK;
    if (sys->adapter) {
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
    if (rc != LT_EVAL_OK)
        eval_system_unload(l);
    return rc;
}

void eval_system_unload(eval_loaded *l)
{
    if (l->adapter) {
        char e[256];
        lt_peft_attach(l->model, NULL, e, sizeof(e));
        lt_peft_free(l->adapter);
    }
    l->adapter = NULL;
    lt_trainer_free(l->trainer);
    l->trainer = NULL;
    lt_model_free(l->model);
    l->model = NULL;
}
