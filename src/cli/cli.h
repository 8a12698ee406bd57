/*
 * cli.h - the dtask command (SPEC 7): shared by main.c (options, the
 * config, dispatch, usage) and commands.c (one function per command).
 * Built on the public API (dtask.h) and json-c only.
 *
 * Exit status: 0 success; 1 a task that failed (submit --wait); 2 usage
 * errors, unknown ids, refused changes, timeouts, configuration and
 * connection errors (one line "dtask: ..." on stderr).
 */
#ifndef DT_CLI_H
#define DT_CLI_H

#include "dtask.h"

#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_ERROR 2

struct cli {
	const char *config;  /* -c FILE, $DTASK_CONFIG or the default */
	int json;            /* --json: one JSON document on stdout */
	const char *prog;    /* "dtask" */
};

/* The client for the configured Redis, or NULL after printing why. */
dtask_client *cli_client(const struct cli *cli);

/* Print "dtask: MESSAGE" on stderr; returns CLI_ERROR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error for a command: the message and a hint; CLI_ERROR. */
int cli_usage(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message for a failed client call (DTASK_ENOTFOUND: "no task ID"). */
int cli_fail(dtask_client *c, int code, const char *id);

/* 1 when argv[*i] is a global option (--json, -c FILE) taken here; *i is
 * moved past it.  -1 on a usage error (printed). */
int cli_global_opt(struct cli *cli, int argc, char **argv, int *i);

/* The commands: argv[0] is the command name. */
int cmd_submit(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_stop(struct cli *cli, int argc, char **argv);
int cmd_cancel(struct cli *cli, int argc, char **argv);
int cmd_requeue(struct cli *cli, int argc, char **argv);
int cmd_workers(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);

/* Per-command help text (NULL: unknown command). */
const char *cli_command_help(const char *command);

#endif
