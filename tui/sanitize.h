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
#include <stdio.h>

/*
 * Sanitizes len bytes of s (len < 0: up to the NUL) into out (outsz bytes, always
 * NUL-terminated when outsz > 0), keeping at most max_cols display columns (max_cols < 0: no
 * limit) and never cutting an escape or a wide character in half. Newlines become "\n" (or a
 * space when newline_as_space), tabs one space. Returns the columns written; OUT
 * *consumed (may be NULL) the input bytes consumed.
 */
int lt_sanitize(const char *s, long len, char *out, size_t outsz, int max_cols,
                bool newline_as_space, size_t *consumed);

/*
 * The one sanitizer of command-line output: writes len bytes of s to f with the escapes of
 * lt_sanitize (controls, escape sequences, C1, bidi controls and invalid UTF-8 made visible),
 * without a column budget and whatever the locale (printable UTF-8 passes as is). Tabs pass;
 * newlines pass when keep_newlines (else "\n"), carriage returns when keep_cr (else "\x0d").
 * Returns 0, or -1 when f fails.
 */
int lt_sanitize_write(FILE *f, const char *s, size_t len, bool keep_newlines, bool keep_cr);

/* How many bytes at the end of s (len bytes) start a UTF-8 sequence that is not complete yet
 * (0..3): a stream sanitizer keeps them for its next write instead of escaping half a
 * character. */
size_t lt_utf8_incomplete_tail(const char *s, size_t len);

/* Display columns of text that is already sanitized (valid UTF-8, no controls). */
int lt_text_width(const char *s);

/*
 * Decodes one UTF-8 code point from s (n bytes available). Returns its length (1..4) and sets
 * *cp, or returns 0 for an invalid sequence (overlong, surrogate, out of range, truncated).
 */
int lt_utf8_decode(const unsigned char *s, size_t n, unsigned *cp);

#endif
