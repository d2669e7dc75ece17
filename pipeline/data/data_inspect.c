/*
 * data_inspect.c - statistics of a dataset version as one JSON report: formats, turns and
 * roles; length distributions (characters, and tokens when a counting hook is given);
 * empty and very short responses; most repeated responses; label balance for
 * classification-like data; for multiple-choice rows, the number of choices and where the
 * correct one sits (a position bias shows there); script mix by Unicode block; duplicate
 * rates once dedup ran.
 *
 * Reads the store only. The report's keys are documented by the CLI's text rendering.
 */
#include "data_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHORT_RESPONSE 8 /* characters: a response shorter than this is "very short" */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* min, percentiles, max and a power-of-two histogram of v (sorted in place). */
static cJSON *distribution(int64_t *v, size_t n, int64_t max_len)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)n);
    if (n == 0)
        return o;
    qsort(v, n, sizeof *v, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    cJSON_AddNumberToObject(o, "min", (double)v[0]);
    static const int pct[] = {10, 25, 50, 75, 90, 95, 99};
    for (size_t k = 0; k < sizeof pct / sizeof *pct; k++) {
        char key[8];
        snprintf(key, sizeof key, "p%d", pct[k]);
        size_t idx = (size_t)((double)pct[k] / 100.0 * (double)(n - 1) + 0.5);
        cJSON_AddNumberToObject(o, key, (double)v[idx]);
    }
    cJSON_AddNumberToObject(o, "max", (double)v[n - 1]);
    cJSON_AddNumberToObject(o, "mean", sum / (double)n);
    cJSON *h = cJSON_AddArrayToObject(o, "histogram");
    int64_t lo = 0, hi = 16;
    size_t i = 0;
    while (i < n) {
        size_t c = 0;
        while (i < n && v[i] < hi) {
            c++;
            i++;
        }
        cJSON *b = cJSON_CreateObject();
        cJSON_AddNumberToObject(b, "from", (double)lo);
        cJSON_AddNumberToObject(b, "to", (double)hi);
        cJSON_AddNumberToObject(b, "count", (double)c);
        cJSON_AddItemToArray(h, b);
        lo = hi;
        hi *= 2;
    }
    if (max_len > 0) {
        size_t over = 0;
        for (size_t k = 0; k < n; k++)
            over += v[k] > max_len;
        cJSON_AddNumberToObject(o, "max_len", (double)max_len);
        cJSON_AddNumberToObject(o, "truncated_share", (double)over / (double)n);
    }
    return o;
}

/* Script of a code point by Unicode block; NULL for digits, punctuation and spaces. */
static const char *script_of(uint32_t cp)
{
    if (cp < 0x80)
        return ((cp | 32) >= 'a' && (cp | 32) <= 'z') ? "Latin" : NULL;
    if (cp < 0x250)
        return (cp >= 0xc0 && cp != 0xd7 && cp != 0xf7) ? "Latin" : NULL;
    if (cp >= 0x370 && cp < 0x400)
        return "Greek";
    if (cp >= 0x400 && cp < 0x530)
        return "Cyrillic";
    if (cp >= 0x590 && cp < 0x600)
        return "Hebrew";
    if (cp >= 0x600 && cp < 0x780)
        return "Arabic";
    if (cp >= 0x900 && cp < 0x980)
        return "Devanagari";
    if (cp >= 0xe00 && cp < 0xe80)
        return "Thai";
    if (cp >= 0x1e00 && cp < 0x1f00)
        return "Latin";
    if ((cp >= 0x3040 && cp < 0x3100) || (cp >= 0x31f0 && cp < 0x3200))
        return "Kana";
    if ((cp >= 0x4e00 && cp < 0xa000) || (cp >= 0x3400 && cp < 0x4dc0) ||
        (cp >= 0x20000 && cp < 0x2a6e0))
        return "Han";
    if (cp >= 0xac00 && cp < 0xd7b0)
        return "Hangul";
    if (cp >= 0x1f300 && cp < 0x1faff)
        return "Emoji";
    if (cp >= 0x2000 && cp < 0x2070)
        return NULL; /* general punctuation */
    if (cp >= 0x3000 && cp < 0x3040)
        return NULL; /* CJK punctuation */
    return "Other";
}

enum { N_SCRIPTS = 14 };
static const char *script_names[N_SCRIPTS] = {"Latin", "Greek", "Cyrillic", "Hebrew", "Arabic",
                                              "Devanagari", "Thai", "Kana", "Han", "Hangul",
                                              "Emoji", "Other", NULL, NULL};

static void count_scripts(const char *s, int64_t counts[N_SCRIPTS])
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp = *p;
        int len = 1;
        if (cp >= 0xf0 && p[1] && p[2] && p[3]) {
            cp = ((cp & 7u) << 18) | ((p[1] & 63u) << 12) | ((p[2] & 63u) << 6) | (p[3] & 63u);
            len = 4;
        } else if (cp >= 0xe0 && p[1] && p[2]) {
            cp = ((cp & 15u) << 12) | ((p[1] & 63u) << 6) | (p[2] & 63u);
            len = 3;
        } else if (cp >= 0xc0 && p[1]) {
            cp = ((cp & 31u) << 6) | (p[1] & 63u);
            len = 2;
        }
        const char *sc = script_of(cp);
        for (int i = 0; sc && i < N_SCRIPTS && script_names[i]; i++)
            if (script_names[i] == sc || strcmp(script_names[i], sc) == 0) {
                counts[i]++;
                break;
            }
        p += len;
    }
}

typedef struct resp {
    uint64_t hash;
    int64_t row;
} resp;

static int cmp_resp(const void *a, const void *b)
{
    const resp *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

typedef struct group {
    uint64_t hash;
    int64_t row, count;
} group;

static int cmp_group(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Adds the response text of a row (re-read from the store) to an object. */
static void add_response_text(lt_store *st, int64_t version_id, int64_t row, cJSON *o)
{
    lt_store_sample s;
    if (lt_store_sample_get(st, version_id, row, &s) != LT_STORE_OK)
        return;
    char *r = NULL;
    free(lt_data_sample_text(s.data, &r));
    if (r && strlen(r) > 200)
        r[200] = '\0';
    cJSON_AddStringToObject(o, "response", r ? r : "");
    free(r);
}

lt_data_status lt_data_inspect(lt_store *st, const char *name, const lt_data_inspect_opts *o,
                               void **report, char *err, size_t errlen)
{
    lt_store_version v;
    lt_store_iter *it = NULL;
    lt_data_status r = LT_DATA_NOMEM;
    *report = NULL;
    if (lt_store_version_get(st, name, o->version, &v) != LT_STORE_OK) {
        snprintf(err, errlen, "no dataset '%s'%s", name, o->version ? " at that version" : "");
        return LT_DATA_NOT_FOUND;
    }
    int64_t version_id = v.version_id, n_alloc = v.n_rows > 0 ? v.n_rows : 1;
    int64_t *chars = malloc((size_t)n_alloc * sizeof *chars);
    int64_t *rchars = malloc((size_t)n_alloc * sizeof *rchars);
    int64_t *tokens = o->count_tokens ? malloc((size_t)n_alloc * sizeof *tokens) : NULL;
    resp *resps = malloc((size_t)n_alloc * sizeof *resps);
    group *groups = NULL;
    cJSON *rep = cJSON_CreateObject();
    size_t n = 0, n_tok = 0;
    int64_t turns_hist[9] = {0}, roles[4] = {0}, empty = 0, very_short = 0, flagged = 0;
    int64_t scripts[N_SCRIPTS] = {0};
    int64_t mc_rows = 0, mc_choices[LT_DATA_MC_MAX_CHOICES + 1] = {0},
            mc_answer[LT_DATA_MC_MAX_CHOICES] = {0};
    cJSON *short_rows = cJSON_CreateArray();
    if (!chars || !rchars || !resps || !rep || !short_rows || (o->count_tokens && !tokens))
        goto done;
    cJSON_AddStringToObject(rep, "name", v.name);
    cJSON_AddNumberToObject(rep, "version", v.version);
    cJSON_AddStringToObject(rep, "format", v.format);
    cJSON_AddNumberToObject(rep, "issues", (double)v.n_issues);
    if (lt_store_samples_iter(st, version_id, NULL, &it) != LT_STORE_OK)
        goto store_error;
    lt_store_sample s;
    lt_store_status ss;
    while ((ss = lt_store_samples_next(it, &s)) == LT_STORE_OK && (int64_t)n < n_alloc) {
        chars[n] = s.n_chars;
        rchars[n] = s.n_response_chars;
        turns_hist[s.n_turns < 8 ? s.n_turns : 8]++;
        flagged += (s.flags & LT_SAMPLE_FLAG_CONTROL_CHARS) != 0;
        if (strstr(s.data, "\"choices\":")) {
            cJSON *j = cJSON_Parse(s.data);
            int nc = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "choices"));
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
            if (nc >= 2 && nc <= LT_DATA_MC_MAX_CHOICES && cJSON_IsNumber(a) &&
                a->valueint >= 0 && a->valueint < nc) {
                mc_rows++;
                mc_choices[nc]++;
                mc_answer[a->valueint]++;
            }
            cJSON_Delete(j);
        }
        char *response = NULL;
        char *text = lt_data_sample_text(s.data, &response);
        if (text) {
            count_scripts(text, scripts);
            static const char *role_keys[] = {"\"role\":\"user\"", "\"role\":\"assistant\"",
                                              "\"role\":\"tool\"", "\"system\":"};
            for (int k = 0; k < 4; k++)
                for (const char *p = strstr(s.data, role_keys[k]); p;
                     p = strstr(p + 1, role_keys[k]))
                    roles[k]++;
            if (tokens) {
                long t = o->count_tokens(o->count_tokens_ctx, text);
                if (t >= 0)
                    tokens[n_tok++] = t;
            }
        }
        const char *rs = response ? response : "";
        size_t rl = strlen(rs);
        if (rl == 0 || !rs[strspn(rs, " \t\r\n")])
            empty++;
        else if (s.n_response_chars < SHORT_RESPONSE) {
            very_short++;
            if (cJSON_GetArraySize(short_rows) < 10)
                cJSON_AddItemToArray(short_rows, cJSON_CreateNumber((double)s.row));
        }
        char *norm = malloc(rl + 1);
        size_t nl = norm ? lt_text_normalize(rs, rl, norm) : 0;
        resps[n].hash = norm ? lt_hash64(norm, nl, 99) : 0;
        resps[n].row = s.row;
        free(norm);
        free(response);
        free(text);
        n++;
    }
    lt_store_iter_free(it);
    it = NULL;
    cJSON_AddNumberToObject(rep, "rows", (double)n);
    if (mc_rows > 0) {
        cJSON *mc = cJSON_AddObjectToObject(rep, "multiple_choice");
        cJSON_AddNumberToObject(mc, "rows", (double)mc_rows);
        cJSON *nc = cJSON_AddObjectToObject(mc, "choices");
        cJSON *ap = cJSON_AddObjectToObject(mc, "answer_position");
        for (int k = 0; k <= LT_DATA_MC_MAX_CHOICES; k++) {
            char key[16];
            snprintf(key, sizeof key, "%d", k);
            if (mc_choices[k])
                cJSON_AddNumberToObject(nc, key, (double)mc_choices[k]);
            snprintf(key, sizeof key, "%c", 'A' + k);
            if (k < LT_DATA_MC_MAX_CHOICES && mc_answer[k])
                cJSON_AddNumberToObject(ap, key, (double)mc_answer[k]);
        }
    }
    cJSON *t = cJSON_AddObjectToObject(rep, "turns");
    for (int k = 0; k <= 8; k++) {
        if (!turns_hist[k])
            continue;
        char key[8];
        snprintf(key, sizeof key, k == 8 ? "8+" : "%d", k);
        cJSON_AddNumberToObject(t, key, (double)turns_hist[k]);
    }
    cJSON *ro = cJSON_AddObjectToObject(rep, "roles");
    cJSON_AddNumberToObject(ro, "user", (double)roles[0]);
    cJSON_AddNumberToObject(ro, "assistant", (double)roles[1]);
    cJSON_AddNumberToObject(ro, "tool", (double)roles[2]);
    cJSON_AddNumberToObject(ro, "system", (double)roles[3]);
    /* --max-len counts tokens when a tokenizer is given, characters otherwise */
    cJSON_AddItemToObject(rep, "chars", distribution(chars, n, tokens ? 0 : o->max_len));
    cJSON_AddItemToObject(rep, "response_chars", distribution(rchars, n, 0));
    if (tokens)
        cJSON_AddItemToObject(rep, "tokens", distribution(tokens, n_tok, o->max_len));
    cJSON *sr = cJSON_AddObjectToObject(rep, "responses");
    cJSON_AddNumberToObject(sr, "empty", (double)empty);
    cJSON_AddNumberToObject(sr, "very_short", (double)very_short);
    cJSON_AddNumberToObject(sr, "very_short_below_chars", SHORT_RESPONSE);
    cJSON_AddItemToObject(sr, "very_short_rows", short_rows);
    short_rows = NULL;
    cJSON_AddNumberToObject(rep, "control_char_rows", (double)flagged);
    /* repeated responses and label balance */
    qsort(resps, n, sizeof *resps, cmp_resp);
    groups = malloc((n ? n : 1) * sizeof *groups);
    if (!groups)
        goto done;
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (ng && groups[ng - 1].hash == resps[i].hash) {
            groups[ng - 1].count++;
            continue;
        }
        groups[ng++] = (group){resps[i].hash, resps[i].row, 1};
    }
    qsort(groups, ng, sizeof *groups, cmp_group);
    cJSON *top = cJSON_AddArrayToObject(rep, "top_repeated_responses");
    int top_n = o->top_n > 0 ? o->top_n : 10;
    for (size_t i = 0; i < ng && (int)i < top_n && groups[i].count > 1; i++) {
        cJSON *g = cJSON_CreateObject();
        cJSON_AddNumberToObject(g, "count", (double)groups[i].count);
        cJSON_AddNumberToObject(g, "first_row", (double)groups[i].row);
        add_response_text(st, version_id, groups[i].row, g);
        cJSON_AddItemToArray(top, g);
    }
    cJSON *lb = cJSON_AddObjectToObject(rep, "labels");
    bool classification = n >= 20 && ng <= 20 && ng * 5 <= n;
    cJSON_AddBoolToObject(lb, "classification_like", classification);
    cJSON_AddNumberToObject(lb, "distinct_responses", (double)ng);
    if (classification) {
        cJSON *cl = cJSON_AddArrayToObject(lb, "counts");
        for (size_t i = 0; i < ng; i++) {
            cJSON *g = cJSON_CreateObject();
            add_response_text(st, version_id, groups[i].row, g);
            cJSON_AddNumberToObject(g, "count", (double)groups[i].count);
            cJSON_AddNumberToObject(g, "share", (double)groups[i].count / (double)n);
            cJSON_AddItemToArray(cl, g);
        }
        cJSON_AddNumberToObject(lb, "imbalance_ratio",
                                (double)groups[0].count / (double)groups[ng - 1].count);
    }
    cJSON *sc = cJSON_AddObjectToObject(rep, "scripts");
    int64_t letters = 0;
    for (int i = 0; i < N_SCRIPTS; i++)
        letters += scripts[i];
    for (int i = 0; i < N_SCRIPTS && script_names[i]; i++)
        if (scripts[i])
            cJSON_AddNumberToObject(sc, script_names[i], (double)scripts[i] / (double)letters);
    int64_t n_exact = 0, n_near = 0;
    bool ran = false;
    if (lt_store_dedup_counts_lineage(st, v.dataset_id, v.version, &n_exact, &n_near, &ran) !=
        LT_STORE_OK)
        goto store_error;
    cJSON *du = cJSON_AddObjectToObject(rep, "duplicates");
    cJSON_AddBoolToObject(du, "dedup_ran", ran);
    if (ran) {
        double base = (double)(n + (size_t)n_exact + (size_t)n_near);
        cJSON_AddNumberToObject(du, "exact_removed", (double)n_exact);
        cJSON_AddNumberToObject(du, "near_removed", (double)n_near);
        cJSON_AddNumberToObject(du, "exact_rate", base > 0 ? (double)n_exact / base : 0);
        cJSON_AddNumberToObject(du, "near_rate", base > 0 ? (double)n_near / base : 0);
    }
    *report = rep;
    rep = NULL;
    r = LT_DATA_OK;
    goto done;
store_error:
    snprintf(err, errlen, "database error while inspecting: %s", lt_store_errmsg(st));
    r = LT_DATA_STORE;
done:
    if (r == LT_DATA_NOMEM)
        snprintf(err, errlen, "out of memory while inspecting");
    lt_store_iter_free(it);
    cJSON_Delete(rep);
    cJSON_Delete(short_rows);
    free(chars);
    free(rchars);
    free(tokens);
    free(resps);
    free(groups);
    return r;
}
