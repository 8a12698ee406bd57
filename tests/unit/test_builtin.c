/* test_builtin - the pure parts of the stock worker's built-ins
 * (src/worker/builtin.c): the exec allow-list check, and the UTF-8 clean-up
 * and line cutting of program output. */
#include "build-config.h"

#include <string.h>

#include "builtin.h"
#include "tap.h"

#define PLAN 27

static void test_allow(void)
{
	char *allow[] = { "/usr/bin/convert", "/bin/echo", "/opt/x/run.sh" };
	char err[256];

	err[0] = '\0';
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "/bin/echo", err, sizeof err), DT_EXEC_OK,
	       "a listed path runs");
	is_str(err, "", "no message");
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "/opt/x/run.sh", err, sizeof err),
	       DT_EXEC_OK, "the last entry too");

	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "/bin/ls", err, sizeof err),
	       DT_EXEC_DENIED, "an unlisted path is refused");
	is_str(err, "/bin/ls is not in exec_allow", "PROGRAM is not in exec_allow");
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "/usr/bin/../bin/convert", err, sizeof err),
	       DT_EXEC_DENIED, "another spelling of a listed path is refused");
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "/bin/echo ", err, sizeof err),
	       DT_EXEC_DENIED, "a trailing space is not the same path");
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "/bin/ech", err, sizeof err),
	       DT_EXEC_DENIED, "a prefix of a listed path is refused");
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "/bin/echo/x", err, sizeof err),
	       DT_EXEC_DENIED, "a longer path is refused");

	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "echo", err, sizeof err),
	       DT_EXEC_RELATIVE, "a bare name is refused");
	like_str(err, "echo is not an absolute path", "saying so");
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "bin/echo", err, sizeof err),
	       DT_EXEC_RELATIVE, "a relative path is refused");
	is_int(dt_exec_check(allow, 3, "/etc/dtask.json", "", err, sizeof err),
	       DT_EXEC_RELATIVE, "an empty name is refused");

	is_int(dt_exec_check(NULL, 0, "/etc/dtask.json", "/bin/echo", err, sizeof err),
	       DT_EXEC_DISABLED, "an empty list refuses everything");
	is_str(err, "exec is disabled: exec_allow is empty in /etc/dtask.json",
	       "exec is disabled: exec_allow is empty in CONFIG");
	is_int(dt_exec_check(NULL, 0, "/etc/dtask.json", "echo", err, sizeof err),
	       DT_EXEC_DISABLED, "disabled wins over a relative name");
}

static void test_utf8(void)
{
	char out[64];

	is_int(dt_utf8_clean("plain", 5, out), 5, "ASCII is kept");
	is_str(out, "plain", "as is");
	dt_utf8_clean("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, out);
	is_str(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "valid 2, 3 and 4-byte sequences are kept");
	dt_utf8_clean("a\xff" "b", 3, out);
	is_str(out, "a\xef\xbf\xbd" "b", "an invalid byte becomes U+FFFD");
	dt_utf8_clean("\xc0\xaf", 2, out);
	is_str(out, "\xef\xbf\xbd\xef\xbf\xbd", "an overlong '/' is two replacements");
	dt_utf8_clean("\xed\xa0\x80", 3, out);
	is_str(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate is replaced");
	dt_utf8_clean("x\xe2\x82", 3, out);
	is_str(out, "x\xef\xbf\xbd\xef\xbf\xbd", "a truncated sequence at the end is replaced");
	is_int(dt_utf8_clean("a\0b", 3, out), 3, "a NUL is kept (json-c escapes it)");

	/* "ab" + "é" (2 bytes) + "cd": cut at 3 would split the é. */
	is_int(dt_utf8_cut("ab\xc3\xa9" "cd", 6, 3), 2, "a cut backs up to a sequence start");
	is_int(dt_utf8_cut("abcdef", 6, 3), 3, "ASCII cuts where asked");
	is_int(dt_utf8_cut("abc", 3, 8), 3, "a short line is not cut");
}

int main(void)
{
	tap_plan(PLAN);
	test_allow();
	test_utf8();
	return tap_done(PLAN);
}
