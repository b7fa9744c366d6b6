/*
 * repo_read.c
 *		Reading the repository: MANIFEST_GET, FILE_GET, INFO, and EXPIRE on
 *		request.  Every name from the client is checked (labels, manifest
 *		paths) before it is joined to a repository path.
 */
#include "backup.h"

#include <inttypes.h>
#include <stdio.h>

bool
send_file_range(Session *sess, const char *path, uint64_t offset, uint64_t length, bool whole,
				PgbrError *err)
{
	bool		missing;
	StorageRead *r = storage_read_open(sess->st, path, offset, whole ? UINT64_MAX : length,
									   &missing, err);
	PgbrSink   *out;
	uint8_t    *chunk;
	bool		ok = true;

	if (r == NULL)
	{
		/* refused before the stream began: the session goes on */
		if (missing)
			pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "\"%s\" is missing from %s", path,
						   sess->st->where);
		return session_refuse(sess, err);
	}
	if (!pgbr_conn_send(sess->conn, PGBR_MSG_OK, NULL, 0, err))
	{
		storage_read_close(r);
		return false;
	}
	out = pgbr_sink_conn_create(sess->conn, NULL);
	chunk = pgbr_malloc(PGBR_CHUNK_SIZE);
	while (ok)
	{
		ssize_t		n = storage_read(r, chunk, PGBR_CHUNK_SIZE, err);

		if (n < 0)
		{
			/* an ERROR frame ends the stream for the client */
			PgbrError	e;

			pgbr_error_init(&e);
			pgbr_error_copy(&e, err);
			session_refuse(sess, &e);
			ok = false;
			break;
		}
		if (n == 0)
			break;
		ok = pgbr_sink_write(out, chunk, (size_t) n, err);
	}
	if (ok)
		ok = pgbr_sink_finish(out, err) && pgbr_conn_flush(sess->conn, err);
	pgbr_free(chunk);
	pgbr_sink_free(out);
	storage_read_close(r);
	return ok;
}

/*
 * The directory of a committed backup.  A restore asks for hundreds of files
 * of one backup in a session (a process of its own): the manifest is looked
 * for once, not once a file (on s3 each look is a request).
 */
static bool
backup_dir(Session *sess, const char *label, char *out, PgbrError *err)
{
	static char seen[PGBR_NAME_MAX + 1];
	char		m[REPO_PATH_MAX];
	bool		exists;

	if (!pgbr_label_valid(label))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid backup label \"%s\"", label);
	if (!storage_path(out, err, "%s/backup/%s", sess->stanza, label))
		return false;
	if (strcmp(seen, label) == 0)
		return true;
	if (!storage_path(m, err, "%s/manifest", out) ||
		!storage_exists(sess->st, m, &exists, err))
		return false;
	if (exists)
		snprintf(seen, sizeof(seen), "%s", label);
	if (!exists)
		return pgbr_error_set(err, PGBR_ERR_NOT_FOUND, "backup %s does not exist in stanza \"%s\"",
							  label, sess->stanza);
	return true;
}

bool
manifest_get(Session *sess)
{
	char		label[PGBR_NAME_MAX + 1];
	char		dir[REPO_PATH_MAX],
				path[REPO_PATH_MAX];
	PgbrError	err;

	pgbr_error_init(&err);
	if (!pgbr_name_decode(sess->in.data, sess->in.len, label, PGBR_NAME_MAX, &err))
		return session_refuse(sess, &err) && false;
	if (!backup_dir(sess, label, dir, &err) || !storage_path(path, &err, "%s/manifest", dir))
		return session_refuse(sess, &err);
	if (!send_file_range(sess, path, 0, 0, true, &err))
	{
		pgbr_log(PGBR_LOG_WARN, "%s: sending the manifest of %s failed: %s", sess->peer, label,
				 err.message);
		return false;
	}
	return true;
}

bool
file_get(Session *sess)
{
	char		label[PGBR_NAME_MAX + 1],
				line[PGBR_TEXT_MAX + 1];
	char	   *out[] = {label, line};
	const size_t maxlens[] = {PGBR_NAME_MAX, PGBR_TEXT_MAX};
	char		dir[REPO_PATH_MAX],
				path[REPO_PATH_MAX];
	PgbrManifestEntry e;
	PgbrError	err;
	bool		ok;

	pgbr_error_init(&err);
	if (!pgbr_strs_decode(sess->in.data, sess->in.len, 2, out, maxlens, &err))
		return session_refuse(sess, &err) && false;
	if (!pgbr_manifest_entry_parse(line, strlen(line), &e, &err) || !backup_dir(sess, label, dir, &err))
		return session_refuse(sess, &err);
	if (e.kind != 'f')
	{
		pgbr_error_set(&err, PGBR_ERR_FORMAT, "\"%s\" is not a file", e.path);
		return session_refuse(sess, &err);
	}
	if (e.bundle[0])
		ok = storage_path(path, &err, "%s/bundle/%s", dir, e.bundle);
	else
		ok = storage_path(path, &err, "%s/pg_data/%s.%s", dir, e.path,
						  e.compress == PGBR_COMPRESS_ZST ? "zst" : "raw");
	if (!ok)
		return session_refuse(sess, &err);
	if (!send_file_range(sess, path, e.bundle[0] ? e.offset : 0, e.repo_size, false, &err))
	{
		pgbr_log(PGBR_LOG_WARN, "%s: sending \"%s\" of %s failed: %s", sess->peer, e.path, label,
				 err.message);
		return false;
	}
	return true;
}

bool
info_handle(Session *sess)
{
	PgbrError	err;
	PgbrStanzaMsg st;
	bool		exists;
	BackupInfo *list;
	int			n;
	char		min[PGBR_NAME_MAX + 1],
				max[PGBR_NAME_MAX + 1];
	PgbrBuf		text;
	bool		ok;

	pgbr_error_init(&err);
	if (!repo_stanza_read(sess->st, sess->stanza, &st, &exists, &err))
		return session_refuse(sess, &err);
	if (!exists)
	{
		pgbr_error_set(&err, PGBR_ERR_STANZA_MISSING, "stanza \"%s\" does not exist in the repository",
					   sess->stanza);
		pgbr_error_hint(&err, "Run SELECT pgbr_stanza_create() on the primary.");
		return session_refuse(sess, &err);
	}
	if (!catalog_list(sess->st, sess->stanza, &list, &n, &err) ||
		!catalog_archive_range(sess->st, sess->stanza, min, max, &err))
		return session_refuse(sess, &err);
	pgbr_buf_init(&text);
	pgbr_buf_printf(&text, "stanza=%s\nsystem-id=%" PRIu64 "\npg-version=%u\narchive-min=%s\narchive-max=%s\n",
					sess->stanza, st.system_id, st.pg_version, min, max);
	for (int i = 0; i < n; i++)
	{
		/* the header minus the label line, which backup= replaces */
		pgbr_buf_printf(&text, "backup=%s\n", list[i].label);
		for (char *p = list[i].header; p && *p;)
		{
			char	   *nl = strchr(p, '\n');
			size_t		len = nl ? (size_t) (nl - p) : strlen(p);

			if (strncmp(p, "label=", 6) != 0)
			{
				pgbr_buf_put(&text, p, len);
				pgbr_buf_put_u8(&text, '\n');
			}
			p += len + (nl ? 1 : 0);
		}
	}
	catalog_free(list, n);
	if (text.len > PGBR_TEXT_MAX * 64)
	{
		pgbr_buf_release(&text);
		pgbr_error_set(&err, PGBR_ERR_RUNTIME, "too many backups to list");
		return session_refuse(sess, &err);
	}
	ok = session_ok_str(sess, (char *) text.data);
	pgbr_buf_release(&text);
	return ok;
}

bool
expire_handle(Session *sess)
{
	PgbrError	err;
	PgbrBuf		report;
	StorageLock *lock;
	bool		ok;

	pgbr_error_init(&err);
	lock = backup_lock_take(sess, &err);
	if (lock == NULL)
		return session_refuse(sess, &err);
	catalog_remove_incomplete(sess->st, sess->stanza);
	pgbr_buf_init(&report);
	pgbr_buf_put(&report, "", 0);
	ok = retention_apply(sess->s, sess->st, sess->stanza, &report, &err);
	storage_unlock(lock);
	if (!ok)
	{
		pgbr_buf_release(&report);
		return session_refuse(sess, &err);
	}
	ok = session_ok_str(sess, (char *) report.data);
	pgbr_buf_release(&report);
	return ok;
}
