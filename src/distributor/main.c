/*
 * main.c - dtask-distributor: start, run until SIGTERM/SIGINT, stop.
 *
 * DESIGN
 *   The main thread loads the configuration, blocks the signals before any
 *   thread starts (so every thread inherits the mask), daemonizes, starts
 *   the listener (server.c: accept thread + a thread per worker, link.c),
 *   registers distributor-<name> in Redis (the name is unique: refused
 *   while another live distributor holds it), starts the queue, health and
 *   sweep threads, then waits for signals: SIGHUP reopens the log,
 *   SIGTERM/SIGINT stop.
 *   Stop: no new tasks are taken (the queue thread ends after its batch and
 *   returns any item still in flight); the worker links are closed, and
 *   their tasks are left to the workers, which stop them when they lose us
 *   (another distributor requeues those); the sweep thread writes its last
 *   jobs; the record is marked DOWN.  Every thread is joined.
 */
#include "build-config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "distributor.h"
#include "dtask.h"
#include "log.h"
#include "store.h"
#include "util.h"

static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg, const char *what)
{
	int rc = pthread_create(t, NULL, fn, arg);
	if (rc)
		log_error("cannot start the %s thread: %s", what, strerror(rc));
	return rc;
}

/* Register distributor-<name>, retrying while Redis is unreachable; gives
 * up at once when the name is taken, or on SIGTERM/SIGINT. */
static int register_self(dist *d)
{
	dt_store *st = NULL;
	char err[512];
	int said = 0, rc;
	if (dt_store_new(&d->cfg->redis, &st, err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	const char *host = d->cfg->host ? d->cfg->host : "localhost";
	for (;;) {
		rc = dt_store_register_distributor(st, d->name, host, d->port,
						   d->cfg->distributor_timeout, err, sizeof err);
		if (rc == 0 || rc == DTASK_EBUSY)
			break;
		if (!said++)
			log_error("cannot register in Redis: %s (retrying every second)", err);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		struct timespec one = { 1, 0 };
		if (sigtimedwait(&set, NULL, &one) > 0) {
			rc = DTASK_ESTOPPED;
			break;
		}
	}
	if (rc == DTASK_EBUSY)
		log_error("%s: set a unique \"name\" in %s", err, d->cfg->path);
	dt_store_free(st);
	return rc;
}

static void stop_all(dist *d)
{
	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	pthread_cond_broadcast(&d->slots);
	pthread_cond_broadcast(&d->hcond);
	pthread_mutex_unlock(&d->lock);
	if (d->queue_started)
		pthread_join(d->queue_tid, NULL);
	if (d->health_started)
		pthread_join(d->health_tid, NULL);
	/* Closing the links may post last jobs: the sweep thread stops after. */
	dt_server_stop(d->server);
	if (d->sweep_started) {
		dt_sweep_stop(d);
		pthread_join(d->sweep_tid, NULL);
	}
}

int main(int argc, char **argv)
{
	dt_daemon_opts opts;
	dist D, *d = &D;
	char err[512];
	int status = 1;

	memset(d, 0, sizeof *d);
	int a = dt_daemon_args(argc, argv, "dtask-distributor",
			       "hands tasks from the Redis queue to connected workers", &opts);
	if (a)
		return a == 1 ? 0 : 2;
	if (dt_config_load(opts.config, &d->cfg, err, sizeof err) < 0) {
		fprintf(stderr, "dtask-distributor: %s\n", err);
		return 2;
	}
	dt_log_set_level(d->cfg->log_level);
	if (!d->cfg->cert || !d->cfg->key) {
		fprintf(stderr, "dtask-distributor: %s: fields \"cert\" and \"key\" are required: a distributor serves TLS\n",
			d->cfg->path);
		dt_config_free(d->cfg);
		return 2;
	}
	if (!d->cfg->share_key) {
		fprintf(stderr, "dtask-distributor: %s: field \"share_key\" is required\n", d->cfg->path);
		dt_config_free(d->cfg);
		return 2;
	}
	d->tls = dt_tls_new(d->cfg->cert, d->cfg->key, d->cfg->ca, d->cfg->insecure, d->cfg->path,
			    err, sizeof err);
	if (!d->tls) {
		fprintf(stderr, "dtask-distributor: %s\n", err);
		dt_config_free(d->cfg);
		return 2;
	}

	dt_signals_block();
	if (dt_daemon_start(&opts, "dtask-distributor", err, sizeof err) < 0) {
		fprintf(stderr, "dtask-distributor: %s\n", err);
		goto out_tls;
	}
	dt_mutex_init_hot(&d->lock);
	dt_cond_init_monotonic(&d->slots);
	dt_cond_init_monotonic(&d->hcond);
	pthread_cond_init(&d->unref, NULL);
	pthread_mutex_init(&d->jlock, NULL);
	dt_cond_init_monotonic(&d->jcond);
	d->jtail = &d->jobs;

	dt_server_opts so = {
		.role = "distributor", .host = d->cfg->host, .port = d->cfg->port,
		.link = { d->tls, d->cfg->share_key, d->cfg->max_message, d->cfg->handshake_timeout,
			  d->cfg->send_timeout },
		.max_connections = d->cfg->max_connections, .handler = dt_link_serve, .arg = d,
	};
	if (dt_server_start(&so, &d->server, err, sizeof err) < 0) {
		log_error("%s", err);
		dt_daemon_fail(err);
		goto out;
	}
	d->port = dt_server_port(d->server);
	if (d->cfg->name) {
		snprintf(d->name, sizeof d->name, "%s", d->cfg->name);
	} else {
		char host[200];
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		snprintf(d->name, sizeof d->name, "%s:%d", host, d->port);
	}
	log_notice("distributor %s listening on %s:%d", d->name,
		   d->cfg->host ? d->cfg->host : "*", d->port);

	int rc = register_self(d);
	if (rc < 0) {
		if (rc != DTASK_ESTOPPED)
			dt_daemon_fail("cannot register the distributor in Redis (see the log)");
		status = rc == DTASK_ESTOPPED ? 0 : 1;
		goto out;
	}
	if (start_thread(&d->sweep_tid, dt_sweep_main, d, "sweep") == 0)
		d->sweep_started = 1;
	if (start_thread(&d->queue_tid, dt_queue_main, d, "queue") == 0)
		d->queue_started = 1;
	if (start_thread(&d->health_tid, dt_health_main, d, "health") == 0)
		d->health_started = 1;
	if (!d->sweep_started || !d->queue_started || !d->health_started) {
		dt_daemon_fail("cannot start threads");
		goto out;
	}
	dt_daemon_ready();

	for (;;) {
		int sig = dt_signals_wait();
		if (sig == SIGHUP) {
			dt_log_reopen();
			log_info("SIGHUP: log reopened");
			continue;
		}
		log_notice("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	status = 0;
out:
	stop_all(d);
	if (d->sweep_started || d->queue_started) {
		dt_store *st = NULL;
		if (dt_store_new(&d->cfg->redis, &st, err, sizeof err) == 0) {
			int64_t cnt = 0;
			if (dt_store_return_inflight(st, d->name, &cnt, err, sizeof err) == 0 && cnt)
				log_notice("returned %lld in-flight item(s) to new-task", (long long)cnt);
			if (dt_store_distributor_down(st, d->name, err, sizeof err) < 0)
				log_warn("cannot mark distributor-%s DOWN: %s", d->name, err);
		}
		dt_store_free(st);
	}
	dt_server_free(d->server);
	dt_daemon_stop(&opts);
	pthread_cond_destroy(&d->slots);
	pthread_cond_destroy(&d->hcond);
	pthread_cond_destroy(&d->unref);
	pthread_cond_destroy(&d->jcond);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->jlock);
	log_notice("distributor %s stopped", d->name);
out_tls:
	dt_tls_free(d->tls);
	dt_config_free(d->cfg);
	return status;
}
