/*
 * test_train_export.c - adapters and merged folders: PyTorch's own LoRA adapters (written by
 * the reference tool, tests/data/train) loaded into lathe give the reference's logits; an
 * adapter lathe trained, written as a PEFT folder and loaded back into a fresh model, gives
 * the logits of the model it was trained on; merging it into a Hugging Face folder gives the
 * same logits without the adapter; a fully trained BF16 model is written back in BF16 with its
 * tokenizer files; bad adapter folders are refused with messages.
 */
#include "export/merged.h"
#include "export/peft.h"
#include "model/forward.h"
#include "model/safetensors.h"
#include "test.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[1024];
static char tmpdir[256];

static lt_model *load(lt_device *dev, const char *dir)
{
    lt_model *m = NULL;
    CHECK(lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) == LT_MODEL_OK,
          "%s: %s", dir, err);
    return m;
}

/* Logits of m on ids [B, T] (malloc'd, caller frees). */
static float *logits_of(lt_model *m, const int32_t *ids, int64_t B, int64_t T)
{
    lt_forward *f = NULL;
    lt_forward_opts fo = {.max_batch = B, .max_seq = T};
    lt_tensor *lg = NULL;
    float *h = NULL;
    int64_t n = B * T * lt_model_get_config(m)->vocab;
    if (lt_forward_new(m, &fo, &f, err, sizeof(err)) == LT_MODEL_OK &&
        lt_forward_run(f, ids, B, T, NULL, &lg, err, sizeof(err)) == LT_MODEL_OK) {
        h = malloc((size_t)n * sizeof(float));
        if (h && lt_tensor_download_f32(lg, h, n) != LT_OK) {
            free(h);
            h = NULL;
        }
    }
    CHECK(h != NULL, "forward: %s", err);
    lt_forward_free(f);
    return h;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        d = e > d || isnan(e) ? e : d;
    }
    return a && b ? d : INFINITY;
}

static void rm_dir(const char *dir)
{
    static const char *names[] = {"adapter_config.json", "adapter_model.safetensors",
                                  "config.json",         "model.safetensors",
                                  "tokenizer.json",      "tokenizer_config.json"};
    char p[600];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* The reference tool's adapter, loaded into lathe, gives the reference's logits. */
static void reference_adapter(lt_device *dev, const char *model, const char *ref)
{
    char dir[512], adir[512], refp[512];
    snprintf(dir, sizeof(dir), "%s/models/%s", LATHE_TEST_DATA, model);
    snprintf(adir, sizeof(adir), "%s/train/%s_adapter", LATHE_TEST_DATA, ref);
    snprintf(refp, sizeof(refp), "%s/train/%s.safetensors", LATHE_TEST_DATA, ref);
    lt_model *m = load(dev, dir);
    lt_st_file *rf = NULL;
    lt_lora_adapter *a = NULL;
    CHECK(lt_st_open(refp, &rf, err, sizeof(err)) == LT_ST_OK, "%s", err);
    CHECK(m && lt_peft_load(m, adir, &a, err, sizeof(err)) == LT_MODEL_OK, "%s: %s", adir, err);
    if (m && rf && a) {
        const lt_st_tensor *ids = lt_st_find(rf, "input_ids"), *want = lt_st_find(rf, "logits");
        CHECK(lt_peft_attach(m, a, err, sizeof(err)) == LT_MODEL_OK, "attach: %s", err);
        float *got = ids ? logits_of(m, ids->data, ids->shape[0], ids->shape[1]) : NULL;
        double d = got && want ? max_diff(got, want->data, want->numel) : INFINITY;
        CHECK(d <= 1e-4, "%s: logits with the reference's adapter differ by %.3g", ref, d);
        printf("%-10s reference PEFT adapter in lathe: logits max abs error %.3g\n", ref, d);
        /* detached, the base model's logits differ from the adapted ones */
        lt_peft_attach(m, NULL, err, sizeof(err));
        float *base = ids ? logits_of(m, ids->data, ids->shape[0], ids->shape[1]) : NULL;
        CHECK(base && want && max_diff(base, want->data, want->numel) > 1e-3,
              "%s: the adapter changed nothing", ref);
        free(got);
        free(base);
    }
    lt_peft_free(a);
    lt_st_close(rf);
    lt_model_free(m);
}

/* Train a few LoRA steps, write PEFT, load into a fresh model; merge into a folder. */
static void roundtrip(lt_device *dev, const char *model, uint32_t targets, bool fan_in_fan_out)
{
    char dir[512], adir[300], mdir[300];
    snprintf(dir, sizeof(dir), "%s/models/%s", LATHE_TEST_DATA, model);
    snprintf(adir, sizeof(adir), "%s/adapter_%s", tmpdir, model);
    snprintf(mdir, sizeof(mdir), "%s/merged_%s", tmpdir, model);
    lt_model *m = load(dev, dir), *m2 = NULL, *m3 = NULL;
    lt_trainer *t = NULL;
    lt_lora_adapter *a = NULL;
    float *l1 = NULL, *l2 = NULL, *l3 = NULL;
    int32_t ids[16], lab[16];
    for (int i = 0; i < 16; i++)
        ids[i] = (i * 29 + 3) % 128, lab[i] = (i * 29 + 32) % 128;
    lt_trainer_opts o = {.method = LT_METHOD_LORA,
                         .lora = {.r = 4, .alpha = 16, .targets = targets, .seed = 9},
                         .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                         .max_batch = 2, .max_seq = 8};
    CHECK(m && lt_trainer_new(m, &o, &t, err, sizeof(err)) == LT_MODEL_OK, "trainer: %s", err);
    if (!t)
        goto out;
    lt_batch b = {2, 8, ids, lab, NULL, NULL};
    for (int s = 0; s < 3; s++)
        CHECK(lt_trainer_forward_backward(t, &b, 0, 1, NULL, NULL, err, sizeof(err)) == 0 &&
                  lt_trainer_step(t, 1e-2f, 1.0f, NULL, NULL, err, sizeof(err)) == 0,
              "train: %s", err);
    l1 = logits_of(m, ids, 2, 8); /* the trainer's adapter is attached */
    CHECK(lt_peft_write(t, adir, dir, err, sizeof(err)) == LT_MODEL_OK, "write: %s", err);
    char cp[400];
    snprintf(cp, sizeof(cp), "%s/adapter_config.json", adir);
    size_t len = 0;
    FILE *cf = fopen(cp, "rb");
    char text[4096] = {0};
    if (cf) {
        len = fread(text, 1, sizeof(text) - 1, cf);
        fclose(cf);
    }
    CHECK(len > 0 && strstr(text, "\"peft_type\":\t\"LORA\"") &&
              strstr(text, fan_in_fan_out ? "\"fan_in_fan_out\":\ttrue"
                                          : "\"fan_in_fan_out\":\tfalse"),
          "%s: adapter_config.json: %s", model, text);
    m2 = load(dev, dir);
    CHECK(m2 && lt_peft_load(m2, adir, &a, err, sizeof(err)) == LT_MODEL_OK, "load: %s", err);
    if (a && lt_peft_attach(m2, a, err, sizeof(err)) == LT_MODEL_OK)
        l2 = logits_of(m2, ids, 2, 8);
    double d = max_diff(l1, l2, 16 * 128);
    CHECK(d <= 1e-6, "%s: written and re-loaded adapter: logits differ by %.3g", model, d);
    printf("%-10s lathe adapter -> PEFT folder -> lathe: logits max abs difference %.3g\n", model,
           d);
    CHECK(lt_export_merged(m, lt_trainer_lora(t), dir, mdir, false, err, sizeof(err)) == LT_MODEL_OK,
          "merge: %s", err);
    m3 = load(dev, mdir);
    l3 = m3 ? logits_of(m3, ids, 2, 8) : NULL;
    d = max_diff(l1, l3, 16 * 128);
    CHECK(d <= 1e-4, "%s: merged folder logits differ from base+adapter by %.3g", model, d);
    printf("%-10s merged folder vs base + adapter: logits max abs difference %.3g\n", model, d);
out:
    free(l1);
    free(l2);
    free(l3);
    if (m2)
        lt_peft_attach(m2, NULL, err, sizeof(err));
    lt_peft_free(a);
    lt_trainer_free(t);
    lt_model_free(m3);
    lt_model_free(m2);
    lt_model_free(m);
    rm_dir(adir);
    rm_dir(mdir);
}

/* Full fine-tuning of a BF16 model: the merged folder keeps BF16 and the tokenizer files. */
static void full_bf16(lt_device *dev)
{
    char src[300], dir[512], out[300], p[400];
    snprintf(dir, sizeof(dir), "%s/models/llama_tied", LATHE_TEST_DATA);
    snprintf(src, sizeof(src), "%s/src_bf16", tmpdir);
    snprintf(out, sizeof(out), "%s/merged_bf16", tmpdir);
    /* a source folder with tokenizer files beside the weights */
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s/config.json' '%s/model.safetensors' '%s/'"
             " && printf '{\"model\":{}}' > '%s/tokenizer.json'"
             " && printf '{}' > '%s/tokenizer_config.json'",
             src, dir, dir, src, src, src);
    CHECK(system(cmd) == 0, "cannot prepare %s", src);
    lt_model *m = load(dev, src), *m2 = NULL;
    lt_trainer *t = NULL;
    lt_st_file *f = NULL;
    float *l1 = NULL, *l2 = NULL;
    int32_t ids[8] = {1, 5, 9, 13, 17, 21, 25, 29}, lab[8] = {5, 9, 13, 17, 21, 25, 29, 33};
    lt_trainer_opts o = {.method = LT_METHOD_FULL, .beta1 = 0.9f, .beta2 = 0.999f,
                         .eps = 1e-8f, .max_batch = 1, .max_seq = 8};
    CHECK(m && lt_trainer_new(m, &o, &t, err, sizeof(err)) == 0, "trainer: %s", err);
    if (!t)
        goto out;
    const lt_trainer_state *s0 = lt_trainer_state_at(t, 0);
    CHECK(lt_tensor_dtype(s0->param) == LT_F32, "the master copy of a BF16 weight is F32");
    lt_batch b = {1, 8, ids, lab, NULL, NULL};
    double first = 0, last = 0;
    for (int s = 0; s < 5; s++) {
        CHECK(lt_trainer_forward_backward(t, &b, 0, 1, s ? &last : &first, NULL, err,
                                          sizeof(err)) == 0 &&
                  lt_trainer_step(t, 1e-2f, 1.0f, NULL, NULL, err, sizeof(err)) == 0,
              "train: %s", err);
    }
    CHECK(last < first, "bf16 full fine-tuning: loss %.4f -> %.4f does not fall", first, last);
    l1 = logits_of(m, ids, 1, 8);
    CHECK(lt_export_merged(m, NULL, src, out, false, err, sizeof(err)) == LT_MODEL_OK, "export: %s",
          err);
    snprintf(p, sizeof(p), "%s/model.safetensors", out);
    CHECK(lt_st_open(p, &f, err, sizeof(err)) == LT_ST_OK, "%s", err);
    const lt_st_tensor *emb = f ? lt_st_find(f, "model.embed_tokens.weight") : NULL;
    CHECK(emb && emb->dtype == LT_ST_BF16, "merged embeddings are not BF16");
    snprintf(p, sizeof(p), "%s/tokenizer.json", out);
    CHECK(access(p, R_OK) == 0, "tokenizer.json not copied");
    m2 = load(dev, out);
    l2 = m2 ? logits_of(m2, ids, 1, 8) : NULL;
    double d = max_diff(l1, l2, 8 * 128);
    /* norm weights train in F32 and are rounded to BF16 on export */
    CHECK(d <= 5e-2, "bf16 merged folder: logits differ by %.3g", d);
    printf("llama_tied full BF16 (fp32 masters): loss %.4f -> %.4f; exported BF16 folder logits "
           "within %.3g\n", first, last, d);
out:
    free(l1);
    free(l2);
    lt_st_close(f);
    lt_trainer_free(t);
    lt_model_free(m2);
    lt_model_free(m);
    rm_dir(out);
    rm_dir(src);
}

static void bad_adapters(lt_device *dev)
{
    char dir[512], bad[300], p[400];
    snprintf(dir, sizeof(dir), "%s/models/llama_gqa", LATHE_TEST_DATA);
    snprintf(bad, sizeof(bad), "%s/bad", tmpdir);
    lt_model *m = load(dev, dir);
    lt_lora_adapter *a = NULL;
    if (!m)
        return;
    CHECK(lt_peft_load(m, bad, &a, err, sizeof(err)) == LT_MODEL_ERR_IO && !a &&
              strstr(err, "adapter_config.json"),
          "missing folder: %s", err);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s/train/llama_lora_adapter/"
             "adapter_model.safetensors' '%s/'", bad, LATHE_TEST_DATA, bad);
    CHECK(system(cmd) == 0, "prepare %s", bad);
    snprintf(p, sizeof(p), "%s/adapter_config.json", bad);
    const char *cfgs[] = {"{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16}",
                          "{\"peft_type\": \"LORA\", \"r\": 4, \"use_dora\": true}",
                          "{\"peft_type\": \"PREFIX_TUNING\", \"r\": 4}", "[1, 2",
                          "{\"r\": -3}"};
    const char *want[] = {"expected a float", "DoRA", "LORA", "JSON", "positive"};
    for (int i = 0; i < 5; i++) {
        FILE *f = fopen(p, "w");
        if (f) {
            fputs(cfgs[i], f);
            fclose(f);
        }
        lt_model_status st = lt_peft_load(m, bad, &a, err, sizeof(err));
        CHECK(st != LT_MODEL_OK && !a && strstr(err, want[i]), "bad config %d: %s", i, err);
    }
    /* an adapter for another architecture's modules */
    snprintf(cmd, sizeof(cmd), "cp '%s/train/gpt2_lora_adapter/adapter_model.safetensors' "
             "'%s/' && printf '{\"r\": 4}' > '%s'", LATHE_TEST_DATA, bad, p);
    CHECK(system(cmd) == 0, "prepare %s", bad);
    CHECK(lt_peft_load(m, bad, &a, err, sizeof(err)) == LT_MODEL_ERR_TENSOR && !a &&
              strstr(err, "transformer.h.0"),
          "gpt2 adapter on a llama: %s", err);
    lt_model_free(m);
    rm_dir(bad);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/lathe_export_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");
    lt_device *dev = lt_device_open("cpu", 2, err, sizeof(err));
    CHECK(dev != NULL, "cpu: %s", err);
    if (!dev)
        return test_summary();
    reference_adapter(dev, "llama_gqa", "llama_lora");
    reference_adapter(dev, "gpt2", "gpt2_lora");
    roundtrip(dev, "llama_gqa",
              LT_LORA_Q | LT_LORA_K | LT_LORA_V | LT_LORA_O | LT_LORA_GATE | LT_LORA_UP |
                  LT_LORA_DOWN,
              false);
    roundtrip(dev, "gpt2", LT_LORA_ATTN | LT_LORA_O | LT_LORA_UP | LT_LORA_DOWN, true);
    full_bf16(dev);
    bad_adapters(dev);
    lt_device_close(dev);
    rmdir(tmpdir);
    return test_summary();
}
