#!/bin/sh
# killdist.sh - SPEC 3.1 with a distributor killed (SIGKILL) in the middle
# of a drain.  Two distributors race for new-task (claims straight off its
# tail, and takes into inflight-<name>) while three dt-testworkers connected
# to both run 3,000 tasks; d1 is killed once 500 have run, then 200 more are
# pushed.  Every task still ends exactly once: whatever d1 had in
# inflight-d1 is returned by d2 (distributor_timeout), a task d1 claimed but
# never sent is requeued by d2's sweep (task_timeout), and nothing is left
# in any list.  The workers keep running and say they lost d1.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 25
watchdog 300

need_built "$DIST" "$TW"
start_cluster
use_count_file

for d in d1 d2; do
	start_dist "$d"
	ok $? "distributor $d starts"
done
P1=$(dist_port d1)
start_testworkers "d1 d2" tw-1 tw-2 tw-3

# ---------------------------------------------------------------- the kill
N=3000
M=200
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++)
	printf "{\"id\":\"k-%d\",\"function\":\"count\",\"data\":{\"i\":%d},\"clean_end\":false}\n", i, i }' \
	>"$T/many"
push_file "$T/many"
like "$T/many.pipe" "errors: 0, replies: $N" "$N tasks pushed"
some_ran() { [ "$(lines k-)" -ge 500 ]; }
wait_for "500 tasks run" 60 some_ran
ok $? "500 of them ran"
D1=$(pid_of d1)
kill -KILL "$D1"
ran_at_kill=$(lines k-)
diag "d1 killed (pid $D1) after $ran_at_kill tasks ran"
[ "$ran_at_kill" -lt $N ]
ok $? "  in the middle of the drain ($ran_at_kill of $N had run)"
gone() { ! kill -0 "$D1" 2>/dev/null; }
wait_for "d1 gone" 10 gone
ok $? "d1 is gone (SIGKILL)"
# New work after the kill goes through d2 alone.
awk -v m=$M 'BEGIN { for (i = 1; i <= m; i++)
	printf "{\"id\":\"a-%d\",\"function\":\"count\",\"clean_end\":false}\n", i }' >"$T/after"
push_file "$T/after"
like "$T/after.pipe" "errors: 0, replies: $M" "$M more tasks pushed after the kill"

all_done() {
	[ "$(lines k-)" -ge $N ] && [ "$(lines a-)" -ge $M ] &&
		[ "$(rcli SCARD end-task)" -ge $((N + M)) ] && [ "$(rcli SCARD tasks)" = 0 ]
}
wait_for "every task END" 120 all_done
ok $? "all $((N + M)) tasks ran and ended"
is "$(grep -E '^(k|a)-' "$COUNT" | cut -d' ' -f1 | sort | uniq -d | wc -l | tr -d ' ')" 0 \
	"no task ran twice"
is "$(grep -E '^(k|a)-' "$COUNT" | cut -d' ' -f1 | sort -u | wc -l | tr -d ' ')" $((N + M)) \
	"$((N + M)) distinct ids ran"
kept_values state k- >"$T/states"
is "$(cat "$T/states")" "$N END" "all $N kept records are END"
kept_values state a- >"$T/astates"
is "$(cat "$T/astates")" "$M END" "and the $M pushed after the kill"
kept_values distributor a- >"$T/adists"
is "$(cat "$T/adists")" "$M d2" "  all claimed by d2"
is "$(rcli LLEN bad-task)" 0 "bad-task is empty"
wait_for "inflight-d1 returned" 30 nothing_left
ok $? "nothing left in tasks, new-task, inflight-* or queue-*"
diag "$(grep -h -e 'requeued' -e 'in-flight item' "$T/d2.log" | wc -l | tr -d ' ') requeue/return line(s) in d2's log"
for w in tw-1 tw-2 tw-3; do
	grep -q "distributor d1 (127.0.0.1:$P1): connection lost" "$T/$w.log"
	ok $? "worker $w logged the loss of d1"
done

# ---------------------------------------------------------------- end
for w in tw-1 tw-2 tw-3; do
	stop "$w"
	ok $? "worker $w exits 0 on SIGTERM (it outlived d1)"
done
stop d2
ok $? "distributor d2 exits 0 on SIGTERM"
done_testing
