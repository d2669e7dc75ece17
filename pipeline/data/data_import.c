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
#include "data_signer.h"

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

static const char *format_names[] = {"auto", "alpaca", "sharegpt", "messages", "preference",
                                     "text"};

const char *lt_data_format_name(lt_data_format f)
{
    return (f >= 0 && f <= LT_DATA_FORMAT_TEXT) ? format_names[f] : "unknown";
}

int lt_data_format_parse(const char *name)
{
    for (int i = 0; i <= LT_DATA_FORMAT_TEXT; i++)
        if (strcmp(name, format_names[i]) == 0)
            return i;
    if (strcmp(name, "openai") == 0)
        return LT_DATA_FORMAT_MESSAGES;
    if (strcmp(name, "dpo") == 0)
        return LT_DATA_FORMAT_PREFERENCE;
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
    char *norm_buf;
    size_t norm_cap;
    lt_signer *signer;     /* NULL: no signatures at import */
} importer;

static lt_data_status store_fail(importer *im, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "database error while %s: %s", what, lt_store_errmsg(im->st));
    return LT_DATA_STORE;
}

static lt_data_status add_issue(importer *im, int64_t file_id, const char *path,
                                const lt_read_row *row, const char *severity,
                                const char *reason, int64_t sample_row, char *err,
                                size_t errlen)
{
    char raw[RAW_MAX + 1];
    size_t n = row->raw_len < RAW_MAX ? row->raw_len : RAW_MAX;
    memcpy(raw, row->raw, n);
    raw[n] = '\0';
    lt_store_issue is = {.line = row->line,
                         .column = row->column,
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

static lt_data_status import_row(importer *im, int64_t file_id, const char *path,
                                 lt_read_row *row, char *err, size_t errlen)
{
    char reason[512];
    if (im->format == LT_DATA_FORMAT_AUTO) {
        im->format = lt_format_detect(row->json, &im->map);
        if (im->format == LT_DATA_FORMAT_AUTO) {
            snprintf(reason, sizeof reason,
                     "line %lld: row fits no known format (expected instruction/output, "
                     "conversations, messages, prompt/chosen/rejected or text; map columns "
                     "with --field-map)",
                     (long long)row->line);
            im->res->n_bad++;
            return add_issue(im, file_id, path, row, "error", reason, -1, err, errlen);
        }
    }
    lt_norm_sample ns;
    if (!lt_format_normalize(row->json, im->format, &im->map, &ns, reason, sizeof reason)) {
        char full[600];
        snprintf(full, sizeof full, "line %lld: %s", (long long)row->line, reason);
        im->res->n_bad++;
        return add_issue(im, file_id, path, row, "error", full, -1, err, errlen);
    }
    lt_data_status r = LT_DATA_OK;
    if (im->o->max_chars > 0 && ns.n_chars > im->o->max_chars) {
        snprintf(reason, sizeof reason,
                 "line %lld: row has %lld characters, over the limit of %lld (--max-chars)",
                 (long long)row->line, (long long)ns.n_chars, (long long)im->o->max_chars);
        im->res->n_bad++;
        r = add_issue(im, file_id, path, row, "error", reason, -1, err, errlen);
        goto free_sample;
    }
    size_t tl = strlen(ns.text);
    if (tl + 1 > im->norm_cap) {
        size_t nc = im->norm_cap ? im->norm_cap : 4096;
        while (nc < tl + 1)
            nc *= 2;
        char *nb = realloc(im->norm_buf, nc);
        if (!nb) {
            r = LT_DATA_NOMEM;
            snprintf(err, errlen, "out of memory");
            goto free_sample;
        }
        im->norm_buf = nb;
        im->norm_cap = nc;
    }
    size_t nl = lt_text_normalize(ns.text, tl, im->norm_buf);
    char hash[33];
    lt_hash128_hex(im->norm_buf, nl, hash);
    lt_store_sample s = {.row = im->next_row,
                         .file_id = file_id,
                         .line = row->line,
                         .format = lt_data_format_name(im->format),
                         .data = ns.json,
                         .text_hash = hash,
                         .n_chars = ns.n_chars,
                         .n_response_chars = ns.n_response_chars,
                         .n_turns = ns.n_turns,
                         .flags = ns.flags};
    int64_t sample_id = 0;
    if (lt_store_sample_add(im->st, im->dataset_id, im->version_id, &s, &sample_id) !=
        LT_STORE_OK) {
        r = store_fail(im, "storing a sample", err, errlen);
        goto free_sample;
    }
    if (im->signer) {
        s.id = sample_id;
        r = lt_signer_add(im->signer, im->st, im->dataset_id, &s, im->norm_buf);
        if (r != LT_DATA_OK) {
            snprintf(err, errlen, "storing a MinHash signature failed: %s",
                     lt_store_errmsg(im->st));
            goto free_sample;
        }
    }
    im->res->n_rows++;
    if (ns.warning[0]) {
        snprintf(reason, sizeof reason, "line %lld: %s", (long long)row->line, ns.warning);
        im->res->n_warnings++;
        r = add_issue(im, file_id, path, row, "warning", reason, im->next_row, err, errlen);
    }
    im->next_row++;
free_sample:
    lt_norm_sample_free(&ns);
    return r;
}

static lt_data_status import_file(importer *im, lt_reader *rd, const char *path, char *err,
                                  size_t errlen)
{
    int64_t file_id = 0, rows0 = im->res->n_rows, bad0 = im->res->n_bad;
    if (lt_store_file_add(im->st, im->version_id, path, &file_id) != LT_STORE_OK)
        return store_fail(im, "recording a file", err, errlen);
    lt_read_row row;
    int64_t last_report = 0;
    for (;;) {
        if (im->o->interrupt && *im->o->interrupt) {
            snprintf(err, errlen, "interrupted while reading %s; nothing was kept", path);
            return LT_DATA_INTERRUPTED;
        }
        lt_read_kind k = lt_reader_next(rd, &row);
        if (k == LT_READ_EOF)
            break;
        lt_data_status r;
        if (k == LT_READ_BAD) {
            im->res->n_bad++;
            r = add_issue(im, file_id, path, &row, "error", row.reason, -1, err, errlen);
        } else {
            r = import_row(im, file_id, path, &row, err, errlen);
        }
        if (r == LT_DATA_OK)
            r = batch_tick(im, err, errlen);
        if (r != LT_DATA_OK)
            return r;
        int64_t done = lt_reader_bytes_read(rd);
        if (im->o->progress && done - last_report >= (4 << 20)) {
            last_report = done;
            im->o->progress(im->o->progress_ctx, path, done, lt_reader_file_size(rd),
                            im->res->n_rows);
        }
    }
    const char *sha = lt_reader_sha256(rd);
    int64_t size = lt_reader_file_size(rd);
    im->res->bytes += size;
    if (im->o->progress && size >= (4 << 20))
        im->o->progress(im->o->progress_ctx, path, size, size, im->res->n_rows);
    if (lt_store_file_finish(im->st, file_id, size, sha, im->res->n_rows - rows0,
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
    } else if (lt_store_dataset_create(st, name, &im.dataset_id) != LT_STORE_OK) {
        r = store_fail(&im, "creating the dataset", err, errlen);
        lt_store_rollback(st);
        goto close_readers;
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
    res->dataset_id = im.dataset_id;
    res->version_id = im.version_id;
    snprintf(res->name, sizeof res->name, "%s", name);
    if (!o->no_signatures)
        im.signer = lt_signer_new();
    if (lt_store_begin(st) != LT_STORE_OK) {
        r = store_fail(&im, "starting a batch", err, errlen);
        goto abandon;
    }
    for (int i = 0; i < n_paths && r == LT_DATA_OK; i++)
        r = import_file(&im, readers[i], paths[i], err, errlen);
    if (r != LT_DATA_OK)
        goto abandon;
    res->format = im.format;
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
    if (im.signer && lt_signer_flush(im.signer, st, im.dataset_id) != LT_DATA_OK) {
        r = store_fail(&im, "storing MinHash signatures", err, errlen);
        goto abandon;
    }
    int64_t members = 0;
    if (lt_store_samples_count(st, im.version_id, &members) != LT_STORE_OK ||
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
        if (lt_store_version_delete(st, im.version_id) == LT_STORE_OK)
            lt_store_commit(st);
        else
            lt_store_rollback(st); /* the next open removes it: its version stays 'building' */
    }
    res->version_id = 0;
close_readers:
    lt_signer_free(im.signer);
    for (int i = 0; i < n_paths; i++)
        lt_reader_close(readers[i]);
    free(readers);
    free(im.norm_buf);
    return r;
}
