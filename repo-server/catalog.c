/*
 * catalog.c
 *		What the repository holds: committed backups and the WAL range.
 */
#include "server.h"
#include "repo.h"
#include "pgbr_manifest.h"
#include "pgbr_wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int
cmp_label(const void *a, const void *b)
{
	return strcmp(((const BackupInfo *) a)->label, ((const BackupInfo *) b)->label);
}

/* reads the [backup] header of a manifest */
static bool
read_header(const char *path, BackupInfo *bi, PgbrError *err)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	PgbrLineReader r;
	PgbrBuf		head;
	char	   *line;
	size_t		len;
	bool		ok = true;

	if (fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
	pgbr_buf_init(&head);
	pgbr_line_reader_init(&r, fd);
	while (pgbr_line_reader_next(&r, &line, &len, err))
	{
		char	   *key,
				   *value;

		if (strcmp(line, "[files]") == 0)
			break;
		if (line[0] == '[')
			continue;
		pgbr_buf_put(&head, line, len);
		pgbr_buf_put_u8(&head, '\n');
		if (!pgbr_kv_split(line, &key, &value))
			continue;
		if (strcmp(key, "type") == 0)
			snprintf(bi->type, sizeof(bi->type), "%s", value);
		else if (strcmp(key, "prior") == 0)
			snprintf(bi->prior, sizeof(bi->prior), "%s", value);
		else if (strcmp(key, "wal-start") == 0)
			snprintf(bi->wal_start, sizeof(bi->wal_start), "%s", value);
	}
	if (pgbr_error_is_set(err))
		ok = false;
	pgbr_line_reader_free(&r);
	close(fd);
	if (head.data == NULL)
		pgbr_buf_put(&head, "", 0);
	bi->header = (char *) head.data;
	return ok;
}

bool
catalog_list(const char *repo, const char *stanza, BackupInfo **list, int *n, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	DIR		   *d;
	struct dirent *de;
	int			cap = 16;

	*n = 0;
	*list = pgbr_malloc(sizeof(BackupInfo) * (size_t) cap);
	if (!repo_path(dir, repo, stanza, "/backup"))
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "path too long");
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? true :
			pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", dir);
	while ((de = readdir(d)) != NULL)
	{
		char		path[REPO_PATH_MAX];
		BackupInfo *bi;

		if (!pgbr_label_valid(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/manifest", dir, de->d_name);
		{
			PgbrError	lerr;

			pgbr_error_init(&lerr);
			if (!repo_no_links(path, &lerr))
				continue;		/* planted link: not a backup of ours */
		}
		if (access(path, F_OK) != 0)
			continue;			/* incomplete: not a backup */
		if (*n == cap)
		{
			cap *= 2;
			*list = pgbr_realloc(*list, sizeof(BackupInfo) * (size_t) cap);
		}
		bi = &(*list)[*n];
		memset(bi, 0, sizeof(*bi));
		snprintf(bi->label, sizeof(bi->label), "%s", de->d_name);
		if (!read_header(path, bi, err))
		{
			pgbr_free(bi->header);
			closedir(d);
			return false;
		}
		(*n)++;
	}
	closedir(d);
	qsort(*list, (size_t) *n, sizeof(BackupInfo), cmp_label);
	return true;
}

void
catalog_free(BackupInfo *list, int n)
{
	for (int i = 0; list && i < n; i++)
		pgbr_free(list[i].header);
	pgbr_free(list);
}

/* smallest or largest entry name of dir satisfying a WAL-kind filter */
static void
extreme_entry(const char *dir, bool want_max, bool dirs, char *out, size_t outlen)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;

	out[0] = '\0';
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		char		name[PGBR_NAME_MAX + 1];

		if (de->d_name[0] == '.')
			continue;
		if (dirs)
		{
			if (strlen(de->d_name) != 16 || strcmp(de->d_name, "timeline") == 0)
				continue;
			snprintf(name, sizeof(name), "%s", de->d_name);
		}
		else
		{
			/* <segment>-<sha>.ext: plain segments only */
			if (strlen(de->d_name) < 25 || de->d_name[24] != '-')
				continue;
			snprintf(name, sizeof(name), "%.24s", de->d_name);
			if (pgbr_wal_kind(name) != PGBR_WAL_SEGMENT)
				continue;
		}
		if (out[0] == '\0' || (want_max ? strcmp(name, out) > 0 : strcmp(name, out) < 0))
			snprintf(out, outlen, "%s", name);
	}
	closedir(d);
}

bool
catalog_archive_range(const char *repo, const char *stanza, char *min, char *max,
					  PgbrError *err)
{
	char		dir[REPO_PATH_MAX],
				sub[REPO_PATH_MAX],
				name[PGBR_NAME_MAX + 1];

	min[0] = max[0] = '\0';
	if (!repo_path(dir, repo, stanza, "/archive"))
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "path too long");
	extreme_entry(dir, false, true, name, sizeof(name));
	if (name[0])
	{
		snprintf(sub, sizeof(sub), "%s/%s", dir, name);
		extreme_entry(sub, false, false, min, PGBR_NAME_MAX + 1);
	}
	extreme_entry(dir, true, true, name, sizeof(name));
	if (name[0])
	{
		snprintf(sub, sizeof(sub), "%s/%s", dir, name);
		extreme_entry(sub, true, false, max, PGBR_NAME_MAX + 1);
	}
	return true;
}

bool
catalog_remove_tree(const char *path, PgbrError *err)
{
	struct stat st;
	DIR		   *d;
	struct dirent *de;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? true :
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not stat \"%s\"", path);
	if (!S_ISDIR(st.st_mode))
	{
		if (unlink(path) != 0)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", path);
		return true;
	}
	d = opendir(path);
	if (d == NULL)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
	while ((de = readdir(d)) != NULL)
	{
		char		child[REPO_PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		if (!catalog_remove_tree(child, err))
		{
			closedir(d);
			return false;
		}
	}
	closedir(d);
	if (rmdir(path) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", path);
	return true;
}

void
catalog_remove_incomplete(const char *repo, const char *stanza)
{
	char		dir[REPO_PATH_MAX];
	DIR		   *d;
	struct dirent *de;

	if (!repo_path(dir, repo, stanza, "/backup") || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		char		path[REPO_PATH_MAX];
		PgbrError	err;

		if (!pgbr_label_valid(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/manifest", dir, de->d_name);
		if (access(path, F_OK) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		pgbr_error_init(&err);
		pgbr_log(PGBR_LOG_INFO, "removing incomplete backup %s of stanza \"%s\"", de->d_name, stanza);
		if (!catalog_remove_tree(path, &err))
			pgbr_log(PGBR_LOG_WARN, "%s", err.message);
	}
	closedir(d);
}
