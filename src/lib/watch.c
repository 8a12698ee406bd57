/*
 * watch.c - the worker's watcher listener (see watch.h, doc/PROTOCOL.md 6.4).
 *
 * DESIGN
 *   Owns: the listener (a dt_server: its accept thread and one thread per
 *   watcher, all joined by dt_watch_stop) and the sessions, one per
 *   connected watcher, each with its subscriptions: (task id, the event
 *   names it wants, or all).
 *   A watcher's thread reads its messages (subscribe, unsubscribe) and
 *   answers them.  Everything for a watcher (the answer to subscribe,
 *   events, states) goes on that session's outgoing queue, in order, under
 *   wt->lock: the thread that has it (a task thread in dtask_emit(), the
 *   state thread at a task's end) never waits for a watcher.  One sender
 *   thread, owned by the dt_watch, drains the queues, one session at a
 *   time, round robin, with the sends bounded by DT_WATCH_SEND_TIMEOUT_MS.
 *   A session whose queue grows past DT_WATCH_QUEUE_MAX bytes, or whose
 *   send fails or times out, is dropped (its connection shut down: its
 *   thread sees the close and leaves).  A session is referenced while the
 *   sender works on it, and its thread waits for that before it ends.
 *   Locks: wt->lock (a leaf, see watch.h).
 */
#include "build-config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "conf.h"
#include "conn.h"
#include "dtask.h"
#include "item.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "watch.h"
#include "worker_internal.h"

typedef struct sub {
	char id[DT_ID_MAX + 1];
	char **events;     /* NULL: every event */
	size_t nevents;
} sub;

typedef struct outmsg {
	struct outmsg *next;
	size_t len;
	char text[];
} outmsg;

typedef struct session {
	dt_conn *c;
	sub *subs;
	size_t nsubs, cap;
	outmsg *qhead, **qtail; /* outgoing, in order */
	size_t qbytes;
	int overflow;      /* the queue grew past DT_WATCH_QUEUE_MAX: drop it */
	int refs;          /* the sender is working on it (under wt->lock) */
	int gone;          /* its thread is leaving: nothing more is queued */
	struct session *next;
} session;

struct dt_watch {
	dtask_worker *w;
	dt_server *srv;
	pthread_mutex_t lock;
	pthread_cond_t unref;   /* a session's refs went down */
	pthread_cond_t work;    /* something was queued, or stop */
	session *sessions;
	session *next_turn;     /* round robin for the sender */
	int stopped;
	pthread_t sender;
	int sender_started;
};

int dt_event_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > DT_EVENT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ sessions */

static void sub_clear(sub *s)
{
	for (size_t i = 0; i < s->nevents; i++)
		free(s->events[i]);
	free(s->events);
	s->events = NULL;
	s->nevents = 0;
}

/* Under wt->lock. */
static void sub_remove(session *s, const char *id)
{
	for (size_t i = 0; i < s->nsubs; i++) {
		if (strcmp(s->subs[i].id, id) == 0) {
			sub_clear(&s->subs[i]);
			s->subs[i] = s->subs[--s->nsubs];
			return;
		}
	}
}

/* Under wt->lock: 1 when s wants this (id, event); event NULL: any. */
static int wants(const session *s, const char *id, const char *event)
{
	for (size_t i = 0; i < s->nsubs; i++) {
		const sub *u = &s->subs[i];
		if (strcmp(u->id, id) != 0)
			continue;
		if (!event || !u->events)
			return 1;
		for (size_t k = 0; k < u->nevents; k++)
			if (strcmp(u->events[k], event) == 0)
				return 1;
		return 0;
	}
	return 0;
}

/* Under wt->lock: queue a copy of msg for s; 0, or -1 when it overflowed
 * (then the sender drops it). */
static int enqueue(dt_watch *wt, session *s, const char *msg, size_t len)
{
	if (s->gone || s->overflow)
		return -1;
	if (s->qbytes + len > DT_WATCH_QUEUE_MAX) {
		s->overflow = 1;
		pthread_cond_signal(&wt->work);
		return -1;
	}
	outmsg *m = malloc(sizeof *m + len);
	if (!m)
		return -1;
	m->next = NULL;
	m->len = len;
	memcpy(m->text, msg, len);
	*s->qtail = m;
	s->qtail = &m->next;
	s->qbytes += len;
	pthread_cond_signal(&wt->work);
	return 0;
}

static void free_queue(session *s)
{
	outmsg *m = s->qhead;
	while (m) {
		outmsg *n = m->next;
		free(m);
		m = n;
	}
	s->qhead = NULL;
	s->qtail = &s->qhead;
	s->qbytes = 0;
}

/* Queue msg for every session that wants (id, event); when drop_id, their
 * subscription to id ends too (so nothing follows a task's state). */
static void fan_out(dt_watch *wt, const char *id, const char *event, const char *msg,
		    size_t len, int drop_id)
{
	pthread_mutex_lock(&wt->lock);
	if (!wt->stopped) {
		for (session *s = wt->sessions; s; s = s->next) {
			if (s->gone || !wants(s, id, event))
				continue;
			if (drop_id)
				sub_remove(s, id);
			enqueue(wt, s, msg, len);
		}
	}
	pthread_mutex_unlock(&wt->lock);
}

/* Whether some session wants (id, event) now: the messages are built only
 * then (most tasks have no watcher).  A subscription that comes between
 * this and fan_out() misses the message, as one a moment later would. */
static int wanted(dt_watch *wt, const char *id, const char *event)
{
	int any = 0;
	pthread_mutex_lock(&wt->lock);
	for (session *s = wt->sessions; s && !any && !wt->stopped; s = s->next)
		any = !s->gone && wants(s, id, event);
	pthread_mutex_unlock(&wt->lock);
	return any;
}

/* The sender thread: drains the sessions' queues (see DESIGN). */
static void *sender_main(void *arg)
{
	dt_watch *wt = arg;
	pthread_mutex_lock(&wt->lock);
	for (;;) {
		session *s = NULL;
		/* From where the last turn stopped, the first with work. */
		for (int pass = 0; pass < 2 && !s; pass++) {
			session *from = pass == 0 && wt->next_turn ? wt->next_turn : wt->sessions;
			for (session *x = from; x; x = x->next)
				if (!x->gone && (x->qhead || x->overflow)) {
					s = x;
					break;
				}
		}
		if (!s) {
			if (wt->stopped)
				break;
			pthread_cond_wait(&wt->work, &wt->lock);
			continue;
		}
		wt->next_turn = s->next;
		outmsg *list = s->qhead;
		int overflow = s->overflow;
		size_t bytes = s->qbytes;
		s->qhead = NULL;
		s->qtail = &s->qhead;
		s->qbytes = 0;
		s->refs++;
		pthread_mutex_unlock(&wt->lock);

		int drop = overflow;
		if (overflow)
			log_warn("watcher %s fell more than %d bytes behind: dropping it",
				 dt_conn_peer(s->c), DT_WATCH_QUEUE_MAX);
		for (outmsg *m = list; m && !drop; m = m->next) {
			int rc = dt_conn_send(s->c, m->text, m->len);
			if (rc == DTASK_ETOOBIG) {
				log_warn("watcher %s: a message of %zu bytes is over max_message: "
					 "not sent", dt_conn_peer(s->c), m->len);
			} else if (rc < 0) {
				log_warn("watcher %s: %s (%zu bytes queued): dropping it",
					 dt_conn_peer(s->c), dtask_strerror(rc), bytes);
				drop = 1;
			}
		}
		if (drop)
			dt_conn_shutdown(s->c);
		while (list) {
			outmsg *n = list->next;
			free(list);
			list = n;
		}

		pthread_mutex_lock(&wt->lock);
		if (drop)
			s->gone = 1; /* nothing more is queued; its thread is leaving */
		s->refs--;
		pthread_cond_broadcast(&wt->unref);
	}
	pthread_mutex_unlock(&wt->lock);
	return NULL;
}

static int64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dt_watch_event(dt_watch *wt, const char *id, int64_t attempt, const char *event,
		    const char *json)
{
	if (!wt || !wanted(wt, id, event))
		return;
	/* Ids and event names need no escaping (their characters are checked). */
	const char *data = json ? json : "null";
	size_t cap = strlen(id) + strlen(event) + strlen(data) + 128;
	char *msg = malloc(cap);
	if (!msg)
		return;
	int len = snprintf(msg, cap,
			   "{\"type\":\"event\",\"id\":\"%s\",\"attempt\":%lld,\"event\":\"%s\","
			   "\"time\":%lld,\"data\":%s}",
			   id, (long long)attempt, event, (long long)real_ms(), data);
	if (len > 0 && (size_t)len < cap)
		fan_out(wt, id, event, msg, (size_t)len, 0);
	free(msg);
}

void dt_watch_state(dt_watch *wt, const char *id, int64_t attempt, const char *state,
		    const char *error)
{
	if (!wt || !wanted(wt, id, NULL))
		return;
	json_object *m = json_object_new_object();
	if (!m)
		return;
	json_object_object_add(m, "type", json_object_new_string("state"));
	json_object_object_add(m, "id", json_object_new_string(id));
	json_object_object_add(m, "attempt", json_object_new_int64(attempt));
	json_object_object_add(m, "state", json_object_new_string(state));
	if (error)
		json_object_object_add(m, "error", json_object_new_string(error));
	size_t len;
	const char *msg = json_object_to_json_string_length(
		m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (msg)
		fan_out(wt, id, NULL, msg, len, 1);
	json_object_put(m);
}

/* ------------------------------------------------------ a watcher's thread */

static const char *get_str(json_object *m, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(m, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* "subscribe": {"type":"subscribe","id":S[,"events":[S,...]]}. */
static void on_subscribe(dt_watch *wt, session *s, json_object *m)
{
	const char *id = get_str(m, "id");
	json_object *ev = NULL;
	if (!id || !dt_id_valid(id, strlen(id))) {
		dt_conn_send_error(s->c, "\"subscribe\" needs a valid task \"id\"");
		return;
	}
	int has_ev = json_object_object_get_ex(m, "events", &ev) && ev &&
		     !json_object_is_type(ev, json_type_null);
	if (has_ev && !json_object_is_type(ev, json_type_array)) {
		dt_conn_send_error(s->c, "\"events\" must be an array of event names");
		return;
	}
	sub u = { .events = NULL, .nevents = 0 };
	snprintf(u.id, sizeof u.id, "%s", id);
	size_t ne = has_ev ? json_object_array_length(ev) : 0;
	if (has_ev && ne > 0) {
		u.events = calloc(ne, sizeof *u.events);
		if (!u.events) {
			dt_conn_send_error(s->c, "out of memory");
			return;
		}
		for (size_t i = 0; i < ne; i++) {
			json_object *e = json_object_array_get_idx(ev, i);
			const char *name = json_object_is_type(e, json_type_string)
						   ? json_object_get_string(e) : NULL;
			if (!name || !dt_event_name_valid(name) || !(u.events[i] = strdup(name))) {
				u.nevents = i;
				sub_clear(&u);
				dt_conn_send_error(s->c, "\"events\" must be an array of event names "
							  "(1-64 characters of A-Z a-z 0-9 _ . : -)");
				return;
			}
			u.nevents = i + 1;
		}
	}

	/* Subscribed first, checked second: a task that ends in between has
	 * its state sent to us, or is found gone here (watch.h). */
	pthread_mutex_lock(&wt->lock);
	sub_remove(s, id);
	int added = 0;
	if (s->nsubs == s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 4;
		sub *ns = realloc(s->subs, ncap * sizeof *ns);
		if (ns) {
			s->subs = ns;
			s->cap = ncap;
		}
	}
	if (s->nsubs < s->cap) {
		s->subs[s->nsubs++] = u;
		added = 1;
	}
	pthread_mutex_unlock(&wt->lock);
	if (!added) {
		sub_clear(&u);
		dt_conn_send_error(s->c, "out of memory");
		return;
	}
	int64_t attempt = dt_worker_running_attempt(wt->w, id);
	char msg[DT_ID_MAX + 128];
	int len;
	if (attempt > 0)
		len = snprintf(msg, sizeof msg,
			       "{\"type\":\"state\",\"id\":\"%s\",\"attempt\":%lld,\"state\":\"RUNNING\"}",
			       id, (long long)attempt);
	else
		len = snprintf(msg, sizeof msg,
			       "{\"type\":\"error\",\"message\":\"task %s is not running on this worker\"}",
			       id);
	/* Queued (behind anything already queued for it): the answer reaches
	 * the watcher in order.  When the task's state went out meanwhile, the
	 * subscription is gone and that state was the answer. */
	pthread_mutex_lock(&wt->lock);
	int still = wants(s, id, NULL);
	if (still && attempt <= 0)
		sub_remove(s, id);
	if (still)
		enqueue(wt, s, msg, (size_t)len);
	pthread_mutex_unlock(&wt->lock);
	if (attempt > 0)
		log_info("watcher %s subscribed to task %s", dt_conn_peer(s->c), id);
}

static void serve(dt_conn *c, void *arg)
{
	dt_watch *wt = arg;
	char err[256];
	session *s = calloc(1, sizeof *s);
	if (!s) {
		dt_conn_send_error(c, "out of memory");
		return;
	}
	s->c = c;
	s->qtail = &s->qhead;
	pthread_mutex_lock(&wt->lock);
	s->next = wt->sessions;
	wt->sessions = s;
	pthread_mutex_unlock(&wt->lock);
	log_info("watcher %s connected", dt_conn_peer(c));

	/* A watcher says "health" every health_interval: one silent for
	 * health_interval x health_misses is gone (or hung), and is dropped. */
	const dt_config *cfg = wt->w->cfg;
	int silence = cfg->health_interval * cfg->health_misses;
	for (;;) {
		json_object *m = NULL;
		int rc = dt_conn_recv_msg(c, silence, &m, err, sizeof err);
		if (rc == DTASK_EPROTO) {
			dt_conn_send_error(c, "%s", err);
			continue;
		}
		if (rc == DTASK_ETIMEDOUT)
			log_warn("watcher %s: nothing received for %d ms: dropping it", dt_conn_peer(c),
				 silence);
		if (rc < 0)
			break;
		const char *type = get_str(m, "type");
		if (strcmp(type, "health") == 0) {
			/* alive: nothing to do */
		} else if (strcmp(type, "subscribe") == 0) {
			on_subscribe(wt, s, m);
		} else if (strcmp(type, "unsubscribe") == 0) {
			const char *id = get_str(m, "id");
			if (!id) {
				dt_conn_send_error(c, "\"unsubscribe\" needs \"id\"");
			} else {
				pthread_mutex_lock(&wt->lock);
				sub_remove(s, id);
				pthread_mutex_unlock(&wt->lock);
			}
		} else if (strcmp(type, "error") == 0) {
			const char *msg = get_str(m, "message");
			log_info("watcher %s says: %s", dt_conn_peer(c), msg ? msg : "(no message)");
		} else {
			dt_conn_send_error(c, "unknown message type");
		}
		json_object_put(m);
	}

	pthread_mutex_lock(&wt->lock);
	s->gone = 1;
	while (s->refs > 0)
		pthread_cond_wait(&wt->unref, &wt->lock);
	for (session **p = &wt->sessions; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	if (wt->next_turn == s)
		wt->next_turn = s->next;
	free_queue(s);
	pthread_mutex_unlock(&wt->lock);
	for (size_t i = 0; i < s->nsubs; i++)
		sub_clear(&s->subs[i]);
	free(s->subs);
	free(s);
	log_info("watcher %s disconnected", dt_conn_peer(c));
}

/* ------------------------------------------------------------ life cycle */

int dt_watch_start(dtask_worker *w, dt_watch **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!dt_tls_can_serve(w->tls))
		return dt_err(err, errlen, DTASK_ECONFIG,
			      "no \"key\" configured: no watcher listener (dtask watch cannot reach "
			      "this worker)");
	dt_watch *wt = calloc(1, sizeof *wt);
	if (!wt)
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	wt->w = w;
	pthread_mutex_init(&wt->lock, NULL);
	pthread_cond_init(&wt->unref, NULL);
	pthread_cond_init(&wt->work, NULL);
	const dt_config *cfg = w->cfg;
	dt_server_opts so = {
		.role = "watcher listener",
		.host = cfg->watch_host, /* unset: every address */
		.port = cfg->watch_port,
		.link = { w->tls, cfg->share_key, cfg->max_message, cfg->handshake_timeout,
			  cfg->send_timeout < DT_WATCH_SEND_TIMEOUT_MS ? cfg->send_timeout
								       : DT_WATCH_SEND_TIMEOUT_MS },
		.max_connections = cfg->max_connections,
		.handler = serve,
		.arg = wt,
	};
	if (pthread_create(&wt->sender, NULL, sender_main, wt) != 0) {
		dt_watch_free(wt);
		return dt_err(err, errlen, DTASK_EIO, "cannot start the watchers' sender thread");
	}
	wt->sender_started = 1;
	int rc = dt_server_start(&so, &wt->srv, err, errlen);
	if (rc < 0) {
		dt_watch_stop(wt);
		dt_watch_free(wt);
		return rc;
	}
	*out = wt;
	return 0;
}

int dt_watch_port(const dt_watch *wt)
{
	return wt ? dt_server_port(wt->srv) : 0;
}

void dt_watch_stop(dt_watch *wt)
{
	if (!wt)
		return;
	pthread_mutex_lock(&wt->lock);
	wt->stopped = 1;
	pthread_cond_broadcast(&wt->work);
	pthread_mutex_unlock(&wt->lock);
	if (wt->srv)
		dt_server_stop(wt->srv); /* the sessions end (the sender fails fast) */
	if (wt->sender_started) {
		pthread_join(wt->sender, NULL);
		wt->sender_started = 0;
	}
}

void dt_watch_free(dt_watch *wt)
{
	if (!wt)
		return;
	dt_server_free(wt->srv);
	pthread_mutex_destroy(&wt->lock);
	pthread_cond_destroy(&wt->unref);
	pthread_cond_destroy(&wt->work);
	free(wt);
}
