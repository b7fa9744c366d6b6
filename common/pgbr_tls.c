/*
 * pgbr_tls.c
 *		TLS contexts and peer identity.
 */
#include "pgbr_tls.h"

#include <errno.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

bool
pgbr_tls_check_key_file(const char *path, PgbrError *err)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN,
								"could not access private key file \"%s\"", path);
	if (!S_ISREG(st.st_mode))
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN,
							  "private key file \"%s\" is not a regular file", path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		pgbr_error_set(err, PGBR_ERR_FILE_OPEN,
					   "private key file \"%s\" has group or world access (mode %04o)",
					   path, (unsigned) (st.st_mode & 07777));
		pgbr_error_hint(err, "Make it readable by its owner only: chmod 0600 \"%s\".", path);
		return false;
	}
	return true;
}

static bool
ctx_common(SSL_CTX *ctx, const char *cert_file, const char *key_file, const char *ca_file,
		   PgbrError *err)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					 SSL_MODE_ENABLE_PARTIAL_WRITE);

	if (ca_file == NULL)
		return pgbr_error_set(err, PGBR_ERR_TLS, "no CA file configured to verify the peer");
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
		return pgbr_error_ssl(err, PGBR_ERR_TLS, "could not load CA file \"%s\"", ca_file);

	if (cert_file != NULL)
	{
		if (key_file == NULL)
			return pgbr_error_set(err, PGBR_ERR_TLS,
								  "certificate \"%s\" is configured without a key file", cert_file);
		if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
			return pgbr_error_ssl(err, PGBR_ERR_TLS,
								  "could not load certificate file \"%s\"", cert_file);
		if (!pgbr_tls_check_key_file(key_file, err))
			return false;
		if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
			return pgbr_error_ssl(err, PGBR_ERR_TLS,
								  "could not load private key file \"%s\"", key_file);
		if (SSL_CTX_check_private_key(ctx) != 1)
			return pgbr_error_ssl(err, PGBR_ERR_TLS,
								  "private key file \"%s\" does not match certificate \"%s\"",
								  key_file, cert_file);
	}
	return true;
}

SSL_CTX *
pgbr_tls_server_ctx(const char *cert_file, const char *key_file, const char *ca_file,
					PgbrError *err)
{
	SSL_CTX    *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
	{
		pgbr_error_ssl(err, PGBR_ERR_TLS, "could not create TLS context");
		return NULL;
	}
	if (cert_file == NULL || key_file == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION_REQUIRED,
					   "tls-server-cert-file and tls-server-key-file are required");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (!ctx_common(ctx, cert_file, key_file, ca_file, err))
	{
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	/* tell clients which CAs are acceptable */
	SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(ca_file));
	return ctx;
}

SSL_CTX *
pgbr_tls_client_ctx(const char *cert_file, const char *key_file, const char *ca_file,
					PgbrError *err)
{
	SSL_CTX    *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
	{
		pgbr_error_ssl(err, PGBR_ERR_TLS, "could not create TLS context");
		return NULL;
	}
	if (!ctx_common(ctx, cert_file, key_file, ca_file, err))
	{
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

bool
pgbr_tls_peer_cn(SSL *ssl, char *out, size_t outlen)
{
	X509	   *cert = SSL_get0_peer_certificate(ssl);
	X509_NAME  *subject;
	int			len;

	out[0] = '\0';
	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	subject = X509_get_subject_name(cert);
	len = X509_NAME_get_text_by_NID(subject, NID_commonName, out, (int) outlen);
	if (len <= 0 || (size_t) len != strlen(out))
	{
		out[0] = '\0';			/* missing, or with an embedded NUL */
		return false;
	}
	return true;
}

bool
pgbr_tls_peer_has_name(SSL *ssl, const char *name)
{
	X509	   *cert = SSL_get0_peer_certificate(ssl);
	char		cn[256];
	GENERAL_NAMES *sans;
	bool		found = false;

	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	if (pgbr_tls_peer_cn(ssl, cn, sizeof(cn)) && strcmp(cn, name) == 0)
		return true;
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && !found; i++)
	{
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);

		if (gn->type == GEN_DNS)
		{
			const unsigned char *d = ASN1_STRING_get0_data(gn->d.dNSName);
			int			dlen = ASN1_STRING_length(gn->d.dNSName);

			if ((size_t) dlen == strlen(name) && memcmp(d, name, (size_t) dlen) == 0)
				found = true;
		}
	}
	GENERAL_NAMES_free(sans);
	return found;
}
