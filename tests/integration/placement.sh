#!/bin/sh
# placement.sh - where a task claimed as it arrived is sent.  arrive.lua
# claims it for the worker the distributor chose before its wait; when the
# placement rule (most free slots, then lowest load) finds another worker
# exactly as good at arrival, the task still goes to the chosen one, so
# the record needs no second write (arrive.lua "move", one more round trip
# on the way to the task's start).
# Two test workers with equal slots; health_interval is long, so the load
# each reported when it connected (0) stands.  Tasks are pushed one at a
# time while d1 waits on the empty queue, each once the one before ended:
# every placement is a full tie or a clear choice, and no task is moved.
# (Before the fix about half of them were: the worker that ran the last
# task had its slot back by the time the next one arrived.)
HEALTH_INTERVAL=30000
HEALTH_MISSES=3
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 12
watchdog 150

need_built "$DIST" "$TW"
start_cluster
use_count_file

start_dist d1
ok $? "distributor d1 starts"
start_testworkers d1 tw-a tw-b

# d1's queue thread blocked in BLMOVE on new-task.
waiting() { rcli CLIENT LIST | grep -q 'flags=b .*cmd=blmove'; }
N=20
i=1
while [ $i -le $N ]; do
	wait_for "d1 waiting on new-task" 10 waiting || break
	rcli LPUSH new-task "{\"id\":\"p-$i\",\"function\":\"count\",\"clean_end\":false}" \
		>/dev/null
	wait_for "p-$i END" 15 state_is "p-$i" END || break
	i=$((i + 1))
done
is "$((i - 1))" $N "$N tasks pushed one at a time to the idle d1 all ended"
is "$(lines p-)" $N "the count file has one line per task"
is "$(grep '^p-' "$COUNT" | awk '$2 != 1' | wc -l | tr -d ' ')" 0 "each ran at attempt 1"

for w in tw-a tw-b; do
	stop "$w"
	ok $? "worker $w exits 0 on SIGTERM"
done
stop d1
ok $? "d1 exits 0 on SIGTERM"
grep -h 'queue: .* round trip' "$T/d1.log" >"$T/qstats"
diag "$(cat "$T/qstats")"
# A wait that times out just as a task arrives leaves it to the usual claim:
# rare, so at least half of them, not all.
arrived=$(sed -n 's/.* \([0-9][0-9]*\) claimed as they arrived .*/\1/p' "$T/qstats")
ok "$([ "${arrived:-0}" -ge $((N / 2)) ] && echo 0 || echo 1)" \
	"tasks were claimed as they arrived (${arrived:-none} of $N)"
like "$T/qstats" ' 0 given to another worker than planned\)' \
	"none was given to another worker than planned"
is "$(sanitizer_reports d1 tw-a tw-b)" "" "no sanitizer report from d1, tw-a or tw-b"
done_testing
