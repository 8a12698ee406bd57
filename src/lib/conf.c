/*
 * conf.c - loading and checking the JSON configuration file (SPEC section 8).
 *
 * Owns: reading the file, strict JSON parsing (json-c), the type and range
 * check of every known field, defaults, resolving relative paths against the
 * file's folder, and the warnings about unknown fields.
 *
 * Threads: dt_config_load() and dt_config_new_default() run in whichever
 * thread calls them (the main thread at start-up or on a reload) and keep no
 * state of their own.  The returned dt_config is never modified afterwards,
 * so any thread may read its fields without a lock.  The exception is the
 * json tree: json-c caches serialisations inside objects and its refcounts
 * are not atomic, so a thread that wants more than lookups in c->json must
 * take its own copy first.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "conf.h"
#include "json.h"
#include "dtask.h"
#include "log.h"
#include "util.h"

/* A configuration file is small; this only stops us from slurping a wrong
 * path such as a disk image.  It also keeps the length within json-c's int. */
#define CONF_MAX_FILE (16 * 1024 * 1024)

#define MAX_MESSAGE_MIN 1024
#define MAX_MESSAGE_MAX (1024 * 1024 * 1024)

/* Where a field's value goes, and what it may hold. */
enum field_kind {
	K_INT,       /* JSON integer in [min, max], stored in an int */
	K_SIZE,      /* JSON integer in [min, max], stored in a size_t */
	K_BOOL,      /* true or false, stored in an int */
	K_STRING,    /* string, stored as a copy in a char * */
	K_PATH,      /* non-empty string, made absolute against the file's folder */
	K_LOG_LEVEL, /* one of dt_log_level_parse()'s names, stored in an int */
	K_REDIS,     /* the "redis" object */
	K_ENDPOINTS, /* the "distributors" array of [host, port] pairs */
	K_EXEC,      /* the "exec_allow" array of absolute paths */
	K_ANY        /* "app": the embedding program's own, not looked at */
};

/* Flags of K_STRING and K_PATH. */
#define F_NULL 0x1  /* null is allowed and stores NULL */
#define F_EMPTY 0x2 /* "" is allowed */
#define F_SECRET 0x4 /* never repeat the value in a message */

struct field {
	const char *name;
	enum field_kind kind;
	size_t off;        /* offset in dt_config or dt_redis_conf */
	int64_t min, max;  /* K_INT, K_SIZE */
	int flags;
	const char *unit;  /* appended to an integer's expectation */
};

#define CF(m) offsetof(dt_config, m)
#define RF(m) offsetof(dt_redis_conf, m)
#define MS " (milliseconds)"

static const struct field top_fields[] = {
	{"share_key", K_STRING, CF(share_key), 0, 0, F_NULL | F_SECRET, NULL},
	{"key", K_PATH, CF(key), 0, 0, F_NULL, NULL},
	{"cert", K_PATH, CF(cert), 0, 0, F_NULL, NULL},
	{"ca", K_PATH, CF(ca), 0, 0, F_NULL, NULL},
	{"insecure", K_BOOL, CF(insecure), 0, 0, 0, NULL},
	{"redis", K_REDIS, 0, 0, 0, 0, NULL},
	{"host", K_STRING, CF(host), 0, 0, 0, NULL},
	{"port", K_INT, CF(port), 0, 65535, 0, NULL},
	{"distributors", K_ENDPOINTS, 0, 0, 0, 0, NULL},
	{"name", K_STRING, CF(name), 0, 0, F_NULL, NULL},
	{"watch_host", K_STRING, CF(watch_host), 0, 0, F_NULL, NULL},
	{"watch_port", K_INT, CF(watch_port), 0, 65535, 0, NULL},
	{"exec_allow", K_EXEC, 0, 0, 0, 0, NULL},
	{"threads", K_INT, CF(threads), 0, INT_MAX, 0, NULL},
	{"loop_interval", K_INT, CF(loop_interval), 1, INT_MAX, 0, MS},
	{"check_all_interval", K_INT, CF(check_all_interval), 1, INT_MAX, 0, MS},
	{"health_interval", K_INT, CF(health_interval), 1, INT_MAX, 0, MS},
	{"health_misses", K_INT, CF(health_misses), 1, INT_MAX, 0, NULL},
	{"task_timeout", K_INT, CF(task_timeout), 1, INT_MAX, 0, MS},
	{"down_clear_interval", K_INT, CF(down_clear_interval), 1, INT_MAX, 0, MS},
	{"distributor_timeout", K_INT, CF(distributor_timeout), 1, INT_MAX, 0, MS},
	{"stop_grace", K_INT, CF(stop_grace), 1, INT_MAX, 0, MS},
	{"handshake_timeout", K_INT, CF(handshake_timeout), 1, INT_MAX, 0, MS},
	{"send_timeout", K_INT, CF(send_timeout), 1, INT_MAX, 0, MS},
	{"max_message", K_SIZE, CF(max_message), MAX_MESSAGE_MIN, MAX_MESSAGE_MAX, 0, " (bytes)"},
	{"max_connections", K_INT, CF(max_connections), 1, INT_MAX, 0, NULL},
	{"log_level", K_LOG_LEVEL, CF(log_level), 0, 0, 0, NULL},
	{"app", K_ANY, 0, 0, 0, 0, NULL},
	{NULL, K_ANY, 0, 0, 0, 0, NULL}
};

static const struct field redis_fields[] = {
	{"host", K_STRING, RF(host), 0, 0, 0, NULL},
	{"port", K_INT, RF(port), 1, 65535, 0, NULL},
	{"user", K_STRING, RF(user), 0, 0, F_NULL | F_EMPTY, NULL},
	{"password", K_STRING, RF(password), 0, 0, F_NULL | F_EMPTY | F_SECRET, NULL},
	{"db", K_INT, RF(db), 0, INT_MAX, 0, NULL},
	{"prefix", K_STRING, RF(prefix), 0, 0, F_EMPTY, NULL},
	{NULL, K_ANY, 0, 0, 0, 0, NULL}
};

/* What one load needs to build its messages. */
struct ctx {
	dt_config *c;
	char *err;
	size_t errlen;
};

/* ------------------------------------------------------------ messages */

static int oom(struct ctx *x)
{
	return dt_err(x->err, x->errlen, DTASK_ENOMEM, "%s: out of memory", x->c->path);
}

/* "FILE: field "F": expected WHAT, got VALUE" -> DTASK_ECONFIG.  A secret's
 * value is not repeated in a message that may end up in a log: only its
 * type is. */
static int vbad(struct ctx *x, const char *field, struct json_object *v, int secret,
		const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static int vbad(struct ctx *x, const char *field, struct json_object *v, int secret,
		const char *fmt, va_list ap)
{
	char want[160];
	char got[80];

	vsnprintf(want, sizeof want, fmt, ap);
	/* The value as JSON keeps the message on one line (newlines, NULs and
	 * quotes come out escaped); long values are cut. */
	if (secret) {
		snprintf(got, sizeof got, "a value of type %s (not shown)",
			 json_type_to_name(json_object_get_type(v)));
	} else {
		const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
		if (!s)
			s = "?";
		if (strlen(s) >= sizeof got)
			snprintf(got, sizeof got, "%.*s...", (int)sizeof got - 4, s);
		else
			snprintf(got, sizeof got, "%s", s);
	}
	return dt_err(x->err, x->errlen, DTASK_ECONFIG, "%s: field \"%s\": expected %s, got %s",
		      x->c->path, field, want, got);
}

static int bad(struct ctx *x, const char *field, struct json_object *v, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int bad(struct ctx *x, const char *field, struct json_object *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vbad(x, field, v, 0, fmt, ap);
	va_end(ap);
	return rc;
}

static int bad_secret(struct ctx *x, const char *field, struct json_object *v, int secret,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int bad_secret(struct ctx *x, const char *field, struct json_object *v, int secret,
		      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vbad(x, field, v, secret, fmt, ap);
	va_end(ap);
	return rc;
}

/* ------------------------------------------------------------ helpers */

/* The current directory, malloc'ed; NULL with errno set on failure. */
static char *cwd_dup(void)
{
	size_t n = 256;
	for (;;) {
		char *b = malloc(n);
		if (!b)
			return NULL;
		if (getcwd(b, n))
			return b;
		int e = errno;
		free(b);
		if (e != ERANGE || n > (size_t)1 << 20) {
			errno = e;
			return NULL;
		}
		n *= 2;
	}
}

/* a + "/" + b, malloc'ed; NULL on ENOMEM. */
static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int slash = la > 0 && a[la - 1] == '/';
	char *p = malloc(la + lb + 2);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	if (!slash)
		p[la++] = '/';
	memcpy(p + la, b, lb + 1);
	return p;
}

/* The absolute folder of path: canonical when realpath() can resolve it,
 * else the folder as written, put after the current directory. */
static int folder_of(struct ctx *x, const char *path, char **out)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return oom(x);

	char *real = realpath(dir, NULL);
	if (real) {
		free(dir);
		*out = real;
		return 0;
	}
	if (dir[0] == '/') {
		*out = dir;
		return 0;
	}
	char *cwd = cwd_dup();
	if (!cwd) {
		int e = errno;
		free(dir);
		if (e == ENOMEM)
			return oom(x);
		return dt_err(x->err, x->errlen, DTASK_ECONFIG,
			      "%s: cannot find its folder: %s", path, strerror(e));
	}
	*out = strcmp(dir, ".") == 0 ? strdup(cwd) : path_join(cwd, dir);
	free(cwd);
	free(dir);
	return *out ? 0 : oom(x);
}

/* The whole file into a NUL-terminated buffer. */
static int read_file(struct ctx *x, const char *path, char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int e = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	for (;;) {
		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				e = ENOMEM;
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONF_MAX_FILE) {
			e = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (e == ENOMEM)
		return oom(x);
	if (e == EFBIG)
		return dt_err(x->err, x->errlen, DTASK_ECONFIG,
			      "%s: cannot read: larger than %d bytes", path, CONF_MAX_FILE);
	return dt_err(x->err, x->errlen, DTASK_ECONFIG, "%s: cannot read: %s", path, strerror(e));
}

/* Strict JSON (what any JSON tool writes), valid UTF-8, one value.  buf
 * holds len bytes and a terminating NUL. */
static int parse_json(struct ctx *x, const char *buf, size_t len, struct json_object **out)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return oom(x);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* The terminating NUL is passed too: it tells json-c the text ends
	 * there, so a top-level null or a truncated file is not taken for
	 * "more to come". */
	struct json_object *root = json_tokener_parse_ex(tok, buf, (int)len + 1);
	char jwhy[96]; /* dt_json_valid's reason; outlives the branch below */
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	const char *why = json_tokener_error_desc(jerr);
	if (end > len)
		end = len;
	if (jerr == json_tokener_success) {
		/* json-c also stops at a NUL byte inside the file. */
		while (end < len && buf[end] != '\0' && strchr(" \t\r\n", buf[end]))
			end++;
		/* json-c's strict mode still takes 'quoted' names and NaN. */
		if (end == len && dt_json_valid(buf, len, jwhy, sizeof jwhy) == 0) {
			*out = root; /* NULL for a file holding just null */
			return 0;
		}
		if (end == len) {
			/* "<reason> at byte N": the line is counted up to N. */
			char *p = strstr(jwhy, " at byte ");
			size_t at = p ? (size_t)strtoull(p + 9, NULL, 10) : len;
			if (p)
				*p = '\0';
			why = jwhy;
			end = at < len ? at : len;
		} else {
			why = buf[end] == '\0' ? "NUL character" : "unexpected data after the value";
		}
	} else if (end < len && buf[end] == '\0') {
		why = "NUL character";
	} else if (end > 0 && buf[end - 1] == '\0') {
		why = "NUL character";
		end--;
	} else if (end == len && (jerr == json_tokener_continue ||
				  jerr == json_tokener_error_parse_eof)) {
		why = "unexpected end of file";
	}
	json_object_put(root);

	int line = 1;
	for (size_t i = 0; i < end; i++)
		if (buf[i] == '\n')
			line++;
	return dt_err(x->err, x->errlen, DTASK_ECONFIG, "%s: invalid JSON at line %d: %s",
		      x->c->path, line, why);
}

/* A JSON integer in [min, max] (not 1.5, "1000" or true). */
static int get_int(struct ctx *x, const char *field, struct json_object *v, int64_t min,
		   int64_t max, const char *unit, int64_t *out)
{
	if (json_object_get_type(v) == json_type_int) {
		/* json-c clamps what does not fit in int64 to INT64_MIN/MAX,
		 * and both are out of every range here. */
		int64_t n = json_object_get_int64(v);
		if (n >= min && n <= max) {
			*out = n;
			return 0;
		}
	}
	return bad(x, field, v, "an integer from %lld to %lld%s", (long long)min, (long long)max,
		   unit ? unit : "");
}

/* A string without NUL characters; *out borrows it from v. */
static int get_string(struct ctx *x, const char *field, struct json_object *v, int flags,
		      const char **out)
{
	const char *what = (flags & F_NULL) ? ((flags & F_EMPTY) ? "a string or null"
							: "a non-empty string or null")
					    : ((flags & F_EMPTY) ? "a string" : "a non-empty string");
	int secret = (flags & F_SECRET) != 0;
	if (json_object_get_type(v) != json_type_string)
		return bad_secret(x, field, v, secret, "%s", what);
	const char *s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return bad_secret(x, field, v, secret, "%s without NUL characters", what);
	if (!(flags & F_EMPTY) && s[0] == '\0')
		return bad_secret(x, field, v, secret, "%s", what);
	*out = s;
	return 0;
}

/* Replace the string in *slot with a copy of s (NULL stays NULL). */
static int set_string(struct ctx *x, char **slot, const char *s)
{
	char *copy = NULL;
	if (s && !(copy = strdup(s)))
		return oom(x);
	free(*slot);
	*slot = copy;
	return 0;
}

/* "FIELD" or "PREFIX.FIELD" for messages. */
static void field_name(char *buf, size_t n, const char *prefix, const char *name)
{
	snprintf(buf, n, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);
}

/* ------------------------------------------------------------ compound fields */

static int parse_object(struct ctx *x, const char *prefix, struct json_object *obj,
			const struct field *table, void *base);

static int parse_endpoints(struct ctx *x, struct json_object *v)
{
	dt_config *c = x->c;
	dt_endpoint *eps = NULL;
	size_t n = 0;
	char field[64];
	int rc;

	if (json_object_get_type(v) != json_type_array || json_object_array_length(v) == 0)
		return bad(x, "distributors", v, "a non-empty array of [host, port] pairs");
	size_t len = json_object_array_length(v);
	eps = calloc(len, sizeof *eps);
	if (!eps)
		return oom(x);
	for (n = 0; n < len; n++) {
		struct json_object *pair = json_object_array_get_idx(v, n);
		const char *host;
		int64_t port = 0;

		snprintf(field, sizeof field, "distributors[%zu]", n);
		if (json_object_get_type(pair) != json_type_array ||
		    json_object_array_length(pair) != 2) {
			rc = bad(x, field, pair, "a [host, port] pair");
			goto fail;
		}
		snprintf(field, sizeof field, "distributors[%zu][0]", n);
		rc = get_string(x, field, json_object_array_get_idx(pair, 0), 0, &host);
		if (rc)
			goto fail;
		snprintf(field, sizeof field, "distributors[%zu][1]", n);
		rc = get_int(x, field, json_object_array_get_idx(pair, 1), 1, 65535, NULL, &port);
		if (rc)
			goto fail;
		if (!(eps[n].host = strdup(host))) {
			rc = oom(x);
			goto fail;
		}
		eps[n].port = (int)port;
	}
	for (size_t i = 0; i < c->n_distributors; i++)
		free(c->distributors[i].host);
	free(c->distributors);
	c->distributors = eps;
	c->n_distributors = len;
	return 0;

fail:
	for (size_t i = 0; i < n; i++)
		free(eps[i].host);
	free(eps);
	return rc;
}

static int parse_exec_allow(struct ctx *x, struct json_object *v)
{
	dt_config *c = x->c;
	char **paths = NULL;
	size_t n = 0;
	char field[64];
	int rc;

	if (json_object_get_type(v) != json_type_array)
		return bad(x, "exec_allow", v, "an array of absolute program paths");
	size_t len = json_object_array_length(v);
	if (len > 0 && !(paths = calloc(len, sizeof *paths)))
		return oom(x);
	for (n = 0; n < len; n++) {
		struct json_object *p = json_object_array_get_idx(v, n);
		const char *s;

		snprintf(field, sizeof field, "exec_allow[%zu]", n);
		rc = get_string(x, field, p, 0, &s);
		if (rc)
			goto fail;
		/* A relative name would depend on the worker's current folder
		 * or PATH: the allow list must say exactly what may run. */
		if (s[0] != '/') {
			rc = bad(x, field, p, "an absolute path (starting with /)");
			goto fail;
		}
		if (!(paths[n] = strdup(s))) {
			rc = oom(x);
			goto fail;
		}
	}
	for (size_t i = 0; i < c->n_exec_allow; i++)
		free(c->exec_allow[i]);
	free(c->exec_allow);
	c->exec_allow = paths;
	c->n_exec_allow = len;
	return 0;

fail:
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return rc;
}

/* One known field: check v and store it at base + f->off. */
static int parse_field(struct ctx *x, const char *field, const struct field *f,
		       struct json_object *v, void *base)
{
	char *slot = (char *)base + f->off;
	const char *s;
	int64_t n = 0;
	int rc;

	switch (f->kind) {
	case K_INT:
		rc = get_int(x, field, v, f->min, f->max, f->unit, &n);
		if (!rc)
			*(int *)(void *)slot = (int)n;
		return rc;
	case K_SIZE:
		rc = get_int(x, field, v, f->min, f->max, f->unit, &n);
		if (!rc)
			*(size_t *)(void *)slot = (size_t)n;
		return rc;
	case K_BOOL:
		if (json_object_get_type(v) != json_type_boolean)
			return bad(x, field, v, "true or false");
		*(int *)(void *)slot = json_object_get_boolean(v) ? 1 : 0;
		return 0;
	case K_STRING:
		if (!v && (f->flags & F_NULL))
			return set_string(x, (char **)(void *)slot, NULL);
		rc = get_string(x, field, v, f->flags, &s);
		return rc ? rc : set_string(x, (char **)(void *)slot, s);
	case K_PATH: {
		if (!v && (f->flags & F_NULL))
			return set_string(x, (char **)(void *)slot, NULL);
		rc = get_string(x, field, v, f->flags & ~F_EMPTY, &s);
		if (rc)
			return rc;
		char *abs = s[0] == '/' ? strdup(s) : path_join(x->c->dir, s);
		if (!abs)
			return oom(x);
		free(*(char **)(void *)slot);
		*(char **)(void *)slot = abs;
		return 0;
	}
	case K_LOG_LEVEL: {
		static const char levels[] = "one of \"error\", \"warn\", \"notice\", \"info\", \"debug\"";
		if (json_object_get_type(v) != json_type_string)
			return bad(x, field, v, "%s", levels);
		s = json_object_get_string(v);
		int level = (size_t)json_object_get_string_len(v) == strlen(s)
			? dt_log_level_parse(s) : -1;
		if (level < 0)
			return bad(x, field, v, "%s", levels);
		*(int *)(void *)slot = level;
		return 0;
	}
	case K_REDIS:
		if (json_object_get_type(v) != json_type_object)
			return bad(x, field, v, "an object");
		return parse_object(x, field, v, redis_fields, &x->c->redis);
	case K_ENDPOINTS:
		return parse_endpoints(x, v);
	case K_EXEC:
		return parse_exec_allow(x, v);
	case K_ANY:
		return 0;
	}
	return 0;
}

/* Every member of obj: known ones checked and stored, unknown ones warned
 * about.  Members are visited in file order, so the first error reported is
 * the first one in the file. */
static int parse_object(struct ctx *x, const char *prefix, struct json_object *obj,
			const struct field *table, void *base)
{
	struct json_object_iterator it = json_object_iter_begin(obj);
	struct json_object_iterator end = json_object_iter_end(obj);
	char field[128];

	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *name = json_object_iter_peek_name(&it);
		struct json_object *v = json_object_iter_peek_value(&it);
		const struct field *f = table;
		while (f->name && strcmp(f->name, name) != 0)
			f++;
		if (!f->name) {
			log_warn("%s: unknown field \"%s%s%s\" ignored", x->c->path,
				 prefix ? prefix : "", prefix ? "." : "", name);
			continue;
		}
		field_name(field, sizeof field, prefix, f->name);
		int rc = parse_field(x, field, f, v, base);
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------ life cycle */

/* A dt_config holding the defaults, without path and dir. */
static dt_config *config_alloc(void)
{
	dt_config *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->redis.host = strdup("localhost");
	c->redis.port = 6379;
	c->redis.prefix = strdup("");
	c->host = strdup("localhost");
	c->port = 5000;
	c->distributors = calloc(1, sizeof *c->distributors);
	if (c->distributors) {
		c->n_distributors = 1;
		c->distributors[0].host = strdup("localhost");
		c->distributors[0].port = 5000;
	}
	c->loop_interval = 1000;
	c->check_all_interval = 15000;
	c->health_interval = 2000;
	c->health_misses = 3;
	c->task_timeout = 10000;
	c->down_clear_interval = 60000;
	c->distributor_timeout = 3 * 15000;
	c->stop_grace = 10000;
	c->handshake_timeout = 10000;
	c->send_timeout = 5000;
	c->max_message = 1048576;
	c->max_connections = 1024;
	c->log_level = DT_LOG_INFO;
	if (!c->redis.host || !c->redis.prefix || !c->host || !c->distributors ||
	    !c->distributors[0].host) {
		dt_config_free(c);
		return NULL;
	}
	return c;
}

dt_config *dt_config_new_default(void)
{
	dt_config *c = config_alloc();
	if (!c)
		return NULL;
	c->path = strdup("(defaults)");
	c->dir = cwd_dup();
	/* Nothing in the defaults is relative; if the current folder is gone,
	 * "/" is as good an answer as any. */
	if (!c->dir && errno != ENOMEM)
		c->dir = strdup("/");
	c->json = json_object_new_object();
	if (!c->path || !c->dir || !c->json) {
		dt_config_free(c);
		return NULL;
	}
	return c;
}

int dt_config_load(const char *path, dt_config **out, char *err, size_t errlen)
{
	struct ctx x = { NULL, err, errlen };
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return dt_err(err, errlen, DTASK_EINVAL, "dt_config_load: no result pointer");
	*out = NULL;
	if (!path || !path[0])
		return dt_err(err, errlen, DTASK_EINVAL, "dt_config_load: no file name");

	x.c = config_alloc();
	if (!x.c)
		return dt_err(err, errlen, DTASK_ENOMEM, "%s: out of memory", path);
	if (!(x.c->path = strdup(path))) {
		rc = dt_err(err, errlen, DTASK_ENOMEM, "%s: out of memory", path);
		goto fail;
	}

	rc = read_file(&x, path, &buf, &len);
	if (rc)
		goto fail;
	rc = folder_of(&x, path, &x.c->dir);
	if (rc)
		goto fail;
	rc = parse_json(&x, buf, len, &x.c->json);
	if (rc)
		goto fail;
	if (json_object_get_type(x.c->json) != json_type_object) {
		rc = dt_err(err, errlen, DTASK_ECONFIG,
			    "%s: the top level must be a JSON object, got %s", path,
			    json_type_to_name(json_object_get_type(x.c->json)));
		goto fail;
	}
	rc = parse_object(&x, NULL, x.c->json, top_fields, x.c);
	if (rc)
		goto fail;

	/* A distributor not heard of for three full checks is gone. */
	if (!json_object_object_get_ex(x.c->json, "distributor_timeout", NULL)) {
		int64_t t = 3 * (int64_t)x.c->check_all_interval;
		x.c->distributor_timeout = t > INT_MAX ? INT_MAX : (int)t;
	}
	if (x.c->insecure)
		log_warn("%s: \"insecure\" is true: TLS certificate verification is OFF "
			 "(for tests only)", path);

	free(buf);
	*out = x.c;
	return 0;

fail:
	free(buf);
	dt_config_free(x.c);
	return rc;
}

void dt_config_free(dt_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->dir);
	free(c->share_key);
	free(c->key);
	free(c->cert);
	free(c->ca);
	free(c->redis.host);
	free(c->redis.user);
	free(c->redis.password);
	free(c->redis.prefix);
	free(c->host);
	for (size_t i = 0; i < c->n_distributors; i++)
		free(c->distributors[i].host);
	free(c->distributors);
	free(c->name);
	free(c->watch_host);
	for (size_t i = 0; i < c->n_exec_allow; i++)
		free(c->exec_allow[i]);
	free(c->exec_allow);
	json_object_put(c->json);
	free(c);
}
