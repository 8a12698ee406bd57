/*
 * health.c - the health thread: {"type":"health"} to every connected
 * worker each health_interval (SPEC 5.3), so a worker can tell a live
 * distributor from a dead one.  The other direction -- a worker that sends
 * nothing for health_interval x health_misses is dropped -- is watched by
 * each link's own thread (link.c).
 *
 * Locks: d->lock to take references on the links (never held while
 * sending); the sends take each connection's own lock.
 */
#include "build-config.h"

#include <stdlib.h>

#include "distributor.h"
#include "log.h"
#include "util.h"

void *dt_health_main(void *arg)
{
	dist *d = arg;
	static const char msg[] = "{\"type\":\"health\"}\n";
	wlink **v = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct timespec ts;
		dt_deadline(&ts, d->cfg->health_interval);
		while (!d->stopping && pthread_cond_timedwait(&d->hcond, &d->lock, &ts) == 0)
			;
		if (d->stopping)
			break;
		size_t n = 0;
		for (wlink *l = d->links; l; l = l->next) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 32;
				wlink **nv = realloc(v, ncap * sizeof *nv);
				if (!nv)
					break;
				v = nv;
				cap = ncap;
			}
			l->refs++;
			v[n++] = l;
		}
		pthread_mutex_unlock(&d->lock);
		for (size_t i = 0; i < n; i++)
			dt_conn_send_raw(v[i]->conn, msg, sizeof msg - 1);
		pthread_mutex_lock(&d->lock);
		for (size_t i = 0; i < n; i++)
			dt_link_unref(d, v[i]);
	}
	pthread_mutex_unlock(&d->lock);
	free(v);
	return NULL;
}
