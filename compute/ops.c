/*
 * ops.c - the front end's checks and dispatch for fill/copy, matmul (and its generic
 * backward), elementwise ops and the optimizer ops; the shared argument checks and profiling.
 *
 * Every op here validates all of its arguments before calling the backend, so a failing call
 * records nothing. Backends are never called with a NULL, a wrong dtype, a shape that does
 * not fit or tensors from another device.
 */
#include "ops_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- shared checks ---------------------------------------------------------------------- */

const char *lt_ck_desc(const char *arg, const lt_tensor *t, char *buf, size_t len)
{
    char d[96];
    lt_tensor_describe(t, d, sizeof d);
    if (t && t->name[0])
        snprintf(buf, len, "%s '%s' %s", arg, t->name, d);
    else
        snprintf(buf, len, "%s %s", arg, d);
    return buf;
}

lt_status lt_ck_fail(const lt_opcheck *c, lt_status st, const char *fmt, ...)
{
    if (!c->dev)
        return st;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lt_dev_error(c->dev, st, "%s: %s", c->op, msg);
}

static const char *mask_names(unsigned mask, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int d = 0; d < LT_DTYPE_COUNT; d++)
        if (mask & LT_MASK(d))
            n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "/" : "",
                                  lt_dtype_name((lt_dtype)d));
    return buf;
}

lt_status lt_ck_optional(const lt_opcheck *c, const lt_tensor *t, const char *arg,
                         unsigned mask)
{
    char b[160], m[32];
    if (!t)
        return LT_OK;
    if (t->dev != c->dev)
        return lt_ck_fail(c, LT_ERR_DEVICE_MISMATCH, "%s lives on %s, the op runs on %s",
                          lt_ck_desc(arg, t, b, sizeof b), lt_device_name(t->dev),
                          lt_device_name(c->dev));
    if (!(mask & LT_MASK(t->dtype)))
        return lt_ck_fail(c, LT_ERR_DTYPE, "%s: dtype %s not accepted, expected %s",
                          lt_ck_desc(arg, t, b, sizeof b), lt_dtype_name(t->dtype),
                          mask_names(mask, m, sizeof m));
    return LT_OK;
}

lt_status lt_ck_tensor(const lt_opcheck *c, const lt_tensor *t, const char *arg, unsigned mask)
{
    if (!t)
        return lt_ck_fail(c, LT_ERR_ARG, "%s is NULL", arg);
    return lt_ck_optional(c, t, arg, mask);
}

lt_status lt_ck_numel(const lt_opcheck *c, const lt_tensor *t, const char *arg, int64_t n,
                      const char *what)
{
    char b[160];
    if (t && t->numel != n)
        return lt_ck_fail(c, LT_ERR_SHAPE, "%s has %lld elements, expected %lld (%s)",
                          lt_ck_desc(arg, t, b, sizeof b), (long long)t->numel, (long long)n,
                          what);
    return LT_OK;
}

lt_status lt_ck_same_shape(const lt_opcheck *c, const lt_tensor *a, const char *an,
                           const lt_tensor *b, const char *bn)
{
    char x[160], y[160];
    if (!a || !b)
        return LT_OK;
    bool same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++)
        same = a->shape[i] == b->shape[i];
    if (!same)
        return lt_ck_fail(c, LT_ERR_SHAPE, "%s and %s must have the same shape",
                          lt_ck_desc(an, a, x, sizeof x), lt_ck_desc(bn, b, y, sizeof y));
    return LT_OK;
}

lt_status lt_ck_same_numel(const lt_opcheck *c, const lt_tensor *a, const char *an,
                           const lt_tensor *b, const char *bn)
{
    char x[160], y[160];
    if (a && b && a->numel != b->numel)
        return lt_ck_fail(c, LT_ERR_SHAPE, "%s and %s must have the same number of elements",
                          lt_ck_desc(an, a, x, sizeof x), lt_ck_desc(bn, b, y, sizeof y));
    return LT_OK;
}

lt_status lt_ck_no_overlap(const lt_opcheck *c, const lt_tensor *a, const char *an,
                           const lt_tensor *b, const char *bn, bool allow_exact)
{
    char x[160], y[160];
    if (!a || !b || a->buf != b->buf)
        return LT_OK;
    size_t a0 = a->offset, a1 = a->offset + lt_tensor_bytes(a);
    size_t b0 = b->offset, b1 = b->offset + lt_tensor_bytes(b);
    if (a1 <= b0 || b1 <= a0)
        return LT_OK;
    if (allow_exact && a0 == b0 && a1 == b1 && a->dtype == b->dtype)
        return LT_OK;
    return lt_ck_fail(c, LT_ERR_ARG, "%s and %s share memory%s",
                      lt_ck_desc(an, a, x, sizeof x), lt_ck_desc(bn, b, y, sizeof y),
                      allow_exact ? " (only an exact in-place alias is allowed)"
                                  : " (they must not overlap)");
}

lt_device *lt_ck_device(int n, ...)
{
    va_list ap;
    lt_device *dev = NULL;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const lt_tensor *t = va_arg(ap, const lt_tensor *);
        if (t && !dev)
            dev = t->dev;
    }
    va_end(ap);
    return dev;
}

lt_status lt_ck_ids_range(const lt_opcheck *c, const lt_tensor *ids, const char *arg,
                          int64_t hi, bool use_skip, int skip)
{
    char b[160];
    if (c->dev->kind != LT_DEVICE_CPU)
        return LT_OK; /* device backends flag bad ids at the next sync */
    const int32_t *p = lt_cpu_data(ids);
    for (int64_t i = 0; i < ids->numel; i++) {
        if (use_skip && p[i] == skip)
            continue;
        if (p[i] < 0 || p[i] >= hi)
            return lt_ck_fail(c, LT_ERR_ARG, "%s: element %lld is %d, expected 0..%lld%s",
                              lt_ck_desc(arg, ids, b, sizeof b), (long long)i, (int)p[i],
                              (long long)hi - 1, use_skip ? " or the ignore index" : "");
    }
    return LT_OK;
}

/* ---- profiling -------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double lt_prof_begin(const lt_device *dev)
{
    if (!dev->profiling || dev->be->profiles_itself)
        return 0.0;
    return now_s();
}

void lt_prof_end(lt_device *dev, const char *op, double t0)
{
    if (!dev->profiling || dev->be->profiles_itself)
        return;
    double dt = now_s() - t0;
    for (int i = 0; i < dev->n_profile; i++) {
        if (strcmp(dev->profile[i].op, op) == 0) {
            dev->profile[i].calls++;
            dev->profile[i].seconds += dt;
            return;
        }
    }
    if (dev->n_profile < LT_PROFILE_MAX) {
        lt_profile_entry *e = &dev->profile[dev->n_profile++];
        e->op = op;
        e->calls = 1;
        e->seconds = dt;
    }
}

/* ---- fill, copy ------------------------------------------------------------------------- */

#define LT_MASK_ANY (LT_MASK_FLOAT | LT_MASK(LT_I32))

lt_status lt_fill(lt_tensor *t, float value)
{
    lt_opcheck c = {lt_ck_device(1, t), "lt_fill"};
    CK(lt_ck_tensor(&c, t, "t", LT_MASK_ANY));
    if (isnan(value) && t->dtype == LT_I32)
        return lt_ck_fail(&c, LT_ERR_ARG, "cannot fill an i32 tensor with NaN");
    LT_DISPATCH(c.dev, "fill", c.dev->be->fill(c.dev, t, value));
}

lt_status lt_copy(lt_tensor *dst, const lt_tensor *src)
{
    lt_opcheck c = {lt_ck_device(2, dst, src), "lt_copy"};
    char x[160], y[160];
    CK(lt_ck_tensor(&c, dst, "dst", LT_MASK_ANY));
    CK(lt_ck_tensor(&c, src, "src", LT_MASK_ANY));
    CK(lt_ck_same_numel(&c, dst, "dst", src, "src"));
    if ((dst->dtype == LT_I32) != (src->dtype == LT_I32))
        return lt_ck_fail(&c, LT_ERR_DTYPE, "%s and %s: i32 copies only to i32",
                          lt_ck_desc("dst", dst, x, sizeof x),
                          lt_ck_desc("src", src, y, sizeof y));
    CK(lt_ck_no_overlap(&c, dst, "dst", src, "src", false));
    LT_DISPATCH(c.dev, "copy", c.dev->be->copy(c.dev, dst, src));
}

/* ---- matmul ----------------------------------------------------------------------------- */

/* Checks C = op(A) op(B) and fills the geometry. */
static lt_status matmul_geom(const lt_opcheck *c, const lt_tensor *C, const lt_tensor *A,
                             const lt_tensor *B, bool ta, bool tb, lt_matmul_geom *g)
{
    char x[160], y[160], z[160];
    CK(lt_ck_tensor(c, C, "C", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, A, "A", LT_MASK_FLOAT));
    CK(lt_ck_tensor(c, B, "B", LT_MASK_FLOAT | LT_MASK(LT_NF4)));
    if (B->dtype == LT_NF4) {
        if (A->dtype != LT_F32 || B->ndim != 2)
            return lt_ck_fail(c, LT_ERR_DTYPE,
                              "%s with NF4 %s: an NF4 weight must be 2-D and A must be F32",
                              lt_ck_desc("A", A, x, sizeof x), lt_ck_desc("B", B, y, sizeof y));
        if (!c->dev->be->matmul_nf4)
            return lt_ck_fail(c, LT_ERR_UNSUPPORTED,
                              "%s is NF4 and the %s backend has no NF4 matmul",
                              lt_ck_desc("B", B, y, sizeof y), c->dev->be->name);
    }
    const lt_tensor *ts[3] = {C, A, B};
    const char *names[3] = {"C", "A", "B"};
    for (int i = 0; i < 3; i++)
        if (ts[i]->ndim != 2 && ts[i]->ndim != 3)
            return lt_ck_fail(c, LT_ERR_SHAPE, "%s must be 2-D or 3-D",
                              lt_ck_desc(names[i], ts[i], x, sizeof x));
    int an = A->ndim, bn = B->ndim;
    int64_t M = ta ? A->shape[an - 1] : A->shape[an - 2];
    int64_t Ka = ta ? A->shape[an - 2] : A->shape[an - 1];
    int64_t Kb = tb ? B->shape[bn - 1] : B->shape[bn - 2];
    int64_t N = tb ? B->shape[bn - 2] : B->shape[bn - 1];
    int64_t ba = an == 3 ? A->shape[0] : 0, bb = bn == 3 ? B->shape[0] : 0;
    int64_t batch = ba > bb ? ba : bb;
    bool shapes_ok = Ka == Kb && !(ba && bb && ba != bb);
    if (shapes_ok) {
        if (batch == 0)
            shapes_ok = C->ndim == 2 && C->shape[0] == M && C->shape[1] == N;
        else
            shapes_ok = C->ndim == 3 && C->shape[0] == batch && C->shape[1] == M &&
                        C->shape[2] == N;
    }
    if (!shapes_ok)
        return lt_ck_fail(c, LT_ERR_SHAPE,
                          "%s%s times %s%s does not give %s: expected op(A) [.., M, K], "
                          "op(B) [.., K, N], C [.., M, N] with equal batches",
                          lt_ck_desc("A", A, x, sizeof x), ta ? " (transposed)" : "",
                          lt_ck_desc("B", B, y, sizeof y), tb ? " (transposed)" : "",
                          lt_ck_desc("C", C, z, sizeof z));
    CK(lt_ck_no_overlap(c, C, "C", A, "A", false));
    CK(lt_ck_no_overlap(c, C, "C", B, "B", false));
    g->batch = batch ? batch : 1;
    g->M = M;
    g->N = N;
    g->K = Ka;
    g->a_batched = ba != 0;
    g->b_batched = bb != 0;
    return LT_OK;
}

lt_status lt_matmul(lt_tensor *C, const lt_tensor *A, const lt_tensor *B, bool trans_a,
                    bool trans_b, float alpha, float beta)
{
    lt_opcheck c = {lt_ck_device(3, C, A, B), "lt_matmul"};
    lt_matmul_geom g;
    if (!c.dev)
        return LT_ERR_ARG;
    CK(matmul_geom(&c, C, A, B, trans_a, trans_b, &g));
    if (!isfinite(alpha) || !isfinite(beta))
        return lt_ck_fail(&c, LT_ERR_ARG, "alpha %g and beta %g must be finite", alpha, beta);
    if (B->dtype == LT_NF4)
        LT_DISPATCH(c.dev, "matmul_nf4",
                    c.dev->be->matmul_nf4(c.dev, C, A, B, trans_a, trans_b, alpha, beta, &g));
    LT_DISPATCH(c.dev, "matmul",
                c.dev->be->matmul(c.dev, C, A, B, trans_a, trans_b, alpha, beta, &g));
}

/* A 2-D view of a 3-D tensor's batch entry i (or the 3-D tensor flattened when i < 0). */
static lt_tensor *mat_view(const lt_tensor *t, int64_t i)
{
    int64_t r = t->shape[1], cols = t->shape[2];
    int64_t s[2] = {i < 0 ? t->shape[0] * r : r, cols};
    return lt_tensor_view((lt_tensor *)t, i < 0 ? 0 : i * r * cols, 2, s);
}

/* g += X^T-or-not @ Y^T-or-not where g is 2-D and X, Y are 3-D: the batch is summed. */
static lt_status matmul_reduce(lt_device *dev, lt_tensor *grad, const lt_tensor *X,
                               const lt_tensor *Y, bool tx, bool ty)
{
    lt_status st = LT_OK;
    int64_t batch = X->ndim == 3 ? X->shape[0] : Y->shape[0];
    /* X^T Y over flattened rows when both are 3-D and contracted over their row dim */
    if (X->ndim == 3 && Y->ndim == 3 && tx && !ty) {
        lt_tensor *xv = mat_view(X, -1), *yv = mat_view(Y, -1);
        st = (xv && yv) ? lt_matmul(grad, xv, yv, true, false, 1.0f, 1.0f) : LT_ERR_OOM;
        lt_tensor_free(xv);
        lt_tensor_free(yv);
        return st;
    }
    for (int64_t b = 0; b < batch && st == LT_OK; b++) {
        lt_tensor *xv = X->ndim == 3 ? mat_view(X, b) : NULL;
        lt_tensor *yv = Y->ndim == 3 ? mat_view(Y, b) : NULL;
        if ((X->ndim == 3 && !xv) || (Y->ndim == 3 && !yv))
            st = lt_dev_error(dev, LT_ERR_OOM, "lt_matmul_backward: out of host memory");
        else
            st = lt_matmul(grad, xv ? xv : X, yv ? yv : Y, tx, ty, 1.0f, 1.0f);
        lt_tensor_free(xv);
        lt_tensor_free(yv);
    }
    return st;
}

lt_status lt_matmul_backward(lt_tensor *dA, lt_tensor *dB, const lt_tensor *dC,
                             const lt_tensor *A, const lt_tensor *B, bool trans_a, bool trans_b)
{
    lt_opcheck c = {lt_ck_device(5, dC, A, B, dA, dB), "lt_matmul_backward"};
    lt_matmul_geom g;
    if (!c.dev)
        return LT_ERR_ARG;
    CK(matmul_geom(&c, (lt_tensor *)dC, A, B, trans_a, trans_b, &g));
    CK(lt_ck_optional(&c, dA, "dA", LT_MASK(LT_F32)));
    CK(lt_ck_optional(&c, dB, "dB", LT_MASK(LT_F32)));
    CK(lt_ck_same_shape(&c, dA, "dA", A, "A"));
    CK(lt_ck_same_shape(&c, dB, "dB", B, "B"));
    if (B->dtype == LT_NF4 && (dB || trans_a))
        return lt_ck_fail(&c, LT_ERR_DTYPE,
                          "B '%s' is NF4 (a frozen quantized weight): it has no gradient dB, and "
                          "dA is supported only without trans_a",
                          B->name);
    const lt_tensor *ins[3] = {dC, A, B};
    const char *in_names[3] = {"dC", "A", "B"};
    for (int i = 0; i < 3; i++) {
        CK(lt_ck_no_overlap(&c, dA, "dA", ins[i], in_names[i], false));
        CK(lt_ck_no_overlap(&c, dB, "dB", ins[i], in_names[i], false));
    }
    CK(lt_ck_no_overlap(&c, dA, "dA", dB, "dB", false));

    lt_status st = LT_OK;
    /* C = op(A) op(B). dA: op(A) gets dC op(B)^T; dB: op(B) gets op(A)^T dC. */
    if (dA) {
        bool reduce = A->ndim == 2 && dC->ndim == 3;
        if (!trans_a) /* dA [M,K] += dC [M,N] @ op(B)^T */
            st = reduce ? matmul_reduce(c.dev, dA, dC, B, false, !trans_b)
                        : lt_matmul(dA, dC, B, false, !trans_b, 1.0f, 1.0f);
        else /* dA [K,M] += op(B) @ dC^T */
            st = reduce ? matmul_reduce(c.dev, dA, B, dC, trans_b, true)
                        : lt_matmul(dA, B, dC, trans_b, true, 1.0f, 1.0f);
        if (st != LT_OK)
            return st;
    }
    if (dB) {
        bool reduce = B->ndim == 2 && dC->ndim == 3;
        if (!trans_b) /* dB [K,N] += op(A)^T @ dC */
            st = reduce ? matmul_reduce(c.dev, dB, A, dC, !trans_a, false)
                        : lt_matmul(dB, A, dC, !trans_a, false, 1.0f, 1.0f);
        else /* dB [N,K] += dC^T @ op(A) */
            st = reduce ? matmul_reduce(c.dev, dB, dC, A, true, trans_a)
                        : lt_matmul(dB, dC, A, true, trans_a, 1.0f, 1.0f);
    }
    return st;
}

/* ---- elementwise ------------------------------------------------------------------------ */

/* out = f(x): F32, same numel, out may be x itself. */
static lt_status check_unary(lt_opcheck *c, const lt_tensor *out, const lt_tensor *x)
{
    CK(lt_ck_tensor(c, out, "out", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, x, "x", LT_MASK(LT_F32)));
    CK(lt_ck_same_numel(c, out, "out", x, "x"));
    return lt_ck_no_overlap(c, out, "out", x, "x", true);
}

/* dx = dout * f'(x): F32, same numel, dx may be dout or x itself. */
static lt_status check_unary_bw(lt_opcheck *c, const lt_tensor *dx, const lt_tensor *dout,
                                const lt_tensor *x)
{
    CK(lt_ck_tensor(c, dx, "dx", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, dout, "dout", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, x, "x", LT_MASK(LT_F32)));
    CK(lt_ck_same_numel(c, dx, "dx", dout, "dout"));
    CK(lt_ck_same_numel(c, dx, "dx", x, "x"));
    CK(lt_ck_no_overlap(c, dx, "dx", dout, "dout", true));
    return lt_ck_no_overlap(c, dx, "dx", x, "x", true);
}

lt_status lt_silu(lt_tensor *out, const lt_tensor *x)
{
    lt_opcheck c = {lt_ck_device(2, out, x), "lt_silu"};
    CK(check_unary(&c, out, x));
    LT_DISPATCH(c.dev, "silu", c.dev->be->silu(c.dev, out, x));
}

lt_status lt_silu_backward(lt_tensor *dx, const lt_tensor *dout, const lt_tensor *x)
{
    lt_opcheck c = {lt_ck_device(3, dx, dout, x), "lt_silu_backward"};
    CK(check_unary_bw(&c, dx, dout, x));
    LT_DISPATCH(c.dev, "silu_backward", c.dev->be->silu_backward(c.dev, dx, dout, x));
}

lt_status lt_gelu(lt_tensor *out, const lt_tensor *x)
{
    lt_opcheck c = {lt_ck_device(2, out, x), "lt_gelu"};
    CK(check_unary(&c, out, x));
    LT_DISPATCH(c.dev, "gelu", c.dev->be->gelu(c.dev, out, x));
}

lt_status lt_gelu_backward(lt_tensor *dx, const lt_tensor *dout, const lt_tensor *x)
{
    lt_opcheck c = {lt_ck_device(3, dx, dout, x), "lt_gelu_backward"};
    CK(check_unary_bw(&c, dx, dout, x));
    LT_DISPATCH(c.dev, "gelu_backward", c.dev->be->gelu_backward(c.dev, dx, dout, x));
}

lt_status lt_swiglu(lt_tensor *out, const lt_tensor *gate, const lt_tensor *up)
{
    lt_opcheck c = {lt_ck_device(3, out, gate, up), "lt_swiglu"};
    CK(lt_ck_tensor(&c, out, "out", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, gate, "gate", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, up, "up", LT_MASK(LT_F32)));
    CK(lt_ck_same_numel(&c, out, "out", gate, "gate"));
    CK(lt_ck_same_numel(&c, out, "out", up, "up"));
    CK(lt_ck_no_overlap(&c, out, "out", gate, "gate", true));
    CK(lt_ck_no_overlap(&c, out, "out", up, "up", true));
    LT_DISPATCH(c.dev, "swiglu", c.dev->be->swiglu(c.dev, out, gate, up));
}

lt_status lt_swiglu_backward(lt_tensor *dgate, lt_tensor *dup, const lt_tensor *dout,
                             const lt_tensor *gate, const lt_tensor *up)
{
    lt_opcheck c = {lt_ck_device(5, dgate, dup, dout, gate, up), "lt_swiglu_backward"};
    CK(lt_ck_tensor(&c, dgate, "dgate", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dup, "dup", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dout, "dout", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, gate, "gate", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, up, "up", LT_MASK(LT_F32)));
    const lt_tensor *all[5] = {dgate, dup, dout, gate, up};
    const char *nm[5] = {"dgate", "dup", "dout", "gate", "up"};
    for (int i = 1; i < 5; i++)
        CK(lt_ck_same_numel(&c, all[0], nm[0], all[i], nm[i]));
    CK(lt_ck_no_overlap(&c, dgate, "dgate", dup, "dup", false));
    for (int i = 2; i < 5; i++) {
        CK(lt_ck_no_overlap(&c, dgate, "dgate", all[i], nm[i], true));
        CK(lt_ck_no_overlap(&c, dup, "dup", all[i], nm[i], true));
    }
    LT_DISPATCH(c.dev, "swiglu_backward",
                c.dev->be->swiglu_backward(c.dev, dgate, dup, dout, gate, up));
}

void lt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* out = x * mask * 1/(1-p): F32, same numel, out may be x itself; p in [0, 1). */
static lt_status dropout_op(const char *op, lt_tensor *out, const char *on, const lt_tensor *x,
                            const char *xn, float p, uint64_t key, uint64_t first)
{
    lt_opcheck c = {lt_ck_device(2, out, x), op};
    CK(lt_ck_tensor(&c, out, on, LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, x, xn, LT_MASK(LT_F32)));
    CK(lt_ck_same_numel(&c, out, on, x, xn));
    CK(lt_ck_no_overlap(&c, out, on, x, xn, true));
    if (!(p >= 0.0f && p < 1.0f))
        return lt_ck_fail(&c, LT_ERR_ARG, "dropout probability p = %g must be in [0, 1)",
                          (double)p);
    if (first > UINT64_MAX - (uint64_t)x->numel)
        return lt_ck_fail(&c, LT_ERR_ARG, "dropout counter %llu + %lld elements overflows 64 bits",
                          (unsigned long long)first, (long long)x->numel);
    LT_DISPATCH(c.dev, "dropout",
                c.dev->be->dropout(c.dev, out, x, p, 1.0f / (1.0f - p), key, first));
}

lt_status lt_dropout(lt_tensor *out, const lt_tensor *x, float p, uint64_t key, uint64_t first)
{
    return dropout_op("lt_dropout", out, "out", x, "x", p, key, first);
}

lt_status lt_dropout_backward(lt_tensor *dx, const lt_tensor *dout, float p, uint64_t key,
                              uint64_t first)
{
    return dropout_op("lt_dropout_backward", dx, "dx", dout, "dout", p, key, first);
}

lt_status lt_add(lt_tensor *out, const lt_tensor *a, const lt_tensor *b)
{
    lt_opcheck c = {lt_ck_device(3, out, a, b), "lt_add"};
    CK(lt_ck_tensor(&c, out, "out", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, a, "a", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, b, "b", LT_MASK(LT_F32)));
    CK(lt_ck_same_numel(&c, out, "out", a, "a"));
    CK(lt_ck_same_numel(&c, out, "out", b, "b"));
    CK(lt_ck_no_overlap(&c, out, "out", a, "a", true));
    CK(lt_ck_no_overlap(&c, out, "out", b, "b", true));
    LT_DISPATCH(c.dev, "add", c.dev->be->add(c.dev, out, a, b));
}

lt_status lt_scale(lt_tensor *x, float alpha)
{
    lt_opcheck c = {lt_ck_device(1, x), "lt_scale"};
    CK(lt_ck_tensor(&c, x, "x", LT_MASK(LT_F32)));
    LT_DISPATCH(c.dev, "scale", c.dev->be->scale(c.dev, x, alpha));
}

lt_status lt_axpy(lt_tensor *y, float alpha, const lt_tensor *x)
{
    lt_opcheck c = {lt_ck_device(2, y, x), "lt_axpy"};
    CK(lt_ck_tensor(&c, y, "y", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, x, "x", LT_MASK(LT_F32)));
    CK(lt_ck_same_numel(&c, y, "y", x, "x"));
    CK(lt_ck_no_overlap(&c, y, "y", x, "x", true));
    LT_DISPATCH(c.dev, "axpy", c.dev->be->axpy(c.dev, y, alpha, x));
}

lt_status lt_bias_add(lt_tensor *x, const lt_tensor *b)
{
    lt_opcheck c = {lt_ck_device(2, x, b), "lt_bias_add"};
    CK(lt_ck_tensor(&c, x, "x", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, b, "b", LT_MASK_FLOAT));
    CK(lt_ck_numel(&c, b, "b", x->shape[x->ndim - 1], "the last dim of x"));
    CK(lt_ck_no_overlap(&c, x, "x", b, "b", false));
    LT_DISPATCH(c.dev, "bias_add", c.dev->be->bias_add(c.dev, x, b));
}

lt_status lt_bias_backward(lt_tensor *db, const lt_tensor *dout)
{
    lt_opcheck c = {lt_ck_device(2, db, dout), "lt_bias_backward"};
    CK(lt_ck_tensor(&c, db, "db", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dout, "dout", LT_MASK(LT_F32)));
    CK(lt_ck_numel(&c, db, "db", dout->shape[dout->ndim - 1], "the last dim of dout"));
    CK(lt_ck_no_overlap(&c, db, "db", dout, "dout", false));
    LT_DISPATCH(c.dev, "bias_backward", c.dev->be->bias_backward(c.dev, db, dout));
}

/* ---- optimizer -------------------------------------------------------------------------- */

lt_status lt_adamw(lt_tensor *param, const lt_tensor *grad, lt_tensor *m, lt_tensor *v,
                   const lt_adamw_params *p, float grad_scale)
{
    lt_opcheck c = {lt_ck_device(4, param, grad, m, v), "lt_adamw"};
    CK(lt_ck_tensor(&c, param, "param", LT_MASK_FLOAT));
    CK(lt_ck_tensor(&c, grad, "grad", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, m, "m", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, v, "v", LT_MASK(LT_F32)));
    CK(lt_ck_same_numel(&c, param, "param", grad, "grad"));
    CK(lt_ck_same_numel(&c, param, "param", m, "m"));
    CK(lt_ck_same_numel(&c, param, "param", v, "v"));
    const lt_tensor *all[4] = {param, grad, m, v};
    const char *nm[4] = {"param", "grad", "m", "v"};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CK(lt_ck_no_overlap(&c, all[i], nm[i], all[j], nm[j], false));
    if (!p)
        return lt_ck_fail(&c, LT_ERR_ARG, "params is NULL");
    if (p->step < 1)
        return lt_ck_fail(&c, LT_ERR_ARG, "step is %lld, expected >= 1 (counts from 1)",
                          (long long)p->step);
    if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1))
        return lt_ck_fail(&c, LT_ERR_ARG, "betas (%g, %g) must be in [0, 1)", p->beta1,
                          p->beta2);
    if (!(p->eps > 0) || !isfinite(p->lr) || !(p->lr >= 0) || !isfinite(p->weight_decay) ||
        !(p->weight_decay >= 0) || !isfinite(grad_scale))
        return lt_ck_fail(&c, LT_ERR_ARG,
                          "lr %g, eps %g, weight_decay %g, grad_scale %g: expected lr >= 0, "
                          "eps > 0, weight_decay >= 0, finite grad_scale",
                          p->lr, p->eps, p->weight_decay, grad_scale);
    LT_DISPATCH(c.dev, "adamw", c.dev->be->adamw(c.dev, param, grad, m, v, p, grad_scale));
}

static lt_status check_grads(lt_opcheck *c, lt_tensor *const *grads, int n)
{
    char name[32];
    if (!grads || n < 1)
        return lt_ck_fail(c, LT_ERR_ARG, "needs at least one gradient (got %d%s)", n,
                          grads ? "" : ", grads is NULL");
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "grads[%d]", i);
        CK(lt_ck_tensor(c, grads[i], name, LT_MASK(LT_F32)));
    }
    return LT_OK;
}

lt_status lt_grad_norm(lt_tensor *out, lt_tensor *const *grads, int n_grads)
{
    lt_opcheck c = {lt_ck_device(2, out, grads && n_grads > 0 ? grads[0] : NULL),
                    "lt_grad_norm"};
    if (!c.dev)
        return LT_ERR_ARG;
    CK(lt_ck_tensor(&c, out, "out", LT_MASK(LT_F32)));
    CK(lt_ck_numel(&c, out, "out", 1, "the norm"));
    CK(check_grads(&c, grads, n_grads));
    for (int i = 0; i < n_grads; i++)
        CK(lt_ck_no_overlap(&c, out, "out", grads[i], "a gradient", false));
    LT_DISPATCH(c.dev, "grad_norm", c.dev->be->grad_norm(c.dev, out, grads, n_grads));
}

lt_status lt_clip_grad_norm(lt_tensor *const *grads, int n_grads, const lt_tensor *norm,
                            float max_norm)
{
    lt_opcheck c = {lt_ck_device(2, norm, grads && n_grads > 0 ? grads[0] : NULL),
                    "lt_clip_grad_norm"};
    if (!c.dev)
        return LT_ERR_ARG;
    CK(lt_ck_tensor(&c, norm, "norm", LT_MASK(LT_F32)));
    CK(lt_ck_numel(&c, norm, "norm", 1, "the norm from lt_grad_norm"));
    CK(check_grads(&c, grads, n_grads));
    for (int i = 0; i < n_grads; i++)
        CK(lt_ck_no_overlap(&c, norm, "norm", grads[i], "a gradient", false));
    if (!(max_norm > 0) || !isfinite(max_norm))
        return lt_ck_fail(&c, LT_ERR_ARG, "max_norm is %g, expected a finite value > 0",
                          max_norm);
    LT_DISPATCH(c.dev, "clip_grad_norm",
                c.dev->be->clip_grad_norm(c.dev, grads, n_grads, norm, max_norm));
}
