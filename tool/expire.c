/*
 * expire.c
 *		pgbr expire: the repository server applies the retention of its
 *		configuration now (EXPIRE) and answers with a report, logged here
 *		at info level.
 */
#include "backup_info.h"

#include <stdio.h>

int
cmd_expire(ToolContext *ctx, PgbrError *err)
{
	static const char *const opts[] = {"config", "stanza", NULL};
	char		optstr[1024];
	SSL_CTX    *tls;
	PgbrConn   *conn;
	PgbrBuf		b;
	const char *text;
	size_t		len;
	bool		ok;

	if (!tool_require_stanza(ctx, err))
		return 1;
	tool_options_string(ctx, opts, optstr, sizeof(optstr));
	pgbr_log(PGBR_LOG_INFO, "expire command begin %s: %s", PGBR_VERSION, optstr);
	conn = tool_connect(ctx, "expire", true, &tls, err);
	if (conn == NULL)
		return 1;
	/* removing many files may take a while */
	pgbr_conn_set_timeout(conn, 3600 * 1000);
	pgbr_buf_init(&b);
	ok = pgbr_conn_send(conn, PGBR_MSG_EXPIRE, NULL, 0, err) &&
		pgbr_conn_expect_ok(conn, &b, err);
	tool_disconnect(conn, tls);
	if (ok)
	{
		tool_body_text(&b, &text, &len);
		while (len > 0)
		{
			const char *nl = memchr(text, '\n', len);
			size_t		n = nl ? (size_t) (nl - text) : len;

			if (n > 0)
				pgbr_log(PGBR_LOG_INFO, "%.*s", (int) n, text);
			text += n + (nl ? 1 : 0);
			len -= n + (nl ? 1 : 0);
		}
		pgbr_log(PGBR_LOG_INFO, "expire command end: completed successfully");
	}
	pgbr_buf_release(&b);
	return ok ? 0 : 1;
}
