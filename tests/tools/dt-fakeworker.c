/*
 * dt-fakeworker - a protocol-level fake worker for the reject tests: a real
 * peer over TLS (conn.h) that takes no task.
 *
 *   dt-fakeworker -c CONFIG -H HOST -P PORT [-n NAME] [-F FUNCTIONS]
 *                 [-k SLOTS] [-r REASON] [-f LINES]
 *
 * Connects to the distributor at HOST:PORT (TLS and share_key from CONFIG),
 * sends "hello" (name NAME, default "fake"; functions from the comma list
 * FUNCTIONS, default "count"; capacity and free SLOTS, default 50; no
 * watcher listener), then:
 *   - sends "health" (free SLOTS, no tasks) every health_interval, and
 *     answers each "health" from the distributor with one;
 *   - answers EVERY "run" with "reject" (reason REASON: "full" (default),
 *     "unknown function" or "draining") and prints "rejected <id> <attempt>"
 *     on stdout, flushed, so a test can count them.  The reject carries
 *     free 0 for "full" and "draining" (true of a full or draining worker)
 *     and SLOTS otherwise; the next health says SLOTS again, so the
 *     distributor keeps offering it work and it keeps refusing;
 *   - ignores "stop" (it runs nothing) and logs an "error" message, which
 *     it also prints on stdout as "error: <message>", flushed;
 *   - with -f LINES, sends every line of the file LINES as is, once the
 *     distributor's hello has come (malformed ones too).
 * Runs until SIGTERM/SIGINT (exit 0).  Exits 3 when the connection fails
 * or the distributor closes it, 2 on a usage or configuration error.
 *
 * Threads: the main thread owns the connection (reads and sends); a signal
 * thread takes SIGTERM/SIGINT, sets `stopping` and shuts the connection
 * down to wake the reader.
 */
#include "build-config.h"

#include <errno.h>
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
#include "proto.h"
#include "tls.h"
#include "util.h"

static atomic_int stopping;
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static dt_conn *conn; /* under conn_lock for the signal thread */
static sigset_t sigs;

static void *signal_main(void *arg)
{
	(void)arg;
	int sig;
	sigwait(&sigs, &sig);
	atomic_store(&stopping, 1);
	pthread_mutex_lock(&conn_lock);
	if (conn)
		dt_conn_shutdown(conn);
	pthread_mutex_unlock(&conn_lock);
	return NULL;
}

static int send_health(dt_conn *c, int free_slots)
{
	char msg[128];
	int n = snprintf(msg, sizeof msg,
			 "{\"type\":\"health\",\"load\":0,\"free\":%d,\"tasks\":[]}", free_slots);
	return dt_conn_send(c, msg, (size_t)n);
}

static json_object *hello_msg(const char *name, const char *functions, int slots)
{
	json_object *m = json_object_new_object();
	json_object *fa = json_object_new_array();
	json_object_object_add(m, "type", json_object_new_string(DT_MSG_HELLO));
	json_object_object_add(m, "version", json_object_new_int(DT_PROTO_VERSION));
	json_object_object_add(m, "name", json_object_new_string(name));
	json_object_object_add(m, "host", json_object_new_string("127.0.0.1"));
	json_object_object_add(m, "port", json_object_new_int(0));
	json_object_object_add(m, "capacity", json_object_new_int(slots));
	json_object_object_add(m, "free", json_object_new_int(slots));
	const char *p = functions;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len)
			json_object_array_add(fa, json_object_new_string_len(p, (int)len));
		if (!e)
			break;
		p = e + 1;
	}
	json_object_object_add(m, "functions", fa);
	return m;
}

static const char *str_field(json_object *m, const char *key)
{
	json_object *v;
	if (json_object_object_get_ex(m, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *host = "127.0.0.1", *name = "fake", *functions = "count",
		   *reason = DT_REJECT_FULL, *lines = NULL;
	int port = 0, slots = 50, ch;
	while ((ch = getopt(argc, argv, "c:H:P:n:F:k:r:f:")) != -1) {
		switch (ch) {
		case 'f': lines = optarg; break;
		case 'c': config = optarg; break;
		case 'H': host = optarg; break;
		case 'P': port = atoi(optarg); break;
		case 'n': name = optarg; break;
		case 'F': functions = optarg; break;
		case 'k': slots = atoi(optarg); break;
		case 'r': reason = optarg; break;
		default:
			fprintf(stderr, "usage: dt-fakeworker -c CONFIG -H HOST -P PORT [-n NAME] "
					"[-F F1,F2] [-k SLOTS] [-r REASON] [-f LINES]\n");
			return 2;
		}
	}
	if (!config || port <= 0 || slots < 0) {
		fprintf(stderr, "dt-fakeworker: -c CONFIG and -P PORT are required\n");
		return 2;
	}
	int reject_free = (strcmp(reason, DT_REJECT_FULL) == 0 ||
			   strcmp(reason, DT_REJECT_DRAINING) == 0) ? 0 : slots;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	dt_log_init("dt-fakeworker", 0);

	char err[512];
	dt_config *cfg;
	if (dt_config_load(config, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "dt-fakeworker: %s\n", err);
		return 2;
	}
	dt_log_set_level(cfg->log_level);
	dt_tls *tls = dt_tls_new(cfg->cert, cfg->key, cfg->ca, cfg->insecure, cfg->path, err,
				 sizeof err);
	if (!tls) {
		fprintf(stderr, "dt-fakeworker: %s\n", err);
		dt_config_free(cfg);
		return 2;
	}
	dt_link_opts lo = {
		.tls = tls, .share_key = cfg->share_key, .max_message = cfg->max_message,
		.handshake_timeout = cfg->handshake_timeout, .send_timeout = cfg->send_timeout,
	};

	pthread_t sig_thread;
	if (pthread_create(&sig_thread, NULL, signal_main, NULL) != 0) {
		fprintf(stderr, "dt-fakeworker: cannot start the signal thread\n");
		return 2;
	}

	int status = 3;
	dt_conn *c = NULL;
	/* The distributor may still be starting: try for 10 s. */
	int64_t give_up = dt_mono_ms() + 10000;
	for (;;) {
		int rc = dt_conn_connect(&lo, host, port, &c, err, sizeof err);
		if (rc == 0)
			break;
		if (atomic_load(&stopping) || dt_mono_ms() > give_up) {
			log_error("cannot connect to %s:%d: %s", host, port, err);
			goto out;
		}
		dt_sleep_ms(200);
	}
	pthread_mutex_lock(&conn_lock);
	conn = c;
	pthread_mutex_unlock(&conn_lock);
	if (atomic_load(&stopping)) {
		status = 0;
		goto out;
	}
	log_info("connected to %s:%d (%s)", host, port, dt_conn_tls_version(c));

	json_object *hello = hello_msg(name, functions, slots);
	int rc = dt_conn_send_json(c, hello);
	json_object_put(hello);
	if (rc < 0) {
		log_error("cannot send hello: %s", dtask_strerror(rc));
		goto out;
	}

	int64_t next_health = dt_mono_ms() + cfg->health_interval;
	unsigned long rejected = 0;
	for (;;) {
		int64_t wait = next_health - dt_mono_ms();
		if (wait <= 0) {
			if (send_health(c, slots) < 0) {
				log_error("cannot send health");
				break;
			}
			next_health = dt_mono_ms() + cfg->health_interval;
			continue;
		}
		json_object *m = NULL;
		rc = dt_conn_recv_msg(c, (int)wait, &m, err, sizeof err);
		if (rc == DTASK_ETIMEDOUT)
			continue;
		if (rc == DTASK_EPROTO) {
			log_warn("bad message from the distributor: %s", err);
			continue;
		}
		if (rc < 0) {
			if (atomic_load(&stopping)) {
				status = 0;
			} else {
				log_error("connection lost: %s", dtask_strerror(rc));
			}
			break;
		}
		const char *type = str_field(m, "type");
		if (strcmp(type, DT_MSG_RUN) == 0) {
			const char *id = str_field(m, "id");
			json_object *a;
			long long attempt = 0;
			if (json_object_object_get_ex(m, "attempt", &a))
				attempt = (long long)json_object_get_int64(a);
			json_object *r = json_object_new_object();
			json_object_object_add(r, "type", json_object_new_string(DT_MSG_REJECT));
			json_object_object_add(r, "id", json_object_new_string(id ? id : ""));
			json_object_object_add(r, "attempt", json_object_new_int64(attempt));
			const char *fn = str_field(m, "function");
			json_object_object_add(r, "function", json_object_new_string(fn ? fn : ""));
			json_object_object_add(r, "reason", json_object_new_string(reason));
			json_object_object_add(r, "free", json_object_new_int(reject_free));
			rc = dt_conn_send_json(c, r);
			json_object_put(r);
			rejected++;
			printf("rejected %s %lld\n", id ? id : "(no id)", attempt);
			fflush(stdout);
			if (rc < 0) {
				json_object_put(m);
				log_error("cannot send reject: %s", dtask_strerror(rc));
				break;
			}
		} else if (strcmp(type, DT_MSG_HEALTH) == 0) {
			if (send_health(c, slots) < 0) {
				json_object_put(m);
				log_error("cannot answer health");
				break;
			}
		} else if (strcmp(type, DT_MSG_HELLO) == 0) {
			log_info("hello from distributor %s",
				 str_field(m, "name") ? str_field(m, "name") : "(no name)");
			FILE *f = lines ? fopen(lines, "r") : NULL;
			char buf[16384];
			while (f && rc == 0 && fgets(buf, sizeof buf, f))
				rc = dt_conn_send_raw(c, buf, strlen(buf));
			if (f)
				fclose(f);
			else if (lines)
				log_error("cannot read %s", lines);
			if (rc < 0) {
				json_object_put(m);
				log_error("cannot send the lines: %s", dtask_strerror(rc));
				break;
			}
		} else if (strcmp(type, DT_MSG_ERROR) == 0) {
			const char *msg = str_field(m, "message");
			log_warn("error from the distributor: %s", msg ? msg : "(none)");
			printf("error: %s\n", msg ? msg : "(none)");
			fflush(stdout);
		} else if (strcmp(type, DT_MSG_STOP) == 0) {
			log_info("stop %s: nothing runs here", str_field(m, "id"));
		} else {
			log_warn("unexpected message type %s", type);
		}
		json_object_put(m);
	}
	log_info("rejected %lu runs", rejected);

out:
	if (c) {
		pthread_mutex_lock(&conn_lock);
		conn = NULL;
		pthread_mutex_unlock(&conn_lock);
		if (status == 0)
			dt_conn_close(c);
		dt_conn_free(c);
	}
	pthread_cancel(sig_thread);
	pthread_join(sig_thread, NULL);
	dt_tls_free(tls);
	dt_config_free(cfg);
	return status;
}
