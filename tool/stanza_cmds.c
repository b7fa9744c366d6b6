/*
 * stanza_cmds.c
 *		stanza-create and check, run on a PostgreSQL host: the cluster's
 *		identity and WAL switch come from PostgreSQL over libpq.
 */
#include "tool.h"
#include "pgbr_wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static bool
cluster_identity(PGconn *pg, PgbrStanzaMsg *m, PgbrError *err)
{
	PGresult   *res = tool_pg_query(pg,
									"SELECT system_identifier, current_setting('server_version_num'),"
									" current_setting('wal_segment_size', true),"
									" pg_size_bytes(current_setting('wal_segment_size'))"
									" FROM pg_control_system()", err);

	if (res == NULL)
		return false;
	m->system_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	m->pg_version = (uint32_t) strtoul(PQgetvalue(res, 0, 1), NULL, 10);
	m->seg_size = (uint32_t) strtoull(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	return true;
}

int
cmd_stanza_create(ToolContext *ctx, PgbrError *err)
{
	PGconn	   *pg;
	PgbrStanzaMsg m;
	SSL_CTX    *tls;
	PgbrConn   *conn;
	bool		ok;

	if (!tool_require_stanza(ctx, err))
		return 1;
	pgbr_log(PGBR_LOG_INFO, "stanza-create command begin %s: --stanza=%s", PGBR_VERSION, ctx->stanza);
	pg = tool_pg_connect(ctx, 1, err);
	if (pg == NULL)
		return 1;
	ok = cluster_identity(pg, &m, err);
	PQfinish(pg);
	if (!ok)
		return 1;
	conn = tool_connect(ctx, "stanza-create", true, &tls, err);
	if (conn == NULL)
		return 1;
	ok = pgbr_client_stanza_create(conn, &m, err);
	tool_disconnect(conn, tls);
	if (!ok)
		return 1;
	pgbr_log(PGBR_LOG_INFO, "stanza-create for stanza '%s' on repo1", ctx->stanza);
	pgbr_log(PGBR_LOG_INFO, "stanza-create command end: completed successfully");
	return 0;
}

/* the archiver's last failure, if it failed after its last success */
static void
archiver_failure(PGconn *pg, char *out, size_t len)
{
	PGresult   *res = PQexec(pg,
							 "SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver"
							 " WHERE last_failed_time IS NOT NULL AND"
							 " (last_archived_time IS NULL OR last_failed_time > last_archived_time)");

	out[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(out, len, "; the archiver is failing: WAL file \"%s\" last failed at %s (see the PostgreSQL log)",
				 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	PQclear(res);
}

int
cmd_check(ToolContext *ctx, PgbrError *err)
{
	PGconn	   *pg;
	PGresult   *res;
	PgbrStanzaMsg local,
				remote;
	SSL_CTX    *tls;
	PgbrConn   *conn;
	char		segment[64];
	int			timeout = (int) pgbr_config_get_int(ctx->cfg, "archive-timeout");
	time_t		deadline;
	bool		found = false;

	if (!tool_require_stanza(ctx, err))
		return 1;
	pgbr_log(PGBR_LOG_INFO, "check command begin %s: --stanza=%s", PGBR_VERSION, ctx->stanza);
	conn = tool_connect(ctx, "check", true, &tls, err);
	if (conn == NULL)
		return 1;
	pg = tool_pg_connect(ctx, 1, err);
	if (pg == NULL || !cluster_identity(pg, &local, err) ||
		!pgbr_client_stanza_get(conn, &remote, err))
		goto fail;
	if (local.system_id != remote.system_id)
	{
		pgbr_error_set(err, PGBR_ERR_ARCHIVE_MISMATCH,
					   "stanza \"%s\" belongs to another cluster: system identifier %llu in the repository, %llu here",
					   ctx->stanza, (unsigned long long) remote.system_id,
					   (unsigned long long) local.system_id);
		goto fail;
	}
	res = tool_pg_query(pg, "SELECT pg_walfile_name(pg_switch_wal()) FROM"
						" pg_create_restore_point('pgbr check')", err);
	if (res == NULL)
		goto fail;
	snprintf(segment, sizeof(segment), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	pgbr_log(PGBR_LOG_INFO, "check archive for segment %s", segment);

	deadline = time(NULL) + timeout;
	while (!found)
	{
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (!pgbr_client_wal_find(conn, segment, &found, err))
			goto fail;
		if (found)
			break;
		if (time(NULL) >= deadline)
		{
			char		why[512];

			archiver_failure(pg, why, sizeof(why));
			pgbr_error_set(err, PGBR_ERR_TIMEOUT,
						   "WAL segment %s was not archived before the %d s archive-timeout%s",
						   segment, timeout, why);
			pgbr_error_hint(err, "Check archive_mode, archive_library = 'pgbr' and pgbr.stanza on the primary.");
			goto fail;
		}
		nanosleep(&ts, NULL);
	}
	pgbr_log(PGBR_LOG_INFO, "WAL segment %s successfully archived to repo1", segment);
	pgbr_log(PGBR_LOG_INFO, "check command end: completed successfully");
	PQfinish(pg);
	tool_disconnect(conn, tls);
	return 0;

fail:
	if (pg)
		PQfinish(pg);
	tool_disconnect(conn, tls);
	return 1;
}
