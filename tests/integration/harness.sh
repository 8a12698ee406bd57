#!/bin/sh
# shellcheck disable=SC2012,SC2016,SC2119
# harness.sh - tests/common.sh itself, for real: a private redis-server,
# processes spawned and stopped by PID, wait_for/wait_log, certificates
# from scripts/dtask-gencerts, and (in child tests run here) the TAP
# accounting, the kept temporary directory and the watchdog.
. "$top_srcdir/tests/common.sh"

need_redis
need_certtool
plan 55
watchdog 120

# ---------------------------------------------------------------- redis
start_redis
ok $? "start_redis starts a private redis-server"
case ${REDIS_PORT:-} in
'' | *[!0-9]*) fail "REDIS_PORT is a port number" ;;
*) pass "REDIS_PORT is a port number ($REDIS_PORT)" ;;
esac
is "$(rcli set dt:harness 'hello world')" OK "SET through rcli"
is "$(rcli get dt:harness)" "hello world" "GET gives the value back"
like "$T/redis.log" "Ready to accept connections" "its log is \$T/redis.log"
unlike "$T/redis.log" "Address already in use|FATAL|Error" "no errors in the redis log"

# ---------------------------------------------------------------- spawn/stop
spawn sleeper sleep 100
p=$(pid_of sleeper)
check "spawned sleep 100 is running" running sleeper
stop sleeper
is "$?" 143 "stop ends it with TERM (status 143)"
if kill -0 "$p" 2>/dev/null; then
	fail "its PID $p is gone"
else
	pass "its PID $p is gone"
fi
check "no pid file left" test ! -e "$T/sleeper.pid"
stop sleeper
is "$?" 0 "stopping it again is harmless"

spawn stubborn sh -c 'trap "" TERM; echo ready; while :; do sleep 0.1; done'
wait_log stubborn '^ready$' 5
ok $? "wait_log sees a line in the log"
p=$(pid_of stubborn)
stop stubborn 1 >"$T/stop.out"
is "$?" 137 "stop sends KILL to a process ignoring TERM (status 137)"
like "$T/stop.out" "still running 1s after TERM: sending KILL" "... and says so"
if kill -0 "$p" 2>/dev/null; then
	fail "its PID $p is gone"
else
	pass "its PID $p is gone"
fi

spawn quitter sh -c 'echo bye; exit 3'
t0=$(_dt_now_ms)
wait_log quitter 'never printed' 20 >"$T/wait_log.out"
is "$?" 1 "wait_log fails for a line that never comes"
t1=$(_dt_now_ms)
check "... at once when the process has exited ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 5000
like "$T/wait_log.out" "quitter is not running" "... and says why"
stop quitter
is "$?" 3 "stop returns the status of a process that already exited"

# ---------------------------------------------------------------- wait_for
t0=$(_dt_now_ms)
wait_for "something that never happens" 1 false >"$T/wait_for.out"
is "$?" 1 "wait_for returns 1 on timeout"
t1=$(_dt_now_ms)
el=$((t1 - t0))
check "... after about the timeout (${el} ms)" test "$el" -ge 900 -a "$el" -lt 4000
like "$T/wait_for.out" "timed out waiting for something that never happens" "... and says what it waited for"

spawn toucher sh -c 'sleep 0.3; : >"$1"' sh "$T/flag"
wait_for "the flag file" 10 test -f "$T/flag"
ok $? "wait_for returns 0 once the command succeeds"

# ---------------------------------------------------------------- certificates
gen_certs "$T/pki"
ok $? "gen_certs makes certificates"
check "cert.pem verifies against ca.pem" \
	"$CERTTOOL" --verify --load-ca-certificate "$T/pki/ca.pem" --infile "$T/pki/cert.pem"
is "$(ls -l "$T/pki/key.pem" | cut -c1-10)" "-rw-------" "key.pem has mode 600"
is "$(ls -l "$T/pki/ca-key.pem" | cut -c1-10)" "-rw-------" "ca-key.pem has mode 600"
"$CERTTOOL" -i --infile "$T/pki/cert.pem" >"$T/cert.txt" 2>&1
like "$T/cert.txt" "DNSname: localhost$" "default SAN: DNS localhost"
like "$T/cert.txt" "IPAddress: 127\.0\.0\.1$" "default SAN: IP 127.0.0.1"
like "$T/cert.txt" "IPAddress: ::1$" "default SAN: IP ::1"
like "$T/cert.txt" "TLS WWW Server" "usable by a TLS server"
like "$T/cert.txt" "TLS WWW Client" "usable by a TLS client"
like "$T/cert.txt" "EC/ECDSA" "ECDSA key"

cp "$T/pki/cert.pem" "$T/cert.orig"
gen_certs "$T/pki" >/dev/null
is "$?" 1 "gen_certs will not overwrite an existing cert.pem"
check "... which is unchanged" cmp "$T/pki/cert.pem" "$T/cert.orig"

mkdir "$T/pki2" && cp "$T/pki/ca.pem" "$T/pki/ca-key.pem" "$T/pki2/"
gen_certs "$T/pki2" node2.example 10.1.2.3
ok $? "a second host's certificate from the same CA"
check "... the CA is reused" cmp "$T/pki/ca.pem" "$T/pki2/ca.pem"
check "... and it verifies against the first ca.pem" \
	"$CERTTOOL" --verify --load-ca-certificate "$T/pki/ca.pem" --infile "$T/pki2/cert.pem"
"$CERTTOOL" -i --infile "$T/pki2/cert.pem" >"$T/cert2.txt" 2>&1
like "$T/cert2.txt" "DNSname: node2\.example$" "... for the DNS name given"
like "$T/cert2.txt" "IPAddress: 10\.1\.2\.3$" "... and the IP address given"

# ---------------------------------------------------------------- child tests
# Small tests that source common.sh, run with their own TMPDIR inside $T.
mkdir "$T/tmp"
child() { # child NAME: run $T/NAME.sh, output to $T/NAME.out; its status
	TMPDIR=$T/tmp sh "$T/$1.sh" >"$T/$1.out" 2>&1 </dev/null
}

cat >"$T/child-pass.sh" <<'EOF'
. "$top_srcdir/tests/common.sh"
plan 2
spawn sleeper sleep 100
diag "sleeper=$(pid_of sleeper)"
pass "one # two"
is x x "same"
done_testing
EOF
child child-pass
is "$?" 0 "a passing test exits 0"
like "$T/child-pass.out" '^ok 1 - one \\# two$' "'#' in a description is escaped"
check "its temporary directory is removed" test -z "$(ls "$T/tmp")"
p=$(sed -n 's/^# sleeper=//p' "$T/child-pass.out")
check "what it spawned is stopped at exit" test -n "$p" -a ! -d "/proc/$p"

cat >"$T/child-fail.sh" <<'EOF'
. "$top_srcdir/tests/common.sh"
plan 3
echo "some log line" >"$T/daemon.log"
pass "fine"
fail "boom"
done_testing
EOF
child child-fail
is "$?" 1 "a failing test exits 1"
like "$T/child-fail.out" '^not ok 2 - boom$' "... with a not ok line"
like "$T/child-fail.out" '^# planned 3 tests but ran 2$' "... and a plan mismatch"
like "$T/child-fail.out" '^# kept .*/dtask-child-fail\.' "... keeps its temporary directory"
like "$T/child-fail.out" '^#   \| some log line$' "... and shows its logs"

cat >"$T/child-wd.sh" <<'EOF'
. "$top_srcdir/tests/common.sh"
plan 1
watchdog 1
spawn sleeper sleep 100
diag "sleeper=$(pid_of sleeper)"
sleep 60
pass "never reached"
done_testing
EOF
t0=$(_dt_now_ms)
child child-wd
st=$?
t1=$(_dt_now_ms)
check "the watchdog ends a hung test (status $st)" test "$st" -ne 0
like "$T/child-wd.out" '^Bail out! watchdog: test exceeded 1 s$' "... with Bail out!"
check "... in time ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 8000
p=$(sed -n 's/^# sleeper=//p' "$T/child-wd.out")
check "... and stops what it spawned" test -n "$p" -a ! -d "/proc/$p"

cat >"$T/child-skip.sh" <<'EOF'
. "$top_srcdir/tests/common.sh"
skip_all "nothing to do"
EOF
child child-skip
is "$?" 0 "skip_all exits 0"
like "$T/child-skip.out" '^1\.\.0 # SKIP nothing to do$' "... with a 1..0 # SKIP plan"

done_testing
