/*
 * repo.c
 *		The stanza's identity and finding stored WAL files.
 */
#include "repo.h"
#include "pgbr_checksum.h"
#include "pgbr_wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

bool
repo_stanza_read(Storage *st, const char *stanza, PgbrStanzaMsg *m, bool *exists,
				 PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	PgbrBuf		b;
	bool		missing;
	int			have = 0;

	*exists = false;
	memset(m, 0, sizeof(*m));
	if (!storage_path(path, err, "%s/stanza.info", stanza))
		return false;
	pgbr_buf_init(&b);
	if (!storage_get(st, path, 4096, &b, &missing, err))
	{
		pgbr_buf_release(&b);
		return false;
	}
	if (missing)
	{
		pgbr_buf_release(&b);
		return true;
	}
	pgbr_buf_put_u8(&b, '\0');
	for (char *line = (char *) b.data; line && *line;)
	{
		char	   *nl = strchr(line, '\n');
		unsigned long long v;

		if (nl)
			*nl = '\0';
		if (sscanf(line, "system-id=%llu", &v) == 1)
			m->system_id = v, have |= 1;
		else if (sscanf(line, "pg-version=%llu", &v) == 1)
			m->pg_version = (uint32_t) v, have |= 2;
		else if (sscanf(line, "wal-segment-size=%llu", &v) == 1)
			m->seg_size = (uint32_t) v, have |= 4;
		line = nl ? nl + 1 : NULL;
	}
	pgbr_buf_release(&b);
	if (have != 7)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "stanza file \"%s\" in %s is damaged", path,
							  st->where);
	*exists = true;
	return true;
}

bool
repo_stanza_create(Storage *st, const char *stanza, const PgbrStanzaMsg *m, bool *created,
				   PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	PgbrStanzaMsg cur;
	bool		exists;
	PgbrBuf		b;
	bool		ok;

	*created = false;
	if (!repo_stanza_read(st, stanza, &cur, &exists, err))
		return false;
	if (exists)
	{
		if (cur.system_id != m->system_id || cur.pg_version / 10000 != m->pg_version / 10000)
		{
			pgbr_error_set(err, PGBR_ERR_ARCHIVE_MISMATCH,
						   "stanza \"%s\" already exists for another cluster: the repository has system identifier %" PRIu64 " (PostgreSQL %u), this cluster is %" PRIu64 " (PostgreSQL %u)",
						   stanza, cur.system_id, cur.pg_version / 10000, m->system_id,
						   m->pg_version / 10000);
			pgbr_error_hint(err, "Use another stanza name for this cluster, or check pg1-path.");
			return false;
		}
		return true;
	}
	if (!storage_path(path, err, "%s/stanza.info", stanza))
		return false;
	pgbr_buf_init(&b);
	pgbr_buf_printf(&b, "[db]\nsystem-id=%" PRIu64 "\npg-version=%u\nwal-segment-size=%u\n",
					m->system_id, m->pg_version, m->seg_size);
	ok = storage_put(st, path, b.data, b.len, err);
	pgbr_buf_release(&b);
	*created = ok;
	return ok;
}

bool
repo_wal_dir(char *out, const char *stanza, const char *name, PgbrError *err)
{
	if (pgbr_wal_kind(name) == PGBR_WAL_HISTORY)
		return storage_path(out, err, "%s/archive/timeline", stanza);
	return storage_path(out, err, "%s/archive/%.16s", stanza, name);
}

typedef struct WalFind
{
	const char *name;
	const uint8_t *unlike;
	RepoWalFile *f;
	bool		found;
} WalFind;

/* "<name>-<64 hex>.zst" or ".raw" */
static bool
wal_find_entry(void *arg, const StorageEntry *e, PgbrError *err)
{
	WalFind    *w = arg;
	size_t		nlen = strlen(w->name);
	const char *rest;
	char		hex[PGBR_SHA256_HEXLEN + 1];
	uint8_t		sha[PGBR_SHA256_LEN];
	uint8_t		compress;

	if (e->is_dir || strncmp(e->name, w->name, nlen) != 0 || e->name[nlen] != '-')
		return true;
	rest = e->name + nlen + 1;
	if (strlen(rest) != PGBR_SHA256_HEXLEN + 4)
		return true;
	memcpy(hex, rest, PGBR_SHA256_HEXLEN);
	hex[PGBR_SHA256_HEXLEN] = '\0';
	if (!pgbr_hex_decode(hex, sha, PGBR_SHA256_LEN))
		return true;
	if (strcmp(rest + PGBR_SHA256_HEXLEN, ".zst") == 0)
		compress = PGBR_COMPRESS_ZST;
	else if (strcmp(rest + PGBR_SHA256_HEXLEN, ".raw") == 0)
		compress = PGBR_COMPRESS_NONE;
	else
		return true;
	if (w->unlike && memcmp(w->unlike, sha, PGBR_SHA256_LEN) == 0)
		return true;
	memcpy(w->f->sha256, sha, PGBR_SHA256_LEN);
	w->f->compress = compress;
	snprintf(w->f->path, sizeof(w->f->path), "%s", e->name);	/* dir added below */
	w->found = true;
	return false;
}

bool
repo_wal_find(Storage *st, const char *stanza, const char *name, const uint8_t *unlike,
			  RepoWalFile *f, bool *found, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	char		prefix[PGBR_NAME_MAX + 2];
	WalFind		w = {name, unlike, f, false};

	*found = false;
	snprintf(prefix, sizeof(prefix), "%s-", name);
	if (!repo_wal_dir(dir, stanza, name, err) ||
		!storage_list(st, dir, prefix, wal_find_entry, &w, err))
		return false;
	if (w.found)
	{
		char		entry[REPO_PATH_MAX];

		memcpy(entry, f->path, sizeof(entry));
		if (!storage_path(f->path, err, "%s/%s", dir, entry))
			return false;
		*found = true;
	}
	return true;
}
