/*
 * data_import.c - `lathe data import`: files -> reader -> validation/normalization -> store,
 * one transaction per batch of rows.
 *
 * Crash and Ctrl-C safety: the new version is created (and committed) marked 'building' with
 * this process's pid before any row is written. It is marked 'ready' only after the last
 * row, in the last transaction. An interrupted import deletes its version on the way out; a
 * killed one is deleted by the next lt_store_open (its pid is gone). Readers of the store
 * only ever see 'ready' versions, so no half-written dataset is ever visible.
 */
#include "data_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAW_MAX 4096 /* bytes of a bad row's raw text kept in row_issues */

const char *lt_data_status_str(lt_data_status s)
{
    switch (s) {
    case LT_DATA_OK: return "ok";
    case LT_DATA_USAGE: return "bad options";
    case LT_DATA_IO: return "i/o error";
    case LT_DATA_ENCODING: return "not UTF-8 text";
    case LT_DATA_EMPTY: return "no data";
    case LT_DATA_STRICT: return "bad rows under --strict";
    case LT_DATA_INTERRUPTED: return "interrupted";
    case LT_DATA_NOT_FOUND: return "not found";
    case LT_DATA_STORE: return "database error";
    case LT_DATA_NOMEM: return "out of memory";
    }
    return "unknown status";
}

static const char *format_names[] = {"auto",       "alpaca", "sharegpt",       "messages",
                                     "preference", "text",   "multiple_choice"};

const char *lt_data_format_name(lt_data_format f)
{
    return (f >= 0 && f <= LT_DATA_FORMAT_MULTIPLE_CHOICE) ? format_names[f] : "unknown";
}

int lt_data_format_parse(const char *name)
{
    for (int i = 0; i <= LT_DATA_FORMAT_MULTIPLE_CHOICE; i++)
        if (strcmp(name, format_names[i]) == 0)
            return i;
    if (strcmp(name, "openai") == 0)
        return LT_DATA_FORMAT_MESSAGES;
    if (strcmp(name, "dpo") == 0)
        return LT_DATA_FORMAT_PREFERENCE;
    if (strcmp(name, "mc") == 0)
        return LT_DATA_FORMAT_MULTIPLE_CHOICE;
    return -1;
}

void lt_data_import_opts_default(lt_data_import_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = LT_DATA_FORMAT_AUTO;
}

typedef struct importer {
    lt_store *st;
    const lt_data_import_opts *o;
    lt_field_map map;
    lt_data_format format;
    int64_t dataset_id, version_id;
    int64_t next_row;
    int64_t in_batch;
    lt_data_import_result *res;
    char first_bad[600];
} importer;

static lt_data_status store_fail(importer *im, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "database error while %s: %s", what, lt_store_errmsg(im->st));
    return LT_DATA_STORE;
}

static lt_data_status add_issue(importer *im, int64_t file_id, const char *path,
                                const lt_row_job *j, const char *severity, const char *reason,
                                int64_t sample_row, char *err, size_t errlen)
{
    char raw[3 * RAW_MAX + 1];
    size_t n = j->raw_len < RAW_MAX ? j->raw_len : RAW_MAX, w = 0;
    for (size_t i = 0; j->raw && i < n; i++) {
        if (j->raw[i] == '\0') { /* kept visible as U+2400 (a NUL would end the text) */
            memcpy(raw + w, "\xe2\x90\x80", 3);
            w += 3;
        } else {
            raw[w++] = j->raw[i];
        }
    }
    raw[w] = '\0';
    lt_store_issue is = {.line = j->line,
                         .column = j->column,
                         .severity = severity,
                         .reason = reason,
                         .raw = raw,
                         .row = sample_row};
    if (strcmp(severity, "error") == 0 && !im->first_bad[0])
        snprintf(im->first_bad, sizeof im->first_bad, "%s: %s", path, reason);
    if (lt_store_issue_add(im->st, im->version_id, file_id, &is) != LT_STORE_OK)
        return store_fail(im, "recording a row issue", err, errlen);
    return LT_DATA_OK;
}

/* Commits the batch when it is full. */
static lt_data_status batch_tick(importer *im, char *err, size_t errlen)
{
    if (++im->in_batch < (im->o->batch_rows > 0 ? im->o->batch_rows : 20000))
        return LT_DATA_OK;
    im->in_batch = 0;
    if (lt_store_commit(im->st) != LT_STORE_OK || lt_store_begin(im->st) != LT_STORE_OK)
        return store_fail(im, "committing a batch", err, errlen);
    return LT_DATA_OK;
}

/* Writes one processed row: a sample (with its signature and warning) or a row issue. */
static lt_data_status store_job(importer *im, int64_t file_id, const char *path, lt_row_job *j,
                                char *err, size_t errlen)
{
    lt_data_status r;
    if (!j->good) {
        im->res->n_bad++;
        r = add_issue(im, file_id, path, j, "error", j->reason, -1, err, errlen);
        return r == LT_DATA_OK ? batch_tick(im, err, errlen) : r;
    }
    lt_store_sample s = {.row = im->next_row,
                         .file_id = file_id,
                         .line = j->line,
                         .format = lt_data_format_name(im->format),
                         .data = j->ns.json,
                         .text_hash = j->hash,
                         .n_chars = j->ns.n_chars,
                         .n_response_chars = j->ns.n_response_chars,
                         .n_turns = j->ns.n_turns,
                         .flags = j->ns.flags};
    if (lt_store_sample_add(im->st, im->dataset_id, im->version_id, &s, &s.id) != LT_STORE_OK)
        return store_fail(im, "storing a sample", err, errlen);
    if (j->has_sig) {
        lt_store_signature g = {.sample_id = s.id,
                                .row = s.row,
                                .text_hash = j->hash,
                                .n_response_chars = s.n_response_chars,
                                .sig = j->sig,
                                .bytes = sizeof j->sig};
        if (lt_store_signature_put(im->st, im->dataset_id, LT_IMPORT_SIG_PARAMS, &g) !=
            LT_STORE_OK)
            return store_fail(im, "storing a MinHash signature", err, errlen);
    }
    im->res->n_rows++;
    if (j->ns.warning[0]) {
        char reason[512];
        snprintf(reason, sizeof reason, "line %lld: %s", (long long)j->line, j->ns.warning);
        im->res->n_warnings++;
        r = add_issue(im, file_id, path, j, "warning", reason, im->next_row, err, errlen);
        if (r != LT_DATA_OK)
            return r;
    }
    im->next_row++;
    return batch_tick(im, err, errlen);
}

/* Raw rows of one batch are copied into one block instead of one allocation each. */
typedef struct arena {
    char *p;
    size_t used, cap;
} arena;

#define ARENA_BYTES (2u << 20)

/* Turns what the reader returned into a job (copying what must outlive the next read). */
static bool make_job(lt_reader *rd, lt_read_kind k, const lt_read_row *row, lt_row_job *j,
                     arena *a)
{
    memset(j, 0, sizeof *j);
    j->kind = k;
    j->line = row->line;
    j->column = row->column;
    size_t n = row->raw_len;
    if (k != LT_READ_RAW && n > RAW_MAX)
        n = RAW_MAX; /* only kept for the issue list */
    if (a && a->p && a->used + n + 1 <= a->cap) {
        j->raw = a->p + a->used;
        a->used += n + 1;
    } else {
        j->raw = malloc(n + 1);
        j->raw_owned = true;
    }
    if (!j->raw)
        return false;
    memcpy(j->raw, row->raw, n);
    j->raw[n] = '\0';
    j->raw_len = n;
    if (k == LT_READ_BAD || k == LT_READ_ROW) /* ROW: a parser warning, or "" */
        snprintf(j->reason, sizeof j->reason, "%s", row->reason);
    if (k == LT_READ_ROW)
        j->json = lt_reader_take_json(rd);
    return true;
}

enum { POOL_BATCH = 1024 };

typedef struct file_ctx {
    importer *im;
    lt_reader *rd;
    const char *path;
    int64_t file_id;
    int64_t last_report;
    bool eof;
} file_ctx;

static lt_data_status check_interrupt(file_ctx *f, char *err, size_t errlen)
{
    if (f->im->o->interrupt && *f->im->o->interrupt) {
        snprintf(err, errlen, "interrupted while reading %s; nothing was kept", f->path);
        return LT_DATA_INTERRUPTED;
    }
    int64_t done = lt_reader_bytes_read(f->rd);
    if (f->im->o->progress && done - f->last_report >= (4 << 20)) {
        f->last_report = done;
        f->im->o->progress(f->im->o->progress_ctx, f->path, done, lt_reader_file_size(f->rd),
                           f->im->res->n_rows);
    }
    return LT_DATA_OK;
}

/* Rows one at a time on this thread until the format is known (auto detection reads the
 * first good row). */
static lt_data_status detect_format(file_ctx *f, const lt_row_ctx *base, char *err,
                                    size_t errlen)
{
    importer *im = f->im;
    lt_read_row row;
    lt_row_job j;
    while (im->format == LT_DATA_FORMAT_AUTO) {
        lt_data_status r = check_interrupt(f, err, errlen);
        if (r != LT_DATA_OK)
            return r;
        lt_read_kind k = lt_reader_next(f->rd, &row);
        if (k == LT_READ_EOF) {
            f->eof = true;
            return LT_DATA_OK;
        }
        if (!make_job(f->rd, k, &row, &j, NULL))
            return LT_DATA_NOMEM;
        if (k == LT_READ_ROW) {
            im->format = lt_format_detect(j.json, &im->map);
            if (im->format == LT_DATA_FORMAT_AUTO) {
                snprintf(j.reason, sizeof j.reason,
                         "line %lld: row fits no known format (expected instruction/output, "
                         "conversations, messages, prompt/chosen/rejected, text or "
                         "question/choices/answer; map columns with --field-map)",
                         (long long)j.line);
                j.kind = LT_READ_BAD;
            }
        }
        lt_row_ctx c = *base;
        c.format = im->format;
        lt_row_process(&c, &j);
        r = store_job(im, f->file_id, f->path, &j, err, errlen);
        lt_row_job_clear(&j);
        if (r != LT_DATA_OK)
            return r;
    }
    return LT_DATA_OK;
}

/* Reads up to POOL_BATCH rows into jobs, raw text into the arena. OUT *n. */
static lt_data_status fill(file_ctx *f, lt_row_job *jobs, arena *a, int *n, char *err,
                           size_t errlen)
{
    lt_read_row row;
    *n = 0;
    a->used = 0;
    while (!f->eof && *n < POOL_BATCH) {
        lt_data_status r = check_interrupt(f, err, errlen);
        if (r != LT_DATA_OK)
            return r;
        lt_read_kind k = lt_reader_next(f->rd, &row);
        if (k == LT_READ_EOF) {
            f->eof = true;
            break;
        }
        if (!make_job(f->rd, k, &row, &jobs[*n], a))
            return LT_DATA_NOMEM;
        (*n)++;
    }
    return LT_DATA_OK;
}

static void clear_jobs(lt_row_job *jobs, int n)
{
    for (int i = 0; i < n; i++)
        lt_row_job_clear(&jobs[i]);
}

/* The rest of the file: this thread reads batch k+1 and writes batch k-1 while the workers
 * process batch k (or everything here when there is no pool). */
static lt_data_status pipeline(file_ctx *f, const lt_row_ctx *c, lt_row_pool *pool,
                               lt_row_job *jobs[2], char *err, size_t errlen)
{
    int n[2] = {0, 0}, cur = 0;
    arena ar[2] = {{malloc(ARENA_BYTES), 0, ARENA_BYTES}, {malloc(ARENA_BYTES), 0, ARENA_BYTES}};
    lt_data_status r = fill(f, jobs[cur], &ar[cur], &n[cur], err, errlen);
    while (r == LT_DATA_OK && n[cur] > 0) {
        if (pool)
            lt_row_pool_run(pool, c, jobs[cur], n[cur]);
        else
            for (int i = 0; i < n[cur]; i++)
                lt_row_process(c, &jobs[cur][i]);
        r = fill(f, jobs[1 - cur], &ar[1 - cur], &n[1 - cur], err, errlen);
        if (pool)
            lt_row_pool_wait(pool);
        for (int i = 0; r == LT_DATA_OK && i < n[cur]; i++)
            r = store_job(f->im, f->file_id, f->path, &jobs[cur][i], err, errlen);
        clear_jobs(jobs[cur], n[cur]);
        n[cur] = 0;
        cur = 1 - cur;
    }
    clear_jobs(jobs[0], n[0]);
    clear_jobs(jobs[1], n[1]);
    free(ar[0].p); /* a missing arena only means one allocation per row */
    free(ar[1].p);
    if (r == LT_DATA_NOMEM)
        snprintf(err, errlen, "out of memory while reading %s", f->path);
    return r;
}

static lt_data_status import_file(importer *im, lt_reader *rd, const char *path,
                                  lt_row_pool *pool, lt_row_job *jobs[2], char *err,
                                  size_t errlen)
{
    int64_t rows0 = im->res->n_rows, bad0 = im->res->n_bad;
    file_ctx f = {.im = im, .rd = rd, .path = path};
    if (lt_store_file_add(im->st, im->version_id, path, &f.file_id) != LT_STORE_OK)
        return store_fail(im, "recording a file", err, errlen);
    lt_row_ctx c = {.format = im->format,
                    .map = &im->map,
                    .max_chars = im->o->max_chars,
                    .sign = !im->o->no_signatures};
    lt_data_status r = detect_format(&f, &c, err, errlen);
    if (r == LT_DATA_NOMEM)
        snprintf(err, errlen, "out of memory while reading %s", path);
    if (r != LT_DATA_OK)
        return r;
    c.format = im->format;
    lt_reader_defer_parse(rd, true);
    r = pipeline(&f, &c, pool, jobs, err, errlen);
    if (r != LT_DATA_OK)
        return r;
    if (lt_reader_error(rd)) { /* the rows stopped early: nothing of a short read is kept */
        if (lt_reader_error(rd) == EINTR && im->o->interrupt && *im->o->interrupt) {
            snprintf(err, errlen, "interrupted while reading %s; nothing was kept", path);
            return LT_DATA_INTERRUPTED;
        }
        snprintf(err, errlen, "%s: read error after %lld bytes: %s; nothing was kept", path,
                 (long long)lt_reader_bytes_read(rd), strerror(lt_reader_error(rd)));
        return LT_DATA_IO;
    }
    const char *sha = lt_reader_sha256(rd);
    int64_t size = lt_reader_file_size(rd);
    im->res->bytes += size;
    if (im->o->progress && size >= (4 << 20))
        im->o->progress(im->o->progress_ctx, path, size, size, im->res->n_rows);
    if (lt_store_file_finish(im->st, f.file_id, size, sha, im->res->n_rows - rows0,
                             im->res->n_bad - bad0) != LT_STORE_OK)
        return store_fail(im, "recording a file hash", err, errlen);
    return LT_DATA_OK;
}

/* "dir/name.jsonl" -> "name" */
static void base_name(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

lt_data_status lt_data_import(lt_store *st, const char *const *paths, int n_paths,
                              const lt_data_import_opts *o, lt_data_import_result *res,
                              char *err, size_t errlen)
{
    importer im = {.st = st, .o = o, .res = res, .format = o->format};
    lt_reader **readers = NULL;
    lt_row_pool *pool = NULL;
    lt_row_job *jobs[2] = {NULL, NULL};
    lt_data_status r = LT_DATA_OK;
    char name[256];
    memset(res, 0, sizeof *res);
    if (n_paths <= 0) {
        snprintf(err, errlen, "no input files");
        return LT_DATA_USAGE;
    }
    if (!lt_field_map_parse(&im.map, o->field_map, o->n_field_map, err, errlen))
        return LT_DATA_USAGE;
    base_name(paths[0], name, sizeof name);
    if (o->name && *o->name)
        snprintf(name, sizeof name, "%s", o->name);
    /* every file is checked (encoding, emptiness) before anything is written */
    readers = calloc((size_t)n_paths, sizeof *readers);
    if (!readers)
        return LT_DATA_NOMEM;
    for (int i = 0; i < n_paths; i++) {
        r = lt_reader_open(paths[i], o->max_row_bytes, &readers[i], err, errlen);
        if (r != LT_DATA_OK)
            goto close_readers;
    }
    int64_t parent = 0;
    if (lt_store_begin(st) != LT_STORE_OK) {
        r = store_fail(&im, "starting the import", err, errlen);
        goto close_readers;
    }
    if (lt_store_dataset_find(st, name, &im.dataset_id) == LT_STORE_OK) {
        if (!o->append) {
            lt_store_rollback(st);
            snprintf(err, errlen,
                     "a dataset named '%s' exists; use --append to add these rows as a new "
                     "version of it, or --name to pick another name",
                     name);
            r = LT_DATA_USAGE;
            goto close_readers;
        }
        lt_store_version v;
        if (lt_store_version_get(st, name, 0, &v) == LT_STORE_OK) {
            parent = v.version_id;
            int pf = lt_data_format_parse(v.format);
            if (im.format == LT_DATA_FORMAT_AUTO && pf > 0)
                im.format = (lt_data_format)pf;
        }
    } else {
        lt_store_status cs = lt_store_dataset_create(st, name, &im.dataset_id);
        if (cs == LT_STORE_EXISTS) {
            /* the name is held by a first import still running in another process */
            lt_store_rollback(st);
            snprintf(err, errlen,
                     "a dataset named '%s' is being imported by another process; wait for it "
                     "to finish and use --append to add these rows as a new version of it, or "
                     "--name to pick another name",
                     name);
            r = LT_DATA_USAGE;
            goto close_readers;
        }
        if (cs != LT_STORE_OK) {
            r = store_fail(&im, "creating the dataset", err, errlen);
            lt_store_rollback(st);
            goto close_readers;
        }
    }
    char params[512];
    snprintf(params, sizeof params, "{\"files\":%d,\"format\":\"%s\",\"strict\":%s}", n_paths,
             lt_data_format_name(o->format), o->strict ? "true" : "false");
    if (lt_store_version_create(st, im.dataset_id, parent, parent ? "append" : "import", params,
                                &im.version_id, &res->version) != LT_STORE_OK ||
        (parent && lt_store_version_copy_members(st, parent, im.version_id, NULL) != LT_STORE_OK) ||
        lt_store_rows_max(st, im.dataset_id, &im.next_row) != LT_STORE_OK ||
        lt_store_commit(st) != LT_STORE_OK) {
        r = store_fail(&im, "creating the version", err, errlen);
        lt_store_rollback(st);
        goto close_readers;
    }
    im.next_row++;
    int64_t first_row = im.next_row;
    res->dataset_id = im.dataset_id;
    res->version_id = im.version_id;
    snprintf(res->name, sizeof res->name, "%s", name);
    pool = lt_row_pool_new(0); /* NULL: rows are processed on this thread */
    jobs[0] = calloc(POOL_BATCH, sizeof *jobs[0]);
    jobs[1] = calloc(POOL_BATCH, sizeof *jobs[1]);
    if (!jobs[0] || !jobs[1]) {
        snprintf(err, errlen, "out of memory");
        r = LT_DATA_NOMEM;
        goto abandon;
    }
    if (lt_store_begin(st) != LT_STORE_OK) {
        r = store_fail(&im, "starting a batch", err, errlen);
        goto abandon;
    }
    for (int i = 0; i < n_paths && r == LT_DATA_OK; i++)
        r = import_file(&im, readers[i], paths[i], pool, jobs, err, errlen);
    if (r != LT_DATA_OK)
        goto abandon;
    res->format = im.format;
    if (res->n_rows == 0 && res->n_bad == 0) {
        bool csv = lt_reader_container(readers[0]) == LT_CONTAINER_CSV;
        snprintf(err, errlen, "no rows in %s%s: %s; nothing was kept", paths[0],
                 n_paths > 1 ? " and the other files" : "",
                 csv ? "the CSV file holds its header line and no data rows"
                     : "the file holds no rows (an empty array, or only blank lines)");
        r = LT_DATA_EMPTY;
        goto abandon;
    }
    if (res->n_rows == 0) {
        snprintf(err, errlen, "no good rows in %s%s (%lld bad rows; first: %s); nothing was kept",
                 paths[0], n_paths > 1 ? " and the other files" : "", (long long)res->n_bad,
                 im.first_bad[0] ? im.first_bad : "none");
        r = LT_DATA_EMPTY;
        goto abandon;
    }
    if (o->strict && res->n_bad > 0) {
        snprintf(err, errlen, "--strict: %lld bad rows, nothing was kept; first: %s",
                 (long long)res->n_bad, im.first_bad);
        r = LT_DATA_STRICT;
        goto abandon;
    }
    int64_t members = 0;
    /* appends rebase onto whatever finished meanwhile, in the same transaction that marks the
     * version ready, so concurrent appends keep each other's rows */
    if ((parent &&
         lt_store_version_rebase(st, im.version_id, first_row, &res->version) != LT_STORE_OK) ||
        lt_store_samples_count(st, im.version_id, &members) != LT_STORE_OK ||
        lt_store_version_finish(st, im.version_id, lt_data_format_name(im.format), members,
                                res->n_bad + res->n_warnings) != LT_STORE_OK ||
        lt_store_commit(st) != LT_STORE_OK) {
        r = store_fail(&im, "finishing the import", err, errlen);
        goto abandon;
    }
    goto close_readers;
abandon:
    lt_store_rollback(st);
    if (lt_store_begin(st) == LT_STORE_OK) {
        if (lt_store_version_delete(st, im.version_id) == LT_STORE_OK &&
            lt_store_commit(st) == LT_STORE_OK)
            lt_store_release_space(st);
        else
            lt_store_rollback(st); /* the next open removes it: its version stays 'building' */
    }
    res->version_id = 0;
close_readers:
    lt_row_pool_free(pool);
    free(jobs[0]);
    free(jobs[1]);
    for (int i = 0; i < n_paths; i++)
        lt_reader_close(readers[i]);
    free(readers);
    return r;
}
