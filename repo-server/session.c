/*
 * session.c
 *		One client connection: TLS handshake, PING or HELLO with
 *		authorisation, then requests until the client leaves.  Runs in a
 *		child process of the listener, so a slow or hostile client only
 *		ever holds up itself.
 */
#include "server.h"
#include "pgbr_tls.h"
#include "repo.h"
#include "backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* how long an authenticated client may stay idle between requests */
#define SESSION_IDLE_TIMEOUT_MS	(3600 * 1000)
/* how long a new client has for the handshake and its first frame */
#define SESSION_START_TIMEOUT_MS	(30 * 1000)

bool
session_ok(Session *sess, const void *body, size_t len)
{
	PgbrError	err;

	/* queued: it leaves when the session next waits for the client */
	pgbr_error_init(&err);
	if (!pgbr_conn_send(sess->conn, PGBR_MSG_OK, body, len, &err))
	{
		pgbr_log(PGBR_LOG_WARN, "%s: %s", sess->peer, err.message);
		return false;
	}
	return true;
}

bool
session_ok_str(Session *sess, const char *str)
{
	PgbrBuf		b;
	bool		ok;

	pgbr_buf_init(&b);
	pgbr_buf_put_str(&b, str);
	ok = session_ok(sess, b.data, b.len);
	pgbr_buf_release(&b);
	return ok;
}

bool
session_refuse(Session *sess, const PgbrError *e)
{
	PgbrError	err;

	pgbr_log(e->code == PGBR_ERR_NOT_FOUND ? PGBR_LOG_DETAIL : PGBR_LOG_WARN,
			 "refused %s from %s (CN \"%s\", stanza \"%s\"): [%03d] %s",
			 sess->program[0] ? sess->program : "request", sess->peer,
			 sess->cn[0] ? sess->cn : "none", sess->stanza[0] ? sess->stanza : "none",
			 e->code, e->message);
	pgbr_error_init(&err);
	if (!pgbr_conn_send_error(sess->conn, e, &err))
	{
		pgbr_log(PGBR_LOG_DETAIL, "%s: %s", sess->peer, err.message);
		return false;
	}
	return true;
}

bool
session_drain_stream(Session *sess)
{
	PgbrError	err;

	pgbr_error_init(&err);
	for (;;)
	{
		PgbrFrameHeader hdr;

		if (!pgbr_conn_recv(sess->conn, &hdr, &sess->in, &err))
		{
			pgbr_log(PGBR_LOG_WARN, "%s: %s", sess->peer, err.message);
			return false;
		}
		if (hdr.type == PGBR_MSG_END)
			return true;
		if (hdr.type != PGBR_MSG_DATA)
		{
			pgbr_log(PGBR_LOG_WARN, "%s: unexpected %s message in a data stream",
					 sess->peer, pgbr_msg_name(hdr.type));
			return false;
		}
	}
}

static bool
handle_ping(Session *sess)
{
	PgbrBuf		b;
	bool		ok;

	pgbr_buf_init(&b);
	pgbr_name_encode(&b, "pgbr-server " PGBR_VERSION);
	ok = session_ok(sess, b.data, b.len);
	pgbr_buf_release(&b);
	pgbr_log(PGBR_LOG_DETAIL, "ping from %s", sess->peer);
	return ok;
}

static bool
handle_hello(Session *sess)
{
	PgbrHello	h;
	PgbrError	err;

	pgbr_error_init(&err);
	if (sess->stanza[0] != '\0')
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "a session is already open");
		session_refuse(sess, &err);
		return false;
	}
	if (!pgbr_hello_decode(sess->in.data, sess->in.len, &h, &err))
	{
		session_refuse(sess, &err);
		return false;
	}
	snprintf(sess->program, sizeof(sess->program), "%s", h.program);
	if (h.version != PGBR_PROTOCOL_VERSION)
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL,
					   "client speaks protocol version %u, this server speaks %u",
					   h.version, PGBR_PROTOCOL_VERSION);
		pgbr_error_hint(&err, "Install the same pgbr version on the PostgreSQL hosts and the repository host.");
		session_refuse(sess, &err);
		return false;
	}
	if (!pgbr_stanza_name_valid(h.stanza))
	{
		pgbr_error_set(&err, PGBR_ERR_OPTION, "invalid stanza name \"%s\"", h.stanza);
		session_refuse(sess, &err);
		return false;
	}
	if (!auth_check(sess->s, pgbr_conn_ssl(sess->conn), h.stanza, &err))
	{
		/* name the stanza in the refusal log line */
		snprintf(sess->stanza, sizeof(sess->stanza), "%s", h.stanza);
		session_refuse(sess, &err);
		return false;
	}
	snprintf(sess->stanza, sizeof(sess->stanza), "%s", h.stanza);
	pgbr_log(PGBR_LOG_DETAIL, "%s: CN \"%s\" opened a %s session for stanza \"%s\"",
			 sess->peer, sess->cn, sess->program, sess->stanza);
	/* authorised: from now on only the per-wait timeouts apply */
	pgbr_conn_set_deadline(sess->conn, 0);
	pgbr_conn_set_timeout(sess->conn, sess->s->io_timeout_ms);
	return session_ok(sess, NULL, 0);
}

static bool
dispatch(Session *sess, const PgbrFrameHeader *hdr)
{
	PgbrError	err;

	pgbr_error_init(&err);
	if (hdr->type == PGBR_MSG_PING)
		return handle_ping(sess);
	if (hdr->type == PGBR_MSG_HELLO)
		return handle_hello(sess);
	if (sess->stanza[0] == '\0')
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL,
					   "%s request before HELLO", pgbr_msg_name(hdr->type));
		session_refuse(sess, &err);
		return false;
	}
	switch (hdr->type)
	{
		case PGBR_MSG_STANZA_CREATE:
			return stanza_handle_create(sess);
		case PGBR_MSG_STANZA_GET:
			return stanza_handle_get(sess);
		case PGBR_MSG_WAL_PUT:
			return wal_handle_put(sess);
		case PGBR_MSG_WAL_GET:
			return wal_handle_get(sess);
		case PGBR_MSG_WAL_FIND:
			return wal_handle_find(sess);
		default:
			if (!backup_dispatch(sess, hdr))
				return false;
			return true;
	}
}

void
session_run(const ServerSettings *s, int fd)
{
	Session		sess;
	PgbrError	err;
	SSL		   *ssl;

	memset(&sess, 0, sizeof(sess));
	sess.s = s;
	pgbr_buf_init(&sess.in);
	pgbr_error_init(&err);
	sess.st = storage_open(s->cfg, &err);
	if (sess.st == NULL)
	{
		pgbr_log(PGBR_LOG_WARN, "could not open the repository: %s", err.message);
		pgbr_buf_release(&sess.in);
		return;
	}

	sess.conn = pgbr_conn_accept(fd, s->ctx, SESSION_START_TIMEOUT_MS, &err);
	if (sess.conn == NULL)
	{
		pgbr_log(PGBR_LOG_WARN, "refused client: %s", err.message);
		storage_close(sess.st);
		pgbr_buf_release(&sess.in);
		return;
	}
	snprintf(sess.peer, sizeof(sess.peer), "%s", pgbr_conn_peer(sess.conn));
	ssl = pgbr_conn_ssl(sess.conn);
	if (!pgbr_tls_peer_cn(ssl, sess.cn, sizeof(sess.cn)))
		sess.cn[0] = '\0';
	pgbr_log(PGBR_LOG_DETAIL, "%s: TLS connection (%s) with CN \"%s\"", sess.peer,
			 SSL_get_version(ssl), sess.cn[0] ? sess.cn : "none");

	for (;;)
	{
		PgbrFrameHeader hdr;

		pgbr_conn_set_timeout(sess.conn, sess.stanza[0] ? SESSION_IDLE_TIMEOUT_MS
							  : SESSION_START_TIMEOUT_MS);
		pgbr_error_init(&err);
		if (!pgbr_conn_recv(sess.conn, &hdr, &sess.in, &err))
		{
			/* a client closing between requests is the normal end */
			if (err.code != PGBR_ERR_PROTOCOL || strstr(err.message, "closed") == NULL)
				pgbr_log(PGBR_LOG_WARN, "%s (CN \"%s\"): %s", sess.peer,
						 sess.cn[0] ? sess.cn : "none", err.message);
			break;
		}
		pgbr_conn_set_timeout(sess.conn, s->io_timeout_ms);
		if (sess.backup)
			storage_lock_refresh(sess.backup->lock);	/* s3: keeps it fresh */
		if (!dispatch(&sess, &hdr))
			break;
	}
	backup_session_cleanup(&sess);
	pgbr_error_init(&err);
	(void) pgbr_conn_flush(sess.conn, &err);	/* a last answer still queued */
	pgbr_conn_free(sess.conn);
	storage_close(sess.st);
	pgbr_buf_release(&sess.in);
}
