/*
 * cmd_train.c - `lathe train CONFIG.json [--resume RUN] [--detach]`: parse the options, load
 * the config (or the run's own config when resuming), install the signal handlers, and
 * print progress (a \r-updated line on a terminal, plain periodic lines otherwise). With
 * --detach the training runs in a child in its own session whose output goes to
 * WORKSPACE/runs/<id>/train.log; the parent prints the run id.
 *
 * The run itself is pipeline/train's; nothing here computes or writes SQL.
 */
#include "cli.h"

#include "store.h"
#include "train/train.h"
#include "train/train_config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *help =
    "usage: lathe train CONFIG.json [options]\n"
    "       lathe train --resume RUN [options]\n"
    "  Train a model as CONFIG.json says (see README.md, \"Training config\").\n"
    "  --resume RUN      continue a stopped run from its newest checkpoint (its own config)\n"
    "  --strict          dpo/orpo: stop at the first bad preference pair instead of\n"
    "                    reporting and skipping it\n"
    "  --detach          run in the background in its own session; output goes to\n"
    "                    WORKSPACE/runs/<id>/train.log and the run id is printed\n"
    "  --device auto|cpu|vulkan:N  --threads N  --workspace DIR\n"
    "  --json            print the result as JSON\n"
    "  SIGINT/SIGTERM finish the step, write a checkpoint and mark the run stopped.\n"
    "  Exit: 0 done or stopped, 1 failed, 2 bad usage or an invalid config.\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct tctx {
    bool tty, json, line_open;
    int report_fd; /* --detach: where the child reports the run id; -1 otherwise */
    const char *workspace;
    double last_line;
    int64_t every;
    bool strict; /* --strict */
} tctx;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fmt_eta(double s, char *out, size_t n)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(out, n, "?");
    else if (s >= 3600)
        snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else
        snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void end_line(tctx *t)
{
    if (t->line_open) {
        fputc('\n', stdout);
        t->line_open = false;
    }
}

static void on_start(void *ctx, int64_t run_id, const char *run_dir)
{
    tctx *t = ctx;
    if (t->report_fd >= 0) {
        /* the detached child: output to the run's log from here on */
        char log[4200];
        snprintf(log, sizeof(log), "%s/train.log", run_dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "OK %lld\n", (long long)run_id);
        if (write(t->report_fd, msg, (size_t)n) < 0) {
            /* the parent is gone: keep training */
        }
        close(t->report_fd);
        t->report_fd = -1;
        t->tty = false;
    }
    if (!t->json)
    {
        printf("run %lld: ", (long long)run_id);
        lt_cli_print_sanitized(stdout, run_dir, false);
        printf("\n");
    }
    fflush(stdout);
}

static void on_progress(void *ctx, const lt_train_progress *p)
{
    tctx *t = ctx;
    if (t->json)
        return;
    if (p->is_eval) {
        end_line(t);
        if (isfinite(p->val_ppl))
            printf("step %lld  val_loss %.4f  val_ppl %.3f\n", (long long)p->step, p->val_loss,
                   p->val_ppl);
        else
            printf("step %lld  val_loss %.4f\n", (long long)p->step, p->val_loss);
        fflush(stdout);
        return;
    }
    char eta[32];
    fmt_eta(p->eta_s, eta, sizeof(eta));
    if (t->tty) {
        printf("\rstep %lld/%lld  epoch %lld  loss %.4f  lr %.3e  %.0f tok/s  ETA %s\x1b[K",
               (long long)p->step, (long long)p->total_steps, (long long)p->epoch + 1, p->loss,
               p->lr, p->tokens_per_s, eta);
        t->line_open = true;
        fflush(stdout);
        return;
    }
    double now = mono();
    t->every = p->total_steps > 20 ? p->total_steps / 20 : 1;
    if (p->step % t->every == 0 || p->step == p->total_steps || now - t->last_line >= 10) {
        printf("step %lld/%lld epoch %lld loss %.4f lr %.3e grad_norm %.3f tok/s %.0f eta %s\n",
               (long long)p->step, (long long)p->total_steps, (long long)p->epoch + 1, p->loss,
               p->lr, p->grad_norm, p->tokens_per_s, eta);
        fflush(stdout);
        t->last_line = now;
    }
}

static void on_message(void *ctx, const char *kind, const char *text)
{
    tctx *t = ctx;
    end_line(t);
    fprintf(stderr, "lathe train: %s: ", kind);
    lt_cli_print_sanitized(stderr, text, false);
    fputc('\n', stderr);
}

/* Runs the training in this process; returns the exit code. */
static int run_here(lt_cli_common *cc, const char *config_path, const char *resume, tctx *t)
{
    char err[2048];
    lt_store *st = NULL;
    lt_train_config cfg;
    bool have_cfg = false;
    int rc = LT_EXIT_FAIL;
    lt_train_opts o;
    memset(&o, 0, sizeof(o));
    if (lt_store_open(cc->workspace, &st, err, sizeof(err)) != LT_STORE_OK) {
        rc = lt_cli_fail("train", LT_EXIT_FAIL, "%s", err);
        goto done;
    }
    if (resume) {
        if (lt_store_run_find(st, resume, &o.resume_run) != LT_STORE_OK) {
            rc = lt_cli_fail("train", LT_EXIT_FAIL, "no run '%s' in %s", resume, cc->workspace);
            goto done;
        }
        lt_store_iter *it = NULL;
        lt_store_run run;
        if (lt_store_run_get(st, o.resume_run, &it, &run) != LT_STORE_OK) {
            rc = lt_cli_fail("train", LT_EXIT_FAIL, "cannot read run %s", resume);
            goto done;
        }
        char label[64];
        snprintf(label, sizeof(label), "run %lld config", (long long)o.resume_run);
        have_cfg = lt_train_config_parse(run.config, strlen(run.config), label, NULL, &cfg, err,
                                         sizeof(err));
        lt_store_iter_free(it);
        if (!have_cfg) {
            rc = lt_cli_fail("train", LT_EXIT_FAIL, "%s", err);
            goto done;
        }
    } else {
        have_cfg = lt_train_config_load(config_path, &cfg, err, sizeof(err));
        if (!have_cfg) {
            rc = lt_cli_fail("train", LT_EXIT_USAGE, "%s", err);
            goto done;
        }
    }
    if (strcmp(cc->device, "auto") != 0 || !cfg.device)
        o.device = cc->device;
    o.threads = cc->threads;
    o.stop = &stop_flag;
    const char *sa = getenv("LATHE_TRAIN_STOP_AFTER"); /* tests: a deterministic stop */
    o.stop_after_step = sa ? atoll(sa) : 0;
    o.strict = t->strict;
    o.on_start = on_start;
    o.on_progress = on_progress;
    o.on_message = on_message;
    o.ctx = t;
    lt_train_result res;
    if (!lt_train_run(st, &cfg, &o, &res, err, sizeof(err))) {
        end_line(t);
        rc = lt_cli_fail("train", LT_EXIT_FAIL, "%s", err);
        goto done;
    }
    end_line(t);
    if (t->json) {
        printf("{\"run_id\":%lld,\"status\":\"%s\",\"steps\":%lld,", (long long)res.run_id,
               res.status, (long long)res.steps);
        if (isfinite(res.last_loss))
            printf("\"loss\":%.9g,", res.last_loss);
        if (isfinite(res.best_val))
            printf("\"best_val_loss\":%.9g,", res.best_val);
        printf("\"message\":\"");
        for (const char *p = res.message; *p; p++)
            if (*p == '"' || *p == '\\')
                printf("\\%c", *p);
            else if ((unsigned char)*p >= 0x20)
                putchar(*p);
        printf("\"}\n");
    } else {
        printf("run %lld %s: ", (long long)res.run_id, res.status);
        lt_cli_print_sanitized(stdout, res.message, false);
        printf("\n");
    }
    rc = strcmp(res.status, "failed") == 0 ? LT_EXIT_FAIL : LT_EXIT_OK;
done:
    if (have_cfg)
        lt_train_config_free(&cfg);
    if (t->report_fd >= 0) {
        /* the detached child failed before the run started: tell the parent */
        char msg[2100];
        int n = snprintf(msg, sizeof(msg), "ERR %s\n", rc == LT_EXIT_USAGE ? "usage" : "fail");
        if (write(t->report_fd, msg, (size_t)n) < 0) {
            /* nothing more to do */
        }
        close(t->report_fd);
        t->report_fd = -1;
    }
    lt_store_close(st);
    fflush(stdout);
    return rc;
}

/* --detach: fork a child in its own session; print its run id once it has one. */
static int detach(lt_cli_common *cc, const char *config_path, const char *resume, tctx *t)
{
    int fds[2];
    if (pipe(fds) != 0)
        return lt_cli_fail("train", LT_EXIT_FAIL, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return lt_cli_fail("train", LT_EXIT_FAIL, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        setsid();
        signal(SIGHUP, SIG_IGN);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, STDIN_FILENO);
            close(nul);
        }
        t->report_fd = fds[1];
        t->tty = false;
        _exit(run_here(cc, config_path, resume, t));
    }
    close(fds[1]);
    char buf[256] = "";
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof(buf) && (k = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fds[0]);
    if (strncmp(buf, "OK ", 3) == 0) {
        long long id = atoll(buf + 3);
        if (t->json)
            printf("{\"run_id\":%lld,\"pid\":%d}\n", id, (int)pid);
        else
            printf("%lld\n", id);
        return LT_EXIT_OK;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return strncmp(buf, "ERR usage", 9) == 0 ? LT_EXIT_USAGE : LT_EXIT_FAIL;
}

int lt_cmd_train(int argc, char **argv)
{
    lt_cli_common cc;
    lt_cli_common_defaults(&cc);
    const char *config = NULL, *resume = NULL;
    bool do_detach = false, strict = false;
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
        if (strcmp(argv[i], "--resume") == 0) {
            if (i + 1 >= argc)
                return lt_cli_fail("train", LT_EXIT_USAGE, "--resume needs a run id");
            resume = argv[++i];
        } else if (strncmp(argv[i], "--resume=", 9) == 0) {
            resume = argv[i] + 9;
        } else if (strcmp(argv[i], "--detach") == 0) {
            do_detach = true;
        } else if (strcmp(argv[i], "--strict") == 0) {
            strict = true;
        } else if (argv[i][0] == '-') {
            return lt_cli_fail("train", LT_EXIT_USAGE, "unknown option '%s' (see --help)",
                               argv[i]);
        } else if (!config) {
            config = argv[i];
        } else {
            return lt_cli_fail("train", LT_EXIT_USAGE, "unexpected argument '%s' (see --help)",
                               argv[i]);
        }
    }
    if (!config && !resume)
        return lt_cli_fail("train", LT_EXIT_USAGE, "need CONFIG.json or --resume RUN\n%s", help);
    if (config && resume)
        return lt_cli_fail("train", LT_EXIT_USAGE,
                           "--resume continues a run with its own config; give no CONFIG.json");
    tctx t = {isatty(STDOUT_FILENO) != 0, cc.json, false, -1, cc.workspace, 0, 1, strict};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (do_detach)
        return detach(&cc, config, resume, &t);
    return run_here(&cc, config, resume, &t);
}
