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

/* ------------------------------------------------------------ JSON helpers */

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int dt_json_check(const char *s, size_t len, json_object **out, char *err, size_t errlen)
{
	if (out)
		*out = NULL;
	if (!s)
		return dt_err(err, errlen, DTASK_EINVAL, "no JSON text");
	if (len > (size_t)INT32_MAX - 1)
		return dt_err(err, errlen, DTASK_EINVAL, "JSON text too large");
	if (memchr(s, '\0', len))
		return dt_err(err, errlen, DTASK_EINVAL, "not valid JSON (contains a NUL byte)");
	char jwhy[96];
	if (dt_json_valid(s, len, jwhy, sizeof jwhy) < 0)
		return dt_err(err, errlen, DTASK_EINVAL, "not valid JSON (%s)", jwhy);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return DTASK_ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, s, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue && end == len) {
		/* A number or literal at the very end: the terminator ends it. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	int rc = 0;
	if (jerr != json_tokener_success) {
		rc = dt_err(err, errlen, DTASK_EINVAL, "not valid JSON (%s)",
			    jerr == json_tokener_continue ? "truncated"
							  : json_tokener_error_desc(jerr));
	} else {
		for (size_t i = end; i < len; i++) {
			if (!is_ws(s[i])) {
				rc = dt_err(err, errlen, DTASK_EINVAL,
					    "not valid JSON (text after the value)");
				break;
			}
		}
	}
	json_tokener_free(tok);
	if (rc < 0 || !out)
		json_object_put(o);
	else
		*out = o;
	return rc;
}

/* Past the string starting at s[i] == '"'; len if unterminated. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return len;
}

/* Past the value starting at s[i] (the text is known to be valid JSON). */
static size_t skip_value(const char *s, size_t len, size_t i)
{
	if (i >= len)
		return len;
	if (s[i] == '"')
		return skip_string(s, len, i);
	if (s[i] == '{' || s[i] == '[') {
		int depth = 0;
		while (i < len) {
			char c = s[i];
			if (c == '"') {
				i = skip_string(s, len, i);
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if (c == '}' || c == ']') {
				if (--depth == 0)
					return i + 1;
			}
			i++;
		}
		return len;
	}
	while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i]))
		i++;
	return i;
}

/* Does the raw key (with its quotes) spell name?  Escapes are decoded,
 * and the name compares as a C string, up to an escaped NUL: json-c keeps
 * object keys that way, so "task\u0000" is its "task" too, and the
 * member found here is the one json-c reads (the last of that name). */
static int key_is(const char *k, size_t klen, const char *name)
{
	size_t nlen = strlen(name);
	if (!memchr(k, '\\', klen))
		return klen == nlen + 2 && memcmp(k + 1, name, nlen) == 0;
	json_object *o = NULL;
	if (dt_json_check(k, klen, &o, NULL, 0) < 0 || !o)
		return 0;
	int eq = json_object_is_type(o, json_type_string) &&
		 strcmp(json_object_get_string(o), name) == 0;
	json_object_put(o);
	return eq;
}

int dt_json_member(const char *s, size_t len, const char *name, const char **val,
		   size_t *vlen)
{
	size_t i = 0;
	int found = 0;
	while (i < len && is_ws(s[i]))
		i++;
	if (i >= len || s[i] != '{')
		return DTASK_EINVAL;
	i++;
	for (;;) {
		while (i < len && is_ws(s[i]))
			i++;
		if (i >= len)
			return DTASK_EINVAL;
		if (s[i] == '}')
			return found;
		if (s[i] != '"')
			return DTASK_EINVAL;
		size_t k = i;
		i = skip_string(s, len, i);
		size_t klen = i - k;
		while (i < len && is_ws(s[i]))
			i++;
		if (i >= len || s[i] != ':')
			return DTASK_EINVAL;
		i++;
		while (i < len && is_ws(s[i]))
			i++;
		size_t v = i;
		i = skip_value(s, len, i);
		if (i == v)
			return DTASK_EINVAL;
		if (key_is(s + k, klen, name)) {
			*val = s + v;
			*vlen = i - v;
			found = 1;
		}
		while (i < len && is_ws(s[i]))
			i++;
		if (i < len && s[i] == ',')
			i++;
	}
}

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
