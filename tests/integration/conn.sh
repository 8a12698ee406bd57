#!/bin/sh
# conn.sh - the receive side of the peer link (src/lib/conn.c) on real TLS
# over loopback, no daemons: makes certificates in $T and runs the C TAP
# test tests/unit/test_conn, which holds a record half-sent across a
# receive deadline and checks the link stays in step.  DT_VALGRIND=1 runs
# it under valgrind.
. "$top_srcdir/tests/common.sh"
need_certtool
watchdog 120
gen_certs "$T/tls" || bail_out "cannot make certificates"
DT_TLS_DIR=$T/tls
export DT_TLS_DIR
run_tap_program test_conn
