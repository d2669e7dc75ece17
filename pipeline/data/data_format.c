/*
 * data_format.c - one row from raw bytes to a sample: JSON parsing with line and byte column,
 * format detection (alpaca, sharegpt, OpenAI messages, preference pairs, raw text, multiple
 * choice), field mapping, row validation with reasons, and normalization into the sample
 * shape of data.h.
 *
 * A row is either normalized (maybe with a warning: control characters) or rejected with one
 * sentence naming the field and what was expected. Never touches files or the store.
 */
#include "data_impl.h"

#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small string builder for the normalized JSON ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Appends s as a JSON string literal. */
static void sb_json(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_put(b, run, (size_t)((const char *)p - run));
        char e[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t en = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\t': e[1] = 't'; break;
        case '\r': e[1] = 'r'; break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            en = 6;
        }
        sb_put(b, e, en);
        run = (const char *)p + 1;
    }
    sb_str(b, run);
    sb_put(b, "\"", 1);
}

/* ---- field mapping ---- */

bool lt_field_map_parse(lt_field_map *m, const char *const *specs, int n, char *err,
                        size_t errlen)
{
    static const char *canon[] = {"instruction", "input",   "output", "system",  "history",
                                  "conversations", "from",  "value",  "messages", "role",
                                  "content",     "prompt",  "chosen", "rejected", "text",
                                  "question",    "choices", "answer"};
    m->n = 0;
    for (int i = 0; i < n && i < LT_DATA_MAX_FIELD_MAP; i++) {
        const char *eq = strchr(specs[i], '=');
        if (!eq || eq == specs[i] || !eq[1]) {
            snprintf(err, errlen, "--field-map '%s': expected FIELD=COLUMN, e.g. output=answer",
                     specs[i]);
            return false;
        }
        size_t kl = (size_t)(eq - specs[i]);
        bool known = false;
        for (size_t k = 0; k < sizeof canon / sizeof canon[0]; k++)
            if (strlen(canon[k]) == kl && strncmp(canon[k], specs[i], kl) == 0) {
                m->canon[m->n] = canon[k];
                known = true;
            }
        if (!known) {
            snprintf(err, errlen,
                     "--field-map '%s': unknown field; known fields: instruction input output "
                     "system history conversations from value messages role content prompt "
                     "chosen rejected text question choices answer",
                     specs[i]);
            return false;
        }
        m->column[m->n++] = eq + 1;
    }
    return true;
}

static const char *col(const lt_field_map *m, const char *canon)
{
    for (int i = 0; m && i < m->n; i++)
        if (strcmp(m->canon[i], canon) == 0)
            return m->column[i];
    return canon;
}

static const cJSON *get(const cJSON *o, const lt_field_map *m, const char *canon)
{
    return cJSON_GetObjectItemCaseSensitive(o, col(m, canon));
}

/* The field of a multiple-choice row that holds the question, the choices or the answer: the
 * mapped (or canonical) column, else the names the common layouts use (lm-eval and Hugging
 * Face: question/choices/answer, query/choices/gold; ARC: question, choices {text, label},
 * answerKey). NULL when none is present. */
static const cJSON *mc_get(const cJSON *row, const lt_field_map *m, const char *canon,
                           const char **name)
{
    static const char *const alt_question[] = {"query", "prompt", NULL};
    static const char *const alt_answer[] = {"gold", "answerKey", "label", NULL};
    const char *c = col(m, canon);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(row, c);
    *name = c;
    if (j || strcmp(c, canon) != 0)
        return j; /* found, or mapped by --field-map: no guessing */
    const char *const *alt = strcmp(canon, "question") == 0 ? alt_question
                             : strcmp(canon, "answer") == 0 ? alt_answer
                                                            : NULL;
    for (int i = 0; alt && alt[i]; i++)
        if ((j = cJSON_GetObjectItemCaseSensitive(row, alt[i]))) {
            *name = alt[i];
            return j;
        }
    return NULL;
}

lt_data_format lt_format_detect(const cJSON *row, const lt_field_map *m)
{
    const char *nm;
    if (mc_get(row, m, "choices", &nm) && mc_get(row, m, "question", &nm) &&
        mc_get(row, m, "answer", &nm))
        return LT_DATA_FORMAT_MULTIPLE_CHOICE;
    if (get(row, m, "messages"))
        return LT_DATA_FORMAT_MESSAGES;
    if (get(row, m, "conversations"))
        return LT_DATA_FORMAT_SHAREGPT;
    if (get(row, m, "chosen") && get(row, m, "rejected"))
        return LT_DATA_FORMAT_PREFERENCE;
    if (get(row, m, "instruction") || get(row, m, "output"))
        return LT_DATA_FORMAT_ALPACA;
    if (get(row, m, "text"))
        return LT_DATA_FORMAT_TEXT;
    return LT_DATA_FORMAT_AUTO;
}

/* ---- validation helpers ---- */

typedef struct norm {
    const lt_field_map *m;
    char *reason;
    size_t rlen;
    lt_norm_sample *out;
    sbuf json, text;
    int n_fields;          /* fields written into json so far */
    int n_turns;
    int64_t response_chars;   /* characters of the last assistant turn / chosen / text */
} norm;

static const char *type_name(const cJSON *j)
{
    if (!j)
        return "missing";
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    if (cJSON_IsBool(j))
        return "a boolean";
    return "null";
}

/* Finds a NUL in a JSON row: a raw 0 byte, or the escape \u0000 inside a string. Either would
 * cut the text short wherever it is kept as a C string, so the row is refused rather than
 * silently truncated. Returns the byte offset (-1 when none); OUT field: the key of the
 * value holding it (the last key before it; "" when none). */
static int64_t find_nul(const char *raw, size_t n, char *field, size_t flen)
{
    bool in_str = false;
    size_t str_start = 0;
    field[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char c = raw[i];
        if (c == '\0')
            return (int64_t)i;
        if (!in_str) {
            if (c == '"') {
                in_str = true;
                str_start = i + 1;
            }
            continue;
        }
        if (c == '\\') {
            if (i + 5 < n && raw[i + 1] == 'u' && memcmp(raw + i + 2, "0000", 4) == 0)
                return (int64_t)i;
            i++; /* the escaped character */
            continue;
        }
        if (c != '"')
            continue;
        in_str = false;
        size_t k = i + 1;
        while (k < n && (raw[k] == ' ' || raw[k] == '\t' || raw[k] == '\r' || raw[k] == '\n'))
            k++;
        if (k < n && raw[k] == ':') { /* the string was a key */
            size_t len = i - str_start < flen - 1 ? i - str_start : flen - 1;
            memcpy(field, raw + str_start, len);
            field[len] = '\0';
        }
    }
    return -1;
}

/* The deepest nesting of arrays and objects in a JSON text (strings skipped). */
static int json_depth(const char *raw, size_t n)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = raw[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            max = ++depth > max ? depth : max;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

/* Finds a number outside strings that a double cannot hold (1e-999 reads as 0, 1e999 as
 * infinity). Returns its offset, -1 when none. */
static int64_t find_out_of_range(const char *raw, size_t n)
{
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = raw[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9'))
            continue;
        size_t j = i + 1;
        bool exp = false;
        while (j < n && strchr("0123456789.eE+-", raw[j])) {
            exp |= raw[j] == 'e' || raw[j] == 'E';
            j++;
        }
        if (exp || j - i > 300) {
            char tmp[400];
            size_t len = j - i < sizeof tmp - 1 ? j - i : sizeof tmp - 1;
            memcpy(tmp, raw + i, len);
            tmp[len] = '\0';
            errno = 0;
            strtod(tmp, NULL);
            if (errno == ERANGE)
                return (int64_t)i;
        }
        i = j - 1;
    }
    return -1;
}

/* The first key that appears twice in one object (anywhere in j); NULL when none. */
static const char *find_duplicate_key(const cJSON *j)
{
    if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
        return NULL;
    const cJSON *a, *b;
    for (a = j->child; a; a = a->next) {
        if (cJSON_IsObject(j) && a->string)
            for (b = a->next; b; b = b->next)
                if (b->string && strcmp(a->string, b->string) == 0)
                    return a->string;
        const char *d = find_duplicate_key(a);
        if (d)
            return d;
    }
    return NULL;
}

/* The reader hands rows here (or to a worker thread) to be parsed. */
lt_read_kind lt_parse_row(const char *raw, size_t n, int64_t line, cJSON **json, char *reason,
                          size_t rlen, int64_t *column)
{
    *json = NULL;
    *column = 0;
    int64_t bad = lt_utf8_invalid_at(raw, n);
    if (bad >= 0) {
        *column = bad + 1;
        snprintf(reason, rlen, "invalid UTF-8 at line %lld, byte column %lld (byte 0x%02x)",
                 (long long)line, (long long)*column, (unsigned char)raw[bad]);
        return LT_READ_BAD;
    }
    char field[64];
    int64_t nul = find_nul(raw, n, field, sizeof field);
    if (nul >= 0) {
        *column = nul + 1;
        snprintf(reason, rlen,
                 "NUL character (%s) at line %lld, byte column %lld%s%s%s; text with NUL "
                 "cannot be kept whole, so the row was not imported",
                 raw[nul] ? "\\u0000" : "a raw 0 byte", (long long)line, (long long)*column,
                 field[0] ? ", in field '" : "", field, field[0] ? "'" : "");
        return LT_READ_BAD;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(raw, n + 1, &end, true);
    if (!j && json_depth(raw, n) > CJSON_NESTING_LIMIT) {
        *column = 1;
        snprintf(reason, rlen,
                 "JSON at line %lld is nested %d levels deep, deeper than the %d lathe reads",
                 (long long)line, json_depth(raw, n), CJSON_NESTING_LIMIT);
        return LT_READ_BAD;
    }
    if (!j) {
        int64_t col = end ? (int64_t)(end - raw) + 1 : 1;
        if (col > (int64_t)n)
            col = (int64_t)n;
        *column = col < 1 ? 1 : col;
        snprintf(reason, rlen, "malformed JSON at line %lld, byte column %lld%s",
                 (long long)line, (long long)*column,
                 (end && (size_t)(end - raw) >= n) ? " (the row ends too early)" : "");
        return LT_READ_BAD;
    }
    if (!cJSON_IsObject(j)) {
        snprintf(reason, rlen, "row at line %lld is %s, expected a JSON object", (long long)line,
                 type_name(j));
        cJSON_Delete(j);
        return LT_READ_BAD;
    }
    /* kept, with a warning (reason on LT_READ_ROW): what a JSON parser decides silently */
    reason[0] = '\0';
    const char *dup = find_duplicate_key(j);
    int64_t big = dup ? -1 : find_out_of_range(raw, n);
    if (dup)
        snprintf(reason, rlen, "duplicate key '%.64s' in one object (the first is used)", dup);
    else if (big >= 0)
        snprintf(reason, rlen,
                 "number at byte column %lld is out of range for a double (read as 0 or "
                 "infinity)",
                 (long long)big + 1);
    *json = j;
    return LT_READ_ROW;
}

/* Looks for control characters other than tab/newline/CR: C0, DEL, and C1 (which include
 * the CSI that starts terminal escape sequences). Records the first as a warning. */
static void check_controls(norm *z, const char *s, const char *field)
{
    if (z->out->warning[0])
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f && *p != 0xc2)
            continue; /* the common case */
        unsigned c = *p, cp = 0;
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            cp = c;
        else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            cp = p[1];
        if (cp) {
            snprintf(z->out->warning, sizeof z->out->warning,
                     "control character U+%04X%s in field '%s'; row kept and flagged", cp,
                     cp == 0x1b ? " (escape)" : cp == 0x07 ? " (bell)" : "", field);
            z->out->flags |= LT_SAMPLE_FLAG_CONTROL_CHARS;
            return;
        }
    }
}

/* Fetches a required (or optional) string field; sets the reason and returns NULL when it is
 * missing, empty or not a string. *absent tells an allowed absence apart. */
static const char *str_field(norm *z, const cJSON *o, const char *canon, bool required,
                             bool *bad)
{
    const char *name = col(z->m, canon);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
    *bad = false;
    if (!j || cJSON_IsNull(j)) {
        if (required) {
            snprintf(z->reason, z->rlen, "missing field '%s'%s", name,
                     strcmp(name, canon) == 0 ? "" : " (mapped by --field-map)");
            *bad = true;
        }
        return NULL;
    }
    if (!cJSON_IsString(j)) {
        snprintf(z->reason, z->rlen, "field '%s' is %s, expected a string", name, type_name(j));
        *bad = true;
        return NULL;
    }
    if (required && !j->valuestring[strspn(j->valuestring, " \t\r\n")]) {
        snprintf(z->reason, z->rlen, "field '%s' is empty", name);
        *bad = true;
        return NULL;
    }
    check_controls(z, j->valuestring, name);
    return j->valuestring;
}

static void add_text(norm *z, const char *s)
{
    if (z->text.n)
        sb_put(&z->text, "\n", 1);
    sb_str(&z->text, s);
    z->out->n_chars += lt_utf8_count(s, strlen(s));
}

static void json_field(norm *z, const char *key, const char *val)
{
    sb_str(&z->json, z->n_fields++ ? ",\"" : "{\"");
    sb_str(&z->json, key);
    sb_str(&z->json, "\":");
    sb_json(&z->json, val);
    add_text(z, val);
}

/* A field kept only so that an export gives back the row's layout: not sample text (no
 * share in the text hash, the character counts or dedup). */
static void json_layout_field(norm *z, const char *key, const char *val)
{
    sb_str(&z->json, z->n_fields++ ? ",\"" : "{\"");
    sb_str(&z->json, key);
    sb_str(&z->json, "\":");
    sb_json(&z->json, val);
}

static void turn(norm *z, const char *role, const char *content)
{
    if (z->n_turns == 0) {
        sb_str(&z->json, z->n_fields++ ? ",\"turns\":[" : "{\"turns\":[");
    } else {
        sb_put(&z->json, ",", 1);
    }
    sb_str(&z->json, "{\"role\":\"");
    sb_str(&z->json, role);
    sb_str(&z->json, "\",\"content\":");
    sb_json(&z->json, content);
    sb_put(&z->json, "}", 1);
    add_text(z, content);
    if (strcmp(role, "assistant") == 0)
        z->response_chars = lt_utf8_count(content, strlen(content));
    z->n_turns++;
}

static void end_turns(norm *z)
{
    if (z->n_turns)
        sb_put(&z->json, "]", 1);
}

/* Maps a role name from sharegpt's "from" or messages' "role" to user/assistant/tool/system. */
static const char *map_role(const char *r)
{
    static const char *user[] = {"user", "human", "USER", "Human", "prompter"};
    static const char *asst[] = {"assistant", "gpt", "chatgpt", "bard", "bing", "model",
                                 "ASSISTANT", "Assistant", "function_call"};
    static const char *tool[] = {"tool", "observation", "function", "ipython"};
    for (size_t i = 0; i < sizeof user / sizeof *user; i++)
        if (strcmp(r, user[i]) == 0)
            return "user";
    for (size_t i = 0; i < sizeof asst / sizeof *asst; i++)
        if (strcmp(r, asst[i]) == 0)
            return "assistant";
    for (size_t i = 0; i < sizeof tool / sizeof *tool; i++)
        if (strcmp(r, tool[i]) == 0)
            return "tool";
    if (strcmp(r, "system") == 0)
        return "system";
    return NULL;
}

/* Content of a message: a string, or an array of {"type":"text","text":...} parts joined. */
static char *message_content(const cJSON *c)
{
    if (cJSON_IsString(c))
        return strdup(c->valuestring);
    if (!cJSON_IsArray(c))
        return NULL;
    sbuf b = {0};
    const cJSON *part;
    cJSON_ArrayForEach(part, c)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(t)) {
            if (b.n)
                sb_put(&b, "\n", 1);
            sb_str(&b, t->valuestring);
        }
    }
    if (!b.p)
        return strdup("");
    return b.p;
}

/* Validates and emits a list of turns (sharegpt or messages). role_key/content_key are the
 * canonical names; prompt_only: the list is a preference prompt (must end with user). */
static bool chat_turns(norm *z, const cJSON *list, const char *list_name, const char *role_key,
                       const char *content_key, bool prompt_only)
{
    if (!cJSON_IsArray(list)) {
        snprintf(z->reason, z->rlen, "field '%s' is %s, expected an array of turns", list_name,
                 type_name(list));
        return false;
    }
    int n = cJSON_GetArraySize(list);
    if (n == 0) {
        snprintf(z->reason, z->rlen, "field '%s' is an empty list of turns", list_name);
        return false;
    }
    const char *prev = NULL;
    int idx = 0;
    const cJSON *t;
    char *sys = NULL;
    bool ok = false;
    cJSON_ArrayForEach(t, list)
    {
        idx++;
        if (!cJSON_IsObject(t)) {
            snprintf(z->reason, z->rlen, "turn %d of '%s' is %s, expected an object", idx,
                     list_name, type_name(t));
            goto done;
        }
        const char *rk = col(z->m, role_key), *ck = col(z->m, content_key);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, rk);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, ck);
        if (!cJSON_IsString(r)) {
            snprintf(z->reason, z->rlen, "turn %d: field '%s' is %s, expected a string", idx, rk,
                     type_name(r));
            goto done;
        }
        const char *role = map_role(r->valuestring);
        if (!role) {
            snprintf(z->reason, z->rlen,
                     "turn %d has unknown role '%.40s' (expected user/human, assistant/gpt, "
                     "system or tool)",
                     idx, r->valuestring);
            goto done;
        }
        char *content = message_content(c);
        if (!content) {
            snprintf(z->reason, z->rlen, "turn %d: field '%s' is %s, expected a string", idx, ck,
                     type_name(c));
            goto done;
        }
        if (!content[strspn(content, " \t\r\n")] && strcmp(role, "tool") != 0) {
            snprintf(z->reason, z->rlen, "turn %d (%s) has empty content", idx, role);
            free(content);
            goto done;
        }
        check_controls(z, content, ck);
        if (strcmp(role, "system") == 0) {
            if (prev || sys) {
                snprintf(z->reason, z->rlen,
                         "turn %d is a system turn after the conversation started (expected "
                         "only as the first turn)",
                         idx);
                free(content);
                goto done;
            }
            sys = content;
            json_field(z, "system", sys);
            continue;
        }
        if (!prev && strcmp(role, "user") != 0) {
            snprintf(z->reason, z->rlen, "turns out of order: the conversation starts with %s "
                     "turn %d, expected a user turn first", role, idx);
            free(content);
            goto done;
        }
        if (prev && strcmp(prev, role) == 0 && strcmp(role, "tool") != 0) {
            snprintf(z->reason, z->rlen,
                     "turns out of order: turns %d and %d are both from %s%s", idx - 1, idx,
                     role, strcmp(role, "user") == 0 ? " (no assistant reply between them)" : "");
            free(content);
            goto done;
        }
        if (prev && strcmp(role, "tool") == 0 && strcmp(prev, "user") == 0) {
            snprintf(z->reason, z->rlen, "turns out of order: tool turn %d follows a user turn",
                     idx);
            free(content);
            goto done;
        }
        turn(z, role, content);
        free(content);
        prev = role;
    }
    if (!prev) {
        snprintf(z->reason, z->rlen, "'%s' has no user or assistant turn", list_name);
        goto done;
    }
    if (!prompt_only && strcmp(prev, "assistant") != 0) {
        snprintf(z->reason, z->rlen,
                 "turns out of order: the conversation ends with a %s turn and has no assistant "
                 "reply",
                 prev);
        goto done;
    }
    ok = true;
done:
    free(sys);
    return ok;
}

static bool norm_alpaca(norm *z, const cJSON *row)
{
    bool bad;
    const char *ins = str_field(z, row, "instruction", true, &bad);
    if (bad)
        return false;
    const char *input = str_field(z, row, "input", false, &bad);
    if (bad)
        return false;
    const char *out = str_field(z, row, "output", true, &bad);
    if (bad)
        return false;
    const char *sys = str_field(z, row, "system", false, &bad);
    if (bad)
        return false;
    if (sys && *sys)
        json_field(z, "system", sys);
    const cJSON *hist = get(row, z->m, "history");
    if (hist && !cJSON_IsNull(hist)) {
        const cJSON *pair;
        int i = 0;
        if (!cJSON_IsArray(hist)) {
            snprintf(z->reason, z->rlen, "field 'history' is %s, expected [[question, answer], ...]",
                     type_name(hist));
            return false;
        }
        cJSON_ArrayForEach(pair, hist)
        {
            i++;
            const cJSON *q = cJSON_GetArrayItem(pair, 0), *a = cJSON_GetArrayItem(pair, 1);
            if (!cJSON_IsArray(pair) || !cJSON_IsString(q) || !cJSON_IsString(a)) {
                snprintf(z->reason, z->rlen,
                         "history entry %d is not a [question, answer] pair of strings", i);
                return false;
            }
            turn(z, "user", q->valuestring);
            turn(z, "assistant", a->valuestring);
        }
    }
    if (input && input[strspn(input, " \t\r\n")]) {
        size_t n = strlen(ins) + strlen(input) + 2;
        char *prompt = malloc(n);
        if (!prompt)
            return false;
        snprintf(prompt, n, "%s\n%s", ins, input);
        turn(z, "user", prompt);
        free(prompt);
    } else {
        turn(z, "user", ins);
    }
    turn(z, "assistant", out);
    end_turns(z);
    /* the user turn is "instruction\ninput"; the input is kept apart too, so an alpaca export
     * splits it back into its own field */
    if (input && input[strspn(input, " \t\r\n")])
        json_layout_field(z, "alpaca_input", input);
    return true;
}

/* A preference answer: a string, or a list of messages whose last one is the answer. */
static const char *pref_answer(norm *z, const cJSON *row, const char *canon)
{
    const cJSON *j = get(row, z->m, canon);
    const char *name = col(z->m, canon);
    if (cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0) {
        const cJSON *last = cJSON_GetArrayItem(j, cJSON_GetArraySize(j) - 1);
        j = cJSON_GetObjectItemCaseSensitive(last, col(z->m, "content"));
    }
    if (!j) {
        snprintf(z->reason, z->rlen, "missing field '%s'", name);
        return NULL;
    }
    if (!cJSON_IsString(j)) {
        snprintf(z->reason, z->rlen, "field '%s' is %s, expected a string or a list of messages",
                 name, type_name(j));
        return NULL;
    }
    if (!j->valuestring[strspn(j->valuestring, " \t\r\n")]) {
        snprintf(z->reason, z->rlen, "field '%s' is empty", name);
        return NULL;
    }
    check_controls(z, j->valuestring, name);
    return j->valuestring;
}

static bool norm_preference(norm *z, const cJSON *row)
{
    bool bad;
    const char *sys = str_field(z, row, "system", false, &bad);
    if (bad)
        return false;
    if (sys && *sys)
        json_field(z, "system", sys);
    const cJSON *p = get(row, z->m, "prompt");
    if (cJSON_IsArray(p)) {
        if (!chat_turns(z, p, col(z->m, "prompt"), "role", "content", true))
            return false;
    } else {
        const char *ps = str_field(z, row, "prompt", true, &bad);
        if (bad)
            return false;
        turn(z, "user", ps);
    }
    end_turns(z);
    const char *c = pref_answer(z, row, "chosen");
    if (!c)
        return false;
    const char *r = pref_answer(z, row, "rejected");
    if (!r)
        return false;
    if (strcmp(c, r) == 0) {
        snprintf(z->reason, z->rlen, "chosen and rejected are identical");
        return false;
    }
    json_field(z, "chosen", c);
    json_field(z, "rejected", r);
    z->response_chars = lt_utf8_count(c, strlen(c));
    return true;
}

char *lt_data_mc_prompt(const char *question, const char *const *choices, int n_choices)
{
    sbuf b = {0};
    sb_str(&b, question);
    sb_put(&b, "\n", 1);
    for (int i = 0; i < n_choices && i < LT_DATA_MC_MAX_CHOICES; i++) {
        char letter[5] = {'\n', (char)('A' + i), '.', ' ', 0};
        sb_str(&b, letter);
        sb_str(&b, choices[i]);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* The choices of a multiple-choice row: an array of strings, or ARC's {"text": [...],
 * "label": [...]}. OUT texts[] (pointers into row), labels[] (NULL without labels). Returns
 * the count, or -1 with the reason set. */
static int mc_choices(norm *z, const cJSON *row, const char **texts, const char **labels)
{
    const char *name;
    const cJSON *c = mc_get(row, z->m, "choices", &name), *lab = NULL;
    if (cJSON_IsObject(c)) {
        lab = cJSON_GetObjectItemCaseSensitive(c, "label");
        c = cJSON_GetObjectItemCaseSensitive(c, "text");
        if (!cJSON_IsArray(c)) {
            snprintf(z->reason, z->rlen,
                     "field '%s' is an object without a 'text' list (expected a list of "
                     "strings, or {\"text\": [...], \"label\": [...]})",
                     name);
            return -1;
        }
    } else if (!cJSON_IsArray(c)) {
        snprintf(z->reason, z->rlen, "field '%s' is %s, expected a list of strings", name,
                 type_name(c));
        return -1;
    }
    int n = cJSON_GetArraySize(c);
    if (n < 2) {
        snprintf(z->reason, z->rlen, "field '%s' has %d choice%s, expected at least 2", name, n,
                 n == 1 ? "" : "s");
        return -1;
    }
    if (n > LT_DATA_MC_MAX_CHOICES) {
        snprintf(z->reason, z->rlen, "field '%s' has %d choices, at most %d are supported",
                 name, n, LT_DATA_MC_MAX_CHOICES);
        return -1;
    }
    if (lab && (!cJSON_IsArray(lab) || cJSON_GetArraySize(lab) != n)) {
        snprintf(z->reason, z->rlen, "field '%s': 'label' is not a list of %d labels", name, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *t = cJSON_GetArrayItem(c, i);
        if (!cJSON_IsString(t)) {
            snprintf(z->reason, z->rlen, "choice %d of '%s' is %s, expected a string", i + 1,
                     name, type_name(t));
            return -1;
        }
        if (!t->valuestring[strspn(t->valuestring, " \t\r\n")]) {
            snprintf(z->reason, z->rlen, "choice %d of '%s' is empty", i + 1, name);
            return -1;
        }
        for (int k = 0; k < i; k++)
            if (strcmp(texts[k], t->valuestring) == 0) {
                snprintf(z->reason, z->rlen, "choices %d and %d of '%s' are identical ('%.60s')",
                         k + 1, i + 1, name, t->valuestring);
                return -1;
            }
        check_controls(z, t->valuestring, name);
        texts[i] = t->valuestring;
        labels[i] = NULL;
        if (lab) {
            const cJSON *l = cJSON_GetArrayItem(lab, i);
            if (!cJSON_IsString(l)) {
                snprintf(z->reason, z->rlen, "label %d of '%s' is %s, expected a string", i + 1,
                         name, type_name(l));
                return -1;
            }
            labels[i] = l->valuestring;
        }
    }
    return n;
}

/* The index of the correct choice: a 0-based integer, a label of ARC's label list, a letter
 * A.. (or a..), or the text of one of the choices. -1 with the reason set. */
static int mc_answer(norm *z, const cJSON *row, const char *const *texts,
                     const char *const *labels, int n)
{
    const char *name;
    const cJSON *a = mc_get(row, z->m, "answer", &name);
    if (cJSON_IsNumber(a)) {
        double v = a->valuedouble;
        if (v != (double)(int)v || v < 0 || v >= n) {
            snprintf(z->reason, z->rlen, "field '%s' is %g, %s: expected a choice index from 0 to %d",
                     name, v, v != (double)(int)v ? "not a whole number" : "out of range", n - 1);
            return -1;
        }
        return (int)v;
    }
    if (!cJSON_IsString(a)) {
        snprintf(z->reason, z->rlen,
                 "field '%s' is %s, expected a choice index, a letter or the choice's text", name,
                 type_name(a));
        return -1;
    }
    const char *s = a->valuestring;
    for (int i = 0; labels[0] && i < n; i++)
        if (strcmp(labels[i], s) == 0)
            return i;
    size_t len = strlen(s);
    if (len == 1 && ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) {
        int i = (s[0] | 0x20) - 'a';
        if (i < n)
            return i;
        snprintf(z->reason, z->rlen,
                 "field '%s' is '%s', out of range: expected a letter from A to %c", name, s,
                 'A' + n - 1);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (strcmp(texts[i], s) == 0)
            return i;
    snprintf(z->reason, z->rlen,
             "field '%s' ('%.60s') is neither a choice letter nor the text of a choice", name, s);
    return -1;
}

static bool norm_mc(norm *z, const cJSON *row)
{
    bool bad;
    const char *qname;
    const cJSON *q = mc_get(row, z->m, "question", &qname);
    if (!cJSON_IsString(q)) {
        snprintf(z->reason, z->rlen, "field '%s' is %s, expected a string", qname, type_name(q));
        return false;
    }
    if (!q->valuestring[strspn(q->valuestring, " \t\r\n")]) {
        snprintf(z->reason, z->rlen, "field '%s' is empty", qname);
        return false;
    }
    check_controls(z, q->valuestring, qname);
    const char *texts[LT_DATA_MC_MAX_CHOICES], *labels[LT_DATA_MC_MAX_CHOICES];
    int n = mc_choices(z, row, texts, labels);
    if (n < 0)
        return false;
    int ans = mc_answer(z, row, texts, labels, n);
    if (ans < 0)
        return false;
    const char *sys = str_field(z, row, "system", false, &bad);
    if (bad)
        return false;
    if (sys && *sys)
        json_field(z, "system", sys);
    char *prompt = lt_data_mc_prompt(q->valuestring, texts, n);
    if (!prompt) {
        z->json.oom = true;
        return true; /* reported as out of memory by the caller */
    }
    turn(z, "user", prompt);
    free(prompt);
    turn(z, "assistant", texts[ans]);
    end_turns(z);
    /* the fields themselves, outside the dedup text (the turns already hold them) */
    sb_str(&z->json, ",\"question\":");
    sb_json(&z->json, q->valuestring);
    sb_str(&z->json, ",\"choices\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            sb_put(&z->json, ",", 1);
        sb_json(&z->json, texts[i]);
    }
    char num[32];
    snprintf(num, sizeof num, "],\"answer\":%d", ans);
    sb_str(&z->json, num);
    return true;
}

bool lt_format_normalize(const cJSON *row, lt_data_format f, const lt_field_map *m,
                         lt_norm_sample *out, char *reason, size_t reason_len)
{
    memset(out, 0, sizeof *out);
    norm z = {.m = m, .reason = reason, .rlen = reason_len, .out = out};
    bool ok = false, bad = false;
    reason[0] = '\0';
    switch (f) {
    case LT_DATA_FORMAT_ALPACA: ok = norm_alpaca(&z, row); break;
    case LT_DATA_FORMAT_SHAREGPT:
    case LT_DATA_FORMAT_MESSAGES: {
        bool sg = f == LT_DATA_FORMAT_SHAREGPT;
        const char *lname = col(m, sg ? "conversations" : "messages");
        const cJSON *list = get(row, m, sg ? "conversations" : "messages");
        if (!list) {
            snprintf(reason, reason_len, "missing field '%s'", lname);
            break;
        }
        const char *sys = str_field(&z, row, "system", false, &bad);
        if (bad)
            break;
        if (sys && *sys)
            json_field(&z, "system", sys);
        ok = chat_turns(&z, list, lname, sg ? "from" : "role", sg ? "value" : "content", false);
        end_turns(&z);
        break;
    }
    case LT_DATA_FORMAT_PREFERENCE: ok = norm_preference(&z, row); break;
    case LT_DATA_FORMAT_TEXT: {
        const char *t = str_field(&z, row, "text", true, &bad);
        if (!bad) {
            json_field(&z, "text", t);
            z.response_chars = lt_utf8_count(t, strlen(t));
            ok = true;
        }
        break;
    }
    case LT_DATA_FORMAT_MULTIPLE_CHOICE: ok = norm_mc(&z, row); break;
    case LT_DATA_FORMAT_AUTO:
        snprintf(reason, reason_len,
                 "row fits no known format (expected instruction/output, conversations, "
                 "messages, prompt/chosen/rejected, text or question/choices/answer; map "
                 "columns with --field-map)");
        break;
    }
    if (ok && (z.json.oom || z.text.oom)) {
        snprintf(reason, reason_len, "out of memory");
        ok = false;
    }
    if (!ok) {
        free(z.json.p);
        free(z.text.p);
        memset(out, 0, sizeof *out);
        return false;
    }
    sb_put(&z.json, "}", 1);
    out->json = z.json.p;
    out->text = z.text.p ? z.text.p : strdup("");
    out->n_turns = z.n_turns;
    out->n_response_chars = z.response_chars;
    if (!out->json || !out->text) {
        lt_norm_sample_free(out);
        snprintf(reason, reason_len, "out of memory");
        return false;
    }
    return true;
}

void lt_norm_sample_free(lt_norm_sample *s)
{
    free(s->json);
    free(s->text);
    s->json = s->text = NULL;
}
