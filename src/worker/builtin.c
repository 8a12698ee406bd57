/*
 * builtin.c - the stock worker's built-in task functions: noop, sleep,
 * echo and exec (see builtin.h and dtask-worker(8)).
 *
 * Written on the public API (dtask.h) and json-c, as any program that
 * embeds libdtask would be; the one internal piece is the config loader,
 * for exec_allow and stop_grace.
 *
 * Threads: dt_builtin_setup() and dt_builtin_cleanup() run in the main
 * thread, before the worker starts and after it is freed.  The task
 * functions run on the worker's pool threads, several at once; they share
 * only the loaded configuration, which nobody writes after setup (and they
 * read its plain fields, never its json tree).  Each exec task owns its
 * child process, pipe and buffers.
 *
 * exec and fork(): the worker has many threads, so between fork() and
 * execve() the child calls only async-signal-safe functions; everything it
 * needs (argv, envp, the descriptor limit) is prepared before the fork.
 * Every descriptor is made close-on-exec at creation, so a program started
 * by one task never holds another task's pipe open.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "builtin.h"
#include "conf.h"
#include "dtask.h"
#include "log.h"

#define SLEEP_CHUNK_MS 1000u     /* sleep: a checkpoint (pause) at least this often */
#define EXEC_POLL_MS 100         /* exec: checkpoint and reap at least this often */
#define EXEC_KILL_GRACE_MS 5000  /* exec: TERM, then KILL after this (or stop_grace/2) */
#define EXEC_LINE_MAX 16384      /* exec: a longer line is sent in pieces */
#define EXEC_READ_MAX (64 * 1024) /* exec: bytes read between two checkpoints */
#define EXEC_DRAIN_MAX (1 << 20)  /* exec: bytes read after the program exited */

static dt_config *conf; /* loaded by dt_builtin_setup(); read-only afterwards */

/* ---------------------------------------------------------------- helpers */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* dtask_set_result() with a json-c value (consumed). */
static void set_result(dtask *t, struct json_object *v)
{
	dtask_set_result(t, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(v);
}

static dtask_status fail(dtask *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static dtask_status fail(dtask *t, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dtask_set_error(t, msg);
	return DTASK_FAIL;
}

/* ---------------------------------------------------------------- noop, echo */

static dtask_status fn_noop(dtask *t, void *arg)
{
	(void)arg;
	dtask_set_result(t, "null");
	return DTASK_END;
}

static dtask_status fn_echo(dtask *t, void *arg)
{
	(void)arg;
	dtask_set_result(t, dtask_data(t));
	return DTASK_END;
}

/* ---------------------------------------------------------------- sleep */

static dtask_status fn_sleep(dtask *t, void *arg)
{
	struct json_object *data = dtask_data_json(t), *v;
	int64_t ms, left;
	char res[64];

	(void)arg;
	if (!data || !json_object_is_type(data, json_type_object) ||
	    !json_object_object_get_ex(data, "ms", &v) || !json_object_is_type(v, json_type_int))
		return fail(t, "sleep wants data {\"ms\": N}, N an integer from 0 to %d", INT_MAX);
	errno = 0;
	ms = json_object_get_int64(v);
	if (errno || ms < 0 || ms > INT_MAX)
		return fail(t, "sleep: \"ms\" must be an integer from 0 to %d", INT_MAX);
	/* In chunks with a checkpoint between them, so a pause holds the
	 * sleep (paused time does not count) and a stop ends it at once. */
	left = ms;
	do {
		unsigned chunk = left > SLEEP_CHUNK_MS ? SLEEP_CHUNK_MS : (unsigned)left;
		if (dtask_checkpoint(t) || (chunk && dtask_sleep(t, chunk)))
			return DTASK_STOP;
		left -= chunk;
	} while (left > 0);
	snprintf(res, sizeof res, "{\"slept\":%lld}", (long long)ms);
	dtask_set_result(t, res);
	return DTASK_END;
}

/* ---------------------------------------------------------------- exec: pure parts */

int dt_exec_check(char *const *allow, size_t n, const char *config, const char *program,
		  char *err, size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "exec is disabled: exec_allow is empty in %s",
			 config ? config : "the configuration");
		return DT_EXEC_DISABLED;
	}
	if (!program || program[0] != '/') {
		snprintf(err, errlen, "%s is not an absolute path: exec runs only programs "
			 "listed in exec_allow, by absolute path", program ? program : "(null)");
		return DT_EXEC_RELATIVE;
	}
	for (size_t i = 0; i < n; i++)
		if (allow[i] && strcmp(allow[i], program) == 0)
			return DT_EXEC_OK;
	snprintf(err, errlen, "%s is not in exec_allow", program);
	return DT_EXEC_DENIED;
}

size_t dt_utf8_clean(const char *in, size_t n, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			out[o++] = (char)c;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4; cp = c & 0x07; min = 0x10000;
		} else {
			goto bad; /* a continuation byte, 0xc0/0xc1, or 0xf5.. */
		}
		if (i + len > n)
			goto bad;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad; /* overlong, out of range, or a surrogate */
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
		continue;
	bad:
		/* One U+FFFD per bad lead byte; resynchronise at the next byte. */
		memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		i++;
	}
	out[o] = '\0';
	return o;
}

size_t dt_utf8_cut(const char *s, size_t n, size_t max)
{
	size_t cut = max;

	if (n <= max)
		return n;
	/* Back up over continuation bytes (at most 3) to a sequence start. */
	while (cut > 0 && max - cut < 3 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	return cut > 0 ? cut : max;
}

/* ---------------------------------------------------------------- exec: the run */

struct exec_run {
	dtask *t;
	char *line;     /* the line being gathered */
	size_t len;
	char *clean;    /* dt_utf8_clean() output: 3 * EXEC_LINE_MAX + 1 */
	long lines;
};

static void emit_line(struct exec_run *r, const char *s, size_t n)
{
	size_t m = dt_utf8_clean(s, n, r->clean);
	struct json_object *o = json_object_new_object();
	struct json_object *str = json_object_new_string_len(r->clean, (int)m);

	if (!o || !str || json_object_object_add(o, "line", str) != 0) {
		json_object_put(str);
		json_object_put(o);
		return;
	}
	dtask_emit(r->t, "output", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	r->lines++;
}

/* Take n bytes of output: emit every complete line, keep the rest. */
static void take_output(struct exec_run *r, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			emit_line(r, r->line, r->len);
			r->len = 0;
			continue;
		}
		r->line[r->len++] = buf[i];
		if (r->len == EXEC_LINE_MAX) {
			size_t cut = dt_utf8_cut(r->line, r->len, EXEC_LINE_MAX - 4);
			emit_line(r, r->line, cut);
			memmove(r->line, r->line + cut, r->len - cut);
			r->len -= cut;
		}
	}
}

/* Read what is there, up to max bytes (the descriptor is non-blocking, and
 * a program that writes without pause must not keep us from checkpoints).
 * Returns 1 at end of file or on an error, 0 otherwise. */
static int read_output(struct exec_run *r, int fd, size_t max)
{
	char buf[8192];
	size_t total = 0;

	while (total < max) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			take_output(r, buf, (size_t)n);
			total += (size_t)n;
			if (n < (ssize_t)sizeof buf)
				return 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return 1;
	}
	return 0;
}

/* The child, between fork() and execve(): async-signal-safe calls only. */
static void child_exec(char *const *argv, char *const *envp, int out, int devnull, int errfd,
		       long maxfd)
{
	struct sigaction sa;
	sigset_t none;
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD };
	int e;

	/* The worker blocks TERM/INT/HUP and ignores PIPE; the program must
	 * start with the defaults, or a stop could not end it. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own process group: a stop reaches whatever it started too. */
	setpgid(0, 0);

	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(out, STDERR_FILENO) < 0)
		goto fail;
	/* The error pipe goes to fd 3, close-on-exec; everything above it is
	 * closed. */
	if (errfd != 3) {
		if (dup2(errfd, 3) < 0)
			goto fail;
		errfd = 3;
	}
	if (fcntl(errfd, F_SETFD, FD_CLOEXEC) < 0)
		goto fail;
#if defined(__linux__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	if (close_range(4, ~0U, 0) != 0)
#endif
	{
		for (long fd = 4; fd < maxfd; fd++)
			close((int)fd);
	}
	execve(argv[0], argv, envp);
fail:
	e = errno;
	if (write(errfd, &e, sizeof e) < 0) {
		/* nothing more to do */
	}
	_exit(127);
}

static void signal_group(pid_t pid, int sig)
{
	/* The group first (see setpgid above); the child itself in case it
	 * left its group. */
	kill(-pid, sig);
	kill(pid, sig);
}

static dtask_status fn_exec(dtask *t, void *arg)
{
	const dt_config *c = arg;
	struct json_object *data = dtask_data_json(t), *jargv, *v;
	char **argv = NULL;
	char *envp[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char err[600];
	size_t argc;
	int64_t timeout_ms = 0, grace_ms, start, kill_at = 0, next_check = 0;
	int out[2] = { -1, -1 }, ep[2] = { -1, -1 }, devnull = -1;
	int stopping = 0, timed_out = 0, killed = 0, reaped = 0, status = 0, child_errno = 0;
	long maxfd;
	pid_t pid;
	dtask_status ret = DTASK_FAIL;
	struct exec_run r = { t, NULL, 0, NULL, 0 };

	/* ---- the task's data */
	if (!data || !json_object_is_type(data, json_type_object) ||
	    !json_object_object_get_ex(data, "argv", &jargv) ||
	    !json_object_is_type(jargv, json_type_array) || json_object_array_length(jargv) == 0)
		return fail(t, "exec wants data {\"argv\": [\"/absolute/program\", ARG...]}");
	if (json_object_object_get_ex(data, "timeout_ms", &v) && !json_object_is_type(v, json_type_null)) {
		errno = 0;
		timeout_ms = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
		if (errno || timeout_ms < 0 || timeout_ms > INT_MAX)
			return fail(t, "exec: \"timeout_ms\" must be an integer from 0 to %d (0: none)",
				    INT_MAX);
	}
	argc = json_object_array_length(jargv);
	argv = calloc(argc + 1, sizeof *argv);
	if (!argv)
		return fail(t, "exec: out of memory");
	for (size_t i = 0; i < argc; i++) {
		struct json_object *a = json_object_array_get_idx(jargv, i);
		if (!json_object_is_type(a, json_type_string) ||
		    strlen(json_object_get_string(a)) != (size_t)json_object_get_string_len(a)) {
			free(argv);
			return fail(t, "exec: argv[%zu] must be a string without NUL characters", i);
		}
		/* Borrowed: the data tree outlives this function. */
		argv[i] = (char *)json_object_get_string(a);
	}

	/* ---- the allow list */
	if (dt_exec_check(c->exec_allow, c->n_exec_allow, c->path, argv[0], err, sizeof err) !=
	    DT_EXEC_OK) {
		free(argv);
		return fail(t, "%s", err);
	}

	grace_ms = c->stop_grace / 2 < EXEC_KILL_GRACE_MS ? c->stop_grace / 2 : EXEC_KILL_GRACE_MS;
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	r.line = malloc(EXEC_LINE_MAX);
	r.clean = malloc(3 * EXEC_LINE_MAX + 1);
	if (!r.line || !r.clean) {
		ret = fail(t, "exec: out of memory");
		goto out;
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		ret = fail(t, "exec: cannot set up %s: %s", argv[0], strerror(errno));
		goto out;
	}

	pid = fork();
	if (pid < 0) {
		ret = fail(t, "exec: cannot fork for %s: %s", argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, envp, out[1], devnull, ep[1], maxfd); /* never returns */

	close(out[1]);
	close(ep[1]);
	close(devnull);
	out[1] = ep[1] = devnull = -1;

	/* execve() closes the error pipe (close-on-exec): EOF means it ran. */
	for (;;) {
		ssize_t n = read(ep[0], &child_errno, sizeof child_errno);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof child_errno)
			child_errno = 0;
		break;
	}
	close(ep[0]);
	ep[0] = -1;
	if (child_errno) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		ret = fail(t, "cannot run %s: %s", argv[0], strerror(child_errno));
		goto out;
	}
	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);

	/* ---- run: read output, checkpoint, escalate a stop, reap */
	start = mono_ms();
	while (!reaped) {
		int64_t now;
		if (out[0] >= 0) {
			struct pollfd p = { out[0], POLLIN, 0 };
			int pr = poll(&p, 1, EXEC_POLL_MS);
			if (pr > 0 && read_output(&r, out[0], EXEC_READ_MAX)) {
				close(out[0]);
				out[0] = -1;
			}
		} else {
			/* Output closed but the program still runs. */
			poll(NULL, 0, 20);
		}
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			reaped = 1;
		now = mono_ms();
		if (reaped)
			break;
		if (!stopping && !timed_out) {
			if (now >= next_check) {
				next_check = now + EXEC_POLL_MS;
				if (dtask_checkpoint(t)) {
					stopping = 1;
				} else if (timeout_ms > 0 && now - start >= timeout_ms) {
					timed_out = 1;
				}
				if (stopping || timed_out) {
					signal_group(pid, SIGTERM);
					kill_at = mono_ms() + grace_ms;
				}
			}
		} else if (!killed && now >= kill_at) {
			signal_group(pid, SIGKILL);
			killed = 1;
		}
	}
	/* The program is gone; what it (or what it left running) wrote is
	 * still in the pipe.  Read what is there now, up to a limit, without
	 * waiting for an EOF that a lingering child could hold back. */
	if (out[0] >= 0) {
		struct pollfd p = { out[0], POLLIN, 0 };
		for (size_t n = 0; n < EXEC_DRAIN_MAX; n += EXEC_READ_MAX)
			if (poll(&p, 1, 0) <= 0 || read_output(&r, out[0], EXEC_READ_MAX))
				break;
	}
	if (r.len > 0)
		emit_line(&r, r.line, r.len);

	/* ---- the outcome */
	if (stopping) {
		ret = DTASK_STOP;
	} else if (timed_out) {
		ret = fail(t, "timed out after %lld ms", (long long)timeout_ms);
	} else if (WIFEXITED(status)) {
		struct json_object *res = json_object_new_object();
		json_object_object_add(res, "status", json_object_new_int(WEXITSTATUS(status)));
		set_result(t, res);
		ret = WEXITSTATUS(status) == 0 ? DTASK_END
					       : fail(t, "exited with status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		struct json_object *res = json_object_new_object();
		json_object_object_add(res, "signal", json_object_new_int(WTERMSIG(status)));
		set_result(t, res);
		ret = fail(t, "killed by signal %d", WTERMSIG(status));
	}
out:
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	if (ep[0] >= 0)
		close(ep[0]);
	if (ep[1] >= 0)
		close(ep[1]);
	if (devnull >= 0)
		close(devnull);
	free(r.line);
	free(r.clean);
	free(argv);
	return ret;
}

/* ---------------------------------------------------------------- setup */

int dt_builtin_setup(dtask_worker *w, const char *config_path)
{
	static const struct { const char *name; dtask_fn fn; } fns[] = {
		{ "noop", fn_noop }, { "sleep", fn_sleep }, { "echo", fn_echo }, { "exec", fn_exec },
	};
	int rc;

	if (!conf) {
		char err[1024];
		/* The worker loaded (and warned about) this file already. */
		int level = dt_log_get_level();
		dt_log_set_level(DT_LOG_ERR);
		rc = dt_config_load(config_path, &conf, err, sizeof err);
		dt_log_set_level(level);
		if (rc) {
			fprintf(stderr, "dtask-worker: %s\n", err);
			return 1;
		}
	}
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		rc = dtask_worker_add(w, fns[i].name, fns[i].fn, conf);
		if (rc) {
			fprintf(stderr, "dtask-worker: cannot register %s: %s\n", fns[i].name,
				dtask_strerror(rc));
			return 1;
		}
	}
	return 0;
}

void dt_builtin_cleanup(void)
{
	dt_config_free(conf);
	conf = NULL;
}
