/*
 * test_attention_cpu.c - the CPU backend's causal grouped-query attention: forward and
 * log-sum-exp against a float64 formula, dq/dk/dv against finite differences, on grouped
 * heads (H = 6, Hkv = 2), head dims 6 and 10, packed segments, KV-cache offsets with n_kv,
 * F16/BF16 keys and values, T up to 257, lengths that are not a multiple of the 64-query
 * tile, head dims 7 and 33; identical bits on a second backward; the one-pass backward (many
 * (batch, kv head) pairs per thread) and the two-pass backward (few) agree, on 1 and 8 threads;
 * sliding windows (a query sees the window keys ending at itself), with and without a cache
 * offset, packed segments and tiles that start past key 0.
 */
#include "ops_ref.h"

#include <stdio.h>

static lt_device *dev, *dev1, *dev8; /* default, 1 and 8 threads */

typedef struct acase {
    int64_t B, Tq, Tk, H, Hkv, hd, q_offset, n_kv;
    int n_seg; /* 0 = no segment ids, else segments per sequence */
    lt_dtype kv;
    int64_t window; /* sliding window, 0 = none */
} acase;

typedef struct actx {
    const acase *c;
    double *q, *k, *v, *dout;
    int32_t *seg;
} actx;

/* out [B, Tq, H, hd] and lse [B, H, Tq] in double */
static void attn_ref(const actx *x, double *out, double *lse)
{
    const acase *c = x->c;
    int64_t nkv = c->n_kv ? c->n_kv : c->Tk, hd = c->hd;
    double scale = 1.0 / sqrt((double)hd);
    double *s = malloc((size_t)c->Tk * sizeof(double));
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->H; h++)
            for (int64_t i = 0; i < c->Tq; i++) {
                int64_t kh = h / (c->H / c->Hkv), lim = c->q_offset + i + 1;
                lim = lim < nkv ? lim : nkv;
                const double *q = x->q + ((b * c->Tq + i) * c->H + h) * hd;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < lim; j++) {
                    s[j] = -INFINITY;
                    if (x->seg && x->seg[b * c->Tq + i] != x->seg[b * c->Tk + j])
                        continue;
                    if (c->window > 0 && j <= c->q_offset + i - c->window)
                        continue;
                    double d = 0;
                    for (int64_t e = 0; e < hd; e++)
                        d += q[e] * x->k[((b * c->Tk + j) * c->Hkv + kh) * hd + e];
                    s[j] = d * scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                double *o = out + ((b * c->Tq + i) * c->H + h) * hd;
                for (int64_t e = 0; e < hd; e++)
                    o[e] = 0;
                for (int64_t j = 0; j < lim; j++)
                    sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                for (int64_t j = 0; j < lim; j++) {
                    if (s[j] == -INFINITY)
                        continue;
                    double p = exp(s[j] - mx) / sum;
                    for (int64_t e = 0; e < hd; e++)
                        o[e] += p * x->v[((b * c->Tk + j) * c->Hkv + kh) * hd + e];
                }
                if (lse)
                    lse[(b * c->H + h) * c->Tq + i] = mx + log(sum);
            }
    free(s);
}

static double attn_obj(void *ctx)
{
    actx *x = ctx;
    int64_t n = x->c->B * x->c->Tq * x->c->H * x->c->hd;
    double *o = malloc((size_t)n * sizeof(double)), L = 0;
    attn_ref(x, o, NULL);
    for (int64_t i = 0; i < n; i++)
        L += x->dout[i] * o[i];
    free(o);
    return L;
}

/* dq, dk and dv of case x computed on device d (F32 copies of the same inputs), as doubles
 * into gq, gk, gv (caller frees); false if an op failed. */
static bool attn_grads(lt_device *d, const actx *x, double **gq, double **gk, double **gv)
{
    const acase *c = x->c;
    int64_t sq[4] = {c->B, c->Tq, c->H, c->hd}, sk[4] = {c->B, c->Tk, c->Hkv, c->hd};
    int64_t sl[3] = {c->B, c->H, c->Tq}, ss[2] = {c->B, c->Tq};
    lt_tensor *seg = x->seg ? ref_ids(d, x->seg, 2, ss) : NULL;
    lt_tensor *t[9] = {ref_tensor(d, LT_F32, x->q, 4, sq), ref_tensor(d, c->kv, x->k, 4, sk),
                       ref_tensor(d, c->kv, x->v, 4, sk), ref_tensor(d, LT_F32, x->dout, 4, sq),
                       ref_tensor(d, LT_F32, NULL, 4, sq), ref_tensor(d, LT_F32, NULL, 3, sl),
                       ref_tensor(d, LT_F32, NULL, 4, sq), ref_tensor(d, LT_F32, NULL, 4, sk),
                       ref_tensor(d, LT_F32, NULL, 4, sk)};
    lt_attn_params p = {1.0f / sqrtf((float)c->hd), c->q_offset, c->n_kv, c->window};
    bool ok = lt_attention(t[4], t[5], t[0], t[1], t[2], seg, &p) == LT_OK &&
              lt_attention_backward(t[6], t[7], t[8], t[3], t[0], t[1], t[2], t[4], t[5], seg,
                                    &p) == LT_OK;
    *gq = ok ? ref_get(t[6]) : NULL;
    *gk = ok ? ref_get(t[7]) : NULL;
    *gv = ok ? ref_get(t[8]) : NULL;
    for (int i = 0; i < 9; i++)
        lt_tensor_free(t[i]);
    lt_tensor_free(seg);
    return ok;
}

/* The same gradients on 1 and on 8 threads (the backward picks its one-pass or two-pass form
 * by (batch, kv head) pairs per thread): equal to rounding. */
static void check_threads(const char *op, const actx *x, const double *gq, const double *gk,
                          const double *gv)
{
    const acase *c = x->c;
    int64_t nq = c->B * c->Tq * c->H * c->hd, nk = c->B * c->Tk * c->Hkv * c->hd;
    lt_device *devs[2] = {dev1, dev8};
    const char *names[2] = {"1 thread", "8 threads"};
    for (int i = 0; i < 2; i++) {
        double *q = NULL, *k = NULL, *v = NULL;
        char what[32];
        snprintf(what, sizeof what, "%s d/dq,dk,dv", names[i]);
        CHECK(attn_grads(devs[i], x, &q, &k, &v), "%s: %s: %s", op, names[i],
              lt_device_last_error(devs[i]));
        if (q) {
            double e = ref_relerr(q, gq, nq), ek = ref_relerr(k, gk, nk);
            double ev = ref_relerr(v, gv, nk);
            e = e > ek ? e : ek;
            ref_report(op, what, e > ev ? e : ev, FWD_TOL);
        }
        free(q), free(k), free(v);
    }
}

static void run_case(const acase *c)
{
    char op[96];
    snprintf(op, sizeof op, "attention B%lld Tq%lld Tk%lld H%lld/%lld hd%lld off%lld win%lld%s%s",
             (long long)c->B, (long long)c->Tq, (long long)c->Tk, (long long)c->H,
             (long long)c->Hkv, (long long)c->hd, (long long)c->q_offset, (long long)c->window,
             c->n_seg ? " seg" : "", c->kv == LT_F32 ? "" : (c->kv == LT_F16 ? " f16" : " bf16"));
    int64_t sq[4] = {c->B, c->Tq, c->H, c->hd}, sk[4] = {c->B, c->Tk, c->Hkv, c->hd};
    int64_t sl[3] = {c->B, c->H, c->Tq}, ss[2] = {c->B, c->Tq};
    int64_t nq = c->B * c->Tq * c->H * c->hd, nk = c->B * c->Tk * c->Hkv * c->hd;
    actx x = {c, ref_randv(nq, 1.5), ref_randv(nk, 1.5), ref_randv(nk, 1.0), ref_randv(nq, 1.0),
              NULL};
    for (int64_t i = 0; i < nk; i++) {
        if (c->kv == LT_F16) {
            x.k[i] = lt_f16_to_f32(lt_f32_to_f16((float)x.k[i]));
            x.v[i] = lt_f16_to_f32(lt_f32_to_f16((float)x.v[i]));
        } else if (c->kv == LT_BF16) {
            x.k[i] = lt_bf16_to_f32(lt_f32_to_bf16((float)x.k[i]));
            x.v[i] = lt_bf16_to_f32(lt_f32_to_bf16((float)x.v[i]));
        }
    }
    lt_tensor *seg = NULL;
    if (c->n_seg) {
        x.seg = malloc((size_t)(c->B * c->Tq) * sizeof(int32_t));
        for (int64_t b = 0; b < c->B; b++)
            for (int64_t i = 0; i < c->Tq; i++) /* uneven segment boundaries */
                x.seg[b * c->Tq + i] = (int32_t)((i * c->n_seg + b) / (c->Tq + 1));
        seg = ref_ids(dev, x.seg, 2, ss);
    }
    lt_tensor *q = ref_tensor(dev, LT_F32, x.q, 4, sq), *k = ref_tensor(dev, c->kv, x.k, 4, sk);
    lt_tensor *v = ref_tensor(dev, c->kv, x.v, 4, sk), *g = ref_tensor(dev, LT_F32, x.dout, 4, sq);
    lt_tensor *o = ref_tensor(dev, LT_F32, NULL, 4, sq), *lse = ref_tensor(dev, LT_F32, NULL, 3, sl);
    lt_tensor *dq = ref_tensor(dev, LT_F32, NULL, 4, sq), *dk = ref_tensor(dev, LT_F32, NULL, 4, sk);
    lt_tensor *dv = ref_tensor(dev, LT_F32, NULL, 4, sk), *dk2 = ref_tensor(dev, LT_F32, NULL, 4, sk);
    lt_tensor *dq2 = ref_tensor(dev, LT_F32, NULL, 4, sq), *dv2 = ref_tensor(dev, LT_F32, NULL, 4, sk);
    lt_attn_params p = {1.0f / sqrtf((float)c->hd), c->q_offset, c->n_kv, c->window};
    CHECK(lt_attention(o, lse, q, k, v, seg, &p) == LT_OK, "%s: %s", op,
          lt_device_last_error(dev));
    CHECK(lt_attention_backward(dq, dk, dv, g, q, k, v, o, lse, seg, &p) == LT_OK, "%s: %s", op,
          lt_device_last_error(dev));
    CHECK(lt_attention_backward(dq2, dk2, dv2, g, q, k, v, o, lse, seg, &p) == LT_OK, "%s: %s",
          op, lt_device_last_error(dev));
    CHECK(ref_same_bits(dq, dq2) && ref_same_bits(dk, dk2) && ref_same_bits(dv, dv2),
          "%s: second backward differs", op);
    double *ro = malloc((size_t)nq * sizeof(double)), *rl = malloc((size_t)(c->B * c->H * c->Tq) * sizeof(double));
    attn_ref(&x, ro, rl);
    double *go = ref_get(o), *gl = ref_get(lse), *gq = ref_get(dq), *gk = ref_get(dk), *gv = ref_get(dv);
    ref_report(op, "forward", ref_relerr(go, ro, nq), FWD_TOL);
    ref_report(op, "lse", ref_relerr(gl, rl, c->B * c->H * c->Tq), FWD_TOL);
    ref_report(op, "d/dq", ref_fd(attn_obj, &x, x.q, nq, gq), BWD_TOL);
    ref_report(op, "d/dk", ref_fd(attn_obj, &x, x.k, nk, gk), BWD_TOL);
    ref_report(op, "d/dv", ref_fd(attn_obj, &x, x.v, nk, gv), BWD_TOL);
    check_threads(op, &x, gq, gk, gv);
    free(ro), free(rl), free(go), free(gl), free(gq), free(gk), free(gv);
    free(x.q), free(x.k), free(x.v), free(x.dout), free(x.seg);
    lt_tensor *all[12] = {q, k, v, g, o, lse, dq, dk, dv, dq2, dk2, dv2};
    for (int i = 0; i < 12; i++)
        lt_tensor_free(all[i]);
    lt_tensor_free(seg);
}

int main(void)
{
    char err[256];
    dev = lt_device_open("cpu", 0, err, sizeof err);
    CHECK(dev != NULL, "open cpu: %s", err);
    dev1 = lt_device_open("cpu", 1, err, sizeof err);
    CHECK(dev1 != NULL, "open cpu, 1 thread: %s", err);
    dev8 = lt_device_open("cpu", 8, err, sizeof err);
    CHECK(dev8 != NULL, "open cpu, 8 threads: %s", err);
    if (!dev || !dev1 || !dev8)
        return test_summary();
    acase cases[] = {
        {1, 1, 1, 1, 1, 6, 0, 0, 0, LT_F32, 0},
        {1, 7, 7, 6, 2, 6, 0, 0, 0, LT_F32, 0},
        {2, 33, 33, 6, 2, 10, 0, 0, 3, LT_F32, 0}, /* packed: 3 segments */
        {1, 3, 10, 4, 2, 6, 5, 8, 0, LT_F16, 0},   /* KV cache: offset 5, 8 valid keys */
        {2, 1, 9, 6, 2, 10, 8, 0, 0, LT_BF16, 0},  /* one decoding step */
        {1, 33, 40, 3, 3, 10, 7, 0, 0, LT_F32, 0},
        {1, 257, 257, 2, 1, 6, 0, 0, 2, LT_F32, 0}, /* long, 2 segments */
        {2, 33, 33, 6, 2, 64, 0, 0, 0, LT_BF16, 0},
        {1, 130, 130, 6, 2, 7, 0, 0, 3, LT_F32, 0},  /* 2 full tiles and 2 queries, packed */
        {3, 100, 100, 4, 2, 33, 0, 0, 2, LT_F32, 0}, /* one-pass backward on the default threads */
        {2, 70, 75, 8, 2, 33, 5, 0, 0, LT_F16, 0},
        {1, 129, 140, 2, 2, 7, 11, 137, 0, LT_F32, 0},
        {1, 9, 9, 2, 1, 6, 0, 0, 0, LT_F32, 1},       /* window 1: each query sees itself */
        {2, 150, 150, 4, 2, 6, 0, 0, 0, LT_F32, 37},  /* window: tiles start past key 0 */
        {3, 100, 100, 4, 2, 10, 0, 0, 2, LT_F32, 20}, /* window and packing, one-pass */
        {1, 70, 90, 2, 1, 6, 20, 0, 0, LT_F16, 30},   /* window with a cache offset */
        {2, 1, 60, 4, 2, 8, 59, 0, 0, LT_BF16, 16},   /* one decoding step in a window */
        {1, 200, 200, 2, 2, 7, 0, 0, 0, LT_F32, 64},  /* window a tile wide */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
    lt_device_close(dev8);
    lt_device_close(dev1);
    lt_device_close(dev);
    return test_summary();
}
