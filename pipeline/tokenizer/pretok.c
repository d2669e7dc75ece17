/*
 * pretok.c - the pre-tokenizer split regexes of GPT-2, Llama-3 and Qwen2, written out as
 * hand-made scanners (no regex engine). Each function reproduces the leftmost-first,
 * backtracking semantics of its pattern exactly:
 *
 *   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   Qwen2:   as Llama-3 with \p{N} (one digit per piece)
 *
 * \s is Unicode White_Space. A byte that is not valid UTF-8 is one character of class
 * "other". Pieces cover the input exactly, in order, without gaps.
 */
#include "tok_impl.h"
#include "unicode.h"

#include <string.h>

static const char PAT_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char PAT_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

tok_split tok_pretok_detect(const char *pattern)
{
    if (strcmp(pattern, PAT_GPT2) == 0)
        return TOK_SPLIT_GPT2;
    if (strcmp(pattern, PAT_LLAMA3) == 0)
        return TOK_SPLIT_LLAMA3;
    if (strcmp(pattern, PAT_QWEN2) == 0)
        return TOK_SPLIT_QWEN2;
    return 0;
}

const char *tok_pretok_name(tok_split kind)
{
    switch (kind) {
    case TOK_SPLIT_GPT2: return "GPT-2";
    case TOK_SPLIT_LLAMA3: return "Llama-3";
    case TOK_SPLIT_QWEN2: return "Qwen2";
    }
    return "?";
}

/* ASCII classes, the common case, without touching the tables. */
static const uint8_t ascii_class[128] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x30 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
    /* 0x40 */ 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    /* 0x60 */ 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
};

typedef struct scan {
    const unsigned char *s;
    size_t n;
} scan;

/* Class of the character at byte i (i < n); *len gets its length, *cp the code point. */
static inline int cls(const scan *sc, size_t i, int *len, uint32_t *cp)
{
    unsigned char c = sc->s[i];
    if (c < 0x80) {
        *len = 1;
        *cp = c;
        return ascii_class[c];
    }
    *cp = lt_utf8_next(sc->s + i, sc->n - i, len);
    return lt_uc_class(*cp);
}

/* Class of the character at i, or -1 past the end. */
static inline int cls_at(const scan *sc, size_t i)
{
    int len;
    uint32_t cp;
    return i < sc->n ? cls(sc, i, &len, &cp) : -1;
}

/* Advances over characters of class c starting at i; at most max characters. */
static size_t run_of(const scan *sc, size_t i, int c, size_t max)
{
    size_t k = 0;
    while (i < sc->n && k < max) {
        int len;
        uint32_t cp;
        if (cls(sc, i, &len, &cp) != c)
            break;
        i += (size_t)len;
        k++;
    }
    return i;
}

/* 's 't 're 've 'm 'll 'd at i (s[i] == '\''): length of the match or 0. */
static size_t contraction(const scan *sc, size_t i, bool fold)
{
    static const char *const suf[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    for (int k = 0; k < 7; k++) {
        size_t m = strlen(suf[k]);
        if (i + 1 + m > sc->n)
            continue;
        size_t j = 0;
        for (; j < m; j++) {
            unsigned char c = sc->s[i + 1 + j];
            if (fold && c >= 'A' && c <= 'Z')
                c = (unsigned char)(c + 32);
            if (c != (unsigned char)suf[k][j])
                break;
        }
        if (j == m)
            return 1 + m;
    }
    return 0;
}

/* Whitespace at i: the end of \s+(?!\S) or \s+ (and, for the Llama-3 family, \s*[\r\n]+
 * first). */
static size_t whitespace(const scan *sc, size_t i, bool newline_rule)
{
    size_t j = i, last_start = i, nchars = 0, after_nl = 0;
    while (j < sc->n) {
        int len;
        uint32_t cp;
        if (cls(sc, j, &len, &cp) != LT_UC_SPACE)
            break;
        if (cp == '\r' || cp == '\n')
            after_nl = j + 1;
        last_start = j;
        j += (size_t)len;
        nchars++;
    }
    if (newline_rule && after_nl)
        return after_nl;
    if (j == sc->n || nchars < 2)
        return j;
    return last_start;
}

static size_t next_gpt2(const scan *sc, size_t i)
{
    int len;
    uint32_t cp;
    int c = cls(sc, i, &len, &cp);
    size_t m;
    if (cp == '\'' && (m = contraction(sc, i, false)))
        return i + m;
    size_t j = i;
    if (cp == ' ' && i + 1 < sc->n) {
        int c2 = cls_at(sc, i + 1);
        if (c2 != LT_UC_SPACE) {
            c = c2;
            j = i + 1;
        }
    }
    if (c == LT_UC_LETTER || c == LT_UC_NUMBER || c == LT_UC_OTHER)
        return run_of(sc, j, c, (size_t)-1);
    return whitespace(sc, i, false);
}

static size_t next_llama3(const scan *sc, size_t i, size_t max_digits)
{
    int len;
    uint32_t cp;
    int c = cls(sc, i, &len, &cp);
    size_t m;
    if (cp == '\'' && (m = contraction(sc, i, true)))
        return i + m;
    if (c == LT_UC_LETTER)
        return run_of(sc, i, LT_UC_LETTER, (size_t)-1);
    if (c != LT_UC_NUMBER && cp != '\r' && cp != '\n' && cls_at(sc, i + (size_t)len) == LT_UC_LETTER)
        return run_of(sc, i + (size_t)len, LT_UC_LETTER, (size_t)-1);
    if (c == LT_UC_NUMBER)
        return run_of(sc, i, LT_UC_NUMBER, max_digits);
    size_t j = i;
    if (cp == ' ' && cls_at(sc, i + 1) == LT_UC_OTHER)
        j = i + 1, c = LT_UC_OTHER;
    if (c == LT_UC_OTHER) {
        j = run_of(sc, j, LT_UC_OTHER, (size_t)-1);
        while (j < sc->n && (sc->s[j] == '\r' || sc->s[j] == '\n'))
            j++;
        return j;
    }
    return whitespace(sc, i, true);
}

int tok_pretok_split(tok_split kind, const char *text, size_t n, tok_emit_fn emit, void *ctx)
{
    scan sc = {(const unsigned char *)text, n};
    size_t i = 0;
    while (i < n) {
        size_t j;
        switch (kind) {
        case TOK_SPLIT_GPT2: j = next_gpt2(&sc, i); break;
        case TOK_SPLIT_LLAMA3: j = next_llama3(&sc, i, 3); break;
        default: j = next_llama3(&sc, i, 1); break;
        }
        if (j <= i) /* cannot happen; never loop forever on a surprise */
            j = i + 1;
        int r = emit(ctx, i, j - i);
        if (r)
            return r;
        i = j;
    }
    return 0;
}
