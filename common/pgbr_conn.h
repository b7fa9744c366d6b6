/*
 * pgbr_conn.h
 *		A framed, mutually authenticated TLS connection over a non-blocking
 *		socket.  Every wait goes through a caller-supplied wait function with
 *		a timeout, so the backend can wait on its latch and handle interrupts
 *		while the frontend uses poll().  No wait lasts longer than the
 *		connection's timeout without progress.
 */
#ifndef PGBR_CONN_H
#define PGBR_CONN_H

#include "pgbr_proto.h"
#include "pgbr_sink.h"

#include <openssl/ssl.h>

#define PGBR_WAIT_READ	1
#define PGBR_WAIT_WRITE	2

/*
 * Waits until fd is ready for `events` or timeout_ms passes.  Returns 1 if
 * ready, 0 on timeout, -1 when the wait was interrupted (err set).
 */
typedef int (*PgbrWaitFn) (void *arg, int fd, int events, int timeout_ms, PgbrError *err);

/* the frontend's wait function: poll(), retried on EINTR */
extern int	pgbr_wait_poll(void *arg, int fd, int events, int timeout_ms, PgbrError *err);

typedef struct PgbrConn PgbrConn;

/*
 * Connects to host:port and completes the TLS handshake, verifying the
 * server's certificate against the CA and its name against `host`.
 */
extern PgbrConn *pgbr_conn_connect(const char *host, int port, SSL_CTX *ctx, int timeout_ms,
								   PgbrWaitFn wait, void *wait_arg, PgbrError *err);

/*
 * server side: TLS handshake on an accepted socket (made non-blocking here).
 * timeout_ms is a deadline: every wait, in the handshake and after it,
 * ends by then, however the peer trickles bytes, until the caller lifts it
 * with pgbr_conn_set_deadline(conn, 0).
 */
extern PgbrConn *pgbr_conn_accept(int fd, SSL_CTX *ctx, int timeout_ms, PgbrError *err);

/* every later wait ends within ms from now (0: no deadline) */
extern void pgbr_conn_set_deadline(PgbrConn *conn, int ms);

extern void pgbr_conn_free(PgbrConn *conn);
extern SSL *pgbr_conn_ssl(PgbrConn *conn);
extern int	pgbr_conn_fd(PgbrConn *conn);
extern void pgbr_conn_set_timeout(PgbrConn *conn, int timeout_ms);
/* replaces the wait function (NULL: poll), e.g. when another thread takes the session over */
extern void pgbr_conn_set_wait(PgbrConn *conn, PgbrWaitFn wait, void *wait_arg);
/* "host:port" of the peer, for messages */
extern const char *pgbr_conn_peer(PgbrConn *conn);

/* queues a frame; sent when the buffer fills, on flush, or when a receive would wait */
extern bool pgbr_conn_send(PgbrConn *conn, uint8_t type, const void *payload, size_t len,
						   PgbrError *err);
extern bool pgbr_conn_flush(PgbrConn *conn, PgbrError *err);

/* receives one frame (payload into buf, replacing its content) */
extern bool pgbr_conn_recv(PgbrConn *conn, PgbrFrameHeader *hdr, PgbrBuf *payload,
						   PgbrError *err);

/* true if a frame can be received without waiting for the network */
extern bool pgbr_conn_readable(PgbrConn *conn);

/*
 * Receives the answer to a request: OK (its body into payload, which may be
 * NULL) returns true; ERROR is decoded into err and returns false; any
 * other frame is a protocol error.
 */
extern bool pgbr_conn_expect_ok(PgbrConn *conn, PgbrBuf *payload, PgbrError *err);

/* sends an ERROR frame built from e and flushes */
extern bool pgbr_conn_send_error(PgbrConn *conn, const PgbrError *e, PgbrError *err);

/*
 * A pipeline stage that sends what it receives as DATA frames and END at
 * finish.  If sha is not NULL (a finished pgbr_sink_sha256 stage upstream),
 * its result is the END frame's payload: the checksum of the raw content
 * travels after the content, so a stream is never read twice.
 */
extern PgbrSink *pgbr_sink_conn_create(PgbrConn *conn, PgbrSink *sha);
/* DATA frames only: the caller sends its own END (with its own trailer) */
extern PgbrSink *pgbr_sink_data_create(PgbrConn *conn);
/* sets the checksum stage after creation (it usually sits upstream) */
extern void pgbr_sink_conn_set_sha(PgbrSink *sink, PgbrSink *sha);

/*
 * Receives DATA frames until END, pushing each payload into sink (which is
 * finished after END).  ERROR from the peer is decoded into err.  On
 * success scratch holds the END frame's payload (the trailer).
 */
extern bool pgbr_conn_recv_stream(PgbrConn *conn, PgbrSink *sink, PgbrBuf *scratch,
								  PgbrError *err);

#endif							/* PGBR_CONN_H */
