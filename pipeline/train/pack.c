/*
 * pack.c - the rows of an epoch (deterministic shuffle, best-fit-decreasing packing) and the
 * assembly of one batch from them (padding, positions restarting per packed example, segment
 * ids). See batch.h for the rules; nothing here touches a device.
 */
#include "train/batch.h"

#include <stdlib.h>
#include <string.h>

uint64_t lt_rows_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void shuffle(int64_t *a, int64_t n, uint64_t *rng)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(lt_rows_rng_next(rng) % (uint64_t)(i + 1));
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void lt_rows_free(lt_rows *r)
{
    if (!r)
        return;
    free(r->member);
    free(r->off);
    memset(r, 0, sizeof(*r));
}

typedef struct sort_item {
    int64_t len, pos, ex;
} sort_item;

static int by_len_desc(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

/* Best-fit decreasing over order[0..n): fills out (member grouped by row). */
static bool pack_bfd(const lt_examples *ex, const int64_t *order, int64_t n, int64_t seq_len,
                     uint64_t *rng, lt_rows *out)
{
    bool ok = false;
    sort_item *items = malloc((size_t)(n ? n : 1) * sizeof(sort_item));
    int64_t *bin_of = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    int64_t *room = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    int64_t *count = calloc((size_t)(n ? n : 1) + 1, sizeof(int64_t));
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    int64_t *fill = calloc((size_t)(n ? n : 1) + 1, sizeof(int64_t));
    if (!items || !bin_of || !room || !count || !perm || !fill)
        goto done;
    for (int64_t i = 0; i < n; i++) {
        int64_t e = order[i];
        items[i] = (sort_item){ex->start[e + 1] - ex->start[e], i, e};
    }
    qsort(items, (size_t)n, sizeof(sort_item), by_len_desc);
    int64_t n_bins = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = -1;
        for (int64_t b = 0; b < n_bins; b++)
            if (room[b] >= items[i].len && (best < 0 || room[b] < room[best]))
                best = b;
        if (best < 0) {
            best = n_bins++;
            room[best] = seq_len;
        }
        room[best] -= items[i].len;
        bin_of[i] = best;
        count[best]++;
    }
    /* rows in a shuffled order, examples within a row longest first */
    for (int64_t b = 0; b < n_bins; b++)
        perm[b] = b;
    shuffle(perm, n_bins, rng);
    int64_t *rank = malloc((size_t)(n_bins ? n_bins : 1) * sizeof(int64_t));
    if (!rank)
        goto done;
    for (int64_t r = 0; r < n_bins; r++)
        rank[perm[r]] = r;
    out->n_rows = n_bins;
    out->off = calloc((size_t)n_bins + 1, sizeof(int64_t));
    out->member = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!out->off || !out->member) {
        free(rank);
        goto done;
    }
    for (int64_t r = 0; r < n_bins; r++)
        out->off[r + 1] = out->off[r] + count[perm[r]];
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rank[bin_of[i]];
        out->member[out->off[r] + fill[r]++] = items[i].ex;
    }
    free(rank);
    ok = true;
done:
    free(items);
    free(bin_of);
    free(room);
    free(count);
    free(perm);
    free(fill);
    return ok;
}

bool lt_rows_plan(const lt_examples *ex, bool do_shuffle, bool packing, int64_t seq_len,
                  uint64_t seed, int64_t epoch, lt_rows *out)
{
    memset(out, 0, sizeof(*out));
    int64_t n = ex->n;
    int64_t *order = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!order)
        return false;
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    uint64_t rng = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1);
    if (do_shuffle)
        shuffle(order, n, &rng);
    if (packing) {
        bool ok = pack_bfd(ex, order, n, seq_len, &rng, out);
        free(order);
        if (!ok)
            lt_rows_free(out);
        return ok;
    }
    out->member = order;
    out->n_rows = n;
    out->off = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (!out->off) {
        lt_rows_free(out);
        return false;
    }
    for (int64_t i = 0; i <= n; i++)
        out->off[i] = i;
    return true;
}

void lt_batch_buf_free(lt_batch_buf *buf)
{
    if (!buf)
        return;
    free(buf->ids);
    free(buf->labels);
    free(buf->positions);
    free(buf->segments);
    memset(buf, 0, sizeof(*buf));
}

static int64_t row_len(const lt_examples *ex, const lt_rows *rows, int64_t r)
{
    int64_t n = 0;
    for (int64_t k = rows->off[r]; k < rows->off[r + 1]; k++) {
        int64_t e = rows->member[k];
        n += ex->start[e + 1] - ex->start[e];
    }
    return n;
}

bool lt_batch_build(const lt_examples *ex, const lt_rows *rows, int64_t row0, int64_t n,
                    bool packed, int32_t pad_id, lt_batch_buf *buf)
{
    if (row0 < 0 || n <= 0 || row0 + n > rows->n_rows)
        return false;
    int64_t T = 1;
    for (int64_t r = row0; r < row0 + n; r++) {
        int64_t l = row_len(ex, rows, r);
        if (l > T)
            T = l;
    }
    size_t need = (size_t)(n * T);
    if (need > buf->cap) {
        int32_t *a = realloc(buf->ids, need * sizeof(int32_t));
        if (a)
            buf->ids = a;
        int32_t *b = realloc(buf->labels, need * sizeof(int32_t));
        if (b)
            buf->labels = b;
        int32_t *c = realloc(buf->positions, need * sizeof(int32_t));
        if (c)
            buf->positions = c;
        int32_t *d = realloc(buf->segments, need * sizeof(int32_t));
        if (d)
            buf->segments = d;
        if (!a || !b || !c || !d)
            return false;
        buf->cap = need;
    }
    buf->n_labels = 0;
    for (int64_t r = 0; r < n; r++) {
        int32_t *ids = buf->ids + r * T, *lab = buf->labels + r * T;
        int32_t *pos = buf->positions + r * T, *seg = buf->segments + r * T;
        int64_t t = 0;
        int32_t s = 0;
        for (int64_t k = rows->off[row0 + r]; k < rows->off[row0 + r + 1]; k++, s++) {
            int64_t e = rows->member[k];
            for (int64_t i = ex->start[e]; i < ex->start[e + 1]; i++, t++) {
                ids[t] = ex->ids[i];
                lab[t] = ex->labels[i];
                pos[t] = (int32_t)(i - ex->start[e]);
                seg[t] = s;
                buf->n_labels += lab[t] != -100;
            }
        }
        for (int32_t p = 0; t < T; t++, p++) {
            ids[t] = pad_id;
            lab[t] = -100;
            pos[t] = p;
            seg[t] = s;
        }
    }
    buf->b.B = n;
    buf->b.T = T;
    buf->b.ids = buf->ids;
    buf->b.labels = buf->labels;
    buf->b.positions = packed ? buf->positions : NULL;
    buf->b.segments = packed ? buf->segments : NULL;
    return true;
}
