/*
 * store.c - the Redis model: connections, scripts, pipelines, and the
 * typed calls the distributor, the worker and the client make.
 *
 * DESIGN
 * Owns every hiredis call of the project, and the Lua scripts
 * (src/lib/lua/NAME.lua, embedded as dt_lua_NAME by lua2c.sh).
 *
 * A dt_store is one redisContext plus the configuration to rebuild it.  It
 * is used by one thread at a time (its owner's): nothing here locks.  The
 * only shared state is the table of script SHA1s, computed once under
 * pthread_once() and read-only afterwards.
 *
 * Every call is a batch of "ops" (one command or script call each, with
 * its arguments copied into the batch and a decoder that turns the reply
 * into the caller's result): the single calls use the store's own batch,
 * pipelines use their own.  dt_batch_exec() writes every op as RESP, each
 * argument with its length (so user data is always binary-safe), hands
 * them to hiredis in one redisAppendFormattedCommand(), reads every
 * reply, resends the ops that got NOSCRIPT with EVAL (they never ran), reads
 * those, then decodes.  Any failure drops the context: hiredis contexts are
 * unusable after an error, and after a timeout a late reply would be read
 * as the answer to the next command.  The next call reconnects.
 *
 * Keys are the prefix plus the SPEC name; scripts get the prefix as ARGV
 * and build task-<id> and queue-<function> keys themselves.
 */
#include "build-config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "dtask.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* ------------------------------------------------------------- scripts */

extern const char dt_lua_take[], dt_lua_claim[], dt_lua_park[], dt_lua_bad[],
	dt_lua_return_inflight[], dt_lua_recover[], dt_lua_requeue[], dt_lua_heartbeat[],
	dt_lua_finish[], dt_lua_request[], dt_lua_stale[], dt_lua_distributor[], dt_lua_worker[],
	dt_lua_clean[], dt_lua_arrive[];

enum {
	SC_TAKE, SC_CLAIM, SC_ARRIVE, SC_PARK, SC_BAD, SC_RETURN_INFLIGHT, SC_RECOVER, SC_REQUEUE,
	SC_HEARTBEAT, SC_FINISH, SC_REQUEST, SC_STALE, SC_DISTRIBUTOR, SC_WORKER, SC_CLEAN, SC_N
};

static struct script {
	const char *name;
	const char *src;
	char sha[41];
} scripts[SC_N] = {
	[SC_TAKE] = { "take.lua", dt_lua_take, "" },
	[SC_CLAIM] = { "claim.lua", dt_lua_claim, "" },
	[SC_ARRIVE] = { "arrive.lua", dt_lua_arrive, "" },
	[SC_PARK] = { "park.lua", dt_lua_park, "" },
	[SC_BAD] = { "bad.lua", dt_lua_bad, "" },
	[SC_RETURN_INFLIGHT] = { "return_inflight.lua", dt_lua_return_inflight, "" },
	[SC_RECOVER] = { "recover.lua", dt_lua_recover, "" },
	[SC_REQUEUE] = { "requeue.lua", dt_lua_requeue, "" },
	[SC_HEARTBEAT] = { "heartbeat.lua", dt_lua_heartbeat, "" },
	[SC_FINISH] = { "finish.lua", dt_lua_finish, "" },
	[SC_REQUEST] = { "request.lua", dt_lua_request, "" },
	[SC_STALE] = { "stale.lua", dt_lua_stale, "" },
	[SC_DISTRIBUTOR] = { "distributor.lua", dt_lua_distributor, "" },
	[SC_WORKER] = { "worker.lua", dt_lua_worker, "" },
	[SC_CLEAN] = { "clean.lua", dt_lua_clean, "" },
};

static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static int sha_failed;

/* The SHA1 Redis will name each script by (SCRIPT LOAD would answer the
 * same), so EVALSHA needs no round trip first. */
static void sha_init(void)
{
	for (int i = 0; i < SC_N; i++) {
		unsigned char d[20];
		if (gnutls_hash_fast(GNUTLS_DIG_SHA1, scripts[i].src, strlen(scripts[i].src), d)) {
			sha_failed = 1;
			return;
		}
		dt_hex_encode(d, sizeof d, scripts[i].sha);
	}
}

/* ------------------------------------------------------------ the store */

struct dt_store {
	char *host;
	int port;
	char *user;
	char *password;
	int db;
	char *prefix;
	size_t prefix_len;

	redisContext *c;  /* NULL: not connected */
	int64_t since;    /* dt_mono_ms() at connect */
	dt_batch *one;    /* for the single calls */
};

/* ------------------------------------------------------------- batches */

struct op;
typedef int (*decode_fn)(const struct op *op, const redisReply *r, char *err, size_t errlen);

struct op {
	int script;        /* SC_*, or -1 for a plain command */
	const char *what;  /* for messages: the script or command name */
	size_t first;      /* its arguments: args[first .. first + argc) */
	size_t argc;
	decode_fn decode;
	void *out;         /* the caller's results, as decode expects */
	void *out2;
	void *out3;
	size_t n;          /* items in the call (results to fill) */
	redisReply *reply;
	int resend;        /* NOSCRIPT: sent again with EVAL */
};

struct dt_batch {
	dt_store *s;
	char *buf;         /* argument bytes */
	size_t len, cap;
	size_t *aoff;      /* argument i is buf[aoff[i] .. aoff[i] + alen[i]) */
	size_t *alen;
	size_t nargs, acap;
	struct op *ops;
	size_t nops, ocap;
	struct op dummy;   /* what op_new() returns when out of memory */
	int oom;           /* an allocation failed since the last mark */
	size_t arg_start;  /* the argument being built starts here in buf */
	char *resp;        /* scratch for sending: the ops in RESP, kept between calls */
	size_t resplen, respcap;
};

struct mark {
	size_t len, nargs, nops;
};

static struct mark batch_mark(const dt_batch *b)
{
	struct mark m = { b->len, b->nargs, b->nops };
	return m;
}

/* Ends an add: on allocation failure, forget everything since m. */
static int batch_done(dt_batch *b, struct mark m)
{
	if (!b->oom)
		return 0;
	b->len = m.len;
	b->nargs = m.nargs;
	b->nops = m.nops;
	b->oom = 0;
	return DTASK_ENOMEM;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

static void put(dt_batch *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t c = b->cap ? b->cap : 1024;
		while (c < b->len + n)
			c *= 2;
		char *q = realloc(b->buf, c);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->buf = q;
		b->cap = c;
	}
	if (n)
		memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void arg_begin(dt_batch *b)
{
	b->arg_start = b->len;
}

static void arg_end(dt_batch *b)
{
	if (b->oom)
		return;
	size_t need = b->nargs + 1, c1 = b->acap, c2 = b->acap;
	if (grow((void **)&b->aoff, &c1, need, sizeof *b->aoff) ||
	    grow((void **)&b->alen, &c2, need, sizeof *b->alen)) {
		b->oom = 1;
		return;
	}
	b->acap = c1 < c2 ? c1 : c2;
	b->aoff[b->nargs] = b->arg_start;
	b->alen[b->nargs] = b->len - b->arg_start;
	b->nargs++;
}

static void arg(dt_batch *b, const void *p, size_t n)
{
	arg_begin(b);
	put(b, p, n);
	arg_end(b);
}

static void arg_s(dt_batch *b, const char *s)
{
	arg(b, s, strlen(s));
}

static void arg_i(dt_batch *b, int64_t v)
{
	char t[21];
	arg(b, t, dt_fmt_i64(t, v));
}

/* The prefix followed by kind and name (either may be NULL). */
static void arg_key(dt_batch *b, const char *kind, const char *name)
{
	arg_begin(b);
	put(b, b->s->prefix, b->s->prefix_len);
	if (kind)
		put(b, kind, strlen(kind));
	if (name)
		put(b, name, strlen(name));
	arg_end(b);
}

static void arg_prefix(dt_batch *b)
{
	arg(b, b->s->prefix, b->s->prefix_len);
}

/* A new op; for a script, its first argument is numkeys.  Close it with
 * op_close() before the next op_new(). */
static struct op *op_new(dt_batch *b, int script, const char *what, int numkeys,
			 decode_fn decode)
{
	if (b->oom || grow((void **)&b->ops, &b->ocap, b->nops + 1, sizeof *b->ops)) {
		b->oom = 1;
		return &b->dummy;
	}
	struct op *op = &b->ops[b->nops++];
	memset(op, 0, sizeof *op);
	op->script = script;
	op->what = script >= 0 ? scripts[script].name : what;
	op->decode = decode;
	op->first = b->nargs;
	if (script >= 0)
		arg_i(b, numkeys);
	return op;
}

static void op_close(dt_batch *b, struct op *op)
{
	if (op != &b->dummy)
		op->argc = b->nargs - op->first;
}

dt_batch *dt_batch_new(dt_store *s)
{
	dt_batch *b = calloc(1, sizeof *b);
	if (b)
		b->s = s;
	return b;
}

static void batch_reset(dt_batch *b)
{
	for (size_t i = 0; i < b->nops; i++) {
		if (b->ops[i].reply)
			freeReplyObject(b->ops[i].reply);
		b->ops[i].reply = NULL;
	}
	b->len = 0;
	b->nargs = 0;
	b->nops = 0;
	b->oom = 0;
}

void dt_batch_clear(dt_batch *b)
{
	batch_reset(b);
}

void dt_batch_free(dt_batch *b)
{
	if (!b)
		return;
	batch_reset(b);
	free(b->buf);
	free(b->aoff);
	free(b->alen);
	free(b->ops);
	free(b->resp);
	free(b);
}

size_t dt_batch_count(const dt_batch *b)
{
	return b->nops;
}

/* ----------------------------------------------------------- connection */

static struct timeval ms_tv(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

void dt_store_disconnect(dt_store *s)
{
	if (s->c) {
		redisFree(s->c);
		s->c = NULL;
	}
	s->since = -1;
}

/* One command during connect; 0 when the reply is not an error. */
static int setup_cmd(dt_store *s, redisContext *c, int argc, const char **argv,
		     const size_t *lens, char *err, size_t errlen)
{
	redisReply *r = redisCommandArgv(c, argc, argv, lens);
	if (!r)
		return dt_err(err, errlen, DTASK_EREDIS, "redis %s:%d: %s: %s", s->host, s->port,
			      argv[0], c->errstr[0] ? c->errstr : "no reply");
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = dt_err(err, errlen, DTASK_EREDIS, "redis %s:%d: %s: %s", s->host, s->port,
			    argv[0], r->str);
	freeReplyObject(r);
	return rc;
}

int dt_store_ensure(dt_store *s, char *err, size_t errlen)
{
	if (s->c)
		return 0;
	pthread_once(&sha_once, sha_init);
	if (sha_failed)
		return dt_err(err, errlen, DTASK_EIO, "redis: SHA1 of the scripts failed");

	redisContext *c;
	if (s->host[0] == '/')
		c = redisConnectUnixWithTimeout(s->host, ms_tv(DT_STORE_CONNECT_TIMEOUT_MS));
	else
		c = redisConnectWithTimeout(s->host, s->port, ms_tv(DT_STORE_CONNECT_TIMEOUT_MS));
	if (!c)
		return dt_err(err, errlen, DTASK_ENOMEM, "redis %s:%d: out of memory", s->host,
			      s->port);
	int rc;
	if (c->err) {
		rc = dt_err(err, errlen, DTASK_EREDIS, "redis %s:%d: cannot connect: %s", s->host,
			    s->port, c->errstr);
		goto fail;
	}
	if (redisSetTimeout(c, ms_tv(DT_STORE_CMD_TIMEOUT_MS)) != REDIS_OK ||
	    (s->host[0] != '/' && redisEnableKeepAlive(c) != REDIS_OK)) {
		rc = dt_err(err, errlen, DTASK_EREDIS, "redis %s:%d: %s", s->host, s->port,
			    c->errstr);
		goto fail;
	}
	if (s->password || s->user) {
		const char *argv[3];
		size_t lens[3];
		int argc = 0;
		argv[argc] = "AUTH";
		lens[argc++] = 4;
		if (s->user) {
			argv[argc] = s->user;
			lens[argc++] = strlen(s->user);
		}
		argv[argc] = s->password ? s->password : "";
		lens[argc] = strlen(argv[argc]);
		argc++;
		if ((rc = setup_cmd(s, c, argc, argv, lens, err, errlen)))
			goto fail;
	}
	if (s->db) {
		char db[16];
		int n = snprintf(db, sizeof db, "%d", s->db);
		const char *argv[2] = { "SELECT", db };
		size_t lens[2] = { 6, (size_t)n };
		if ((rc = setup_cmd(s, c, 2, argv, lens, err, errlen)))
			goto fail;
	}
	s->c = c;
	s->since = dt_mono_ms();
	log_debug("redis %s:%d: connected", s->host, s->port);
	return 0;

fail:
	redisFree(c);
	return rc;
}

int dt_store_connected(const dt_store *s)
{
	return s->c != NULL;
}

int64_t dt_store_connected_since(const dt_store *s)
{
	return s->c ? s->since : -1;
}

const char *dt_store_prefix(const dt_store *s)
{
	return s->prefix;
}

static char *dup_or_null(const char *p, int *oom)
{
	if (!p)
		return NULL;
	char *q = strdup(p);
	if (!q)
		*oom = 1;
	return q;
}

int dt_store_new(const dt_redis_conf *rc, dt_store **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!rc || !rc->host || !rc->host[0])
		return dt_err(err, errlen, DTASK_EINVAL, "redis: no host");
	dt_store *s = calloc(1, sizeof *s);
	if (!s)
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	int oom = 0;
	s->host = dup_or_null(rc->host, &oom);
	s->port = rc->port;
	s->user = dup_or_null(rc->user, &oom);
	s->password = dup_or_null(rc->password, &oom);
	s->db = rc->db;
	s->prefix = dup_or_null(rc->prefix ? rc->prefix : "", &oom);
	s->since = -1;
	s->one = dt_batch_new(s);
	if (oom || !s->one) {
		dt_store_free(s);
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	}
	s->prefix_len = strlen(s->prefix);
	*out = s;
	return 0;
}

int dt_store_open(const dt_redis_conf *rc, dt_store **out, char *err, size_t errlen)
{
	int r = dt_store_new(rc, out, err, errlen);
	if (r)
		return r;
	if ((r = dt_store_ensure(*out, err, errlen))) {
		dt_store_free(*out);
		*out = NULL;
	}
	return r;
}

void dt_store_free(dt_store *s)
{
	if (!s)
		return;
	dt_store_disconnect(s);
	dt_batch_free(s->one);
	free(s->host);
	free(s->user);
	free(s->password);
	free(s->prefix);
	free(s);
}

/* ------------------------------------------------------------- exec */

/* RESP, written here: hiredis's redisAppendCommandArgv() formats each
 * length with sdscatfmt() into a new buffer per command, which cost more
 * than the rest of a claim's client side. */
static char *resp_count(char *o, char kind, size_t n)
{
	*o++ = kind;
	o += dt_fmt_i64(o, (int64_t)n);
	*o++ = '\r';
	*o++ = '\n';
	return o;
}

static char *resp_arg(char *o, const char *p, size_t n)
{
	o = resp_count(o, '$', n);
	memcpy(o, p, n);
	o += n;
	*o++ = '\r';
	*o++ = '\n';
	return o;
}

/* Append op, as RESP, to b->resp (sent by send_resp()). */
static int op_resp(dt_batch *b, const struct op *op, int eval)
{
	size_t extra = op->script >= 0 ? 2 : 0, argc = op->argc + extra;
	const char *name = NULL, *body = NULL;
	/* Each argument: '$', up to 20 digits, CRLF, its bytes, CRLF. */
	size_t need = 24 + argc * 24;
	if (op->script >= 0) {
		const struct script *sc = &scripts[op->script];
		name = eval ? "EVAL" : "EVALSHA";
		body = eval ? sc->src : sc->sha;
		need += strlen(name) + strlen(body);
	}
	for (size_t i = 0; i < op->argc; i++)
		need += b->alen[op->first + i];
	if (grow((void **)&b->resp, &b->respcap, b->resplen + need, 1))
		return DTASK_ENOMEM;
	char *o = resp_count(b->resp + b->resplen, '*', argc);
	if (name) {
		o = resp_arg(o, name, strlen(name));
		o = resp_arg(o, body, strlen(body));
	}
	for (size_t i = 0; i < op->argc; i++)
		o = resp_arg(o, b->buf + b->aoff[op->first + i], b->alen[op->first + i]);
	b->resplen = (size_t)(o - b->resp);
	return 0;
}

/* Hand what op_resp() wrote to hiredis (one copy into its output buffer). */
static int send_resp(dt_batch *b)
{
	int rc = b->resplen &&
			 redisAppendFormattedCommand(b->s->c, b->resp, b->resplen) != REDIS_OK
		 ? DTASK_ENOMEM
		 : 0;
	b->resplen = 0;
	return rc;
}

static int conn_failed(dt_store *s, const char *what, char *err, size_t errlen)
{
	const redisContext *c = s->c;
	int r;
	if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
		r = dt_err(err, errlen, DTASK_EREDIS, "redis %s:%d: %s: no answer within %d ms",
			   s->host, s->port, what, DT_STORE_CMD_TIMEOUT_MS);
	else
		r = dt_err(err, errlen, DTASK_EREDIS, "redis %s:%d: %s: %s", s->host, s->port, what,
			   c->errstr[0] ? c->errstr : "connection failed");
	dt_store_disconnect(s);
	return r;
}

static int is_noscript(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR && r->str && !strncmp(r->str, "NOSCRIPT", 8);
}

int dt_batch_exec(dt_batch *b, char *err, size_t errlen)
{
	dt_store *s = b->s;
	int rc = 0;
	size_t i;

	if (b->oom) {
		batch_reset(b);
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	}
	if (b->nops == 0)
		return 0;
	if ((rc = dt_store_ensure(s, err, errlen)))
		goto out;

	for (i = 0; i < b->nops && !rc; i++)
		rc = op_resp(b, &b->ops[i], 0);
	if (rc || send_resp(b)) {
		b->resplen = 0;
		rc = dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		dt_store_disconnect(s);
		goto out;
	}
	for (i = 0; i < b->nops; i++) {
		void *r = NULL;
		if (redisGetReply(s->c, &r) != REDIS_OK) {
			rc = conn_failed(s, b->ops[i].what, err, errlen);
			goto out;
		}
		b->ops[i].reply = r;
	}
	/* NOSCRIPT never ran: resend those with EVAL, after draining the rest. */
	size_t resend = 0;
	for (i = 0; i < b->nops; i++) {
		struct op *op = &b->ops[i];
		if (op->script < 0 || !is_noscript(op->reply))
			continue;
		freeReplyObject(op->reply);
		op->reply = NULL;
		op->resend = 1;
		if (op_resp(b, op, 1)) {
			b->resplen = 0;
			rc = dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
			dt_store_disconnect(s);
			goto out;
		}
		resend++;
	}
	if (resend && send_resp(b)) {
		rc = dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		dt_store_disconnect(s);
		goto out;
	}
	if (resend)
		log_debug("redis %s:%d: NOSCRIPT for %zu call(s): sent again with EVAL", s->host,
			  s->port, resend);
	for (i = 0; i < b->nops; i++) {
		if (!b->ops[i].resend)
			continue;
		void *r = NULL;
		if (redisGetReply(s->c, &r) != REDIS_OK) {
			rc = conn_failed(s, b->ops[i].what, err, errlen);
			goto out;
		}
		b->ops[i].reply = r;
	}

	for (i = 0; i < b->nops; i++) {
		const struct op *op = &b->ops[i];
		const redisReply *r = op->reply;
		int orc;
		if (r->type == REDIS_REPLY_ERROR)
			orc = dt_err(rc ? NULL : err, errlen, DTASK_EREDIS, "redis %s:%d: %s: %s",
				     s->host, s->port, op->what, r->str);
		else
			orc = op->decode(op, r, rc ? NULL : err, errlen);
		if (orc && !rc)
			rc = orc;
	}
	if (rc)
		dt_store_disconnect(s);
out:
	batch_reset(b);
	return rc;
}

/* ------------------------------------------------------------- decoders */

static int unexpected(const struct op *op, char *err, size_t errlen)
{
	return dt_err(err, errlen, DTASK_EREDIS, "redis: %s: unexpected reply", op->what);
}

static int is_str(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

/* An array of exactly op->n strings. */
static int check_strings(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != op->n)
		return unexpected(op, err, errlen);
	for (size_t i = 0; i < r->elements; i++)
		if (!is_str(r->element[i]))
			return unexpected(op, err, errlen);
	return 0;
}

static int strv_push(dt_strv *v, const char *p, size_t n)
{
	/* Capacity is 8, then doubles: grow at 0 and at every power of two >= 8. */
	if (v->n == 0 || (v->n >= 8 && (v->n & (v->n - 1)) == 0)) {
		size_t c = v->n ? v->n * 2 : 8;
		char **nv = realloc(v->v, c * sizeof *nv);
		if (!nv)
			return DTASK_ENOMEM;
		v->v = nv;
		size_t *nl = realloc(v->len, c * sizeof *nl);
		if (!nl)
			return DTASK_ENOMEM;
		v->len = nl;
	}
	char *q = malloc(n + 1);
	if (!q)
		return DTASK_ENOMEM;
	memcpy(q, p, n);
	q[n] = '\0';
	v->v[v->n] = q;
	v->len[v->n] = n;
	v->n++;
	return 0;
}

void dt_strv_free(dt_strv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	free(v->len);
	memset(v, 0, sizeof *v);
}

/* take.lua (an array), BLMOVE (one string or nil), SMEMBERS (an array). */
static int dec_strv(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	dt_strv *v = op->out;
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (r->type == REDIS_REPLY_STRING)
		return strv_push(v, r->str, r->len) ? dt_err(err, errlen, DTASK_ENOMEM, "out of memory") : 0;
	if (r->type != REDIS_REPLY_ARRAY)
		return unexpected(op, err, errlen);
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_STRING)
			return unexpected(op, err, errlen);
		if (strv_push(v, e->str, e->len))
			return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	}
	return 0;
}

/* claim.lua: op->n answers ("parked" only from the tail). */
static int decode_claim(const struct op *op, const redisReply *r, int tail, char *err,
			size_t errlen)
{
	dt_claim_res *res = op->out;
	if (check_strings(op, r, err, errlen))
		return DTASK_EREDIS;
	for (size_t i = 0; i < op->n; i++) {
		const char *t = r->element[i]->str;
		res[i].attempt = 0;
		if (!strncmp(t, "ok ", 3)) {
			char *end;
			res[i].status = DT_CLAIM_OK;
			res[i].attempt = strtoll(t + 3, &end, 10);
			if (*end || res[i].attempt < 1)
				return unexpected(op, err, errlen);
		} else if (!strcmp(t, "gone"))
			res[i].status = DT_CLAIM_GONE;
		else if (!strcmp(t, "dup"))
			res[i].status = DT_CLAIM_DUP;
		else if (!strcmp(t, "cancelled"))
			res[i].status = DT_CLAIM_CANCELLED;
		else if (tail && !strcmp(t, "parked"))
			res[i].status = DT_CLAIM_PARKED;
		else
			return unexpected(op, err, errlen);
	}
	return 0;
}

static int dec_claim(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	return decode_claim(op, r, 0, err, errlen);
}

static int dec_claim_tail(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	return decode_claim(op, r, 1, err, errlen);
}

/* A reply word and the enum value it stands for. */
struct word {
	const char *s;
	int v;
};

/* An array of reply words into op->out (int[n]); a word not in map is
 * dflt, or a protocol error when dflt < 0. */
static int dec_words(const struct op *op, const redisReply *r, const struct word *map, int dflt,
		     char *err, size_t errlen)
{
	int *res = op->out;
	if (check_strings(op, r, err, errlen))
		return DTASK_EREDIS;
	for (size_t i = 0; i < op->n; i++) {
		const char *t = r->element[i]->str;
		const struct word *w = map;
		while (w->s && strcmp(t, w->s) != 0)
			w++;
		if (w->s) {
			res[i] = w->v;
		} else if (dflt >= 0) {
			if (t[0])
				log_warn("redis: %s: unexpected word \"%.40s\": taken as none", op->what, t);
			res[i] = dflt;
		} else {
			return unexpected(op, err, errlen);
		}
	}
	return 0;
}

static int dec_move(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	static const struct word map[] = { { "ok", DT_MOVE_OK }, { "gone", DT_MOVE_GONE }, { NULL, 0 } };
	return dec_words(op, r, map, -1, err, errlen);
}

/* "" is a running task with no request; any other word is a request we do
 * not know (a newer client?): logged, and the task goes on. */
static int dec_heartbeat(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	static const struct word map[] = { { "fenced", DT_HB_FENCED }, { "stop", DT_HB_STOP },
					   { "cancel", DT_HB_CANCEL }, { "", DT_HB_OK }, { NULL, 0 } };
	return dec_words(op, r, map, DT_HB_OK, err, errlen);
}

static int dec_finish(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	static const struct word map[] = { { "ok", DT_FIN_OK }, { "fenced", DT_FIN_FENCED },
					   { NULL, 0 } };
	return dec_words(op, r, map, -1, err, errlen);
}

static int dec_requeue(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	dt_requeue_res *res = op->out;
	if (!is_str(r))
		return unexpected(op, err, errlen);
	res->state[0] = '\0';
	if (!strcmp(r->str, "requeued"))
		res->status = DT_RQ_REQUEUED;
	else if (!strcmp(r->str, "ended"))
		res->status = DT_RQ_ENDED;
	else if (!strncmp(r->str, "skip ", 5)) {
		res->status = DT_RQ_SKIP;
		snprintf(res->state, sizeof res->state, "%s", r->str + 5);
	} else
		return unexpected(op, err, errlen);
	return 0;
}

/* A count as a string or an integer; "alive" is -1 (recover.lua). */
static int dec_count(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	int64_t *out = op->out;
	if (r->type == REDIS_REPLY_INTEGER) {
		*out = r->integer;
		return 0;
	}
	if (!is_str(r))
		return unexpected(op, err, errlen);
	if (!strcmp(r->str, "alive")) {
		*out = -1;
		return 0;
	}
	char *end;
	long long v = strtoll(r->str, &end, 10);
	if (!r->str[0] || *end || v < 0)
		return unexpected(op, err, errlen);
	*out = v;
	return 0;
}

/* A status string into the caller's buffer (out, n bytes). */
static int dec_answer(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	if (!is_str(r))
		return unexpected(op, err, errlen);
	if (op->out && op->n)
		snprintf(op->out, op->n, "%s", r->str);
	return 0;
}

/* Anything but an error (PING, LPUSH). */
static int dec_any(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	return 0;
}

static int dec_time(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_str(r->element[0]) ||
	    !is_str(r->element[1]))
		return unexpected(op, err, errlen);
	*(int64_t *)op->out = strtoll(r->element[0]->str, NULL, 10) * 1000 +
			      strtoll(r->element[1]->str, NULL, 10) / 1000;
	return 0;
}

void dt_stale_free(dt_stale *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].id);
	free(v);
}

static int dec_stale(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	dt_stale **out = op->out;
	size_t *n = op->out2;
	int64_t *now = op->out3;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements % 2 != 1)
		return unexpected(op, err, errlen);
	for (size_t i = 0; i < r->elements; i++)
		if (!is_str(r->element[i]))
			return unexpected(op, err, errlen);
	if (now)
		*now = strtoll(r->element[0]->str, NULL, 10);
	size_t cnt = r->elements / 2;
	dt_stale *v = calloc(cnt ? cnt : 1, sizeof *v);
	if (!v)
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		v[i].id = strdup(r->element[1 + 2 * i]->str);
		if (!v[i].id) {
			dt_stale_free(v, i);
			return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		}
		/* Scores come back as "1700000000000" or, for large ones, "1.7e+12". */
		v[i].update = (int64_t)strtod(r->element[2 + 2 * i]->str, NULL);
	}
	*out = v;
	*n = cnt;
	return 0;
}

static int dec_hash(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	struct json_object **out = op->out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
		return unexpected(op, err, errlen);
	if (r->elements == 0)
		return 0;
	struct json_object *o = json_object_new_object();
	if (!o)
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	for (size_t i = 0; i < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		if (!is_str(k) || !is_str(v)) {
			json_object_put(o);
			return unexpected(op, err, errlen);
		}
		struct json_object *js = json_object_new_string_len(v->str, (int)v->len);
		if (!js || json_object_object_add(o, k->str, js)) {
			json_object_put(js);
			json_object_put(o);
			return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		}
	}
	*out = o;
	return 0;
}

/* -------------------------------------------------- adding script calls */

static int bad_name(const char *p)
{
	return !p || !p[0];
}

int dt_batch_heartbeat(dt_batch *b, const dt_task_ref *tasks, size_t n, int *res)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (bad_name(tasks[i].id))
			return DTASK_EINVAL;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_HEARTBEAT, NULL, 1, dec_heartbeat);
	arg_key(b, "running", NULL);
	arg_prefix(b);
	for (size_t i = 0; i < n; i++) {
		arg_s(b, tasks[i].id);
		arg_i(b, tasks[i].attempt);
	}
	op->out = res;
	op->n = n;
	op_close(b, op);
	return batch_done(b, m);
}

int dt_batch_finish(dt_batch *b, const dt_finish_req *reqs, size_t n, int *res)
{
	static const char *const outcome[] = { "end", "fail", "stopped" };
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (bad_name(reqs[i].id) || reqs[i].outcome < DT_OUT_END ||
		    reqs[i].outcome > DT_OUT_STOPPED)
			return DTASK_EINVAL;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_FINISH, NULL, 3, dec_finish);
	arg_key(b, "tasks", NULL);
	arg_key(b, "running", NULL);
	arg_key(b, "end-task", NULL);
	arg_prefix(b);
	for (size_t i = 0; i < n; i++) {
		arg_s(b, reqs[i].id);
		arg_i(b, reqs[i].attempt);
		arg_s(b, outcome[reqs[i].outcome]);
		arg_s(b, reqs[i].result ? reqs[i].result : "");
		arg_s(b, reqs[i].error ? reqs[i].error : "");
	}
	op->out = res;
	op->n = n;
	op_close(b, op);
	return batch_done(b, m);
}

int dt_batch_requeue(dt_batch *b, const dt_requeue_req *reqs, size_t n, int64_t task_timeout_ms,
		     dt_requeue_res *res)
{
	for (size_t i = 0; i < n; i++)
		if (bad_name(reqs[i].id))
			return DTASK_EINVAL;
	struct mark m = batch_mark(b);
	for (size_t i = 0; i < n; i++) {
		const dt_requeue_req *q = &reqs[i];
		struct op *op = op_new(b, SC_REQUEUE, NULL, 4, dec_requeue);
		arg_key(b, "new-task", NULL);
		arg_key(b, "tasks", NULL);
		arg_key(b, "running", NULL);
		arg_key(b, "end-task", NULL);
		arg_prefix(b);
		arg_s(b, q->id);
		if (q->attempt < 0)
			arg(b, "", 0);
		else
			arg_i(b, q->attempt);
		arg_s(b, q->reason ? q->reason : "requeued");
		arg_s(b, (q->flags & DT_RQ_COUNT_FAILURE) ? "1" : "0");
		arg_s(b, (q->flags & DT_RQ_NOW) ? "0" : "1");
		if (q->max_attempts < 0)
			arg(b, "", 0);
		else
			arg_i(b, q->max_attempts);
		arg_i(b, task_timeout_ms);
		op->out = &res[i];
		op->n = 1;
		op_close(b, op);
	}
	return batch_done(b, m);
}

/* claim.lua from inflight-<distributor> (tail 0) or new-task's tail (1). */
static int batch_claim(dt_batch *b, const char *distributor, const dt_claim_req *reqs, size_t n,
		       dt_claim_res *res, int tail)
{
	if (n == 0)
		return 0;
	if (bad_name(distributor))
		return DTASK_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!reqs[i].raw || !reqs[i].item || !reqs[i].item->json || !reqs[i].item->id[0] ||
		    bad_name(reqs[i].item->function) || bad_name(reqs[i].worker))
			return DTASK_EINVAL;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_CLAIM, NULL, 5, tail ? dec_claim_tail : dec_claim);
	if (tail)
		arg_key(b, "new-task", NULL);
	else
		arg_key(b, "inflight-", distributor);
	arg_key(b, "tasks", NULL);
	arg_key(b, "running", NULL);
	arg_key(b, "end-task", NULL);
	arg_key(b, "bad-task", NULL);
	arg_prefix(b);
	arg_s(b, distributor);
	arg_s(b, tail ? "tail" : "inflight");
	for (size_t i = 0; i < n; i++) {
		const dt_item *it = reqs[i].item;
		arg(b, reqs[i].raw, reqs[i].raw_len);
		arg(b, it->json, it->len);
		arg_s(b, it->id);
		arg_i(b, it->attempt);
		arg_s(b, reqs[i].worker);
		arg_s(b, it->clean_end ? "1" : "0");
		arg_i(b, it->max_attempts);
		arg_s(b, it->function);
	}
	op->out = res;
	op->n = n;
	op_close(b, op);
	return batch_done(b, m);
}

int dt_batch_claim(dt_batch *b, const char *distributor, const dt_claim_req *reqs, size_t n,
		   dt_claim_res *res)
{
	return batch_claim(b, distributor, reqs, n, res, 0);
}

int dt_batch_claim_tail(dt_batch *b, const char *distributor, const dt_claim_req *reqs, size_t n,
			dt_claim_res *res)
{
	return batch_claim(b, distributor, reqs, n, res, 1);
}

int dt_batch_park(dt_batch *b, const char *distributor, const dt_park_req *reqs, size_t n,
		  int *res)
{
	if (n == 0)
		return 0;
	if (bad_name(distributor))
		return DTASK_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!reqs[i].raw || bad_name(reqs[i].function))
			return DTASK_EINVAL;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_PARK, NULL, 1, dec_move);
	arg_key(b, "inflight-", distributor);
	arg_prefix(b);
	for (size_t i = 0; i < n; i++) {
		arg(b, reqs[i].raw, reqs[i].raw_len);
		arg_s(b, reqs[i].function);
	}
	op->out = res;
	op->n = n;
	op_close(b, op);
	return batch_done(b, m);
}

/* {"reason":"...","item":"..."}: both as JSON strings (the item may be
 * anything).  Appended as one argument. */
static void arg_bad_wrapper(dt_batch *b, const char *raw, size_t raw_len, const char *reason)
{
	struct json_object *o = json_object_new_object();
	struct json_object *r = json_object_new_string(reason ? reason : "bad item");
	struct json_object *it = json_object_new_string_len(raw, (int)raw_len);
	if (!o || !r || !it || json_object_object_add(o, "reason", r)) {
		json_object_put(o);
		json_object_put(r);
		json_object_put(it);
		b->oom = 1;
		return;
	}
	if (json_object_object_add(o, "item", it)) {
		json_object_put(o);
		json_object_put(it);
		b->oom = 1;
		return;
	}
	size_t len = 0;
	const char *txt = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!txt)
		b->oom = 1;
	else
		arg(b, txt, len);
	json_object_put(o);
}

int dt_batch_bad(dt_batch *b, const char *distributor, const dt_bad_req *reqs, size_t n,
		 int *res)
{
	if (n == 0)
		return 0;
	if (bad_name(distributor))
		return DTASK_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!reqs[i].raw || reqs[i].raw_len > (size_t)INT32_MAX)
			return DTASK_EINVAL;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_BAD, NULL, 2, dec_move);
	arg_key(b, "inflight-", distributor);
	arg_key(b, "bad-task", NULL);
	for (size_t i = 0; i < n; i++) {
		arg(b, reqs[i].raw, reqs[i].raw_len);
		arg_bad_wrapper(b, reqs[i].raw, reqs[i].raw_len, reqs[i].reason);
	}
	op->out = res;
	op->n = n;
	op_close(b, op);
	return batch_done(b, m);
}

/* ------------------------------------------------------- single calls */

/* Exec the store's own batch after an add that returned rc. */
static int run_one(dt_store *s, int rc, char *err, size_t errlen)
{
	if (rc == DTASK_EINVAL)
		return dt_err(err, errlen, rc, "redis: invalid argument");
	if (rc)
		return dt_err(err, errlen, rc, "out of memory");
	return dt_batch_exec(s->one, err, errlen);
}

int dt_store_ping(dt_store *s, char *err, size_t errlen)
{
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "PING", 0, dec_any);
	arg_s(b, "PING");
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_time(dt_store *s, int64_t *now_ms, char *err, size_t errlen)
{
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "TIME", 0, dec_time);
	arg_s(b, "TIME");
	op->out = now_ms;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_submit(dt_store *s, const char *json, size_t len, char *err, size_t errlen)
{
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "LPUSH new-task", 0, dec_any);
	arg_s(b, "LPUSH");
	arg_key(b, "new-task", NULL);
	arg(b, json, len);
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_take(dt_store *s, const char *distributor, const char *function, size_t n,
		  dt_strv *items, char *err, size_t errlen)
{
	memset(items, 0, sizeof *items);
	if (bad_name(distributor) || (function && !function[0]))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: take: invalid argument");
	if (n == 0)
		return 0;
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_TAKE, NULL, 2, dec_strv);
	arg_key(b, "inflight-", distributor);
	if (function)
		arg_key(b, "queue-", function);
	else
		arg_key(b, "new-task", NULL);
	arg_i(b, (int64_t)n);
	arg_i(b, (int64_t)n);
	op->out = items;
	op_close(b, op);
	int rc = run_one(s, batch_done(b, m), err, errlen);
	if (rc)
		dt_strv_free(items);
	return rc;
}

int dt_store_take_multi(dt_store *s, const char *distributor, const char *const *functions,
			const size_t *counts, size_t nf, size_t n, dt_strv *items, char *err,
			size_t errlen)
{
	int rc = run_one(s, dt_batch_take_multi(s->one, distributor, functions, counts, nf, n, items),
			 err, errlen);
	if (rc)
		dt_strv_free(items);
	return rc;
}

int dt_batch_take_multi(dt_batch *b, const char *distributor, const char *const *functions,
			const size_t *counts, size_t nf, size_t n, dt_strv *items)
{
	memset(items, 0, sizeof *items);
	if (bad_name(distributor))
		return DTASK_EINVAL;
	for (size_t i = 0; i < nf; i++)
		if (!functions[i] || !functions[i][0])
			return DTASK_EINVAL;
	if (n == 0)
		return 0;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_TAKE, NULL, (int)nf + 2, dec_strv);
	arg_key(b, "inflight-", distributor);
	for (size_t i = 0; i < nf; i++)
		arg_key(b, "queue-", functions[i]);
	arg_key(b, "new-task", NULL);
	arg_i(b, (int64_t)n);
	for (size_t i = 0; i < nf; i++)
		arg_i(b, (int64_t)counts[i]);
	arg_i(b, (int64_t)n);
	op->out = items;
	op_close(b, op);
	return batch_done(b, m);
}

/* LRANGE new-task -n -1 (newest first) into items, oldest first. */
static int dec_peek(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	if (r->type != REDIS_REPLY_ARRAY)
		return unexpected(op, err, errlen);
	for (size_t i = r->elements; i-- > 0;) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_STRING)
			return unexpected(op, err, errlen);
		if (strv_push(op->out, e->str, e->len))
			return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	}
	return 0;
}

int dt_batch_peek(dt_batch *b, size_t n, dt_strv *items)
{
	memset(items, 0, sizeof *items);
	if (n == 0)
		return 0;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "LRANGE", 0, dec_peek);
	arg_s(b, "LRANGE");
	arg_key(b, "new-task", NULL);
	arg_i(b, -(int64_t)n);
	arg_s(b, "-1");
	op->out = items;
	op_close(b, op);
	return batch_done(b, m);
}

int dt_store_peek(dt_store *s, size_t n, dt_strv *items, char *err, size_t errlen)
{
	int rc = run_one(s, dt_batch_peek(s->one, n, items), err, errlen);
	if (rc)
		dt_strv_free(items);
	return rc;
}

/* BLMOVE new-task inflight-<distributor> RIGHT LEFT, at most timeout_ms. */
static void add_blmove(dt_batch *b, const char *distributor, int timeout_ms, dt_strv *items)
{
	if (timeout_ms < 10)
		timeout_ms = 10;
	if (timeout_ms > DT_STORE_BLOCK_MAX_MS)
		timeout_ms = DT_STORE_BLOCK_MAX_MS;
	char t[24];
	snprintf(t, sizeof t, "%d.%03d", timeout_ms / 1000, timeout_ms % 1000);
	struct op *op = op_new(b, -1, "BLMOVE", 0, dec_strv);
	arg_s(b, "BLMOVE");
	arg_key(b, "new-task", NULL);
	arg_key(b, "inflight-", distributor);
	arg_s(b, "RIGHT");
	arg_s(b, "LEFT");
	arg_s(b, t);
	op->out = items;
	op_close(b, op);
}

int dt_store_take_blocking(dt_store *s, const char *distributor, int timeout_ms, dt_strv *items,
			   char *err, size_t errlen)
{
	memset(items, 0, sizeof *items);
	if (bad_name(distributor))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: take: invalid argument");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	add_blmove(b, distributor, timeout_ms, items);
	int rc = run_one(s, batch_done(b, m), err, errlen);
	if (rc)
		dt_strv_free(items);
	return rc;
}

/* An arrive.lua call in mode (its keys and first arguments added; the
 * mode's own follow). */
static struct op *arrive_op(dt_batch *b, const char *distributor, const char *mode,
			    decode_fn decode)
{
	struct op *op = op_new(b, SC_ARRIVE, NULL, 4, decode);
	arg_key(b, "inflight-", distributor);
	arg_key(b, "tasks", NULL);
	arg_key(b, "running", NULL);
	arg_key(b, "bad-task", NULL);
	arg_prefix(b);
	arg_s(b, distributor);
	arg_s(b, mode);
	return op;
}

/* arrive.lua "claim": nothing, or DT_ARRIVE_N strings. */
static int dec_arrive(const struct op *op, const redisReply *r, char *err, size_t errlen)
{
	if (r->type != REDIS_REPLY_ARRAY || (r->elements != 0 && r->elements != DT_ARRIVE_N))
		return unexpected(op, err, errlen);
	return dec_strv(op, r, err, errlen);
}

int dt_store_take_arrive(dt_store *s, const char *distributor, int timeout_ms,
			 const dt_arrive_req *req, dt_strv *items, dt_strv *claimed, char *err,
			 size_t errlen)
{
	memset(items, 0, sizeof *items);
	memset(claimed, 0, sizeof *claimed);
	int bad = bad_name(distributor) || !dt_id_valid(req->fresh_id, strlen(req->fresh_id));
	for (size_t i = 0; i < req->n; i++)
		bad |= bad_name(req->functions[i]) || bad_name(req->workers[i]);
	if (bad)
		return dt_err(err, errlen, DTASK_EINVAL, "redis: take: invalid argument");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	add_blmove(b, distributor, timeout_ms, items);
	struct op *op = arrive_op(b, distributor, "claim", dec_arrive);
	arg_s(b, req->fresh_id);
	arg_i(b, (int64_t)req->max_message);
	arg_i(b, req->max_attempts);
	for (size_t i = 0; i < req->n; i++) {
		arg_s(b, req->functions[i]);
		arg_s(b, req->workers[i]);
	}
	op->out = claimed;
	op_close(b, op);
	int rc = run_one(s, batch_done(b, m), err, errlen);
	if (rc) {
		dt_strv_free(items);
		dt_strv_free(claimed);
	}
	return rc;
}

int dt_store_arrive_move(dt_store *s, const char *distributor, const char *id, const char *from,
			 const char *to, int *status, char *err, size_t errlen)
{
	if (bad_name(distributor) || !dt_id_valid(id, strlen(id)) || bad_name(from) || bad_name(to))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: move: invalid argument");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = arrive_op(b, distributor, "move", dec_move);
	arg_s(b, id);
	arg_s(b, from);
	arg_s(b, to);
	op->out = status;
	op->n = 1;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_arrive_undo(dt_store *s, const char *distributor, const char *id, const char *raw,
			 size_t raw_len, const char *reason, int *status, char *err,
			 size_t errlen)
{
	if (bad_name(distributor) || !dt_id_valid(id, strlen(id)) || raw_len > (size_t)INT32_MAX)
		return dt_err(err, errlen, DTASK_EINVAL, "redis: undo: invalid argument");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = arrive_op(b, distributor, "undo", dec_move);
	arg_s(b, id);
	arg_bad_wrapper(b, raw, raw_len, reason);
	op->out = status;
	op->n = 1;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_queue_len(dt_store *s, const char *function, int64_t *len, char *err,
		       size_t errlen)
{
	if (function && !function[0])
		return dt_err(err, errlen, DTASK_EINVAL, "redis: queue: invalid argument");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "LLEN", 0, dec_count);
	arg_s(b, "LLEN");
	if (function)
		arg_key(b, "queue-", function);
	else
		arg_key(b, "new-task", NULL);
	op->out = len;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_parked(dt_store *s, const char *const *functions, size_t nf, int64_t *count,
		    char *err, size_t errlen)
{
	*count = 0;
	if (nf == 0)
		return 0;
	for (size_t i = 0; i < nf; i++)
		if (!functions[i] || !functions[i][0])
			return dt_err(err, errlen, DTASK_EINVAL, "redis: parked: invalid function");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "EXISTS", 0, dec_count);
	arg_s(b, "EXISTS");
	for (size_t i = 0; i < nf; i++)
		arg_key(b, "queue-", functions[i]);
	op->out = count;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_claim(dt_store *s, const char *distributor, const dt_claim_req *reqs, size_t n,
		   dt_claim_res *res, char *err, size_t errlen)
{
	return run_one(s, dt_batch_claim(s->one, distributor, reqs, n, res), err, errlen);
}

int dt_store_claim_tail(dt_store *s, const char *distributor, const dt_claim_req *reqs, size_t n,
			dt_claim_res *res, char *err, size_t errlen)
{
	return run_one(s, dt_batch_claim_tail(s->one, distributor, reqs, n, res), err, errlen);
}

int dt_store_park(dt_store *s, const char *distributor, const dt_park_req *reqs, size_t n,
		  int *res, char *err, size_t errlen)
{
	return run_one(s, dt_batch_park(s->one, distributor, reqs, n, res), err, errlen);
}

int dt_store_bad(dt_store *s, const char *distributor, const dt_bad_req *reqs, size_t n,
		 int *res, char *err, size_t errlen)
{
	return run_one(s, dt_batch_bad(s->one, distributor, reqs, n, res), err, errlen);
}

static int move_inflight(dt_store *s, int script, const char *distributor, int64_t timeout_ms,
			 int64_t *count, char *err, size_t errlen)
{
	if (bad_name(distributor))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: invalid distributor name");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, script, NULL, script == SC_RECOVER ? 3 : 2, dec_count);
	if (script == SC_RECOVER)
		arg_key(b, "distributor-", distributor);
	arg_key(b, "inflight-", distributor);
	arg_key(b, "new-task", NULL);
	if (script == SC_RECOVER)
		arg_i(b, timeout_ms);
	op->out = count;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_return_inflight(dt_store *s, const char *distributor, int64_t *count, char *err,
			     size_t errlen)
{
	return move_inflight(s, SC_RETURN_INFLIGHT, distributor, 0, count, err, errlen);
}

int dt_store_recover_distributor(dt_store *s, const char *distributor, int64_t timeout_ms,
				 int64_t *count, char *err, size_t errlen)
{
	return move_inflight(s, SC_RECOVER, distributor, timeout_ms, count, err, errlen);
}

int dt_store_heartbeat(dt_store *s, const dt_task_ref *tasks, size_t n, int *res, char *err,
		       size_t errlen)
{
	return run_one(s, dt_batch_heartbeat(s->one, tasks, n, res), err, errlen);
}

int dt_store_finish(dt_store *s, const dt_finish_req *reqs, size_t n, int *res, char *err,
		    size_t errlen)
{
	return run_one(s, dt_batch_finish(s->one, reqs, n, res), err, errlen);
}

int dt_store_requeue(dt_store *s, const dt_requeue_req *reqs, size_t n, int64_t task_timeout_ms,
		     dt_requeue_res *res, char *err, size_t errlen)
{
	return run_one(s, dt_batch_requeue(s->one, reqs, n, task_timeout_ms, res), err, errlen);
}

int dt_store_unclaim(dt_store *s, const char *id, int64_t attempt, int *status, char *err,
		     size_t errlen)
{
	if (attempt < 1)
		return dt_err(err, errlen, DTASK_EINVAL, "redis: unclaim needs the attempt");
	dt_requeue_req q = { id, attempt, "rejected", DT_RQ_NOW, -1 };
	dt_requeue_res r;
	int rc = dt_store_requeue(s, &q, 1, 0, &r, err, errlen);
	if (!rc && status)
		*status = r.status;
	return rc;
}

int dt_store_request(dt_store *s, const char *id, const char *what, char *answer,
		     size_t answerlen, char *err, size_t errlen)
{
	if (bad_name(id) || !what || (strcmp(what, "stop") && strcmp(what, "cancel")))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: request must be stop or cancel");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_REQUEST, NULL, 3, dec_answer);
	arg_key(b, "tasks", NULL);
	arg_key(b, "running", NULL);
	arg_key(b, "end-task", NULL);
	arg_prefix(b);
	arg_s(b, id);
	arg_s(b, what);
	op->out = answer;
	op->n = answerlen;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_stale(dt_store *s, int64_t older_ms, size_t limit, dt_stale **out, size_t *n,
		   int64_t *now_ms, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	if (limit == 0)
		limit = 1;
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_STALE, NULL, 1, dec_stale);
	arg_key(b, "running", NULL);
	arg_i(b, older_ms < 0 ? 0 : older_ms);
	arg_i(b, (int64_t)limit);
	op->out = out;
	op->out2 = n;
	op->out3 = now_ms;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

/* ------------------------------------------------ processes' records */

/* One distributor.lua or worker.lua call: mode, name, then args. */
static int proc_call(dt_store *s, int script, const char *mode, const char *name,
		     const char *const *args, size_t nargs, char *answer, size_t answerlen,
		     char *err, size_t errlen)
{
	if (bad_name(name))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: invalid name");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, script, NULL, 2, dec_answer);
	arg_key(b, script == SC_WORKER ? "workers" : "distributors", NULL);
	arg_key(b, script == SC_WORKER ? "worker-" : "distributor-", name);
	arg_s(b, mode);
	arg_s(b, name);
	for (size_t i = 0; i < nargs; i++)
		arg_s(b, args[i]);
	op->out = answer;
	op->n = answerlen;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_register_distributor(dt_store *s, const char *name, const char *host, int port,
				  int64_t timeout_ms, char *err, size_t errlen)
{
	char p[16], t[24], ans[32];
	snprintf(p, sizeof p, "%d", port);
	snprintf(t, sizeof t, "%" PRId64, timeout_ms);
	const char *args[] = { host ? host : "", p, t };
	int rc = proc_call(s, SC_DISTRIBUTOR, "register", name, args, 3, ans, sizeof ans, err,
			   errlen);
	if (!rc && !strcmp(ans, "taken"))
		return dt_err(err, errlen, DTASK_EBUSY,
			      "distributor name \"%s\" is taken: distributor-%s is UP and was "
			      "refreshed within %" PRId64 " ms", name, name, timeout_ms);
	return rc;
}

int dt_store_touch_distributor(dt_store *s, const char *name, int *recovered, char *err,
			       size_t errlen)
{
	char ans[32];
	int rc = proc_call(s, SC_DISTRIBUTOR, "touch", name, NULL, 0, ans, sizeof ans, err, errlen);
	if (!rc && recovered)
		*recovered = !strcmp(ans, "recovered");
	return rc;
}

int dt_store_distributor_down(dt_store *s, const char *name, char *err, size_t errlen)
{
	return proc_call(s, SC_DISTRIBUTOR, "down", name, NULL, 0, NULL, 0, err, errlen);
}

int dt_store_register_worker(dt_store *s, const char *name, const char *host, int port,
			     int capacity, const char *functions_json, char *err, size_t errlen)
{
	char p[16], c[16];
	snprintf(p, sizeof p, "%d", port);
	snprintf(c, sizeof c, "%d", capacity);
	const char *args[] = { "host", host ? host : "", "port", p, "capacity", c,
			       "functions", functions_json ? functions_json : "[]",
			       "running", "0", "load", "0", "stuck", "0", "state", "UP" };
	return proc_call(s, SC_WORKER, "set", name, args, sizeof args / sizeof args[0], NULL, 0,
			 err, errlen);
}

int dt_store_worker_update(dt_store *s, const char *name, int running, const char *load,
			   int stuck, char *err, size_t errlen)
{
	char r[16], k[16];
	snprintf(r, sizeof r, "%d", running);
	snprintf(k, sizeof k, "%d", stuck);
	const char *args[] = { "running", r, "load", load ? load : "0", "stuck", k };
	return proc_call(s, SC_WORKER, "set", name, args, 6, NULL, 0, err, errlen);
}

int dt_store_worker_down(dt_store *s, const char *name, char *err, size_t errlen)
{
	const char *args[] = { "state", "DOWN" };
	return proc_call(s, SC_WORKER, "set", name, args, 2, NULL, 0, err, errlen);
}

int dt_store_worker_clear(dt_store *s, const char *name, int64_t older_ms, int *cleared,
			  char *err, size_t errlen)
{
	char t[24], ans[32];
	snprintf(t, sizeof t, "%" PRId64, older_ms);
	const char *args[] = { t };
	int rc = proc_call(s, SC_WORKER, "clear", name, args, 1, ans, sizeof ans, err, errlen);
	if (!rc && cleared)
		*cleared = !strcmp(ans, "cleared");
	return rc;
}

/* ------------------------------------------------------------- readers */

int dt_store_record(dt_store *s, const char *kind, const char *name, struct json_object **out,
		    char *err, size_t errlen)
{
	*out = NULL;
	if (!kind || (strcmp(kind, "task") && strcmp(kind, "worker") && strcmp(kind, "distributor")) ||
	    bad_name(name))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: invalid record kind or name");
	char k[16];
	snprintf(k, sizeof k, "%s-", kind);
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "HGETALL", 0, dec_hash);
	arg_s(b, "HGETALL");
	arg_key(b, k, name);
	op->out = out;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_members(dt_store *s, const char *set, dt_strv *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!set || (strcmp(set, "tasks") && strcmp(set, "end-task") && strcmp(set, "workers") &&
		     strcmp(set, "distributors")))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: invalid set name");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "SMEMBERS", 0, dec_strv);
	arg_s(b, "SMEMBERS");
	arg_key(b, set, NULL);
	op->out = out;
	op_close(b, op);
	int rc = run_one(s, batch_done(b, m), err, errlen);
	if (rc)
		dt_strv_free(out);
	return rc;
}

/* ------------------------------------------------------------- clients */

int dt_store_submit_many(dt_store *s, const char *const *jsons, const size_t *lens, size_t n,
			 char *err, size_t errlen)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!jsons[i])
			return dt_err(err, errlen, DTASK_EINVAL, "redis: submit: invalid argument");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, -1, "LPUSH new-task", 0, dec_any);
	arg_s(b, "LPUSH");
	arg_key(b, "new-task", NULL);
	for (size_t i = 0; i < n; i++)
		arg(b, jsons[i], lens ? lens[i] : strlen(jsons[i]));
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}

int dt_store_records(dt_store *s, const char *kind, const char *const *names, size_t n,
		     struct json_object **out, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (n == 0)
		return 0;
	if (!kind || (strcmp(kind, "task") && strcmp(kind, "worker") && strcmp(kind, "distributor")))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: invalid record kind");
	for (size_t i = 0; i < n; i++)
		if (bad_name(names[i]))
			return dt_err(err, errlen, DTASK_EINVAL, "redis: invalid record name");
	char k[16];
	snprintf(k, sizeof k, "%s-", kind);
	dt_batch *b = dt_batch_new(s);
	if (!b)
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	struct mark m = batch_mark(b);
	for (size_t i = 0; i < n; i++) {
		struct op *op = op_new(b, -1, "HGETALL", 0, dec_hash);
		arg_s(b, "HGETALL");
		arg_key(b, k, names[i]);
		op->out = &out[i];
		op_close(b, op);
	}
	int rc = batch_done(b, m);
	if (rc)
		rc = dt_err(err, errlen, rc, "out of memory");
	else
		rc = dt_batch_exec(b, err, errlen);
	dt_batch_free(b);
	if (rc) {
		/* Some replies may have been decoded before a later one failed. */
		for (size_t i = 0; i < n; i++) {
			json_object_put(out[i]);
			out[i] = NULL;
		}
	}
	return rc;
}

int dt_store_clean(dt_store *s, const char *id, char *answer, size_t answerlen, char *err,
		   size_t errlen)
{
	if (bad_name(id))
		return dt_err(err, errlen, DTASK_EINVAL, "redis: clean: invalid id");
	dt_batch *b = s->one;
	struct mark m = batch_mark(b);
	struct op *op = op_new(b, SC_CLEAN, NULL, 3, dec_answer);
	arg_key(b, "tasks", NULL);
	arg_key(b, "running", NULL);
	arg_key(b, "end-task", NULL);
	arg_prefix(b);
	arg_s(b, id);
	op->out = answer;
	op->n = answerlen;
	op_close(b, op);
	return run_one(s, batch_done(b, m), err, errlen);
}
