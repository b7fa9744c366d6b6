/*
 * standby.c
 *		The primary's side of a backup taken from the standby
 *		(backup-standby=y|prefer): a libpq connection from the backup worker
 *		to the standby (pg2-*), which checks that the standby is a standby of
 *		this cluster, waits until it has replayed and flushed everything up to
 *		the backup's start, and runs pgbr_backup_standby_copy() there.
 *
 * libpq in a backend, as dblink and postgres_fdw use it: the file
 * descriptor is reserved with AcquireExternalFD, the connection is
 * non-blocking, and every wait -- connecting, sending, reading -- is a
 * WaitLatchOrSocket that processes interrupts, so that cancelling the
 * backup or terminating the worker is never held up by the standby.  An
 * ERROR (or the worker's exit) with the copy still running cancels it on the
 * standby (PQcancel) before the connection is closed; should the cancel not
 * arrive, the standby's session notices the closed connection anyway
 * (client_connection_check_interval is set for it) and stops its worker.
 *
 * Why the restartpoint: the standby's data files lag behind its replay --
 * replayed changes sit in shared buffers until a restartpoint or eviction
 * writes them.  The backup's WAL is replayed from the primary's start LSN
 * (the redo point of the checkpoint pg_backup_start made), so every change
 * before it must be on the standby's disk before the copy starts.  Hence,
 * as pgBackRest does: wait for replay to pass the start LSN, CHECKPOINT on
 * the standby (a restartpoint there), and go on only when the standby's
 * last restartpoint has its redo at or after the start LSN.
 */
#include "backup.h"

#include "libpq-fe.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* how often a waiting loop polls the standby's replay position */
#define REPLAY_POLL_MS		250

static PGconn *
sb_conn(PgbrStandby *sb)
{
	return (PGconn *) sb->conn;
}

/* the last line of a libpq message, without its newline */
static void
chomp_copy(char *dst, size_t len, const char *src)
{
	size_t		n;

	strlcpy(dst, src ? src : "", len);
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

/*
 * Waits until the socket is ready for events (WL_SOCKET_*), the deadline
 * passes (0: none) or an interrupt is pending (processed: may ERROR).
 * Returns false on timeout.
 */
static bool
sb_wait(PgbrStandby *sb, int events, TimestampTz deadline)
{
	for (;;)
	{
		long		timeout = -1;
		int			wl = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | events;
		int			rc;

		if (deadline)
		{
			timeout = (long) ((deadline - GetCurrentTimestamp()) / 1000);
			if (timeout <= 0)
				return false;
			wl |= WL_TIMEOUT;
		}
		rc = WaitLatchOrSocket(MyLatch, wl, PQsocket(sb_conn(sb)), timeout, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & events)
			return true;
		if (rc & WL_TIMEOUT)
			return false;
	}
}

/* the standby's NOTICEs and WARNINGs go to this server's log */
static void
notice_receiver(void *arg, const PGresult *res)
{
	char		msg[1024];

	chomp_copy(msg, sizeof(msg), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	ereport(LOG, (errmsg("standby: %s", msg)));
}

/*
 * Sends a query (non-blocking: flushes with waits).  False with why when
 * the connection failed.
 */
static bool
sb_send(PgbrStandby *sb, const char *sql, int nparams, const char *const *params,
		TimestampTz deadline, char *why, size_t whylen)
{
	PGconn	   *conn = sb_conn(sb);
	int			rc;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		chomp_copy(why, whylen, PQerrorMessage(conn));
		return false;
	}
	while ((rc = PQflush(conn)) == 1)
	{
		if (!sb_wait(sb, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, deadline))
		{
			snprintf(why, whylen, "timed out sending a query to %s", sb->where);
			return false;
		}
		/* the server may answer (an error) before taking all the input */
		if (!PQconsumeInput(conn))
		{
			chomp_copy(why, whylen, PQerrorMessage(conn));
			return false;
		}
	}
	if (rc < 0)
	{
		chomp_copy(why, whylen, PQerrorMessage(conn));
		return false;
	}
	return true;
}

/*
 * Collects the results of the query sent last; returns the last one, or
 * NULL with why (connection lost, timeout).  Every wait processes
 * interrupts; keepalive(arg) runs every keepalive_s seconds (0: never).
 */
static PGresult *
sb_collect(PgbrStandby *sb, TimestampTz deadline, void (*keepalive) (void *), void *arg,
		   int keepalive_s, char *why, size_t whylen)
{
	PGconn	   *conn = sb_conn(sb);
	PGresult   *volatile last = NULL;

	PG_TRY();
	{
		for (;;)
		{
			PGresult   *res;

			while (PQisBusy(conn))
			{
				TimestampTz until = deadline;

				if (keepalive_s > 0)
				{
					TimestampTz ka = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																 keepalive_s * 1000);

					if (until == 0 || ka < until)
						until = ka;
				}
				if (!sb_wait(sb, WL_SOCKET_READABLE, until))
				{
					if (deadline && GetCurrentTimestamp() >= deadline)
					{
						snprintf(why, whylen, "timed out waiting for %s", sb->where);
						PQclear(last);
						last = NULL;
						goto done;
					}
					keepalive(arg);
					continue;
				}
				if (!PQconsumeInput(conn))
				{
					chomp_copy(why, whylen, PQerrorMessage(conn));
					PQclear(last);
					last = NULL;
					goto done;
				}
			}
			res = PQgetResult(conn);
			if (res == NULL)
				break;
			PQclear(last);
			last = res;
			if (PQstatus(conn) == CONNECTION_BAD)
				break;
		}
		if (last == NULL)
			chomp_copy(why, whylen, PQerrorMessage(conn));
done:	;
	}
	PG_CATCH();
	{
		PQclear(last);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return last;
}

/*
 * Runs a query to its end; the result if it returned rows or a command
 * completed, else NULL with why (the standby's message).
 */
static PGresult *
sb_query(PgbrStandby *sb, const char *sql, int nparams, const char *const *params,
		 TimestampTz deadline, char *why, size_t whylen)
{
	PGresult   *res;
	ExecStatusType st;

	if (!sb_send(sb, sql, nparams, params, deadline, why, whylen))
		return NULL;
	res = sb_collect(sb, deadline, NULL, NULL, 0, why, whylen);
	if (res == NULL)
		return NULL;
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		chomp_copy(why, whylen, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
				   PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

static bool
parse_lsn(const char *text, XLogRecPtr *lsn)
{
	bool		bad = false;

	if (text == NULL || text[0] == '\0')
		return false;
	*lsn = pg_lsn_in_internal(text, &bad);
	return !bad;
}

bool
pgbr_standby_open(const PgbrConfig *cfg, PgbrStandby *sb, char *why, size_t whylen)
{
	const char *keys[10];
	const char *vals[10];
	int			n = 0;
	const char *host = pgbr_config_get(cfg, "pg2-host");
	const char *port = pgbr_config_get(cfg, "pg2-port");
	int			io_timeout = (int) pgbr_config_get_int(cfg, "io-timeout");
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   (int64) io_timeout * 1000);
	PostgresPollingStatusType status;
	PGconn	   *conn;
	PGresult   *res;
	char		sysid[32];

	memset(sb, 0, sizeof(*sb));
	sb->io_timeout_ms = io_timeout * 1000;
	if (host == NULL)
		host = pgbr_config_get(cfg, "pg2-socket-path");
	if (host == NULL)
	{
		snprintf(why, whylen, "neither pg2-host nor pg2-socket-path is set");
		return false;
	}
	snprintf(sb->where, sizeof(sb->where), "the standby (pg2: host=%s port=%s)", host, port);

	keys[n] = "host";
	vals[n++] = host;
	keys[n] = "port";
	vals[n++] = port;
	keys[n] = "user";
	vals[n++] = pgbr_config_get(cfg, "pg2-user");
	keys[n] = "dbname";
	vals[n++] = pgbr_config_get(cfg, "pg2-database");
	keys[n] = "application_name";
	vals[n++] = "pgbr backup";
	/* the copy runs as long as it runs; a lost primary ends it on the standby */
	keys[n] = "options";
	vals[n++] = "-c statement_timeout=0 -c lock_timeout=0 -c client_connection_check_interval=2000";
	keys[n] = NULL;
	vals[n] = NULL;

	if (!AcquireExternalFD())
	{
		snprintf(why, whylen, "too many open files to connect to %s", sb->where);
		return false;
	}
	sb->fd_reserved = true;
	conn = PQconnectStartParams(keys, vals, 0);
	sb->conn = conn;
	if (conn == NULL)
	{
		snprintf(why, whylen, "out of memory connecting to %s", sb->where);
		pgbr_standby_close(sb);
		return false;
	}
	PQsetNoticeReceiver(conn, notice_receiver, NULL);
	status = PQstatus(conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
	while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
	{
		if (!sb_wait(sb, status == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
					 deadline))
		{
			snprintf(why, whylen, "could not connect to %s: timed out after %d s (io-timeout)",
					 sb->where, io_timeout);
			pgbr_standby_close(sb);
			return false;
		}
		status = PQconnectPoll(conn);
	}
	if (status != PGRES_POLLING_OK || PQstatus(conn) != CONNECTION_OK)
	{
		char		msg[512];

		chomp_copy(msg, sizeof(msg), PQerrorMessage(conn));
		snprintf(why, whylen, "could not connect to %s: %s", sb->where, msg);
		pgbr_standby_close(sb);
		return false;
	}
	if (PQsetnonblocking(conn, 1) != 0)
	{
		snprintf(why, whylen, "could not make the connection to %s non-blocking", sb->where);
		pgbr_standby_close(sb);
		return false;
	}

	/* a standby of this cluster, with pgbr for the same stanza */
	res = sb_query(sb,
				   "SELECT pg_catalog.pg_is_in_recovery(),"
				   " (SELECT system_identifier FROM pg_catalog.pg_control_system())::text,"
				   " coalesce(pg_catalog.current_setting('pgbr.stanza', true), ''),"
				   " (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
				   "  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgbr')",
				   0, NULL, deadline, why, whylen);
	if (res == NULL)
	{
		pgbr_standby_close(sb);
		return false;
	}
	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, GetSystemIdentifier());
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		snprintf(why, whylen, "%s is not in recovery: it is not a standby", sb->where);
	else if (strcmp(PQgetvalue(res, 0, 1), sysid) != 0)
		snprintf(why, whylen, "%s belongs to another cluster: system identifier %s, here %s",
				 sb->where, PQgetvalue(res, 0, 1), sysid);
	else if (strcmp(PQgetvalue(res, 0, 2), pgbr_config_stanza(cfg)) != 0)
		snprintf(why, whylen, "%s has pgbr.stanza = '%s', not '%s' (pgbr must be in its shared_preload_libraries)",
				 sb->where, PQgetvalue(res, 0, 2), pgbr_config_stanza(cfg));
	else if (PQgetisnull(res, 0, 3))
		snprintf(why, whylen, "%s has no extension pgbr in database \"%s\" (pg2-database)",
				 sb->where, pgbr_config_get(cfg, "pg2-database"));
	else
	{
		PGresult   *set;
		char		ignored[256];

		/*
		 * The token of the backup is a parameter of the CALL: keep it out of
		 * the standby's log even with log_statement = all (a superuser
		 * setting: pg2-user has to be one anyway to run the copy).
		 */
		set = sb_query(sb, "SET log_parameter_max_length = 0", 0, NULL, deadline,
					   ignored, sizeof(ignored));
		PQclear(set);
		snprintf(sb->call, sizeof(sb->call),
				 "CALL %s.pgbr_backup_standby_copy($1, $2, $3, $4, $5::pg_catalog.pg_lsn)",
				 PQgetvalue(res, 0, 3));
		PQclear(res);
		return true;
	}
	PQclear(res);
	pgbr_standby_close(sb);
	return false;
}

bool
pgbr_standby_wait_replay(PgbrStandby *sb, XLogRecPtr lsn, TimeLineID tli, int lag_s,
						 char *why, size_t whylen)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) lag_s * 1000);
	XLogRecPtr	replay = InvalidXLogRecPtr;
	XLogRecPtr	redo = InvalidXLogRecPtr;

	for (;;)
	{
		PGresult   *res;
		TimestampTz io_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															  sb->io_timeout_ms);

		res = sb_query(sb, "SELECT pg_catalog.pg_last_wal_replay_lsn()::text", 0, NULL,
					   io_deadline, why, whylen);
		if (res == NULL)
			return false;
		if (PQntuples(res) != 1 || !parse_lsn(PQgetvalue(res, 0, 0), &replay))
			replay = InvalidXLogRecPtr;
		PQclear(res);

		if (replay >= lsn)
		{
			/*
			 * A restartpoint writes out what replay changed; it restarts from
			 * the last checkpoint record replayed, so it reaches the start
			 * LSN only once replay has passed the checkpoint record that
			 * pg_backup_start wrote (just after the start LSN).
			 */
			res = sb_query(sb, "CHECKPOINT", 0, NULL, 0, why, whylen);
			if (res == NULL)
				return false;
			PQclear(res);
			res = sb_query(sb, "SELECT redo_lsn::text, timeline_id FROM pg_catalog.pg_control_checkpoint()",
						   0, NULL, io_deadline, why, whylen);
			if (res == NULL)
				return false;
			if (PQntuples(res) == 1 && parse_lsn(PQgetvalue(res, 0, 0), &redo) && redo >= lsn)
			{
				uint32		stli = (uint32) strtoul(PQgetvalue(res, 0, 1), NULL, 10);

				PQclear(res);
				if (stli != tli)
				{
					snprintf(why, whylen, "%s is on timeline %u, the primary on timeline %u",
							 sb->where, stli, tli);
					return false;
				}
				return true;
			}
			PQclear(res);
		}
		if (GetCurrentTimestamp() >= deadline)
		{
			if (replay >= lsn)
				snprintf(why, whylen,
						 "the last restartpoint of %s is at %X/%X, before the backup start %X/%X, although replay reached %X/%X (backup-standby-lag = %d s)",
						 sb->where, LSN_FORMAT_ARGS(redo), LSN_FORMAT_ARGS(lsn),
						 LSN_FORMAT_ARGS(replay), lag_s);
			else
				snprintf(why, whylen,
						 "replay on %s did not reach %X/%X within backup-standby-lag = %d s: it is at %X/%X",
						 sb->where, LSN_FORMAT_ARGS(lsn), lag_s, LSN_FORMAT_ARGS(replay));
			return false;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, REPLAY_POLL_MS,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

void
pgbr_standby_copy_start(PgbrStandby *sb, const char *stanza, const char *label,
						const char *token, const char *prior, XLogRecPtr start_lsn)
{
	const char *params[5];
	char		lsn[32];
	char		why[1024];

	snprintf(lsn, sizeof(lsn), "%X/%X", LSN_FORMAT_ARGS(start_lsn));
	params[0] = stanza;
	params[1] = label;
	/* a parameter: the token is not in pg_stat_activity.query */
	params[2] = token;
	params[3] = prior[0] ? prior : NULL;
	params[4] = lsn;
	if (!sb_send(sb, sb->call, 5, params, 0, why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not start the copy on %s: %s", sb->where, why)));
	sb->copy_running = true;
}

char *
pgbr_standby_copy_finish(PgbrStandby *sb, void (*keepalive) (void *), void *arg, int keepalive_s)
{
	char		why[1024];
	PGresult   *res = sb_collect(sb, 0, keepalive, arg, keepalive_s, why, sizeof(why));
	char	   *summary;

	if (res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to %s during the copy: %s", sb->where, why)));
	sb->copy_running = false;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		char		msg[1024],
					detail[1024],
					hint[512];
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		int			sqlstate = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;

		chomp_copy(msg, sizeof(msg), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
				   PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQresultErrorMessage(res));
		chomp_copy(detail, sizeof(detail), PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
		chomp_copy(hint, sizeof(hint), PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
		if (state && strlen(state) == 5)
			sqlstate = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
		PQclear(res);
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("the copy on %s failed: %s", sb->where, msg),
				 detail[0] ? errdetail_internal("%s", detail) : 0,
				 hint[0] ? errhint("%s", hint) : 0));
	}
	summary = pstrdup(PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return summary;
}

void
pgbr_standby_close(PgbrStandby *sb)
{
	PGconn	   *conn = sb_conn(sb);

	if (conn != NULL)
	{
		if (sb->copy_running && PQtransactionStatus(conn) == PQTRANS_ACTIVE)
		{
			PGcancel   *cancel = PQgetCancel(conn);
			char		errbuf[256];

			/* blocking, but short: one connection that sends 16 bytes */
			if (cancel == NULL || !PQcancel(cancel, errbuf, sizeof(errbuf)))
				ereport(LOG,
						(errmsg("could not cancel the copy on %s: %s", sb->where,
								cancel ? errbuf : "out of memory")));
			PQfreeCancel(cancel);
		}
		PQfinish(conn);
	}
	if (sb->fd_reserved)
		ReleaseExternalFD();
	sb->conn = NULL;
	sb->fd_reserved = false;
	sb->copy_running = false;
}
