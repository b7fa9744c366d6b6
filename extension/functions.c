/*
 * functions.c
 *		SQL entry points: pgbr_stanza_create() and pgbr_check().
 */
#include "pgbr_ext.h"
#include "pgbr_wal.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pgbr_stanza_create);
PG_FUNCTION_INFO_V1(pgbr_check);

static const PgbrConfig *
config_or_error(void)
{
	PgbrError	err;
	const PgbrConfig *cfg;

	pgbr_error_init(&err);
	cfg = pgbr_backend_config(&err);
	if (cfg == NULL)
		pgbr_ereport(ERROR, &err);
	return cfg;
}

Datum
pgbr_stanza_create(PG_FUNCTION_ARGS)
{
	const PgbrConfig *cfg = config_or_error();
	PgbrStanzaMsg m;
	SSL_CTX    *volatile tls = NULL;
	PgbrConn   *volatile conn = NULL;
	PgbrError	err;
	bool		ok;

	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("must be superuser to run pgbr_stanza_create()")));
	m.system_id = GetSystemIdentifier();
	m.pg_version = PG_VERSION_NUM;
	m.seg_size = (uint32_t) wal_segment_size;
	pgbr_error_init(&err);
	PG_TRY();
	{
		SSL_CTX    *t;

		conn = pgbr_backend_connect(cfg, "stanza-create", &t, NULL);
		tls = t;
		ok = pgbr_client_stanza_create(conn, &m, &err);
	}
	PG_FINALLY();
	{
		pgbr_conn_free(conn);
		SSL_CTX_free(tls);
	}
	PG_END_TRY();
	if (!ok)
		pgbr_ereport(ERROR, &err);
	ereport(LOG, (errmsg("pgbr: stanza-create for stanza \"%s\" completed", pgbr_stanza)));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("stanza \"%s\" is ready in the repository",
											  pgbr_stanza)));
}

/* why archiving may be stuck, from the archiver's statistics */
static char *
archiver_state(void)
{
	PgStat_ArchiverStats *st = pgstat_fetch_stat_archiver();

	if (st && st->last_failed_timestamp != 0 &&
		st->last_failed_timestamp >= st->last_archived_timestamp)
		return psprintf("; the archiver is failing: WAL file \"%s\" last failed at %s (see the server log for the reason)",
						st->last_failed_wal, timestamptz_to_str(st->last_failed_timestamp));
	return "";
}

Datum
pgbr_check(PG_FUNCTION_ARGS)
{
	const PgbrConfig *cfg = config_or_error();
	int			timeout = (int) pgbr_config_get_int(cfg, "archive-timeout");
	SSL_CTX    *volatile tls = NULL;
	PgbrConn   *volatile conn = NULL;
	PgbrError	err;
	PgbrStanzaMsg st;
	XLogRecPtr	switchpoint;
	XLogSegNo	segno;
	char		segment[MAXFNAMELEN];
	volatile bool found = false;

	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("must be superuser to run pgbr_check()")));
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("pgbr_check() must run on the primary"),
						errhint("Run it on the primary: a standby does not switch WAL.")));
	if (!XLogArchivingActive())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("WAL archiving is not enabled"),
						errhint("Set archive_mode = on and archive_library = 'pgbr', then restart.")));

	pgbr_error_init(&err);
	PG_TRY();
	{
		SSL_CTX    *t;
		TimestampTz deadline;

		conn = pgbr_backend_connect(cfg, "check", &t, NULL);
		tls = t;
		if (!pgbr_client_stanza_get(conn, &st, &err))
			pgbr_ereport(ERROR, &err);
		if (st.system_id != GetSystemIdentifier())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("stanza \"%s\" belongs to another cluster: system identifier " UINT64_FORMAT " in the repository, " UINT64_FORMAT " here",
							pgbr_stanza, (uint64) st.system_id, GetSystemIdentifier())));

		/* a restore point makes sure the switch produces a new segment */
		XLogRestorePoint("pgbr check");
		switchpoint = RequestXLogSwitch(false);
		XLByteToPrevSeg(switchpoint, segno, wal_segment_size);
		XLogFileName(segment, GetWALInsertionTimeLine(), segno, wal_segment_size);
		ereport(NOTICE, (errmsg("check archive for segment %s", segment)));

		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout * 1000);
		while (!found)
		{
			bool		f;

			if (!pgbr_client_wal_find(conn, segment, &f, &err))
				pgbr_ereport(ERROR, &err);
			found = f;
			if (found)
				break;
			if (GetCurrentTimestamp() >= deadline)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("WAL segment %s was not archived before the %d s archive-timeout%s",
								segment, timeout, archiver_state()),
						 errhint("Check archive_mode, archive_library = 'pgbr' and pgbr.stanza, and the server log.")));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		pgbr_conn_free(conn);
		SSL_CTX_free(tls);
	}
	PG_END_TRY();
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("WAL segment %s successfully archived to repo1",
											  segment)));
}
