/*
 * conn.h - one authenticated peer connection: socket + TLS session +
 * framing + the connection's own send lock.
 *
 * Threads: at most one reading thread (dt_conn_recv*) and any number of
 * sending threads; sends are serialized by the connection's send_lock and
 * bounded by the send timeout, so a stalled peer only stalls senders to
 * that peer.  dt_conn_shutdown() may be called from any thread to wake the
 * reader (it shuts the socket down).  dt_conn_free() is for the owner, once
 * no other thread uses the connection.
 *
 * Lock order: send_lock is a leaf lock; never take another lock while
 * holding it.
 */
#ifndef DT_CONN_H
#define DT_CONN_H

#include <stddef.h>
#include "tls.h"

struct json_object;
typedef struct dt_conn dt_conn;

typedef struct dt_link_opts {
	dt_tls *tls;
	const char *share_key;
	size_t max_message;
	int handshake_timeout; /* ms: TLS handshake and the share_key proof */
	int send_timeout;      /* ms: one send */
} dt_link_opts;

/* Connect to host:port, handshake, verify the certificate and prove the
 * share_key both ways.  DTASK_ECONNECT, DTASK_ETLS, DTASK_ECERT,
 * DTASK_EAUTH, DTASK_ETIMEDOUT ... with a message in err. */
int dt_conn_connect(const dt_link_opts *o, const char *host, int port, dt_conn **out,
		    char *err, size_t errlen);

/* Server side of an accepted socket: handshake and the share_key proof.
 * On success the connection owns fd; on failure the caller still does (and
 * closes it).  On an auth failure the peer is told with an "error" message. */
int dt_conn_accept(const dt_link_opts *o, int fd, dt_conn **out, char *err, size_t errlen);

/* Send one message (len bytes, no newline: one is added).  Under the send
 * lock; the whole line goes out or the connection is dead. */
int dt_conn_send(dt_conn *c, const char *msg, size_t len);
int dt_conn_send_json(dt_conn *c, struct json_object *msg);
/* Several lines in one send (each already ending in '\n'). */
int dt_conn_send_raw(dt_conn *c, const char *buf, size_t len);
/* {"type":"error","message":...} */
int dt_conn_send_error(dt_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Next line, waiting at most timeout_ms (< 0: forever).  *line stays valid
 * until the next receive or dt_conn_pending().  DTASK_ETIMEDOUT leaves the
 * connection usable; DTASK_ECLOSED, DTASK_ETOOBIG, DTASK_ETLS do not. */
int dt_conn_recv(dt_conn *c, int timeout_ms, char **line, size_t *len);

/* Next message as a JSON object that has a string "type".  A line that is
 * not such an object returns DTASK_EPROTO with the reason in err, and the
 * connection stays usable (the caller decides whether to answer "error"). */
int dt_conn_recv_msg(dt_conn *c, int timeout_ms, struct json_object **msg,
		     char *err, size_t errlen);
/* The same reading, of a line dt_conn_recv() gave (c lends its parser). */
int dt_conn_parse_msg(dt_conn *c, const char *line, size_t len, struct json_object **msg,
		      char *err, size_t errlen);

/* 1 when the next dt_conn_recv() will not wait: a whole line is buffered
 * or can be decrypted from what TLS holds and what was read ahead (or the
 * connection failed: the next receive says how).  Reader only: it may
 * decrypt.  Lets a reader batch its answers. */
int dt_conn_pending(dt_conn *c);

/* Wake the reader and fail every later I/O; any thread. */
void dt_conn_shutdown(dt_conn *c);
/* Send TLS close_notify (bounded by the send timeout) and shut down writes. */
void dt_conn_close(dt_conn *c);
void dt_conn_free(dt_conn *c);

/* "ip:port" of the peer, for logs. */
const char *dt_conn_peer(const dt_conn *c);
int dt_conn_fd(const dt_conn *c);
/* The negotiated protocol, e.g. "TLS1.3", for logs and tests. */
const char *dt_conn_tls_version(const dt_conn *c);
/* Set by the owner after "hello", before any other thread sees the
 * connection; used in logs ("worker host:123"). */
void dt_conn_set_name(dt_conn *c, const char *name);
const char *dt_conn_name(const dt_conn *c);

#endif
