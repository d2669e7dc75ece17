/*
 * tok_config.c - a model folder's tokenizer files: tokenizer.json (required),
 * tokenizer_config.json (bos/eos/pad/unk as strings or AddedToken objects, add_bos_token,
 * add_eos_token, chat_template as a string or a list of named templates) and
 * chat_template.jinja. Reading only; never writes.
 */
#include "tok_impl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES ((size_t)1 << 30)

/* Reads a whole file; *out is malloc'd and NUL-terminated. Returns 0, or errno. */
static int read_file(const char *path, char **out, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int e = 0;
    *out = NULL;
    if (!f)
        return errno ? errno : EIO;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            if (cap > MAX_FILE_BYTES) {
                e = EFBIG;
                goto done;
            }
            size_t ncap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                e = ENOMEM;
                goto done;
            }
            buf = nb, cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) {
            if (ferror(f))
                e = EIO;
            break;
        }
    }
done:
    fclose(f);
    if (e) {
        free(buf);
        return e;
    }
    buf[len] = '\0';
    *out = buf;
    *n = len;
    return 0;
}

/* A special token given as "text" or {"content": "text", ...}; NULL when absent or null. */
static const char *token_text(const cJSON *v)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static lt_tok_status special(lt_tokenizer *t, const cJSON *root, const char *key, int32_t *id,
                             const char *name, char *err, size_t err_n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return LT_TOK_OK;
    const char *s = token_text(v);
    if (!s)
        return tok_fail(err, err_n, LT_TOK_ERR_PARSE,
                        "%s: %s: expected a string or {\"content\": string}", name, key);
    int32_t k = tok_map_get(&t->pieces, s, (uint32_t)strlen(s));
    if (k < 0)
        return tok_fail(err, err_n, LT_TOK_ERR_PARSE,
                        "%s: %s \"%.60s\" is not a token of tokenizer.json", name, key, s);
    *id = k;
    return LT_TOK_OK;
}

lt_tok_status lt_tokenizer_apply_config(lt_tokenizer *t, const char *json, size_t n,
                                        const char *name, char *err, size_t err_n)
{
    lt_tok_status s = LT_TOK_OK;
    int32_t unk = t->unk_id;
    cJSON *root = cJSON_ParseWithLength(json, n);
    if (!name)
        name = "tokenizer_config.json";
    if (!root || !cJSON_IsObject(root)) {
        s = tok_fail(err, err_n, LT_TOK_ERR_PARSE, "%s: expected a JSON object%s", name,
                     root ? "" : " (not valid JSON; truncated?)");
        goto done;
    }
    if ((s = special(t, root, "bos_token", &t->bos_id, name, err, err_n)) ||
        (s = special(t, root, "eos_token", &t->eos_id, name, err, err_n)) ||
        (s = special(t, root, "pad_token", &t->pad_id, name, err, err_n)) ||
        (s = special(t, root, "unk_token", &unk, name, err, err_n)))
        goto done;
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(root, "add_bos_token");
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(root, "add_eos_token");
    if (cJSON_IsBool(ab))
        t->add_bos = cJSON_IsTrue(ab);
    if (cJSON_IsBool(ae))
        t->add_eos = cJSON_IsTrue(ae);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    const char *tmpl = NULL;
    if (cJSON_IsString(ct))
        tmpl = ct->valuestring;
    else if (cJSON_IsArray(ct)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, ct)
        {
            const char *nm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
            const char *tx = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "template"));
            if (!tx) {
                s = tok_fail(err, err_n, LT_TOK_ERR_PARSE,
                             "%s: chat_template: expected a list of {\"name\", \"template\"}",
                             name);
                goto done;
            }
            if (!tmpl || (nm && strcmp(nm, "default") == 0))
                tmpl = tx;
        }
    } else if (ct && !cJSON_IsNull(ct)) {
        s = tok_fail(err, err_n, LT_TOK_ERR_PARSE,
                     "%s: chat_template: expected a string or a list of named templates", name);
        goto done;
    }
    if (tmpl) {
        char *copy = strdup(tmpl);
        if (!copy) {
            s = LT_TOK_ERR_NOMEM;
            goto done;
        }
        free(t->chat_template);
        t->chat_template = copy;
    }
done:
    cJSON_Delete(root);
    return s;
}

lt_tok_status lt_tokenizer_load_dir(const char *dir, lt_tokenizer **out, char *err, size_t err_n)
{
    char path[4096];
    char *buf = NULL;
    size_t n = 0;
    lt_tokenizer *t = NULL;
    lt_tok_status s;
    int e;
    *out = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if ((e = read_file(path, &buf, &n)) != 0)
        return tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    s = lt_tokenizer_load_json(buf, n, path, &t, err, err_n);
    free(buf);
    buf = NULL;
    if (s)
        return s;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    e = read_file(path, &buf, &n);
    if (e && e != ENOENT) {
        s = tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: cannot read: %s", path, strerror(e));
        goto fail;
    }
    if (!e && (s = lt_tokenizer_apply_config(t, buf, n, path, err, err_n)) != LT_TOK_OK)
        goto fail;
    free(buf);
    buf = NULL;
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    e = read_file(path, &buf, &n);
    if (e && e != ENOENT) {
        s = tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: cannot read: %s", path, strerror(e));
        goto fail;
    }
    if (!e) {
        free(t->chat_template);
        t->chat_template = buf;
        buf = NULL;
    }
    *out = t;
    return LT_TOK_OK;
fail:
    free(buf);
    lt_tokenizer_free(t);
    return s;
}
