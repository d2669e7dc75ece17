/*
 * data_filter.c - quality filters (a new version without the dropped rows, each drop
 * recorded with its rule) and the deterministic train/val/test split.
 *
 * Filters look at the sample text as lt_data_sample_text joins it. A row is dropped by the
 * first rule it breaks, in this order: min-chars, max-chars, repeated lines, repeated
 * n-grams, non-printable share, regexes in the order given.
 *
 * Split: rows are grouped by near-duplicate cluster (MinHash at threshold 0.7, verified, the
 * same machinery as dedup, looser than dedup's default so that pairs around 0.8 that LSH
 * might miss at 0.8 banding are still caught) so a cluster never straddles two splits; groups are ordered by a
 * seeded hash of their first row and filled into val, then test, then train until each has
 * its share of rows (per stratum with --stratify-by). Same seed, same split.
 */
#include "data_impl.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_data_filter_opts_default(lt_data_filter_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_repeated_line_ratio = -1;
    o->max_repeated_ngram_ratio = -1;
    o->max_nonprintable_ratio = -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Share of items in v[0..n) equal to an earlier item (sorts v). */
static double repeat_share(uint64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t dup = 0;
    for (size_t i = 1; i < n; i++)
        dup += v[i] == v[i - 1];
    return (double)dup / (double)n;
}

static double repeated_line_ratio(const char *t)
{
    size_t cap = 1;
    for (const char *p = t; *p; p++)
        cap += *p == '\n';
    uint64_t *h = malloc(cap * sizeof *h);
    if (!h)
        return 0;
    size_t n = 0;
    for (const char *p = t; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        size_t k = 0;
        while (k < l && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
            k++;
        if (k < l)
            h[n++] = lt_hash64(p, l, 11);
        p += l + (e ? 1 : 0);
    }
    double r = repeat_share(h, n);
    free(h);
    return r;
}

static double repeated_ngram_ratio(const char *t)
{
    lt_shingle_opts o = {.ngram = 3};
    uint64_t *u = NULL;
    /* distinct 3-grams vs all 3-grams: count all by counting words */
    size_t words = 0;
    bool in = false;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        bool sep = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
        if (!sep && !in)
            words++;
        in = !sep;
    }
    if (words < 4)
        return 0;
    size_t distinct = lt_shingles(t, strlen(t), &o, &u);
    free(u);
    size_t total = words - 2;
    return distinct >= total ? 0 : (double)(total - distinct) / (double)total;
}

static double nonprintable_ratio(const char *t)
{
    size_t cps = 0, bad = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if ((*p & 0xc0) == 0x80)
            continue;
        cps++;
        if ((*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r') || *p == 0x7f ||
            (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) ||
            (*p == 0xef && p[1] == 0xbf && p[2] == 0xbd)) /* U+FFFD replacement */
            bad++;
    }
    return cps ? (double)bad / (double)cps : 0;
}

/* The value of a field for regexes and stratification: "text" (everything), "response"
 * (last assistant turn or chosen), a top-level string (system, chosen, rejected, text), or
 * the turns of a role joined ("user", "assistant", "prompt" = user). malloc'd. */
static char *field_value(const char *json, const char *field)
{
    if (strcmp(field, "text") == 0 || strcmp(field, "all") == 0)
        return lt_data_sample_text(json, NULL);
    if (strcmp(field, "response") == 0 || strcmp(field, "output") == 0 ||
        strcmp(field, "label") == 0) {
        char *resp = NULL;
        free(lt_data_sample_text(json, &resp));
        return resp;
    }
    cJSON *j = cJSON_Parse(json);
    char *out = NULL;
    if (!j)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
    if (cJSON_IsString(v)) {
        out = strdup(v->valuestring);
        goto done;
    }
    const char *role = strcmp(field, "prompt") == 0 || strcmp(field, "instruction") == 0
                           ? "user"
                           : field;
    size_t cap = strlen(json) + 1, n = 0;
    out = calloc(cap, 1);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "turns"))
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "content");
        if (out && cJSON_IsString(r) && cJSON_IsString(c) && strcmp(r->valuestring, role) == 0) {
            size_t l = strlen(c->valuestring);
            if (n + l + 2 > cap)
                break;
            if (n)
                out[n++] = '\n';
            memcpy(out + n, c->valuestring, l + 1);
            n += l;
        }
    }
done:
    cJSON_Delete(j);
    return out ? out : strdup("");
}

typedef struct rx {
    char field[64];
    regex_t re;
} rx;

static int compile_regexes(const lt_data_filter_opts *o, rx *out, char *err, size_t errlen)
{
    for (int i = 0; i < o->n_regex; i++) {
        const char *eq = strchr(o->regex[i], '=');
        if (!eq || eq == o->regex[i] || (size_t)(eq - o->regex[i]) >= sizeof out[i].field) {
            snprintf(err, errlen, "--regex '%s': expected FIELD=REGEX, e.g. response=^As an AI",
                     o->regex[i]);
            for (int k = 0; k < i; k++)
                regfree(&out[k].re);
            return -1;
        }
        snprintf(out[i].field, sizeof out[i].field, "%.*s", (int)(eq - o->regex[i]),
                 o->regex[i]);
        int rc = regcomp(&out[i].re, eq + 1, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char m[200];
            regerror(rc, &out[i].re, m, sizeof m);
            snprintf(err, errlen, "--regex '%s': %s", o->regex[i], m);
            for (int k = 0; k < i; k++)
                regfree(&out[k].re);
            return -1;
        }
    }
    return 0;
}

/* Returns true and fills rule when the sample breaks a rule. */
static bool breaks_rule(const lt_data_filter_opts *o, rx *rxs, const lt_store_sample *s,
                        char *rule, size_t rlen)
{
    if (o->min_chars > 0 && s->n_chars < o->min_chars) {
        snprintf(rule, rlen, "min-chars %lld (has %lld)", (long long)o->min_chars,
                 (long long)s->n_chars);
        return true;
    }
    if (o->max_chars > 0 && s->n_chars > o->max_chars) {
        snprintf(rule, rlen, "max-chars %lld (has %lld)", (long long)o->max_chars,
                 (long long)s->n_chars);
        return true;
    }
    bool need_text = o->max_repeated_line_ratio >= 0 || o->max_repeated_ngram_ratio >= 0 ||
                     o->max_nonprintable_ratio >= 0;
    char *text = need_text ? lt_data_sample_text(s->data, NULL) : NULL;
    bool hit = false;
    double v;
    if (text && o->max_repeated_line_ratio >= 0 &&
        (v = repeated_line_ratio(text)) > o->max_repeated_line_ratio) {
        snprintf(rule, rlen, "max-repeated-line-ratio %g (has %.3f)", o->max_repeated_line_ratio,
                 v);
        hit = true;
    } else if (text && o->max_repeated_ngram_ratio >= 0 &&
               (v = repeated_ngram_ratio(text)) > o->max_repeated_ngram_ratio) {
        snprintf(rule, rlen, "max-repeated-ngram-ratio %g (has %.3f)",
                 o->max_repeated_ngram_ratio, v);
        hit = true;
    } else if (text && o->max_nonprintable_ratio >= 0 &&
               (v = nonprintable_ratio(text)) > o->max_nonprintable_ratio) {
        snprintf(rule, rlen, "max-nonprintable-ratio %g (has %.3f)", o->max_nonprintable_ratio,
                 v);
        hit = true;
    }
    free(text);
    for (int i = 0; !hit && i < o->n_regex; i++) {
        char *f = field_value(s->data, rxs[i].field);
        if (f && regexec(&rxs[i].re, f, 0, NULL, 0) == 0) {
            snprintf(rule, rlen, "regex %s", o->regex[i]);
            hit = true;
        }
        free(f);
    }
    return hit;
}

lt_data_status lt_data_filter(lt_store *st, const char *name, const lt_data_filter_opts *o,
                              lt_data_filter_result *res, char *err, size_t errlen)
{
    lt_store_version v;
    rx rxs[LT_DATA_MAX_REGEX];
    lt_store_iter *it = NULL;
    lt_data_status r = LT_DATA_STORE;
    memset(res, 0, sizeof *res);
    if (o->n_regex > LT_DATA_MAX_REGEX) {
        snprintf(err, errlen, "at most %d --regex rules", LT_DATA_MAX_REGEX);
        return LT_DATA_USAGE;
    }
    if (compile_regexes(o, rxs, err, errlen) != 0)
        return LT_DATA_USAGE;
    if (lt_store_version_get(st, name, o->version, &v) != LT_STORE_OK) {
        snprintf(err, errlen, "no dataset '%s'%s", name, o->version ? " at that version" : "");
        r = LT_DATA_NOT_FOUND;
        goto free_rx;
    }
    int64_t in_version = v.version_id;
    char format[32], params[1024];
    snprintf(format, sizeof format, "%s", v.format);
    snprintf(params, sizeof params,
             "{\"from_version\":%d,\"min_chars\":%lld,\"max_chars\":%lld,"
             "\"max_repeated_line_ratio\":%g,\"max_repeated_ngram_ratio\":%g,"
             "\"max_nonprintable_ratio\":%g,\"regex_rules\":%d}",
             v.version, (long long)o->min_chars, (long long)o->max_chars,
             o->max_repeated_line_ratio, o->max_repeated_ngram_ratio, o->max_nonprintable_ratio,
             o->n_regex);
    if (lt_store_begin(st) != LT_STORE_OK)
        goto store_error;
    if (lt_store_version_create(st, v.dataset_id, in_version, "filter", params, &res->version_id,
                                &res->version) != LT_STORE_OK ||
        lt_store_samples_iter(st, in_version, NULL, &it) != LT_STORE_OK)
        goto rollback;
    lt_store_sample s;
    lt_store_status ss;
    char rule[300];
    while ((ss = lt_store_samples_next(it, &s)) == LT_STORE_OK) {
        res->n_in++;
        if (o->progress && res->n_in % 4096 == 0)
            o->progress(o->progress_ctx, "rows", res->n_in,
                        v.n_rows > res->n_in ? v.n_rows : res->n_in);
        if (!breaks_rule(o, rxs, &s, rule, sizeof rule))
            continue;
        res->n_dropped++;
        if (lt_store_filter_drop_add(st, res->version_id, s.id, rule) != LT_STORE_OK)
            goto rollback;
    }
    lt_store_iter_free(it);
    it = NULL;
    if (o->progress && ss == LT_STORE_DONE)
        o->progress(o->progress_ctx, "rows", res->n_in, res->n_in);
    int64_t kept = 0;
    if (ss != LT_STORE_DONE ||
        lt_store_version_copy_members(st, in_version, res->version_id, &kept) != LT_STORE_OK ||
        lt_store_version_finish(st, res->version_id, format, kept, 0) != LT_STORE_OK ||
        lt_store_commit(st) != LT_STORE_OK)
        goto rollback;
    r = LT_DATA_OK;
    goto free_rx;
rollback:
    lt_store_iter_free(it);
    lt_store_rollback(st);
store_error:
    snprintf(err, errlen, "database error while filtering: %s", lt_store_errmsg(st));
    res->version_id = 0;
free_rx:
    for (int i = 0; i < o->n_regex; i++)
        regfree(&rxs[i].re);
    return r;
}

/* ---- split ---- */

typedef struct grp {
    int64_t id;       /* first row of the cluster */
    uint64_t order;   /* seeded hash */
    int64_t n;        /* rows */
    char *stratum;
    int split;        /* 0 train, 1 val, 2 test */
} grp;

static int cmp_grp(const void *a, const void *b)
{
    const grp *x = a, *y = b;
    int c = strcmp(x->stratum, y->stratum);
    if (c)
        return c;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

lt_data_status lt_data_split(lt_store *st, const char *name, const lt_data_split_opts *o,
                             lt_data_split_result *res, char *err, size_t errlen)
{
    lt_data_status r;
    lt_store_version v;
    int64_t *rows = NULL, *ids = NULL, n = 0, *sample_ids = NULL, *uniq = NULL;
    char **strata = NULL;
    grp *g = NULL;
    size_t ng = 0;
    lt_store_iter *it = NULL;
    memset(res, 0, sizeof *res);
    if (o->val < 0 || o->test < 0 || o->val + o->test >= 1.0) {
        snprintf(err, errlen, "--val and --test must be >= 0 and leave a share for train");
        return LT_DATA_USAGE;
    }
    if (lt_store_version_get(st, name, o->version, &v) != LT_STORE_OK) {
        snprintf(err, errlen, "no dataset '%s'%s", name, o->version ? " at that version" : "");
        return LT_DATA_NOT_FOUND;
    }
    res->version_id = v.version_id;
    int version = v.version;
    /* near-duplicate groups of the version's members, in row order */
    lt_data_dedup_opts dd;
    lt_data_dedup_result dr;
    lt_data_dedup_opts_default(&dd);
    dd.threshold = 0.7; /* looser than dedup's 0.8, so pairs near 0.8 are caught too */
    dd.version = version;
    dd.dry_run = true;
    dd.group_rows_out = &rows;
    dd.group_ids_out = &ids;
    dd.n_groups_out = &n;
    dd.progress = o->progress;
    dd.progress_ctx = o->progress_ctx;
    r = lt_data_dedup(st, name, &dd, &dr, err, errlen);
    if (r != LT_DATA_OK)
        return r;
    r = LT_DATA_NOMEM;
    sample_ids = malloc((size_t)(n ? n : 1) * sizeof *sample_ids);
    strata = calloc((size_t)(n ? n : 1), sizeof *strata);
    uniq = malloc((size_t)(n ? n : 1) * sizeof *uniq);
    if (!sample_ids || !strata || !uniq)
        goto done;
    if (lt_store_samples_iter(st, res->version_id, NULL, &it) != LT_STORE_OK)
        goto store_error;
    lt_store_sample s;
    int64_t k = 0;
    while (lt_store_samples_next(it, &s) == LT_STORE_OK && k < n) {
        if (s.row != rows[k]) {
            snprintf(err, errlen, "the dataset changed while splitting; run split again");
            r = LT_DATA_STORE;
            goto done;
        }
        sample_ids[k] = s.id;
        if (o->stratify_by) {
            char *f = field_value(s.data, o->stratify_by);
            if (f && strlen(f) > 200)
                f[200] = '\0';
            strata[k] = f;
        }
        if (!strata[k] && !(strata[k] = strdup("")))
            goto done;
        k++;
    }
    lt_store_iter_free(it);
    it = NULL;
    /* groups: unique cluster ids */
    memcpy(uniq, ids, (size_t)n * sizeof *uniq);
    qsort(uniq, (size_t)n, sizeof *uniq, cmp_i64);
    for (int64_t i = 0; i < n; i++)
        if (ng == 0 || uniq[ng - 1] != uniq[i])
            uniq[ng++] = uniq[i];
    g = calloc(ng ? ng : 1, sizeof *g);
    if (!g)
        goto done;
    for (size_t i = 0; i < ng; i++) {
        g[i].id = uniq[i];
        g[i].order = lt_hash64(&uniq[i], sizeof uniq[i], o->seed * 0x9e3779b97f4a7c15ull + 1);
    }
    for (int64_t i = 0; i < n; i++) {
        grp key = {.id = ids[i]};
        grp *x = bsearch(&key, g, ng, sizeof *g, cmp_i64); /* id is the first field */
        if (!x->stratum)
            x->stratum = strata[i];
        x->n++;
    }
    qsort(g, ng, sizeof *g, cmp_grp);
    for (size_t a = 0; a < ng;) {
        size_t b = a;
        int64_t total = 0, nv = 0, nt = 0;
        while (b < ng && strcmp(g[b].stratum, g[a].stratum) == 0)
            total += g[b++].n;
        int64_t want_v = (int64_t)(o->val * (double)total + 0.5);
        int64_t want_t = (int64_t)(o->test * (double)total + 0.5);
        for (size_t i = a; i < b; i++) {
            if (nv < want_v) {
                g[i].split = 1;
                nv += g[i].n;
            } else if (nt < want_t) {
                g[i].split = 2;
                nt += g[i].n;
            }
        }
        a = b;
    }
    /* back to id order for lookups */
    for (size_t i = 0; i < ng; i++)
        g[i].stratum = NULL;
    qsort(g, ng, sizeof *g, cmp_i64);
    static const char *names[] = {"train", "val", "test"};
    if (lt_store_begin(st) != LT_STORE_OK || lt_store_split_clear(st, res->version_id) != LT_STORE_OK)
        goto store_error;
    for (int64_t i = 0; i < n; i++) {
        if (o->progress && i % 4096 == 0)
            o->progress(o->progress_ctx, "splits", i, n);
        grp key = {.id = ids[i]};
        grp *x = bsearch(&key, g, ng, sizeof *g, cmp_i64);
        if (lt_store_split_set(st, res->version_id, sample_ids[i], names[x->split],
                               (int64_t)o->seed) != LT_STORE_OK)
            goto store_error;
        if (x->split == 0)
            res->n_train++;
        else if (x->split == 1)
            res->n_val++;
        else
            res->n_test++;
    }
    if (lt_store_commit(st) != LT_STORE_OK)
        goto store_error;
    if (o->progress)
        o->progress(o->progress_ctx, "splits", n, n);
    r = LT_DATA_OK;
    goto done;
store_error:
    snprintf(err, errlen, "database error while splitting: %s", lt_store_errmsg(st));
    lt_store_rollback(st);
    r = LT_DATA_STORE;
done:
    if (r == LT_DATA_NOMEM)
        snprintf(err, errlen, "out of memory while splitting");
    lt_store_iter_free(it);
    for (int64_t i = 0; strata && i < n; i++)
        free(strata[i]);
    free(strata);
    free(sample_ids);
    free(uniq);
    free(g);
    free(rows);
    free(ids);
    return r;
}
