/*
 * worker_link.c - one thread per configured distributor (SPEC 5.2, 5.3).
 *
 * DESIGN
 *   Owns: a dt_link: its connection, the reconnect backoff, the "hello"
 *   exchange, and the reading of everything the distributor sends.
 *   Threads: the link thread is the only reader of its connection and the
 *   only one that connects, publishes, unpublishes and frees it.  Other
 *   threads (health, state) send to it with dt_link_send(), which borrows
 *   the published pointer (users count) and sends with no lock of ours
 *   held; the main thread calls dt_link_stop() at shutdown.
 *   Locks: l->lock guards l->conn and l->users, and is never held with
 *   w->lock nor while sending; the connection's send lock (conn.c) is a
 *   leaf.  The link thread takes w->lock only inside dt_worker_accept /
 *   dt_worker_stop_* (worker.c).
 *
 *   Connect: dt_conn_connect(), send "hello", wait (handshake_timeout) for
 *   the distributor's "hello" (an "error" instead is logged and retried).
 *   Failures back off exponentially with jitter (100 ms, x2, capped at
 *   5000 ms, +-25%); a streak of failures is logged once at warning level,
 *   the retries at debug level, and the success that ends it at info.
 *   Reading: dt_conn_recv() with a timeout up to the next "health", which
 *   this thread sends itself every health_interval on its own connection
 *   (so a stalled distributor delays no other one's health).  A link on
 *   which nothing at all arrived for health_interval x health_misses is
 *   shut down by the health-check thread (worker_health.c); this thread
 *   then sees the close.
 *   Runs: each accepted run goes into the running table and reserves a
 *   pool slot at once; when no more input is buffered (dt_conn_pending()
 *   == 0) the batch goes to the pool (dt_worker_start: one wake-up of each
 *   task thread) and only then are its (id, attempt) pairs answered with
 *   ONE "started" (plus any "reject" lines, in the same send), so the send
 *   is not on the way to the tasks' start.  A quick task's "ended" may
 *   thus reach the distributor before its "started" (PROTOCOL.md 6.1).
 *   Loss: every task that came from this link is asked to stop (kind
 *   lost), then the thread reconnects.
 *   Shutdown: dt_link_stop() closes a published connection (close_notify)
 *   and wakes the reader or a backoff sleep; a connect in progress is not
 *   interrupted but is bounded by handshake_timeout, and the wait for the
 *   distributor's hello checks w->stopping every 500 ms.
 */
#include "build-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <json-c/json.h>

#include "conn.h"
#include "watch.h"
#include "dtask.h"
#include "item.h"
#include "json.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "task_internal.h"
#include "util.h"
#include "worker_internal.h"

#define BACKOFF_START_MS 100
#define BACKOFF_CAP_MS 5000
/* Hold accepted runs at most this long while input keeps coming. */
#define STARTED_HOLD_MS 50

/* -------------------------------------------------- sending from others */

/* One line (lines 0), or whole lines each ending in '\n' (lines 1). */
static int link_send(dt_link *l, const char *msg, size_t len, int lines)
{
	pthread_mutex_lock(&l->lock);
	dt_conn *c = l->conn;
	if (c)
		l->users++;
	pthread_mutex_unlock(&l->lock);
	if (!c)
		return DTASK_ECLOSED;

	int rc = lines ? dt_conn_send_raw(c, msg, len) : dt_conn_send(c, msg, len);
	if (rc < 0 && rc != DTASK_ENOMEM && rc != DTASK_ETOOBIG)
		dt_conn_shutdown(c); /* the link thread sees it and reconnects */

	pthread_mutex_lock(&l->lock);
	if (--l->users == 0)
		pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

int dt_link_send(dt_link *l, const char *msg, size_t len)
{
	return link_send(l, msg, len, 0);
}

int dt_link_send_lines(dt_link *l, const char *buf, size_t len)
{
	return link_send(l, buf, len, 1);
}

void dt_link_stop(dt_link *l)
{
	pthread_mutex_lock(&l->lock);
	dt_conn *c = l->conn;
	if (c)
		l->users++;
	pthread_cond_broadcast(&l->cond); /* a backoff sleep */
	pthread_mutex_unlock(&l->lock);
	if (!c)
		return;
	dt_conn_close(c);    /* close_notify: the distributor sees an orderly end */
	dt_conn_shutdown(c); /* and our reader wakes up */
	pthread_mutex_lock(&l->lock);
	if (--l->users == 0)
		pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* The link thread: make c visible to the other threads' sends. */
static void publish(dt_link *l, dt_conn *c)
{
	atomic_store(&l->last_rx, dt_mono_ms()); /* its hello just came */
	pthread_mutex_lock(&l->lock);
	l->conn = c;
	pthread_mutex_unlock(&l->lock);
}

/* The link thread: take c back and free it once no one sends on it. */
static void unpublish_free(dt_link *l, dt_conn *c)
{
	pthread_mutex_lock(&l->lock);
	if (l->conn == c)
		l->conn = NULL;
	pthread_mutex_unlock(&l->lock);
	dt_conn_shutdown(c); /* a send blocked on a stalled peer fails now */
	pthread_mutex_lock(&l->lock);
	while (l->users > 0)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	dt_conn_free(c);
}

/* ---------------------------------------------------------------- backoff */

typedef struct backoff {
	unsigned seed;
	int delay;      /* ms, before jitter */
	int failures;   /* in the current streak */
} backoff;

/* Sleep the current delay +-25%, waking early at shutdown.  Then double it
 * (capped). */
static void backoff_sleep(dt_link *l, backoff *b)
{
	int d = b->delay;
	int spread = d / 2; /* +-25% = a window of 50% */
	if (spread > 0)
		d = d - d / 4 + rand_r(&b->seed) % (spread + 1);
	struct timespec deadline;
	dt_deadline(&deadline, d);
	pthread_mutex_lock(&l->lock);
	while (!atomic_load(&l->w->stopping)) {
		if (pthread_cond_timedwait(&l->cond, &l->lock, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&l->lock);
	b->delay = b->delay >= BACKOFF_CAP_MS / 2 ? BACKOFF_CAP_MS : b->delay * 2;
}

static void link_failed(dt_link *l, backoff *b, const char *what)
{
	if (atomic_load(&l->w->stopping))
		return;
	if (b->failures++ == 0)
		log_warn("distributor %s:%d: %s (retrying with backoff; further failures are "
			 "logged at debug level)", l->host, l->port, what);
	else
		log_debug("distributor %s:%d: %s (attempt %d)", l->host, l->port, what,
			  b->failures);
}

/* ---------------------------------------------------------------- parsing */

/* A line as a message: a JSON object with a string "type". */
static int parse_msg(const char *line, size_t len, json_object **msg, const char **type,
		     char *err, size_t errlen)
{
	json_object *o = NULL, *t;
	char why[160];
	if (dt_json_check(line, len, &o, why, sizeof why) < 0)
		return dt_err(err, errlen, DTASK_EPROTO, "malformed message: %s", why);
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "type", &t) || !json_object_is_type(t, json_type_string)) {
		json_object_put(o);
		return dt_err(err, errlen, DTASK_EPROTO,
			      "a message must be a JSON object with a string \"type\"");
	}
	*msg = o;
	*type = json_object_get_string(t);
	return 0;
}

static const char *get_str(json_object *m, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(m, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* 1 and *out when m[key] is an integer. */
static int get_int(json_object *m, const char *key, int64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(m, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	*out = json_object_get_int64(v);
	return 1;
}

/* ------------------------------------------------------------------ hello */

static int send_hello(dt_link *l, dt_conn *c)
{
	dtask_worker *w = l->w;
	json_object *m = json_object_new_object(), *fns = json_object_new_array();
	if (!m || !fns) {
		json_object_put(m);
		json_object_put(fns);
		return DTASK_ENOMEM;
	}
	json_object_object_add(m, "type", json_object_new_string(DT_MSG_HELLO));
	json_object_object_add(m, "version", json_object_new_int(DT_PROTO_VERSION));
	json_object_object_add(m, "name", json_object_new_string(w->name));
	json_object_object_add(m, "host", json_object_new_string(w->watch_host));
	json_object_object_add(m, "port", json_object_new_int(dt_watch_port(w->watch)));
	json_object_object_add(m, "capacity", json_object_new_int(w->capacity));
	dt_free_report fr = dt_worker_free_report(w);
	json_object_object_add(m, "free", json_object_new_int(fr.free));
	json_object_object_add(m, "seq", json_object_new_int64(fr.seq));
	if (atomic_load(&w->redis_down))
		json_object_object_add(m, "redis_down", json_object_new_boolean(1));
	for (size_t i = 0; i < w->n_fns; i++)
		json_object_array_add(fns, json_object_new_string(w->fns[i].name));
	json_object_object_add(m, "functions", fns);
	int rc = dt_conn_send_json(c, m);
	json_object_put(m);
	return rc;
}

/* Connect, say hello and hear the distributor's.  0 with *out, or < 0
 * with the reason in err. */
static int link_connect(dt_link *l, dt_conn **out, char *err, size_t errlen)
{
	dtask_worker *w = l->w;
	dt_conn *c = NULL;
	int rc = dt_conn_connect(&w->link_opts, l->host, l->port, &c, err, errlen);
	if (rc < 0)
		return rc;
	if ((rc = send_hello(l, c)) < 0) {
		dt_err(err, errlen, rc, "sending hello: %s", dtask_strerror(rc));
		goto fail;
	}
	int64_t deadline = dt_mono_ms() + w->cfg->handshake_timeout;
	for (;;) {
		char *line;
		size_t len;
		int64_t left = deadline - dt_mono_ms();
		if (left <= 0) {
			rc = dt_err(err, errlen, DTASK_ETIMEDOUT, "no hello from the distributor "
				    "within %d ms", w->cfg->handshake_timeout);
			goto fail;
		}
		if (atomic_load(&w->stopping)) {
			rc = dt_err(err, errlen, DTASK_ESTOPPED, "stopping");
			goto fail;
		}
		/* In slices, so that a shutdown is noticed. */
		rc = dt_conn_recv(c, left > 500 ? 500 : (int)left, &line, &len);
		if (rc == DTASK_ETIMEDOUT)
			continue;
		if (rc < 0) {
			dt_err(err, errlen, rc, "waiting for its hello: %s", dtask_strerror(rc));
			goto fail;
		}
		json_object *m;
		const char *type;
		char why[256];
		if (parse_msg(line, len, &m, &type, why, sizeof why) < 0) {
			dt_conn_send_error(c, "%s", why);
			rc = dt_err(err, errlen, DTASK_EPROTO, "instead of hello: %s", why);
			goto fail;
		}
		if (strcmp(type, DT_MSG_HELLO) == 0) {
			const char *name = get_str(m, "name");
			char label[160];
			snprintf(label, sizeof label, "distributor %s (%s:%d)",
				 name ? name : "?", l->host, l->port);
			dt_conn_set_name(c, label);
			json_object_put(m);
			*out = c;
			return 0;
		}
		if (strcmp(type, DT_MSG_ERROR) == 0) {
			const char *msg = get_str(m, "message");
			rc = dt_err(err, errlen, DTASK_EPROTO, "refused us: %s", msg ? msg : "?");
			json_object_put(m);
			goto fail;
		}
		if (strcmp(type, DT_MSG_HEALTH) == 0) {
			json_object_put(m); /* harmless before hello */
			continue;
		}
		dt_conn_send_error(c, "expected hello, got \"%s\"", type);
		rc = dt_err(err, errlen, DTASK_EPROTO, "sent \"%s\" before hello", type);
		json_object_put(m);
		goto fail;
	}
fail:
	dt_conn_close(c);
	dt_conn_free(c);
	return rc;
}

/* ---------------------------------------------------- the started batch */

struct accepted {
	char id[DT_ID_MAX + 1];
	int64_t attempt;
	dtask *release; /* NULL for a duplicate run (already released) */
};

typedef struct batch {
	struct accepted *v;
	size_t n, cap;
	char *out;      /* "reject" lines, each ending in '\n' */
	size_t outlen, outcap;
	int64_t since;  /* dt_mono_ms() of the first entry */
} batch;

static int out_append(batch *b, const char *s, size_t len)
{
	if (b->outlen + len + 1 > b->outcap) {
		size_t ncap = b->outcap ? b->outcap : 1024;
		while (ncap < b->outlen + len + 1)
			ncap *= 2;
		char *n = realloc(b->out, ncap);
		if (!n)
			return DTASK_ENOMEM;
		b->out = n;
		b->outcap = ncap;
	}
	memcpy(b->out + b->outlen, s, len);
	b->outlen += len;
	b->out[b->outlen++] = '\n';
	return 0;
}

static void mark_batch(batch *b)
{
	if (b->n == 0 && b->outlen == 0)
		b->since = dt_mono_ms();
}

static int batch_add(batch *b, const char *id, int64_t attempt, dtask *release)
{
	if (b->n == b->cap) {
		size_t ncap = b->cap ? 2 * b->cap : 16;
		struct accepted *n = realloc(b->v, ncap * sizeof *n);
		if (!n)
			return DTASK_ENOMEM;
		b->v = n;
		b->cap = ncap;
	}
	mark_batch(b);
	struct accepted *a = &b->v[b->n++];
	size_t idlen = strnlen(id, sizeof a->id - 1);
	memcpy(a->id, id, idlen);
	a->id[idlen] = '\0';
	a->attempt = attempt;
	a->release = release;
	return 0;
}

static void add_reject(dt_link *l, batch *b, const char *id, int64_t attempt,
		       const char *function, const char *reason)
{
	json_object *m = json_object_new_object();
	if (!m)
		return;
	json_object_object_add(m, "type", json_object_new_string(DT_MSG_REJECT));
	json_object_object_add(m, "id", json_object_new_string(id));
	json_object_object_add(m, "attempt", json_object_new_int64(attempt));
	json_object_object_add(m, "function", json_object_new_string(function));
	json_object_object_add(m, "reason", json_object_new_string(reason));
	dt_free_report fr = dt_worker_free_report(l->w);
	json_object_object_add(m, "free", json_object_new_int(fr.free));
	json_object_object_add(m, "seq", json_object_new_int64(fr.seq));
	size_t len;
	const char *s = json_object_to_json_string_length(
		m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	mark_batch(b);
	if (s)
		out_append(b, s, len);
	json_object_put(m);
}

/* Let the accepted tasks begin, then send the rejects and ONE "started"
 * in one send (whether or not the send works: a lost link stops them).
 * Starting first keeps the send off the path to the task's start. */
static void batch_flush(dt_link *l, dt_conn *c, batch *b)
{
	if (b->n == 0 && b->outlen == 0)
		return;
	if (b->n > 0) {
		dtask **go = malloc(b->n * sizeof *go);
		size_t ngo = 0;
		for (size_t i = 0; i < b->n; i++) {
			if (!b->v[i].release)
				continue;
			if (go)
				go[ngo++] = b->v[i].release;
			else
				dt_worker_start(l->w, &b->v[i].release, 1);
		}
		if (ngo)
			dt_worker_start(l->w, go, ngo);
		free(go);
	}
	if (b->n > 0) {
		const char **ids = malloc(b->n * sizeof *ids);
		int64_t *attempts = malloc(b->n * sizeof *attempts);
		char *msg = NULL;
		size_t len = 0;
		if (ids && attempts) {
			for (size_t i = 0; i < b->n; i++) {
				ids[i] = b->v[i].id;
				attempts[i] = b->v[i].attempt;
			}
			msg = dt_worker_refs_msg(DT_MSG_STARTED, -1, dt_worker_free_report(l->w),
						 ids, attempts, b->n, &len);
		}
		if (msg)
			out_append(b, msg, len);
		else
			log_error("distributor %s:%d: out of memory for \"started\"", l->host,
				  l->port);
		free(msg);
		free(ids);
		free(attempts);
	}
	if (c && b->outlen > 0) {
		int rc = dt_conn_send_raw(c, b->out, b->outlen);
		if (rc < 0)
			log_debug("%s: sending started: %s", dt_conn_name(c), dtask_strerror(rc));
	}
	b->n = 0;
	b->outlen = 0;
}

static void batch_free(batch *b)
{
	free(b->v);
	free(b->out);
}

/* -------------------------------------------------------------- messages */

static void run_item(dt_link *l, dt_conn *c, batch *b, const char *id, int64_t attempt,
		     dt_item *item);

static void on_run(dt_link *l, dt_conn *c, batch *b, json_object *m, const char *line,
		   size_t len)
{
	const char *id = get_str(m, "id"), *function = get_str(m, "function");
	int64_t attempt = 0;
	const char *raw;
	size_t rawlen;
	char why[256];

	if (!id || !dt_id_valid(id, strlen(id)) || !get_int(m, "attempt", &attempt) ||
	    attempt < 1 || !function) {
		log_warn("%s: a run without a valid id, attempt >= 1 and function", dt_conn_name(c));
		dt_conn_send_error(c, "run: needs a valid \"id\", an integer \"attempt\" >= 1 and "
				   "a \"function\"");
		return;
	}
	/* The task is taken verbatim from the line, never re-encoded. */
	/* From here on the run names its task: refuse it with a "reject",
	 * so the distributor takes it back (an "error" would leave it held). */
	json_object *task;
	if (dt_json_member(line, len, "task", &raw, &rawlen) != 1 || raw[0] != '{' ||
	    !json_object_object_get_ex(m, "task", &task)) {
		log_warn("%s: run %s: no \"task\" object: rejected", dt_conn_name(c), id);
		add_reject(l, b, id, attempt, function, DT_REJECT_INVALID);
		return;
	}
	/* The line was read whole (strict, UTF-8): its task needs no second
	 * reading, only the item rules. */
	dt_item item;
	if (dt_item_from_object(task, raw, rawlen, &item, why, sizeof why) < 0) {
		log_warn("%s: run %s: bad task (%s): rejected", dt_conn_name(c), id, why);
		add_reject(l, b, id, attempt, function, DT_REJECT_INVALID);
		return;
	}
	if (strcmp(item.id, id) != 0 || strcmp(item.function, function) != 0) {
		log_warn("%s: run %s: its id or function differs from the task's: rejected",
			 dt_conn_name(c), id);
		add_reject(l, b, id, attempt, function, DT_REJECT_INVALID);
		dt_item_free(&item);
		return;
	}
	run_item(l, c, b, id, attempt, &item);
}

/* A run whose task checked out (item: its id and function are the run's):
 * find the function, take a slot, and add it to the batch; or reject it.
 * Frees the item. */
static void run_item(dt_link *l, dt_conn *c, batch *b, const char *id, int64_t attempt,
		     dt_item *item)
{
	dtask_worker *w = l->w;
	const char *function = item->function;
	char why[256];
	dtask *t;
	int dup;
	const char *reason;
	const dt_fn_entry *fn = dt_worker_find_fn(w, function);
	if (!fn) {
		log_info("%s: task %s attempt %lld: unknown function \"%s\": rejected",
			 dt_conn_name(c), id, (long long)attempt, function);
		add_reject(l, b, id, attempt, function, DT_REJECT_UNKNOWN);
		goto out;
	}
	if (dt_task_new(id, attempt, function, item->json, item->len, item->state_optional, &t,
			why, sizeof why) < 0) {
		log_error("%s: task %s: %s", dt_conn_name(c), id, why);
		add_reject(l, b, id, attempt, function, DT_REJECT_FULL);
		goto out;
	}
	t->fn = fn;
	t->link = l->index;
	reason = dt_worker_accept(w, t, &dup);
	if (dup) {
		log_warn("%s: task %s attempt %lld is already running here: not run twice",
			 dt_conn_name(c), id, (long long)attempt);
		dt_task_free(t);
		batch_add(b, id, attempt, NULL);
	} else if (reason) {
		log_debug("%s: task %s attempt %lld: rejected: %s", dt_conn_name(c), id,
			  (long long)attempt, reason);
		dt_task_free(t);
		add_reject(l, b, id, attempt, function, reason);
	} else if (batch_add(b, id, attempt, t) < 0) {
		/* Cannot remember it for "started": let it run anyway. */
		dt_worker_start(w, &t, 1);
	}
out:
	dt_item_free(item);
}

/* A "run" line read without json-c: only a simple one (dt_json_simple())
 * that is valid JSON, whose id, attempt and function are good and whose
 * task is a good item with the same id and function, read as json-c would
 * read it.  1: handled as on_run() would; 0: anything else, which the
 * json-c reading then handles, with its errors and rejects. */
static int run_simple(dt_link *l, dt_conn *c, batch *b, const char *line, size_t len)
{
	static const char *const names[] = { "type", "id", "attempt", "function", "task" };
	enum { M_TYPE, M_ID, M_ATTEMPT, M_FUNCTION, M_TASK, M_N };
	const char *v[M_N];
	size_t vl[M_N];
	char id[DT_ID_MAX + 1];
	int64_t attempt;
	if (dt_json_simple_members(line, len, 0, names, M_N, v, vl) != M_N ||
	    vl[M_TYPE] != sizeof "\"run\"" - 1 || memcmp(v[M_TYPE], "\"run\"", vl[M_TYPE]) != 0)
		return 0;
	/* id: a valid id string. */
	if (vl[M_ID] < 2 || v[M_ID][0] != '"' || !dt_id_valid(v[M_ID] + 1, vl[M_ID] - 2))
		return 0;
	memcpy(id, v[M_ID] + 1, vl[M_ID] - 2);
	id[vl[M_ID] - 2] = '\0';
	/* attempt: an integer >= 1; function: a string, the task's own
	 * (checked below); task: an object. */
	const char *fn = v[M_FUNCTION];
	size_t fnlen = vl[M_FUNCTION];
	if (dt_json_simple_int(v[M_ATTEMPT], vl[M_ATTEMPT], &attempt) < 0 || attempt < 1 ||
	    fnlen < 2 || fn[0] != '"' || v[M_TASK][0] != '{')
		return 0;
	dt_item item;
	if (dt_item_simple(v[M_TASK], vl[M_TASK], 1, &item) != 1)
		return 0;
	if (strcmp(item.id, id) != 0 || strlen(item.function) != fnlen - 2 ||
	    memcmp(item.function, fn + 1, fnlen - 2) != 0) {
		dt_item_free(&item);
		return 0;
	}
	run_item(l, c, b, id, attempt, &item);
	return 1;
}

static void on_stop(dt_link *l, dt_conn *c, json_object *m)
{
	const char *id = get_str(m, "id"), *reason = get_str(m, "reason");
	int64_t attempt = -1;
	if (!id) {
		dt_conn_send_error(c, "stop: needs an \"id\"");
		return;
	}
	get_int(m, "attempt", &attempt);
	int n = dt_worker_stop_task(l->w, id, attempt, DT_STOP_STOP);
	if (n)
		log_info("%s: stop task %s attempt %lld (%s)", dt_conn_name(c), id,
			 (long long)attempt, reason ? reason : "no reason given");
	else
		log_debug("%s: stop task %s attempt %lld: not running here", dt_conn_name(c), id,
			  (long long)attempt);
}

/* Our "health" to this distributor, on this connection only: a stalled
 * distributor delays nobody else's (SPEC 5.3). */
static void send_health(dtask_worker *w, dt_conn *c)
{
	pthread_mutex_lock(&w->lock);
	double load = w->capacity > 0 ? (double)w->n_active / (double)w->capacity : 0.0;
	size_t len = 0;
	char *msg = dt_worker_tasks_msg(DT_MSG_HEALTH, load, dt_worker_free_report(w), w->tasks,
					w->n_tasks, &len);
	pthread_mutex_unlock(&w->lock);
	if (!msg) {
		log_error("worker %s: out of memory for \"health\"", w->name);
		return;
	}
	if (atomic_load(&w->redis_down) && len > 1) {
		/* Said in every health while it lasts: a distributor that
		 * missed "redis_down" or "redis_up" is right again within one
		 * health_interval. */
		static const char tag[] = "{\"redis_down\":true,";
		char *m2 = malloc(len + sizeof tag);
		if (m2) {
			memcpy(m2, tag, sizeof tag - 1);
			memcpy(m2 + sizeof tag - 1, msg + 1, len - 1);
			len += sizeof tag - 2;
			free(msg);
			msg = m2;
		}
	}
	if (dt_conn_send(c, msg, len) < 0)
		dt_conn_shutdown(c); /* this thread then sees the close */
	free(msg);
}

/* Serve one connected link until it is lost or the worker stops.  Silence
 * is watched by the health-check thread (worker_health.c), which shuts the
 * connection down. */
static void link_serve(dt_link *l, dt_conn *c)
{
	dtask_worker *w = l->w;
	int interval = w->cfg->health_interval;
	int64_t next_health = dt_mono_ms();
	batch b = { 0 };
	char err[256];

	while (!atomic_load(&w->stopping)) {
		char *line;
		size_t len;
		int64_t now = dt_mono_ms();
		if (now >= next_health) {
			send_health(w, c);
			next_health = now + interval;
		}
		int rc = dt_conn_recv(c, (int)(next_health - now), &line, &len);
		if (rc == DTASK_ETIMEDOUT)
			continue;
		if (rc == DTASK_ETOOBIG) {
			log_warn("%s: message larger than max_message (%zu bytes): closing",
				 dt_conn_name(c), w->cfg->max_message);
			dt_conn_send_error(c, "message larger than max_message (%zu bytes)",
					   w->cfg->max_message);
			break;
		}
		if (rc < 0) {
			if (!atomic_load(&w->stopping))
				log_warn("%s: connection lost: %s", dt_conn_name(c),
					 dtask_strerror(rc));
			break;
		}
		atomic_store(&l->last_rx, dt_mono_ms());

		json_object *m;
		const char *type;
		if (run_simple(l, c, &b, line, len)) {
			/* A plain run, read without json-c. */
		} else if (parse_msg(line, len, &m, &type, err, sizeof err) < 0) {
			log_warn("%s: %s", dt_conn_name(c), err);
			dt_conn_send_error(c, "%s", err);
		} else {
			if (strcmp(type, DT_MSG_RUN) == 0) {
				on_run(l, c, &b, m, line, len);
			} else if (strcmp(type, DT_MSG_STOP) == 0) {
				on_stop(l, c, m);
			} else if (strcmp(type, DT_MSG_HEALTH) == 0) {
				/* Its liveness is all it carries. */
			} else if (strcmp(type, DT_MSG_ERROR) == 0) {
				const char *msg = get_str(m, "message");
				log_warn("%s sent an error: %s", dt_conn_name(c), msg ? msg : "?");
			} else if (strcmp(type, DT_MSG_HELLO) == 0) {
				log_debug("%s: a second hello, ignored", dt_conn_name(c));
			} else {
				log_warn("%s: unknown message type \"%.64s\"", dt_conn_name(c), type);
				dt_conn_send_error(c, "unknown message type \"%.64s\"", type);
			}
			json_object_put(m);
		}
		if (!dt_conn_pending(c) || dt_mono_ms() - b.since >= STARTED_HOLD_MS)
			batch_flush(l, c, &b);
	}
	batch_flush(l, c, &b);
	batch_free(&b);
}

void *dt_link_main(void *arg)
{
	dt_link *l = arg;
	dtask_worker *w = l->w;
	backoff b = { .delay = BACKOFF_START_MS };
	char err[512];

	if (gnutls_rnd(GNUTLS_RND_NONCE, &b.seed, sizeof b.seed) < 0)
		b.seed = (unsigned)dt_mono_ms() ^ (unsigned)l->index;

	while (!atomic_load(&w->stopping)) {
		dt_conn *c = NULL;
		int rc = link_connect(l, &c, err, sizeof err);
		if (rc < 0) {
			link_failed(l, &b, err);
			backoff_sleep(l, &b);
			continue;
		}
		if (b.failures)
			log_info("%s: connected (%s) after %d failed attempt(s)", dt_conn_name(c),
				 dt_conn_tls_version(c), b.failures);
		else
			log_info("%s: connected (%s)", dt_conn_name(c), dt_conn_tls_version(c));
		b.failures = 0;
		b.delay = BACKOFF_START_MS;
		publish(l, c);

		/* A shutdown that came before the publish did not see c. */
		if (!atomic_load(&w->stopping))
			link_serve(l, c);

		if (atomic_load(&w->stopping))
			dt_conn_close(c); /* close_notify, if dt_link_stop() did not */
		unpublish_free(l, c);
		if (!atomic_load(&w->stopping)) {
			int n = dt_worker_stop_link_tasks(w, l->index, DT_STOP_LOST);
			if (n)
				log_warn("distributor %s:%d lost: stopping its %d task(s)", l->host,
					 l->port, n);
			backoff_sleep(l, &b);
		}
	}
	return NULL;
}
