/* test_pool - the task thread pool (pool.c): free slots, try_submit when
 * full fails at once, reserved jobs handed over in one batch each get a
 * thread of their own, no wake-up is lost under a stream of short jobs,
 * stop runs what was accepted and joins every thread, a job that says it
 * is returning frees its slot before it leaves, and a stuck job's thread is
 * detached when abandoned. */
#include "build-config.h"

#include <pthread.h>
#include <stdatomic.h>

#include "dtask.h"
#include "pool.h"
#include "tap.h"
#include "util.h"

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;
static atomic_int ran, entered;

/* Blocks until the gate opens. */
static void gated_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&entered, 1);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	atomic_fetch_add(&ran, 1);
}

/* Says it is returning (twice: once counts), then blocks until the gate
 * opens, as a job's tail that is slow to leave. */
static void returning_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&entered, 1);
	dt_pool_job_returning();
	dt_pool_job_returning();
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	atomic_fetch_add(&ran, 1);
}

static void sleepy_job(void *arg)
{
	dt_sleep_ms((int64_t)(intptr_t)arg);
	atomic_fetch_add(&ran, 1);
}

static void set_gate(int open)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = open;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

/* Poll until cond() or ~2 s. */
static int wait_for(int (*cond)(void *), void *arg)
{
	for (int i = 0; i < 400; i++) {
		if (cond(arg))
			return 1;
		dt_sleep_ms(5);
	}
	return cond(arg);
}

static int slots_are(void *arg)
{
	void **a = arg;
	return dt_pool_free_slots(a[0]) == (int)(intptr_t)a[1];
}

static int ran_is(void *arg)
{
	return atomic_load(&ran) == (int)(intptr_t)arg;
}

static int entered_is(void *arg)
{
	return atomic_load(&entered) == (int)(intptr_t)arg;
}

static void quick_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

/* Hand over n short jobs in batches of 1..8 (as many as there are free slots), the way
 * the worker's link does (reserve each, then one submit for the batch),
 * and wait for each batch to have run before the next: a batch whose job
 * got no thread woken stalls then (no later batch covers for it), and
 * this gives up after ~5 s.  Returns the jobs that ran. */
static int stream(dt_pool *p, int n)
{
	void *args[8] = { 0 };
	int sent = 0;
	while (sent < n) {
		int want = 1 + sent % 8, k = 0;
		for (int spins = 0; k < want && sent + k < n && spins < 5000;) {
			if (dt_pool_try_reserve(p) == 0) {
				k++;
			} else if (k > 0) {
				break; /* the pool is smaller than the batch */
			} else {
				/* A thread that ran its job may not be idle yet. */
				spins++;
				dt_sleep_ms(1);
			}
		}
		if (k == 0 || dt_pool_submit_reserved(p, quick_job, args, (size_t)k) != k)
			return atomic_load(&ran);
		sent += k;
		for (int i = 0; i < 5000 && atomic_load(&ran) < sent; i++)
			dt_sleep_ms(1);
		if (atomic_load(&ran) < sent)
			return atomic_load(&ran);
	}
	return atomic_load(&ran);
}

int main(void)
{
	char err[256];
	dt_pool *p;

	tap_plan(40);

	/* ---- default size */
	int rc = dt_pool_new(0, &p);
	ok(rc == 0 && dt_pool_size(p) >= 1, "threads 0: one per CPU (%d)", rc ? 0 : dt_pool_size(p));
	is_int(dt_pool_try_submit(p, sleepy_job, 0), DTASK_ESTOPPED, "no submit before start");
	dt_pool_free(p);

	/* ---- slots and try_submit */
	is_int(dt_pool_new(3, &p), 0, "a pool of 3");
	is_int(dt_pool_start(p, 0, err, sizeof err), 0, "started");
	is_int(dt_pool_free_slots(p), 3, "3 free slots");
	set_gate(0);
	for (int i = 0; i < 3; i++)
		dt_pool_try_submit(p, gated_job, NULL);
	is_int(dt_pool_free_slots(p), 0, "3 accepted: no free slot, started or not");
	is_int(dt_pool_try_submit(p, gated_job, NULL), DTASK_EBUSY, "a 4th fails at once (full)");
	ok(wait_for(ran_is, (void *)0) && atomic_load(&ran) == 0, "nothing finished yet");
	set_gate(1);
	void *arg3[2] = { p, (void *)3 };
	ok(wait_for(ran_is, (void *)3), "the 3 jobs ran once the gate opened");
	ok(wait_for(slots_are, arg3), "3 free slots again");
	is_int(dt_pool_try_submit(p, sleepy_job, (void *)1), 0, "a slot is taken again");
	ok(wait_for(ran_is, (void *)4), "and runs");
	/* Its thread counts itself idle just after the job: wait for that. */
	wait_for(slots_are, arg3);

	/* ---- reserved, then handed over in one batch: a thread each */
	atomic_store(&ran, 0);
	atomic_store(&entered, 0);
	set_gate(0);
	int got = 0;
	for (int i = 0; i < 3; i++)
		got += dt_pool_try_reserve(p) == 0;
	is_int(got, 3, "3 slots reserved");
	is_int(dt_pool_try_reserve(p), DTASK_EBUSY, "a 4th reservation fails (full)");
	void *none[3] = { 0 };
	is_int(dt_pool_submit_reserved(p, gated_job, none, 3), 3, "the 3 handed over in one call");
	ok(wait_for(entered_is, (void *)3), "all 3 run at once, each on its own thread");
	set_gate(1);
	ok(wait_for(ran_is, (void *)3) && wait_for(slots_are, arg3), "they end and free their slots");

	/* ---- a stream of short jobs: no wake-up lost */
	atomic_store(&ran, 0);
	is_int(stream(p, 4000), 4000, "4,000 short jobs in batches: each batch runs");
	ok(wait_for(ran_is, (void *)4000), "every one ran once (%d)", atomic_load(&ran));
	wait_for(slots_are, arg3);

	/* ---- stop joins every thread after running what was accepted */
	atomic_store(&ran, 0);
	int accepted = 0;
	for (int i = 0; i < 3; i++)
		accepted += dt_pool_try_submit(p, sleepy_job, (void *)50) == 0;
	int64_t t0 = dt_mono_ms();
	dt_pool_stop(p);
	is_int(dt_pool_try_submit(p, sleepy_job, 0), DTASK_ESTOPPED, "no submit after stop");
	is_int(dt_pool_free_slots(p), 0, "no free slot after stop");
	is_int(dt_pool_join(p, 0), 0, "join: nothing detached");
	ok(accepted == 3 && atomic_load(&ran) == 3,
	   "every accepted job ran before the threads exited (%d of %d)", atomic_load(&ran),
	   accepted);
	ok(dt_mono_ms() - t0 >= 45, "join waited for them");
	dt_pool_free(p);

	/* ---- a job that says it is returning frees its slot at once */
	atomic_store(&ran, 0);
	atomic_store(&entered, 0);
	set_gate(0);
	is_int(dt_pool_new(2, &p), 0, "a pool of 2");
	dt_pool_start(p, 0, err, sizeof err);
	dt_pool_job_returning(); /* not a pool thread: nothing */
	is_int(dt_pool_free_slots(p), 2, "outside a pool thread, returning changes nothing");
	dt_pool_try_submit(p, returning_job, NULL);
	ok(wait_for(entered_is, (void *)1), "a job that says it is returning runs");
	is_int(dt_pool_free_slots(p), 2, "its slot counts as free while it finishes (once)");
	is_int(dt_pool_try_submit(p, gated_job, NULL), 0, "a 2nd job is accepted");
	is_int(dt_pool_try_submit(p, quick_job, NULL), 0, "and a 3rd, for the returning slot");
	is_int(dt_pool_free_slots(p), 0, "then no slot is free");
	ok(wait_for(entered_is, (void *)2) && atomic_load(&ran) == 0,
	   "the 2nd starts on the idle thread; nothing ran to its end yet");
	set_gate(1);
	ok(wait_for(ran_is, (void *)3), "once the gate opens the 3rd job runs after the returning one");
	dt_pool_stop(p);
	is_int(dt_pool_join(p, 0), 0, "join: nothing detached");
	dt_pool_free(p);
	/* For the join, a returning job is still inside its job. */
	atomic_store(&ran, 0);
	atomic_store(&entered, 0);
	set_gate(0);
	dt_pool_new(1, &p);
	dt_pool_start(p, 0, err, sizeof err);
	dt_pool_try_submit(p, returning_job, NULL);
	wait_for(entered_is, (void *)1);
	dt_pool_stop(p);
	is_int(dt_pool_join(p, 1), 1, "abandon: a returning job still inside is detached");
	set_gate(1);
	wait_for(ran_is, (void *)1);
	dt_sleep_ms(50); /* let it exit */
	dt_pool_free(p);

	/* ---- a job that does not return: detached, not joined */
	atomic_store(&ran, 0);
	atomic_store(&entered, 0);
	set_gate(0);
	is_int(dt_pool_new(2, &p), 0, "a pool of 2");
	dt_pool_start(p, 0, err, sizeof err);
	dt_pool_try_submit(p, gated_job, NULL);
	for (int i = 0; i < 400 && atomic_load(&entered) < 1; i++)
		dt_sleep_ms(5);
	dt_pool_stop(p);
	is_int(dt_pool_join(p, 1), 1, "abandon: the stuck thread is detached, the idle one joined");
	is_int(atomic_load(&ran), 0, "its job is still inside");
	set_gate(1);
	ok(wait_for(ran_is, (void *)1), "it returns later on its own");
	dt_sleep_ms(50); /* let it exit */
	dt_pool_free(p); /* freed now that the detached thread is gone */
	ok(1, "freed after the detached thread exited");
	return tap_done(40);
}
