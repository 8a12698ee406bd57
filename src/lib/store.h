/*
 * store.h - the Redis model (SPEC sections 2 and 3): every hiredis call of
 * the project goes through here.
 *
 * Threads: a dt_store is ONE hiredis connection and is NOT thread-safe.
 * Each thread that talks to Redis owns its own dt_store (the distributor's
 * queue and sweep threads, the worker's heartbeat thread, ...); never share
 * one without your own lock.  Different dt_stores are independent.
 *
 * Connections: a dt_store connects lazily (dt_store_new) or at once
 * (dt_store_open), with a connect timeout of DT_STORE_CONNECT_TIMEOUT_MS,
 * then AUTH (user + password, or password only) and SELECT db.  Every
 * command has a timeout of DT_STORE_CMD_TIMEOUT_MS (hiredis has one timeout
 * per context, so it must exceed any blocking pop: blocking calls here wait
 * at most DT_STORE_BLOCK_MAX_MS).  After ANY failure (I/O error, timeout,
 * protocol error, or an error reply) the connection is dropped and the call
 * returns DTASK_EREDIS with a message; the next call reconnects.  A failed
 * call may or may not have been applied (its reply may be what was lost):
 * every script below is idempotent, so the caller may simply retry it.
 *
 * Keys: the configured prefix (redis.prefix) is prepended to every key.
 * Scripts get the prefix as an argument and build task-<id> (and
 * queue-<function>) keys themselves, since ids and functions are data: so
 * scripts touch keys they do not declare, which is why Redis Cluster is not
 * supported (standalone or Sentinel only; SPEC 3.4).
 *
 * Scripts: src/lib/lua/NAME.lua, embedded at build time (lua2c.sh).  Their
 * SHA1 is computed locally; calls go out as EVALSHA, and a NOSCRIPT reply
 * (after a Redis restart or failover, or SCRIPT FLUSH; also per reply
 * inside a pipeline) is answered by resending that call with EVAL, which
 * also caches the script again.  A NOSCRIPT call never ran, so this is
 * safe.  Every script takes its time from redis.call('TIME') (ms), returns
 * strings (never Lua numbers: RESP2 would truncate them), and stores and
 * passes task JSON verbatim (never through cjson).
 *
 * Record fields written here beyond SPEC section 2 (readers may use them):
 * task-<id>: clean_end ("1"/"0", from the item at claim, so scripts need
 * not parse JSON), max_attempts, function.
 *
 * Errors: 0 or a negative DTASK_E* code; a one-line message in err when
 * err is not NULL.
 */
#ifndef DT_STORE_H
#define DT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "item.h"

struct json_object;

#define DT_STORE_CONNECT_TIMEOUT_MS 3000
#define DT_STORE_CMD_TIMEOUT_MS 5000
#define DT_STORE_BLOCK_MAX_MS 2000

typedef struct dt_store dt_store;

/* ------------------------------------------------------------ life cycle */

/* A store for rc (copied), not yet connected: the first call connects.
 * 0 or DTASK_ENOMEM / DTASK_EINVAL. */
int dt_store_new(const dt_redis_conf *rc, dt_store **out, char *err, size_t errlen);
/* dt_store_new() and connect now; on failure nothing is left to free
 * (*out = NULL) and DTASK_EREDIS names host:port and the reason. */
int dt_store_open(const dt_redis_conf *rc, dt_store **out, char *err, size_t errlen);
void dt_store_free(dt_store *s);

/* Connect (connect, AUTH, SELECT) unless connected.  Every call below does
 * this itself; call it to find out whether Redis is reachable. */
int dt_store_ensure(dt_store *s, char *err, size_t errlen);
/* Drop the connection (the next call reconnects). */
void dt_store_disconnect(dt_store *s);
int dt_store_connected(const dt_store *s);
/* dt_mono_ms() when the current connection was made, -1 when not connected
 * (the sweep requeues only after task_timeout of continuous connection). */
int64_t dt_store_connected_since(const dt_store *s);
const char *dt_store_prefix(const dt_store *s);

int dt_store_ping(dt_store *s, char *err, size_t errlen);
/* The Redis server's clock in ms: the only clock task times use. */
int dt_store_time(dt_store *s, int64_t *now_ms, char *err, size_t errlen);

/* ------------------------------------------------------- result vectors */

/* Strings from Redis (items may hold any bytes: use len). */
typedef struct dt_strv {
	size_t n;
	char **v;     /* each NUL-terminated too */
	size_t *len;
} dt_strv;
void dt_strv_free(dt_strv *v); /* frees the contents; *v becomes empty */

/* ----------------------------------------------------------- the queue */

/* LPUSH one task on new-task, as a producer does (`dtask submit`, tests). */
int dt_store_submit(dt_store *s, const char *json, size_t len, char *err, size_t errlen);

/* take.lua: move up to n items, oldest first, from new-task (function NULL)
 * or from queue-<function> (parked items, served first) into
 * inflight-<distributor>; *items gets them (empty: the source was empty).
 * Not idempotent and need not be: what it moved is in Redis. */
int dt_store_take(dt_store *s, const char *distributor, const char *function, size_t n,
		  dt_strv *items, char *err, size_t errlen);
/* The same for several sources in one call, at most n items in all:
 * first up to counts[i] items from each queue-<functions[i]> (parked items
 * are served first), then new-task with what is left of n. */
int dt_store_take_multi(dt_store *s, const char *distributor, const char *const *functions,
			const size_t *counts, size_t nf, size_t n, dt_strv *items, char *err,
			size_t errlen);
/* BLMOVE new-task inflight-<distributor> RIGHT LEFT, waiting at most
 * timeout_ms (clamped to 10..DT_STORE_BLOCK_MAX_MS): for when the queue
 * was empty.  *items gets 0 or 1 item. */
int dt_store_take_blocking(dt_store *s, const char *distributor, int timeout_ms, dt_strv *items,
			   char *err, size_t errlen);
/* dt_store_take_blocking() with arrive.lua "claim" pipelined right behind
 * the BLMOVE, so that the item it takes is claimed in the same Redis
 * wake-up when arrive.lua can check it (see there): *claimed gets nothing
 * (the item, if any, is in *items and in inflight-<distributor>, to be
 * claimed the usual way) or DT_ARRIVE_N strings: the item left the
 * in-flight list and is RUNNING with attempt 1 for the worker named.  An
 * item in both *items and *claimed (the same bytes) is the same item. */
enum {
	DT_ARRIVE_RAW, DT_ARRIVE_TEXT, DT_ARRIVE_ID, DT_ARRIVE_WORKER, DT_ARRIVE_FUNCTION,
	DT_ARRIVE_CLEAN_END, DT_ARRIVE_MAX_ATTEMPTS, DT_ARRIVE_N
};
typedef struct dt_arrive_req {
	const char *const *functions; /* each function a worker with a free slot runs, */
	const char *const *workers;   /* and the worker an item of it goes to */
	size_t n;
	const char *fresh_id;         /* the id for an item without one */
	size_t max_message;           /* the item must fit a "run" line */
	int64_t max_attempts;         /* for an item without max_attempts */
} dt_arrive_req;
int dt_store_take_arrive(dt_store *s, const char *distributor, int timeout_ms,
			 const dt_arrive_req *req, dt_strv *items, dt_strv *claimed, char *err,
			 size_t errlen);
/* arrive.lua "undo": an item claimed on arrival that dt_item_parse()
 * refuses after all goes to bad-task with reason, and its record (still
 * RUNNING, attempt 1, this distributor's) is deleted.  *status: enum
 * dt_move_status (DT_MOVE_GONE: the record had moved on; nothing done). */
int dt_store_arrive_undo(dt_store *s, const char *distributor, const char *id, const char *raw,
			 size_t raw_len, const char *reason, int *status, char *err,
			 size_t errlen);
/* arrive.lua "move": an item claimed on arrival for worker from goes to
 * worker to instead (the placement changed while the distributor waited):
 * the record's worker becomes to when it is still that claim's (RUNNING,
 * attempt 1, this distributor, worker from).  *status: DT_MOVE_OK, or
 * DT_MOVE_GONE (nothing done). */
int dt_store_arrive_move(dt_store *s, const char *distributor, const char *id, const char *from,
			 const char *to, int *status, char *err, size_t errlen);
/* How many of queue-<functions[i]> hold parked tasks (EXISTS). */
int dt_store_parked(dt_store *s, const char *const *functions, size_t nf, int64_t *count,
		    char *err, size_t errlen);
/* LLEN of new-task (function NULL) or queue-<function>. */
int dt_store_queue_len(dt_store *s, const char *function, int64_t *len, char *err,
		       size_t errlen);

/* claim.lua, for a batch of taken items, or of items at new-task's tail. */
typedef struct dt_claim_req {
	const char *raw;      /* the item exactly as taken (in inflight-<d>), or
				 as peeked at new-task's tail */
	size_t raw_len;
	const dt_item *item;  /* raw, parsed by dt_item_parse() */
	const char *worker;   /* the worker it is meant for */
} dt_claim_req;
enum dt_claim_status {
	DT_CLAIM_OK,        /* RUNNING, with attempt; send "run" */
	DT_CLAIM_GONE,      /* no longer in inflight-<d>: recovered elsewhere; drop
			       it.  From the tail: not the oldest (any more):
			       nothing done */
	DT_CLAIM_DUP,       /* another copy of a task that exists: moved to bad-task */
	DT_CLAIM_CANCELLED, /* request=cancel was waiting: ended "cancelled", not run */
	DT_CLAIM_PARKED     /* from the tail only: queue-<function> of this item,
			       or of one before it in the call, holds parked
			       items, which go first: nothing done */
};
typedef struct dt_claim_res {
	int status;         /* enum dt_claim_status */
	int64_t attempt;    /* DT_CLAIM_OK: the new attempt (the fencing token) */
} dt_claim_res;
/* For each request, atomically: remove its item from
 * inflight-<distributor> (nothing else happens when it is not there);
 * claim when there is no record (item without attempt) or the record is
 * QUEUED with the item's attempt: state=RUNNING, attempt+1, worker,
 * distributor, start=update=now, data (the item->json text) unless the
 * record already has data (the first submission is kept), clean_end,
 * max_attempts, function; id into tasks and running.  A waiting
 * request=cancel ends it instead.  Any other item for the id is a
 * duplicate, pushed on bad-task as {"reason":"duplicate: ...","item":<item>}.
 * One script call for all n; res[i] for reqs[i].  A retry answers GONE
 * (an item with a generated id, as soon as its record exists: never
 * another item with the same bytes). */
int dt_store_claim(dt_store *s, const char *distributor, const dt_claim_req *reqs, size_t n,
		   dt_claim_res *res, char *err, size_t errlen);
/* The same, for items not taken but peeked (dt_store_peek): each is
 * claimed only when it is new-task's oldest item at that moment
 * (DT_CLAIM_GONE otherwise), and queue-<its function> is empty
 * (DT_CLAIM_PARKED otherwise, for it and every item after it: parked items
 * go first); it leaves new-task (RPOP) in the same atomic step.  reqs
 * oldest first.  A retry claims nothing twice.  Saves the distributor the
 * round trip of a take: a slot that frees up is claimed for in the next
 * one. */
int dt_store_claim_tail(dt_store *s, const char *distributor, const dt_claim_req *reqs, size_t n,
			dt_claim_res *res, char *err, size_t errlen);
/* The n oldest items of new-task, oldest first, without taking them. */
int dt_store_peek(dt_store *s, size_t n, dt_strv *items, char *err, size_t errlen);

enum dt_move_status { DT_MOVE_OK, DT_MOVE_GONE };

/* park.lua: for each item still in inflight-<distributor>, move it to
 * queue-<function> (LPUSH; served from the right, so in order).  res[i] is
 * DT_MOVE_OK, or DT_MOVE_GONE when it was no longer in the in-flight list
 * (then nothing is done, which also makes a retry harmless). */
typedef struct dt_park_req {
	const char *raw;
	size_t raw_len;
	const char *function;
} dt_park_req;
int dt_store_park(dt_store *s, const char *distributor, const dt_park_req *reqs, size_t n,
		  int *res, char *err, size_t errlen);

/* bad.lua: for each item still in inflight-<distributor>, move it to
 * bad-task wrapped as {"reason":"<reason>","item":"<the item as a JSON
 * string>"} (the item may not be JSON).  res[i] as for park. */
typedef struct dt_bad_req {
	const char *raw;
	size_t raw_len;
	const char *reason;
} dt_bad_req;
int dt_store_bad(dt_store *s, const char *distributor, const dt_bad_req *reqs, size_t n,
		 int *res, char *err, size_t errlen);

/* return_inflight.lua: move every item of inflight-<distributor> back to
 * the right end of new-task, in their original order (they are taken
 * next).  For a distributor's start.  *count = items moved. */
int dt_store_return_inflight(dt_store *s, const char *distributor, int64_t *count, char *err,
			     size_t errlen);
/* recover.lua: the same for another distributor, but only when its
 * distributor-<name> update is older than timeout_ms (or it has no
 * record); its record is then marked DOWN.  *count = items moved, or -1
 * when it is alive (nothing done). */
int dt_store_recover_distributor(dt_store *s, const char *distributor, int64_t timeout_ms,
				 int64_t *count, char *err, size_t errlen);

/* ------------------------------------------------------ running tasks */

typedef struct dt_task_ref {
	const char *id;
	int64_t attempt;
} dt_task_ref;

/* heartbeat.lua: for each task whose record is RUNNING with that attempt,
 * update=now and its running score=now; res[i] tells what the record asks.
 * Any other record: DT_HB_FENCED (nothing written: that copy must stop).
 * One script call for all n.  Idempotent. */
enum dt_hb_status { DT_HB_OK, DT_HB_STOP, DT_HB_CANCEL, DT_HB_FENCED };
int dt_store_heartbeat(dt_store *s, const dt_task_ref *tasks, size_t n, int *res, char *err,
		       size_t errlen);

/* finish.lua: a batch of ends, each fenced (RUNNING with its attempt, else
 * DT_FIN_FENCED and nothing changes, so a retry is fenced).
 *   DT_OUT_END, DT_OUT_FAIL: with the record's clean_end the record is
 *     deleted; otherwise state=END, end=now, result, error ("failed" for a
 *     failure without one), and the id moves from tasks to end-task.
 *   DT_OUT_STOPPED: state=STOPPED (requeued by a sweep), running score 0 so
 *     the next stale query finds it; when request=cancel caused the stop,
 *     the task is ended "cancelled" instead.
 * Any request is cleared. */
enum dt_outcome { DT_OUT_END, DT_OUT_FAIL, DT_OUT_STOPPED };
enum dt_fin_status { DT_FIN_OK, DT_FIN_FENCED };
typedef struct dt_finish_req {
	const char *id;
	int64_t attempt;
	int outcome;          /* enum dt_outcome */
	const char *result;   /* JSON text, or NULL */
	const char *error;    /* text, or NULL */
} dt_finish_req;
int dt_store_finish(dt_store *s, const dt_finish_req *reqs, size_t n, int *res, char *err,
		    size_t errlen);

/* requeue.lua: applies only to a STOPPED record, or a RUNNING one with the
 * expected attempt (any when attempt < 0) whose update is older than
 * task_timeout_ms (no staleness needed with DT_RQ_NOW).  Pushes the task
 * JSON as first submitted with ,"attempt":N spliced in before its last '}'
 * (N = the record's attempt, kept) on the right end of new-task (taken
 * next); state=QUEUED; worker, distributor, start, update cleared.  With
 * DT_RQ_COUNT_FAILURE, failures+1, and at max_attempts (the request's, or
 * the record's when < 0; 0 = no limit) the task is ended instead with
 * error "max_attempts reached: <reason>" (clean_end respected).  A waiting
 * request=cancel ends it "cancelled".  A retry finds QUEUED: skip. */
enum dt_rq_flags {
	DT_RQ_COUNT_FAILURE = 1, /* its worker died under it, or could not stop it */
	DT_RQ_NOW = 2            /* RUNNING need not be stale: the worker's connection
				    closed, or it rejected the task */
};
enum dt_rq_status { DT_RQ_REQUEUED, DT_RQ_ENDED, DT_RQ_SKIP };
typedef struct dt_requeue_req {
	const char *id;
	int64_t attempt;       /* expected attempt of a RUNNING record; < 0: any */
	const char *reason;    /* "worker died", "stale", "stopped"... (for the error) */
	unsigned flags;        /* enum dt_rq_flags */
	int64_t max_attempts;  /* < 0: the record's (default 5) */
} dt_requeue_req;
typedef struct dt_requeue_res {
	int status;            /* enum dt_rq_status */
	char state[16];        /* DT_RQ_SKIP: the record's state, "none" or "nodata" */
} dt_requeue_res;
/* One script call per request, all in one pipeline (one round trip). */
int dt_store_requeue(dt_store *s, const dt_requeue_req *reqs, size_t n, int64_t task_timeout_ms,
		     dt_requeue_res *res, char *err, size_t errlen);
/* A worker rejected a run: requeue at once without counting a failure
 * (RUNNING with that attempt >= 1, no staleness).  *status (may be NULL):
 * enum dt_rq_status. */
int dt_store_unclaim(dt_store *s, const char *id, int64_t attempt, int *status, char *err,
		     size_t errlen);

/* request.lua: `dtask stop` (what "stop") or `dtask cancel` ("cancel").
 * stop: a RUNNING record gets request=stop.  cancel: a RUNNING or QUEUED
 * record gets request=cancel; a STOPPED one is ended "cancelled" at once.
 * answer gets the record's state ("RUNNING", "QUEUED") when the request was
 * recorded, "ended", or "skip <state>" / "skip none" when nothing changed. */
int dt_store_request(dt_store *s, const char *id, const char *what, char *answer,
		     size_t answerlen, char *err, size_t errlen);

/* stale.lua: ids in running whose score (update; 0 once STOPPED) is at
 * least older_ms old by the Redis clock, oldest first, at most limit.
 * *now_ms (may be NULL) gets the Redis time of the query. */
typedef struct dt_stale {
	char *id;
	int64_t update;
} dt_stale;
int dt_store_stale(dt_store *s, int64_t older_ms, size_t limit, dt_stale **out, size_t *n,
		   int64_t *now_ms, char *err, size_t errlen);
void dt_stale_free(dt_stale *v, size_t n);

/* ------------------------------------------------ processes' records */

/* distributor.lua register: refused (DTASK_EBUSY, message in err) when
 * distributor-<name> is UP and was refreshed within timeout_ms: another
 * live distributor holds the name.  Otherwise joins distributors with
 * host, port, state=UP, update=now. */
int dt_store_register_distributor(dt_store *s, const char *name, const char *host, int port,
				  int64_t timeout_ms, char *err, size_t errlen);
/* update=now, state=UP.  *recovered (may be NULL) = 1 when the record was
 * DOWN: another distributor took this one for dead (and returned its
 * in-flight items, whose claims will answer GONE). */
int dt_store_touch_distributor(dt_store *s, const char *name, int *recovered, char *err,
			       size_t errlen);
/* state=DOWN (clean shutdown). */
int dt_store_distributor_down(dt_store *s, const char *name, char *err, size_t errlen);

/* worker.lua set: joins workers; host, port, capacity, functions (a JSON
 * array, verbatim), running=0, load=0, stuck=0, state=UP, update=now. */
int dt_store_register_worker(dt_store *s, const char *name, const char *host, int port,
			     int capacity, const char *functions_json, char *err, size_t errlen);
/* running, load (text, e.g. "0.25"), stuck, update=now. */
int dt_store_worker_update(dt_store *s, const char *name, int running, const char *load,
			   int stuck, char *err, size_t errlen);
/* state=DOWN, update=now (a distributor lost it, or it shuts down). */
int dt_store_worker_down(dt_store *s, const char *name, char *err, size_t errlen);
/* Delete a worker's record (and its name from workers) when it is DOWN
 * and older than older_ms (down_clear_interval).  *cleared (may be NULL)
 * = 1 when it was deleted. */
int dt_store_worker_clear(dt_store *s, const char *name, int64_t older_ms, int *cleared,
			  char *err, size_t errlen);

/* ------------------------------------------------------------- readers */

/* HGETALL <kind>-<name> (kind "task", "worker", "distributor") as a JSON
 * object of strings; *out = NULL when there is no such key.  The caller
 * json_object_put()s it. */
int dt_store_record(dt_store *s, const char *kind, const char *name, struct json_object **out,
		    char *err, size_t errlen);
/* SMEMBERS of a set: "tasks", "end-task", "workers", "distributors". */
int dt_store_members(dt_store *s, const char *set, dt_strv *out, char *err, size_t errlen);

/* ------------------------------------------------------------- clients */

/* LPUSH n tasks on new-task in ONE command (LPUSH new-task j0 j1 ...: j0
 * is taken first, so they run in the given order).  lens NULL: strlen.
 * The items are not checked here (dtask_submit_many() does). */
int dt_store_submit_many(dt_store *s, const char *const *jsons, const size_t *lens, size_t n,
			 char *err, size_t errlen);
/* HGETALL <kind>-<names[i]> for n names in one pipeline (one round trip);
 * out[i] as dt_store_record() gives it (NULL: no such key).  On failure
 * every out[i] is NULL. */
int dt_store_records(dt_store *s, const char *kind, const char *const *names, size_t n,
		     struct json_object **out, char *err, size_t errlen);
/* clean.lua: delete task-<id> as clean_end would (the id leaves end-task,
 * tasks, running), but only when its state is END.  answer: "cleaned", or
 * "skip <state>" / "skip none" when nothing changed. */
int dt_store_clean(dt_store *s, const char *id, char *answer, size_t answerlen, char *err,
		   size_t errlen);

/* ------------------------------------------------------------ pipelines */

/*
 * Several calls in one round trip: add them to a batch made for a store,
 * then dt_batch_exec().  Inputs are copied when added; the result arrays
 * (res) must stay valid until dt_batch_exec() returns, which fills them.
 * After exec the batch is empty and may be reused.  A batch belongs to its
 * store's thread.  The single calls above are one-call batches.
 *
 * dt_batch_exec() sends every call (EVALSHA), reads every reply, then
 * resends with EVAL the calls that got NOSCRIPT and reads those replies.
 * Returns 0 when every call succeeded; otherwise DTASK_EREDIS with the
 * first failure's message and the connection dropped.  When some calls got
 * an error reply, the results of the others are filled in; when the link
 * failed, none are (any of them may have run: retry, they are
 * idempotent).  DTASK_ENOMEM if adding a call had failed.
 */
typedef struct dt_batch dt_batch;
dt_batch *dt_batch_new(dt_store *s);  /* NULL: out of memory */
void dt_batch_free(dt_batch *b);
size_t dt_batch_count(const dt_batch *b); /* calls added since the last exec */
/* Each returns 0 or DTASK_ENOMEM / DTASK_EINVAL (then nothing is added). */
int dt_batch_heartbeat(dt_batch *b, const dt_task_ref *tasks, size_t n, int *res);
int dt_batch_finish(dt_batch *b, const dt_finish_req *reqs, size_t n, int *res);
int dt_batch_requeue(dt_batch *b, const dt_requeue_req *reqs, size_t n, int64_t task_timeout_ms,
		     dt_requeue_res *res);
int dt_batch_claim(dt_batch *b, const char *distributor, const dt_claim_req *reqs, size_t n,
		   dt_claim_res *res);
int dt_batch_claim_tail(dt_batch *b, const char *distributor, const dt_claim_req *reqs, size_t n,
			dt_claim_res *res);
/* items filled by the exec when it succeeds; free it either way. */
int dt_batch_peek(dt_batch *b, size_t n, dt_strv *items);
int dt_batch_park(dt_batch *b, const char *distributor, const dt_park_req *reqs, size_t n,
		  int *res);
int dt_batch_bad(dt_batch *b, const char *distributor, const dt_bad_req *reqs, size_t n,
		 int *res);
/* dt_store_take_multi() in a batch (the distributor takes its next items
 * in the round trip that claims the current ones).  items is filled by
 * the exec when it succeeds; free it (dt_strv_free) either way. */
int dt_batch_take_multi(dt_batch *b, const char *distributor, const char *const *functions,
			const size_t *counts, size_t nf, size_t n, dt_strv *items);
int dt_batch_exec(dt_batch *b, char *err, size_t errlen);
/* Drops every call added since the last exec, unsent (after an add
 * failed: the calls before it point at the caller's results). */
void dt_batch_clear(dt_batch *b);

#endif
