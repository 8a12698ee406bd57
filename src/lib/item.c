/*
 * item.c - checking a queue item and generating task ids.
 *
 * DESIGN
 * Owns the rules a queue item must follow (SPEC section 2) and the one
 * edit the project ever makes to a task's text before claiming it: splicing
 * a generated "id" in after the opening brace.  The text is otherwise kept
 * byte for byte; json-c is used to read it, never to write it back (an
 * encoder would reorder members or, like Lua's cjson, turn [] into {}).
 * No state: any thread may call anything here (gnutls_rnd is thread-safe).
 */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <json-c/json.h>

#include "dtask.h"
#include "item.h"
#include "json.h"
#include "util.h"

#define ITEM_INT_MAX 2147483647LL

int dt_id_valid(const char *id, size_t len)
{
	if (len < 1 || len > DT_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

int dt_uuid4(char out[DT_UUID_LEN + 1])
{
	unsigned char b[16];
	if (gnutls_rnd(GNUTLS_RND_RANDOM, b, sizeof b) != 0)
		return DTASK_EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	/* 8-4-4-4-12 hex digits, by hand: snprintf with 16 conversions cost
	 * more than the rest of a distributor's work on an item. */
	static const char hex[] = "0123456789abcdef";
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return 0;
}

/* An optional member that must be a boolean; *v keeps its default when absent. */
static int get_bool(struct json_object *o, const char *name, int *v, char *why, size_t whylen)
{
	struct json_object *m;
	if (!json_object_object_get_ex(o, name, &m))
		return 0;
	if (!json_object_is_type(m, json_type_boolean))
		return dt_err(why, whylen, DTASK_EINVAL, "\"%s\" must be true or false", name);
	*v = json_object_get_boolean(m) ? 1 : 0;
	return 0;
}

/* An optional member that must be an integer in 0..2^31-1. */
static int get_count(struct json_object *o, const char *name, int64_t *v, char *why,
		     size_t whylen)
{
	struct json_object *m;
	if (!json_object_object_get_ex(o, name, &m))
		return 0;
	if (!json_object_is_type(m, json_type_int))
		return dt_err(why, whylen, DTASK_EINVAL, "\"%s\" must be an integer", name);
	int64_t x = json_object_get_int64(m);
	if (x < 0 || x > ITEM_INT_MAX)
		return dt_err(why, whylen, DTASK_EINVAL, "\"%s\" must be between 0 and %lld", name,
			      ITEM_INT_MAX);
	*v = x;
	return 0;
}

static int check_object(struct json_object *o, dt_item *it, char *why, size_t whylen)
{
	struct json_object *m;
	int rc;

	if (!json_object_object_get_ex(o, "function", &m) || !json_object_is_type(m, json_type_string))
		return dt_err(why, whylen, DTASK_EINVAL, "no \"function\" string");
	const char *fn = json_object_get_string(m);
	size_t fnlen = (size_t)json_object_get_string_len(m);
	if (fnlen == 0)
		return dt_err(why, whylen, DTASK_EINVAL, "\"function\" is empty");
	if (strlen(fn) != fnlen)
		return dt_err(why, whylen, DTASK_EINVAL, "\"function\" contains a NUL character");
	it->function = strdup(fn);
	if (!it->function)
		return DTASK_ENOMEM;

	if (json_object_object_get_ex(o, "id", &m)) {
		if (!json_object_is_type(m, json_type_string) ||
		    !dt_id_valid(json_object_get_string(m), (size_t)json_object_get_string_len(m)))
			return dt_err(why, whylen, DTASK_EINVAL,
				      "\"id\" must be a string of 1 to %d characters of [A-Za-z0-9_.:-]",
				      DT_ID_MAX);
		memcpy(it->id, json_object_get_string(m), (size_t)json_object_get_string_len(m) + 1);
	}

	it->clean_end = 1;
	it->state_optional = 0;
	it->attempt = 0;
	it->max_attempts = DT_MAX_ATTEMPTS_DEFAULT;
	if ((rc = get_bool(o, "clean_end", &it->clean_end, why, whylen)) ||
	    (rc = get_bool(o, "state_optional", &it->state_optional, why, whylen)) ||
	    (rc = get_count(o, "attempt", &it->attempt, why, whylen)) ||
	    (rc = get_count(o, "max_attempts", &it->max_attempts, why, whylen)))
		return rc;
	return 0;
}

/* The text to keep: a copy, or a copy with "id":"<uuid>", after the '{'
 * at offset brace. */
static int build_text(const char *json, size_t len, size_t brace, dt_item *it, char *why,
		      size_t whylen)
{
	if (it->id[0]) {
		it->json = malloc(len + 1);
		if (!it->json)
			return DTASK_ENOMEM;
		memcpy(it->json, json, len);
		it->json[len] = '\0';
		it->len = len;
		return 0;
	}

	char uuid[DT_UUID_LEN + 1];
	if (dt_uuid4(uuid))
		return dt_err(why, whylen, DTASK_EIO, "no random bytes for a task id");
	size_t head = brace + 1;
	char ins[DT_UUID_LEN + 16];
	memcpy(ins, "\"id\":\"", 6);
	memcpy(ins + 6, uuid, DT_UUID_LEN);
	memcpy(ins + 6 + DT_UUID_LEN, "\",", 2);
	size_t inslen = DT_UUID_LEN + 8;
	it->json = malloc(len + inslen + 1);
	if (!it->json)
		return DTASK_ENOMEM;
	memcpy(it->json, json, head);
	memcpy(it->json + head, ins, inslen);
	memcpy(it->json + head + inslen, json + head, len - head);
	it->len = len + inslen;
	it->json[it->len] = '\0';
	memcpy(it->id, uuid, sizeof uuid);
	it->id_generated = 1;
	return 0;
}

/* Members in simple text (raw: the value's bytes, NULL when absent).  A
 * string has no escapes there: 1 and its bytes, 0 absent, -1 another
 * type. */
static int simple_str(const char *raw, size_t rlen, const char **v, size_t *vlen)
{
	if (!raw)
		return 0;
	if (rlen < 2 || raw[0] != '"')
		return -1;
	*v = raw + 1;
	*vlen = rlen - 2;
	return 1;
}

/* A boolean: 0 (kept *v) absent, 1 read, -1 another type. */
static int simple_bool(const char *raw, size_t rlen, int *v)
{
	if (!raw)
		return 0;
	if (rlen == 4 && !memcmp(raw, "true", 4))
		*v = 1;
	else if (rlen == 5 && !memcmp(raw, "false", 5))
		*v = 0;
	else
		return -1;
	return 1;
}

/* An integer in 0..ITEM_INT_MAX (json-c's int: digits, maybe a minus; at
 * most 18 of them in simple text): 0 absent, 1 read, -1 any other value. */
static int simple_count(const char *raw, size_t rlen, int64_t *v)
{
	if (!raw)
		return 0;
	int64_t x;
	if (dt_json_simple_int(raw, rlen, &x) < 0 || x < 0 || x > ITEM_INT_MAX)
		return -1;
	*v = x;
	return 1;
}

int dt_item_simple(const char *json, size_t len, int known_valid, dt_item *out)
{
	static const char *const names[] = { "function", "id", "clean_end", "state_optional",
					      "attempt", "max_attempts" };
	enum { M_FUNCTION, M_ID, M_CLEAN_END, M_STATE_OPTIONAL, M_ATTEMPT, M_MAX_ATTEMPTS, M_N };
	const char *raw[M_N];
	size_t rlen[M_N];
	memset(out, 0, sizeof *out);
	if (dt_json_simple_members(json, len, known_valid, names, M_N, raw, rlen) < 0)
		return 0;
	/* An object: its '{' after the spaces simple text may start with. */
	size_t first = 0;
	while (json[first] == ' ')
		first++;
	const char *fn, *id;
	size_t fnlen, idlen;
	if (simple_str(raw[M_FUNCTION], rlen[M_FUNCTION], &fn, &fnlen) != 1 || fnlen == 0)
		return 0;
	int rid = simple_str(raw[M_ID], rlen[M_ID], &id, &idlen);
	if (rid < 0 || (rid == 1 && !dt_id_valid(id, idlen)))
		return 0;
	out->clean_end = 1;
	out->max_attempts = DT_MAX_ATTEMPTS_DEFAULT;
	if (simple_bool(raw[M_CLEAN_END], rlen[M_CLEAN_END], &out->clean_end) < 0 ||
	    simple_bool(raw[M_STATE_OPTIONAL], rlen[M_STATE_OPTIONAL], &out->state_optional) < 0 ||
	    simple_count(raw[M_ATTEMPT], rlen[M_ATTEMPT], &out->attempt) < 0 ||
	    simple_count(raw[M_MAX_ATTEMPTS], rlen[M_MAX_ATTEMPTS], &out->max_attempts) < 0) {
		memset(out, 0, sizeof *out);
		return 0;
	}
	if (rid == 1) {
		memcpy(out->id, id, idlen);
		out->id[idlen] = '\0';
	}
	char why[64];
	int rc = DTASK_ENOMEM;
	if (!(out->function = malloc(fnlen + 1)) ||
	    (rc = build_text(json, len, first, out, why, sizeof why))) {
		dt_item_free(out);
		return rc;
	}
	memcpy(out->function, fn, fnlen);
	out->function[fnlen] = '\0';
	return 1;
}

int dt_item_parse(const char *json, size_t len, dt_item *out, char *why, size_t whylen)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	if (why && whylen)
		why[0] = '\0';
	if (len == 0)
		return dt_err(why, whylen, DTASK_EINVAL, "empty item");
	if (memchr(json, '\0', len))
		return dt_err(why, whylen, DTASK_EINVAL, "not valid JSON (contains a NUL byte)");
	if (len > (size_t)INT32_MAX)
		return dt_err(why, whylen, DTASK_EINVAL, "item too large");
	rc = dt_item_simple(json, len, 0, out);
	if (rc == 1)
		return 0;
	if (rc < 0)
		return dt_err(why, whylen, rc, rc == DTASK_EIO ? "no random bytes for a task id"
							      : "out of memory");
	size_t first = 0;
	while (first < len && (json[first] == ' ' || json[first] == '\t' || json[first] == '\n' ||
			       json[first] == '\r'))
		first++;
	if (first == len || json[first] != '{')
		return dt_err(why, whylen, DTASK_EINVAL, "not a JSON object");
	char jwhy[96];
	if (dt_json_valid(json, len, jwhy, sizeof jwhy) < 0)
		return dt_err(why, whylen, DTASK_EINVAL, "not valid JSON (%s)", jwhy);

	tok = json_tokener_new();
	if (!tok)
		return DTASK_ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, json, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		rc = dt_err(why, whylen, DTASK_EINVAL, "not valid JSON (truncated)");
		goto fail;
	}
	if (jerr != json_tokener_success || !o) {
		rc = dt_err(why, whylen, DTASK_EINVAL, "not valid JSON (%s at byte %zu)",
			    json_tokener_error_desc(jerr), json_tokener_get_parse_end(tok));
		goto fail;
	}
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (json[i] != ' ' && json[i] != '\t' && json[i] != '\n' && json[i] != '\r') {
			rc = dt_err(why, whylen, DTASK_EINVAL,
				    "not valid JSON (garbage after the value at byte %zu)", i);
			goto fail;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		rc = dt_err(why, whylen, DTASK_EINVAL, "not a JSON object");
		goto fail;
	}
	if ((rc = check_object(o, out, why, whylen)) || (rc = build_text(json, len, first, out, why, whylen)))
		goto fail;
	json_object_put(o);
	json_tokener_free(tok);
	return 0;

fail:
	json_object_put(o);
	json_tokener_free(tok);
	dt_item_free(out);
	return rc;
}

int dt_item_from_object(struct json_object *o, const char *json, size_t len, dt_item *out,
			char *why, size_t whylen)
{
	memset(out, 0, sizeof *out);
	if (why && whylen)
		why[0] = '\0';
	if (!o || !json_object_is_type(o, json_type_object) || len == 0 || json[0] != '{')
		return dt_err(why, whylen, DTASK_EINVAL, "not a JSON object");
	int rc = check_object(o, out, why, whylen);
	if (!rc)
		rc = build_text(json, len, 0, out, why, whylen);
	if (rc)
		dt_item_free(out);
	return rc;
}

void dt_item_free(dt_item *it)
{
	if (!it)
		return;
	free(it->json);
	free(it->function);
	memset(it, 0, sizeof *it);
}
