# tests/cluster.sh - shared by the integration tests that run a private
# cluster (distributors and workers on one redis-server).
#
# Sourced, never run, right after tests/common.sh.  POSIX sh.  A test looks
# like:
#
#   #!/bin/sh
#   . "$top_srcdir/tests/common.sh"
#   . "$top_srcdir/tests/cluster.sh"
#   need_redis
#   need_certtool
#   plan 3
#   watchdog 60
#   need_built "$DIST" "$TW"
#   start_cluster
#   use_count_file
#   start_dist d1; ok $? "the distributor starts"
#   P=$(dist_port d1)
#   conf "$T/tw-1.json" tw-1 "\"threads\": 4, \"distributors\": [[\"127.0.0.1\", $P]]"
#   spawn tw-1 "$TW" -c "$T/tw-1.json" -f
#   wait_for "worker-tw-1 UP" 15 worker_up tw-1; ok $? "the worker registers"
#   ...
#
# What it gives:
#   programs   $DIST (dtask-distributor), $WORKER (dtask-worker), $TW
#              (dt-testworker), $FAKE (dt-fakeworker), $PROXY (dt-proxy),
#              $DTASK_BIN (dtask); need_built PROG...: "Bail out!" unless
#              each is built
#   start      start_cluster: certificates in $T/tls and start_redis, or
#              "Bail out!"; use_count_file: $COUNT ($T/count, empty), the
#              file dt-testworker appends "<id> <attempt> <pid>" to, exported
#              as DT_COUNT_FILE
#   config     conf FILE NAME [EXTRA], conf_grace FILE NAME STOP_GRACE [EXTRA]:
#              one configuration for any role (stop_grace 2000 with conf)
#   proxy      start_redis_proxy: dt-proxy "proxy" in front of Redis, its
#              port in $PROXY_PORT; conf_proxied FILE NAME [EXTRA]: conf
#              with Redis reached through it
#   daemons    start_dist NAME: config $T/NAME.json, spawn, wait for its port;
#              dist_port NAME; worker_up NAME; connected "DIST..." WORKER
#   records    field ID FIELD, state_is ID STATE, kept_values FIELD PREFIX,
#              nothing_left
#   tasks      push_file FILE (redis-cli --pipe), lines PREFIX (count file)
#   misc       ms_since T0, sanitizer_reports NAME...
#
# Private names start with _dt_cl_.

# shellcheck disable=SC2034 # the program paths are for the tests that source this
# shellcheck disable=SC2154 # top_builddir is set by tests/common.sh

# ---------------------------------------------------------------- programs
DIST=$top_builddir/src/distributor/dtask-distributor
WORKER=$top_builddir/src/worker/dtask-worker
TW=$top_builddir/tests/tools/dt-testworker
FAKE=$top_builddir/tests/tools/dt-fakeworker
PROXY=$top_builddir/tests/tools/dt-proxy
DTASK_BIN=$top_builddir/src/cli/dtask

# need_built PROG...: bail out unless each PROG is an executable.
need_built() {
	for _dt_cl_p; do
		[ -x "$_dt_cl_p" ] || bail_out "$_dt_cl_p is not built (make check builds it)"
	done
}

# ---------------------------------------------------------------- start
# start_cluster: certificates in $T/tls (gen_certs) and a private
# redis-server (start_redis); "Bail out!" if either fails.
start_cluster() {
	gen_certs "$T/tls" || bail_out "cannot make certificates"
	start_redis || bail_out "cannot start redis-server"
}

# use_count_file: $COUNT, an empty file exported as DT_COUNT_FILE, where
# dt-testworker's counting functions append "<id> <attempt> <pid>".
use_count_file() {
	COUNT=$T/count
	: >"$COUNT"
	DT_COUNT_FILE=$COUNT
	export DT_COUNT_FILE
}

# ---------------------------------------------------------------- config
# conf_grace FILE NAME STOP_GRACE [EXTRA JSON FIELDS]: a configuration for
# any role (share key, TLS files from start_cluster, the private Redis,
# port 0, short intervals) named NAME, with that stop_grace (ms).
# HEALTH_INTERVAL and HEALTH_MISSES (default 300 and 3: a silent peer is
# dropped after 900 ms, for the tests that hang one) may be raised by a
# test that counts on no peer ever being taken for dead under load.
# TASK_TIMEOUT (default 2000) likewise, for a test that must tell a
# requeue for staleness from another one.
HEALTH_INTERVAL=${HEALTH_INTERVAL:-300}
HEALTH_MISSES=${HEALTH_MISSES:-3}
TASK_TIMEOUT=${TASK_TIMEOUT:-2000}
conf_grace() {
	cat >"$1" <<JSON
{"share_key": "abc", "cert": "$T/tls/cert.pem", "key": "$T/tls/key.pem",
 "ca": "$T/tls/ca.pem", "redis": {"host": "127.0.0.1", "port": $REDIS_PORT},
 "host": "127.0.0.1", "port": 0, "name": "$2", "watch_host": "127.0.0.1",
 "loop_interval": 200, "health_interval": $HEALTH_INTERVAL, "health_misses": $HEALTH_MISSES,
 "task_timeout": $TASK_TIMEOUT, "check_all_interval": 1000, "stop_grace": $3${4:+, $4}}
JSON
}

# conf FILE NAME [EXTRA JSON FIELDS]: the same with stop_grace 2000.
conf() { conf_grace "$1" "$2" 2000 "${3:-}"; }

# ---------------------------------------------------------------- proxy
# start_redis_proxy: spawn dt-proxy as "proxy" in front of the test's Redis
# and set $PROXY_PORT to its port; the status of the wait for it.  SIGUSR1
# to "proxy" cuts every link through it, SIGUSR2 mends them.
start_redis_proxy() {
	spawn proxy "$PROXY" -P "$REDIS_PORT" -o "$T/proxy.port"
	wait_for "the proxy's port" 10 test -s "$T/proxy.port" || return 1
	PROXY_PORT=$(cat "$T/proxy.port")
}

# conf_proxied FILE NAME [EXTRA]: conf, with Redis reached only through
# the proxy.
conf_proxied() {
	_dt_cl_direct=$REDIS_PORT
	REDIS_PORT=$PROXY_PORT
	conf "$@"
	REDIS_PORT=$_dt_cl_direct
}

# ---------------------------------------------------------------- daemons
# start_dist NAME: write $T/NAME.json (conf), spawn the distributor NAME and
# wait up to 15 s for its "listening on HOST:PORT" line; the status of
# that wait.
start_dist() {
	conf "$T/$1.json" "$1"
	spawn "$1" "$DIST" -c "$T/$1.json" -f
	wait_log "$1" 'listening on [^ ]+:[0-9]+' 15
}

# dist_port NAME: the port in the distributor's "listening on HOST:PORT" line.
dist_port() {
	sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$T/$1.log" | head -n 1
}

# start_testworkers "DIST..." WORKER...: spawn a dt-testworker (4 task
# threads) per WORKER, configured for every distributor in the
# space-separated list (at the ports they logged), then check, one ok each,
# that it registers in Redis and connects to all of them.
start_testworkers() {
	_dt_sw_ds=$1
	shift
	_dt_sw_j=
	for _dt_sw_d in $_dt_sw_ds; do
		_dt_sw_j="$_dt_sw_j${_dt_sw_j:+, }[\"127.0.0.1\", $(dist_port "$_dt_sw_d")]"
	done
	for _dt_sw_w in "$@"; do
		conf "$T/$_dt_sw_w.json" "$_dt_sw_w" "\"threads\": 4, \"distributors\": [$_dt_sw_j]"
		spawn "$_dt_sw_w" "$TW" -c "$T/$_dt_sw_w.json" -f
	done
	for _dt_sw_w in "$@"; do
		wait_for "worker-$_dt_sw_w UP" 15 worker_up "$_dt_sw_w" &&
			wait_for "$_dt_sw_w on $_dt_sw_ds" 15 connected "$_dt_sw_ds" "$_dt_sw_w"
		ok $? "worker $_dt_sw_w registers and connects to $_dt_sw_ds"
	done
}

# worker_up NAME: worker-NAME in Redis is UP.
worker_up() { [ "$(rcli HGET "worker-$1" state)" = UP ]; }

# connected "DIST..." WORKER: each distributor in the (space-separated)
# list logged the worker's connection.
connected() {
	for _dt_cl_d in $1; do
		grep -q -- "worker $2 connected" "$T/$_dt_cl_d.log" || return 1
	done
}

# ---------------------------------------------------------------- records
# field ID FIELD: a field of task-ID.
field() { rcli HGET "task-$1" "$2"; }

# state_is ID STATE
state_is() { [ "$(field "$1" state)" = "$2" ]; }

# nothing_left: no task in flight anywhere (the set, the queues, the lists).
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

# ---------------------------------------------------------------- tasks
# push_file FILE: LPUSH every line of FILE on new-task, in order, in one
# redis-cli --pipe (the Redis protocol, so any byte is safe); the answer
# ("errors: N, replies: N") in FILE.pipe.
push_file() {
	LC_ALL=C awk '{ printf "*3\r\n$5\r\nLPUSH\r\n$8\r\nnew-task\r\n$%d\r\n%s\r\n", length($0), $0 }' \
		"$1" >"$1.resp" &&
		rcli --pipe <"$1.resp" >"$1.pipe" 2>&1
}

# lines PREFIX: count-file lines of ids starting with PREFIX (a regex).
lines() { grep -c "^$1" "$COUNT"; }

# ---------------------------------------------------------------- misc
# ms_since T0: milliseconds since T0 (from _dt_now_ms).
ms_since() { echo $(($(_dt_now_ms) - $1)); }

# sanitizer_reports NAME...: the NAMEs whose $T/NAME.log has a sanitizer
# report, each followed by a space (empty when none has).
sanitizer_reports() {
	for _dt_cl_n; do
		grep -Eq 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error' "$T/$_dt_cl_n.log" &&
			printf '%s ' "$_dt_cl_n"
	done
	return 0
}
