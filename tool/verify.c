/*
 * verify.c
 *		pgbr verify: the repository server checks every stored file of the
 *		stanza (VERIFY) and streams a report, one line per problem and a
 *		summary; END carries the number of problems.  Any problem makes the
 *		command fail.
 */
#include "backup_info.h"

#include <stdio.h>
#include <stdlib.h>

static bool
print_line(void *arg, const char *line, size_t len, PgbrError *err)
{
	(void) arg;
	(void) err;
	fwrite(line, 1, len, stdout);
	fputc('\n', stdout);
	return true;
}

int
cmd_verify(ToolContext *ctx, PgbrError *err)
{
	static const char *const opts[] = {"config", "stanza", NULL};
	char		optstr[1024];
	SSL_CTX    *tls;
	PgbrConn   *conn;
	PgbrSink   *lines;
	PgbrBuf		trailer;
	char		num[32];
	const char *text;
	size_t		len;
	long long	problems;
	bool		ok;

	if (!tool_require_stanza(ctx, err))
		return 1;
	tool_options_string(ctx, opts, optstr, sizeof(optstr));
	pgbr_log(PGBR_LOG_INFO, "verify command begin %s: %s", PGBR_VERSION, optstr);
	conn = tool_connect(ctx, "verify", true, &tls, err);
	if (conn == NULL)
		return 1;
	/* verifying a big repository takes long between frames */
	pgbr_conn_set_timeout(conn, 24 * 3600 * 1000);
	lines = tool_sink_lines_create(print_line, NULL);
	pgbr_buf_init(&trailer);
	ok = pgbr_conn_send(conn, PGBR_MSG_VERIFY, NULL, 0, err) &&
		pgbr_conn_expect_ok(conn, NULL, err) &&
		pgbr_conn_recv_stream(conn, lines, &trailer, err);
	fflush(stdout);
	pgbr_sink_free(lines);
	tool_disconnect(conn, tls);
	if (!ok)
	{
		pgbr_buf_release(&trailer);
		return 1;
	}
	tool_body_text(&trailer, &text, &len);
	snprintf(num, sizeof(num), "%.*s", (int) (len < sizeof(num) ? len : sizeof(num) - 1), text);
	pgbr_buf_release(&trailer);
	problems = strtoll(num, NULL, 10);
	if (problems > 0)
	{
		pgbr_error_set(err, PGBR_ERR_CHECKSUM, "verify found %lld problem(s) in the repository",
					   problems);
		return 1;
	}
	pgbr_log(PGBR_LOG_INFO, "verify command end: completed successfully");
	return 0;
}
