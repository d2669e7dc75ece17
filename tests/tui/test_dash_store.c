/*
 * test_dash_store.c - the store queries the dashboard polls (store_tui.c): data_version moves
 * when another connection commits, metric polls return only rows after the last seen step,
 * active runs are counted, dataset versions are labelled, dedup pairs come back.
 *
 * Also the fixture writer for the tmux tests: `test_dash_store --make-runs WORKSPACE` writes,
 * through store functions only, a finished run with 3000 steps of metrics (a loss spike at
 * step 1500, validation every 100 steps) and a run marked running whose process is gone,
 * with a train.log, and two evaluations with samples (one output holding an escape
 * sequence). The dashboard test drives the real binary over that workspace.
 */
#include "store.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int64_t make_run(lt_store *st, const char *name, const char *status, int64_t pid,
                        int n_steps, double lr)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"method\":\"lora\",\"lr\":%g,\"max_steps\":%d,\"epochs\":1}", lr,
             n_steps);
    lt_store_run r = {.name = name, .config = cfg, .method = "lora",
                      .model_path = "tests/data/models/gpt2", .device = "cpu"};
    int64_t id = 0;
    if (lt_store_run_create(st, &r, &id) != LT_STORE_OK)
        return 0;
    lt_store_run_set_status(st, id, "running", NULL, pid);
    lt_store_metric m[64];
    int n = 0;
    for (int s = 1; s <= n_steps; s++) {
        double t = 1700000000.0 + s;
        double loss = 2.5 * exp(-s / 800.0) + 0.5;
        if (s == n_steps / 2)
            loss = 9.75; /* a spike the plot must keep */
        m[n++] = (lt_store_metric){s, "loss", loss, t};
        m[n++] = (lt_store_metric){s, "lr", lr, t};
        m[n++] = (lt_store_metric){s, "grad_norm", 1.0 + 0.1 * sin(s), t};
        if (s % 100 == 0)
            m[n++] = (lt_store_metric){s, "val_loss", 2.5 * exp(-s / 900.0) + 0.6, t};
        if (n > 60) {
            lt_store_metrics_put(st, id, m, n);
            n = 0;
        }
    }
    if (n)
        lt_store_metrics_put(st, id, m, n);
    if (strcmp(status, "running") != 0)
        lt_store_run_set_status(st, id, status, "finished", 0);
    return id;
}

static int make_runs(const char *ws)
{
    char err[256];
    lt_store *st = NULL;
    if (lt_store_open(ws, &st, err, sizeof err) != LT_STORE_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int64_t a = make_run(st, "fixture-done", "done", 0, 3000, 2e-4);
    /* a pid no process can have: the dashboard must show it failed, with its log */
    int64_t b = make_run(st, "fixture-dead", "running", 999999999, 40, 1e-4);
    lt_store_run_event_add(st, a, 1500, "nan", "step 1500: loss spiked");
    char path[4096];
    snprintf(path, sizeof path, "%s/runs", ws);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/runs/%lld", ws, (long long)b);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/runs/%lld/train.log", ws, (long long)b);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "step 39 loss 1.2\nstep 40 loss 1.1\nout of memory: killed\n");
        fclose(f);
    }
    const char *res[2] = {
        "{\"system\":\"base\",\"dataset\":\"escapes\",\"dataset_version\":2,\"n_rows\":2,"
        "\"metrics\":{\"loss\":2.5,\"ppl\":12.18,\"exact_match\":0.0,\"rougeL\":0.21,"
        "\"bleu\":3.5,\"accuracy\":null}}",
        "{\"system\":\"fixture-done\",\"run\":1,\"dataset\":\"escapes\",\"dataset_version\":2,"
        "\"n_rows\":2,\"metrics\":{\"loss\":0.75,\"ppl\":2.117,\"exact_match\":0.5,"
        "\"rougeL\":0.66,\"bleu\":41.2}}"};
    for (int k = 0; k < 2; k++) {
        lt_store_eval e = {.run_id = k ? a : 0, .split = "test", .results = res[k]};
        int64_t eid = 0;
        if (lt_store_eval_add(st, &e, &eid) != LT_STORE_OK)
            return 1;
        lt_store_eval_sample s1 = {0, "What is two plus two?", "four", k ? "four" : "five", "{}"};
        lt_store_eval_sample s2 = {0, "Say hi", "hi there",
                                   k ? "hi there" : "hi \x1b[2Jthere \xc2\x9b" "0m", "{}"};
        lt_store_eval_sample_add(st, eid, &s1);
        lt_store_eval_sample_add(st, eid, &s2);
    }
    lt_store_close(st);
    printf("%lld %lld\n", (long long)a, (long long)b);
    return a && b ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--make-runs") == 0)
        return make_runs(argv[2]);

    char ws[] = "/tmp/lathe_dash_store_XXXXXX";
    CHECK(mkdtemp(ws) != NULL, "mkdtemp");
    char err[256];
    lt_store *a = NULL, *b = NULL;
    CHECK(lt_store_open(ws, &a, err, sizeof err) == LT_STORE_OK, "open a: %s", err);
    CHECK(lt_store_open(ws, &b, err, sizeof err) == LT_STORE_OK, "open b: %s", err);
    if (!a || !b)
        return test_summary();

    int64_t v0 = -1, v1 = -1, v2 = -1;
    CHECK(lt_store_data_version(a, &v0) == LT_STORE_OK, "data_version");
    int64_t run = make_run(b, "r1", "running", getpid(), 50, 1e-3);
    CHECK(run > 0, "run created");
    CHECK(lt_store_data_version(a, &v1) == LT_STORE_OK && v1 != v0,
          "data_version moves after another connection commits (%lld -> %lld)", (long long)v0,
          (long long)v1);
    CHECK(lt_store_data_version(a, &v2) == LT_STORE_OK && v2 == v1,
          "data_version stays when nothing happened");

    lt_store_iter *it = NULL;
    lt_store_metric m;
    int n = 0;
    int64_t first = -1;
    CHECK(lt_store_metrics_iter_after(a, run, "loss", 40, &it) == LT_STORE_OK, "iter after");
    while (it && lt_store_metrics_next(it, &m) == LT_STORE_OK) {
        if (first < 0)
            first = m.step;
        n++;
    }
    lt_store_iter_free(it);
    CHECK(n == 10 && first == 41, "only steps after 40: got %d rows from %lld", n,
          (long long)first);
    CHECK(lt_store_metrics_iter_after(a, run, "val_loss", 0, &it) == LT_STORE_OK, "iter val");
    n = 0;
    while (it && lt_store_metrics_next(it, &m) == LT_STORE_OK)
        n++;
    lt_store_iter_free(it);
    CHECK(n == 0, "no val_loss rows in 50 steps (got %d)", n);

    int64_t active = -1;
    CHECK(lt_store_runs_count_active(a, &active) == LT_STORE_OK && active == 1,
          "one active run (got %lld)", (long long)active);
    lt_store_run_set_status(b, run, "done", NULL, 0);
    CHECK(lt_store_runs_count_active(a, &active) == LT_STORE_OK && active == 0,
          "no active run after done (got %lld)", (long long)active);

    char label[64];
    CHECK(lt_store_version_label(a, 12345, label, sizeof label) == LT_STORE_NOT_FOUND,
          "unknown version not found");
    int64_t ds = 0, vid = 0;
    int ver = 0;
    CHECK(lt_store_dataset_create(b, "tiny", &ds) == LT_STORE_OK, "dataset");
    CHECK(lt_store_version_create(b, ds, 0, "import", "{}", &vid, &ver) == LT_STORE_OK, "ver");
    CHECK(lt_store_version_finish(b, vid, "alpaca", 0, 0) == LT_STORE_OK, "finish");
    CHECK(lt_store_version_label(a, vid, label, sizeof label) == LT_STORE_OK &&
              strcmp(label, "tiny v1") == 0,
          "label '%s'", label);
    CHECK(lt_store_dedup_removal_add(b, vid, 7, 1, 3, 0.91, "near") == LT_STORE_OK, "removal");
    lt_store_dedup_pair p;
    CHECK(lt_store_dedup_pairs_iter(a, ds, 1, &it) == LT_STORE_OK, "pairs iter");
    lt_store_status s = it ? lt_store_dedup_pairs_next(it, &p) : LT_STORE_SQL;
    CHECK(s == LT_STORE_OK && p.removed_sample_id == 7 && p.kept_sample_id == 3 &&
              fabs(p.similarity - 0.91) < 1e-9 && strcmp(p.kind, "near") == 0,
          "the pair comes back");
    CHECK(it && lt_store_dedup_pairs_next(it, &p) == LT_STORE_DONE, "one pair only");
    lt_store_iter_free(it);

    lt_store_close(a);
    lt_store_close(b);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ws);
    CHECK(system(cmd) == 0, "cleanup");
    return test_summary();
}
