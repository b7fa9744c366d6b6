/*
 * info.c
 *		pgbr info: the stanza's backups and WAL archive range as the
 *		repository server reports them (INFO), laid out like pgBackRest's
 *		"info" (text) or as JSON (--output=json).
 */
#include "backup_info.h"

#include <inttypes.h>
#include <stdio.h>

/* status codes of pgBackRest's JSON */
#define INFO_OK				0
#define INFO_MISSING_STANZA	1
#define INFO_NO_BACKUP		2

static const char *
status_message(int code)
{
	switch (code)
	{
		case INFO_OK:
			return "ok";
		case INFO_MISSING_STANZA:
			return "missing stanza path";
		default:
			return "no valid backups";
	}
}

static void
print_text(const char *stanza, const ToolRepoInfo *info, int status)
{
	char		ver[16];

	printf("stanza: %s\n", stanza);
	if (status == INFO_OK)
		printf("    status: ok\n");
	else
		printf("    status: error (%s)\n", status_message(status));
	if (status == INFO_MISSING_STANZA)
		return;
	printf("    cipher: none\n");
	printf("\n    db (current)\n");
	tool_pg_version_format(info->pg_version, ver, sizeof(ver));
	if (info->archive_min[0])
		printf("        wal archive min/max (%s): %s/%s\n", ver, info->archive_min,
			   info->archive_max[0] ? info->archive_max : info->archive_min);
	else
		printf("        wal archive min/max (%s): none present\n", ver);

	for (int i = 0; i < info->nbackups; i++)
	{
		const ToolBackup *b = &info->backups[i];
		char		t1[64],
					t2[64],
					s1[32],
					s2[32],
					s3[32];

		tool_time_format(b->timestamp_start, t1, sizeof(t1));
		tool_time_format(b->timestamp_stop, t2, sizeof(t2));
		pgbr_size_format(b->size, s1, sizeof(s1));
		pgbr_size_format(b->delta, s2, sizeof(s2));
		pgbr_size_format(b->repo_size, s3, sizeof(s3));
		printf("\n        %s backup: %s\n", b->type[0] ? b->type : "full", b->label);
		printf("            timestamp start/stop: %s / %s\n", t1, t2);
		printf("            wal start/stop: %s / %s\n", b->wal_start, b->wal_stop);
		printf("            database size: %s, database backup size: %s\n", s1, s2);
		printf("            repo1: backup size: %s\n", s3);
		if (strcmp(b->type, "full") != 0)
		{
			char		refs[2048];

			tool_backup_references(info, b, refs, sizeof(refs));
			if (refs[0])
				printf("            backup reference list: %s\n", refs);
		}
	}
}

/* a JSON string literal */
static void
json_str(PgbrBuf *out, const char *s)
{
	if (s == NULL || s[0] == '\0')
	{
		pgbr_buf_printf(out, "null");
		return;
	}
	pgbr_buf_put_u8(out, '"');
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			pgbr_buf_printf(out, "\\%c", *p);
		else if (*p == '\n')
			pgbr_buf_printf(out, "\\n");
		else if (*p < 0x20)
			pgbr_buf_printf(out, "\\u%04x", *p);
		else
			pgbr_buf_put_u8(out, *p);
	}
	pgbr_buf_put_u8(out, '"');
}

/* a JSON array of the comma-separated labels in list, or null */
static void
json_label_list(PgbrBuf *out, const char *list)
{
	char		copy[2048];
	char	   *save = NULL;
	bool		first = true;

	if (list[0] == '\0')
	{
		pgbr_buf_printf(out, "null");
		return;
	}
	snprintf(copy, sizeof(copy), "%s", list);
	pgbr_buf_put_u8(out, '[');
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
	{
		if (!first)
			pgbr_buf_put_u8(out, ',');
		json_str(out, tok);
		first = false;
	}
	pgbr_buf_put_u8(out, ']');
}

static void
print_json(const char *stanza, const ToolRepoInfo *info, int status)
{
	PgbrBuf		o;
	char		ver[16];

	pgbr_buf_init(&o);
	tool_pg_version_format(info->pg_version, ver, sizeof(ver));
	pgbr_buf_printf(&o, "[{\"name\":");
	json_str(&o, stanza);
	pgbr_buf_printf(&o, ",\"status\":{\"code\":%d,\"message\":", status);
	json_str(&o, status_message(status));
	pgbr_buf_printf(&o, "},\"cipher\":\"none\"");
	if (status != INFO_MISSING_STANZA)
	{
		pgbr_buf_printf(&o, ",\"db\":{\"id\":1,\"system-id\":%" PRIu64 ",\"version\":",
						info->system_id);
		json_str(&o, ver);
		pgbr_buf_printf(&o, "},\"archive\":{\"id\":\"%s-1\",\"min\":", ver);
		json_str(&o, info->archive_min);
		pgbr_buf_printf(&o, ",\"max\":");
		json_str(&o, info->archive_max[0] ? info->archive_max : info->archive_min);
		pgbr_buf_printf(&o, "}");
	}
	pgbr_buf_printf(&o, ",\"backup\":[");
	for (int i = 0; i < info->nbackups; i++)
	{
		const ToolBackup *b = &info->backups[i];
		char		refs[2048];

		tool_backup_references(info, b, refs, sizeof(refs));
		if (i > 0)
			pgbr_buf_put_u8(&o, ',');
		pgbr_buf_printf(&o, "{\"label\":");
		json_str(&o, b->label);
		pgbr_buf_printf(&o, ",\"type\":");
		json_str(&o, b->type);
		pgbr_buf_printf(&o, ",\"prior\":");
		json_str(&o, b->prior);
		pgbr_buf_printf(&o, ",\"reference\":");
		json_label_list(&o, strcmp(b->type, "full") == 0 ? "" : refs);
		pgbr_buf_printf(&o, ",\"timestamp\":{\"start\":%" PRId64 ",\"stop\":%" PRId64 "}",
						b->timestamp_start, b->timestamp_stop);
		pgbr_buf_printf(&o, ",\"archive\":{\"start\":");
		json_str(&o, b->wal_start);
		pgbr_buf_printf(&o, ",\"stop\":");
		json_str(&o, b->wal_stop);
		pgbr_buf_printf(&o, "},\"lsn\":{\"start\":");
		json_str(&o, b->lsn_start);
		pgbr_buf_printf(&o, ",\"stop\":");
		json_str(&o, b->lsn_stop);
		pgbr_buf_printf(&o, "},\"backup-from\":");
		json_str(&o, b->backup_from[0] ? b->backup_from : "primary");
		pgbr_buf_printf(&o, ",\"info\":{\"size\":%" PRIu64 ",\"delta\":%" PRIu64
						",\"file-total\":%" PRIu64 ",\"repository\":{\"size\":%" PRIu64
						",\"delta\":%" PRIu64 "}}",
						b->size, b->delta, b->file_total, b->repo_size, b->repo_size);
		pgbr_buf_printf(&o, ",\"database\":{\"id\":1},\"error\":%s}",
						b->error_pages > 0 ? "true" : "false");
	}
	pgbr_buf_printf(&o, "]}]\n");
	fwrite(o.data, 1, o.len, stdout);
	pgbr_buf_release(&o);
}

int
cmd_info(ToolContext *ctx, PgbrError *err)
{
	SSL_CTX    *tls;
	PgbrConn   *conn;
	ToolRepoInfo info;
	PgbrError	e2;
	int			status;
	bool		json = strcmp(pgbr_config_get(ctx->cfg, "output"), "json") == 0;

	if (!tool_require_stanza(ctx, err))
		return 1;
	conn = tool_connect(ctx, "info", true, &tls, err);
	if (conn == NULL)
		return 1;
	pgbr_error_init(&e2);
	if (!tool_repo_info_get(conn, &info, &e2))
	{
		tool_disconnect(conn, tls);
		if (e2.code != PGBR_ERR_STANZA_MISSING)
		{
			pgbr_error_copy(err, &e2);
			return 1;
		}
		/* pgBackRest reports a missing stanza as a status, not a failure */
		memset(&info, 0, sizeof(info));
		status = INFO_MISSING_STANZA;
	}
	else
	{
		tool_disconnect(conn, tls);
		status = info.nbackups > 0 ? INFO_OK : INFO_NO_BACKUP;
	}
	if (json)
		print_json(ctx->stanza, &info, status);
	else
		print_text(ctx->stanza, &info, status);
	fflush(stdout);
	tool_repo_info_free(&info);
	return 0;
}
