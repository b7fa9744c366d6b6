/*
 * catalog.c
 *		What the repository holds: committed backups and the WAL range.
 */
#include "server.h"
#include "repo.h"
#include "pgbr_manifest.h"
#include "pgbr_wal.h"

#include <stdio.h>
#include <stdlib.h>

static int
cmp_label(const void *a, const void *b)
{
	return strcmp(((const BackupInfo *) a)->label, ((const BackupInfo *) b)->label);
}

/* reads the [backup] header of a manifest */
static bool
read_header(Storage *st, const char *path, BackupInfo *bi, bool *missing, PgbrError *err)
{
	StorageRead *sr = storage_read_open(st, path, 0, UINT64_MAX, missing, err);
	PgbrLineReader r;
	PgbrBuf		head;
	char	   *line;
	size_t		len;
	bool		ok = true;

	if (sr == NULL)
		return *missing && !pgbr_error_is_set(err);
	pgbr_buf_init(&head);
	pgbr_line_reader_init_source(&r, storage_read_source, sr);
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
	storage_read_close(sr);
	if (head.data == NULL)
		pgbr_buf_put(&head, "", 0);
	bi->header = (char *) head.data;
	return ok;
}

typedef struct LabelList
{
	char	  (*labels)[PGBR_NAME_MAX + 1];
	int			n;
	int			cap;
} LabelList;

static bool
collect_label(void *arg, const StorageEntry *e, PgbrError *err)
{
	LabelList  *l = arg;

	if (!e->is_dir || !pgbr_label_valid(e->name))
		return true;
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 16;
		l->labels = pgbr_realloc(l->labels, sizeof(*l->labels) * (size_t) l->cap);
	}
	snprintf(l->labels[l->n++], PGBR_NAME_MAX + 1, "%s", e->name);
	return true;
}

/* the labels of the backup directories of a stanza, committed or not */
static bool
list_labels(Storage *st, const char *stanza, LabelList *l, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];

	memset(l, 0, sizeof(*l));
	return storage_path(dir, err, "%s/backup", stanza) &&
		storage_list(st, dir, "", collect_label, l, err);
}

bool
catalog_list(Storage *st, const char *stanza, BackupInfo **list, int *n, PgbrError *err)
{
	LabelList	l;
	int			cap = 16;
	bool		ok;

	*n = 0;
	*list = pgbr_malloc(sizeof(BackupInfo) * (size_t) cap);
	ok = list_labels(st, stanza, &l, err);
	for (int i = 0; ok && i < l.n; i++)
	{
		char		path[REPO_PATH_MAX];
		BackupInfo *bi;
		bool		missing;

		if (*n == cap)
		{
			cap *= 2;
			*list = pgbr_realloc(*list, sizeof(BackupInfo) * (size_t) cap);
		}
		bi = &(*list)[*n];
		memset(bi, 0, sizeof(*bi));
		snprintf(bi->label, sizeof(bi->label), "%s", l.labels[i]);
		if (!storage_path(path, err, "%s/backup/%s/manifest", stanza, l.labels[i]))
			ok = false;
		else if (!read_header(st, path, bi, &missing, err))
			ok = false;
		else if (!missing)
			(*n)++;				/* without a manifest it is not a backup */
		if (!ok || missing)
			pgbr_free(bi->header);
	}
	pgbr_free(l.labels);
	if (!ok)
		return false;
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

/* smallest or largest name among entries of a WAL archive directory */
typedef struct Extreme
{
	bool		want_max;
	bool		dirs;
	char	   *out;
	size_t		outlen;
} Extreme;

static bool
extreme_entry(void *arg, const StorageEntry *e, PgbrError *err)
{
	Extreme    *x = arg;
	char		name[PGBR_NAME_MAX + 1];

	if (e->name[0] == '.' || e->is_dir != x->dirs)
		return true;
	if (x->dirs)
	{
		if (strlen(e->name) != 16 || strcmp(e->name, "timeline") == 0)
			return true;
		snprintf(name, sizeof(name), "%s", e->name);
	}
	else
	{
		/* <segment>-<sha>.ext: plain segments only */
		if (strlen(e->name) < 25 || e->name[24] != '-')
			return true;
		snprintf(name, sizeof(name), "%.24s", e->name);
		if (pgbr_wal_kind(name) != PGBR_WAL_SEGMENT)
			return true;
	}
	if (x->out[0] == '\0' || (x->want_max ? strcmp(name, x->out) > 0 : strcmp(name, x->out) < 0))
		snprintf(x->out, x->outlen, "%s", name);
	return true;
}

static bool
extreme(Storage *st, const char *dir, bool want_max, bool dirs, char *out, size_t outlen,
		PgbrError *err)
{
	Extreme		x = {want_max, dirs, out, outlen};

	out[0] = '\0';
	return storage_list(st, dir, "", extreme_entry, &x, err);
}

bool
catalog_archive_range(Storage *st, const char *stanza, char *min, char *max, PgbrError *err)
{
	char		dir[REPO_PATH_MAX],
				sub[REPO_PATH_MAX],
				name[PGBR_NAME_MAX + 1];

	min[0] = max[0] = '\0';
	if (!storage_path(dir, err, "%s/archive", stanza) ||
		!extreme(st, dir, false, true, name, sizeof(name), err))
		return false;
	if (name[0] && (!storage_path(sub, err, "%s/%s", dir, name) ||
					!extreme(st, sub, false, false, min, PGBR_NAME_MAX + 1, err)))
		return false;
	if (!extreme(st, dir, true, true, name, sizeof(name), err))
		return false;
	if (name[0] && (!storage_path(sub, err, "%s/%s", dir, name) ||
					!extreme(st, sub, true, false, max, PGBR_NAME_MAX + 1, err)))
		return false;
	return true;
}

void
catalog_remove_incomplete(Storage *st, const char *stanza)
{
	LabelList	l;
	PgbrError	err;

	pgbr_error_init(&err);
	if (!list_labels(st, stanza, &l, &err))
	{
		pgbr_log(PGBR_LOG_WARN, "%s", err.message);
		pgbr_free(l.labels);
		return;
	}
	for (int i = 0; i < l.n; i++)
	{
		char		path[REPO_PATH_MAX];
		bool		exists;

		pgbr_error_init(&err);
		if (!storage_path(path, &err, "%s/backup/%s/manifest", stanza, l.labels[i]) ||
			!storage_exists(st, path, &exists, &err))
		{
			pgbr_log(PGBR_LOG_WARN, "%s", err.message);
			continue;
		}
		if (exists)
			continue;
		snprintf(path, sizeof(path), "%s/backup/%s", stanza, l.labels[i]);
		pgbr_log(PGBR_LOG_INFO, "removing incomplete backup %s of stanza \"%s\"", l.labels[i], stanza);
		if (!storage_remove_tree(st, path, &err))
			pgbr_log(PGBR_LOG_WARN, "%s", err.message);
	}
	pgbr_free(l.labels);
}
