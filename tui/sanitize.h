/*
 * sanitize.h - turning untrusted text (dataset rows, model output, driver names, file paths)
 * into text that is safe to put on a terminal, and measuring it in columns.
 *
 * Control characters (C0, DEL, C1), escape sequences, invalid UTF-8 and code points the
 * terminal would not draw (bidi overrides, unassigned) come out as visible ASCII escapes:
 * "\x1b", "\u009b", "\xff", "\u202e". Printable code points pass through, and their width is
 * measured with wcwidth (wide CJK = 2 columns, combining marks = 0). Nothing here ever lets a
 * raw control byte through, whatever the input.
 *
 * Pure functions: no terminal, no allocation. Width needs an LC_CTYPE that is UTF-8 for wcwidth
 * to know wide characters; in the C locale every non-ASCII code point is shown escaped.
 */
#ifndef LATHE_TUI_SANITIZE_H
#define LATHE_TUI_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Sanitizes len bytes of s (len < 0: up to the NUL) into out (outsz bytes, always
 * NUL-terminated when outsz > 0), keeping at most max_cols display columns (max_cols < 0: no
 * limit) and never cutting an escape or a wide character in half. Newlines become "\n" (or a
 * space when newline_as_space), tabs one space. Returns the columns written; OUT
 * *consumed (may be NULL) the input bytes consumed.
 */
int lt_sanitize(const char *s, long len, char *out, size_t outsz, int max_cols,
                bool newline_as_space, size_t *consumed);

/* Display columns of text that is already sanitized (valid UTF-8, no controls). */
int lt_text_width(const char *s);

/*
 * Decodes one UTF-8 code point from s (n bytes available). Returns its length (1..4) and sets
 * *cp, or returns 0 for an invalid sequence (overlong, surrogate, out of range, truncated).
 */
int lt_utf8_decode(const unsigned char *s, size_t n, unsigned *cp);

#endif
