/*
 * restore_clean.c
 *		pgbr restore --delta, pass 2: the data directory is walked in
 *		manifest order and merged with the manifest; what the manifest does
 *		not list is removed (links pointing elsewhere too), then
 *		global/pg_control, so that an interrupted restore cannot be started.
 */
#include "restore_int.h"
#include "pgbr_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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
	int			rc = restore_miter_next(c->r, &c->it, &c->e, NULL, NULL, err);

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
	return restore_remove_any(abs, err);
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
			restore_join(relpath, sizeof(relpath), rel, ents[i].name);
		else
			snprintf(relpath, sizeof(relpath), "%s", ents[i].name);
		restore_join(abspath, sizeof(abspath), abs, ents[i].name);

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
				bool		tablespace = restore_is_tablespace_link(&c->e);
				struct stat st;

				/* copied: advancing replaces the entry */
				snprintf(want, sizeof(want), "%s", restore_link_target(c->r, &c->e));
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

bool
restore_clean_pass(Restore *r, PgbrError *err)
{
	Clean		c;
	char		path[PATH_MAX];
	bool		ok;

	memset(&c, 0, sizeof(c));
	c.r = r;
	pgbr_log(PGBR_LOG_INFO, "remove invalid files/links/paths from '%s'", r->pg_path);
	if (!restore_miter_open(r, &c.it, err))
		return false;
	ok = clean_advance(&c, err) && clean_dir(&c, "", r->pg_path, false, err);
	restore_miter_close(&c.it);
	if (!ok)
		return false;
	pgbr_log(PGBR_LOG_DETAIL, "removed %" PRIu64 " invalid files/links/paths", c.removed);

	/* until the restore completes, the cluster must not be startable */
	restore_join(path, sizeof(path), r->pg_path, PG_CONTROL);
	if (unlink(path) != 0 && errno != ENOENT)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", path);
	restore_join(path, sizeof(path), r->pg_path, "global");
	if (access(path, F_OK) == 0 && !pgbr_fsync_dir(path, err))
		return false;
	return true;
}

