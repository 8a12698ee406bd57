/*
 * util.h - small helpers shared by every module: clocks, bounded string
 * formatting into error buffers, constant-time comparison, hex.
 * No state; safe from any thread.
 */
#ifndef DT_UTIL_H
#define DT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds: wall clock (for logs only; task times come from Redis) and
 * a monotonic clock (for timeouts and intervals). */
int64_t dt_wall_ms(void);
int64_t dt_mono_ms(void);
/* An absolute CLOCK_MONOTONIC timespec ms from now, for condvars created
 * with dt_cond_init_monotonic(). */
struct timespec;
void dt_deadline(struct timespec *ts, int64_t ms_from_now);
#include <pthread.h>
int dt_cond_init_monotonic(pthread_cond_t *cond);
/* A mutex taken by many threads for a few instructions at a time (the
 * pool's, the worker's, the distributor's): it spins briefly before it
 * sleeps where the C library can (glibc's adaptive type), else a plain
 * one. */
void dt_mutex_init_hot(pthread_mutex_t *m);
void dt_sleep_ms(int64_t ms);

/* snprintf into an error buffer, never overflowing; returns code so callers
 * can write "return dt_err(err, errlen, DTASK_EINVAL, ...)".  err may be NULL. */
int dt_err(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* 1 when a and b (both n bytes) are equal; time does not depend on content. */
int dt_ct_equal(const void *a, const void *b, size_t n);

/* v in decimal into out (up to 20 characters and a NUL); returns the
 * length.  For the hot paths, where snprintf costs a thousand
 * instructions a number. */
size_t dt_fmt_i64(char out[21], int64_t v);

/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL). */
void dt_hex_encode(const unsigned char *in, size_t n, char *out);
/* Decodes exactly 2n hex digits into n bytes; -1 on any other input. */
int dt_hex_decode(const char *in, unsigned char *out, size_t n);

/* malloc/strdup that abort with a log line on exhaustion are NOT used:
 * callers check for NULL and return DTASK_ENOMEM. */

#endif
