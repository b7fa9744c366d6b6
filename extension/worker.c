/*
 * worker.c
 *		The backup background worker: one backup, start to commit.
 *
 * The worker runs one backup for the session that started it (see
 * backup_sql.c): BACKUP_BEGIN, the prior manifest for a diff/incr,
 * pg_backup_start, the file list, the streams (itself plus process-max - 1
 * helper workers, each on its own joined session), pg_backup_stop, the
 * late files (backup_label, global/pg_control, tablespace_map) on one more
 * joined session, the wait for the WAL of the backup to reach the archive,
 * BACKUP_END.  The result or the error goes to the slot in shared memory
 * and the caller's latch is set.
 *
 * The helper processes are in backup_helper.c, the streams in
 * backup_send.c, the file list in backup_walk.c.
 *
 * With backup-standby=y|prefer (and this cluster a primary) the backup is
 * taken from the standby: after pg_backup_start here, the worker connects
 * to the standby over libpq (standby.c), waits for it to replay and flush
 * everything up to the start LSN, and calls pgbr_backup_standby_copy()
 * there, which runs the standby's own worker in mode STANDBY_COPY: it joins
 * the backup and sends the standby's share of the files (see
 * pgbr_walk_standby_path) while this worker sends the primary's share.
 * pg_backup_stop, the late files and the WAL check stay here.  The same
 * worker in mode STANDBY_COPY is run_standby_copy() below.
 *
 * A backup started on a standby itself (SELECT pgbr_backup() there) is an
 * ordinary backup in backup mode on the standby: BACKUP FROM: standby.
 *
 * Stopping: SIGTERM (the caller cancelled, or an administrator) makes the
 * next CHECK_FOR_INTERRUPTS exit the process.  The exit closes the
 * sessions, so the server removes the incomplete backup; PostgreSQL's own
 * exit handler ends the backup mode that pg_backup_start began; our exit
 * handler stops the helpers, removes the list files and reports FAILED.
 * An ERROR takes the same way after the error is recorded for the caller.
 *
 * No transaction stays open between steps, and none holds a snapshot
 * while waiting: pg_backup_start is called without one (its checkpoint may
 * take minutes) and pg_backup_stop(false) does not wait.
 */
#include "backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogrecovery.h"
#include "common/controldata_utils.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

/* what the worker owns, for its exit handler */
typedef struct WorkerState
{
	uint32		generation;
	PgbrConn   *conn;
	SSL_CTX    *tls;
	PgbrConn   *late_conn;
	SSL_CTX    *late_tls;
	BackgroundWorkerHandle *helpers[PGBR_HELPERS_MAX];
	int			nhelpers;
	char		prior_label[PGBR_LABEL_MAX + 1];
	char		prior_path[MAXPGPATH];
	char		list_path[MAXPGPATH];
	char		index_path[MAXPGPATH];
	char		start_wal[MAXFNAMELEN];	/* for the keepalive */
	PgbrStandby standby;		/* backup-standby: the libpq connection */
	bool		ended;			/* the result is in the slot */
} WorkerState;

static WorkerState ws;
static PgbrBackupShared *shared = NULL;

/* ---- the slot ---- */

/* progress for pgbr_progress, and the query text of pg_stat_activity */
static void
set_phase(PgbrBackupPhase phase)
{
	char		activity[128];

	pg_atomic_write_u32(&shared->phase, (uint32) phase);
	snprintf(activity, sizeof(activity), "pgbr backup: %s", pgbr_phase_name(phase));
	pgstat_report_activity(STATE_RUNNING, activity);
}

static bool
slot_attach(uint32 generation)
{
	bool		ok;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	ok = shared->in_use && shared->generation == generation &&
		shared->state == PGBR_STATE_STARTING && shared->caller_waiting;
	if (ok)
	{
		shared->state = PGBR_STATE_RUNNING;
		shared->worker_pid = MyProcPid;
		shared->worker_latch = MyLatch;
	}
	else if (shared->in_use && shared->generation == generation)
	{
		/* the caller left before we started: nobody wants this backup */
		shared->in_use = false;
		shared->state = PGBR_STATE_IDLE;
	}
	LWLockRelease(shared->lock);
	return ok;
}

/* records the result; the caller, if still there, takes it */
static void
slot_finish(bool ok, const ErrorData *edata, const char *message)
{
	Latch	   *caller = NULL;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->in_use && shared->generation == ws.generation &&
		shared->state == PGBR_STATE_RUNNING)
	{
		shared->state = ok ? PGBR_STATE_DONE : PGBR_STATE_FAILED;
		if (edata)
			pgbr_shared_error_set(&shared->error, edata);
		else if (!ok)
		{
			shared->error.sqlstate = ERRCODE_ADMIN_SHUTDOWN;
			strlcpy(shared->error.message, message, sizeof(shared->error.message));
			shared->error.detail[0] = shared->error.hint[0] = '\0';
		}
		shared->abort = !ok;
		shared->worker_pid = 0;
		shared->worker_latch = NULL;
		if (shared->caller_waiting)
			caller = shared->caller_latch;
		else
		{
			shared->in_use = false;
			shared->state = PGBR_STATE_IDLE;
		}
	}
	LWLockRelease(shared->lock);
	if (caller)
		SetLatch(caller);
	ws.ended = true;
}

/* ---- cleanup ---- */

static void
close_sessions(void)
{
	/* first: a copy still running on the standby is cancelled */
	pgbr_standby_close(&ws.standby);
	pgbr_conn_free(ws.late_conn);
	ws.late_conn = NULL;
	SSL_CTX_free(ws.late_tls);
	ws.late_tls = NULL;
	pgbr_conn_free(ws.conn);
	ws.conn = NULL;
	SSL_CTX_free(ws.tls);
	ws.tls = NULL;
}

static void
stop_helpers(void)
{
	for (int i = 0; i < ws.nhelpers; i++)
		if (ws.helpers[i])
			TerminateBackgroundWorker(ws.helpers[i]);
}

static void
remove_files(void)
{
	if (ws.list_path[0])
		unlink(ws.list_path);
	if (ws.index_path[0])
		unlink(ws.index_path);
	if (ws.prior_path[0])
		unlink(ws.prior_path);
}

/*
 * Exit handler (before_shmem_exit): runs on every exit, ERROR and FATAL
 * (SIGTERM) included.  pg_backup_start registers PostgreSQL's own handler,
 * which ends backup mode, after this one, so that one runs first.
 */
static void
worker_exit(int code, Datum arg)
{
	stop_helpers();
	close_sessions();
	remove_files();
	if (!ws.ended)
	{
		/* the slot is still ours: it is released by slot_finish only */
		shared->abort = true;
		slot_finish(false, NULL, "the backup was stopped: the backup worker was terminated");
		elog(LOG, "backup command end: terminated");
	}
}

/* ---- PostgreSQL ---- */

/*
 * pg_backup_start(label, fast) without a snapshot: a spread checkpoint can
 * take minutes, and this worker must not hold back vacuum meanwhile.  The
 * function needs neither a snapshot nor catalog access.
 */
static XLogRecPtr
backup_start(const char *label, bool fast)
{
	XLogRecPtr	lsn;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "SELECT pg_backup_start(...)");
	lsn = DatumGetLSN(DirectFunctionCall2(pg_backup_start,
										  PointerGetDatum(cstring_to_text(label)),
										  BoolGetDatum(fast)));
	CommitTransactionCommand();
	set_phase(PGBR_PHASE_CHECKPOINT);
	return lsn;
}

typedef struct StopResult
{
	char	   *lsn;
	char	   *labelfile;
	char	   *spcmapfile;
} StopResult;

/* pg_backup_stop(false) via SPI: it does not wait for archiving */
static void
backup_stop(StopResult *r, MemoryContext cxt)
{
	const char *sql = "SELECT lsn::text, labelfile, spcmapfile FROM pg_catalog.pg_backup_stop(false)";
	int			rc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, sql);
	rc = SPI_execute(sql, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_backup_stop() failed: SPI_execute returned %d", rc);
	r->lsn = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	r->labelfile = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	{
		char	   *map = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

		r->spcmapfile = MemoryContextStrdup(cxt, map ? map : "");
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	set_phase(PGBR_PHASE_STOPPING);
}

/* the timeline whose WAL holds what this backup needs */
static TimeLineID
current_tli(void)
{
	TimeLineID	tli;

	if (!RecoveryInProgress())
		return GetWALInsertionTimeLine();
	(void) GetXLogReplayRecPtr(&tli);
	return tli;
}

static void
segment_name(char *out, TimeLineID tli, XLogRecPtr lsn, bool prev)
{
	XLogSegNo	segno;

	if (prev)
		XLByteToPrevSeg(lsn, segno, wal_segment_size);
	else
		XLByteToSeg(lsn, segno, wal_segment_size);
	XLogFileName(out, tli, segno, wal_segment_size);
}

/* ---- the repository ---- */

static void
raise_err(PgbrError *err)
{
	pgbr_ereport(ERROR, err);
}

/*
 * BACKUP_BEGIN.  A lock refusal right after another backup ended is
 * retried for a few seconds: the server releases the lock when it notices
 * the previous session is gone.
 */
static void
backup_begin(const char *type, const char *from)
{
	char		sysid[32],
				pgver[16];
	const char *args[4];
	char		label[PGBR_NAME_MAX + 1],
				prior[PGBR_NAME_MAX + 1],
				newtype[PGBR_NAME_MAX + 1],
				token[PGBR_NAME_MAX + 1];
	char	   *out[4] = {label, prior, newtype, token};
	const size_t maxlens[4] = {PGBR_NAME_MAX, PGBR_NAME_MAX, PGBR_NAME_MAX, PGBR_NAME_MAX};
	PgbrBuf		b;
	PgbrError	err;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);

	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, GetSystemIdentifier());
	snprintf(pgver, sizeof(pgver), "%d", PG_VERSION_NUM);
	args[0] = type;
	args[1] = sysid;
	args[2] = pgver;
	args[3] = from;
	pgbr_buf_init(&b);
	for (;;)
	{
		bool		ok;

		pgbr_buf_reset(&b);
		pgbr_strs_encode(&b, 4, args);
		pgbr_error_init(&err);
		ok = pgbr_conn_send(ws.conn, PGBR_MSG_BACKUP_BEGIN, b.data, b.len, &err) &&
			pgbr_conn_expect_ok(ws.conn, &b, &err) &&
			pgbr_strs_decode(b.data, b.len, 4, out, maxlens, &err);
		if (ok)
			break;
		if (err.code != PGBR_ERR_LOCK || GetCurrentTimestamp() >= deadline)
		{
			pgbr_buf_release(&b);
			raise_err(&err);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 500,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pgbr_buf_release(&b);
	if (!pgbr_label_valid(label) || (strcmp(newtype, "full") != 0 && strcmp(newtype, "diff") != 0 &&
									 strcmp(newtype, "incr") != 0) ||
		(prior[0] && !pgbr_label_valid(prior)))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid answer to BACKUP_BEGIN: label \"%s\", prior \"%s\", type \"%s\"",
						label, prior, newtype)));

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(shared->label, label, sizeof(shared->label));
	strlcpy(shared->backup_type, newtype, sizeof(shared->backup_type));
	strlcpy(shared->token, token, sizeof(shared->token));
	if (strcmp(newtype, type) != 0)
		snprintf(shared->notice, sizeof(shared->notice),
				 "no prior backup exists, %s backup has been changed to %s", type, newtype);
	LWLockRelease(shared->lock);
	if (strcmp(newtype, type) != 0)
		ereport(LOG, (errmsg("no prior backup exists, %s backup has been changed to %s",
							 type, newtype)));
	if (prior[0])
		ereport(LOG, (errmsg("last backup label = %s, version = %s", prior, PGBR_VERSION)));
	strlcpy(ws.prior_label, prior, sizeof(ws.prior_label));
}

/* MANIFEST_GET of the prior into a temporary file */
static void
fetch_prior(const char *prior)
{
	char		path[MAXPGPATH];
	int			fd;
	PgbrSink   *sink;
	PgbrBuf		b;
	PgbrError	err;
	bool		ok;

	snprintf(path, sizeof(path), PGBR_TMP_PREFIX "%d.prior", MyProcPid);
	strlcpy(ws.prior_path, path, sizeof(ws.prior_path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", path)));
	sink = pgbr_sink_fd_create(fd, path);
	pgbr_buf_init(&b);
	pgbr_name_encode(&b, prior);
	pgbr_error_init(&err);
	ok = sink != NULL &&
		pgbr_conn_send(ws.conn, PGBR_MSG_MANIFEST_GET, b.data, b.len, &err) &&
		pgbr_conn_expect_ok(ws.conn, NULL, &err) &&
		pgbr_conn_recv_stream(ws.conn, sink, &b, &err);
	pgbr_sink_free(sink);
	pgbr_buf_release(&b);
	if (close(fd) != 0 && ok)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", path)));
	if (!ok)
	{
		if (!pgbr_error_is_set(&err))
			pgbr_error_set(&err, PGBR_ERR_MEMORY, "out of memory");
		raise_err(&err);
	}
}

/* the content of global/pg_control, read after every other file */
static char *
read_control(struct stat *st)
{
	char	   *buf = palloc(PG_CONTROL_FILE_SIZE + 1);
	int			fd;
	ssize_t		n = -1;
	int			save_errno = 0;

	/* under ControlFileLock: a checkpoint may be rewriting the file */
	LWLockAcquire(ControlFileLock, LW_SHARED);
	fd = open(XLOG_CONTROL_FILE, O_RDONLY | PG_BINARY);
	if (fd >= 0 && fstat(fd, st) == 0 && st->st_size <= PG_CONTROL_FILE_SIZE)
		n = read(fd, buf, st->st_size);
	save_errno = errno;
	if (fd >= 0)
		close(fd);
	LWLockRelease(ControlFileLock);
	errno = save_errno;
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", XLOG_CONTROL_FILE)));
	if (n < 0 || n != st->st_size)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": read %zd bytes", XLOG_CONTROL_FILE, n)));
	return buf;
}

/* every segment from start to stop in the archive, within archive-timeout */
static void
wait_archive(TimeLineID start_tli, XLogSegNo start_seg, TimeLineID stop_tli, XLogSegNo stop_seg,
			 int timeout_s)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   (int64) timeout_s * 1000);
	TimestampTz say_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);
	bool		said = false;
	int			nap_ms = 10;

	/*
	 * The archiver was woken when pg_backup_stop switched segments and
	 * usually pushes the last one within milliseconds: look again soon,
	 * then less often.
	 */
	for (XLogSegNo seg = start_seg; seg <= stop_seg; seg++)
	{
		char		name[MAXFNAMELEN];

		XLogFileName(name, seg == start_seg ? start_tli : stop_tli, seg, wal_segment_size);
		for (;;)
		{
			bool		found;
			PgbrError	err;

			pgbr_error_init(&err);
			if (!pgbr_client_wal_find(ws.conn, name, &found, &err))
				raise_err(&err);
			if (found)
				break;
			if (!said && RecoveryInProgress() && GetCurrentTimestamp() >= say_at)
			{
				/* the usual wait of a backup on a standby: say what it waits for */
				ereport(LOG,
						(errmsg("waiting for WAL segment %s: the primary archives it once it is complete (archive_timeout on the primary); up to archive-timeout = %d s",
								name, timeout_s)));
				said = true;
			}
			if (GetCurrentTimestamp() >= deadline && RecoveryInProgress())
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("WAL segment %s was not archived before the %d s archive-timeout",
								name, timeout_s),
						 errdetail("A backup taken on a standby ends in the segment being written on the primary; the primary archives it once it is complete."),
						 errhint("Set archive_timeout on the primary (or make sure it writes WAL), or raise archive-timeout; check archiving on the primary. The backup is not usable without its WAL.")));
			if (GetCurrentTimestamp() >= deadline)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("WAL segment %s was not archived before the %d s archive-timeout",
								name, timeout_s),
						 errhint("Check archive_mode, archive_library = 'pgbr' and pg_stat_archiver; the backup is not usable without its WAL.")));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, nap_ms,
							 PG_WAIT_EXTENSION);
			nap_ms = Min(nap_ms * 2, 200);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
}

/* the host configuration and the settings both modes use */
static const PgbrConfig *
read_settings(int *process_max)
{
	PgbrError	err;
	const PgbrConfig *cfg;

	pgbr_error_init(&err);
	cfg = pgbr_backend_config(&err);
	if (cfg == NULL)
		raise_err(&err);
	if (strcmp(pgbr_config_stanza(cfg), shared->stanza) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgbr.stanza changed from \"%s\" to \"%s\" while the backup started",
						shared->stanza, pgbr_config_stanza(cfg))));
	*process_max = (int) pgbr_config_get_int(cfg, "process-max");
	shared->delta = pgbr_config_get_bool(cfg, "delta");
	shared->compress = strcmp(pgbr_config_get(cfg, "compress-type"), "none") == 0 ?
		PGBR_COMPRESS_NONE : PGBR_COMPRESS_ZST;
	shared->compress_level = (int) pgbr_config_get_int(cfg, "compress-level");
	shared->verify_checksums = DataChecksumsEnabled();
	return cfg;
}

/*
 * The file list of this server's share, then the streams: this worker on
 * ws.conn and process-max - 1 helpers on their own joined sessions.
 */
static void
copy_files(PgbrWalkPart part, int process_max, PgbrWalkResult *walk)
{
	set_phase(PGBR_PHASE_LISTING);
	if (MakePGDirectory(PGBR_TMP_DIR) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", PGBR_TMP_DIR)));
	snprintf(ws.list_path, sizeof(ws.list_path), PGBR_TMP_PREFIX "%d.list", MyProcPid);
	snprintf(ws.index_path, sizeof(ws.index_path), PGBR_TMP_PREFIX "%d.index", MyProcPid);
	strlcpy(shared->list_path, ws.list_path, sizeof(shared->list_path));
	strlcpy(shared->index_path, ws.index_path, sizeof(shared->index_path));
	pg_atomic_write_u64(&shared->next_entry, 0);
	pg_atomic_write_u64(&shared->entries_ready, 0);
	pg_atomic_write_u32(&shared->list_complete, 0);

	/*
	 * The helpers start, connect and join while this worker walks, and send
	 * the entries the walk has written so far (41,000 files take a fifth of
	 * a second to list).
	 */
	if (process_max > 1)
		ws.nhelpers = pgbr_helpers_start(shared, ws.generation,
										 Min(process_max - 1, PGBR_HELPERS_MAX), ws.helpers);
	pgbr_walk_build(shared->list_path, shared->index_path,
					ws.prior_path[0] ? ws.prior_path : NULL,
					(PgbrCompress) shared->compress, part, walk, shared);
	/* the totals and the whole count are published already */
	pg_memory_barrier();
	pg_atomic_write_u32(&shared->list_complete, 1);
	ereport(DEBUG1, (errmsg_internal("file list: " UINT64_FORMAT " entries, " UINT64_FORMAT " files, " UINT64_FORMAT " bytes, " UINT64_FORMAT " unchanged",
									 walk->nentries, walk->files, walk->bytes, walk->references)));

	set_phase(PGBR_PHASE_COPYING);
	pgbr_stream_run(shared, ws.conn);
	pgbr_helpers_wait(shared, ws.helpers, ws.nhelpers);
}

/*
 * While the standby copies, the main session has nothing to send; the
 * server drops a session idle for an hour, so it hears from us every
 * minute (a WAL_FIND of the start segment: cheap, and harmless).
 */
static void
main_keepalive(void *arg)
{
	bool		found;
	PgbrError	err;

	pgbr_error_init(&err);
	if (!pgbr_client_wal_find(ws.conn, ws.start_wal, &found, &err))
		raise_err(&err);
}

/* no usable standby: an ERROR, or with backup-standby=prefer the primary */
static void
standby_unavailable(bool prefer, const char *why)
{
	if (!prefer)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("unable to back up from the standby: %s", why),
				 errhint("Check that the standby runs and replays, and pg2-host or pg2-socket-path, pg2-port, pg2-user and pg2-database in the pgbr configuration of this host; with backup-standby=prefer the backup falls back to the primary.")));
	ereport(WARNING,
			(errmsg("unable to back up from the standby, backing up from the primary instead: %s",
					why)));
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	snprintf(shared->warning, sizeof(shared->warning),
			 "unable to back up from the standby, backing up from the primary instead: %s", why);
	LWLockRelease(shared->lock);
}

static void
run_backup(MemoryContext cxt)
{
	PgbrError	err;
	const PgbrConfig *cfg;
	const char *type = shared->type;
	bool		on_standby = RecoveryInProgress();
	const char *standby_opt;
	bool		prefer;
	bool		use_standby = false;
	int			standby_lag;
	const char *from;
	bool		fast;
	int			process_max;
	int			archive_timeout;
	time_t		ts_start,
				ts_stop;
	XLogRecPtr	start_lsn;
	XLogRecPtr	stop_lsn;
	TimeLineID	start_tli,
				stop_tli;
	XLogSegNo	start_seg,
				stop_seg;
	char		start_wal[MAXFNAMELEN],
				stop_wal[MAXFNAMELEN];
	char		lsn_start_text[32];
	char		why[1024];
	PgbrWalkResult walk;
	StopResult	stop;
	struct stat cst;
	char	   *control;
	PgbrBuf		b;
	char		summary[PGBR_TEXT_MAX + 1];

	pgbr_error_init(&err);
	cfg = read_settings(&process_max);
	fast = pgbr_config_get_bool(cfg, "start-fast");
	archive_timeout = (int) pgbr_config_get_int(cfg, "archive-timeout");
	standby_opt = pgbr_config_get(cfg, "backup-standby");
	prefer = strcmp(standby_opt, "prefer") == 0;
	standby_lag = (int) pgbr_config_get_int(cfg, "backup-standby-lag");

	ereport(LOG,
			(errmsg("backup command begin %s: --stanza=%s --type=%s --process-max=%d --start-fast=%s --delta=%s --compress-type=%s --compress-level=%d --archive-timeout=%d --backup-standby=%s",
					PGBR_VERSION, shared->stanza, type, process_max, fast ? "y" : "n",
					shared->delta ? "y" : "n", pgbr_config_get(cfg, "compress-type"),
					shared->compress_level, archive_timeout, standby_opt)));

	/*
	 * The standby, before the repository: with backup-standby=y a standby
	 * that cannot be used fails the backup before anything starts.  On a
	 * standby itself the option means nothing: the backup is read here.
	 */
	if (!on_standby && strcmp(standby_opt, "n") != 0)
	{
		use_standby = pgbr_standby_open(cfg, &ws.standby, why, sizeof(why));
		if (!use_standby)
			standby_unavailable(prefer, why);
	}
	from = on_standby || use_standby ? "standby" : "primary";

	/* the repository: label, prior, lock */
	ws.conn = pgbr_backend_connect(cfg, "backup", &ws.tls, NULL);
	backup_begin(type, from);
	if (ws.prior_label[0])
		fetch_prior(ws.prior_label);

	/* PostgreSQL: backup mode */
	set_phase(PGBR_PHASE_CHECKPOINT);
	ereport(LOG,
			(errmsg("execute non-exclusive backup start: backup begins after the %s",
					fast ? "requested immediate checkpoint completes" :
					"next regular checkpoint completes")));
	ts_start = time(NULL);
	start_lsn = backup_start(psprintf("pgbr backup %s", shared->label), fast);
	start_tli = current_tli();
	XLByteToSeg(start_lsn, start_seg, wal_segment_size);
	segment_name(start_wal, start_tli, start_lsn, false);
	strlcpy(ws.start_wal, start_wal, sizeof(ws.start_wal));
	snprintf(lsn_start_text, sizeof(lsn_start_text), "%X/%X", LSN_FORMAT_ARGS(start_lsn));
	shared->start_lsn = start_lsn;
	ereport(LOG, (errmsg("backup start archive = %s, lsn = %s", start_wal, lsn_start_text)));

	/*
	 * Backup from the standby: its data files must hold every change before
	 * the start LSN (see standby.c) before it reads them.  Then it reads its
	 * share while this worker reads the primary's.
	 */
	if (use_standby)
	{
		set_phase(PGBR_PHASE_STANDBY_WAIT);
		ereport(LOG, (errmsg("wait for replay on the standby to reach %s", lsn_start_text)));
		if (pgbr_standby_wait_replay(&ws.standby, start_lsn, start_tli, standby_lag,
									 why, sizeof(why)))
			ereport(LOG, (errmsg("replay on the standby reached %s", lsn_start_text)));
		else
		{
			pgbr_standby_close(&ws.standby);
			use_standby = false;
			from = "primary";
			standby_unavailable(prefer, why);
		}
	}
	if (use_standby)
	{
		ereport(LOG,
				(errmsg("copy relation files from the standby, other files from the primary")));
		pgbr_standby_copy_start(&ws.standby, shared->stanza, shared->label, shared->token,
								ws.prior_label, start_lsn);
	}

	/* the file list and the streams of this server's share */
	copy_files(use_standby ? PGBR_WALK_PRIMARY : PGBR_WALK_ALL, process_max, &walk);
	if (use_standby)
	{
		char	   *result;

		ereport(LOG,
				(errmsg("primary sent " UINT64_FORMAT " files, waiting for the standby",
						walk.files)));
		result = pgbr_standby_copy_finish(&ws.standby, main_keepalive, NULL, 60);
		ereport(LOG, (errmsg("standby sent %s", result)));
		pgbr_standby_close(&ws.standby);
	}

	/*
	 * End of backup mode; backup_label, pg_control, tablespace_map last.
	 *
	 * A backup from the standby takes all three from the primary: the
	 * primary's backup_label (BACKUP FROM: primary) makes recovery replay
	 * from the start LSN to the XLOG_BACKUP_END record of the primary's
	 * pg_backup_stop, which covers every change the standby had replayed
	 * when it read its files (they hold at least everything before the
	 * start LSN, see standby.c, and nothing after the stop, which comes
	 * after the copy).  The primary's pg_control, read after every file,
	 * matches that label exactly as in a backup of the primary; the
	 * standby's would carry its minRecoveryPoint, which may lie beyond the
	 * stop LSN and would make recovery wait for WAL the backup does not
	 * include.
	 */
	set_phase(PGBR_PHASE_STOPPING);
	control = read_control(&cst);
	ereport(LOG, (errmsg("execute non-exclusive backup stop and wait for all WAL segments to archive")));
	backup_stop(&stop, cxt);
	ts_stop = time(NULL);
	{
		bool		bad = false;

		stop_lsn = pg_lsn_in_internal(stop.lsn, &bad);
		if (bad || stop_lsn == InvalidXLogRecPtr)
			elog(ERROR, "pg_backup_stop() returned an invalid LSN \"%s\"", stop.lsn);
	}
	stop_tli = current_tli();
	XLByteToPrevSeg(stop_lsn, stop_seg, wal_segment_size);
	segment_name(stop_wal, stop_tli, stop_lsn, true);
	if (stop_seg < start_seg)
		stop_seg = start_seg;
	ereport(LOG, (errmsg("backup stop archive = %s, lsn = %s", stop_wal, stop.lsn)));

	ws.late_conn = pgbr_backup_join(shared, cfg, &ws.late_tls);
	pgbr_stream_send_content(ws.late_conn, "backup_label", stop.labelfile, strlen(stop.labelfile),
							 (uint32) (cst.st_mode & 07777), (int64) ts_stop,
							 (PgbrCompress) shared->compress, shared->compress_level);
	pgbr_stream_send_content(ws.late_conn, XLOG_CONTROL_FILE, control, (size_t) cst.st_size,
							 (uint32) (cst.st_mode & 07777), (int64) cst.st_mtime,
							 (PgbrCompress) shared->compress, shared->compress_level);
	if (stop.spcmapfile[0])
		pgbr_stream_send_content(ws.late_conn, "tablespace_map", stop.spcmapfile,
								 strlen(stop.spcmapfile), (uint32) (cst.st_mode & 07777),
								 (int64) ts_stop, (PgbrCompress) shared->compress,
								 shared->compress_level);
	pgbr_conn_free(ws.late_conn);
	ws.late_conn = NULL;
	SSL_CTX_free(ws.late_tls);
	ws.late_tls = NULL;

	/*
	 * The WAL that makes the copy consistent.  On a standby the segment of
	 * the stop LSN is archived by the primary, once it is complete: this
	 * waits for it up to archive-timeout (see the hint in wait_archive).
	 */
	set_phase(PGBR_PHASE_ARCHIVE_WAIT);
	ereport(LOG, (errmsg("check archive for segment(s) %s:%s", start_wal, stop_wal)));
	wait_archive(start_tli, start_seg, stop_tli, stop_seg, archive_timeout);

	/* commit */
	set_phase(PGBR_PHASE_COMMITTING);
	pgbr_buf_init(&b);
	{
		PgbrBuf		kv;
		bool		ok;

		pgbr_buf_init(&kv);
		pgbr_buf_printf(&kv, "timestamp-start=%lld\ntimestamp-stop=%lld\nlsn-start=%s\nlsn-stop=%s\n"
						"wal-start=%s\nwal-stop=%s\nbackup-from=%s\n",
						(long long) ts_start, (long long) ts_stop, lsn_start_text, stop.lsn,
						start_wal, stop_wal, from);
		pgbr_name_encode(&b, (const char *) kv.data);
		pgbr_buf_release(&kv);
		ok = pgbr_conn_send(ws.conn, PGBR_MSG_BACKUP_END, b.data, b.len, &err) &&
			pgbr_conn_expect_ok(ws.conn, &b, &err) &&
			pgbr_name_decode(b.data, b.len, summary, PGBR_TEXT_MAX, &err);
		pgbr_buf_release(&b);
		if (!ok)
			raise_err(&err);
	}
	close_sessions();
	ereport(LOG, (errmsg("new backup label = %s", shared->label)));
	ereport(LOG, (errmsg("%s", summary)));
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(shared->summary, summary, sizeof(shared->summary));
	LWLockRelease(shared->lock);
}

/*
 * Mode STANDBY_COPY, on a standby: the share of a backup the primary runs
 * (label, token, prior and start LSN from the primary's call of
 * pgbr_backup_standby_copy).  Joins the backup, sends the replicated files
 * as this standby has them, and ends; the primary does the rest.
 */
static void
run_standby_copy(void)
{
	const PgbrConfig *cfg;
	int			process_max;
	XLogRecPtr	start_lsn = shared->start_lsn;
	XLogRecPtr	replay;
	ControlFileData *control;
	bool		crc_ok;
	PgbrWalkResult walk;
	char		size[32];
	char		summary[256];

	cfg = read_settings(&process_max);
	ereport(LOG,
			(errmsg("backup %s: copy of the standby's files begins: --stanza=%s --process-max=%d --delta=%s --compress-type=%s --compress-level=%d, start lsn %X/%X",
					shared->label, shared->stanza, process_max, shared->delta ? "y" : "n",
					pgbr_config_get(cfg, "compress-type"), shared->compress_level,
					LSN_FORMAT_ARGS(start_lsn))));

	/* what the primary made sure of, checked where it matters */
	if (!RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is not a standby: it cannot copy files for a backup from the standby")));
	replay = GetXLogReplayRecPtr(NULL);
	if (replay < start_lsn)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replay on this standby is at %X/%X, before the backup start %X/%X",
						LSN_FORMAT_ARGS(replay), LSN_FORMAT_ARGS(start_lsn))));
	LWLockAcquire(ControlFileLock, LW_SHARED);
	control = get_controlfile(DataDir, &crc_ok);
	LWLockRelease(ControlFileLock);
	if (!crc_ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("calculated CRC checksum does not match value stored in file \"%s\"",
						XLOG_CONTROL_FILE)));
	if (control->checkPointCopy.redo < start_lsn)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the last restartpoint of this standby (redo %X/%X) is before the backup start %X/%X",
						LSN_FORMAT_ARGS(control->checkPointCopy.redo), LSN_FORMAT_ARGS(start_lsn)),
				 errdetail("Changes before the backup start may not be in the data files yet."),
				 errhint("The primary's backup worker runs CHECKPOINT on the standby before the copy; run it by hand if this persists.")));
	pfree(control);

	ws.conn = pgbr_backup_join(shared, cfg, &ws.tls);
	if (shared->prior[0])
	{
		strlcpy(ws.prior_label, shared->prior, sizeof(ws.prior_label));
		fetch_prior(ws.prior_label);
	}
	copy_files(PGBR_WALK_STANDBY, process_max, &walk);

	/* files read after a promotion may hold changes the primary never had */
	if (!RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the standby was promoted during the backup")));
	close_sessions();

	pgbr_size_format(walk.bytes, size, sizeof(size));
	snprintf(summary, sizeof(summary), UINT64_FORMAT " files, %s (" UINT64_FORMAT " unchanged)",
			 walk.files, size, walk.references);
	ereport(LOG, (errmsg("backup %s: the standby sent %s", shared->label, summary)));
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(shared->summary, summary, sizeof(shared->summary));
	LWLockRelease(shared->lock);
}

void
pgbr_backup_worker_main(Datum arg)
{
	MemoryContext cxt;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	shared = pgbr_backup_shared();
	if (shared == NULL)
		proc_exit(0);			/* not preloaded: nobody could have started us */
	memset(&ws, 0, sizeof(ws));
	ws.generation = DatumGetUInt32(arg);
	if (!slot_attach(ws.generation))
		proc_exit(0);
	before_shmem_exit(worker_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(shared->dboid, InvalidOid, 0);
	pgstat_report_appname("pgbr backup");
	cxt = AllocSetContextCreate(TopMemoryContext, "pgbr backup", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	PG_TRY();
	{
		if (shared->mode == PGBR_MODE_STANDBY_COPY)
			run_standby_copy();
		else
			run_backup(cxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		/* sessions first: the server drops the backup and its lock */
		shared->abort = true;
		stop_helpers();
		close_sessions();
		remove_files();
		/* the log has the end before the caller returns */
		EmitErrorReport();
		FlushErrorState();
		ereport(LOG,
				(errmsg("backup command end: aborted with exception [%s]: %s",
						unpack_sql_state(edata->sqlerrcode), edata->message)));
		slot_finish(false, edata, NULL);
		/* the exit handlers end backup mode and any transaction */
		proc_exit(1);
	}
	PG_END_TRY();

	remove_files();
	ereport(LOG, (errmsg("backup command end: completed successfully")));
	slot_finish(true, NULL, NULL);
	proc_exit(0);
}
