/*
 * tokenizer.h - Hugging Face tokenizers in C: tokenizer.json (byte-level BPE with the GPT-2,
 * Llama-3 or Qwen2 split, SentencePiece-style BPE with byte fallback), added and special
 * tokens, tokenizer_config.json (bos/eos/pad, add_bos_token, chat template), chat templates
 * rendered natively by family, and a byte-level BPE trainer.
 *
 * Contract: bad files never crash; every failure is a status plus a message naming the file
 * and the field and what was expected. Encoding is exact against the Hugging Face reference
 * for valid UTF-8. Bytes that are not valid UTF-8 are each treated by the pre-tokenizers as
 * one code point of class "other" (like punctuation) and, with byte-level BPE, encoded as
 * their byte tokens, so decode(encode(x)) == x for any bytes x.
 *
 * Thread safety: a loaded tokenizer is read-only except for an internal cache guarded by a
 * mutex; encode and decode may be called from several threads on one handle.
 */
#ifndef LATHE_TOKENIZER_H
#define LATHE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lt_tokenizer lt_tokenizer;

typedef enum lt_tok_status {
    LT_TOK_OK = 0,
    LT_TOK_ERR_IO,          /* a file could not be read or written */
    LT_TOK_ERR_PARSE,       /* malformed JSON or a field of the wrong shape */
    LT_TOK_ERR_UNSUPPORTED, /* well-formed but a kind lathe does not implement */
    LT_TOK_ERR_INVALID,     /* a bad argument: unknown id, bad conversation, ... */
    LT_TOK_ERR_TEMPLATE,    /* no chat template, or one of no family lathe knows */
    LT_TOK_ERR_NOMEM,
} lt_tok_status;

const char *lt_tok_status_str(lt_tok_status s);

/* Room for an error message: every err buffer below should have at least this many bytes. */
#define LT_TOK_ERR_LEN 512

/* Loads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json and
 * DIR/chat_template.jinja. *out is owned by the caller (lt_tokenizer_free). */
lt_tok_status lt_tokenizer_load_dir(const char *dir, lt_tokenizer **out, char *err, size_t err_n);

/* Loads a tokenizer.json held in memory; name is used in messages. No config is read. */
lt_tok_status lt_tokenizer_load_json(const char *json, size_t n, const char *name,
                                     lt_tokenizer **out, char *err, size_t err_n);

/* Applies a tokenizer_config.json held in memory to tok (bos/eos/pad, add_bos_token,
 * chat_template). */
lt_tok_status lt_tokenizer_apply_config(lt_tokenizer *tok, const char *json, size_t n,
                                        const char *name, char *err, size_t err_n);

void lt_tokenizer_free(lt_tokenizer *tok);

/* One line naming the model and pre-tokenizer, e.g. "byte-level BPE, GPT-2 split". Owned by
 * tok. */
const char *lt_tokenizer_kind(const lt_tokenizer *tok);
/* One more than the largest token id. */
int lt_tokenizer_n_vocab(const lt_tokenizer *tok);
/* The token's string as written in tokenizer.json (byte-level pieces use the printable
 * byte alphabet, e.g. "Ġthe"); NULL for an id that names no token. Owned by tok. */
const char *lt_tokenizer_piece(const lt_tokenizer *tok, int id);
/* The id of a piece as written in tokenizer.json (vocab or added token), or -1. */
int lt_tokenizer_piece_id(const lt_tokenizer *tok, const char *piece);
bool lt_tokenizer_is_special(const lt_tokenizer *tok, int id);
/* Special ids from tokenizer_config.json (or the tokenizer.json's own hints); -1 if none. */
int lt_tokenizer_bos_id(const lt_tokenizer *tok);
int lt_tokenizer_eos_id(const lt_tokenizer *tok);
int lt_tokenizer_pad_id(const lt_tokenizer *tok);
/* The chat template source (Jinja) or NULL. Owned by tok. */
const char *lt_tokenizer_chat_template(const lt_tokenizer *tok);

/* A growing list of token ids. Functions that fill one append to it; the caller frees it
 * with lt_tok_ids_free (a zeroed struct is an empty list). offsets[i] is the byte offset in
 * the encoded text where token i starts; mask[i] is 1 for assistant tokens (chat encoding,
 * 0 otherwise). */
typedef struct lt_tok_ids {
    int32_t *ids;
    uint32_t *offsets;
    uint8_t *mask;
    size_t n, cap;
} lt_tok_ids;

void lt_tok_ids_free(lt_tok_ids *v);

enum {
    LT_TOK_ADD_SPECIAL = 1, /* add bos (add_bos_token / the post-processor) and eos if asked */
    LT_TOK_NO_SPECIAL_SPLIT = 2, /* treat added-token text as plain text */
    LT_TOK_SKIP_SPECIAL = 4,     /* decode: leave special tokens out */
};

/* Encodes text[0..n) (any bytes) and appends the ids to out. */
lt_tok_status lt_tokenizer_encode(const lt_tokenizer *tok, const char *text, size_t n, int flags,
                                  lt_tok_ids *out, char *err, size_t err_n);

/* Decodes ids into a malloc'd, NUL-terminated string (*out, caller frees; length *out_n; the
 * bytes are exact, so they may hold NUL or invalid UTF-8). An unknown id is an error. */
lt_tok_status lt_tokenizer_decode(const lt_tokenizer *tok, const int32_t *ids, size_t n,
                                  int flags, char **out, size_t *out_n, char *err, size_t err_n);

/* ---- chat templates (chat_template.c) ------------------------------------------------ */

typedef enum lt_chat_family {
    LT_CHAT_NONE = 0,
    LT_CHAT_CHATML,  /* <|im_start|>role\n...<|im_end|>\n: Qwen2/2.5, SmolLM, lathe's own */
    LT_CHAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    LT_CHAT_LLAMA2,  /* <s>[INST] <<SYS>>...<</SYS>> user [/INST] assistant </s>: Llama-2, Mistral */
    LT_CHAT_ALPACA,  /* ### Instruction: / ### Response: */
} lt_chat_family;

/* "chatml", "llama3", "llama2", "alpaca" ("none" for LT_CHAT_NONE). */
const char *lt_chat_family_name(lt_chat_family f);
/* The family for a name above, or LT_CHAT_NONE. */
lt_chat_family lt_chat_family_parse(const char *name);
/* The family a Jinja template belongs to, judged by its content, or LT_CHAT_NONE. */
lt_chat_family lt_chat_detect(const char *jinja);

typedef struct lt_chat_msg {
    const char *role; /* "system", "user" or "assistant" */
    const char *content;
} lt_chat_msg;

/* A rendered conversation: text (malloc'd, NUL-terminated) and the byte ranges
 * [assist[2k], assist[2k+1]) holding assistant content and its end-of-turn marker, which is
 * what training should learn. Free with lt_chat_text_free. */
typedef struct lt_chat_text {
    char *text;
    size_t n;
    size_t *assist;
    size_t n_assist; /* number of ranges */
    lt_chat_family family;
} lt_chat_text;

void lt_chat_text_free(lt_chat_text *t);

/* The family to use for tok: `force` when not LT_CHAT_NONE, else the one recognised in the
 * tokenizer's template. No template or an unrecognised one is LT_TOK_ERR_TEMPLATE with a
 * message saying how to choose a family. */
lt_tok_status lt_tokenizer_chat_family(const lt_tokenizer *tok, lt_chat_family force,
                                       lt_chat_family *out, char *err, size_t err_n);

/* Renders msgs with family f (special token strings taken from tok; tok may be NULL for
 * the defaults). add_generation_prompt appends the assistant header. */
lt_tok_status lt_chat_render(const lt_tokenizer *tok, lt_chat_family f, const lt_chat_msg *msgs,
                             size_t n_msgs, bool add_generation_prompt, lt_chat_text *out,
                             char *err, size_t err_n);

/* Renders and tokenizes a conversation; appends ids, offsets and the per-token is_assistant
 * mask (a token is an assistant token when it starts inside an assistant range). The
 * template supplies bos itself, so no special tokens are added. */
lt_tok_status lt_tokenizer_encode_chat(const lt_tokenizer *tok, lt_chat_family f,
                                       const lt_chat_msg *msgs, size_t n_msgs,
                                       bool add_generation_prompt, lt_tok_ids *out, char *err,
                                       size_t err_n);

/* ---- training (bpe_train.c) ------------------------------------------------------------ */

typedef struct lt_bpe_train_opts {
    int vocab_size;      /* total, including the 256 byte tokens and the 3 special tokens */
    int min_frequency;   /* pairs seen fewer times are never merged (default 2) */
    bool verbose;        /* progress on stderr */
} lt_bpe_train_opts;

/* Trains a byte-level BPE (GPT-2 split) on the files and writes out_dir/tokenizer.json and
 * out_dir/tokenizer_config.json (ChatML template; special tokens <|endoftext|>, <|im_start|>,
 * <|im_end|>), each through a temporary file and a rename. Ties between equally frequent pairs
 * go to the pair whose concatenated bytes compare smallest (memcmp, then shorter first), so
 * the result depends only on the input bytes. out_dir is created if missing. */
lt_tok_status lt_bpe_train(const char *const *files, int n_files, const lt_bpe_train_opts *opts,
                           const char *out_dir, char *err, size_t err_n);

#endif
