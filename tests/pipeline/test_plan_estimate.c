/*
 * test_plan_estimate.c - the memory estimator: a 7B Llama shape against LLaMA-Factory's
 * published figures, the micro-batch search, and the estimate against the engine's measured
 * high-water mark (lt_device_mem_peak on the CPU device) for full fine-tuning and LoRA on the
 * tiny and small configs (plus a grouped-query bf16 Llama and a GPT-2, to cover the other
 * terms), with gradient checkpointing off and on, with offloaded layer inputs and with the
 * input embedding table in host memory (the host bytes against lt_device_host_mem_peak),
 * printing predicted, measured and the ratio.
 *
 * Published anchor (LLaMA-Factory README, "Hardware Requirement", 7B): full AMP 120 GB, full
 * bf16 60 GB, LoRA 16 GB, QLoRA 4-bit 6 GB. The table names no batch or sequence length; we
 * assume batch 1 and seq 512 (short SFT samples). Differences, each explained:
 *   - these anchors are estimated without checkpointing: every activation in f32 (about 8.4 MB
 *     per token for this shape, 4.3 GB at 512 tokens); LLaMA-Factory's figures assume 16-bit
 *     activations and gradient checkpointing, which keep well under 1 GB. This is most of the
 *     LoRA and QLoRA gaps.
 *   - lathe trains half weights with f32 master copies, grads and moments (18 B/param):
 *     full_bf16 lands on the "full AMP 120 GB" row. The "full bf16 60 GB" row is pure bf16
 *     (8 B/param), which the estimator models as full_pure_bf16, a reference point only.
 *   - QLoRA keeps embeddings and lm_head in 16 bits (bitsandbytes quantizes only the
 *     blocks' linear layers): 0.5 GB beyond 0.5 B/param.
 */
#include "plan/plan.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model_init.h"
#include "train/trainer.h"

#define GB 1e9

static lt_model_config llama7b(void)
{
    lt_model_config c = {0};
    c.arch = LT_ARCH_LLAMA;
    c.dim = 4096, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 32, c.head_dim = 128;
    c.ffn = 11008, c.vocab = 32000, c.max_pos = 4096;
    return c;
}

static void anchor(const lt_model_config *c, lt_est_method m, int wb, double published,
                   double lo, double hi)
{
    lt_est_opts o = {0};
    o.method = m;
    o.batch = 1;
    o.seq = 512;
    o.weight_bytes = wb;
    o.lora_r = 8;
    o.double_quant = true;
    lt_estimate e;
    lt_plan_estimate(c, &o, true, &e);
    double gb = (double)e.peak / GB, ratio = gb / published;
    printf("7B %-15s predicted %6.1f GB  published %5.1f GB  ratio %.2f  (weights %.1f, "
           "state %.1f, activations %.1f, logits %.2f, backward %.2f, overhead %.2f)\n",
           lt_est_method_name(m), gb, published, ratio, (double)e.weights / GB,
           (double)(e.master + e.adapters + e.grads + e.moments) / GB,
           (double)e.activations / GB, (double)e.logits / GB, (double)e.backward / GB,
           (double)(e.overhead + e.workspace) / GB);
    CHECK(ratio >= lo && ratio <= hi, "7B %s: ratio %.2f outside [%.2f, %.2f]",
          lt_est_method_name(m), ratio, lo, hi);
    /* like for like: replace lathe's f32 kept activations and backward scratch by what
     * gradient checkpointing in 16 bits keeps (each layer's input, N x D x 2 bytes) */
    double ckpt = (double)(c->n_layers * o.batch * o.seq * c->dim * 2);
    double like = ((double)(e.peak - e.activations - e.backward) + ckpt) / GB;
    printf("   like for like (16-bit checkpointed activations) %6.1f GB  ratio %.2f\n", like,
           like / published);
    CHECK(fabs(like / published - 1) <= 0.15, "7B %s like for like: ratio %.2f",
          lt_est_method_name(m), like / published);
}

static void test_7b_anchor(void)
{
    lt_model_config c = llama7b();
    int64_t p = lt_plan_param_count(&c, NULL, NULL);
    CHECK(llabs(p - 6738415616LL) == 0, "Llama-2-7B has 6,738,415,616 parameters (%lld)",
          (long long)p);
    /* Bands: the same range as the published figure, widened where a documented difference
     * (f32 activations, no checkpointing) adds a known amount. */
    anchor(&c, LT_EST_FULL_BF16, 2, 120, 0.9, 1.2);
    anchor(&c, LT_EST_FULL_PURE_BF16, 2, 60, 0.9, 1.2);
    anchor(&c, LT_EST_LORA, 2, 16, 0.9, 1.35);
    anchor(&c, LT_EST_QLORA, 2, 6, 0.9, 1.75);
    /* the published QLoRA figure assumes 16-bit activations with checkpointing; without the
     * activation term lathe's weights and adapters alone agree closely */
    lt_est_opts o = {.method = LT_EST_QLORA, .batch = 1, .seq = 512, .weight_bytes = 2,
                     .lora_r = 8, .double_quant = true};
    lt_estimate e;
    lt_plan_estimate(&c, &o, true, &e);
    double static_gb = (double)(e.weights + e.adapters + e.grads + e.moments) / GB;
    printf("7B qlora weights+adapter state %.2f GB (QLoRA paper: ~4-5 GB for the 7B base)\n",
           static_gb);
    CHECK(static_gb > 3.5 && static_gb < 5.0, "QLoRA static part %.2f GB", static_gb);
}

static void test_fit(void)
{
    lt_model_config c = llama7b();
    lt_est_opts o = {.method = LT_EST_LORA, .batch = 1, .seq = 512, .weight_bytes = 2,
                     .lora_r = 8, .lora_dropout = true, .double_quant = true};
    lt_fit f;
    lt_plan_fit(&c, &o, true, (uint64_t)(80 * GB), 64, &f);
    CHECK(f.fits && f.micro_batch >= 1 && f.micro_batch < 64, "80 GB LoRA: micro %lld",
          (long long)f.micro_batch);
    CHECK(f.micro_batch * f.grad_accum >= 64 && (f.micro_batch * (f.grad_accum - 1)) < 64,
          "accumulation reaches the effective batch: %lld x %lld", (long long)f.micro_batch,
          (long long)f.grad_accum);
    CHECK(f.at.peak <= f.budget, "the chosen micro-batch is within the budget");
    lt_est_opts o2 = o;
    o2.batch = f.micro_batch + 1;
    lt_estimate e;
    lt_plan_estimate(&c, &o2, true, &e);
    CHECK(e.peak > f.budget, "one more row would not fit (largest micro-batch)");
    o.method = LT_EST_FULL_F32;
    lt_plan_fit(&c, &o, true, (uint64_t)(24 * GB), 16, &f);
    CHECK(!f.fits && f.micro_batch == 0, "7B full f32 does not fit 24 GB");
    o.method = LT_EST_QLORA;
    lt_plan_fit(&c, &o, true, (uint64_t)(16 * GB), 16, &f);
    CHECK(f.fits, "7B QLoRA fits 16 GB at seq 512");
    double full = lt_plan_train_flops_per_token(&c, LT_EST_FULL_F32, 512);
    double lora = lt_plan_train_flops_per_token(&c, LT_EST_LORA, 512);
    CHECK(full > 6 * 6.5e9 && lora < full, "flops per token: full %.3g, lora %.3g", full, lora);
}

/* Trains one step of a random model and compares the engine's peak with the estimate. */
/* A shape to train: arch, sizes, kv heads (0 = heads) and the stored dtype. */
typedef struct shape {
    const char *name;
    lt_arch arch;
    int64_t dim, layers, heads, kv_heads, vocab, seq, batch;
    int dtype;
} shape;

/* How the trainer spends memory: recomputation, offloaded inputs, a host-resident table. */
typedef struct memmode {
    bool ckpt, offload, host_emb;
} memmode;

static void measured(const shape *sh, lt_train_method method, memmode mm)
{
    const char *name = sh->name;
    const int64_t dim = sh->dim, layers = sh->layers, heads = sh->heads, vocab = sh->vocab,
                  seq = sh->seq, batch = sh->batch;
    char err[1024] = "", dir[256];
    snprintf(dir, sizeof(dir), "/tmp/lathe_plan_est_%ld_%s", (long)getpid(), name);
    lt_model_init_opts io;
    lt_model_init_defaults(&io, sh->arch);
    io.dim = dim, io.n_layers = layers, io.n_heads = heads;
    io.n_kv_heads = sh->kv_heads ? sh->kv_heads : heads;
    io.ffn = sh->arch == LT_ARCH_GPT2 ? 4 * dim : (dim * 8 / 3 + 15) / 16 * 16;
    io.vocab = vocab, io.max_pos = seq;
    io.save_dtype = sh->dtype;
    lt_model_config cfg;
    lt_device *dev = NULL;
    lt_model *m = NULL;
    lt_trainer *t = NULL;
    int32_t *ids = NULL, *labels = NULL;
    if (lt_model_init_random(&io, dir, &cfg, err, sizeof(err)) != LT_MODEL_OK) {
        CHECK(false, "%s: init: %s", name, err);
        return;
    }
    dev = lt_device_open("cpu", 0, err, sizeof(err));
    if (!dev || lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err))) {
        CHECK(false, "%s: load: %s", name, err);
        goto cleanup;
    }
    if (mm.host_emb && lt_model_host_embeddings(m, err, sizeof(err)) != LT_MODEL_OK) {
        CHECK(false, "%s: host embeddings: %s", name, err);
        goto cleanup;
    }
    lt_trainer_opts to = {0};
    to.method = method;
    to.lora.r = 8, to.lora.alpha = 16, to.lora.dropout = 0.05f;
    to.lora.targets = sh->arch == LT_ARCH_GPT2
                          ? LT_LORA_ATTN | LT_LORA_O | LT_LORA_UP | LT_LORA_DOWN
                          : LT_LORA_Q | LT_LORA_K | LT_LORA_V | LT_LORA_O | LT_LORA_GATE |
                                LT_LORA_UP | LT_LORA_DOWN;
    to.beta1 = 0.9f, to.beta2 = 0.999f, to.eps = 1e-8f, to.weight_decay = 0.01f;
    to.max_batch = batch, to.max_seq = seq;
    to.recompute = mm.ckpt, to.offload_activations = mm.offload;
    if (lt_trainer_new(m, &to, &t, err, sizeof(err)) != LT_MODEL_OK) {
        CHECK(false, "%s: trainer: %s", name, err);
        goto cleanup;
    }
    int64_t n = batch * seq;
    ids = malloc((size_t)n * sizeof(int32_t));
    labels = malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        ids[i] = (int32_t)((i * 7919) % vocab);
        labels[i] = (int32_t)((i * 104729 + 1) % vocab);
    }
    lt_batch b = {batch, seq, ids, labels, NULL, NULL};
    double loss = 0, gn = 0;
    bool skipped = false;
    if (lt_trainer_forward_backward(t, &b, 0, 1.0f, &loss, NULL, err, sizeof(err)) ||
        lt_trainer_step(t, 1e-4f, 1.0f, &gn, &skipped, err, sizeof(err))) {
        CHECK(false, "%s: step: %s", name, err);
        goto cleanup;
    }
    lt_est_opts eo = {0};
    bool half = sh->dtype != LT_F32;
    eo.method = method == LT_METHOD_LORA ? LT_EST_LORA
                : half                   ? LT_EST_FULL_BF16
                                         : LT_EST_FULL_F32;
    eo.batch = batch, eo.seq = seq, eo.weight_bytes = half ? 2 : 4, eo.lora_r = 8;
    eo.lora_targets = to.lora.targets;
    eo.lora_dropout = true;
    eo.checkpointing = mm.ckpt, eo.offload_activations = mm.offload;
    eo.embed_on_host = mm.host_emb;
    lt_estimate e;
    lt_plan_estimate(&cfg, &eo, false, &e);
    /* the CPU device counts tensors; the matmul's conversion scratch for half weights is host
     * memory it does not track, so compare the tracked part and show the whole */
    double meas = (double)lt_device_mem_peak(dev), pred = (double)e.tracked;
    double hmeas = (double)lt_device_host_mem_peak(dev), hpred = (double)e.host;
    const char *mode = mm.host_emb ? "ckpt+offload+host-emb"
                       : mm.offload ? "ckpt+offload"
                       : mm.ckpt    ? "ckpt"
                                    : "";
    printf("%-13s %-4s %-21s predicted %8.2f MB  measured %8.2f MB  ratio %.3f  host %.2f MB "
           "(measured %.2f)  (peak with the CPU matmul scratch %.2f MB)\n",
           name, method == LT_METHOD_LORA ? "lora" : "full", mode, pred / 1e6, meas / 1e6,
           pred / meas, hpred / 1e6, hmeas / 1e6, (double)e.peak / 1e6);
    CHECK(fabs(pred / meas - 1) <= 0.05, "%s %s: predicted %.0f vs measured %.0f bytes", name,
          mode, pred, meas);
    CHECK(hmeas == 0 ? hpred == 0 : fabs(hpred / hmeas - 1) <= 0.05,
          "%s %s: host bytes predicted %.0f vs measured %.0f", name, mode, hpred, hmeas);
cleanup:
    free(ids);
    free(labels);
    lt_trainer_free(t);
    lt_model_free(m);
    lt_device_close(dev);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void test_against_engine(void)
{
    /* tiny and small as the training benchmark defines them; then other paths of the sums:
     * grouped-query attention with bf16 storage (f32 master copies) and GPT-2 */
    static const shape shapes[] = {
        {"tiny", LT_ARCH_LLAMA, 256, 4, 4, 0, 4096, 256, 8, LT_F32},
        {"small", LT_ARCH_LLAMA, 512, 8, 8, 0, 8192, 256, 4, LT_F32},
        {"tiny-gqa-bf16", LT_ARCH_LLAMA, 256, 2, 8, 2, 1024, 128, 2, LT_BF16},
        {"tiny-gpt2", LT_ARCH_GPT2, 256, 2, 4, 0, 1024, 128, 2, LT_F32},
    };
    const memmode keep = {false, false, false}, ckpt = {true, false, false},
                  offload = {true, true, false}, host = {true, true, true};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        measured(&shapes[i], LT_METHOD_FULL, keep);
        measured(&shapes[i], LT_METHOD_LORA, keep);
    }
    /* checkpointing on and off, offloaded inputs, the input table in host memory */
    measured(&shapes[0], LT_METHOD_LORA, ckpt);
    measured(&shapes[0], LT_METHOD_LORA, offload);
    measured(&shapes[0], LT_METHOD_LORA, host);
    measured(&shapes[2], LT_METHOD_FULL, ckpt);
    measured(&shapes[2], LT_METHOD_LORA, host);
    measured(&shapes[3], LT_METHOD_LORA, offload);
}

int main(void)
{
    test_7b_anchor();
    test_fit();
    test_against_engine();
    return test_summary();
}
