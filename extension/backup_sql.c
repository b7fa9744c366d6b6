/*
 * backup_sql.c
 *		SQL entry points of backups: pgbr_backup() and the procedure
 *		pgbr_backup_run() start the backup worker and wait for its result;
 *		pgbr_backup_progress() (the pgbr_progress view) shows the backup
 *		that runs.
 *
 * The session that starts a backup claims the cluster's backup slot
 * (shmem.c), so a second backup is refused at once, starts the worker and
 * waits on its latch.  If the wait ends early -- the query is cancelled,
 * the session is terminated, an error -- the worker is terminated too,
 * which stops the backup cleanly (see worker.c): the waiting session and
 * the backup live and die together.
 *
 * pgbr_backup_standby_copy() is the standby's side of a backup the primary
 * takes from it (backup-standby): the primary's backup worker CALLs it on
 * the standby over libpq, and it runs this standby's worker in mode
 * STANDBY_COPY (worker.c) the same way, for the same backup (label, token).
 *
 * Waiting without holding back vacuum: a SELECT keeps its snapshot, and so
 * an xmin, until it returns, however long the backup takes.  The procedure
 * pgbr_backup_run(), when CALLed outside a transaction block (as pg_cron
 * does), commits the transaction that started the worker and waits in a
 * new one that never takes a snapshot: pg_stat_activity.backend_xmin of
 * the waiting session stays NULL.
 */
#include "backup.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/wait_event.h"

PG_FUNCTION_INFO_V1(pgbr_backup);
PG_FUNCTION_INFO_V1(pgbr_backup_run);
PG_FUNCTION_INFO_V1(pgbr_backup_progress);
PG_FUNCTION_INFO_V1(pgbr_backup_standby_copy);

/* how long a cancelled caller waits for the worker to be gone */
#define ABANDON_WAIT_MS		10000

/* the worker this session waits for (TopMemoryContext) */
static BackgroundWorkerHandle *active_handle = NULL;
static uint32 active_generation = 0;
static bool exit_hook_registered = false;

typedef struct BackupResult
{
	bool		ok;
	char		label[PGBR_LABEL_MAX + 1];
	char		notice[256];
	char		warning[512];
	char		summary[256];
	uint32		checksum_files;
	PgbrSharedError error;
} BackupResult;

static PgbrBackupShared *
shared_or_error(const char *fn)
{
	PgbrBackupShared *shared = pgbr_backup_shared();

	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires pgbr in shared_preload_libraries", fn),
				 errhint("Add pgbr to shared_preload_libraries in postgresql.conf and restart PostgreSQL.")));
	return shared;
}

static void
release_slot_locked(PgbrBackupShared *shared)
{
	shared->in_use = false;
	shared->state = PGBR_STATE_IDLE;
	shared->caller_waiting = false;
	shared->caller_latch = NULL;
}

/*
 * Stops the worker this session started and gives up waiting.  Never
 * throws and never processes interrupts: it runs during error recovery and
 * at process exit.  It waits a little for the worker to be gone, so that a
 * backup started right after a cancelled one is not refused.
 */
static void
abandon(void)
{
	PgbrBackupShared *shared = pgbr_backup_shared();
	BackgroundWorkerHandle *h = active_handle;
	BgwHandleStatus st = BGWH_NOT_YET_STARTED;
	pid_t		pid;

	if (h == NULL || shared == NULL)
		return;
	active_handle = NULL;
	TerminateBackgroundWorker(h);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->in_use && shared->generation == active_generation)
	{
		shared->caller_waiting = false;
		if (shared->state == PGBR_STATE_DONE || shared->state == PGBR_STATE_FAILED)
			release_slot_locked(shared);
	}
	LWLockRelease(shared->lock);

	for (int waited = 0; waited < ABANDON_WAIT_MS; waited += 20)
	{
		st = GetBackgroundWorkerPid(h, &pid);
		if (st == BGWH_STOPPED || st == BGWH_POSTMASTER_DIED)
			break;
		if (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH, 20,
					  PG_WAIT_EXTENSION) & WL_POSTMASTER_DEATH)
			break;
		ResetLatch(MyLatch);
	}
	if (st == BGWH_STOPPED)
	{
		/* gone, whether it ever started or not: the slot is free */
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		if (shared->in_use && shared->generation == active_generation)
			release_slot_locked(shared);
		LWLockRelease(shared->lock);
	}
	pfree(h);
}

/* a terminated session (FATAL) skips PG_CATCH: stop the worker here */
static void
caller_exit(int code, Datum arg)
{
	abandon();
}

static const char *
backup_type_arg(FunctionCallInfo fcinfo)
{
	char	   *type;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("backup type must not be NULL"),
				 errhint("Use full, diff or incr.")));
	type = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(type, "full") != 0 && strcmp(type, "diff") != 0 && strcmp(type, "incr") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid backup type \"%s\"", type),
				 errhint("Use full, diff or incr.")));
	return type;
}

/* what the primary hands the standby for its share of a backup */
typedef struct CopyArgs
{
	const char *label;
	const char *token;
	const char *prior;
	XLogRecPtr	start_lsn;
} CopyArgs;

/* checks, claims the slot, starts the worker (copy: mode STANDBY_COPY) */
static void
launch(const char *fn, const char *type, const CopyArgs *copy)
{
	PgbrBackupShared *shared = shared_or_error(fn);
	PgbrError	err;
	const PgbrConfig *cfg;
	BackgroundWorker w;
	BackgroundWorkerHandle *h;
	MemoryContext old;
	uint32		generation;
	bool		ok;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to run %s", fn)));
	pgbr_error_init(&err);
	cfg = pgbr_backend_config(&err);
	if (cfg == NULL)
		pgbr_ereport(ERROR, &err);
	if (copy && !RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s runs on a standby", fn),
				 errdetail("The backup worker of the primary calls it on the standby for a backup from the standby (backup-standby).")));
	if (!RecoveryInProgress() && !XLogArchivingActive())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("WAL archiving is not enabled"),
				 errdetail("A backup is restorable only with the WAL written while it runs."),
				 errhint("Set archive_mode = on and archive_library = 'pgbr', then restart.")));

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->in_use)
	{
		char		stanza[PGBR_NAME_MAX + 1];
		char		label[PGBR_LABEL_MAX + 1];
		pid_t		pid = shared->worker_pid ? shared->worker_pid : shared->caller_pid;
		TimestampTz started = shared->started;

		strlcpy(stanza, shared->stanza, sizeof(stanza));
		strlcpy(label, shared->label, sizeof(label));
		LWLockRelease(shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("a backup of stanza \"%s\" is already running", stanza),
				 errdetail("Backup %s%sstarted at %s is run by PID %d.",
						   label[0] ? label : "", label[0] ? " " : "",
						   timestamptz_to_str(started), (int) pid),
				 errhint("Wait for it to finish: one backup per stanza runs at a time.")));
	}
	generation = ++shared->generation;
	shared->in_use = true;
	shared->state = PGBR_STATE_STARTING;
	shared->caller_waiting = true;
	shared->caller_pid = MyProcPid;
	shared->caller_latch = MyLatch;
	shared->worker_pid = 0;
	shared->worker_latch = NULL;
	shared->started = GetCurrentTimestamp();
	memset(&shared->error, 0, sizeof(shared->error));
	memset(&shared->stream_error, 0, sizeof(shared->stream_error));
	shared->summary[0] = shared->notice[0] = shared->warning[0] = '\0';
	shared->abort = false;
	memset(shared->helper_done, 0, sizeof(shared->helper_done));
	shared->mode = copy ? PGBR_MODE_STANDBY_COPY : PGBR_MODE_BACKUP;
	shared->dboid = MyDatabaseId;
	strlcpy(shared->stanza, pgbr_config_stanza(cfg), sizeof(shared->stanza));
	strlcpy(shared->type, type, sizeof(shared->type));
	shared->label[0] = shared->backup_type[0] = shared->token[0] = shared->prior[0] = '\0';
	shared->list_path[0] = shared->index_path[0] = '\0';
	shared->start_lsn = InvalidXLogRecPtr;
	if (copy)
	{
		strlcpy(shared->label, copy->label, sizeof(shared->label));
		strlcpy(shared->backup_type, type, sizeof(shared->backup_type));
		strlcpy(shared->token, copy->token, sizeof(shared->token));
		strlcpy(shared->prior, copy->prior, sizeof(shared->prior));
		shared->start_lsn = copy->start_lsn;
	}
	pg_atomic_write_u32(&shared->phase, PGBR_PHASE_STARTING);
	pg_atomic_write_u64(&shared->next_entry, 0);
	pg_atomic_write_u64(&shared->entries_ready, 0);
	pg_atomic_write_u32(&shared->list_complete, 0);
	pg_atomic_write_u64(&shared->files_total, 0);
	pg_atomic_write_u64(&shared->files_done, 0);
	pg_atomic_write_u64(&shared->bytes_total, 0);
	pg_atomic_write_u64(&shared->bytes_done, 0);
	pg_atomic_write_u32(&shared->checksum_files, 0);
	LWLockRelease(shared->lock);

	if (!exit_hook_registered)
	{
		before_shmem_exit(caller_exit, (Datum) 0);
		exit_hook_registered = true;
	}

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* a hot standby can take backups too */
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "pgbr", sizeof(w.bgw_library_name));
	strlcpy(w.bgw_function_name, "pgbr_backup_worker_main", sizeof(w.bgw_function_name));
	if (copy)
		snprintf(w.bgw_name, sizeof(w.bgw_name), "pgbr backup of stanza %s (standby copy)",
				 shared->stanza);
	else
		snprintf(w.bgw_name, sizeof(w.bgw_name), "pgbr backup of stanza %s", shared->stanza);
	strlcpy(w.bgw_type, "pgbr backup", sizeof(w.bgw_type));
	w.bgw_main_arg = UInt32GetDatum(generation);
	w.bgw_notify_pid = MyProcPid;
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&w, &h);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		if (shared->generation == generation)
			release_slot_locked(shared);
		LWLockRelease(shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the backup worker: no background worker slot is free"),
				 errhint("Raise max_worker_processes (it also bounds process-max).")));
	}
	active_handle = h;
	active_generation = generation;
}

/* waits for DONE or FAILED; the slot is released when the result is taken */
static void
wait_result(BackupResult *r)
{
	PgbrBackupShared *shared = pgbr_backup_shared();
	bool		stopped_once = false;

	memset(r, 0, sizeof(*r));
	for (;;)
	{
		bool		final = false;
		pid_t		pid;
		BgwHandleStatus st;

		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		if (shared->generation == active_generation &&
			(shared->state == PGBR_STATE_DONE || shared->state == PGBR_STATE_FAILED))
		{
			final = true;
			r->ok = shared->state == PGBR_STATE_DONE;
			strlcpy(r->label, shared->label, sizeof(r->label));
			strlcpy(r->notice, shared->notice, sizeof(r->notice));
			strlcpy(r->warning, shared->warning, sizeof(r->warning));
			strlcpy(r->summary, shared->summary, sizeof(r->summary));
			r->checksum_files = pg_atomic_read_u32(&shared->checksum_files);
			r->error = shared->error;
			release_slot_locked(shared);
		}
		LWLockRelease(shared->lock);
		if (final)
			break;

		st = GetBackgroundWorkerPid(active_handle, &pid);
		if (st == BGWH_POSTMASTER_DIED)
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("postmaster exited during the backup")));
		if (st == BGWH_STOPPED)
		{
			/* one more look: the result may have come with the exit */
			if (!stopped_once)
			{
				stopped_once = true;
				continue;
			}
			LWLockAcquire(shared->lock, LW_EXCLUSIVE);
			if (shared->in_use && shared->generation == active_generation)
				release_slot_locked(shared);
			LWLockRelease(shared->lock);
			pfree(active_handle);
			active_handle = NULL;
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("the backup worker exited without a result"),
					 errhint("See the server log for its messages.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(active_handle);
	active_handle = NULL;
}

/* what the caller of a finished backup reads */
static void
report(const BackupResult *r)
{
	if (r->notice[0])
		ereport(NOTICE, (errmsg("%s", r->notice)));
	if (r->warning[0])
		ereport(WARNING, (errmsg("%s", r->warning)));
	if (!r->ok)
		pgbr_shared_error_raise(&r->error);
	if (r->checksum_files > 0)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg_plural("page checksum errors in %u file",
							   "page checksum errors in %u files",
							   r->checksum_files, r->checksum_files),
				 errdetail("Backup %s completed; its manifest lists the invalid blocks of each file.",
						   r->label),
				 errhint("The server log names the files and blocks. Restore the damaged relations from an older backup or rebuild them.")));
}

Datum
pgbr_backup(PG_FUNCTION_ARGS)
{
	const char *type = backup_type_arg(fcinfo);
	BackupResult r;

	launch("pgbr_backup()", type, NULL);
	PG_TRY();
	{
		wait_result(&r);
	}
	PG_CATCH();
	{
		abandon();
		PG_RE_THROW();
	}
	PG_END_TRY();
	report(&r);
	PG_RETURN_TEXT_P(cstring_to_text(r.label));
}

/*
 * Waits for the worker launch() started; a non-atomic CALL first ends its
 * transaction, so that the wait holds no snapshot (see the file header).
 */
static void
wait_without_snapshot(const char *fn, bool nonatomic, BackupResult *r)
{
	PG_TRY();
	{
		if (nonatomic)
		{
			/* end the CALL's transaction: its snapshot goes with it */
			SPI_connect_ext(SPI_OPT_NONATOMIC);
			SPI_commit();
			SPI_finish();
		}
		else
			ereport(NOTICE,
					(errmsg("%s runs inside a transaction block: this session holds its snapshot until the backup ends",
							fn),
					 errhint("CALL it on its own, outside BEGIN ... COMMIT, so that vacuum is not held back.")));
		wait_result(r);
	}
	PG_CATCH();
	{
		abandon();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * CALL pgbr_backup_run(type [, label]): the same backup; outside a
 * transaction block the wait holds no snapshot (see the file header).
 */
Datum
pgbr_backup_run(PG_FUNCTION_ARGS)
{
	const char *type = backup_type_arg(fcinfo);
	bool		nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	BackupResult r;
	TupleDesc	tupdesc;
	Datum		values[1];
	bool		nulls[1] = {false};

	launch("pgbr_backup_run()", type, NULL);
	wait_without_snapshot("pgbr_backup_run()", nonatomic, &r);
	report(&r);

	/* the INOUT parameter: no catalog access, so still no snapshot needed */
	tupdesc = CreateTemplateTupleDesc(1);
	TupleDescInitBuiltinEntry(tupdesc, (AttrNumber) 1, "label", TEXTOID, -1, 0);
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = CStringGetTextDatum(r.label);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * CALL pgbr_backup_standby_copy(stanza, label, token, prior, start_lsn
 * [, result]) on a standby: this standby's share of the backup the primary
 * runs.  Returns when the share is in the repository: result = what was
 * sent.  Called by the primary's backup worker, not by hand.
 */
Datum
pgbr_backup_standby_copy(PG_FUNCTION_ARGS)
{
	bool		nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	CopyArgs	copy;
	const char *stanza;
	const char *want = pgbr_stanza ? pgbr_stanza : "";
	BackupResult r;
	TupleDesc	tupdesc;
	Datum		values[1];
	bool		nulls[1] = {false};

	for (int i = 0; i < 5; i++)
		if (i != 3 && PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("pgbr_backup_standby_copy(): argument %d must not be NULL", i + 1)));
	stanza = text_to_cstring(PG_GETARG_TEXT_PP(0));
	copy.label = text_to_cstring(PG_GETARG_TEXT_PP(1));
	copy.token = text_to_cstring(PG_GETARG_TEXT_PP(2));
	copy.prior = PG_ARGISNULL(3) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(3));
	copy.start_lsn = PG_GETARG_LSN(4);
	if (!pgbr_label_valid(copy.label) || (copy.prior[0] && !pgbr_label_valid(copy.prior)) ||
		strlen(copy.token) == 0 || strlen(copy.token) > PGBR_NAME_MAX ||
		copy.start_lsn == InvalidXLogRecPtr)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pgbr_backup_standby_copy(): invalid label, prior, token or start LSN")));
	if (strcmp(stanza, want) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this standby backs up stanza \"%s\" (pgbr.stanza), the primary \"%s\"",
						want, stanza)));

	launch("pgbr_backup_standby_copy()", "copy", &copy);
	wait_without_snapshot("pgbr_backup_standby_copy()", nonatomic, &r);
	report(&r);

	tupdesc = CreateTemplateTupleDesc(1);
	TupleDescInitBuiltinEntry(tupdesc, (AttrNumber) 1, "result", TEXTOID, -1, 0);
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = CStringGetTextDatum(r.summary);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* one row while a backup runs, none otherwise */
Datum
pgbr_backup_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgbrBackupShared *shared = pgbr_backup_shared();
	Datum		values[8];
	bool		nulls[8] = {false};
	bool		running;
	char		label[PGBR_LABEL_MAX + 1];
	char		type[8];
	pid_t		pid;

	InitMaterializedSRF(fcinfo, 0);
	if (shared == NULL)
		return (Datum) 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	running = shared->in_use &&
		(shared->state == PGBR_STATE_STARTING || shared->state == PGBR_STATE_RUNNING);
	strlcpy(label, shared->label, sizeof(label));
	strlcpy(type, shared->backup_type[0] ? shared->backup_type : shared->type, sizeof(type));
	pid = shared->worker_pid;
	LWLockRelease(shared->lock);
	if (!running)
		return (Datum) 0;

	values[0] = CStringGetTextDatum(pgbr_phase_name((int) pg_atomic_read_u32(&shared->phase)));
	values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&shared->files_done));
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&shared->files_total));
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&shared->bytes_done));
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&shared->bytes_total));
	if (label[0])
		values[5] = CStringGetTextDatum(label);
	else
		nulls[5] = true;
	values[6] = CStringGetTextDatum(type);
	if (pid)
		values[7] = Int32GetDatum((int32) pid);
	else
		nulls[7] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
