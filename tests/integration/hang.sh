#!/bin/sh
# hang.sh - peers that hang without closing their connection (SIGSTOP).
# SPEC 3.3: a task whose worker hangs runs again on another worker within
# health_interval x health_misses + loop_interval (here 300 x 3 + 200 ms;
# the test allows far more and prints what it took); once the hung worker
# runs again its stale copy is fenced and stops.  SPEC 5.3: a hung
# distributor is dropped by the workers while the other distributor,
# whose health they still send and receive, keeps serving them.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 16
watchdog 150

need_built "$DIST" "$TW"
start_cluster
use_count_file

start_dist d1
ok $? "distributor d1 starts"
start_dist d2
ok $? "distributor d2 starts"
BOTH="\"distributors\": [[\"127.0.0.1\", $(dist_port d1)], [\"127.0.0.1\", $(dist_port d2)]]"
conf "$T/tw-a.json" tw-a "\"threads\": 2, $BOTH"
conf "$T/tw-b.json" tw-b "\"threads\": 2, $BOTH"

# running_on ID WORKER ATTEMPT
running_on() {
	[ "$(field "$1" state)" = RUNNING ] && [ "$(field "$1" worker)" = "$2" ] &&
		[ "$(field "$1" attempt)" = "$3" ]
}

spawn tw-a "$TW" -c "$T/tw-a.json" -f
wait_for "tw-a on both distributors" 15 connected "d1 d2" tw-a
ok $? "worker tw-a connects to both distributors"
rcli LPUSH new-task '{"id":"h1","function":"wait","data":{"ms":600000},"clean_end":false}' >/dev/null
wait_for "h1 running on tw-a" 15 running_on h1 tw-a 1
ok $? "task h1 runs on tw-a"
spawn tw-b "$TW" -c "$T/tw-b.json" -f
wait_for "tw-b on both distributors" 15 connected "d1 d2" tw-b
ok $? "worker tw-b connects to both distributors"

# -- a worker hangs under its task
kill -STOP "$(pid_of tw-a)"
t0=$(_dt_now_ms)
wait_for "h1 running on tw-b" 30 running_on h1 tw-b 2
ok $? "h1 runs again on tw-b, at attempt 2, after tw-a hangs ($(ms_since "$t0") ms; bound 1100 ms)"
cat "$T/d1.log" "$T/d2.log" >"$T/dists.log"
like "$T/dists.log" 'worker tw-a: nothing received for [0-9]+ ms .*dropping it' \
	"a distributor dropped the silent worker"
like "$T/dists.log" 'task h1 requeued \(worker tw-a lost\)' "and requeued its task"
is "$(field h1 failures)" 1 "counting one failure"

kill -CONT "$(pid_of tw-a)"
wait_for "tw-a's old copy stops" 30 grep -q '^h1 1 stopped' "$COUNT"
ok $? "once tw-a runs again, its stale copy of h1 stops"
is "$(field h1 worker):$(field h1 attempt):$(field h1 state)" "tw-b:2:RUNNING" \
	"and writes nothing: the record is still tw-b's copy"

# -- a distributor hangs
d2_before=$(wc -l <"$T/d2.log")
kill -STOP "$(pid_of d1)"
wait_log tw-b 'nothing received for [0-9]+ ms .*closing' 30
ok $? "tw-b drops the hung distributor d1"
rcli LPUSH new-task '{"id":"h2","function":"count","clean_end":false}' >/dev/null
wait_for "h2 END" 30 state_is h2 END
ok $? "d2 keeps handing tasks to the workers"
tail -n +$((d2_before + 1)) "$T/d2.log" >"$T/d2-after.log"
unlike "$T/d2-after.log" 'worker tw-[ab]: nothing received' \
	"d2 never found a worker silent while d1 hung"
kill -CONT "$(pid_of d1)"

stop tw-a
stop tw-b
stop d1
stop d2
is "$(sanitizer_reports tw-a tw-b d1 d2)" "" "no sanitizer report in any log"
unlike "$T/tw-a.log" 'task h1 attempt 1 .*(END|written)' "the stale copy never wrote an end"
done_testing
