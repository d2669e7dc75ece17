/*
 * train.c - starting a training run: device, model and tokenizer, the dataset (from the store
 * or imported on the fly), the checks that model and data fit before the first step, the
 * run's row and folder in the workspace, resuming, and the end of the run.
 *
 * The loop itself is train_loop.c. Nothing here prints: messages go through the callbacks.
 */
#include "train/train_run.h"

#include "data/data.h"
#include "data/sha256.h"
#include "model/model.h"
#include "train/devcheck.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double trun_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void trun_event(trun *r, const char *kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->run_id > 0)
        lt_store_run_event_add(r->st, r->run_id, r->s.step, kind, msg);
    if (r->o->on_message)
        r->o->on_message(r->o->ctx, kind, msg);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sha256 over config.json and every safetensors header in dir (names sorted). */
static bool model_hash(const char *dir, char hex[65])
{
    lt_sha256 h;
    lt_sha256_init(&h);
    char path[4400];
    DIR *d = opendir(dir);
    if (!d)
        return false;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (strcmp(e->d_name, "config.json") == 0 ||
            (l > 12 && strcmp(e->d_name + l - 12, ".safetensors") == 0))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    bool ok = true;
    for (int i = 0; i < n; i++) {
        if (!names[i]) {
            ok = false;
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            ok = false;
        } else {
            uint8_t buf[65536];
            uint64_t want = UINT64_MAX; /* config.json: all of it */
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
    uint8_t dg[32];
    lt_sha256_final(&h, dg, hex);
    return ok;
}

/* Finds (or imports) the dataset. OUT *version_id, format (may be ""). */
static bool resolve_dataset(trun *r, int64_t *version_id, char *format, size_t fn, char *err,
                            size_t errlen)
{
    const lt_train_config *c = r->c;
    char name[256];
    int version = c->dataset_version;
    if (c->dataset_file) {
        const char *base = strrchr(c->dataset_file, '/');
        base = base ? base + 1 : c->dataset_file;
        lt_data_import_opts io;
        lt_data_import_opts_default(&io);
        lt_data_import_result ir;
        int64_t existing;
        io.append = lt_store_dataset_find(r->st, base, &existing) == LT_STORE_OK;
        io.name = base;
        const char *paths[1] = {c->dataset_file};
        char e[1024];
        if (lt_data_import(r->st, paths, 1, &io, &ir, e, sizeof(e)) != LT_DATA_OK) {
            snprintf(err, errlen, "$.dataset.file: %s", e);
            return false;
        }
        snprintf(name, sizeof(name), "%s", ir.name);
        version = ir.version;
        if (r->o->on_message) {
            char m[512];
            snprintf(m, sizeof(m), "imported %s as dataset %s version %d (%lld rows, %lld bad)",
                     c->dataset_file, ir.name, ir.version, (long long)ir.n_rows,
                     (long long)ir.n_bad);
            r->o->on_message(r->o->ctx, "info", m);
        }
    } else {
        snprintf(name, sizeof(name), "%s", c->dataset);
    }
    lt_store_version v;
    if (lt_store_version_get(r->st, name, version, &v) != LT_STORE_OK) {
        if (version)
            snprintf(err, errlen, "$.dataset: no dataset '%s' version %d in the workspace", name,
                     version);
        else
            snprintf(err, errlen,
                     "$.dataset: no dataset '%s' in the workspace (import it with lathe data "
                     "import, or give \"dataset\": {\"file\": PATH})",
                     name);
        return false;
    }
    *version_id = v.version_id;
    snprintf(format, fn, "%s", v.format ? v.format : "");
    return true;
}

/* Whether any member of the version has the split. */
static bool split_count(lt_store *st, int64_t version_id, const char *split, int64_t *n)
{
    lt_store_iter *it = NULL;
    *n = 0;
    if (lt_store_samples_iter(st, version_id, split, &it) != LT_STORE_OK)
        return false;
    lt_store_sample s;
    while (lt_store_samples_next(it, &s) == LT_STORE_OK)
        (*n)++;
    lt_store_iter_free(it);
    return true;
}

/*
 * What every out-of-memory error on the run's device suggests (lt_device_set_oom_hint): the
 * estimate for this run when known (estimate_bytes > 0: the model's weights plus the trainer
 * as the code that allocates sizes it) and the settings that lower memory.
 */
static void set_oom_hint(trun *r, uint64_t estimate_bytes)
{
    const lt_train_config *c = r->c;
    char oom_estimate[128] = "";
    if (estimate_bytes > 0)
        snprintf(oom_estimate, sizeof oom_estimate,
                 "the estimate for this run is %.2f GB (model %.2f GB + trainer); ",
                 (double)estimate_bytes / 1e9,
                 r->model ? (double)lt_model_weight_bytes(r->model) / 1e9 : 0.0);
    char seq[48] = "seq_len";
    if (c->seq_len > 0)
        snprintf(seq, sizeof seq, "seq_len (%lld)", (long long)c->seq_len);
    char hint[512];
    snprintf(hint, sizeof hint,
             "%sto use less memory, lower batch_size (%lld) or %s, or turn on "
             "gradient_checkpointing%s",
             oom_estimate, (long long)c->batch_size, seq,
             c->qlora ? "" : ", or use \"method\": \"qlora\"");
    lt_device_set_oom_hint(r->dev, hint);
}

/* Loads model, tokenizer and data and checks that they fit together. */
static bool setup(trun *r, int64_t *version_id, char *data_hash, char *mhash, char *err,
                  size_t errlen)
{
    const lt_train_config *c = r->c;
    char e[1024];
    const bool pref = trun_pref_enabled(c);
    if (pref && c->packing) {
        snprintf(err, errlen, "$.packing: preference pairs are batched unpacked (a chosen and a "
                              "rejected row per pair); set \"packing\": false");
        return false;
    }
    const char *device = r->o->device ? r->o->device : (c->device ? c->device : "auto");
    int threads = r->o->threads > 0 ? r->o->threads : c->threads;
    r->dev = lt_device_open(device, threads, e, sizeof(e));
    if (!r->dev || lt_devcheck_for_training(r->dev, lt_store_workspace(r->st), e, sizeof(e))) {
        snprintf(err, errlen, "device %s: %s", device, e);
        return false;
    }
    set_oom_hint(r, 0);
    int wdt = !c->qlora ? LT_MODEL_DTYPE_STORED
                        : c->qlora_double_quant ? LT_MODEL_DTYPE_NF4_DQ : (int)LT_NF4;
    lt_model_status ms = lt_model_load(c->model, r->dev, wdt, &r->model, e, sizeof(e));
    if (ms != LT_MODEL_OK) {
        snprintf(err, errlen, "%s: %s", c->qlora ? "$.method (qlora)" : "$.model", e);
        return false;
    }
    if (!model_hash(c->model, mhash))
        mhash[0] = '\0';
    const lt_model_config *mc = lt_model_get_config(r->model);
    r->n_layers = (int)mc->n_layers;
    r->seq_len = c->seq_len ? c->seq_len : (mc->max_pos < 2048 ? mc->max_pos : 2048);
    if (r->seq_len > mc->max_pos) {
        snprintf(err, errlen,
                 "$.seq_len: %lld is longer than the model's context (%lld positions in "
                 "config.json); lower seq_len",
                 (long long)r->seq_len, (long long)mc->max_pos);
        return false;
    }
    if (lt_tokenizer_load_dir(c->model, &r->tok, e, sizeof(e)) != LT_TOK_OK) {
        snprintf(err, errlen, "$.model: the model folder needs a tokenizer: %s", e);
        return false;
    }
    if (lt_tokenizer_n_vocab(r->tok) > mc->vocab) {
        snprintf(err, errlen,
                 "$.model: the tokenizer has %d tokens but the model's vocabulary is %lld",
                 lt_tokenizer_n_vocab(r->tok), (long long)mc->vocab);
        return false;
    }
    if (c->method == LT_METHOD_LORA) {
        uint32_t llama_only = LT_LORA_GATE, gpt2_only = LT_LORA_ATTN;
        if (!lt_arch_is_llama_like(mc->arch) && (c->lora.targets & llama_only)) {
            snprintf(err, errlen, "$.lora.target_modules: gate_proj does not exist in %s "
                                  "(use c_attn, c_proj, c_fc or all-linear)",
                     lt_arch_name(mc->arch));
            return false;
        }
        if (lt_arch_is_llama_like(mc->arch) && (c->lora.targets & gpt2_only)) {
            snprintf(err, errlen, "$.lora.target_modules: c_attn is a GPT-2 module; %s has "
                                  "q_proj, k_proj, v_proj", lt_arch_name(mc->arch));
            return false;
        }
    }
    if (c->method == LT_METHOD_FREEZE) {
        bool tl[LT_TRAIN_MAX_LAYERS];
        if (r->n_layers > LT_TRAIN_MAX_LAYERS ||
            !lt_freeze_layers(c, r->n_layers, 0, tl, e, sizeof(e))) {
            snprintf(err, errlen, "%s", r->n_layers > LT_TRAIN_MAX_LAYERS ? "too many layers" : e);
            return false;
        }
    }
    char format[32] = "";
    if (r->o->resume_run) {
        /* the run's own dataset version, never a re-import */
        if (*version_id <= 0) {
            snprintf(err, errlen, "run %lld has no dataset version recorded (was it deleted?)",
                     (long long)r->o->resume_run);
            return false;
        }
    } else if (!resolve_dataset(r, version_id, format, sizeof(format), err, errlen)) {
        return false;
    }
    lt_encode_opts eo = {0};
    eo.pretrain = c->objective == LT_OBJECTIVE_PRETRAIN;
    eo.train_on_prompt = c->train_on_prompt;
    eo.seq_len = r->seq_len;
    eo.eos_id = lt_tokenizer_eos_id(r->tok);
    if (pref && strcmp(format, "text") == 0) {
        snprintf(err, errlen, "$.objective: the dataset is raw text; %s needs preference pairs "
                              "(prompt, chosen, rejected)", lt_objective_name(c->objective));
        return false;
    }
    if (!eo.pretrain && strcmp(format, "text") == 0) {
        snprintf(err, errlen, "$.objective: the dataset is raw text; use \"objective\": "
                              "\"pretrain\" (sft needs conversations)");
        return false;
    }
    if (!eo.pretrain || strcmp(format, "text") != 0) {
        lt_chat_family force = c->chat_template ? lt_chat_family_parse(c->chat_template)
                                                : LT_CHAT_NONE;
        char te[LT_TOK_ERR_LEN];
        if (lt_tokenizer_chat_family(r->tok, force, &eo.family, te, sizeof(te)) != LT_TOK_OK) {
            snprintf(err, errlen, "$.template: chat data needs a chat template: %s", te);
            return false;
        }
    }
    int32_t pad = lt_tokenizer_pad_id(r->tok);
    r->pad_id = pad >= 0 ? pad : (eo.eos_id >= 0 ? eo.eos_id : 0);
    /* the training split: all members when the dataset was never split */
    const char *split = c->split;
    int64_t n_split = 0, n_all = 0;
    split_count(r->st, *version_id, split, &n_split);
    if (n_split == 0 && strcmp(split, "train") == 0) {
        split_count(r->st, *version_id, NULL, &n_all);
        int64_t n_val = 0, n_test = 0;
        split_count(r->st, *version_id, "val", &n_val);
        split_count(r->st, *version_id, "test", &n_test);
        if (n_val + n_test == 0) {
            split = NULL;
            n_split = n_all;
        }
    }
    if (n_split == 0) {
        snprintf(err, errlen, "$.dataset.split: the split '%s' is empty", c->split);
        return false;
    }
    if (pref ? !trun_pref_load(r, *version_id, split, &eo, false, r->o->strict, data_hash, e,
                               sizeof(e))
             : !lt_examples_load(r->st, *version_id, split, r->tok, &eo, &r->train, data_hash,
                                 e, sizeof(e))) {
        snprintf(err, errlen, "$.dataset: %s", e);
        return false;
    }
    if (r->train.n == 0) {
        snprintf(err, errlen,
                 "$.dataset: none of the %lld samples has a token to learn from after "
                 "truncation to seq_len %lld",
                 (long long)n_split, (long long)r->seq_len);
        return false;
    }
    int64_t n_val = 0;
    if (split && strcmp(c->eval_split, split) != 0)
        split_count(r->st, *version_id, c->eval_split, &n_val);
    if (n_val > 0) {
        if (pref ? !trun_pref_load(r, *version_id, c->eval_split, &eo, true, r->o->strict, NULL,
                                   e, sizeof(e))
                 : !lt_examples_load(r->st, *version_id, c->eval_split, r->tok, &eo, &r->val,
                                     NULL, e, sizeof(e))) {
            snprintf(err, errlen, "$.eval.split: %s", e);
            return false;
        }
        r->has_val = r->val.n > 0;
    }
    if (r->has_val && !lt_rows_plan(&r->val, false, false, r->seq_len, 0, 0, &r->val_rows)) {
        snprintf(err, errlen, "out of memory planning the validation rows");
        return false;
    }
    return true;
}

/* Device memory left beside what is allocated now, as the backend's budget says
 * (lt_device_mem_budget: the driver's VK_EXT_memory_budget, else the device-local heap, on
 * Vulkan; MemAvailable plus what lathe holds on the CPU); *what names the source. */
static uint64_t device_free_bytes(lt_device *dev, const char **what)
{
    uint64_t budget = 0, usage = 0;
    bool cpu = lt_device_get_kind(dev) == LT_DEVICE_CPU;
    *what = cpu ? "RAM available" : "device memory budget left";
    if (!lt_device_mem_budget(dev, &budget, &usage))
        return 0;
    return budget > usage ? budget - usage : 0;
}

/* "gradient_checkpointing": "auto": on when the trainer without it (sized by the code that
 * allocates its buffers) does not fit in what the device has left beside the model; the
 * decision is recorded as a run event. */
static void resolve_checkpointing(trun *r, lt_trainer_opts *to)
{
    lt_trainer_mem keep, rec;
    to->recompute = false;
    lt_trainer_plan_mem_for(r->model, to, &keep);
    to->recompute = true;
    lt_trainer_plan_mem_for(r->model, to, &rec);
    const char *what = "";
    uint64_t avail = device_free_bytes(r->dev, &what);
    to->recompute = keep.device > avail;
    if (r->ckpt_auto == (int)to->recompute)
        return; /* decided alike before (a new freeze round) */
    r->ckpt_auto = to->recompute;
    snprintf(r->ckpt_note, sizeof(r->ckpt_note),
             "gradient checkpointing (auto): %s; the trainer needs %.3g GB of device memory "
             "without it, %.3g GB with it, beside the model's %.3g GB (%s: %.3g GB)",
             to->recompute ? "on" : "off", (double)keep.device / 1e9, (double)rec.device / 1e9,
             (double)lt_device_mem_in_use(r->dev) / 1e9, what, (double)avail / 1e9);
    if (r->run_id > 0) { /* else recorded once the run exists */
        trun_event(r, "info", "%s", r->ckpt_note);
        r->ckpt_note[0] = '\0';
    }
}

bool trun_make_trainer(trun *r, char *err, size_t errlen)
{
    const lt_train_config *c = r->c;
    lt_trainer_free(r->tr);
    r->tr = NULL;
    if (c->method == LT_METHOD_FREEZE) {
        if (!r->train_layer && !(r->train_layer = calloc((size_t)r->n_layers, sizeof(bool)))) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        if (!lt_freeze_layers(c, r->n_layers, r->s.round, r->train_layer, err, errlen))
            return false;
    }
    lt_trainer_opts to;
    lt_train_config_trainer_opts(c, lt_model_get_config(r->model), r->train_layer, &to);
    to.max_batch = trun_pref_enabled(c) ? 2 * c->batch_size : c->batch_size; /* pairs: 2 rows */
    to.max_seq = r->seq_len;
    /* a frozen input table not tied to the output layer stays in host memory: only a batch's
     * rows go to the device */
    const lt_model_config *mc = lt_model_get_config(r->model);
    bool emb_frozen = c->method == LT_METHOD_LORA ||
                      (c->method == LT_METHOD_FREEZE && !c->freeze_train_embeddings);
    char e[1024];
    if (emb_frozen && !mc->tie_embeddings && lt_model_host_embedding_bytes(r->model) == 0) {
        if (lt_model_host_embeddings(r->model, e, sizeof(e)) != LT_MODEL_OK) {
            snprintf(err, errlen, "model: %s", e);
            return false;
        }
    }
    if (c->grad_ckpt == LT_GRAD_CKPT_AUTO)
        resolve_checkpointing(r, &to);
    if (!to.recompute)
        to.offload_activations = false;
    lt_trainer_mem need;
    lt_trainer_plan_mem_for(r->model, &to, &need);
    set_oom_hint(r, lt_model_weight_bytes(r->model) + need.device);
    if (lt_trainer_new(r->model, &to, &r->tr, e, sizeof(e)) != LT_MODEL_OK) {
        snprintf(err, errlen, "trainer: %s", e);
        return false;
    }
    trun_pref_set_trainer(r);
    return true;
}

static bool mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return false;
            *p = '/';
        }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST;
}

static void plan_steps(trun *r)
{
    const lt_train_config *c = r->c;
    int64_t micro = (r->rows.n_rows + c->batch_size - 1) / c->batch_size;
    r->steps_per_epoch = (micro + c->grad_accum - 1) / c->grad_accum;
    if (r->steps_per_epoch < 1)
        r->steps_per_epoch = 1;
    r->total_steps = c->max_steps > 0 ? c->max_steps : c->epochs * r->steps_per_epoch;
    r->sched.kind = c->sched;
    r->sched.base_lr = c->lr;
    r->sched.total_steps = r->total_steps;
    r->sched.min_lr_ratio = c->min_lr_ratio;
    r->sched.warmup_steps = c->warmup_steps >= 0
                                ? c->warmup_steps
                                : (int64_t)ceil(c->warmup_ratio * (double)r->total_steps);
}

static void trun_free(trun *r)
{
    trun_pref_free(r);
    lt_trainer_free(r->tr);
    lt_model_free(r->model);
    lt_tokenizer_free(r->tok);
    lt_device_close(r->dev);
    free(r->train_layer);
    lt_examples_free(&r->train);
    lt_examples_free(&r->val);
    lt_rows_free(&r->rows);
    lt_rows_free(&r->val_rows);
    lt_batch_buf_free(&r->buf);
}

bool lt_train_run(lt_store *st, const lt_train_config *c, const lt_train_opts *o,
                  lt_train_result *res, char *err, size_t errlen)
{
    trun *r = calloc(1, sizeof(trun));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    r->ckpt_auto = -1;
    memset(res, 0, sizeof(*res));
    res->last_loss = NAN;
    res->best_val = NAN;
    r->st = st;
    r->c = c;
    r->o = o;
    r->res = res;
    r->last_ckpt_step = -1;
    r->s.best_val = NAN;
    snprintf(r->s.config_hash, sizeof(r->s.config_hash), "%s", c->hash);
    r->s.rng = c->seed;
    int64_t version_id = 0;
    char data_hash[65] = "", mhash[65] = "", run_mhash[65] = "";
    bool ok = false;
    if (o->resume_run) {
        lt_store_iter *it = NULL;
        lt_store_run run;
        if (lt_store_run_get(st, o->resume_run, &it, &run) != LT_STORE_OK) {
            snprintf(err, errlen, "no run %lld in the workspace", (long long)o->resume_run);
            goto done;
        }
        version_id = run.dataset_version_id;
        snprintf(run_mhash, sizeof(run_mhash), "%s", run.model_hash ? run.model_hash : "");
        bool live = run.status && (strcmp(run.status, "running") == 0 ||
                                   strcmp(run.status, "paused") == 0) &&
                    run.pid > 0 && kill((pid_t)run.pid, 0) == 0;
        bool finished = run.status && strcmp(run.status, "done") == 0;
        lt_store_iter_free(it);
        if (live) {
            snprintf(err, errlen, "run %lld is still running (pid %lld)",
                     (long long)o->resume_run, (long long)run.pid);
            goto done;
        }
        if (finished) {
            snprintf(err, errlen, "run %lld already finished; start a new run to train more",
                     (long long)o->resume_run);
            goto done;
        }
        r->run_id = o->resume_run;
    }
    if (!setup(r, &version_id, data_hash, mhash, err, errlen))
        goto done;
    if (!lt_rows_plan(&r->train, true, c->packing, r->seq_len, c->seed, 0, &r->rows)) {
        snprintf(err, errlen, "out of memory planning the epoch");
        goto done;
    }
    plan_steps(r);
    if (!trun_make_trainer(r, err, errlen))
        goto done;
    if (r->pref) {
        /* DPO's reference comes from the weights just loaded from the model folder, before a
         * checkpoint is restored: on resume that folder must be the one the run started on */
        if (r->run_id && c->objective == LT_OBJECTIVE_DPO && run_mhash[0] && mhash[0] &&
            strcmp(run_mhash, mhash) != 0) {
            snprintf(err, errlen, "$.model: %s changed since run %lld started (model hash "
                     "%.12s, now %.12s); DPO recomputes its reference log-probs from it, so "
                     "the run cannot resume", c->model, (long long)r->run_id, run_mhash, mhash);
            goto done;
        }
        if (!trun_pref_start(r, err, errlen))
            goto done;
    }
    if (r->run_id) {
        bool found = false;
        if (!trun_resume(r, &found, err, errlen))
            goto done;
        if (!found)
            trun_event(r, "info", "no checkpoint to resume from: starting over from step 0");
    } else {
        lt_store_run run;
        memset(&run, 0, sizeof(run));
        run.config = c->json;
        run.method = lt_method_name(c->method);
        run.model_path = c->model;
        run.model_hash = mhash;
        run.dataset_version_id = version_id;
        run.dataset_hash = data_hash;
        run.device = lt_device_name(r->dev);
        run.pid = getpid();
        if (lt_store_run_create(st, &run, &r->run_id) != LT_STORE_OK) {
            snprintf(err, errlen, "cannot record the run: %s", lt_store_errmsg(st));
            goto done;
        }
    }
    snprintf(r->dir, sizeof(r->dir), "%s/runs/%lld/checkpoints", lt_store_workspace(st),
             (long long)r->run_id);
    if (!mkdirs(r->dir)) {
        snprintf(err, errlen, "%s: cannot create (%s)", r->dir, strerror(errno));
        lt_store_run_set_status(st, r->run_id, "failed", err, 0);
        goto done;
    }
    snprintf(r->dir, sizeof(r->dir), "%s/runs/%lld", lt_store_workspace(st),
             (long long)r->run_id);
    res->run_id = r->run_id;
    lt_store_run_set_status(st, r->run_id, "running", "", (int64_t)getpid());
    if (o->on_start)
        o->on_start(o->ctx, r->run_id, r->dir);
    if (!o->resume_run)
        trun_pref_report(r);
    if (r->ckpt_note[0]) {
        trun_event(r, "info", "%s", r->ckpt_note);
        r->ckpt_note[0] = '\0';
    }
    if (r->train.n_truncated && !o->resume_run)
        trun_event(r, "warning", "%lld of %lld examples were longer than seq_len %lld and were "
                   "truncated", (long long)r->train.n_truncated,
                   (long long)(r->train.n + r->train.n_skipped), (long long)r->seq_len);
    if (r->train.n_skipped && !o->resume_run)
        trun_event(r, "warning", "%lld samples had no token to learn from and were skipped",
                   (long long)r->train.n_skipped);
    if (c->eval_every > 0 && !r->has_val)
        trun_event(r, "warning", "no '%s' split in the dataset: no evaluation during training",
                   c->eval_split);
    trun_loop(r);
    ok = true;
done:
    trun_free(r);
    free(r);
    return ok;
}
