/*
 * data_signer.c - MinHash signatures computed while importing, on a worker thread, so that
 * `lathe data dedup` finds them stored and the second core works while the first parses.
 *
 * Double buffering: the import thread fills one batch of texts while the worker signs the
 * previous one; handing over waits only when the worker is behind. Only the import thread
 * touches the store. The signatures are the ones dedup computes with its default shingles
 * (word 5-grams), under the same parameter key.
 */
#include "data_signer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGNER_BATCH 2048

typedef struct batch {
    int64_t sample_id[SIGNER_BATCH];
    int64_t row[SIGNER_BATCH];
    int64_t resp_chars[SIGNER_BATCH];
    char hash[SIGNER_BATCH][33];
    char *text[SIGNER_BATCH];
    uint32_t (*sig)[LT_MINHASH_PERM];
    int n;
} batch;

struct lt_signer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool busy;      /* the worker holds a batch */
    bool stop;
    batch bufs[2];
    batch *filling; /* owned by the import thread */
    batch *working; /* owned by the worker while busy, then done */
    bool working_done;
    lt_shingle_opts sh;
};

static void sign_batch(lt_signer *s, batch *b)
{
    for (int i = 0; i < b->n; i++) {
        uint64_t *sh = NULL;
        size_t n = lt_shingles(b->text[i], strlen(b->text[i]), &s->sh, &sh);
        lt_minhash(sh, n, b->sig[i]);
        free(sh);
    }
}

static void *worker(void *arg)
{
    lt_signer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->busy && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->busy && s->stop)
            break;
        batch *b = s->working;
        pthread_mutex_unlock(&s->mu);
        sign_batch(s, b);
        pthread_mutex_lock(&s->mu);
        s->busy = false;
        s->working_done = true;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

const char *lt_signer_params(void) { return "w5:p128"; }

lt_signer *lt_signer_new(void)
{
    lt_signer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sh.ngram = 5;
    s->sh.unsorted = true;
    s->sh.normalized = true; /* the importer hands in normalized text */
    for (int k = 0; k < 2; k++) {
        s->bufs[k].sig = malloc(SIGNER_BATCH * sizeof *s->bufs[k].sig);
        if (!s->bufs[k].sig)
            goto free_signer;
    }
    s->filling = &s->bufs[0];
    s->working = &s->bufs[1];
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        goto free_signer;
    if (pthread_cond_init(&s->cv, NULL) != 0)
        goto destroy_mutex;
    if (pthread_create(&s->thread, NULL, worker, s) != 0)
        goto destroy_cond;
    return s;
destroy_cond:
    pthread_cond_destroy(&s->cv);
destroy_mutex:
    pthread_mutex_destroy(&s->mu);
free_signer:
    free(s->bufs[0].sig);
    free(s->bufs[1].sig);
    free(s);
    return NULL;
}

/* Stores the finished batch's signatures and empties it. */
static lt_data_status store_done(lt_signer *s, lt_store *st, int64_t dataset_id, batch *b)
{
    lt_data_status r = LT_DATA_OK;
    for (int i = 0; i < b->n; i++) {
        lt_store_signature g = {.sample_id = b->sample_id[i],
                                .row = b->row[i],
                                .text_hash = b->hash[i],
                                .n_response_chars = b->resp_chars[i],
                                .sig = b->sig[i],
                                .bytes = sizeof b->sig[i]};
        if (r == LT_DATA_OK &&
            lt_store_signature_put(st, dataset_id, lt_signer_params(), &g) != LT_STORE_OK)
            r = LT_DATA_STORE;
        free(b->text[i]);
    }
    b->n = 0;
    (void)s;
    return r;
}

/* Waits for the worker, takes its finished batch, hands it the filling one. */
static lt_data_status hand_over(lt_signer *s, lt_store *st, int64_t dataset_id, bool last)
{
    pthread_mutex_lock(&s->mu);
    while (s->busy)
        pthread_cond_wait(&s->cv, &s->mu);
    batch *done = s->working_done ? s->working : NULL;
    s->working_done = false;
    batch *next = s->filling;
    s->working = next;
    s->busy = next->n > 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    lt_data_status r = LT_DATA_OK;
    if (done)
        r = store_done(s, st, dataset_id, done);
    /* the other buffer (now empty) is the one to fill */
    s->filling = next == &s->bufs[0] ? &s->bufs[1] : &s->bufs[0];
    if (last && next->n > 0) {
        pthread_mutex_lock(&s->mu);
        while (s->busy)
            pthread_cond_wait(&s->cv, &s->mu);
        s->working_done = false;
        pthread_mutex_unlock(&s->mu);
        if (r == LT_DATA_OK)
            r = store_done(s, st, dataset_id, next);
    }
    return r;
}

lt_data_status lt_signer_add(lt_signer *s, lt_store *st, int64_t dataset_id,
                             const lt_store_sample *smp, const char *text)
{
    batch *b = s->filling;
    b->text[b->n] = strdup(text);
    if (!b->text[b->n])
        return LT_DATA_NOMEM;
    b->row[b->n] = smp->row;
    b->resp_chars[b->n] = smp->n_response_chars;
    snprintf(b->hash[b->n], sizeof b->hash[b->n], "%s", smp->text_hash);
    b->sample_id[b->n++] = smp->id;
    if (b->n < SIGNER_BATCH)
        return LT_DATA_OK;
    return hand_over(s, st, dataset_id, false);
}

lt_data_status lt_signer_flush(lt_signer *s, lt_store *st, int64_t dataset_id)
{
    return hand_over(s, st, dataset_id, true);
}

void lt_signer_free(lt_signer *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < s->bufs[k].n; i++)
            free(s->bufs[k].text[i]);
        free(s->bufs[k].sig);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
