/*
 * store_eval.c - statements for evaluations: one evals row per system evaluated (a base
 * model zero-shot or k-shot, a run, an adapter) with its results JSON, and its per-row
 * samples (prompt, reference, output, scores JSON) in eval_samples.
 *
 * Only SQL lives here; what the results mean is pipeline/eval's business. Every statement is
 * prepared and every string bound.
 */
#include "store_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAL_COLS "id, run_id, dataset_version_id, split, results, created_at"

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static void fill_eval(sqlite3_stmt *s, lt_store_eval *e)
{
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(s, 0);
    e->run_id = sqlite3_column_int64(s, 1);
    e->dataset_version_id = sqlite3_column_int64(s, 2);
    e->split = col_text(s, 3);
    e->results = col_text(s, 4);
    e->created_at = sqlite3_column_int64(s, 5);
}

static void bind_id_or_null(sqlite3_stmt *s, int i, int64_t id)
{
    if (id > 0)
        sqlite3_bind_int64(s, i, id);
    else
        sqlite3_bind_null(s, i);
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *t)
{
    if (t)
        sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

lt_store_status lt_store_eval_add(lt_store *st, const lt_store_eval *e, int64_t *eval_id)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO evals(run_id, dataset_version_id, split, results,"
                           " created_at) VALUES(?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    bind_id_or_null(s, 1, e->run_id);
    bind_id_or_null(s, 2, e->dataset_version_id);
    bind_text_or_null(s, 3, e->split);
    sqlite3_bind_text(s, 4, e->results ? e->results : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, e->created_at ? e->created_at : (int64_t)time(NULL));
    lt_store_status rc = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    if (rc == LT_STORE_OK && eval_id)
        *eval_id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

lt_store_status lt_store_eval_set_results(lt_store *st, int64_t eval_id, const char *results)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "UPDATE evals SET results=? WHERE id=?", -1, &s, NULL) !=
        SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_text(s, 1, results, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, eval_id);
    lt_store_status rc = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    if (rc == LT_STORE_OK && sqlite3_changes(st->db) == 0)
        rc = LT_STORE_NOT_FOUND;
    return rc;
}

lt_store_status lt_store_eval_get(lt_store *st, int64_t eval_id, lt_store_iter **it,
                                  lt_store_eval *e)
{
    lt_store_status rc = lt_store_iter_new(st, "SELECT " EVAL_COLS " FROM evals WHERE id=?", it);
    if (rc != LT_STORE_OK)
        return rc;
    sqlite3_bind_int64((*it)->stmt, 1, eval_id);
    int x = sqlite3_step((*it)->stmt);
    if (x == SQLITE_ROW) {
        fill_eval((*it)->stmt, e);
        return LT_STORE_OK;
    }
    lt_store_iter_free(*it);
    *it = NULL;
    return x == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(x);
}

lt_store_status lt_store_evals_iter(lt_store *st, int64_t run_id, lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st,
        run_id > 0 ? "SELECT " EVAL_COLS " FROM evals WHERE run_id=? ORDER BY id DESC"
                   : "SELECT " EVAL_COLS " FROM evals ORDER BY id DESC",
        it);
    if (rc == LT_STORE_OK && run_id > 0)
        sqlite3_bind_int64((*it)->stmt, 1, run_id);
    return rc;
}

lt_store_status lt_store_evals_next(lt_store_iter *it, lt_store_eval *e)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_ROW) {
        fill_eval(it->stmt, e);
        return LT_STORE_OK;
    }
    return x == SQLITE_DONE ? LT_STORE_DONE : lt_store_map_rc(x);
}

lt_store_status lt_store_eval_sample_add(lt_store *st, int64_t eval_id,
                                         const lt_store_eval_sample *s)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO eval_samples(eval_id, sample_id, prompt, reference,"
                           " output, scores) VALUES(?,?,?,?,?,?)",
                           -1, &q, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    sqlite3_bind_int64(q, 1, eval_id);
    bind_id_or_null(q, 2, s->sample_id);
    bind_text_or_null(q, 3, s->prompt);
    bind_text_or_null(q, 4, s->reference);
    bind_text_or_null(q, 5, s->output);
    bind_text_or_null(q, 6, s->scores);
    lt_store_status rc = lt_store_step_done(st, q);
    sqlite3_finalize(q);
    return rc;
}

lt_store_status lt_store_eval_samples_iter(lt_store *st, int64_t eval_id, lt_store_iter **it)
{
    lt_store_status rc = lt_store_iter_new(
        st,
        "SELECT sample_id, prompt, reference, output, scores FROM eval_samples WHERE eval_id=?"
        " ORDER BY rowid",
        it);
    if (rc == LT_STORE_OK)
        sqlite3_bind_int64((*it)->stmt, 1, eval_id);
    return rc;
}

lt_store_status lt_store_eval_samples_next(lt_store_iter *it, lt_store_eval_sample *s)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_ROW) {
        s->sample_id = sqlite3_column_int64(it->stmt, 0);
        s->prompt = col_text(it->stmt, 1);
        s->reference = col_text(it->stmt, 2);
        s->output = col_text(it->stmt, 3);
        s->scores = col_text(it->stmt, 4);
        return LT_STORE_OK;
    }
    return x == SQLITE_DONE ? LT_STORE_DONE : lt_store_map_rc(x);
}
