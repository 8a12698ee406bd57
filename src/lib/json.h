/*
 * json.h - JSON text helpers, pure (any thread).
 *
 * json-c's strict mode still accepts single-quoted names and NaN/Infinity,
 * which are not JSON: every other program that reads our queue or records
 * would refuse them.  dt_json_valid() runs before json-c on what comes
 * from outside (queue items, task results, the configuration file); it
 * keeps no state and allocates nothing, and nesting is limited to
 * DT_JSON_MAX_DEPTH.  The simple-text test allocates nothing either; the
 * member scanners only to decode a member name with escapes (with
 * json-c, as dt_json_check(), json-c's reading, does).
 */
#ifndef DT_JSON_H
#define DT_JSON_H

#include <stddef.h>
#include <stdint.h>

#define DT_JSON_MAX_DEPTH 512

/* 0 when s (len bytes) is exactly one JSON value, with white space around
 * it allowed; otherwise -1 and a reason (with the byte offset) in why. */
int dt_json_valid(const char *s, size_t len, char *why, size_t whylen);

/*
 * dt_json_check: len bytes are exactly one JSON value (RFC 8259, strict,
 * valid UTF-8, white space around it allowed, no NUL byte).  0, or
 * DTASK_EINVAL with the reason in err (may be NULL).  With out, the parsed
 * value is stored there (NULL for JSON null; the caller puts it).
 */
struct json_object;
int dt_json_check(const char *s, size_t len, struct json_object **out, char *err,
		  size_t errlen);
/*
 * dt_json_member: in the JSON object text s (len bytes, already known to
 * be valid), the raw bytes of the value of member name (the last one when
 * it occurs twice, as json-c reads it): *val points into s, *vlen bytes.
 * 1 when found, 0 when absent, DTASK_EINVAL if s is not an object.
 */
int dt_json_member(const char *s, size_t len, const char *name, const char **val,
		   size_t *vlen);
/* The same for n names in one pass: vals[i] (NULL when absent) and
 * vlens[i] for names[i]; the number of names found, or DTASK_EINVAL. */
int dt_json_members(const char *s, size_t len, const char *const *names, size_t n,
		    const char **vals, size_t *vlens);

/*
 * dt_json_simple: 1 when s (len bytes) is text that json-c reads exactly
 * as dt_json_valid() and dt_json_member() see it, once dt_json_valid()
 * accepts it: printable ASCII (so no UTF-8 and no control characters),
 * no backslash (so every string is its own bytes), nesting at most
 * DT_JSON_SIMPLE_DEPTH (json-c allows 32), no exponent and no run of more
 * than 18 digits (so every integer fits in 64 bits and no number can
 * overflow).  0 otherwise: such text is read with json-c.  It does not
 * check that s is JSON.
 */
#define DT_JSON_SIMPLE_DEPTH 16
int dt_json_simple(const char *s, size_t len);
/* The members names[0..n) of simple text s (dt_json_simple()) that is a
 * JSON object, as dt_json_members() gives them; -1 when s is not simple,
 * not valid JSON (checked unless known_valid) or not an object: such text
 * is for json-c. */
int dt_json_simple_members(const char *s, size_t len, int known_valid, const char *const *names,
			   size_t n, const char **vals, size_t *vlens);
/* An integer as json-c reads one (digits, maybe a leading minus) from n
 * bytes of simple text (so at most 18 digits): 0 and *out, or -1 when the
 * bytes are anything else (a fraction, a string, ...). */
int dt_json_simple_int(const char *v, size_t n, int64_t *out);

#endif
