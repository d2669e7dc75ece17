/*
 * test_store_eval.c - evaluation rows: an eval is added with its results and read back, its
 * results can be replaced, evals list newest first and by run, samples come back in the
 * order they were added with their scores, and unknown ids are NOT_FOUND.
 */
#include "store.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char dir[] = "/tmp/lathe-store-eval-XXXXXX", err[256];
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    lt_store *st = NULL;
    CHECK(lt_store_open(dir, &st, err, sizeof(err)) == LT_STORE_OK, "open: %s", err);
    if (!st)
        return test_summary();

    lt_store_eval e = {.split = "test", .results = "{\"system\":\"base\"}"};
    int64_t a = 0, b = 0;
    CHECK(lt_store_eval_add(st, &e, &a) == LT_STORE_OK && a > 0, "add first eval");
    lt_store_run r = {.config = "{}", .method = "lora"};
    int64_t run = 0;
    CHECK(lt_store_run_create(st, &r, &run) == LT_STORE_OK, "run");
    e.run_id = run;
    e.results = "{\"system\":\"run\"}";
    CHECK(lt_store_eval_add(st, &e, &b) == LT_STORE_OK && b > a, "add second eval");

    lt_store_iter *it = NULL;
    lt_store_eval g;
    CHECK(lt_store_eval_get(st, a, &it, &g) == LT_STORE_OK && !strcmp(g.split, "test") &&
              !strcmp(g.results, "{\"system\":\"base\"}") && g.run_id == 0 && g.created_at > 0,
          "get back");
    lt_store_iter_free(it);
    CHECK(lt_store_eval_get(st, 999, &it, &g) == LT_STORE_NOT_FOUND && it == NULL,
          "unknown eval");
    CHECK(lt_store_eval_set_results(st, a, "{\"x\":1}") == LT_STORE_OK, "set results");
    CHECK(lt_store_eval_set_results(st, 999, "{}") == LT_STORE_NOT_FOUND, "set on unknown");
    CHECK(lt_store_eval_get(st, a, &it, &g) == LT_STORE_OK && !strcmp(g.results, "{\"x\":1}"),
          "results replaced");
    lt_store_iter_free(it);

    int n = 0;
    int64_t first = 0;
    CHECK(lt_store_evals_iter(st, 0, &it) == LT_STORE_OK, "iter all");
    while (lt_store_evals_next(it, &g) == LT_STORE_OK)
        first = n++ ? first : g.id;
    lt_store_iter_free(it);
    CHECK(n == 2 && first == b, "two evals, newest first");
    n = 0;
    CHECK(lt_store_evals_iter(st, run, &it) == LT_STORE_OK, "iter by run");
    while (lt_store_evals_next(it, &g) == LT_STORE_OK)
        n++;
    lt_store_iter_free(it);
    CHECK(n == 1, "one eval of the run");

    lt_store_eval_sample s1 = {0, "p1", "r1", "o1", "{\"em\":1}"};
    lt_store_eval_sample s2 = {7, "p2", NULL, "o2", "{\"em\":0}"};
    CHECK(lt_store_eval_sample_add(st, a, &s1) == LT_STORE_OK &&
              lt_store_eval_sample_add(st, a, &s2) == LT_STORE_OK,
          "samples added");
    lt_store_eval_sample s;
    CHECK(lt_store_eval_samples_iter(st, a, &it) == LT_STORE_OK, "samples iter");
    CHECK(lt_store_eval_samples_next(it, &s) == LT_STORE_OK && !strcmp(s.prompt, "p1") &&
              !strcmp(s.scores, "{\"em\":1}") && s.sample_id == 0,
          "first sample");
    CHECK(lt_store_eval_samples_next(it, &s) == LT_STORE_OK && s.sample_id == 7 &&
              s.reference == NULL,
          "second sample");
    CHECK(lt_store_eval_samples_next(it, &s) == LT_STORE_DONE, "two samples");
    lt_store_iter_free(it);

    lt_store_close(st);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return test_summary();
}
