/*
 * test_tokenizer_input.c - the tokenizer's edges: malformed tokenizer.json files (each error
 * names the field), truncations at every length never crash, chat templates (family
 * recognition, rendering, the assistant mask), and the BPE trainer (a written tokenizer loads
 * back, round-trips, and training is deterministic).
 */
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA LATHE_TEST_DATA "/tok"

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    *n = (size_t)len;
    return buf;
}

/* Loading json must fail with status want and a message containing each of the words. */
static void expect_error(const char *json, lt_tok_status want, const char *w1, const char *w2)
{
    char err[LT_TOK_ERR_LEN] = "";
    lt_tokenizer *t = NULL;
    lt_tok_status s = lt_tokenizer_load_json(json, strlen(json), "tokenizer.json", &t, err,
                                             sizeof err);
    CHECK(s == want && !t && strstr(err, w1) && (!w2 || strstr(err, w2)),
          "%.60s...: got status %d \"%s\", want %d with \"%s\"", json, s, err, want, w1);
    lt_tokenizer_free(t);
}

#define BL "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}"
#define VOCAB "{\"a\": 0, \"b\": 1, \"ab\": 2}"

static void check_malformed(void)
{
    expect_error("", LT_TOK_ERR_PARSE, "not valid JSON", NULL);
    expect_error("[1, 2]", LT_TOK_ERR_PARSE, "JSON object", NULL);
    expect_error("{\"version\": \"1.0\"}", LT_TOK_ERR_PARSE, "missing \"model\"", NULL);
    expect_error("{\"model\": 3}", LT_TOK_ERR_PARSE, "\"model\"", "object");
    expect_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", LT_TOK_ERR_UNSUPPORTED,
                 "model.type", "Unigram");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": [1]}}", LT_TOK_ERR_PARSE,
                 "model.vocab", NULL);
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}}}", LT_TOK_ERR_PARSE,
                 "model.vocab[\"a\"]", "integer");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}}",
                 LT_TOK_ERR_PARSE, "used twice", NULL);
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a c\"]}}",
                 LT_TOK_ERR_PARSE, "model.merges[0]", "\"c\"");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"ab\"]}}",
                 LT_TOK_ERR_PARSE, "model.merges[0]", "left right");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [[\"a\"]]}}",
                 LT_TOK_ERR_PARSE, "model.merges[0]", "pair");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB
                 ", \"merges\": [\"a b\", [\"b\", \"a\"]]}}",
                 LT_TOK_ERR_PARSE, "model.merges[1]", "\"ba\"");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": {}}}",
                 LT_TOK_ERR_PARSE, "model.merges", "array");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB ", \"unk_token\": \"<u>\"}}",
                 LT_TOK_ERR_PARSE, "unk_token", "<u>");
    expect_error("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, "
                 "\"behavior\": \"Isolated\"}, \"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB "}}",
                 LT_TOK_ERR_UNSUPPORTED, "unknown pattern", "\\w+");
    expect_error("{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"type\": \"BPE\", "
                 "\"vocab\": " VOCAB "}}",
                 LT_TOK_ERR_UNSUPPORTED, "pre_tokenizer type", "Whitespace");
    expect_error("{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
                 VOCAB "}}",
                 LT_TOK_ERR_UNSUPPORTED, "normalizer type", "NFKC");
    expect_error("{\"decoder\": {\"type\": \"WordPiece\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
                 VOCAB "}}",
                 LT_TOK_ERR_UNSUPPORTED, "decoder type", "WordPiece");
    expect_error("{\"added_tokens\": [{\"id\": \"x\", \"content\": \"<s>\"}], \"pre_tokenizer\": " BL
                 ", \"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB "}}",
                 LT_TOK_ERR_PARSE, "added_tokens[0]", NULL);
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", LT_TOK_ERR_PARSE,
                 "model.vocab is empty", NULL);

    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = NULL;
    lt_tok_status s = lt_tokenizer_load_dir(DATA "/no-such-model", &t, err, sizeof err);
    CHECK(s == LT_TOK_ERR_IO && strstr(err, "no-such-model/tokenizer.json"),
          "a missing folder names the file: %s", err);
}

/* Every prefix of a real tokenizer.json (and a few corruptions) fails cleanly. */
static void check_truncations(void)
{
    size_t n;
    char *json = slurp(DATA "/sp/tokenizer.json", &n);
    int ok = 0, clean = 0, tried = 0;
    CHECK(json != NULL, "read sp/tokenizer.json");
    for (size_t len = 0; json && len < n; len += len < 2000 ? 7 : 331) {
        char err[LT_TOK_ERR_LEN] = "";
        lt_tokenizer *t = NULL;
        char *copy = malloc(len + 1);
        memcpy(copy, json, len);
        copy[len] = '\0';
        lt_tok_status s = lt_tokenizer_load_json(copy, len, "tokenizer.json", &t, err, sizeof err);
        tried++;
        if (s == LT_TOK_OK)
            ok++;
        else if (err[0] && !t)
            clean++;
        lt_tokenizer_free(t);
        free(copy);
    }
    CHECK(ok == 0 && clean == tried, "truncations: %d loaded, %d clean errors of %d", ok, clean,
          tried);
    free(json);
}

static void check_chat(void)
{
    char err[LT_TOK_ERR_LEN];
    CHECK(lt_chat_detect("{% for m in messages %}{{'<|im_start|>' + m.role}}<|im_end|>") ==
              LT_CHAT_CHATML,
          "ChatML recognised");
    CHECK(lt_chat_detect("<|start_header_id|>{{ role }}<|end_header_id|>{{ c }}<|eot_id|>") ==
              LT_CHAT_LLAMA3,
          "Llama-3 recognised");
    CHECK(lt_chat_detect("{{ bos_token + '[INST] ' + content + ' [/INST]' }}") == LT_CHAT_LLAMA2,
          "[INST] recognised");
    CHECK(lt_chat_detect("### Instruction:\n{{x}}\n\n### Response:\n") == LT_CHAT_ALPACA,
          "Alpaca recognised");
    CHECK(lt_chat_detect("{{ messages }}") == LT_CHAT_NONE, "unknown template");
    CHECK(lt_chat_family_parse("llama3") == LT_CHAT_LLAMA3 && lt_chat_family_parse("x") == LT_CHAT_NONE,
          "family names");

    lt_tokenizer *t = NULL;
    lt_tok_status s = lt_tokenizer_load_dir(DATA "/qwen2", &t, err, sizeof err);
    CHECK(s == LT_TOK_OK, "load qwen2: %s", err);
    if (!t)
        return;
    lt_chat_family fam;
    s = lt_tokenizer_chat_family(t, LT_CHAT_NONE, &fam, err, sizeof err);
    CHECK(s == LT_TOK_ERR_TEMPLATE && strstr(err, "--template"),
          "no template: an error that says how to choose one (%s)", err);
    /* Qwen2.5's template carries a default system prompt */
    const char *cfg =
        "{\"eos_token\": \"<|im_end|>\", \"chat_template\": \"{%- if messages[0]['role'] == "
        "'system' %}{{- '<|im_start|>system\\\\n' + messages[0]['content'] + '<|im_end|>\\\\n' "
        "}}{%- else %}{{- '<|im_start|>system\\\\nYou are Qwen, created by Alibaba Cloud. You "
        "are a helpful assistant.<|im_end|>\\\\n' }}{%- endif %}\"}";
    s = lt_tokenizer_apply_config(t, cfg, strlen(cfg), "cfg", err, sizeof err);
    CHECK(s == LT_TOK_OK, "qwen config: %s", err);
    s = lt_tokenizer_chat_family(t, LT_CHAT_NONE, &fam, err, sizeof err);
    CHECK(s == LT_TOK_OK && fam == LT_CHAT_CHATML, "Qwen2.5's template is ChatML");
    lt_chat_msg conv[] = {{"user", "Hi there"}, {"assistant", "Hello!"}, {"user", "Bye"},
                          {"assistant", "See you."}};
    lt_chat_text ct;
    s = lt_chat_render(t, fam, conv, 4, true, &ct, err, sizeof err);
    const char *want =
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
        "Hello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nSee "
        "you.<|im_end|>\n<|im_start|>assistant\n";
    CHECK(s == LT_TOK_OK && strcmp(ct.text, want) == 0, "ChatML render:\n%s", ct.text);
    CHECK(ct.n_assist == 2 && strncmp(ct.text + ct.assist[0], "Hello!<|im_end|>",
                                      ct.assist[1] - ct.assist[0]) == 0,
          "assistant ranges cover content and <|im_end|>");
    lt_chat_text_free(&ct);

    lt_tok_ids ids = {0};
    s = lt_tokenizer_encode_chat(t, fam, conv, 4, false, &ids, err, sizeof err);
    CHECK(s == LT_TOK_OK, "encode chat: %s", err);
    /* the assistant tokens decode to exactly the two answers with their end markers */
    int32_t *sel = malloc(ids.n * sizeof *sel);
    size_t k = 0;
    for (size_t i = 0; i < ids.n; i++)
        if (ids.mask[i])
            sel[k++] = ids.ids[i];
    char *out = NULL;
    size_t on = 0;
    lt_tokenizer_decode(t, sel, k, 0, &out, &on, err, sizeof err);
    CHECK(out && strcmp(out, "Hello!<|im_end|>See you.<|im_end|>") == 0,
          "masked tokens decode to the answers: \"%s\"", out ? out : err);
    free(out);
    free(sel);
    lt_tok_ids_free(&ids);

    /* Llama-3 and Llama-2 renders */
    lt_chat_msg sys_conv[] = {{"system", " Be brief. "}, {"user", "Hi"}, {"assistant", " Yo "}};
    s = lt_chat_render(NULL, LT_CHAT_LLAMA3, sys_conv, 3, false, &ct, err, sizeof err);
    CHECK(s == LT_TOK_OK && strcmp(ct.text, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                                            "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                                            "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
                                            "Yo<|eot_id|>") == 0,
          "Llama-3 render: %s", ct.text);
    lt_chat_text_free(&ct);
    s = lt_chat_render(NULL, LT_CHAT_LLAMA2, sys_conv, 3, false, &ct, err, sizeof err);
    CHECK(s == LT_TOK_OK && strcmp(ct.text, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Yo </s>") == 0,
          "Llama-2 render: %s", ct.text);
    CHECK(ct.n_assist == 1 && strcmp(ct.text + ct.assist[0], "Yo </s>") == 0, "Llama-2 range");
    lt_chat_text_free(&ct);
    lt_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    s = lt_chat_render(NULL, LT_CHAT_LLAMA2, bad, 2, false, &ct, err, sizeof err);
    CHECK(s == LT_TOK_ERR_INVALID && strstr(err, "messages[1]"), "turn order checked: %s", err);
    lt_chat_msg badrole[] = {{"tool", "a"}};
    s = lt_chat_render(NULL, LT_CHAT_CHATML, badrole, 1, false, &ct, err, sizeof err);
    CHECK(s == LT_TOK_ERR_INVALID && strstr(err, "messages[0].role"), "unknown role: %s", err);
    lt_tokenizer_free(t);
}

static void check_train(void)
{
    char err[LT_TOK_ERR_LEN], dir1[256], dir2[256], corpus[256], p1[300], p2[300];
    snprintf(dir1, sizeof dir1, "/tmp/lathe_tok_train_%d_a", (int)getpid());
    snprintf(dir2, sizeof dir2, "/tmp/lathe_tok_train_%d_b", (int)getpid());
    snprintf(corpus, sizeof corpus, "/tmp/lathe_tok_train_%d.txt", (int)getpid());
    FILE *f = fopen(corpus, "wb");
    CHECK(f != NULL, "write corpus");
    if (!f)
        return;
    uint32_t r = 7;
    const char *words[] = {"the", "tokenizer", "merges", "pairs", "lathe", "training", "données",
                           "日本語", "123", "  ", "\n", "it's", "😀", "\xff"};
    for (int i = 0; i < 20000; i++) {
        r = r * 1103515245u + 12345u;
        fprintf(f, "%s%s", words[(r >> 16) % 14], (r >> 8) % 3 ? " " : "");
    }
    fclose(f);
    const char *files[] = {corpus};
    lt_bpe_train_opts o = {400, 2, false};
    lt_tok_status s1 = lt_bpe_train(files, 1, &o, dir1, err, sizeof err);
    CHECK(s1 == LT_TOK_OK, "train: %s", err);
    lt_tok_status s2 = lt_bpe_train(files, 1, &o, dir2, err, sizeof err);
    snprintf(p1, sizeof p1, "%s/tokenizer.json", dir1);
    snprintf(p2, sizeof p2, "%s/tokenizer.json", dir2);
    size_t n1 = 0, n2 = 0;
    char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    CHECK(s2 == LT_TOK_OK && a && b && n1 == n2 && memcmp(a, b, n1) == 0,
          "training twice gives the same file");
    free(a);
    free(b);
    lt_tokenizer *t = NULL;
    lt_tok_status s = lt_tokenizer_load_dir(dir1, &t, err, sizeof err);
    CHECK(s == LT_TOK_OK, "trained tokenizer loads: %s", err);
    if (t) {
        CHECK(lt_tokenizer_n_vocab(t) == 400, "vocab 400 (got %d)", lt_tokenizer_n_vocab(t));
        CHECK(lt_tokenizer_eos_id(t) == lt_tokenizer_piece_id(t, "<|im_end|>"), "eos <|im_end|>");
        lt_chat_family fam;
        CHECK(lt_tokenizer_chat_family(t, LT_CHAT_NONE, &fam, err, sizeof err) == LT_TOK_OK &&
                  fam == LT_CHAT_CHATML,
              "the written template is ChatML");
        const char *text = "the tokenizer merges pairs 日本語 it's \xff<|im_start|>";
        lt_tok_ids ids = {0};
        lt_tokenizer_encode(t, text, strlen(text), 0, &ids, err, sizeof err);
        char *out = NULL;
        size_t on = 0;
        lt_tokenizer_decode(t, ids.ids, ids.n, 0, &out, &on, err, sizeof err);
        CHECK(out && on == strlen(text) && memcmp(out, text, on) == 0, "trained round trip");
        CHECK(ids.n > 0 && ids.n < 20, "frequent words became tokens (%zu tokens)", ids.n);
        free(out);
        lt_tok_ids_free(&ids);
        lt_tokenizer_free(t);
    }
    o.vocab_size = 10;
    CHECK(lt_bpe_train(files, 1, &o, dir1, err, sizeof err) == LT_TOK_ERR_INVALID,
          "too small a vocab is refused");
    const char *missing[] = {"/nonexistent/corpus.txt"};
    o.vocab_size = 300;
    CHECK(lt_bpe_train(missing, 1, &o, dir1, err, sizeof err) == LT_TOK_ERR_IO &&
              strstr(err, "/nonexistent/corpus.txt"),
          "a missing corpus is named: %s", err);
    char cmd[900];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", dir1, dir2, corpus);
    CHECK(system(cmd) == 0, "cleanup");
}

/* Several threads encoding on one handle (the shared cache) agree with one thread. */
typedef struct job {
    lt_tokenizer *t;
    int seed;
    size_t n_ids;
    uint64_t hash;
} job;

static void *encode_job(void *p)
{
    job *j = p;
    char err[LT_TOK_ERR_LEN], text[256];
    uint32_t r = 99; /* same texts in every thread, so all must agree */
    j->hash = 1469598103934665603ull;
    for (int k = 0; k < 3000; k++) {
        size_t n = 0;
        while (n < 40) {
            r = r * 1103515245u + 12345u;
            const char *w[] = {"the ", "café ", "1234", "  ", "\n", "tokenizer", "x", "😀"};
            const char *s = w[(r >> 16) % 8];
            memcpy(text + n, s, strlen(s));
            n += strlen(s);
        }
        lt_tok_ids ids = {0};
        lt_tokenizer_encode(j->t, text, n, 0, &ids, err, sizeof err);
        for (size_t i = 0; i < ids.n; i++)
            j->hash = (j->hash ^ (uint64_t)ids.ids[i]) * 1099511628211ull;
        j->n_ids += ids.n;
        lt_tok_ids_free(&ids);
    }
    return NULL;
}

static void check_threads(void)
{
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = NULL;
    if (lt_tokenizer_load_dir(DATA "/llama3", &t, err, sizeof err) != LT_TOK_OK) {
        CHECK(0, "load llama3: %s", err);
        return;
    }
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){t, i, 0, 0};
        pthread_create(&th[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    job single = {t, 0, 0, 0};
    encode_job(&single);
    int same = 0;
    for (int i = 0; i < 4; i++)
        same += jobs[i].hash == single.hash && jobs[i].n_ids == single.n_ids;
    CHECK(same == 4, "4 threads on one tokenizer agree with one thread (%d of 4)", same);
    lt_tokenizer_free(t);
}

int main(void)
{
    check_threads();
    check_malformed();
    check_truncations();
    check_chat();
    check_train();
    return test_summary();
}
