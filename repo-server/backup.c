/*
 * backup.c
 *		Writing a backup: BACKUP_BEGIN, BACKUP_JOIN, FILE_PUT, BACKUP_END,
 *		BACKUP_ABORT (docs/backup-protocol.md), and the dispatch of the
 *		other repository requests.
 *
 * Every session of a backup writes the manifest lines of the files it
 * received, in walk order, to its own part file ".part-<id>", made
 * durable and visible when the session ends.  A joined session announces
 * itself with ".join-<id>" first.  The session that began the backup
 * holds backup.lock; at BACKUP_END it waits until every joined session
 * has its part, makes the files durable, merges the parts into the
 * manifest and writes it last.  Until then the backup does not exist for
 * info, restore or expire, and a session that ends without committing
 * removes it.  Nothing here depends on the sessions running on the same
 * host: with an object store, the sessions of one backup may be served by
 * different pgbr-server instances.
 */
#include "server.h"
#include "repo.h"
#include "backup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>


static bool backup_begin(Session *sess);
static bool backup_join(Session *sess);
static bool backup_file_put(Session *sess);
static bool flush_part(BackupSession *b, PgbrError *err);

/*
 * What a session writes once per file -- its part's manifest line, and a
 * small file's content in the open bundle -- is gathered here and written
 * in pieces of WRITE_GATHER bytes: with ten thousand tables, one write per
 * file and per line cost more than everything else the server does.
 *
 * A file is answered OK before its bytes reach storage, as it already was
 * before they were durable (that happens at BACKUP_END).  A gathered write
 * that fails loses files already answered, so the failure sticks: every
 * later FILE_PUT and BACKUP_END of the session is refused with it, and a
 * joined session's part is not committed.
 */
#define WRITE_GATHER	(256 * 1024)

/* writes what was gathered for f; a failure sticks (see above) */
static bool
gather_flush(BackupSession *b, StorageFile *f, PgbrBuf *out, PgbrError *err)
{
	bool		ok = true;

	if (pgbr_error_is_set(&b->lost))
		ok = false;
	else if (out->len > 0 && !storage_write(f, out->data, out->len, &b->lost))
		ok = false;
	pgbr_buf_reset(out);
	if (!ok && !pgbr_error_is_set(err))
		*err = b->lost;
	return ok;
}

/* true when a gathered write failed; err then says why */
static bool
gather_lost(BackupSession *b, PgbrError *err)
{
	if (!pgbr_error_is_set(&b->lost))
		return false;
	if (!pgbr_error_is_set(err))
		*err = b->lost;
	return true;
}

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
			/* the part is committed there: its lines first */
			pgbr_error_init(&err);
			if (sess->backup && !flush_part(sess->backup, &err))
				return session_refuse(sess, &err);
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
	uint8_t		rnd[4];

	memset(b, 0, sizeof(BackupSession));
	pgbr_buf_init(&b->part_out);
	pgbr_buf_init(&b->bundle_out);
	pgbr_error_init(&b->lost);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(b->id, sizeof(b->id), "%d-%02x%02x%02x%02x", (int) getpid(), rnd[0], rnd[1], rnd[2],
			 rnd[3]);
	return b;
}

bool
close_bundle(BackupSession *b, PgbrError *err)
{
	bool		ok = true;

	if (b->bundle_file)
	{
		if (gather_flush(b, b->bundle_file, &b->bundle_out, err))
			ok = storage_commit(b->bundle_file, err);
		else
		{
			storage_discard(b->bundle_file);
			ok = false;
		}
	}
	b->bundle_file = NULL;
	b->bundle[0] = '\0';
	b->bundle_size = 0;
	return ok;
}

void
backup_session_free(Session *sess)
{
	BackupSession *b = sess->backup;

	if (b == NULL)
		return;
	storage_discard(b->bundle_file);
	storage_discard(b->part);
	storage_unlock(b->lock);
	pgbr_buf_release(&b->part_out);
	pgbr_buf_release(&b->bundle_out);
	pgbr_free(b);
	sess->backup = NULL;
}

/* a joined session ends: what it received becomes part of the backup */
static void
finish_joined(Session *sess, BackupSession *b)
{
	PgbrError	err;
	StorageFile *part = b->part;
	bool		ok;

	/* lines or files lost (a gathered write failed): the part is not committed */
	pgbr_error_init(&err);
	ok = flush_part(b, &err);
	b->part = NULL;
	if (ok)
		ok = close_bundle(b, &err);
	else
	{
		storage_discard(b->bundle_file);
		b->bundle_file = NULL;
	}
	if (ok)
		ok = storage_commit(part, &err);
	else
		storage_discard(part);
	if (!ok)
		pgbr_log(PGBR_LOG_WARN, "backup %s of stanza \"%s\": the files of this session are lost: %s",
				 b->label, sess->stanza, err.message);
}

void
backup_session_cleanup(Session *sess)
{
	BackupSession *b = sess->backup;

	if (b == NULL)
		return;
	if (!b->main && b->part)
		finish_joined(sess, b);
	else if (b->main && !b->committed)
	{
		PgbrError	err;
		char		token[REPO_PATH_MAX];

		pgbr_error_init(&err);
		pgbr_log(PGBR_LOG_WARN, "backup %s of stanza \"%s\" was not completed: removing it",
				 b->label, sess->stanza);

		/*
		 * Joined sessions may still be writing: without the token they are
		 * refused from now on, and their parts tell when they are gone.
		 * Removing the tree before that could leave it half removed.
		 */
		storage_discard(b->bundle_file);
		storage_discard(b->part);
		b->bundle_file = NULL;
		b->part = NULL;
		pgbr_buf_reset(&b->part_out);
		pgbr_buf_reset(&b->bundle_out);
		if (!storage_path(token, &err, "%s/.token", b->dir) ||
			!storage_remove(sess->st, token, &err) ||
			!wait_for_sessions(sess, b, 30, false, &err) ||
			!storage_remove_tree(sess->st, b->dir, &err))
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
	char		path[REPO_PATH_MAX];

	if (!storage_path(path, err, "%s/.part-%s", b->dir, b->id))
		return false;
	b->part = storage_create(sess->st, path, 0, err);
	return b->part != NULL;
}

StorageLock *
backup_lock_take(Session *sess, PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	StorageLock *l;

	if (!storage_path(path, err, "%s/backup.lock", sess->stanza))
		return NULL;
	l = storage_lock(sess->st, path, 0, err);
	if (l == NULL && err->code == PGBR_ERR_LOCK)
	{
		char		detail[sizeof(err->message)];

		snprintf(detail, sizeof(detail), "%s", err->message);
		pgbr_error_init(err);
		pgbr_error_set(err, PGBR_ERR_LOCK,
					   "a backup or expire of stanza \"%s\" is already running (%s)", sess->stanza,
					   detail);
		pgbr_error_hint(err, "Wait for it to finish: one backup per stanza runs at a time.");
	}
	return l;
}

typedef struct NameSeen
{
	const char *name;
	bool		seen;
} NameSeen;

static bool
name_seen(void *arg, const StorageEntry *e, PgbrError *err)
{
	NameSeen   *n = arg;

	if (strcmp(e->name, n->name) == 0)
	{
		n->seen = true;
		return false;
	}
	return true;
}

/* whether "<stanza>/backup/<label>" has anything in it */
static bool
label_taken(Session *sess, const char *label, bool *taken, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	NameSeen	n = {label, false};

	if (!storage_path(dir, err, "%s/backup", sess->stanza) ||
		!storage_list(sess->st, dir, label, name_seen, &n, err))
		return false;
	*taken = n.seen;
	return true;
}

static void
settings_for_backup(const Session *sess, BackupSession *b)
{
	const PgbrConfig *cfg = sess->s->cfg;

	/* a [stanza] section of the server's configuration overrides [global] */
	b->bundling = pgbr_config_get_bool_for(cfg, sess->stanza, "repo1-bundle");
	b->bundle_limit = (uint64_t) pgbr_config_get_int_for(cfg, sess->stanza, "repo1-bundle-limit");
	b->bundle_max = (uint64_t) pgbr_config_get_int_for(cfg, sess->stanza, "repo1-bundle-size");
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
	char		path[REPO_PATH_MAX];
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
	if (!repo_stanza_read(sess->st, sess->stanza, &st, &exists, &err))
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
	b->lock = backup_lock_take(sess, &err);
	if (b->lock == NULL)
	{
		backup_session_free(sess);
		return session_refuse(sess, &err);
	}
	catalog_remove_incomplete(sess->st, sess->stanza);

	/* the prior: diff builds on the newest full, incr on the newest backup */
	if (!catalog_list(sess->st, sess->stanza, &list, &n, &err))
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
		bool		taken;

		make_label(b->label, sizeof(b->label), b->type, full ? full : "");
		if (!storage_path(b->dir, &err, "%s/backup/%s", sess->stanza, b->label) ||
			!label_taken(sess, b->label, &taken, &err))
		{
			backup_session_free(sess);
			return session_refuse(sess, &err);
		}
		if (!taken || attempt >= 3)
			break;
		sleep(1);				/* same second as an earlier backup */
	}
	if (!open_part(sess, &err))
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
	if (!storage_path(path, &err, "%s/.token", b->dir) ||
		!storage_put(sess->st, path, token, 32, &err))
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
	char		host[256] = "";
	PgbrBuf		have;
	PgbrBuf		marker;
	bool		missing = true;
	bool		ok;

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
	pgbr_buf_init(&have);
	ok = storage_path(b->dir, &err, "%s/backup/%s", sess->stanza, label) &&
		storage_path(path, &err, "%s/.token", b->dir) &&
		storage_get(sess->st, path, 64, &have, &missing, &err);
	if (!ok)
	{
		pgbr_buf_release(&have);
		backup_session_free(sess);
		return session_refuse(sess, &err);
	}
	if (missing || have.len != strlen(token) || memcmp(have.data, token, have.len) != 0)
	{
		pgbr_buf_release(&have);
		backup_session_free(sess);
		pgbr_error_set(&err, PGBR_ERR_ACCESS,
					   "backup %s of stanza \"%s\" is not running or the token does not match",
					   label, sess->stanza);
		return session_refuse(sess, &err);
	}
	pgbr_buf_release(&have);
	settings_for_backup(sess, b);

	/* the marker tells BACKUP_END to wait for this session's part */
	gethostname(host, sizeof(host) - 1);
	pgbr_buf_init(&marker);
	pgbr_buf_printf(&marker, "host=%s\npid=%d\n", host, (int) getpid());
	ok = storage_path(path, &err, "%s/.join-%s", b->dir, b->id) &&
		storage_put(sess->st, path, marker.data, marker.len, &err) &&
		open_part(sess, &err);
	pgbr_buf_release(&marker);
	if (!ok)
	{
		backup_session_free(sess);
		return session_refuse(sess, &err);
	}
	return session_ok(sess, NULL, 0);
}

/*
 * The backup's .token exists until the backup is committed or removed.
 * Looked at no more than once a second: a joined session that writes one
 * more file after the main session ended has that file removed with the
 * rest (the main session waits for its part before it removes the tree).
 */
static bool
backup_running(Session *sess, BackupSession *b, PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	bool		exists;
	int64_t		now = (int64_t) time(NULL);

	if (b->running_checked == now)
		return true;
	if (!storage_path(path, err, "%s/.token", b->dir) ||
		!storage_exists(sess->st, path, &exists, err))
		return false;
	if (exists)
		b->running_checked = now;
	return exists;
}

static bool
reference_exists(Session *sess, BackupSession *b, const char *label, PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	bool		exists;

	if (strcmp(b->reference_ok, label) == 0)
		return true;
	if (!storage_path(path, err, "%s/backup/%s/manifest", sess->stanza, label) ||
		!storage_exists(sess->st, path, &exists, err))
		return false;
	if (exists)
		snprintf(b->reference_ok, sizeof(b->reference_ok), "%s", label);
	return exists;
}

/*
 * Where the content of a file goes: the open bundle (opening one when
 * needed), or a file of its own that the caller commits.
 */
static StorageFile *
open_target(Session *sess, PgbrManifestEntry *e, PgbrError *err)
{
	BackupSession *b = sess->backup;
	char		path[REPO_PATH_MAX];
	StorageFile *f;

	if (b->bundling && e->size <= b->bundle_limit)
	{
		if (b->bundle_file == NULL)
		{
			snprintf(b->bundle, sizeof(b->bundle), "%s-%d", b->id, ++b->bundle_seq);
			if (!storage_path(path, err, "%s/bundle/%s", b->dir, b->bundle))
				return NULL;
			b->bundle_file = storage_create(sess->st, path, STORAGE_DEFER_SYNC, err);
			if (b->bundle_file == NULL)
				return NULL;
			b->bundle_size = 0;
		}
		snprintf(e->bundle, sizeof(e->bundle), "%s", b->bundle);
		e->offset = b->bundle_size;
		return b->bundle_file;
	}
	e->bundle[0] = '\0';
	e->offset = 0;
	if (!storage_path(path, err, "%s/pg_data/%s.%s", b->dir, e->path,
					  e->compress == PGBR_COMPRESS_ZST ? "zst" : "raw"))
		return NULL;
	f = storage_create(sess->st, path, STORAGE_DEFER_SYNC, err);
	return f;
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

/* content for f: gathered when f is the open bundle */
static bool
target_write(BackupSession *b, StorageFile *f, const void *data, size_t len, PgbrError *err)
{
	PgbrBuf    *out = &b->bundle_out;

	if (f != b->bundle_file)
		return storage_write(f, data, len, err);
	pgbr_buf_put(out, data, len);
	return out->len < WRITE_GATHER || gather_flush(b, f, out, err);
}

/* receives the content; false = connection unusable, refusal in verr */
static bool
receive_file(Session *sess, PgbrManifestEntry *e, StorageFile *f, PgbrError *verr)
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
			if (!pgbr_error_is_set(verr) &&
				target_write(sess->backup, f, sess->in.data, sess->in.len, verr))
				stored += sess->in.len;
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

/* writes the part's gathered lines */
static bool
flush_part(BackupSession *b, PgbrError *err)
{
	if (b->part == NULL)
		return !gather_lost(b, err);
	return gather_flush(b, b->part, &b->part_out, err);
}

static bool
write_part_line(BackupSession *b, const PgbrManifestEntry *e, PgbrError *err)
{
	PgbrBuf    *out = &b->part_out;

	pgbr_manifest_entry_format(e, out);
	if (out->len >= WRITE_GATHER && !flush_part(b, err))
		return false;
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
	StorageFile *f;
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
	if (gather_lost(b, &err))
		return (!has_data || session_drain_stream(sess)) && session_refuse(sess, &err) && false;
	if (b->have_last && pgbr_manifest_cmp(b->last.path, b->last.kind, e.path, e.kind) >= 0)
	{
		pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "\"%s\" sent after \"%s\": files must come in walk order",
					   e.path, b->last.path);
		return (!has_data || session_drain_stream(sess)) && session_refuse(sess, &err) && false;
	}
	if (!b->main && !backup_running(sess, b, &err))
	{
		/*
		 * The main session ended and the backup was removed: a joined session
		 * (a helper, or the standby's copy) must not recreate its directory.
		 */
		if (!pgbr_error_is_set(&err))
			pgbr_error_set(&err, PGBR_ERR_BACKUP, "backup %s of stanza \"%s\" is no longer running",
						   b->label, sess->stanza);
		return (!has_data || session_drain_stream(sess)) && session_refuse(sess, &err) && false;
	}
	if (e.reference[0] && !reference_exists(sess, b, e.reference, &err))
	{
		if (!pgbr_error_is_set(&err))
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

	f = open_target(sess, &e, &err);
	if (f == NULL)
		return session_drain_stream(sess) && session_refuse(sess, &err);
	e.has_sha = false;
	e.bad_pages[0] = '\0';
	ok = receive_file(sess, &e, f, &err);
	if (e.bundle[0] == '\0')
	{
		/* a file that failed is not kept: its line is never written */
		if (!ok || pgbr_error_is_set(&err))
			storage_discard(f);
		else
			(void) storage_commit(f, &err);
	}
	else
	{
		b->bundle_size += e.repo_size;
		if (ok && !pgbr_error_is_set(&err) && b->bundle_size >= b->bundle_max)
			(void) close_bundle(b, &err);
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
