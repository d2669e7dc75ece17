/*
 * test_dash_widgets.c - the dashboard's parts that need no terminal: background jobs (this
 * program re-executed as the child through /proc/self/exe, writing its progress file, then
 * succeeding or failing), the progress-file and "N/M rows" parsers, Tab completion of names and
 * paths, the form's keys and number checks, and the mouse on a list (click a row, wheel).
 */
#include "dash.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The child: "lathe job-ok GO_FILE --progress-file P" or "lathe job-fail". */
static int child(int argc, char **argv)
{
    if (strcmp(argv[1], "job-fail") == 0) {
        fprintf(stderr, "working\nlathe data dedup: no dataset 'nope'\n");
        return 1;
    }
    const char *go = argv[2], *prog = argc > 4 ? argv[4] : NULL;
    if (prog) {
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp", prog);
        FILE *f = fopen(tmp, "w");
        if (!f)
            return 2;
        fprintf(f, "0.5000 importing rows.jsonl: 1.0 / 2.0 MB, 10 rows\n");
        fclose(f);
        rename(tmp, prog);
    }
    for (int i = 0; i < 2000 && access(go, F_OK) != 0; i++)
        usleep(10000);
    printf("imported rows version 1: 20 rows\nsee the reasons with: lathe data issues rows\n");
    return 0;
}

/* Polls until the job ends (at most ~20 s). */
static void wait_job(lt_dash_job *j)
{
    for (int i = 0; i < 2000 && j->state == LT_JOB_RUNNING; i++) {
        lt_dash_job_poll(j);
        usleep(10000);
    }
}

static void test_jobs(void)
{
    char ws[] = "/tmp/lathe_test_jobs.XXXXXX";
    CHECK(mkdtemp(ws) != NULL, "temp workspace");
    char go[128];
    snprintf(go, sizeof go, "%s/go", ws);
    lt_dash_job j;
    memset(&j, 0, sizeof j);
    char *ok_argv[] = {"lathe", "job-ok", go, NULL};
    CHECK(lt_dash_job_start(&j, ws, "import rows.jsonl", ok_argv, true), "job starts");
    CHECK(j.state == LT_JOB_RUNNING && j.pid > 0, "running with a pid");
    CHECK(!lt_dash_job_start(&j, ws, "again", ok_argv, true), "a second job is refused");
    for (int i = 0; i < 2000 && j.frac < 0; i++) {
        lt_dash_job_poll(&j);
        usleep(10000);
    }
    CHECK(j.frac == 0.5 && j.state == LT_JOB_RUNNING, "progress read while it runs (%g)", j.frac);
    CHECK(strstr(j.note, "10 rows") != NULL, "progress line: %s", j.note);
    FILE *f = fopen(go, "w");
    if (f)
        fclose(f);
    wait_job(&j);
    CHECK(j.state == LT_JOB_DONE, "job done (state %d)", (int)j.state);
    CHECK(j.n_result == 2 && strstr(j.result[0], "imported rows version 1") &&
              strstr(j.result[1], "see the reasons"),
          "result: the last lines of stdout, oldest first (%d)", j.n_result);
    CHECK(j.out && strstr(j.out, "20 rows"), "the whole stdout kept");
    CHECK(access(j.out_path, F_OK) != 0 && access(j.prog_path, F_OK) != 0,
          "the job's files are removed");
    CHECK(!lt_dash_job_poll(&j), "polling a finished job changes nothing");
    lt_dash_job_clear(&j);

    char *fail_argv[] = {"lathe", "job-fail", NULL};
    CHECK(lt_dash_job_start(&j, ws, "dedup nope", fail_argv, false), "failing job starts");
    wait_job(&j);
    CHECK(j.state == LT_JOB_FAILED, "job failed");
    CHECK(j.n_result >= 1 && strstr(j.result[j.n_result - 1], "no dataset 'nope'"),
          "its last stderr line is the result");
    lt_dash_job_clear(&j);
    unlink(go);
    char jobs[128];
    snprintf(jobs, sizeof jobs, "%s/jobs", ws);
    CHECK(rmdir(jobs) == 0, "nothing left in WORKSPACE/jobs");
    rmdir(ws);
}

static void test_parsers(void)
{
    double f = 7;
    char note[160];
    CHECK(lt_dash_job_parse_progress("0.2500 importing x: 1.0 / 4.0 MB\n", &f, note, sizeof note) &&
              f == 0.25 && strcmp(note, "importing x: 1.0 / 4.0 MB") == 0,
          "progress line");
    CHECK(lt_dash_job_parse_progress("-1.0000 splitting chat\n", &f, note, sizeof note) && f < 0 &&
              strcmp(note, "splitting chat") == 0,
          "unknown fraction");
    CHECK(lt_dash_job_parse_progress("3 past the end", &f, note, sizeof note) && f == 1,
          "fraction clamped");
    CHECK(!lt_dash_job_parse_progress("garbage", &f, note, sizeof note), "garbage refused");
    CHECK(!lt_dash_job_parse_progress("", &f, note, sizeof note), "empty refused");
    CHECK(lt_dash_job_parse_rows("base zero-shot: 50/200 rows\nrun 1: 100/200 rows\n", &f, note,
                                 sizeof note) &&
              f == 0.5 && strcmp(note, "run 1: 100/200 rows") == 0,
          "last rows line (%s)", note);
    CHECK(!lt_dash_job_parse_rows("loading the model\n", &f, note, sizeof note), "no rows line");
    CHECK(!lt_dash_job_parse_rows("x: 3/0 rows\n", &f, note, sizeof note), "zero total refused");
}

static void test_complete(void)
{
    const char *const names[] = {"chat", "chatty", "code"};
    char b[64] = "";
    CHECK(lt_dash_complete(b, sizeof b, names, 3) && strcmp(b, "chat") == 0, "empty: first");
    snprintf(b, sizeof b, "ch");
    CHECK(lt_dash_complete(b, sizeof b, names, 3) && strcmp(b, "chat") == 0, "common prefix");
    CHECK(lt_dash_complete(b, sizeof b, names, 3) && strcmp(b, "chatty") == 0, "whole: next");
    CHECK(lt_dash_complete(b, sizeof b, names, 3) && strcmp(b, "code") == 0, "and the next");
    CHECK(lt_dash_complete(b, sizeof b, names, 3) && strcmp(b, "chat") == 0, "wraps around");
    snprintf(b, sizeof b, "chat,co");
    CHECK(lt_dash_complete(b, sizeof b, names, 3) && strcmp(b, "chat,code") == 0,
          "the last of a comma list");
    snprintf(b, sizeof b, "x");
    CHECK(!lt_dash_complete(b, sizeof b, names, 3) && strcmp(b, "x") == 0, "no match: as is");
    char small[6] = "cod";
    CHECK(!lt_dash_complete(small, sizeof small, names, 3) || strlen(small) < sizeof small,
          "never past the buffer");

    char dir[] = "/tmp/lathe_test_complete.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    char p[1024];
    snprintf(p, sizeof p, "%s/alpha.jsonl", dir);
    FILE *f = fopen(p, "w");
    if (f)
        fclose(f);
    snprintf(p, sizeof p, "%s/beta", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/al", dir);
    CHECK(lt_dash_complete_path(p, sizeof p) && strstr(p, "/alpha.jsonl") &&
              p[strlen(p) - 1] == 'l',
          "file completed: %s", p);
    snprintf(p, sizeof p, "%s/b", dir);
    CHECK(lt_dash_complete_path(p, sizeof p) && strstr(p, "/beta/"), "folder gets a slash: %s",
          p);
    snprintf(p, sizeof p, "%s/zz", dir);
    CHECK(!lt_dash_complete_path(p, sizeof p), "nothing matches");
    snprintf(p, sizeof p, "%s/alpha.jsonl", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/beta", dir);
    rmdir(p);
    rmdir(dir);
}

static void test_form(void)
{
    lt_form f;
    lt_form_init(&f, "split", "hint");
    lt_form_add(&f, "val", "val fraction", LT_FIELD_TEXT, "0.05");
    lt_form_add(&f, "seed", "seed", LT_FIELD_TEXT, "");
    CHECK(f.open && f.n == 2 && f.cur == 0, "two fields");
    lt_form_key(&f, 127); /* backspace */
    lt_form_key(&f, '2');
    CHECK(strcmp(lt_form_get(&f, "val"), "0.02") == 0, "typing edits the field");
    lt_form_key(&f, '\t');
    CHECK(f.cur == 1, "Tab moves on from a text field");
    lt_form_key(&f, 'x');
    lt_form_key(&f, KEY_UP);
    CHECK(f.cur == 0, "Up moves back");
    double x = 0;
    CHECK(lt_form_number(&f, "val", 0, 0.99, &x) == 1 && x == 0.02, "number read");
    CHECK(lt_form_number(&f, "seed", 0, 100, &x) == -1 && strstr(f.error, "seed") &&
              f.cur == 1,
          "bad number: the error names the field and it gets the cursor (%s)", f.error);
    lt_form_key(&f, 21); /* Ctrl-U */
    CHECK(lt_form_number(&f, "seed", 0, 100, &x) == 0, "empty: not given");
    CHECK(lt_form_key(&f, '\r') == LT_FORM_SUBMIT, "Enter submits");
    CHECK(lt_form_key(&f, 27) == LT_FORM_CANCEL && !f.open, "Esc cancels");
    lt_form_init(&f, "t", "");
    for (int i = 0; i < LT_FORM_MAX + 3; i++)
        lt_form_add(&f, "k", "k", LT_FIELD_TEXT, "");
    CHECK(f.n == LT_FORM_MAX, "fields capped at %d", LT_FORM_MAX);
}

static void test_mouse(void)
{
    lt_list l = {.n = 50, .height = 10};
    CHECK(lt_list_mouse(&l, LT_MOUSE_CLICK, 10 + 3, 10) == LT_KEY_HANDLED && l.sel == 3,
          "click selects the row under it");
    CHECK(lt_list_mouse(&l, LT_MOUSE_CLICK, 9, 10) == LT_KEY_IGNORED && l.sel == 3,
          "above the items: nothing");
    CHECK(lt_list_mouse(&l, LT_MOUSE_CLICK, 10 + 10, 10) == LT_KEY_IGNORED,
          "below the visible rows: nothing");
    for (int i = 0; i < 5; i++)
        lt_list_mouse(&l, LT_MOUSE_WHEEL_DOWN, 0, 10);
    CHECK(l.sel == 18 && l.top == 9, "wheel down scrolls (sel %d top %d)", l.sel, l.top);
    CHECK(lt_list_mouse(&l, LT_MOUSE_CLICK, 10, 10) == LT_KEY_HANDLED && l.sel == 9,
          "click on a scrolled list");
    l.sel = l.top = 0;
    CHECK(lt_list_mouse(&l, LT_MOUSE_WHEEL_UP, 0, 10) == LT_KEY_IGNORED && l.sel == 0,
          "wheel up at the top: nothing");
    lt_list few = {.n = 2, .height = 10};
    CHECK(lt_list_mouse(&few, LT_MOUSE_CLICK, 10 + 5, 10) == LT_KEY_IGNORED && few.sel == 0,
          "a click past the last item: nothing");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strncmp(argv[1], "job-", 4) == 0)
        return child(argc, argv);
    test_parsers();
    test_complete();
    test_form();
    test_mouse();
    test_jobs();
    return test_summary();
}
