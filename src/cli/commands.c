/*
 * commands.c - the dtask commands (SPEC 7): each parses its arguments,
 * makes one client, calls the public API and prints for people (tables,
 * "key: value" lines, one-line answers) or, with --json, one JSON document
 * on stdout.
 */
#include "build-config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"

/* ------------------------------------------------------------- helpers */

static const char *sfield(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A field or "-" when absent or empty. */
static const char *dash(const char *s)
{
	return s && s[0] ? s : "-";
}

static void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* JSON text pretty-printed with indent (the text itself when it is not
 * JSON). */
static void print_pretty(const char *text, const char *indent)
{
	struct json_object *o = json_tokener_parse(text);
	const char *out = text;
	if (o || !strcmp(text, "null"))
		out = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
	for (const char *p = out; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		printf("%s%.*s\n", indent, (int)n, p);
		p += n + (e ? 1 : 0);
	}
	json_object_put(o);
}

/* An integer option value ("--max-attempts N"). */
static int parse_int(const char *cmd, const char *opt, const char *s, long min, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!s[0] || *end || errno || v < min || v > INT_MAX)
		return cli_usage(cmd, "%s needs an integer >= %ld, not \"%s\"", opt, min, s);
	*out = (int)v;
	return 0;
}

/* The value of "--name VALUE" or "--name=VALUE" at argv[*i]; NULL when
 * argv[*i] is not that option, "" after a usage error (printed). */
static const char *opt_value(const char *cmd, const char *name, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=') {
		(*i)++;
		return a + n + 1;
	}
	if (a[n])
		return NULL;
	if (*i + 1 >= argc) {
		cli_usage(cmd, "%s needs a value", name);
		return "";
	}
	*i += 2;
	return argv[*i - 1];
}

/* Age in seconds of a ms timestamp field, "-" when absent. */
static void age(char *buf, size_t len, long long now, const char *ms)
{
	char *end;
	long long t = ms && ms[0] ? strtoll(ms, &end, 10) : 0;
	if (!ms || !ms[0] || *end || t <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	long long d = now - t;
	if (d < 0)
		d = 0;
	snprintf(buf, len, "%llds", d / 1000);
}

/* A table: ncols columns, rows of strings; columns padded to their widest
 * cell, two spaces apart, the last one not padded. */
struct table {
	int ncols;
	size_t nrows, cap;
	char **cells; /* nrows * ncols, malloc'd */
};

static int table_add(struct table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		size_t c = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, c * (size_t)t->ncols * sizeof *p);
		if (!p)
			return -1;
		t->cells = p;
		t->cap = c;
	}
	char **r = t->cells + t->nrows * (size_t)t->ncols;
	for (int k = 0; k < t->ncols; k++) {
		r[k] = strdup(row[k] ? row[k] : "-");
		if (!r[k]) {
			while (k-- > 0)
				free(r[k]);
			return -1;
		}
	}
	t->nrows++;
	return 0;
}

static void table_print_free(struct table *t)
{
	size_t w[16] = { 0 };
	for (size_t i = 0; i < t->nrows; i++)
		for (int k = 0; k < t->ncols && k < 16; k++) {
			size_t n = strlen(t->cells[i * (size_t)t->ncols + (size_t)k]);
			if (n > w[k])
				w[k] = n;
		}
	for (size_t i = 0; i < t->nrows; i++) {
		for (int k = 0; k < t->ncols; k++) {
			const char *s = t->cells[i * (size_t)t->ncols + (size_t)k];
			if (k == t->ncols - 1)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[k], s);
		}
	}
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* Parse a command whose only argument is one ID (plus global options). */
static int one_id(struct cli *cli, int argc, char **argv, const char **id)
{
	*id = NULL;
	int i = 1;
	while (i < argc) {
		int r = cli_global_opt(cli, argc, argv, &i);
		if (r < 0)
			return CLI_ERROR;
		if (r)
			continue;
		const char *a = argv[i];
		if (a[0] == '-' && a[1] && strcmp(a, "--"))
			return cli_usage(argv[0], "unknown option %s", a);
		if (!strcmp(a, "--")) {
			if (++i < argc && !*id)
				*id = argv[i++];
			if (i < argc)
				return cli_usage(argv[0], "too many arguments");
			break;
		}
		if (*id)
			return cli_usage(argv[0], "too many arguments");
		*id = a;
		i++;
	}
	if (!*id)
		return cli_usage(argv[0], "no task ID given");
	return CLI_OK;
}

/* ------------------------------------------------------------- submit */

int cmd_submit(struct cli *cli, int argc, char **argv)
{
	const char *cmd = argv[0], *function = NULL, *data = NULL;
	dtask_submit_opts o;
	int wait = 0, timeout = -1, have_timeout = 0, npos = 0;
	memset(&o, 0, sizeof o);

	for (int i = 1; i < argc;) {
		int r = cli_global_opt(cli, argc, argv, &i);
		if (r < 0)
			return CLI_ERROR;
		if (r)
			continue;
		const char *a = argv[i], *v;
		if ((v = opt_value(cmd, "--id", argc, argv, &i))) {
			if (!v[0])
				return CLI_ERROR;
			o.id = v;
		} else if ((v = opt_value(cmd, "--max-attempts", argc, argv, &i))) {
			if (!v[0] || parse_int(cmd, "--max-attempts", v, 0, &o.max_attempts))
				return CLI_ERROR;
			if (o.max_attempts == 0)
				o.max_attempts = -1; /* 0 = no limit, as in the task JSON */
		} else if ((v = opt_value(cmd, "--timeout", argc, argv, &i))) {
			if (!v[0] || parse_int(cmd, "--timeout", v, 0, &timeout))
				return CLI_ERROR;
			have_timeout = 1;
		} else if (!strcmp(a, "--keep-end")) {
			o.keep_end = 1;
			i++;
		} else if (!strcmp(a, "--state-optional")) {
			o.state_optional = 1;
			i++;
		} else if (!strcmp(a, "--wait")) {
			wait = 1;
			i++;
		} else if (a[0] == '-' && a[1] && !(npos == 1 && (a[1] == '.' ||
							 (a[1] >= '0' && a[1] <= '9')))) {
			/* (a negative number is DATA) */
			return cli_usage(cmd, "unknown option %s", a);
		} else {
			if (npos == 0)
				function = a;
			else if (npos == 1)
				data = a;
			else
				return cli_usage(cmd, "too many arguments");
			npos++;
			i++;
		}
	}
	if (!function)
		return cli_usage(cmd, "no FUNCTION given");
	if (have_timeout && !wait)
		return cli_usage(cmd, "--timeout needs --wait");

	dtask_client *c = cli_client(cli);
	if (!c)
		return CLI_ERROR;
	int user_keep = o.keep_end;
	if (wait)
		o.keep_end = 1; /* read the end, then clean as clean_end would */
	char id[DTASK_ID_MAX + 1];
	int rc = dtask_submit(c, function, data, &o, id);
	if (rc) {
		rc = cli_fail(c, rc, NULL);
		dtask_client_free(c);
		return rc;
	}
	if (!wait) {
		if (cli->json) {
			struct json_object *j = json_object_new_object();
			json_object_object_add(j, "id", json_object_new_string(id));
			print_json(j);
			json_object_put(j);
		} else {
			printf("%s\n", id);
		}
		dtask_client_free(c);
		return CLI_OK;
	}

	struct json_object *rec = NULL;
	rc = dtask_wait(c, id, timeout, !user_keep, &rec);
	if (rc) {
		if (rc == DTASK_ETIMEDOUT)
			rc = cli_error("task %s did not end within %d ms (its record is kept: "
				       "dtask show %s)", id, timeout, id);
		else
			rc = cli_fail(c, rc, NULL);
		dtask_client_free(c);
		return rc;
	}
	const char *err = sfield(rec, "error"), *result = sfield(rec, "result");
	if (cli->json) {
		json_object_object_add(rec, "id", json_object_new_string(id));
		print_json(rec);
	} else if (result) {
		printf("%s\n", result);
	}
	rc = CLI_OK;
	if (err) {
		fprintf(stderr, "dtask: task %s failed: %s\n", id, err);
		rc = CLI_FAILED;
	}
	json_object_put(rec);
	dtask_client_free(c);
	return rc;
}

/* ------------------------------------------------------------- list */

int cmd_list(struct cli *cli, int argc, char **argv)
{
	const char *cmd = argv[0], *state = NULL;
	for (int i = 1; i < argc;) {
		int r = cli_global_opt(cli, argc, argv, &i);
		if (r < 0)
			return CLI_ERROR;
		if (r)
			continue;
		const char *v = opt_value(cmd, "--state", argc, argv, &i);
		if (v && !v[0])
			return CLI_ERROR;
		if (!v)
			return cli_usage(cmd, argv[i][0] == '-' ? "unknown option %s"
								: "unexpected argument %s", argv[i]);
		state = v;
	}
	if (state && strcmp(state, "QUEUED") && strcmp(state, "RUNNING") &&
	    strcmp(state, "STOPPED") && strcmp(state, "END"))
		return cli_usage(cmd, "--state must be QUEUED, RUNNING, STOPPED or END, not \"%s\"",
				 state);

	dtask_client *c = cli_client(cli);
	if (!c)
		return CLI_ERROR;
	struct json_object *arr = NULL;
	long long now = 0;
	int rc = dtask_list(c, state, &arr);
	if (!rc && !cli->json)
		rc = dtask_client_time(c, &now);
	if (rc) {
		json_object_put(arr);
		rc = cli_fail(c, rc, NULL);
		dtask_client_free(c);
		return rc;
	}
	if (cli->json) {
		print_json(arr);
	} else {
		struct table t = { 6, 0, 0, NULL };
		const char *head[] = { "ID", "STATE", "FUNCTION", "ATTEMPT", "WORKER", "AGE" };
		int oom = table_add(&t, head);
		for (size_t i = 0; i < json_object_array_length(arr) && !oom; i++) {
			struct json_object *r = json_object_array_get_idx(arr, i);
			const char *st = sfield(r, "state");
			const char *when = st && !strcmp(st, "END") ? sfield(r, "end")
								    : sfield(r, "update");
			char a[32];
			age(a, sizeof a, now, when);
			const char *row[] = { sfield(r, "id"), dash(st), dash(sfield(r, "function")),
					      dash(sfield(r, "attempt")), dash(sfield(r, "worker")),
					      a };
			oom = table_add(&t, row);
		}
		table_print_free(&t);
		if (oom)
			rc = cli_error("out of memory");
	}
	json_object_put(arr);
	dtask_client_free(c);
	return rc;
}

/* ------------------------------------------------------------- show */

int cmd_show(struct cli *cli, int argc, char **argv)
{
	const char *id;
	int rc = one_id(cli, argc, argv, &id);
	if (rc)
		return rc;
	dtask_client *c = cli_client(cli);
	if (!c)
		return CLI_ERROR;
	struct json_object *rec = NULL;
	long long now = 0;
	rc = dtask_get(c, id, &rec);
	if (!rc && !cli->json)
		rc = dtask_client_time(c, &now);
	if (rc) {
		json_object_put(rec);
		rc = cli_fail(c, rc, id);
		dtask_client_free(c);
		return rc;
	}
	if (cli->json) {
		json_object_object_add(rec, "id", json_object_new_string(id));
		print_json(rec);
	} else {
		static const char *const order[] = {
			"state", "function", "attempt", "failures", "worker", "distributor",
			"start", "update", "end", "request", "error", "clean_end", "max_attempts"
		};
		static const char *const times[] = { "start", "update", "end" };
		printf("%-13s %s\n", "id:", id);
		for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
			const char *v = sfield(rec, order[k]);
			if (!v)
				continue;
			char name[32];
			snprintf(name, sizeof name, "%s:", order[k]);
			int is_time = 0;
			for (size_t j = 0; j < 3; j++)
				is_time |= !strcmp(order[k], times[j]);
			char a[32] = "";
			if (is_time)
				age(a, sizeof a, now, v);
			if (is_time && strcmp(a, "-"))
				printf("%-13s %s (%s ago)\n", name, v, a);
			else
				printf("%-13s %s\n", name, v);
		}
		/* Fields beyond the known ones, then data and result, pretty. */
		json_object_object_foreach(rec, key, val) {
			int known = !strcmp(key, "data") || !strcmp(key, "result");
			for (size_t k = 0; k < sizeof order / sizeof order[0] && !known; k++)
				known = !strcmp(key, order[k]);
			if (!known) {
				char name[140];
				snprintf(name, sizeof name, "%s:", key);
				printf("%-13s %s\n", name, json_object_get_string(val));
			}
		}
		const char *d = sfield(rec, "data"), *r = sfield(rec, "result");
		if (d) {
			printf("data:\n");
			print_pretty(d, "  ");
		}
		if (r) {
			printf("result:\n");
			print_pretty(r, "  ");
		}
	}
	json_object_put(rec);
	dtask_client_free(c);
	return CLI_OK;
}

/* ------------------------------------------------ stop, cancel, requeue */

/* One line (or a JSON object) saying what happened to id after action. */
static int changed(struct cli *cli, dtask_client *c, const char *action, const char *id)
{
	struct json_object *rec = NULL;
	int rc = dtask_get(c, id, &rec);
	if (rc && rc != DTASK_ENOTFOUND)
		return cli_fail(c, rc, NULL);
	const char *st = rc ? NULL : sfield(rec, "state");
	if (cli->json) {
		struct json_object *j = json_object_new_object();
		json_object_object_add(j, "id", json_object_new_string(id));
		json_object_object_add(j, "action", json_object_new_string(action));
		json_object_object_add(j, "state", st ? json_object_new_string(st) : NULL);
		const char *att = rec ? sfield(rec, "attempt") : NULL;
		if (att)
			json_object_object_add(j, "attempt", json_object_new_string(att));
		print_json(j);
		json_object_put(j);
	} else if (!strcmp(action, "stop")) {
		printf("task %s: stop requested; it becomes STOPPED and is requeued\n", id);
	} else if (!strcmp(action, "cancel")) {
		if (!st || !strcmp(st, "END"))
			printf("task %s cancelled: ended with error \"cancelled\"%s\n", id,
			       st ? "" : " (record cleaned)");
		else if (!strcmp(st, "QUEUED"))
			printf("task %s: cancel requested; it ends cancelled at its next claim, "
			       "without running\n", id);
		else
			printf("task %s: cancel requested; its worker stops it and it ends "
			       "\"cancelled\"\n", id);
	} else {
		if (st && !strcmp(st, "QUEUED"))
			printf("task %s requeued (attempt %s so far; a running copy is fenced at "
			       "its next heartbeat)\n", id, dash(sfield(rec, "attempt")));
		else
			printf("task %s ended instead: a cancel request was waiting\n", id);
	}
	json_object_put(rec);
	return CLI_OK;
}

static int change(struct cli *cli, int argc, char **argv, int (*fn)(dtask_client *, const char *))
{
	const char *id;
	int rc = one_id(cli, argc, argv, &id);
	if (rc)
		return rc;
	dtask_client *c = cli_client(cli);
	if (!c)
		return CLI_ERROR;
	rc = fn(c, id);
	if (rc)
		rc = cli_fail(c, rc, id);
	else
		rc = changed(cli, c, argv[0], id);
	dtask_client_free(c);
	return rc;
}

int cmd_stop(struct cli *cli, int argc, char **argv)
{
	return change(cli, argc, argv, dtask_stop);
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
	return change(cli, argc, argv, dtask_cancel);
}

int cmd_requeue(struct cli *cli, int argc, char **argv)
{
	return change(cli, argc, argv, dtask_requeue);
}

/* ------------------------------------------------------------- workers */

/* ["a","b"] -> "a,b" into buf (the text itself when it is not an array). */
static void functions(char *buf, size_t len, const char *json)
{
	buf[0] = '\0';
	struct json_object *a = json ? json_tokener_parse(json) : NULL;
	if (!a || !json_object_is_type(a, json_type_array)) {
		snprintf(buf, len, "%s", dash(json));
		json_object_put(a);
		return;
	}
	size_t used = 0;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, i));
		int n = snprintf(buf + used, len - used, "%s%s", i ? "," : "", s ? s : "");
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "-");
	json_object_put(a);
}

int cmd_workers(struct cli *cli, int argc, char **argv)
{
	for (int i = 1; i < argc;) {
		int r = cli_global_opt(cli, argc, argv, &i);
		if (r < 0)
			return CLI_ERROR;
		if (!r)
			return cli_usage(argv[0], argv[i][0] == '-' ? "unknown option %s"
								    : "unexpected argument %s", argv[i]);
	}
	dtask_client *c = cli_client(cli);
	if (!c)
		return CLI_ERROR;
	struct json_object *arr = NULL;
	long long now = 0;
	int rc = dtask_workers(c, &arr);
	if (!rc && !cli->json)
		rc = dtask_client_time(c, &now);
	if (rc) {
		json_object_put(arr);
		rc = cli_fail(c, rc, NULL);
		dtask_client_free(c);
		return rc;
	}
	if (cli->json) {
		print_json(arr);
	} else {
		struct table t = { 7, 0, 0, NULL };
		const char *head[] = { "NAME", "STATE", "RUNNING/CAPACITY", "LOAD", "FUNCTIONS",
				       "HOST:PORT", "AGE" };
		int oom = table_add(&t, head);
		for (size_t i = 0; i < json_object_array_length(arr) && !oom; i++) {
			struct json_object *w = json_object_array_get_idx(arr, i);
			char rc_[64], hp[300], fn[512], a[32];
			snprintf(rc_, sizeof rc_, "%s/%s", dash(sfield(w, "running")),
				 dash(sfield(w, "capacity")));
			snprintf(hp, sizeof hp, "%s:%s", dash(sfield(w, "host")),
				 dash(sfield(w, "port")));
			functions(fn, sizeof fn, sfield(w, "functions"));
			age(a, sizeof a, now, sfield(w, "update"));
			const char *row[] = { sfield(w, "name"), dash(sfield(w, "state")), rc_,
					      dash(sfield(w, "load")), fn, hp, a };
			oom = table_add(&t, row);
		}
		table_print_free(&t);
		if (oom)
			rc = cli_error("out of memory");
	}
	json_object_put(arr);
	dtask_client_free(c);
	return rc;
}

/* ------------------------------------------------------------- watch */

struct watch_out {
	int json;
	char *error; /* the END's error */
};

/* One line per message: JSON as received with --json, else for people:
 * "HH:MM:SS.mmm EVENT DATA" and "-- STATE (attempt N)". */
static int watch_print(const dtask_watch_msg *m, void *arg)
{
	struct watch_out *o = arg;
	if (o->json) {
		printf("%s\n", m->json);
	} else if (!strcmp(m->type, "event")) {
		time_t s = (time_t)(m->time / 1000);
		struct tm tm;
		char hms[16] = "--:--:--";
		if (m->time > 0 && localtime_r(&s, &tm))
			strftime(hms, sizeof hms, "%H:%M:%S", &tm);
		printf("%s.%03lld %s %s\n", hms, m->time > 0 ? m->time % 1000 : 0LL,
		       m->event ? m->event : "?", m->data ? m->data : "null");
	} else if (m->attempt > 0) {
		printf("-- %s (attempt %lld)%s%s\n", m->state ? m->state : "?", m->attempt,
		       m->error ? ": " : "", m->error ? m->error : "");
	} else {
		printf("-- %s\n", m->state ? m->state : "?");
	}
	fflush(stdout);
	if (m->state && !strcmp(m->state, "END") && m->error && !o->error)
		o->error = strdup(m->error);
	return 0;
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
	const char *id = NULL;
	const char **events = calloc((size_t)argc, sizeof *events);
	size_t nevents = 0;
	if (!events)
		return cli_error("out of memory");
	int i = 1, rc;
	while (i < argc) {
		int r = cli_global_opt(cli, argc, argv, &i);
		if (r < 0) {
			free(events);
			return CLI_ERROR;
		}
		if (r)
			continue;
		const char *a = argv[i++];
		if (a[0] == '-') {
			free(events);
			return cli_usage(argv[0], "unknown option %s", a);
		}
		if (!id)
			id = a;
		else
			events[nevents++] = a;
	}
	if (!id) {
		free(events);
		return cli_usage(argv[0], "which task? (an ID)");
	}
	dtask_client *c = cli_client(cli);
	if (!c) {
		free(events);
		return CLI_ERROR;
	}
	struct watch_out o = { cli->json, NULL };
	rc = dtask_watch(c, id, events, nevents, watch_print, &o);
	free(events);
	if (rc < 0) {
		free(o.error);
		rc = cli_fail(c, rc, id);
		dtask_client_free(c);
		return rc;
	}
	/* The END's error, from the worker, else from a kept record. */
	struct json_object *rec = NULL, *e = NULL;
	if (!o.error && dtask_get(c, id, &rec) == 0 &&
	    json_object_object_get_ex(rec, "error", &e))
		o.error = strdup(json_object_get_string(e));
	json_object_put(rec);
	int failed = o.error != NULL;
	if (failed)
		cli_error("task %s failed: %s", id, o.error);
	free(o.error);
	dtask_client_free(c);
	return failed ? CLI_FAILED : CLI_OK;
}

/* ------------------------------------------------------------- help */

static const struct help {
	const char *command;
	const char *text;
} helps[] = {
	{ "submit",
	  "Usage: dtask submit FUNCTION [DATA] [--id ID] [--keep-end] [--state-optional]\n"
	  "                    [--max-attempts N] [--wait [--timeout MS]]\n"
	  "Queue a task for FUNCTION with DATA (JSON text; default null) and print its id.\n"
	  "  --id ID            the task id (default: a random UUID)\n"
	  "  --keep-end         clean_end false: the END record is kept\n"
	  "  --state-optional   it may keep running while its worker has lost Redis\n"
	  "  --max-attempts N   end it after N worker deaths (0: no limit; default 5)\n"
	  "  --wait             wait for its end and print its result; exit 1 if it\n"
	  "                     failed (its error on stderr)\n"
	  "  --timeout MS       with --wait: give up after MS ms (exit 2)\n"
	  "  --json             print {\"id\": ...}, or with --wait the END record\n" },
	{ "list",
	  "Usage: dtask list [--state S] [--json]\n"
	  "The tasks the system owns (claimed and not cleaned, and the kept END ones),\n"
	  "sorted by id: ID, STATE, FUNCTION, ATTEMPT, WORKER, AGE (since the last\n"
	  "update, or the end).  S: QUEUED, RUNNING, STOPPED or END.\n" },
	{ "show",
	  "Usage: dtask show ID [--json]\n"
	  "Every field of the task's record, data and result pretty-printed.\n" },
	{ "stop",
	  "Usage: dtask stop ID [--json]\n"
	  "Ask a RUNNING task to stop where it runs: it becomes STOPPED and is requeued.\n" },
	{ "cancel",
	  "Usage: dtask cancel ID [--json]\n"
	  "End a task for good: END with error \"cancelled\", never requeued (a RUNNING\n"
	  "one is stopped first; a QUEUED one never runs).\n" },
	{ "requeue",
	  "Usage: dtask requeue ID [--json]\n"
	  "Put a RUNNING or STOPPED task back on the queue now; a running copy is\n"
	  "fenced off and stopped at its worker's next heartbeat.\n" },
	{ "watch",
	  "Usage: dtask watch ID [EVENT...] [--json]\n"
	  "Follow a task's live events, straight from the worker that runs it, until\n"
	  "it ends: one line per event (time, name, data) and per state change.\n"
	  "EVENT...: only these events (e.g. output).  The watch follows the task to\n"
	  "its next worker when it moves.  --json: each message as received, one per\n"
	  "line.  Exit 0 at its end, 1 if it ended with an error.\n" },
	{ "workers",
	  "Usage: dtask workers [--json]\n"
	  "The registered workers: NAME, STATE, RUNNING/CAPACITY, LOAD, FUNCTIONS,\n"
	  "HOST:PORT (the watcher listener), AGE (since the last update).\n" },
};

const char *cli_command_help(const char *command)
{
	for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
		if (!strcmp(helps[i].command, command))
			return helps[i].text;
	return NULL;
}
