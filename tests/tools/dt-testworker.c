/*
 * dt-testworker - an embedded worker for the lifecycle tests, built only on
 * the public API (include/dtask.h): dtask_worker_main() with a setup
 * function that registers the functions below.
 *
 *   dt-testworker -c CONFIG -f [-p PIDFILE]
 *
 * Functions (all of them, or only those named in $DT_FUNCTIONS, a comma
 * list, so a test can start a worker that lacks one):
 *   count      appends "<id> <attempt> <pid>\n" to $DT_COUNT_FILE, then
 *              ends with the result {"ok":true}
 *   fail       fails with the error "deliberate failure"
 *   wait       sleeps in steps of 50 ms until told to stop, then appends
 *              "<id> <attempt> stopped\n" and returns DTASK_STOP; with data
 *              {"ms": N} it ends normally after N ms (result {"waited":N})
 *   stubborn   appends "<id> <attempt> started\n", then runs data.ms ms
 *              (default 1000) paying no attention to stop requests (it
 *              notes the first one on stderr), then counts as count does
 *              and ends: for the stop_grace cases
 *   slowcount  sleeps data.ms ms (default 0) with dtask_sleep(), then
 *              counts as count does; when told to stop meanwhile, appends
 *              "<id> <attempt> stopped\n" and returns DTASK_STOP
 *
 * Every line goes to the count file with one write(2) on an O_APPEND
 * descriptor, so lines from several workers never interleave and a test
 * can count runs by counting lines ("exactly once").  The count file is
 * opened in setup; without $DT_COUNT_FILE the counting functions fail.
 *
 * Threads: the functions run on the worker's task threads, several at
 * once; they share only count_fd (written, never changed after setup).
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "dtask.h"

static int count_fd = -1;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* data.ms when data is an object with an integer "ms" >= 0, else dflt. */
static int64_t data_ms(dtask *t, int64_t dflt)
{
	struct json_object *d = dtask_data_json(t), *ms;
	if (d && json_object_is_type(d, json_type_object) &&
	    json_object_object_get_ex(d, "ms", &ms) && json_object_is_type(ms, json_type_int)) {
		int64_t v = json_object_get_int64(ms);
		if (v >= 0)
			return v;
	}
	return dflt;
}

/* One line, one write(2): "<id> <attempt> <what>\n". */
static int append_line(dtask *t, const char *what)
{
	if (count_fd < 0) {
		dtask_set_error(t, "DT_COUNT_FILE is not set");
		return -1;
	}
	char line[512];
	int n = snprintf(line, sizeof line, "%s %lld %s\n", dtask_id(t), dtask_attempt(t), what);
	if (n < 0 || (size_t)n >= sizeof line) {
		dtask_set_error(t, "count line too long");
		return -1;
	}
	ssize_t w;
	do
		w = write(count_fd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	if (w != n) {
		dtask_set_error(t, "cannot write the count file");
		return -1;
	}
	return 0;
}

static dtask_status counted(dtask *t)
{
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	if (append_line(t, pid) < 0)
		return DTASK_FAIL;
	dtask_set_result(t, "{\"ok\":true}");
	return DTASK_END;
}

static dtask_status fn_count(dtask *t, void *arg)
{
	(void)arg;
	return counted(t);
}

static dtask_status fn_fail(dtask *t, void *arg)
{
	(void)arg;
	dtask_set_error(t, "deliberate failure");
	return DTASK_FAIL;
}

static dtask_status fn_wait(dtask *t, void *arg)
{
	(void)arg;
	int64_t limit = data_ms(t, -1);
	int64_t t0 = mono_ms();
	for (;;) {
		unsigned step = 50;
		if (limit >= 0) {
			int64_t left = limit - (mono_ms() - t0);
			if (left <= 0) {
				char res[64];
				snprintf(res, sizeof res, "{\"waited\":%lld}", (long long)limit);
				dtask_set_result(t, res);
				return DTASK_END;
			}
			if (left < step)
				step = (unsigned)left;
		}
		if (dtask_sleep(t, step) != 0) {
			if (append_line(t, "stopped") < 0)
				return DTASK_FAIL;
			return DTASK_STOP;
		}
	}
}

static dtask_status fn_stubborn(dtask *t, void *arg)
{
	(void)arg;
	int64_t limit = data_ms(t, 1000);
	int64_t t0 = mono_ms();
	int told = 0;
	if (append_line(t, "started") < 0)
		return DTASK_FAIL;
	while (mono_ms() - t0 < limit) {
		if (dtask_checkpoint(t) != 0 && !told) {
			told = 1;
			fprintf(stderr, "dt-testworker: stubborn %s (attempt %lld) ignores a stop\n",
				dtask_id(t), dtask_attempt(t));
		}
		nap_ms(50);
	}
	return counted(t);
}

static dtask_status fn_slowcount(dtask *t, void *arg)
{
	(void)arg;
	int64_t ms = data_ms(t, 0);
	if (ms > 0 && dtask_sleep(t, (unsigned)ms) != 0) {
		if (append_line(t, "stopped") < 0)
			return DTASK_FAIL;
		return DTASK_STOP;
	}
	return counted(t);
}

static const struct {
	const char *name;
	dtask_fn fn;
} functions[] = {
	{ "count", fn_count },
	{ "fail", fn_fail },
	{ "wait", fn_wait },
	{ "stubborn", fn_stubborn },
	{ "slowcount", fn_slowcount },
};

/* name is in the comma list (NULL: every name is). */
static int wanted(const char *list, const char *name)
{
	if (!list)
		return 1;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

static int setup(dtask_worker *w)
{
	const char *path = getenv("DT_COUNT_FILE");
	if (path && *path) {
		count_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (count_fd < 0) {
			fprintf(stderr, "dt-testworker: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	const char *list = getenv("DT_FUNCTIONS");
	int added = 0;
	for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
		if (!wanted(list, functions[i].name))
			continue;
		int rc = dtask_worker_add(w, functions[i].name, functions[i].fn, NULL);
		if (rc < 0) {
			fprintf(stderr, "dt-testworker: cannot add %s: %s\n", functions[i].name,
				dtask_strerror(rc));
			return 1;
		}
		added++;
	}
	if (!added) {
		fprintf(stderr, "dt-testworker: DT_FUNCTIONS=%s names none of count, fail, wait, "
				"stubborn, slowcount\n", list ? list : "");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	return dtask_worker_main(argc, argv, setup);
}
