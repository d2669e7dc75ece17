/*
 * metrics.c - exact match, ROUGE-L, BLEU (sacrebleu's 13a tokenizer and corpus statistics),
 * classification tables, multiple choice, JSON validity and perplexity (see metrics.h for the
 * definitions followed). Pure functions: no model, no store, no printing.
 */
#include "eval/metrics.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lt_eval_status_str(lt_eval_status s)
{
    switch (s) {
    case LT_EVAL_OK: return "ok";
    case LT_EVAL_USAGE: return "bad usage";
    case LT_EVAL_NOT_FOUND: return "not found";
    case LT_EVAL_DATA: return "unsuitable data";
    case LT_EVAL_MODEL: return "model error";
    case LT_EVAL_STORE: return "store error";
    case LT_EVAL_NOMEM: return "out of memory";
    case LT_EVAL_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

/* ---- a growing byte buffer ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_putc(sbuf *b, char c)
{
    if (b->oom)
        return;
    if (b->n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char *g = realloc(b->p, cap);
        if (!g) {
            b->oom = true;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    b->p[b->n++] = c;
    b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_putc(b, s[i]);
}

/* Returns the string (empty when nothing was written), NULL on out of memory. */
static char *sb_finish(sbuf *b)
{
    if (!b->oom && !b->p)
        sb_putc(b, 0), b->n = 0;
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }
static bool is_punct(unsigned char c) { return c > 0x20 && c < 0x7f && !is_alnum(c); }

/* Python's str.isspace() for the code point starting at s; *len gets its byte length (0 when
 * not whitespace). */
static size_t py_space(const unsigned char *s)
{
    unsigned c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f))
        return 1;
    if (c == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
        return 2;
    if (c == 0xe1 && s[1] == 0x9a && s[2] == 0x80) /* U+1680 */
        return 3;
    if (c == 0xe2 && s[1] == 0x80 &&
        (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf)) /* U+2000..200A, ... */
        return s[2] >= 0x80 ? 3 : 0;
    if (c == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) /* U+205F */
        return 3;
    if (c == 0xe3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
        return 3;
    return 0;
}

/* ---- exact match ---- */

int lt_em_flags_parse(const char *s)
{
    if (!s)
        return -1;
    if (!strcmp(s, "none"))
        return 0;
    if (!strcmp(s, "squad"))
        return LT_EM_SQUAD;
    int f = 0;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 4 && !strncmp(p, "case", 4))
            f |= LT_EM_CASE;
        else if (n == 5 && !strncmp(p, "punct", 5))
            f |= LT_EM_PUNCT;
        else if (n == 8 && !strncmp(p, "articles", 8))
            f |= LT_EM_ARTICLES;
        else if (n == 5 && !strncmp(p, "space", 5))
            f |= LT_EM_SPACE;
        else
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return p == s ? -1 : f;
}

void lt_em_flags_name(int flags, char *buf, size_t n)
{
    static const char *names[] = {"case", "punct", "articles", "space"};
    if (n == 0)
        return;
    snprintf(buf, n, "%s", flags ? "" : "none");
    for (int i = 0; i < 4; i++) {
        size_t used = strlen(buf);
        if (flags & (1 << i))
            snprintf(buf + used, n - used, "%s%s", used ? "," : "", names[i]);
    }
}

/* Whether [p, p+n) is a whole word "a", "an" or "the" (bounded by non-alphanumerics). */
static bool is_article(const char *s, size_t i, size_t len, size_t *n)
{
    static const char *arts[] = {"the", "an", "a"};
    if (i > 0 && (is_alnum((unsigned char)s[i - 1]) || s[i - 1] == '_' ||
                  (unsigned char)s[i - 1] >= 0x80))
        return false;
    for (int k = 0; k < 3; k++) {
        size_t m = strlen(arts[k]);
        if (i + m <= len && !memcmp(s + i, arts[k], m) &&
            (i + m == len || !(is_alnum((unsigned char)s[i + m]) || s[i + m] == '_' ||
                               (unsigned char)s[i + m] >= 0x80))) {
            *n = m;
            return true;
        }
    }
    return false;
}

char *lt_em_normalize(const char *s, int flags)
{
    sbuf a = {0}, b = {0};
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        char c = (flags & LT_EM_CASE) ? lower(s[i]) : s[i];
        if ((flags & LT_EM_PUNCT) && is_punct((unsigned char)c))
            continue;
        sb_putc(&a, c);
    }
    char *t = sb_finish(&a);
    if (!t)
        return NULL;
    len = strlen(t);
    if (flags & LT_EM_ARTICLES) {
        for (size_t i = 0; i < len; i++) {
            size_t m;
            if (is_article(t, i, len, &m)) {
                sb_putc(&b, ' ');
                i += m - 1;
            } else
                sb_putc(&b, t[i]);
        }
        free(t);
        if (!(t = sb_finish(&b)))
            return NULL;
        len = strlen(t);
    }
    if (flags & LT_EM_SPACE) {
        sbuf c = {0};
        const unsigned char *u = (const unsigned char *)t;
        bool pending = false;
        for (size_t i = 0; i < len;) {
            size_t w = py_space(u + i);
            if (w) {
                pending = c.n > 0;
                i += w;
                continue;
            }
            if (pending)
                sb_putc(&c, ' ');
            pending = false;
            sb_putc(&c, t[i++]);
        }
        free(t);
        t = sb_finish(&c);
    }
    return t;
}

int lt_exact_match(const char *pred, const char *ref, int flags)
{
    char *a = lt_em_normalize(pred, flags), *b = lt_em_normalize(ref, flags);
    int r = (a && b) ? !strcmp(a, b) : -1;
    free(a);
    free(b);
    return r;
}

/* ---- token lists interned to integers ---- */

typedef struct toks {
    const char **s; /* start of each token (inside a caller's string) */
    size_t *len;
    int *id;        /* interned id: equal tokens have equal ids */
    int n, cap;
} toks;

static void toks_free(toks *t)
{
    free(t->s);
    free(t->len);
    free(t->id);
    memset(t, 0, sizeof(*t));
}

static bool toks_push(toks *t, const char *s, size_t len)
{
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        const char **ns = realloc(t->s, (size_t)cap * sizeof(*ns));
        if (!ns)
            return false;
        t->s = ns;
        size_t *nl = realloc(t->len, (size_t)cap * sizeof(*nl));
        if (!nl)
            return false;
        t->len = nl;
        int *ni = realloc(t->id, (size_t)cap * sizeof(*ni));
        if (!ni)
            return false;
        t->id = ni;
        t->cap = cap;
    }
    t->s[t->n] = s;
    t->len[t->n] = len;
    t->id[t->n] = -1;
    t->n++;
    return true;
}

/* Splits on spaces (the tokenizers below leave single spaces between tokens). */
static bool toks_split(toks *t, const char *s)
{
    while (*s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n && !toks_push(t, s, n))
            return false;
        s += n;
    }
    return true;
}

/* Gives equal tokens across the lists equal ids. Quadratic in distinct tokens, which is fine
 * for sentences. */
static bool toks_intern(toks **lists, int n_lists)
{
    int n_dist = 0, cap = 0;
    const char **ds = NULL;
    size_t *dl = NULL;
    bool ok = true;
    for (int l = 0; l < n_lists && ok; l++) {
        toks *t = lists[l];
        for (int i = 0; i < t->n; i++) {
            int k;
            for (k = 0; k < n_dist; k++)
                if (dl[k] == t->len[i] && !memcmp(ds[k], t->s[i], dl[k]))
                    break;
            if (k == n_dist) {
                if (n_dist == cap) {
                    cap = cap ? cap * 2 : 64;
                    const char **g = realloc(ds, (size_t)cap * sizeof(*g));
                    size_t *h = g ? realloc(dl, (size_t)cap * sizeof(*h)) : NULL;
                    if (g)
                        ds = g;
                    if (!g || !h) {
                        ok = false;
                        break;
                    }
                    dl = h;
                }
                ds[n_dist] = t->s[i];
                dl[n_dist++] = t->len[i];
            }
            t->id[i] = k;
        }
    }
    free(ds);
    free(dl);
    return ok;
}

/* ---- ROUGE-L ---- */

/* rouge-score's tokenize: lowercase, runs of [^a-z0-9] become one space. */
static char *rouge_tokenize(const char *s)
{
    sbuf b = {0};
    bool space = true;
    for (; *s; s++) {
        char c = lower(*s);
        if ((c >= 'a' && c <= 'z') || is_digit((unsigned char)c)) {
            sb_putc(&b, c);
            space = false;
        } else if (!space) {
            sb_putc(&b, ' ');
            space = true;
        }
    }
    return sb_finish(&b);
}

static int64_t lcs(const int *a, int na, const int *b, int nb, bool *oom)
{
    int64_t *prev = calloc((size_t)nb + 1, sizeof(int64_t));
    int64_t *cur = calloc((size_t)nb + 1, sizeof(int64_t));
    int64_t r = 0;
    if (!prev || !cur) {
        *oom = true;
        goto out;
    }
    for (int i = 1; i <= na; i++) {
        for (int j = 1; j <= nb; j++)
            cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1
                                          : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
        int64_t *t = prev;
        prev = cur;
        cur = t;
    }
    r = prev[nb];
out:
    free(prev);
    free(cur);
    return r;
}

lt_eval_status lt_rouge_l(const char *pred, const char *ref, lt_rouge *out)
{
    lt_eval_status rc = LT_EVAL_NOMEM;
    char *tp = rouge_tokenize(pred), *tr = rouge_tokenize(ref);
    toks a = {0}, b = {0};
    memset(out, 0, sizeof(*out));
    if (!tp || !tr || !toks_split(&a, tp) || !toks_split(&b, tr) ||
        !toks_intern((toks *[]){&a, &b}, 2))
        goto out;
    rc = LT_EVAL_OK;
    if (a.n == 0 || b.n == 0)
        goto out;
    bool oom = false;
    int64_t l = lcs(a.id, a.n, b.id, b.n, &oom);
    if (oom) {
        rc = LT_EVAL_NOMEM;
        goto out;
    }
    out->precision = (double)l / a.n;
    out->recall = (double)l / b.n;
    if (out->precision + out->recall > 0)
        out->f = 2 * out->precision * out->recall / (out->precision + out->recall);
out:
    toks_free(&a);
    toks_free(&b);
    free(tp);
    free(tr);
    return rc;
}

/* ---- BLEU ---- */

static char *replace_all(char *s, const char *from, const char *to)
{
    if (!s || !strstr(s, from))
        return s;
    sbuf b = {0};
    size_t fl = strlen(from);
    for (const char *p = s; *p;) {
        if (!strncmp(p, from, fl)) {
            sb_puts(&b, to, strlen(to));
            p += fl;
        } else
            sb_putc(&b, *p++);
    }
    free(s);
    return sb_finish(&b);
}

/* The first regex of sacrebleu's TokenizerRegexp: [{-~[-` -&(-+:-@/] gets spaces around. */
static bool tok13a_sym(unsigned char c)
{
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

char *lt_bleu_tokenize_13a(const char *in)
{
    /* sacrebleu: sent.rstrip(), then Tokenizer13a */
    size_t len = strlen(in);
    while (len > 0) {
        size_t k = 1;
        while (k < len && k < 3 && ((unsigned char)in[len - k] & 0xc0) == 0x80)
            k++;
        if (py_space((const unsigned char *)in + len - k) != k)
            break;
        len -= k;
    }
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    memcpy(s, in, len);
    s[len] = 0;
    s = replace_all(s, "<skipped>", "");
    s = replace_all(s, "-\n", "");
    s = replace_all(s, "\n", " ");
    if (s && strchr(s, '&')) {
        s = replace_all(s, "&quot;", "\"");
        s = replace_all(s, "&amp;", "&");
        s = replace_all(s, "&lt;", "<");
        s = replace_all(s, "&gt;", ">");
    }
    if (!s)
        return NULL;
    /* the four substitutions, each a left-to-right pass with Python's non-overlapping matches */
    sbuf b = {0};
    sb_putc(&b, ' ');
    for (const char *p = s; *p; p++) {
        if (tok13a_sym((unsigned char)*p)) {
            sb_putc(&b, ' ');
            sb_putc(&b, *p);
            sb_putc(&b, ' ');
        } else
            sb_putc(&b, *p);
    }
    sb_putc(&b, ' ');
    free(s);
    for (int pass = 0; pass < 3; pass++) {
        char *t = sb_finish(&b);
        if (!t)
            return NULL;
        memset(&b, 0, sizeof(b));
        size_t n = strlen(t);
        for (size_t i = 0; i < n;) {
            unsigned char c = (unsigned char)t[i], d = i + 1 < n ? (unsigned char)t[i + 1] : 0;
            bool pd = d == '.' || d == ',', pc = c == '.' || c == ',';
            if (pass == 0 && d && !is_digit(c) && pd) { /* ([^0-9])([\.,]) -> \1 \2 */
                sb_putc(&b, (char)c), sb_putc(&b, ' '), sb_putc(&b, (char)d), sb_putc(&b, ' ');
                i += 2;
            } else if (pass == 1 && d && pc && !is_digit(d)) { /* ([\.,])([^0-9]) -> " \1 \2" */
                sb_putc(&b, ' '), sb_putc(&b, (char)c), sb_putc(&b, ' '), sb_putc(&b, (char)d);
                i += 2;
            } else if (pass == 2 && is_digit(c) && d == '-') { /* ([0-9])(-) -> \1 \2 */
                sb_putc(&b, (char)c), sb_putc(&b, ' '), sb_putc(&b, '-'), sb_putc(&b, ' ');
                i += 2;
            } else
                sb_putc(&b, t[i++]);
        }
        free(t);
    }
    char *t = sb_finish(&b);
    if (!t)
        return NULL;
    /* ' '.join(line.split()) */
    sbuf o = {0};
    const unsigned char *u = (const unsigned char *)t;
    bool pending = false;
    for (size_t i = 0, n = strlen(t); i < n;) {
        size_t w = py_space(u + i);
        if (w) {
            pending = o.n > 0;
            i += w;
            continue;
        }
        if (pending)
            sb_putc(&o, ' ');
        pending = false;
        sb_putc(&o, t[i++]);
    }
    free(t);
    return sb_finish(&o);
}

/* Occurrences of the n-gram at a[i..i+n) in b. */
static int64_t ngram_count(const int *g, int n, const int *b, int nb)
{
    int64_t c = 0;
    for (int j = 0; j + n <= nb; j++)
        if (!memcmp(g, b + j, (size_t)n * sizeof(int)))
            c++;
    return c;
}

lt_eval_status lt_bleu_add(lt_bleu_stats *st, const char *hyp, const char *const *refs,
                           int n_refs)
{
    lt_eval_status rc = LT_EVAL_NOMEM;
    if (n_refs < 1)
        return LT_EVAL_USAGE;
    char *th = lt_bleu_tokenize_13a(hyp);
    char **tr = calloc((size_t)n_refs, sizeof(char *));
    toks *lists = calloc((size_t)n_refs + 1, sizeof(toks));
    toks **lp = calloc((size_t)n_refs + 1, sizeof(toks *));
    if (!th || !tr || !lists || !lp || !toks_split(&lists[0], th))
        goto out;
    lp[0] = &lists[0];
    for (int r = 0; r < n_refs; r++) {
        if (!(tr[r] = lt_bleu_tokenize_13a(refs[r])) || !toks_split(&lists[r + 1], tr[r]))
            goto out;
        lp[r + 1] = &lists[r + 1];
    }
    if (!toks_intern(lp, n_refs + 1))
        goto out;
    const toks *h = &lists[0];
    /* closest reference length, ties to the shorter */
    int64_t best = -1, best_diff = 0;
    for (int r = 0; r < n_refs; r++) {
        int64_t rl = lists[r + 1].n, diff = llabs((long long)(h->n - rl));
        if (best < 0 || diff < best_diff || (diff == best_diff && rl < best)) {
            best = rl;
            best_diff = diff;
        }
    }
    st->sys_len += h->n;
    st->ref_len += best;
    for (int n = 1; n <= LT_BLEU_ORDER; n++) {
        if (h->n < n)
            break;
        st->total[n - 1] += h->n - n + 1;
        for (int i = 0; i + n <= h->n; i++) {
            /* each distinct n-gram once: skip if it occurred earlier */
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
                seen = !memcmp(h->id + i, h->id + j, (size_t)n * sizeof(int));
            if (seen)
                continue;
            int64_t ch = ngram_count(h->id + i, n, h->id, h->n), cr = 0;
            for (int r = 0; r < n_refs; r++) {
                int64_t c = ngram_count(h->id + i, n, lists[r + 1].id, lists[r + 1].n);
                if (c > cr)
                    cr = c;
            }
            st->correct[n - 1] += ch < cr ? ch : cr;
        }
    }
    rc = LT_EVAL_OK;
out:
    if (lists)
        for (int r = 0; r <= n_refs; r++)
            toks_free(&lists[r]);
    if (tr)
        for (int r = 0; r < n_refs; r++)
            free(tr[r]);
    free(lists);
    free(lp);
    free(tr);
    free(th);
    return rc;
}

double lt_bleu_score(const lt_bleu_stats *st, bool effective_order, double *precisions,
                     double *bp_out)
{
    double p[LT_BLEU_ORDER] = {0}, smooth = 1, bp = 1;
    int eff = LT_BLEU_ORDER;
    if (precisions)
        memset(precisions, 0, LT_BLEU_ORDER * sizeof(double));
    if (bp_out)
        *bp_out = 0;
    if (st->sys_len == 0)
        return 0;
    for (int n = 1; n <= LT_BLEU_ORDER; n++) {
        if (st->total[n - 1] == 0)
            break;
        if (effective_order)
            eff = n;
        if (st->correct[n - 1] == 0) {
            smooth *= 2;
            p[n - 1] = 100.0 / (smooth * (double)st->total[n - 1]);
        } else
            p[n - 1] = 100.0 * (double)st->correct[n - 1] / (double)st->total[n - 1];
    }
    if (st->sys_len < st->ref_len)
        bp = exp(1.0 - (double)st->ref_len / (double)st->sys_len);
    double sum = 0;
    for (int n = 0; n < eff; n++)
        sum += p[n] > 0 ? log(p[n]) : -9999999999.0; /* sacrebleu's my_log */
    if (precisions)
        memcpy(precisions, p, sizeof(p));
    if (bp_out)
        *bp_out = bp;
    return bp * exp(sum / eff);
}

/* ---- classification ---- */

void lt_classif_free(lt_classif *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_labels; i++)
        free(c->labels[i]);
    free(c->labels);
    free(c->confusion);
    free(c->precision);
    free(c->recall);
    free(c->f1);
    free(c->support);
    memset(c, 0, sizeof(*c));
}

static int label_index(char **labels, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(labels[i], s))
            return i;
    return -1;
}

lt_eval_status lt_classif_compute(const char *const *preds, const char *const *refs, int64_t n,
                                  int em_flags, lt_classif *c)
{
    memset(c, 0, sizeof(*c));
    char **np = calloc((size_t)n + 1, sizeof(char *)), **nr = calloc((size_t)n + 1, sizeof(char *));
    lt_eval_status rc = LT_EVAL_NOMEM;
    if (!np || !nr || !(c->labels = calloc((size_t)n + 1, sizeof(char *))))
        goto out;
    for (int64_t i = 0; i < n; i++) {
        if (!(np[i] = lt_em_normalize(preds[i], em_flags)) ||
            !(nr[i] = lt_em_normalize(refs[i], em_flags)))
            goto out;
        if (label_index(c->labels, c->n_labels, nr[i]) < 0) {
            if (!(c->labels[c->n_labels] = strdup(nr[i])))
                goto out;
            c->n_labels++;
        }
    }
    int L = c->n_labels;
    c->confusion = calloc((size_t)L * (size_t)(L + 1) + 1, sizeof(int64_t));
    c->precision = calloc((size_t)L + 1, sizeof(double));
    c->recall = calloc((size_t)L + 1, sizeof(double));
    c->f1 = calloc((size_t)L + 1, sizeof(double));
    c->support = calloc((size_t)L + 1, sizeof(int64_t));
    if (!c->confusion || !c->precision || !c->recall || !c->f1 || !c->support)
        goto out;
    c->n = n;
    for (int64_t i = 0; i < n; i++) {
        int r = label_index(c->labels, L, nr[i]), p = label_index(c->labels, L, np[i]);
        c->confusion[(size_t)r * (size_t)(L + 1) + (size_t)(p < 0 ? L : p)]++;
        c->support[r]++;
        c->n_correct += p == r;
    }
    c->accuracy = n ? (double)c->n_correct / (double)n : 0;
    for (int k = 0; k < L; k++) {
        int64_t tp = c->confusion[(size_t)k * (size_t)(L + 1) + (size_t)k], pred_k = 0;
        for (int r = 0; r < L; r++)
            pred_k += c->confusion[(size_t)r * (size_t)(L + 1) + (size_t)k];
        c->precision[k] = pred_k ? (double)tp / (double)pred_k : 0;
        c->recall[k] = c->support[k] ? (double)tp / (double)c->support[k] : 0;
        double s = c->precision[k] + c->recall[k];
        c->f1[k] = s > 0 ? 2 * c->precision[k] * c->recall[k] / s : 0;
        c->macro_f1 += c->f1[k] / L;
    }
    rc = LT_EVAL_OK;
out:
    for (int64_t i = 0; i < n && np && nr; i++) {
        free(np[i]);
        free(nr[i]);
    }
    free(np);
    free(nr);
    if (rc != LT_EVAL_OK)
        lt_classif_free(c);
    return rc;
}

bool lt_classif_detect(const char *const *refs, int64_t n, int em_flags, int max_labels)
{
    if (n < 2)
        return false;
    char **labels = calloc((size_t)max_labels + 1, sizeof(char *));
    int nl = 0;
    bool ok = labels != NULL;
    for (int64_t i = 0; i < n && ok; i++) {
        char *s = lt_em_normalize(refs[i], em_flags);
        if (!s || strlen(s) > 64 || !*s) {
            free(s);
            ok = false;
            break;
        }
        if (label_index(labels, nl, s) >= 0)
            free(s);
        else if (nl < max_labels)
            labels[nl++] = s;
        else {
            free(s);
            ok = false;
        }
    }
    ok = ok && n >= 2 * (int64_t)nl;
    for (int i = 0; i < nl; i++)
        free(labels[i]);
    free(labels);
    return ok;
}

/* ---- multiple choice, JSON, perplexity ---- */

int64_t lt_utf8_len(const char *s)
{
    int64_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

void lt_mc_score(const double *ll, const int64_t *n_chars, int n_choices, int gold, int *acc,
                 int *acc_norm)
{
    int best = 0, best_norm = 0;
    for (int i = 1; i < n_choices; i++) {
        if (ll[i] > ll[best])
            best = i;
        double a = ll[i] / (double)(n_chars[i] > 0 ? n_chars[i] : 1);
        double b = ll[best_norm] / (double)(n_chars[best_norm] > 0 ? n_chars[best_norm] : 1);
        if (a > b)
            best_norm = i;
    }
    *acc = best == gold;
    *acc_norm = best_norm == gold;
}

bool lt_json_valid(const char *s)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(s, &end, true);
    bool ok = j != NULL;
    cJSON_Delete(j);
    return ok;
}

double lt_perplexity(double nll_sum, int64_t n_tokens)
{
    return n_tokens > 0 ? exp(nll_sum / (double)n_tokens) : NAN;
}
