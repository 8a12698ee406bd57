/*
 * main.c - the dtask command: global options, the configuration file,
 * dispatch to the commands (commands.c), help and errors.
 *
 *   dtask [-c FILE] [--json] COMMAND [ARGS...]
 *
 * The configuration is -c FILE, else $DTASK_CONFIG, else
 * SYSCONFDIR/dtask/dtask.json (only its "redis" object is used).  Global
 * options may also come after the command.
 */
#include "build-config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static const char usage_text[] =
	"Usage: dtask [-c FILE] [--json] COMMAND [ARGS...]\n"
	"Submit and inspect the tasks of distributed-task.\n"
	"\n"
	"Commands:\n"
	"  submit FUNCTION [DATA] [--id ID] [--keep-end] [--state-optional]\n"
	"         [--max-attempts N] [--wait [--timeout MS]]\n"
	"                      queue a task (DATA is JSON); print its id, or with\n"
	"                      --wait its result once it ends\n"
	"  list [--state S]    the tasks the system owns (S: QUEUED, RUNNING,\n"
	"                      STOPPED, END)\n"
	"  show ID             every field of a task's record\n"
	"  stop ID             stop a RUNNING task where it runs (it is requeued)\n"
	"  cancel ID           end a task for good (END, error \"cancelled\")\n"
	"  requeue ID          put a RUNNING or STOPPED task back on the queue now\n"
	"  workers             the registered workers\n"
	"  watch ID [EVENT...] follow a task's live events until it ends\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   the configuration (default $DTASK_CONFIG, else\n"
	"                      " SYSCONFDIR "/dtask/dtask.json)\n"
	"  --json              machine output: one JSON document on stdout\n"
	"  -h, --help          this help; \"dtask COMMAND --help\" for a command's\n"
	"  -V, --version       the version\n"
	"\n"
	"Exit status: 0 success, 1 a task that failed (submit --wait, watch), 2 usage,\n"
	"unknown ids, refused changes, timeouts, configuration or connection errors.\n"
	"See dtask(1).\n";

int cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("dtask: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_ERROR;
}

int cli_usage(const char *command, const char *fmt, ...)
{
	va_list ap;
	fputs("dtask: ", stderr);
	if (command)
		fprintf(stderr, "%s: ", command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see \"dtask %s%s--help\")\n", command ? command : "", command ? " " : "");
	return CLI_ERROR;
}

int cli_fail(dtask_client *c, int code, const char *id)
{
	if (code == DTASK_ENOTFOUND && id)
		return cli_error("no task %s", id);
	const char *msg = dtask_client_error(c);
	return cli_error("%s", msg && msg[0] ? msg : dtask_strerror(code));
}

dtask_client *cli_client(const struct cli *cli)
{
	char *err = NULL;
	dtask_client *c = dtask_client_new(cli->config, &err);
	if (!c) {
		cli_error("%s", err ? err : "cannot create a client");
		free(err);
	}
	return c;
}

int cli_global_opt(struct cli *cli, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (!strcmp(a, "--json")) {
		cli->json = 1;
		(*i)++;
		return 1;
	}
	if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
		if (*i + 1 >= argc) {
			cli_usage(NULL, "%s needs a FILE", a);
			return -1;
		}
		cli->config = argv[*i + 1];
		*i += 2;
		return 1;
	}
	if (!strncmp(a, "--config=", 9)) {
		cli->config = a + 9;
		(*i)++;
		return 1;
	}
	return 0;
}

static const struct command {
	const char *name;
	int (*fn)(struct cli *, int, char **);
} commands[] = {
	{ "submit", cmd_submit },   { "list", cmd_list },     { "show", cmd_show },
	{ "stop", cmd_stop },       { "cancel", cmd_cancel }, { "requeue", cmd_requeue },
	{ "workers", cmd_workers }, { "watch", cmd_watch },
};

int main(int argc, char **argv)
{
	struct cli cli = { NULL, 0, "dtask" };
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return CLI_OK;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("dtask %s (libdtask %s)\n", DTASK_VERSION_STRING, dtask_version());
			return CLI_OK;
		}
		int r = cli_global_opt(&cli, argc, argv, &i);
		if (r < 0)
			return CLI_ERROR;
		if (r == 0)
			return cli_usage(NULL, "unknown option %s", a);
	}
	if (i >= argc)
		return cli_usage(NULL, "no command given");

	const char *name = argv[i];
	if (!strcmp(name, "help")) {
		const char *h = i + 1 < argc ? cli_command_help(argv[i + 1]) : NULL;
		fputs(h ? h : usage_text, stdout);
		return CLI_OK;
	}

	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
		if (strcmp(name, commands[k].name))
			continue;
		/* COMMAND --help anywhere in its arguments. */
		for (int j = i + 1; j < argc; j++) {
			if (!strcmp(argv[j], "--"))
				break;
			if (!strcmp(argv[j], "-h") || !strcmp(argv[j], "--help")) {
				fputs(cli_command_help(name), stdout);
				return CLI_OK;
			}
		}
		if (!cli.config)
			cli.config = getenv("DTASK_CONFIG");
		if (!cli.config || !cli.config[0])
			cli.config = SYSCONFDIR "/dtask/dtask.json";
		/* Commands parse their own arguments: a -c after the command
		 * still wins over these defaults. */
		return commands[k].fn(&cli, argc - i, argv + i);
	}
	return cli_usage(NULL, "unknown command \"%s\"", name);
}
