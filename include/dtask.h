/*
 * dtask.h - the public API of distributed-task (libdtask).
 *
 * Link with: cc prog.c $(pkg-config --cflags --libs dtask)
 *
 * Error convention: functions that can fail return 0 on success and a
 * negative DTASK_E* code on failure; dtask_strerror() turns a code into a
 * sentence.  Functions that build an object return NULL on failure and, where
 * they take a "char **errmsg", store there a malloc'd message the caller
 * frees with free().
 */
#ifndef DTASK_H
#define DTASK_H

#ifdef __cplusplus
extern "C" {
#endif

#define DTASK_VERSION_MAJOR 0
#define DTASK_VERSION_MINOR 1
#define DTASK_VERSION_PATCH 0
#define DTASK_VERSION_STRING "0.1.0"
/* One number that grows with every release: 0xMMmmpp. */
#define DTASK_VERSION_NUMBER \
	((DTASK_VERSION_MAJOR << 16) | (DTASK_VERSION_MINOR << 8) | DTASK_VERSION_PATCH)

/* Error codes.  0 is success; every failure is negative. */
enum dtask_error {
	DTASK_OK = 0,
	DTASK_ENOMEM = -1,    /* out of memory */
	DTASK_EINVAL = -2,    /* invalid argument */
	DTASK_EIO = -3,       /* system call failed (see errno in the log) */
	DTASK_ECONFIG = -4,   /* the configuration file is invalid */
	DTASK_ETLS = -5,      /* TLS handshake or record layer failed */
	DTASK_ECERT = -6,     /* peer certificate not trusted or wrong name */
	DTASK_EAUTH = -7,     /* share_key proof failed */
	DTASK_EPROTO = -8,    /* the peer broke the protocol */
	DTASK_ETOOBIG = -9,   /* a message exceeded max_message */
	DTASK_ETIMEDOUT = -10,/* the peer stayed silent too long */
	DTASK_ECLOSED = -11,  /* the peer closed the connection */
	DTASK_ECONNECT = -12, /* could not connect */
	DTASK_EREDIS = -13,   /* Redis failed or is unreachable */
	DTASK_EBUSY = -14,    /* a limit was reached (connections, slots) */
	DTASK_ESTOPPED = -15  /* the object is stopping */
};

/* A sentence for a DTASK_E* code ("unknown error" for anything else).
 * The string is static; never free it. */
const char *dtask_strerror(int code);

/* The library's version as linked at run time (compare DTASK_VERSION_STRING). */
const char *dtask_version(void);

#ifdef __cplusplus
}
#endif

#endif /* DTASK_H */
