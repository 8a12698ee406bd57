/*
 * daemon.h - what every daemon's main() shares: the command line (-c FILE,
 * -f, -p PIDFILE, -h, -V), daemonizing, the pidfile, and the signal
 * thread.
 *
 * Signals (STYLE: Knot's server/signals.c): dt_signals_block() is called by
 * the main thread before any other thread starts, so every thread inherits
 * a mask with SIGTERM, SIGINT and SIGHUP blocked, and SIGPIPE is ignored
 * process-wide.  Then one thread takes them with dt_signals_wait().
 */
#ifndef DT_DAEMON_H
#define DT_DAEMON_H

#include <stddef.h>

typedef struct dt_daemon_opts {
	const char *config;   /* -c FILE, else $DTASK_CONFIG, else SYSCONFDIR/dtask/dtask.json */
	int foreground;       /* -f: no fork, log to stderr */
	const char *pidfile;  /* -p PIDFILE, or NULL */
} dt_daemon_opts;

/* Parse argv.  Returns 0 to go on; 1 when -h or -V printed what was asked
 * (exit 0); 2 on a usage error (a one-line message is printed to stderr:
 * exit 2).  prog and summary are used in the usage text. */
int dt_daemon_args(int argc, char **argv, const char *prog, const char *summary,
		   dt_daemon_opts *o);

/* Before any thread: block SIGTERM/SIGINT/SIGHUP, ignore SIGPIPE. */
void dt_signals_block(void);
/* Wait for the next of SIGTERM/SIGINT/SIGHUP; returns its number. */
int dt_signals_wait(void);

/* Daemonize unless o->foreground (fork, setsid, fork, chdir "/", stdio to
 * /dev/null; the parent exits 0 only once the child has written its
 * pidfile, or reports the child's failure), start logging (stderr in the
 * foreground, syslog otherwise) under ident, and write the pidfile (taken
 * with an fcntl lock: a second daemon on the same pidfile is refused with
 * a message naming the PID that holds it).  Call after the configuration
 * loaded (so its errors reach the terminal) and before threads start.
 * 0, or a DTASK_E* code with the reason in err. */
int dt_daemon_start(const dt_daemon_opts *o, const char *ident, char *err, size_t errlen);

/* Tell the parent of a daemonized process that start-up failed (it prints
 * msg and exits 1); no-op in the foreground.  For failures after
 * dt_daemon_start() but before the daemon is ready. */
void dt_daemon_fail(const char *msg);
/* Tell the parent that start-up is complete (it exits 0); no-op in the
 * foreground.  Call when listening / connected. */
void dt_daemon_ready(void);

/* Remove the pidfile (at exit). */
void dt_daemon_stop(const dt_daemon_opts *o);

#endif
