/*
 * task_internal.h - struct dtask, the handle a task function gets (its
 * public accessors are in dtask.h), and what the worker does with it.
 *
 * A task is created by a link thread when a "run" is accepted, runs on one
 * pool thread (the "task's own thread"), and is freed by the worker's state
 * thread once its end is written (or by the link thread when the run was
 * refused before anyone else saw it).
 *
 * Fields fall in four groups by who may touch them:
 *   - fixed at creation (id, attempt, function, item, ...): any thread;
 *   - the task's own thread only (data, data_json, result, error), until
 *     it marks the task returned; after that the state thread reads them
 *     (the return is published under t->lock, then the worker's lock);
 *   - flags set by other threads, under t->lock, waited for on t->cond
 *     (a CLOCK_MONOTONIC condvar): stop kind, pause, release, returned;
 *   - the state thread only (stuck_logged, abandoned, relayed).
 * Lock order: the worker's lock may be held while taking t->lock; t->lock
 * is never held while taking any other lock.
 */
#ifndef DT_TASK_INTERNAL_H
#define DT_TASK_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "dtask.h"

struct json_object;

/* Why a task was told to stop.  Higher is stronger: a request never
 * replaces a stronger one, and fenced (another copy owns the record: write
 * nothing) replaces anything. */
enum dt_stop_kind {
	DT_STOP_NONE = 0,
	DT_STOP_STOP,     /* "stop" from the distributor, or request=stop */
	DT_STOP_CANCEL,   /* request=cancel (finish.lua ends it "cancelled") */
	DT_STOP_SHUTDOWN, /* the worker is draining */
	DT_STOP_LOST,     /* the link to its distributor was lost */
	DT_STOP_FENCED,   /* the record is no longer this copy's */
	DT_STOP_REDIS     /* the worker lost Redis (SPEC 5.4) */
};
const char *dt_stop_kind_name(int kind);

/* A registered function. */
typedef struct dt_fn_entry {
	char *name;
	dtask_fn fn;
	void *arg;
} dt_fn_entry;

struct dtask {
	/* Fixed at creation. */
	char *id;
	int64_t attempt;
	char *function;
	char *item;              /* the task JSON exactly as received */
	size_t item_len;
	int state_optional;
	int link;                /* index of the distributor link it came from */
	const dt_fn_entry *fn;   /* set by the worker before submitting */
	void *owner;             /* the dtask_worker */

	/* The task's own thread (see above). */
	char *data;              /* "data" as JSON text, decoded; "null" when absent */
	struct json_object *data_json;
	int data_parsed;
	char *result;            /* JSON text or NULL */
	char *error;             /* text or NULL */

	/* Under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* monotonic: dtask_sleep() waits on it */
	int stop_kind;           /* enum dt_stop_kind */
	int64_t stop_requested_at; /* dt_mono_ms() of the first request; 0: none */
	int paused;
	int released;            /* its "started" went out: the function may begin */
	int returned;            /* the function returned ... */
	int status;              /* ... this dtask_status */

	/* The worker's state thread only. */
	int stuck_logged;
	int abandoned;           /* left STOPPED at exit while still running */
	int relayed;             /* its "stopped" went out while Redis was lost */

	struct dtask *next;      /* the worker's done queue (under its lock) */
};

/*
 * A task for a "run": id and attempt from the message, item the task JSON
 * text exactly as received (len bytes; it must already be a valid JSON
 * object, as dt_item_parse() checked).  Copies what it keeps; decodes
 * "data" (the 2014 form, a string holding JSON, is given decoded).
 * 0, or DTASK_ENOMEM / DTASK_EINVAL with a message in err.
 */
int dt_task_new(const char *id, int64_t attempt, const char *function, const char *item,
		size_t len, int state_optional, dtask **out, char *err, size_t errlen);
void dt_task_free(dtask *t);

/* Ask the task to stop (any thread).  Returns 1 when this raised the kind
 * (so the caller may log it), 0 when a kind at least as strong was set. */
int dt_task_request_stop(dtask *t, int kind);
/* Pause or resume dtask_checkpoint() (for the Redis-lost protocol). */
void dt_task_set_paused(dtask *t, int paused);
/* Let the function begin (its "started" was sent, or could not be). */
void dt_task_release(dtask *t);
/* On the task's own thread: wait for dt_task_release().  Only the release
 * ends the wait (not a stop request), so a task cannot end, and be freed,
 * before the link thread that accepted it is done with it; the link thread
 * releases every task it accepted before it next blocks. */
void dt_task_wait_released(dtask *t);
/* On the task's own thread, after the function returned. */
void dt_task_mark_returned(dtask *t, int status);

/* A consistent copy of the flags (any thread; NULL outputs are skipped). */
void dt_task_flags(dtask *t, int *stop_kind, int64_t *stop_requested_at, int *returned,
		   int *status);

#endif
