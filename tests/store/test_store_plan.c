/*
 * test_store_plan.c - the plans table's statements: a plan is saved with its record and
 * config and read back by id, plans iterate newest first, a plan without a run keeps "null"
 * as its config, a plan can name a dataset version, and an unknown id is NOT_FOUND.
 */
#include "store.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char dir[256], err[512] = "";
    snprintf(dir, sizeof(dir), "/tmp/lathe_test_store_plan_%ld", (long)getpid());
    lt_store *st = NULL;
    lt_store_status s = lt_store_open(dir, &st, err, sizeof(err));
    CHECK(s == LT_STORE_OK, "open: %s", err);
    if (s != LT_STORE_OK)
        return test_summary();

    int64_t ds = 0, ver_id = 0, a = 0, b = 0;
    int ver = 0;
    CHECK(lt_store_dataset_create(st, "d", &ds) == LT_STORE_OK, "dataset");
    CHECK(lt_store_version_create(st, ds, 0, "import", "{}", &ver_id, &ver) == LT_STORE_OK,
          "version");
    CHECK(lt_store_version_finish(st, ver_id, "alpaca", 0, 0) == LT_STORE_OK, "finish");

    s = lt_store_plan_add(st, ver_id, "{\"leaf\":\"leaf_lora\"}", "{\"method\":\"lora\"}", &a);
    CHECK(s == LT_STORE_OK && a > 0, "plan with a config saved (%d)", (int)s);
    s = lt_store_plan_add(st, 0, "{\"leaf\":\"leaf_rag\"}", NULL, &b);
    CHECK(s == LT_STORE_OK && b > a, "plan without a run saved (%d)", (int)s);

    lt_store_iter *it = NULL;
    lt_store_plan p;
    s = lt_store_plan_get(st, a, &it, &p);
    CHECK(s == LT_STORE_OK && p.id == a && p.dataset_version_id == ver_id &&
              strstr(p.record, "leaf_lora") && strcmp(p.config, "{\"method\":\"lora\"}") == 0,
          "plan read back with its record, config and dataset version");
    lt_store_iter_free(it);
    s = lt_store_plan_get(st, b, &it, &p);
    CHECK(s == LT_STORE_OK && strcmp(p.config, "null") == 0 && p.dataset_version_id == 0 &&
              p.created_at > 0,
          "a plan with no run keeps null as its config");
    lt_store_iter_free(it);
    s = lt_store_plan_get(st, b + 100, &it, &p);
    CHECK(s == LT_STORE_NOT_FOUND && it == NULL, "unknown plan id is NOT_FOUND (%d)", (int)s);

    int n = 0;
    int64_t first = 0;
    CHECK(lt_store_plans_iter(st, &it) == LT_STORE_OK, "iterate");
    while ((s = lt_store_plans_next(it, &p)) == LT_STORE_OK) {
        if (n++ == 0)
            first = p.id;
    }
    lt_store_iter_free(it);
    CHECK(s == LT_STORE_DONE && n == 2 && first == b, "two plans, newest first (%d, %lld)", n,
          (long long)first);

    lt_store_close(st);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
