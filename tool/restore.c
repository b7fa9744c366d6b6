/*
 * restore.c
 *		pgbr restore: rebuilds pg1-path from a backup of the repository.
 *
 * The manifest of the chosen backup (the latest, or --set) is fetched once
 * into an unlinked temporary file and read as a stream by every pass, so
 * memory does not grow with the number of files:
 *
 *	 1. plan: totals, the pg_control line, tablespace-map and link checks;
 *	 2. delta only (restore_clean.c): the data directory is walked in
 *		manifest order and merged with the manifest; what the manifest does
 *		not list is removed, then global/pg_control is removed so that an
 *		interrupted restore cannot be started;
 *	 3. directories and links (tablespaces, possibly remapped);
 *	 4. files, by process-max workers (restore_files.c);
 *	 5. recovery settings (restore_recovery.c);
 *	 6. every directory fsynced;
 *	 7. global/pg_control, last (restore_files.c).
 */
#include "restore_int.h"
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* manifest stream */


bool
restore_miter_open(Restore *r, MIter *it, PgbrError *err)
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

void
restore_miter_close(MIter *it)
{
	if (it->fd >= 0)
	{
		pgbr_line_reader_free(&it->r);
		close(it->fd);
	}
	it->fd = -1;
}

/* 1: an entry, 0: end, -1: error */
int
restore_miter_next(Restore *r, MIter *it, PgbrManifestEntry *e, char **line, size_t *len,
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

void
restore_join(char *out, size_t len, const char *a, const char *b)
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
bool
restore_remove_any(const char *path, PgbrError *err)
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

bool
restore_is_tablespace_link(const PgbrManifestEntry *e)
{
	return e->kind == 'l' && strncmp(e->path, "pg_tblspc/", 10) == 0 &&
		strchr(e->path + 10, '/') == NULL;
}

const char *
restore_link_target(Restore *r, const PgbrManifestEntry *e)
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
	 * set back: only on request.
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

	restore_join(path, sizeof(path), pg_path, "postmaster.pid");
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
	restore_join(path, sizeof(path), r->pg_path, "PG_VERSION");
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
	if (!restore_miter_open(r, &it, err))
		return false;
	while ((rc = restore_miter_next(r, &it, &e, &line, &len, err)) > 0)
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
			target = restore_link_target(r, &e);
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
			if (restore_is_tablespace_link(&e) && target[0] == '/' && !pgbr_error_is_set(&linkerr))
			{
				char		abs[PATH_MAX],
							have[PATH_MAX];
				ssize_t		hl;

				restore_join(abs, sizeof(abs), r->pg_path, e.path);
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
	restore_miter_close(&it);
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
			if (!restore_remove_any(abs, err))
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
	const char *target = restore_link_target(r, e);
	char		have[PATH_MAX];
	ssize_t		hl = readlink(abs, have, sizeof(have) - 1);
	char		resolved[PATH_MAX];

	/* the directory a tablespace link points to */
	if (!restore_is_tablespace_link(e))
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
		restore_join(resolved, sizeof(resolved), parent, target);
	}
	if (resolved[0] && !make_path(r, resolved, 0700, err))
		return false;

	if (hl >= 0)
	{
		have[hl] = '\0';
		if (strcmp(have, target) == 0)
			return true;
	}
	if (!restore_remove_any(abs, err))
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

	if (!restore_miter_open(r, &it, err))
		return false;
	while (ok && (rc = restore_miter_next(r, &it, &e, NULL, NULL, err)) > 0)
	{
		char		abs[PATH_MAX];

		restore_join(abs, sizeof(abs), r->pg_path, e.path);
		if (e.kind == 'd')
			ok = restore_dir(r, &e, abs, err);
		else if (e.kind == 'l')
			ok = restore_link(r, &e, abs, err);
	}
	restore_miter_close(&it);
	return ok && !pgbr_error_is_set(err);
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

	if (!restore_miter_open(r, &it, err))
		return false;
	while (ok && (rc = restore_miter_next(r, &it, &e, NULL, NULL, err)) > 0)
	{
		char		abs[PATH_MAX];

		if (e.kind == 'f')
			continue;
		restore_join(abs, sizeof(abs), r->pg_path, e.path);
		if (e.kind == 'l' && !restore_is_tablespace_link(&e))
			continue;			/* the directory holding it is synced */
		ok = pgbr_fsync_dir(abs, err);	/* a link: the directory it points to */
		if (ok && e.kind == 'l' && restore_link_target(r, &e)[0] == '/')
		{
			char		parent[PATH_MAX];
			char	   *slash;

			snprintf(parent, sizeof(parent), "%s", restore_link_target(r, &e));
			slash = strrchr(parent, '/');
			if (slash && slash != parent)
			{
				*slash = '\0';
				ok = pgbr_fsync_dir(parent, err);
			}
		}
	}
	restore_miter_close(&it);
	if (!ok || pgbr_error_is_set(err))
		return false;
	return pgbr_fsync_dir(r->pg_path, err);
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
	if (r.delta && !restore_clean_pass(&r, err))
		goto done;
	if (!dir_pass(&r, err) || !restore_workers_run(&r, err))
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
