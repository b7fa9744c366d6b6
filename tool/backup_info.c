/*
 * backup_info.c
 *		The repository's INFO answer and manifest headers parsed into
 *		structs; formatting shared by info and restore; a line-splitting
 *		sink for report streams.
 */
#include "backup_info.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t
to_u64(const char *s)
{
	return strtoull(s, NULL, 10);
}

static void
copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

void
tool_backup_set(ToolBackup *b, const char *key, const char *value)
{
	if (strcmp(key, "label") == 0)
		copy_str(b->label, sizeof(b->label), value);
	else if (strcmp(key, "type") == 0)
		copy_str(b->type, sizeof(b->type), value);
	else if (strcmp(key, "prior") == 0)
		copy_str(b->prior, sizeof(b->prior), value);
	else if (strcmp(key, "system-id") == 0)
		b->system_id = to_u64(value);
	else if (strcmp(key, "pg-version") == 0)
		b->pg_version = (uint32_t) to_u64(value);
	else if (strcmp(key, "timestamp-start") == 0)
		b->timestamp_start = strtoll(value, NULL, 10);
	else if (strcmp(key, "timestamp-stop") == 0)
		b->timestamp_stop = strtoll(value, NULL, 10);
	else if (strcmp(key, "lsn-start") == 0)
		copy_str(b->lsn_start, sizeof(b->lsn_start), value);
	else if (strcmp(key, "lsn-stop") == 0)
		copy_str(b->lsn_stop, sizeof(b->lsn_stop), value);
	else if (strcmp(key, "wal-start") == 0)
		copy_str(b->wal_start, sizeof(b->wal_start), value);
	else if (strcmp(key, "wal-stop") == 0)
		copy_str(b->wal_stop, sizeof(b->wal_stop), value);
	else if (strcmp(key, "backup-from") == 0)
		copy_str(b->backup_from, sizeof(b->backup_from), value);
	else if (strcmp(key, "size") == 0)
		b->size = to_u64(value);
	else if (strcmp(key, "delta") == 0)
		b->delta = to_u64(value);
	else if (strcmp(key, "repo-size") == 0)
		b->repo_size = to_u64(value);
	else if (strcmp(key, "file-total") == 0)
		b->file_total = to_u64(value);
	else if (strcmp(key, "error-pages") == 0)
		b->error_pages = to_u64(value);
	else if (strcmp(key, "reference") == 0 || strcmp(key, "references") == 0)
		copy_str(b->reference, sizeof(b->reference), value);
}

void
tool_body_text(const PgbrBuf *body, const char **text, size_t *len)
{
	*text = (const char *) body->data;
	*len = body->len;
	if (body->len >= 4 && pgbr_get_be32(body->data) == body->len - 4)
	{
		*text += 4;
		*len -= 4;
	}
	if (*text == NULL)
		*text = "";
}

bool
tool_repo_info_parse(const char *text, size_t len, ToolRepoInfo *info, PgbrError *err)
{
	char	   *copy = pgbr_malloc(len + 1);
	char	   *line,
			   *next;
	ToolBackup *cur = NULL;
	int			cap = 0;

	memset(info, 0, sizeof(*info));
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = copy; line != NULL; line = next)
	{
		char	   *key,
				   *value;
		size_t		l;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		l = strlen(line);
		if (l > 0 && line[l - 1] == '\r')
			line[l - 1] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (!pgbr_kv_split(line, &key, &value))
		{
			pgbr_free(copy);
			tool_repo_info_free(info);
			return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
								  "malformed line in the repository's INFO answer: \"%.100s\"", line);
		}
		if (strcmp(key, "backup") == 0)
		{
			if (info->nbackups == cap)
			{
				cap = cap ? cap * 2 : 16;
				info->backups = pgbr_realloc(info->backups, sizeof(ToolBackup) * (size_t) cap);
			}
			cur = &info->backups[info->nbackups++];
			memset(cur, 0, sizeof(*cur));
			copy_str(cur->label, sizeof(cur->label), value);
			continue;
		}
		if (cur != NULL)
		{
			tool_backup_set(cur, key, value);
			continue;
		}
		if (strcmp(key, "stanza") == 0)
			copy_str(info->stanza, sizeof(info->stanza), value);
		else if (strcmp(key, "system-id") == 0)
			info->system_id = to_u64(value);
		else if (strcmp(key, "pg-version") == 0)
			info->pg_version = (uint32_t) to_u64(value);
		else if (strcmp(key, "archive-min") == 0)
			copy_str(info->archive_min, sizeof(info->archive_min), value);
		else if (strcmp(key, "archive-max") == 0)
			copy_str(info->archive_max, sizeof(info->archive_max), value);
	}
	pgbr_free(copy);
	return true;
}

bool
tool_repo_info_get(PgbrConn *conn, ToolRepoInfo *info, PgbrError *err)
{
	PgbrBuf		b;
	const char *text;
	size_t		len;
	bool		ok;

	memset(info, 0, sizeof(*info));
	pgbr_buf_init(&b);
	ok = pgbr_conn_send(conn, PGBR_MSG_INFO, NULL, 0, err) &&
		pgbr_conn_expect_ok(conn, &b, err);
	if (ok)
	{
		tool_body_text(&b, &text, &len);
		ok = tool_repo_info_parse(text, len, info, err);
	}
	pgbr_buf_release(&b);
	return ok;
}

void
tool_repo_info_free(ToolRepoInfo *info)
{
	pgbr_free(info->backups);
	info->backups = NULL;
	info->nbackups = 0;
}

const ToolBackup *
tool_repo_info_find(const ToolRepoInfo *info, const char *label)
{
	for (int i = 0; i < info->nbackups; i++)
		if (strcmp(info->backups[i].label, label) == 0)
			return &info->backups[i];
	return NULL;
}

void
tool_backup_references(const ToolRepoInfo *info, const ToolBackup *b, char *out, size_t len)
{
	const char *chain[64];
	int			n = 0;
	size_t		pos = 0;

	out[0] = '\0';
	if (b->reference[0])
	{
		copy_str(out, len, b->reference);
		return;
	}
	/* walk the priors back to the full */
	for (const ToolBackup *p = b; p->prior[0] && n < (int) PGBR_LENGTHOF(chain);)
	{
		const ToolBackup *q = tool_repo_info_find(info, p->prior);

		chain[n++] = p->prior;
		if (q == NULL)
			break;
		p = q;
	}
	for (int i = n - 1; i >= 0; i--)
	{
		int			w = snprintf(out + pos, len - pos, "%s%s", pos ? ", " : "", chain[i]);

		if (w < 0 || (size_t) w >= len - pos)
			break;
		pos += (size_t) w;
	}
}

void
tool_time_format(int64_t epoch, char *out, size_t len)
{
	time_t		t = (time_t) epoch;
	struct tm	tm;
	char		base[64];
	char		z[16];

	localtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
	strftime(z, sizeof(z), "%z", &tm);	/* +0100 */
	if (strlen(z) == 5 && strcmp(z + 3, "00") == 0)
		z[3] = '\0';			/* +01 */
	else if (strlen(z) == 5)
	{
		z[6] = '\0';
		z[5] = z[4];
		z[4] = z[3];
		z[3] = ':';				/* +05:30 */
	}
	snprintf(out, len, "%s%s", base, z);
}

void
tool_pg_version_format(uint32_t num, char *out, size_t len)
{
	if (num >= 100000)
		snprintf(out, len, "%u", num / 10000);
	else
		snprintf(out, len, "%u.%u", num / 10000, (num / 100) % 100);
}

/* ---- line sink ---- */

typedef struct LineSink
{
	PgbrSink	base;
	ToolLineFn	fn;
	void	   *arg;
	PgbrBuf		partial;
} LineSink;

static bool
lines_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	LineSink   *s = (LineSink *) self;

	while (len > 0)
	{
		const uint8_t *nl = memchr(data, '\n', len);
		size_t		n = nl ? (size_t) (nl - data) : len;

		if (nl == NULL)
		{
			pgbr_buf_put(&s->partial, data, n);
			return true;
		}
		pgbr_buf_put(&s->partial, data, n);
		pgbr_buf_put_u8(&s->partial, '\0');
		if (!s->fn(s->arg, (const char *) s->partial.data, s->partial.len - 1, err))
			return false;
		pgbr_buf_reset(&s->partial);
		data += n + 1;
		len -= n + 1;
	}
	return true;
}

static bool
lines_finish(PgbrSink *self, PgbrError *err)
{
	LineSink   *s = (LineSink *) self;

	if (s->partial.len > 0)
	{
		pgbr_buf_put_u8(&s->partial, '\0');
		if (!s->fn(s->arg, (const char *) s->partial.data, s->partial.len - 1, err))
			return false;
		pgbr_buf_reset(&s->partial);
	}
	return pgbr_sink_finish(self->next, err);
}

static void
lines_destroy(PgbrSink *self)
{
	pgbr_buf_release(&((LineSink *) self)->partial);
}

PgbrSink *
tool_sink_lines_create(ToolLineFn fn, void *arg)
{
	LineSink   *s = pgbr_malloc(sizeof(LineSink));

	memset(s, 0, sizeof(LineSink));
	s->base.write = lines_write;
	s->base.finish = lines_finish;
	s->base.destroy = lines_destroy;
	s->fn = fn;
	s->arg = arg;
	pgbr_buf_init(&s->partial);
	return &s->base;
}

void
tool_options_string(ToolContext *ctx, const char *const *names, char *out, size_t len)
{
	size_t		pos = 0;

	out[0] = '\0';
	for (int i = 0; names[i] != NULL; i++)
	{
		const char *const *values;
		int			n;

		if (strcmp(names[i], "stanza") == 0)
		{
			if (ctx->stanza)
				pos += (size_t) snprintf(out + pos, len - pos, "%s--stanza=%s",
										 pos ? " " : "", ctx->stanza);
		}
		else if (strcmp(names[i], "config") == 0)
		{
			if (ctx->config_explicit)
				pos += (size_t) snprintf(out + pos, len - pos, "%s--config=%s",
										 pos ? " " : "", ctx->config_path);
		}
		else if (strcmp(pgbr_config_source(ctx->cfg, names[i]), "default") != 0 &&
				 (n = pgbr_config_get_list(ctx->cfg, names[i], &values)) > 0)
		{
			for (int j = 0; j < n && pos < len; j++)
			{
				if (strcmp(values[j], "y") == 0)
					pos += (size_t) snprintf(out + pos, len - pos, "%s--%s", pos ? " " : "",
											 names[i]);
				else if (strcmp(values[j], "n") == 0)
					pos += (size_t) snprintf(out + pos, len - pos, "%s--no-%s", pos ? " " : "",
											 names[i]);
				else
					pos += (size_t) snprintf(out + pos, len - pos, "%s--%s=%s", pos ? " " : "",
											 names[i], values[j]);
			}
		}
		if (pos >= len)
		{
			out[len - 1] = '\0';
			return;
		}
	}
}
