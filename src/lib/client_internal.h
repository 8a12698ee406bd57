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

#endif
