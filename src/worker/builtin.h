/*
 * builtin.h - the stock worker's built-in task functions (dtask-worker(8)):
 *
 *   noop   returns at once; result null
 *   sleep  data {"ms": N}: sleeps N ms (waking early to stop); {"slept": N}
 *   echo   result = the task's data as given
 *   exec   data {"argv": ["/abs/path", ARG...], "timeout_ms": N}: runs a
 *          program listed in the config's exec_allow, no shell, each output
 *          line an "output" event {"line": "..."}; result {"status": N}
 *
 * Written on the public API (dtask.h) and json-c, like any embedding
 * program, plus the config loader for exec_allow and stop_grace.
 */
#ifndef DT_BUILTIN_H
#define DT_BUILTIN_H

#include <stddef.h>

#include "dtask.h"

/* Load config_path (read-only, kept until dt_builtin_cleanup()) and
 * register the four functions on w.  0; non-zero after printing why to
 * stderr. */
int dt_builtin_setup(dtask_worker *w, const char *config_path);

/* Free what dt_builtin_setup() kept; after the worker is freed. */
void dt_builtin_cleanup(void);

/* ---- pure helpers, exposed for the unit tests ---- */

/* What dt_exec_check() decides. */
enum dt_exec_verdict {
	DT_EXEC_OK = 0,
	DT_EXEC_DISABLED,  /* exec_allow is empty: exec is off */
	DT_EXEC_RELATIVE,  /* the program is not an absolute path */
	DT_EXEC_DENIED     /* not exactly in exec_allow */
};

/* May exec run program?  Only a path listed verbatim in allow (n entries)
 * may: no lookup in PATH, no normalisation, no symlink resolution.  Unless
 * DT_EXEC_OK, a one-line reason goes to err, naming config (the file that
 * holds exec_allow) when it is empty. */
int dt_exec_check(char *const *allow, size_t n, const char *config,
		  const char *program, char *err, size_t errlen);

/* Copy in (n bytes) to out as valid UTF-8, each invalid or truncated
 * sequence replaced by U+FFFD; out needs 3n+1 bytes.  Returns the length
 * written (out is NUL-terminated, but may hold NULs from in). */
size_t dt_utf8_clean(const char *in, size_t n, char *out);

/* Where to cut a line of n bytes that is longer than max so that no UTF-8
 * sequence is split: max, or a little less. */
size_t dt_utf8_cut(const char *s, size_t n, size_t max);

#endif
