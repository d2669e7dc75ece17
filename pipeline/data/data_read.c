/*
 * data_read.c - streaming readers for dataset files: JSON Lines, JSON arrays (read element
 * by element, never whole) and CSV (RFC 4180: quoted fields, "" escapes, quoted newlines).
 *
 * Memory is bounded by the longest row (capped by max_row_bytes: longer rows are skipped and
 * reported, not loaded). The file's SHA-256 is computed by a second thread reading the file on
 * its own, so hashing overlaps parsing.
 * File-level problems (empty, UTF-16, binary, compressed) are found at open; row-level
 * problems come back as LT_READ_BAD with a reason, line and byte column. This file never
 * touches the store.
 */
#include "data_impl.h"
#include "sha256.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHUNK (1 << 20)
#define RAW_KEEP 240 /* bytes of an over-long row kept as its raw text */

struct lt_reader {
    FILE *f;
    lt_container kind;
    int64_t max_row;
    int64_t file_size;
    int64_t bytes_read;
    char *buf;
    size_t cap, start, end; /* unread bytes are buf[start..end) */
    bool eof;
    int64_t line;           /* line number of buf[start] */
    char *path;
    pthread_t hasher;
    bool hasher_running;
    int hasher_stop;        /* set (atomically) to make the hasher give up early */
    char sha_hex[65];
    bool sha_done;
    bool hash_inline;       /* not a regular file (a FIFO, a pipe): hashed as it is read,
                             * since it cannot be opened and read a second time */
    lt_sha256 sha;
    int read_errno;         /* the first failed read's errno, 0 when none */
    cJSON *json;
    char *row;              /* NUL-terminated copy of the current row */
    size_t row_cap;
    bool done;
    bool array_open;        /* '[' consumed */
    bool need_sep;          /* an element was read: ',' or ']' comes next */
    bool defer_parse;       /* JSON rows come back raw (LT_READ_RAW) */
    char **header;          /* CSV column names */
    int n_header;
};

/* Reads more bytes, moving the unread part to the front and growing up to need bytes. */
static bool refill(lt_reader *r, size_t need)
{
    if (r->eof)
        return false;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (need + 1 > r->cap) {
        size_t nc = r->cap;
        while (nc < need + 1)
            nc *= 2;
        char *nb = realloc(r->buf, nc);
        if (!nb)
            return false;
        r->buf = nb;
        r->cap = nc;
    }
    size_t got = fread(r->buf + r->end, 1, r->cap - 1 - r->end, r->f);
    if (got == 0) {
        if (ferror(r->f) && !r->read_errno)
            r->read_errno = errno ? errno : EIO;
        r->eof = true;
        return false;
    }
    if (r->hash_inline)
        lt_sha256_update(&r->sha, r->buf + r->end, got);
    r->bytes_read += (int64_t)got;
    r->end += got;
    return true;
}

static bool set_row(lt_reader *r, const char *p, size_t n)
{
    if (n + 1 > r->row_cap) {
        size_t nc = r->row_cap ? r->row_cap : 4096;
        while (nc < n + 1)
            nc *= 2;
        char *nb = realloc(r->row, nc);
        if (!nb)
            return false;
        r->row = nb;
        r->row_cap = nc;
    }
    memcpy(r->row, p, n);
    r->row[n] = '\0';
    return true;
}

/* Parses text (r->row, or a row terminated in place in r->buf) as one JSON object, or hands
 * it back raw when parsing is deferred. */
static lt_read_kind parse_text(lt_reader *r, lt_read_row *row, char *text, size_t n)
{
    row->raw = text;
    row->raw_len = n;
    if (r->defer_parse)
        return LT_READ_RAW;
    lt_read_kind k = lt_parse_row(text, n, row->line, &r->json, row->reason,
                                  sizeof row->reason, &row->column);
    row->json = r->json;
    return k;
}

static lt_read_kind parse_row(lt_reader *r, lt_read_row *row, size_t n)
{
    return parse_text(r, row, r->row, n);
}

static void too_long(lt_reader *r, lt_read_row *row, const char *what, int64_t n)
{
    row->column = 0;
    snprintf(row->reason, sizeof row->reason,
             "%s at line %lld is longer than the limit of %lld bytes (at least %lld bytes); "
             "skipped",
             what, (long long)row->line, (long long)r->max_row, (long long)n);
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* ---- JSON Lines ---- */

static lt_read_kind next_jsonl(lt_reader *r, lt_read_row *row)
{
    size_t scanned = 0;
    for (;;) {
        char *nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
        size_t avail = r->end - r->start;
        if (!nl && avail > (size_t)r->max_row) {
            /* over-long row: keep a prefix, discard the rest up to the newline */
            row->line = r->line;
            set_row(r, r->buf + r->start, RAW_KEEP);
            int64_t total = (int64_t)avail;
            r->start = r->end;
            for (;;) {
                if (!refill(r, CHUNK))
                    break;
                char *q = memchr(r->buf + r->start, '\n', r->end - r->start);
                if (q) {
                    total += q - (r->buf + r->start);
                    r->start = (size_t)(q - r->buf) + 1;
                    break;
                }
                total += (int64_t)(r->end - r->start);
                r->start = r->end;
            }
            r->line++;
            row->raw = r->row;
            row->raw_len = RAW_KEEP;
            too_long(r, row, "row", total);
            return LT_READ_BAD;
        }
        if (!nl) {
            if (!r->eof) {
                scanned = avail;
                size_t want = avail + CHUNK;
                if (want > (size_t)r->max_row + 2)
                    want = (size_t)r->max_row + 2;
                if (refill(r, want > avail + 1 ? want : avail + 1))
                    continue;
            }
            if (r->start == r->end)
                return LT_READ_EOF;
            nl = r->buf + r->end; /* last line without a newline */
        }
        size_t len = (size_t)(nl - (r->buf + r->start));
        char *p = r->buf + r->start;
        r->start = nl < r->buf + r->end ? (size_t)(nl - r->buf) + 1 : r->end;
        row->line = r->line++;
        scanned = 0;
        if (len && p[len - 1] == '\r')
            len--;
        size_t k = 0;
        while (k < len && is_ws(p[k]))
            k++;
        if (k == len)
            continue; /* blank line */
        /* terminated in place, no copy: p[len] is the consumed newline (or '\r'), or
         * buf[end], which refill always leaves room for */
        p[len] = '\0';
        return parse_text(r, row, p, len);
    }
}

/* ---- JSON array, element by element ---- */

/* Skips whitespace from *i (counting lines), reading more input as needed: true with
 * buf[*i] the next byte, false at the end of the input (r->start = *i, *i unchanged). */
static bool skip_ws(lt_reader *r, size_t *i)
{
    for (;;) {
        while (*i < r->end && is_ws(r->buf[*i]))
            r->line += r->buf[(*i)++] == '\n';
        if (*i < r->end)
            return true;
        r->start = *i;
        if (!refill(r, CHUNK))
            return false;
        *i = r->start;
    }
}

/* After the array's closing ']' at buf[i]: anything but whitespace is reported once, as a bad
 * row, rather than silently ignored. */
static lt_read_kind array_end(lt_reader *r, size_t i, lt_read_row *row)
{
    r->done = true;
    i++;
    if (!skip_ws(r, &i))
        return LT_READ_EOF;
    row->line = r->line;
    set_row(r, r->buf + i, r->end - i < RAW_KEEP ? r->end - i : RAW_KEEP);
    row->raw = r->row;
    row->raw_len = strlen(r->row);
    snprintf(row->reason, sizeof row->reason,
             "trailing data after the JSON array's closing ']', at line %lld: not read (a JSON "
             "file holds one array; for one object per line use JSONL)",
             (long long)r->line);
    return LT_READ_BAD;
}

static lt_read_kind next_array(lt_reader *r, lt_read_row *row)
{
    size_t i = r->start;
    bool need_sep = r->need_sep;
    if (!r->array_open) {
        for (;;) {
            if (i == r->end) {
                r->start = i;
                if (!refill(r, CHUNK))
                    return LT_READ_EOF;
                i = r->start;
                continue;
            }
            char c = r->buf[i++];
            if (c == '\n')
                r->line++;
            if (c == '[')
                break;
        }
        r->array_open = true;
        need_sep = false;
        r->start = i;
        /* an empty array */
        if (skip_ws(r, &i) && r->buf[i] == ']')
            return array_end(r, i, row);
    }
    if (!skip_ws(r, &i)) {
        row->line = r->line;
        row->raw = "";
        row->raw_len = 0;
        snprintf(row->reason, sizeof row->reason,
                 "JSON array is cut off: the file ends at line %lld without the closing ']'; "
                 "the rows before it were kept",
                 (long long)r->line);
        r->done = true;
        return LT_READ_BAD;
    }
    if (need_sep) {
        if (r->buf[i] == ']')
            return array_end(r, i, row);
        if (r->buf[i] != ',') {
            row->line = r->line;
            set_row(r, r->buf + i, r->end - i < RAW_KEEP ? r->end - i : RAW_KEEP);
            row->raw = r->row;
            row->raw_len = strlen(r->row);
            snprintf(row->reason, sizeof row->reason,
                     "malformed JSON array at line %lld: expected ',' or ']' between elements, "
                     "found '%c'; the rest of the file was not read",
                     (long long)r->line, r->buf[i]);
            r->done = true;
            return LT_READ_BAD;
        }
        i++;
        r->start = i;
        r->need_sep = false;
        return next_array(r, row); /* skips whitespace, now without a separator */
    }
    /* scan one element: depth, strings and escapes */
    r->start = i;
    row->line = r->line;
    size_t off = 0;
    int depth = 0;
    bool in_str = false, esc = false, skipping = false, scalar = false;
    int64_t skipped = 0, lines = 0;
    for (;;) {
        if (r->start + off == r->end) {
            if (!skipping && (int64_t)off > r->max_row) {
                skipping = true;
                set_row(r, r->buf + r->start, RAW_KEEP);
            }
            if (skipping) {
                skipped += (int64_t)off;
                r->start += off;
                off = 0;
            }
            if (!refill(r, skipping ? CHUNK : off + CHUNK)) {
                if (!skipping)
                    set_row(r, r->buf + r->start, off < RAW_KEEP ? off : RAW_KEEP);
                row->raw = r->row;
                row->raw_len = strlen(r->row);
                snprintf(row->reason, sizeof row->reason,
                         "JSON array is cut off: the element starting at line %lld is "
                         "incomplete (the file ends inside it); the rows before it were kept",
                         (long long)row->line);
                r->line += lines;
                r->done = true;
                return LT_READ_BAD;
            }
            continue;
        }
        char c = r->buf[r->start + off];
        if (c == '\n')
            lines++;
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                break; /* end of a scalar element at the closing ']' */
            depth--;
            if (depth == 0) {
                off++;
                break;
            }
        } else if (depth == 0 && c == ',') {
            break;
        } else if (depth == 0) {
            scalar = true;
        }
        off++;
    }
    (void)scalar;
    const char *p = r->buf + r->start;
    r->start += off;
    r->line += lines;
    r->need_sep = true;
    if (skipping) {
        row->raw = r->row;
        row->raw_len = RAW_KEEP;
        too_long(r, row, "array element", skipped + (int64_t)off);
        return LT_READ_BAD;
    }
    if (!set_row(r, p, off))
        return LT_READ_EOF;
    while (off && is_ws(r->row[off - 1]))
        r->row[--off] = '\0';
    r->need_sep = true;
    return parse_row(r, row, off);
}

/* ---- CSV (RFC 4180) ---- */

/* Scans one record from r->start: returns its length in *len (without the newline) and
 * consumes it. Returns 0 ok, 1 EOF before any byte, 2 EOF inside quotes, 3 over-long
 * (skipped, *len = bytes skipped). r->row holds the record (or a prefix when skipped). */
static int csv_scan(lt_reader *r, size_t *len, int64_t *quote_line, int64_t *lines_out)
{
    size_t off = 0;
    bool in_q = false, skipping = false;
    int64_t skipped = 0, lines = 0;
    for (;;) {
        if (r->start + off == r->end) {
            if (!skipping && (int64_t)off > r->max_row) {
                skipping = true;
                set_row(r, r->buf + r->start, RAW_KEEP);
            }
            if (skipping) {
                skipped += (int64_t)off;
                r->start += off;
                off = 0;
            }
            if (!refill(r, skipping ? CHUNK : off + CHUNK)) {
                *lines_out = lines;
                if (in_q) {
                    if (!skipping)
                        set_row(r, r->buf + r->start, off < RAW_KEEP ? off : RAW_KEEP);
                    r->start += off;
                    return 2;
                }
                if (skipping) {
                    *len = (size_t)skipped;
                    return 3;
                }
                if (off == 0)
                    return 1;
                set_row(r, r->buf + r->start, off);
                *len = off;
                r->start += off;
                return 0;
            }
            continue;
        }
        char c = r->buf[r->start + off];
        if (c == '"') {
            if (!in_q)
                *quote_line = r->line + lines;
            in_q = !in_q;
        } else if (c == '\n') {
            if (!in_q) {
                *lines_out = lines + 1;
                if (skipping) {
                    r->start += off + 1;
                    *len = (size_t)(skipped + (int64_t)off);
                    return 3;
                }
                size_t n = off;
                if (n && r->buf[r->start + n - 1] == '\r')
                    n--;
                set_row(r, r->buf + r->start, n);
                *len = n;
                r->start += off + 1;
                return 0;
            }
            lines++;
        }
        off++;
    }
}

/* Splits r->row[0..n) into fields (unquoted in place into a new buffer). Returns the count,
 * or -1 with reason set. fields[i] point into out. */
static int csv_fields(const char *s, size_t n, char *out, char **fields, int max_fields,
                      char *reason, size_t rlen, int64_t line)
{
    int nf = 0;
    size_t i = 0, o = 0;
    for (;;) {
        if (nf == max_fields) {
            snprintf(reason, rlen, "CSV row at line %lld has more than %d fields",
                     (long long)line, max_fields);
            return -1;
        }
        fields[nf++] = out + o;
        if (i < n && s[i] == '"') {
            size_t open = i++;
            for (;;) {
                if (i >= n) {
                    snprintf(reason, rlen,
                             "CSV row at line %lld: the quote at byte column %zu never closes",
                             (long long)line, open + 1);
                    return -1;
                }
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        out[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                out[o++] = s[i++];
            }
            if (i < n && s[i] != ',') {
                snprintf(reason, rlen,
                         "CSV row at line %lld: unexpected character after a closing quote at "
                         "byte column %zu (expected ',' or the end of the row)",
                         (long long)line, i + 1);
                return -1;
            }
        } else {
            while (i < n && s[i] != ',') {
                if (s[i] == '"') {
                    snprintf(reason, rlen,
                             "CSV row at line %lld: a quote inside an unquoted field at byte "
                             "column %zu (quote the whole field and double the quote)",
                             (long long)line, i + 1);
                    return -1;
                }
                out[o++] = s[i++];
            }
        }
        out[o++] = '\0';
        if (i >= n)
            return nf;
        i++; /* the comma */
    }
}

#define CSV_MAX_FIELDS 256

static lt_data_status csv_read_header(lt_reader *r, const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    int64_t ql = 0, lines = 0;
    int rc = csv_scan(r, &len, &ql, &lines);
    r->line += lines;
    if (rc != 0) {
        snprintf(err, errlen, "%s: the CSV header row %s", path,
                 rc == 2 ? "has a quote that never closes" : "could not be read");
        return LT_DATA_EMPTY;
    }
    char *out = malloc(len + 1);
    char *fields[CSV_MAX_FIELDS];
    char reason[256];
    if (!out)
        return LT_DATA_NOMEM;
    int nf = csv_fields(r->row, len, out, fields, CSV_MAX_FIELDS, reason, sizeof reason, 1);
    if (nf < 0) {
        snprintf(err, errlen, "%s: bad CSV header: %s", path, reason);
        free(out);
        return LT_DATA_ENCODING;
    }
    r->header = calloc((size_t)nf, sizeof *r->header);
    if (!r->header) {
        free(out);
        return LT_DATA_NOMEM;
    }
    for (int i = 0; i < nf; i++) {
        char name[32];
        if (!fields[i][0])
            snprintf(name, sizeof name, "column_%d", i + 1);
        r->header[i] = strdup(fields[i][0] ? fields[i] : name);
        r->n_header++;
        if (!r->header[i]) {
            free(out);
            return LT_DATA_NOMEM;
        }
    }
    free(out);
    return LT_DATA_OK;
}

static lt_read_kind next_csv(lt_reader *r, lt_read_row *row)
{
    for (;;) {
        size_t len = 0;
        int64_t ql = 0, lines = 0;
        row->line = r->line;
        int rc = csv_scan(r, &len, &ql, &lines);
        r->line += lines;
        if (rc == 1)
            return LT_READ_EOF;
        if (rc == 2) {
            row->raw = r->row;
            row->raw_len = strlen(r->row);
            snprintf(row->reason, sizeof row->reason,
                     "unbalanced quote: the quoted field opened at line %lld never closes "
                     "(the file ends inside it); the rows before it were kept",
                     (long long)ql);
            r->done = true;
            return LT_READ_BAD;
        }
        if (rc == 3) {
            row->raw = r->row;
            row->raw_len = RAW_KEEP;
            too_long(r, row, "CSV row", (int64_t)len);
            return LT_READ_BAD;
        }
        if (len == 0)
            continue;
        row->raw = r->row;
        row->raw_len = len;
        int64_t bad = lt_utf8_invalid_at(r->row, len);
        if (bad >= 0) {
            row->column = bad + 1;
            snprintf(row->reason, sizeof row->reason,
                     "invalid UTF-8 at line %lld, byte column %lld", (long long)row->line,
                     (long long)row->column);
            return LT_READ_BAD;
        }
        const char *nul = memchr(r->row, '\0', len);
        if (nul) { /* a field with a NUL would be cut short: refused, naming the column */
            int field = 0;
            bool quoted = false;
            for (const char *q = r->row; q < nul; q++) {
                if (*q == '"')
                    quoted = !quoted;
                else if (*q == ',' && !quoted)
                    field++;
            }
            row->column = (int64_t)(nul - r->row) + 1;
            snprintf(row->reason, sizeof row->reason,
                     "NUL byte at line %lld, byte column %lld, in column '%s'; text with NUL "
                     "cannot be kept whole, so the row was not imported",
                     (long long)row->line, (long long)row->column,
                     field < r->n_header ? r->header[field] : "?");
            return LT_READ_BAD;
        }
        char *out = malloc(len + 1);
        char *fields[CSV_MAX_FIELDS];
        if (!out)
            return LT_READ_EOF;
        int nf = csv_fields(r->row, len, out, fields, CSV_MAX_FIELDS, row->reason,
                            sizeof row->reason, row->line);
        if (nf >= 0 && nf != r->n_header) {
            snprintf(row->reason, sizeof row->reason,
                     "CSV row at line %lld has %d fields, the header has %d", (long long)row->line,
                     nf, r->n_header);
            nf = -1;
        }
        if (nf < 0) {
            free(out);
            return LT_READ_BAD;
        }
        r->json = cJSON_CreateObject();
        for (int i = 0; r->json && i < nf; i++)
            cJSON_AddStringToObject(r->json, r->header[i], fields[i]);
        free(out);
        row->json = r->json;
        return LT_READ_ROW;
    }
}

/* Hashes the whole file through its own FILE*. Writes sha_hex ("" on a read error). */
static void *hash_file(void *arg)
{
    lt_reader *r = arg;
    lt_sha256 c;
    uint8_t d[32];
    FILE *f = fopen(r->path, "rb");
    char *buf = malloc(CHUNK);
    r->sha_hex[0] = '\0';
    if (f && buf) {
        lt_sha256_init(&c);
        size_t got;
        while ((got = fread(buf, 1, CHUNK, f)) > 0) {
            if (__atomic_load_n(&r->hasher_stop, __ATOMIC_RELAXED))
                break;
            lt_sha256_update(&c, buf, got);
        }
        if (!ferror(f) && !__atomic_load_n(&r->hasher_stop, __ATOMIC_RELAXED))
            lt_sha256_final(&c, d, r->sha_hex);
    }
    if (f)
        fclose(f);
    free(buf);
    return NULL;
}

lt_data_status lt_reader_open(const char *path, int64_t max_row_bytes, lt_reader **out,
                              char *err, size_t errlen)
{
    lt_data_status st = LT_DATA_NOMEM;
    *out = NULL;
    lt_reader *r = calloc(1, sizeof *r);
    if (!r)
        goto fail;
    r->max_row = max_row_bytes > 0 ? max_row_bytes : (16 << 20);
    r->cap = CHUNK + 1;
    r->buf = malloc(r->cap);
    if (!r->buf)
        goto free_reader;
    r->line = 1;
    r->path = strdup(path);
    if (!r->path)
        goto free_reader;
    r->f = fopen(path, "rb");
    if (!r->f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        st = LT_DATA_IO;
        goto free_reader;
    }
    struct stat sb;
    if (fstat(fileno(r->f), &sb) != 0 || S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        st = LT_DATA_IO;
        goto free_reader;
    }
    r->file_size = S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : 0;
    r->hash_inline = !S_ISREG(sb.st_mode);
    if (r->hash_inline)
        lt_sha256_init(&r->sha);
    refill(r, CHUNK);
    size_t n = r->end;
    const unsigned char *b = (const unsigned char *)r->buf;
    st = LT_DATA_ENCODING;
    if (n == 0 && r->read_errno) {
        snprintf(err, errlen, "%s: %s", path,
                 r->read_errno == EINTR ? "interrupted before anything was read"
                                        : strerror(r->read_errno));
        st = r->read_errno == EINTR ? LT_DATA_INTERRUPTED : LT_DATA_IO;
        goto free_reader;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: the file is empty", path);
        st = LT_DATA_EMPTY;
        goto free_reader;
    }
    if (n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff))) {
        snprintf(err, errlen,
                 "%s: the file is UTF-16 (byte order mark %02X %02X), lathe reads UTF-8; "
                 "convert it first, e.g. iconv -f UTF-16 -t UTF-8",
                 path, b[0], b[1]);
        goto free_reader;
    }
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        snprintf(err, errlen, "%s: the file is gzip-compressed; decompress it first", path);
        goto free_reader;
    }
    if (n >= 4 && (memcmp(b, "PK\x03\x04", 4) == 0 || memcmp(b, "PAR1", 4) == 0)) {
        snprintf(err, errlen, "%s: the file is a %s archive, not JSON, JSONL or CSV", path,
                 b[0] == 'P' && b[1] == 'K' ? "zip" : "Parquet");
        goto free_reader;
    }
    size_t probe = n < 8192 ? n : 8192, nul = 0, ctl = 0, first_nul = 0, odd_nul = 0;
    for (size_t i = 0; i < probe; i++) {
        if (b[i] == 0) {
            if (!nul)
                first_nul = i;
            nul++;
            odd_nul += i & 1;
        } else if (b[i] < 0x20 && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' &&
                   b[i] != 0x1b && b[i] != 0x0c) {
            ctl++;
        }
    }
    if (nul > probe / 4 && (odd_nul > nul * 9 / 10 || odd_nul < nul / 10)) {
        snprintf(err, errlen,
                 "%s: the file looks like UTF-16 without a byte order mark (every other byte "
                 "is NUL); convert it to UTF-8 first",
                 path);
        goto free_reader;
    }
    if (nul > 0 || ctl > probe / 20) {
        snprintf(err, errlen,
                 "%s: this looks like a binary file, not text (%s at byte %zu); lathe reads "
                 "JSONL, JSON arrays and CSV in UTF-8",
                 path, nul ? "a NUL byte" : "control bytes", nul ? first_nul : (size_t)0);
        goto free_reader;
    }
    if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf)
        r->start = 3; /* UTF-8 byte order mark */
    size_t k = r->start;
    while (k < n && is_ws(r->buf[k]))
        k++;
    if (k == n && (r->eof || (!r->hash_inline && (int64_t)n >= r->file_size))) {
        snprintf(err, errlen, "%s: the file holds only whitespace", path);
        st = LT_DATA_EMPTY;
        goto free_reader;
    }
    if (!memchr(r->buf + k, '\n', n - k)) {
        const char *cr = memchr(r->buf + k, '\r', n - k);
        if (cr && memchr(cr + 1, '\r', (size_t)(r->buf + n - cr - 1))) {
            snprintf(err, errlen,
                     "%s: the lines end in a lone CR (old Mac line endings), so the file reads as "
                     "one line; convert them first, e.g. tr '\\r' '\\n' < IN > OUT",
                     path);
            goto free_reader;
        }
    }
    size_t plen = strlen(path);
    bool ext_csv = (plen > 4 && strcmp(path + plen - 4, ".csv") == 0);
    if (ext_csv)
        r->kind = LT_CONTAINER_CSV;
    else if (k < n && r->buf[k] == '[')
        r->kind = LT_CONTAINER_ARRAY;
    else if (k < n && r->buf[k] == '{')
        r->kind = LT_CONTAINER_JSONL;
    else {
        const char *nl = memchr(r->buf + k, '\n', n - k);
        size_t ln = nl ? (size_t)(nl - (r->buf + k)) : n - k;
        r->kind = memchr(r->buf + k, ',', ln) ? LT_CONTAINER_CSV : LT_CONTAINER_JSONL;
    }
    if (r->kind == LT_CONTAINER_CSV) {
        st = csv_read_header(r, path, err, errlen);
        if (st != LT_DATA_OK)
            goto free_reader;
    }
    if (!r->hash_inline)
        r->hasher_running = pthread_create(&r->hasher, NULL, hash_file, r) == 0;
    *out = r;
    return LT_DATA_OK;
free_reader:
    lt_reader_close(r);
fail:
    if (st == LT_DATA_NOMEM)
        snprintf(err, errlen, "%s: out of memory", path);
    return st;
}

lt_read_kind lt_reader_next(lt_reader *r, lt_read_row *row)
{
    cJSON_Delete(r->json);
    r->json = NULL;
    row->json = NULL;
    row->raw = "";
    row->raw_len = 0;
    row->column = 0;
    row->reason[0] = '\0';
    if (r->done)
        return LT_READ_EOF;
    switch (r->kind) {
    case LT_CONTAINER_JSONL: return next_jsonl(r, row);
    case LT_CONTAINER_ARRAY: return next_array(r, row);
    case LT_CONTAINER_CSV: return next_csv(r, row);
    }
    return LT_READ_EOF;
}

lt_container lt_reader_container(const lt_reader *r) { return r->kind; }
void lt_reader_defer_parse(lt_reader *r, bool on) { r->defer_parse = on; }

cJSON *lt_reader_take_json(lt_reader *r)
{
    cJSON *j = r->json;
    r->json = NULL;
    return j;
}
int64_t lt_reader_bytes_read(const lt_reader *r) { return r->bytes_read; }
int64_t lt_reader_file_size(const lt_reader *r) { return r->file_size; }
int lt_reader_error(const lt_reader *r) { return r->read_errno; }

const char *lt_reader_sha256(lt_reader *r)
{
    if (!r->sha_done) {
        if (r->hash_inline) {
            uint8_t d[32];
            while (refill(r, r->end - r->start + CHUNK)) /* what the rows left unread */
                r->start = r->end;
            lt_sha256_final(&r->sha, d, r->sha_hex);
        } else if (r->hasher_running) {
            pthread_join(r->hasher, NULL);
            r->hasher_running = false;
        } else {
            hash_file(r);
        }
        r->sha_done = true;
    }
    return r->sha_hex;
}

void lt_reader_close(lt_reader *r)
{
    if (!r)
        return;
    if (r->hasher_running) {
        __atomic_store_n(&r->hasher_stop, 1, __ATOMIC_RELAXED);
        pthread_join(r->hasher, NULL);
    }
    free(r->path);
    if (r->f)
        fclose(r->f);
    cJSON_Delete(r->json);
    for (int i = 0; i < r->n_header; i++)
        free(r->header[i]);
    free(r->header);
    free(r->row);
    free(r->buf);
    free(r);
}
