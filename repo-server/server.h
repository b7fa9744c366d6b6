/*
 * server.h
 *		Declarations shared by the files of pgbr-server.
 */
#ifndef PGBR_SERVER_H
#define PGBR_SERVER_H

#include "pgbr_config.h"
#include "pgbr_conn.h"
#include "pgbr_log.h"

/* one tls-server-auth line: a certificate name and what it may touch */
typedef struct AuthRule
{
	char	   *name;			/* CN or DNS subjectAltName */
	char	  **stanzas;		/* NULL-terminated; "*" = every stanza */
} AuthRule;

/* everything the server takes from its configuration (swapped on SIGHUP) */
typedef struct ServerSettings
{
	PgbrConfig *cfg;
	SSL_CTX    *ctx;
	AuthRule   *rules;
	int			nrules;
	char	   *repo_path;
	int			io_timeout_ms;
	int			max_connections;
	int			max_per_client;
} ServerSettings;

/* auth.c */
extern bool auth_parse(ServerSettings *s, PgbrError *err);
extern void auth_free(ServerSettings *s);

/*
 * Decides whether the peer of ssl may open a session for stanza.  On
 * refusal fills err with a message naming the certificate, the stanza and
 * what the configuration grants.
 */
extern bool auth_check(const ServerSettings *s, SSL *ssl, const char *stanza, PgbrError *err);

/* one client connection, served by a child process */
typedef struct Session
{
	const ServerSettings *s;
	PgbrConn   *conn;
	char		peer[300];
	char		cn[256];		/* "" when the client sent no certificate */
	char		program[PGBR_NAME_MAX + 1];
	char		stanza[PGBR_NAME_MAX + 1];	/* "" until HELLO succeeded */
	PgbrBuf		in;				/* payload of the request being handled */
} Session;

/* session.c: serves one accepted connection, in a child process */
extern void session_run(const ServerSettings *s, int fd);

/*
 * Sends err as an ERROR frame and logs it.  Returns false if the
 * connection is unusable (the session then ends).
 */
extern bool session_refuse(Session *sess, const PgbrError *err);
/* sends OK with an optional body */
extern bool session_ok(Session *sess, const void *body, size_t len);

/*
 * Reads and discards the rest of a DATA...END stream after a request was
 * refused mid-stream, so the conversation stays in step.
 */
extern bool session_drain_stream(Session *sess);

/* wal.c: request handlers; false = connection must close */
extern bool wal_handle_put(Session *sess);
extern bool wal_handle_get(Session *sess);
extern bool wal_handle_find(Session *sess);
extern bool stanza_handle_create(Session *sess);
extern bool stanza_handle_get(Session *sess);

/* backup.c: backup, info, manifest, file and retention requests */
extern bool backup_dispatch(Session *sess, const PgbrFrameHeader *hdr);

#endif							/* PGBR_SERVER_H */
