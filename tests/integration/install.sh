#!/bin/sh
# shellcheck disable=SC2154,SC2317 # top_srcdir/top_builddir come from make check; clean_env is run through check
# install.sh - "make install" into a private prefix installs what the README
# promises (header, shared and static library, dtask.pc, the programs, the
# man pages), and a program of one's own builds against the installed
# library with pkg-config: the embedded worker of examples/worker with its
# plain Makefile, and the README's "cc prog.c $(pkg-config ...)".
# "make uninstall" then leaves no file behind.
#
# The build may be instrumented (--enable-sanitizers): then the installed
# library needs the sanitizer runtime, so what is built against it here is
# built with the same $SAN_CFLAGS/$SAN_LDFLAGS (set by "make check").
. "$top_srcdir/tests/common.sh"

plan 32
watchdog 300

P=$T/prefix
CC=${CC:-cc}
SAN_CFLAGS=${SAN_CFLAGS:-}
SAN_LDFLAGS=${SAN_LDFLAGS:-}
version=$(sed -n 's/^#define DTASK_VERSION_STRING "\(.*\)"$/\1/p' "$top_srcdir/include/dtask.h")

# clean_env [VAR=VALUE...] CMD...: CMD without the outer make's flags and
# jobserver (this test runs under "make check"), nor a DESTDIR.
clean_env() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u DESTDIR "$@"
}

# ---------------------------------------------------------------- install
# systemdsystemunitdir may be systemd's own folder: keep it under $P too.
units=$P/lib/systemd/system
check "make install prefix=\$T/prefix" clean_env make -C "$top_builddir" install prefix="$P" \
	systemdsystemunitdir="$units"
cp "$T/.check.out" "$T/install.log"

check "header: include/dtask.h" test -f "$P/include/dtask.h"
check "shared library: lib/libdtask.so" test -e "$P/lib/libdtask.so"
# --disable-static is a legitimate choice; then there is no archive to find.
if grep -q "^old_library='libdtask.a'" "$top_builddir/libdtask.la"; then
	check "static library: lib/libdtask.a" test -f "$P/lib/libdtask.a"
	static=yes
else
	skip_static="(skipped: configured with --disable-static)"
	ok 0 "static library: lib/libdtask.a $skip_static"
	static=no
fi
check "pkg-config file: lib/pkgconfig/dtask.pc" test -f "$P/lib/pkgconfig/dtask.pc"
# The daemons go to sbin (section 8), the tools to bin.
worker=$P/sbin/dtask-worker
check "program: sbin/dtask-worker" test -x "$worker"
check "program: sbin/dtask-distributor" test -x "$P/sbin/dtask-distributor"
check "script: bin/dtask-gencerts" test -x "$P/bin/dtask-gencerts"
check "man page: dtask-worker(8)" test -f "$P/share/man/man8/dtask-worker.8"
check "man page: dtask-distributor(8)" test -f "$P/share/man/man8/dtask-distributor.8"
if grep -q '^systemdsystemunitdir = .' "$top_builddir/Makefile"; then
	# (its paths are the configured ones: prefix= at install time is later)
	grep -Eq '^ExecStart=/.*/sbin/dtask-distributor -f -c /.*/dtask/dtask\.json$' \
		"$units/dtask-distributor.service"
	ok $? "systemd unit: dtask-distributor.service, with the configured paths"
else
	ok 0 "systemd unit: dtask-distributor.service (skipped: configured without systemd units)"
fi
check "man page: dtask.json(5)" test -f "$P/share/man/man5/dtask.json.5"
check "man page: dtask-gencerts(1)" test -f "$P/share/man/man1/dtask-gencerts.1"

# The installed program finds the installed library.
LD_LIBRARY_PATH=$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$worker" -V \
	>"$T/worker-V.out" 2>&1
is "$?:$(cat "$T/worker-V.out")" "0:dtask-worker (distributed-task) $version" \
	"installed dtask-worker -V"

# ---------------------------------------------------------------- pkg-config
# dtask.pc was made by configure for the configured prefix, not for the one
# given to "make install": use a copy with that one line changed, exactly
# what "configure --prefix=$T/prefix" would have written.  (pkg-config's
# --define-variable=prefix would also move the paths of Debian's multiarch
# .pc files that dtask.pc requires.)
if ! command -v pkg-config >/dev/null 2>&1; then
	bail_out "pkg-config not found (install the Debian package pkg-config)"
fi
mkdir -p "$T/pc"
sed "s|^prefix=.*|prefix=$P|" "$P/lib/pkgconfig/dtask.pc" >"$T/pc/dtask.pc"
PKG_CONFIG_PATH=$T/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
is "$(pkg-config --modversion dtask 2>&1)" "$version" "pkg-config --modversion dtask"
pkg-config --cflags --libs dtask >"$T/pc.out" 2>&1
like "$T/pc.out" "-I$P/include( |\$)" "--cflags points at the installed header"
like "$T/pc.out" "-L$P/lib -ldtask" "--libs links the installed library"

# ---------------------------------------------------------------- README style
# The README's embedded worker, exactly as printed there (between its
# "----8<---- prog.c" and "---->8----" lines), must build and run.
sed -n '/^----8<---- prog\.c$/,/^---->8----$/{/^----8<----/d;/^---->8----$/d;p;}' \
	"$top_srcdir/README" >"$T/readme.c"
[ -s "$T/readme.c" ]
ok $? "the README's example program is found"
# shellcheck disable=SC2046,SC2086 # word splitting wanted
check "cc README's prog.c \$(pkg-config --cflags --libs dtask)" \
	$CC $SAN_CFLAGS $SAN_LDFLAGS -o "$T/readme" "$T/readme.c" $(pkg-config --cflags --libs dtask)
LD_LIBRARY_PATH=$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$T/readme" -h >"$T/readme.out" 2>&1
is "$?" 0 "the README's worker runs against the installed library (-h)"
like "$T/readme.out" '-c FILE' "and shows the worker's options"

cat >"$T/prog.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <dtask.h>

int main(void)
{
	printf("%s\n", dtask_version());
	return strcmp(dtask_version(), DTASK_VERSION_STRING) != 0;
}
EOF
# shellcheck disable=SC2046,SC2086 # word splitting wanted
check "cc prog.c \$(pkg-config --cflags --libs dtask)" \
	$CC $SAN_CFLAGS $SAN_LDFLAGS -o "$T/prog" "$T/prog.c" $(pkg-config --cflags --libs dtask)
LD_LIBRARY_PATH=$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$T/prog" >"$T/prog.out" 2>&1
is "$?:$(cat "$T/prog.out")" "0:$version" "it runs against the installed library"

if [ "$static" = yes ]; then
	# The archive, with its dependencies (dtask.pc's Requires and
	# Requires.private) linked as shared libraries: a fully static program
	# would also need the static libraries of GnuTLS's own dependencies.
	libs="$(pkg-config --libs dtask | sed 's/-ldtask//') $(pkg-config --libs hiredis gnutls)"
	# shellcheck disable=SC2046,SC2086 # word splitting wanted
	check "cc prog.c libdtask.a (the static library links)" \
		$CC $SAN_CFLAGS $SAN_LDFLAGS -o "$T/prog-static" "$T/prog.c" \
		$(pkg-config --cflags dtask) "$P/lib/libdtask.a" $libs
	"$T/prog-static" >"$T/prog-static.out" 2>&1
	is "$?:$(cat "$T/prog-static.out")" "0:$version" "that program runs without libdtask.so"
else
	ok 0 "the static library links $skip_static"
	ok 0 "that program runs without libdtask.so $skip_static"
fi

# ---------------------------------------------------------------- examples/worker
mkdir -p "$T/example"
cp "$top_srcdir/examples/worker/resize.c" "$top_srcdir/examples/worker/Makefile" "$T/example/"
chmod u+w "$T/example/"*
check "examples/worker builds with its Makefile against the installed library" \
	clean_env CFLAGS="-g $SAN_CFLAGS" LDFLAGS="$SAN_LDFLAGS" CC="$CC" make -C "$T/example"
check "examples/worker: the resize program exists" test -x "$T/example/resize"
LD_LIBRARY_PATH=$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$T/example/resize" -h \
	>"$T/resize-h.out" 2>&1
ok $? "resize -h exits 0"
like "$T/resize-h.out" "^Usage: resize \[-f\] \[-c FILE\] \[-p PIDFILE\]" "and prints the usage"
LD_LIBRARY_PATH=$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$T/example/resize" -x \
	>"$T/resize-x.out" 2>&1
is "$?" 2 "resize -x: a usage error, status 2"

# ---------------------------------------------------------------- uninstall
check "make uninstall prefix=\$T/prefix" clean_env make -C "$top_builddir" uninstall prefix="$P" \
	systemdsystemunitdir="$units"
find "$P" -type f -o -type l >"$T/left.out" 2>&1
is "$(cat "$T/left.out")" "" "uninstall leaves no file behind"

done_testing
