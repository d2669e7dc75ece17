/*
 * store_tui.c - the cheap read-only queries the dashboard polls: whether anything changed,
 * metric rows newer than the last one seen, duplicate pairs, labels for lists.
 *
 * Only SQL lives here; what the rows mean on screen is the tui's business. Every statement is
 * prepared and every value bound. Nothing here writes.
 */
#include "store_impl.h"

#include <stdio.h>
#include <string.h>

lt_store_status lt_store_data_version(lt_store *st, int64_t *version)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA data_version", -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    int x = sqlite3_step(s);
    lt_store_status rc = LT_STORE_OK;
    if (x == SQLITE_ROW)
        *version = sqlite3_column_int64(s, 0);
    else
        rc = lt_store_map_rc(x);
    sqlite3_finalize(s);
    return rc;
}

void lt_store_read_end(lt_store *st)
{
    for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s; s = sqlite3_next_stmt(st->db, s))
        if (sqlite3_stmt_busy(s))
            sqlite3_reset(s);
}

lt_store_status lt_store_metrics_iter_after(lt_store *st, int64_t run_id, const char *name,
                                            int64_t after_step, lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st,
        "SELECT step, name, value, t FROM metrics WHERE run_id=?1 AND name=?2 AND step>?3"
        " ORDER BY step",
        it);
    if (rc != LT_STORE_OK)
        return rc;
    sqlite3_bind_int64((*it)->stmt, 1, run_id);
    sqlite3_bind_text((*it)->stmt, 2, name ? name : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64((*it)->stmt, 3, after_step);
    return LT_STORE_OK;
}

lt_store_status lt_store_runs_count_active(lt_store *st, int64_t *n)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT COUNT(*) FROM runs WHERE status IN ('running','paused')", -1,
                           &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    int x = sqlite3_step(s);
    lt_store_status rc = x == SQLITE_ROW ? LT_STORE_OK : lt_store_map_rc(x);
    if (x == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc;
}

lt_store_status lt_store_version_label(lt_store *st, int64_t version_id, char *out,
                                       size_t outsz)
{
    sqlite3_stmt *s = NULL;
    if (outsz)
        out[0] = '\0';
    if (sqlite3_prepare_v2(st->db,
                           "SELECT d.name, v.version FROM dataset_versions v"
                           " JOIN datasets d ON d.id=v.dataset_id WHERE v.id=?",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, version_id);
    int x = sqlite3_step(s);
    lt_store_status rc = LT_STORE_OK;
    if (x == SQLITE_ROW)
        snprintf(out, outsz, "%s v%d", (const char *)sqlite3_column_text(s, 0),
                 sqlite3_column_int(s, 1));
    else
        rc = x == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(x);
    sqlite3_finalize(s);
    return rc;
}

lt_store_status lt_store_dedup_pairs_iter(lt_store *st, int64_t dataset_id, int version,
                                          lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st,
        "SELECT r.sample_id, r.kept_sample_id, r.similarity, r.kind, r.cluster"
        " FROM dedup_removals r JOIN dataset_versions v ON v.id=r.version_id"
        " WHERE v.dataset_id=?1 AND v.version<=?2"
        " ORDER BY (r.kind='near') DESC, r.similarity, r.version_id, r.cluster, r.sample_id",
        it);
    if (rc != LT_STORE_OK)
        return rc;
    sqlite3_bind_int64((*it)->stmt, 1, dataset_id);
    sqlite3_bind_int((*it)->stmt, 2, version);
    return LT_STORE_OK;
}

lt_store_status lt_store_dedup_pairs_next(lt_store_iter *it, lt_store_dedup_pair *p)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_DONE)
        return LT_STORE_DONE;
    if (x != SQLITE_ROW)
        return lt_store_map_rc(x);
    p->removed_sample_id = sqlite3_column_int64(it->stmt, 0);
    p->kept_sample_id = sqlite3_column_int64(it->stmt, 1);
    p->similarity = sqlite3_column_double(it->stmt, 2);
    p->kind = (const char *)sqlite3_column_text(it->stmt, 3);
    p->cluster = sqlite3_column_int64(it->stmt, 4);
    return LT_STORE_OK;
}
