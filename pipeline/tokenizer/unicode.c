/*
 * unicode.c - UTF-8 decoding, code point classes and NFC for the tokenizer. Never fails on
 * bad bytes: an invalid byte is one code point of class "other" and passes through NFC as is.
 */
#include "unicode.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

uint32_t lt_utf8_next(const unsigned char *s, size_t n, int *len)
{
    unsigned char c = s[0];
    uint32_t cp, min;
    int need;
    *len = 1;
    if (c < 0x80)
        return c;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else
        return LT_UC_INVALID;
    if ((size_t)need >= n)
        return LT_UC_INVALID;
    for (int i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return LT_UC_INVALID;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return LT_UC_INVALID;
    *len = need + 1;
    return cp;
}

int lt_utf8_put(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int in_ranges(const lt_uc_range *r, int n, uint32_t cp)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid - 1;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int class_slow(uint32_t cp)
{
    if (in_ranges(lt_uc_letter, lt_uc_letter_n, cp))
        return LT_UC_LETTER;
    if (in_ranges(lt_uc_number, lt_uc_number_n, cp))
        return LT_UC_NUMBER;
    if (in_ranges(lt_uc_space, lt_uc_space_n, cp))
        return LT_UC_SPACE;
    return LT_UC_OTHER;
}

/* The Basic Multilingual Plane's classes, 2 bits each, built once. */
static uint8_t bmp_class[0x10000 / 4];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void bmp_build(void)
{
    for (uint32_t cp = 0; cp < 0x10000; cp++)
        bmp_class[cp >> 2] |= (uint8_t)(class_slow(cp) << ((cp & 3) * 2));
}

int lt_uc_class(uint32_t cp)
{
    if (cp == LT_UC_INVALID)
        return LT_UC_OTHER;
    if (cp < 0x10000) {
        pthread_once(&bmp_once, bmp_build);
        return (bmp_class[cp >> 2] >> ((cp & 3) * 2)) & 3;
    }
    return class_slow(cp);
}

/* ---- NFC ---------------------------------------------------------------------------- */

#define HANGUL_S 0xAC00u
#define HANGUL_L 0x1100u
#define HANGUL_V 0x1161u
#define HANGUL_T 0x11A7u
#define HANGUL_NV 21u
#define HANGUL_NT 28u
#define HANGUL_N (HANGUL_NV * HANGUL_NT)
#define HANGUL_COUNT 11172u
#define BAD_BYTE 0x80000000u /* marks an invalid byte carried through: BAD_BYTE | byte */

static int ccc_of(uint32_t cp)
{
    if (cp < 0x300 || (cp & BAD_BYTE))
        return 0;
    int lo = 0, hi = lt_uc_ccc_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint32_t c = lt_uc_ccc[mid] >> 8;
        if (cp < c)
            hi = mid - 1;
        else if (cp > c)
            lo = mid + 1;
        else
            return (int)(lt_uc_ccc[mid] & 0xFF);
    }
    return 0;
}

static const uint32_t *decomp_of(uint32_t cp)
{
    if (cp < 0xC0 || (cp & BAD_BYTE))
        return NULL;
    int lo = 0, hi = lt_uc_decomp_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < lt_uc_decomp[mid][0])
            hi = mid - 1;
        else if (cp > lt_uc_decomp[mid][0])
            lo = mid + 1;
        else
            return lt_uc_decomp[mid];
    }
    return NULL;
}

static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= HANGUL_L && a < HANGUL_L + 19 && b >= HANGUL_V && b < HANGUL_V + HANGUL_NV)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_NV + (b - HANGUL_V)) * HANGUL_NT;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_COUNT && (a - HANGUL_S) % HANGUL_NT == 0 &&
        b > HANGUL_T && b < HANGUL_T + HANGUL_NT)
        return a + (b - HANGUL_T);
    int lo = 0, hi = lt_uc_comp_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const uint32_t *e = lt_uc_comp[mid];
        if (a < e[0] || (a == e[0] && b < e[1]))
            hi = mid - 1;
        else if (a > e[0] || b > e[1])
            lo = mid + 1;
        else
            return e[2];
    }
    return 0;
}

/* Appends the full canonical decomposition of cp to buf (room checked by the caller: at most
 * 4 code points per input code point in Unicode's data, 3 for Hangul). */
static size_t decompose(uint32_t cp, uint32_t *buf, int depth)
{
    if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_COUNT) {
        uint32_t s = cp - HANGUL_S;
        size_t k = 0;
        buf[k++] = HANGUL_L + s / HANGUL_N;
        buf[k++] = HANGUL_V + (s % HANGUL_N) / HANGUL_NT;
        if (s % HANGUL_NT)
            buf[k++] = HANGUL_T + s % HANGUL_NT;
        return k;
    }
    const uint32_t *d = depth < 8 ? decomp_of(cp) : NULL;
    if (!d) {
        buf[0] = cp;
        return 1;
    }
    size_t k = decompose(d[1], buf, depth + 1);
    if (d[2])
        k += decompose(d[2], buf + k, depth + 1);
    return k;
}

int lt_uc_is_nfc_quick(const char *s, size_t n)
{
    /* Text below U+0300 never changes under NFC: combining marks start at U+0300, and the
     * two-byte sequences below it (lead bytes C2..CB) are all starters without compositions
     * that could involve a following ASCII or Latin-1 character. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0xCC)
            return 0;
    return 1;
}

char *lt_uc_nfc(const char *s, size_t n, size_t *out_n)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t *cps = malloc((n * 4 + 4) * sizeof *cps);
    char *out = NULL;
    size_t m = 0;
    if (!cps)
        return NULL;
    for (size_t i = 0; i < n;) {
        int len;
        uint32_t cp = lt_utf8_next(u + i, n - i, &len);
        if (cp == LT_UC_INVALID)
            cps[m++] = BAD_BYTE | u[i];
        else
            m += decompose(cp, cps + m, 0);
        i += (size_t)len;
    }
    /* canonical ordering: stable insertion sort of each run of non-starters */
    for (size_t i = 1; i < m; i++) {
        int c = ccc_of(cps[i]);
        if (!c)
            continue;
        size_t j = i;
        uint32_t v = cps[i];
        while (j > 0 && ccc_of(cps[j - 1]) > c) {
            cps[j] = cps[j - 1];
            j--;
        }
        cps[j] = v;
    }
    /* canonical composition */
    if (m > 0) {
        size_t starter = 0, w = 1;
        int starter_ok = ccc_of(cps[0]) == 0;
        int last_ccc = starter_ok ? 0 : 256;
        for (size_t i = 1; i < m; i++) {
            uint32_t cp = cps[i];
            int c = ccc_of(cp);
            uint32_t comp = 0;
            if (starter_ok && !(cp & BAD_BYTE) && !(cps[starter] & BAD_BYTE) &&
                (last_ccc < c || (last_ccc == 0 && w == starter + 1)))
                comp = compose_pair(cps[starter], cp);
            if (comp) {
                cps[starter] = comp;
                continue;
            }
            if (c == 0) {
                starter = w;
                starter_ok = 1;
                last_ccc = 0;
            } else
                last_ccc = c;
            cps[w++] = cp;
        }
        m = w;
    }
    out = malloc(m * 4 + 1);
    if (!out)
        goto done;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (cps[i] & BAD_BYTE)
            out[k++] = (char)(cps[i] & 0xFF);
        else
            k += (size_t)lt_utf8_put(cps[i], (unsigned char *)out + k);
    }
    out[k] = '\0';
    *out_n = k;
done:
    free(cps);
    return out;
}
