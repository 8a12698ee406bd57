/*
 * auth.c - the mutual share_key proof (see auth.h and doc/PROTOCOL.md).
 *
 * Runs on the thread that owns a connection, before the connection is
 * handed to anyone else, so it needs no lock of its own.
 *
 *   client -> {"type":"auth","version":1,"nonce":NC}
 *   server -> {"type":"auth","version":1,"nonce":NS}
 *   client -> {"type":"auth_proof","proof":PC}
 *   server -> {"type":"auth_ok","proof":PS}           (after checking PC)
 *   the client then checks PS.
 *
 * The client proves first: it has verified the server's certificate, so
 * only a trusted server ever sees a proof it could guess keys against; a
 * stranger who merely completes TLS learns nothing.
 *
 * PS = HMAC-SHA256(key, "dtask-auth-v1 server" || E || NC || NS)
 * PC = HMAC-SHA256(key, "dtask-auth-v1 client" || E || NC || NS)
 * E  = 32 bytes exported from this TLS session (RFC 5705 / RFC 8446 7.5).
 */
#include "build-config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <gnutls/crypto.h>
#include <json-c/json.h>

#include "auth.h"
#include "conn.h"
#include "dtask.h"
#include "util.h"

#define HEXLEN(n) (2 * (n) + 1)

int dt_auth_nonce(unsigned char nonce[DT_AUTH_NONCE_LEN])
{
	return gnutls_rnd(GNUTLS_RND_NONCE, nonce, DT_AUTH_NONCE_LEN) < 0 ? DTASK_ETLS : 0;
}

int dt_auth_exporter(gnutls_session_t s, unsigned char out[DT_AUTH_EXPORTER_LEN])
{
	static const char ctx[] = "dtask";
	int rc = gnutls_prf_rfc5705(s, sizeof DT_AUTH_EXPORTER_LABEL - 1, DT_AUTH_EXPORTER_LABEL,
				    sizeof ctx - 1, ctx, DT_AUTH_EXPORTER_LEN, (char *)out);
	return rc < 0 ? DTASK_ETLS : 0;
}

int dt_auth_proof(const char *key, size_t keylen, enum dt_auth_role role,
		  const unsigned char exporter[DT_AUTH_EXPORTER_LEN],
		  const unsigned char nonce_client[DT_AUTH_NONCE_LEN],
		  const unsigned char nonce_server[DT_AUTH_NONCE_LEN],
		  unsigned char mac[DT_AUTH_MAC_LEN])
{
	const char *label = role == DT_AUTH_SERVER ? DT_AUTH_LABEL_SERVER : DT_AUTH_LABEL_CLIENT;
	size_t ll = strlen(label);
	unsigned char msg[64 + DT_AUTH_EXPORTER_LEN + 2 * DT_AUTH_NONCE_LEN];
	size_t n = 0;
	memcpy(msg + n, label, ll);
	n += ll;
	memcpy(msg + n, exporter, DT_AUTH_EXPORTER_LEN);
	n += DT_AUTH_EXPORTER_LEN;
	memcpy(msg + n, nonce_client, DT_AUTH_NONCE_LEN);
	n += DT_AUTH_NONCE_LEN;
	memcpy(msg + n, nonce_server, DT_AUTH_NONCE_LEN);
	n += DT_AUTH_NONCE_LEN;
	int rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen, msg, n, mac);
	return rc < 0 ? DTASK_ETLS : 0;
}

int dt_auth_check(const char *key, size_t keylen, enum dt_auth_role role,
		  const unsigned char exporter[DT_AUTH_EXPORTER_LEN],
		  const unsigned char nonce_client[DT_AUTH_NONCE_LEN],
		  const unsigned char nonce_server[DT_AUTH_NONCE_LEN], const char *got_hex)
{
	unsigned char want[DT_AUTH_MAC_LEN], got[DT_AUTH_MAC_LEN];
	if (!got_hex || strlen(got_hex) != 2 * DT_AUTH_MAC_LEN ||
	    dt_hex_decode(got_hex, got, DT_AUTH_MAC_LEN) != 0)
		return 0;
	if (dt_auth_proof(key, keylen, role, exporter, nonce_client, nonce_server, want) != 0)
		return 0;
	return dt_ct_equal(want, got, DT_AUTH_MAC_LEN);
}

/* Wait for the next message of the exchange.  An "error" from the peer is
 * DTASK_EAUTH with its text, and *peer_refused is set so that we do not
 * answer an error with an error. */
static int recv_step(dt_conn *c, int64_t deadline, const char *want_type, json_object **out,
		     int *peer_refused, char *err, size_t errlen)
{
	int64_t left = deadline - dt_mono_ms();
	if (left <= 0)
		return dt_err(err, errlen, DTASK_ETIMEDOUT, "no share_key proof in time");
	char why[160];
	json_object *m = NULL;
	int rc = dt_conn_recv_msg(c, (int)left, &m, why, sizeof why);
	if (rc == DTASK_ETIMEDOUT)
		return dt_err(err, errlen, rc, "no share_key proof in time");
	if (rc == DTASK_EPROTO)
		return dt_err(err, errlen, rc, "bad message during authentication: %s", why);
	if (rc < 0)
		return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
	const char *type = json_object_get_string(json_object_object_get(m, "type"));
	if (strcmp(type, "error") == 0) {
		const char *msg = json_object_get_string(json_object_object_get(m, "message"));
		dt_err(err, errlen, DTASK_EAUTH, "the peer refused the exchange: %s",
		       msg ? msg : "no reason given");
		json_object_put(m);
		*peer_refused = 1;
		return DTASK_EAUTH;
	}
	if (strcmp(type, want_type) != 0) {
		dt_err(err, errlen, DTASK_EPROTO,
		       "expected a \"%s\" message during authentication, got \"%s\"", want_type, type);
		json_object_put(m);
		return DTASK_EPROTO;
	}
	*out = m;
	return 0;
}

static const char *str_field(json_object *m, const char *name)
{
	json_object *v;
	if (!json_object_object_get_ex(m, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The peer's version 1 "auth" message and its nonce. */
static int get_hello(json_object *m, unsigned char nonce[DT_AUTH_NONCE_LEN])
{
	json_object *v;
	const char *hex = str_field(m, "nonce");
	if (!json_object_object_get_ex(m, "version", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != DT_AUTH_VERSION)
		return -1;
	return hex && strlen(hex) == 2 * DT_AUTH_NONCE_LEN &&
	       dt_hex_decode(hex, nonce, DT_AUTH_NONCE_LEN) == 0 ? 0 : -1;
}

static int send_fmt(dt_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int send_fmt(dt_conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return dt_conn_send(c, buf, (size_t)n);
}

/* Our nonce, then the peer's.  The client speaks first. */
static int swap_nonces(dt_conn *c, enum dt_auth_role role, int64_t deadline,
		       unsigned char mine[DT_AUTH_NONCE_LEN], unsigned char theirs[DT_AUTH_NONCE_LEN],
		       int *peer_refused, char *err, size_t errlen)
{
	char hex[HEXLEN(DT_AUTH_NONCE_LEN)];
	json_object *m = NULL;
	int rc;
	if (dt_auth_nonce(mine) != 0)
		return dt_err(err, errlen, DTASK_ETLS, "cannot draw a nonce");
	dt_hex_encode(mine, DT_AUTH_NONCE_LEN, hex);
	for (int step = 0; step < 2; step++) {
		if ((step == 0) == (role == DT_AUTH_CLIENT)) {
			rc = send_fmt(c, "{\"type\":\"auth\",\"version\":%d,\"nonce\":\"%s\"}",
				      DT_AUTH_VERSION, hex);
			if (rc < 0)
				return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
		} else {
			if ((rc = recv_step(c, deadline, "auth", &m, peer_refused, err, errlen)) < 0)
				return rc;
			rc = get_hello(m, theirs);
			json_object_put(m);
			if (rc != 0)
				return dt_err(err, errlen, DTASK_EPROTO,
					      "the peer's \"auth\" message has no valid version %d nonce",
					      DT_AUTH_VERSION);
		}
	}
	return 0;
}

int dt_auth_run_client(dt_conn *c, gnutls_session_t s, const char *key, int64_t deadline,
		       char *err, size_t errlen)
{
	unsigned char nc[DT_AUTH_NONCE_LEN], ns[DT_AUTH_NONCE_LEN], ex[DT_AUTH_EXPORTER_LEN];
	unsigned char mac[DT_AUTH_MAC_LEN];
	char hex[HEXLEN(DT_AUTH_MAC_LEN)];
	json_object *m = NULL;
	size_t keylen = strlen(key);
	int refused = 0, rc;

	if (dt_auth_exporter(s, ex) != 0)
		return dt_err(err, errlen, DTASK_ETLS, "cannot export keying material");
	if ((rc = swap_nonces(c, DT_AUTH_CLIENT, deadline, nc, ns, &refused, err, errlen)) < 0)
		return rc;
	/* The client proves first: its proof only ever goes to a server whose
	 * certificate it has verified, so a stranger gets nothing to guess at. */
	if (dt_auth_proof(key, keylen, DT_AUTH_CLIENT, ex, nc, ns, mac) != 0)
		return dt_err(err, errlen, DTASK_ETLS, "cannot compute the share_key proof");
	dt_hex_encode(mac, sizeof mac, hex);
	if ((rc = send_fmt(c, "{\"type\":\"auth_proof\",\"proof\":\"%s\"}", hex)) < 0)
		return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
	if ((rc = recv_step(c, deadline, "auth_ok", &m, &refused, err, errlen)) < 0)
		return rc;
	int good = dt_auth_check(key, keylen, DT_AUTH_SERVER, ex, nc, ns, str_field(m, "proof"));
	json_object_put(m);
	if (!good) {
		dt_conn_send_error(c, "authentication failed: the server's share_key proof is wrong");
		return dt_err(err, errlen, DTASK_EAUTH,
			      "authentication failed: the server does not hold our share_key");
	}
	return 0;
}

int dt_auth_run_server(dt_conn *c, gnutls_session_t s, const char *key, int64_t deadline,
		       char *err, size_t errlen)
{
	unsigned char nc[DT_AUTH_NONCE_LEN], ns[DT_AUTH_NONCE_LEN], ex[DT_AUTH_EXPORTER_LEN];
	unsigned char mac[DT_AUTH_MAC_LEN];
	char hex[HEXLEN(DT_AUTH_MAC_LEN)];
	json_object *m = NULL;
	size_t keylen = strlen(key);
	int refused = 0, rc;

	if (dt_auth_exporter(s, ex) != 0)
		return dt_err(err, errlen, DTASK_ETLS, "cannot export keying material");
	if ((rc = swap_nonces(c, DT_AUTH_SERVER, deadline, ns, nc, &refused, err, errlen)) < 0)
		goto refuse;
	if ((rc = recv_step(c, deadline, "auth_proof", &m, &refused, err, errlen)) < 0)
		goto refuse;
	int good = dt_auth_check(key, keylen, DT_AUTH_CLIENT, ex, nc, ns, str_field(m, "proof"));
	json_object_put(m);
	if (!good) {
		rc = dt_err(err, errlen, DTASK_EAUTH,
			    "authentication failed: the client does not hold our share_key");
		goto refuse;
	}
	if (dt_auth_proof(key, keylen, DT_AUTH_SERVER, ex, nc, ns, mac) != 0) {
		rc = dt_err(err, errlen, DTASK_ETLS, "cannot compute the share_key proof");
		goto refuse;
	}
	dt_hex_encode(mac, sizeof mac, hex);
	if ((rc = send_fmt(c, "{\"type\":\"auth_ok\",\"proof\":\"%s\"}", hex)) < 0)
		return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
	return 0;
refuse:
	/* Tell the client why, unless it is the one who gave up. */
	if (refused)
		return rc;
	if (rc == DTASK_EAUTH)
		dt_conn_send_error(c, "authentication failed: wrong share_key");
	else if (rc == DTASK_EPROTO || rc == DTASK_ETIMEDOUT)
		dt_conn_send_error(c, "authentication failed: %s", err);
	return rc;
}
