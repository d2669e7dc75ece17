/*
 * store_impl.h - what the store's own .c files share: the handle's layout, the migration
 * table, and statement helpers. Never included outside store/.
 */
#ifndef LATHE_STORE_IMPL_H
#define LATHE_STORE_IMPL_H

#include "store.h"

#include <sqlite3.h>

typedef struct lt_store_migration {
    int version;             /* user_version after this step */
    const char *what;        /* one line, for the log and the backup message */
    const char *sql;         /* statements run in one transaction */
} lt_store_migration;

extern const lt_store_migration lt_store_migrations[];
extern const int lt_store_n_migrations;

/* lt_store_open with another list of steps: lets tests check backups and failed steps. */
lt_store_status lt_store_open_steps(const char *workspace, const lt_store_migration *steps,
                                    int n_steps, lt_store **out, char *err, size_t errlen);

/* Statements kept prepared for the hot import path. */
enum {
    STMT_SAMPLE_ADD,
    STMT_MEMBER_ADD,
    STMT_ISSUE_ADD,
    STMT_SIG_PUT,
    STMT_REMOVAL_ADD,
    STMT_CLUSTER_ADD,
    STMT_FILTER_ADD,
    STMT_SPLIT_SET,
    STMT_VERSION_GET,
    STMT_SAMPLE_GET,
    STMT_SAMPLE_GET_ID,
    STMT_COUNT
};

struct lt_store {
    sqlite3 *db;
    char *workspace;
    char *version_name;       /* storage for lt_store_version_get strings */
    char *version_kind;
    char *version_format;
    char *version_params;
    sqlite3_stmt *stmt[STMT_COUNT];
};

struct lt_store_iter {
    lt_store *st;
    sqlite3_stmt *stmt;
};

/* Prepares (once) and resets a cached statement. NULL on error. */
sqlite3_stmt *lt_store_cached(lt_store *st, int which, const char *sql);
/* Runs a statement that returns no rows; maps SQLite codes to a status. */
lt_store_status lt_store_step_done(lt_store *st, sqlite3_stmt *s);
lt_store_status lt_store_map_rc(int rc);
/* Every path the store records is absolute, so a run, checkpoint or export recorded from one
 * directory opens from any other: a relative path is resolved against the current directory
 * (through realpath when it exists). Returns path itself when already absolute or NULL, else
 * buf (PATH_MAX bytes), or path unchanged when the current directory cannot be read. */
const char *lt_store_abs_path(const char *path, char *buf);
/* Whether process pid runs on this machine (this process counts; EPERM means it exists). */
bool lt_store_pid_alive(int64_t pid);
lt_store_status lt_store_iter_new(lt_store *st, const char *sql, lt_store_iter **it);

#endif
