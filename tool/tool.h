/*
 * tool.h
 *		Declarations shared by the commands of the pgbr tool.
 */
#ifndef PGBR_TOOL_H
#define PGBR_TOOL_H

#include "pgbr_client.h"
#include "pgbr_log.h"

#include <libpq-fe.h>

/* what every command gets */
typedef struct ToolContext
{
	PgbrConfig *cfg;
	const char *stanza;			/* NULL if not given */
	const char *config_path;
	bool		config_explicit;	/* --config or PGBR_CONFIG given */
	int			nargs;			/* positional arguments after the command */
	char	  **args;
} ToolContext;

/* a command returns 0 or fills err and returns non-zero */
typedef int (*ToolCommand) (ToolContext *ctx, PgbrError *err);

/* opens an authorised session for the stanza (or a ping-only connection) */
extern PgbrConn *tool_connect(ToolContext *ctx, const char *program, bool need_stanza,
							  SSL_CTX **ctxp, PgbrError *err);
extern void tool_disconnect(PgbrConn *conn, SSL_CTX *ctx);
extern bool tool_require_stanza(ToolContext *ctx, PgbrError *err);

/* libpq connection to pg1 (or pg2 with index 2) from the configuration */
extern PGconn *tool_pg_connect(ToolContext *ctx, int index, PgbrError *err);
/* runs a query expecting one row; returns the result or NULL with err */
extern PGresult *tool_pg_query(PGconn *pg, const char *sql, PgbrError *err);

/* the commands */
extern int	cmd_server_ping(ToolContext *ctx, PgbrError *err);
extern int	cmd_server_hello(ToolContext *ctx, PgbrError *err);
extern int	cmd_stanza_create(ToolContext *ctx, PgbrError *err);
extern int	cmd_check(ToolContext *ctx, PgbrError *err);
extern int	cmd_archive_get(ToolContext *ctx, PgbrError *err);
extern int	cmd_backup(ToolContext *ctx, PgbrError *err);
extern int	cmd_info(ToolContext *ctx, PgbrError *err);
extern int	cmd_restore(ToolContext *ctx, PgbrError *err);
extern int	cmd_verify(ToolContext *ctx, PgbrError *err);
extern int	cmd_expire(ToolContext *ctx, PgbrError *err);

#endif							/* PGBR_TOOL_H */
