/*
 * backup.c
 *		Writing a backup: BACKUP_BEGIN, BACKUP_JOIN, FILE_PUT, BACKUP_END,
 *		BACKUP_ABORT (docs/backup-protocol.md), and the dispatch of the
 *		other repository requests.
 *
 * Every session of a backup writes the manifest lines of the files it
 * received, in walk order, to its own part file.  The session that began
 * the backup holds backup.lock; at BACKUP_END it waits for the other
 * sessions to end, flushes the file system, merges the parts into the
 * manifest and writes it last.  Until then the backup does not exist for
 * info, restore or expire, and a session that ends without committing
 * removes it.
 */
#include "server.h"
#include "repo.h"
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>


static bool backup_begin(Session *sess);
static bool backup_join(Session *sess);
static bool backup_file_put(Session *sess);

bool
backup_dispatch(Session *sess, const PgbrFrameHeader *hdr)
{
	PgbrError	err;

	switch (hdr->type)
	{
		case PGBR_MSG_BACKUP_BEGIN:
			return backup_begin(sess);
		case PGBR_MSG_BACKUP_JOIN:
			return backup_join(sess);
		case PGBR_MSG_FILE_PUT:
			return backup_file_put(sess);
		case PGBR_MSG_BACKUP_END:
			return backup_end(sess);
		case PGBR_MSG_BACKUP_ABORT:
			return backup_abort(sess);
		case PGBR_MSG_MANIFEST_GET:
			return manifest_get(sess);
		case PGBR_MSG_FILE_GET:
			return file_get(sess);
		case PGBR_MSG_INFO:
			return info_handle(sess);
		case PGBR_MSG_EXPIRE:
			return expire_handle(sess);
		case PGBR_MSG_VERIFY:
			return verify_handle(sess);
		default:
			pgbr_error_init(&err);
			pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "unexpected %s request",
						   pgbr_msg_name(hdr->type));
			session_refuse(sess, &err);
			return false;
	}
}

static BackupSession *
backup_session_new(void)
{
	BackupSession *b = pgbr_malloc(sizeof(BackupSession));

	memset(b, 0, sizeof(BackupSession));
	b->lock_fd = -1;
	b->sessions_fd = -1;
	b->part_fd = -1;
	b->bundle_fd = -1;
	pgbr_buf_init(&b->line);
	return b;
}

void
close_bundle(BackupSession *b)
{
	if (b->bundle_fd >= 0)
		close(b->bundle_fd);
	b->bundle_fd = -1;
	b->bundle[0] = '\0';
	b->bundle_size = 0;
}

void
backup_session_free(Session *sess)
{
	BackupSession *b = sess->backup;

	if (b == NULL)
		return;
	close_bundle(b);
	if (b->part_fd >= 0)
		close(b->part_fd);
	if (b->sessions_fd >= 0)
		close(b->sessions_fd);
	repo_unlock(b->lock_fd);
	pgbr_buf_release(&b->line);
	pgbr_free(b);
	sess->backup = NULL;
}

void
backup_session_cleanup(Session *sess)
{
	BackupSession *b = sess->backup;

	if (b == NULL)
		return;
	if (b->main && !b->committed)
	{
		PgbrError	err;

		char		token[REPO_PATH_MAX];

		pgbr_error_init(&err);
		pgbr_log(PGBR_LOG_WARN, "backup %s of stanza \"%s\" was not completed: removing it",
				 b->label, sess->stanza);

		/*
		 * Joined sessions may still be writing: without the token they are
		 * refused from now on, and their shared lock tells when they are
		 * gone.  Removing the tree before that could leave it half removed.
		 */
		snprintf(token, sizeof(token), "%s/.token", b->dir);
		unlink(token);
		if (!wait_for_sessions(b, 30, &err) || !catalog_remove_tree(b->dir, &err))
			pgbr_log(PGBR_LOG_WARN, "%s (the next backup or expire removes it)", err.message);
	}
	backup_session_free(sess);
}

/* label from the server clock; distinct from every existing backup */
static void
make_label(char *out, size_t len, const char *type, const char *full)
{
	time_t		now = time(NULL);
	struct tm	tm;
	char		stamp[32];

	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	if (strcmp(type, "full") == 0)
		snprintf(out, len, "%sF", stamp);
	else
		snprintf(out, len, "%s_%s%c", full, stamp, strcmp(type, "diff") == 0 ? 'D' : 'I');
}

static bool
open_part(Session *sess, PgbrError *err)
{
	BackupSession *b = sess->backup;

	snprintf(b->part_path, sizeof(b->part_path), "%s/.part-%d", b->dir, (int) getpid());
	b->part_fd = open(b->part_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (b->part_fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create \"%s\"", b->part_path);
	return true;
}

/* a shared lock on .sessions tells BACKUP_END that this session still writes */
static bool
hold_sessions_lock(BackupSession *b, int how, PgbrError *err)
{
	char		path[REPO_PATH_MAX];

	snprintf(path, sizeof(path), "%s/.sessions", b->dir);
	b->sessions_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (b->sessions_fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
	if (flock(b->sessions_fd, how) != 0)
		return pgbr_error_errno(err, PGBR_ERR_LOCK, "could not lock \"%s\"", path);
	return true;
}

static void
settings_for_backup(const Session *sess, BackupSession *b)
{
	b->bundling = pgbr_config_get_bool(sess->s->cfg, "repo1-bundle");
	b->bundle_limit = (uint64_t) pgbr_config_get_int(sess->s->cfg, "repo1-bundle-limit");
	b->bundle_max = (uint64_t) pgbr_config_get_int(sess->s->cfg, "repo1-bundle-size");
}

static bool
backup_begin(Session *sess)
{
	char		type[8],
				sysid[32],
				pgver[16],
				from[16];
	char	   *out[] = {type, sysid, pgver, from};
	const size_t maxlens[] = {sizeof(type) - 1, sizeof(sysid) - 1, sizeof(pgver) - 1,
	sizeof(from) - 1};
	PgbrError	err;
	PgbrStanzaMsg st;
	bool		exists;
	BackupSession *b;
	BackupInfo *list = NULL;
	int			n = 0;
	const char *full = NULL;
	uint8_t		rnd[16];
	char		token[33];
	PgbrBuf		body;
	const char *answer[4];
	bool		ok;

	pgbr_error_init(&err);
	if (!pgbr_strs_decode(sess->in.data, sess->in.len, 4, out, maxlens, &err))
		return session_refuse(sess, &err) && false;
	if (sess->backup)
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "this session already writes a backup");
		return session_refuse(sess, &err);
	}
	if (strcmp(type, "full") != 0 && strcmp(type, "diff") != 0 && strcmp(type, "incr") != 0)
	{
		pgbr_error_set(&err, PGBR_ERR_OPTION, "invalid backup type \"%s\"", type);
		pgbr_error_hint(&err, "Use full, diff or incr.");
		return session_refuse(sess, &err);
	}
	if (!repo_stanza_read(sess->s->repo_path, sess->stanza, &st, &exists, &err))
		return session_refuse(sess, &err);
	if (!exists)
	{
		pgbr_error_set(&err, PGBR_ERR_STANZA_MISSING,
					   "stanza \"%s\" does not exist in the repository", sess->stanza);
		pgbr_error_hint(&err, "Run SELECT pgbr_stanza_create() on the primary first.");
		return session_refuse(sess, &err);
	}
	if (strtoull(sysid, NULL, 10) != st.system_id)
	{
		pgbr_error_set(&err, PGBR_ERR_ARCHIVE_MISMATCH,
					   "stanza \"%s\" belongs to another cluster: system identifier %" PRIu64 " in the repository, %s here",
					   sess->stanza, st.system_id, sysid);
		return session_refuse(sess, &err);
	}

	b = backup_session_new();
	sess->backup = b;
	b->main = true;
	b->lock_fd = repo_lock(sess->s->repo_path, sess->stanza, "backup", false, &err);
	if (b->lock_fd < 0)
	{
		backup_session_free(sess);
		if (err.code == PGBR_ERR_LOCK)
		{
			pgbr_error_init(&err);
			pgbr_error_set(&err, PGBR_ERR_LOCK,
						   "a backup or expire of stanza \"%s\" is already running", sess->stanza);
			pgbr_error_hint(&err, "Wait for it to finish: one backup per stanza runs at a time.");
		}
		return session_refuse(sess, &err);
	}
	catalog_remove_incomplete(sess->s->repo_path, sess->stanza);

	/* the prior: diff builds on the newest full, incr on the newest backup */
	if (!catalog_list(sess->s->repo_path, sess->stanza, &list, &n, &err))
	{
		backup_session_free(sess);
		return session_refuse(sess, &err);
	}
	snprintf(b->type, sizeof(b->type), "%s", type);
	for (int i = n - 1; i >= 0 && b->prior[0] == '\0'; i--)
	{
		if (strcmp(type, "incr") == 0 || strcmp(list[i].type, "full") == 0)
			snprintf(b->prior, sizeof(b->prior), "%s", list[i].label);
	}
	if (strcmp(type, "full") == 0)
		b->prior[0] = '\0';
	else if (b->prior[0] == '\0')
		snprintf(b->type, sizeof(b->type), "full");
	if (b->prior[0])
	{
		static char fullbuf[PGBR_NAME_MAX + 1];

		snprintf(fullbuf, sizeof(fullbuf), "%.16s", b->prior);
		full = fullbuf;
	}
	catalog_free(list, n);

	for (int attempt = 0;; attempt++)
	{
		make_label(b->label, sizeof(b->label), b->type, full ? full : "");
		if (!repo_path(b->dir, sess->s->repo_path, sess->stanza, "/backup/") ||
			strlen(b->dir) + strlen(b->label) >= sizeof(b->dir))
		{
			pgbr_error_set(&err, PGBR_ERR_FILE_WRITE, "backup path is too long");
			backup_session_free(sess);
			return session_refuse(sess, &err);
		}
		strcat(b->dir, b->label);
		if (access(b->dir, F_OK) != 0 || attempt >= 3)
			break;
		sleep(1);				/* same second as an earlier backup */
	}
	if (!repo_mkdir_p(b->dir, &err) || !open_part(sess, &err))
	{
		backup_session_free(sess);
		return session_refuse(sess, &err);
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
	{
		pgbr_error_set(&err, PGBR_ERR_RUNTIME, "could not generate a session token");
		backup_session_cleanup(sess);
		return session_refuse(sess, &err);
	}
	for (int i = 0; i < 16; i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	if (!repo_write_file(b->dir, ".token", token, 32, &err))
	{
		backup_session_cleanup(sess);
		return session_refuse(sess, &err);
	}
	settings_for_backup(sess, b);

	pgbr_log(PGBR_LOG_INFO, "backup %s of stanza \"%s\" begins (%s from %s%s%s, CN \"%s\")",
			 b->label, sess->stanza, b->type, from, b->prior[0] ? ", prior " : "", b->prior,
			 sess->cn);
	answer[0] = b->label;
	answer[1] = b->prior;
	answer[2] = b->type;
	answer[3] = token;
	pgbr_buf_init(&body);
	pgbr_strs_encode(&body, 4, answer);
	ok = session_ok(sess, body.data, body.len);
	pgbr_buf_release(&body);
	return ok;
}

static bool
backup_join(Session *sess)
{
	char		label[PGBR_NAME_MAX + 1],
				token[PGBR_NAME_MAX + 1];
	char	   *out[] = {label, token};
	const size_t maxlens[] = {PGBR_NAME_MAX, PGBR_NAME_MAX};
	PgbrError	err;
	BackupSession *b;
	char		path[REPO_PATH_MAX];
	char		have[40] = "";
	FILE	   *f;

	pgbr_error_init(&err);
	if (!pgbr_strs_decode(sess->in.data, sess->in.len, 2, out, maxlens, &err))
		return session_refuse(sess, &err) && false;
	if (sess->backup || !pgbr_label_valid(label))
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "invalid BACKUP_JOIN for \"%s\"", label);
		return session_refuse(sess, &err);
	}
	b = backup_session_new();
	sess->backup = b;
	snprintf(b->label, sizeof(b->label), "%s", label);
	if (!repo_path(b->dir, sess->s->repo_path, sess->stanza, "/backup/"))
		return session_refuse(sess, &err);
	strncat(b->dir, label, sizeof(b->dir) - strlen(b->dir) - 1);
	snprintf(path, sizeof(path), "%s/.token", b->dir);
	f = fopen(path, "r");
	if (f)
	{
		if (fgets(have, sizeof(have), f) == NULL)
			have[0] = '\0';
		fclose(f);
	}
	if (have[0] == '\0' || strcmp(have, token) != 0)
	{
		backup_session_free(sess);
		pgbr_error_set(&err, PGBR_ERR_ACCESS,
					   "backup %s of stanza \"%s\" is not running or the token does not match",
					   label, sess->stanza);
		return session_refuse(sess, &err);
	}
	settings_for_backup(sess, b);
	if (!hold_sessions_lock(b, LOCK_SH, &err) || !open_part(sess, &err))
	{
		backup_session_free(sess);
		return session_refuse(sess, &err);
	}
	return session_ok(sess, NULL, 0);
}

/* the backup's .token exists until the backup is committed or removed */
static bool
backup_running(const BackupSession *b)
{
	char		path[REPO_PATH_MAX];

	snprintf(path, sizeof(path), "%s/.token", b->dir);
	return access(path, F_OK) == 0;
}

static bool
reference_exists(Session *sess, const char *label)
{
	char		path[REPO_PATH_MAX];
	char		suffix[PGBR_NAME_MAX + 32];

	snprintf(suffix, sizeof(suffix), "/backup/%s/manifest", label);
	return repo_path(path, sess->s->repo_path, sess->stanza, suffix) && access(path, F_OK) == 0;
}

/* where the content of a non-bundled file goes */
static bool
data_path(char *out, const char *dir, const PgbrManifestEntry *e)
{
	int			n = snprintf(out, REPO_PATH_MAX, "%s/pg_data/%s.%s", dir, e->path,
							 e->compress == PGBR_COMPRESS_ZST ? "zst" : "raw");

	return n > 0 && n < REPO_PATH_MAX;
}

static int
open_target(Session *sess, PgbrManifestEntry *e, PgbrError *err)
{
	BackupSession *b = sess->backup;
	char		path[REPO_PATH_MAX];
	int			fd;

	if (b->bundling && e->size <= b->bundle_limit)
	{
		if (b->bundle_fd < 0)
		{
			char		dir[REPO_PATH_MAX];

			snprintf(dir, sizeof(dir), "%s/bundle", b->dir);
			if (!repo_mkdir_p(dir, err))
				return -1;
			snprintf(b->bundle, sizeof(b->bundle), "%d-%d", (int) getpid(), ++b->bundle_seq);
			snprintf(path, sizeof(path), "%s/%s", dir, b->bundle);
			b->bundle_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
			if (b->bundle_fd < 0)
			{
				pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create \"%s\"", path);
				return -1;
			}
			b->bundle_size = 0;
		}
		snprintf(e->bundle, sizeof(e->bundle), "%s", b->bundle);
		e->offset = b->bundle_size;
		return b->bundle_fd;
	}
	e->bundle[0] = '\0';
	e->offset = 0;
	if (!data_path(path, b->dir, e))
	{
		pgbr_error_set(err, PGBR_ERR_FILE_WRITE, "path of \"%s\" is too long", e->path);
		return -1;
	}
	{
		char		parent[REPO_PATH_MAX];
		char	   *slash;

		snprintf(parent, sizeof(parent), "%s", path);
		slash = strrchr(parent, '/');
		*slash = '\0';
		if (!repo_mkdir_p(parent, err))
			return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create \"%s\"", path);
	return fd;
}

/* the END payload of a file: SHA-256 then the bad-pages string */
static bool
parse_trailer(const PgbrBuf *in, PgbrManifestEntry *e, PgbrError *err)
{
	PgbrReader	r;

	pgbr_reader_init(&r, in->data, in->len);
	pgbr_reader_bytes(&r, e->sha256, 32);
	pgbr_reader_str(&r, e->bad_pages, sizeof(e->bad_pages) - 1);
	if (!pgbr_reader_done(&r))
		return pgbr_error_set(err, PGBR_ERR_PROTOCOL, "file \"%s\" ended without a valid checksum trailer",
							  e->path);
	for (const char *p = e->bad_pages; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == ','))
			return pgbr_error_set(err, PGBR_ERR_PROTOCOL, "invalid bad-pages list for \"%s\"", e->path);
	e->has_sha = true;
	return true;
}

/* receives the content; false = connection unusable, refusal in verr */
static bool
receive_file(Session *sess, PgbrManifestEntry *e, int fd, PgbrError *verr)
{
	PgbrError	err;
	uint64_t	stored = 0;

	pgbr_error_init(&err);
	for (;;)
	{
		PgbrFrameHeader hdr;

		if (!pgbr_conn_recv(sess->conn, &hdr, &sess->in, &err))
		{
			pgbr_log(PGBR_LOG_WARN, "%s: upload of \"%s\" interrupted: %s", sess->peer, e->path,
					 err.message);
			return false;
		}
		if (hdr.type == PGBR_MSG_DATA)
		{
			const uint8_t *p = sess->in.data;
			size_t		len = sess->in.len;

			while (!pgbr_error_is_set(verr) && len > 0)
			{
				ssize_t		n = write(fd, p, len);

				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0)
				{
					pgbr_error_errno(verr, PGBR_ERR_FILE_WRITE,
									 "could not write \"%s\" of backup %s", e->path,
									 sess->backup->label);
					break;
				}
				p += n;
				len -= (size_t) n;
				stored += (uint64_t) n;
			}
			continue;
		}
		if (hdr.type != PGBR_MSG_END)
		{
			pgbr_log(PGBR_LOG_WARN, "%s: unexpected %s message while receiving \"%s\"",
					 sess->peer, pgbr_msg_name(hdr.type), e->path);
			return false;
		}
		if (!pgbr_error_is_set(verr))
			parse_trailer(&sess->in, e, verr);
		e->repo_size = stored;
		return true;
	}
}

static bool
write_part_line(BackupSession *b, const PgbrManifestEntry *e, PgbrError *err)
{
	const uint8_t *p;
	size_t		len;

	pgbr_buf_reset(&b->line);
	pgbr_manifest_entry_format(e, &b->line);
	p = b->line.data;
	len = b->line.len;
	while (len > 0)
	{
		ssize_t		n = write(b->part_fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write \"%s\"", b->part_path);
		p += n;
		len -= (size_t) n;
	}
	b->last = *e;
	b->have_last = true;
	return true;
}

static bool
backup_file_put(Session *sess)
{
	BackupSession *b = sess->backup;
	PgbrManifestEntry e;
	PgbrError	err;
	char		line[PGBR_TEXT_MAX + 1];
	bool		has_data;
	char		answer[32];
	int			fd;
	bool		ok;

	pgbr_error_init(&err);
	if (!pgbr_name_decode(sess->in.data, sess->in.len, line, PGBR_TEXT_MAX, &err) ||
		!pgbr_manifest_entry_parse(line, strlen(line), &e, &err))
		return session_refuse(sess, &err) && false;
	has_data = e.kind == 'f' && e.reference[0] == '\0';
	if (b == NULL)
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "FILE_PUT outside a backup");
		return (!has_data || session_drain_stream(sess)) && session_refuse(sess, &err) && false;
	}
	if (b->have_last && pgbr_manifest_cmp(b->last.path, b->last.kind, e.path, e.kind) >= 0)
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "\"%s\" sent after \"%s\": files must come in walk order",
					   e.path, b->last.path);
		return (!has_data || session_drain_stream(sess)) && session_refuse(sess, &err) && false;
	}
	if (!b->main && !backup_running(b))
	{
		/*
		 * The main session ended and the backup was removed: a joined session
		 * (a helper, or the standby's copy) must not recreate its directory.
		 */
		pgbr_error_set(&err, PGBR_ERR_BACKUP, "backup %s of stanza \"%s\" is no longer running",
					   b->label, sess->stanza);
		return (!has_data || session_drain_stream(sess)) && session_refuse(sess, &err) && false;
	}
	if (e.reference[0] && !reference_exists(sess, e.reference))
	{
		pgbr_error_set(&err, PGBR_ERR_BACKUP, "\"%s\" refers to backup %s, which is not in the repository",
					   e.path, e.reference);
		return session_refuse(sess, &err);
	}
	if (!has_data)
	{
		if (!write_part_line(b, &e, &err))
			return session_refuse(sess, &err);
		return session_ok_str(sess, "0");
	}

	fd = open_target(sess, &e, &err);
	if (fd < 0)
		return session_drain_stream(sess) && session_refuse(sess, &err);
	e.has_sha = false;
	e.bad_pages[0] = '\0';
	ok = receive_file(sess, &e, fd, &err);
	if (e.bundle[0] == '\0')
	{
		if (close(fd) != 0 && !pgbr_error_is_set(&err))
			pgbr_error_errno(&err, PGBR_ERR_FILE_WRITE, "could not close \"%s\"", e.path);
	}
	else
	{
		b->bundle_size += e.repo_size;
		if (b->bundle_size >= b->bundle_max)
			close_bundle(b);
	}
	if (!ok)
		return false;
	if (pgbr_error_is_set(&err) || !write_part_line(b, &e, &err))
		return session_refuse(sess, &err);
	if (e.bad_pages[0])
		pgbr_log(PGBR_LOG_WARN, "backup %s: \"%s\" has pages with invalid checksums (blocks %s)",
				 b->label, e.path, e.bad_pages);
	snprintf(answer, sizeof(answer), "%" PRIu64, e.repo_size);
	return session_ok_str(sess, answer);
}
