#!/bin/sh
# redisstart.sh - a worker that starts before it can reach Redis (its link
# to Redis goes through dt-proxy, cut from the start) connects to its
# distributor all the same, with "redis_down":true in its hello
# (PROTOCOL.md).  The distributor sends it no run meanwhile: a task pushed
# then stays in new-task, neither claimed nor offered to it.  Once the
# proxy is mended the worker registers, says "redis_up", and the task runs
# on it once, at its first attempt.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 13
watchdog 120

need_built "$DIST" "$TW" "$PROXY"
start_cluster
use_count_file

start_redis_proxy || bail_out "cannot start dt-proxy"
kill -USR1 "$(pid_of proxy)"
wait_log proxy 'cut' 10
ok $? "the proxy to Redis is cut before the worker starts"

start_dist d1
ok $? "distributor d1 starts (Redis direct)"
P=$(dist_port d1)
conf_proxied "$T/tw-a.json" tw-a "\"threads\": 2, \"distributors\": [[\"127.0.0.1\", $P]]"

spawn tw-a "$TW" -c "$T/tw-a.json" -f
wait_log d1 'worker tw-a connected from .*it has no Redis yet: no runs to it' 15
ok $? "tw-a connects to d1 without Redis, and d1 says it sends it no run"
like "$T/tw-a.log" 'worker tw-a: Redis unreachable' "tw-a logs that it cannot reach Redis"
is "$(rcli EXISTS worker-tw-a)" 0 "tw-a is not registered in Redis"

rcli LPUSH new-task '{"id":"s1","function":"count","clean_end":false}' >/dev/null
# Nothing may happen to s1 until tw-a has Redis.  A wrong distributor
# would claim s1 and send it within milliseconds; a second is ample.
sleep 1
is "$(rcli LRANGE new-task 0 -1)" '{"id":"s1","function":"count","clean_end":false}' \
	"s1 stays in new-task while the only worker has no Redis"
is "$(rcli EXISTS task-s1)" 0 "  it has no record"
is "$(lines s1)" 0 "  and did not run"

kill -USR2 "$(pid_of proxy)"
wait_for "worker-tw-a UP" 15 worker_up tw-a
ok $? "the proxy mended, tw-a registers"
wait_log d1 'worker tw-a has Redis' 15
ok $? "d1 hears redis_up"
wait_for "s1 ends" 15 state_is s1 END
is "$(field s1 worker):$(field s1 attempt)" "tw-a:1" "s1 ran on tw-a at its first attempt"
is "$(lines s1)" 1 "s1 ran once"
unlike "$T/d1.log" 'rejected task s1' "s1 was never offered to tw-a before it had Redis"

stop_all
done_testing
