/*
 * main.c - dtask-worker(8), the stock worker: dtask_worker_main() with the
 * built-in functions noop, sleep, echo and exec (builtin.c).
 *
 * The command line is parsed here first, only to learn the configuration
 * file that the built-ins read (exec_allow, stop_grace); usage errors, -h
 * and -V end here.  Then dtask_worker_main() parses it again and runs the
 * worker.  Threads: the main thread; the worker's own threads start inside
 * dtask_worker_main().
 */
#include "build-config.h"

#include <string.h>

#include "builtin.h"
#include "daemon.h"
#include "dtask.h"

#define SUMMARY "The stock distributed-task worker: runs the built-in functions noop, sleep,\n" \
	"echo and exec (programs listed in the configuration's exec_allow)."

static const char *config_path;

static int setup(dtask_worker *w)
{
	return dt_builtin_setup(w, config_path);
}

int main(int argc, char **argv)
{
	dt_daemon_opts o;
	int rc;

	rc = dt_daemon_args(argc, argv, "dtask-worker", SUMMARY, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	config_path = o.config;
	rc = dtask_worker_main(argc, argv, setup);
	dt_builtin_cleanup();
	return rc;
}
