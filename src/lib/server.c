/*
 * server.c - the TLS listener: an accept thread and a thread per
 * connection (see server.h).
 *
 * DESIGN
 *   accept thread: poll(listen fd, wake pipe) -> accept4 -> check the cap ->
 *     start a connection thread; joins connection threads that finished.
 *   connection thread: TLS handshake + share_key proof (bounded by
 *     handshake_timeout) -> the role's handler -> free the connection ->
 *     move its slot to the "done" list and wake the accept thread.
 *   dt_server_stop (the owner's thread): sets stopping, shuts down every
 *     live socket, joins the accept thread, waits for every connection
 *     thread and joins it.
 *   A slot's fd is only closed after it is set to -1 under s->lock, so the
 *   stop path never shuts down a reused descriptor.
 *
 * Locks: s->lock guards the slot lists, counts and stopping.  It is never
 * held across I/O, a handshake or the handler.  Order: s->lock before a
 * connection's send_lock (dt_conn_shutdown takes no lock at all).
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dtask.h"
#include "log.h"
#include "net.h"
#include "server.h"
#include "util.h"

#define DEFAULT_STACK (512 * 1024)

typedef struct slot {
	struct dt_server *srv;
	pthread_t tid;
	int fd;           /* under srv->lock; -1 once closed or owned by conn */
	dt_conn *conn;    /* under srv->lock; set while the handler runs */
	char peer[64];
	struct slot *next, *prev;
} slot;

struct dt_server {
	dt_server_opts o;
	char *role;
	int lfd[DT_NET_MAX_LISTEN];
	int nlfd;
	int port;
	int wake[2];
	int reserve_fd;   /* a spare descriptor, given up to survive EMFILE */
	pthread_t accept_tid;
	int accept_started;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int stopping;
	int nlive;
	slot *live;
	slot *done;
	int64_t last_cap_log;
};

static void list_remove(slot **head, slot *sl)
{
	if (sl->prev)
		sl->prev->next = sl->next;
	else
		*head = sl->next;
	if (sl->next)
		sl->next->prev = sl->prev;
	sl->next = sl->prev = NULL;
}

static void list_push(slot **head, slot *sl)
{
	sl->prev = NULL;
	sl->next = *head;
	if (*head)
		(*head)->prev = sl;
	*head = sl;
}

static void wake_accept(dt_server *s)
{
	char b = 1;
	ssize_t w = write(s->wake[1], &b, 1);
	(void)w; /* a full pipe already wakes it */
}

static void *conn_main(void *arg)
{
	slot *sl = arg;
	dt_server *s = sl->srv;
	dt_conn *c = NULL;
	char err[256];

	int rc = dt_conn_accept(&s->o.link, sl->fd, &c, err, sizeof err);
	if (rc < 0) {
		if (rc == DTASK_EAUTH || rc == DTASK_ECERT)
			log_warn("%s: peer %s refused: %s", s->role, sl->peer, err);
		else
			log_info("%s: peer %s dropped before it was authenticated: %s", s->role,
				 sl->peer, err);
		pthread_mutex_lock(&s->lock);
		int fd = sl->fd;
		sl->fd = -1;
		pthread_mutex_unlock(&s->lock);
		close(fd);
	} else {
		log_debug("%s: peer %s authenticated (%s)", s->role, sl->peer,
			  dt_conn_tls_version(c));
		pthread_mutex_lock(&s->lock);
		sl->conn = c;
		if (s->stopping)
			dt_conn_shutdown(c);
		pthread_mutex_unlock(&s->lock);

		s->o.handler(c, s->o.arg);

		pthread_mutex_lock(&s->lock);
		sl->conn = NULL;
		sl->fd = -1;
		pthread_mutex_unlock(&s->lock);
		dt_conn_free(c);
	}
	pthread_mutex_lock(&s->lock);
	list_remove(&s->live, sl);
	list_push(&s->done, sl);
	s->nlive--;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	wake_accept(s);
	return NULL;
}

/* Join the connection threads that finished.  Accept thread or stop path. */
static void reap(dt_server *s)
{
	pthread_mutex_lock(&s->lock);
	slot *d = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	while (d) {
		slot *next = d->next;
		pthread_join(d->tid, NULL);
		free(d);
		d = next;
	}
}

static void start_conn(dt_server *s, int fd)
{
	slot *sl = calloc(1, sizeof *sl);
	if (!sl) {
		log_error("%s: out of memory for a new connection", s->role);
		close(fd);
		return;
	}
	sl->srv = s;
	sl->fd = fd;
	dt_net_peer_name(fd, sl->peer, sizeof sl->peer);

	pthread_mutex_lock(&s->lock);
	if (s->nlive >= s->o.max_connections) {
		pthread_mutex_unlock(&s->lock);
		int64_t now = dt_mono_ms();
		if (now - s->last_cap_log > 1000) {
			s->last_cap_log = now;
			log_warn("%s: %d connections already (max_connections): refusing %s",
				 s->role, s->o.max_connections, sl->peer);
		}
		close(fd);
		free(sl);
		return;
	}
	list_push(&s->live, sl);
	s->nlive++;

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, s->o.stack_size ? s->o.stack_size : DEFAULT_STACK);
	int rc = pthread_create(&sl->tid, &attr, conn_main, sl);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		list_remove(&s->live, sl);
		s->nlive--;
		pthread_mutex_unlock(&s->lock);
		log_error("%s: cannot start a thread for %s: %s", s->role, sl->peer, strerror(rc));
		close(fd);
		free(sl);
		return;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Out of descriptors: accept with the spare one and close at once, so the
 * peer sees a close rather than a hang, then take the spare back. */
static void shed_one(dt_server *s, int lfd)
{
	if (s->reserve_fd >= 0) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
	}
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int64_t now = dt_mono_ms();
	if (now - s->last_cap_log > 1000) {
		s->last_cap_log = now;
		log_error("%s: out of file descriptors: refusing connections", s->role);
	}
}

static void *accept_main(void *arg)
{
	dt_server *s = arg;
	struct pollfd p[DT_NET_MAX_LISTEN + 1];
	int n = s->nlfd;
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = s->lfd[i], .events = POLLIN };
	p[n] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };

	for (;;) {
		int r = poll(p, (nfds_t)n + 1, 1000);
		reap(s);
		pthread_mutex_lock(&s->lock);
		int stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stopping)
			break;
		if (r < 0 && errno != EINTR) {
			log_error("%s: poll: %s", s->role, strerror(errno));
			dt_sleep_ms(100);
			continue;
		}
		if (p[n].revents & POLLIN) {
			char buf[64];
			while (read(s->wake[0], buf, sizeof buf) > 0)
				;
		}
		for (int l = 0; l < n; l++) {
			if (!(p[l].revents & POLLIN))
				continue;
			for (int i = 0; i < 64; i++) {
				int fd = accept4(s->lfd[l], NULL, NULL, SOCK_CLOEXEC);
				if (fd >= 0) {
					start_conn(s, fd);
					continue;
				}
				if (errno == EMFILE || errno == ENFILE)
					shed_one(s, s->lfd[l]);
				else if (errno == ENOBUFS || errno == ENOMEM)
					dt_sleep_ms(50);
				else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
					 errno != ECONNABORTED)
					log_warn("%s: accept: %s", s->role, strerror(errno));
				break;
			}
		}
	}
	return NULL;
}

int dt_server_start(const dt_server_opts *o, dt_server **out, char *err, size_t errlen)
{
	dt_server *s = calloc(1, sizeof *s);
	int rc;
	if (!s)
		return dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
	s->o = *o;
	s->nlfd = 0;
	s->wake[0] = s->wake[1] = -1;
	s->reserve_fd = -1;
	s->o.host = NULL; /* not kept: only used to bind */
	if (s->o.max_connections <= 0)
		s->o.max_connections = 1024;
	s->role = strdup(o->role ? o->role : "server");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->changed, NULL);
	if (!s->role) {
		rc = dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		goto fail;
	}
	if (!dt_tls_can_serve(o->link.tls)) {
		rc = dt_err(err, errlen, DTASK_ECONFIG,
			    "%s: no \"cert\" and \"key\" configured: cannot serve TLS", s->role);
		goto fail;
	}
	if ((rc = dt_net_listen(o->host, o->port, 128, s->lfd, &s->nlfd, &s->port, err,
				errlen)) < 0)
		goto fail;
	for (int i = 0; i < s->nlfd; i++)
		fcntl(s->lfd[i], F_SETFL, fcntl(s->lfd[i], F_GETFL) | O_NONBLOCK);
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = dt_err(err, errlen, DTASK_EIO, "pipe: %s", strerror(errno));
		goto fail;
	}
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((rc = pthread_create(&s->accept_tid, NULL, accept_main, s)) != 0) {
		rc = dt_err(err, errlen, DTASK_EIO, "cannot start the accept thread: %s", strerror(rc));
		goto fail;
	}
	s->accept_started = 1;
	*out = s;
	return 0;
fail:
	dt_server_free(s);
	return rc;
}

int dt_server_port(const dt_server *s)
{
	return s->port;
}

int dt_server_count(dt_server *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->nlive;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void dt_server_stop(dt_server *s)
{
	if (!s || !s->accept_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	for (slot *sl = s->live; sl; sl = sl->next) {
		if (sl->conn)
			dt_conn_shutdown(sl->conn);
		else if (sl->fd >= 0)
			shutdown(sl->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&s->lock);
	wake_accept(s);
	pthread_join(s->accept_tid, NULL);
	s->accept_started = 0;

	pthread_mutex_lock(&s->lock);
	while (s->nlive > 0)
		pthread_cond_wait(&s->changed, &s->lock);
	pthread_mutex_unlock(&s->lock);
	reap(s);
}

void dt_server_free(dt_server *s)
{
	if (!s)
		return;
	dt_server_stop(s);
	for (int i = 0; i < s->nlfd; i++)
		close(s->lfd[i]);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	free(s->role);
	free(s);
}
