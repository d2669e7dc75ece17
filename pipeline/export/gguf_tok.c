/*
 * gguf_tok.c - a Hugging Face tokenizer as GGUF tokenizer.ggml.* metadata, and back.
 *
 * Export reads tokenizer.json for what the tokenizer module keeps private (merges, the added
 * tokens' special flags, the pre-tokenizer) and asks the loaded tokenizer for pieces, special
 * ids and whether bos is added. Import rebuilds a tokenizer.json that lathe's tokenizer loads
 * for byte-level BPE vocabularies ("gpt2" model); it never guesses a SentencePiece one.
 */
#include "export/export_impl.h"
#include "export/gguf_impl.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lt_model_status gguf_fail(lt_model_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* GGUF token types */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* The same regexes as the tokenizer module recognises (REFERENCE.md). */
static const char RX_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RX_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Walks a pre_tokenizer description: byte-level or not, and llama.cpp's name for it. */
static void pre_name(const cJSON *pre, bool *byte_level, const char **name)
{
    bool digits = false, split_known = false;
    *byte_level = false;
    *name = "default";
    if (!cJSON_IsObject(pre))
        return;
    const cJSON *list = cJSON_GetObjectItem(pre, "pretokenizers");
    const cJSON *one = pre;
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 1;
    bool bl_regex = false;
    for (int i = 0; i < n; i++) {
        if (cJSON_IsArray(list))
            one = cJSON_GetArrayItem(list, i);
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(one, "type"));
        if (!type)
            continue;
        if (!strcmp(type, "ByteLevel")) {
            *byte_level = true;
            const cJSON *ur = cJSON_GetObjectItem(one, "use_regex");
            bl_regex = !ur || cJSON_IsTrue(ur);
        } else if (!strcmp(type, "Digits")) {
            digits = cJSON_IsTrue(cJSON_GetObjectItem(one, "individual_digits"));
        } else if (!strcmp(type, "Split")) {
            const char *rx =
                cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(one, "pattern"), "Regex"));
            if (rx && !strcmp(rx, RX_LLAMA3)) {
                *name = "llama-bpe";
                split_known = true;
            } else if (rx && !strcmp(rx, RX_QWEN2)) {
                *name = "qwen2";
                split_known = true;
            }
        }
    }
    if (!split_known && *byte_level && bl_regex)
        *name = digits ? "smollm" : "gpt-2";
}

static const char *chat_end_piece(lt_chat_family f)
{
    switch (f) {
    case LT_CHAT_CHATML: return "<|im_end|>";
    case LT_CHAT_LLAMA3: return "<|eot_id|>";
    default: return NULL;
    }
}

lt_model_status gguf_tok_write(lt_gguf_writer *w, const char *src_dir, int64_t n_vocab,
                               const lt_model_config *cfg, lt_gguf_export_info *info, char *err,
                               size_t errlen)
{
    lt_model_status st = LT_MODEL_OK;
    lt_tokenizer *tok = NULL;
    cJSON *root = NULL;
    char *json = NULL, **tokens = NULL, **merges = NULL;
    int32_t *types = NULL;
    float *scores = NULL;
    int n_merges = 0;
    char e[LT_TOK_ERR_LEN], path[4200];
    if (lt_tokenizer_load_dir(src_dir, &tok, e, sizeof(e)) != LT_TOK_OK)
        return gguf_fail(LT_MODEL_ERR_IO, err, errlen,
                         "GGUF needs the model's tokenizer (tokenizer.json in %s): %s", src_dir, e);
    snprintf(path, sizeof(path), "%s/tokenizer.json", src_dir);
    size_t len;
    if (!(json = lt_export_read_file(path, &len)) || !(root = cJSON_ParseWithLength(json, len))) {
        st = gguf_fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: cannot read it as JSON", path);
        goto out;
    }
    const cJSON *model = cJSON_GetObjectItem(root, "model");
    const char *mtype = cJSON_GetStringValue(cJSON_GetObjectItem(model, "type"));
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        st = gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                       "%s: model.type \"%s\": GGUF export handles BPE tokenizers only", path,
                       mtype ? mtype : "?");
        goto out;
    }
    bool byte_level, byte_fallback = cJSON_IsTrue(cJSON_GetObjectItem(model, "byte_fallback"));
    const char *pre;
    pre_name(cJSON_GetObjectItem(root, "pre_tokenizer"), &byte_level, &pre);
    if (!byte_level && !byte_fallback) {
        st = gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                       "%s: neither byte-level BPE nor BPE with byte_fallback; llama.cpp's "
                       "tokenizers cannot express it", path);
        goto out;
    }
    const char *tmodel = byte_level ? "gpt2" : "llama";
    if (!byte_level)
        pre = "default";
    int nt = lt_tokenizer_n_vocab(tok);
    if (nt > n_vocab) {
        st = gguf_fail(LT_MODEL_ERR_TENSOR, err, errlen,
                       "%s: %d tokens but the model's embedding has only %lld rows", path, nt,
                       (long long)n_vocab);
        goto out;
    }
    tokens = calloc((size_t)n_vocab, sizeof(char *));
    types = calloc((size_t)n_vocab, sizeof(int32_t));
    scores = calloc((size_t)n_vocab, sizeof(float));
    if (!tokens || !types || !scores) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n_vocab; i++) {
        const char *p = i < nt ? lt_tokenizer_piece(tok, (int)i) : NULL;
        char pad[32];
        snprintf(pad, sizeof(pad), "[PAD%lld]", (long long)i);
        if (!(tokens[i] = strdup(p ? p : pad))) {
            st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
            goto out;
        }
        types[i] = !p ? TT_UNUSED : TT_NORMAL;
        if (p && !byte_level && strlen(p) == 6 && !strncmp(p, "<0x", 3) && p[5] == '>')
            types[i] = TT_BYTE;
    }
    const cJSON *added = cJSON_GetObjectItem(root, "added_tokens"), *a;
    cJSON_ArrayForEach(a, added)
    {
        double id = cJSON_GetNumberValue(cJSON_GetObjectItem(a, "id"));
        if (id >= 0 && id < (double)n_vocab)
            types[(int64_t)id] =
                cJSON_IsTrue(cJSON_GetObjectItem(a, "special")) ? TT_CONTROL : TT_USER;
    }
    const char *unk = cJSON_GetStringValue(cJSON_GetObjectItem(model, "unk_token"));
    int unk_id = unk ? lt_tokenizer_piece_id(tok, unk) : -1;
    if (unk_id >= 0)
        types[unk_id] = TT_UNKNOWN;
    /* merges as "a b"; for SentencePiece-style vocabularies each merge's result gets the
     * score -rank, so llama.cpp's score-ordered merging follows the same order */
    const cJSON *mj = cJSON_GetObjectItem(model, "merges"), *m;
    int nm = cJSON_GetArraySize(mj);
    if (!(merges = calloc((size_t)nm + 1, sizeof(char *)))) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(m, mj)
    {
        const char *x = NULL, *y = NULL;
        char *s = NULL;
        if (cJSON_IsString(m)) {
            s = strdup(m->valuestring);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2) {
            x = cJSON_GetStringValue(cJSON_GetArrayItem(m, 0));
            y = cJSON_GetStringValue(cJSON_GetArrayItem(m, 1));
            if (x && y && (s = malloc(strlen(x) + strlen(y) + 2)))
                sprintf(s, "%s %s", x, y);
        }
        if (!s) {
            st = gguf_fail(LT_MODEL_ERR_FORMAT, err, errlen, "%s: model.merges[%d] is not a pair",
                           path, n_merges);
            goto out;
        }
        merges[n_merges] = s;
        if (!byte_level) {
            char *sp = strchr(s, ' ');
            if (sp) {
                *sp = 0;
                size_t la = strlen(s), lb = strlen(sp + 1);
                char *joined = malloc(la + lb + 1);
                if (joined) {
                    memcpy(joined, s, la);
                    memcpy(joined + la, sp + 1, lb + 1);
                    int id = lt_tokenizer_piece_id(tok, joined);
                    if (id >= 0 && scores[id] == 0.0f)
                        scores[id] = -(float)(n_merges + 1);
                    free(joined);
                }
                *sp = ' ';
            }
        }
        n_merges++;
    }
    int32_t bos = lt_tokenizer_bos_id(tok), eos = lt_tokenizer_eos_id(tok);
    /* the config's ids only when they name a real token */
    if (eos < 0 && cfg->n_eos > 0 && lt_tokenizer_piece(tok, cfg->eos_ids[0]))
        eos = cfg->eos_ids[0];
    if (bos < 0 && cfg->bos_id >= 0 && lt_tokenizer_piece(tok, cfg->bos_id))
        bos = cfg->bos_id;
    /* add_bos / add_eos: what encoding with special tokens actually does */
    bool add_bos = false, add_eos = false;
    lt_tok_ids ids = {0};
    if (lt_tokenizer_encode(tok, "a", 1, LT_TOK_ADD_SPECIAL, &ids, e, sizeof(e)) == LT_TOK_OK &&
        ids.n > 0) {
        add_bos = bos >= 0 && ids.ids[0] == bos;
        add_eos = eos >= 0 && ids.n > 1 && ids.ids[ids.n - 1] == eos;
    }
    lt_tok_ids_free(&ids);
    const char *tmpl = lt_tokenizer_chat_template(tok);
    lt_chat_family fam = tmpl ? lt_chat_detect(tmpl) : LT_CHAT_NONE;
    const char *endp = chat_end_piece(fam);
    int32_t eot = endp ? lt_tokenizer_piece_id(tok, endp) : -1;
    if (eot < 0 && fam != LT_CHAT_NONE)
        eot = eos;
    bool ok = lt_gguf_set_str(w, "tokenizer.ggml.model", tmodel) &&
              lt_gguf_set_str(w, "tokenizer.ggml.pre", pre) &&
              lt_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens,
                                  (size_t)n_vocab) &&
              lt_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)n_vocab);
    if (ok && byte_level)
        ok = lt_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges,
                                 (size_t)n_merges);
    if (ok && !byte_level)
        ok = lt_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, (size_t)n_vocab);
    if (ok && bos >= 0)
        ok = lt_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (ok && eos >= 0)
        ok = lt_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (ok && eot >= 0)
        ok = lt_gguf_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)eot);
    if (ok && unk_id >= 0)
        ok = lt_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk_id);
    if (ok && lt_tokenizer_pad_id(tok) >= 0)
        ok = lt_gguf_set_u32(w, "tokenizer.ggml.padding_token_id",
                             (uint32_t)lt_tokenizer_pad_id(tok));
    ok = ok && lt_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos) &&
         lt_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", add_eos);
    if (ok && tmpl)
        ok = lt_gguf_set_str(w, "tokenizer.chat_template", tmpl);
    if (!ok) {
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory (tokenizer keys)");
        goto out;
    }
    if (info) {
        snprintf(info->tok_model, sizeof(info->tok_model), "%s", tmodel);
        snprintf(info->tok_pre, sizeof(info->tok_pre), "%s", pre);
        snprintf(info->chat, sizeof(info->chat), "%s", lt_chat_family_name(fam));
        info->bos_id = bos;
        info->eos_id = eos;
        info->eot_id = eot;
        if (byte_level && !strcmp(pre, "default"))
            snprintf(info->note, sizeof(info->note),
                     "pre-tokenizer of %.160s not recognised; written as \"default\"", path);
    }
out:
    if (tokens)
        for (int64_t i = 0; i < n_vocab; i++)
            free(tokens[i]);
    free(tokens);
    if (merges)
        for (int i = 0; i < n_merges; i++)
            free(merges[i]);
    free(merges);
    free(types);
    free(scores);
    cJSON_Delete(root);
    free(json);
    lt_tokenizer_free(tok);
    return st;
}

/* ---- back to tokenizer.json ------------------------------------------------------------ */

static cJSON *pre_json(const char *pre)
{
    const char *rx = !strcmp(pre, "llama-bpe") ? RX_LLAMA3 : !strcmp(pre, "qwen2") ? RX_QWEN2 : NULL;
    cJSON *o = cJSON_CreateObject(), *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddFalseToObject(bl, "add_prefix_space");
    cJSON_AddTrueToObject(bl, "trim_offsets");
    if (!rx && strcmp(pre, "smollm") != 0) {
        cJSON_AddTrueToObject(bl, "use_regex");
        cJSON_Delete(o);
        return bl;
    }
    cJSON_AddStringToObject(o, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(o, "pretokenizers");
    cJSON *first = cJSON_CreateObject();
    if (rx) {
        cJSON_AddStringToObject(first, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(first, "pattern"), "Regex", rx);
        cJSON_AddStringToObject(first, "behavior", "Isolated");
        cJSON_AddFalseToObject(first, "invert");
        cJSON_AddFalseToObject(bl, "use_regex");
    } else {
        cJSON_AddStringToObject(first, "type", "Digits");
        cJSON_AddTrueToObject(first, "individual_digits");
        cJSON_AddTrueToObject(bl, "use_regex");
    }
    cJSON_AddItemToArray(list, first);
    cJSON_AddItemToArray(list, bl);
    return o;
}

static const char *token_at(const lt_gguf_kv *toks, int64_t id)
{
    return id >= 0 && (uint64_t)id < toks->n ? toks->strs[id] : NULL;
}

lt_model_status gguf_tok_json(const lt_gguf_file *f, char **tok_json, char **cfg_json, char *err,
                              size_t errlen)
{
    *tok_json = *cfg_json = NULL;
    const char *model = lt_gguf_get_str(f, "tokenizer.ggml.model");
    const char *pre = lt_gguf_get_str(f, "tokenizer.ggml.pre");
    const lt_gguf_kv *toks = lt_gguf_find_kv(f, "tokenizer.ggml.tokens");
    const lt_gguf_kv *tt = lt_gguf_find_kv(f, "tokenizer.ggml.token_type");
    const lt_gguf_kv *mg = lt_gguf_find_kv(f, "tokenizer.ggml.merges");
    if (!model || strcmp(model, "gpt2") != 0 || !toks || toks->arr_type != LT_GGUF_STRING ||
        !mg || mg->arr_type != LT_GGUF_STRING)
        return gguf_fail(LT_MODEL_ERR_UNSUPPORTED, err, errlen,
                         "tokenizer.ggml.model \"%s\": only byte-level BPE (\"gpt2\") "
                         "vocabularies are rebuilt from GGUF metadata",
                         model ? model : "(absent)");
    if (tt && (tt->arr_type == LT_GGUF_STRING || tt->n != toks->n))
        return gguf_fail(LT_MODEL_ERR_FORMAT, err, errlen,
                         "tokenizer.ggml.token_type: %llu integers expected (one per token)",
                         (unsigned long long)toks->n);
    lt_model_status st = LT_MODEL_OK;
    cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (uint64_t i = 0; i < toks->n; i++) {
        int64_t t = tt ? lt_gguf_arr_int(tt, i) : TT_NORMAL;
        if (t != TT_CONTROL && t != TT_USER)
            continue;
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", (double)i);
        cJSON_AddStringToObject(a, "content", toks->strs[i]);
        cJSON_AddBoolToObject(a, "single_word", false);
        cJSON_AddBoolToObject(a, "lstrip", false);
        cJSON_AddBoolToObject(a, "rstrip", false);
        cJSON_AddBoolToObject(a, "normalized", t == TT_USER);
        cJSON_AddBoolToObject(a, "special", t == TT_CONTROL);
        cJSON_AddItemToArray(added, a);
    }
    if (pre && !strcmp(pre, "qwen2"))
        cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "normalizer"), "type", "NFC");
    else
        cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", pre_json(pre ? pre : "gpt-2"));
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "decoder"), "type", "ByteLevel");
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "type", "BPE");
    cJSON_AddNullToObject(m, "dropout");
    cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddBoolToObject(m, "fuse_unk", false);
    cJSON_AddBoolToObject(m, "byte_fallback", false);
    cJSON_AddBoolToObject(m, "ignore_merges", pre && !strcmp(pre, "llama-bpe"));
    cJSON *vocab = cJSON_AddObjectToObject(m, "vocab");
    for (uint64_t i = 0; i < toks->n; i++) {
        int64_t t = tt ? lt_gguf_arr_int(tt, i) : TT_NORMAL;
        if (t == TT_UNUSED || t == TT_CONTROL || t == TT_USER ||
            cJSON_GetObjectItemCaseSensitive(vocab, toks->strs[i]))
            continue;
        cJSON_AddNumberToObject(vocab, toks->strs[i], (double)i);
    }
    cJSON *merges = cJSON_AddArrayToObject(m, "merges");
    for (uint64_t i = 0; i < mg->n; i++)
        cJSON_AddItemToArray(merges, cJSON_CreateString(mg->strs[i]));
    int64_t id;
    bool b;
    const char *names[3] = {"bos_token", "eos_token", "pad_token"};
    const char *keys[3] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                           "tokenizer.ggml.padding_token_id"};
    for (int k = 0; k < 3; k++)
        if (lt_gguf_get_int(f, keys[k], &id) && token_at(toks, id))
            cJSON_AddStringToObject(cfg, names[k], token_at(toks, id));
    cJSON_AddBoolToObject(cfg, "add_bos_token",
                          lt_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) && b);
    cJSON_AddBoolToObject(cfg, "add_eos_token",
                          lt_gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b) && b);
    const char *tmpl = lt_gguf_get_str(f, "tokenizer.chat_template");
    if (tmpl)
        cJSON_AddStringToObject(cfg, "chat_template", tmpl);
    *tok_json = cJSON_PrintUnformatted(root);
    *cfg_json = cJSON_Print(cfg);
    if (!*tok_json || !*cfg_json) {
        free(*tok_json);
        free(*cfg_json);
        *tok_json = *cfg_json = NULL;
        st = gguf_fail(LT_MODEL_ERR_OOM, err, errlen, "out of memory");
    }
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return st;
}

lt_model_status gguf_tok_to_hf(const lt_gguf_file *f, const char *out_dir, char *err, size_t errlen)
{
    char *tok = NULL, *cfg = NULL, path[4200];
    lt_model_status st = gguf_tok_json(f, &tok, &cfg, err, errlen);
    if (st)
        return st;
    snprintf(path, sizeof(path), "%s/tokenizer.json", out_dir);
    st = lt_export_write_file(path, tok, strlen(tok), err, errlen);
    snprintf(path, sizeof(path), "%s/tokenizer_config.json", out_dir);
    if (!st)
        st = lt_export_write_file(path, cfg, strlen(cfg), err, errlen);
    free(tok);
    free(cfg);
    return st;
}
