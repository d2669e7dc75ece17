/*
 * plan.c - from a leaf of the decision tree to a plan: the estimates for every candidate
 * method, the micro-batch and accumulation that fit, the time per epoch, and a training
 * config in pipeline/train's schema (train_config.h), with every answer, fact and step of the
 * path recorded beside it. The facts the tree's memory nodes test (full_fits, lora_ckpt_fits,
 * ...) come from the estimator for the actual model on the actual device, each method with
 * and without gradient checkpointing. Where lathe's engine cannot run what the tree chose
 * (DPO, ORPO from the wizard), the record says so in a warning; nothing is substituted
 * silently.
 */
#include "plan/plan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GB 1e9

static double fnum(const cJSON *o, const char *k, double dflt)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : dflt;
}

static const char *fstr(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* Sequence length: the option, else the dataset's p95 length (tokens, or characters / 3.5)
 * rounded up to a multiple of 64, within [64, context]. */
static int64_t pick_seq(const cJSON *facts, const lt_model_config *cfg, const lt_plan_opts *o)
{
    int64_t ctx = cfg->max_pos > 0 ? cfg->max_pos : 2048;
    if (o && o->seq_len > 0)
        return o->seq_len < ctx ? o->seq_len : ctx;
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(facts, "lengths");
    double p95 = fnum(len, "p95", 512);
    const char *unit = fstr(len, "unit");
    if (unit && strcmp(unit, "characters") == 0)
        p95 /= 3.5;
    int64_t s = ((int64_t)ceil(p95 / 64.0)) * 64;
    s = s < 64 ? 64 : s;
    return s > ctx ? ctx : s;
}

/* Tokens of the training set as the trainer keeps them (each example up to seq). */
static double epoch_tokens(const cJSON *facts, int64_t seq)
{
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(facts, "lengths");
    double mean = fnum(len, "mean", (double)seq);
    if (fstr(len, "unit") && strcmp(fstr(len, "unit"), "characters") == 0)
        mean /= 3.5;
    return fnum(facts, "n_examples", 0) * (mean < (double)seq ? mean : (double)seq);
}

static bool is_gpu(const cJSON *facts);

lt_est_opts lt_plan_est_opts(lt_est_method m, const void *facts_v, int64_t seq)
{
    const cJSON *facts = facts_v;
    lt_est_opts e = {0};
    e.method = m;
    e.batch = 1;
    e.seq = seq;
    e.weight_bytes = (int)fnum(facts, "weight_bytes", 4);
    e.lora_r = 16;
    e.lora_dropout = true;
    e.freeze_layers = 2;
    e.double_quant = true;
    /* estimate_overhead.c's inputs: the heap sets the allocator's block size */
    if (is_gpu(facts))
        e.heap_bytes = (uint64_t)(fnum(facts, "memory_gb", 0) * GB);
    e.dataset_tokens = (int64_t)epoch_tokens(facts, seq);
    e.threads = (int)fnum(facts, "threads", 0);
    return e;
}

/* The derived facts: each method with and without gradient checkpointing, as the tree tests
 * them (cheapest first on the parameter-efficient side). full is f32 or bf16 by the model. */
typedef struct fit_fact {
    const char *name;
    int method; /* an lt_est_method, or -1 for the model's full method */
    bool checkpointing;
} fit_fact;

static const fit_fact FIT_FACTS[] = {
    {"full_fits", -1, false},
    {"full_ckpt_fits", -1, true},
    {"lora_fits", LT_EST_LORA, false},
    {"lora_ckpt_fits", LT_EST_LORA, true},
    {"qlora_fits", LT_EST_QLORA, false},
    {"qlora_ckpt_fits", LT_EST_QLORA, true},
};
#define N_FIT_FACTS (sizeof FIT_FACTS / sizeof FIT_FACTS[0])

static bool is_gpu(const cJSON *facts)
{
    const char *d = fstr(facts, "device");
    return d && strcmp(d, "gpu") == 0;
}

static lt_est_method full_method(const cJSON *facts)
{
    return fnum(facts, "weight_bytes", 4) < 4 ? LT_EST_FULL_BF16 : LT_EST_FULL_F32;
}

/* Does batch 1 of method e fit memory_bytes? lt_plan_fit's rule, and on the CPU also the
 * process's whole peak RSS (host_ram: the program, the dataset, the mapped file while
 * loading), since there the device's memory is the host's. */
static bool fits_device(const lt_model_config *cfg, const lt_est_opts *e, bool gpu, uint64_t bytes,
                        lt_fit *f)
{
    lt_plan_fit(cfg, e, gpu, bytes, 1, f);
    return f->fits && (gpu || f->at.host_ram <= f->budget);
}

void lt_plan_derive(void *facts_v, const lt_model_config *cfg, const lt_plan_opts *o)
{
    cJSON *facts = facts_v;
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(facts, "memory_gb");
    if (!cJSON_IsNumber(mem) || mem->valuedouble <= 0)
        return; /* unknown memory: the walk stops at memory_gb and asks */
    uint64_t bytes = (uint64_t)(mem->valuedouble * GB);
    int64_t seq = pick_seq(facts, cfg, o);
    bool gpu = is_gpu(facts);
    for (size_t i = 0; i < N_FIT_FACTS; i++) {
        if (cJSON_GetObjectItemCaseSensitive(facts, FIT_FACTS[i].name))
            continue; /* given by the user */
        lt_est_method m =
            FIT_FACTS[i].method < 0 ? full_method(facts) : (lt_est_method)FIT_FACTS[i].method;
        lt_est_opts e = lt_plan_est_opts(m, facts, seq);
        e.checkpointing = FIT_FACTS[i].checkpointing;
        lt_fit f;
        cJSON_AddBoolToObject(facts, FIT_FACTS[i].name, fits_device(cfg, &e, gpu, bytes, &f));
    }
    if (!cJSON_GetObjectItemCaseSensitive(facts, "reference_fits")) {
        /* DPO scores chosen and rejected (twice the rows) and keeps a frozen reference copy
         * of the weights beside the trained model */
        lt_est_opts e = lt_plan_est_opts(LT_EST_LORA, facts, seq);
        lt_fit f;
        lt_plan_fit(cfg, &e, gpu, bytes, 2, &f);
        lt_estimate two;
        e.batch = 2;
        lt_plan_estimate(cfg, &e, gpu, &two);
        cJSON_AddBoolToObject(facts, "reference_fits",
                              f.fits && two.peak + two.weights <= f.budget);
    }
}

static cJSON *estimate_json(const lt_estimate *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "peak_gb", (double)e->peak / GB);
    cJSON_AddNumberToObject(j, "params", (double)e->params);
    cJSON_AddNumberToObject(j, "trainable", (double)e->trainable);
    cJSON_AddNumberToObject(j, "weights_gb", (double)e->weights / GB);
    cJSON_AddNumberToObject(j, "master_gb", (double)e->master / GB);
    cJSON_AddNumberToObject(j, "adapters_gb", (double)e->adapters / GB);
    cJSON_AddNumberToObject(j, "grads_gb", (double)e->grads / GB);
    cJSON_AddNumberToObject(j, "moments_gb", (double)e->moments / GB);
    cJSON_AddNumberToObject(j, "activations_gb", (double)e->activations / GB);
    cJSON_AddNumberToObject(j, "logits_gb", (double)e->logits / GB);
    cJSON_AddNumberToObject(j, "backward_gb", (double)e->backward / GB);
    cJSON_AddNumberToObject(j, "workspace_gb", (double)e->workspace / GB);
    cJSON_AddNumberToObject(j, "overhead_gb", (double)e->overhead / GB);
    /* the parts lathe plan --explain prints, summed in bytes */
    cJSON_AddNumberToObject(j, "state_gb",
                            (double)(e->master + e->adapters + e->grads + e->moments) / GB);
    cJSON_AddNumberToObject(j, "activ_gb", (double)(e->activations + e->backward) / GB);
    cJSON_AddNumberToObject(j, "other_gb", (double)(e->workspace + e->overhead) / GB);
    cJSON_AddNumberToObject(j, "tracked_gb", (double)e->tracked / GB);
    cJSON_AddNumberToObject(j, "host_gb", (double)e->host / GB);
    cJSON_AddNumberToObject(j, "host_ram_gb", (double)e->host_ram / GB);
    return j;
}

static void warn(cJSON *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(cJSON *w, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cJSON_AddItemToArray(w, cJSON_CreateString(buf));
}

/* The config in train_config.h's schema. */
static cJSON *make_config(const cJSON *facts, const char *train, bool checkpointing,
                          const char *objective, int64_t seq, const lt_fit *fit, int64_t epochs,
                          const char *model, const char *dataset, const lt_plan_opts *o)
{
    cJSON *c = cJSON_CreateObject();
    bool qlora = strcmp(train, "qlora") == 0, lora = qlora || strcmp(train, "lora") == 0;
    double n = fnum(facts, "n_examples", 0);
    cJSON_AddStringToObject(c, "model", model);
    cJSON *d = cJSON_AddObjectToObject(c, "dataset");
    cJSON_AddStringToObject(d, "name", dataset);
    cJSON_AddStringToObject(d, "split", "train");
    cJSON_AddStringToObject(c, "objective", strcmp(objective, "pretrain") == 0 ? "pretrain" : "sft");
    cJSON_AddStringToObject(c, "method", train);
    if (lora) {
        cJSON *l = cJSON_AddObjectToObject(c, "lora");
        cJSON_AddNumberToObject(l, "r", 16);
        cJSON_AddNumberToObject(l, "alpha", 32);
        cJSON_AddNumberToObject(l, "dropout", 0.05);
        cJSON_AddStringToObject(l, "target_modules", "all-linear");
    }
    if (qlora) {
        cJSON *q = cJSON_AddObjectToObject(c, "qlora");
        cJSON_AddBoolToObject(q, "double_quant", true);
    }
    if (checkpointing) /* the estimate without it does not fit */
        cJSON_AddBoolToObject(c, "gradient_checkpointing", true);
    cJSON_AddNumberToObject(c, "seq_len", (double)seq);
    cJSON_AddNumberToObject(c, "batch_size", (double)(fit->micro_batch > 0 ? fit->micro_batch : 1));
    cJSON_AddNumberToObject(c, "grad_accum", (double)(fit->grad_accum > 0 ? fit->grad_accum : 1));
    cJSON_AddBoolToObject(c, "packing", true);
    cJSON_AddNumberToObject(c, "epochs", (double)epochs);
    cJSON *op = cJSON_AddObjectToObject(c, "optimizer");
    cJSON_AddNumberToObject(op, "lr", lora ? 2e-4 : (strcmp(objective, "pretrain") == 0 ? 5e-5 : 2e-5));
    cJSON_AddNumberToObject(op, "weight_decay", lora ? 0.0 : 0.01);
    cJSON *sc = cJSON_AddObjectToObject(c, "schedule");
    cJSON_AddStringToObject(sc, "type", "cosine");
    cJSON_AddNumberToObject(sc, "warmup_ratio", 0.03);
    cJSON_AddNumberToObject(c, "max_grad_norm", 1.0);
    if (fnum(facts, "val_rows", 0) > 0) {
        cJSON *ev = cJSON_AddObjectToObject(c, "eval");
        int64_t steps = (int64_t)(n / (double)(fit->micro_batch * fit->grad_accum + 1));
        cJSON_AddNumberToObject(ev, "every", (double)(steps / 4 > 1 ? steps / 4 : 1));
        cJSON_AddStringToObject(ev, "split", "val");
        cJSON_AddNumberToObject(ev, "patience", 3);
    }
    cJSON_AddNumberToObject(c, "seed", 42);
    if (o && o->device)
        cJSON_AddStringToObject(c, "device", o->device);
    return c;
}

/*
 * Why the leaf chose its method, from the path's memory steps: for each fit fact the walk
 * tested, the method's estimated peak against the budget ("lora_fits = false: 35.10 GB over
 * the 21.10 GB budget"). NULL when the path tested no fit fact.
 */
static cJSON *choice_reason(const cJSON *path, const cJSON *est, const cJSON *facts,
                            const char *leaf, const char *method, bool ckpt)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s%s (%s):", method,
                     ckpt ? " with gradient checkpointing" : "", leaf);
    bool any = false;
    double budget = fnum(est, "budget_gb", 0);
    for (const cJSON *s = path ? path->child : NULL; s && n < (int)sizeof buf; s = s->next) {
        const char *key = fstr(s, "key"), *val = fstr(s, "value");
        const fit_fact *ff = NULL;
        for (size_t i = 0; key && i < N_FIT_FACTS; i++)
            if (strcmp(FIT_FACTS[i].name, key) == 0)
                ff = &FIT_FACTS[i];
        if (!ff || !val)
            continue;
        char name[64]; /* the estimate the fact was derived from */
        lt_est_method m = ff->method < 0 ? full_method(facts) : (lt_est_method)ff->method;
        snprintf(name, sizeof name, "%s%s", lt_est_method_name(m),
                 ff->checkpointing ? "+ckpt" : "");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(est, name);
        const cJSON *fits = cJSON_GetObjectItemCaseSensitive(e, "fits");
        bool yes = strcmp(val, "true") == 0;
        if (cJSON_IsBool(fits) && cJSON_IsTrue(fits) == yes)
            n += snprintf(buf + n, sizeof buf - (size_t)n,
                          "%s %s = %s: %s needs %.2f GB, %s the %.2f GB budget", any ? ";" : "",
                          key, val, name, fnum(e, "peak_gb", 0), yes ? "within" : "over", budget);
        else /* overridden by the user, or no memory figure to compare with */
            n += snprintf(buf + n, sizeof buf - (size_t)n, "%s %s = %s (given)", any ? ";" : "",
                          key, val);
        any = true;
    }
    return any ? cJSON_CreateString(buf) : NULL;
}

bool lt_plan_build(const lt_plan_tree *t, const char *leaf, const void *answers_v,
                   const void *facts_v, void *path_v, const lt_model_config *cfg,
                   const lt_plan_opts *o, void **record, char *err, size_t errlen)
{
    const cJSON *facts = facts_v, *answers = answers_v;
    cJSON *path = path_v;
    *record = NULL;
    const char *train = NULL, *rationale = NULL;
    const char *method = lt_plan_leaf_method(t, leaf, &train, &rationale);
    if (!method) {
        snprintf(err, errlen, "plan: \"%s\" is not a leaf of the tree", leaf ? leaf : "(null)");
        return false;
    }
    cJSON *r = cJSON_CreateObject(), *w = cJSON_CreateArray();
    /* what the path set (objective, with_rag) */
    const char *objective = "sft";
    bool with_rag = false;
    for (const cJSON *s = path ? path->child : NULL; s; s = s->next) {
        const cJSON *sets = cJSON_GetObjectItemCaseSensitive(s, "sets");
        if (fstr(sets, "objective"))
            objective = fstr(sets, "objective");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sets, "with_rag")))
            with_rag = true;
    }
    cJSON_AddNumberToObject(r, "version", 1);
    cJSON_AddStringToObject(r, "leaf", leaf);
    cJSON_AddStringToObject(r, "method", method);
    if (train)
        cJSON_AddStringToObject(r, "train_method", train);
    else
        cJSON_AddNullToObject(r, "train_method");
    cJSON_AddStringToObject(r, "objective", objective);
    cJSON_AddBoolToObject(r, "with_rag", with_rag);
    cJSON_AddStringToObject(r, "rationale", rationale);
    cJSON_AddItemToObject(r, "answers", answers ? cJSON_Duplicate(answers, 1) : cJSON_CreateObject());
    cJSON_AddItemToObject(r, "facts", cJSON_Duplicate(facts, 1));
    cJSON_AddItemToObject(r, "path", path ? cJSON_Duplicate(path, 1) : cJSON_CreateArray());

    int64_t seq = pick_seq(facts, cfg, o);
    bool gpu = is_gpu(facts);
    double mem_gb = fnum(facts, "memory_gb", 0);
    int64_t want = o && o->batch > 0 ? o->batch : 16;
    cJSON *est = cJSON_AddObjectToObject(r, "estimates");
    cJSON_AddNumberToObject(est, "seq_len", (double)seq);
    cJSON_AddNumberToObject(est, "batch", 1);
    static const lt_est_method cands[] = {LT_EST_FULL_F32, LT_EST_FULL_BF16, LT_EST_FREEZE,
                                          LT_EST_LORA, LT_EST_QLORA};
    uint64_t mem_bytes = (uint64_t)(mem_gb * GB), budget = 0;
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (cands[i] == LT_EST_FULL_BF16 && fnum(facts, "weight_bytes", 4) >= 4)
            continue;
        for (int ck = 0; ck < 2; ck++) { /* without, then with gradient checkpointing */
            lt_est_opts e = lt_plan_est_opts(cands[i], facts, seq);
            e.checkpointing = ck;
            lt_estimate x;
            lt_plan_estimate(cfg, &e, gpu, &x);
            cJSON *j = estimate_json(&x);
            cJSON_AddStringToObject(j, "method", lt_est_method_name(cands[i]));
            cJSON_AddBoolToObject(j, "checkpointing", ck);
            if (mem_gb > 0) {
                lt_fit f;
                cJSON_AddBoolToObject(j, "fits", fits_device(cfg, &e, gpu, mem_bytes, &f));
                budget = f.budget;
            }
            char key[64];
            snprintf(key, sizeof key, "%s%s", lt_est_method_name(cands[i]), ck ? "+ckpt" : "");
            cJSON_AddItemToObject(est, key, j);
        }
    }
    if (mem_gb > 0)
        cJSON_AddNumberToObject(est, "budget_gb", (double)budget / GB);
    cJSON *why = choice_reason(path, est, facts, leaf, method, lt_plan_leaf_checkpointing(t, leaf));
    if (why)
        cJSON_AddItemToObject(r, "choice", why);
    if (strcmp(method, "dpo") == 0 || strcmp(method, "orpo") == 0)
        warn(w, "lathe train does not run %s yet: no config is written; the estimates are for "
                "LoRA supervised training on the same model", method);
    if (with_rag)
        warn(w, "pair this fine-tune with a retrieval index: the facts belong in retrieval, "
                "the fine-tune teaches the style");
    double n = fnum(facts, "n_examples", 0);
    if (n > 0 && n < 20)
        warn(w, "the dataset has %.0f examples: too few to hold out a validation split; the "
                "config trains without evaluation", n);
    else if (fnum(facts, "val_rows", 0) <= 0)
        warn(w, "the dataset has no validation split, so the run cannot stop early or warn "
                "of overfitting: lathe data split NAME --val 0.1");

    bool runnable = train && strcmp(method, "dpo") != 0 && strcmp(method, "orpo") != 0;
    if (runnable) {
        bool ckpt = lt_plan_leaf_checkpointing(t, leaf);
        lt_est_method m = strcmp(train, "full") == 0     ? full_method(facts)
                          : strcmp(train, "qlora") == 0  ? LT_EST_QLORA
                          : strcmp(train, "freeze") == 0 ? LT_EST_FREEZE
                                                         : LT_EST_LORA;
        lt_est_opts e = lt_plan_est_opts(m, facts, seq);
        e.checkpointing = ckpt;
        lt_fit fit;
        lt_plan_fit(cfg, &e, gpu, (uint64_t)(mem_gb * GB), want, &fit);
        cJSON *fj = cJSON_AddObjectToObject(r, "fit");
        cJSON_AddStringToObject(fj, "estimated_as", lt_est_method_name(m));
        cJSON_AddBoolToObject(fj, "checkpointing", ckpt);
        cJSON_AddBoolToObject(fj, "fits", fit.fits);
        cJSON_AddNumberToObject(fj, "budget_gb", (double)fit.budget / GB);
        cJSON_AddNumberToObject(fj, "micro_batch", (double)fit.micro_batch);
        cJSON_AddNumberToObject(fj, "grad_accum", (double)fit.grad_accum);
        cJSON_AddNumberToObject(fj, "effective_batch", (double)want);
        cJSON_AddNumberToObject(fj, "peak_gb", (double)fit.at.peak / GB);
        if (!fit.fits)
            warn(w, "even one sequence of %lld tokens needs %.2f GB with %s, over the %.2f GB "
                    "budget: shorten seq_len, pick a smaller model, or a device with more "
                    "memory", (long long)seq, (double)fit.at.peak / GB, lt_est_method_name(m),
                 (double)fit.budget / GB);
        int64_t epochs = o && o->epochs > 0 ? o->epochs
                         : strcmp(objective, "pretrain") == 0 ? 1 : (n > 10000 ? 2 : 3);
        const cJSON *len = cJSON_GetObjectItemCaseSensitive(facts, "lengths");
        double mean = fnum(len, "mean", (double)seq);
        if (fstr(len, "unit") && strcmp(fstr(len, "unit"), "characters") == 0)
            mean /= 3.5;
        double tokens = n * (mean < (double)seq ? mean : (double)seq);
        double gf = fnum(facts, "train_gflops", 0);
        cJSON *tj = cJSON_AddObjectToObject(r, "time");
        cJSON_AddNumberToObject(tj, "tokens_per_epoch", tokens);
        cJSON_AddNumberToObject(tj, "flops_per_token", lt_plan_train_flops_per_token(cfg, m, seq));
        if (gf > 0)
            cJSON_AddNumberToObject(tj, "seconds_per_epoch",
                                    tokens * lt_plan_train_flops_per_token(cfg, m, seq) /
                                        (gf * 1e9));
        else
            cJSON_AddNullToObject(tj, "seconds_per_epoch");
        const char *model = fstr(facts, "model_dir"), *data = fstr(facts, "dataset");
        cJSON_AddItemToObject(r, "config",
                              make_config(facts, train, ckpt, objective, seq, &fit, epochs,
                                          model ? model : "", data ? data : "", o));
    } else {
        cJSON_AddNullToObject(r, "config");
    }
    cJSON_AddItemToObject(r, "warnings", w);
    *record = r;
    return true;
}

bool lt_plan_save(lt_store *st, const void *record_v, int64_t *plan_id, char *err, size_t errlen)
{
    const cJSON *r = record_v;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r, "config");
    char *rec = cJSON_PrintUnformatted(r);
    char *cj = cfg && !cJSON_IsNull(cfg) ? cJSON_PrintUnformatted(cfg) : NULL;
    int64_t version_id = 0;
    const cJSON *facts = cJSON_GetObjectItemCaseSensitive(r, "facts");
    const char *ds = fstr(facts, "dataset");
    lt_store_version v;
    if (ds && lt_store_version_get(st, ds, (int)fnum(facts, "dataset_version", 0), &v) ==
                  LT_STORE_OK)
        version_id = v.version_id;
    bool ok = false;
    if (!rec) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    lt_store_status s = lt_store_plan_add(st, version_id, rec, cj ? cj : "null", plan_id);
    if (s != LT_STORE_OK) {
        snprintf(err, errlen, "saving the plan: %s (%s)", lt_store_status_str(s),
                 lt_store_errmsg(st));
        goto cleanup;
    }
    ok = true;
cleanup:
    free(rec);
    free(cj);
    return ok;
}
