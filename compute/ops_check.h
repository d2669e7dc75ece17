/*
 * ops_check.h - argument checks shared by the front end's op files (ops.c, ops_nn.c).
 *
 * Each check writes one message naming the op, the argument, the tensor (name, dtype, shape)
 * and what was expected, and returns a status; CK() returns it from the calling op. Only the
 * front end includes this; backends never see unchecked arguments.
 */
#ifndef LATHE_OPS_CHECK_H
#define LATHE_OPS_CHECK_H

#include "compute_impl.h"

/* The op being checked: its device (from the first non-NULL tensor) and its name. */
typedef struct lt_opcheck {
    lt_device *dev;
    const char *op;
} lt_opcheck;

#define CK(expr)                                                                              \
    do {                                                                                      \
        lt_status ck_st_ = (expr);                                                            \
        if (ck_st_ != LT_OK)                                                                  \
            return ck_st_;                                                                    \
    } while (0)

#define LT_MASK(dt) (1u << (dt))
#define LT_MASK_FLOAT (LT_MASK(LT_F32) | LT_MASK(LT_F16) | LT_MASK(LT_BF16))

/* "x 'name' f32[2, 3]" (name only when set) into buf. */
const char *lt_ck_desc(const char *arg, const lt_tensor *t, char *buf, size_t len);

/* t must be non-NULL, live on c->dev and have a dtype in mask. */
lt_status lt_ck_tensor(const lt_opcheck *c, const lt_tensor *t, const char *arg, unsigned mask);
/* Same, but t may be NULL. */
lt_status lt_ck_optional(const lt_opcheck *c, const lt_tensor *t, const char *arg,
                         unsigned mask);
/* t's element count must be n (what says what n is, e.g. "N = 7 rows"). */
lt_status lt_ck_numel(const lt_opcheck *c, const lt_tensor *t, const char *arg, int64_t n,
                      const char *what);
/* a and b must have identical shapes. */
lt_status lt_ck_same_shape(const lt_opcheck *c, const lt_tensor *a, const char *an,
                           const lt_tensor *b, const char *bn);
/* a and b must have the same element count. */
lt_status lt_ck_same_numel(const lt_opcheck *c, const lt_tensor *a, const char *an,
                           const lt_tensor *b, const char *bn);
/* a and b must not share memory; with allow_exact, sharing exactly the same elements (an
 * in-place op) is accepted. NULLs pass. */
lt_status lt_ck_no_overlap(const lt_opcheck *c, const lt_tensor *a, const char *an,
                           const lt_tensor *b, const char *bn, bool allow_exact);
/* The error for a NULL or out-of-range scalar argument. */
lt_status lt_ck_fail(const lt_opcheck *c, lt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The first non-NULL tensor's device, or NULL. */
lt_device *lt_ck_device(int n, ...);

/* Profiling around a backend call (wall clock, when the backend does not time itself). */
double lt_prof_begin(const lt_device *dev);
void lt_prof_end(lt_device *dev, const char *op, double t0);

#define LT_DISPATCH(dev, opname, call)                                                        \
    do {                                                                                      \
        double pt0_ = lt_prof_begin(dev);                                                     \
        lt_status dst_ = (call);                                                              \
        lt_prof_end(dev, opname, pt0_);                                                       \
        return dst_;                                                                          \
    } while (0)

/* For host-visible (CPU) tensors: every I32 value must be in [0, hi) or equal skip. */
lt_status lt_ck_ids_range(const lt_opcheck *c, const lt_tensor *ids, const char *arg,
                          int64_t hi, bool use_skip, int skip);

#endif
