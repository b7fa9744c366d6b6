/*
 * wal.c
 *		Stanza identity and WAL requests: push, get, find.
 *
 * A pushed file is stored as received (compressed at the source) under a
 * name carrying the SHA-256 of its raw content, sent after the data.
 * Before it is acknowledged the server checks the segment header against
 * the stanza's cluster and makes the file durable: WAL of another cluster
 * never reaches the archive, and damage at rest is caught by every reader.
 */
#include "server.h"
#include "repo.h"
#include "pgbr_wal.h"

#include <inttypes.h>
#include <stdio.h>

static bool
load_stanza(Session *sess, PgbrStanzaMsg *m, PgbrError *err)
{
	bool		exists;

	if (!repo_stanza_read(sess->st, sess->stanza, m, &exists, err))
		return false;
	if (!exists)
	{
		pgbr_error_set(err, PGBR_ERR_STANZA_MISSING,
					   "stanza \"%s\" does not exist in the repository", sess->stanza);
		pgbr_error_hint(err, "Run \"pgbr --stanza=%s stanza-create\" (or SELECT pgbr_stanza_create()) on the primary.",
						sess->stanza);
		return false;
	}
	return true;
}

bool
stanza_handle_create(Session *sess)
{
	PgbrStanzaMsg m;
	PgbrError	err;
	bool		created;

	pgbr_error_init(&err);
	if (!pgbr_stanza_decode(sess->in.data, sess->in.len, &m, &err))
		return session_refuse(sess, &err) && false;
	if (!repo_stanza_create(sess->st, sess->stanza, &m, &created, &err))
		return session_refuse(sess, &err);
	pgbr_log(PGBR_LOG_INFO, "stanza \"%s\" %s (system identifier %" PRIu64 ", PostgreSQL %u) by CN \"%s\"",
			 sess->stanza, created ? "created" : "already exists and matches",
			 m.system_id, m.pg_version / 10000, sess->cn);
	return session_ok(sess, NULL, 0);
}

bool
stanza_handle_get(Session *sess)
{
	PgbrStanzaMsg m;
	PgbrError	err;
	PgbrBuf		b;
	bool		ok;

	pgbr_error_init(&err);
	if (!load_stanza(sess, &m, &err))
		return session_refuse(sess, &err);
	pgbr_buf_init(&b);
	pgbr_stanza_encode(&b, &m);
	ok = session_ok(sess, b.data, b.len);
	pgbr_buf_release(&b);
	return ok;
}

/*
 * Receives the DATA...END stream of a push into file.  Only as much of the
 * content is decompressed as the segment header needs: the SHA-256 of the
 * raw content comes from the sender (TLS protects it in transit), is kept
 * in the stored file's name and checked by archive-get, restore and
 * verify.  Decompressing and hashing every segment again here would cost
 * the repository host about a third of the CPU the sender spends.
 * Returns false only when the connection is unusable; a refusal of the
 * content is left in verr.
 */
static bool
receive_wal(Session *sess, PgbrWalMsg *m, StorageFile *file, const PgbrStanzaMsg *st,
			PgbrError *verr)
{
	PgbrError	err;
	PgbrSink   *peek = pgbr_sink_peek_create(PGBR_WAL_LONG_HEADER_SIZE, NULL);
	PgbrSink   *dec = NULL;
	PgbrSink   *check;
	bool		alive = true;
	PgbrWalKind kind = pgbr_wal_kind(m->name);
	uint64_t	received = 0;

	pgbr_error_init(&err);
	if (m->compress == PGBR_COMPRESS_ZST)
	{
		dec = pgbr_sink_zstd_decompress_create(peek, verr);
		if (dec)
			pgbr_sink_zstd_limit_window(dec, PGBR_ZSTD_WINDOW_LOG_MAX);
	}
	check = dec ? dec : peek;

	for (;;)
	{
		PgbrFrameHeader hdr;
		size_t		seen;

		if (!pgbr_conn_recv(sess->conn, &hdr, &sess->in, &err))
		{
			pgbr_log(PGBR_LOG_WARN, "%s: push of \"%s\" interrupted: %s", sess->peer,
					 m->name, err.message);
			alive = false;
			break;
		}
		if (hdr.type == PGBR_MSG_DATA)
		{
			if (pgbr_error_is_set(verr))
				continue;		/* already refused: drain */
			received += sess->in.len;
			if (!storage_write(file, sess->in.data, sess->in.len, verr))
				continue;
			/*
			 * Feed the decoder small slices, only until the header came
			 * out: a frame cannot make it expand a whole DATA frame.
			 */
			(void) pgbr_sink_peek_data(peek, &seen);
			for (size_t off = 0; seen < PGBR_WAL_LONG_HEADER_SIZE && off < sess->in.len &&
				 !pgbr_error_is_set(verr); off += 512)
			{
				size_t		n = sess->in.len - off < 512 ? sess->in.len - off : 512;

				pgbr_sink_write(check, sess->in.data + off, n, verr);
				(void) pgbr_sink_peek_data(peek, &seen);
			}
			if (pgbr_error_is_set(verr))
			{
				char		msg[900];

				snprintf(msg, sizeof(msg), "%s", verr->message);
				pgbr_error_init(verr);
				pgbr_error_set(verr, PGBR_ERR_CHECKSUM, "WAL file \"%s\" arrived damaged: %s",
							   m->name, msg);
			}
			continue;
		}
		if (hdr.type != PGBR_MSG_END)
		{
			pgbr_log(PGBR_LOG_WARN, "%s: unexpected %s message while receiving \"%s\"",
					 sess->peer, pgbr_msg_name(hdr.type), m->name);
			alive = false;
			break;
		}
		/* END: its payload is the checksum of the raw content */
		if (pgbr_error_is_set(verr))
			break;
		if (sess->in.len != PGBR_SHA256_LEN)
		{
			pgbr_error_set(verr, PGBR_ERR_PROTOCOL, "push of \"%s\" ended without a checksum",
						   m->name);
			break;
		}
		memcpy(m->sha256, sess->in.data, PGBR_SHA256_LEN);
		if (m->compress == PGBR_COMPRESS_NONE && received != m->size)
		{
			pgbr_error_set(verr, PGBR_ERR_CHECKSUM,
						   "WAL file \"%s\" arrived with %" PRIu64 " bytes, %" PRIu64 " announced",
						   m->name, received, m->size);
			break;
		}
		if (pgbr_wal_kind_has_header(kind))
		{
			PgbrWalHeader h;
			size_t		hlen;
			const uint8_t *head = pgbr_sink_peek_data(peek, &hlen);

			if (pgbr_wal_header_parse(head, hlen, &h, verr))
				pgbr_wal_header_check(&h, m->name, st->system_id, st->seg_size, st->pg_version, verr);
			if (kind == PGBR_WAL_SEGMENT && !pgbr_error_is_set(verr) && m->size != st->seg_size)
				pgbr_error_set(verr, PGBR_ERR_FORMAT,
							   "WAL segment \"%s\" has %" PRIu64 " bytes, the stanza's segment size is %u",
							   m->name, m->size, st->seg_size);
		}
		break;
	}
	pgbr_sink_free(dec);
	pgbr_sink_free(peek);
	return alive;
}

static bool
refuse_duplicate(Session *sess, const PgbrWalMsg *m, PgbrError *err)
{
	pgbr_error_set(err, PGBR_ERR_ARCHIVE_DUPLICATE,
				   "WAL file \"%s\" already exists in the repository of stanza \"%s\" with a different checksum",
				   m->name, sess->stanza);
	pgbr_error_hint(err, "Another cluster may be archiving to this stanza: check pgbr.stanza and the stanza's system identifier.");
	return session_refuse(sess, err);
}

/*
 * The name of a stored WAL file carries its checksum, so two pushes of the
 * same segment with different content land under different names.  On
 * posix a lock makes "no other version exists" and the rename atomic.  An
 * object store has no such lock (and several servers may share a bucket):
 * there the push stores its object, then lists again, and if another
 * version is there it removes its own and refuses.  Of two different
 * versions at most one is ever acknowledged: whichever listed second saw
 * the other.
 */
bool
wal_handle_put(Session *sess)
{
	PgbrWalMsg	m;
	PgbrStanzaMsg st;
	PgbrError	err;
	char		dir[REPO_PATH_MAX],
				lockpath[REPO_PATH_MAX],
				final[REPO_PATH_MAX],
				hex[PGBR_SHA256_HEXLEN + 1];
	RepoWalFile existing;
	bool		found;
	StorageFile *file;
	StorageLock *lock = NULL;

	pgbr_error_init(&err);
	if (!pgbr_wal_msg_decode(sess->in.data, sess->in.len, &m, &err))
		return session_refuse(sess, &err) && false;
	if (pgbr_wal_kind(m.name) == PGBR_WAL_INVALID)
	{
		pgbr_error_set(&err, PGBR_ERR_FORMAT, "\"%s\" is not a WAL file name", m.name);
		return session_drain_stream(sess) && session_refuse(sess, &err);
	}
	if (!load_stanza(sess, &st, &err) || !repo_wal_dir(dir, sess->stanza, m.name, &err) ||
		!storage_path(final, &err, "%s/%s", dir, m.name) ||
		(file = storage_create(sess->st, final, 0, &err)) == NULL)
	{
		pgbr_error_set(&err, PGBR_ERR_FILE_WRITE, "could not prepare the archive for \"%s\"", m.name);
		return session_drain_stream(sess) && session_refuse(sess, &err);
	}

	if (!receive_wal(sess, &m, file, &st, &err))
	{
		storage_discard(file);
		return false;
	}
	if (pgbr_error_is_set(&err))
	{
		storage_discard(file);
		return session_refuse(sess, &err);
	}

	if (sess->st->atomic_names &&
		(!storage_path(lockpath, &err, "%s/archive.lock", sess->stanza) ||
		 (lock = storage_lock(sess->st, lockpath, -1, &err)) == NULL))
	{
		storage_discard(file);
		return session_refuse(sess, &err);
	}
	if (!repo_wal_find(sess->st, sess->stanza, m.name, NULL, &existing, &found, &err))
	{
		storage_discard(file);
		storage_unlock(lock);
		return session_refuse(sess, &err);
	}
	if (found)
	{
		storage_discard(file);
		storage_unlock(lock);
		if (memcmp(existing.sha256, m.sha256, PGBR_SHA256_LEN) == 0)
		{
			pgbr_log(PGBR_LOG_DETAIL, "WAL file \"%s\" of stanza \"%s\" already archived with the same checksum",
					 m.name, sess->stanza);
			return session_ok(sess, NULL, 0);
		}
		return refuse_duplicate(sess, &m, &err);
	}
	pgbr_hex_encode(m.sha256, PGBR_SHA256_LEN, hex);
	if (!storage_path(final, &err, "%s/%s-%s.%s", dir, m.name, hex,
					  m.compress == PGBR_COMPRESS_ZST ? "zst" : "raw") ||
		!storage_commit_as(file, final, &err))
	{
		storage_unlock(lock);
		return session_refuse(sess, &err);
	}
	storage_unlock(lock);
	if (!sess->st->atomic_names)
	{
		if (!repo_wal_find(sess->st, sess->stanza, m.name, m.sha256, &existing, &found, &err))
			return session_refuse(sess, &err);
		if (found)
		{
			PgbrError	rerr;

			pgbr_error_init(&rerr);
			if (!storage_remove(sess->st, final, &rerr))
				pgbr_log(PGBR_LOG_WARN, "%s", rerr.message);
			pgbr_log(PGBR_LOG_WARN, "WAL file \"%s\" of stanza \"%s\" was pushed with other content at the same time (\"%s\"): this push is refused",
					 m.name, sess->stanza, existing.path);
			return refuse_duplicate(sess, &m, &err);
		}
	}
	pgbr_log(PGBR_LOG_DETAIL, "archived WAL file \"%s\" of stanza \"%s\"", m.name, sess->stanza);
	return session_ok(sess, NULL, 0);
}

static bool
find_requested(Session *sess, char *name, RepoWalFile *f, PgbrError *err)
{
	bool		found;

	if (!pgbr_name_decode(sess->in.data, sess->in.len, name, PGBR_NAME_MAX, err))
		return false;
	if (pgbr_wal_kind(name) == PGBR_WAL_INVALID)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "\"%s\" is not a WAL file name", name);
	if (!repo_wal_find(sess->st, sess->stanza, name, NULL, f, &found, err))
		return false;
	if (!found)
		return pgbr_error_set(err, PGBR_ERR_NOT_FOUND,
							  "WAL file \"%s\" is not in the archive of stanza \"%s\"",
							  name, sess->stanza);
	return true;
}

bool
wal_handle_find(Session *sess)
{
	char		name[PGBR_NAME_MAX + 1];
	RepoWalFile f;
	PgbrError	err;

	pgbr_error_init(&err);
	if (!find_requested(sess, name, &f, &err))
		return session_refuse(sess, &err);
	return session_ok(sess, NULL, 0);
}

bool
wal_handle_get(Session *sess)
{
	char		name[PGBR_NAME_MAX + 1];
	RepoWalFile f;
	PgbrError	err;
	PgbrWalMsg	m;
	PgbrBuf		b;
	PgbrSink   *out;
	uint8_t    *chunk;
	StorageRead *r;
	bool		missing;
	bool		ok = true;

	pgbr_error_init(&err);
	if (!find_requested(sess, name, &f, &err))
		return session_refuse(sess, &err);
	r = storage_read_open(sess->st, f.path, 0, UINT64_MAX, &missing, &err);
	if (r == NULL)
	{
		if (missing)
			pgbr_error_set(&err, PGBR_ERR_NOT_FOUND,
						   "WAL file \"%s\" of stanza \"%s\" was removed while it was requested",
						   name, sess->stanza);
		return session_refuse(sess, &err);
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", name);
	memcpy(m.sha256, f.sha256, PGBR_SHA256_LEN);
	m.compress = f.compress;
	pgbr_buf_init(&b);
	pgbr_wal_msg_encode(&b, &m);
	if (!pgbr_conn_send(sess->conn, PGBR_MSG_OK, b.data, b.len, &err))
		ok = false;
	pgbr_buf_release(&b);

	out = pgbr_sink_conn_create(sess->conn, NULL);
	chunk = pgbr_malloc(PGBR_CHUNK_SIZE);
	while (ok)
	{
		ssize_t		n = storage_read(r, chunk, PGBR_CHUNK_SIZE, &err);

		if (n < 0)
		{
			/* mid-stream: an ERROR frame ends the stream for the client */
			ok = session_refuse(sess, &err) && false;
			break;
		}
		if (n == 0)
		{
			ok = pgbr_sink_finish(out, &err) && pgbr_conn_flush(sess->conn, &err);
			break;
		}
		ok = pgbr_sink_write(out, chunk, (size_t) n, &err);
	}
	if (pgbr_error_is_set(&err))
		pgbr_log(PGBR_LOG_WARN, "%s: sending \"%s\" failed: %s", sess->peer, name, err.message);
	pgbr_free(chunk);
	pgbr_sink_free(out);
	storage_read_close(r);
	return ok;
}
