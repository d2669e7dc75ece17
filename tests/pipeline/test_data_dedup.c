/*
 * test_data_dedup.c - duplicate detection quality and behaviour.
 *
 * A generator writes distinct documents and plants near-duplicates of some of them with known
 * edits (adjacent word swaps, deletions, insertions, case and whitespace changes). At
 * threshold 0.8 the pairs whose true Jaccard is >= 0.8 must be found (same cluster) with
 * recall >= 0.95, and the removals must be right (the removed row really is a planted copy
 * of the kept row, at or above the threshold) with precision >= 0.99. Both are printed.
 * Also: incremental dedup (import, dedup, append, dedup) equals one run over everything;
 * exact duplicates after case/whitespace folding; keep rules; split keeps clusters together
 * and is deterministic; filters record their rules; export round-trips. The progress
 * callbacks of dedup, filter and split go through their phases in order, done never falling
 * and never above total within a phase, each phase ending at its total.
 */
#include "data/data.h"
#include "data/data_impl.h"
#include "store.h"
#include "test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[256];

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((rng_state >> 33) % n);
}

/* A pseudo-word from a vocabulary of 20000. */
static void word(char *out, uint32_t id)
{
    static const char *syl[] = {"ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va",
                                "zu", "be", "qo", "fi", "gu", "ha", "je", "wy", "xo", "ce"};
    out[0] = '\0';
    do {
        strcat(out, syl[id % 20]);
        id /= 20;
    } while (id);
}

#define MAX_WORDS 400
typedef struct doc {
    uint32_t w[MAX_WORDS];
    int n;
} doc;

static void gen_doc(doc *d)
{
    d->n = 60 + (int)rnd(140);
    for (int i = 0; i < d->n; i++)
        d->w[i] = rnd(20000);
}

/* Writes a document as text with optional case/whitespace noise. */
static void render(const doc *d, char *out, bool noisy)
{
    char w[32];
    size_t o = 0;
    for (int i = 0; i < d->n; i++) {
        word(w, d->w[i]);
        if (noisy && rnd(10) == 0)
            for (char *p = w; *p; p++)
                *p = (char)(*p - 32); /* upper case */
        if (i)
            out[o++] = noisy && rnd(8) == 0 ? (rnd(2) ? '\n' : '\t') : ' ';
        if (i && noisy && rnd(12) == 0)
            out[o++] = ' ';
        size_t l = strlen(w);
        memcpy(out + o, w, l);
        o += l;
    }
    out[o] = '\0';
}

static void edit(doc *d, int k)
{
    for (int e = 0; e < k && d->n > 10; e++) {
        int kind = (int)rnd(3), at = (int)rnd((uint32_t)d->n - 1);
        if (kind == 0) { /* swap neighbours */
            uint32_t t = d->w[at];
            d->w[at] = d->w[at + 1];
            d->w[at + 1] = t;
        } else if (kind == 1) { /* delete */
            memmove(&d->w[at], &d->w[at + 1], (size_t)(d->n - at - 1) * sizeof d->w[0]);
            d->n--;
        } else if (d->n < MAX_WORDS) { /* insert */
            memmove(&d->w[at + 1], &d->w[at], (size_t)(d->n - at) * sizeof d->w[0]);
            d->w[at] = rnd(20000);
            d->n++;
        }
    }
}

static void put_text(FILE *f, const char *t)
{
    fputs("{\"text\": \"", f);
    for (const char *p = t; *p; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else
            fputc(*p, f);
    }
    fputs("\"}\n", f);
}

enum { N_DOCS = 1500, N_COPIES = 900, N_EXACT = 60 };

typedef struct planted {
    int orig_row, copy_row;
    double jaccard;
} planted;

static planted plants[N_COPIES + N_EXACT];
static int n_plants;

/* originals go to file a; copies are split between a (first half) and b. */
static void generate(const char *a_path, const char *b_path)
{
    static doc docs[N_DOCS];
    static char text[MAX_WORDS * 16], copy[MAX_WORDS * 16];
    FILE *a = fopen(a_path, "w"), *b = fopen(b_path, "w");
    rng_state = 42;
    lt_shingle_opts sh = {.ngram = 5};
    for (int i = 0; i < N_DOCS; i++) {
        gen_doc(&docs[i]);
        render(&docs[i], text, false);
        put_text(a, text);
    }
    int row_a = N_DOCS, row_b = 0;
    /* copies first written to a (half) then b; rows in b follow all rows of a */
    static char *copies[N_COPIES + N_EXACT];
    static int origin[N_COPIES + N_EXACT];
    int n = 0;
    for (int c = 0; c < N_COPIES; c++) {
        int o = (int)rnd(N_DOCS);
        doc d = docs[o];
        edit(&d, (int)rnd(10));
        render(&d, copy, rnd(3) == 0);
        copies[n] = strdup(copy);
        origin[n++] = o;
    }
    for (int c = 0; c < N_EXACT; c++) {
        int o = (int)rnd(N_DOCS);
        render(&docs[o], copy, true); /* only case and whitespace differ */
        copies[n] = strdup(copy);
        origin[n++] = o;
    }
    int half = n / 2;
    for (int c = 0; c < half; c++)
        put_text(a, copies[c]);
    for (int c = half; c < n; c++)
        put_text(b, copies[c]);
    row_b = N_DOCS + half;
    for (int c = 0; c < n; c++) {
        render(&docs[origin[c]], text, false);
        plants[c].orig_row = origin[c];
        plants[c].copy_row = c < half ? row_a + c : row_b + (c - half);
        plants[c].jaccard = lt_text_jaccard(text, copies[c], &sh);
        free(copies[c]);
    }
    n_plants = n;
    fclose(a);
    fclose(b);
}

/* What a progress callback was told: the phases in order, and whether every call was sane. */
typedef struct prog_log {
    char phases[128];
    int64_t done, total; /* the last call's */
    int calls;
    bool ok;
} prog_log;

static void prog_cb(void *ctx, const char *phase, int64_t done, int64_t total)
{
    prog_log *p = ctx;
    const char *last = strrchr(p->phases, ',');
    last = last ? last + 1 : p->phases;
    if (done < 0 || done > total)
        p->ok = false;
    if (p->calls == 0 || strcmp(last, phase) != 0) {
        if (p->calls > 0 && p->done != p->total)
            p->ok = false; /* the phase before ended short of its total */
        size_t l = strlen(p->phases);
        snprintf(p->phases + l, sizeof p->phases - l, "%s%s", l ? "," : "", phase);
    } else if (done < p->done || total != p->total) {
        p->ok = false;
    }
    p->done = done;
    p->total = total;
    p->calls++;
}

static void check_progress(const prog_log *p, const char *what, const char *phases)
{
    CHECK(p->ok && p->calls > 0 && p->done == p->total, "%s progress: %d calls, ended %lld / %lld",
          what, p->calls, (long long)p->done, (long long)p->total);
    CHECK(strcmp(p->phases, phases) == 0, "%s phases: '%s', want '%s'", what, p->phases, phases);
}

static lt_store *open_ws(const char *sub)
{
    char ws[400], err[512];
    snprintf(ws, sizeof ws, "%s/%s", tmpdir, sub);
    lt_store *st = NULL;
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "open: %s", err);
    return st;
}

static bool import_sigs(lt_store *st, const char *name, const char **paths, int n, bool append,
                       bool sigs)
{
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = name;
    o.append = append;
    o.no_signatures = !sigs;
    lt_data_import_result r;
    char err[1024];
    lt_data_status s = lt_data_import(st, paths, n, &o, &r, err, sizeof err);
    CHECK(s == LT_DATA_OK, "import %s: %s", name, err);
    return s == LT_DATA_OK;
}

static bool import(lt_store *st, const char *name, const char **paths, int n, bool append)
{
    return import_sigs(st, name, paths, n, append, true);
}

/* removed row -> kept row over all dedup versions of a dataset, from the database. */
static int removals(const char *sub, const char *name, int64_t *removed, int64_t *kept,
                    double *sim, int max)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/lathe.db", tmpdir, sub);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int n = 0;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT a.row_index, b.row_index, r.similarity FROM dedup_removals r "
                           "JOIN samples a ON a.id=r.sample_id JOIN samples b ON "
                           "b.id=r.kept_sample_id JOIN dataset_versions v ON v.id=r.version_id "
                           "JOIN datasets d ON d.id=v.dataset_id WHERE d.name=?1 "
                           "ORDER BY a.row_index",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW && n < max) {
            removed[n] = sqlite3_column_int64(s, 0);
            kept[n] = sqlite3_column_int64(s, 1);
            sim[n++] = sqlite3_column_double(s, 2);
        }
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static int64_t rem_a[4000], kept_a[4000], rem_b[4000], kept_b[4000];
static double sim_a[4000], sim_b[4000];

static void test_quality_and_incremental(void)
{
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/part_a.jsonl", tmpdir);
    snprintf(b, sizeof b, "%s/part_b.jsonl", tmpdir);
    generate(a, b);
    const char *both[2] = {a, b};
    /* all at once, signatures computed by dedup */
    lt_store *st = open_ws("once");
    if (!st || !import_sigs(st, "docs", both, 2, false, false))
        return;
    lt_data_dedup_opts o;
    lt_data_dedup_opts_default(&o);
    o.keep = LT_DATA_KEEP_FIRST;
    int64_t *grow = NULL, *gid = NULL, ng = 0;
    o.group_rows_out = &grow;
    o.group_ids_out = &gid;
    o.n_groups_out = &ng;
    prog_log pl = {.ok = true};
    o.progress = prog_cb;
    o.progress_ctx = &pl;
    lt_data_dedup_result r;
    char err[1024];
    CHECK(lt_data_dedup(st, "docs", &o, &r, err, sizeof err) == LT_DATA_OK, "dedup: %s", err);
    check_progress(&pl, "dedup", "signatures,bands,verify,clusters");
    CHECK(pl.done == N_DOCS + n_plants, "dedup progress ends at every row: %lld",
          (long long)pl.done);
    CHECK(r.n_signatures_computed == N_DOCS + n_plants, "dedup computed every signature");
    CHECK(r.bands * r.rows <= LT_MINHASH_PERM && r.bands > 1, "banding %d x %d", r.bands,
          r.rows);
    CHECK(ng == N_DOCS + n_plants, "groups for every row: %lld", (long long)ng);
    /* recall over planted pairs with true Jaccard >= 0.8 */
    int pos = 0, found = 0;
    for (int i = 0; i < n_plants && ng > 0; i++) {
        if (plants[i].jaccard < 0.8)
            continue;
        pos++;
        /* rows are 0..ng-1 in order, so the row is the index */
        found += gid[plants[i].orig_row] == gid[plants[i].copy_row];
    }
    double recall = pos ? (double)found / pos : 0;
    /* precision over removals: the removed row must be a planted copy of the kept row with
     * true Jaccard >= 0.8 (or another copy of the same original) */
    int nr = removals("once", "docs", rem_a, kept_a, sim_a, 4000);
    int good = 0;
    for (int k = 0; k < nr; k++) {
        for (int i = 0; i < n_plants; i++) {
            if (plants[i].copy_row != rem_a[k])
                continue;
            if (plants[i].orig_row == kept_a[k] && plants[i].jaccard >= 0.8 - 1e-9)
                good++;
            else if (plants[i].orig_row != kept_a[k]) {
                /* kept row may itself be a copy of the same original */
                for (int j = 0; j < n_plants; j++)
                    if (plants[j].copy_row == kept_a[k] &&
                        plants[j].orig_row == plants[i].orig_row && sim_a[k] >= 0.8 - 1e-9)
                        good++;
            }
            break;
        }
    }
    double precision = nr ? (double)good / nr : 0;
    printf("dedup quality at threshold 0.8 (%d x %d bands): %d planted pairs >= 0.8, "
           "recall %.4f, precision %.4f (%d removals, %lld exact, %lld near, %lld candidates)\n",
           r.bands, r.rows, pos, recall, precision, nr, (long long)r.n_exact,
           (long long)r.n_near, (long long)r.n_candidates);
    CHECK(pos > 300, "enough positives planted: %d", pos);
    CHECK(recall >= 0.95, "recall %.4f >= 0.95", recall);
    CHECK(precision >= 0.99, "precision %.4f >= 0.99", precision);
    CHECK(r.n_exact >= N_EXACT * 9 / 10, "exact duplicates after case/space folding: %lld",
          (long long)r.n_exact);
    free(grow);
    free(gid);
    lt_data_dedup_result r_once = r;
    lt_store_version v_once;
    CHECK(lt_store_version_get(st, "docs", 0, &v_once) == LT_STORE_OK, "once version");
    int64_t n_once = v_once.n_rows;
    lt_store_close(st);

    /* incremental: import a, dedup, append b, dedup; signatures computed while importing
     * (on another thread) must give the same result */
    st = open_ws("incr");
    if (!st || !import(st, "docs", both, 1, false))
        return;
    o.group_rows_out = NULL;
    CHECK(lt_data_dedup(st, "docs", &o, &r, err, sizeof err) == LT_DATA_OK, "dedup a: %s", err);
    int64_t computed_first = r.n_signatures_computed;
    if (!import(st, "docs", both + 1, 1, true))
        return;
    CHECK(lt_data_dedup(st, "docs", &o, &r, err, sizeof err) == LT_DATA_OK, "dedup b: %s", err);
    CHECK(computed_first == 0, "import stored the signatures: dedup computed %lld",
          (long long)computed_first);
    CHECK(r.n_signatures_computed == 0, "second run computed no signature: %lld",
          (long long)r.n_signatures_computed);
    lt_store_version v;
    CHECK(lt_store_version_get(st, "docs", 0, &v) == LT_STORE_OK && v.n_rows == n_once,
          "same rows kept: %lld vs %lld", (long long)v.n_rows, (long long)n_once);
    lt_store_close(st);
    int nb = removals("incr", "docs", rem_b, kept_b, sim_b, 4000);
    bool same = nb == nr;
    for (int k = 0; same && k < nr; k++)
        same = rem_a[k] == rem_b[k] && kept_a[k] == kept_b[k] && sim_a[k] == sim_b[k];
    CHECK(same, "incremental removals (%d) equal all-at-once removals (%d)", nb, nr);
    (void)r_once;
}

static void write_lines(const char *path, const char *const *lines, int n)
{
    FILE *f = fopen(path, "w");
    for (int i = 0; f && i < n; i++)
        fprintf(f, "%s\n", lines[i]);
    if (f)
        fclose(f);
}

/* Byte-by-byte reference for the texts below (ASCII, no-break spaces, "É"/"é", "ß"):
 * lower-case, whitespace runs to one space, trimmed. */
static size_t normalize_ref(const char *s, size_t n, char *out)
{
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        bool nbsp = c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0xa0;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || nbsp) {
            space = o > 0;
            i += nbsp ? 2 : 1;
            continue;
        }
        if (space)
            out[o++] = ' ';
        space = false;
        if (c == 0xc3 && i + 1 < n && (unsigned char)s[i + 1] == 0x89) { /* É -> é */
            out[o++] = (char)0xc3;
            out[o++] = (char)0xa9;
            i += 2;
            continue;
        }
        out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        i++;
    }
    out[o] = '\0';
    return o;
}

/* The 16-byte fast path of lt_text_normalize against the reference, on random texts made of
 * words, runs of spaces and tabs, punctuation, control bytes and two-byte letters, at every
 * alignment and length (blocks end anywhere, including just past a space). */
static void test_normalize_blocks(void)
{
    static const char *pieces[] = {"word", "Upper", "ZZ", "a", " ", "  ", "\t", "\n ", ".",
                                   "@[`{", "\x7f", "\x01", "\xc2\xa0", "\xc3\x89t\xc3\xa9",
                                   "Stra\xc3\x9f!", "0123456789", "MiXeD-CaSe!"};
    char in[700], out[720], ref[720];
    int bad = 0;
    rng_state = 12345;
    for (int t = 0; t < 20000 && bad < 5; t++) {
        size_t n = 0, want = 1 + rnd(600);
        while (n < want) {
            const char *pc = pieces[rnd(sizeof pieces / sizeof *pieces)];
            size_t l = strlen(pc);
            if (n + l >= sizeof in)
                break;
            memcpy(in + n, pc, l);
            n += l;
        }
        in[n] = '\0';
        memset(out, 0x55, sizeof out);
        size_t got = lt_text_normalize(in, n, out);
        size_t exp = normalize_ref(in, n, ref);
        if (got != exp || strcmp(out, ref) != 0 || (unsigned char)out[n + 1] != 0x55) {
            bad++;
            fprintf(stderr, "normalize mismatch on '%s':\n  got '%s'\n  ref '%s'\n", in, out,
                    ref);
        }
    }
    CHECK(bad == 0, "16-byte normalize path equals the byte-by-byte reference");
}

static void test_keep_rules_and_normalization(void)
{
    static const char *rows[] = {
        "{\"instruction\": \"Say hello\", \"output\": \"Hello there.\"}",
        "{\"instruction\": \"SAY   hello\", \"output\": \"hello THERE.\"}",
        "{\"instruction\": \"Say hello\", \"output\": \"Hello there, friend, how are you?\"}",
        "{\"instruction\": \"Ça va ?\", \"output\": \"Très bien, merci.\"}",
        "{\"instruction\": \"ÇA VA ?\", \"output\": \"TRÈS BIEN, MERCI.\"}",
    };
    char p[400];
    snprintf(p, sizeof p, "%s/keep.jsonl", tmpdir);
    write_lines(p, rows, 5);
    const char *paths[1] = {p};
    lt_store *st = open_ws("keep");
    if (!st || !import(st, "keep", paths, 1, false))
        return;
    char buf[64];
    size_t n = lt_text_normalize("  ÀÉÎ  Straße\t\nĀ ", strlen("  ÀÉÎ  Straße\t\nĀ "), buf);
    CHECK(strcmp(buf, "àéî straße ā") == 0 && n == strlen(buf), "normalize: '%s'", buf);
    /* NFC: "E" + combining acute composes to "é", then folds like a precomposed "É" */
    char nfd[64], pre[64];
    size_t n1 = lt_text_normalize("Cafe\xcc\x81  Olé", strlen("Cafe\xcc\x81  Olé"), nfd);
    size_t n2 = lt_text_normalize("CAFÉ olé", strlen("CAFÉ olé"), pre);
    CHECK(n1 == n2 && strcmp(nfd, pre) == 0 && strcmp(pre, "café olé") == 0,
          "normalize composes to NFC: '%s' vs '%s'", nfd, pre);
    lt_data_dedup_opts o;
    lt_data_dedup_opts_default(&o);
    o.exact_only = true;
    lt_data_dedup_result r;
    char err[1024];
    CHECK(lt_data_dedup(st, "keep", &o, &r, err, sizeof err) == LT_DATA_OK && r.n_exact == 2,
          "exact dups found: %lld (%s)", (long long)r.n_exact, err);
    lt_store_version v;
    lt_store_sample s;
    CHECK(lt_store_version_get(st, "keep", 0, &v) == LT_STORE_OK && v.n_rows == 3, "3 kept");
    CHECK(lt_store_sample_get(st, v.version_id, 0, &s) == LT_STORE_OK, "first of a tie kept");
    CHECK(lt_store_sample_get(st, v.version_id, 3, &s) == LT_STORE_OK, "Latin-1 fold: row 3");
    CHECK(lt_store_sample_get(st, v.version_id, 4, &s) == LT_STORE_NOT_FOUND, "row 4 removed");
    /* the version before is untouched */
    CHECK(lt_store_version_get(st, "keep", 1, &v) == LT_STORE_OK && v.n_rows == 5,
          "original version kept");
    lt_store_close(st);
    /* keep longest between near duplicates */
    static const char *near[] = {
        ("{\"text\": \"one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen twenty\"}"),
        ("{\"text\": \"one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen twenty twentyone\"}"),
    };
    snprintf(p, sizeof p, "%s/near.jsonl", tmpdir);
    write_lines(p, near, 2);
    st = open_ws("keep");
    if (!st || !import(st, "near", paths, 1, false))
        return;
    lt_data_dedup_opts_default(&o);
    CHECK(lt_data_dedup(st, "near", &o, &r, err, sizeof err) == LT_DATA_OK && r.n_near == 1,
          "near dup found: %lld (%s)", (long long)r.n_near, err);
    CHECK(lt_store_version_get(st, "near", 0, &v) == LT_STORE_OK, "near version");
    CHECK(lt_store_sample_get(st, v.version_id, 1, &s) == LT_STORE_OK, "longest kept");
    CHECK(lt_store_sample_get(st, v.version_id, 0, &s) == LT_STORE_NOT_FOUND, "shorter removed");
    lt_store_close(st);
}

static void test_split_filter_export(void)
{
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/part_a.jsonl", tmpdir);
    snprintf(b, sizeof b, "%s/part_b.jsonl", tmpdir);
    const char *both[2] = {a, b};
    lt_store *st = open_ws("split");
    if (!st || !import(st, "docs", both, 2, false))
        return;
    prog_log pl = {.ok = true};
    lt_data_split_opts so = {
        .val = 0.1, .test = 0.1, .seed = 7, .progress = prog_cb, .progress_ctx = &pl};
    lt_data_split_result sr;
    char err[1024];
    CHECK(lt_data_split(st, "docs", &so, &sr, err, sizeof err) == LT_DATA_OK, "split: %s", err);
    check_progress(&pl, "split", "signatures,bands,verify,clusters,splits");
    so.progress = NULL;
    int64_t total = N_DOCS + n_plants;
    CHECK(sr.n_train + sr.n_val + sr.n_test == total, "every row split");
    CHECK(sr.n_val > total / 12 && sr.n_val < total / 8, "val share: %lld", (long long)sr.n_val);
    /* planted near-duplicates never straddle */
    lt_store_version v;
    CHECK(lt_store_version_get(st, "docs", 0, &v) == LT_STORE_OK, "version");
    static char split_of[N_DOCS + N_COPIES + N_EXACT];
    lt_store_iter *it = NULL;
    lt_store_sample s;
    if (lt_store_samples_iter(st, v.version_id, NULL, &it) == LT_STORE_OK)
        while (lt_store_samples_next(it, &s) == LT_STORE_OK)
            split_of[s.row] = s.split ? s.split[0] : '?';
    lt_store_iter_free(it);
    int straddle = 0;
    for (int i = 0; i < n_plants; i++)
        straddle += plants[i].jaccard >= 0.8 &&
                    split_of[plants[i].orig_row] != split_of[plants[i].copy_row];
    CHECK(straddle == 0, "%d near-duplicate pairs straddle splits", straddle);
    /* same seed, same split; another seed, another split */
    char first[N_DOCS + N_COPIES + N_EXACT];
    memcpy(first, split_of, sizeof first);
    CHECK(lt_data_split(st, "docs", &so, &sr, err, sizeof err) == LT_DATA_OK, "split again");
    if (lt_store_samples_iter(st, v.version_id, NULL, &it) == LT_STORE_OK)
        while (lt_store_samples_next(it, &s) == LT_STORE_OK)
            split_of[s.row] = s.split ? s.split[0] : '?';
    lt_store_iter_free(it);
    CHECK(memcmp(first, split_of, (size_t)total) == 0, "deterministic split");
    so.seed = 8;
    CHECK(lt_data_split(st, "docs", &so, &sr, err, sizeof err) == LT_DATA_OK, "split seed 8");
    if (lt_store_samples_iter(st, v.version_id, NULL, &it) == LT_STORE_OK)
        while (lt_store_samples_next(it, &s) == LT_STORE_OK)
            split_of[s.row] = s.split ? s.split[0] : '?';
    lt_store_iter_free(it);
    CHECK(memcmp(first, split_of, (size_t)total) != 0, "another seed, another split");
    /* export the val split and import it back */
    char out[400];
    snprintf(out, sizeof out, "%s/val.jsonl", tmpdir);
    int64_t n_written = 0;
    CHECK(lt_data_export(st, "docs", 0, "val", "jsonl", out, true, &n_written, err, sizeof err) ==
              LT_DATA_OK && n_written == sr.n_val,
          "export val: %lld rows (%s)", (long long)n_written, err);
    const char *vp[1] = {out};
    lt_data_import_opts io;
    lt_data_import_opts_default(&io);
    io.name = "val";
    lt_data_import_result ir;
    CHECK(lt_data_import(st, vp, 1, &io, &ir, err, sizeof err) == LT_DATA_OK &&
              ir.n_rows == n_written && ir.n_bad == 0,
          "re-import export: %s", err);
    lt_store_close(st);

    /* filters */
    static const char *rows[] = {
        "{\"instruction\": \"hi\", \"output\": \"ok\"}",
        "{\"instruction\": \"Tell me a story\", \"output\": \"Once.\\nOnce.\\nOnce.\\nOnce.\"}",
        "{\"instruction\": \"Explain\", \"output\": \"As an AI language model, I cannot.\"}",
        ("{\"instruction\": \"Explain gravity\", \"output\": \"Mass attracts mass; the force "
         "falls with the square of distance.\"}"),
        "{\"instruction\": \"Noise\", \"output\": \"\\u0001\\u0002\\u0003\\u0004 abc\"}",
    };
    char p[400];
    snprintf(p, sizeof p, "%s/filter.jsonl", tmpdir);
    write_lines(p, rows, 5);
    const char *fp[1] = {p};
    st = open_ws("filter");
    if (!st || !import(st, "f", fp, 1, false))
        return;
    lt_data_filter_opts fo;
    lt_data_filter_opts_default(&fo);
    fo.min_chars = 10;
    fo.max_repeated_line_ratio = 0.5;
    fo.max_nonprintable_ratio = 0.2;
    fo.regex[0] = "response=^As an AI";
    fo.n_regex = 1;
    prog_log fl = {.ok = true};
    fo.progress = prog_cb;
    fo.progress_ctx = &fl;
    lt_data_filter_result fr;
    CHECK(lt_data_filter(st, "f", &fo, &fr, err, sizeof err) == LT_DATA_OK && fr.n_dropped == 4,
          "filter dropped %lld (%s)", (long long)fr.n_dropped, err);
    check_progress(&fl, "filter", "rows");
    CHECK(fl.done == 5, "filter progress ends at its 5 rows: %lld", (long long)fl.done);
    CHECK(lt_store_version_get(st, "f", 0, &v) == LT_STORE_OK && v.n_rows == 1 &&
              strcmp(v.kind, "filter") == 0,
          "filtered version: %lld rows", (long long)v.n_rows);
    fo.regex[0] = "response=([";
    CHECK(lt_data_filter(st, "f", &fo, &fr, err, sizeof err) == LT_DATA_USAGE, "bad regex");
    lt_store_close(st);
    char path[512];
    snprintf(path, sizeof path, "%s/filter/lathe.db", tmpdir);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int n_rules = 0;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT rule FROM filter_drops ORDER BY sample_id", -1, &q,
                           NULL) == SQLITE_OK) {
        static const char *want[] = {"min-chars 10", "max-repeated-line-ratio", "regex response",
                                     "max-nonprintable-ratio"};
        while (sqlite3_step(q) == SQLITE_ROW && n_rules < 4) {
            const char *rule = (const char *)sqlite3_column_text(q, 0);
            CHECK(strstr(rule, want[n_rules]) != NULL, "rule '%s' lacks '%s'", rule,
                  want[n_rules]);
            n_rules++;
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    CHECK(n_rules == 4, "4 drops recorded with rules");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe_test_dedup_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int b, r;
    lt_lsh_params(0.8, LT_MINHASH_PERM, &b, &r);
    CHECK(b == 16 && r == 8, "banding for 0.8: %d x %d", b, r);
    lt_shingle_opts sh = {.ngram = 5};
    CHECK(lt_text_jaccard("a b c d e f", "A  b c\td e f", &sh) == 1.0, "case/space folded");
    CHECK(lt_text_jaccard("a b c d e f", "a b c d e g", &sh) < 0.5, "one word changes 5-grams");
    lt_shingle_opts ch = {.char_shingles = 3};
    CHECK(lt_text_jaccard("東京は日本の首都です", "東京は日本の首都です。", &ch) > 0.7,
          "CJK character shingles");
    test_normalize_blocks();
    test_quality_and_incremental();
    test_keep_rules_and_normalization();
    test_split_filter_export();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
