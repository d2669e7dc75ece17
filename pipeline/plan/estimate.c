/*
 * estimate.c - the memory and time estimator: bytes for a training run of each candidate
 * method as lathe's engine allocates them, the largest micro-batch that fits a device, and
 * the time per epoch from a measured matmul throughput.
 *
 * The activation terms mirror pipeline/model/forward.c and pipeline/train/backward.c: every
 * layer's activations are kept in f32 for the backward pass (no recomputation), attention
 * keeps only its log-sum-exp per query (lt_attention never stores the T^2 probabilities, so
 * there is no a*s^2 term), and the logits are f32, one chunk of lt_logits_chunk_rows rows at
 * a time (at most 64 MiB) with its gradient written in place, plus the [B*T] row losses. When the engine's buffers change, change the sums here: the estimator test compares
 * them with the engine's measured high-water mark.
 */
#include "plan/plan.h"
#include "model/forward.h"
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

/* One LoRA module's input and output sizes for a target bit (0 sizes when the arch lacks
 * it). */
static void lora_shape(const lt_model_config *c, uint32_t bit, int64_t *in, int64_t *out)
{
    const int64_t D = c->dim, F = c->ffn, qd = c->n_heads * c->head_dim,
                  kvd = c->n_kv_heads * c->head_dim;
    bool g = c->arch == LT_ARCH_GPT2;
    *in = *out = 0;
    switch (bit) {
    case LT_LORA_Q: *in = D, *out = g ? D : qd; break;
    case LT_LORA_K: *in = D, *out = g ? D : kvd; break;
    case LT_LORA_V: *in = D, *out = g ? D : kvd; break;
    case LT_LORA_O: *in = g ? D : qd, *out = D; break;
    case LT_LORA_GATE: if (!g) *in = D, *out = F; break;
    case LT_LORA_UP: *in = D, *out = F; break;
    case LT_LORA_DOWN: *in = F, *out = D; break;
    case LT_LORA_ATTN: if (g) *in = D, *out = 3 * D; break;
    default: break;
    }
}

void lt_plan_estimate(const lt_model_config *c, const lt_est_opts *o, bool gpu, lt_estimate *e)
{
    memset(e, 0, sizeof(*e));
    const uint64_t L = (uint64_t)c->n_layers, D = (uint64_t)c->dim, F = (uint64_t)c->ffn,
                   V = (uint64_t)c->vocab, H = (uint64_t)c->n_heads,
                   qd = (uint64_t)(c->n_heads * c->head_dim),
                   kvd = (uint64_t)(c->n_kv_heads * c->head_dim);
    const uint64_t N = (uint64_t)(o->batch * o->seq);
    const uint64_t wb = o->method == LT_EST_FULL_F32 ? 4 : (uint64_t)(o->weight_bytes == 2 ? 2 : 4);
    int64_t small = 0, emb = 0;
    e->params = lt_plan_param_count(c, &small, &emb);
    const uint64_t matrices = (uint64_t)(e->params - small); /* stored in the weight dtype */
    const uint64_t block_linear = (uint64_t)(e->params - small - emb);
    layer_counts lc = layer_params(c);

    /* weights on the device: matrices in their dtype, norms and biases always f32 */
    if (o->method == LT_EST_QLORA) {
        double per = 0.5 + (o->double_quant ? 0.127 / 8 : 4.0 / 64);
        e->weights = (uint64_t)((double)block_linear * per) + (uint64_t)emb * wb +
                     (uint64_t)small * 4;
    } else if (o->method == LT_EST_FULL_PURE_BF16) {
        e->weights = (uint64_t)e->params * 2;
    } else {
        e->weights = matrices * wb + (uint64_t)small * 4;
    }

    /* trainable state */
    switch (o->method) {
    case LT_EST_FULL_F32:
    case LT_EST_FULL_BF16:
        e->trainable = e->params;
        e->master = wb < 4 ? matrices * 4 : 0;
        e->grads = (uint64_t)e->params * 4;
        e->moments = (uint64_t)e->params * 8;
        break;
    case LT_EST_FULL_PURE_BF16:
        e->trainable = e->params;
        e->grads = (uint64_t)e->params * 2;
        e->moments = (uint64_t)e->params * 4;
        break;
    case LT_EST_FREEZE: {
        int64_t n = o->freeze_layers < 1 ? 1 : o->freeze_layers;
        if (n > c->n_layers)
            n = c->n_layers;
        uint64_t lin = (uint64_t)(n * lc.linear), rest = (uint64_t)(n * (lc.bias + lc.norm));
        e->trainable = (int64_t)(lin + rest);
        e->master = wb < 4 ? lin * 4 : 0;
        e->grads = (lin + rest) * 4;
        e->moments = (lin + rest) * 8;
        break;
    }
    case LT_EST_LORA:
    case LT_EST_QLORA: {
        uint32_t tg = o->lora_targets ? o->lora_targets : lt_lora_all_linear(c->arch);
        uint64_t r = (uint64_t)(o->lora_r > 0 ? o->lora_r : 8), per_layer = 0, mods = 0;
        for (uint32_t bit = 1; bit <= LT_LORA_ATTN; bit <<= 1) {
            int64_t in, out;
            if (!(tg & bit))
                continue;
            lora_shape(c, bit, &in, &out);
            if (!in)
                continue;
            per_layer += r * (uint64_t)(in + out);
            mods++;
        }
        e->trainable = (int64_t)(per_layer * L);
        e->adapters = per_layer * L * 4;
        e->grads = e->adapters;
        e->moments = 2 * e->adapters;
        /* kept per layer and module: u = scale * x A^T [N, r]; the backward's du and dxd */
        e->activations += L * mods * N * r * 4;
        uint64_t wide = D > F ? D : F;
        wide = qd > wide ? qd : wide;
        e->backward += N * r * 4 + N * wide * 4;
        if (o->lora_dropout) /* one module's dropped input at a time (masks redrawn) */
            e->activations += N * wide * 4;
        break;
    }
    default:
        break;
    }

    /* activations kept per layer (forward.c alloc_layer): residual in, x_mid, h1, h2 [N, D];
     * four [N] norm statistics; q and att [N, qd]; k, v [N, kvd]; lse [B, H, T]; gate, up,
     * act [N, F] (GPT-2 allocates gate too) */
    uint64_t per_layer = N * (4 * D + 4 + 2 * qd + 2 * kvd + H + 3 * F) * 4;
    e->activations += L * per_layer;
    /* the last residual, tmp, hf [N, D]; final norm statistics; ids, pos, seg and the
     * trainer's labels [N] i32 */
    e->activations += N * (3 * D + 2 + 4) * 4;
    e->logits = (uint64_t)lt_logits_chunk_rows((int64_t)V, (int64_t)N) * V * 4 + N * 4;
    /* backward.c: dres, dh, dtmp [N, D]; dq, datt [N, qd]; dk, dv [N, kvd]; dgate, dup,
     * dact [N, F]; the loss and the gradient norm */
    e->backward += N * (3 * D + 2 * qd + 2 * kvd + 3 * F) * 4 + 8;
    if (o->method == LT_EST_FULL_PURE_BF16) /* a 16-bit engine would keep 16-bit activations */
        e->activations /= 2;

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
