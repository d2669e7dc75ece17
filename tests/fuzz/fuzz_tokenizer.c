/*
 * fuzz_tokenizer.c - libFuzzer target for the tokenizer.json loader, tokenizer_config.json and
 * encode/decode. Built by scripts/fuzz.sh (clang -fsanitize=fuzzer,address) and, with
 * fuzz_driver.c, as the test fuzz_tokenizer_corpus over tests/fuzz/corpus/tokenizer/. The
 * input is split at the first 0x00 byte: before it a tokenizer.json, after it text to encode
 * (and a config to apply when it starts with '{').
 */
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[LT_TOK_ERR_LEN];
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_n = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t text_n = nul ? size - json_n - 1 : 0;
    lt_tokenizer *t = NULL;
    if (lt_tokenizer_load_json((const char *)data, json_n, "fuzz", &t, err, sizeof err) != LT_TOK_OK)
        return 0;
    if (text_n && text[0] == '{')
        lt_tokenizer_apply_config(t, text, text_n, "fuzz_config", err, sizeof err);
    lt_tok_ids ids = {0};
    if (lt_tokenizer_encode(t, text, text_n, LT_TOK_ADD_SPECIAL, &ids, err, sizeof err) ==
        LT_TOK_OK) {
        char *out = NULL;
        size_t on = 0;
        if (lt_tokenizer_decode(t, ids.ids, ids.n, 0, &out, &on, err, sizeof err) == LT_TOK_OK)
            free(out);
    }
    lt_tok_ids_free(&ids);
    char *msg = malloc(text_n + 1); /* chat content is a C string */
    if (msg) {
        memcpy(msg, text, text_n);
        msg[text_n] = '\0';
        lt_chat_msg msgs[2] = {{"user", msg}, {"assistant", "y"}};
        lt_tok_ids chat = {0};
        lt_tokenizer_encode_chat(t, (lt_chat_family)(1 + text_n % 4), msgs, 2, true, &chat, err,
                                 sizeof err);
        lt_tok_ids_free(&chat);
        free(msg);
    }
    lt_tokenizer_free(t);
    return 0;
}
