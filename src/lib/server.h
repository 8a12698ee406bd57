/*
 * server.h - a TLS listener serving each connection on its own thread.
 *
 * Threads: one accept thread (owned and joined by dt_server_stop) and one
 * thread per connection (owned by the server: finished ones are joined by
 * the accept thread, live ones by dt_server_stop).  A connection thread runs
 * the TLS handshake and the share_key proof, then the role's handler, then
 * frees the connection.  The number of live connections is capped; EMFILE
 * is survived by dropping the newest connection.
 *
 * Lock order: server->lock, then (never while holding it) a connection's
 * send_lock.  The handler runs with no server lock held.
 */
#ifndef DT_SERVER_H
#define DT_SERVER_H

#include <stddef.h>
#include "conn.h"

typedef struct dt_server dt_server;
typedef void (*dt_server_handler)(dt_conn *c, void *arg);

typedef struct dt_server_opts {
	const char *role;          /* "distributor", "watcher listener": in logs */
	const char *host;          /* NULL/""/"*": every address */
	int port;                  /* 0: any free port */
	dt_link_opts link;
	int max_connections;
	size_t stack_size;         /* per connection thread; 0: 256 KiB */
	dt_server_handler handler; /* runs on the connection's thread */
	void *arg;
} dt_server_opts;

/* Bind, listen and start the accept thread. */
int dt_server_start(const dt_server_opts *o, dt_server **out, char *err, size_t errlen);
/* The port really bound. */
int dt_server_port(const dt_server *s);
/* Connections being served now. */
int dt_server_count(dt_server *s);
/* Stop accepting, shut every connection down, join every thread. */
void dt_server_stop(dt_server *s);
void dt_server_free(dt_server *s);

#endif
