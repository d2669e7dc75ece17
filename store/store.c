/*
 * store.c - opening a workspace: the folder, lathe.db, pragmas, migrations with backups,
 * transactions, and the cleanup of imports whose process died half way.
 *
 * WAL checkpoints run on a thread of their own with a second connection, so a long writer
 * (an import) does not copy every page a second time on its own thread. The writer waits
 * for the checkpointer only when the WAL has grown past WAL_WAIT_FRAMES, so the WAL stays
 * bounded (it restarts from the beginning once everything in it is copied back).
 */
#include "store_impl.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *lt_store_status_str(lt_store_status s)
{
    switch (s) {
    case LT_STORE_OK: return "ok";
    case LT_STORE_NOT_FOUND: return "not found";
    case LT_STORE_EXISTS: return "already exists";
    case LT_STORE_IO: return "i/o error";
    case LT_STORE_TOO_NEW: return "database written by a newer lathe";
    case LT_STORE_BUSY: return "database busy";
    case LT_STORE_SQL: return "database error";
    case LT_STORE_DONE: return "no more rows";
    }
    return "unknown status";
}

int lt_store_schema_version(void)
{
    return lt_store_migrations[lt_store_n_migrations - 1].version;
}

const char *lt_store_workspace_resolve(const char *dir)
{
    if (dir && *dir)
        return dir;
    const char *h = getenv("LATHE_HOME");
    if (h && *h)
        return h;
    return ".lathe";
}

const char *lt_store_workspace(const lt_store *st) { return st->workspace; }

const char *lt_store_abs_path(const char *path, char *buf)
{
    if (!path || !*path || path[0] == '/')
        return path;
    if (realpath(path, buf))
        return buf;
    if (path[0] == '.' && path[1] == '/')
        path += 2;
    if (!getcwd(buf, PATH_MAX))
        return path;
    size_t n = strlen(buf), m = strlen(path);
    if (n + 1 + m >= PATH_MAX)
        return path;
    buf[n] = '/';
    memcpy(buf + n + 1, path, m + 1);
    return buf;
}
const char *lt_store_errmsg(const lt_store *st) { return sqlite3_errmsg(st->db); }

lt_store_status lt_store_map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return LT_STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return LT_STORE_BUSY;
    case SQLITE_CONSTRAINT: return LT_STORE_EXISTS;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY: return LT_STORE_IO;
    default: return LT_STORE_SQL;
    }
}

sqlite3_stmt *lt_store_cached(lt_store *st, int which, const char *sql)
{
    if (!st->stmt[which]) {
        if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[which],
                               NULL) != SQLITE_OK)
            return NULL;
    } else {
        sqlite3_reset(st->stmt[which]);
        sqlite3_clear_bindings(st->stmt[which]);
    }
    return st->stmt[which];
}

lt_store_status lt_store_step_done(lt_store *st, sqlite3_stmt *s)
{
    (void)st;
    int rc = sqlite3_step(s);
    lt_store_status r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? LT_STORE_OK : lt_store_map_rc(rc);
    sqlite3_reset(s);
    return r;
}

static lt_store_status exec(lt_store *st, const char *sql)
{
    return lt_store_map_rc(sqlite3_exec(st->db, sql, NULL, NULL, NULL));
}

lt_store_status lt_store_begin(lt_store *st) { return exec(st, "BEGIN IMMEDIATE"); }
lt_store_status lt_store_commit(lt_store *st) { return exec(st, "COMMIT"); }
lt_store_status lt_store_rollback(lt_store *st)
{
    if (sqlite3_get_autocommit(st->db))
        return LT_STORE_OK;
    return exec(st, "ROLLBACK");
}

/* mkdir -p for the workspace path. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf || n > 4000)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    struct stat sb;
    return (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) ? 0 : -1;
}

/* Copies the database (checkpointing WAL first) with SQLite's online backup API, so the copy
 * is a consistent, complete database file. */
static lt_store_status backup_db(lt_store *st, const char *dest, char *err, size_t errlen)
{
    sqlite3 *out = NULL;
    lt_store_status r = LT_STORE_IO;
    unlink(dest);
    if (sqlite3_open(dest, &out) != SQLITE_OK) {
        snprintf(err, errlen, "cannot create backup %s: %s", dest, sqlite3_errmsg(out));
        goto close_out;
    }
    sqlite3_backup *b = sqlite3_backup_init(out, "main", st->db, "main");
    if (!b) {
        snprintf(err, errlen, "cannot back up to %s: %s", dest, sqlite3_errmsg(out));
        goto close_out;
    }
    sqlite3_backup_step(b, -1);
    if (sqlite3_backup_finish(b) != SQLITE_OK) {
        snprintf(err, errlen, "backup to %s failed: %s", dest, sqlite3_errmsg(out));
        goto close_out;
    }
    r = LT_STORE_OK;
close_out:
    sqlite3_close(out);
    return r;
}

static lt_store_status migrate_locked(lt_store *st, const char *dbpath,
                                      const lt_store_migration *steps, int n_steps, char *err,
                                      size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int have = 0;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot read the schema version: %s", dbpath,
                 sqlite3_errmsg(st->db));
        return LT_STORE_SQL;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        have = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    int want = steps[n_steps - 1].version;
    if (have > want) {
        snprintf(err, errlen,
                 "%s has schema version %d but this lathe knows only up to %d; "
                 "use a newer lathe (the database was left untouched)",
                 dbpath, have, want);
        return LT_STORE_TOO_NEW;
    }
    if (have == want)
        return LT_STORE_OK;
    if (have > 0) {
        char bak[4300];
        snprintf(bak, sizeof bak, "%s.bak-v%d", dbpath, have);
        lt_store_status r = backup_db(st, bak, err, errlen);
        if (r != LT_STORE_OK)
            return r;
    }
    for (int i = 0; i < n_steps; i++) {
        const lt_store_migration *m = &steps[i];
        if (m->version <= have)
            continue;
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", m->version);
        char *msg = NULL;
        if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(st->db, m->sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(st->db, pragma, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "%s: migration to schema version %d (%s) failed: %s", dbpath,
                     m->version, m->what, msg ? msg : sqlite3_errmsg(st->db));
            sqlite3_free(msg);
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return LT_STORE_SQL;
        }
    }
    return LT_STORE_OK;
}

/* Brings the schema up to date. Processes opening one workspace at once are serialized by an
 * exclusive lock on lathe.db.lock (held only while a migration is due), and the version is
 * read again under it: only the first runs the steps and takes the backup, the others find
 * the schema current. */
static lt_store_status migrate(lt_store *st, const char *dbpath, const lt_store_migration *steps,
                               int n_steps, char *err, size_t errlen)
{
    int have = -1;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        have = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (have == steps[n_steps - 1].version)
        return LT_STORE_OK; /* the common case: no lock taken */
    char lockpath[4200];
    snprintf(lockpath, sizeof lockpath, "%s.lock", dbpath);
    int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0666); /* umask decides */
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock %s for the schema migration: %s", lockpath,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return LT_STORE_IO;
    }
    lt_store_status r = migrate_locked(st, dbpath, steps, n_steps, err, errlen);
    close(fd); /* releases the lock */
    return r;
}

/* ---- checkpoints on their own thread ---- */

#define WAL_CHECKPOINT_FRAMES 1000 /* SQLite's default autocheckpoint threshold */
#define WAL_WAIT_FRAMES 16384      /* 64 MiB of 4 KiB pages: the writer waits to let it restart */

typedef struct checkpointer {
    char *path;
    pthread_t th;
    bool started, failed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned requested, done; /* checkpoint requests; the last one a finished run covered */
    bool stop;
} checkpointer;

static void *checkpoint_main(void *arg)
{
    checkpointer *c = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(db);
        db = NULL;
    } else {
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    }
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->done == c->requested && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        unsigned gen = c->requested;
        pthread_mutex_unlock(&c->mu);
        /* PASSIVE never blocks the writer; busy or failed runs are retried at the next
         * commit, and the last connection to close checkpoints whatever is left */
        if (db)
            sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->mu);
        c->done = gen;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    sqlite3_close(db);
    return NULL;
}

/* Called by SQLite after each commit with the frames now in the WAL. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int n_frames)
{
    checkpointer *c = arg;
    if (n_frames < WAL_CHECKPOINT_FRAMES)
        return SQLITE_OK;
    pthread_mutex_lock(&c->mu);
    if (!c->started && !c->failed) {
        c->started = pthread_create(&c->th, NULL, checkpoint_main, c) == 0;
        c->failed = !c->started;
    }
    if (!c->started) {
        pthread_mutex_unlock(&c->mu);
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    unsigned gen = ++c->requested;
    pthread_cond_broadcast(&c->cv);
    while (n_frames >= WAL_WAIT_FRAMES && (int)(c->done - gen) < 0)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return SQLITE_OK;
}

static checkpointer *checkpointer_new(const char *path)
{
    checkpointer *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->path = strdup(path);
    if (!c->path)
        goto free_c;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        goto free_path;
    if (pthread_cond_init(&c->cv, NULL) != 0)
        goto destroy_mutex;
    return c;
destroy_mutex:
    pthread_mutex_destroy(&c->mu);
free_path:
    free(c->path);
free_c:
    free(c);
    return NULL;
}

/* Stops the thread after its current run (the connection's close checkpoints the rest). */
static void checkpointer_free(checkpointer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started)
        pthread_join(c->th, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->path);
    free(c);
}

lt_store_status lt_store_open(const char *workspace, lt_store **out, char *err, size_t errlen)
{
    return lt_store_open_steps(workspace, lt_store_migrations, lt_store_n_migrations, out, err,
                               errlen);
}

lt_store_status lt_store_open_steps(const char *workspace, const lt_store_migration *steps,
                                    int n_steps, lt_store **out, char *err, size_t errlen)
{
    lt_store_status r = LT_STORE_IO;
    char dbpath[4120];
    *out = NULL;
    workspace = lt_store_workspace_resolve(workspace);
    lt_store *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return LT_STORE_IO;
    }
    if (make_dirs(workspace) != 0) {
        snprintf(err, errlen, "cannot create workspace folder %s: %s", workspace,
                 strerror(errno));
        goto free_store;
    }
    /* absolute, so every path built from it (checkpoints, adapters) works from any folder */
    char abs_ws[PATH_MAX];
    st->workspace = strdup(lt_store_abs_path(workspace, abs_ws));
    if (!st->workspace)
        goto free_store;
    workspace = st->workspace;
    snprintf(dbpath, sizeof dbpath, "%s/lathe.db", workspace);
    /* no global memory statistics (nothing reads them; they cost a mutex per allocation);
     * refused, harmlessly, once SQLite is initialized */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* a store is used by one thread at a time (worker threads never touch it), so the
     * connection needs no mutex of its own */
    struct stat db_sb;
    bool db_new = stat(dbpath, &db_sb) != 0 || db_sb.st_size == 0;
    if (sqlite3_open_v2(dbpath, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", dbpath,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto close_db;
    }
    sqlite3_busy_timeout(st->db, 10000);
    if (db_new) {
        /* SQLite creates files 0644 before the umask: the umask alone decides instead (the
         * WAL and shared-memory files copy this mode), so a group-shared workspace
         * (LATHE_UMASK=007) has a database the group can write */
        mode_t mask = umask(0);
        umask(mask);
        chmod(dbpath, 0666 & ~mask);
    }
    /* a new database gives the pages of a removed import back to the file system
     * (lt_store_release_space); settable only before the file's first page is written, so
     * before the switch to WAL */
    if (db_new)
        sqlite3_exec(st->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
    char *msg = NULL;
    if (sqlite3_exec(st->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                     "PRAGMA cache_size=-32768;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s is not a usable SQLite database: %s", dbpath,
                 msg ? msg : "unknown error");
        sqlite3_free(msg);
        r = LT_STORE_SQL;
        goto close_db;
    }
    r = migrate(st, dbpath, steps, n_steps, err, errlen);
    if (r != LT_STORE_OK)
        goto close_db;
    r = lt_store_cleanup_partial(st, false, NULL);
    if (r != LT_STORE_OK) {
        snprintf(err, errlen, "%s: cleaning up an interrupted import failed: %s", dbpath,
                 sqlite3_errmsg(st->db));
        goto close_db;
    }
    checkpointer *ck = checkpointer_new(dbpath);
    if (!ck) {
        snprintf(err, errlen, "out of memory");
        r = LT_STORE_IO;
        goto close_db;
    }
    sqlite3_wal_hook(st->db, wal_hook, ck); /* replaces SQLite's own autocheckpoint */
    *out = st;
    return LT_STORE_OK;
close_db:
    sqlite3_close(st->db);
free_store:
    free(st->workspace);
    free(st);
    return r;
}

void lt_store_close(lt_store *st)
{
    if (!st)
        return;
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    /* the previous hook argument comes back: the checkpointer set by lt_store_open */
    checkpointer_free(sqlite3_wal_hook(st->db, NULL, NULL));
    sqlite3_close(st->db);
    free(st->workspace);
    free(st->version_name);
    free(st->version_kind);
    free(st->version_format);
    free(st->version_params);
    free(st);
}

void lt_store_release_space(lt_store *st)
{
    /* a no-op on databases made before auto_vacuum was set (their free pages are reused) */
    sqlite3_exec(st->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
}

bool lt_store_pid_alive(int64_t pid)
{
    if (pid <= 0)
        return false;
    if (pid == (int64_t)getpid())
        return true;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

lt_store_status lt_store_cleanup_partial(lt_store *st, bool all, int *n_removed)
{
    sqlite3_stmt *q = NULL;
    int64_t dead[256];
    int n_dead = 0, removed = 0;
    lt_store_status r = LT_STORE_OK;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, pid FROM dataset_versions WHERE status='building'", -1,
                           &q, NULL) != SQLITE_OK)
        return LT_STORE_SQL;
    while (sqlite3_step(q) == SQLITE_ROW && n_dead < 256) {
        int64_t id = sqlite3_column_int64(q, 0), pid = sqlite3_column_int64(q, 1);
        if (all || !lt_store_pid_alive(pid))
            dead[n_dead++] = id;
    }
    sqlite3_finalize(q);
    for (int i = 0; i < n_dead && r == LT_STORE_OK; i++) {
        r = lt_store_version_delete(st, dead[i]);
        removed++;
    }
    if (r == LT_STORE_OK && n_dead > 0)
        r = exec(st, "DELETE FROM datasets WHERE status='building' AND id NOT IN "
                     "(SELECT dataset_id FROM dataset_versions)");
    if (r == LT_STORE_OK && n_dead > 0)
        lt_store_release_space(st);
    if (n_removed)
        *n_removed = removed;
    return r;
}

lt_store_status lt_store_iter_new(lt_store *st, const char *sql, lt_store_iter **it)
{
    *it = calloc(1, sizeof **it);
    if (!*it)
        return LT_STORE_IO;
    (*it)->st = st;
    if (sqlite3_prepare_v2(st->db, sql, -1, &(*it)->stmt, NULL) != SQLITE_OK) {
        free(*it);
        *it = NULL;
        return LT_STORE_SQL;
    }
    return LT_STORE_OK;
}

void lt_store_iter_free(lt_store_iter *it)
{
    if (!it)
        return;
    sqlite3_finalize(it->stmt);
    free(it);
}
