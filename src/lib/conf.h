/*
 * conf.h - the JSON configuration file (SPEC section 8).
 *
 * One file serves every role on a host.  The loader checks every known
 * field's type and range, warns about unknown ones, fills defaults and
 * resolves relative paths against the file's folder.  Errors name the file,
 * the field and what was expected.  A loaded dt_config is read-only: any
 * thread may read its plain fields without a lock.  Not its `json` tree:
 * json-c caches serializations inside objects and its reference counts are
 * not atomic, so only the thread that loaded it touches `json`.
 * The loader does not apply log_level; the program calls dt_log_set_level().
 */
#ifndef DT_CONF_H
#define DT_CONF_H

#include <stddef.h>

struct json_object;

typedef struct dt_endpoint {
	char *host;
	int port;
} dt_endpoint;

typedef struct dt_redis_conf {
	char *host;     /* "localhost" */
	int port;       /* 6379 */
	char *user;     /* NULL: no ACL user (AUTH password only) */
	char *password; /* NULL: no AUTH */
	int db;         /* 0 */
	char *prefix;   /* "" : prepended to every key */
} dt_redis_conf;

typedef struct dt_config {
	char *path;      /* the file as given, for messages */
	char *dir;       /* its folder, absolute */

	char *share_key; /* NULL when absent (roles that need it say so) */
	char *key;       /* absolute paths, or NULL when absent */
	char *cert;
	char *ca;        /* NULL: trust cert (a pinned self-signed certificate) */
	int insecure;    /* tests only: no certificate verification, logged */

	dt_redis_conf redis;

	char *host;      /* where a distributor listens: "localhost" */
	int port;        /* 5000; 0 = any free port */
	dt_endpoint *distributors; /* what a worker connects to: [["localhost",5000]] */
	size_t n_distributors;

	char *name;      /* NULL: the role picks <hostname>:<pid> or <hostname>:<port> */
	char *watch_host;/* NULL: publish the host name, bind all addresses */
	int watch_port;  /* 0 = any free port */
	char **exec_allow; /* absolute program paths the exec function may run */
	size_t n_exec_allow;
	int threads;     /* task slots; 0 = number of CPUs */

	/* Intervals and timeouts, all in milliseconds. */
	int loop_interval;        /* 1000 */
	int check_all_interval;   /* 15000 */
	int health_interval;      /* 2000 */
	int health_misses;        /* 3 (a count) */
	int task_timeout;         /* 10000 */
	int down_clear_interval;  /* 60000 */
	int distributor_timeout;  /* 3 x check_all_interval */
	int stop_grace;           /* 10000 */
	int handshake_timeout;    /* 10000: TLS handshake + share_key proof */
	int send_timeout;         /* 5000: one send to a stalled peer */

	size_t max_message;       /* 1048576 bytes */
	int max_connections;      /* 1024 peers per listener */
	int log_level;            /* DT_LOG_INFO; "log_level": "debug" etc. */

	struct json_object *json; /* the parsed file (its "app" object is the
	                           * embedding program's own, never warned about) */
} dt_config;

/* Load and check path.  On failure returns DTASK_ECONFIG (or DTASK_ENOMEM)
 * with a one-line message in err naming the file and field. */
int dt_config_load(const char *path, dt_config **out, char *err, size_t errlen);

/* A configuration holding only the defaults (no file). */
dt_config *dt_config_new_default(void);

void dt_config_free(dt_config *c);

#endif
