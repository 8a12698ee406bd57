/*
 * client_internal.h - the dtask_client behind the public client API, for
 * the files that implement it (client.c: submit and inspect;
 * client_watch.c: dtask_watch).
 *
 * Threads: a client is used by one thread at a time (dtask.h).
 */
#ifndef DT_CLIENT_INTERNAL_H
#define DT_CLIENT_INTERNAL_H

#include "conf.h"
#include "store.h"

struct dtask_client {
	dt_config *conf;
	dt_store *store;
	char err[1024];
};

/* Record a failure: code with a message for dtask_client_error(); returns
 * code. */
int dt_client_fail(struct dtask_client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
