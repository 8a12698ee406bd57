/*
 * worker.c - the worker runtime: dtask_worker_new/add/run/shutdown/free,
 * the running-task table and the drain at shutdown.
 *
 * DESIGN
 *   Owns: the dtask_worker (worker_internal.h): configuration, TLS
 *   credentials, the function registry (fixed once run starts), the pool,
 *   the links, the running-task table and the done queue; the life cycle of
 *   every thread of the worker (started and joined here).
 *   Threads: the main thread (dtask_worker_new/add/run/free); the signal
 *   thread (signal_main below); link threads call dt_worker_accept and
 *   dt_worker_stop_*; pool threads run run_task(); the state thread calls
 *   dt_worker_table_remove.  dtask_worker_shutdown() from anywhere.
 *   Locks: w->lock guards the table, the done queue, the counters and the
 *   phase flags; while holding it we may take a task's lock (stop requests)
 *   or the pool's (a slot reserved, the free slots counted): both leaves.
 *   The hand-over of accepted runs to the pool (dt_worker_start) takes the
 *   pool's lock without w->lock.  Nothing is sent under w->lock.
 *   The full order is in worker_internal.h.
 *
 *   Shutdown (dtask_worker_run, after the wake-up): draining = 1 (runs are
 *   refused "draining"); every running task is asked to stop (kind
 *   shutdown); wait up to stop_grace for them to return (their normal path
 *   writes END or STOPPED); then the state thread's final pass writes the
 *   queued ends plus STOPPED for the tasks still running (logged as stuck),
 *   sends the last "ended"/"stopped", marks the worker DOWN and exits; the
 *   health thread is stopped, the links are closed and their threads
 *   joined, the pool joined (threads of stuck tasks detached: the one
 *   exception, see worker_internal.h) and the signal thread woken and
 *   joined.
 */
#include "build-config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "conf.h"
#include "daemon.h"
#include "dtask.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "task_internal.h"
#include "tls.h"
#include "util.h"
#include "watch.h"
#include "worker_internal.h"

/* ------------------------------------------------------------ new / free */

static dtask_worker *errdup(char **errmsg, const char *msg)
{
	if (errmsg)
		*errmsg = strdup(msg);
	return NULL;
}

static char *host_name(void)
{
	char h[256];
	if (gethostname(h, sizeof h - 1) != 0 || !h[0])
		snprintf(h, sizeof h, "localhost");
	h[sizeof h - 1] = '\0';
	return strdup(h);
}

dtask_worker *dtask_worker_new(const char *config_path, char **errmsg)
{
	char err[1024];
	dt_config *cfg = NULL;
	dtask_worker *w = NULL;

	if (errmsg)
		*errmsg = NULL;
	if (!config_path)
		return errdup(errmsg, "no configuration file given");
	int rc = dt_config_load(config_path, &cfg, err, sizeof err);
	if (rc < 0)
		return errdup(errmsg, err);
	if (!cfg->share_key || !cfg->share_key[0]) {
		snprintf(err, sizeof err, "%s: \"share_key\": missing (a worker needs it)",
			 cfg->path);
		goto fail;
	}
	if (cfg->n_distributors == 0) {
		snprintf(err, sizeof err,
			 "%s: \"distributors\": empty (a worker needs at least one [host, port])",
			 cfg->path);
		goto fail;
	}
	if (!(w = calloc(1, sizeof *w)))
		goto nomem;
	w->cfg = cfg;
	dt_mutex_init_hot(&w->lock);
	if (dt_cond_init_monotonic(&w->state_cond) || dt_cond_init_monotonic(&w->drain_cond) ||
	    dt_cond_init_monotonic(&w->health_cond) || sem_init(&w->shutdown_sem, 0, 0) != 0) {
		free(w);
		w = NULL;
		goto nomem;
	}
	atomic_init(&w->shutdown_requested, 0);
	atomic_init(&w->stopping, 0);
	atomic_init(&w->sig_exit, 0);
	/* Until the state thread has reached Redis once: "hello" says so, and
	 * no run is taken before (SPEC 5.4). */
	atomic_init(&w->redis_down, 1);
	dt_log_set_level(cfg->log_level);

	w->tls = dt_tls_new(cfg->cert, cfg->key, cfg->ca, cfg->insecure, cfg->path, err,
			    sizeof err);
	if (!w->tls)
		goto fail;
	w->link_opts.tls = w->tls;
	w->link_opts.share_key = cfg->share_key;
	w->link_opts.max_message = cfg->max_message;
	w->link_opts.handshake_timeout = cfg->handshake_timeout;
	w->link_opts.send_timeout = cfg->send_timeout;

	char *host = host_name();
	if (!host)
		goto nomem;
	if (cfg->name) {
		w->name = strdup(cfg->name);
	} else {
		size_t n = strlen(host) + 24;
		if ((w->name = malloc(n)))
			snprintf(w->name, n, "%s:%ld", host, (long)getpid());
	}
	if (cfg->watch_host) {
		w->watch_host = strdup(cfg->watch_host);
		free(host);
	} else {
		w->watch_host = host;
	}
	if (!w->name || !w->watch_host)
		goto nomem;

	if (dt_pool_new(cfg->threads, &w->pool) < 0)
		goto nomem;
	w->capacity = dt_pool_size(w->pool);

	w->n_links = cfg->n_distributors;
	if (!(w->links = calloc(w->n_links, sizeof *w->links)))
		goto nomem;
	for (size_t i = 0; i < w->n_links; i++) {
		dt_link *l = &w->links[i];
		l->w = w;
		l->index = (int)i;
		l->host = cfg->distributors[i].host;
		l->port = cfg->distributors[i].port;
		if (dt_cond_init_monotonic(&l->cond) != 0)
			goto nomem;
		pthread_mutex_init(&l->lock, NULL);
		w->links_init++;
	}
	return w;

nomem:
	snprintf(err, sizeof err, "out of memory");
fail:
	if (w)
		dtask_worker_free(w);
	else
		dt_config_free(cfg);
	return errdup(errmsg, err);
}

void dtask_worker_free(dtask_worker *w)
{
	if (!w)
		return;
	if (w->abandoned) {
		/* Threads of stuck tasks still run and will touch the worker when
		 * their function returns: leave it allocated (the process is
		 * about to exit; see worker_internal.h). */
		log_warn("worker %s: %d stuck task thread(s) still running: the worker is not freed",
			 w->name, w->abandoned);
		return;
	}
	for (size_t i = 0; i < w->n_tasks; i++)
		dt_task_free(w->tasks[i]);
	free(w->tasks);
	dt_watch_stop(w->watch); /* joined already after a run: a no-op then */
	dt_watch_free(w->watch);
	/* Tasks on the done queue are also in the table (removed only by the
	 * state thread once written), so they were freed above. */
	for (size_t i = 0; i < w->n_fns; i++)
		free(w->fns[i].name);
	free(w->fns);
	free(w->functions_json);
	for (size_t i = 0; i < w->links_init; i++) {
		pthread_cond_destroy(&w->links[i].cond);
		pthread_mutex_destroy(&w->links[i].lock);
	}
	free(w->links);
	dt_pool_free(w->pool);
	if (w->tls)
		dt_tls_free(w->tls);
	free(w->name);
	free(w->watch_host);
	pthread_cond_destroy(&w->state_cond);
	pthread_cond_destroy(&w->drain_cond);
	pthread_cond_destroy(&w->health_cond);
	pthread_mutex_destroy(&w->lock);
	sem_destroy(&w->shutdown_sem);
	dt_config_free(w->cfg);
	free(w);
}

/* What a distributor accepts in "hello": 1..255 bytes, no control
 * characters. */
static int valid_fn_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

int dtask_worker_add(dtask_worker *w, const char *function, dtask_fn fn, void *arg)
{
	if (!w || !function || !fn || w->ran)
		return DTASK_EINVAL;
	if (!valid_fn_name(function)) {
		log_error("function name \"%.64s\": 1 to 255 bytes without control characters "
			  "expected", function);
		return DTASK_EINVAL;
	}
	if (dt_worker_find_fn(w, function)) {
		log_error("function \"%s\" is already registered", function);
		return DTASK_EINVAL;
	}
	if (w->n_fns == w->cap_fns) {
		size_t ncap = w->cap_fns ? 2 * w->cap_fns : 8;
		dt_fn_entry *nf = realloc(w->fns, ncap * sizeof *nf);
		if (!nf)
			return DTASK_ENOMEM;
		w->fns = nf;
		w->cap_fns = ncap;
	}
	char *name = strdup(function);
	if (!name)
		return DTASK_ENOMEM;
	w->fns[w->n_fns].name = name;
	w->fns[w->n_fns].fn = fn;
	w->fns[w->n_fns].arg = arg;
	w->n_fns++;
	return 0;
}

const dt_fn_entry *dt_worker_find_fn(const dtask_worker *w, const char *name)
{
	for (size_t i = 0; i < w->n_fns; i++)
		if (strcmp(w->fns[i].name, name) == 0)
			return &w->fns[i];
	return NULL;
}

void dtask_worker_shutdown(dtask_worker *w)
{
	/* Async-signal-safe: an atomic store and sem_post(3). */
	if (!w)
		return;
	atomic_store(&w->shutdown_requested, 1);
	sem_post(&w->shutdown_sem);
}

/* ------------------------------------------------ the running-task table */

static dtask *table_find(dtask_worker *w, const char *id, int64_t attempt)
{
	for (size_t i = 0; i < w->n_tasks; i++)
		if (w->tasks[i]->attempt == attempt && strcmp(w->tasks[i]->id, id) == 0)
			return w->tasks[i];
	return NULL;
}

/* A pool thread: one task, start to end. */
static void run_task(void *arg)
{
	dtask *t = arg;
	dtask_worker *w = t->owner;

	dt_task_wait_released(t);
	log_debug("task %s attempt %lld: %s started", t->id, (long long)t->attempt, t->function);
	dtask_status st = t->fn->fn(t, t->fn->arg);

	/* Returned and queued in one step under w->lock: the final pass at
	 * shutdown must never see a returned task that is not queued yet. */
	pthread_mutex_lock(&w->lock);
	dt_task_mark_returned(t, (int)st);
	w->n_active--;
	/* The slot is free before the state thread hears of the end: the
	 * "free" it then sends counts it (else a report could say one slot
	 * fewer, and stand until the next one).  Under w->lock with the count
	 * of running tasks, so that a health never reports more than
	 * capacity (the pool's lock is taken inside w->lock, a leaf). */
	dt_pool_job_returning();
	t->next = NULL;
	if (w->done_tail)
		w->done_tail->next = t;
	else
		w->done_head = t;
	w->done_tail = t;
	int draining = w->draining, wake = w->state_waits;
	w->state_waits = 0;
	pthread_mutex_unlock(&w->lock);
	/* Only the first end of a batch wakes the state thread, and after the
	 * unlock, so that it does not block on w->lock at once. */
	if (wake)
		pthread_cond_signal(&w->state_cond);
	if (draining)
		pthread_cond_broadcast(&w->drain_cond);
}


int64_t dt_worker_running_attempt(dtask_worker *w, const char *id)
{
	int64_t a = 0;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n_tasks; i++)
		if (strcmp(w->tasks[i]->id, id) == 0 && w->tasks[i]->attempt > a)
			a = w->tasks[i]->attempt;
	pthread_mutex_unlock(&w->lock);
	return a;
}

void dt_worker_emit(dtask_worker *w, const dtask *t, const char *event, const char *json)
{
	if (w)
		dt_watch_event(w->watch, t->id, t->attempt, event, json);
}

const char *dt_worker_accept(dtask_worker *w, dtask *t, int *dup)
{
	const char *reason = NULL;
	*dup = 0;
	t->owner = w;
	pthread_mutex_lock(&w->lock);
	if (w->draining) {
		reason = DT_REJECT_DRAINING;
	} else if (atomic_load(&w->redis_down)) {
		reason = DT_REJECT_REDIS;
	} else if (table_find(w, t->id, t->attempt)) {
		*dup = 1;
	} else if (w->n_tasks == w->cap_tasks) {
		size_t ncap = w->cap_tasks ? 2 * w->cap_tasks : (size_t)w->capacity + 8;
		dtask **nt = realloc(w->tasks, ncap * sizeof *nt);
		if (!nt) {
			reason = DT_REJECT_FULL;
		} else {
			w->tasks = nt;
			w->cap_tasks = ncap;
		}
	}
	if (!reason && !*dup) {
		/* The slot is reserved now; the job goes to the pool (one
		 * wake-up of its thread) when the link releases it. */
		int rc = dt_pool_try_reserve(w->pool);
		if (rc == 0) {
			w->tasks[w->n_tasks++] = t;
			w->n_active++;
		} else {
			reason = rc == DTASK_ESTOPPED ? DT_REJECT_DRAINING : DT_REJECT_FULL;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return reason;
}

void dt_worker_start(dtask_worker *w, dtask **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dt_task_release(v[i]);
	int took = dt_pool_submit_reserved(w->pool, run_task, (void **)v, n);
	for (size_t i = (size_t)(took < 0 ? 0 : took); i < n; i++) {
		/* Only once the pool abandoned its queue at exit: it never runs. */
		log_error("task %s attempt %lld: the task threads are gone: not run", v[i]->id,
			  (long long)v[i]->attempt);
	}
}

int dt_worker_stop_task(dtask_worker *w, const char *id, int64_t attempt, int kind)
{
	int found = 0;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n_tasks; i++) {
		dtask *t = w->tasks[i];
		if ((attempt < 0 || t->attempt == attempt) && strcmp(t->id, id) == 0) {
			dt_task_request_stop(t, kind);
			found++;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return found;
}

int dt_worker_stop_link_tasks(dtask_worker *w, int link, int kind)
{
	int found = 0;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n_tasks; i++) {
		dtask *t = w->tasks[i];
		if (link < 0 || t->link == link) {
			dt_task_request_stop(t, kind);
			found++;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return found;
}

void dt_worker_table_remove(dtask_worker *w, dtask *const *v, size_t n)
{
	pthread_mutex_lock(&w->lock);
	for (size_t k = 0; k < n; k++) {
		for (size_t i = 0; i < w->n_tasks; i++) {
			if (w->tasks[i] == v[k]) {
				w->tasks[i] = w->tasks[--w->n_tasks];
				break;
			}
		}
	}
	pthread_mutex_unlock(&w->lock);
}

/* ------------------------------------------------------------- messages */

char *dt_worker_refs_msg(const char *type, double load, dt_free_report fr,
			 const char *const *ids, const int64_t *attempts, size_t n, size_t *len)
{
	/* Built by hand, not with json-c: it goes out with every batch of
	 * starts and ends.  Ids are checked (dt_id_valid: [A-Za-z0-9_.:-]) and
	 * the type is one of ours, so nothing needs escaping. */
	size_t cap = 128 + strlen(type), off = 0;
	for (size_t i = 0; i < n; i++)
		cap += strlen(ids[i]) + 28;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	int k;
	if (load >= 0)
		k = snprintf(out, cap, "{\"type\":\"%s\",\"load\":%.2f,\"free\":%d,\"seq\":%lld,\"tasks\":[",
			     type, load, fr.free, fr.seq);
	else
		k = snprintf(out, cap, "{\"type\":\"%s\",\"free\":%d,\"seq\":%lld,\"tasks\":[", type,
			     fr.free, fr.seq);
	if (k < 0 || (size_t)k >= cap)
		goto fail;
	off = (size_t)k;
	for (size_t i = 0; i < n; i++) {
		/* By hand too: snprintf cost more than the rest of the message. */
		size_t idlen = strlen(ids[i]);
		if (off + idlen + 28 > cap)
			goto fail;
		char *o = out + off;
		if (i)
			*o++ = ',';
		memcpy(o, "[\"", 2);
		memcpy(o + 2, ids[i], idlen);
		o += 2 + idlen;
		memcpy(o, "\",", 2);
		o += 2;
		o += dt_fmt_i64(o, attempts[i]);
		*o++ = ']';
		off = (size_t)(o - out);
	}
	if (off + 3 > cap)
		goto fail;
	memcpy(out + off, "]}", 3);
	*len = off + 2;
	return out;
fail:
	free(out);
	return NULL;
}

char *dt_worker_tasks_msg(const char *type, double load, dt_free_report fr, dtask *const *tasks,
			  size_t n, size_t *len)
{
	const char **ids = n ? malloc(n * sizeof *ids) : NULL;
	int64_t *attempts = n ? malloc(n * sizeof *attempts) : NULL;
	char *out = NULL;
	if (n && (!ids || !attempts))
		goto done;
	for (size_t i = 0; i < n; i++) {
		ids[i] = tasks[i]->id;
		attempts[i] = tasks[i]->attempt;
	}
	out = dt_worker_refs_msg(type, load, fr, ids, attempts, n, len);
done:
	free(ids);
	free(attempts);
	return out;
}

/* --------------------------------------------------------------- threads */

static void *signal_main(void *arg)
{
	dtask_worker *w = arg;
	for (;;) {
		int sig = dt_signals_wait();
		if (atomic_load(&w->sig_exit))
			break;
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("worker %s: %s: draining", w->name,
				 sig == SIGTERM ? "SIGTERM" : "SIGINT");
			dtask_worker_shutdown(w);
		} else if (sig == SIGHUP) {
			dt_log_reopen();
			log_info("worker %s: SIGHUP: log reopened", w->name);
		} else if (sig < 0) {
			dt_sleep_ms(100); /* never spin on a failing sigwait */
		}
	}
	return NULL;
}

static int start_thread(pthread_t *tid, void *(*fn)(void *), void *arg, const char *what)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, DT_WORKER_STACK);
	int e = pthread_create(tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (e) {
		log_error("cannot start the %s thread: %s", what, strerror(e));
		return DTASK_EIO;
	}
	return 0;
}

static char *functions_json(const dtask_worker *w)
{
	json_object *a = json_object_new_array();
	char *out = NULL;
	if (!a)
		return NULL;
	for (size_t i = 0; i < w->n_fns; i++)
		json_object_array_add(a, json_object_new_string(w->fns[i].name));
	const char *s = json_object_to_json_string_ext(
		a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s)
		out = strdup(s);
	json_object_put(a);
	return out;
}

/* Wait until dtask_worker_shutdown(). */
static void wait_shutdown(dtask_worker *w)
{
	while (!atomic_load(&w->shutdown_requested)) {
		if (sem_wait(&w->shutdown_sem) != 0 && errno != EINTR) {
			log_error("sem_wait: %s", strerror(errno));
			dt_sleep_ms(100);
		}
	}
}

dt_free_report dt_worker_free_report(dtask_worker *w)
{
	dt_free_report r;
	r.free = dt_pool_free_slots_seq(w->pool, &r.seq);
	if (atomic_load(&w->no_slots))
		r.free = 0;
	return r;
}

/* Stop taking runs, tell every distributor (a "health" with no free slot,
 * sent before any task is stopped: on each connection it arrives before the
 * "stopped" of those tasks, so no distributor places them here again), ask
 * every task to stop, and wait up to stop_grace for them to return. */
static void drain(dtask_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->draining = 1;
	atomic_store(&w->no_slots, 1);
	double load = w->capacity > 0 ? (double)w->n_active / (double)w->capacity : 0.0;
	size_t len = 0;
	char *msg = dt_worker_tasks_msg(DT_MSG_HEALTH, load, dt_worker_free_report(w), w->tasks,
					w->n_tasks, &len);
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; msg && i < w->n_links; i++)
		dt_link_send(&w->links[i], msg, len);
	free(msg);

	pthread_mutex_lock(&w->lock);
	int n = w->n_active;
	for (size_t i = 0; i < w->n_tasks; i++)
		dt_task_request_stop(w->tasks[i], DT_STOP_SHUTDOWN);
	if (n > 0)
		log_info("worker %s: stopping %d running task(s); waiting up to %d ms", w->name, n,
			 w->cfg->stop_grace);
	struct timespec deadline;
	dt_deadline(&deadline, w->cfg->stop_grace);
	while (w->n_active > 0) {
		if (pthread_cond_timedwait(&w->drain_cond, &w->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (w->n_active > 0)
		log_warn("worker %s: %d task(s) did not stop within stop_grace (%d ms)", w->name,
			 w->n_active, w->cfg->stop_grace);
	pthread_mutex_unlock(&w->lock);
}

static void stop_threads(dtask_worker *w)
{
	/* The state thread's final pass: last ends, STOPPED for stuck tasks,
	 * "ended"/"stopped", worker DOWN. */
	pthread_mutex_lock(&w->lock);
	w->draining = 1;
	w->state_final = 1;
	w->health_stop = 1;
	pthread_cond_broadcast(&w->state_cond);
	pthread_cond_broadcast(&w->health_cond);
	pthread_mutex_unlock(&w->lock);
	if (w->state_started)
		pthread_join(w->state_tid, NULL);
	if (w->health_started)
		pthread_join(w->health_tid, NULL);

	/* The final states are sent: the watchers go now. */
	dt_watch_stop(w->watch);

	atomic_store(&w->stopping, 1);
	for (size_t i = 0; i < w->n_links; i++)
		dt_link_stop(&w->links[i]);
	for (size_t i = 0; i < w->n_links; i++) {
		if (w->links[i].started) {
			pthread_join(w->links[i].tid, NULL);
			w->links[i].started = 0;
		}
	}

	dt_pool_stop(w->pool);
	int abandoned;
	pthread_mutex_lock(&w->lock);
	abandoned = w->abandoned;
	pthread_mutex_unlock(&w->lock);
	int detached = dt_pool_join(w->pool, abandoned > 0);
	if (detached)
		log_warn("worker %s: %d task thread(s) left running (stuck); they end with the process",
			 w->name, detached);

	if (w->sig_started) {
		atomic_store(&w->sig_exit, 1);
		pthread_kill(w->sig_tid, SIGTERM);
		pthread_join(w->sig_tid, NULL);
	}
}

int dtask_worker_run(dtask_worker *w)
{
	char err[512];
	int rc = 0;

	if (!w || w->ran)
		return DTASK_EINVAL;
	w->ran = 1;
	if (w->n_fns == 0)
		log_warn("worker %s: no function registered: every run will be rejected", w->name);
	if (!(w->functions_json = functions_json(w)))
		return DTASK_ENOMEM;

	dt_signals_block();
	if (start_thread(&w->sig_tid, signal_main, w, "signal") == 0)
		w->sig_started = 1;
	else
		rc = DTASK_EIO;

	if (rc == 0 && (rc = dt_pool_start(w->pool, 0, err, sizeof err)) < 0)
		log_error("worker %s: %s", w->name, err);
	if (rc == 0) {
		/* Before the links: "hello" and the worker record carry its port. */
		int wrc = dt_watch_start(w, &w->watch, err, sizeof err);
		if (wrc == DTASK_ECONFIG) {
			log_warn("worker %s: %s", w->name, err);
		} else if (wrc < 0) {
			log_error("worker %s: watcher listener: %s", w->name, err);
			rc = wrc;
		} else {
			log_info("worker %s: watchers connect to %s:%d", w->name, w->watch_host,
				 dt_watch_port(w->watch));
		}
	}
	if (rc == 0) {
		if ((rc = start_thread(&w->state_tid, dt_state_main, w, "state")) == 0)
			w->state_started = 1;
	}
	for (size_t i = 0; rc == 0 && i < w->n_links; i++) {
		if ((rc = start_thread(&w->links[i].tid, dt_link_main, &w->links[i], "link")) == 0)
			w->links[i].started = 1;
	}
	if (rc == 0) {
		if ((rc = start_thread(&w->health_tid, dt_health_main, w, "health")) == 0)
			w->health_started = 1;
	}

	if (rc == 0) {
		log_info("worker %s: %d task thread(s), %zu distributor(s), functions %s", w->name,
			 w->capacity, w->n_links, w->functions_json);
		wait_shutdown(w);
		drain(w);
	}
	stop_threads(w);
	if (rc == 0)
		log_info("worker %s: stopped", w->name);
	return rc;
}
