/*
 * worker_state.c - the worker's state thread: the only one that talks to
 * Redis (SPEC 5.2).
 *
 * DESIGN
 *   Owns: the worker's dt_store (one hiredis connection, never shared), the
 *   list of ends waiting to be written, the Redis-reachable flag, the stuck
 *   counter; and the freeing of every task once its end is written.
 *   Threads: this thread alone.  Pool threads queue returned tasks on the
 *   worker's done queue, and the first of a batch signals w->state_cond
 *   (only while this thread waits: w->state_waits); the main thread sets
 *   w->state_final at shutdown.
 *   Locks: w->lock to take the done queue and to snapshot the running
 *   table (then, under it, a task's lock for its flags); nothing is held
 *   during a Redis call or a send.  Tasks in the table are freed only here,
 *   so the snapshot's pointers stay valid without the lock.
 *
 *   Loop: wait on w->state_cond (monotonic) until ends are queued, the
 *   loop_interval tick is due, or the final pass is asked for.
 *   - Ends: first a "free" to every distributor (the slots of the returned
 *     tasks are free already, so a distributor can refill them while the
 *     ends are written), then ONE dt_store_finish for every queued end
 *     (END with result, FAIL with error, STOPPED; nothing for a fenced
 *     copy), then one "stopped" message per link at once, and one "ended"
 *     per link held for the next "free" (the same send) or ENDED_HOLD_MS,
 *     whichever comes first; then the tasks are freed.
 *     Ends that return while a write is in flight wait in the done queue
 *     and go together in the next call.
 *   - Tick (every loop_interval): register the worker if not yet (or again
 *     after an outage), ONE dt_store_heartbeat for every running task (its
 *     answers raise stop kinds: stop, cancel, fenced), the stuck check, and
 *     dt_store_worker_update (running, load, stuck).
 *   - Redis unreachable: logged once per outage; the ends stay queued and
 *     are retried at every tick.  SPEC 5.4: redis_lost() tells every
 *     connected distributor "redis_down" and stops every task but the
 *     state_optional ones of still-connected distributors; their
 *     "stopped" goes out at once without STOPPED written (relay_stopped),
 *     and the distributor requeues them.  When Redis is back, the tick's
 *     fenced heartbeat checks the tasks that went on (a record that moved
 *     on stops its copy), and only then is "redis_up" sent (announce_up).
 *   - Final pass (shutdown): the queued ends plus STOPPED for each task
 *     still running after stop_grace (logged as stuck and abandoned: its
 *     thread is left running, see worker_internal.h), in one call; the
 *     last messages; the worker's record marked DOWN.
 */
#include "build-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtask.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "store.h"
#include "task_internal.h"
#include "util.h"
#include "watch.h"
#include "worker_internal.h"

typedef struct state {
	dtask_worker *w;
	dt_store *store;    /* NULL if it could not even be created */
	int redis_ok;       /* -1 not tried yet, 0 unreachable, 1 reachable */
	int registered;     /* the worker record is written (since the last outage) */
	int stuck;          /* tasks that overran stop_grace, ever */
	int outage;         /* redis_down was said after a loss (not at start) */
	dtask **pending;    /* returned tasks whose end is not written yet */
	size_t n_pending, cap_pending;
	struct held *held;  /* per link: "ended" lines not sent yet (NULL: none kept) */
	int64_t held_until; /* dt_mono_ms() by which they go out; 0: nothing held */
} state;

/* An "ended" waits at most this long for the next "free" to ride with:
 * one send, and one wake-up of the distributor, instead of two, while
 * tasks keep ending.  "stopped" is never held (it is requeued at once). */
#define ENDED_HOLD_MS 2

struct held {
	char *p;
	size_t len, cap;
};

enum { CAT_ENDED, CAT_STOPPED };

/* ------------------------------------------------------------ Redis health */

static dtask **snapshot(dtask_worker *w, size_t *n, int *active);

/* One short message to every connected distributor. */
static void tell_all(dtask_worker *w, const char *msg)
{
	for (size_t l = 0; l < w->n_links; l++)
		dt_link_send(&w->links[l], msg, strlen(msg));
}

static int link_up(dt_link *l)
{
	pthread_mutex_lock(&l->lock);
	int up = l->conn != NULL;
	pthread_mutex_unlock(&l->lock);
	return up;
}

/*
 * SPEC 5.4, on losing Redis: "redis_down" to every connected distributor
 * (it sends no more runs and refreshes our tasks' update for us); then
 * every running task is stopped, except a state_optional one whose
 * distributor is still connected (that distributor, which we assume lost
 * Redis too or relays for us, will not requeue it).  The stopped ones'
 * "stopped" goes out without STOPPED written (relay_stopped), and the
 * distributor requeues them at once, fenced by their attempt.
 */
static void redis_lost(state *st, int rc, const char *err)
{
	dtask_worker *w = st->w;
	if (rc != DTASK_EREDIS) {
		log_error("worker %s: %s", w->name, err);
		return;
	}
	int was_up = st->redis_ok != 0;
	if (was_up)
		log_error("worker %s: Redis unreachable: %s (ends are kept and retried every "
			  "%d ms)", w->name, err, w->cfg->loop_interval);
	st->redis_ok = 0;
	st->registered = 0; /* its record may be gone when it comes back */
	if (!was_up || atomic_exchange(&w->redis_down, 1))
		return;
	st->outage = 1;
	tell_all(w, "{\"type\":\"" DT_MSG_REDIS_DOWN "\"}");
	size_t n;
	dtask **all = snapshot(w, &n, NULL);
	size_t kept = 0, stopped = 0;
	for (size_t i = 0; all && i < n; i++) {
		dtask *t = all[i];
		if (t->abandoned)
			continue;
		if (t->state_optional && t->link >= 0 && (size_t)t->link < w->n_links &&
		    link_up(&w->links[t->link])) {
			kept++;
			continue;
		}
		if (dt_task_request_stop(t, DT_STOP_REDIS))
			stopped++;
	}
	free(all);
	log_warn("worker %s: Redis lost: told the distributors; %zu task(s) stopped, %zu "
		 "state_optional one(s) go on", w->name, stopped, kept);
}

static void redis_back(state *st)
{
	if (st->redis_ok == 0)
		log_info("worker %s: Redis reachable again", st->w->name);
	st->redis_ok = 1;
	/* "redis_up" waits for the tick's heartbeat, which checks that every
	 * task that went on still owns its record (announce_up). */
}

/* After a heartbeat that worked: the records are checked, so say so. */
static void announce_up(state *st)
{
	dtask_worker *w = st->w;
	if (st->redis_ok != 1 || !atomic_load(&w->redis_down))
		return;
	atomic_store(&w->redis_down, 0);
	tell_all(w, "{\"type\":\"" DT_MSG_REDIS_UP "\"}");
	if (st->outage)
		log_notice("worker %s: Redis is back: told the distributors", w->name);
	st->outage = 0;
}

/* ------------------------------------------------------------- the queue */

static int pending_add(state *st, dtask *t)
{
	if (st->n_pending == st->cap_pending) {
		size_t ncap = st->cap_pending ? 2 * st->cap_pending : 64;
		dtask **n = realloc(st->pending, ncap * sizeof *n);
		if (!n)
			return DTASK_ENOMEM;
		st->pending = n;
		st->cap_pending = ncap;
	}
	st->pending[st->n_pending++] = t;
	return 0;
}

/* Move a detached done list (t->next chain) onto pending. */
static void take_done(state *st, dtask *head)
{
	while (head) {
		dtask *next = head->next;
		head->next = NULL;
		while (pending_add(st, head) < 0) {
			log_error("worker %s: out of memory queueing an end; retrying", st->w->name);
			dt_sleep_ms(100);
		}
		head = next;
	}
}

/* ----------------------------------------------------------- the messages */

/* Append msg (a line without its '\n') to h; 0, or -1 when it must go
 * on its own: no memory, or longer than max_message (dt_link_send refuses
 * it then, as before any holding: never sent inside raw lines). */
static int held_add(const dtask_worker *w, struct held *h, const char *msg, size_t len)
{
	if (len > w->cfg->max_message)
		return -1;
	if (h->len + len + 1 > h->cap) {
		size_t ncap = h->cap ? h->cap : 1024;
		while (ncap < h->len + len + 1)
			ncap *= 2;
		char *np = realloc(h->p, ncap);
		if (!np)
			return -1;
		h->p = np;
		h->cap = ncap;
	}
	memcpy(h->p + h->len, msg, len);
	h->p[h->len + len] = '\n';
	h->len += len + 1;
	return 0;
}

/* Send link l's held lines, then msg (a line without its '\n'; may be
 * NULL), in one send. */
static void send_held(state *st, size_t l, const char *msg, size_t len)
{
	dtask_worker *w = st->w;
	struct held *h = st->held ? &st->held[l] : NULL;
	if (h && msg && held_add(w, h, msg, len) == 0)
		msg = NULL;
	int rc = 0;
	if (h && h->len)
		rc = dt_link_send_lines(&w->links[l], h->p, h->len);
	if (msg && rc >= 0)
		rc = dt_link_send(&w->links[l], msg, len);
	if (rc < 0)
		log_debug("worker %s: a message to distributor %s:%d not sent: %s", w->name,
			  w->links[l].host, w->links[l].port, dtask_strerror(rc));
	if (h)
		h->len = 0;
}

/* Every link's held lines, now. */
static void flush_held(state *st)
{
	for (size_t l = 0; st->held && l < st->w->n_links; l++)
		if (st->held[l].len)
			send_held(st, l, NULL, 0);
	st->held_until = 0;
}

/* Keep an "ended" line for link l until the next "free" or ENDED_HOLD_MS;
 * 0, or -1 when it must be sent now (nothing can be kept). */
static int hold(state *st, size_t l, const char *msg, size_t len)
{
	if (!st->held || held_add(st->w, &st->held[l], msg, len) < 0)
		return -1;
	if (!st->held_until)
		st->held_until = dt_mono_ms() + ENDED_HOLD_MS;
	return 0;
}

/* Slots came free (returned tasks were just taken): "free" to every
 * distributor now, before their ends are written (PROTOCOL 6.1), with
 * the "ended" lines held for it in the same send. */
static void send_free(state *st)
{
	dtask_worker *w = st->w;
	dt_free_report fr = dt_worker_free_report(w);
	char msg[96];
	int len = 0;
	if (fr.free > 0)
		len = snprintf(msg, sizeof msg, "{\"type\":\"" DT_MSG_FREE "\",\"free\":%d,\"seq\":%lld}",
			       fr.free, fr.seq);
	for (size_t l = 0; l < w->n_links; l++)
		send_held(st, l, len > 0 ? msg : NULL, len > 0 ? (size_t)len : 0);
	st->held_until = 0;
}

static void send_lists(state *st, dtask **v, const int *cat, size_t n)
{
	dtask_worker *w = st->w;
	dtask **sel = malloc((n ? n : 1) * sizeof *sel);
	if (!sel) {
		log_error("worker %s: out of memory for \"ended\"/\"stopped\"", w->name);
		return;
	}
	static const char *const types[] = { DT_MSG_ENDED, DT_MSG_STOPPED };
	for (size_t l = 0; l < w->n_links; l++) {
		for (int c = CAT_ENDED; c <= CAT_STOPPED; c++) {
			size_t k = 0;
			for (size_t i = 0; i < n; i++)
				if (cat[i] == c && v[i]->link == (int)l)
					sel[k++] = v[i];
			if (k == 0)
				continue;
			size_t len;
			char *msg = dt_worker_tasks_msg(types[c], -1, dt_worker_free_report(w), sel,
							k, &len);
			if (!msg) {
				log_error("worker %s: out of memory for \"%s\"", w->name, types[c]);
				continue;
			}
			/* "ended" waits for the next "free"; "stopped" goes now,
			 * after what link l holds. */
			if (c != CAT_ENDED || hold(st, l, msg, len) < 0)
				send_held(st, l, msg, len);
			free(msg);
		}
	}
	free(sel);
}

/* -------------------------------------------------------------- the ends */

/*
 * Write the ends of v[0..n) in ONE finish call: a task that returned gets
 * the outcome of its status; one that has not (stuck, at the final pass)
 * gets STOPPED; a fenced one gets nothing.  Then "ended"/"stopped" per
 * link, the tasks leave the running table, and those not abandoned are
 * freed.  On a Redis failure nothing changes and DTASK_EREDIS is returned.
 */
static int finish_batch(state *st, dtask **v, size_t n)
{
	dtask_worker *w = st->w;
	char err[512];
	int rc = 0;
	dt_finish_req *reqs = calloc(n, sizeof *reqs);
	int *res = calloc(n, sizeof *res), *idx = calloc(n, sizeof *idx);
	int *kind = calloc(n, sizeof *kind), *cat = calloc(n, sizeof *cat);
	if (!reqs || !res || !idx || !kind || !cat) {
		rc = DTASK_ENOMEM;
		log_error("worker %s: out of memory writing %zu end(s)", w->name, n);
		goto done;
	}

	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		dtask *t = v[i];
		int returned, status;
		dt_task_flags(t, &kind[i], NULL, &returned, &status);
		if (kind[i] == DT_STOP_FENCED) {
			idx[i] = -1;
			continue;
		}
		dt_finish_req *r = &reqs[k];
		r->id = t->id;
		r->attempt = t->attempt;
		if (!returned || status == DTASK_STOP) {
			r->outcome = DT_OUT_STOPPED;
		} else if (status == DTASK_END) {
			r->outcome = DT_OUT_END;
			r->result = t->result;
		} else {
			r->outcome = DT_OUT_FAIL;
			if (status != DTASK_FAIL) {
				log_error("task %s attempt %lld: %s returned %d, not a dtask_status: "
					  "failed", t->id, (long long)t->attempt, t->function, status);
				r->error = "the function returned an invalid status";
			} else {
				r->error = t->error ? t->error : "failed";
			}
		}
		idx[i] = (int)k++;
	}

	if (k > 0) {
		if (!st->store)
			rc = dt_err(err, sizeof err, DTASK_EREDIS, "no Redis connection");
		else
			rc = dt_store_finish(st->store, reqs, k, res, err, sizeof err);
		if (rc < 0) {
			redis_lost(st, rc, err);
			goto done;
		}
		redis_back(st);
	}

	for (size_t i = 0; i < n; i++) {
		dtask *t = v[i];
		long long a = (long long)t->attempt;
		cat[i] = CAT_ENDED;
		if (idx[i] < 0) {
			log_info("task %s attempt %lld: another copy owns the record: nothing written",
				 t->id, a);
			continue;
		}
		const dt_finish_req *r = &reqs[idx[i]];
		if (res[idx[i]] == DT_FIN_FENCED) {
			log_info("task %s attempt %lld: the record is no longer this copy's: its end "
				 "was not written", t->id, a);
		} else if (r->outcome == DT_OUT_END) {
			log_debug("task %s attempt %lld: END", t->id, a);
		} else if (r->outcome == DT_OUT_FAIL) {
			log_info("task %s attempt %lld: failed: %s", t->id, a, r->error);
		} else if (kind[i] == DT_STOP_CANCEL) {
			log_info("task %s attempt %lld: cancelled", t->id, a);
		} else {
			cat[i] = CAT_STOPPED;
			log_info("task %s attempt %lld: STOPPED (%s)", t->id, a,
				 dt_stop_kind_name(kind[i]));
		}
	}
	dt_worker_table_remove(w, v, n);
	/* Watchers learn the end once it is written (and only after the task
	 * left the table: see on_subscribe in watch.c). */
	for (size_t i = 0; i < n; i++) {
		int ended = idx[i] >= 0 && res[idx[i]] != DT_FIN_FENCED &&
			    reqs[idx[i]].outcome != DT_OUT_STOPPED;
		/* A stop that request=cancel caused ends the task too. */
		const char *error = ended && reqs[idx[i]].outcome == DT_OUT_FAIL ? reqs[idx[i]].error
										  : NULL;
		if (idx[i] >= 0 && res[idx[i]] != DT_FIN_FENCED && kind[i] == DT_STOP_CANCEL) {
			ended = 1;
			error = "cancelled";
		}
		dt_watch_state(w->watch, v[i]->id, v[i]->attempt, ended ? "END" : "STOPPED", error);
	}
	send_lists(st, v, cat, n);
	for (size_t i = 0; i < n; i++)
		if (!v[i]->abandoned)
			dt_task_free(v[i]);
done:
	free(reqs);
	free(res);
	free(idx);
	free(kind);
	free(cat);
	return rc;
}

/* While Redis is lost: the returned, stopped tasks' "stopped" go out now,
 * once each, so a distributor requeues them at once (SPEC 5.4); their
 * STOPPED is still written (fenced) when Redis is back. */
static void relay_stopped(state *st)
{
	size_t n = st->n_pending, k = 0;
	dtask **v = malloc((n ? n : 1) * sizeof *v);
	int *cat = malloc((n ? n : 1) * sizeof *cat);
	for (size_t i = 0; v && cat && i < n; i++) {
		dtask *t = st->pending[i];
		int kind, returned, status;
		dt_task_flags(t, &kind, NULL, &returned, &status);
		if (t->relayed || !returned || status != DTASK_STOP || kind == DT_STOP_FENCED ||
		    kind == DT_STOP_CANCEL)
			continue;
		t->relayed = 1;
		cat[k] = CAT_STOPPED;
		v[k++] = t;
	}
	if (k) {
		send_lists(st, v, cat, k);
		log_info("worker %s: Redis lost: %zu stopped task(s) reported for requeue", st->w->name,
			 k);
	}
	free(v);
	free(cat);
}

static void write_pending(state *st)
{
	if (st->n_pending == 0)
		return;
	if (finish_batch(st, st->pending, st->n_pending) == 0)
		st->n_pending = 0;
	else if (st->redis_ok == 0)
		relay_stopped(st);
}

/* ------------------------------------------------------------- the tick */

/* A copy of the running table's pointers (valid: only we free tasks). */
static dtask **snapshot(dtask_worker *w, size_t *n, int *active)
{
	pthread_mutex_lock(&w->lock);
	dtask **v = malloc((w->n_tasks ? w->n_tasks : 1) * sizeof *v);
	*n = 0;
	if (v && w->n_tasks) {
		memcpy(v, w->tasks, w->n_tasks * sizeof *v);
		*n = w->n_tasks;
	}
	if (active)
		*active = w->n_active;
	pthread_mutex_unlock(&w->lock);
	return v;
}

static void do_register(state *st)
{
	dtask_worker *w = st->w;
	char err[512];
	if (!st->store)
		return;
	int rc = dt_store_register_worker(st->store, w->name, w->watch_host,
					  dt_watch_port(w->watch), w->capacity,
					  w->functions_json, err, sizeof err);
	if (rc < 0) {
		redis_lost(st, rc, err);
		return;
	}
	if (!st->registered)
		log_info("worker %s: registered in Redis (%s:%d)", w->name, w->cfg->redis.host,
			 w->cfg->redis.port);
	st->registered = 1;
	redis_back(st);
}

static void tick(state *st)
{
	dtask_worker *w = st->w;
	char err[512];
	size_t n;
	int active;
	dtask **all = snapshot(w, &n, &active);
	if (!all) {
		log_error("worker %s: out of memory for the heartbeat", w->name);
		return;
	}
	dt_task_ref *refs = calloc(n ? n : 1, sizeof *refs);
	dtask **hb = calloc(n ? n : 1, sizeof *hb);
	int *res = calloc(n ? n : 1, sizeof *res);
	if (!refs || !hb || !res) {
		log_error("worker %s: out of memory for the heartbeat", w->name);
		goto done;
	}

	int64_t now = dt_mono_ms();
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		dtask *t = all[i];
		int kind, returned;
		int64_t at;
		if (t->abandoned)
			continue;
		dt_task_flags(t, &kind, &at, &returned, NULL);
		if (returned)
			continue;
		if (at && now - at > w->cfg->stop_grace && !t->stuck_logged) {
			t->stuck_logged = 1;
			st->stuck++;
			log_warn("task %s attempt %lld did not stop within stop_grace (%d ms; asked: "
				 "%s)", t->id, (long long)t->attempt, w->cfg->stop_grace,
				 dt_stop_kind_name(kind));
		}
		if (kind == DT_STOP_FENCED)
			continue;
		refs[k].id = t->id;
		refs[k].attempt = t->attempt;
		hb[k++] = t;
	}
	if (!st->store)
		goto done;

	if (!st->registered)
		do_register(st);
	if (st->n_pending)
		write_pending(st);

	int rc = 0;
	if (k > 0) {
		rc = dt_store_heartbeat(st->store, refs, k, res, err, sizeof err);
		if (rc < 0) {
			redis_lost(st, rc, err);
			goto done;
		}
		redis_back(st);
		for (size_t i = 0; i < k; i++) {
			dtask *t = hb[i];
			long long a = (long long)t->attempt;
			if (res[i] == DT_HB_STOP) {
				if (dt_task_request_stop(t, DT_STOP_STOP))
					log_info("task %s attempt %lld: stop requested", t->id, a);
			} else if (res[i] == DT_HB_CANCEL) {
				if (dt_task_request_stop(t, DT_STOP_CANCEL))
					log_info("task %s attempt %lld: cancel requested", t->id, a);
			} else if (res[i] == DT_HB_FENCED) {
				if (dt_task_request_stop(t, DT_STOP_FENCED))
					log_warn("task %s attempt %lld: its record is no longer this "
						 "copy's: stopping it, nothing will be written", t->id,
						 a);
			}
		}
	}
	announce_up(st);
	char load[32];
	snprintf(load, sizeof load, "%.2f",
		 w->capacity > 0 ? (double)active / (double)w->capacity : 0.0);
	rc = dt_store_worker_update(st->store, w->name, active, load, st->stuck, err, sizeof err);
	if (rc < 0)
		redis_lost(st, rc, err);
	else
		redis_back(st);
done:
	free(all);
	free(refs);
	free(hb);
	free(res);
}

/* ------------------------------------------------------------ final pass */

static void final_pass(state *st)
{
	dtask_worker *w = st->w;

	/* The tasks still running after stop_grace are left STOPPED. */
	pthread_mutex_lock(&w->lock);
	dtask *done = w->done_head;
	w->done_head = w->done_tail = NULL;
	size_t nstuck = 0;
	dtask **stuck = malloc((w->n_tasks ? w->n_tasks : 1) * sizeof *stuck);
	for (size_t i = 0; stuck && i < w->n_tasks; i++) {
		dtask *t = w->tasks[i];
		int returned;
		dt_task_flags(t, NULL, NULL, &returned, NULL);
		if (!returned) {
			t->abandoned = 1;
			stuck[nstuck++] = t;
		}
	}
	w->abandoned = (int)nstuck;
	pthread_mutex_unlock(&w->lock);
	take_done(st, done);

	for (size_t i = 0; i < nstuck; i++) {
		log_warn("task %s attempt %lld is stuck (did not stop within stop_grace): leaving it "
			 "STOPPED for another worker; its thread is abandoned", stuck[i]->id,
			 (long long)stuck[i]->attempt);
		if (!stuck[i]->stuck_logged) {
			stuck[i]->stuck_logged = 1;
			st->stuck++;
		}
		while (pending_add(st, stuck[i]) < 0)
			dt_sleep_ms(100);
	}
	free(stuck);

	if (st->n_pending) {
		write_pending(st);
		if (st->n_pending && st->store && st->redis_ok != 0) {
			dt_sleep_ms(200); /* one more try, on a fresh connection */
			write_pending(st);
		}
		if (st->n_pending) {
			log_error("worker %s: %zu end(s) could not be written at exit; the "
				  "distributors' sweeps will requeue those tasks", w->name,
				  st->n_pending);
			for (size_t i = 0; i < st->n_pending; i++) {
				dt_worker_table_remove(w, &st->pending[i], 1);
				if (!st->pending[i]->abandoned)
					dt_task_free(st->pending[i]);
			}
			st->n_pending = 0;
		}
	}

	if (st->store) {
		char err[512];
		char load[32];
		snprintf(load, sizeof load, "%.2f",
			 w->capacity > 0 ? (double)nstuck / (double)w->capacity : 0.0);
		int rc = dt_store_worker_update(st->store, w->name, (int)nstuck, load, st->stuck, err,
						sizeof err);
		if (rc == 0)
			rc = dt_store_worker_down(st->store, w->name, err, sizeof err);
		if (rc < 0)
			log_error("worker %s: marking the worker DOWN: %s", w->name, err);
	}
}

void *dt_state_main(void *arg)
{
	dtask_worker *w = arg;
	state st = { .w = w, .redis_ok = -1 };
	char err[512];

	/* Without it every "ended" goes out at once. */
	st.held = w->n_links ? calloc(w->n_links, sizeof *st.held) : NULL;

	if (dt_store_new(&w->cfg->redis, &st.store, err, sizeof err) < 0) {
		log_error("worker %s: %s: running without Redis", w->name, err);
		st.store = NULL;
	}

	int64_t next_tick = dt_mono_ms();
	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (!w->done_head && !w->state_final) {
			int64_t until = next_tick;
			if (st.held_until && st.held_until < until)
				until = st.held_until;
			int64_t left = until - dt_mono_ms();
			if (left <= 0)
				break;
			struct timespec deadline;
			dt_deadline(&deadline, left);
			w->state_waits = 1;
			pthread_cond_timedwait(&w->state_cond, &w->lock, &deadline);
			w->state_waits = 0;
		}
		dtask *done = w->done_head;
		w->done_head = w->done_tail = NULL;
		int final = w->state_final;
		pthread_mutex_unlock(&w->lock);
		take_done(&st, done);
		if (final)
			break;
		if (done) /* their slots are free: say so before the ends are written */
			send_free(&st);
		else if (st.held_until && dt_mono_ms() >= st.held_until)
			flush_held(&st);

		int64_t now = dt_mono_ms();
		if (now >= next_tick) {
			next_tick = now + w->cfg->loop_interval;
			flush_held(&st); /* not behind the tick's round trips */
			tick(&st); /* registers, retries ends, heartbeats, updates */
		} else if (st.n_pending && st.redis_ok != 0) {
			write_pending(&st);
		} else if (st.n_pending && st.redis_ok == 0) {
			relay_stopped(&st); /* Redis lost: "stopped" at once */
		}
	}
	/* The final pass sends everything at once. */
	flush_held(&st);
	for (size_t l = 0; st.held && l < w->n_links; l++)
		free(st.held[l].p);
	free(st.held);
	st.held = NULL;
	final_pass(&st);
	free(st.pending);
	dt_store_free(st.store);
	return NULL;
}
