/*
 * test_vk_memory.c - the Vulkan allocator without a ceiling, the memory budget, the
 * out-of-memory message and the 32-bit index limit, on lavapipe, under the Khronos validation
 * layer (when installed) with zero errors or warnings allowed. Skips, never passes, without a
 * Vulkan device.
 *
 * Blocks: LATHE_VK_BLOCK_BYTES=32768 forces tiny blocks, so a thousand small tensors span
 * hundreds of them (and tensors of half a block or more get dedicated ones); ops run across
 * them, tensors are freed in random order and allocated again into the holes, and every
 * result must equal the CPU backend's (elementwise ops bit for bit, matmul and swiglu within 1e-4
 * and 1e-5 relative, against max(|cpu|, 1e-3)).
 * Budget: lt_device_mem_budget answers on both backends, with VK_EXT_memory_budget and
 * without (LATHE_VK_NO_MEMORY_BUDGET=1: the heap's size and lathe's blocks).
 * OOM: LATHE_VK_BUDGET_BYTES caps what lathe may hold; allocating past it fails with a
 * message naming the device, the bytes asked for, in use and the budget, and the OOM hint;
 * cached empty blocks are released when a new allocation needs their room.
 * Index limit: LATHE_VK_MAX_INDEX=1000 lowers the 2^31 - 1 limit so small tensors reach it:
 * elementwise ops split into pieces and still equal the CPU's results; other ops refuse with
 * an error naming the op, the tensor and its size.
 */
#include "compute.h"
#include "test.h"
#include "vulkan/vk_debug.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static lt_device *cpu, *vk;
static int index_;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float frand(void)
{
    return (float)((double)(next_u64() >> 11) / 9007199254740992.0 * 2 - 1);
}

static lt_device *open_vk(void)
{
    char err[1024], spec[32];
    snprintf(spec, sizeof spec, "vulkan:%d", index_);
    lt_device *d = lt_device_open(spec, 0, err, sizeof err);
    CHECK(d != NULL, "open %s: %s", spec, err);
    return d;
}

static void check_validation(lt_device *d, const char *what)
{
    int msgs = lt_vk_validation_messages(d);
    if (msgs < 0)
        SKIP("%s: the Khronos validation layer is not installed: validation not checked", what);
    else
        CHECK(msgs == 0, "%s: validation layer reported %d errors/warnings", what, msgs);
}

/* the same f32 tensor on both devices, with the same random contents */
typedef struct pair {
    lt_tensor *c, *g;
} pair;

static pair mk(lt_dtype dt, int64_t n0, int64_t n1)
{
    pair p = {lt_tensor_new_2d(cpu, dt, n0, n1), lt_tensor_new_2d(vk, dt, n0, n1)};
    CHECK(p.c && p.g, "tensor_new [%lld, %lld]: %s", (long long)n0, (long long)n1,
          lt_device_last_error(vk));
    if (!p.c || !p.g)
        exit(test_summary() | 1);
    int64_t n = n0 * n1;
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++)
        v[i] = frand();
    lt_tensor_upload_f32(p.c, v, n);
    lt_tensor_upload_f32(p.g, v, n);
    free(v);
    return p;
}

static void drop(pair *p)
{
    lt_tensor_free(p->c);
    lt_tensor_free(p->g);
    p->c = p->g = NULL;
}

/* max |vulkan - cpu| / max(|cpu|, 1e-3) over the tensor; INFINITY on a failed download */
static double diff(pair p)
{
    int64_t n = lt_tensor_numel(p.c);
    float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    double worst = 0;
    if (lt_tensor_download_f32(p.c, a, n) != LT_OK || lt_tensor_download_f32(p.g, b, n) != LT_OK)
        worst = INFINITY;
    for (int64_t i = 0; i < n && worst < INFINITY; i++) {
        double d = fabs((double)b[i] - a[i]) / fmax(fabs(a[i]), 1e-3);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    free(a);
    free(b);
    return worst;
}

/* ---- hundreds of blocks ------------------------------------------------------------------ */

#define N_TRIPLES 400

static void run_triples(pair (*t)[3], int n, const char *what)
{
    /* out = a + b; out += 0.5 a; out *= 1.5: every op reads and writes across blocks */
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (!t[i][0].c)
            continue;
        for (int k = 0; k < 2; k++) {
            lt_device *d = k ? vk : cpu;
            lt_tensor *a = k ? t[i][0].g : t[i][0].c, *b = k ? t[i][1].g : t[i][1].c,
                      *o = k ? t[i][2].g : t[i][2].c;
            lt_status s1 = lt_add(o, a, b), s2 = lt_axpy(o, 0.5f, a), s3 = lt_scale(o, 1.5f);
            if (s1 != LT_OK || s2 != LT_OK || s3 != LT_OK) {
                CHECK(0, "%s: ops on triple %d: %s", what, i, lt_device_last_error(d));
                return;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (t[i][0].c && diff(t[i][2]) != 0.0)
            bad++;
    CHECK(bad == 0, "%s: %d of the triples differ from the CPU backend", what, bad);
}

static void test_many_blocks(void)
{
    uint64_t block = 0, reserved = 0;
    int peak = 0, live0 = lt_vk_debug_blocks(vk, &peak, &block, &reserved);
    CHECK(live0 >= 0 && block == 32768, "LATHE_VK_BLOCK_BYTES=32768 gives 32 KiB blocks (got %llu)",
          (unsigned long long)block);
    static pair t[N_TRIPLES][3];
    for (int i = 0; i < N_TRIPLES; i++) {
        /* 1 row of 16 .. 3500 floats (64 B .. 14 KB, under the 16 KiB dedicated threshold);
         * every 25th triple is 5 .. 20 KiB rows x 2: dedicated blocks of their own */
        int64_t cols = 16 + (int64_t)(next_u64() % 3485), rows = 1;
        if (i % 25 == 0)
            rows = 2, cols = 1280 + (int64_t)(next_u64() % 3840);
        for (int k = 0; k < 3; k++)
            t[i][k] = mk(LT_F32, rows, cols);
    }
    int live = lt_vk_debug_blocks(vk, &peak, NULL, &reserved);
    printf("blocks: %d live (peak %d), %.1f MiB reserved\n", live, peak, reserved / 1048576.0);
    CHECK(live >= 200, "a thousand small tensors span hundreds of 32 KiB blocks (got %d)", live);
    run_triples(t, N_TRIPLES, "first pass");

    /* a matmul whose operands live in three different blocks */
    pair A = mk(LT_F32, 24, 40), B = mk(LT_F32, 40, 32), C = mk(LT_F32, 24, 32);
    CHECK(lt_matmul(C.c, A.c, B.c, false, false, 1.0f, 0.0f) == LT_OK &&
              lt_matmul(C.g, A.g, B.g, false, false, 1.0f, 0.0f) == LT_OK,
          "matmul across blocks: %s", lt_device_last_error(vk));
    double dm = diff(C);
    CHECK(dm <= 1e-4, "matmul across blocks: max rel error %.3g", dm);
    drop(&A);
    drop(&B);
    drop(&C);

    /* free two thirds in random order, allocate new tensors into the holes, run again */
    int order[N_TRIPLES];
    for (int i = 0; i < N_TRIPLES; i++)
        order[i] = i;
    for (int i = N_TRIPLES - 1; i > 0; i--) {
        int j = (int)(next_u64() % (uint64_t)(i + 1)), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (int i = 0; i < 2 * N_TRIPLES / 3; i++)
        for (int k = 0; k < 3; k++)
            drop(&t[order[i]][k]);
    int after_free = lt_vk_debug_blocks(vk, NULL, NULL, NULL);
    for (int i = 0; i < N_TRIPLES / 3; i++) {
        int64_t cols = 16 + (int64_t)(next_u64() % 2000);
        for (int k = 0; k < 3; k++)
            t[order[i]][k] = mk(LT_F32, 1, cols);
    }
    int after_realloc = lt_vk_debug_blocks(vk, &peak, NULL, NULL);
    printf("blocks: %d after freeing two thirds, %d after re-allocating a third (peak %d)\n",
           after_free, after_realloc, peak);
    CHECK(after_free < live, "freeing releases the dedicated blocks (%d -> %d)", live, after_free);
    CHECK(after_realloc == after_free,
          "new small tensors fit the holes and cached blocks (%d -> %d blocks)", after_free,
          after_realloc);
    run_triples(t, N_TRIPLES, "after freeing in random order");

    for (int i = 0; i < N_TRIPLES; i++)
        for (int k = 0; k < 3; k++)
            if (t[i][k].c)
                drop(&t[i][k]);
    live = lt_vk_debug_blocks(vk, NULL, &block, &reserved);
    CHECK(lt_device_mem_in_use(vk) == 0, "every tensor freed (%zu bytes left)",
          lt_device_mem_in_use(vk));
    CHECK(reserved == (uint64_t)live * block,
          "only cached shared blocks remain: %d blocks, %llu bytes reserved", live,
          (unsigned long long)reserved);
}

/* ---- budget and out of memory ------------------------------------------------------------ */

static void test_budget(void)
{
    uint64_t b = 0, u = 0;
    CHECK(lt_device_mem_budget(cpu, &b, &u) && b > 0 && u <= b, "cpu budget: %llu bytes, %llu used",
          (unsigned long long)b, (unsigned long long)u);
    CHECK(lt_device_mem_budget(vk, &b, &u) && b > 0,
          "vulkan budget (VK_EXT_memory_budget where listed): %llu bytes, %llu used",
          (unsigned long long)b, (unsigned long long)u);
    printf("vulkan budget: %.1f MiB, %.1f MiB used\n", b / 1048576.0, u / 1048576.0);

    /* without the extension: the heap's size, and lathe's own blocks as the usage */
    setenv("LATHE_VK_NO_MEMORY_BUDGET", "1", 1);
    unsetenv("LATHE_VK_BLOCK_BYTES"); /* and the default block size */
    lt_device *d = open_vk();
    unsetenv("LATHE_VK_NO_MEMORY_BUDGET");
    setenv("LATHE_VK_BLOCK_BYTES", "32768", 1);
    if (!d)
        return;
    lt_vk_device_info info[16];
    char why[256];
    int n = lt_vk_enumerate(info, 16, why, sizeof why);
    uint64_t heap = 0;
    for (int h = 0; n > index_ && h < info[index_].n_heaps; h++)
        if (info[index_].heap_device_local[h] && !heap)
            heap = info[index_].heap_bytes[h];
    /* the rule of vk_memory.c: 1/16 of the heap as a power of two in [256 MiB, 2 GiB], within
     * maxMemoryAllocationSize and a quarter of the heap */
    uint64_t want = 256u << 20, block = 0;
    while (want * 2 <= heap / 16 && want * 2 <= (2048ull << 20))
        want *= 2;
    if (n > index_ && info[index_].max_allocation_bytes && want > info[index_].max_allocation_bytes)
        want = info[index_].max_allocation_bytes / 256 * 256;
    if (want > heap / 4)
        want = heap / 4 / 256 * 256;
    lt_tensor *t = lt_tensor_new_1d(d, LT_F32, 1000);
    uint64_t reserved = 0;
    lt_vk_debug_blocks(d, NULL, &block, &reserved);
    CHECK(block == want, "default block: %llu bytes, the rule gives %llu for a %llu-byte heap",
          (unsigned long long)block, (unsigned long long)want, (unsigned long long)heap);
    CHECK(lt_device_mem_budget(d, &b, &u) && b == heap && u == reserved && u > 0,
          "fallback budget: %llu bytes (heap %llu), %llu used (blocks %llu)", (unsigned long long)b,
          (unsigned long long)heap, (unsigned long long)u, (unsigned long long)reserved);
    lt_tensor_free(t);
    check_validation(d, "fallback budget device");
    lt_device_close(d);
}

static void test_oom(void)
{
    setenv("LATHE_VK_BUDGET_BYTES", "1048576", 1);
    setenv("LATHE_VK_BLOCK_BYTES", "262144", 1);
    lt_device *d = open_vk();
    unsetenv("LATHE_VK_BUDGET_BYTES");
    setenv("LATHE_VK_BLOCK_BYTES", "32768", 1);
    if (!d)
        return;
    const char *hint = "the estimate for this run is 7.9 GB; lower batch_size";
    lt_device_set_oom_hint(d, hint);
    /* 300 KiB tensors: dedicated blocks (half a 256 KiB block or more) */
    lt_tensor *t[4] = {0};
    for (int i = 0; i < 3; i++)
        t[i] = lt_tensor_new_1d(d, LT_F32, 76800);
    CHECK(t[0] && t[1] && t[2], "three 300 KiB tensors fit a 1 MiB budget: %s",
          lt_device_last_error(d));
    uint64_t b = 0, u = 0;
    CHECK(lt_device_mem_budget(d, &b, &u) && b == 1048576 && u == 3 * 307200,
          "capped budget: %llu bytes, %llu used", (unsigned long long)b, (unsigned long long)u);
    t[3] = lt_tensor_new_1d(d, LT_F32, 76800);
    const char *e = lt_device_last_error(d);
    printf("OOM message: %s\n", e);
    CHECK(t[3] == NULL, "a fourth does not fit");
    CHECK(strstr(e, lt_device_name(d)) != NULL, "the message names the device: %s", e);
    CHECK(strstr(e, "asked for 307200 bytes"), "the message gives the bytes asked for: %s", e);
    CHECK(strstr(e, "lathe has 921600 bytes"), "the message gives the bytes in use: %s", e);
    CHECK(strstr(e, "budget 1048576 bytes"), "the message gives the budget: %s", e);
    size_t el = strlen(e), hl = strlen(hint);
    CHECK(el > hl && strcmp(e + el - hl, hint) == 0 && strstr(e, hint) == e + el - hl,
          "the hint ends the message, once: %s", e);
    /* a freed dedicated block goes back: the fourth fits now */
    lt_tensor_free(t[0]);
    t[0] = lt_tensor_new_1d(d, LT_F32, 76800);
    CHECK(t[0] != NULL, "fits again after a free: %s", lt_device_last_error(d));
    for (int i = 0; i < 4; i++)
        lt_tensor_free(t[i]);

    /* small tensors fill four 256 KiB shared blocks; freed, the blocks stay cached, and a
     * large tensor gets their room (they are released for it) */
    lt_tensor *s[8];
    for (int i = 0; i < 8; i++)
        s[i] = lt_tensor_new_1d(d, LT_F32, 30000); /* 120 KB: two per block */
    int live = lt_vk_debug_blocks(d, NULL, NULL, NULL);
    CHECK(s[7] != NULL && live == 4, "eight 120 KB tensors in four shared blocks (%d): %s", live,
          lt_device_last_error(d));
    for (int i = 0; i < 8; i++)
        lt_tensor_free(s[i]);
    CHECK(lt_vk_debug_blocks(d, NULL, NULL, NULL) == 4, "empty shared blocks stay cached");
    lt_tensor *big = lt_tensor_new_1d(d, LT_F32, 200000); /* 800 KB */
    CHECK(big != NULL, "cached blocks are released for a large tensor: %s",
          lt_device_last_error(d));
    CHECK(lt_vk_debug_blocks(d, NULL, NULL, NULL) == 1, "only its dedicated block is left (%d)",
          lt_vk_debug_blocks(d, NULL, NULL, NULL));
    lt_tensor_free(big);

    /* the hint can be removed */
    lt_device_set_oom_hint(d, "");
    lt_tensor *huge = lt_tensor_new_1d(d, LT_F32, 400000);
    CHECK(!huge && !strstr(lt_device_last_error(d), "7.9 GB"), "the hint is removed: %s",
          lt_device_last_error(d));
    check_validation(d, "capped device");
    lt_device_close(d);

    /* a bad setting is refused by name */
    setenv("LATHE_VK_BUDGET_BYTES", "12abc", 1);
    char err[1024], spec[32];
    snprintf(spec, sizeof spec, "vulkan:%d", index_);
    d = lt_device_open(spec, 0, err, sizeof err);
    unsetenv("LATHE_VK_BUDGET_BYTES");
    CHECK(!d && strstr(err, "LATHE_VK_BUDGET_BYTES") && strstr(err, "12abc"),
          "bad LATHE_VK_BUDGET_BYTES: %s", err);
    lt_device_close(d);
}

/* ---- the 32-bit index limit -------------------------------------------------------------- */

static void test_index_limit(void)
{
    setenv("LATHE_VK_MAX_INDEX", "1000", 1);
    /* elementwise: pieces of at most 1000 elements, the same bits as the CPU */
    pair a = mk(LT_F32, 5, 501), b = mk(LT_F32, 5, 501), o = mk(LT_F32, 5, 501);
    lt_status s1 = lt_add(o.c, a.c, b.c), s2 = lt_add(o.g, a.g, b.g);
    s1 = s1 ? s1 : lt_swiglu(a.c, o.c, b.c);
    s2 = s2 ? s2 : lt_swiglu(a.g, o.g, b.g);
    CHECK(s1 == LT_OK && s2 == LT_OK, "add/swiglu in pieces: %s", lt_device_last_error(vk));
    double ds = diff(a);
    CHECK(diff(o) == 0.0 && ds <= 1e-5, "add and swiglu in pieces equal the CPU's (swiglu %.3g)",
          ds);
    pair bias = mk(LT_F32, 1, 300), x = mk(LT_F32, 8, 300);
    s1 = lt_bias_add(x.c, bias.c);
    s2 = lt_bias_add(x.g, bias.g);
    CHECK(s1 == LT_OK && s2 == LT_OK && diff(x) == 0.0, "bias_add in pieces of whole rows: %s",
          lt_device_last_error(vk));
    /* 16-bit: fill, copy and AdamW over a bf16 view at an odd element offset */
    pair p16 = mk(LT_BF16, 1, 2601), m = mk(LT_F32, 1, 2501), v = mk(LT_F32, 1, 2501),
         g = mk(LT_F32, 1, 2501);
    lt_tensor *vc = lt_tensor_view(p16.c, 51, 1, (const int64_t[]){2501}),
              *vg = lt_tensor_view(p16.g, 51, 1, (const int64_t[]){2501});
    lt_fill(m.c, 0.0f);
    lt_fill(m.g, 0.0f);
    lt_fill(v.c, 0.0f);
    lt_fill(v.g, 0.0f);
    lt_adamw_params ap = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1};
    s1 = lt_adamw(vc, g.c, m.c, v.c, &ap, 1.0f);
    s2 = lt_adamw(vg, g.g, m.g, v.g, &ap, 1.0f);
    CHECK(s1 == LT_OK && s2 == LT_OK && diff(p16) == 0.0 && diff(m) == 0.0 && diff(v) == 0.0,
          "bf16 AdamW in pieces equals the CPU's: %s", lt_device_last_error(vk));
    s1 = lt_copy(vc, g.c);
    s2 = lt_copy(vg, g.g);
    CHECK(s1 == LT_OK && s2 == LT_OK && diff(p16) == 0.0, "f32 -> bf16 copy in pieces: %s",
          lt_device_last_error(vk));
    s1 = lt_fill(vc, 3.0f);
    s2 = lt_fill(vg, 3.0f);
    CHECK(s1 == LT_OK && s2 == LT_OK && diff(p16) == 0.0, "bf16 fill in pieces: %s",
          lt_device_last_error(vk));
    lt_tensor_free(vc);
    lt_tensor_free(vg);

    /* everything else refuses, naming the op, the tensor and its size */
    pair w = mk(LT_F32, 1, 501), out = mk(LT_F32, 5, 501);
    lt_tensor_set_name(out.g, "model.layers.0.input");
    lt_status st = lt_rmsnorm(out.g, NULL, a.g, w.g, 1e-5f);
    const char *e = lt_device_last_error(vk);
    CHECK(st == LT_ERR_UNSUPPORTED && strstr(e, "lt_rmsnorm") &&
              strstr(e, "model.layers.0.input") && strstr(e, "f32[5, 501]") &&
              strstr(e, "2505 elements"),
          "rmsnorm past the limit is refused by name (%s): %s", lt_status_str(st), e);
    pair wide = mk(LT_F32, 1, 1200), rows = mk(LT_F32, 1, 1200);
    st = lt_bias_add(rows.g, wide.g);
    CHECK(st == LT_ERR_UNSUPPORTED && strstr(lt_device_last_error(vk), "bias_add"),
          "a bias row past the limit is refused: %s", lt_device_last_error(vk));
    unsetenv("LATHE_VK_MAX_INDEX");
    CHECK(lt_rmsnorm(out.g, NULL, a.g, w.g, 1e-5f) == LT_OK, "within the limit it runs again: %s",
          lt_device_last_error(vk));
    pair *all[] = {&a, &b, &o, &bias, &x, &p16, &m, &v, &g, &w, &out, &wide, &rows};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        drop(all[i]);
}

int main(void)
{
    lt_vk_device_info info[16];
    char why[256];
    int n = lt_vk_enumerate(info, 16, why, sizeof why);
    if (n <= 0) {
        SKIP("no Vulkan device (%s): the Vulkan allocator was not tested",
             n < 0 ? why : "no physical devices");
        return test_summary();
    }
    for (int i = 0; i < n; i++) /* prefer a CPU-type device (lavapipe): the one CI has */
        if (strcmp(info[i].type, "cpu") == 0)
            index_ = i;
    setenv("LATHE_VK_VALIDATION", "1", 0);
    setenv("LATHE_CACHE_DIR", "off", 0);
    setenv("LATHE_VK_BLOCK_BYTES", "32768", 1);
    char err[1024];
    cpu = lt_device_open("cpu", 0, err, sizeof err);
    CHECK(cpu != NULL, "open cpu: %s", err);
    vk = open_vk();
    if (!cpu || !vk) {
        lt_device_close(cpu);
        return test_summary();
    }
    printf("testing %s against %s\n", lt_device_name(vk), lt_device_name(cpu));
    test_many_blocks();
    test_budget();
    test_oom();
    test_index_limit();
    check_validation(vk, lt_device_name(vk));
    lt_device_close(vk);
    lt_device_close(cpu);
    return test_summary();
}
