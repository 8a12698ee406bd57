/*
 * watch.h - the worker's watcher listener (SPEC 4, 5.2): watchers connect
 * straight to the worker that runs a task, over TLS with the share_key
 * proof, subscribe to the task and receive its live events.
 *
 * Threads: the listener's accept thread and one thread per watcher (both
 * the server's, src/lib/server.c), and one sender thread (watch.c); task
 * threads call dt_watch_event(), the state thread dt_watch_state(): both
 * only queue, so no task and no Redis write ever waits for a watcher.
 * Locks: wt->lock guards the sessions, their subscriptions and queues and
 * is a leaf: nothing is sent and no other lock is taken while it is held.
 * The sender sends under each connection's own send lock, bounded by
 * DT_WATCH_SEND_TIMEOUT_MS; a watcher that falls DT_WATCH_QUEUE_MAX bytes
 * behind, or does not read for that long, is dropped.
 */
#ifndef DT_WATCH_H
#define DT_WATCH_H

#include <stdint.h>

#define DT_WATCH_SEND_TIMEOUT_MS 1000
#define DT_WATCH_QUEUE_MAX (8 * 1024 * 1024) /* bytes queued for one watcher */
#define DT_EVENT_NAME_MAX 64

struct dtask_worker;
typedef struct dt_watch dt_watch;

/* Listen on the worker's watch_host/watch_port (watch_host unset: every
 * address).  DTASK_ECONFIG when the worker has no key to serve TLS with. */
int dt_watch_start(struct dtask_worker *w, dt_watch **out, char *err, size_t errlen);
/* The port really bound. */
int dt_watch_port(const dt_watch *wt);
/* An event of task (id, attempt) to its subscribers (json: JSON text, or
 * NULL for null).  Any thread. */
void dt_watch_event(dt_watch *wt, const char *id, int64_t attempt, const char *event,
		    const char *json);
/* The task's end (state "END" or "STOPPED"; error: the END's error, or
 * NULL) to its subscribers, whose subscriptions to it then end.  Any
 * thread. */
void dt_watch_state(dt_watch *wt, const char *id, int64_t attempt, const char *state,
		    const char *error);
/* Stop listening, drop every watcher, join their threads.  Later events
 * go nowhere. */
void dt_watch_stop(dt_watch *wt);
void dt_watch_free(dt_watch *wt);

/* 1 when name (NUL-terminated) is a valid event name: 1..64 characters
 * of [A-Za-z0-9_.:-]. */
int dt_event_name_valid(const char *name);

#endif
