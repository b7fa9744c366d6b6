/*
 * backup_commit.c
 *		BACKUP_END and BACKUP_ABORT: the commit of a backup.
 *
 * The manifest is the commit record.  Before it is written every session
 * of the backup has ended, the parts are merged in walk order, and the
 * file system holding the backup is flushed (syncfs): everything the
 * manifest names is durable before the manifest exists.
 */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* header keys the client supplies at BACKUP_END */
static const char *const client_keys[] = {
	"timestamp-start", "timestamp-stop", "lsn-start", "lsn-stop", "wal-start", "wal-stop",
	"backup-from"
};

#define MAX_PARTS 256
#define SESSIONS_WAIT_SEC 120

typedef struct Part
{
	int			fd;
	PgbrLineReader reader;
	PgbrManifestEntry entry;
	char	   *line;
	size_t		len;
	bool		done;
} Part;

typedef struct Totals
{
	uint64_t	size;
	uint64_t	delta;
	uint64_t	repo_size;
	uint64_t	files;
	uint64_t	error_pages;
} Totals;

static bool
part_advance(Part *p, PgbrError *err)
{
	if (!pgbr_line_reader_next(&p->reader, &p->line, &p->len, err))
	{
		p->done = true;
		return !pgbr_error_is_set(err);
	}
	return pgbr_manifest_entry_parse(p->line, p->len, &p->entry, err);
}

/*
 * Merges the part files of dir in walk order; calls emit for each entry
 * (with its line) when emit is not NULL, and sums the totals.
 */
static bool
merge_parts(const char *dir, Totals *t, int out_fd, PgbrError *err)
{
	Part	   *parts = pgbr_malloc(sizeof(Part) * MAX_PARTS);
	int			n = 0;
	DIR		   *d = opendir(dir);
	struct dirent *de;
	bool		ok = true;
	PgbrManifestEntry prev;
	bool		have_prev = false;
	PgbrBuf		out;

	memset(t, 0, sizeof(*t));
	pgbr_buf_init(&out);
	if (d == NULL)
	{
		pgbr_free(parts);
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", dir);
	}
	while (ok && (de = readdir(d)) != NULL)
	{
		char		path[REPO_PATH_MAX];

		if (strncmp(de->d_name, ".part-", 6) != 0)
			continue;
		if (n == MAX_PARTS)
		{
			ok = pgbr_error_set(err, PGBR_ERR_BACKUP, "too many sessions in one backup");
			break;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		parts[n].fd = open(path, O_RDONLY | O_CLOEXEC);
		if (parts[n].fd < 0)
		{
			ok = pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
			break;
		}
		pgbr_line_reader_init(&parts[n].reader, parts[n].fd);
		parts[n].done = false;
		n++;
		ok = part_advance(&parts[n - 1], err);
	}
	closedir(d);

	while (ok)
	{
		int			best = -1;

		for (int i = 0; i < n; i++)
			if (!parts[i].done &&
				(best < 0 || pgbr_manifest_cmp(parts[i].entry.path, parts[i].entry.kind,
											   parts[best].entry.path, parts[best].entry.kind) < 0))
				best = i;
		if (best < 0)
			break;
		if (have_prev && pgbr_manifest_cmp(prev.path, prev.kind, parts[best].entry.path,
										   parts[best].entry.kind) >= 0)
		{
			ok = pgbr_error_set(err, PGBR_ERR_BACKUP, "\"%s\" was sent twice", prev.path);
			break;
		}
		prev = parts[best].entry;
		have_prev = true;
		if (prev.kind == 'f')
		{
			t->files++;
			t->size += prev.size;
			if (prev.reference[0] == '\0')
			{
				t->delta += prev.size;
				t->repo_size += prev.repo_size;
			}
			if (prev.bad_pages[0])
				t->error_pages++;
		}
		if (out_fd >= 0)
		{
			pgbr_buf_reset(&out);
			pgbr_buf_put(&out, parts[best].line, parts[best].len);
			pgbr_buf_put_u8(&out, '\n');
			if (write(out_fd, out.data, out.len) != (ssize_t) out.len)
			{
				ok = pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write the manifest");
				break;
			}
		}
		ok = part_advance(&parts[best], err);
	}
	for (int i = 0; i < n; i++)
	{
		pgbr_line_reader_free(&parts[i].reader);
		close(parts[i].fd);
	}
	pgbr_free(parts);
	pgbr_buf_release(&out);
	return ok;
}

/* waits until no joined session holds its shared lock on .sessions */
bool
wait_for_sessions(BackupSession *b, int seconds, PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	int			fd;

	snprintf(path, sizeof(path), "%s/.sessions", b->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
	for (int i = 0; i < seconds * 10; i++)
	{
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		{
			close(fd);
			return true;
		}
		nanosleep(&ts, NULL);
	}
	close(fd);
	return pgbr_error_set(err, PGBR_ERR_BACKUP,
						  "backup %s: other sessions of the backup did not end within %d s",
						  b->label, seconds);
}

static bool
valid_value(const char *v)
{
	return strlen(v) < 128 && strpbrk(v, "\n\r\t") == NULL;
}

static bool
remove_scratch(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return false;
	while ((de = readdir(d)) != NULL)
	{
		char		path[REPO_PATH_MAX];

		if (strncmp(de->d_name, ".part-", 6) != 0 && strcmp(de->d_name, ".token") != 0 &&
			strcmp(de->d_name, ".sessions") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	return true;
}

bool
backup_end(Session *sess)
{
	BackupSession *b = sess->backup;
	PgbrError	err;
	char		text[PGBR_TEXT_MAX + 1];
	char	   *values[PGBR_LENGTHOF(client_keys)];
	PgbrStanzaMsg st;
	bool		exists;
	Totals		t;
	PgbrBuf		head;
	char		tmp[REPO_PATH_MAX],
				final[REPO_PATH_MAX];
	char		s1[32],
				s2[32];
	int			fd,
				dfd;
	char		summary[256];
	PgbrBuf		report;

	pgbr_error_init(&err);
	memset(values, 0, sizeof(values));
	if (!pgbr_name_decode(sess->in.data, sess->in.len, text, PGBR_TEXT_MAX, &err))
		return session_refuse(sess, &err) && false;
	if (b == NULL || !b->main)
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "BACKUP_END from a session that did not begin a backup");
		return session_refuse(sess, &err);
	}
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
	{
		char	   *key,
				   *value;
		bool		known = false;

		if (!pgbr_kv_split(line, &key, &value) || !valid_value(value))
		{
			pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "invalid BACKUP_END line \"%s\"", line);
			return session_refuse(sess, &err);
		}
		for (size_t i = 0; i < PGBR_LENGTHOF(client_keys); i++)
			if (strcmp(key, client_keys[i]) == 0)
			{
				values[i] = value;
				known = true;
			}
		if (!known)
		{
			pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "unknown BACKUP_END key \"%s\"", key);
			return session_refuse(sess, &err);
		}
	}
	for (size_t i = 0; i < PGBR_LENGTHOF(client_keys); i++)
		if (values[i] == NULL)
		{
			pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "BACKUP_END lacks \"%s\"", client_keys[i]);
			return session_refuse(sess, &err);
		}

	/* every session's files are written and its part complete */
	close_bundle(b);
	if (b->part_fd >= 0)
		close(b->part_fd);
	b->part_fd = -1;
	if (!wait_for_sessions(b, SESSIONS_WAIT_SEC, &err) ||
		!repo_stanza_read(sess->s->repo_path, sess->stanza, &st, &exists, &err) ||
		!merge_parts(b->dir, &t, -1, &err))
		return session_refuse(sess, &err);

	pgbr_buf_init(&head);
	pgbr_buf_printf(&head, "[backup]\nlabel=%s\ntype=%s\nprior=%s\nsystem-id=%" PRIu64
					"\npg-version=%u\n", b->label, b->type, b->prior, st.system_id, st.pg_version);
	for (size_t i = 0; i < PGBR_LENGTHOF(client_keys); i++)
		pgbr_buf_printf(&head, "%s=%s\n", client_keys[i], values[i]);
	pgbr_buf_printf(&head, "size=%" PRIu64 "\ndelta=%" PRIu64 "\nrepo-size=%" PRIu64
					"\nfile-total=%" PRIu64 "\nerror-pages=%" PRIu64 "\n[files]\n",
					t.size, t.delta, t.repo_size, t.files, t.error_pages);

	/* flush everything the sessions wrote, then write the manifest last */
	dfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || syncfs(dfd) != 0)
	{
		pgbr_error_errno(&err, PGBR_ERR_FILE_WRITE, "could not flush backup %s to disk", b->label);
		if (dfd >= 0)
			close(dfd);
		pgbr_buf_release(&head);
		return session_refuse(sess, &err);
	}
	close(dfd);
	fd = repo_tmp_open(b->dir, "manifest", tmp, &err);
	if (fd < 0 || write(fd, head.data, head.len) != (ssize_t) head.len ||
		!merge_parts(b->dir, &t, fd, &err))
	{
		pgbr_error_errno(&err, PGBR_ERR_FILE_WRITE, "could not write the manifest of backup %s", b->label);
		if (fd >= 0)
		{
			close(fd);
			unlink(tmp);
		}
		pgbr_buf_release(&head);
		return session_refuse(sess, &err);
	}
	pgbr_buf_release(&head);
	snprintf(final, sizeof(final), "%s/manifest", b->dir);
	if (!repo_commit(fd, tmp, final, &err))
		return session_refuse(sess, &err);
	b->committed = true;
	remove_scratch(b->dir);

	pgbr_size_format(t.delta, s1, sizeof(s1));
	pgbr_size_format(t.repo_size, s2, sizeof(s2));
	snprintf(summary, sizeof(summary), "%s backup size = %s, file total = %" PRIu64, b->type, s1,
			 t.files);
	pgbr_log(PGBR_LOG_INFO, "backup %s of stanza \"%s\" committed: %s, repository size %s",
			 b->label, sess->stanza, summary, s2);

	/* retention runs while this session still holds backup.lock */
	pgbr_buf_init(&report);
	pgbr_error_init(&err);
	if (!retention_apply(sess->s, sess->stanza, &report, &err))
		pgbr_log(PGBR_LOG_WARN, "retention of stanza \"%s\" failed: %s", sess->stanza, err.message);
	pgbr_buf_release(&report);
	backup_session_free(sess);
	return session_ok_str(sess, summary);
}

bool
backup_abort(Session *sess)
{
	PgbrError	err;

	pgbr_error_init(&err);
	if (sess->backup == NULL || !sess->backup->main)
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "BACKUP_ABORT without a backup");
		return session_refuse(sess, &err);
	}
	pgbr_log(PGBR_LOG_INFO, "backup %s of stanza \"%s\" aborted by the client",
			 sess->backup->label, sess->stanza);
	backup_session_cleanup(sess);
	return session_ok(sess, NULL, 0);
}
