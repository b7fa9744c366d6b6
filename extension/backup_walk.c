/*
 * backup_walk.c
 *		The file list of a backup: a walk of the data directory and of the
 *		tablespaces in walk order (pgbr_manifest_cmp), without what
 *		PostgreSQL's base backup leaves out, merged with the manifest of the
 *		prior backup for a diff or incr.
 *
 * The list goes to a temporary file under base/pgsql_tmp (itself left out
 * of backups, and emptied by PostgreSQL at startup after a crash), one
 * manifest line per entry, with an index file of fixed-size records so
 * that every stream can fetch entry i without reading the others.  Memory
 * stays bounded by the largest directory, whatever the cluster size.
 *
 * Walk order comes from a depth-first walk that sorts the entries of each
 * directory with pgbr_manifest_cmp; every line is checked against the
 * previous one, so a name that would break the order (possible only for
 * odd names next to a tablespace link) fails the backup instead of
 * producing a list the server refuses half-way.
 */
#include "backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog_internal.h"
#include "catalog/catversion.h"
#include "common/file_perm.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/fd.h"

/* where in the tree a directory is: decides exclusions and checksums */
typedef enum DirKind
{
	DIR_TOP,					/* the data directory */
	DIR_BASE,					/* base */
	DIR_GLOBAL,					/* global */
	DIR_PG_TBLSPC,				/* pg_tblspc */
	DIR_TBLSPC,					/* an in-place tablespace pg_tblspc/<oid> */
	DIR_TBLSPC_VERSION,			/* .../PG_15_202209061 */
	DIR_DATABASE,				/* base/<oid> or .../PG_15_.../<oid> */
	DIR_OTHER
} DirKind;

/* directories whose contents a base backup leaves out (top level only) */
static const char *const exclude_contents[] = {
	"pg_stat_tmp", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial",
	"pg_snapshots", "pg_subtrans", NULL
};

/* files left out wherever they are */
static const char *const exclude_files[] = {
	"postgresql.auto.conf.tmp", "current_logfiles.tmp", "backup_label",
	"tablespace_map", "backup_manifest", "postmaster.pid", "postmaster.opts",
	".DS_Store", NULL
};

typedef struct Child
{
	char	   *name;
	char		kind;			/* 'f', 'd', 'l' */
	bool		tablespace;		/* link in pg_tblspc */
	struct stat st;
} Child;

typedef struct Walker
{
	int			list_fd;
	int			index_fd;
	const char *list_path;
	const char *index_path;
	uint64		offset;			/* in the list file */
	PgbrBuf		list_buf;
	PgbrBuf		index_buf;
	PgbrManifestEntry *cur;
	PgbrManifestEntry *prev;
	bool		have_prev;
	PgbrCompress compress;
	PgbrWalkPart part;
	PgbrWalkResult *result;
	PgbrBackupShared *shared;	/* where the list is published, or NULL */

	/* the prior manifest, read in step with the walk */
	bool		prior_open;
	int			prior_fd;
	PgbrLineReader prior_reader;
	PgbrManifestEntry *prior;
	bool		prior_valid;
	char		prior_label[PGBR_LABEL_MAX + 1];
	int64		prior_start;	/* timestamp-start of the prior */

	/* tablespace directories, not to be copied twice if inside PGDATA */
	int			ntblspc;
	dev_t		tblspc_dev[64];
	ino_t		tblspc_ino[64];
} Walker;

static void walk_dir(Walker *w, const char *path, DirKind kind);

static void
flush_buf(int fd, PgbrBuf *buf, const char *path)
{
	size_t		done = 0;

	while (done < buf->len)
	{
		ssize_t		n = write(fd, buf->data + done, buf->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", path)));
		done += (size_t) n;
	}
	pgbr_buf_reset(buf);
}

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/*
 * Parses <relfilenode>[_<fork>][.<segment>]; false for anything else.
 * Our own parser: the backend's changed its signature in 16 and 17.
 */
static bool
parse_relation_name(const char *name, uint64 *relnode, ForkNumber *fork)
{
	const char *p = name;
	uint64		v = 0;
	int			n = 0;

	while (*p >= '0' && *p <= '9')
	{
		v = v * 10 + (uint64) (*p - '0');
		p++;
		n++;
	}
	if (n == 0 || n > 10)
		return false;
	*fork = MAIN_FORKNUM;
	if (*p == '_')
	{
		int			len = forkname_chars(p + 1, fork);

		if (len == 0)
			return false;
		p += 1 + len;
	}
	if (*p == '.')
	{
		if (!all_digits(p + 1))
			return false;
		p += strlen(p);
	}
	*relnode = v;
	return *p == '\0';
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static int
cmp_child_ptr(const void *a, const void *b)
{
	const Child *x = *(const Child *const *) a;
	const Child *y = *(const Child *const *) b;

	return pgbr_manifest_cmp(x->name, x->kind, y->name, y->kind);
}

static bool
excluded_file_name(const char *name)
{
	if (strncmp(name, PG_TEMP_FILE_PREFIX, strlen(PG_TEMP_FILE_PREFIX)) == 0)
		return true;
	if (strncmp(name, "pg_internal.init", strlen("pg_internal.init")) == 0)
		return true;
	for (int i = 0; exclude_files[i]; i++)
		if (strcmp(name, exclude_files[i]) == 0)
			return true;
	return false;
}

static bool
contents_excluded(const char *name)
{
	for (int i = 0; exclude_contents[i]; i++)
		if (strcmp(name, exclude_contents[i]) == 0)
			return true;
	return false;
}

static char *
join_path(const char *dir, const char *name)
{
	return dir[0] ? psprintf("%s/%s", dir, name) : pstrdup(name);
}

/* every entry under path (a directory) is the standby's share */
static bool
below_is_standby(const char *path)
{
	return strcmp(path, "base") == 0 || strcmp(path, "global") == 0 ||
		strncmp(path, "base/", 5) == 0 || strncmp(path, "global/", 7) == 0 ||
		strncmp(path, "pg_tblspc/", 10) == 0;
}

/* whether the walk can find entries of its share under the directory path */
static bool
walk_into(const Walker *w, const char *path)
{
	switch (w->part)
	{
		case PGBR_WALK_PRIMARY:
			return !below_is_standby(path);
		case PGBR_WALK_STANDBY:
			return below_is_standby(path) || strcmp(path, "pg_tblspc") == 0;
		default:
			return true;
	}
}

bool
pgbr_walk_standby_path(const char *path)
{
	if (strncmp(path, "base/", 5) == 0 || strncmp(path, "global/", 7) == 0)
		return true;
	/* inside a tablespace; pg_tblspc/<oid> itself (the link) is the primary's */
	if (strncmp(path, "pg_tblspc/", 10) == 0)
		return strchr(path + 10, '/') != NULL;
	return false;
}

/* advances the prior manifest to the first entry not before the current one */
static void
prior_seek(Walker *w, const PgbrManifestEntry *e)
{
	PgbrError	err;

	pgbr_error_init(&err);
	while (w->prior_open)
	{
		char	   *line;
		size_t		len;

		if (w->prior_valid &&
			pgbr_manifest_cmp(w->prior->path, w->prior->kind, e->path, e->kind) >= 0)
			return;
		if (!pgbr_line_reader_next(&w->prior_reader, &line, &len, &err))
		{
			if (pgbr_error_is_set(&err))
				pgbr_ereport(ERROR, &err);
			w->prior_valid = false;
			w->prior_open = false;
			return;
		}
		if (!pgbr_manifest_entry_parse(line, len, w->prior, &err))
		{
			pgbr_error_hint(&err, "The manifest of backup %s is damaged.", w->prior_label);
			pgbr_ereport(ERROR, &err);
		}
		w->prior_valid = true;
	}
}

/*
 * An unchanged file (same size and mtime as in the prior) becomes a
 * reference to the backup holding its data.  A file modified at or after
 * the second the prior backup started may have been copied while it
 * changed, so it is copied again whatever its mtime says.
 */
static bool
prior_reference(Walker *w, PgbrManifestEntry *e)
{
	PgbrManifestEntry *p = w->prior;

	if (!w->prior_valid || p->kind != 'f' || e->kind != 'f' ||
		strcmp(p->path, e->path) != 0 || !p->has_sha ||
		p->size != e->size || p->mtime != e->mtime || e->mtime >= w->prior_start)
		return false;
	strlcpy(e->reference, p->reference[0] ? p->reference : w->prior_label,
			sizeof(e->reference));
	e->has_sha = true;
	memcpy(e->sha256, p->sha256, sizeof(e->sha256));
	e->repo_size = p->repo_size;
	strlcpy(e->bundle, p->bundle, sizeof(e->bundle));
	e->offset = p->offset;
	e->compress = p->compress;
	strlcpy(e->bad_pages, p->bad_pages, sizeof(e->bad_pages));
	return true;
}

/*
 * Writes out both buffers; every entry emitted so far is then complete in
 * both files, and the streams may take it.
 */
static void
publish(Walker *w)
{
	flush_buf(w->list_fd, &w->list_buf, w->list_path);
	flush_buf(w->index_fd, &w->index_buf, w->index_path);
	if (w->shared)
	{
		/* the totals so far, for pgbr_progress */
		pg_atomic_write_u64(&w->shared->files_total, w->result->files);
		pg_atomic_write_u64(&w->shared->bytes_total, w->result->bytes);
		/* the writes above before the count (pg_atomic_write_u64 orders nothing) */
		pg_write_barrier();
		pg_atomic_write_u64(&w->shared->entries_ready, w->result->nentries);
	}
}

static void
emit(Walker *w, const char *path, char kind, const struct stat *st, const char *target)
{
	PgbrManifestEntry *e = w->cur;
	uint8		rec[PGBR_INDEX_RECORD];
	uint64		off = w->offset;
	uint32		len;
	size_t		before = w->list_buf.len;

	if (w->part != PGBR_WALK_ALL &&
		pgbr_walk_standby_path(path) != (w->part == PGBR_WALK_STANDBY))
		return;					/* the other server's share */

	pgbr_manifest_entry_init(e);
	e->kind = kind;
	strlcpy(e->path, path, sizeof(e->path));
	e->mtime = (int64) st->st_mtime;
	e->mode = (uint32) (st->st_mode & 07777);
	if (target)
		strlcpy(e->target, target, sizeof(e->target));
	if (kind == 'f')
	{
		e->size = (uint64) st->st_size;
		e->compress = (uint8) w->compress;
	}

	if (w->have_prev && pgbr_manifest_cmp(w->prev->path, w->prev->kind, e->path, e->kind) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" does not sort after \"%s\" in walk order", e->path, w->prev->path),
				 errhint("Rename the entry: names next to a tablespace link must not be a tablespace OID followed by a character below '/'.")));

	if (w->prior_open || w->prior_valid)
	{
		prior_seek(w, e);
		if (prior_reference(w, e))
			w->result->references++;
	}
	pgbr_manifest_entry_format(e, &w->list_buf);
	len = (uint32) (w->list_buf.len - before);
	memcpy(rec, &off, sizeof(off));
	memcpy(rec + sizeof(off), &len, sizeof(len));
	pgbr_buf_put(&w->index_buf, rec, sizeof(rec));
	w->offset += len;

	w->result->nentries++;
	if (kind == 'f')
	{
		w->result->files++;
		w->result->bytes += e->size;
	}
	{
		PgbrManifestEntry *t = w->prev;

		w->prev = w->cur;
		w->cur = t;
		w->have_prev = true;
	}
	if (w->list_buf.len >= 64 * 1024 || w->index_buf.len >= 64 * 1024)
		publish(w);
}

static bool
is_tablespace_location(Walker *w, const struct stat *st)
{
	for (int i = 0; i < w->ntblspc; i++)
		if (w->tblspc_dev[i] == st->st_dev && w->tblspc_ino[i] == st->st_ino)
			return true;
	return false;
}

/* remembers where the tablespaces live, before the walk reaches them */
static void
collect_tablespaces(Walker *w)
{
	DIR		   *dir = AllocateDir("pg_tblspc");
	struct dirent *de;

	while ((de = ReadDir(dir, "pg_tblspc")) != NULL)
	{
		char	   *p;
		struct stat st;

		if (!all_digits(de->d_name) || w->ntblspc >= (int) lengthof(w->tblspc_dev))
			continue;
		p = psprintf("pg_tblspc/%s", de->d_name);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
		{
			w->tblspc_dev[w->ntblspc] = st.st_dev;
			w->tblspc_ino[w->ntblspc] = st.st_ino;
			w->ntblspc++;
		}
		pfree(p);
	}
	FreeDir(dir);
}

/* the children of a directory that belong in the backup, sorted */
static Child *
read_children(const char *path, DirKind kind, int *count)
{
	DIR		   *dir;
	struct dirent *de;
	Child	   *c;
	int			n = 0,
				cap = 64;
	uint64	   *init_forks = NULL;
	int			ninit = 0,
				initcap = 0;
	const char *open_path = path[0] ? path : ".";

	c = palloc(sizeof(Child) * cap);
	dir = AllocateDir(open_path);
	if (dir == NULL && errno == ENOENT && path[0])
	{
		/* removed since its parent was read */
		*count = 0;
		return c;
	}
	while ((de = ReadDir(dir, open_path)) != NULL)
	{
		char	   *full;
		Child		ch;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (excluded_file_name(de->d_name))
			continue;
		if (kind == DIR_GLOBAL && strcmp(de->d_name, XLOG_CONTROL_FILE + strlen("global/")) == 0)
			continue;			/* sent last */
		if (kind == DIR_DATABASE && looks_like_temp_rel_name(de->d_name))
			continue;
		full = join_path(path, de->d_name);
		/* relative to the directory: no lookup of the whole path */
		if (fstatat(dirfd(dir), de->d_name, &ch.st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			if (errno == ENOENT)
			{
				pfree(full);
				continue;		/* removed during the walk */
			}
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", full)));
		}
		ch.tablespace = false;
		if (S_ISREG(ch.st.st_mode))
			ch.kind = 'f';
		else if (S_ISDIR(ch.st.st_mode))
			ch.kind = 'd';
		else if (S_ISLNK(ch.st.st_mode))
		{
			struct stat target;

			ch.kind = 'l';
			if (kind == DIR_PG_TBLSPC)
				ch.tablespace = true;
			else if (kind == DIR_TOP && strcmp(de->d_name, "pg_wal") == 0 &&
					 stat(full, &target) == 0 && S_ISDIR(target.st_mode))
			{
				/* a linked pg_wal is stored as a plain, empty directory */
				ch.kind = 'd';
				ch.st = target;
			}
		}
		else
		{
			pfree(full);
			continue;			/* sockets, fifos, devices */
		}
		if (!pgbr_path_safe(full))
		{
			ereport(WARNING,
					(errmsg("skipping \"%s\": its name cannot be stored in a backup", full)));
			pfree(full);
			continue;
		}
		pfree(full);
		ch.name = pstrdup(de->d_name);
		if (n == cap)
		{
			cap *= 2;
			c = repalloc(c, sizeof(Child) * cap);
		}
		c[n++] = ch;

		/* unlogged relations: remember which have an init fork */
		if (kind == DIR_DATABASE && ch.kind == 'f')
		{
			uint64		rel;
			ForkNumber	fork;

			if (parse_relation_name(ch.name, &rel, &fork) && fork == INIT_FORKNUM)
			{
				if (ninit == initcap)
				{
					initcap = initcap ? initcap * 2 : 16;
					init_forks = init_forks ? repalloc(init_forks, sizeof(uint64) * initcap)
						: palloc(sizeof(uint64) * initcap);
				}
				init_forks[ninit++] = rel;
			}
		}
	}
	FreeDir(dir);

	/* all forks of an unlogged relation but the init fork stay out */
	if (ninit > 0)
	{
		int			kept = 0;

		qsort(init_forks, ninit, sizeof(uint64), cmp_u64);
		for (int i = 0; i < n; i++)
		{
			uint64		rel;
			ForkNumber	fork;

			if (c[i].kind == 'f' && parse_relation_name(c[i].name, &rel, &fork) &&
				fork != INIT_FORKNUM &&
				bsearch(&rel, init_forks, ninit, sizeof(uint64), cmp_u64) != NULL)
				continue;
			c[kept++] = c[i];
		}
		n = kept;
		pfree(init_forks);
	}

	/*
	 * Sorted through pointers: a Child holds a struct stat, and moving
	 * those around was a quarter of the walk of a database directory with
	 * 40,000 files.
	 */
	if (n > 1)
	{
		Child	  **order = palloc(sizeof(Child *) * n);
		Child	   *sorted = palloc(sizeof(Child) * n);

		for (int i = 0; i < n; i++)
			order[i] = &c[i];
		qsort(order, n, sizeof(Child *), cmp_child_ptr);
		for (int i = 0; i < n; i++)
			sorted[i] = *order[i];
		pfree(order);
		pfree(c);
		c = sorted;
	}
	*count = n;
	return c;
}

static DirKind
child_kind(DirKind parent, const char *name)
{
	switch (parent)
	{
		case DIR_TOP:
			if (strcmp(name, "base") == 0)
				return DIR_BASE;
			if (strcmp(name, "global") == 0)
				return DIR_GLOBAL;
			if (strcmp(name, "pg_tblspc") == 0)
				return DIR_PG_TBLSPC;
			return DIR_OTHER;
		case DIR_BASE:
		case DIR_TBLSPC_VERSION:
			return all_digits(name) ? DIR_DATABASE : DIR_OTHER;
		case DIR_PG_TBLSPC:
			return DIR_TBLSPC;
		case DIR_TBLSPC:
			return strcmp(name, TABLESPACE_VERSION_DIRECTORY) == 0 ?
				DIR_TBLSPC_VERSION : DIR_OTHER;
		default:
			return DIR_OTHER;
	}
}

/*
 * A tablespace link: the link itself (kind 'l', its target), then only the
 * directory of this PostgreSQL version inside it, under the link's path.
 */
static void
walk_tablespace(Walker *w, const char *path, const struct stat *st)
{
	char		target[MAXPGPATH];
	int			len = readlink(path, target, sizeof(target) - 1);
	char	   *version;
	struct stat vst;

	if (len < 0)
	{
		if (errno == ENOENT)
			return;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read symbolic link \"%s\": %m", path)));
	}
	target[len] = '\0';
	if (len > PGBR_PATH_MAX || strpbrk(target, "\t\n\r") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target of tablespace link \"%s\" cannot be stored in a backup", path)));
	emit(w, path, 'l', st, target);

	version = psprintf("%s/%s", path, TABLESPACE_VERSION_DIRECTORY);
	if (!walk_into(w, version))
	{
		/* the standby's share */
	}
	else if (stat(version, &vst) == 0 && S_ISDIR(vst.st_mode))
	{
		emit(w, version, 'd', &vst, NULL);
		walk_dir(w, version, DIR_TBLSPC_VERSION);
	}
	else if (errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat directory \"%s\": %m", version)));
	pfree(version);
}

static void
walk_dir(Walker *w, const char *path, DirKind kind)
{
	int			n;
	Child	   *c;

	CHECK_FOR_INTERRUPTS();
	c = read_children(path, kind, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *full = join_path(path, c[i].name);

		if (c[i].kind == 'f')
			emit(w, full, 'f', &c[i].st, NULL);
		else if (c[i].kind == 'l' && c[i].tablespace)
			walk_tablespace(w, full, &c[i].st);
		else if (c[i].kind == 'l')
		{
			char		target[MAXPGPATH];
			int			len = readlink(full, target, sizeof(target) - 1);

			if (len >= 0)
			{
				target[len] = '\0';
				if (len <= PGBR_PATH_MAX && strpbrk(target, "\t\n\r") == NULL)
					emit(w, full, 'l', &c[i].st, target);
				else
					ereport(WARNING,
							(errmsg("skipping link \"%s\": its target cannot be stored in a backup",
									full)));
			}
		}
		else if (kind != DIR_TBLSPC_VERSION && kind != DIR_PG_TBLSPC &&
				 is_tablespace_location(w, &c[i].st))
		{
			/* a tablespace inside PGDATA: copied through pg_tblspc only */
		}
		else
		{
			DirKind		ck = child_kind(kind, c[i].name);

			emit(w, full, 'd', &c[i].st, NULL);
			if (kind == DIR_TOP && strcmp(c[i].name, "pg_wal") == 0)
			{
				/* WAL comes from the archive: only the directories */
				struct stat st;
				char	   *status = psprintf("%s/archive_status", full);

				if (stat(status, &st) != 0)
					st = c[i].st;
				emit(w, status, 'd', &st, NULL);
				pfree(status);
			}
			else if (!(kind == DIR_TOP && contents_excluded(c[i].name)) && walk_into(w, full))
				walk_dir(w, full, ck);
		}
		pfree(full);
		pfree(c[i].name);
	}
	pfree(c);
}

/* reads the [backup] header of the prior manifest up to [files] */
static void
prior_open(Walker *w, const char *prior_path)
{
	PgbrError	err;
	char	   *line;
	size_t		len;
	bool		files = false;

	w->prior_fd = open(prior_path, O_RDONLY | PG_BINARY);
	if (w->prior_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", prior_path)));
	pgbr_line_reader_init(&w->prior_reader, w->prior_fd);
	w->prior_open = true;
	w->prior_start = PG_INT64_MAX;
	pgbr_error_init(&err);
	while (!files && pgbr_line_reader_next(&w->prior_reader, &line, &len, &err))
	{
		char	   *key,
				   *value;

		if (strcmp(line, "[files]") == 0)
			files = true;
		else if (pgbr_kv_split(line, &key, &value))
		{
			if (strcmp(key, "label") == 0)
				strlcpy(w->prior_label, value, sizeof(w->prior_label));
			else if (strcmp(key, "timestamp-start") == 0)
				w->prior_start = strtoll(value, NULL, 10);
		}
	}
	if (pgbr_error_is_set(&err))
		pgbr_ereport(ERROR, &err);
	if (!files || !pgbr_label_valid(w->prior_label) || w->prior_start == PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the manifest of the prior backup has no valid [backup] header")));
}

void
pgbr_walk_build(const char *list_path, const char *index_path, const char *prior_path,
				PgbrCompress compress, PgbrWalkPart part, PgbrWalkResult *result,
				PgbrBackupShared *shared)
{
	Walker		w;

	memset(&w, 0, sizeof(w));
	memset(result, 0, sizeof(*result));
	w.result = result;
	w.compress = compress;
	w.part = part;
	w.shared = shared;
	w.list_path = list_path;
	w.index_path = index_path;
	w.prior_fd = -1;
	w.cur = palloc(sizeof(PgbrManifestEntry));
	w.prev = palloc(sizeof(PgbrManifestEntry));
	w.prior = palloc(sizeof(PgbrManifestEntry));
	pgbr_buf_init(&w.list_buf);
	pgbr_buf_init(&w.index_buf);

	w.list_fd = open(list_path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	w.index_fd = w.list_fd < 0 ? -1 :
		open(index_path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	if (w.list_fd < 0 || w.index_fd < 0)
	{
		int			save = errno;

		if (w.list_fd >= 0)
			close(w.list_fd);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", w.list_fd < 0 ? list_path : index_path)));
	}

	PG_TRY();
	{
		if (prior_path)
			prior_open(&w, prior_path);
		collect_tablespaces(&w);
		walk_dir(&w, "", DIR_TOP);
		publish(&w);
	}
	PG_FINALLY();
	{
		close(w.list_fd);
		close(w.index_fd);
		if (w.prior_fd >= 0)
		{
			pgbr_line_reader_free(&w.prior_reader);
			close(w.prior_fd);
		}
		pgbr_buf_release(&w.list_buf);
		pgbr_buf_release(&w.index_buf);
	}
	PG_END_TRY();
	pfree(w.cur);
	pfree(w.prev);
	pfree(w.prior);
}

bool
pgbr_relation_file(const char *path, uint32 *segno)
{
	const char *name = strrchr(path, '/');
	const char *dot;
	uint64		rel;
	ForkNumber	fork;

	if (name == NULL ||
		(strncmp(path, "global/", 7) != 0 && strncmp(path, "base/", 5) != 0 &&
		 strncmp(path, "pg_tblspc/", 10) != 0))
		return false;
	name++;
	if (!parse_relation_name(name, &rel, &fork))
		return false;
	dot = strchr(name, '.');
	*segno = dot ? (uint32) strtoul(dot + 1, NULL, 10) : 0;
	return true;
}
