/*
 * dtask.h - the public API of distributed-task (libdtask).
 *
 * Link with: cc prog.c $(pkg-config --cflags --libs dtask)
 *
 * Error convention: functions that can fail return 0 on success and a
 * negative DTASK_E* code on failure; dtask_strerror() turns a code into a
 * sentence.  Functions that build an object return NULL on failure and, where
 * they take a "char **errmsg", store there a malloc'd message the caller
 * frees with free().
 */
#ifndef DTASK_H
#define DTASK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DTASK_VERSION_MAJOR 0
#define DTASK_VERSION_MINOR 1
#define DTASK_VERSION_PATCH 0
#define DTASK_VERSION_STRING "0.1.0"
/* One number that grows with every release: 0xMMmmpp. */
#define DTASK_VERSION_NUMBER \
	((DTASK_VERSION_MAJOR << 16) | (DTASK_VERSION_MINOR << 8) | DTASK_VERSION_PATCH)

/* Error codes.  0 is success; every failure is negative. */
enum dtask_error {
	DTASK_OK = 0,
	DTASK_ENOMEM = -1,    /* out of memory */
	DTASK_EINVAL = -2,    /* invalid argument */
	DTASK_EIO = -3,       /* system call failed (see errno in the log) */
	DTASK_ECONFIG = -4,   /* the configuration file is invalid */
	DTASK_ETLS = -5,      /* TLS handshake or record layer failed */
	DTASK_ECERT = -6,     /* peer certificate not trusted or wrong name */
	DTASK_EAUTH = -7,     /* share_key proof failed */
	DTASK_EPROTO = -8,    /* the peer broke the protocol */
	DTASK_ETOOBIG = -9,   /* a message exceeded max_message */
	DTASK_ETIMEDOUT = -10,/* the peer stayed silent too long */
	DTASK_ECLOSED = -11,  /* the peer closed the connection */
	DTASK_ECONNECT = -12, /* could not connect */
	DTASK_EREDIS = -13,   /* Redis failed or is unreachable */
	DTASK_EBUSY = -14,    /* a limit was reached (connections, slots) */
	DTASK_ESTOPPED = -15, /* the object is stopping */
	DTASK_ENOTFOUND = -16,/* no such task (or worker) */
	DTASK_ESTATE = -17    /* the task is not in a state that allows it */
};

/* A sentence for a DTASK_E* code ("unknown error" for anything else).
 * The string is static; never free it. */
const char *dtask_strerror(int code);

/* The library's version as linked at run time (compare DTASK_VERSION_STRING). */
const char *dtask_version(void);

/* ------------------------------------------------------------------ */
/* Workers: run task functions compiled into this program.             */
/* ------------------------------------------------------------------ */

struct json_object; /* json-c, for dtask_data_json() */

typedef struct dtask_worker dtask_worker;
typedef struct dtask dtask; /* one running task; valid inside its function */

/* What a task function returns. */
typedef enum {
	DTASK_END,  /* done: END, with the result set by dtask_set_result() */
	DTASK_STOP, /* stopped (asked to, see dtask_checkpoint()): STOPPED, and
	             * the task is requeued; after a cancel request: END with
	             * error "cancelled" */
	DTASK_FAIL  /* failed: END with error (dtask_set_error(), or "failed") */
} dtask_status;

typedef dtask_status (*dtask_fn)(dtask *task, void *arg);

/*
 * A worker from a configuration file (dtask.json(5)).  NULL on failure,
 * with a message in *errmsg (malloc'd; free() it) naming the file, the
 * field and what was expected.  Threads start only in dtask_worker_run().
 */
dtask_worker *dtask_worker_new(const char *config_path, char **errmsg);

/* Register fn under the name function (what tasks' "function" asks for),
 * called with arg.  Before dtask_worker_run().  0, or DTASK_EINVAL (bad or
 * duplicate name), DTASK_ENOMEM. */
int dtask_worker_add(dtask_worker *w, const char *function, dtask_fn fn, void *arg);

/*
 * Run until SIGTERM or SIGINT (which it blocks in the calling thread and
 * takes itself; call it from the main thread before starting threads of
 * your own, or block those signals in them) or dtask_worker_shutdown().
 * SIGHUP reopens the log.  On the way out the worker takes no new tasks,
 * asks its running tasks to stop, waits up to stop_grace for them, leaves
 * the ones still running STOPPED for another worker, and returns 0.
 * DTASK_E* when it could not start (the reason is logged).
 */
int dtask_worker_run(dtask_worker *w);

/* Make dtask_worker_run() return; safe from any thread and from a signal
 * handler. */
void dtask_worker_shutdown(dtask_worker *w);

/* Free a worker that is not running. */
void dtask_worker_free(dtask_worker *w);

/*
 * A complete worker program: parses "-c FILE" (default $DTASK_CONFIG, then
 * SYSCONFDIR/dtask/dtask.json), "-f" (stay in the foreground, log to
 * stderr; otherwise daemonize and log to syslog), "-p PIDFILE", "-h";
 * builds the worker, calls setup(w) to register functions (setup returns
 * non-zero to give up), runs it and returns the process's exit status.
 */
int dtask_worker_main(int argc, char **argv, int (*setup)(dtask_worker *w));

/* ---- inside a task function (the task's own thread only) ---- */

const char *dtask_id(const dtask *t);
const char *dtask_function(const dtask *t);
/* The attempt: 1 at the first run, +1 at each requeue. */
long long dtask_attempt(const dtask *t);
/* The task's "data" as JSON text ("null" when absent; a string holding
 * JSON, as the 2014 format sends it, is given decoded). */
const char *dtask_data(const dtask *t);
/* The same, parsed; owned by the task (do not put it); NULL if absent. */
struct json_object *dtask_data_json(const dtask *t);

/*
 * Call often.  Returns 0 to go on; non-zero when the task must stop now
 * (stop or cancel asked, its worker is shutting down or lost its
 * distributor, or another copy took over): clean up and return DTASK_STOP.
 * Blocks while the task is paused.
 */
int dtask_checkpoint(dtask *t);
/* Sleep ms, waking early when the task must stop (then non-zero). */
int dtask_sleep(dtask *t, unsigned ms);
/* A live event for watchers: name and a JSON value (NULL: null). */
int dtask_emit(dtask *t, const char *event, const char *json);
/* The result stored with END: JSON text (checked; DTASK_EINVAL if not). */
int dtask_set_result(dtask *t, const char *json);
/* The error stored with DTASK_FAIL: a sentence. */
int dtask_set_error(dtask *t, const char *message);

/* ------------------------------------------------------------------ */
/* Clients: submit and inspect tasks (what the dtask command uses).    */
/* ------------------------------------------------------------------ */

/* The longest task id, and a buffer size that holds one. */
#define DTASK_ID_MAX 128

typedef struct dtask_client dtask_client;

/*
 * A client for the Redis named in a configuration file (dtask.json(5); only
 * "redis" is needed).  It connects at once: NULL on failure, with a
 * message in *errmsg (malloc'd; free() it).  One client is for one thread
 * at a time (it holds one Redis connection); use one per thread.
 */
dtask_client *dtask_client_new(const char *config_path, char **errmsg);
void dtask_client_free(dtask_client *c);
/* The message of the client's last failure ("" after a success).  Valid
 * until the next call on c. */
const char *dtask_client_error(const dtask_client *c);
/* The Redis server's clock in ms since the epoch: the clock every task and
 * worker time (start, update, end) is read with, for ages. */
int dtask_client_time(dtask_client *c, long long *now_ms);

/* Options of a submission; zero-initialize, then set what you need. */
typedef struct dtask_submit_opts {
	const char *id;     /* NULL: a random UUID is chosen */
	int keep_end;       /* 1: clean_end false (the END record is kept) */
	int state_optional; /* 1: state_optional true */
	int max_attempts;   /* 0: the default (5); < 0: no limit */
} dtask_submit_opts;

/*
 * Queue one task: function, data (JSON text, or NULL for none), options
 * (NULL: defaults).  id_out (DTASK_ID_MAX + 1 bytes, may be NULL) gets its
 * id.  0, or DTASK_EINVAL (bad function, data or id), DTASK_EREDIS.
 */
int dtask_submit(dtask_client *c, const char *function, const char *data,
		 const dtask_submit_opts *opts, char *id_out);

/* Queue n tasks given as complete task JSON objects (SPEC: the queue item
 * format) in one round trip (one LPUSH), in order, verbatim (an item
 * without "id" gets one from the distributor).  Each is checked first;
 * nothing is queued if one is invalid (DTASK_EINVAL, naming its index,
 * from 0). */
int dtask_submit_many(dtask_client *c, const char *const *tasks_json, size_t n);

/* A task's record (task-<id>) as a JSON object of strings (state, attempt,
 * worker, data, result, error, ...); the caller json_object_put()s it.
 * DTASK_ENOTFOUND when there is none (never queued, not claimed yet, or
 * ended and cleaned). */
int dtask_get(dtask_client *c, const char *id, struct json_object **record);

/* The ids of the tasks the system owns (claimed and not cleaned, and the
 * kept END ones), with state (QUEUED, RUNNING, STOPPED, END; NULL: all),
 * as a JSON array of records as dtask_get() gives them, each with its
 * "id" added; sorted by id.  The caller json_object_put()s it. */
int dtask_list(dtask_client *c, const char *state, struct json_object **records);

/* Ask a RUNNING task to stop where it runs: it becomes STOPPED and is
 * requeued.  DTASK_ENOTFOUND, DTASK_ESTATE (not RUNNING). */
int dtask_stop(dtask_client *c, const char *id);
/* End a task for good: END with error "cancelled", never requeued (a
 * RUNNING one is told to stop first; a QUEUED one never runs).
 * DTASK_ENOTFOUND, DTASK_ESTATE (already ended). */
int dtask_cancel(dtask_client *c, const char *id);
/* Put a RUNNING or STOPPED task back on the queue now (a RUNNING copy is
 * fenced off: its worker learns it at its next heartbeat, within one
 * loop_interval, and stops it; the attempt is kept, so the next claim
 * fences that copy's writes).  No failure is counted.  When a cancel was
 * waiting on the record, the task is ended "cancelled" instead (0 too:
 * dtask_get() tells which).  DTASK_ENOTFOUND, DTASK_ESTATE (QUEUED or END). */
int dtask_requeue(dtask_client *c, const char *id);

/*
 * Wait until the task is END (or timeout_ms passes; < 0: forever) and give
 * its record.  Submit with keep_end and let dtask_wait() clean the record
 * as clean_end would, so the end is never missed: with clean (1) it
 * deletes the record once read (only an END record: task-<id>, and the id
 * from end-task).  It polls the record (every 10 ms at first, then every
 * 100 ms).  A task not claimed yet has no record: while it has never seen
 * one, it waits (so give a timeout for an id that may never come).
 * DTASK_ETIMEDOUT; DTASK_ENOTFOUND when the record it saw disappeared
 * (not submitted with keep_end: cleaned at its end).
 */
int dtask_wait(dtask_client *c, const char *id, int timeout_ms, int clean,
	       struct json_object **record);

/* The workers' records (worker-<name>), a JSON array of objects of
 * strings, each with its "name"; sorted by name. */
int dtask_workers(dtask_client *c, struct json_object **workers);

/* ------------------------------------------------------------------ */
/* Watchers: follow a running task's live events (doc/PROTOCOL.md 6.4). */
/* ------------------------------------------------------------------ */

/* One message from the worker that runs the watched task.  The strings
 * live until the callback returns. */
typedef struct dtask_watch_msg {
	const char *type;   /* "event" or "state" */
	const char *id;
	long long attempt;
	const char *event;  /* "event": its name (as given to dtask_emit) */
	const char *data;   /* "event": its data, JSON text ("null" when none) */
	long long time;     /* "event": ms since the epoch, by the worker's clock */
	const char *state;  /* "state": RUNNING, QUEUED (waiting for a worker),
			       STOPPED (it moves: followed), or END */
	const char *json;   /* the whole message as JSON text */
	const char *error;  /* "state" END: the task's error (NULL: none known) */
} dtask_watch_msg;

/* Called for each message; a non-zero return stops the watch. */
typedef int (*dtask_watch_fn)(const dtask_watch_msg *msg, void *arg);

/* Follow task id until it ends: find the worker that runs it in Redis,
 * connect to that worker's watcher listener over TLS (the client
 * configuration's certificates and share_key), subscribe (to events[0..n)
 * only, or to all when nevents is 0) and call fn for each message.  When
 * the task moves (its worker is lost or stops it and it is requeued), the
 * watch follows it to its next worker; while it waits for one, fn gets a
 * "state" QUEUED.  Returns 0 after the final "state" END (also when the
 * record was cleaned at its end), 1 when fn stopped the watch, or an error:
 * DTASK_EINVAL (a bad id or event name: 1-64 characters of
 * [A-Za-z0-9_.:-]), DTASK_ENOTFOUND (no such task), DTASK_ECONNECT (its
 * worker cannot be reached), DTASK_EAUTH, DTASK_ECERT, DTASK_EREDIS,
 * DTASK_EPROTO (the worker refused the subscription), ... with
 * dtask_client_error(). */
int dtask_watch(dtask_client *c, const char *id, const char *const *events, size_t nevents,
		dtask_watch_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* DTASK_H */
