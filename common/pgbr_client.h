/*
 * pgbr_client.h
 *		The client side of the protocol, shared by the extension and the
 *		pgbr tool: opening an authorised session from the host's
 *		configuration, and the requests both of them make.
 */
#ifndef PGBR_CLIENT_H
#define PGBR_CLIENT_H

#include "pgbr_config.h"
#include "pgbr_conn.h"

/* TLS context from repo1-host-cert-file, -key-file, -ca-file */
extern SSL_CTX *pgbr_client_tls_ctx(const PgbrConfig *cfg, bool need_cert, PgbrError *err);

extern SSL_CTX *pgbr_client_tls_ctx_files(const char *cert, const char *key, const char *ca,
										  PgbrError *err);

/*
 * Connects to repo1-host:repo1-host-port and, when stanza is not NULL,
 * opens a session for it (HELLO).  io-timeout bounds every wait.
 */
extern PgbrConn *pgbr_client_open(const PgbrConfig *cfg, SSL_CTX *ctx, const char *program,
								  const char *stanza, PgbrWaitFn wait, void *wait_arg,
								  PgbrError *err);

/* PING: fills the server's version string */
extern bool pgbr_client_ping(PgbrConn *conn, char *version, size_t len, PgbrError *err);

extern bool pgbr_client_stanza_create(PgbrConn *conn, const PgbrStanzaMsg *m, PgbrError *err);
extern bool pgbr_client_stanza_get(PgbrConn *conn, PgbrStanzaMsg *m, PgbrError *err);

/*
 * Sends a WAL file: WAL_PUT, its content compressed as configured, END
 * with the SHA-256 of the raw content.  Does not wait for the answer (so
 * several can be in flight): collect it with pgbr_conn_expect_ok.
 * workers > 0 lets zstd compress on that many threads.
 */
extern bool pgbr_client_wal_send(PgbrConn *conn, const char *name, const char *path,
								 PgbrCompress compress, int level, int workers,
								 PgbrError *err);

/*
 * The same for one file after another: the compressor (its context, its
 * buffers and zstd's threads) and the read buffer are made once.  A sender
 * is used by one thread at a time.
 */
typedef struct PgbrWalSender PgbrWalSender;

extern PgbrWalSender *pgbr_wal_sender_create(PgbrCompress compress, int level, int workers,
											 PgbrError *err);
extern bool pgbr_wal_sender_send(PgbrWalSender *s, PgbrConn *conn, const char *name,
								 const char *path, PgbrError *err);
/* _free(NULL) is a no-op */
extern void pgbr_wal_sender_free(PgbrWalSender *s);

/*
 * Parallel push streams: one thread per session, each sending whole files
 * (read, SHA-256, zstd on its own core, TLS) and reading the answers, a few
 * files ahead of them.  The caller queues files and asks for their results;
 * nothing here blocks it.  The threads block every signal and touch
 * nothing but their sessions, their senders and the pool (malloc, OpenSSL,
 * libzstd): the pool may live in a PostgreSQL backend.
 */
#define PGBR_PUSH_STREAMS_MAX 16

typedef struct PgbrPushPool PgbrPushPool;

typedef enum PgbrPushResult
{
	PGBR_PUSH_UNKNOWN,			/* never queued, or already reported */
	PGBR_PUSH_PENDING,			/* queued or on its way */
	PGBR_PUSH_OK,				/* acknowledged: durable in the repository */
	PGBR_PUSH_FAILED			/* err says why */
} PgbrPushResult;

/*
 * Starts one stream per session in conns (opened with pgbr_client_open, for
 * the stanza); the pool owns them from here on, also when it fails.  Their
 * waits become polls that pgbr_push_pool_free ends.
 */
extern PgbrPushPool *pgbr_push_pool_create(PgbrConn **conns, int n, PgbrCompress compress,
										   int level, PgbrError *err);
/* stops the streams (interrupting what they send) and frees everything; NULL: no-op */
extern void pgbr_push_pool_free(PgbrPushPool *pool);

/*
 * Queues a file; urgent ones are sent before the others.  false: not
 * queued (already known, the table is full, or no stream is left).
 */
extern bool pgbr_push_pool_submit(PgbrPushPool *pool, const char *name, const char *path,
								  bool urgent);

/* where a file is; OK and FAILED are reported once, then forgotten */
extern PgbrPushResult pgbr_push_pool_result(PgbrPushPool *pool, const char *name,
											PgbrError *err);
/* queued, on its way, or finished and not yet reported */
extern bool pgbr_push_pool_known(PgbrPushPool *pool, const char *name);
/* files queued or on their way */
extern int	pgbr_push_pool_unfinished(PgbrPushPool *pool);
/* a session broke: the pool should be replaced */
extern bool pgbr_push_pool_broken(PgbrPushPool *pool);
/* readable when a file finished since the last pgbr_push_pool_result */
extern int	pgbr_push_pool_fd(PgbrPushPool *pool);

/*
 * Fetches a WAL file into fd, decompressing and verifying its checksum.
 * Returns false with code PGBR_ERR_NOT_FOUND when the repository lacks it.
 */
extern bool pgbr_client_wal_get(PgbrConn *conn, const char *name, int fd, const char *path,
								PgbrError *err);

/* WAL_FIND: true in *found when the repository holds the file */
extern bool pgbr_client_wal_find(PgbrConn *conn, const char *name, bool *found,
								 PgbrError *err);

#endif							/* PGBR_CLIENT_H */
