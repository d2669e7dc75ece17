/*
 * llamacpp_ppl.c - lathe's perplexity of a text computed the way llama.cpp's llama-perplexity
 * computes it (its default mode, no --ppl-stride), so the two numbers are over the same
 * tokens in the same windows. Built and run by bench/llamacpp_check.sh.
 *
 * usage: llamacpp_ppl MODEL TEXT_FILE N_CTX
 *   MODEL: a Hugging Face folder, or a .gguf file (rewritten into a scratch folder with
 *   lt_gguf_to_hf in F32, i.e. lathe reads the very file llama.cpp is given).
 *
 * What llama-perplexity does, and this program repeats:
 *   - the text is the file with one trailing newline removed (its -f option);
 *   - it is tokenized once, whole, with the special tokens the vocabulary adds (bos when
 *     add_bos_token) and added-token text left as text;
 *   - at least 2 * N_CTX tokens are needed; the tokens are cut into floor(n / N_CTX) chunks
 *     of N_CTX tokens (the rest is dropped); each chunk is a fresh context whose first token
 *     is replaced by bos when the vocabulary adds bos;
 *   - in each chunk only the second half is scored: the logits at positions
 *     N_CTX/2 .. N_CTX-2 predict the tokens after them (N_CTX/2 - 1 tokens per chunk);
 *   - PPL = exp(mean negative log-likelihood), printed with the same +/- as llama.cpp
 *     (standard error of the mean log-probability, times PPL).
 */
#define _XOPEN_SOURCE 700
#include "compute.h"
#include "export/gguf_model.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static char *read_text(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len + 65536 > cap) {
            char *nb = realloc(buf, cap = len + 65536 + cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    if (len > 0 && buf[len - 1] == '\n') /* llama.cpp's -f drops one trailing newline */
        len--;
    *n = len;
    return buf;
}

int main(int argc, char **argv)
{
    char err[1024], tmp[] = "/tmp/lathe-ppl-XXXXXX";
    int rc = 1;
    if (argc != 4 || atoi(argv[3]) < 4) {
        fprintf(stderr, "usage: llamacpp_ppl MODEL_DIR|MODEL.gguf TEXT_FILE N_CTX (>= 4)\n");
        return 2;
    }
    const char *model_path = argv[1], *dir = model_path;
    const int n_ctx = atoi(argv[3]), first = n_ctx / 2;
    bool staged = false;
    lt_device *dev = NULL;
    lt_model *m = NULL;
    lt_tokenizer *tok = NULL;
    lt_forward *fw = NULL;
    lt_tok_ids ids = {0};
    float *logits = NULL;
    int32_t *win = NULL;
    size_t text_n = 0;
    char *text = read_text(argv[2], &text_n);
    if (!text) {
        perror(argv[2]);
        return 1;
    }
    if (lt_gguf_is_path(model_path)) {
        if (!mkdtemp(tmp)) {
            perror("mkdtemp");
            goto out;
        }
        staged = true;
        dir = tmp;
        if (lt_gguf_to_hf(model_path, tmp, LT_GGML_F32, err, sizeof(err)) != LT_MODEL_OK) {
            fprintf(stderr, "%s: %s\n", model_path, err);
            goto out;
        }
    }
    if (lt_tokenizer_load_dir(dir, &tok, err, sizeof(err)) != LT_TOK_OK) {
        fprintf(stderr, "%s: %s\n", model_path, err);
        goto out;
    }
    if (!(dev = lt_device_open("cpu", 0, err, sizeof(err)))) {
        fprintf(stderr, "cpu device: %s\n", err);
        goto out;
    }
    if (lt_model_load(dir, dev, LT_MODEL_DTYPE_STORED, &m, err, sizeof(err)) != LT_MODEL_OK) {
        fprintf(stderr, "%s: %s\n", model_path, err);
        goto out;
    }
    if (lt_tokenizer_encode(tok, text, text_n, LT_TOK_ADD_SPECIAL | LT_TOK_NO_SPECIAL_SPLIT, &ids,
                            err, sizeof(err)) != LT_TOK_OK) {
        fprintf(stderr, "%s: %s\n", argv[2], err);
        goto out;
    }
    const int bos = lt_tokenizer_bos_id(tok);
    const bool add_bos = bos >= 0 && ids.n > 0 && ids.ids[0] == bos;
    if (ids.n < 2 * (size_t)n_ctx) {
        fprintf(stderr, "%s: %zu tokens; a context of %d needs at least %d\n", argv[2], ids.n,
                n_ctx, 2 * n_ctx);
        goto out;
    }
    const int64_t V = lt_model_get_config(m)->vocab, n_chunk = (int64_t)ids.n / n_ctx;
    lt_forward_opts fo = {.max_batch = 1, .max_seq = n_ctx};
    if (lt_forward_new(m, &fo, &fw, err, sizeof(err)) != LT_MODEL_OK) {
        fprintf(stderr, "forward workspace: %s\n", err);
        goto out;
    }
    logits = malloc((size_t)n_ctx * (size_t)V * sizeof(float));
    win = malloc((size_t)n_ctx * sizeof(int32_t));
    if (!logits || !win) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    double nll = 0, nll2 = 0;
    int64_t count = 0;
    for (int64_t c = 0; c < n_chunk; c++) {
        const int32_t *t = ids.ids + c * n_ctx;
        memcpy(win, t, (size_t)n_ctx * sizeof(int32_t));
        if (add_bos)
            win[0] = bos;
        lt_tensor *lg = NULL;
        if (lt_forward_run(fw, win, 1, n_ctx, NULL, &lg, err, sizeof(err)) != LT_MODEL_OK ||
            lt_tensor_download_f32(lg, logits, (int64_t)n_ctx * V) != LT_OK) {
            fprintf(stderr, "forward pass: %s\n", err);
            goto out;
        }
        for (int j = first; j < n_ctx - 1; j++) {
            const float *x = logits + (size_t)j * (size_t)V;
            double mx = x[0], s = 0;
            for (int64_t v = 1; v < V; v++)
                mx = x[v] > mx ? x[v] : mx;
            for (int64_t v = 0; v < V; v++)
                s += exp((double)x[v] - mx);
            double lp = (double)x[t[j + 1]] - mx - log(s);
            nll -= lp;
            nll2 += lp * lp;
            count++;
        }
    }
    nll /= (double)count;
    nll2 = nll2 / (double)count - nll * nll;
    const double ppl = exp(nll);
    printf("lathe: %zu tokens (add_bos %s), %lld chunks of %d, %lld scored\n", ids.n,
           add_bos ? "yes" : "no", (long long)n_chunk, n_ctx, (long long)count);
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl,
           nll2 > 0 ? sqrt(nll2 / (double)(count - 1)) * ppl : 0.0);
    rc = 0;
out:
    free(win);
    free(logits);
    lt_tok_ids_free(&ids);
    lt_forward_free(fw);
    lt_model_free(m);
    lt_device_close(dev);
    lt_tokenizer_free(tok);
    free(text);
    if (staged)
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
