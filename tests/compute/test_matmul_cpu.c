/*
 * test_matmul_cpu.c - the CPU backend's matmul and the generic matmul backward: every
 * transpose combination, batched and broadcast operands, F16/BF16 inputs (including shapes
 * big enough to be converted in several panels), alpha/beta, beta = 0 ignoring NaN in C,
 * gradients against finite differences, and identical bits on a second run.
 */
#include "ops_ref.h"

#include <stdio.h>

static lt_device *dev;

typedef struct mmcase {
    int64_t ba, bb, M, K, N; /* ba/bb: batch of A/B, 0 = 2-D */
    bool ta, tb;
    lt_dtype da, db;
} mmcase;

typedef struct mmctx {
    const mmcase *c;
    double *A, *B, *dC;
} mmctx;

static int64_t batch_of(const mmcase *c) { return c->ba ? c->ba : (c->bb ? c->bb : 1); }

static double round_to(double v, lt_dtype dt)
{
    if (dt == LT_F16)
        return lt_f16_to_f32(lt_f32_to_f16((float)v));
    if (dt == LT_BF16)
        return lt_bf16_to_f32(lt_f32_to_bf16((float)v));
    return v;
}

/* C = op(A) op(B) in double; with every > 1 only elements whose index is a multiple of
 * every are computed (the others are set to 0). */
static void mm_ref_sub(const mmcase *c, const double *A, const double *B, double *C, int every)
{
    int64_t M = c->M, K = c->K, N = c->N;
    for (int64_t b = 0; b < batch_of(c); b++) {
        const double *a = A + (c->ba ? b * M * K : 0), *bm = B + (c->bb ? b * K * N : 0);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                int64_t idx = (b * M + i) * N + j;
                if (idx % every == 0)
                    for (int64_t k = 0; k < K; k++)
                        s += (c->ta ? a[k * M + i] : a[i * K + k]) *
                             (c->tb ? bm[j * K + k] : bm[k * N + j]);
                C[idx] = s;
            }
    }
}

static void mm_ref(const mmcase *c, const double *A, const double *B, double *C)
{
    mm_ref_sub(c, A, B, C, 1);
}

static double mm_obj(void *ctx)
{
    mmctx *x = ctx;
    int64_t n = batch_of(x->c) * x->c->M * x->c->N;
    double *C = malloc((size_t)n * sizeof(double)), L = 0;
    mm_ref(x->c, x->A, x->B, C);
    for (int64_t i = 0; i < n; i++)
        L += x->dC[i] * C[i];
    free(C);
    return L;
}

static void shape_of(const mmcase *c, bool is_a, int *nd, int64_t *s)
{
    int64_t b = is_a ? c->ba : c->bb;
    int64_t r = is_a ? (c->ta ? c->K : c->M) : (c->tb ? c->N : c->K);
    int64_t q = is_a ? (c->ta ? c->M : c->K) : (c->tb ? c->K : c->N);
    *nd = b ? 3 : 2;
    if (b) {
        s[0] = b, s[1] = r, s[2] = q;
    } else {
        s[0] = r, s[1] = q;
    }
}

static void run_case(const mmcase *c, bool with_grad)
{
    char op[96];
    snprintf(op, sizeof op, "matmul %s%s%lldx%lldx%lld b%lld/%lld %s,%s", c->ta ? "T" : "N",
             c->tb ? "T" : "N", (long long)c->M, (long long)c->K, (long long)c->N,
             (long long)c->ba, (long long)c->bb, lt_dtype_name(c->da), lt_dtype_name(c->db));
    int nda, ndb;
    int64_t sa[3], sb[3];
    shape_of(c, true, &nda, sa);
    shape_of(c, false, &ndb, sb);
    int64_t B = batch_of(c), na = (c->ba ? c->ba : 1) * c->M * c->K;
    int64_t nb = (c->bb ? c->bb : 1) * c->K * c->N, nc = B * c->M * c->N;
    int64_t sc[3] = {B, c->M, c->N};
    int ndc = (c->ba || c->bb) ? 3 : 2;
    const int64_t *scp = ndc == 3 ? sc : sc + 1;
    mmctx x = {c, ref_randv(na, 1.0), ref_randv(nb, 1.0), ref_randv(nc, 1.0)};
    for (int64_t i = 0; i < na; i++)
        x.A[i] = round_to(x.A[i], c->da);
    for (int64_t i = 0; i < nb; i++)
        x.B[i] = round_to(x.B[i], c->db);
    lt_tensor *A = ref_tensor(dev, c->da, x.A, nda, sa), *Bt = ref_tensor(dev, c->db, x.B, ndb, sb);
    lt_tensor *C = ref_tensor(dev, LT_F32, NULL, ndc, scp), *C2 = ref_tensor(dev, LT_F32, NULL, ndc, scp);
    lt_fill(C, NAN); /* beta = 0 must ignore it */
    CHECK(lt_matmul(C, A, Bt, c->ta, c->tb, 1.0f, 0.0f) == LT_OK, "%s: %s", op,
          lt_device_last_error(dev));
    CHECK(lt_matmul(C2, A, Bt, c->ta, c->tb, 1.0f, 0.0f) == LT_OK, "%s: %s", op,
          lt_device_last_error(dev));
    CHECK(ref_same_bits(C, C2), "%s: second run differs", op);
    double *ref = malloc((size_t)nc * sizeof(double)), *got = ref_get(C);
    int every = with_grad ? 1 : 97; /* big cases: a sample of C's elements */
    mm_ref_sub(c, x.A, x.B, ref, every);
    for (int64_t i = 0; i < nc; i++)
        if (i % every != 0)
            got[i] = 0;
    ref_report(op, "forward", ref_relerr(got, ref, nc), FWD_TOL);
    /* C2 = 0.5 * AB + 1 * C2  ->  1.5 AB */
    CHECK(lt_matmul(C2, A, Bt, c->ta, c->tb, 0.5f, 1.0f) == LT_OK, "%s: %s", op,
          lt_device_last_error(dev));
    double *got2 = ref_get(C2);
    for (int64_t i = 0; i < nc; i++) {
        ref[i] *= 1.5;
        if (i % every != 0)
            got2[i] = 0;
    }
    ref_report(op, "alpha/beta", ref_relerr(got2, ref, nc), FWD_TOL);
    if (with_grad) {
        lt_tensor *dC = ref_tensor(dev, LT_F32, x.dC, ndc, scp);
        lt_tensor *dA = ref_tensor(dev, LT_F32, NULL, nda, sa), *dB = ref_tensor(dev, LT_F32, NULL, ndb, sb);
        CHECK(lt_matmul_backward(dA, dB, dC, A, Bt, c->ta, c->tb) == LT_OK, "%s backward: %s",
              op, lt_device_last_error(dev));
        double *ga = ref_get(dA), *gb = ref_get(dB);
        ref_report(op, "d/dA", ref_fd(mm_obj, &x, x.A, na, ga), BWD_TOL);
        ref_report(op, "d/dB", ref_fd(mm_obj, &x, x.B, nb, gb), BWD_TOL);
        /* dB alone (dA NULL) accumulates: a second call doubles it */
        CHECK(lt_matmul_backward(NULL, dB, dC, A, Bt, c->ta, c->tb) == LT_OK, "%s: %s", op,
              lt_device_last_error(dev));
        double *gb2 = ref_get(dB);
        for (int64_t i = 0; i < nb; i++)
            gb[i] *= 2;
        ref_report(op, "dB accumulates", ref_relerr(gb2, gb, nb), FWD_TOL);
        free(ga), free(gb), free(gb2);
        lt_tensor_free(dC), lt_tensor_free(dA), lt_tensor_free(dB);
    }
    free(ref), free(got), free(got2), free(x.A), free(x.B), free(x.dC);
    lt_tensor_free(A), lt_tensor_free(Bt), lt_tensor_free(C), lt_tensor_free(C2);
}

int main(void)
{
    char err[256];
    dev = lt_device_open("cpu", 0, err, sizeof err);
    CHECK(dev != NULL, "open cpu: %s", err);
    if (!dev)
        return test_summary();
    int64_t dims[5] = {1, 3, 7, 33, 257};
    /* every transpose combination over awkward sizes */
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 5; i++) {
            mmcase c = {0, 0, dims[i], dims[(i + 2) % 5], dims[(i + 4) % 5], t & 1, t & 2,
                        LT_F32, LT_F32};
            run_case(&c, true);
        }
    /* batched, broadcast weights, half-precision operands */
    mmcase cases[] = {
        {3, 3, 7, 6, 10, false, false, LT_F32, LT_F32},
        {2, 0, 33, 7, 3, false, true, LT_F32, LT_F32},   /* x @ W^T, W shared */
        {2, 0, 5, 7, 3, true, false, LT_F32, LT_F32},
        {0, 3, 4, 6, 5, false, false, LT_F32, LT_F32},   /* A shared */
        {0, 3, 4, 6, 5, true, true, LT_F32, LT_F32},
        {0, 0, 7, 33, 10, false, true, LT_F32, LT_BF16}, /* Linear with a bf16 weight */
        {0, 0, 7, 33, 10, false, false, LT_F16, LT_F32},
        {0, 0, 6, 10, 7, true, true, LT_BF16, LT_F16},
        {3, 0, 5, 33, 7, false, true, LT_F32, LT_F16},
        {3, 3, 5, 6, 7, true, false, LT_BF16, LT_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], true);
    /* big enough for several conversion panels (16 MiB of f32 each), forward only */
    mmcase big[] = {
        {0, 0, 2051, 4100, 3, false, false, LT_BF16, LT_F32},
        {0, 0, 2051, 4100, 3, true, false, LT_F16, LT_F32},
        {0, 0, 3, 4100, 1030, false, true, LT_F32, LT_F16},
        {0, 0, 3, 4100, 1030, false, false, LT_F32, LT_BF16},
        {2, 0, 1100, 4000, 1050, false, true, LT_BF16, LT_BF16},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        run_case(&big[i], false);
    lt_device_close(dev);
    return test_summary();
}
