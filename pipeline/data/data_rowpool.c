/*
 * data_rowpool.c - the per-row work of an import (JSON parsing, validation, normalization,
 * hashing, MinHash signature) on worker threads, so the reading and writing thread only
 * reads bytes and talks to SQLite.
 *
 * lt_row_process touches only its job and read-only context: any thread may run it. The
 * pool hands out rows of one batch by an atomic counter; the batch is done when every
 * worker has checked in. Workers never touch the store.
 */
#include "data_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lt_row_job_clear(lt_row_job *j)
{
    if (j->raw_owned)
        free(j->raw);
    cJSON_Delete(j->json);
    lt_norm_sample_free(&j->ns);
    memset(j, 0, sizeof *j);
}

void lt_row_process(const lt_row_ctx *c, lt_row_job *j)
{
    char reason[512];
    j->good = false;
    if (j->kind == LT_READ_BAD)
        return; /* the reader's reason stands */
    if (j->kind == LT_READ_RAW) {
        if (lt_parse_row(j->raw, j->raw_len, j->line, &j->json, j->reason, sizeof j->reason,
                         &j->column) != LT_READ_ROW)
            return;
    }
    if (!lt_format_normalize(j->json, c->format, c->map, &j->ns, reason, sizeof reason)) {
        snprintf(j->reason, sizeof j->reason, "line %lld: %s", (long long)j->line, reason);
        goto free_json;
    }
    if (!j->ns.warning[0] && j->reason[0]) /* the parser's warning (lt_parse_row) */
        snprintf(j->ns.warning, sizeof j->ns.warning, "%.200s", j->reason);
    if (c->max_chars > 0 && j->ns.n_chars > c->max_chars) {
        snprintf(j->reason, sizeof j->reason,
                 "line %lld: row has %lld characters, over the limit of %lld (--max-chars)",
                 (long long)j->line, (long long)j->ns.n_chars, (long long)c->max_chars);
        lt_norm_sample_free(&j->ns);
        goto free_json;
    }
    size_t tl = strlen(j->ns.text);
    char *norm = malloc(tl + 1);
    if (!norm) {
        snprintf(j->reason, sizeof j->reason, "line %lld: out of memory", (long long)j->line);
        lt_norm_sample_free(&j->ns);
        goto free_json;
    }
    size_t nl = lt_text_normalize(j->ns.text, tl, norm);
    lt_hash128_hex(norm, nl, j->hash);
    if (c->sign) {
        lt_shingle_opts so = {.ngram = 5, .unsorted = true, .normalized = true};
        uint64_t *sh = NULL;
        size_t n = lt_shingles(norm, nl, &so, &sh);
        lt_minhash(sh, n, j->sig);
        free(sh);
        j->has_sig = true;
    }
    free(norm);
    free(j->ns.text); /* only the hash and signature needed it */
    j->ns.text = NULL;
    j->good = true;
free_json:
    cJSON_Delete(j->json);
    j->json = NULL;
}

#define MAX_WORKERS 64
#define CHUNK_ROWS 8

struct lt_row_pool {
    pthread_t th[MAX_WORKERS];
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    unsigned generation;   /* bumped for every batch */
    int checked_in;        /* workers finished with the current batch */
    bool stop;
    const lt_row_ctx *ctx;
    lt_row_job *jobs;
    int n_jobs;
    int next;              /* next job index, taken atomically */
};

static void *worker(void *arg)
{
    lt_row_pool *p = arg;
    unsigned seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->generation == seen && !p->stop)
            pthread_cond_wait(&p->cv_start, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        const lt_row_ctx *c = p->ctx;
        lt_row_job *jobs = p->jobs;
        int n = p->n_jobs;
        pthread_mutex_unlock(&p->mu);
        for (;;) {
            int i = __atomic_fetch_add(&p->next, CHUNK_ROWS, __ATOMIC_RELAXED);
            if (i >= n)
                break;
            for (int k = i; k < i + CHUNK_ROWS && k < n; k++)
                lt_row_process(c, &jobs[k]);
        }
        pthread_mutex_lock(&p->mu);
        if (++p->checked_in == p->n_threads)
            pthread_cond_signal(&p->cv_done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

lt_row_pool *lt_row_pool_new(int n_threads)
{
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > MAX_WORKERS)
        n_threads = MAX_WORKERS;
    lt_row_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto free_pool;
    if (pthread_cond_init(&p->cv_start, NULL) != 0)
        goto destroy_mutex;
    if (pthread_cond_init(&p->cv_done, NULL) != 0)
        goto destroy_start;
    for (int i = 0; i < n_threads; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p) != 0)
            break;
        p->n_threads++;
    }
    if (p->n_threads > 0)
        return p;
    pthread_cond_destroy(&p->cv_done);
destroy_start:
    pthread_cond_destroy(&p->cv_start);
destroy_mutex:
    pthread_mutex_destroy(&p->mu);
free_pool:
    free(p);
    return NULL;
}

void lt_row_pool_run(lt_row_pool *p, const lt_row_ctx *c, lt_row_job *jobs, int n)
{
    pthread_mutex_lock(&p->mu);
    p->ctx = c;
    p->jobs = jobs;
    p->n_jobs = n;
    p->next = 0;
    p->checked_in = 0;
    p->generation++;
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
}

void lt_row_pool_wait(lt_row_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->checked_in < p->n_threads)
        pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void lt_row_pool_free(lt_row_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_start);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
