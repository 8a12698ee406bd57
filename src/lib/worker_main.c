/*
 * worker_main.c - dtask_worker_main() of the public API: a complete worker
 * program around the worker runtime (worker.c): the command line, the
 * worker, the caller's setup, daemonizing and the pidfile (daemon.c).
 *
 * Order matters: the configuration is loaded (dtask_worker_new) and the
 * functions registered before daemonizing, so their errors reach the
 * terminal; the daemon reports ready as soon as it runs, because the
 * worker's connections to Redis and to distributors are made (and retried)
 * in the background.
 *
 * Threads: the main thread only; the worker's threads start inside
 * dtask_worker_run(), after the fork.
 */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "dtask.h"
#include "log.h"

#define SUMMARY "A distributed-task worker: runs the task functions compiled into it."

/* The program's name for messages and the log: the last part of argv[0],
 * without the "lt-" that libtool's wrapper adds in a build tree. */
static const char *prog_name(int argc, char **argv)
{
	const char *p, *slash;

	if (argc < 1 || !argv[0] || !*argv[0])
		return "dtask-worker";
	p = argv[0];
	slash = strrchr(p, '/');
	if (slash) {
		if (slash - p >= 6 && strncmp(slash - 6, "/.libs", 6) == 0 &&
		    strncmp(slash + 1, "lt-", 3) == 0)
			return slash + 4;
		p = slash + 1;
	}
	return *p ? p : "dtask-worker";
}

int dtask_worker_main(int argc, char **argv, int (*setup)(dtask_worker *w))
{
	const char *prog = prog_name(argc, argv);
	dt_daemon_opts o;
	dtask_worker *w;
	char *errmsg = NULL;
	char err[512];
	int rc;

	rc = dt_daemon_args(argc, argv, prog, SUMMARY, &o);
	if (rc == 1)
		return 0; /* -h or -V */
	if (rc)
		return 2;

	/* Before anything that could start a thread: every thread inherits
	 * this mask, so TERM/INT/HUP reach only the one that takes them. */
	dt_signals_block();
	dt_log_init(prog, 0);

	w = dtask_worker_new(o.config, &errmsg);
	if (!w) {
		fprintf(stderr, "%s: %s\n", prog, errmsg ? errmsg : "cannot create the worker");
		free(errmsg);
		return 2;
	}
	if (setup && setup(w) != 0) {
		dtask_worker_free(w);
		return 1;
	}
	rc = dt_daemon_start(&o, prog, err, sizeof err);
	if (rc) {
		/* A daemon's waiting parent has printed it already; the daemon
		 * logs it too. */
		if (o.foreground)
			fprintf(stderr, "%s: %s\n", prog, err);
		else
			log_error("%s", err);
		dtask_worker_free(w);
		return 1;
	}
	dt_daemon_ready();
	rc = dtask_worker_run(w);
	if (rc)
		log_error("the worker stopped: %s", dtask_strerror(rc));
	dt_daemon_stop(&o);
	dtask_worker_free(w);
	return rc ? 1 : 0;
}
