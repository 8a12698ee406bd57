/*
 * proto.h - the messages exchanged after authentication (doc/PROTOCOL.md
 * section 6 is the reference; this is its summary for the C code).
 *
 * Every message is one JSON object on one line with a string "type".
 * Lists of tasks are arrays of [id, attempt] pairs, so many tasks travel
 * in one message.  "free" is the worker's free task slots when it sent the
 * message (all distributors share them): the distributor's placement uses
 * the latest one minus the runs it sent since.
 *
 * worker -> distributor
 *   {"type":"hello","version":1,"name":S,"host":S,"port":N,"capacity":N,
 *    "free":N,"functions":[S,...]}
 *       first message; host/port: the worker's watcher listener (port 0:
 *       none).  The distributor answers "hello", or "error" and closes
 *       (another worker of that name is connected here).
 *   {"type":"health","load":F,"free":N,"tasks":[[S,N],...]}
 *       every health_interval; tasks: every task the worker runs, from any
 *       distributor (the sweeps never requeue those).
 *   {"type":"started","free":N,"tasks":[[S,N],...]}
 *       these runs were taken into slots (one message for a batch).  The
 *       C worker starts the tasks first and then sends "started", so a
 *       quick task's "ended"/"stopped"/"free" may come before it.
 *   {"type":"ended","free":N,"tasks":[[S,N],...]}
 *       these tasks ended (END written to Redis, or fenced: their record is
 *       no longer this copy's); the distributor forgets them.
 *   {"type":"stopped","free":N,"tasks":[[S,N],...]}
 *       these tasks stopped and STOPPED is written: requeue them now.
 *       After "redis_down" STOPPED could not be written: the distributor
 *       requeues them at once, fenced by their attempt (SPEC 5.4).
 *   {"type":"redis_down"} / {"type":"redis_up"}
 *       the worker lost Redis / has it back (SPEC 5.4).  Between the two
 *       the distributor sends it no run and refreshes, fenced, the update
 *       of the tasks its "health" lists.
 *   {"type":"free","free":N,"seq":N}
 *       task slots came free (functions returned) before their ends are
 *       written: the distributor may fill them now, while the "ended"
 *       follows once the ends are in Redis.  Only "free" and "seq" count.
 *   {"type":"reject","id":S,"attempt":N,"function":S,"reason":S,"free":N}
 *       the worker cannot take that run; reason "full", "unknown function",
 *       "draining", "redis down", or "invalid task" (the run could not be read: the
 *       distributor requeues it counting a failure, so max_attempts ends a
 *       task that no worker can read).  The distributor requeues it at once (no failure);
 *       after "unknown function" it sends that worker no more of function,
 *       after "draining" nothing more.
 *
 * distributor -> worker
 *   {"type":"hello","version":1,"name":S}
 *   {"type":"health"}
 *       every health_interval.
 *   {"type":"run","id":S,"attempt":N,"function":S,"task":{...}}
 *       task: the queue item exactly as submitted (data, clean_end,
 *       state_optional, ... inside), never re-encoded.  Framing rule:
 *       "task" is the LAST member, and its value is the item's bytes
 *       copied into the line, so a receiver can take them verbatim
 *       (everything after "task": up to the line's final '}').  A receiver
 *       must not re-serialize a parsed "task" (json-c and Lua re-encode);
 *       the C worker takes the raw bytes of the top-level "task" member
 *       with a scanner (dt_json_member), which also works wherever the
 *       member is.  "id" and "function" must equal the task's own.
 *   {"type":"stop","id":S,"attempt":N,"reason":S}
 *
 * either way
 *   {"type":"error","message":S}   never answered with another error.
 *
 * A receiver ignores fields it does not know.  An unknown "type" is
 * answered with "error" and the connection stays.
 */
#ifndef DT_PROTO_H
#define DT_PROTO_H

#define DT_PROTO_VERSION 1

#define DT_MSG_HELLO "hello"
#define DT_MSG_HEALTH "health"
#define DT_MSG_STARTED "started"
#define DT_MSG_ENDED "ended"
#define DT_MSG_STOPPED "stopped"
#define DT_MSG_REJECT "reject"
#define DT_MSG_FREE "free"
#define DT_MSG_RUN "run"
#define DT_MSG_STOP "stop"
#define DT_MSG_ERROR "error"
#define DT_MSG_REDIS_DOWN "redis_down"
#define DT_MSG_REDIS_UP "redis_up"

#define DT_REJECT_FULL "full"
#define DT_REJECT_UNKNOWN "unknown function"
#define DT_REJECT_REDIS "redis down"
#define DT_REJECT_DRAINING "draining"
#define DT_REJECT_INVALID "invalid task"

#endif
