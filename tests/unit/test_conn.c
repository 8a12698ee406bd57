/*
 * test_conn - the receive side of a peer connection (src/lib/conn.c) over a
 * real TLS link on loopback, with a relay in the middle that can hold a
 * record back half-sent.  Run by tests/integration/conn.sh, which makes the
 * certificates and names their folder in DT_TLS_DIR.
 *
 * What it proves: a receive deadline that expires in the middle of a TLS
 * record leaves the connection in step (the rest of the record is read by
 * the next call and the line arrives whole), records read ahead from the
 * socket in one go are each seen as pending and arrive in order (also when
 * the read-ahead cuts records in two), and a reader waiting forever is
 * woken by dt_conn_shutdown().
 */
#include "build-config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "dtask.h"
#include "log.h"
#include "net.h"
#include "tap.h"
#include "tls.h"
#include "util.h"

#define PLAN 17
#define HEAD 7 /* bytes of a held record let through: header + 2 */

static dt_link_opts opts;
static int listen_port;

/* The relay: client <-> relay <-> server.  When hold is set, the next chunk
 * from the client goes through as HEAD bytes, then the rest only once the
 * server's reader has timed out twice more (timeouts). */
static int relay_client = -1, relay_server = -1;
static atomic_int hold, held, timeouts, relay_stop;

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void *relay(void *arg)
{
	(void)arg;
	static char buf[65536];
	struct pollfd pf[2] = { { .fd = relay_client, .events = POLLIN },
				{ .fd = relay_server, .events = POLLIN } };
	while (!atomic_load(&relay_stop)) {
		if (poll(pf, 2, 100) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(pf[i].fd, buf, sizeof buf);
			if (n <= 0)
				return NULL;
			int to = i == 0 ? relay_server : relay_client;
			if (i == 0 && atomic_load(&hold) && n > HEAD) {
				atomic_store(&hold, 0);
				if (write_all(to, buf, HEAD) < 0)
					return NULL;
				/* Two more deadlines: at least one whole one passed
				 * with the half record there to read. */
				int seen = atomic_load(&timeouts);
				while (atomic_load(&timeouts) < seen + 2 && !atomic_load(&relay_stop))
					usleep(1000);
				atomic_store(&held, 1);
				if (write_all(to, buf + HEAD, (size_t)n - HEAD) < 0)
					return NULL;
			} else if (write_all(to, buf, (size_t)n) < 0) {
				return NULL;
			}
		}
	}
	return NULL;
}

struct client {
	dt_conn *c;
	int rc;
	char err[256];
};

static void *client_connect(void *arg)
{
	struct client *cl = arg;
	cl->rc = dt_conn_connect(&opts, "127.0.0.1", listen_port, &cl->c, cl->err,
				 sizeof cl->err);
	return NULL;
}

/* Receive one line within 10 s, with a deadline every timeout_ms; counts
 * the deadlines that pass on the way. */
static int recv_counting(dt_conn *c, int timeout_ms, char **line, size_t *len, int *ntimeouts)
{
	for (int i = 0; i < 10000 / timeout_ms; i++) {
		int rc = dt_conn_recv(c, timeout_ms, line, len);
		if (rc != DTASK_ETIMEDOUT)
			return rc;
		atomic_fetch_add(&timeouts, 1);
		(*ntimeouts)++;
	}
	return DTASK_ETIMEDOUT;
}

/* Sends n lines of 1,000 bytes, "i" counting from 0; ok = all sent. */
struct sender {
	dt_conn *c;
	int n, ok;
};

static void *send_records(void *arg)
{
	struct sender *sd = arg;
	char rec[1001];
	sd->ok = 1;
	for (int i = 0; i < sd->n && sd->ok; i++) {
		int k = snprintf(rec, sizeof rec, "{\"type\":\"n\",\"i\":%d,\"pad\":\"", i);
		memset(rec + k, 'a' + i % 26, 1000 - (size_t)k - 2);
		memcpy(rec + 998, "\"}", 2);
		sd->ok = dt_conn_send(sd->c, rec, 1000) == 0;
	}
	return NULL;
}

static void *shutdown_later(void *arg)
{
	usleep(100 * 1000);
	dt_conn_shutdown(arg);
	return NULL;
}

int main(void)
{
	char err[512], path[3][1024];
	const char *dir = getenv("DT_TLS_DIR");
	dt_log_set_level(DT_LOG_WARN);
	tap_plan(PLAN);
	if (!dir) {
		printf("Bail out! DT_TLS_DIR is not set (run by tests/integration/conn.sh)\n");
		return 1;
	}
	snprintf(path[0], sizeof path[0], "%s/cert.pem", dir);
	snprintf(path[1], sizeof path[1], "%s/key.pem", dir);
	snprintf(path[2], sizeof path[2], "%s/ca.pem", dir);
	opts.tls = dt_tls_new(path[0], path[1], path[2], 0, "test", err, sizeof err);
	if (!opts.tls) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	opts.share_key = "abc";
	opts.max_message = 1 << 20;
	opts.handshake_timeout = 10000;
	opts.send_timeout = 10000;

	/* client -> listener (the relay's client side); relay <-> server over a
	 * socket pair, the server end of which dt_conn_accept() takes. */
	int lfd[DT_NET_MAX_LISTEN], nl = 0;
	if (dt_net_listen("127.0.0.1", 0, 4, lfd, &nl, &listen_port, err, sizeof err) < 0 ||
	    nl < 1) {
		printf("Bail out! listen: %s\n", err);
		return 1;
	}
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) {
		printf("Bail out! socketpair: %s\n", strerror(errno));
		return 1;
	}
	struct client cl = { 0 };
	pthread_t ct, rt;
	pthread_create(&ct, NULL, client_connect, &cl);
	relay_client = accept(lfd[0], NULL, NULL);
	relay_server = sp[0];
	pthread_create(&rt, NULL, relay, NULL);
	dt_conn *srv = NULL;
	int rc = dt_conn_accept(&opts, sp[1], &srv, err, sizeof err);
	pthread_join(ct, NULL);
	ok(rc == 0, "the server side handshakes and proves the key through the relay (%s)",
	   rc == 0 ? "ok" : err);
	ok(cl.rc == 0, "so does the client side (%s)", cl.rc == 0 ? "ok" : cl.err);
	if (rc != 0 || cl.rc != 0) {
		printf("Bail out! no link\n");
		return 1;
	}

	/* 1. Nothing to read: the deadline passes and the link stays. */
	char *line = NULL;
	size_t len = 0;
	int64_t t0 = dt_mono_ms();
	rc = dt_conn_recv(srv, 50, &line, &len);
	int64_t took = dt_mono_ms() - t0;
	is_int(rc, DTASK_ETIMEDOUT, "nothing sent: the receive times out");
	ok(took >= 45, "after its deadline (%lld ms for 50)", (long long)took);

	/* 2. One record held half-sent across a deadline. */
	size_t big = 3000;
	char *msg = malloc(big + 1);
	memset(msg, 'x', big);
	memcpy(msg, "{\"type\":\"echo\",\"pad\":\"", 22);
	memcpy(msg + big - 2, "\"}", 2);
	msg[big] = '\0';
	atomic_store(&hold, 1);
	rc = dt_conn_send(cl.c, msg, big);
	is_int(rc, 0, "the client sends a %zu-byte line", big);
	int nt = 0;
	rc = recv_counting(srv, 20, &line, &len, &nt);
	is_int(rc, 0, "the server gets a line although its deadline passed mid-record");
	ok(atomic_load(&held) && nt >= 2, "the record was held across %d deadline(s)", nt);
	ok(rc == 0 && len == big && memcmp(line, msg, big) == 0, "the line arrives whole (%zu bytes)",
	   rc == 0 ? len : 0);

	/* 3. The stream is still in step: the next line decrypts. */
	rc = dt_conn_send(cl.c, "{\"type\":\"echo\",\"n\":2}", 21);
	nt = 0;
	rc = rc ? rc : recv_counting(srv, 1000, &line, &len, &nt);
	ok(rc == 0 && len == 21 && memcmp(line, "{\"type\":\"echo\",\"n\":2}", 21) == 0,
	   "the next line arrives in step (rc %d)", rc);
	/* ... both ways. */
	rc = dt_conn_send(srv, "{\"type\":\"echo\",\"n\":3}", 21);
	rc = rc ? rc : dt_conn_recv(cl.c, 5000, &line, &len);
	ok(rc == 0 && len == 21, "and the server's answer reaches the client (rc %d)", rc);

	/* 4. Three records in the socket at once: one read takes them all,
	 * and the ones behind the first are pending (no wait needed). */
	static const char *const three[] = { "{\"type\":\"a\"}", "{\"type\":\"b\"}",
					     "{\"type\":\"c\"}" };
	for (int i = 0; i < 3; i++)
		dt_conn_send(cl.c, three[i], strlen(three[i]));
	/* Wait until the relay has put all 3 into the server's socket: a
	 * TLS 1.3 record of a line is 5 + line + newline + type byte + 16
	 * bytes of tag (TLS 1.2 spends more), so 3 are at least this much
	 * and 2 are less. */
	int inq = 0, least = 0;
	for (int i = 0; i < 3; i++)
		least += 5 + (int)strlen(three[i]) + 1 + 1 + 16;
	for (int i = 0; i < 2000 && inq < least; i++) {
		if (ioctl(sp[1], FIONREAD, &inq) < 0)
			break;
		if (inq < least)
			dt_sleep_ms(5);
	}
	int pend[3] = { -1, -1, -1 }, inorder = 1;
	for (int i = 0; i < 3; i++) {
		rc = dt_conn_recv(srv, i == 0 ? 5000 : 0, &line, &len);
		inorder = inorder && rc == 0 && len == strlen(three[i]) &&
			  memcmp(line, three[i], len) == 0;
		pend[i] = dt_conn_pending(srv);
	}
	ok(inorder, "3 records sent at once (%d bytes waiting) arrive in order, the last 2 "
	   "without a wait", inq);
	ok(pend[0] == 1 && pend[1] == 1, "after the 1st and the 2nd, the next is pending (%d %d)",
	   pend[0], pend[1]);
	is_int(pend[2], 0, "after the 3rd nothing is");

	/* 5. Many records of 1,000 bytes: the read-ahead cuts some in two.
	 * Sent from a thread while this one reads, so no buffer size
	 * matters. */
	int got_ok = 1;
	struct sender sd = { .c = cl.c, .n = 100 };
	pthread_t sdt;
	pthread_create(&sdt, NULL, send_records, &sd);
	for (int i = 0; i < 100 && got_ok; i++) {
		char want[32];
		int k = snprintf(want, sizeof want, "{\"type\":\"n\",\"i\":%d,", i);
		rc = dt_conn_recv(srv, 10000, &line, &len);
		got_ok = rc == 0 && len == 1000 && memcmp(line, want, (size_t)k) == 0 &&
			 line[500] == 'a' + i % 26;
	}
	pthread_join(sdt, NULL);
	int sent_ok = sd.ok;
	ok(sent_ok, "100 records of 1,000 bytes sent");
	ok(got_ok, "all arrive whole and in order");

	/* 6. A reader waiting forever is woken by dt_conn_shutdown(). */
	pthread_t st;
	pthread_create(&st, NULL, shutdown_later, srv);
	t0 = dt_mono_ms();
	rc = dt_conn_recv(srv, -1, &line, &len);
	took = dt_mono_ms() - t0;
	pthread_join(st, NULL);
	is_int(rc, DTASK_ECLOSED, "a reader with no deadline is woken by a shutdown");
	ok(took < 5000, "at once (%lld ms)", (long long)took);

	atomic_store(&relay_stop, 1);
	shutdown(relay_client, SHUT_RDWR);
	pthread_join(rt, NULL);
	dt_conn_free(srv);
	dt_conn_free(cl.c);
	close(relay_client);
	close(sp[0]);
	for (int i = 0; i < nl; i++)
		close(lfd[i]);
	dt_tls_free(opts.tls);
	free(msg);
	return tap_done(PLAN);
}
