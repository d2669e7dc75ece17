/*
 * test_ops_vulkan.c - every op of the Vulkan backend, forward and backward, against the CPU
 * backend on random inputs of awkward shapes, under the Khronos validation layer (when it is
 * installed) with zero errors or warnings allowed; determinism (same op twice, same bits); a
 * tensor over 128 MiB (the maxStorageBufferRange of lavapipe); matmuls with K past
 * lavapipe 22.3's loop budget and K split into slices; and bad input (no loader, no
 * device, out of memory, bad ids) leaving the CPU backend usable. Skips, never passes, when
 * no Vulkan device exists.
 *
 * Tolerances. fp32 results: normalised mean squared error <= 1e-10 and max relative error
 * <= 1e-4, the relative error of an element taken against max(|ref|, 1e-2 * max|ref|): a
 * value that cancels to near zero (a layernorm output next to its bias, a saturated GELU
 * slope, a gradient summing terms of both signs) carries rounding noise on the scale of its
 * terms, so it is judged on the tensor's scale (1e-6 of its largest element) instead. f16/bf16
 * storage: both backends receive the same rounded values (conversion happens on the host,
 * round to nearest even) and compute in fp32, so the same fp32 bounds apply to their results;
 * conversions themselves (lt_copy into f16/bf16) must match bit for bit.
 */
#include "compute.h"
#include "test.h"
#include "vulkan/vk_debug.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static lt_device *cpu, *vk;
static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t next_u64(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float frand(void) { return (float)((double)(next_u64() >> 11) / 9007199254740992.0 * 2 - 1); }

/* the same tensor on both devices */
typedef struct pair {
    lt_tensor *c, *g;
} pair;

static pair mk(lt_dtype dt, int nd, const int64_t *shape, float scale)
{
    pair p = {lt_tensor_new(cpu, dt, nd, shape), lt_tensor_new(vk, dt, nd, shape)};
    if (!p.c || !p.g) {
        CHECK(0, "tensor_new: %s / %s", lt_device_last_error(cpu), lt_device_last_error(vk));
        exit(test_summary() | 1);
    }
    int64_t n = lt_tensor_numel(p.c);
    if (dt == LT_I32) {
        int32_t *v = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++)
            v[i] = (int32_t)(next_u64() % (uint64_t)(scale > 0 ? scale : 1));
        lt_tensor_upload(p.c, v, (size_t)n * 4);
        lt_tensor_upload(p.g, v, (size_t)n * 4);
        free(v);
        return p;
    }
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    lt_tensor_upload_f32(p.c, v, n);
    lt_tensor_upload_f32(p.g, v, n);
    free(v);
    return p;
}
#define S(...) (const int64_t[]){__VA_ARGS__}
#define MK(dt, nd, scale, ...) mk(dt, nd, S(__VA_ARGS__), scale)

static void upload_ids(pair p, const int32_t *v)
{
    size_t b = lt_tensor_bytes(p.c);
    lt_tensor_upload(p.c, v, b);
    lt_tensor_upload(p.g, v, b);
}

static void drop(pair p)
{
    lt_tensor_free(p.c);
    lt_tensor_free(p.g);
}

/* Compare the Vulkan result with the CPU's. */
static void cmp(const char *what, pair p)
{
    int64_t n = lt_tensor_numel(p.c);
    float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    lt_status s1 = lt_tensor_download_f32(p.c, a, n), s2 = lt_tensor_download_f32(p.g, b, n);
    CHECK(s1 == LT_OK && s2 == LT_OK, "%s: download: %s / %s", what, lt_device_last_error(cpu),
          lt_device_last_error(vk));
    double se = 0, sr = 0, maxabs = 0;
    for (int64_t i = 0; i < n; i++)
        maxabs = fmax(maxabs, fabs(a[i]));
    double floor_ = fmax(1e-2 * maxabs, 1e-30), maxrel = 0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)b[i] - a[i];
        se += d * d;
        sr += (double)a[i] * a[i];
        double r = fabs(d) / fmax(fabs(a[i]), floor_);
        if (!(r <= maxrel)) { /* NaN counts as worst */
            maxrel = isnan(r) ? INFINITY : r;
            worst = i;
        }
    }
    double nmse = sr > 0 ? se / sr : se;
    CHECK(nmse <= 1e-10 && maxrel <= 1e-4,
          "%s: nmse %.3g max rel %.3g (element %lld: cpu %.9g vulkan %.9g)", what, nmse, maxrel,
          (long long)worst, n ? a[worst] : 0.0, n ? b[worst] : 0.0);
    free(a);
    free(b);
}

static bool same_bits(const lt_tensor *x, const lt_tensor *y)
{
    size_t n = lt_tensor_bytes(x);
    char *a = malloc(n), *b = malloc(n);
    bool ok = lt_tensor_download(x, a, n) == LT_OK && lt_tensor_download(y, b, n) == LT_OK &&
              memcmp(a, b, n) == 0;
    free(a);
    free(b);
    return ok;
}

/* run an op on both devices: X(p) picks the pair member of the side being run */
#define BOTH(...)                                                                             \
    do {                                                                                      \
        for (int side_ = 0; side_ < 2; side_++) {                                             \
            lt_status st_ = (__VA_ARGS__);                                                    \
            CHECK(st_ == LT_OK, "%s on %s: %s", #__VA_ARGS__, side_ ? "vulkan" : "cpu",       \
                  lt_device_last_error(side_ ? vk : cpu));                                    \
        }                                                                                     \
    } while (0)
#define X(p) (side_ ? (p).g : (p).c)

static const lt_dtype FLOATS[3] = {LT_F32, LT_F16, LT_BF16};

static void test_fill_copy(void)
{
    int64_t sizes[] = {1, 7, 257, 1000};
    for (int d = 0; d < 4; d++)
        for (int s = 0; s < 4; s++) {
            pair t = mk((lt_dtype)d, 1, &sizes[s], 5);
            BOTH(lt_fill(X(t), -3.75f));
            CHECK(same_bits(t.c, t.g), "fill %s[%lld]", lt_dtype_name((lt_dtype)d),
                  (long long)sizes[s]);
            drop(t);
        }
    /* a 16-bit view at an odd offset: neighbours stay untouched */
    for (int d = 1; d < 3; d++) {
        pair t = MK(FLOATS[d], 1, 2, 16);
        lt_tensor *vc = lt_tensor_view(t.c, 3, 1, S(7)), *vg = lt_tensor_view(t.g, 3, 1, S(7));
        CHECK(lt_fill(vc, 9.5f) == LT_OK && lt_fill(vg, 9.5f) == LT_OK, "fill view");
        CHECK(same_bits(t.c, t.g), "fill of an odd %s view", lt_dtype_name(FLOATS[d]));
        lt_tensor_free(vc);
        lt_tensor_free(vg);
        drop(t);
    }
    /* conversions, including subnormals, ties and overflow, bit-exact */
    int64_t n = 4099;
    pair src = MK(LT_F32, 1, 1, n);
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)next_u64();
        if (i % 3 == 0)
            bits = (bits & 0x8fffffffu) | 0x30000000u; /* small: f16 subnormals */
        if (i % 7 == 0)
            bits &= 0xffff8000u | (1u << 12) | (1u << 15); /* near ties */
        memcpy(&v[i], &bits, 4);
        if (isnan(v[i]))
            v[i] = 1.0f;
    }
    v[0] = 65520.0f;
    v[1] = 65519.0f;
    v[2] = 5.96e-8f;
    v[3] = -2.98e-8f;
    lt_tensor_upload(src.c, v, (size_t)n * 4);
    lt_tensor_upload(src.g, v, (size_t)n * 4);
    free(v);
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            pair t1 = MK(FLOATS[a], 1, 1, n), t2 = MK(FLOATS[b], 1, 1, n);
            BOTH(lt_copy(X(t1), X(src)));
            BOTH(lt_copy(X(t2), X(t1)));
            CHECK(same_bits(t1.c, t1.g) && same_bits(t2.c, t2.g), "copy f32->%s->%s",
                  lt_dtype_name(FLOATS[a]), lt_dtype_name(FLOATS[b]));
            drop(t1);
            drop(t2);
        }
    drop(src);
}

static void test_matmul(void)
{
    /* the last two have 4-aligned contiguous dimensions (vectorised texel loads) with tails */
    static const int64_t shapes[][3] = {{1, 1, 1},    {3, 7, 33},   {33, 17, 7},
                                        {65, 70, 129}, {68, 72, 36}, {12, 20, 76}};
    for (int s = 0; s < 6; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int dt = 0; dt < 3; dt++) {
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                bool ta = tr & 1, tb = tr & 2;
                lt_dtype adt = FLOATS[dt], bdt = FLOATS[(dt + s) % 3];
                pair a = ta ? MK(adt, 2, 1, K, M) : MK(adt, 2, 1, M, K);
                pair b = tb ? MK(bdt, 2, 1, N, K) : MK(bdt, 2, 1, K, N);
                pair c = MK(LT_F32, 2, 1, M, N);
                BOTH(lt_matmul(X(c), X(a), X(b), ta, tb, 0.75f, s == 2 || s == 5 ? 0.5f : 0.0f));
                char what[128];
                snprintf(what, sizeof what, "matmul %lldx%lldx%lld ta=%d tb=%d %s x %s",
                         (long long)M, (long long)N, (long long)K, ta, tb, lt_dtype_name(adt),
                         lt_dtype_name(bdt));
                cmp(what, c);
                if (s == 3 && dt == 0) {
                    pair dc = MK(LT_F32, 2, 1, M, N), da = MK(LT_F32, 2, 0, 1, 1);
                    drop(da);
                    da = ta ? MK(LT_F32, 2, 1, K, M) : MK(LT_F32, 2, 1, M, K);
                    pair db = tb ? MK(LT_F32, 2, 1, N, K) : MK(LT_F32, 2, 1, K, N);
                    BOTH(lt_matmul_backward(X(da), X(db), X(dc), X(a), X(b), ta, tb));
                    cmp("matmul_backward dA", da);
                    cmp("matmul_backward dB", db);
                    drop(dc);
                    drop(da);
                    drop(db);
                }
                drop(a);
                drop(b);
                drop(c);
            }
    /* batched, with a 2-D weight broadcast over the batch */
    pair a = MK(LT_F32, 3, 1, 3, 9, 35), w = MK(LT_BF16, 2, 1, 13, 35),
         c = MK(LT_F32, 3, 1, 3, 9, 13);
    BOTH(lt_matmul(X(c), X(a), X(w), false, true, 1.0f, 0.0f));
    cmp("batched matmul, broadcast weight", c);
    pair b3 = MK(LT_F16, 3, 1, 3, 35, 6), c3 = MK(LT_F32, 3, 1, 3, 9, 6);
    BOTH(lt_matmul(X(c3), X(a), X(b3), false, false, 1.0f, 0.0f));
    cmp("batched matmul", c3);
    /* determinism */
    lt_tensor *again = lt_tensor_new_3d(vk, LT_F32, 3, 9, 13);
    lt_matmul(again, a.g, w.g, false, true, 1.0f, 0.0f);
    CHECK(same_bits(again, c.g), "matmul twice gives the same bits");
    lt_tensor_free(again);
    drop(a);
    drop(w);
    drop(c);
    drop(b3);
    drop(c3);
}

static void test_embedding_norms(void)
{
    for (int dt = 0; dt < 3; dt++) {
        int64_t V = 37, D = 33, N = 45;
        pair table = MK(FLOATS[dt], 2, 1, V, D), ids = MK(LT_I32, 1, 37, N);
        int32_t idv[45];
        for (int i = 0; i < 45; i++)
            idv[i] = (int32_t)(next_u64() % 9) * 4; /* many repeats */
        upload_ids(ids, idv);
        pair out = MK(LT_F32, 2, 1, N, D), dt_ = MK(LT_F32, 2, 1, V, D);
        BOTH(lt_embedding(X(out), X(table), X(ids)));
        cmp("embedding", out);
        BOTH(lt_embedding_backward(X(dt_), X(out), X(ids)));
        cmp("embedding_backward", dt_);
        drop(table);
        drop(ids);
        drop(out);
        drop(dt_);
    }
    { /* the counting sort of the backward across several 256-token blocks, twice */
        int64_t V = 61, D = 5, N = 700;
        pair ids = MK(LT_I32, 1, 61, N), dout = MK(LT_F32, 2, 1, N, D),
             dtab = MK(LT_F32, 2, 1, V, D);
        int32_t idv[700];
        for (int i = 0; i < 700; i++)
            idv[i] = i % 5 == 0 ? 7 : (int32_t)(next_u64() % 61); /* one very frequent id */
        upload_ids(ids, idv);
        BOTH(lt_embedding_backward(X(dtab), X(dout), X(ids)));
        cmp("embedding_backward over 700 tokens", dtab);
        lt_tensor *again = lt_tensor_new_2d(vk, LT_F32, V, D);
        lt_fill(again, 0.0f);
        lt_tensor *once = lt_tensor_new_2d(vk, LT_F32, V, D);
        lt_fill(once, 0.0f);
        lt_embedding_backward(once, dout.g, ids.g);
        lt_embedding_backward(again, dout.g, ids.g);
        CHECK(same_bits(again, once), "embedding_backward twice gives the same bits");
        lt_tensor_free(again);
        lt_tensor_free(once);
        drop(ids);
        drop(dout);
        drop(dtab);
    }
    { /* more tokens than Mesa 22.3's lavapipe lets one invocation loop over: the sort walks
       * every token (about 70,300 iterations here), so it runs in slices there */
        int64_t V = 1000, D = 4, N = 70000;
        pair ids = MK(LT_I32, 1, 1000, N), dout = MK(LT_F32, 2, 1, N, D),
             dtab = MK(LT_F32, 2, 1, V, D);
        BOTH(lt_embedding_backward(X(dtab), X(dout), X(ids)));
        cmp("embedding_backward over 70,000 tokens", dtab);
        drop(ids);
        drop(dout);
        drop(dtab);
    }
    /* 300 rows: the dw/db column sums split into partitions (two-stage reduction) */
    int64_t Ns[] = {1, 7, 33, 300}, Ds[] = {3, 257, 1031, 5};
    for (int k = 0; k < 4; k++) {
        int64_t N = Ns[k], D = Ds[k];
        lt_dtype wdt = FLOATS[k % 3];
        pair x = MK(LT_F32, 2, 2, N, D), w = MK(wdt, 1, 1, D), b = MK(wdt, 1, 1, D);
        pair out = MK(LT_F32, 2, 1, N, D), rstd = MK(LT_F32, 1, 1, N), mean = MK(LT_F32, 1, 1, N);
        pair g = MK(LT_F32, 2, 1, N, D), dx = MK(LT_F32, 2, 1, N, D), dw = MK(LT_F32, 1, 1, D),
             db = MK(LT_F32, 1, 1, D);
        BOTH(lt_rmsnorm(X(out), X(rstd), X(x), X(w), 1e-5f));
        cmp("rmsnorm", out);
        cmp("rmsnorm rstd", rstd);
        BOTH(lt_rmsnorm_backward(X(dx), X(dw), X(g), X(x), X(w), X(rstd)));
        cmp("rmsnorm_backward dx", dx);
        cmp("rmsnorm_backward dw", dw);
        BOTH(lt_layernorm(X(out), X(mean), X(rstd), X(x), X(w), X(b), 1e-5f));
        cmp("layernorm", out);
        cmp("layernorm mean", mean);
        BOTH(lt_layernorm_backward(X(dx), X(dw), X(db), X(g), X(x), X(w), X(mean), X(rstd)));
        cmp("layernorm_backward dx", dx);
        cmp("layernorm_backward dw", dw);
        cmp("layernorm_backward db", db);
        BOTH(lt_bias_add(X(out), X(b)));
        cmp("bias_add", out);
        BOTH(lt_bias_backward(X(db), X(g)));
        cmp("bias_backward", db);
        pair xs[] = {x, w, b, out, rstd, mean, g, dx, dw, db};
        for (int i = 0; i < 10; i++)
            drop(xs[i]);
    }
}

static void test_rope_attention(void)
{
    /* plain (theta 10000), then inverse frequencies rescaled as Llama 3 / YaRN do with
     * YaRN's cos/sin factor (positions below 300: device cos/sin precision is only specified
     * near [-pi, pi]) */
    for (int r = 0; r < 2; r++) {
        int64_t hd = r ? 66 : 10;
        pair x = MK(LT_F32, 3, 1, 11, 3, hd), pos = MK(LT_I32, 1, r ? 300 : 50, 11);
        pair inv = MK(LT_F32, 1, 1, hd / 2);
        float f[64];
        lt_rope_inv_freq(f, hd, r ? 500000.0f : 10000.0f);
        for (int64_t i = 0; r && i < hd / 2; i++)
            f[i] *= i < 9 ? 1.0f : i < 20 ? 0.3f + 0.01f * (float)i : 0.125f;
        upload_ids(inv, (const int32_t *)f);
        float ms = r ? 1.1386294f : 1.0f;
        BOTH(lt_rope(X(x), X(pos), X(inv), ms));
        cmp(r ? "rope scaled" : "rope", x);
        BOTH(lt_rope_backward(X(x), X(pos), X(inv), ms));
        cmp(r ? "rope_backward scaled" : "rope_backward", x);
        drop(x);
        drop(pos);
        drop(inv);
    }

    struct {
        int64_t B, Tq, Tk, H, Hkv, hd, q_offset, n_kv;
        bool seg;
        lt_dtype kvdt;
        int64_t window;
    } cases[] = {
        {2, 70, 70, 4, 2, 24, 0, 0, false, LT_F32, 0},
        {1, 37, 37, 3, 1, 33, 0, 0, true, LT_F32, 0},
        {2, 3, 40, 2, 2, 16, 30, 33, false, LT_F16, 0},
        {1, 5, 9, 4, 1, 7, 4, 0, false, LT_BF16, 0},
        {1, 11, 11, 2, 1, 256, 0, 0, false, LT_F16, 0}, /* the largest head dim */
        /* sliding windows: odd widths, past tile and workgroup edges, with segments, a
         * cache offset, one decoding step, and width 2 (width 1 makes every gradient an exact
         * zero on the CPU and rounding noise on the device) */
        {2, 150, 150, 4, 2, 24, 0, 0, false, LT_F32, 37},
        {1, 37, 37, 3, 1, 33, 0, 0, true, LT_F32, 9},
        {1, 21, 90, 2, 1, 16, 60, 81, false, LT_F16, 13},
        {2, 1, 70, 4, 2, 8, 69, 0, false, LT_BF16, 65},
        {1, 13, 13, 2, 2, 7, 0, 0, false, LT_F32, 2},
    };
    for (int k = 0; k < 10; k++) {
        int64_t B = cases[k].B, Tq = cases[k].Tq, Tk = cases[k].Tk, H = cases[k].H,
                Hkv = cases[k].Hkv, hd = cases[k].hd;
        lt_attn_params p = {1.0f / sqrtf((float)hd), cases[k].q_offset, cases[k].n_kv,
                            cases[k].window};
        pair q = MK(LT_F32, 4, 1, B, Tq, H, hd), kk = MK(cases[k].kvdt, 4, 1, B, Tk, Hkv, hd),
             v = MK(cases[k].kvdt, 4, 1, B, Tk, Hkv, hd), out = MK(LT_F32, 4, 1, B, Tq, H, hd),
             lse = MK(LT_F32, 3, 1, B, H, Tq), seg = MK(LT_I32, 2, 1, B, Tq);
        if (cases[k].seg) {
            int32_t sv[256];
            for (int i = 0; i < Tq; i++)
                sv[i] = i < 12 ? 0 : i < 30 ? 1 : 2;
            upload_ids(seg, sv);
        }
        const lt_tensor *sc = cases[k].seg ? seg.c : NULL, *sg = cases[k].seg ? seg.g : NULL;
        BOTH(lt_attention(X(out), X(lse), X(q), X(kk), X(v), side_ ? sg : sc, &p));
        char what[96];
        snprintf(what, sizeof what, "attention case %d", k);
        cmp(what, out);
        cmp("attention lse", lse);
        lt_tensor *out2 = lt_tensor_new(vk, LT_F32, 4, S(B, Tq, H, hd));
        lt_attention(out2, NULL, q.g, kk.g, v.g, sg, &p);
        CHECK(same_bits(out2, out.g), "attention case %d twice gives the same bits", k);
        lt_tensor_free(out2);
        if (cases[k].kvdt == LT_F32) {
            pair dout = MK(LT_F32, 4, 1, B, Tq, H, hd), dq = MK(LT_F32, 4, 1, B, Tq, H, hd),
                 dk = MK(LT_F32, 4, 1, B, Tk, Hkv, hd), dv = MK(LT_F32, 4, 1, B, Tk, Hkv, hd);
            BOTH(lt_attention_backward(X(dq), X(dk), X(dv), X(dout), X(q), X(kk), X(v), X(out),
                                       X(lse), side_ ? sg : sc, &p));
            cmp("attention_backward dq", dq);
            cmp("attention_backward dk", dk);
            cmp("attention_backward dv", dv);
            lt_tensor *dk2 = lt_tensor_new(vk, LT_F32, 4, S(B, Tk, Hkv, hd));
            lt_tensor *dq2 = lt_tensor_new(vk, LT_F32, 4, S(B, Tq, H, hd));
            lt_tensor *dv2 = lt_tensor_new(vk, LT_F32, 4, S(B, Tk, Hkv, hd));
            lt_attention_backward(dq2, dk2, dv2, dout.g, q.g, kk.g, v.g, out.g, lse.g, sg, &p);
            CHECK(same_bits(dk2, dk.g) && same_bits(dq2, dq.g),
                  "attention_backward twice gives the same bits");
            lt_tensor_free(dk2);
            lt_tensor_free(dq2);
            lt_tensor_free(dv2);
            drop(dout);
            drop(dq);
            drop(dk);
            drop(dv);
        }
        drop(q);
        drop(kk);
        drop(v);
        drop(out);
        drop(lse);
        drop(seg);
    }
}

static void test_elementwise_losses(void)
{
    int64_t n = 1001;
    pair x = MK(LT_F32, 1, 6, n), y = MK(LT_F32, 1, 3, n), g = MK(LT_F32, 1, 1, n),
         o = MK(LT_F32, 1, 1, n), o2 = MK(LT_F32, 1, 1, n);
    BOTH(lt_silu(X(o), X(x)));
    cmp("silu", o);
    BOTH(lt_silu_backward(X(o), X(g), X(x)));
    cmp("silu_backward", o);
    BOTH(lt_gelu(X(o), X(x)));
    cmp("gelu", o);
    BOTH(lt_gelu_backward(X(o), X(g), X(x)));
    cmp("gelu_backward", o);
    BOTH(lt_swiglu(X(o), X(x), X(y)));
    cmp("swiglu", o);
    BOTH(lt_swiglu_backward(X(o), X(o2), X(g), X(x), X(y)));
    cmp("swiglu_backward dgate", o);
    cmp("swiglu_backward dup", o2);
    BOTH(lt_add(X(o), X(x), X(y)));
    cmp("add", o);
    BOTH(lt_scale(X(o), -0.3f));
    cmp("scale", o);
    BOTH(lt_axpy(X(o), 1.7f, X(g)));
    cmp("axpy", o);

    /* cross-entropy: ignored rows, dlogits aliasing logits, an explicit denominator */
    int64_t N = 9, V = 301;
    pair logits = MK(LT_F32, 2, 4, N, V), labels = MK(LT_I32, 1, 301, N), loss = MK(LT_F32, 1, 1, 1),
         rl = MK(LT_F32, 1, 1, N), dl = MK(LT_F32, 2, 1, N, V), lp = MK(LT_F32, 1, 1, N),
         dlp = MK(LT_F32, 2, 1, N, V), dout = MK(LT_F32, 1, 1, N);
    int32_t lab[9] = {0, 300, -100, 5, 17, -100, 200, 1, 299};
    upload_ids(labels, lab);
    BOTH(lt_cross_entropy(X(loss), X(rl), X(dl), X(logits), X(labels), -100, 1.0f, 0));
    cmp("cross_entropy loss", loss);
    cmp("cross_entropy row_loss", rl);
    cmp("cross_entropy dlogits", dl);
    BOTH(lt_cross_entropy(X(loss), NULL, NULL, X(logits), X(labels), -100, 0.5f, 40));
    cmp("cross_entropy loss, n_counted", loss);
    int32_t ids[9] = {0, 300, 2, 5, 17, 9, 200, 1, 299};
    upload_ids(labels, ids);
    BOTH(lt_logprob_gather(X(lp), X(logits), X(labels)));
    cmp("logprob_gather", lp);
    BOTH(lt_logprob_gather_backward(X(dlp), X(dout), X(logits), X(labels)));
    cmp("logprob_gather_backward", dlp);
    upload_ids(labels, lab);
    BOTH(lt_cross_entropy(X(loss), X(rl), X(logits), X(logits), X(labels), -100, 2.0f, 0));
    cmp("cross_entropy dlogits in place", logits);

    /* optimizer */
    for (int d = 0; d < 3; d++) {
        pair pp = MK(FLOATS[d], 1, 1, 333), gr = MK(LT_F32, 1, 1, 333), m = MK(LT_F32, 1, 0.1f, 333),
             v = MK(LT_F32, 1, 0.1f, 333);
        BOTH(lt_fill(X(v), 0.01f));
        lt_adamw_params ap = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 3};
        BOTH(lt_adamw(X(pp), X(gr), X(m), X(v), &ap, 0.5f));
        cmp("adamw param", pp);
        cmp("adamw m", m);
        cmp("adamw v", v);
        drop(pp);
        drop(gr);
        drop(m);
        drop(v);
    }
    pair norm = MK(LT_F32, 1, 1, 1);
    lt_tensor *gc[3] = {x.c, y.c, rl.c}, *gg[3] = {x.g, y.g, rl.g};
    BOTH(lt_grad_norm(X(norm), side_ ? gg : gc, 3));
    cmp("grad_norm", norm);
    BOTH(lt_clip_grad_norm(side_ ? gg : gc, 3, X(norm), 1.5f));
    cmp("clip_grad_norm", x);
    pair all[] = {x, y, g, o, o2, logits, labels, loss, rl, dl, lp, dlp, dout, norm};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

/* An embedding table of 50304 x 768 f32 (147 MiB) read and written beyond 128 MiB. */
static void test_big_tensor(void)
{
    const int64_t V = 50304, D = 768, N = 6;
    lt_tensor *table = lt_tensor_new_2d(vk, LT_F32, V, D);
    lt_tensor *ids = lt_tensor_new_1d(vk, LT_I32, N), *out = lt_tensor_new_2d(vk, LT_F32, N, D);
    float *host = malloc((size_t)(V * D) * 4);
    if (!table || !ids || !out || !host) {
        CHECK(0, "big tensor allocation: %s", lt_device_last_error(vk));
        goto done;
    }
    for (int64_t i = 0; i < V * D; i++)
        host[i] = (float)(i % 1000003) * 1e-3f;
    int32_t idv[6] = {50303, 0, 45000, 50303, 43700, 12};
    CHECK(lt_tensor_upload(table, host, (size_t)(V * D) * 4) == LT_OK, "upload big table");
    lt_tensor_upload(ids, idv, sizeof idv);
    CHECK(lt_embedding(out, table, ids) == LT_OK, "big embedding: %s", lt_device_last_error(vk));
    float *o = malloc((size_t)(N * D) * 4);
    lt_tensor_download(out, o, (size_t)(N * D) * 4);
    bool ok = true;
    for (int64_t i = 0; i < N; i++)
        ok = ok && memcmp(o + i * D, host + (int64_t)idv[i] * D, (size_t)D * 4) == 0;
    CHECK(ok, "embedding rows beyond 128 MiB match");
    /* backward into the big table: rows 50303 (twice), 45000, ... get dout added */
    CHECK(lt_fill(table, 0.0f) == LT_OK, "fill big table");
    CHECK(lt_embedding_backward(table, out, ids) == LT_OK, "big embedding_backward: %s",
          lt_device_last_error(vk));
    lt_tensor_download(table, host, (size_t)(V * D) * 4);
    ok = true;
    for (int64_t d = 0; d < D; d++) {
        ok = ok && host[50303 * D + d] == o[0 * D + d] + o[3 * D + d];
        ok = ok && host[45000 * D + d] == o[2 * D + d] && host[43700 * D + d] == o[4 * D + d];
        ok = ok && host[50302 * D + d] == 0.0f && host[44999 * D + d] == 0.0f;
    }
    CHECK(ok, "embedding_backward rows beyond 128 MiB accumulate in order, others untouched");
    free(o);
done:
    free(host);
    lt_tensor_free(table);
    lt_tensor_free(ids);
    lt_tensor_free(out);
}

static void test_bad_input(int index)
{
    /* out of memory: far more than the heap */
    lt_tensor *huge = lt_tensor_new_2d(vk, LT_F32, 1 << 20, 1 << 12); /* 16 GiB */
    CHECK(huge == NULL, "a 16 GiB tensor should not fit");
    const char *e = lt_device_last_error(vk);
    CHECK(strstr(e, "vulkan:") && strstr(e, "asked for") && strstr(e, "available"),
          "OOM message names device, bytes asked and available: %s", e);
    printf("OOM message: %s\n", e);
    /* a bad embedding id: zeros and an error at the next sync */
    lt_tensor *table = lt_tensor_new_2d(vk, LT_F32, 5, 4), *ids = lt_tensor_new_1d(vk, LT_I32, 2),
              *out = lt_tensor_new_2d(vk, LT_F32, 2, 4);
    int32_t idv[2] = {1, 7};
    lt_fill(table, 1.0f);
    lt_tensor_upload(ids, idv, sizeof idv);
    lt_embedding(out, table, ids);
    lt_status st = lt_device_sync(vk);
    CHECK(st == LT_ERR_ARG, "bad id reported at sync (got %s)", lt_status_str(st));
    CHECK(lt_device_sync(vk) == LT_OK, "the flag is cleared after it was reported");
    lt_tensor_free(table);
    lt_tensor_free(ids);
    lt_tensor_free(out);

    char err[512];
    lt_device *none = lt_device_open("vulkan:99", 0, err, sizeof err);
    CHECK(!none && strstr(err, "vulkan:99"), "no such device: %s", err);
    setenv("LATHE_VK_LOADER", "libvulkan-missing.so.1", 1);
    char spec[32];
    snprintf(spec, sizeof spec, "vulkan:%d", index);
    none = lt_device_open(spec, 0, err, sizeof err);
    CHECK(!none && strstr(err, "loader"), "no loader: %s", err);
    lt_vk_device_info info[4];
    char why[256];
    CHECK(lt_vk_enumerate(info, 4, why, sizeof why) == -1 && strstr(why, "loader"),
          "enumerate without a loader: %s", why);
    unsetenv("LATHE_VK_LOADER");
    /* the CPU backend is still fine */
    lt_tensor *t = lt_tensor_new_1d(cpu, LT_F32, 3);
    float v[3];
    CHECK(t && lt_fill(t, 2.0f) == LT_OK && lt_tensor_download_f32(t, v, 3) == LT_OK &&
              v[2] == 2.0f,
          "cpu still works");
    lt_tensor_free(t);
}

static void test_profiling(void)
{
    lt_device_set_profiling(vk, true);
    lt_tensor *a = lt_tensor_new_2d(vk, LT_F32, 64, 64), *c = lt_tensor_new_2d(vk, LT_F32, 64, 64);
    lt_fill(a, 1.0f);
    lt_matmul(c, a, a, false, false, 1.0f, 0.0f);
    lt_device_sync(vk);
    lt_profile_entry pe[8];
    int n = lt_device_profile(vk, pe, 8);
    bool found = false;
    for (int i = 0; i < n && i < 8; i++)
        found = found || (strcmp(pe[i].op, "matmul") == 0 && pe[i].calls == 1 && pe[i].seconds > 0);
    CHECK(found, "profile has one timed matmul");
    lt_device_set_profiling(vk, false);
    lt_tensor_free(a);
    lt_tensor_free(c);
}

/*
 * K beyond what one shader invocation may loop over on Mesa 22.3's lavapipe (its shared
 * 65535-iteration loop budget cut the lm_head backward dx = dlogits W short at a vocabulary of
 * 50,259 in the shared-memory kernel): every transpose case, odd K (scalar loads) and
 * 4-aligned K (vector loads), with beta. Then the K slicing itself on any driver, forced to slices
 * of 16, on the shapes of test_matmul with beta != 0.
 */
static void test_matmul_long_k(void)
{
    /* long sums of terms of both signs: fp32 rounding is judged on the tensor's scale here
     * (max|cpu - vulkan| <= 1e-5 max|cpu|); a sum cut short is off by tens of percent */
    /* K past 4 x 65535: the direct kernel (lavapipe) reads 4 k per loop step */
    static const int64_t shapes[][3] = {{24, 20, 300001}, {8, 12, 300000}};
    for (int s = 0; s < 2; s++)
        for (int tr = 0; tr < 4; tr++) {
            int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            bool ta = tr & 1, tb = tr & 2;
            pair a = ta ? MK(LT_F32, 2, 1, K, M) : MK(LT_F32, 2, 1, M, K);
            pair b = tb ? MK(LT_F32, 2, 1, N, K) : MK(LT_F32, 2, 1, K, N);
            pair c = MK(LT_F32, 2, 1, M, N);
            BOTH(lt_matmul(X(c), X(a), X(b), ta, tb, 0.5f, s ? 0.25f : 0.0f));
            int64_t n = M * N;
            float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
            double d = 0, mx = 0;
            if (lt_tensor_download_f32(c.c, x, n) == LT_OK &&
                lt_tensor_download_f32(c.g, y, n) == LT_OK)
                for (int64_t i = 0; i < n; i++) {
                    d = fmax(d, fabs((double)x[i] - y[i]));
                    mx = fmax(mx, fabs(x[i]));
                }
            else
                d = INFINITY;
            CHECK(d <= 1e-5 * mx,
                  "matmul %lldx%lldx%lld ta=%d tb=%d (long K): max|cpu - vulkan| "
                  "%.3g, max|cpu| %.3g",
                  (long long)M, (long long)N, (long long)K, ta, tb, d, mx);
            free(x);
            free(y);
            drop(a);
            drop(b);
            drop(c);
        }
    setenv("LATHE_VK_MATMUL_K_SLICE", "16", 1);
    static const int64_t small[][3] = {{33, 17, 7}, {65, 70, 129}, {12, 20, 76}};
    for (int s = 0; s < 3; s++)
        for (int tr = 0; tr < 4; tr++) {
            int64_t M = small[s][0], N = small[s][1], K = small[s][2];
            bool ta = tr & 1, tb = tr & 2;
            pair a = ta ? MK(LT_BF16, 2, 1, K, M) : MK(LT_BF16, 2, 1, M, K);
            pair b = tb ? MK(LT_F32, 2, 1, N, K) : MK(LT_F32, 2, 1, K, N);
            pair c = MK(LT_F32, 2, 1, M, N);
            BOTH(lt_matmul(X(c), X(a), X(b), ta, tb, 0.75f, 0.5f));
            char what[128];
            snprintf(what, sizeof what, "matmul %lldx%lldx%lld ta=%d tb=%d in K slices of 16",
                     (long long)M, (long long)N, (long long)K, ta, tb);
            cmp(what, c);
            drop(a);
            drop(b);
            drop(c);
        }
    unsetenv("LATHE_VK_MATMUL_K_SLICE");
}

int main(void)
{
    lt_vk_device_info info[16];
    char why[256];
    int n = lt_vk_enumerate(info, 16, why, sizeof why);
    if (n <= 0) {
        SKIP("no Vulkan device (%s): the Vulkan backend was not tested",
             n < 0 ? why : "no physical devices");
        return test_summary();
    }
    int index = 0; /* prefer a CPU-type device (lavapipe): the one CI has */
    for (int i = 0; i < n; i++)
        if (strcmp(info[i].type, "cpu") == 0)
            index = i;
    setenv("LATHE_VK_VALIDATION", "1", 0);
    setenv("LATHE_CACHE_DIR", "off", 0); /* test_vk_matmul_cache covers the cache file */
    char err[512], spec[32];
    snprintf(spec, sizeof spec, "vulkan:%d", index);
    cpu = lt_device_open("cpu", 0, err, sizeof err);
    CHECK(cpu != NULL, "open cpu: %s", err);
    vk = lt_device_open(spec, 0, err, sizeof err);
    if (!vk) {
        CHECK(0, "open %s: %s", spec, err);
        lt_device_close(cpu);
        return test_summary();
    }
    printf("testing %s against %s\n", lt_device_name(vk), lt_device_name(cpu));
    test_fill_copy();
    test_matmul();
    test_matmul_long_k();
    test_embedding_norms();
    test_rope_attention();
    test_elementwise_losses();
    test_big_tensor();
    test_profiling();
    test_bad_input(index);
    int msgs = lt_vk_validation_messages(vk);
    if (msgs < 0)
        SKIP("the Khronos validation layer is not installed: validation not checked");
    else
        CHECK(msgs == 0, "validation layer reported %d errors/warnings", msgs);
    printf("validation messages: %d\n", msgs);
    lt_device_close(vk);
    lt_device_close(cpu);
    return test_summary();
}
