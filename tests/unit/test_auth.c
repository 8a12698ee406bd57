/*
 * test_auth - the share_key proof (auth.c): known answers, constant checks,
 * session binding, and the whole exchange over real TLS on loopback.
 * Needs $top_srcdir/scripts/dtask-gencerts (and certtool) for certificates.
 */
#include "build-config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "conn.h"
#include "dtask.h"
#include "log.h"
#include "net.h"
#include "tap.h"
#include "tls.h"
#include "util.h"

#define PLAN 24

static char dir[256];
static dt_tls *tls;

/* ---- the server half of one exchange, on its own thread ---- */
struct srv {
	int lfd;
	const char *key;
	int timeout;
	int rc;
	char err[256];
	char line[256];
};

static void *server_main(void *arg)
{
	struct srv *s = arg;
	dt_link_opts o = { tls, s->key, 4096, s->timeout, 2000 };
	int fd = accept(s->lfd, NULL, NULL);
	dt_conn *c = NULL;
	s->rc = dt_conn_accept(&o, fd, &c, s->err, sizeof s->err);
	if (s->rc < 0) {
		close(fd);
		return NULL;
	}
	char *line;
	size_t len;
	if (dt_conn_recv(c, 2000, &line, &len) == 0)
		snprintf(s->line, sizeof s->line, "%s", line);
	dt_conn_free(c);
	return NULL;
}

/* One exchange: a client with ckey against a server with skey.  Returns the
 * client's code; the server's is in *srv. */
static int exchange(const char *ckey, const char *skey, struct srv *srv, char *cerr,
		    size_t cerrlen)
{
	char err[256];
	int port;
	memset(srv, 0, sizeof *srv);
	srv->key = skey;
	srv->timeout = 3000;
	int n, lfds[DT_NET_MAX_LISTEN];
	if (dt_net_listen("127.0.0.1", 0, 4, lfds, &n, &port, err, sizeof err) < 0) {
		tap_diag("listen: %s", err);
		return -999;
	}
	srv->lfd = lfds[0];
	pthread_t t;
	pthread_create(&t, NULL, server_main, srv);
	dt_link_opts o = { tls, ckey, 4096, 3000, 2000 };
	dt_conn *c = NULL;
	int rc = dt_conn_connect(&o, "localhost", port, &c, cerr, cerrlen);
	if (rc == 0) {
		dt_conn_send(c, "{\"type\":\"hello\"}", 16);
		dt_conn_free(c);
	}
	pthread_join(t, NULL);
	close(srv->lfd);
	return rc;
}

/* Handshake a raw TLS pair over a socketpair; returns both exporters. */
static int tls_pair(unsigned char ex_c[32], unsigned char ex_s[32])
{
	int sv[2];
	char err[256];
	gnutls_session_t cs, ss;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	if (dt_tls_session_client(tls, sv[0], "localhost", &cs, err, sizeof err) < 0 ||
	    dt_tls_session_server(tls, sv[1], &ss, err, sizeof err) < 0)
		return -1;
	/* Non-blocking interleaved handshake on one thread. */
	gnutls_handshake_set_timeout(cs, 0);
	gnutls_transport_set_int(cs, sv[0]);
	int rc_c = GNUTLS_E_AGAIN, rc_s = GNUTLS_E_AGAIN;
	struct timeval tv = { 0, 20000 };
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	for (int i = 0; i < 500 && (rc_c < 0 || rc_s < 0); i++) {
		if (rc_c < 0)
			rc_c = gnutls_handshake(cs);
		if (rc_s < 0)
			rc_s = gnutls_handshake(ss);
		if ((rc_c < 0 && gnutls_error_is_fatal(rc_c)) || (rc_s < 0 && gnutls_error_is_fatal(rc_s)))
			break;
	}
	int rc = (rc_c == 0 && rc_s == 0 && dt_auth_exporter(cs, ex_c) == 0 &&
		  dt_auth_exporter(ss, ex_s) == 0) ? 0 : -1;
	gnutls_deinit(cs);
	gnutls_deinit(ss);
	close(sv[0]);
	close(sv[1]);
	return rc;
}

int main(void)
{
	unsigned char ex[32], nc[32], ns[32], mac[32];
	char hex[65];
	tap_plan(PLAN);
	signal(SIGPIPE, SIG_IGN);
	dt_log_set_level(DT_LOG_ERR);

	/* Known answers, computed independently (Python hmac/hashlib). */
	for (int i = 0; i < 32; i++) {
		ex[i] = (unsigned char)i;
		nc[i] = (unsigned char)(0xa0 + i % 16);
		ns[i] = (unsigned char)(0x10 + i);
	}
	dt_auth_proof("abc", 3, DT_AUTH_CLIENT, ex, nc, ns, mac);
	dt_hex_encode(mac, 32, hex);
	is_str(hex, "d06a25b8d0f423e507ea07fb518c9798320201391f2efbba1cb427f9249cd83f",
	       "client proof known answer");
	dt_auth_proof("abc", 3, DT_AUTH_SERVER, ex, nc, ns, mac);
	dt_hex_encode(mac, 32, hex);
	is_str(hex, "c818a048f3aca9a9ed5034714218bfedd09ab133d11a001a62568e8a47563729",
	       "server proof known answer");
	ok(dt_auth_check("abc", 3, DT_AUTH_SERVER, ex, nc, ns, hex), "the right proof is accepted");
	ok(!dt_auth_check("abc", 3, DT_AUTH_CLIENT, ex, nc, ns, hex),
	   "a server proof is not a client proof (no reflection)");
	ok(!dt_auth_check("abd", 3, DT_AUTH_SERVER, ex, nc, ns, hex), "another key fails");
	ns[0] ^= 1;
	ok(!dt_auth_check("abc", 3, DT_AUTH_SERVER, ex, nc, ns, hex), "another nonce fails");
	ns[0] ^= 1;
	ex[31] ^= 1;
	ok(!dt_auth_check("abc", 3, DT_AUTH_SERVER, ex, nc, ns, hex),
	   "another session's exporter fails");
	ex[31] ^= 1;
	hex[63] = '\0';
	ok(!dt_auth_check("abc", 3, DT_AUTH_SERVER, ex, nc, ns, hex), "a truncated proof fails");
	ok(!dt_auth_check("abc", 3, DT_AUTH_SERVER, ex, nc, ns, NULL), "a missing proof fails");
	ok(!dt_auth_check("abc", 3, DT_AUTH_SERVER, ex, nc, ns, ""), "an empty proof fails");

	unsigned char n1[32], n2[32];
	dt_auth_nonce(n1);
	dt_auth_nonce(n2);
	ok(memcmp(n1, n2, 32) != 0, "nonces are fresh");

	/* Certificates for the TLS part. */
	const char *src = getenv("top_srcdir");
	snprintf(dir, sizeof dir, "%s/dt-auth-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!src || !mkdtemp(dir)) {
		tap_diag("top_srcdir not set or no temp dir: cannot make certificates");
		return tap_done(PLAN);
	}
	char cmd[1024], cert[512], key[512], ca[512], err[512];
	snprintf(cmd, sizeof cmd, "sh '%s/scripts/dtask-gencerts' '%s' >/dev/null", src, dir);
	ok(system(cmd) == 0, "dtask-gencerts made certificates");
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	tls = dt_tls_new(cert, key, ca, 0, "test", err, sizeof err);
	if (!ok(tls != NULL, "TLS credentials load"))
		tap_diag("%s", err);

	unsigned char a_c[32], a_s[32], b_c[32], b_s[32];
	ok(tls && tls_pair(a_c, a_s) == 0 && tls_pair(b_c, b_s) == 0, "two TLS sessions handshake");
	ok(memcmp(a_c, a_s, 32) == 0, "both ends of a session derive the same exporter");
	ok(memcmp(a_c, b_c, 32) != 0, "two sessions have different exporters");

	struct srv srv;
	char cerr[256] = "";
	int rc = exchange("abc", "abc", &srv, cerr, sizeof cerr);
	is_int(rc, 0, "same share_key: the client is accepted");
	is_int(srv.rc, 0, "same share_key: the server accepts");
	is_str(srv.line, "{\"type\":\"hello\"}", "and a message passes after the exchange");

	rc = exchange("wrong", "abc", &srv, cerr, sizeof cerr);
	is_int(rc, DTASK_EAUTH, "wrong share_key: the client gets EAUTH");
	like_str(cerr, "share_key", "with a message naming the share_key");
	is_int(srv.rc, DTASK_EAUTH, "the server refuses too");
	is_str(srv.line, "", "and no message passes");

	/* A client that completes TLS but never proves anything. */
	memset(&srv, 0, sizeof srv);
	srv.key = "abc";
	srv.timeout = 300;
	int port, nl, lfds[DT_NET_MAX_LISTEN];
	dt_net_listen("127.0.0.1", 0, 4, lfds, &nl, &port, err, sizeof err);
	srv.lfd = lfds[0];
	pthread_t t;
	pthread_create(&t, NULL, server_main, &srv);
	int fd;
	gnutls_session_t s;
	dt_net_connect("127.0.0.1", port, 1000, &fd, err, sizeof err);
	dt_tls_session_client(tls, fd, "127.0.0.1", &s, err, sizeof err);
	dt_tls_handshake(s, 2000, err, sizeof err);
	pthread_join(t, NULL);
	is_int(srv.rc, DTASK_ETIMEDOUT, "a silent client is dropped after handshake_timeout");
	gnutls_deinit(s);
	close(fd);
	close(srv.lfd);

	dt_tls_free(tls);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done(PLAN);
}
