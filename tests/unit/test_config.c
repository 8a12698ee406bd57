/*
 * test_config.c - unit test of the configuration loader (src/lib/conf.c).
 *
 * Writes configuration files into a private temporary folder, loads them and
 * checks the values, the defaults, the resolved paths, every kind of error
 * message and the warnings (stderr is redirected to a file around the calls
 * that should warn).  Single-threaded.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "conf.h"
#include "dtask.h"
#include "log.h"
#include "tap.h"

#define PLAN 260

static char tmpdir[PATH_MAX];  /* as created */
static char realtmp[PATH_MAX]; /* canonical, what dir fields hold */
static char err[1024];
static char captured[8192];
static int saved_stderr = -1;
static dt_config sentinel; /* a failed load must reset *out to NULL */

static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Write len bytes of text to tmpdir/name; returns the path (static buffer,
 * valid until the next call). */
static const char *put_n(const char *name, const char *text, size_t len)
{
	static char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path);
	if (write(fd, text, len) != (ssize_t)len)
		die(path);
	close(fd);
	return path;
}

static const char *put(const char *name, const char *text)
{
	return put_n(name, text, strlen(text));
}

static void capture_start(void)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (saved_stderr < 0 || fd < 0 || dup2(fd, STDERR_FILENO) < 0)
		die("redirecting stderr");
	close(fd);
}

/* Restore stderr; what was written meanwhile is in captured[]. */
static void capture_end(void)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
	fflush(stderr);
	if (dup2(saved_stderr, STDERR_FILENO) < 0)
		die("restoring stderr");
	close(saved_stderr);
	saved_stderr = -1;
	captured[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		die(path);
	size_t n = fread(captured, 1, sizeof captured - 1, f);
	captured[n] = '\0';
	fclose(f);
}

/* Load text written as name: expect success. */
static dt_config *load_ok(const char *name, const char *text)
{
	const char *path = put(name, text);
	dt_config *c = NULL;
	err[0] = '\0';
	int rc = dt_config_load(path, &c, err, sizeof err);
	if (!ok(rc == 0 && c != NULL, "%s loads", name))
		tap_diag("  rc %d: %s", rc, err);
	return c;
}

/* Load text written as name: expect DTASK_ECONFIG with a one-line message
 * naming the file, the field (when given) and containing expect. */
static void load_bad(const char *name, const char *text, const char *field, const char *expect)
{
	const char *path = put(name, text);
	char file[PATH_MAX + 64];
	snprintf(file, sizeof file, "%s", path);
	dt_config *c = &sentinel;
	err[0] = '\0';
	int rc = dt_config_load(file, &c, err, sizeof err);
	ok(rc == DTASK_ECONFIG && c == NULL, "%s: rejected with DTASK_ECONFIG", name);
	if (c && c != &sentinel)
		dt_config_free(c);
	ok(strncmp(err, file, strlen(file)) == 0 && strchr(err, '\n') == NULL,
	   "%s: one line starting with the file name", name);
	if (field) {
		char want[128];
		snprintf(want, sizeof want, "field \"%s\": expected ", field);
		like_str(err, want, "%s: names field %s", name, field);
	}
	like_str(err, expect, "%s: says \"%s\"", name, expect);
}

static char *join(const char *a, const char *b)
{
	static char buf[2][PATH_MAX + 128];
	static int i;
	i = !i;
	snprintf(buf[i], sizeof buf[i], "%s/%s", a, b);
	return buf[i];
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* ------------------------------------------------------------ tests */

static const char seed[] =
	"{\"share_key\": \"abc\", \"key\": \"test/tls/key.pem\", "
	"\"cert\": \"test/tls/certificate.pem\", "
	"\"redis\": {\"host\": \"localhost\", \"port\": 6379}, "
	"\"host\": \"localhost\", \"port\": 5000, "
	"\"distributors\": [[\"localhost\", 5000]]}";

static void check_defaults(const dt_config *c, const char *what, int dist_timeout)
{
	is_str(c->share_key, NULL, "%s: share_key NULL", what);
	ok(!c->key && !c->cert && !c->ca, "%s: key, cert, ca NULL", what);
	is_int(c->insecure, 0, "%s: insecure off", what);
	is_str(c->redis.host, "localhost", "%s: redis.host", what);
	is_int(c->redis.port, 6379, "%s: redis.port", what);
	ok(!c->redis.user && !c->redis.password, "%s: no redis user/password", what);
	is_int(c->redis.db, 0, "%s: redis.db", what);
	is_str(c->redis.prefix, "", "%s: redis.prefix empty", what);
	is_str(c->host, "localhost", "%s: host", what);
	is_int(c->port, 5000, "%s: port", what);
	ok(c->n_distributors == 1 && strcmp(c->distributors[0].host, "localhost") == 0 &&
	   c->distributors[0].port == 5000, "%s: distributors [[localhost, 5000]]", what);
	ok(!c->name && !c->watch_host, "%s: name, watch_host NULL", what);
	is_int(c->watch_port, 0, "%s: watch_port", what);
	ok(c->n_exec_allow == 0, "%s: exec_allow empty", what);
	is_int(c->threads, 0, "%s: threads", what);
	is_int(c->loop_interval, 1000, "%s: loop_interval", what);
	is_int(c->check_all_interval, 15000, "%s: check_all_interval", what);
	is_int(c->health_interval, 2000, "%s: health_interval", what);
	is_int(c->health_misses, 3, "%s: health_misses", what);
	is_int(c->task_timeout, 10000, "%s: task_timeout", what);
	is_int(c->down_clear_interval, 60000, "%s: down_clear_interval", what);
	is_int(c->distributor_timeout, dist_timeout, "%s: distributor_timeout", what);
	is_int(c->stop_grace, 10000, "%s: stop_grace", what);
	is_int(c->handshake_timeout, 10000, "%s: handshake_timeout", what);
	is_int(c->send_timeout, 5000, "%s: send_timeout", what);
	is_int(c->max_message, 1048576, "%s: max_message", what);
	is_int(c->max_connections, 1024, "%s: max_connections", what);
	is_int(c->log_level, DT_LOG_INFO, "%s: log_level", what);
	ok(json_object_is_type(c->json, json_type_object), "%s: json is an object", what);
}

static void test_defaults(void)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		die("getcwd");
	dt_config *c = dt_config_new_default();
	ok(c != NULL, "dt_config_new_default");
	if (!c)
		exit(tap_done(PLAN));
	is_str(c->path, "(defaults)", "defaults: path");
	is_str(c->dir, cwd, "defaults: dir is the current folder");
	check_defaults(c, "defaults", 45000);
	dt_config_free(c);

	c = load_ok("empty.json", "{}");
	if (c) {
		check_defaults(c, "{}", 45000);
		is_str(c->dir, realtmp, "{}: dir is the file's folder");
		dt_config_free(c);
	}
	dt_config_free(NULL);
	ok(1, "dt_config_free(NULL) is harmless");
}

static void test_seed(void)
{
	char file[PATH_MAX + 64];
	char sub[PATH_MAX + 64];
	snprintf(sub, sizeof sub, "%s/seed", tmpdir);
	if (mkdir(sub, 0700) != 0)
		die(sub);
	snprintf(file, sizeof file, "%s", put("seed/dtask.json", seed));
	const char *rsub = join(realtmp, "seed");
	char want_key[PATH_MAX + 128], want_cert[PATH_MAX + 128];
	snprintf(want_key, sizeof want_key, "%s/test/tls/key.pem", rsub);
	snprintf(want_cert, sizeof want_cert, "%s/test/tls/certificate.pem", rsub);

	dt_config *c = NULL;
	int rc = dt_config_load(file, &c, err, sizeof err);
	if (!ok(rc == 0 && c, "seed file loads unchanged"))
		tap_diag("  %s", err);
	if (!c)
		return;
	is_str(c->path, file, "seed: path as given");
	is_str(c->dir, rsub, "seed: dir is the file's folder");
	is_str(c->share_key, "abc", "seed: share_key");
	is_str(c->key, want_key, "seed: key resolved against the file's folder");
	is_str(c->cert, want_cert, "seed: cert resolved against the file's folder");
	is_str(c->ca, NULL, "seed: ca NULL when absent");
	is_str(c->redis.host, "localhost", "seed: redis.host");
	is_int(c->redis.port, 6379, "seed: redis.port");
	is_str(c->host, "localhost", "seed: host");
	is_int(c->port, 5000, "seed: port");
	is_int(c->n_distributors, 1, "seed: one distributor");
	is_str(c->distributors[0].host, "localhost", "seed: distributors[0] host");
	is_int(c->distributors[0].port, 5000, "seed: distributors[0] port");
	is_int(c->distributor_timeout, 45000, "seed: distributor_timeout default");
	dt_config_free(c);

	/* The same file by a relative name: paths still come out absolute. */
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd) || chdir(tmpdir) != 0)
		die("chdir");
	c = NULL;
	rc = dt_config_load("seed/dtask.json", &c, err, sizeof err);
	ok(rc == 0 && c, "seed by relative name loads");
	if (c) {
		is_str(c->dir, rsub, "relative name: dir absolute");
		is_str(c->key, want_key, "relative name: key absolute");
		dt_config_free(c);
	}
	put("plain.json", "{\"ca\": \"ca.pem\"}");
	c = NULL;
	rc = dt_config_load("plain.json", &c, err, sizeof err);
	ok(rc == 0 && c, "bare file name loads");
	if (c) {
		is_str(c->ca, join(realtmp, "ca.pem"), "bare file name: ca in the current folder");
		dt_config_free(c);
	}
	if (chdir(cwd) != 0)
		die("chdir back");
}

static void test_all_fields(void)
{
	capture_start();
	dt_config *c = load_ok("all.json",
		"{\n"
		"  \"share_key\": \"s3cret\", \"key\": \"/etc/k.pem\", \"cert\": \"c.pem\",\n"
		"  \"ca\": \"tls/ca.pem\", \"insecure\": true,\n"
		"  \"redis\": {\"host\": \"r.example\", \"port\": 6380, \"user\": \"u\",\n"
		"            \"password\": \"p\", \"db\": 3, \"prefix\": \"dt:\"},\n"
		"  \"host\": \"0.0.0.0\", \"port\": 0,\n"
		"  \"distributors\": [[\"a.example\", 5001], [\"b.example\", 5002]],\n"
		"  \"name\": \"w1\", \"watch_host\": \"w.example\", \"watch_port\": 65535,\n"
		"  \"exec_allow\": [\"/bin/true\", \"/usr/bin/env\"], \"threads\": 8,\n"
		"  \"loop_interval\": 11, \"check_all_interval\": 12, \"health_interval\": 13,\n"
		"  \"health_misses\": 1, \"task_timeout\": 14, \"down_clear_interval\": 15,\n"
		"  \"distributor_timeout\": 16, \"stop_grace\": 17, \"max_message\": 1024,\n"
		"  \"handshake_timeout\": 18, \"send_timeout\": 19, \"max_connections\": 1,\n"
		"  \"log_level\": \"debug\", \"app\": {\"anything\": [1, 2, 3]}\n"
		"}\n");
	capture_end();
	if (!c)
		return;
	is_str(c->share_key, "s3cret", "all: share_key");
	is_str(c->key, "/etc/k.pem", "all: absolute key kept");
	is_str(c->cert, join(realtmp, "c.pem"), "all: cert resolved");
	is_str(c->ca, join(realtmp, "tls/ca.pem"), "all: ca resolved");
	is_int(c->insecure, 1, "all: insecure");
	like_str(captured, "certificate verification is OFF", "all: insecure is warned about");
	ok(!strstr(captured, "unknown field"), "all: \"app\" is not warned about");
	is_str(c->redis.host, "r.example", "all: redis.host");
	is_int(c->redis.port, 6380, "all: redis.port");
	is_str(c->redis.user, "u", "all: redis.user");
	is_str(c->redis.password, "p", "all: redis.password");
	is_int(c->redis.db, 3, "all: redis.db");
	is_str(c->redis.prefix, "dt:", "all: redis.prefix");
	is_str(c->host, "0.0.0.0", "all: host");
	is_int(c->port, 0, "all: port 0 allowed");
	ok(c->n_distributors == 2 && strcmp(c->distributors[1].host, "b.example") == 0 &&
	   c->distributors[1].port == 5002, "all: two distributors");
	is_str(c->name, "w1", "all: name");
	is_str(c->watch_host, "w.example", "all: watch_host");
	is_int(c->watch_port, 65535, "all: watch_port");
	ok(c->n_exec_allow == 2 && strcmp(c->exec_allow[1], "/usr/bin/env") == 0, "all: exec_allow");
	is_int(c->threads, 8, "all: threads");
	ok(c->loop_interval == 11 && c->check_all_interval == 12 && c->health_interval == 13 &&
	   c->task_timeout == 14 && c->down_clear_interval == 15 && c->stop_grace == 17 &&
	   c->handshake_timeout == 18 && c->send_timeout == 19, "all: intervals and timeouts");
	is_int(c->distributor_timeout, 16, "all: explicit distributor_timeout kept");
	is_int(c->health_misses, 1, "all: health_misses");
	is_int(c->max_message, 1024, "all: max_message minimum");
	is_int(c->max_connections, 1, "all: max_connections");
	is_int(c->log_level, DT_LOG_DEBUG, "all: log_level");
	struct json_object *app = NULL;
	ok(json_object_object_get_ex(c->json, "app", &app) &&
	   json_object_is_type(app, json_type_object), "all: app section kept in json");
	dt_config_free(c);

	c = load_ok("nulls.json", "{\"share_key\": null, \"name\": null, \"watch_host\": null, "
			 "\"redis\": {\"user\": null, \"password\": null}, \"key\": null, "
			 "\"max_message\": 1073741824, \"log_level\": \"warn\"}");
	if (c) {
		ok(!c->share_key && !c->name && !c->key && !c->redis.password, "nulls: NULL fields");
		is_int(c->max_message, 1073741824, "nulls: max_message 1 GiB allowed");
		is_int(c->log_level, DT_LOG_WARN, "nulls: log_level warn");
		dt_config_free(c);
	}
}

static void test_distributor_timeout(void)
{
	dt_config *c = load_ok("dt1.json", "{\"check_all_interval\": 1000}");
	if (c) {
		is_int(c->distributor_timeout, 3000, "distributor_timeout follows check_all_interval");
		dt_config_free(c);
	}
	c = load_ok("dt2.json", "{\"distributor_timeout\": 5, \"check_all_interval\": 1000}");
	if (c) {
		is_int(c->distributor_timeout, 5, "explicit distributor_timeout wins");
		dt_config_free(c);
	}
	c = load_ok("dt3.json", "{\"check_all_interval\": 2147483647}");
	if (c) {
		is_int(c->distributor_timeout, INT_MAX, "3 x a huge check_all_interval saturates");
		dt_config_free(c);
	}
}

static void test_unknown(void)
{
	capture_start();
	dt_config *c = load_ok("unknown.json",
		"{\"foo_field\": 1, \"redis\": {\"port\": 6390, \"bar_field\": 2}, "
		"\"app\": {\"baz\": 3}, \"port\": 5001}");
	capture_end();
	if (c) {
		is_int(c->port, 5001, "unknown: known fields still read");
		is_int(c->redis.port, 6390, "unknown: known redis fields still read");
		dt_config_free(c);
	}
	like_str(captured, "unknown field \"foo_field\" ignored", "unknown top-level field warned");
	like_str(captured, "unknown field \"redis.bar_field\"", "unknown redis field warned, dotted");
	like_str(captured, "unknown.json", "warning names the file");
	like_str(captured, "warn", "warning at warn level");
	ok(!strstr(captured, "app") && !strstr(captured, "baz"), "\"app\" not warned about");
}

static void test_errors(void)
{
	/* The exact wording once. */
	const char *path = put("rport.json", "{\"redis\": {\"port\": \"abc\"}}");
	char want[PATH_MAX + 256];
	snprintf(want, sizeof want,
		 "%s: field \"redis.port\": expected an integer from 1 to 65535, got \"abc\"", path);
	dt_config *c = NULL;
	int rc = dt_config_load(path, &c, err, sizeof err);
	is_int(rc, DTASK_ECONFIG, "redis.port \"abc\": DTASK_ECONFIG");
	is_str(err, want, "redis.port \"abc\": exact message");

	load_bad("e-range.json", "{\"port\": 70000}", "port", "from 0 to 65535, got 70000");
	load_bad("e-float.json", "{\"loop_interval\": 1.5}", "loop_interval", "got 1.5");
	load_bad("e-strint.json", "{\"stop_grace\": \"1000\"}", "stop_grace", "integer");
	load_bad("e-bool.json", "{\"threads\": true}", "threads", "got true");
	load_bad("e-neg.json", "{\"threads\": -1}", "threads", "from 0 to");
	load_bad("e-narrow.json", "{\"threads\": 4294967296}", "threads", "4294967296");
	load_bad("e-misses.json", "{\"health_misses\": 0}", "health_misses", "from 1 to");
	load_bad("e-zero.json", "{\"task_timeout\": 0}", "task_timeout", "milliseconds");
	load_bad("e-msgmin.json", "{\"max_message\": 1023}", "max_message", "from 1024 to 1073741824");
	load_bad("e-msgmax.json", "{\"max_message\": 1073741825}", "max_message", "1073741825");
	load_bad("e-conns.json", "{\"max_connections\": 0}", "max_connections", "from 1 to");
	load_bad("e-rport0.json", "{\"redis\": {\"port\": 0}}", "redis.port", "from 1 to 65535");
	load_bad("e-redis.json", "{\"redis\": \"localhost:6379\"}", "redis", "an object");
	load_bad("e-insecure.json", "{\"insecure\": \"yes\"}", "insecure", "true or false");
	load_bad("e-level.json", "{\"log_level\": \"loud\"}", "log_level", "\"debug\"");
	load_bad("e-host.json", "{\"host\": 5}", "host", "a non-empty string");
	load_bad("e-key.json", "{\"key\": \"\"}", "key", "a non-empty string");
	load_bad("e-nul.json", "{\"name\": \"a\\u0000b\"}", "name", "without NUL");
	load_bad("e-exec.json", "{\"exec_allow\": [\"/bin/true\", \"bin/sh\"]}", "exec_allow[1]",
		 "absolute path");
	load_bad("e-exec2.json", "{\"exec_allow\": \"/bin/true\"}", "exec_allow", "an array");
	load_bad("e-dist.json", "{\"distributors\": [[\"a\", 1], [\"b\"]]}", "distributors[1]",
		 "a [host, port] pair");
	load_bad("e-dhost.json", "{\"distributors\": [[\"a\", 1], [2, 3]]}", "distributors[1][0]",
		 "string");
	load_bad("e-dport.json", "{\"distributors\": [[\"a\", 0]]}", "distributors[0][1]",
		 "from 1 to 65535");
	load_bad("e-dempty.json", "{\"distributors\": []}", "distributors", "non-empty array");

	/* A secret is not repeated in the message. */
	load_bad("e-secret.json", "{\"share_key\": 987654}", "share_key", "not shown");
	ok(!strstr(err, "987654"), "share_key value not in the message");

	/* Syntax errors: the line, json-c's reason. */
	load_bad("e-json.json", "{\n  \"port\": 5000,\n  \"host\":\n}\n", NULL,
		 "invalid JSON at line 4: ");
	load_bad("e-comma.json", "{\n\"port\": 5000,\n\"host\": \"h\",\n}", NULL,
		 "invalid JSON at line 4");
	load_bad("e-trunc.json", "{\"port\": 5000,\n", NULL, "unexpected end of file");
	load_bad("e-empty.json", "", NULL, "invalid JSON at line 1");
	load_bad("e-trail.json", "{}\n{}\n", NULL, "invalid JSON at line 2");
	static const char nul[] = "{\"name\":\n\"a\0b\"}";
	put_n("e-rawnul.json", nul, sizeof nul - 1);
	c = NULL;
	rc = dt_config_load(join(tmpdir, "e-rawnul.json"), &c, err, sizeof err);
	ok(rc == DTASK_ECONFIG && strstr(err, "line 2") && strstr(err, "NUL"),
	   "raw NUL byte rejected at its line");
	load_bad("e-array.json", "[[\"localhost\", 5000]]", NULL, "top level must be a JSON object");
	load_bad("e-null.json", "null", NULL, "top level must be a JSON object, got null");

	/* Unreadable files. */
	path = join(tmpdir, "no-such.json");
	snprintf(want, sizeof want, "%s: cannot read: No such file or directory", path);
	c = &sentinel;
	rc = dt_config_load(path, &c, err, sizeof err);
	ok(rc == DTASK_ECONFIG && c == NULL, "missing file: DTASK_ECONFIG");
	is_str(err, want, "missing file: exact message");
	rc = dt_config_load(tmpdir, &c, err, sizeof err);
	ok(rc == DTASK_ECONFIG && strstr(err, "cannot read: "), "a folder cannot be read");

	/* No error buffer is fine. */
	rc = dt_config_load(path, &c, NULL, 0);
	is_int(rc, DTASK_ECONFIG, "missing file without an error buffer");
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(tmpdir, sizeof tmpdir, "%s/dt-test-config-XXXXXX", base);
	if (!mkdtemp(tmpdir))
		die("mkdtemp");
	if (!realpath(tmpdir, realtmp))
		die("realpath");
	dt_log_set_level(DT_LOG_INFO);

	tap_plan(PLAN);
	test_defaults();
	test_seed();
	test_all_fields();
	test_distributor_timeout();
	test_unknown();
	test_errors();

	if (nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		tap_diag("could not remove %s: %s", tmpdir, strerror(errno));
	return tap_done(PLAN);
}
