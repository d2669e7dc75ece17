/*
 * ops_nn.c - the front end's checks and dispatch for the neural-network ops: embedding,
 * RMSNorm, LayerNorm, rotary embeddings, attention, cross-entropy and log-prob gather.
 *
 * As in ops.c: every argument is validated (NULLs, devices, dtypes, shapes, aliasing, and
 * id/label ranges for host-visible tensors) before the backend is called.
 */
#include "ops_check.h"

#include <math.h>
#include <stdio.h>

static int64_t last_dim(const lt_tensor *t) { return t->shape[t->ndim - 1]; }

/* ---- embedding -------------------------------------------------------------------------- */

static lt_status check_embedding(lt_opcheck *c, const lt_tensor *rows, const char *rn,
                                 const lt_tensor *table, const char *tn, const lt_tensor *ids)
{
    char x[160], y[160];
    CK(lt_ck_tensor(c, ids, "ids", LT_MASK(LT_I32)));
    if (table->ndim != 2)
        return lt_ck_fail(c, LT_ERR_SHAPE, "%s must be 2-D [V, D]",
                          lt_ck_desc(tn, table, x, sizeof x));
    int64_t D = table->shape[1];
    if (last_dim(rows) != D || rows->numel != ids->numel * D)
        return lt_ck_fail(c, LT_ERR_SHAPE,
                          "%s must be [N, D] with N = %lld ids and D = %lld from %s", 
                          lt_ck_desc(rn, rows, x, sizeof x), (long long)ids->numel,
                          (long long)D, lt_ck_desc(tn, table, y, sizeof y));
    CK(lt_ck_no_overlap(c, rows, rn, table, tn, false));
    CK(lt_ck_no_overlap(c, rows, rn, ids, "ids", false));
    return lt_ck_ids_range(c, ids, "ids", table->shape[0], false, 0);
}

lt_status lt_embedding(lt_tensor *out, const lt_tensor *table, const lt_tensor *ids)
{
    lt_opcheck c = {lt_ck_device(3, out, table, ids), "lt_embedding"};
    CK(lt_ck_tensor(&c, out, "out", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, table, "table", LT_MASK_FLOAT));
    CK(check_embedding(&c, out, "out", table, "table", ids));
    LT_DISPATCH(c.dev, "embedding", c.dev->be->embedding(c.dev, out, table, ids));
}

lt_status lt_embedding_backward(lt_tensor *dtable, const lt_tensor *dout, const lt_tensor *ids)
{
    lt_opcheck c = {lt_ck_device(3, dtable, dout, ids), "lt_embedding_backward"};
    CK(lt_ck_tensor(&c, dtable, "dtable", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dout, "dout", LT_MASK(LT_F32)));
    CK(check_embedding(&c, dout, "dout", dtable, "dtable", ids));
    LT_DISPATCH(c.dev, "embedding_backward",
                c.dev->be->embedding_backward(c.dev, dtable, dout, ids));
}

/* ---- norms ------------------------------------------------------------------------------ */

/* x [.., D] F32 -> N rows; out like x; w (and b) with D elements; stats with N. */
static lt_status check_norm(lt_opcheck *c, const lt_tensor *out, const char *on,
                            const lt_tensor *x, const lt_tensor *w, const lt_tensor *b,
                            const lt_tensor *s1, const char *s1n, const lt_tensor *s2,
                            const char *s2n, float eps)
{
    CK(lt_ck_tensor(c, out, on, LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, x, "x", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, w, "w", LT_MASK_FLOAT));
    CK(lt_ck_optional(c, b, "b", LT_MASK_FLOAT));
    CK(lt_ck_optional(c, s1, s1n, LT_MASK(LT_F32)));
    CK(lt_ck_optional(c, s2, s2n, LT_MASK(LT_F32)));
    int64_t D = last_dim(x), N = x->numel / D;
    CK(lt_ck_same_shape(c, out, on, x, "x"));
    CK(lt_ck_numel(c, w, "w", D, "the last dim of x"));
    CK(lt_ck_numel(c, b, "b", D, "the last dim of x"));
    CK(lt_ck_numel(c, s1, s1n, N, "one per row of x"));
    CK(lt_ck_numel(c, s2, s2n, N, "one per row of x"));
    const lt_tensor *ins[3] = {x, w, b};
    const char *inn[3] = {"x", "w", "b"};
    const lt_tensor *outs[3] = {out, s1, s2};
    const char *outn[3] = {on, s1n, s2n};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            CK(lt_ck_no_overlap(c, outs[i], outn[i], ins[j], inn[j], false));
        for (int j = i + 1; j < 3; j++)
            CK(lt_ck_no_overlap(c, outs[i], outn[i], outs[j], outn[j], false));
    }
    if (!(eps >= 0) || !isfinite(eps))
        return lt_ck_fail(c, LT_ERR_ARG, "eps is %g, expected a finite value >= 0", eps);
    return LT_OK;
}

lt_status lt_rmsnorm(lt_tensor *out, lt_tensor *rstd, const lt_tensor *x, const lt_tensor *w,
                     float eps)
{
    lt_opcheck c = {lt_ck_device(4, out, rstd, x, w), "lt_rmsnorm"};
    CK(check_norm(&c, out, "out", x, w, NULL, rstd, "rstd", NULL, NULL, eps));
    LT_DISPATCH(c.dev, "rmsnorm", c.dev->be->rmsnorm(c.dev, out, rstd, x, w, eps));
}

lt_status lt_rmsnorm_backward(lt_tensor *dx, lt_tensor *dw, const lt_tensor *dout,
                              const lt_tensor *x, const lt_tensor *w, const lt_tensor *rstd)
{
    lt_opcheck c = {lt_ck_device(6, dx, dw, dout, x, w, rstd), "lt_rmsnorm_backward"};
    CK(check_norm(&c, dx, "dx", x, w, NULL, rstd, "rstd", NULL, NULL, 0.0f));
    CK(lt_ck_tensor(&c, rstd, "rstd", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dout, "dout", LT_MASK(LT_F32)));
    CK(lt_ck_optional(&c, dw, "dw", LT_MASK(LT_F32)));
    CK(lt_ck_same_shape(&c, dout, "dout", x, "x"));
    CK(lt_ck_numel(&c, dw, "dw", last_dim(x), "the last dim of x"));
    CK(lt_ck_no_overlap(&c, dx, "dx", dout, "dout", false));
    CK(lt_ck_no_overlap(&c, dw, "dw", dout, "dout", false));
    CK(lt_ck_no_overlap(&c, dw, "dw", dx, "dx", false));
    CK(lt_ck_no_overlap(&c, dw, "dw", x, "x", false));
    CK(lt_ck_no_overlap(&c, dw, "dw", w, "w", false));
    CK(lt_ck_no_overlap(&c, dw, "dw", rstd, "rstd", false));
    LT_DISPATCH(c.dev, "rmsnorm_backward",
                c.dev->be->rmsnorm_backward(c.dev, dx, dw, dout, x, w, rstd));
}

lt_status lt_layernorm(lt_tensor *out, lt_tensor *mean, lt_tensor *rstd, const lt_tensor *x,
                       const lt_tensor *w, const lt_tensor *b, float eps)
{
    lt_opcheck c = {lt_ck_device(6, out, mean, rstd, x, w, b), "lt_layernorm"};
    CK(check_norm(&c, out, "out", x, w, b, mean, "mean", rstd, "rstd", eps));
    LT_DISPATCH(c.dev, "layernorm", c.dev->be->layernorm(c.dev, out, mean, rstd, x, w, b, eps));
}

lt_status lt_layernorm_backward(lt_tensor *dx, lt_tensor *dw, lt_tensor *db,
                                const lt_tensor *dout, const lt_tensor *x, const lt_tensor *w,
                                const lt_tensor *mean, const lt_tensor *rstd)
{
    lt_opcheck c = {lt_ck_device(8, dx, dw, db, dout, x, w, mean, rstd),
                    "lt_layernorm_backward"};
    CK(check_norm(&c, dx, "dx", x, w, NULL, mean, "mean", rstd, "rstd", 0.0f));
    CK(lt_ck_tensor(&c, mean, "mean", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, rstd, "rstd", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dout, "dout", LT_MASK(LT_F32)));
    CK(lt_ck_optional(&c, dw, "dw", LT_MASK(LT_F32)));
    CK(lt_ck_optional(&c, db, "db", LT_MASK(LT_F32)));
    CK(lt_ck_same_shape(&c, dout, "dout", x, "x"));
    CK(lt_ck_numel(&c, dw, "dw", last_dim(x), "the last dim of x"));
    CK(lt_ck_numel(&c, db, "db", last_dim(x), "the last dim of x"));
    const lt_tensor *all[6] = {dout, x, w, mean, rstd, dx};
    const char *nm[6] = {"dout", "x", "w", "mean", "rstd", "dx"};
    CK(lt_ck_no_overlap(&c, dx, "dx", dout, "dout", false));
    CK(lt_ck_no_overlap(&c, dw, "dw", db, "db", false));
    for (int i = 0; i < 6; i++) {
        CK(lt_ck_no_overlap(&c, dw, "dw", all[i], nm[i], false));
        CK(lt_ck_no_overlap(&c, db, "db", all[i], nm[i], false));
    }
    LT_DISPATCH(c.dev, "layernorm_backward",
                c.dev->be->layernorm_backward(c.dev, dx, dw, db, dout, x, w, mean, rstd));
}

/* ---- rotary embeddings ------------------------------------------------------------------ */

void lt_rope_inv_freq(float *inv, int64_t hd, float theta)
{
    for (int64_t i = 0; i < hd / 2; i++)
        inv[i] = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
}

static lt_status rope_common(const char *op, const char *prof, lt_tensor *x, const lt_tensor *pos,
                             const lt_tensor *inv_freq, float mscale, bool inverse)
{
    lt_opcheck c = {lt_ck_device(3, x, pos, inv_freq), op};
    char b[160];
    CK(lt_ck_tensor(&c, x, "x", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, pos, "pos", LT_MASK(LT_I32)));
    CK(lt_ck_tensor(&c, inv_freq, "inv_freq", LT_MASK(LT_F32)));
    if (x->ndim < 3 || last_dim(x) % 2 != 0)
        return lt_ck_fail(&c, LT_ERR_SHAPE,
                          "%s must be [N, H, hd] or [B, T, H, hd] with an even head dim",
                          lt_ck_desc("x", x, b, sizeof b));
    int64_t N = x->numel / (x->shape[x->ndim - 1] * x->shape[x->ndim - 2]);
    CK(lt_ck_numel(&c, pos, "pos", N, "one position per token of x"));
    CK(lt_ck_numel(&c, inv_freq, "inv_freq", last_dim(x) / 2, "one per pair (head dim / 2)"));
    CK(lt_ck_no_overlap(&c, x, "x", pos, "pos", false));
    CK(lt_ck_no_overlap(&c, x, "x", inv_freq, "inv_freq", false));
    if (!(mscale > 0) || !isfinite(mscale))
        return lt_ck_fail(&c, LT_ERR_ARG, "mscale is %g, expected a finite value > 0", mscale);
    LT_DISPATCH(c.dev, prof, c.dev->be->rope(c.dev, x, pos, inv_freq, mscale, inverse));
}

lt_status lt_rope(lt_tensor *x, const lt_tensor *pos, const lt_tensor *inv_freq, float mscale)
{
    return rope_common("lt_rope", "rope", x, pos, inv_freq, mscale, false);
}

lt_status lt_rope_backward(lt_tensor *dx, const lt_tensor *pos, const lt_tensor *inv_freq,
                           float mscale)
{
    return rope_common("lt_rope_backward", "rope_backward", dx, pos, inv_freq, mscale, true);
}

/* ---- attention -------------------------------------------------------------------------- */

static lt_status check_attention(lt_opcheck *c, const lt_tensor *q, const lt_tensor *k,
                                 const lt_tensor *v, const lt_tensor *lse,
                                 const lt_tensor *seg, const lt_attn_params *p)
{
    char x[160], y[160], z[160];
    CK(lt_ck_tensor(c, q, "q", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, k, "k", LT_MASK_FLOAT));
    CK(lt_ck_tensor(c, v, "v", LT_MASK_FLOAT));
    CK(lt_ck_optional(c, lse, "lse", LT_MASK(LT_F32)));
    CK(lt_ck_optional(c, seg, "seg", LT_MASK(LT_I32)));
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
        return lt_ck_fail(c, LT_ERR_SHAPE, "%s, %s, %s must be 4-D [B, T, heads, hd]",
                          lt_ck_desc("q", q, x, sizeof x), lt_ck_desc("k", k, y, sizeof y),
                          lt_ck_desc("v", v, z, sizeof z));
    CK(lt_ck_same_shape(c, k, "k", v, "v"));
    int64_t B = q->shape[0], Tq = q->shape[1], H = q->shape[2], hd = q->shape[3];
    int64_t Tk = k->shape[1], Hkv = k->shape[2];
    if (k->shape[0] != B || k->shape[3] != hd || H % Hkv != 0)
        return lt_ck_fail(c, LT_ERR_SHAPE,
                          "%s and %s: expected k/v [B, Tk, Hkv, hd] with q's B and hd and "
                          "Hkv dividing H",
                          lt_ck_desc("q", q, x, sizeof x), lt_ck_desc("k", k, y, sizeof y));
    CK(lt_ck_numel(c, lse, "lse", B * H * Tq, "[B, H, Tq]"));
    if (!p)
        return lt_ck_fail(c, LT_ERR_ARG, "params is NULL");
    if (!isfinite(p->scale) || p->q_offset < 0 || p->n_kv < 0 || p->n_kv > Tk || p->window < 0)
        return lt_ck_fail(c, LT_ERR_ARG,
                          "scale %g, q_offset %lld, n_kv %lld, window %lld: expected a finite "
                          "scale, q_offset >= 0, 0 <= n_kv <= Tk = %lld and window >= 0",
                          p->scale, (long long)p->q_offset, (long long)p->n_kv,
                          (long long)p->window, (long long)Tk);
    if (seg) {
        CK(lt_ck_numel(c, seg, "seg", B * Tq, "[B, Tq]"));
        if (Tq != Tk || p->q_offset != 0)
            return lt_ck_fail(c, LT_ERR_ARG,
                              "segment ids need Tq == Tk and q_offset == 0 (got Tq %lld, Tk "
                              "%lld, q_offset %lld)",
                              (long long)Tq, (long long)Tk, (long long)p->q_offset);
    }
    return LT_OK;
}

lt_status lt_attention(lt_tensor *out, lt_tensor *lse, const lt_tensor *q, const lt_tensor *k,
                       const lt_tensor *v, const lt_tensor *seg, const lt_attn_params *p)
{
    lt_opcheck c = {lt_ck_device(6, out, lse, q, k, v, seg), "lt_attention"};
    CK(lt_ck_tensor(&c, out, "out", LT_MASK(LT_F32)));
    CK(check_attention(&c, q, k, v, lse, seg, p));
    CK(lt_ck_same_shape(&c, out, "out", q, "q"));
    const lt_tensor *ins[4] = {q, k, v, seg};
    const char *inn[4] = {"q", "k", "v", "seg"};
    for (int i = 0; i < 4; i++) {
        CK(lt_ck_no_overlap(&c, out, "out", ins[i], inn[i], false));
        CK(lt_ck_no_overlap(&c, lse, "lse", ins[i], inn[i], false));
    }
    CK(lt_ck_no_overlap(&c, out, "out", lse, "lse", false));
    LT_DISPATCH(c.dev, "attention", c.dev->be->attention(c.dev, out, lse, q, k, v, seg, p));
}

lt_status lt_attention_backward(lt_tensor *dq, lt_tensor *dk, lt_tensor *dv,
                                const lt_tensor *dout, const lt_tensor *q, const lt_tensor *k,
                                const lt_tensor *v, const lt_tensor *out, const lt_tensor *lse,
                                const lt_tensor *seg, const lt_attn_params *p)
{
    lt_opcheck c = {lt_ck_device(10, dq, dk, dv, dout, q, k, v, out, lse, seg),
                    "lt_attention_backward"};
    CK(lt_ck_tensor(&c, dq, "dq", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dk, "dk", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dv, "dv", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, dout, "dout", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, out, "out", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, lse, "lse", LT_MASK(LT_F32)));
    CK(check_attention(&c, q, k, v, lse, seg, p));
    CK(lt_ck_same_shape(&c, dq, "dq", q, "q"));
    CK(lt_ck_same_shape(&c, dk, "dk", k, "k"));
    CK(lt_ck_same_shape(&c, dv, "dv", v, "v"));
    CK(lt_ck_same_shape(&c, dout, "dout", q, "q"));
    CK(lt_ck_same_shape(&c, out, "out", q, "q"));
    const lt_tensor *ins[7] = {dout, q, k, v, out, lse, seg};
    const char *inn[7] = {"dout", "q", "k", "v", "out", "lse", "seg"};
    const lt_tensor *outs[3] = {dq, dk, dv};
    const char *outn[3] = {"dq", "dk", "dv"};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 7; j++)
            CK(lt_ck_no_overlap(&c, outs[i], outn[i], ins[j], inn[j], false));
        for (int j = i + 1; j < 3; j++)
            CK(lt_ck_no_overlap(&c, outs[i], outn[i], outs[j], outn[j], false));
    }
    LT_DISPATCH(c.dev, "attention_backward",
                c.dev->be->attention_backward(c.dev, dq, dk, dv, dout, q, k, v, out, lse, seg,
                                              p));
}

/* ---- cross-entropy and log-prob gather --------------------------------------------------- */

lt_status lt_cross_entropy(lt_tensor *loss, lt_tensor *row_loss, lt_tensor *dlogits,
                           const lt_tensor *logits, const lt_tensor *labels, int ignore_index,
                           float grad_scale, int64_t n_counted)
{
    lt_opcheck c = {lt_ck_device(5, loss, row_loss, dlogits, logits, labels),
                    "lt_cross_entropy"};
    CK(lt_ck_tensor(&c, loss, "loss", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, logits, "logits", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(&c, labels, "labels", LT_MASK(LT_I32)));
    CK(lt_ck_optional(&c, row_loss, "row_loss", LT_MASK(LT_F32)));
    CK(lt_ck_optional(&c, dlogits, "dlogits", LT_MASK(LT_F32)));
    int64_t V = last_dim(logits), N = logits->numel / V;
    CK(lt_ck_numel(&c, loss, "loss", 1, "the mean loss"));
    CK(lt_ck_numel(&c, labels, "labels", N, "one label per row of logits"));
    CK(lt_ck_numel(&c, row_loss, "row_loss", N, "one per row of logits"));
    CK(lt_ck_same_shape(&c, dlogits, "dlogits", logits, "logits"));
    const lt_tensor *outs[3] = {loss, row_loss, dlogits};
    const char *outn[3] = {"loss", "row_loss", "dlogits"};
    for (int i = 0; i < 3; i++) {
        CK(lt_ck_no_overlap(&c, outs[i], outn[i], logits, "logits", i == 2));
        CK(lt_ck_no_overlap(&c, outs[i], outn[i], labels, "labels", false));
        for (int j = i + 1; j < 3; j++)
            CK(lt_ck_no_overlap(&c, outs[i], outn[i], outs[j], outn[j], false));
    }
    if (n_counted < 0 || !isfinite(grad_scale))
        return lt_ck_fail(&c, LT_ERR_ARG,
                          "n_counted %lld and grad_scale %g: expected n_counted >= 0 and a "
                          "finite grad_scale",
                          (long long)n_counted, grad_scale);
    CK(lt_ck_ids_range(&c, labels, "labels", V, true, ignore_index));
    LT_DISPATCH(c.dev, "cross_entropy",
                c.dev->be->cross_entropy(c.dev, loss, row_loss, dlogits, logits, labels,
                                         ignore_index, grad_scale, n_counted));
}

static lt_status check_gather(lt_opcheck *c, const lt_tensor *rowv, const char *rn,
                              const lt_tensor *logits, const lt_tensor *ids)
{
    CK(lt_ck_tensor(c, rowv, rn, LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, logits, "logits", LT_MASK(LT_F32)));
    CK(lt_ck_tensor(c, ids, "ids", LT_MASK(LT_I32)));
    int64_t V = last_dim(logits), N = logits->numel / V;
    CK(lt_ck_numel(c, rowv, rn, N, "one per row of logits"));
    CK(lt_ck_numel(c, ids, "ids", N, "one id per row of logits"));
    return lt_ck_ids_range(c, ids, "ids", V, false, 0);
}

lt_status lt_logprob_gather(lt_tensor *out, const lt_tensor *logits, const lt_tensor *ids)
{
    lt_opcheck c = {lt_ck_device(3, out, logits, ids), "lt_logprob_gather"};
    CK(check_gather(&c, out, "out", logits, ids));
    CK(lt_ck_no_overlap(&c, out, "out", logits, "logits", false));
    CK(lt_ck_no_overlap(&c, out, "out", ids, "ids", false));
    LT_DISPATCH(c.dev, "logprob_gather", c.dev->be->logprob_gather(c.dev, out, logits, ids));
}

lt_status lt_logprob_gather_backward(lt_tensor *dlogits, const lt_tensor *dout,
                                     const lt_tensor *logits, const lt_tensor *ids)
{
    lt_opcheck c = {lt_ck_device(4, dlogits, dout, logits, ids), "lt_logprob_gather_backward"};
    CK(lt_ck_tensor(&c, dlogits, "dlogits", LT_MASK(LT_F32)));
    CK(check_gather(&c, dout, "dout", logits, ids));
    CK(lt_ck_same_shape(&c, dlogits, "dlogits", logits, "logits"));
    CK(lt_ck_no_overlap(&c, dlogits, "dlogits", logits, "logits", false));
    CK(lt_ck_no_overlap(&c, dlogits, "dlogits", dout, "dout", false));
    CK(lt_ck_no_overlap(&c, dlogits, "dlogits", ids, "ids", false));
    LT_DISPATCH(c.dev, "logprob_gather_backward",
                c.dev->be->logprob_gather_backward(c.dev, dlogits, dout, logits, ids));
}
