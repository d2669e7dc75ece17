/*
 * cmd_bench_train.c - `lathe bench train`: training throughput on a random model. Builds a
 * model of a preset shape (the reference tool's presets: tiny = llama dim 256, 4 layers,
 * vocab 4096, seq 256, batch 8; small = dim 512, 8 layers, vocab 8192, seq 256, batch 4) with
 * random init in a temporary folder, or takes a model folder (--model, e.g. a random-weight
 * folder of a real model's shape written by bench/scale_model.py), then times full steps
 * (forward + backward + AdamW) on random tokens for full fine-tuning, LoRA and/or QLoRA
 * (rank r, alpha 2r, every linear layer) and prints tokens/s (median of timed windows),
 * ms/step, the peak tracked memory beside the estimator's figure for the same run, and the
 * peak RSS. It measures; it never asserts a speed.
 */
#include "cli.h"
#include "model/model_init.h"
#include "plan/plan.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct preset {
    const char *name;
    int64_t dim, layers, heads, ffn, vocab, seq, batch;
} preset;

static const preset presets[] = {
    {"tiny", 256, 4, 4, 688, 4096, 256, 8},
    {"small", 512, 8, 8, 1376, 8192, 256, 4},
};

static void print_help(void)
{
    printf("usage: lathe bench train [--preset tiny|small | --model DIR] [--seq N] [--batch N]\n"
           "                         [--method full,lora,qlora] [--checkpointing on|off]\n"
           "                         [--offload] [--steps N] [--warmup N]\n"
           "                         [--repeats N] [--lora-r R] [--profile]\n"
           "                         [--device D] [--threads N] [--json]\n\n"
           "Times training steps (forward + backward + AdamW, fp32 arithmetic) of a random\n"
           "llama model on random tokens and prints tokens/s (median of --repeats windows of\n"
           "--steps steps after --warmup), ms/step, the peak tracked memory beside the\n"
           "estimator's figure, and the peak RSS. --model DIR takes a model folder instead of\n"
           "a preset (its shape, dtype and vocabulary; --seq and --batch default to 512 and 1).\n"
           "LoRA: rank R, alpha 2R, on q, k, v, o, gate, up and down; qlora: the same on an NF4\n"
           "(double-quantized) base; the input table of an untied model stays in host memory\n"
           "under LoRA/QLoRA, as lathe train does. --checkpointing on recomputes each layer in\n"
           "the backward; --offload also keeps the saved layer inputs in host memory.\n"
           "--profile prints the time per op of the timed steps.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void remove_model(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    rmdir(dir);
}

/* The estimator's figures for the run about to be timed (the same method, shape, rank and
 * micro-batch), so that the tracked peak is printed beside what lathe plan would predict. */
static void estimate_run(const lt_model *m, const preset *p, bool qlora, lt_train_method meth,
                         int lora_r, const lt_trainer_opts *to, lt_estimate *e)
{
    const lt_model_config *c = lt_model_get_config(m);
    int wbytes = 4; /* the stored dtype of the matrices that are not NF4 */
    for (int i = 0; i < lt_model_param_count(m); i++) {
        const lt_model_param *mp = lt_model_param_at(m, i);
        lt_dtype dt = mp->tensor ? lt_tensor_dtype(mp->tensor) : LT_NF4; /* NULL: on the host */
        if (mp->kind != LT_PARAM_NORM && dt != LT_NF4) {
            wbytes = dt == LT_F16 || dt == LT_BF16 ? 2 : 4;
            break;
        }
    }
    lt_est_opts eo = {.batch = p->batch, .seq = p->seq, .weight_bytes = wbytes,
                      .lora_r = lora_r, .double_quant = true, .checkpointing = to->recompute,
                      .offload_activations = to->offload_activations,
                      .embed_on_host = lt_model_host_embedding_bytes(m) > 0};
    eo.method = qlora                      ? LT_EST_QLORA
                : meth == LT_METHOD_LORA   ? LT_EST_LORA
                : wbytes == 2              ? LT_EST_FULL_BF16
                                           : LT_EST_FULL_F32;
    lt_plan_estimate(c, &eo, lt_device_get_kind(lt_model_get_device(m)) != LT_DEVICE_CPU, e);
}

/* One method: returns 0 and fills the figures, or an exit code. */
/* How the timed runs spend memory (--checkpointing, --offload). */
typedef struct bench_mem {
    bool recompute, offload;
} bench_mem;

static int run_method(lt_device *dev, const char *dir, const preset *p, const char *method,
                      int lora_r, const bench_mem *bm, int warmup, int steps, int repeats,
                      bool profile, cJSON *rows)
{
    char err[1024];
    lt_model *m = NULL;
    lt_trainer *t = NULL;
    int32_t *ids = NULL, *lab = NULL;
    double *tps = NULL, *ms = NULL;
    int rc = LT_EXIT_FAIL;
    const bool qlora = strcmp(method, "qlora") == 0; /* LoRA on an NF4 (double-quant) base */
    lt_train_method meth = qlora || strcmp(method, "lora") == 0 ? LT_METHOD_LORA : LT_METHOD_FULL;
    if (lt_model_load(dir, dev, qlora ? LT_MODEL_DTYPE_NF4_DQ : LT_MODEL_DTYPE_STORED, &m, err,
                      sizeof err) != LT_MODEL_OK) {
        lt_cli_fail("bench", LT_EXIT_FAIL, "load: %s", err);
        goto out;
    }
    /* as lathe train does: a frozen input table not tied to the output layer stays in host
     * memory (only a batch's rows go to the device) */
    if (meth == LT_METHOD_LORA && !lt_model_get_config(m)->tie_embeddings &&
        lt_model_host_embeddings(m, err, sizeof err) != LT_MODEL_OK) {
        lt_cli_fail("bench", LT_EXIT_FAIL, "host embeddings: %s", err);
        goto out;
    }
    lt_device_reset_peak(dev);
    lt_trainer_opts o = {.method = meth,
                         .lora = {.r = lora_r, .alpha = 2.0f * (float)lora_r, .seed = 1,
                                  .targets = LT_LORA_Q | LT_LORA_K | LT_LORA_V | LT_LORA_O |
                                             LT_LORA_GATE | LT_LORA_UP | LT_LORA_DOWN},
                         .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                         .max_batch = p->batch, .max_seq = p->seq,
                         .recompute = bm->recompute,
                         .offload_activations = bm->recompute && bm->offload};
    if (lt_trainer_new(m, &o, &t, err, sizeof err) != LT_MODEL_OK) {
        lt_cli_fail("bench", LT_EXIT_FAIL, "trainer: %s", err);
        goto out;
    }
    const int64_t N = p->batch * p->seq;
    ids = malloc((size_t)N * sizeof(int32_t));
    lab = malloc((size_t)N * sizeof(int32_t));
    tps = calloc((size_t)repeats, sizeof(double));
    ms = calloc((size_t)(steps * repeats), sizeof(double));
    if (!ids || !lab || !tps || !ms) {
        lt_cli_fail("bench", LT_EXIT_FAIL, "out of memory");
        goto out;
    }
    uint64_t rng = 2;
    double first = 0, last = 0;
    for (int i = 0; i < warmup + steps * repeats; i++) {
        for (int64_t k = 0; k < N; k++) {
            ids[k] = (int32_t)(next(&rng) % (uint64_t)p->vocab);
            lab[k] = (int32_t)(next(&rng) % (uint64_t)p->vocab);
        }
        if (i == warmup && profile)
            lt_device_set_profiling(dev, true);
        lt_batch b = {p->batch, p->seq, ids, lab, NULL, NULL};
        double t0 = now_s(), loss = 0;
        if (lt_trainer_forward_backward(t, &b, 0, 1.0f, &loss, NULL, err, sizeof err) ||
            lt_trainer_step(t, 1e-4f, 0.0f, NULL, NULL, err, sizeof err)) {
            lt_cli_fail("bench", LT_EXIT_FAIL, "step %d: %s", i, err);
            goto out;
        }
        double dt = now_s() - t0;
        if (i == 0)
            first = loss;
        last = loss;
        if (i >= warmup) {
            int j = i - warmup;
            ms[j] = dt * 1e3;
            tps[j / steps] += dt;
        }
    }
    lt_device_set_profiling(dev, false);
    for (int r = 0; r < repeats; r++)
        tps[r] = (double)(N * steps) / tps[r];
    qsort(tps, (size_t)repeats, sizeof(double), cmp_double);
    qsort(ms, (size_t)(steps * repeats), sizeof(double), cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double med = tps[repeats / 2], med_ms = ms[steps * repeats / 2];
    double rss_mb = (double)ru.ru_maxrss / 1024.0;
    double dev_mb = (double)lt_device_mem_peak(dev) / (1024.0 * 1024.0);
    double w_mb = (double)lt_model_weight_bytes(m) / (1024.0 * 1024.0);
    lt_estimate est;
    estimate_run(m, p, qlora, meth, lora_r, &o, &est);
    double host_mb = (double)lt_device_host_mem_peak(dev) / (1024.0 * 1024.0);
    double est_host_mb = (double)est.host / (1024.0 * 1024.0);
    double est_mb = (double)est.tracked / (1024.0 * 1024.0);
    if (rows) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "preset", p->name);
        cJSON_AddStringToObject(r, "method", method);
        cJSON_AddNumberToObject(r, "trainable", (double)lt_trainer_n_trainable(t));
        cJSON_AddNumberToObject(r, "tokens_per_s_median", med);
        cJSON_AddNumberToObject(r, "ms_per_step_median", med_ms);
        cJSON_AddNumberToObject(r, "peak_rss_mb", rss_mb);
        cJSON_AddNumberToObject(r, "device_peak_mb", dev_mb);
        cJSON_AddNumberToObject(r, "weights_mb", w_mb);
        cJSON_AddNumberToObject(r, "estimate_mb", est_mb);
        cJSON_AddNumberToObject(r, "host_peak_mb", host_mb);
        cJSON_AddNumberToObject(r, "estimate_host_mb", est_host_mb);
        cJSON_AddBoolToObject(r, "checkpointing", o.recompute);
        cJSON_AddBoolToObject(r, "offload", o.offload_activations);
        cJSON_AddNumberToObject(r, "seq", (double)p->seq);
        cJSON_AddNumberToObject(r, "batch", (double)p->batch);
        cJSON_AddNumberToObject(r, "loss_first", first);
        cJSON_AddNumberToObject(r, "loss_last", last);
        cJSON_AddItemToArray(rows, r);
    } else {
        printf("RESULT %s %-4s trainable %lld | tokens/s %.1f | ms/step %.1f | peak RSS %.0f MB "
               "(device tensors %.0f MB, estimate %.0f MB, host %.0f MB, estimate %.0f MB, "
               "weights %.1f MB) | loss %.3f -> %.3f\n",
               p->name, method, (long long)lt_trainer_n_trainable(t), med, med_ms, rss_mb,
               dev_mb, est_mb, host_mb, est_host_mb, w_mb, first, last);
    }
    if (profile && !rows) {
        lt_profile_entry pe[64];
        int n = lt_device_profile(dev, pe, 64);
        double total = 0;
        for (int i = 0; i < n && i < 64; i++)
            total += pe[i].seconds;
        for (int i = 0; i < n && i < 64; i++)
            printf("  %-22s %8llu calls %9.1f ms %5.1f%%\n", pe[i].op,
                   (unsigned long long)pe[i].calls, pe[i].seconds * 1e3,
                   total > 0 ? 100.0 * pe[i].seconds / total : 0.0);
    }
    fflush(stdout);
    rc = LT_EXIT_OK;
out:
    free(ids);
    free(lab);
    free(tps);
    free(ms);
    lt_trainer_free(t);
    lt_model_free(m);
    return rc;
}

int lt_cmd_bench_train(int argc, char **argv)
{
    lt_cli_common co;
    lt_cli_common_defaults(&co);
    const char *pname = "tiny", *methods = "full,lora", *model_dir = NULL;
    int steps = 5, warmup = 2, repeats = 3, lora_r = 8;
    long long seq = 0, batch = 0;
    bench_mem bm = {false, false};
    bool profile = false;
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&co, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help();
            return LT_EXIT_OK;
        } else if (strcmp(a, "--profile") == 0) {
            profile = true;
        } else if (v && strcmp(a, "--preset") == 0) {
            pname = argv[++i];
        } else if (v && strcmp(a, "--method") == 0) {
            methods = argv[++i];
        } else if (v && strcmp(a, "--steps") == 0) {
            steps = atoi(argv[++i]);
        } else if (v && strcmp(a, "--warmup") == 0) {
            warmup = atoi(argv[++i]);
        } else if (v && strcmp(a, "--repeats") == 0) {
            repeats = atoi(argv[++i]);
        } else if (v && strcmp(a, "--lora-r") == 0) {
            lora_r = atoi(argv[++i]);
        } else if (v && strcmp(a, "--checkpointing") == 0) {
            const char *c = argv[++i];
            if (strcmp(c, "on") && strcmp(c, "off"))
                return lt_cli_fail("bench", LT_EXIT_USAGE, "--checkpointing: expected on or off, "
                                   "got '%s'", c);
            bm.recompute = strcmp(c, "on") == 0;
        } else if (strcmp(a, "--offload") == 0) {
            bm.offload = true;
        } else if (v && strcmp(a, "--model") == 0) {
            model_dir = argv[++i];
        } else if (v && strcmp(a, "--seq") == 0) {
            seq = atoll(argv[++i]);
        } else if (v && strcmp(a, "--batch") == 0) {
            batch = atoll(argv[++i]);
        } else {
            print_help();
            return lt_cli_fail("bench", LT_EXIT_USAGE, "unexpected argument '%s'", a);
        }
    }
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, pname) == 0)
            p = &presets[i];
    if (!p || steps < 1 || warmup < 0 || repeats < 1 || lora_r < 1 || seq < 0 || batch < 0)
        return lt_cli_fail("bench", LT_EXIT_USAGE,
                           "want --preset tiny|small, --steps/--repeats/--lora-r >= 1, "
                           "--warmup >= 0, --seq/--batch >= 1");
    char err[1024], dir[4096];
    preset shape = *p;
    if (model_dir) { /* the folder's own shape */
        lt_model_summary sum;
        if (lt_model_inspect(model_dir, &sum, err, sizeof err) != LT_MODEL_OK)
            return lt_cli_fail("bench", LT_EXIT_FAIL, "--model: %s", err);
        shape = (preset){"model", sum.cfg.dim, sum.cfg.n_layers, sum.cfg.n_heads, sum.cfg.ffn,
                         sum.cfg.vocab, 512, 1};
        snprintf(dir, sizeof dir, "%s", model_dir);
    }
    if (seq > 0)
        shape.seq = seq;
    if (batch > 0)
        shape.batch = batch;
    p = &shape;
    if (!model_dir) {
        snprintf(dir, sizeof dir, "/tmp/lathe_bench_train_XXXXXX");
        if (!mkdtemp(dir))
            return lt_cli_fail("bench", LT_EXIT_FAIL, "cannot make a temporary folder");
        lt_model_init_opts mo;
        lt_model_init_defaults(&mo, LT_ARCH_LLAMA);
        mo.dim = p->dim, mo.n_layers = p->layers, mo.n_heads = p->heads,
        mo.n_kv_heads = p->heads;
        mo.ffn = p->ffn, mo.vocab = p->vocab, mo.max_pos = p->seq > 1024 ? p->seq : 1024;
        mo.tie_embeddings = false;
        lt_model_config cfg;
        if (lt_model_init_random(&mo, dir, &cfg, err, sizeof err) != LT_MODEL_OK) {
            remove_model(dir);
            return lt_cli_fail("bench", LT_EXIT_FAIL, "random model: %s", err);
        }
    }
    lt_device *dev = lt_device_open(co.device, co.threads, err, sizeof err);
    if (!dev) {
        if (!model_dir)
            remove_model(dir);
        return lt_cli_fail("bench", LT_EXIT_FAIL, "cannot open device '%s': %s", co.device, err);
    }
    cJSON *root = co.json ? cJSON_CreateObject() : NULL, *rows = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "device", lt_device_name(dev));
        cJSON_AddNumberToObject(root, "threads", lt_device_threads(dev));
        rows = cJSON_AddArrayToObject(root, "results");
    } else {
        printf("lathe train bench: ");
        lt_cli_print_sanitized(stdout, lt_device_name(dev), false);
        if (model_dir) {
            printf(", model ");
            lt_cli_print_sanitized(stdout, model_dir, false);
        }
        printf(", llama dim %lld layers %lld heads %lld ffn %lld vocab %lld seq %lld batch %lld, "
               "fp32\n", (long long)p->dim, (long long)p->layers, (long long)p->heads,
               (long long)p->ffn, (long long)p->vocab, (long long)p->seq, (long long)p->batch);
    }
    int rc = LT_EXIT_OK;
    char list[64];
    snprintf(list, sizeof list, "%s", methods);
    for (char *tok = strtok(list, ","); tok && rc == LT_EXIT_OK; tok = strtok(NULL, ",")) {
        if (strcmp(tok, "full") != 0 && strcmp(tok, "lora") != 0 && strcmp(tok, "qlora") != 0) {
            rc = lt_cli_fail("bench", LT_EXIT_USAGE, "unknown method '%s' (full, lora, qlora)",
                             tok);
            break;
        }
        rc = run_method(dev, dir, p, tok, lora_r, &bm, warmup, steps, repeats, profile, rows);
    }
    if (root) {
        char *js = cJSON_Print(root);
        if (js && rc == LT_EXIT_OK)
            printf("%s\n", js);
        free(js);
        cJSON_Delete(root);
    }
    lt_device_close(dev);
    if (!model_dir)
        remove_model(dir);
    return rc;
}
