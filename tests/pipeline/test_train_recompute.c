/*
 * test_train_recompute.c - activation recomputation (gradient checkpointing) against keeping
 * every activation: on the CPU backend the loss and every gradient bit are the same with and
 * without recomputation, and with the kept layer inputs offloaded to host memory, for a Llama
 * with GQA, Qwen2 with q/k/v biases and GPT-2, under full fine-tuning, LoRA on every linear
 * layer and QLoRA (NF4 base), with LoRA dropout (masks drawn on the device, redrawn by the
 * recomputation and the backward), on packed rows (segments, restarting positions), with the
 * MLP run in uneven token chunks; a 20-step loss curve is the same bits in every mode; with
 * dropout, the MLP in chunks of 5 tokens and in one chunk (recomputed) agree within 1e-4
 * (each element's mask is the same in every chunking); the
 * workspace sizing (lt_forward_plan_bytes, lt_backward_plan_bytes) equals what the trainer
 * allocates; offloaded inputs are counted as host-resident bytes and recomputation lowers the
 * device high-water mark. On a Vulkan device (not under the sanitizer build) the gradients
 * with recomputation are within 1e-4 relative of those without.
 */
#include "model/forward.h"
#include "test.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

enum { B = 2, T = 13 };

typedef struct tcase {
    const char *model;
    lt_train_method method;
    int nf4;           /* 1: base loaded as NF4 (QLoRA) */
    int64_t mlp_chunk; /* tokens per MLP chunk (0 = automatic) */
    int steps;         /* optimizer steps before the compared forward+backward */
    float dropout;     /* LoRA dropout */
} tcase;

/* MODE_HOST: offload, with the input embedding table in host memory (LoRA on untied models) */
typedef enum mode { MODE_KEEP = 0, MODE_RECOMPUTE, MODE_OFFLOAD, MODE_HOST, MODE_COUNT } mode;
static const char *const mode_name[MODE_COUNT] = {"keep", "recompute", "offload", "host-emb"};

/* What one run produced: the loss of each forward+backward and every gradient after the last. */
typedef struct result {
    int n_loss;
    double loss[32];
    int n_grad;
    float **grad;
    int64_t *numel;
    size_t dev_peak, host_peak; /* the trainer's device peak; the host-resident peak */
    size_t dev_total;           /* the device's peak, the model included */
    uint64_t plan_fwd, plan_host, plan_bw;
} result;

static void result_free(result *r)
{
    for (int i = 0; i < r->n_grad; i++)
        free(r->grad[i]);
    free(r->grad);
    free(r->numel);
    memset(r, 0, sizeof(*r));
}

/* A packed batch: two rows, each holding examples of different lengths (positions restart,
 * segment ids change), some labels masked. */
static void make_batch(int64_t V, int32_t *ids, int32_t *labels, int32_t *pos, int32_t *seg)
{
    static const int cuts[B][3] = {{5, 9, 13}, {7, 13, 13}};
    uint64_t s = 12345;
    for (int b = 0; b < B; b++) {
        int start = 0, sg = 0;
        for (int t = 0; t < T; t++) {
            if (t == cuts[b][sg]) {
                start = t;
                sg++;
            }
            int i = b * T + t;
            ids[i] = (int32_t)(lt_splitmix64(&s) % (uint64_t)V);
            labels[i] = (t + 1 == cuts[b][sg] || t % 4 == 1)
                            ? -100
                            : (int32_t)(lt_splitmix64(&s) % (uint64_t)V);
            pos[i] = t - start;
            seg[i] = sg;
        }
    }
}

static bool run_mode(lt_device *dev, const tcase *tc, mode md, result *r)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/models/%s", LATHE_TEST_DATA, tc->model);
    memset(r, 0, sizeof(*r));
    if (md == MODE_HOST && tc->method != LT_METHOD_LORA)
        return false; /* a table that trains stays on the device */
    lt_model *m = NULL;
    lt_trainer *t = NULL;
    bool ok = false;
    CHECK(lt_model_load(dir, dev, tc->nf4 ? (int)LT_NF4 : LT_MODEL_DTYPE_STORED, &m, err,
                        sizeof(err)) == LT_MODEL_OK,
          "%s: load: %s", tc->model, err);
    if (!m)
        return false;
    const lt_model_config *c = lt_model_get_config(m);
    size_t emb_bytes = 0;
    if (md == MODE_HOST) {
        lt_model_status hs = lt_model_host_embeddings(m, err, sizeof(err));
        if (c->tie_embeddings) {
            CHECK(hs == LT_MODEL_ERR_ARG && strstr(err, "tied"), "%s: tied table refused: %s",
                  tc->model, err);
            goto out;
        }
        CHECK(hs == LT_MODEL_OK, "%s: host embeddings: %s", tc->model, err);
        emb_bytes = lt_model_host_embedding_bytes(m);
        CHECK(emb_bytes > 0 && lt_device_host_mem_in_use(dev) == emb_bytes,
              "%s: the table's %zu bytes are host-resident", tc->model, emb_bytes);
    }
    int32_t ids[B * T], labels[B * T], pos[B * T], seg[B * T];
    make_batch(c->vocab, ids, labels, pos, seg);
    lt_batch b = {B, T, ids, labels, pos, seg};
    lt_trainer_opts o = {
        .method = tc->method,
        .lora = {.r = 4,
                 .alpha = 8.0f,
                 .dropout = tc->dropout,
                 .targets = lt_lora_all_linear(c->arch),
                 .seed = 7},
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = 1e-8f,
        .weight_decay = 0.01f,
        .max_batch = B,
        .max_seq = T,
        .recompute = md != MODE_KEEP,
        .offload_activations = md >= MODE_OFFLOAD,
        .mlp_chunk = tc->mlp_chunk};
    size_t before = lt_device_mem_in_use(dev);
    lt_device_reset_peak(dev);
    CHECK(lt_trainer_new(m, &o, &t, err, sizeof(err)) == LT_MODEL_OK, "%s: trainer: %s", tc->model,
          err);
    if (!t)
        goto out;
    for (int k = 0; k <= tc->steps; k++) {
        double loss = 0;
        CHECK(lt_trainer_forward_backward(t, &b, 0, 1.0f, &loss, NULL, err, sizeof(err)) ==
                  LT_MODEL_OK,
              "%s %s: forward_backward %d: %s", tc->model, mode_name[md], k, err);
        r->loss[r->n_loss++] = loss;
        if (k == tc->steps)
            break;
        double gn = 0;
        bool skipped = false;
        CHECK(lt_trainer_step(t, 1e-2f, 1.0f, &gn, &skipped, err, sizeof(err)) == LT_MODEL_OK &&
                  !skipped,
              "%s %s: step %d: %s", tc->model, mode_name[md], k, err);
    }
    r->dev_peak = lt_device_mem_peak(dev) - before;
    r->host_peak = lt_device_host_mem_peak(dev);
    r->dev_total = lt_device_mem_peak(dev);
    r->n_grad = lt_trainer_n_state(t);
    r->grad = calloc((size_t)r->n_grad, sizeof(float *));
    r->numel = calloc((size_t)r->n_grad, sizeof(int64_t));
    if (!r->grad || !r->numel)
        goto out;
    for (int i = 0; i < r->n_grad; i++) {
        lt_tensor *g = lt_trainer_grad(t, i);
        r->numel[i] = lt_tensor_numel(g);
        r->grad[i] = malloc((size_t)r->numel[i] * sizeof(float));
        CHECK(r->grad[i] && lt_tensor_download_f32(g, r->grad[i], r->numel[i]) == LT_OK,
              "%s: download gradient %d", tc->model, i);
    }
    /* the sizing code counts what the workspaces allocate */
    lt_forward_opts fo = {.max_batch = B,
                          .max_seq = T,
                          .keep_activations = true,
                          .logits_chunk = lt_trainer_logits_chunk(t)};
    lt_forward_mem_opts fm = {o.recompute, o.offload_activations, tc->mlp_chunk};
    const lt_lora_adapter *ad = lt_trainer_lora(t);
    uint32_t slots = 0;
    for (int s = 0; ad && s < LT_LSLOT_COUNT; s++)
        if (ad->mods[0][s].A)
            slots |= 1u << s;
    lt_forward_plan_bytes(c, &fo, &fm, ad ? ad->r : 0, slots, ad ? tc->dropout : 0.0f,
                          &r->plan_fwd, NULL, &r->plan_host);
    int64_t chunk = tc->mlp_chunk > 0 ? tc->mlp_chunk : lt_forward_mlp_chunk(c);
    r->plan_bw = lt_backward_plan_bytes(c, B, T, chunk, ad ? ad->r : 0, ad && tc->dropout > 0);
    ok = true;
out:
    lt_trainer_free(t);
    CHECK(lt_device_host_mem_in_use(dev) == emb_bytes,
          "%s %s: %zu host bytes registered beside "
          "the table's %zu",
          tc->model, mode_name[md], lt_device_host_mem_in_use(dev), emb_bytes);
    lt_model_free(m);
    CHECK(lt_device_host_mem_in_use(dev) == 0, "%s %s: %zu host bytes still registered", tc->model,
          mode_name[md], lt_device_host_mem_in_use(dev));
    return ok;
}

/* Bits equal (tol 0) or within tol relative (max|a-b| / max|b| per tensor). */
static bool same(const float *a, const float *b, int64_t n, double tol, double *worst)
{
    if (tol == 0)
        return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
    double d = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        d = isnan(e) || e > d ? (isnan(e) ? INFINITY : e) : d;
        mb = fabs((double)b[i]) > mb ? fabs((double)b[i]) : mb;
    }
    double rel = d / (mb > 1e-30 ? mb : 1e-30);
    if (rel > *worst)
        *worst = rel;
    return rel <= tol;
}

static void run_case(lt_device *dev, const tcase *tc, double tol, const char *devname)
{
    result r[MODE_COUNT];
    bool ok[MODE_COUNT];
    for (int md = 0; md < MODE_COUNT; md++)
        ok[md] = run_mode(dev, tc, (mode)md, &r[md]);
    const char *meth = tc->method == LT_METHOD_FULL ? "full" : tc->nf4 ? "qlora" : "lora";
    double worst = 0;
    CHECK(ok[MODE_KEEP] && ok[MODE_RECOMPUTE] && ok[MODE_OFFLOAD], "%s %s: a mode failed",
          tc->model, meth);
    for (int md = 1; md < MODE_COUNT && ok[0]; md++) {
        if (!ok[md])
            continue;
        CHECK(r[md].n_grad == r[0].n_grad && r[md].n_grad > 0, "%s %s: %d vs %d gradients",
              tc->model, meth, r[md].n_grad, r[0].n_grad);
        for (int k = 0; k < r[0].n_loss && k < r[md].n_loss; k++) {
            bool eq = tol == 0 ? r[md].loss[k] == r[0].loss[k]
                               : fabs(r[md].loss[k] - r[0].loss[k]) <= tol * fabs(r[0].loss[k]);
            CHECK(eq, "%s %s %s on %s: loss %d %.9g, keeping everything %.9g", tc->model, meth,
                  mode_name[md], devname, k, r[md].loss[k], r[0].loss[k]);
        }
        int nonzero = 0;
        for (int i = 0; i < r[0].n_grad && i < r[md].n_grad; i++) {
            CHECK(r[md].numel[i] == r[0].numel[i], "gradient %d shape", i);
            if (r[md].numel[i] != r[0].numel[i] || !r[0].grad[i] || !r[md].grad[i])
                continue;
            CHECK(same(r[md].grad[i], r[0].grad[i], r[0].numel[i], tol, &worst),
                  "%s %s %s on %s: gradient %d differs", tc->model, meth, mode_name[md], devname,
                  i);
            for (int64_t j = 0; j < r[0].numel[i] && !nonzero; j++)
                nonzero = r[0].grad[i][j] != 0;
        }
        CHECK(nonzero, "%s %s: every gradient is zero (the comparison proves nothing)", tc->model,
              meth);
        if (tol == 0) {
            CHECK(r[md].dev_peak < r[0].dev_peak,
                  "%s %s %s: device peak %zu not below %zu without recomputation", tc->model, meth,
                  mode_name[md], r[md].dev_peak, r[0].dev_peak);
        }
    }
    if (ok[MODE_HOST]) { /* the table, the offloaded inputs and one batch's rows */
        CHECK(r[MODE_HOST].host_peak > r[MODE_OFFLOAD].host_peak &&
                  r[MODE_HOST].dev_total < r[MODE_OFFLOAD].dev_total,
              "%s: host embeddings move bytes from the device (%zu vs %zu) to the host (%zu vs "
              "%zu)",
              tc->model, r[MODE_HOST].dev_total, r[MODE_OFFLOAD].dev_total, r[MODE_HOST].host_peak,
              r[MODE_OFFLOAD].host_peak);
    }
    if (ok[MODE_OFFLOAD]) {
        CHECK(r[MODE_OFFLOAD].host_peak == r[MODE_OFFLOAD].plan_host &&
                  r[MODE_OFFLOAD].host_peak > 0,
              "%s %s: host peak %zu, sizing %llu", tc->model, meth, r[MODE_OFFLOAD].host_peak,
              (unsigned long long)r[MODE_OFFLOAD].plan_host);
        CHECK(r[MODE_RECOMPUTE].host_peak == 0, "%s: host bytes without offload", tc->model);
    }
    for (int md = 0; md < MODE_COUNT; md++) {
        if (ok[md] && tol == 0)
            printf("%-10s %-5s %-9s chunk %-2lld losses %d grads %d device peak %zu (workspaces "
                   "sized %llu) host %zu\n",
                   tc->model, meth, mode_name[md], (long long)tc->mlp_chunk, r[md].n_loss,
                   r[md].n_grad, r[md].dev_peak,
                   (unsigned long long)(r[md].plan_fwd + r[md].plan_bw), r[md].host_peak);
        result_free(&r[md]);
    }
    if (tol > 0)
        printf("%-10s %-5s on %s: worst relative gradient difference %.3g\n", tc->model, meth,
               devname, worst);
}

/* With LoRA dropout, the MLP in chunks of tc's size (kept) and in one chunk (recomputed): the
 * same masks, so the losses and gradients agree up to the order of the chunked sums. A mask
 * keyed per chunk instead of per element of the batch would move them by far more. */
static void check_chunking(lt_device *dev, const tcase *tc)
{
    tcase whole = *tc;
    whole.mlp_chunk = B * T;
    result a, b;
    bool oka = run_mode(dev, tc, MODE_KEEP, &a), okb = run_mode(dev, &whole, MODE_RECOMPUTE, &b);
    CHECK(oka && okb && a.n_grad == b.n_grad && a.n_grad > 0, "%s: chunking runs", tc->model);
    double worst = 0;
    for (int k = 0; oka && okb && k < a.n_loss && k < b.n_loss; k++)
        CHECK(fabs(a.loss[k] - b.loss[k]) <= 1e-6 * fabs(b.loss[k]),
              "%s dropout %g: loss %d %.9g in chunks of %lld, %.9g in one", tc->model,
              (double)tc->dropout, k, a.loss[k], (long long)tc->mlp_chunk, b.loss[k]);
    for (int i = 0; oka && okb && i < a.n_grad && i < b.n_grad; i++)
        if (a.numel[i] == b.numel[i] && a.grad[i] && b.grad[i])
            CHECK(same(a.grad[i], b.grad[i], a.numel[i], 1e-4, &worst),
                  "%s dropout %g: gradient %d differs between MLP chunkings", tc->model,
                  (double)tc->dropout, i);
    printf("%-10s lora dropout %.2g: MLP chunks of %lld vs one, worst relative gradient "
           "difference %.3g\n",
           tc->model, (double)tc->dropout, (long long)tc->mlp_chunk, worst);
    result_free(&a);
    result_free(&b);
}

/* The sizing functions count exactly what a workspace allocates. */
static void check_sizing(lt_device *dev)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/models/llama_gqa", LATHE_TEST_DATA);
    lt_model *m = NULL;
    CHECK(lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) == LT_MODEL_OK,
          "load: %s", err);
    if (!m)
        return;
    const lt_model_config *c = lt_model_get_config(m);
    for (int v = 0; v < 3; v++) {
        /* logits: [N, V], then one chunk of 5 rows */
        lt_forward_opts fo = {
            .max_batch = B, .max_seq = T, .keep_activations = true, .logits_chunk = v ? 5 : 0};
        lt_forward_mem_opts fm = {v > 0, v > 1, 4};
        uint64_t want = 0, host = 0;
        lt_forward_plan_bytes(c, &fo, &fm, 0, 0, 0.0f, &want, NULL, &host);
        size_t before = lt_device_mem_in_use(dev);
        lt_forward *f = NULL;
        CHECK(lt_forward_new_mem(m, &fo, &fm, &f, err, sizeof(err)) == LT_MODEL_OK, "new: %s", err);
        size_t got = lt_device_mem_in_use(dev) - before;
        CHECK(got == want, "forward workspace (mode %d): allocated %zu, sized %llu", v, got,
              (unsigned long long)want);
        before = lt_device_mem_in_use(dev);
        lt_backward *bw = NULL;
        CHECK(f && lt_backward_new_for(m, f, B, T, 4, v == 2, &bw, err, sizeof(err)) == LT_MODEL_OK,
              "backward: %s", err);
        got = lt_device_mem_in_use(dev) - before;
        uint64_t wb = lt_backward_plan_bytes(c, B, T, 4, 4, v == 2);
        CHECK(got == wb, "backward workspace: allocated %zu, sized %llu", got,
              (unsigned long long)wb);
        lt_backward_free(bw);
        lt_forward_free(f);
    }
    lt_model_free(m);
}

int main(void)
{
    lt_device *cpu = lt_device_open("cpu", 2, err, sizeof(err));
    CHECK(cpu != NULL, "cpu device: %s", err);
    if (!cpu)
        return test_summary();
    check_sizing(cpu);
    const tcase cases[] = {
        {"llama_gqa", LT_METHOD_FULL, 0, 5, 2, 0.0f},
        {"llama_gqa", LT_METHOD_LORA, 0, 5, 2, 0.3f},
        {"llama_gqa", LT_METHOD_LORA, 1, 4, 2, 0.1f},
        {"llama_gqa", LT_METHOD_LORA, 0, 5, 2, 0.0f},
        {"llama_gqa", LT_METHOD_FULL, 0, 0, 19, 0.0f}, /* automatic chunk: one; 20 steps */
        {"qwen2_bias", LT_METHOD_FULL, 0, 6, 2, 0.0f},
        {"qwen2_bias", LT_METHOD_LORA, 0, 5, 2, 0.2f},
        {"gpt2", LT_METHOD_FULL, 0, 5, 2, 0.0f},
        {"gpt2", LT_METHOD_LORA, 0, 7, 19, 0.3f},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(cpu, &cases[i], 0.0, "cpu");
    check_chunking(cpu, &cases[1]);
    check_chunking(cpu, &cases[6]);
    check_chunking(cpu, &cases[8]);
    lt_device_close(cpu);

    snprintf(err, sizeof(err), "LATHE_TEST_NO_VULKAN is set");
    bool no_vk = getenv("LATHE_TEST_NO_VULKAN") != NULL;
#ifdef __SANITIZE_ADDRESS__
    snprintf(err, sizeof(err), "sanitizer build: the Vulkan check runs in the normal build");
    no_vk = true;
#endif
    lt_device *vk = no_vk ? NULL : lt_device_open("vulkan:0", 0, err, sizeof(err));
    if (!vk) {
        SKIP("no Vulkan device (%s): recomputation on Vulkan not checked", err);
    } else {
        run_case(vk, &cases[1], 1e-4, "vulkan");
        run_case(vk, &cases[7], 1e-4, "vulkan");
        lt_device_close(vk);
    }
    return test_summary();
}
