/*
 * test_compute_basics.c - the compute front end without the math: f16/bf16 conversions
 * (round to nearest even, subnormals, overflow, NaN), cast round trips through lt_copy,
 * device specs, tensors and views, memory accounting, profiling, determinism with many
 * threads, and bad input: every kind of wrong argument returns an error status whose message
 * names the op and the shapes, and nothing aborts.
 */
#include "ops_ref.h"

#include <stdio.h>
#include <string.h>

static lt_device *dev;

static float f_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_conversions(void)
{
    /* f16: exact values, ties to even, overflow, subnormals, NaN */
    CHECK(lt_f32_to_f16(1.0f) == 0x3c00, "f16(1)");
    CHECK(lt_f32_to_f16(-2.0f) == 0xc000, "f16(-2)");
    CHECK(lt_f32_to_f16(65504.0f) == 0x7bff, "f16 max");
    CHECK(lt_f32_to_f16(65519.0f) == 0x7bff, "65519 rounds down to max");
    CHECK(lt_f32_to_f16(65520.0f) == 0x7c00, "65520 ties to even = inf");
    CHECK(lt_f32_to_f16(1e9f) == 0x7c00, "overflow to inf");
    CHECK(lt_f32_to_f16(-INFINITY) == 0xfc00, "-inf");
    /* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0) */
    CHECK(lt_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie to even down");
    CHECK(lt_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie to even up");
    CHECK(lt_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01, "above the tie rounds up");
    CHECK(lt_f32_to_f16(0x1p-24f) == 0x0001, "smallest subnormal");
    CHECK(lt_f32_to_f16(0x1p-25f) == 0x0000, "half the smallest subnormal ties to 0");
    CHECK(lt_f32_to_f16(0x1.8p-24f) == 0x0002, "1.5 ulp subnormal ties to even 2");
    CHECK(lt_f32_to_f16(0x1p-14f) == 0x0400, "smallest normal");
    CHECK(lt_f32_to_f16(0x1.ffcp-15f) == 0x0400, "largest subnormal rounds up to normal");
    CHECK(lt_f32_to_f16(-0.0f) == 0x8000, "-0");
    uint16_t hn = lt_f32_to_f16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0, "NaN stays NaN (0x%04x)", hn);
    CHECK(isnan(lt_f16_to_f32(lt_f32_to_f16(f_of(0x7f800001)))), "signalling NaN stays NaN");
    CHECK(lt_f16_to_f32(0x0001) == 0x1p-24f, "subnormal to f32");
    CHECK(lt_f16_to_f32(0x7bff) == 65504.0f, "max to f32");
    CHECK(isinf(lt_f16_to_f32(0x7c00)), "inf to f32");
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) { /* every non-NaN f16 survives a round trip */
        float f = lt_f16_to_f32((uint16_t)h);
        if (!isnan(f) && lt_f32_to_f16(f) != h)
            bad++;
    }
    CHECK(bad == 0, "%d f16 values do not round-trip", bad);
    /* bf16 */
    CHECK(lt_f32_to_bf16(1.0f) == 0x3f80, "bf16(1)");
    CHECK(lt_f32_to_bf16(f_of(0x3f808000)) == 0x3f80, "bf16 tie to even down");
    CHECK(lt_f32_to_bf16(f_of(0x3f818000)) == 0x3f82, "bf16 tie to even up");
    CHECK(lt_f32_to_bf16(f_of(0x3f808001)) == 0x3f81, "bf16 above tie");
    CHECK(lt_f32_to_bf16(f_of(0x7f7fffff)) == 0x7f80, "bf16 overflow to inf");
    CHECK(isnan(lt_bf16_to_f32(lt_f32_to_bf16(NAN))), "bf16 NaN");
    CHECK(isnan(lt_bf16_to_f32(lt_f32_to_bf16(f_of(0x7f800001)))), "bf16 low-payload NaN");
    CHECK(lt_bf16_to_f32(0x3f80) == 1.0f, "bf16 to f32");
    bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = lt_bf16_to_f32((uint16_t)h);
        if (!isnan(f) && lt_f32_to_bf16(f) != h)
            bad++;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
}

static void test_copy_casts(void)
{
    float src[6] = {1.0f, 1.0f + 0x1p-11f, 65520.0f, -0x1p-25f, NAN, 3.14159f};
    lt_tensor *a = lt_tensor_new_1d(dev, LT_F32, 6), *h = lt_tensor_new_2d(dev, LT_F16, 2, 3);
    lt_tensor *b = lt_tensor_new_1d(dev, LT_BF16, 6), *back = lt_tensor_new_1d(dev, LT_F32, 6);
    lt_tensor_upload_f32(a, src, 6);
    CHECK(lt_copy(h, a) == LT_OK, "copy f32->f16: %s", lt_device_last_error(dev));
    CHECK(lt_copy(b, h) == LT_OK, "copy f16->bf16: %s", lt_device_last_error(dev));
    CHECK(lt_copy(back, h) == LT_OK, "copy f16->f32: %s", lt_device_last_error(dev));
    uint16_t hv[6];
    lt_tensor_download(h, hv, sizeof hv);
    for (int i = 0; i < 6; i++)
        CHECK(hv[i] == lt_f32_to_f16(src[i]) || (isnan(src[i]) && (hv[i] & 0x7fff) > 0x7c00),
              "copy cast element %d: 0x%04x", i, hv[i]);
    float fv[6];
    lt_tensor_download_f32(back, fv, 6);
    CHECK(fv[0] == 1.0f && fv[1] == 1.0f && isinf(fv[2]) && fv[3] == 0.0f && signbit(fv[3]) &&
              isnan(fv[4]),
          "f16 round trip values");
    lt_tensor_download_f32(b, fv, 6);
    CHECK(fv[0] == 1.0f && isnan(fv[4]) && fabsf(fv[5] - 3.140625f) < 1e-6f, "bf16 values");
    lt_tensor_free(a), lt_tensor_free(h), lt_tensor_free(b), lt_tensor_free(back);
}

static void test_tensors_and_memory(void)
{
    size_t base = lt_device_mem_in_use(dev);
    lt_device_reset_peak(dev);
    lt_tensor *t = lt_tensor_new_3d(dev, LT_F32, 2, 3, 4);
    CHECK(t && lt_tensor_numel(t) == 24 && lt_tensor_bytes(t) == 96, "new 3d");
    CHECK(lt_tensor_dim(t, -1) == 4 && lt_tensor_dim(t, 0) == 2 && lt_tensor_dim(t, 7) == 0,
          "dims");
    CHECK(lt_device_mem_in_use(dev) == base + 96, "mem in use %zu", lt_device_mem_in_use(dev));
    char d[64];
    CHECK(strcmp(lt_tensor_describe(t, d, sizeof d), "f32[2, 3, 4]") == 0, "describe: %s", d);
    float v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (float)i;
    lt_tensor_upload_f32(t, v, 24);
    int64_t vs[2] = {3, 4};
    lt_tensor *view = lt_tensor_view(t, 12, 2, vs);
    CHECK(view != NULL, "view: %s", lt_device_last_error(dev));
    CHECK(lt_device_mem_in_use(dev) == base + 96, "a view allocates nothing");
    float w[12];
    lt_tensor_download_f32(view, w, 12);
    CHECK(w[0] == 12.0f && w[11] == 23.0f, "view reads the parent's elements");
    lt_scale(view, 2.0f);
    lt_tensor_download_f32(t, v, 24);
    CHECK(v[11] == 11.0f && v[12] == 24.0f, "view writes into the parent");
    int64_t too_far[1] = {13};
    CHECK(lt_tensor_view(t, 12, 1, too_far) == NULL, "view past the end is refused");
    CHECK(strstr(lt_device_last_error(dev), "lt_tensor_view") != NULL, "view error names fn");
    lt_tensor *big = lt_tensor_new_1d(dev, LT_BF16, 1000);
    CHECK(lt_device_mem_peak(dev) >= base + 96 + 2000, "peak");
    lt_tensor_free(big);
    CHECK(lt_device_mem_in_use(dev) == base + 96, "free returns memory");
    CHECK(lt_device_mem_peak(dev) >= base + 2096, "peak keeps the high-water mark");
    int64_t bad[2] = {3, 0};
    CHECK(lt_tensor_new(dev, LT_F32, 2, bad) == NULL, "zero dim refused");
    CHECK(lt_tensor_new(dev, LT_F32, 5, bad) == NULL, "5-D refused");
    CHECK(lt_tensor_new(dev, (lt_dtype)9, 1, bad) == NULL, "bad dtype refused");
    CHECK(lt_tensor_upload(t, v, 95) == LT_ERR_SHAPE, "upload with wrong byte count");
    CHECK(lt_tensor_upload(t, NULL, 96) == LT_ERR_ARG, "upload from NULL");
    lt_tensor_set_name(t, "layers.0.h");
    CHECK(strcmp(lt_tensor_name(t), "layers.0.h") == 0, "name");
    lt_tensor_free(view);
    lt_tensor_free(t);
    /* profiling */
    lt_device_set_profiling(dev, true);
    lt_tensor *p = lt_tensor_new_1d(dev, LT_F32, 10);
    lt_fill(p, 1.0f);
    lt_fill(p, 2.0f);
    lt_scale(p, 2.0f);
    lt_profile_entry e[8];
    int n = lt_device_profile(dev, e, 8);
    CHECK(n == 2 && strcmp(e[0].op, "fill") == 0 && e[0].calls == 2 && e[1].calls == 1,
          "profile has %d entries", n);
    lt_device_set_profiling(dev, false);
    lt_tensor_free(p);
    /* leaving tensors for close to free is fine */
    lt_tensor_new_1d(dev, LT_F32, 5);
}

static void test_device_specs(void)
{
    char err[256];
    CHECK(lt_device_open("gpu", 0, err, sizeof err) == NULL && strstr(err, "gpu"),
          "unknown spec: %s", err);
    CHECK(lt_device_open("vulkan:x", 0, err, sizeof err) == NULL, "bad vulkan index");
    CHECK(lt_device_open("cpu", -1, err, sizeof err) == NULL, "negative threads");
    lt_device *d = lt_device_open("cpu", 3, err, sizeof err);
    CHECK(d && lt_device_threads(d) == 3 && lt_device_get_kind(d) == LT_DEVICE_CPU,
          "cpu with 3 threads");
    lt_device_close(d);
    lt_cpu_info info;
    lt_cpu_info_get(&info);
    CHECK(info.usable_cores >= 1 && info.logical_cores >= 1 && info.ram_bytes > 0,
          "cpu info: %d cores, %llu bytes", info.usable_cores,
          (unsigned long long)info.ram_bytes);
}

/* Every op called with a wrong argument returns the status and names op and shapes. */
static void expect(lt_status got, lt_status want, const char *op, const char *shape,
                   const char *what)
{
    const char *msg = lt_device_last_error(dev);
    CHECK(got == want, "%s: got %s, expected %s (%s)", what, lt_status_str(got),
          lt_status_str(want), msg);
    CHECK(strstr(msg, op) != NULL, "%s: message does not name %s: %s", what, op, msg);
    if (shape)
        CHECK(strstr(msg, shape) != NULL, "%s: message does not name %s: %s", what, shape, msg);
}

static void test_bad_input(void)
{
    char err[256];
    lt_device *other = lt_device_open("cpu", 1, err, sizeof err);
    lt_tensor *a = lt_tensor_new_2d(dev, LT_F32, 3, 4), *b = lt_tensor_new_2d(dev, LT_F32, 5, 6);
    lt_tensor *c = lt_tensor_new_2d(dev, LT_F32, 3, 6), *h = lt_tensor_new_2d(dev, LT_F16, 3, 4);
    lt_tensor *ids = lt_tensor_new_1d(dev, LT_I32, 3), *o = lt_tensor_new_2d(other, LT_F32, 4, 6);
    lt_tensor *one = lt_tensor_new_1d(dev, LT_F32, 1), *w4 = lt_tensor_new_1d(dev, LT_F32, 4);
    lt_tensor *r3 = lt_tensor_new_1d(dev, LT_F32, 3);
    lt_fill(a, 1.0f), lt_fill(b, 1.0f), lt_fill(w4, 1.0f);
    int32_t idv[3] = {0, 5, 1};
    lt_tensor_upload(ids, idv, sizeof idv);
    lt_tensor_set_name(b, "W_down");

    expect(lt_matmul(c, a, b, false, false, 1, 0), LT_ERR_SHAPE, "lt_matmul", "f32[5, 6]",
           "matmul K mismatch");
    CHECK(strstr(lt_device_last_error(dev), "W_down") != NULL, "names the tensor");
    expect(lt_matmul(c, a, NULL, false, false, 1, 0), LT_ERR_ARG, "lt_matmul", NULL,
           "matmul NULL B");
    expect(lt_matmul(c, a, o, false, false, 1, 0), LT_ERR_DEVICE_MISMATCH, "lt_matmul", NULL,
           "matmul devices");
    expect(lt_matmul(h, a, a, false, true, 1, 0), LT_ERR_DTYPE, "lt_matmul", "f16[3, 4]",
           "matmul f16 output");
    expect(lt_matmul(a, a, w4, false, false, 1, 0), LT_ERR_SHAPE, "lt_matmul", "f32[4]",
           "matmul 1-D operand");
    expect(lt_matmul(a, a, a, false, true, 1, 0), LT_ERR_SHAPE, "lt_matmul", NULL,
           "matmul C as an input");
    expect(lt_matmul_backward(b, NULL, c, a, b, false, false), LT_ERR_SHAPE,
           "lt_matmul_backward", NULL, "matmul backward shapes");
    expect(lt_rmsnorm(c, NULL, a, w4, 1e-5f), LT_ERR_SHAPE, "lt_rmsnorm", "f32[3, 6]",
           "rmsnorm out shape");
    expect(lt_rmsnorm(a, NULL, a, w4, 1e-5f), LT_ERR_ARG, "lt_rmsnorm", NULL,
           "rmsnorm in place is not allowed");
    expect(lt_rmsnorm(h, NULL, a, w4, 1e-5f), LT_ERR_DTYPE, "lt_rmsnorm", NULL,
           "rmsnorm f16 out");
    expect(lt_layernorm(a, NULL, NULL, a, w4, NULL, 1e-5f), LT_ERR_ARG, "lt_layernorm", NULL,
           "layernorm aliasing");
    expect(lt_embedding(c, a, ids), LT_ERR_SHAPE, "lt_embedding", NULL,
           "embedding width");
    lt_tensor *e = lt_tensor_new_2d(dev, LT_F32, 3, 4);
    expect(lt_embedding(e, a, ids), LT_ERR_ARG, "lt_embedding", "is 5", "id out of range");
    expect(lt_embedding(e, a, a), LT_ERR_DTYPE, "lt_embedding", NULL, "f32 ids");
    expect(lt_cross_entropy(one, NULL, NULL, a, ids, -100, 1, 0), LT_ERR_ARG,
           "lt_cross_entropy", NULL, "label out of range");
    expect(lt_cross_entropy(one, NULL, NULL, b, ids, -100, 1, 0), LT_ERR_SHAPE,
           "lt_cross_entropy", NULL, "label count");
    expect(lt_cross_entropy(r3, NULL, NULL, a, ids, -100, 1, 0), LT_ERR_SHAPE,
           "lt_cross_entropy", NULL, "loss of 3 elements");
    lt_tensor *inv2 = lt_tensor_new_1d(dev, LT_F32, 2), *inv3 = lt_tensor_new_1d(dev, LT_F32, 3);
    expect(lt_rope(a, ids, inv2, 1.0f), LT_ERR_SHAPE, "lt_rope", "f32[3, 4]", "rope 2-D");
    lt_tensor *x3 = lt_tensor_new_3d(dev, LT_F32, 3, 1, 4);
    expect(lt_rope(x3, ids, inv3, 1.0f), LT_ERR_SHAPE, "lt_rope", "inv_freq", "inv_freq size");
    expect(lt_rope(x3, ids, inv2, 0.0f), LT_ERR_ARG, "lt_rope", "mscale", "mscale 0");
    lt_tensor_free(inv2), lt_tensor_free(inv3), lt_tensor_free(x3);
    lt_tensor *q = lt_tensor_new_4d(dev, LT_F32, 1, 3, 6, 4), *k = lt_tensor_new_4d(dev, LT_F32, 1, 3, 4, 4);
    lt_tensor *qo = lt_tensor_new_4d(dev, LT_F32, 1, 3, 6, 4);
    lt_attn_params p = {0.5f, 0, 0, 0};
    expect(lt_attention(qo, NULL, q, k, k, NULL, &p), LT_ERR_SHAPE, "lt_attention", "f32[1, 3, 4, 4]",
           "Hkv does not divide H");
    expect(lt_attention(qo, NULL, q, q, q, NULL, NULL), LT_ERR_ARG, "lt_attention", NULL,
           "NULL params");
    lt_attn_params p2 = {0.5f, 0, 9, 0};
    expect(lt_attention(qo, NULL, q, q, q, NULL, &p2), LT_ERR_ARG, "lt_attention", NULL,
           "n_kv > Tk");
    lt_tensor *seg4 = lt_tensor_new_1d(dev, LT_I32, 4);
    expect(lt_attention(qo, NULL, q, q, q, seg4, &p), LT_ERR_SHAPE, "lt_attention", NULL,
           "seg with a wrong count");
    expect(lt_silu(c, a), LT_ERR_SHAPE, "lt_silu", NULL, "silu numel");
    expect(lt_add(a, a, o), LT_ERR_DEVICE_MISMATCH, "lt_add", NULL, "add across devices");
    expect(lt_axpy(a, 1, h), LT_ERR_DTYPE, "lt_axpy", "f16", "axpy f16");
    expect(lt_bias_add(a, r3), LT_ERR_SHAPE, "lt_bias_add", NULL, "bias width");
    lt_adamw_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
    expect(lt_adamw(a, a, c, c, &ap, 1), LT_ERR_SHAPE, "lt_adamw", NULL, "adamw numel");
    lt_tensor *m = lt_tensor_new_2d(dev, LT_F32, 3, 4), *vv = lt_tensor_new_2d(dev, LT_F32, 3, 4);
    lt_tensor *g = lt_tensor_new_2d(dev, LT_F32, 3, 4);
    expect(lt_adamw(a, g, m, vv, &ap, 1), LT_ERR_ARG, "lt_adamw", NULL, "adamw step 0");
    expect(lt_grad_norm(one, NULL, 0), LT_ERR_ARG, "lt_grad_norm", NULL, "no grads");
    lt_tensor *gs[2] = {a, h};
    expect(lt_grad_norm(one, gs, 2), LT_ERR_DTYPE, "lt_grad_norm", "grads[1]", "f16 grad");
    expect(lt_clip_grad_norm(gs, 1, one, -1), LT_ERR_ARG, "lt_clip_grad_norm", NULL,
           "negative max_norm");
    expect(lt_copy(ids, a), LT_ERR_SHAPE, "lt_copy", NULL, "copy numel");
    CHECK(lt_matmul(NULL, NULL, NULL, false, false, 1, 0) == LT_ERR_ARG, "all NULL");
    CHECK(lt_fill(NULL, 0) == LT_ERR_ARG, "fill NULL");
    /* nothing was recorded by the failing calls: a still holds ones */
    float av[12];
    lt_tensor_download_f32(a, av, 12);
    CHECK(av[0] == 1.0f && av[11] == 1.0f, "failing ops left a alone");
    lt_device_close(other);
}

static void test_determinism_threads(void)
{
    /* the same embedding backward and norm on 1 and on 4 threads: identical bits */
    char err[256];
    lt_device *d1 = lt_device_open("cpu", 1, err, sizeof err);
    lt_device *d4 = lt_device_open("cpu", 4, err, sizeof err);
    int64_t N = 5000, V = 50, D = 200;
    double *g = ref_randv(N * D, 1.0);
    int32_t *idv = malloc((size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++)
        idv[i] = (int32_t)(ref_next() % 4); /* very many repeats */
    float *r1 = malloc((size_t)(V * D) * 4), *r4 = malloc((size_t)(V * D) * 4);
    lt_device *ds[2] = {d1, d4};
    float *rs[2] = {r1, r4};
    for (int k = 0; k < 2; k++) {
        int64_t sg[2] = {N, D}, sn[1] = {N};
        lt_tensor *tg = ref_tensor(ds[k], LT_F32, g, 2, sg), *ti = ref_ids(ds[k], idv, 1, sn);
        lt_tensor *dt = lt_tensor_new_2d(ds[k], LT_F32, V, D);
        lt_fill(dt, 0.0f);
        CHECK(lt_embedding_backward(dt, tg, ti) == LT_OK, "%s", lt_device_last_error(ds[k]));
        lt_tensor_download_f32(dt, rs[k], V * D);
    }
    CHECK(memcmp(r1, r4, (size_t)(V * D) * 4) == 0, "embedding backward: 1 vs 4 threads differ");
    free(g), free(idv), free(r1), free(r4);
    lt_device_close(d1);
    lt_device_close(d4);
}

int main(void)
{
    char err[256];
    dev = lt_device_open("cpu", 0, err, sizeof err);
    CHECK(dev != NULL, "open cpu: %s", err);
    if (!dev)
        return test_summary();
    test_conversions();
    test_copy_casts();
    test_tensors_and_memory();
    test_device_specs();
    test_bad_input();
    test_determinism_threads();
    lt_device_close(dev);
    return test_summary();
}
