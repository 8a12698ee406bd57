/*
 * client.c - the client API of dtask.h ("Clients"): submit and inspect
 * tasks.  What the dtask command is built on.
 *
 * DESIGN
 * A dtask_client is one dt_store (one Redis connection, connected at
 * creation) plus the configuration it came from and the last failure's
 * message.  Every Redis call goes through store.c; the state changes go
 * through its scripts (request.lua, requeue.lua, clean.lua), so a client
 * never writes a record a script would have to fence.
 *
 * Task JSON is built with json-c from checked parts, then checked once
 * more with dt_item_parse() (the distributor's own rules), so what the
 * client queues is never a bad-task.  Items given whole to
 * dtask_submit_many() are queued verbatim (SPEC 2: never re-encoded).
 */
#include "build-config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "conf.h"
#include "dtask.h"
#include "item.h"
#include "store.h"
#include "util.h"

#include "client_internal.h"

/* Record the failure code with a message; returns code (client_internal.h). */
int dt_client_fail(dtask_client *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return code;
}

static void ok(dtask_client *c)
{
	c->err[0] = '\0';
}

static int check_id(dtask_client *c, const char *id)
{
	if (!id || !dt_id_valid(id, strlen(id)))
		return dt_client_fail(c, DTASK_EINVAL, "invalid task id \"%.140s\": 1-%d characters of "
			    "[A-Za-z0-9_.:-] expected", id ? id : "(null)", DTASK_ID_MAX);
	return 0;
}

/* ---------------------------------------------------------- life cycle */

/* "redis H:P: cannot connect: why" -> "why". */
static const char *connect_reason(const char *msg)
{
	const char *p = msg;
	if (!strncmp(p, "redis ", 6)) {
		const char *q = strstr(p, ": ");
		if (q)
			p = q + 2;
	}
	if (!strncmp(p, "cannot connect: ", 16))
		p += 16;
	return p;
}

static char *dup_msg(const char *msg)
{
	return strdup(msg);
}

dtask_client *dtask_client_new(const char *config_path, char **errmsg)
{
	char err[1024];
	if (errmsg)
		*errmsg = NULL;
	dtask_client *c = calloc(1, sizeof *c);
	if (!c) {
		if (errmsg)
			*errmsg = dup_msg("out of memory");
		return NULL;
	}
	if (!config_path || !config_path[0]) {
		snprintf(err, sizeof err, "no configuration file given");
		goto fail;
	}
	if (dt_config_load(config_path, &c->conf, err, sizeof err))
		goto fail;
	if (dt_store_new(&c->conf->redis, &c->store, err, sizeof err))
		goto fail;
	if (dt_store_ensure(c->store, err, sizeof err)) {
		char why[sizeof err];
		memcpy(why, err, sizeof why);
		const char *r = connect_reason(why);
		const dt_redis_conf *rc = &c->conf->redis;
		if (rc->host[0] == '/')
			snprintf(err, sizeof err, "cannot reach Redis at %.200s: %.700s", rc->host, r);
		else
			snprintf(err, sizeof err, "cannot reach Redis at %.200s:%d: %.700s", rc->host,
				 rc->port, r);
		goto fail;
	}
	return c;

fail:
	if (errmsg)
		*errmsg = dup_msg(err);
	dtask_client_free(c);
	return NULL;
}

void dtask_client_free(dtask_client *c)
{
	if (!c)
		return;
	dt_store_free(c->store);
	dt_config_free(c->conf);
	free(c);
}

const char *dtask_client_error(const dtask_client *c)
{
	return c ? c->err : "no client";
}

int dtask_client_time(dtask_client *c, long long *now_ms)
{
	int64_t now = 0;
	int rc = dt_store_time(c->store, &now, c->err, sizeof c->err);
	if (rc)
		return rc;
	ok(c);
	*now_ms = now;
	return 0;
}

/* -------------------------------------------------------------- submit */

/* data (JSON text) checked strictly (RFC 8259, UTF-8: dt_item_parse()'s
 * rules, on a probe item around it), then parsed by json-c.  *out = NULL
 * for JSON null. */
static int parse_data(dtask_client *c, const char *data, struct json_object **out)
{
	static const char head[] = "{\"function\":\"f\",\"data\":";
	*out = NULL;
	size_t len = strlen(data);
	if (len > (size_t)INT32_MAX - sizeof head - 2)
		return dt_client_fail(c, DTASK_EINVAL, "data is too large");
	char *probe = malloc(sizeof head + len + 2);
	if (!probe)
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	memcpy(probe, head, sizeof head - 1);
	memcpy(probe + sizeof head - 1, data, len);
	/* The '}' also ends a number json-c would wait on. */
	memcpy(probe + sizeof head - 1 + len, "}", 2);
	dt_item it;
	char why[256];
	int rc = dt_item_parse(probe, sizeof head + len, &it, why, sizeof why);
	if (rc) {
		free(probe);
		if (rc == DTASK_EINVAL)
			return dt_client_fail(c, rc, "data is not valid JSON (%s)", why);
		return dt_client_fail(c, rc, "cannot check data: %s", why);
	}
	dt_item_free(&it);
	struct json_object *o = json_tokener_parse(probe), *d = NULL;
	free(probe);
	if (!o || !json_object_object_get_ex(o, "data", &d)) {
		json_object_put(o);
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	}
	*out = json_object_get(d);
	json_object_put(o);
	return 0;
}

static int add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -1;
	if (json_object_object_add(o, k, v)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

int dtask_submit(dtask_client *c, const char *function, const char *data,
		 const dtask_submit_opts *opts, char *id_out)
{
	static const dtask_submit_opts defaults;
	char id[DTASK_ID_MAX + 1];
	if (!opts)
		opts = &defaults;
	if (id_out)
		id_out[0] = '\0';
	if (!function || !function[0])
		return dt_client_fail(c, DTASK_EINVAL, "no function given");
	if (opts->id) {
		int rc = check_id(c, opts->id);
		if (rc)
			return rc;
		snprintf(id, sizeof id, "%s", opts->id);
	} else {
		char u[DT_UUID_LEN + 1];
		if (dt_uuid4(u))
			return dt_client_fail(c, DTASK_EIO, "no random bytes for a task id");
		snprintf(id, sizeof id, "%s", u);
	}
	struct json_object *d = NULL;
	if (data) {
		int rc = parse_data(c, data, &d);
		if (rc)
			return rc;
	}
	struct json_object *o = json_object_new_object();
	if (!o) {
		json_object_put(d);
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	}
	int bad = add(o, "id", json_object_new_string(id)) ||
		  add(o, "function", json_object_new_string(function));
	if (!bad) {
		/* JSON null is a NULL json_object; add it as such. */
		if (json_object_object_add(o, "data", d)) {
			json_object_put(d);
			bad = 1;
		}
	} else {
		json_object_put(d);
	}
	bad = bad || add(o, "clean_end", json_object_new_boolean(!opts->keep_end)) ||
	      add(o, "state_optional", json_object_new_boolean(opts->state_optional != 0));
	if (!bad && opts->max_attempts != 0)
		bad = add(o, "max_attempts",
			  json_object_new_int(opts->max_attempts < 0 ? 0 : opts->max_attempts));
	if (bad) {
		json_object_put(o);
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	}
	size_t len = 0;
	const char *txt = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!txt) {
		json_object_put(o);
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	}
	/* The distributor's own check: what we queue is never a bad-task. */
	dt_item it;
	char why[256];
	int rc = dt_item_parse(txt, len, &it, why, sizeof why);
	if (rc) {
		json_object_put(o);
		return dt_client_fail(c, rc, "invalid task: %s", why);
	}
	dt_item_free(&it);
	rc = dt_store_submit(c->store, txt, len, c->err, sizeof c->err);
	json_object_put(o);
	if (rc)
		return rc;
	ok(c);
	if (id_out)
		snprintf(id_out, DTASK_ID_MAX + 1, "%s", id);
	return 0;
}

int dtask_submit_many(dtask_client *c, const char *const *tasks_json, size_t n)
{
	if (n == 0) {
		ok(c);
		return 0;
	}
	if (!tasks_json)
		return dt_client_fail(c, DTASK_EINVAL, "no tasks given");
	size_t *lens = malloc(n * sizeof *lens);
	if (!lens)
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!tasks_json[i]) {
			free(lens);
			return dt_client_fail(c, DTASK_EINVAL, "task %zu: NULL", i);
		}
		lens[i] = strlen(tasks_json[i]);
		dt_item it;
		char why[256];
		int rc = dt_item_parse(tasks_json[i], lens[i], &it, why, sizeof why);
		if (rc) {
			free(lens);
			return dt_client_fail(c, rc, "task %zu: %s", i, why);
		}
		dt_item_free(&it);
	}
	int rc = dt_store_submit_many(c->store, tasks_json, lens, n, c->err, sizeof c->err);
	free(lens);
	if (!rc)
		ok(c);
	return rc;
}

/* ------------------------------------------------------------- readers */

int dtask_get(dtask_client *c, const char *id, struct json_object **record)
{
	*record = NULL;
	int rc = check_id(c, id);
	if (rc)
		return rc;
	if ((rc = dt_store_record(c->store, "task", id, record, c->err, sizeof c->err)))
		return rc;
	if (!*record)
		return dt_client_fail(c, DTASK_ENOTFOUND, "no task %s", id);
	ok(c);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *field(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* names (sorted, duplicates dropped) -> an array of <kind>-<name> records
 * with key (e.g. "id") added, those with state (NULL: all). */
static int records_array(dtask_client *c, const char *kind, const char *key, char **names,
			 size_t n, const char *state, struct json_object **out)
{
	*out = NULL;
	qsort(names, n, sizeof *names, cmp_str);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (m == 0 || strcmp(names[m - 1], names[i]))
			names[m++] = names[i];
	struct json_object **recs = calloc(m ? m : 1, sizeof *recs);
	if (!recs)
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	int rc = dt_store_records(c->store, kind, (const char *const *)names, m, recs, c->err,
				  sizeof c->err);
	if (rc) {
		free(recs);
		return rc;
	}
	struct json_object *arr = json_object_new_array();
	if (!arr)
		rc = dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	for (size_t i = 0; i < m; i++) {
		struct json_object *r = recs[i];
		recs[i] = NULL;
		if (rc || !r) { /* gone since SMEMBERS (cleaned, cleared) */
			json_object_put(r);
			continue;
		}
		const char *st = field(r, "state");
		if (state && (!st || strcmp(st, state))) {
			json_object_put(r);
			continue;
		}
		if (add(r, key, json_object_new_string(names[i])) ||
		    json_object_array_add(arr, r)) {
			json_object_put(r);
			rc = dt_client_fail(c, DTASK_ENOMEM, "out of memory");
		}
	}
	free(recs);
	if (rc) {
		json_object_put(arr);
		return rc;
	}
	*out = arr;
	ok(c);
	return 0;
}

int dtask_list(dtask_client *c, const char *state, struct json_object **records)
{
	*records = NULL;
	if (state && strcmp(state, "QUEUED") && strcmp(state, "RUNNING") &&
	    strcmp(state, "STOPPED") && strcmp(state, "END"))
		return dt_client_fail(c, DTASK_EINVAL, "invalid state \"%.40s\": QUEUED, RUNNING, STOPPED "
			    "or END expected", state);
	dt_strv a = { 0 }, b = { 0 };
	int rc = dt_store_members(c->store, "tasks", &a, c->err, sizeof c->err);
	if (!rc)
		rc = dt_store_members(c->store, "end-task", &b, c->err, sizeof c->err);
	char **names = NULL;
	if (!rc && !(names = malloc((a.n + b.n + 1) * sizeof *names)))
		rc = dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	if (!rc) {
		size_t n = 0;
		for (size_t i = 0; i < a.n; i++)
			if (a.v[i][0])
				names[n++] = a.v[i];
		for (size_t i = 0; i < b.n; i++)
			if (b.v[i][0])
				names[n++] = b.v[i];
		rc = records_array(c, "task", "id", names, n, state, records);
	}
	free(names);
	dt_strv_free(&a);
	dt_strv_free(&b);
	return rc;
}

int dtask_workers(dtask_client *c, struct json_object **workers)
{
	*workers = NULL;
	dt_strv a = { 0 };
	int rc = dt_store_members(c->store, "workers", &a, c->err, sizeof c->err);
	char **names = NULL;
	if (!rc && !(names = malloc((a.n + 1) * sizeof *names)))
		rc = dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	if (!rc) {
		size_t n = 0;
		for (size_t i = 0; i < a.n; i++)
			if (a.v[i][0])
				names[n++] = a.v[i];
		rc = records_array(c, "worker", "name", names, n, NULL, workers);
	}
	free(names);
	dt_strv_free(&a);
	return rc;
}

/* ------------------------------------------------------------- changes */

static int request(dtask_client *c, const char *id, const char *what)
{
	char ans[64];
	int rc = check_id(c, id);
	if (rc)
		return rc;
	if ((rc = dt_store_request(c->store, id, what, ans, sizeof ans, c->err, sizeof c->err)))
		return rc;
	if (!strcmp(ans, "skip none"))
		return dt_client_fail(c, DTASK_ENOTFOUND, "no task %s", id);
	if (!strncmp(ans, "skip ", 5))
		return dt_client_fail(c, DTASK_ESTATE, "task %s is %s: %s", id, ans + 5,
			    !strcmp(what, "stop") ? "only a RUNNING task can be stopped"
						  : "an ended task cannot be cancelled");
	ok(c);
	return 0;
}

int dtask_stop(dtask_client *c, const char *id)
{
	return request(c, id, "stop");
}

int dtask_cancel(dtask_client *c, const char *id)
{
	return request(c, id, "cancel");
}

int dtask_requeue(dtask_client *c, const char *id)
{
	int rc = check_id(c, id);
	if (rc)
		return rc;
	dt_requeue_req q = { id, -1, "requeued by a client", DT_RQ_NOW, -1 };
	dt_requeue_res r;
	memset(&r, 0, sizeof r);
	if ((rc = dt_store_requeue(c->store, &q, 1, 0, &r, c->err, sizeof c->err)))
		return rc;
	if (r.status == DT_RQ_SKIP) {
		if (!strcmp(r.state, "none"))
			return dt_client_fail(c, DTASK_ENOTFOUND, "no task %s", id);
		if (!strcmp(r.state, "nodata"))
			return dt_client_fail(c, DTASK_ESTATE, "task %s has no task data to requeue", id);
		return dt_client_fail(c, DTASK_ESTATE, "task %s is %s: only a RUNNING or STOPPED task can "
			    "be requeued", id, r.state);
	}
	ok(c);
	return 0;
}

/* ---------------------------------------------------------------- wait */

int dtask_wait(dtask_client *c, const char *id, int timeout_ms, int clean,
	       struct json_object **record)
{
	*record = NULL;
	int rc = check_id(c, id);
	if (rc)
		return rc;
	int64_t deadline = timeout_ms < 0 ? -1 : dt_mono_ms() + timeout_ms;
	int64_t pause = 10;
	int seen = 0;
	for (;;) {
		struct json_object *r = NULL;
		if ((rc = dt_store_record(c->store, "task", id, &r, c->err, sizeof c->err)))
			return rc;
		if (r) {
			const char *st = field(r, "state");
			if (st && !strcmp(st, "END")) {
				if (clean) {
					char ans[64];
					rc = dt_store_clean(c->store, id, ans, sizeof ans, c->err,
							    sizeof c->err);
					if (rc) {
						json_object_put(r);
						return rc;
					}
				}
				*record = r;
				ok(c);
				return 0;
			}
			json_object_put(r);
			seen = 1;
		} else if (seen) {
			return dt_client_fail(c, DTASK_ENOTFOUND, "task %s ended and its record was cleaned "
				    "(submit it with keep_end to read its end)", id);
		}
		int64_t now = dt_mono_ms();
		if (deadline >= 0 && now >= deadline)
			return dt_client_fail(c, DTASK_ETIMEDOUT, "task %s did not end within %d ms", id,
				    timeout_ms);
		int64_t p = pause;
		if (deadline >= 0 && now + p > deadline)
			p = deadline - now;
		dt_sleep_ms(p);
		if (pause < 100)
			pause += 10;
	}
}
