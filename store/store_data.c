/*
 * store_data.c - the statements of the data workbench: datasets, versions, files, samples,
 * row issues, dedup signatures and results, filter drops and splits.
 *
 * Never interprets sample JSON: the pipeline hands in normalized text and numbers.
 */
#include "store_impl.h"

#include <limits.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Runs a one-off statement with int64 parameters bound in order. */
static lt_store_status run_i64(lt_store *st, const char *sql, int n, const int64_t *v)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    for (int i = 0; i < n; i++)
        sqlite3_bind_int64(s, i + 1, v[i]);
    lt_store_status r = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    return r;
}

lt_store_status lt_store_dataset_find(lt_store *st, const char *name, int64_t *dataset_id)
{
    sqlite3_stmt *s = NULL;
    lt_store_status r = LT_STORE_NOT_FOUND;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id FROM datasets WHERE name=?1 AND status='ready'", -1, &s,
                           NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *dataset_id = sqlite3_column_int64(s, 0);
        r = LT_STORE_OK;
    }
    sqlite3_finalize(s);
    return r;
}

lt_store_status lt_store_dataset_create(lt_store *st, const char *name, int64_t *dataset_id)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO datasets(name, status, created_at) VALUES(?1,'building',?2)",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (int64_t)time(NULL));
    lt_store_status r = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    if (r == LT_STORE_OK)
        *dataset_id = sqlite3_last_insert_rowid(st->db);
    return r;
}

#define VERSION_COLS                                                                          \
    "SELECT v.dataset_id, v.id, v.version, IFNULL(v.parent_id,0), d.name, v.kind, "          \
    "IFNULL(v.format,''), IFNULL(v.params,'{}'), v.n_rows, v.n_issues, v.created_at "        \
    "FROM dataset_versions v JOIN datasets d ON d.id=v.dataset_id "

static void fill_version(sqlite3_stmt *s, lt_store_version *v)
{
    v->dataset_id = sqlite3_column_int64(s, 0);
    v->version_id = sqlite3_column_int64(s, 1);
    v->version = sqlite3_column_int(s, 2);
    v->parent_id = sqlite3_column_int64(s, 3);
    v->name = col_text(s, 4);
    v->kind = col_text(s, 5);
    v->format = col_text(s, 6);
    v->params = col_text(s, 7);
    v->n_rows = sqlite3_column_int64(s, 8);
    v->n_issues = sqlite3_column_int64(s, 9);
    v->created_at = sqlite3_column_int64(s, 10);
}

lt_store_status lt_store_version_get(lt_store *st, const char *name, int version,
                                     lt_store_version *v)
{
    sqlite3_stmt *s = lt_store_cached(
        st, STMT_VERSION_GET,
        VERSION_COLS "WHERE d.name=?1 AND v.status='ready' AND (?2=0 OR v.version=?2) "
                     "ORDER BY v.version DESC LIMIT 1");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, version);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(rc);
    }
    fill_version(s, v);
    /* copy strings so they survive the reset */
    free(st->version_name);
    free(st->version_kind);
    free(st->version_format);
    free(st->version_params);
    st->version_name = dup_or_null(v->name);
    st->version_kind = dup_or_null(v->kind);
    st->version_format = dup_or_null(v->format);
    st->version_params = dup_or_null(v->params);
    v->name = st->version_name;
    v->kind = st->version_kind;
    v->format = st->version_format;
    v->params = st->version_params;
    sqlite3_reset(s);
    return LT_STORE_OK;
}

lt_store_status lt_store_version_create(lt_store *st, int64_t dataset_id, int64_t parent_id,
                                        const char *kind, const char *params,
                                        int64_t *version_id, int *version)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(
            st->db,
            "INSERT INTO dataset_versions(dataset_id, version, parent_id, kind, params, status, "
            "pid, created_at) VALUES(?1, (SELECT IFNULL(MAX(version),0)+1 FROM dataset_versions "
            "WHERE dataset_id=?1), NULLIF(?2,0), ?3, ?4, 'building', ?5, ?6) RETURNING id, version",
            -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, dataset_id);
    sqlite3_bind_int64(s, 2, parent_id);
    sqlite3_bind_text(s, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, params ? params : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (int64_t)getpid());
    sqlite3_bind_int64(s, 6, (int64_t)time(NULL));
    lt_store_status r = LT_STORE_SQL;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *version_id = sqlite3_column_int64(s, 0);
        if (version)
            *version = sqlite3_column_int(s, 1);
        r = LT_STORE_OK;
        sqlite3_step(s);
    } else {
        r = lt_store_map_rc(rc);
    }
    sqlite3_finalize(s);
    return r;
}

lt_store_status lt_store_version_finish(lt_store *st, int64_t version_id, const char *format,
                                        int64_t n_rows, int64_t n_issues)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE dataset_versions SET status='ready', pid=NULL, format=?2, "
                           "n_rows=?3, n_issues=?4 WHERE id=?1",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_text(s, 2, format ? format : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, n_rows);
    sqlite3_bind_int64(s, 4, n_issues);
    lt_store_status r = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    if (r != LT_STORE_OK)
        return r;
    return run_i64(st,
                   "UPDATE datasets SET status='ready' WHERE id=(SELECT dataset_id FROM "
                   "dataset_versions WHERE id=?1)",
                   1, &version_id);
}

lt_store_status lt_store_version_delete(lt_store *st, int64_t version_id)
{
    /* memberships first (cheap, primary-key prefix), then samples it introduced, then the
     * version row, whose cascade takes files, issues and dedup/filter/split records */
    lt_store_status r = run_i64(st, "DELETE FROM version_samples WHERE version_id=?1", 1,
                                &version_id);
    if (r == LT_STORE_OK)
        r = run_i64(st,
                    "DELETE FROM dedup_signatures WHERE sample_id IN (SELECT id FROM samples "
                    "WHERE version_id=?1)",
                    1, &version_id);
    if (r == LT_STORE_OK)
        r = run_i64(st, "DELETE FROM samples WHERE version_id=?1", 1, &version_id);
    int64_t dataset_id = 0;
    sqlite3_stmt *q = NULL;
    if (r == LT_STORE_OK &&
        sqlite3_prepare_v2(st->db, "SELECT dataset_id FROM dataset_versions WHERE id=?1", -1,
                           &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, version_id);
        if (sqlite3_step(q) == SQLITE_ROW)
            dataset_id = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    if (r == LT_STORE_OK)
        r = run_i64(st, "DELETE FROM dataset_versions WHERE id=?1", 1, &version_id);
    /* a dataset whose first version never finished goes too */
    if (r == LT_STORE_OK && dataset_id)
        r = run_i64(st,
                    "DELETE FROM datasets WHERE id=?1 AND status='building' AND NOT EXISTS "
                    "(SELECT 1 FROM dataset_versions WHERE dataset_id=?1)",
                    1, &dataset_id);
    return r;
}

lt_store_status lt_store_version_copy_members(lt_store *st, int64_t from_version,
                                              int64_t to_version, int64_t *n_copied)
{
    int64_t v[2] = {from_version, to_version};
    lt_store_status r = run_i64(
        st,
        "INSERT OR IGNORE INTO version_samples(version_id, sample_id) SELECT ?2, m.sample_id "
        "FROM version_samples m WHERE m.version_id=?1 "
        "AND m.sample_id NOT IN (SELECT sample_id FROM dedup_removals WHERE version_id=?2) "
        "AND m.sample_id NOT IN (SELECT sample_id FROM filter_drops WHERE version_id=?2)",
        2, v);
    if (n_copied)
        *n_copied = r == LT_STORE_OK ? sqlite3_changes64(st->db) : 0;
    return r;
}

/* Reads one int64 from a one-off statement with int64 parameters; OUT *out (0 when no row). */
static lt_store_status query_i64(lt_store *st, const char *sql, int n, const int64_t *v,
                                 int64_t *out)
{
    sqlite3_stmt *s = NULL;
    *out = 0;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    for (int i = 0; i < n; i++)
        sqlite3_bind_int64(s, i + 1, v[i]);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LT_STORE_OK : lt_store_map_rc(rc);
}

lt_store_status lt_store_version_rebase(lt_store *st, int64_t version_id, int64_t first_row,
                                        int *version)
{
    int64_t parent = 0, latest = 0, number = 0;
    lt_store_status r = query_i64(
        st, "SELECT IFNULL(parent_id,0) FROM dataset_versions WHERE id=?1", 1, &version_id,
        &parent);
    if (r == LT_STORE_OK)
        r = query_i64(st,
                      "SELECT o.id FROM dataset_versions o JOIN dataset_versions v ON "
                      "v.dataset_id=o.dataset_id WHERE v.id=?1 AND o.id<>?1 AND "
                      "o.status='ready' ORDER BY o.version DESC LIMIT 1",
                      1, &version_id, &latest);
    if (r == LT_STORE_OK && latest && latest != parent) {
        int64_t v[2] = {version_id, latest};
        r = run_i64(st,
                    "DELETE FROM version_samples WHERE version_id=?1 AND sample_id NOT IN "
                    "(SELECT id FROM samples WHERE version_id=?1)",
                    1, v);
        if (r == LT_STORE_OK)
            r = lt_store_version_copy_members(st, latest, version_id, NULL);
        if (r == LT_STORE_OK)
            r = run_i64(st, "UPDATE dataset_versions SET parent_id=?2 WHERE id=?1", 2, v);
    }
    /* rows another version introduced meanwhile may hold the same row indexes: move ours past
     * them so a row index still names one row of the dataset */
    int64_t shift = 0;
    if (r == LT_STORE_OK) {
        int64_t v[2] = {version_id, first_row};
        r = query_i64(st,
                      "SELECT IFNULL(MAX(row_index) - ?2 + 1, 0) FROM samples WHERE "
                      "dataset_id=(SELECT dataset_id FROM dataset_versions WHERE id=?1) AND "
                      "row_index>=?2 AND version_id<>?1",
                      2, v, &shift);
    }
    if (r == LT_STORE_OK && shift > 0) {
        int64_t v[2] = {version_id, shift};
        r = run_i64(st, "UPDATE samples SET row_index=row_index+?2 WHERE version_id=?1", 2, v);
        if (r == LT_STORE_OK)
            r = run_i64(st,
                        "UPDATE dedup_signatures SET row_index=row_index+?2 WHERE sample_id IN "
                        "(SELECT id FROM samples WHERE version_id=?1)",
                        2, v);
        if (r == LT_STORE_OK)
            r = run_i64(st,
                        "UPDATE row_issues SET sample_row=sample_row+?2 WHERE version_id=?1 AND "
                        "sample_row IS NOT NULL AND sample_row>=0",
                        2, v);
    }
    if (r == LT_STORE_OK)
        r = run_i64(st,
                    "UPDATE dataset_versions SET version=(SELECT MAX(o.version)+1 FROM "
                    "dataset_versions o WHERE o.dataset_id=dataset_versions.dataset_id) "
                    "WHERE id=?1 AND version < (SELECT MAX(o.version) FROM dataset_versions o "
                    "WHERE o.dataset_id=dataset_versions.dataset_id AND o.status='ready')",
                    1, &version_id);
    if (r == LT_STORE_OK)
        r = query_i64(st, "SELECT version FROM dataset_versions WHERE id=?1", 1, &version_id,
                      &number);
    if (r == LT_STORE_OK && version)
        *version = (int)number;
    return r;
}

lt_store_status lt_store_datasets_iter(lt_store *st, lt_store_iter **it)
{
    return lt_store_iter_new(
        st,
        VERSION_COLS "WHERE v.status='ready' AND v.version=(SELECT MAX(version) FROM "
                     "dataset_versions WHERE dataset_id=v.dataset_id AND status='ready') "
                     "ORDER BY d.name",
        it);
}

lt_store_status lt_store_datasets_next(lt_store_iter *it, lt_store_version *v)
{
    int rc = sqlite3_step(it->stmt);
    if (rc == SQLITE_DONE)
        return LT_STORE_DONE;
    if (rc != SQLITE_ROW)
        return lt_store_map_rc(rc);
    fill_version(it->stmt, v);
    return LT_STORE_OK;
}

lt_store_status lt_store_file_add(lt_store *st, int64_t version_id, const char *path,
                                  int64_t *file_id)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "INSERT INTO dataset_files(version_id, path) VALUES(?1,?2)",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    char abs[PATH_MAX];
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_text(s, 2, lt_store_abs_path(path, abs), -1, SQLITE_TRANSIENT);
    lt_store_status r = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    if (r == LT_STORE_OK)
        *file_id = sqlite3_last_insert_rowid(st->db);
    return r;
}

lt_store_status lt_store_file_finish(lt_store *st, int64_t file_id, int64_t size_bytes,
                                     const char *sha256_hex, int64_t n_rows, int64_t n_issues)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE dataset_files SET size_bytes=?2, sha256=?3, n_rows=?4, "
                           "n_issues=?5 WHERE id=?1",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, file_id);
    sqlite3_bind_int64(s, 2, size_bytes);
    sqlite3_bind_text(s, 3, sha256_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, n_rows);
    sqlite3_bind_int64(s, 5, n_issues);
    lt_store_status r = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    return r;
}

lt_store_status lt_store_sample_add(lt_store *st, int64_t dataset_id, int64_t version_id,
                                    const lt_store_sample *x, int64_t *sample_id)
{
    sqlite3_stmt *s = lt_store_cached(
        st, STMT_SAMPLE_ADD,
        "INSERT INTO samples(dataset_id, version_id, row_index, file_id, line, format, data, "
        "text_hash, n_chars, n_response_chars, n_turns, flags) "
        "VALUES(?1,?2,?3,NULLIF(?4,0),?5,?6,?7,?8,?9,?10,?11,?12)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, dataset_id);
    sqlite3_bind_int64(s, 2, version_id);
    sqlite3_bind_int64(s, 3, x->row);
    sqlite3_bind_int64(s, 4, x->file_id);
    sqlite3_bind_int64(s, 5, x->line);
    sqlite3_bind_text(s, 6, x->format, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, x->data, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, x->text_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, x->n_chars);
    sqlite3_bind_int64(s, 10, x->n_response_chars);
    sqlite3_bind_int(s, 11, x->n_turns);
    sqlite3_bind_int(s, 12, x->flags);
    lt_store_status r = lt_store_step_done(st, s);
    if (r != LT_STORE_OK)
        return r;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    if (sample_id)
        *sample_id = id;
    sqlite3_stmt *m = lt_store_cached(
        st, STMT_MEMBER_ADD, "INSERT INTO version_samples(version_id, sample_id) VALUES(?1,?2)");
    if (!m)
        return LT_STORE_SQL;
    sqlite3_bind_int64(m, 1, version_id);
    sqlite3_bind_int64(m, 2, id);
    return lt_store_step_done(st, m);
}

#define SAMPLE_COLS                                                                           \
    "SELECT s.id, s.row_index, s.version_id, IFNULL(s.file_id,0), IFNULL(s.line,0), "        \
    "s.format, s.data, s.text_hash, s.n_chars, s.n_response_chars, s.n_turns, s.flags, "     \
    "sp.split, f.path FROM samples s "                                                      \
    "LEFT JOIN dataset_files f ON f.id=s.file_id "

static void fill_sample(sqlite3_stmt *q, lt_store_sample *s)
{
    s->id = sqlite3_column_int64(q, 0);
    s->row = sqlite3_column_int64(q, 1);
    s->version_id = sqlite3_column_int64(q, 2);
    s->file_id = sqlite3_column_int64(q, 3);
    s->line = sqlite3_column_int64(q, 4);
    s->format = col_text(q, 5);
    s->data = col_text(q, 6);
    s->text_hash = col_text(q, 7);
    s->n_chars = sqlite3_column_int64(q, 8);
    s->n_response_chars = sqlite3_column_int64(q, 9);
    s->n_turns = sqlite3_column_int(q, 10);
    s->flags = sqlite3_column_int(q, 11);
    s->split = col_text(q, 12);
    s->path = col_text(q, 13);
}

lt_store_status lt_store_sample_get(lt_store *st, int64_t version_id, int64_t row,
                                    lt_store_sample *x)
{
    sqlite3_stmt *s = lt_store_cached(
        st, STMT_SAMPLE_GET,
        SAMPLE_COLS "JOIN version_samples m ON m.sample_id=s.id AND m.version_id=?1 "
                    "LEFT JOIN splits sp ON sp.version_id=?1 AND sp.sample_id=s.id "
                    "WHERE s.dataset_id=(SELECT dataset_id FROM dataset_versions WHERE id=?1) "
                    "AND s.row_index=?2");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_int64(s, 2, row);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(rc);
    fill_sample(s, x); /* valid until the next call: the statement is reset then */
    return LT_STORE_OK;
}

lt_store_status lt_store_sample_get_id(lt_store *st, int64_t sample_id, lt_store_sample *x)
{
    sqlite3_stmt *s = lt_store_cached(
        st, STMT_SAMPLE_GET_ID, SAMPLE_COLS "LEFT JOIN splits sp ON 0 WHERE s.id=?1");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, sample_id);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(rc);
    fill_sample(s, x); /* valid until the next call on st */
    return LT_STORE_OK;
}

lt_store_status lt_store_samples_iter(lt_store *st, int64_t version_id, const char *split,
                                      lt_store_iter **it)
{
    lt_store_status r = lt_store_iter_new(
        st,
        SAMPLE_COLS "JOIN version_samples m ON m.sample_id=s.id AND m.version_id=?1 "
                    "LEFT JOIN splits sp ON sp.version_id=?1 AND sp.sample_id=s.id "
                    "WHERE (?2 IS NULL OR sp.split=?2) ORDER BY s.row_index",
        it);
    if (r != LT_STORE_OK)
        return r;
    sqlite3_bind_int64((*it)->stmt, 1, version_id);
    if (split)
        sqlite3_bind_text((*it)->stmt, 2, split, -1, SQLITE_TRANSIENT);
    return LT_STORE_OK;
}

lt_store_status lt_store_samples_next(lt_store_iter *it, lt_store_sample *s)
{
    int rc = sqlite3_step(it->stmt);
    if (rc == SQLITE_DONE)
        return LT_STORE_DONE;
    if (rc != SQLITE_ROW)
        return lt_store_map_rc(rc);
    fill_sample(it->stmt, s);
    return LT_STORE_OK;
}

lt_store_status lt_store_member_ids_iter(lt_store *st, int64_t version_id, lt_store_iter **it)
{
    lt_store_status r = lt_store_iter_new(
        st, "SELECT sample_id FROM version_samples WHERE version_id=?1 ORDER BY sample_id", it);
    if (r == LT_STORE_OK)
        sqlite3_bind_int64((*it)->stmt, 1, version_id);
    return r;
}

lt_store_status lt_store_member_ids_next(lt_store_iter *it, int64_t *sample_id)
{
    int rc = sqlite3_step(it->stmt);
    if (rc == SQLITE_DONE)
        return LT_STORE_DONE;
    if (rc != SQLITE_ROW)
        return lt_store_map_rc(rc);
    *sample_id = sqlite3_column_int64(it->stmt, 0);
    return LT_STORE_OK;
}

lt_store_status lt_store_members_iter(lt_store *st, int64_t version_id, lt_store_iter **it)
{
    lt_store_status r = lt_store_iter_new(
        st,
        "SELECT s.id, s.row_index, s.text_hash, s.n_chars, s.n_response_chars, s.n_turns, "
        "s.flags FROM version_samples m JOIN samples s ON s.id=m.sample_id "
        "WHERE m.version_id=?1 ORDER BY s.row_index",
        it);
    if (r == LT_STORE_OK)
        sqlite3_bind_int64((*it)->stmt, 1, version_id);
    return r;
}

lt_store_status lt_store_members_next(lt_store_iter *it, lt_store_sample *s)
{
    sqlite3_stmt *q = it->stmt;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return LT_STORE_DONE;
    if (rc != SQLITE_ROW)
        return lt_store_map_rc(rc);
    memset(s, 0, sizeof *s);
    s->id = sqlite3_column_int64(q, 0);
    s->row = sqlite3_column_int64(q, 1);
    s->text_hash = col_text(q, 2);
    s->n_chars = sqlite3_column_int64(q, 3);
    s->n_response_chars = sqlite3_column_int64(q, 4);
    s->n_turns = sqlite3_column_int(q, 5);
    s->flags = sqlite3_column_int(q, 6);
    return LT_STORE_OK;
}

lt_store_status lt_store_samples_count(lt_store *st, int64_t version_id, int64_t *n)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT COUNT(*) FROM version_samples WHERE version_id=?1",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    *n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return LT_STORE_OK;
}

lt_store_status lt_store_rows_max(lt_store *st, int64_t dataset_id, int64_t *max_row)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT IFNULL(MAX(row_index),-1) FROM samples WHERE dataset_id=?1",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, dataset_id);
    *max_row = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return LT_STORE_OK;
}
