#!/bin/sh
# redislost.sh - SPEC 5.4: a worker alone loses Redis (its link to Redis
# goes through dt-proxy, which the test cuts) while its distributor keeps
# Redis.  The worker says "redis_down"; its task that is not
# state_optional is stopped and, with STOPPED unwritable, requeued at once
# by the distributor (fenced) to run on the other worker; its
# state_optional task goes on, its update refreshed by the distributor;
# no run is sent to it meanwhile, and a cancel written in Redis reaches
# its task through the distributor's relayed heartbeat.  Once Redis is back ("redis_up") the
# state_optional task ends normally at its first attempt, the stopped
# copy's late STOPPED is fenced, and nothing ran twice.
# task_timeout is 30 s here, so no requeue can come from staleness.
TASK_TIMEOUT=30000
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 20
watchdog 180

need_built "$DIST" "$TW" "$PROXY"
start_cluster
use_count_file

start_redis_proxy || bail_out "cannot start dt-proxy"

start_dist d1
ok $? "distributor d1 starts (Redis direct)"
P=$(dist_port d1)
# tw-a reaches Redis only through the proxy.
conf_proxied "$T/tw-a.json" tw-a "\"threads\": 3, \"distributors\": [[\"127.0.0.1\", $P]]"
conf "$T/tw-b.json" tw-b "\"threads\": 2, \"distributors\": [[\"127.0.0.1\", $P]]"

running_on() {
	[ "$(field "$1" state)" = RUNNING ] && [ "$(field "$1" worker)" = "$2" ] &&
		[ "$(field "$1" attempt)" = "$3" ]
}

spawn tw-a "$TW" -c "$T/tw-a.json" -f
wait_for "tw-a UP and connected" 15 worker_up tw-a && wait_for "d1 logs tw-a" 15 connected d1 tw-a
ok $? "worker tw-a (Redis through the proxy) registers and connects"
rcli LPUSH new-task '{"id":"ra","function":"wait","data":{"ms":600000},"clean_end":false}' >/dev/null
rcli LPUSH new-task '{"id":"rb","function":"wait","data":{"ms":15000},"clean_end":false,"state_optional":true}' >/dev/null
rcli LPUSH new-task '{"id":"rd","function":"wait","data":{"ms":600000},"clean_end":false,"state_optional":true}' >/dev/null
wait_for "ra, rb and rd on tw-a" 15 eval 'running_on ra tw-a 1 && running_on rb tw-a 1 && running_on rd tw-a 1'
ok $? "ra, rb and rd (both state_optional) run on tw-a"
spawn tw-b "$TW" -c "$T/tw-b.json" -f
wait_for "tw-b connected" 15 connected d1 tw-b
ok $? "worker tw-b (Redis direct) connects"

# -- cut tw-a's Redis
kill -USR1 "$(pid_of proxy)"
wait_log tw-a 'Redis lost: told the distributors' 15
ok $? "tw-a notices, tells its distributor and stops what it must"
wait_log d1 'worker tw-a lost Redis' 15
ok $? "d1 hears redis_down"
wait_for "ra on tw-b at attempt 2" 15 running_on ra tw-b 2
ok $? "ra (not state_optional) runs again on tw-b, at attempt 2"
like "$T/d1.log" 'task ra requeued \(stopped on worker tw-a \(it lost Redis\)\)' \
	"requeued at once on tw-a's report, not for staleness"
like "$COUNT" '^ra 1 stopped' "tw-a's copy of ra stopped"
is "$(field rb state):$(field rb worker):$(field rb attempt)" "RUNNING:tw-a:1" \
	"rb (state_optional) goes on on tw-a"
u1=$(field rb update)
wait_for "rb's update refreshed" 10 eval '[ "$(field rb update)" != "$u1" ]'
ok $? "d1 refreshes rb's update for tw-a ($u1 -> $(field rb update))"
rcli LPUSH new-task '{"id":"rc","function":"count","clean_end":false}' >/dev/null
wait_for "rc ends" 15 state_is rc END
is "$(field rc worker)" tw-b "a new task goes to tw-b, not to tw-a"
unlike "$T/d1.log" 'worker tw-a rejected task rc' "d1 did not even offer it to tw-a"
# A cancel during the outage: d1's relayed heartbeat reads it and tells tw-a.
rcli HSET task-rd request cancel >/dev/null
wait_for "rd ends cancelled" 15 eval '[ "$(field rd state):$(field rd error)" = END:cancelled ]'
ok $? "rd, cancelled while tw-a is cut off, ends END \"cancelled\" at once"
like "$T/d1.log" 'task rd attempt 1: request=cancel: stop sent to worker tw-a' \
	"  through d1, which relays the request to tw-a"

# -- mend
kill -USR2 "$(pid_of proxy)"
wait_log tw-a 'Redis is back: told the distributors' 15
ok $? "tw-a has Redis again and says so"
wait_log d1 'worker tw-a has Redis again' 15
ok $? "d1 hears redis_up"
wait_for "rb ends" 30 state_is rb END
is "$(field rb worker):$(field rb attempt):$(field rb failures)" "tw-a:1:" \
	"rb ended on tw-a at its first attempt, never requeued"
is "$(field ra worker):$(field ra attempt)" "tw-b:2" \
	"ra's stopped copy wrote nothing late: the record is still tw-b's"
unlike "$COUNT" '^rb ' "rb never stopped"

stop_all
done_testing
