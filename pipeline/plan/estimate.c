/*
 * estimate.c - the memory and time estimator: bytes for a training run of each candidate
 * method as lathe's engine allocates them, the largest micro-batch that fits a device, and
 * the time per epoch from a measured matmul throughput.
 *
 * The trainer's terms (trainable state, activations with or without recomputation, logits,
 * backward scratch, offloaded inputs) come from the engine's own sizing code
 * (lt_trainer_plan_mem, which counts what the forward and backward workspaces allocate), so
 * they follow the engine's buffers; the weights are the stored dtypes' bytes (NF4 by
 * lt_nf4_bytes per matrix). The logits are f32, one chunk of lt_logits_chunk_rows rows at a
 * time (at most 64 MiB) with its gradient written in place, plus the [B*T] row losses. The
 * estimator test compares the result with the engine's measured high-water mark.
 */
#include "plan/plan.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB ((uint64_t)1 << 20)

const char *lt_est_method_name(lt_est_method m)
{
    static const char *const names[] = {"full_f32", "full_bf16", "full_pure_bf16",
                                        "freeze",   "lora",      "qlora"};
    return (unsigned)m < LT_EST_METHOD_COUNT ? names[m] : "?";
}

/* Parameter counts of one layer: linear weights, biases, norms. */
typedef struct layer_counts {
    int64_t linear, bias, norm;
} layer_counts;

static layer_counts layer_params(const lt_model_config *c)
{
    const int64_t D = c->dim, F = c->ffn, qd = c->n_heads * c->head_dim,
                  kvd = c->n_kv_heads * c->head_dim;
    layer_counts l = {0, 0, 0};
    if (c->arch == LT_ARCH_GPT2) {
        l.linear = D * 3 * D + D * D + D * F + F * D;
        l.bias = 3 * D + D + F + D;
        l.norm = 4 * D;
        return l;
    }
    l.linear = D * qd + 2 * D * kvd + qd * D + 3 * D * F;
    l.bias = (c->qkv_bias ? qd + 2 * kvd : 0) + (c->o_bias ? D : 0) + (c->mlp_bias ? 2 * F + D : 0);
    l.norm = 2 * D;
    return l;
}

int64_t lt_plan_param_count(const lt_model_config *c, int64_t *norms, int64_t *embeddings)
{
    layer_counts l = layer_params(c);
    int64_t emb = c->vocab * c->dim + (c->arch == LT_ARCH_GPT2 ? c->max_pos * c->dim : 0);
    int64_t head = c->tie_embeddings ? 0 : c->vocab * c->dim;
    int64_t fnorm = c->arch == LT_ARCH_GPT2 ? 2 * c->dim : c->dim;
    if (norms)
        *norms = c->n_layers * (l.norm + l.bias) + fnorm;
    if (embeddings)
        *embeddings = emb + head;
    return emb + head + c->n_layers * (l.linear + l.bias + l.norm) + fnorm;
}

/* Bytes of the blocks' linear weights quantized to NF4 at load: each matrix on its own (its
 * codes and scales padded as lt_nf4_bytes says). */
static uint64_t nf4_block_bytes(const lt_model_config *c, bool dq)
{
    const int64_t D = c->dim, F = c->ffn, qd = c->n_heads * c->head_dim,
                  kvd = c->n_kv_heads * c->head_dim;
    const int64_t mats[7] = {qd * D, kvd * D, kvd * D, D * qd, F * D, F * D, D * F};
    uint64_t per = 0;
    for (int i = 0; i < 7; i++)
        per += lt_nf4_bytes(mats[i], dq);
    return per * (uint64_t)c->n_layers;
}

void lt_plan_estimate(const lt_model_config *c, const lt_est_opts *o, bool gpu, lt_estimate *e)
{
    memset(e, 0, sizeof(*e));
    const uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->ffn, V = (uint64_t)c->vocab;
    const uint64_t wb = o->method == LT_EST_FULL_F32 ? 4 : (uint64_t)(o->weight_bytes == 2 ? 2 : 4);
    int64_t small = 0, emb = 0;
    e->params = lt_plan_param_count(c, &small, &emb);
    const uint64_t matrices = (uint64_t)(e->params - small); /* stored in the weight dtype */
    layer_counts lc = layer_params(c);

    /* weights on the device: matrices in their dtype, norms and biases always f32; a frozen
     * input table not tied to the output layer may stay in host memory */
    if (o->method == LT_EST_QLORA)
        e->weights = nf4_block_bytes(c, o->double_quant) + (uint64_t)emb * wb +
                     (uint64_t)small * 4;
    else if (o->method == LT_EST_FULL_PURE_BF16)
        e->weights = (uint64_t)e->params * 2;
    else
        e->weights = matrices * wb + (uint64_t)small * 4;
    bool frozen_emb = o->method == LT_EST_LORA || o->method == LT_EST_QLORA ||
                      o->method == LT_EST_FREEZE;
    if (o->embed_on_host && frozen_emb && !c->tie_embeddings) {
        uint64_t table = V * D * (o->method == LT_EST_FULL_PURE_BF16 ? 2 : wb);
        e->weights -= table;
        /* and the forward's host buffer of one batch's gathered rows [N, D] f32 */
        e->host += table + (uint64_t)(o->batch * o->seq) * D * 4;
    }

    /* the trainer's own buffers, from the code that sizes them as it allocates them */
    lt_trainer_opts to;
    memset(&to, 0, sizeof(to));
    to.max_batch = o->batch;
    to.max_seq = o->seq;
    to.recompute = o->checkpointing;
    to.offload_activations = o->checkpointing && o->offload_activations;
    int64_t trainable = 0, master = 0;
    switch (o->method) {
    case LT_EST_FULL_F32:
    case LT_EST_FULL_BF16:
    case LT_EST_FULL_PURE_BF16:
        to.method = LT_METHOD_FULL;
        trainable = e->params;
        master = wb < 4 ? (int64_t)matrices : 0;
        break;
    case LT_EST_FREEZE: {
        int64_t n = o->freeze_layers < 1 ? 1 : o->freeze_layers;
        if (n > c->n_layers)
            n = c->n_layers;
        to.method = LT_METHOD_FREEZE;
        trainable = n * (lc.linear + lc.bias + lc.norm);
        master = wb < 4 ? n * lc.linear : 0;
        break;
    }
    default: /* LoRA and QLoRA */
        to.method = LT_METHOD_LORA;
        to.lora.r = o->lora_r > 0 ? o->lora_r : 8;
        to.lora.alpha = 2.0f * (float)to.lora.r;
        to.lora.dropout = o->lora_dropout ? 0.05f : 0.0f;
        to.lora.targets = o->lora_targets ? o->lora_targets : lt_lora_all_linear(c->arch);
        break;
    }
    lt_trainer_mem mem;
    lt_trainer_plan_mem(c, &to, trainable, master, &mem);
    e->trainable = to.method == LT_METHOD_LORA ? (int64_t)(mem.adapters / 4) : trainable;
    e->adapters = mem.adapters;
    e->grads = mem.grads;
    e->moments = mem.moments;
    e->master = mem.master;
    e->activations = mem.activations - mem.logits;
    /* the logits chunk and the [B*T] f32 row losses (counted in the trainer's `other`) */
    const uint64_t row_losses = (uint64_t)(o->batch * o->seq) * 4u;
    e->logits = mem.logits + row_losses;
    e->backward = mem.backward + mem.other - row_losses;
    e->host += mem.host;
    if (o->method == LT_EST_FULL_PURE_BF16) { /* a 16-bit engine: a reference point only */
        e->master = 0;
        e->grads = (uint64_t)e->params * 2;
        e->moments = (uint64_t)e->params * 4;
        e->activations /= 2;
    }

    e->tracked = e->weights + e->master + e->adapters + e->grads + e->moments + e->activations +
                 e->logits + e->backward;
    /* workspace: the CPU matmul converts a half weight operand in panels of at most 16 MiB of
     * f32 (malloc'd, not device tensors); a GPU running QLoRA dequantizes one matrix at a time
     * to 16 bits */
    uint64_t biggest = (V * D > D * F ? V * D : D * F);
    if (!gpu && (wb < 4 || o->method == LT_EST_QLORA))
        e->workspace = biggest * 4 < 16 * MIB ? biggest * 4 : 16 * MIB;
    if (gpu && o->method == LT_EST_QLORA)
        e->workspace = biggest * 2;
    /* backend overheads: a GPU's context and the allocator's partly used blocks */
    if (gpu)
        e->overhead = 400 * MIB + e->tracked / 20;
    e->peak = e->tracked + e->workspace + e->overhead;
    lt_plan_estimate_overhead(c, o, gpu, e); /* overhead, host_ram, peak: estimate_overhead.c */
}

void lt_plan_fit(const lt_model_config *c, const lt_est_opts *o, bool gpu, uint64_t memory_bytes,
                 int64_t want_batch, lt_fit *f)
{
    memset(f, 0, sizeof(*f));
    uint64_t margin = memory_bytes / 10 + (gpu ? 512 * MIB : 0);
    f->budget = memory_bytes > margin ? memory_bytes - margin : 0;
    if (want_batch < 1)
        want_batch = 1;
    lt_est_opts x = *o;
    x.batch = 1;
    lt_plan_estimate(c, &x, gpu, &f->at);
    if (f->at.peak > f->budget) {
        f->micro_batch = 0;
        f->grad_accum = 0;
        return;
    }
    f->fits = true;
    /* peak grows with the batch: binary search the largest that fits */
    int64_t lo = 1, hi = want_batch;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        lt_estimate e;
        x.batch = mid;
        lt_plan_estimate(c, &x, gpu, &e);
        if (e.peak <= f->budget)
            lo = mid;
        else
            hi = mid - 1;
    }
    f->micro_batch = lo;
    f->grad_accum = (want_batch + lo - 1) / lo;
    x.batch = lo;
    lt_plan_estimate(c, &x, gpu, &f->at);
}

double lt_plan_train_flops_per_token(const lt_model_config *c, lt_est_method m, int64_t seq)
{
    layer_counts l = layer_params(c);
    double pm = (double)(c->n_layers * l.linear + c->vocab * c->dim); /* matmul weights + head */
    double attn = 6.0 * (double)c->n_layers * (double)seq * (double)(c->n_heads * c->head_dim);
    bool frozen = m == LT_EST_LORA || m == LT_EST_QLORA || m == LT_EST_FREEZE;
    return (frozen ? 4.0 : 6.0) * pm + attn;
}

/* ---- calibration ------------------------------------------------------------------------ */

/* Training runs at about this share of the measured matmul rate (the rest: norms, attention,
 * softmax, optimizer). */
#define TRAIN_EFFICIENCY 0.5

static cJSON *read_cache(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

/* Writes text to path through a temporary name, fsync and rename. */
static bool write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%.200s: %.100s", tmp, strerror(errno));
        return false;
    }
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%.200s: %.100s", path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Times a few [n, n] x [n, n] f32 matmuls; GFLOP/s, or 0 on failure. */
static double measure(lt_device *dev, char *err, size_t errlen)
{
    const int64_t n = 512;
    double best = 0;
    lt_tensor *a = lt_tensor_new_2d(dev, LT_F32, n, n), *b = lt_tensor_new_2d(dev, LT_F32, n, n),
              *c = lt_tensor_new_2d(dev, LT_F32, n, n);
    if (!a || !b || !c || lt_fill(a, 0.5f) || lt_fill(b, 0.25f)) {
        snprintf(err, errlen, "calibration: %s", lt_device_last_error(dev));
        goto cleanup;
    }
    for (int rep = 0; rep < 4; rep++) {
        double t0 = now_s();
        if (lt_matmul(c, a, b, false, false, 1, 0) != LT_OK || lt_device_sync(dev) != LT_OK) {
            snprintf(err, errlen, "calibration: %s", lt_device_last_error(dev));
            best = 0;
            goto cleanup;
        }
        double dt = now_s() - t0, g = 2.0 * (double)(n * n * n) / (dt > 1e-9 ? dt : 1e-9) / 1e9;
        if (rep > 0 && g > best) /* the first run warms caches and pipelines */
            best = g;
    }
cleanup:
    lt_tensor_free(a);
    lt_tensor_free(b);
    lt_tensor_free(c);
    return best;
}

bool lt_plan_calibrate(lt_device *dev, const char *workspace, double *gflops, bool *cached,
                       char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/calibration.json", workspace ? workspace : ".");
    *cached = false;
    *gflops = 0;
    cJSON *cache = read_cache(path);
    const char *name = dev ? lt_device_name(dev) : NULL;
    const cJSON *hit = name && cache ? cJSON_GetObjectItemCaseSensitive(cache, name) : NULL;
    const cJSON *g = hit ? cJSON_GetObjectItemCaseSensitive(hit, "matmul_gflops") : NULL;
    if (cJSON_IsNumber(g) && g->valuedouble > 0) {
        *gflops = g->valuedouble * TRAIN_EFFICIENCY;
        *cached = true;
        cJSON_Delete(cache);
        return true;
    }
    if (!dev) {
        cJSON_Delete(cache);
        snprintf(err, errlen, "calibration: no device to measure and no cached figure in %s",
                 path);
        return false;
    }
    double m = measure(dev, err, errlen);
    if (m <= 0) {
        cJSON_Delete(cache);
        return false;
    }
    *gflops = m * TRAIN_EFFICIENCY;
    if (!cache)
        cache = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(cache, name);
    cJSON *e = cJSON_AddObjectToObject(cache, name);
    cJSON_AddNumberToObject(e, "matmul_gflops", m);
    cJSON_AddNumberToObject(e, "measured_at", (double)time(NULL));
    char *text = cJSON_Print(cache);
    char werr[512] = "";
    if (text) /* a cache that cannot be written costs a re-measurement next time, no more */
        (void)write_atomic(path, text, werr, sizeof(werr));
    free(text);
    cJSON_Delete(cache);
    return true;
}
