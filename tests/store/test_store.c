/*
 * test_store.c - the workspace store: open creates the folder and lathe.db in WAL mode at the
 * current schema version; reopening is a no-op; a database from a newer lathe is refused and
 * left untouched; an older one is backed up before migrating; half-written versions of dead
 * processes are removed on open while finished ones stay; versions and memberships.
 */
#include "store.h"
#include "store_impl.h"
#include "test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static long long q_int(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long long v = -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void q_exec(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(db_path, &db) == SQLITE_OK) {
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            fprintf(stderr, "exec failed: %s\n", msg);
        sqlite3_free(msg);
    }
    sqlite3_close(db);
}

static void test_open_creates(void)
{
    char ws[400], db[512], err[512];
    snprintf(ws, sizeof ws, "%s/a/b/ws", tmpdir);
    lt_store *st = NULL;
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "open nested: %s", err);
    CHECK(st && strcmp(lt_store_workspace(st), ws) == 0, "workspace path kept");
    lt_store_close(st);
    snprintf(db, sizeof db, "%s/lathe.db", ws);
    struct stat sb;
    CHECK(stat(db, &sb) == 0, "lathe.db created");
    CHECK(q_int(db, "PRAGMA user_version") == lt_store_schema_version(), "schema version set");
    CHECK(q_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('datasets','samples',"
                    "'row_issues','dedup_signatures','dedup_removals','runs','metrics',"
                    "'checkpoints','evals','eval_samples','exports','jobs','control','plans',"
                    "'models','splits','filter_drops','dedup_clusters','dataset_files',"
                    "'dataset_versions')") == 20,
          "every table exists");
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    char mode[16] = "";
    if (sqlite3_open(db, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(h);
    CHECK(strcmp(mode, "wal") == 0, "WAL mode: %s", mode);
    /* reopen: nothing changes */
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "reopen: %s", err);
    lt_store_close(st);
    /* a path that is a file */
    snprintf(ws, sizeof ws, "%s/a/b/ws/lathe.db", tmpdir);
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_IO && strstr(err, "workspace"),
          "workspace on a file: %s", err);
    CHECK(strcmp(lt_store_workspace_resolve("x"), "x") == 0, "explicit workspace wins");
}

static void test_too_new_and_backup(void)
{
    char ws[400], db[512], err[512], bak[600];
    snprintf(ws, sizeof ws, "%s/versions", tmpdir);
    lt_store *st = NULL;
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "open: %s", err);
    lt_store_close(st);
    snprintf(db, sizeof db, "%s/lathe.db", ws);
    q_exec(db, "PRAGMA user_version=999");
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_TOO_NEW, "newer refused");
    CHECK(strstr(err, "schema version 999") && strstr(err, "newer lathe"), "message: %s", err);
    CHECK(q_int(db, "PRAGMA user_version") == 999, "left untouched");
    q_exec(db, "PRAGMA user_version=1");
    CHECK(lt_store_open_steps(ws, lt_store_migrations, 1, &st, err, sizeof err) == LT_STORE_OK,
          "current version opens");
    lt_store_close(st);
    snprintf(bak, sizeof bak, "%s.bak-v1", db);
    struct stat sb;
    CHECK(stat(bak, &sb) != 0, "no backup when nothing migrates");
    q_exec(db, "INSERT INTO datasets(name, status, created_at) VALUES('keep me', 'ready', 1)");
    /* a later lathe with a second step: backup first, then migrate, data kept */
    lt_store_migration steps[3] = {lt_store_migrations[0],
                                   {2, "a note column", "ALTER TABLE datasets ADD COLUMN note TEXT;"},
                                   {3, "a broken step", "CREATE TABLE oops(;"}};
    CHECK(lt_store_open_steps(ws, steps, 2, &st, err, sizeof err) == LT_STORE_OK,
          "migrate to 2: %s", err);
    lt_store_close(st);
    CHECK(stat(bak, &sb) == 0, "backup lathe.db.bak-v1 written");
    CHECK(q_int(bak, "PRAGMA user_version") == 1, "backup is at version 1");
    CHECK(q_int(bak, "SELECT COUNT(*) FROM datasets WHERE name='keep me'") == 1,
          "backup holds the data");
    CHECK(q_int(db, "PRAGMA user_version") == 2, "migrated to 2");
    CHECK(q_int(db, "SELECT COUNT(*) FROM datasets WHERE note IS NULL AND name='keep me'") == 1,
          "data kept through the migration");
    /* a failing step: clear message, database left at the last good version */
    CHECK(lt_store_open_steps(ws, steps, 3, &st, err, sizeof err) == LT_STORE_SQL &&
              strstr(err, "migration to schema version 3 (a broken step) failed"),
          "broken step: %s", err);
    CHECK(q_int(db, "PRAGMA user_version") == 2, "left at version 2");
    snprintf(bak, sizeof bak, "%s.bak-v2", db);
    CHECK(stat(bak, &sb) == 0, "backup before the failed step too");
    CHECK(lt_store_open("/proc/forbidden/ws", &st, err, sizeof err) != LT_STORE_OK,
          "unwritable workspace fails: %s", err);
}

static void test_versions_and_cleanup(void)
{
    char ws[400], db[512], err[512];
    snprintf(ws, sizeof ws, "%s/data", tmpdir);
    snprintf(db, sizeof db, "%s/lathe.db", ws);
    lt_store *st = NULL;
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "open: %s", err);
    if (!st)
        return;
    int64_t ds = 0, v1 = 0, v2 = 0, sid = 0;
    int n1 = 0, n2 = 0;
    CHECK(lt_store_begin(st) == LT_STORE_OK, "begin");
    CHECK(lt_store_dataset_create(st, "d", &ds) == LT_STORE_OK, "create dataset");
    CHECK(lt_store_dataset_create(st, "d", &ds) == LT_STORE_EXISTS, "name unique");
    CHECK(lt_store_version_create(st, ds, 0, "import", "{}", &v1, &n1) == LT_STORE_OK && n1 == 1,
          "version 1");
    for (int i = 0; i < 5; i++) {
        lt_store_sample s = {.row = i, .line = i + 1, .format = "text", .data = "{\"text\":\"x\"}",
                             .text_hash = "h", .n_chars = 1};
        CHECK(lt_store_sample_add(st, ds, v1, &s, &sid) == LT_STORE_OK, "sample %d", i);
    }
    CHECK(lt_store_dataset_find(st, "d", &ds) == LT_STORE_NOT_FOUND, "unfinished is invisible");
    CHECK(lt_store_version_finish(st, v1, "text", 5, 0) == LT_STORE_OK, "finish");
    CHECK(lt_store_commit(st) == LT_STORE_OK, "commit");
    CHECK(lt_store_dataset_find(st, "d", &ds) == LT_STORE_OK, "finished is visible");
    /* a second version removing one sample */
    CHECK(lt_store_begin(st) == LT_STORE_OK, "begin 2");
    CHECK(lt_store_version_create(st, ds, v1, "filter", "{}", &v2, &n2) == LT_STORE_OK && n2 == 2,
          "version 2");
    CHECK(lt_store_filter_drop_add(st, v2, sid, "test rule") == LT_STORE_OK, "drop");
    int64_t copied = 0;
    CHECK(lt_store_version_copy_members(st, v1, v2, &copied) == LT_STORE_OK && copied == 4,
          "copied %lld members", (long long)copied);
    CHECK(lt_store_version_finish(st, v2, "text", copied, 0) == LT_STORE_OK, "finish 2");
    CHECK(lt_store_commit(st) == LT_STORE_OK, "commit 2");
    lt_store_version v;
    CHECK(lt_store_version_get(st, "d", 0, &v) == LT_STORE_OK && v.version == 2 && v.n_rows == 4,
          "latest is version 2");
    CHECK(lt_store_version_get(st, "d", 1, &v) == LT_STORE_OK && v.n_rows == 5, "version 1");
    lt_store_sample s;
    CHECK(lt_store_sample_get(st, v2, 4, &s) == LT_STORE_NOT_FOUND, "dropped row not in v2");
    CHECK(lt_store_sample_get(st, v1, 4, &s) == LT_STORE_OK && s.line == 5, "but in v1");
    lt_store_close(st);
    /* a version left 'building' by a dead process */
    q_exec(db, "INSERT INTO dataset_versions(dataset_id, version, kind, status, pid, created_at) "
               "VALUES(1, 3, 'append', 'building', 999999999, 0);"
               "INSERT INTO samples(dataset_id, version_id, row_index, format, data, text_hash, "
               "n_chars, n_response_chars, n_turns) VALUES(1, last_insert_rowid(), 9, 'text', "
               "'{}', 'h', 0, 0, 0);"
               "INSERT INTO datasets(name, status, created_at) VALUES('ghost', 'building', 0);"
               "INSERT INTO dataset_versions(dataset_id, version, kind, status, pid, created_at) "
               "VALUES(last_insert_rowid(), 1, 'import', 'building', 999999999, 0);");
    CHECK(q_int(db, "SELECT COUNT(*) FROM samples") == 6, "partial rows present before open");
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "reopen: %s", err);
    lt_store_close(st);
    CHECK(q_int(db, "SELECT COUNT(*) FROM samples") == 5, "partial samples removed");
    CHECK(q_int(db, "SELECT COUNT(*) FROM dataset_versions") == 2, "partial versions removed");
    CHECK(q_int(db, "SELECT COUNT(*) FROM datasets") == 1, "ghost dataset removed");
    /* a live process's building version stays */
    char sql[300];
    snprintf(sql, sizeof sql,
             "INSERT INTO dataset_versions(dataset_id, version, kind, status, pid, created_at) "
             "VALUES(1, 3, 'append', 'building', %d, 0)",
             (int)getppid());
    q_exec(db, sql);
    CHECK(lt_store_open(ws, &st, err, sizeof err) == LT_STORE_OK, "reopen 2: %s", err);
    lt_store_close(st);
    CHECK(q_int(db, "SELECT COUNT(*) FROM dataset_versions") == 3, "live import untouched");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe_test_store_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_open_creates();
    test_too_new_and_backup();
    test_versions_and_cleanup();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
