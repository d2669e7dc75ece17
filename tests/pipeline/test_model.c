/*
 * test_model.c - config.json parsing (every family, both rope_theta forms, eos as a list),
 * clear errors for bad folders (missing or mis-shaped tensor, unknown dtype, truncated file,
 * unsupported architecture), random init that loads back, inspection counts, and sampling.
 */
#include "model/forward.h"
#include "model/generate.h"
#include "model/model_init.h"
#include "model/safetensors.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[1024];
static char tmpdir[] = "/tmp/lathe_model_XXXXXX";

static lt_model_status parse(const char *json, lt_model_config *c)
{
    err[0] = 0;
    return lt_model_config_parse(json, strlen(json), "config.json", c, err, sizeof(err));
}

static void test_config(void)
{
    lt_model_config c;
    lt_model_status st = parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":"
                               "128,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                               "\"vocab_size\":100,\"eos_token_id\":[2,7],\"bos_token_id\":1}",
                               &c);
    CHECK(st == LT_MODEL_OK, "llama: %s", err);
    CHECK(c.n_kv_heads == 4 && c.head_dim == 16 && fabs(c.rope_theta - 10000) < 1e-9 &&
              fabsf(c.norm_eps - 1e-6f) < 1e-12f && !c.tie_embeddings && !c.qkv_bias,
          "llama defaults");
    CHECK(c.n_eos == 2 && c.eos_ids[1] == 7 && lt_model_config_is_eos(&c, 7) && c.bos_id == 1,
          "eos list");
    st = parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
               "\"head_dim\":32,\"vocab_size\":100,\"rope_parameters\":{\"rope_theta\":500000.0,"
               "\"rope_type\":\"default\"},\"tie_word_embeddings\":true,\"eos_token_id\":5}",
               &c);
    CHECK(st == LT_MODEL_OK && c.rope_theta == 500000.0 && c.head_dim == 32 &&
              c.n_kv_heads == 2 && c.tie_embeddings && c.n_eos == 1 && c.eos_ids[0] == 5,
          "rope_parameters form, head_dim, kv heads: %s", err);
    st = parse("{\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
               "\"vocab_size\":100,\"rope_theta\":1000000.0}",
               &c);
    CHECK(st == LT_MODEL_OK && c.arch == LT_ARCH_QWEN2 && c.qkv_bias && !c.o_bias &&
              c.rope_theta == 1e6,
          "qwen2 biases: %s", err);
    st = parse("{\"model_type\":\"mistral\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"vocab_size\":10}",
               &c);
    CHECK(st == LT_MODEL_OK && c.sliding_window == 4096, "mistral default window: %s", err);
    st = parse("{\"model_type\":\"mistral\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"vocab_size\":10,"
               "\"sliding_window\":null}",
               &c);
    CHECK(st == LT_MODEL_OK && c.sliding_window == 0, "mistral null window");
    st = parse("{\"model_type\":\"gpt2\",\"n_embd\":48,\"n_layer\":3,\"n_head\":4,"
               "\"n_inner\":null,\"n_positions\":128,\"vocab_size\":500}",
               &c);
    CHECK(st == LT_MODEL_OK && c.ffn == 192 && c.tie_embeddings && c.head_dim == 12 &&
              c.qkv_bias && c.mlp_bias && fabsf(c.norm_eps - 1e-5f) < 1e-12f,
          "gpt2 fields: %s", err);
    st = parse("{\"model_type\":\"falcon\",\"hidden_size\":64}", &c);
    CHECK(st == LT_MODEL_ERR_UNSUPPORTED && strstr(err, "falcon"), "unsupported arch: %s", err);
    st = parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,"
               "\"num_attention_heads\":4,\"vocab_size\":100}",
               &c);
    CHECK(st == LT_MODEL_ERR_CONFIG && strstr(err, "intermediate_size"), "missing field: %s",
          err);
    st = parse("{\"model_type\":\"llama\",\"hidden_size\":\"64\",\"intermediate_size\":1,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100}",
               &c);
    CHECK(st == LT_MODEL_ERR_CONFIG && strstr(err, "hidden_size"), "string size: %s", err);
    st = parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":3,"
               "\"vocab_size\":100}",
               &c);
    CHECK(st == LT_MODEL_ERR_CONFIG && strstr(err, "num_key_value_heads"), "kv heads: %s", err);
    st = parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,"
               "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}}",
               &c);
    CHECK(st == LT_MODEL_ERR_CONFIG && strstr(err, "low_freq_factor"), "llama3 incomplete: %s",
          err);
    st = parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,"
               "\"rope_scaling\":{\"type\":\"longrope\",\"factor\":8.0}}",
               &c);
    CHECK(st == LT_MODEL_ERR_UNSUPPORTED &&
              strstr(err, "type 'longrope' is not supported; supported: default, linear, llama3, "
                          "yarn"),
          "rope_scaling longrope: %s", err);
    st = parse("not json", &c);
    CHECK(st == LT_MODEL_ERR_FORMAT, "not json");
    /* to_json round trip */
    parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
          "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"vocab_size\":100,\"eos_token_id\":[2,7]}",
          &c);
    char *j = lt_model_config_to_json(&c);
    lt_model_config c2;
    CHECK(j && parse(j, &c2) == LT_MODEL_OK && c2.n_kv_heads == 2 && c2.n_eos == 2 &&
              c2.ffn == 128,
          "config json round trip: %s", err);
    free(j);
}

/* Writes dir/model.safetensors as a copy of src's with one tensor dropped, reshaped or
 * retyped. */
/* llama3 and yarn frequencies against the bands transformers' formulas give for the
 * published configs (Llama-3.1: head_dim 128, theta 5e5, 8/1/4/8192; Qwen2.5 YaRN: theta 1e6,
 * factor 4, original 32768), the round trip through to_json, and qwen2's window layers. */
static void test_rope_scaling(void)
{
    lt_model_config c, c2;
    float inv[64], plain[64], ms = 0;
    lt_model_status st =
        parse("{\"model_type\":\"llama\",\"hidden_size\":4096,\"intermediate_size\":128,"
              "\"num_hidden_layers\":2,\"num_attention_heads\":32,\"vocab_size\":100,"
              "\"rope_theta\":500000.0,\"rope_scaling\":{\"rope_type\":\"llama3\","
              "\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
              "\"original_max_position_embeddings\":8192}}",
              &c);
    CHECK(st == LT_MODEL_OK && c.rope_scaling.type == LT_ROPE_LLAMA3 && c.head_dim == 128,
          "llama3 config: %s", err);
    lt_model_rope_freqs(&c, inv, &ms);
    lt_rope_inv_freq(plain, 128, 500000.0f);
    int kept = 0, blended = 0, divided = 0;
    for (int i = 0; i < 64; i++) {
        if (inv[i] == plain[i])
            kept += i <= 28;
        else if (inv[i] == plain[i] / 8.0f)
            divided += i >= 35;
        else if (inv[i] < plain[i] && inv[i] > plain[i] / 8.0f)
            blended += i >= 29 && i <= 34;
    }
    CHECK(kept == 29 && blended == 6 && divided == 29 && ms == 1.0f,
          "llama3 bands: kept %d blended %d divided %d mscale %g", kept, blended, divided, ms);
    char *j = lt_model_config_to_json(&c);
    CHECK(j && parse(j, &c2) == LT_MODEL_OK && c2.rope_scaling.type == LT_ROPE_LLAMA3 &&
              c2.rope_scaling.factor == 8.0 && c2.rope_scaling.high_freq_factor == 4.0 &&
              c2.rope_scaling.original_max_pos == 8192,
          "llama3 round trip: %s", err);
    free(j);

    /* transformers 5 form: rope_parameters holds the theta and the scaling */
    st = parse("{\"model_type\":\"qwen2\",\"hidden_size\":1024,\"intermediate_size\":128,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"vocab_size\":100,"
               "\"rope_parameters\":{\"rope_theta\":1000000.0,\"rope_type\":\"yarn\","
               "\"factor\":4.0,\"original_max_position_embeddings\":32768}}",
               &c);
    CHECK(st == LT_MODEL_OK && c.rope_scaling.type == LT_ROPE_YARN && c.head_dim == 128 &&
              c.rope_theta == 1e6,
          "yarn config: %s", err);
    lt_model_rope_freqs(&c, inv, &ms);
    lt_rope_inv_freq(plain, 128, 1e6f);
    bool low_kept = true, high_div = true, mid = true;
    for (int i = 0; i < 64; i++) {
        float inter = 1.0f / (4.0f * powf(1e6f, (float)(2 * i) / 128.0f));
        if (i <= 23)
            low_kept = low_kept && inv[i] == plain[i];
        else if (i >= 40)
            high_div = high_div && inv[i] == inter;
        else
            mid = mid && inv[i] < plain[i] && inv[i] > inter;
    }
    CHECK(low_kept && high_div && mid && fabsf(ms - 1.1386294f) < 1e-6f,
          "yarn ramp 23..40: kept %d divided %d blended %d, attention factor %.7f", low_kept,
          high_div, mid, ms);
    j = lt_model_config_to_json(&c);
    float inv2[64], ms2 = 0;
    CHECK(j && parse(j, &c2) == LT_MODEL_OK && c2.rope_scaling.type == LT_ROPE_YARN, "yarn json");
    lt_model_rope_freqs(&c2, inv2, &ms2);
    CHECK(memcmp(inv, inv2, sizeof inv) == 0 && ms == ms2, "yarn round trip keeps frequencies");
    free(j);
    /* mscale / mscale_all_dim give the attention factor their ratio (1 when equal) */
    st = parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,"
               "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":40,\"mscale\":1,"
               "\"mscale_all_dim\":1}}",
               &c);
    lt_model_rope_freqs(&c, inv, &ms);
    CHECK(st == LT_MODEL_OK && ms == 1.0f && c.rope_scaling.original_max_pos == 2048,
          "yarn mscale ratio %g, original %lld: %s", ms, (long long)c.rope_scaling.original_max_pos,
          err);

    st = parse("{\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":128,"
               "\"num_hidden_layers\":4,\"num_attention_heads\":4,\"vocab_size\":100,"
               "\"use_sliding_window\":true,\"sliding_window\":16,\"max_window_layers\":2}",
               &c);
    CHECK(st == LT_MODEL_OK && c.sliding_window == 16 && c.window_from_layer == 2,
          "qwen2 window layers: %s", err);
}

static void mutate(const char *src_dir, const char *dst_dir, const char *victim, int how)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/model.safetensors", src_dir);
    lt_st_file *f = NULL;
    if (lt_st_open(p, &f, err, sizeof(err)) != LT_ST_OK)
        return;
    mkdir(dst_dir, 0755);
    lt_st_writer *w = lt_st_writer_new();
    for (int i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        int64_t shape[8];
        memcpy(shape, t->shape, sizeof(shape));
        lt_st_dtype dt = t->dtype;
        int ndim = t->ndim;
        if (strcmp(t->name, victim) == 0) {
            if (how == 0)
                continue;
            if (how == 1 && ndim == 2) {
                shape[0] = t->shape[1];
                shape[1] = t->shape[0];
            }
            if (how == 2)
                dt = LT_ST_I32;
        }
        lt_st_writer_add(w, t->name, dt, ndim, shape, t->data, (size_t)(t->end - t->begin), err,
                         sizeof(err));
    }
    snprintf(p, sizeof(p), "%s/model.safetensors", dst_dir);
    lt_st_writer_write(w, p, err, sizeof(err));
    lt_st_writer_free(w);
    lt_st_close(f);
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "cp '%s/config.json' '%s/config.json'", src_dir, dst_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cp failed\n");
}

static void test_init_and_errors(lt_device *dev)
{
    char d[600], bad[700];
    lt_model_init_opts o;
    lt_model_init_defaults(&o, LT_ARCH_LLAMA);
    o.dim = 32;
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.vocab = 64;
    o.max_pos = 32;
    o.seed = 3;
    snprintf(d, sizeof(d), "%s/llama", tmpdir);
    lt_model_config cfg;
    lt_model_status st = lt_model_init_random(&o, d, &cfg, err, sizeof(err));
    CHECK(st == LT_MODEL_OK, "init llama: %s", err);
    lt_model_summary s;
    st = lt_model_inspect(d, &s, err, sizeof(err));
    CHECK(st == LT_MODEL_OK, "inspect: %s", err);
    /* embed 64*32, per layer q 32*32 k,v 16*32 o 32*32 mlp 3*32*96, norms 2*32; final 32;
     * lm_head 64*32 */
    int64_t per_layer_attn = 1024 + 512 + 512 + 1024, per_layer_mlp = 3 * 32 * 96;
    CHECK(s.params[LT_PARAM_EMBEDDING] == 2048 && s.params[LT_PARAM_LM_HEAD] == 2048 &&
              s.params[LT_PARAM_ATTENTION] == 2 * per_layer_attn &&
              s.params[LT_PARAM_MLP] == 2 * per_layer_mlp && s.params[LT_PARAM_NORM] == 160,
          "parameter counts by kind");
    CHECK(strcmp(s.dtypes, "F32") == 0 && s.n_ignored == 0, "dtypes %s", s.dtypes);

    lt_model *m = NULL;
    st = lt_model_load(d, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_OK, "load init'd model: %s", err);
    if (m) {
        lt_forward *f = NULL;
        lt_forward_opts fo = {.max_batch = 1, .max_seq = 4};
        lt_tensor *lg = NULL;
        int32_t ids[4] = {1, 2, 3, 63};
        float out[4 * 64];
        st = lt_forward_new(m, &fo, &f, err, sizeof(err));
        if (st == LT_MODEL_OK)
            st = lt_forward_run(f, ids, 1, 4, NULL, &lg, err, sizeof(err));
        CHECK(st == LT_MODEL_OK && lt_tensor_download_f32(lg, out, 256) == LT_OK,
              "forward of init'd model: %s", err);
        bool finite = true, nonzero = false;
        for (int i = 0; i < 256; i++) {
            finite &= isfinite(out[i]) != 0;
            nonzero |= out[i] != 0;
        }
        CHECK(finite && nonzero, "init'd model gives finite, non-zero logits");
        lt_forward_free(f);
        lt_model_free(m);
    }
    /* the same seed writes the same bytes */
    char d2[700], cmd[1600];
    snprintf(d2, sizeof(d2), "%s/llama_again", tmpdir);
    lt_model_init_random(&o, d2, NULL, err, sizeof(err));
    snprintf(cmd, sizeof(cmd), "cmp -s '%s/model.safetensors' '%s/model.safetensors'", d, d2);
    CHECK(system(cmd) == 0, "same seed, same weights");

    /* gpt2 init loads with bf16 storage */
    lt_model_init_defaults(&o, LT_ARCH_GPT2);
    o.dim = 32;
    o.vocab = 50;
    o.save_dtype = LT_BF16;
    snprintf(d2, sizeof(d2), "%s/gpt2", tmpdir);
    st = lt_model_init_random(&o, d2, NULL, err, sizeof(err));
    CHECK(st == LT_MODEL_OK, "init gpt2: %s", err);
    st = lt_model_load(d2, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_OK, "load gpt2 bf16: %s", err);
    if (m) {
        const lt_model_param *p = lt_model_param_at(m, 0);
        CHECK(p && lt_tensor_dtype(p->tensor) == LT_BF16, "bf16 weights stay bf16");
        lt_model_free(m);
    }
    lt_model_init_defaults(&o, LT_ARCH_LLAMA);
    o.dim = 30;
    CHECK(lt_model_init_random(&o, d2, NULL, err, sizeof(err)) == LT_MODEL_ERR_ARG,
          "dim not divisible by heads refused");

    /* bad folders */
    snprintf(bad, sizeof(bad), "%s/missing", tmpdir);
    mutate(d, bad, "model.layers.1.mlp.up_proj.weight", 0);
    st = lt_model_load(bad, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_ERR_TENSOR && strstr(err, "model.layers.1.mlp.up_proj.weight") &&
              strstr(err, "missing") && strstr(err, "[96, 32]"),
          "missing tensor: %s", err);
    snprintf(bad, sizeof(bad), "%s/shape", tmpdir);
    mutate(d, bad, "model.layers.0.self_attn.k_proj.weight", 1);
    st = lt_model_load(bad, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_ERR_TENSOR && strstr(err, "k_proj") && strstr(err, "[32, 16]") &&
              strstr(err, "[16, 32]"),
          "wrong shape: %s", err);
    snprintf(bad, sizeof(bad), "%s/dtype", tmpdir);
    mutate(d, bad, "model.norm.weight", 2);
    st = lt_model_load(bad, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_ERR_TENSOR && strstr(err, "model.norm.weight") && strstr(err, "I32"),
          "integer dtype: %s", err);
    /* truncated weights */
    snprintf(cmd, sizeof(cmd), "truncate -s -100 '%s/model.safetensors'", bad);
    CHECK(system(cmd) == 0, "truncate");
    st = lt_model_load(bad, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_ERR_FORMAT && strstr(err, "model.safetensors"), "truncated: %s", err);
    /* unsupported architecture */
    snprintf(cmd, sizeof(cmd), "sed -i 's/\"llama\"/\"mamba\"/' '%s/config.json'", bad);
    CHECK(system(cmd) == 0, "sed");
    st = lt_model_load(bad, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_ERR_UNSUPPORTED && strstr(err, "mamba"), "unsupported: %s", err);
    st = lt_model_load(tmpdir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err));
    CHECK(st == LT_MODEL_ERR_IO && strstr(err, "config.json"), "no config: %s", err);
    CHECK(m == NULL, "no model on failure");
}

static void test_sampler(void)
{
    float lg[5] = {1.0f, 3.0f, 3.0f, -2.0f, 0.5f};
    lt_sampler s;
    lt_sampler_defaults(&s);
    uint64_t rng = 1;
    CHECK(lt_sample(lg, 5, NULL, 0, &s, &rng) == 1, "greedy ties go to the lowest id");
    float pen[5] = {1.0f, 3.0f, 2.5f, -2.0f, 0.5f};
    int32_t hist[2] = {1, 1};
    s.repetition_penalty = 2.0f;
    CHECK(lt_sample(pen, 5, hist, 2, &s, &rng) == 2 && pen[1] == 1.5f,
          "repetition penalty divides a positive logit once");
    float neg[2] = {-1.0f, -1.5f};
    int32_t h0[1] = {0};
    CHECK(lt_sample(neg, 2, h0, 1, &s, &rng) == 1 && neg[0] == -2.0f,
          "repetition penalty multiplies a negative logit");
    lt_sampler_defaults(&s);
    s.temperature = 1.0f;
    s.top_k = 1;
    float k1[5] = {0.1f, 0.2f, 5.0f, 0.3f, 0.0f};
    CHECK(lt_sample(k1, 5, NULL, 0, &s, &rng) == 2, "top-k 1 is greedy");
    /* same seed, same draws; draws follow the distribution roughly */
    s.top_k = 0;
    int counts[3] = {0};
    uint64_t r1 = 42, r2 = 42;
    bool same = true;
    for (int i = 0; i < 3000; i++) {
        float a[3] = {0.0f, logf(2.0f), logf(7.0f)}, b[3];
        memcpy(b, a, sizeof(a));
        int32_t x = lt_sample(a, 3, NULL, 0, &s, &r1), y = lt_sample(b, 3, NULL, 0, &s, &r2);
        same &= x == y;
        if (x >= 0 && x < 3)
            counts[x]++;
    }
    CHECK(same, "same seed gives the same draws");
    CHECK(counts[0] > 200 && counts[0] < 400 && counts[2] > 1950 && counts[2] < 2250,
          "draws follow softmax (1:2:7): %d %d %d", counts[0], counts[1], counts[2]);
    /* top-p 0.75 over probabilities .7 .2 .1 keeps the first two */
    s.top_p = 0.75f;
    bool only_two = true;
    for (int i = 0; i < 500; i++) {
        float a[3] = {0.0f, logf(2.0f), logf(7.0f)};
        only_two &= lt_sample(a, 3, NULL, 0, &s, &r1) != 0;
    }
    CHECK(only_two, "top-p drops the tail");
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_config();
    test_rope_scaling();
    test_sampler();
    lt_device *dev = lt_device_open("cpu", 2, err, sizeof(err));
    CHECK(dev != NULL, "cpu device: %s", err);
    if (dev) {
        test_init_and_errors(dev);
        lt_device_close(dev);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
