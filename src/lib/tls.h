/*
 * tls.h - GnuTLS credentials and sessions.
 *
 * A dt_tls holds the certificate credentials and the priority string, loaded
 * once and then shared read-only by every connection thread.  Each session
 * is owned by one dt_conn (conn.c).  Policy: TLS 1.2 minimum, 1.3 preferred;
 * a client verifies the server's chain against `ca` (or the pinned `cert`)
 * and its host name; "insecure" turns verification off and is logged.
 */
#ifndef DT_TLS_H
#define DT_TLS_H

#include <stddef.h>
#include <gnutls/gnutls.h>

typedef struct dt_tls dt_tls;

/* cert/key: the certificate chain and key this side presents as a server
 * (a client may give cert alone: it is then only trusted, as a pin).  ca: trust anchors for verifying a server
 * (NULL: trust cert itself).  cfgpath names the config file in messages. */
dt_tls *dt_tls_new(const char *cert, const char *key, const char *ca, int insecure,
		   const char *cfgpath, char *err, size_t errlen);
void dt_tls_free(dt_tls *t);
int dt_tls_can_serve(const dt_tls *t);

/* New session on a connected socket.  Client: host is checked against the
 * certificate (and sent as SNI when it is a name). */
int dt_tls_session_server(dt_tls *t, int fd, gnutls_session_t *out, char *err, size_t errlen);
int dt_tls_session_client(dt_tls *t, int fd, const char *host, gnutls_session_t *out,
			  char *err, size_t errlen);

/* Handshake bounded by timeout_ms.  DTASK_ECERT when the peer's certificate
 * failed verification (the message says why), DTASK_ETLS otherwise. */
int dt_tls_handshake(gnutls_session_t s, int timeout_ms, char *err, size_t errlen);

#endif
