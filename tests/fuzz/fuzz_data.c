/*
 * fuzz_data.c - libFuzzer target for the dataset readers (JSON Lines, JSON arrays read element
 * by element, CSV with quoted fields) and the row pipeline after them: parsing, format
 * detection, normalization in every format, the sample text and the alpaca export's
 * conversion. Any bytes must give rows or row-level reasons, never a crash, a hang, a leak or
 * an out-of-bounds access. The first byte picks the container (its value mod 3: .jsonl, .json,
 * .csv) and a row-size limit; the rest is the file, written to a temporary folder because the
 * reader opens a path.
 * Built by scripts/fuzz.sh (clang -fsanitize=fuzzer) and, with tests/fuzz/fuzz_driver.c, as
 * the test fuzz_data_corpus that replays tests/fuzz/corpus/data/.
 */
#include "data/data.h"
#include "data/data_impl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

/* Normalizes one parsed row in every format (each must give a sample or a reason). */
static void normalize_all(const cJSON *row)
{
    lt_field_map map;
    memset(&map, 0, sizeof map);
    lt_format_detect(row, &map);
    for (int f = LT_DATA_FORMAT_ALPACA; f <= LT_DATA_FORMAT_MULTIPLE_CHOICE; f++) {
        lt_norm_sample ns;
        char reason[512];
        memset(&ns, 0, sizeof ns);
        if (lt_format_normalize(row, (lt_data_format)f, &map, &ns, reason, sizeof reason)) {
            char *resp = NULL;
            free(lt_data_sample_text(ns.json, &resp));
            free(resp);
            lt_norm_sample_free(&ns);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[3] = {"in.jsonl", "in.json", "in.csv"};
    if (size < 1)
        return 0;
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/lathe-fuzz-data-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            dir[0] = '\0';
            return 0;
        }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, names[data[0] % 3]);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    char err[1024];
    lt_reader *r = NULL;
    int64_t max_row = data[0] & 0x80 ? 64 : 0; /* a tiny limit sometimes: over-long rows */
    if (lt_reader_open(path, max_row, &r, err, sizeof err) == LT_DATA_OK) {
        lt_reader_defer_parse(r, data[0] & 0x40);
        lt_read_row row;
        lt_read_kind k;
        int n = 0;
        while ((k = lt_reader_next(r, &row)) != LT_READ_EOF && n++ < 10000) {
            cJSON *j = NULL;
            if (k == LT_READ_RAW) {
                char reason[600];
                int64_t col;
                if (lt_parse_row(row.raw, row.raw_len, row.line, &j, reason, sizeof reason, &col) ==
                    LT_READ_ROW) {
                    normalize_all(j);
                    cJSON_Delete(j);
                }
            } else if (k == LT_READ_ROW) {
                normalize_all(row.json);
            }
        }
        lt_reader_sha256(r);
        lt_reader_close(r);
    }
    unlink(path);
    return 0;
}
