/*
 * test_vk_coopmat.c - the cooperative-matrix matmul against the tiled fp32 kernel on the same
 * Vulkan device (opened a second time with LATHE_VK_NO_COOPMAT=1): f16 x f16 products in all
 * four transpose cases, batched and with a broadcast weight, on awkward shapes (edges in M, N
 * and K, K not a multiple of the 32-wide slice), alpha and beta. Both kernels read the same
 * f16 values and accumulate in fp32, so they must agree within a 16-bit rounding bound:
 * |coopmat - tiled| <= 2^-11 * sum_k |a_mk||b_kn| + 1e-6 per element (the unit roundoff of
 * f16, as if every product had been rounded to 16 bits once); the largest error seen is
 * printed against that bound. Under the Khronos validation layer (when it loads) with zero
 * errors or warnings. Also: the kernel matches the device's listed shape (8 x 8 x 8 on
 * lavapipe 26.1: matmul_coopmat8).
 *
 * Runs where the cooperative-matrix kernel passed its self-test (tests/vk_mesa26.sh runs it
 * on Mesa 26.1's lavapipe, LATHE_TEST_VK_REQUIRED=1: there a device that lists the extension
 * but has no kernel on is a failure); elsewhere it says why and skips.
 */
#include "compute.h"
#include "test.h"
#include "vulkan/vk_debug.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static lt_device *cm, *ref;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double worst_ratio; /* largest |d| / bound seen */

static float frand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}

/* n values rounded to f16 (the values both kernels read) */
static float *rand16(int64_t n)
{
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n && v; i++)
        v[i] = lt_f16_to_f32(lt_f32_to_f16(frand()));
    return v;
}

static lt_tensor *put(lt_device *d, lt_dtype dt, int nd, const int64_t *shape, const float *v)
{
    lt_tensor *t = lt_tensor_new(d, dt, nd, shape);
    if (t && lt_tensor_upload_f32(t, v, lt_tensor_numel(t)) != LT_OK) {
        lt_tensor_free(t);
        t = NULL;
    }
    return t;
}

/* C[b] = alpha op(A[b]) op(B[b or 0]) + beta C on both devices, compared element by element. */
static void run_case(int64_t batch, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                     bool b_batched, float alpha, float beta)
{
    int64_t ash[3] = {batch, ta ? K : M, ta ? M : K}, bsh[3] = {batch, tb ? N : K, tb ? K : N};
    int64_t csh[3] = {batch, M, N};
    int64_t nb = b_batched ? batch : 1;
    float *a = rand16(batch * M * K), *b = rand16(nb * K * N), *c0 = rand16(batch * M * N);
    float *r1 = malloc((size_t)(batch * M * N) * 4), *r2 = malloc((size_t)(batch * M * N) * 4);
    int nda = batch > 1 ? 3 : 2, ndb = b_batched && batch > 1 ? 3 : 2;
    bool ok = a && b && c0 && r1 && r2;
    lt_device *devs[2] = {cm, ref};
    float *outs[2] = {r1, r2};
    for (int s = 0; s < 2 && ok; s++) {
        lt_tensor *A = put(devs[s], LT_F16, nda, ash + (3 - nda), a);
        lt_tensor *B = put(devs[s], LT_F16, ndb, bsh + (3 - ndb), b);
        lt_tensor *C = put(devs[s], LT_F32, nda, csh + (3 - nda), c0);
        lt_status st = A && B && C ? lt_matmul(C, A, B, ta, tb, alpha, beta) : LT_ERR_OOM;
        if (st == LT_OK)
            st = lt_tensor_download_f32(C, outs[s], batch * M * N);
        CHECK(st == LT_OK, "matmul on %s: %s", s ? "tiled" : "coopmat",
              lt_device_last_error(devs[s]));
        ok = st == LT_OK;
        lt_tensor_free(A);
        lt_tensor_free(B);
        lt_tensor_free(C);
    }
    double worst = 0;
    int64_t bad = 0, at = -1;
    for (int64_t z = 0; z < batch && ok; z++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                const float *az = a + z * M * K, *bz = b + (b_batched ? z : 0) * K * N;
                double mag = 0;
                for (int64_t k = 0; k < K; k++) {
                    float x = ta ? az[k * M + m] : az[m * K + k];
                    float y = tb ? bz[n * K + k] : bz[k * N + n];
                    mag += fabs((double)x * y);
                }
                double bound = ldexp(fabs(alpha) * mag, -11) + 1e-6;
                int64_t i = (z * M + m) * N + n;
                double d = fabs((double)r1[i] - r2[i]);
                if (!(d <= bound)) {
                    bad++;
                    at = i;
                }
                if (d / bound > worst)
                    worst = d / bound;
            }
    CHECK(ok && bad == 0,
          "batch %lld M %lld N %lld K %lld ta %d tb %d%s: %lld elements beyond the 16-bit "
          "bound (element %lld: coopmat %.9g, tiled %.9g)",
          (long long)batch, (long long)M, (long long)N, (long long)K, ta, tb,
          b_batched ? "" : " (broadcast B)", (long long)bad, (long long)at, at >= 0 ? r1[at] : 0.0,
          at >= 0 ? r2[at] : 0.0);
    if (worst > worst_ratio)
        worst_ratio = worst;
    free(a);
    free(b);
    free(c0);
    free(r1);
    free(r2);
}

int main(void)
{
    lt_vk_device_info info[8];
    char err[512];
    int n = lt_vk_enumerate(info, 8, err, sizeof(err));
    bool required = getenv("LATHE_TEST_VK_REQUIRED") != NULL;
    if (n <= 0) {
        CHECK(!required, "LATHE_TEST_VK_REQUIRED: no Vulkan device (%s)", n < 0 ? err : "none");
        SKIP("no Vulkan device: cooperative-matrix matmul not tested");
        return test_summary();
    }
    int index = info[0].index; /* prefer a device with the extension */
    bool listed = info[0].cooperative_matrix;
    for (int i = 0; i < n; i++)
        if (info[i].cooperative_matrix && !listed) {
            index = info[i].index;
            listed = true;
        }
    char spec[32];
    snprintf(spec, sizeof(spec), "vulkan:%d", index);
    setenv("LATHE_CACHE_DIR", "off", 0);
    setenv("LATHE_VK_VALIDATION", "1", 0);
    cm = lt_device_open(spec, 0, err, sizeof(err));
    CHECK(cm != NULL, "open %s: %s", spec, err);
    const char *no_validation = NULL;
    if (cm && listed && !lt_vk_coopmat_kernel(cm) && lt_vk_validation_messages(cm) >= 0) {
        /* a layer older than VK_KHR_cooperative_matrix (Debian 12's, header 1.3.239) keeps
         * the kernels off: test them without it */
        no_validation = "the installed validation layer is older than "
                        "VK_KHR_cooperative_matrix (cooperative matrices stay off under it)";
        CHECK(lt_vk_validation_messages(cm) == 0, "validation messages without coopmat: %d",
              lt_vk_validation_messages(cm));
        lt_device_close(cm);
        setenv("LATHE_VK_VALIDATION", "0", 1);
        cm = lt_device_open(spec, 0, err, sizeof(err));
        CHECK(cm != NULL, "open %s without validation: %s", spec, err);
    }
    setenv("LATHE_VK_NO_COOPMAT", "1", 1);
    ref = lt_device_open(spec, 0, err, sizeof(err));
    unsetenv("LATHE_VK_NO_COOPMAT");
    CHECK(ref != NULL, "open %s again without cooperative matrices: %s", spec, err);
    const char *kernel = lt_vk_coopmat_kernel(cm);
    CHECK(lt_vk_coopmat_kernel(ref) == NULL, "LATHE_VK_NO_COOPMAT=1 keeps the kernel off");
    if (!cm || !ref || !kernel) {
        bool built = lt_vk_coopmat_built();
        CHECK(!(required && listed && built),
              "%s lists VK_KHR_cooperative_matrix and the kernels are built in, but none "
              "passed its self-test",
              spec);
        SKIP("%s: no cooperative-matrix kernel on (%s)", spec,
             !built    ? "not built in"
             : !listed ? "the device lists no VK_KHR_cooperative_matrix"
                       : "no listed shape with a kernel, or the self-test failed");
        lt_device_close(ref);
        lt_device_close(cm);
        return test_summary();
    }
    printf("%s, kernel %s\n", lt_device_name(cm), kernel);
    /* lavapipe lists only 8 x 8 x 8 */
    if (strstr(lt_device_name(cm), "llvmpipe"))
        CHECK(strcmp(kernel, "matmul_coopmat8") == 0, "lavapipe runs %s", kernel);

    static const int64_t shapes[][3] = {{64, 64, 32}, {130, 77, 100}, {65, 128, 33}, {64, 72, 40}};
    for (int s = 0; s < 4; s++)
        for (int tr = 0; tr < 4; tr++)
            run_case(1, shapes[s][0], shapes[s][1], shapes[s][2], tr & 1, tr & 2, true,
                     s % 2 ? 0.75f : 1.0f, s % 3 == 1 ? 0.5f : 0.0f);
    run_case(2, 70, 66, 45, false, false, true, 1.0f, 0.0f);  /* batched */
    run_case(2, 80, 64, 40, false, true, false, 1.0f, 0.25f); /* broadcast weight */
    printf("largest |coopmat - tiled| / 16-bit bound: %.3g\n", worst_ratio);

    int msgs = lt_vk_validation_messages(cm);
    if (msgs < 0)
        SKIP("validation not checked: %s",
             no_validation ? no_validation : "the Khronos validation layer did not load");
    else
        CHECK(msgs == 0, "validation layer reported %d errors/warnings", msgs);
    printf("validation messages: %d\n", msgs);
    lt_device_close(ref);
    lt_device_close(cm);
    return test_summary();
}
