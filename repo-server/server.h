/*
 * server.h
 *		Declarations shared by the files of pgbr-server.
 */
#ifndef PGBR_SERVER_H
#define PGBR_SERVER_H

#include "pgbr_config.h"
#include "pgbr_conn.h"
#include "pgbr_log.h"
#include "storage.h"

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
	char	   *repo_path;		/* where the repository is, for messages */
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
	Storage    *st;				/* the repository */
	PgbrBuf		in;				/* payload of the request being handled */
	struct BackupSession *backup;	/* a backup this session writes, or NULL */
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
/* sends OK with one string as its body */
extern bool session_ok_str(Session *sess, const char *str);

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
/* called when the session ends: an uncommitted backup it began is removed */
extern void backup_session_cleanup(Session *sess);

/* catalog.c: the committed backups of a stanza */
typedef struct BackupInfo
{
	char		label[PGBR_NAME_MAX + 1];
	char		type[8];
	char		prior[PGBR_NAME_MAX + 1];
	char		wal_start[PGBR_NAME_MAX + 1];
	char	   *header;			/* the manifest's [backup] lines, malloc'd */
} BackupInfo;

/* committed backups, oldest first; free with catalog_free */
extern bool catalog_list(Storage *st, const char *stanza, BackupInfo **list, int *n,
						 PgbrError *err);
extern void catalog_free(BackupInfo *list, int n);
/* smallest and largest archived WAL segment names ("" if none) */
extern bool catalog_archive_range(Storage *st, const char *stanza, char *min, char *max,
								  PgbrError *err);
/* removes backup directories that have no manifest (caller holds backup.lock) */
extern void catalog_remove_incomplete(Storage *st, const char *stanza);

/* retention.c: expire backups and WAL per repo1-retention-full/-diff */
extern bool retention_apply(const ServerSettings *s, Storage *st, const char *stanza,
							PgbrBuf *report, PgbrError *err);

/* verify.c: checks every stored file; streams the report */
extern bool verify_handle(Session *sess);

#endif							/* PGBR_SERVER_H */
