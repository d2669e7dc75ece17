/*
 * test_pref.c - preference objectives against PyTorch and in training: for one batch of two
 * pairs on the Llama fixture with LoRA (tests/data/pref/gen_pref_ref.py), DPO (sigmoid), IPO
 * and ORPO give the reference's loss, rewards and every adapter gradient within 1e-4; the
 * reference log-probs are cached per pair id and come from the base with the adapter off; bad
 * batches are named errors; and on a small synthetic preference set DPO (LoRA and full
 * fine-tuning) and ORPO raise the reward accuracy above 0.9 within a few hundred steps on the
 * CPU (the curve is printed).
 */
#include "model/safetensors.h"
#include "test.h"
#include "train/pref.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];
static const uint32_t LLAMA_ALL = LT_LORA_Q | LT_LORA_K | LT_LORA_V | LT_LORA_O | LT_LORA_GATE |
                                  LT_LORA_UP | LT_LORA_DOWN;

static double rel_err(const float *a, const float *b, int64_t n)
{
    double md = 0, mb = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - (double)b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return md / mb;
}

static lt_trainer *lora_trainer(lt_model *m, int64_t rows, int64_t T, lt_train_method meth)
{
    lt_trainer_opts o = {.method = meth,
                         .lora = {.r = 4, .alpha = 8.0f, .targets = LLAMA_ALL, .seed = 1},
                         .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                         .max_batch = rows, .max_seq = T};
    lt_trainer *t = NULL;
    CHECK(lt_trainer_new(m, &o, &t, err, sizeof(err)) == LT_MODEL_OK, "trainer: %s", err);
    return t;
}

static void test_against_torch(lt_device *dev)
{
    char dir[512], refp[512];
    snprintf(dir, sizeof(dir), "%s/models/llama_gqa", LATHE_TEST_DATA);
    snprintf(refp, sizeof(refp), "%s/pref/pref_ref.safetensors", LATHE_TEST_DATA);
    lt_model *m = NULL;
    lt_st_file *ref = NULL;
    lt_trainer *t = NULL;
    CHECK(lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) == LT_MODEL_OK,
          "load: %s", err);
    CHECK(lt_st_open(refp, &ref, err, sizeof(err)) == LT_ST_OK, "%s", err);
    const lt_st_tensor *x = ref ? lt_st_find(ref, "input_ids") : NULL;
    const lt_st_tensor *y = ref ? lt_st_find(ref, "labels") : NULL;
    const lt_st_tensor *rl = ref ? lt_st_find(ref, "ref_logps") : NULL;
    CHECK(x && y && rl, "reference batch");
    if (!m || !x || !y || !rl)
        goto out;
    const int64_t P = x->shape[0] / 2, T = x->shape[1];
    t = lora_trainer(m, 2 * P, T, LT_METHOD_LORA);
    if (!t)
        goto out;
    int n = lt_trainer_n_state(t);
    for (int i = 0; i < n; i++) {
        const lt_trainer_state *s = lt_trainer_state_at(t, i);
        char key[320];
        snprintf(key, sizeof(key), "lora.%s", s->name);
        const lt_st_tensor *r = lt_st_find(ref, key);
        CHECK(r && r->numel == lt_tensor_numel(s->param), "reference lacks %s", s->name);
        if (!r)
            goto out;
        lt_tensor_upload(s->param, r->data, (size_t)r->numel * 4);
    }
    int64_t pid[2] = {100, 200};
    lt_pref_batch b = {P, T, x->data, y->data, pid};
    static const struct {
        const char *name;
        lt_pref_kind kind;
    } objs[] = {{"dpo", LT_PREF_DPO}, {"ipo", LT_PREF_DPO_IPO}, {"orpo", LT_PREF_ORPO}};
    for (int k = 0; k < 3; k++) {
        lt_pref *p = NULL;
        lt_pref_opts po = {objs[k].kind, 0.1f};
        CHECK(lt_pref_new(t, &po, &p, err, sizeof(err)) == LT_MODEL_OK, "pref: %s", err);
        if (!p)
            continue;
        lt_pref_stats st;
        lt_trainer_zero_grad(t, err, sizeof(err));
        CHECK(lt_pref_forward_backward(p, &b, 1.0f, &st, err, sizeof(err)) == LT_MODEL_OK,
              "%s: %s", objs[k].name, err);
        char key[320];
        snprintf(key, sizeof(key), "%s.loss", objs[k].name);
        const lt_st_tensor *wl = lt_st_find(ref, key);
        snprintf(key, sizeof(key), "%s.rewards", objs[k].name);
        const lt_st_tensor *wr = lt_st_find(ref, key);
        double want = wl ? ((const float *)wl->data)[0] : NAN;
        CHECK(fabs(st.loss - want) <= 1e-4 * fmax(1.0, fabs(want)), "%s: loss %.7f, torch %.7f",
              objs[k].name, st.loss, want);
        if (wr) {
            const float *w = wr->data;
            double wc = (w[0] + w[2]) / 2, wrj = (w[1] + w[3]) / 2;
            double wacc = ((w[0] > w[1]) + (w[2] > w[3])) / 2.0;
            CHECK(fabs(st.reward_chosen - wc) < 1e-5 && fabs(st.reward_rejected - wrj) < 1e-5 &&
                      st.accuracy == wacc,
                  "%s: rewards %.6f %.6f acc %.2f, torch %.6f %.6f %.2f", objs[k].name,
                  st.reward_chosen, st.reward_rejected, st.accuracy, wc, wrj, wacc);
        }
        if (objs[k].kind != LT_PREF_ORPO) {
            double rc = 0, rr = 0;
            bool have = lt_pref_reference(p, 200, &rc, &rr);
            const float *R = rl->data;
            CHECK(have && fabs(rc - R[1]) < 1e-4 && fabs(rr - R[3]) < 1e-4,
                  "%s: cached reference of pair 200: %.6f %.6f, torch (adapter off) %.6f %.6f",
                  objs[k].name, rc, rr, (double)R[1], (double)R[3]);
        }
        double worst = 0;
        int compared = 0;
        for (int i = 0; i < n; i++) {
            const lt_trainer_state *s = lt_trainer_state_at(t, i);
            snprintf(key, sizeof(key), "%s.grad.%s", objs[k].name, s->name);
            const lt_st_tensor *r = lt_st_find(ref, key);
            int64_t cnt = lt_tensor_numel(s->param);
            float *g = malloc((size_t)cnt * sizeof(float));
            if (r && g && r->numel == cnt &&
                lt_tensor_download_f32(lt_trainer_grad(t, i), g, cnt) == LT_OK) {
                double e = rel_err(g, r->data, cnt);
                CHECK(e <= 1e-4, "%s: %s gradient relative error %.3g", objs[k].name, s->name, e);
                worst = fmax(worst, e);
                compared++;
            } else {
                CHECK(0, "%s: %s: no reference gradient", objs[k].name, s->name);
            }
            free(g);
        }
        printf("%-5s loss %.6f (torch %.6f) rewards %.5f / %.5f, %d gradients, worst relative "
               "error %.3g\n",
               objs[k].name, st.loss, want, st.reward_chosen, st.reward_rejected, compared, worst);
        lt_pref_free(p);
    }
    /* bad batches: a row without response tokens, missing pair ids for DPO */
    {
        lt_pref *p = NULL;
        lt_pref_opts po = {LT_PREF_DPO, 0.1f};
        lt_pref_new(t, &po, &p, err, sizeof(err));
        int32_t *lab = malloc((size_t)(2 * P * T) * sizeof(int32_t));
        memcpy(lab, y->data, (size_t)(2 * P * T) * sizeof(int32_t));
        for (int64_t k = 3 * T; k < 4 * T; k++)
            lab[k] = -100;
        int64_t pid2[2] = {300, 400};
        lt_pref_batch bb = {P, T, x->data, lab, pid2};
        CHECK(lt_pref_forward_backward(p, &bb, 1.0f, NULL, err, sizeof(err)) == LT_MODEL_ERR_ARG &&
                  strstr(err, "pair 1") && strstr(err, "rejected"),
              "row without response tokens: %s", err);
        bb.pair_ids = NULL;
        bb.labels = y->data;
        CHECK(lt_pref_forward_backward(p, &bb, 1.0f, NULL, err, sizeof(err)) == LT_MODEL_ERR_ARG,
              "DPO without pair ids: %s", err);
        lt_pref_opts bad = {LT_PREF_DPO, 0.0f};
        lt_pref *q = NULL;
        CHECK(lt_pref_new(t, &bad, &q, err, sizeof(err)) == LT_MODEL_ERR_ARG && strstr(err, "beta"),
              "beta 0: %s", err);
        free(lab);
        lt_pref_free(p);
    }
out:
    lt_trainer_free(t);
    lt_st_close(ref);
    lt_model_free(m);
}

/*
 * A synthetic preference set: 16 pairs, prompt 3 tokens; the chosen response repeats the
 * prompt's first token 4 times, the rejected one is 4 random tokens. Trains with AdamW and
 * prints the reward accuracy over the whole set every 10 steps; passes when it exceeds 0.9.
 */
static void test_accuracy_rises(lt_device *dev, lt_pref_kind kind, lt_train_method meth,
                                float lr, const char *label)
{
    enum { NP = 16, T = 8, PB = 4 };
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/models/llama_gqa", LATHE_TEST_DATA);
    lt_model *m = NULL;
    CHECK(lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) == LT_MODEL_OK,
          "load: %s", err);
    if (!m)
        return;
    lt_trainer *t = lora_trainer(m, 2 * NP, T, meth);
    lt_pref *p = NULL;
    lt_pref_opts po = {kind, 0.1f};
    if (t)
        CHECK(lt_pref_new(t, &po, &p, err, sizeof(err)) == LT_MODEL_OK, "pref: %s", err);
    if (!t || !p) {
        lt_trainer_free(t);
        lt_model_free(m);
        return;
    }
    static int32_t ids[2 * NP * T], lab[2 * NP * T];
    int64_t pid[NP];
    uint64_t s = 99;
    for (int i = 0; i < NP; i++) {
        pid[i] = i;
        int32_t pr[3];
        for (int k = 0; k < 3; k++)
            pr[k] = 3 + (int32_t)(lt_splitmix64(&s) % 120);
        for (int side = 0; side < 2; side++) {
            int32_t *row = ids + (side * NP + i) * T, *lr = lab + (side * NP + i) * T;
            for (int k = 0; k < T; k++) {
                row[k] = 0;
                lr[k] = -100;
            }
            for (int k = 0; k < 3; k++)
                row[k] = pr[k];
            for (int k = 3; k < 7; k++)
                row[k] = side == 0 ? pr[0] : 3 + (int32_t)(lt_splitmix64(&s) % 120);
            for (int k = 2; k < 6; k++)
                lr[k] = row[k + 1];
        }
    }
    /* the reference over the whole set before any update (the frozen copy for full FT) */
    lt_pref_batch all = {NP, T, ids, lab, pid};
    CHECK(lt_pref_fill_reference(p, &all, err, sizeof(err)) == LT_MODEL_OK, "reference: %s", err);
    static int32_t bid[2 * PB * T], blab[2 * PB * T];
    int64_t bpid[PB];
    double acc = 0;
    int steps = 0;
    printf("%s reward accuracy:", label);
    for (int step = 0; step <= 300; step++) {
        if (step % 10 == 0) {
            lt_pref_stats st;
            CHECK(lt_pref_eval(p, &all, &st, err, sizeof(err)) == LT_MODEL_OK, "eval: %s", err);
            acc = st.accuracy;
            printf(" %d:%.2f", step, acc);
            fflush(stdout);
            if (acc > 0.9 && step >= 20)
                break;
        }
        int b0 = (step * PB) % NP;
        for (int side = 0; side < 2; side++)
            for (int i = 0; i < PB; i++) {
                memcpy(bid + (side * PB + i) * T, ids + (side * NP + b0 + i) * T, T * sizeof(int32_t));
                memcpy(blab + (side * PB + i) * T, lab + (side * NP + b0 + i) * T, T * sizeof(int32_t));
                bpid[i] = pid[b0 + i];
            }
        lt_pref_batch b = {PB, T, bid, blab, bpid};
        lt_pref_stats st;
        bool skipped = false;
        double gn = 0;
        if (lt_pref_forward_backward(p, &b, 1.0f, &st, err, sizeof(err)) != LT_MODEL_OK ||
            lt_trainer_step(t, lr, 1.0f, &gn, &skipped, err, sizeof(err)) != LT_MODEL_OK) {
            CHECK(0, "%s step %d: %s", label, step, err);
            break;
        }
        steps = step + 1;
    }
    printf(" (%d steps)\n", steps);
    CHECK(acc > 0.9, "%s: reward accuracy %.2f after %d steps", label, acc, steps);
    lt_pref_free(p);
    lt_trainer_free(t);
    lt_model_free(m);
}

int main(void)
{
    lt_device *cpu = lt_device_open("cpu", 2, err, sizeof(err));
    CHECK(cpu != NULL, "cpu device: %s", err);
    if (!cpu)
        return test_summary();
    test_against_torch(cpu);
    test_accuracy_rises(cpu, LT_PREF_DPO, LT_METHOD_LORA, 2e-3f, "dpo lora ");
    test_accuracy_rises(cpu, LT_PREF_DPO, LT_METHOD_FULL, 2e-4f, "dpo full ");
    test_accuracy_rises(cpu, LT_PREF_DPO_IPO, LT_METHOD_LORA, 2e-3f, "ipo lora ");
    test_accuracy_rises(cpu, LT_PREF_ORPO, LT_METHOD_LORA, 2e-3f, "orpo lora");
    lt_device_close(cpu);
    return test_summary();
}
