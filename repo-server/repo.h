/*
 * repo.h
 *		The repository on disk.  Layout under repo1-path:
 *
 *		<stanza>/stanza.info                     cluster identity
 *		<stanza>/archive/<16 hex>/<wal>-<sha256>.zst|.raw
 *		<stanza>/archive/timeline/<tli>.history-<sha256>.zst|.raw
 *		<stanza>/backup/<label>/...              backups (backup.c)
 *
 * Every file is written as a temporary name in its final directory,
 * fsynced, renamed, and the directory fsynced: a reader never sees a
 * partial file and an acknowledged file survives a crash.  Temporary names
 * start with '.' and are never listed or served.
 */
#ifndef PGBR_REPO_H
#define PGBR_REPO_H

#include "pgbr_proto.h"

#include <limits.h>

#define REPO_PATH_MAX 4096

/* "<repo>/<stanza>" + suffix; false if it does not fit */
extern bool repo_path(char *out, const char *repo, const char *stanza, const char *suffix);

/*
 * Refuses a path under the repository root (set once per session) that
 * goes through a symbolic link below that root.
 */
extern void repo_set_root(const char *root);
extern bool repo_no_links(const char *path, PgbrError *err);

extern bool repo_fsync_dir(const char *path, PgbrError *err);
/* creates missing directories of path (mode 0750), fsyncing each parent */
extern bool repo_mkdir_p(const char *path, PgbrError *err);

/* opens "<dir>/.<name>.<pid>.tmp" exclusively; path of it into tmppath */
extern int	repo_tmp_open(const char *dir, const char *name, char *tmppath, PgbrError *err);
/* fsync + close fd, rename tmppath to final, fsync the directory */
extern bool repo_commit(int fd, const char *tmppath, const char *final, PgbrError *err);
/* writes a small file durably in one go */
extern bool repo_write_file(const char *dir, const char *name, const void *data, size_t len,
							PgbrError *err);

/* exclusive lock on <repo>/<stanza>/<name>.lock; returns fd or -1 */
extern int	repo_lock(const char *repo, const char *stanza, const char *name, bool wait,
					  PgbrError *err);
extern void repo_unlock(int fd);

extern bool repo_stanza_read(const char *repo, const char *stanza, PgbrStanzaMsg *m,
							 bool *exists, PgbrError *err);
extern bool repo_stanza_create(const char *repo, const char *stanza, const PgbrStanzaMsg *m,
							   bool *created, PgbrError *err);

/* stored WAL file lookup */
typedef struct RepoWalFile
{
	char		path[REPO_PATH_MAX];
	uint8_t		sha256[32];
	uint8_t		compress;
} RepoWalFile;

extern bool repo_wal_dir(char *out, const char *repo, const char *stanza, const char *name);
extern bool repo_wal_find(const char *repo, const char *stanza, const char *name,
						  RepoWalFile *f, bool *found, PgbrError *err);

#endif							/* PGBR_REPO_H */
