/*
 * test_nf4.c - NF4 (QLoRA 4-bit NormalFloat): the 16 code values round-trip exactly, random
 * blocks dequantize within the nearest-code error, codes pack high nibble first, double
 * quantization of the absmax values stays within its 8-bit step, tensors account their real
 * bytes, and the dequantizing matmul (both trans_b, batched A, as forward and input-gradient
 * use it) matches an fp32 matmul on the dequantized weight; the Vulkan backend agrees with
 * the CPU when it has an NF4 path, and NF4 misuse is a clear error.
 */
#include "compute.h"
#include "test.h"
#include "vulkan/vk_debug.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x1234567ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* Largest distance from x in [-1, 1] to its nearest code: half the widest gap around x. */
static float nearest_err(float x)
{
    float best = 2.0f;
    for (int i = 0; i < 16; i++)
        if (fabsf(x - lt_nf4_codes[i]) < best)
            best = fabsf(x - lt_nf4_codes[i]);
    return best;
}

static void test_codes_round_trip(void)
{
    /* one block holding each code twice, scaled by absmax 1 (code 15 = 1.0 is the max) */
    float x[64], y[64];
    for (int i = 0; i < 64; i++)
        x[i] = lt_nf4_codes[i % 16];
    uint8_t q[64];
    CHECK(lt_nf4_bytes(64, false) == 32 + 4, "bytes of 64 elements: %zu", lt_nf4_bytes(64, false));
    lt_nf4_quantize(q, x, 64, false);
    lt_nf4_dequantize(y, q, 64, false, 0, 64);
    int exact = 0;
    for (int i = 0; i < 64; i++)
        exact += y[i] == x[i];
    CHECK(exact == 64, "the 16 code values round-trip exactly (%d of 64)", exact);
    /* packing: element 0 (code 0) in the high nibble, element 1 (code 1) in the low */
    CHECK(q[0] == 0x01 && q[1] == 0x23 && q[7] == 0xef, "high nibble first: %02x %02x %02x",
          q[0], q[1], q[7]);
    /* scaled by 3.5: still exact */
    for (int i = 0; i < 64; i++)
        x[i] = lt_nf4_codes[(i * 7) % 16] * 3.5f;
    x[5] = 3.5f;
    lt_nf4_quantize(q, x, 64, false);
    lt_nf4_dequantize(y, q, 64, false, 0, 64);
    exact = 0;
    for (int i = 0; i < 64; i++)
        exact += fabsf(y[i] - x[i]) <= 1e-6f * 3.5f;
    CHECK(exact == 64, "scaled codes round-trip (%d of 64)", exact);
    CHECK(lt_nf4_absmax(q, 64, false, 0) == 3.5f, "absmax stored as fp32");
}

static void test_random_blocks(bool dq)
{
    enum { n = 64 * 600 + 37 }; /* a partial last block, > 2 double-quant groups */
    static float x[n], y[n];
    static uint8_t q[n];
    for (int i = 0; i < n; i++)
        x[i] = frand() * (1.0f + (float)((i / 64) % 9));
    size_t bytes = lt_nf4_bytes(n, dq);
    size_t want = dq ? ((n + 1) / 2 + 3) / 4 * 4 + (601 + 3) / 4 * 4 + 3 * 4 + 4
                     : ((n + 1) / 2 + 3) / 4 * 4 + 601 * 4;
    CHECK(bytes == want, "bytes (dq %d): %zu, expected %zu", dq, bytes, want);
    lt_nf4_quantize(q, x, n, dq);
    lt_nf4_dequantize(y, q, n, dq, 0, n);
    int bad = 0, bad_am = 0;
    double worst = 0;
    for (int64_t j = 0; j * 64 < n; j++) {
        float am = 0;
        for (int64_t i = j * 64; i < n && i < j * 64 + 64; i++)
            am = fmaxf(am, fabsf(x[i]));
        float amq = lt_nf4_absmax(q, n, dq, j);
        /* double quant: the absmax error is at most half an 8-bit step of its group's scale */
        float am_tol = dq ? 9.0f / 127.0f * 0.5f + 1e-5f : 0.0f;
        if (fabsf(amq - am) > am_tol)
            bad_am++;
        for (int64_t i = j * 64; i < n && i < j * 64 + 64; i++) {
            float tol = nearest_err(x[i] / am) * am + fabsf(amq - am) + 1e-5f * am;
            float e = fabsf(y[i] - x[i]);
            if (e > tol)
                bad++;
            if (e / am > worst)
                worst = e / am;
        }
    }
    CHECK(bad == 0, "dq %d: %d elements outside the nearest-code error", dq, bad);
    CHECK(bad_am == 0, "dq %d: %d absmax values outside the 8-bit step", dq, bad_am);
    CHECK(worst < 0.2, "dq %d: worst relative error %g", dq, worst);
    /* a sub-range dequantizes like the whole */
    float part[100];
    lt_nf4_dequantize(part, q, n, dq, 1000, 100);
    CHECK(memcmp(part, y + 1000, sizeof part) == 0, "dq %d: range dequantize", dq);
    printf("nf4 dq=%d: %zu bytes for %d elements (%.4f bytes/element), worst error %.4f x absmax\n",
           dq, bytes, n, (double)bytes / n, worst);
}

/* C = A @ op(W) with W NF4 vs the same with W dequantized to f32; batched A too. */
static void check_matmul(lt_device *dev, lt_device *ref, bool trans_b, bool dq, bool batched)
{
    const int64_t Bt = batched ? 2 : 1, M = 5, K = 96, N = 70; /* K*N not a multiple of 64 */
    float w[96 * 70], a[2 * 5 * 96], c1[2 * 5 * 70], c2[2 * 5 * 70];
    for (int i = 0; i < K * N; i++)
        w[i] = frand() * 0.3f;
    for (int i = 0; i < Bt * M * K; i++)
        a[i] = frand();
    int64_t ws[2] = {trans_b ? N : K, trans_b ? K : N};
    lt_tensor *wq = lt_tensor_new_nf4(dev, 2, ws, dq);
    lt_tensor *wf = lt_tensor_new_2d(ref, LT_F32, ws[0], ws[1]);
    lt_tensor *A = batched ? lt_tensor_new_3d(dev, LT_F32, Bt, M, K) : lt_tensor_new_2d(dev, LT_F32, M, K);
    lt_tensor *Ar = batched ? lt_tensor_new_3d(ref, LT_F32, Bt, M, K) : lt_tensor_new_2d(ref, LT_F32, M, K);
    lt_tensor *C = batched ? lt_tensor_new_3d(dev, LT_F32, Bt, M, N) : lt_tensor_new_2d(dev, LT_F32, M, N);
    lt_tensor *Cr = batched ? lt_tensor_new_3d(ref, LT_F32, Bt, M, N) : lt_tensor_new_2d(ref, LT_F32, M, N);
    float deq[96 * 70];
    lt_status st = lt_tensor_upload_f32(wq, w, K * N);
    if (st == LT_OK)
        st = lt_tensor_download_f32(wq, deq, K * N);
    if (st == LT_OK)
        st = lt_tensor_upload_f32(wf, deq, K * N);
    if (st == LT_OK)
        st = lt_tensor_upload_f32(A, a, Bt * M * K);
    if (st == LT_OK)
        st = lt_tensor_upload_f32(Ar, a, Bt * M * K);
    if (st == LT_OK)
        st = lt_fill(C, 1.0f);
    if (st == LT_OK)
        st = lt_fill(Cr, 1.0f);
    if (st == LT_OK)
        st = lt_matmul(C, A, wq, false, trans_b, 0.5f, 1.0f);
    if (st == LT_OK)
        st = lt_matmul(Cr, Ar, wf, false, trans_b, 0.5f, 1.0f);
    if (st == LT_OK)
        st = lt_tensor_download_f32(C, c1, Bt * M * N);
    if (st == LT_OK)
        st = lt_tensor_download_f32(Cr, c2, Bt * M * N);
    CHECK(st == LT_OK, "matmul nf4 on %s: %s", lt_device_name(dev), lt_device_last_error(dev));
    double md = 0;
    for (int i = 0; st == LT_OK && i < Bt * M * N; i++)
        md = fmax(md, fabs(c1[i] - c2[i]));
    CHECK(st == LT_OK && md < 1e-4, "%s: nf4 matmul trans_b %d dq %d batched %d: max diff %g",
          lt_device_name(dev), trans_b, dq, batched, md);
    lt_tensor_free(wq);
    lt_tensor_free(wf);
    lt_tensor_free(A);
    lt_tensor_free(Ar);
    lt_tensor_free(C);
    lt_tensor_free(Cr);
}

/*
 * CPU vs Vulkan NF4 matmul on awkward shapes (K not a multiple of the shader's 16, K*N not of
 * 64), alpha/beta, batched A, both trans flags, with and without double quantization. The
 * weight is quantized once on the host and its packed bytes uploaded to both devices (checked
 * byte for byte after a download). Both backends form the same dequantized products
 * code * absmax in fp32; only the summation order differs (OpenBLAS blocks, the shader walks
 * K in order). Each fp32 dot product of K terms is within gamma_K = K u / (1 - K u) of the exact
 * sum of |a||b| (u = 2^-24; Higham, Accuracy and Stability, 3.1), so two of them differ by at
 * most 2 gamma_K sum|a||b|; the double-quantized absmax goes through a division that Vulkan
 * allows 2.5 ulp, hence 8 u more on sum|a||b|, and beta*C adds 2 u |C|. An identity A also
 * checks the dequantized values themselves.
 */
static void check_vk_vs_cpu(lt_device *vk, lt_device *cpu, bool trans_b, bool dq)
{
    enum { Bt = 2, M = 37, K = 200, N = 70 };
    static float w[K * N], deq[K * N], a[Bt * M * K], c0[Bt * M * N], cv[Bt * M * N],
        cc[Bt * M * N];
    static uint8_t q[K * N], qb[K * N];
    for (int i = 0; i < K * N; i++)
        w[i] = frand() * (i % 7 == 0 ? 2.0f : 0.25f);
    for (int i = 0; i < Bt * M * K; i++)
        a[i] = frand();
    for (int i = 0; i < Bt * M * N; i++)
        c0[i] = frand();
    int64_t ws[2] = {trans_b ? N : K, trans_b ? K : N};
    size_t bytes = lt_nf4_bytes(K * N, dq);
    lt_nf4_quantize(q, w, K * N, dq);
    lt_nf4_dequantize(deq, q, K * N, dq, 0, K * N);
    lt_tensor *wv = lt_tensor_new_nf4(vk, 2, ws, dq), *wc = lt_tensor_new_nf4(cpu, 2, ws, dq);
    lt_tensor *Av = lt_tensor_new_3d(vk, LT_F32, Bt, M, K), *Ac = lt_tensor_new_3d(cpu, LT_F32, Bt, M, K);
    lt_tensor *Cv = lt_tensor_new_3d(vk, LT_F32, Bt, M, N), *Cc = lt_tensor_new_3d(cpu, LT_F32, Bt, M, N);
    lt_status st = wv && wc && Av && Ac && Cv && Cc ? LT_OK : LT_ERR_OOM;
    if (st == LT_OK)
        st = lt_tensor_upload(wv, q, bytes);
    if (st == LT_OK)
        st = lt_tensor_upload(wc, q, bytes);
    if (st == LT_OK)
        st = lt_tensor_download(wv, qb, bytes);
    CHECK(st == LT_OK && memcmp(q, qb, bytes) == 0, "vulkan nf4 upload/download round trip "
          "(dq %d): %s", dq, lt_device_last_error(vk));
    if (st == LT_OK)
        st = lt_tensor_upload_f32(Av, a, Bt * M * K);
    if (st == LT_OK)
        st = lt_tensor_upload_f32(Ac, a, Bt * M * K);
    if (st == LT_OK)
        st = lt_tensor_upload_f32(Cv, c0, Bt * M * N);
    if (st == LT_OK)
        st = lt_tensor_upload_f32(Cc, c0, Bt * M * N);
    if (st == LT_OK)
        st = lt_matmul(Cv, Av, wv, false, trans_b, 0.75f, 0.5f);
    if (st == LT_OK)
        st = lt_matmul(Cc, Ac, wc, false, trans_b, 0.75f, 0.5f);
    if (st == LT_OK)
        st = lt_tensor_download_f32(Cv, cv, Bt * M * N);
    if (st == LT_OK)
        st = lt_tensor_download_f32(Cc, cc, Bt * M * N);
    CHECK(st == LT_OK, "vk vs cpu nf4 matmul: %s", lt_device_last_error(vk));
    const double u = ldexp(1.0, -24), gk = K * u / (1 - K * u);
    int bad = 0;
    double worst = 0; /* the largest |diff| / bound */
    for (int b = 0; st == LT_OK && b < Bt; b++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < K; k++)
                    s += fabs(a[(b * M + i) * K + k]) *
                         fabs(deq[trans_b ? j * K + k : k * N + j]);
                int o = (b * M + i) * N + j;
                double bound = 0.75 * (2 * gk + (dq ? 8 * u : 0)) * s +
                               2 * u * (0.5 * fabs(c0[o]) + fabs(cc[o])) + 1e-30;
                double d = fabs((double)cv[o] - (double)cc[o]);
                if (d > bound)
                    bad++;
                if (d / bound > worst)
                    worst = d / bound;
            }
    CHECK(st == LT_OK && bad == 0, "vk vs cpu nf4 matmul trans_b %d dq %d: %d of %d outside "
          "the rounding bound (worst %.3f of it)", trans_b, dq, bad, Bt * M * N, worst);
    printf("vk vs cpu nf4 matmul trans_b %d dq %d: worst difference %.3f of the bound\n",
           trans_b, dq, worst);
    /* identity A: C = op(B), the dequantized values themselves */
    lt_tensor *I = lt_tensor_new_2d(vk, LT_F32, trans_b ? N : K, trans_b ? N : K);
    lt_tensor *D = lt_tensor_new_2d(vk, LT_F32, ws[0], ws[1]);
    static float eye[N > K ? N * N : K * K], got[K * N];
    int64_t r = trans_b ? N : K;
    for (int64_t i = 0; i < r * r; i++)
        eye[i] = i / r == i % r ? 1.0f : 0.0f;
    st = I && D ? LT_OK : LT_ERR_OOM;
    /* trans_b: D [N, K] = I [N, N] @ B[N, K] needs B untransposed; use op = identity on A */
    lt_tensor *wv2 = lt_tensor_new_nf4(vk, 2, ws, dq);
    if (st == LT_OK)
        st = lt_tensor_upload(wv2, q, bytes);
    if (st == LT_OK)
        st = lt_tensor_upload_f32(I, eye, r * r);
    if (st == LT_OK)
        st = lt_matmul(D, I, wv2, false, false, 1.0f, 0.0f);
    if (st == LT_OK)
        st = lt_tensor_download_f32(D, got, K * N);
    int same = 0;
    double rel = 0;
    for (int i = 0; st == LT_OK && i < K * N; i++) {
        same += got[i] == deq[i];
        if (deq[i] != 0)
            rel = fmax(rel, fabs(got[i] - deq[i]) / fabs(deq[i]));
    }
    if (dq)
        CHECK(st == LT_OK && rel <= 8 * u, "dq: vulkan dequantized values within 8 ulp of the "
              "CPU's (%d of %d identical, worst %.3g)", same, K * N, rel);
    else
        CHECK(st == LT_OK && same == K * N, "vulkan dequantized values identical to the CPU's "
              "(%d of %d)", same, K * N);
    lt_tensor_free(I);
    lt_tensor_free(D);
    lt_tensor_free(wv2);
    lt_tensor_free(wv);
    lt_tensor_free(wc);
    lt_tensor_free(Av);
    lt_tensor_free(Ac);
    lt_tensor_free(Cv);
    lt_tensor_free(Cc);
}

static void test_tensor_and_errors(lt_device *cpu)
{
    int64_t s[2] = {128, 64};
    size_t before = lt_device_mem_in_use(cpu);
    lt_tensor *w = lt_tensor_new_nf4(cpu, 2, s, false);
    CHECK(w && lt_tensor_bytes(w) == 128 * 64 / 2 + 128 * 4, "nf4 tensor bytes %zu",
          lt_tensor_bytes(w));
    CHECK(lt_device_mem_in_use(cpu) - before == lt_tensor_bytes(w), "memory accounting");
    lt_tensor *wd = lt_tensor_new_nf4(cpu, 2, s, true);
    CHECK(wd && lt_tensor_bytes(wd) < lt_tensor_bytes(w) && lt_tensor_nf4_double_quant(wd),
          "double quant is smaller: %zu", lt_tensor_bytes(wd));
    char d[64];
    CHECK(strcmp(lt_tensor_describe(w, d, sizeof d), "nf4[128, 64]") == 0, "describe %s", d);
    int64_t v[1] = {64};
    CHECK(!lt_tensor_view(w, 0, 1, v) && strstr(lt_device_last_error(cpu), "NF4"),
          "no views: %s", lt_device_last_error(cpu));
    lt_tensor *x = lt_tensor_new_2d(cpu, LT_F32, 3, 64), *y = lt_tensor_new_2d(cpu, LT_F32, 3, 128);
    lt_tensor *g = lt_tensor_new_2d(cpu, LT_F32, 128, 64);
    lt_fill(x, 1.0f);
    lt_status st = lt_matmul_backward(NULL, g, y, x, w, false, true);
    CHECK(st == LT_ERR_DTYPE && strstr(lt_device_last_error(cpu), "no gradient"),
          "dB of an NF4 weight refused: %s", lt_device_last_error(cpu));
    st = lt_matmul(y, w, x, false, true, 1, 0);
    CHECK(st == LT_ERR_DTYPE, "NF4 as A refused: %s", lt_device_last_error(cpu));
    CHECK(lt_fill(w, 0.0f) == LT_ERR_DTYPE, "fill refuses NF4");
    lt_tensor_free(x);
    lt_tensor_free(y);
    lt_tensor_free(g);
    lt_tensor_free(w);
    lt_tensor_free(wd);
}

/* Quantizing on 1, 2, 3 and 8 threads gives the same bytes, with and without double
 * quantization, on odd sizes (partial last blocks, partial double-quant groups, fewer blocks
 * than threads) and with non-finite inputs. */
static void test_threads_same_bytes(void)
{
    const int64_t sizes[] = {1, 63, 64 * 5 + 1, 64 * 257 + 13, 64 * 1031 + 63, 64 * 4096};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *x = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            x[i] = frand() * (1.0f + (float)((i / 64) % 7));
        if (n > 200) {
            x[100] = NAN;
            x[n - 1] = INFINITY;
        }
        for (int dq = 0; dq < 2; dq++) {
            size_t bytes = lt_nf4_bytes(n, dq);
            uint8_t *one = malloc(bytes), *many = malloc(bytes);
            lt_nf4_quantize_threads(one, x, n, dq, 1);
            int same = 0, tried = 0;
            const int nts[] = {2, 3, 8, 0};
            for (int t = 0; t < 4; t++) {
                memset(many, 0xa5, bytes);
                lt_nf4_quantize_threads(many, x, n, dq, nts[t]);
                tried++;
                same += memcmp(one, many, bytes) == 0;
            }
            CHECK(same == tried, "n %lld dq %d: %d of %d thread counts give the 1-thread bytes",
                  (long long)n, dq, same, tried);
            free(one);
            free(many);
        }
        free(x);
    }
}

int main(void)
{
    char err[512];
    test_codes_round_trip();
    test_random_blocks(false);
    test_random_blocks(true);
    test_threads_same_bytes();
    lt_device *cpu = lt_device_open("cpu", 2, err, sizeof err);
    CHECK(cpu != NULL, "cpu: %s", err);
    if (!cpu)
        return test_summary();
    test_tensor_and_errors(cpu);
    for (int tb = 0; tb < 2; tb++)
        for (int dq = 0; dq < 2; dq++)
            for (int bt = 0; bt < 2; bt++)
                check_matmul(cpu, cpu, tb, dq, bt);
    lt_vk_device_info info[4];
    char why[256] = "LATHE_TEST_NO_VULKAN is set";
    bool no_vk = getenv("LATHE_TEST_NO_VULKAN") != NULL;
#ifdef __SANITIZE_ADDRESS__
    /* lavapipe leaks inside the driver at close; the normal build runs the Vulkan check */
    snprintf(why, sizeof why, "sanitizer build: the Vulkan check runs in the normal build");
    no_vk = true;
#endif
    setenv("LATHE_VK_VALIDATION", "1", 0);
    setenv("LATHE_CACHE_DIR", "off", 0);
    int nvk = no_vk ? -1 : lt_vk_enumerate(info, 4, why, sizeof why);
    lt_device *vk = nvk > 0 ? lt_device_open("vulkan:0", 0, err, sizeof err) : NULL;
    if (!vk) {
        SKIP("no Vulkan device (%s): CPU vs Vulkan NF4 matmul not compared",
             nvk > 0 ? err : why);
    } else {
        int64_t s[2] = {64, 64};
        lt_tensor *probe = lt_tensor_new_nf4(vk, 2, s, false);
        lt_tensor *px = lt_tensor_new_2d(vk, LT_F32, 1, 64), *py = lt_tensor_new_2d(vk, LT_F32, 1, 64);
        lt_fill(px, 0.0f);
        lt_status st = lt_matmul(py, px, probe, false, true, 1, 0);
        if (st == LT_ERR_UNSUPPORTED) {
            SKIP("the Vulkan backend has no NF4 matmul: %s", lt_device_last_error(vk));
        } else {
            for (int tb = 0; tb < 2; tb++)
                for (int dq = 0; dq < 2; dq++) {
                    check_matmul(vk, cpu, tb, dq, tb);
                    check_vk_vs_cpu(vk, cpu, tb, dq);
                }
        }
        lt_tensor_free(probe);
        lt_tensor_free(px);
        lt_tensor_free(py);
        int msgs = lt_vk_validation_messages(vk);
        if (msgs < 0)
            SKIP("the Khronos validation layer is not installed: validation not checked");
        else
            CHECK(msgs == 0, "validation layer reported %d errors/warnings", msgs);
        printf("validation messages: %d\n", msgs);
        lt_device_close(vk);
    }
    lt_device_close(cpu);
    return test_summary();
}
