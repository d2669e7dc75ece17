/*
 * test_train_chunks.c - the chunked output layer and loss: a trainer whose logits come a few
 * rows at a time (logits_chunk 3 and 5 over 16 rows, so chunks end mid-row and the last one
 * is short) gives the loss, the evaluation loss and every gradient of a trainer with one chunk
 * (today's whole-batch path) within 1e-6 relative on the CPU backend, for full fine-tuning
 * with an untied lm_head (llama, GQA), with tied embeddings (gpt2: the head's gradient lands
 * in the embedding table) and for LoRA (only dL/dhf flows); DPO and ORPO losses and gradients
 * likewise; the workspace never allocates [tokens x vocab] logits (the device's peak memory
 * drops by at least the logits' size); bad chunk sizes are refused. On a Vulkan device
 * (lavapipe; not in the sanitizer build) the chunked run matches its one-chunk run within
 * 1e-5 and the CPU backend within 1e-3.
 */
#include "test.h"
#include "train/pref.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

enum { B = 2, T = 8, N = B * T };

/* max|a - b| / max|b| */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double d = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        d = e > d || isnan(e) ? e : d;
        mb = fabs((double)b[i]) > mb ? fabs((double)b[i]) : mb;
    }
    return d / (mb > 1e-30 ? mb : 1e-30);
}

typedef struct result {
    double loss, eval, pref_loss;
    float *g; /* every gradient, concatenated */
    int64_t n;
    size_t peak; /* device peak bytes after the trainer was made and ran */
} result;

static void batch(int32_t *ids, int32_t *lab, int64_t V)
{
    for (int i = 0; i < N; i++) {
        ids[i] = (i * 37 + 5) % (int32_t)V;
        lab[i] = i % 5 == 3 ? -100 : (i * 11 + 7) % (int32_t)V;
    }
}

/* Downloads every gradient of t into r. */
static bool take_grads(lt_trainer *t, result *r)
{
    free(r->g);
    r->n = 0;
    for (int i = 0; i < lt_trainer_n_state(t); i++)
        r->n += lt_tensor_numel(lt_trainer_grad(t, i));
    r->g = malloc((size_t)r->n * sizeof(float));
    bool ok = r->g != NULL;
    for (int i = 0, off = 0; ok && i < lt_trainer_n_state(t); i++) {
        lt_tensor *g = lt_trainer_grad(t, i);
        ok = lt_tensor_download_f32(g, r->g + off, lt_tensor_numel(g)) == LT_OK;
        off += (int)lt_tensor_numel(g);
    }
    return ok;
}

/* One forward+backward (train), an eval, and (with pref) one ORPO or DPO step's gradients
 * added on top, on a fresh model and trainer with logits_chunk rows. */
static bool run(lt_device *dev, const char *model, lt_train_method method, int64_t chunk, int pref,
                result *r)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/models/%s", LATHE_TEST_DATA, model);
    lt_model *m = NULL;
    lt_trainer *t = NULL;
    lt_pref *p = NULL;
    bool ok = false;
    memset(r, 0, sizeof(*r));
    if (lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) != LT_MODEL_OK)
        goto out;
    const int64_t V = lt_model_get_config(m)->vocab;
    lt_trainer_opts o = {.method = method,
                         .lora = {.r = 4,
                                  .alpha = 8.0f,
                                  .targets = lt_lora_all_linear(lt_model_get_config(m)->arch),
                                  .seed = 9},
                         .beta1 = 0.9f,
                         .beta2 = 0.999f,
                         .eps = 1e-8f,
                         .max_batch = B,
                         .max_seq = T,
                         .logits_chunk = chunk};
    if (lt_trainer_new(m, &o, &t, err, sizeof(err)) != LT_MODEL_OK)
        goto out;
    /* LoRA: B = 0 at init gives A no gradient; make B non-zero */
    for (int i = 0; method == LT_METHOD_LORA && i < lt_trainer_n_state(t); i++) {
        const lt_trainer_state *s = lt_trainer_state_at(t, i);
        if (strstr(s->name, "lora_B"))
            lt_fill(s->param, 0.03f);
    }
    int32_t ids[N], lab[N];
    batch(ids, lab, V);
    lt_batch b = {.B = B, .T = T, .ids = ids, .labels = lab};
    int64_t cnt = 0;
    if (lt_trainer_forward_backward(t, &b, 0, 1.0f, &r->loss, NULL, err, sizeof(err)) ||
        lt_trainer_eval(t, &b, &r->eval, &cnt, err, sizeof(err)))
        goto out;
    if (pref) {
        /* one pair: row 0 chosen, row 1 rejected, the response from position 3 on */
        int32_t plab[N];
        for (int i = 0; i < N; i++)
            plab[i] = i % T < 3 ? -100 : (i * 11 + 7) % (int32_t)V;
        int64_t pid = 1;
        lt_pref_batch pb = {.P = 1, .T = T, .ids = ids, .labels = plab, .pair_ids = &pid};
        lt_pref_opts po = {.kind = pref == 1 ? LT_PREF_ORPO : LT_PREF_DPO, .beta = 0.5f};
        lt_pref_stats ps;
        if (lt_pref_new(t, &po, &p, err, sizeof(err)) ||
            lt_pref_forward_backward(p, &pb, 1.0f, &ps, err, sizeof(err)))
            goto out;
        r->pref_loss = ps.loss;
    }
    ok = take_grads(t, r);
    r->peak = lt_device_mem_peak(dev);
out:
    CHECK(ok, "%s chunk %lld: %s", model, (long long)chunk, err);
    lt_pref_free(p);
    lt_trainer_free(t);
    lt_model_free(m);
    return ok;
}

static void compare(const char *what, const result *a, const result *ref, double tol)
{
    double el = fabs(a->loss - ref->loss) / fabs(ref->loss),
           ee = fabs(a->eval - ref->eval) / fabs(ref->eval);
    double ep =
        ref->pref_loss != 0 ? fabs(a->pref_loss - ref->pref_loss) / fabs(ref->pref_loss) : 0;
    double eg = a->n == ref->n ? rel_err(a->g, ref->g, a->n) : INFINITY;
    CHECK(el <= tol && ee <= tol && ep <= tol && eg <= tol,
          "%s: loss %.9g vs %.9g, eval %.9g vs %.9g, pref %.9g vs %.9g, gradients %.3g "
          "relative (tolerance %.0e)",
          what, a->loss, ref->loss, a->eval, ref->eval, a->pref_loss, ref->pref_loss, eg, tol);
    printf("%-34s loss %.3g eval %.3g pref %.3g gradients %.3g relative\n", what, el, ee, ep, eg);
}

static void case_on(lt_device *dev, const char *devname, const char *model, lt_train_method method,
                    int pref, double tol, result *one_out)
{
    result one, c3, c5;
    char what[160];
    if (!run(dev, model, method, N, pref, &one))
        return;
    static const char *mn[] = {"full", "freeze", "lora"};
    static const char *pn[] = {"", " +orpo", " +dpo"};
    if (run(dev, model, method, 3, pref, &c3)) {
        snprintf(what, sizeof(what), "%s %s %s%s chunk 3", devname, model, mn[method], pn[pref]);
        compare(what, &c3, &one, tol);
    }
    if (run(dev, model, method, 5, pref, &c5)) {
        snprintf(what, sizeof(what), "%s %s %s%s chunk 5", devname, model, mn[method], pn[pref]);
        compare(what, &c5, &one, tol);
    }
    free(c3.g);
    free(c5.g);
    if (one_out)
        *one_out = one;
    else
        free(one.g);
}

/* The workspace holds one chunk of logits, not [N, V]: the peak of a chunked trainer is below
 * the one-chunk trainer's by at least (N - chunk) x V floats. */
static void test_memory(void)
{
    lt_device *d1 = lt_device_open("cpu", 1, err, sizeof(err)),
              *d2 = lt_device_open("cpu", 1, err, sizeof(err));
    result a, b;
    if (d1 && d2 && run(d1, "llama_gqa", LT_METHOD_LORA, N, 0, &a) &&
        run(d2, "llama_gqa", LT_METHOD_LORA, 2, 0, &b)) {
        int64_t V = 128, saved = (N - 2) * V * 4;
        CHECK(a.peak >= b.peak + (size_t)saved,
              "one-chunk peak %zu, chunk-2 peak %zu: expected at least %lld bytes saved", a.peak,
              b.peak, (long long)saved);
        printf("device peak: one chunk %zu bytes, chunks of 2 rows %zu bytes\n", a.peak, b.peak);
        free(a.g);
        free(b.g);
    }
    lt_device_close(d1);
    lt_device_close(d2);
}

static void test_bad_chunk(lt_device *dev)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/models/llama_gqa", LATHE_TEST_DATA);
    lt_model *m = NULL;
    lt_trainer *t = NULL;
    if (lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) != LT_MODEL_OK)
        return;
    lt_trainer_opts o = {
        .method = LT_METHOD_FULL, .max_batch = 1, .max_seq = 4, .logits_chunk = -1};
    CHECK(lt_trainer_new(m, &o, &t, err, sizeof(err)) == LT_MODEL_ERR_ARG &&
              strstr(err, "logits_chunk"),
          "logits_chunk -1: %s", err);
    lt_trainer_free(t);
    lt_forward *f = NULL;
    lt_forward_opts fo = {
        .max_batch = 1, .max_seq = 4, .last_logits_only = true, .logits_chunk = 2};
    CHECK(lt_forward_new(m, &fo, &f, err, sizeof(err)) == LT_MODEL_ERR_ARG,
          "logits_chunk with last_logits_only accepted");
    lt_forward_free(f);
    fo.last_logits_only = false;
    lt_tensor *lg = NULL;
    int32_t ids[4] = {1, 2, 3, 4};
    if (lt_forward_new(m, &fo, &f, err, sizeof(err)) == LT_MODEL_OK &&
        lt_forward_run(f, ids, 1, 4, NULL, &lg, err, sizeof(err)) == LT_MODEL_OK) {
        CHECK(lg == NULL, "a chunked workspace's run returned logits");
        CHECK(lt_forward_logits(f, 0, 3, &lg, err, sizeof(err)) == LT_MODEL_ERR_ARG,
              "3 rows in chunks of 2 accepted");
        CHECK(lt_forward_logits(f, 3, 2, &lg, err, sizeof(err)) == LT_MODEL_ERR_ARG,
              "rows past the run accepted");
        CHECK(lt_forward_logits(f, 2, 2, &lg, err, sizeof(err)) == LT_MODEL_OK && lg &&
                  lt_tensor_dim(lg, 0) == 2,
              "the last chunk: %s", err);
    }
    lt_forward_free(f);
    CHECK(lt_logits_chunk_rows(128256, 1 << 20) == 130 && lt_logits_chunk_rows(128, 16) == 16 &&
              lt_logits_chunk_rows(1 << 30, 16) == 1,
          "chunk rows %lld, %lld, %lld", (long long)lt_logits_chunk_rows(128256, 1 << 20),
          (long long)lt_logits_chunk_rows(128, 16), (long long)lt_logits_chunk_rows(1 << 30, 16));
    lt_model_free(m);
}

int main(void)
{
    lt_device *cpu = lt_device_open("cpu", 2, err, sizeof(err));
    CHECK(cpu != NULL, "cpu: %s", err);
    if (!cpu)
        return test_summary();
    result ref_full, ref_lora;
    memset(&ref_full, 0, sizeof ref_full);
    memset(&ref_lora, 0, sizeof ref_lora);
    case_on(cpu, "cpu", "llama_gqa", LT_METHOD_FULL, 0, 1e-6, &ref_full);
    case_on(cpu, "cpu", "gpt2", LT_METHOD_FULL, 0, 1e-6, NULL);
    case_on(cpu, "cpu", "llama_gqa", LT_METHOD_LORA, 1, 1e-6, &ref_lora);
    case_on(cpu, "cpu", "gpt2", LT_METHOD_LORA, 2, 1e-6, NULL);
    case_on(cpu, "cpu", "llama_tied", LT_METHOD_FULL, 2, 1e-6, NULL);
    test_bad_chunk(cpu);
    test_memory();

    bool no_vk = getenv("LATHE_TEST_NO_VULKAN") != NULL;
#ifdef __SANITIZE_ADDRESS__
    no_vk = true; /* lavapipe leaks inside the driver at close */
#endif
    lt_device *vk = no_vk ? NULL : lt_device_open("vulkan:0", 0, err, sizeof(err));
    if (!vk) {
        SKIP("no Vulkan device (%s): chunked loss on Vulkan not checked", no_vk ? "disabled" : err);
    } else {
        result vf, vl;
        memset(&vf, 0, sizeof vf);
        memset(&vl, 0, sizeof vl);
        case_on(vk, "vulkan", "llama_gqa", LT_METHOD_FULL, 0, 1e-5, &vf);
        case_on(vk, "vulkan", "llama_gqa", LT_METHOD_LORA, 1, 1e-5, &vl);
        if (vf.g && ref_full.g)
            compare("vulkan vs cpu llama_gqa full", &vf, &ref_full, 1e-3);
        if (vl.g && ref_lora.g)
            compare("vulkan vs cpu llama_gqa lora +orpo", &vl, &ref_lora, 1e-3);
        free(vf.g);
        free(vl.g);
        lt_device_close(vk);
    }
    free(ref_full.g);
    free(ref_lora.g);
    lt_device_close(cpu);
    return test_summary();
}
