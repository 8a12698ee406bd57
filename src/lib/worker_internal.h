/*
 * worker_internal.h - the worker runtime's shared state (dtask_worker),
 * shared by worker.c (life cycle, running-task table, drain), worker_link.c
 * (one thread per distributor), worker_state.c (the only thread that talks
 * to Redis) and worker_health.c (the health thread).
 *
 * THREADS (all started and joined by dtask_worker_run()):
 *   main      dtask_worker_run(): starts everything, waits for shutdown,
 *             drains, joins.
 *   signal    takes SIGTERM/SIGINT (-> shutdown) and SIGHUP (-> reopen the
 *             log) with dt_signals_wait(); woken at the end by pthread_kill.
 *   link[i]   one per configured distributor: connects, says hello, reads
 *             (the only reader of its connection), accepts runs and stops.
 *   state     the only thread with a Redis connection (its own dt_store):
 *             registers the worker, writes ends (finish), heartbeats, worker
 *             updates; sends "ended"/"stopped".
 *   health    every health_interval, "health" to every connected link.
 *   pool      N task threads (pool.c) running the task functions.
 * The one exception to "every thread is joined": at shutdown, a task whose
 * function has not returned within stop_grace of being told to stop is
 * written STOPPED, logged as stuck and its pool thread is detached, not
 * joined (it cannot be interrupted); the worker is then never freed (that
 * thread still uses it) and the process is expected to exit.
 *
 * LOCK ORDER (a lock may be taken while holding the ones before it only):
 *   1. w->lock       the running-task table, the done queue, the counters
 *                    and the phase flags below.
 *   2. t->lock       a task's flags (task_internal.h), or
 *      pool->lock    the pool's (pool.c)           -- both leaves.
 *   link->lock       a link's conn pointer and users count: never held
 *                    together with w->lock, nor while sending.
 *   conn send_lock   (conn.c) a leaf, taken inside dt_conn_send*: no lock
 *                    of ours is ever held while sending (copy what is
 *                    needed, unlock, then send).
 * A hiredis context is never shared: only the state thread has one.
 */
#ifndef DT_WORKER_INTERNAL_H
#define DT_WORKER_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "conn.h"
#include "dtask.h"
#include "pool.h"
#include "task_internal.h"
#include "tls.h"

/* Stack of the worker's own threads (not the task threads, which get the
 * system default: task functions are the user's code). */
#define DT_WORKER_STACK (256 * 1024)

typedef struct dt_link {
	dtask_worker *w;
	int index;
	const char *host;      /* the cfg's distributors[index] */
	int port;
	pthread_t tid;
	int started;           /* tid is valid (main thread only) */

	pthread_mutex_t lock;
	pthread_cond_t cond;   /* monotonic: backoff sleep, users == 0 */
	dt_conn *conn;         /* published once "hello" is done; NULL otherwise */
	int users;             /* other threads sending on conn right now */
	_Atomic int64_t last_rx; /* dt_mono_ms() of the last message received */
} dt_link;

struct dtask_worker {
	/* Fixed once dtask_worker_run() starts; read by every thread. */
	dt_config *cfg;
	dt_tls *tls;
	dt_link_opts link_opts;
	char *name;            /* cfg name, or <hostname>:<pid> */
	char *watch_host;      /* published in "hello" (watchers come later) */
	int capacity;          /* task threads */
	dt_fn_entry *fns;
	size_t n_fns, cap_fns;
	char *functions_json;  /* ["f",...] for the worker record */
	dt_pool *pool;
	dt_link *links;
	size_t n_links;
	size_t links_init;     /* links whose lock and cond are initialised */
	struct dt_watch *watch; /* the watcher listener (watch.c), or NULL */

	/* Shutdown: set from anywhere, even a signal handler. */
	atomic_int shutdown_requested;
	sem_t shutdown_sem;
	atomic_int stopping;   /* links: stop reconnecting, the close is ours */
	atomic_int sig_exit;   /* the signal thread's last wake-up */
	atomic_int no_slots;   /* draining: every message says "free": 0 */
	atomic_int redis_down; /* SPEC 5.4: set by the state thread from Redis lost to
				* "redis_up"; runs are refused "redis down" */

	/* The main thread only. */
	int ran;
	pthread_t sig_tid, state_tid, health_tid;
	int sig_started, state_started, health_started;

	/* Under lock. */
	pthread_mutex_t lock;
	pthread_cond_t state_cond;  /* monotonic: ends queued, final, ticks */
	int state_waits;            /* the state thread waits on state_cond:
				     * the first end to come wakes it, the
				     * others need not (one wake-up a batch) */
	pthread_cond_t drain_cond;  /* monotonic: a task returned */
	pthread_cond_t health_cond; /* monotonic: the health interval, stop */
	dtask **tasks;              /* the running table, keyed by (id, attempt) */
	size_t n_tasks, cap_tasks;
	int n_active;               /* tasks in it whose function has not returned */
	dtask *done_head, *done_tail; /* returned, end not yet taken by the state thread */
	int draining;               /* new runs are refused "draining" */
	int state_final;            /* the state thread: last writes, then exit */
	int health_stop;
	int stuck_total;            /* tasks that overran stop_grace, ever */
	int abandoned;              /* stuck tasks left running at exit */
};

/* ---- worker.c ---- */

const dt_fn_entry *dt_worker_find_fn(const dtask_worker *w, const char *name);
/* The attempt of task id in the running table, or 0 (under w->lock). */
int64_t dt_worker_running_attempt(dtask_worker *w, const char *id);
/* dtask_emit(): to the task's watchers (watch.c). */
void dt_worker_emit(dtask_worker *w, const dtask *t, const char *event, const char *json);
/* The free slots to report to distributors ("free"), 0 once draining so
 * that no distributor places anything more here, with the report's "seq":
 * messages from different threads may reach a distributor out of order,
 * and it keeps the report with the highest seq.  Any thread, any lock
 * (the pool's lock is a leaf). */
typedef struct dt_free_report {
	int free;
	long long seq;
} dt_free_report;
dt_free_report dt_worker_free_report(dtask_worker *w);

/* Take a run: under w->lock, refuse it when draining (DT_REJECT_DRAINING)
 * or when no pool thread is free (DT_REJECT_FULL); else add it to the
 * running table and reserve a pool slot for it (the job is handed to the
 * pool by dt_worker_start(), once the link has read its batch of runs).
 * NULL when accepted, else the reject reason.
 * *dup = 1 (and NULL) when that (id, attempt) already runs here: nothing
 * is done and the caller keeps t. */
const char *dt_worker_accept(dtask_worker *w, dtask *t, int *dup);
/* Let n accepted tasks begin: release them and hand them to the pool
 * threads reserved for them by dt_worker_accept(), under one pool lock. */
void dt_worker_start(dtask_worker *w, dtask **v, size_t n);
/* Ask every task with that id (and attempt, unless < 0) to stop; the
 * number of tasks found. */
int dt_worker_stop_task(dtask_worker *w, const char *id, int64_t attempt, int kind);
/* Ask every task that came from link (-1: all) to stop. */
int dt_worker_stop_link_tasks(dtask_worker *w, int link, int kind);
/* Remove v[0..n) from the running table, under one lock (state thread). */
void dt_worker_table_remove(dtask_worker *w, dtask *const *v, size_t n);
/*
 * {"type":type,["load":load,]"free":free,"tasks":[[id,attempt],...]} as
 * one line of text (malloc'd, no newline; *len its length), for n tasks.
 * load < 0: no "load".  NULL when out of memory.
 */
char *dt_worker_tasks_msg(const char *type, double load, dt_free_report fr, dtask *const *tasks,
			  size_t n, size_t *len);
/* The same for (id, attempt) pairs (ids[i], attempts[i]). */
char *dt_worker_refs_msg(const char *type, double load, dt_free_report fr,
			 const char *const *ids, const int64_t *attempts, size_t n, size_t *len);

/* ---- worker_link.c ---- */

void *dt_link_main(void *arg);                /* the link thread */
/* Send one line to link's distributor if it is connected (any thread but
 * the link's own, which sends on its connection directly).  0, or
 * DTASK_ECLOSED when not connected, or the send's error (the connection is
 * then shut down and its link thread reconnects). */
int dt_link_send(dt_link *l, const char *msg, size_t len);
/* The same for several lines at once (buf: whole lines, each ending in
 * '\n'), in one send. */
int dt_link_send_lines(dt_link *l, const char *buf, size_t len);
/* At shutdown: close the connection (close_notify), wake the link thread
 * wherever it waits.  w->stopping must be set. */
void dt_link_stop(dt_link *l);

/* ---- worker_state.c ---- */

void *dt_state_main(void *arg);               /* the state thread */

/* ---- worker_health.c ---- */

void *dt_health_main(void *arg);              /* the health thread */

#endif
