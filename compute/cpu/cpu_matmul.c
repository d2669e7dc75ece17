/*
 * cpu_matmul.c - the CPU backend's matmul: OpenBLAS cblas_sgemm per batch entry.
 *
 * F16/BF16 operands (half-precision weights) are converted to f32 one panel at a time into a
 * bounded scratch buffer (at most LT_CPU_PANEL_FLOATS floats per operand), so a model's
 * weights are never copied to fp32 as a whole. A panel is a band of op(A)'s rows or op(B)'s
 * columns with the full K, so each panel's sgemm writes a disjoint block of C and the result
 * does not depend on the panel size.
 */
#include "cpu_impl.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#define LT_CPU_PANEL_FLOATS ((int64_t)1 << 22) /* 16 MiB of f32 per converted operand */

/* A stored row-major [rows, cols] matrix at element offset off of a tensor. */
typedef struct mat {
    const void *base;
    lt_dtype dt;
    int64_t off, rows, cols;
} mat;

/* Converts the band p0..p1 of m (rows when on_rows, else columns) into dst; returns the
 * leading dimension of dst. */
static int64_t convert_band(float *dst, const mat *m, bool on_rows, int64_t p0, int64_t p1,
                            int nt)
{
    int64_t w = p1 - p0;
    if (on_rows) {
        int64_t n = w * m->cols;
        int64_t chunk = 4096, nc = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 65536)
        for (int64_t c = 0; c < nc; c++) {
            int64_t s = c * chunk, e = s + chunk < n ? s + chunk : n;
            lt_cpu_to_f32(dst + s, m->base, m->dt, m->off + p0 * m->cols + s, e - s);
        }
        return m->cols;
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (w * m->rows > 65536)
    for (int64_t r = 0; r < m->rows; r++)
        lt_cpu_to_f32(dst + r * w, m->base, m->dt, m->off + r * m->cols + p0, w);
    return w;
}

lt_status lt_cpu_matmul(lt_device *dev, lt_tensor *C, const lt_tensor *A, const lt_tensor *B,
                        bool trans_a, bool trans_b, float alpha, float beta,
                        const lt_matmul_geom *g)
{
    const int64_t M = g->M, N = g->N, K = g->K;
    const int nt = lt_cpu_nt(dev);
    const bool a_half = A->dtype != LT_F32, b_half = B->dtype != LT_F32;
    float *c = lt_cpu_f(C);
    float *sa = NULL, *sb = NULL;
    lt_status st = LT_OK;

    if (M > 0x7fffffff || N > 0x7fffffff || K > 0x7fffffff)
        return lt_dev_error(dev, LT_ERR_UNSUPPORTED,
                            "lt_matmul: M %lld, N %lld, K %lld exceed the BLAS int range",
                            (long long)M, (long long)N, (long long)K);
    /* bands: op(A)'s rows are A's rows, or A's columns when transposed; likewise op(B)'s
     * columns are B's columns, or B's rows when transposed */
    int64_t mb = M, nb = N;
    if (a_half) {
        mb = LT_CPU_PANEL_FLOATS / K;
        mb = mb < 1 ? 1 : (mb > M ? M : mb);
        sa = malloc((size_t)(mb * K) * sizeof(float));
    }
    if (b_half) {
        nb = LT_CPU_PANEL_FLOATS / K;
        nb = nb < 1 ? 1 : (nb > N ? N : nb);
        sb = malloc((size_t)(nb * K) * sizeof(float));
    }
    if ((a_half && !sa) || (b_half && !sb)) {
        st = lt_dev_error(dev, LT_ERR_OOM, "lt_matmul: cannot allocate conversion scratch");
        goto cleanup;
    }
    /* a broadcast half operand that fits in one band is converted once for all batches */
    bool a_once = a_half && !g->a_batched && mb == M;
    bool b_once = b_half && !g->b_batched && nb == N;
    int64_t lda_once = 0, ldb_once = 0;
    if (a_once) {
        mat ma = {lt_cpu_data(A), A->dtype, 0, trans_a ? K : M, trans_a ? M : K};
        lda_once = convert_band(sa, &ma, !trans_a, 0, M, nt);
    }
    if (b_once) {
        mat mbm = {lt_cpu_data(B), B->dtype, 0, trans_b ? N : K, trans_b ? K : N};
        ldb_once = convert_band(sb, &mbm, trans_b, 0, N, nt);
    }
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;

    for (int64_t b = 0; b < g->batch; b++) {
        mat ma = {lt_cpu_data(A), A->dtype, g->a_batched ? b * M * K : 0, trans_a ? K : M,
                  trans_a ? M : K};
        mat mbm = {lt_cpu_data(B), B->dtype, g->b_batched ? b * K * N : 0, trans_b ? N : K,
                   trans_b ? K : N};
        float *cb = c + b * M * N;
        for (int64_t m0 = 0; m0 < M; m0 += mb) {
            int64_t m1 = m0 + mb < M ? m0 + mb : M;
            const float *ap;
            int64_t lda;
            if (!a_half) {
                ap = (const float *)ma.base + ma.off + (trans_a ? m0 : m0 * K);
                lda = trans_a ? M : K;
            } else if (a_once) {
                ap = sa;
                lda = lda_once;
            } else {
                ap = sa;
                lda = convert_band(sa, &ma, !trans_a, m0, m1, nt);
            }
            for (int64_t n0 = 0; n0 < N; n0 += nb) {
                int64_t n1 = n0 + nb < N ? n0 + nb : N;
                const float *bp;
                int64_t ldb;
                if (!b_half) {
                    bp = (const float *)mbm.base + mbm.off + (trans_b ? n0 * K : n0);
                    ldb = trans_b ? K : N;
                } else if (b_once) {
                    bp = sb;
                    ldb = ldb_once;
                } else {
                    bp = sb;
                    ldb = convert_band(sb, &mbm, trans_b, n0, n1, nt);
                }
                cblas_sgemm(CblasRowMajor, ta, tb, (int)(m1 - m0), (int)(n1 - n0), (int)K,
                            alpha, ap, (int)lda, bp, (int)ldb, beta, cb + m0 * N + n0, (int)N);
            }
        }
    }

cleanup:
    free(sa);
    free(sb);
    return st;
}
