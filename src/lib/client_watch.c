/*
 * client_watch.c - dtask_watch(): follow a task's live events (dtask.h,
 * doc/PROTOCOL.md 6.4).
 *
 * DESIGN
 *   A loop over the task's record in Redis: RUNNING names the worker, whose
 *   record (worker-<name>) gives its watcher listener; the watch connects
 *   there (TLS and the share_key proof, as a worker connects to a
 *   distributor), subscribes, and passes every message on.  It leaves that
 *   worker when the task ends there (state END: done), stops there
 *   (STOPPED: it will be requeued), is not found there, or when the
 *   connection closes (the worker died); then it reads the record again
 *   and follows the task wherever it runs next.  It says "health" to the
 *   worker every health_interval, as a worker does to a distributor.  While no worker runs it
 *   (QUEUED, STOPPED, or no record yet), it polls the record every
 *   WATCH_POLL_MS.  A silent connection is checked against Redis every
 *   second, so a hung worker whose task moved on is left too.
 *   Threads: the caller's only; the TLS credentials are made on first use
 *   and freed at return.
 */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "client_internal.h"
#include "conn.h"
#include "dtask.h"
#include "item.h"
#include "tls.h"
#include "util.h"
#include "watch.h"

#define WATCH_POLL_MS 200
#define WATCH_CHECK_MS 1000
#define WATCH_CONNECT_TRIES 25 /* for one (worker, attempt), WATCH_POLL_MS apart */
#define WATCH_REDIS_TRIES 25   /* Redis errors in a row, WATCH_POLL_MS apart */

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A "state" the watch makes up itself (QUEUED, END after a clean). */
static int say_state(dtask_watch_fn fn, void *arg, const char *id, long long attempt,
		     const char *state)
{
	char json[DT_ID_MAX + 128];
	snprintf(json, sizeof json, "{\"type\":\"state\",\"id\":\"%s\",\"attempt\":%lld,\"state\":\"%s\"}",
		 id, attempt, state);
	dtask_watch_msg m = { .type = "state", .id = id, .attempt = attempt, .state = state,
			      .json = json };
	return fn(&m, arg);
}

/* The subscribe line. */
static char *subscribe_msg(const char *id, const char *const *events, size_t n)
{
	json_object *m = json_object_new_object(), *ev = NULL;
	if (!m)
		return NULL;
	json_object_object_add(m, "type", json_object_new_string("subscribe"));
	json_object_object_add(m, "id", json_object_new_string(id));
	if (n) {
		ev = json_object_new_array();
		for (size_t i = 0; ev && i < n; i++)
			json_object_array_add(ev, json_object_new_string(events[i]));
		json_object_object_add(m, "events", ev);
	}
	char *s = strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	json_object_put(m);
	return s;
}

enum { W_AGAIN, W_DONE, W_STOPPED_BY_FN };

/* Watch on one worker until the task leaves it.  W_DONE after END,
 * W_STOPPED_BY_FN, W_AGAIN to look again, or an error. */
static int watch_on(dtask_client *c, dt_link_opts *lo, int health_ms, const char *host,
		    int port, const char *id, long long attempt, const char *sub,
		    dtask_watch_fn fn, void *arg)
{
	dt_conn *conn = NULL;
	char err[512];
	int rc = dt_conn_connect(lo, host, port, &conn, err, sizeof err);
	if (rc < 0)
		return dt_client_fail(c, rc, "watcher listener %s:%d: %s", host, port, err);
	if (dt_conn_send(conn, sub, strlen(sub)) < 0) {
		dt_conn_free(conn);
		return W_AGAIN;
	}
	int result = W_AGAIN;
	static const char health[] = "{\"type\":\"health\"}";
	int64_t next_health = dt_mono_ms() + health_ms, last_rx = dt_mono_ms();
	for (;;) {
		/* Our "health" every health_interval, however busy the task is:
		 * the worker drops a watcher it has not heard from. */
		int64_t now = dt_mono_ms();
		if (now >= next_health) {
			if (dt_conn_send(conn, health, sizeof health - 1) < 0)
				break; /* the link is gone: look again */
			next_health = now + health_ms;
		}
		int64_t wait = next_health - now;
		if (wait > WATCH_CHECK_MS)
			wait = WATCH_CHECK_MS;
		json_object *m = NULL;
		rc = dt_conn_recv_msg(conn, (int)wait, &m, err, sizeof err);
		if (rc == DTASK_ETIMEDOUT) {
			if (dt_mono_ms() - last_rx < WATCH_CHECK_MS)
				continue;
			last_rx = dt_mono_ms();
			/* Silent: has the task moved on without us? */
			json_object *rec = NULL;
			if (dtask_get(c, id, &rec) < 0) {
				result = W_AGAIN;
				break;
			}
			const char *st = str_of(rec, "state"), *a = str_of(rec, "attempt");
			int same = st && !strcmp(st, "RUNNING") && a && atoll(a) == attempt;
			json_object_put(rec);
			if (!same)
				break;
			continue;
		}
		if (rc == DTASK_EPROTO)
			continue; /* a line we cannot read: skip it */
		if (rc < 0)
			break;    /* closed: the worker went; look again */
		last_rx = dt_mono_ms();
		const char *type = str_of(m, "type");
		if (!strcmp(type, "error")) {
			const char *why = str_of(m, "message");
			/* "not running on this worker": it moved; look again.  Any
			 * other refusal will not change by trying again. */
			if (!why || !strstr(why, "is not running on this worker"))
				result = dt_client_fail(c, DTASK_EPROTO, "worker %s:%d refused the watch: %s",
					       host, port, why ? why : "(no message)");
			json_object_put(m);
			break;
		}
		dtask_watch_msg wm = { .type = type, .id = str_of(m, "id"), .json = NULL };
		json_object *v;
		wm.attempt = json_object_object_get_ex(m, "attempt", &v) ? json_object_get_int64(v) : 0;
		wm.event = str_of(m, "event");
		wm.state = str_of(m, "state");
		wm.error = str_of(m, "error");
		wm.time = json_object_object_get_ex(m, "time", &v) ? json_object_get_int64(v) : 0;
		wm.data = json_object_object_get_ex(m, "data", &v)
				  ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
				  : "null";
		wm.json = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
		if (!wm.id)
			wm.id = id;
		int stop = fn(&wm, arg);
		int end = !strcmp(type, "state") && wm.state && !strcmp(wm.state, "END");
		int moved = !strcmp(type, "state") && wm.state && !strcmp(wm.state, "STOPPED");
		json_object_put(m);
		if (stop) {
			result = W_STOPPED_BY_FN;
			break;
		}
		if (end) {
			result = W_DONE;
			break;
		}
		if (moved)
			break;
	}
	dt_conn_close(conn);
	dt_conn_free(conn);
	return result;
}

int dtask_watch(dtask_client *c, const char *id, const char *const *events, size_t nevents,
		dtask_watch_fn fn, void *arg)
{
	if (!id || !dt_id_valid(id, strlen(id)))
		return dt_client_fail(c, DTASK_EINVAL, "invalid task id \"%.140s\"", id ? id : "(null)");
	if (!fn)
		return dt_client_fail(c, DTASK_EINVAL, "no callback");
	for (size_t i = 0; i < nevents; i++)
		if (!events[i] || !dt_event_name_valid(events[i]))
			return dt_client_fail(c, DTASK_EINVAL, "invalid event name \"%.80s\": 1-%d characters "
				     "of [A-Za-z0-9_.:-] expected", events[i] ? events[i] : "(null)",
				     DT_EVENT_NAME_MAX);
	const dt_config *cfg = c->conf;
	char err[512];
	dt_tls *tls = dt_tls_new(cfg->cert, NULL, cfg->ca, cfg->insecure, cfg->path, err, sizeof err);
	if (!tls)
		return dt_client_fail(c, DTASK_ECONFIG, "%s", err);
	dt_link_opts lo = { tls, cfg->share_key, cfg->max_message, cfg->handshake_timeout,
			    cfg->send_timeout };
	char *sub = subscribe_msg(id, events, nevents);
	if (!sub) {
		dt_tls_free(tls);
		return dt_client_fail(c, DTASK_ENOMEM, "out of memory");
	}

	int rc = 0, seen = 0, failures = 0, redis_errors = 0;
	char last_worker[256] = "";
	long long last_attempt = -1;
	int said_queued = 0; /* QUEUED was passed on since it last ran */
	for (;;) {
		json_object *rec = NULL;
		rc = dtask_get(c, id, &rec);
		if (rc == DTASK_ENOTFOUND && seen) {
			/* Cleaned at its end (clean_end). */
			rc = say_state(fn, arg, id, 0, "END") ? 1 : 0;
			break;
		}
		if (rc == DTASK_EREDIS && ++redis_errors < WATCH_REDIS_TRIES) {
			dt_sleep_ms(WATCH_POLL_MS);
			continue;
		}
		if (rc < 0)
			break;
		redis_errors = 0;
		seen = 1;
		const char *st = str_of(rec, "state"), *a = str_of(rec, "attempt");
		long long attempt = a ? atoll(a) : 0;
		if (st && !strcmp(st, "END")) {
			json_object_put(rec);
			rc = say_state(fn, arg, id, attempt, "END") ? 1 : 0;
			break;
		}
		if (!st || strcmp(st, "RUNNING") != 0) {
			json_object_put(rec);
			if (!said_queued) {
				said_queued = 1;
				if (say_state(fn, arg, id, attempt, "QUEUED")) {
					rc = 1;
					break;
				}
			}
			dt_sleep_ms(WATCH_POLL_MS);
			continue;
		}
		said_queued = 0;
		char worker[256];
		snprintf(worker, sizeof worker, "%s", str_of(rec, "worker") ? str_of(rec, "worker") : "");
		json_object_put(rec);

		json_object *wrec = NULL;
		rc = dt_store_record(c->store, "worker", worker, &wrec, c->err, sizeof c->err);
		if (rc < 0)
			break;
		const char *host = str_of(wrec, "host"), *p = str_of(wrec, "port");
		int port = p ? atoi(p) : 0;
		if (!wrec || !host || port <= 0) {
			json_object_put(wrec);
			rc = dt_client_fail(c, DTASK_ECONNECT, "worker %s, which runs task %s, has no watcher "
				   "listener (no \"key\" in its configuration?)", worker, id);
			break;
		}
		char h[256];
		snprintf(h, sizeof h, "%s", host);
		json_object_put(wrec);

		/* The same copy as last time: it has not moved on (yet). */
		int same = attempt == last_attempt && !strcmp(worker, last_worker);
		if (!same)
			failures = 0;
		snprintf(last_worker, sizeof last_worker, "%s", worker);
		last_attempt = attempt;
		rc = watch_on(c, &lo, cfg->health_interval, h, port, id, attempt, sub, fn, arg);
		if (rc == W_DONE) {
			rc = 0;
			break;
		}
		if (rc == W_STOPPED_BY_FN) {
			rc = 1;
			break;
		}
		if (rc == DTASK_EAUTH || rc == DTASK_ECERT || rc == DTASK_ECONFIG ||
		    rc == DTASK_EPROTO)
			break; /* will not get better by trying again */
		if (rc < 0 && ++failures >= WATCH_CONNECT_TRIES)
			break;
		/* Left that worker: look again at once the first time, then
		 * every WATCH_POLL_MS while the record still names it. */
		dt_sleep_ms(rc < 0 || same ? WATCH_POLL_MS : 20);
		rc = 0;
	}
	free(sub);
	dt_tls_free(tls);
	if (rc == 0 || rc == 1)
		c->err[0] = '\0';
	return rc;
}
