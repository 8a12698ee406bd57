#!/bin/sh
# lifecycle.sh - the task life cycle against the real daemons: one
# dtask-distributor, two dt-testworkers (8 slots each) and one stock
# dtask-worker, on a private redis-server and ephemeral loopback ports.
#   (a) 10,000 tasks pushed raw with LPUSH (half in the 2014 format, "data"
#       a string holding JSON) all run exactly once and leave nothing behind;
#   (b) clean_end false keeps an END record (result set, id in end-task);
#   (c) echo's result is its data, verbatim ([] and {} survive);
#   (d) a failing function ends END with its error;
#   (e) malformed items between good ones go to bad-task with a reason that
#       the distributor logs, and the good ones all run;
#   (f) a task without id gets a UUID.
# "Exactly once" is read from the count file the test workers append to;
# "nothing left" from Redis.
# Nothing here hangs a peer, and "every task ran at its first attempt" must
# not depend on a loaded machine never starving a link thread for 900 ms:
# peers are dropped after 5 s of silence (a closed link still at once).
HEALTH_INTERVAL=1000
HEALTH_MISSES=5
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 61
watchdog 400

need_built "$DIST" "$WORKER" "$TW"
start_cluster
use_count_file
t_start=$(_dt_now_ms)

# ---------------------------------------------------------------- start
start_dist d1
ok $? "the distributor starts and logs its port"
P=$(dist_port d1)
is "$(rcli HGET distributor-d1 port)" "$P" "distributor-d1 in Redis has the real port ($P)"

for w in tw-a tw-b; do
	conf "$T/$w.json" "$w" "\"threads\": 8, \"distributors\": [[\"127.0.0.1\", $P]]"
	spawn "$w" "$TW" -c "$T/$w.json" -f
done
conf "$T/stock.json" stock "\"threads\": 2, \"distributors\": [[\"127.0.0.1\", $P]]"
spawn stock "$WORKER" -c "$T/stock.json" -f
for w in tw-a tw-b stock; do
	wait_for "worker-$w UP" 15 worker_up "$w" && wait_for "d1 logs $w" 15 connected d1 "$w"
	ok $? "worker $w registers (worker-$w is UP) and connects"
done

# ---------------------------------------------------------------- (a)
N=10000
LC_ALL=C awk -v n=$N 'BEGIN {
	for (i = 1; i <= n; i++)
		if (i % 2)
			printf "{\"id\":\"c-%d\",\"function\":\"count\",\"data\":{\"i\":%d}}\n", i, i
		else
			printf "{\"id\":\"c-%d\",\"function\":\"count\",\"data\":\"{\\\"i\\\":%d}\"}\n", i, i
}' >"$T/many"
t0=$(_dt_now_ms)
push_file "$T/many"
like "$T/many.pipe" "errors: 0, replies: $N" "$N tasks pushed with one redis-cli --pipe"
t_push=$(ms_since "$t0")

all_counted() {
	[ "$(lines c-)" -ge $N ] && [ "$(rcli LLEN new-task)" = 0 ] && [ "$(rcli SCARD tasks)" = 0 ]
}
wait_for "$N tasks counted, new-task and tasks empty" 120 all_counted
ok $? "all $N tasks ran: new-task and tasks are empty"
t_many=$(ms_since "$t0")
diag "pushed $N in $t_push ms; all ended $t_many ms after the push began"

is "$(lines c-)" $N "the count file has $N lines"
grep '^c-' "$COUNT" | cut -d' ' -f1 | sort | uniq -d >"$T/dups"
is "$(wc -l <"$T/dups" | tr -d ' ')" 0 "no task ran twice" || diag "$(head -n 5 "$T/dups")"
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) print "c-" i }' | sort >"$T/want-ids"
grep '^c-' "$COUNT" | cut -d' ' -f1 | sort -u >"$T/got-ids"
check "the $N distinct ids are exactly those pushed" cmp "$T/want-ids" "$T/got-ids"
is "$(grep '^c-' "$COUNT" | awk '$2 != 1' | wc -l | tr -d ' ')" 0 \
	"every task ran at its first attempt" || {
	diag "$(grep '^c-' "$COUNT" | awk '$2 != 1' | head -n 3)"
	diag "$(grep -h ' warn: \| error: ' "$T"/*.log | head -n 10)"
}
is "$(grep '^c-' "$COUNT" | cut -d' ' -f3 | sort -u | wc -l | tr -d ' ')" 2 \
	"both test workers took a share"
diag "share per worker pid: $(grep '^c-' "$COUNT" | cut -d' ' -f3 | sort | uniq -c | tr '\n' ' ')"
is "$(rcli SCARD tasks)" 0 "SCARD tasks is 0"
is "$(rcli --scan --pattern 'task-*' | wc -l | tr -d ' ')" 0 "no task-* record is left (clean_end)"
is "$(rcli LLEN bad-task)" 0 "bad-task is empty"
is "$(rcli SCARD end-task)" 0 "end-task is empty"
check "nothing left in new-task, inflight-* or queue-*" nothing_left

# ---------------------------------------------------------------- (b)
# Single tasks below are pushed while d1 waits on the empty queue, so that
# arrive.lua claims them as they arrive (checked at the end).
waiting() { rcli CLIENT LIST | grep -q 'flags=b .*cmd=blmove'; }
wait_for "d1 waiting on new-task" 10 waiting
ITEM='{"id":"keep-1","function":"noop","data":{"k":[1,{}]},"clean_end":false}'
rcli LPUSH new-task "$ITEM" >/dev/null
wait_for "keep-1 END" 20 state_is keep-1 END
ok $? "clean_end false: noop's record is kept with state END"
is "$(rcli HEXISTS task-keep-1 result)" 1 "its result is set ($(field keep-1 result))"
case $(field keep-1 end) in
'' | *[!0-9]*) fail "its end time is recorded (ms)" ;;
*) pass "its end time is recorded (ms)" ;;
esac
is "$(rcli SISMEMBER end-task keep-1)" 1 "its id is in end-task"
is "$(rcli SISMEMBER tasks keep-1)" 0 "and no longer in tasks"
is "$(field keep-1 data)" "$ITEM" "the record keeps the task JSON verbatim"
is "$(field keep-1 attempt)" 1 "attempt 1"

# ---------------------------------------------------------------- (c)
rcli LPUSH new-task '{"id":"echo-1","function":"echo","data":{"a":[],"b":{}},"clean_end":false}' >/dev/null
rcli LPUSH new-task '{"id":"echo-2","function":"echo","data":"{\"x\":[1,2],\"y\":{}}","clean_end":false}' >/dev/null
wait_for "echo-1 END" 20 state_is echo-1 END
ok $? "echo ends"
is "$(field echo-1 result)" '{"a":[],"b":{}}' "echo's result is its data, verbatim ([] and {} kept)"
wait_for "echo-2 END" 20 state_is echo-2 END
ok $? "echo with 2014-format data (a string holding JSON) ends"
is "$(field echo-2 result)" '{"x":[1,2],"y":{}}' "its result is the decoded JSON"

# ---------------------------------------------------------------- (d)
wait_for "d1 waiting on new-task" 10 waiting
rcli LPUSH new-task '{"id":"fail-1","function":"fail","data":null,"clean_end":false}' >/dev/null
wait_for "fail-1 END" 20 state_is fail-1 END
ok $? "a failing function ends: state END"
is "$(field fail-1 error)" "deliberate failure" "with its error"
is "$(rcli SISMEMBER end-task fail-1)" 1 "its id is in end-task"
is "$(rcli SISMEMBER tasks fail-1)" 0 "and not in tasks"
is "$(field fail-1 attempt)" 1 "a failure is not retried (attempt 1)"

# ---------------------------------------------------------------- (e)
# Good and bad items alternate; bad ones: not JSON, no function, not an
# object, a bad id.  Each bad one is named by a substring of its item.
rcli LPUSH new-task '{"id":"g-1","function":"count"}' >/dev/null
rcli LPUSH new-task 'this is not json {' >/dev/null
rcli LPUSH new-task '{"id":"g-2","function":"count"}' >/dev/null
rcli LPUSH new-task '{"id":"nofn-1","data":{"x":1}}' >/dev/null
rcli LPUSH new-task '{"id":"g-3","function":"count"}' >/dev/null
rcli LPUSH new-task '[1,2,3]' >/dev/null
rcli LPUSH new-task '{"id":"g-4","function":"count"}' >/dev/null
rcli LPUSH new-task '{"id":"bad id!","function":"count"}' >/dev/null
rcli LPUSH new-task '{"id":"g-5","function":"count"}' >/dev/null

goods_done() { [ "$(lines 'g-[1-5] ')" -ge 5 ] && [ "$(rcli LLEN new-task)" = 0 ]; }
wait_for "the 5 good tasks counted" 20 goods_done
ok $? "the good tasks around the bad ones all ran"
is "$(grep '^g-[1-5] ' "$COUNT" | cut -d' ' -f1 | sort -u | tr '\n' ' ')" "g-1 g-2 g-3 g-4 g-5 " \
	"each good task ran once"
bad_in() { [ "$(rcli LLEN bad-task)" -ge 4 ]; }
wait_for "4 items in bad-task" 10 bad_in
is "$(rcli LLEN bad-task)" 4 "bad-task holds the 4 bad items"
rcli LRANGE bad-task 0 -1 >"$T/bad"
for bad in 'this is not json {' 'nofn-1' '[1,2,3]' 'bad id!'; do
	entry=$(grep -F -- "$bad" "$T/bad" | head -n 1)
	reason=$(printf '%s\n' "$entry" | sed -n 's/^{"reason":"\(\([^"\\]\|\\.\)*\)".*/\1/p' |
		sed 's/\\"/"/g; s/\\\\/\\/g')
	if [ -n "$reason" ]; then
		pass "bad-task: <$bad> with the reason: $reason"
	else
		fail "bad-task: <$bad> with a reason"
		diag "entry: $entry"
	fi
	if [ -n "$reason" ] && grep -F -- "$reason" "$T/d1.log" >/dev/null; then
		pass "the distributor logged it with its reason"
	else
		fail "the distributor logged it with its reason"
		_dt_diag_file "$T/d1.log" 10
	fi
done
is "$(rcli --scan --pattern 'task-g-*' | wc -l | tr -d ' ')" 0 "the good tasks' records are cleaned"
check "the distributor keeps running" running d1

# ---------------------------------------------------------------- (f)
wait_for "d1 waiting on new-task" 10 waiting
rcli LPUSH new-task '{"function":"noop","data":{"tag":"no-id"},"clean_end":false}' >/dev/null
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
uuid_ended() { rcli SMEMBERS end-task | grep -Eq "$UUID_RE"; }
wait_for "an end-task member that is a UUID" 20 uuid_ended
ok $? "a task without id ends under a generated UUID (v4)"
U=$(rcli SMEMBERS end-task | grep -E "$UUID_RE" | head -n 1)
is "$(field "$U" state)" END "task-$U is END"
case $(field "$U" data) in
*'"no-id"'*) pass "its record holds the submitted data" ;;
*) fail "its record holds the submitted data"; diag "data: $(field "$U" data)" ;;
esac
case $(field "$U" data) in
*"\"id\":\"$U\""*) pass "its stored task JSON carries the id" ;;
*) fail "its stored task JSON carries the id"; diag "data: $(field "$U" data)" ;;
esac

# ---------------------------------------------------------------- end
check "nothing left in flight at the end" nothing_left
is "$(rcli SCARD end-task)" 5 "end-task holds exactly the 5 kept records"
for w in tw-a tw-b stock; do
	stop "$w"
	ok $? "worker $w exits 0 on SIGTERM"
done
stop d1
ok $? "the distributor exits 0 on SIGTERM"
# Tasks pushed one at a time to the idle cluster (keep-1, fail-1, the one
# without an id, ...) were claimed by arrive.lua in the wake-up that handed
# them over; the bad items were left for the C check (above).
grep -h 'queue: .* round trip' "$T/d1.log" >"$T/qstats"
diag "$(cat "$T/qstats")"
grep -q ' [1-9][0-9]* claimed as they arrived (0 of them refused here' "$T/qstats"
ok $? "tasks were claimed as they arrived, none refused by the C check after"
for n in d1 tw-a tw-b stock; do
	unlike "$T/$n.log" 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error' \
		"no sanitizer report from $n"
done
diag "lifecycle.sh took $(ms_since "$t_start") ms"
done_testing
