/*
 * test_item.c - dt_item_parse(), dt_uuid4(), dt_id_valid(): the checks a
 * queue item passes in C before any script sees it.  No Redis needed.
 */
#include "build-config.h"

#include <string.h>

#include <json-c/json.h>

#include "dtask.h"
#include "item.h"
#include "tap.h"

static int parse(const char *json, dt_item *it, char *why, size_t whylen)
{
	return dt_item_parse(json, strlen(json), it, why, whylen);
}

/* rc of parsing json, and why contains needle. */
static void bad(const char *json, const char *needle)
{
	dt_item it;
	char why[256];
	int rc = parse(json, &it, why, sizeof why);
	is_int(rc, DTASK_EINVAL, "refused: %s", json);
	like_str(why, needle, "  because: %s", why);
	ok(it.json == NULL && it.function == NULL, "  nothing to free");
}

int main(void)
{
	dt_item it;
	char why[256];
	char uuid[DT_UUID_LEN + 1], uuid2[DT_UUID_LEN + 1];

	tap_plan(128);

	/* The 2014 format, kept byte for byte. */
	const char *seed = "{\"id\": \"8c1d\", \"function\": \"resize\", \"data\": {\"w\": 640}, "
			   "\"clean_end\": true, \"state_optional\": false}";
	is_int(parse(seed, &it, why, sizeof why), 0, "seed item parses");
	is_str(it.json, seed, "text kept verbatim");
	is_int(it.len, strlen(seed), "length kept");
	is_str(it.id, "8c1d", "id");
	is_str(it.function, "resize", "function");
	is_int(it.attempt, 0, "attempt defaults to 0");
	is_int(it.clean_end, 1, "clean_end");
	is_int(it.state_optional, 0, "state_optional");
	is_int(it.max_attempts, 5, "max_attempts defaults to 5");
	is_int(it.id_generated, 0, "id not generated");
	dt_item_free(&it);

	/* Options and a requeued item's attempt; [] stays [] (never re-encoded). */
	const char *opts = "{\"function\":\"f\",\"id\":\"a.b:c_d-1\",\"data\":[],\"attempt\":3,"
			   "\"clean_end\":false,\"state_optional\":true,\"max_attempts\":0}  \n";
	is_int(parse(opts, &it, why, sizeof why), 0, "item with every option parses");
	is_str(it.json, opts, "text kept verbatim (trailing white space too)");
	is_int(it.attempt, 3, "attempt");
	is_int(it.clean_end, 0, "clean_end false");
	is_int(it.state_optional, 1, "state_optional true");
	is_int(it.max_attempts, 0, "max_attempts 0 (no limit)");
	dt_item_free(&it);

	/* The last of duplicate members counts (as the requeue splice relies on). */
	is_int(parse("{\"function\":\"f\",\"id\":\"x\",\"attempt\":1,\"attempt\":4}", &it, why,
		     sizeof why), 0, "duplicate members parse");
	is_int(it.attempt, 4, "the last attempt counts");
	dt_item_free(&it);

	/* The 2014 string form of data. */
	is_int(parse("{\"function\":\"f\",\"data\":\"{\\\"w\\\":640}\"}", &it, why, sizeof why), 0,
	       "data as a string holding JSON");
	dt_item_free(&it);

	/* No id: a UUIDv4 spliced in after the '{'. */
	const char *noid = "  {\"function\":\"noop\",\"data\":[1,[]]}";
	is_int(parse(noid, &it, why, sizeof why), 0, "item without id parses");
	is_int(it.id_generated, 1, "id generated");
	is_int(strlen(it.id), 36, "uuid length");
	ok(it.id[14] == '4' && strchr("89ab", it.id[19]) != NULL, "version 4, RFC 4122 variant: %s",
	   it.id);
	{
		char want[256];
		snprintf(want, sizeof want, "  {\"id\":\"%s\",\"function\":\"noop\",\"data\":[1,[]]}",
			 it.id);
		is_str(it.json, want, "id spliced as text after the opening brace");
		is_int(it.len, strlen(want), "length updated");
		struct json_object *o = json_tokener_parse(it.json);
		struct json_object *id = NULL, *data = NULL;
		ok(o && json_object_object_get_ex(o, "id", &id) &&
		   !strcmp(json_object_get_string(id), it.id), "the new text is JSON with that id");
		ok(o && json_object_object_get_ex(o, "data", &data) &&
		   json_object_is_type(data, json_type_array), "data still an array");
		json_object_put(o);
	}
	dt_item_free(&it);
	ok(it.json == NULL && it.function == NULL, "dt_item_free clears");

	/* Bad items: each with a reason. */
	bad("", "empty");
	bad("not json", "not a JSON object");
	bad("[1,2]", "not a JSON object");
	bad("{\"function\":\"f\"", "truncated");
	bad("{\"function\":\"f\"} x", "not valid JSON");
	bad("{\"function\":\"f\",}", "not valid JSON");
	bad("{\"data\":1}", "function");
	bad("{\"function\":\"\"}", "empty");
	bad("{\"function\":7}", "function");
	bad("{\"function\":\"f\",\"id\":\"a b\"}", "\"id\"");
	bad("{\"function\":\"f\",\"id\":\"\"}", "\"id\"");
	bad("{\"function\":\"f\",\"id\":5}", "\"id\"");
	bad("{\"function\":\"f\",\"attempt\":-1}", "\"attempt\"");
	bad("{\"function\":\"f\",\"attempt\":1.5}", "\"attempt\"");
	bad("{\"function\":\"f\",\"clean_end\":\"yes\"}", "\"clean_end\"");
	bad("{\"function\":\"f\",\"max_attempts\":99999999999}", "\"max_attempts\"");

	/* A NUL byte inside the text. */
	{
		const char nul[] = "{\"function\":\"f\"}\0x";
		is_int(dt_item_parse(nul, sizeof nul - 1, &it, why, sizeof why), DTASK_EINVAL,
		       "a NUL byte is refused");
	}

	/* Ids. */
	char longid[DT_ID_MAX + 2];
	memset(longid, 'a', sizeof longid);
	ok(dt_id_valid(longid, DT_ID_MAX), "a 128-char id is valid");
	ok(!dt_id_valid(longid, DT_ID_MAX + 1), "a 129-char id is not");
	ok(!dt_id_valid("a/b", 3), "a slash is not allowed");

	is_int(dt_uuid4(uuid), 0, "dt_uuid4");
	is_int(dt_uuid4(uuid2), 0, "dt_uuid4 again");
	ok(strcmp(uuid, uuid2) != 0, "two UUIDs differ");
	ok(dt_id_valid(uuid, strlen(uuid)), "a UUID is a valid id");
	/* RFC 4122 version 4, lowercase: 8-4-4-4-12, "4" and one of 89ab. */
	int form = 1, varied = 0;
	for (int k = 0; k < 64 && form; k++) {
		char u[DT_UUID_LEN + 1];
		form = dt_uuid4(u) == 0 && strlen(u) == DT_UUID_LEN && u[14] == '4' &&
		       strchr("89ab", u[19]) != NULL;
		for (int i = 0; i < DT_UUID_LEN && form; i++)
			form = (i == 8 || i == 13 || i == 18 || i == 23) ? u[i] == '-'
									: strchr("0123456789abcdef", u[i]) && u[i];
		varied |= u[0] != uuid[0];
	}
	ok(form, "64 UUIDs: 8-4-4-4-12 lowercase hex, version 4, RFC 4122 variant");
	ok(varied, "their first digits vary");

	/* dt_item_from_object(): what the worker reads from a "run" line it
	 * has parsed already: the same verdicts and fields as dt_item_parse. */
	static const char *const same[] = {
		"{\"id\":\"a1\",\"function\":\"f\",\"data\":{\"x\":[1,{}]}}",
		"{\"id\":\"a1\",\"function\":\"f\",\"attempt\":2,\"clean_end\":false,"
		"\"state_optional\":true,\"max_attempts\":0}",
		"{\"id\":\"a1\",\"function\":\"g\",\"function\":\"f\"}",
		"{\"function\":\"f\"}",
		"{\"id\":\"a b\",\"function\":\"f\"}",
		"{\"id\":\"a1\",\"function\":7}",
		"{\"id\":\"a1\",\"function\":\"\"}",
		"{\"id\":\"a1\",\"function\":\"f\\u0000g\"}",
		"{\"id\":\"a1\",\"function\":\"f\",\"attempt\":1.0}",
		"{\"id\":\"a1\",\"function\":\"f\",\"max_attempts\":2147483648}",
		"{\"id\":\"a1\",\"function\":\"f\",\"clean_end\":null}",
	};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		const char *j = same[i];
		dt_item a, b;
		char wa[256], wb[256];
		struct json_tokener *tok = json_tokener_new();
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		struct json_object *o = json_tokener_parse_ex(tok, j, (int)strlen(j));
		int ra = dt_item_parse(j, strlen(j), &a, wa, sizeof wa);
		int rb = dt_item_from_object(o, j, strlen(j), &b, wb, sizeof wb);
		/* Generated ids differ (two UUIDs): the rest must not. */
		int same_fields = ra == rb &&
				  (ra != 0 || ((a.id_generated ? b.id_generated && a.len == b.len
							       : !strcmp(a.json, b.json) &&
									 !strcmp(a.id, b.id)) &&
					       !strcmp(a.function, b.function) &&
					       a.attempt == b.attempt && a.clean_end == b.clean_end &&
					       a.state_optional == b.state_optional &&
					       a.max_attempts == b.max_attempts)) &&
				  (ra == 0 || !strcmp(wa, wb));
		ok(same_fields, "from_object reads it as dt_item_parse does (%s): %s",
		   ra ? wa : "ok", j);
		if (!ra)
			dt_item_free(&a);
		if (!rb)
			dt_item_free(&b);
		json_object_put(o);
		json_tokener_free(tok);
	}
	ok(dt_item_from_object(NULL, "{}", 2, &it, why, sizeof why) == DTASK_EINVAL &&
	   it.json == NULL, "from_object: no object, refused");

	/* dt_item_simple(): the reading without json-c takes the plain items
	 * (1) and leaves the rest (0) to json-c; what it takes, json-c reads
	 * the same, field by field. */
	static const struct {
		const char *j;
		int simple;
	} fast[] = {
		{ "{\"id\":\"a1\",\"function\":\"f\",\"data\":{\"x\":[1,-2.5,true,null,\"s\"]}}", 1 },
		{ "  { \"function\" : \"f\" , \"data\" : [ ] }  ", 1 },
		{ "{\"id\":\"a1\",\"function\":\"f\",\"attempt\":2,\"clean_end\":false,"
		  "\"state_optional\":true,\"max_attempts\":0}", 1 },
		{ "{\"id\":\"a1\",\"function\":\"g\",\"function\":\"f\",\"max_attempts\":-0}", 1 },
		{ "{\"id\":\"a1\",\"function\":\"f\",\"max_attempts\":2147483647}", 1 },
		{ "{\"id\":\"a1\",\"function\":\"f\",\"data\":123456789012345678}", 1 },
		{ "{\"function\":\"f\",\"data\":\"1e5 \\\" x\"}", 0 },
		{ "{\"function\":\"f\",\"data\":1e5}", 0 },
		{ "{\"function\":\"f\",\"data\":1234567890123456789}", 0 },
		{ "{\"function\":\"f\",\"data\":\"\xc3\xa9\"}", 0 },
		{ "{\"function\":\"f\",\"data\":\"\\u00e9\"}", 0 },
		{ "{\"function\":\"f\",\t\"data\":1}", 0 },
		{ "{\"function\":\"f\",\"data\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", 0 },
		{ "{\"function\":\"f\",\"data\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}", 1 },
		{ "{\"id\":\"a b\",\"function\":\"f\"}", 0 },
		{ "{\"id\":\"\",\"function\":\"f\"}", 0 },
		{ "{\"id\":7,\"function\":\"f\"}", 0 },
		{ "{\"function\":\"\"}", 0 },
		{ "{\"function\":7}", 0 },
		{ "{\"function\":\"f\",\"attempt\":1.0}", 0 },
		{ "{\"function\":\"f\",\"attempt\":-1}", 0 },
		{ "{\"function\":\"f\",\"max_attempts\":2147483648}", 0 },
		{ "{\"function\":\"f\",\"clean_end\":null}", 0 },
		{ "{\"function\":\"f\",\"state_optional\":1}", 0 },
		{ "{\"function\":\"f\",}", 0 },
		{ "{\"function\":\"f\"} x", 0 },
		{ "[{\"function\":\"f\"}]", 0 },
		{ "{'function':'f'}", 0 },
		{ "{\"function\":\"f\",\"data\":NaN}", 0 },
		{ "{\"function\":\"f\",\"data\":01}", 0 },
	};
	for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++) {
		const char *j = fast[i].j;
		size_t n = strlen(j);
		dt_item a, b;
		int ra = dt_item_simple(j, n, 0, &a);
		int same_fields = ra == fast[i].simple;
		if (ra == 1) {
			struct json_tokener *tok = json_tokener_new();
			json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
			struct json_object *o = json_tokener_parse_ex(tok, j, (int)n);
			size_t at = 0;
			while (j[at] == ' ')
				at++;
			/* dt_item_from_object() wants the text from its '{'. */
			char wb[256];
			int rb = dt_item_from_object(o, j + at, n - at, &b, wb, sizeof wb);
			same_fields = same_fields && rb == 0 &&
				      (a.id_generated ? b.id_generated
						      : !strcmp(a.id, b.id) && !strcmp(a.json, j)) &&
				      !strcmp(a.function, b.function) && a.attempt == b.attempt &&
				      a.clean_end == b.clean_end &&
				      a.state_optional == b.state_optional &&
				      a.max_attempts == b.max_attempts;
			if (rb == 0)
				dt_item_free(&b);
			dt_item_free(&a);
			json_object_put(o);
			json_tokener_free(tok);
		}
		ok(same_fields, "simple reading %s it%s: %s", ra == 1 ? "takes" : "leaves",
		   ra == 1 ? ", as json-c reads it" : "", j);
	}

	return tap_done(128);
}
