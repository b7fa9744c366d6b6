/*
 * retention.c
 *		Expiring backups (repo1-retention-full, repo1-retention-diff) with
 *		the backups that depend on them, and WAL older than what the oldest
 *		kept backup needs.  Callers hold backup.lock.
 *
 * A backup is expired by removing its manifest first (it stops existing
 * for info and restore), then its files.
 */
#include "server.h"
#include "repo.h"

#include <stdio.h>
#include <stdlib.h>

static bool
expire_backup(Storage *st, const char *stanza, const char *label, PgbrError *err)
{
	char		dir[REPO_PATH_MAX],
				path[REPO_PATH_MAX];

	return storage_path(dir, err, "%s/backup/%s", stanza, label) &&
		storage_path(path, err, "%s/manifest", dir) &&
		storage_remove(st, path, err) &&
		storage_remove_tree(st, dir, err);
}

typedef struct WalExpiry
{
	Storage    *st;
	const char *dir;
	const char *oldest;
	int			removed;
	bool		in_dir;			/* listing one 16-hex directory */
} WalExpiry;

static bool
expire_wal_entry(void *arg, const StorageEntry *e, PgbrError *err)
{
	WalExpiry  *x = arg;
	char		path[REPO_PATH_MAX];
	int			c;

	if (x->in_dir)
	{
		/* files of the directory of the oldest needed segment */
		if (e->is_dir || e->name[0] == '.' || strlen(e->name) < 24 ||
			strncmp(e->name, x->oldest, 24) >= 0)
			return true;
		if (!storage_path(path, err, "%s/%s", x->dir, e->name) ||
			!storage_remove(x->st, path, err))
			return false;
		x->removed++;
		return true;
	}
	if (!e->is_dir || strlen(e->name) != 16 || strcmp(e->name, "timeline") == 0)
		return true;
	c = strncmp(e->name, x->oldest, 16);
	if (!storage_path(path, err, "%s/%s", x->dir, e->name))
		return false;
	if (c < 0)
	{
		if (!storage_remove_tree(x->st, path, err))
			return false;
		x->removed++;
	}
	else if (c == 0)
	{
		WalExpiry	sub = {x->st, path, x->oldest, 0, true};

		if (!storage_list(x->st, path, "", expire_wal_entry, &sub, err))
			return false;
		x->removed += sub.removed;
	}
	return true;
}

/* removes archived WAL whose segment name sorts before `oldest` */
static int
expire_wal(Storage *st, const char *stanza, const char *oldest, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	WalExpiry	x = {st, dir, oldest, 0, false};

	if (!storage_path(dir, err, "%s/archive", stanza))
		return 0;
	(void) storage_list(st, dir, "", expire_wal_entry, &x, err);
	return x.removed;
}

bool
retention_apply(const ServerSettings *s, Storage *st, const char *stanza, PgbrBuf *report,
				PgbrError *err)
{
	/* a [stanza] section of the server's configuration overrides [global] */
	const char *full_opt = pgbr_config_get_for(s->cfg, stanza, "repo1-retention-full");
	const char *diff_opt = pgbr_config_get_for(s->cfg, stanza, "repo1-retention-diff");
	BackupInfo *list;
	int			n,
				nfull = 0,
				ndiff = 0;
	bool	   *expired;
	char		oldest[PGBR_NAME_MAX + 1] = "";
	bool		ok = true;

	if (full_opt == NULL)
	{
		pgbr_buf_printf(report, "option repo1-retention-full is not set: no backup or WAL is expired\n");
		return true;
	}
	if (!catalog_list(st, stanza, &list, &n, err))
		return false;
	expired = pgbr_malloc(sizeof(bool) * (size_t) (n ? n : 1));
	for (int i = 0; i < n; i++)
	{
		expired[i] = false;
		if (strcmp(list[i].type, "full") == 0)
			nfull++;
		else if (strcmp(list[i].type, "diff") == 0)
			ndiff++;
	}
	/* oldest fulls beyond the count, oldest diffs beyond theirs */
	{
		int			drop_full = nfull - atoi(full_opt);
		int			drop_diff = diff_opt ? ndiff - atoi(diff_opt) : 0;

		for (int i = 0; i < n; i++)
		{
			if (strcmp(list[i].type, "full") == 0 && drop_full > 0)
			{
				expired[i] = true;
				drop_full--;
			}
			else if (strcmp(list[i].type, "diff") == 0 && drop_diff > 0)
			{
				expired[i] = true;
				drop_diff--;
			}
		}
	}
	/* a backup whose prior goes goes with it (priors sort before) */
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i && !expired[i]; j++)
			if (expired[j] && strcmp(list[i].prior, list[j].label) == 0)
				expired[i] = true;

	for (int i = n - 1; i >= 0; i--)
	{
		if (!expired[i])
			continue;
		if (!expire_backup(st, stanza, list[i].label, err))
		{
			ok = false;
			break;
		}
		pgbr_buf_printf(report, "expire %s backup %s\n", list[i].type, list[i].label);
		pgbr_log(PGBR_LOG_INFO, "stanza \"%s\": expired %s backup %s", stanza, list[i].type,
				 list[i].label);
	}
	for (int i = 0; ok && i < n; i++)
		if (!expired[i] && list[i].wal_start[0] &&
			(oldest[0] == '\0' || strcmp(list[i].wal_start, oldest) < 0))
			snprintf(oldest, sizeof(oldest), "%s", list[i].wal_start);
	if (ok && oldest[0])
	{
		int			removed = expire_wal(st, stanza, oldest, err);

		if (pgbr_error_is_set(err))
			ok = false;

		if (removed > 0)
		{
			pgbr_buf_printf(report, "remove archive: WAL older than %s (%d entries)\n", oldest, removed);
			pgbr_log(PGBR_LOG_INFO, "stanza \"%s\": removed WAL older than %s (%d entries)",
					 stanza, oldest, removed);
		}
	}
	pgbr_free(expired);
	catalog_free(list, n);
	return ok;
}
