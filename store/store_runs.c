/*
 * store_runs.c - statements for training runs: the run row, metrics (written in batches),
 * checkpoints, run events and control requests.
 *
 * Only SQL lives here; what a run means is pipeline/train's business. Every statement is
 * prepared and every string bound.
 */
#include "store_impl.h"

#include <limits.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#define RUN_COLS                                                                              \
    "id, name, config, method, model_path, model_hash, dataset_version_id, dataset_hash, "   \
    "device, status, pid, message, created_at, started_at, ended_at"

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static void fill_run(sqlite3_stmt *s, lt_store_run *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    r->name = col_text(s, 1);
    r->config = col_text(s, 2);
    r->method = col_text(s, 3);
    r->model_path = col_text(s, 4);
    r->model_hash = col_text(s, 5);
    r->dataset_version_id = sqlite3_column_int64(s, 6);
    r->dataset_hash = col_text(s, 7);
    r->device = col_text(s, 8);
    r->status = col_text(s, 9);
    r->pid = sqlite3_column_int64(s, 10);
    r->message = col_text(s, 11);
    r->created_at = sqlite3_column_int64(s, 12);
    r->started_at = sqlite3_column_int64(s, 13);
    r->ended_at = sqlite3_column_int64(s, 14);
}

/* Prepares a one-off statement; NULL on error (the store's errmsg says why). */
static sqlite3_stmt *prep(lt_store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return NULL;
    return s;
}

/* Runs a one-off statement to completion and finalizes it. */
static lt_store_status run_done(lt_store *st, sqlite3_stmt *s)
{
    lt_store_status r = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    return r;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *t)
{
    if (t)
        sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

lt_store_status lt_store_run_create(lt_store *st, const lt_store_run *r, int64_t *run_id)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO runs(name, config, method, model_path, model_hash,"
                               " dataset_version_id, dataset_hash, device, status, pid,"
                               " created_at) VALUES(?,?,?,?,?,?,?,?,'queued',?,?)");
    if (!s)
        return LT_STORE_SQL;
    bind_text_or_null(s, 1, r->name);
    sqlite3_bind_text(s, 2, r->config ? r->config : "{}", -1, SQLITE_TRANSIENT);
    bind_text_or_null(s, 3, r->method);
    char abs[PATH_MAX];
    bind_text_or_null(s, 4, lt_store_abs_path(r->model_path, abs));
    bind_text_or_null(s, 5, r->model_hash);
    if (r->dataset_version_id > 0)
        sqlite3_bind_int64(s, 6, r->dataset_version_id);
    else
        sqlite3_bind_null(s, 6);
    bind_text_or_null(s, 7, r->dataset_hash);
    bind_text_or_null(s, 8, r->device);
    sqlite3_bind_int64(s, 9, r->pid);
    sqlite3_bind_int64(s, 10, (int64_t)time(NULL));
    lt_store_status rc = run_done(st, s);
    if (rc == LT_STORE_OK && run_id)
        *run_id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

lt_store_status lt_store_runs_reap(lt_store *st, int *n_marked)
{
    int64_t dead[64];
    int n = 0;
    if (n_marked)
        *n_marked = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, pid FROM runs WHERE status IN ('running','paused') AND "
                           "pid > 0",
                           -1, &q, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    while (sqlite3_step(q) == SQLITE_ROW && n < 64)
        if (!lt_store_pid_alive(sqlite3_column_int64(q, 1)))
            dead[n++] = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    for (int i = 0; i < n; i++) {
        sqlite3_stmt *u = NULL;
        /* the status is checked again: the run may have finished since it was read */
        if (sqlite3_prepare_v2(st->db,
                               "UPDATE runs SET status='failed', message='process gone (pid '||"
                               "pid||')', ended_at=?2 WHERE id=?1 AND status IN "
                               "('running','paused')",
                               -1, &u, NULL) != SQLITE_OK)
            return LT_STORE_SQL;
        sqlite3_bind_int64(u, 1, dead[i]);
        sqlite3_bind_int64(u, 2, (int64_t)time(NULL));
        lt_store_status r = lt_store_step_done(st, u);
        sqlite3_finalize(u);
        if (r != LT_STORE_OK)
            return r;
        if (n_marked)
            *n_marked += sqlite3_changes(st->db);
    }
    return LT_STORE_OK;
}

lt_store_status lt_store_run_get(lt_store *st, int64_t run_id, lt_store_iter **it,
                                 lt_store_run *r)
{
    lt_store_runs_reap(st, NULL); /* best effort: a busy store still reads */
    lt_store_status rc = lt_store_iter_new(st, "SELECT " RUN_COLS " FROM runs WHERE id=?", it);
    if (rc != LT_STORE_OK)
        return rc;
    sqlite3_bind_int64((*it)->stmt, 1, run_id);
    int x = sqlite3_step((*it)->stmt);
    if (x == SQLITE_ROW) {
        fill_run((*it)->stmt, r);
        return LT_STORE_OK;
    }
    lt_store_iter_free(*it);
    *it = NULL;
    return x == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(x);
}

lt_store_status lt_store_run_find(lt_store *st, const char *id_or_name, int64_t *run_id)
{
    sqlite3_stmt *s = prep(st, "SELECT id FROM runs WHERE name=?1 OR CAST(id AS TEXT)=?1 "
                               "ORDER BY (name=?1) DESC LIMIT 1");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_text(s, 1, id_or_name, -1, SQLITE_TRANSIENT);
    int x = sqlite3_step(s);
    lt_store_status rc = LT_STORE_OK;
    if (x == SQLITE_ROW)
        *run_id = sqlite3_column_int64(s, 0);
    else
        rc = x == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(x);
    sqlite3_finalize(s);
    return rc;
}

lt_store_status lt_store_run_set_status(lt_store *st, int64_t run_id, const char *status,
                                        const char *message, int64_t pid)
{
    sqlite3_stmt *s = prep(
        st, "UPDATE runs SET status=?2, message=COALESCE(?3, message),"
            " pid=CASE WHEN ?4 > 0 THEN ?4 ELSE pid END,"
            " started_at=CASE WHEN ?2='running' THEN COALESCE(started_at, ?5) ELSE started_at END,"
            " ended_at=CASE WHEN ?2 IN ('stopped','done','failed') THEN ?5"
            "  WHEN ?2='running' THEN NULL ELSE ended_at END WHERE id=?1");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, status, -1, SQLITE_TRANSIENT);
    bind_text_or_null(s, 3, message);
    sqlite3_bind_int64(s, 4, pid);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    lt_store_status rc = run_done(st, s);
    if (rc == LT_STORE_OK && sqlite3_changes(st->db) == 0)
        rc = LT_STORE_NOT_FOUND;
    return rc;
}

lt_store_status lt_store_runs_iter(lt_store *st, lt_store_iter **it)
{
    lt_store_runs_reap(st, NULL); /* best effort: a busy store still reads */
    return lt_store_iter_new(st, "SELECT " RUN_COLS " FROM runs ORDER BY id DESC", it);
}

lt_store_status lt_store_runs_next(lt_store_iter *it, lt_store_run *r)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_DONE)
        return LT_STORE_DONE;
    if (x != SQLITE_ROW)
        return lt_store_map_rc(x);
    fill_run(it->stmt, r);
    return LT_STORE_OK;
}

/* ---- metrics ---- */

lt_store_status lt_store_metrics_put(lt_store *st, int64_t run_id, const lt_store_metric *m,
                                     int n)
{
    if (n <= 0)
        return LT_STORE_OK;
    sqlite3_stmt *s = prep(st, "INSERT OR REPLACE INTO metrics(run_id, step, name, value, t)"
                               " VALUES(?,?,?,?,?)");
    if (!s)
        return LT_STORE_SQL;
    lt_store_status rc = lt_store_begin(st);
    if (rc != LT_STORE_OK) {
        sqlite3_finalize(s);
        return rc;
    }
    for (int i = 0; i < n && rc == LT_STORE_OK; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_int64(s, 2, m[i].step);
        sqlite3_bind_text(s, 3, m[i].name, -1, SQLITE_TRANSIENT);
        /* SQLite stores NaN as NULL, which the column refuses: keep a NaN loss visible as a
         * huge value instead of losing the row */
        sqlite3_bind_double(s, 4, isnan(m[i].value) ? 1e308 : m[i].value);
        sqlite3_bind_double(s, 5, m[i].t);
        rc = lt_store_step_done(st, s);
    }
    sqlite3_finalize(s);
    if (rc == LT_STORE_OK)
        return lt_store_commit(st);
    lt_store_rollback(st);
    return rc;
}

lt_store_status lt_store_metrics_iter(lt_store *st, int64_t run_id, const char *name,
                                      lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st,
        "SELECT step, name, value, t FROM metrics WHERE run_id=?1 AND (?2 IS NULL OR name=?2)"
        " ORDER BY step, name",
        it);
    if (rc != LT_STORE_OK)
        return rc;
    sqlite3_bind_int64((*it)->stmt, 1, run_id);
    bind_text_or_null((*it)->stmt, 2, name);
    return LT_STORE_OK;
}

lt_store_status lt_store_metrics_next(lt_store_iter *it, lt_store_metric *m)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_DONE)
        return LT_STORE_DONE;
    if (x != SQLITE_ROW)
        return lt_store_map_rc(x);
    m->step = sqlite3_column_int64(it->stmt, 0);
    m->name = col_text(it->stmt, 1);
    m->value = sqlite3_column_double(it->stmt, 2);
    m->t = sqlite3_column_double(it->stmt, 3);
    return LT_STORE_OK;
}

lt_store_status lt_store_metric_summary(lt_store *st, int64_t run_id, const char *name,
                                        int64_t *n, double *last, int64_t *last_step,
                                        double *min, int64_t *min_step)
{
    sqlite3_stmt *s = prep(
        st, "SELECT COUNT(*),"
            " (SELECT value FROM metrics WHERE run_id=?1 AND name=?2 ORDER BY step DESC LIMIT 1),"
            " (SELECT step FROM metrics WHERE run_id=?1 AND name=?2 ORDER BY step DESC LIMIT 1),"
            " (SELECT value FROM metrics WHERE run_id=?1 AND name=?2 ORDER BY value, step LIMIT 1),"
            " (SELECT step FROM metrics WHERE run_id=?1 AND name=?2 ORDER BY value, step LIMIT 1)"
            " FROM metrics WHERE run_id=?1 AND name=?2");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    lt_store_status rc = LT_STORE_OK;
    int x = sqlite3_step(s);
    if (x != SQLITE_ROW) {
        rc = lt_store_map_rc(x);
    } else if (sqlite3_column_int64(s, 0) == 0) {
        rc = LT_STORE_NOT_FOUND;
    } else {
        if (n)
            *n = sqlite3_column_int64(s, 0);
        if (last)
            *last = sqlite3_column_double(s, 1);
        if (last_step)
            *last_step = sqlite3_column_int64(s, 2);
        if (min)
            *min = sqlite3_column_double(s, 3);
        if (min_step)
            *min_step = sqlite3_column_int64(s, 4);
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- checkpoints ---- */

lt_store_status lt_store_checkpoint_add(lt_store *st, const lt_store_checkpoint *c, int64_t *id)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO checkpoints(run_id, step, path, kind, loss,"
                               " created_at) VALUES(?,?,?,?,?,?)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, c->run_id);
    sqlite3_bind_int64(s, 2, c->step);
    char abs[PATH_MAX];
    sqlite3_bind_text(s, 3, lt_store_abs_path(c->path, abs), -1, SQLITE_TRANSIENT);
    bind_text_or_null(s, 4, c->kind);
    if (isfinite(c->loss))
        sqlite3_bind_double(s, 5, c->loss);
    else
        sqlite3_bind_null(s, 5);
    sqlite3_bind_int64(s, 6, (int64_t)time(NULL));
    lt_store_status rc = run_done(st, s);
    if (rc == LT_STORE_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

lt_store_status lt_store_checkpoint_delete(lt_store *st, int64_t id)
{
    sqlite3_stmt *s = prep(st, "DELETE FROM checkpoints WHERE id=?");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, id);
    return run_done(st, s);
}

lt_store_status lt_store_checkpoint_set_kind(lt_store *st, int64_t id, const char *kind)
{
    sqlite3_stmt *s = prep(st, "UPDATE checkpoints SET kind=? WHERE id=?");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, id);
    return run_done(st, s);
}

lt_store_status lt_store_checkpoints_iter(lt_store *st, int64_t run_id, lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(st,
                                           "SELECT id, run_id, step, path, kind, loss, created_at"
                                           " FROM checkpoints WHERE run_id=? ORDER BY step, id",
                                           it);
    if (rc == LT_STORE_OK)
        sqlite3_bind_int64((*it)->stmt, 1, run_id);
    return rc;
}

lt_store_status lt_store_checkpoints_next(lt_store_iter *it, lt_store_checkpoint *c)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_DONE)
        return LT_STORE_DONE;
    if (x != SQLITE_ROW)
        return lt_store_map_rc(x);
    c->id = sqlite3_column_int64(it->stmt, 0);
    c->run_id = sqlite3_column_int64(it->stmt, 1);
    c->step = sqlite3_column_int64(it->stmt, 2);
    c->path = col_text(it->stmt, 3);
    c->kind = col_text(it->stmt, 4);
    c->loss = sqlite3_column_type(it->stmt, 5) == SQLITE_NULL ? NAN
                                                              : sqlite3_column_double(it->stmt, 5);
    c->created_at = sqlite3_column_int64(it->stmt, 6);
    return LT_STORE_OK;
}

/* ---- events ---- */

lt_store_status lt_store_run_event_add(lt_store *st, int64_t run_id, int64_t step,
                                       const char *kind, const char *message)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO run_events(run_id, step, kind, message, created_at)"
                               " VALUES(?,?,?,?,?)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, step);
    sqlite3_bind_text(s, 3, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, message, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    return run_done(st, s);
}

lt_store_status lt_store_run_events_iter(lt_store *st, int64_t run_id, lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st, "SELECT id, step, kind, message, created_at FROM run_events WHERE run_id=? ORDER BY id",
        it);
    if (rc == LT_STORE_OK)
        sqlite3_bind_int64((*it)->stmt, 1, run_id);
    return rc;
}

lt_store_status lt_store_run_events_next(lt_store_iter *it, lt_store_run_event *e)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_DONE)
        return LT_STORE_DONE;
    if (x != SQLITE_ROW)
        return lt_store_map_rc(x);
    e->id = sqlite3_column_int64(it->stmt, 0);
    e->step = sqlite3_column_int64(it->stmt, 1);
    e->kind = col_text(it->stmt, 2);
    e->message = col_text(it->stmt, 3);
    e->created_at = sqlite3_column_int64(it->stmt, 4);
    return LT_STORE_OK;
}

/* ---- control ---- */

lt_store_status lt_store_control_post(lt_store *st, int64_t run_id, const char *command,
                                      int64_t *id)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO control(run_id, command, created_at) VALUES(?,?,?)");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, command, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
    lt_store_status rc = run_done(st, s);
    if (rc == LT_STORE_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

lt_store_status lt_store_control_poll(lt_store *st, int64_t run_id, int64_t *id, char *cmd,
                                      size_t cmdlen)
{
    sqlite3_stmt *s = prep(st, "SELECT id, command FROM control WHERE run_id=? AND acked_at IS"
                               " NULL ORDER BY id LIMIT 1");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, run_id);
    int x = sqlite3_step(s);
    lt_store_status rc = LT_STORE_OK;
    if (x == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        snprintf(cmd, cmdlen, "%s", col_text(s, 1) ? col_text(s, 1) : "");
    } else {
        rc = x == SQLITE_DONE ? LT_STORE_DONE : lt_store_map_rc(x);
    }
    sqlite3_finalize(s);
    return rc;
}

lt_store_status lt_store_control_ack(lt_store *st, int64_t id)
{
    sqlite3_stmt *s = prep(st, "UPDATE control SET acked_at=? WHERE id=?");
    if (!s)
        return LT_STORE_SQL;
    sqlite3_bind_int64(s, 1, (int64_t)time(NULL));
    sqlite3_bind_int64(s, 2, id);
    return run_done(st, s);
}
