/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors header parser and the config.json
 * reader: any bytes must give either a validated file or an error, never a crash, a leak or
 * an out-of-bounds read. After a successful parse every tensor's bytes are touched, so a
 * range the validator let through that leaves the buffer is caught by AddressSanitizer.
 * Built and run by scripts/fuzz.sh (clang); replayed over tests/fuzz/corpus/safetensors/ by
 * the test fuzz_safetensors_corpus (with fuzz_driver.c).
 */
#include "model/config.h"
#include "model/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    /* copy into an exact-size allocation so reads past the end are caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    lt_st_file *f = NULL;
    if (lt_st_parse(buf, size, "fuzz", &f, err, sizeof(err)) == LT_ST_OK) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < lt_st_count(f); i++) {
            const lt_st_tensor *t = lt_st_at(f, i);
            const uint8_t *p = t->data;
            for (uint64_t j = 0; j < t->end - t->begin; j++)
                sink ^= p[j];
            if (lt_st_find(f, t->name) != t)
                abort();
        }
        const char *k, *v;
        for (int i = 0; lt_st_metadata_at(f, i, &k, &v); i++)
            sink ^= (uint8_t)(k[0] ^ v[0]);
        (void)sink;
        lt_st_close(f);
    }
    lt_model_config c;
    lt_model_config_parse((const char *)buf, size, "fuzz.json", &c, err, sizeof(err));
    free(buf);
    return 0;
}
