/*
 * backup.h
 *		State of a session that writes a backup, shared by backup.c (begin,
 *		join, file upload) and backup_commit.c (end, abort).
 */
#ifndef PGBR_SERVER_BACKUP_H
#define PGBR_SERVER_BACKUP_H

#include "server.h"
#include "repo.h"
#include "pgbr_manifest.h"

typedef struct BackupSession
{
	bool		main;			/* began the backup (holds the lock) */
	bool		committed;
	StorageLock *lock;			/* backup.lock (main) */
	char		id[64];			/* "<pid>-<random>": names part, marker, bundles */
	char		label[PGBR_NAME_MAX + 1];
	char		prior[PGBR_NAME_MAX + 1];
	char		type[8];
	char		dir[REPO_PATH_MAX]; /* "<stanza>/backup/<label>" */
	StorageFile *part;			/* manifest lines of the files received */
	PgbrManifestEntry last;		/* last line written: order check */
	bool		have_last;
	StorageFile *bundle_file;
	char		bundle[PGBR_NAME_MAX + 1];
	uint64_t	bundle_size;
	int			bundle_seq;
	bool		bundling;
	uint64_t	bundle_limit;	/* files up to this size go into bundles */
	uint64_t	bundle_max;		/* a bundle is closed beyond this size */
	int64_t		running_checked;	/* when the token was last seen (s) */
	char		reference_ok[PGBR_NAME_MAX + 1];	/* last prior found */
	PgbrBuf		part_out;		/* lines gathered for part (backup.c) */
	PgbrBuf		bundle_out;		/* content gathered for bundle_file */
	PgbrError	lost;			/* a gathered write failed */
} BackupSession;

/* backup.c */
extern bool close_bundle(BackupSession *b, PgbrError *err);
extern void backup_session_free(Session *sess);
/* takes <stanza>/backup.lock without waiting; NULL with a clear error */
extern StorageLock *backup_lock_take(Session *sess, PgbrError *err);

/* backup_commit.c */

/*
 * Waits until every joined session of the backup ended.  With need_parts,
 * a session that ended without completing its part is an error (its files
 * would be missing from the manifest).
 */
extern bool wait_for_sessions(Session *sess, BackupSession *b, int seconds, bool need_parts,
							  PgbrError *err);
extern bool backup_end(Session *sess);
extern bool backup_abort(Session *sess);

/* repo_read.c */
extern bool manifest_get(Session *sess);
extern bool file_get(Session *sess);
extern bool info_handle(Session *sess);
extern bool expire_handle(Session *sess);

/* streams a file (or a range of it) as DATA frames and END */
extern bool send_file_range(Session *sess, const char *path, uint64_t offset, uint64_t length,
							bool whole, PgbrError *err);

#endif							/* PGBR_SERVER_BACKUP_H */
