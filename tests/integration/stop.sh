#!/bin/sh
# stop.sh - stopping tasks: a stop request (what `dtask stop` writes:
# request=stop on the record) stops a running task, which is requeued and
# runs again at the next attempt; a cancel request ends it for good (END,
# error "cancelled", never requeued); SIGTERM on a worker stops its tasks
# within stop_grace, and they run again on another worker, none lost; a
# function that ignores the stop does not keep its worker from exiting
# after stop_grace, is logged, and runs again elsewhere.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 54
watchdog 300

need_built "$DIST" "$TW"
start_cluster
use_count_file
t_start=$(_dt_now_ms)

# running_at ID ATTEMPT [WORKER]: RUNNING with that attempt (on WORKER).
running_at() {
	[ "$(field "$1" state)" = RUNNING ] && [ "$(field "$1" attempt)" = "$2" ] &&
		{ [ -z "${3:-}" ] || [ "$(field "$1" worker)" = "$3" ]; }
}
# heartbeaten ID: RUNNING and refreshed since its claim (its worker has it).
heartbeaten() {
	[ "$(field "$1" state)" = RUNNING ] &&
		[ "$(field "$1" update)" -gt "$(field "$1" start)" ] 2>/dev/null
}
has_line() { grep -qx -- "$1" "$COUNT"; }
# shellcheck disable=SC2046 # TIME answers two lines: seconds, microseconds
redis_ms() { set -- $(rcli TIME); echo $(($1 * 1000 + $2 / 1000)); }
clock_past() { [ "$(redis_ms)" -gt "$1" ]; }
# no_failure ID: the record counts no failure.
no_failure() { case $(field "$1" failures) in '' | 0) return 0 ;; esac; return 1; }
push() { rcli LPUSH new-task "$1" >/dev/null; }

start_dist d1
ok $? "the distributor starts"
P=$(dist_port d1)
ONE="\"distributors\": [[\"127.0.0.1\", $P]]"
conf "$T/tw-a.json" tw-a "\"threads\": 4, $ONE"
spawn tw-a "$TW" -c "$T/tw-a.json" -f
wait_for "worker-tw-a UP" 15 worker_up tw-a && wait_for "d1 logs tw-a" 15 connected d1 tw-a
ok $? "worker tw-a registers and connects"

# ---------------------------------------------------------------- stop
push '{"id":"s-1","function":"wait","clean_end":false}'
wait_for "s-1 RUNNING" 15 heartbeaten s-1
ok $? "a wait task is RUNNING (and heartbeaten by its worker)"
is "$(field s-1 attempt) $(field s-1 worker)" "1 tw-a" "at attempt 1 on tw-a"
rcli HSET task-s-1 request stop >/dev/null
wait_for "s-1 1 stopped" 10 has_line "s-1 1 stopped"
ok $? "request=stop reaches the function (s-1 1 stopped)"
wait_for "s-1 RUNNING at attempt 2" 15 running_at s-1 2
ok $? "the stopped task is requeued and RUNNING again at attempt 2"
is "$(field s-1 request)" "" "the request was cleared when acted on"
check "a stop is not a failure (failures: '$(field s-1 failures)')" no_failure s-1
like "$T/tw-a.log" 'task s-1 .*stop' "the worker logs the stop request"
like "$T/d1.log" 'task s-1 requeued' "the distributor logs the requeue"
wait_for "s-1 heartbeaten at attempt 2" 10 heartbeaten s-1

# ---------------------------------------------------------------- cancel
rcli HSET task-s-1 request cancel >/dev/null
wait_for "s-1 END" 10 state_is s-1 END
ok $? "request=cancel on the second run: END"
is "$(field s-1 error)" cancelled "with error \"cancelled\""
check "its function saw the stop (s-1 2 stopped)" has_line "s-1 2 stopped"

push '{"id":"c-1","function":"wait","clean_end":false}'
wait_for "c-1 RUNNING" 15 heartbeaten c-1
ok $? "another wait task is RUNNING"
rcli HSET task-c-1 request cancel >/dev/null
wait_for "c-1 END" 10 state_is c-1 END
ok $? "request=cancel: END"
is "$(field c-1 error)" cancelled "with error \"cancelled\""
check "its function saw the stop (c-1 1 stopped)" has_line "c-1 1 stopped"
like "$T/tw-a.log" 'task c-1 .*cancel' "the worker logs the cancel"
is "$(rcli SISMEMBER end-task c-1) $(rcli SISMEMBER tasks c-1)" "1 0" "in end-task, not in tasks"

# Never requeued: let task_timeout and two full sweeps pass on Redis's clock.
end=$(field c-1 end)
wait_for "Redis time past c-1's end + 4 s" 15 clock_past $((end + 4000))
is "$(field s-1 state) $(field s-1 attempt)" "END 2" "s-1 stays END at attempt 2 (never requeued)"
is "$(field c-1 state) $(field c-1 attempt)" "END 1" "c-1 stays END at attempt 1 (never requeued)"
is "$(grep -c '^[sc]-1 ' "$COUNT")" 3 "no other run of s-1 or c-1 (3 lines: s-1 1, s-1 2, c-1 1)"
check "nothing left in tasks, new-task, inflight-* or queue-*" nothing_left

# ---------------------------------------------------------------- SIGTERM
for i in 1 2 3 4; do
	push "{\"id\":\"g-$i\",\"function\":\"wait\",\"data\":{\"ms\":600000},\"clean_end\":false}"
done
all_on_a() {
	for i in 1 2 3 4; do
		heartbeaten "g-$i" && [ "$(field "g-$i" worker)" = tw-a ] || return 1
	done
}
wait_for "g-1..4 RUNNING on tw-a" 15 all_on_a
ok $? "4 wait tasks RUNNING on tw-a (its 4 slots)"
conf "$T/tw-b.json" tw-b "\"threads\": 4, $ONE"
spawn tw-b "$TW" -c "$T/tw-b.json" -f
wait_for "worker-tw-b UP" 15 worker_up tw-b
ok $? "worker tw-b registers"
wait_for "d1 knows tw-b" 15 connected d1 tw-b
ok $? "and is connected to the distributor"

t0=$(_dt_now_ms)
stop tw-a 10
st=$?
took=$(ms_since "$t0")
is "$st" 0 "SIGTERM: tw-a exits 0"
[ "$took" -lt 5000 ]
ok $? "within stop_grace (2000 ms) + 3 s: $took ms"
is "$(grep -c '^g-[1-4] 1 stopped$' "$COUNT")" 4 "each of the 4 functions was stopped"
all_on_b() {
	for i in 1 2 3 4; do running_at "g-$i" 2 tw-b || return 1; done
}
wait_for "g-1..4 RUNNING on tw-b at attempt 2" 15 all_on_b
ok $? "all 4 were requeued and run again on tw-b, at attempt 2"
for i in 1 2 3 4; do no_failure "g-$i" || echo "g-$i: $(field "g-$i" failures)"; done >"$T/gf"
is "$(tr '\n' ' ' <"$T/gf")" "" "a clean stop at shutdown counts no failure"
is "$(rcli HGET worker-tw-a state)" DOWN "worker-tw-a is DOWN"
like "$T/tw-a.log" 'SIGTERM' "tw-a logs the SIGTERM"
is "$(grep -oE 'task g-[1-4] requeued' "$T/d1.log" | sort -u | wc -l | tr -d ' ')" 4 \
	"the distributor logs the requeue of each"
is "$(rcli LLEN new-task) $(rcli SCARD tasks)" "0 4" "none lost: the 4 are in tasks, nothing waits"
unlike "$T/tw-a.log" 'did not stop|stuck' "tw-a logs no stuck task"
for i in 1 2 3 4; do rcli HSET "task-g-$i" request cancel >/dev/null; done
all_cancelled() {
	for i in 1 2 3 4; do state_is "g-$i" END || return 1; done
}
wait_for "g-1..4 END" 15 all_cancelled
ok $? "cancelled on tw-b: all 4 END"
is "$(for i in 1 2 3 4; do field "g-$i" error; done | sort -u)" cancelled "all with error \"cancelled\""

# ---------------------------------------------------------------- stubborn
# tw-c has only stubborn and more free slots than tw-b, so it gets the task
# (the worker with the most free slots); stop_grace 1000 ms.
conf_grace "$T/tw-c.json" tw-c 1000 "\"threads\": 8, $ONE"
spawn tw-c env DT_FUNCTIONS=stubborn "$TW" -c "$T/tw-c.json" -f
wait_for "worker-tw-c UP" 15 worker_up tw-c
ok $? "worker tw-c (stubborn only, stop_grace 1000) registers"
wait_for "d1 knows tw-c" 15 connected d1 tw-c
ok $? "and is connected to the distributor"
idle_b() { [ "$(rcli HGET worker-tw-b running)" = 0 ]; }
wait_for "tw-b idle" 10 idle_b
push '{"id":"stub-1","function":"stubborn","data":{"ms":4000},"clean_end":false}'
wait_for "stub-1 started" 15 has_line "stub-1 1 started"
ok $? "the stubborn task starts"
is "$(field stub-1 worker)" tw-c "on tw-c (the most free slots)"
pid_c=$(pid_of tw-c)
t0=$(_dt_now_ms)
stop tw-c 10
st=$?
took=$(ms_since "$t0")
is "$st" 0 "SIGTERM: tw-c exits 0 although its task ignores the stop"
[ "$took" -ge 900 ] && [ "$took" -lt 3500 ]
ok $? "after stop_grace (1000 ms), not after the task: $took ms"
grep 'stub-1' "$T/tw-c.log" | grep -Eiq 'did not stop|stop_grace|stuck|still running'
ok $? "tw-c logs that stub-1 did not stop in time" || _dt_diag_file "$T/tw-c.log" 15
stuck=$(rcli HGET worker-tw-c stuck)
[ "${stuck:-0}" -ge 1 ] 2>/dev/null
ok $? "worker-tw-c counts it as stuck ($stuck)"
on_b() { [ "$(field stub-1 worker)" = tw-b ] && [ "$(field stub-1 attempt)" -ge 2 ]; }
wait_for "stub-1 on tw-b" 15 on_b
ok $? "the task runs again elsewhere (tw-b)"
wait_for "stub-1 END" 15 state_is stub-1 END
ok $? "and ends there"
is "$(grep -E '^stub-1 [0-9]+ [0-9]+$' "$COUNT" | cut -d' ' -f1,3)" "stub-1 $(pid_of tw-b)" \
	"it completed once, on tw-b (never on tw-c, pid $pid_c)"
is "$(field stub-1 attempt)" 2 "no claim was wasted on tw-c while it drained (attempt 2)" ||
	grep 'stub-1' "$T/d1.log" | sed 's/^/#   | /'
diag "stub-1 failures: '$(field stub-1 failures)'"
check "nothing left in tasks, new-task, inflight-* or queue-*" nothing_left

# ---------------------------------------------------------------- end
stop tw-b
ok $? "tw-b exits 0 on SIGTERM"
stop d1
ok $? "the distributor exits 0 on SIGTERM"
is "$(sanitizer_reports d1 tw-a tw-b tw-c)" "" "no sanitizer report in any log"
diag "stop.sh took $(ms_since "$t_start") ms"
done_testing
