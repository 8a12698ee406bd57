/*
 * net.h - plain TCP sockets: listen, connect with a timeout, addresses.
 * No state; safe from any thread.
 */
#ifndef DT_NET_H
#define DT_NET_H

#include <stddef.h>

#define DT_NET_MAX_LISTEN 8

/* Listen on host:port: every address host resolves to ("localhost" is
 * 127.0.0.1 and ::1), all on one port; host NULL, "" or "*" = every
 * address of the machine; port 0 = any free port (the same one on each
 * address).  Sets fds[0..*nfds) and the port really bound in *bound_port. */
int dt_net_listen(const char *host, int port, int backlog, int fds[DT_NET_MAX_LISTEN],
		  int *nfds, int *bound_port, char *err, size_t errlen);

/* Connect to host:port, trying each resolved address, each attempt bounded
 * by timeout_ms.  The returned socket is blocking, close-on-exec, TCP_NODELAY. */
int dt_net_connect(const char *host, int port, int timeout_ms, int *fd,
		   char *err, size_t errlen);

/* "ip:port" ("[ip6]:port") of the peer of fd, into buf. */
void dt_net_peer_name(int fd, char *buf, size_t len);

/* Socket options used on every peer socket: TCP_NODELAY, keepalive, and the
 * send timeout (SO_SNDTIMEO) in ms. */
void dt_net_tune(int fd, int send_timeout_ms);

/* 1 when s is an IPv4 or IPv6 literal. */
int dt_net_is_ip(const char *s);

#endif
