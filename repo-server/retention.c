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

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static bool
expire_backup(const char *repo, const char *stanza, const char *label, PgbrError *err)
{
	char		dir[REPO_PATH_MAX],
				path[REPO_PATH_MAX];
	char		suffix[PGBR_NAME_MAX + 16];

	snprintf(suffix, sizeof(suffix), "/backup/%s", label);
	if (!repo_path(dir, repo, stanza, suffix))
		return pgbr_error_set(err, PGBR_ERR_FILE_WRITE, "path too long");
	snprintf(path, sizeof(path), "%s/manifest", dir);
	if (unlink(path) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", path);
	if (!repo_fsync_dir(dir, err))
		return false;
	return catalog_remove_tree(dir, err);
}

/* removes archived WAL whose segment name sorts before `oldest` */
static int
expire_wal(const char *repo, const char *stanza, const char *oldest, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	DIR		   *d;
	struct dirent *de;
	int			removed = 0;

	if (!repo_path(dir, repo, stanza, "/archive") || (d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
	{
		char		sub[REPO_PATH_MAX];
		int			c;

		if (strlen(de->d_name) != 16 || strcmp(de->d_name, "timeline") == 0)
			continue;
		c = strncmp(de->d_name, oldest, 16);
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (c < 0)
		{
			if (catalog_remove_tree(sub, err))
				removed++;
		}
		else if (c == 0)
		{
			DIR		   *sd = opendir(sub);
			struct dirent *se;

			while (sd && (se = readdir(sd)) != NULL)
			{
				char		f[REPO_PATH_MAX];

				if (se->d_name[0] == '.' || strlen(se->d_name) < 24 ||
					strncmp(se->d_name, oldest, 24) >= 0)
					continue;
				snprintf(f, sizeof(f), "%s/%s", sub, se->d_name);
				if (unlink(f) == 0)
					removed++;
			}
			if (sd)
				closedir(sd);
			repo_fsync_dir(sub, err);
		}
	}
	closedir(d);
	repo_fsync_dir(dir, err);
	return removed;
}

bool
retention_apply(const ServerSettings *s, const char *stanza, PgbrBuf *report, PgbrError *err)
{
	const char *full_opt = pgbr_config_get(s->cfg, "repo1-retention-full");
	const char *diff_opt = pgbr_config_get(s->cfg, "repo1-retention-diff");
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
	if (!catalog_list(s->repo_path, stanza, &list, &n, err))
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
		if (!expire_backup(s->repo_path, stanza, list[i].label, err))
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
		int			removed = expire_wal(s->repo_path, stanza, oldest, err);

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
