/*
 * bpe_train.c - a byte-level BPE trainer (GPT-2 pre-tokenizer). Words are counted once;
 * pair counts are kept incrementally: merging a pair touches only the words that hold it
 * (an index pair -> words), and a lazy max-heap finds the next most frequent pair. Writes a
 * standard tokenizer.json and a tokenizer_config.json (ChatML template), each to a temporary
 * file that is fsynced and renamed. Deterministic: see the tie rule at pair_better().
 */
#include "tok_impl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_SPECIAL 3
static const char *const SPECIALS[N_SPECIAL] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

typedef struct pair_info {
    int32_t a, b;
    int64_t count;
    int32_t *words; /* indices of words that held the pair at some point (may be stale) */
    uint32_t n_words, cap_words;
} pair_info;

typedef struct trainer {
    /* words: unique pre-tokens with their counts; symbols carved from one array */
    int32_t *sym;     /* all words' symbols */
    uint32_t *w_off;  /* [n_words] start in sym */
    uint32_t *w_len;  /* [n_words] current number of symbols */
    int64_t *w_count; /* [n_words] */
    uint32_t n_words;
    /* tokens: bytes of each token id (specials excluded) */
    char **tok;
    uint32_t *tok_len;
    int n_tok, cap_tok;
    /* pairs */
    tok_pairs index; /* (a, b) -> .id = index in pairs */
    pair_info *pairs;
    uint32_t n_pairs, cap_pairs;
    uint32_t *heap; /* pair indices; key (count at push, pair) */
    int64_t *heap_count;
    uint32_t n_heap, cap_heap;
    uint32_t *seen; /* per word: last merge step that touched it */
} trainer;

/* Tie rule: the higher count wins; among equal counts, the pair whose concatenated bytes
 * compare smaller (memcmp, a prefix before its extensions) wins, then the shorter left part. */
static int pair_better(const trainer *t, uint32_t p, int64_t cp, uint32_t q, int64_t cq)
{
    if (cp != cq)
        return cp > cq;
    const pair_info *x = &t->pairs[p], *y = &t->pairs[q];
    uint32_t xl = t->tok_len[x->a] + t->tok_len[x->b], yl = t->tok_len[y->a] + t->tok_len[y->b];
    char xb[512], yb[512];
    uint32_t xn = xl < sizeof xb ? xl : sizeof xb, yn = yl < sizeof yb ? yl : sizeof yb;
    uint32_t xa = t->tok_len[x->a] < xn ? t->tok_len[x->a] : xn;
    uint32_t ya = t->tok_len[y->a] < yn ? t->tok_len[y->a] : yn;
    memcpy(xb, t->tok[x->a], xa);
    memcpy(xb + xa, t->tok[x->b], xn - xa);
    memcpy(yb, t->tok[y->a], ya);
    memcpy(yb + ya, t->tok[y->b], yn - ya);
    int c = memcmp(xb, yb, xn < yn ? xn : yn);
    if (c)
        return c < 0;
    if (xn != yn)
        return xn < yn;
    return t->tok_len[x->a] < t->tok_len[y->a];
}

static int heap_push(trainer *t, uint32_t p)
{
    if (t->n_heap == t->cap_heap) {
        uint32_t cap = t->cap_heap ? t->cap_heap * 2 : 1024;
        uint32_t *h = realloc(t->heap, cap * sizeof *h);
        if (!h)
            return -1;
        t->heap = h;
        int64_t *hc = realloc(t->heap_count, cap * sizeof *hc);
        if (!hc)
            return -1;
        t->heap_count = hc;
        t->cap_heap = cap;
    }
    uint32_t i = t->n_heap++;
    int64_t c = t->pairs[p].count;
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (!pair_better(t, p, c, t->heap[up], t->heap_count[up]))
            break;
        t->heap[i] = t->heap[up];
        t->heap_count[i] = t->heap_count[up];
        i = up;
    }
    t->heap[i] = p;
    t->heap_count[i] = c;
    return 0;
}

static void heap_pop(trainer *t, uint32_t *p, int64_t *c)
{
    *p = t->heap[0];
    *c = t->heap_count[0];
    uint32_t lp = t->heap[--t->n_heap];
    int64_t lc = t->heap_count[t->n_heap];
    uint32_t i = 0;
    for (;;) {
        uint32_t k = 2 * i + 1;
        if (k >= t->n_heap)
            break;
        if (k + 1 < t->n_heap &&
            pair_better(t, t->heap[k + 1], t->heap_count[k + 1], t->heap[k], t->heap_count[k]))
            k++;
        if (!pair_better(t, t->heap[k], t->heap_count[k], lp, lc))
            break;
        t->heap[i] = t->heap[k];
        t->heap_count[i] = t->heap_count[k];
        i = k;
    }
    if (t->n_heap) {
        t->heap[i] = lp;
        t->heap_count[i] = lc;
    }
}

/* The pair record for (a, b), created when missing; UINT32_MAX when out of memory. */
static uint32_t pair_get(trainer *t, int32_t a, int32_t b)
{
    const tok_pair_slot *s = tok_pairs_get(&t->index, a, b);
    if (s)
        return (uint32_t)s->id;
    if (t->n_pairs == t->cap_pairs) {
        uint32_t cap = t->cap_pairs ? t->cap_pairs * 2 : 4096;
        pair_info *np = realloc(t->pairs, cap * sizeof *np);
        if (!np)
            return UINT32_MAX;
        t->pairs = np;
        t->cap_pairs = cap;
    }
    uint32_t k = t->n_pairs++;
    t->pairs[k] = (pair_info){a, b, 0, NULL, 0, 0};
    if (tok_pairs_put(&t->index, a, b, 0, (int32_t)k) < 0)
        return UINT32_MAX;
    return k;
}

/* Adds delta occurrences of (a, b) in word w. */
static int pair_add(trainer *t, int32_t a, int32_t b, uint32_t w, int64_t delta)
{
    uint32_t p = pair_get(t, a, b);
    if (p == UINT32_MAX)
        return -1;
    pair_info *pi = &t->pairs[p];
    pi->count += delta;
    if (delta > 0 && w != UINT32_MAX) {
        if (pi->n_words == 0 || pi->words[pi->n_words - 1] != (int32_t)w) {
            if (pi->n_words == pi->cap_words) {
                uint32_t cap = pi->cap_words ? pi->cap_words * 2 : 4;
                int32_t *nw = realloc(pi->words, cap * sizeof *nw);
                if (!nw)
                    return -1;
                pi->words = nw;
                pi->cap_words = cap;
            }
            pi->words[pi->n_words++] = (int32_t)w;
        }
    }
    return 0;
}

/* Re-counts word w's pairs around a merge of (a, b) into token m: its old pairs are taken
 * away, the merge applied, its new pairs added (words indexed only under pairs with m). */
static int merge_word(trainer *t, uint32_t w, int32_t a, int32_t b, int32_t m)
{
    int32_t *s = t->sym + t->w_off[w];
    uint32_t n = t->w_len[w], k = 0;
    int64_t c = t->w_count[w];
    for (uint32_t i = 0; i + 1 < n; i++)
        if (pair_add(t, s[i], s[i + 1], w, -c) < 0)
            return -1;
    for (uint32_t i = 0; i < n; i++) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            s[k++] = m;
            i++;
        } else
            s[k++] = s[i];
    }
    t->w_len[w] = k;
    for (uint32_t i = 0; i + 1 < k; i++) {
        bool fresh = s[i] == m || s[i + 1] == m;
        if (pair_add(t, s[i], s[i + 1], fresh ? w : UINT32_MAX, c) < 0)
            return -1;
    }
    return 0;
}

typedef struct count_ctx {
    trainer *t;
    tok_map *words;
    const char *text;
    char ***keys;
    uint32_t *cap;
    int oom;
} count_ctx;

static int count_piece(void *p, size_t start, size_t len)
{
    count_ctx *c = p;
    trainer *t = c->t;
    int32_t w = tok_map_get(c->words, c->text + start, (uint32_t)len);
    if (w >= 0) {
        t->w_count[w]++;
        return 0;
    }
    if (t->n_words == *c->cap) {
        uint32_t cap = *c->cap ? *c->cap * 2 : 65536;
        char **k = realloc(*c->keys, cap * sizeof *k);
        int64_t *wc = realloc(t->w_count, cap * sizeof *wc);
        if (k)
            *c->keys = k;
        if (wc)
            t->w_count = wc;
        if (!k || !wc)
            return c->oom = 1;
        *c->cap = cap;
    }
    char *key = malloc(len ? len : 1);
    if (!key)
        return c->oom = 1;
    memcpy(key, c->text + start, len);
    (*c->keys)[t->n_words] = key;
    t->w_count[t->n_words] = 1;
    if (tok_map_put(c->words, key, (uint32_t)len, (int32_t)t->n_words) < 0)
        return c->oom = 1;
    t->n_words++;
    return 0;
}

static int write_atomic(const char *dir, const char *name, const char *data, char *err,
                        size_t err_n)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t n = strlen(data), off = 0;
    if (fd < 0)
        return tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return LT_TOK_OK;
}

/* The token's bytes in GPT-2's printable byte alphabet. */
static char *to_alphabet(const char *s, uint32_t n)
{
    char *out = malloc((size_t)n * 2 + 1), *o = out;
    if (!out)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        unsigned b = (unsigned char)s[i];
        bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        unsigned cp = b;
        if (!self) {
            unsigned k = 0;
            for (unsigned x = 0; x < b; x++)
                if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE))
                    k++;
            cp = 256 + k;
        }
        if (cp < 0x80)
            *o++ = (char)cp;
        else {
            *o++ = (char)(0xC0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *o = '\0';
    return out;
}

static const char CHATML_JINJA[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

static lt_tok_status write_outputs(trainer *t, const int32_t *merges, int n_merges,
                                   const char *dir, char *err, size_t err_n)
{
    lt_tok_status s = LT_TOK_ERR_NOMEM;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *model = cJSON_CreateObject();
    char **pieces = calloc((size_t)t->n_tok, sizeof *pieces);
    if (!root || !cfg || !added || !model || !pieces)
        goto done;
    cJSON_AddStringToObject(root, "version", "1.0");
    for (int i = 0; i < N_SPECIAL; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", SPECIALS[i]);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    cJSON_AddNullToObject(root, "normalizer");
    const char *bl = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
                     "true, \"use_regex\": true}";
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(bl));
    cJSON_AddItemToObject(root, "post_processor", cJSON_Parse(bl));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse(bl));
    cJSON_AddItemToObject(root, "model", model);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *mlist = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < N_SPECIAL; i++)
        cJSON_AddNumberToObject(vocab, SPECIALS[i], i);
    for (int i = 0; i < t->n_tok; i++) {
        if (!(pieces[i] = to_alphabet(t->tok[i], t->tok_len[i])))
            goto done;
        cJSON_AddNumberToObject(vocab, pieces[i], N_SPECIAL + i);
    }
    for (int i = 0; i < n_merges; i++) {
        const char *pair[2] = {pieces[merges[2 * i]], pieces[merges[2 * i + 1]]};
        cJSON_AddItemToArray(mlist, cJSON_CreateStringArray(pair, 2));
    }
    if (!(text = cJSON_PrintUnformatted(root)))
        goto done;
    if ((s = write_atomic(dir, "tokenizer.json", text, err, err_n)) != LT_TOK_OK)
        goto done;
    free(text);
    s = LT_TOK_ERR_NOMEM;
    cJSON_AddNullToObject(cfg, "bos_token");
    cJSON_AddStringToObject(cfg, "eos_token", "<|im_end|>");
    cJSON_AddStringToObject(cfg, "pad_token", "<|endoftext|>");
    cJSON_AddNullToObject(cfg, "unk_token");
    cJSON_AddBoolToObject(cfg, "add_bos_token", 0);
    cJSON_AddBoolToObject(cfg, "add_eos_token", 0);
    cJSON_AddStringToObject(cfg, "tokenizer_class", "PreTrainedTokenizerFast");
    cJSON_AddNumberToObject(cfg, "model_max_length", 2048);
    cJSON_AddStringToObject(cfg, "chat_template", CHATML_JINJA);
    if (!(text = cJSON_Print(cfg)))
        goto done;
    s = write_atomic(dir, "tokenizer_config.json", text, err, err_n);
done:
    if (s == LT_TOK_ERR_NOMEM)
        tok_fail(err, err_n, s, "train: out of memory writing %s", dir);
    free(text);
    for (int i = 0; pieces && i < t->n_tok; i++)
        free(pieces[i]);
    free(pieces);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return s;
}

static int add_token(trainer *t, tok_map *by_bytes, const char *s, uint32_t n)
{
    int32_t have = tok_map_get(by_bytes, s, n);
    if (have >= 0)
        return have;
    if (t->n_tok == t->cap_tok) {
        int cap = t->cap_tok ? t->cap_tok * 2 : 1024;
        char **nt = realloc(t->tok, (size_t)cap * sizeof *nt);
        uint32_t *nl = realloc(t->tok_len, (size_t)cap * sizeof *nl);
        if (nt)
            t->tok = nt;
        if (nl)
            t->tok_len = nl;
        if (!nt || !nl)
            return -1;
        t->cap_tok = cap;
    }
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return -1;
    memcpy(copy, s, n);
    t->tok[t->n_tok] = copy;
    t->tok_len[t->n_tok] = n;
    if (tok_map_put(by_bytes, copy, n, t->n_tok) < 0)
        return -1;
    return t->n_tok++;
}

lt_tok_status lt_bpe_train(const char *const *files, int n_files, const lt_bpe_train_opts *o,
                           const char *out_dir, char *err, size_t err_n)
{
    trainer t;
    tok_map words = {0}, by_bytes = {0};
    char **keys = NULL, *text = NULL;
    uint32_t cap_words = 0;
    int32_t *merges = NULL;
    int n_merges = 0;
    lt_tok_status s = LT_TOK_ERR_NOMEM;
    int min_freq = o->min_frequency > 0 ? o->min_frequency : 2;
    memset(&t, 0, sizeof t);

    if (o->vocab_size < 256 + N_SPECIAL || o->vocab_size > (1 << 22))
        return tok_fail(err, err_n, LT_TOK_ERR_INVALID,
                        "train: vocab size %d: expected at least %d (256 bytes + %d special "
                        "tokens) and at most %d",
                        o->vocab_size, 256 + N_SPECIAL, N_SPECIAL, 1 << 22);
    if (mkdir(out_dir, 0755) < 0 && errno != EEXIST)
        return tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: cannot create: %s", out_dir,
                        strerror(errno));
    if (tok_map_init(&words, 1 << 16) < 0 || tok_map_init(&by_bytes, 1024) < 0 ||
        tok_pairs_init(&t.index, 1 << 16) < 0)
        goto done;
    for (int f = 0; f < n_files; f++) {
        FILE *fp = fopen(files[f], "rb");
        size_t n = 0, cap = 0, r;
        if (!fp) {
            s = tok_fail(err, err_n, LT_TOK_ERR_IO, "%s: cannot read: %s", files[f],
                         strerror(errno));
            goto done;
        }
        do {
            if (n + 65536 > cap) {
                char *nt = realloc(text, cap = (n + 65536) * 2);
                if (!nt) {
                    fclose(fp);
                    goto done;
                }
                text = nt;
            }
            r = fread(text + n, 1, cap - n, fp);
            n += r;
        } while (r > 0);
        fclose(fp);
        count_ctx c = {&t, &words, text, &keys, &cap_words, 0};
        tok_pretok_split(TOK_SPLIT_GPT2, text, n, count_piece, &c);
        if (c.oom)
            goto done;
        if (o->verbose)
            fprintf(stderr, "lathe tokenizer train: %s: %zu bytes, %u distinct words so far\n",
                    files[f], n, t.n_words);
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (add_token(&t, &by_bytes, &c, 1) < 0)
            goto done;
    }
    size_t total = 0;
    t.w_off = malloc(((size_t)t.n_words + 1) * sizeof *t.w_off);
    t.w_len = malloc(((size_t)t.n_words + 1) * sizeof *t.w_len);
    t.seen = calloc((size_t)t.n_words + 1, sizeof *t.seen);
    if (!t.w_off || !t.w_len || !t.seen)
        goto done;
    for (uint32_t i = 0; i < words.cap; i++)
        if (words.slots[i].val >= 0) {
            t.w_len[words.slots[i].val] = words.slots[i].len;
            total += words.slots[i].len;
        }
    t.sym = malloc((total + 1) * sizeof *t.sym);
    if (!t.sym)
        goto done;
    for (uint32_t w = 0, off = 0; w < t.n_words; w++) {
        t.w_off[w] = off;
        for (uint32_t i = 0; i < t.w_len[w]; i++)
            t.sym[off + i] = (unsigned char)keys[w][i];
        off += t.w_len[w];
        for (uint32_t i = 0; i + 1 < t.w_len[w]; i++)
            if (pair_add(&t, t.sym[t.w_off[w] + i], t.sym[t.w_off[w] + i + 1], w, t.w_count[w]) < 0)
                goto done;
    }
    for (uint32_t p = 0; p < t.n_pairs; p++)
        if (t.pairs[p].count > 0 && heap_push(&t, p) < 0)
            goto done;
    int want = o->vocab_size - N_SPECIAL - 256;
    merges = malloc(((size_t)want + 1) * 2 * sizeof *merges);
    if (!merges)
        goto done;
    while (t.n_tok < o->vocab_size - N_SPECIAL && t.n_heap) {
        uint32_t p;
        int64_t c;
        heap_pop(&t, &p, &c);
        if (c != t.pairs[p].count) { /* stale: re-file at its current count */
            if (t.pairs[p].count > 0 && t.pairs[p].count < c && heap_push(&t, p) < 0)
                goto done;
            continue;
        }
        if (c < min_freq)
            break;
        int32_t a = t.pairs[p].a, b = t.pairs[p].b;
        char buf[1024];
        uint32_t la = t.tok_len[a], lb = t.tok_len[b];
        char *joined = la + lb <= sizeof buf ? buf : malloc(la + lb);
        if (!joined)
            goto done;
        memcpy(joined, t.tok[a], la);
        memcpy(joined + la, t.tok[b], lb);
        int n_tok_before = t.n_tok;
        int m = add_token(&t, &by_bytes, joined, la + lb);
        if (joined != buf)
            free(joined);
        if (m < 0)
            goto done;
        merges[2 * n_merges] = a;
        merges[2 * n_merges + 1] = b;
        n_merges++;
        uint32_t before = t.n_pairs, step = (uint32_t)n_merges;
        for (uint32_t k = 0; k < t.pairs[p].n_words; k++) {
            uint32_t w = (uint32_t)t.pairs[p].words[k];
            if (t.seen[w] == step)
                continue;
            t.seen[w] = step;
            if (merge_word(&t, w, a, b, m) < 0)
                goto done;
        }
        /* pairs with m only grew: file them again (all of them when m is an older token
         * that a different split reached) */
        for (uint32_t q = m < n_tok_before ? 0 : before; q < t.n_pairs; q++)
            if (t.pairs[q].count > 0 && (q >= before || t.pairs[q].a == m || t.pairs[q].b == m) &&
                heap_push(&t, q) < 0)
                goto done;
        if (o->verbose && n_merges % 1000 == 0)
            fprintf(stderr, "lathe tokenizer train: %d merges\n", n_merges);
    }
    s = write_outputs(&t, merges, n_merges, out_dir, err, err_n);
    if (s == LT_TOK_OK && o->verbose)
        fprintf(stderr, "lathe tokenizer train: %d tokens (%d merges) written to %s\n",
                N_SPECIAL + t.n_tok, n_merges, out_dir);
done:
    if (s == LT_TOK_ERR_NOMEM)
        tok_fail(err, err_n, s, "train: out of memory");
    for (uint32_t w = 0; keys && w < t.n_words; w++)
        free(keys[w]);
    free(keys);
    free(text);
    free(merges);
    tok_map_free(&words);
    tok_map_free(&by_bytes);
    for (int i = 0; i < t.n_tok; i++)
        free(t.tok[i]);
    free(t.tok);
    free(t.tok_len);
    for (uint32_t p = 0; p < t.n_pairs; p++)
        free(t.pairs[p].words);
    free(t.pairs);
    tok_pairs_free(&t.index);
    free(t.heap);
    free(t.heap_count);
    free(t.sym);
    free(t.w_off);
    free(t.w_len);
    free(t.w_count);
    free(t.seen);
    return s;
}
