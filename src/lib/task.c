/*
 * task.c - the dtask handle: what a task function sees (dtask.h) and the
 * flags the worker's other threads set on it (task_internal.h).
 *
 * DESIGN
 *   Owns: one struct dtask per accepted run: its fixed identity, its data
 *   (decoded once at creation, parsed into json-c lazily on the task's own
 *   thread), its result and error, and its flags.
 *   Threads: the link thread creates it; its pool thread (the "task's own
 *   thread") runs the function and is the only one to touch data_json,
 *   result and error until it marks the task returned; link, health, state
 *   and main threads set or read the flags; the state thread frees it.
 *   Locks: t->lock only, guarding the flags (stop kind and time, paused,
 *   released, returned, status); waiters use t->cond (CLOCK_MONOTONIC) in
 *   predicate loops, and every flag change broadcasts it.  t->lock is a
 *   leaf: callers may hold the worker's lock while taking it, never the
 *   other way round.
 */
#include "build-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "dtask.h"
#include "json.h"
#include "log.h"
#include "task_internal.h"
#include "util.h"
#include "watch.h"
#include "worker_internal.h"

/* ------------------------------------------------------------ life cycle */

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* "data" as the function gets it (see dtask_data()). */
static int decode_data(dtask *t, char *err, size_t errlen)
{
	const char *v;
	size_t vlen;
	int rc = dt_json_member(t->item, t->item_len, "data", &v, &vlen);
	if (rc < 0)
		return dt_err(err, errlen, DTASK_EINVAL, "the task is not a JSON object");
	if (rc == 0) {
		t->data = strdup("null");
		return t->data ? 0 : DTASK_ENOMEM;
	}
	if (v[0] == '"') {
		/* The 2014 form: a string holding JSON is given decoded; any
		 * other string stays a JSON string. */
		json_object *str = NULL;
		if ((rc = dt_json_check(v, vlen, &str, err, errlen)) < 0)
			return rc;
		const char *in = json_object_get_string(str);
		size_t inlen = (size_t)json_object_get_string_len(str);
		if (dt_json_check(in, inlen, NULL, NULL, 0) == 0)
			t->data = dup_n(in, inlen);
		else
			t->data = dup_n(v, vlen);
		json_object_put(str);
	} else {
		t->data = dup_n(v, vlen);
	}
	return t->data ? 0 : DTASK_ENOMEM;
}

int dt_task_new(const char *id, int64_t attempt, const char *function, const char *item,
		size_t len, int state_optional, dtask **out, char *err, size_t errlen)
{
	int rc = DTASK_ENOMEM;
	dtask *t = calloc(1, sizeof *t);
	if (!t)
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	t->attempt = attempt;
	t->state_optional = state_optional;
	t->link = -1;
	dt_mutex_init_hot(&t->lock);
	if (dt_cond_init_monotonic(&t->cond) != 0) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return dt_err(err, errlen, DTASK_ENOMEM, "cannot create a condition variable");
	}
	if (!(t->id = strdup(id)) || !(t->function = strdup(function)) ||
	    !(t->item = dup_n(item, len)))
		goto fail;
	t->item_len = len;
	if ((rc = decode_data(t, err, errlen)) < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	if (rc == DTASK_ENOMEM)
		dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	dt_task_free(t);
	return rc;
}

void dt_task_free(dtask *t)
{
	if (!t)
		return;
	json_object_put(t->data_json);
	free(t->id);
	free(t->function);
	free(t->item);
	free(t->data);
	free(t->result);
	free(t->error);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const char *dt_stop_kind_name(int kind)
{
	switch (kind) {
	case DT_STOP_NONE: return "none";
	case DT_STOP_STOP: return "stop";
	case DT_STOP_CANCEL: return "cancel";
	case DT_STOP_SHUTDOWN: return "shutdown";
	case DT_STOP_LOST: return "distributor lost";
	case DT_STOP_FENCED: return "fenced";
	case DT_STOP_REDIS: return "Redis lost";
	default: return "?";
	}
}

/* ------------------------------------------------------ flags (any thread) */

int dt_task_request_stop(dtask *t, int kind)
{
	int raised = 0;
	pthread_mutex_lock(&t->lock);
	if (kind > t->stop_kind) {
		t->stop_kind = kind;
		raised = 1;
	}
	if (!t->stop_requested_at)
		t->stop_requested_at = dt_mono_ms();
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return raised;
}

void dt_task_set_paused(dtask *t, int paused)
{
	pthread_mutex_lock(&t->lock);
	t->paused = paused;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void dt_task_release(dtask *t)
{
	pthread_mutex_lock(&t->lock);
	t->released = 1;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void dt_task_wait_released(dtask *t)
{
	pthread_mutex_lock(&t->lock);
	while (!t->released)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

void dt_task_mark_returned(dtask *t, int status)
{
	pthread_mutex_lock(&t->lock);
	t->status = status;
	t->returned = 1;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void dt_task_flags(dtask *t, int *stop_kind, int64_t *stop_requested_at, int *returned,
		   int *status)
{
	pthread_mutex_lock(&t->lock);
	if (stop_kind)
		*stop_kind = t->stop_kind;
	if (stop_requested_at)
		*stop_requested_at = t->stop_requested_at;
	if (returned)
		*returned = t->returned;
	if (status)
		*status = t->status;
	pthread_mutex_unlock(&t->lock);
}

/* ------------------------------------------- the public API (task thread) */

const char *dtask_id(const dtask *t)
{
	return t->id;
}

const char *dtask_function(const dtask *t)
{
	return t->function;
}

long long dtask_attempt(const dtask *t)
{
	return (long long)t->attempt;
}

const char *dtask_data(const dtask *t)
{
	return t->data;
}

json_object *dtask_data_json(const dtask *t)
{
	/* A cache filled on first use; only the task's own thread calls this. */
	dtask *m = (dtask *)t;
	if (!m->data_parsed) {
		m->data_parsed = 1;
		if (dt_json_check(m->data, strlen(m->data), &m->data_json, NULL, 0) < 0)
			m->data_json = NULL;
	}
	return m->data_json;
}

int dtask_checkpoint(dtask *t)
{
	pthread_mutex_lock(&t->lock);
	while (t->paused && t->stop_kind == DT_STOP_NONE)
		pthread_cond_wait(&t->cond, &t->lock);
	int stop = t->stop_kind != DT_STOP_NONE;
	pthread_mutex_unlock(&t->lock);
	return stop;
}

int dtask_sleep(dtask *t, unsigned ms)
{
	struct timespec deadline;
	dt_deadline(&deadline, (int64_t)ms);
	pthread_mutex_lock(&t->lock);
	while (t->stop_kind == DT_STOP_NONE) {
		int rc = pthread_cond_timedwait(&t->cond, &t->lock, &deadline);
		if (rc == ETIMEDOUT)
			break;
	}
	while (t->paused && t->stop_kind == DT_STOP_NONE)
		pthread_cond_wait(&t->cond, &t->lock);
	int stop = t->stop_kind != DT_STOP_NONE;
	pthread_mutex_unlock(&t->lock);
	return stop;
}

int dtask_emit(dtask *t, const char *event, const char *json)
{
	if (!t || !dt_event_name_valid(event))
		return DTASK_EINVAL;
	if (json && dt_json_check(json, strlen(json), NULL, NULL, 0) < 0)
		return DTASK_EINVAL;
	log_debug("task %s event %s: %s", t->id, event, json ? json : "null");
	dt_worker_emit(t->owner, t, event, json);
	return 0;
}

int dtask_set_result(dtask *t, const char *json)
{
	char why[128];
	if (!json)
		return DTASK_EINVAL;
	int rc = dt_json_check(json, strlen(json), NULL, why, sizeof why);
	if (rc < 0) {
		if (rc == DTASK_EINVAL)
			log_warn("task %s: result refused: %s", t->id, why);
		return rc;
	}
	char *copy = strdup(json);
	if (!copy)
		return DTASK_ENOMEM;
	free(t->result);
	t->result = copy;
	return 0;
}

int dtask_set_error(dtask *t, const char *message)
{
	if (!message)
		return DTASK_EINVAL;
	char *copy = strdup(message);
	if (!copy)
		return DTASK_ENOMEM;
	free(t->error);
	t->error = copy;
	return 0;
}
