/*
 * safetensors_set.c - the weights of a model folder: one model.safetensors, or the shards
 * named by model.safetensors.index.json.
 *
 * Every shard is validated by lt_st_open; the index's weight_map must name, for each tensor,
 * a shard that holds it, and no tensor may appear in two files. Shard names must stay inside
 * the folder (no '/', no "..").
 */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct set_entry {
    const lt_st_tensor *t;
    int file;
} set_entry;

struct lt_st_set {
    lt_st_file **files;
    int n_files;
    set_entry *entries; /* sorted by name */
    int n_entries;
};

static lt_st_status fail(lt_st_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lt_st_status fail(lt_st_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const set_entry *)a)->t->name, ((const set_entry *)b)->t->name);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n < (64L << 20) && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)n + 1);
            if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            }
            if (buf) {
                buf[n] = 0;
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

static lt_st_status add_file(lt_st_set *s, const char *path, char *err, size_t errlen)
{
    lt_st_file **nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof(*nf));
    if (!nf)
        return fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
    s->files = nf;
    lt_st_status st = lt_st_open(path, &s->files[s->n_files], err, errlen);
    if (st == LT_ST_OK)
        s->n_files++;
    return st;
}

/* Opens every shard named in the index (each once) and checks weight_map against them. */
static lt_st_status open_index(lt_st_set *s, const char *dir, const char *ipath, char *err,
                               size_t errlen)
{
    lt_st_status st = LT_ST_OK;
    size_t len = 0;
    char *txt = read_text(ipath, &len);
    if (!txt)
        return fail(LT_ST_ERR_IO, err, errlen, "%s: cannot read", ipath);
    cJSON *root = cJSON_ParseWithLength(txt, len);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        st = fail(LT_ST_ERR_FORMAT, err, errlen,
                  "%s: expected a JSON object with a \"weight_map\" object", ipath);
        goto out;
    }
    /* shard files in order of first mention */
    char **names = NULL;
    int n_names = 0;
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !*e->valuestring || strchr(e->valuestring, '/') ||
            strstr(e->valuestring, "..")) {
            st = fail(LT_ST_ERR_FORMAT, err, errlen,
                      "%s: weight_map[\"%.128s\"] must be a file name inside the folder", ipath,
                      e->string ? e->string : "");
            goto out_names;
        }
        int j = 0;
        while (j < n_names && strcmp(names[j], e->valuestring) != 0)
            j++;
        if (j == n_names) {
            char **nn = realloc(names, (size_t)(n_names + 1) * sizeof(char *));
            if (!nn) {
                st = fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
                goto out_names;
            }
            names = nn;
            names[n_names++] = e->valuestring;
            char *p = join(dir, e->valuestring);
            if (!p) {
                st = fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
                goto out_names;
            }
            st = add_file(s, p, err, errlen);
            free(p);
            if (st != LT_ST_OK)
                goto out_names;
        }
        if (!lt_st_find(s->files[j], e->string)) {
            st = fail(LT_ST_ERR_FORMAT, err, errlen,
                      "%s: weight_map puts tensor \"%.128s\" in %s, which does not hold it", ipath,
                      e->string, names[j]);
            goto out_names;
        }
    }
    if (n_names == 0)
        st = fail(LT_ST_ERR_FORMAT, err, errlen, "%s: weight_map is empty", ipath);
out_names:
    free(names);
out:
    cJSON_Delete(root);
    free(txt);
    return st;
}

lt_st_status lt_st_set_open_dir(const char *dir, lt_st_set **out, char *err, size_t errlen)
{
    lt_st_status st = LT_ST_OK;
    if (!dir || !out)
        return fail(LT_ST_ERR_ARG, err, errlen, "lt_st_set_open_dir: NULL argument");
    *out = NULL;
    lt_st_set *s = calloc(1, sizeof(*s));
    char *single = join(dir, "model.safetensors");
    char *index = join(dir, "model.safetensors.index.json");
    if (!s || !single || !index) {
        st = fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
        goto err_set;
    }
    if (file_exists(single))
        st = add_file(s, single, err, errlen);
    else if (file_exists(index))
        st = open_index(s, dir, index, err, errlen);
    else
        st = fail(LT_ST_ERR_IO, err, errlen,
                  "%s: no model.safetensors or model.safetensors.index.json", dir);
    if (st != LT_ST_OK)
        goto err_set;
    int total = 0;
    for (int i = 0; i < s->n_files; i++)
        total += lt_st_count(s->files[i]);
    s->entries = calloc((size_t)total + 1, sizeof(set_entry));
    if (!s->entries) {
        st = fail(LT_ST_ERR_OOM, err, errlen, "out of memory");
        goto err_set;
    }
    for (int i = 0; i < s->n_files; i++)
        for (int j = 0; j < lt_st_count(s->files[i]); j++)
            s->entries[s->n_entries++] = (set_entry){lt_st_at(s->files[i], j), i};
    qsort(s->entries, (size_t)s->n_entries, sizeof(set_entry), cmp_entry);
    for (int i = 1; i < s->n_entries; i++) {
        if (strcmp(s->entries[i].t->name, s->entries[i - 1].t->name) == 0) {
            st = fail(LT_ST_ERR_FORMAT, err, errlen, "%s: tensor \"%.128s\" is in both %s and %s",
                      dir, s->entries[i].t->name, lt_st_path(s->files[s->entries[i - 1].file]),
                      lt_st_path(s->files[s->entries[i].file]));
            goto err_set;
        }
    }
    free(single);
    free(index);
    *out = s;
    return LT_ST_OK;
err_set:
    free(single);
    free(index);
    lt_st_set_close(s);
    return st;
}

void lt_st_set_close(lt_st_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++)
        lt_st_close(s->files[i]);
    free(s->files);
    free(s->entries);
    free(s);
}

int lt_st_set_count(const lt_st_set *s) { return s->n_entries; }

const lt_st_tensor *lt_st_set_at(const lt_st_set *s, int i)
{
    return (i >= 0 && i < s->n_entries) ? s->entries[i].t : NULL;
}

const lt_st_tensor *lt_st_set_find(const lt_st_set *s, const char *name, const lt_st_file **file)
{
    int lo = 0, hi = s->n_entries - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, s->entries[mid].t->name);
        if (c == 0) {
            if (file)
                *file = s->files[s->entries[mid].file];
            return s->entries[mid].t;
        }
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int lt_st_set_file_count(const lt_st_set *s) { return s->n_files; }

const lt_st_file *lt_st_set_file(const lt_st_set *s, int i)
{
    return (i >= 0 && i < s->n_files) ? s->files[i] : NULL;
}
