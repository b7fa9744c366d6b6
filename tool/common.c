/*
 * common.c
 *		Connections used by several commands: the repository server and
 *		PostgreSQL (libpq).
 */
#include "tool.h"

#include <stdio.h>

bool
tool_require_stanza(ToolContext *ctx, PgbrError *err)
{
	if (ctx->stanza != NULL)
		return true;
	pgbr_error_set(err, PGBR_ERR_OPTION_REQUIRED, "option \"--stanza\" is required for this command");
	pgbr_error_hint(err, "Pass --stanza=NAME.");
	return false;
}

PgbrConn *
tool_connect(ToolContext *ctx, const char *program, bool need_stanza, SSL_CTX **ctxp,
			 PgbrError *err)
{
	PgbrConn   *conn;

	*ctxp = NULL;
	if (need_stanza && !tool_require_stanza(ctx, err))
		return NULL;
	*ctxp = pgbr_client_tls_ctx(ctx->cfg, need_stanza, err);
	if (*ctxp == NULL)
		return NULL;
	conn = pgbr_client_open(ctx->cfg, *ctxp, program, need_stanza ? ctx->stanza : NULL,
							NULL, NULL, err);
	if (conn == NULL)
	{
		SSL_CTX_free(*ctxp);
		*ctxp = NULL;
	}
	return conn;
}

void
tool_disconnect(PgbrConn *conn, SSL_CTX *ctx)
{
	pgbr_conn_free(conn);
	SSL_CTX_free(ctx);
}

PGconn *
tool_pg_connect(ToolContext *ctx, int index, PgbrError *err)
{
	const char *keys[8];
	const char *vals[8];
	char		opt[64];
	char		port[16];
	int			n = 0;
	PGconn	   *pg;

	snprintf(opt, sizeof(opt), "pg%d-host", index);
	if (index > 1 && pgbr_config_get(ctx->cfg, opt))
	{
		keys[n] = "host";
		vals[n++] = pgbr_config_get(ctx->cfg, opt);
	}
	else
	{
		snprintf(opt, sizeof(opt), "pg%d-socket-path", index);
		if (pgbr_config_get(ctx->cfg, opt))
		{
			keys[n] = "host";
			vals[n++] = pgbr_config_get(ctx->cfg, opt);
		}
	}
	snprintf(opt, sizeof(opt), "pg%d-port", index);
	snprintf(port, sizeof(port), "%s", pgbr_config_get(ctx->cfg, opt));
	keys[n] = "port";
	vals[n++] = port;
	snprintf(opt, sizeof(opt), "pg%d-user", index);
	keys[n] = "user";
	vals[n++] = pgbr_config_get(ctx->cfg, opt);
	snprintf(opt, sizeof(opt), "pg%d-database", index);
	keys[n] = "dbname";
	vals[n++] = pgbr_config_get(ctx->cfg, opt);
	keys[n] = "application_name";
	vals[n++] = "pgbr";
	keys[n] = NULL;
	vals[n] = NULL;

	pg = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(pg) != CONNECTION_OK)
	{
		char		msg[512];
		size_t		len;

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pg));
		len = strlen(msg);
		while (len > 0 && msg[len - 1] == '\n')
			msg[--len] = '\0';
		pgbr_error_set(err, PGBR_ERR_HOST_CONNECT, "could not connect to PostgreSQL (pg%d): %s",
					   index, msg);
		pgbr_error_hint(err, "Check pg%d-socket-path, pg%d-port and pg%d-user.", index, index, index);
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

PGresult *
tool_pg_query(PGconn *pg, const char *sql, PgbrError *err)
{
	PGresult   *res = PQexec(pg, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		char		msg[512];
		size_t		len;

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pg));
		len = strlen(msg);
		while (len > 0 && msg[len - 1] == '\n')
			msg[--len] = '\0';
		pgbr_error_set(err, PGBR_ERR_RUNTIME, "query failed: %s", msg[0] ? msg : "no row returned");
		PQclear(res);
		return NULL;
	}
	return res;
}
