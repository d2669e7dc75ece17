/*
 * tok_impl.h - internal to pipeline/tokenizer: the tokenizer's layout, shared by the loader
 * (tokenizer.c), the pre-tokenizers (pretok.c), the BPE core (bpe.c), encode/decode
 * (encode.c), the config reader (tok_config.c) and the chat templates. Never include it
 * from outside this folder.
 */
#ifndef LATHE_TOK_IMPL_H
#define LATHE_TOK_IMPL_H

#include "tokenizer.h"

#include <pthread.h>
#include <stdarg.h>

/* ---- string -> int32 hash table over (pointer, length) keys the caller keeps alive ---- */
typedef struct tok_slot {
    const char *s;
    uint32_t len;
    int32_t val; /* -1: empty */
} tok_slot;

typedef struct tok_map {
    tok_slot *slots;
    uint32_t cap, n; /* cap a power of two */
} tok_map;

uint64_t tok_hash_bytes(const void *p, size_t n);
int tok_map_init(tok_map *m, uint32_t expected);
void tok_map_free(tok_map *m);
/* Inserts or replaces; returns 0, or -1 when out of memory. */
int tok_map_put(tok_map *m, const char *s, uint32_t len, int32_t val);
int32_t tok_map_get(const tok_map *m, const char *s, uint32_t len); /* -1 if absent */

/* ---- merge pairs (id_a, id_b) -> (rank, merged id) ---- */
typedef struct tok_pair_slot {
    uint64_t key; /* (a << 32 | b) + 1; 0 = empty */
    int32_t rank, id;
} tok_pair_slot;

typedef struct tok_pairs {
    tok_pair_slot *slots;
    uint32_t cap, n;
} tok_pairs;

int tok_pairs_init(tok_pairs *p, uint32_t expected);
void tok_pairs_free(tok_pairs *p);
int tok_pairs_put(tok_pairs *p, int32_t a, int32_t b, int32_t rank, int32_t id);
const tok_pair_slot *tok_pairs_get(const tok_pairs *p, int32_t a, int32_t b);

/* ---- pre-tokenizer, normalizer and decoder descriptions ---- */
typedef enum tok_split {
    TOK_SPLIT_GPT2 = 1,
    TOK_SPLIT_LLAMA3,
    TOK_SPLIT_QWEN2,
} tok_split;

typedef enum tok_stage_kind {
    TOK_STAGE_SPLIT,     /* regex split (Isolated) of one of the known patterns */
    TOK_STAGE_DIGITS,    /* Digits pre-tokenizer */
    TOK_STAGE_METASPACE, /* replace ' ' by U+2581, maybe prepend one, maybe split */
} tok_stage_kind;

typedef struct tok_stage {
    tok_stage_kind kind;
    tok_split split;
    bool individual_digits;
    int prepend; /* metaspace: 0 never, 1 first, 2 always */
    bool ms_split;
} tok_stage;

typedef enum tok_norm_kind { TOK_NORM_NFC, TOK_NORM_PREPEND, TOK_NORM_REPLACE } tok_norm_kind;

typedef struct tok_norm {
    tok_norm_kind kind;
    char *a, *b; /* prepend: a; replace: a -> b */
} tok_norm;

#define TOK_MAX_STAGES 8

typedef struct tok_added {
    int32_t id;
    char *content;
    uint32_t len;
    bool special, lstrip, rstrip, single_word;
} tok_added;

enum { TOK_F_ADDED = 1, TOK_F_SPECIAL = 2, TOK_F_BYTE = 4 };

typedef struct tok_cache_entry {
    uint32_t off, n; /* ids in cache_ids */
} tok_cache_entry;

struct lt_tokenizer {
    char kind[160];
    int n_vocab;           /* max id + 1 */
    char **piece;          /* [n_vocab] the token as written in the JSON, or NULL */
    char **raw;            /* [n_vocab] the bytes it decodes to (byte-level: unmapped) */
    uint32_t *raw_len;     /* [n_vocab] */
    uint8_t *flags;        /* [n_vocab] TOK_F_* */
    tok_map model_vocab;   /* raw bytes -> id, model vocab only (keys point into raw) */
    tok_map pieces;        /* piece -> id, vocab and added (keys point into piece) */
    tok_pairs merges;
    bool byte_level;       /* symbols start as bytes; vocab keys use the byte alphabet */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;
    int32_t byte_id[256];  /* byte-level: the token of each byte; byte fallback: <0xNN> */

    tok_norm norms[TOK_MAX_STAGES];
    int n_norms;
    tok_stage stages[TOK_MAX_STAGES];
    int n_stages;

    /* decoder */
    bool dec_byte_level, dec_byte_fallback, dec_metaspace;
    int dec_strip_start;   /* spaces stripped at the start of the text */
    char *dec_from, *dec_to; /* one Replace step (U+2581 -> ' ' in practice) */

    tok_added *added;
    int n_added;
    int32_t added_first[256]; /* first added token (sorted by first byte) per byte, or -1 */

    int32_t bos_id, eos_id, pad_id;
    bool add_bos, add_eos;
    char *chat_template;

    pthread_mutex_t cache_lock;
    tok_map cache;          /* pre-token bytes -> index in cache_entries */
    tok_cache_entry *cache_entries;
    char *cache_keys;       /* key storage */
    size_t cache_keys_n, cache_keys_cap;
    int32_t *cache_ids;
    size_t cache_ids_n, cache_ids_cap;
    uint32_t cache_n, cache_cap;
    bool cache_ok;
};

/* Formats a message into err (never overflows; err may be NULL). Returns s. */
lt_tok_status tok_fail(char *err, size_t err_n, lt_tok_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Splits text[0..n) with a known regex; calls emit(ctx, start, len) for each piece in order.
 * Returns 0, or the first nonzero value emit returned. */
typedef int (*tok_emit_fn)(void *ctx, size_t start, size_t len);
int tok_pretok_split(tok_split kind, const char *text, size_t n, tok_emit_fn emit, void *ctx);
/* The known pattern for a regex string as written in tokenizer.json, or 0. */
tok_split tok_pretok_detect(const char *pattern);
const char *tok_pretok_name(tok_split kind);

/* BPE of one pre-token (bytes p[0..n)): appends ids and their start offsets (base + the
 * offset within the piece) to out. */
lt_tok_status tok_bpe_word(lt_tokenizer *tok, const char *p, size_t n, uint32_t base,
                           lt_tok_ids *out);
/* Appends one id (and offset, mask 0) to v; -1 when out of memory. */
int tok_ids_push(lt_tok_ids *v, int32_t id, uint32_t offset);
void tok_cache_init(lt_tokenizer *tok);
void tok_cache_free(lt_tokenizer *tok);

#endif
