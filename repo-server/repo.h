/*
 * repo.h
 *		The repository's layout and the stanza's identity.  Paths are
 *		relative to the repository root (storage.h):
 *
 *		<stanza>/stanza.info                     cluster identity
 *		<stanza>/archive/<16 hex>/<wal>-<sha256>.zst|.raw
 *		<stanza>/archive/timeline/<tli>.history-<sha256>.zst|.raw
 *		<stanza>/backup/<label>/...              backups (backup.c)
 *		<stanza>/backup.lock, archive.lock       locks (storage_lock)
 */
#ifndef PGBR_REPO_H
#define PGBR_REPO_H

#include "pgbr_proto.h"
#include "storage.h"

#define REPO_PATH_MAX STORAGE_PATH_MAX

extern bool repo_stanza_read(Storage *st, const char *stanza, PgbrStanzaMsg *m, bool *exists,
							 PgbrError *err);
extern bool repo_stanza_create(Storage *st, const char *stanza, const PgbrStanzaMsg *m,
							   bool *created, PgbrError *err);

/* a stored WAL file */
typedef struct RepoWalFile
{
	char		path[REPO_PATH_MAX];
	uint8_t		sha256[32];
	uint8_t		compress;
} RepoWalFile;

/* "<stanza>/archive/<16 hex>" or ".../timeline" */
extern bool repo_wal_dir(char *out, const char *stanza, const char *name, PgbrError *err);

/*
 * Looks for a stored file of WAL file `name`.  With unlike set, only a
 * file whose checksum differs from it counts (a concurrent push of other
 * content).
 */
extern bool repo_wal_find(Storage *st, const char *stanza, const char *name,
						  const uint8_t *unlike, RepoWalFile *f, bool *found, PgbrError *err);

#endif							/* PGBR_REPO_H */
