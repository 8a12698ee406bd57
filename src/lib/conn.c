/*
 * conn.c - one authenticated peer connection (see conn.h).
 *
 * Threads: the owner reads (dt_conn_recv*, dt_conn_pending: the rx
 * buffer, the read-ahead buffer, the JSON tokener and the stored receive
 * error, no lock); any thread sends under send_lock (sbuf, send_dead);
 * dt_conn_shutdown() from any thread only calls shutdown(2) and sets an
 * atomic flag.  send_lock is a leaf: nothing else is locked while it is
 * held.
 */
#include "build-config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#if GNUTLS_VERSION_NUMBER >= 0x030703
#include <gnutls/socket.h> /* gnutls_transport_is_ktls_enabled() */
#endif
#include <json-c/json.h>

#include "auth.h"
#include "conn.h"
#include "dtask.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "util.h"

struct dt_conn {
	int fd;
	gnutls_session_t s;
	size_t max_message;
	atomic_int down;         /* shut down: every later I/O fails */
	dt_frame rx;             /* reader only */
	char *ra;                /* reader only: bytes read ahead from the */
	size_t ra_start, ra_len; /* socket, not yet pulled by GnuTLS */
	json_tokener *tok;       /* reader only: dt_conn_recv_msg() */
	int rx_failed;           /* reader only: dt_conn_pending() met rx_err */
	ssize_t rx_err;          /* (0: the peer closed), for dt_conn_recv() */
	pthread_mutex_t send_lock;
	int send_dead;           /* under send_lock */
	char *sbuf;              /* under send_lock: message + '\n' */
	size_t scap;
	char peer[64];
	char name[128];
};

static dt_conn *conn_new(int fd, size_t max_message)
{
	dt_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fd = fd;
	c->max_message = max_message;
	dt_frame_init(&c->rx, max_message);
	pthread_mutex_init(&c->send_lock, NULL);
	dt_net_peer_name(fd, c->peer, sizeof c->peer);
	return c;
}

/* Frees everything but the socket, which the caller decides about. */
static void conn_release(dt_conn *c)
{
	if (c->s)
		gnutls_deinit(c->s);
	dt_frame_free(&c->rx);
	free(c->ra);
	if (c->tok)
		json_tokener_free(c->tok);
	pthread_mutex_destroy(&c->send_lock);
	free(c->sbuf);
	free(c);
}

/* The reader's pull: never blocks, so GnuTLS answers GNUTLS_E_AGAIN and
 * keeps a half-received record for the next call, and dt_conn_recv() waits
 * with poll(2).  GnuTLS's own receive timeout (gnutls_record_set_timeout)
 * must not be used on a stream: one that expires in the middle of a record
 * throws away the part already read, the stream is out of step from then
 * on, and the next record fails to decrypt (seen with GnuTLS 3.7.9 when a
 * loaded peer's record arrived in pieces around a health deadline).
 * It reads ahead: GnuTLS asks for a record's 5-byte header, then for its
 * body, and one recv(2) of up to DT_READ_AHEAD bytes serves both, and the
 * records behind them. */
#define DT_READ_AHEAD 32768

static ssize_t pull_nowait(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	dt_conn *c = ptr;
	if (c->ra_len == 0) {
		/* On failure errno is left as recv(2) set it, for GnuTLS's
		 * default errno function (gnutls_transport_set_errno() would
		 * race with a sender's use of the session's one slot). */
		ssize_t n = recv(c->fd, c->ra, DT_READ_AHEAD, MSG_DONTWAIT);
		if (n <= 0)
			return n;
		c->ra_start = 0;
		c->ra_len = (size_t)n;
	}
	if (len > c->ra_len)
		len = c->ra_len;
	memcpy(buf, c->ra + c->ra_start, len);
	c->ra_start += len;
	c->ra_len -= len;
	return (ssize_t)len;
}

/* A whole TLS record read ahead (so the next receive needs no wait).
 * GnuTLS pulls exactly the bytes of a header, then of a body, so unless it
 * is empty the read-ahead always starts at a record's header. */
static int ra_has_record(const dt_conn *c)
{
	if (c->ra_len < 5)
		return 0;
	const unsigned char *h = (const unsigned char *)c->ra + c->ra_start;
	return c->ra_len >= 5 + (((size_t)h[3] << 8) | h[4]);
}

/* After the handshake (which keeps GnuTLS's blocking pull and its own
 * handshake timeout): every later receive goes through pull_nowait, which
 * reads with the connection as its pointer; sends keep the socket. */
static int reader_setup(dt_conn *c, char *err, size_t errlen)
{
#if GNUTLS_VERSION_NUMBER >= 0x030703
	/* Kernel TLS reads the socket itself, past any pull function: then
	 * the transport must stay the descriptor, and nothing is read ahead. */
	if (gnutls_transport_is_ktls_enabled(c->s) & GNUTLS_KTLS_RECV)
		return 0;
#endif
	if (!(c->ra = malloc(DT_READ_AHEAD)))
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	gnutls_transport_set_ptr2(c->s, c, (gnutls_transport_ptr_t)(intptr_t)c->fd);
	gnutls_transport_set_pull_function(c->s, pull_nowait);
	return 0;
}

static int link_setup(const dt_link_opts *o, char *err, size_t errlen)
{
	if (!o->share_key || !o->share_key[0])
		return dt_err(err, errlen, DTASK_ECONFIG, "no \"share_key\" configured");
	return 0;
}

int dt_conn_connect(const dt_link_opts *o, const char *host, int port, dt_conn **out,
		    char *err, size_t errlen)
{
	int fd = -1, rc;
	dt_conn *c = NULL;
	int64_t deadline = dt_mono_ms() + o->handshake_timeout;

	if ((rc = link_setup(o, err, errlen)) < 0)
		return rc;
	if ((rc = dt_net_connect(host, port, o->handshake_timeout, &fd, err, errlen)) < 0)
		return rc;
	dt_net_tune(fd, o->send_timeout);
	if (!(c = conn_new(fd, o->max_message))) {
		close(fd);
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	}
	if ((rc = dt_tls_session_client(o->tls, fd, host, &c->s, err, errlen)) < 0)
		goto fail;
	if ((rc = dt_tls_handshake(c->s, o->handshake_timeout, err, errlen)) < 0)
		goto fail;
	if ((rc = reader_setup(c, err, errlen)) < 0)
		goto fail;
	if ((rc = dt_auth_run_client(c, c->s, o->share_key, deadline, err, errlen)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	conn_release(c);
	close(fd);
	return rc;
}

int dt_conn_accept(const dt_link_opts *o, int fd, dt_conn **out, char *err, size_t errlen)
{
	int rc;
	dt_conn *c;
	int64_t deadline = dt_mono_ms() + o->handshake_timeout;

	if ((rc = link_setup(o, err, errlen)) < 0)
		return rc;
	dt_net_tune(fd, o->send_timeout);
	if (!(c = conn_new(fd, o->max_message)))
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	if ((rc = dt_tls_session_server(o->tls, fd, &c->s, err, errlen)) < 0)
		goto fail;
	if ((rc = dt_tls_handshake(c->s, o->handshake_timeout, err, errlen)) < 0)
		goto fail;
	if ((rc = reader_setup(c, err, errlen)) < 0)
		goto fail;
	if ((rc = dt_auth_run_server(c, c->s, o->share_key, deadline, err, errlen)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	conn_release(c);
	return rc;
}

/* Under send_lock: push len bytes of sbuf-or-buf through TLS. */
static int send_locked(dt_conn *c, const char *buf, size_t len)
{
	size_t off = 0;
	if (c->send_dead || atomic_load(&c->down))
		return DTASK_ECLOSED;
	while (off < len) {
		ssize_t n = gnutls_record_send(c->s, buf + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		/* Interrupted: the same call again sends the record GnuTLS keeps. */
		if (n == GNUTLS_E_INTERRUPTED || n == 0)
			continue;
		c->send_dead = 1;
		shutdown(c->fd, SHUT_RDWR);
		if (n == GNUTLS_E_AGAIN) {
			/* SO_SNDTIMEO expired: the peer stopped reading. */
			log_warn("%s: send timed out, dropping the connection", dt_conn_name(c));
			return DTASK_ETIMEDOUT;
		}
		if (n == GNUTLS_E_PUSH_ERROR)
			return DTASK_ECLOSED;
		log_warn("%s: TLS send failed: %s (GnuTLS %d)", dt_conn_name(c),
			 gnutls_strerror((int)n), (int)n);
		return DTASK_ETLS;
	}
	return 0;
}

int dt_conn_send_raw(dt_conn *c, const char *buf, size_t len)
{
	pthread_mutex_lock(&c->send_lock);
	int rc = send_locked(c, buf, len);
	pthread_mutex_unlock(&c->send_lock);
	return rc;
}

int dt_conn_send(dt_conn *c, const char *msg, size_t len)
{
	if (len > c->max_message)
		return DTASK_ETOOBIG;
	int rc;
	pthread_mutex_lock(&c->send_lock);
	if (c->scap < len + 1) {
		size_t ncap = c->scap ? c->scap : 1024;
		while (ncap < len + 1)
			ncap *= 2;
		char *nb = realloc(c->sbuf, ncap);
		if (!nb) {
			pthread_mutex_unlock(&c->send_lock);
			return DTASK_ENOMEM;
		}
		c->sbuf = nb;
		c->scap = ncap;
	}
	memcpy(c->sbuf, msg, len);
	c->sbuf[len] = '\n';
	rc = send_locked(c, c->sbuf, len + 1);
	pthread_mutex_unlock(&c->send_lock);
	return rc;
}

int dt_conn_send_json(dt_conn *c, json_object *msg)
{
	size_t len;
	const char *s = json_object_to_json_string_length(
		msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s)
		return DTASK_ENOMEM;
	return dt_conn_send(c, s, len);
}

int dt_conn_send_error(dt_conn *c, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	json_object *m = json_object_new_object();
	if (!m)
		return DTASK_ENOMEM;
	json_object_object_add(m, "type", json_object_new_string("error"));
	json_object_object_add(m, "message", json_object_new_string(text));
	int rc = dt_conn_send_json(c, m);
	json_object_put(m);
	return rc;
}

/* What a failed gnutls_record_recv() (n <= 0, not AGAIN or INTERRUPTED)
 * means for the reader. */
static int recv_failed(dt_conn *c, ssize_t n)
{
	if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION || n == GNUTLS_E_PULL_ERROR ||
	    atomic_load(&c->down))
		return DTASK_ECLOSED;
	/* A real TLS failure (not a close): say which, it ends the link. */
	log_warn("%s: TLS receive failed: %s (GnuTLS %d)", dt_conn_name(c),
		 gnutls_strerror((int)n), (int)n);
	return DTASK_ETLS;
}

int dt_conn_recv(dt_conn *c, int timeout_ms, char **line, size_t *len)
{
	int64_t deadline = timeout_ms >= 0 ? dt_mono_ms() + timeout_ms : -1;
	for (;;) {
		int rc = dt_frame_next(&c->rx, line, len);
		if (rc == 1)
			return 0;
		if (rc < 0)
			return rc;
		if (atomic_load(&c->down))
			return DTASK_ECLOSED;
		if (c->rx_failed)
			return recv_failed(c, c->rx_err); /* met by dt_conn_pending() */
		char *p;
		size_t room;
		if ((rc = dt_frame_space(&c->rx, &p, &room)) < 0)
			return rc;
		/* Wait first unless TLS holds decrypted bytes or a whole record
		 * was read ahead: a read usually finds the socket drained, so
		 * poll + recv is one call fewer than recv (EAGAIN) + poll +
		 * recv. */
		if (gnutls_record_check_pending(c->s) == 0 && !ra_has_record(c)) {
			int wait = -1;
			if (deadline >= 0) {
				int64_t left = deadline - dt_mono_ms();
				if (left < 0)
					left = 0;
				wait = left > INT32_MAX ? INT32_MAX : (int)left;
			}
			struct pollfd pf = { .fd = c->fd, .events = POLLIN };
			int pr = poll(&pf, 1, wait);
			if (pr == 0)
				return DTASK_ETIMEDOUT;
			if (pr < 0) {
				if (errno == EINTR)
					continue;
				return DTASK_ECLOSED;
			}
		}
		ssize_t n = gnutls_record_recv(c->s, p, room);
		if (n > 0) {
			dt_frame_commit(&c->rx, (size_t)n);
			continue;
		}
		/* Interrupted, or half a record so far (kept for the next call). */
		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
			continue;
		return recv_failed(c, n);
	}
}

int dt_conn_recv_msg(dt_conn *c, int timeout_ms, json_object **msg, char *err, size_t errlen)
{
	char *line;
	size_t len;
	int rc = dt_conn_recv(c, timeout_ms, &line, &len);
	if (rc < 0)
		return rc;
	return dt_conn_parse_msg(c, line, len, msg, err, errlen);
}

int dt_conn_parse_msg(dt_conn *c, const char *line, size_t len, json_object **msg, char *err,
		      size_t errlen)
{
	if (!c->tok && !(c->tok = json_tokener_new()))
		return DTASK_ENOMEM;
	json_tokener *tok = c->tok;
	json_tokener_reset(tok);
	json_object *o = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		return dt_err(err, errlen, DTASK_EPROTO, "malformed JSON: %s",
			      jerr == json_tokener_continue ? "unexpected end of line"
							    : json_tokener_error_desc(jerr));
	}
	while (used < len && (line[used] == ' ' || line[used] == '\t'))
		used++;
	if (used != len) {
		json_object_put(o);
		return dt_err(err, errlen, DTASK_EPROTO, "malformed JSON: text after the object");
	}
	json_object *type;
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "type", &type) ||
	    !json_object_is_type(type, json_type_string)) {
		json_object_put(o);
		return dt_err(err, errlen, DTASK_EPROTO,
			      "a message must be a JSON object with a string \"type\"");
	}
	*msg = o;
	return 0;
}

static int line_buffered(const dt_conn *c)
{
	const char *s = c->rx.buf ? c->rx.buf + c->rx.start : NULL;
	size_t avail = c->rx.len - c->rx.start;
	return s && avail > 0 && memchr(s, '\n', avail) != NULL;
}

int dt_conn_pending(dt_conn *c)
{
	/* Decrypt what is here without waiting (TLS's buffered bytes, whole
	 * records read ahead) until a line is complete: a record may hold
	 * only part of one.  A failure is kept for dt_conn_recv() to report
	 * once the lines before it are read, and says 1 so that it runs. */
	while (!line_buffered(c)) {
		if (c->rx_failed)
			return 1;
		if (gnutls_record_check_pending(c->s) == 0 && !ra_has_record(c))
			return 0;
		char *p;
		size_t room;
		if (atomic_load(&c->down) || dt_frame_space(&c->rx, &p, &room) < 0)
			return 1;
		ssize_t n = gnutls_record_recv(c->s, p, room);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return 0;
		if (n <= 0) {
			c->rx_failed = 1;
			c->rx_err = n;
			return 1;
		}
		dt_frame_commit(&c->rx, (size_t)n);
	}
	return 1;
}

void dt_conn_shutdown(dt_conn *c)
{
	atomic_store(&c->down, 1);
	shutdown(c->fd, SHUT_RDWR);
}

void dt_conn_close(dt_conn *c)
{
	pthread_mutex_lock(&c->send_lock);
	if (!c->send_dead && !atomic_load(&c->down)) {
		int rc;
		do {
			rc = gnutls_bye(c->s, GNUTLS_SHUT_WR);
		} while (rc == GNUTLS_E_INTERRUPTED);
		shutdown(c->fd, SHUT_WR);
	}
	c->send_dead = 1;
	pthread_mutex_unlock(&c->send_lock);
}

void dt_conn_free(dt_conn *c)
{
	if (!c)
		return;
	int fd = c->fd;
	conn_release(c);
	close(fd);
}

const char *dt_conn_peer(const dt_conn *c)
{
	return c->peer;
}

int dt_conn_fd(const dt_conn *c)
{
	return c->fd;
}

void dt_conn_set_name(dt_conn *c, const char *name)
{
	snprintf(c->name, sizeof c->name, "%s", name ? name : "");
}

const char *dt_conn_name(const dt_conn *c)
{
	return c->name[0] ? c->name : c->peer;
}

const char *dt_conn_tls_version(const dt_conn *c)
{
	const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(c->s));
	return v ? v : "?";
}
