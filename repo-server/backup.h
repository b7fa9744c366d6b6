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
	int			lock_fd;		/* backup.lock (main) */
	int			sessions_fd;	/* .sessions: shared flock while writing */
	char		label[PGBR_NAME_MAX + 1];
	char		prior[PGBR_NAME_MAX + 1];
	char		type[8];
	char		dir[REPO_PATH_MAX];
	int			part_fd;
	char		part_path[REPO_PATH_MAX];
	PgbrManifestEntry last;		/* last line written: order check */
	bool		have_last;
	int			bundle_fd;
	char		bundle[PGBR_NAME_MAX + 1];
	uint64_t	bundle_size;
	int			bundle_seq;
	bool		bundling;
	uint64_t	bundle_limit;	/* files up to this size go into bundles */
	uint64_t	bundle_max;		/* a bundle is closed beyond this size */
	PgbrBuf		line;
} BackupSession;

extern void close_bundle(BackupSession *b);
extern void backup_session_free(Session *sess);

/* backup_commit.c */
/* waits until the backup's joined sessions ended (their shared lock is gone) */
extern bool wait_for_sessions(BackupSession *b, int seconds, PgbrError *err);
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
