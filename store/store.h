/*
 * store.h - the workspace and its SQLite database (lathe.db): opening, schema migrations,
 * transactions, and the statements the data workbench needs.
 *
 * A workspace is a folder (--workspace DIR, LATHE_HOME, or ./.lathe) holding lathe.db plus
 * checkpoints, exports and logs. The database runs in WAL mode so one process writes while
 * others read. The schema is versioned with PRAGMA user_version; opening an older database
 * copies it to lathe.db.bak-vN and migrates it forward; a newer one is refused.
 *
 * The store knows SQL and the schema. It knows nothing about tensors, tokenizers or the
 * terminal. Every statement is prepared; strings handed in are bound, never pasted.
 *
 * Ownership: lt_store_open returns a handle the caller frees with lt_store_close. Strings
 * returned inside structs filled by *_next / *_get functions belong to the store and stay valid
 * until the next call on the same iterator (or on the store, for *_get); copy them to keep them.
 */
#ifndef LATHE_STORE_H
#define LATHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lt_store lt_store;
typedef struct lt_store_iter lt_store_iter;

typedef enum lt_store_status {
    LT_STORE_OK = 0,
    LT_STORE_NOT_FOUND,  /* the named thing does not exist */
    LT_STORE_EXISTS,     /* a unique name is taken */
    LT_STORE_IO,         /* the folder or file could not be created or read */
    LT_STORE_TOO_NEW,    /* the database was written by a newer lathe */
    LT_STORE_BUSY,       /* another process holds the lock past busy_timeout */
    LT_STORE_SQL,        /* SQLite reported an error (message says which statement) */
    LT_STORE_DONE,       /* an iterator has no more rows */
} lt_store_status;

const char *lt_store_status_str(lt_store_status s);

/* The schema version this build writes. */
int lt_store_schema_version(void);

/* Resolves the workspace folder: dir if non-NULL and non-empty, else $LATHE_HOME, else
 * ".lathe". Returns a pointer to one of those strings (not owned). */
const char *lt_store_workspace_resolve(const char *dir);

/*
 * Opens (creating when needed) the workspace folder and its lathe.db, applies pending
 * migrations (backing up first), and removes half-written imports left by processes that
 * died. OUT *out: the handle, freed with lt_store_close. err gets a sentence on failure.
 */
lt_store_status lt_store_open(const char *workspace, lt_store **out, char *err, size_t errlen);
void lt_store_close(lt_store *st);

/* The workspace folder this store was opened on (owned by the store). */
const char *lt_store_workspace(const lt_store *st);
/* The last SQLite error message (owned by the store). */
const char *lt_store_errmsg(const lt_store *st);

lt_store_status lt_store_begin(lt_store *st);
lt_store_status lt_store_commit(lt_store *st);
lt_store_status lt_store_rollback(lt_store *st);

/* Gives the free pages of the database (left by a removed import) back to the file system,
 * so an abandoned import does not leave a large file behind. Best effort, outside a
 * transaction. */
void lt_store_release_space(lt_store *st);
/* Removes every version still marked 'building' whose process is gone (or every one when
 * all is true), with its samples, files and issues, then datasets with no finished version.
 * OUT *n_removed (may be NULL): versions removed. Called by lt_store_open. */
lt_store_status lt_store_cleanup_partial(lt_store *st, bool all, int *n_removed);

/* ---- datasets and versions ---- */

typedef struct lt_store_version {
    int64_t dataset_id;
    int64_t version_id;
    int version;          /* 1, 2, ... within the dataset */
    int64_t parent_id;    /* 0 when none */
    const char *name;     /* dataset name */
    const char *kind;     /* import, append, dedup, filter */
    const char *format;   /* detected sample format */
    const char *params;   /* JSON of the options that made it */
    int64_t n_rows;
    int64_t n_issues;
    int64_t created_at;   /* unix seconds */
} lt_store_version;

/* Finds a dataset by name; OUT *dataset_id. LT_STORE_NOT_FOUND when absent or unfinished. */
lt_store_status lt_store_dataset_find(lt_store *st, const char *name, int64_t *dataset_id);
/* Creates a dataset (status 'building' until its first version finishes). */
lt_store_status lt_store_dataset_create(lt_store *st, const char *name, int64_t *dataset_id);

/* Looks a version up: version 0 means the latest finished one. Fills *v (strings owned by
 * the store, valid until the next lt_store_version_get on st). */
lt_store_status lt_store_version_get(lt_store *st, const char *name, int version,
                                     lt_store_version *v);

/* Starts a new version of a dataset marked 'building' with this process's pid.
 * OUT *version_id, *version (the number). parent_id 0 for none. */
lt_store_status lt_store_version_create(lt_store *st, int64_t dataset_id, int64_t parent_id,
                                        const char *kind, const char *params,
                                        int64_t *version_id, int *version);
/* Marks a version finished with its counts and format; marks its dataset finished. */
lt_store_status lt_store_version_finish(lt_store *st, int64_t version_id, const char *format,
                                        int64_t n_rows, int64_t n_issues);
/* Deletes a version and what it introduced (used when an import is abandoned). */
lt_store_status lt_store_version_delete(lt_store *st, int64_t version_id);

/* Makes every member of from_version a member of to_version, except samples recorded as
 * removed in to_version (dedup_removals or filter_drops). OUT *n_copied. */
lt_store_status lt_store_version_copy_members(lt_store *st, int64_t from_version,
                                              int64_t to_version, int64_t *n_copied);

/* Makes an unfinished appended version the dataset's newest, inside the caller's write
 * transaction (BEGIN IMMEDIATE, so no other version can finish meanwhile). When another version
 * of the dataset finished since this one started, its members replace those this version
 * inherited from its old parent (the samples this version introduced stay members) and
 * parent_id points at it; the rows it introduced (row indexes first_row and up) move past any
 * row index another version took meanwhile; the version number moves past every other
 * version's. OUT *version: the number after the move. Without it, two appends that started from
 * the same parent would each leave out the other's rows. */
lt_store_status lt_store_version_rebase(lt_store *st, int64_t version_id, int64_t first_row,
                                        int *version);

/* Iterates the datasets with their latest finished version. */
lt_store_status lt_store_datasets_iter(lt_store *st, lt_store_iter **it);
lt_store_status lt_store_datasets_next(lt_store_iter *it, lt_store_version *v);

/* ---- files, samples and issues ---- */

lt_store_status lt_store_file_add(lt_store *st, int64_t version_id, const char *path,
                                  int64_t *file_id);
lt_store_status lt_store_file_finish(lt_store *st, int64_t file_id, int64_t size_bytes,
                                     const char *sha256_hex, int64_t n_rows, int64_t n_issues);

typedef struct lt_store_sample {
    int64_t id;
    int64_t row;          /* row index within the dataset, stable across versions */
    int64_t version_id;   /* the version that introduced it */
    int64_t file_id;
    int64_t line;
    const char *format;
    const char *data;     /* normalized sample JSON */
    const char *text_hash;/* hex hash of the normalized text (exact dedup) */
    int64_t n_chars;      /* characters (code points) over all fields */
    int64_t n_response_chars;
    int n_turns;
    int flags;            /* LT_SAMPLE_FLAG_* from the pipeline */
    const char *split;    /* train/val/test for the iterated version, or NULL */
    const char *path;     /* source file path (sample_get only) */
} lt_store_sample;

/* Inserts a sample and makes it a member of version_id. OUT *sample_id (may be NULL). */
lt_store_status lt_store_sample_add(lt_store *st, int64_t dataset_id, int64_t version_id,
                                    const lt_store_sample *s, int64_t *sample_id);
/* Fetches the sample with row index row of a dataset if it is a member of version_id. */
lt_store_status lt_store_sample_get(lt_store *st, int64_t version_id, int64_t row,
                                    lt_store_sample *s);
/* Fetches a sample by id (no membership check). */
lt_store_status lt_store_sample_get_id(lt_store *st, int64_t sample_id, lt_store_sample *s);
/* Iterates members of a version in row order; split filters by split name (NULL for all). */
lt_store_status lt_store_samples_iter(lt_store *st, int64_t version_id, const char *split,
                                      lt_store_iter **it);
lt_store_status lt_store_samples_next(lt_store_iter *it, lt_store_sample *s);
/* Iterates the sample ids of a version's members in increasing order. */
lt_store_status lt_store_member_ids_iter(lt_store *st, int64_t version_id, lt_store_iter **it);
lt_store_status lt_store_member_ids_next(lt_store_iter *it, int64_t *sample_id);
/* Iterates members of a version in row order without their JSON (data is NULL): id, row,
 * text_hash, n_chars, n_response_chars, n_turns, flags. Cheaper for dedup and stats. */
lt_store_status lt_store_members_iter(lt_store *st, int64_t version_id, lt_store_iter **it);
lt_store_status lt_store_members_next(lt_store_iter *it, lt_store_sample *s);
/* Number of members of a version. */
lt_store_status lt_store_samples_count(lt_store *st, int64_t version_id, int64_t *n);
/* Highest row index used in a dataset, -1 if none. */
lt_store_status lt_store_rows_max(lt_store *st, int64_t dataset_id, int64_t *max_row);

typedef struct lt_store_issue {
    int64_t id;
    int64_t version_id;
    const char *path;
    int64_t line;
    int64_t column;       /* byte column, 1-based; 0 when not known */
    const char *severity; /* "error" (row dropped) or "warning" (row kept) */
    const char *reason;
    const char *raw;      /* raw text, possibly truncated */
    int64_t row;          /* row index of the kept sample for warnings, -1 otherwise */
} lt_store_issue;

lt_store_status lt_store_issue_add(lt_store *st, int64_t version_id, int64_t file_id,
                                   const lt_store_issue *is);
/* Issues recorded by every version up to and including version_id's import lineage
 * (all versions of the dataset numbered <= the given one). */
lt_store_status lt_store_issues_iter(lt_store *st, int64_t dataset_id, int version,
                                     lt_store_iter **it);
lt_store_status lt_store_issues_next(lt_store_iter *it, lt_store_issue *is);

/* ---- dedup, filters, splits ---- */

/* A stored MinHash signature with what dedup needs of its sample. */
typedef struct lt_store_signature {
    int64_t sample_id;
    int64_t row;
    const char *text_hash;
    int64_t n_response_chars;
    const void *sig;
    size_t bytes;
} lt_store_signature;

/* Stores one sample's signature under a parameter key (e.g. "w5:p128"). */
lt_store_status lt_store_signature_put(lt_store *st, int64_t dataset_id, const char *params,
                                       const lt_store_signature *g);
/* Iterates every stored signature of a dataset under params, in sample id order (which is
 * row order). */
lt_store_status lt_store_signatures_iter(lt_store *st, int64_t dataset_id, const char *params,
                                         lt_store_iter **it);
lt_store_status lt_store_signatures_next(lt_store_iter *it, lt_store_signature *s);

lt_store_status lt_store_dedup_removal_add(lt_store *st, int64_t version_id, int64_t sample_id,
                                           int64_t cluster, int64_t kept_sample_id,
                                           double similarity, const char *kind);
/* Counts removals by kind in a version; OUT *n_exact, *n_near. */
lt_store_status lt_store_dedup_counts(lt_store *st, int64_t version_id, int64_t *n_exact,
                                      int64_t *n_near, int64_t *n_clusters);
/* Counts dedup removals over a dataset's versions up to version_id, for inspect. */
lt_store_status lt_store_dedup_counts_lineage(lt_store *st, int64_t dataset_id, int version,
                                              int64_t *n_exact, int64_t *n_near, bool *ran);

lt_store_status lt_store_filter_drop_add(lt_store *st, int64_t version_id, int64_t sample_id,
                                         const char *rule);

/* Assigns a split to a sample for a version (replacing an earlier one). */
lt_store_status lt_store_split_set(lt_store *st, int64_t version_id, int64_t sample_id,
                                   const char *split, int64_t seed);
lt_store_status lt_store_split_clear(lt_store *st, int64_t version_id);

void lt_store_iter_free(lt_store_iter *it);

/* ---- training runs, metrics, checkpoints, events and control (store_runs.c) ---- */

typedef struct lt_store_run {
    int64_t id;
    const char *name;          /* may be NULL */
    const char *config;        /* canonical config JSON */
    const char *method;        /* full, freeze, lora */
    const char *model_path;
    const char *model_hash;
    int64_t dataset_version_id; /* 0 when none */
    const char *dataset_hash;
    const char *device;
    const char *status;        /* queued | running | paused | stopped | done | failed */
    int64_t pid;
    const char *message;       /* last status message, may be NULL */
    int64_t created_at, started_at, ended_at; /* unix seconds, 0 when not yet */
} lt_store_run;

/* Creates a run with status 'queued' from r's config, method, model, dataset and device
 * fields. OUT *run_id. */
lt_store_status lt_store_run_create(lt_store *st, const lt_store_run *r, int64_t *run_id);
/* Fetches a run. OUT *it holds the row: r's strings stay valid until lt_store_iter_free(*it)
 * (free it on success; on failure *it is NULL). */
lt_store_status lt_store_run_get(lt_store *st, int64_t run_id, lt_store_iter **it,
                                 lt_store_run *r);
/* Finds a run by its id (digits) or name. OUT *run_id. */
lt_store_status lt_store_run_find(lt_store *st, const char *id_or_name, int64_t *run_id);
/* Sets status (and message when non-NULL, pid when > 0). 'running' sets started_at the first
 * time; stopped, done and failed set ended_at, running clears it. */
lt_store_status lt_store_run_set_status(lt_store *st, int64_t run_id, const char *status,
                                        const char *message, int64_t pid);
/* Marks every run whose process is gone 'failed' with the message "process gone (pid N)":
 * runs 'running' or 'paused' whose pid no longer exists on this machine (killed, crashed,
 * the machine rebooted). lt_store_run_get and lt_store_runs_iter call it first, so any
 * reader sees a dead run as failed. OUT *n_marked (may be NULL). */
lt_store_status lt_store_runs_reap(lt_store *st, int *n_marked);
/* Iterates every run, newest first. */
lt_store_status lt_store_runs_iter(lt_store *st, lt_store_iter **it);
lt_store_status lt_store_runs_next(lt_store_iter *it, lt_store_run *r);

typedef struct lt_store_metric {
    int64_t step;
    const char *name; /* "loss", "lr", "grad_norm", "tokens_per_s", "mem_bytes", "val_loss"... */
    double value;
    double t;         /* unix seconds with fractions */
} lt_store_metric;

/* Writes n metrics of a run in one transaction (a metric already recorded at that step is
 * replaced, so a resumed run overwrites what it recomputes). */
lt_store_status lt_store_metrics_put(lt_store *st, int64_t run_id, const lt_store_metric *m,
                                     int n);
/* Iterates a run's metrics named name (all names when NULL) by step. */
lt_store_status lt_store_metrics_iter(lt_store *st, int64_t run_id, const char *name,
                                      lt_store_iter **it);
lt_store_status lt_store_metrics_next(lt_store_iter *it, lt_store_metric *m);
/* Summary of one metric: count, last value and its step, minimum and its step.
 * LT_STORE_NOT_FOUND when the run has none. */
lt_store_status lt_store_metric_summary(lt_store *st, int64_t run_id, const char *name,
                                        int64_t *n, double *last, int64_t *last_step,
                                        double *min, int64_t *min_step);

typedef struct lt_store_checkpoint {
    int64_t id, run_id, step;
    const char *path;
    const char *kind;  /* "last", "best", "final", "adapter" */
    double loss;       /* validation loss, NaN when unknown */
    int64_t created_at;
} lt_store_checkpoint;

lt_store_status lt_store_checkpoint_add(lt_store *st, const lt_store_checkpoint *c,
                                        int64_t *id);
lt_store_status lt_store_checkpoint_delete(lt_store *st, int64_t id);
/* Sets the kind of a checkpoint (e.g. "best" to "last" when a better one arrives). */
lt_store_status lt_store_checkpoint_set_kind(lt_store *st, int64_t id, const char *kind);
/* Iterates a run's checkpoints by step. */
lt_store_status lt_store_checkpoints_iter(lt_store *st, int64_t run_id, lt_store_iter **it);
lt_store_status lt_store_checkpoints_next(lt_store_iter *it, lt_store_checkpoint *c);

typedef struct lt_store_run_event {
    int64_t id, step;
    const char *kind;    /* "warning", "overfit", "nan", "control", "info", "error" */
    const char *message;
    int64_t created_at;
} lt_store_run_event;

lt_store_status lt_store_run_event_add(lt_store *st, int64_t run_id, int64_t step,
                                       const char *kind, const char *message);
lt_store_status lt_store_run_events_iter(lt_store *st, int64_t run_id, lt_store_iter **it);
lt_store_status lt_store_run_events_next(lt_store_iter *it, lt_store_run_event *e);

/* Control requests ("pause", "resume", "stop", "checkpoint") for a running trainer. */
lt_store_status lt_store_control_post(lt_store *st, int64_t run_id, const char *command,
                                      int64_t *id);
/* The oldest unacknowledged request of a run: OUT *id and command (copied into cmd).
 * LT_STORE_DONE when none is pending. */
lt_store_status lt_store_control_poll(lt_store *st, int64_t run_id, int64_t *id, char *cmd,
                                      size_t cmdlen);
lt_store_status lt_store_control_ack(lt_store *st, int64_t id);

/* ---- what the dashboard polls (store_tui.c); read-only ---- */

/* SQLite's data_version: changes when another connection commits, so a dashboard skips its
 * queries while nothing happened. */
lt_store_status lt_store_data_version(lt_store *st, int64_t *version);
/* Ends the read transaction a stepped-but-unfinished statement holds (a cached single-row
 * lookup keeps its row until its next use), so the next query sees what other processes
 * committed since. Call only with no iterator open; strings returned before are invalid. */
void lt_store_read_end(lt_store *st);
/* Iterates a run's metrics named name with step > after_step, by step (read with
 * lt_store_metrics_next): the dashboard fetches only rows it has not seen. */
lt_store_status lt_store_metrics_iter_after(lt_store *st, int64_t run_id, const char *name,
                                            int64_t after_step, lt_store_iter **it);
/* Runs whose status is running or paused. */
lt_store_status lt_store_runs_count_active(lt_store *st, int64_t *n);
/* "name vN" of a dataset version into out. */
lt_store_status lt_store_version_label(lt_store *st, int64_t version_id, char *out,
                                       size_t outsz);

typedef struct lt_store_dedup_pair {
    int64_t removed_sample_id, kept_sample_id, cluster;
    double similarity;
    const char *kind; /* exact | near */
} lt_store_dedup_pair;
/* Every sample dedup removed from a dataset's versions up to version, with the one kept in
 * its place: near duplicates first, least similar first. */
lt_store_status lt_store_dedup_pairs_iter(lt_store *st, int64_t dataset_id, int version,
                                          lt_store_iter **it);
lt_store_status lt_store_dedup_pairs_next(lt_store_iter *it, lt_store_dedup_pair *p);

/* ---- evaluations (store_eval.c) ---- */

/* One system evaluated on a dataset split: results is the JSON pipeline/eval writes (the
 * system's label, model, adapter, baseline, decoding settings, dataset version, metrics). */
typedef struct lt_store_eval {
    int64_t id;
    int64_t run_id;             /* 0 when the system is not a run */
    int64_t dataset_version_id; /* 0 when unknown */
    const char *split;          /* may be NULL */
    const char *results;
    int64_t created_at;         /* unix seconds; 0 on add = now */
} lt_store_eval;

typedef struct lt_store_eval_sample {
    int64_t sample_id;          /* 0 when none */
    const char *prompt, *reference, *output;
    const char *scores;         /* JSON object of per-row scores */
} lt_store_eval_sample;

lt_store_status lt_store_eval_add(lt_store *st, const lt_store_eval *e, int64_t *eval_id);
lt_store_status lt_store_eval_set_results(lt_store *st, int64_t eval_id, const char *results);
/* Fetches an eval; e's strings stay valid until lt_store_iter_free(*it) (free it on success;
 * on failure *it is NULL). */
lt_store_status lt_store_eval_get(lt_store *st, int64_t eval_id, lt_store_iter **it,
                                  lt_store_eval *e);
/* Iterates the evals of a run (every eval when run_id is 0), newest first. */
lt_store_status lt_store_evals_iter(lt_store *st, int64_t run_id, lt_store_iter **it);
lt_store_status lt_store_evals_next(lt_store_iter *it, lt_store_eval *e);
lt_store_status lt_store_eval_sample_add(lt_store *st, int64_t eval_id,
                                         const lt_store_eval_sample *s);
/* Iterates an eval's samples in the order they were added. */
lt_store_status lt_store_eval_samples_iter(lt_store *st, int64_t eval_id, lt_store_iter **it);
lt_store_status lt_store_eval_samples_next(lt_store_iter *it, lt_store_eval_sample *s);

/* ---- plans from the method wizard (store_plan.c) ---- */

typedef struct lt_store_plan {
    int64_t id;
    int64_t dataset_version_id; /* 0 when none */
    const char *record;         /* the decision record JSON (answers, facts, path, estimates) */
    const char *config;         /* the training config JSON, or "null" when no run */
    int64_t created_at;
} lt_store_plan;

/* Saves a plan. OUT *plan_id (may be NULL). dataset_version_id 0 for none. */
lt_store_status lt_store_plan_add(lt_store *st, int64_t dataset_version_id, const char *record,
                                  const char *config, int64_t *plan_id);
/* Fetches a plan; p's strings stay valid until lt_store_iter_free(*it) (free it on success;
 * on failure *it is NULL). */
lt_store_status lt_store_plan_get(lt_store *st, int64_t plan_id, lt_store_iter **it,
                                  lt_store_plan *p);
/* Iterates plans, newest first. */
lt_store_status lt_store_plans_iter(lt_store *st, lt_store_iter **it);
lt_store_status lt_store_plans_next(lt_store_iter *it, lt_store_plan *p);

/* ---- exports (store_export.c) ---- */

typedef struct lt_store_export {
    int64_t id;
    int64_t run_id;        /* 0 when the export came from a plain model folder */
    int64_t checkpoint_id; /* 0 when none */
    const char *kind;      /* "peft", "merged", "gguf", "gguf-lora" */
    const char *path;      /* the main output (file or folder) */
    const char *detail;    /* JSON: dtype, checks; may be NULL */
    int64_t created_at;
} lt_store_export;

typedef struct lt_store_export_file {
    const char *path;
    int64_t bytes;
    const char *sha256; /* 64 hex digits */
} lt_store_export_file;

/* Records an export and its n files in one transaction. OUT *id (may be NULL). */
lt_store_status lt_store_export_add(lt_store *st, const lt_store_export *e,
                                    const lt_store_export_file *files, int n, int64_t *id);
/* Iterates exports (of run_id, or all when run_id is 0), newest first. */
lt_store_status lt_store_exports_iter(lt_store *st, int64_t run_id, lt_store_iter **it);
lt_store_status lt_store_exports_next(lt_store_iter *it, lt_store_export *e);
/* Iterates an export's files by path. */
lt_store_status lt_store_export_files_iter(lt_store *st, int64_t export_id, lt_store_iter **it);
lt_store_status lt_store_export_files_next(lt_store_iter *it, lt_store_export_file *f);

#endif
