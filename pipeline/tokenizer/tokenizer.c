/*
 * tokenizer.c - reads tokenizer.json into an lt_tokenizer: the BPE model (vocab, merges in
 * both encodings, unk, byte fallback, ignore_merges), added tokens, the normalizer, the
 * pre-tokenizer and the decoder. Every shape it does not know is an error naming the field.
 * Encoding and decoding live in encode.c, tokenizer_config.json in tok_config.c.
 */
#include "tok_impl.h"
#include "unicode.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKEN_ID (1 << 24)

/* GPT-2's byte alphabet: byte -> code point, and back (code points below 0x144). */
static void byte_alphabet(uint32_t b2u[256], int16_t u2b[0x144])
{
    int n = 0;
    for (int i = 0; i < 0x144; i++)
        u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        b2u[b] = self ? (uint32_t)b : (uint32_t)(256 + n++);
        u2b[b2u[b]] = (int16_t)b;
    }
}

/* Copies s into buf (size n) with control characters escaped and a cut at ~100 chars, for
 * messages that quote a file's contents. */
static const char *quoted(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 8 < n; p++) {
        if (k > 100) {
            memcpy(buf + k, "...", 3);
            k += 3;
            break;
        }
        if (*p < 0x20 || *p == 0x7f)
            k += (size_t)snprintf(buf + k, n - k, "\\x%02x", *p);
        else
            buf[k++] = (char)*p;
    }
    buf[k] = '\0';
    return buf;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jbool(const cJSON *o, const char *key, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* Grows the per-id arrays to hold id. */
static int ensure_id(lt_tokenizer *t, int id)
{
    if (id < t->n_vocab)
        return 0;
    int n = id + 1;
    char **piece = realloc(t->piece, (size_t)n * sizeof *piece);
    if (!piece)
        return -1;
    t->piece = piece;
    char **raw = realloc(t->raw, (size_t)n * sizeof *raw);
    if (!raw)
        return -1;
    t->raw = raw;
    uint32_t *raw_len = realloc(t->raw_len, (size_t)n * sizeof *raw_len);
    if (!raw_len)
        return -1;
    t->raw_len = raw_len;
    uint8_t *flags = realloc(t->flags, (size_t)n);
    if (!flags)
        return -1;
    t->flags = flags;
    for (int i = t->n_vocab; i < n; i++) {
        t->piece[i] = t->raw[i] = NULL;
        t->raw_len[i] = 0;
        t->flags[i] = 0;
    }
    t->n_vocab = n;
    return 0;
}

/* Sets id's piece and raw bytes (byte-level pieces unmapped through the alphabet). */
static int set_token(lt_tokenizer *t, int id, const char *s, bool unmap, const int16_t *u2b)
{
    size_t n = strlen(s);
    if (ensure_id(t, id) < 0)
        return -1;
    free(t->piece[id]);
    free(t->raw[id]);
    t->raw[id] = NULL;
    t->piece[id] = strdup(s);
    if (!t->piece[id])
        return -1;
    char *raw = malloc(n + 1);
    if (!raw)
        return -1;
    size_t k = 0;
    bool ok = unmap;
    for (size_t i = 0; ok && i < n;) {
        int len;
        uint32_t cp = lt_utf8_next((const unsigned char *)s + i, n - i, &len);
        if (cp >= 0x144 || u2b[cp] < 0)
            ok = false;
        else
            raw[k++] = (char)u2b[cp];
        i += (size_t)len;
    }
    if (!ok) { /* not in the byte alphabet: the text itself */
        memcpy(raw, s, n);
        k = n;
    }
    raw[k] = '\0';
    t->raw[id] = raw;
    t->raw_len[id] = (uint32_t)k;
    return 0;
}

typedef struct load_ctx {
    lt_tokenizer *t;
    const char *name;
    char *err;
    size_t err_n;
    char q[160];
} load_ctx;

static lt_tok_status load_normalizer(load_ctx *c, const cJSON *n, int depth)
{
    lt_tokenizer *t = c->t;
    if (!n || cJSON_IsNull(n))
        return LT_TOK_OK;
    const char *type = jstr(n, "type");
    if (!cJSON_IsObject(n) || !type)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: normalizer: expected an object with a \"type\"", c->name);
    if (strcmp(type, "Sequence") == 0 && depth == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *e;
        if (!cJSON_IsArray(list))
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: normalizer.normalizers: expected an array", c->name);
        cJSON_ArrayForEach(e, list)
        {
            lt_tok_status s = load_normalizer(c, e, depth + 1);
            if (s)
                return s;
        }
        return LT_TOK_OK;
    }
    if (t->n_norms >= TOK_MAX_STAGES)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: normalizer: more than %d steps", c->name, TOK_MAX_STAGES);
    tok_norm *nm = &t->norms[t->n_norms];
    memset(nm, 0, sizeof *nm);
    if (strcmp(type, "NFC") == 0) {
        nm->kind = TOK_NORM_NFC;
    } else if (strcmp(type, "Prepend") == 0) {
        const char *p = jstr(n, "prepend");
        if (!p)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: normalizer Prepend: expected a string \"prepend\"", c->name);
        nm->kind = TOK_NORM_PREPEND;
        nm->a = strdup(p);
    } else if (strcmp(type, "Replace") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const char *from = jstr(pat, "String"), *to = jstr(n, "content");
        if (!from || !*from || !to)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                            "%s: normalizer Replace: only {\"pattern\": {\"String\": s}, "
                            "\"content\": s} is supported",
                            c->name);
        nm->kind = TOK_NORM_REPLACE;
        nm->a = strdup(from);
        nm->b = strdup(to);
    } else
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: normalizer type \"%s\" is not supported (NFC, Prepend, Replace, "
                        "Sequence are)",
                        c->name, quoted(type, c->q, sizeof c->q));
    t->n_norms++;
    if ((nm->kind == TOK_NORM_PREPEND && !nm->a) ||
        (nm->kind == TOK_NORM_REPLACE && (!nm->a || !nm->b)))
        return LT_TOK_ERR_NOMEM;
    return LT_TOK_OK;
}

static lt_tok_status add_stage(load_ctx *c, tok_stage st)
{
    if (c->t->n_stages >= TOK_MAX_STAGES)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: pre_tokenizer: more than %d steps", c->name, TOK_MAX_STAGES);
    c->t->stages[c->t->n_stages++] = st;
    return LT_TOK_OK;
}

/* Metaspace as a pre-tokenizer: its replacement and prepend become normalizer steps (it
 * must come first), its split a stage. */
static lt_tok_status load_metaspace(load_ctx *c, const cJSON *p)
{
    lt_tokenizer *t = c->t;
    const char *rep = jstr(p, "replacement");
    const char *scheme = jstr(p, "prepend_scheme");
    int prepend = jbool(p, "add_prefix_space", true) ? 2 : 0;
    if (t->n_stages > 0)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: pre_tokenizer Metaspace must come first", c->name);
    if (!rep || !*rep)
        rep = "\xe2\x96\x81";
    if (scheme)
        prepend = strcmp(scheme, "first") == 0 ? 1 : strcmp(scheme, "always") == 0 ? 2 : 0;
    if (t->n_norms + 2 > TOK_MAX_STAGES)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: too many normalizer steps", c->name);
    tok_norm *r = &t->norms[t->n_norms++];
    r->kind = TOK_NORM_REPLACE;
    r->a = strdup(" ");
    r->b = strdup(rep);
    if (prepend) {
        tok_norm *pp = &t->norms[t->n_norms++];
        pp->kind = TOK_NORM_PREPEND;
        pp->a = strdup(rep);
        /* b marks Metaspace's rule: only when not already starting with it; "1" = first */
        pp->b = strdup(prepend == 1 ? "first" : "always");
    }
    if (jbool(p, "split", true))
        return add_stage(c, (tok_stage){.kind = TOK_STAGE_METASPACE});
    return LT_TOK_OK;
}

static lt_tok_status load_pretok(load_ctx *c, const cJSON *p, int depth)
{
    lt_tokenizer *t = c->t;
    if (!p || cJSON_IsNull(p))
        return LT_TOK_OK;
    const char *type = jstr(p, "type");
    if (!cJSON_IsObject(p) || !type)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: pre_tokenizer: expected an object with a \"type\"", c->name);
    if (strcmp(type, "Sequence") == 0 && depth == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *e;
        if (!cJSON_IsArray(list))
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: pre_tokenizer.pretokenizers: expected an array", c->name);
        cJSON_ArrayForEach(e, list)
        {
            lt_tok_status s = load_pretok(c, e, depth + 1);
            if (s)
                return s;
        }
        return LT_TOK_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        t->byte_level = true;
        if (jbool(p, "add_prefix_space", false))
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer ByteLevel: add_prefix_space true is not supported",
                            c->name);
        if (jbool(p, "use_regex", true))
            return add_stage(c, (tok_stage){.kind = TOK_STAGE_SPLIT, .split = TOK_SPLIT_GPT2});
        return LT_TOK_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const char *re = jstr(pat, "Regex");
        const char *behavior = jstr(p, "behavior");
        if (!re)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer Split: expected \"pattern\": {\"Regex\": ...}",
                            c->name);
        tok_split k = tok_pretok_detect(re);
        if (!k)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer Split: unknown pattern \"%s\" (lathe knows the "
                            "GPT-2, Llama-3 and Qwen2 patterns)",
                            c->name, quoted(re, c->q, sizeof c->q));
        if ((behavior && strcmp(behavior, "Isolated") != 0) || jbool(p, "invert", false))
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer Split: only behavior \"Isolated\" without invert "
                            "is supported",
                            c->name);
        return add_stage(c, (tok_stage){.kind = TOK_STAGE_SPLIT, .split = k});
    }
    if (strcmp(type, "Digits") == 0)
        return add_stage(c, (tok_stage){.kind = TOK_STAGE_DIGITS,
                                        .individual_digits = jbool(p, "individual_digits", false)});
    if (strcmp(type, "Metaspace") == 0)
        return load_metaspace(c, p);
    return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                    "%s: pre_tokenizer type \"%s\" is not supported (ByteLevel, Split, Digits, "
                    "Metaspace, Sequence are)",
                    c->name, quoted(type, c->q, sizeof c->q));
}

static lt_tok_status load_decoder(load_ctx *c, const cJSON *d, int depth)
{
    lt_tokenizer *t = c->t;
    if (!d || cJSON_IsNull(d))
        return LT_TOK_OK;
    const char *type = jstr(d, "type");
    if (!cJSON_IsObject(d) || !type)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: decoder: expected an object with a \"type\"", c->name);
    if (strcmp(type, "Sequence") == 0 && depth == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders"), *e;
        if (!cJSON_IsArray(list))
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: decoder.decoders: expected an array", c->name);
        cJSON_ArrayForEach(e, list)
        {
            lt_tok_status s = load_decoder(c, e, depth + 1);
            if (s)
                return s;
        }
        return LT_TOK_OK;
    }
    if (strcmp(type, "ByteLevel") == 0)
        t->dec_byte_level = true;
    else if (strcmp(type, "ByteFallback") == 0)
        t->dec_byte_fallback = true;
    else if (strcmp(type, "Fuse") == 0)
        ;
    else if (strcmp(type, "Strip") == 0) {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(d, "start");
        const char *content = jstr(d, "content");
        if (content && strcmp(content, " ") != 0)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                            "%s: decoder Strip: only content \" \" is supported", c->name);
        t->dec_strip_start = cJSON_IsNumber(start) && start->valueint > 0 && start->valueint < 16
                                 ? start->valueint
                                 : 0;
    } else if (strcmp(type, "Replace") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(d, "pattern");
        const char *from = jstr(pat, "String"), *to = jstr(d, "content");
        if (!from || !*from || !to || t->dec_from)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                            "%s: decoder Replace: only one {\"pattern\": {\"String\": s}, "
                            "\"content\": s} is supported",
                            c->name);
        t->dec_from = strdup(from);
        t->dec_to = strdup(to);
        if (!t->dec_from || !t->dec_to)
            return LT_TOK_ERR_NOMEM;
    } else if (strcmp(type, "Metaspace") == 0) {
        t->dec_metaspace = true;
    } else
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: decoder type \"%s\" is not supported (ByteLevel, ByteFallback, "
                        "Fuse, Strip, Replace, Metaspace, Sequence are)",
                        c->name, quoted(type, c->q, sizeof c->q));
    return LT_TOK_OK;
}

/* One merge: "a b" or ["a", "b"]. */
static lt_tok_status load_merge(load_ctx *c, const cJSON *m, int rank, char **buf, size_t *cap)
{
    lt_tokenizer *t = c->t;
    const char *a, *b;
    size_t la, lb;
    char *tmp = NULL;
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp || sp == m->valuestring || !sp[1] || strchr(sp + 1, ' '))
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: model.merges[%d]: expected \"left right\" (two tokens and one "
                            "space), got \"%s\"",
                            c->name, rank, quoted(m->valuestring, c->q, sizeof c->q));
        a = m->valuestring, la = (size_t)(sp - a);
        b = sp + 1, lb = strlen(b);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
               cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
        a = cJSON_GetArrayItem(m, 0)->valuestring, la = strlen(a);
        b = cJSON_GetArrayItem(m, 1)->valuestring, lb = strlen(b);
    } else
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: model.merges[%d]: expected a string \"a b\" or a pair [\"a\", \"b\"]",
                        c->name, rank);
    if (la + lb + 1 > *cap) {
        *cap = (la + lb + 1) * 2;
        tmp = realloc(*buf, *cap);
        if (!tmp)
            return LT_TOK_ERR_NOMEM;
        *buf = tmp;
    }
    memcpy(*buf, a, la);
    int32_t ia = tok_map_get(&t->pieces, *buf, (uint32_t)la);
    memcpy(*buf, b, lb);
    int32_t ib = tok_map_get(&t->pieces, *buf, (uint32_t)lb);
    memcpy(*buf, a, la);
    memcpy(*buf + la, b, lb);
    int32_t im = tok_map_get(&t->pieces, *buf, (uint32_t)(la + lb));
    (*buf)[la + lb] = '\0';
    if (ia < 0 || ib < 0 || im < 0)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: model.merges[%d]: token \"%s\" is not in model.vocab", c->name, rank,
                        quoted(ia < 0 ? (memcpy(*buf, a, la), (*buf)[la] = 0, *buf)
                               : ib < 0 ? (memcpy(*buf, b, lb), (*buf)[lb] = 0, *buf)
                                        : *buf,
                               c->q, sizeof c->q));
    if (tok_pairs_put(&t->merges, ia, ib, rank, im) < 0)
        return LT_TOK_ERR_NOMEM;
    return LT_TOK_OK;
}

static lt_tok_status load_model(load_ctx *c, const cJSON *model)
{
    lt_tokenizer *t = c->t;
    uint32_t b2u[256];
    int16_t u2b[0x144];
    char *buf = NULL;
    size_t cap = 0;
    lt_tok_status s = LT_TOK_OK;
    const cJSON *e;

    byte_alphabet(b2u, u2b);
    if (!cJSON_IsObject(model))
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: \"model\": expected an object (the tokenizer model)", c->name);
    const char *type = jstr(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (type && strcmp(type, "BPE") != 0)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: model.type \"%s\" is not supported (only \"BPE\" is)", c->name,
                        quoted(type, c->q, sizeof c->q));
    if (!type && !merges)
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: model.type: missing (expected \"BPE\")", c->name);
    if (!cJSON_IsObject(vocab))
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: model.vocab: expected an object of token -> id", c->name);
    if (merges && !cJSON_IsArray(merges))
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: model.merges: expected an array", c->name);
    const char *prefix = jstr(model, "continuing_subword_prefix");
    const char *suffix = jstr(model, "end_of_word_suffix");
    if ((prefix && *prefix) || (suffix && *suffix))
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_UNSUPPORTED,
                        "%s: model.continuing_subword_prefix / end_of_word_suffix are not "
                        "supported",
                        c->name);
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->fuse_unk = jbool(model, "fuse_unk", false);
    t->ignore_merges = jbool(model, "ignore_merges", false);

    int n_vocab = cJSON_GetArraySize(vocab);
    if (tok_map_init(&t->model_vocab, (uint32_t)n_vocab + 16) < 0 ||
        tok_map_init(&t->pieces, (uint32_t)n_vocab + 16) < 0)
        return LT_TOK_ERR_NOMEM;
    cJSON_ArrayForEach(e, vocab)
    {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= MAX_TOKEN_ID ||
            e->valuedouble != (double)(int)e->valuedouble)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: model.vocab[\"%s\"]: expected an integer id from 0 to %d",
                            c->name, quoted(e->string ? e->string : "", c->q, sizeof c->q),
                            MAX_TOKEN_ID - 1);
        int id = e->valueint;
        if (t->piece && id < t->n_vocab && t->piece[id])
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: model.vocab[\"%s\"]: id %d is used twice", c->name,
                            quoted(e->string, c->q, sizeof c->q), id);
        if (set_token(t, id, e->string, t->byte_level, u2b) < 0)
            return LT_TOK_ERR_NOMEM;
    }
    for (int id = 0; id < t->n_vocab; id++) {
        if (!t->piece[id])
            continue;
        if (tok_map_put(&t->model_vocab, t->raw[id], t->raw_len[id], id) < 0 ||
            tok_map_put(&t->pieces, t->piece[id], (uint32_t)strlen(t->piece[id]), id) < 0)
            return LT_TOK_ERR_NOMEM;
    }
    const char *unk = jstr(model, "unk_token");
    if (unk) {
        t->unk_id = tok_map_get(&t->pieces, unk, (uint32_t)strlen(unk));
        if (t->unk_id < 0)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: model.unk_token \"%s\" is not in model.vocab", c->name,
                            quoted(unk, c->q, sizeof c->q));
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        if (t->byte_level) {
            char one = (char)b;
            t->byte_id[b] = tok_map_get(&t->model_vocab, &one, 1);
        } else {
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = tok_map_get(&t->pieces, name, 6);
            if (t->byte_id[b] >= 0)
                t->flags[t->byte_id[b]] |= TOK_F_BYTE;
        }
    }
    int n_merges = merges ? cJSON_GetArraySize(merges) : 0;
    if (tok_pairs_init(&t->merges, (uint32_t)n_merges + 16) < 0)
        return LT_TOK_ERR_NOMEM;
    int rank = 0;
    if (merges)
        cJSON_ArrayForEach(e, merges)
        {
            if ((s = load_merge(c, e, rank++, &buf, &cap)) != LT_TOK_OK)
                break;
        }
    free(buf);
    return s;
}

static int added_cmp(const void *pa, const void *pb)
{
    const tok_added *a = pa, *b = pb;
    unsigned char ca = (unsigned char)a->content[0], cb = (unsigned char)b->content[0];
    if (ca != cb)
        return ca < cb ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1; /* longest first */
    return a->id - b->id;
}

static lt_tok_status load_added(load_ctx *c, const cJSON *list)
{
    lt_tokenizer *t = c->t;
    const cJSON *e;
    int i = 0;
    int16_t u2b[0x144];
    uint32_t b2u[256];
    byte_alphabet(b2u, u2b);
    for (int b = 0; b < 256; b++)
        t->added_first[b] = -1;
    if (!list || cJSON_IsNull(list))
        return LT_TOK_OK;
    if (!cJSON_IsArray(list))
        return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                        "%s: added_tokens: expected an array", c->name);
    t->added = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof *t->added);
    if (!t->added)
        return LT_TOK_ERR_NOMEM;
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const char *content = jstr(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= MAX_TOKEN_ID ||
            !content || !*content)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: added_tokens[%d]: expected {\"id\": integer, \"content\": "
                            "non-empty string, ...}",
                            c->name, i);
        int tid = id->valueint;
        if (tid >= t->n_vocab || !t->piece[tid]) {
            if (set_token(t, tid, content, false, u2b) < 0)
                return LT_TOK_ERR_NOMEM;
            if (tok_map_put(&t->pieces, t->piece[tid], (uint32_t)strlen(content), tid) < 0)
                return LT_TOK_ERR_NOMEM;
        }
        tok_added *a = &t->added[t->n_added++];
        a->id = tid;
        a->content = t->piece[tid];
        if (strcmp(a->content, content) != 0)
            return tok_fail(c->err, c->err_n, LT_TOK_ERR_PARSE,
                            "%s: added_tokens[%d]: id %d is \"%s\" in model.vocab but the added "
                            "token's content differs",
                            c->name, i, tid, quoted(a->content, c->q, sizeof c->q));
        a->len = (uint32_t)strlen(content);
        a->special = jbool(e, "special", false);
        a->lstrip = jbool(e, "lstrip", false);
        a->rstrip = jbool(e, "rstrip", false);
        a->single_word = jbool(e, "single_word", false);
        t->flags[tid] |= TOK_F_ADDED | (a->special ? TOK_F_SPECIAL : 0);
        i++;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, added_cmp);
    for (int k = t->n_added - 1; k >= 0; k--)
        t->added_first[(unsigned char)t->added[k].content[0]] = k;
    return LT_TOK_OK;
}

/* TemplateProcessing (alone or in a Sequence): a SpecialToken first means bos is added, last
 * means eos is. */
static void load_post(lt_tokenizer *t, const cJSON *p)
{
    const char *type = jstr(p, "type");
    if (!type)
        return;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "processors")) load_post(t, e);
        return;
    }
    if (strcmp(type, "TemplateProcessing") != 0)
        return;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    int n = cJSON_GetArraySize(single);
    for (int k = 0; k < n; k += n - 1 > 0 ? n - 1 : 1) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, k),
                                                          "SpecialToken");
        const char *name = jstr(sp, "id");
        int32_t id = name ? tok_map_get(&t->pieces, name, (uint32_t)strlen(name)) : -1;
        if (id >= 0 && k == 0) {
            t->add_bos = true;
            t->bos_id = id;
        } else if (id >= 0) {
            t->add_eos = true;
            t->eos_id = id;
        }
        if (n == 1)
            break;
    }
}

static void describe(lt_tokenizer *t)
{
    size_t k = 0;
    const char *split = NULL;
    for (int i = 0; i < t->n_stages; i++)
        if (t->stages[i].kind == TOK_STAGE_SPLIT)
            split = tok_pretok_name(t->stages[i].split);
    if (t->byte_level)
        k += (size_t)snprintf(t->kind + k, sizeof t->kind - k, "byte-level BPE, %s%s",
                              split ? split : "no", " split");
    else
        k += (size_t)snprintf(t->kind + k, sizeof t->kind - k, "SentencePiece-style BPE%s",
                              t->byte_fallback ? " with byte fallback" : "");
    if (t->ignore_merges)
        k += (size_t)snprintf(t->kind + k, sizeof t->kind - k, ", ignore_merges");
    for (int i = 0; i < t->n_norms && k < sizeof t->kind; i++)
        if (t->norms[i].kind == TOK_NORM_NFC)
            k += (size_t)snprintf(t->kind + k, sizeof t->kind - k, ", NFC");
    for (int i = 0; i < t->n_stages && k < sizeof t->kind; i++)
        if (t->stages[i].kind == TOK_STAGE_DIGITS)
            k += (size_t)snprintf(t->kind + k, sizeof t->kind - k, ", digits split");
    if (k < sizeof t->kind)
        snprintf(t->kind + k, sizeof t->kind - k, ", %d tokens, %u merges", t->n_vocab,
                 t->merges.n);
}

lt_tok_status lt_tokenizer_load_json(const char *json, size_t n, const char *name,
                                     lt_tokenizer **out, char *err, size_t err_n)
{
    lt_tok_status s = LT_TOK_OK;
    cJSON *root = NULL;
    lt_tokenizer *t = calloc(1, sizeof *t);
    load_ctx c = {t, name ? name : "tokenizer.json", err, err_n, {0}};
    *out = NULL;
    if (!t)
        return LT_TOK_ERR_NOMEM;
    t->unk_id = t->bos_id = t->eos_id = t->pad_id = -1;
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = t->added_first[b] = -1;
    tok_cache_init(t);
    root = cJSON_ParseWithLength(json, n);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json && at <= json + n ? (long)(at - json) : -1;
        s = tok_fail(err, err_n, LT_TOK_ERR_PARSE,
                     "%s: not valid JSON (error near byte %ld of %zu; truncated?)", c.name, off, n);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        s = tok_fail(err, err_n, LT_TOK_ERR_PARSE, "%s: expected a JSON object at the top",
                     c.name);
        goto fail;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model) {
        s = tok_fail(err, err_n, LT_TOK_ERR_PARSE, "%s: missing \"model\" (the BPE model)",
                     c.name);
        goto fail;
    }
    if ((s = load_normalizer(&c, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), 0)) ||
        (s = load_pretok(&c, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), 0)) ||
        (s = load_decoder(&c, cJSON_GetObjectItemCaseSensitive(root, "decoder"), 0)))
        goto fail;
    if (t->dec_byte_level)
        t->byte_level = true;
    if ((s = load_model(&c, model)) ||
        (s = load_added(&c, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"))))
        goto fail;
    load_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
    if (t->n_vocab == 0) {
        s = tok_fail(err, err_n, LT_TOK_ERR_PARSE, "%s: model.vocab is empty", c.name);
        goto fail;
    }
    describe(t);
    cJSON_Delete(root);
    *out = t;
    return LT_TOK_OK;
fail:
    if (s == LT_TOK_ERR_NOMEM)
        tok_fail(err, err_n, s, "%s: out of memory", c.name);
    cJSON_Delete(root);
    lt_tokenizer_free(t);
    return s;
}

void lt_tokenizer_free(lt_tokenizer *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_vocab; i++) {
        free(t->piece[i]);
        free(t->raw[i]);
    }
    free(t->piece);
    free(t->raw);
    free(t->raw_len);
    free(t->flags);
    tok_map_free(&t->model_vocab);
    tok_map_free(&t->pieces);
    tok_pairs_free(&t->merges);
    for (int i = 0; i < t->n_norms; i++) {
        free(t->norms[i].a);
        free(t->norms[i].b);
    }
    free(t->dec_from);
    free(t->dec_to);
    free(t->added);
    free(t->chat_template);
    tok_cache_free(t);
    free(t);
}

const char *lt_tok_status_str(lt_tok_status s)
{
    switch (s) {
    case LT_TOK_OK: return "ok";
    case LT_TOK_ERR_IO: return "i/o error";
    case LT_TOK_ERR_PARSE: return "malformed file";
    case LT_TOK_ERR_UNSUPPORTED: return "unsupported";
    case LT_TOK_ERR_INVALID: return "invalid argument";
    case LT_TOK_ERR_TEMPLATE: return "chat template";
    case LT_TOK_ERR_NOMEM: return "out of memory";
    }
    return "unknown status";
}

const char *lt_tokenizer_kind(const lt_tokenizer *t) { return t->kind; }
int lt_tokenizer_n_vocab(const lt_tokenizer *t) { return t->n_vocab; }

const char *lt_tokenizer_piece(const lt_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab ? t->piece[id] : NULL;
}

int lt_tokenizer_piece_id(const lt_tokenizer *t, const char *piece)
{
    return tok_map_get(&t->pieces, piece, (uint32_t)strlen(piece));
}

bool lt_tokenizer_is_special(const lt_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab && (t->flags[id] & TOK_F_SPECIAL);
}

int lt_tokenizer_bos_id(const lt_tokenizer *t) { return t->bos_id; }
int lt_tokenizer_eos_id(const lt_tokenizer *t) { return t->eos_id; }
int lt_tokenizer_pad_id(const lt_tokenizer *t) { return t->pad_id; }
const char *lt_tokenizer_chat_template(const lt_tokenizer *t) { return t->chat_template; }
