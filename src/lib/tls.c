/*
 * tls.c - GnuTLS credentials and sessions (see tls.h).
 *
 * A dt_tls is built once by the main thread and then only read: GnuTLS
 * allows certificate credentials and a priority cache to be shared by
 * sessions on many threads.  Each session belongs to one dt_conn.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>
#include <gnutls/x509.h>

#include "dtask.h"
#include "log.h"
#include "net.h"
#include "tls.h"
#include "util.h"

/* TLS 1.2 at least; GnuTLS prefers 1.3 when both sides have it. */
#define DT_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct dt_tls {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	int can_serve;
	int can_verify;
	int insecure;
};

dt_tls *dt_tls_new(const char *cert, const char *key, const char *ca, int insecure,
		   const char *cfgpath, char *err, size_t errlen)
{
	dt_tls *t = calloc(1, sizeof *t);
	const char *where = cfgpath ? cfgpath : "configuration";
	int rc;

	if (!t) {
		dt_err(err, errlen, DTASK_ENOMEM, "out of memory");
		return NULL;
	}
	t->insecure = insecure;
	if ((rc = gnutls_certificate_allocate_credentials(&t->cred)) < 0) {
		dt_err(err, errlen, DTASK_ETLS, "GnuTLS: %s", gnutls_strerror(rc));
		goto fail;
	}
	if ((rc = gnutls_priority_init(&t->prio, DT_TLS_PRIORITY, NULL)) < 0) {
		dt_err(err, errlen, DTASK_ETLS, "GnuTLS priority: %s", gnutls_strerror(rc));
		goto fail;
	}
	/* A cert alone is a pinned trust anchor for a client; a key alone is
	 * a mistake. */
	if (key && !cert) {
		dt_err(err, errlen, DTASK_ECONFIG,
		       "%s: field \"key\" is set but \"cert\" is missing", where);
		goto fail;
	}
	if (cert && key) {
		rc = gnutls_certificate_set_x509_key_file2(t->cred, cert, key, GNUTLS_X509_FMT_PEM,
							   NULL, 0);
		if (rc < 0) {
			dt_err(err, errlen, DTASK_ECONFIG,
			       "%s: fields \"cert\"/\"key\": cannot load %s with %s: %s", where, cert,
			       key, gnutls_strerror(rc));
			goto fail;
		}
		t->can_serve = 1;
	}
	const char *trust = ca ? ca : cert;
	if (trust) {
		rc = gnutls_certificate_set_x509_trust_file(t->cred, trust, GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			dt_err(err, errlen, DTASK_ECONFIG,
			       "%s: field \"%s\": no trusted certificate could be loaded from %s%s%s",
			       where, ca ? "ca" : "cert", trust, rc < 0 ? ": " : "",
			       rc < 0 ? gnutls_strerror(rc) : "");
			goto fail;
		}
		t->can_verify = 1;
	}
	if (insecure)
		log_warn("%s: \"insecure\": true: peer certificates are NOT verified (for tests only)",
			 where);
	return t;
fail:
	dt_tls_free(t);
	return NULL;
}

void dt_tls_free(dt_tls *t)
{
	if (!t)
		return;
	if (t->prio)
		gnutls_priority_deinit(t->prio);
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	free(t);
}

int dt_tls_can_serve(const dt_tls *t)
{
	return t && t->can_serve;
}

static int session_common(dt_tls *t, gnutls_session_t s, int fd, char *err, size_t errlen)
{
	int rc = gnutls_priority_set(s, t->prio);
	if (rc >= 0)
		rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred);
	if (rc < 0)
		return dt_err(err, errlen, DTASK_ETLS, "TLS session setup: %s", gnutls_strerror(rc));
	gnutls_transport_set_int(s, fd);
	return 0;
}

int dt_tls_session_server(dt_tls *t, int fd, gnutls_session_t *out, char *err, size_t errlen)
{
	gnutls_session_t s;
	if (!t->can_serve)
		return dt_err(err, errlen, DTASK_ECONFIG,
			      "no \"cert\" and \"key\" configured: cannot serve TLS");
	/* No session tickets: sessions are never resumed, and no TLS 1.3
	 * post-handshake message then crosses a link in use by two threads. */
	int rc = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);
	if (rc < 0)
		return dt_err(err, errlen, DTASK_ETLS, "TLS session: %s", gnutls_strerror(rc));
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
	if ((rc = session_common(t, s, fd, err, errlen)) < 0) {
		gnutls_deinit(s);
		return rc;
	}
	*out = s;
	return 0;
}

int dt_tls_session_client(dt_tls *t, int fd, const char *host, gnutls_session_t *out,
			  char *err, size_t errlen)
{
	gnutls_session_t s;
	if (!t->can_verify && !t->insecure)
		return dt_err(err, errlen, DTASK_ECONFIG,
			      "no \"ca\" or \"cert\" configured to verify the server's certificate");
	int rc = gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);
	if (rc < 0)
		return dt_err(err, errlen, DTASK_ETLS, "TLS session: %s", gnutls_strerror(rc));
	if ((rc = session_common(t, s, fd, err, errlen)) < 0)
		goto fail;
	if (!dt_net_is_ip(host)) {
		rc = gnutls_server_name_set(s, GNUTLS_NAME_DNS, host, strlen(host));
		if (rc < 0) {
			rc = dt_err(err, errlen, DTASK_ETLS, "TLS server name %s: %s", host,
				    gnutls_strerror(rc));
			goto fail;
		}
	}
	/* Chain against the trust anchors and the name (or IP) we dialled. */
	if (!t->insecure)
		gnutls_session_set_verify_cert(s, host, 0);
	*out = s;
	return 0;
fail:
	gnutls_deinit(s);
	return rc;
}

int dt_tls_handshake(gnutls_session_t s, int timeout_ms, char *err, size_t errlen)
{
	int rc;
	gnutls_handshake_set_timeout(s, timeout_ms > 0 ? (unsigned)timeout_ms : 0);
	do {
		rc = gnutls_handshake(s);
	} while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
	if (rc >= 0)
		return 0;
	/* Tell the peer why (e.g. "bad certificate"), so its log can say so. */
	if (rc != GNUTLS_E_FATAL_ALERT_RECEIVED && rc != GNUTLS_E_TIMEDOUT &&
	    rc != GNUTLS_E_PREMATURE_TERMINATION && rc != GNUTLS_E_PUSH_ERROR &&
	    rc != GNUTLS_E_PULL_ERROR)
		gnutls_alert_send_appropriate(s, rc);
	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		unsigned status = gnutls_session_get_verify_cert_status(s);
		gnutls_datum_t why = { NULL, 0 };
		if (gnutls_certificate_verification_status_print(
			    status, gnutls_certificate_type_get(s), &why, 0) == 0) {
			dt_err(err, errlen, DTASK_ECERT, "server certificate rejected: %s",
			       (const char *)why.data);
			gnutls_free(why.data);
		} else {
			dt_err(err, errlen, DTASK_ECERT, "server certificate rejected");
		}
		return DTASK_ECERT;
	}
	if (rc == GNUTLS_E_TIMEDOUT)
		return dt_err(err, errlen, DTASK_ETIMEDOUT, "TLS handshake timed out after %d ms",
			      timeout_ms);
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		gnutls_alert_description_t a = gnutls_alert_get(s);
		const char *name = gnutls_alert_get_name(a);
		int cert_alert = a == GNUTLS_A_BAD_CERTIFICATE || a == GNUTLS_A_UNKNOWN_CA ||
				 a == GNUTLS_A_CERTIFICATE_UNKNOWN ||
				 a == GNUTLS_A_UNSUPPORTED_CERTIFICATE;
		return dt_err(err, errlen, cert_alert ? DTASK_ECERT : DTASK_ETLS,
			      "TLS handshake failed: the peer sent alert \"%s\"%s",
			      name ? name : "?",
			      cert_alert ? " (it does not trust our certificate)" : "");
	}
	if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PULL_ERROR ||
	    rc == GNUTLS_E_PUSH_ERROR)
		return dt_err(err, errlen, DTASK_ECLOSED,
			      "TLS handshake failed: the peer closed the connection");
	return dt_err(err, errlen, DTASK_ETLS, "TLS handshake failed: %s", gnutls_strerror(rc));
}
