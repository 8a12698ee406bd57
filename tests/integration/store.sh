#!/bin/sh
# store.sh - the Redis model (src/lib/store.c and src/lib/lua/*.lua) against
# a private redis-server: runs the C TAP test tests/unit/test_store, which
# reads REDIS_PORT, and passes its results on as this test's own.
# DT_VALGRIND=1 runs it under valgrind.
. "$top_srcdir/tests/common.sh"
need_redis
watchdog 180
start_redis || bail_out "cannot start redis-server"
run_tap_program test_store
