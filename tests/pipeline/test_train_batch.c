/*
 * test_train_batch.c - how batches reach the gradients: a packed row (two examples with
 * positions restarting and segment ids) gives the loss and gradients of the same examples in
 * separate rows; prompt tokens (label -100) carry no loss (the loss is the mean NLL of the
 * labelled tokens only) and a fully masked batch gives zero gradients; two micro-batches with
 * a shared token denominator accumulate to the gradients of one batch; a NaN gradient skips
 * the update; freeze trains only the chosen layers; LoRA dropout's gradients match finite
 * differences under a fixed mask; bad batches are refused with a message.
 */
#include "test.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

static lt_model *load(lt_device *dev, const char *name)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/models/%s", LATHE_TEST_DATA, name);
    lt_model *m = NULL;
    CHECK(lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) == LT_MODEL_OK,
          "%s: %s", name, err);
    return m;
}

static lt_trainer *trainer(lt_model *m, lt_train_method method, int64_t B, int64_t T)
{
    lt_trainer_opts o = {.method = method,
                         .lora = {.r = 4, .alpha = 8, .targets = LT_LORA_Q | LT_LORA_V, .seed = 3},
                         .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .max_batch = B,
                         .max_seq = T};
    lt_trainer *t = NULL;
    CHECK(lt_trainer_new(m, &o, &t, err, sizeof(err)) == LT_MODEL_OK, "trainer: %s", err);
    return t;
}

/* All gradients of t, concatenated (caller frees). */
static float *grads(lt_trainer *t, int64_t *n)
{
    int64_t total = 0;
    for (int i = 0; i < lt_trainer_n_state(t); i++)
        total += lt_tensor_numel(lt_trainer_grad(t, i));
    float *h = malloc((size_t)total * sizeof(float) + 1);
    int64_t off = 0;
    for (int i = 0; h && i < lt_trainer_n_state(t); i++) {
        lt_tensor *g = lt_trainer_grad(t, i);
        if (lt_tensor_download_f32(g, h + off, lt_tensor_numel(g)) != LT_OK) {
            free(h);
            return NULL;
        }
        off += lt_tensor_numel(g);
    }
    *n = total;
    return h;
}

static double rel(const float *a, const float *b, int64_t n)
{
    double d = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        d = e > d || isnan(e) ? e : d;
        mb = fabs((double)b[i]) > mb ? fabs((double)b[i]) : mb;
    }
    return d / (mb > 1e-30 ? mb : 1e-30);
}

/* Two examples (5 and 3 tokens; the first two of example one are prompt) packed in one row
 * versus one per row. */
static void packed_vs_rows(lt_device *dev, const char *name)
{
    lt_model *m = load(dev, name);
    if (!m)
        return;
    const int32_t e1[5] = {7, 19, 100, 3, 55}, e2[3] = {42, 9, 77};
    int32_t ids_p[8], lab_p[8], pos_p[8], seg_p[8];
    for (int i = 0; i < 5; i++) {
        ids_p[i] = e1[i], pos_p[i] = i, seg_p[i] = 0;
        lab_p[i] = i < 4 && i >= 1 ? e1[i + 1] : -100;
    }
    for (int i = 0; i < 3; i++) {
        ids_p[5 + i] = e2[i], pos_p[5 + i] = i, seg_p[5 + i] = 1;
        lab_p[5 + i] = i < 2 ? e2[i + 1] : -100;
    }
    int32_t ids_r[10] = {0}, lab_r[10];
    for (int i = 0; i < 10; i++)
        lab_r[i] = -100;
    for (int i = 0; i < 5; i++)
        ids_r[i] = e1[i], lab_r[i] = lab_p[i];
    for (int i = 0; i < 3; i++)
        ids_r[5 + i] = e2[i], lab_r[5 + i] = lab_p[5 + i];
    lt_trainer *tp = trainer(m, LT_METHOD_FULL, 1, 8);
    double lp = 0, lr = 0;
    int64_t np = 0, nr = 0, gnp = 0, gnr = 0;
    lt_batch bp = {1, 8, ids_p, lab_p, pos_p, seg_p};
    CHECK(tp && lt_trainer_forward_backward(tp, &bp, 0, 1.0f, &lp, &np, err, sizeof(err)) == 0,
          "%s packed: %s", name, err);
    float *gp = tp ? grads(tp, &gnp) : NULL;
    lt_trainer_free(tp);
    lt_trainer *tr = trainer(m, LT_METHOD_FULL, 2, 5);
    lt_batch br = {2, 5, ids_r, lab_r, NULL, NULL};
    CHECK(tr && lt_trainer_forward_backward(tr, &br, 0, 1.0f, &lr, &nr, err, sizeof(err)) == 0,
          "%s rows: %s", name, err);
    float *gr = tr ? grads(tr, &gnr) : NULL;
    CHECK(np == 5 && nr == 5, "%s: labelled tokens %lld packed, %lld in rows (want 5)", name,
          (long long)np, (long long)nr);
    CHECK(fabs(lp - lr) <= 1e-5, "%s: packed loss %.7f, rows %.7f", name, lp, lr);
    double e = gp && gr && gnp == gnr ? rel(gp, gr, gnp) : INFINITY;
    CHECK(e <= 1e-5, "%s: packed vs rows gradients differ by %.3g relative", name, e);
    printf("%-10s packed vs separate rows: loss %.7f vs %.7f, gradients %.3g relative\n", name, lp,
           lr, e);
    free(gp);
    free(gr);

    /* the loss is the mean NLL over labelled tokens only: recompute it from the logits */
    if (tr) {
        lt_forward *f = NULL;
        lt_forward_opts fo = {.max_batch = 2, .max_seq = 5};
        lt_tensor *logits = NULL;
        CHECK(lt_forward_new(m, &fo, &f, err, sizeof(err)) == 0 &&
                  lt_forward_run(f, ids_r, 2, 5, NULL, &logits, err, sizeof(err)) == 0,
              "forward: %s", err);
        int64_t V = m->cfg.vocab;
        float *lg = malloc((size_t)(10 * V) * sizeof(float));
        if (logits && lg && lt_tensor_download_f32(logits, lg, 10 * V) == LT_OK) {
            double sum = 0;
            int cnt = 0;
            for (int i = 0; i < 10; i++) {
                if (lab_r[i] == -100)
                    continue;
                double mx = -INFINITY, z = 0;
                for (int64_t v = 0; v < V; v++)
                    mx = lg[i * V + v] > mx ? lg[i * V + v] : mx;
                for (int64_t v = 0; v < V; v++)
                    z += exp(lg[i * V + v] - mx);
                sum += mx + log(z) - lg[i * V + lab_r[i]];
                cnt++;
            }
            CHECK(fabs(sum / cnt - lr) <= 1e-5, "%s: loss %.7f, mean NLL of labelled %.7f", name,
                  lr, sum / cnt);
        }
        free(lg);
        lt_forward_free(f);
    }

    /* a fully masked batch: no loss, no tokens, zero gradients */
    if (tr && lt_trainer_zero_grad(tr, err, sizeof(err)) == 0) {
        int32_t none[10];
        for (int i = 0; i < 10; i++)
            none[i] = -100;
        lt_batch bm = {2, 5, ids_r, none, NULL, NULL};
        double l0 = -1;
        int64_t n0 = -1, gn = 0;
        CHECK(lt_trainer_forward_backward(tr, &bm, 0, 1.0f, &l0, &n0, err, sizeof(err)) == 0,
              "masked: %s", err);
        float *g0 = grads(tr, &gn);
        double mx = 0;
        for (int64_t i = 0; g0 && i < gn; i++)
            mx = fabs(g0[i]) > mx ? fabs(g0[i]) : mx;
        CHECK(l0 == 0 && n0 == 0 && g0 && mx == 0, "%s: masked batch: loss %g, %lld tokens, "
              "max |grad| %g", name, l0, (long long)n0, mx);
        free(g0);
    }
    lt_trainer_free(tr);
    lt_model_free(m);
}

/* Two one-row micro-batches with the shared denominator == one two-row batch. */
static void accumulation(lt_device *dev)
{
    lt_model *m = load(dev, "llama_gqa");
    if (!m)
        return;
    int32_t ids[16], lab[16];
    for (int i = 0; i < 16; i++) {
        ids[i] = (i * 37 + 11) % 128;
        lab[i] = i % 8 < 2 ? -100 : (i * 53 + 5) % 128;
    }
    lt_trainer *t = trainer(m, LT_METHOD_LORA, 2, 8);
    if (!t)
        goto out;
    lt_batch b2 = {2, 8, ids, lab, NULL, NULL};
    double l2 = 0, la = 0, lb = 0;
    int64_t n = 0, n2 = 0, ga = 0;
    CHECK(lt_trainer_forward_backward(t, &b2, 0, 1.0f, &l2, &n2, err, sizeof(err)) == 0, "%s",
          err);
    float *g2 = grads(t, &n);
    lt_trainer_zero_grad(t, err, sizeof(err));
    lt_batch r0 = {1, 8, ids, lab, NULL, NULL}, r1 = {1, 8, ids + 8, lab + 8, NULL, NULL};
    CHECK(lt_trainer_forward_backward(t, &r0, 12, 1.0f, &la, NULL, err, sizeof(err)) == 0 &&
              lt_trainer_forward_backward(t, &r1, 12, 1.0f, &lb, NULL, err, sizeof(err)) == 0,
          "%s", err);
    float *gacc = grads(t, &ga);
    double e = g2 && gacc && n == ga ? rel(gacc, g2, n) : INFINITY;
    CHECK(n2 == 12 && e <= 1e-5, "accumulated micro-batches vs one batch: %.3g relative", e);
    CHECK(fabs((la + lb) / 2 - l2) <= 1e-5, "micro-batch losses %.6f %.6f vs %.6f", la, lb, l2);
    printf("accumulation (LoRA): two micro-batches vs one batch, gradients %.3g relative\n", e);
    free(g2);
    free(gacc);

    /* a NaN gradient (from a NaN in an adapter) skips the update and leaves the step count */
    lt_trainer_zero_grad(t, err, sizeof(err));
    const lt_trainer_state *s0 = lt_trainer_state_at(t, 0);
    int64_t cnt = lt_tensor_numel(s0->param);
    float *pb = malloc((size_t)cnt * sizeof(float)), *pa = malloc((size_t)cnt * sizeof(float));
    float keep0 = 0;
    bool skipped = false;
    double gn = 0;
    if (pb && pa && lt_tensor_download_f32(s0->param, pb, cnt) == LT_OK) {
        keep0 = pb[0];
        pb[0] = NAN;
        lt_tensor_upload_f32(s0->param, pb, cnt);
        CHECK(lt_trainer_forward_backward(t, &b2, 0, 1.0f, NULL, NULL, err, sizeof(err)) == 0,
              "%s", err);
        CHECK(lt_trainer_step(t, 1e-3f, 1.0f, &gn, &skipped, err, sizeof(err)) == 0 && skipped,
              "NaN gradient: step not skipped (norm %g)", gn);
        lt_tensor_download_f32(s0->param, pa, cnt);
        CHECK(memcmp(pa, pb, (size_t)cnt * sizeof(float)) == 0 && lt_trainer_adam_step(t) == 0,
              "skipped step changed the parameters or the step count");
        pb[0] = keep0;
        lt_tensor_upload_f32(s0->param, pb, cnt);
    }
    free(pa);
    free(pb);
    CHECK(lt_trainer_forward_backward(t, &b2, 0, NAN, NULL, NULL, err, sizeof(err)) ==
              LT_MODEL_ERR_ARG,
          "a NaN grad_scale is refused: %s", err);
    /* and a finite one with clipping applies */
    CHECK(lt_trainer_forward_backward(t, &b2, 0, 1.0f, NULL, NULL, err, sizeof(err)) == 0 &&
              lt_trainer_step(t, 1e-3f, 1e-3f, &gn, &skipped, err, sizeof(err)) == 0 &&
              !skipped && lt_trainer_adam_step(t) == 1 && gn > 1e-3,
          "clipped step: %s", err);
    /* bad batches */
    int32_t bad[16];
    memcpy(bad, lab, sizeof(bad));
    bad[3] = 5000;
    lt_batch bb = {2, 8, ids, bad, NULL, NULL};
    CHECK(lt_trainer_forward_backward(t, &bb, 0, 1, NULL, NULL, err, sizeof(err)) ==
                  LT_MODEL_ERR_ARG && strstr(err, "label"),
          "a label outside the vocabulary: %s", err);
    lt_batch big = {3, 8, ids, lab, NULL, NULL};
    CHECK(lt_trainer_forward_backward(t, &big, 0, 1, NULL, NULL, err, sizeof(err)) ==
              LT_MODEL_ERR_ARG,
          "a batch larger than the trainer's: %s", err);
out:
    lt_trainer_free(t);
    lt_model_free(m);
}

static void freeze(lt_device *dev)
{
    lt_model *m = load(dev, "gpt2");
    if (!m)
        return;
    bool layers[2] = {false, true};
    lt_trainer_opts o = {.method = LT_METHOD_FREEZE, .train_layer = layers, .beta1 = 0.9f,
                         .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f, .max_batch = 1,
                         .max_seq = 8};
    lt_trainer *t = NULL;
    CHECK(lt_trainer_new(m, &o, &t, err, sizeof(err)) == 0, "freeze: %s", err);
    int ok = 1;
    for (int i = 0; t && i < lt_trainer_n_state(t); i++)
        ok &= strstr(lt_trainer_state_at(t, i)->name, "h.1.") != NULL;
    CHECK(t && ok && lt_trainer_n_state(t) == 12, "freeze: %d tensors, all in layer 1: %d",
          t ? lt_trainer_n_state(t) : 0, ok);
    int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, lab[8] = {2, 3, 4, 5, 6, 7, 8, 9};
    lt_batch b = {1, 8, ids, lab, NULL, NULL};
    bool sk = true;
    CHECK(t && lt_trainer_forward_backward(t, &b, 0, 1, NULL, NULL, err, sizeof(err)) == 0 &&
              lt_trainer_step(t, 1e-3f, 1.0f, NULL, &sk, err, sizeof(err)) == 0 && !sk,
          "freeze step: %s", err);
    lt_trainer_free(t);
    bool none[2] = {false, false};
    o.train_layer = none;
    t = NULL;
    CHECK(lt_trainer_new(m, &o, &t, err, sizeof(err)) == LT_MODEL_ERR_ARG && !t,
          "freezing everything is refused: %s", err);
    lt_model_free(m);
}

/* Loss of the model with its attached adapter, dropout masks from seed; with grads, the
 * backward pass fills g. */
static double lora_loss(lt_model *m, lt_forward *f, lt_backward *bw, const lt_model_grads *g,
                        const int32_t *ids, lt_tensor *labels, lt_tensor *loss, uint64_t seed)
{
    lt_tensor *logits = NULL;
    float l = NAN;
    lt_forward_set_train(f, true, seed);
    if (lt_forward_run(f, ids, 2, 8, NULL, &logits, err, sizeof(err)) != LT_MODEL_OK ||
        lt_cross_entropy(loss, NULL, g ? logits : NULL, logits, labels, -100, 1.0f, 0) != LT_OK)
        return NAN;
    if (g && lt_backward_run(bw, f, g, err, sizeof(err)) != LT_MODEL_OK)
        return NAN;
    lt_tensor_download_f32(loss, &l, 1);
    (void)m;
    return l;
}

/* LoRA dropout: with a fixed mask, the adapter gradients match finite differences, and the
 * masks change the loss only in training. */
static void lora_dropout(lt_device *dev)
{
    lt_model *m = load(dev, "llama_gqa");
    lt_lora_adapter *a = NULL, *ga = NULL;
    lt_forward *f = NULL;
    lt_backward *bw = NULL;
    lt_model_grads g = {0};
    lt_tensor *labels = lt_tensor_new_1d(dev, LT_I32, 16), *loss = lt_tensor_new_1d(dev, LT_F32, 1);
    if (!m)
        goto out;
    uint32_t slots = lt_lora_slots(m, LT_LORA_Q | LT_LORA_DOWN);
    lt_forward_opts fo = {.max_batch = 2, .max_seq = 8, .keep_activations = true};
    CHECK(lt_lora_alloc(m, slots, 4, 2.0f, 0.3f, &a, err, sizeof(err)) == 0 &&
              lt_lora_alloc(m, slots, 4, 2.0f, 0.3f, &ga, err, sizeof(err)) == 0 &&
              lt_lora_init(a, 5, err, sizeof(err)) == 0,
          "lora: %s", err);
    g.layers = calloc((size_t)m->cfg.n_layers, sizeof(lt_layer_grads));
    if (!a || !ga || !g.layers)
        goto out;
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        for (int s = 0; s < LT_LSLOT_COUNT; s++)
            if (a->mods[l][s].A) {
                lt_fill(a->mods[l][s].B, 0.05f); /* non-zero B: A gets a gradient */
                lt_fill(ga->mods[l][s].A, 0);
                lt_fill(ga->mods[l][s].B, 0);
                g.layers[l].lora[s] = ga->mods[l][s];
            }
    lt_model_attach_lora(m, a);
    CHECK(lt_forward_new(m, &fo, &f, err, sizeof(err)) == 0 &&
              lt_backward_new(m, 2, 8, 4, &bw, err, sizeof(err)) == 0,
          "workspaces: %s", err);
    int32_t ids[16], lab[16];
    for (int i = 0; i < 16; i++)
        ids[i] = (i * 13 + 1) % 128, lab[i] = (i * 7 + 2) % 128;
    lt_tensor_upload(labels, lab, sizeof(lab));
    if (!f || !bw)
        goto out;
    double l0 = lora_loss(m, f, bw, &g, ids, labels, loss, 77);
    double l1 = lora_loss(m, f, NULL, NULL, ids, labels, loss, 78);
    CHECK(isfinite(l0) && fabs(l0 - l1) > 1e-6, "dropout masks do not change the loss (%g, %g)",
          l0, l1);
    /* finite differences on a few elements of layer 1's q A and down B */
    lt_tensor *ts[2] = {a->mods[1][LT_LSLOT_Q].A, a->mods[1][LT_LSLOT_DOWN].B};
    lt_tensor *gs[2] = {ga->mods[1][LT_LSLOT_Q].A, ga->mods[1][LT_LSLOT_DOWN].B};
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        int64_t n = lt_tensor_numel(ts[k]);
        float *h = malloc((size_t)n * sizeof(float)), *gh = malloc((size_t)n * sizeof(float));
        if (!h || !gh || lt_tensor_download_f32(ts[k], h, n) != LT_OK ||
            lt_tensor_download_f32(gs[k], gh, n) != LT_OK) {
            free(h);
            free(gh);
            continue;
        }
        for (int64_t i = 0; i < n; i += n / 5) {
            float keep = h[i], eps = 4e-2f;
            h[i] = keep + eps;
            lt_tensor_upload_f32(ts[k], h, n);
            double lp = lora_loss(m, f, NULL, NULL, ids, labels, loss, 77);
            h[i] = keep - eps;
            lt_tensor_upload_f32(ts[k], h, n);
            double lm = lora_loss(m, f, NULL, NULL, ids, labels, loss, 77);
            h[i] = keep;
            lt_tensor_upload_f32(ts[k], h, n);
            double fd = (lp - lm) / (2.0 * eps), e = fabs(fd - gh[i]) / (fabs(fd) + 1e-3);
            worst = e > worst || isnan(e) ? e : worst;
        }
        free(h);
        free(gh);
    }
    CHECK(worst <= 2e-2, "LoRA dropout gradients vs finite differences: %.3g relative", worst);
    printf("LoRA dropout 0.3: adapter gradients vs finite differences %.3g relative\n", worst);
    /* evaluation ignores dropout: two seeds give the same loss */
    lt_tensor *logits = NULL;
    float e1 = 0, e2 = 0;
    lt_forward_set_train(f, false, 1);
    lt_forward_run(f, ids, 2, 8, NULL, &logits, err, sizeof(err));
    lt_cross_entropy(loss, NULL, NULL, logits, labels, -100, 1, 0);
    lt_tensor_download_f32(loss, &e1, 1);
    lt_forward_set_train(f, false, 2);
    lt_forward_run(f, ids, 2, 8, NULL, &logits, err, sizeof(err));
    lt_cross_entropy(loss, NULL, NULL, logits, labels, -100, 1, 0);
    lt_tensor_download_f32(loss, &e2, 1);
    CHECK(e1 == e2 && isfinite(e1), "evaluation with dropout adapters: %g vs %g", e1, e2);
out:
    if (m)
        lt_model_attach_lora(m, NULL);
    lt_backward_free(bw);
    lt_forward_free(f);
    free(g.layers);
    lt_lora_free(ga);
    lt_lora_free(a);
    lt_tensor_free(labels);
    lt_tensor_free(loss);
    lt_model_free(m);
}

int main(void)
{
    lt_device *dev = lt_device_open("cpu", 2, err, sizeof(err));
    CHECK(dev != NULL, "cpu: %s", err);
    if (!dev)
        return test_summary();
    packed_vs_rows(dev, "llama_gqa");
    packed_vs_rows(dev, "gpt2");
    accumulation(dev);
    freeze(dev);
    lora_dropout(dev);
    lt_device_close(dev);
    return test_summary();
}
