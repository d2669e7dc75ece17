/*
 * nf4.c - 4-bit NormalFloat (QLoRA, bitsandbytes' definition) on the host: the 16 code values,
 * the byte layout of an NF4 tensor (codes, then scales; see compute.h), quantization to the
 * nearest code with one absmax per block of 64, optional double quantization of the absmax
 * values, and dequantization of any element range (what the backends' matmuls call per panel).
 *
 * Pure functions of their arguments: no device, no global state. Quantization runs on every
 * thread (blocks split among OpenMP threads; each block's bytes are written by one thread and
 * the one sum, the mean of the absmax values, is taken in block order afterwards), so the
 * bytes do not depend on the thread count.
 */
#include "compute_impl.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

const float lt_nf4_codes[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

static int64_t n_blocks(int64_t numel) { return (numel + LT_NF4_BLOCK - 1) / LT_NF4_BLOCK; }
static int64_t n_dq_blocks(int64_t nb) { return (nb + LT_NF4_DQ_BLOCK - 1) / LT_NF4_DQ_BLOCK; }
static size_t pad4(size_t b) { return (b + 3) & ~(size_t)3; }
static size_t codes_bytes(int64_t numel) { return pad4((size_t)(numel + 1) / 2); }

size_t lt_nf4_bytes(int64_t numel, bool double_quant)
{
    if (numel <= 0)
        return 0;
    int64_t nb = n_blocks(numel);
    if (!double_quant)
        return codes_bytes(numel) + (size_t)nb * 4;
    return codes_bytes(numel) + pad4((size_t)nb) + (size_t)n_dq_blocks(nb) * 4 + 4;
}

/* The index of the code nearest to x (x in [-1, 1]); ties go to the lower index. */
static uint8_t nearest_code(float x)
{
    int best = 0;
    float bd = fabsf(x - lt_nf4_codes[0]);
    for (int i = 1; i < 16; i++) {
        float d = fabsf(x - lt_nf4_codes[i]);
        if (d < bd) {
            bd = d;
            best = i;
        }
    }
    return (uint8_t)best;
}

/* The absmax of the finite elements of block j (0 when none). */
static float block_absmax(const float *src, int64_t n, int64_t j)
{
    int64_t e0 = j * LT_NF4_BLOCK, e1 = e0 + LT_NF4_BLOCK < n ? e0 + LT_NF4_BLOCK : n;
    float am = 0.0f;
    for (int64_t i = e0; i < e1; i++)
        if (isfinite(src[i]) && fabsf(src[i]) > am)
            am = fabsf(src[i]);
    return am;
}

void lt_nf4_quantize_threads(void *dst, const float *src, int64_t n, bool double_quant,
                             int n_threads)
{
    if (n <= 0)
        return;
    uint8_t *codes = dst;
    const int64_t nb = n_blocks(n);
    const int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    memset(dst, 0, lt_nf4_bytes(n, double_quant));
    float *absmax = (float *)(codes + codes_bytes(n)); /* fp32 absmax (no double quant) */
    uint8_t *aq = codes + codes_bytes(n);
    float *dqs = (float *)(aq + pad4((size_t)nb));
    /* double quantization: every block's absmax kept for the mean and the second pass (when
     * the scratch cannot be had, they are recomputed: the same values) */
    float *am_all = double_quant ? malloc((size_t)nb * sizeof(float)) : absmax;
    /* blocks hold an even number of elements, so no code byte is shared by two blocks */
#pragma omp parallel for schedule(static) num_threads(nt) if (nb >= 64)
    for (int64_t j = 0; j < nb; j++) {
        int64_t e0 = j * LT_NF4_BLOCK, e1 = e0 + LT_NF4_BLOCK < n ? e0 + LT_NF4_BLOCK : n;
        float am = block_absmax(src, n, j);
        for (int64_t i = e0; i < e1; i++) {
            float x = isfinite(src[i]) && am > 0.0f ? src[i] / am : 0.0f;
            uint8_t q = nearest_code(x);
            codes[i >> 1] |= (uint8_t)((i & 1) ? q : q << 4);
        }
        if (am_all)
            am_all[j] = am;
    }
    if (!double_quant)
        return;
    double mean_sum = 0.0;
    for (int64_t j = 0; j < nb; j++) /* in block order, whatever the threads */
        mean_sum += am_all ? am_all[j] : block_absmax(src, n, j);
    /* second pass: absmax values minus their mean, to 8 bits per block of 256 with one fp32
     * scale each */
    const float mean_acc = (float)(mean_sum / (double)nb);
    const int64_t ndq = n_dq_blocks(nb);
#pragma omp parallel for schedule(static) num_threads(nt) if (ndq >= 16)
    for (int64_t g = 0; g < ndq; g++) {
        int64_t j0 = g * LT_NF4_DQ_BLOCK, j1 = j0 + LT_NF4_DQ_BLOCK < nb ? j0 + LT_NF4_DQ_BLOCK : nb;
        float am[LT_NF4_DQ_BLOCK], sc = 0.0f;
        for (int64_t j = j0; j < j1; j++) {
            float a = am_all ? am_all[j] : block_absmax(src, n, j);
            am[j - j0] = a - mean_acc;
            if (fabsf(am[j - j0]) > sc)
                sc = fabsf(am[j - j0]);
        }
        dqs[g] = sc;
        for (int64_t j = j0; j < j1; j++) {
            float r = sc > 0.0f ? rintf(am[j - j0] / sc * 127.0f) : 0.0f;
            aq[j] = (uint8_t)(int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r);
        }
    }
    dqs[ndq] = mean_acc;
    free(am_all);
}

void lt_nf4_quantize(void *dst, const float *src, int64_t n, bool double_quant)
{
    lt_nf4_quantize_threads(dst, src, n, double_quant, 0);
}

float lt_nf4_absmax(const void *src, int64_t numel, bool double_quant, int64_t j)
{
    const uint8_t *p = (const uint8_t *)src + codes_bytes(numel);
    if (!double_quant) {
        float a;
        memcpy(&a, p + 4 * j, 4);
        return a;
    }
    int64_t nb = n_blocks(numel);
    const uint8_t *dq = p + pad4((size_t)nb);
    float sc, mean;
    memcpy(&sc, dq + 4 * (j / LT_NF4_DQ_BLOCK), 4);
    memcpy(&mean, dq + 4 * n_dq_blocks(nb), 4);
    return (float)(int8_t)p[j] / 127.0f * sc + mean;
}

void lt_nf4_dequantize(float *dst, const void *src, int64_t numel, bool double_quant,
                       int64_t i0, int64_t count)
{
    const uint8_t *codes = src;
    int64_t i = i0, end = i0 + count;
    while (i < end) {
        int64_t j = i / LT_NF4_BLOCK;
        int64_t be = (j + 1) * LT_NF4_BLOCK < end ? (j + 1) * LT_NF4_BLOCK : end;
        float am = lt_nf4_absmax(src, numel, double_quant, j);
        for (; i < be; i++) {
            uint8_t b = codes[i >> 1];
            *dst++ = lt_nf4_codes[(i & 1) ? (b & 15) : (b >> 4)] * am;
        }
    }
}
