/*
 * pool.c - the task thread pool (see pool.h).
 *
 * DESIGN
 *   Owns: N pool threads, created by dt_pool_start() and joined by
 *   dt_pool_join(); a ring of accepted jobs that is never longer than the
 *   number of idle threads (so an accepted job starts at once); one slot
 *   record per thread (idle / in a job / exited) so that the join can tell
 *   a thread stuck in a job from one about to exit.
 *   Threads: the pool threads take jobs; any thread submits, counts free
 *   slots and stops; the owner starts, joins and frees.
 *   Locks: p->lock only, a leaf: it guards every field below "lock" and is
 *   never held while a job runs nor while taking another lock.
 *   Waking: a thread with nothing to do parks itself on the idle stack and
 *   waits on its own semaphore; whoever queues jobs pops one parked thread
 *   a job and posts its semaphore after the unlock (stop, and a hand-over
 *   without memory for its list, post under the lock).
 *   A popped thread is woken exactly once, and a thread that is not
 *   parked takes a queued job before it parks again.  (Not a condition
 *   variable: glibc marks the mutex contended when pthread_cond_wait()
 *   takes it back, so every wait cost one more futex wake at the unlock.)
 *   A job that called dt_pool_job_returning() counts as idle already
 *   (counted_idle), so a job may be queued for its thread while it
 *   finishes: that thread, or any that comes free first, takes it.
 */
#include "build-config.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtask.h"
#include "log.h"
#include "pool.h"
#include "util.h"

enum slot_state { SLOT_IDLE, SLOT_BUSY, SLOT_EXITED };

struct pool_slot {
	dt_pool *p;
	pthread_t tid;
	int created;
	int detached;
	int state; /* enum slot_state, under p->lock */
	int counted_idle; /* under p->lock: dt_pool_job_returning() counted it idle */
	sem_t wake; /* posted once each time it is popped off the idle stack */
};

struct pool_job {
	dt_pool_job fn;
	void *arg;
};

struct dt_pool {
	int n;
	struct pool_slot *slots;

	pthread_mutex_t lock;
	struct pool_slot **parked; /* the idle stack: n entries */
	int nparked;
	struct pool_job *q; /* ring of n entries */
	int qhead, qlen;
	int idle;           /* threads not inside a job */
	int started;
	int stopping;
	int abandon;        /* join with abandon_busy: take no queued job */
	int detached;
	long long seq;      /* dt_pool_free_slots_seq() */
	int reserved;       /* slots promised by dt_pool_try_reserve(), not yet submitted */
};

int dt_pool_new(int threads, dt_pool **out)
{
	if (threads <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cpus > 0 ? (cpus > 4096 ? 4096 : (int)cpus) : 1;
	}
	dt_pool *p = calloc(1, sizeof *p);
	if (!p)
		return DTASK_ENOMEM;
	p->n = threads;
	p->slots = calloc((size_t)threads, sizeof *p->slots);
	p->q = calloc((size_t)threads, sizeof *p->q);
	p->parked = calloc((size_t)threads, sizeof *p->parked);
	int nsem = 0;
	while (p->slots && nsem < threads && sem_init(&p->slots[nsem].wake, 0, 0) == 0)
		nsem++;
	if (!p->slots || !p->q || !p->parked || nsem < threads) {
		for (int i = 0; i < nsem; i++)
			sem_destroy(&p->slots[i].wake);
		free(p->slots);
		free(p->q);
		free(p->parked);
		free(p);
		return DTASK_ENOMEM;
	}
	dt_mutex_init_hot(&p->lock);
	p->idle = threads;
	*out = p;
	return 0;
}

/* The slot of the pool thread running this code (NULL in any other). */
static _Thread_local struct pool_slot *this_slot;

void dt_pool_job_returning(void)
{
	struct pool_slot *s = this_slot;
	if (!s)
		return;
	dt_pool *p = s->p;
	pthread_mutex_lock(&p->lock);
	if (s->state == SLOT_BUSY && !s->counted_idle) {
		s->counted_idle = 1;
		p->idle++;
	}
	pthread_mutex_unlock(&p->lock);
}

static void *pool_thread(void *arg)
{
	struct pool_slot *s = arg;
	dt_pool *p = s->p;

	this_slot = s;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (p->qlen == 0 && !p->stopping) {
			p->parked[p->nparked++] = s;
			pthread_mutex_unlock(&p->lock);
			while (sem_wait(&s->wake) != 0) {
				if (errno != EINTR) {
					/* Only a destroyed semaphore fails so: parking
					 * again would corrupt the idle stack. */
					log_error("task thread: sem_wait: %s", strerror(errno));
					abort();
				}
			}
			pthread_mutex_lock(&p->lock);
			continue; /* popped: whoever did it may have queued a job */
		}
		if (p->qlen == 0 || p->abandon)
			break;
		struct pool_job job = p->q[p->qhead];
		p->qhead = (p->qhead + 1) % p->n;
		p->qlen--;
		p->idle--;
		s->state = SLOT_BUSY;
		pthread_mutex_unlock(&p->lock);

		job.fn(job.arg);

		pthread_mutex_lock(&p->lock);
		s->state = SLOT_IDLE;
		if (!s->counted_idle)
			p->idle++;
		s->counted_idle = 0;
	}
	s->state = SLOT_EXITED;
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int dt_pool_start(dt_pool *p, size_t stack_size, char *err, size_t errlen)
{
	pthread_attr_t attr;
	int rc = 0;

	pthread_attr_init(&attr);
	if (stack_size)
		pthread_attr_setstacksize(&attr, stack_size);
	for (int i = 0; i < p->n; i++) {
		p->slots[i].p = p;
		p->slots[i].state = SLOT_IDLE;
		int e = pthread_create(&p->slots[i].tid, &attr, pool_thread, &p->slots[i]);
		if (e) {
			rc = dt_err(err, errlen, DTASK_EIO, "cannot start task thread %d of %d: %s",
				    i + 1, p->n, strerror(e));
			break;
		}
		p->slots[i].created = 1;
	}
	pthread_attr_destroy(&attr);
	if (rc < 0) {
		dt_pool_stop(p);
		dt_pool_join(p, 0);
		return rc;
	}
	pthread_mutex_lock(&p->lock);
	p->started = 1;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int dt_pool_size(const dt_pool *p)
{
	return p->n;
}

/* Under p->lock: queue job(arg).  The caller wakes a thread for it once
 * the lock is released (a thread woken under the lock would only block on
 * it again). */
static void enqueue_locked(dt_pool *p, dt_pool_job job, void *arg)
{
	int tail = (p->qhead + p->qlen) % p->n;
	p->q[tail].fn = job;
	p->q[tail].arg = arg;
	p->qlen++;
}

/* Under p->lock, after queueing n jobs: pop up to that many parked
 * threads into out[]; the caller posts them with wake() once the lock is
 * released. */
static int pop_parked(dt_pool *p, int n, struct pool_slot **out)
{
	int k = 0;
	while (k < n && p->nparked > 0)
		out[k++] = p->parked[--p->nparked];
	return k;
}

static void wake(struct pool_slot **v, int k)
{
	for (int i = 0; i < k; i++)
		sem_post(&v[i]->wake);
}

int dt_pool_try_submit(dt_pool *p, dt_pool_job job, void *arg)
{
	int rc = 0, nwake = 0;
	struct pool_slot *w[1];
	pthread_mutex_lock(&p->lock);
	if (!p->started || p->stopping) {
		rc = DTASK_ESTOPPED;
	} else if (p->idle - p->qlen - p->reserved <= 0) {
		rc = DTASK_EBUSY;
	} else {
		enqueue_locked(p, job, arg);
		nwake = pop_parked(p, 1, w);
	}
	pthread_mutex_unlock(&p->lock);
	wake(w, nwake);
	return rc;
}

int dt_pool_try_reserve(dt_pool *p)
{
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	if (!p->started || p->stopping)
		rc = DTASK_ESTOPPED;
	else if (p->idle - p->qlen - p->reserved <= 0)
		rc = DTASK_EBUSY;
	else
		p->reserved++;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int dt_pool_submit_reserved(dt_pool *p, dt_pool_job job, void **args, size_t n)
{
	size_t done = 0;
	struct pool_slot *local[32], **w = local;
	if (n > 32 && !(w = malloc(n * sizeof *w)))
		w = NULL;
	pthread_mutex_lock(&p->lock);
	for (; done < n && !p->abandon && p->qlen < p->n; done++)
		enqueue_locked(p, job, args[done]);
	/* Every reservation is used up, the jobs not taken included. */
	p->reserved = p->reserved > (int)n ? p->reserved - (int)n : 0;
	if (!w) {
		/* No memory for the list: post them under the lock. */
		for (size_t i = 0; i < done && p->nparked > 0; i++)
			sem_post(&p->parked[--p->nparked]->wake);
		pthread_mutex_unlock(&p->lock);
		return (int)done;
	}
	int nwake = pop_parked(p, (int)done, w);
	pthread_mutex_unlock(&p->lock);
	wake(w, nwake);
	if (w != local)
		free(w);
	return (int)done;
}

void dt_pool_unreserve(dt_pool *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->reserved > 0)
		p->reserved--;
	pthread_mutex_unlock(&p->lock);
}

int dt_pool_free_slots(dt_pool *p)
{
	pthread_mutex_lock(&p->lock);
	int n = (!p->started || p->stopping) ? 0 : p->idle - p->qlen - p->reserved;
	pthread_mutex_unlock(&p->lock);
	return n < 0 ? 0 : n;
}

int dt_pool_free_slots_seq(dt_pool *p, long long *seq)
{
	pthread_mutex_lock(&p->lock);
	int n = (!p->started || p->stopping) ? 0 : p->idle - p->qlen - p->reserved;
	*seq = ++p->seq;
	pthread_mutex_unlock(&p->lock);
	return n < 0 ? 0 : n;
}

/* Under p->lock, once stopping is set (no thread parks again): wake every
 * parked thread. */
static void wake_all_locked(dt_pool *p)
{
	while (p->nparked > 0)
		sem_post(&p->parked[--p->nparked]->wake);
}

void dt_pool_stop(dt_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	wake_all_locked(p);
	pthread_mutex_unlock(&p->lock);
}

int dt_pool_join(dt_pool *p, int abandon_busy)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	if (abandon_busy) {
		p->abandon = 1;
		p->qlen = 0;
		for (int i = 0; i < p->n; i++) {
			struct pool_slot *s = &p->slots[i];
			if (s->created && !s->detached && s->state == SLOT_BUSY) {
				pthread_detach(s->tid);
				s->detached = 1;
				p->detached++;
			}
		}
	}
	wake_all_locked(p);
	int detached = p->detached;
	pthread_mutex_unlock(&p->lock);

	/* The slots' created/detached flags change only here and in start,
	 * both on the owner's thread. */
	for (int i = 0; i < p->n; i++) {
		struct pool_slot *s = &p->slots[i];
		if (s->created && !s->detached) {
			pthread_join(s->tid, NULL);
			s->created = 0;
		}
	}
	return detached;
}

void dt_pool_free(dt_pool *p)
{
	if (!p)
		return;
	if (p->detached) {
		/* A detached thread whose job has not returned will still lock
		 * p->lock: then leave the pool allocated.  Once they have all
		 * exited (their last touch is the unlock), it can go. */
		int alive = 0;
		pthread_mutex_lock(&p->lock);
		for (int i = 0; i < p->n; i++)
			if (p->slots[i].detached && p->slots[i].state != SLOT_EXITED)
				alive++;
		pthread_mutex_unlock(&p->lock);
		if (alive)
			return;
	}
	pthread_mutex_destroy(&p->lock);
	for (int i = 0; i < p->n; i++)
		sem_destroy(&p->slots[i].wake);
	free(p->parked);
	free(p->slots);
	free(p->q);
	free(p);
}
