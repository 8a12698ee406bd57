/*
 * test_client.c - the client API of dtask.h (src/lib/client.c) against a
 * real redis-server, with no daemon: records are written straight into
 * Redis to stand for every state, and a helper thread flips one to END
 * while dtask_wait() polls.
 *
 * Starts nothing: it uses the private redis-server on 127.0.0.1:$REDIS_PORT
 * that tests/integration/client.sh starts (and skips without REDIS_PORT),
 * and FLUSHes it.  Its configuration file goes to $T (or $TMPDIR).
 */
#include "build-config.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "dtask.h"
#include "tap.h"

#define PLAN 127

static redisContext *R;
static int port;
static char conf_path[512];

/* ------------------------------------------------------------- helpers */

static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap)
{
	redisReply *r = redisvCommand(c, fmt, ap);
	if (!r) {
		printf("Bail out! raw redis connection: %s\n", c->errstr);
		exit(1);
	}
	return r;
}

static void cmd0(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	freeReplyObject(vcmd(R, fmt, ap));
	va_end(ap);
}

static long long num(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = vcmd(R, fmt, ap);
	va_end(ap);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return v;
}

static char ring[8][8192];
static unsigned ring_next;

static const char *str(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = vcmd(R, fmt, ap);
	va_end(ap);
	const char *out = NULL;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
		char *b = ring[ring_next++ % 8];
		snprintf(b, sizeof ring[0], "%s", r->str);
		out = b;
	}
	freeReplyObject(r);
	return out;
}

/* A member of a JSON object as compact text ("(none)" when absent). */
static const char *member(const char *json, const char *name)
{
	char *b = ring[ring_next++ % 8];
	struct json_object *o = json_tokener_parse(json), *v;
	if (!o || !json_object_object_get_ex(o, name, &v))
		snprintf(b, sizeof ring[0], "(none)");
	else
		snprintf(b, sizeof ring[0], "%s",
			 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return b;
}

static const char *jfield(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

/* calls of a command so far (INFO commandstats), e.g. "lpush". */
static long long calls(const char *command)
{
	const char *info = str("INFO commandstats");
	char key[64];
	snprintf(key, sizeof key, "cmdstat_%s:calls=", command);
	const char *p = info ? strstr(info, key) : NULL;
	return p ? atoll(p + strlen(key)) : 0;
}

static void write_conf(const char *path, int p)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	fprintf(f, "{\"redis\": {\"host\": \"127.0.0.1\", \"port\": %d}}\n", p);
	fclose(f);
}

static dtask_client *C;

/* --------------------------------------------------------------- tests */

static void t_new(void)
{
	char *e = NULL, path[600];
	snprintf(path, sizeof path, "%s.closed", conf_path);
	write_conf(path, 1);
	dtask_client *c = dtask_client_new(path, &e);
	ok(c == NULL, "a closed port: no client");
	like_str(e, "cannot reach Redis at 127.0.0.1:1: ", "  one line naming host:port (%s)",
		 e ? e : "");
	free(e);
	unlink(path);
	e = NULL;
	c = dtask_client_new("/nonexistent/dtask.json", &e);
	ok(c == NULL && e && strstr(e, "/nonexistent/dtask.json"),
	   "a missing file: no client, the message names it (%s)", e ? e : "");
	free(e);
	e = NULL;
	C = dtask_client_new(conf_path, &e);
	ok(C != NULL, "a client for the test redis (%s)", e ? e : "");
	free(e);
	if (!C) {
		printf("Bail out! no client\n");
		exit(1);
	}
	is_str(dtask_client_error(C), "", "no error yet");
	long long now = 0;
	is_int(dtask_client_time(C, &now), 0, "dtask_client_time");
	ok(llabs(now - (long long)time(NULL) * 1000) < 5000, "  Redis time in ms (%lld)", now);
}

static void t_submit(void)
{
	char id[DTASK_ID_MAX + 1];
	cmd0("FLUSHALL");
	dtask_submit_opts o;
	memset(&o, 0, sizeof o);
	o.id = "s-1";
	is_int(dtask_submit(C, "f", "{\"a\":[1,{}],\"s\":\"x/y\"}", &o, id), 0, "submit");
	is_str(id, "s-1", "  id_out is the given id");
	is_int(num("LLEN new-task"), 1, "  one item on new-task");
	const char *it = str("LINDEX new-task 0");
	is_str(member(it, "id"), "\"s-1\"", "  id");
	is_str(member(it, "function"), "\"f\"", "  function");
	is_str(member(it, "data"), "{\"a\":[1,{}],\"s\":\"x/y\"}", "  data ([] and {} kept)");
	is_str(member(it, "clean_end"), "true", "  clean_end true by default");
	is_str(member(it, "state_optional"), "false", "  state_optional false by default");
	is_str(member(it, "max_attempts"), "(none)", "  no max_attempts: the default");

	memset(&o, 0, sizeof o);
	o.keep_end = 1;
	o.state_optional = 1;
	o.max_attempts = 3;
	is_int(dtask_submit(C, "g", NULL, &o, id), 0, "submit without id and data");
	is_int((long long)strlen(id), 36, "  a UUID id (%s)", id);
	it = str("LINDEX new-task 0");
	char want[64];
	snprintf(want, sizeof want, "\"%s\"", id);
	is_str(member(it, "id"), want, "  carried in the task JSON");
	is_str(member(it, "data"), "null", "  data null");
	is_str(member(it, "clean_end"), "false", "  keep_end: clean_end false");
	is_str(member(it, "state_optional"), "true", "  state_optional true");
	is_str(member(it, "max_attempts"), "3", "  max_attempts 3");

	memset(&o, 0, sizeof o);
	o.max_attempts = -1;
	is_int(dtask_submit(C, "g", "7", &o, NULL), 0, "submit, no limit");
	is_str(member(str("LINDEX new-task 0"), "max_attempts"), "0", "  max_attempts 0");
	is_int(dtask_submit(C, "g", " \"txt\" \n", NULL, NULL), 0, "a JSON string as data");
	is_str(member(str("LINDEX new-task 0"), "data"), "\"txt\"", "  kept as a string");

	long long n = num("LLEN new-task");
	is_int(dtask_submit(C, "g", "{", NULL, id), DTASK_EINVAL, "data not JSON: EINVAL");
	like_str(dtask_client_error(C), "data is not valid JSON", "  says why (%s)",
		 dtask_client_error(C));
	is_str(id, "", "  id_out emptied");
	is_int(dtask_submit(C, "g", "1 2", NULL, NULL), DTASK_EINVAL, "trailing text: EINVAL");
	is_int(dtask_submit(C, "g", "[1,]", NULL, NULL), DTASK_EINVAL, "a trailing comma: EINVAL");
	is_int(dtask_submit(C, "", "1", NULL, NULL), DTASK_EINVAL, "empty function: EINVAL");
	is_int(dtask_submit(C, NULL, "1", NULL, NULL), DTASK_EINVAL, "no function: EINVAL");
	o.id = "bad id";
	is_int(dtask_submit(C, "g", "1", &o, NULL), DTASK_EINVAL, "bad id: EINVAL");
	like_str(dtask_client_error(C), "invalid task id", "  says why");
	is_int(num("LLEN new-task"), n, "nothing queued by the failures");
	is_int(dtask_submit(C, "g", "1", NULL, NULL), 0, "a success after failures");
	is_str(dtask_client_error(C), "", "  clears the error");
}

static void t_submit_many(void)
{
	cmd0("FLUSHALL");
	const char *items[] = {
		"{\"id\":\"m-1\",\"function\":\"f\",\"data\":[]}",
		"{\"id\":\"m-2\",\"function\":\"f\",\"data\":\"{\\\"a\\\":1}\"}",
		"{\"function\":\"f\"}",
	};
	long long before = calls("lpush");
	is_int(dtask_submit_many(C, items, 3), 0, "submit_many 3");
	is_int(calls("lpush") - before, 1, "  in one LPUSH (one round trip)");
	is_int(num("LLEN new-task"), 3, "  3 items");
	is_str(str("RPOP new-task"), items[0], "  the first is taken first, verbatim");
	is_str(str("RPOP new-task"), items[1], "  then the second");
	is_str(str("RPOP new-task"), items[2], "  then the third (no id: the distributor's job)");
	const char *bad[] = { items[0], "{\"id\":\"x\"}", items[1] };
	is_int(dtask_submit_many(C, bad, 3), DTASK_EINVAL, "one without function: EINVAL");
	like_str(dtask_client_error(C), "task 1:", "  names its index (%s)", dtask_client_error(C));
	is_int(num("LLEN new-task"), 0, "  nothing queued");
	is_int(dtask_submit_many(C, items, 0), 0, "zero tasks: nothing to do");
}

/* A task record: id, state, the set it is in, and one more field k=v
 * (k NULL: none). */
static void rec(const char *id, const char *state, const char *set, const char *k,
		const char *v)
{
	cmd0("DEL task-%s", id);
	cmd0("HSET task-%s state %s attempt 2 function f worker w1 update 1000 clean_end 0 "
	     "data {\"id\":\"%s\",\"function\":\"f\",\"clean_end\":false}", id, state, id);
	cmd0("SADD %s %s", set, id);
	if (k)
		cmd0("HSET task-%s %s %s", id, k, v);
}

static void t_get_list(void)
{
	struct json_object *o = NULL;
	cmd0("FLUSHALL");
	is_int(dtask_get(C, "nope", &o), DTASK_ENOTFOUND, "get of an unknown id: ENOTFOUND");
	is_str(dtask_client_error(C), "no task nope", "  \"no task nope\"");
	is_int(dtask_get(C, "a b", &o), DTASK_EINVAL, "get of a bad id: EINVAL");
	rec("t-c", "STOPPED", "tasks", NULL, NULL);
	rec("t-a", "RUNNING", "tasks", NULL, NULL);
	rec("t-b", "QUEUED", "tasks", NULL, NULL);
	rec("t-d", "END", "end-task", "result", "{\"r\":1}");
	cmd0("SADD tasks t-gone"); /* cleaned between SMEMBERS and HGETALL */
	is_int(dtask_get(C, "t-d", &o), 0, "get");
	is_str(jfield(o, "state"), "END", "  state");
	is_str(jfield(o, "result"), "{\"r\":1}", "  result as text");
	json_object_put(o);

	o = NULL;
	long long before = calls("hgetall");
	is_int(dtask_list(C, NULL, &o), 0, "list");
	is_int(calls("hgetall") - before, 5, "  one HGETALL per member (pipelined)");
	is_int(o ? (long long)json_object_array_length(o) : -1, 4,
	       "  4 records (the member without one is left out)");
	const char *ids = "";
	char buf[256] = "";
	for (size_t i = 0; o && i < json_object_array_length(o); i++) {
		strcat(buf, jfield(json_object_array_get_idx(o, i), "id"));
		strcat(buf, " ");
	}
	ids = buf;
	is_str(ids, "t-a t-b t-c t-d ", "  sorted by id, each with its id");
	json_object_put(o);
	static const char *const st[] = { "QUEUED", "RUNNING", "STOPPED", "END" };
	static const char *const want[] = { "t-b", "t-a", "t-c", "t-d" };
	for (int i = 0; i < 4; i++) {
		o = NULL;
		is_int(dtask_list(C, st[i], &o), 0, "list %s", st[i]);
		ok(o && json_object_array_length(o) == 1 &&
		   !strcmp(jfield(json_object_array_get_idx(o, 0), "id"), want[i]),
		   "  only %s", want[i]);
		json_object_put(o);
	}
	o = NULL;
	is_int(dtask_list(C, "DONE", &o), DTASK_EINVAL, "list of a bad state: EINVAL");
	ok(o == NULL, "  no array");
	cmd0("FLUSHALL");
	is_int(dtask_list(C, NULL, &o), 0, "list of nothing");
	is_int(o ? (long long)json_object_array_length(o) : -1, 0, "  an empty array");
	json_object_put(o);
}

static void t_requests(void)
{
	cmd0("FLUSHALL");
	rec("r-run", "RUNNING", "tasks", NULL, NULL);
	cmd0("ZADD running 1000 r-run");
	rec("r-q", "QUEUED", "tasks", NULL, NULL);
	rec("r-stop", "STOPPED", "tasks", NULL, NULL);
	rec("r-end", "END", "end-task", NULL, NULL);

	is_int(dtask_stop(C, "r-run"), 0, "stop RUNNING");
	is_str(str("HGET task-r-run request"), "stop", "  request=stop");
	is_int(dtask_stop(C, "r-q"), DTASK_ESTATE, "stop QUEUED: ESTATE");
	like_str(dtask_client_error(C), "QUEUED", "  names the state (%s)", dtask_client_error(C));
	is_int(dtask_stop(C, "r-end"), DTASK_ESTATE, "stop END: ESTATE");
	is_int(dtask_stop(C, "r-none"), DTASK_ENOTFOUND, "stop unknown: ENOTFOUND");
	is_int(dtask_stop(C, "bad id"), DTASK_EINVAL, "stop bad id: EINVAL");

	is_int(dtask_cancel(C, "r-run"), 0, "cancel RUNNING");
	is_str(str("HGET task-r-run request"), "cancel", "  request=cancel");
	is_int(dtask_cancel(C, "r-q"), 0, "cancel QUEUED");
	is_str(str("HGET task-r-q request"), "cancel", "  request=cancel");
	is_int(dtask_cancel(C, "r-stop"), 0, "cancel STOPPED");
	is_str(str("HGET task-r-stop state"), "END", "  ended at once");
	is_str(str("HGET task-r-stop error"), "cancelled", "  error cancelled");
	is_int(num("SISMEMBER end-task r-stop"), 1, "  kept in end-task (clean_end 0)");
	is_int(dtask_cancel(C, "r-end"), DTASK_ESTATE, "cancel END: ESTATE");
	is_int(dtask_cancel(C, "r-none"), DTASK_ENOTFOUND, "cancel unknown: ENOTFOUND");

	/* requeue */
	rec("q-run", "RUNNING", "tasks", NULL, NULL);
	cmd0("ZADD running 1000 q-run");
	cmd0("DEL new-task");
	is_int(dtask_requeue(C, "q-run"), 0, "requeue RUNNING (not stale: at once)");
	is_str(str("HGET task-q-run state"), "QUEUED", "  QUEUED");
	is_int(num("EXISTS task-q-run"), 1, "  record kept");
	ok(str("HGET task-q-run worker") == NULL, "  worker cleared");
	is_int(num("ZSCORE running q-run"), -1, "  out of running");
	is_str(member(str("LINDEX new-task 0"), "attempt"), "2", "  pushed with its attempt");
	ok(str("HGET task-q-run failures") == NULL, "  no failure counted");
	is_int(dtask_requeue(C, "q-run"), DTASK_ESTATE, "requeue again (QUEUED): ESTATE");
	rec("q-stop", "STOPPED", "tasks", NULL, NULL);
	is_int(dtask_requeue(C, "q-stop"), 0, "requeue STOPPED");
	is_str(str("HGET task-q-stop state"), "QUEUED", "  QUEUED");
	is_int(dtask_requeue(C, "r-end"), DTASK_ESTATE, "requeue END: ESTATE");
	is_int(dtask_requeue(C, "r-none"), DTASK_ENOTFOUND, "requeue unknown: ENOTFOUND");
	is_int(num("LLEN new-task"), 2, "two items requeued in all");
}

/* The flipper thread: after ms, runs its command on its own connection. */
struct flip {
	int ms;
	const char *cmd;
	const char *id;
};

static void *flipper(void *arg)
{
	const struct flip *f = arg;
	struct timespec ts = { f->ms / 1000, (long)(f->ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	redisContext *c = redisConnect("127.0.0.1", port);
	if (c && !c->err) {
		redisReply *r = redisCommand(c, f->cmd, f->id);
		if (r)
			freeReplyObject(r);
	}
	if (c)
		redisFree(c);
	return NULL;
}

static void t_wait(void)
{
	struct json_object *o = NULL;
	pthread_t th;
	cmd0("FLUSHALL");

	rec("w-1", "RUNNING", "tasks", NULL, NULL);
	struct flip f1 = { 300, "HSET task-%s state END result [1,{}] end 2000", "w-1" };
	pthread_create(&th, NULL, flipper, &f1);
	is_int(dtask_wait(C, "w-1", 10000, 1, &o), 0, "wait until a RUNNING record turns END");
	pthread_join(th, NULL);
	is_str(jfield(o, "state"), "END", "  the END record");
	is_str(jfield(o, "result"), "[1,{}]", "  with its result");
	json_object_put(o);
	o = NULL;
	is_int(num("EXISTS task-w-1"), 0, "  clean: the record is deleted");
	is_int(num("SISMEMBER end-task w-1"), 0, "  and not in end-task");
	is_int(num("SISMEMBER tasks w-1"), 0, "  nor in tasks");

	rec("w-2", "END", "end-task", "error", "boom");
	is_int(dtask_wait(C, "w-2", 0, 0, &o), 0, "wait on an END record, no clean");
	is_str(jfield(o, "error"), "boom", "  its error");
	json_object_put(o);
	o = NULL;
	is_int(num("SISMEMBER end-task w-2"), 1, "  kept");

	rec("w-3", "RUNNING", "tasks", NULL, NULL);
	is_int(dtask_wait(C, "w-3", 200, 1, &o), DTASK_ETIMEDOUT, "timeout: ETIMEDOUT");
	ok(o == NULL, "  no record");
	is_str(str("HGET task-w-3 state"), "RUNNING", "  nothing deleted");

	struct flip f2 = { 300, "DEL task-%s", "w-3" };
	pthread_create(&th, NULL, flipper, &f2);
	is_int(dtask_wait(C, "w-3", 10000, 1, &o), DTASK_ENOTFOUND,
	       "a record that disappears (clean_end): ENOTFOUND");
	pthread_join(th, NULL);

	/* No record yet (not claimed): it waits for one. */
	struct flip f3 = { 300, "HSET task-%s state END end 3000", "w-4" };
	pthread_create(&th, NULL, flipper, &f3);
	is_int(dtask_wait(C, "w-4", 10000, 1, &o), 0, "a record that appears late, END");
	pthread_join(th, NULL);
	json_object_put(o);
	o = NULL;
	is_int(num("EXISTS task-w-4"), 0, "  cleaned");
	is_int(dtask_wait(C, "w-5", 100, 1, &o), DTASK_ETIMEDOUT, "no record at all: ETIMEDOUT");
}

static void t_workers(void)
{
	struct json_object *o = NULL;
	cmd0("FLUSHALL");
	is_int(dtask_workers(C, &o), 0, "workers, none");
	is_int(o ? (long long)json_object_array_length(o) : -1, 0, "  an empty array");
	json_object_put(o);
	o = NULL;
	cmd0("SADD workers wb wa wgone");
	cmd0("HSET worker-wa host h1 port 7001 capacity 4 running 1 load 0.5 state UP "
	     "functions [\"echo\",\"noop\"] update 1000");
	cmd0("HSET worker-wb host h2 port 7002 capacity 2 running 0 load 0 state DOWN "
	     "functions [] update 1000");
	is_int(dtask_workers(C, &o), 0, "workers");
	is_int(o ? (long long)json_object_array_length(o) : -1, 2, "  two (no record: left out)");
	struct json_object *a = o ? json_object_array_get_idx(o, 0) : NULL;
	is_str(jfield(a, "name"), "wa", "  sorted by name, with name");
	is_str(jfield(a, "functions"), "[\"echo\",\"noop\"]", "  functions verbatim");
	is_str(jfield(a, "port"), "7001", "  port");
	is_str(jfield(o ? json_object_array_get_idx(o, 1) : NULL, "state"), "DOWN",
	       "  the second's state");
	json_object_put(o);
}

static void t_redis_gone(void)
{
	/* The client's connection is dropped by the server: the next call
	 * reconnects (store.c), so a CLIENT KILL costs one failed call at most. */
	cmd0("CLIENT KILL TYPE normal SKIPME yes");
	struct json_object *o = NULL;
	int rc = dtask_list(C, NULL, &o);
	json_object_put(o);
	o = NULL;
	ok(rc == DTASK_EREDIS && dtask_client_error(C)[0], "a dropped link: EREDIS with a "
	   "message (%s)", dtask_client_error(C));
	is_int(dtask_list(C, NULL, &o), 0, "then the client reconnects");
	json_object_put(o);
}

int main(void)
{
	const char *p = getenv("REDIS_PORT");
	if (!p || !*p) {
		printf("1..0 # SKIP REDIS_PORT is not set (run tests/integration/client.sh)\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	port = atoi(p);
	const char *dir = getenv("T");
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(conf_path, sizeof conf_path, "%s/test_client.%d.json", dir, (int)getpid());
	write_conf(conf_path, port);
	R = redisConnect("127.0.0.1", port);
	if (!R || R->err) {
		printf("Bail out! cannot connect to redis on port %d\n", port);
		return 1;
	}
	tap_plan(PLAN);
	t_new();
	t_submit();
	t_submit_many();
	t_get_list();
	t_requests();
	t_wait();
	t_workers();
	t_redis_gone();
	dtask_client_free(C);
	redisFree(R);
	unlink(conf_path);
	return tap_done(PLAN);
}
