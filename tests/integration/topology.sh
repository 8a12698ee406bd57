#!/bin/sh
# topology.sh - several distributors and workers at once: two distributors
# (each its own name and port) and three dt-testworkers connected to both
# run 3,000 tasks exactly once, and both distributors claim some of them.
# Then the parked case: a task whose function no connected worker has
# waits in queue-<function> while later tasks of other functions run, and
# runs (once) as soon as a worker with that function connects.
. "$top_srcdir/tests/common.sh"
need_redis
need_certtool
plan 43
watchdog 300

DIST=$top_builddir/src/distributor/dtask-distributor
TW=$top_builddir/tests/tools/dt-testworker
for p in "$DIST" "$TW"; do
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
field() { rcli HGET "task-$1" "$2"; }
state_is() { [ "$(field "$1" state)" = "$2" ]; }
worker_up() { [ "$(rcli HGET "worker-$1" state)" = UP ]; }
# connected WORKER: both distributors logged the worker's connection.
connected() {
	grep -q -- "worker $1 connected" "$T/d1.log" && grep -q -- "worker $1 connected" "$T/d2.log"
}
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
# kept_values FIELD PREFIX: "count value" per distinct FIELD among the kept
# (end-task) records whose id starts with PREFIX, read in one script.
kept_values() {
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

# ---------------------------------------------------------------- start
for d in d1 d2; do
	conf "$T/$d.json" "$d"
	spawn "$d" "$DIST" -c "$T/$d.json" -f
	wait_log "$d" 'listening on [^ ]+:[0-9]+' 15
	ok $? "distributor $d starts and logs its port"
done
P1=$(dist_port d1)
P2=$(dist_port d2)
is "$(rcli HGET distributor-d1 port) $(rcli HGET distributor-d2 port)" "$P1 $P2" \
	"distributor-d1 and distributor-d2 have their real ports"
is "$(rcli SMEMBERS distributors | sort | tr '\n' ' ')" "d1 d2 " "both are in the set distributors"

BOTH="\"distributors\": [[\"127.0.0.1\", $P1], [\"127.0.0.1\", $P2]]"
for w in tw-1 tw-2 tw-3; do
	conf "$T/$w.json" "$w" "\"threads\": 4, $BOTH"
	spawn "$w" "$TW" -c "$T/$w.json" -f
done
for w in tw-1 tw-2 tw-3; do
	wait_for "worker-$w UP" 15 worker_up "$w" && wait_for "$w on d1 and d2" 15 connected "$w"
	ok $? "worker $w registers and connects to both distributors"
done

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
	wait_for "worker-$w UP" 15 worker_up "$w" && wait_for "$w on d1 and d2" 15 connected "$w"
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
for n in d1 d2 tw-1 tw-2 tw-3 tw-4 tw-5 tw-6; do
	grep -Eq 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error' "$T/$n.log" &&
		echo "$n"
done >"$T/sanitized"
is "$(tr '\n' ' ' <"$T/sanitized")" "" "no sanitizer report in any log"
diag "topology.sh took $(ms_since "$t_start") ms"
done_testing
