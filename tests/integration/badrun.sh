#!/bin/sh
# badrun.sh - a real dtask-worker against bad "run" lines on the wire.  A
# fake distributor (dt-linktest distributor, real TLS on loopback) answers
# the worker's hello, then sends good runs around malformed ones: broken
# JSON, a non-object, an unknown type, invalid UTF-8, a run without a
# valid id or attempt, and runs whose task is missing, not an object, for
# another id or function, breaks an item rule, has no id, or names a
# function the worker lacks.  Each bad line gets an "error" or a "reject"
# with its reason (PROTOCOL.md), the worker logs it, keeps the link and
# runs the good ones.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 27
watchdog 120

LT=$top_builddir/tests/tools/dt-linktest
need_built "$WORKER" "$LT"
start_cluster

# The lines, one per line of the file, sent exactly as they are.
cat >"$T/lines" <<'EOF'
{"type":"run","id":"good-1","attempt":1,"function":"noop","task":{"id":"good-1","function":"noop"}}
{"type":"run",
[1,2,3]
{"type":"bogus"}
{"type":"run","id":"r-notask","attempt":1,"function":"noop"}
{"type":"run","id":"r-strtask","attempt":1,"function":"noop","task":"x"}
{"type":"run","id":"r-idmix","attempt":1,"function":"noop","task":{"id":"other","function":"noop"}}
{"type":"run","id":"r-fnmix","attempt":1,"function":"noop","task":{"id":"r-fnmix","function":"echo"}}
{"type":"run","id":"r-member","attempt":1,"function":"noop","task":{"id":"r-member","function":"noop","clean_end":"yes"}}
{"type":"run","id":"r-noid","attempt":1,"function":"noop","task":{"function":"noop"}}
{"type":"run","id":"r-unknown","attempt":1,"function":"nosuch","task":{"id":"r-unknown","function":"nosuch"}}
{"type":"run","id":"r-att0","attempt":0,"function":"noop","task":{"id":"r-att0","function":"noop"}}
{"type":"run","id":"bad id","attempt":1,"function":"noop","task":{"id":"bad id","function":"noop"}}
EOF
printf '{"type":"run","id":"r-utf8","attempt":1,"function":"noop","task":{"id":"r-utf8","function":"noop","data":"\377"}}\n' >>"$T/lines"
echo '{"type":"run","id":"good-2","attempt":1,"function":"noop","task":{"id":"good-2","function":"noop"}}' >>"$T/lines"

conf "$T/fake.json" fake
spawn fake "$LT" distributor -c "$T/fake.json" -p "$T/port" -f "$T/lines"
wait_for "the fake distributor's port file" 15 test -s "$T/port"
ok $? "the fake distributor listens"
P=$(cat "$T/port")

conf "$T/w.json" w1 "\"threads\": 4, \"distributors\": [[\"127.0.0.1\", $P]]"
spawn w1 "$WORKER" -c "$T/w.json" -f
wait_log fake '^hello: .*"name":"w1"' 15
ok $? "the worker connects and says hello"

got() { grep -c "^got: .*$1" "$T/fake.log"; }
all_answered() { [ "$(got '"type":"reject"')" -ge 7 ] && [ "$(got '"type":"error"')" -ge 6 ]; }
wait_for "7 rejects and 6 errors" 20 all_answered
ok $? "every bad line is answered"

# reject ID REASON: one reject for ID, with that reason.
reject() {
	is "$(grep '^got: .*"type":"reject"' "$T/fake.log" | grep -c "\"id\":\"$1\".*\"reason\":\"$2\"")" 1 \
		"$1: rejected, reason \"$2\""
}
for id in r-notask r-strtask r-idmix r-fnmix r-member r-noid; do
	reject "$id" "invalid task"
done
reject r-unknown "unknown function"
is "$(got '"type":"reject"')" 7 "no other reject"

# error TEXT: an "error" whose message says TEXT.
error() {
	is "$(grep '^got: .*"type":"error"' "$T/fake.log" | grep -c -- "$1")" "${2:-1}" "error: $1"
}
error 'malformed message: not valid JSON (truncated'
error 'malformed message: not valid JSON (invalid utf-8'
error 'a message must be a JSON object with a string \\"type\\"'
error 'unknown message type \\"bogus\\"'
error 'run: needs a valid \\"id\\", an integer \\"attempt\\" >= 1' 2
is "$(got '"type":"error"')" 6 "no other error"

started() { grep '^got: .*"type":"started"' "$T/fake.log" | grep -q "\"$1\""; }
wait_for "good-2 started" 15 started good-2
ok $? "good-2, after every bad line, is taken and started"
started good-1
ok $? "good-1 too"
! grep '^got: .*"type":"started"' "$T/fake.log" | grep -q '"r-'
ok $? "no bad run was started"
ended() { grep '^got: .*"type":"ended"' "$T/fake.log" | grep -q "\"$1\""; }
wait_for "good-1 and good-2 ended" 15 ended good-1 && ended good-2
ok $? "both good runs end and are reported \"ended\""

like "$T/w1.log" 'run r-member: bad task \("clean_end" must be true or false\): rejected' \
	"the worker logs a bad task with the rule it breaks"
like "$T/w1.log" 'unknown function "nosuch": rejected' "and an unknown function"
check "the worker keeps running" running w1
is "$(grep -c ': connected (' "$T/w1.log" | tr -d ' ')" 1 \
	"the worker kept its one connection (no reconnect)"

stop w1
ok $? "the worker exits 0 on SIGTERM"
stop fake
is "$(sanitizer_reports w1)" "" "no sanitizer report from the worker"
done_testing
