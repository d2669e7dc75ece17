/*
 * devcheck.c - the Vulkan device check (see devcheck.h): each op of a training step on the
 * device and on the CPU backend from the same random inputs, compared on the tensor's scale;
 * then a tiny Llama's forward, backward and AdamW step on both; and the per-device cache of
 * the verdict. Must never change a model, a run or the store.
 */
#include "devcheck.h"

#include "model/model_init.h"
#include "train/train_impl.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TENSORS 256

/* One check in progress: both devices, every tensor made (freed at the end), the verdicts. */
typedef struct dc {
    lt_device *cpu, *dev;
    lt_devcheck *out;
    uint64_t rng;
    lt_tensor *owned[MAX_TENSORS];
    int n_owned;
    lt_status st;  /* the first failed call (LT_OK: none) */
    char why[512]; /* what failed */
} dc;

/* the same tensor on the CPU (c) and on the device (g) */
typedef struct pair {
    lt_tensor *c, *g;
} pair;

static uint64_t next_u64(dc *d)
{
    uint64_t z = (d->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float frand(dc *d)
{
    return (float)((double)(next_u64(d) >> 11) / 9007199254740992.0 * 2 - 1);
}

static lt_tensor *own(dc *d, lt_tensor *t)
{
    if (!t || d->n_owned >= MAX_TENSORS) {
        lt_tensor_free(t);
        if (d->st == LT_OK) {
            d->st = LT_ERR_OOM;
            snprintf(d->why, sizeof(d->why), "cannot allocate a check tensor");
        }
        return NULL;
    }
    d->owned[d->n_owned++] = t;
    return t;
}

/* A tensor on both devices: I32 uniform in [0, range), F32 uniform in [lo, hi). */
static pair mk(dc *d, lt_dtype dt, int nd, const int64_t *shape, float lo, float hi)
{
    pair p = {own(d, lt_tensor_new(d->cpu, dt, nd, shape)),
              own(d, lt_tensor_new(d->dev, dt, nd, shape))};
    if (!p.c || !p.g)
        return p;
    int64_t n = lt_tensor_numel(p.c);
    void *v = malloc((size_t)n * 4);
    if (!v) {
        d->st = LT_ERR_OOM;
        snprintf(d->why, sizeof(d->why), "out of host memory");
        return (pair){NULL, NULL};
    }
    for (int64_t i = 0; i < n; i++) {
        if (dt == LT_I32)
            ((int32_t *)v)[i] = (int32_t)(next_u64(d) % (uint64_t)(hi > 1 ? hi : 1));
        else
            ((float *)v)[i] = lo + (hi - lo) * 0.5f * (frand(d) + 1.0f);
    }
    if (lt_tensor_upload(p.c, v, (size_t)n * 4) != LT_OK ||
        lt_tensor_upload(p.g, v, (size_t)n * 4) != LT_OK) {
        d->st = LT_ERR_DEVICE;
        snprintf(d->why, sizeof(d->why), "upload: %s", lt_device_last_error(d->dev));
    }
    free(v);
    return p;
}
#define S(...)                                                                                     \
    (const int64_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define MK(dt, nd, lo, hi, ...) mk(d, dt, nd, S(__VA_ARGS__), lo, hi)

/* Run an op on both devices; X(p) is the member of the side being run. */
#define BOTH(name, ...)                                                                            \
    do {                                                                                           \
        for (int side_ = 0; side_ < 2 && d->st == LT_OK; side_++) {                                \
            lt_status st_ = (__VA_ARGS__);                                                         \
            if (st_ != LT_OK) {                                                                    \
                d->st = st_;                                                                       \
                snprintf(d->why, sizeof(d->why), "%s on %s: %s", name,                             \
                         side_ ? "the device" : "the cpu",                                         \
                         lt_device_last_error(side_ ? d->dev : d->cpu));                           \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#define X(p) (side_ ? (p).g : (p).c)

static void verdict(dc *d, const char *name, double err, double tol)
{
    lt_devcheck *o = d->out;
    bool ok = err <= tol; /* NaN fails */
    if (o->n_ops < LT_DEVCHECK_MAX_OPS) {
        lt_devcheck_op *op = &o->ops[o->n_ops++];
        snprintf(op->name, sizeof(op->name), "%s", name);
        op->err = err;
        op->tol = tol;
        op->ok = ok;
    }
    if (!ok && o->ok) {
        o->ok = false;
        snprintf(o->failed, sizeof(o->failed), "%s", name);
        o->failed_err = err;
        o->failed_tol = tol;
    }
}

/* max|a - b| / max|a| over n values (a: the CPU's) */
static double scaled_err(const float *a, const float *b, int64_t n)
{
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = fabs((double)a[i] - (double)b[i]);
        if (!(x <= e))
            e = isnan(x) ? INFINITY : x;
        if (fabs(a[i]) > m)
            m = fabs(a[i]);
    }
    return m > 0 ? e / m : e;
}

/* Compare one result of an op (both sides already run). */
static void cmp(dc *d, const char *name, pair p)
{
    if (d->st != LT_OK || !p.c)
        return;
    int64_t n = lt_tensor_numel(p.c);
    float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    if (!a || !b || lt_tensor_download_f32(p.c, a, n) != LT_OK ||
        lt_tensor_download_f32(p.g, b, n) != LT_OK) {
        d->st = a && b ? LT_ERR_DEVICE : LT_ERR_OOM;
        snprintf(d->why, sizeof(d->why), "%s: reading the result back: %s", name,
                 lt_device_last_error(d->dev));
    } else {
        const char *inject = getenv("LATHE_DEVCHECK_INJECT"); /* tests: a wrong op */
        if (inject && strcmp(inject, name) == 0 && n > 0)
            b[0] += 1.0f + fabsf(a[0]);
        verdict(d, name, scaled_err(a, b, n), 1e-4);
    }
    free(a);
    free(b);
}

static void check_matmul(dc *d)
{
    static const char *names[4] = {"matmul A B", "matmul A^T B", "matmul A B^T", "matmul A^T B^T"};
    const int64_t M = 33, N = 17, K = 70;
    for (int tr = 0; tr < 4 && d->st == LT_OK; tr++) {
        bool ta = tr & 1, tb = tr & 2;
        pair a = ta ? MK(LT_F32, 2, -1, 1, K, M) : MK(LT_F32, 2, -1, 1, M, K);
        pair b = tb ? MK(LT_F32, 2, -1, 1, N, K) : MK(LT_F32, 2, -1, 1, K, N);
        pair c = MK(LT_F32, 2, -1, 1, M, N);
        BOTH(names[tr], lt_matmul(X(c), X(a), X(b), ta, tb, 1.0f, 0.5f));
        cmp(d, names[tr], c);
    }
    /* a long reduction: one shader loop of 300,001 steps (lavapipe 22.3 cut loops at 65535) */
    pair a = MK(LT_F32, 2, -1, 1, 8, 300001), b = MK(LT_F32, 2, -1, 1, 300001, 12);
    pair c = MK(LT_F32, 2, -1, 1, 8, 12);
    BOTH("matmul K=300001", lt_matmul(X(c), X(a), X(b), false, false, 1.0f, 0.0f));
    cmp(d, "matmul K=300001", c);
}

static void check_layer_ops(dc *d)
{
    const int64_t N = 48, D = 32, V = 300, H = 4, HKV = 2, HD = 8, F = 64;
    pair table = MK(LT_F32, 2, -1, 1, V, D), ids = MK(LT_I32, 1, 0, (float)V, N);
    pair emb = MK(LT_F32, 2, 0, 0, N, D);
    BOTH("embedding", lt_embedding(X(emb), X(table), X(ids)));
    cmp(d, "embedding", emb);
    pair dtable = MK(LT_F32, 2, -1, 1, V, D), dout = MK(LT_F32, 2, -1, 1, N, D);
    BOTH("embedding_backward", lt_embedding_backward(X(dtable), X(dout), X(ids)));
    cmp(d, "embedding_backward", dtable);

    pair x = MK(LT_F32, 2, -1, 1, N, D), w = MK(LT_F32, 1, 0.5f, 1.5f, D);
    pair y = MK(LT_F32, 2, 0, 0, N, D), rstd = MK(LT_F32, 1, 0, 0, N);
    BOTH("rmsnorm", lt_rmsnorm(X(y), X(rstd), X(x), X(w), 1e-5f));
    cmp(d, "rmsnorm", y);
    pair dx = MK(LT_F32, 2, 0, 0, N, D), dw = MK(LT_F32, 1, -1, 1, D);
    BOTH("rmsnorm_backward", lt_rmsnorm_backward(X(dx), X(dw), X(dout), X(x), X(w), X(rstd)));
    cmp(d, "rmsnorm_backward dx", dx);
    cmp(d, "rmsnorm_backward dw", dw);
    pair sum = MK(LT_F32, 2, 0, 0, N, D);
    BOTH("add", lt_add(X(sum), X(x), X(dout)));
    cmp(d, "add", sum);

    /* two rows of 24 tokens: positions restart per row */
    pair q = MK(LT_F32, 4, -1, 1, 2, 24, H, HD), k = MK(LT_F32, 4, -1, 1, 2, 24, HKV, HD);
    pair v = MK(LT_F32, 4, -1, 1, 2, 24, HKV, HD), pos = MK(LT_I32, 1, 0, 24, N);
    if (d->st == LT_OK) {
        int32_t p[48];
        for (int i = 0; i < 48; i++)
            p[i] = i % 24;
        if (lt_tensor_upload(pos.c, p, sizeof(p)) != LT_OK ||
            lt_tensor_upload(pos.g, p, sizeof(p)) != LT_OK)
            d->st = LT_ERR_DEVICE;
    }
    lt_tensor *qv[2] = {NULL, NULL};
    for (int s = 0; s < 2 && d->st == LT_OK; s++) {
        lt_tensor *src = s ? q.g : q.c;
        qv[s] = own(d, lt_tensor_view(src, 0, 3, S(N, H, HD)));
    }
    pair qflat = {qv[0], qv[1]};
    pair inv = MK(LT_F32, 1, 0, 0, HD / 2); /* plain rotary frequencies, theta 10000 */
    if (d->st == LT_OK) {
        float f[HD / 2];
        lt_rope_inv_freq(f, HD, 10000.0f);
        if (lt_tensor_upload_f32(inv.c, f, HD / 2) != LT_OK ||
            lt_tensor_upload_f32(inv.g, f, HD / 2) != LT_OK)
            d->st = LT_ERR_DEVICE;
    }
    if (qflat.c && qflat.g) {
        BOTH("rope", lt_rope(X(qflat), X(pos), X(inv), 1.0f));
        cmp(d, "rope", q);
    }
    lt_attn_params ap = {.scale = 1.0f / sqrtf((float)HD)};
    pair o = MK(LT_F32, 4, 0, 0, 2, 24, H, HD), lse = MK(LT_F32, 3, 0, 0, 2, H, 24);
    BOTH("attention", lt_attention(X(o), X(lse), X(q), X(k), X(v), NULL, &ap));
    cmp(d, "attention", o);
    cmp(d, "attention lse", lse);
    pair dO = MK(LT_F32, 4, -1, 1, 2, 24, H, HD), dq = MK(LT_F32, 4, 0, 0, 2, 24, H, HD);
    pair dk = MK(LT_F32, 4, 0, 0, 2, 24, HKV, HD), dv = MK(LT_F32, 4, 0, 0, 2, 24, HKV, HD);
    BOTH("attention_backward", lt_attention_backward(X(dq), X(dk), X(dv), X(dO), X(q), X(k), X(v),
                                                     X(o), X(lse), NULL, &ap));
    cmp(d, "attention_backward dq", dq);
    cmp(d, "attention_backward dk", dk);
    cmp(d, "attention_backward dv", dv);
    if (qflat.c && qflat.g) {
        BOTH("rope_backward", lt_rope_backward(X(qflat), X(pos), X(inv), 1.0f));
        cmp(d, "rope_backward", q);
    }

    pair gate = MK(LT_F32, 2, -3, 3, N, F), up = MK(LT_F32, 2, -1, 1, N, F);
    pair act = MK(LT_F32, 2, 0, 0, N, F), dact = MK(LT_F32, 2, -1, 1, N, F);
    BOTH("swiglu", lt_swiglu(X(act), X(gate), X(up)));
    cmp(d, "swiglu", act);
    pair dg = MK(LT_F32, 2, 0, 0, N, F), du = MK(LT_F32, 2, 0, 0, N, F);
    BOTH("swiglu_backward", lt_swiglu_backward(X(dg), X(du), X(dact), X(gate), X(up)));
    cmp(d, "swiglu_backward dgate", dg);
    cmp(d, "swiglu_backward dup", du);

    pair logits = MK(LT_F32, 2, -4, 4, N, V), labels = MK(LT_I32, 1, 0, (float)V, N);
    if (d->st == LT_OK) { /* a few ignored rows */
        int32_t lab[48];
        if (lt_tensor_download(labels.c, lab, sizeof(lab)) != LT_OK)
            d->st = LT_ERR_DEVICE;
        for (int i = 0; i < 48; i += 7)
            lab[i] = -100;
        if (d->st != LT_OK || lt_tensor_upload(labels.c, lab, sizeof(lab)) != LT_OK ||
            lt_tensor_upload(labels.g, lab, sizeof(lab)) != LT_OK)
            d->st = LT_ERR_DEVICE;
    }
    pair loss = MK(LT_F32, 1, 0, 0, 1), dlogits = MK(LT_F32, 2, 0, 0, N, V);
    BOTH("cross_entropy",
         lt_cross_entropy(X(loss), NULL, X(dlogits), X(logits), X(labels), -100, 1.0f, 0));
    cmp(d, "cross_entropy loss", loss);
    cmp(d, "cross_entropy dlogits", dlogits);
}

static void check_optimizer(dc *d)
{
    const int64_t n = 1000;
    pair p = MK(LT_F32, 1, -0.1f, 0.1f, n), g = MK(LT_F32, 1, -0.01f, 0.01f, n);
    pair m = MK(LT_F32, 1, -0.01f, 0.01f, n), v = MK(LT_F32, 1, 1e-6f, 1e-4f, n);
    lt_adamw_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3};
    BOTH("adamw", lt_adamw(X(p), X(g), X(m), X(v), &ap, 1.0f));
    cmp(d, "adamw param", p);
    cmp(d, "adamw m", m);
    cmp(d, "adamw v", v);
    pair g2 = MK(LT_F32, 2, -1, 1, 300, 32), norm = MK(LT_F32, 1, 0, 0, 1);
    if (d->st == LT_OK) {
        for (int side_ = 0; side_ < 2 && d->st == LT_OK; side_++) {
            lt_tensor *gs[2] = {X(g), X(g2)};
            if (lt_grad_norm(X(norm), gs, 2) != LT_OK) {
                d->st = LT_ERR_DEVICE;
                snprintf(d->why, sizeof(d->why), "grad_norm: %s",
                         lt_device_last_error(side_ ? d->dev : d->cpu));
            }
        }
        cmp(d, "gradient norm", norm);
    }
}

/* The tiny Llama's loss, gradients and loss after one step, on each device. */
typedef struct side {
    lt_model *m;
    lt_trainer *t;
} side;

static void check_model(dc *d)
{
    char tdir[512], path[600], e[1024];
    const char *tmp = getenv("TMPDIR");
    int len = snprintf(tdir, sizeof(tdir), "%s/lathe-devcheck-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *made = len > 0 && len < (int)sizeof(tdir) ? mkdtemp(tdir) : NULL;
    if (!made) {
        d->st = LT_ERR_ARG;
        snprintf(d->why, sizeof(d->why), "tiny model: cannot make a temporary folder");
        return;
    }
    side s[2] = {{0}};
    float *ga = NULL, *gb = NULL;
    lt_model_init_opts mo;
    lt_model_init_defaults(&mo, LT_ARCH_LLAMA);
    mo.dim = 32;
    mo.n_layers = 2;
    mo.n_heads = 4;
    mo.n_kv_heads = 2;
    mo.ffn = 64;
    mo.vocab = 300;
    mo.max_pos = 64;
    mo.seed = 3;
    lt_model_config cfg;
    enum { B = 2, T = 24 };
    int32_t ids[B * T], labels[B * T];
    for (int i = 0; i < B * T; i++)
        ids[i] = (int32_t)(next_u64(d) % 300);
    for (int i = 0; i < B * T; i++)
        labels[i] = i % T == T - 1 ? -100 : ids[i + 1];
    lt_batch b = {.B = B, .T = T, .ids = ids, .labels = labels};
    double loss[2] = {0, 0}, after[2] = {0, 0};
    if (lt_model_init_random(&mo, made, &cfg, e, sizeof(e)) != LT_MODEL_OK) {
        d->st = LT_ERR_ARG;
        snprintf(d->why, sizeof(d->why), "tiny model: %.400s", e);
        goto cleanup;
    }
    lt_trainer_opts to = {.method = LT_METHOD_FULL,
                          .beta1 = 0.9f,
                          .beta2 = 0.999f,
                          .eps = 1e-8f,
                          .weight_decay = 0.01f,
                          .max_batch = B,
                          .max_seq = T};
    for (int i = 0; i < 2; i++) {
        lt_device *dv = i ? d->dev : d->cpu;
        if (lt_model_load(made, dv, LT_MODEL_DTYPE_STORED, &s[i].m, e, sizeof(e)) != LT_MODEL_OK ||
            lt_trainer_new(s[i].m, &to, &s[i].t, e, sizeof(e)) != LT_MODEL_OK ||
            lt_trainer_forward_backward(s[i].t, &b, 0, 1.0f, &loss[i], NULL, e, sizeof(e)) !=
                LT_MODEL_OK) {
            d->st = LT_ERR_DEVICE;
            snprintf(d->why, sizeof(d->why), "tiny model on %s: %.400s", i ? "the device" : "cpu",
                     e);
            goto cleanup;
        }
    }
    verdict(d, "tiny model: loss", fabs(loss[1] - loss[0]) / fabs(loss[0]), 1e-5);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < lt_trainer_n_state(s[0].t); i++) {
        lt_tensor *g0 = lt_trainer_grad(s[0].t, i), *g1 = lt_trainer_grad(s[1].t, i);
        int64_t n = lt_tensor_numel(g0);
        ga = malloc((size_t)n * 4);
        gb = malloc((size_t)n * 4);
        if (!ga || !gb || lt_tensor_download_f32(g0, ga, n) != LT_OK ||
            lt_tensor_download_f32(g1, gb, n) != LT_OK) {
            d->st = LT_ERR_DEVICE;
            snprintf(d->why, sizeof(d->why), "tiny model: reading gradients back");
            goto cleanup;
        }
        double err = scaled_err(ga, gb, n);
        if (!(err <= worst))
            worst = err, worst_name = lt_trainer_state_at(s[0].t, i)->name;
        free(ga);
        free(gb);
        ga = gb = NULL;
    }
    char name[64];
    snprintf(name, sizeof(name), "tiny model: gradient %.40s", worst_name);
    verdict(d, worst <= 1e-3 ? "tiny model: gradients" : name, worst, 1e-3);
    for (int i = 0; i < 2; i++) {
        double gn = 0;
        bool skipped = false;
        int64_t cnt = 0;
        if (lt_trainer_step(s[i].t, 1e-3f, 0.0f, &gn, &skipped, e, sizeof(e)) != LT_MODEL_OK ||
            lt_trainer_eval(s[i].t, &b, &after[i], &cnt, e, sizeof(e)) != LT_MODEL_OK) {
            d->st = LT_ERR_DEVICE;
            snprintf(d->why, sizeof(d->why), "tiny model step on %s: %.400s",
                     i ? "the device" : "cpu", e);
            goto cleanup;
        }
    }
    verdict(d, "tiny model: loss after AdamW", fabs(after[1] - after[0]) / fabs(after[0]), 1e-4);
cleanup:
    free(ga);
    free(gb);
    for (int i = 0; i < 2; i++) {
        lt_trainer_free(s[i].t);
        lt_model_free(s[i].m);
    }
    snprintf(path, sizeof(path), "%s/config.json", made);
    unlink(path);
    snprintf(path, sizeof(path), "%s/model.safetensors", made);
    unlink(path);
    rmdir(made);
}

/* The device's enumeration entry, from its name "vulkan:N (...)". */
static bool device_info(lt_device *dev, lt_vk_device_info *info)
{
    int index = -1;
    if (!dev || lt_device_get_kind(dev) != LT_DEVICE_VULKAN ||
        sscanf(lt_device_name(dev), "vulkan:%d", &index) != 1)
        return false;
    lt_vk_device_info all[16];
    char why[256];
    int n = lt_vk_enumerate(all, 16, why, sizeof(why));
    for (int i = 0; i < n; i++)
        if (all[i].index == index) {
            *info = all[i];
            return true;
        }
    return false;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

lt_model_status lt_devcheck_run(lt_device *dev, lt_devcheck *out, char *err, size_t errlen)
{
    lt_vk_device_info info;
    memset(out, 0, sizeof(*out));
    if (!device_info(dev, &info)) {
        snprintf(err, errlen, "device check: %s is not an open Vulkan device",
                 dev ? lt_device_name(dev) : "(null)");
        return LT_MODEL_ERR_ARG;
    }
    snprintf(out->device, sizeof(out->device), "%s", info.name);
    snprintf(out->driver, sizeof(out->driver), "%s", info.driver);
    snprintf(out->type, sizeof(out->type), "%s", info.type);
    out->ok = true;
    double t0 = now_s();
    dc d = {.dev = dev, .out = out, .rng = 0x243f6a8885a308d3ull};
    char e[512];
    d.cpu = lt_device_open("cpu", 0, e, sizeof(e));
    if (!d.cpu) {
        snprintf(err, errlen, "device check: cpu backend: %s", e);
        return LT_MODEL_ERR_DEVICE;
    }
    check_matmul(&d);
    if (d.st == LT_OK)
        check_layer_ops(&d);
    if (d.st == LT_OK)
        check_optimizer(&d);
    for (int i = d.n_owned - 1; i >= 0; i--)
        lt_tensor_free(d.owned[i]);
    d.n_owned = 0;
    if (d.st == LT_OK)
        check_model(&d);
    if (d.st == LT_OK && lt_device_sync(dev) != LT_OK) {
        d.st = LT_ERR_DEVICE;
        snprintf(d.why, sizeof(d.why), "sync: %s", lt_device_last_error(dev));
    }
    lt_device_close(d.cpu);
    out->seconds = now_s() - t0;
    if (d.st != LT_OK) {
        snprintf(err, errlen, "device check on %s: %s", lt_device_name(dev), d.why);
        return d.st == LT_ERR_OOM ? LT_MODEL_ERR_OOM : LT_MODEL_ERR_DEVICE;
    }
    return LT_MODEL_OK;
}

/* ---- the cache ----------------------------------------------------------------------------
 * {"version": 1, "devices": [{"device": NAME, "driver": DRIVER, "check": LT_DEVCHECK_VERSION,
 *   "ok": BOOL, "failed": OP, "err": X, "tol": Y}, ...]} */

static cJSON *read_cache(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    if (!cJSON_IsObject(root) || !cJSON_IsArray(cJSON_GetObjectItem(root, "devices"))) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static cJSON *find_entry(cJSON *root, const lt_devcheck *r)
{
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "devices"))
    {
        const char *dn = cJSON_GetStringValue(cJSON_GetObjectItem(e, "device"));
        const char *dr = cJSON_GetStringValue(cJSON_GetObjectItem(e, "driver"));
        if (dn && dr && strcmp(dn, r->device) == 0 && strcmp(dr, r->driver) == 0)
            return e;
    }
    return NULL;
}

/* Write root to path through a temporary name and a rename; false when it cannot. */
static bool write_cache(const char *path, cJSON *root)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return false;
    char *s = cJSON_Print(root);
    FILE *f = s ? fopen(tmp, "wb") : NULL;
    bool ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f && fclose(f) != 0)
        ok = false;
    free(s);
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok && f)
        unlink(tmp);
    return ok;
}

lt_model_status lt_devcheck_cached(lt_device *dev, const char *cache_path, lt_devcheck *out,
                                   char *err, size_t errlen)
{
    lt_vk_device_info info;
    memset(out, 0, sizeof(*out));
    if (!device_info(dev, &info)) {
        snprintf(err, errlen, "device check: %s is not an open Vulkan device",
                 dev ? lt_device_name(dev) : "(null)");
        return LT_MODEL_ERR_ARG;
    }
    snprintf(out->device, sizeof(out->device), "%s", info.name);
    snprintf(out->driver, sizeof(out->driver), "%s", info.driver);
    cJSON *root = cache_path ? read_cache(cache_path) : NULL;
    cJSON *e = root ? find_entry(root, out) : NULL;
    cJSON *ver = e ? cJSON_GetObjectItem(e, "check") : NULL;
    if (e && cJSON_IsNumber(ver) && ver->valueint == LT_DEVCHECK_VERSION &&
        cJSON_IsBool(cJSON_GetObjectItem(e, "ok"))) {
        snprintf(out->type, sizeof(out->type), "%s", info.type);
        out->ok = cJSON_IsTrue(cJSON_GetObjectItem(e, "ok"));
        const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(e, "failed"));
        snprintf(out->failed, sizeof(out->failed), "%s", f ? f : "");
        out->failed_err = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "err"));
        out->failed_tol = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "tol"));
        out->cached = true;
        cJSON_Delete(root);
        return LT_MODEL_OK;
    }
    lt_model_status ms = lt_devcheck_run(dev, out, err, errlen);
    if (ms != LT_MODEL_OK || !cache_path) {
        cJSON_Delete(root);
        return ms;
    }
    if (!root) {
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "version", 1);
        cJSON_AddArrayToObject(root, "devices");
    }
    if (e)
        cJSON_DetachItemViaPointer(cJSON_GetObjectItem(root, "devices"), e), cJSON_Delete(e);
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "device", out->device);
    cJSON_AddStringToObject(n, "driver", out->driver);
    cJSON_AddNumberToObject(n, "check", LT_DEVCHECK_VERSION);
    cJSON_AddBoolToObject(n, "ok", out->ok);
    cJSON_AddStringToObject(n, "failed", out->failed);
    cJSON_AddNumberToObject(n, "err", isfinite(out->failed_err) ? out->failed_err : 1e300);
    cJSON_AddNumberToObject(n, "tol", out->failed_tol);
    cJSON_AddItemToArray(cJSON_GetObjectItem(root, "devices"), n);
    write_cache(cache_path, root); /* best effort: the verdict stands either way */
    cJSON_Delete(root);
    return LT_MODEL_OK;
}

lt_model_status lt_devcheck_for_training(lt_device *dev, const char *workspace, char *err,
                                         size_t errlen)
{
    lt_vk_device_info info;
    const char *mode = getenv("LATHE_DEVCHECK");
    bool force = mode && strcmp(mode, "on") == 0;
    if (!dev || lt_device_get_kind(dev) != LT_DEVICE_VULKAN || (mode && strcmp(mode, "off") == 0))
        return LT_MODEL_OK;
    if (!device_info(dev, &info) || (strcmp(info.type, "cpu") == 0 && !force))
        return LT_MODEL_OK;
    char path[4096];
    bool cache = workspace &&
                 snprintf(path, sizeof(path), "%s/devcheck.json", workspace) < (int)sizeof(path);
    lt_devcheck r;
    lt_model_status ms = lt_devcheck_cached(dev, cache ? path : NULL, &r, err, errlen);
    if (ms != LT_MODEL_OK)
        return ms;
    if (!r.ok) {
        snprintf(err, errlen,
                 "%s with driver %s disagrees with the CPU backend on %s (error %.3g, "
                 "tolerance %.1g): it would train wrong, so it is refused. Run `lathe devices "
                 "--check`, use --device cpu, or update the driver (LATHE_DEVCHECK=off skips "
                 "this check at your own risk)",
                 r.device, r.driver, r.failed, r.failed_err, r.failed_tol);
        return LT_MODEL_ERR_DEVICE;
    }
    return LT_MODEL_OK;
}
