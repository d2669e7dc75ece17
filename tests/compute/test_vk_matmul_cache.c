/*
 * test_vk_matmul_cache.c - the Vulkan matmul variants and the on-disk pipeline cache.
 *
 * Variants: every matmul variant sums each output's K products in increasing k with fma, so
 * the texel-buffer kernels (matmul_txd on CPU-type devices, matmul_tx) must give exactly the
 * bits of the address-based kernel (LATHE_VK_NO_TEXEL=1), whose agreement with the CPU
 * backend test_ops_vulkan checks. Shapes cover vector loads (4-aligned rows) with tails,
 * element loads, every transpose, f32/f16/bf16, batches, and views at unaligned offsets.
 * Cache: closing a device writes the file; reopening accepts it; a corrupt, truncated,
 * foreign or garbage file is ignored (the device still works) and replaced by a good one.
 * Runs under the validation layer with zero messages allowed; skips without a device.
 */
#include "compute.h"
#include "test.h"
#include "vulkan/vk_debug.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], path[256];
static int index_;

static lt_device *open_vk(bool texel)
{
    char err[512], spec[32];
    snprintf(spec, sizeof spec, "vulkan:%d", index_);
    if (texel)
        unsetenv("LATHE_VK_NO_TEXEL");
    else
        setenv("LATHE_VK_NO_TEXEL", "1", 1);
    lt_device *d = lt_device_open(spec, 0, err, sizeof err);
    unsetenv("LATHE_VK_NO_TEXEL");
    CHECK(d != NULL, "open %s: %s", spec, err);
    return d;
}

static void fill_rand(float *v, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
}

/* C = op(A) op(B) on device d; A and B are views at element offset off of larger tensors. */
static float *run_matmul(lt_device *d, int64_t batch, int64_t M, int64_t N, int64_t K, bool ta,
                         bool tb, lt_dtype dt, int64_t off)
{
    int64_t na = batch * M * K, nb = K * N, nc = batch * M * N;
    lt_tensor *pa = lt_tensor_new_1d(d, dt, na + off), *pb = lt_tensor_new_1d(d, dt, nb + off);
    float *h = malloc((size_t)(na + nb + 2 * off) * 4), *c = malloc((size_t)nc * 4);
    fill_rand(h, na + off, 7u);
    lt_tensor_upload_f32(pa, h, na + off);
    fill_rand(h, nb + off, 11u);
    lt_tensor_upload_f32(pb, h, nb + off);
    int64_t sa[3] = {batch, ta ? K : M, ta ? M : K}, sb[2] = {tb ? N : K, tb ? K : N};
    lt_tensor *a = lt_tensor_view(pa, off, batch > 1 ? 3 : 2, batch > 1 ? sa : sa + 1);
    lt_tensor *b = lt_tensor_view(pb, off, 2, sb);
    lt_tensor *out = batch > 1 ? lt_tensor_new_3d(d, LT_F32, batch, M, N)
                               : lt_tensor_new_2d(d, LT_F32, M, N);
    lt_fill(out, 0.25f);
    lt_status st = lt_matmul(out, a, b, ta, tb, 0.75f, 0.5f);
    CHECK(st == LT_OK, "matmul on %s: %s", lt_device_name(d), lt_device_last_error(d));
    CHECK(lt_tensor_download_f32(out, c, nc) == LT_OK, "download: %s", lt_device_last_error(d));
    lt_tensor_free(out);
    lt_tensor_free(a);
    lt_tensor_free(b);
    lt_tensor_free(pa);
    lt_tensor_free(pb);
    free(h);
    return c;
}

static void test_variants_agree_bit_for_bit(void)
{
    lt_device *tex = open_vk(true), *plain = open_vk(false);
    if (!tex || !plain)
        goto close;
    static const int64_t shapes[][5] = {
        /* batch, M, N, K, view offset */
        {1, 68, 72, 36, 0}, {1, 65, 76, 20, 0}, {1, 12, 8, 132, 4}, {2, 20, 24, 16, 0},
        {1, 33, 17, 7, 0},  {1, 20, 24, 36, 1}, {1, 64, 64, 64, 3},
    };
    static const lt_dtype dts[3] = {LT_F32, LT_F16, LT_BF16};
    for (int s = 0; s < 7; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int k = 0; k < 3; k++) {
                const int64_t *g = shapes[s];
                bool ta = tr & 1, tb = tr & 2;
                bool pick = k == 0 || (k == 1 ? tr == 1 || tr == 2 : tr == 0 || tr == 3);
                if ((g[0] > 1 && ta) || !pick)
                    continue; /* 16-bit dtypes on two transposes each: fewer pipelines */
                float *x = run_matmul(tex, g[0], g[1], g[2], g[3], ta, tb, dts[k], g[4]);
                float *y = run_matmul(plain, g[0], g[1], g[2], g[3], ta, tb, dts[k], g[4]);
                size_t bytes = (size_t)(g[0] * g[1] * g[2]) * 4;
                CHECK(memcmp(x, y, bytes) == 0,
                      "texel and address matmul differ: %lldx%lldx%lldx%lld ta=%d tb=%d %s "
                      "offset %lld",
                      (long long)g[0], (long long)g[1], (long long)g[2], (long long)g[3], ta,
                      tb, lt_dtype_name(dts[k]), (long long)g[4]);
                free(x);
                free(y);
            }
close:
    CHECK(lt_vk_validation_messages(tex) <= 0 && lt_vk_validation_messages(plain) <= 0,
          "validation messages: %d / %d", lt_vk_validation_messages(tex),
          lt_vk_validation_messages(plain));
    if (tex)
        lt_device_close(tex);
    if (plain)
        lt_device_close(plain);
}

static long file_size(void)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Rewrite byte at of the cache file (negative: from the end) with x, or cut it to len. */
static void damage(long at, int x, long len)
{
    long n = file_size();
    unsigned char *b = malloc((size_t)n);
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(b, 1, (size_t)n, f) == (size_t)n, "read the cache file");
    if (f)
        fclose(f);
    if (at < 0)
        at += n;
    if (x >= 0)
        b[at] = (unsigned char)x;
    f = fopen(path, "wb");
    fwrite(b, 1, (size_t)(len >= 0 ? len : n), f);
    fclose(f);
    free(b);
}

/* Open, check what was accepted, run a matmul (compiles a pipeline), close (saves). */
static long cycle(void)
{
    lt_device *d = open_vk(true);
    if (!d)
        return -1;
    long got = lt_vk_pipeline_cache_loaded(d);
    float *c = run_matmul(d, 1, 8, 8, 8, false, false, LT_F32, 0);
    free(c);
    CHECK(lt_vk_validation_messages(d) <= 0, "validation messages: %d",
          lt_vk_validation_messages(d));
    lt_device_close(d);
    return got;
}

static void test_pipeline_cache_file(void)
{
    setenv("LATHE_CACHE_DIR", dir, 1);
    unlink(path);
    CHECK(cycle() == 0, "no cache file: nothing loaded");
    long n = file_size();
    CHECK(n > 64, "closing the device wrote %s (%ld bytes)", path, n);
    CHECK(cycle() > 0, "a good cache file is loaded");
    damage(-1, 0x5a ^ 0xff, -1); /* flip the last data byte: checksum */
    CHECK(cycle() == 0, "a corrupt cache file is ignored");
    CHECK(cycle() > 0, "and replaced by a good one");
    damage(16, 0x77, -1); /* the device id in the header: a foreign file */
    CHECK(cycle() == 0, "a cache file of another device is ignored");
    damage(0, -1, 40); /* truncated inside the header */
    CHECK(cycle() == 0, "a truncated cache file is ignored");
    FILE *f = fopen(path, "wb");
    fputs("not a cache at all\n", f);
    fclose(f);
    CHECK(cycle() == 0, "a garbage file is ignored");
    CHECK(cycle() > 0, "the cache works again after garbage");
    setenv("LATHE_CACHE_DIR", "off", 1);
    unlink(path);
    CHECK(cycle() == 0 && file_size() < 0, "LATHE_CACHE_DIR=off writes no file");
}

int main(void)
{
    lt_vk_device_info info[16];
    char why[256];
    int n = lt_vk_enumerate(info, 16, why, sizeof why);
    if (n <= 0) {
        SKIP("no Vulkan device (%s): the Vulkan matmul and cache were not tested",
             n < 0 ? why : "no physical devices");
        return test_summary();
    }
    for (int i = 0; i < n; i++) /* prefer a CPU-type device (lavapipe): the one CI has */
        if (strcmp(info[i].type, "cpu") == 0)
            index_ = i;
    setenv("LATHE_VK_VALIDATION", "1", 0);
    snprintf(dir, sizeof dir, "/tmp/lathe-vkcache-XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return test_summary();
    }
    snprintf(path, sizeof path, "%s/vkpipelines-%04x-%04x.bin", dir, info[index_].vendor_id,
             info[index_].device_id);
    setenv("LATHE_CACHE_DIR", "off", 1);
    test_variants_agree_bit_for_bit();
    test_pipeline_cache_file();
    unlink(path);
    rmdir(dir);
    return test_summary();
}
