/*
 * cli.h - the command line: subcommand table, common options, exit codes.
 *
 * Every subcommand is a function taking (argc, argv) with argv[0] the subcommand name, and
 * returning an exit code: LT_EXIT_OK, LT_EXIT_FAIL or LT_EXIT_USAGE. It parses its own options
 * (getopt_long), prints `--help`, and calls pipeline/store/compute for the work. No logic of
 * the domain lives here.
 */
#ifndef LATHE_CLI_H
#define LATHE_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum { LT_EXIT_OK = 0, LT_EXIT_FAIL = 1, LT_EXIT_USAGE = 2 };

typedef struct lt_command {
    const char *name;
    const char *summary; /* one line for `lathe --help` */
    int (*run)(int argc, char **argv);
} lt_command;

/* The table of subcommands, terminated by a zeroed entry. */
extern const lt_command lt_commands[];

/* Options every computing command takes. Defaults come from the environment:
 * LATHE_DEVICE, LATHE_THREADS, LATHE_HOME. */
typedef struct lt_cli_common {
    const char *device;    /* "auto", "cpu", "vulkan:N" */
    int threads;           /* 0 = all usable cores */
    const char *workspace; /* default ./.lathe */
    bool json;
} lt_cli_common;

void lt_cli_common_defaults(lt_cli_common *c);

/*
 * Try to consume a common option at argv[*i] ("--device X", "--device=X", "--threads N",
 * "--workspace DIR", "--json"). Returns 1 if consumed (advancing *i past its value), 0 if the
 * argument is not a common option, -1 on a bad value (message printed to stderr).
 */
int lt_cli_common_parse(lt_cli_common *c, int argc, char **argv, int *i);

/* Print "lathe <cmd>: <message>" to stderr; returns code. */
int lt_cli_fail(const char *cmd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write s to f through lt_sanitize_write: control characters, escape sequences and bidi
 * controls made visible (\x1b, \u202e; \n kept only when keep_newlines). Every string that
 * came from a dataset, a model, a driver or the command line goes through this before reaching
 * the terminal. */
void lt_cli_print_sanitized(FILE *f, const char *s, bool keep_newlines);

/* Routes stderr, for the rest of the process, through the one sanitizer (lt_sanitize_write:
 * escape sequences, controls and bidi controls shown as visible escapes; newlines, tabs and
 * carriage returns pass), so no diagnostic line can carry a raw escape to the terminal,
 * whatever text it echoes. main calls it before any subcommand runs; the dashboard draws
 * through ncurses and keeps the real stderr. */
void lt_cli_sanitize_stderr(void);

/* --force semantics: when path exists and force is false, prints "lathe <cmd>: PATH exists;
 * add --force to replace it" and returns LT_EXIT_USAGE; otherwise returns LT_EXIT_OK. Every
 * command that would replace a file the user named asks this first. */
int lt_cli_check_overwrite(const char *cmd, const char *path, bool force);

/* The file mode creation mask for everything lathe writes (the workspace, lathe.db,
 * checkpoints, adapters, exports): 077 by default, so the workspace is 0700 and files 0600
 * whatever the shell's umask; LATHE_UMASK (octal, e.g. 007 or 027) sets another for a team
 * sharing a workspace through a group. A bad value is reported and 077 kept. main calls it
 * first. */
void lt_cli_apply_umask(void);

/* Subcommands. */
int lt_cmd_devices(int argc, char **argv);
int lt_cmd_data(int argc, char **argv);
int lt_cmd_bench(int argc, char **argv);
int lt_cmd_bench_train(int argc, char **argv); /* lathe bench train */
int lt_cmd_model(int argc, char **argv);
int lt_cmd_generate(int argc, char **argv);
int lt_cmd_tokenizer(int argc, char **argv);
int lt_cmd_eval(int argc, char **argv);
int lt_cmd_plan(int argc, char **argv);
int lt_cmd_watch(int argc, char **argv);
/* The dashboard (`lathe` with no command); argv[0] is "lathe". */
int lt_cmd_dashboard(int argc, char **argv);
int lt_cmd_train(int argc, char **argv);
int lt_cmd_runs(int argc, char **argv);
int lt_cmd_export(int argc, char **argv);
int lt_cmd_demo(int argc, char **argv);

#endif
