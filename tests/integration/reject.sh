#!/bin/sh
# reject.sh - runs a worker rejects go back and run elsewhere.  A
# dt-fakeworker (a real peer over TLS that announces 50 free slots and
# answers every "run" with "reject") and one real dt-testworker share a
# distributor: 200 tasks all run exactly once, on the real worker, none is
# lost and no rejection counts as a failure.  Once with the reason "full",
# once with "unknown function".
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 35
watchdog 240

need_built "$DIST" "$TW" "$FAKE"
start_cluster
use_count_file
t_start=$(_dt_now_ms)

start_dist d1
ok $? "the distributor starts"
P=$(dist_port d1)
conf "$T/tw-1.json" tw-1 "\"threads\": 8, \"distributors\": [[\"127.0.0.1\", $P]]"
spawn tw-1 "$TW" -c "$T/tw-1.json" -f
wait_for "worker-tw-1 UP" 15 worker_up tw-1 && wait_for "d1 logs tw-1" 15 connected d1 tw-1
ok $? "the real worker registers and connects"

# round NAME REASON PREFIX: a fake rejecting with REASON, 200 tasks PREFIX-N.
round() {
	_fake=$1 _reason=$2 _p=$3
	spawn "$_fake" "$FAKE" -c "$T/d1.json" -H 127.0.0.1 -P "$P" -n "$_fake" -F count \
		-k 50 -r "$_reason"
	wait_log "$_fake" 'hello from distributor' 15
	ok $? "$_fake ($_reason, 50 free slots) is greeted by the distributor"
	awk -v p="$_p" 'BEGIN { for (i = 1; i <= 200; i++)
		printf "{\"id\":\"%s-%d\",\"function\":\"count\",\"clean_end\":false}\n", p, i }' \
		>"$T/$_p.items"
	_t0=$(_dt_now_ms)
	push_file "$T/$_p.items"
	like "$T/$_p.items.pipe" "errors: 0, replies: 200" "200 tasks pushed"
	_done() { [ "$(lines "$_p-")" -ge 200 ] && [ "$(rcli LLEN new-task)" = 0 ] &&
		[ "$(rcli SCARD tasks)" = 0 ]; }
	wait_for "200 $_p tasks counted" 90 _done
	ok $? "all 200 ran while $_fake rejected ($(ms_since "$_t0") ms)"
	is "$(lines "$_p-")" 200 "200 runs in the count file"
	is "$(grep "^$_p-" "$COUNT" | cut -d' ' -f1 | sort | uniq -d | wc -l | tr -d ' ')" 0 \
		"no task ran twice"
	is "$(grep "^$_p-" "$COUNT" | cut -d' ' -f1 | sort -u | wc -l | tr -d ' ')" 200 \
		"200 distinct tasks ran"
	_rej=$(grep -c "^rejected $_p-" "$T/$_fake.log")
	[ "$_rej" -ge 1 ]
	ok $? "$_fake rejected some runs ($_rej)"
	# Every rejected (id, attempt) ran later at a higher attempt.
	_late=$(awk -v p="^$_p-" '
		FNR == NR { if ($1 == "rejected" && $2 ~ p) rej[$2] = $3; next }
		{ ran[$1] = $2 }
		END { for (id in rej) if (!(id in ran) || ran[id] <= rej[id]) print id }' \
		"$T/$_fake.log" "$COUNT")
	is "$_late" "" "each rejected task ran afterwards, at a later attempt"
	is "$(kept_values state "$_p-")" "200 END" "all 200 records are END"
	_f=$(kept_values failures "$_p-")
	case $_f in
	"200 (none)" | "200 0") pass "a rejection is not counted as a failure" ;;
	*) fail "a rejection is not counted as a failure"; diag "failures: $_f" ;;
	esac
	check "nothing left in tasks, new-task, inflight-* or queue-*" nothing_left
	is "$(rcli LLEN bad-task)" 0 "bad-task is empty"
	like "$T/d1.log" "reject" "the distributor's log shows the rejections"
	check "the distributor keeps running" running d1
	stop "$_fake"
	ok $? "$_fake exits 0 on SIGTERM"
}

round fake-full full r
round fake-unknown "unknown function" u

stop tw-1
ok $? "the worker exits 0 on SIGTERM"
stop d1
ok $? "the distributor exits 0 on SIGTERM"
is "$(sanitizer_reports d1 tw-1 fake-full fake-unknown)" "" "no sanitizer report in any log"
diag "reject.sh took $(ms_since "$t_start") ms"
done_testing
