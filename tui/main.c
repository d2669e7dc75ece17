/*
 * main.c - lathe's entry point: finds the subcommand and hands off. Holds no logic.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: lathe [--version] [--help] <command> [options]\n\n"
               "lathe is a terminal workbench for fine-tuning language models.\n\n"
               "commands:\n");
    for (const lt_command *c = lt_commands; c->name; c++)
        fprintf(f, "  %-12s %s\n", c->name, c->summary);
    fprintf(f, "\nRun 'lathe <command> --help' for the options of one command.\n");
}

int main(int argc, char **argv)
{
    lt_cli_apply_umask();
    if (argc < 2)
        return lt_cmd_dashboard(argc, argv);
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return LT_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("lathe %s\n", LATHE_VERSION);
        return LT_EXIT_OK;
    }
    if (name[0] == '-') /* `lathe --workspace DIR`: the dashboard with options */
        return lt_cmd_dashboard(argc, argv);
    lt_cli_sanitize_stderr();
    for (const lt_command *c = lt_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "lathe: unknown command '%s'\n\n", name);
    usage(stderr);
    return LT_EXIT_USAGE;
}
