/*
 * test_safetensors.c - the safetensors reader rejects every kind of bad header with a message
 * naming the problem, reads what the writer wrote, and opens sharded folders.
 */
#include "model/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[512];

/* Builds a file image: u64 length, header text padded with spaces, then data bytes. */
static size_t image(uint8_t *buf, const char *hdr, size_t data_bytes)
{
    size_t n = strlen(hdr);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, n);
    for (size_t i = 0; i < data_bytes; i++)
        buf[8 + n + i] = (uint8_t)i;
    return 8 + n + data_bytes;
}

static lt_st_status parse_hdr(const char *hdr, size_t data_bytes)
{
    static uint8_t buf[4096];
    size_t len = image(buf, hdr, data_bytes);
    lt_st_file *f = NULL;
    err[0] = 0;
    lt_st_status st = lt_st_parse(buf, len, "t.safetensors", &f, err, sizeof(err));
    lt_st_close(f);
    return st;
}

static void test_good_header(void)
{
    static uint8_t buf[4096];
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"z\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[12,12]}}   ";
    size_t len = image(buf, hdr, 12);
    lt_st_file *f = NULL;
    lt_st_status st = lt_st_parse(buf, len, "good", &f, err, sizeof(err));
    CHECK(st == LT_ST_OK, "good header rejected: %s", err);
    if (st != LT_ST_OK)
        return;
    CHECK(lt_st_count(f) == 3, "count %d", lt_st_count(f));
    const lt_st_tensor *a = lt_st_find(f, "a"), *b = lt_st_find(f, "b");
    CHECK(a && a->dtype == LT_ST_F32 && a->numel == 2 && a->data == buf + 8 + strlen(hdr),
          "tensor a");
    CHECK(b && b->dtype == LT_ST_BF16 && b->begin == 8 && b->end == 12, "tensor b");
    CHECK(lt_st_find(f, "missing") == NULL, "find of a missing name");
    CHECK(lt_st_metadata(f, "format") && strcmp(lt_st_metadata(f, "format"), "pt") == 0,
          "metadata format");
    CHECK(lt_st_at(f, 0) && strcmp(lt_st_at(f, 0)->name, "a") == 0, "tensors in offset order");
    lt_st_close(f);
}

static void expect_bad(const char *what, const char *hdr, size_t data, const char *needle)
{
    lt_st_status st = parse_hdr(hdr, data);
    CHECK(st == LT_ST_ERR_FORMAT, "%s: accepted (status %d)", what, st);
    CHECK(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, needle);
}

static void test_bad_headers(void)
{
    expect_bad("offsets outside the file",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
               "leave the data buffer");
    expect_bad("unknown dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               8, "unknown dtype \"Q4\"");
    expect_bad("shape/bytes mismatch",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "needs 12 bytes");
    expect_bad("overlap",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "overlaps");
    expect_bad("hole",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, "hole");
    expect_bad("trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               8, "trailing bytes");
    expect_bad("duplicate name",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "appears twice");
    expect_bad("invalid JSON", "{\"a\":{\"dtype\":\"F32\",", 0, "not a valid JSON");
    expect_bad("metadata not strings", "{\"__metadata__\":{\"x\":1}}", 0, "not a string");
    expect_bad("negative shape",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "non-negative");
    expect_bad("fractional offset",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 4,
               "data_offsets");
    expect_bad("not an object", "[1,2]", 0, "does not start with '{'");
    expect_bad("garbage after JSON", "{} x", 0, "unexpected bytes");
    expect_bad("invalid UTF-8", "{\"\xff\":1}", 0, "UTF-8");
    expect_bad("huge shape product",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
               "\"data_offsets\":[0,4]}}",
               4, "overflows");

    /* framing */
    uint8_t small[4] = {1, 2, 3, 4};
    lt_st_file *f = NULL;
    CHECK(lt_st_parse(small, 4, "tiny", &f, err, sizeof(err)) == LT_ST_ERR_FORMAT &&
              strstr(err, "truncated"),
          "4-byte file: %s", err);
    uint8_t lenonly[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    CHECK(lt_st_parse(lenonly, 16, "big", &f, err, sizeof(err)) == LT_ST_ERR_FORMAT &&
              strstr(err, "header length"),
          "absurd header length: %s", err);
    uint8_t trunc[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(lt_st_parse(trunc, 16, "trunc", &f, err, sizeof(err)) == LT_ST_ERR_FORMAT &&
              strstr(err, "truncated"),
          "header longer than file: %s", err);
    CHECK(f == NULL, "no handle on failure");
}

static void test_write_read(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/w.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[3] = {0x3f80, 0x4000, 0xc040};
    int32_t c[1] = {-7};
    int64_t sa[2] = {2, 3}, sb[1] = {3}, sc[1] = {1};
    lt_st_writer *w = lt_st_writer_new();
    CHECK(lt_st_writer_add(w, "a", LT_ST_F32, 2, sa, a, sizeof(a), err, sizeof(err)) == LT_ST_OK,
          "add a: %s", err);
    CHECK(lt_st_writer_add(w, "b", LT_ST_BF16, 1, sb, b, sizeof(b), err, sizeof(err)) == LT_ST_OK,
          "add b");
    CHECK(lt_st_writer_add(w, "c", LT_ST_I32, 1, sc, c, sizeof(c), err, sizeof(err)) == LT_ST_OK,
          "add c");
    CHECK(lt_st_writer_add(w, "a", LT_ST_I32, 1, sc, c, sizeof(c), err, sizeof(err)) ==
              LT_ST_ERR_ARG,
          "duplicate name accepted by the writer");
    CHECK(lt_st_writer_add(w, "d", LT_ST_F32, 1, sc, c, 8, err, sizeof(err)) == LT_ST_ERR_ARG,
          "byte count mismatch accepted by the writer");
    lt_st_writer_set_metadata(w, "format", "pt");
    CHECK(lt_st_writer_write(w, path, err, sizeof(err)) == LT_ST_OK, "write: %s", err);
    lt_st_writer_free(w);

    lt_st_file *f = NULL;
    lt_st_status st = lt_st_open(path, &f, err, sizeof(err));
    CHECK(st == LT_ST_OK, "reopen: %s", err);
    if (st != LT_ST_OK)
        return;
    const lt_st_tensor *ta = lt_st_find(f, "a");
    CHECK(ta && ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 &&
              memcmp(ta->data, a, sizeof(a)) == 0,
          "a round trip");
    const lt_st_tensor *tb = lt_st_find(f, "b");
    CHECK(tb && memcmp(tb->data, b, sizeof(b)) == 0, "b round trip");
    const lt_st_tensor *tc = lt_st_find(f, "c");
    CHECK(tc && tc->dtype == LT_ST_I32 && memcmp(tc->data, c, 4) == 0, "c round trip");
    CHECK(lt_st_metadata(f, "format") && !strcmp(lt_st_metadata(f, "format"), "pt"), "metadata");
    lt_st_close(f);
    /* header padded to 8 bytes */
    FILE *fp = fopen(path, "rb");
    uint8_t len8[8] = {0};
    CHECK(fp && fread(len8, 1, 8, fp) == 8, "read length");
    if (fp)
        fclose(fp);
    CHECK(len8[0] % 8 == 0, "header length %d not a multiple of 8", len8[0]);

    /* a truncated copy is rejected */
    struct stat sb2;
    stat(path, &sb2);
    CHECK(truncate(path, sb2.st_size - 2) == 0, "truncate");
    CHECK(lt_st_open(path, &f, err, sizeof(err)) == LT_ST_ERR_FORMAT, "truncated file accepted");
    CHECK(strstr(err, "w.safetensors") != NULL, "message names the file: %s", err);
    CHECK(lt_st_open("/nonexistent/x.safetensors", &f, err, sizeof(err)) == LT_ST_ERR_IO,
          "missing file");
}

static void write_shard(const char *path, const char *name, float v)
{
    float d[2] = {v, v};
    int64_t s[1] = {2};
    lt_st_writer *w = lt_st_writer_new();
    lt_st_writer_add(w, name, LT_ST_F32, 1, s, d, sizeof(d), err, sizeof(err));
    lt_st_writer_write(w, path, err, sizeof(err));
    lt_st_writer_free(w);
}

static void test_sharded(const char *dir)
{
    char d[512], p[600];
    snprintf(d, sizeof(d), "%s/sharded", dir);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/model-00001-of-00002.safetensors", d);
    write_shard(p, "x", 1.0f);
    snprintf(p, sizeof(p), "%s/model-00002-of-00002.safetensors", d);
    write_shard(p, "y", 2.0f);
    snprintf(p, sizeof(p), "%s/model.safetensors.index.json", d);
    FILE *f = fopen(p, "w");
    fputs("{\"metadata\":{\"total_size\":16},\"weight_map\":{"
          "\"x\":\"model-00001-of-00002.safetensors\","
          "\"y\":\"model-00002-of-00002.safetensors\"}}",
          f);
    fclose(f);
    lt_st_set *s = NULL;
    lt_st_status st = lt_st_set_open_dir(d, &s, err, sizeof(err));
    CHECK(st == LT_ST_OK, "sharded open: %s", err);
    if (st == LT_ST_OK) {
        const lt_st_file *file = NULL;
        const lt_st_tensor *y = lt_st_set_find(s, "y", &file);
        float v = 0;
        if (y)
            memcpy(&v, y->data, 4);
        CHECK(y && v == 2.0f && lt_st_set_file_count(s) == 2 && lt_st_set_count(s) == 2,
              "tensor y from shard 2");
        CHECK(file && strstr(lt_st_path(file), "00002"), "file of y");
        lt_st_set_close(s);
    }
    f = fopen(p, "w");
    fputs("{\"weight_map\":{\"x\":\"model-00002-of-00002.safetensors\"}}", f);
    fclose(f);
    CHECK(lt_st_set_open_dir(d, &s, err, sizeof(err)) == LT_ST_ERR_FORMAT &&
              strstr(err, "does not hold"),
          "index naming the wrong shard: %s", err);
    f = fopen(p, "w");
    fputs("{\"weight_map\":{\"x\":\"../escape.safetensors\"}}", f);
    fclose(f);
    CHECK(lt_st_set_open_dir(d, &s, err, sizeof(err)) == LT_ST_ERR_FORMAT,
          "index escaping the folder: %s", err);
    CHECK(lt_st_set_open_dir(dir, &s, err, sizeof(err)) == LT_ST_ERR_IO &&
              strstr(err, "no model.safetensors"),
          "folder without weights: %s", err);
}

static void test_fixtures(void)
{
    const char *names[] = {"llama_gqa", "llama_tied", "qwen2_bias", "gpt2"};
    for (int i = 0; i < 4; i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/models/%s/model.safetensors", LATHE_TEST_DATA, names[i]);
        lt_st_file *f = NULL;
        CHECK(lt_st_open(p, &f, err, sizeof(err)) == LT_ST_OK, "fixture %s: %s", names[i], err);
        CHECK(f && lt_st_count(f) > 10, "fixture %s tensors", names[i]);
        lt_st_close(f);
    }
}

int main(void)
{
    char dir[] = "/tmp/lathe_st_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good_header();
    test_bad_headers();
    test_write_read(dir);
    test_sharded(dir);
    test_fixtures();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
