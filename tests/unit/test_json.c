/* test_json - the strict RFC 8259 syntax check (json.c), and that queue
 * items and the configuration refuse what json-c's strict mode lets by. */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "dtask.h"
#include "item.h"
#include "json.h"
#include "tap.h"

static int valid(const char *s)
{
	return dt_json_valid(s, strlen(s), NULL, 0) == 0;
}

/* s with control characters shown as '.', for a TAP description. */
static const char *shown(const char *s)
{
	static char buf[80];
	size_t i;
	for (i = 0; i < sizeof buf - 1 && s[i]; i++)
		buf[i] = (unsigned char)s[i] < 0x20 ? '.' : s[i];
	buf[i] = '\0';
	return buf;
}

int main(void)
{
	static const char *good[] = {
		"{}", "[]", "0", "-0", "1.5e-3", "-12E+4", "\"\"", "\"a\\u00e9\\n\\\"\\\\\\/\"",
		"true", "false", "null", " \t\r\n{ \"a\" : [ 1 , { \"b\" : null } ] } \n",
		"{\"function\":\"f\",\"data\":{\"w\":[],\"h\":{}}}", "\"\xc3\xa9\"",
	};
	static const char *bad[] = {
		"", " ", "{'function':'f'}", "{\"a\":'x'}", "{\"a\":NaN}", "[Infinity]", "[1,]",
		"{\"a\":1,}", "[01]", "[1.]", "[.5]", "[1e]", "[+1]", "\"\\x41\"", "\"a\tb\"",
		"\"unterminated", "{\"a\" 1}", "{a:1}", "[1] [2]", "tru", "nul", "[\"\\u12\"]",
		"{\"a\":1}}", "//c\n{}",
	};
	size_t ng = sizeof good / sizeof *good, nb = sizeof bad / sizeof *bad;
	tap_plan((int)(ng + nb) + 15);

	for (size_t i = 0; i < ng; i++)
		ok(valid(good[i]), "valid: %s", shown(good[i]));
	for (size_t i = 0; i < nb; i++)
		ok(!valid(bad[i]), "refused: %s", shown(bad[i]));

	char why[128];
	dt_json_valid("[1,]", 4, why, sizeof why);
	like_str(why, "at byte 3", "the reason says where");

	/* Nesting is bounded, not a stack overflow. */
	size_t deep = 100000;
	char *d = malloc(2 * deep + 1);
	memset(d, '[', deep);
	memset(d + deep, ']', deep);
	d[2 * deep] = '\0';
	ok(!valid(d), "100000 nested arrays are refused");
	free(d);

	/* Queue items: json-c strict mode accepts these; we do not. */
	dt_item it;
	char ywhy[160];
	const char *q1 = "{'function':'f'}";
	is_int(dt_item_parse(q1, strlen(q1), &it, ywhy, sizeof ywhy), DTASK_EINVAL,
	       "a single-quoted item goes to bad-task");
	like_str(ywhy, "not valid JSON", "as not valid JSON");
	const char *q2 = "{\"function\":\"f\",\"data\":NaN}";
	is_int(dt_item_parse(q2, strlen(q2), &it, ywhy, sizeof ywhy), DTASK_EINVAL,
	       "an item with NaN goes to bad-task");
	const char *q3 = "{\"function\":\"f\",\"data\":[1.5e3,{}]}";
	ok(dt_item_parse(q3, strlen(q3), &it, ywhy, sizeof ywhy) == 0, "a good item parses");
	dt_item_free(&it);

	/* The configuration file too. */
	char path[] = "/tmp/dt-json-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "{\"share_key\": \"abc\",\n 'port': 5000}\n";
	ok(fd >= 0 && write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1),
	   "a config with a single-quoted name");
	close(fd);
	dt_config *c = NULL;
	char err[512];
	if (!ok(dt_config_load(path, &c, err, sizeof err) == DTASK_ECONFIG && strstr(err, "line 2"),
		"is refused, naming the line"))
		tap_diag("%s", err);
	dt_config_free(c);
	unlink(path);

	/* Simple text (read without json-c) and its integers. */
#define SIMPLE(t) dt_json_simple(t, strlen(t))
#define SIMPLE_INT(t) dt_json_simple_int(t, strlen(t), &x)
	ok(SIMPLE("{\"a\":[1,-2.5,\"e1 \\u\"]}") == 0, "a backslash: not simple");
	ok(SIMPLE("{\"a\":\"1e5\",\"b\":[true,false]}") == 1,
	   "\"1e5\" in a string and the literals' e: simple");
	ok(SIMPLE("{\"a\":1e5}") == 0 && SIMPLE("{\"a\":1E5}") == 0,
	   "an exponent: not simple");
	ok(SIMPLE("{\"a\":123456789012345678}") == 1 &&
	   SIMPLE("{\"a\":1234567890123456789}") == 0, "18 digits simple, 19 not");
	ok(SIMPLE("{\"a\":\"\xc3\xa9\"}") == 0 && SIMPLE("{\"a\":\"\t\"}") == 0,
	   "UTF-8 or a control character: not simple");
	int64_t x = 7;
	ok(SIMPLE_INT("0") == 0 && x == 0 && SIMPLE_INT("-0") == 0 &&
	   x == 0 && SIMPLE_INT("-42") == 0 && x == -42 &&
	   SIMPLE_INT("123456789012345678") == 0 && x == 123456789012345678LL,
	   "simple integers read as json-c reads them");
	ok(SIMPLE_INT("") < 0 && SIMPLE_INT("-") < 0 &&
	   SIMPLE_INT("1.0") < 0 && SIMPLE_INT("\"1\"") < 0 &&
	   SIMPLE_INT("1234567890123456789") < 0,
	   "anything else is not one (empty, a lone minus, 1.0, a string, 19 digits)");
	return tap_done((int)(ng + nb) + 15);
}
