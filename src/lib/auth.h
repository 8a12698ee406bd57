/*
 * auth.h - the mutual share_key proof run right after the TLS handshake
 * (doc/PROTOCOL.md, "Authentication").
 *
 * Each side sends a fresh 32-byte nonce; each proves it holds the key with
 * HMAC-SHA256(share_key, label || exporter || nonce_client || nonce_server),
 * where exporter is 32 bytes of RFC 5705/8446 keying material of this TLS
 * session, so a proof is worthless in any other session.  The key never
 * crosses the wire; proofs are compared in constant time.
 */
#ifndef DT_AUTH_H
#define DT_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <gnutls/gnutls.h>

#define DT_AUTH_VERSION 1
#define DT_AUTH_NONCE_LEN 32
#define DT_AUTH_EXPORTER_LEN 32
#define DT_AUTH_MAC_LEN 32
#define DT_AUTH_EXPORTER_LABEL "EXPORTER-dtask-auth"
#define DT_AUTH_LABEL_CLIENT "dtask-auth-v1 client"
#define DT_AUTH_LABEL_SERVER "dtask-auth-v1 server"

enum dt_auth_role { DT_AUTH_CLIENT, DT_AUTH_SERVER };

/* Fresh random nonce. */
int dt_auth_nonce(unsigned char nonce[DT_AUTH_NONCE_LEN]);

/* The exporter value of a handshaken session. */
int dt_auth_exporter(gnutls_session_t s, unsigned char out[DT_AUTH_EXPORTER_LEN]);

/* The proof that `role` holds key, over this session's exporter and both
 * nonces. */
int dt_auth_proof(const char *key, size_t keylen, enum dt_auth_role role,
		  const unsigned char exporter[DT_AUTH_EXPORTER_LEN],
		  const unsigned char nonce_client[DT_AUTH_NONCE_LEN],
		  const unsigned char nonce_server[DT_AUTH_NONCE_LEN],
		  unsigned char mac[DT_AUTH_MAC_LEN]);

/* 1 when `got` (hex text from the peer) is the proof `role` should have
 * sent; constant-time in the compared bytes. */
int dt_auth_check(const char *key, size_t keylen, enum dt_auth_role role,
		  const unsigned char exporter[DT_AUTH_EXPORTER_LEN],
		  const unsigned char nonce_client[DT_AUTH_NONCE_LEN],
		  const unsigned char nonce_server[DT_AUTH_NONCE_LEN],
		  const char *got_hex);

/* The exchange itself (doc/PROTOCOL.md), run by conn.c on a freshly
 * handshaken connection before anything else is read or sent.  Bounded by
 * the monotonic deadline (dt_mono_ms() value).  DTASK_EAUTH when the peer
 * holds another key; the server tells the client so before returning. */
struct dt_conn;
int dt_auth_run_client(struct dt_conn *c, gnutls_session_t s, const char *key,
		       int64_t deadline, char *err, size_t errlen);
int dt_auth_run_server(struct dt_conn *c, gnutls_session_t s, const char *key,
		       int64_t deadline, char *err, size_t errlen);

#endif
