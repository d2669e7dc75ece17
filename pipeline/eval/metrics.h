/*
 * metrics.h - the scores lathe's evaluation reports, each as its reference implementation
 * defines it, as pure functions on strings and numbers (no model, no store, no terminal).
 *
 *  - exact match after optional normalisations (SQuAD's evaluate-v1.1 set: lowercase, drop
 *    punctuation, drop the articles a/an/the, collapse whitespace);
 *  - ROUGE-L (Google's rouge-score, no stemmer): lowercase, [^a-z0-9]+ -> space, split; LCS;
 *    P = LCS/|pred|, R = LCS/|ref|, F = 2PR/(P+R) (0 when either side has no tokens);
 *  - BLEU (sacrebleu 2.x defaults): the 13a tokenizer, n-grams up to 4 with clipped counts
 *    summed over the corpus, closest reference length (ties to the shorter), brevity penalty
 *    exp(1 - r/c) when c < r, "exp" smoothing (the k-th order with no match gets precision
 *    1 / (2^k * total)), score = 100 * BP * exp(mean log p_n);
 *  - classification accuracy, per-class precision/recall/F1 and a confusion matrix;
 *  - multiple choice acc and acc_norm from summed continuation log-probabilities (the
 *    lm-evaluation-harness convention: acc_norm divides by the choice's length in characters);
 *  - JSON validity (the whole response parses as one JSON value);
 *  - perplexity exp(sum NLL / count).
 *
 * Differences from the Python originals are limited to Unicode case folding: lowercasing here
 * is ASCII only (rouge-score then maps every non-ASCII character to a space anyway, except the
 * rare capitals whose lowercase is ASCII, such as the Kelvin sign).
 *
 * Ownership: functions returning char* return malloc'd strings the caller frees.
 */
#ifndef LATHE_EVAL_METRICS_H
#define LATHE_EVAL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lt_eval_status {
    LT_EVAL_OK = 0,
    LT_EVAL_USAGE,       /* a bad option or argument */
    LT_EVAL_NOT_FOUND,   /* no such dataset, split, run or eval */
    LT_EVAL_DATA,        /* the dataset cannot be evaluated this way (no references, ...) */
    LT_EVAL_MODEL,       /* the model, tokenizer or adapter failed to load or run */
    LT_EVAL_STORE,       /* the database reported an error */
    LT_EVAL_NOMEM,
    LT_EVAL_INTERRUPTED, /* the interrupt flag was raised */
} lt_eval_status;

const char *lt_eval_status_str(lt_eval_status s);

/* ---- exact match ---- */

enum {
    LT_EM_CASE = 1,     /* ASCII lowercase */
    LT_EM_PUNCT = 2,    /* drop ASCII punctuation (Python's string.punctuation) */
    LT_EM_ARTICLES = 4, /* drop the words a, an, the (after the case step, as SQuAD) */
    LT_EM_SPACE = 8,    /* collapse whitespace runs to one space, trim both ends */
    LT_EM_SQUAD = 15,   /* all four, in SQuAD's order: lower, punct, articles, whitespace */
};

/* Parses "none", "squad", or a comma list of case, punct, articles, space. -1 when bad. */
int lt_em_flags_parse(const char *s);
/* Writes the comma list for flags ("none" for 0) into buf. */
void lt_em_flags_name(int flags, char *buf, size_t n);

/* The normalised string (malloc'd), NULL when out of memory. */
char *lt_em_normalize(const char *s, int flags);
/* 1 when the normalised strings are equal, 0 when not, -1 when out of memory. */
int lt_exact_match(const char *pred, const char *ref, int flags);

/* ---- ROUGE-L ---- */

typedef struct lt_rouge {
    double precision, recall, f;
} lt_rouge;

/* ROUGE-L of pred against ref. LT_EVAL_NOMEM is the only failure. */
lt_eval_status lt_rouge_l(const char *pred, const char *ref, lt_rouge *out);

/* ---- BLEU ---- */

#define LT_BLEU_ORDER 4

/* Sufficient statistics, summed over segments; zero-initialise before adding. */
typedef struct lt_bleu_stats {
    int64_t correct[LT_BLEU_ORDER]; /* clipped n-gram matches, n = 1..4 */
    int64_t total[LT_BLEU_ORDER];   /* hypothesis n-grams */
    int64_t sys_len, ref_len;       /* tokens: hypotheses, closest references */
} lt_bleu_stats;

/* sacrebleu's 13a tokenization of s (malloc'd: tokens joined by single spaces). */
char *lt_bleu_tokenize_13a(const char *s);

/* Adds one segment: hypothesis hyp against n_refs references (n_refs >= 1). */
lt_eval_status lt_bleu_add(lt_bleu_stats *st, const char *hyp, const char *const *refs,
                           int n_refs);

/* The score in [0, 100] from the statistics. precisions (may be NULL) gets the 4 smoothed
 * precisions in percent, *bp (may be NULL) the brevity penalty. effective_order: average only
 * over the orders the hypotheses have (sacrebleu's sentence_bleu); false for corpus BLEU. */
double lt_bleu_score(const lt_bleu_stats *st, bool effective_order, double *precisions,
                     double *bp);

/* ---- classification ---- */

/* Labels are the distinct references in first-seen order; predictions outside them are
 * counted in an extra "other" column of the confusion matrix. */
typedef struct lt_classif {
    int n_labels;
    char **labels;        /* [n_labels] */
    int64_t *confusion;   /* [n_labels, n_labels + 1]: row = reference, column = prediction,
                             the last column = a prediction that is no label */
    double *precision, *recall, *f1; /* [n_labels]; 0 when undefined (sklearn's zero_division) */
    int64_t *support;     /* [n_labels] references of each label */
    int64_t n, n_correct;
    double accuracy, macro_f1;
} lt_classif;

/* Computes the table for n (prediction, reference) pairs, compared after normalising with
 * em_flags. Fills *out (free with lt_classif_free). */
lt_eval_status lt_classif_compute(const char *const *preds, const char *const *refs, int64_t n,
                                  int em_flags, lt_classif *out);
void lt_classif_free(lt_classif *c);

/* True when references look like labels: at most max_labels distinct normalised values,
 * each repeated on average at least twice, and none longer than 64 bytes. */
bool lt_classif_detect(const char *const *refs, int64_t n, int em_flags, int max_labels);

/* ---- multiple choice ---- */

/* One question: per-choice summed log-probabilities and the choices' lengths in characters
 * (code points). OUT *acc, *acc_norm: 1 when the argmax (first on ties) is gold. */
void lt_mc_score(const double *loglik, const int64_t *n_chars, int n_choices, int gold,
                 int *acc, int *acc_norm);

/* Length of s in code points (what Python's len() gives for valid UTF-8). */
int64_t lt_utf8_len(const char *s);

/* ---- JSON and perplexity ---- */

/* True when s (after surrounding whitespace) is exactly one JSON value. */
bool lt_json_valid(const char *s);

/* exp(nll_sum / n_tokens); NaN when n_tokens is 0. */
double lt_perplexity(double nll_sum, int64_t n_tokens);

#endif
