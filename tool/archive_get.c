/*
 * archive_get.c
 *		archive-get WAL PATH, for restore_command.  The file is written to a
 *		temporary name beside PATH and renamed once its checksum is
 *		verified, so PostgreSQL never sees a partial or damaged file.  A WAL
 *		file the repository does not have exits 1 quietly and fast.
 */
#include "tool.h"
#include "pgbr_wal.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int
cmd_archive_get(ToolContext *ctx, PgbrError *err)
{
	const char *name,
			   *path;
	char		tmp[4200];
	SSL_CTX    *tls;
	PgbrConn   *conn;
	int			fd;
	bool		ok;

	if (ctx->nargs != 2)
	{
		pgbr_error_set(err, PGBR_ERR_COMMAND, "archive-get takes two arguments: WAL file name and destination path");
		pgbr_error_hint(err, "Use restore_command = 'pgbr --stanza=NAME archive-get %%f \"%%p\"'.");
		return 1;
	}
	name = ctx->args[0];
	path = ctx->args[1];
	if (pgbr_wal_kind(name) == PGBR_WAL_INVALID)
	{
		pgbr_error_set(err, PGBR_ERR_COMMAND, "\"%s\" is not a WAL file name", name);
		return 1;
	}
	conn = tool_connect(ctx, "archive-get", true, &tls, err);
	if (conn == NULL)
		return 1;
	snprintf(tmp, sizeof(tmp), "%s.pgbr.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not create file \"%s\"", tmp);
		tool_disconnect(conn, tls);
		return 1;
	}
	ok = pgbr_client_wal_get(conn, name, fd, tmp, err);
	if (close(fd) != 0 && ok)
		ok = pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write file \"%s\"", tmp);
	tool_disconnect(conn, tls);
	if (!ok)
	{
		unlink(tmp);
		if (err->code == PGBR_ERR_NOT_FOUND)
		{
			pgbr_log(PGBR_LOG_INFO, "unable to find %s in the archive", name);
			pgbr_error_init(err);
			return 1;
		}
		return 1;
	}
	if (rename(tmp, path) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not rename \"%s\" to \"%s\"", tmp, path);
		unlink(tmp);
		return 1;
	}
	pgbr_log(PGBR_LOG_INFO, "found %s in the archive", name);
	return 0;
}
