/*
 * log.c - the one logging function (see log.h).
 *
 * State: the ident, the destination and the level, set by the main thread
 * before other threads start (dt_log_init, dt_log_set_level) and read by
 * every thread afterwards; the level is atomic so a config reload may
 * change it.  No lock: each line is one write(2) to stderr, or one syslog().
 */
#include "build-config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char log_ident[64] = "dtask";
static int log_syslog;
static atomic_int log_level = DT_LOG_INFO;

static const char *level_name(int level)
{
	switch (level) {
	case DT_LOG_ERR: return "error";
	case DT_LOG_WARN: return "warn";
	case DT_LOG_NOTICE: return "notice";
	case DT_LOG_INFO: return "info";
	default: return "debug";
	}
}

void dt_log_init(const char *ident, int use_syslog)
{
	if (log_syslog)
		closelog();
	snprintf(log_ident, sizeof log_ident, "%s", ident ? ident : "dtask");
	log_syslog = use_syslog;
	if (log_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void dt_log_set_level(int level)
{
	if (level < DT_LOG_ERR)
		level = DT_LOG_ERR;
	if (level > DT_LOG_DEBUG)
		level = DT_LOG_DEBUG;
	atomic_store(&log_level, level);
}

int dt_log_get_level(void)
{
	return atomic_load(&log_level);
}

int dt_log_level_parse(const char *name)
{
	static const struct { const char *n; int l; } names[] = {
		{"error", DT_LOG_ERR}, {"warn", DT_LOG_WARN}, {"warning", DT_LOG_WARN},
		{"notice", DT_LOG_NOTICE}, {"info", DT_LOG_INFO}, {"debug", DT_LOG_DEBUG},
	};
	for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(name, names[i].n) == 0)
			return names[i].l;
	return -1;
}

void dt_log_reopen(void)
{
	if (log_syslog) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

void dt_vlog(int level, const char *file, int line, const char *fmt, va_list ap)
{
	if (level > atomic_load(&log_level))
		return;
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (log_syslog) {
		if (level >= DT_LOG_DEBUG)
			syslog(level, "%s:%d: %s", file, line, msg);
		else
			syslog(level, "%s", msg);
		return;
	}
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char out[2400];
	int n;
	if (level >= DT_LOG_DEBUG)
		n = snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: %s:%d: %s\n",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, ts.tv_nsec / 1000000, log_ident, (int)getpid(),
			     level_name(level), file, line, msg);
	else
		n = snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: %s\n",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, ts.tv_nsec / 1000000, log_ident, (int)getpid(),
			     level_name(level), msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof out) {
		n = sizeof out - 1;
		out[n - 1] = '\n';
	}
	/* One write per line keeps lines from different threads whole. */
	ssize_t w = write(STDERR_FILENO, out, (size_t)n);
	(void)w;
}

void dt_log(int level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dt_vlog(level, file, line, fmt, ap);
	va_end(ap);
}
