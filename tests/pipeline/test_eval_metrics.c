/*
 * test_eval_metrics.c - the evaluation metrics against their definitions: BLEU and the 13a
 * tokenizer against an independent Python implementation (tests/data/eval/metrics_ref.json,
 * made by gen_metrics_ref.py; the sacrebleu README example gives 48.53), ROUGE-L against the
 * same file and a hand-worked pair, exact match normalisations, classification tables,
 * multiple choice on a toy, JSON validity and perplexity.
 */
#include "eval/metrics.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

static bool near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static void test_bleu_matches_reference(cJSON *ref)
{
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "bleu"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        cJSON *hyps = cJSON_GetObjectItem(c, "hyps"), *refs = cJSON_GetObjectItem(c, "refs");
        int nh = cJSON_GetArraySize(hyps), nr = cJSON_GetArraySize(refs);
        lt_bleu_stats st = {0};
        for (int i = 0; i < nh; i++) {
            const char *rs[8];
            for (int r = 0; r < nr && r < 8; r++)
                rs[r] = cJSON_GetArrayItem(cJSON_GetArrayItem(refs, r), i)->valuestring;
            const char *h = cJSON_GetArrayItem(hyps, i)->valuestring;
            CHECK(lt_bleu_add(&st, h, rs, nr) == LT_EVAL_OK, "%s: add", name);
            /* sentence BLEU (effective order) per row */
            lt_bleu_stats one = {0};
            lt_bleu_add(&one, h, rs, nr);
            double want = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "sentence"), i)->valuedouble;
            double got = lt_bleu_score(&one, true, NULL, NULL);
            CHECK(near(got, want, 1e-9), "%s row %d: sentence BLEU %.6f, want %.6f", name, i,
                  got, want);
        }
        double p[4], bp;
        double s = lt_bleu_score(&st, false, p, &bp);
        double want = cJSON_GetObjectItem(c, "score")->valuedouble;
        CHECK(near(s, want, 1e-9), "%s: BLEU %.6f, want %.6f", name, s, want);
        CHECK(near(bp, cJSON_GetObjectItem(c, "bp")->valuedouble, 1e-12), "%s: bp", name);
        CHECK(st.sys_len == cJSON_GetObjectItem(c, "sys_len")->valueint &&
                  st.ref_len == cJSON_GetObjectItem(c, "ref_len")->valueint,
              "%s: lengths %lld/%lld", name, (long long)st.sys_len, (long long)st.ref_len);
        for (int n = 0; n < 4; n++) {
            CHECK(st.correct[n] ==
                      cJSON_GetArrayItem(cJSON_GetObjectItem(c, "correct"), n)->valueint,
                  "%s: %d-gram matches %lld", name, n + 1, (long long)st.correct[n]);
            CHECK(st.total[n] == cJSON_GetArrayItem(cJSON_GetObjectItem(c, "total"), n)->valueint,
                  "%s: %d-gram total %lld", name, n + 1, (long long)st.total[n]);
            CHECK(near(p[n],
                       cJSON_GetArrayItem(cJSON_GetObjectItem(c, "precisions"), n)->valuedouble,
                       1e-9),
                  "%s: p%d", name, n + 1);
        }
        if (!strcmp(name, "sacrebleu README"))
            CHECK(near(s, 48.53, 0.005), "the sacrebleu README example scores 48.53 (got %.4f)",
                  s);
    }
}

static void test_tokenizer_13a(cJSON *ref)
{
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "tokenize_13a"))
    {
        const char *in = cJSON_GetObjectItem(c, "in")->valuestring;
        const char *want = cJSON_GetObjectItem(c, "out")->valuestring;
        char *got = lt_bleu_tokenize_13a(in);
        CHECK(got && !strcmp(got, want), "13a(%s) = [%s], want [%s]", in, got ? got : "(null)",
              want);
        free(got);
    }
}

static void test_rouge_l(cJSON *ref)
{
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "rouge_l"))
    {
        lt_rouge r;
        const char *p = cJSON_GetObjectItem(c, "pred")->valuestring;
        CHECK(lt_rouge_l(p, cJSON_GetObjectItem(c, "ref")->valuestring, &r) == LT_EVAL_OK,
              "rouge ok");
        CHECK(near(r.precision, cJSON_GetObjectItem(c, "p")->valuedouble, 1e-12) &&
                  near(r.recall, cJSON_GetObjectItem(c, "r")->valuedouble, 1e-12) &&
                  near(r.f, cJSON_GetObjectItem(c, "f")->valuedouble, 1e-12),
              "rouge-L of [%s]: %f %f %f", p, r.precision, r.recall, r.f);
    }
    /* by hand: pred 4 tokens, ref 7, LCS "the gunman" = 2 -> P 1/2, R 2/7, F 4/11 */
    lt_rouge r;
    lt_rouge_l("police killed the gunman", "the gunman was shot dead by police", &r);
    CHECK(near(r.precision, 0.5, 1e-15) && near(r.recall, 2.0 / 7, 1e-15) &&
              near(r.f, 4.0 / 11, 1e-15),
          "hand-worked ROUGE-L");
    /* LCS is a subsequence, not a substring: a b c d vs a x b y d -> 3 */
    lt_rouge_l("a b c d", "a x b y d", &r);
    CHECK(near(r.precision, 0.75, 1e-15) && near(r.recall, 0.6, 1e-15), "LCS skips gaps");
}

static void test_exact_match(void)
{
    CHECK(lt_exact_match("Paris", "Paris", 0) == 1, "identical strings match");
    CHECK(lt_exact_match("Paris ", "Paris", 0) == 0, "no normalisation: trailing space differs");
    CHECK(lt_exact_match("  Paris \n", "Paris", LT_EM_SPACE) == 1, "space trims");
    CHECK(lt_exact_match("paris", "Paris", LT_EM_SPACE) == 0, "case kept without case flag");
    CHECK(lt_exact_match("paris", "Paris", LT_EM_CASE) == 1, "case flag");
    CHECK(lt_exact_match("Paris.", "Paris", LT_EM_PUNCT) == 1, "punct flag");
    CHECK(lt_exact_match("The Eiffel  Tower!", "eiffel tower", LT_EM_SQUAD) == 1, "squad");
    CHECK(lt_exact_match("Theory", "ory", LT_EM_SQUAD) == 0, "articles only as whole words");
    CHECK(lt_exact_match("an apple a day", "apple day", LT_EM_SQUAD) == 1, "articles dropped");
    char *n = lt_em_normalize("A man, a plan: the Canal!", LT_EM_SQUAD);
    CHECK(n && !strcmp(n, "man plan canal"), "squad normalisation gives [%s]", n ? n : "");
    free(n);
    CHECK(lt_em_flags_parse("squad") == LT_EM_SQUAD && lt_em_flags_parse("none") == 0 &&
              lt_em_flags_parse("case,space") == (LT_EM_CASE | LT_EM_SPACE) &&
              lt_em_flags_parse("bogus") == -1 && lt_em_flags_parse("") == -1 &&
              lt_em_flags_parse("case,") == LT_EM_CASE,
          "flag parsing");
    char buf[64];
    lt_em_flags_name(LT_EM_CASE | LT_EM_SPACE, buf, sizeof(buf));
    CHECK(!strcmp(buf, "case,space"), "flag names [%s]", buf);
    lt_em_flags_name(0, buf, sizeof(buf));
    CHECK(!strcmp(buf, "none"), "no flags");
}

static void test_classification(void)
{
    /* refs: pos pos neg neg neu ; preds: pos neg neg neg maybe */
    const char *refs[] = {"pos", "pos", "neg", "neg", "neu"};
    const char *preds[] = {"pos", "neg", "neg", " NEG", "maybe"};
    lt_classif c;
    CHECK(lt_classif_compute(preds, refs, 5, LT_EM_SPACE | LT_EM_CASE, &c) == LT_EVAL_OK, "ok");
    CHECK(c.n_labels == 3 && !strcmp(c.labels[0], "pos") && !strcmp(c.labels[2], "neu"),
          "labels in first-seen order");
    CHECK(c.n_correct == 3 && near(c.accuracy, 0.6, 1e-15), "accuracy 3/5");
    /* confusion rows ref, cols pred (+other): pos [1 1 0 0], neg [0 2 0 0], neu [0 0 0 1] */
    int64_t want[] = {1, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1};
    CHECK(!memcmp(c.confusion, want, sizeof(want)), "confusion matrix");
    CHECK(near(c.precision[0], 1.0, 1e-15) && near(c.recall[0], 0.5, 1e-15) &&
              near(c.f1[0], 2.0 / 3, 1e-15),
          "pos: P 1, R 1/2, F 2/3");
    CHECK(near(c.precision[1], 2.0 / 3, 1e-15) && near(c.recall[1], 1.0, 1e-15) &&
              near(c.f1[1], 0.8, 1e-15),
          "neg: P 2/3, R 1, F 4/5");
    CHECK(c.precision[2] == 0 && c.recall[2] == 0 && c.f1[2] == 0, "neu: zero division is 0");
    CHECK(near(c.macro_f1, (2.0 / 3 + 0.8) / 3, 1e-15), "macro F1");
    lt_classif_free(&c);

    const char *labels[] = {"yes", "no", "yes", "no", "yes", "no"};
    const char *free_text[] = {"the cat", "a dog", "a bird", "one fish", "two", "three"};
    CHECK(lt_classif_detect(labels, 6, LT_EM_SPACE, 20), "labels detected");
    CHECK(!lt_classif_detect(free_text, 6, LT_EM_SPACE, 20), "free text is not labels");
}

static void test_multiple_choice(void)
{
    /* lm-eval convention: acc by summed loglik, acc_norm by loglik per character */
    double ll[] = {-4.0, -6.0, -3.0};
    int64_t len[] = {2, 12, 1};
    int acc, accn;
    lt_mc_score(ll, len, 3, 1, &acc, &accn);
    /* argmax ll = 2; ll/len = -2, -0.5, -3 -> argmax 1 */
    CHECK(acc == 0 && accn == 1, "acc picks choice 2, acc_norm picks choice 1");
    lt_mc_score(ll, len, 3, 2, &acc, &accn);
    CHECK(acc == 1 && accn == 0, "gold 2");
    double tie[] = {-1.0, -1.0};
    int64_t tl[] = {1, 1};
    lt_mc_score(tie, tl, 2, 0, &acc, &accn);
    CHECK(acc == 1 && accn == 1, "ties go to the first choice");
    CHECK(lt_utf8_len(" Köln") == 5, "length in characters, not bytes");
}

static void test_json_and_ppl(void)
{
    CHECK(lt_json_valid("{\"a\": [1, 2]}"), "object");
    CHECK(lt_json_valid("  [1]\n"), "surrounding whitespace");
    CHECK(!lt_json_valid("{\"a\": 1} trailing"), "trailing text");
    CHECK(!lt_json_valid("{\"a\": }"), "malformed");
    CHECK(!lt_json_valid(""), "empty");
    CHECK(near(lt_perplexity(2.0 * 10, 10), exp(2.0), 1e-12), "ppl = exp(mean nll)");
    CHECK(isnan(lt_perplexity(0, 0)), "no tokens: NaN");
}

int main(void)
{
    char *s = read_file(LATHE_TEST_DATA "/eval/metrics_ref.json");
    cJSON *ref = s ? cJSON_Parse(s) : NULL;
    CHECK(ref != NULL, "read tests/data/eval/metrics_ref.json");
    if (ref) {
        test_bleu_matches_reference(ref);
        test_tokenizer_13a(ref);
        test_rouge_l(ref);
    }
    test_exact_match();
    test_classification();
    test_multiple_choice();
    test_json_and_ppl();
    cJSON_Delete(ref);
    free(s);
    return test_summary();
}
