/*
 * pool.h - the task thread pool: a fixed number of threads, created at
 * start and joined at stop, that run jobs only when a thread is idle.
 *
 * There is no backlog: dt_pool_try_submit() accepts a job only when a
 * thread is free to take it at once, and fails immediately otherwise (the
 * worker then answers a "run" with reject "full").  So the free slots are
 * the idle threads minus the jobs accepted but not yet picked up.
 *
 * Life cycle: dt_pool_new() -> dt_pool_start() -> dt_pool_try_submit()... ->
 * dt_pool_stop() -> dt_pool_join() -> dt_pool_free().
 *
 * Threads: any thread may submit, count free slots and stop; one thread
 * (the owner) starts, joins and frees.  The pool's mutex is a leaf lock: a
 * job runs with no pool lock held, and the pool takes no other lock.
 */
#ifndef DT_POOL_H
#define DT_POOL_H

#include <stddef.h>

typedef struct dt_pool dt_pool;
typedef void (*dt_pool_job)(void *arg);

/* A pool of threads slots (<= 0: the number of online CPUs).  Nothing runs
 * until dt_pool_start().  0 or DTASK_ENOMEM. */
int dt_pool_new(int threads, dt_pool **out);
/* Create the threads (stack_size 0: the system default).  On failure the
 * threads already created are stopped and joined; DTASK_EIO with a message
 * in err. */
int dt_pool_start(dt_pool *p, size_t stack_size, char *err, size_t errlen);
/* The number of threads. */
int dt_pool_size(const dt_pool *p);

/* Hand job(arg) to an idle thread.  0; DTASK_EBUSY at once when no thread
 * is free; DTASK_ESTOPPED after dt_pool_stop() (or before start). */
int dt_pool_try_submit(dt_pool *p, dt_pool_job job, void *arg);
/*
 * Two-step submit, so that a thread is woken once, when its job may run:
 * dt_pool_try_reserve() promises a slot (0; DTASK_EBUSY / DTASK_ESTOPPED
 * as dt_pool_try_submit), which counts as taken from then on; later
 * dt_pool_submit_reserved() hands over n jobs, job(args[i]), one
 * reserved slot each, under one lock and with one wake-up per job at most
 * (accepted even after dt_pool_stop(), as an accepted job is: call it
 * before dt_pool_join()); it returns how many it took, fewer than n only
 * once join abandoned the queue.  dt_pool_unreserve() gives a slot back.
 */
int dt_pool_try_reserve(dt_pool *p);
int dt_pool_submit_reserved(dt_pool *p, dt_pool_job job, void **args, size_t n);
void dt_pool_unreserve(dt_pool *p);
/* Idle threads minus accepted jobs not yet started and reserved slots
 * (0 once stopped). */
int dt_pool_free_slots(dt_pool *p);
/* The same, with a number that grows with every call, taken under the same
 * lock: of two reports, the one with the higher seq is the newer. */
int dt_pool_free_slots_seq(dt_pool *p, long long *seq);

/* From inside a job, once its work is done and only its own bookkeeping
 * is left: its slot counts as free from now on (in the counts above, and
 * for dt_pool_try_reserve()), so that a report made as the job hands over
 * its result sees the slot free.  A job queued for the slot meanwhile
 * starts as soon as this thread leaves the job: what is left of it must be
 * short.  The thread still counts as inside the job for dt_pool_join().
 * No effect outside a pool thread, or a second time in one job. */
void dt_pool_job_returning(void);

/* Refuse new jobs and wake every thread: each finishes its current job,
 * the jobs already accepted are still run, then the threads exit.  Any
 * thread; idempotent. */
void dt_pool_stop(dt_pool *p);
/*
 * After dt_pool_stop(): join every thread.  With abandon_busy, a thread
 * that is still inside a job (a task that would not return) is detached
 * instead of joined, and accepted jobs not yet started are dropped (never
 * run; their owner still holds them).  Returns the number of detached
 * threads.  A pool with detached threads must not be freed while the
 * process goes on: dt_pool_free() then leaves it allocated (see there).
 */
int dt_pool_join(dt_pool *p, int abandon_busy);
/* Free a joined pool.  When dt_pool_join() detached threads that are
 * still inside their job, they will use the pool when it returns, so it is
 * deliberately left allocated (the process is expected to exit); once they
 * have all exited it is freed normally. */
void dt_pool_free(dt_pool *p);

#endif
