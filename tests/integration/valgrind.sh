#!/bin/sh
# valgrind.sh - each daemon, started and stopped cleanly under valgrind,
# frees everything it allocated and makes no memory error: a real
# redis-server, a dtask-distributor and a stock dtask-worker run a task
# end to end, then SIGTERM.  Skipped in sanitizer builds (valgrind cannot
# run ASan/TSan binaries) and without valgrind.
. "$top_srcdir/tests/common.sh"
need_redis
need_certtool
if [ -n "${SAN_CFLAGS:-}" ]; then
	skip_all "a sanitizer build: the sanitizers check it instead"
fi
if ! command -v valgrind >/dev/null 2>&1; then
	skip_all "valgrind not found (install the Debian package valgrind)"
fi
plan 11
watchdog 240

start_redis || bail_out "cannot start redis-server"
gen_certs "$T/tls" || bail_out "cannot make certificates"
DPORT=$("$top_builddir/tests/tools/dt-freeport")
conf() { # FILE NAME
	cat >"$1" <<JSON
{"share_key": "vg-key", "cert": "$T/tls/cert.pem", "key": "$T/tls/key.pem", "ca": "$T/tls/ca.pem",
 "redis": {"host": "127.0.0.1", "port": $REDIS_PORT},
 "host": "127.0.0.1", "port": $DPORT, "distributors": [["127.0.0.1", $DPORT]],
 "name": "$2", "watch_host": "127.0.0.1", "threads": 2, "loop_interval": 200, "health_interval": 500,
 "handshake_timeout": 30000, "stop_grace": 2000}
JSON
}
conf "$T/d.json" vg-d
conf "$T/w.json" vg-w

VG="valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --track-fds=no"
# libtool's wrapper execs valgrind, so spawn's PID is valgrind's.
# shellcheck disable=SC2086 # word splitting of $VG wanted
spawn dist "$top_builddir/libtool" --mode=execute $VG --log-file="$T/vg-dist.txt" \
	"$top_builddir/src/distributor/dtask-distributor" -f -c "$T/d.json"
wait_log dist 'listening on' 60
ok $? "the distributor starts under valgrind"
# shellcheck disable=SC2086
spawn worker "$top_builddir/libtool" --mode=execute $VG --log-file="$T/vg-worker.txt" \
	"$top_builddir/src/worker/dtask-worker" -f -c "$T/w.json"
wait_log worker 'connected' 60
ok $? "the worker connects under valgrind"

rcli LPUSH new-task '{"id": "vg1", "function": "echo", "data": {"a": [1, 2]}, "clean_end": false}' >/dev/null
wait_for "task vg1 END" 60 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET task-vg1 state)\" = END ]"
ok $? "a task runs end to end"
is "$(rcli HGET task-vg1 result)" '{"a": [1, 2]}' "with its result"

# A watcher on a task: the listener, a session, its state messages.
rcli LPUSH new-task '{"id": "vg2", "function": "sleep", "data": {"ms": 3000}, "clean_end": false}' >/dev/null
wait_for "task vg2 RUNNING" 60 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET task-vg2 state)\" = RUNNING ]"
"$top_builddir/src/cli/dtask" -c "$T/w.json" watch vg2 --json >"$T/watch.out" 2>&1
is "$?:$(grep -c '"state":"RUNNING"' "$T/watch.out"):$(grep -c '"state":"END"' "$T/watch.out")" \
	"0:1:1" "a watcher follows a task to its END"

stop worker 60
is $? 0 "the worker exits 0 on SIGTERM"
stop dist 60
is $? 0 "the distributor exits 0 on SIGTERM"

for who in worker dist; do
	f=$T/vg-$who.txt
	like "$f" 'ERROR SUMMARY: 0 errors' "$who: no memory error"
	like "$f" 'in use at exit: 0 bytes in 0 blocks' "$who: nothing left allocated at exit"
done
done_testing
