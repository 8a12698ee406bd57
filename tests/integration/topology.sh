#!/bin/sh
# topology.sh - several distributors and workers at once: two distributors
# (each its own name and port) and three dt-testworkers connected to both
# run 3,000 tasks exactly once, and both distributors claim some of them
# (racing for new-task's tail).
# Then the parked case: a task whose function no connected worker has
# waits in queue-<function> while later tasks of other functions run, and
# runs (once) as soon as a worker with that function connects.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 45
watchdog 300

need_built "$DIST" "$TW"
start_cluster
use_count_file
t_start=$(_dt_now_ms)

# ---------------------------------------------------------------- start
for d in d1 d2; do
	start_dist "$d"
	ok $? "distributor $d starts and logs its port"
done
P1=$(dist_port d1)
P2=$(dist_port d2)
is "$(rcli HGET distributor-d1 port) $(rcli HGET distributor-d2 port)" "$P1 $P2" \
	"distributor-d1 and distributor-d2 have their real ports"
is "$(rcli SMEMBERS distributors | sort | tr '\n' ' ')" "d1 d2 " "both are in the set distributors"

BOTH="\"distributors\": [[\"127.0.0.1\", $P1], [\"127.0.0.1\", $P2]]"
start_testworkers "d1 d2" tw-1 tw-2 tw-3

# ---------------------------------------------------------------- 3,000
N=3000
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++)
	printf "{\"id\":\"t-%d\",\"function\":\"count\",\"data\":{\"i\":%d},\"clean_end\":false}\n", i, i }' \
	>"$T/many"
t0=$(_dt_now_ms)
push_file "$T/many"
like "$T/many.pipe" "errors: 0, replies: $N" "$N tasks pushed"
all_done() {
	[ "$(lines t-)" -ge $N ] && [ "$(rcli SCARD end-task)" -ge $N ] &&
		[ "$(rcli LLEN new-task)" = 0 ] && [ "$(rcli SCARD tasks)" = 0 ]
}
wait_for "$N tasks counted and kept as END" 120 all_done
ok $? "all $N tasks ran and ended"
diag "$N tasks through 2 distributors and 3 workers in $(ms_since "$t0") ms"
is "$(lines t-)" $N "the count file has $N lines"
is "$(grep '^t-' "$COUNT" | cut -d' ' -f1 | sort | uniq -d | wc -l | tr -d ' ')" 0 "no task ran twice"
is "$(grep '^t-' "$COUNT" | cut -d' ' -f1 | sort -u | wc -l | tr -d ' ')" $N "$N distinct ids ran"
kept_values state t- >"$T/states"
is "$(cat "$T/states")" "$N END" "all $N kept records are END"
kept_values distributor t- >"$T/dists"
diag "claims per distributor: $(tr '\n' ' ' <"$T/dists")"
grep -q ' d1$' "$T/dists" && grep -q ' d2$' "$T/dists"
ok $? "both distributors claimed some of them"
is "$(grep -cv ' d[12]$' "$T/dists")" 0 "every record names d1 or d2"
kept_values worker t- >"$T/workers"
diag "runs per worker: $(tr '\n' ' ' <"$T/workers")"
is "$(grep -c ' tw-[123]$' "$T/workers")" 3 "all three workers ran some"
is "$(grep '^t-' "$COUNT" | cut -d' ' -f3 | sort -u | wc -l | tr -d ' ')" 3 \
	"the count file shows three worker processes"
is "$(rcli LLEN bad-task)" 0 "bad-task is empty"
check "nothing left in tasks, new-task, inflight-* or queue-*" nothing_left

# ---------------------------------------------------------------- parked
# Only workers without slowcount from here on.
for w in tw-1 tw-2 tw-3; do
	stop "$w"
	ok $? "worker $w exits 0 on SIGTERM"
done
for w in tw-4 tw-5; do
	conf "$T/$w.json" "$w" "\"threads\": 4, $BOTH"
	spawn "$w" env DT_FUNCTIONS=count "$TW" -c "$T/$w.json" -f
done
for w in tw-4 tw-5; do
	wait_for "worker-$w UP" 15 worker_up "$w" && wait_for "$w on d1 and d2" 15 connected "d1 d2" "$w"
	ok $? "worker $w (count only) registers and connects to both"
done
case $(rcli HGET worker-tw-4 functions) in
*slowcount*) fail "worker-tw-4 lists only count"; diag "$(rcli HGET worker-tw-4 functions)" ;;
*count*) pass "worker-tw-4 lists only count" ;;
*) fail "worker-tw-4 lists only count"; diag "$(rcli HGET worker-tw-4 functions)" ;;
esac

rcli LPUSH new-task '{"id":"slow-1","function":"slowcount","data":{"ms":100},"clean_end":false}' >/dev/null
awk 'BEGIN { for (i = 1; i <= 100; i++)
	printf "{\"id\":\"p-%d\",\"function\":\"count\",\"clean_end\":false}\n", i }' >"$T/after"
push_file "$T/after"
like "$T/after.pipe" "errors: 0, replies: 100" "a slowcount task, then 100 count tasks, pushed"
after_done() { [ "$(lines p-)" -ge 100 ] && [ "$(rcli LLEN new-task)" = 0 ]; }
wait_for "the 100 count tasks" 60 after_done
ok $? "the 100 count tasks pushed after it all ran"
kept_values state p- >"$T/pstates"
is "$(cat "$T/pstates")" "100 END" "and all 100 are END"
is "$(rcli LLEN queue-slowcount)" 1 "the slowcount task waits in queue-slowcount"
cat "$T/d1.log" "$T/d2.log" | grep -q 'parked'
ok $? "a distributor logged the parking"
is "$(lines 'slow-1 ')" 0 "it has not run"
case $(field slow-1 state) in
'' | QUEUED) pass "it is not claimed (state: '$(field slow-1 state)')" ;;
*) fail "it is not claimed"; diag "state: $(field slow-1 state)" ;;
esac

conf "$T/tw-6.json" tw-6 "\"threads\": 4, $BOTH"
spawn tw-6 "$TW" -c "$T/tw-6.json" -f
wait_for "slow-1 END" 30 state_is slow-1 END
ok $? "once a worker with slowcount connects, the parked task ends"
is "$(field slow-1 worker)" tw-6 "it ran on that worker"
is "$(lines 'slow-1 ')" 1 "exactly once"
is "$(rcli LLEN queue-slowcount)" 0 "queue-slowcount is empty"
check "nothing left in tasks, new-task, inflight-* or queue-*" nothing_left

# ---------------------------------------------------------------- end
for w in tw-4 tw-5 tw-6; do
	stop "$w"
	ok $? "worker $w exits 0 on SIGTERM"
done
for d in d1 d2; do
	stop "$d"
	ok $? "distributor $d exits 0 on SIGTERM"
done
# Both raced for new-task's tail (claim.lua "tail") and still ran every
# task once (above); each says how it went when it stops.
grep -h 'queue: .* round trip' "$T/d1.log" "$T/d2.log" >"$T/qstats"
diag "$(cat "$T/qstats")"
is "$(wc -l <"$T/qstats" | tr -d ' ')" 2 "both distributors log their queue figures at stop"
grep -q ' [1-9][0-9]* claimed straight off new-task.s tail' "$T/qstats"
ok $? "tasks were claimed straight off new-task's tail"
is "$(sanitizer_reports d1 d2 tw-1 tw-2 tw-3 tw-4 tw-5 tw-6)" "" "no sanitizer report in any log"
diag "topology.sh took $(ms_since "$t_start") ms"
done_testing
