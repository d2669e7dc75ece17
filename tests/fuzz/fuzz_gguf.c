/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader: any bytes must give either a validated
 * file or an error, never a crash, a leak or an out-of-bounds read. After a successful parse
 * every key is looked up, every numeric array item read and every tensor decoded to F32, so
 * a count, length or offset the validator let through that leaves the buffer is caught by
 * AddressSanitizer.
 *
 * Build and run (clang; outside ctest), from the repository root:
 *   clang -std=c11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -DFUZZ_F16 \
 *     -Ipipeline -Icompute tests/fuzz/fuzz_gguf.c pipeline/export/gguf.c \
 *     pipeline/export/gguf_parse.c -lm -o fuzz_gguf
 *   ./fuzz_gguf -max_total_time=60 -max_len=65536 CORPUS_DIR
 * The half-float conversions compute.h declares are defined here (FUZZ_F16), so the target
 * links without the compute library.
 */
#include "export/gguf.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef FUZZ_F16
uint16_t lt_f32_to_f16(float f);
float lt_f16_to_f32(uint16_t h);
uint16_t lt_f32_to_bf16(float f);
float lt_bf16_to_f32(uint16_t b);

float lt_f16_to_f32(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY)
                                                       : ldexpf((float)(m | 1024), e - 25);
    return h & 0x8000 ? -v : v;
}
uint16_t lt_f32_to_f16(float f)
{
    (void)f;
    return 0;
}
float lt_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t lt_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    uint8_t *buf = malloc(size ? size : 1); /* exact size: reads past the end are caught */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    lt_gguf_file *f = NULL;
    if (lt_gguf_parse(buf, size, "fuzz", &f, err, sizeof(err)) == LT_MODEL_OK) {
        volatile double sink = 0;
        for (int i = 0; i < lt_gguf_kv_count(f); i++) {
            const lt_gguf_kv *kv = lt_gguf_kv_at(f, i);
            if (lt_gguf_find_kv(f, kv->key) == NULL)
                abort();
            int64_t v;
            double d;
            bool b;
            sink += lt_gguf_get_int(f, kv->key, &v) + lt_gguf_get_float(f, kv->key, &d) +
                    lt_gguf_get_bool(f, kv->key, &b) + (lt_gguf_get_str(f, kv->key) != NULL);
            if (kv->type == LT_GGUF_ARRAY && kv->arr_type != LT_GGUF_STRING)
                for (uint64_t j = 0; j < kv->n; j++)
                    sink += lt_gguf_arr_float(kv, j);
            if (kv->type == LT_GGUF_ARRAY && kv->arr_type == LT_GGUF_STRING)
                for (uint64_t j = 0; j < kv->n; j++)
                    sink += (double)(unsigned char)kv->strs[j][0];
        }
        for (int i = 0; i < lt_gguf_tensor_count(f); i++) {
            const lt_gguf_tensor *t = lt_gguf_tensor_at(f, i);
            if (t->numel > (1 << 20))
                continue; /* bytes were checked against the file; decoding is the slow part */
            float *x = malloc((size_t)t->numel * sizeof(float));
            if (x) {
                lt_ggml_decode(t->type, t->data, t->numel, x);
                sink += x[t->numel - 1];
                free(x);
            }
        }
        (void)sink;
        lt_gguf_close(f);
    }
    free(buf);
    return 0;
}
