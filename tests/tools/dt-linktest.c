/*
 * dt-linktest - drives the peer link (server.c, conn.c) for the tests.
 *
 *   dt-linktest server -c CONFIG [-p PORTFILE]
 *       A TLS listener on the config's host/port.  Each authenticated peer
 *       is served on its own thread: "echo" is answered with "echo", a
 *       malformed line or an unknown type with "error" (the connection
 *       stays), an oversized line closes it.  Runs until SIGTERM/SIGINT.
 *   dt-linktest client -c CONFIG -P PORT [-H HOST] [-n N] [--raw LINE] [--big BYTES]
 *       N concurrent connections (threads), each proves the key, sends an
 *       echo and checks the answer, then waits until all N are connected
 *       before closing.  --raw sends LINE first and prints the answer;
 *       --big sends a line of BYTES bytes and reports how the server ends it.
 *       Exit 0 when every connection did what was asked, 3 otherwise.
 *   dt-linktest distributor -c CONFIG -p PORTFILE -f LINES
 *       A fake distributor for a real worker: a TLS listener as "server";
 *       each peer's first line (its hello) is printed as "hello: ...", it
 *       is answered with a distributor's hello, then every line of the
 *       file LINES is sent to it as is (malformed ones too) once the
 *       peer has Redis (after its "redis_up" when the hello said
 *       "redis_down"), and every line the peer sends after its hello
 *       but "health" is printed as "got: ...".  It sends "health"
 *       every health_interval, as a distributor does.  Runs until
 *       SIGTERM/SIGINT.
 *   dt-linktest silent -H HOST -P PORT [--tls -c CONFIG] -t MS
 *       Connects and never speaks (after the TLS handshake with --tls);
 *       prints how long the server took to drop it.  Exit 0 when it was
 *       the server that closed, within MS.
 */
#include "build-config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "conf.h"
#include "conn.h"
#include "dtask.h"
#include "log.h"
#include "net.h"
#include "server.h"
#include "tls.h"
#include "util.h"

static dt_config *cfg;
static dt_link_opts link_opts;

static int load(const char *path)
{
	char err[512];
	if (dt_config_load(path, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "dt-linktest: %s\n", err);
		return -1;
	}
	dt_log_set_level(cfg->log_level);
	dt_tls *tls = dt_tls_new(cfg->cert, cfg->key, cfg->ca, cfg->insecure, cfg->path, err,
				 sizeof err);
	if (!tls) {
		fprintf(stderr, "dt-linktest: %s\n", err);
		return -1;
	}
	link_opts.tls = tls;
	link_opts.share_key = cfg->share_key;
	link_opts.max_message = cfg->max_message;
	link_opts.handshake_timeout = cfg->handshake_timeout;
	link_opts.send_timeout = cfg->send_timeout;
	return 0;
}

static void unload(void)
{
	dt_tls_free(link_opts.tls);
	dt_config_free(cfg);
}

/* ------------------------------------------------------------ server */

static atomic_int served;

static void serve(dt_conn *c, void *arg)
{
	(void)arg;
	char err[256];
	atomic_fetch_add(&served, 1);
	log_info("peer %s authenticated (%s)", dt_conn_peer(c), dt_conn_tls_version(c));
	int idle = cfg->health_interval * cfg->health_misses;
	for (;;) {
		json_object *m = NULL;
		int rc = dt_conn_recv_msg(c, idle, &m, err, sizeof err);
		if (rc == DTASK_EPROTO) {
			log_warn("peer %s: %s", dt_conn_peer(c), err);
			dt_conn_send_error(c, "%s", err);
			continue;
		}
		if (rc == DTASK_ETOOBIG) {
			log_warn("peer %s: message larger than max_message (%zu bytes): closing",
				 dt_conn_peer(c), cfg->max_message);
			dt_conn_send_error(c, "message larger than max_message (%zu bytes)",
					   cfg->max_message);
			break;
		}
		if (rc == DTASK_ETIMEDOUT) {
			log_warn("peer %s: silent for %d ms: closing", dt_conn_peer(c), idle);
			break;
		}
		if (rc < 0) {
			log_debug("peer %s: %s", dt_conn_peer(c), dtask_strerror(rc));
			break;
		}
		const char *type = json_object_get_string(json_object_object_get(m, "type"));
		if (strcmp(type, "error") == 0) {
			/* Never answer an error with an error. */
			log_warn("peer %s sent an error", dt_conn_peer(c));
		} else if (strcmp(type, "echo") == 0) {
			log_info("echo from %s", dt_conn_peer(c));
			dt_conn_send_json(c, m);
		} else {
			log_warn("peer %s: unknown message type (%zu bytes)", dt_conn_peer(c),
				 strlen(type));
			dt_conn_send_error(c, "unknown message type \"%s\"", type);
		}
		json_object_put(m);
	}
	dt_conn_close(c);
}

/* ------------------------------------------------------- distributor */

static const char *d_lines; /* the file of lines sent after the hello */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void print_line(const char *what, const char *line)
{
	pthread_mutex_lock(&out_lock);
	printf("%s: %s\n", what, line);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* send_lines: every line of the file, exactly as it is. */
static int send_lines(dt_conn *c)
{
	FILE *f = fopen(d_lines, "r");
	if (!f) {
		log_error("cannot read %s", d_lines);
		return 0;
	}
	char buf[16384];
	int rc = 0;
	while (rc == 0 && fgets(buf, sizeof buf, f))
		rc = dt_conn_send_raw(c, buf, strlen(buf));
	fclose(f);
	return rc;
}

static void serve_worker(dt_conn *c, void *arg)
{
	(void)arg;
	char *line;
	size_t len;
	int rc = dt_conn_recv(c, 10000, &line, &len);
	if (rc < 0) {
		log_warn("peer %s: no hello: %s", dt_conn_peer(c), dtask_strerror(rc));
		dt_conn_close(c);
		return;
	}
	print_line("hello", line);
	/* As a distributor does (PROTOCOL.md, "redis_down"): no run to a
	 * worker that has not reached Redis yet, so the lines wait for its
	 * "redis_up". */
	int sent = strstr(line, "\"redis_down\":true") == NULL;
	static const char hello[] = "{\"type\":\"hello\",\"version\":1,\"name\":\"fake\"}";
	rc = dt_conn_send(c, hello, sizeof hello - 1);
	if (rc == 0 && sent)
		rc = send_lines(c);
	/* Health, as a distributor sends it: a worker drops a silent link. */
	static const char health[] = "{\"type\":\"health\"}";
	int64_t next_health = 0;
	while (rc == 0 || rc == DTASK_ETIMEDOUT) {
		int64_t now = dt_mono_ms();
		if (now >= next_health) {
			if (dt_conn_send(c, health, sizeof health - 1) < 0)
				break;
			next_health = now + cfg->health_interval;
		}
		rc = dt_conn_recv(c, (int)(next_health - now), &line, &len);
		if (rc == 0 && !strstr(line, "\"type\":\"health\""))
			print_line("got", line);
		if (rc == 0 && !sent && strstr(line, "\"type\":\"redis_up\"")) {
			sent = 1;
			rc = send_lines(c);
		}
	}
	log_info("peer %s: %s", dt_conn_peer(c), dtask_strerror(rc));
	dt_conn_close(c);
}

static int run_server(const char *portfile, dt_server_handler handler)
{
	char err[512];
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	dt_server_opts o = {
		.role = "linktest", .host = cfg->host, .port = cfg->port, .link = link_opts,
		.max_connections = cfg->max_connections, .handler = handler,
	};
	dt_server *s;
	if (dt_server_start(&o, &s, err, sizeof err) < 0) {
		log_error("%s", err);
		return 2;
	}
	log_info("listening on %s:%d", cfg->host, dt_server_port(s));
	if (portfile) {
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", dt_server_port(s)) < 0 || fclose(f) != 0 ||
		    rename(tmp, portfile) != 0) {
			log_error("cannot write %s", portfile);
			dt_server_free(s);
			return 2;
		}
	}
	int sig;
	sigwait(&set, &sig);
	log_info("signal %d: stopping", sig);
	dt_server_free(s);
	log_info("stopped after serving %d connections", atomic_load(&served));
	return 0;
}

/* ------------------------------------------------------------ client */

static const char *c_host = "localhost";
static int c_port;
static const char *c_raw;
static long c_big = -1;
static pthread_barrier_t all_connected;
static atomic_int c_failed;

static void *client_main(void *arg)
{
	long idx = (long)arg;
	char err[512];
	dt_conn *c;
	int rc = dt_conn_connect(&link_opts, c_host, c_port, &c, err, sizeof err);
	if (rc < 0) {
		printf("connection %ld: error %d (%s): %s\n", idx, rc, dtask_strerror(rc), err);
		atomic_fetch_add(&c_failed, 1);
		pthread_barrier_wait(&all_connected);
		return NULL;
	}
	char *line;
	size_t len;
	if (c_raw) {
		dt_conn_send(c, c_raw, strlen(c_raw));
		if (dt_conn_recv(c, 5000, &line, &len) == 0)
			printf("reply: %s\n", line);
		else
			printf("reply: none\n");
	}
	if (c_big >= 0) {
		char *big = malloc((size_t)c_big + 2);
		if (!big)
			return NULL;
		memset(big, 'x', (size_t)c_big);
		big[0] = '"';
		big[c_big - 1] = '"';
		big[c_big] = '\n';
		/* The server may close before all of it is sent: that is the point. */
		if (dt_conn_send_raw(c, big, (size_t)c_big + 1) < 0)
			printf("send: cut short by the server\n");
		free(big);
		while ((rc = dt_conn_recv(c, 5000, &line, &len)) == 0)
			printf("reply: %s\n", line);
		printf("then: %s\n", dtask_strerror(rc));
		if (rc != DTASK_ECLOSED)
			atomic_fetch_add(&c_failed, 1);
		dt_conn_free(c);
		pthread_barrier_wait(&all_connected);
		return NULL;
	}
	char msg[128];
	int n = snprintf(msg, sizeof msg, "{\"type\":\"echo\",\"n\":%ld}", idx);
	rc = dt_conn_send(c, msg, (size_t)n);
	if (rc == 0)
		rc = dt_conn_recv(c, 10000, &line, &len);
	if (rc == 0 && strcmp(line, msg) != 0) {
		printf("connection %ld: unexpected answer %s\n", idx, line);
		rc = DTASK_EPROTO;
	}
	if (rc < 0) {
		printf("connection %ld: echo failed: %s\n", idx, dtask_strerror(rc));
		atomic_fetch_add(&c_failed, 1);
	}
	/* Hold the connection until every other one is up: they overlap. */
	pthread_barrier_wait(&all_connected);
	dt_conn_close(c);
	dt_conn_free(c);
	return NULL;
}

static int run_client(int n)
{
	pthread_t *t = calloc((size_t)n, sizeof *t);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	pthread_barrier_init(&all_connected, NULL, (unsigned)n);
	for (long i = 0; i < n; i++)
		if (pthread_create(&t[i], &attr, client_main, (void *)i) != 0) {
			fprintf(stderr, "dt-linktest: cannot start thread %ld\n", i);
			return 2;
		}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	pthread_attr_destroy(&attr);
	pthread_barrier_destroy(&all_connected);
	free(t);
	int failed = atomic_load(&c_failed);
	printf("%d ok, %d failed\n", n - failed, failed);
	return failed ? 3 : 0;
}

/* ------------------------------------------------------------ silent */

static int run_silent(int tls, int limit_ms)
{
	char err[512];
	int fd;
	if (dt_net_connect(c_host, c_port, 5000, &fd, err, sizeof err) < 0) {
		fprintf(stderr, "dt-linktest: %s\n", err);
		return 2;
	}
	gnutls_session_t s = NULL;
	if (tls) {
		if (dt_tls_session_client(link_opts.tls, fd, c_host, &s, err, sizeof err) < 0 ||
		    dt_tls_handshake(s, 5000, err, sizeof err) < 0) {
			fprintf(stderr, "dt-linktest: %s\n", err);
			return 2;
		}
	}
	int64_t t0 = dt_mono_ms();
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int closed = 0;
	while (!closed && dt_mono_ms() - t0 < limit_ms) {
		if (poll(&p, 1, 100) > 0) {
			char buf[4096];
			ssize_t r = read(fd, buf, sizeof buf);
			if (r <= 0)
				closed = 1; /* TLS records (an error, close_notify) are skipped */
		}
	}
	int64_t took = dt_mono_ms() - t0;
	if (s)
		gnutls_deinit(s);
	close(fd);
	printf("%s after %lld ms\n", closed ? "dropped by the server" : "still open",
	       (long long)took);
	return closed ? 0 : 3;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *portfile = NULL;
	int n = 1, tls = 0, limit = 30000;
	static const struct option lo[] = {
		{"raw", required_argument, NULL, 'r'}, {"big", required_argument, NULL, 'b'},
		{"tls", no_argument, NULL, 's'}, {NULL, 0, NULL, 0},
	};
	if (argc < 2) {
		fprintf(stderr, "usage: dt-linktest server|client|distributor|silent [options]\n");
		return 2;
	}
	const char *mode = argv[1];
	optind = 2;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:p:H:P:n:t:f:", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'f': d_lines = optarg; break;
		case 'p': portfile = optarg; break;
		case 'H': c_host = optarg; break;
		case 'P': c_port = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 't': limit = atoi(optarg); break;
		case 'r': c_raw = optarg; break;
		case 'b': c_big = atol(optarg); break;
		case 's': tls = 1; break;
		default: return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	dt_log_init("dt-linktest", 0);
	if (config && load(config) < 0)
		return 2;
	int rc;
	if (strcmp(mode, "server") == 0 && config)
		rc = run_server(portfile, serve);
	else if (strcmp(mode, "distributor") == 0 && config && d_lines)
		rc = run_server(portfile, serve_worker);
	else if (strcmp(mode, "client") == 0 && config && n > 0)
		rc = run_client(n);
	else if (strcmp(mode, "silent") == 0 && (!tls || config))
		rc = run_silent(tls, limit);
	else {
		fprintf(stderr, "dt-linktest: bad arguments\n");
		rc = 2;
	}
	if (config)
		unload();
	return rc;
}
