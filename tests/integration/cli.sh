#!/bin/sh
# cli.sh - the dtask command (src/cli/) against a private redis-server, one
# dtask-distributor and one stock dtask-worker (noop, sleep, echo, exec with
# exec_allow ["/bin/echo"]):
#   submit --wait (result, exit 0; a failed task exits 1 with its error;
#   --keep-end keeps the record, otherwise --wait cleans it; --timeout),
#   list / show / workers (tables and --json), stop (requeued: the attempt
#   grows), requeue, cancel (END, error "cancelled"), unknown ids, bad
#   arguments, an unreachable Redis; watch without an id (watch.sh does
#   the rest of watch).
# JSON output is checked with jq.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
command -v jq >/dev/null 2>&1 || skip_all "jq not found (install the Debian package jq)"
plan 87
watchdog 240

need_built "$DIST" "$WORKER" "$DTASK_BIN"
start_cluster

# running_at ID ATTEMPT: RUNNING with at least that attempt
running_at() { state_is "$1" RUNNING && [ "$(field "$1" attempt)" -ge "$2" ]; }
gone() { [ "$(rcli EXISTS "task-$1")" = 0 ]; }

# dt ARGS...: the command with the test's config; stdout in $T/out, stderr
# in $T/err, the exit status in $st.
dt() {
	"$DTASK_BIN" -c "$T/c.json" "$@" >"$T/out" 2>"$T/err" </dev/null
	st=$?
}
# lines FILE: its number of lines (not cluster.sh's lines PREFIX: cli.sh
# has no count file)
lines() { wc -l <"$1" | tr -d ' '; }
# jqt FILTER: jq -e over $T/out (exit 0 when the filter is true)
jqt() { jq -e "$1" "$T/out" >/dev/null 2>&1; }
# one_line_err WANT DESC: exit 2 and exactly one stderr line matching WANT
err2() {
	if [ "$st" = 2 ] && [ "$(lines "$T/err")" = 1 ] && grep -Eq -- "$1" "$T/err"; then
		pass "$2"
	else
		fail "$2"
		diag "exit $st; stderr: $(cat "$T/err")"
	fi
}

# ---------------------------------------------------------------- start
start_dist d1
ok $? "the distributor starts"
P=$(dist_port d1)
conf "$T/c.json" stock "\"threads\": 2, \"distributors\": [[\"127.0.0.1\", $P]],
 \"exec_allow\": [\"/bin/echo\"]"
spawn stock "$WORKER" -c "$T/c.json" -f
wait_for "worker-stock UP" 15 worker_up stock
ok $? "the stock worker registers"

# ---------------------------------------------------------------- help
dt --version
is "$st $(cat "$T/out")" "0 dtask 0.1.0 (libdtask 0.1.0)" "--version"
dt --help
is "$st" 0 "--help exits 0"
like "$T/out" '^  submit FUNCTION' "--help lists submit"
like "$T/out" '^  watch ID' "--help lists watch"
dt submit --help
[ "$st" = 0 ] && grep -q -- '--keep-end' "$T/out"
ok $? "submit --help"
dt watch
err2 '^dtask: watch: which task' "watch without an ID: exit 2 (watch.sh tests the rest)"

# ---------------------------------------------------------------- submit --wait
dt submit echo '{"a":[1,{}],"s":"x"}' --wait
is "$st" 0 "submit echo --wait exits 0"
is "$(cat "$T/out")" '{"a":[1,{}],"s":"x"}' "  and prints the result (its data, verbatim)"
is "$(rcli SCARD end-task)" 0 "  the kept record was cleaned (end-task empty)"
is "$(rcli --scan --pattern 'task-*' | wc -l | tr -d ' ')" 0 "  no task record left"

dt --json submit echo '[1,2]' --wait --id e-json
is "$st" 0 "--json submit --wait exits 0"
jqt '.id == "e-json" and .state == "END" and .result == "[1,2]" and .attempt == "1"'
ok $? "  prints the END record (id, state, result, attempt)" || diag "$(cat "$T/out")"
check "  cleaned" gone e-json

dt submit exec '{"argv":["/bin/false"]}' --wait --id x-fail
is "$st" 1 "a failed task (exec outside exec_allow) exits 1"
like "$T/err" '^dtask: task x-fail failed: .*exec_allow' "  its error on stderr"
check "  cleaned too" gone x-fail

dt submit exec '{"argv":["/bin/echo","hi"]}' --wait
is "$st" 0 "an allowed exec exits 0"

dt submit noop --id keep-1 --keep-end --wait
is "$st" 0 "submit --keep-end --wait exits 0"
is "$(field keep-1 state)" END "  the END record is kept"
is "$(rcli SISMEMBER end-task keep-1)" 1 "  in end-task"

dt submit sleep '{"ms":5000}' --id slow-1 --wait --timeout 300
err2 'did not end within 300 ms' "--timeout: exit 2, one line"
dt cancel slow-1
is "$st" 0 "  cancel it"
wait_for "slow-1 END" 15 state_is slow-1 END
ok $? "  it ends (its record was kept by --wait)"

# ---------------------------------------------------------------- submit, list, show
dt --json submit noop
is "$st" 0 "--json submit"
jqt '.id | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")'
ok $? "  {\"id\": a UUID}" || diag "$(cat "$T/out")"
dt submit noop --id plain-1
is "$st $(cat "$T/out")" "0 plain-1" "submit prints the id"

dt submit sleep '{"ms":60000}' --id s-1 --keep-end --max-attempts 0
is "$st" 0 "submit a long sleep"
wait_for "s-1 RUNNING" 15 running_at s-1 1
ok $? "  it runs"
is "$(field s-1 max_attempts)" 0 "  --max-attempts 0 reaches the record"

dt list --state RUNNING
is "$st" 0 "list --state RUNNING"
like "$T/out" '^ID +STATE +FUNCTION +ATTEMPT +WORKER +AGE$' "  a table header"
like "$T/out" '^s-1 +RUNNING +sleep +1 +stock +[0-9]+s$' "  s-1 RUNNING sleep 1 stock"
is "$(lines "$T/out")" 2 "  only s-1"
dt list
like "$T/out" '^keep-1 +END +noop +1 +stock +[0-9]+s$' "list shows the kept END record"
dt --json list --state RUNNING
jqt 'length == 1 and .[0].id == "s-1" and .[0].state == "RUNNING" and .[0].worker == "stock"'
ok $? "list --json --state RUNNING" || diag "$(cat "$T/out")"
dt list --json
jqt '[.[].id] == ([.[].id] | sort) and (map(select(.id == "keep-1")) | length == 1)'
ok $? "list --json: sorted by id, with keep-1" || diag "$(cat "$T/out")"

dt show s-1
is "$st" 0 "show"
like "$T/out" '^id: +s-1$' "  id"
like "$T/out" '^state: +RUNNING$' "  state"
like "$T/out" '^update: +[0-9]+ \([0-9]+s ago\)$' "  update with its age"
like "$T/out" '^  +"ms": 60000$' "  data pretty-printed"
dt show --json keep-1
jqt '.id == "keep-1" and .state == "END" and .result == "null" and (.data | fromjson | .clean_end == false)'
ok $? "show --json" || diag "$(cat "$T/out")"

# ---------------------------------------------------------------- workers
dt workers
is "$st" 0 "workers"
like "$T/out" '^NAME +STATE +RUNNING/CAPACITY +LOAD +FUNCTIONS +HOST:PORT +AGE$' "  a table header"
like "$T/out" '^stock +UP +[0-9]+/2 +[0-9.]+ +[a-z,]*sleep[a-z,]* +127\.0\.0\.1:[0-9]+ +[0-9]+s$' \
	"  the stock worker's line"
dt --json workers
jqt 'length == 1 and .[0].name == "stock" and .[0].state == "UP" and .[0].capacity == "2" and (.[0].functions | fromjson | index("echo") != null)'
ok $? "workers --json" || diag "$(cat "$T/out")"

# ---------------------------------------------------------------- stop, requeue, cancel
dt stop s-1
is "$st" 0 "stop s-1"
like "$T/out" 'stop requested' "  says so"
is "$(lines "$T/out")" 1 "  in one line"
wait_for "s-1 running again, attempt 2" 15 running_at s-1 2
ok $? "  it was STOPPED, requeued and runs again (attempt 2)"
is "$(field s-1 failures)" "" "  no failure counted"

dt --json requeue s-1
is "$st" 0 "requeue s-1"
jqt '.id == "s-1" and .action == "requeue"'
ok $? "  --json answer" || diag "$(cat "$T/out")"
wait_for "s-1 running again, attempt 3" 15 running_at s-1 3
ok $? "  it runs again (attempt 3; the old copy was fenced)"
dt stop s-1
dt requeue s-1
# Between STOPPED and the sweep's requeue, or RUNNING again: either is fine.
case $st in 0 | 2) pass "requeue right after a stop answers" ;; *) fail "requeue after stop: $st" ;; esac
wait_for "s-1 running again" 15 running_at s-1 4
ok $? "  and it runs again"

dt cancel s-1
is "$st" 0 "cancel s-1"
like "$T/out" 'cancel' "  says so"
wait_for "s-1 END" 15 state_is s-1 END
ok $? "  it ends"
is "$(field s-1 error)" cancelled "  with error cancelled"
is "$(rcli LLEN new-task)" 0 "  and is not requeued"
dt cancel s-1
err2 "^dtask: task s-1 is END" "cancel again: exit 2, one line"
dt stop keep-1
err2 "^dtask: task keep-1 is END" "stop an END task: exit 2"

# ---------------------------------------------------------------- errors
dt show nope
err2 '^dtask: no task nope$' "show unknown: exit 2, \"dtask: no task nope\""
dt stop nope
err2 '^dtask: no task nope$' "stop unknown: exit 2"
dt cancel nope
err2 '^dtask: no task nope$' "cancel unknown: exit 2"
dt requeue nope
err2 '^dtask: no task nope$' "requeue unknown: exit 2"
dt show 'bad id!'
err2 'invalid task id' "show of a malformed id: exit 2"
dt submit
err2 'no FUNCTION' "submit without FUNCTION: exit 2"
dt submit echo '{'
err2 'not valid JSON' "submit with bad DATA: exit 2"
dt submit echo 1 2
err2 'too many arguments' "submit with too many arguments: exit 2"
dt submit echo --max-attempts x
err2 'max-attempts' "--max-attempts x: exit 2"
dt submit echo --timeout 5
err2 'needs --wait' "--timeout without --wait: exit 2"
dt list --state DONE
err2 'QUEUED, RUNNING, STOPPED or END' "list --state DONE: exit 2"
dt frobnicate
err2 'unknown command' "an unknown command: exit 2"
dt --bogus list
err2 'unknown option' "an unknown option: exit 2"

CLOSED=$("$top_builddir/tests/tools/dt-freeport")
printf '{"redis": {"host": "127.0.0.1", "port": %s}}\n' "$CLOSED" >"$T/closed.json"
"$DTASK_BIN" -c "$T/closed.json" list >"$T/out" 2>"$T/err"
st=$?
err2 "^dtask: cannot reach Redis at 127\\.0\\.0\\.1:$CLOSED: " "Redis unreachable: exit 2, one line naming host:port"
DTASK_CONFIG=$T/closed.json "$DTASK_BIN" workers >"$T/out" 2>"$T/err"
st=$?
err2 "127\\.0\\.0\\.1:$CLOSED" "\$DTASK_CONFIG is read"
"$DTASK_BIN" -c "$T/missing.json" list >"$T/out" 2>"$T/err"
st=$?
err2 "missing\\.json" "a missing config: exit 2, naming it"

# ---------------------------------------------------------------- many
for i in 1 2 3 4 5; do
	dt submit echo "{\"i\":$i}" --id "m-$i" --keep-end || :
done
all_end() {
	"$DTASK_BIN" -c "$T/c.json" --json list --state END >"$T/m.json" 2>/dev/null &&
		[ "$(jq '[.[] | select(.id | startswith("m-"))] | length' "$T/m.json")" = 5 ]
}
wait_for "m-1..m-5 END" 20 all_end
ok $? "5 submitted tasks all end"
is "$(jq -r '[.[] | select(.id | startswith("m-")) | .result] | join(" ")' "$T/m.json")" \
	'{"i":1} {"i":2} {"i":3} {"i":4} {"i":5}' "  each with its result"

# ---------------------------------------------------------------- end
stop stock
ok $? "the worker exits 0 on SIGTERM"
stop d1
ok $? "the distributor exits 0 on SIGTERM"
for n in d1 stock; do
	unlike "$T/$n.log" 'AddressSanitizer|LeakSanitizer|runtime error' "no sanitizer report from $n"
done
done_testing
