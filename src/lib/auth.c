/*
 * auth.c - the mutual share_key proof (see auth.h and doc/PROTOCOL.md).
 *
 * Runs on the thread that owns a connection, before the connection is
 * handed to anyone else, so it needs no lock of its own.
 *
 *   client -> {"type":"auth","version":1,"nonce":NC}
 *   server -> {"type":"auth","version":1,"nonce":NS,"proof":PS}
 *   client -> {"type":"auth_proof","proof":PC}        (after checking PS)
 *   server -> {"type":"auth_ok"}                      (after checking PC)
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

/* Wait for the next message of the exchange; an "error" from the peer is
 * reported as DTASK_EAUTH with its text. */
static int recv_step(dt_conn *c, int64_t deadline, const char *want_type, json_object **out,
		     char *err, size_t errlen)
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
		dt_err(err, errlen, DTASK_EAUTH, "share_key mismatch (the peer says: %s)",
		       msg ? msg : "no reason given");
		json_object_put(m);
		return DTASK_EAUTH;
	}
	if (strcmp(type, want_type) != 0) {
		dt_err(err, errlen, DTASK_EPROTO, "expected a \"%s\" message during authentication, got \"%s\"",
		       want_type, type);
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

static int get_nonce(json_object *m, unsigned char nonce[DT_AUTH_NONCE_LEN])
{
	const char *hex = str_field(m, "nonce");
	return hex && strlen(hex) == 2 * DT_AUTH_NONCE_LEN &&
	       dt_hex_decode(hex, nonce, DT_AUTH_NONCE_LEN) == 0 ? 0 : -1;
}

static int check_version(json_object *m)
{
	json_object *v;
	return json_object_object_get_ex(m, "version", &v) &&
	       json_object_is_type(v, json_type_int) && json_object_get_int(v) == DT_AUTH_VERSION;
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

int dt_auth_run_client(dt_conn *c, gnutls_session_t s, const char *key, int64_t deadline,
		       char *err, size_t errlen)
{
	unsigned char nc[DT_AUTH_NONCE_LEN], ns[DT_AUTH_NONCE_LEN], ex[DT_AUTH_EXPORTER_LEN];
	unsigned char mac[DT_AUTH_MAC_LEN];
	char hex[HEXLEN(DT_AUTH_NONCE_LEN)];
	json_object *m = NULL;
	size_t keylen = strlen(key);
	int rc;

	if (dt_auth_nonce(nc) || dt_auth_exporter(s, ex))
		return dt_err(err, errlen, DTASK_ETLS, "cannot derive authentication material");
	dt_hex_encode(nc, sizeof nc, hex);
	if ((rc = send_fmt(c, "{\"type\":\"auth\",\"version\":%d,\"nonce\":\"%s\"}", DT_AUTH_VERSION,
			   hex)) < 0)
		return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
	if ((rc = recv_step(c, deadline, "auth", &m, err, errlen)) < 0)
		return rc;
	if (!check_version(m) || get_nonce(m, ns) != 0) {
		json_object_put(m);
		return dt_err(err, errlen, DTASK_EPROTO,
			      "the server's \"auth\" message has no valid version 1 nonce");
	}
	if (!dt_auth_check(key, keylen, DT_AUTH_SERVER, ex, nc, ns, str_field(m, "proof"))) {
		json_object_put(m);
		send_fmt(c, "{\"type\":\"error\",\"message\":\"authentication failed: the server's share_key proof is wrong\"}");
		return dt_err(err, errlen, DTASK_EAUTH,
			      "authentication failed: the server does not hold our share_key");
	}
	json_object_put(m);
	m = NULL;
	if (dt_auth_proof(key, keylen, DT_AUTH_CLIENT, ex, nc, ns, mac) != 0)
		return dt_err(err, errlen, DTASK_ETLS, "cannot compute the share_key proof");
	dt_hex_encode(mac, sizeof mac, hex);
	if ((rc = send_fmt(c, "{\"type\":\"auth_proof\",\"proof\":\"%s\"}", hex)) < 0)
		return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
	if ((rc = recv_step(c, deadline, "auth_ok", &m, err, errlen)) < 0)
		return rc;
	json_object_put(m);
	return 0;
}

int dt_auth_run_server(dt_conn *c, gnutls_session_t s, const char *key, int64_t deadline,
		       char *err, size_t errlen)
{
	unsigned char nc[DT_AUTH_NONCE_LEN], ns[DT_AUTH_NONCE_LEN], ex[DT_AUTH_EXPORTER_LEN];
	unsigned char mac[DT_AUTH_MAC_LEN];
	char nhex[HEXLEN(DT_AUTH_NONCE_LEN)], phex[HEXLEN(DT_AUTH_MAC_LEN)];
	json_object *m = NULL;
	size_t keylen = strlen(key);
	int rc;

	if ((rc = recv_step(c, deadline, "auth", &m, err, errlen)) < 0)
		goto refuse;
	if (!check_version(m) || get_nonce(m, nc) != 0) {
		json_object_put(m);
		rc = dt_err(err, errlen, DTASK_EPROTO,
			    "the client's \"auth\" message has no valid version 1 nonce");
		goto refuse;
	}
	json_object_put(m);
	m = NULL;
	if (dt_auth_nonce(ns) || dt_auth_exporter(s, ex) ||
	    dt_auth_proof(key, keylen, DT_AUTH_SERVER, ex, nc, ns, mac)) {
		rc = dt_err(err, errlen, DTASK_ETLS, "cannot derive authentication material");
		goto refuse;
	}
	dt_hex_encode(ns, sizeof ns, nhex);
	dt_hex_encode(mac, sizeof mac, phex);
	if ((rc = send_fmt(c, "{\"type\":\"auth\",\"version\":%d,\"nonce\":\"%s\",\"proof\":\"%s\"}",
			   DT_AUTH_VERSION, nhex, phex)) < 0)
		return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
	if ((rc = recv_step(c, deadline, "auth_proof", &m, err, errlen)) < 0)
		goto refuse;
	int good = dt_auth_check(key, keylen, DT_AUTH_CLIENT, ex, nc, ns, str_field(m, "proof"));
	json_object_put(m);
	if (!good) {
		rc = dt_err(err, errlen, DTASK_EAUTH,
			    "authentication failed: the client does not hold our share_key");
		goto refuse;
	}
	if ((rc = send_fmt(c, "{\"type\":\"auth_ok\"}")) < 0)
		return dt_err(err, errlen, rc, "authentication: %s", dtask_strerror(rc));
	return 0;
refuse:
	/* Tell the peer why, unless it is the one who spoke last. */
	if (rc == DTASK_EAUTH)
		dt_conn_send_error(c, "authentication failed: wrong share_key");
	else if (rc == DTASK_EPROTO || rc == DTASK_ETIMEDOUT)
		dt_conn_send_error(c, "authentication failed: %s", err);
	return rc;
}
