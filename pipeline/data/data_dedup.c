/*
 * data_dedup.c - exact and near-duplicate removal: a new dataset version without them.
 *
 * 1. The universe: every sample of the dataset with a stored signature under these shingle
 *    parameters, plus every member of the input version (signatures computed for those that
 *    lack one, on all cores, and stored). Because stored rows stay in the universe, importing
 *    more rows later and deduplicating again gives the same clusters as one run over
 *    everything; rows outside the input version can join clusters but are never kept.
 * 2. Exact duplicates: same hash of normalized text (see data_text.c for what is folded).
 *    One representative per hash (the lowest row) goes on to step 3.
 * 3. Near duplicates: MinHash (128 permutations, 16 bits kept of each) with LSH banding;
 *    bands x rows minimize the false-positive plus false-negative area at the threshold (as
 *    text-dedup does, weighted towards recall because of the check that follows, see
 *    data_text.c). Every
 *    candidate pair is verified by the true Jaccard similarity of the shingle sets; pairs at
 *    or above the threshold are joined by union-find.
 * 4. Keep rule, per cluster, among members of the input version: the longest response (ties:
 *    the lowest row), or with --keep first the lowest row. Every other member is removed and
 *    recorded with its cluster (the kept row's index), the kept sample and its similarity to
 *    it (1.0 and kind 'exact' for the same normalized text, else Jaccard and kind 'near').
 */
#include "data_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lt_data_dedup_opts_default(lt_data_dedup_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threshold = 0.8;
    o->ngram = 5;
    o->keep = LT_DATA_KEEP_LONGEST;
}

typedef struct item {
    int64_t sample_id;
    int64_t row;
    int64_t resp_len;
    char hash[33];
    bool member;      /* in the input version */
    bool has_sig;
    uint16_t sig[LT_MINHASH_PERM];
} item;

typedef struct dedup {
    lt_store *st;
    const lt_data_dedup_opts *o;
    lt_shingle_opts sh;
    item *items;
    size_t n, cap;
    int *parent;      /* union-find over items */
    uint64_t **shingles; /* lazily computed, for verification */
    size_t *n_shingles;
    bool *shingled;
    size_t shingle_bytes; /* held in shingles[]: kept under SHINGLE_CACHE_BYTES */
    int64_t n_members;    /* the input version's row count, for progress */
} dedup;

/* Rows (or pairs) between progress reports within a phase. */
#define PROGRESS_EVERY 4096

/* Reports progress through the options' callback, on the calling thread; total is raised to
 * done when a stored count fell short. */
static void report(const dedup *d, const char *phase, int64_t done, int64_t total)
{
    if (d->o->progress)
        d->o->progress(d->o->progress_ctx, phase, done, total > done ? total : done);
}

/* Shingle sets are recomputed from the store when the cache was emptied, so memory stays
 * bounded however many candidates a large file has. */
#define SHINGLE_CACHE_BYTES ((size_t)64 << 20)

static int uf_find(int *p, int x)
{
    while (p[x] != x) {
        p[x] = p[p[x]];
        x = p[x];
    }
    return x;
}

/* Joins two sets; the root is the smaller index, so roots are deterministic. */
static void uf_union(int *p, int a, int b)
{
    a = uf_find(p, a);
    b = uf_find(p, b);
    if (a == b)
        return;
    if (a < b)
        p[b] = a;
    else
        p[a] = b;
}

/* Copies a text hash (32 hex digits; anything longer is cut) without printf's cost per row. */
static void set_hash(item *x, const char *h)
{
    size_t n = h ? strnlen(h, sizeof x->hash - 1) : 0;
    memcpy(x->hash, h ? h : "", n);
    x->hash[n] = '\0';
}

static item *push_item(dedup *d)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 1024;
        item *ni = realloc(d->items, nc * sizeof *ni);
        if (!ni)
            return NULL;
        d->items = ni;
        d->cap = nc;
    }
    item *it = &d->items[d->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* ---- signatures on all cores ---- */

typedef struct sig_job {
    dedup *d;
    char **texts;      /* sample JSON per pending item */
    size_t *idx;       /* item index per pending item */
    size_t n;
    int t, n_threads;
} sig_job;

static void *sig_worker(void *arg)
{
    sig_job *j = arg;
    for (size_t k = (size_t)j->t; k < j->n; k += (size_t)j->n_threads) {
        item *it = &j->d->items[j->idx[k]];
        char *text = lt_data_sample_text(j->texts[k], NULL);
        uint64_t *sh = NULL;
        lt_shingle_opts so = j->d->sh;
        so.unsorted = true;
        size_t n = text ? lt_shingles(text, strlen(text), &so, &sh) : 0;
        lt_minhash(sh, n, it->sig);
        it->has_sig = true;
        free(sh);
        free(text);
    }
    return NULL;
}

static int thread_count(int want)
{
    if (want > 0)
        return want;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 64 ? 64 : n) : 1;
}

static bool compute_pending(dedup *d, sig_job *base, int n_threads)
{
    pthread_t th[64];
    sig_job jobs[64];
    int started = 0;
    for (int t = 0; t < n_threads; t++) {
        jobs[t] = *base;
        jobs[t].t = t;
        jobs[t].n_threads = n_threads;
        if (t > 0 && pthread_create(&th[t], NULL, sig_worker, &jobs[t]) == 0)
            started++;
        else if (t > 0)
            jobs[t].n_threads = -1;
    }
    if (started != n_threads - 1) {
        /* fall back to this thread alone */
        jobs[0].n_threads = 1;
        for (int t = 1; t < n_threads; t++)
            if (jobs[t].n_threads > 0)
                pthread_join(th[t], NULL);
        sig_worker(&jobs[0]);
        return true;
    }
    sig_worker(&jobs[0]);
    for (int t = 1; t < n_threads; t++)
        pthread_join(th[t], NULL);
    (void)d;
    return true;
}

/* Loads stored signatures and the input version's members; computes and stores missing
 * signatures in batches. */
static lt_data_status load_universe(dedup *d, int64_t dataset_id, int64_t version_id,
                                    const char *params, lt_data_dedup_result *res, char *err,
                                    size_t errlen)
{
    lt_store_iter *it = NULL;
    lt_store_signature g;
    lt_store_status s;
    /* the universe is at most every sample of the dataset: one allocation */
    int64_t max_row = -1;
    if (lt_store_rows_max(d->st, dataset_id, &max_row) != LT_STORE_OK)
        goto store_error;
    if (max_row >= 0) {
        d->items = malloc((size_t)(max_row + 1) * sizeof *d->items);
        if (!d->items)
            goto nomem;
        d->cap = (size_t)(max_row + 1);
    }
    if (lt_store_signatures_iter(d->st, dataset_id, params, &it) != LT_STORE_OK)
        goto store_error;
    while ((s = lt_store_signatures_next(it, &g)) == LT_STORE_OK) {
        item *x = push_item(d);
        if (!x)
            goto nomem;
        x->sample_id = g.sample_id;
        x->row = g.row;
        x->resp_len = g.n_response_chars;
        set_hash(x, g.text_hash);
        if (g.bytes == sizeof x->sig) {
            memcpy(x->sig, g.sig, sizeof x->sig);
            x->has_sig = true;
        }
    }
    lt_store_iter_free(it);
    it = NULL;
    if (s != LT_STORE_DONE)
        goto store_error;
    size_t n_stored = d->n;
    /* stored items are in sample id order: members are found by binary search */
    enum { BATCH = 4096 };
    char **texts = calloc(BATCH, sizeof *texts);
    size_t *idx = calloc(BATCH, sizeof *idx);
    size_t pending = 0;
    int n_threads = thread_count(d->o->threads);
    if (!texts || !idx) {
        free(texts);
        free(idx);
        goto nomem;
    }
    if (lt_store_member_ids_iter(d->st, version_id, &it) != LT_STORE_OK)
        goto store_error_batch;
    for (;;) {
        int64_t sid = 0;
        s = lt_store_member_ids_next(it, &sid);
        if (s == LT_STORE_OK) {
            res->n_in++;
            if (res->n_in % PROGRESS_EVERY == 0)
                report(d, "signatures", res->n_in, d->n_members);
            size_t lo = 0, hi = n_stored;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (d->items[mid].sample_id < sid)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < n_stored && d->items[lo].sample_id == sid && d->items[lo].has_sig) {
                d->items[lo].member = true;
                continue;
            }
            /* no stored signature: read the sample to compute one */
            lt_store_sample smp;
            item *x = push_item(d);
            if (!x)
                goto nomem_batch;
            if (lt_store_sample_get_id(d->st, sid, &smp) != LT_STORE_OK)
                goto store_error_batch;
            if (!(texts[pending] = strdup(smp.data)))
                goto nomem_batch;
            x->sample_id = smp.id;
            x->row = smp.row;
            x->resp_len = smp.n_response_chars;
            x->member = true;
            set_hash(x, smp.text_hash);
            idx[pending++] = d->n - 1;
        } else if (s != LT_STORE_DONE) {
            goto store_error_batch;
        }
        if (pending == BATCH || (s == LT_STORE_DONE && pending > 0)) {
            sig_job job = {.d = d, .texts = texts, .idx = idx, .n = pending};
            compute_pending(d, &job, n_threads);
            for (size_t k = 0; k < pending; k++) {
                item *x = &d->items[idx[k]];
                lt_store_signature g = {.sample_id = x->sample_id,
                                        .row = x->row,
                                        .text_hash = x->hash,
                                        .n_response_chars = x->resp_len,
                                        .sig = x->sig,
                                        .bytes = sizeof x->sig};
                if (lt_store_signature_put(d->st, dataset_id, params, &g) != LT_STORE_OK)
                    goto store_error_batch;
                free(texts[k]);
                texts[k] = NULL;
            }
            res->n_signatures_computed += (int64_t)pending;
            pending = 0;
        }
        if (s == LT_STORE_DONE)
            break;
    }
    lt_store_iter_free(it);
    free(texts);
    free(idx);
    report(d, "signatures", res->n_in, res->n_in);
    return LT_DATA_OK;
store_error_batch:
    for (size_t k = 0; k < pending; k++)
        free(texts[k]);
    free(texts);
    free(idx);
store_error:
    lt_store_iter_free(it);
    snprintf(err, errlen, "database error while loading signatures: %s",
             lt_store_errmsg(d->st));
    return LT_DATA_STORE;
nomem_batch:
    for (size_t k = 0; k < pending; k++)
        free(texts[k]);
    free(texts);
    free(idx);
nomem:
    lt_store_iter_free(it);
    snprintf(err, errlen, "out of memory while loading signatures");
    return LT_DATA_NOMEM;
}

/* ---- exact groups, LSH candidates, verification ---- */

static int cmp_row(const void *a, const void *b)
{
    const item *x = a, *y = b;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int cmp_pair(const void *a, const void *b)
{
    const int *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static bool shingles_of(dedup *d, int i)
{
    if (d->shingled[i])
        return true;
    lt_store_sample s;
    if (lt_store_sample_get_id(d->st, d->items[i].sample_id, &s) != LT_STORE_OK)
        return false;
    char *text = lt_data_sample_text(s.data, NULL);
    if (!text)
        return false;
    d->n_shingles[i] = lt_shingles(text, strlen(text), &d->sh, &d->shingles[i]);
    free(text);
    d->shingled[i] = true;
    d->shingle_bytes += d->n_shingles[i] * sizeof **d->shingles;
    return true;
}

static void shingles_drop_all(dedup *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->shingled[i]) {
            free(d->shingles[i]);
            d->shingles[i] = NULL;
            d->shingled[i] = false;
        }
    d->shingle_bytes = 0;
}

static double pair_jaccard(dedup *d, int i, int j)
{
    if (d->shingle_bytes > SHINGLE_CACHE_BYTES)
        shingles_drop_all(d);
    if (!shingles_of(d, i) || !shingles_of(d, j))
        return -1.0;
    return lt_jaccard_sorted(d->shingles[i], d->n_shingles[i], d->shingles[j], d->n_shingles[j]);
}

#define BUCKET_ALL_PAIRS 48 /* larger buckets pair each member with the first and next only */

static inline uint64_t fmix_key(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

/* The first 16 hex digits of a text hash as a number (the rest is compared as text). */
static uint64_t hex64(const char *h)
{
    uint64_t v = 0;
    for (int i = 0; i < 16 && h[i]; i++) {
        char c = h[i];
        v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
    }
    return v;
}

/* The LSH key of one band: its r values folded into 64 bits. */
static inline uint64_t band_key(const uint16_t *v, int r, int band)
{
    uint64_t h = 0x9e3779b97f4a7c15ull * (uint64_t)(band + 1);
    for (int i = 0; i < r; i++)
        h = (h ^ v[i]) * 0xbf58476d1ce4e5b9ull + (uint64_t)i;
    return fmix_key(h) ^ (h >> 29);
}

/* Buckets items by a 64-bit key: an open-addressing table of chains that keep insertion
 * order (increasing item index). Linear in the number of items, unlike sorting. A slot keeps
 * its key and chain ends together: one cache line per probe. */
typedef struct slot {
    uint64_t key;
    int head, tail; /* -1 when empty */
} slot;

typedef struct buckets {
    slot *slots;
    int *next;      /* per item */
    size_t mask;
    size_t cap_slots, cap_items; /* allocated */
} buckets;

/* Sizes the table for n_keys keys (load at most one half) over items 0..n_items-1, growing
 * the arrays when they are too small. */
static bool buckets_reserve(buckets *t, size_t n_keys, size_t n_items)
{
    size_t cap = 16;
    while (cap < n_keys * 2)
        cap *= 2;
    t->mask = cap - 1;
    if (cap > t->cap_slots) {
        slot *ns = realloc(t->slots, cap * sizeof *ns);
        if (!ns)
            return false;
        t->slots = ns;
        t->cap_slots = cap;
    }
    if (n_items < 1)
        n_items = 1;
    if (n_items > t->cap_items) {
        int *nn = realloc(t->next, n_items * sizeof *nn);
        if (!nn)
            return false;
        t->next = nn;
        t->cap_items = n_items;
    }
    return true;
}

static bool buckets_init(buckets *t, int n_items, int n_keys)
{
    return buckets_reserve(t, (size_t)n_keys, (size_t)n_items);
}

static void buckets_clear(buckets *t)
{
    for (size_t s = 0; s <= t->mask; s++)
        t->slots[s].head = -1;
}

static void buckets_add(buckets *t, uint64_t key, int item)
{
    size_t s = (size_t)fmix_key(key) & t->mask;
    while (t->slots[s].head >= 0 && t->slots[s].key != key)
        s = (s + 1) & t->mask;
    slot *x = &t->slots[s];
    t->next[item] = -1;
    if (x->head < 0) {
        x->key = key;
        x->head = x->tail = item;
    } else {
        t->next[x->tail] = item;
        x->tail = item;
    }
}

static void buckets_free(buckets *t)
{
    free(t->slots);
    free(t->next);
    memset(t, 0, sizeof *t);
}

/* Candidate pairs (lower index first), appended; not yet sorted or unique. */
typedef struct pair_list {
    int *v;
    size_t n, cap;
} pair_list;

/* Appends a candidate pair, growing the array. */
static bool add_pair(pair_list *l, int a, int b)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4096;
        int *np = realloc(l->v, nc * 2 * sizeof *np);
        if (!np)
            return false;
        l->v = np;
        l->cap = nc;
    }
    l->v[2 * l->n] = a < b ? a : b;
    l->v[2 * l->n + 1] = a < b ? b : a;
    l->n++;
    return true;
}

/* LSH over bands [band0, band1), on any thread: reads items and rep only. */
typedef struct band_job {
    const dedup *d;
    const bool *rep;
    int n, rows, band0, band1;
    pair_list out;
    bool ok;
} band_job;

typedef struct keyed {
    uint64_t key;
    int item;
} keyed;

/* A band's keys are split by their top bits and bucketed one part at a time, so each part's
 * table stays in cache; a bucket (one key) lies in one part, its members in item order. */
#define BAND_PART_BITS 8

static void *band_worker(void *arg)
{
    band_job *j = arg;
    enum { PARTS = 1 << BAND_PART_BITS };
    buckets t = {0};
    size_t n = (size_t)(j->n ? j->n : 1);
    keyed *kv = malloc(n * sizeof *kv), *part = malloc(n * sizeof *part);
    int *members = malloc(n * sizeof *members);
    size_t start[PARTS + 1], pos[PARTS];
    j->ok = false;
    if (!kv || !part || !members)
        goto done;
    for (int b = j->band0; b < j->band1; b++) {
        size_t m = 0;
        memset(pos, 0, sizeof pos);
        for (int i = 0; i < j->n; i++) {
            if (i + 16 < j->n) /* items are far apart: fetch the band ahead of its use */
                __builtin_prefetch(j->d->items[i + 16].sig + b * j->rows);
            if (j->rep[i]) {
                uint64_t k = band_key(j->d->items[i].sig + b * j->rows, j->rows, b);
                kv[m].key = k;
                kv[m++].item = i;
                pos[k >> (64 - BAND_PART_BITS)]++;
            }
        }
        start[0] = 0;
        for (int p = 0; p < PARTS; p++) {
            start[p + 1] = start[p] + pos[p];
            pos[p] = start[p];
        }
        for (size_t k = 0; k < m; k++) /* stable: item order is kept within a part */
            part[pos[kv[k].key >> (64 - BAND_PART_BITS)]++] = kv[k];
        for (int p = 0; p < PARTS; p++) {
            const keyed *pk = part + start[p];
            size_t c = start[p + 1] - start[p];
            if (c < 2)
                continue;
            if (!buckets_reserve(&t, c, c))
                goto done;
            buckets_clear(&t);
            for (size_t k = 0; k < c; k++)
                buckets_add(&t, pk[k].key, (int)k);
            for (size_t s = 0; s <= t.mask; s++) {
                int h = t.slots[s].head;
                if (h < 0 || t.next[h] < 0)
                    continue; /* empty or a single member */
                int nm = 0;
                for (int i = h; i >= 0; i = t.next[i])
                    members[nm++] = pk[i].item;
                for (int x = 0; x < nm; x++)
                    for (int y = x + 1; y < nm; y++) {
                        if (nm > BUCKET_ALL_PAIRS && x != 0 && y != x + 1)
                            continue;
                        if (!add_pair(&j->out, members[x], members[y]))
                            goto done;
                    }
            }
        }
    }
    j->ok = true;
done:
    buckets_free(&t);
    free(kv);
    free(part);
    free(members);
    return NULL;
}

/* Candidate pairs of every band, sorted and unique: the bands are split over threads and
 * the lists joined, so the result does not depend on the thread count. OUT *out. */
static bool lsh_candidates(const dedup *d, const bool *rep, int bands, int rows,
                           pair_list *out)
{
    int n_threads = thread_count(d->o->threads);
    if (n_threads > bands)
        n_threads = bands;
    pthread_t th[64];
    band_job jobs[64];
    bool started[64] = {false};
    for (int t = 0; t < n_threads; t++)
        jobs[t] = (band_job){.d = d,
                             .rep = rep,
                             .n = (int)d->n,
                             .rows = rows,
                             .band0 = bands * t / n_threads,
                             .band1 = bands * (t + 1) / n_threads};
    report(d, "bands", 0, bands);
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&th[t], NULL, band_worker, &jobs[t]) == 0;
    band_worker(&jobs[0]);
    bool ok = jobs[0].ok;
    report(d, "bands", jobs[0].band1, bands); /* bands below band1 of a joined job are done */
    for (int t = 1; t < n_threads; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            band_worker(&jobs[t]); /* no thread: run it here */
        ok = ok && jobs[t].ok;
        report(d, "bands", jobs[t].band1, bands);
    }
    *out = jobs[0].out;
    for (int t = 1; t < n_threads; t++) {
        for (size_t k = 0; ok && k < jobs[t].out.n; k++)
            ok = add_pair(out, jobs[t].out.v[2 * k], jobs[t].out.v[2 * k + 1]);
        free(jobs[t].out.v);
    }
    if (!ok)
        return false;
    if (out->n)
        qsort(out->v, out->n, 2 * sizeof *out->v, cmp_pair);
    size_t u = 0;
    for (size_t k = 0; k < out->n; k++)
        if (u == 0 || cmp_pair(&out->v[2 * k], &out->v[2 * (u - 1)]) != 0) {
            out->v[2 * u] = out->v[2 * k];
            out->v[2 * u + 1] = out->v[2 * k + 1];
            u++;
        }
    out->n = u;
    return true;
}

static lt_data_status find_clusters(dedup *d, lt_data_dedup_result *res, char *err,
                                    size_t errlen)
{
    int n = (int)d->n;
    bool *rep = calloc((size_t)(n ? n : 1), sizeof *rep);
    pair_list cand = {0};
    buckets t = {0};
    lt_data_status r = LT_DATA_NOMEM;
    if (!rep || !buckets_init(&t, n, n))
        goto done;
    /* exact duplicates: same text hash; the first (lowest row) represents the group */
    buckets_clear(&t);
    for (int i = 0; i < n; i++)
        buckets_add(&t, hex64(d->items[i].hash), i);
    for (size_t s = 0; s <= t.mask; s++) {
        for (int i = t.slots[s].head; i >= 0; i = t.next[i]) {
            int j = t.slots[s].head;
            while (j != i && strcmp(d->items[j].hash, d->items[i].hash) != 0)
                j = t.next[j];
            if (j == i)
                rep[i] = true; /* first with this full hash */
            else
                uf_union(d->parent, j, i);
        }
    }
    buckets_free(&t); /* the band threads have tables of their own */
    if (!d->o->exact_only) {
        lt_lsh_params(d->o->threshold, LT_MINHASH_PERM, &res->bands, &res->rows);
        if (!lsh_candidates(d, rep, res->bands, res->rows, &cand))
            goto done;
        int *pairs = cand.v;
        size_t n_pairs = cand.n;
        res->n_candidates = (int64_t)n_pairs;
        size_t n_out = 0;
        for (size_t k = 0; k < n_pairs; k++) {
            if (k % PROGRESS_EVERY == 0)
                report(d, "verify", (int64_t)k, (int64_t)n_pairs);
            int a = pairs[2 * k], b = pairs[2 * k + 1];
            bool want_pairs = d->o->pairs_out != NULL;
            if (!want_pairs && uf_find(d->parent, a) == uf_find(d->parent, b))
                continue;
            double j = pair_jaccard(d, a, b);
            if (j < 0) {
                snprintf(err, errlen, "could not read back samples %lld and %lld to verify them",
                         (long long)d->items[a].row, (long long)d->items[b].row);
                r = LT_DATA_STORE;
                goto done;
            }
            if (j >= d->o->threshold) {
                uf_union(d->parent, a, b);
                if (want_pairs) {
                    /* reuse the candidate array's prefix for the verified pairs */
                    pairs[2 * n_out] = a;
                    pairs[2 * n_out + 1] = b;
                    n_out++;
                    if (d->o->pair_sim_out) {
                        double *ns = realloc(*d->o->pair_sim_out, n_out * sizeof *ns);
                        if (!ns)
                            goto done;
                        *d->o->pair_sim_out = ns;
                        ns[n_out - 1] = j;
                    }
                }
            }
        }
        report(d, "verify", (int64_t)n_pairs, (int64_t)n_pairs);
        if (d->o->pairs_out) {
            int64_t *po = malloc((n_out ? n_out : 1) * 2 * sizeof *po);
            if (!po)
                goto done;
            for (size_t k = 0; k < n_out; k++) {
                po[2 * k] = d->items[pairs[2 * k]].row;
                po[2 * k + 1] = d->items[pairs[2 * k + 1]].row;
            }
            *d->o->pairs_out = po;
            *d->o->n_pairs_out = (int64_t)n_out;
        }
    }
    r = LT_DATA_OK;
done:
    if (r == LT_DATA_NOMEM)
        snprintf(err, errlen, "out of memory while finding duplicates");
    buckets_free(&t);
    free(rep);
    free(cand.v);
    return r;
}

/* Picks keepers and writes removals into the new version. */
static lt_data_status write_removals(dedup *d, int64_t new_version, lt_data_dedup_result *res,
                                     char *err, size_t errlen)
{
    int n = (int)d->n;
    int *keeper = malloc((size_t)n * sizeof *keeper); /* per root */
    int *size = calloc((size_t)n, sizeof *size);
    lt_data_status r = LT_DATA_NOMEM;
    if (!keeper || !size)
        goto done;
    for (int i = 0; i < n; i++)
        keeper[i] = -1;
    for (int i = 0; i < n; i++) {
        int root = uf_find(d->parent, i);
        size[root]++;
        if (!d->items[i].member)
            continue;
        int k = keeper[root];
        if (k < 0 || (d->o->keep == LT_DATA_KEEP_LONGEST &&
                      d->items[i].resp_len > d->items[k].resp_len))
            keeper[root] = i; /* items are in row order, so ties keep the lower row */
    }
    for (int i = 0; i < n; i++) {
        if (i % PROGRESS_EVERY == 0)
            report(d, "clusters", i, n);
        int root = uf_find(d->parent, i);
        int k = keeper[root];
        if (!d->items[i].member || k < 0 || k == i)
            continue;
        bool exact = strcmp(d->items[i].hash, d->items[k].hash) == 0;
        double sim = exact ? 1.0 : pair_jaccard(d, i, k);
        if (exact)
            res->n_exact++;
        else
            res->n_near++;
        if (new_version &&
            lt_store_dedup_removal_add(d->st, new_version, d->items[i].sample_id,
                                       d->items[k].row, d->items[k].sample_id, sim,
                                       exact ? "exact" : "near") != LT_STORE_OK) {
            snprintf(err, errlen, "database error while recording a removal: %s",
                     lt_store_errmsg(d->st));
            r = LT_DATA_STORE;
            goto done;
        }
    }
    for (int i = 0; i < n; i++)
        if (size[i] > 1 && keeper[i] >= 0)
            res->n_clusters++;
    report(d, "clusters", n, n);
    r = LT_DATA_OK;
done:
    if (r == LT_DATA_NOMEM)
        snprintf(err, errlen, "out of memory while choosing rows to keep");
    free(keeper);
    free(size);
    return r;
}

/* Cluster of every member: the row of the cluster's lowest-row item. */
static lt_data_status groups_out(dedup *d, const lt_data_dedup_opts *o, char *err,
                                 size_t errlen)
{
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++)
        m += d->items[i].member;
    int64_t *rows = malloc((m ? m : 1) * sizeof *rows);
    int64_t *ids = malloc((m ? m : 1) * sizeof *ids);
    if (!rows || !ids) {
        free(rows);
        free(ids);
        snprintf(err, errlen, "out of memory");
        return LT_DATA_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (!d->items[i].member)
            continue;
        rows[k] = d->items[i].row;
        ids[k++] = d->items[uf_find(d->parent, (int)i)].row; /* roots are the lowest index */
    }
    *o->group_rows_out = rows;
    *o->group_ids_out = ids;
    *o->n_groups_out = (int64_t)m;
    return LT_DATA_OK;
}

lt_data_status lt_data_dedup(lt_store *st, const char *name, const lt_data_dedup_opts *o,
                             lt_data_dedup_result *res, char *err, size_t errlen)
{
    dedup d = {.st = st, .o = o, .sh = {.ngram = o->ngram, .char_shingles = o->char_shingles}};
    lt_data_status r = LT_DATA_OK;
    lt_store_version v;
    char params[64], vparams[256];
    memset(res, 0, sizeof *res);
    if (o->threshold <= 0 || o->threshold > 1 || o->ngram < 1 || o->ngram > 64 ||
        o->char_shingles < 0 || o->char_shingles > 64) {
        snprintf(err, errlen, "--threshold must be in (0, 1], --ngram in 1..64, "
                              "--char-shingles in 0..64");
        return LT_DATA_USAGE;
    }
    if (lt_store_version_get(st, name, o->version, &v) != LT_STORE_OK) {
        snprintf(err, errlen, "no dataset '%s'%s", name, o->version ? " at that version" : "");
        return LT_DATA_NOT_FOUND;
    }
    int64_t dataset_id = v.dataset_id, in_version = v.version_id;
    int in_number = v.version;
    d.n_members = v.n_rows;
    if (o->char_shingles > 0)
        snprintf(params, sizeof params, "c%d:p%d:b16", o->char_shingles, LT_MINHASH_PERM);
    else
        snprintf(params, sizeof params, "w%d:p%d:b16", o->ngram, LT_MINHASH_PERM);
    if (lt_store_begin(st) != LT_STORE_OK) {
        snprintf(err, errlen, "database busy: %s", lt_store_errmsg(st));
        return LT_DATA_STORE;
    }
    r = load_universe(&d, dataset_id, in_version, params, res, err, errlen);
    if (r != LT_DATA_OK)
        goto rollback;
    bool in_order = true;
    for (size_t i = 1; i < d.n && in_order; i++)
        in_order = d.items[i - 1].row < d.items[i].row;
    if (!in_order)
        qsort(d.items, d.n, sizeof *d.items, cmp_row);
    size_t n = d.n ? d.n : 1;
    d.parent = malloc(n * sizeof *d.parent);
    d.shingles = calloc(n, sizeof *d.shingles);
    d.n_shingles = calloc(n, sizeof *d.n_shingles);
    d.shingled = calloc(n, sizeof *d.shingled);
    if (!d.parent || !d.shingles || !d.n_shingles || !d.shingled) {
        snprintf(err, errlen, "out of memory");
        r = LT_DATA_NOMEM;
        goto rollback;
    }
    for (size_t i = 0; i < d.n; i++)
        d.parent[i] = (int)i;
    r = find_clusters(&d, res, err, errlen);
    if (r != LT_DATA_OK)
        goto rollback;
    if (!o->dry_run) {
        snprintf(vparams, sizeof vparams,
                 "{\"threshold\":%g,\"ngram\":%d,\"char_shingles\":%d,\"keep\":\"%s\","
                 "\"exact_only\":%s,\"from_version\":%d}",
                 o->threshold, o->ngram, o->char_shingles,
                 o->keep == LT_DATA_KEEP_FIRST ? "first" : "longest",
                 o->exact_only ? "true" : "false", in_number);
        if (lt_store_version_create(st, dataset_id, in_version, "dedup", vparams,
                                    &res->version_id, &res->version) != LT_STORE_OK)
            goto store_error;
    }
    r = write_removals(&d, res->version_id, res, err, errlen);
    if (r != LT_DATA_OK)
        goto rollback;
    if (o->group_rows_out) {
        r = groups_out(&d, o, err, errlen);
        if (r != LT_DATA_OK)
            goto rollback;
    }
    if (!o->dry_run) {
        int64_t kept = 0;
        if (lt_store_version_copy_members(st, in_version, res->version_id, &kept) !=
                LT_STORE_OK ||
            lt_store_version_finish(st, res->version_id, v.format, kept, 0) != LT_STORE_OK)
            goto store_error;
    }
    if (lt_store_commit(st) != LT_STORE_OK)
        goto store_error;
    goto free_all;
store_error:
    snprintf(err, errlen, "database error while writing the deduplicated version: %s",
             lt_store_errmsg(st));
    r = LT_DATA_STORE;
rollback:
    lt_store_rollback(st);
    res->version_id = 0;
free_all:
    for (size_t i = 0; d.shingles && i < d.n; i++)
        free(d.shingles[i]);
    free(d.shingles);
    free(d.n_shingles);
    free(d.shingled);
    free(d.parent);
    free(d.items);
    return r;
}
