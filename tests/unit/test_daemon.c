/* test_daemon - daemon.c: the command line, the pidfile lock, daemonizing
 * with the parent waiting for the daemon's word, and the signal mask. */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "dtask.h"
#include "tap.h"
#include "util.h"

#define PLAN 52

static char tmpdir[] = "/tmp/test_daemon.XXXXXX";

/* Read a whole (small) file into buf; "" when missing. */
static const char *slurp(const char *path, char *buf, size_t len)
{
	buf[0] = '\0';
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return buf;
	ssize_t n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* Run dt_daemon_args with stdout and stderr captured in out/err. */
static int args(char *out, char *err, size_t len, dt_daemon_opts *o, int argc, ...)
{
	char *argv[16];
	va_list ap;
	char po[300], pe[300];
	int rc, so, se, fo, fe;

	va_start(ap, argc);
	for (int i = 0; i < argc && i < 15; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;

	snprintf(po, sizeof po, "%s/out", tmpdir);
	snprintf(pe, sizeof pe, "%s/err", tmpdir);
	fflush(stdout);
	fflush(stderr);
	so = dup(STDOUT_FILENO);
	se = dup(STDERR_FILENO);
	fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fo, STDOUT_FILENO);
	dup2(fe, STDERR_FILENO);
	rc = dt_daemon_args(argc, argv, "prog", "a test program", o);
	fflush(stdout);
	fflush(stderr);
	dup2(so, STDOUT_FILENO);
	dup2(se, STDERR_FILENO);
	close(so);
	close(se);
	close(fo);
	close(fe);
	slurp(po, out, len);
	slurp(pe, err, len);
	return rc;
}

static void test_args(void)
{
	dt_daemon_opts o;
	char out[4096], err[4096];

	unsetenv("DTASK_CONFIG");
	is_int(args(out, err, sizeof out, &o, 1, "prog"), 0, "no options");
	is_str(o.config, SYSCONFDIR "/dtask/dtask.json", "default config under SYSCONFDIR");
	is_int(o.foreground, 0, "daemon by default");
	ok(o.pidfile == NULL, "no pidfile by default");
	is_str(out, "", "nothing printed");

	setenv("DTASK_CONFIG", "/env/dtask.json", 1);
	args(out, err, sizeof out, &o, 1, "prog");
	is_str(o.config, "/env/dtask.json", "$DTASK_CONFIG is the default");
	setenv("DTASK_CONFIG", "", 1);
	args(out, err, sizeof out, &o, 1, "prog");
	is_str(o.config, SYSCONFDIR "/dtask/dtask.json", "an empty $DTASK_CONFIG is ignored");
	setenv("DTASK_CONFIG", "/env/dtask.json", 1);
	is_int(args(out, err, sizeof out, &o, 5, "prog", "-c", "my.json", "-f", "-p/run/x.pid"), 0,
	       "-c -f -p");
	is_str(o.config, "my.json", "-c wins over $DTASK_CONFIG");
	is_int(o.foreground, 1, "-f");
	is_str(o.pidfile, "/run/x.pid", "-p, argument attached");
	unsetenv("DTASK_CONFIG");

	is_int(args(out, err, sizeof out, &o, 2, "prog", "-fc/a.json"), 0, "clustered -fc FILE");
	ok(o.foreground && strcmp(o.config, "/a.json") == 0, "both taken");

	is_int(args(out, err, sizeof out, &o, 2, "prog", "-x"), 2, "unknown option: 2");
	like_str(err, "prog: unknown option -x", "named on stderr");
	ok(strchr(err, '\n') == err + strlen(err) - 1, "in one line");
	is_int(args(out, err, sizeof out, &o, 2, "prog", "-c"), 2, "-c without a file: 2");
	like_str(err, "-c needs an argument", "says so");
	is_int(args(out, err, sizeof out, &o, 3, "prog", "-c", ""), 2, "-c '': 2");
	is_int(args(out, err, sizeof out, &o, 3, "prog", "-f", "extra"), 2, "an operand: 2");
	like_str(err, "unexpected argument 'extra'", "named");

	is_int(args(out, err, sizeof out, &o, 2, "prog", "-h"), 1, "-h: 1");
	like_str(out, "Usage: prog [-f] [-c FILE] [-p PIDFILE]", "usage on stdout");
	like_str(out, "a test program", "with the summary");
	like_str(out, SYSCONFDIR "/dtask/dtask.json", "and the default config");
	is_str(err, "", "nothing on stderr");
	is_int(args(out, err, sizeof out, &o, 2, "prog", "-V"), 1, "-V: 1");
	is_str(out, "prog (distributed-task) " PACKAGE_VERSION "\n", "version line");
}

/* ---------------------------------------------------------------- pidfile */

static void test_pidfile(void)
{
	char pidfile[300], buf[64], err[512], want[400];
	int go[2], back[2];
	dt_daemon_opts o = { "unused.json", 1, NULL };
	pid_t child;
	char c;

	snprintf(pidfile, sizeof pidfile, "%s/p.pid", tmpdir);
	o.pidfile = pidfile;

	/* A stale file (no lock) is taken over. */
	int fd = open(pidfile, O_WRONLY | O_CREAT, 0644);
	if (write(fd, "999999999\n", 10) != 10)
		tap_diag("write: %s", strerror(errno));
	close(fd);

	if (pipe(go) || pipe(back))
		return;
	fflush(NULL);
	child = fork();
	if (child == 0) {
		char e[256];
		close(go[1]);
		close(back[0]);
		c = dt_daemon_start(&o, "child", e, sizeof e) == 0 ? 'y' : 'n';
		if (write(back[1], &c, 1) != 1)
			_exit(3);
		if (read(go[0], &c, 1) < 0) /* until the parent says go */
			_exit(3);
		dt_daemon_stop(&o);
		_exit(0);
	}
	close(go[0]);
	close(back[1]);
	c = 0;
	if (read(back[0], &c, 1) != 1)
		c = 0;
	is_int(c, 'y', "a child takes the pidfile (stale content ignored)");
	snprintf(want, sizeof want, "%ld\n", (long)child);
	is_str(slurp(pidfile, buf, sizeof buf), want, "and writes its PID");

	err[0] = '\0';
	is_int(dt_daemon_start(&o, "parent", err, sizeof err), DTASK_EBUSY, "the parent is refused");
	snprintf(want, sizeof want, "pidfile %s is held by PID %ld", pidfile, (long)child);
	is_str(err, want, "naming the PID that holds it");
	snprintf(want, sizeof want, "%ld\n", (long)child);
	is_str(slurp(pidfile, buf, sizeof buf), want, "the file is left alone");

	close(go[1]); /* go */
	int st = -1;
	waitpid(child, &st, 0);
	is_int(st, 0, "the child exits cleanly");
	ok(access(pidfile, F_OK) == -1, "dt_daemon_stop removed the file");
	close(back[0]);

	is_int(dt_daemon_start(&o, "parent", err, sizeof err), 0, "now the parent takes it");
	snprintf(want, sizeof want, "%ld\n", (long)getpid());
	is_str(slurp(pidfile, buf, sizeof buf), want, "with its PID");
	dt_daemon_stop(&o);
	ok(access(pidfile, F_OK) == -1, "and removes it");
}

/* ---------------------------------------------------------------- daemonize */

/* Fork a process that daemonizes; the daemon does what `what` says.  Returns
 * the exit status of that process (the waiting parent); its stderr is in
 * tmpdir/stderr. */
static int daemon_run(char what, const char *pidfile)
{
	char path[300];
	dt_daemon_opts o = { "unused.json", 0, pidfile };
	pid_t pid;
	int st = -1;

	snprintf(path, sizeof path, "%s/stderr", tmpdir);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char err[256];
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, STDERR_FILENO);
		close(fd);
		if (dt_daemon_start(&o, "testd", err, sizeof err) != 0)
			_exit(4); /* the daemon, refused (the parent was told) */
		/* Only the daemon gets here. */
		switch (what) {
		case 'R':
			dt_signals_block();
			dt_daemon_ready();
			dt_signals_wait();
			dt_daemon_stop(&o);
			_exit(0);
		case 'F':
			dt_daemon_fail("it broke: bad thing");
			_exit(1);
		default:
			_exit(3); /* dies without a word */
		}
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_daemonize(void)
{
	char pidfile[300], path[300], buf[256];
	long dpid = 0;

	snprintf(pidfile, sizeof pidfile, "%s/d.pid", tmpdir);
	snprintf(path, sizeof path, "%s/stderr", tmpdir);

	is_int(daemon_run('R', pidfile), 0, "daemonized: the parent exits 0 after ready");
	is_str(slurp(path, buf, sizeof buf), "", "and prints nothing");
	dpid = strtol(slurp(pidfile, buf, sizeof buf), NULL, 10);
	ok(dpid > 1 && dpid != (long)getpid() && kill((pid_t)dpid, 0) == 0,
	   "the daemon runs and wrote its PID (%ld)", dpid);

	/* A second daemon on the same pidfile: refused, and the parent says so. */
	is_int(daemon_run('R', pidfile), 1, "a second daemon on the pidfile: parent exits 1");
	char want[400];
	snprintf(want, sizeof want, "testd: pidfile %s is held by PID %ld\n", pidfile, dpid);
	is_str(slurp(path, buf, sizeof buf), want, "printing the daemon's reason");

	kill((pid_t)dpid, SIGTERM);
	int64_t end = dt_mono_ms() + 5000;
	while ((access(pidfile, F_OK) == 0 || kill((pid_t)dpid, 0) == 0) && dt_mono_ms() < end)
		dt_sleep_ms(10);
	ok(access(pidfile, F_OK) == -1, "on TERM the daemon removes its pidfile");

	is_int(daemon_run('F', NULL), 1, "dt_daemon_fail: the parent exits 1");
	is_str(slurp(path, buf, sizeof buf), "testd: it broke: bad thing\n", "with the message");
	is_int(daemon_run('X', NULL), 1, "the daemon dies first: the parent exits 1");
	like_str(slurp(path, buf, sizeof buf), "testd: the daemon exited during start-up",
		 "and says so");
}

/* ---------------------------------------------------------------- signals */

static void *sender(void *arg)
{
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	*(int *)arg = sigismember(&cur, SIGTERM) && sigismember(&cur, SIGINT) &&
		      sigismember(&cur, SIGHUP);
	dt_sleep_ms(50);
	/* Process-directed, from another thread: whichever thread has it
	 * unblocked or waits for it takes it. */
	kill(getpid(), SIGHUP);
	return NULL;
}

static void test_signals(void)
{
	struct sigaction sa;
	pthread_t th;
	int inherited = 0;

	dt_signals_block();
	sigaction(SIGPIPE, NULL, &sa);
	ok(sa.sa_handler == SIG_IGN, "SIGPIPE is ignored");
	if (pthread_create(&th, NULL, sender, &inherited) != 0) {
		ok(0, "pthread_create");
		ok(0, "skipped");
		return;
	}
	is_int(dt_signals_wait(), SIGHUP, "dt_signals_wait returns the signal sent from a thread");
	pthread_join(th, NULL);
	ok(inherited, "a thread started later inherits the blocked set");
	pthread_kill(pthread_self(), SIGTERM);
	is_int(dt_signals_wait(), SIGTERM, "a pending SIGTERM (to this thread) is taken at once");
}

int main(void)
{
	char cmd[64];

	tap_plan(PLAN);
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_args();
	test_pidfile();
	test_daemonize();
	test_signals();

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmpdir);
	return tap_done(PLAN);
}
