/*
 * store_schema.c - the schema of lathe.db as a list of forward migrations.
 *
 * Migration N takes a database at user_version N-1 to N. Steps are only ever appended: a
 * released step is never edited, and no step drops user data (a change that must rewrite a
 * table copies it first). lt_store_open backs the file up before running any step.
 */
#include "store_impl.h"

#include <stddef.h>

/* Version 1: datasets and their versions, samples, issues, dedup, filters, splits, and the
 * tables later stages fill (models, plans, runs, metrics, checkpoints, evals, exports, jobs). */
static const char MIGRATION_1[] =
    /* A dataset is a name; its content lives in versions. status is 'building' until the first
     * version finishes, so a crashed first import leaves nothing visible. */
    "CREATE TABLE datasets("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL DEFAULT 'building',"
    "  created_at INTEGER NOT NULL);"
    /* kind: import | append | dedup | filter. params: JSON of the options. pid: the process
     * building it, so cleanup can tell a live import from a dead one. */
    "CREATE TABLE dataset_versions("
    "  id INTEGER PRIMARY KEY,"
    "  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  parent_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,"
    "  kind TEXT NOT NULL,"
    "  params TEXT,"
    "  format TEXT,"
    "  n_rows INTEGER NOT NULL DEFAULT 0,"
    "  n_issues INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL DEFAULT 'building',"
    "  pid INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE(dataset_id, version));"
    "CREATE TABLE dataset_files("
    "  id INTEGER PRIMARY KEY,"
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  path TEXT NOT NULL,"
    "  size_bytes INTEGER,"
    "  sha256 TEXT,"
    "  n_rows INTEGER NOT NULL DEFAULT 0,"
    "  n_issues INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX dataset_files_version ON dataset_files(version_id);"
    /* One normalized sample. row_index is stable within the dataset across versions; data is
     * the normalized JSON; text_hash the hash of the normalized text (exact dedup); flags
     * carries warnings such as control characters. */
    "CREATE TABLE samples("
    "  id INTEGER PRIMARY KEY,"
    "  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  row_index INTEGER NOT NULL,"
    "  file_id INTEGER,"
    "  line INTEGER,"
    "  format TEXT NOT NULL,"
    "  data TEXT NOT NULL,"
    "  text_hash TEXT NOT NULL,"
    "  n_chars INTEGER NOT NULL,"
    "  n_response_chars INTEGER NOT NULL,"
    "  n_turns INTEGER NOT NULL,"
    "  flags INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX samples_row ON samples(dataset_id, row_index);"
    /* no index on samples(version_id): only removing an abandoned version needs it, and
     * that rare scan is cheaper than one more b-tree insert per imported row */
    /* Which samples make up which version. No foreign key on sample_id: samples are removed
     * only with the version that introduced them, which removes its memberships too. */
    "CREATE TABLE version_samples("
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  sample_id INTEGER NOT NULL,"
    "  PRIMARY KEY(version_id, sample_id)) WITHOUT ROWID;"
    /* Bad rows (severity 'error', row not imported) and warnings (row kept, sample_row set). */
    "CREATE TABLE row_issues("
    "  id INTEGER PRIMARY KEY,"
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  file_id INTEGER,"
    "  line INTEGER,"
    "  col INTEGER,"
    "  severity TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  raw TEXT,"
    "  sample_row INTEGER);"
    "CREATE INDEX row_issues_version ON row_issues(version_id);"
    /* MinHash signatures, keyed by the parameters that made them, kept so later imports
     * deduplicate against them without recomputing. The sample's row, text hash and response
     * length are repeated here so dedup reads this table alone, in key order. */
    "CREATE TABLE dedup_signatures("
    "  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  params TEXT NOT NULL,"
    "  sample_id INTEGER NOT NULL,"
    "  row_index INTEGER NOT NULL,"
    "  text_hash TEXT NOT NULL,"
    "  n_response_chars INTEGER NOT NULL,"
    "  sig BLOB NOT NULL,"
    "  PRIMARY KEY(dataset_id, params, sample_id)) WITHOUT ROWID;"
    /* version_id: the version the dedup produced. kind: exact | near. */
    "CREATE TABLE dedup_clusters("
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  cluster INTEGER NOT NULL,"
    "  kept_sample_id INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  PRIMARY KEY(version_id, cluster)) WITHOUT ROWID;"
    "CREATE TABLE dedup_removals("
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  sample_id INTEGER NOT NULL,"
    "  cluster INTEGER NOT NULL,"
    "  kept_sample_id INTEGER NOT NULL,"
    "  similarity REAL NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  PRIMARY KEY(version_id, sample_id)) WITHOUT ROWID;"
    "CREATE TABLE filter_drops("
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  sample_id INTEGER NOT NULL,"
    "  rule TEXT NOT NULL,"
    "  PRIMARY KEY(version_id, sample_id)) WITHOUT ROWID;"
    "CREATE TABLE splits("
    "  version_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,"
    "  sample_id INTEGER NOT NULL,"
    "  split TEXT NOT NULL,"
    "  seed INTEGER NOT NULL,"
    "  PRIMARY KEY(version_id, sample_id)) WITHOUT ROWID;"
    /* A model folder seen by lathe: path, architecture, hashes for lineage. */
    "CREATE TABLE models("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  arch TEXT,"
    "  n_params INTEGER,"
    "  config TEXT,"
    "  content_hash TEXT,"
    "  created_at INTEGER NOT NULL);"
    /* A wizard plan: the facts it used and the run config it proposes. */
    "CREATE TABLE plans("
    "  id INTEGER PRIMARY KEY,"
    "  dataset_version_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,"
    "  model_id INTEGER REFERENCES models(id) ON DELETE SET NULL,"
    "  facts TEXT,"
    "  config TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    /* status: queued | running | paused | stopped | done | failed. Lineage: the dataset
     * version and model it trained on (with their hashes) and the run it resumed from. */
    "CREATE TABLE runs("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT UNIQUE,"
    "  plan_id INTEGER REFERENCES plans(id) ON DELETE SET NULL,"
    "  dataset_version_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,"
    "  model_id INTEGER REFERENCES models(id) ON DELETE SET NULL,"
    "  parent_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,"
    "  dataset_hash TEXT,"
    "  model_hash TEXT,"
    "  config TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'queued',"
    "  pid INTEGER,"
    "  message TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  ended_at INTEGER);"
    "CREATE TABLE metrics("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  step INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  value REAL NOT NULL,"
    "  t REAL,"
    "  PRIMARY KEY(run_id, name, step)) WITHOUT ROWID;"
    "CREATE TABLE checkpoints("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  step INTEGER NOT NULL,"
    "  path TEXT NOT NULL,"
    "  kind TEXT,"
    "  loss REAL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE evals("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  checkpoint_id INTEGER REFERENCES checkpoints(id) ON DELETE SET NULL,"
    "  dataset_version_id INTEGER REFERENCES dataset_versions(id) ON DELETE SET NULL,"
    "  split TEXT,"
    "  results TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE eval_samples("
    "  eval_id INTEGER NOT NULL REFERENCES evals(id) ON DELETE CASCADE,"
    "  sample_id INTEGER,"
    "  prompt TEXT,"
    "  reference TEXT,"
    "  output TEXT,"
    "  scores TEXT);"
    "CREATE INDEX eval_samples_eval ON eval_samples(eval_id);"
    "CREATE TABLE exports("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,"
    "  checkpoint_id INTEGER REFERENCES checkpoints(id) ON DELETE SET NULL,"
    "  kind TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    /* Background work started by the dashboard, and control requests a job polls. */
    "CREATE TABLE jobs("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  args TEXT,"
    "  status TEXT NOT NULL DEFAULT 'queued',"
    "  pid INTEGER,"
    "  progress REAL,"
    "  message TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER);"
    "CREATE TABLE control("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    "  job_id INTEGER REFERENCES jobs(id) ON DELETE CASCADE,"
    "  command TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  acked_at INTEGER);";

/* Version 2: what a training run records beyond schema 1: its method, model folder and
 * device as columns (for listing without parsing the config), and run events (warnings such
 * as skipped NaN steps or overfitting, and the acknowledgements of control requests). */
static const char MIGRATION_2[] =
    "ALTER TABLE runs ADD COLUMN method TEXT;"
    "ALTER TABLE runs ADD COLUMN model_path TEXT;"
    "ALTER TABLE runs ADD COLUMN device TEXT;"
    "CREATE TABLE run_events("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  step INTEGER,"
    "  kind TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX run_events_run ON run_events(run_id);"
    "CREATE INDEX checkpoints_run ON checkpoints(run_id);"
    "CREATE INDEX control_run ON control(run_id);";

/* Version 3: what an export wrote: each file with its size and sha256, and a detail JSON
 * (dtype, the checks run after writing) on the export itself. */
static const char MIGRATION_3[] =
    "ALTER TABLE exports ADD COLUMN detail TEXT;"
    "CREATE TABLE export_files("
    "  id INTEGER PRIMARY KEY,"
    "  export_id INTEGER NOT NULL REFERENCES exports(id) ON DELETE CASCADE,"
    "  path TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL);"
    "CREATE INDEX export_files_export ON export_files(export_id);";

const lt_store_migration lt_store_migrations[] = {
    {1, "datasets, samples, dedup, runs and the rest of the first schema", MIGRATION_1},
    {2, "training runs: method, model path, device columns and run events", MIGRATION_2},
    {3, "exports: files with sizes and checksums, detail", MIGRATION_3},
};

const int lt_store_n_migrations =
    (int)(sizeof lt_store_migrations / sizeof lt_store_migrations[0]);
