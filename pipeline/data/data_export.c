/*
 * data_export.c - writes a dataset version (or one split of it) as JSONL in alpaca,
 * sharegpt, OpenAI messages, multiple choice or lathe's own sample shape. The file is written under a
 * temporary name, flushed to disk and renamed, so a reader never sees half a file.
 */
#include "data_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *sharegpt_from(const char *role)
{
    if (strcmp(role, "user") == 0)
        return "human";
    if (strcmp(role, "assistant") == 0)
        return "gpt";
    if (strcmp(role, "tool") == 0)
        return "observation";
    return role;
}

/* A multiple-choice sample as {"question", "choices", "answer", "system"}; NULL when s is
 * not one (or out of memory). */
static cJSON *convert_mc(const cJSON *s)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(s, "question");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "choices");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(s, "answer");
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(s, "system");
    if (!cJSON_IsString(q) || !cJSON_IsArray(c) || !cJSON_IsNumber(a))
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "question", q->valuestring);
    cJSON_AddItemToObject(o, "choices", cJSON_Duplicate(c, true));
    cJSON_AddNumberToObject(o, "answer", a->valuedouble);
    if (cJSON_IsString(sys))
        cJSON_AddStringToObject(o, "system", sys->valuestring);
    return o;
}

/* Converts one normalized sample to the target format. Returns a new cJSON (caller frees). */
static cJSON *convert(const cJSON *s, const char *format)
{
    if (strcmp(format, "multiple_choice") == 0)
        return convert_mc(s);
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(s, "system");
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(s, "turns");
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(s, "chosen");
    const cJSON *rejected = cJSON_GetObjectItemCaseSensitive(s, "rejected");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(s, "text");
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (cJSON_IsString(text)) {
        cJSON_AddStringToObject(o, "text", text->valuestring);
        return o;
    }
    const cJSON *t;
    if (strcmp(format, "messages") == 0 || strcmp(format, "sharegpt") == 0) {
        bool sg = format[0] == 's';
        cJSON *list = cJSON_AddArrayToObject(o, sg ? "conversations" : "messages");
        if (cJSON_IsString(sys)) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, sg ? "from" : "role", "system");
            cJSON_AddStringToObject(m, sg ? "value" : "content", sys->valuestring);
            cJSON_AddItemToArray(list, m);
        }
        cJSON_ArrayForEach(t, turns)
        {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, "role");
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "content");
            if (!cJSON_IsString(r) || !cJSON_IsString(c))
                continue;
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, sg ? "from" : "role",
                                    sg ? sharegpt_from(r->valuestring) : r->valuestring);
            cJSON_AddStringToObject(m, sg ? "value" : "content", c->valuestring);
            cJSON_AddItemToArray(list, m);
        }
    } else {
        /* alpaca: last user turn is the instruction, last assistant turn the output, earlier
         * pairs the history */
        const char *last_user = "", *last_asst = NULL, *pending_user = NULL;
        cJSON *hist = cJSON_CreateArray();
        int n_turns = cJSON_GetArraySize(turns), i = 0;
        cJSON_ArrayForEach(t, turns)
        {
            i++;
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, "role");
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "content");
            if (!cJSON_IsString(r) || !cJSON_IsString(c))
                continue;
            bool last_pair = i >= n_turns - 1;
            if (strcmp(r->valuestring, "user") == 0) {
                if (last_pair || chosen)
                    last_user = c->valuestring;
                else
                    pending_user = c->valuestring;
            } else if (strcmp(r->valuestring, "assistant") == 0) {
                if (last_pair)
                    last_asst = c->valuestring;
                else if (pending_user) {
                    cJSON *pair = cJSON_CreateArray();
                    cJSON_AddItemToArray(pair, cJSON_CreateString(pending_user));
                    cJSON_AddItemToArray(pair, cJSON_CreateString(c->valuestring));
                    cJSON_AddItemToArray(hist, pair);
                    pending_user = NULL;
                }
            }
        }
        /* an imported alpaca row's input comes back in its own field: the user turn was
         * built as "instruction\ninput" */
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(s, "alpaca_input");
        size_t lu = strlen(last_user), li = cJSON_IsString(in) ? strlen(in->valuestring) : 0;
        if (li && lu > li && last_user[lu - li - 1] == '\n' &&
            strcmp(last_user + lu - li, in->valuestring) == 0) {
            char *ins = strndup(last_user, lu - li - 1);
            cJSON_AddStringToObject(o, "instruction", ins ? ins : last_user);
            free(ins);
            cJSON_AddStringToObject(o, "input", in->valuestring);
        } else {
            cJSON_AddStringToObject(o, "instruction", last_user);
            cJSON_AddStringToObject(o, "input", "");
        }
        if (!chosen)
            cJSON_AddStringToObject(o, "output", last_asst ? last_asst : "");
        if (cJSON_IsString(sys))
            cJSON_AddStringToObject(o, "system", sys->valuestring);
        if (cJSON_GetArraySize(hist) > 0)
            cJSON_AddItemToObject(o, "history", hist);
        else
            cJSON_Delete(hist);
    }
    if (cJSON_IsString(chosen) && cJSON_IsString(rejected)) {
        if (strcmp(format, "messages") == 0) {
            /* messages preference: the prompt as messages, answers as strings */
            cJSON *p = cJSON_DetachItemFromObject(o, "messages");
            cJSON_AddItemToObject(o, "prompt", p);
        }
        cJSON_AddStringToObject(o, "chosen", chosen->valuestring);
        cJSON_AddStringToObject(o, "rejected", rejected->valuestring);
    }
    if (cJSON_IsString(sys) && strcmp(format, "sharegpt") == 0)
        cJSON_AddStringToObject(o, "system", sys->valuestring);
    return o;
}

lt_data_status lt_data_export(lt_store *st, const char *name, int version, const char *split,
                              const char *format, const char *out_path, bool overwrite,
                              int64_t *n_written, char *err, size_t errlen)
{
    lt_store_version v;
    lt_store_iter *it = NULL;
    FILE *f = NULL;
    char tmp[4200];
    lt_data_status r = LT_DATA_IO;
    *n_written = 0;
    if (strcmp(format, "alpaca") && strcmp(format, "sharegpt") && strcmp(format, "messages") &&
        strcmp(format, "multiple_choice") && strcmp(format, "jsonl")) {
        snprintf(err, errlen,
                 "unknown export format '%s' (alpaca, sharegpt, messages, multiple_choice, "
                 "jsonl)",
                 format);
        return LT_DATA_USAGE;
    }
    if (split && strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test")) {
        snprintf(err, errlen, "unknown split '%s' (train, val, test)", split);
        return LT_DATA_USAGE;
    }
    if (lt_store_version_get(st, name, version, &v) != LT_STORE_OK) {
        snprintf(err, errlen, "no dataset '%s'%s", name, version ? " at that version" : "");
        return LT_DATA_NOT_FOUND;
    }
    if (strlen(out_path) > 4000) {
        snprintf(err, errlen, "output path too long");
        return LT_DATA_USAGE;
    }
    struct stat sb;
    if (!overwrite && lstat(out_path, &sb) == 0) {
        snprintf(err, errlen, "%s exists; add --force to replace it", out_path);
        return LT_DATA_USAGE;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out_path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return LT_DATA_IO;
    }
    if (lt_store_samples_iter(st, v.version_id, split, &it) != LT_STORE_OK) {
        snprintf(err, errlen, "database error: %s", lt_store_errmsg(st));
        r = LT_DATA_STORE;
        goto remove_tmp;
    }
    lt_store_sample s;
    lt_store_status ss;
    while ((ss = lt_store_samples_next(it, &s)) == LT_STORE_OK) {
        if (strcmp(format, "jsonl") == 0) {
            fputs(s.data, f);
        } else {
            cJSON *j = cJSON_Parse(s.data);
            cJSON *o = j ? convert(j, format) : NULL;
            char *line = o ? cJSON_PrintUnformatted(o) : NULL;
            cJSON_Delete(j);
            cJSON_Delete(o);
            if (!line) {
                bool mc = strcmp(format, "multiple_choice") == 0;
                snprintf(err, errlen, "row %lld could not be converted to %s%s",
                         (long long)s.row, format,
                         mc ? " (not a multiple-choice sample)" : "");
                r = mc ? LT_DATA_USAGE : LT_DATA_NOMEM;
                goto remove_tmp;
            }
            fputs(line, f);
            free(line);
        }
        fputc('\n', f);
        (*n_written)++;
    }
    if (ss != LT_STORE_DONE) {
        snprintf(err, errlen, "database error while exporting: %s", lt_store_errmsg(st));
        r = LT_DATA_STORE;
        goto remove_tmp;
    }
    if (split && *n_written == 0) {
        snprintf(err, errlen, "dataset '%s' has no rows in split '%s' (run lathe data split first)",
                 name, split);
        r = LT_DATA_NOT_FOUND;
        goto remove_tmp;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) {
        f = NULL;
        snprintf(err, errlen, "writing %s failed: %s", tmp, strerror(errno));
        goto remove_tmp;
    }
    f = NULL;
    if (!overwrite) { /* link fails when out_path appeared meanwhile: never clobbered */
        if (link(tmp, out_path) != 0) {
            if (errno == EEXIST) {
                snprintf(err, errlen, "%s exists; add --force to replace it", out_path);
                r = LT_DATA_USAGE;
            } else {
                snprintf(err, errlen, "cannot create %s: %s", out_path, strerror(errno));
            }
            goto remove_tmp;
        }
        unlink(tmp);
    } else if (rename(tmp, out_path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, out_path, strerror(errno));
        goto remove_tmp;
    }
    lt_store_iter_free(it);
    return LT_DATA_OK;
remove_tmp:
    lt_store_iter_free(it);
    if (f)
        fclose(f);
    unlink(tmp);
    return r;
}
