/*
 * batch.c - encoding stored samples into training examples: the chat template with
 * assistant-only labels, raw text for pretraining, truncation (see batch.h).
 *
 * Never touches a device; never prints.
 */
#include "train/batch.h"

#include "data/sha256.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_examples_free(lt_examples *ex)
{
    if (!ex)
        return;
    free(ex->ids);
    free(ex->labels);
    free(ex->start);
    memset(ex, 0, sizeof(*ex));
}

static bool reserve(lt_examples *ex, int64_t n_tok)
{
    if (ex->n + 2 > ex->cap_ex) {
        int64_t cap = ex->cap_ex ? ex->cap_ex * 2 : 256;
        int64_t *s = realloc(ex->start, (size_t)cap * sizeof(int64_t));
        if (!s)
            return false;
        ex->start = s;
        ex->cap_ex = cap;
        if (ex->n == 0)
            ex->start[0] = 0;
    }
    if (ex->n_tok + n_tok > ex->cap_tok) {
        int64_t cap = ex->cap_tok ? ex->cap_tok : 4096;
        while (cap < ex->n_tok + n_tok)
            cap *= 2;
        int32_t *a = realloc(ex->ids, (size_t)cap * sizeof(int32_t));
        if (!a)
            return false;
        ex->ids = a;
        int32_t *b = realloc(ex->labels, (size_t)cap * sizeof(int32_t));
        if (!b)
            return false;
        ex->labels = b;
        ex->cap_tok = cap;
    }
    return true;
}

/* Appends tokens (mask NULL = every token counts) as one example, truncated to seq_len. */
static bool append_example(lt_examples *ex, const lt_tok_ids *t, bool all_count,
                           int64_t seq_len, char *err, size_t errlen)
{
    int64_t n = (int64_t)t->n;
    if (n > seq_len) {
        n = seq_len;
        ex->n_truncated++;
    }
    int64_t n_lab = 0;
    for (int64_t i = 0; i + 1 < n; i++)
        if (all_count || (t->mask && t->mask[i + 1]))
            n_lab++;
    if (n < 2 || n_lab == 0) {
        ex->n_skipped++;
        return true;
    }
    if (!reserve(ex, n)) {
        snprintf(err, errlen, "out of memory holding %lld tokens", (long long)(ex->n_tok + n));
        return false;
    }
    int32_t *ids = ex->ids + ex->n_tok, *lab = ex->labels + ex->n_tok;
    for (int64_t i = 0; i < n; i++) {
        ids[i] = t->ids[i];
        bool counts = i + 1 < n && (all_count || (t->mask && t->mask[i + 1]));
        lab[i] = counts ? t->ids[i + 1] : -100;
    }
    ex->n_tok += n;
    ex->n_labels += n_lab;
    ex->n++;
    ex->start[ex->n] = ex->n_tok;
    return true;
}

/* Turns of a sample as chat messages (system first). OUT *msgs malloc'd (caller frees);
 * strings point into root. */
static bool sample_msgs(const cJSON *root, lt_chat_msg **msgs, size_t *n, char *err,
                        size_t errlen)
{
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(root, "system");
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(root, "turns");
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(root, "chosen");
    if (!cJSON_IsArray(turns) || cJSON_GetArraySize(turns) == 0) {
        snprintf(err, errlen, "has no turns (a raw-text dataset needs \"objective\": "
                              "\"pretrain\")");
        return false;
    }
    size_t cap = (size_t)cJSON_GetArraySize(turns) + 2;
    *msgs = calloc(cap, sizeof(lt_chat_msg));
    if (!*msgs) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    *n = 0;
    if (cJSON_IsString(sys) && sys->valuestring[0])
        (*msgs)[(*n)++] = (lt_chat_msg){"system", sys->valuestring};
    for (const cJSON *t = turns->child; t; t = t->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(t, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(t, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content) ||
            (strcmp(role->valuestring, "user") != 0 &&
             strcmp(role->valuestring, "assistant") != 0 &&
             strcmp(role->valuestring, "system") != 0)) {
            snprintf(err, errlen, "has a turn that is not a user, assistant or system message");
            free(*msgs);
            *msgs = NULL;
            return false;
        }
        (*msgs)[(*n)++] = (lt_chat_msg){role->valuestring, content->valuestring};
    }
    /* preference pairs: supervised on the chosen answer */
    if (cJSON_IsString(chosen))
        (*msgs)[(*n)++] = (lt_chat_msg){"assistant", chosen->valuestring};
    return true;
}

bool lt_examples_add(lt_examples *ex, const lt_tokenizer *tok, const lt_encode_opts *o,
                     const char *sample_json, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(sample_json);
    lt_tok_ids t = {0};
    lt_chat_msg *msgs = NULL;
    bool ok = false;
    char terr[LT_TOK_ERR_LEN];
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "is not a JSON object");
        goto done;
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    if (o->pretrain && cJSON_IsString(text)) {
        if (lt_tokenizer_encode(tok, text->valuestring, strlen(text->valuestring),
                                LT_TOK_ADD_SPECIAL, &t, terr, sizeof(terr)) != LT_TOK_OK) {
            snprintf(err, errlen, "could not be tokenized: %s", terr);
            goto done;
        }
        if (o->eos_id >= 0 && (t.n == 0 || t.ids[t.n - 1] != o->eos_id)) {
            /* only ids are used from here on: grow them alone, dropping offsets and mask */
            int32_t *ids = realloc(t.ids, (t.n + 1) * sizeof(int32_t));
            if (!ids) {
                snprintf(err, errlen, "out of memory");
                goto done;
            }
            t.ids = ids;
            t.cap = t.n + 1;
            free(t.offsets);
            free(t.mask);
            t.offsets = NULL;
            t.mask = NULL;
            t.ids[t.n++] = o->eos_id;
        }
        ok = append_example(ex, &t, true, o->seq_len, err, errlen);
        goto done;
    }
    if (o->pretrain && !cJSON_GetObjectItemCaseSensitive(root, "turns")) {
        snprintf(err, errlen, "has no \"text\" field for pretraining");
        goto done;
    }
    size_t n_msgs = 0;
    if (!sample_msgs(root, &msgs, &n_msgs, err, errlen))
        goto done;
    if (lt_tokenizer_encode_chat(tok, o->family, msgs, n_msgs, false, &t, terr, sizeof(terr)) !=
        LT_TOK_OK) {
        snprintf(err, errlen, "could not be rendered with the chat template: %s", terr);
        goto done;
    }
    ok = append_example(ex, &t, o->pretrain || o->train_on_prompt, o->seq_len, err, errlen);
done:
    free(msgs);
    lt_tok_ids_free(&t);
    cJSON_Delete(root);
    return ok;
}

bool lt_examples_load(lt_store *st, int64_t version_id, const char *split,
                      const lt_tokenizer *tok, const lt_encode_opts *o, lt_examples *ex,
                      char *hash_hex, char *err, size_t errlen)
{
    lt_store_iter *it = NULL;
    lt_sha256 h;
    lt_sha256_init(&h);
    memset(ex, 0, sizeof(*ex));
    if (lt_store_samples_iter(st, version_id, split, &it) != LT_STORE_OK) {
        snprintf(err, errlen, "cannot read the dataset's samples: %s", lt_store_errmsg(st));
        return false;
    }
    lt_store_sample s;
    lt_store_status rc;
    bool ok = true;
    while ((rc = lt_store_samples_next(it, &s)) == LT_STORE_OK) {
        char e[400];
        if (!lt_examples_add(ex, tok, o, s.data, e, sizeof(e))) {
            snprintf(err, errlen, "sample at row %lld %s", (long long)s.row, e);
            ok = false;
            break;
        }
        if (s.text_hash)
            lt_sha256_update(&h, s.text_hash, strlen(s.text_hash));
    }
    if (ok && rc != LT_STORE_DONE) {
        snprintf(err, errlen, "reading samples failed: %s", lt_store_errmsg(st));
        ok = false;
    }
    lt_store_iter_free(it);
    uint8_t d[32];
    char hex[65];
    lt_sha256_final(&h, d, hex);
    if (hash_hex)
        memcpy(hash_hex, hex, 65);
    if (!ok)
        lt_examples_free(ex);
    return ok;
}
