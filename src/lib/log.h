/*
 * log.h - the one logging function and its level macros.
 *
 * Every line goes through dt_log(): to stderr with a UTC timestamp, the
 * level and (at debug level) file:line when running in the foreground, or
 * to syslog(3) when daemonized.  Safe from any thread: a line is formatted
 * into a local buffer and written with one write(2) call.
 */
#ifndef DT_LOG_H
#define DT_LOG_H

#include <stdarg.h>

/* Levels use syslog's numbers so they map 1:1 onto syslog priorities. */
enum dt_log_level {
	DT_LOG_ERR = 3,
	DT_LOG_WARN = 4,
	DT_LOG_NOTICE = 5,
	DT_LOG_INFO = 6,
	DT_LOG_DEBUG = 7
};

/* Set the program name shown in every line and where lines go.  Before the
 * first call, lines go to stderr with ident "dtask" at level info. */
void dt_log_init(const char *ident, int use_syslog);
void dt_log_set_level(int level);
int dt_log_get_level(void);
/* "error", "warn", "notice", "info", "debug" -> level; -1 if unknown. */
int dt_log_level_parse(const char *name);
/* SIGHUP: reopen the syslog connection.  Harmless on stderr. */
void dt_log_reopen(void);

void dt_log(int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void dt_vlog(int level, const char *file, int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

#define log_error(...) dt_log(DT_LOG_ERR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) dt_log(DT_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_notice(...) dt_log(DT_LOG_NOTICE, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) dt_log(DT_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) dt_log(DT_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
