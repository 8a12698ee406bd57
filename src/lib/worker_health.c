/*
 * worker_health.c - the worker's health-check thread (SPEC 5.3).
 *
 * DESIGN
 *   Every health_interval / 2 it looks at each connected link's last
 *   message time (dt_link.last_rx, written by its link thread) and shuts
 *   down the connection of a distributor that sent nothing for
 *   health_interval x health_misses; that link thread then sees the close,
 *   stops the distributor's tasks and reconnects (worker_link.c).  It sends
 *   nothing, so no peer can block it; each link thread sends its own
 *   "health", so a stalled distributor delays no other one's.
 *   Threads: this thread alone; the main thread stops it (w->health_stop,
 *   w->health_cond) and joins it.
 *   Locks: w->lock only for its wait; each link's lock to look at its
 *   published connection (never both at once).
 */
#include "build-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "dtask.h"
#include "log.h"
#include "util.h"
#include "worker_internal.h"

void *dt_health_main(void *arg)
{
	dtask_worker *w = arg;
	int64_t dead_after = (int64_t)w->cfg->health_interval * w->cfg->health_misses;
	int period = w->cfg->health_interval / 2 > 0 ? w->cfg->health_interval / 2 : 1;
	struct timespec deadline;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		dt_deadline(&deadline, period);
		while (!w->health_stop) {
			if (pthread_cond_timedwait(&w->health_cond, &w->lock, &deadline) == ETIMEDOUT)
				break;
		}
		int stop = w->health_stop;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;

		int64_t now = dt_mono_ms();
		for (size_t i = 0; i < w->n_links; i++) {
			dt_link *l = &w->links[i];
			pthread_mutex_lock(&l->lock);
			int64_t silent = now - atomic_load(&l->last_rx);
			if (l->conn && silent >= dead_after) {
				log_warn("%s: nothing received for %lld ms (health_interval x health_misses): closing",
					 dt_conn_name(l->conn), (long long)silent);
				dt_conn_shutdown(l->conn);
			}
			pthread_mutex_unlock(&l->lock);
		}
	}
	return NULL;
}
