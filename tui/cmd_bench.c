/*
 * cmd_bench.c - `lathe bench ops`: times every compute op at a few size classes on the chosen
 * device and prints time per call with GFLOP/s (compute-bound ops) or GB/s (memory-bound
 * ops). Matmul rows also time a raw cblas_sgemm of the same shape in the same run, so the
 * figure can be read against the BLAS it sits on. Works on any device (cpu, vulkan:N).
 * It measures; it never asserts a speed.
 */
#include "cli.h"
#include "compute.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { K_MATMUL, K_MATMUL_BW, K_ATTN, K_ATTN_BW, K_RMS, K_LN, K_ROPE, K_CE, K_SWIGLU,
       K_GELU, K_EMB, K_EMB_BW, K_ADAMW, K_ADD };

typedef struct bcase {
    const char *op, *size;
    int kind;
    int64_t a, b, c, d; /* matmul M,K,N; attention B,T,H,hd; rows N,D; adamw n */
    lt_dtype wdt;       /* matmul B / embedding table dtype */
    bool quick;         /* part of --quick */
} bcase;

static const bcase cases[] = {
    {"matmul", "256^3", K_MATMUL, 256, 256, 256, 0, LT_F32, true},
    {"matmul", "1024^3", K_MATMUL, 1024, 1024, 1024, 0, LT_F32, true},
    {"matmul", "2048^3", K_MATMUL, 2048, 2048, 2048, 0, LT_F32, false},
    {"matmul", "2048x768 @ W[3072,768]^T", K_MATMUL, 2048, 768, 3072, 1, LT_F32, false},
    {"matmul", "2048x768 @ W[3072,768]^T bf16", K_MATMUL, 2048, 768, 3072, 1, LT_BF16, false},
    /* "large_" rows run only when --op names them (GPU-sized: minutes on a CPU device) */
    {"large_matmul", "4096^3", K_MATMUL, 4096, 4096, 4096, 0, LT_F32, false},
    {"large_matmul", "4096^3 bf16 B", K_MATMUL, 4096, 4096, 4096, 0, LT_BF16, false},
    {"matmul_backward", "2048x768 @ W[3072,768]^T", K_MATMUL_BW, 2048, 768, 3072, 1, LT_F32,
     false},
    {"attention", "B1 T128 H12 hd64", K_ATTN, 1, 128, 12, 64, LT_F32, true},
    {"attention", "B4 T256 H12 hd64", K_ATTN, 4, 256, 12, 64, LT_F32, false},
    {"attention_backward", "B4 T256 H12 hd64", K_ATTN_BW, 4, 256, 12, 64, LT_F32, false},
    {"rmsnorm", "256x768", K_RMS, 256, 768, 0, 0, LT_F32, true},
    {"rmsnorm", "2048x768", K_RMS, 2048, 768, 0, 0, LT_F32, false},
    {"layernorm", "2048x768", K_LN, 2048, 768, 0, 0, LT_F32, false},
    {"rope", "2048x12x64", K_ROPE, 2048, 12, 64, 0, LT_F32, false},
    {"cross_entropy", "64x32000", K_CE, 64, 32000, 0, 0, LT_F32, true},
    {"cross_entropy", "512x32000", K_CE, 512, 32000, 0, 0, LT_F32, false},
    {"swiglu", "2048x3072", K_SWIGLU, 2048, 3072, 0, 0, LT_F32, false},
    {"gelu", "2048x3072", K_GELU, 2048, 3072, 0, 0, LT_F32, false},
    {"embedding", "2048 of 32000x768", K_EMB, 2048, 768, 32000, 0, LT_F32, false},
    {"embedding_backward", "2048 of 32000x768", K_EMB_BW, 2048, 768, 32000, 0, LT_F32, false},
    {"adamw", "4M params", K_ADAMW, 4 << 20, 0, 0, 0, LT_F32, false},
    {"add", "1.5M", K_ADD, 2048 * 768, 0, 0, 0, LT_F32, true},
};

static void print_help(void)
{
    printf("usage: lathe bench ops [--device cpu|vulkan:N|auto] [--threads N] [--op NAME]\n"
           "                       [--quick] [--json]\n\n"
           "Times each compute op at several sizes (warm-up, then the median of several calls)\n"
           "and prints ms per call with GFLOP/s or GB/s. Matmul rows also time a raw\n"
           "cblas_sgemm of the same shape on the host, in the same run.\n"
           "  --op NAME   only ops whose name starts with NAME (e.g. matmul, attention);\n"
           "              large_matmul (4096^3, f32 and bf16 B) runs only when named\n"
           "  --quick     small sizes only, fewer repetitions\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static lt_tensor *rnd(lt_device *dev, lt_dtype dt, int nd, const int64_t *s, float scale)
{
    lt_tensor *t = lt_tensor_new(dev, dt, nd, s);
    if (!t)
        return NULL;
    int64_t n = lt_tensor_numel(t);
    float *h = malloc((size_t)n * sizeof(float));
    if (!h) {
        lt_tensor_free(t);
        return NULL;
    }
    uint32_t x = 12345;
    for (int64_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        h[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * scale;
    }
    lt_tensor_upload_f32(t, h, n);
    free(h);
    return t;
}

static lt_tensor *ids(lt_device *dev, int64_t n, int64_t hi)
{
    lt_tensor *t = lt_tensor_new_1d(dev, LT_I32, n);
    int32_t *h = malloc((size_t)n * sizeof(int32_t));
    if (t && h) {
        for (int64_t i = 0; i < n; i++)
            h[i] = (int32_t)((i * 7919) % hi);
        lt_tensor_upload(t, h, (size_t)n * 4);
    }
    free(h);
    return t;
}

#define MAXT 10

/* Runs one call of case c on tensors t. */
static lt_status run_once(const bcase *c, lt_tensor **t)
{
    lt_attn_params ap = {0.125f, 0, 0, 0};
    lt_adamw_params ad = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 1};
    switch (c->kind) {
    case K_MATMUL: return lt_matmul(t[2], t[0], t[1], false, c->d != 0, 1.0f, 0.0f);
    case K_MATMUL_BW: return lt_matmul_backward(t[3], t[4], t[2], t[0], t[1], false, true);
    case K_ATTN: return lt_attention(t[3], t[4], t[0], t[1], t[2], NULL, &ap);
    case K_ATTN_BW:
        return lt_attention_backward(t[5], t[6], t[7], t[8], t[0], t[1], t[2], t[3], t[4], NULL,
                                     &ap);
    case K_RMS: return lt_rmsnorm(t[1], t[3], t[0], t[2], 1e-5f);
    case K_LN: return lt_layernorm(t[1], t[4], t[3], t[0], t[2], t[2], 1e-5f);
    case K_ROPE: return lt_rope(t[0], t[1], t[2], 1.0f);
    case K_CE: return lt_cross_entropy(t[2], NULL, t[3], t[0], t[1], -100, 1.0f, 0);
    case K_SWIGLU: return lt_swiglu(t[2], t[0], t[1]);
    case K_GELU: return lt_gelu(t[1], t[0]);
    case K_EMB: return lt_embedding(t[2], t[0], t[1]);
    case K_EMB_BW: return lt_embedding_backward(t[0], t[2], t[1]);
    case K_ADAMW: return lt_adamw(t[0], t[1], t[2], t[3], &ad, 1.0f);
    case K_ADD: return lt_add(t[2], t[0], t[1]);
    }
    return LT_ERR_ARG;
}

/* Allocates the case's tensors; returns false (tensors freed by the caller) on failure.
 * *work: flops (compute-bound) or bytes moved; *is_flops says which. */
static bool setup(lt_device *dev, const bcase *c, lt_tensor **t, double *work, bool *is_flops)
{
    int64_t a = c->a, b = c->b, cc = c->c, d = c->d;
    *is_flops = false;
    switch (c->kind) {
    case K_MATMUL:
    case K_MATMUL_BW: {
        int64_t sa[2] = {a, b}, sb[2] = {d ? cc : b, d ? b : cc}, sc[2] = {a, cc};
        t[0] = rnd(dev, LT_F32, 2, sa, 1), t[1] = rnd(dev, c->wdt, 2, sb, 1);
        t[2] = rnd(dev, LT_F32, 2, sc, 1);
        if (c->kind == K_MATMUL_BW)
            t[3] = rnd(dev, LT_F32, 2, sa, 0), t[4] = rnd(dev, LT_F32, 2, sb, 0);
        *work = 2.0 * (double)a * (double)b * (double)cc * (c->kind == K_MATMUL_BW ? 2 : 1);
        *is_flops = true;
        return t[0] && t[1] && t[2] && (c->kind == K_MATMUL || (t[3] && t[4]));
    }
    case K_ATTN:
    case K_ATTN_BW: {
        int64_t s[4] = {a, b, cc, d}, sl[3] = {a, cc, b};
        for (int i = 0; i < 4; i++)
            t[i] = rnd(dev, LT_F32, 4, s, 1);
        t[4] = rnd(dev, LT_F32, 3, sl, 0);
        if (!t[4] || lt_attention(t[3], t[4], t[0], t[1], t[2], NULL,
                                  &(lt_attn_params){0.125f, 0, 0, 0}) != LT_OK)
            return false;
        if (c->kind == K_ATTN_BW)
            for (int i = 5; i < 9; i++)
                t[i] = rnd(dev, LT_F32, 4, s, 1);
        /* causal: half the T^2 score matrix; QK^T and PV (backward: 2.5x) */
        *work = 4.0 * (double)a * (double)cc * (double)b * (double)b / 2 * (double)d *
                (c->kind == K_ATTN_BW ? 2.5 : 1.0);
        *is_flops = true;
        return c->kind == K_ATTN || t[8];
    }
    case K_RMS:
    case K_LN: {
        int64_t s[2] = {a, b}, sd[1] = {b}, sn[1] = {a};
        t[0] = rnd(dev, LT_F32, 2, s, 1), t[1] = rnd(dev, LT_F32, 2, s, 0);
        t[2] = rnd(dev, LT_F32, 1, sd, 1), t[3] = rnd(dev, LT_F32, 1, sn, 0);
        t[4] = rnd(dev, LT_F32, 1, sn, 0);
        *work = 2.0 * (double)a * (double)b * 4;
        return t[0] && t[1] && t[2] && t[3] && t[4];
    }
    case K_ROPE: {
        int64_t s[3] = {a, b, cc};
        t[0] = rnd(dev, LT_F32, 3, s, 1), t[1] = ids(dev, a, 4096);
        t[2] = lt_tensor_new_1d(dev, LT_F32, cc / 2);
        float inv[512];
        lt_rope_inv_freq(inv, cc, 10000.0f);
        if (t[2] && lt_tensor_upload(t[2], inv, (size_t)(cc / 2) * sizeof(float)) != LT_OK)
            return false;
        *work = 2.0 * (double)a * (double)b * (double)cc * 4;
        return t[0] && t[1] && t[2];
    }
    case K_CE: {
        int64_t s[2] = {a, b};
        t[0] = rnd(dev, LT_F32, 2, s, 4), t[1] = ids(dev, a, b);
        t[2] = lt_tensor_new_1d(dev, LT_F32, 1), t[3] = rnd(dev, LT_F32, 2, s, 0);
        *work = 2.0 * (double)a * (double)b * 4;
        return t[0] && t[1] && t[2] && t[3];
    }
    case K_SWIGLU:
    case K_GELU: {
        int64_t s[2] = {a, b};
        t[0] = rnd(dev, LT_F32, 2, s, 4), t[1] = rnd(dev, LT_F32, 2, s, 1);
        t[2] = rnd(dev, LT_F32, 2, s, 0);
        *work = (double)a * (double)b * 4 * (c->kind == K_SWIGLU ? 3 : 2);
        return t[0] && t[1] && t[2];
    }
    case K_EMB:
    case K_EMB_BW: {
        int64_t st[2] = {cc, b}, so[2] = {a, b};
        t[0] = rnd(dev, c->wdt, 2, st, 1), t[1] = ids(dev, a, cc);
        t[2] = rnd(dev, LT_F32, 2, so, 1);
        *work = 2.0 * (double)a * (double)b * 4;
        return t[0] && t[1] && t[2];
    }
    case K_ADAMW: {
        int64_t s[1] = {a};
        for (int i = 0; i < 4; i++)
            t[i] = rnd(dev, LT_F32, 1, s, i < 2 ? 1.0f : 0.0f);
        *work = (double)a * 4 * 7; /* read p, g, m, v; write p, m, v */
        return t[0] && t[1] && t[2] && t[3];
    }
    case K_ADD: {
        int64_t s[1] = {a};
        t[0] = rnd(dev, LT_F32, 1, s, 1), t[1] = rnd(dev, LT_F32, 1, s, 1);
        t[2] = rnd(dev, LT_F32, 1, s, 0);
        *work = (double)a * 4 * 3;
        return t[0] && t[1] && t[2];
    }
    }
    return false;
}

/* Median seconds per call over reps after one warm-up call; < 0 on failure. */
static double time_op(lt_device *dev, const bcase *c, lt_tensor **t, int reps)
{
    double times[16];
    if (run_once(c, t) != LT_OK || lt_device_sync(dev) != LT_OK)
        return -1;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (run_once(c, t) != LT_OK || lt_device_sync(dev) != LT_OK)
            return -1;
        times[r] = now_s() - t0;
    }
    qsort(times, (size_t)reps, sizeof(double), cmp_double);
    return times[reps / 2];
}

/* The same shape as a raw host cblas_sgemm (x W^T when c->d). */
static double time_sgemm(const bcase *c, int reps)
{
    int64_t M = c->a, K = c->b, N = c->c;
    float *A = calloc((size_t)(M * K), 4), *B = calloc((size_t)(K * N), 4);
    float *C = calloc((size_t)(M * N), 4);
    double times[16], res = -1;
    if (A && B && C) {
        for (int64_t i = 0; i < M * K; i++)
            A[i] = (float)(i % 7) * 0.1f;
        for (int64_t i = 0; i < K * N; i++)
            B[i] = (float)(i % 5) * 0.1f;
        for (int r = -1; r < reps; r++) {
            double t0 = now_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, c->d ? CblasTrans : CblasNoTrans, (int)M,
                        (int)N, (int)K, 1.0f, A, (int)K, B, c->d ? (int)K : (int)N, 0.0f, C,
                        (int)N);
            if (r >= 0)
                times[r] = now_s() - t0;
        }
        qsort(times, (size_t)reps, sizeof(double), cmp_double);
        res = times[reps / 2];
    }
    free(A), free(B), free(C);
    return res;
}

static int bench_ops(const lt_cli_common *co, const char *filter, bool quick)
{
    char err[512];
    lt_device *dev = lt_device_open(co->device, co->threads, err, sizeof err);
    if (!dev)
        return lt_cli_fail("bench", LT_EXIT_FAIL, "cannot open device '%s': %s", co->device,
                           err);
    int reps = quick ? 3 : 7;
    cJSON *root = co->json ? cJSON_CreateObject() : NULL, *rows = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "device", lt_device_name(dev));
        cJSON_AddNumberToObject(root, "threads", lt_device_threads(dev));
        rows = cJSON_AddArrayToObject(root, "ops");
    } else {
        printf("device: ");
        lt_cli_print_sanitized(stdout, lt_device_name(dev), false);
        printf("\n%-20s %-30s %10s %12s %s\n", "op", "size", "ms/call", "rate", "");
    }
    int failures = 0, ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bcase *c = &cases[i];
        if ((quick && !c->quick) || (filter && strncmp(c->op, filter, strlen(filter)) != 0) ||
            (!filter && strncmp(c->op, "large_", 6) == 0))
            continue;
        lt_tensor *t[MAXT] = {0};
        double work = 0, s = -1;
        bool is_flops = false;
        if (setup(dev, c, t, &work, &is_flops))
            s = time_op(dev, c, t, reps);
        for (int k = 0; k < MAXT; k++)
            lt_tensor_free(t[k]);
        ran++;
        if (s <= 0) {
            failures++;
            fprintf(stderr, "lathe bench: %s %s failed: ", c->op, c->size);
            lt_cli_print_sanitized(stderr, lt_device_last_error(dev), false);
            fputc('\n', stderr);
            continue;
        }
        double rate = work / s / 1e9;
        double blas = c->kind == K_MATMUL && c->wdt == LT_F32 ? time_sgemm(c, reps) : -1;
        double blas_rate = blas > 0 ? work / blas / 1e9 : 0;
        if (root) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "op", c->op);
            cJSON_AddStringToObject(r, "size", c->size);
            cJSON_AddNumberToObject(r, "ms", s * 1e3);
            cJSON_AddNumberToObject(r, is_flops ? "gflops" : "gbps", rate);
            if (blas > 0) {
                cJSON_AddNumberToObject(r, "sgemm_gflops", blas_rate);
                cJSON_AddNumberToObject(r, "ratio", rate / blas_rate);
            }
            cJSON_AddItemToArray(rows, r);
        } else {
            printf("%-20s %-30s %10.3f %7.1f %s", c->op, c->size, s * 1e3, rate,
                   is_flops ? "GFLOP/s" : "GB/s");
            if (blas > 0)
                printf("  (raw sgemm %.1f GFLOP/s, ratio %.2f)", blas_rate, rate / blas_rate);
            putchar('\n');
        }
        fflush(stdout);
    }
    if (root) {
        char *js = cJSON_Print(root);
        if (js)
            printf("%s\n", js);
        free(js);
        cJSON_Delete(root);
    }
    lt_device_close(dev);
    if (ran == 0)
        return lt_cli_fail("bench", LT_EXIT_USAGE, "no op matches '%s'", filter ? filter : "");
    return failures ? LT_EXIT_FAIL : LT_EXIT_OK;
}

int lt_cmd_bench(int argc, char **argv)
{
    lt_cli_common co;
    lt_cli_common_defaults(&co);
    if (argc > 1 && strcmp(argv[1], "train") == 0) /* lathe bench train: cmd_bench_train.c */
        return lt_cmd_bench_train(argc - 1, argv + 1);
    const char *what = NULL, *filter = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&co, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help();
            return LT_EXIT_OK;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--op") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else if (strncmp(argv[i], "--op=", 5) == 0) {
            filter = argv[i] + 5;
        } else if (argv[i][0] != '-' && !what) {
            what = argv[i];
        } else {
            print_help();
            return lt_cli_fail("bench", LT_EXIT_USAGE, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!what || strcmp(what, "ops") != 0) {
        print_help();
        return lt_cli_fail("bench", LT_EXIT_USAGE, "expected 'ops' (lathe bench ops)");
    }
    return bench_ops(&co, filter, quick);
}
