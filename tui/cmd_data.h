/*
 * cmd_data.h - what the files of `lathe data` share: option helpers and the subcommands
 * living in cmd_data_ops.c. Internal to tui/.
 */
#ifndef LATHE_CMD_DATA_H
#define LATHE_CMD_DATA_H

#include "cli.h"
#include "store.h"

#include <stdbool.h>

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; *value NULL when the value is
 * missing. Advances *i past a separate value. */
bool lt_data_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* Parses a number in [lo, hi]; prints a usage error and returns false otherwise. */
bool lt_data_num(const char *cmd, const char *opt, const char *v, double lo, double hi,
                 double *out);
/* Opens the workspace store; prints the error and returns LT_EXIT_FAIL on failure. */
int lt_data_open(const char *cmd, const lt_cli_common *c, lt_store **st);

/* --progress-file PATH (the dashboard's background jobs): where lt_data_progress writes one
 * line, "FRACTION TEXT" (FRACTION -1 when unknown), replaced atomically, at most ten times a
 * second unless force. Does nothing when no path was given. */
void lt_data_progress_set(const char *path);
void lt_data_progress(bool force, double frac, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int lt_data_cmd_inspect(int argc, char **argv, lt_cli_common *c);
int lt_data_cmd_dedup(int argc, char **argv, lt_cli_common *c);
int lt_data_cmd_filter(int argc, char **argv, lt_cli_common *c);
int lt_data_cmd_split(int argc, char **argv, lt_cli_common *c);
int lt_data_cmd_export(int argc, char **argv, lt_cli_common *c);

#endif
