/*
 * ops_ref.h - helpers shared by the compute op tests: a seeded random generator, tensors
 * made from double arrays, relative errors, and a central finite-difference checker that
 * differentiates a float64 host reimplementation of an op's forward.
 *
 * Method: each backward op runs in fp32 on the device; its result is compared with central
 * differences (h = 1e-5) of the objective sum(dout * f(x)) evaluated in double precision on
 * the same (float-representable) inputs, at up to FD_SAMPLES coordinates per input. The error
 * reported is max |grad - fd| / max |fd| over the sampled coordinates.
 */
#ifndef LATHE_TEST_OPS_REF_H
#define LATHE_TEST_OPS_REF_H

#include "compute.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FD_SAMPLES 48
#define FD_H 1e-5

static uint64_t ref_rng = 0x9e3779b97f4a7c15ull;

static inline uint64_t ref_next(void)
{
    uint64_t z = (ref_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1), rounded to a float so device and host see the same value */
static inline double ref_rand(void)
{
    return (double)(float)((double)(ref_next() >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static inline double *ref_randv(int64_t n, double scale)
{
    double *v = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        v[i] = (double)(float)(ref_rand() * scale);
    return v;
}

static inline double *ref_zeros(int64_t n) { return calloc((size_t)n, sizeof(double)); }

/* A tensor of dtype dt holding x (converted to float, then to dt). */
static inline lt_tensor *ref_tensor(lt_device *dev, lt_dtype dt, const double *x, int nd,
                                    const int64_t *shape)
{
    lt_tensor *t = lt_tensor_new(dev, dt, nd, shape);
    if (!t)
        return NULL;
    int64_t n = lt_tensor_numel(t);
    if (x) {
        float *f = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            f[i] = (float)x[i];
        lt_tensor_upload_f32(t, f, n);
        free(f);
    } else {
        lt_fill(t, 0.0f);
    }
    return t;
}

static inline lt_tensor *ref_ids(lt_device *dev, const int32_t *v, int nd, const int64_t *shape)
{
    lt_tensor *t = lt_tensor_new(dev, LT_I32, nd, shape);
    if (t)
        lt_tensor_upload(t, v, lt_tensor_bytes(t));
    return t;
}

/* The tensor's values as doubles (malloc'd). */
static inline double *ref_get(const lt_tensor *t)
{
    int64_t n = lt_tensor_numel(t);
    float *f = malloc((size_t)n * sizeof(float));
    double *d = malloc((size_t)n * sizeof(double));
    lt_tensor_download_f32(t, f, n);
    for (int64_t i = 0; i < n; i++)
        d[i] = f[i];
    free(f);
    return d;
}

/* max |a - b| / max |b| (b the reference) */
static inline double ref_relerr(const double *a, const double *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > num || isnan(d))
            num = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > den)
            den = fabs(b[i]);
    }
    return num / (den > 1e-12 ? den : 1e-12);
}

/* Finite differences of obj(ctx) with respect to x[0..n) at up to FD_SAMPLES coordinates,
 * compared with grad. Returns the relative error. */
static inline double ref_fd(double (*obj)(void *), void *ctx, double *x, int64_t n,
                            const double *grad)
{
    double num = 0, den = 0;
    int64_t step = n > FD_SAMPLES ? n / FD_SAMPLES : 1;
    int64_t off = n > FD_SAMPLES ? (int64_t)(ref_next() % (uint64_t)step) : 0;
    for (int64_t i = off; i < n; i += step) {
        double keep = x[i];
        x[i] = keep + FD_H;
        double lp = obj(ctx);
        x[i] = keep - FD_H;
        double lm = obj(ctx);
        x[i] = keep;
        double fd = (lp - lm) / (2 * FD_H);
        double d = fabs(fd - grad[i]);
        if (d > num || isnan(d))
            num = isnan(d) ? INFINITY : d;
        if (fabs(fd) > den)
            den = fabs(fd);
    }
    return num / (den > 1e-9 ? den : 1e-9);
}

/* Same bits? */
static inline bool ref_same_bits(const lt_tensor *a, const lt_tensor *b)
{
    size_t n = lt_tensor_bytes(a);
    if (n != lt_tensor_bytes(b))
        return false;
    void *x = malloc(n), *y = malloc(n);
    lt_tensor_download(a, x, n);
    lt_tensor_download(b, y, n);
    bool same = memcmp(x, y, n) == 0;
    free(x);
    free(y);
    return same;
}

#define FWD_TOL 2e-5
#define BWD_TOL 1e-3

/* Prints one op's error and checks it against tol. */
static inline void ref_report(const char *op, const char *what, double err, double tol)
{
    printf("  %-36s %-10s rel err %.2e%s\n", op, what, err, err <= tol ? "" : "  <-- FAIL");
    CHECK(err <= tol, "%s %s: relative error %.3e above %.1e", op, what, err, tol);
}

#endif
