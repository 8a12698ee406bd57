/*
 * net.c - plain TCP: listen, connect with a timeout, peer names, socket
 * tuning.  No state; called from the accept thread, connection threads and
 * worker link threads alike.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dtask.h"
#include "net.h"
#include "util.h"

int dt_net_is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static int wildcard(const char *host)
{
	return host == NULL || host[0] == '\0' || strcmp(host, "*") == 0;
}

static int bound_port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

static void set_port(struct sockaddr *sa, int port)
{
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}

/* One listening socket on ai (with its port replaced by port if > 0). */
static int listen_one(struct addrinfo *ai, int port, int dual, int backlog, int *fd_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return errno;
	int one = 1, v6only = dual ? 0 : 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	if (port > 0)
		set_port(ai->ai_addr, port);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
		int e = errno;
		close(fd);
		return e;
	}
	*fd_out = fd;
	return 0;
}

int dt_net_listen(const char *host, int port, int backlog, int fds[DT_NET_MAX_LISTEN],
		  int *nfds, int *bound_port, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char service[16];
	int rc, saved = EADDRNOTAVAIL;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof service, "%d", port);
	/* Every address: one dual-stack IPv6 socket, or IPv4 without IPv6. */
	const char *name = wildcard(host) ? NULL : host;
	if (!name)
		hints.ai_family = AF_INET6;
	rc = getaddrinfo(name, service, &hints, &res);
	if (rc != 0 && !name) {
		hints.ai_family = AF_INET;
		rc = getaddrinfo(NULL, service, &hints, &res);
	}
	if (rc != 0)
		return dt_err(err, errlen, DTASK_EIO, "cannot resolve listen address %s:%d: %s",
			      name ? name : "*", port, gai_strerror(rc));
	/* With port 0 the first socket picks the port and the others must get
	 * the same one; if another program holds it there, start over. */
	for (int attempt = 0; attempt < 10; attempt++) {
		int n = 0, got = port;
		saved = EADDRNOTAVAIL;
		for (struct addrinfo *ai = res; ai && n < DT_NET_MAX_LISTEN; ai = ai->ai_next) {
			int fd = -1, e = listen_one(ai, got, !name, backlog, &fd);
			if (e) {
				saved = e;
				if (n > 0 && port == 0 && e == EADDRINUSE)
					break; /* the chosen port is taken there: retry */
				continue;
			}
			if (n == 0)
				got = bound_port_of(fd);
			fds[n++] = fd;
		}
		int complete = saved != EADDRINUSE || port != 0 || n == 0;
		if (n > 0 && complete) {
			freeaddrinfo(res);
			*nfds = n;
			*bound_port = got;
			return 0;
		}
		while (n > 0)
			close(fds[--n]);
		if (port != 0 || saved != EADDRINUSE)
			break;
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
			set_port(ai->ai_addr, 0);
	}
	freeaddrinfo(res);
	return dt_err(err, errlen, DTASK_EIO, "cannot listen on %s:%d: %s", name ? name : "*", port,
		      strerror(saved));
}

/* One non-blocking connect attempt bounded by timeout_ms; 0 or an errno. */
static int connect_one(const struct addrinfo *ai, int timeout_ms, int *fd_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return errno;
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	int e = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			e = errno;
		} else {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int64_t end = dt_mono_ms() + timeout_ms;
			int r;
			for (;;) {
				int64_t left = end - dt_mono_ms();
				r = poll(&p, 1, left > 0 ? (int)left : 0);
				if (r < 0 && errno == EINTR)
					continue;
				break;
			}
			if (r == 0) {
				e = ETIMEDOUT;
			} else if (r < 0) {
				e = errno;
			} else {
				socklen_t l = sizeof e;
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0)
					e = errno;
			}
		}
	}
	if (e) {
		close(fd);
		return e;
	}
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	*fd_out = fd;
	return 0;
}

int dt_net_connect(const char *host, int port, int timeout_ms, int *fd_out,
		   char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char service[16];
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	snprintf(service, sizeof service, "%d", port);
	int rc = getaddrinfo(host, service, &hints, &res);
	if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY) {
		hints.ai_flags &= ~AI_ADDRCONFIG; /* loopback-only hosts */
		rc = getaddrinfo(host, service, &hints, &res);
	}
	if (rc != 0)
		return dt_err(err, errlen, DTASK_ECONNECT, "cannot resolve %s: %s", host,
			      gai_strerror(rc));
	int e = ENOENT;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		e = connect_one(ai, timeout_ms, fd_out);
		if (e == 0)
			break;
	}
	freeaddrinfo(res);
	if (e)
		return dt_err(err, errlen, DTASK_ECONNECT, "cannot connect to %s:%d: %s", host,
			      port, strerror(e));
	return 0;
}

void dt_net_tune(int fd, int send_timeout_ms)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	if (send_timeout_ms > 0) {
		struct timeval tv = { send_timeout_ms / 1000, (send_timeout_ms % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
}

void dt_net_peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
			port = ntohs(a->sin6_port);
			if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
				inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
				snprintf(buf, len, "%s:%d", ip, port);
				return;
			}
			snprintf(buf, len, "[%s]:%d", ip, port);
			return;
		}
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
			port = ntohs(a->sin_port);
		}
	}
	snprintf(buf, len, "%s:%d", ip, port);
}
