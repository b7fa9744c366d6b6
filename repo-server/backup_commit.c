/*
 * backup_commit.c
 *		BACKUP_END and BACKUP_ABORT: the commit of a backup.
 *
 * The manifest is the commit record.  Before it is written every session
 * of the backup has ended with its part complete, the parts are merged in
 * walk order, and the files are made durable (posix: syncfs; s3: every
 * PUT was confirmed): everything the manifest names is durable before the
 * manifest exists.
 */
#include "backup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* header keys the client supplies at BACKUP_END */
static const char *const client_keys[] = {
	"timestamp-start", "timestamp-stop", "lsn-start", "lsn-stop", "wal-start", "wal-stop",
	"backup-from"
};

#define MAX_PARTS 256
/* the manifest's lines go out in writes of about this size */
#define MANIFEST_WRITE_SIZE (256 * 1024)
#define SESSIONS_WAIT_SEC 120

typedef struct Part
{
	StorageRead *r;
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

/* names of the scratch files of a backup directory, by kind */
typedef struct Scratch
{
	char	  (*names)[PGBR_NAME_MAX + 1];
	int			n;
	int			cap;
} Scratch;

static bool
collect_scratch(void *arg, const StorageEntry *e, PgbrError *err)
{
	Scratch    *sc = arg;

	if (e->is_dir || (strncmp(e->name, ".part-", 6) != 0 && strncmp(e->name, ".join-", 6) != 0 &&
					  strcmp(e->name, ".token") != 0))
		return true;
	if (sc->n == sc->cap)
	{
		sc->cap = sc->cap ? sc->cap * 2 : 16;
		sc->names = pgbr_realloc(sc->names, sizeof(*sc->names) * (size_t) sc->cap);
	}
	snprintf(sc->names[sc->n++], PGBR_NAME_MAX + 1, "%s", e->name);
	return true;
}

static bool
list_scratch(Session *sess, BackupSession *b, Scratch *sc, PgbrError *err)
{
	memset(sc, 0, sizeof(*sc));
	return storage_list(sess->st, b->dir, ".", collect_scratch, sc, err);
}

static bool
scratch_has(const Scratch *sc, const char *name)
{
	for (int i = 0; i < sc->n; i++)
		if (strcmp(sc->names[i], name) == 0)
			return true;
	return false;
}

/*
 * Merges the part files of the backup in walk order, sums the totals, and
 * writes the lines to out when it is not NULL (gathered: one write per line
 * was 41,000 system calls for a cluster of 10,000 tables).
 */
static bool
merge_parts(Session *sess, BackupSession *b, Totals *t, StorageFile *out, PgbrError *err)
{
	Part	   *parts = pgbr_malloc(sizeof(Part) * MAX_PARTS);
	int			n = 0;
	Scratch		sc;
	bool		ok;
	PgbrManifestEntry prev;
	bool		have_prev = false;
	PgbrBuf		gathered;	/* manifest lines not written yet */

	memset(t, 0, sizeof(*t));
	pgbr_buf_init(&gathered);
	ok = list_scratch(sess, b, &sc, err);
	for (int i = 0; ok && i < sc.n; i++)
	{
		char		path[REPO_PATH_MAX];
		bool		missing;

		if (strncmp(sc.names[i], ".part-", 6) != 0)
			continue;
		if (n == MAX_PARTS)
		{
			ok = pgbr_error_set(err, PGBR_ERR_BACKUP, "too many sessions in one backup");
			break;
		}
		if (!storage_path(path, err, "%s/%s", b->dir, sc.names[i]))
		{
			ok = false;
			break;
		}
		parts[n].r = storage_read_open(sess->st, path, 0, UINT64_MAX, &missing, err);
		if (parts[n].r == NULL)
		{
			ok = pgbr_error_is_set(err) ? false :
				pgbr_error_set(err, PGBR_ERR_BACKUP, "\"%s\" vanished", path);
			break;
		}
		pgbr_line_reader_init_source(&parts[n].reader, storage_read_source, parts[n].r);
		parts[n].done = false;
		n++;
		ok = part_advance(&parts[n - 1], err);
	}
	pgbr_free(sc.names);

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
		if (out)
		{
			pgbr_buf_put(&gathered, parts[best].line, parts[best].len);
			pgbr_buf_put_u8(&gathered, '\n');
			if (gathered.len >= MANIFEST_WRITE_SIZE)
			{
				if (!storage_write(out, gathered.data, gathered.len, err))
				{
					ok = false;
					break;
				}
				pgbr_buf_reset(&gathered);
			}
		}
		ok = part_advance(&parts[best], err);
	}
	if (ok && out && gathered.len > 0)
		ok = storage_write(out, gathered.data, gathered.len, err);
	for (int i = 0; i < n; i++)
	{
		pgbr_line_reader_free(&parts[i].reader);
		storage_read_close(parts[i].r);
	}
	pgbr_free(parts);
	pgbr_buf_release(&gathered);
	return ok;
}

/* the marker of a joined session served by a process of this host that is gone */
static bool
joined_process_gone(Session *sess, BackupSession *b, const char *marker)
{
	char		path[REPO_PATH_MAX];
	PgbrBuf		body;
	PgbrError	err;
	bool		missing;
	bool		gone = false;

	pgbr_error_init(&err);
	pgbr_buf_init(&body);
	if (storage_path(path, &err, "%s/%s", b->dir, marker) &&
		storage_get(sess->st, path, 1024, &body, &missing, &err) && !missing)
	{
		/* "host=<host>\npid=<pid>\n", written by backup_join */
		char	   *text,
				   *nl;

		pgbr_buf_put_u8(&body, '\0');
		text = (char *) body.data;
		nl = strchr(text, '\n');
		if (strncmp(text, "host=", 5) == 0 && nl && strncmp(nl + 1, "pid=", 4) == 0)
			gone = storage_process_gone(text + 5, (size_t) (nl - text - 5),
										strtol(nl + 5, NULL, 10));
	}
	pgbr_buf_release(&body);
	return gone;
}

bool
wait_for_sessions(Session *sess, BackupSession *b, int seconds, bool need_parts, PgbrError *err)
{
	for (int i = 0; i < seconds * 10; i++)
	{
		struct timespec ts = {0, 100 * 1000 * 1000};
		Scratch		sc;
		bool		waiting = false;

		if (!list_scratch(sess, b, &sc, err))
		{
			pgbr_free(sc.names);
			return false;
		}
		for (int j = 0; j < sc.n && !pgbr_error_is_set(err); j++)
		{
			char		part[PGBR_NAME_MAX + 8];

			if (strncmp(sc.names[j], ".join-", 6) != 0)
				continue;
			snprintf(part, sizeof(part), ".part-%s", sc.names[j] + 6);
			if (scratch_has(&sc, part))
				continue;
			if (!joined_process_gone(sess, b, sc.names[j]))
				waiting = true;
			else if (need_parts)
				pgbr_error_set(err, PGBR_ERR_BACKUP,
							   "backup %s: a session of the backup (%s) ended without completing its part",
							   b->label, sc.names[j] + 6);
		}
		pgbr_free(sc.names);
		if (pgbr_error_is_set(err))
			return false;
		if (!waiting)
			return true;
		storage_lock_refresh(b->lock);
		nanosleep(&ts, NULL);
	}
	return pgbr_error_set(err, PGBR_ERR_BACKUP,
						  "backup %s: other sessions of the backup did not end within %d s",
						  b->label, seconds);
}

static bool
valid_value(const char *v)
{
	return strlen(v) < 128 && strpbrk(v, "\n\r\t") == NULL;
}

static void
remove_scratch(Session *sess, BackupSession *b)
{
	Scratch		sc;
	PgbrError	err;

	pgbr_error_init(&err);
	if (list_scratch(sess, b, &sc, &err))
		for (int i = 0; i < sc.n && !pgbr_error_is_set(&err); i++)
		{
			char		path[REPO_PATH_MAX];

			if (storage_path(path, &err, "%s/%s", b->dir, sc.names[i]))
				(void) storage_remove(sess->st, path, &err);
		}
	if (pgbr_error_is_set(&err))
		pgbr_log(PGBR_LOG_WARN, "backup %s: %s", b->label, err.message);
	pgbr_free(sc.names);
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
	char		path[REPO_PATH_MAX];
	StorageFile *manifest;
	StorageFile *part;
	char		s1[32],
				s2[32];
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
	part = b->part;
	b->part = NULL;
	if (!close_bundle(b, &err) || !storage_commit(part, &err) ||
		!wait_for_sessions(sess, b, SESSIONS_WAIT_SEC, true, &err) ||
		!repo_stanza_read(sess->st, sess->stanza, &st, &exists, &err) ||
		!merge_parts(sess, b, &t, NULL, &err))
		return session_refuse(sess, &err);

	pgbr_buf_init(&head);
	pgbr_buf_printf(&head, "[backup]\nlabel=%s\ntype=%s\nprior=%s\nsystem-id=%" PRIu64
					"\npg-version=%u\n", b->label, b->type, b->prior, st.system_id, st.pg_version);
	for (size_t i = 0; i < PGBR_LENGTHOF(client_keys); i++)
		pgbr_buf_printf(&head, "%s=%s\n", client_keys[i], values[i]);
	pgbr_buf_printf(&head, "size=%" PRIu64 "\ndelta=%" PRIu64 "\nrepo-size=%" PRIu64
					"\nfile-total=%" PRIu64 "\nerror-pages=%" PRIu64 "\n[files]\n",
					t.size, t.delta, t.repo_size, t.files, t.error_pages);

	/* make everything the sessions wrote durable, then write the manifest last */
	if (!storage_sync(sess->st, b->dir, &err) ||
		!storage_path(path, &err, "%s/manifest", b->dir) ||
		(manifest = storage_create(sess->st, path, 0, &err)) == NULL)
	{
		pgbr_buf_release(&head);
		return session_refuse(sess, &err);
	}
	if (!storage_write(manifest, head.data, head.len, &err) ||
		!merge_parts(sess, b, &t, manifest, &err))
	{
		storage_discard(manifest);
		pgbr_buf_release(&head);
		return session_refuse(sess, &err);
	}
	pgbr_buf_release(&head);
	if (!storage_commit(manifest, &err))
		return session_refuse(sess, &err);
	b->committed = true;
	remove_scratch(sess, b);

	pgbr_size_format(t.delta, s1, sizeof(s1));
	pgbr_size_format(t.repo_size, s2, sizeof(s2));
	snprintf(summary, sizeof(summary), "%s backup size = %s, file total = %" PRIu64, b->type, s1,
			 t.files);
	pgbr_log(PGBR_LOG_INFO, "backup %s of stanza \"%s\" committed: %s, repository size %s",
			 b->label, sess->stanza, summary, s2);

	/* retention runs while this session still holds backup.lock */
	pgbr_buf_init(&report);
	pgbr_error_init(&err);
	if (!retention_apply(sess->s, sess->st, sess->stanza, &report, &err))
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
