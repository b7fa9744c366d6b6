/*
 * backup_cmd.c
 *		pgbr backup: asks PostgreSQL (pg1, over libpq) to run a backup with
 *		CALL pgbr_backup_run(type) and waits for its label (the procedure's
 *		INOUT parameter comes back as a one-row result).  CALL rather than
 *		SELECT pgbr_backup(): outside a transaction block the procedure ends
 *		its transaction before it waits, so this session holds no snapshot
 *		(no xmin) however long the backup runs.  The backup itself
 *		runs in the cluster's background worker; its NOTICEs are logged
 *		here, a failure becomes this command's ERROR, and ^C cancels it.
 *		The summary line comes from the repository when it can be reached.
 */
#include "backup_info.h"

#include <signal.h>
#include <stdio.h>

static PGcancel *volatile cancel_handle = NULL;

static void
on_signal(int sig)
{
	char		errbuf[256];
	PGcancel   *c = cancel_handle;

	(void) sig;
	if (c != NULL)
		(void) PQcancel(c, errbuf, sizeof(errbuf));
}

static void
notice_processor(void *arg, const char *message)
{
	char		msg[2048];
	size_t		len;
	const char *p = message;
	PgbrLogLevel level = PGBR_LOG_INFO;

	(void) arg;
	if (strncmp(p, "WARNING:", 8) == 0)
		level = PGBR_LOG_WARN;
	/* "NOTICE:  text" -> "text" */
	if (strncmp(p, "NOTICE:", 7) == 0 || strncmp(p, "WARNING:", 8) == 0 ||
		strncmp(p, "INFO:", 5) == 0)
	{
		p = strchr(p, ':') + 1;
		while (*p == ' ')
			p++;
	}
	snprintf(msg, sizeof(msg), "%s", p);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	pgbr_log(level, "%s", msg);
}

/* "full backup size = 22.7MB, file total = 970" from the repository */
static void
log_summary(ToolContext *ctx, const char *stanza, const char *label)
{
	ToolContext c2 = *ctx;
	SSL_CTX    *tls;
	PgbrConn   *conn;
	PgbrError	e;
	ToolRepoInfo info;
	const ToolBackup *b;

	pgbr_error_init(&e);
	c2.stanza = stanza;
	conn = tool_connect(&c2, "info", true, &tls, &e);
	if (conn == NULL)
	{
		pgbr_log(PGBR_LOG_DETAIL, "backup summary not available: %s", e.message);
		return;
	}
	if (tool_repo_info_get(conn, &info, &e))
	{
		if ((b = tool_repo_info_find(&info, label)) != NULL)
		{
			char		size[32];

			pgbr_size_format(b->delta, size, sizeof(size));
			pgbr_log(PGBR_LOG_INFO, "%s backup size = %s, file total = %llu", b->type, size,
					 (unsigned long long) b->file_total);
		}
		tool_repo_info_free(&info);
	}
	else
		pgbr_log(PGBR_LOG_DETAIL, "backup summary not available: %s", e.message);
	tool_disconnect(conn, tls);
}

static void
pg_error(PGconn *pg, PGresult *res, PgbrError *err)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char		msg[900];
	size_t		len;

	snprintf(msg, sizeof(msg), "%s", primary ? primary : PQerrorMessage(pg));
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	if (state && strcmp(state, "57014") == 0)
		pgbr_error_set(err, PGBR_ERR_INTERRUPTED, "backup cancelled: %s", msg);
	else
		pgbr_error_set(err, PGBR_ERR_BACKUP, "backup failed: %s", msg);
	if (hint)
		pgbr_error_hint(err, "%s", hint);
}

int
cmd_backup(ToolContext *ctx, PgbrError *err)
{
	static const char *const opts[] = {"config", "pg1-port", "pg1-socket-path", "stanza",
	"type", NULL};
	char		optstr[1024];
	const char *type = pgbr_config_get(ctx->cfg, "type");
	const char *params[1];
	char		stanza[PGBR_NAME_MAX + 1] = "";
	char		label[PGBR_LABEL_MAX + 1];
	PGconn	   *pg;
	PGresult   *res;
	struct sigaction sa,
				old_int,
				old_term;

	/* a restore type set in a file is for "pgbr restore", not for backup */
	if (type == NULL ||
		(strcmp(type, "full") != 0 && strcmp(type, "diff") != 0 && strcmp(type, "incr") != 0 &&
		 strcmp(pgbr_config_source(ctx->cfg, "type"), "command line") != 0))
		type = "incr";
	if (strcmp(type, "full") != 0 && strcmp(type, "diff") != 0 && strcmp(type, "incr") != 0)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "invalid backup type \"%s\"", type);
		pgbr_error_hint(err, "Use --type=full, --type=diff or --type=incr.");
		return 1;
	}
	tool_options_string(ctx, opts, optstr, sizeof(optstr));
	pgbr_log(PGBR_LOG_INFO, "backup command begin %s: %s", PGBR_VERSION, optstr);

	pg = tool_pg_connect(ctx, 1, err);
	if (pg == NULL)
		return 1;
	PQsetNoticeProcessor(pg, notice_processor, NULL);

	/* the stanza the cluster backs up must be the one asked for */
	res = PQexec(pg, "SELECT coalesce(current_setting('pgbr.stanza', true), '')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(stanza, sizeof(stanza), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (ctx->stanza && stanza[0] && strcmp(stanza, ctx->stanza) != 0)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION,
					   "the cluster at pg1 archives and backs up stanza \"%s\", not \"%s\"",
					   stanza, ctx->stanza);
		pgbr_error_hint(err, "Check pgbr.stanza in the cluster's configuration and --stanza.");
		PQfinish(pg);
		return 1;
	}
	/* a backup may run for hours */
	PQclear(PQexec(pg, "SET statement_timeout = 0"));

	cancel_handle = PQgetCancel(pg);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	params[0] = type;
	res = PQexecParams(pg, "CALL pgbr_backup_run($1::text)", 1, NULL, params, NULL, NULL, 0);

	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	{
		PGcancel   *c = cancel_handle;

		cancel_handle = NULL;
		PQfreeCancel(c);
	}

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		pg_error(pg, res, err);
		PQclear(res);
		PQfinish(pg);
		return 1;
	}
	snprintf(label, sizeof(label), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(pg);

	pgbr_log(PGBR_LOG_INFO, "new backup label = %s", label);
	if (pgbr_log_level_parse(pgbr_config_get(ctx->cfg, "log-level-console")) < PGBR_LOG_INFO)
		printf("%s\n", label);	/* for scripts, when the log does not say it */
	if (ctx->stanza || stanza[0])
		log_summary(ctx, ctx->stanza ? ctx->stanza : stanza, label);
	pgbr_log(PGBR_LOG_INFO, "backup command end: completed successfully");
	return 0;
}
