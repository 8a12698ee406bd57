/*
 * json.c - JSON text helpers (see json.h): a strict RFC 8259 syntax check
 * (recursive descent over the bytes; UTF-8 validity is json-c's job, it
 * runs after), the full check with json-c, a member scanner that reads an
 * object as json-c does, and the test for text simple enough to read
 * without json-c.
 */
#include "build-config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "dtask.h"
#include "json.h"
#include "util.h"

typedef struct scan {
	const char *s;
	size_t n, i;
	const char *why;
} scan;

static void ws(scan *c)
{
	while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
			       c->s[c->i] == '\r'))
		c->i++;
}

static int fail(scan *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return -1;
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int lit(scan *c, const char *word)
{
	size_t k = strlen(word);
	if (c->n - c->i < k || memcmp(c->s + c->i, word, k) != 0)
		return fail(c, "unexpected character");
	c->i += k;
	return 0;
}

static int string(scan *c)
{
	c->i++; /* the opening quote */
	while (c->i < c->n) {
		unsigned char ch = (unsigned char)c->s[c->i++];
		if (ch == '"')
			return 0;
		if (ch < 0x20)
			return fail(c, "control character in a string");
		if (ch != '\\')
			continue;
		if (c->i >= c->n)
			break;
		ch = (unsigned char)c->s[c->i++];
		if (ch == 'u') {
			for (int k = 0; k < 4; k++, c->i++) {
				char h = c->i < c->n ? c->s[c->i] : 0;
				if (!is_digit(h) && !(h >= 'a' && h <= 'f') && !(h >= 'A' && h <= 'F'))
					return fail(c, "bad \\u escape");
			}
		} else if (!strchr("\"\\/bfnrt", ch) || ch == 0) {
			return fail(c, "bad escape in a string");
		}
	}
	return fail(c, "unterminated string");
}

static int number(scan *c)
{
	if (c->s[c->i] == '-')
		c->i++;
	if (c->i >= c->n || !is_digit(c->s[c->i]))
		return fail(c, "bad number");
	if (c->s[c->i] == '0')
		c->i++;
	else
		while (c->i < c->n && is_digit(c->s[c->i]))
			c->i++;
	if (c->i < c->n && c->s[c->i] == '.') {
		c->i++;
		if (c->i >= c->n || !is_digit(c->s[c->i]))
			return fail(c, "bad number");
		while (c->i < c->n && is_digit(c->s[c->i]))
			c->i++;
	}
	if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
		c->i++;
		if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			c->i++;
		if (c->i >= c->n || !is_digit(c->s[c->i]))
			return fail(c, "bad number");
		while (c->i < c->n && is_digit(c->s[c->i]))
			c->i++;
	}
	return 0;
}

static int value(scan *c, int depth)
{
	ws(c);
	if (c->i >= c->n)
		return fail(c, "unexpected end");
	if (depth > DT_JSON_MAX_DEPTH)
		return fail(c, "nested too deeply");
	char ch = c->s[c->i];
	if (ch == '{' || ch == '[') {
		char close = ch == '{' ? '}' : ']';
		c->i++;
		ws(c);
		if (c->i < c->n && c->s[c->i] == close) {
			c->i++;
			return 0;
		}
		for (;;) {
			if (ch == '{') {
				ws(c);
				if (c->i >= c->n || c->s[c->i] != '"')
					return fail(c, "object member names must be \"strings\"");
				if (string(c) < 0)
					return -1;
				ws(c);
				if (c->i >= c->n || c->s[c->i] != ':')
					return fail(c, "expected ':'");
				c->i++;
			}
			if (value(c, depth + 1) < 0)
				return -1;
			ws(c);
			if (c->i < c->n && c->s[c->i] == ',') {
				c->i++;
				continue;
			}
			if (c->i < c->n && c->s[c->i] == close) {
				c->i++;
				return 0;
			}
			return fail(c, ch == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	if (ch == '"')
		return string(c);
	if (ch == '-' || is_digit(ch))
		return number(c);
	if (ch == 't')
		return lit(c, "true");
	if (ch == 'f')
		return lit(c, "false");
	if (ch == 'n')
		return lit(c, "null");
	return fail(c, "unexpected character");
}

int dt_json_valid(const char *s, size_t len, char *why, size_t whylen)
{
	scan c = { s, len, 0, NULL };
	int rc = value(&c, 0);
	if (rc == 0) {
		ws(&c);
		if (c.i != c.n)
			rc = fail(&c, "text after the value");
	}
	if (rc < 0 && why && whylen) {
		if (c.i >= c.n)
			snprintf(why, whylen, "truncated at byte %zu", c.i);
		else
			snprintf(why, whylen, "%s at byte %zu", c.why, c.i);
	}
	return rc;
}

/* ------------------------------------------------- with json-c, and members */

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int dt_json_check(const char *s, size_t len, json_object **out, char *err, size_t errlen)
{
	if (out)
		*out = NULL;
	if (!s)
		return dt_err(err, errlen, DTASK_EINVAL, "no JSON text");
	if (len > (size_t)INT32_MAX - 1)
		return dt_err(err, errlen, DTASK_EINVAL, "JSON text too large");
	if (memchr(s, '\0', len))
		return dt_err(err, errlen, DTASK_EINVAL, "not valid JSON (contains a NUL byte)");
	char jwhy[96];
	if (dt_json_valid(s, len, jwhy, sizeof jwhy) < 0)
		return dt_err(err, errlen, DTASK_EINVAL, "not valid JSON (%s)", jwhy);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return DTASK_ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, s, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue && end == len) {
		/* A number or literal at the very end: the terminator ends it. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	int rc = 0;
	if (jerr != json_tokener_success) {
		rc = dt_err(err, errlen, DTASK_EINVAL, "not valid JSON (%s)",
			    jerr == json_tokener_continue ? "truncated"
							  : json_tokener_error_desc(jerr));
	} else {
		for (size_t i = end; i < len; i++) {
			if (!is_ws(s[i])) {
				rc = dt_err(err, errlen, DTASK_EINVAL,
					    "not valid JSON (text after the value)");
				break;
			}
		}
	}
	json_tokener_free(tok);
	if (rc < 0 || !out)
		json_object_put(o);
	else
		*out = o;
	return rc;
}

/* Past the string starting at s[i] == '"'; len if unterminated. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return len;
}

/* Past the value starting at s[i] (the text is known to be valid JSON). */
static size_t skip_value(const char *s, size_t len, size_t i)
{
	if (i >= len)
		return len;
	if (s[i] == '"')
		return skip_string(s, len, i);
	if (s[i] == '{' || s[i] == '[') {
		int depth = 0;
		while (i < len) {
			char c = s[i];
			if (c == '"') {
				i = skip_string(s, len, i);
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if (c == '}' || c == ']') {
				if (--depth == 0)
					return i + 1;
			}
			i++;
		}
		return len;
	}
	while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i]))
		i++;
	return i;
}

/* Does the raw key (with its quotes) spell name?  Escapes are decoded,
 * and the name compares as a C string, up to an escaped NUL: json-c keeps
 * object keys that way, so "task\u0000" is its "task" too, and the
 * member found here is the one json-c reads (the last of that name). */
static int key_is(const char *k, size_t klen, const char *name)
{
	size_t nlen = strlen(name);
	if (!memchr(k, '\\', klen))
		return klen == nlen + 2 && memcmp(k + 1, name, nlen) == 0;
	json_object *o = NULL;
	if (dt_json_check(k, klen, &o, NULL, 0) < 0 || !o)
		return 0;
	int eq = json_object_is_type(o, json_type_string) &&
		 strcmp(json_object_get_string(o), name) == 0;
	json_object_put(o);
	return eq;
}

int dt_json_members(const char *s, size_t len, const char *const *names, size_t n,
		    const char **vals, size_t *vlens)
{
	size_t i = 0;
	int found = 0;
	for (size_t m = 0; m < n; m++) {
		vals[m] = NULL;
		vlens[m] = 0;
	}
	while (i < len && is_ws(s[i]))
		i++;
	if (i >= len || s[i] != '{')
		return DTASK_EINVAL;
	i++;
	for (;;) {
		while (i < len && is_ws(s[i]))
			i++;
		if (i >= len)
			return DTASK_EINVAL;
		if (s[i] == '}')
			return found;
		if (s[i] != '"')
			return DTASK_EINVAL;
		size_t k = i;
		i = skip_string(s, len, i);
		size_t klen = i - k;
		while (i < len && is_ws(s[i]))
			i++;
		if (i >= len || s[i] != ':')
			return DTASK_EINVAL;
		i++;
		while (i < len && is_ws(s[i]))
			i++;
		size_t v = i;
		i = skip_value(s, len, i);
		if (i == v)
			return DTASK_EINVAL;
		for (size_t m = 0; m < n; m++) {
			if (key_is(s + k, klen, names[m])) {
				found += !vals[m];
				vals[m] = s + v;
				vlens[m] = i - v;
			}
		}
		while (i < len && is_ws(s[i]))
			i++;
		if (i < len && s[i] == ',')
			i++;
	}
}

int dt_json_member(const char *s, size_t len, const char *name, const char **val,
		   size_t *vlen)
{
	const char *v;
	size_t vl;
	int rc = dt_json_members(s, len, &name, 1, &v, &vl);
	if (rc == 1) {
		*val = v;
		*vlen = vl;
	}
	return rc;
}

/* ------------------------------------------------------------ simple text */

int dt_json_simple(const char *s, size_t len)
{
	int in_string = 0, depth = 0, digits = 0;
	unsigned char prev = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '\\')
			return 0;
		if (in_string) {
			if (c == '"') {
				in_string = 0;
				prev = c;
			}
			continue;
		}
		if (c >= '0' && c <= '9') {
			if (++digits > 18)
				return 0;
		} else {
			digits = 0;
			if (c == '"')
				in_string = 1;
			else if ((c == '{' || c == '[') && ++depth > DT_JSON_SIMPLE_DEPTH)
				return 0;
			else if (c == '}' || c == ']')
				depth--;
			else if ((c == 'e' || c == 'E') && prev >= '0' && prev <= '9')
				return 0; /* an exponent */
		}
		prev = c;
	}
	return 1;
}

int dt_json_simple_members(const char *s, size_t len, int known_valid, const char *const *names,
			   size_t n, const char **vals, size_t *vlens)
{
	if (!dt_json_simple(s, len) || (!known_valid && dt_json_valid(s, len, NULL, 0) < 0))
		return -1;
	int found = dt_json_members(s, len, names, n, vals, vlens);
	return found < 0 ? -1 : found;
}

int dt_json_simple_int(const char *v, size_t n, int64_t *out)
{
	size_t i = n && v[0] == '-';
	if (i == n || n - i > 18)
		return -1;
	int64_t x = 0;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*out = v[0] == '-' ? -x : x;
	return 0;
}
