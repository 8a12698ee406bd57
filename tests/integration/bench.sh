#!/bin/sh
# bench.sh - tests/tools/dtask-bench runs the peers' workloads end to end
# (small sizes): its own redis-server, distributor and two worker units,
# two repetitions; --json carries the medians and each run's A rate and B
# p50/p99; the
# temporary folder and every process it started are gone afterwards; bad
# arguments exit 2.  (A smoke test of the tool: its figures are benchmarks,
# never checked against a speed.)
. "$top_srcdir/tests/common.sh"
need_redis
need_certtool
command -v jq >/dev/null 2>&1 || skip_all "jq not found (install the Debian package jq)"
plan 14
watchdog 240

BENCH=$top_builddir/tests/tools/dtask-bench
[ -x "$BENCH" ] || bail_out "$BENCH is not built (run make)"

# Its temporary folders go under $T, so what it leaves is visible here.
TMPDIR=$T "$BENCH" --reps 2 -n 400 --lat-n 40 --rate 200 --json \
	--redis-server "$REDIS_SERVER" >"$T/out.json" 2>"$T/err"
st=$?
is "$st" 0 "two repetitions of A and B (400 tasks, 40 latencies) exit 0" ||
	diag "$(cat "$T/err")"
j() { jq -e "$1" "$T/out.json" >/dev/null 2>&1; }
j '.reps == 2 and .n == 400 and .b_n == 40'
ok $? "--json: reps, n and the latency count" || diag "$(cat "$T/out.json")"
j '(.a_tasks_per_s_runs | length) == 2 and all(.a_tasks_per_s_runs[]; . > 0) and .a_tasks_per_s > 0'
ok $? "  A: a rate per run and their median"
j '.a_tasks_per_s >= (.a_tasks_per_s_runs | min) and .a_tasks_per_s <= (.a_tasks_per_s_runs | max)'
ok $? "  the median lies between the runs"
j '.enqueue_one_per_s > 0 and .enqueue_batch_per_s > 0 and ([.a_cpu_ms_per_1k.workers, .a_cpu_ms_per_1k.distributor, .a_cpu_ms_per_1k.redis] | all(type == "number" and . >= 0))'
ok $? "  the enqueue rates and the CPU of workers, distributor and Redis"
j '[.a_wakeups_per_task.workers, .a_wakeups_per_task.distributor, .a_wakeups_per_task.redis] | all(type == "number" and . >= 0)'
ok $? "  and their wake-ups per task"
j '(.b_p50_ms_runs | length) == 2 and .b_p50_ms > 0 and .b_p50_ms <= .b_p99_ms and .b_p99_ms <= .b_max_ms'
ok $? "  B: a p50 per run, and p50 <= p99 <= max"
j '.b_hop_p50_ms > 0 and .b_hop_p50_ms <= .b_hop_p99_ms'
ok $? "  B's floor: one idle hop's p50 and p99"
left=$(ls -d "$T"/dtask-bench.* 2>/dev/null | wc -l)
is "$left" 0 "its temporary folder is removed"
if pgrep -f "$T/dtask-bench" >/dev/null 2>&1; then
	fail "no process it started is left"
	diag "$(pgrep -af "$T/dtask-bench")"
else
	pass "no process it started is left"
fi

# The text form: medians with the lowest and highest run.
TMPDIR=$T "$BENCH" --workloads B --reps 2 --lat-n 20 --redis-server "$REDIS_SERVER" \
	>"$T/out.txt" 2>"$T/err"
is "$?" 0 "B alone, as text, exits 0"
like "$T/out.txt" "^Medians of 2 runs" "  it says the figures are medians"
like "$T/out.txt" "^B latency p99: +[0-9.]+ ms +\\([0-9.]+-[0-9.]+\\)" \
	"  each with the lowest and highest run"

"$BENCH" --reps 0 >"$T/out" 2>"$T/err"
st=$?
if [ "$st" = 2 ] && grep -q -- "--reps must be from 1 to 50" "$T/err"; then
	pass "--reps 0: exit 2, saying why"
else
	fail "--reps 0: exit 2, saying why"
	diag "exit $st: $(cat "$T/err")"
fi
done_testing
