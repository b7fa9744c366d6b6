/*
 * verify.c
 *		VERIFY: reads every stored backup file and WAL file back, checks it
 *		against its SHA-256 and reports what is missing or damaged.  The
 *		report streams to the client as it is found.
 */
#include "backup.h"
#include "pgbr_wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

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

/* checks a stored byte range: decompress if needed, compare the SHA-256 */
static bool
check_stored(const char *path, uint64_t offset, uint64_t length, bool whole, uint8_t compress,
			 const uint8_t *sha, char *why, size_t whylen)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	PgbrError	err;
	PgbrSink   *shasink,
			   *dec = NULL;
	uint8_t    *chunk;
	uint64_t	left = length;
	uint8_t		sum[PGBR_SHA256_LEN];
	bool		ok = true;

	pgbr_error_init(&err);
	if (fd < 0)
	{
		snprintf(why, whylen, "missing (%s)", strerror(errno));
		return false;
	}
	if (offset && lseek(fd, (off_t) offset, SEEK_SET) < 0)
	{
		snprintf(why, whylen, "cannot seek: %s", strerror(errno));
		close(fd);
		return false;
	}
	shasink = pgbr_sink_sha256_create(NULL, &err);
	if (compress == PGBR_COMPRESS_ZST)
		dec = pgbr_sink_zstd_decompress_create(shasink, &err);
	chunk = pgbr_malloc(PGBR_CHUNK_SIZE);
	while (ok && (whole || left > 0))
	{
		size_t		want = (!whole && left < PGBR_CHUNK_SIZE) ? (size_t) left : PGBR_CHUNK_SIZE;
		ssize_t		n = read(fd, chunk, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			snprintf(why, whylen, "read error: %s", strerror(errno));
			ok = false;
			break;
		}
		if (n == 0)
		{
			if (!whole)
			{
				snprintf(why, whylen, "truncated");
				ok = false;
			}
			break;
		}
		left -= (uint64_t) n;
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
	close(fd);
	return ok;
}

static void
verify_backup(Verify *v, const char *label)
{
	const ServerSettings *s = v->sess->s;
	char		dir[REPO_PATH_MAX],
				path[REPO_PATH_MAX];
	char		suffix[PGBR_NAME_MAX + 16];
	PgbrLineReader r;
	PgbrError	err;
	char	   *line;
	size_t		len;
	bool		in_files = false;
	int			fd;

	snprintf(suffix, sizeof(suffix), "/backup/%s", label);
	repo_path(dir, s->repo_path, v->sess->stanza, suffix);
	snprintf(path, sizeof(path), "%s/manifest", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		report(v, true, "backup %s: manifest is missing", label);
		return;
	}
	pgbr_error_init(&err);
	pgbr_line_reader_init(&r, fd);
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
			snprintf(suffix, sizeof(suffix), "/backup/%s/manifest", e.reference);
			repo_path(ref, s->repo_path, v->sess->stanza, suffix);
			if (access(ref, F_OK) != 0)
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
		else if (!check_stored(path, e.bundle[0] ? e.offset : 0, e.repo_size, false, e.compress,
							   e.sha256, why, sizeof(why)))
			report(v, true, "backup %s: file \"%s\" is %s", label, e.path, why);
	}
	if (pgbr_error_is_set(&err))
		report(v, true, "backup %s: manifest is damaged: %s", label, err.message);
	pgbr_line_reader_free(&r);
	close(fd);
}

static void
verify_wal_dir(Verify *v, const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;

	while (d && !v->broken && (de = readdir(d)) != NULL)
	{
		char		path[REPO_PATH_MAX],
					name[PGBR_NAME_MAX + 1],
					hex[PGBR_SHA256_HEXLEN + 1],
					why[1200] = "";
		uint8_t		sha[PGBR_SHA256_LEN];
		char	   *dash = strrchr(de->d_name, '-');
		size_t		nlen;

		if (de->d_name[0] == '.' || dash == NULL)
			continue;
		nlen = (size_t) (dash - de->d_name);
		if (nlen > PGBR_NAME_MAX || strlen(dash + 1) != PGBR_SHA256_HEXLEN + 4)
			continue;
		memcpy(name, de->d_name, nlen);
		name[nlen] = '\0';
		memcpy(hex, dash + 1, PGBR_SHA256_HEXLEN);
		hex[PGBR_SHA256_HEXLEN] = '\0';
		if (pgbr_wal_kind(name) == PGBR_WAL_INVALID || !pgbr_hex_decode(hex, sha, sizeof(sha)))
			continue;
		v->wal++;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!check_stored(path, 0, 0, true,
						  strcmp(dash + 1 + PGBR_SHA256_HEXLEN, ".zst") == 0 ? PGBR_COMPRESS_ZST :
						  PGBR_COMPRESS_NONE, sha, why, sizeof(why)))
			report(v, true, "WAL file \"%s\" is %s", name, why);
	}
	if (d)
		closedir(d);
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
	DIR		   *d;
	struct dirent *de;

	memset(&v, 0, sizeof(v));
	v.sess = sess;
	pgbr_buf_init(&v.line);
	pgbr_error_init(&err);
	if (!catalog_list(sess->s->repo_path, sess->stanza, &list, &n, &err))
		return session_refuse(sess, &err);
	if (!pgbr_conn_send(sess->conn, PGBR_MSG_OK, NULL, 0, &err))
	{
		catalog_free(list, n);
		return false;
	}
	for (int i = 0; i < n && !v.broken; i++)
		verify_backup(&v, list[i].label);
	catalog_free(list, n);

	if (repo_path(dir, sess->s->repo_path, sess->stanza, "/archive") && (d = opendir(dir)) != NULL)
	{
		while (!v.broken && (de = readdir(d)) != NULL)
		{
			char		sub[REPO_PATH_MAX];

			if (de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			verify_wal_dir(&v, sub);
		}
		closedir(d);
	}
	report(&v, false, "verified %" PRIu64 " backup files in %d backups and %" PRIu64 " WAL files: %" PRIu64 " problem(s)",
		   v.files, n, v.wal, v.problems);
	snprintf(count, sizeof(count), "%" PRIu64, v.problems);
	pgbr_buf_release(&v.line);
	if (v.broken)
		return false;
	return pgbr_conn_send(sess->conn, PGBR_MSG_END, count, strlen(count), &err) &&
		pgbr_conn_flush(sess->conn, &err);
}
