/*
 * data_signer.h - MinHash signatures computed on a worker thread during import and stored
 * under the key dedup uses for its default shingles. Internal to pipeline/data.
 *
 * Only the calling (import) thread uses the store: lt_signer_add and lt_signer_flush write
 * the signatures of finished batches inside the caller's open transaction.
 */
#ifndef LATHE_DATA_SIGNER_H
#define LATHE_DATA_SIGNER_H

#include "data_impl.h"

typedef struct lt_signer lt_signer;

/* The parameter key the signatures are stored under ("w5:p128"). */
const char *lt_signer_params(void);
/* Starts the worker. NULL when out of memory or threads (import then goes on without). */
lt_signer *lt_signer_new(void);
/* Queues one stored sample (id, row, text_hash, n_response_chars are used) with its dedup
 * text after lt_text_normalize (copied). */
lt_data_status lt_signer_add(lt_signer *s, lt_store *st, int64_t dataset_id,
                             const lt_store_sample *smp, const char *text);
/* Signs and stores everything queued. Call before the final commit. */
lt_data_status lt_signer_flush(lt_signer *s, lt_store *st, int64_t dataset_id);
/* Stops the worker; queued texts not flushed are dropped. */
void lt_signer_free(lt_signer *s);

#endif
