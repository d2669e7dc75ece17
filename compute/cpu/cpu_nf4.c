/*
 * cpu_nf4.c - the CPU backend's matmul with an NF4 weight as B: op(B) is dequantized one panel
 * (a band of its columns with the full K) at a time into a bounded fp32 scratch, then
 * multiplied with OpenBLAS sgemm, as cpu_matmul.c does for F16/BF16 operands. A panel writes a
 * disjoint block of C, so the result does not depend on the panel size.
 *
 * Never quantizes, never writes B. A is F32 (activations or gradients), B 2-D (validated by
 * the front end).
 */
#include "cpu_impl.h"

#include <cblas.h>
#include <stdlib.h>

#define LT_CPU_NF4_PANEL_FLOATS ((int64_t)1 << 22) /* 16 MiB of f32 per dequantized panel */

/* Dequantizes op(B)'s columns n0..n1 into dst; returns its leading dimension. */
static int64_t dequant_band(float *dst, const lt_tensor *B, bool trans_b, int64_t K, int64_t N,
                            int64_t n0, int64_t n1, int nt)
{
    const void *q = lt_cpu_data(B);
    const int64_t w = n1 - n0;
    if (trans_b) { /* B [N, K]: the band is rows n0..n1, contiguous */
#pragma omp parallel for schedule(static) num_threads(nt) if (w * K > 65536)
        for (int64_t r = n0; r < n1; r++)
            lt_nf4_dequantize(dst + (r - n0) * K, q, B->numel, B->nf4_dq, r * K, K);
        return K;
    }
    /* B [K, N]: columns n0..n1 of every row */
#pragma omp parallel for schedule(static) num_threads(nt) if (w * K > 65536)
    for (int64_t r = 0; r < K; r++)
        lt_nf4_dequantize(dst + r * w, q, B->numel, B->nf4_dq, r * N + n0, w);
    return w;
}

lt_status lt_cpu_matmul_nf4(lt_device *dev, lt_tensor *C, const lt_tensor *A,
                            const lt_tensor *B, bool trans_a, bool trans_b, float alpha,
                            float beta, const lt_matmul_geom *g)
{
    const int64_t M = g->M, N = g->N, K = g->K;
    const int nt = lt_cpu_nt(dev);
    if (M > 0x7fffffff || N > 0x7fffffff || K > 0x7fffffff)
        return lt_dev_error(dev, LT_ERR_UNSUPPORTED,
                            "lt_matmul: M %lld, N %lld, K %lld exceed the BLAS int range",
                            (long long)M, (long long)N, (long long)K);
    int64_t nb = LT_CPU_NF4_PANEL_FLOATS / (K > 0 ? K : 1);
    nb = nb < 1 ? 1 : (nb > N ? N : nb);
    float *sb = malloc((size_t)(nb * K) * sizeof(float) + sizeof(float));
    if (!sb)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_matmul: cannot allocate the NF4 panel scratch");
    const float *a = lt_cpu_f(A);
    float *c = lt_cpu_f(C);
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    /* panels outside, batches inside: each panel is dequantized once for all batch entries */
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t n1 = n0 + nb < N ? n0 + nb : N;
        int64_t ldb = dequant_band(sb, B, trans_b, K, N, n0, n1, nt);
        for (int64_t b = 0; b < g->batch; b++) {
            const float *ab = a + (g->a_batched ? b * M * K : 0);
            cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)(n1 - n0), (int)K, alpha, ab,
                        (int)(trans_a ? M : K), sb, (int)ldb, beta, c + b * M * N + n0, (int)N);
        }
    }
    free(sb);
    return LT_OK;
}
