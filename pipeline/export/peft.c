/*
 * peft.c - write a trained LoRA adapter as a PEFT folder and load one back for a model
 * (peft.h). Also the export module's atomic file writer (export_impl.h).
 *
 * The loader trusts nothing in the folder: every tensor name must map to a module the model
 * has, every shape must match the model and the config's rank, and a bad folder is an error
 * value naming the file and tensor, never a crash.
 */
#include "export_impl.h"
#include "model/safetensors.h"
#include "peft.h"
#include "train/train_impl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

lt_model_status lt_export_write_file(const char *path, const void *data, size_t len, char *err,
                                     size_t errlen)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    lt_model_status st = LT_MODEL_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    for (size_t off = 0; ok && off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w <= 0)
            ok = false;
        else
            off += (size_t)w;
    }
    if (!ok || fsync(fd) != 0) {
        st = fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    } else if (close(fd) != 0 || rename(tmp, path) != 0) {
        st = fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return st;
}

lt_model_status lt_export_mkdir(const char *dir, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode)
                   ? LT_MODEL_OK
                   : fail(LT_MODEL_ERR_IO, err, errlen, "%s exists and is not a folder", dir);
    if (mkdir(dir, 0755) != 0)
        return fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot create: %s", dir, strerror(errno));
    return LT_MODEL_OK;
}

char *lt_export_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t nc = cap ? 2 * cap : 8192;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- writing ----------------------------------------------------------------------------- */

static char *config_json(const lt_model *m, const lt_lora_adapter *a, const lt_lora_opts *lo,
                         const char *base)
{
    cJSON *j = cJSON_CreateObject(), *tm = cJSON_CreateArray();
    if (!j || !tm) {
        cJSON_Delete(j);
        cJSON_Delete(tm);
        return NULL;
    }
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddNumberToObject(j, "r", a->r);
    cJSON_AddNumberToObject(j, "lora_alpha", lo->alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", lo->dropout);
    /* target_modules: each module name once, in slot order */
    const char *seen[LT_LSLOT_COUNT];
    int n_seen = 0;
    for (int s = 0; s < LT_LSLOT_COUNT; s++) {
        bool present = false;
        for (int64_t l = 0; l < a->n_layers && !present; l++)
            present = a->mods[l][s].A != NULL;
        const char *name = lt_lora_slot_target(m, s);
        bool dup = false;
        for (int i = 0; i < n_seen; i++)
            dup |= strcmp(seen[i], name) == 0;
        if (present && !dup) {
            seen[n_seen++] = name;
            cJSON_AddItemToArray(tm, cJSON_CreateString(name));
        }
    }
    cJSON_AddItemToObject(j, "target_modules", tm);
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "use_rslora", lo->rslora);
    cJSON_AddBoolToObject(j, "use_dora", false);
    cJSON_AddBoolToObject(j, "fan_in_fan_out", m->cfg.arch == LT_ARCH_GPT2);
    if (base)
        cJSON_AddStringToObject(j, "base_model_name_or_path", base);
    else
        cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddBoolToObject(j, "init_lora_weights", true);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddBoolToObject(j, "inference_mode", true);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    return text;
}

lt_model_status lt_peft_write(const lt_trainer *t, const char *dir, const char *base_model,
                              char *err, size_t errlen)
{
    const lt_lora_adapter *a = lt_trainer_lora(t);
    if (!a || !dir)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "peft: the trainer has no LoRA adapter to write (method is not LoRA)");
    const lt_model *m = lt_trainer_model(t);
    lt_model_status st = lt_export_mkdir(dir, err, errlen);
    if (st)
        return st;
    int64_t n_mods = a->n_layers * LT_LSLOT_COUNT;
    float **bufs = calloc((size_t)n_mods * 2, sizeof(float *));
    lt_st_writer *w = lt_st_writer_new();
    char *cfg = NULL, path[4096];
    if (!bufs || !w) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto cleanup;
    }
    lt_st_writer_set_metadata(w, "format", "pt");
    for (int64_t l = 0; l < a->n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            const lt_lora_module *mo = &a->mods[l][s];
            if (!mo->A)
                continue;
            char mpath[160], name[240];
            lt_lora_module_path(m, (int)l, s, mpath, sizeof(mpath));
            for (int k = 0; k < 2; k++) {
                lt_tensor *x = k ? mo->B : mo->A;
                int64_t n = lt_tensor_numel(x), shape[2] = {lt_tensor_dim(x, 0),
                                                            lt_tensor_dim(x, 1)};
                float *h = malloc((size_t)n * sizeof(float));
                bufs[(l * LT_LSLOT_COUNT + s) * 2 + k] = h;
                if (!h || lt_tensor_download_f32(x, h, n) != LT_OK) {
                    st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "peft: cannot read %s: %s",
                              mpath, lt_device_last_error(m->dev));
                    goto cleanup;
                }
                snprintf(name, sizeof(name), "base_model.model.%s.lora_%c.weight", mpath,
                         k ? 'B' : 'A');
                if (lt_st_writer_add(w, name, LT_ST_F32, 2, shape, h, (size_t)n * sizeof(float),
                                     err, errlen) != LT_ST_OK) {
                    st = LT_MODEL_ERR_FORMAT;
                    goto cleanup;
                }
            }
        }
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    if (lt_st_writer_write(w, path, err, errlen) != LT_ST_OK) {
        st = LT_MODEL_ERR_IO;
        goto cleanup;
    }
    cfg = config_json(m, a, lt_trainer_lora_opts(t), base_model);
    if (!cfg) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto cleanup;
    }
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    st = lt_export_write_file(path, cfg, strlen(cfg), err, errlen);
cleanup:
    free(cfg);
    lt_st_writer_free(w);
    for (int64_t i = 0; bufs && i < n_mods * 2; i++)
        free(bufs[i]);
    free(bufs);
    return st;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* Maps a PEFT tensor name to (layer, slot, 0 = A / 1 = B); false when it names nothing m has. */
static bool parse_name(const lt_model *m, const char *name, int *layer, int *slot, int *ab)
{
    const char *pre = "base_model.model.";
    if (strncmp(name, pre, strlen(pre)) != 0)
        return false;
    const char *p = name + strlen(pre);
    const char *sfx[4] = {".lora_A.weight", ".lora_B.weight", ".lora_A.default.weight",
                          ".lora_B.default.weight"};
    size_t plen = 0;
    int which = -1;
    for (int i = 0; i < 4 && which < 0; i++) {
        size_t n = strlen(p), k = strlen(sfx[i]);
        if (n > k && strcmp(p + n - k, sfx[i]) == 0)
            which = i % 2, plen = n - k;
    }
    if (which < 0)
        return false;
    bool gpt2 = m->cfg.arch == LT_ARCH_GPT2;
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++) {
            if (gpt2 ? (s <= LT_LSLOT_V || s == LT_LSLOT_GATE) : s == LT_LSLOT_ATTN)
                continue;
            char path[160];
            lt_lora_module_path(m, (int)l, s, path, sizeof(path));
            const char *cand[2] = {path, gpt2 ? path + strlen("transformer.") : path};
            for (int c = 0; c < 2; c++)
                if (strlen(cand[c]) == plen && strncmp(cand[c], p, plen) == 0) {
                    *layer = (int)l, *slot = s, *ab = which;
                    return true;
                }
        }
    return false;
}

static bool to_f32(const lt_st_tensor *t, float *out)
{
    const uint8_t *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        uint16_t h;
        switch (t->dtype) {
        case LT_ST_F32: memcpy(&out[i], p + 4 * i, 4); break;
        case LT_ST_F16: memcpy(&h, p + 2 * i, 2), out[i] = lt_f16_to_f32(h); break;
        case LT_ST_BF16: memcpy(&h, p + 2 * i, 2), out[i] = lt_bf16_to_f32(h); break;
        default: return false;
        }
    }
    return true;
}

/* Reads r, alpha and rsLoRA from adapter_config.json, refusing what lathe cannot apply. */
static lt_model_status read_config(const char *dir, int *r, float *alpha, bool *rslora,
                                   char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    size_t len = 0;
    char *text = lt_export_read_file(path, &len);
    if (!text)
        return fail(LT_MODEL_ERR_IO, err, errlen, "%s: cannot read: %s", path, strerror(errno));
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    lt_model_status st = LT_MODEL_OK;
    if (!cJSON_IsObject(j)) {
        st = fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: not a JSON object", path);
        goto out;
    }
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "peft_type");
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(j, "r");
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(j, "lora_alpha");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "use_rslora");
    const cJSON *dora = cJSON_GetObjectItemCaseSensitive(j, "use_dora");
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(j, "rank_pattern");
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(j, "alpha_pattern");
    if (pt && !(cJSON_IsString(pt) && strcmp(pt->valuestring, "LORA") == 0))
        st = fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen, "%s: peft_type is not \"LORA\"", path);
    else if (!cJSON_IsNumber(jr) || jr->valuedouble < 1 || jr->valuedouble > 65536 ||
             jr->valuedouble != floor(jr->valuedouble))
        st = fail(LT_MODEL_ERR_CONFIG, err, errlen, "%s: \"r\" must be a positive integer",
                  path);
    else if (ja && !(cJSON_IsNumber(ja) && isfinite(ja->valuedouble)))
        st = fail(LT_MODEL_ERR_CONFIG, err, errlen, "%s: \"lora_alpha\" must be a number", path);
    else if (cJSON_IsTrue(dora))
        st = fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen, "%s: DoRA adapters are not supported",
                  path);
    else if ((cJSON_IsObject(rp) && rp->child) || (cJSON_IsObject(ap) && ap->child))
        st = fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                  "%s: per-module rank_pattern / alpha_pattern are not supported", path);
    if (!st) {
        *r = (int)jr->valuedouble;
        *alpha = ja ? (float)ja->valuedouble : 8.0f; /* PEFT's default */
        *rslora = cJSON_IsTrue(rs);
    }
out:
    cJSON_Delete(j);
    return st;
}

lt_model_status lt_peft_load(lt_model *m, const char *dir, lt_lora_adapter **out, char *err,
                             size_t errlen)
{
    if (!m || !dir || !out)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "peft load: NULL argument");
    *out = NULL;
    int r = 0;
    float alpha = 0;
    bool rslora = false;
    lt_model_status st = read_config(dir, &r, &alpha, &rslora, err, errlen);
    if (st)
        return st;
    char path[4096];
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    lt_st_file *f = NULL;
    lt_lora_adapter *a = NULL;
    float *h = NULL;
    if (lt_st_open(path, &f, err, errlen) != LT_ST_OK)
        return LT_MODEL_ERR_FORMAT;
    const int64_t L = m->cfg.n_layers;
    uint8_t(*have)[LT_LSLOT_COUNT] = calloc((size_t)L, sizeof(*have));
    uint32_t slots = 0;
    int64_t biggest = 1;
    if (!have) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < lt_st_count(f); i++) { /* first pass: names and shapes */
        const lt_st_tensor *t = lt_st_at(f, i);
        int l, s, ab;
        if (!parse_name(m, t->name, &l, &s, &ab)) {
            st = fail(LT_MODEL_ERR_TENSOR, err, errlen,
                      "%s: tensor %s is not a LoRA A/B of a module this %s model has", path,
                      t->name, lt_arch_name(m->cfg.arch));
            goto cleanup;
        }
        int64_t in, o;
        lt_lora_slot_dims(m, s, &in, &o);
        int64_t want0 = ab ? o : r, want1 = ab ? r : in;
        if (t->ndim != 2 || t->shape[0] != want0 || t->shape[1] != want1 ||
            (t->dtype != LT_ST_F32 && t->dtype != LT_ST_F16 && t->dtype != LT_ST_BF16)) {
            st = fail(LT_MODEL_ERR_TENSOR, err, errlen,
                      "%s: tensor %s: expected a float [%lld, %lld] (r = %d), got %s of %d dims",
                      path, t->name, (long long)want0, (long long)want1, r,
                      lt_st_dtype_name(t->dtype), t->ndim);
            goto cleanup;
        }
        if (have[l][s] & (1u << ab)) {
            st = fail(LT_MODEL_ERR_TENSOR, err, errlen, "%s: tensor %s appears twice", path,
                      t->name);
            goto cleanup;
        }
        have[l][s] |= (uint8_t)(1u << ab);
        slots |= 1u << s;
        biggest = t->numel > biggest ? t->numel : biggest;
    }
    for (int64_t l = 0; l < L; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++)
            if (have[l][s] == 1 || have[l][s] == 2) {
                char mp[160];
                lt_lora_module_path(m, (int)l, s, mp, sizeof(mp));
                st = fail(LT_MODEL_ERR_TENSOR, err, errlen, "%s: %s has lora_%c but not lora_%c",
                          path, mp, have[l][s] == 1 ? 'A' : 'B', have[l][s] == 1 ? 'B' : 'A');
                goto cleanup;
            }
    float scale = rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
    if ((st = lt_lora_alloc(m, slots, r, scale, 0.0f, &a, err, errlen)))
        goto cleanup;
    h = malloc((size_t)biggest * sizeof(float));
    if (!h) {
        st = fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto cleanup;
    }
    for (int64_t l = 0; l < L; l++) /* layers the file leaves out get a zero adapter */
        for (int s = 0; s < LT_LSLOT_COUNT; s++)
            if (a->mods[l][s].A && !have[l][s] &&
                (lt_fill(a->mods[l][s].A, 0) != LT_OK || lt_fill(a->mods[l][s].B, 0) != LT_OK)) {
                st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "peft: %s",
                          lt_device_last_error(m->dev));
                goto cleanup;
            }
    for (int i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        int l, s, ab;
        parse_name(m, t->name, &l, &s, &ab);
        lt_tensor *x = ab ? a->mods[l][s].B : a->mods[l][s].A;
        if (!to_f32(t, h) || lt_tensor_upload_f32(x, h, t->numel) != LT_OK) {
            st = fail(LT_MODEL_ERR_DEVICE, err, errlen, "%s: %s: upload failed: %s", path,
                      t->name, lt_device_last_error(m->dev));
            goto cleanup;
        }
    }
    *out = a;
    a = NULL;
cleanup:
    free(h);
    free(have);
    lt_lora_free(a);
    lt_st_close(f);
    return st;
}

void lt_peft_free(lt_lora_adapter *a) { lt_lora_free(a); }

lt_model_status lt_peft_attach(lt_model *m, const lt_lora_adapter *a, char *err, size_t errlen)
{
    if (!m)
        return fail(LT_MODEL_ERR_ARG, err, errlen, "peft attach: NULL model");
    if (a && a->n_layers != m->cfg.n_layers)
        return fail(LT_MODEL_ERR_ARG, err, errlen,
                    "peft attach: the adapter has %lld layers, the model %lld",
                    (long long)a->n_layers, (long long)m->cfg.n_layers);
    lt_model_attach_lora(m, a);
    return LT_MODEL_OK;
}
