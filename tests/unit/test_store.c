/*
 * test_store.c - the Redis model (store.c and the scripts) against a real
 * redis-server: fencing, idempotence, requeue, ordering, NOSCRIPT recovery,
 * reconnection, key prefix.
 *
 * Starts nothing: it uses the private redis-server on 127.0.0.1:$REDIS_PORT
 * that tests/integration/store.sh starts (and skips without REDIS_PORT).
 * It FLUSHes that server's databases 0 and 3, so never point it at a Redis
 * that holds anything of value.  A second, raw hiredis connection (R)
 * inspects what the scripts wrote.
 */
#include "build-config.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "dtask.h"
#include "item.h"
#include "store.h"
#include "tap.h"
#include "util.h"

#define PLAN 479

static redisContext *R;
static dt_store *S;
static dt_redis_conf RC;
static char err[512];

/* ------------------------------------------------------------- helpers */

static redisReply *cmd(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(R, fmt, ap);
	va_end(ap);
	if (!r) {
		printf("Bail out! raw redis connection: %s\n", R->errstr);
		exit(1);
	}
	return r;
}

static void cmd0(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(R, fmt, ap);
	va_end(ap);
	if (!r) {
		printf("Bail out! raw redis connection: %s\n", R->errstr);
		exit(1);
	}
	freeReplyObject(r);
}

/* An integer reply (or -1 for anything else). */
static long long num(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(R, fmt, ap);
	va_end(ap);
	if (!r) {
		printf("Bail out! raw redis connection: %s\n", R->errstr);
		exit(1);
	}
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return v;
}

/* A string reply copied into a small ring of buffers; NULL for nil. */
static char ring[8][8192];
static unsigned ring_next;

static const char *str(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(R, fmt, ap);
	va_end(ap);
	if (!r) {
		printf("Bail out! raw redis connection: %s\n", R->errstr);
		exit(1);
	}
	const char *out = NULL;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
		char *b = ring[ring_next++ % 8];
		snprintf(b, sizeof ring[0], "%s", r->str);
		out = b;
	}
	freeReplyObject(r);
	return out;
}

static const char *field(const char *id, const char *name)
{
	return str("HGET task-%s %s", id, name);
}

static void flush(void)
{
	cmd0("FLUSHALL");
}

static void submit(const char *json)
{
	if (dt_store_submit(S, json, strlen(json), err, sizeof err))
		tap_diag("submit failed: %s", err);
}

/* One taken item, parsed. */
typedef struct taken {
	dt_strv v;
	dt_item it;
} taken;

/* Take one item from new-task for d and parse it. */
static int take1(dt_store *s, const char *d, taken *t)
{
	memset(t, 0, sizeof *t);
	char why[256];
	if (dt_store_take(s, d, NULL, 1, &t->v, err, sizeof err) || t->v.n != 1) {
		tap_diag("take failed: %s (n=%zu)", err, t->v.n);
		return -1;
	}
	if (dt_item_parse(t->v.v[0], t->v.len[0], &t->it, why, sizeof why)) {
		tap_diag("parse failed: %s", why);
		return -1;
	}
	return 0;
}

static void taken_free(taken *t)
{
	dt_strv_free(&t->v);
	dt_item_free(&t->it);
}

/* Claim a taken item for worker w as d; the status (or -1 on error). */
static int claim_as(dt_store *s, const char *d, taken *t, const char *w, int64_t *attempt)
{
	dt_claim_req q = { t->v.v[0], t->v.len[0], &t->it, w };
	dt_claim_res r;
	if (dt_store_claim(s, d, &q, 1, &r, err, sizeof err)) {
		tap_diag("claim failed: %s", err);
		return -1;
	}
	if (attempt)
		*attempt = r.attempt;
	return r.status;
}

static int claim(taken *t, const char *w, int64_t *attempt)
{
	return claim_as(S, "d1", t, w, attempt);
}

/* Submit json, take it as d1 and claim it for w1: the new attempt. */
static int64_t submit_claim(const char *json, taken *t)
{
	int64_t attempt = -1;
	submit(json);
	if (take1(S, "d1", t) == 0 && claim(t, "w1", &attempt) != DT_CLAIM_OK)
		attempt = -1;
	return attempt;
}

static int hb1(const char *id, int64_t attempt)
{
	dt_task_ref t = { id, attempt };
	int res = -1;
	if (dt_store_heartbeat(S, &t, 1, &res, err, sizeof err))
		tap_diag("heartbeat failed: %s", err);
	return res;
}

static int fin1(const char *id, int64_t attempt, int outcome, const char *result,
		const char *error)
{
	dt_finish_req q = { id, attempt, outcome, result, error };
	int res = -1;
	if (dt_store_finish(S, &q, 1, &res, err, sizeof err))
		tap_diag("finish failed: %s", err);
	return res;
}

/* One requeue; its status, with the skip state in state (may be NULL). */
static int rq1(const char *id, int64_t attempt, const char *reason, unsigned flags,
	       int64_t task_timeout, char *state)
{
	dt_requeue_req q = { id, attempt, reason, flags, -1 };
	dt_requeue_res r;
	memset(&r, 0, sizeof r);
	r.status = -1;
	if (dt_store_requeue(S, &q, 1, task_timeout, &r, err, sizeof err))
		tap_diag("requeue failed: %s", err);
	if (state)
		snprintf(state, 16, "%s", r.state);
	return r.status;
}

static long long noscripts(void)
{
	const char *info = str("INFO errorstats");
	const char *p = info ? strstr(info, "errorstat_NOSCRIPT:count=") : NULL;
	return p ? atoll(p + strlen("errorstat_NOSCRIPT:count=")) : 0;
}

/* A JSON member of a text, as a borrowed string in a static buffer. */
static const char *json_member(const char *json, const char *name)
{
	static char buf[4096];
	struct json_object *o = json_tokener_parse(json), *m;
	buf[0] = '\0';
	if (o && json_object_object_get_ex(o, name, &m))
		snprintf(buf, sizeof buf, "%s",
			 json_object_is_type(m, json_type_string) ?
				 json_object_get_string(m) :
				 json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return buf;
}

/* ------------------------------------------------------------- sections */

static void t_basics(void)
{
	int64_t now = 0;
	ok(dt_store_connected(S), "open connects");
	ok(dt_store_connected_since(S) >= 0, "connected_since is set");
	is_int(dt_store_ping(S, err, sizeof err), 0, "PING");
	is_int(dt_store_time(S, &now, err, sizeof err), 0, "TIME");
	ok(llabs(now - dt_wall_ms()) < 5000, "Redis time is in ms (%lld)", (long long)now);

	dt_redis_conf bad = RC;
	bad.port = 1;
	dt_store *x = NULL;
	is_int(dt_store_open(&bad, &x, err, sizeof err), DTASK_EREDIS, "connection refused -> EREDIS");
	ok(x == NULL && strstr(err, "127.0.0.1:1"), "  with a message naming the server: %s", err);
}

static void t_take(void)
{
	dt_strv v;
	flush();
	submit("{\"function\":\"f\",\"id\":\"a\"}");
	submit("{\"function\":\"f\",\"id\":\"b\"}");
	submit("{\"function\":\"f\",\"id\":\"c\"}");
	is_int(dt_store_take(S, "d1", NULL, 2, &v, err, sizeof err), 0, "take 2");
	ok(v.n == 2 && strstr(v.v[0], "\"a\"") && strstr(v.v[1], "\"b\""), "oldest first (FIFO)");
	dt_strv_free(&v);
	is_int(num("LLEN inflight-d1"), 2, "both are in inflight-d1");
	is_int(dt_store_take(S, "d1", NULL, 5, &v, err, sizeof err), 0, "take 5");
	ok(v.n == 1 && strstr(v.v[0], "\"c\""), "gets the one left");
	dt_strv_free(&v);
	is_int(dt_store_take(S, "d1", NULL, 5, &v, err, sizeof err), 0, "take from empty");
	is_int(v.n, 0, "  gets nothing");

	int64_t t0 = dt_mono_ms();
	is_int(dt_store_take_blocking(S, "d1", 200, &v, err, sizeof err), 0, "blocking take, empty");
	int64_t el = dt_mono_ms() - t0;
	ok(v.n == 0 && el >= 150 && el < 2000, "  times out empty after ~200 ms (%lld ms)",
	   (long long)el);
	submit("{\"function\":\"f\",\"id\":\"d\"}");
	is_int(dt_store_take_blocking(S, "d1", 200, &v, err, sizeof err), 0, "blocking take");
	ok(v.n == 1 && strstr(v.v[0], "\"d\""), "  gets the item");
	dt_strv_free(&v);
	is_int(num("LLEN inflight-d1"), 4, "all four in inflight-d1");
	int64_t len = -1;
	submit("{\"function\":\"f\"}");
	is_int(dt_store_queue_len(S, NULL, &len, err, sizeof err), 0, "queue_len");
	is_int(len, 1, "  counts new-task");
}

static void t_claim(void)
{
	taken t, dup;
	int64_t attempt = 0;
	const char *item = "{\"id\":\"t1\",\"function\":\"f\",\"data\":[]}";
	flush();
	submit(item);
	ok(take1(S, "d1", &t) == 0, "take t1");
	is_int(claim(&t, "w1", &attempt), DT_CLAIM_OK, "claim t1");
	is_int(attempt, 1, "  attempt 1");
	is_str(field("t1", "state"), "RUNNING", "  state RUNNING");
	is_str(field("t1", "attempt"), "1", "  attempt field 1");
	is_str(field("t1", "worker"), "w1", "  worker");
	is_str(field("t1", "distributor"), "d1", "  distributor");
	is_str(field("t1", "data"), item, "  data is the item, verbatim");
	is_str(field("t1", "clean_end"), "1", "  clean_end recorded");
	is_str(field("t1", "function"), "f", "  function recorded");
	ok(field("t1", "start") && !strcmp(field("t1", "start"), field("t1", "update")),
	   "  start = update");
	is_int(num("SISMEMBER tasks t1"), 1, "  in tasks");
	is_str(str("ZSCORE running t1"), field("t1", "start"), "  in running, scored by update");
	is_int(num("LLEN inflight-d1"), 0, "  removed from inflight-d1");

	is_int(claim(&t, "w2", &attempt), DT_CLAIM_GONE, "the same claim again: gone");
	is_str(field("t1", "attempt"), "1", "  attempt unchanged");
	is_str(field("t1", "worker"), "w1", "  worker unchanged");

	/* Another copy of the item while t1 runs. */
	submit(item);
	ok(take1(S, "d1", &dup) == 0, "take a duplicate of t1");
	is_int(claim(&dup, "w2", NULL), DT_CLAIM_DUP, "its claim: dup");
	is_int(num("LLEN inflight-d1"), 0, "  removed from inflight-d1");
	is_int(num("LLEN bad-task"), 1, "  pushed on bad-task");
	const char *w = str("LINDEX bad-task 0");
	ok(w && !strncmp(json_member(w, "reason"), "duplicate: ", 11), "  reason: %s",
	   w ? json_member(w, "reason") : "-");
	ok(w && !strcmp(json_member(w, "item"), "{\"id\":\"t1\",\"function\":\"f\",\"data\":[]}"),
	   "  item embedded as JSON, verbatim");
	is_str(field("t1", "worker"), "w1", "  the running record is untouched");
	taken_free(&dup);
	taken_free(&t);

	/* Batch: three items in one call. */
	submit("{\"id\":\"b1\",\"function\":\"f\"}");
	submit("{\"id\":\"b2\",\"function\":\"f\"}");
	submit("{\"function\":\"f\"}");
	dt_strv v;
	dt_item it[3];
	dt_claim_req q[3];
	dt_claim_res r[3];
	char why[128];
	is_int(dt_store_take(S, "d1", NULL, 3, &v, err, sizeof err), 0, "take 3");
	for (size_t i = 0; i < 3 && i < v.n; i++) {
		dt_item_parse(v.v[i], v.len[i], &it[i], why, sizeof why);
		q[i] = (dt_claim_req){ v.v[i], v.len[i], &it[i], i == 1 ? "w2" : "w1" };
	}
	is_int(dt_store_claim(S, "d1", q, 3, r, err, sizeof err), 0, "claim 3 in one call");
	ok(r[0].status == DT_CLAIM_OK && r[1].status == DT_CLAIM_OK && r[2].status == DT_CLAIM_OK &&
	   r[2].attempt == 1, "  all claimed");
	is_str(field("b2", "worker"), "w2", "  each for its worker");
	is_str(field(it[2].id, "data"), it[2].json, "  a generated id: data has it spliced in");
	is_int(num("SCARD tasks"), 4, "  tasks has t1, b1, b2 and the generated one");
	for (size_t i = 0; i < 3; i++)
		dt_item_free(&it[i]);
	dt_strv_free(&v);

	/* A task key that is not a hash, between two good items: that item
	 * goes to bad-task and the script still finishes the others. */
	cmd0("SET task-x2 garbage");
	submit("{\"id\":\"x1\",\"function\":\"f\"}");
	submit("{\"id\":\"x2\",\"function\":\"f\"}");
	submit("{\"id\":\"x3\",\"function\":\"f\"}");
	is_int(dt_store_take(S, "d1", NULL, 3, &v, err, sizeof err), 0, "take x1, x2, x3");
	for (size_t i = 0; i < 3 && i < v.n; i++) {
		dt_item_parse(v.v[i], v.len[i], &it[i], why, sizeof why);
		q[i] = (dt_claim_req){ v.v[i], v.len[i], &it[i], "w1" };
	}
	long long bad0 = num("LLEN bad-task");
	is_int(dt_store_claim(S, "d1", q, 3, r, err, sizeof err), 0,
	       "claim them: task-x2 is a string");
	ok(r[0].status == DT_CLAIM_OK && r[1].status == DT_CLAIM_DUP && r[2].status == DT_CLAIM_OK,
	   "  x1 and x3 claimed, x2 refused");
	ok(num("SISMEMBER tasks x1") == 1 && num("SISMEMBER tasks x3") == 1 &&
		   str("ZSCORE running x3") != NULL,
	   "  x1 and x3 are in tasks and running all the same");
	is_int(num("LLEN bad-task"), bad0 + 1, "  x2's item went to bad-task");
	like_str(str("LINDEX bad-task 0"), "is not a hash", "  saying why");
	is_int(num("LLEN inflight-d1"), 0, "  inflight-d1 is empty");
	for (size_t i = 0; i < 3; i++)
		dt_item_free(&it[i]);
	dt_strv_free(&v);
	cmd0("DEL task-x2");
}

/* Peek the k oldest items of new-task and parse each into it[], for
 * worker w1 in q[] ("Bail out!" when there are fewer). */
static void peek_n(size_t k, dt_strv *v, dt_item *it, dt_claim_req *q)
{
	char why[128];
	if (dt_store_peek(S, k, v, err, sizeof err) || v->n != k) {
		printf("Bail out! peek %zu: %s (got %zu)\n", k, err, v->n);
		exit(1);
	}
	for (size_t i = 0; i < k; i++) {
		if (dt_item_parse(v->v[i], v->len[i], &it[i], why, sizeof why)) {
			printf("Bail out! peeked item %zu: %s\n", i, why);
			exit(1);
		}
		q[i] = (dt_claim_req){ v->v[i], v->len[i], &it[i], "w1" };
	}
}

/* Peeked items claimed straight from new-task's tail (claim.lua "tail"). */
static void t_claim_tail(void)
{
	dt_strv v;
	dt_item it[4];
	dt_claim_req q[4];
	dt_claim_res r[4];
	char why[128];
	flush();
	submit("{\"id\":\"p1\",\"function\":\"f\"}");
	submit("{\"id\":\"p2\",\"function\":\"f\",\"clean_end\":false}");
	submit("{\"id\":\"p3\",\"function\":\"g\"}");
	is_int(dt_store_peek(S, 2, &v, err, sizeof err), 0, "peek 2");
	ok(v.n == 2 && !strcmp(v.v[0], "{\"id\":\"p1\",\"function\":\"f\"}") &&
		   strstr(v.v[1], "\"p2\"") != NULL,
	   "  the two oldest, oldest first");
	is_int(num("LLEN new-task"), 3, "  a peek takes nothing");
	for (size_t i = 0; i < 2 && i < v.n; i++) {
		dt_item_parse(v.v[i], v.len[i], &it[i], why, sizeof why);
		q[i] = (dt_claim_req){ v.v[i], v.len[i], &it[i], i ? "w2" : "w1" };
	}
	is_int(dt_store_claim_tail(S, "d1", q, 2, r, err, sizeof err), 0, "claim both from the tail");
	ok(r[0].status == DT_CLAIM_OK && r[1].status == DT_CLAIM_OK && r[0].attempt == 1 &&
		   r[1].attempt == 1,
	   "  both claimed, attempt 1");
	ok(!strcmp(field("p1", "state"), "RUNNING") && !strcmp(field("p2", "worker"), "w2") &&
		   !strcmp(field("p2", "clean_end"), "0"),
	   "  RUNNING records, each for its worker");
	is_str(field("p2", "data"), v.v[1], "  data is the item, verbatim");
	ok(num("SISMEMBER tasks p1") == 1 && num("SISMEMBER tasks p2") == 1 &&
		   str("ZSCORE running p2") != NULL,
	   "  in tasks and running");
	is_int(num("LLEN new-task"), 1, "  they left new-task");
	is_str(str("LINDEX new-task 0"), "{\"id\":\"p3\",\"function\":\"g\"}", "  p3 is still there");
	is_int(num("EXISTS inflight-d1"), 0, "  nothing went through inflight-d1");

	/* The same claim again (a retried call): p3 is at the tail now. */
	is_int(dt_store_claim_tail(S, "d1", q, 2, r, err, sizeof err), 0, "the same claim again");
	ok(r[0].status == DT_CLAIM_GONE && r[1].status == DT_CLAIM_GONE, "  gone, both");
	ok(!strcmp(field("p1", "attempt"), "1") && !strcmp(field("p1", "worker"), "w1"),
	   "  p1's record unchanged");
	ok(num("LLEN new-task") == 1 && num("EXISTS inflight-d1") == 0, "  p3 untouched");
	for (size_t i = 0; i < 2; i++)
		dt_item_free(&it[i]);
	dt_strv_free(&v);

	/* A stale peek: another distributor took p3 first. */
	peek_n(1, &v, it, q);
	taken other;
	ok(take1(S, "d2", &other) == 0, "  d2 takes it");
	submit("{\"id\":\"p4\",\"function\":\"g\"}");
	is_int(dt_store_claim_tail(S, "d1", q, 1, r, err, sizeof err), 0, "d1 claims p3 from the tail");
	is_int(r[0].status, DT_CLAIM_GONE, "  gone");
	ok(field("p3", "state") == NULL, "  no record for p3");
	is_str(str("LINDEX new-task -1"), "{\"id\":\"p4\",\"function\":\"g\"}", "  p4 left where it was");
	is_int(claim_as(S, "d2", &other, "w1", NULL), DT_CLAIM_OK, "  d2's claim of p3 succeeds");
	taken_free(&other);
	dt_item_free(&it[0]);
	dt_strv_free(&v);

	/* Parked items of g go first: a tail claim of g leaves p4 alone, and
	 * an f item behind it waits too. */
	cmd0("LPUSH queue-g {\"id\":\"old\",\"function\":\"g\"}");
	submit("{\"id\":\"p5\",\"function\":\"f\"}");
	peek_n(2, &v, it, q);
	is_int(dt_store_claim_tail(S, "d1", q, 2, r, err, sizeof err), 0,
	       "claim p4 (queue-g holds a parked item) and p5 (f) from the tail");
	ok(r[0].status == DT_CLAIM_PARKED && r[1].status == DT_CLAIM_PARKED,
	   "  parked, both: p5 waits behind p4");
	ok(field("p4", "state") == NULL && field("p5", "state") == NULL &&
		   num("LLEN new-task") == 2 && num("EXISTS inflight-d1") == 0,
	   "  both still wait in new-task, nothing taken");
	cmd0("DEL queue-g");
	is_int(dt_store_claim_tail(S, "d1", q, 2, r, err, sizeof err), 0, "queue-g emptied: again");
	ok(r[0].status == DT_CLAIM_OK && r[1].status == DT_CLAIM_OK, "  both claimed");
	for (size_t i = 0; i < 2; i++)
		dt_item_free(&it[i]);
	dt_strv_free(&v);

	/* Two identical items without an id: each its own generated id. */
	submit("{\"function\":\"f\"}");
	submit("{\"function\":\"f\"}");
	submit("{\"id\":\"p1\",\"function\":\"f\"}"); /* p1 is RUNNING: a duplicate */
	is_int(dt_store_peek(S, 3, &v, err, sizeof err), 0, "peek 3: two alike, then a duplicate");
	for (size_t i = 0; i < 3 && i < v.n; i++) {
		dt_item_parse(v.v[i], v.len[i], &it[i], why, sizeof why);
		q[i] = (dt_claim_req){ v.v[i], v.len[i], &it[i], "w1" };
	}
	long long bad0 = num("LLEN bad-task");
	is_int(dt_store_claim_tail(S, "d1", q, 3, r, err, sizeof err), 0, "claim the three");
	ok(r[0].status == DT_CLAIM_OK && r[1].status == DT_CLAIM_OK && r[2].status == DT_CLAIM_DUP,
	   "  two claimed, the duplicate refused");
	ok(strcmp(it[0].id, it[1].id) != 0 && field(it[0].id, "state") && field(it[1].id, "state"),
	   "  two records, two ids");
	is_int(num("LLEN bad-task"), bad0 + 1, "  the duplicate went to bad-task");
	is_int(num("LLEN new-task"), 0, "  new-task is empty");
	is_str(field("p1", "worker"), "w1", "  the running p1 is untouched");
	for (size_t i = 0; i < 3; i++)
		dt_item_free(&it[i]);
	dt_strv_free(&v);

	/* A retried claim of an item with a generated id never takes another
	 * item with the same bytes: that one is a task of its own. */
	submit("{\"function\":\"h\"}");
	submit("{\"function\":\"h\"}");
	bad0 = num("LLEN bad-task");
	is_int(dt_store_peek(S, 1, &v, err, sizeof err), 0, "two alike without an id: peek one");
	dt_item_parse(v.v[0], v.len[0], &it[0], why, sizeof why);
	q[0] = (dt_claim_req){ v.v[0], v.len[0], &it[0], "w1" };
	is_int(dt_store_claim_tail(S, "d1", q, 1, r, err, sizeof err), 0, "claim it");
	is_int(r[0].status, DT_CLAIM_OK, "  claimed");
	is_int(dt_store_claim_tail(S, "d1", q, 1, r, err, sizeof err), 0,
	       "the same claim again, the other alike at the tail");
	is_int(r[0].status, DT_CLAIM_GONE, "  gone: its record exists");
	ok(num("LLEN bad-task") == bad0 && num("LLEN new-task") == 1,
	   "  the other is no duplicate: it still waits, not bad");
	cmd0("RPOPLPUSH new-task inflight-d1"); /* for the inflight case below */
	dt_item_free(&it[0]);
	dt_strv_free(&v);
	/* The same from inflight-d1: the other alike is there now. */
	submit("{\"function\":\"h\"}");
	taken t2;
	ok(take1(S, "d1", &t2) == 0, "take a third alike into inflight-d1 (two there)");
	is_int(claim(&t2, "w1", NULL), DT_CLAIM_OK, "claim it");
	is_int(claim(&t2, "w1", NULL), DT_CLAIM_GONE, "the same claim again: gone");
	ok(num("LLEN inflight-d1") == 1 && num("LLEN bad-task") == bad0,
	   "  the other alike stays in inflight-d1, nothing bad");
	taken_free(&t2);
	cmd0("DEL inflight-d1");

	/* A requeued item with a waiting cancel: ended, not run. */
	cmd0("HSET task-c1 state QUEUED attempt 2 request cancel clean_end 0");
	submit("{\"id\":\"c1\",\"function\":\"f\",\"clean_end\":false,\"attempt\":2}");
	is_int(dt_store_peek(S, 1, &v, err, sizeof err), 0, "peek a requeued item");
	dt_item_parse(v.v[0], v.len[0], &it[0], why, sizeof why);
	q[0] = (dt_claim_req){ v.v[0], v.len[0], &it[0], "w1" };
	is_int(dt_store_claim_tail(S, "d1", q, 1, r, err, sizeof err), 0, "claim it from the tail");
	is_int(r[0].status, DT_CLAIM_CANCELLED, "  cancelled");
	ok(!strcmp(field("c1", "state"), "END") && num("LLEN new-task") == 0, "  END, off the queue");
	dt_item_free(&it[0]);
	dt_strv_free(&v);
	is_int(dt_store_peek(S, 4, &v, err, sizeof err), 0, "peek an empty queue");
	is_int((long long)v.n, 0, "  nothing");
	dt_strv_free(&v);
}

static void t_heartbeat_finish(void)
{
	/* t1 RUNNING attempt 1 from t_claim. */
	dt_sleep_ms(5);
	const char *before = field("t1", "update");
	char b[32];
	snprintf(b, sizeof b, "%s", before ? before : "");
	is_int(hb1("t1", 1), DT_HB_OK, "heartbeat with the attempt: ok");
	ok(field("t1", "update") && atoll(field("t1", "update")) > atoll(b), "  update moved on");
	is_str(str("ZSCORE running t1"), field("t1", "update"), "  running score = update");
	is_int(hb1("t1", 2), DT_HB_FENCED, "heartbeat with another attempt: fenced");
	is_int(hb1("nope", 1), DT_HB_FENCED, "heartbeat of a missing task: fenced");

	dt_task_ref many[3] = { { "b1", 1 }, { "t1", 1 }, { "b2", 7 } };
	int res[3] = { -1, -1, -1 };
	is_int(dt_store_heartbeat(S, many, 3, res, err, sizeof err), 0, "heartbeat 3 in one call");
	ok(res[0] == DT_HB_OK && res[1] == DT_HB_OK && res[2] == DT_HB_FENCED, "  in order");

	char ans[32];
	is_int(dt_store_request(S, "t1", "stop", ans, sizeof ans, err, sizeof err), 0, "request stop");
	is_str(ans, "RUNNING", "  recorded on the RUNNING task");
	is_int(hb1("t1", 1), DT_HB_STOP, "heartbeat reads request=stop");

	is_int(fin1("t1", 2, DT_OUT_END, NULL, NULL), DT_FIN_FENCED, "finish, wrong attempt: fenced");
	is_str(field("t1", "state"), "RUNNING", "  nothing changed");
	is_int(fin1("t1", 1, DT_OUT_END, "{\"x\":[]}", NULL), DT_FIN_OK, "finish end");
	is_int(num("EXISTS task-t1"), 0, "  clean_end: record deleted");
	is_int(num("SISMEMBER tasks t1"), 0, "  not in tasks");
	ok(str("ZSCORE running t1") == NULL, "  not in running");
	is_int(fin1("t1", 1, DT_OUT_END, NULL, NULL), DT_FIN_FENCED, "finish again: fenced");
	is_int(num("EXISTS task-t1"), 0, "  nothing recreated");
	is_int(num("SISMEMBER end-task t1"), 0, "  not in end-task");
}

static void t_clean_end(void)
{
	taken t;
	flush();
	const char *item = "{\"id\":\"t2\",\"function\":\"f\",\"clean_end\":false,\"data\":{\"a\":[]}}";
	is_int(submit_claim(item, &t), 1, "claim t2 (clean_end false)");
	is_str(field("t2", "clean_end"), "0", "  clean_end 0 recorded");
	cmd0("HSET task-t2 request stop");
	is_int(fin1("t2", 1, DT_OUT_END, "{\"r\":[]}", NULL), DT_FIN_OK, "finish end");
	is_str(field("t2", "state"), "END", "  state END, record kept");
	is_str(field("t2", "result"), "{\"r\":[]}", "  result verbatim ([] stays [])");
	ok(field("t2", "end") != NULL, "  end time set");
	ok(field("t2", "request") == NULL, "  request cleared");
	ok(field("t2", "error") == NULL, "  no error");
	is_int(num("SISMEMBER end-task t2"), 1, "  in end-task");
	is_int(num("SISMEMBER tasks t2"), 0, "  not in tasks");
	ok(str("ZSCORE running t2") == NULL, "  not in running");
	taken_free(&t);

	is_int(submit_claim("{\"id\":\"t3\",\"function\":\"f\",\"clean_end\":false}", &t), 1,
	       "claim t3 (clean_end false)");
	is_int(fin1("t3", 1, DT_OUT_FAIL, NULL, NULL), DT_FIN_OK, "finish fail");
	is_str(field("t3", "state"), "END", "  state END");
	is_str(field("t3", "error"), "failed", "  error \"failed\" when none given");
	taken_free(&t);

	/* One call with the same (id, attempt) twice (clean_end: the record
	 * goes), then a task key that is not a hash: the second copy and the
	 * string are fenced, and the call still ends what it can. */
	is_int(submit_claim("{\"id\":\"t4\",\"function\":\"f\"}", &t), 1, "claim t4");
	cmd0("SET task-t5 garbage");
	dt_finish_req fq[3] = { { "t4", 1, DT_OUT_END, NULL, NULL },
				{ "t4", 1, DT_OUT_END, NULL, NULL },
				{ "t5", 1, DT_OUT_END, NULL, NULL } };
	int fr[3] = { -1, -1, -1 };
	is_int(dt_store_finish(S, fq, 3, fr, err, sizeof err), 0, "finish t4, t4 again, t5");
	ok(fr[0] == DT_FIN_OK && fr[1] == DT_FIN_FENCED && fr[2] == DT_FIN_FENCED,
	   "  ok, fenced, fenced");
	ok(num("EXISTS task-t4") == 0 && num("SISMEMBER tasks t4") == 0 &&
		   str("ZSCORE running t4") == NULL,
	   "  t4's record is gone, and so is its id from tasks and running");
	is_str(str("GET task-t5"), "garbage", "  the string is left alone");
	cmd0("DEL task-t5");
	taken_free(&t);
}

static void t_requeue(void)
{
	taken t, t2;
	char st[16];
	flush();
	const char *item = "{\"id\":\"t4\",\"function\":\"f\",\"data\":[],\"max_attempts\":3}";
	is_int(submit_claim(item, &t), 1, "claim t4");
	is_int(rq1("t4", 1, "stale", DT_RQ_COUNT_FAILURE, 60000, st), DT_RQ_SKIP,
	       "requeue of a fresh RUNNING task: skip");
	is_str(st, "RUNNING", "  state RUNNING");
	is_int(rq1("t4", 2, "stale", DT_RQ_COUNT_FAILURE | DT_RQ_NOW, 0, st), DT_RQ_SKIP,
	       "requeue with another attempt: skip");
	dt_sleep_ms(30);
	is_int(rq1("t4", 1, "stale", DT_RQ_COUNT_FAILURE, 10, st), DT_RQ_REQUEUED,
	       "requeue of a stale RUNNING task: requeued");
	is_str(field("t4", "state"), "QUEUED", "  state QUEUED");
	is_str(field("t4", "attempt"), "1", "  attempt kept");
	is_str(field("t4", "failures"), "1", "  failures 1");
	ok(!field("t4", "worker") && !field("t4", "distributor") && !field("t4", "start") &&
	   !field("t4", "update"), "  worker, distributor, start, update cleared");
	ok(str("ZSCORE running t4") == NULL, "  not in running");
	is_int(num("SISMEMBER tasks t4"), 1, "  still in tasks");
	is_str(field("t4", "data"), item, "  data still the first submission");
	is_int(num("LLEN new-task"), 1, "  one item on new-task");
	const char *rq = str("LINDEX new-task -1");
	is_str(rq, "{\"id\":\"t4\",\"function\":\"f\",\"data\":[],\"max_attempts\":3,\"attempt\":1}",
	       "  the item: the original text plus \"attempt\"");
	ok(rq && !strcmp(json_member(rq, "data"), "[]"), "  parses, data still []");

	is_int(rq1("t4", 1, "stale", DT_RQ_COUNT_FAILURE, 10, st), DT_RQ_SKIP,
	       "the requeue retried: skip");
	is_str(st, "QUEUED", "  finds QUEUED");
	is_int(num("LLEN new-task"), 1, "  nothing pushed twice");
	is_str(field("t4", "failures"), "1", "  nothing counted twice");
	is_int(hb1("t4", 1), DT_HB_FENCED, "the old copy's heartbeat: fenced");
	is_int(fin1("t4", 1, DT_OUT_END, NULL, NULL), DT_FIN_FENCED, "the old copy's finish: fenced");

	int64_t attempt = 0;
	ok(take1(S, "d1", &t2) == 0 && t2.it.attempt == 1, "take the requeued item (attempt 1)");
	is_int(claim(&t2, "w2", &attempt), DT_CLAIM_OK, "claim it");
	is_int(attempt, 2, "  attempt 2");
	is_str(field("t4", "data"), item, "  data still the first submission");
	/* Another copy of the attempt-1 item turns up in inflight-d1. */
	cmd0("LPUSH inflight-d1 %b", t2.v.v[0], t2.v.len[0]);
	is_int(claim(&t2, "w3", NULL), DT_CLAIM_DUP, "claiming the attempt-1 item again: dup");
	is_str(field("t4", "attempt"), "2", "  attempt still 2");

	is_int(rq1("t4", 2, "worker died", DT_RQ_COUNT_FAILURE | DT_RQ_NOW, 60000, st),
	       DT_RQ_REQUEUED, "worker died (no staleness needed): requeued");
	is_str(field("t4", "failures"), "2", "  failures 2");
	taken_free(&t2);
	ok(take1(S, "d1", &t2) == 0 && t2.it.attempt == 2, "take it again (attempt 2)");
	is_int(claim(&t2, "w1", &attempt), DT_CLAIM_OK, "claim it");
	is_int(attempt, 3, "  attempt 3: only grows");
	is_int(rq1("t4", 3, "worker died", DT_RQ_COUNT_FAILURE | DT_RQ_NOW, 60000, st), DT_RQ_ENDED,
	       "third failure with max_attempts 3: ended");
	is_int(num("EXISTS task-t4"), 0, "  clean_end: record deleted");
	is_int(num("SISMEMBER tasks t4"), 0, "  not in tasks");
	is_int(num("LLEN new-task"), 0, "  not requeued");
	taken_free(&t2);
	taken_free(&t);

	/* max_attempts with the record kept. */
	is_int(submit_claim("{\"id\":\"t5\",\"function\":\"f\",\"clean_end\":false,\"max_attempts\":1}",
			    &t), 1, "claim t5 (max_attempts 1, clean_end false)");
	is_int(rq1("t5", 1, "worker died", DT_RQ_COUNT_FAILURE | DT_RQ_NOW, 0, st), DT_RQ_ENDED,
	       "first failure: ended");
	is_str(field("t5", "state"), "END", "  state END");
	is_str(field("t5", "error"), "max_attempts reached: worker died", "  error says why");
	is_int(num("SISMEMBER end-task t5"), 1, "  in end-task");
	ok(str("ZSCORE running t5") == NULL, "  not in running");
	taken_free(&t);

	/* max_attempts 0: no limit. */
	is_int(submit_claim("{\"id\":\"t5b\",\"function\":\"f\",\"max_attempts\":0}", &t), 1,
	       "claim t5b (max_attempts 0)");
	cmd0("HSET task-t5b failures 100");
	is_int(rq1("t5b", 1, "worker died", DT_RQ_COUNT_FAILURE | DT_RQ_NOW, 0, st), DT_RQ_REQUEUED,
	       "  101st failure: still requeued");
	taken_free(&t);
}

static void t_stopped(void)
{
	taken t;
	char st[16];
	flush();
	is_int(submit_claim("{\"id\":\"t6\",\"function\":\"f\"}", &t), 1, "claim t6");
	cmd0("HSET task-t6 request stop");
	is_int(fin1("t6", 1, DT_OUT_STOPPED, NULL, NULL), DT_FIN_OK, "finish stopped");
	is_str(field("t6", "state"), "STOPPED", "  state STOPPED");
	ok(field("t6", "request") == NULL, "  request cleared");
	is_str(str("ZSCORE running t6"), "0", "  running score 0");
	is_int(hb1("t6", 1), DT_HB_FENCED, "heartbeat after the stop: fenced");

	dt_stale *v = NULL;
	size_t n = 0;
	int64_t now = 0;
	is_int(dt_store_stale(S, 60000, 10, &v, &n, &now, err, sizeof err), 0, "stale query");
	ok(n == 1 && !strcmp(v[0].id, "t6") && v[0].update == 0 && now > 0,
	   "  finds the STOPPED task at once");
	dt_stale_free(v, n);

	/* As when the worker's connection closes after it stopped the task
	 * cleanly: COUNT_FAILURE is asked, but a STOPPED task failed nothing. */
	is_int(rq1("t6", -1, "worker died", DT_RQ_COUNT_FAILURE | DT_RQ_NOW, 60000, st),
	       DT_RQ_REQUEUED, "requeue of STOPPED (any attempt, no staleness): requeued");
	ok(field("t6", "failures") == NULL, "  no failure counted for a clean stop");
	is_int(num("LLEN new-task"), 1, "  on new-task");
	taken_free(&t);

	/* stale() on RUNNING tasks. */
	cmd0("DEL new-task");
	is_int(submit_claim("{\"id\":\"t6b\",\"function\":\"f\"}", &t), 1, "claim t6b");
	dt_sleep_ms(20);
	is_int(dt_store_stale(S, 10, 10, &v, &n, NULL, err, sizeof err), 0, "stale query (10 ms)");
	ok(n == 1 && !strcmp(v[0].id, "t6b") && v[0].update == atoll(field("t6b", "update")),
	   "  finds the silent RUNNING task with its update");
	dt_stale_free(v, n);
	is_int(dt_store_stale(S, 60000, 10, &v, &n, NULL, err, sizeof err), 0, "stale query (60 s)");
	is_int(n, 0, "  finds nothing");
	dt_stale_free(v, n);
	taken_free(&t);
}

static void t_unclaim_cancel(void)
{
	taken t, t2;
	char ans[32];
	int status = -1;
	int64_t attempt = 0;
	flush();
	is_int(submit_claim("{\"id\":\"t7\",\"function\":\"f\"}", &t), 1, "claim t7");
	submit("{\"id\":\"x\",\"function\":\"f\"}");
	is_int(dt_store_unclaim(S, "t7", 1, &status, err, sizeof err), 0, "unclaim (worker rejected)");
	is_int(status, DT_RQ_REQUEUED, "  requeued at once");
	ok(field("t7", "failures") == NULL, "  no failure counted");
	ok(take1(S, "d1", &t2) == 0 && !strcmp(t2.it.id, "t7"), "  taken next, before newer items");
	is_int(dt_store_unclaim(S, "t7", 1, &status, err, sizeof err), 0, "unclaim again");
	is_int(status, DT_RQ_SKIP, "  skip");

	is_int(dt_store_request(S, "t7", "cancel", ans, sizeof ans, err, sizeof err), 0,
	       "cancel the QUEUED task");
	is_str(ans, "QUEUED", "  recorded on QUEUED");
	is_int(claim(&t2, "w1", NULL), DT_CLAIM_CANCELLED, "its claim: cancelled, not run");
	is_int(num("EXISTS task-t7"), 0, "  ended (clean_end: deleted)");
	is_int(num("SISMEMBER tasks t7"), 0, "  not in tasks");
	taken_free(&t2);
	taken_free(&t);

	is_int(dt_store_request(S, "none", "stop", ans, sizeof ans, err, sizeof err), 0,
	       "stop a missing task");
	is_str(ans, "skip none", "  skip none");
	is_int(num("LLEN new-task"), 1, "x still waits on new-task");
	cmd0("DEL new-task");

	is_int(submit_claim("{\"id\":\"t9\",\"function\":\"f\",\"clean_end\":false}", &t), 1,
	       "claim t9 (clean_end false)");
	is_int(dt_store_request(S, "t9", "cancel", ans, sizeof ans, err, sizeof err), 0,
	       "cancel the RUNNING task");
	is_str(ans, "RUNNING", "  recorded");
	is_int(hb1("t9", 1), DT_HB_CANCEL, "heartbeat reads request=cancel");
	is_int(fin1("t9", 1, DT_OUT_STOPPED, NULL, NULL), DT_FIN_OK, "the worker stops it");
	is_str(field("t9", "state"), "END", "  ended, not STOPPED");
	is_str(field("t9", "error"), "cancelled", "  error cancelled");
	taken_free(&t);

	is_int(submit_claim("{\"id\":\"t10\",\"function\":\"f\",\"clean_end\":false}", &t), 1,
	       "claim t10");
	is_int(fin1("t10", 1, DT_OUT_STOPPED, NULL, NULL), DT_FIN_OK, "stopped");
	is_int(dt_store_request(S, "t10", "cancel", ans, sizeof ans, err, sizeof err), 0,
	       "cancel the STOPPED task");
	is_str(ans, "ended", "  ended at once");
	is_str(field("t10", "error"), "cancelled", "  error cancelled");
	is_int(rq1("t10", -1, "stopped", 0, 0, NULL), DT_RQ_SKIP, "  a sweep's requeue then skips");
	taken_free(&t);
	(void)attempt;
}

static void t_park_bad(void)
{
	dt_strv v;
	int res[2] = { -1, -1 };
	flush();
	submit("{\"id\":\"p1\",\"function\":\"g\"}");
	submit("{\"id\":\"p2\",\"function\":\"g\"}");
	is_int(dt_store_take(S, "d1", NULL, 2, &v, err, sizeof err), 0, "take p1, p2");
	dt_park_req q[2] = { { v.v[0], v.len[0], "g" }, { v.v[1], v.len[1], "g" } };
	is_int(dt_store_park(S, "d1", q, 2, res, err, sizeof err), 0, "park both");
	ok(res[0] == DT_MOVE_OK && res[1] == DT_MOVE_OK, "  parked");
	is_int(num("LLEN queue-g"), 2, "  in queue-g");
	is_int(num("LLEN inflight-d1"), 0, "  not in inflight-d1");
	is_int(dt_store_park(S, "d1", q, 1, res, err, sizeof err), 0, "park p1 again");
	is_int(res[0], DT_MOVE_GONE, "  gone: nothing done");
	is_int(num("LLEN queue-g"), 2, "  queue-g unchanged");
	dt_strv_free(&v);
	int64_t len = 0;
	dt_store_queue_len(S, "g", &len, err, sizeof err);
	is_int(len, 2, "queue_len of queue-g");
	is_int(dt_store_take(S, "d1", "g", 5, &v, err, sizeof err), 0, "take from queue-g");
	ok(v.n == 2 && strstr(v.v[0], "p1") && strstr(v.v[1], "p2"), "  in the order parked");
	is_int(num("LLEN inflight-d1"), 2, "  into inflight-d1");
	dt_strv_free(&v);

	/* take_multi: parked items first (each queue up to its count), then
	 * new-task, all within one budget. */
	cmd0("DEL inflight-d1");
	submit("{\"id\":\"m1\",\"function\":\"h\"}");
	submit("{\"id\":\"m2\",\"function\":\"h\"}");
	submit("{\"id\":\"m3\",\"function\":\"h\"}");
	cmd0("LPUSH queue-g g1");
	cmd0("LPUSH queue-g g2");
	cmd0("LPUSH queue-k k1");
	const char *fns[2] = { "g", "k" };
	size_t counts[2] = { 1, 5 };
	is_int(dt_store_take_multi(S, "d1", fns, counts, 2, 3, &v, err, sizeof err), 0,
	       "take_multi: 3 from queue-g (1), queue-k (5), new-task");
	ok(v.n == 3 && !strcmp(v.v[0], "g1") && !strcmp(v.v[1], "k1") && strstr(v.v[2], "m1"),
	   "  g1, k1, then the oldest of new-task");
	is_int(num("LLEN queue-g"), 1, "  queue-g kept what its count left");
	is_int(num("LLEN new-task"), 2, "  new-task gave only what the budget left");
	is_int(num("LLEN inflight-d1"), 3, "  all three in inflight-d1");
	{
		/* As if moved one at a time, RIGHT to LEFT: the last taken at
		 * the head, the first at the tail. */
		const char *h = str("LINDEX inflight-d1 0");
		ok(h && strstr(h, "m1"), "  inflight-d1: m1 (taken last) at the head");
		const char *tl = str("LINDEX inflight-d1 -1");
		ok(tl && !strcmp(tl, "g1"), "  g1 (taken first) at the tail");
		const char *nx = str("LINDEX new-task -1");
		ok(nx && strstr(nx, "m2"), "  new-task's oldest is now m2");
	}
	dt_strv_free(&v);
	/* Several from one source in one go, then more than it holds. */
	submit("{\"id\":\"m4\",\"function\":\"h\"}");
	cmd0("DEL inflight-d1");
	is_int(dt_store_take_multi(S, "d1", NULL, NULL, 0, 2, &v, err, sizeof err), 0,
	       "take_multi: 2 of new-task's 3");
	ok(v.n == 2 && strstr(v.v[0], "m2") && strstr(v.v[1], "m3"), "  m2, m3: oldest first");
	is_int(num("LLEN new-task"), 1, "  m4 stays");
	dt_strv_free(&v);
	is_int(dt_store_take_multi(S, "d1", NULL, NULL, 0, 10, &v, err, sizeof err), 0,
	       "take_multi: 10 when 1 is left");
	ok(v.n == 1 && strstr(v.v[0], "m4"), "  m4 alone");
	is_int(num("EXISTS new-task"), 0, "  new-task is empty");
	{
		const char *h = str("LINDEX inflight-d1 0");
		ok(h && strstr(h, "m4"), "  inflight-d1: m4 at the head, m2 at the tail");
		const char *tl = str("LINDEX inflight-d1 -1");
		ok(tl && strstr(tl, "m2"), "  (m2 at the tail)");
	}
	dt_strv_free(&v);
	cmd0("DEL inflight-d1 queue-g new-task");

	cmd0("DEL inflight-d1");
	const char raw[] = "not json \"x\" \\ \x01";
	submit(raw);
	is_int(dt_store_take(S, "d1", NULL, 1, &v, err, sizeof err), 0, "take a bad item");
	dt_bad_req b = { v.v[0], v.len[0], "not valid JSON" };
	is_int(dt_store_bad(S, "d1", &b, 1, res, err, sizeof err), 0, "bad");
	is_int(res[0], DT_MOVE_OK, "  moved");
	is_int(num("LLEN inflight-d1"), 0, "  not in inflight-d1");
	const char *w = str("LINDEX bad-task 0");
	ok(w && !strcmp(json_member(w, "reason"), "not valid JSON"), "  wrapped with the reason");
	ok(w && !strcmp(json_member(w, "item"), raw), "  the item as a JSON string, exact");
	is_int(dt_store_bad(S, "d1", &b, 1, res, err, sizeof err), 0, "bad again");
	is_int(res[0], DT_MOVE_GONE, "  gone");
	is_int(num("LLEN bad-task"), 1, "  pushed once");
	dt_strv_free(&v);
}

static void t_inflight(void)
{
	dt_strv v;
	int64_t count = -2;
	flush();
	submit("{\"id\":\"a\",\"function\":\"f\"}");
	submit("{\"id\":\"b\",\"function\":\"f\"}");
	submit("{\"id\":\"c\",\"function\":\"f\"}");
	dt_store_take(S, "d1", NULL, 2, &v, err, sizeof err);
	dt_strv_free(&v);
	submit("{\"id\":\"d\",\"function\":\"f\"}");
	dt_store_take(S, "d1", NULL, 1, &v, err, sizeof err);
	dt_strv_free(&v);
	/* inflight-d1 holds a, b, c; new-task holds d. */
	is_int(dt_store_return_inflight(S, "d1", &count, err, sizeof err), 0, "return_inflight");
	is_int(count, 3, "  3 items");
	is_int(num("LLEN inflight-d1"), 0, "  inflight-d1 empty");
	is_int(dt_store_take(S, "d1", NULL, 10, &v, err, sizeof err), 0, "take all");
	ok(v.n == 4 && strstr(v.v[0], "\"a\"") && strstr(v.v[1], "\"b\"") && strstr(v.v[2], "\"c\"") &&
	   strstr(v.v[3], "\"d\""), "  original order restored, ahead of newer items");
	dt_strv_free(&v);
	is_int(dt_store_return_inflight(S, "d1", &count, err, sizeof err), 0, "return_inflight again");
	is_int(count, 4, "  4");
	is_int(dt_store_return_inflight(S, "d1", &count, err, sizeof err), 0, "and again");
	is_int(count, 0, "  0: idempotent");
}

static void t_distributors(void)
{
	dt_strv v;
	int64_t count = -2;
	int rec = -1;
	flush();
	is_int(dt_store_register_distributor(S, "d2", "h2", 5002, 10000, err, sizeof err), 0,
	       "register d2");
	is_str(str("HGET distributor-d2 state"), "UP", "  UP");
	is_str(str("HGET distributor-d2 port"), "5002", "  port");
	is_int(num("SISMEMBER distributors d2"), 1, "  in distributors");
	is_int(dt_store_register_distributor(S, "d2", "h3", 5003, 10000, err, sizeof err),
	       DTASK_EBUSY, "register d2 again while it is alive: taken");
	is_str(str("HGET distributor-d2 host"), "h2", "  record untouched");

	dt_store *S2 = NULL;
	dt_store_open(&RC, &S2, err, sizeof err);
	submit("{\"id\":\"r1\",\"function\":\"f\"}");
	submit("{\"id\":\"r2\",\"function\":\"f\"}");
	dt_store_take(S2, "d2", NULL, 2, &v, err, sizeof err);
	dt_strv_free(&v);
	is_int(dt_store_recover_distributor(S, "d2", 10000, &count, err, sizeof err), 0,
	       "recover d2");
	is_int(count, -1, "  alive: nothing done");
	is_int(num("LLEN inflight-d2"), 2, "  its items stay");
	dt_sleep_ms(20);
	is_int(dt_store_recover_distributor(S, "d2", 10, &count, err, sizeof err), 0,
	       "recover d2 after its timeout");
	is_int(count, 2, "  2 items returned");
	is_str(str("HGET distributor-d2 state"), "DOWN", "  marked DOWN");
	is_int(dt_store_take(S, "d1", NULL, 5, &v, err, sizeof err), 0, "take them");
	ok(v.n == 2 && strstr(v.v[0], "r1") && strstr(v.v[1], "r2"), "  in order");
	dt_strv_free(&v);
	is_int(dt_store_touch_distributor(S2, "d2", &rec, err, sizeof err), 0, "d2 touches");
	is_int(rec, 1, "  learns it was recovered");
	is_str(str("HGET distributor-d2 state"), "UP", "  UP again");
	is_int(dt_store_touch_distributor(S2, "d2", &rec, err, sizeof err), 0, "touch again");
	is_int(rec, 0, "  not recovered");
	is_int(dt_store_distributor_down(S2, "d2", err, sizeof err), 0, "d2 down");
	is_int(dt_store_register_distributor(S, "d2", "h3", 5003, 10000, err, sizeof err), 0,
	       "register d2 once it is DOWN");
	is_int(dt_store_recover_distributor(S, "d9", 10000, &count, err, sizeof err), 0,
	       "recover a distributor without a record");
	ok(count == 0 && num("EXISTS distributor-d9") == 0, "  0 items, no record created");
	dt_strv members;
	is_int(dt_store_members(S, "distributors", &members, err, sizeof err), 0, "members");
	ok(members.n == 1 && !strcmp(members.v[0], "d2"), "  d2");
	dt_strv_free(&members);
	dt_store_free(S2);
}

static void t_workers(void)
{
	int cleared = -1;
	struct json_object *o = NULL, *m;
	flush();
	is_int(dt_store_register_worker(S, "w1", "wh", 7001, 4, "[\"f\",\"g\"]", err, sizeof err),
	       0, "register worker");
	is_int(dt_store_record(S, "worker", "w1", &o, err, sizeof err), 0, "read its record");
	ok(o && json_object_object_get_ex(o, "functions", &m) &&
	   !strcmp(json_object_get_string(m), "[\"f\",\"g\"]"), "  functions verbatim");
	ok(o && json_object_object_get_ex(o, "state", &m) && !strcmp(json_object_get_string(m), "UP"),
	   "  UP");
	ok(o && json_object_object_get_ex(o, "capacity", &m) && !strcmp(json_object_get_string(m), "4"),
	   "  capacity");
	json_object_put(o);
	is_int(num("SISMEMBER workers w1"), 1, "  in workers");
	is_int(dt_store_worker_update(S, "w1", 3, "0.75", 1, err, sizeof err), 0, "update");
	ok(!strcmp(str("HGET worker-w1 running"), "3") && !strcmp(str("HGET worker-w1 load"), "0.75") &&
	   !strcmp(str("HGET worker-w1 stuck"), "1"), "  running, load, stuck");
	is_int(dt_store_worker_clear(S, "w1", 0, &cleared, err, sizeof err), 0, "clear while UP");
	is_int(cleared, 0, "  not cleared");
	is_int(dt_store_worker_down(S, "w1", err, sizeof err), 0, "down");
	is_str(str("HGET worker-w1 state"), "DOWN", "  DOWN");
	is_int(dt_store_worker_clear(S, "w1", 60000, &cleared, err, sizeof err), 0, "clear, recent");
	is_int(cleared, 0, "  not yet");
	dt_sleep_ms(20);
	is_int(dt_store_worker_clear(S, "w1", 10, &cleared, err, sizeof err), 0, "clear, old");
	is_int(cleared, 1, "  cleared");
	ok(num("EXISTS worker-w1") == 0 && num("SISMEMBER workers w1") == 0, "  record and name gone");
	is_int(dt_store_record(S, "worker", "w1", &o, err, sizeof err), 0, "read a missing record");
	ok(o == NULL, "  NULL");
}

static void t_noscript(void)
{
	taken t;
	flush();
	is_int(submit_claim("{\"id\":\"n1\",\"function\":\"f\"}", &t), 1, "claim n1");
	cmd0("SCRIPT FLUSH");
	long long n0 = noscripts();
	is_int(hb1("n1", 1), DT_HB_OK, "heartbeat after SCRIPT FLUSH works");
	is_int(noscripts(), n0 + 1, "  through one NOSCRIPT reply, resent with EVAL");
	is_int(hb1("n1", 1), DT_HB_OK, "heartbeat again");
	is_int(noscripts(), n0 + 1, "  EVAL cached the script: no NOSCRIPT");

	/* Inside a pipeline: several scripts, each NOSCRIPT, resent per reply. */
	cmd0("SCRIPT FLUSH");
	n0 = noscripts();
	dt_batch *b = dt_batch_new(S);
	dt_task_ref hb[2] = { { "n1", 1 }, { "zz", 1 } };
	int hres[2] = { -1, -1 }, fres = -1;
	dt_finish_req fq = { "zz", 1, DT_OUT_END, NULL, NULL };
	dt_requeue_req rq[2] = { { "n1", 1, "x", 0, -1 }, { "zz", -1, "x", 0, -1 } };
	dt_requeue_res rres[2];
	memset(rres, 0, sizeof rres);
	is_int(dt_batch_heartbeat(b, hb, 2, hres), 0, "batch: heartbeat");
	is_int(dt_batch_finish(b, &fq, 1, &fres), 0, "batch: finish");
	is_int(dt_batch_requeue(b, rq, 2, 60000, rres), 0, "batch: 2 requeues");
	is_int(dt_batch_count(b), 4, "  4 calls");
	is_int(dt_batch_exec(b, err, sizeof err), 0, "exec after SCRIPT FLUSH");
	ok(hres[0] == DT_HB_OK && hres[1] == DT_HB_FENCED && fres == DT_FIN_FENCED &&
	   rres[0].status == DT_RQ_SKIP && !strcmp(rres[0].state, "RUNNING") &&
	   rres[1].status == DT_RQ_SKIP && !strcmp(rres[1].state, "none"), "  every result right");
	is_int(noscripts(), n0 + 4, "  4 NOSCRIPT replies, each resent");
	is_int(dt_batch_count(b), 0, "  the batch is empty after exec");
	is_int(dt_batch_heartbeat(b, hb, 1, hres), 0, "batch reused");
	is_int(dt_batch_exec(b, err, sizeof err), 0, "  exec");
	is_int(noscripts(), n0 + 4, "  no more NOSCRIPT");
	dt_batch_free(b);
	taken_free(&t);
}

static void t_reconnect(void)
{
	int64_t since = dt_store_connected_since(S);
	is_int(dt_store_ping(S, err, sizeof err), 0, "connected");
	ok(num("CLIENT KILL TYPE normal SKIPME yes") >= 1, "the server kills our connection");
	err[0] = '\0';
	is_int(dt_store_ping(S, err, sizeof err), DTASK_EREDIS, "the next call fails");
	ok(err[0] != '\0', "  with a message: %s", err);
	ok(!dt_store_connected(S), "  the context is dropped");
	is_int(dt_store_ping(S, err, sizeof err), 0, "the call after reconnects");
	ok(dt_store_connected_since(S) > since, "  a new connection");
	is_int(hb1("n1", 1), DT_HB_OK, "scripts work on it");

	/* Killed under a pipeline. */
	num("CLIENT KILL TYPE normal SKIPME yes");
	dt_batch *b = dt_batch_new(S);
	dt_task_ref hb = { "n1", 1 };
	int res = -1;
	dt_batch_heartbeat(b, &hb, 1, &res);
	is_int(dt_batch_exec(b, err, sizeof err), DTASK_EREDIS, "a pipeline on a killed link fails");
	dt_batch_heartbeat(b, &hb, 1, &res);
	is_int(dt_batch_exec(b, err, sizeof err), 0, "  the next one reconnects");
	is_int(res, DT_HB_OK, "  and works");
	dt_batch_free(b);

	/* An error reply (a script error) also fails the call, and the next
	 * call works. */
	cmd0("SET running notazset");
	is_int(hb1("n1", 1), -1, "heartbeat with a broken key: error");
	like_str(err, "heartbeat.lua", "  the message names the script: %s", err);
	cmd0("DEL running");
	is_int(dt_store_ping(S, err, sizeof err), 0, "the next call works");
}

static void t_auth_db(void)
{
	dt_store *x = NULL;
	dt_redis_conf rc = RC;
	cmd0("ACL SETUSER dtu on >s3cret ~* &* +@all");
	rc.user = "dtu";
	rc.password = "s3cret";
	rc.db = 3;
	is_int(dt_store_open(&rc, &x, err, sizeof err), 0, "AUTH user password, SELECT 3");
	submit("{\"function\":\"in db 0\"}");
	if (x)
		dt_store_submit(x, "{\"function\":\"f\"}", 16, err, sizeof err);
	cmd0("SELECT 3");
	is_int(num("LLEN new-task"), 1, "  writes go to db 3");
	cmd0("SELECT 0");
	dt_store_free(x);
	rc.password = "wrong";
	x = NULL;
	is_int(dt_store_open(&rc, &x, err, sizeof err), DTASK_EREDIS, "a wrong password fails");
	like_str(err, "AUTH", "  the message says AUTH: %s", err);
	cmd0("ACL DELUSER dtu");
}

static void t_prefix(void)
{
	dt_store *P = NULL;
	dt_redis_conf rc = RC;
	taken t;
	int64_t attempt = 0;
	char ans[32];
	rc.prefix = "pfx:";
	flush();
	is_int(dt_store_open(&rc, &P, err, sizeof err), 0, "a store with prefix pfx:");
	is_str(dt_store_prefix(P), "pfx:", "  its prefix");
	const char *item = "{\"id\":\"k1\",\"function\":\"f\",\"clean_end\":false}";
	dt_store_submit(P, item, strlen(item), err, sizeof err);
	dt_store_submit(P, "{\"function\":\"g\"}", 16, err, sizeof err);
	ok(take1(P, "d1", &t) == 0, "take");
	is_int(claim_as(P, "d1", &t, "w1", &attempt), DT_CLAIM_OK, "claim");
	dt_task_ref hb = { "k1", 1 };
	int res = -1;
	dt_store_heartbeat(P, &hb, 1, &res, err, sizeof err);
	is_int(res, DT_HB_OK, "heartbeat");
	dt_store_request(P, "k1", "stop", ans, sizeof ans, err, sizeof err);
	dt_finish_req fq = { "k1", 1, DT_OUT_STOPPED, NULL, NULL };
	dt_store_finish(P, &fq, 1, &res, err, sizeof err);
	dt_requeue_req rq = { "k1", -1, "stopped", 0, -1 };
	dt_requeue_res rr;
	dt_store_requeue(P, &rq, 1, 0, &rr, err, sizeof err);
	is_int(rr.status, DT_RQ_REQUEUED, "stop and requeue");
	taken_free(&t);
	ok(take1(P, "d1", &t) == 0, "take again");
	dt_park_req pq = { t.v.v[0], t.v.len[0], "f" };
	dt_store_park(P, "d1", &pq, 1, &res, err, sizeof err);
	is_int(res, DT_MOVE_OK, "park");
	taken_free(&t);
	dt_store_register_distributor(P, "d1", "h", 1, 1000, err, sizeof err);
	dt_store_register_worker(P, "w1", "h", 1, 1, "[]", err, sizeof err);
	dt_strv v;
	dt_store_take(P, "d1", NULL, 1, &v, err, sizeof err);
	dt_bad_req bq = { v.v[0], v.len[0], "test" };
	dt_store_bad(P, "d1", &bq, 1, &res, err, sizeof err);
	dt_strv_free(&v);
	/* pfx:queue-f holds k1 (parked): a tail claim of an f item waits. */
	const char *k2item = "{\"id\":\"k2\",\"function\":\"f\"}";
	dt_store_submit(P, k2item, strlen(k2item), err, sizeof err);
	dt_item k2;
	char why[64];
	dt_claim_res cr = { -1, 0 };
	if (dt_store_peek(P, 1, &v, err, sizeof err) == 0 && v.n == 1 &&
	    dt_item_parse(v.v[0], v.len[0], &k2, why, sizeof why) == 0) {
		dt_claim_req cq = { v.v[0], v.len[0], &k2, "w1" };
		dt_store_claim_tail(P, "d1", &cq, 1, &cr, err, sizeof err);
		dt_item_free(&k2);
	}
	dt_strv_free(&v);
	is_int(cr.status, DT_CLAIM_PARKED, "a tail claim sees the prefixed queue-f's parked item");
	is_int(num("LLEN pfx:new-task"), 1, "  k2 stays in pfx:new-task");

	redisReply *r = cmd("KEYS *");
	int all = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	for (size_t i = 0; all && i < r->elements; i++)
		if (strncmp(r->element[i]->str, "pfx:", 4)) {
			tap_diag("unprefixed key: %s", r->element[i]->str);
			all = 0;
		}
	ok(all, "every key carries the prefix (%zu keys)", r->elements);
	freeReplyObject(r);
	ok(num("EXISTS pfx:task-k1") == 1 && num("EXISTS pfx:queue-f") == 1 &&
	   num("EXISTS pfx:tasks") == 1 && num("EXISTS pfx:bad-task") == 1 &&
	   num("EXISTS pfx:distributor-d1") == 1 && num("EXISTS pfx:worker-w1") == 1,
	   "  task-<id>, queue-<function>, tasks, bad-task, distributor-, worker- keys");
	dt_store_free(P);
}

/* The clients' calls: one LPUSH for many items, pipelined HGETALLs, and
 * clean.lua (deletes only an END record). */
static void t_client_calls(void)
{
	flush();
	const char *items[] = { "{\"function\":\"f\",\"id\":\"m1\"}",
				"{\"function\":\"f\",\"id\":\"m2\"}" };
	is_int(dt_store_submit_many(S, items, NULL, 2, err, sizeof err), 0, "submit_many");
	is_int(num("LLEN new-task"), 2, "  both on new-task");
	is_str(str("LINDEX new-task -1"), items[0], "  the first is taken first");
	is_int(dt_store_submit_many(S, items, NULL, 0, err, sizeof err), 0, "submit_many of none");

	cmd0("HSET task-r1 state RUNNING attempt 1");
	cmd0("HSET task-r3 state END attempt 2");
	const char *names[] = { "r1", "r2", "r3" };
	struct json_object *out[3] = { NULL, NULL, NULL };
	is_int(dt_store_records(S, "task", names, 3, out, err, sizeof err), 0, "records");
	ok(out[0] && !strcmp(json_object_get_string(json_object_object_get(out[0], "state")),
			     "RUNNING"), "  the first");
	ok(out[1] == NULL, "  none for a missing key");
	ok(out[2] && !strcmp(json_object_get_string(json_object_object_get(out[2], "attempt")),
			     "2"), "  the third");
	for (int i = 0; i < 3; i++)
		json_object_put(out[i]);
	is_int(dt_store_records(S, "bogus", names, 3, out, err, sizeof err), DTASK_EINVAL,
	       "records of a bad kind: EINVAL");

	char ans[64];
	cmd0("SADD end-task r3");
	cmd0("SADD tasks r1");
	is_int(dt_store_clean(S, "r1", ans, sizeof ans, err, sizeof err), 0, "clean RUNNING");
	is_str(ans, "skip RUNNING", "  skipped");
	is_str(field("r1", "state"), "RUNNING", "  the record stays");
	is_int(dt_store_clean(S, "r3", ans, sizeof ans, err, sizeof err), 0, "clean END");
	is_str(ans, "cleaned", "  cleaned");
	is_int(num("EXISTS task-r3"), 0, "  the record is deleted");
	is_int(num("SISMEMBER end-task r3"), 0, "  and its id left end-task");
	is_int(dt_store_clean(S, "r3", ans, sizeof ans, err, sizeof err), 0, "clean again");
	is_str(ans, "skip none", "  skip none (idempotent)");
}

/* ------------------------------------------------------------- arrive */

static const char *const A_FNS[] = { "f" };
static const char *const A_WKS[] = { "w1" };

/* One blocking take as d1 with arrive.lua behind it (f goes to w1); the
 * fresh id is "fresh-1".  *items and *got as dt_store_take_arrive(). */
static int arrive1(dt_store *s, size_t max_message, dt_strv *items, dt_strv *got)
{
	dt_arrive_req q = { A_FNS, A_WKS, 1, "fresh-1", max_message, DT_MAX_ATTEMPTS_DEFAULT };
	if (dt_store_take_arrive(s, "d1", 50, &q, items, got, err, sizeof err)) {
		tap_diag("take_arrive failed: %s", err);
		return -1;
	}
	return 0;
}

/* Push raw on an empty new-task and take it with arrive.lua behind.
 * Returns 1 when arrive.lua claimed it, 0 when it left it in
 * inflight-d1 (the usual claim's turn), -1 on error.  When claimed, it
 * must be what the C check (dt_item_parse of the text) reads, field by
 * field: *agree says so. */
static int arrive_item(const char *raw, int *agree)
{
	dt_strv items, got;
	*agree = 0;
	flush();
	redisReply *r = redisCommand(R, "LPUSH new-task %b", raw, strlen(raw));
	freeReplyObject(r);
	if (arrive1(S, 1 << 20, &items, &got) < 0)
		return -1;
	int rc = got.n == DT_ARRIVE_N;
	if (items.n != 1 || strcmp(items.v[0], raw) != 0) {
		tap_diag("BLMOVE returned %zu item(s)", items.n);
		rc = -1;
	} else if (rc == 0) {
		*agree = num("LLEN inflight-d1") == 1 && num("EXISTS tasks") == 0;
	} else {
		dt_item it;
		char why[256];
		*agree = dt_item_parse(got.v[DT_ARRIVE_TEXT], got.len[DT_ARRIVE_TEXT], &it, why,
				       sizeof why) == 0;
		if (!*agree) {
			tap_diag("claimed on arrival, refused by dt_item_parse: %s", why);
		} else {
			char ma[24];
			snprintf(ma, sizeof ma, "%lld", (long long)it.max_attempts);
			const char *rma = field(it.id, "max_attempts");
			*agree = !strcmp(got.v[DT_ARRIVE_RAW], raw) &&
				 !strcmp(it.id, got.v[DT_ARRIVE_ID]) &&
				 !strcmp(ma, got.v[DT_ARRIVE_MAX_ATTEMPTS]) && rma &&
				 !strcmp(rma, ma) &&
				 !strcmp(it.function, got.v[DT_ARRIVE_FUNCTION]) && it.attempt == 0 &&
				 it.clean_end == (got.v[DT_ARRIVE_CLEAN_END][0] == '1') &&
				 it.max_attempts == atoll(got.v[DT_ARRIVE_MAX_ATTEMPTS]) &&
				 num("LLEN inflight-d1") == 0;
			if (!*agree)
				tap_diag("claimed as id %s function %s clean_end %s max_attempts %s; "
					 "read here as %s %s %d %lld", got.v[DT_ARRIVE_ID],
					 got.v[DT_ARRIVE_FUNCTION], got.v[DT_ARRIVE_CLEAN_END],
					 got.v[DT_ARRIVE_MAX_ATTEMPTS], it.id, it.function,
					 it.clean_end, (long long)it.max_attempts);
			dt_item_free(&it);
		}
	}
	dt_strv_free(&items);
	dt_strv_free(&got);
	return rc;
}

/* A nesting of depth arrays around 1, as "data". */
static const char *nested(int depth)
{
	static char b[256];
	int n = snprintf(b, sizeof b, "{\"function\":\"f\",\"data\":");
	for (int i = 0; i < depth; i++)
		b[n++] = '[';
	b[n++] = '1';
	for (int i = 0; i < depth; i++)
		b[n++] = ']';
	snprintf(b + n, sizeof b - (size_t)n, "}");
	return b;
}

/* arrive.lua: a claim in the same Redis wake-up as the blocking take. */
static void t_arrive(void)
{
	dt_strv items, got;
	int agree;

	flush();
	submit("{\"function\":\"f\",\"data\":{\"x\":[1,-2.5,true,null]}}");
	ok(arrive1(S, 1 << 20, &items, &got) == 0 && items.n == 1 && got.n == DT_ARRIVE_N,
	   "arrive: a fresh item is taken and claimed in one pipeline");
	if (got.n == DT_ARRIVE_N) {
		is_str(got.v[DT_ARRIVE_RAW], items.v[0], "  the claimed item is the one taken");
		is_str(got.v[DT_ARRIVE_TEXT],
		       "{\"id\":\"fresh-1\",\"function\":\"f\",\"data\":{\"x\":[1,-2.5,true,null]}}",
		       "  the fresh id spliced in as the C code splices one");
		is_str(got.v[DT_ARRIVE_WORKER], "w1", "  for the worker given for f");
		is_str(field("fresh-1", "state"), "RUNNING", "  RUNNING");
		is_str(field("fresh-1", "attempt"), "1", "  attempt 1");
		ok(!strcmp(field("fresh-1", "worker"), "w1") &&
		   !strcmp(field("fresh-1", "distributor"), "d1") &&
		   !strcmp(field("fresh-1", "function"), "f") &&
		   !strcmp(field("fresh-1", "clean_end"), "1") &&
		   !strcmp(field("fresh-1", "max_attempts"), "5") &&
		   !strcmp(field("fresh-1", "data"), got.v[DT_ARRIVE_TEXT]) &&
		   !strcmp(field("fresh-1", "start"), field("fresh-1", "update")),
		   "  worker, distributor, function, clean_end, max_attempts, data, start = update");
		ok(num("SISMEMBER tasks fresh-1") == 1 && str("ZSCORE running fresh-1") &&
		   num("LLEN inflight-d1") == 0 && num("LLEN new-task") == 0,
		   "  in tasks and running; nothing left in inflight-d1 or new-task");
	} else {
		for (int i = 0; i < 7; i++)
			ok(0, "  (not claimed)");
	}
	dt_strv_free(&items);
	dt_strv_free(&got);

	/* The record is still this claim's: undo moves the item to bad-task. */
	int st = -1;
	const char *raw = "{\"function\":\"f\",\"data\":{\"x\":[1,-2.5,true,null]}}";
	is_int(dt_store_arrive_undo(S, "d1", "fresh-1", raw, strlen(raw), "a test", &st, err,
				    sizeof err), 0, "arrive undo");
	is_int(st, DT_MOVE_OK, "  done");
	ok(num("EXISTS task-fresh-1") == 0 && num("SCARD tasks") == 0 && num("ZCARD running") == 0,
	   "  the record is gone from task-<id>, tasks and running");
	is_str(json_member(str("LINDEX bad-task 0"), "reason"), "a test", "  bad-task has the reason");
	is_str(json_member(str("LINDEX bad-task 0"), "item"), raw, "  and the item");
	dt_store_arrive_undo(S, "d1", "fresh-1", raw, strlen(raw), "a test", &st, err, sizeof err);
	ok(st == DT_MOVE_GONE && num("LLEN bad-task") == 1, "  a second undo does nothing");
	submit("{\"id\":\"other\",\"function\":\"f\"}");
	arrive1(S, 1 << 20, &items, &got);
	dt_strv_free(&items);
	dt_strv_free(&got);
	cmd0("HSET task-other distributor d2");
	dt_store_arrive_undo(S, "d1", "other", "x", 1, "a test", &st, err, sizeof err);
	ok(st == DT_MOVE_GONE && num("EXISTS task-other") == 1 && num("LLEN bad-task") == 1,
	   "  nor on a record another distributor holds");

	/* A claim on arrival given to another worker than planned. */
	flush();
	submit("{\"id\":\"mv\",\"function\":\"f\"}");
	arrive1(S, 1 << 20, &items, &got);
	dt_strv_free(&items);
	dt_strv_free(&got);
	st = -1;
	is_int(dt_store_arrive_move(S, "d1", "mv", "w1", "w2", &st, err, sizeof err), 0,
	       "arrive move");
	ok(st == DT_MOVE_OK && !strcmp(field("mv", "worker"), "w2") &&
	   !strcmp(field("mv", "state"), "RUNNING") && !strcmp(field("mv", "attempt"), "1"),
	   "  the record names the new worker, RUNNING at attempt 1 still");
	dt_store_arrive_move(S, "d1", "mv", "w1", "w3", &st, err, sizeof err);
	ok(st == DT_MOVE_GONE && !strcmp(field("mv", "worker"), "w2"),
	   "  a move from a worker the record does not name does nothing");
	dt_store_arrive_move(S, "d2", "mv", "w2", "w3", &st, err, sizeof err);
	ok(st == DT_MOVE_GONE && !strcmp(field("mv", "worker"), "w2"),
	   "  nor one by another distributor");

	/* Left for the usual claim. */
	flush();
	ok(arrive1(S, 1 << 20, &items, &got) == 0 && items.n == 0 && got.n == 0,
	   "an empty queue: nothing taken, nothing claimed");
	dt_strv_free(&items);
	dt_strv_free(&got);
	submit("{\"function\":\"g\"}");
	arrive1(S, 1 << 20, &items, &got);
	ok(items.n == 1 && got.n == 0 && num("LLEN inflight-d1") == 1 && num("EXISTS tasks") == 0,
	   "a function no free worker runs: left in inflight-d1");
	dt_strv_free(&items);
	dt_strv_free(&got);
	flush();
	cmd0("RPUSH queue-f parked");
	submit("{\"function\":\"f\"}");
	arrive1(S, 1 << 20, &items, &got);
	ok(items.n == 1 && got.n == 0 && num("LLEN inflight-d1") == 1,
	   "parked items of its function: left (they are served first)");
	dt_strv_free(&items);
	dt_strv_free(&got);
	flush();
	cmd0("HSET task-k state QUEUED attempt 2");
	submit("{\"id\":\"k\",\"function\":\"f\"}");
	arrive1(S, 1 << 20, &items, &got);
	ok(items.n == 1 && got.n == 0 && !strcmp(field("k", "state"), "QUEUED"),
	   "an id with a record: left for claim.lua's checks");
	dt_strv_free(&items);
	dt_strv_free(&got);
	flush();
	cmd0("LPUSH inflight-d1 leftover");
	submit("{\"function\":\"f\"}");
	arrive1(S, 1 << 20, &items, &got);
	ok(items.n == 1 && got.n == 0 && num("LLEN inflight-d1") == 2,
	   "inflight-d1 holding more than the item taken: left");
	dt_strv_free(&items);
	dt_strv_free(&got);
	flush();
	submit("{\"function\":\"f\",\"data\":\"0123456789\"}");
	arrive1(S, 300, &items, &got);
	ok(items.n == 1 && got.n == 0, "an item that does not fit max_message: left");
	dt_strv_free(&items);
	dt_strv_free(&got);

	/* Claimed only when the C check reads the item the same way. */
	static const struct {
		const char *raw;
		int claim; /* 1 must be claimed, 0 must be left, -1 either */
	} cases[] = {
		{ "{\"function\":\"f\"}", 1 },
		{ "{\"function\":\"f\"}   ", 1 },
		{ "{ \"function\" : \"f\" , \"data\" : [ ] }", 1 },
		{ "{\"id\":\"given:1.a-b_c\",\"function\":\"f\"}", 1 },
		{ "{\"function\":\"f\",\"clean_end\":false,\"state_optional\":true}", 1 },
		{ "{\"function\":\"f\",\"max_attempts\":7}", 1 },
		{ "{\"function\":\"f\",\"max_attempts\":0,\"data\":-0}", 1 },
		{ "{\"function\":\"f\",\"max_attempts\":-0}", 1 },
		{ "{\"function\":\"f\",\"data\":{\"a\":1,\"a\":2}}", 1 },
		{ "{\"function\":\"f\",\"data\":\"{[}] true 1e5 x\"}", 1 },
		{ " {\"function\":\"f\"}", 0 },
		{ "{\"function\":\"f\",\"data\":1e5}", 0 },
		{ "{\"function\":\"f\",\"data\":1E5}", 0 },
		{ "{\"function\":\"f\",\"data\":01}", 0 },
		{ "{\"function\":\"f\",\"data\":-01}", 0 },
		{ "{\"function\":\"f\",\"data\":.5}", 0 },
		{ "{\"function\":\"f\",\"data\":1.}", 0 },
		{ "{\"function\":\"f\",\"data\":+1}", 0 },
		{ "{\"function\":\"f\",\"data\":-}", 0 },
		{ "{\"function\":\"f\",\"data\":- 1}", 0 },
		{ "{\"function\":\"f\",\"data\":NaN}", 0 },
		{ "{\"function\":\"f\",\"data\":Infinity}", 0 },
		{ "{\"function\":\"f\",\"data\":0x10}", 0 },
		{ "{\"function\":\"f\",\"data\":\"\\u00e9\"}", 0 },
		{ "{\"function\":\"f\",\"data\":\"\xc3\xa9\"}", 0 },
		{ "{\"function\":\"f\",\"data\":\"\xff\"}", 0 },
		{ "{\"function\":\"f\",\"data\":\"a\tb\"}", 0 },
		{ "{\"function\":\"f\",\"max_attempts\":5.0}", 0 },
		{ "{\"function\":\"f\",\"max_attempts\":7,\"data\":1.5}", 0 },
		{ "{\"function\":\"f\",\"max_attempts\":-1}", 0 },
		{ "{\"function\":\"f\",\"max_attempts\":2147483648}", 0 },
		{ "{\"function\":\"f\",\"max_attempts\":\"5\"}", 0 },
		{ "{\"function\":\"f\",\"clean_end\":0}", 0 },
		{ "{\"function\":\"f\",\"clean_end\":null}", 0 },
		{ "{\"function\":\"f\",\"state_optional\":\"yes\"}", 0 },
		{ "{\"function\":\"f\",\"attempt\":2}", 0 },
		{ "{\"function\":\"f\",\"attempt\":null}", 0 },
		{ "{\"function\":\"f\",\"id\":\"bad id\"}", 0 },
		{ "{\"function\":\"f\",\"id\":\"\"}", 0 },
		{ "{\"function\":\"f\",\"id\":7}", 0 },
		{ "{\"function\":\"f\",\"id\":null}", 0 },
		{ "{\"function\":\"\"}", 0 },
		{ "{\"function\":7}", 0 },
		{ "{\"function\":\"f\",}", 0 },
		{ "{\"function\":\"f\",\"data\":[1,2,]}", 0 },
		{ "{\"function\":\"f\",\"data\":[1 2]}", 0 },
		{ "{\"function\":\"f\",\"data\":{\"a\"}}", 0 },
		{ "{\"function\":\"f\",\"data\":{1:2}}", 0 },
		{ "{'function':'f'}", 0 },
		{ "{\"function\":\"f\"} x", 0 },
		{ "{\"function\":\"f\"}{\"function\":\"f\"}", 0 },
		{ "{\"function\":\"f\"", 0 },
		{ "{\"function\":\"f\",\"data\":tru}", 0 },
		{ "{\"function\":\"f\",\"data\":nulll}", 0 },
		{ "[{\"function\":\"f\"}]", 0 },
		{ "{\"function\":\"g\",\"function\":\"f\"}", -1 },
		{ "{\"function\":\"f\",\"function\":\"g\"}", -1 },
		{ "{\"function\":\"f\",\"function\":7}", -1 },
	};
	size_t nc = sizeof cases / sizeof cases[0];
	for (size_t i = 0; i < nc; i++) {
		int c = arrive_item(cases[i].raw, &agree);
		ok(c >= 0 && agree && (cases[i].claim < 0 || c == cases[i].claim),
		   "arrive: %s %s", c == 1 ? "claims" : "leaves", cases[i].raw);
	}
	char id[130], item[200];
	memset(id, 'a', 128);
	id[128] = '\0';
	snprintf(item, sizeof item, "{\"id\":\"%s\",\"function\":\"f\"}", id);
	ok(arrive_item(item, &agree) == 1 && agree, "arrive: claims an id of 128 characters");
	id[128] = 'a';
	id[129] = '\0';
	snprintf(item, sizeof item, "{\"id\":\"%s\",\"function\":\"f\"}", id);
	ok(arrive_item(item, &agree) == 0 && agree, "arrive: leaves an id of 129");
	ok(arrive_item(nested(15), &agree) == 1 && agree, "arrive: claims data nested 16 deep");
	ok(arrive_item(nested(16), &agree) == 0 && agree, "arrive: leaves data nested 17 deep");
	ok(arrive_item(nested(40), &agree) == 0 && agree, "arrive: leaves data nested 41 deep");

	/* A Redis without the script yet: the EVALSHA answers NOSCRIPT and is
	 * sent again as EVAL, after the BLMOVE's answer, and still claims. */
	flush();
	cmd0("SCRIPT FLUSH");
	long long ns = noscripts();
	submit("{\"id\":\"ns\",\"function\":\"f\"}");
	arrive1(S, 1 << 20, &items, &got);
	ok(got.n == DT_ARRIVE_N && noscripts() > ns && !strcmp(field("ns", "state"), "RUNNING") &&
	   num("LLEN inflight-d1") == 0, "arrive after SCRIPT FLUSH: NOSCRIPT, then EVAL claims");
	dt_strv_free(&items);
	dt_strv_free(&got);

	/* With a key prefix. */
	dt_store *P = NULL;
	dt_redis_conf rc = RC;
	rc.prefix = "pfx:";
	flush();
	if (dt_store_open(&rc, &P, err, sizeof err) == 0) {
		const char *it = "{\"function\":\"f\"}";
		dt_store_submit(P, it, strlen(it), err, sizeof err);
		arrive1(P, 1 << 20, &items, &got);
		ok(got.n == DT_ARRIVE_N && num("EXISTS pfx:task-fresh-1") == 1 &&
		   num("SISMEMBER pfx:tasks fresh-1") == 1 && num("ZCARD pfx:running") == 1 &&
		   num("EXISTS pfx:inflight-d1") == 0 && num("DBSIZE") == 3,
		   "arrive with a key prefix: pfx:task-<id>, pfx:tasks, pfx:running only");
		dt_strv_free(&items);
		dt_strv_free(&got);
		cmd0("RPUSH pfx:queue-f parked");
		dt_store_submit(P, it, strlen(it), err, sizeof err);
		arrive1(P, 1 << 20, &items, &got);
		ok(got.n == 0 && num("LLEN pfx:inflight-d1") == 1,
		   "  and it sees the prefixed queue-f's parked items");
		dt_strv_free(&items);
		dt_strv_free(&got);
		dt_store_free(P);
	} else {
		ok(0, "a store with prefix pfx: (%s)", err);
		ok(0, "  (no store)");
	}
}

int main(void)
{
	const char *port = getenv("REDIS_PORT");
	if (!port || !*port) {
		printf("1..0 # SKIP REDIS_PORT is not set (run tests/integration/store.sh)\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */

	R = redisConnect("127.0.0.1", atoi(port));
	if (!R || R->err) {
		printf("Bail out! cannot connect to redis on port %s\n", port);
		return 1;
	}
	RC.host = "127.0.0.1";
	RC.port = atoi(port);
	RC.prefix = "";
	tap_plan(PLAN);
	if (dt_store_open(&RC, &S, err, sizeof err)) {
		printf("Bail out! dt_store_open: %s\n", err);
		return 1;
	}

	t_basics();
	t_take();
	t_claim();
	t_heartbeat_finish();
	t_clean_end();
	t_requeue();
	t_stopped();
	t_unclaim_cancel();
	t_park_bad();
	t_inflight();
	t_distributors();
	t_workers();
	t_noscript();
	t_reconnect();
	t_auth_db();
	t_prefix();
	t_client_calls();
	t_claim_tail();
	t_arrive();

	dt_store_free(S);
	redisFree(R);
	return tap_done(PLAN);
}
