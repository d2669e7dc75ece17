/*
 * cpu_attention.c - the CPU backend's causal grouped-query attention, forward and backward.
 *
 * Forward: tasks are (batch, head, block of queries); each query row computes its scores
 * against the visible keys, a max-subtracted softmax (two passes over the row) and the
 * weighted sum of values, and stores the row's log-sum-exp for the backward.
 * Backward: probabilities are recomputed from the stored log-sum-exp. With enough (batch, kv
 * head) pairs for the threads, one task per pair writes dq, dk and dv in one pass. Otherwise
 * pass 1 (tasks over query blocks) writes dq and pass 2 (tasks over (batch, kv head, block of
 * keys)) writes dk and dv, summing over the group's heads and the queries in a fixed order. No task writes memory
 * another task writes, so there are no atomics and the result does not depend on threads.
 * F16/BF16 keys and values are converted per task into per-thread scratch.
 */
#include "cpu_impl.h"

#include <math.h>
#include <stdlib.h>

#define QB 32 /* queries per forward/backward task */
#define KB 32 /* keys per dk/dv task */

typedef struct attn_geom {
    int64_t B, Tq, Tk, H, Hkv, hd, group, q_offset, n_kv;
    float scale;
    const int32_t *seg;
} attn_geom;

static attn_geom geom(const lt_tensor *q, const lt_tensor *k, const lt_tensor *seg,
                      const lt_attn_params *p)
{
    attn_geom g;
    g.B = q->shape[0];
    g.Tq = q->shape[1];
    g.H = q->shape[2];
    g.hd = q->shape[3];
    g.Tk = k->shape[1];
    g.Hkv = k->shape[2];
    g.group = g.H / g.Hkv;
    g.q_offset = p->q_offset;
    g.n_kv = p->n_kv > 0 ? p->n_kv : g.Tk;
    g.scale = p->scale;
    g.seg = seg ? lt_cpu_i(seg) : NULL;
    return g;
}

/* Fixed-order dot product with eight partial sums (vectorisable, deterministic). */
static inline float dot(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Number of keys query i may see (before segment masking). */
static inline int64_t visible(const attn_geom *g, int64_t i)
{
    int64_t lim = g->q_offset + i + 1;
    return lim < g->n_kv ? lim : g->n_kv;
}

static inline bool seg_ok(const attn_geom *g, int64_t b, int64_t i, int64_t j)
{
    return !g->seg || g->seg[b * g->Tq + i] == g->seg[b * g->Tk + j];
}

/* Rows [j0, j1) of kv head kh of batch b as f32: either straight into the tensor (stride
 * Hkv*hd) or converted into buf (stride hd). Returns the pointer to row j0; *stride set. */
static const float *kv_rows(const lt_tensor *t, const attn_geom *g, int64_t b, int64_t kh,
                            int64_t j0, int64_t j1, float *buf, int64_t *stride)
{
    int64_t base = ((b * g->Tk + j0) * g->Hkv + kh) * g->hd;
    if (t->dtype == LT_F32) {
        *stride = g->Hkv * g->hd;
        return lt_cpu_f(t) + base;
    }
    for (int64_t j = j0; j < j1; j++)
        lt_cpu_to_f32(buf + (j - j0) * g->hd, lt_cpu_data(t), t->dtype,
                      base + (j - j0) * g->Hkv * g->hd, g->hd);
    *stride = g->hd;
    return buf;
}

lt_status lt_cpu_attention(lt_device *dev, lt_tensor *out, lt_tensor *lse, const lt_tensor *q,
                           const lt_tensor *k, const lt_tensor *v, const lt_tensor *seg,
                           const lt_attn_params *p)
{
    attn_geom g = geom(q, k, seg, p);
    const int64_t hd = g.hd, nqb = (g.Tq + QB - 1) / QB, ntask = g.B * g.H * nqb;
    const bool half = k->dtype != LT_F32;
    const float *qp = lt_cpu_f(q);
    float *op = lt_cpu_f(out), *lp = lse ? lt_cpu_f(lse) : NULL;
    int failed = 0, nt = lt_cpu_nt(dev);

#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        float *sc = malloc((size_t)g.Tk * sizeof(float));
        float *kb = half ? malloc((size_t)(g.Tk * hd) * sizeof(float)) : NULL;
        float *vb = half ? malloc((size_t)(g.Tk * hd) * sizeof(float)) : NULL;
        if (!sc || (half && (!kb || !vb)))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / (g.H * nqb), h = (t / nqb) % g.H, qb = t % nqb;
            int64_t i0 = qb * QB, i1 = i0 + QB < g.Tq ? i0 + QB : g.Tq, kh = h / g.group;
            int64_t nk = visible(&g, i1 - 1), ks, vs;
            const float *K = kv_rows(k, &g, b, kh, 0, nk, kb, &ks);
            const float *Vv = kv_rows(v, &g, b, kh, 0, nk, vb, &vs);
            for (int64_t i = i0; i < i1; i++) {
                const float *qi = qp + ((b * g.Tq + i) * g.H + h) * hd;
                float *oi = op + ((b * g.Tq + i) * g.H + h) * hd;
                int64_t lim = visible(&g, i);
                float mx = -INFINITY;
                for (int64_t j = 0; j < lim; j++) {
                    sc[j] = seg_ok(&g, b, i, j) ? g.scale * dot(qi, K + j * ks, hd) : -INFINITY;
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int64_t d = 0; d < hd; d++)
                    oi[d] = 0.0f;
                if (mx == -INFINITY) { /* no visible key */
                    if (lp)
                        lp[(b * g.H + h) * g.Tq + i] = -INFINITY;
                    continue;
                }
                float sum = 0.0f;
                for (int64_t j = 0; j < lim; j++) {
                    float e = sc[j] == -INFINITY ? 0.0f : expf(sc[j] - mx);
                    sc[j] = e;
                    sum += e;
                }
                for (int64_t j = 0; j < lim; j++) {
                    if (sc[j] == 0.0f)
                        continue;
                    const float *vj = Vv + j * vs;
                    float w = sc[j];
                    for (int64_t d = 0; d < hd; d++)
                        oi[d] += w * vj[d];
                }
                float inv = 1.0f / sum;
                for (int64_t d = 0; d < hd; d++)
                    oi[d] *= inv;
                if (lp)
                    lp[(b * g.H + h) * g.Tq + i] = mx + logf(sum);
            }
        }
        free(sc);
        free(kb);
        free(vb);
    }
    if (failed)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_attention: out of host memory for scratch");
    return LT_OK;
}

/* Pass 1: D_i = dout_i . out_i, and dq. */
static int attn_bw_dq(const attn_geom *g, int nt, float *dq, float *Dv, const float *dop,
                      const float *qp, const float *op, const float *lp, const lt_tensor *k,
                      const lt_tensor *v)
{
    const int64_t hd = g->hd, nqb = (g->Tq + QB - 1) / QB, ntask = g->B * g->H * nqb;
    const bool half = k->dtype != LT_F32;
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        float *kb = half ? malloc((size_t)(g->Tk * hd) * sizeof(float)) : NULL;
        float *vb = half ? malloc((size_t)(g->Tk * hd) * sizeof(float)) : NULL;
        if (half && (!kb || !vb))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / (g->H * nqb), h = (t / nqb) % g->H, qb = t % nqb;
            int64_t i0 = qb * QB, i1 = i0 + QB < g->Tq ? i0 + QB : g->Tq, kh = h / g->group;
            int64_t nk = visible(g, i1 - 1), ks, vs;
            const float *K = kv_rows(k, g, b, kh, 0, nk, kb, &ks);
            const float *Vv = kv_rows(v, g, b, kh, 0, nk, vb, &vs);
            for (int64_t i = i0; i < i1; i++) {
                int64_t row = ((b * g->Tq + i) * g->H + h) * hd;
                const float *qi = qp + row, *gi = dop + row;
                float *dqi = dq + row;
                float L = lp[(b * g->H + h) * g->Tq + i];
                float Di = dot(gi, op + row, hd);
                Dv[(b * g->H + h) * g->Tq + i] = Di;
                for (int64_t d = 0; d < hd; d++)
                    dqi[d] = 0.0f;
                if (L == -INFINITY)
                    continue;
                int64_t lim = visible(g, i);
                for (int64_t j = 0; j < lim; j++) {
                    if (!seg_ok(g, b, i, j))
                        continue;
                    const float *kj = K + j * ks;
                    float pij = expf(g->scale * dot(qi, kj, hd) - L);
                    float ds = pij * (dot(gi, Vv + j * vs, hd) - Di) * g->scale;
                    for (int64_t d = 0; d < hd; d++)
                        dqi[d] += ds * kj[d];
                }
            }
        }
        free(kb);
        free(vb);
    }
    return failed;
}

/* Pass 2: dk and dv, one block of keys of one kv head per task. */
static int attn_bw_dkv(const attn_geom *g, int nt, float *dk, float *dv, const float *Dv,
                       const float *dop, const float *qp, const float *lp, const lt_tensor *k,
                       const lt_tensor *v)
{
    const int64_t hd = g->hd, nkb = (g->Tk + KB - 1) / KB, ntask = g->B * g->Hkv * nkb;
    const bool half = k->dtype != LT_F32;
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        float *kb = half ? malloc((size_t)(KB * hd) * sizeof(float)) : NULL;
        float *vb = half ? malloc((size_t)(KB * hd) * sizeof(float)) : NULL;
        if (half && (!kb || !vb))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / (g->Hkv * nkb), kh = (t / nkb) % g->Hkv, blk = t % nkb;
            int64_t j0 = blk * KB, j1 = j0 + KB < g->Tk ? j0 + KB : g->Tk, ks, vs;
            for (int64_t j = j0; j < j1; j++)
                for (int64_t d = 0; d < hd; d++) {
                    dk[((b * g->Tk + j) * g->Hkv + kh) * hd + d] = 0.0f;
                    dv[((b * g->Tk + j) * g->Hkv + kh) * hd + d] = 0.0f;
                }
            if (j0 >= g->n_kv)
                continue;
            const float *K = kv_rows(k, g, b, kh, j0, j1, kb, &ks);
            const float *Vv = kv_rows(v, g, b, kh, j0, j1, vb, &vs);
            int64_t i_first = j0 - g->q_offset > 0 ? j0 - g->q_offset : 0;
            for (int64_t h = kh * g->group; h < (kh + 1) * g->group; h++) {
                for (int64_t i = i_first; i < g->Tq; i++) {
                    float L = lp[(b * g->H + h) * g->Tq + i];
                    int64_t lim = visible(g, i);
                    int64_t je = j1 < lim ? j1 : lim;
                    if (L == -INFINITY)
                        continue;
                    int64_t row = ((b * g->Tq + i) * g->H + h) * hd;
                    const float *qi = qp + row, *gi = dop + row;
                    float Di = Dv[(b * g->H + h) * g->Tq + i];
                    for (int64_t j = j0; j < je; j++) {
                        if (!seg_ok(g, b, i, j))
                            continue;
                        const float *kj = K + (j - j0) * ks, *vj = Vv + (j - j0) * vs;
                        float pij = expf(g->scale * dot(qi, kj, hd) - L);
                        float ds = pij * (dot(gi, vj, hd) - Di) * g->scale;
                        float *dkj = dk + ((b * g->Tk + j) * g->Hkv + kh) * hd;
                        float *dvj = dv + ((b * g->Tk + j) * g->Hkv + kh) * hd;
                        for (int64_t d = 0; d < hd; d++) {
                            dvj[d] += pij * gi[d];
                            dkj[d] += ds * qi[d];
                        }
                    }
                }
            }
        }
        free(kb);
        free(vb);
    }
    return failed;
}

/* One pass, for when there are enough (batch, kv head) pairs to keep every thread busy: a
 * task owns dk and dv of its kv head and dq of the group's heads, and computes each score,
 * probability and dp once (the two-pass path computes them in both passes). The loops run
 * in the two-pass path's order (heads, then queries, then keys), so the bits are the same. */
static int attn_bw_fused(const attn_geom *g, int nt, float *dq, float *dk, float *dv,
                         const float *dop, const float *qp, const float *op, const float *lp,
                         const lt_tensor *k, const lt_tensor *v)
{
    const int64_t hd = g->hd, ntask = g->B * g->Hkv;
    const bool half = k->dtype != LT_F32;
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        float *kb = half ? malloc((size_t)(g->Tk * hd) * sizeof(float)) : NULL;
        float *vb = half ? malloc((size_t)(g->Tk * hd) * sizeof(float)) : NULL;
        if (half && (!kb || !vb))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / g->Hkv, kh = t % g->Hkv, ks, vs;
            for (int64_t j = 0; j < g->Tk; j++)
                for (int64_t d = 0; d < hd; d++) {
                    dk[((b * g->Tk + j) * g->Hkv + kh) * hd + d] = 0.0f;
                    dv[((b * g->Tk + j) * g->Hkv + kh) * hd + d] = 0.0f;
                }
            int64_t nk = g->n_kv < g->Tk ? g->n_kv : g->Tk;
            const float *K = kv_rows(k, g, b, kh, 0, nk, kb, &ks);
            const float *Vv = kv_rows(v, g, b, kh, 0, nk, vb, &vs);
            const int64_t dks = g->Hkv * hd;
            float *dkb = dk + (b * g->Tk * g->Hkv + kh) * hd;
            float *dvb = dv + (b * g->Tk * g->Hkv + kh) * hd;
            for (int64_t h = kh * g->group; h < (kh + 1) * g->group; h++) {
                for (int64_t i = 0; i < g->Tq; i++) {
                    int64_t row = ((b * g->Tq + i) * g->H + h) * hd;
                    const float *qi = qp + row, *gi = dop + row;
                    float *dqi = dq + row;
                    float L = lp[(b * g->H + h) * g->Tq + i];
                    float Di = dot(gi, op + row, hd);
                    for (int64_t d = 0; d < hd; d++)
                        dqi[d] = 0.0f;
                    if (L == -INFINITY)
                        continue;
                    int64_t lim = visible(g, i);
                    for (int64_t j = 0; j < lim; j++) {
                        if (!seg_ok(g, b, i, j))
                            continue;
                        const float *kj = K + j * ks, *vj = Vv + j * vs;
                        float pij = expf(g->scale * dot(qi, kj, hd) - L);
                        float ds = pij * (dot(gi, vj, hd) - Di) * g->scale;
                        float *dkj = dkb + j * dks, *dvj = dvb + j * dks;
                        for (int64_t d = 0; d < hd; d++) {
                            dqi[d] += ds * kj[d];
                            dvj[d] += pij * gi[d];
                            dkj[d] += ds * qi[d];
                        }
                    }
                }
            }
        }
        free(kb);
        free(vb);
    }
    return failed;
}

lt_status lt_cpu_attention_backward(lt_device *dev, lt_tensor *dq, lt_tensor *dk,
                                    lt_tensor *dv, const lt_tensor *dout, const lt_tensor *q,
                                    const lt_tensor *k, const lt_tensor *v,
                                    const lt_tensor *out, const lt_tensor *lse,
                                    const lt_tensor *seg, const lt_attn_params *p)
{
    attn_geom g = geom(q, k, seg, p);
    int nt = lt_cpu_nt(dev);
    if (g.B * g.Hkv >= 2 * (int64_t)nt) {
        if (attn_bw_fused(&g, nt, lt_cpu_f(dq), lt_cpu_f(dk), lt_cpu_f(dv), lt_cpu_f(dout),
                          lt_cpu_f(q), lt_cpu_f(out), lt_cpu_f(lse), k, v))
            return lt_dev_error(dev, LT_ERR_OOM,
                                "lt_attention_backward: out of host memory for scratch");
        return LT_OK;
    }
    float *Dv = malloc((size_t)(g.B * g.H * g.Tq) * sizeof(float));
    if (!Dv)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_attention_backward: out of host memory");
    int failed = attn_bw_dq(&g, nt, lt_cpu_f(dq), Dv, lt_cpu_f(dout), lt_cpu_f(q),
                            lt_cpu_f(out), lt_cpu_f(lse), k, v);
    if (!failed)
        failed = attn_bw_dkv(&g, nt, lt_cpu_f(dk), lt_cpu_f(dv), Dv, lt_cpu_f(dout),
                             lt_cpu_f(q), lt_cpu_f(lse), k, v);
    free(Dv);
    if (failed)
        return lt_dev_error(dev, LT_ERR_OOM,
                            "lt_attention_backward: out of host memory for scratch");
    return LT_OK;
}
