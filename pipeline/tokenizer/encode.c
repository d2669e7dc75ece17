/*
 * encode.c - text -> ids and ids -> text. Encoding: added tokens are found first (longest
 * match, lstrip/rstrip/single_word honoured), each stretch between them is normalized
 * (NFC, Prepend, Replace, Metaspace's rules), pre-tokenized by the stages of the
 * tokenizer.json and handed piece by piece to the BPE core. Offsets are tracked back to the
 * caller's bytes so the chat encoder can mark assistant tokens.
 */
#include "tok_impl.h"
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

typedef struct enc_ctx {
    lt_tokenizer *tok;
    const char *text; /* normalized stretch */
    lt_tok_ids *out;
    lt_tok_status st;
} enc_ctx;

typedef struct level {
    enc_ctx *e;
    int k;
    size_t base;
} level;

static int run_stage(enc_ctx *e, int k, size_t start, size_t len);

static int emit_level(void *p, size_t start, size_t len)
{
    level *l = p;
    return run_stage(l->e, l->k + 1, l->base + start, len);
}

static int is_num_at(const char *s, size_t n, size_t i, int *len)
{
    uint32_t cp = lt_utf8_next((const unsigned char *)s + i, n - i, len);
    return lt_uc_class(cp) == LT_UC_NUMBER;
}

static int run_stage(enc_ctx *e, int k, size_t start, size_t len)
{
    lt_tokenizer *t = e->tok;
    if (k == t->n_stages) {
        e->st = tok_bpe_word(t, e->text + start, len, (uint32_t)start, e->out);
        return e->st != LT_TOK_OK;
    }
    const tok_stage *st = &t->stages[k];
    level l = {e, k, start};
    const char *s = e->text + start;
    if (st->kind == TOK_STAGE_SPLIT)
        return tok_pretok_split(st->split, s, len, emit_level, &l);
    if (st->kind == TOK_STAGE_DIGITS) {
        size_t i = 0;
        while (i < len) {
            int clen;
            size_t j = i;
            int num = is_num_at(s, len, i, &clen);
            if (num && st->individual_digits)
                j = i + (size_t)clen;
            else
                while (j < len && is_num_at(s, len, j, &clen) == num)
                    j += (size_t)clen;
            int r = emit_level(&l, i, j - i);
            if (r)
                return r;
            i = j;
        }
        return 0;
    }
    /* Metaspace split: each piece starts at a U+2581 (merged with what follows) */
    size_t i = 0;
    while (i < len) {
        size_t j = i + 1;
        while (j < len && !(j + 3 <= len && memcmp(s + j, "\xe2\x96\x81", 3) == 0))
            j++;
        int r = emit_level(&l, i, j - i);
        if (r)
            return r;
        i = j;
    }
    return 0;
}

/* A growing byte buffer with, per byte, the offset in the source it came from. */
typedef struct nbuf {
    char *s;
    uint32_t *map;
    size_t n, cap;
} nbuf;

static int nbuf_put(nbuf *b, const char *s, size_t n, uint32_t src)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *ns = realloc(b->s, cap);
        if (!ns)
            return -1;
        b->s = ns;
        uint32_t *nm = realloc(b->map, cap * sizeof *nm);
        if (!nm)
            return -1;
        b->map = nm;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    for (size_t i = 0; i < n; i++)
        b->map[b->n + i] = src;
    b->n += n;
    return 0;
}

/* Applies one normalizer step to cur (text + map), producing next. */
static int norm_step(const tok_norm *nm, const nbuf *cur, nbuf *next, bool at_start)
{
    next->n = 0;
    if (nm->kind == TOK_NORM_PREPEND) {
        size_t la = strlen(nm->a);
        bool metaspace = nm->b != NULL;
        bool skip = cur->n == 0;
        if (metaspace)
            skip = skip || (cur->n >= la && memcmp(cur->s, nm->a, la) == 0) ||
                   (strcmp(nm->b, "first") == 0 && !at_start);
        if (!skip && nbuf_put(next, nm->a, la, cur->n ? cur->map[0] : 0) < 0)
            return -1;
        for (size_t i = 0; i < cur->n; i++)
            if (nbuf_put(next, cur->s + i, 1, cur->map[i]) < 0)
                return -1;
        return 0;
    }
    if (nm->kind == TOK_NORM_REPLACE) {
        size_t la = strlen(nm->a), lb = strlen(nm->b);
        for (size_t i = 0; i < cur->n;) {
            if (i + la <= cur->n && memcmp(cur->s + i, nm->a, la) == 0) {
                if (nbuf_put(next, nm->b, lb, cur->map[i]) < 0)
                    return -1;
                i += la;
            } else {
                if (nbuf_put(next, cur->s + i, 1, cur->map[i]) < 0)
                    return -1;
                i++;
            }
        }
        return 0;
    }
    /* NFC: offsets inside a changed stretch are spread proportionally */
    if (lt_uc_is_nfc_quick(cur->s, cur->n))
        return nbuf_put(next, cur->s, cur->n, 0) < 0
                   ? -1
                   : (memcpy(next->map, cur->map, cur->n * sizeof *cur->map), 0);
    size_t m;
    char *nfc = lt_uc_nfc(cur->s, cur->n, &m);
    if (!nfc)
        return -1;
    int r = nbuf_put(next, nfc, m, 0);
    for (size_t i = 0; r == 0 && i < m; i++)
        next->map[i] = cur->map[m ? i * cur->n / m : 0];
    free(nfc);
    return r;
}

/* Encodes text[a..b) (no added tokens inside). */
static lt_tok_status encode_stretch(lt_tokenizer *t, const char *text, size_t a, size_t b,
                                    lt_tok_ids *out)
{
    enc_ctx e = {t, text + a, out, LT_TOK_OK};
    size_t from = out->n;
    if (b <= a)
        return LT_TOK_OK;
    if (t->n_norms == 0) {
        run_stage(&e, 0, 0, b - a);
        for (size_t i = from; i < out->n; i++)
            out->offsets[i] += (uint32_t)a;
        return e.st;
    }
    nbuf x = {0}, y = {0};
    lt_tok_status st = LT_TOK_OK;
    if (nbuf_put(&x, text + a, b - a, 0) < 0)
        goto oom;
    for (size_t i = 0; i < x.n; i++)
        x.map[i] = (uint32_t)(a + i);
    for (int k = 0; k < t->n_norms; k++) {
        if (norm_step(&t->norms[k], &x, &y, a == 0) < 0)
            goto oom;
        nbuf tmp = x;
        x = y;
        y = tmp;
    }
    if (x.n == 0)
        goto done;
    e.text = x.s;
    run_stage(&e, 0, 0, x.n);
    st = e.st;
    for (size_t i = from; i < out->n; i++)
        out->offsets[i] = out->offsets[i] < x.n ? x.map[out->offsets[i]] : (uint32_t)b;
    goto done;
oom:
    st = LT_TOK_ERR_NOMEM;
done:
    free(x.s);
    free(x.map);
    free(y.s);
    free(y.map);
    return st;
}

static bool is_space_byte(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static bool is_word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_' || c >= 0x80;
}

/* The added token matching at i (longest first), or NULL. */
static const tok_added *added_at(const lt_tokenizer *t, const char *s, size_t n, size_t i)
{
    int k = t->added_first[(unsigned char)s[i]];
    if (k < 0)
        return NULL;
    for (; k < t->n_added && t->added[k].content[0] == s[i]; k++) {
        const tok_added *a = &t->added[k];
        if (a->len > n - i || memcmp(s + i, a->content, a->len) != 0)
            continue;
        if (a->single_word && ((i > 0 && is_word_byte((unsigned char)s[i - 1])) ||
                               (i + a->len < n && is_word_byte((unsigned char)s[i + a->len]))))
            continue;
        return a;
    }
    return NULL;
}

lt_tok_status lt_tokenizer_encode(const lt_tokenizer *tok, const char *text, size_t n, int flags,
                                  lt_tok_ids *out, char *err, size_t err_n)
{
    lt_tokenizer *t = (lt_tokenizer *)tok; /* only the locked cache changes */
    lt_tok_status st = LT_TOK_OK;
    size_t start = 0;
    if (n > UINT32_MAX - 16)
        return tok_fail(err, err_n, LT_TOK_ERR_INVALID, "text of %zu bytes is too long to encode",
                        n);
    if ((flags & LT_TOK_ADD_SPECIAL) && t->add_bos && t->bos_id >= 0 &&
        tok_ids_push(out, t->bos_id, 0) < 0)
        goto oom;
    if (t->n_added && !(flags & LT_TOK_NO_SPECIAL_SPLIT)) {
        for (size_t i = 0; i < n;) {
            const tok_added *a = added_at(t, text, n, i);
            if (!a) {
                i++;
                continue;
            }
            size_t end = i, next = i + a->len;
            if (a->lstrip)
                while (end > start && is_space_byte((unsigned char)text[end - 1]))
                    end--;
            if (a->rstrip)
                while (next < n && is_space_byte((unsigned char)text[next]))
                    next++;
            if ((st = encode_stretch(t, text, start, end, out)) != LT_TOK_OK)
                goto fail;
            if (tok_ids_push(out, a->id, (uint32_t)end) < 0)
                goto oom;
            i = start = next;
        }
    }
    if ((st = encode_stretch(t, text, start, n, out)) != LT_TOK_OK)
        goto fail;
    if ((flags & LT_TOK_ADD_SPECIAL) && t->add_eos && t->eos_id >= 0 &&
        tok_ids_push(out, t->eos_id, (uint32_t)n) < 0)
        goto oom;
    return LT_TOK_OK;
oom:
    st = LT_TOK_ERR_NOMEM;
fail:
    return tok_fail(err, err_n, st, "encode: %s", lt_tok_status_str(st));
}

typedef struct obuf {
    char *s;
    size_t n, cap;
} obuf;

static int obuf_put(obuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2 + 64;
        char *ns = realloc(b->s, cap);
        if (!ns)
            return -1;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

/* Puts a SentencePiece-style piece, with the decoder's Replace applied. */
static int put_piece(const lt_tokenizer *t, obuf *b, const char *p, size_t n)
{
    const char *from = t->dec_from ? t->dec_from : (t->dec_metaspace ? "\xe2\x96\x81" : NULL);
    const char *to = t->dec_from ? t->dec_to : " ";
    if (!from)
        return obuf_put(b, p, n);
    size_t lf = strlen(from), lt = strlen(to);
    for (size_t i = 0; i < n;) {
        if (i + lf <= n && memcmp(p + i, from, lf) == 0) {
            if (obuf_put(b, to, lt) < 0)
                return -1;
            i += lf;
        } else {
            if (obuf_put(b, p + i, 1) < 0)
                return -1;
            i++;
        }
    }
    return 0;
}

lt_tok_status lt_tokenizer_decode(const lt_tokenizer *t, const int32_t *ids, size_t n, int flags,
                                  char **out, size_t *out_n, char *err, size_t err_n)
{
    obuf b = {0};
    *out = NULL;
    *out_n = 0;
    if (obuf_put(&b, "", 0) < 0)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab || !t->piece[id]) {
            free(b.s);
            return tok_fail(err, err_n, LT_TOK_ERR_INVALID,
                            "decode: token id %d (position %zu) is not in the vocabulary of %d",
                            (int)id, i, t->n_vocab);
        }
        uint8_t f = t->flags[id];
        int r;
        if ((f & TOK_F_SPECIAL) && (flags & LT_TOK_SKIP_SPECIAL))
            continue;
        if (f & TOK_F_ADDED)
            r = obuf_put(&b, t->piece[id], strlen(t->piece[id]));
        else if (t->byte_level || t->dec_byte_level)
            r = obuf_put(&b, t->raw[id], t->raw_len[id]);
        else if ((f & TOK_F_BYTE) && t->dec_byte_fallback) {
            char byte = (char)strtol(t->piece[id] + 3, NULL, 16);
            r = obuf_put(&b, &byte, 1);
        } else {
            size_t before = b.n;
            r = put_piece(t, &b, t->piece[id], strlen(t->piece[id]));
            /* Metaspace decoder: the first token loses its leading space */
            if (r == 0 && t->dec_metaspace && !t->dec_strip_start && before == 0 && b.n > 0 &&
                b.s[0] == ' ') {
                memmove(b.s, b.s + 1, b.n);
                b.n--;
            }
        }
        if (r < 0)
            goto oom;
    }
    size_t skip = 0;
    while ((int)skip < t->dec_strip_start && skip < b.n && b.s[skip] == ' ')
        skip++;
    if (skip) {
        memmove(b.s, b.s + skip, b.n - skip + 1);
        b.n -= skip;
    }
    *out = b.s;
    *out_n = b.n;
    return LT_TOK_OK;
oom:
    free(b.s);
    return tok_fail(err, err_n, LT_TOK_ERR_NOMEM, "decode: out of memory");
}
