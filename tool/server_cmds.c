/*
 * server_cmds.c
 *		server-ping and server-hello.
 */
#include "tool.h"

#include <stdio.h>

int
cmd_server_ping(ToolContext *ctx, PgbrError *err)
{
	SSL_CTX    *tls = NULL;
	PgbrConn   *conn;
	char		version[128];

	/* a client certificate is sent if configured, but not required */
	tls = pgbr_client_tls_ctx(ctx->cfg, false, err);
	if (tls == NULL)
		return 1;
	conn = pgbr_client_open(ctx->cfg, tls, "server-ping", NULL, NULL, NULL, err);
	if (conn == NULL || !pgbr_client_ping(conn, version, sizeof(version), err))
	{
		tool_disconnect(conn, tls);
		return 1;
	}
	printf("%s:%lld answered: %s\n", pgbr_config_get(ctx->cfg, "repo1-host"),
		   (long long) pgbr_config_get_int(ctx->cfg, "repo1-host-port"), version);
	tool_disconnect(conn, tls);
	return 0;
}

int
cmd_server_hello(ToolContext *ctx, PgbrError *err)
{
	SSL_CTX    *tls;
	PgbrConn   *conn = tool_connect(ctx, "server-hello", true, &tls, err);

	if (conn == NULL)
		return 1;
	printf("session for stanza \"%s\" accepted\n", ctx->stanza);
	tool_disconnect(conn, tls);
	return 0;
}
