# tests/common.sh - shared by the shell tests in tests/integration/.
#
# Sourced, never run.  POSIX sh (runs under dash, which is what "make check"
# uses through SH_LOG_COMPILER = $(SHELL)).  A test looks like:
#
#   #!/bin/sh
#   . "$top_srcdir/tests/common.sh"
#   need_redis
#   plan 3
#   watchdog 60
#   start_redis || bail_out "cannot start redis-server"
#   is "$(rcli ping)" PONG "redis answers"
#   spawn dist "$top_builddir/src/distributor/dtask-distributor" -c "$T/d.json"
#   wait_log dist 'listening' 10; ok $? "distributor starts"
#   stop dist; ok $? "distributor exits 0 on TERM"
#   done_testing
#
# What it gives:
#   TAP       plan N, ok STATUS DESC (STATUS 0 = pass), pass, fail, check,
#             is, like, unlike, diag, skip_all, bail_out, done_testing
#   $T        a private temporary directory, removed at exit unless the test
#             failed; then it is kept, and its logs are tailed as diagnostics
#   watchdog  watchdog SECONDS: past that, "Bail out!" and everything stops
#   processes spawn NAME CMD..., stop NAME [GRACE], wait_for, wait_log;
#             everything spawned is stopped at exit, by PID only
#   redis     need_redis, start_redis, rcli, $REDIS_PORT
#   TLS       need_certtool, gen_certs DIR [NAMES...]
#
# Environment (set by "make check", see AM_TESTS_ENVIRONMENT in Makefile.am):
#   top_srcdir, top_builddir (absolute), REDIS_SERVER, CERTTOOL.
# Run by hand from the build directory:
#   top_srcdir=/path/to/src top_builddir=$PWD sh /path/to/src/tests/integration/x.sh
#
# Names starting with _dt_ are private.  Helper functions keep their
# variables in _dt_-prefixed globals (POSIX sh has no "local").

# ---------------------------------------------------------------- setup
: "${top_builddir:=$PWD}"
: "${top_srcdir:=$top_builddir}"
if [ -z "${REDIS_SERVER:-}" ]; then
	REDIS_SERVER=$(PATH=$PATH:/usr/sbin:/usr/local/sbin command -v redis-server 2>/dev/null) || REDIS_SERVER=
fi
if [ -z "${CERTTOOL:-}" ]; then
	CERTTOOL=$(command -v certtool 2>/dev/null) || CERTTOOL=
fi
export top_srcdir top_builddir REDIS_SERVER CERTTOOL

TEST_NAME=$(basename "$0" .sh)

_dt_n=0              # TAP lines printed
_dt_failed=0         # of which "not ok"
_dt_plan=            # from plan
_dt_bailed=no        # a "Bail out!" was printed
_dt_done=no          # done_testing ran
_dt_wd_pid=          # watchdog subshell
_dt_names=           # spawned names, in order

T=$(mktemp -d "${TMPDIR:-/tmp}/dtask-$TEST_NAME.XXXXXX") || {
	echo "Bail out! cannot create a temporary directory"
	exit 99
}
export T

# ---------------------------------------------------------------- TAP
plan() {
	_dt_plan=$1
	echo "1..$1"
}

# ok STATUS DESC: one TAP line; STATUS is an exit status (0 = pass).
# Returns 0 or 1, so "ok $? desc || diag more" works.
ok() {
	_dt_n=$((_dt_n + 1))
	_dt_desc=${2:-}
	case $_dt_desc in
	*'#'* | *'
'*) _dt_desc=$(printf '%s' "$_dt_desc" | tr '\n' ' ' | sed 's/#/\\#/g') ;;
	esac
	if [ "$1" -eq 0 ] 2>/dev/null; then
		echo "ok $_dt_n - $_dt_desc"
		return 0
	fi
	echo "not ok $_dt_n - $_dt_desc"
	_dt_failed=$((_dt_failed + 1))
	return 1
}

pass() { ok 0 "$1"; }
fail() { ok 1 "$1"; }

# diag MSG...: TAP diagnostics, one "# " line per line of MSG.
diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

# _dt_diag_file FILE [LINES]: the tail of FILE as diagnostics.
_dt_diag_file() {
	if [ -f "$1" ]; then
		echo "#   --- last ${2:-20} lines of $1:"
		tail -n "${2:-20}" "$1" | sed 's/^/#   | /'
	else
		echo "#   ($1 does not exist)"
	fi
}

# check DESC CMD [ARGS...]: pass if CMD exits 0.  Its output goes to a file,
# shown on failure (so it cannot be taken for TAP).
check() {
	_dt_desc=$1
	shift
	_dt_out=$T/.check.out
	"$@" >"$_dt_out" 2>&1 </dev/null
	_dt_st=$?
	if ok "$_dt_st" "$_dt_desc"; then
		return 0
	fi
	echo "#   command: $*"
	echo "#   exit status: $_dt_st"
	_dt_diag_file "$_dt_out"
	return 1
}

# is GOT WANT DESC: string equality.
is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
		return 0
	fi
	ok 1 "$3"
	printf '%s\n' "$1" | sed '1s/^/#   got:  /; 2,$s/^/#         /'
	printf '%s\n' "$2" | sed '1s/^/#   want: /; 2,$s/^/#         /'
	return 1
}

# like FILE REGEX DESC: pass if a line of FILE matches the extended REGEX.
like() {
	if grep -Eq -- "$2" "$1" 2>/dev/null; then
		ok 0 "$3"
		return 0
	fi
	ok 1 "$3"
	echo "#   no line matches /$2/"
	_dt_diag_file "$1"
	return 1
}

# unlike FILE REGEX DESC: pass if FILE exists and no line matches REGEX.
unlike() {
	grep -Eq -- "$2" "$1" 2>/dev/null
	case $? in
	1)
		ok 0 "$3"
		return 0
		;;
	0)
		ok 1 "$3"
		echo "#   lines matching /$2/ in $1:"
		grep -E -- "$2" "$1" | head -n 10 | sed 's/^/#   | /'
		;;
	*)
		ok 1 "$3"
		echo "#   cannot read $1"
		;;
	esac
	return 1
}

# skip_all REASON: the whole test is skipped (before any TAP output).
skip_all() {
	echo "1..0 # SKIP $*"
	_dt_done=yes
	exit 0
}

# bail_out REASON: stop the test now, as an error.
bail_out() {
	echo "Bail out! $*"
	_dt_bailed=yes
	exit 99
}

# done_testing: print the plan if none was given; exit 0 only if all passed
# and the count matches the plan.
done_testing() {
	_dt_done=yes
	if [ -z "$_dt_plan" ]; then
		echo "1..$_dt_n"
	elif [ "$_dt_n" -ne "$_dt_plan" ]; then
		echo "# planned $_dt_plan tests but ran $_dt_n"
		exit 1
	fi
	if [ "$_dt_failed" -gt 0 ]; then
		echo "# failed $_dt_failed of $_dt_n tests"
		exit 1
	fi
	exit 0
}

# ---------------------------------------------------------------- processes
# _dt_now_ms: milliseconds on a monotonic clock (Linux /proc/uptime, in
# 10 ms steps), else from date(1) in whole seconds.
_dt_now_ms() {
	if [ -r /proc/uptime ]; then
		read -r _dt_up _dt_rest </proc/uptime
		_dt_f=${_dt_up#*.}
		_dt_f=${_dt_f#0}           # "07" is octal to some shells
		echo $((${_dt_up%.*} * 1000 + ${_dt_f:-0} * 10))
	else
		echo $(($(date +%s) * 1000))
	fi
}

# _dt_alive PID: the process exists and is not a zombie.
_dt_alive() {
	kill -0 "$1" 2>/dev/null || return 1
	if [ -r "/proc/$1/stat" ]; then
		read -r _dt_stat 2>/dev/null <"/proc/$1/stat" || return 1
		_dt_stat=${_dt_stat##*) }
		case $_dt_stat in Z* | X*) return 1 ;; esac
	fi
	return 0
}

# _dt_ppid PID: the parent of PID (empty if unknown).
_dt_ppid() {
	_dt_stat=
	read -r _dt_stat 2>/dev/null <"/proc/$1/stat" || return 0
	_dt_stat=${_dt_stat##*) }
	_dt_stat=${_dt_stat#* }
	echo "${_dt_stat%% *}"
}

# _dt_descendants PID [SKIP]: the PIDs of all descendants of PID, parents
# first, leaving out SKIP and its descendants (Linux /proc; prints nothing
# elsewhere).
_dt_descendants() {
	[ -d /proc/self ] || return 0
	# cat, not awk on the files: processes vanish between glob and read.
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" -v skip="${2:-}" '
		{ pid = $1; sub(/^.*\) /, ""); kids[$2] = kids[$2] " " pid }
		END {
			q[0] = root; head = 0; tail = 1
			while (head < tail) {
				p = q[head++]
				n = split(kids[p], c, " ")
				for (i = 1; i <= n; i++) {
					if (c[i] == skip) continue
					print c[i]; q[tail++] = c[i]
				}
			}
		}'
}

# spawn NAME CMD [ARGS...]: start CMD in the background, stdin from
# /dev/null, stdout and stderr to $T/NAME.log, its PID in $T/NAME.pid.
# Run daemons in the foreground: spawn tracks the PID it started.
spawn() {
	_dt_name=$1
	shift
	if [ -f "$T/$_dt_name.pid" ]; then
		echo "# spawn: $_dt_name is already running; stopping it first"
		stop "$_dt_name"
	fi
	"$@" </dev/null >"$T/$_dt_name.log" 2>&1 &
	echo $! >"$T/$_dt_name.pid"
	case " $_dt_names " in
	*" $_dt_name "*) ;;
	*) _dt_names="$_dt_names $_dt_name" ;;
	esac
}

# pid_of NAME: the PID of a spawned process (fails if not running).
pid_of() {
	[ -f "$T/$1.pid" ] || return 1
	cat "$T/$1.pid"
}

# running NAME: the spawned process is still alive.
running() {
	_dt_p=$(pid_of "$1") || return 1
	_dt_alive "$_dt_p"
}

# stop NAME [GRACE]: TERM, then KILL after GRACE seconds (default
# $DT_STOP_GRACE or 10), by PID only; reaps it.  Returns its exit status
# (143 = killed by TERM, 137 = needed KILL), 0 if it was not running.
stop() {
	_dt_pf=$T/$1.pid
	[ -f "$_dt_pf" ] || return 0
	_dt_p=$(cat "$_dt_pf")
	rm -f "$_dt_pf"
	[ -n "$_dt_p" ] || return 0
	# Guard against PID reuse: a spawned process is a child of this shell.
	_dt_pp=$(_dt_ppid "$_dt_p")
	if [ -n "$_dt_pp" ] && [ "$_dt_pp" != "$$" ]; then
		wait "$_dt_p" 2>/dev/null
		return $?
	fi
	kill -TERM "$_dt_p" 2>/dev/null
	_dt_grace=${2:-${DT_STOP_GRACE:-10}}
	_dt_end=$(($(_dt_now_ms) + _dt_grace * 1000))
	while _dt_alive "$_dt_p"; do
		if [ "$(_dt_now_ms)" -ge "$_dt_end" ]; then
			echo "# stop: $1 (pid $_dt_p) still running ${_dt_grace}s after TERM: sending KILL"
			kill -KILL "$_dt_p" 2>/dev/null
			break
		fi
		sleep 0.05
	done
	wait "$_dt_p" 2>/dev/null
}

# stop_all: stop every spawned process still running, newest first.
stop_all() {
	_dt_rev=
	for _dt_x in $_dt_names; do _dt_rev="$_dt_x $_dt_rev"; done
	for _dt_x in $_dt_rev; do
		[ -f "$T/$_dt_x.pid" ] && stop "$_dt_x" "${DT_STOP_GRACE:-5}"
	done
	return 0
}

# wait_for DESC SECONDS CMD [ARGS...]: run CMD every 50 ms until it exits 0
# (return 0) or SECONDS pass (return 1, with a diagnostic).
wait_for() {
	_dt_wdesc=$1
	_dt_end=$(($(_dt_now_ms) + $2 * 1000))
	shift 2
	while :; do
		"$@" >"$T/.wait_for.out" 2>&1 </dev/null && return 0
		[ "$(_dt_now_ms)" -lt "$_dt_end" ] || break
		sleep 0.05
	done
	echo "# timed out waiting for $_dt_wdesc ($*)"
	_dt_diag_file "$T/.wait_for.out" 5
	return 1
}

# wait_log NAME REGEX SECONDS: wait until $T/NAME.log has a line matching
# REGEX.  Gives up early if the process NAME has exited.
wait_log() {
	_dt_end=$(($(_dt_now_ms) + $3 * 1000))
	while :; do
		grep -Eq -- "$2" "$T/$1.log" 2>/dev/null && return 0
		if ! running "$1"; then
			# It may have printed the line just before exiting.
			grep -Eq -- "$2" "$T/$1.log" 2>/dev/null && return 0
			echo "# wait_log: $1 is not running and its log has no /$2/"
			_dt_diag_file "$T/$1.log"
			return 1
		fi
		[ "$(_dt_now_ms)" -lt "$_dt_end" ] || break
		sleep 0.05
	done
	echo "# wait_log: no /$2/ in $1.log after $3 s"
	_dt_diag_file "$T/$1.log"
	return 1
}

# ---------------------------------------------------------------- watchdog
# watchdog SECONDS: if the test is still running after SECONDS, print
# "Bail out!", terminate the test and kill everything it started (every
# descendant of the test shell, by PID from /proc: what spawn started and
# whatever command the test is stuck in).  A later call replaces the timer.
watchdog() {
	_dt_watchdog_stop
	(
		_dt_secs=$1
		trap 'kill "$_dt_sl" 2>/dev/null; wait "$_dt_sl"; exit 0' TERM
		sleep "$_dt_secs" >/dev/null 2>&1 &
		_dt_sl=$!
		wait "$_dt_sl"
		trap '' TERM
		: >"$T/.watchdog-fired"
		echo "Bail out! watchdog: test exceeded $_dt_secs s"
		_dt_me=$(cat "$T/.watchdog.pid")
		# TERM to the test first: its trap (which stops what it spawned
		# and keeps $T) runs as soon as its current command dies.
		kill -TERM $$ 2>/dev/null
		for _dt_x in $(_dt_descendants $$ "$_dt_me"); do
			kill -TERM "$_dt_x" 2>/dev/null
		done
		# Then KILL whatever is left, the test itself last.
		_dt_i=0
		while kill -0 $$ 2>/dev/null && [ "$_dt_i" -lt 100 ]; do
			[ "$_dt_i" -eq 30 ] &&
				for _dt_x in $(_dt_descendants $$ "$_dt_me"); do
					kill -KILL "$_dt_x" 2>/dev/null
				done
			sleep 0.1
			_dt_i=$((_dt_i + 1))
		done
		kill -KILL $$ 2>/dev/null
		exit 0
	) &
	_dt_wd_pid=$!
	echo "$_dt_wd_pid" >"$T/.watchdog.pid"
}

# _dt_watchdog_stop: cancel the timer (a watchdog that fired finishes by
# itself once the test is gone).
_dt_watchdog_stop() {
	[ -n "$_dt_wd_pid" ] || return 0
	[ -f "$T/.watchdog-fired" ] || kill -TERM "$_dt_wd_pid" 2>/dev/null
	_dt_wd_pid=
}

# ---------------------------------------------------------------- C tests
# run_tap_program NAME: run the C TAP test $top_builddir/tests/unit/NAME
# (it reads REDIS_PORT etc. from the environment) and pass its results on
# as this test's own, through plan/ok/bail_out, so the plan, the count and
# the exit trap stay in charge.  DT_VALGRIND=1 runs it under valgrind
# (leaks and errors fail the test).  Ends the test.
run_tap_program() {
	_dt_prog=$top_builddir/tests/unit/$1
	[ -x "$_dt_prog" ] || bail_out "$_dt_prog is not built (make check builds it)"
	if [ -n "${DT_VALGRIND:-}" ]; then
		# Through libtool: the program may be a wrapper script.
		"$top_builddir/libtool" --mode=execute valgrind -q --leak-check=full \
			--errors-for-leak-kinds=definite,indirect --error-exitcode=3 \
			"$_dt_prog" >"$T/$1.tap" 2>"$T/$1.log"
	else
		"$_dt_prog" >"$T/$1.tap" 2>"$T/$1.log"
	fi
	_dt_status=$?
	while IFS= read -r _dt_line; do
		case $_dt_line in
		1..*) plan "${_dt_line#1..}" ;;
		'not ok '*) ok 1 "${_dt_line#not ok * - }" ;;
		'ok '*) ok 0 "${_dt_line#ok * - }" ;;
		'Bail out!'*) bail_out "${_dt_line#Bail out! }" ;;
		*) echo "$_dt_line" ;;
		esac
	done <"$T/$1.tap"
	[ "$_dt_status" -eq 0 ] || diag "$1 exited with status $_dt_status"
	[ "$_dt_status" -eq 0 ] || exit 1
	done_testing
}

# ---------------------------------------------------------------- redis
# REDIS_CLI: next to redis-server if it is there, else from $PATH.
if [ -z "${REDIS_CLI:-}" ]; then
	if [ -n "$REDIS_SERVER" ] && [ -x "$(dirname "$REDIS_SERVER")/redis-cli" ]; then
		REDIS_CLI=$(dirname "$REDIS_SERVER")/redis-cli
	else
		REDIS_CLI=$(command -v redis-cli 2>/dev/null) || REDIS_CLI=
	fi
fi

# need_redis: skip the test unless redis-server and redis-cli are there.
need_redis() {
	if [ -z "$REDIS_SERVER" ] || [ ! -x "$REDIS_SERVER" ]; then
		skip_all "redis-server not found (install the Debian package redis-server)"
	fi
	if [ -z "$REDIS_CLI" ]; then
		skip_all "redis-cli not found (install the Debian package redis-tools)"
	fi
}

# need_certtool: skip the test unless certtool is there.
need_certtool() {
	if [ -z "$CERTTOOL" ] || [ ! -x "$CERTTOOL" ]; then
		skip_all "certtool not found (install the Debian package gnutls-bin)"
	fi
}

# rcli ARGS...: redis-cli on the test's redis-server.
rcli() {
	"$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

_dt_redis_ping() {
	[ "$("$REDIS_CLI" -h 127.0.0.1 -p "$_dt_rport" ping 2>/dev/null)" = PONG ]
}

# start_redis [NAME]: start a private redis-server (spawned as NAME,
# default "redis", data in $T) on a free loopback port; set and export
# REDIS_PORT.  Retries with another port if the port was taken meanwhile.
# Returns 1 (with diagnostics) if it cannot.
start_redis() {
	_dt_rname=${1:-redis}
	_dt_try=1
	while [ "$_dt_try" -le 5 ]; do
		_dt_rport=$("$top_builddir/tests/tools/dt-freeport") || {
			echo "# start_redis: $top_builddir/tests/tools/dt-freeport failed"
			return 1
		}
		spawn "$_dt_rname" "$REDIS_SERVER" --port "$_dt_rport" \
			--bind 127.0.0.1 --save '' --appendonly no --dir "$T" \
			--daemonize no
		_dt_end=$(($(_dt_now_ms) + 10000))
		while running "$_dt_rname"; do
			if _dt_redis_ping; then
				REDIS_PORT=$_dt_rport
				export REDIS_PORT
				return 0
			fi
			[ "$(_dt_now_ms)" -lt "$_dt_end" ] || break
			sleep 0.05
		done
		stop "$_dt_rname" 2
		echo "# start_redis: try $_dt_try on port $_dt_rport failed"
		_dt_diag_file "$T/$_dt_rname.log" 5
		mv -f "$T/$_dt_rname.log" "$T/$_dt_rname.try$_dt_try.log"
		_dt_try=$((_dt_try + 1))
	done
	echo "# start_redis: giving up"
	return 1
}

# ---------------------------------------------------------------- TLS
# gen_certs DIR [NAMES...]: scripts/dtask-gencerts into DIR (default names
# localhost 127.0.0.1 ::1).  Output in $T/gencerts.log, shown on failure.
gen_certs() {
	_dt_dir=$1
	shift
	_dt_k=$#
	while [ "$_dt_k" -gt 0 ]; do
		set -- "$@" -n "$1"
		shift
		_dt_k=$((_dt_k - 1))
	done
	if CERTTOOL=$CERTTOOL sh "$top_srcdir/scripts/dtask-gencerts" "$@" "$_dt_dir" \
		>"$T/gencerts.log" 2>&1 </dev/null; then
		return 0
	fi
	echo "# gen_certs $_dt_dir failed"
	_dt_diag_file "$T/gencerts.log" 5
	return 1
}

# ---------------------------------------------------------------- exit
_dt_exit() {
	_dt_rc=$?
	trap '' INT TERM HUP
	trap - EXIT
	# A watchdog that fired is finishing its own work; leave it be.
	_dt_watchdog_stop
	stop_all
	if [ "$_dt_done" = no ] && [ "$_dt_bailed" = no ] && [ "$_dt_rc" -eq 0 ]; then
		echo "# test exited before done_testing"
		_dt_rc=1
	fi
	if [ "$_dt_rc" -ne 0 ] || [ "$_dt_failed" -gt 0 ] || [ -f "$T/.watchdog-fired" ]; then
		echo "# kept $T"
		for _dt_x in "$T"/*.log; do
			[ -f "$_dt_x" ] && _dt_diag_file "$_dt_x" 30
		done
		[ "$_dt_rc" -ne 0 ] || _dt_rc=1
	else
		rm -rf "$T"
	fi
	exit "$_dt_rc"
}
trap _dt_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
