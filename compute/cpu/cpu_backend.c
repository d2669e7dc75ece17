/*
 * cpu_backend.c - the CPU backend: its table, thread setup, host memory, the CPU description
 * for `lathe devices`, and the simple ops (fill, copy, elementwise, activations, AdamW,
 * gradient norm and clipping).
 *
 * Ops run when called (sync is a no-op). Parallel loops use OpenMP with a static schedule and
 * the device's thread count; reductions are chunked independently of the thread count and
 * summed in a fixed order, so results never depend on scheduling.
 */
#include "cpu_impl.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- CPU description -------------------------------------------------------------------- */

static int usable_cores(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The value after "key<spaces>:" on a line that starts with key, trimmed; NULL if no match. */
static char *line_value(char *line, const char *key)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0)
        return NULL;
    char *p = line + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t l = strlen(p);
    while (l && (p[l - 1] == '\n' || p[l - 1] == ' '))
        p[--l] = '\0';
    return p;
}

static bool has_flag(const char *flags, const char *f)
{
    size_t n = strlen(f);
    for (const char *p = flags; (p = strstr(p, f)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

void lt_cpu_info_get(lt_cpu_info *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    snprintf(out->model, sizeof out->model, "unknown CPU");
    long lc = sysconf(_SC_NPROCESSORS_ONLN);
    out->logical_cores = lc > 0 ? (int)lc : 1;
    out->usable_cores = usable_cores();

    char line[8192];
    FILE *f = fopen("/proc/cpuinfo", "r");
    bool got_model = false, got_flags = false;
    while (f && fgets(line, sizeof line, f) && !(got_model && got_flags)) {
        char *v;
        if (!got_model && (v = line_value(line, "model name")) != NULL) {
            snprintf(out->model, sizeof out->model, "%s", v);
            got_model = true;
        } else if (!got_flags && (v = line_value(line, "flags")) != NULL) {
            static const char *const known[] = {"sse4_2", "avx", "avx2", "fma", "f16c",
                                                "avx512f", "avx512bw", "avx512_bf16",
                                                "avx512_fp16", "amx_tile"};
            size_t n = 0;
            for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
                if (has_flag(v, known[i]) && n < sizeof out->simd)
                    n += (size_t)snprintf(out->simd + n, sizeof out->simd - n, "%s%s",
                                          n ? " " : "", known[i]);
            got_flags = true;
        }
    }
    if (f)
        fclose(f);

    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *v;
        if ((v = line_value(line, "MemTotal")) != NULL)
            out->ram_bytes = strtoull(v, NULL, 10) * 1024ull;
        else if ((v = line_value(line, "MemAvailable")) != NULL)
            out->ram_available_bytes = strtoull(v, NULL, 10) * 1024ull;
    }
    if (f)
        fclose(f);
}

/* ---- memory and copies ------------------------------------------------------------------ */

static void cpu_close(lt_device *dev) { (void)dev; }
static lt_status cpu_sync(lt_device *dev)
{
    (void)dev;
    return LT_OK;
}

static lt_status cpu_alloc(lt_device *dev, size_t bytes, void **buf)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0)
        return lt_dev_error(dev, LT_ERR_OOM, "cpu: cannot allocate %zu bytes", bytes);
    *buf = p;
    return LT_OK;
}

static void cpu_release(lt_device *dev, void *buf)
{
    (void)dev;
    free(buf);
}

static lt_status cpu_upload(lt_device *dev, lt_tensor *t, const void *src, size_t bytes)
{
    (void)dev;
    memcpy(lt_cpu_data(t), src, bytes);
    return LT_OK;
}

static lt_status cpu_download(lt_device *dev, const lt_tensor *t, void *dst, size_t bytes)
{
    (void)dev;
    memcpy(dst, lt_cpu_data(t), bytes);
    return LT_OK;
}

void lt_cpu_to_f32(float *dst, const void *base, lt_dtype dt, int64_t i0, int64_t n)
{
    if (dt == LT_F32) {
        memcpy(dst, (const float *)base + i0, (size_t)n * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)base + i0;
    if (dt == LT_BF16)
        for (int64_t i = 0; i < n; i++)
            dst[i] = lt_bf16_to_f32(h[i]);
    else
        for (int64_t i = 0; i < n; i++)
            dst[i] = lt_f16_to_f32(h[i]);
}

#define PAR_MIN 16384 /* below this many elements, loops run on one thread */

static lt_status cpu_fill(lt_device *dev, lt_tensor *t, float value)
{
    int64_t n = t->numel;
    void *p = lt_cpu_data(t);
    int nt = lt_cpu_nt(dev);
    if (t->dtype == LT_I32) {
        int32_t iv = (int32_t)value;
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            ((int32_t *)p)[i] = iv;
        return LT_OK;
    }
    if (t->dtype == LT_F32) {
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            ((float *)p)[i] = value;
        return LT_OK;
    }
    uint16_t h = t->dtype == LT_F16 ? lt_f32_to_f16(value) : lt_f32_to_bf16(value);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        ((uint16_t *)p)[i] = h;
    return LT_OK;
}

static lt_status cpu_copy(lt_device *dev, lt_tensor *dst, const lt_tensor *src)
{
    int64_t n = dst->numel;
    if (dst->dtype == src->dtype) {
        memcpy(lt_cpu_data(dst), lt_cpu_data(src), lt_tensor_bytes(dst));
        return LT_OK;
    }
    void *d = lt_cpu_data(dst);
    const void *s = lt_cpu_data(src);
    lt_dtype dd = dst->dtype, sd = src->dtype;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        lt_cpu_store(d, dd, i, lt_cpu_load(s, sd, i));
    return LT_OK;
}

/* ---- elementwise ------------------------------------------------------------------------ */

static lt_status cpu_add(lt_device *dev, lt_tensor *out, const lt_tensor *a, const lt_tensor *b)
{
    float *o = lt_cpu_f(out);
    const float *x = lt_cpu_f(a), *y = lt_cpu_f(b);
    int64_t n = out->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        o[i] = x[i] + y[i];
    return LT_OK;
}

static lt_status cpu_scale(lt_device *dev, lt_tensor *x, float alpha)
{
    float *p = lt_cpu_f(x);
    int64_t n = x->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        p[i] *= alpha;
    return LT_OK;
}

static lt_status cpu_axpy(lt_device *dev, lt_tensor *y, float alpha, const lt_tensor *x)
{
    float *o = lt_cpu_f(y);
    const float *p = lt_cpu_f(x);
    int64_t n = y->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        o[i] += alpha * p[i];
    return LT_OK;
}

static lt_status cpu_bias_add(lt_device *dev, lt_tensor *x, const lt_tensor *b)
{
    int64_t D = b->numel, N = x->numel / D;
    float *p = lt_cpu_f(x);
    float *bf = malloc((size_t)D * sizeof(float));
    if (!bf)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_bias_add: out of host memory");
    lt_cpu_to_f32(bf, lt_cpu_data(b), b->dtype, 0, D);
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > PAR_MIN)
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < D; j++)
            p[r * D + j] += bf[j];
    free(bf);
    return LT_OK;
}

static lt_status cpu_bias_backward(lt_device *dev, lt_tensor *db, const lt_tensor *dout)
{
    int64_t D = db->numel, N = dout->numel / D;
    float *o = lt_cpu_f(db);
    const float *g = lt_cpu_f(dout);
    int nt = lt_cpu_nt(dev);
    /* columns split across threads, rows summed in order: the same bits for any count */
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > PAR_MIN)
    for (int64_t j0 = 0; j0 < D; j0 += 64) {
        int64_t j1 = j0 + 64 < D ? j0 + 64 : D;
        float acc[64] = {0};
        for (int64_t r = 0; r < N; r++)
            for (int64_t j = j0; j < j1; j++)
                acc[j - j0] += g[r * D + j];
        for (int64_t j = j0; j < j1; j++)
            o[j] += acc[j - j0];
    }
    return LT_OK;
}

/* ---- activations ------------------------------------------------------------------------ */

static inline float sigmoidf(float x) { return 1.0f / (1.0f + lt_cpu_expf(-x)); }

static lt_status cpu_silu(lt_device *dev, lt_tensor *out, const lt_tensor *x)
{
    float *o = lt_cpu_f(out);
    const float *p = lt_cpu_f(x);
    int64_t n = out->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        o[i] = p[i] * sigmoidf(p[i]);
    return LT_OK;
}

static lt_status cpu_silu_backward(lt_device *dev, lt_tensor *dx, const lt_tensor *dout,
                                   const lt_tensor *x)
{
    float *o = lt_cpu_f(dx);
    const float *g = lt_cpu_f(dout), *p = lt_cpu_f(x);
    int64_t n = dx->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float s = sigmoidf(p[i]);
        o[i] = g[i] * s * (1.0f + p[i] * (1.0f - s));
    }
    return LT_OK;
}

#define GELU_C 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

static lt_status cpu_gelu(lt_device *dev, lt_tensor *out, const lt_tensor *x)
{
    float *o = lt_cpu_f(out);
    const float *p = lt_cpu_f(x);
    int64_t n = out->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = p[i];
        o[i] = 0.5f * v * (1.0f + tanhf(GELU_C * (v + GELU_A * v * v * v)));
    }
    return LT_OK;
}

static lt_status cpu_gelu_backward(lt_device *dev, lt_tensor *dx, const lt_tensor *dout,
                                   const lt_tensor *x)
{
    float *o = lt_cpu_f(dx);
    const float *g = lt_cpu_f(dout), *p = lt_cpu_f(x);
    int64_t n = dx->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = p[i];
        float t = tanhf(GELU_C * (v + GELU_A * v * v * v));
        float dt = (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_A * v * v);
        o[i] = g[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
    }
    return LT_OK;
}

/* lt_dropout: one Philox block per 4 counters; element i has counter first + i, and its mask
 * depends on (key, first + i) only. Block b (0-based from the one holding first) covers the
 * counters [4 (first / 4 + b), + 4), i.e. elements 4 b - lead .. 4 b - lead + 3. */
static lt_status cpu_dropout(lt_device *dev, lt_tensor *out, const lt_tensor *x, float p,
                             float scale, uint64_t key, uint64_t first)
{
    float *o = lt_cpu_f(out);
    const float *a = lt_cpu_f(x);
    const int64_t n = out->numel, lead = (int64_t)(first & 3u), nb = (lead + n + 3) / 4;
    const uint64_t j0 = first >> 2;
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        const uint64_t j = j0 + (uint64_t)b;
        uint32_t ctr[4] = {(uint32_t)j, (uint32_t)(j >> 32), 0, 0}, w[4];
        lt_philox4x32_10(ctr, k, w);
        for (int t = 0; t < 4; t++) {
            int64_t i = 4 * b + t - lead;
            if (i < 0 || i >= n)
                continue;
            float u = (float)(w[t] >> 8) * (1.0f / 16777216.0f);
            o[i] = u >= p ? a[i] * scale : 0.0f;
        }
    }
    return LT_OK;
}

static lt_status cpu_swiglu(lt_device *dev, lt_tensor *out, const lt_tensor *gate,
                            const lt_tensor *up)
{
    float *o = lt_cpu_f(out);
    const float *a = lt_cpu_f(gate), *u = lt_cpu_f(up);
    int64_t n = out->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i] * sigmoidf(a[i]) * u[i];
    return LT_OK;
}

static lt_status cpu_swiglu_backward(lt_device *dev, lt_tensor *dgate, lt_tensor *dup,
                                     const lt_tensor *dout, const lt_tensor *gate,
                                     const lt_tensor *up)
{
    float *dg = lt_cpu_f(dgate), *du = lt_cpu_f(dup);
    const float *g = lt_cpu_f(dout), *a = lt_cpu_f(gate), *u = lt_cpu_f(up);
    int64_t n = dgate->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i], ai = a[i], ui = u[i]; /* read all before writing: aliases allowed */
        float s = sigmoidf(ai);
        du[i] = gi * ai * s;
        dg[i] = gi * ui * s * (1.0f + ai * (1.0f - s));
    }
    return LT_OK;
}

/* ---- optimizer -------------------------------------------------------------------------- */

static lt_status cpu_adamw(lt_device *dev, lt_tensor *param, const lt_tensor *grad,
                           lt_tensor *m, lt_tensor *v, const lt_adamw_params *p,
                           float grad_scale)
{
    /* torch.optim.AdamW (single-tensor path): scalars are computed in double as Python does
     * and rounded to float where PyTorch passes them to float tensor ops */
    double lr = p->lr, b1 = p->beta1, b2 = p->beta2;
    float decay = (float)(1.0 - lr * (double)p->weight_decay);
    float b1f = p->beta1, b2f = p->beta2, omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
    double bc1 = 1.0 - pow(b1, (double)p->step), bc2 = 1.0 - pow(b2, (double)p->step);
    float neg_step = (float)(-(lr / bc1));
    float bc2_sqrt = (float)sqrt(bc2);
    float eps = p->eps;
    const float *g = lt_cpu_f(grad);
    float *mm = lt_cpu_f(m), *vv = lt_cpu_f(v);
    void *w = lt_cpu_data(param);
    lt_dtype wd = param->dtype;
    int64_t n = param->numel;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = grad_scale == 1.0f ? g[i] : g[i] * grad_scale;
        float pi = lt_cpu_load(w, wd, i) * decay;
        float mi = mm[i] * b1f + omb1 * gi;
        float vi = vv[i] * b2f + omb2 * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        pi = pi + neg_step * mi / denom;
        lt_cpu_store(w, wd, i, pi);
    }
    return LT_OK;
}

#define NORM_CHUNK 65536 /* elements per partial sum: fixed, so bits never depend on threads */

static lt_status cpu_grad_norm(lt_device *dev, lt_tensor *out, lt_tensor *const *grads,
                               int n_grads)
{
    int64_t n_chunks = 0;
    for (int i = 0; i < n_grads; i++)
        n_chunks += (grads[i]->numel + NORM_CHUNK - 1) / NORM_CHUNK;
    double *part = malloc((size_t)n_chunks * sizeof(double));
    if (!part)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_grad_norm: out of host memory");
    int nt = lt_cpu_nt(dev);
    int64_t base = 0;
    for (int i = 0; i < n_grads; i++) {
        const float *g = lt_cpu_f(grads[i]);
        int64_t n = grads[i]->numel, nc = (n + NORM_CHUNK - 1) / NORM_CHUNK;
#pragma omp parallel for schedule(static) num_threads(nt) if (nc > 1)
        for (int64_t c = 0; c < nc; c++) {
            int64_t e = (c + 1) * NORM_CHUNK < n ? (c + 1) * NORM_CHUNK : n;
            double s = 0.0;
            for (int64_t j = c * NORM_CHUNK; j < e; j++)
                s += (double)g[j] * (double)g[j];
            part[base + c] = s;
        }
        base += nc;
    }
    double total = 0.0;
    for (int64_t c = 0; c < n_chunks; c++)
        total += part[c];
    free(part);
    lt_cpu_f(out)[0] = (float)sqrt(total);
    return LT_OK;
}

static lt_status cpu_clip_grad_norm(lt_device *dev, lt_tensor *const *grads, int n_grads,
                                    const lt_tensor *norm, float max_norm)
{
    /* as torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1 */
    float coef = max_norm / (lt_cpu_f(norm)[0] + 1e-6f);
    if (!(coef < 1.0f)) /* clamped to 1 (a NaN norm also leaves gradients alone) */
        return LT_OK;
    for (int i = 0; i < n_grads; i++)
        cpu_scale(dev, grads[i], coef);
    return LT_OK;
}

/* ---- the table -------------------------------------------------------------------------- */

static const lt_backend cpu_backend = {
    .name = "cpu",
    .profiles_itself = false,
    .close = cpu_close,
    .sync = cpu_sync,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_upload,
    .download = cpu_download,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .matmul = lt_cpu_matmul,
    .embedding = lt_cpu_embedding,
    .embedding_backward = lt_cpu_embedding_backward,
    .rmsnorm = lt_cpu_rmsnorm,
    .rmsnorm_backward = lt_cpu_rmsnorm_backward,
    .layernorm = lt_cpu_layernorm,
    .layernorm_backward = lt_cpu_layernorm_backward,
    .rope = lt_cpu_rope,
    .attention = lt_cpu_attention,
    .attention_backward = lt_cpu_attention_backward,
    .silu = cpu_silu,
    .silu_backward = cpu_silu_backward,
    .gelu = cpu_gelu,
    .gelu_backward = cpu_gelu_backward,
    .swiglu = cpu_swiglu,
    .dropout = cpu_dropout,
    .swiglu_backward = cpu_swiglu_backward,
    .cross_entropy = lt_cpu_cross_entropy,
    .logprob_gather = lt_cpu_logprob_gather,
    .logprob_gather_backward = lt_cpu_logprob_gather_backward,
    .add = cpu_add,
    .scale = cpu_scale,
    .axpy = cpu_axpy,
    .bias_add = cpu_bias_add,
    .bias_backward = cpu_bias_backward,
    .adamw = cpu_adamw,
    .grad_norm = cpu_grad_norm,
    .clip_grad_norm = cpu_clip_grad_norm,
    .matmul_nf4 = lt_cpu_matmul_nf4,
};

lt_status lt_cpu_backend_init(lt_device *dev, int n_threads, char *err, size_t errlen)
{
    if (n_threads <= 0) {
        const char *env = getenv("LATHE_THREADS");
        long n = 0;
        if (env && *env) {
            char *end = NULL;
            n = strtol(env, &end, 10);
            if (*end || n < 0 || n > 4096) {
                if (err && errlen)
                    snprintf(err, errlen, "LATHE_THREADS='%s': expected a number 0..4096", env);
                return LT_ERR_ARG;
            }
        }
        n_threads = n > 0 ? (int)n : usable_cores();
    }
    dev->be = &cpu_backend;
    dev->impl = NULL;
    dev->kind = LT_DEVICE_CPU;
    dev->n_threads = n_threads;
    omp_set_num_threads(n_threads);
    openblas_set_num_threads(n_threads);
    lt_cpu_info info;
    lt_cpu_info_get(&info);
    snprintf(dev->name, sizeof dev->name, "cpu (%.160s, %d thread%s)", info.model, n_threads,
             n_threads == 1 ? "" : "s");
    return LT_OK;
}
