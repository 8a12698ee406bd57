/*
 * worker_health.c - the worker's health thread (SPEC 5.3).
 *
 * DESIGN
 *   Owns: nothing but its loop.  Every health_interval it sends each
 *   connected link {"type":"health","load":F,"free":N,"tasks":[[id,attempt],
 *   ...]} listing every task in the running table (from any distributor:
 *   the sweeps never requeue a task a healthy worker lists).
 *   Threads: this thread alone; the main thread stops it (w->health_stop,
 *   w->health_cond) and joins it.
 *   Locks: w->lock while it waits and while it builds the message (so the
 *   task pointers it reads cannot be freed); then, with no lock held, one
 *   dt_link_send() per link (which takes that link's lock only to borrow
 *   its connection).  A stalled distributor delays only its own health:
 *   each send is bounded by send_timeout, and a failed send drops only
 *   that link.
 */
#include "build-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "dtask.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "util.h"
#include "worker_internal.h"

void *dt_health_main(void *arg)
{
	dtask_worker *w = arg;
	int interval = w->cfg->health_interval;
	struct timespec deadline;

	dt_deadline(&deadline, interval);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->health_stop) {
			if (pthread_cond_timedwait(&w->health_cond, &w->lock, &deadline) == ETIMEDOUT)
				break;
		}
		if (w->health_stop)
			break;
		dt_deadline(&deadline, interval);

		double load = w->capacity > 0 ? (double)w->n_active / (double)w->capacity : 0.0;
		size_t len = 0;
		char *msg = dt_worker_tasks_msg(DT_MSG_HEALTH, load, dt_worker_free_report(w),
						w->tasks, w->n_tasks, &len);
		pthread_mutex_unlock(&w->lock);

		if (!msg)
			log_error("worker %s: out of memory for \"health\"", w->name);
		for (size_t i = 0; msg && i < w->n_links; i++) {
			int rc = dt_link_send(&w->links[i], msg, len);
			if (rc < 0 && rc != DTASK_ECLOSED)
				log_debug("worker %s: health to distributor %s:%d: %s", w->name,
					  w->links[i].host, w->links[i].port, dtask_strerror(rc));
		}
		free(msg);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}
