/*
 * rawclient.h
 *		Shared by the two files of fuzz/pgbr-rawclient (see the comment at
 *		the top of pgbr-rawclient.c): the connection and its I/O helpers
 *		(pgbr-rawclient.c) and the steps (rawclient_steps.c).
 */
#ifndef PGBR_RAWCLIENT_H
#define PGBR_RAWCLIENT_H

#include "pgbr_client.h"
#include "pgbr_conn.h"
#include "pgbr_proto.h"

extern const char *opt_host;
extern int	opt_port;
extern int	opt_timeout;
extern SSL_CTX *ctx;
extern PgbrConn *conn;			/* NULL once the server closed it */
extern char var_label[PGBR_NAME_MAX + 1];	/* from the last backup-begin */
extern char var_token[PGBR_NAME_MAX + 1];

extern double now(void);
extern void usage_error(const char *fmt, const char *arg) __attribute__((noreturn));

/* \t \n \r \\ \xHH escapes; returns the length (NUL bytes included) */
extern size_t unescape(const char *s, char *out, size_t outlen);
extern size_t hexdecode(const char *s, uint8_t *out, size_t outlen);
extern void print_escaped(const uint8_t *p, size_t len, size_t max);
/* a message type by name or number 0-255 */
extern int	msg_type(const char *s);

extern bool connect_server(void);
/* prints CLOSED and drops the connection */
extern void closed(const char *step, double t0, const PgbrError *err);
/* bytes straight into the TLS stream */
extern bool write_raw(const uint8_t *data, size_t len, PgbrError *err);

/* prints the answer (OK/ERROR, and the DATA...END stream if stream) */
extern bool read_answer(const char *step, bool stream, PgbrBuf *body);
extern bool send_frame(const char *step, uint8_t type, const void *payload, size_t len);
extern bool queue_frame(const char *step, uint8_t type, const void *payload, size_t len);
extern void request(const char *step, uint8_t type, const PgbrBuf *b, bool stream);
/* a u32-length string from an escaped argument (may hold NUL bytes) */
extern void put_bytes_str(PgbrBuf *b, const char *arg);
extern bool send_content(const char *step, const uint8_t *data, size_t len, bool bad_pages);
extern void wal_put(const char *step, const char *name_arg, const uint8_t *data, size_t len);
/* a WAL segment whose long header matches its name (caller frees) */
extern uint8_t *make_segment(const char *name, uint64_t sysid, uint32_t seg_size, int major);

/* rawclient_steps.c */
extern void run_step(const char *step);

#endif							/* PGBR_RAWCLIENT_H */
