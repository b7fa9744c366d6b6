/*
 * backup.h
 *		What the files of a backup share: the slot in shared memory through
 *		which the calling session, the backup worker and its helper workers
 *		talk, the file list, and the stream that sends files.
 *
 * One slot per cluster: a cluster backs up to one stanza (pgbr.stanza),
 * and one backup of a stanza runs at a time.
 *
 * Who writes what:
 *	- the calling session claims the slot (in_use, generation), starts the
 *	  worker and waits for state DONE or FAILED;
 *	- the worker fills in the backup (label, token, list files, settings),
 *	  reports progress and the result, and wakes the caller;
 *	- every stream (the worker and its helpers) claims entries of the file
 *	  list with next_entry, so each sends an increasing run of indexes, i.e.
 *	  its files in walk order, as the server requires;
 *	- a failing helper records its error (stream_error) and sets abort.
 */
#ifndef PGBR_BACKUP_H
#define PGBR_BACKUP_H

#include "pgbr_ext.h"
#include "pgbr_manifest.h"

#include "access/xlogdefs.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

/* process-max is at most 64: the worker plus 63 helpers */
#define PGBR_HELPERS_MAX	63

/* pgbr's own files under base/pgsql_tmp (removed at startup after a crash) */
#define PGBR_TMP_DIR		"base/" PG_TEMP_FILES_DIR
#define PGBR_TMP_PREFIX		PGBR_TMP_DIR "/" PG_TEMP_FILE_PREFIX "_pgbr_"

typedef enum PgbrBackupState
{
	PGBR_STATE_IDLE = 0,
	PGBR_STATE_STARTING,		/* claimed by a caller, worker not attached */
	PGBR_STATE_RUNNING,
	PGBR_STATE_DONE,
	PGBR_STATE_FAILED
} PgbrBackupState;

/*
 * What the worker of a slot does.  A backup taken from the standby but run
 * by the primary (backup-standby) has two slots at work: the primary's, in
 * mode BACKUP, owns the backup (BACKUP_BEGIN .. BACKUP_END) and calls
 * pgbr_backup_standby_copy() on the standby over libpq; that call runs the
 * standby's slot in mode STANDBY_COPY, whose worker and helpers join the
 * backup (BACKUP_JOIN with its token) and send the replicated files as
 * read on the standby (see pgbr_walk_standby_path).
 */
typedef enum PgbrBackupMode
{
	PGBR_MODE_BACKUP = 0,
	PGBR_MODE_STANDBY_COPY
} PgbrBackupMode;

typedef enum PgbrBackupPhase
{
	PGBR_PHASE_STARTING = 0,
	PGBR_PHASE_CHECKPOINT,
	PGBR_PHASE_LISTING,
	PGBR_PHASE_COPYING,
	PGBR_PHASE_STOPPING,
	PGBR_PHASE_ARCHIVE_WAIT,
	PGBR_PHASE_COMMITTING,
	PGBR_PHASE_STANDBY_WAIT		/* backup-standby: replay on the standby */
} PgbrBackupPhase;

extern const char *pgbr_phase_name(int phase);

/* an error carried from one process to another */
typedef struct PgbrSharedError
{
	int			sqlstate;
	char		message[1024];
	char		detail[1024];
	char		hint[512];
} PgbrSharedError;

typedef struct PgbrBackupShared
{
	LWLock	   *lock;

	/* protected by lock */
	bool		in_use;
	uint32		generation;		/* changes with every claim */
	int			state;			/* PgbrBackupState */
	bool		caller_waiting;
	pid_t		caller_pid;
	Latch	   *caller_latch;
	pid_t		worker_pid;
	Latch	   *worker_latch;
	TimestampTz started;
	PgbrSharedError error;		/* state FAILED: why */
	char		summary[256];	/* state DONE: the server's summary */
	char		notice[256];	/* for the caller, e.g. type changed */
	char		warning[512];	/* for the caller, e.g. no standby: primary used */
	bool		abort;			/* a stream failed: every stream stops */
	PgbrSharedError stream_error;	/* first error of a helper */
	bool		helper_done[PGBR_HELPERS_MAX];

	/* set by the caller before the worker starts, then read-only */
	int			mode;			/* PgbrBackupMode */
	Oid			dboid;
	char		stanza[PGBR_NAME_MAX + 1];
	char		type[8];		/* requested */
	char		prior[PGBR_LABEL_MAX + 1];	/* STANDBY_COPY: the backup's prior */

	/*
	 * Set by the worker before helpers start, then read-only.  In mode
	 * STANDBY_COPY the caller sets label, token and start_lsn, as the primary
	 * sent them.
	 */

	char		label[PGBR_LABEL_MAX + 1];
	char		backup_type[8];	/* as the server decided */
	char		token[PGBR_NAME_MAX + 1];
	char		list_path[MAXPGPATH];
	char		index_path[MAXPGPATH];
	XLogRecPtr	start_lsn;
	bool		verify_checksums;
	bool		delta;
	int			compress;		/* PgbrCompress */
	int			compress_level;

	/* progress and claims: lock-free */
	pg_atomic_uint32 phase;
	pg_atomic_uint64 next_entry;

	/*
	 * The streams start while the list is still being written: the walk
	 * publishes in entries_ready how many entries both files hold in full,
	 * and sets list_complete once it has ended (entries_ready is then the
	 * list's length).
	 */
	pg_atomic_uint64 entries_ready;
	pg_atomic_uint32 list_complete;
	pg_atomic_uint64 files_total;
	pg_atomic_uint64 files_done;
	pg_atomic_uint64 bytes_total;
	pg_atomic_uint64 bytes_done;
	pg_atomic_uint32 checksum_files;	/* files with invalid pages */
} PgbrBackupShared;

/* shmem.c: NULL unless pgbr is in shared_preload_libraries */
extern PgbrBackupShared *pgbr_backup_shared(void);
extern void pgbr_shared_error_set(PgbrSharedError *dst, const ErrorData *edata);
extern void pgbr_shared_error_raise(const PgbrSharedError *e);

/*
 * backup_helper.c: the helper processes.  pgbr_helpers_start starts up
 * to n of them (fewer when no background worker slot is free, with a
 * WARNING) and returns how many; pgbr_helpers_wait returns once all have
 * ended with their share done, and raises the first stream error otherwise.
 */
extern int	pgbr_helpers_start(PgbrBackupShared *shared, uint32 generation, int n,
							   BackgroundWorkerHandle **handles);
extern void pgbr_helpers_wait(PgbrBackupShared *shared, BackgroundWorkerHandle **handles, int n);
extern PGDLLEXPORT void pgbr_backup_helper_main(Datum arg);

/* a joined session of the running backup (BACKUP_JOIN label, token) */
extern PgbrConn *pgbr_backup_join(PgbrBackupShared *shared, const PgbrConfig *cfg,
								  SSL_CTX **tls);

/*
 * backup_walk.c: walks the data directory and the tablespaces in walk
 * order, leaves out what a base backup leaves out, merges the walk with
 * the prior manifest (prior_path, NULL for a full backup) and writes the
 * file list: list_path holds one manifest line per entry, index_path one
 * (offset, length) record per line.  An unchanged file's line is already
 * the reference line to send.  Fills nentries, files and bytes totals.
 * When shared is not NULL, the count of entries already in both files is
 * stored in its entries_ready as the walk goes (and the total at its end),
 * so that streams can send them meanwhile, with the files and bytes listed
 * so far in files_total and bytes_total.
 */
typedef struct PgbrWalkResult
{
	uint64		nentries;
	uint64		files;
	uint64		bytes;
	uint64		references;
} PgbrWalkResult;

/*
 * Which entries a walk lists: all of them (a backup read on one server), or
 * one server's share of a backup taken from the standby: the standby sends
 * the replicated relation data -- what is under base/ and global/ (but
 * global/pg_control) and inside tablespaces --, the primary everything else
 * (configuration files, SLRUs, directories and links at the top): files
 * that are not replicated, or not the same on a standby (postgresql.auto.conf
 * with ALTER SYSTEM settings, standby.signal), come from the primary, as in
 * pgBackRest.  The two shares are disjoint and each is in walk order; the
 * server merges them.
 */
typedef enum PgbrWalkPart
{
	PGBR_WALK_ALL = 0,
	PGBR_WALK_PRIMARY,
	PGBR_WALK_STANDBY
} PgbrWalkPart;

/* whether a data-directory path is the standby's share (see PgbrWalkPart) */
extern bool pgbr_walk_standby_path(const char *path);

extern void pgbr_walk_build(const char *list_path, const char *index_path,
							const char *prior_path, PgbrCompress compress,
							PgbrWalkPart part, PgbrWalkResult *result,
							PgbrBackupShared *shared);

/*
 * Whether a data-directory path is a relation file whose pages carry
 * checksums (under global/, base/ or pg_tblspc/, named
 * <relfilenode>[_fork][.segment]); *segno is its segment number.
 */
extern bool pgbr_relation_file(const char *path, uint32 *segno);

/* one record of the index file: u64 offset, u32 length (native order) */
#define PGBR_INDEX_RECORD	12

/*
 * backup_send.c: a stream sends the entries it claims from the list on its
 * own session, then waits for the last answers.  Raises ERROR on failure.
 */
extern void pgbr_stream_run(PgbrBackupShared *shared, PgbrConn *conn);

/*
 * Sends a file whose content is in memory (backup_label, pg_control,
 * tablespace_map) and waits for the answer.
 */
extern void pgbr_stream_send_content(PgbrConn *conn, const char *path, const char *data,
									 size_t len, uint32 mode, int64 mtime,
									 PgbrCompress compress, int level);

/*
 * standby.c: the primary's side of a backup taken from the standby, over
 * libpq (pg2-host / pg2-socket-path, pg2-port, pg2-user, pg2-database).
 * Every wait is on the latch and the socket, so the worker stays
 * interruptible.  pgbr_standby_open and pgbr_standby_wait_replay return
 * false with the reason in why when the standby cannot be used (the caller
 * decides: ERROR for backup-standby=y, the primary for prefer); the others
 * raise ERROR.
 */
typedef struct PgbrStandby
{
	void	   *conn;			/* PGconn *, NULL when closed */
	bool		fd_reserved;	/* AcquireExternalFD done */
	bool		copy_running;	/* the CALL is in progress */
	int			io_timeout_ms;	/* io-timeout: bound of each query but the copy */
	char		where[256];		/* "pg2 (host=..., port=...)" for messages */
	char		call[256];		/* CALL <schema>.pgbr_backup_standby_copy(...) */
} PgbrStandby;

extern bool pgbr_standby_open(const PgbrConfig *cfg, PgbrStandby *sb, char *why, size_t whylen);
extern bool pgbr_standby_wait_replay(PgbrStandby *sb, XLogRecPtr lsn, TimeLineID tli, int lag_s,
									 char *why, size_t whylen);
extern void pgbr_standby_copy_start(PgbrStandby *sb, const char *stanza, const char *label,
									const char *token, const char *prior, XLogRecPtr start_lsn);

/*
 * Waits for the standby's copy; keepalive(arg) runs every keepalive_s
 * seconds meanwhile (the main session must not look idle to the server).
 * Returns the standby's summary (palloc'd); ERROR with the standby's error.
 */
extern char *pgbr_standby_copy_finish(PgbrStandby *sb, void (*keepalive) (void *), void *arg,
									  int keepalive_s);

/* cancels a copy still running and closes; never throws (exit handlers) */
extern void pgbr_standby_close(PgbrStandby *sb);

#endif							/* PGBR_BACKUP_H */
