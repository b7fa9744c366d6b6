/*
 * restore_int.h
 *		Shared by the files of pgbr restore (restore.c: the command and the
 *		passes over the manifest; restore_clean.c: the delta clean-up;
 *		restore_files.c: the workers that restore the files, and
 *		pg_control): the restore's state, the manifest stream, small
 *		file-system helpers.
 */
#ifndef PGBR_RESTORE_INT_H
#define PGBR_RESTORE_INT_H

#include "restore.h"
#include "restore_fsync.h"
#include "restore_sha.h"

#include <limits.h>

#define PG_CONTROL			"global/pg_control"
/*
 * Not restored: PostgreSQL would recreate the links of pg_tblspc from it at
 * startup, undoing --tablespace-map.  The links are restored here instead.
 */
#define TABLESPACE_MAP		"tablespace_map"
#define PIPELINE_MAX		16	/* FILE_GET requests in flight per session */
#define WORKERS_MAX			64
/*
 * The biggest files are claimed first, biggest first, so that the workers
 * start on them at once and the small files fill the gaps at the end: a
 * big file claimed late would be alone on the critical path.  Bounded, so
 * that memory does not grow with the number of files.
 */
#define BIG_MAX				32
#define BIG_MIN				(8 * 1024 * 1024)
#define BIG_LINE_MAX		(PGBR_PATH_MAX * 2 + 1024)
/* from this size on a file is hashed and written on helper threads (restore_sha.c) */
#define THREADED_SHA_MIN	(8 * 1024 * 1024)

typedef struct TsMap
{
	char		oid[16];
	const char *path;
	bool		used;
} TsMap;

typedef struct WorkerError
{
	int			code;
	char		message[1024];
	char		hint[512];
} WorkerError;

/* shared by the workers (MAP_SHARED) */
typedef struct Shared
{
	uint64_t	next_file;		/* next file number to claim */
	int32_t		failures;
	int32_t		first_failed;	/* worker whose error is reported */
	uint64_t	done_bytes;
	uint64_t	fetched_files;
	uint64_t	fetched_bytes;
	uint64_t	kept_files;
	uint64_t	kept_bytes;
	uint64_t	repo_bytes;
	WorkerError errors[WORKERS_MAX];
	uint64_t	big_next;		/* next big[] entry to claim */
	int			nbig;
	struct
	{
		uint64_t	filenum;	/* among the files the workers restore */
		uint64_t	size;
		char		line[BIG_LINE_MAX];
	}			big[BIG_MAX];	/* biggest first */
} Shared;

typedef struct Restore
{
	ToolContext *ctx;
	char		pg_path[PATH_MAX];
	char		label[PGBR_LABEL_MAX + 1];
	ToolBackup	hdr;
	int			manifest_fd;	/* unlinked temporary file */
	bool		delta;
	bool		force;			/* delta: size and mtime suffice, no checksum */
	int			process_max;
	TsMap	   *tsmap;
	int			ntsmap;
	RecoverySettings rs;
	char		config_abs[PATH_MAX];
	bool		do_chown;
	uid_t		uid;
	gid_t		gid;
	uint64_t	file_total;
	uint64_t	size_total;
	char		pg_control_line[PGBR_PATH_MAX * 2 + 1024];
	bool		have_pg_control;
	Shared	   *shared;
	/* this process's end of the pipeline (a worker, or pg_control's) */
	RestoreSha *sha;
	PgbrSink   *out;
	RestoreFsync *fsyncs;		/* a worker's deferred fsyncs; NULL: at once */
} Restore;

typedef struct MIter
{
	int			fd;
	PgbrLineReader r;
} MIter;

/* the manifest's [files] section as a stream (restore.c) */
extern bool restore_miter_open(Restore *r, MIter *it, PgbrError *err);
extern void restore_miter_close(MIter *it);
/* 1: an entry (line and len may be NULL), 0: end, -1: error */
extern int	restore_miter_next(Restore *r, MIter *it, PgbrManifestEntry *e, char **line,
							   size_t *len, PgbrError *err);

/* a/b into out */
extern void restore_join(char *out, size_t len, const char *a, const char *b);
/* removes a file, a link (not its target) or a whole directory tree */
extern bool restore_remove_any(const char *path, PgbrError *err);
/* a link pg_tblspc/OID */
extern bool restore_is_tablespace_link(const PgbrManifestEntry *e);
/* where a link points to, after --tablespace-map */
extern const char *restore_link_target(Restore *r, const PgbrManifestEntry *e);

/*
 * Pass 2, delta only (restore_clean.c): removes what the manifest does not
 * list, then global/pg_control.
 */
extern bool restore_clean_pass(Restore *r, PgbrError *err);

/*
 * Pass 4 (restore_files.c): every file but pg_control, by process-max
 * workers; every file written is durable when it returns true.
 */
extern bool restore_workers_run(Restore *r, PgbrError *err);

/* pass 7 (restore_files.c): global/pg_control, fsynced with its directory */
extern bool restore_pg_control(Restore *r, PgbrError *err);

#endif							/* PGBR_RESTORE_INT_H */
