/*
 * distributor.h - dtask-distributor's shared state.
 *
 * DESIGN (SPEC 5.1; one file per thread role):
 *   main.c    the main thread: configuration, daemon, signals, start/stop.
 *   link.c    the accept thread and one thread per connected worker (the
 *             dt_server of server.c): hello, started/ended/stopped/reject,
 *             health; a link's death hands its tasks to the sweep thread.
 *   queue.c   the queue thread: takes tasks only while connected workers
 *             have free slots, claims/parks/rejects them in one script
 *             call, sends "run" in one send per worker.
 *   health.c  the health-check thread: drops a worker that sent nothing
 *             for health_interval x health_misses.  Each link thread sends
 *             its own "health" (SPEC 5.3: a stalled peer delays no other).
 *   sweep.c   the sweep thread: requeues (jobs posted by link threads, and
 *             stale or STOPPED tasks found in `running`), refreshes this
 *             distributor's record, recovers dead distributors, clears old
 *             DOWN workers.
 *   Redis: only the queue thread and the sweep thread talk to Redis, each
 *   with its own dt_store (never shared).  Link and health threads never do.
 *
 * LOCKS, in the only order they may nest:
 *   1. d->lock    the list of links, every link's counters, task set and
 *                 health list, d->stopping.  Never held across I/O (no send,
 *                 no Redis call while it is held).
 *   2. d->jlock   the sweep thread's job queue (taken under d->lock only to
 *                 post jobs).
 *   3. a connection's send lock (conn.c): a leaf, taken by dt_conn_send*
 *                 with no other lock held.
 * A link is kept alive while other threads send to it by its refs count
 * (under d->lock); its thread frees nothing until refs is 0.
 */
#ifndef DT_DISTRIBUTOR_H
#define DT_DISTRIBUTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conf.h"
#include "conn.h"
#include "server.h"
#include "tls.h"

#define DT_ID_MAXLEN 128

typedef struct dt_tref {
	char id[DT_ID_MAXLEN + 1];
	int64_t attempt;
} dt_tref;

/* A growable list of (id, attempt). */
typedef struct dt_tset {
	dt_tref *v;
	size_t n, cap;
} dt_tset;

int dt_tset_add(dt_tset *s, const char *id, int64_t attempt);
/* Removes (id, attempt); 1 if it was there. */
int dt_tset_remove(dt_tset *s, const char *id, int64_t attempt);
int dt_tset_has_id(const dt_tset *s, const char *id);
void dt_tset_free(dt_tset *s);

typedef struct wlink {
	struct dist *d;
	dt_conn *conn;
	char name[256];
	char host[256];
	int port;
	int capacity;
	char **functions;
	size_t nfunctions;
	/* under d->lock */
	int alive;            /* registered and not dying */
	int draining;         /* it said so: send it nothing more */
	int redis_down;       /* it lost Redis (SPEC 5.4): no runs; its listed
				 tasks' update is refreshed for it (sweep.c) */
	int reported_free;    /* "free" of its newest report (highest "seq") */
	long long free_seq;   /* that report's "seq" */
	int outstanding;      /* runs sent and not yet answered (started/reject) */
	double load;
	int refs;             /* other threads using conn */
	_Atomic int64_t last_rx; /* dt_mono_ms() of its last message (any thread) */
	dt_tset tasks;        /* tasks this distributor gave it, not yet ended */
	dt_tset listed;       /* the tasks its latest "health" listed */
	struct wlink *next;
} wlink;

/* Jobs for the sweep thread. */
enum dt_job_kind { JOB_REQUEUE, JOB_UNCLAIM, JOB_WORKER_DOWN };
typedef struct dt_job {
	int kind;
	char id[DT_ID_MAXLEN + 1];
	char name[256];            /* JOB_WORKER_DOWN: the worker's name */
	int64_t attempt;
	unsigned flags;            /* dt_rq_flags for JOB_REQUEUE */
	char reason[96];
	struct dt_job *next;
} dt_job;

typedef struct dist {
	dt_config *cfg;
	dt_tls *tls;
	char name[256];
	dt_server *server;
	int port;                 /* as really bound */

	pthread_mutex_t lock;     /* 1 */
	pthread_cond_t slots;     /* queue thread: free slots may have appeared */
	pthread_cond_t unref;     /* a link's refs dropped */
	pthread_cond_t hcond;     /* the health thread's timer (woken at stop) */
	wlink *links;
	int stopping;
	int nlinks;

	pthread_mutex_t jlock;    /* 2 */
	pthread_cond_t jcond;
	dt_job *jobs, **jtail;
	int sweep_stop;

	pthread_t queue_tid, health_tid, sweep_tid;
	int queue_started, health_started, sweep_started;
} dist;

/* link.c */
void dt_link_serve(dt_conn *c, void *arg);  /* the dt_server handler */
/* Free slots for placement: reported free minus runs in flight. */
int dt_link_free(const wlink *l);
int dt_link_has_function(const wlink *l, const char *function);
/* Under d->lock: a link's refs back to what it was; wakes its thread. */
void dt_link_unref(dist *d, wlink *l);

/* sweep.c */
void dt_sweep_post(dist *d, const dt_job *job);  /* copies job */
void *dt_sweep_main(void *arg);
void dt_sweep_stop(dist *d);

/* queue.c */
void *dt_queue_main(void *arg);

/* health.c */
void *dt_health_main(void *arg);

#endif
