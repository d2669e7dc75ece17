/*
 * cmd_runs.c - `lathe runs`: list training runs, show one (config, status, metrics summary,
 * best validation loss, checkpoints, events), and post control requests (stop, pause,
 * resume, checkpoint) that a running trainer picks up between steps.
 *
 * Reads and writes only through store functions; strings from configs and events are
 * printed sanitized.
 */
#include "cli.h"

#include "store.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help =
    "usage: lathe runs [--json]                 list training runs\n"
    "       lathe runs show RUN [--json]        config, status, metrics, checkpoints, events\n"
    "       lathe runs stop|pause|resume|checkpoint RUN\n"
    "                                           ask a running trainer (it acknowledges in the\n"
    "                                           store between steps)\n"
    "  --workspace DIR\n";

static void fmt_time(int64_t t, char *out, size_t n)
{
    if (t <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M", &tm);
}

static void add_str(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *run_json(lt_store *st, const lt_store_run *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    add_str(o, "status", r->status);
    add_str(o, "method", r->method);
    add_str(o, "model", r->model_path);
    add_str(o, "model_hash", r->model_hash);
    cJSON_AddNumberToObject(o, "dataset_version_id", (double)r->dataset_version_id);
    add_str(o, "dataset_hash", r->dataset_hash);
    add_str(o, "device", r->device);
    cJSON_AddNumberToObject(o, "pid", (double)r->pid);
    add_str(o, "message", r->message);
    cJSON_AddNumberToObject(o, "created_at", (double)r->created_at);
    cJSON_AddNumberToObject(o, "started_at", (double)r->started_at);
    cJSON_AddNumberToObject(o, "ended_at", (double)r->ended_at);
    int64_t n, ls, ms;
    double last, min;
    if (lt_store_metric_summary(st, r->id, "loss", &n, &last, &ls, &min, &ms) == LT_STORE_OK) {
        cJSON_AddNumberToObject(o, "steps", (double)ls);
        cJSON_AddNumberToObject(o, "loss", last);
        cJSON_AddNumberToObject(o, "min_loss", min);
    }
    if (lt_store_metric_summary(st, r->id, "val_loss", &n, &last, &ls, &min, &ms) ==
        LT_STORE_OK) {
        cJSON_AddNumberToObject(o, "val_loss", last);
        cJSON_AddNumberToObject(o, "best_val_loss", min);
        cJSON_AddNumberToObject(o, "best_val_step", (double)ms);
    }
    return o;
}

static int runs_list(lt_store *st, bool json)
{
    lt_store_iter *it = NULL;
    if (lt_store_runs_iter(st, &it) != LT_STORE_OK)
        return lt_cli_fail("runs", LT_EXIT_FAIL, "cannot list runs: %s", lt_store_errmsg(st));
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!json)
        printf("%-5s %-8s %-7s %7s %9s %9s  %-16s %s\n", "ID", "STATUS", "METHOD", "STEPS",
               "LOSS", "BEST_VAL", "STARTED", "MODEL");
    lt_store_run r;
    while (lt_store_runs_next(it, &r) == LT_STORE_OK) {
        cJSON *o = run_json(st, &r);
        if (json) {
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        char when[32], loss[32] = "-", best[32] = "-", steps[32] = "-";
        fmt_time(r.started_at, when, sizeof(when));
        cJSON *x;
        if ((x = cJSON_GetObjectItem(o, "loss")))
            snprintf(loss, sizeof(loss), "%.4f", x->valuedouble);
        if ((x = cJSON_GetObjectItem(o, "best_val_loss")))
            snprintf(best, sizeof(best), "%.4f", x->valuedouble);
        if ((x = cJSON_GetObjectItem(o, "steps")))
            snprintf(steps, sizeof(steps), "%.0f", x->valuedouble);
        printf("%-5lld %-8s %-7s %7s %9s %9s  %-16s ", (long long)r.id,
               r.status ? r.status : "?", r.method ? r.method : "?", steps, loss, best, when);
        lt_cli_print_sanitized(stdout, r.model_path ? r.model_path : "", false);
        putchar('\n');
        cJSON_Delete(o);
    }
    lt_store_iter_free(it);
    if (json) {
        char *s = cJSON_Print(arr);
        puts(s ? s : "[]");
        free(s);
        cJSON_Delete(arr);
    }
    return LT_EXIT_OK;
}

static int runs_show(lt_store *st, const char *id, bool json)
{
    int64_t run_id;
    if (lt_store_run_find(st, id, &run_id) != LT_STORE_OK)
        return lt_cli_fail("runs show", LT_EXIT_FAIL, "no run '%s'", id);
    lt_store_iter *it = NULL;
    lt_store_run r;
    if (lt_store_run_get(st, run_id, &it, &r) != LT_STORE_OK)
        return lt_cli_fail("runs show", LT_EXIT_FAIL, "cannot read run %s", id);
    cJSON *o = run_json(st, &r);
    cJSON *cfg = cJSON_Parse(r.config ? r.config : "{}");
    cJSON_AddItemToObject(o, "config", cfg ? cfg : cJSON_CreateNull());
    lt_store_iter_free(it);
    cJSON *ck = cJSON_AddArrayToObject(o, "checkpoints");
    lt_store_checkpoint c;
    if (lt_store_checkpoints_iter(st, run_id, &it) == LT_STORE_OK) {
        while (lt_store_checkpoints_next(it, &c) == LT_STORE_OK) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "step", (double)c.step);
            add_str(x, "kind", c.kind);
            add_str(x, "path", c.path);
            if (!isnan(c.loss))
                cJSON_AddNumberToObject(x, "val_loss", c.loss);
            cJSON_AddItemToArray(ck, x);
        }
        lt_store_iter_free(it);
    }
    cJSON *ev = cJSON_AddArrayToObject(o, "events");
    lt_store_run_event e;
    if (lt_store_run_events_iter(st, run_id, &it) == LT_STORE_OK) {
        while (lt_store_run_events_next(it, &e) == LT_STORE_OK) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "step", (double)e.step);
            add_str(x, "kind", e.kind);
            add_str(x, "message", e.message);
            cJSON_AddItemToArray(ev, x);
        }
        lt_store_iter_free(it);
    }
    if (json) {
        char *s = cJSON_Print(o);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(o);
        return LT_EXIT_OK;
    }
    cJSON *x;
    printf("run %lld  %s", (long long)run_id, cJSON_GetObjectItem(o, "status")->valuestring
                                                  ? cJSON_GetObjectItem(o, "status")->valuestring
                                                  : "?");
    if ((x = cJSON_GetObjectItem(o, "message")) && cJSON_IsString(x) && x->valuestring[0]) {
        printf(": ");
        lt_cli_print_sanitized(stdout, x->valuestring, false);
    }
    printf("\n");
    const char *keys[] = {"method", "model", "device", "model_hash", "dataset_hash"};
    for (int i = 0; i < 5; i++)
        if ((x = cJSON_GetObjectItem(o, keys[i])) && cJSON_IsString(x)) {
            printf("  %-14s ", keys[i]);
            lt_cli_print_sanitized(stdout, x->valuestring, false);
            putchar('\n');
        }
    if ((x = cJSON_GetObjectItem(o, "steps")))
        printf("  %-14s %.0f\n", "steps", x->valuedouble);
    if ((x = cJSON_GetObjectItem(o, "loss")))
        printf("  %-14s %.4f (min %.4f)\n", "loss", x->valuedouble,
               cJSON_GetObjectItem(o, "min_loss")->valuedouble);
    if ((x = cJSON_GetObjectItem(o, "best_val_loss")))
        printf("  %-14s %.4f at step %.0f (ppl %.3f)\n", "best val loss", x->valuedouble,
               cJSON_GetObjectItem(o, "best_val_step")->valuedouble, exp(x->valuedouble));
    printf("  checkpoints\n");
    cJSON_ArrayForEach(x, ck)
    {
        printf("    step %-6.0f %-5s ", cJSON_GetObjectItem(x, "step")->valuedouble,
               cJSON_GetObjectItem(x, "kind")->valuestring ? cJSON_GetObjectItem(x, "kind")
                                                                 ->valuestring
                                                           : "");
        cJSON *vl = cJSON_GetObjectItem(x, "val_loss");
        if (vl)
            printf("val_loss %.4f ", vl->valuedouble);
        lt_cli_print_sanitized(stdout, cJSON_GetObjectItem(x, "path")->valuestring, false);
        putchar('\n');
    }
    printf("  events\n");
    cJSON_ArrayForEach(x, ev)
    {
        printf("    step %-6.0f %-8s ", cJSON_GetObjectItem(x, "step")->valuedouble,
               cJSON_GetObjectItem(x, "kind")->valuestring);
        lt_cli_print_sanitized(stdout, cJSON_GetObjectItem(x, "message")->valuestring, false);
        putchar('\n');
    }
    printf("  config\n    ");
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "config"));
    lt_cli_print_sanitized(stdout, s ? s : "", false);
    putchar('\n');
    free(s);
    cJSON_Delete(o);
    return LT_EXIT_OK;
}

int lt_cmd_runs(int argc, char **argv)
{
    lt_cli_common cc;
    lt_cli_common_defaults(&cc);
    const char *pos[3] = {0};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        int r = lt_cli_common_parse(&cc, argc, argv, &i);
        if (r < 0)
            return LT_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return LT_EXIT_OK;
        }
        if (argv[i][0] == '-' || npos == 2)
            return lt_cli_fail("runs", LT_EXIT_USAGE, "unexpected argument '%s' (see --help)",
                               argv[i]);
        pos[npos++] = argv[i];
    }
    const char *sub = pos[0];
    bool control = sub && (strcmp(sub, "stop") == 0 || strcmp(sub, "pause") == 0 ||
                           strcmp(sub, "resume") == 0 || strcmp(sub, "checkpoint") == 0);
    if (sub && strcmp(sub, "show") != 0 && !control)
        return lt_cli_fail("runs", LT_EXIT_USAGE, "unknown subcommand '%s' (see --help)", sub);
    if (sub && npos != 2)
        return lt_cli_fail("runs", LT_EXIT_USAGE, "%s needs a run id (see --help)", sub);
    char err[1024];
    lt_store *st = NULL;
    if (lt_store_open(cc.workspace, &st, err, sizeof(err)) != LT_STORE_OK)
        return lt_cli_fail("runs", LT_EXIT_FAIL, "%s", err);
    int rc;
    if (!sub) {
        rc = runs_list(st, cc.json);
    } else if (!control) {
        rc = runs_show(st, pos[1], cc.json);
    } else {
        int64_t run_id, id;
        char ended[1200] = "";
        if (lt_store_run_find(st, pos[1], &run_id) == LT_STORE_OK) {
            /* a request only means something to a run that is there to read it */
            lt_store_iter *it = NULL;
            lt_store_run run;
            if (lt_store_run_get(st, run_id, &it, &run) == LT_STORE_OK && run.status &&
                strcmp(run.status, "running") != 0 && strcmp(run.status, "paused") != 0 &&
                strcmp(run.status, "queued") != 0)
                snprintf(ended, sizeof(ended),
                         "run %lld is %s%s%.900s%s; no process is there to read a %s request",
                         (long long)run_id, run.status, run.message ? " (" : "",
                         run.message ? run.message : "", run.message ? ")" : "", sub);
            lt_store_iter_free(it);
        }
        if (lt_store_run_find(st, pos[1], &run_id) != LT_STORE_OK)
            rc = lt_cli_fail("runs", LT_EXIT_FAIL, "no run '%s'", pos[1]);
        else if (ended[0])
            rc = lt_cli_fail("runs", LT_EXIT_FAIL, "%s", ended);
        else if (lt_store_control_post(st, run_id, sub, &id) != LT_STORE_OK)
            rc = lt_cli_fail("runs", LT_EXIT_FAIL, "cannot post the request: %s",
                             lt_store_errmsg(st));
        else {
            printf("%s requested for run %lld (request %lld)\n", sub, (long long)run_id,
                   (long long)id);
            rc = LT_EXIT_OK;
        }
    }
    lt_store_close(st);
    return rc;
}
