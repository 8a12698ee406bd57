/*
 * sweep.c - the sweep thread: every requeue, and the periodic sweeps.
 *
 * DESIGN (SPEC 5.1)
 *   Jobs: link threads post requeues (a worker stopped tasks, rejected a
 *   run, or was lost), unclaims and DOWN flags; the thread runs each batch
 *   of jobs in one pipeline as soon as it is posted.  Jobs survive a Redis
 *   outage: they are kept and retried.
 *   Every loop_interval: refresh distributor-<name>; refresh, fenced, the
 *   tasks listed by workers that said "redis_down" (SPEC 5.4); requeue what
 *   `running` shows as STOPPED (score 0) or silent for task_timeout (a
 *   heartbeat lease, not a limit on run time) -- silent ones only once this
 *   thread has been connected to Redis for task_timeout, so that after an
 *   outage the workers get time to refresh, and never a task that a
 *   connected worker lists in its health or holds from us.  The query
 *   (stale.lua) returns only what is stale, so a sweep costs what is
 *   stale, not what exists.
 *   Every check_all_interval: return the in-flight items of distributors
 *   whose record is older than distributor_timeout, and delete the records
 *   of workers DOWN for longer than down_clear_interval.
 *
 * Redis: the thread's own dt_store.  Locks: d->jlock for the job list;
 * d->lock (alone) to read the links' task lists.
 */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributor.h"
#include "dtask.h"
#include "log.h"
#include "proto.h"
#include "store.h"
#include "util.h"

#define STALE_LIMIT 1000

void dt_sweep_post(dist *d, const dt_job *job)
{
	dt_job *j = malloc(sizeof *j);
	if (!j) {
		log_error("out of memory: a %s of task %s is lost until the next sweep",
			  job->kind == JOB_WORKER_DOWN ? "DOWN flag" : "requeue", job->id);
		return;
	}
	*j = *job;
	j->next = NULL;
	pthread_mutex_lock(&d->jlock);
	*d->jtail = j;
	d->jtail = &j->next;
	pthread_cond_signal(&d->jcond);
	pthread_mutex_unlock(&d->jlock);
}

void dt_sweep_stop(dist *d)
{
	pthread_mutex_lock(&d->jlock);
	d->sweep_stop = 1;
	pthread_cond_signal(&d->jcond);
	pthread_mutex_unlock(&d->jlock);
}

/* Put jobs back at the front (Redis failed). */
static void requeue_jobs(dist *d, dt_job *list)
{
	if (!list)
		return;
	dt_job *last = list;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&d->jlock);
	last->next = d->jobs;
	if (!d->jobs)
		d->jtail = &last->next;
	d->jobs = list;
	pthread_mutex_unlock(&d->jlock);
}

static void free_jobs(dt_job *j)
{
	while (j) {
		dt_job *n = j->next;
		free(j);
		j = n;
	}
}

/* Run a list of jobs: every requeue in one pipeline, then the DOWN flags. */
static int run_jobs(dist *d, dt_store *st, dt_batch *b, dt_job *jobs, char *err, size_t errlen)
{
	if (!jobs)
		return 0;
	size_t n = 0;
	for (dt_job *j = jobs; j; j = j->next)
		n += j->kind != JOB_WORKER_DOWN;
	dt_requeue_req *q = calloc(n ? n : 1, sizeof *q);
	dt_requeue_res *r = calloc(n ? n : 1, sizeof *r);
	int rc = 0;
	if (!q || !r) {
		free(q);
		free(r);
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	}
	size_t k = 0;
	for (dt_job *j = jobs; j; j = j->next) {
		if (j->kind == JOB_WORKER_DOWN)
			continue;
		q[k++] = (dt_requeue_req){ j->id, j->attempt, j->reason,
					   j->kind == JOB_UNCLAIM ? DT_RQ_NOW : j->flags, -1 };
	}
	if (n) {
		rc = dt_batch_requeue(b, q, n, d->cfg->task_timeout, r);
		if (!rc)
			rc = dt_batch_exec(b, err, errlen);
	}
	if (rc == 0) {
		k = 0;
		for (dt_job *j = jobs; j; j = j->next) {
			if (j->kind == JOB_WORKER_DOWN)
				continue;
			if (r[k].status == DT_RQ_REQUEUED)
				log_info("task %s requeued (%s)", j->id, j->reason);
			else if (r[k].status == DT_RQ_ENDED)
				log_warn("task %s ended instead of requeued (%s): see its error", j->id,
					 j->reason);
			else
				log_debug("task %s not requeued: it is %s", j->id, r[k].state);
			k++;
		}
		for (dt_job *j = jobs; j && rc == 0; j = j->next)
			if (j->kind == JOB_WORKER_DOWN)
				rc = dt_store_worker_down(st, j->name, err, errlen);
	}
	free(q);
	free(r);
	return rc;
}

/* Requeue what `running` shows as stopped or silent. */
static int sweep_stale(dist *d, dt_store *st, dt_batch *b, char *err, size_t errlen)
{
	const dt_config *cfg = d->cfg;
	dt_stale *v = NULL;
	size_t n = 0;
	int rc = dt_store_stale(st, cfg->task_timeout, STALE_LIMIT, &v, &n, NULL, err, errlen);
	if (rc < 0 || n == 0) {
		dt_stale_free(v, n); /* the store may hand over an empty array */
		return rc;
	}
	int64_t since = dt_store_connected_since(st);
	int settled = since >= 0 && dt_mono_ms() - since >= cfg->task_timeout;
	dt_requeue_req *q = calloc(n, sizeof *q);
	dt_requeue_res *r = calloc(n, sizeof *r);
	size_t k = 0;
	if (!q || !r) {
		free(q);
		free(r);
		dt_stale_free(v, n);
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < n; i++) {
		int stopped = v[i].update == 0;
		if (!stopped) {
			if (!settled)
				continue;
			int held = 0;
			for (wlink *l = d->links; l && !held; l = l->next)
				held = dt_tset_has_id(&l->listed, v[i].id) ||
				       dt_tset_has_id(&l->tasks, v[i].id);
			if (held)
				continue;
		}
		q[k++] = (dt_requeue_req){ v[i].id, -1, stopped ? "stopped" : "no heartbeat for task_timeout",
					   stopped ? 0 : DT_RQ_COUNT_FAILURE, -1 };
	}
	pthread_mutex_unlock(&d->lock);
	if (k) {
		rc = dt_batch_requeue(b, q, k, cfg->task_timeout, r);
		if (!rc)
			rc = dt_batch_exec(b, err, errlen);
		for (size_t i = 0; rc == 0 && i < k; i++) {
			if (r[i].status == DT_RQ_REQUEUED)
				log_info("sweep: task %s requeued (%s)", q[i].id, q[i].reason);
			else if (r[i].status == DT_RQ_ENDED)
				log_warn("sweep: task %s ended instead of requeued (%s)", q[i].id,
					 q[i].reason);
		}
	}
	free(q);
	free(r);
	dt_stale_free(v, n);
	return rc;
}

/* SPEC 5.4: for each worker that lost Redis, refresh (fenced, as its own
 * heartbeat would) the update of the tasks its last "health" listed, so
 * no sweep anywhere takes them for stale while it cannot.  What the
 * heartbeat answers for a task (request=stop or cancel, or a record that
 * moved on to another attempt) goes to that worker as a "stop": it stops
 * the copy and reports it, and the requeue honours the request. */
static int relay_heartbeats(dist *d, dt_store *st, char *err, size_t errlen)
{
	size_t n = 0, cap = 0;
	dt_task_ref *refs = NULL;
	wlink **owner = NULL;
	int rc = 0;
	pthread_mutex_lock(&d->lock);
	for (wlink *l = d->links; l && rc == 0; l = l->next) {
		if (!l->redis_down || !l->alive)
			continue;
		for (size_t i = 0; i < l->listed.n; i++) {
			if (n == cap) {
				size_t ncap = cap ? 2 * cap : 64;
				dt_task_ref *nr = realloc(refs, ncap * sizeof *nr);
				if (nr)
					refs = nr;
				wlink **no = nr ? realloc(owner, ncap * sizeof *no) : NULL;
				if (!nr || !no) {
					rc = dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
					break;
				}
				owner = no;
				cap = ncap;
			}
			refs[n].id = strdup(l->listed.v[i].id);
			refs[n].attempt = l->listed.v[i].attempt;
			if (!refs[n].id) {
				rc = dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
				break;
			}
			owner[n] = l;
			l->refs++; /* its conn stays valid until unref */
			n++;
		}
	}
	pthread_mutex_unlock(&d->lock);
	int *res = n ? calloc(n, sizeof *res) : NULL;
	if (rc == 0 && n > 0) {
		if (!res)
			rc = dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		else
			rc = dt_store_heartbeat(st, refs, n, res, err, errlen);
		if (rc == 0)
			log_debug("refreshed %zu task(s) for workers that lost Redis", n);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *why = res[i] == DT_HB_STOP     ? "request=stop"
				  : res[i] == DT_HB_CANCEL ? "request=cancel"
				  : res[i] == DT_HB_FENCED ? "its record moved on to another attempt"
							   : NULL;
		if (!why)
			continue;
		char msg[DT_ID_MAXLEN + 200];
		int len = snprintf(msg, sizeof msg,
				   "{\"type\":\"" DT_MSG_STOP "\",\"id\":\"%s\",\"attempt\":%lld,"
				   "\"reason\":\"%s (relayed: the worker lost Redis)\"}",
				   refs[i].id, (long long)refs[i].attempt, why);
		if (len > 0 && (size_t)len < sizeof msg &&
		    dt_conn_send(owner[i]->conn, msg, (size_t)len) == 0)
			log_info("task %s attempt %lld: %s: stop sent to worker %s, which lost Redis",
				 refs[i].id, (long long)refs[i].attempt, why, owner[i]->name);
	}
	free(res);
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < n; i++)
		dt_link_unref(d, owner[i]);
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n; i++)
		free((char *)refs[i].id);
	free(refs);
	free(owner);
	return rc;
}

/* Other distributors that stopped refreshing their record; old DOWN workers. */
static int check_all(dist *d, dt_store *st, char *err, size_t errlen)
{
	const dt_config *cfg = d->cfg;
	dt_strv names;
	int rc = dt_store_members(st, "distributors", &names, err, errlen);
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		if (strcmp(names.v[i], d->name) == 0)
			continue;
		int64_t cnt = -1;
		rc = dt_store_recover_distributor(st, names.v[i], cfg->distributor_timeout, &cnt, err,
						  errlen);
		if (rc == 0 && cnt > 0)
			log_warn("distributor %s is silent for distributor_timeout: returned its %lld in-flight item(s) to new-task",
				 names.v[i], (long long)cnt);
	}
	dt_strv_free(&names);
	if (rc < 0)
		return rc;
	rc = dt_store_members(st, "workers", &names, err, errlen);
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		int cleared = 0;
		rc = dt_store_worker_clear(st, names.v[i], cfg->down_clear_interval, &cleared, err,
					   errlen);
		if (rc == 0 && cleared)
			log_info("worker %s: DOWN for down_clear_interval: record removed", names.v[i]);
	}
	dt_strv_free(&names);
	return rc;
}

/* What is due of the loop_interval and check_all_interval work. */
static int periodic(dist *d, dt_store *st, dt_batch *b, int64_t *next_loop, int64_t *next_all,
		    char *err, size_t errlen)
{
	const dt_config *cfg = d->cfg;
	int64_t now = dt_mono_ms();
	int rc = 0;
	if (now >= *next_loop) {
		int recovered = 0;
		rc = dt_store_touch_distributor(st, d->name, &recovered, err, errlen);
		if (rc == 0 && recovered)
			log_warn("distributor-%s was marked DOWN by another distributor, which returned our in-flight items",
				 d->name);
		if (rc == 0)
			rc = relay_heartbeats(d, st, err, errlen);
		if (rc == 0)
			rc = sweep_stale(d, st, b, err, errlen);
		*next_loop = now + cfg->loop_interval;
	}
	if (rc == 0 && now >= *next_all) {
		rc = check_all(d, st, err, errlen);
		*next_all = now + cfg->check_all_interval;
	}
	return rc;
}

void *dt_sweep_main(void *arg)
{
	dist *d = arg;
	const dt_config *cfg = d->cfg;
	dt_store *st = NULL;
	dt_batch *b = NULL;
	char err[512];
	int down = 0;

	if (dt_store_new(&cfg->redis, &st, err, sizeof err) < 0 || !(b = dt_batch_new(st))) {
		log_error("sweep: %s", err);
		dt_store_free(st);
		return NULL;
	}
	int64_t next_loop = dt_mono_ms(), next_all = dt_mono_ms() + cfg->check_all_interval;
	int64_t hold_until = 0; /* after a Redis failure, kept jobs wait too */
	for (;;) {
		pthread_mutex_lock(&d->jlock);
		for (;;) {
			int64_t now = dt_mono_ms();
			if (d->sweep_stop || now >= next_loop || (d->jobs && now >= hold_until))
				break;
			int64_t until = d->jobs && hold_until < next_loop ? hold_until : next_loop;
			struct timespec ts;
			dt_deadline(&ts, until - now);
			pthread_cond_timedwait(&d->jcond, &d->jlock, &ts);
		}
		dt_job *jobs = d->jobs;
		d->jobs = NULL;
		d->jtail = &d->jobs;
		int stop = d->sweep_stop;
		pthread_mutex_unlock(&d->jlock);

		int rc = run_jobs(d, st, b, jobs, err, sizeof err);
		if (rc < 0)
			requeue_jobs(d, jobs); /* retried after the next wait */
		else
			free_jobs(jobs);
		if (stop)
			break;
		if (rc == 0)
			rc = periodic(d, st, b, &next_loop, &next_all, err, sizeof err);
		if (rc < 0) {
			if (!down++)
				log_error("sweep: Redis: %s (retrying)", err);
			int64_t wait = cfg->loop_interval < 1000 ? cfg->loop_interval : 1000;
			next_loop = dt_mono_ms() + wait;
			hold_until = next_loop;
		} else if (down) {
			log_notice("sweep: Redis is back");
			down = 0;
		}
	}
	/* Whatever could not be written stays for the sweeps of others. */
	pthread_mutex_lock(&d->jlock);
	dt_job *left = d->jobs;
	d->jobs = NULL;
	d->jtail = &d->jobs;
	pthread_mutex_unlock(&d->jlock);
	if (left) {
		if (run_jobs(d, st, b, left, err, sizeof err) < 0)
			log_warn("sweep: could not write the last requeues (%s): the sweeps of other distributors will",
				 err);
		free_jobs(left);
	}
	dt_batch_free(b);
	dt_store_free(st);
	return NULL;
}
