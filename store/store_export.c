/*
 * store_export.c - statements for exports: one exports row per export (its kind, main path,
 * the run and checkpoint it came from, a detail JSON) and one export_files row per file
 * written, with its size and sha256.
 *
 * Only SQL lives here; computing checksums and writing files is pipeline/export's business.
 */
#include "store_impl.h"

#include <limits.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void bind_id_or_null(sqlite3_stmt *s, int i, int64_t id)
{
    if (id > 0)
        sqlite3_bind_int64(s, i, id);
    else
        sqlite3_bind_null(s, i);
}

static lt_store_status exec(lt_store *st, const char *sql)
{
    return lt_store_map_rc(sqlite3_exec(st->db, sql, NULL, NULL, NULL));
}

lt_store_status lt_store_export_add(lt_store *st, const lt_store_export *e,
                                    const lt_store_export_file *files, int n, int64_t *id)
{
    sqlite3_stmt *s = NULL;
    lt_store_status rc = exec(st, "BEGIN IMMEDIATE");
    if (rc != LT_STORE_OK)
        return rc;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO exports(run_id, checkpoint_id, kind, path, created_at,"
                           " detail) VALUES(?,?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = LT_STORE_SQL;
        goto rollback;
    }
    bind_id_or_null(s, 1, e->run_id);
    bind_id_or_null(s, 2, e->checkpoint_id);
    sqlite3_bind_text(s, 3, e->kind, -1, SQLITE_TRANSIENT);
    char abs[PATH_MAX];
    sqlite3_bind_text(s, 4, lt_store_abs_path(e->path, abs), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    if (e->detail)
        sqlite3_bind_text(s, 6, e->detail, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, 6);
    rc = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    s = NULL;
    if (rc != LT_STORE_OK)
        goto rollback;
    int64_t eid = sqlite3_last_insert_rowid(st->db);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO export_files(export_id, path, bytes, sha256)"
                           " VALUES(?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = LT_STORE_SQL;
        goto rollback;
    }
    for (int i = 0; i < n; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, eid);
        char abs[PATH_MAX];
        sqlite3_bind_text(s, 2, lt_store_abs_path(files[i].path, abs), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, files[i].bytes);
        sqlite3_bind_text(s, 4, files[i].sha256, -1, SQLITE_TRANSIENT);
        if ((rc = lt_store_step_done(st, s)) != LT_STORE_OK)
            goto rollback;
    }
    sqlite3_finalize(s);
    if ((rc = exec(st, "COMMIT")) != LT_STORE_OK) {
        exec(st, "ROLLBACK");
        return rc;
    }
    if (id)
        *id = eid;
    return LT_STORE_OK;
rollback:
    sqlite3_finalize(s);
    exec(st, "ROLLBACK");
    return rc;
}

lt_store_status lt_store_exports_iter(lt_store *st, int64_t run_id, lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st,
        "SELECT id, run_id, checkpoint_id, kind, path, detail, created_at FROM exports"
        " WHERE ?1 = 0 OR run_id = ?1 ORDER BY id DESC",
        it);
    if (rc == LT_STORE_OK)
        sqlite3_bind_int64((*it)->stmt, 1, run_id);
    return rc;
}

lt_store_status lt_store_exports_next(lt_store_iter *it, lt_store_export *e)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_DONE)
        return LT_STORE_DONE;
    if (x != SQLITE_ROW)
        return lt_store_map_rc(x);
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(it->stmt, 0);
    e->run_id = sqlite3_column_int64(it->stmt, 1);
    e->checkpoint_id = sqlite3_column_int64(it->stmt, 2);
    e->kind = (const char *)sqlite3_column_text(it->stmt, 3);
    e->path = (const char *)sqlite3_column_text(it->stmt, 4);
    e->detail = (const char *)sqlite3_column_text(it->stmt, 5);
    e->created_at = sqlite3_column_int64(it->stmt, 6);
    return LT_STORE_OK;
}

lt_store_status lt_store_export_files_iter(lt_store *st, int64_t export_id, lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st, "SELECT path, bytes, sha256 FROM export_files WHERE export_id=? ORDER BY path", it);
    if (rc == LT_STORE_OK)
        sqlite3_bind_int64((*it)->stmt, 1, export_id);
    return rc;
}

lt_store_status lt_store_export_files_next(lt_store_iter *it, lt_store_export_file *f)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_DONE)
        return LT_STORE_DONE;
    if (x != SQLITE_ROW)
        return lt_store_map_rc(x);
    f->path = (const char *)sqlite3_column_text(it->stmt, 0);
    f->bytes = sqlite3_column_int64(it->stmt, 1);
    f->sha256 = (const char *)sqlite3_column_text(it->stmt, 2);
    return LT_STORE_OK;
}
