/*
 * test_sanitize.c - untrusted text made safe for the terminal: C0 controls and ESC sequences,
 * C1 controls (CSI U+009B), DEL, invalid UTF-8 (stray continuation bytes, overlong forms,
 * surrogates, truncated sequences), bidi overrides, wide CJK and combining characters, and
 * column limits that never split an escape or a wide character.
 */
#include "sanitize.h"
#include "test.h"

#include <locale.h>
#include <string.h>

/* No byte that a terminal would act on: C0, DEL, or the UTF-8 encoding of a C1 control. */
static bool safe(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i]; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f)
            return false;
        if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            return false;
    }
    return true;
}

static void expect(const char *in, long len, const char *want, int want_cols)
{
    char out[256];
    int cols = lt_sanitize(in, len, out, sizeof out, -1, false, NULL);
    CHECK(strcmp(out, want) == 0, "sanitize: got '%s', want '%s'", out, want);
    CHECK(cols == want_cols, "columns of '%s': got %d, want %d", want, cols, want_cols);
    CHECK(safe(out), "output of '%s' is safe", want);
}

/* lt_sanitize_write, the command line's sanitizer, through a memory stream. */
static void expect_write(const char *in, bool keep_newlines, bool keep_cr, const char *want)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    CHECK(f && lt_sanitize_write(f, in, strlen(in), keep_newlines, keep_cr) == 0,
          "write '%s'", want);
    if (f)
        fclose(f);
    CHECK(buf && strcmp(buf, want) == 0, "sanitize_write: got '%s', want '%s'", buf, want);
    free(buf);
}

int main(void)
{
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "en_US.UTF-8");

    expect("plain text", -1, "plain text", 10);
    expect("\x1b[31mred\x1b[0m", -1, "\\x1b[31mred\\x1b[0m", 18);
    expect("\x1b]0;title\x07", -1, "\\x1b]0;title\\x07", 16);
    expect("a\nb\tc\rd", -1, "a\\nb c\\x0dd", 11);
    expect("del\x7f", -1, "del\\x7f", 7);
    expect("csi \xc2\x9b" "2J", -1, "csi \\u009b2J", 12);
    expect("nel \xc2\x85", -1, "nel \\u0085", 10);
    expect("bad \xff\xfe", -1, "bad \\xff\\xfe", 12);
    expect("cont \x80", -1, "cont \\x80", 9);
    expect("overlong \xc0\xaf", -1, "overlong \\xc0\\xaf", 17);
    expect("surrogate \xed\xa0\x80", -1, "surrogate \\xed\\xa0\\x80", 22);
    expect("cut \xe4\xb8", -1, "cut \\xe4\\xb8", 12);
    expect("bidi \xe2\x80\xae" "txt", -1, "bidi \\u202etxt", 14);
    expect("nul\0hidden", 10, "nul\\x00hidden", 13);
    expect("", -1, "", 0);
    expect(NULL, -1, "", 0);

    /* wide and combining characters: columns, not bytes */
    expect("\xe4\xb8\xad\xe6\x96\x87", -1, "\xe4\xb8\xad\xe6\x96\x87", 4);   /* 中文 */
    expect("e\xcc\x81", -1, "e\xcc\x81", 1);                                   /* e + acute */
    expect("caf\xc3\xa9", -1, "caf\xc3\xa9", 4);
    CHECK(lt_text_width("\xe4\xb8\xad\xe6\x96\x87" "ab") == 6, "text width of CJK + ASCII");

    /* column limits never split an escape or a wide character */
    char out[64];
    size_t used = 0;
    int cols = lt_sanitize("ab\x1b[1m", -1, out, sizeof out, 4, false, &used);
    CHECK(cols == 2 && strcmp(out, "ab") == 0 && used == 2, "escape not split: '%s' %d", out, cols);
    cols = lt_sanitize("a\xe4\xb8\xad", -1, out, sizeof out, 2, false, &used);
    CHECK(cols == 1 && strcmp(out, "a") == 0, "wide char not split: '%s' %d", out, cols);
    cols = lt_sanitize("\xe4\xb8\xad\xe6\x96\x87", -1, out, sizeof out, 3, false, NULL);
    CHECK(cols == 2 && strcmp(out, "\xe4\xb8\xad") == 0, "one wide char fits in 3 columns");
    cols = lt_sanitize("line\nbreak", -1, out, sizeof out, -1, true, NULL);
    CHECK(strcmp(out, "line break") == 0 && cols == 10, "newline as space");

    /* a tiny buffer: always terminated, never overrun */
    char small[5];
    lt_sanitize("\x1b\x1b\x1b", -1, small, sizeof small, -1, false, NULL);
    CHECK(strcmp(small, "\\x1b") == 0, "small buffer keeps whole escapes: '%s'", small);
    char none[1] = {'x'};
    lt_sanitize("abc", -1, none, sizeof none, -1, false, NULL);
    CHECK(none[0] == '\0', "a one-byte buffer gets the terminator");

    /* every byte value, alone and after a lead byte: output is always safe */
    bool all_safe = true;
    for (int b = 0; b < 256; b++) {
        char in[3] = {(char)b, 0, 0};
        char in2[3] = {(char)0xc2, (char)b, 0};
        lt_sanitize(in, 1, out, sizeof out, -1, false, NULL);
        all_safe &= safe(out);
        lt_sanitize(in2, 2, out, sizeof out, -1, false, NULL);
        all_safe &= safe(out);
    }
    CHECK(all_safe, "every single byte and every 0xc2 pair sanitizes to safe text");

    unsigned cp = 0;
    CHECK(lt_utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp) == 4 && cp == 0x1f600,
          "4-byte decode");
    CHECK(lt_utf8_decode((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp) == 0,
          "above U+10FFFF is invalid");
    /* the command line's sanitizer: same escapes, no column budget, any locale */
    expect_write("name \x1b]52;c;aGk=\x07 ok", false, false, "name \\x1b]52;c;aGk=\\x07 ok");
    expect_write("rtl \xe2\x80\xae lre \xe2\x80\xaa fsi \xe2\x81\xa8 lrm \xe2\x80\x8e alm \xd8\x9c",
                 false, false, "rtl \\u202e lre \\u202a fsi \\u2068 lrm \\u200e alm \\u061c");
    expect_write("csi \xc2\x9b" "2J bad \xff caf\xc3\xa9 \xe4\xb8\xad", false, false,
                 "csi \\u009b2J bad \\xff caf\xc3\xa9 \xe4\xb8\xad");
    expect_write("a\nb\tc\rd", true, true, "a\nb\tc\rd");
    expect_write("a\nb\rd", false, false, "a\\nb\\x0dd");
    CHECK(lt_utf8_incomplete_tail("ab\xe2\x80", 4) == 2, "incomplete 3-byte tail");
    CHECK(lt_utf8_incomplete_tail("ab\xe2\x80\xae", 5) == 0, "complete tail");
    CHECK(lt_utf8_incomplete_tail("ab\xf0", 3) == 1, "incomplete 4-byte lead");
    CHECK(lt_utf8_incomplete_tail("ab\xff", 3) == 0, "invalid byte is not held back");

    return test_summary();
}
