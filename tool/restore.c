/*
 * restore.c
 *		pgbr restore: rebuilds pg1-path from a backup of the repository.
 *
 * The manifest of the chosen backup (the latest, or --set) is fetched once
 * into an unlinked temporary file and read as a stream by every pass, so
 * memory does not grow with the number of files:
 *
 *	 1. plan: totals, the pg_control line, tablespace-map and link checks;
 *	 2. delta only: the data directory is walked in manifest order and
 *		merged with the manifest; what the manifest does not list is
 *		removed, then global/pg_control is removed so that an interrupted
 *		restore cannot be started;
 *	 3. directories and links (tablespaces, possibly remapped);
 *	 4. files, by process-max workers (forked, each with its own TLS
 *		session): first the biggest files (up to BIG_MAX, biggest first,
 *		one at a time per worker), then the others in manifest order through
 *		a counter in shared memory.  A file whose local copy has the
 *		manifest's size and SHA-256 (with force: size and mtime) is kept
 *		(delta); any other is fetched with FILE_GET from the backup holding
 *		its data (the line's reference, or this backup), decompressed,
 *		checked against the manifest's SHA-256, given its mode and mtime and
 *		fsynced (deferred: restore_fsync.c; every file is durable before its
 *		worker ends).  A big file is hashed and written on helper threads of its worker
 *		(restore_sha.c);
 *	 5. recovery settings (restore_recovery.c);
 *	 6. every directory fsynced;
 *	 7. global/pg_control, last.
 */
#include "restore.h"
#include "restore_fsync.h"
#include "restore_sha.h"
#include "pgbr_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG_CONTROL			"global/pg_control"
/*
 * Not restored: PostgreSQL would recreate the links of pg_tblspc from it at
 * startup, undoing --tablespace-map.  The links are restored here instead.
 */
#define TABLESPACE_MAP		"tablespace_map"
#define PIPELINE_MAX		16	/* FILE_GET requests in flight per session */
#define WORKERS_MAX			64
/*
 * The biggest files are claimed first, biggest first, so that the workers
 * start on them at once and the small files fill the gaps at the end: a
 * big file claimed late would be alone on the critical path.  Bounded, so
 * that memory does not grow with the number of files.
 */
#define BIG_MAX				32
#define BIG_MIN				(8 * 1024 * 1024)
#define BIG_LINE_MAX		(PGBR_PATH_MAX * 2 + 1024)
/* from this size on a file is hashed and written on helper threads (restore_sha.c) */
#define THREADED_SHA_MIN	(8 * 1024 * 1024)

typedef struct TsMap
{
	char		oid[16];
	const char *path;
	bool		used;
} TsMap;

typedef struct WorkerError
{
	int			code;
	char		message[1024];
	char		hint[512];
} WorkerError;

/* shared by the workers (MAP_SHARED) */
typedef struct Shared
{
	uint64_t	next_file;		/* next file number to claim */
	int32_t		failures;
	int32_t		first_failed;	/* worker whose error is reported */
	uint64_t	done_bytes;
	uint64_t	fetched_files;
	uint64_t	fetched_bytes;
	uint64_t	kept_files;
	uint64_t	kept_bytes;
	uint64_t	repo_bytes;
	WorkerError errors[WORKERS_MAX];
	uint64_t	big_next;		/* next big[] entry to claim */
	int			nbig;
	struct
	{
		uint64_t	filenum;	/* among the files the workers restore */
		uint64_t	size;
		char		line[BIG_LINE_MAX];
	}			big[BIG_MAX];	/* biggest first */
} Shared;

typedef struct Restore
{
	ToolContext *ctx;
	char		pg_path[PATH_MAX];
	char		label[PGBR_LABEL_MAX + 1];
	ToolBackup	hdr;
	int			manifest_fd;	/* unlinked temporary file */
	bool		delta;
	bool		force;			/* delta: size and mtime suffice, no checksum */
	int			process_max;
	TsMap	   *tsmap;
	int			ntsmap;
	RecoverySettings rs;
	char		config_abs[PATH_MAX];
	bool		do_chown;
	uid_t		uid;
	gid_t		gid;
	uint64_t	file_total;
	uint64_t	size_total;
	char		pg_control_line[PGBR_PATH_MAX * 2 + 1024];
	bool		have_pg_control;
	Shared	   *shared;
	/* this process's end of the pipeline (a worker, or pg_control's) */
	RestoreSha *sha;
	PgbrSink   *out;
	RestoreFsync *fsyncs;		/* a worker's deferred fsyncs; NULL: at once */
} Restore;

/* ---------------------------------------------------------------------- */
/* manifest stream */

typedef struct MIter
{
	int			fd;
	PgbrLineReader r;
} MIter;

static bool
miter_open(Restore *r, MIter *it, PgbrError *err)
{
	char		path[64];
	char	   *line;
	size_t		len;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->manifest_fd);
	it->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (it->fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not reopen the manifest (%s)", path);
	pgbr_line_reader_init(&it->r, it->fd);
	for (;;)
	{
		if (!pgbr_line_reader_next(&it->r, &line, &len, err))
		{
			if (!pgbr_error_is_set(err))
				pgbr_error_set(err, PGBR_ERR_FORMAT, "manifest of backup %s has no [files] section",
							   r->label);
			pgbr_line_reader_free(&it->r);
			close(it->fd);
			it->fd = -1;
			return false;
		}
		if (strcmp(line, "[files]") == 0)
			return true;
	}
}

static void
miter_close(MIter *it)
{
	if (it->fd >= 0)
	{
		pgbr_line_reader_free(&it->r);
		close(it->fd);
	}
	it->fd = -1;
}

/* 1: an entry, 0: end, -1: error */
static int
miter_next(Restore *r, MIter *it, PgbrManifestEntry *e, char **line, size_t *len,
		   PgbrError *err)
{
	char	   *l;
	size_t		n;

	for (;;)
	{
		if (!pgbr_line_reader_next(&it->r, &l, &n, err))
			return pgbr_error_is_set(err) ? -1 : 0;
		if (n == 0)
			continue;
		if (!pgbr_manifest_entry_parse(l, n, e, err))
		{
			char		msg[sizeof(err->message)];

			snprintf(msg, sizeof(msg), "%s", err->message);
			pgbr_error_init(err);
			pgbr_error_set(err, PGBR_ERR_FORMAT, "manifest of backup %s, line %" PRIu64 " of [files]: %s",
						   r->label, it->r.lineno, msg);
			return -1;
		}
		if (line)
		{
			*line = l;
			*len = n;
		}
		return 1;
	}
}

/* ---------------------------------------------------------------------- */
/* small file-system helpers */

static void
join(char *out, size_t len, const char *a, const char *b)
{
	snprintf(out, len, "%s/%s", a, b);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) == 0 ? 0 : -1;
	return unlink(path) == 0 ? 0 : -1;
}

/* removes a file, a link (not its target) or a whole directory tree */
static bool
remove_any(const char *path, PgbrError *err)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? true :
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not stat \"%s\"", path);
	if (!S_ISDIR(st.st_mode))
	{
		if (unlink(path) != 0 && errno != ENOENT)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", path);
		return true;
	}
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove directory \"%s\"", path);
	return true;
}

/* mkdir -p, new directories with mode */
static bool
make_path(Restore *r, const char *path, mode_t mode, PgbrError *err)
{
	char		buf[PATH_MAX];
	struct stat st;

	if (stat(path, &st) == 0)
	{
		if (!S_ISDIR(st.st_mode))
			return pgbr_error_set(err, PGBR_ERR_FILE_WRITE, "\"%s\" exists and is not a directory", path);
		return true;
	}
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create directory \"%s\"", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create directory \"%s\"", buf);
	if (r->do_chown && chown(buf, r->uid, r->gid) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not change owner of \"%s\"", buf);
	return true;
}

static bool
dir_is_empty(const char *path, bool *empty, PgbrError *err)
{
	DIR		   *d = opendir(path);
	struct dirent *de;

	*empty = true;
	if (d == NULL)
	{
		if (errno == ENOENT)
			return true;
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open directory \"%s\"", path);
	}
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		*empty = false;
		break;
	}
	closedir(d);
	return true;
}

/* ---------------------------------------------------------------------- */
/* options and the target directory */

static bool
is_tablespace_link(const PgbrManifestEntry *e)
{
	return e->kind == 'l' && strncmp(e->path, "pg_tblspc/", 10) == 0 &&
		strchr(e->path + 10, '/') == NULL;
}

static const char *
link_target(Restore *r, const PgbrManifestEntry *e)
{
	if (strncmp(e->path, "pg_tblspc/", 10) == 0)
	{
		const char *oid = e->path + 10;

		for (int i = 0; i < r->ntsmap; i++)
			if (strcmp(r->tsmap[i].oid, oid) == 0)
				return r->tsmap[i].path;
	}
	return e->target;
}

static bool
restore_options(ToolContext *ctx, Restore *r, PgbrError *err)
{
	const char *pg_path = pgbr_config_get(ctx->cfg, "pg1-path");
	const char *type = pgbr_config_get(ctx->cfg, "type");
	const char *set = pgbr_config_get(ctx->cfg, "set");
	const char *action = pgbr_config_get(ctx->cfg, "target-action");
	const char *const *maps;
	const char *const *ropts;
	int			nmaps,
				nropts;
	size_t		len;

	if (!pgbr_config_require(ctx->cfg, "pg1-path", err))
		return false;
	if (pg_path[0] != '/')
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "option \"pg1-path\" must be an absolute path, not \"%s\" (%s)",
					   pg_path, pgbr_config_source(ctx->cfg, "pg1-path"));
		return false;
	}
	snprintf(r->pg_path, sizeof(r->pg_path), "%s", pg_path);
	len = strlen(r->pg_path);
	while (len > 1 && r->pg_path[len - 1] == '/')
		r->pg_path[--len] = '\0';

	if (set)
	{
		if (!pgbr_label_valid(set))
		{
			pgbr_error_set(err, PGBR_ERR_OPTION, "invalid backup label \"%s\" for option \"set\"", set);
			pgbr_error_hint(err, "Labels look like 20251117-134141F or 20251117-134141F_20251117-150000I; \"pgbr info\" lists them.");
			return false;
		}
		snprintf(r->label, sizeof(r->label), "%s", set);
	}

	r->delta = pgbr_config_get_bool(ctx->cfg, "delta");
	/*
	 * pgBackRest's --force: with --delta, a file whose size and modification
	 * time are the manifest's is kept without reading it.  Faster, and wrong
	 * for a file changed in place within the same second or whose mtime was
	 * set back: only on request.  (Until the option is registered in
	 * common/pgbr_config.c, get_bool says n.)
	 */
	r->force = r->delta && pgbr_config_get_bool(ctx->cfg, "force");
	r->process_max = (int) pgbr_config_get_int(ctx->cfg, "process-max");
	if (r->process_max < 1)
		r->process_max = 1;
	if (r->process_max > WORKERS_MAX)
		r->process_max = WORKERS_MAX;

	/* tablespace-map=OID=PATH */
	nmaps = pgbr_config_get_list(ctx->cfg, "tablespace-map", &maps);
	r->tsmap = pgbr_malloc(sizeof(TsMap) * (size_t) (nmaps + 1));
	for (int i = 0; i < nmaps; i++)
	{
		const char *eq = strchr(maps[i], '=');
		size_t		n = eq ? (size_t) (eq - maps[i]) : 0;
		bool		digits = n > 0 && n < sizeof(r->tsmap[0].oid);

		for (size_t k = 0; digits && k < n; k++)
			digits = maps[i][k] >= '0' && maps[i][k] <= '9';
		if (!digits || eq[1] != '/')
		{
			pgbr_error_set(err, PGBR_ERR_OPTION, "invalid value \"%s\" for option \"tablespace-map\"",
						   maps[i]);
			pgbr_error_hint(err, "Use --tablespace-map=OID=/absolute/path (the OID is the name of the link in pg_tblspc).");
			return false;
		}
		for (int j = 0; j < r->ntsmap; j++)
			if (strlen(r->tsmap[j].oid) == n && strncmp(r->tsmap[j].oid, maps[i], n) == 0)
				return pgbr_error_set(err, PGBR_ERR_OPTION,
									  "tablespace %.*s is mapped more than once by option \"tablespace-map\"",
									  (int) n, maps[i]);
		memcpy(r->tsmap[r->ntsmap].oid, maps[i], n);
		r->tsmap[r->ntsmap].oid[n] = '\0';
		r->tsmap[r->ntsmap].path = eq + 1;
		r->tsmap[r->ntsmap].used = false;
		r->ntsmap++;
	}

	/* recovery settings */
	nropts = pgbr_config_get_list(ctx->cfg, "recovery-option", &ropts);
	r->rs.pg_path = r->pg_path;
	/* a backup type set in a file is for "pgbr backup", not for restore */
	if (type && (strcmp(type, "full") == 0 || strcmp(type, "diff") == 0 || strcmp(type, "incr") == 0) &&
		strcmp(pgbr_config_source(ctx->cfg, "type"), "command line") != 0)
		type = NULL;
	r->rs.type = type ? type : "default";
	r->rs.target = pgbr_config_get(ctx->cfg, "target");
	r->rs.target_timeline = pgbr_config_get(ctx->cfg, "target-timeline");
	r->rs.target_exclusive = pgbr_config_get_bool(ctx->cfg, "target-exclusive");
	r->rs.target_action = NULL;
	if (strcmp(pgbr_config_source(ctx->cfg, "target-action"), "default") != 0)
	{
		/* from a file, it only applies where it means something */
		if (strcmp(pgbr_config_source(ctx->cfg, "target-action"), "command line") == 0 ||
			strcmp(r->rs.type, "immediate") == 0 || strcmp(r->rs.type, "time") == 0 ||
			strcmp(r->rs.type, "xid") == 0 || strcmp(r->rs.type, "lsn") == 0 ||
			strcmp(r->rs.type, "name") == 0)
			r->rs.target_action = action;
	}
	if (strcmp(pgbr_config_source(ctx->cfg, "target-exclusive"), "command line") != 0 &&
		!(strcmp(r->rs.type, "time") == 0 || strcmp(r->rs.type, "xid") == 0 ||
		  strcmp(r->rs.type, "lsn") == 0 || strcmp(r->rs.type, "name") == 0))
		r->rs.target_exclusive = false;
	/* copy the list: the config's scratch array is reused by the next get_list */
	{
		const char **copy = pgbr_malloc(sizeof(char *) * (size_t) (nropts + 1));

		for (int i = 0; i < nropts; i++)
			copy[i] = ropts[i];
		r->rs.options = copy;
		r->rs.noptions = nropts;
	}
	r->rs.stanza = ctx->stanza;
	r->rs.config_path = NULL;
	if (ctx->config_explicit && strcmp(ctx->config_path, PGBR_CONFIG_DEFAULT_PATH) != 0)
	{
		if (realpath(ctx->config_path, r->config_abs) == NULL)
			snprintf(r->config_abs, sizeof(r->config_abs), "%s", ctx->config_path);
		r->rs.config_path = r->config_abs;
	}
	return restore_recovery_check(&r->rs, err);
}

/* pid of a live postmaster from postmaster.pid, or 0 */
static long
running_postmaster(const char *pg_path)
{
	char		path[PATH_MAX];
	char		buf[64];
	FILE	   *f;
	long		pid = 0;

	join(path, sizeof(path), pg_path, "postmaster.pid");
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL)
		pid = strtol(buf, NULL, 10);
	fclose(f);
	if (pid <= 0)
		return 0;
	if (kill((pid_t) pid, 0) == 0 || errno == EPERM)
		return pid;
	return 0;
}

static bool
check_target(Restore *r, PgbrError *err)
{
	struct stat st;
	bool		empty;
	long		pid;
	char		path[PATH_MAX];

	if (stat(r->pg_path, &st) != 0)
	{
		if (errno != ENOENT)
			return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not stat \"%s\"", r->pg_path);
		if (!make_path(r, r->pg_path, 0700, err))
			return false;
		if (stat(r->pg_path, &st) != 0)
			return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not stat \"%s\"", r->pg_path);
	}
	if (!S_ISDIR(st.st_mode))
		return pgbr_error_set(err, PGBR_ERR_RESTORE, "pg1-path \"%s\" is not a directory", r->pg_path);

	if ((pid = running_postmaster(r->pg_path)) != 0)
	{
		pgbr_error_set(err, PGBR_ERR_RESTORE, "unable to restore while PostgreSQL is running");
		pgbr_error_hint(err, "\"%s/postmaster.pid\" names process %ld, which is running: stop the cluster (pg_ctl stop -D %s) before restoring.",
						r->pg_path, pid, r->pg_path);
		return false;
	}
	if (!dir_is_empty(r->pg_path, &empty, err))
		return false;
	if (!empty && !r->delta)
	{
		pgbr_error_set(err, PGBR_ERR_RESTORE, "unable to restore to path \"%s\" because it contains files",
					   r->pg_path);
		pgbr_error_hint(err, "Use --delta to restore into an existing data directory.");
		return false;
	}
	join(path, sizeof(path), r->pg_path, "PG_VERSION");
	if (!empty && r->delta && access(path, F_OK) != 0)
	{
		pgbr_error_set(err, PGBR_ERR_RESTORE,
					   "--delta given but \"%s\" has no PG_VERSION: it does not look like a PostgreSQL data directory, so it is not overwritten",
					   r->pg_path);
		pgbr_error_hint(err, "Restore into an empty directory, or check pg1-path.");
		return false;
	}

	/* running as root: what is restored belongs to the owner of pg1-path */
	if (geteuid() == 0 && st.st_uid != 0)
	{
		r->do_chown = true;
		r->uid = st.st_uid;
		r->gid = st.st_gid;
		r->rs.do_chown = true;
		r->rs.uid = st.st_uid;
		r->rs.gid = st.st_gid;
	}
	/* PostgreSQL wants 0700 or 0750 */
	if ((st.st_mode & 0777) != 0700 && (st.st_mode & 0777) != 0750 &&
		chmod(r->pg_path, 0700) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not set the mode of \"%s\"", r->pg_path);
	return true;
}

/* ---------------------------------------------------------------------- */
/* repository: choose the backup, fetch its manifest */

static bool
fetch_manifest(Restore *r, PgbrConn *conn, PgbrError *err)
{
	const char *tmpdir = getenv("TMPDIR");
	char		path[PATH_MAX];
	PgbrBuf		b;
	PgbrSink   *sink;
	PgbrError	e2;
	bool		ok;

	snprintf(path, sizeof(path), "%s/pgbr-restore-manifest-XXXXXX",
			 tmpdir && tmpdir[0] ? tmpdir : "/tmp");
	r->manifest_fd = mkstemp(path);
	if (r->manifest_fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not create a temporary file \"%s\"", path);
	unlink(path);
	(void) fcntl(r->manifest_fd, F_SETFD, FD_CLOEXEC);

	pgbr_buf_init(&b);
	pgbr_name_encode(&b, r->label);
	pgbr_error_init(&e2);
	sink = pgbr_sink_fd_create(r->manifest_fd, "manifest");
	ok = pgbr_conn_send(conn, PGBR_MSG_MANIFEST_GET, b.data, b.len, &e2) &&
		pgbr_conn_expect_ok(conn, NULL, &e2) &&
		pgbr_conn_recv_stream(conn, sink, &b, &e2);
	pgbr_sink_free(sink);
	pgbr_buf_release(&b);
	if (!ok)
	{
		pgbr_error_set(err, e2.code, "could not fetch the manifest of backup %s: %s", r->label,
					   e2.message);
		if (e2.hint[0])
			pgbr_error_hint(err, "%s", e2.hint);
		return false;
	}
	return true;
}

static bool
read_header(Restore *r, PgbrError *err)
{
	char		path[64];
	int			fd;
	PgbrLineReader lr;
	char	   *line;
	size_t		len;
	bool		found = false;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->manifest_fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not reopen the manifest (%s)", path);
	pgbr_line_reader_init(&lr, fd);
	memset(&r->hdr, 0, sizeof(r->hdr));
	while (pgbr_line_reader_next(&lr, &line, &len, err))
	{
		char	   *key,
				   *value;

		if (strcmp(line, "[files]") == 0)
		{
			found = true;
			break;
		}
		if (line[0] == '[' || line[0] == '\0' || line[0] == '#')
			continue;
		if (pgbr_kv_split(line, &key, &value))
			tool_backup_set(&r->hdr, key, value);
	}
	pgbr_line_reader_free(&lr);
	close(fd);
	if (pgbr_error_is_set(err))
		return false;
	if (!found)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "manifest of backup %s has no [files] section",
							  r->label);
	if (strcmp(r->hdr.label, r->label) != 0)
		return pgbr_error_set(err, PGBR_ERR_FORMAT,
							  "manifest of backup %s names another backup (\"%s\")", r->label, r->hdr.label);
	return true;
}

static bool
choose_backup(Restore *r, PgbrConn *conn, PgbrError *err)
{
	ToolRepoInfo info;

	if (!tool_repo_info_get(conn, &info, err))
		return false;
	if (r->label[0])
	{
		if (tool_repo_info_find(&info, r->label) == NULL)
		{
			pgbr_error_set(err, PGBR_ERR_NOT_FOUND,
						   "backup set %s is not in the repository of stanza \"%s\"",
						   r->label, r->ctx->stanza);
			pgbr_error_hint(err, "\"pgbr --stanza=%s info\" lists the backups.", r->ctx->stanza);
			tool_repo_info_free(&info);
			return false;
		}
	}
	else
	{
		if (info.nbackups == 0)
		{
			pgbr_error_set(err, PGBR_ERR_RESTORE, "no backup set found to restore in stanza \"%s\"",
						   r->ctx->stanza);
			tool_repo_info_free(&info);
			return false;
		}
		snprintf(r->label, sizeof(r->label), "%s", info.backups[info.nbackups - 1].label);
	}
	tool_repo_info_free(&info);
	return true;
}

/* ---------------------------------------------------------------------- */
/* pass 1: plan */

/* keeps the BIG_MAX biggest files in r->shared->big, biggest first */
static void
note_big(Restore *r, const PgbrManifestEntry *e, const char *line, size_t len,
		 uint64_t filenum)
{
	Shared	   *sh = r->shared;
	int			i;

	if (e->size < BIG_MIN || len >= BIG_LINE_MAX || strcmp(e->path, TABLESPACE_MAP) == 0)
		return;
	if (sh->nbig == BIG_MAX && sh->big[BIG_MAX - 1].size >= e->size)
		return;
	i = sh->nbig < BIG_MAX ? sh->nbig++ : BIG_MAX - 1;
	for (; i > 0 && sh->big[i - 1].size < e->size; i--)
		sh->big[i] = sh->big[i - 1];
	sh->big[i].filenum = filenum;
	sh->big[i].size = e->size;
	memcpy(sh->big[i].line, line, len);
	sh->big[i].line[len] = '\0';
}

static bool
plan_pass(Restore *r, PgbrError *err)
{
	MIter		it;
	PgbrManifestEntry e;
	char	   *line;
	size_t		len;
	int			rc;
	uint64_t	filenum = 0;
	PgbrError	linkerr;			/* reported after the tablespace-map checks */

	pgbr_error_init(&linkerr);
	if (!miter_open(r, &it, err))
		return false;
	while ((rc = miter_next(r, &it, &e, &line, &len, err)) > 0)
	{
		if (e.kind == 'f')
		{
			/* counted like the backup counts it, even if not written */
			r->file_total++;
			r->size_total += e.size;
			if (strcmp(e.path, PG_CONTROL) != 0)
				note_big(r, &e, line, len, filenum++);
			if (strcmp(e.path, TABLESPACE_MAP) == 0)
				pgbr_log(PGBR_LOG_DETAIL, "skip %s: the links in pg_tblspc are restored instead",
						 TABLESPACE_MAP);
			if (strcmp(e.path, PG_CONTROL) == 0)
			{
				if (len >= sizeof(r->pg_control_line))
				{
					rc = -1;
					pgbr_error_set(err, PGBR_ERR_FORMAT, "manifest line of %s is too long", PG_CONTROL);
					break;
				}
				memcpy(r->pg_control_line, line, len);
				r->pg_control_line[len] = '\0';
				r->have_pg_control = true;
			}
		}
		else if (e.kind == 'l')
		{
			const char *target;
			bool		empty;

			for (int i = 0; i < r->ntsmap; i++)
				if (strncmp(e.path, "pg_tblspc/", 10) == 0 && strcmp(e.path + 10, r->tsmap[i].oid) == 0)
					r->tsmap[i].used = true;
			target = link_target(r, &e);
			if (target[0] == '\0')
			{
				rc = -1;
				pgbr_error_set(err, PGBR_ERR_FORMAT, "link \"%s\" of backup %s has no target",
							   e.path, r->label);
				break;
			}
			/*
			 * A tablespace directory is written only if it is empty, or if
			 * (delta) the data directory's link already points to it: never
			 * into another cluster's tablespace.
			 */
			if (is_tablespace_link(&e) && target[0] == '/' && !pgbr_error_is_set(&linkerr))
			{
				char		abs[PATH_MAX],
							have[PATH_MAX];
				ssize_t		hl;

				join(abs, sizeof(abs), r->pg_path, e.path);
				hl = readlink(abs, have, sizeof(have) - 1);
				if (hl >= 0)
					have[hl] = '\0';
				if (r->delta && hl >= 0 && strcmp(have, target) == 0)
					continue;

				if (!dir_is_empty(target, &empty, &linkerr))
					continue;
				if (!empty)
				{
					pgbr_error_set(&linkerr, PGBR_ERR_RESTORE,
								   "unable to restore link \"%s\" to path \"%s\" because it contains files",
								   e.path, target);
					pgbr_error_hint(&linkerr, "Map the tablespace elsewhere with --tablespace-map=OID=PATH, or empty that directory.");
				}
			}
		}
	}
	miter_close(&it);
	if (rc < 0)
		return false;
	for (int i = 0; i < r->ntsmap; i++)
		if (!r->tsmap[i].used)
		{
			pgbr_error_set(err, PGBR_ERR_OPTION,
						   "option \"tablespace-map\": backup %s has no tablespace with OID %s",
						   r->label, r->tsmap[i].oid);
			pgbr_error_hint(err, "The OIDs are the names of the links in pg_tblspc of the backed-up cluster.");
			return false;
		}
	if (pgbr_error_is_set(&linkerr))
	{
		pgbr_error_copy(err, &linkerr);
		return false;
	}
	if (!r->have_pg_control)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "backup %s has no %s in its manifest",
							  r->label, PG_CONTROL);
	return true;
}

/* ---------------------------------------------------------------------- */
/* pass 2 (delta): remove what the manifest does not list */

typedef struct Clean
{
	Restore    *r;
	MIter		it;
	bool		have;
	PgbrManifestEntry e;
	uint64_t	removed;
} Clean;

typedef struct LocalEntry
{
	char	   *name;
	char		kind;
} LocalEntry;

static bool
clean_advance(Clean *c, PgbrError *err)
{
	int			rc = miter_next(c->r, &c->it, &c->e, NULL, NULL, err);

	if (rc < 0)
		return false;
	c->have = rc > 0;
	return true;
}

static int
local_cmp(const void *a, const void *b)
{
	const LocalEntry *x = a,
			   *y = b;

	return pgbr_manifest_cmp(x->name, x->kind, y->name, y->kind);
}

static bool
clean_remove(Clean *c, const char *abs, PgbrError *err)
{
	pgbr_log(PGBR_LOG_DETAIL, "remove invalid %s", abs);
	c->removed++;
	return remove_any(abs, err);
}

static bool
clean_dir(Clean *c, const char *rel, const char *abs, bool foreign_top, PgbrError *err)
{
	DIR		   *d = opendir(abs);
	struct dirent *de;
	LocalEntry *ents = NULL;
	size_t		n = 0,
				cap = 0;
	bool		ok = true;

	if (d == NULL)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open directory \"%s\"", abs);
	while ((de = readdir(d)) != NULL)
	{
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			if (errno == ENOENT)
				continue;
			ok = pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not stat \"%s/%s\"", abs, de->d_name);
			break;
		}
		if (n == cap)
		{
			cap = cap ? cap * 2 : 64;
			ents = pgbr_realloc(ents, sizeof(LocalEntry) * cap);
		}
		ents[n].name = pgbr_strdup(de->d_name);
		ents[n].kind = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
		n++;
	}
	closedir(d);
	if (ok)
		qsort(ents, n, sizeof(LocalEntry), local_cmp);

	for (size_t i = 0; ok && i < n; i++)
	{
		char		relpath[PATH_MAX],
					abspath[PATH_MAX];
		char		kind = ents[i].kind;
		bool		matched;

		if (rel[0])
			join(relpath, sizeof(relpath), rel, ents[i].name);
		else
			snprintf(relpath, sizeof(relpath), "%s", ents[i].name);
		join(abspath, sizeof(abspath), abs, ents[i].name);

		while (ok && c->have && pgbr_manifest_cmp(c->e.path, c->e.kind, relpath, kind) < 0)
			ok = clean_advance(c, err);
		if (!ok)
			break;
		matched = c->have && strcmp(c->e.path, relpath) == 0;

		if (!rel[0] && strcmp(relpath, TABLESPACE_MAP) == 0)
			ok = clean_remove(c, abspath, err);
		else if (matched && c->e.kind == kind)
		{
			if (kind == 'd')
			{
				ok = clean_advance(c, err) && clean_dir(c, relpath, abspath, false, err);
			}
			else if (kind == 'l')
			{
				char		have[PATH_MAX],
							want[PATH_MAX];
				ssize_t		hl = readlink(abspath, have, sizeof(have) - 1);
				bool		tablespace = is_tablespace_link(&c->e);
				struct stat st;

				/* copied: advancing replaces the entry */
				snprintf(want, sizeof(want), "%s", link_target(c->r, &c->e));
				if (hl >= 0)
					have[hl] = '\0';
				ok = clean_advance(c, err);
				if (ok && (hl < 0 || strcmp(have, want) != 0))
					ok = clean_remove(c, abspath, err);
				else if (ok && tablespace && stat(abspath, &st) == 0 && S_ISDIR(st.st_mode))
					ok = clean_dir(c, relpath, abspath, true, err);
			}
			else
				ok = clean_advance(c, err);
		}
		else if (matched)
			ok = clean_remove(c, abspath, err); /* another kind of entry */
		else if (!rel[0] && restore_recovery_preserved(&c->r->rs, relpath))
			pgbr_log(PGBR_LOG_DETAIL, "preserve %s (type=preserve)", abspath);
		else if (foreign_top)
			pgbr_log(PGBR_LOG_DETAIL, "leave %s: not part of the backed-up tablespace", abspath);
		else
			ok = clean_remove(c, abspath, err);
	}
	for (size_t i = 0; i < n; i++)
		pgbr_free(ents[i].name);
	pgbr_free(ents);
	return ok;
}

static bool
clean_pass(Restore *r, PgbrError *err)
{
	Clean		c;
	char		path[PATH_MAX];
	bool		ok;

	memset(&c, 0, sizeof(c));
	c.r = r;
	pgbr_log(PGBR_LOG_INFO, "remove invalid files/links/paths from '%s'", r->pg_path);
	if (!miter_open(r, &c.it, err))
		return false;
	ok = clean_advance(&c, err) && clean_dir(&c, "", r->pg_path, false, err);
	miter_close(&c.it);
	if (!ok)
		return false;
	pgbr_log(PGBR_LOG_DETAIL, "removed %" PRIu64 " invalid files/links/paths", c.removed);

	/* until the restore completes, the cluster must not be startable */
	join(path, sizeof(path), r->pg_path, PG_CONTROL);
	if (unlink(path) != 0 && errno != ENOENT)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", path);
	join(path, sizeof(path), r->pg_path, "global");
	if (access(path, F_OK) == 0 && !pgbr_fsync_dir(path, err))
		return false;
	return true;
}

/* ---------------------------------------------------------------------- */
/* pass 3: directories and links */

static bool
restore_dir(Restore *r, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	struct stat st;

	if (mkdir(abs, e->mode ? e->mode : 0700) != 0)
	{
		if (errno != EEXIST)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create directory \"%s\"", abs);
		if (lstat(abs, &st) != 0)
			return pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not stat \"%s\"", abs);
		if (!S_ISDIR(st.st_mode))
		{
			if (!remove_any(abs, err))
				return false;
			if (mkdir(abs, e->mode ? e->mode : 0700) != 0)
				return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create directory \"%s\"", abs);
		}
	}
	if (chmod(abs, e->mode) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not set the mode of \"%s\"", abs);
	if (r->do_chown && lchown(abs, r->uid, r->gid) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not change owner of \"%s\"", abs);
	return true;
}

static bool
restore_link(Restore *r, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	const char *target = link_target(r, e);
	char		have[PATH_MAX];
	ssize_t		hl = readlink(abs, have, sizeof(have) - 1);
	char		resolved[PATH_MAX];

	/* the directory a tablespace link points to */
	if (!is_tablespace_link(e))
		resolved[0] = '\0';
	else if (target[0] == '/')
		snprintf(resolved, sizeof(resolved), "%s", target);
	else
	{
		char		parent[PATH_MAX];
		char	   *slash;

		snprintf(parent, sizeof(parent), "%s", abs);
		slash = strrchr(parent, '/');
		if (slash)
			*slash = '\0';
		join(resolved, sizeof(resolved), parent, target);
	}
	if (resolved[0] && !make_path(r, resolved, 0700, err))
		return false;

	if (hl >= 0)
	{
		have[hl] = '\0';
		if (strcmp(have, target) == 0)
			return true;
	}
	if (!remove_any(abs, err))
		return false;
	if (symlink(target, abs) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create link \"%s\" to \"%s\"",
								abs, target);
	if (r->do_chown && lchown(abs, r->uid, r->gid) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not change owner of \"%s\"", abs);
	pgbr_log(PGBR_LOG_DETAIL, "restore link %s to %s", abs, target);
	return true;
}

static bool
dir_pass(Restore *r, PgbrError *err)
{
	MIter		it;
	PgbrManifestEntry e;
	int			rc;
	bool		ok = true;

	if (!miter_open(r, &it, err))
		return false;
	while (ok && (rc = miter_next(r, &it, &e, NULL, NULL, err)) > 0)
	{
		char		abs[PATH_MAX];

		join(abs, sizeof(abs), r->pg_path, e.path);
		if (e.kind == 'd')
			ok = restore_dir(r, &e, abs, err);
		else if (e.kind == 'l')
			ok = restore_link(r, &e, abs, err);
	}
	miter_close(&it);
	return ok && !pgbr_error_is_set(err);
}

/* ---------------------------------------------------------------------- */
/* pass 4: files */

static void
progress(Restore *r, const PgbrManifestEntry *e, const char *abs, const char *what)
{
	uint64_t	done = __atomic_add_fetch(&r->shared->done_bytes, e->size, __ATOMIC_SEQ_CST);
	char		size[32],
				hex[PGBR_SHA256_HEXLEN + 1] = "";
	double		pct = r->size_total ? 100.0 * (double) done / (double) r->size_total : 100.0;

	if (e->has_sha)
		pgbr_hex_encode(e->sha256, PGBR_SHA256_LEN, hex);
	pgbr_size_format(e->size, size, sizeof(size));
	pgbr_log(PGBR_LOG_DETAIL, "restore file %s%s (%s, %.2f%%)%s%s", abs, what, size,
			 pct > 100.0 ? 100.0 : pct, hex[0] ? " checksum " : "", hex);
}

static bool
set_attrs_fd(Restore *r, int fd, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	struct timespec ts[2];

	ts[0].tv_sec = (time_t) e->mtime;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	if (fchmod(fd, e->mode) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not set the mode of \"%s\"", abs);
	if (r->do_chown && fchown(fd, r->uid, r->gid) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not change owner of \"%s\"", abs);
	if (futimens(fd, ts) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not set the time of \"%s\"", abs);
	return true;
}

/* this process's hashing pipe and file sink (restore_sha.c) */
static bool
pipe_open(Restore *r, PgbrError *err)
{
	if (r->sha == NULL && (r->sha = restore_sha_create(err)) == NULL)
		return false;
	if (r->out == NULL)
		r->out = restore_sha_file_sink_create(r->sha);
	return true;
}

static void
pipe_close(Restore *r)
{
	restore_sha_file_sink_free(r->out);
	r->out = NULL;
	restore_sha_free(r->sha);
	r->sha = NULL;
}

/*
 * Delta: does the local file have the manifest's size and SHA-256 (with
 * force: size and mtime)?  1 yes (its mode, mtime and owner are then set),
 * 0 no, -1 error.
 * Read in slots of a megabyte; a big file is hashed on the second thread
 * while the next slot is read.
 */
static int
local_matches(Restore *r, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	struct stat st;
	int			fd;
	uint8_t		sum[PGBR_SHA256_LEN];
	bool		ok = true;
	uint64_t	total = 0;

	if (lstat(abs, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size != e->size ||
		!e->has_sha)
		return 0;
	/* read only: mode, owner, times and fsync need no write access */
	fd = open(abs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", abs);
		return -1;
	}
	if (r->force)
	{
		if (st.st_mtime != (time_t) e->mtime)
		{
			close(fd);
			return 0;
		}
		goto matches;
	}
	(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!restore_sha_begin(r->sha, e->size >= THREADED_SHA_MIN, -1, NULL, err))
	{
		close(fd);
		return -1;
	}
	while (ok)
	{
		uint8_t    *slot = restore_sha_slot(r->sha);
		size_t		fill = 0;

		while (fill < RESTORE_SHA_SLOT_SIZE)
		{
			ssize_t		n = read(fd, slot + fill, RESTORE_SHA_SLOT_SIZE - fill);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
			{
				ok = pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not read \"%s\"", abs);
				break;
			}
			if (n == 0)
				break;
			fill += (size_t) n;
		}
		if (ok && fill > 0)
			restore_sha_submit(r->sha, fill);
		if (fill < RESTORE_SHA_SLOT_SIZE)
			break;
	}
	(void) restore_sha_end(r->sha, sum, &total, err);	/* no writer: no error */
	if (!ok)
	{
		close(fd);
		return -1;
	}
	if (total != e->size || memcmp(sum, e->sha256, PGBR_SHA256_LEN) != 0)
	{
		close(fd);
		return 0;
	}
matches:
	if ((st.st_mode & 07777) != e->mode || st.st_mtime != (time_t) e->mtime ||
		(r->do_chown && (st.st_uid != r->uid || st.st_gid != r->gid)))
	{
		if (!set_attrs_fd(r, fd, e, abs, err) || fsync(fd) != 0)
		{
			if (!pgbr_error_is_set(err))
				pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync \"%s\"", abs);
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 1;
}

/* opens the destination of a file, replacing whatever is in the way */
static int
open_dest(const char *abs, PgbrError *err)
{
	struct stat st;
	int			fd;

	if (lstat(abs, &st) == 0 && !S_ISREG(st.st_mode) && !remove_any(abs, err))
		return -1;
	fd = open(abs, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not create file \"%s\"", abs);
	return fd;
}

static bool
finish_file(Restore *r, int fd, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	if (!set_attrs_fd(r, fd, e, abs, err))
	{
		close(fd);
		return false;
	}
	if (r->fsyncs)
		return restore_fsync_add(r->fsyncs, fd, abs, err);
	if (fsync(fd) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync \"%s\"", abs);
		close(fd);
		return false;
	}
	if (close(fd) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write \"%s\"", abs);
	return true;
}

static const char *
data_label(Restore *r, const PgbrManifestEntry *e)
{
	return e->reference[0] ? e->reference : r->label;
}

static void
backup_name(Restore *r, const PgbrManifestEntry *e, char *out, size_t len)
{
	if (e->reference[0] && strcmp(e->reference, r->label) != 0)
		snprintf(out, len, "backup %s (data in backup %s)", r->label, e->reference);
	else
		snprintf(out, len, "backup %s", r->label);
}

static bool
send_file_get(Restore *r, PgbrConn *conn, const PgbrManifestEntry *e, const char *line,
			  size_t len, PgbrError *err)
{
	PgbrBuf		b;
	char	   *l = pgbr_malloc(len + 1);
	const char *strs[2];
	bool		ok;

	memcpy(l, line, len);
	l[len] = '\0';
	strs[0] = data_label(r, e);
	strs[1] = l;
	pgbr_buf_init(&b);
	pgbr_strs_encode(&b, 2, strs);
	ok = pgbr_conn_send(conn, PGBR_MSG_FILE_GET, b.data, b.len, err);
	pgbr_buf_release(&b);
	pgbr_free(l);
	return ok;
}

/*
 * Receives the answer to a FILE_GET into `dest` (abs unless a temporary
 * name is given), verifying the content against the manifest line.  The
 * stream goes through the decompressor (when compressed) into r->out,
 * which hashes and writes it (restore_sha.c).
 */
static bool
receive_file(Restore *r, PgbrConn *conn, const PgbrManifestEntry *e, const char *abs,
			 const char *dest, PgbrError *err)
{
	PgbrError	e2;
	PgbrSink   *dec = NULL;
	PgbrBuf		trailer;
	uint8_t		sum[PGBR_SHA256_LEN];
	uint64_t	bytes;
	char		bname[200];
	int			fd;
	bool		ok = false;

	backup_name(r, e, bname, sizeof(bname));
	pgbr_error_init(&e2);
	if (!pgbr_conn_expect_ok(conn, NULL, &e2))
	{
		pgbr_error_set(err, e2.code, "could not fetch file \"%s\" of %s: %s", e->path, bname,
					   e2.message);
		if (e2.hint[0])
			pgbr_error_hint(err, "%s", e2.hint);
		return false;
	}
	fd = open_dest(dest, err);
	if (fd < 0)
		return false;
	pgbr_buf_init(&trailer);
	if (!restore_sha_file_sink_begin(r->out, fd, dest, e->size >= THREADED_SHA_MIN, err))
		goto done;
	if (e->compress == PGBR_COMPRESS_ZST &&
		(dec = pgbr_sink_zstd_decompress_create(r->out, err)) == NULL)
		goto done;
	if (!pgbr_conn_recv_stream(conn, dec ? dec : r->out, &trailer, &e2))
	{
		if (e2.code == PGBR_ERR_FORMAT || e2.code == PGBR_ERR_COMPRESS)
			pgbr_error_set(err, PGBR_ERR_CHECKSUM,
						   "file \"%s\" of %s is damaged in the repository: %s", e->path, bname,
						   e2.message);
		else
		{
			pgbr_error_set(err, e2.code, "could not fetch file \"%s\" of %s: %s", e->path, bname,
						   e2.message);
			if (e2.hint[0])
				pgbr_error_hint(err, "%s", e2.hint);
		}
		goto done;
	}
	restore_sha_file_sink_result(r->out, sum, &bytes);
	if (bytes != e->size || !e->has_sha || memcmp(sum, e->sha256, PGBR_SHA256_LEN) != 0)
	{
		char		want[PGBR_SHA256_HEXLEN + 1] = "none",
					got[PGBR_SHA256_HEXLEN + 1];

		if (e->has_sha)
			pgbr_hex_encode(e->sha256, PGBR_SHA256_LEN, want);
		pgbr_hex_encode(sum, PGBR_SHA256_LEN, got);
		pgbr_error_set(err, PGBR_ERR_CHECKSUM,
					   "file \"%s\" of %s is damaged in the repository: SHA-256 %s, expected %s (%" PRIu64 " of %" PRIu64 " bytes)",
					   e->path, bname, got, want, bytes, e->size);
		pgbr_error_hint(err, "Run \"pgbr verify\" and restore another backup set with --set.");
		goto done;
	}
	__atomic_add_fetch(&r->shared->fetched_files, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&r->shared->fetched_bytes, e->size, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&r->shared->repo_bytes, dec ? dec->bytes_in : r->out->bytes_in,
					   __ATOMIC_SEQ_CST);
	ok = true;

done:
	pgbr_sink_free(dec);
	pgbr_buf_release(&trailer);
	if (!ok)
	{
		restore_sha_wait(r->sha);	/* the writer thread may still use fd */
		close(fd);
		return false;
	}
	if (!finish_file(r, fd, e, dest, err))
		return false;
	progress(r, e, abs, "");
	return true;
}

static bool
is_empty_sha(const PgbrManifestEntry *e)
{
	uint8_t		empty[PGBR_SHA256_LEN];

	if (!e->has_sha)
		return true;
	pgbr_sha256("", 0, empty);
	return memcmp(empty, e->sha256, PGBR_SHA256_LEN) == 0;
}

/* FILE_GET requests sent and not yet received, oldest first */
typedef struct Queue
{
	PgbrManifestEntry q[PIPELINE_MAX];
	int			head;
	int			n;
} Queue;

/* receives the oldest request of the queue */
static bool
queue_receive(Restore *r, PgbrConn *conn, Queue *q, PgbrError *err)
{
	PgbrManifestEntry *p = &q->q[q->head];
	char		pabs[PATH_MAX];

	join(pabs, sizeof(pabs), r->pg_path, p->path);
	q->head = (q->head + 1) % PIPELINE_MAX;
	q->n--;
	return receive_file(r, conn, p, pabs, pabs, err);
}

/* a claimed file: kept (delta, preserve), created empty, or requested */
static bool
restore_one(Restore *r, PgbrConn *conn, Queue *q, const PgbrManifestEntry *e,
			const char *line, size_t len, PgbrError *err)
{
	char		abs[PATH_MAX];

	if (strcmp(e->path, TABLESPACE_MAP) == 0)
	{
		__atomic_add_fetch(&r->shared->done_bytes, e->size, __ATOMIC_SEQ_CST);
		return true;
	}
	join(abs, sizeof(abs), r->pg_path, e->path);

	if (restore_recovery_preserved(&r->rs, e->path) && access(abs, F_OK) == 0)
	{
		pgbr_log(PGBR_LOG_DETAIL, "restore file %s - preserved (type=preserve)", abs);
		__atomic_add_fetch(&r->shared->done_bytes, e->size, __ATOMIC_SEQ_CST);
		return true;
	}
	if (r->delta)
	{
		int			m = local_matches(r, e, abs, err);

		if (m < 0)
			return false;
		if (m > 0)
		{
			__atomic_add_fetch(&r->shared->kept_files, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&r->shared->kept_bytes, e->size, __ATOMIC_SEQ_CST);
			progress(r, e, abs, " - exists and matches backup");
			return true;
		}
	}
	if (e->size == 0 && is_empty_sha(e))
	{
		int			fd = open_dest(abs, err);

		if (fd < 0 || !finish_file(r, fd, e, abs, err))
			return false;
		__atomic_add_fetch(&r->shared->fetched_files, 1, __ATOMIC_SEQ_CST);
		progress(r, e, abs, "");
		return true;
	}

	/* fetch, with up to PIPELINE_MAX requests in flight */
	if (q->n == PIPELINE_MAX && !queue_receive(r, conn, q, err))
		return false;
	if (!send_file_get(r, conn, e, line, len, err))
		return false;
	q->q[(q->head + q->n) % PIPELINE_MAX] = *e;
	q->n++;
	return true;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static bool
files_pass(Restore *r, PgbrConn *conn, PgbrError *err)
{
	Shared	   *sh = r->shared;
	MIter		it;
	PgbrManifestEntry e;
	char	   *line;
	size_t		len;
	int			rc;
	uint64_t	idx = 0,
				filenum = 0,
				claim;
	uint64_t	bigs[BIG_MAX];
	int			nbig = sh->nbig,
				bi = 0;
	Queue	   *q = pgbr_malloc(sizeof(Queue));
	bool		ok = true;

	q->head = q->n = 0;

	/*
	 * The biggest files, one at a time: a worker holds no other big file
	 * while it receives one, so the next is taken by whichever worker is
	 * free first.
	 */
	while (ok)
	{
		uint64_t	j;

		if (__atomic_load_n(&sh->failures, __ATOMIC_SEQ_CST) > 0)
			break;
		j = __atomic_fetch_add(&sh->big_next, 1, __ATOMIC_SEQ_CST);
		if (j >= (uint64_t) nbig)
			break;
		len = strlen(sh->big[j].line);
		ok = pgbr_manifest_entry_parse(sh->big[j].line, len, &e, err) &&
			restore_one(r, conn, q, &e, sh->big[j].line, len, err);
		while (ok && q->n > 0)
			ok = queue_receive(r, conn, q, err);
	}
	for (int i = 0; i < nbig; i++)
		bigs[i] = sh->big[i].filenum;
	qsort(bigs, (size_t) nbig, sizeof(uint64_t), u64_cmp);

	/* then the others, in manifest order */
	if (ok && !miter_open(r, &it, err))
		ok = false;
	else if (ok)
	{
		claim = __atomic_fetch_add(&sh->next_file, 1, __ATOMIC_SEQ_CST);
		while (ok)
		{
			uint64_t	num;

			if (__atomic_load_n(&sh->failures, __ATOMIC_SEQ_CST) > 0)
				break;			/* another worker failed: stop */
			rc = miter_next(r, &it, &e, &line, &len, err);
			if (rc <= 0)
			{
				ok = rc == 0;
				break;
			}
			if (e.kind != 'f' || strcmp(e.path, PG_CONTROL) == 0)
				continue;
			num = filenum++;
			while (bi < nbig && bigs[bi] < num)
				bi++;
			if (bi < nbig && bigs[bi] == num)
				continue;		/* done above */
			if (idx++ != claim)
				continue;
			claim = __atomic_fetch_add(&sh->next_file, 1, __ATOMIC_SEQ_CST);
			ok = restore_one(r, conn, q, &e, line, len, err);
		}
		miter_close(&it);
	}
	while (ok && q->n > 0)
	{
		if (__atomic_load_n(&sh->failures, __ATOMIC_SEQ_CST) > 0)
			break;
		ok = queue_receive(r, conn, q, err);
	}
	pgbr_free(q);
	return ok;
}

static void
record_failure(Restore *r, int worker, const PgbrError *e)
{
	WorkerError *we = &r->shared->errors[worker];
	int32_t		seq;

	we->code = e->code ? e->code : PGBR_ERR_RESTORE;
	snprintf(we->message, sizeof(we->message), "%s", e->message);
	snprintf(we->hint, sizeof(we->hint), "%s", e->hint);
	seq = __atomic_fetch_add(&r->shared->failures, 1, __ATOMIC_SEQ_CST);
	if (seq == 0)
		__atomic_store_n(&r->shared->first_failed, worker, __ATOMIC_SEQ_CST);
}

/* one worker: its own session, then its share of the files */
static bool
run_worker(Restore *r, int worker)
{
	PgbrError	err;
	SSL_CTX    *tls;
	PgbrConn   *conn;
	bool		ok;

	pgbr_error_init(&err);
	pgbr_log_set_process(worker + 1);
	conn = tool_connect(r->ctx, "restore", true, &tls, &err);
	r->fsyncs = restore_fsync_create();
	ok = conn != NULL && pipe_open(r, &err) && files_pass(r, conn, &err) &&
		restore_fsync_drain(r->fsyncs, &err);
	if (conn)
		tool_disconnect(conn, tls);
	pipe_close(r);
	restore_fsync_free(r->fsyncs);
	r->fsyncs = NULL;
	if (!ok)
		record_failure(r, worker, &err);
	pgbr_log_set_process(0);
	return ok;
}

static bool
workers_run(Restore *r, PgbrError *err)
{
	pid_t		pids[WORKERS_MAX];
	int			n = r->process_max;
	bool		crashed = false;
	char		crash[256] = "";
	pid_t		parent = getpid();

	r->shared->first_failed = -1;
	if (n == 1)
		run_worker(r, 0);
	else
	{
		fflush(NULL);
		for (int i = 0; i < n; i++)
		{
			pids[i] = fork();
			if (pids[i] < 0)
			{
				PgbrError	e;

				pgbr_error_init(&e);
				pgbr_error_errno(&e, PGBR_ERR_RESTORE, "could not start restore worker %d", i + 1);
				record_failure(r, i, &e);
				n = i;
				break;
			}
			if (pids[i] == 0)
			{
				signal(SIGINT, SIG_DFL);
				signal(SIGTERM, SIG_DFL);
				/* a worker does not outlive the restore */
				(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
				if (getppid() != parent)
					_exit(1);
				_exit(run_worker(r, i) ? 0 : 1);
			}
		}
		for (int i = 0; i < n; i++)
		{
			int			status;

			while (waitpid(pids[i], &status, 0) < 0)
			{
				if (errno != EINTR)
				{
					status = 0;
					break;
				}
			}
			if (WIFSIGNALED(status) && !crashed)
			{
				crashed = true;
				snprintf(crash, sizeof(crash), "restore worker %d (pid %d) was terminated by signal %d",
						 i + 1, (int) pids[i], WTERMSIG(status));
			}
		}
	}
	if (r->shared->failures > 0 && r->shared->first_failed >= 0)
	{
		WorkerError *we = &r->shared->errors[r->shared->first_failed];

		pgbr_error_set(err, we->code, "%s", we->message);
		if (we->hint[0])
			pgbr_error_hint(err, "%s", we->hint);
		return false;
	}
	if (crashed)
		return pgbr_error_set(err, PGBR_ERR_RESTORE, "%s", crash);
	return true;
}

/* ---------------------------------------------------------------------- */
/* passes 6 and 7: durability, then pg_control */

static bool
sync_pass(Restore *r, PgbrError *err)
{
	MIter		it;
	PgbrManifestEntry e;
	int			rc;
	bool		ok = true;

	if (!miter_open(r, &it, err))
		return false;
	while (ok && (rc = miter_next(r, &it, &e, NULL, NULL, err)) > 0)
	{
		char		abs[PATH_MAX];

		if (e.kind == 'f')
			continue;
		join(abs, sizeof(abs), r->pg_path, e.path);
		if (e.kind == 'l' && !is_tablespace_link(&e))
			continue;			/* the directory holding it is synced */
		ok = pgbr_fsync_dir(abs, err);	/* a link: the directory it points to */
		if (ok && e.kind == 'l' && link_target(r, &e)[0] == '/')
		{
			char		parent[PATH_MAX];
			char	   *slash;

			snprintf(parent, sizeof(parent), "%s", link_target(r, &e));
			slash = strrchr(parent, '/');
			if (slash && slash != parent)
			{
				*slash = '\0';
				ok = pgbr_fsync_dir(parent, err);
			}
		}
	}
	miter_close(&it);
	if (!ok || pgbr_error_is_set(err))
		return false;
	return pgbr_fsync_dir(r->pg_path, err);
}

static bool
restore_pg_control(Restore *r, PgbrError *err)
{
	PgbrManifestEntry e;
	SSL_CTX    *tls;
	PgbrConn   *conn;
	char		abs[PATH_MAX],
				tmp[PATH_MAX],
				dir[PATH_MAX];
	bool		ok;

	if (!pgbr_manifest_entry_parse(r->pg_control_line, strlen(r->pg_control_line), &e, err))
		return false;
	pgbr_log(PGBR_LOG_INFO, "restore %s (performed last to ensure aborted restores cannot be started)",
			 PG_CONTROL);
	join(abs, sizeof(abs), r->pg_path, PG_CONTROL);
	snprintf(tmp, sizeof(tmp), "%s.pgbr.tmp", abs);
	join(dir, sizeof(dir), r->pg_path, "global");
	conn = tool_connect(r->ctx, "restore", true, &tls, err);
	if (conn == NULL)
		return false;
	ok = pipe_open(r, err) &&
		send_file_get(r, conn, &e, r->pg_control_line, strlen(r->pg_control_line), err) &&
		receive_file(r, conn, &e, abs, tmp, err);
	tool_disconnect(conn, tls);
	pipe_close(r);
	if (!ok)
	{
		unlink(tmp);
		return false;
	}
	if (rename(tmp, abs) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not rename \"%s\" to \"%s\"", tmp, abs);
		unlink(tmp);
		return false;
	}
	return pgbr_fsync_dir(dir, err);
}

/* ---------------------------------------------------------------------- */

int
cmd_restore(ToolContext *ctx, PgbrError *err)
{
	static const char *const opts[] = {"config", "delta", "force", "pg1-path", "process-max",
		"recovery-option", "repo1-host", "set", "stanza", "tablespace-map", "target",
	"target-action", "target-exclusive", "target-timeline", "type", NULL};
	Restore		r;
	char		optstr[4096];
	char		when[64],
				size[32];
	SSL_CTX    *tls;
	PgbrConn   *conn;
	int			rc = 1;

	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.manifest_fd = -1;
	if (!tool_require_stanza(ctx, err) || !restore_options(ctx, &r, err))
		goto done;
	tool_options_string(ctx, opts, optstr, sizeof(optstr));
	pgbr_log(PGBR_LOG_INFO, "restore command begin %s: %s", PGBR_VERSION, optstr);
	if (!check_target(&r, err))
		goto done;

	conn = tool_connect(ctx, "restore", true, &tls, err);
	if (conn == NULL)
		goto done;
	if (!choose_backup(&r, conn, err) || !fetch_manifest(&r, conn, err))
	{
		tool_disconnect(conn, tls);
		goto done;
	}
	tool_disconnect(conn, tls);
	if (!read_header(&r, err))
		goto done;
	tool_time_format(r.hdr.timestamp_start, when, sizeof(when));
	pgbr_log(PGBR_LOG_INFO, "repo1: restore backup set %s, recovery will start at %s", r.label, when);

	r.shared = mmap(NULL, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r.shared == MAP_FAILED)
	{
		r.shared = NULL;
		pgbr_error_errno(err, PGBR_ERR_MEMORY, "could not allocate shared memory for the restore workers");
		goto done;
	}
	memset(r.shared, 0, sizeof(Shared));

	if (!plan_pass(&r, err))
		goto done;
	if (r.delta && !clean_pass(&r, err))
		goto done;
	if (!dir_pass(&r, err) || !workers_run(&r, err))
		goto done;
	if (!restore_recovery_write(&r.rs, err))
		goto done;
	if (!sync_pass(&r, err) || !restore_pg_control(&r, err))
		goto done;

	pgbr_size_format(r.size_total, size, sizeof(size));
	if (r.delta)
		pgbr_log(PGBR_LOG_INFO, "restore size = %s, file total = %" PRIu64 ", fetched = %" PRIu64
				 " files / %" PRIu64 " bytes", size, r.file_total, r.shared->fetched_files,
				 r.shared->fetched_bytes);
	else
		pgbr_log(PGBR_LOG_INFO, "restore size = %s, file total = %" PRIu64, size, r.file_total);
	pgbr_log(PGBR_LOG_DETAIL, "fetched %" PRIu64 " files (%" PRIu64 " bytes, %" PRIu64
			 " bytes from the repository), kept %" PRIu64 " files (%" PRIu64 " bytes)",
			 r.shared->fetched_files, r.shared->fetched_bytes, r.shared->repo_bytes,
			 r.shared->kept_files, r.shared->kept_bytes);
	pgbr_log(PGBR_LOG_INFO, "restore command end: completed successfully");
	rc = 0;

done:
	if (r.manifest_fd >= 0)
		close(r.manifest_fd);
	if (r.shared)
		munmap(r.shared, sizeof(Shared));
	pgbr_free(r.tsmap);
	pgbr_free((void *) r.rs.options);
	return rc;
}
