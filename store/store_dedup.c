/*
 * store_dedup.c - row issues, MinHash signatures, dedup clusters and removals, filter drops
 * and split assignments.
 */
#include "store_impl.h"

#include <stdlib.h>
#include <string.h>

lt_store_status lt_store_issue_add(lt_store *st, int64_t version_id, int64_t file_id,
                                   const lt_store_issue *is)
{
    sqlite3_stmt *s = lt_store_cached(
        st, STMT_ISSUE_ADD,
        "INSERT INTO row_issues(version_id, file_id, line, col, severity, reason, raw, "
        "sample_row) VALUES(?1, NULLIF(?2,0), ?3, ?4, ?5, ?6, ?7, NULLIF(?8,-1))");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_int64(s, 2, file_id);
    sqlite3_bind_int64(s, 3, is->line);
    sqlite3_bind_int64(s, 4, is->column);
    sqlite3_bind_text(s, 5, is->severity, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, is->reason, -1, SQLITE_STATIC);
    if (is->raw)
        sqlite3_bind_text(s, 7, is->raw, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, is->row);
    return lt_store_step_done(st, s);
}

lt_store_status lt_store_issues_iter(lt_store *st, int64_t dataset_id, int version,
                                     lt_store_iter **it)
{
    lt_store_status r = lt_store_iter_new(
        st,
        "SELECT i.id, i.version_id, IFNULL(f.path,''), IFNULL(i.line,0), IFNULL(i.col,0), "
        "i.severity, i.reason, IFNULL(i.raw,''), IFNULL(i.sample_row,-1) FROM row_issues i "
        "JOIN dataset_versions v ON v.id=i.version_id "
        "LEFT JOIN dataset_files f ON f.id=i.file_id "
        "WHERE v.dataset_id=?1 AND v.status='ready' AND (?2=0 OR v.version<=?2) "
        "ORDER BY i.id",
        it);
    if (r != LT_STORE_OK)
        return r;
    sqlite3_bind_int64((*it)->stmt, 1, dataset_id);
    sqlite3_bind_int((*it)->stmt, 2, version);
    return LT_STORE_OK;
}

lt_store_status lt_store_issues_next(lt_store_iter *it, lt_store_issue *is)
{
    sqlite3_stmt *q = it->stmt;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return LT_STORE_DONE;
    if (rc != SQLITE_ROW)
        return lt_store_map_rc(rc);
    is->id = sqlite3_column_int64(q, 0);
    is->version_id = sqlite3_column_int64(q, 1);
    is->path = (const char *)sqlite3_column_text(q, 2);
    is->line = sqlite3_column_int64(q, 3);
    is->column = sqlite3_column_int64(q, 4);
    is->severity = (const char *)sqlite3_column_text(q, 5);
    is->reason = (const char *)sqlite3_column_text(q, 6);
    is->raw = (const char *)sqlite3_column_text(q, 7);
    is->row = sqlite3_column_int64(q, 8);
    return LT_STORE_OK;
}

lt_store_status lt_store_signature_put(lt_store *st, int64_t dataset_id, const char *params,
                                       const lt_store_signature *g)
{
    sqlite3_stmt *s = lt_store_cached(
        st, STMT_SIG_PUT,
        "INSERT OR REPLACE INTO dedup_signatures(dataset_id, params, sample_id, row_index, "
        "text_hash, n_response_chars, sig) VALUES(?1,?2,?3,?4,?5,?6,?7)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, dataset_id);
    sqlite3_bind_text(s, 2, params, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, g->sample_id);
    sqlite3_bind_int64(s, 4, g->row);
    sqlite3_bind_text(s, 5, g->text_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, g->n_response_chars);
    sqlite3_bind_blob(s, 7, g->sig, (int)g->bytes, SQLITE_STATIC);
    return lt_store_step_done(st, s);
}

lt_store_status lt_store_signatures_iter(lt_store *st, int64_t dataset_id, const char *params,
                                         lt_store_iter **it)
{
    lt_store_status r = lt_store_iter_new(
        st,
        "SELECT sample_id, row_index, text_hash, n_response_chars, sig FROM dedup_signatures "
        "WHERE dataset_id=?1 AND params=?2 ORDER BY sample_id",
        it);
    if (r != LT_STORE_OK)
        return r;
    sqlite3_bind_int64((*it)->stmt, 1, dataset_id);
    sqlite3_bind_text((*it)->stmt, 2, params, -1, SQLITE_TRANSIENT);
    return LT_STORE_OK;
}

lt_store_status lt_store_signatures_next(lt_store_iter *it, lt_store_signature *g)
{
    sqlite3_stmt *q = it->stmt;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        return LT_STORE_DONE;
    if (rc != SQLITE_ROW)
        return lt_store_map_rc(rc);
    g->sample_id = sqlite3_column_int64(q, 0);
    g->row = sqlite3_column_int64(q, 1);
    g->text_hash = (const char *)sqlite3_column_text(q, 2);
    g->n_response_chars = sqlite3_column_int64(q, 3);
    g->sig = sqlite3_column_blob(q, 4);
    g->bytes = (size_t)sqlite3_column_bytes(q, 4);
    return LT_STORE_OK;
}

static lt_store_status prepared(lt_store *st, const char *sql, sqlite3_stmt **s)
{
    return sqlite3_prepare_v2(st->db, sql, -1, s, NULL) == SQLITE_OK ? LT_STORE_OK
                                                                      : LT_STORE_SQL;
}

lt_store_status lt_store_dedup_removal_add(lt_store *st, int64_t version_id, int64_t sample_id,
                                           int64_t cluster, int64_t kept_sample_id,
                                           double similarity, const char *kind)
{
    sqlite3_stmt *s = lt_store_cached(
        st, STMT_REMOVAL_ADD,
        "INSERT OR REPLACE INTO dedup_removals(version_id, sample_id, cluster, kept_sample_id, "
        "similarity, kind) VALUES(?1,?2,?3,?4,?5,?6)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_int64(s, 2, sample_id);
    sqlite3_bind_int64(s, 3, cluster);
    sqlite3_bind_int64(s, 4, kept_sample_id);
    sqlite3_bind_double(s, 5, similarity);
    sqlite3_bind_text(s, 6, kind, -1, SQLITE_STATIC);
    lt_store_status r = lt_store_step_done(st, s);
    if (r != LT_STORE_OK)
        return r;
    s = lt_store_cached(st, STMT_CLUSTER_ADD,
                        "INSERT INTO dedup_clusters(version_id, cluster, kept_sample_id, size) "
                        "VALUES(?1,?2,?3,2) ON CONFLICT(version_id, cluster) DO UPDATE SET "
                        "size=size+1");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_int64(s, 2, cluster);
    sqlite3_bind_int64(s, 3, kept_sample_id);
    return lt_store_step_done(st, s);
}

static lt_store_status count_query(lt_store *st, const char *sql, int64_t a, int b,
                                   int64_t out[3])
{
    sqlite3_stmt *s = NULL;
    if (prepared(st, sql, &s) != LT_STORE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, a);
    sqlite3_bind_int(s, 2, b);
    lt_store_status r = LT_STORE_SQL;
    if (sqlite3_step(s) == SQLITE_ROW) {
        for (int i = 0; i < 3; i++)
            out[i] = sqlite3_column_int64(s, i);
        r = LT_STORE_OK;
    }
    sqlite3_finalize(s);
    return r;
}

lt_store_status lt_store_dedup_counts(lt_store *st, int64_t version_id, int64_t *n_exact,
                                      int64_t *n_near, int64_t *n_clusters)
{
    int64_t out[3] = {0, 0, 0};
    lt_store_status r = count_query(
        st,
        "SELECT IFNULL(SUM(kind='exact'),0), IFNULL(SUM(kind='near'),0), "
        "COUNT(DISTINCT cluster) FROM dedup_removals WHERE version_id=?1 AND ?2=0",
        version_id, 0, out);
    *n_exact = out[0];
    *n_near = out[1];
    if (n_clusters)
        *n_clusters = out[2];
    return r;
}

lt_store_status lt_store_dedup_counts_lineage(lt_store *st, int64_t dataset_id, int version,
                                              int64_t *n_exact, int64_t *n_near, bool *ran)
{
    int64_t out[3] = {0, 0, 0};
    lt_store_status r = count_query(
        st,
        "SELECT IFNULL(SUM(r.kind='exact'),0), IFNULL(SUM(r.kind='near'),0), "
        "(SELECT COUNT(*) FROM dataset_versions WHERE dataset_id=?1 AND kind='dedup' AND "
        "status='ready' AND (?2=0 OR version<=?2)) "
        "FROM dedup_removals r JOIN dataset_versions v ON v.id=r.version_id "
        "WHERE v.dataset_id=?1 AND v.status='ready' AND (?2=0 OR v.version<=?2)",
        dataset_id, version, out);
    *n_exact = out[0];
    *n_near = out[1];
    *ran = out[2] > 0;
    return r;
}

lt_store_status lt_store_filter_drop_add(lt_store *st, int64_t version_id, int64_t sample_id,
                                         const char *rule)
{
    sqlite3_stmt *s = lt_store_cached(st, STMT_FILTER_ADD,
                                      "INSERT OR IGNORE INTO filter_drops(version_id, sample_id, "
                                      "rule) VALUES(?1,?2,?3)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_int64(s, 2, sample_id);
    sqlite3_bind_text(s, 3, rule, -1, SQLITE_STATIC);
    return lt_store_step_done(st, s);
}

lt_store_status lt_store_split_set(lt_store *st, int64_t version_id, int64_t sample_id,
                                   const char *split, int64_t seed)
{
    sqlite3_stmt *s = lt_store_cached(st, STMT_SPLIT_SET,
                                      "INSERT OR REPLACE INTO splits(version_id, sample_id, "
                                      "split, seed) VALUES(?1,?2,?3,?4)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    sqlite3_bind_int64(s, 2, sample_id);
    sqlite3_bind_text(s, 3, split, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, seed);
    return lt_store_step_done(st, s);
}

lt_store_status lt_store_split_clear(lt_store *st, int64_t version_id)
{
    sqlite3_stmt *s = NULL;
    if (prepared(st, "DELETE FROM splits WHERE version_id=?1", &s) != LT_STORE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    lt_store_status r = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    return r;
}
