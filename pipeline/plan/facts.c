/*
 * facts.c - the facts the wizard fills in without asking: the device (kind and memory, from
 * Vulkan heaps or RAM), the model (parameters, dtype, context, shape from its folder) and the
 * dataset (format, rows, splits, length percentiles in tokens or characters, preference
 * pairs, raw text). Every fact can be overridden; one that cannot be read is left out and
 * named, never guessed.
 */
#include "data/data.h"
#include "plan/plan.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void note(char *buf, size_t n, const char *fact, const char *why)
{
    size_t k = strlen(buf);
    if (k < n)
        snprintf(buf + k, n - k, "%s%s: %s", k ? "; " : "", fact, why);
}

/* Device kind and memory: an explicit spec, or auto's choice (a discrete or integrated GPU,
 * else the CPU). */
static void device_facts(cJSON *f, const char *spec, char *missing, size_t mlen)
{
    static lt_vk_device_info vk[8];
    char why[256] = "";
    bool cpu_only = spec && strcmp(spec, "cpu") == 0; /* no Vulkan loader needed */
    int n = cpu_only ? 0 : lt_vk_enumerate(vk, 8, why, sizeof(why));
    int pick = -1;
    if (spec && strncmp(spec, "vulkan:", 7) == 0) {
        int want = atoi(spec + 7);
        for (int i = 0; i < n; i++)
            if (vk[i].index == want)
                pick = i;
        if (pick < 0) {
            note(missing, mlen, "memory_gb", "the named Vulkan device was not found");
            cJSON_AddStringToObject(f, "device", "gpu");
            return;
        }
    } else if (!spec || strcmp(spec, "auto") == 0) {
        for (int pass = 0; pass < 2 && pick < 0; pass++)
            for (int i = 0; i < n && pick < 0; i++)
                if (strcmp(vk[i].type, pass == 0 ? "discrete" : "integrated") == 0)
                    pick = i;
    }
    if (pick >= 0) {
        uint64_t best = 0;
        for (int h = 0; h < vk[pick].n_heaps; h++)
            if (vk[pick].heap_device_local[h] && vk[pick].heap_bytes[h] > best)
                best = vk[pick].heap_bytes[h];
        cJSON_AddStringToObject(f, "device", strcmp(vk[pick].type, "cpu") == 0 ? "cpu" : "gpu");
        cJSON_AddStringToObject(f, "device_name", vk[pick].name);
        if (best)
            cJSON_AddNumberToObject(f, "memory_gb", (double)best / 1e9);
        else
            note(missing, mlen, "memory_gb", "the Vulkan device reports no device-local heap");
        return;
    }
    lt_cpu_info ci;
    lt_cpu_info_get(&ci);
    cJSON_AddStringToObject(f, "device", "cpu");
    cJSON_AddStringToObject(f, "device_name", ci.model[0] ? ci.model : "cpu");
    uint64_t ram = ci.ram_available_bytes ? ci.ram_available_bytes : ci.ram_bytes;
    if (ram)
        cJSON_AddNumberToObject(f, "memory_gb", (double)ram / 1e9);
    else
        note(missing, mlen, "memory_gb", "the RAM size could not be read");
}

static long count_tokens(void *ctx, const char *text)
{
    lt_tok_ids ids = {0};
    char err[LT_TOK_ERR_LEN];
    lt_tok_status s = lt_tokenizer_encode(ctx, text, strlen(text), 0, &ids, err, sizeof err);
    long n = s == LT_TOK_OK ? (long)ids.n : -1;
    lt_tok_ids_free(&ids);
    return n;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : 0;
}

/* Counts members of a version in one split. */
static int64_t split_rows(lt_store *st, int64_t version_id, const char *split)
{
    lt_store_iter *it = NULL;
    int64_t n = 0;
    lt_store_sample s;
    if (lt_store_samples_iter(st, version_id, split, &it) != LT_STORE_OK)
        return 0;
    while (lt_store_samples_next(it, &s) == LT_STORE_OK)
        n++;
    lt_store_iter_free(it);
    return n;
}

static bool dataset_facts(lt_store *st, const char *name, const char *model_dir, cJSON *f,
                          char *err, size_t errlen)
{
    lt_store_version v;
    if (lt_store_version_get(st, name, 0, &v) != LT_STORE_OK) {
        snprintf(err, errlen, "dataset \"%s\" is not in the store (lathe data list shows what "
                 "is; lathe data import adds one)", name);
        return false;
    }
    int64_t version_id = v.version_id;
    cJSON_AddStringToObject(f, "dataset_format", v.format ? v.format : "");
    cJSON_AddNumberToObject(f, "dataset_version", v.version);
    cJSON_AddBoolToObject(f, "preference_pairs", v.format && strcmp(v.format, "preference") == 0);
    cJSON_AddBoolToObject(f, "raw_text", v.format && strcmp(v.format, "text") == 0);
    int64_t n_train = split_rows(st, version_id, "train"), n_val = split_rows(st, version_id, "val");
    cJSON_AddNumberToObject(f, "dataset_rows", (double)v.n_rows);
    cJSON_AddNumberToObject(f, "n_examples", (double)(n_train > 0 ? n_train : v.n_rows));
    cJSON_AddNumberToObject(f, "val_rows", (double)n_val);

    lt_tokenizer *tok = NULL;
    char terr[LT_TOK_ERR_LEN];
    lt_data_inspect_opts io = {0};
    io.top_n = 1;
    if (model_dir && lt_tokenizer_load_dir(model_dir, &tok, terr, sizeof(terr)) == LT_TOK_OK) {
        io.count_tokens = count_tokens;
        io.count_tokens_ctx = tok;
    }
    void *rep = NULL;
    lt_data_status ds = lt_data_inspect(st, name, &io, &rep, err, errlen);
    lt_tokenizer_free(tok);
    if (ds != LT_DATA_OK)
        return false;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(rep, "tokens");
    bool tokens = d && num(d, "count") > 0;
    if (!tokens)
        d = cJSON_GetObjectItemCaseSensitive(rep, "chars");
    cJSON *len = cJSON_AddObjectToObject(f, "lengths");
    cJSON_AddStringToObject(len, "unit", tokens ? "tokens" : "characters");
    static const char *const keys[] = {"p50", "p90", "p95", "p99", "max", "mean"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        cJSON_AddNumberToObject(len, keys[k], num(d, keys[k]));
    cJSON_Delete(rep);
    return true;
}

static void model_facts(const lt_model_summary *s, cJSON *f)
{
    cJSON_AddStringToObject(f, "model_arch", lt_arch_name(s->cfg.arch));
    cJSON_AddNumberToObject(f, "params", (double)s->total_params);
    cJSON_AddStringToObject(f, "model_dtype", s->dtypes);
    bool half = strstr(s->dtypes, "BF16") || strstr(s->dtypes, "F16");
    cJSON_AddNumberToObject(f, "weight_bytes", half ? 2 : 4);
    cJSON_AddNumberToObject(f, "context", (double)s->cfg.max_pos);
    cJSON_AddNumberToObject(f, "weights_gb", (double)s->weight_bytes / 1e9);
}

bool lt_plan_facts_gather(lt_store *st, const lt_plan_facts_opts *o, void **facts,
                          lt_model_summary *summary, char *missing_note, size_t notelen,
                          char *err, size_t errlen)
{
    cJSON *f = cJSON_CreateObject();
    lt_model_summary s;
    *facts = NULL;
    if (missing_note && notelen)
        missing_note[0] = 0;
    if (!f)
        goto oom;
    if (!o->model_dir) {
        snprintf(err, errlen, "no model: give --model DIR (a Hugging Face folder)");
        goto bad;
    }
    char merr[512];
    if (lt_model_inspect(o->model_dir, &s, merr, sizeof(merr)) != LT_MODEL_OK) {
        snprintf(err, errlen, "model %s: %s", o->model_dir, merr);
        goto bad;
    }
    if (summary)
        *summary = s;
    cJSON_AddStringToObject(f, "model_dir", o->model_dir);
    model_facts(&s, f);
    device_facts(f, o->device, missing_note, notelen);
    if (o->threads > 0) /* the host-RAM estimate counts OpenBLAS's buffer per thread */
        cJSON_AddNumberToObject(f, "threads", o->threads);
    if (o->memory_gb > 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(f, "memory_gb");
        cJSON_AddNumberToObject(f, "memory_gb", o->memory_gb);
    }
    if (!o->dataset) {
        snprintf(err, errlen, "no dataset: give --data NAME (a dataset in the store)");
        goto bad;
    }
    cJSON_AddStringToObject(f, "dataset", o->dataset);
    if (!dataset_facts(st, o->dataset, o->model_dir, f, err, errlen))
        goto bad;
    const cJSON *ov = o->overrides;
    for (const cJSON *x = ov ? ov->child : NULL; x; x = x->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(f, x->string);
        cJSON_AddItemToObject(f, x->string, cJSON_Duplicate(x, 1));
    }
    /* a fact the user gave is no longer missing */
    if (cJSON_GetObjectItemCaseSensitive(f, "memory_gb") && missing_note &&
        strstr(missing_note, "memory_gb"))
        missing_note[0] = 0;
    *facts = f;
    return true;
oom:
    snprintf(err, errlen, "out of memory");
bad:
    cJSON_Delete(f);
    return false;
}
