/*
 * data_text.c - text as duplicate detection sees it: UTF-8 checks, normalization, hashes,
 * shingles, MinHash signatures and the choice of LSH bands.
 *
 * Normalization (lt_text_normalize) is deliberately small because lathe carries no ICU:
 *   - folded to lower case: ASCII, Latin-1 Supplement (À-Þ), Latin Extended-A (Ā-ž, Ÿ),
 *     Greek capitals (Α-Ω) and Cyrillic capitals (Ѐ-Я);
 *   - whitespace (ASCII space, tab, newlines, form feed, vertical tab, no-break space) runs
 *     collapsed to one space, and trimmed at both ends.
 *   - composed to Unicode NFC first (a precomposed "é" and "e" + combining acute are the same
 *     text), with the tokenizer module's NFC tables; in the rare case where NFC would make the
 *     text longer (composition exclusions in some Indic and Hebrew forms) the text is used as
 *     it is, so the output never needs more room than the input.
 * NOT done: full Unicode case folding beyond the blocks above, accent stripping, width folding
 * (fullwidth Latin), punctuation removal. Shingling additionally splits words at ASCII
 * punctuation, so "word," and "word" are the same word for near-duplicate detection.
 */
#include "data_impl.h"
#include "tokenizer/unicode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int64_t lt_utf8_invalid_at(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* fast path: 8 ASCII bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return (int64_t)i;
        }
        if (i + len > n)
            return (int64_t)i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return (int64_t)i;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return (int64_t)i;
        i += len;
    }
    return -1;
}

int64_t lt_utf8_count(const char *s, size_t n)
{
    /* code points = bytes that are not continuation bytes (10xxxxxx), 8 at a time */
    int64_t c = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t cont = w & ~(w << 1) & 0x8080808080808080ull;
        c += 8 - __builtin_popcountll(cont);
    }
    for (; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* Lower-case mapping of a code point in the blocks listed at the top; others unchanged. */
static uint32_t fold(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
        return cp + 0x20;
    if (cp >= 0x100 && cp <= 0x137)
        return cp | 1;
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
        return (cp & 1) ? cp + 1 : cp;
    if (cp >= 0x14a && cp <= 0x177)
        return cp | 1;
    if (cp == 0x178)
        return 0xff;
    if (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2)
        return cp + 0x20;
    if (cp >= 0x410 && cp <= 0x42f)
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40f)
        return cp + 0x50;
    return cp;
}

static size_t put_cp(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

#if defined(__SSE2__)
/* The common case 16 bytes at a time: printable ASCII (and DEL) with single spaces between
 * words and none at either end of the block, so it only needs lower-casing. Writes at most
 * 17 bytes at out (a pending space first) and returns 16, or 0 when the block needs the
 * byte-by-byte path. */
static inline size_t block16(const unsigned char *p, char *out, bool space)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    if (_mm_movemask_epi8(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x1f))) != 0xffff)
        return 0; /* control bytes or non-ASCII */
    unsigned sp = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
    if ((sp & 0x8001u) || (sp & (sp >> 1)))
        return 0; /* a space at an end, or a run of spaces */
    __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                                  _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
    v = _mm_add_epi8(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
    if (space)
        *out++ = ' ';
    _mm_storeu_si128((__m128i *)out, v);
    return 16;
}
#endif

size_t lt_text_normalize(const char *s, size_t n, char *out)
{
    char *nfc = NULL;
    if (!lt_uc_is_nfc_quick(s, n)) {
        size_t m = 0;
        nfc = lt_uc_nfc(s, n, &m);
        if (nfc && m <= n) {
            s = nfc;
            n = m;
        }
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n;) {
#if defined(__SSE2__)
        /* o <= i always (output never outruns input; a pending space was a consumed byte),
         * so the 16 or 17 bytes written stay within out[0..n] */
        if (i + 16 <= n) {
            size_t k = block16(p + i, out + o, space);
            if (k) {
                o += k + space;
                i += k;
                space = false;
                continue;
            }
        }
#endif
        unsigned c = p[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
            (c == 0xc2 && i + 1 < n && p[i + 1] == 0xa0)) {
            space = o > 0;
            i += c == 0xc2 ? 2 : 1;
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
        }
        if (c < 0x80) {
            out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
            i++;
            /* the common case: a run of ASCII letters, digits and punctuation */
            while (i < n && p[i] > ' ' && p[i] < 0x80) {
                unsigned d = p[i++];
                out[o++] = (char)((d >= 'A' && d <= 'Z') ? d + 32 : d);
            }
        } else if ((c & 0xe0) == 0xc0 && i + 1 < n) {
            /* two-byte sequences cover every block we fold; they stay two bytes */
            uint32_t cp = ((c & 0x1fu) << 6) | (p[i + 1] & 0x3fu);
            o += put_cp(out + o, fold(cp));
            i += 2;
        } else {
            out[o++] = (char)c;
            i++;
        }
    }
    out[o] = '\0';
    free(nfc);
    return o;
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

uint64_t lt_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= fmix64(w + 0x2545f4914f6cdd1dull);
        h = ((h << 27) | (h >> 37)) * 0x9e3779b97f4a7c15ull + 0x52dce729;
    }
    uint64_t t = 0;
    for (size_t k = 0; i + k < n; k++)
        t |= (uint64_t)p[i + k] << (8 * k);
    h ^= fmix64(t ^ 0x8badf00dull);
    return fmix64(h);
}

void lt_hash128_hex(const void *data, size_t n, char hex[33])
{
    uint64_t a = lt_hash64(data, n, 0x1234567887654321ull);
    uint64_t b = lt_hash64(data, n, 0x0fedcba987654321ull ^ a);
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique(uint64_t *v, size_t n)
{
    if (n < 2)
        return n;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1])
            v[k++] = v[i];
    return k;
}

/* Hash of a short word: one multiply-xorshift per 8 bytes, one finalizer. avail is how many
 * bytes may be read from p (at least n): the last piece is one masked 8-byte load when the
 * buffer allows it. */
static inline uint64_t word_hash(const char *p, size_t n, size_t avail)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    uint64_t t = 0;
    size_t rest = n - i;
    if (rest && i + 8 <= avail) {
        memcpy(&t, p + i, 8);
        t &= ~0ull >> (64 - 8 * rest);
    } else {
        for (size_t k = 0; k < rest; k++)
            t |= (uint64_t)(unsigned char)p[i + k] << (8 * k);
    }
    return fmix64(h ^ t);
}

/* Word separators after normalization: ASCII other than letters and digits. */
static const unsigned char sep_table[256] = {
    ['\0'] = 1, [1] = 1, [2] = 1, [3] = 1, [4] = 1, [5] = 1, [6] = 1, [7] = 1, [8] = 1,
    [9] = 1, [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1, [15] = 1, [16] = 1, [17] = 1,
    [18] = 1, [19] = 1, [20] = 1, [21] = 1, [22] = 1, [23] = 1, [24] = 1, [25] = 1, [26] = 1,
    [27] = 1, [28] = 1, [29] = 1, [30] = 1, [31] = 1, [' '] = 1, ['!'] = 1, ['"'] = 1,
    ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
    ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1, [':'] = 1, [';'] = 1, ['<'] = 1,
    ['='] = 1, ['>'] = 1, ['?'] = 1, ['@'] = 1, ['['] = 1, ['\\'] = 1, [']'] = 1, ['^'] = 1,
    ['_'] = 1, ['`'] = 1, ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1, [127] = 1,
};

static inline bool word_sep(unsigned char c) { return sep_table[c]; }

size_t lt_shingles(const char *text, size_t n, const lt_shingle_opts *o, uint64_t **hashes)
{
    *hashes = NULL;
    char *owned = o->normalized ? NULL : malloc(n + 1);
    if (!o->normalized && !owned)
        return 0;
    const char *norm = o->normalized ? text : owned;
    size_t m = o->normalized ? n : lt_text_normalize(text, n, owned);
    uint64_t *w = malloc((m + 1) * sizeof *w);
    if (!w) {
        free(owned);
        return 0;
    }
    size_t nw = 0, count = 0;
    if (o->char_shingles > 0) {
        /* code point start offsets, then one hash per run of K code points */
        size_t *starts = malloc((m + 1) * sizeof *starts);
        if (!starts)
            goto done;
        size_t ns = 0;
        for (size_t i = 0; i < m; i++)
            if (((unsigned char)norm[i] & 0xc0) != 0x80)
                starts[ns++] = i;
        starts[ns] = m;
        size_t k = (size_t)o->char_shingles;
        if (ns > 0 && ns < k)
            w[count++] = lt_hash64(norm, m, 7);
        for (size_t i = 0; ns >= k && i + k <= ns; i++)
            w[count++] = lt_hash64(norm + starts[i], starts[i + k] - starts[i], 7);
        free(starts);
    } else {
        /* word hashes in place, then n-gram hashes over them */
        size_t i = 0;
        while (i < m) {
            while (i < m && word_sep((unsigned char)norm[i]))
                i++;
            size_t s = i;
            while (i < m && !word_sep((unsigned char)norm[i]))
                i++;
            if (i > s)
                w[nw++] = word_hash(norm + s, i - s, m - s);
        }
        size_t g = o->ngram > 0 ? (size_t)o->ngram : 5;
        /* an n-gram's hash: word hashes combined with distinct odd multipliers per
         * position, then one finalizer */
        static const uint64_t mul[8] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full,
                                        0x165667b19e3779f9ull, 0xd6e8feb86659fd93ull,
                                        0xff51afd7ed558ccdull, 0xc4ceb9fe1a85ec53ull,
                                        0x94d049bb133111ebull, 0xbf58476d1ce4e5b9ull};
        if (nw > 0 && nw < g) {
            uint64_t h = 0x51ed27;
            for (size_t j = 0; j < nw; j++)
                h += w[j] * mul[j & 7] + j;
            w[count++] = fmix64(h);
        }
        for (size_t s = 0; nw >= g && s + g <= nw; s++) {
            uint64_t h = 0x51ed27;
            for (size_t j = 0; j < g; j++)
                h += w[s + j] * mul[j & 7] + j;
            w[count++] = fmix64(h); /* count <= s: only consumed word hashes are overwritten */
        }
    }
    if (!o->unsorted)
        count = sort_unique(w, count);
done:
    free(owned);
    /* the buffer was sized for the worst case (one hash per byte); give the rest back, since
     * callers may keep many shingle sets at once */
    if (count > 0) {
        uint64_t *shrunk = realloc(w, count * sizeof *w);
        if (shrunk)
            w = shrunk;
    }
    *hashes = w;
    return count;
}

double lt_jaccard_sorted(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    if (na == 0 && nb == 0)
        return 1.0;
    size_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) {
            inter++;
            i++;
            j++;
        } else if (a[i] < b[j]) {
            i++;
        } else {
            j++;
        }
    }
    return (double)inter / (double)(na + nb - inter);
}

double lt_text_jaccard(const char *a, const char *b, const lt_shingle_opts *o)
{
    uint64_t *ha = NULL, *hb = NULL;
    size_t na = lt_shingles(a, strlen(a), o, &ha);
    size_t nb = lt_shingles(b, strlen(b), o, &hb);
    double j = lt_jaccard_sorted(ha, na, hb, nb);
    free(ha);
    free(hb);
    return j;
}

/* The permutations: v = a*x + b (mod 2^32) followed by v ^= v >> 16, both bijections, with
 * a odd. The constants come from splitmix64 with a fixed seed so signatures stored by one
 * lathe match those computed by the next. */
static uint32_t perm_a[LT_MINHASH_PERM], perm_b[LT_MINHASH_PERM];
static int perm_ready;

static void perms_init(void)
{
    if (__atomic_load_n(&perm_ready, __ATOMIC_ACQUIRE))
        return;
    uint64_t x = 0x6c61746865ull; /* fixed seed */
    uint32_t a[LT_MINHASH_PERM], b[LT_MINHASH_PERM];
    for (int i = 0; i < LT_MINHASH_PERM; i++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = fmix64(x);
        a[i] = (uint32_t)z | 1u;
        b[i] = (uint32_t)(z >> 32);
    }
    memcpy(perm_a, a, sizeof a);
    memcpy(perm_b, b, sizeof b);
    __atomic_store_n(&perm_ready, 1, __ATOMIC_RELEASE);
}

/* Eight lanes at a time where the CPU has AVX2, four (SSE4.1) otherwise: the loop over the
 * permutations is written plainly for the compiler to vectorize. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void lt_minhash(const uint64_t *sh, size_t n, uint16_t sig[LT_MINHASH_PERM])
{
    perms_init();
    uint32_t a[LT_MINHASH_PERM], b[LT_MINHASH_PERM], m[LT_MINHASH_PERM];
    memcpy(a, perm_a, sizeof a);
    memcpy(b, perm_b, sizeof b);
    for (int i = 0; i < LT_MINHASH_PERM; i++)
        m[i] = UINT32_MAX;
    for (size_t k = 0; k < n; k++) {
        uint32_t x = (uint32_t)(sh[k] ^ (sh[k] >> 32));
        for (int i = 0; i < LT_MINHASH_PERM; i++) {
            uint32_t v = a[i] * x + b[i];
            v ^= v >> 16;
            m[i] = v < m[i] ? v : m[i];
        }
    }
    for (int i = 0; i < LT_MINHASH_PERM; i++)
        sig[i] = (uint16_t)(m[i] >> 16);
}

/* Probability that a pair of similarity s becomes a candidate with b bands of r rows. */
static double p_candidate(double s, int b, int r) { return 1.0 - pow(1.0 - pow(s, r), b); }

/* Weights of the two areas. text-dedup weighs them equally, which at t = 0.8 with 128
 * permutations picks 9 x 13 and finds a pair of similarity exactly 0.8 only 40% of the time.
 * lathe verifies every candidate by true Jaccard, so a false positive costs only a comparison
 * while a false negative is a duplicate left in the data: false negatives weigh 19 times more
 * (t = 0.8 gives 16 x 8: a pair at 0.8 is found 95% of the time, at 0.85 99.6%). */
#define LSH_WEIGHT_FP 0.05
#define LSH_WEIGHT_FN 0.95

void lt_lsh_params(double t, int n_perm, int *bands, int *rows)
{
    const int steps = 200;
    double best = 1e9;
    *bands = 1;
    *rows = n_perm;
    for (int b = 1; b <= n_perm; b++) {
        for (int r = 1; r <= n_perm / b; r++) {
            double fp = 0, fn = 0;
            for (int i = 0; i < steps; i++) {
                double s = t * (i + 0.5) / steps;
                fp += p_candidate(s, b, r) * t / steps;
                double u = t + (1.0 - t) * (i + 0.5) / steps;
                fn += (1.0 - p_candidate(u, b, r)) * (1.0 - t) / steps;
            }
            double e = LSH_WEIGHT_FP * fp + LSH_WEIGHT_FN * fn;
            if (e < best - 1e-12) {
                best = e;
                *bands = b;
                *rows = r;
            }
        }
    }
}

char *lt_data_sample_text(const char *sample_json, char **response_out)
{
    cJSON *j = cJSON_Parse(sample_json);
    if (response_out)
        *response_out = NULL;
    if (!j)
        return NULL;
    size_t cap = strlen(sample_json) + 1, n = 0;
    char *out = malloc(cap);
    const char *resp = NULL;
    if (!out)
        goto done;
    out[0] = '\0';
#define APPEND(str)                                                                           \
    do {                                                                                      \
        size_t l_ = strlen(str);                                                              \
        if (n + l_ + 2 > cap)                                                                 \
            break;                                                                            \
        if (n)                                                                                \
            out[n++] = '\n';                                                                  \
        memcpy(out + n, str, l_ + 1);                                                         \
        n += l_;                                                                              \
    } while (0)
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(j, "system");
    if (cJSON_IsString(sys))
        APPEND(sys->valuestring);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "turns"))
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "content");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, "role");
        if (cJSON_IsString(c)) {
            APPEND(c->valuestring);
            if (cJSON_IsString(r) && strcmp(r->valuestring, "assistant") == 0)
                resp = c->valuestring;
        }
    }
    static const char *keys[] = {"chosen", "rejected", "text"};
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (cJSON_IsString(v)) {
            APPEND(v->valuestring);
            if (k != 1 && !(k == 2 && resp))
                resp = k == 0 || !resp ? v->valuestring : resp;
        }
    }
#undef APPEND
    if (response_out)
        *response_out = strdup(resp ? resp : "");
done:
    cJSON_Delete(j);
    return out;
}
