/*
 * cpu_nn.c - the CPU backend's row-wise neural-network ops: embedding (and its deterministic
 * backward), RMSNorm, LayerNorm, rotary embeddings, fused softmax cross-entropy and
 * log-probability gather.
 *
 * Rows run in parallel; every sum inside a row runs in index order. Reductions across rows
 * (weight and bias gradients, embedding rows hit by many ids) split the *columns* across
 * threads and walk the rows in order, so there are no atomics and the bits do not depend on
 * the thread count.
 */
#include "cpu_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COLS 64 /* column block for cross-row reductions */

/* A float copy of a small parameter vector (norm weights, biases) in any float dtype. */
static float *vec_f32(lt_device *dev, const lt_tensor *t, const char *op)
{
    float *v = malloc((size_t)t->numel * sizeof(float));
    if (!v) {
        lt_dev_error(dev, LT_ERR_OOM, "%s: out of host memory", op);
        return NULL;
    }
    lt_cpu_to_f32(v, lt_cpu_data(t), t->dtype, 0, t->numel);
    return v;
}

/* ---- embedding -------------------------------------------------------------------------- */

lt_status lt_cpu_embedding(lt_device *dev, lt_tensor *out, const lt_tensor *table,
                           const lt_tensor *ids)
{
    int64_t N = ids->numel, D = table->shape[1];
    const int32_t *id = lt_cpu_i(ids);
    float *o = lt_cpu_f(out);
    const void *tb = lt_cpu_data(table);
    lt_dtype dt = table->dtype;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
    for (int64_t i = 0; i < N; i++)
        lt_cpu_to_f32(o + i * D, tb, dt, (int64_t)id[i] * D, D);
    return LT_OK;
}

lt_status lt_cpu_embedding_backward(lt_device *dev, lt_tensor *dtable, const lt_tensor *dout,
                                    const lt_tensor *ids)
{
    int64_t N = ids->numel, D = dtable->shape[1];
    const int32_t *id = lt_cpu_i(ids);
    const float *g = lt_cpu_f(dout);
    float *dt = lt_cpu_f(dtable);
    int nt = lt_cpu_nt(dev);
    /* each thread owns a band of columns of every row; ids are applied in order */
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
    for (int64_t j0 = 0; j0 < D; j0 += COLS) {
        int64_t j1 = j0 + COLS < D ? j0 + COLS : D;
        for (int64_t i = 0; i < N; i++) {
            float *row = dt + (int64_t)id[i] * D;
            const float *gr = g + i * D;
            for (int64_t j = j0; j < j1; j++)
                row[j] += gr[j];
        }
    }
    return LT_OK;
}

/* ---- RMSNorm ---------------------------------------------------------------------------- */

lt_status lt_cpu_rmsnorm(lt_device *dev, lt_tensor *out, lt_tensor *rstd, const lt_tensor *x,
                         const lt_tensor *w, float eps)
{
    int64_t D = w->numel, N = x->numel / D;
    float *wf = vec_f32(dev, w, "lt_rmsnorm");
    if (!wf)
        return LT_ERR_OOM;
    const float *xp = lt_cpu_f(x);
    float *o = lt_cpu_f(out);
    float *rs = rstd ? lt_cpu_f(rstd) : NULL;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
    for (int64_t r = 0; r < N; r++) {
        const float *xr = xp + r * D;
        float ss = 0.0f;
        for (int64_t j = 0; j < D; j++)
            ss += xr[j] * xr[j];
        float s = 1.0f / sqrtf(ss / (float)D + eps);
        for (int64_t j = 0; j < D; j++)
            o[r * D + j] = xr[j] * s * wf[j];
        if (rs)
            rs[r] = s;
    }
    free(wf);
    return LT_OK;
}

lt_status lt_cpu_rmsnorm_backward(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                  const lt_tensor *dout, const lt_tensor *x, const lt_tensor *w,
                                  const lt_tensor *rstd)
{
    int64_t D = w->numel, N = x->numel / D;
    float *wf = vec_f32(dev, w, "lt_rmsnorm_backward");
    if (!wf)
        return LT_ERR_OOM;
    const float *xp = lt_cpu_f(x), *g = lt_cpu_f(dout), *rs = lt_cpu_f(rstd);
    float *o = lt_cpu_f(dx);
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
    for (int64_t r = 0; r < N; r++) {
        const float *xr = xp + r * D, *gr = g + r * D;
        float s = rs[r], dot = 0.0f;
        for (int64_t j = 0; j < D; j++)
            dot += gr[j] * wf[j] * xr[j];
        float k = s * s * s * dot / (float)D;
        for (int64_t j = 0; j < D; j++)
            o[r * D + j] = s * wf[j] * gr[j] - xr[j] * k;
    }
    if (dw) {
        float *dwp = lt_cpu_f(dw);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
        for (int64_t j0 = 0; j0 < D; j0 += COLS) {
            int64_t j1 = j0 + COLS < D ? j0 + COLS : D;
            float acc[COLS] = {0};
            for (int64_t r = 0; r < N; r++)
                for (int64_t j = j0; j < j1; j++)
                    acc[j - j0] += g[r * D + j] * xp[r * D + j] * rs[r];
            for (int64_t j = j0; j < j1; j++)
                dwp[j] += acc[j - j0];
        }
    }
    free(wf);
    return LT_OK;
}

/* ---- LayerNorm -------------------------------------------------------------------------- */

lt_status lt_cpu_layernorm(lt_device *dev, lt_tensor *out, lt_tensor *mean, lt_tensor *rstd,
                           const lt_tensor *x, const lt_tensor *w, const lt_tensor *b,
                           float eps)
{
    int64_t D = w->numel, N = x->numel / D;
    float *wf = vec_f32(dev, w, "lt_layernorm");
    float *bf = b ? vec_f32(dev, b, "lt_layernorm") : NULL;
    if (!wf || (b && !bf)) {
        free(wf);
        free(bf);
        return LT_ERR_OOM;
    }
    const float *xp = lt_cpu_f(x);
    float *o = lt_cpu_f(out);
    float *mp = mean ? lt_cpu_f(mean) : NULL, *rs = rstd ? lt_cpu_f(rstd) : NULL;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
    for (int64_t r = 0; r < N; r++) {
        const float *xr = xp + r * D;
        float sum = 0.0f, var = 0.0f;
        for (int64_t j = 0; j < D; j++)
            sum += xr[j];
        float mu = sum / (float)D;
        for (int64_t j = 0; j < D; j++)
            var += (xr[j] - mu) * (xr[j] - mu);
        float s = 1.0f / sqrtf(var / (float)D + eps);
        for (int64_t j = 0; j < D; j++)
            o[r * D + j] = (xr[j] - mu) * s * wf[j] + (bf ? bf[j] : 0.0f);
        if (mp)
            mp[r] = mu;
        if (rs)
            rs[r] = s;
    }
    free(wf);
    free(bf);
    return LT_OK;
}

lt_status lt_cpu_layernorm_backward(lt_device *dev, lt_tensor *dx, lt_tensor *dw,
                                    lt_tensor *db, const lt_tensor *dout, const lt_tensor *x,
                                    const lt_tensor *w, const lt_tensor *mean,
                                    const lt_tensor *rstd)
{
    int64_t D = w->numel, N = x->numel / D;
    float *wf = vec_f32(dev, w, "lt_layernorm_backward");
    if (!wf)
        return LT_ERR_OOM;
    const float *xp = lt_cpu_f(x), *g = lt_cpu_f(dout);
    const float *mp = lt_cpu_f(mean), *rs = lt_cpu_f(rstd);
    float *o = lt_cpu_f(dx);
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
    for (int64_t r = 0; r < N; r++) {
        const float *xr = xp + r * D, *gr = g + r * D;
        float mu = mp[r], s = rs[r], m1 = 0.0f, m2 = 0.0f;
        for (int64_t j = 0; j < D; j++) {
            float dxh = gr[j] * wf[j];
            m1 += dxh;
            m2 += dxh * (xr[j] - mu) * s;
        }
        m1 /= (float)D;
        m2 /= (float)D;
        for (int64_t j = 0; j < D; j++) {
            float xh = (xr[j] - mu) * s;
            o[r * D + j] = s * (gr[j] * wf[j] - m1 - xh * m2);
        }
    }
    if (dw || db) {
        float *dwp = dw ? lt_cpu_f(dw) : NULL, *dbp = db ? lt_cpu_f(db) : NULL;
#pragma omp parallel for schedule(static) num_threads(nt) if (N * D > 16384)
        for (int64_t j0 = 0; j0 < D; j0 += COLS) {
            int64_t j1 = j0 + COLS < D ? j0 + COLS : D;
            float aw[COLS] = {0}, ab[COLS] = {0};
            for (int64_t r = 0; r < N; r++)
                for (int64_t j = j0; j < j1; j++) {
                    float gj = g[r * D + j];
                    aw[j - j0] += gj * (xp[r * D + j] - mp[r]) * rs[r];
                    ab[j - j0] += gj;
                }
            for (int64_t j = j0; j < j1; j++) {
                if (dwp)
                    dwp[j] += aw[j - j0];
                if (dbp)
                    dbp[j] += ab[j - j0];
            }
        }
    }
    free(wf);
    return LT_OK;
}

/* ---- rotary embeddings ------------------------------------------------------------------ */

lt_status lt_cpu_rope(lt_device *dev, lt_tensor *x, const lt_tensor *pos, const lt_tensor *inv_freq,
                      float mscale, bool inverse)
{
    int64_t hd = x->shape[x->ndim - 1], H = x->shape[x->ndim - 2];
    int64_t N = x->numel / (hd * H), half = hd / 2;
    const int32_t *pp = lt_cpu_i(pos);
    /* positions repeat across the batch: cos and sin per distinct position when they fit in
     * a table no larger than one per token (the same floats either way) */
    int64_t pmin = 0, pmax = -1;
    for (int64_t n = 0; n < N; n++) {
        pmin = pp[n] < pmin ? pp[n] : pmin;
        pmax = pp[n] > pmax ? pp[n] : pmax;
    }
    const bool table = pmin >= 0 && pmax < N;
    const int64_t n_rows = table ? pmax + 1 : 0;
    float *tab = malloc((size_t)(2 * n_rows * half + 1) * sizeof(float));
    if (!tab)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_rope: out of host memory");
    float *tc = tab, *ts = tc + n_rows * half;
    const float *inv = lt_cpu_f(inv_freq); /* [half], computed by the caller */
    float *xp = lt_cpu_f(x);
    /* cos and sin scaled by mscale (1 leaves them as they are: x * 1.0f == x) */
    const float ms = mscale, sign = inverse ? -mscale : mscale;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (n_rows * half > 4096)
    for (int64_t p = 0; p < n_rows; p++)
        for (int64_t i = 0; i < half; i++) {
            float a = (float)p * inv[i];
            tc[p * half + i] = ms * cosf(a);
            ts[p * half + i] = sign * sinf(a);
        }
#pragma omp parallel for schedule(static) num_threads(nt) if (N * H * hd > 16384)
    for (int64_t n = 0; n < N; n++) {
        float p = (float)pp[n];
        for (int64_t i = 0; i < half; i++) {
            float c, s;
            if (table) {
                c = tc[pp[n] * half + i];
                s = ts[pp[n] * half + i];
            } else {
                float a = p * inv[i];
                c = ms * cosf(a);
                s = sign * sinf(a);
            }
            for (int64_t h = 0; h < H; h++) {
                float *v = xp + (n * H + h) * hd;
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
    }
    free(tab);
    return LT_OK;
}

/* ---- cross-entropy and log-prob gather --------------------------------------------------- */

/* log-sum-exp of a row: max, then the sum of exponentials (vectorised, in a fixed order) */
static float row_lse(const float *x, int64_t V)
{
    float mx = x[0];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 1; j < V; j++)
        mx = x[j] > mx ? x[j] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < V; j++)
        s += lt_cpu_expf(x[j] - mx);
    return mx + logf(s);
}

lt_status lt_cpu_cross_entropy(lt_device *dev, lt_tensor *loss, lt_tensor *row_loss,
                               lt_tensor *dlogits, const lt_tensor *logits,
                               const lt_tensor *labels, int ignore_index, float grad_scale,
                               int64_t n_counted)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    const int32_t *lab = lt_cpu_i(labels);
    const float *xp = lt_cpu_f(logits);
    float *dl = dlogits ? lt_cpu_f(dlogits) : NULL;
    float *rl = row_loss ? lt_cpu_f(row_loss) : malloc((size_t)N * sizeof(float));
    if (!rl)
        return lt_dev_error(dev, LT_ERR_OOM, "lt_cross_entropy: out of host memory");
    int64_t counted = 0;
    for (int64_t r = 0; r < N; r++)
        counted += lab[r] != ignore_index;
    int64_t denom = n_counted > 0 ? n_counted : counted;
    float gscale = denom > 0 ? grad_scale / (float)denom : 0.0f;
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * V > 16384)
    for (int64_t r = 0; r < N; r++) {
        const float *xr = xp + r * V;
        int32_t y = lab[r];
        if (y == ignore_index) {
            rl[r] = 0.0f;
            if (dl)
                memset(dl + r * V, 0, (size_t)V * sizeof(float));
            continue;
        }
        float lse = row_lse(xr, V);
        rl[r] = lse - xr[y];
        if (dl) {
            float *d = dl + r * V; /* may be xr itself: each element is read before written */
#pragma omp simd
            for (int64_t j = 0; j < V; j++)
                d[j] = gscale * lt_cpu_expf(xr[j] - lse);
            d[y] -= gscale;
        }
    }
    double total = 0.0;
    for (int64_t r = 0; r < N; r++)
        total += rl[r];
    lt_cpu_f(loss)[0] = denom > 0 ? (float)(total / (double)denom) : 0.0f;
    if (!row_loss)
        free(rl);
    return LT_OK;
}

lt_status lt_cpu_logprob_gather(lt_device *dev, lt_tensor *out, const lt_tensor *logits,
                                const lt_tensor *ids)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    const int32_t *id = lt_cpu_i(ids);
    const float *xp = lt_cpu_f(logits);
    float *o = lt_cpu_f(out);
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * V > 16384)
    for (int64_t r = 0; r < N; r++)
        o[r] = xp[r * V + id[r]] - row_lse(xp + r * V, V);
    return LT_OK;
}

lt_status lt_cpu_logprob_gather_backward(lt_device *dev, lt_tensor *dlogits,
                                         const lt_tensor *dout, const lt_tensor *logits,
                                         const lt_tensor *ids)
{
    int64_t V = logits->shape[logits->ndim - 1], N = logits->numel / V;
    const int32_t *id = lt_cpu_i(ids);
    const float *xp = lt_cpu_f(logits), *g = lt_cpu_f(dout);
    float *dl = lt_cpu_f(dlogits);
    int nt = lt_cpu_nt(dev);
#pragma omp parallel for schedule(static) num_threads(nt) if (N * V > 16384)
    for (int64_t r = 0; r < N; r++) {
        const float *xr = xp + r * V;
        float lse = row_lse(xr, V), gr = g[r];
        float *d = dl + r * V;
#pragma omp simd
        for (int64_t j = 0; j < V; j++)
            d[j] -= gr * lt_cpu_expf(xr[j] - lse);
        d[id[r]] += gr;
    }
    return LT_OK;
}
