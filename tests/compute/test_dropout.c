/*
 * test_dropout.c - lt_dropout and its generator: Philox4x32-10 against the Random123 known
 * answers (counter and key all zeros, all ones, and the digits of pi); the mask against one
 * computed by an independent Python implementation of the header's definition; the keep
 * rate within statistical bounds; the same mask at every thread count, in place or not, and
 * in the backward; a tensor drawn in pieces at their counter offsets (first) equals the whole
 * (unaligned starts, a 64-bit counter crossing 2^32 blocks); bad probabilities and counter
 * overflow refused; and the Vulkan backend drawing bit-identical masks to the CPU backend at
 * those offsets too, under the validation layer (skipped when no Vulkan device).
 */
#include "compute.h"
#include "test.h"
#include "vulkan/vk_debug.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char err[512];

/* Random123 kat_vectors, philox4x32 with 10 rounds. */
static void test_philox_kat(void)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[3] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        lt_philox4x32_10(kat[k].ctr, kat[k].key, out);
        CHECK(memcmp(out, kat[k].out, sizeof out) == 0,
              "philox4x32-10 known answer %d: got %08x %08x %08x %08x", k, out[0], out[1], out[2],
              out[3]);
    }
}

/* x[i] = 1 + (first + i) % 7 * 0.25 (the same values wherever a piece starts), dropped with
 * (p, key, first): the n results into vals. */
static bool draw_at(lt_device *dev, int64_t n, float p, uint64_t key, uint64_t first,
                    bool in_place, bool bwd, float *vals)
{
    lt_tensor *x = lt_tensor_new_1d(dev, LT_F32, n), *o = lt_tensor_new_1d(dev, LT_F32, n);
    float *ones = malloc((size_t)n * sizeof(float));
    bool ok = x && o && ones;
    for (int64_t i = 0; ok && i < n; i++)
        ones[i] = 1.0f + (float)((first + (uint64_t)i) % 7) * 0.25f;
    ok = ok && lt_tensor_upload_f32(x, ones, n) == LT_OK;
    lt_tensor *dst = in_place ? x : o;
    if (ok)
        ok = (bwd ? lt_dropout_backward(dst, x, p, key, first)
                  : lt_dropout(dst, x, p, key, first)) == LT_OK;
    ok = ok && lt_tensor_download_f32(dst, vals, n) == LT_OK;
    CHECK(ok, "dropout on %s: %s", lt_device_name(dev), lt_device_last_error(dev));
    free(ones);
    lt_tensor_free(x);
    lt_tensor_free(o);
    return ok;
}

static bool draw(lt_device *dev, int64_t n, float p, uint64_t key, bool in_place, bool bwd,
                 float *vals)
{
    return draw_at(dev, n, p, key, 0, in_place, bwd, vals);
}

/* A tensor of n elements with counters from base, drawn whole on ref and in pieces of the
 * given lengths on dev (each at its own first): the pieces must equal the whole's elements. */
static void check_pieces(lt_device *ref, lt_device *dev, uint64_t base, int64_t n,
                         const int64_t *len, int np)
{
    float *whole = malloc((size_t)n * sizeof(float)), *piece = malloc((size_t)n * sizeof(float));
    if (whole && piece && draw_at(ref, n, 0.4f, 99, base, false, false, whole)) {
        int64_t t0 = 0;
        for (int k = 0; k < np && t0 < n; k++) {
            int64_t m = len[k] < n - t0 ? len[k] : n - t0;
            if (draw_at(dev, m, 0.4f, 99, base + (uint64_t)t0, k & 1, k & 2, piece))
                CHECK(memcmp(piece, whole + t0, (size_t)m * sizeof(float)) == 0,
                      "%s: piece [%lld, %lld) of a tensor at counter %llu differs from the whole",
                      lt_device_name(dev), (long long)t0, (long long)(t0 + m),
                      (unsigned long long)base);
            t0 += m;
        }
    }
    free(whole);
    free(piece);
}

/* Piece lengths: unaligned starts, one element, more than a workgroup's 1024. */
static const int64_t PIECES[6] = {3, 1, 130, 4, 517, 1000};
/* A base whose blocks cross from 2^32 - 2 to 2^32 (the counter's high word). */
#define HIGH_BASE ((((uint64_t)1 << 32) - 2) * 4 + 1)
/* The mask of the first 64 elements for p = 0.3 and key 0x0123456789abcdef, bit i = kept,
 * from a Python implementation of compute.h's definition (52 kept). */
#define PY_MASK 0x6e7eff37fbffb7fbull

static void test_cpu(void)
{
    lt_device *d1 = lt_device_open("cpu", 1, err, sizeof err);
    lt_device *d2 = lt_device_open("cpu", 2, err, sizeof err);
    CHECK(d1 && d2, "open cpu: %s", err);
    if (!d1 || !d2)
        goto out;
    const int64_t n = 1 << 18;
    const float p = 0.3f;
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    if (!a || !b)
        goto out_free;
    if (draw(d1, 64, p, 0x0123456789abcdefull, false, false, a)) {
        uint64_t bits = 0;
        for (int i = 0; i < 64; i++)
            bits |= (uint64_t)(a[i] != 0.0f) << i;
        CHECK(bits == PY_MASK, "mask of 64 elements %016llx, the Python reference %016llx",
              (unsigned long long)bits, (unsigned long long)PY_MASK);
        /* kept values are x / (1 - p) exactly as the header says */
        float s = 1.0f / (1.0f - p), x5 = 1.0f + 5 * 0.25f;
        CHECK(a[5] == 0.0f || a[5] == x5 * s, "kept value %g, expected %g", (double)a[5],
              (double)(x5 * s));
    }
    /* keep rate: binomial(n, 0.7); 6 standard deviations */
    if (draw(d2, n, p, 42, false, false, a)) {
        int64_t kept = 0;
        for (int64_t i = 0; i < n; i++)
            kept += a[i] != 0.0f;
        double mean = 0.7 * (double)n, sd = sqrt((double)n * 0.7 * 0.3);
        CHECK(fabs((double)kept - mean) <= 6 * sd, "kept %lld of %lld, expected %.0f +- %.0f",
              (long long)kept, (long long)n, mean, 6 * sd);
        printf("p = 0.3: kept %.5f of %lld elements\n", (double)kept / (double)n, (long long)n);
    }
    /* one thread and two, in place, and the backward: the same values */
    const struct {
        lt_device *d;
        bool in_place, bwd;
    } v[3] = {{d1, false, false}, {d2, true, false}, {d1, true, true}};
    for (int k = 0; k < 3; k++)
        if (draw(v[k].d, n, p, 42, v[k].in_place, v[k].bwd, b))
            CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0,
                  "variant %d (threads, in place, backward) draws another mask", k);
    /* another key, another mask; p = 0 keeps every element unscaled */
    if (draw(d2, n, p, 43, false, false, b))
        CHECK(memcmp(a, b, (size_t)n * sizeof(float)) != 0, "keys 42 and 43 draw one mask");
    if (draw(d2, 1000, 0.0f, 7, false, false, b)) {
        bool all = true;
        for (int i = 0; i < 1000; i++)
            all = all && b[i] == 1.0f + (float)(i % 7) * 0.25f;
        CHECK(all, "p = 0 changed values");
    }
    /* first offsets the counter: rows [t0, t0 + n) of a [N, in] tensor drawn with first =
     * t0 * in are the whole's rows, at unaligned starts and across the 2^32nd block */
    check_pieces(d2, d1, 0, 1655, PIECES, 6);
    check_pieces(d1, d2, HIGH_BASE, 1655, PIECES, 6);
    if (draw(d2, 1000, p, 42, false, false, b) && draw_at(d2, 1000, p, 42, 4, false, false, a))
        CHECK(memcmp(a, b, 1000 * sizeof(float)) != 0, "first = 4 draws the mask of first = 0");
    /* bad probabilities, a counter past 2^64 */
    lt_tensor *x = lt_tensor_new_1d(d1, LT_F32, 8);
    if (x) {
        lt_status st = lt_dropout(x, x, 0.5f, 1, UINT64_MAX - 3);
        CHECK(st == LT_ERR_ARG && strstr(lt_device_last_error(d1), "overflows"),
              "counter overflow: %s (%s)", lt_status_str(st), lt_device_last_error(d1));
    }
    float bad[3] = {1.0f, -0.1f, NAN};
    for (int k = 0; x && k < 3; k++) {
        lt_status st = lt_dropout(x, x, bad[k], 1, 0);
        CHECK(st == LT_ERR_ARG && strstr(lt_device_last_error(d1), "[0, 1)"), "p = %g: %s (%s)",
              (double)bad[k], lt_status_str(st), lt_device_last_error(d1));
    }
    lt_tensor_free(x);
out_free:
    free(a);
    free(b);
out:
    lt_device_close(d1);
    lt_device_close(d2);
}

static void test_vulkan(void)
{
    lt_vk_device_info info[16];
    char why[256];
    int nd = lt_vk_enumerate(info, 16, why, sizeof why);
    if (nd <= 0) {
        SKIP("no Vulkan device: CPU vs Vulkan masks not compared");
        return;
    }
    int index = 0;
    for (int i = 0; i < nd; i++)
        if (strcmp(info[i].type, "cpu") == 0)
            index = i;
    setenv("LATHE_VK_VALIDATION", "1", 0);
    setenv("LATHE_CACHE_DIR", "off", 0);
    char spec[32];
    snprintf(spec, sizeof spec, "vulkan:%d", index);
    lt_device *cpu = lt_device_open("cpu", 2, err, sizeof err);
    lt_device *vk = lt_device_open(spec, 0, err, sizeof err);
    CHECK(cpu && vk, "open %s: %s", spec, err);
    /* awkward sizes: not a multiple of 4, and past one workgroup's 1024 elements */
    const int64_t sizes[4] = {1, 7, 1029, 300001};
    const uint64_t keys[2] = {0x0123456789abcdefull, 0xffffffff00000001ull};
    float *a = malloc(300001 * sizeof(float)), *b = malloc(300001 * sizeof(float));
    for (int s = 0; cpu && vk && a && b && s < 4; s++)
        for (int k = 0; k < 2; k++) {
            float p = k ? 0.1f : 0.5f;
            if (draw(cpu, sizes[s], p, keys[k], false, false, a) &&
                draw(vk, sizes[s], p, keys[k], s & 1, k, b))
                CHECK(memcmp(a, b, (size_t)sizes[s] * sizeof(float)) == 0,
                      "Vulkan and CPU dropout differ (n = %lld, key %d)", (long long)sizes[s], k);
        }
    /* at counter offsets: Vulkan pieces against the CPU's whole */
    if (cpu && vk) {
        check_pieces(cpu, vk, 0, 1655, PIECES, 6);
        check_pieces(cpu, vk, HIGH_BASE, 1655, PIECES, 6);
        check_pieces(cpu, vk, 3, 300001, (const int64_t[3]){1, 150000, 150000}, 3);
    }
    if (vk) {
        int msgs = lt_vk_validation_messages(vk);
        if (msgs < 0)
            SKIP("the Khronos validation layer is not installed: validation not checked");
        else
            CHECK(msgs == 0, "validation layer reported %d errors/warnings", msgs);
    }
    free(a);
    free(b);
    lt_device_close(vk);
    lt_device_close(cpu);
}

int main(void)
{
    test_philox_kat();
    test_cpu();
    test_vulkan();
    return test_summary();
}
