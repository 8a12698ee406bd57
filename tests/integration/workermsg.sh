#!/bin/sh
# workermsg.sh - a distributor reads the messages a worker sends for every
# batch ("free", "started", "ended") without json-c when they are plain,
# and with json-c otherwise.  A dt-fakeworker sends, after its hello, a
# file of such messages: good ones in both forms (plain, and with escapes,
# which take the json-c reading) and malformed ones.  Each malformed one
# gets its "error" on the same connection, in order, and is logged; the
# good ones get no answer; the connection stays up, and a task pushed
# afterwards is still offered to the fake (which rejects it) and runs
# once on a real worker.
. "$top_srcdir/tests/common.sh"
. "$top_srcdir/tests/cluster.sh"
need_redis
need_certtool
plan 16
watchdog 120

need_built "$DIST" "$TW" "$FAKE"
start_cluster
use_count_file

start_dist d1
ok $? "the distributor starts"
P=$(dist_port d1)

# The last line is an unknown type: its error shows that every line
# before it was read.
cat >"$T/lines" <<'EOF'
{"type":"free","free":3,"seq":1}
{"type":"started","free":3,"seq":2,"tasks":[["a-1",1],["a-2",1]]}
{"type":"ended","free":4,"seq":3,"tasks":[ ["a-1", 1] , ["a-2",1] ]}
{"type":"ended","free":4,"seq":4,"tasks":[]}
{"type":"ended","free":4,"seq":5,"tasks":[["\u0061-3",1]]}
{"type":"started","free":4,"seq":6,"tasks":[["a-1"]]}
{"type":"ended","free":4,"seq":7,"tasks":[["a b",1]]}
{"type":"ended","free":4,"seq":8,"tasks":[["a-1","1"]]}
{"type":"started","free":4,"seq":9,"tasks":5}
{"type":"ended","free":4,"seq":10,"tasks":[["a-1",1,2]]}
{"type":"ended","free":4,"seq":11,"tasks":[["a-1",1.5]]}
{"type":"free","free":4,"seq":12}
{"type":"no such type"}
EOF
spawn fake "$FAKE" -c "$T/d1.json" -H 127.0.0.1 -P "$P" -n fake -F count -k 4 -f "$T/lines"
wait_log fake 'hello from distributor' 15
ok $? "the fake worker is greeted and sends its lines"
wait_for "the error for the last line" 15 grep -q '^error: unknown message type' "$T/fake.log"
ok $? "the unknown type at the end gets its error: every line was read"
grep '^error: ' "$T/fake.log" >"$T/errors"
diag "$(cat "$T/errors")"
is "$(grep -c 'malformed "started": tasks must be' "$T/errors")" 2 \
	"the two malformed \"started\" get their error"
is "$(grep -c 'malformed "ended": tasks must be' "$T/errors")" 4 \
	"the four malformed \"ended\" get their error"
is "$(wc -l <"$T/errors" | tr -d ' ')" 7 "and nothing else did: 7 errors in all"
is "$(sed -n 's/^error: //p' "$T/errors" | head -n 6 | cut -c1-17 | tr '\n' ' ')" \
	'malformed "starte malformed "ended" malformed "ended" malformed "starte malformed "ended" malformed "ended" ' \
	"in the order of the lines"
is "$(grep -c 'worker fake: malformed "ended" message' "$T/d1.log")" 4 \
	"the distributor logs each malformed \"ended\""
running fake
ok $? "the fake worker is still connected"

# The link still works: a task is offered to the fake (4 free slots, the
# last "free" said so), which rejects it; it runs on a real worker.
conf "$T/tw-1.json" tw-1 "\"threads\": 2, \"distributors\": [[\"127.0.0.1\", $P]]"
spawn tw-1 "$TW" -c "$T/tw-1.json" -f
wait_for "worker-tw-1 UP" 15 worker_up tw-1 && wait_for "d1 knows tw-1" 15 connected d1 tw-1
ok $? "a real worker registers and connects"
for i in 1 2 3 4 5 6; do
	rcli LPUSH new-task "{\"id\":\"w-$i\",\"function\":\"count\",\"clean_end\":false}" >/dev/null
done
all_ran() { [ "$(lines w-)" -ge 6 ] && [ "$(rcli SCARD tasks)" = 0 ]; }
wait_for "6 tasks ran" 60 all_ran
ok $? "6 tasks pushed afterwards all ran"
is "$(lines w-)" 6 "each once"
[ "$(grep -c '^rejected w-' "$T/fake.log")" -ge 1 ]
ok $? "the fake was offered some and rejected them ($(grep -c '^rejected w-' "$T/fake.log"))"
is "$(kept_values state w-)" "6 END" "all 6 records are END"

bad=
for n in tw-1 fake d1; do
	stop "$n" || bad="$bad $n"
done
is "$bad" "" "the workers and the distributor exit 0 on SIGTERM"
is "$(sanitizer_reports d1 tw-1)" "" "no sanitizer report"
done_testing
