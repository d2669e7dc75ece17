/*
 * bpe.c - the BPE core: hash tables for the vocabulary and the merge ranks, the merge loop of
 * one pre-token (a binary heap of candidate pairs ordered by rank, then position: the
 * lowest-ranked pair merges first, the leftmost among equals), and a cache of pre-token ->
 * ids. Knows nothing of JSON or of how text is split into pre-tokens.
 */
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lt_tok_status tok_fail(char *err, size_t err_n, lt_tok_status s, const char *fmt, ...)
{
    if (err && err_n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_n, fmt, ap);
        va_end(ap);
    }
    return s;
}

uint64_t tok_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ (w * 0xc4ceb9fe1a85ec53ull)) * 0x100000001b3ull;
        h ^= h >> 29;
        s += 8, n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ (w * 0xc4ceb9fe1a85ec53ull)) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return h;
}

int tok_map_init(tok_map *m, uint32_t expected)
{
    uint32_t cap = 16;
    while (cap < expected * 2 && cap < (1u << 30))
        cap <<= 1;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return -1;
    for (uint32_t i = 0; i < cap; i++)
        m->slots[i].val = -1;
    m->cap = cap;
    m->n = 0;
    return 0;
}

void tok_map_free(tok_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static int map_grow(tok_map *m)
{
    tok_map bigger;
    if (tok_map_init(&bigger, m->cap) < 0)
        return -1;
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->slots[i].val >= 0)
            tok_map_put(&bigger, m->slots[i].s, m->slots[i].len, m->slots[i].val);
    free(m->slots);
    *m = bigger;
    return 0;
}

int tok_map_put(tok_map *m, const char *s, uint32_t len, int32_t val)
{
    if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0)
        return -1;
    uint32_t i = (uint32_t)tok_hash_bytes(s, len) & (m->cap - 1);
    while (m->slots[i].val >= 0) {
        if (m->slots[i].len == len && memcmp(m->slots[i].s, s, len) == 0) {
            m->slots[i].val = val;
            return 0;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->slots[i].s = s;
    m->slots[i].len = len;
    m->slots[i].val = val;
    m->n++;
    return 0;
}

int32_t tok_map_get(const tok_map *m, const char *s, uint32_t len)
{
    if (!m->slots)
        return -1;
    uint32_t i = (uint32_t)tok_hash_bytes(s, len) & (m->cap - 1);
    while (m->slots[i].val >= 0) {
        if (m->slots[i].len == len && memcmp(m->slots[i].s, s, len) == 0)
            return m->slots[i].val;
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

static uint32_t pair_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

int tok_pairs_init(tok_pairs *p, uint32_t expected)
{
    uint32_t cap = 16;
    while (cap < expected * 2 && cap < (1u << 30))
        cap <<= 1;
    p->slots = calloc(cap, sizeof *p->slots);
    if (!p->slots)
        return -1;
    p->cap = cap;
    p->n = 0;
    return 0;
}

void tok_pairs_free(tok_pairs *p)
{
    free(p->slots);
    p->slots = NULL;
    p->cap = p->n = 0;
}

int tok_pairs_put(tok_pairs *p, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    if ((p->n + 1) * 2 > p->cap) {
        tok_pairs bigger;
        if (tok_pairs_init(&bigger, p->cap) < 0)
            return -1;
        for (uint32_t i = 0; i < p->cap; i++)
            if (p->slots[i].key) {
                uint64_t k = p->slots[i].key - 1;
                tok_pairs_put(&bigger, (int32_t)(k >> 32), (int32_t)(k & 0xffffffff),
                              p->slots[i].rank, p->slots[i].id);
            }
        free(p->slots);
        *p = bigger;
    }
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t i = pair_hash(key) & (p->cap - 1);
    while (p->slots[i].key) {
        if (p->slots[i].key == key)
            return 0; /* the first (lowest-ranked) occurrence wins */
        i = (i + 1) & (p->cap - 1);
    }
    p->slots[i].key = key;
    p->slots[i].rank = rank;
    p->slots[i].id = id;
    p->n++;
    return 0;
}

const tok_pair_slot *tok_pairs_get(const tok_pairs *p, int32_t a, int32_t b)
{
    if (!p->slots)
        return NULL;
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t i = pair_hash(key) & (p->cap - 1);
    while (p->slots[i].key) {
        if (p->slots[i].key == key)
            return &p->slots[i];
        i = (i + 1) & (p->cap - 1);
    }
    return NULL;
}

int tok_ids_push(lt_tok_ids *v, int32_t id, uint32_t offset)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *ids = realloc(v->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        v->ids = ids;
        uint32_t *offs = realloc(v->offsets, cap * sizeof *offs);
        if (!offs)
            return -1;
        v->offsets = offs;
        uint8_t *mask = realloc(v->mask, cap);
        if (!mask)
            return -1;
        v->mask = mask;
        v->cap = cap;
    }
    v->ids[v->n] = id;
    v->offsets[v->n] = offset;
    v->mask[v->n] = 0;
    v->n++;
    return 0;
}

void lt_tok_ids_free(lt_tok_ids *v)
{
    if (!v)
        return;
    free(v->ids);
    free(v->offsets);
    free(v->mask);
    memset(v, 0, sizeof *v);
}

/* ---- cache: short pre-tokens only; cleared when full ---- */
#define CACHE_MAX_KEY 48
#define CACHE_MAX_ENTRIES 65536u

void tok_cache_init(lt_tokenizer *tok)
{
    pthread_mutex_init(&tok->cache_lock, NULL);
    tok->cache_ok = true; /* the buffers come with the first insertion */
}

/* Allocates the cache's buffers (lock held); false when out of memory. */
static bool cache_alloc(lt_tokenizer *tok)
{
    if (tok->cache_entries)
        return true;
    tok->cache_entries = malloc(CACHE_MAX_ENTRIES * sizeof *tok->cache_entries);
    tok->cache_keys_cap = (size_t)CACHE_MAX_ENTRIES * 12;
    tok->cache_keys = malloc(tok->cache_keys_cap);
    tok->cache_ids_cap = (size_t)CACHE_MAX_ENTRIES * 8;
    tok->cache_ids = malloc(tok->cache_ids_cap * sizeof *tok->cache_ids);
    tok->cache_cap = CACHE_MAX_ENTRIES;
    if (!tok->cache_entries || !tok->cache_keys || !tok->cache_ids ||
        tok_map_init(&tok->cache, CACHE_MAX_ENTRIES) < 0) {
        free(tok->cache_entries);
        free(tok->cache_keys);
        free(tok->cache_ids);
        tok_map_free(&tok->cache);
        tok->cache_entries = NULL;
        tok->cache_keys = NULL;
        tok->cache_ids = NULL;
        return false; /* tried again next time */
    }
    return true;
}

void tok_cache_free(lt_tokenizer *tok)
{
    pthread_mutex_destroy(&tok->cache_lock);
    tok_map_free(&tok->cache);
    free(tok->cache_entries);
    free(tok->cache_keys);
    free(tok->cache_ids);
}

static void cache_clear(lt_tokenizer *tok)
{
    for (uint32_t i = 0; i < tok->cache.cap; i++)
        tok->cache.slots[i].val = -1;
    tok->cache.n = 0;
    tok->cache_n = 0;
    tok->cache_keys_n = 0;
    tok->cache_ids_n = 0;
}

/* Looks p up; on a hit appends the ids with offsets from base and returns 1. */
static int cache_get(lt_tokenizer *tok, const char *p, size_t n, uint32_t base, lt_tok_ids *out,
                     int *oom)
{
    int hit = 0;
    pthread_mutex_lock(&tok->cache_lock);
    int32_t e = tok_map_get(&tok->cache, p, (uint32_t)n);
    if (e >= 0) {
        const tok_cache_entry *ce = &tok->cache_entries[e];
        for (uint32_t k = 0; k < ce->n; k++) {
            const int32_t *pr = tok->cache_ids + ce->off + 2 * k;
            if (tok_ids_push(out, pr[0], base + (uint32_t)pr[1]) < 0) {
                *oom = 1;
                break;
            }
        }
        hit = 1;
    }
    pthread_mutex_unlock(&tok->cache_lock);
    return hit;
}

static void cache_put(lt_tokenizer *tok, const char *p, size_t n, const lt_tok_ids *out,
                      size_t from, uint32_t base)
{
    size_t k = out->n - from;
    pthread_mutex_lock(&tok->cache_lock);
    if (!cache_alloc(tok)) {
        pthread_mutex_unlock(&tok->cache_lock);
        return;
    }
    if (tok->cache_n == tok->cache_cap || tok->cache_keys_n + n > tok->cache_keys_cap ||
        tok->cache_ids_n + 2 * k > tok->cache_ids_cap)
        cache_clear(tok);
    if (tok->cache_keys_n + n <= tok->cache_keys_cap &&
        tok->cache_ids_n + 2 * k <= tok->cache_ids_cap) {
        char *key = tok->cache_keys + tok->cache_keys_n;
        memcpy(key, p, n);
        tok_cache_entry *ce = &tok->cache_entries[tok->cache_n];
        ce->off = (uint32_t)tok->cache_ids_n;
        ce->n = (uint32_t)k;
        for (size_t i = 0; i < k; i++) {
            tok->cache_ids[tok->cache_ids_n++] = out->ids[from + i];
            tok->cache_ids[tok->cache_ids_n++] = (int32_t)(out->offsets[from + i] - base);
        }
        if (tok_map_put(&tok->cache, key, (uint32_t)n, (int32_t)tok->cache_n) == 0) {
            tok->cache_keys_n += n;
            tok->cache_n++;
        } else
            tok->cache_ids_n = ce->off;
    }
    pthread_mutex_unlock(&tok->cache_lock);
}

/* ---- the merge loop ---- */
typedef struct heap_item {
    int32_t rank, pos;
    int32_t left, right; /* ids when pushed, to drop stale entries */
} heap_item;

static int item_less(const heap_item *a, const heap_item *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_item *h, size_t *n, heap_item it)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!item_less(&it, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static heap_item heap_pop(heap_item *h, size_t *n)
{
    heap_item top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && item_less(&h[c + 1], &h[c]))
            c++;
        if (!item_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

typedef struct sym {
    int32_t id, prev, next;
    uint32_t start;
} sym;

static void try_pair(const lt_tokenizer *tok, const sym *s, int32_t i, heap_item *h, size_t *hn)
{
    if (i < 0 || s[i].next < 0)
        return;
    const tok_pair_slot *m = tok_pairs_get(&tok->merges, s[i].id, s[s[i].next].id);
    if (m) {
        heap_item it = {m->rank, i, s[i].id, s[s[i].next].id};
        heap_push(h, hn, it);
    }
}

/* Initial symbols of a SentencePiece-style word: one per character in the vocab, else its
 * bytes as <0xNN> tokens (byte fallback), else unk (consecutive unks fused if asked). */
static int32_t sp_symbols(const lt_tokenizer *tok, const char *p, size_t n, sym *s)
{
    int32_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        unsigned char c = (unsigned char)p[i];
        if (c >= 0xF0)
            len = 4;
        else if (c >= 0xE0)
            len = 3;
        else if (c >= 0xC0)
            len = 2;
        if (i + len > n)
            len = n - i;
        for (size_t j = 1; j < len; j++)
            if (((unsigned char)p[i + j] & 0xC0) != 0x80) {
                len = j;
                break;
            }
        int32_t id = tok_map_get(&tok->model_vocab, p + i, (uint32_t)len);
        if (id >= 0) {
            s[k++] = (sym){id, 0, 0, (uint32_t)i};
        } else {
            bool all = tok->byte_fallback;
            for (size_t j = 0; all && j < len; j++)
                all = tok->byte_id[(unsigned char)p[i + j]] >= 0;
            if (all) {
                for (size_t j = 0; j < len; j++)
                    s[k++] = (sym){tok->byte_id[(unsigned char)p[i + j]], 0, 0, (uint32_t)(i + j)};
            } else if (tok->unk_id >= 0) {
                if (!(tok->fuse_unk && k > 0 && s[k - 1].id == tok->unk_id))
                    s[k++] = (sym){tok->unk_id, 0, 0, (uint32_t)i};
            }
        }
        i += len;
    }
    return k;
}

lt_tok_status tok_bpe_word(lt_tokenizer *tok, const char *p, size_t n, uint32_t base,
                           lt_tok_ids *out)
{
    sym stack_s[64];
    heap_item stack_h[192];
    sym *s = stack_s;
    heap_item *h = stack_h;
    lt_tok_status st = LT_TOK_OK;
    int oom = 0;
    bool cacheable = tok->cache_ok && n <= CACHE_MAX_KEY;
    size_t from = out->n;

    if (n == 0)
        return LT_TOK_OK;
    if (tok->ignore_merges) {
        int32_t id = tok_map_get(&tok->model_vocab, p, (uint32_t)n);
        if (id >= 0)
            return tok_ids_push(out, id, base) < 0 ? LT_TOK_ERR_NOMEM : LT_TOK_OK;
    }
    if (cacheable && cache_get(tok, p, n, base, out, &oom))
        return oom ? LT_TOK_ERR_NOMEM : LT_TOK_OK;
    if (n > 64) {
        s = malloc(n * sizeof *s);
        h = malloc(3 * n * sizeof *h);
        if (!s || !h) {
            st = LT_TOK_ERR_NOMEM;
            goto free_buffers;
        }
    }
    int32_t k = 0;
    if (tok->byte_level) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = tok->byte_id[(unsigned char)p[i]];
            if (id < 0)
                id = tok->unk_id;
            if (id >= 0)
                s[k++] = (sym){id, 0, 0, (uint32_t)i};
        }
    } else
        k = sp_symbols(tok, p, n, s);
    for (int32_t i = 0; i < k; i++) {
        s[i].prev = i - 1;
        s[i].next = i + 1 < k ? i + 1 : -1;
    }
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < k; i++)
        try_pair(tok, s, i, h, &hn);
    while (hn) {
        heap_item it = heap_pop(h, &hn);
        int32_t i = it.pos, j = s[i].next;
        if (s[i].id != it.left || j < 0 || s[j].id != it.right)
            continue; /* stale: one side merged since */
        const tok_pair_slot *m = tok_pairs_get(&tok->merges, it.left, it.right);
        s[i].id = m->id;
        s[j].id = -2; /* dead */
        s[i].next = s[j].next;
        if (s[j].next >= 0)
            s[s[j].next].prev = i;
        try_pair(tok, s, s[i].prev, h, &hn);
        try_pair(tok, s, i, h, &hn);
    }
    for (int32_t i = k > 0 ? 0 : -1; i >= 0; i = s[i].next)
        if (tok_ids_push(out, s[i].id, base + s[i].start) < 0) {
            st = LT_TOK_ERR_NOMEM;
            goto free_buffers;
        }
    if (cacheable && out->n > from)
        cache_put(tok, p, n, out, from, base);
free_buffers:
    if (s != stack_s)
        free(s);
    if (h != stack_h)
        free(h);
    return st;
}
