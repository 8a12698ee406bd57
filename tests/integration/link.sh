#!/bin/sh
# link.sh - the peer link over real TLS on loopback (issue: foundation).
# A real dt-linktest server (server.c: accept thread + thread per peer) and
# real clients (conn.c) prove: the right key passes, a wrong key, an
# untrusted certificate and a wrong host name are refused (and logged), an
# oversized frame closes the link, malformed JSON gets an error while the
# server keeps serving, silent peers are dropped, 200 connections are served
# at once, the connection cap and EMFILE are survived.
. "$top_srcdir/tests/common.sh"
need_certtool
plan 53
watchdog 120

LT=$top_builddir/tests/tools/dt-linktest

gen_certs "$T/tls" || bail_out "cannot make certificates"
gen_certs "$T/other" || bail_out "cannot make a second CA"
mkdir -p "$T/wrongname"
cp "$T/tls/ca.pem" "$T/tls/ca-key.pem" "$T/wrongname/"
gen_certs "$T/wrongname" other.example || bail_out "cannot make a misnamed certificate"

# Servers keep the default handshake_timeout (10 s): 200 handshakes at once
# under a sanitizer on 2 cores need the time.  Only "quick" has a short one,
# for the silent-peer cases.
server_conf() { # FILE CERTDIR [EXTRA JSON FIELDS]
	cat >"$1" <<JSON
{"share_key": "abc", "cert": "$2/cert.pem", "key": "$2/key.pem",
 "host": "127.0.0.1", "port": 0, "max_message": 4096${3:+, $3}}
JSON
}
client_conf() { # FILE SHARE_KEY TRUST_FIELD
	cat >"$1" <<JSON
{"share_key": "$2", $3, "max_message": 4096}
JSON
}
server_conf "$T/server.json" "$T/tls"
client_conf "$T/client.json" abc "\"ca\": \"$T/tls/ca.pem\""
client_conf "$T/wrongkey.json" wrong "\"ca\": \"$T/tls/ca.pem\""
client_conf "$T/untrusted.json" abc "\"ca\": \"$T/other/ca.pem\""
client_conf "$T/pinned.json" abc "\"cert\": \"$T/tls/cert.pem\""

# count NAME REGEX: lines of NAME's log matching REGEX
count() { grep -Ec -- "$2" "$T/$1.log"; }

spawn srv "$LT" server -c "$T/server.json" -p "$T/port"
wait_for "the server's port file" 10 test -s "$T/port"
ok $? "server starts and reports its ephemeral port"
P=$(cat "$T/port")

# -- the right key
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$P")
ok $? "right share_key: the client is served"
is "$out" "1 ok, 0 failed" "and its echo comes back"
wait_log srv 'authenticated \(TLS1\.3\)' 5
ok $? "the server logs the peer as authenticated over TLS 1.3"
out=$("$LT" client -c "$T/client.json" -H localhost -P "$P")
ok $? "connecting by host name (localhost) verifies too: $out"
out=$("$LT" client -c "$T/pinned.json" -H 127.0.0.1 -P "$P")
ok $? "with no ca, the configured cert is pinned and trusted: $out"

# -- a wrong share_key
echoes=$(count srv 'echo from')
out=$("$LT" client -c "$T/wrongkey.json" -H 127.0.0.1 -P "$P")
is $? 3 "wrong share_key: the client fails"
case "$out" in *"share_key"*) pass "the client's error names the share_key";;
	*) fail "the client's error names the share_key"; diag "$out";; esac
wait_log srv 'refused: .*share_key' 5
ok $? "the server logs the refusal"
is "$(count srv 'echo from')" "$echoes" "no message from that peer reached the server"

# -- a server certificate we do not trust
out=$("$LT" client -c "$T/untrusted.json" -H 127.0.0.1 -P "$P")
is $? 3 "untrusted certificate: the client refuses the server"
case "$out" in *"certificate rejected"*"not trusted"* | *"certificate rejected"*"issuer"*)
	pass "the client says the certificate is not trusted";;
	*) fail "the client says the certificate is not trusted"; diag "$out";; esac
wait_log srv 'refused: TLS handshake failed: the peer sent alert' 5
ok $? "the server logs the client's alert"

# -- a certificate for another name, from the trusted CA
server_conf "$T/wrongname.json" "$T/wrongname"
spawn srv2 "$LT" server -c "$T/wrongname.json" -p "$T/port2"
wait_for "the second server's port" 10 test -s "$T/port2"
ok $? "a server with a certificate for other.example starts"
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$(cat "$T/port2")")
is $? 3 "host-name mismatch: the client refuses"
case "$out" in *"does not match"*) pass "the client says the name does not match";;
	*) fail "the client says the name does not match"; diag "$out";; esac
out=$("$LT" client -c "$T/client.json" -H localhost -P "$(cat "$T/port2")")
is $? 3 "by name too (localhost is not other.example)"
stop srv2
ok $? "the second server stops cleanly"

# -- an oversized frame
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$P" --big 5000)
ok $? "an oversized line ends in a close: $(echo "$out" | tail -n 1)"
case "$out" in *'"type":"error"'*"larger than max_message"*) pass "the peer is told why first";;
	*) fail "the peer is told why first"; diag "$out";; esac
wait_log srv 'larger than max_message .*closing' 5
ok $? "the server logs the oversized message"

# -- malformed JSON and unknown types: an error, and the link lives on
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$P" --raw '{"type": "echo", oops')
ok $? "after a malformed line the same connection still echoes"
case "$out" in *'"type":"error"'*"malformed JSON"*) pass "malformed JSON gets an error message";;
	*) fail "malformed JSON gets an error message"; diag "$out";; esac
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$P" --raw '[1,2,3]')
case "$out" in *"JSON object with a string"*"1 ok"*) pass "a non-object line gets an error";;
	*) fail "a non-object line gets an error"; diag "$out";; esac
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$P" --raw '{"type":"launch"}')
case "$out" in *'unknown message type'*"1 ok"*) pass "an unknown type gets an error";;
	*) fail "an unknown type gets an error"; diag "$out";; esac
like "$T/srv.log" 'malformed JSON' "the server logs the malformed line"
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$P" -n 3)
is "$out" "3 ok, 0 failed" "and keeps serving other peers"

# -- silent peers, against a server with handshake_timeout 1500 ms
server_conf "$T/quick.json" "$T/tls" '"handshake_timeout": 1500'
spawn quick "$LT" server -c "$T/quick.json" -p "$T/portq"
wait_for "the quick server's port" 10 test -s "$T/portq"
ok $? "a server with handshake_timeout 1500 ms starts"
Q=$(cat "$T/portq")
out=$("$LT" silent -H 127.0.0.1 -P "$Q" -t 20000)
ok $? "a TCP peer that never starts TLS is dropped: $out"
ms=$(echo "$out" | sed -n 's/.* after \([0-9]*\) ms/\1/p')
[ "${ms:-0}" -ge 1400 ]
ok $? "not before handshake_timeout (1500 ms): $ms ms"
wait_log quick 'dropped before it was authenticated: TLS handshake timed out' 5
ok $? "the server logs the handshake timeout"
out=$("$LT" silent --tls -c "$T/client.json" -H 127.0.0.1 -P "$Q" -t 20000)
ok $? "a peer that completes TLS but never proves the key is dropped: $out"
wait_log quick 'no share_key proof in time' 5
ok $? "the server logs the missing proof"
stop quick
ok $? "the quick server stops cleanly"

# -- 200 concurrent connections (each waits until all 200 are up)
before=$(count srv 'authenticated')
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$P" -n 200)
ok $? "200 concurrent connections"
is "$out" "200 ok, 0 failed" "all 200 echoed while all were open"
wait_for "200 more authentications in the log" 10 sh -c \
	"[ \$(grep -c authenticated '$T/srv.log') -ge $((before + 200)) ]"
ok $? "the server logged 200 authenticated peers"

stop srv
ok $? "server exits 0 on SIGTERM"
like "$T/srv.log" 'stopped after serving [0-9]+ connections' "and says so"
unlike "$T/srv.log" 'AddressSanitizer|runtime error' "no sanitizer report"

# -- the connection cap
server_conf "$T/cap.json" "$T/tls" '"max_connections": 3'
spawn cap "$LT" server -c "$T/cap.json" -p "$T/port3"
wait_for "the capped server's port" 10 test -s "$T/port3"
ok $? "a server with max_connections 3 starts"
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$(cat "$T/port3")" -n 5)
is "$(echo "$out" | tail -n 1)" "3 ok, 2 failed" "5 peers at once: 3 served, 2 refused"
like "$T/cap.log" 'max_connections.*refusing' "the refusal is logged"
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$(cat "$T/port3")" -n 3)
is "$out" "3 ok, 0 failed" "once they left, 3 more are served"
stop cap
ok $? "the capped server stops cleanly"

# -- out of file descriptors (EMFILE): survive, then serve again
spawn emfile sh -c "ulimit -n 48 && exec '$LT' server -c '$T/server.json' -p '$T/port4'"
wait_for "the fd-starved server's port" 10 test -s "$T/port4"
ok $? "a server limited to 48 descriptors starts"
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$(cat "$T/port4")" -n 80)
case "$out" in *"ok, 0 failed"*) fail "some of 80 peers are refused for lack of descriptors"; diag "$out";;
	*) pass "some of 80 peers are refused for lack of descriptors: $(echo "$out" | tail -n 1)";; esac
wait_log emfile 'out of file descriptors' 5
ok $? "EMFILE is logged"
running emfile
ok $? "the server is still running"
out=$("$LT" client -c "$T/client.json" -H 127.0.0.1 -P "$(cat "$T/port4")" -n 10)
is "$out" "10 ok, 0 failed" "and serves again once descriptors are free"
stop emfile
ok $? "it stops cleanly"

# -- a bad configuration is refused with the file and the field named
printf '{"share_key": "abc", "port": "five thousand"}\n' >"$T/bad.json"
out=$("$LT" server -c "$T/bad.json" 2>&1)
is $? 2 "a bad config stops the server with status 2"
case "$out" in *"$T/bad.json"*'"port"'*) pass "the error names the file and the field: $out";;
	*) fail "the error names the file and the field"; diag "$out";; esac

done_testing
