/*
 * chat_template.c - chat templates without a Jinja engine: a template is recognised by its
 * content as one of a few families (ChatML, Llama-3, Llama-2/Mistral [INST], Alpaca) and the
 * conversation is rendered natively in C. The renderer records which bytes are assistant
 * content (plus the end-of-turn marker) so training can mask labels to assistant tokens.
 */
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FAMILY_NAMES[] = {"none", "chatml", "llama3", "llama2", "alpaca"};

const char *lt_chat_family_name(lt_chat_family f)
{
    return f >= LT_CHAT_NONE && f <= LT_CHAT_ALPACA ? FAMILY_NAMES[f] : "none";
}

lt_chat_family lt_chat_family_parse(const char *name)
{
    for (int f = LT_CHAT_CHATML; f <= LT_CHAT_ALPACA; f++)
        if (name && strcmp(name, FAMILY_NAMES[f]) == 0)
            return (lt_chat_family)f;
    if (name && strcmp(name, "mistral") == 0)
        return LT_CHAT_LLAMA2;
    return LT_CHAT_NONE;
}

lt_chat_family lt_chat_detect(const char *j)
{
    if (!j)
        return LT_CHAT_NONE;
    if (strstr(j, "<|start_header_id|>") && strstr(j, "<|eot_id|>"))
        return LT_CHAT_LLAMA3;
    if (strstr(j, "<|im_start|>") && strstr(j, "<|im_end|>"))
        return LT_CHAT_CHATML;
    if (strstr(j, "[INST]") && strstr(j, "[/INST]"))
        return LT_CHAT_LLAMA2;
    if (strstr(j, "### Instruction") && strstr(j, "### Response"))
        return LT_CHAT_ALPACA;
    return LT_CHAT_NONE;
}

lt_tok_status lt_tokenizer_chat_family(const lt_tokenizer *tok, lt_chat_family force,
                                       lt_chat_family *out, char *err, size_t err_n)
{
    if (force != LT_CHAT_NONE) {
        *out = force;
        return LT_TOK_OK;
    }
    *out = LT_CHAT_NONE;
    if (!tok->chat_template)
        return tok_fail(err, err_n, LT_TOK_ERR_TEMPLATE,
                        "no chat template (tokenizer_config.json has no \"chat_template\" and "
                        "there is no chat_template.jinja); choose a family with --template "
                        "chatml|llama3|llama2|alpaca");
    *out = lt_chat_detect(tok->chat_template);
    if (*out == LT_CHAT_NONE)
        return tok_fail(err, err_n, LT_TOK_ERR_TEMPLATE,
                        "the chat template is of no family lathe knows (ChatML, Llama-3, "
                        "Llama-2/Mistral [INST], Alpaca); choose one with --template "
                        "chatml|llama3|llama2|alpaca");
    return LT_TOK_OK;
}

void lt_chat_text_free(lt_chat_text *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->assist);
    memset(t, 0, sizeof *t);
}

typedef struct rbuf {
    lt_chat_text *t;
    size_t cap, cap_r;
    int oom;
} rbuf;

static void put(rbuf *b, const char *s, size_t n)
{
    lt_chat_text *t = b->t;
    if (b->oom)
        return;
    if (t->n + n + 1 > b->cap) {
        size_t cap = (t->n + n + 1) * 2 + 256;
        char *p = realloc(t->text, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        t->text = p;
        b->cap = cap;
    }
    memcpy(t->text + t->n, s, n);
    t->n += n;
    t->text[t->n] = '\0';
}

static void puts_(rbuf *b, const char *s) { put(b, s, strlen(s)); }

/* Jinja's trim: strips white space at both ends. */
static void put_trimmed(rbuf *b, const char *s)
{
    size_t n = strlen(s);
    while (n && strchr(" \t\n\r\v\f", s[n - 1]))
        n--;
    while (n && strchr(" \t\n\r\v\f", *s))
        s++, n--;
    put(b, s, n);
}

static void range(rbuf *b, size_t from, size_t to)
{
    lt_chat_text *t = b->t;
    if (b->oom)
        return;
    if (t->n_assist + 1 > b->cap_r) {
        size_t cap = b->cap_r * 2 + 8;
        size_t *p = realloc(t->assist, cap * 2 * sizeof *p);
        if (!p) {
            b->oom = 1;
            return;
        }
        t->assist = p;
        b->cap_r = cap;
    }
    t->assist[2 * t->n_assist] = from;
    t->assist[2 * t->n_assist + 1] = to;
    t->n_assist++;
}

/* A ChatML template's built-in system prompt ('<|im_start|>system\n' + literal text +
 * '<|im_end|>'), as Qwen2.5 and SmolLM2 have; malloc'd, or NULL. */
static char *chatml_default_system(const char *tmpl)
{
    const char *key = "<|im_start|>system";
    for (const char *p = tmpl ? strstr(tmpl, key) : NULL; p; p = strstr(p + 1, key)) {
        const char *q = p + strlen(key);
        if (q[0] == '\\' && q[1] == 'n')
            q += 2;
        else if (q[0] == '\n')
            q++;
        else
            continue;
        const char *end = strstr(q, "<|im_end|>");
        if (!end || end == q || strpbrk(q, "{}'\"%") < end)
            continue;
        char *s = malloc((size_t)(end - q) + 1);
        size_t k = 0;
        if (!s)
            return NULL;
        for (const char *c = q; c < end; c++) {
            if (c[0] == '\\' && c[1] == 'n') {
                s[k++] = '\n';
                c++;
            } else
                s[k++] = *c;
        }
        s[k] = '\0';
        return s;
    }
    return NULL;
}

static const char *special_or(const lt_tokenizer *tok, int32_t id, const char *dflt)
{
    const char *p = tok ? lt_tokenizer_piece(tok, id) : NULL;
    return p ? p : dflt;
}

static void render_chatml(rbuf *b, const lt_tokenizer *tok, const lt_chat_msg *m, size_t n,
                          bool gen)
{
    if (n == 0 || strcmp(m[0].role, "system") != 0) {
        char *sys = chatml_default_system(tok ? tok->chat_template : NULL);
        if (sys) {
            puts_(b, "<|im_start|>system\n");
            puts_(b, sys);
            puts_(b, "<|im_end|>\n");
            free(sys);
        }
    }
    for (size_t i = 0; i < n; i++) {
        puts_(b, "<|im_start|>");
        puts_(b, m[i].role);
        puts_(b, "\n");
        size_t from = b->t->n;
        puts_(b, m[i].content);
        puts_(b, "<|im_end|>");
        if (strcmp(m[i].role, "assistant") == 0)
            range(b, from, b->t->n);
        puts_(b, "\n");
    }
    if (gen)
        puts_(b, "<|im_start|>assistant\n");
}

static void render_llama3(rbuf *b, const lt_tokenizer *tok, const lt_chat_msg *m, size_t n,
                          bool gen)
{
    puts_(b, special_or(tok, tok ? tok->bos_id : -1, "<|begin_of_text|>"));
    for (size_t i = 0; i < n; i++) {
        puts_(b, "<|start_header_id|>");
        puts_(b, m[i].role);
        puts_(b, "<|end_header_id|>\n\n");
        size_t from = b->t->n;
        put_trimmed(b, m[i].content);
        puts_(b, "<|eot_id|>");
        if (strcmp(m[i].role, "assistant") == 0)
            range(b, from, b->t->n);
    }
    if (gen)
        puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_llama2(rbuf *b, const lt_tokenizer *tok, const lt_chat_msg *m, size_t n)
{
    const char *bos = special_or(tok, tok ? tok->bos_id : -1, "<s>");
    const char *eos = special_or(tok, tok ? tok->eos_id : -1, "</s>");
    const char *sys = NULL;
    size_t i = 0;
    if (n && strcmp(m[0].role, "system") == 0)
        sys = m[i++].content;
    for (; i < n; i++) {
        if (strcmp(m[i].role, "user") == 0) {
            puts_(b, bos);
            puts_(b, "[INST] ");
            if (sys) {
                puts_(b, "<<SYS>>\n");
                put_trimmed(b, sys);
                puts_(b, "\n<</SYS>>\n\n");
                sys = NULL;
            }
            put_trimmed(b, m[i].content);
            puts_(b, " [/INST]");
        } else {
            puts_(b, " ");
            size_t from = b->t->n;
            put_trimmed(b, m[i].content);
            puts_(b, " ");
            puts_(b, eos);
            range(b, from, b->t->n);
        }
    }
}

static void render_alpaca(rbuf *b, const lt_tokenizer *tok, const lt_chat_msg *m, size_t n,
                          bool gen)
{
    const char *eos = special_or(tok, tok ? tok->eos_id : -1, "</s>");
    size_t i = 0;
    if (n && strcmp(m[0].role, "system") == 0)
        puts_(b, m[i++].content);
    else
        puts_(b, "Below is an instruction that describes a task. Write a response that "
                 "appropriately completes the request.");
    puts_(b, "\n\n");
    for (; i < n; i++) {
        if (strcmp(m[i].role, "user") == 0) {
            puts_(b, "### Instruction:\n");
            puts_(b, m[i].content);
            puts_(b, "\n\n");
        } else {
            puts_(b, "### Response:\n");
            size_t from = b->t->n;
            puts_(b, m[i].content);
            puts_(b, eos);
            range(b, from, b->t->n);
            puts_(b, "\n\n");
        }
    }
    if (gen)
        puts_(b, "### Response:\n");
}

lt_tok_status lt_chat_render(const lt_tokenizer *tok, lt_chat_family f, const lt_chat_msg *msgs,
                             size_t n, bool gen, lt_chat_text *out, char *err, size_t err_n)
{
    rbuf b = {out, 0, 0, 0};
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")))
            return tok_fail(err, err_n, LT_TOK_ERR_INVALID,
                            "messages[%zu].role: expected \"system\", \"user\" or \"assistant\"",
                            i);
        if (!msgs[i].content)
            return tok_fail(err, err_n, LT_TOK_ERR_INVALID,
                            "messages[%zu].content: expected a string", i);
        if (strcmp(r, "system") == 0 && i > 0)
            return tok_fail(err, err_n, LT_TOK_ERR_INVALID,
                            "messages[%zu]: a system message may only come first", i);
        if ((f == LT_CHAT_LLAMA2 || f == LT_CHAT_ALPACA) && strcmp(r, "system") != 0) {
            size_t first = n && strcmp(msgs[0].role, "system") == 0 ? 1 : 0;
            const char *want = (i - first) % 2 == 0 ? "user" : "assistant";
            if (strcmp(r, want) != 0)
                return tok_fail(err, err_n, LT_TOK_ERR_INVALID,
                                "messages[%zu]: the %s template needs user and assistant turns "
                                "alternating, starting with user",
                                i, lt_chat_family_name(f));
        }
    }
    puts_(&b, "");
    switch (f) {
    case LT_CHAT_CHATML: render_chatml(&b, tok, msgs, n, gen); break;
    case LT_CHAT_LLAMA3: render_llama3(&b, tok, msgs, n, gen); break;
    case LT_CHAT_LLAMA2: render_llama2(&b, tok, msgs, n); break;
    case LT_CHAT_ALPACA: render_alpaca(&b, tok, msgs, n, gen); break;
    default:
        lt_chat_text_free(out); /* the empty text puts_ started */
        return tok_fail(err, err_n, LT_TOK_ERR_TEMPLATE, "no chat template family chosen");
    }
    out->family = f;
    if (b.oom) {
        lt_chat_text_free(out);
        return tok_fail(err, err_n, LT_TOK_ERR_NOMEM, "chat template: out of memory");
    }
    return LT_TOK_OK;
}

lt_tok_status lt_tokenizer_encode_chat(const lt_tokenizer *tok, lt_chat_family f,
                                       const lt_chat_msg *msgs, size_t n_msgs, bool gen,
                                       lt_tok_ids *out, char *err, size_t err_n)
{
    lt_chat_text ct;
    lt_tok_status s = lt_chat_render(tok, f, msgs, n_msgs, gen, &ct, err, err_n);
    if (s)
        return s;
    size_t from = out->n;
    s = lt_tokenizer_encode(tok, ct.text, ct.n, 0, out, err, err_n);
    for (size_t i = from; s == LT_TOK_OK && i < out->n; i++)
        for (size_t r = 0; r < ct.n_assist; r++)
            if (out->offsets[i] >= ct.assist[2 * r] && out->offsets[i] < ct.assist[2 * r + 1])
                out->mask[i] = 1;
    lt_chat_text_free(&ct);
    return s;
}
