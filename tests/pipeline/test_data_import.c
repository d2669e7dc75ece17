/*
 * test_data_import.c - golden import tests: every format with every kind of bad row and its
 * expected reason; every good row kept; bad files (empty, UTF-16, binary, a ~50 MB single
 * line, unbalanced CSV quotes, a cut-off JSON array) give a clear message and leave the
 * database consistent; an interrupted or killed import leaves no dataset behind.
 */
#include "data/data.h"
#include "data/data_impl.h"
#include "data/sha256.h"
#include "store.h"
#include "test.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];
static char fixture[512];

static const char *fx(const char *name)
{
    snprintf(fixture, sizeof fixture, "%s/datasets/%s", LATHE_TEST_DATA, name);
    return fixture;
}

static lt_store *open_ws(const char *sub)
{
    char ws[400], err[512];
    snprintf(ws, sizeof ws, "%s/%s", tmpdir, sub);
    lt_store *st = NULL;
    lt_store_status s = lt_store_open(ws, &st, err, sizeof err);
    CHECK(s == LT_STORE_OK, "open %s: %s", ws, err);
    return st;
}

/* Runs a query returning one integer on the workspace's database. */
static long long db_int(const char *sub, const char *sql)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/lathe.db", tmpdir, sub);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long long v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

typedef struct expect {
    long line;
    const char *severity;
    const char *reason; /* substring */
} expect;

/* Imports one fixture and checks counts and every issue against the golden list. */
static void golden(lt_store *st, const char *file, const char *name, lt_data_format want_format,
                   int want_rows, const expect *ex, int n_ex)
{
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = name;
    const char *paths[1] = {fx(file)};
    lt_data_import_result res;
    char err[1024] = "";
    lt_data_status s = lt_data_import(st, paths, 1, &o, &res, err, sizeof err);
    CHECK(s == LT_DATA_OK, "%s: import failed: %s", file, err);
    CHECK(res.format == want_format, "%s: format %s, expected %s", file,
          lt_data_format_name(res.format), lt_data_format_name(want_format));
    CHECK(res.n_rows == want_rows, "%s: %lld good rows, expected %d", file,
          (long long)res.n_rows, want_rows);
    int n_err = 0;
    for (int i = 0; i < n_ex; i++)
        n_err += strcmp(ex[i].severity, "error") == 0;
    CHECK(res.n_bad == n_err, "%s: %lld bad rows, expected %d", file, (long long)res.n_bad,
          n_err);
    lt_store_version v;
    CHECK(lt_store_version_get(st, name, 0, &v) == LT_STORE_OK, "%s: no version", file);
    lt_store_iter *it = NULL;
    CHECK(lt_store_issues_iter(st, v.dataset_id, 0, &it) == LT_STORE_OK, "issues iter");
    lt_store_issue is;
    int k = 0;
    while (it && lt_store_issues_next(it, &is) == LT_STORE_OK) {
        if (k >= n_ex) {
            CHECK(0, "%s: unexpected issue at line %lld: %s", file, (long long)is.line,
                  is.reason);
            k++;
            continue;
        }
        CHECK(is.line == ex[k].line, "%s: issue %d at line %lld, expected line %ld", file, k,
              (long long)is.line, ex[k].line);
        CHECK(strcmp(is.severity, ex[k].severity) == 0, "%s line %ld: severity %s", file,
              ex[k].line, is.severity);
        CHECK(strstr(is.reason, ex[k].reason) != NULL, "%s line %ld: reason '%s' lacks '%s'",
              file, ex[k].line, is.reason, ex[k].reason);
        CHECK(is.raw != NULL, "%s line %ld: raw text kept", file, ex[k].line);
        k++;
    }
    CHECK(k == n_ex, "%s: %d issues, expected %d", file, k, n_ex);
    lt_store_iter_free(it);
}

static void test_golden_formats(void)
{
    lt_store *st = open_ws("golden");
    if (!st)
        return;
    static const expect alpaca[] = {
        {3, "error", "malformed JSON at line 3, byte column 63"},
        {4, "error", "missing field 'output'"},
        {5, "error", "field 'instruction' is empty"},
        {6, "error", "field 'output' is a number, expected a string"},
        {7, "warning", "control character U+0007 (bell)"},
        {8, "error", "is an array, expected a JSON object"},
    };
    golden(st, "alpaca_mixed.jsonl", "alpaca", LT_DATA_FORMAT_ALPACA, 5, alpaca, 6);
    static const expect sharegpt[] = {
        {3, "error", "unknown role 'robot'"},
        {4, "error", "turns 1 and 2 are both from user (no assistant reply"},
        {5, "error", "ends with a user turn and has no assistant reply"},
        {6, "error", "starts with assistant turn 1"},
        {7, "error", "turn 2 (assistant) has empty content"},
        {8, "error", "field 'conversations' is a string, expected an array"},
    };
    golden(st, "sharegpt_mixed.jsonl", "sharegpt", LT_DATA_FORMAT_SHAREGPT, 3, sharegpt, 6);
    static const expect messages[] = {
        {4, "error", "unknown role 'wizard'"},
        {5, "error", "field 'content' is a number"},
    };
    golden(st, "messages_array.json", "messages", LT_DATA_FORMAT_MESSAGES, 3, messages, 2);
    static const expect cut[] = {
        {4, "error", "unknown role 'wizard'"},
        {5, "error", "JSON array is cut off: the element starting at line 5 is incomplete"},
    };
    golden(st, "messages_cut.json", "cut", LT_DATA_FORMAT_MESSAGES, 2, cut, 2);
    static const expect pref[] = {
        {2, "error", "chosen and rejected are identical"},
        {3, "error", "missing field 'rejected'"},
    };
    golden(st, "preference_mixed.jsonl", "pref", LT_DATA_FORMAT_PREFERENCE, 2, pref, 2);
    static const expect text[] = {
        {3, "error", "field 'text' is empty"},
        {4, "error", "missing field 'text'"},
    };
    golden(st, "text_mixed.jsonl", "text", LT_DATA_FORMAT_TEXT, 2, text, 2);
    static const expect csv[] = {{6, "error", "has 1 fields, the header has 2"}};
    golden(st, "qa.csv", "csv", LT_DATA_FORMAT_ALPACA, 4, csv, 1);
    static const expect unb[] = {{4, "error", "unbalanced quote: the quoted field opened at "
                                              "line 4 never closes"}};
    golden(st, "unbalanced.csv", "unbalanced", LT_DATA_FORMAT_ALPACA, 2, unb, 1);

    /* good rows are kept whole: the CSV's quoted newline and doubled quotes */
    lt_store_version v;
    lt_store_sample s;
    CHECK(lt_store_version_get(st, "csv", 0, &v) == LT_STORE_OK, "csv version");
    CHECK(lt_store_sample_get(st, v.version_id, 1, &s) == LT_STORE_OK, "csv row 1");
    CHECK(strstr(s.data, "line one\\nline two") != NULL, "quoted newline kept: %s", s.data);
    CHECK(s.line == 3, "csv row 1 starts at line 3, got %lld", (long long)s.line);
    CHECK(lt_store_sample_get(st, v.version_id, 2, &s) == LT_STORE_OK, "csv row 2");
    CHECK(strstr(s.data, "He said \\\"hi\\\".") != NULL, "doubled quotes: %s", s.data);
    /* alpaca: input joined to the instruction, the warning row kept and flagged */
    CHECK(lt_store_version_get(st, "alpaca", 0, &v) == LT_STORE_OK, "alpaca version");
    CHECK(lt_store_sample_get(st, v.version_id, 1, &s) == LT_STORE_OK, "alpaca row 1");
    CHECK(strstr(s.data, "Translate to French.\\nGood morning") != NULL, "prompt: %s", s.data);
    CHECK(lt_store_sample_get(st, v.version_id, 2, &s) == LT_STORE_OK, "alpaca row 2");
    CHECK(s.flags & LT_SAMPLE_FLAG_CONTROL_CHARS, "control-char row flagged");
    /* sharegpt system prompt and multi-turn */
    CHECK(lt_store_version_get(st, "sharegpt", 0, &v) == LT_STORE_OK, "sharegpt version");
    CHECK(lt_store_sample_get(st, v.version_id, 1, &s) == LT_STORE_OK, "sharegpt row 1");
    CHECK(s.n_turns == 4 && strstr(s.data, "\"system\":\"You are terse.\""), "sharegpt: %s",
          s.data);
    /* preference with message lists */
    CHECK(lt_store_version_get(st, "pref", 0, &v) == LT_STORE_OK, "pref version");
    CHECK(lt_store_sample_get(st, v.version_id, 1, &s) == LT_STORE_OK, "pref row 1");
    CHECK(strstr(s.data, "\"chosen\":\"Hello, nice to meet you.\"") != NULL, "pref: %s", s.data);
    lt_store_close(st);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* A bad file fails with a message containing want, and leaves no dataset. */
static void bad_file(lt_store *st, const char *file, lt_data_status want_status,
                     const char *want)
{
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = "bad";
    const char *paths[1] = {file};
    lt_data_import_result res;
    char err[1024] = "";
    lt_data_status s = lt_data_import(st, paths, 1, &o, &res, err, sizeof err);
    CHECK(s == want_status, "%s: status %s, expected %s (%s)", file, lt_data_status_str(s),
          lt_data_status_str(want_status), err);
    CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", file, err, want);
    int64_t id;
    CHECK(lt_store_dataset_find(st, "bad", &id) == LT_STORE_NOT_FOUND, "%s: no dataset left",
          file);
}

static void test_bad_files(void)
{
    lt_store *st = open_ws("bad");
    if (!st)
        return;
    char p[400];
    snprintf(p, sizeof p, "%s/empty.jsonl", tmpdir);
    write_file(p, "", 0);
    bad_file(st, p, LT_DATA_EMPTY, "the file is empty");
    snprintf(p, sizeof p, "%s/blank.jsonl", tmpdir);
    write_file(p, "\n  \n\n", 5);
    bad_file(st, p, LT_DATA_EMPTY, "only whitespace");
    /* UTF-16 LE with a byte order mark, and without one */
    static const char u16[] = "\xff\xfe{\0\"\0t\0e\0x\0t\0\"\0:\0 \0\"\0h\0i\0\"\0}\0\n\0";
    snprintf(p, sizeof p, "%s/utf16.jsonl", tmpdir);
    write_file(p, u16, sizeof u16 - 1);
    bad_file(st, p, LT_DATA_ENCODING, "UTF-16");
    snprintf(p, sizeof p, "%s/utf16nobom.jsonl", tmpdir);
    write_file(p, u16 + 2, sizeof u16 - 3);
    bad_file(st, p, LT_DATA_ENCODING, "UTF-16 without a byte order mark");
    unsigned char bin[4096];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7919u >> 3);
    snprintf(p, sizeof p, "%s/model.bin", tmpdir);
    write_file(p, bin, sizeof bin);
    bad_file(st, p, LT_DATA_ENCODING, "binary file");
    snprintf(p, sizeof p, "%s/data.jsonl.gz", tmpdir);
    write_file(p, "\x1f\x8b\x08\x00\x00\x00", 6);
    bad_file(st, p, LT_DATA_ENCODING, "gzip");
    snprintf(p, sizeof p, "%s/missing.jsonl", tmpdir);
    bad_file(st, p, LT_DATA_IO, "cannot open");
    /* a file where every row is bad: nothing kept, the first reason shown */
    snprintf(p, sizeof p, "%s/allbad.jsonl", tmpdir);
    write_file(p, "{\"x\": 1}\n{\"y\": 2}\n", 18);
    bad_file(st, p, LT_DATA_EMPTY, "fits no known format");
    /* --strict: one bad row fails everything */
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = "bad";
    o.strict = true;
    const char *paths[1] = {fx("alpaca_mixed.jsonl")};
    lt_data_import_result res;
    char err[1024];
    CHECK(lt_data_import(st, paths, 1, &o, &res, err, sizeof err) == LT_DATA_STRICT,
          "--strict fails");
    CHECK(strstr(err, "--strict: 5 bad rows") != NULL, "strict message: %s", err);
    int64_t id;
    CHECK(lt_store_dataset_find(st, "bad", &id) == LT_STORE_NOT_FOUND, "strict keeps nothing");
    lt_store_close(st);
    CHECK(db_int("bad", "SELECT COUNT(*) FROM samples") == 0, "no samples left behind");
    CHECK(db_int("bad", "SELECT COUNT(*) FROM dataset_versions") == 0, "no versions left");
    CHECK(db_int("bad", "SELECT COUNT(*) FROM row_issues") == 0, "no issues left");
}

/* A ~50 MB single line between good rows: reported, skipped, the good rows kept, memory
 * bounded by --max-row-bytes. Also invalid UTF-8 with its byte column. */
static void test_huge_line_and_utf8(void)
{
    lt_store *st = open_ws("huge");
    if (!st)
        return;
    char p[400];
    snprintf(p, sizeof p, "%s/huge.jsonl", tmpdir);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL, "create huge file");
    if (!f)
        return;
    fputs("{\"text\": \"first good row\"}\n{\"text\": \"", f);
    char chunk[65536];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 50 * 16; i++)
        fwrite(chunk, 1, sizeof chunk, f);
    fputs("\"}\n{\"text\": \"bad \xff\xfe byte\"}\n{\"text\": \"last good row\"}\n", f);
    fclose(f);
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = "huge";
    o.max_row_bytes = 1 << 20;
    const char *paths[1] = {p};
    lt_data_import_result res;
    char err[1024] = "";
    lt_data_status s = lt_data_import(st, paths, 1, &o, &res, err, sizeof err);
    CHECK(s == LT_DATA_OK, "huge import: %s", err);
    CHECK(res.n_rows == 2 && res.n_bad == 2, "huge: %lld rows, %lld bad", (long long)res.n_rows,
          (long long)res.n_bad);
    lt_store_version v;
    lt_store_iter *it = NULL;
    lt_store_issue is;
    if (lt_store_version_get(st, "huge", 0, &v) == LT_STORE_OK &&
        lt_store_issues_iter(st, v.dataset_id, 0, &it) == LT_STORE_OK) {
        CHECK(lt_store_issues_next(it, &is) == LT_STORE_OK, "first issue");
        CHECK(is.line == 2 && strstr(is.reason, "longer than the limit of 1048576 bytes"),
              "huge line issue: line %lld %s", (long long)is.line, is.reason);
        CHECK(strlen(is.raw) < 1000, "raw text of the huge row truncated");
        CHECK(lt_store_issues_next(it, &is) == LT_STORE_OK, "second issue");
        CHECK(is.line == 3 && strstr(is.reason, "invalid UTF-8 at line 3, byte column 15"),
              "utf8 issue: line %lld %s", (long long)is.line, is.reason);
    }
    lt_store_iter_free(it);
    lt_store_close(st);
    unlink(p);
}

static volatile sig_atomic_t stop_flag;

static void raise_after_first(void *ctx, const char *path, int64_t done, int64_t total,
                              int64_t rows)
{
    (void)ctx, (void)path, (void)done, (void)total;
    if (rows > 0)
        stop_flag = 1;
}

static void kill_self(void *ctx, const char *path, int64_t done, int64_t total, int64_t rows)
{
    (void)ctx, (void)path, (void)done, (void)total, (void)rows;
    raise(SIGKILL);
}

static void test_interrupted_import(void)
{
    char p[400];
    snprintf(p, sizeof p, "%s/many.jsonl", tmpdir);
    FILE *f = fopen(p, "w");
    if (!f)
        return;
    for (int i = 0; i < 120000; i++)
        fprintf(f, "{\"instruction\": \"Question number %d about things?\", \"output\": "
                   "\"Answer number %d, explained at some length to make the row longer.\"}\n",
                i, i);
    fclose(f);
    lt_store *st = open_ws("intr");
    if (!st)
        return;
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = "many";
    o.batch_rows = 1000;
    o.interrupt = &stop_flag;
    o.progress = raise_after_first;
    const char *paths[1] = {p};
    lt_data_import_result res;
    char err[1024] = "";
    lt_data_status s = lt_data_import(st, paths, 1, &o, &res, err, sizeof err);
    CHECK(s == LT_DATA_INTERRUPTED, "interrupted: %s (%s)", lt_data_status_str(s), err);
    int64_t id;
    CHECK(lt_store_dataset_find(st, "many", &id) == LT_STORE_NOT_FOUND, "no half dataset");
    lt_store_close(st);
    CHECK(db_int("intr", "SELECT COUNT(*) FROM samples") == 0, "no samples after Ctrl-C");

    /* a killed import (no chance to clean up): the next open removes it */
    pid_t pid = fork();
    if (pid == 0) {
        lt_store *cs = NULL;
        char e[512], ws[400];
        snprintf(ws, sizeof ws, "%s/intr", tmpdir);
        if (lt_store_open(ws, &cs, e, sizeof e) != LT_STORE_OK)
            _exit(3);
        lt_data_import_opts co;
        lt_data_import_opts_default(&co);
        co.name = "killed";
        co.batch_rows = 500;
        co.progress = kill_self;
        lt_data_import(cs, paths, 1, &co, &res, e, sizeof e);
        _exit(4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child killed mid-import");
    CHECK(db_int("intr", "SELECT COUNT(*) FROM samples") > 0,
          "the killed import left committed batches behind (to be cleaned)");
    st = open_ws("intr");
    if (!st)
        return;
    CHECK(lt_store_dataset_find(st, "killed", &id) == LT_STORE_NOT_FOUND, "killed: no dataset");
    lt_store_close(st);
    CHECK(db_int("intr", "SELECT COUNT(*) FROM samples") == 0, "cleaned on open");
    CHECK(db_int("intr", "SELECT COUNT(*) FROM datasets") == 0, "dataset row cleaned");
    /* and a full import of the same file works, with its hash recorded */
    st = open_ws("intr");
    o.interrupt = NULL;
    o.progress = NULL;
    s = lt_data_import(st, paths, 1, &o, &res, err, sizeof err);
    CHECK(s == LT_DATA_OK && res.n_rows == 120000, "full import: %s", err);
    lt_store_close(st);
    CHECK(db_int("intr", "SELECT length(sha256) FROM dataset_files") == 64, "file sha256 kept");
    unlink(p);
}

static void test_append_and_field_map(void)
{
    lt_store *st = open_ws("map");
    if (!st)
        return;
    char p[400];
    snprintf(p, sizeof p, "%s/qa_custom.jsonl", tmpdir);
    const char *rows = "{\"question\": \"Why is the sky blue?\", \"answer\": \"Rayleigh "
                       "scattering.\"}\n{\"question\": \"2+2?\", \"answer\": \"4\"}\n";
    write_file(p, rows, strlen(rows));
    lt_data_import_opts o;
    lt_data_import_opts_default(&o);
    o.name = "qa";
    o.field_map[0] = "instruction=question";
    o.field_map[1] = "output=answer";
    o.n_field_map = 2;
    const char *paths[1] = {p};
    lt_data_import_result res;
    char err[1024] = "";
    CHECK(lt_data_import(st, paths, 1, &o, &res, err, sizeof err) == LT_DATA_OK &&
              res.n_rows == 2 && res.format == LT_DATA_FORMAT_ALPACA,
          "field map import: %s", err);
    /* the same name again without --append is refused */
    CHECK(lt_data_import(st, paths, 1, &o, &res, err, sizeof err) == LT_DATA_USAGE &&
              strstr(err, "--append"),
          "name taken: %s", err);
    o.append = true;
    CHECK(lt_data_import(st, paths, 1, &o, &res, err, sizeof err) == LT_DATA_OK &&
              res.version == 2,
          "append: %s", err);
    lt_store_version v;
    CHECK(lt_store_version_get(st, "qa", 0, &v) == LT_STORE_OK && v.n_rows == 4 &&
              strcmp(v.kind, "append") == 0,
          "appended version has 4 rows");
    CHECK(lt_store_version_get(st, "qa", 1, &v) == LT_STORE_OK && v.n_rows == 2,
          "version 1 unchanged");
    o.field_map[0] = "bogus=x";
    CHECK(lt_data_import(st, paths, 1, &o, &res, err, sizeof err) == LT_DATA_USAGE &&
              strstr(err, "unknown field"),
          "bad field map: %s", err);
    lt_store_close(st);
}

static void test_sha256(void)
{
    static const struct {
        const char *in, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        lt_sha256 c;
        uint8_t d[32];
        char hex[65];
        lt_sha256_init(&c);
        /* feed in odd pieces to exercise the block buffer */
        for (const char *p = v[i].in; *p; p++)
            lt_sha256_update(&c, p, 1);
        lt_sha256_final(&c, d, hex);
        CHECK(strcmp(hex, v[i].hex) == 0, "sha256('%s') = %s", v[i].in, hex);
    }
    lt_sha256 c;
    uint8_t d[32];
    char hex[65], mil[1000];
    memset(mil, 'a', sizeof mil);
    lt_sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        lt_sha256_update(&c, mil, sizeof mil);
    lt_sha256_final(&c, d, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
          "sha256(a x 1e6) = %s", hex);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe_test_import_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_sha256();
    test_golden_formats();
    test_bad_files();
    test_huge_line_and_utf8();
    test_append_and_field_map();
    test_interrupted_import();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
