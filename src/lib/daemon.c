/*
 * daemon.c - what every daemon's main() shares (see daemon.h): the command
 * line, daemonizing, the pidfile and the signal mask.
 *
 * DESIGN
 * - Daemonizing: the process forks; the parent stays attached to the
 *   terminal and reads a pipe.  The child calls setsid() and forks again (so
 *   the daemon can never reacquire a terminal); the grandchild is the
 *   daemon and keeps the pipe's write end (ready_fd).  It writes one byte
 *   'R' (dt_daemon_ready: the parent exits 0) or 'F' plus a message
 *   (dt_daemon_fail: the parent prints it and exits 1).  If the daemon dies
 *   before either, the parent reads end-of-file and exits 1.  So a script
 *   that starts the daemon learns whether it really started.
 * - Pidfile: opened without truncating and locked with fcntl(F_SETLK); the
 *   lock, not the file's existence, says a daemon runs, so a stale file
 *   left by a crash is simply taken over.  Only the lock holder truncates
 *   and writes it.  The descriptor stays open (close-on-exec) for the
 *   daemon's life, because closing any descriptor of the file would drop
 *   the lock.  fcntl locks are not inherited by fork(), which is why the
 *   daemon (the grandchild) takes it itself.
 * - Signals: dt_signals_block() sets the mask of the calling thread, which
 *   every thread started afterwards inherits; dt_signals_wait() takes them.
 *
 * Threads: everything here runs in the main thread before other threads
 * start, except dt_signals_wait() (the one signal-taking thread) and
 * dt_daemon_ready()/dt_daemon_fail(), which may run in any one thread.
 * State: ready_fd and pid_fd, written only by the main thread at start-up.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "dtask.h"
#include "log.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/dtask/dtask.json"

static int ready_fd = -1; /* daemon -> waiting parent; -1 in the foreground */
static int pid_fd = -1;   /* the locked pidfile, or -1 */
static char pid_path[4096]; /* its absolute path (the daemon leaves its folder) */

/* ---------------------------------------------------------------- options */

static void usage(FILE *f, const char *prog, const char *summary)
{
	fprintf(f,
		"Usage: %s [-f] [-c FILE] [-p PIDFILE]\n"
		"%s%s"
		"\n"
		"  -c FILE     the configuration file, dtask.json(5)\n"
		"              (default: $DTASK_CONFIG, else %s)\n"
		"  -f          stay in the foreground and log to stderr\n"
		"              (default: run as a daemon and log to syslog)\n"
		"  -p PIDFILE  write the process id to PIDFILE, locked while running\n"
		"  -h          show this help and exit\n"
		"  -V          show the version and exit\n"
		"\n"
		"Signals: TERM or INT stop gracefully; HUP reopens the log.\n",
		prog, summary ? summary : "", summary && *summary ? "\n" : "", DEFAULT_CONFIG);
}

int dt_daemon_args(int argc, char **argv, const char *prog, const char *summary,
		   dt_daemon_opts *o)
{
	const char *env = getenv("DTASK_CONFIG");
	int c;

	o->config = env && *env ? env : DEFAULT_CONFIG;
	o->foreground = 0;
	o->pidfile = NULL;

	/* Start a fresh scan: the caller may parse more than one argv. */
#ifdef __GLIBC__
	optind = 0;
#else
	optind = 1;
#endif
	opterr = 0;
	/* '+': stop at the first operand, never permute argv; ':': tell a
	 * missing argument from an unknown option. */
	while ((c = getopt(argc, argv, "+:c:fp:hV")) != -1) {
		switch (c) {
		case 'c':
			if (!*optarg) {
				fprintf(stderr, "%s: -c needs a file name (see %s -h)\n", prog, prog);
				return 2;
			}
			o->config = optarg;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'p':
			if (!*optarg) {
				fprintf(stderr, "%s: -p needs a file name (see %s -h)\n", prog, prog);
				return 2;
			}
			o->pidfile = optarg;
			break;
		case 'h':
			usage(stdout, prog, summary);
			fflush(stdout);
			return 1;
		case 'V':
			printf("%s (distributed-task) %s\n", prog, PACKAGE_VERSION);
			fflush(stdout);
			return 1;
		case ':':
			fprintf(stderr, "%s: option -%c needs an argument (see %s -h)\n",
				prog, optopt, prog);
			return 2;
		default:
			if (optopt > 32 && optopt < 127)
				fprintf(stderr, "%s: unknown option -%c (see %s -h)\n", prog, optopt, prog);
			else
				fprintf(stderr, "%s: unknown option (see %s -h)\n", prog, prog);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see %s -h)\n", prog, argv[optind], prog);
		return 2;
	}
	return 0;
}

/* ---------------------------------------------------------------- signals */

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void dt_signals_block(void)
{
	sigset_t set;
	struct sigaction sa;

	stop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A peer that closes a socket (hiredis and GnuTLS write with send()
	 * without MSG_NOSIGNAL) must give EPIPE, not kill the process. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

int dt_signals_wait(void)
{
	sigset_t set;
	int sig = 0;

	stop_signals(&set);
	while (sigwait(&set, &sig) != 0)
		; /* sigwait only fails on a bad set; never here */
	return sig;
}

/* ---------------------------------------------------------------- pidfile */

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The PID recorded in an open pidfile, or 0. */
static long pid_in_file(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int pidfile_take(const char *path, char *err, size_t errlen)
{
	struct flock fl;
	char buf[32], cwd[2048];
	int fd, n;

	/* No O_TRUNC: a running daemon's PID must survive a refused second
	 * start.  No symlinks: pidfiles live in directories others may write. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return dt_err(err, errlen, DTASK_EIO, "cannot open pidfile %s: %s", path,
			      strerror(errno));
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) == -1) {
		int e = errno;
		if (e == EACCES || e == EAGAIN) {
			long holder = 0;
			struct flock q;
			memset(&q, 0, sizeof q);
			q.l_type = F_WRLCK;
			q.l_whence = SEEK_SET;
			if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
				holder = (long)q.l_pid;
			if (holder <= 0)
				holder = pid_in_file(fd);
			close(fd);
			if (holder > 0)
				return dt_err(err, errlen, DTASK_EBUSY, "pidfile %s is held by PID %ld",
					      path, holder);
			return dt_err(err, errlen, DTASK_EBUSY,
				      "pidfile %s is held by another process", path);
		}
		close(fd);
		return dt_err(err, errlen, DTASK_EIO, "cannot lock pidfile %s: %s", path,
			      strerror(e));
	}
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || write_all(fd, buf, (size_t)n) == -1) {
		int e = errno;
		close(fd);
		return dt_err(err, errlen, DTASK_EIO, "cannot write pidfile %s: %s", path,
			      strerror(e));
	}
	pid_fd = fd;
	n = -1;
	if (path[0] != '/' && getcwd(cwd, sizeof cwd))
		n = snprintf(pid_path, sizeof pid_path, "%s/%s", cwd, path);
	if (n < 0 || (size_t)n >= sizeof pid_path)
		snprintf(pid_path, sizeof pid_path, "%s", path);
	return 0;
}

/* ---------------------------------------------------------------- daemon */

/* In the parent: wait for the daemon's word, then leave.  _exit(), not
 * exit(): the parent shares the caller's memory and stdio and must not run
 * its atexit handlers or flush its buffers a second time. */
static void parent_wait(int rfd, pid_t child, const char *ident)
{
	char msg[600];
	size_t len = 0;
	int status;

	while (waitpid(child, &status, 0) == -1 && errno == EINTR)
		;
	while (len < sizeof msg - 1) {
		ssize_t n = read(rfd, msg + len, sizeof msg - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	msg[len] = '\0';
	if (len > 0 && msg[0] == 'R')
		_exit(0);
	if (len > 1 && msg[0] == 'F')
		fprintf(stderr, "%s: %s\n", ident, msg + 1);
	else
		fprintf(stderr, "%s: the daemon exited during start-up (see the system log)\n",
			ident);
	fflush(stderr);
	_exit(1);
}

static void stdio_to_devnull(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

static int daemonize(const char *ident, char *err, size_t errlen)
{
	int p[2];
	pid_t pid;

	/* Nothing buffered may be written twice by two processes. */
	fflush(NULL);
	if (pipe2(p, O_CLOEXEC) == -1)
		return dt_err(err, errlen, DTASK_EIO, "cannot daemonize: pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return dt_err(err, errlen, DTASK_EIO, "cannot daemonize: fork: %s", strerror(e));
	}
	if (pid > 0) {
		close(p[1]);
		parent_wait(p[0], pid, ident); /* does not return */
	}

	/* The first child: a new session, then fork again so the daemon is not
	 * a session leader and never gets a controlling terminal. */
	close(p[0]);
	if (setsid() == -1)
		_exit(1); /* the parent reads EOF and reports */
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);

	/* The daemon.  The pipe is close-on-exec: a program it runs must not
	 * keep the parent waiting.  A parent killed meanwhile must not kill the
	 * daemon with SIGPIPE when it reports (dt_signals_block() ignores it
	 * too; this holds even for a caller that did not call it). */
	signal(SIGPIPE, SIG_IGN);
	ready_fd = p[1];
	stdio_to_devnull();
	return 0;
}

static void tell_parent(char what, const char *msg)
{
	char buf[512];
	size_t n;

	if (ready_fd < 0)
		return;
	buf[0] = what;
	n = 1;
	if (msg) {
		size_t m = strlen(msg);
		if (m > sizeof buf - 1)
			m = sizeof buf - 1;
		memcpy(buf + 1, msg, m);
		n += m;
	}
	/* Under PIPE_BUF: one atomic write.  EPIPE (the parent is gone) is
	 * fine: SIGPIPE is ignored (see daemonize()). */
	if (write_all(ready_fd, buf, n) == -1) {
		/* nothing to tell anyone */
	}
	close(ready_fd);
	ready_fd = -1;
}

int dt_daemon_start(const dt_daemon_opts *o, const char *ident, char *err, size_t errlen)
{
	int rc;

	if (!o->foreground) {
		rc = daemonize(ident, err, errlen);
		if (rc)
			return rc;
	}
	dt_log_init(ident, !o->foreground);
	if (o->pidfile) {
		/* Before chdir("/"), so a relative pidfile is where the user meant. */
		rc = pidfile_take(o->pidfile, err, errlen);
		if (rc) {
			dt_daemon_fail(err);
			return rc;
		}
	}
	if (!o->foreground && chdir("/") == -1) {
		rc = dt_err(err, errlen, DTASK_EIO, "cannot chdir to /: %s", strerror(errno));
		dt_daemon_fail(err);
		dt_daemon_stop(o);
		return rc;
	}
	return 0;
}

void dt_daemon_fail(const char *msg)
{
	tell_parent('F', msg && *msg ? msg : "start-up failed");
}

void dt_daemon_ready(void)
{
	tell_parent('R', NULL);
}

void dt_daemon_stop(const dt_daemon_opts *o)
{
	(void)o; /* the path was made absolute when the pidfile was taken */
	if (pid_fd < 0)
		return;
	/* Unlink while still holding the lock, so no other daemon can have
	 * taken the file we remove. */
	if (unlink(pid_path) == -1 && errno != ENOENT)
		log_warn("cannot remove pidfile %s: %s", pid_path, strerror(errno));
	close(pid_fd);
	pid_fd = -1;
}
