#!/bin/sh
# client.sh - the client API (src/lib/client.c) against a private
# redis-server, no daemons: runs the C TAP test tests/unit/test_client, which
# reads REDIS_PORT (and writes its config in $T), and passes its results on
# as this test's own.
# DT_VALGRIND=1 runs it under valgrind (leaks and errors fail the test).
. "$top_srcdir/tests/common.sh"
need_redis
watchdog 180

start_redis || bail_out "cannot start redis-server"

prog=$top_builddir/tests/unit/test_client
[ -x "$prog" ] || bail_out "$prog is not built (make check builds it)"
if [ -n "${DT_VALGRIND:-}" ]; then
	# Through libtool: $prog may be a wrapper script around .libs/test_client.
	"$top_builddir/libtool" --mode=execute valgrind -q --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=3 \
		"$prog" >"$T/test_client.tap" 2>"$T/test_client.log"
else
	"$prog" >"$T/test_client.tap" 2>"$T/test_client.log"
fi
status=$?

# Re-emit its TAP through common.sh, so the plan, the count and the exit
# trap (which stops redis-server and keeps $T on failure) stay in charge.
while IFS= read -r line; do
	case $line in
	1..*) plan "${line#1..}" ;;
	'not ok '*) ok 1 "${line#not ok * - }" ;;
	'ok '*) ok 0 "${line#ok * - }" ;;
	'Bail out!'*) bail_out "${line#Bail out! }" ;;
	*) echo "$line" ;;
	esac
done <"$T/test_client.tap"
[ "$status" -eq 0 ] || diag "test_client exited with status $status"
[ "$status" -eq 0 ] || exit 1
done_testing
