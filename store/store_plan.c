/*
 * store_plan.c - statements for the wizard's plans: the decision record (answers, facts, the
 * path through the tree, estimates) and the training config it produced.
 *
 * Only SQL lives here; what a plan means is pipeline/plan's business. The record is kept in
 * the plans table's facts column and the config in its config column.
 */
#include "store_impl.h"

#include <time.h>

lt_store_status lt_store_plan_add(lt_store *st, int64_t dataset_version_id, const char *record,
                                  const char *config, int64_t *plan_id)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO plans(dataset_version_id, facts, config, created_at) "
                           "VALUES(?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    if (dataset_version_id > 0)
        sqlite3_bind_int64(s, 1, dataset_version_id);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_text(s, 2, record ? record : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, config ? config : "null", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, (int64_t)time(NULL));
    lt_store_status rc = lt_store_step_done(st, s);
    sqlite3_finalize(s);
    if (rc == LT_STORE_OK && plan_id)
        *plan_id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

static void fill_plan(sqlite3_stmt *s, lt_store_plan *p)
{
    p->id = sqlite3_column_int64(s, 0);
    p->dataset_version_id = sqlite3_column_int64(s, 1);
    p->record = (const char *)sqlite3_column_text(s, 2);
    p->config = (const char *)sqlite3_column_text(s, 3);
    p->created_at = sqlite3_column_int64(s, 4);
}

lt_store_status lt_store_plan_get(lt_store *st, int64_t plan_id, lt_store_iter **it,
                                  lt_store_plan *p)
{
    lt_store_status rc = lt_store_iter_new(
        st, "SELECT id, dataset_version_id, facts, config, created_at FROM plans WHERE id=?", it);
    if (rc != LT_STORE_OK)
        return rc;
    sqlite3_bind_int64((*it)->stmt, 1, plan_id);
    int x = sqlite3_step((*it)->stmt);
    if (x == SQLITE_ROW) {
        fill_plan((*it)->stmt, p);
        return LT_STORE_OK;
    }
    lt_store_iter_free(*it);
    *it = NULL;
    return x == SQLITE_DONE ? LT_STORE_NOT_FOUND : lt_store_map_rc(x);
}

lt_store_status lt_store_plans_iter(lt_store *st, lt_store_iter **it)
{
    return lt_store_iter_new(st,
                             "SELECT id, dataset_version_id, facts, config, created_at FROM plans "
                             "ORDER BY id DESC",
                             it);
}

lt_store_status lt_store_plans_next(lt_store_iter *it, lt_store_plan *p)
{
    int x = sqlite3_step(it->stmt);
    if (x == SQLITE_ROW) {
        fill_plan(it->stmt, p);
        return LT_STORE_OK;
    }
    return x == SQLITE_DONE ? LT_STORE_DONE : lt_store_map_rc(x);
}
