/*
 * link.c - one thread per connected worker (the dt_server handler).
 *
 * DESIGN
 *   The thread reads its worker's messages (it is the connection's only
 *   reader) and keeps the worker's placement figures and task set up to
 *   date under d->lock.  It never talks to Redis: what needs Redis (a
 *   requeue after "stopped" or "reject", the tasks of a worker that is
 *   lost, its DOWN flag) becomes a job for the sweep thread.
 *   A worker is lost when its stream closes, or when nothing at all came
 *   from it for health_interval x health_misses.  Its tasks are requeued at
 *   once (a worker that died under them: failures + 1), unless this
 *   distributor is stopping: then the worker stops them itself when it
 *   loses us, and another distributor requeues them.
 *   Other threads send to the link (queue: "run"; health: "health") while
 *   holding a reference (refs, under d->lock); the thread frees nothing
 *   until refs is back to 0.
 *
 * Locks: d->lock (never across I/O), then d->jlock inside dt_sweep_post.
 */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "distributor.h"
#include "dtask.h"
#include "item.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "store.h"
#include "util.h"

/* ------------------------------------------------------------ task sets */

int dt_tset_add(dt_tset *s, const char *id, int64_t attempt)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		dt_tref *nv = realloc(s->v, ncap * sizeof *nv);
		if (!nv)
			return DTASK_ENOMEM;
		s->v = nv;
		s->cap = ncap;
	}
	size_t len = strnlen(id, sizeof s->v[s->n].id - 1);
	memcpy(s->v[s->n].id, id, len);
	s->v[s->n].id[len] = '\0';
	s->v[s->n].attempt = attempt;
	s->n++;
	return 0;
}

int dt_tset_remove(dt_tset *s, const char *id, int64_t attempt)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].attempt == attempt && strcmp(s->v[i].id, id) == 0) {
			s->v[i] = s->v[--s->n];
			return 1;
		}
	return 0;
}

int dt_tset_has_id(const dt_tset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].id, id) == 0)
			return 1;
	return 0;
}

void dt_tset_free(dt_tset *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------ helpers */

int dt_link_free(const wlink *l)
{
	if (!l->alive || l->draining || l->redis_down)
		return 0;
	int f = l->reported_free - l->outstanding;
	return f > 0 ? f : 0;
}

int dt_link_has_function(const wlink *l, const char *function)
{
	for (size_t i = 0; i < l->nfunctions; i++)
		if (strcmp(l->functions[i], function) == 0)
			return 1;
	return 0;
}

void dt_link_unref(dist *d, wlink *l)
{
	if (--l->refs == 0)
		pthread_cond_broadcast(&d->unref);
}

static const char *get_str(json_object *m, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(m, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* An integer field in [lo, hi]; -1 (and *ok = 0) when absent or wrong. */
static int64_t get_int(json_object *m, const char *k, int64_t lo, int64_t hi, int *ok)
{
	json_object *v;
	if (!json_object_object_get_ex(m, k, &v) || !json_object_is_type(v, json_type_int)) {
		*ok = 0;
		return -1;
	}
	int64_t x = json_object_get_int64(v);
	if (x < lo || x > hi) {
		*ok = 0;
		return -1;
	}
	return x;
}

/* A printable name of 1..max bytes (no control characters). */
static int valid_name(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* [[id, attempt], ...] into out (emptied first).  -1 if malformed. */
static int get_tasks(json_object *m, dt_tset *out)
{
	json_object *a;
	out->n = 0;
	if (!json_object_object_get_ex(m, "tasks", &a))
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return -1;
	size_t n = json_object_array_length(a);
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(a, i);
		if (!json_object_is_type(p, json_type_array) || json_object_array_length(p) != 2)
			return -1;
		json_object *id = json_object_array_get_idx(p, 0);
		json_object *at = json_object_array_get_idx(p, 1);
		if (!json_object_is_type(id, json_type_string) ||
		    !json_object_is_type(at, json_type_int) ||
		    !dt_id_valid(json_object_get_string(id), strlen(json_object_get_string(id))))
			return -1;
		if (dt_tset_add(out, json_object_get_string(id), json_object_get_int64(at)) < 0)
			return -1;
	}
	return 0;
}

/* Read the message's "free" into l->reported_free unless an older report
 * ("seq" not above the last one): the worker's threads send their reports
 * in any order.  Under d->lock. */
static void take_free_report(wlink *l, int ok, int64_t fr, int sok, int64_t seq)
{
	if (!ok)
		return;
	if (sok) {
		if (seq <= l->free_seq)
			return;
		l->free_seq = seq;
	}
	l->reported_free = (int)fr;
}

static void take_free(wlink *l, json_object *m)
{
	int ok = 1, sok = 1;
	int64_t fr = get_int(m, "free", 0, 1000000, &ok);
	int64_t seq = get_int(m, "seq", 0, INT64_MAX, &sok);
	take_free_report(l, ok, fr, sok, seq);
}

static void link_free(wlink *l)
{
	for (size_t i = 0; i < l->nfunctions; i++)
		free(l->functions[i]);
	free(l->functions);
	dt_tset_free(&l->tasks);
	dt_tset_free(&l->listed);
	free(l);
}

/* ------------------------------------------------------------ hello */

/* "redis_down": true in a hello or health (absent: false). */
static int says_redis_down(json_object *m)
{
	json_object *v;
	return json_object_object_get_ex(m, "redis_down", &v) &&
	       json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* Under d->lock: the worker's Redis state as it said it last; logged when
 * it changes. */
static void set_redis_down(dist *d, wlink *l, int down)
{
	if (down == l->redis_down)
		return;
	l->redis_down = down;
	pthread_cond_broadcast(&d->slots);
	if (down)
		log_warn("worker %s lost Redis: no runs to it; its tasks' update is refreshed for it",
			 l->name);
	else
		log_notice("worker %s has Redis again", l->name);
}

/* The worker's hello into a new link, or NULL (the reason in err). */
static wlink *parse_hello(dist *d, json_object *m, char *err, size_t errlen)
{
	int ok = 1;
	const char *type = get_str(m, "type");
	if (!type || strcmp(type, DT_MSG_HELLO) != 0) {
		dt_err(err, errlen, DTASK_EPROTO, "expected \"hello\" first, got \"%s\"",
		       type ? type : "?");
		return NULL;
	}
	const char *name = get_str(m, "name"), *host = get_str(m, "host");
	int64_t port = get_int(m, "port", 0, 65535, &ok);
	int64_t cap = get_int(m, "capacity", 1, 1000000, &ok);
	int64_t fr = get_int(m, "free", 0, 1000000, &ok);
	json_object *fa;
	if (!valid_name(name, 255) || (host && !valid_name(host, 255)) || !ok ||
	    !json_object_object_get_ex(m, "functions", &fa) ||
	    !json_object_is_type(fa, json_type_array)) {
		dt_err(err, errlen, DTASK_EPROTO,
		       "\"hello\" needs name, port, capacity, free and a functions array");
		return NULL;
	}
	wlink *l = calloc(1, sizeof *l);
	size_t nf = json_object_array_length(fa);
	if (!l || !(l->functions = calloc(nf ? nf : 1, sizeof *l->functions))) {
		free(l);
		dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		return NULL;
	}
	l->d = d;
	snprintf(l->name, sizeof l->name, "%s", name);
	snprintf(l->host, sizeof l->host, "%s", host ? host : "");
	l->port = (int)port;
	l->capacity = (int)cap;
	l->reported_free = (int)fr;
	int sok = 1;
	int64_t seq = get_int(m, "seq", 0, INT64_MAX, &sok);
	l->free_seq = sok ? seq : 0;
	l->redis_down = says_redis_down(m);
	for (size_t i = 0; i < nf; i++) {
		json_object *f = json_object_array_get_idx(fa, i);
		if (!json_object_is_type(f, json_type_string) ||
		    !valid_name(json_object_get_string(f), 255)) {
			link_free(l);
			dt_err(err, errlen, DTASK_EPROTO, "\"hello\": functions must be names");
			return NULL;
		}
		if (!(l->functions[l->nfunctions] = strdup(json_object_get_string(f)))) {
			link_free(l);
			dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
			return NULL;
		}
		l->nfunctions++;
	}
	return l;
}

/* ------------------------------------------------------------ messages */


/* "started", "ended" or "stopped" (type) of the tasks in done, with the
 * message's free report (see take_free_report()).  Frees done. */
static void tasks_done(dist *d, wlink *l, const char *type, dt_tset done, int ok, int64_t fr,
		       int sok, int64_t seq)
{
	int started = strcmp(type, DT_MSG_STARTED) == 0;
	int stopped = strcmp(type, DT_MSG_STOPPED) == 0;
	pthread_mutex_lock(&d->lock);
	/* Cut off from Redis, the worker could not write STOPPED: requeue its
	 * RUNNING record at once, fenced by the attempt (SPEC 5.4). */
	int relay = stopped && l->redis_down;
	take_free_report(l, ok, fr, sok, seq);
	if (started) {
		l->outstanding -= (int)done.n;
		if (l->outstanding < 0)
			l->outstanding = 0;
	} else {
		for (size_t i = 0; i < done.n; i++)
			dt_tset_remove(&l->tasks, done.v[i].id, done.v[i].attempt);
	}
	pthread_mutex_unlock(&d->lock);
	pthread_cond_broadcast(&d->slots); /* after the unlock, as for "free" */
	if (stopped) {
		for (size_t i = 0; i < done.n; i++) {
			dt_job j = { .kind = JOB_REQUEUE, .attempt = done.v[i].attempt,
				     .flags = relay ? DT_RQ_NOW : 0 };
			snprintf(j.id, sizeof j.id, "%s", done.v[i].id);
			snprintf(j.reason, sizeof j.reason, "stopped on worker %.60s%s", l->name,
				 relay ? " (it lost Redis)" : "");
			dt_sweep_post(d, &j);
		}
		log_info("worker %s stopped %zu task(s): requeueing", l->name, done.n);
	}
	dt_tset_free(&done);
}

static void on_tasks_done(dist *d, wlink *l, json_object *m, const char *type)
{
	dt_tset done = { 0 };
	if (get_tasks(m, &done) < 0) {
		log_warn("worker %s: malformed \"%s\" message", l->name, type);
		dt_conn_send_error(l->conn, "malformed \"%s\": tasks must be [[id, attempt], ...]",
				   type);
		dt_tset_free(&done);
		return;
	}
	int ok = 1, sok = 1;
	int64_t fr = get_int(m, "free", 0, 1000000, &ok);
	int64_t seq = get_int(m, "seq", 0, INT64_MAX, &sok);
	tasks_done(d, l, type, done, ok, fr, sok, seq);
}

/* "tasks" of simple text, [[id, attempt], ...], into out; -1 when it is
 * anything else (get_tasks() then reads it, and says what is wrong). */
static int simple_tasks(const char *s, size_t n, dt_tset *out)
{
	size_t i = 0;
#define SKIP_WS() while (i < n && s[i] == ' ') i++
	if (n < 2 || s[i++] != '[')
		return -1;
	SKIP_WS();
	if (i < n && s[i] == ']')
		return 0;
	for (;;) {
		SKIP_WS();
		if (i >= n || s[i++] != '[')
			return -1;
		SKIP_WS();
		if (i >= n || s[i++] != '"')
			return -1;
		size_t a = i;
		while (i < n && s[i] != '"')
			i++;
		size_t idlen = i - a;
		char id[DT_ID_MAX + 1];
		if (i++ >= n || !dt_id_valid(s + a, idlen))
			return -1;
		memcpy(id, s + a, idlen);
		id[idlen] = '\0';
		SKIP_WS();
		if (i >= n || s[i++] != ',')
			return -1;
		SKIP_WS();
		size_t b = i;
		while (i < n && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')))
			i++;
		int64_t attempt;
		if (dt_json_simple_int(s + b, i - b, &attempt) < 0)
			return -1;
		SKIP_WS();
		if (i >= n || s[i++] != ']')
			return -1;
		if (dt_tset_add(out, id, attempt) < 0)
			return -1;
		SKIP_WS();
		if (i < n && s[i] == ',') {
			i++;
			continue;
		}
		return i + 1 == n && s[i] == ']' ? 0 : -1;
	}
#undef SKIP_WS
}

/* The messages a worker sends for every batch ("free", "started",
 * "ended"), read without json-c when simple (dt_json_simple()) and whole:
 * 1 when handled so; 0 for anything else, which the json-c reading then
 * handles (with its answers to what is malformed). */
static int fast_msg(dist *d, wlink *l, const char *line, size_t len)
{
	static const char *const names[] = { "type", "free", "seq", "tasks" };
	enum { M_TYPE, M_FREE, M_SEQ, M_TASKS, M_N };
	const char *v[M_N];
	size_t vl[M_N];
	int64_t fr, seq;
	if (dt_json_simple_members(line, len, 0, names, M_N, v, vl) < 0 || !v[M_TYPE] ||
	    !v[M_FREE] || !v[M_SEQ] || dt_json_simple_int(v[M_FREE], vl[M_FREE], &fr) < 0 ||
	    fr < 0 || fr > 1000000 || dt_json_simple_int(v[M_SEQ], vl[M_SEQ], &seq) < 0 || seq < 0)
		return 0;
#define IS_TYPE(t) (vl[M_TYPE] == sizeof "\"" t "\"" - 1 && !memcmp(v[M_TYPE], "\"" t "\"", vl[M_TYPE]))
	if (IS_TYPE(DT_MSG_FREE)) {
		pthread_mutex_lock(&d->lock);
		take_free_report(l, 1, fr, 1, seq);
		pthread_mutex_unlock(&d->lock);
		pthread_cond_broadcast(&d->slots);
		return 1;
	}
	const char *type = IS_TYPE(DT_MSG_STARTED) ? DT_MSG_STARTED
			   : IS_TYPE(DT_MSG_ENDED) ? DT_MSG_ENDED
						   : NULL;
#undef IS_TYPE
	dt_tset done = { 0 };
	if (!type || !v[M_TASKS] || simple_tasks(v[M_TASKS], vl[M_TASKS], &done) < 0) {
		dt_tset_free(&done);
		return 0;
	}
	tasks_done(d, l, type, done, 1, fr, 1, seq);
	return 1;
}

static void on_reject(dist *d, wlink *l, json_object *m)
{
	int ok = 1;
	const char *id = get_str(m, "id"), *reason = get_str(m, "reason");
	int64_t attempt = get_int(m, "attempt", 1, INT64_MAX, &ok);
	if (!ok || !id || !dt_id_valid(id, strlen(id))) {
		log_warn("worker %s: malformed \"reject\"", l->name);
		dt_conn_send_error(l->conn, "malformed \"reject\": needs id and attempt");
		return;
	}
	reason = reason ? reason : "no reason given";
	pthread_mutex_lock(&d->lock);
	int mine = dt_tset_remove(&l->tasks, id, attempt);
	if (mine && l->outstanding > 0)
		l->outstanding--;
	take_free(l, m);
	if (strcmp(reason, DT_REJECT_DRAINING) == 0) {
		l->draining = 1;
	} else if (strcmp(reason, DT_REJECT_UNKNOWN) == 0) {
		/* Its hello said otherwise: stop sending it that function. */
		const char *fn = get_str(m, "function");
		for (size_t i = 0; fn && i < l->nfunctions; i++)
			if (strcmp(l->functions[i], fn) == 0) {
				free(l->functions[i]);
				l->functions[i] = l->functions[--l->nfunctions];
				break;
			}
	}
	pthread_cond_broadcast(&d->slots);
	pthread_mutex_unlock(&d->lock);
	if (!mine) {
		log_warn("worker %s rejected task %s attempt %lld, which it was not given", l->name,
			 id, (long long)attempt);
		return;
	}
	log_info("worker %s rejected task %s (%s): back to the head of the queue", l->name, id,
		 reason);
	/* A run the worker could not read counts a failure: max_attempts ends a
	 * task that no worker can read instead of sending it round forever. */
	int invalid = strcmp(reason, DT_REJECT_INVALID) == 0;
	dt_job j = { .kind = invalid ? JOB_REQUEUE : JOB_UNCLAIM, .attempt = attempt,
		     .flags = invalid ? DT_RQ_NOW | DT_RQ_COUNT_FAILURE : 0 };
	snprintf(j.id, sizeof j.id, "%s", id);
	snprintf(j.reason, sizeof j.reason, "rejected: %.80s", reason);
	dt_sweep_post(d, &j);
}

static void on_health(dist *d, wlink *l, json_object *m)
{
	dt_tset listed = { 0 };
	json_object *lv;
	double load = json_object_object_get_ex(m, "load", &lv) &&
		      (json_object_is_type(lv, json_type_double) ||
		       json_object_is_type(lv, json_type_int))
			      ? json_object_get_double(lv) : 0.0;
	if (!(load >= 0.0)) /* NaN (json-c reads it) or negative: no load */
		load = 0.0;
	if (get_tasks(m, &listed) < 0) {
		log_warn("worker %s: malformed \"health\"", l->name);
		dt_conn_send_error(l->conn, "malformed \"health\": tasks must be [[id, attempt], ...]");
		dt_tset_free(&listed);
		return;
	}
	pthread_mutex_lock(&d->lock);
	take_free(l, m);
	set_redis_down(d, l, says_redis_down(m));
	l->load = load;
	dt_tset tmp = l->listed;
	l->listed = listed;
	listed = tmp;
	pthread_cond_broadcast(&d->slots);
	pthread_mutex_unlock(&d->lock);
	dt_tset_free(&listed);
}

/* ------------------------------------------------------------ the thread */

static void serve_link(dist *d, wlink *l)
{
	static const char health[] = "{\"type\":\"health\"}\n";
	const dt_config *cfg = d->cfg;
	int64_t next_health = dt_mono_ms();
	char err[256];

	for (;;) {
		/* Our "health" goes out from this thread, on this connection
		 * only: a worker that stalls delays nobody else's (SPEC 5.3).
		 * Silence is watched by the health-check thread (health.c). */
		int64_t now = dt_mono_ms();
		if (now >= next_health) {
			dt_conn_send_raw(l->conn, health, sizeof health - 1);
			next_health = now + cfg->health_interval;
		}
		json_object *m = NULL;
		char *line;
		size_t len;
		int rc = dt_conn_recv(l->conn, (int)(next_health - now), &line, &len);
		if (rc == 0 && fast_msg(d, l, line, len)) {
			atomic_store(&l->last_rx, dt_mono_ms());
			continue;
		}
		if (rc == 0)
			rc = dt_conn_parse_msg(l->conn, line, len, &m, err, sizeof err);
		if (rc == DTASK_ETIMEDOUT)
			continue;
		if (rc == DTASK_EPROTO) {
			log_warn("worker %s: %s", l->name, err);
			dt_conn_send_error(l->conn, "%s", err);
			continue;
		}
		if (rc == DTASK_ETOOBIG) {
			log_warn("worker %s: message larger than max_message (%zu bytes): closing",
				 l->name, cfg->max_message);
			dt_conn_send_error(l->conn, "message larger than max_message (%zu bytes)",
					   cfg->max_message);
			break;
		}
		if (rc < 0) {
			log_info("worker %s: %s", l->name, dtask_strerror(rc));
			break;
		}
		atomic_store(&l->last_rx, dt_mono_ms());
		const char *type = get_str(m, "type");
		if (strcmp(type, DT_MSG_HEALTH) == 0) {
			on_health(d, l, m);
		} else if (strcmp(type, DT_MSG_STARTED) == 0 || strcmp(type, DT_MSG_ENDED) == 0 ||
			   strcmp(type, DT_MSG_STOPPED) == 0) {
			on_tasks_done(d, l, m, type);
		} else if (strcmp(type, DT_MSG_FREE) == 0) {
			/* Slots freed before their ends are written (PROTOCOL 6.1). */
			pthread_mutex_lock(&d->lock);
			take_free(l, m);
			pthread_mutex_unlock(&d->lock);
			/* After the unlock: the queue thread it wakes does not
			 * block on d->lock at once (it rechecks under it). */
			pthread_cond_broadcast(&d->slots);
		} else if (strcmp(type, DT_MSG_REJECT) == 0) {
			on_reject(d, l, m);
		} else if (strcmp(type, DT_MSG_REDIS_DOWN) == 0 ||
			   strcmp(type, DT_MSG_REDIS_UP) == 0) {
			pthread_mutex_lock(&d->lock);
			set_redis_down(d, l, strcmp(type, DT_MSG_REDIS_DOWN) == 0);
			pthread_mutex_unlock(&d->lock);
		} else if (strcmp(type, DT_MSG_ERROR) == 0) {
			const char *msg = get_str(m, "message");
			log_warn("worker %s says: %s", l->name, msg ? msg : "(no message)");
		} else if (strcmp(type, DT_MSG_HELLO) == 0) {
			dt_conn_send_error(l->conn, "\"hello\" was already received");
		} else {
			log_warn("worker %s: unknown message type (%zu bytes)", l->name, strlen(type));
			dt_conn_send_error(l->conn, "unknown message type");
		}
		json_object_put(m);
	}
}

void dt_link_serve(dt_conn *c, void *arg)
{
	dist *d = arg;
	char err[256];
	json_object *m = NULL;

	int rc = dt_conn_recv_msg(c, d->cfg->handshake_timeout, &m, err, sizeof err);
	if (rc < 0) {
		log_warn("peer %s: no \"hello\": %s", dt_conn_peer(c),
			 rc == DTASK_EPROTO ? err : dtask_strerror(rc));
		if (rc == DTASK_EPROTO || rc == DTASK_ETIMEDOUT)
			dt_conn_send_error(c, "expected \"hello\"");
		return;
	}
	wlink *l = parse_hello(d, m, err, sizeof err);
	json_object_put(m);
	if (!l) {
		log_warn("peer %s: %s", dt_conn_peer(c), err);
		dt_conn_send_error(c, "%s", err);
		return;
	}
	l->conn = c;
	atomic_store(&l->last_rx, dt_mono_ms());
	dt_conn_set_name(c, l->name);

	pthread_mutex_lock(&d->lock);
	const char *refuse = NULL;
	if (d->stopping)
		refuse = "the distributor is stopping";
	for (wlink *o = d->links; !refuse && o; o = o->next)
		if (strcmp(o->name, l->name) == 0)
			refuse = "a worker with that name is already connected";
	if (!refuse) {
		/* Listed (its name is taken) but not alive: nothing is placed on
		 * it before our "hello" went out, which must come first. */
		l->next = d->links;
		d->links = l;
		d->nlinks++;
	}
	pthread_mutex_unlock(&d->lock);
	if (refuse) {
		log_warn("worker %s from %s refused: %s", l->name, dt_conn_peer(c), refuse);
		dt_conn_send_error(c, "%s", refuse);
		link_free(l);
		return;
	}

	char hello[400];
	json_object *jn = json_object_new_string(d->name);
	int n = snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"version\":%d,\"name\":%s}",
			 DT_PROTO_VERSION, json_object_to_json_string(jn));
	json_object_put(jn);
	int hrc = dt_conn_send(c, hello, (size_t)n);
	log_info("worker %s connected from %s: %d slots, %zu function(s)%s", l->name,
		 dt_conn_peer(c), l->capacity, l->nfunctions,
		 l->redis_down ? "; it has no Redis yet: no runs to it until it has" : "");
	pthread_mutex_lock(&d->lock);
	l->alive = hrc == 0;
	pthread_cond_broadcast(&d->slots);
	pthread_mutex_unlock(&d->lock);

	serve_link(d, l);

	/* Lost: unlink it, wait for the senders (a send blocked on a dead
	 * peer is woken by the shutdown), take its tasks. */
	dt_conn_shutdown(c);
	pthread_mutex_lock(&d->lock);
	l->alive = 0;
	for (wlink **pp = &d->links; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	d->nlinks--;
	while (l->refs > 0)
		pthread_cond_wait(&d->unref, &d->lock);
	dt_tset tasks = l->tasks;
	memset(&l->tasks, 0, sizeof l->tasks);
	int stopping = d->stopping;
	pthread_mutex_unlock(&d->lock);

	if (stopping) {
		if (tasks.n)
			log_info("worker %s: leaving its %zu task(s) to it (it stops them when it loses us)",
				 l->name, tasks.n);
	} else {
		log_warn("worker %s lost with %zu task(s): requeueing them", l->name, tasks.n);
		for (size_t i = 0; i < tasks.n; i++) {
			dt_job j = { .kind = JOB_REQUEUE, .attempt = tasks.v[i].attempt,
				     .flags = DT_RQ_NOW | DT_RQ_COUNT_FAILURE };
			snprintf(j.id, sizeof j.id, "%s", tasks.v[i].id);
			snprintf(j.reason, sizeof j.reason, "worker %.60s lost", l->name);
			dt_sweep_post(d, &j);
		}
		dt_job j = { .kind = JOB_WORKER_DOWN };
		snprintf(j.name, sizeof j.name, "%s", l->name);
		dt_sweep_post(d, &j);
	}
	dt_tset_free(&tasks);
	dt_conn_close(c);
	link_free(l);
}
