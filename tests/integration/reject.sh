#!/bin/sh
# reject.sh - runs a worker rejects go back and run elsewhere.  A
# dt-fakeworker (a real peer over TLS that announces 50 free slots and
# answers every "run" with "reject") and one real dt-testworker share a
# distributor: 200 tasks all run exactly once, on the real worker, none is
# lost and no rejection counts as a failure.  Once with the reason "full",
# once with "unknown function".
. "$top_srcdir/tests/common.sh"
need_redis
need_certtool
plan 35
watchdog 240

DIST=$top_builddir/src/distributor/dtask-distributor
TW=$top_builddir/tests/tools/dt-testworker
FAKE=$top_builddir/tests/tools/dt-fakeworker
for p in "$DIST" "$TW" "$FAKE"; do
	[ -x "$p" ] || bail_out "$p is not built (make check builds it)"
done

gen_certs "$T/tls" || bail_out "cannot make certificates"
start_redis || bail_out "cannot start redis-server"

COUNT=$T/count
: >"$COUNT"
DT_COUNT_FILE=$COUNT
export DT_COUNT_FILE
t_start=$(_dt_now_ms)

conf() { # FILE NAME [EXTRA JSON FIELDS]
	cat >"$1" <<JSON
{"share_key": "abc", "cert": "$T/tls/cert.pem", "key": "$T/tls/key.pem",
 "ca": "$T/tls/ca.pem", "redis": {"host": "127.0.0.1", "port": $REDIS_PORT},
 "host": "127.0.0.1", "port": 0, "name": "$2", "watch_host": "127.0.0.1",
 "loop_interval": 200, "health_interval": 300, "health_misses": 3,
 "task_timeout": 2000, "check_all_interval": 1000, "stop_grace": 2000${3:+, $3}}
JSON
}
dist_port() {
	sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$T/$1.log" | head -n 1
}
worker_up() { [ "$(rcli HGET "worker-$1" state)" = UP ]; }
connected() { grep -q -- "worker $2 connected" "$T/$1.log"; }
lines() { grep -c "^$1" "$COUNT"; }
ms_since() { echo $(($(_dt_now_ms) - $1)); }
push_file() {
	LC_ALL=C awk '{ printf "*3\r\n$5\r\nLPUSH\r\n$8\r\nnew-task\r\n$%d\r\n%s\r\n", length($0), $0 }' \
		"$1" >"$1.resp" &&
		rcli --pipe <"$1.resp" >"$1.pipe" 2>&1
}
nothing_left() {
	[ "$(rcli SCARD tasks)" = 0 ] && [ "$(rcli LLEN new-task)" = 0 ] &&
		[ -z "$(rcli --scan --pattern 'inflight-*' | while read -r k; do
			[ "$(rcli LLEN "$k")" = 0 ] || echo "$k"; done)" ] &&
		[ -z "$(rcli --scan --pattern 'queue-*')" ]
}
kept_values() { # FIELD PREFIX: "count value" per distinct value, kept records
	rcli EVAL "local c, out = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', 'end-task')) do
  if string.sub(id, 1, #ARGV[2]) == ARGV[2] then
    local v = redis.call('HGET', 'task-' .. id, ARGV[1]) or '(none)'
    c[v] = (c[v] or 0) + 1
  end
end
for v, n in pairs(c) do out[#out + 1] = tostring(n) .. ' ' .. v end
table.sort(out)
return out" 0 "$1" "$2"
}

conf "$T/d1.json" d1
spawn d1 "$DIST" -c "$T/d1.json" -f
wait_log d1 'listening on [^ ]+:[0-9]+' 15
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
for n in d1 tw-1 fake-full fake-unknown; do
	grep -Eq 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error' "$T/$n.log" &&
		echo "$n"
done >"$T/sanitized"
is "$(tr '\n' ' ' <"$T/sanitized")" "" "no sanitizer report in any log"
diag "reject.sh took $(ms_since "$t_start") ms"
done_testing
