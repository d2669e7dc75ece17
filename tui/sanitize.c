/*
 * sanitize.c - visible escapes for control characters, escape sequences and invalid UTF-8,
 * and display widths with wcwidth. See sanitize.h. Must never emit a byte below 0x20, DEL,
 * or a C1 control, whatever it is given.
 */
#include "sanitize.h"

#include <stdio.h>
#include <string.h>
#include <wchar.h>

int lt_utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    int len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Code points that are printable by wcwidth but reorder or hide text: shown escaped. */
static bool deceptive(unsigned cp)
{
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
           cp == 0x200f || cp == 0x061c || cp == 0xfeff;
}

/* Code points never sent raw: C0 controls, DEL, C1 controls (CSI among them) and the
 * deceptive ones above. */
static bool needs_escape(unsigned cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || deceptive(cp);
}

/* Appends piece (plen bytes, cols wide) if both budgets allow; false when it does not fit. */
static bool put(char *out, size_t outsz, size_t *o, int *cols, int max_cols, const char *piece,
                size_t plen, int pcols)
{
    if (max_cols >= 0 && *cols + pcols > max_cols)
        return false;
    if (*o + plen + 1 > outsz)
        return false;
    memcpy(out + *o, piece, plen);
    *o += plen;
    *cols += pcols;
    return true;
}

int lt_sanitize(const char *s, long len, char *out, size_t outsz, int max_cols,
                bool newline_as_space, size_t *consumed)
{
    size_t n = len < 0 ? (s ? strlen(s) : 0) : (size_t)len;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t i = 0, o = 0;
    int cols = 0;
    char esc[16];
    if (outsz == 0) {
        if (consumed)
            *consumed = 0;
        return 0;
    }
    while (i < n) {
        unsigned cp = 0;
        int l = lt_utf8_decode(p + i, n - i, &cp);
        bool ok;
        if (l == 0) {
            snprintf(esc, sizeof esc, "\\x%02x", p[i]);
            ok = put(out, outsz, &o, &cols, max_cols, esc, 4, 4);
            l = 1;
        } else if (cp == '\n' && newline_as_space) {
            ok = put(out, outsz, &o, &cols, max_cols, " ", 1, 1);
        } else if (cp == '\n') {
            ok = put(out, outsz, &o, &cols, max_cols, "\\n", 2, 2);
        } else if (cp == '\t') {
            ok = put(out, outsz, &o, &cols, max_cols, " ", 1, 1);
        } else if (cp < 0x20 || cp == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", cp);
            ok = put(out, outsz, &o, &cols, max_cols, esc, 4, 4);
        } else if (cp < 0x80) {
            ok = put(out, outsz, &o, &cols, max_cols, (const char *)p + i, 1, 1);
        } else {
            int w = (cp >= 0x80 && cp <= 0x9f) || deceptive(cp) ? -1 : wcwidth((wchar_t)cp);
            if (w < 0) {
                int el = snprintf(esc, sizeof esc, cp > 0xffff ? "\\U%08x" : "\\u%04x", cp);
                ok = put(out, outsz, &o, &cols, max_cols, esc, (size_t)el, el);
            } else {
                ok = put(out, outsz, &o, &cols, max_cols, (const char *)p + i, (size_t)l, w);
            }
        }
        if (!ok)
            break;
        i += (size_t)l;
    }
    out[o] = '\0';
    if (consumed)
        *consumed = i;
    return cols;
}

int lt_text_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    int cols = 0;
    while (i < n) {
        unsigned cp;
        int l = lt_utf8_decode(p + i, n - i, &cp);
        if (l == 0) {
            cols++;
            i++;
            continue;
        }
        int w = cp < 0x80 ? 1 : wcwidth((wchar_t)cp);
        cols += w < 0 ? 1 : w;
        i += (size_t)l;
    }
    return cols;
}

int lt_sanitize_write(FILE *f, const char *s, size_t len, bool keep_newlines, bool keep_cr)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t i = 0, start = 0; /* bytes [start, i) pass through unchanged */
    while (i < len) {
        unsigned cp = 0;
        int l = lt_utf8_decode(p + i, len - i, &cp);
        bool pass = l > 0 && (!needs_escape(cp) || cp == '\t' || (cp == '\n' && keep_newlines) ||
                              (cp == '\r' && keep_cr));
        if (pass) {
            i += (size_t)l;
            continue;
        }
        if (i > start && fwrite(p + start, 1, i - start, f) != i - start)
            return -1;
        int w;
        if (l == 0)
            w = fprintf(f, "\\x%02x", p[i]);
        else if (cp == '\n')
            w = fputs("\\n", f);
        else if (cp < 0x80)
            w = fprintf(f, "\\x%02x", cp);
        else
            w = fprintf(f, cp > 0xffff ? "\\U%08x" : "\\u%04x", cp);
        if (w < 0)
            return -1;
        i += l > 0 ? (size_t)l : 1;
        start = i;
    }
    if (i > start && fwrite(p + start, 1, i - start, f) != i - start)
        return -1;
    return 0;
}

size_t lt_utf8_incomplete_tail(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t k = 1; k <= 3 && k <= len; k++) {
        unsigned char c = p[len - k];
        if ((c & 0xc0) == 0x80)
            continue; /* a continuation byte: look further back for the lead */
        size_t need = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
        return need > k ? k : 0;
    }
    return 0;
}
