/*
 * health.c - the health-check thread (SPEC 5.3).
 *
 * DESIGN
 *   Every health_interval / 2 it looks at every connected worker's last
 *   message time (wlink.last_rx, written by its link thread) and shuts down
 *   the connection of one that sent nothing for health_interval x
 *   health_misses: its link thread then sees the close and hands its tasks
 *   to the sweep thread (link.c).  It sends nothing and reads nothing, so
 *   no peer can block it; each link thread sends its own "health", so a
 *   stalled worker delays no other worker's.
 *
 * Locks: d->lock while it walks the links (dt_conn_shutdown takes none).
 */
#include "build-config.h"

#include <stdatomic.h>

#include "distributor.h"
#include "log.h"
#include "util.h"

void *dt_health_main(void *arg)
{
	dist *d = arg;
	int64_t dead_after = (int64_t)d->cfg->health_interval * d->cfg->health_misses;
	int period = d->cfg->health_interval / 2 > 0 ? d->cfg->health_interval / 2 : 1;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct timespec ts;
		dt_deadline(&ts, period);
		while (!d->stopping && pthread_cond_timedwait(&d->hcond, &d->lock, &ts) == 0)
			;
		if (d->stopping)
			break;
		int64_t now = dt_mono_ms();
		for (wlink *l = d->links; l; l = l->next) {
			int64_t silent = now - atomic_load(&l->last_rx);
			if (l->alive && silent >= dead_after) {
				log_warn("worker %s: nothing received for %lld ms (%d health intervals): dropping it",
					 l->name, (long long)silent, d->cfg->health_misses);
				l->alive = 0; /* no more placements; its thread cleans up */
				dt_conn_shutdown(l->conn);
			}
		}
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}
