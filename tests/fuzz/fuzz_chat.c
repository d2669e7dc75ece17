/*
 * fuzz_chat.c - libFuzzer target for chat-template rendering and template detection: any
 * messages in any family must render to text whose assistant ranges lie inside it, in order
 * and without overlap, and any text must be classified as a family or none, never a crash or
 * an out-of-bounds access. The first byte picks the family and the generation prompt; the
 * rest splits at 0x00 bytes into messages, each message's first byte picking its role.
 * Built by scripts/fuzz.sh (clang -fsanitize=fuzzer) and, with tests/fuzz/fuzz_driver.c, as
 * the test fuzz_chat_corpus that replays tests/fuzz/corpus/chat/.
 */
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *roles[4] = {"system", "user", "assistant", "tool"};
    if (size < 1)
        return 0;
    char *copy = malloc(size); /* the messages as C strings, in place */
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    lt_chat_msg msgs[MAX_MSGS];
    size_t n = 0;
    for (char *p = copy; n < MAX_MSGS && p < copy + size - 1; p += strlen(p) + 1) {
        msgs[n].role = roles[(unsigned char)p[0] % 4];
        msgs[n].content = p[0] ? p + 1 : p;
        n++;
    }
    lt_chat_family fam = (lt_chat_family)(data[0] % 5);
    char err[LT_TOK_ERR_LEN];
    lt_chat_text t;
    memset(&t, 0, sizeof t);
    if (lt_chat_render(NULL, fam, msgs, n, data[0] & 0x80, &t, err, sizeof err) == LT_TOK_OK) {
        size_t prev = 0;
        for (size_t i = 0; i < t.n_assist; i++) {
            size_t a = t.assist[2 * i], b = t.assist[2 * i + 1];
            if (a < prev || b < a || b > t.n || strlen(t.text) != t.n)
                abort(); /* an assistant range outside the text or out of order */
            prev = b;
        }
        lt_chat_text_free(&t);
    }
    lt_chat_detect(copy); /* the first message's text as a Jinja template */
    free(copy);
    return 0;
}
