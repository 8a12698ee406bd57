#!/bin/sh
# arrivekill.sh - a task claimed as it arrived (arrive.lua, pipelined behind
# the idle distributor's BLMOVE) by a distributor that dies before it sends
# the run.  d1 waits on the empty queue and is frozen (SIGSTOP) while its
# BLMOVE is blocked in Redis; a task is pushed, and Redis claims it for d1
# all the same (RUNNING, attempt 1, worker tw-1), though d1 cannot send it.
# d1 is killed (SIGKILL).  d2, started afterwards on a port the worker
# already tries, requeues the task once it has been connected to Redis for
# task_timeout (the claim's update is stale and no worker reports the
# task), and the task runs exactly once, at attempt 2.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 15
watchdog 120

need_built "$DIST" "$TW"
start_cluster
use_count_file

start_dist d1
ok $? "distributor d1 starts"
P1=$(dist_port d1)
P2=$("$top_builddir/tests/tools/dt-freeport")
conf "$T/tw-1.json" tw-1 "\"threads\": 4, \"distributors\": [[\"127.0.0.1\", $P1], [\"127.0.0.1\", $P2]]"
spawn tw-1 "$TW" -c "$T/tw-1.json" -f
wait_for "worker-tw-1 UP" 15 worker_up tw-1 && wait_for "d1 knows tw-1" 15 connected d1 tw-1
ok $? "worker tw-1 registers and connects to d1"
D1=$(pid_of d1)

# A first task claimed on arrival loads arrive.lua in Redis (the first
# EVALSHA of a script answers NOSCRIPT, and d1 sends it again as EVAL:
# a frozen d1 could not).
rcli LPUSH new-task '{"id":"warm","function":"count","clean_end":false}' >/dev/null
wait_for "warm END" 15 state_is warm END
ok $? "a first task runs"

# d1's connection blocked in BLMOVE (its queue thread waits on new-task).
blocked() { rcli CLIENT LIST | grep -q 'flags=b .*cmd=blmove'; }
claimed_by_d1() { [ "$(field "$1" state)" = RUNNING ] && [ "$(field "$1" distributor)" = d1 ]; }
# Freeze d1 while it is blocked and push: Redis serves the BLMOVE and runs
# arrive.lua behind it.  Should the BLMOVE time out (500 ms) between the
# check and the push, the task waits in new-task: d1 is thawed, runs it
# the usual way, and the next id is tried.
ID=
try=1
while [ $try -le 5 ]; do
	wait_for "d1 blocked in BLMOVE" 10 blocked || break
	kill -STOP "$D1"
	if blocked; then
		rcli LPUSH new-task "{\"id\":\"arr-$try\",\"function\":\"count\",\"clean_end\":false}" >/dev/null
		if wait_for "arr-$try claimed by d1" 3 claimed_by_d1 "arr-$try"; then
			ID=arr-$try
			break
		fi
	fi
	kill -CONT "$D1"
	try=$((try + 1))
done
[ -n "$ID" ]
ok $? "a task pushed while d1 is frozen is claimed for d1 on arrival (${ID:-none}, try $try)"
is "$(field "$ID" attempt) $(field "$ID" worker)" "1 tw-1" "  RUNNING at attempt 1 for tw-1"
is "$(rcli LLEN new-task) $(rcli LLEN inflight-d1)" "0 0" "  it left new-task and inflight-d1"
kill -KILL "$D1"
kill -CONT "$D1" 2>/dev/null
gone() { ! kill -0 "$D1" 2>/dev/null; }
wait_for "d1 gone" 10 gone
ok $? "d1 is killed before it sent the run"
is "$(lines "$ID ")" 0 "  the task has not run"

conf "$T/d2.json" d2
sed "s/\"port\": 0,/\"port\": $P2,/" "$T/d2.json" >"$T/d2.tmp" && mv "$T/d2.tmp" "$T/d2.json"
spawn d2 "$DIST" -c "$T/d2.json" -f
wait_for "d2 knows tw-1" 20 connected d2 tw-1
ok $? "d2 starts on the port tw-1 tries, and tw-1 connects"
ended() { state_is "$ID" END; }
wait_for "$ID END" 30 ended
ok $? "d2 requeues the task and it ends"
is "$(lines "$ID ")" 1 "it ran exactly once"
is "$(grep "^$ID " "$COUNT" | cut -d' ' -f2)" 2 "  at attempt 2"
is "$(field "$ID" distributor)" d2 "  claimed again by d2"
check "nothing left in tasks, new-task, inflight-* or queue-*" nothing_left
is "$(sanitizer_reports d2 tw-1)" "" "no sanitizer report"
done_testing
