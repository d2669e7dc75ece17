/*
 * cpu_attention.c - the CPU backend's causal grouped-query attention, forward and backward.
 *
 * Both run on tiles through BLAS: a tile is a block of at most QB queries of one (batch,
 * head) against the keys the block's last query can see, so the causal upper half is skipped
 * but for one triangle per block. Forward: S = scale Q K^T (sgemm), masking (causal, segment
 * ids, sliding window) and a max-subtracted softmax per row with the stored log-sum-exp, then
 * O = P V (sgemm) divided by the row sums. With a sliding window a forward tile starts at the
 * first key its first query sees; the backward masks, and skips key blocks no query of a
 * block sees. Backward: probabilities are recomputed from the stored log-sum-exp,
 * dP = dO V^T, dS = scale P (dP - rowsum(P o dP)), then dQ = dS K, dV += P^T dO and
 * dK += dS^T Q, all sgemm. With enough (batch, kv head) pairs for the threads, one task per
 * pair writes dq, dk and dv (query blocks in order, heads of the group in order). Otherwise
 * pass 1 (tasks over query blocks) writes dq and pass 2 (tasks over (batch, kv head, block of
 * keys)) writes dk and dv, walking the group's heads and query blocks in the same order. No
 * task writes memory another task writes and each BLAS call runs on one thread inside the
 * parallel region, so there are no atomics and the result does not depend on scheduling.
 * Scratch is per thread and bounded: two QB x Tk score tiles (QB shrinks for long keys), and
 * F16/BF16 keys and values converted to f32.
 */
#include "cpu_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#define QB 64                          /* queries per tile (at most) */
#define KB 64                          /* keys per dk/dv task in the two-pass backward */
#define TILE_FLOATS ((int64_t)1 << 20) /* bound on a score tile: QB shrinks for long keys */

typedef struct attn_geom {
    int64_t B, Tq, Tk, H, Hkv, hd, group, q_offset, n_kv;
    int64_t window;   /* sliding window (keys per query, itself included), 0 = none */
    int64_t qb;       /* queries per tile */
    int64_t ldq, ldk; /* row strides of q/out/dout (H*hd) and of k/v/dk/dv (Hkv*hd) */
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
    if (g.n_kv > g.Tk)
        g.n_kv = g.Tk;
    g.window = p->window;
    g.scale = p->scale;
    g.seg = seg ? lt_cpu_i(seg) : NULL;
    g.qb = QB;
    while (g.qb > 8 && g.qb * g.Tk > TILE_FLOATS)
        g.qb /= 2;
    g.ldq = g.H * g.hd;
    g.ldk = g.Hkv * g.hd;
    return g;
}

/* Number of keys query i may see (before segment masking). */
static inline int64_t visible(const attn_geom *g, int64_t i)
{
    int64_t lim = g->q_offset + i + 1;
    return lim < g->n_kv ? lim : g->n_kv;
}

/* First key query i may see: 0, or with a sliding window q_offset + i - window + 1. */
static inline int64_t first_visible(const attn_geom *g, int64_t i)
{
    int64_t lo = g->window > 0 ? g->q_offset + i - g->window + 1 : 0;
    return lo > 0 ? lo : 0;
}

/* Rows [j0, j1) of kv head kh of batch b as f32: either straight into the tensor (stride
 * Hkv*hd) or converted into buf (stride hd). Returns the pointer to row j0; *stride set. */
static const float *kv_rows(const lt_tensor *t, const attn_geom *g, int64_t b, int64_t kh,
                            int64_t j0, int64_t j1, float *buf, int64_t *stride)
{
    int64_t base = ((b * g->Tk + j0) * g->Hkv + kh) * g->hd;
    if (t->dtype == LT_F32) {
        *stride = g->ldk;
        return lt_cpu_f(t) + base;
    }
    for (int64_t j = j0; j < j1; j++)
        lt_cpu_to_f32(buf + (j - j0) * g->hd, lt_cpu_data(t), t->dtype, base + (j - j0) * g->ldk,
                      g->hd);
    *stride = g->hd;
    return buf;
}

/* C (m x n, ldc) = alpha op(A) op(B) + beta C on the calling thread's BLAS. */
static inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                        float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* Sets the scores of row i (query i of batch b) that the query may not see to -inf: keys
 * j0 + j for j in [0, n) past the causal limit, before the sliding window or in another
 * segment. */
static inline void mask_row(const attn_geom *g, float *s, int64_t b, int64_t i, int64_t j0,
                            int64_t n)
{
    int64_t lim = visible(g, i) - j0;
    for (int64_t j = lim < 0 ? 0 : lim; j < n; j++)
        s[j] = -INFINITY;
    for (int64_t j = 0, lo = first_visible(g, i) - j0; j < lo && j < n; j++)
        s[j] = -INFINITY;
    if (g->seg) {
        int32_t si = g->seg[b * g->Tq + i];
        const int32_t *sk = g->seg + b * g->Tk + j0;
        int64_t e = lim < n ? lim : n;
        for (int64_t j = 0; j < e; j++)
            if (sk[j] != si)
                s[j] = -INFINITY;
    }
}

/* Per-thread scratch of a forward or backward task. */
typedef struct attn_scratch {
    float *s;       /* (qb, Tk) scores, then probabilities */
    float *dp;      /* (qb, Tk) dP, then dS (backward only) */
    float *kb, *vb; /* (Tk, hd) f32 copies of F16/BF16 keys and values, else NULL */
    float *row;     /* (qb) per-row 1/sum (forward) */
} attn_scratch;

static void scratch_free(attn_scratch *sc)
{
    free(sc->s);
    free(sc->dp);
    free(sc->kb);
    free(sc->vb);
    free(sc->row);
}

static bool scratch_alloc(attn_scratch *sc, const attn_geom *g, bool half, bool backward)
{
    size_t tile = (size_t)(g->qb * g->Tk) * sizeof(float);
    size_t rows = (size_t)(g->Tk * g->hd) * sizeof(float);
    sc->s = malloc(tile);
    sc->dp = backward ? malloc(tile) : NULL;
    sc->kb = half ? malloc(rows) : NULL;
    sc->vb = half ? malloc(rows) : NULL;
    sc->row = malloc((size_t)g->qb * sizeof(float));
    return sc->s && sc->row && (!backward || sc->dp) && (!half || (sc->kb && sc->vb));
}

/* Forward of queries [i0, i1) of head h of batch b. */
static void attn_fwd_tile(const attn_geom *g, attn_scratch *sc, const float *qp, float *op,
                          float *lp, const lt_tensor *k, const lt_tensor *v, int64_t b, int64_t h,
                          int64_t i0, int64_t i1)
{
    /* keys [k0, k0 + nk): from the first key the block's first query sees (a sliding window
     * starts it past 0) to the last key its last query sees */
    const int64_t k0 = first_visible(g, i0), nk = visible(g, i1 - 1) - k0, kh = h / g->group;
    const int64_t n = i1 - i0, row0 = (b * g->Tq + i0) * g->ldq + h * g->hd;
    float *o = op + row0;
    if (nk <= 0) { /* no query of the block sees a key */
        for (int64_t r = 0; r < n; r++) {
            for (int64_t d = 0; d < g->hd; d++)
                o[r * g->ldq + d] = 0.0f;
            if (lp)
                lp[(b * g->H + h) * g->Tq + i0 + r] = -INFINITY;
        }
        return;
    }
    int64_t ks, vs;
    const float *K = kv_rows(k, g, b, kh, k0, k0 + nk, sc->kb, &ks);
    const float *V = kv_rows(v, g, b, kh, k0, k0 + nk, sc->vb, &vs);
    gemm(false, true, n, nk, g->hd, g->scale, qp + row0, g->ldq, K, ks, 0.0f, sc->s, nk);
    for (int64_t r = 0; r < n; r++) {
        float *s = sc->s + r * nk;
        mask_row(g, s, b, i0 + r, k0, nk);
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < nk; j++)
            mx = s[j] > mx ? s[j] : mx;
        float sum = 0.0f, L = -INFINITY;
        if (mx != -INFINITY) {
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < nk; j++) {
                float e = lt_cpu_expf(s[j] - mx);
                s[j] = e;
                sum += e;
            }
            L = mx + logf(sum);
        } else { /* no visible key: a zero row */
            for (int64_t j = 0; j < nk; j++)
                s[j] = 0.0f;
        }
        sc->row[r] = sum > 0.0f ? 1.0f / sum : 0.0f;
        if (lp)
            lp[(b * g->H + h) * g->Tq + i0 + r] = L;
    }
    gemm(false, false, n, g->hd, nk, 1.0f, sc->s, nk, V, vs, 0.0f, o, g->ldq);
    for (int64_t r = 0; r < n; r++)
        for (int64_t d = 0; d < g->hd; d++)
            o[r * g->ldq + d] *= sc->row[r];
}

lt_status lt_cpu_attention(lt_device *dev, lt_tensor *out, lt_tensor *lse, const lt_tensor *q,
                           const lt_tensor *k, const lt_tensor *v, const lt_tensor *seg,
                           const lt_attn_params *p)
{
    attn_geom g = geom(q, k, seg, p);
    const int64_t nqb = (g.Tq + g.qb - 1) / g.qb, ntask = g.B * g.H * nqb;
    const bool half = k->dtype != LT_F32;
    const float *qp = lt_cpu_f(q);
    float *op = lt_cpu_f(out), *lp = lse ? lt_cpu_f(lse) : NULL;
    int failed = 0, nt = lt_cpu_nt(dev);

#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        attn_scratch sc;
        if (!scratch_alloc(&sc, &g, half, false))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / (g.H * nqb), h = (t / nqb) % g.H, i0 = (t % nqb) * g.qb;
            attn_fwd_tile(&g, &sc, qp, op, lp, k, v, b, h, i0, i0 + g.qb < g.Tq ? i0 + g.qb : g.Tq);
        }
        scratch_free(&sc);
    }
    if (failed)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_attention: out of host memory for scratch");
    return LT_OK;
}

/* Backward scores of queries [i0, i1) of head h of batch b against keys [j0, j1), K and V
 * pointing at key row j0: P into sc->s and dS = scale P (dP - D) into sc->dp, both
 * (i1 - i0, j1 - j0), where D = rowsum(P o dP) (= rowsum(dO o O), in the form PyTorch's
 * softmax backward uses; a query with one visible key gets exactly zero). When the tile holds
 * every key the queries see (full), D is computed and stored into Dv [B, H, Tq] if not NULL;
 * otherwise it is read from Dv. */
static void attn_bw_scores(const attn_geom *g, attn_scratch *sc, const float *dop, const float *qp,
                           const float *lp, float *Dv, bool full, const float *K, int64_t ks,
                           const float *V, int64_t vs, int64_t b, int64_t h, int64_t i0, int64_t i1,
                           int64_t j0, int64_t j1)
{
    const int64_t n = i1 - i0, m = j1 - j0, row0 = (b * g->Tq + i0) * g->ldq + h * g->hd;
    const float scale = g->scale;
    gemm(false, true, n, m, g->hd, scale, qp + row0, g->ldq, K, ks, 0.0f, sc->s, m);
    gemm(false, true, n, m, g->hd, 1.0f, dop + row0, g->ldq, V, vs, 0.0f, sc->dp, m);
    for (int64_t r = 0; r < n; r++) {
        float *s = sc->s + r * m, *dp = sc->dp + r * m;
        float L = lp[(b * g->H + h) * g->Tq + i0 + r];
        if (L == -INFINITY) { /* no visible key: no gradient through this query */
            for (int64_t j = 0; j < m; j++)
                s[j] = dp[j] = 0.0f;
            continue;
        }
        mask_row(g, s, b, i0 + r, j0, m);
#pragma omp simd
        for (int64_t j = 0; j < m; j++)
            s[j] = lt_cpu_expf(s[j] - L);
        float D = 0.0f;
        if (full) {
#pragma omp simd reduction(+ : D)
            for (int64_t j = 0; j < m; j++)
                D += s[j] * dp[j];
            if (Dv)
                Dv[(b * g->H + h) * g->Tq + i0 + r] = D;
        } else {
            D = Dv[(b * g->H + h) * g->Tq + i0 + r];
        }
#pragma omp simd
        for (int64_t j = 0; j < m; j++)
            dp[j] = scale * s[j] * (dp[j] - D);
    }
}

/* Pointers at row 0 of kv head kh of batch b in dk/dv (row stride Hkv*hd). */
static inline int64_t kv_base(const attn_geom *g, int64_t b, int64_t kh)
{
    return (b * g->Tk * g->Hkv + kh) * g->hd;
}

static void zero_kv_rows(const attn_geom *g, float *dk, float *dv, int64_t b, int64_t kh,
                         int64_t j0, int64_t j1)
{
    for (int64_t j = j0; j < j1; j++)
        for (int64_t d = 0; d < g->hd; d++) {
            dk[kv_base(g, b, kh) + j * g->ldk + d] = 0.0f;
            dv[kv_base(g, b, kh) + j * g->ldk + d] = 0.0f;
        }
}

/* dq of queries [i0, i1) of head h (K, V from key row 0), D into Dv if not NULL. When dk and
 * dv are not NULL, also adds this block's part of dk and dv (rows from 0) of head h's kv
 * head. */
static void attn_bw_qblock(const attn_geom *g, attn_scratch *sc, float *dq, float *dk, float *dv,
                           const float *dop, const float *qp, float *Dv, const float *lp,
                           const float *K, int64_t ks, const float *V, int64_t vs, int64_t b,
                           int64_t h, int64_t i0, int64_t i1)
{
    const int64_t n = i1 - i0, nk = visible(g, i1 - 1),
                  row0 = (b * g->Tq + i0) * g->ldq + h * g->hd;
    if (nk <= 0) {
        for (int64_t r = 0; r < n; r++)
            for (int64_t d = 0; d < g->hd; d++)
                dq[row0 + r * g->ldq + d] = 0.0f;
        return;
    }
    attn_bw_scores(g, sc, dop, qp, lp, Dv, true, K, ks, V, vs, b, h, i0, i1, 0, nk);
    gemm(false, false, n, g->hd, nk, 1.0f, sc->dp, nk, K, ks, 0.0f, dq + row0, g->ldq);
    if (!dk)
        return;
    int64_t kvb = kv_base(g, b, h / g->group);
    gemm(true, false, nk, g->hd, n, 1.0f, sc->s, nk, dop + row0, g->ldq, 1.0f, dv + kvb, g->ldk);
    gemm(true, false, nk, g->hd, n, 1.0f, sc->dp, nk, qp + row0, g->ldq, 1.0f, dk + kvb, g->ldk);
}

/* One pass, for when there are enough (batch, kv head) pairs to keep every thread busy: a
 * task owns dk and dv of its kv head and dq of the group's heads, and computes each tile's
 * scores once (the two-pass path computes them in both passes). */
static int attn_bw_fused(const attn_geom *g, int nt, float *dq, float *dk, float *dv,
                         const float *dop, const float *qp, const float *lp, const lt_tensor *k,
                         const lt_tensor *v)
{
    const int64_t ntask = g->B * g->Hkv, nqb = (g->Tq + g->qb - 1) / g->qb;
    const bool half = k->dtype != LT_F32;
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        attn_scratch sc;
        if (!scratch_alloc(&sc, g, half, true))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / g->Hkv, kh = t % g->Hkv, ks, vs;
            zero_kv_rows(g, dk, dv, b, kh, 0, g->Tk);
            const float *K = kv_rows(k, g, b, kh, 0, g->n_kv, sc.kb, &ks);
            const float *V = kv_rows(v, g, b, kh, 0, g->n_kv, sc.vb, &vs);
            for (int64_t h = kh * g->group; h < (kh + 1) * g->group; h++)
                for (int64_t qb = 0; qb < nqb; qb++) {
                    int64_t i0 = qb * g->qb, i1 = i0 + g->qb < g->Tq ? i0 + g->qb : g->Tq;
                    attn_bw_qblock(g, &sc, dq, dk, dv, dop, qp, NULL, lp, K, ks, V, vs, b, h, i0,
                                   i1);
                }
        }
        scratch_free(&sc);
    }
    return failed;
}

/* Pass 1 of the two-pass backward: dq and D, tasks over (batch, head, block of queries). */
static int attn_bw_dq(const attn_geom *g, int nt, float *dq, float *Dv, const float *dop,
                      const float *qp, const float *lp, const lt_tensor *k, const lt_tensor *v)
{
    const int64_t nqb = (g->Tq + g->qb - 1) / g->qb, ntask = g->B * g->H * nqb;
    const bool half = k->dtype != LT_F32;
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        attn_scratch sc;
        if (!scratch_alloc(&sc, g, half, true))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / (g->H * nqb), h = (t / nqb) % g->H, i0 = (t % nqb) * g->qb;
            int64_t i1 = i0 + g->qb < g->Tq ? i0 + g->qb : g->Tq, kh = h / g->group, ks, vs;
            int64_t nk = visible(g, i1 - 1) > 0 ? visible(g, i1 - 1) : 0;
            const float *K = kv_rows(k, g, b, kh, 0, nk, sc.kb, &ks);
            const float *V = kv_rows(v, g, b, kh, 0, nk, sc.vb, &vs);
            attn_bw_qblock(g, &sc, dq, NULL, NULL, dop, qp, Dv, lp, K, ks, V, vs, b, h, i0, i1);
        }
        scratch_free(&sc);
    }
    return failed;
}

/* Pass 2: dk and dv, one block of keys of one kv head per task; the group's heads and the
 * query blocks that see the keys are walked in order. */
static int attn_bw_dkv(const attn_geom *g, int nt, float *dk, float *dv, float *Dv,
                       const float *dop, const float *qp, const float *lp, const lt_tensor *k,
                       const lt_tensor *v)
{
    const int64_t nkb = (g->Tk + KB - 1) / KB, ntask = g->B * g->Hkv * nkb;
    const bool half = k->dtype != LT_F32;
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        attn_scratch sc;
        if (!scratch_alloc(&sc, g, half, true))
            failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (failed)
                continue;
            int64_t b = t / (g->Hkv * nkb), kh = (t / nkb) % g->Hkv, j0 = (t % nkb) * KB;
            int64_t j1 = j0 + KB < g->Tk ? j0 + KB : g->Tk, ks, vs;
            zero_kv_rows(g, dk, dv, b, kh, j0, j1);
            if (j0 >= g->n_kv)
                continue;
            j1 = j1 < g->n_kv ? j1 : g->n_kv;
            const float *K = kv_rows(k, g, b, kh, j0, j1, sc.kb, &ks);
            const float *V = kv_rows(v, g, b, kh, j0, j1, sc.vb, &vs);
            float *dkb = dk + kv_base(g, b, kh) + j0 * g->ldk;
            float *dvb = dv + kv_base(g, b, kh) + j0 * g->ldk;
            int64_t i_first = j0 - g->q_offset > 0 ? j0 - g->q_offset : 0;
            for (int64_t h = kh * g->group; h < (kh + 1) * g->group; h++)
                for (int64_t i0 = i_first / g->qb * g->qb; i0 < g->Tq; i0 += g->qb) {
                    int64_t i1 = i0 + g->qb < g->Tq ? i0 + g->qb : g->Tq;
                    int64_t je = visible(g, i1 - 1) < j1 ? visible(g, i1 - 1) : j1;
                    if (je <= j0 || first_visible(g, i0) >= j1)
                        continue;
                    int64_t n = i1 - i0, m = je - j0;
                    int64_t row0 = (b * g->Tq + i0) * g->ldq + h * g->hd;
                    attn_bw_scores(g, &sc, dop, qp, lp, Dv, false, K, ks, V, vs, b, h, i0, i1, j0,
                                   je);
                    gemm(true, false, m, g->hd, n, 1.0f, sc.s, m, dop + row0, g->ldq, 1.0f, dvb,
                         g->ldk);
                    gemm(true, false, m, g->hd, n, 1.0f, sc.dp, m, qp + row0, g->ldq, 1.0f, dkb,
                         g->ldk);
                }
        }
        scratch_free(&sc);
    }
    return failed;
}

lt_status lt_cpu_attention_backward(lt_device *dev, lt_tensor *dq, lt_tensor *dk, lt_tensor *dv,
                                    const lt_tensor *dout, const lt_tensor *q, const lt_tensor *k,
                                    const lt_tensor *v, const lt_tensor *out, const lt_tensor *lse,
                                    const lt_tensor *seg, const lt_attn_params *p)
{
    attn_geom g = geom(q, k, seg, p);
    int nt = lt_cpu_nt(dev), failed;
    (void)out; /* D = rowsum(dO o O) is taken as rowsum(P o dP), see attn_bw_scores */
    if (g.B * g.Hkv >= 2 * (int64_t)nt) {
        failed = attn_bw_fused(&g, nt, lt_cpu_f(dq), lt_cpu_f(dk), lt_cpu_f(dv), lt_cpu_f(dout),
                               lt_cpu_f(q), lt_cpu_f(lse), k, v);
    } else {
        float *Dv = malloc((size_t)(g.B * g.H * g.Tq) * sizeof(float));
        if (!Dv)
            return lt_dev_error(dev, LT_ERR_OOM, "lt_attention_backward: out of host memory");
        failed =
            attn_bw_dq(&g, nt, lt_cpu_f(dq), Dv, lt_cpu_f(dout), lt_cpu_f(q), lt_cpu_f(lse), k, v);
        if (!failed)
            failed = attn_bw_dkv(&g, nt, lt_cpu_f(dk), lt_cpu_f(dv), Dv, lt_cpu_f(dout),
                                 lt_cpu_f(q), lt_cpu_f(lse), k, v);
        free(Dv);
    }
    if (failed)
        return lt_dev_error(dev, LT_ERR_OOM,
                            "lt_attention_backward: out of host memory for scratch");
    return LT_OK;
}
