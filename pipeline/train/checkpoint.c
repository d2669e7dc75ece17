/*
 * checkpoint.c - writing and reading training checkpoints (format in checkpoint.h).
 *
 * Reading never trusts the file: the checksum is checked over the whole file before any
 * field is used, and every length is checked against what is left.
 */
#include "train/checkpoint.h"

#include "data/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = {'L', 'A', 'T', 'H', 'E', 'C', 'K', 'P'};

typedef struct wr {
    FILE *f;
    lt_sha256 h;
    bool ok;
} wr;

static void put(wr *w, const void *p, size_t n)
{
    if (!w->ok || n == 0)
        return;
    lt_sha256_update(&w->h, p, n);
    if (fwrite(p, 1, n, w->f) != n)
        w->ok = false;
}

static void put_u32(wr *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 4);
}

static void put_u64(wr *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 8);
}

static void put_f64(wr *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(w, v);
}

static void put_state(wr *w, const lt_ckpt_state *s)
{
    put_u64(w, (uint64_t)s->step);
    put_u64(w, (uint64_t)s->adam_step);
    put_u64(w, (uint64_t)s->epoch);
    put_u64(w, (uint64_t)s->row);
    put_u64(w, (uint64_t)s->round);
    put_u64(w, s->rng);
    put_u64(w, (uint64_t)s->tokens_seen);
    put_f64(w, s->best_val);
    put_u64(w, (uint64_t)s->best_step);
    put_u64(w, (uint64_t)s->evals_since_best);
    put_u64(w, (uint64_t)s->nan_run);
    put_u64(w, (uint64_t)s->n_hist);
    for (int i = 0; i < LT_CKPT_HISTORY; i++)
        put_f64(w, s->hist_val[i]);
    for (int i = 0; i < LT_CKPT_HISTORY; i++)
        put_f64(w, s->hist_train[i]);
    put_f64(w, s->train_loss_sum);
    put_u64(w, (uint64_t)s->train_loss_n);
    char h[64] = {0};
    memcpy(h, s->config_hash, strnlen(s->config_hash, 64));
    put(w, h, 64);
}

static void fsync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

bool lt_ckpt_write(const char *path, const lt_ckpt_state *s, const lt_ckpt_tensor *ts, int n,
                   char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    wr w;
    memset(&w, 0, sizeof(w));
    w.f = fopen(tmp, "wb");
    w.ok = true;
    void *buf = NULL;
    size_t buf_cap = 0;
    if (!w.f) {
        snprintf(err, errlen, "%s: cannot create (%s)", tmp, strerror(errno));
        return false;
    }
    lt_sha256_init(&w.h);
    put(&w, MAGIC, 8);
    put_u32(&w, LT_CKPT_VERSION);
    put_u32(&w, (uint32_t)n);
    put_state(&w, s);
    for (int i = 0; i < n && w.ok; i++) {
        size_t bytes = lt_tensor_bytes(ts[i].t);
        if (bytes > buf_cap) {
            void *nb = realloc(buf, bytes);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory for tensor %s", path, ts[i].name);
                goto fail;
            }
            buf = nb;
            buf_cap = bytes;
        }
        if (lt_tensor_download(ts[i].t, buf, bytes) != LT_OK) {
            snprintf(err, errlen, "%s: cannot read tensor %s from the device", path, ts[i].name);
            goto fail;
        }
        size_t nl = strlen(ts[i].name);
        put_u32(&w, (uint32_t)nl);
        put(&w, ts[i].name, nl);
        put_u32(&w, (uint32_t)lt_tensor_dtype(ts[i].t));
        int nd = lt_tensor_ndim(ts[i].t);
        put_u32(&w, (uint32_t)nd);
        for (int d = 0; d < nd; d++)
            put_u64(&w, (uint64_t)lt_tensor_dim(ts[i].t, d));
        put_u64(&w, bytes);
        put(&w, buf, bytes);
    }
    uint8_t digest[32];
    lt_sha256_final(&w.h, digest, NULL);
    if (w.ok && fwrite(digest, 1, 32, w.f) != 32)
        w.ok = false;
    if (!w.ok || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) {
        snprintf(err, errlen, "%s: write failed (%s); the previous checkpoint is intact", tmp,
                 strerror(errno ? errno : EIO));
        goto fail;
    }
    if (fclose(w.f) != 0) {
        w.f = NULL;
        snprintf(err, errlen, "%s: close failed (%s)", tmp, strerror(errno));
        goto fail;
    }
    w.f = NULL;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: rename failed (%s)", path, strerror(errno));
        goto fail;
    }
    fsync_dir_of(path);
    free(buf);
    return true;
fail:
    if (w.f)
        fclose(w.f);
    unlink(tmp);
    free(buf);
    return false;
}

/* ---- reading ---- */

typedef struct rd {
    FILE *f;
    uint64_t left; /* bytes before the checksum still unread */
    bool ok;
} rd;

static bool get(rd *r, void *p, size_t n)
{
    if (!r->ok || n > r->left || fread(p, 1, n, r->f) != n) {
        r->ok = false;
        return false;
    }
    r->left -= n;
    return true;
}

static uint64_t get_u64(rd *r)
{
    uint8_t b[8] = {0};
    get(r, b, 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static uint32_t get_u32(rd *r)
{
    uint8_t b[4] = {0};
    get(r, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static double get_f64(rd *r)
{
    uint64_t v = get_u64(r);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* Opens, checks the checksum over the whole file, and reads magic, version, counts and
 * state. On success r is positioned at the first tensor. */
static bool open_verified(const char *path, rd *r, uint32_t *n_tensors, lt_ckpt_state *s,
                          char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->f = fopen(path, "rb");
    if (!r->f) {
        snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return false;
    }
    struct stat sb;
    if (fstat(fileno(r->f), &sb) != 0 || sb.st_size < 8 + 8 + 32) {
        snprintf(err, errlen, "%s: too short to be a lathe checkpoint", path);
        goto fail;
    }
    uint64_t body = (uint64_t)sb.st_size - 32;
    lt_sha256 h;
    lt_sha256_init(&h);
    uint8_t chunk[1 << 16];
    uint64_t left = body;
    while (left) {
        size_t k = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
        if (fread(chunk, 1, k, r->f) != k) {
            snprintf(err, errlen, "%s: read error", path);
            goto fail;
        }
        lt_sha256_update(&h, chunk, k);
        left -= k;
    }
    uint8_t want[32], got[32];
    lt_sha256_final(&h, got, NULL);
    if (fread(want, 1, 32, r->f) != 32 || memcmp(want, got, 32) != 0) {
        snprintf(err, errlen,
                 "%s: checksum mismatch: the checkpoint is damaged (truncated or altered) and "
                 "was not loaded",
                 path);
        goto fail;
    }
    rewind(r->f);
    r->left = body;
    r->ok = true;
    char magic[8];
    if (!get(r, magic, 8) || memcmp(magic, MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a lathe checkpoint (bad magic)", path);
        goto fail;
    }
    uint32_t ver = get_u32(r);
    if (ver != LT_CKPT_VERSION) {
        snprintf(err, errlen, "%s: checkpoint version %u, this lathe reads version %d", path,
                 ver, LT_CKPT_VERSION);
        goto fail;
    }
    *n_tensors = get_u32(r);
    memset(s, 0, sizeof(*s));
    s->step = (int64_t)get_u64(r);
    s->adam_step = (int64_t)get_u64(r);
    s->epoch = (int64_t)get_u64(r);
    s->row = (int64_t)get_u64(r);
    s->round = (int64_t)get_u64(r);
    s->rng = get_u64(r);
    s->tokens_seen = (int64_t)get_u64(r);
    s->best_val = get_f64(r);
    s->best_step = (int64_t)get_u64(r);
    s->evals_since_best = (int64_t)get_u64(r);
    s->nan_run = (int64_t)get_u64(r);
    s->n_hist = (int64_t)get_u64(r);
    for (int i = 0; i < LT_CKPT_HISTORY; i++)
        s->hist_val[i] = get_f64(r);
    for (int i = 0; i < LT_CKPT_HISTORY; i++)
        s->hist_train[i] = get_f64(r);
    s->train_loss_sum = get_f64(r);
    s->train_loss_n = (int64_t)get_u64(r);
    get(r, s->config_hash, 64);
    s->config_hash[64] = '\0';
    if (!r->ok || s->n_hist < 0 || s->n_hist > LT_CKPT_HISTORY) {
        snprintf(err, errlen, "%s: the state block is malformed", path);
        goto fail;
    }
    return true;
fail:
    fclose(r->f);
    r->f = NULL;
    return false;
}

bool lt_ckpt_read_state(const char *path, lt_ckpt_state *s, char *err, size_t errlen)
{
    rd r;
    uint32_t n;
    if (!open_verified(path, &r, &n, s, err, errlen))
        return false;
    fclose(r.f);
    return true;
}

bool lt_ckpt_load(const char *path, const lt_ckpt_tensor *ts, int n, char *err, size_t errlen)
{
    rd r;
    uint32_t nt;
    lt_ckpt_state s;
    if (!open_verified(path, &r, &nt, &s, err, errlen))
        return false;
    bool ok = false;
    void *buf = NULL;
    size_t cap = 0;
    bool *seen = calloc((size_t)(n > 0 ? n : 1), sizeof(bool));
    if (!seen) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    for (uint32_t k = 0; k < nt; k++) {
        char name[1024];
        uint32_t nl = get_u32(&r);
        if (!r.ok || nl == 0 || nl >= sizeof(name) || !get(&r, name, nl)) {
            snprintf(err, errlen, "%s: tensor %u: bad name", path, k);
            goto done;
        }
        name[nl] = '\0';
        uint32_t dtype = get_u32(&r), nd = get_u32(&r);
        int64_t dims[8];
        if (!r.ok || nd > 8) {
            snprintf(err, errlen, "%s: tensor %s: bad shape", path, name);
            goto done;
        }
        for (uint32_t d = 0; d < nd; d++)
            dims[d] = (int64_t)get_u64(&r);
        uint64_t bytes = get_u64(&r);
        int idx = -1;
        for (int i = 0; i < n; i++)
            if (strcmp(ts[i].name, name) == 0)
                idx = i;
        if (idx < 0) {
            snprintf(err, errlen,
                     "%s: holds tensor %s, which this run does not train (a checkpoint of a "
                     "different method or model?)",
                     path, name);
            goto done;
        }
        lt_tensor *t = ts[idx].t;
        bool same = r.ok && dtype == (uint32_t)lt_tensor_dtype(t) &&
                    (int)nd == lt_tensor_ndim(t) && bytes == lt_tensor_bytes(t);
        for (uint32_t d = 0; same && d < nd; d++)
            same = dims[d] == lt_tensor_dim(t, (int)d);
        if (!same) {
            snprintf(err, errlen, "%s: tensor %s has another dtype or shape than the model's",
                     path, name);
            goto done;
        }
        if (bytes > cap) {
            void *nb = realloc(buf, (size_t)bytes);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory for tensor %s", path, name);
                goto done;
            }
            buf = nb;
            cap = (size_t)bytes;
        }
        if (!get(&r, buf, (size_t)bytes) || lt_tensor_upload(t, buf, (size_t)bytes) != LT_OK) {
            snprintf(err, errlen, "%s: cannot load tensor %s", path, name);
            goto done;
        }
        seen[idx] = true;
    }
    for (int i = 0; i < n; i++)
        if (!seen[i]) {
            snprintf(err, errlen, "%s: tensor %s is missing", path, ts[i].name);
            goto done;
        }
    ok = true;
done:
    free(seen);
    free(buf);
    fclose(r.f);
    return ok;
}
