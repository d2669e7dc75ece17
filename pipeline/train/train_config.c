/*
 * train_config.c - parsing and validation of a training config (see train_config.h and the
 * "Training config" section of README.md).
 *
 * Every value is checked where it is read, and every message names its JSON path and what was
 * expected. Unknown keys are errors. The canonical form (all fields, defaults filled in) is
 * what the store records and what a checkpoint's config hash covers.
 */
#include "train/train_config.h"

#include "data/sha256.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pctx {
    const char *label;
    char *err;
    size_t errlen;
} pctx;

static bool fail(pctx *p, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(pctx *p, const char *path, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s: %s: %s", p->label, path, msg);
    return false;
}

/* A short description of a JSON value for "got ..." in messages. */
static void describe(const cJSON *v, char *out, size_t n)
{
    if (cJSON_IsNumber(v))
        snprintf(out, n, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v))
        snprintf(out, n, "\"%.40s%s\"", v->valuestring,
                 strlen(v->valuestring) > 40 ? "..." : "");
    else if (cJSON_IsBool(v))
        snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v))
        snprintf(out, n, "null");
    else if (cJSON_IsArray(v))
        snprintf(out, n, "an array");
    else
        snprintf(out, n, "an object");
}

static void join(char *out, size_t n, const char *path, const char *key)
{
    snprintf(out, n, "%s.%s", path, key);
}

/* Checks that obj has only allowed keys (a NULL-terminated list). */
static bool only_keys(pctx *p, const cJSON *obj, const char *path, const char *const *allowed)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (int i = 0; allowed[i]; i++)
            if (it->string && strcmp(it->string, allowed[i]) == 0)
                ok = true;
        if (!ok) {
            char list[512] = "";
            for (int i = 0; allowed[i]; i++) {
                strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
                strncat(list, allowed[i], sizeof(list) - strlen(list) - 1);
            }
            char sub[256];
            join(sub, sizeof(sub), path, it->string ? it->string : "?");
            return fail(p, sub, "unknown key (expected one of: %s)", list);
        }
    }
    return true;
}

static bool get_int(pctx *p, const cJSON *obj, const char *path, const char *key, int64_t lo,
                    int64_t hi, const char *what, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return true;
    char sub[256], got[80];
    join(sub, sizeof(sub), path, key);
    describe(v, got, sizeof(got));
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return fail(p, sub, "expected %s, got %s", what, got);
    *out = (int64_t)v->valuedouble;
    return true;
}

static bool get_num(pctx *p, const cJSON *obj, const char *path, const char *key, double lo,
                    double hi, bool lo_open, const char *what, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return true;
    char sub[256], got[80];
    join(sub, sizeof(sub), path, key);
    describe(v, got, sizeof(got));
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        (lo_open && v->valuedouble == lo) || v->valuedouble > hi)
        return fail(p, sub, "expected %s, got %s", what, got);
    *out = v->valuedouble;
    return true;
}

static bool get_bool(pctx *p, const cJSON *obj, const char *path, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return true;
    char sub[256], got[80];
    join(sub, sizeof(sub), path, key);
    describe(v, got, sizeof(got));
    if (!cJSON_IsBool(v))
        return fail(p, sub, "expected true or false, got %s", got);
    *out = cJSON_IsTrue(v);
    return true;
}

/* A non-empty string, strdup'd into *out (replacing what was there). */
static bool get_str(pctx *p, const cJSON *obj, const char *path, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return true;
    char sub[256], got[80];
    join(sub, sizeof(sub), path, key);
    describe(v, got, sizeof(got));
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return fail(p, sub, "expected a non-empty string, got %s", got);
    char *s = strdup(v->valuestring);
    if (!s)
        return fail(p, sub, "out of memory");
    free(*out);
    *out = s;
    return true;
}

static bool get_obj(pctx *p, const cJSON *root, const char *key, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (!v)
        return true;
    char sub[64], got[80];
    join(sub, sizeof(sub), "$", key);
    describe(v, got, sizeof(got));
    if (!cJSON_IsObject(v))
        return fail(p, sub, "expected an object, got %s", got);
    *out = v;
    return true;
}

void lt_train_config_defaults(lt_train_config *c)
{
    memset(c, 0, sizeof(*c));
    c->objective = LT_OBJECTIVE_SFT;
    c->method = LT_METHOD_LORA;
    c->lora.r = 8;
    c->lora.alpha = 16.0f;
    c->lora.dropout = 0.0f;
    c->lora.targets = LT_LORA_Q | LT_LORA_V;
    c->freeze_kind = LT_FREEZE_LAST;
    c->freeze_last = 2;
    c->seq_len = 0; /* the model's context, at most 2048 */
    c->batch_size = 4;
    c->grad_accum = 1;
    c->epochs = 1;
    c->lr = -1; /* filled by method after parsing */
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.0;
    c->sched = LT_SCHED_LINEAR;
    c->warmup_steps = 0;
    c->min_lr_ratio = 0.0;
    c->max_grad_norm = 1.0;
    c->overfit_window = 3;
    c->keep_last = 2;
    c->keep_best = 1;
    c->seed = 42;
    c->nan_tolerance = 5;
    c->qlora_double_quant = true;
    c->dpo_beta = 0.1;
    c->dpo_loss = LT_DPO_SIGMOID;
    c->orpo_beta = 0.1;
}

void lt_train_config_free(lt_train_config *c)
{
    if (!c)
        return;
    free(c->model);
    free(c->dataset);
    free(c->dataset_file);
    free(c->split);
    free(c->chat_template);
    free(c->eval_split);
    free(c->device);
    free(c->json);
    memset(c, 0, sizeof(*c));
}

const char *lt_objective_name(lt_objective o)
{
    switch (o) {
    case LT_OBJECTIVE_PRETRAIN: return "pretrain";
    case LT_OBJECTIVE_DPO: return "dpo";
    case LT_OBJECTIVE_ORPO: return "orpo";
    case LT_OBJECTIVE_SFT: break;
    }
    return "sft";
}

const char *lt_train_config_method_name(const lt_train_config *c)
{
    return c->method == LT_METHOD_LORA && c->qlora ? "qlora" : lt_method_name(c->method);
}

/* "dpo": {"beta", "loss_type"}, "orpo": {"beta"}, "qlora": {"double_quant"} */
static bool parse_pref(pctx *p, const cJSON *root, lt_train_config *c)
{
    const cJSON *o;
    if (!get_obj(p, root, "dpo", &o))
        return false;
    if (o) {
        static const char *const keys[] = {"beta", "loss_type", NULL};
        char *lt = NULL;
        if (!only_keys(p, o, "$.dpo", keys) ||
            !get_num(p, o, "$.dpo", "beta", 0, 100, true, "a positive number", &c->dpo_beta) ||
            !get_str(p, o, "$.dpo", "loss_type", &lt))
            return false;
        if (lt) {
            bool ok = strcmp(lt, "sigmoid") == 0 || strcmp(lt, "ipo") == 0;
            c->dpo_loss = strcmp(lt, "ipo") == 0 ? LT_DPO_IPO : LT_DPO_SIGMOID;
            free(lt);
            if (!ok)
                return fail(p, "$.dpo.loss_type", "expected \"sigmoid\" or \"ipo\"");
        }
    }
    if (!get_obj(p, root, "orpo", &o))
        return false;
    if (o) {
        static const char *const keys[] = {"beta", NULL};
        if (!only_keys(p, o, "$.orpo", keys) ||
            !get_num(p, o, "$.orpo", "beta", 0, 100, true, "a positive number", &c->orpo_beta))
            return false;
    }
    if (!get_obj(p, root, "qlora", &o))
        return false;
    if (o) {
        static const char *const keys[] = {"double_quant", NULL};
        if (!only_keys(p, o, "$.qlora", keys) ||
            !get_bool(p, o, "$.qlora", "double_quant", &c->qlora_double_quant))
            return false;
    }
    return true;
}

const char *lt_method_name(lt_train_method m)
{
    switch (m) {
    case LT_METHOD_FULL:
        return "full";
    case LT_METHOD_FREEZE:
        return "freeze";
    case LT_METHOD_LORA:
        return "lora";
    }
    return "?";
}

static const struct {
    const char *name;
    uint32_t bits;
} lora_names[] = {
    {"q_proj", LT_LORA_Q},       {"k_proj", LT_LORA_K},       {"v_proj", LT_LORA_V},
    {"o_proj", LT_LORA_O},       {"gate_proj", LT_LORA_GATE}, {"up_proj", LT_LORA_UP},
    {"down_proj", LT_LORA_DOWN}, {"c_attn", LT_LORA_ATTN},    {"c_fc", LT_LORA_UP},
    {"c_proj", LT_LORA_O | LT_LORA_DOWN},
};

static bool parse_lora(pctx *p, const cJSON *o, lt_train_config *c)
{
    static const char *const keys[] = {"r", "alpha", "dropout", "target_modules", "rslora", NULL};
    if (!only_keys(p, o, "$.lora", keys))
        return false;
    int64_t r = c->lora.r;
    double alpha = c->lora.alpha, dropout = c->lora.dropout;
    if (!get_int(p, o, "$.lora", "r", 1, 4096, "a positive integer (at most 4096)", &r) ||
        !get_num(p, o, "$.lora", "alpha", 0, 1e6, true, "a positive number", &alpha) ||
        !get_num(p, o, "$.lora", "dropout", 0, 1, false, "a number from 0 to 1 (exclusive)",
                 &dropout) ||
        !get_bool(p, o, "$.lora", "rslora", &c->lora.rslora))
        return false;
    if (dropout >= 1)
        return fail(p, "$.lora.dropout", "expected a number from 0 to 1 (exclusive), got %g",
                    dropout);
    c->lora.r = (int)r;
    c->lora.alpha = (float)alpha;
    c->lora.dropout = (float)dropout;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "target_modules");
    if (!t)
        return true;
    if (cJSON_IsString(t) && strcmp(t->valuestring, "all-linear") == 0) {
        c->lora_all_linear = true;
        c->lora.targets = 0;
        return true;
    }
    if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0)
        return fail(p, "$.lora.target_modules",
                    "expected \"all-linear\" or a non-empty list of module names");
    c->lora.targets = 0;
    int i = 0;
    for (const cJSON *it = t->child; it; it = it->next, i++) {
        char sub[64], got[80];
        snprintf(sub, sizeof(sub), "$.lora.target_modules[%d]", i);
        describe(it, got, sizeof(got));
        uint32_t bits = 0;
        for (size_t k = 0; cJSON_IsString(it) && k < sizeof lora_names / sizeof lora_names[0];
             k++)
            if (strcmp(it->valuestring, lora_names[k].name) == 0)
                bits = lora_names[k].bits;
        if (!bits)
            return fail(p, sub,
                        "expected a module name (q_proj, k_proj, v_proj, o_proj, gate_proj, "
                        "up_proj, down_proj; c_attn, c_proj, c_fc for gpt2), got %s",
                        got);
        c->lora.targets |= bits;
    }
    return true;
}

static bool parse_freeze(pctx *p, const cJSON *o, lt_train_config *c)
{
    static const char *const keys[] = {"layers", "round_steps", "train_embeddings", NULL};
    if (!only_keys(p, o, "$.freeze", keys) ||
        !get_int(p, o, "$.freeze", "round_steps", 0, INT64_MAX / 2, "a non-negative integer",
                 &c->freeze_round_steps) ||
        !get_bool(p, o, "$.freeze", "train_embeddings", &c->freeze_train_embeddings))
        return false;
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!l)
        return true;
    char got[80];
    describe(l, got, sizeof(got));
    if (cJSON_IsString(l) && strcmp(l->valuestring, "half") == 0) {
        c->freeze_kind = LT_FREEZE_HALF;
        return true;
    }
    if (cJSON_IsString(l) && strncmp(l->valuestring, "last:", 5) == 0) {
        char *end = NULL;
        errno = 0;
        long n = strtol(l->valuestring + 5, &end, 10);
        if (errno || end == l->valuestring + 5 || *end || n < 1 || n > LT_TRAIN_MAX_LAYERS)
            return fail(p, "$.freeze.layers", "expected \"last:N\" with N from 1 to %d, got %s",
                        LT_TRAIN_MAX_LAYERS, got);
        c->freeze_kind = LT_FREEZE_LAST;
        c->freeze_last = (int)n;
        return true;
    }
    if (!cJSON_IsArray(l) || cJSON_GetArraySize(l) == 0 ||
        cJSON_GetArraySize(l) > LT_TRAIN_MAX_LAYERS)
        return fail(p, "$.freeze.layers",
                    "expected \"last:N\", \"half\" or a non-empty list of layer indices, got %s",
                    got);
    c->freeze_kind = LT_FREEZE_LIST;
    c->n_freeze_list = 0;
    int i = 0;
    for (const cJSON *it = l->child; it; it = it->next, i++) {
        char sub[64];
        snprintf(sub, sizeof(sub), "$.freeze.layers[%d]", i);
        describe(it, got, sizeof(got));
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble < 0 || it->valuedouble >= LT_TRAIN_MAX_LAYERS)
            return fail(p, sub, "expected a layer index from 0 to %d, got %s",
                        LT_TRAIN_MAX_LAYERS - 1, got);
        c->freeze_list[c->n_freeze_list++] = (int)it->valuedouble;
    }
    return true;
}

static bool parse_dataset(pctx *p, const cJSON *root, lt_train_config *c)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "dataset");
    if (!d)
        return fail(p, "$.dataset", "missing (a dataset name in the store, or an object with "
                                    "\"name\" or \"file\")");
    if (cJSON_IsString(d))
        return get_str(p, root, "$", "dataset", &c->dataset);
    if (!cJSON_IsObject(d)) {
        char got[80];
        describe(d, got, sizeof(got));
        return fail(p, "$.dataset", "expected a name or an object, got %s", got);
    }
    static const char *const keys[] = {"name", "version", "split", "file", NULL};
    int64_t ver = 0;
    if (!only_keys(p, d, "$.dataset", keys) || !get_str(p, d, "$.dataset", "name", &c->dataset) ||
        !get_str(p, d, "$.dataset", "file", &c->dataset_file) ||
        !get_str(p, d, "$.dataset", "split", &c->split) ||
        !get_int(p, d, "$.dataset", "version", 0, 1000000000, "a version number (0 = latest)",
                 &ver))
        return false;
    c->dataset_version = (int)ver;
    if (!c->dataset && !c->dataset_file)
        return fail(p, "$.dataset", "expected \"name\" (a dataset in the store) or \"file\"");
    if (c->dataset && c->dataset_file)
        return fail(p, "$.dataset", "give \"name\" or \"file\", not both");
    return true;
}

static bool parse_sections(pctx *p, const cJSON *root, lt_train_config *c)
{
    const cJSON *o;
    int64_t v;
    /* optimizer */
    if (!get_obj(p, root, "optimizer", &o))
        return false;
    if (o) {
        static const char *const keys[] = {"lr", "betas", "eps", "weight_decay", NULL};
        if (!only_keys(p, o, "$.optimizer", keys) ||
            !get_num(p, o, "$.optimizer", "lr", 0, 10, true, "a positive learning rate",
                     &c->lr) ||
            !get_num(p, o, "$.optimizer", "eps", 0, 1, true, "a small positive number", &c->eps) ||
            !get_num(p, o, "$.optimizer", "weight_decay", 0, 10, false,
                     "a non-negative number", &c->weight_decay))
            return false;
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "betas");
        if (b) {
            if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 2)
                return fail(p, "$.optimizer.betas", "expected [beta1, beta2]");
            double bv[2];
            for (int i = 0; i < 2; i++) {
                const cJSON *x = cJSON_GetArrayItem(b, i);
                if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble >= 1) {
                    char sub[48], got[80];
                    snprintf(sub, sizeof(sub), "$.optimizer.betas[%d]", i);
                    describe(x, got, sizeof(got));
                    return fail(p, sub, "expected a number in [0, 1), got %s", got);
                }
                bv[i] = x->valuedouble;
            }
            c->beta1 = bv[0];
            c->beta2 = bv[1];
        }
    }
    /* schedule */
    if (!get_obj(p, root, "schedule", &o))
        return false;
    if (o) {
        static const char *const keys[] = {"type", "warmup_steps", "warmup_ratio",
                                           "min_lr_ratio", NULL};
        char *type = NULL;
        if (!only_keys(p, o, "$.schedule", keys) || !get_str(p, o, "$.schedule", "type", &type))
            return false;
        if (type) {
            int k = lt_sched_kind_parse(type);
            free(type);
            if (k < 0)
                return fail(p, "$.schedule.type", "expected \"constant\", \"linear\" or "
                                                  "\"cosine\"");
            c->sched = (lt_sched_kind)k;
        }
        if (!get_int(p, o, "$.schedule", "warmup_steps", 0, INT64_MAX / 2,
                     "a non-negative integer", &c->warmup_steps) ||
            !get_num(p, o, "$.schedule", "warmup_ratio", 0, 1, false, "a number from 0 to 1",
                     &c->warmup_ratio) ||
            !get_num(p, o, "$.schedule", "min_lr_ratio", 0, 1, false, "a number from 0 to 1",
                     &c->min_lr_ratio))
            return false;
        if (cJSON_GetObjectItemCaseSensitive(o, "warmup_steps") &&
            cJSON_GetObjectItemCaseSensitive(o, "warmup_ratio"))
            return fail(p, "$.schedule", "give warmup_steps or warmup_ratio, not both");
        if (cJSON_GetObjectItemCaseSensitive(o, "warmup_ratio"))
            c->warmup_steps = -1;
    }
    /* eval */
    if (!get_obj(p, root, "eval", &o))
        return false;
    if (o) {
        static const char *const keys[] = {"every", "split", "patience", "overfit_window", NULL};
        if (!only_keys(p, o, "$.eval", keys) ||
            !get_int(p, o, "$.eval", "every", 0, INT64_MAX / 2, "a non-negative integer",
                     &c->eval_every) ||
            !get_str(p, o, "$.eval", "split", &c->eval_split))
            return false;
        v = c->eval_patience;
        if (!get_int(p, o, "$.eval", "patience", 0, 1000000, "a non-negative integer", &v))
            return false;
        c->eval_patience = (int)v;
        v = c->overfit_window;
        if (!get_int(p, o, "$.eval", "overfit_window", 2, 1000, "an integer from 2 to 1000", &v))
            return false;
        c->overfit_window = (int)v;
    }
    /* checkpoint */
    if (!get_obj(p, root, "checkpoint", &o))
        return false;
    if (o) {
        static const char *const keys[] = {"every", "keep_last", "keep_best", NULL};
        if (!only_keys(p, o, "$.checkpoint", keys) ||
            !get_int(p, o, "$.checkpoint", "every", 0, INT64_MAX / 2, "a non-negative integer",
                     &c->ckpt_every))
            return false;
        v = c->keep_last;
        if (!get_int(p, o, "$.checkpoint", "keep_last", 1, 1000, "an integer from 1 to 1000",
                     &v))
            return false;
        c->keep_last = (int)v;
        v = c->keep_best;
        if (!get_int(p, o, "$.checkpoint", "keep_best", 0, 1000, "an integer from 0 to 1000",
                     &v))
            return false;
        c->keep_best = (int)v;
    }
    if (!get_obj(p, root, "lora", &o) || (o && !parse_lora(p, o, c)))
        return false;
    if (!get_obj(p, root, "freeze", &o) || (o && !parse_freeze(p, o, c)))
        return false;
    return true;
}

static bool parse_top(pctx *p, const cJSON *root, lt_train_config *c)
{
    static const char *const keys[] = {
        "model", "dataset", "objective", "method", "lora", "freeze", "seq_len", "batch_size",
        "grad_accum", "packing", "train_on_prompt", "epochs", "max_steps", "optimizer",
        "schedule", "max_grad_norm", "eval", "checkpoint", "seed", "device", "threads",
        "template", "nan_tolerance", "dpo", "orpo", "qlora", "gradient_checkpointing",
        "offload_activations", NULL};
    if (!cJSON_IsObject(root))
        return fail(p, "$", "expected a JSON object");
    if (!only_keys(p, root, "$", keys))
        return false;
    if (!cJSON_GetObjectItemCaseSensitive(root, "model"))
        return fail(p, "$.model", "missing (the folder of a Hugging Face model)");
    if (!get_str(p, root, "$", "model", &c->model) || !parse_dataset(p, root, c))
        return false;
    char *s = NULL;
    if (!get_str(p, root, "$", "objective", &s))
        return false;
    if (s) {
        bool ok = true;
        if (strcmp(s, "sft") == 0)
            c->objective = LT_OBJECTIVE_SFT;
        else if (strcmp(s, "pretrain") == 0)
            c->objective = LT_OBJECTIVE_PRETRAIN;
        else if (strcmp(s, "dpo") == 0)
            c->objective = LT_OBJECTIVE_DPO;
        else if (strcmp(s, "orpo") == 0)
            c->objective = LT_OBJECTIVE_ORPO;
        else
            ok = false;
        free(s);
        s = NULL;
        if (!ok)
            return fail(p, "$.objective",
                        "expected \"sft\", \"pretrain\", \"dpo\" or \"orpo\"");
    }
    if (!parse_pref(p, root, c))
        return false;
    if (!get_str(p, root, "$", "method", &s))
        return false;
    if (s) {
        bool ok = true;
        if (strcmp(s, "full") == 0)
            c->method = LT_METHOD_FULL;
        else if (strcmp(s, "freeze") == 0)
            c->method = LT_METHOD_FREEZE;
        else if (strcmp(s, "lora") == 0)
            c->method = LT_METHOD_LORA;
        else if (strcmp(s, "qlora") == 0) {
            c->method = LT_METHOD_LORA;
            c->qlora = true;
        } else
            ok = false;
        free(s);
        if (!ok)
            return fail(p, "$.method",
                        "expected \"full\", \"freeze\", \"lora\" or \"qlora\"");
    }
    int64_t v;
    if (!get_int(p, root, "$", "seq_len", 2, 1 << 20, "an integer from 2 to 1048576",
                 &c->seq_len) ||
        !get_int(p, root, "$", "batch_size", 1, 65536, "a positive integer", &c->batch_size) ||
        !get_int(p, root, "$", "grad_accum", 1, 65536, "a positive integer", &c->grad_accum) ||
        !get_bool(p, root, "$", "packing", &c->packing) ||
        !get_bool(p, root, "$", "train_on_prompt", &c->train_on_prompt) ||
        !get_int(p, root, "$", "epochs", 1, 100000, "a positive integer", &c->epochs) ||
        !get_int(p, root, "$", "max_steps", 0, INT64_MAX / 2,
                 "a non-negative integer (0 = by epochs)", &c->max_steps) ||
        !get_num(p, root, "$", "max_grad_norm", 0, 1e9, false, "a non-negative number (0 = off)",
                 &c->max_grad_norm) ||
        !get_str(p, root, "$", "device", &c->device) ||
        !get_str(p, root, "$", "template", &c->chat_template))
        return false;
    v = (int64_t)c->seed;
    if (!get_int(p, root, "$", "seed", 0, (int64_t)1 << 53, "a non-negative integer", &v))
        return false;
    c->seed = (uint64_t)v;
    v = c->threads;
    if (!get_int(p, root, "$", "threads", 0, 4096, "an integer from 0 to 4096", &v))
        return false;
    c->threads = (int)v;
    v = c->nan_tolerance;
    if (!get_int(p, root, "$", "nan_tolerance", 1, 1000000, "a positive integer", &v))
        return false;
    c->nan_tolerance = (int)v;
    const cJSON *gc = cJSON_GetObjectItemCaseSensitive(root, "gradient_checkpointing");
    if (gc) {
        if (cJSON_IsBool(gc)) {
            c->grad_ckpt = cJSON_IsTrue(gc) ? LT_GRAD_CKPT_ON : LT_GRAD_CKPT_OFF;
        } else if (cJSON_IsString(gc) && strcmp(gc->valuestring, "auto") == 0) {
            c->grad_ckpt = LT_GRAD_CKPT_AUTO;
        } else {
            char got[80];
            describe(gc, got, sizeof(got));
            return fail(p, "$.gradient_checkpointing", "expected \"auto\", true or false, got %s",
                        got);
        }
    }
    if (!get_bool(p, root, "$", "offload_activations", &c->offload_activations))
        return false;
    if (c->offload_activations && c->grad_ckpt == LT_GRAD_CKPT_OFF)
        return fail(p, "$.offload_activations",
                    "needs gradient checkpointing (the offloaded layer inputs are what it keeps); "
                    "set \"gradient_checkpointing\" to true or \"auto\"");
    if (c->chat_template && strcmp(c->chat_template, "chatml") != 0 &&
        strcmp(c->chat_template, "llama3") != 0 && strcmp(c->chat_template, "llama2") != 0 &&
        strcmp(c->chat_template, "alpaca") != 0)
        return fail(p, "$.template", "expected \"chatml\", \"llama3\", \"llama2\" or \"alpaca\"");
    return parse_sections(p, root, c);
}

/* Builds the canonical JSON of c (every field). NULL when out of memory. */
static char *canonical_json(const lt_train_config *c)
{
    cJSON *r = cJSON_CreateObject(), *o;
    if (!r)
        return NULL;
    cJSON_AddStringToObject(r, "model", c->model);
    o = cJSON_AddObjectToObject(r, "dataset");
    if (c->dataset)
        cJSON_AddStringToObject(o, "name", c->dataset);
    if (c->dataset_file)
        cJSON_AddStringToObject(o, "file", c->dataset_file);
    cJSON_AddNumberToObject(o, "version", c->dataset_version);
    cJSON_AddStringToObject(o, "split", c->split);
    cJSON_AddStringToObject(r, "objective", lt_objective_name(c->objective));
    cJSON_AddStringToObject(r, "method", lt_train_config_method_name(c));
    if (c->qlora) {
        o = cJSON_AddObjectToObject(r, "qlora");
        cJSON_AddBoolToObject(o, "double_quant", c->qlora_double_quant);
    }
    if (c->objective == LT_OBJECTIVE_DPO) {
        o = cJSON_AddObjectToObject(r, "dpo");
        cJSON_AddNumberToObject(o, "beta", c->dpo_beta);
        cJSON_AddStringToObject(o, "loss_type", c->dpo_loss == LT_DPO_IPO ? "ipo" : "sigmoid");
    }
    if (c->objective == LT_OBJECTIVE_ORPO) {
        o = cJSON_AddObjectToObject(r, "orpo");
        cJSON_AddNumberToObject(o, "beta", c->orpo_beta);
    }
    if (c->method == LT_METHOD_LORA) {
        o = cJSON_AddObjectToObject(r, "lora");
        cJSON_AddNumberToObject(o, "r", c->lora.r);
        cJSON_AddNumberToObject(o, "alpha", c->lora.alpha);
        cJSON_AddNumberToObject(o, "dropout", c->lora.dropout);
        if (c->lora_all_linear) {
            cJSON_AddStringToObject(o, "target_modules", "all-linear");
        } else {
            cJSON *t = cJSON_AddArrayToObject(o, "target_modules");
            static const char *const names[] = {"q_proj",    "k_proj", "v_proj",
                                                "o_proj",    "gate_proj", "up_proj",
                                                "down_proj", "c_attn"};
            for (int i = 0; i < 8; i++)
                if (c->lora.targets & (1u << i))
                    cJSON_AddItemToArray(t, cJSON_CreateString(names[i]));
        }
        cJSON_AddBoolToObject(o, "rslora", c->lora.rslora);
    }
    if (c->method == LT_METHOD_FREEZE) {
        o = cJSON_AddObjectToObject(r, "freeze");
        if (c->freeze_kind == LT_FREEZE_HALF) {
            cJSON_AddStringToObject(o, "layers", "half");
        } else if (c->freeze_kind == LT_FREEZE_LAST) {
            char b[32];
            snprintf(b, sizeof(b), "last:%d", c->freeze_last);
            cJSON_AddStringToObject(o, "layers", b);
        } else {
            cJSON *a = cJSON_AddArrayToObject(o, "layers");
            for (int i = 0; i < c->n_freeze_list; i++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(c->freeze_list[i]));
        }
        cJSON_AddNumberToObject(o, "round_steps", (double)c->freeze_round_steps);
        cJSON_AddBoolToObject(o, "train_embeddings", c->freeze_train_embeddings);
    }
    if (c->seq_len) /* absent: the model's context */
        cJSON_AddNumberToObject(r, "seq_len", (double)c->seq_len);
    cJSON_AddNumberToObject(r, "batch_size", (double)c->batch_size);
    cJSON_AddNumberToObject(r, "grad_accum", (double)c->grad_accum);
    cJSON_AddBoolToObject(r, "packing", c->packing);
    cJSON_AddBoolToObject(r, "train_on_prompt", c->train_on_prompt);
    cJSON_AddNumberToObject(r, "epochs", (double)c->epochs);
    cJSON_AddNumberToObject(r, "max_steps", (double)c->max_steps);
    o = cJSON_AddObjectToObject(r, "optimizer");
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON *b = cJSON_AddArrayToObject(o, "betas");
    cJSON_AddItemToArray(b, cJSON_CreateNumber(c->beta1));
    cJSON_AddItemToArray(b, cJSON_CreateNumber(c->beta2));
    cJSON_AddNumberToObject(o, "eps", c->eps);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    o = cJSON_AddObjectToObject(r, "schedule");
    cJSON_AddStringToObject(o, "type", lt_sched_kind_name(c->sched));
    if (c->warmup_steps >= 0)
        cJSON_AddNumberToObject(o, "warmup_steps", (double)c->warmup_steps);
    else
        cJSON_AddNumberToObject(o, "warmup_ratio", c->warmup_ratio);
    cJSON_AddNumberToObject(o, "min_lr_ratio", c->min_lr_ratio);
    cJSON_AddNumberToObject(r, "max_grad_norm", c->max_grad_norm);
    o = cJSON_AddObjectToObject(r, "eval");
    cJSON_AddNumberToObject(o, "every", (double)c->eval_every);
    cJSON_AddStringToObject(o, "split", c->eval_split);
    cJSON_AddNumberToObject(o, "patience", c->eval_patience);
    cJSON_AddNumberToObject(o, "overfit_window", c->overfit_window);
    o = cJSON_AddObjectToObject(r, "checkpoint");
    cJSON_AddNumberToObject(o, "every", (double)c->ckpt_every);
    cJSON_AddNumberToObject(o, "keep_last", c->keep_last);
    cJSON_AddNumberToObject(o, "keep_best", c->keep_best);
    cJSON_AddNumberToObject(r, "seed", (double)c->seed);
    if (c->device)
        cJSON_AddStringToObject(r, "device", c->device);
    cJSON_AddNumberToObject(r, "threads", c->threads);
    if (c->chat_template)
        cJSON_AddStringToObject(r, "template", c->chat_template);
    cJSON_AddNumberToObject(r, "nan_tolerance", c->nan_tolerance);
    if (c->grad_ckpt == LT_GRAD_CKPT_AUTO)
        cJSON_AddStringToObject(r, "gradient_checkpointing", "auto");
    else
        cJSON_AddBoolToObject(r, "gradient_checkpointing", c->grad_ckpt == LT_GRAD_CKPT_ON);
    cJSON_AddBoolToObject(r, "offload_activations", c->offload_activations);
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return s;
}

/* Makes *path absolute against base when it is relative. */
static bool resolve_path(char **path, const char *base)
{
    if (!*path || !base || (*path)[0] == '/')
        return true;
    size_t n = strlen(base) + strlen(*path) + 2;
    char *s = malloc(n);
    if (!s)
        return false;
    snprintf(s, n, "%s/%s", base, *path);
    free(*path);
    *path = s;
    /* absolute when it exists, so that the run's record works from any folder */
    char *abs = realpath(s, NULL);
    if (abs) {
        free(*path);
        *path = abs;
    }
    return true;
}

bool lt_train_config_parse(const char *json, size_t n, const char *label, const char *base_dir,
                           lt_train_config *c, char *err, size_t errlen)
{
    pctx p = {label ? label : "config", err, errlen};
    lt_train_config_defaults(c);
    cJSON *root = cJSON_ParseWithLength(json, n);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= json && at <= json + n) ? (long)(at - json) : -1;
        snprintf(err, errlen, "%s: not valid JSON (near byte %ld)", p.label, off);
        return false;
    }
    bool ok = parse_top(&p, root, c);
    cJSON_Delete(root);
    if (ok && (!c->split && !(c->split = strdup("train"))))
        ok = fail(&p, "$", "out of memory");
    if (ok && (!c->eval_split && !(c->eval_split = strdup("val"))))
        ok = fail(&p, "$", "out of memory");
    if (ok && c->lr < 0)
        c->lr = c->method == LT_METHOD_LORA ? 2e-4 : 2e-5;
    if (ok && (!resolve_path(&c->model, base_dir) || !resolve_path(&c->dataset_file, base_dir)))
        ok = fail(&p, "$", "out of memory");
    if (ok && !(c->json = canonical_json(c)))
        ok = fail(&p, "$", "out of memory");
    if (ok) {
        lt_sha256 h;
        uint8_t d[32];
        lt_sha256_init(&h);
        lt_sha256_update(&h, c->json, strlen(c->json));
        lt_sha256_final(&h, d, c->hash);
    }
    if (!ok)
        lt_train_config_free(c);
    return ok;
}

bool lt_train_config_load(const char *path, lt_train_config *c, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return false;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    bool ok = false;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > ((size_t)16 << 20)) {
                snprintf(err, errlen, "%s: larger than 16 MiB, not a config", path);
                goto done;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto done;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto done;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    ok = lt_train_config_parse(buf, n, path, dir, c, err, errlen);
done:
    free(buf);
    fclose(f);
    return ok;
}

bool lt_freeze_layers(const lt_train_config *c, int n_layers, int64_t round, bool *train_layer,
                      char *err, size_t errlen)
{
    for (int i = 0; i < n_layers; i++)
        train_layer[i] = false;
    switch (c->freeze_kind) {
    case LT_FREEZE_LAST:
        if (c->freeze_last > n_layers) {
            snprintf(err, errlen, "$.freeze.layers: last:%d but the model has %d layers",
                     c->freeze_last, n_layers);
            return false;
        }
        for (int i = n_layers - c->freeze_last; i < n_layers; i++)
            train_layer[i] = true;
        return true;
    case LT_FREEZE_LIST:
        for (int i = 0; i < c->n_freeze_list; i++) {
            if (c->freeze_list[i] >= n_layers) {
                snprintf(err, errlen,
                         "$.freeze.layers[%d]: layer %d but the model has %d layers (0..%d)", i,
                         c->freeze_list[i], n_layers, n_layers - 1);
                return false;
            }
            train_layer[c->freeze_list[i]] = true;
        }
        return true;
    case LT_FREEZE_HALF:
        for (int i = 0; i < n_layers; i++)
            train_layer[i] = n_layers == 1 || (i % 2) == (int)(round % 2);
        return true;
    }
    return false;
}

void lt_train_config_trainer_opts(const lt_train_config *c, const lt_model_config *mc,
                                  const bool *train_layer, lt_trainer_opts *to)
{
    memset(to, 0, sizeof(*to));
    to->method = c->method;
    to->lora = c->lora;
    to->lora.seed = c->seed;
    if (c->method == LT_METHOD_LORA && c->lora_all_linear)
        to->lora.targets = lt_lora_all_linear(mc->arch);
    if (c->method == LT_METHOD_FREEZE) {
        to->train_layer = train_layer;
        to->train_embeddings = c->freeze_train_embeddings;
    }
    to->beta1 = (float)c->beta1;
    to->beta2 = (float)c->beta2;
    to->eps = (float)c->eps;
    to->weight_decay = (float)c->weight_decay;
    to->recompute = c->grad_ckpt == LT_GRAD_CKPT_ON; /* "auto": the run loop decides */
    to->offload_activations = c->offload_activations;
}
