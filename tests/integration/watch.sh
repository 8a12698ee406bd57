#!/bin/sh
# watch.sh - watchers (SPEC 4, doc/PROTOCOL.md 6.4) against the real
# daemons: stock dtask-workers run exec tasks whose output lines are
# "output" events, and "dtask watch" follows them straight from the worker.
#   (a) a worker publishes its watcher listener's real port;
#   (b) dtask watch --json gets every line, in order, then END: exit 0;
#       a failed task (record cleaned): exit 1, with its error;
#       people's output; an event filter; an unknown id (exit 2);
#   (c) a wrong share_key is refused by the worker (exit 2, logged);
#   (d) a watcher that stops reading (SIGSTOP) is dropped (it fell 8 MiB
#       behind, or a send timed out) and never stalls the task; once
#       running again it sees END;
#   (e) kill -9 of the worker under a watched task: the watch follows the
#       task to the other worker (attempt 2) and sees it to its END.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 29
watchdog 240

need_built "$DIST" "$WORKER" "$DTASK_BIN"
start_cluster

# The programs wait (up to 60 s) for the file go.ID before they print, so
# that a test can let them go once its watcher has subscribed: no event
# is missed for lack of speed.
# tick.sh ID N MS: prints "line 1" .. "line N", one every MS ms.
cat >"$T/tick.sh" <<SH
#!/bin/sh
n=0
while [ ! -e "$T/go.\$1" ] && [ "\$n" -lt 600 ]; do sleep 0.1; n=\$((n + 1)); done
i=1
while [ "\$i" -le "\$2" ]; do
	echo "line \$i"
	i=\$((i + 1))
	sleep "\$(awk -v ms="\$3" 'BEGIN { printf "%.3f", ms / 1000 }')"
done
SH
# spew.sh ID: 300,000 lines at once (about 20 MB of events).
cat >"$T/spew.sh" <<SH
#!/bin/sh
n=0
while [ ! -e "$T/go.\$1" ] && [ "\$n" -lt 600 ]; do sleep 0.1; n=\$((n + 1)); done
exec seq -f "spew line %.0f, long enough to fill a socket buffer soon" 1 300000
SH
# fail.sh ID: one line, then exit status 3.
cat >"$T/fail.sh" <<SH
#!/bin/sh
n=0
while [ ! -e "$T/go.\$1" ] && [ "\$n" -lt 600 ]; do sleep 0.1; n=\$((n + 1)); done
echo "about to fail"
exit 3
SH
chmod +x "$T/tick.sh" "$T/spew.sh" "$T/fail.sh"

start_dist d1
ok $? "distributor d1 starts"
P=$(dist_port d1)
for w in w1 w2; do
	conf "$T/$w.json" "$w" "\"threads\": 2, \"distributors\": [[\"127.0.0.1\", $P]],
 \"exec_allow\": [\"$T/tick.sh\", \"$T/spew.sh\", \"$T/fail.sh\"]"
done
cp "$T/w1.json" "$T/c.json"

spawn w1 "$WORKER" -c "$T/w1.json" -f
wait_for "w1 UP" 15 worker_up w1 && wait_for "d1 logs w1" 15 connected d1 w1
ok $? "worker w1 starts"
wport=$(rcli HGET worker-w1 port)
ok "$([ "${wport:-0}" -gt 0 ] && echo 0 || echo 1)" "worker-w1 has its watcher port ($wport)"
like "$T/w1.log" "watchers connect to 127.0.0.1:$wport" "w1 logs it"

dtask() { "$DTASK_BIN" -c "$T/c.json" "$@"; }
submit_tick() { # ID N MS
	dtask submit exec "{\"argv\":[\"$T/tick.sh\",\"$1\",\"$2\",\"$3\"]}" --id "$1" \
		--keep-end >/dev/null
}
# watch_go NAME ID [ARGS...]: dtask watch ID ARGS in the background as NAME
# (output in $T/NAME.log), let ID go once it subscribed, wait for its exit;
# $st is its status.
watch_go() {
	_n=$1 _id=$2
	shift 2
	spawn "$_n" sh -c "\"\$0\" -c '$T/c.json' watch $_id $* 2>'$T/$_n.err'; echo \"exit \$?\"" "$DTASK_BIN"
	wait_for "$_n subscribed" 30 grep -q "subscribed to task $_id\$" "$T/w1.log" "$T/w2.log"
	: >"$T/go.$_id"
	wait_for "$_n exits" 60 eval "! running $_n"
	st=$(sed -n 's/^exit //p' "$T/$_n.log")
}

# ---------------------------------------------------------------- (b)
submit_tick t1 5 100
wait_for "t1 RUNNING" 15 state_is t1 RUNNING
watch_go t1w t1 --json
grep -v '^exit ' "$T/t1w.log" >"$T/t1.out"
is "$st" 0 "dtask watch t1 --json exits 0 at the end"
is "$(grep -c '"type":"event"' "$T/t1.out")" "$(grep -c '"event":"output"' "$T/t1.out")" \
	"every event is an output event"
got=$(grep -o '"line":"line [0-9]*"' "$T/t1.out" | tr '\n' ' ')
is "$got" '"line":"line 1" "line":"line 2" "line":"line 3" "line":"line 4" "line":"line 5" ' \
	"every line, in order"
is "$(grep -c '"attempt":1,"event":"output","time":[0-9]*,"data":{"line"' "$T/t1.out")" 5 \
	"each with its attempt, name, time and data"
like "$T/t1.out" '"type":"state","id":"t1","attempt":1,"state":"RUNNING"' "a RUNNING state first"
is "$(tail -n 1 "$T/t1.out" | grep -c '"state":"END"')" 1 "and END last"

submit_tick t2 3 100
wait_for "t2 RUNNING" 15 state_is t2 RUNNING
watch_go t2w t2
is "$st" 0 "dtask watch t2 (for people) exits 0"
like "$T/t2w.log" '^-- RUNNING \(attempt 1\)$' "  prints the state"
like "$T/t2w.log" '^[0-9:]+\.[0-9]{3} output \{"line":"line 3"\}$' "  and each event: time, name, data"

submit_tick t3 3 100
wait_for "t3 RUNNING" 15 state_is t3 RUNNING
watch_go t3w t3 progress --json
is "$st:$(grep -c '"type":"event"' "$T/t3w.log"):$(grep -c '"state":"END"' "$T/t3w.log")" "0:0:1" \
	"an event filter (progress): no output events, still the END"
submit_tick t3b 3 100
wait_for "t3b RUNNING" 15 state_is t3b RUNNING
watch_go t3bw t3b output --json
is "$st:$(grep -c '"event":"output"' "$T/t3bw.log")" "0:3" "a filter (output) that keeps them"

dtask watch t3b 'bad name' >"$T/bn.out" 2>"$T/bn.err"
is "$?" 2 "an invalid event name: exit 2"
like "$T/bn.err" 'invalid event name' "  saying so"

# A failed task, its record cleaned at its end (clean_end): exit 1.
dtask submit exec "{\"argv\":[\"$T/fail.sh\",\"ff\"]}" --id ff >/dev/null
wait_for "ff RUNNING" 15 state_is ff RUNNING
watch_go ffw ff
is "$st" 1 "a task that fails: dtask watch exits 1"
like "$T/ffw.log" '^-- END \(attempt 1\): exited with status 3$' "  its END line says why"
like "$T/ffw.err" 'task ff failed: exited with status 3' "  and so does stderr"

dtask watch no-such-task >"$T/u.out" 2>"$T/u.err"
is "$?" 2 "an unknown id: exit 2"
like "$T/u.err" 'no task no-such-task' "  saying so"

# ---------------------------------------------------------------- (c)
sed 's/"share_key": "abc"/"share_key": "wrong"/' "$T/c.json" >"$T/bad.json"
submit_tick t4 2 100
wait_for "t4 RUNNING" 15 state_is t4 RUNNING
"$DTASK_BIN" -c "$T/bad.json" watch t4 >"$T/bad.out" 2>"$T/bad.err"
is "$?" 2 "a watcher with the wrong share_key: exit 2"
like "$T/bad.err" 'share_key|proof|auth' "  with the reason"
: >"$T/go.t4"
wait_for "t4 ends" 30 state_is t4 END

# ---------------------------------------------------------------- (d)
dtask submit exec "{\"argv\":[\"$T/spew.sh\",\"sp\"]}" --id sp --keep-end >/dev/null
wait_for "sp RUNNING" 15 state_is sp RUNNING
spawn spw "$DTASK_BIN" -c "$T/c.json" watch sp --json
wait_for "spw subscribed" 30 grep -q 'subscribed to task sp$' "$T/w1.log"
: >"$T/go.sp"
wait_for "the watcher got events" 15 grep -q '"event":"output"' "$T/spw.log"
kill -STOP "$(pid_of spw)"
t0=$(_dt_now_ms)
wait_for "sp ends while its watcher sleeps" 120 state_is sp END
ok $? "the task ends although its watcher stopped reading ($(ms_since "$t0") ms)"
wait_log w1 'watcher .*: .*dropping it' 15
ok $? "the worker dropped the watcher that did not read"
kill -CONT "$(pid_of spw)"
wait_for "the watcher exits" 30 eval '! running spw'
like "$T/spw.log" '"state":"END"' "once woken it finds the END"

# ---------------------------------------------------------------- (e)
submit_tick f1 40 150
wait_for "f1 RUNNING on w1" 15 eval '[ "$(field f1 worker)" = w1 ] && state_is f1 RUNNING'
spawn w2 "$WORKER" -c "$T/w2.json" -f
wait_for "d1 logs w2" 15 connected d1 w2
spawn fw "$DTASK_BIN" -c "$T/c.json" watch f1 --json
wait_for "fw subscribed" 30 grep -q 'subscribed to task f1$' "$T/w1.log"
: >"$T/go.f1"
wait_for "f1's first lines" 15 grep -q '"attempt":1,"event":"output"' "$T/fw.log"
kill -9 "$(pid_of w1)"
wait_for "the watch follows f1 to w2 and sees its END" 60 grep -q '"state":"END"' "$T/fw.log"
ok $? "after kill -9 of w1, the watch follows f1 to its END"
like "$T/fw.log" '"attempt":2,"event":"output"' "with the events of attempt 2 (on w2)"

stop_all
done_testing
