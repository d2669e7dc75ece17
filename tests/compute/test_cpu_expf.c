/*
 * test_cpu_expf.c - the CPU backend's fast exp (lt_cpu_expf, used by softmax, attention,
 * cross-entropy and SiLU) on its whole domain: within 2 ulp of expf on a sweep of finite
 * inputs, 0 below the underflow edge, +inf above the overflow edge, and NaN for NaN of either
 * sign and any payload, with no undefined behaviour on the way (the sanitizer build checks
 * that: a NaN once reached a left shift of a negative value).
 */
#include "cpu/cpu_impl.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static float from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Distance in units in the last place between two finite floats of the same sign. */
static int64_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

int main(void)
{
    /* NaN: quiet and signalling, both signs, several payloads */
    const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
                             0x7fffffffu, 0xffffffffu, 0x7fa00000u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float y = lt_cpu_expf(from_bits(nans[i]));
        CHECK(isnan(y), "exp(NaN 0x%08x) = %g, want NaN", nans[i], y);
    }
    volatile float zero = 0.0f;
    CHECK(isnan(lt_cpu_expf(zero / zero)), "exp(0/0) is NaN");
    CHECK(lt_cpu_expf(INFINITY) == INFINITY, "exp(+inf) = +inf");
    CHECK(lt_cpu_expf(-INFINITY) == 0.0f, "exp(-inf) = 0");
    CHECK(lt_cpu_expf(100.0f) == INFINITY, "exp(100) overflows to +inf");
    CHECK(lt_cpu_expf(-100.0f) == 0.0f, "exp(-100) underflows to 0");
    CHECK(lt_cpu_expf(0.0f) == 1.0f, "exp(0) = 1");
    /* a sweep of the normal range */
    int64_t worst = 0;
    float worst_x = 0;
    for (float x = -87.0f; x <= 88.5f; x += 0.0137f) {
        int64_t u = ulps(lt_cpu_expf(x), expf(x));
        if (u > worst) {
            worst = u;
            worst_x = x;
        }
    }
    CHECK(worst <= 2, "exp within 2 ulp of expf on [-87, 88.5]: worst %lld ulp at %g",
          (long long)worst, worst_x);
    /* a row with a NaN in it, as a vectorised kernel sees it */
    float row[64];
    for (int i = 0; i < 64; i++)
        row[i] = (float)(i - 32) * 0.5f;
    row[17] = from_bits(0x7fc00000u);
#pragma omp simd
    for (int i = 0; i < 64; i++)
        row[i] = lt_cpu_expf(row[i]);
    CHECK(isnan(row[17]) && row[16] == lt_cpu_expf(-8.0f) && row[18] == lt_cpu_expf(-7.0f),
          "a NaN in a row stays in its lane");
    return test_summary();
}
