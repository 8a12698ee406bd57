/*
 * error.c - dtask_strerror() and dtask_version() of the public API.
 */
#include "build-config.h"

#include "dtask.h"

const char *dtask_strerror(int code)
{
	switch (code) {
	case DTASK_OK: return "success";
	case DTASK_ENOMEM: return "out of memory";
	case DTASK_EINVAL: return "invalid argument";
	case DTASK_EIO: return "input/output error";
	case DTASK_ECONFIG: return "invalid configuration";
	case DTASK_ETLS: return "TLS error";
	case DTASK_ECERT: return "peer certificate not trusted";
	case DTASK_EAUTH: return "share_key authentication failed";
	case DTASK_EPROTO: return "protocol error";
	case DTASK_ETOOBIG: return "message larger than max_message";
	case DTASK_ETIMEDOUT: return "timed out";
	case DTASK_ECLOSED: return "connection closed";
	case DTASK_ECONNECT: return "could not connect";
	case DTASK_EREDIS: return "Redis error";
	case DTASK_EBUSY: return "limit reached";
	case DTASK_ESTOPPED: return "stopping";
	case DTASK_ENOTFOUND: return "no such task";
	case DTASK_ESTATE: return "not allowed in the task's state";
	default: return "unknown error";
	}
}

const char *dtask_version(void)
{
	return DTASK_VERSION_STRING;
}
