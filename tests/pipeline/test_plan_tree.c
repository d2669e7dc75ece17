/*
 * test_plan_tree.c - the wizard's decision tree: every leaf of the shipped tree is reached by
 * a listed set of answers and facts (leaves enumerated from the JSON, so a new leaf without a
 * case fails), every branch of every node is taken by some case, a walk stops and names a
 * missing answer or fact, bad answers are refused, broken trees are rejected with the JSON
 * path in the message, and a plan's config passes the training config parser.
 */
#include "plan/plan.h"
#include "test.h"
#include "train/train_config.h"

#include <cjson/cJSON.h>
#include <string.h>

typedef struct walk_case {
    const char *answers; /* JSON object */
    const char *facts;   /* JSON object */
    const char *leaf;
} walk_case;

#define NO_LORA "\"lora_fits\":false,\"lora_ckpt_fits\":false"

static const walk_case cases[] = {
    {"{\"need\":\"knowledge\"}", "{}", "leaf_rag"},
    {"{\"need\":\"style\",\"fewshot_tried\":\"no\"}", "{\"n_examples\":500}", "leaf_fewshot"},
    {"{\"need\":\"preference\"}", "{\"preference_pairs\":false}", "leaf_need_pairs"},
    {"{\"need\":\"vocabulary\"}", "{\"raw_text\":false}", "leaf_need_raw_text"},
    {"{\"need\":\"preference\"}", "{\"preference_pairs\":true,\"reference_fits\":true}",
     "leaf_dpo"},
    {"{\"need\":\"preference\"}", "{\"preference_pairs\":true,\"reference_fits\":false}",
     "leaf_orpo"},
    /* the memory nodes test the estimator's facts (lt_plan_derive), cheapest method first */
    {"{\"need\":\"style\"}",
     "{\"n_examples\":5000,\"device\":\"gpu\",\"memory_gb\":12," NO_LORA
     ",\"qlora_fits\":true}",
     "leaf_qlora"},
    {"{\"need\":\"edge_cases\"}",
     "{\"n_examples\":5000,\"device\":\"gpu\",\"memory_gb\":24,\"lora_fits\":true}", "leaf_lora"},
    {"{\"need\":\"new_task\",\"concern_forgetting\":\"no\"}",
     "{\"n_examples\":50000,\"device\":\"gpu\",\"memory_gb\":80,\"full_fits\":true}",
     "leaf_full"},
    {"{\"need\":\"new_task\",\"concern_forgetting\":\"no\"}",
     "{\"n_examples\":50000,\"device\":\"gpu\",\"memory_gb\":80,\"full_fits\":false,"
     "\"full_ckpt_fits\":true}",
     "leaf_full_ckpt"},
    {"{\"need\":\"new_task\",\"concern_forgetting\":\"no\"}",
     "{\"n_examples\":50000,\"device\":\"gpu\",\"memory_gb\":80,\"full_fits\":false,"
     "\"full_ckpt_fits\":false,\"lora_fits\":true}",
     "leaf_lora"},
    {"{\"need\":\"domain\"}",
     "{\"n_examples\":5000,\"device\":\"cpu\",\"memory_gb\":64,\"lora_fits\":true}",
     "leaf_cpu_lora"},
    {"{\"need\":\"domain\"}",
     "{\"n_examples\":5000,\"device\":\"cpu\",\"memory_gb\":16," NO_LORA
     ",\"qlora_fits\":true}",
     "leaf_qlora"},
    {"{\"need\":\"domain\"}", "{\"n_examples\":5000,\"device\":\"cpu\",\"memory_gb\":0.5}",
     "leaf_too_big"},
    {"{\"need\":\"knowledge_style\",\"concern_forgetting\":\"yes\"}",
     "{\"n_examples\":20000,\"device\":\"gpu\",\"memory_gb\":24,\"lora_fits\":false,"
     "\"lora_ckpt_fits\":true}",
     "leaf_lora_ckpt"},
    {"{\"need\":\"distill\",\"fewshot_tried\":\"yes\"}",
     "{\"n_examples\":300,\"device\":\"gpu\",\"memory_gb\":8," NO_LORA
     ",\"qlora_fits\":false,\"qlora_ckpt_fits\":true}",
     "leaf_qlora_ckpt"},
    {"{\"need\":\"distill\",\"fewshot_tried\":\"yes\"}",
     "{\"n_examples\":300,\"device\":\"gpu\",\"memory_gb\":4," NO_LORA
     ",\"qlora_fits\":false,\"qlora_ckpt_fits\":false}",
     "leaf_too_big"},
    {"{\"need\":\"style\"}", "{\"n_examples\":5000,\"device\":\"gpu\",\"memory_gb\":1}",
     "leaf_too_big"},
    {"{\"need\":\"vocabulary\"}", "{\"raw_text\":true,\"device\":\"gpu\",\"memory_gb\":1}",
     "leaf_too_big"},
    {"{\"need\":\"vocabulary\"}",
     "{\"raw_text\":true,\"device\":\"cpu\",\"memory_gb\":10,\"lora_fits\":true}",
     "leaf_cpu_lora"},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* Every (node, next) arm of the tree file, to check each is taken by some case. */
static int arms_of(const char *json, char arms[][128], int max)
{
    cJSON *root = cJSON_Parse(json);
    int n = 0;
    const cJSON *node;
    cJSON_ArrayForEach(node, cJSON_GetObjectItemCaseSensitive(root, "nodes"))
    {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, "choices");
        if (!list)
            list = cJSON_GetObjectItemCaseSensitive(node, "branches");
        const cJSON *a;
        cJSON_ArrayForEach(a, list)
        {
            const cJSON *nx = cJSON_GetObjectItemCaseSensitive(a, "next");
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "value");
            if (n < max)
                snprintf(arms[n++], 128, "%s>%s>%s", node->string,
                         cJSON_IsString(v) ? v->valuestring : "", nx->valuestring);
        }
    }
    cJSON_Delete(root);
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void test_every_leaf_and_arm(void)
{
    char err[512] = "";
    lt_plan_tree *t = lt_plan_tree_builtin(err, sizeof(err));
    CHECK(t != NULL, "builtin tree: %s", err);
    if (!t)
        return;
    const char *leaves[64];
    int nl = lt_plan_tree_leaves(t, leaves, 64);
    CHECK(nl >= 10, "the tree has %d leaves", nl);
    bool reached[64] = {false};
    char arms[128][128];
    const char *file = slurp(LATHE_TEST_DATA "/../../assets/wizard/tree.json");
    CHECK(file != NULL, "assets/wizard/tree.json readable from the source tree");
    int na = file ? arms_of(file, arms, 128) : 0;
    bool taken[128] = {false};
    for (int c = 0; c < N_CASES; c++) {
        cJSON *ans = cJSON_Parse(cases[c].answers), *facts = cJSON_Parse(cases[c].facts);
        void *path = NULL;
        const char *leaf = NULL, *missing = NULL;
        lt_plan_walk_status s =
            lt_plan_tree_walk(t, ans, facts, &path, &leaf, &missing, err, sizeof(err));
        CHECK(s == LT_PLAN_WALK_LEAF && leaf && strcmp(leaf, cases[c].leaf) == 0,
              "case %d (%s, %s): status %d leaf %s missing %s, want %s", c, cases[c].answers,
              cases[c].facts, (int)s, leaf ? leaf : "-", missing ? missing : "-",
              cases[c].leaf);
        for (int i = 0; i < nl && leaf; i++)
            if (strcmp(leaves[i], leaf) == 0)
                reached[i] = true;
        const cJSON *step;
        cJSON_ArrayForEach(step, (cJSON *)path)
        {
            const char *node = cJSON_GetObjectItemCaseSensitive(step, "node")->valuestring;
            const char *kind = cJSON_GetObjectItemCaseSensitive(step, "kind")->valuestring;
            const char *value = cJSON_GetObjectItemCaseSensitive(step, "value")->valuestring;
            const char *next = cJSON_GetObjectItemCaseSensitive(step, "next")->valuestring;
            char key[128];
            snprintf(key, sizeof key, "%s>%s>%s", node, strcmp(kind, "question") == 0 ? value : "",
                     next);
            for (int i = 0; i < na; i++)
                if (strcmp(arms[i], key) == 0)
                    taken[i] = true;
            CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(step, "why")),
                  "case %d: each step records why", c);
        }
        cJSON_Delete(path);
        cJSON_Delete(ans);
        cJSON_Delete(facts);
    }
    for (int i = 0; i < nl; i++)
        CHECK(reached[i], "leaf %s is reached by no listed case", leaves[i]);
    for (int i = 0; i < na; i++)
        CHECK(taken[i], "branch %s is taken by no listed case", arms[i]);
    /* leaves carry methods and rationales */
    for (int i = 0; i < nl; i++) {
        const char *train = NULL, *why = NULL;
        const char *m = lt_plan_leaf_method(t, leaves[i], &train, &why);
        CHECK(m && why && strlen(why) > 20, "leaf %s has a method and a rationale", leaves[i]);
    }
    const char *rat = NULL;
    lt_plan_leaf_method(t, "leaf_dpo", NULL, &rat);
    CHECK(rat && strstr(rat, "PPO"), "the DPO leaf explains RLHF/PPO as the heavier option");
    lt_plan_tree_free(t);
}

static void test_walk_stops(void)
{
    char err[512] = "";
    lt_plan_tree *t = lt_plan_tree_builtin(err, sizeof(err));
    if (!t)
        return;
    void *path = NULL;
    const char *leaf = NULL, *missing = NULL;
    cJSON *ans = cJSON_CreateObject(), *facts = cJSON_CreateObject();
    lt_plan_walk_status s = lt_plan_tree_walk(t, ans, facts, &path, &leaf, &missing, err, 512);
    CHECK(s == LT_PLAN_WALK_NEED_ANSWER && missing && strcmp(missing, "need") == 0,
          "no answers: asks for need (%d, %s)", (int)s, missing ? missing : "-");
    cJSON_Delete(path);
    cJSON_AddStringToObject(ans, "need", "style");
    s = lt_plan_tree_walk(t, ans, facts, &path, &leaf, &missing, err, 512);
    CHECK(s == LT_PLAN_WALK_NEED_FACT && missing && strcmp(missing, "n_examples") == 0,
          "unknown size: names the fact n_examples (%d)", (int)s);
    CHECK(cJSON_GetArraySize(path) == 1, "the path so far is returned");
    cJSON_Delete(path);
    cJSON_AddNumberToObject(facts, "n_examples", 5000);
    cJSON_AddStringToObject(facts, "device", "gpu");
    s = lt_plan_tree_walk(t, ans, facts, &path, &leaf, &missing, err, 512);
    CHECK(s == LT_PLAN_WALK_NEED_FACT && missing && strcmp(missing, "memory_gb") == 0,
          "unreadable memory: the walk names memory_gb instead of guessing");
    cJSON_Delete(path);
    cJSON_AddStringToObject(facts, "memory_gb", "lots");
    s = lt_plan_tree_walk(t, ans, facts, &path, &leaf, &missing, err, 512);
    CHECK(s == LT_PLAN_WALK_BAD && strstr(err, "memory_gb") && strstr(err, "a number"),
          "a fact of the wrong type is refused, not sent down the else branch: %s", err);
    cJSON_Delete(path);
    cJSON_DeleteItemFromObject(facts, "memory_gb");
    cJSON_ReplaceItemInObject(ans, "need", cJSON_CreateString("everything"));
    s = lt_plan_tree_walk(t, ans, facts, &path, &leaf, &missing, err, 512);
    CHECK(s == LT_PLAN_WALK_BAD && strstr(err, "need") && strstr(err, "knowledge"),
          "a bad answer names the question and the choices: %s", err);
    cJSON_Delete(path);
    cJSON_Delete(ans);
    cJSON_Delete(facts);
    const char *vals[32], *labels[32];
    int n = 0;
    const char *q = lt_plan_tree_question(t, "need", vals, labels, 32, &n);
    CHECK(q && n == 9, "need has 9 choices (%d)", n);
    CHECK(lt_plan_tree_default(t, "need") == NULL, "need has no default: it is always asked");
    const char *d = lt_plan_tree_default(t, "concern_forgetting");
    CHECK(d && strcmp(d, "yes") == 0, "forgetting defaults to the cautious answer");
    lt_plan_tree_free(t);
}

typedef struct bad_tree {
    const char *json, *want;
} bad_tree;

static void test_bad_trees(void)
{
    static const bad_tree bad[] = {
        {"{\"start\":\"a\",\"nodes\":{\"a\":{\"ask\":\"x\",\"question\":\"?\",\"choices\":["
         "{\"value\":\"1\",\"label\":\"l\",\"next\":\"a\",\"why\":\"w\"},"
         "{\"value\":\"2\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"}]},"
         "\"z\":{\"method\":\"m\",\"rationale\":\"r\"}}}",
         "cycle"},
        {"{\"start\":\"a\",\"nodes\":{\"a\":{\"ask\":\"x\",\"question\":\"?\",\"choices\":["
         "{\"value\":\"1\",\"label\":\"l\",\"next\":\"q\",\"why\":\"w\"},"
         "{\"value\":\"2\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"}]},"
         "\"z\":{\"method\":\"m\",\"rationale\":\"r\"}}}",
         "$.nodes.a.choices[0].next"},
        {"{\"start\":\"a\",\"nodes\":{\"a\":{\"fact\":\"x\",\"question\":\"?\",\"branches\":["
         "{\"lt\":1,\"next\":\"z\",\"why\":\"w\"},{\"lt\":2,\"next\":\"z\",\"why\":\"w\"}]},"
         "\"z\":{\"method\":\"m\",\"rationale\":\"r\"}}}",
         "$.nodes.a.branches[1]"},
        {"{\"start\":\"a\",\"nodes\":{\"a\":{\"ask\":\"x\",\"question\":\"?\",\"choices\":["
         "{\"value\":\"1\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"},"
         "{\"value\":\"1\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"}]},"
         "\"z\":{\"method\":\"m\",\"rationale\":\"r\"}}}",
         "appears twice"},
        {"{\"start\":\"a\",\"nodes\":{\"a\":{\"ask\":\"x\",\"question\":\"?\",\"choices\":["
         "{\"value\":\"1\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"},"
         "{\"value\":\"2\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"}]},"
         "\"z\":{\"method\":\"m\",\"rationale\":\"r\"},\"o\":{\"method\":\"m\",\"rationale\":\"r\"}}}",
         "$.nodes.o: not reachable"},
        {"{\"start\":\"a\",\"nodes\":{\"a\":{\"method\":\"m\"}}}", "$.nodes.a.rationale"},
        {"{\"start\":\"a\",\"nodes\":{\"a\":{\"ask\":\"x\",\"question\":\"?\",\"default\":\"3\","
         "\"choices\":[{\"value\":\"1\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"},"
         "{\"value\":\"2\",\"label\":\"l\",\"next\":\"z\",\"why\":\"w\"}]},"
         "\"z\":{\"method\":\"m\",\"rationale\":\"r\"}}}",
         "$.nodes.a.default"},
        {"{\"start\":\"b\",\"nodes\":{\"a\":{\"method\":\"m\",\"rationale\":\"r\"}}}", "$.start"},
        {"[1,2", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[512] = "";
        lt_plan_tree *t = lt_plan_tree_parse(bad[i].json, strlen(bad[i].json), "t.json", err,
                                             sizeof(err));
        CHECK(!t && strstr(err, bad[i].want) && strstr(err, "t.json"),
              "bad tree %zu: want \"%s\" in \"%s\"", i, bad[i].want, err);
        lt_plan_tree_free(t);
    }
}

/* A plan for the tiny Llama shape: the config passes train_config's parser. */
static void test_plan_config_valid(void)
{
    char err[512] = "";
    lt_plan_tree *t = lt_plan_tree_builtin(err, sizeof(err));
    if (!t)
        return;
    lt_model_config cfg = {0};
    cfg.arch = LT_ARCH_LLAMA;
    cfg.dim = 256, cfg.n_layers = 4, cfg.n_heads = 4, cfg.n_kv_heads = 4, cfg.head_dim = 64;
    cfg.ffn = 688, cfg.vocab = 4096, cfg.max_pos = 512;
    /* answers, method, objective, and fit facts given (the rest derived) */
    static const char *const leafs[][4] = {
        {"{\"need\":\"new_task\",\"concern_forgetting\":\"no\"}", "full", "sft", ""},
        {"{\"need\":\"style\",\"concern_forgetting\":\"yes\"}", "lora", "sft", ""},
        {"{\"need\":\"vocabulary\"}", "full", "pretrain", ""},
        {"{\"need\":\"style\",\"concern_forgetting\":\"yes\"}", "qlora", "sft",
         ",\"lora_fits\":false,\"lora_ckpt_fits\":false,\"qlora_fits\":false"},
    };
    for (int k = 0; k < 4; k++) {
        cJSON *ans = cJSON_Parse(leafs[k][0]);
        char fj[1024];
        snprintf(fj, sizeof fj,
                 "{\"n_examples\":50000,\"val_rows\":500,\"device\":\"gpu\",\"memory_gb\":80,"
                 "\"raw_text\":true,\"weight_bytes\":4,\"model_dir\":\"/m\",\"dataset\":\"d\","
                 "\"lengths\":{\"unit\":\"tokens\",\"p95\":300,\"mean\":150},"
                 "\"train_gflops\":100%s}",
                 leafs[k][3]);
        cJSON *facts = cJSON_Parse(fj);
        lt_plan_opts po = {0, 16, 0, NULL};
        lt_plan_derive(facts, &cfg, &po);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(facts, "full_fits")),
              "a tiny model fits 80 GB fully");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(facts, "qlora_ckpt_fits")),
              "every fit fact is derived");
        void *path = NULL, *rec = NULL;
        const char *leaf = NULL, *missing = NULL;
        lt_plan_walk_status s = lt_plan_tree_walk(t, ans, facts, &path, &leaf, &missing, err, 512);
        CHECK(s == LT_PLAN_WALK_LEAF, "walk %d reaches a leaf (%d %s)", k, (int)s,
              missing ? missing : "");
        bool ok = s == LT_PLAN_WALK_LEAF &&
                  lt_plan_build(t, leaf, ans, facts, path, &cfg, &po, &rec, err, sizeof(err));
        CHECK(ok, "build %d: %s", k, err);
        const cJSON *c = ok ? cJSON_GetObjectItemCaseSensitive(rec, "config") : NULL;
        char *text = c ? cJSON_PrintUnformatted(c) : NULL;
        lt_train_config tc;
        lt_train_config_defaults(&tc);
        bool parsed = text && lt_train_config_parse(text, strlen(text), "plan", NULL, &tc, err,
                                                    sizeof(err));
        CHECK(parsed, "config %d parses: %s (%s)", k, err, text ? text : "");
        if (parsed) {
            CHECK(strcmp(lt_train_config_method_name(&tc), leafs[k][1]) == 0,
                  "config %d method %s", k, lt_train_config_method_name(&tc));
            bool ckpt = lt_plan_leaf_checkpointing(t, leaf);
            CHECK(tc.grad_ckpt == (ckpt ? LT_GRAD_CKPT_ON : LT_GRAD_CKPT_AUTO),
                  "config %d: gradient_checkpointing %d as the leaf %s says", k,
                  (int)tc.grad_ckpt, leaf);
            CHECK(k != 3 || (ckpt && tc.qlora && tc.qlora_double_quant),
                  "QLoRA with checkpointing when only that fits: leaf %s", leaf);
            CHECK(strcmp(lt_objective_name(tc.objective), leafs[k][2]) == 0,
                  "config %d objective %s", k, lt_objective_name(tc.objective));
            CHECK(tc.seq_len == 320 && tc.batch_size * tc.grad_accum >= 16,
                  "config %d: seq %lld from p95, batch %lld x %lld", k, (long long)tc.seq_len,
                  (long long)tc.batch_size, (long long)tc.grad_accum);
            lt_train_config_free(&tc);
        }
        const cJSON *tm = rec ? cJSON_GetObjectItemCaseSensitive(rec, "time") : NULL;
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tm, "seconds_per_epoch")),
              "plan %d has a time per epoch", k);
        free(text);
        cJSON_Delete(rec);
        cJSON_Delete(path);
        cJSON_Delete(ans);
        cJSON_Delete(facts);
    }
    lt_plan_tree_free(t);
}

int main(void)
{
    test_every_leaf_and_arm();
    test_walk_stops();
    test_bad_trees();
    test_plan_config_valid();
    return test_summary();
}
