/*
 * test_train_loop_parts.c - the run loop's parts on their own: config validation (JSON paths,
 * unknown keys, defaults, canonical form), assistant-only shifted labels and truncation,
 * best-fit-decreasing packing and the seeded shuffle, batch assembly, checkpoints (round
 * trip, damaged file refused) and the store's run records.
 */
#include "test.h"

#include "store.h"
#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/train_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static bool parse(const char *json, lt_train_config *c, char *err, size_t n)
{
    return lt_train_config_parse(json, strlen(json), "t.json", NULL, c, err, n);
}

static void expect_error(const char *json, const char *want)
{
    lt_train_config c;
    char err[512] = "";
    bool ok = parse(json, &c, err, sizeof(err));
    CHECK(!ok && strstr(err, want), "%s -> want '%s', got '%s'", json, want, err);
    if (ok)
        lt_train_config_free(&c);
}

static void test_config(void)
{
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"lora\":{\"r\":-1}}",
                 "$.lora.r: expected a positive integer");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"lora\":{\"r\":-1}}", "got -1");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"lr\":1}", "$.lr: unknown key");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":{\"lr\":0}}",
                 "$.optimizer.lr");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":{\"betas\":[0.9,1.5]}}",
                 "$.optimizer.betas[1]");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"freeze\":{\"layers\":\"last:x\"}}",
                 "$.freeze.layers");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"schedule\":{\"type\":\"step\"}}",
                 "$.schedule.type");
    expect_error("{\"model\":\"m\"}", "$.dataset: missing");
    expect_error("{\"dataset\":\"d\"}", "$.model: missing");
    expect_error("{\"model\":\"m\",\"dataset\":{\"name\":\"d\",\"file\":\"f\"}}", "not both");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"template\":\"jinja\"}", "$.template");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"gradient_checkpointing\":\"yes\"}",
                 "$.gradient_checkpointing: expected \"auto\", true or false, got \"yes\"");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"offload_activations\":1}",
                 "$.offload_activations: expected true or false");
    expect_error("{\"model\":\"m\",\"dataset\":\"d\",\"gradient_checkpointing\":false,"
                 "\"offload_activations\":true}",
                 "$.offload_activations: needs gradient checkpointing");
    {
        static const char *const gc[] = {"true", "false", "\"auto\""};
        for (int i = 0; i < 3; i++) {
            char j[128];
            snprintf(j, sizeof j,
                     "{\"model\":\"m\",\"dataset\":\"d\",\"gradient_checkpointing\":%s}", gc[i]);
            lt_train_config g;
            char e[512] = "";
            bool okg = parse(j, &g, e, sizeof e);
            CHECK(okg && g.grad_ckpt == (i == 0 ? LT_GRAD_CKPT_ON : i == 1 ? LT_GRAD_CKPT_OFF : LT_GRAD_CKPT_AUTO),
                  "gradient_checkpointing %s parses (%s)", gc[i], e);
            if (okg)
                lt_train_config_free(&g);
        }
    }
    expect_error("[1]", "$: expected a JSON object");
    expect_error("{\"model\":", "not valid JSON");

    lt_train_config c;
    char err[512];
    bool ok = parse("{\"model\":\"m\",\"dataset\":\"d\",\"method\":\"lora\",\"lora\":{\"r\":16,"
                    "\"target_modules\":[\"q_proj\",\"c_proj\"]},\"schedule\":{\"type\":"
                    "\"cosine\",\"warmup_ratio\":0.1}}",
                    &c, err, sizeof(err));
    CHECK(ok, "valid config: %s", err);
    if (ok) {
        CHECK(c.lora.r == 16 && (c.lora.targets & LT_LORA_Q) && (c.lora.targets & LT_LORA_O) &&
                  (c.lora.targets & LT_LORA_DOWN),
              "lora targets parsed (c_proj = attention and mlp output)");
        CHECK(c.lr == 2e-4 && c.warmup_steps == -1 && c.warmup_ratio == 0.1,
              "defaults and warmup_ratio");
        CHECK(strcmp(c.split, "train") == 0 && strcmp(c.eval_split, "val") == 0,
              "split defaults");
        /* the canonical form parses back to the same hash */
        lt_train_config d;
        char hash[65];
        memcpy(hash, c.hash, 65);
        CHECK(parse(c.json, &d, err, sizeof(err)) && strcmp(d.hash, hash) == 0,
              "canonical JSON round-trips: %s", err);
        lt_train_config_free(&d);
        lt_train_config_free(&c);
    }
    const char *const ckpt[] = {
        "", ",\"gradient_checkpointing\":true", ",\"gradient_checkpointing\":false",
        ",\"gradient_checkpointing\":\"auto\",\"offload_activations\":true"};
    const lt_grad_ckpt want_ckpt[] = {LT_GRAD_CKPT_AUTO, LT_GRAD_CKPT_ON, LT_GRAD_CKPT_OFF,
                                      LT_GRAD_CKPT_AUTO};
    for (int i = 0; i < 4; i++) {
        char js[256];
        snprintf(js, sizeof(js), "{\"model\":\"m\",\"dataset\":\"d\"%s}", ckpt[i]);
        ok = parse(js, &c, err, sizeof(err));
        CHECK(ok && c.grad_ckpt == want_ckpt[i] && c.offload_activations == (i == 3),
              "%s: %s", js, err);
        if (!ok)
            continue;
        lt_train_config d;
        CHECK(parse(c.json, &d, err, sizeof(err)) && d.grad_ckpt == c.grad_ckpt &&
                  d.offload_activations == c.offload_activations && strcmp(d.hash, c.hash) == 0,
              "checkpointing round-trips through the canonical JSON %s: %s", c.json, err);
        lt_trainer_opts to;
        lt_model_config mc = {.arch = LT_ARCH_LLAMA};
        lt_train_config_trainer_opts(&c, &mc, NULL, &to);
        CHECK(to.recompute == (i == 1) && to.offload_activations == (i == 3),
              "trainer options from %s", js);
        lt_train_config_free(&d);
        lt_train_config_free(&c);
    }
    ok = parse("{\"model\":\"m\",\"dataset\":\"d\",\"method\":\"freeze\",\"freeze\":{\"layers\":"
               "\"half\"}}",
               &c, err, sizeof(err));
    CHECK(ok, "freeze half: %s", err);
    if (ok) {
        bool tl[5];
        lt_freeze_layers(&c, 5, 0, tl, err, sizeof(err));
        CHECK(tl[0] && !tl[1] && tl[2] && !tl[3] && tl[4], "round 0 trains the even layers");
        lt_freeze_layers(&c, 5, 1, tl, err, sizeof(err));
        CHECK(!tl[0] && tl[1] && !tl[2] && tl[3] && !tl[4], "round 1 trains the odd layers");
        lt_train_config_free(&c);
    }
    ok = parse("{\"model\":\"m\",\"dataset\":\"d\",\"method\":\"freeze\",\"freeze\":{\"layers\":"
               "[0,7]}}",
               &c, err, sizeof(err));
    if (ok) {
        bool tl[4];
        CHECK(!lt_freeze_layers(&c, 4, 0, tl, err, sizeof(err)) &&
                  strstr(err, "$.freeze.layers[1]"),
              "a layer the model lacks: %s", err);
        lt_train_config_free(&c);
    }
}

/* A tokenizer with a ChatML template, trained on a few words. */
static lt_tokenizer *make_tokenizer(void)
{
    char txt[512], dir[512], err[LT_TOK_ERR_LEN];
    snprintf(txt, sizeof(txt), "%s/words.txt", tmpdir);
    snprintf(dir, sizeof(dir), "%s/tok", tmpdir);
    FILE *f = fopen(txt, "w");
    for (int i = 0; i < 50; i++)
        fprintf(f, "hello world the cat sat on the mat answer question\n");
    fclose(f);
    const char *files[1] = {txt};
    lt_bpe_train_opts o = {300, 2, false};
    if (lt_bpe_train(files, 1, &o, dir, err, sizeof(err)) != LT_TOK_OK)
        return NULL;
    lt_tokenizer *tok = NULL;
    if (lt_tokenizer_load_dir(dir, &tok, err, sizeof(err)) != LT_TOK_OK)
        return NULL;
    return tok;
}

static void test_labels_and_packing(void)
{
    lt_tokenizer *tok = make_tokenizer();
    CHECK(tok != NULL, "tokenizer trained");
    if (!tok)
        return;
    lt_encode_opts o = {0};
    o.seq_len = 64;
    o.eos_id = lt_tokenizer_eos_id(tok);
    CHECK(lt_tokenizer_chat_family(tok, LT_CHAT_NONE, &o.family, NULL, 0) == LT_TOK_OK,
          "chatml family");
    const char *s1 = "{\"turns\":[{\"role\":\"user\",\"content\":\"hello world\"},"
                     "{\"role\":\"assistant\",\"content\":\"the cat sat\"}]}";
    lt_examples ex = {0};
    char err[512];
    CHECK(lt_examples_add(&ex, tok, &o, s1, err, sizeof(err)), "encode: %s", err);
    /* the labels must be exactly the assistant tokens, shifted by one */
    lt_chat_msg msgs[2] = {{"user", "hello world"}, {"assistant", "the cat sat"}};
    lt_tok_ids t = {0};
    lt_tokenizer_encode_chat(tok, o.family, msgs, 2, false, &t, err, sizeof(err));
    int64_t n = ex.start[1] - ex.start[0];
    bool same = n == (int64_t)t.n;
    int64_t n_lab = 0;
    for (int64_t i = 0; same && i < n; i++) {
        int32_t want = (i + 1 < n && t.mask[i + 1]) ? t.ids[i + 1] : -100;
        same = ex.ids[i] == t.ids[i] && ex.labels[i] == want;
        n_lab += want != -100;
    }
    CHECK(same && n_lab > 0 && n_lab < n - 1, "labels: next token on assistant tokens only");
    /* train_on_prompt: every position but the last */
    o.train_on_prompt = true;
    lt_examples all = {0};
    lt_examples_add(&all, tok, &o, s1, err, sizeof(err));
    CHECK(all.n_labels == n - 1, "train_on_prompt labels every next token");
    lt_examples_free(&all);
    o.train_on_prompt = false;
    /* truncation is counted; a sample with no assistant token left is skipped */
    o.seq_len = 6;
    lt_examples tr = {0};
    lt_examples_add(&tr, tok, &o, s1, err, sizeof(err));
    CHECK(tr.n_truncated == 1 && tr.n == 0 && tr.n_skipped == 1,
          "truncated (%lld) and skipped (%lld)", (long long)tr.n_truncated,
          (long long)tr.n_skipped);
    lt_examples_free(&tr);
    o.seq_len = 64;
    CHECK(!lt_examples_add(&ex, tok, &o, "{\"text\":\"hello\"}", err, sizeof(err)) &&
              strstr(err, "pretrain"),
          "raw text in sft names the objective: %s", err);
    /* pretraining: all tokens, eos appended */
    o.pretrain = true;
    lt_examples pt = {0};
    lt_examples_add(&pt, tok, &o, "{\"text\":\"hello world\"}", err, sizeof(err));
    int64_t pn = pt.start[1];
    CHECK(pt.n == 1 && pt.ids[pn - 1] == o.eos_id && pt.n_labels == pn - 1,
          "pretrain: eos appended, every token labelled");
    lt_examples_free(&pt);
    o.pretrain = false;
    /* more examples of different lengths */
    const char *answers[] = {"the", "the cat", "the cat sat on the mat", "hello", "world world",
                             "answer question answer"};
    for (int i = 0; i < 6; i++) {
        char js[256];
        snprintf(js, sizeof(js),
                 "{\"turns\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
                 "\"content\":\"%s\"}]}",
                 answers[i]);
        lt_examples_add(&ex, tok, &o, js, err, sizeof(err));
    }
    CHECK(ex.n == 7, "7 examples");
    lt_rows a, b, p;
    lt_rows_plan(&ex, true, false, 64, 5, 0, &a);
    lt_rows_plan(&ex, true, false, 64, 5, 0, &b);
    CHECK(a.n_rows == 7 && memcmp(a.member, b.member, 7 * sizeof(int64_t)) == 0,
          "same seed and epoch, same order");
    lt_rows_free(&b);
    lt_rows_plan(&ex, true, false, 64, 5, 1, &b);
    CHECK(memcmp(a.member, b.member, 7 * sizeof(int64_t)) != 0, "another epoch, another order");
    lt_rows_free(&b);
    int64_t seq = 64;
    lt_rows_plan(&ex, true, true, seq, 5, 0, &p);
    int64_t seen = 0, total = 0;
    bool fits = true;
    for (int64_t r = 0; r < p.n_rows; r++) {
        int64_t len = 0;
        for (int64_t k = p.off[r]; k < p.off[r + 1]; k++)
            len += ex.start[p.member[k] + 1] - ex.start[p.member[k]];
        fits = fits && len <= seq;
        total += len;
        seen += p.off[r + 1] - p.off[r];
    }
    CHECK(fits && seen == 7 && total == ex.n_tok, "packing keeps every example, rows <= seq_len");
    CHECK(p.n_rows < 7, "packing uses fewer rows (%lld)", (long long)p.n_rows);
    lt_batch_buf buf = {0};
    CHECK(lt_batch_build(&ex, &p, 0, 1, true, 0, &buf), "packed batch");
    bool restart = buf.b.positions && buf.b.segments && buf.b.positions[0] == 0;
    int64_t row_len = 0;
    for (int64_t k = p.off[0]; k < p.off[1]; k++)
        row_len += ex.start[p.member[k] + 1] - ex.start[p.member[k]];
    int64_t first = ex.start[p.member[p.off[0]] + 1] - ex.start[p.member[p.off[0]]];
    if (p.off[1] - p.off[0] > 1)
        restart = restart && buf.b.positions[first] == 0 && buf.b.segments[first] == 1;
    CHECK(restart && buf.b.T == row_len, "positions restart and segments count per example");
    CHECK(lt_batch_build(&ex, &a, 0, 3, false, 0, &buf), "unpacked batch");
    bool padded = buf.b.positions == NULL && buf.b.B == 3;
    for (int64_t r = 0; r < 3; r++) {
        int64_t e = a.member[r], len = ex.start[e + 1] - ex.start[e];
        for (int64_t t2 = len; t2 < buf.b.T; t2++)
            padded = padded && buf.b.labels[r * buf.b.T + t2] == -100;
    }
    CHECK(padded, "padding to the longest row carries label -100");
    CHECK(!lt_batch_build(&ex, &a, 6, 3, false, 0, &buf), "rows past the plan refused");
    lt_batch_buf_free(&buf);
    lt_rows_free(&a);
    lt_rows_free(&p);
    lt_tok_ids_free(&t);
    lt_examples_free(&ex);
    lt_tokenizer_free(tok);
}

static void test_checkpoint(void)
{
    char err[512], path[512];
    lt_device *dev = lt_device_open("cpu", 1, err, sizeof(err));
    CHECK(dev != NULL, "cpu device: %s", err);
    if (!dev)
        return;
    lt_tensor *a = lt_tensor_new_2d(dev, LT_F32, 3, 4), *b = lt_tensor_new_1d(dev, LT_F32, 5);
    float va[12], vb[5], ra[12], rb[5];
    for (int i = 0; i < 12; i++)
        va[i] = (float)i * 0.5f - 1;
    for (int i = 0; i < 5; i++)
        vb[i] = (float)(i * i);
    lt_tensor_upload_f32(a, va, 12);
    lt_tensor_upload_f32(b, vb, 5);
    lt_ckpt_state s = {0};
    s.step = 17;
    s.epoch = 2;
    s.row = 9;
    s.best_val = NAN;
    s.n_hist = 2;
    s.hist_val[1] = 1.25;
    snprintf(s.config_hash, sizeof(s.config_hash), "abc123");
    lt_ckpt_tensor ts[2] = {{"param:a", a}, {"m:b", b}};
    snprintf(path, sizeof(path), "%s/x.ckpt", tmpdir);
    CHECK(lt_ckpt_write(path, &s, ts, 2, err, sizeof(err)), "write: %s", err);
    lt_ckpt_state r;
    CHECK(lt_ckpt_read_state(path, &r, err, sizeof(err)) && r.step == 17 && r.row == 9 &&
              isnan(r.best_val) && r.hist_val[1] == 1.25 && strcmp(r.config_hash, "abc123") == 0,
          "state round-trips: %s", err);
    lt_fill(a, 0);
    lt_fill(b, 0);
    CHECK(lt_ckpt_load(path, ts, 2, err, sizeof(err)), "load: %s", err);
    lt_tensor_download_f32(a, ra, 12);
    lt_tensor_download_f32(b, rb, 5);
    CHECK(memcmp(ra, va, sizeof(va)) == 0 && memcmp(rb, vb, sizeof(vb)) == 0,
          "tensors round-trip bitwise");
    lt_ckpt_tensor wrong[1] = {{"param:a", a}};
    CHECK(!lt_ckpt_load(path, wrong, 1, err, sizeof(err)) && strstr(err, "m:b"),
          "an unexpected tensor is an error: %s", err);
    /* flip one byte: refused */
    FILE *f = fopen(path, "r+b");
    fseek(f, 150, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 150, SEEK_SET);
    fputc(ch ^ 1, f);
    fclose(f);
    CHECK(!lt_ckpt_read_state(path, &r, err, sizeof(err)) && strstr(err, "checksum"),
          "damaged checkpoint refused: %s", err);
    CHECK(!lt_ckpt_load(path, ts, 2, err, sizeof(err)), "damaged checkpoint not loaded");
    f = fopen(path, "wb");
    fputs("short", f);
    fclose(f);
    CHECK(!lt_ckpt_read_state(path, &r, err, sizeof(err)), "short file refused: %s", err);
    CHECK(!lt_ckpt_write("/proc/nope/x.ckpt", &s, ts, 2, err, sizeof(err)),
          "unwritable path fails cleanly");
    lt_device_close(dev);
}

static void test_store_runs(void)
{
    char ws[512], err[512];
    snprintf(ws, sizeof(ws), "%s/ws", tmpdir);
    lt_store *st = NULL;
    CHECK(lt_store_open(ws, &st, err, sizeof(err)) == LT_STORE_OK, "open: %s", err);
    if (!st)
        return;
    lt_store_run r = {0};
    r.config = "{}";
    r.method = "lora";
    r.device = "cpu";
    int64_t id = 0;
    CHECK(lt_store_run_create(st, &r, &id) == LT_STORE_OK && id > 0, "run created");
    CHECK(lt_store_run_set_status(st, id, "running", "", 42) == LT_STORE_OK, "running");
    lt_store_metric m[3] = {{1, "loss", 2.5, 0}, {2, "loss", 2.0, 0}, {2, "lr", 1e-3, 0}};
    CHECK(lt_store_metrics_put(st, id, m, 3) == LT_STORE_OK, "metrics batch");
    m[0].value = 2.25; /* a resumed run rewrites step 1 */
    CHECK(lt_store_metrics_put(st, id, m, 1) == LT_STORE_OK, "metrics replace");
    int64_t n, ls, ms;
    double last, min;
    CHECK(lt_store_metric_summary(st, id, "loss", &n, &last, &ls, &min, &ms) == LT_STORE_OK &&
              n == 2 && last == 2.0 && ls == 2 && min == 2.0,
          "summary");
    int64_t cid;
    CHECK(lt_store_control_post(st, id, "pause", &cid) == LT_STORE_OK, "control posted");
    char cmd[32];
    int64_t got;
    CHECK(lt_store_control_poll(st, id, &got, cmd, sizeof(cmd)) == LT_STORE_OK && got == cid &&
              strcmp(cmd, "pause") == 0,
          "control polled");
    lt_store_control_ack(st, got);
    CHECK(lt_store_control_poll(st, id, &got, cmd, sizeof(cmd)) == LT_STORE_DONE,
          "acknowledged requests are not seen again");
    CHECK(lt_store_run_event_add(st, id, 3, "overfit", "val up") == LT_STORE_OK, "event");
    lt_store_run_set_status(st, id, "done", "finished", 0);
    lt_store_iter *it = NULL;
    lt_store_run g;
    CHECK(lt_store_run_get(st, id, &it, &g) == LT_STORE_OK && strcmp(g.status, "done") == 0 &&
              g.pid == 42 && g.ended_at > 0 && strcmp(g.method, "lora") == 0,
          "run row");
    lt_store_iter_free(it);
    int64_t found;
    char idtxt[32];
    snprintf(idtxt, sizeof(idtxt), "%lld", (long long)id);
    CHECK(lt_store_run_find(st, idtxt, &found) == LT_STORE_OK && found == id, "find by id");
    CHECK(lt_store_run_find(st, "999", &found) == LT_STORE_NOT_FOUND, "missing run");
    lt_store_close(st);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/lathe_test_train_parts_XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    test_config();
    test_labels_and_packing();
    test_checkpoint();
    test_store_runs();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
