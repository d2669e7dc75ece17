/*
 * tokenize_bench.c - tokenizer throughput: loads a tokenizer folder, encodes every document
 * of a file (documents separated by NUL bytes) twice, and prints MB/s for the first pass
 * (cold pre-token cache) and the second (warm). Built and run by bench/tokenize.sh.
 */
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = NULL;
    if (argc != 3) {
        fprintf(stderr, "usage: tokenize_bench MODEL_DIR DOCS_FILE\n");
        return 2;
    }
    double t0 = now();
    if (lt_tokenizer_load_dir(argv[1], &t, err, sizeof err) != LT_TOK_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double load_s = now() - t0;
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        return 1;
    fclose(f);
    buf[n] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        size_t tokens = 0, bytes = 0;
        lt_tok_ids ids = {0};
        t0 = now();
        for (char *p = buf; p < buf + n;) {
            size_t len = strlen(p);
            ids.n = 0;
            lt_tokenizer_encode(t, p, len, 0, &ids, err, sizeof err);
            tokens += ids.n;
            bytes += len;
            p += len + 1;
        }
        double s = now() - t0;
        printf("lathe  %-8s pass %d (%s cache): %8.2f MB/s  %zu bytes, %zu tokens, %.3f s"
               " (load %.3f s)\n",
               strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1], pass + 1,
               pass ? "warm" : "cold", bytes / s / 1e6, bytes, tokens, s, load_s);
        lt_tok_ids_free(&ids);
    }
    free(buf);
    lt_tokenizer_free(t);
    return 0;
}
