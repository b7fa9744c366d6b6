/*
 * verify.c
 *		VERIFY: reads every stored backup file and WAL file back, checks it
 *		against its SHA-256 and reports what is missing or damaged.  The
 *		report streams to the client as it is found.
 */
#include "backup.h"
#include "pgbr_wal.h"

#include <inttypes.h>
#include <stdio.h>

typedef struct Verify
{
	Session    *sess;
	uint64_t	problems;
	uint64_t	files;
	uint64_t	wal;
	bool		broken;			/* the connection failed */
	PgbrBuf		line;
} Verify;

static void
report(Verify *v, bool problem, const char *fmt,...) PGBR_PRINTF(3, 4);

static void
report(Verify *v, bool problem, const char *fmt,...)
{
	va_list		ap;
	char		msg[2048];
	PgbrError	err;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (problem)
	{
		v->problems++;
		pgbr_log(PGBR_LOG_WARN, "verify of stanza \"%s\": %s", v->sess->stanza, msg);
	}
	pgbr_buf_reset(&v->line);
	pgbr_buf_printf(&v->line, "%s\n", msg);
	pgbr_error_init(&err);
	if (!v->broken && !pgbr_conn_send(v->sess->conn, PGBR_MSG_DATA, v->line.data, v->line.len, &err))
		v->broken = true;
}

/*
 * checks a stored byte range: decompress if needed, compare the checksum
 * (whole: a WAL file, plain SHA-256; else a file of a backup, its file sum)
 */
static bool
check_stored(Storage *st, const char *path, uint64_t offset, uint64_t length, bool whole,
			 uint8_t compress, const uint8_t *sha, char *why, size_t whylen)
{
	PgbrError	err;
	bool		missing;
	StorageRead *r;
	PgbrSink   *shasink,
			   *dec = NULL;
	uint8_t    *chunk;
	uint8_t		sum[PGBR_SHA256_LEN];
	bool		ok = true;

	pgbr_error_init(&err);
	r = storage_read_open(st, path, offset, whole ? UINT64_MAX : length, &missing, &err);
	if (r == NULL)
	{
		if (missing)
			snprintf(why, whylen, "missing");
		else
			snprintf(why, whylen, "unreadable: %s", err.message);
		return false;
	}
	shasink = whole ? pgbr_sink_sha256_create(NULL, &err) : pgbr_sink_filesum_create(NULL, &err);
	if (compress == PGBR_COMPRESS_ZST)
		dec = pgbr_sink_zstd_decompress_create(shasink, &err);
	chunk = pgbr_malloc(PGBR_CHUNK_SIZE);
	while (ok)
	{
		ssize_t		n = storage_read(r, chunk, PGBR_CHUNK_SIZE, &err);

		if (n < 0)
		{
			snprintf(why, whylen, "truncated or unreadable: %s", err.message);
			ok = false;
			break;
		}
		if (n == 0)
			break;
		ok = pgbr_sink_write(dec ? dec : shasink, chunk, (size_t) n, &err);
	}
	if (ok)
		ok = pgbr_sink_finish(dec ? dec : shasink, &err);
	if (!ok && why[0] == '\0')
		snprintf(why, whylen, "damaged: %s", err.message);
	if (ok)
	{
		pgbr_sink_sha256_result(shasink, sum);
		if (memcmp(sum, sha, PGBR_SHA256_LEN) != 0)
		{
			snprintf(why, whylen, "damaged: checksum mismatch");
			ok = false;
		}
	}
	pgbr_free(chunk);
	pgbr_sink_free(dec);
	pgbr_sink_free(shasink);
	storage_read_close(r);
	return ok;
}

static void
verify_backup(Verify *v, const char *label)
{
	Storage    *st = v->sess->st;
	char		dir[REPO_PATH_MAX],
				path[REPO_PATH_MAX];
	PgbrLineReader r;
	PgbrError	err;
	char	   *line;
	size_t		len;
	bool		in_files = false;
	bool		missing;
	StorageRead *sr;
	char		checked_ref[PGBR_NAME_MAX + 1] = "";

	pgbr_error_init(&err);
	if (!storage_path(dir, &err, "%s/backup/%s", v->sess->stanza, label) ||
		!storage_path(path, &err, "%s/manifest", dir))
	{
		report(v, true, "backup %s: %s", label, err.message);
		return;
	}
	sr = storage_read_open(st, path, 0, UINT64_MAX, &missing, &err);
	if (sr == NULL)
	{
		report(v, true, "backup %s: manifest is %s", label, missing ? "missing" : err.message);
		return;
	}
	pgbr_line_reader_init_source(&r, storage_read_source, sr);
	while (!v->broken && pgbr_line_reader_next(&r, &line, &len, &err))
	{
		PgbrManifestEntry e;
		char		why[1200] = "";
		char		ref[REPO_PATH_MAX];

		if (!in_files)
		{
			in_files = strcmp(line, "[files]") == 0;
			continue;
		}
		if (!pgbr_manifest_entry_parse(line, len, &e, &err))
		{
			report(v, true, "backup %s: manifest line %" PRIu64 " is damaged: %s", label,
				   r.lineno, err.message);
			pgbr_error_init(&err);
			continue;
		}
		if (e.kind != 'f')
			continue;
		if (e.reference[0])
		{
			bool		exists = false;
			PgbrError	rerr;

			/* consecutive files mostly refer to the same backup */
			pgbr_error_init(&rerr);
			if (strcmp(checked_ref, e.reference) != 0 &&
				storage_path(ref, &rerr, "%s/backup/%s/manifest", v->sess->stanza, e.reference) &&
				storage_exists(st, ref, &exists, &rerr) && exists)
				snprintf(checked_ref, sizeof(checked_ref), "%s", e.reference);
			if (strcmp(checked_ref, e.reference) != 0)
				report(v, true, "backup %s: file \"%s\" refers to backup %s, which is missing",
					   label, e.path, e.reference);
			continue;
		}
		v->files++;
		if (e.bundle[0])
			snprintf(path, sizeof(path), "%s/bundle/%s", dir, e.bundle);
		else
			snprintf(path, sizeof(path), "%s/pg_data/%s.%s", dir, e.path,
					 e.compress == PGBR_COMPRESS_ZST ? "zst" : "raw");
		if (!e.has_sha)
			report(v, true, "backup %s: file \"%s\" has no checksum", label, e.path);
		else if (!check_stored(st, path, e.bundle[0] ? e.offset : 0, e.repo_size, false, e.compress,
							   e.sha256, why, sizeof(why)))
			report(v, true, "backup %s: file \"%s\" is %s", label, e.path, why);
	}
	if (pgbr_error_is_set(&err))
		report(v, true, "backup %s: manifest is damaged: %s", label, err.message);
	pgbr_line_reader_free(&r);
	storage_read_close(sr);
}

typedef struct WalDir
{
	Verify	   *v;
	const char *dir;
} WalDir;

static bool
verify_wal_entry(void *arg, const StorageEntry *e, PgbrError *err)
{
	WalDir	   *w = arg;
	Verify	   *v = w->v;
	char		path[REPO_PATH_MAX],
				name[PGBR_NAME_MAX + 1],
				hex[PGBR_SHA256_HEXLEN + 1],
				why[1200] = "";
	uint8_t		sha[PGBR_SHA256_LEN];
	const char *dash = strrchr(e->name, '-');
	size_t		nlen;

	if (v->broken)
		return false;
	if (e->is_dir || e->name[0] == '.' || dash == NULL)
		return true;
	nlen = (size_t) (dash - e->name);
	if (nlen > PGBR_NAME_MAX || strlen(dash + 1) != PGBR_SHA256_HEXLEN + 4)
		return true;
	memcpy(name, e->name, nlen);
	name[nlen] = '\0';
	memcpy(hex, dash + 1, PGBR_SHA256_HEXLEN);
	hex[PGBR_SHA256_HEXLEN] = '\0';
	if (pgbr_wal_kind(name) == PGBR_WAL_INVALID || !pgbr_hex_decode(hex, sha, sizeof(sha)))
		return true;
	v->wal++;
	snprintf(path, sizeof(path), "%s/%s", w->dir, e->name);
	if (!check_stored(v->sess->st, path, 0, 0, true,
					  strcmp(dash + 1 + PGBR_SHA256_HEXLEN, ".zst") == 0 ? PGBR_COMPRESS_ZST :
					  PGBR_COMPRESS_NONE, sha, why, sizeof(why)))
		report(v, true, "WAL file \"%s\" is %s", name, why);
	return true;
}

static bool
verify_wal_dir(void *arg, const StorageEntry *e, PgbrError *err)
{
	WalDir	   *top = arg;
	char		sub[REPO_PATH_MAX];
	WalDir		w = {top->v, sub};

	if (top->v->broken)
		return false;
	if (!e->is_dir || e->name[0] == '.')
		return true;
	if (!storage_path(sub, err, "%s/%s", top->dir, e->name))
		return false;
	return storage_list(top->v->sess->st, sub, "", verify_wal_entry, &w, err);
}

bool
verify_handle(Session *sess)
{
	Verify		v;
	BackupInfo *list;
	int			n;
	PgbrError	err;
	char		dir[REPO_PATH_MAX],
				count[32];
	WalDir		top = {&v, dir};

	memset(&v, 0, sizeof(v));
	v.sess = sess;
	pgbr_buf_init(&v.line);
	pgbr_error_init(&err);
	if (!catalog_list(sess->st, sess->stanza, &list, &n, &err))
		return session_refuse(sess, &err);
	if (!pgbr_conn_send(sess->conn, PGBR_MSG_OK, NULL, 0, &err))
	{
		catalog_free(list, n);
		return false;
	}
	for (int i = 0; i < n && !v.broken; i++)
		verify_backup(&v, list[i].label);
	catalog_free(list, n);

	if (!storage_path(dir, &err, "%s/archive", sess->stanza) ||
		!storage_list(sess->st, dir, "", verify_wal_dir, &top, &err))
		report(&v, true, "the WAL archive could not be listed: %s", err.message);
	report(&v, false, "verified %" PRIu64 " backup files in %d backups and %" PRIu64 " WAL files: %" PRIu64 " problem(s)",
		   v.files, n, v.wal, v.problems);
	snprintf(count, sizeof(count), "%" PRIu64, v.problems);
	pgbr_buf_release(&v.line);
	if (v.broken)
		return false;
	return pgbr_conn_send(sess->conn, PGBR_MSG_END, count, strlen(count), &err) &&
		pgbr_conn_flush(sess->conn, &err);
}
