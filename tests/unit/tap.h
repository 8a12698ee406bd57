/*
 * tap.h - a minimal TAP producer for the C unit tests (read by automake's
 * tap-driver.sh).  Header-only; one test program = one file.
 */
#ifndef DT_TAP_H
#define DT_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n;
static int tap_failed;

static inline void tap_plan(int n) { printf("1..%d\n", n); fflush(stdout); }

static inline void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static inline int tap_ok_at(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok_at(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok_at(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!ok(g_ == w_, __VA_ARGS__)) tap_diag("  got %lld, want %lld", g_, w_); \
} while (0)
#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	int c_ = (g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0); \
	if (!ok(c_, __VA_ARGS__)) tap_diag("  got \"%s\", want \"%s\"", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)
#define like_str(got, needle, ...) do { \
	const char *g_ = (got), *n_ = (needle); \
	if (!ok(g_ && strstr(g_, n_), __VA_ARGS__)) tap_diag("  \"%s\" does not contain \"%s\"", g_ ? g_ : "(null)", n_); \
} while (0)

/* Exit status for main(): non-zero if any test failed or the count is off. */
static inline int tap_done(int planned)
{
	if (planned >= 0 && tap_n != planned)
		tap_diag("planned %d tests but ran %d", planned, tap_n);
	return (tap_failed || (planned >= 0 && tap_n != planned)) ? 1 : 0;
}

#endif
