/*
 * json.c - a strict RFC 8259 syntax check (see json.h).  Recursive
 * descent over the bytes; UTF-8 validity is json-c's job (it runs after).
 */
#include "build-config.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

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
