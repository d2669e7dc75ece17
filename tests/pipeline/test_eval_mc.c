/*
 * test_eval_mc.c - multiple-choice data and scoring, and batched evaluation:
 *  - the golden import of tests/data/eval/mc_mixed.jsonl (every layout, every bad row with
 *    its reason), the stored sample shape, --field-map for other column names, and the dedup
 *    text seeing the question and the choices;
 *  - acc and acc_norm on a hand-worked table (lm-evaluation-harness's rule);
 *  - per-choice log-likelihoods from the shared-prompt KV cache equal a plain forward pass
 *    over each whole conversation, with the continuation found by decoding, not by offsets;
 *  - batched greedy generation gives the same ids as one prompt at a time, and a right-padded
 *    batch gives each row the logits it has alone.
 * The model is lathe's bundled demo model (assets/model).
 */
#include "data/data.h"
#include "eval/eval_impl.h"
#include "model/forward.h"
#include "model/generate.h"
#include "store.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL_DIR LATHE_TEST_DATA "/../../assets/model"

static char tmpdir[256];

static lt_store *open_ws(const char *sub)
{
    char ws[400], err[512];
    snprintf(ws, sizeof ws, "%s/%s", tmpdir, sub);
    lt_store *st = NULL;
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "open %s: %s", ws, err);
    return st;
}

typedef struct expect {
    long line;
    const char *severity;
    const char *reason; /* substring */
} expect;

/* The stored JSON of the sample at row (0-based) of a dataset's latest version. malloc'd. */
static char *sample_at(lt_store *st, const char *name, int64_t row)
{
    lt_store_version v;
    lt_store_iter *it = NULL;
    lt_store_sample s;
    char *out = NULL;
    if (lt_store_version_get(st, name, 0, &v) != LT_STORE_OK ||
        lt_store_samples_iter(st, v.version_id, NULL, &it) != LT_STORE_OK)
        return NULL;
    while (lt_store_samples_next(it, &s) == LT_STORE_OK)
        if (s.row == row) {
            out = strdup(s.data);
            break;
        }
    lt_store_iter_free(it);
    return out;
}

static void test_import_golden(void)
{
    lt_store *st = open_ws("golden");
    if (!st)
        return;
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = "mc";
    const char *paths[1] = {LATHE_TEST_DATA "/eval/mc_mixed.jsonl"};
    lt_data_import_result res;
    char err[1024] = "";
    CHECK(lt_data_import(st, paths, 1, &o, &res, err, sizeof err) == LT_DATA_OK, "import: %s", err);
    CHECK(res.format == LT_DATA_FORMAT_MULTIPLE_CHOICE, "detected %s",
          lt_data_format_name(res.format));
    CHECK(res.n_rows == 8 && res.n_bad == 10 && res.n_warnings == 1,
          "8 good, 10 bad, 1 warning: got %lld, %lld, %lld", (long long)res.n_rows,
          (long long)res.n_bad, (long long)res.n_warnings);
    static const expect ex[] = {
        {7, "error", "field 'choices' has 1 choice, expected at least 2"},
        {8, "error", "choice 2 of 'choices' is empty"},
        {9, "error", "field 'answer' is 4, out of range: expected a choice index from 0 to 3"},
        {10, "error", "choices 1 and 3 of 'choices' are identical ('same')"},
        {11, "error", "field 'answer' is 'E', out of range: expected a letter from A to C"},
        {12, "error", "field 'answer' ('maybe') is neither a choice letter nor the text"},
        {13, "error", "field 'question' is missing, expected a string"},
        {14, "error", "field 'choices' is a string, expected a list of strings"},
        {15, "warning", "control character U+0007 (bell) in field 'choices'"},
        {16, "error", "field 'answer' is 0.5, not a whole number"},
        {17, "error", "malformed JSON at line 17"},
    };
    lt_store_version v;
    lt_store_iter *it = NULL;
    lt_store_issue is;
    int k = 0, n_ex = (int)(sizeof ex / sizeof ex[0]);
    CHECK(lt_store_version_get(st, "mc", 0, &v) == LT_STORE_OK, "version");
    CHECK(lt_store_issues_iter(st, v.dataset_id, 0, &it) == LT_STORE_OK, "issues");
    while (it && lt_store_issues_next(it, &is) == LT_STORE_OK) {
        if (k < n_ex) {
            CHECK(is.line == ex[k].line && !strcmp(is.severity, ex[k].severity) &&
                      strstr(is.reason, ex[k].reason),
                  "issue %d: line %lld %s '%s', expected line %ld %s '%s'", k, (long long)is.line,
                  is.severity, is.reason, ex[k].line, ex[k].severity, ex[k].reason);
        }
        k++;
    }
    lt_store_iter_free(it);
    CHECK(k == n_ex, "%d issues, expected %d", k, n_ex);

    /* the stored shape: turns for everything that reads chat samples, and the fields */
    static const char *const want[] = {
        "{\"turns\":[{\"role\":\"user\",\"content\":\"What color is a clear sky at noon?\\n\\n"
        "A. green\\nB. blue\\nC. red\"},{\"role\":\"assistant\",\"content\":\"blue\"}],"
        "\"question\":\"What color is a clear sky at noon?\",\"choices\":[\"green\",\"blue\","
        "\"red\"],\"answer\":1}",
        /* query/gold */
        NULL,
        /* ARC: choices {text, label}, answerKey a label */
        "{\"turns\":[{\"role\":\"user\",\"content\":\"Which animal is a mammal?\\n\\nA. shark\\n"
        "B. whale\\nC. trout\\nD. eel\"},{\"role\":\"assistant\",\"content\":\"whale\"}],"
        "\"question\":\"Which animal is a mammal?\",\"choices\":[\"shark\",\"whale\",\"trout\","
        "\"eel\"],\"answer\":1}",
    };
    for (int r = 0; r < 3; r++) {
        char *s = sample_at(st, "mc", r);
        CHECK(s != NULL, "row %d stored", r);
        if (s && want[r])
            CHECK(!strcmp(s, want[r]), "row %d stored as\n%s\nexpected\n%s", r, s, want[r]);
        free(s);
    }
    static const char *const answers[] = {"\"answer\":1", "\"answer\":1", "\"answer\":1",
                                          "\"answer\":2", "\"answer\":2", "\"answer\":0"};
    for (int r = 0; r < 6; r++) {
        char *s = sample_at(st, "mc", r);
        CHECK(s && strstr(s, answers[r]), "row %d: %s (want %s)", r, s ? s : "(none)", answers[r]);
        if (r == 5)
            CHECK(s && strstr(s, "{\"system\":\"Answer briefly.\",\"turns\""), "system kept");
        free(s);
    }
    /* dedup, filters and split see the question and every choice */
    char *s = sample_at(st, "mc", 0), *resp = NULL;
    char *text = s ? lt_data_sample_text(s, &resp) : NULL;
    CHECK(text && strstr(text, "What color is a clear sky") && strstr(text, "A. green") &&
              strstr(text, "C. red"),
          "sample text: %s", text ? text : "(none)");
    CHECK(resp && !strcmp(resp, "blue"), "response (split's stratum) is the correct choice");
    free(text);
    free(resp);
    free(s);
    lt_store_close(st);
}

static void test_field_map(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/mapped.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "write %s", path);
    if (!f)
        return;
    fputs("{\"stem\": \"1 + 1 =\", \"options\": [\"1\", \"2\"], \"correct\": \"B\"}\n"
          "{\"stem\": \"2 + 1 =\", \"options\": [\"3\", \"4\"], \"correct\": 0}\n"
          "{\"stem\": \"3 + 1 =\", \"options\": [\"4\", \"5\"], \"answer\": 0}\n",
          f);
    fclose(f);
    lt_store *st = open_ws("mapped");
    if (!st)
        return;
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = "mapped";
    o.field_map[0] = "question=stem";
    o.field_map[1] = "choices=options";
    o.field_map[2] = "answer=correct";
    o.n_field_map = 3;
    const char *paths[1] = {path};
    lt_data_import_result res;
    char err[1024] = "";
    CHECK(lt_data_import(st, paths, 1, &o, &res, err, sizeof err) == LT_DATA_OK, "import: %s", err);
    CHECK(res.format == LT_DATA_FORMAT_MULTIPLE_CHOICE && res.n_rows == 2 && res.n_bad == 1,
          "mapped columns: %s, %lld good, %lld bad", lt_data_format_name(res.format),
          (long long)res.n_rows, (long long)res.n_bad);
    char *s = sample_at(st, "mapped", 0);
    CHECK(s && strstr(s, "\"question\":\"1 + 1 =\",\"choices\":[\"1\",\"2\"],\"answer\":1"),
          "mapped row: %s", s ? s : "(none)");
    free(s);
    /* a mapped column that is absent is not guessed from other names */
    lt_store_version v;
    lt_store_iter *it = NULL;
    lt_store_issue is;
    bool seen = false;
    if (lt_store_version_get(st, "mapped", 0, &v) == LT_STORE_OK &&
        lt_store_issues_iter(st, v.dataset_id, 0, &it) == LT_STORE_OK)
        while (lt_store_issues_next(it, &is) == LT_STORE_OK)
            seen |= is.line == 3 && strstr(is.reason, "field 'correct' is missing");
    lt_store_iter_free(it);
    CHECK(seen, "line 3: the mapped answer column is missing");
    CHECK(lt_data_format_parse("mc") == LT_DATA_FORMAT_MULTIPLE_CHOICE &&
              lt_data_format_parse("multiple_choice") == LT_DATA_FORMAT_MULTIPLE_CHOICE &&
              !strcmp(lt_data_format_name(LT_DATA_FORMAT_MULTIPLE_CHOICE), "multiple_choice"),
          "format names");
    lt_store_close(st);
}

/* acc and acc_norm worked by hand for four questions (lm-eval: argmax of the summed
 * log-likelihood; argmax of the sum over the choice's length in characters; ties to the
 * first). */
static void test_hand_worked_table(void)
{
    static const struct {
        const char *choices[4];
        double ll[4];
        int n, gold;
        int acc, acc_norm; /* worked out below */
    } t[] = {
        /* ll: -2 -3 -9; per char: -2/1=-2, -3/6=-0.5, -9/2=-4.5 -> acc 0, acc_norm 1 */
        {{"a", "banana", "cd"}, {-2, -3, -9}, 3, 1, 0, 1},
        /* ll: -5 -4; per char "Köln" 4 chars (5 bytes): -5/4=-1.25, "Paris" -4/5=-0.8
         * -> acc 1 (gold 1), acc_norm 1 */
        {{"Köln", "Paris"}, {-5, -4}, 2, 1, 1, 1},
        /* ties: -1 -1 -1 -> choice 0 both ways; gold 2 -> 0, 0 */
        {{"x", "y", "z"}, {-1, -1, -1}, 3, 2, 0, 0},
        /* ll -6 -7 -1 -8; chars 3 7 1 8: -2, -1, -1, -1 -> acc 2, acc_norm 1 (first of the
         * tied -1s); gold 2 -> acc 1, acc_norm 0 */
        {{"one", "seventy", "c", "eighteen"}, {-6, -7, -1, -8}, 4, 2, 1, 0},
    };
    double acc = 0, accn = 0;
    for (size_t q = 0; q < sizeof t / sizeof t[0]; q++) {
        int64_t len[4];
        for (int j = 0; j < t[q].n; j++)
            len[j] = lt_utf8_len(t[q].choices[j]);
        int a, an;
        lt_mc_score(t[q].ll, len, t[q].n, t[q].gold, &a, &an);
        CHECK(a == t[q].acc && an == t[q].acc_norm, "question %zu: acc %d acc_norm %d, want %d %d",
              q, a, an, t[q].acc, t[q].acc_norm);
        acc += a;
        accn += an;
    }
    CHECK(acc / 4 == 0.5 && accn / 4 == 0.5, "table: acc %.2f acc_norm %.2f, want 0.50 0.50",
          acc / 4, accn / 4);
}

/* Summed log-probability of ids[from..to) given what precedes them, by one plain forward
 * pass over ids[0..to) (no cache). */
static double plain_loglik(lt_model *m, const int32_t *ids, int64_t from, int64_t to)
{
    const int64_t V = lt_model_get_config(m)->vocab;
    lt_forward_opts fo = {.max_batch = 1, .max_seq = to};
    lt_forward *fw = NULL;
    lt_tensor *lg = NULL;
    char e[512];
    float *x = malloc((size_t)(to * V) * sizeof(float));
    double ll = NAN;
    if (x && lt_forward_new(m, &fo, &fw, e, sizeof e) == LT_MODEL_OK &&
        lt_forward_run(fw, ids, 1, to, NULL, &lg, e, sizeof e) == LT_MODEL_OK &&
        lt_tensor_download_f32(lg, x, to * V) == LT_OK) {
        ll = 0;
        for (int64_t t = from; t < to; t++) {
            const float *r = x + (t - 1) * V;
            double mx = r[0], s = 0;
            for (int64_t v = 1; v < V; v++)
                mx = r[v] > mx ? r[v] : mx;
            for (int64_t v = 0; v < V; v++)
                s += exp(r[v] - mx);
            ll += r[ids[t]] - mx - log(s);
        }
    }
    lt_forward_free(fw);
    free(x);
    return ll;
}

/* Per-choice log-likelihoods with chat family fam against plain forward passes. */
static void mc_logliks_check(lt_model *m, const lt_tokenizer *tok, lt_chat_family fam)
{
    static const char *const choices[] = {"red", "a small grey cat", "tree", "Köln"};
    lt_chat_msg msgs[2] = {{"system", "Answer with the choice."},
                           {"user", "which one is a colour?\n\nA. red\nB. a small grey cat\n"
                                    "C. tree\nD. Köln"}};
    const char *fn = lt_chat_family_name(fam);
    eval_mc_scorer *sc = NULL;
    char err[1024] = "";
    double ll[4];
    int64_t nt[4];
    bool too_long = true;
    CHECK(eval_mc_scorer_new(m, &sc, err, sizeof err) == LT_EVAL_OK, "scorer: %s", err);
    if (!sc)
        return;
    /* twice: the second run reuses the cache the first cut back */
    for (int pass = 0; pass < 2; pass++)
        CHECK(eval_mc_logliks(sc, tok, fam, msgs, 2, choices, 4, ll, nt, &too_long, err,
                              sizeof err) == LT_EVAL_OK &&
                  !too_long,
              "%s: scoring: %s", fn, err);
    lt_tok_ids p = {0};
    char e[LT_TOK_ERR_LEN];
    CHECK(lt_tokenizer_encode_chat(tok, fam, msgs, 2, true, &p, e, sizeof e) == LT_TOK_OK,
          "%s: prompt: %s", fn, e);
    for (int j = 0; j < 4; j++) {
        lt_chat_msg full[3] = {msgs[0], msgs[1], {"assistant", choices[j]}};
        lt_tok_ids f = {0};
        CHECK(lt_tokenizer_encode_chat(tok, fam, full, 3, false, &f, e, sizeof e) == LT_TOK_OK,
              "%s: choice %d: %s", fn, j, e);
        /* the continuation: the shortest run after the prompt that decodes to the choice
         * (after any whitespace the template puts first) */
        int64_t end = -1;
        for (int64_t k = (int64_t)p.n + 1; k <= (int64_t)f.n && end < 0; k++) {
            char *d = NULL;
            size_t dn = 0;
            if (lt_tokenizer_decode(tok, f.ids + p.n, (size_t)k - p.n, 0, &d, &dn, e, sizeof e) ==
                LT_TOK_OK) {
                size_t ws = strspn(d, " \n");
                if (dn - ws == strlen(choices[j]) && !memcmp(d + ws, choices[j], dn - ws))
                    end = k;
            }
            free(d);
        }
        CHECK(end > 0 && !memcmp(f.ids, p.ids, p.n * sizeof(int32_t)),
              "%s: choice %d: continuation found after the prompt", fn, j);
        if (end > 0) {
            double want = plain_loglik(m, f.ids, (int64_t)p.n, end);
            CHECK(nt[j] == end - (int64_t)p.n, "%s: choice %d: %lld tokens, want %lld", fn, j,
                  (long long)nt[j], (long long)(end - (int64_t)p.n));
            CHECK(fabs(ll[j] - want) <= 1e-3 * (1 + fabs(want)),
                  "%s: choice %d: cached log-likelihood %.6f, plain forward %.6f", fn, j, ll[j],
                  want);
        }
        lt_tok_ids_free(&f);
    }
    lt_tok_ids_free(&p);
    eval_mc_scorer_free(sc);
}

static void test_mc_logliks(lt_model *m, const lt_tokenizer *tok)
{
    static const lt_chat_family fams[] = {LT_CHAT_CHATML, LT_CHAT_LLAMA3, LT_CHAT_LLAMA2,
                                          LT_CHAT_ALPACA};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        mc_logliks_check(m, tok, fams[i]);
}

static void test_batched_generation(lt_model *m, const lt_tokenizer *tok)
{
    static const char *const texts[] = {"Alice is a teacher in Paris.",
                                        "Who",
                                        "Tell me about Bob, who lives by the sea.",
                                        "The cat",
                                        "Name three colours and three animals, please.",
                                        "What is two plus two?",
                                        "Where does Carol work?"};
    enum { N = 7, MAX_NEW = 24 };
    int32_t *prompts[N], *one[N], *bat[N];
    int np[N], n_one[N], n_bat[N];
    char e[1024];
    lt_generate_opts go = {0};
    lt_sampler_defaults(&go.sampler);
    go.max_new_tokens = MAX_NEW;
    go.stop_at_eos = true;
    for (int i = 0; i < N; i++) {
        lt_chat_msg msg = {"user", texts[i]};
        lt_tok_ids t = {0};
        CHECK(lt_tokenizer_encode_chat(tok, LT_CHAT_CHATML, &msg, 1, true, &t, e, sizeof e) ==
                  LT_TOK_OK,
              "encode: %s", e);
        prompts[i] = t.ids;
        np[i] = (int)t.n;
        free(t.offsets);
        free(t.mask);
        one[i] = malloc(MAX_NEW * sizeof(int32_t));
        bat[i] = malloc(MAX_NEW * sizeof(int32_t));
        CHECK(lt_generate(m, prompts[i], np[i], &go, one[i], &n_one[i], e, sizeof e) == LT_MODEL_OK,
              "generate %d: %s", i, e);
    }
    for (int batch = 1; batch <= 7; batch += 3) { /* 1, 4 (slots reused), 7 */
        CHECK(lt_generate_batch(m, (const int32_t *const *)prompts, np, N, batch, &go, bat, n_bat,
                                NULL, NULL, e, sizeof e) == LT_MODEL_OK,
              "batch %d: %s", batch, e);
        for (int i = 0; i < N; i++)
            CHECK(n_bat[i] == n_one[i] && !memcmp(bat[i], one[i], n_one[i] * sizeof(int32_t)),
                  "batch %d, prompt %d: %d tokens vs %d alone, or different ids", batch, i,
                  n_bat[i], n_one[i]);
    }
    int stopped = 0, total = 0;
    for (int i = 0; i < N; i++) {
        stopped += n_one[i] < MAX_NEW;
        total += n_one[i];
    }
    printf("batched generation: %d prompts, %d tokens, %d stopped before %d\n", N, total, stopped,
           MAX_NEW);
    CHECK(total > 2 * N && stopped > 0, "rows of different lengths, some stopped at eos");
    /* a right-padded batch gives each row its own logits */
    const int64_t V = lt_model_get_config(m)->vocab, T = np[4];
    lt_forward_opts fo = {.max_batch = 3, .max_seq = T};
    lt_forward *fw = NULL;
    lt_tensor *lg = NULL;
    int32_t *ids = calloc((size_t)(3 * T), sizeof(int32_t));
    float *xb = malloc((size_t)(3 * T * V) * sizeof(float)), *x1 = malloc((size_t)(T * V) * 4);
    int rows[3] = {4, 0, 1};
    for (int b = 0; b < 3; b++)
        memcpy(ids + b * T, prompts[rows[b]], (size_t)np[rows[b]] * sizeof(int32_t));
    CHECK(lt_forward_new(m, &fo, &fw, e, sizeof e) == LT_MODEL_OK &&
              lt_forward_run(fw, ids, 3, T, NULL, &lg, e, sizeof e) == LT_MODEL_OK &&
              lt_tensor_download_f32(lg, xb, 3 * T * V) == LT_OK,
          "padded batch: %s", e);
    double worst = 0;
    for (int b = 0; b < 3; b++) {
        int64_t L = np[rows[b]];
        CHECK(lt_forward_run(fw, prompts[rows[b]], 1, L, NULL, &lg, e, sizeof e) == LT_MODEL_OK &&
                  lt_tensor_download_f32(lg, x1, L * V) == LT_OK,
              "row alone: %s", e);
        for (int64_t k = 0; k < L * V; k++)
            worst = fmax(worst, fabs(xb[b * T * V + k] - x1[k]));
    }
    CHECK(worst <= 1e-3, "padded batch logits differ from each row alone by %g", worst);
    lt_forward_free(fw);
    free(ids);
    free(xb);
    free(x1);
    for (int i = 0; i < N; i++) {
        free(prompts[i]);
        free(one[i]);
        free(bat[i]);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe_test_eval_mc_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_import_golden();
    test_field_map();
    test_hand_worked_table();
    char err[1024] = "";
    lt_device *dev = lt_device_open("cpu", 1, err, sizeof err);
    lt_model *m = NULL;
    lt_tokenizer *tok = NULL;
    CHECK(dev != NULL, "device: %s", err);
    if (dev &&
        lt_model_load(MODEL_DIR, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof err) == LT_MODEL_OK &&
        lt_tokenizer_load_dir(MODEL_DIR, &tok, err, sizeof err) == LT_TOK_OK) {
        test_mc_logliks(m, tok);
        test_batched_generation(m, tok);
    } else {
        CHECK(0, "loading %s: %s", MODEL_DIR, err);
    }
    lt_tokenizer_free(tok);
    lt_model_free(m);
    lt_device_close(dev);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
