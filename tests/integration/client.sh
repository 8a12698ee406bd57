#!/bin/sh
# client.sh - the client API (src/lib/client.c) against a private
# redis-server, no daemons: runs the C TAP test tests/unit/test_client, which
# reads REDIS_PORT (and writes its config in $T), and passes its results on
# as this test's own.  DT_VALGRIND=1 runs it under valgrind.
. "$top_srcdir/tests/common.sh"
need_redis
watchdog 180
start_redis || bail_out "cannot start redis-server"
run_tap_program test_client
