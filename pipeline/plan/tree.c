/*
 * tree.c - the wizard's decision tree: parsing and validating its JSON, and walking it with
 * answers (questions the user answers) and facts (values gathered or estimated).
 *
 * A node is a question ("ask": the answer key, "choices": [{value, label, next, why, sets}]),
 * a fact test ("fact": the fact's name, "branches": [{lt | is | else, next, why}], tried in
 * order) or a leaf ("method", "rationale", optional "train_method" and
 * "gradient_checkpointing"). The tree must be a DAG
 * from "start" whose every path ends in a leaf; the walk never guesses a missing value, it
 * stops and names it.
 */
#include "plan/plan.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { NODE_ASK, NODE_FACT, NODE_LEAF } node_kind;

typedef struct node {
    const char *id;
    node_kind kind;
    const char *key;      /* answer key or fact name */
    const char *question;
    const char *dflt;     /* a question's default choice, or NULL */
    const cJSON *arms;    /* choices or branches */
    const char *method, *train, *rationale;
    bool checkpointing;   /* a leaf whose run recomputes activations */
} node;

struct lt_plan_tree {
    cJSON *root;
    node *nodes;
    int n;
    int start;
};

extern const unsigned char lt_plan_tree_json[];      /* wizard_tree.c, generated from the asset */
extern const unsigned long lt_plan_tree_json_len;

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(j) && j->valuestring[0] ? j->valuestring : NULL;
}

static int find(const lt_plan_tree *t, const char *id)
{
    for (int i = 0; id && i < t->n; i++)
        if (t->nodes[i].id && strcmp(t->nodes[i].id, id) == 0)
            return i;
    return -1;
}

/* Reads one node's fields. */
static bool read_node(const char *label, const cJSON *j, node *nd, char *err, size_t errlen)
{
    nd->id = j->string;
    if (!cJSON_IsObject(j))
        return fail(err, errlen, "%s: $.nodes.%s: expected an object", label, nd->id);
    nd->question = str(j, "question");
    if (str(j, "ask")) {
        nd->kind = NODE_ASK;
        nd->key = str(j, "ask");
        nd->arms = cJSON_GetObjectItemCaseSensitive(j, "choices");
        nd->dflt = str(j, "default");
        if (!cJSON_IsArray(nd->arms) || cJSON_GetArraySize(nd->arms) < 2)
            return fail(err, errlen, "%s: $.nodes.%s.choices: expected at least two choices",
                        label, nd->id);
    } else if (str(j, "fact")) {
        nd->kind = NODE_FACT;
        nd->key = str(j, "fact");
        nd->arms = cJSON_GetObjectItemCaseSensitive(j, "branches");
        if (!cJSON_IsArray(nd->arms) || cJSON_GetArraySize(nd->arms) < 2)
            return fail(err, errlen, "%s: $.nodes.%s.branches: expected at least two branches",
                        label, nd->id);
    } else if (str(j, "method")) {
        nd->kind = NODE_LEAF;
        nd->method = str(j, "method");
        nd->train = str(j, "train_method");
        nd->rationale = str(j, "rationale");
        const cJSON *gc = cJSON_GetObjectItemCaseSensitive(j, "gradient_checkpointing");
        if (gc && !cJSON_IsBool(gc))
            return fail(err, errlen, "%s: $.nodes.%s.gradient_checkpointing: expected true or "
                        "false", label, nd->id);
        nd->checkpointing = cJSON_IsTrue(gc);
        if (!nd->rationale)
            return fail(err, errlen, "%s: $.nodes.%s.rationale: a leaf needs a rationale", label,
                        nd->id);
        if (nd->train && strcmp(nd->train, "full") != 0 && strcmp(nd->train, "lora") != 0 &&
            strcmp(nd->train, "qlora") != 0 && strcmp(nd->train, "freeze") != 0)
            return fail(err, errlen,
                        "%s: $.nodes.%s.train_method: expected \"full\", \"lora\", \"qlora\" "
                        "or \"freeze\"", label, nd->id);
        return true;
    } else {
        return fail(err, errlen, "%s: $.nodes.%s: expected \"ask\", \"fact\" or \"method\"",
                    label, nd->id);
    }
    if (!nd->question)
        return fail(err, errlen, "%s: $.nodes.%s.question: missing", label, nd->id);
    return true;
}

/* Checks a question's or fact test's arms: next exists, values unique, else last. */
static bool check_arms(const lt_plan_tree *t, const char *label, const node *nd, char *err,
                       size_t errlen)
{
    const char *what = nd->kind == NODE_ASK ? "choices" : "branches";
    int i = 0, n = cJSON_GetArraySize(nd->arms);
    for (const cJSON *a = nd->arms->child; a; a = a->next, i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s: $.nodes.%s.%s[%d]", label, nd->id, what, i);
        if (!cJSON_IsObject(a))
            return fail(err, errlen, "%s: expected an object", p);
        const char *next = str(a, "next");
        if (!next)
            return fail(err, errlen, "%s.next: missing", p);
        if (find(t, next) < 0)
            return fail(err, errlen, "%s.next: no node named \"%s\"", p, next);
        if (!str(a, "why"))
            return fail(err, errlen, "%s.why: missing (each step explains itself)", p);
        if (nd->kind == NODE_ASK) {
            const char *v = str(a, "value");
            if (!v || !str(a, "label"))
                return fail(err, errlen, "%s: expected \"value\" and \"label\" strings", p);
            for (const cJSON *b = nd->arms->child; b != a; b = b->next)
                if (str(b, "value") && strcmp(str(b, "value"), v) == 0)
                    return fail(err, errlen, "%s.value: \"%s\" appears twice", p, v);
            continue;
        }
        bool is_else = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "else"));
        const cJSON *lt = cJSON_GetObjectItemCaseSensitive(a, "lt");
        const cJSON *is = cJSON_GetObjectItemCaseSensitive(a, "is");
        if ((int)is_else + (lt != NULL) + (is != NULL) != 1)
            return fail(err, errlen, "%s: expected exactly one of \"lt\", \"is\", \"else\"", p);
        if (lt && !cJSON_IsNumber(lt))
            return fail(err, errlen, "%s.lt: expected a number", p);
        if (is && !cJSON_IsBool(is) && !cJSON_IsString(is))
            return fail(err, errlen, "%s.is: expected a boolean or a string", p);
        if (is_else != (i == n - 1))
            return fail(err, errlen, "%s: the last branch must be \"else\" (and only the last), "
                        "so every value of the fact leads somewhere", p);
    }
    if (nd->dflt) {
        bool found = false;
        for (const cJSON *a = nd->arms->child; a; a = a->next)
            found |= strcmp(str(a, "value"), nd->dflt) == 0;
        if (!found)
            return fail(err, errlen, "%s: $.nodes.%s.default: \"%s\" is not one of the choices",
                        label, nd->id, nd->dflt);
    }
    return true;
}

/* Depth-first search for cycles: state 0 new, 1 on the stack, 2 done. */
static bool dfs(const lt_plan_tree *t, int i, char *state, const char *label, char *err,
                size_t errlen)
{
    if (state[i] == 2)
        return true;
    if (state[i] == 1)
        return fail(err, errlen, "%s: $.nodes.%s: a cycle comes back to this node", label,
                    t->nodes[i].id);
    state[i] = 1;
    if (t->nodes[i].kind != NODE_LEAF)
        for (const cJSON *a = t->nodes[i].arms->child; a; a = a->next)
            if (!dfs(t, find(t, str(a, "next")), state, label, err, errlen))
                return false;
    state[i] = 2;
    return true;
}

lt_plan_tree *lt_plan_tree_parse(const char *json, size_t n, const char *label, char *err,
                                 size_t errlen)
{
    lt_plan_tree *t = calloc(1, sizeof(*t));
    char *state = NULL;
    if (!t) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    t->root = cJSON_ParseWithLength(json, n);
    if (!t->root) {
        fail(err, errlen, "%s: not valid JSON", label);
        goto bad;
    }
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(t->root, "nodes");
    if (!cJSON_IsObject(nodes) || !nodes->child) {
        fail(err, errlen, "%s: $.nodes: expected a non-empty object", label);
        goto bad;
    }
    t->n = cJSON_GetArraySize(nodes);
    t->nodes = calloc((size_t)t->n, sizeof(node));
    state = calloc((size_t)t->n, 1);
    if (!t->nodes || !state) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    int i = 0;
    for (const cJSON *j = nodes->child; j; j = j->next, i++) {
        if (find(t, j->string) >= 0 && find(t, j->string) < i) {
            fail(err, errlen, "%s: $.nodes.%s: defined twice", label, j->string);
            goto bad;
        }
        if (!read_node(label, j, &t->nodes[i], err, errlen))
            goto bad;
    }
    t->start = find(t, str(t->root, "start"));
    if (t->start < 0) {
        fail(err, errlen, "%s: $.start: expected the id of a node", label);
        goto bad;
    }
    for (i = 0; i < t->n; i++)
        if (t->nodes[i].kind != NODE_LEAF && !check_arms(t, label, &t->nodes[i], err, errlen))
            goto bad;
    if (!dfs(t, t->start, state, label, err, errlen))
        goto bad;
    for (i = 0; i < t->n; i++)
        if (!state[i]) {
            fail(err, errlen, "%s: $.nodes.%s: not reachable from the start", label,
                 t->nodes[i].id);
            goto bad;
        }
    free(state);
    return t;
bad:
    free(state);
    lt_plan_tree_free(t);
    return NULL;
}

lt_plan_tree *lt_plan_tree_builtin(char *err, size_t errlen)
{
    return lt_plan_tree_parse((const char *)lt_plan_tree_json, (size_t)lt_plan_tree_json_len,
                              "assets/wizard/tree.json", err, errlen);
}

void lt_plan_tree_free(lt_plan_tree *t)
{
    if (!t)
        return;
    cJSON_Delete(t->root);
    free(t->nodes);
    free(t);
}

int lt_plan_tree_leaves(const lt_plan_tree *t, const char **ids, int max)
{
    int k = 0;
    for (int i = 0; i < t->n; i++)
        if (t->nodes[i].kind == NODE_LEAF) {
            if (k < max)
                ids[k] = t->nodes[i].id;
            k++;
        }
    return k;
}

int lt_plan_tree_questions(const lt_plan_tree *t, const char **keys, int max)
{
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        if (t->nodes[i].kind != NODE_ASK)
            continue;
        bool seen = false;
        for (int j = 0; j < k && j < max; j++)
            seen |= strcmp(keys[j], t->nodes[i].key) == 0;
        if (!seen) {
            if (k < max)
                keys[k] = t->nodes[i].key;
            k++;
        }
    }
    return k;
}

const char *lt_plan_tree_question(const lt_plan_tree *t, const char *key, const char **values,
                                  const char **labels, int max, int *n)
{
    *n = 0;
    for (int i = 0; i < t->n; i++) {
        const node *nd = &t->nodes[i];
        if (!key || !nd->key || strcmp(nd->key, key) != 0)
            continue;
        if (nd->kind == NODE_ASK)
            for (const cJSON *a = nd->arms->child; a; a = a->next) {
                if (*n < max) {
                    values[*n] = str(a, "value");
                    labels[*n] = str(a, "label");
                }
                (*n)++;
            }
        return nd->question;
    }
    return NULL;
}

const char *lt_plan_tree_default(const lt_plan_tree *t, const char *key)
{
    for (int i = 0; key && i < t->n; i++)
        if (t->nodes[i].kind == NODE_ASK && strcmp(t->nodes[i].key, key) == 0)
            return t->nodes[i].dflt;
    return NULL;
}

const char *lt_plan_leaf_method(const lt_plan_tree *t, const char *leaf, const char **train,
                                const char **rationale)
{
    int i = find(t, leaf);
    if (i < 0 || t->nodes[i].kind != NODE_LEAF)
        return NULL;
    if (train)
        *train = t->nodes[i].train;
    if (rationale)
        *rationale = t->nodes[i].rationale;
    return t->nodes[i].method;
}

bool lt_plan_leaf_checkpointing(const lt_plan_tree *t, const char *leaf)
{
    int i = find(t, leaf);
    return i >= 0 && t->nodes[i].kind == NODE_LEAF && t->nodes[i].checkpointing;
}

/* Does a fact branch take value v? */
static bool branch_takes(const cJSON *a, const cJSON *v)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "else")))
        return true;
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(a, "lt");
    if (lt)
        return cJSON_IsNumber(v) && v->valuedouble < lt->valuedouble;
    const cJSON *is = cJSON_GetObjectItemCaseSensitive(a, "is");
    if (cJSON_IsBool(is))
        return cJSON_IsBool(v) && cJSON_IsTrue(is) == cJSON_IsTrue(v);
    return cJSON_IsString(v) && strcmp(v->valuestring, is->valuestring) == 0;
}

/* Is v of the type the fact's tests compare with (a number for "lt", a boolean or a string
 * as "is")? A value of another type would fall through to "else" unnoticed. */
static bool fact_type_ok(const node *nd, const cJSON *v)
{
    for (const cJSON *a = nd->arms->child; a; a = a->next) {
        const cJSON *lt = cJSON_GetObjectItemCaseSensitive(a, "lt");
        const cJSON *is = cJSON_GetObjectItemCaseSensitive(a, "is");
        if (lt && !cJSON_IsNumber(v))
            return false;
        if (is && cJSON_IsBool(is) && !cJSON_IsBool(v))
            return false;
        if (is && cJSON_IsString(is) && !cJSON_IsString(v))
            return false;
    }
    return true;
}

/* A fact's value as text, for the path. */
static void value_text(const cJSON *v, char *buf, size_t n)
{
    if (cJSON_IsString(v))
        snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v))
        snprintf(buf, n, "%.6g", v->valuedouble);
    else
        snprintf(buf, n, "?");
}

lt_plan_walk_status lt_plan_tree_walk(const lt_plan_tree *t, const void *answers,
                                      const void *facts, void **path, const char **leaf,
                                      const char **missing, char *err, size_t errlen)
{
    cJSON *p = cJSON_CreateArray();
    *path = p;
    *leaf = *missing = NULL;
    int i = t->start;
    for (int guard = 0; guard <= t->n; guard++) {
        const node *nd = &t->nodes[i];
        if (nd->kind == NODE_LEAF) {
            *leaf = nd->id;
            return LT_PLAN_WALK_LEAF;
        }
        const cJSON *src = nd->kind == NODE_ASK ? answers : facts;
        const cJSON *v = src ? cJSON_GetObjectItemCaseSensitive(src, nd->key) : NULL;
        if (!v || cJSON_IsNull(v)) {
            *missing = nd->key;
            return nd->kind == NODE_ASK ? LT_PLAN_WALK_NEED_ANSWER : LT_PLAN_WALK_NEED_FACT;
        }
        const cJSON *arm = NULL;
        if (nd->kind == NODE_FACT && !fact_type_ok(nd, v)) {
            char vt0[128];
            value_text(v, vt0, sizeof(vt0));
            *missing = nd->key;
            const cJSON *first = nd->arms->child;
            fail(err, errlen, "fact %s = \"%s\": expected %s", nd->key, vt0,
                 cJSON_GetObjectItemCaseSensitive(first, "lt") ? "a number"
                 : cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(first, "is"))
                     ? "true or false"
                     : "a string");
            return LT_PLAN_WALK_BAD;
        }
        for (const cJSON *a = nd->arms->child; a && !arm; a = a->next) {
            if (nd->kind == NODE_ASK)
                arm = cJSON_IsString(v) && strcmp(str(a, "value"), v->valuestring) == 0 ? a
                                                                                        : NULL;
            else
                arm = branch_takes(a, v) ? a : NULL;
        }
        char vt[128];
        value_text(v, vt, sizeof(vt));
        if (!arm) {
            char vals[512] = "";
            for (const cJSON *a = nd->arms->child; a; a = a->next)
                snprintf(vals + strlen(vals), sizeof(vals) - strlen(vals), "%s%s",
                         a == nd->arms->child ? "" : ", ", str(a, "value"));
            *missing = nd->key;
            fail(err, errlen, "answer %s=\"%s\" is not one of the choices (%s)", nd->key, vt,
                 vals);
            return LT_PLAN_WALK_BAD;
        }
        cJSON *step = cJSON_CreateObject();
        cJSON_AddItemToArray(p, step);
        cJSON_AddStringToObject(step, "node", nd->id);
        cJSON_AddStringToObject(step, "kind", nd->kind == NODE_ASK ? "question" : "fact");
        cJSON_AddStringToObject(step, "question", nd->question);
        cJSON_AddStringToObject(step, "key", nd->key);
        cJSON_AddStringToObject(step, "value", vt);
        cJSON_AddStringToObject(step, "next", str(arm, "next"));
        cJSON_AddStringToObject(step, "why", str(arm, "why"));
        const cJSON *sets = cJSON_GetObjectItemCaseSensitive(arm, "sets");
        if (cJSON_IsObject(sets))
            cJSON_AddItemToObject(step, "sets", cJSON_Duplicate(sets, 1));
        i = find(t, str(arm, "next"));
    }
    fail(err, errlen, "the walk did not end (a cycle the parser missed)");
    return LT_PLAN_WALK_BAD;
}
