/* test_task - the dtask handle (task.c): identity, "data" in both forms,
 * set_result validation, checkpoint/sleep/pause and stop kinds, and the
 * raw member scanner the worker uses to take "task" verbatim. */
#include "build-config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <json-c/json.h>

#include "dtask.h"
#include "json.h"
#include "tap.h"
#include "task_internal.h"
#include "util.h"

static dtask *mk(const char *item)
{
	dtask *t = NULL;
	char err[256];
	if (dt_task_new("t1", 3, "f", item, strlen(item), 0, &t, err, sizeof err) < 0)
		tap_diag("dt_task_new: %s", err);
	return t;
}

struct later {
	dtask *t;
	int ms;
	int kind;   /* stop kind, or 0 to unpause */
	atomic_int acted; /* set just before it acts */
};

static void *do_later(void *arg)
{
	struct later *l = arg;
	dt_sleep_ms(l->ms);
	atomic_store(&l->acted, 1);
	if (l->kind)
		dt_task_request_stop(l->t, l->kind);
	else
		dt_task_set_paused(l->t, 0);
	return NULL;
}

int main(void)
{
	dtask *t;
	const char *v;
	size_t vlen;

	tap_plan(47);

	/* ---- identity and data */
	t = mk("{\"id\":\"t1\",\"function\":\"f\",\"data\":{\"w\":640}}");
	ok(t != NULL, "a task");
	is_str(dtask_id(t), "t1", "id");
	is_str(dtask_function(t), "f", "function");
	is_int(dtask_attempt(t), 3, "attempt");
	is_str(dtask_data(t), "{\"w\":640}", "data as sent");
	json_object *j = dtask_data_json(t), *w;
	ok(j && json_object_object_get_ex(j, "w", &w) && json_object_get_int(w) == 640,
	   "data parsed");
	ok(dtask_data_json(t) == j, "parsed once, then cached");
	dt_task_free(t);

	t = mk("{\"id\":\"t1\",\"function\":\"f\",\"data\":\"{\\\"w\\\":640, \\\"s\\\":\\\"\\\\u00e9\\\"}\"}");
	is_str(dtask_data(t), "{\"w\":640, \"s\":\"\\u00e9\"}", "2014 form: a string holding JSON is decoded");
	j = dtask_data_json(t);
	ok(j && json_object_is_type(j, json_type_object), "and parsed as an object");
	dt_task_free(t);

	t = mk("{\"id\":\"t1\",\"function\":\"f\",\"data\":\"hello\"}");
	is_str(dtask_data(t), "\"hello\"", "a string not holding JSON stays a string");
	ok(json_object_is_type(dtask_data_json(t), json_type_string), "parsed as a string");
	dt_task_free(t);

	t = mk("{\"id\":\"t1\",\"function\":\"f\"}");
	is_str(dtask_data(t), "null", "absent data: \"null\"");
	ok(dtask_data_json(t) == NULL, "absent data: NULL json");
	dt_task_free(t);

	t = mk(" { \"function\" : \"f\", \"data\" : [1, {\"a\":\"}],\\\"\"}] , \"id\":\"t1\" } ");
	is_str(dtask_data(t), "[1, {\"a\":\"}],\\\"\"}]", "data verbatim, with brackets and quotes in strings");
	dt_task_free(t);

	t = mk("{\"data\":1,\"function\":\"f\",\"data\":[]}");
	is_str(dtask_data(t), "[]", "a member given twice: the last counts, as in json-c");
	dt_task_free(t);

	t = mk("{\"d\\u0061ta\":{\"x\":[]},\"function\":\"f\"}");
	is_str(dtask_data(t), "{\"x\":[]}", "an escaped key is decoded");
	dt_task_free(t);

	/* ---- the member scanner, on a run line */
	const char *run = "{\"type\":\"run\",\"id\":\"a\",\"attempt\":1,\"function\":\"x\\\"task\\\":\","
			  "\"task\":{\"id\":\"a\",\"function\":\"x\",\"data\":{\"task\":[]}}}";
	is_int(dt_json_member(run, strlen(run), "task", &v, &vlen), 1, "\"task\" found");
	ok(vlen == strlen("{\"id\":\"a\",\"function\":\"x\",\"data\":{\"task\":[]}}") &&
	   memcmp(v, "{\"id\":\"a\",\"function\":\"x\",\"data\":{\"task\":[]}}", vlen) == 0,
	   "its raw bytes, not fooled by \"task\" inside strings or nested objects");
	is_int(dt_json_member(run, strlen(run), "nope", &v, &vlen), 0, "absent member");
	is_int(dt_json_member("[1]", 3, "task", &v, &vlen), DTASK_EINVAL, "not an object");
	is_int(dt_json_member("{}", 2, "task", &v, &vlen), 0, "empty object");
	is_int(dt_json_member("{\"task\":5}", 10, "task", &v, &vlen) == 1 && vlen == 1 && *v == '5',
	       1, "a scalar at the end");
	/* The member json-c reads: the last of that name, and a key with an
	 * escaped NUL ends there for json-c ("task\u0000" is "task"). */
	{
		const char *two = "{\"type\":\"run\",\"task\":{\"data\":\"A\"},"
				  "\"task\\u0000\":{\"data\":\"B\"}}";
		json_object *o = json_tokener_parse(two), *tk = NULL;
		json_object_object_get_ex(o, "task", &tk);
		const char *jc = tk ? json_object_to_json_string_ext(tk, JSON_C_TO_STRING_PLAIN) : "";
		ok(dt_json_member(two, strlen(two), "task", &v, &vlen) == 1 && vlen == strlen(jc) &&
		   memcmp(v, jc, vlen) == 0, "two \"task\" members, one with an escaped NUL: the one "
		   "json-c reads (%s)", jc);
		json_object_put(o);
	}
	/* Several names in one pass: each the last of its name; NULL absent. */
	{
		static const char *const names[] = { "type", "task", "nope", "id" };
		const char *vs[4];
		size_t vls[4];
		const char *two = "{\"id\":1,\"type\":\"run\",\"task\":{\"x\":[]},\"id\":\"b\"}";
		ok(dt_json_members(two, strlen(two), names, 4, vs, vls) == 3 && vls[0] == 5 &&
		   !memcmp(vs[0], "\"run\"", 5) && vls[1] == 8 && !memcmp(vs[1], "{\"x\":[]}", 8) &&
		   !vs[2] && vls[2] == 0 && vls[3] == 3 && !memcmp(vs[3], "\"b\"", 3),
		   "dt_json_members: 3 of 4 found in one pass, the last \"id\" among them");
		is_int(dt_json_members("[1]", 3, names, 4, vs, vls), DTASK_EINVAL,
		       "dt_json_members: not an object");
	}

	/* ---- set_result / set_error / emit */
	t = mk("{\"id\":\"t1\",\"function\":\"f\"}");
	is_int(dtask_set_result(t, "{\"ok\":true,\"n\":[1,2]}"), 0, "an object result");
	is_str(t->result, "{\"ok\":true,\"n\":[1,2]}", "kept verbatim");
	is_int(dtask_set_result(t, "42"), 0, "a number");
	is_int(dtask_set_result(t, " \"s\" "), 0, "a string with white space");
	is_int(dtask_set_result(t, "{ok}"), DTASK_EINVAL, "not JSON: refused");
	is_int(dtask_set_result(t, "[1,]"), DTASK_EINVAL, "a trailing comma: refused (strict)");
	is_int(dtask_set_result(t, "1 2"), DTASK_EINVAL, "two values: refused");
	is_int(dtask_set_result(t, "\"\xff\""), DTASK_EINVAL, "invalid UTF-8: refused");
	is_int(dtask_set_result(t, NULL), DTASK_EINVAL, "NULL: refused");
	is_str(t->result, " \"s\" ", "a refused result leaves the last good one");
	is_int(dtask_set_error(t, "disk full"), 0, "an error");
	is_int(dtask_emit(t, "progress", "{\"pct\":50}"), 0, "emit: valid event");
	is_int(dtask_emit(t, "progress", "{pct"), DTASK_EINVAL, "emit: bad JSON refused");
	is_int(dtask_emit(t, "", NULL), DTASK_EINVAL, "emit: a name is needed");

	/* ---- checkpoint and sleep */
	is_int(dtask_checkpoint(t), 0, "checkpoint: go on");
	int64_t t0 = dt_mono_ms();
	is_int(dtask_sleep(t, 30), 0, "a 30 ms sleep runs out");
	ok(dt_mono_ms() - t0 >= 30, "after 30 ms");

	pthread_t th;
	struct later l = { .t = t, .ms = 50, .kind = DT_STOP_STOP };
	pthread_create(&th, NULL, do_later, &l);
	t0 = dt_mono_ms();
	int r = dtask_sleep(t, 10000);
	int64_t took = dt_mono_ms() - t0;
	pthread_join(th, NULL);
	ok(r != 0 && took < 2000, "a 10 s sleep wakes on stop (after %lld ms)", (long long)took);
	ok(dtask_checkpoint(t) != 0, "checkpoint: stop now");
	ok(dt_task_request_stop(t, DT_STOP_FENCED) == 1 && dt_task_request_stop(t, DT_STOP_LOST) == 0,
	   "fenced overrides stop; nothing overrides fenced");
	dt_task_free(t);

	/* ---- pause */
	t = mk("{\"id\":\"t1\",\"function\":\"f\"}");
	dt_task_set_paused(t, 1);
	struct later u = { .t = t, .ms = 50, .kind = 0 };
	pthread_create(&th, NULL, do_later, &u);
	t0 = dt_mono_ms();
	r = dtask_checkpoint(t);
	took = dt_mono_ms() - t0;
	pthread_join(th, NULL);
	/* Order, not timing: it returned only once the other thread unpaused. */
	ok(r == 0 && atomic_load(&u.acted), "checkpoint blocks while paused, then goes on (%lld ms)",
	   (long long)took);
	dt_task_set_paused(t, 1);
	struct later s = { .t = t, .ms = 30, .kind = DT_STOP_SHUTDOWN };
	pthread_create(&th, NULL, do_later, &s);
	r = dtask_checkpoint(t);
	pthread_join(th, NULL);
	ok(r != 0, "a stop ends the pause");
	dt_task_free(t);
	return tap_done(47);
}
