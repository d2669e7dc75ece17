/*
 * test_ops_cpu.c - the CPU backend's row-wise and elementwise ops, forward against float64
 * formulas and backward against central finite differences of those formulas: SiLU, GELU,
 * SwiGLU, RMSNorm, LayerNorm, rotary embeddings, embedding, cross-entropy, log-prob gather,
 * bias, add/scale/axpy, gradient norm and clipping. Awkward sizes (1, 3, 7, 33, 257).
 * Prints each op's relative error. (Matmul and attention have their own programs.)
 */
#include "ops_ref.h"

#include <stdio.h>

static lt_device *dev;

/* ---- float64 references ------------------------------------------------------------------ */

typedef struct rowctx {
    int kind; /* 0 silu, 1 gelu, 2 swiglu, 3 rmsnorm, 4 layernorm, 5 rope, 6 ce, 7 logprob */
    int64_t N, D, H;
    double *x, *x2, *w, *b, *dout, eps, mscale;
    const float *inv; /* rope: inverse frequency per pair */
    const int32_t *ids;
    int ignore;
} rowctx;

static double silu_d(double x) { return x / (1 + exp(-x)); }
static double gelu_d(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* out[N*D] = f(ctx) */
static void row_forward(const rowctx *c, double *out)
{
    int64_t N = c->N, D = c->D;
    for (int64_t r = 0; r < N; r++) {
        const double *x = c->x + r * D;
        double *o = out + r * D;
        if (c->kind <= 2) {
            for (int64_t j = 0; j < D; j++)
                o[j] = c->kind == 0   ? silu_d(x[j])
                       : c->kind == 1 ? gelu_d(x[j])
                                      : silu_d(x[j]) * c->x2[r * D + j];
        } else if (c->kind == 3) {
            double ss = 0;
            for (int64_t j = 0; j < D; j++)
                ss += x[j] * x[j];
            double s = 1 / sqrt(ss / D + c->eps);
            for (int64_t j = 0; j < D; j++)
                o[j] = x[j] * s * c->w[j];
        } else if (c->kind == 4) {
            double mu = 0, var = 0;
            for (int64_t j = 0; j < D; j++)
                mu += x[j] / D;
            for (int64_t j = 0; j < D; j++)
                var += (x[j] - mu) * (x[j] - mu) / D;
            for (int64_t j = 0; j < D; j++)
                o[j] = (x[j] - mu) / sqrt(var + c->eps) * c->w[j] + c->b[j];
        } else if (c->kind == 5) { /* rope: D = H * hd per token */
            int64_t hd = D / c->H, half = hd / 2;
            for (int64_t h = 0; h < c->H; h++)
                for (int64_t i = 0; i < half; i++) {
                    double a = (double)c->ids[r] * (double)c->inv[i];
                    double x1 = x[h * hd + i], x2 = x[h * hd + i + half];
                    double co = c->mscale * cos(a), si = c->mscale * sin(a);
                    o[h * hd + i] = x1 * co - x2 * si;
                    o[h * hd + i + half] = x2 * co + x1 * si;
                }
        } else { /* 6, 7: log-softmax of the row into o */
            double mx = x[0], s = 0;
            for (int64_t j = 1; j < D; j++)
                mx = x[j] > mx ? x[j] : mx;
            for (int64_t j = 0; j < D; j++)
                s += exp(x[j] - mx);
            for (int64_t j = 0; j < D; j++)
                o[j] = x[j] - mx - log(s);
        }
    }
}

/* Cross-entropy mean loss (kind 6) or sum(dout * logprob) (kind 7), else sum(dout * f). */
static double row_obj(void *ctx)
{
    rowctx *c = ctx;
    int64_t n = c->N * c->D;
    double *o = malloc((size_t)n * sizeof(double)), L = 0;
    row_forward(c, o);
    if (c->kind == 6) {
        int64_t cnt = 0;
        for (int64_t r = 0; r < c->N; r++)
            if (c->ids[r] != c->ignore) {
                L -= o[r * c->D + c->ids[r]];
                cnt++;
            }
        L = cnt ? L / (double)cnt : 0;
    } else if (c->kind == 7) {
        for (int64_t r = 0; r < c->N; r++)
            L += c->dout[r] * o[r * c->D + c->ids[r]];
    } else {
        for (int64_t i = 0; i < n; i++)
            L += c->dout[i] * o[i];
    }
    free(o);
    return L;
}

/* ---- elementwise and norms ---------------------------------------------------------------- */

static void test_activation(int kind, int64_t N, int64_t D)
{
    static const char *names[3] = {"silu", "gelu", "swiglu"};
    char op[64];
    snprintf(op, sizeof op, "%s [%lld, %lld]", names[kind], (long long)N, (long long)D);
    int64_t s[2] = {N, D}, n = N * D;
    rowctx c = {.kind = kind, .N = N, .D = D, .x = ref_randv(n, 4.0), .x2 = ref_randv(n, 2.0),
                .dout = ref_randv(n, 1.0)};
    lt_tensor *x = ref_tensor(dev, LT_F32, c.x, 2, s), *u = ref_tensor(dev, LT_F32, c.x2, 2, s);
    lt_tensor *g = ref_tensor(dev, LT_F32, c.dout, 2, s), *o = ref_tensor(dev, LT_F32, NULL, 2, s);
    lt_tensor *dx = ref_tensor(dev, LT_F32, NULL, 2, s), *du = ref_tensor(dev, LT_F32, NULL, 2, s);
    lt_status st = kind == 0 ? lt_silu(o, x) : kind == 1 ? lt_gelu(o, x) : lt_swiglu(o, x, u);
    CHECK(st == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    st = kind == 0   ? lt_silu_backward(dx, g, x)
         : kind == 1 ? lt_gelu_backward(dx, g, x)
                     : lt_swiglu_backward(dx, du, g, x, u);
    CHECK(st == LT_OK, "%s backward: %s", op, lt_device_last_error(dev));
    double *ref = malloc((size_t)n * sizeof(double)), *got = ref_get(o), *gx = ref_get(dx);
    row_forward(&c, ref);
    ref_report(op, "forward", ref_relerr(got, ref, n), FWD_TOL);
    ref_report(op, "d/dx", ref_fd(row_obj, &c, c.x, n, gx), BWD_TOL);
    if (kind == 2) {
        double *gu = ref_get(du);
        ref_report(op, "d/dup", ref_fd(row_obj, &c, c.x2, n, gu), BWD_TOL);
        free(gu);
        /* in place: out aliases gate */
        CHECK(lt_swiglu(x, x, u) == LT_OK, "swiglu in place: %s", lt_device_last_error(dev));
        double *inpl = ref_get(x);
        ref_report(op, "in place", ref_relerr(inpl, ref, n), FWD_TOL);
        free(inpl);
    }
    free(ref), free(got), free(gx), free(c.x), free(c.x2), free(c.dout);
    lt_tensor_free(x), lt_tensor_free(u), lt_tensor_free(g), lt_tensor_free(o);
    lt_tensor_free(dx), lt_tensor_free(du);
}

static void test_norm(bool layer, int64_t N, int64_t D, lt_dtype wdt)
{
    char op[64];
    snprintf(op, sizeof op, "%s [%lld, %lld] w %s", layer ? "layernorm" : "rmsnorm",
             (long long)N, (long long)D, lt_dtype_name(wdt));
    int64_t s[2] = {N, D}, n = N * D;
    rowctx c = {.kind = layer ? 4 : 3, .N = N, .D = D, .x = ref_randv(n, 2.0),
                .w = ref_randv(D, 1.5), .b = ref_randv(D, 1.0), .dout = ref_randv(n, 1.0),
                .eps = 1e-5};
    for (int64_t j = 0; j < D; j++) { /* weights as the device stores them */
        c.w[j] = wdt == LT_F16 ? lt_f16_to_f32(lt_f32_to_f16((float)c.w[j]))
                 : wdt == LT_BF16 ? lt_bf16_to_f32(lt_f32_to_bf16((float)c.w[j]))
                                  : c.w[j];
        c.b[j] = wdt == LT_F16 ? lt_f16_to_f32(lt_f32_to_f16((float)c.b[j]))
                 : wdt == LT_BF16 ? lt_bf16_to_f32(lt_f32_to_bf16((float)c.b[j]))
                                  : c.b[j];
    }
    int64_t sd[1] = {D}, sn[1] = {N};
    lt_tensor *x = ref_tensor(dev, LT_F32, c.x, 2, s), *w = ref_tensor(dev, wdt, c.w, 1, sd);
    lt_tensor *b = ref_tensor(dev, wdt, c.b, 1, sd), *g = ref_tensor(dev, LT_F32, c.dout, 2, s);
    lt_tensor *o = ref_tensor(dev, LT_F32, NULL, 2, s), *dx = ref_tensor(dev, LT_F32, NULL, 2, s);
    lt_tensor *dw = ref_tensor(dev, LT_F32, NULL, 1, sd), *db = ref_tensor(dev, LT_F32, NULL, 1, sd);
    lt_tensor *mean = ref_tensor(dev, LT_F32, NULL, 1, sn), *rstd = ref_tensor(dev, LT_F32, NULL, 1, sn);
    lt_status st = layer ? lt_layernorm(o, mean, rstd, x, w, b, (float)c.eps)
                         : lt_rmsnorm(o, rstd, x, w, (float)c.eps);
    CHECK(st == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    st = layer ? lt_layernorm_backward(dx, dw, db, g, x, w, mean, rstd)
               : lt_rmsnorm_backward(dx, dw, g, x, w, rstd);
    CHECK(st == LT_OK, "%s backward: %s", op, lt_device_last_error(dev));
    double *ref = malloc((size_t)n * sizeof(double)), *got = ref_get(o);
    double *gx = ref_get(dx), *gw = ref_get(dw), *gb = ref_get(db);
    row_forward(&c, ref);
    ref_report(op, "forward", ref_relerr(got, ref, n), FWD_TOL);
    ref_report(op, "d/dx", ref_fd(row_obj, &c, c.x, n, gx), BWD_TOL);
    ref_report(op, "d/dw", ref_fd(row_obj, &c, c.w, D, gw), BWD_TOL);
    if (layer)
        ref_report(op, "d/db", ref_fd(row_obj, &c, c.b, D, gb), BWD_TOL);
    free(ref), free(got), free(gx), free(gw), free(gb);
    free(c.x), free(c.w), free(c.b), free(c.dout);
    lt_tensor_free(x), lt_tensor_free(w), lt_tensor_free(b), lt_tensor_free(g);
    lt_tensor_free(o), lt_tensor_free(dx), lt_tensor_free(dw), lt_tensor_free(db);
    lt_tensor_free(mean), lt_tensor_free(rstd);
}

/* scaled: inverse frequencies as a scaled model rescales them (some divided by 8, some
 * blended) and cos/sin multiplied by mscale, as YaRN does */
static void test_rope(int64_t N, int64_t H, int64_t hd, int pos0, bool scaled)
{
    char op[80];
    snprintf(op, sizeof op, "rope [%lld, %lld, %lld] pos0 %d%s", (long long)N, (long long)H,
             (long long)hd, pos0, scaled ? " scaled" : "");
    int64_t s[3] = {N, H, hd}, n = N * H * hd, sn[1] = {N}, si[1] = {hd / 2};
    int32_t *pos = malloc((size_t)N * sizeof(int32_t));
    float *inv = malloc((size_t)(hd / 2) * sizeof(float));
    for (int64_t i = 0; i < N; i++) /* positions restart like packed examples */
        pos[i] = pos0 + (int32_t)(i % 5);
    lt_rope_inv_freq(inv, hd, 10000.0f);
    for (int64_t i = 0; scaled && i < hd / 2; i++)
        inv[i] *= i < hd / 6 ? 1.0f : i < hd / 3 ? 0.4f : 0.125f;
    float ms = scaled ? 1.2079442f : 1.0f;
    rowctx c = {.kind = 5, .N = N, .D = H * hd, .H = H, .x = ref_randv(n, 1.0),
                .dout = ref_randv(n, 1.0), .mscale = ms, .inv = inv, .ids = pos};
    lt_tensor *x = ref_tensor(dev, LT_F32, c.x, 3, s), *g = ref_tensor(dev, LT_F32, c.dout, 3, s);
    lt_tensor *p = ref_ids(dev, pos, 1, sn), *it = lt_tensor_new(dev, LT_F32, 1, si);
    CHECK(it && lt_tensor_upload(it, inv, (size_t)(hd / 2) * sizeof(float)) == LT_OK,
          "%s: inv_freq upload", op);
    CHECK(lt_rope(x, p, it, ms) == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    CHECK(lt_rope_backward(g, p, it, ms) == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    double *ref = malloc((size_t)n * sizeof(double)), *got = ref_get(x), *gx = ref_get(g);
    row_forward(&c, ref);
    ref_report(op, "forward", ref_relerr(got, ref, n), FWD_TOL);
    ref_report(op, "d/dx", ref_fd(row_obj, &c, c.x, n, gx), BWD_TOL);
    free(ref), free(got), free(gx), free(c.x), free(c.dout), free(pos), free(inv);
    lt_tensor_free(x), lt_tensor_free(g), lt_tensor_free(p), lt_tensor_free(it);
}

/* ---- embedding, cross-entropy, log-prob --------------------------------------------------- */

static void test_embedding(int64_t V, int64_t D, int64_t N, lt_dtype dt)
{
    char op[64];
    snprintf(op, sizeof op, "embedding V %lld D %lld N %lld %s", (long long)V, (long long)D,
             (long long)N, lt_dtype_name(dt));
    int64_t st[2] = {V, D}, so[2] = {N, D}, sn[1] = {N};
    double *tab = ref_randv(V * D, 1.0), *dout = ref_randv(N * D, 1.0);
    for (int64_t i = 0; i < V * D; i++)
        tab[i] = dt == LT_F16 ? lt_f16_to_f32(lt_f32_to_f16((float)tab[i]))
                 : dt == LT_BF16 ? lt_bf16_to_f32(lt_f32_to_bf16((float)tab[i]))
                                 : tab[i];
    int32_t *ids = malloc((size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++) /* many repeats of a few rows */
        ids[i] = (int32_t)(i % 3 == 0 ? 1 % V : (int64_t)(ref_next() % (uint64_t)V));
    lt_tensor *t = ref_tensor(dev, dt, tab, 2, st), *o = ref_tensor(dev, LT_F32, NULL, 2, so);
    lt_tensor *g = ref_tensor(dev, LT_F32, dout, 2, so), *it = ref_ids(dev, ids, 1, sn);
    lt_tensor *dt1 = ref_tensor(dev, LT_F32, NULL, 2, st), *dt2 = ref_tensor(dev, LT_F32, NULL, 2, st);
    CHECK(lt_embedding(o, t, it) == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    CHECK(lt_embedding_backward(dt1, g, it) == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    CHECK(lt_embedding_backward(dt2, g, it) == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    double *ref = ref_zeros(N * D), *dref = ref_zeros(V * D);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < D; j++) {
            ref[i * D + j] = tab[ids[i] * D + j];
            dref[ids[i] * D + j] += dout[i * D + j];
        }
    double *got = ref_get(o), *dg = ref_get(dt1);
    ref_report(op, "forward", ref_relerr(got, ref, N * D), 0);
    ref_report(op, "d/dtable", ref_relerr(dg, dref, V * D), 1e-6);
    CHECK(ref_same_bits(dt1, dt2), "%s: backward twice gives different bits", op);
    free(tab), free(dout), free(ids), free(ref), free(dref), free(got), free(dg);
    lt_tensor_free(t), lt_tensor_free(o), lt_tensor_free(g), lt_tensor_free(it);
    lt_tensor_free(dt1), lt_tensor_free(dt2);
}

static void test_cross_entropy(int64_t N, int64_t V, bool in_place)
{
    char op[64];
    snprintf(op, sizeof op, "cross_entropy [%lld, %lld]%s", (long long)N, (long long)V,
             in_place ? " in place" : "");
    int64_t s[2] = {N, V}, sn[1] = {N}, s1[1] = {1};
    int32_t *lab = malloc((size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++)
        lab[i] = (N > 1 && i % 3 == 1) ? -100 : (int32_t)(ref_next() % (uint64_t)V);
    rowctx c = {.kind = 6, .N = N, .D = V, .x = ref_randv(N * V, 6.0), .ids = lab,
                .ignore = -100};
    lt_tensor *x = ref_tensor(dev, LT_F32, c.x, 2, s), *l = ref_ids(dev, lab, 1, sn);
    lt_tensor *loss = ref_tensor(dev, LT_F32, NULL, 1, s1), *rl = ref_tensor(dev, LT_F32, NULL, 1, sn);
    lt_tensor *dl = in_place ? x : ref_tensor(dev, LT_F32, NULL, 2, s);
    CHECK(lt_cross_entropy(loss, rl, dl, x, l, -100, 1.0f, 0) == LT_OK, "%s: %s", op,
          lt_device_last_error(dev));
    double *gl = ref_get(loss), *gd = ref_get(dl), ref = row_obj(&c);
    ref_report(op, "loss", fabs(gl[0] - ref) / (fabs(ref) > 1e-9 ? fabs(ref) : 1e-9), FWD_TOL);
    ref_report(op, "d/dlogits", ref_fd(row_obj, &c, c.x, N * V, gd), BWD_TOL);
    free(gl), free(gd), free(c.x), free(lab);
    if (!in_place)
        lt_tensor_free(dl);
    lt_tensor_free(x), lt_tensor_free(l), lt_tensor_free(loss), lt_tensor_free(rl);
}

static void test_logprob(int64_t N, int64_t V)
{
    char op[64];
    snprintf(op, sizeof op, "logprob_gather [%lld, %lld]", (long long)N, (long long)V);
    int64_t s[2] = {N, V}, sn[1] = {N};
    int32_t *ids = malloc((size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++)
        ids[i] = (int32_t)(ref_next() % (uint64_t)V);
    rowctx c = {.kind = 7, .N = N, .D = V, .x = ref_randv(N * V, 4.0), .ids = ids,
                .dout = ref_randv(N, 1.0)};
    lt_tensor *x = ref_tensor(dev, LT_F32, c.x, 2, s), *it = ref_ids(dev, ids, 1, sn);
    lt_tensor *o = ref_tensor(dev, LT_F32, NULL, 1, sn), *g = ref_tensor(dev, LT_F32, c.dout, 1, sn);
    lt_tensor *dl = ref_tensor(dev, LT_F32, NULL, 2, s);
    CHECK(lt_logprob_gather(o, x, it) == LT_OK, "%s: %s", op, lt_device_last_error(dev));
    CHECK(lt_logprob_gather_backward(dl, g, x, it) == LT_OK, "%s: %s", op,
          lt_device_last_error(dev));
    double *lp = malloc((size_t)(N * V) * sizeof(double)), *ref = ref_zeros(N);
    row_forward(&c, lp);
    for (int64_t i = 0; i < N; i++)
        ref[i] = lp[i * V + ids[i]];
    double *got = ref_get(o), *gd = ref_get(dl);
    ref_report(op, "forward", ref_relerr(got, ref, N), FWD_TOL);
    ref_report(op, "d/dlogits", ref_fd(row_obj, &c, c.x, N * V, gd), BWD_TOL);
    free(lp), free(ref), free(got), free(gd), free(c.x), free(c.dout), free(ids);
    lt_tensor_free(x), lt_tensor_free(it), lt_tensor_free(o), lt_tensor_free(g);
    lt_tensor_free(dl);
}

/* ---- simple ops ----------------------------------------------------------------------------- */

static void test_simple(int64_t N, int64_t D)
{
    int64_t s[2] = {N, D}, sd[1] = {D}, n = N * D;
    double *a = ref_randv(n, 1.0), *b = ref_randv(n, 1.0), *bias = ref_randv(D, 1.0);
    lt_tensor *ta = ref_tensor(dev, LT_F32, a, 2, s), *tb = ref_tensor(dev, LT_F32, b, 2, s);
    lt_tensor *to = ref_tensor(dev, LT_F32, NULL, 2, s), *tbias = ref_tensor(dev, LT_BF16, bias, 1, sd);
    lt_tensor *db = ref_tensor(dev, LT_F32, NULL, 1, sd);
    CHECK(lt_add(to, ta, tb) == LT_OK, "add: %s", lt_device_last_error(dev));
    CHECK(lt_axpy(to, 0.5f, ta) == LT_OK, "axpy: %s", lt_device_last_error(dev));
    CHECK(lt_scale(to, -2.0f) == LT_OK, "scale: %s", lt_device_last_error(dev));
    CHECK(lt_bias_add(to, tbias) == LT_OK, "bias_add: %s", lt_device_last_error(dev));
    CHECK(lt_bias_backward(db, ta) == LT_OK, "bias_backward: %s", lt_device_last_error(dev));
    double *ref = ref_zeros(n), *dref = ref_zeros(D);
    for (int64_t i = 0; i < n; i++) {
        double bj = lt_bf16_to_f32(lt_f32_to_bf16((float)bias[i % D]));
        ref[i] = -2.0 * (a[i] + b[i] + 0.5 * a[i]) + bj;
        dref[i % D] += a[i];
    }
    double *got = ref_get(to), *gdb = ref_get(db);
    char op[64];
    snprintf(op, sizeof op, "add/axpy/scale/bias [%lld, %lld]", (long long)N, (long long)D);
    ref_report(op, "forward", ref_relerr(got, ref, n), FWD_TOL);
    ref_report(op, "bias grad", ref_relerr(gdb, dref, D), FWD_TOL);
    free(a), free(b), free(bias), free(ref), free(dref), free(got), free(gdb);
    lt_tensor_free(ta), lt_tensor_free(tb), lt_tensor_free(to), lt_tensor_free(tbias);
    lt_tensor_free(db);
}

static void test_grad_norm(void)
{
    int64_t sizes[3] = {7, 257, 70001};
    lt_tensor *g[3];
    double sum = 0;
    double *vals[3];
    for (int i = 0; i < 3; i++) {
        vals[i] = ref_randv(sizes[i], 1.0);
        for (int64_t j = 0; j < sizes[i]; j++)
            sum += vals[i][j] * vals[i][j];
        g[i] = ref_tensor(dev, LT_F32, vals[i], 1, &sizes[i]);
    }
    int64_t one[1] = {1};
    lt_tensor *norm = ref_tensor(dev, LT_F32, NULL, 1, one);
    CHECK(lt_grad_norm(norm, g, 3) == LT_OK, "grad_norm: %s", lt_device_last_error(dev));
    double *nv = ref_get(norm), ref = sqrt(sum);
    ref_report("grad_norm", "forward", fabs(nv[0] - ref) / ref, 1e-6);
    CHECK(lt_clip_grad_norm(g, 3, norm, 1.0f) == LT_OK, "clip: %s", lt_device_last_error(dev));
    double coef = (double)(1.0f / ((float)nv[0] + 1e-6f));
    double *c2 = ref_get(g[2]), ref2[4];
    for (int j = 0; j < 4; j++)
        ref2[j] = vals[2][j] * coef;
    ref_report("clip_grad_norm", "forward", ref_relerr(c2, ref2, 4), 1e-6);
    for (int i = 0; i < 3; i++) {
        free(vals[i]);
        lt_tensor_free(g[i]);
    }
    free(nv), free(c2);
    lt_tensor_free(norm);
}

int main(void)
{
    char err[256];
    dev = lt_device_open("cpu", 0, err, sizeof err);
    CHECK(dev != NULL, "open cpu: %s", err);
    if (!dev)
        return test_summary();
    printf("device: %s\n", lt_device_name(dev));
    int64_t rows[4] = {1, 3, 7, 33}, cols[4] = {1, 7, 33, 257};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++)
            test_activation(k, rows[i], cols[3 - i]);
    for (int i = 0; i < 4; i++) {
        test_norm(false, rows[i], cols[3 - i], LT_F32);
        if (cols[3 - i] > 1)
            test_norm(true, rows[i], cols[3 - i], LT_F32);
    }
    test_norm(false, 5, 33, LT_BF16);
    test_norm(true, 3, 10, LT_F16);
    test_rope(7, 3, 6, 0, false);
    test_rope(5, 2, 10, 1000, false);
    test_rope(1, 6, 64, 7, false);
    test_rope(7, 3, 12, 3, true);
    test_rope(2, 2, 64, 900, true);
    test_embedding(7, 33, 257, LT_F32);
    test_embedding(257, 6, 1000, LT_BF16);
    test_embedding(3, 130, 33, LT_F16);
    test_cross_entropy(7, 33, false);
    test_cross_entropy(3, 257, true);
    test_cross_entropy(1, 7, false);
    test_logprob(7, 33);
    test_logprob(3, 257);
    test_simple(33, 257);
    test_simple(1, 1);
    test_grad_norm();
    lt_device_close(dev);
    return test_summary();
}
