/*
 * pgbr_tls.h
 *		OpenSSL contexts for mutual TLS: TLS 1.2 or later, the peer verified
 *		against the CA on both sides, no renegotiation, private keys that
 *		group or others can read refused.
 */
#ifndef PGBR_TLS_H
#define PGBR_TLS_H

#include "pgbr_error.h"

#include <openssl/ssl.h>

/*
 * Server context.  Client certificates are requested and verified when
 * sent; a client without one may only ping (the server checks).
 */
extern SSL_CTX *pgbr_tls_server_ctx(const char *cert_file, const char *key_file,
									const char *ca_file, PgbrError *err);

/* client context; cert_file/key_file may be NULL (ping only) */
extern SSL_CTX *pgbr_tls_client_ctx(const char *cert_file, const char *key_file,
									const char *ca_file, PgbrError *err);

/* refuses a key file that is not a regular file or that group/others may read */
extern bool pgbr_tls_check_key_file(const char *path, PgbrError *err);

/* CN of the verified peer certificate; false if there is none */
extern bool pgbr_tls_peer_cn(SSL *ssl, char *out, size_t outlen);

/* true if the peer certificate's CN or one of its DNS SANs equals name */
extern bool pgbr_tls_peer_has_name(SSL *ssl, const char *name);

#endif							/* PGBR_TLS_H */
