/* test_util - helpers (util.c), error strings and version (error.c), log levels. */
#include "build-config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dtask.h"
#include "log.h"
#include "tap.h"
#include "util.h"

int main(void)
{
	tap_plan(23);

	is_str(dtask_version(), DTASK_VERSION_STRING, "dtask_version matches the header");
	is_str(DTASK_VERSION_STRING, PACKAGE_VERSION, "header version matches configure.ac");
	is_int(DTASK_VERSION_NUMBER, DTASK_VERSION_MAJOR * 65536 + DTASK_VERSION_MINOR * 256 +
	       DTASK_VERSION_PATCH, "version number");

	int distinct = 1;
	for (int a = DTASK_ESTATE; a <= DTASK_OK; a++)
		for (int b = a + 1; b <= DTASK_OK; b++)
			if (strcmp(dtask_strerror(a), dtask_strerror(b)) == 0)
				distinct = 0;
	ok(distinct, "every error code has its own sentence");
	is_str(dtask_strerror(12345), "unknown error", "unknown codes");
	is_str(dtask_strerror(DTASK_EAUTH), "share_key authentication failed", "EAUTH text");

	unsigned char bytes[4] = { 0x00, 0x7f, 0xa5, 0xff }, back[4];
	char hex[9];
	dt_hex_encode(bytes, 4, hex);
	is_str(hex, "007fa5ff", "hex encode");
	is_int(dt_hex_decode("007FA5ff", back, 4), 0, "hex decode, either case");
	ok(memcmp(bytes, back, 4) == 0, "round trip");
	is_int(dt_hex_decode("007fa5f", back, 4), -1, "odd length refused");
	is_int(dt_hex_decode("007fa5ffaa", back, 4), -1, "trailing digits refused");
	is_int(dt_hex_decode("007fa5fg", back, 4), -1, "non-hex refused");

	/* dt_fmt_i64 agrees with printf on the edges and a spread of values. */
	static const int64_t nums[] = { 0, 1, -1, 9, 10, -10, 1234567890, INT64_MAX, INT64_MIN,
					INT64_MIN + 1, 999999999999999999LL };
	int agree = 1;
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		char mine[21], want[32];
		size_t n = dt_fmt_i64(mine, nums[i]);
		snprintf(want, sizeof want, "%" PRId64, nums[i]);
		agree = agree && n == strlen(want) && !strcmp(mine, want);
	}
	ok(agree, "dt_fmt_i64 writes what printf writes, INT64_MIN and INT64_MAX included");

	ok(dt_ct_equal("abcd", "abcd", 4), "constant-time equal");
	ok(!dt_ct_equal("abcd", "abce", 4), "constant-time different");

	char err[16];
	is_int(dt_err(err, sizeof err, DTASK_EINVAL, "value %d is far too long", 42), DTASK_EINVAL,
	       "dt_err returns the code");
	is_int(strlen(err), sizeof err - 1, "and truncates safely");
	is_int(dt_err(NULL, 0, DTASK_EIO, "x"), DTASK_EIO, "NULL buffer is fine");

	int64_t a = dt_mono_ms();
	dt_sleep_ms(20);
	ok(dt_mono_ms() - a >= 20, "monotonic clock advances across a sleep");
	ok(dt_wall_ms() > 1700000000000LL, "wall clock in ms since the epoch");

	is_int(dt_log_level_parse("debug"), DT_LOG_DEBUG, "log level names");
	is_int(dt_log_level_parse("WARN"), DT_LOG_WARN, "case-insensitive");
	is_int(dt_log_level_parse("loud"), -1, "unknown level");
	return tap_done(23);
}
