/*
 * modelfile.c - Ollama Modelfiles: one Go template per chat family, written so that Ollama's
 * rendering of a conversation equals lathe's own chat template renderer (tokenizer.h) minus
 * the leading bos, which the runtime adds. Go templates do not trim message content, so a
 * content with surrounding spaces renders untrimmed where lathe's Llama-2/3 renderers trim.
 */
#include "export/modelfile.h"

#include "export/export_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends printf output to *buf (length *n); frees and NULLs *buf when out of memory. */
static void cat(char **buf, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char **buf, size_t *n, const char *fmt, ...)
{
    if (!*buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *q = k >= 0 ? realloc(*buf, *n + (size_t)k + 1) : NULL;
    if (!q) {
        free(*buf);
        *buf = NULL;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(q + *n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    *buf = q;
    *n += (size_t)k;
}

char *lt_modelfile_template(lt_chat_family f, const char *bos, const char *eos)
{
    size_t n = 0;
    char *t = calloc(1, 1);
    bos = bos ? bos : "<s>";
    eos = eos ? eos : "</s>";
    switch (f) {
    case LT_CHAT_CHATML:
        cat(&t, &n, "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
                    "{{ end }}<|im_start|>assistant\n");
        break;
    case LT_CHAT_LLAMA3:
        cat(&t, &n, "{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
                    "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant"
                    "<|end_header_id|>\n\n");
        break;
    case LT_CHAT_LLAMA2:
        cat(&t, &n, "{{ range .Messages }}{{ if eq .Role \"user\" }}[INST] {{ .Content }} "
                    "[/INST]{{ else if eq .Role \"assistant\" }} {{ .Content }} %s%s{{ end }}"
                    "{{ end }}", eos, bos);
        break;
    case LT_CHAT_ALPACA:
        cat(&t, &n, "{{ range .Messages }}{{ if eq .Role \"system\" }}{{ .Content }}\n\n"
                    "{{ else if eq .Role \"user\" }}### Instruction:\n{{ .Content }}\n\n"
                    "{{ else }}### Response:\n{{ .Content }}%s\n\n{{ end }}{{ end }}"
                    "### Response:\n", eos);
        break;
    default: cat(&t, &n, "{{ .Prompt }}"); break;
    }
    return t;
}

static void stops(lt_chat_family f, const char *eos, const char *out[3])
{
    out[0] = out[1] = out[2] = NULL;
    switch (f) {
    case LT_CHAT_CHATML: out[0] = "<|im_end|>", out[1] = "<|im_start|>"; break;
    case LT_CHAT_LLAMA3: out[0] = "<|eot_id|>", out[1] = "<|start_header_id|>"; break;
    case LT_CHAT_LLAMA2: out[0] = eos, out[1] = "[INST]"; break;
    case LT_CHAT_ALPACA: out[0] = eos, out[1] = "### Instruction:"; break;
    default: out[0] = eos; break;
    }
}

/* A Modelfile string argument: quoted, with backslashes and quotes escaped. */
static void quoted(char **buf, size_t *n, const char *s)
{
    cat(buf, n, "\"");
    for (; s && *s; s++)
        cat(buf, n, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
    cat(buf, n, "\"");
}

char *lt_modelfile_render(const lt_modelfile_opts *o)
{
    size_t n = 0;
    char *t = calloc(1, 1);
    char *tmpl = lt_modelfile_template(o->family, o->bos, o->eos);
    if (!tmpl) {
        free(t);
        return NULL;
    }
    cat(&t, &n, "# Modelfile for Ollama, written by lathe export (ollama create NAME -f THIS)\n");
    cat(&t, &n, "FROM %s\n", o->from);
    if (o->adapter)
        cat(&t, &n, "ADAPTER %s\n", o->adapter);
    cat(&t, &n, "TEMPLATE \"\"\"%s\"\"\"\n", tmpl);
    free(tmpl);
    const char *sys = o->system;
    if (!sys && o->family == LT_CHAT_ALPACA)
        sys = "Below is an instruction that describes a task. Write a response that "
              "appropriately completes the request.";
    if (sys) {
        cat(&t, &n, "SYSTEM ");
        quoted(&t, &n, sys);
        cat(&t, &n, "\n");
    }
    const char *st[3];
    stops(o->family, o->eos, st);
    for (int i = 0; i < 3; i++)
        if (st[i]) {
            cat(&t, &n, "PARAMETER stop ");
            quoted(&t, &n, st[i]);
            cat(&t, &n, "\n");
        }
    cat(&t, &n, "PARAMETER temperature 0.7\nPARAMETER top_p 0.9\nPARAMETER repeat_penalty 1.1\n");
    if (o->num_ctx > 0)
        cat(&t, &n, "PARAMETER num_ctx %lld\n", (long long)o->num_ctx);
    return t;
}

void lt_modelfile_from_tokenizer(const lt_tokenizer *tok, lt_modelfile_opts *o,
                                 char **system_buf)
{
    const char *tmpl = lt_tokenizer_chat_template(tok);
    o->family = tmpl ? lt_chat_detect(tmpl) : LT_CHAT_NONE;
    int b = lt_tokenizer_bos_id(tok), e = lt_tokenizer_eos_id(tok);
    o->bos = b >= 0 ? lt_tokenizer_piece(tok, b) : NULL;
    o->eos = e >= 0 ? lt_tokenizer_piece(tok, e) : NULL;
    *system_buf = NULL;
    if (o->family != LT_CHAT_CHATML)
        return;
    /* a ChatML template's default system message: what it renders for no messages */
    lt_chat_text ct;
    char err[LT_TOK_ERR_LEN];
    static const char pre[] = "<|im_start|>system\n", post[] = "<|im_end|>\n";
    if (lt_chat_render(tok, o->family, NULL, 0, false, &ct, err, sizeof(err)) != LT_TOK_OK)
        return;
    size_t lp = strlen(pre), lq = strlen(post);
    if (ct.n > lp + lq && !strncmp(ct.text, pre, lp) && !strcmp(ct.text + ct.n - lq, post) &&
        (*system_buf = strndup(ct.text + lp, ct.n - lp - lq)))
        o->system = *system_buf;
    lt_chat_text_free(&ct);
}

lt_model_status lt_modelfile_write(const lt_modelfile_opts *o, const char *path, char *err,
                                   size_t errlen)
{
    char *t = lt_modelfile_render(o);
    if (!t) {
        snprintf(err, errlen, "%s: out of memory", path);
        return LT_MODEL_ERR_OOM;
    }
    lt_model_status st = lt_export_write_file(path, t, strlen(t), err, errlen);
    free(t);
    return st;
}
