/*
 * backup_helper.c
 *		The helper processes of a backup: process-max - 1 background workers
 *		that each open their own session (BACKUP_JOIN with the backup's
 *		token) and stream files of the shared list beside the worker.
 *
 * A helper that fails -- an ERROR, or any exit before its share is done,
 * SIGTERM included -- records the first error in the slot, sets abort and
 * wakes the worker, which stops every stream and fails the backup with
 * that error.
 */
#include "backup.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

static PgbrBackupShared *helper_shared = NULL;

static void
raise_err(PgbrError *err)
{
	pgbr_ereport(ERROR, err);
}

PgbrConn *
pgbr_backup_join(PgbrBackupShared *shared, const PgbrConfig *cfg, SSL_CTX **tls)
{
	PgbrConn   *conn = pgbr_backend_connect(cfg, "backup", tls, NULL);
	const char *args[2];
	PgbrBuf		b;
	PgbrError	err;
	bool		ok;

	args[0] = shared->label;
	args[1] = shared->token;
	pgbr_buf_init(&b);
	pgbr_strs_encode(&b, 2, args);
	pgbr_error_init(&err);
	ok = pgbr_conn_send(conn, PGBR_MSG_BACKUP_JOIN, b.data, b.len, &err) &&
		pgbr_conn_expect_ok(conn, NULL, &err);
	pgbr_buf_release(&b);
	if (!ok)
	{
		pgbr_conn_free(conn);
		SSL_CTX_free(*tls);
		*tls = NULL;
		raise_err(&err);
	}
	return conn;
}

int
pgbr_helpers_start(PgbrBackupShared *shared, uint32 generation, int n,
				   BackgroundWorkerHandle **handles)
{
	int			started = 0;

	for (int i = 0; i < n; i++)
	{
		BackgroundWorker w;
		BackgroundWorkerHandle *h;
		MemoryContext old;

		memset(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_ConsistentState;
		w.bgw_restart_time = BGW_NEVER_RESTART;
		strlcpy(w.bgw_library_name, "pgbr", sizeof(w.bgw_library_name));
		strlcpy(w.bgw_function_name, "pgbr_backup_helper_main", sizeof(w.bgw_function_name));
		snprintf(w.bgw_name, sizeof(w.bgw_name), "pgbr backup process %d", i + 1);
		strlcpy(w.bgw_type, "pgbr backup", sizeof(w.bgw_type));
		w.bgw_main_arg = UInt32GetDatum(generation);
		memcpy(w.bgw_extra, &i, sizeof(i));
		w.bgw_notify_pid = MyProcPid;
		old = MemoryContextSwitchTo(TopMemoryContext);
		if (!RegisterDynamicBackgroundWorker(&w, &h))
		{
			MemoryContextSwitchTo(old);
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start backup process %d: no background worker slot free, continuing with %d process(es)",
							i + 1, i + 1),
					 errhint("Raise max_worker_processes or lower process-max.")));
			break;
		}
		MemoryContextSwitchTo(old);
		handles[started++] = h;
	}
	return started;
}

void
pgbr_helpers_wait(PgbrBackupShared *shared, BackgroundWorkerHandle **handles, int n)
{
	for (;;)
	{
		bool		running = false;

		if (shared->abort)
		{
			PgbrSharedError e;

			LWLockAcquire(shared->lock, LW_SHARED);
			e = shared->stream_error;
			LWLockRelease(shared->lock);
			pgbr_shared_error_raise(&e);
		}
		for (int i = 0; i < n; i++)
		{
			pid_t		pid;
			BgwHandleStatus st = GetBackgroundWorkerPid(handles[i], &pid);

			if (st == BGWH_POSTMASTER_DIED)
				ereport(ERROR, (errmsg("postmaster exited during the backup")));
			if (st != BGWH_STOPPED)
				running = true;
			else if (!shared->helper_done[i] && !shared->abort)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("backup process %d exited before finishing its files", i + 1),
						 errhint("See the server log for its error.")));
		}
		if (!running)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* ---- the helper process ---- */

static uint32 helper_generation;
static int	helper_index;

/* records the first error of a stream for the worker, and wakes it */
static void
helper_fail(const ErrorData *edata, const char *message)
{
	Latch	   *main = NULL;

	LWLockAcquire(helper_shared->lock, LW_EXCLUSIVE);
	if (helper_shared->in_use && helper_shared->generation == helper_generation && !helper_shared->abort &&
		!helper_shared->helper_done[helper_index])
	{
		if (edata)
			pgbr_shared_error_set(&helper_shared->stream_error, edata);
		else
		{
			helper_shared->stream_error.sqlstate = ERRCODE_ADMIN_SHUTDOWN;
			strlcpy(helper_shared->stream_error.message, message, sizeof(helper_shared->stream_error.message));
			strlcpy(helper_shared->stream_error.hint, "See the server log for its messages.",
					sizeof(helper_shared->stream_error.hint));
		}
		helper_shared->abort = true;
		main = helper_shared->worker_latch;
	}
	LWLockRelease(helper_shared->lock);
	if (main)
		SetLatch(main);
}

/* a helper that exits without finishing (SIGTERM included) fails the backup */
static void
helper_exit(int code, Datum arg)
{
	char		msg[128];

	snprintf(msg, sizeof(msg), "backup process %d exited before finishing its files",
			 helper_index + 1);
	helper_fail(NULL, msg);
}

void
pgbr_backup_helper_main(Datum arg)
{
	uint32		generation = DatumGetUInt32(arg);
	int			index;
	bool		ok;
	Oid			dboid;
	PgbrConn   *volatile conn = NULL;
	SSL_CTX    *volatile tls = NULL;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	helper_shared = pgbr_backup_shared();
	memcpy(&index, MyBgworkerEntry->bgw_extra, sizeof(index));
	if (helper_shared == NULL || index < 0 || index >= PGBR_HELPERS_MAX)
		proc_exit(0);
	LWLockAcquire(helper_shared->lock, LW_SHARED);
	ok = helper_shared->in_use && helper_shared->generation == generation &&
		helper_shared->state == PGBR_STATE_RUNNING && !helper_shared->abort;
	dboid = helper_shared->dboid;
	LWLockRelease(helper_shared->lock);
	if (!ok)
		proc_exit(0);
	helper_generation = generation;
	helper_index = index;
	before_shmem_exit(helper_exit, (Datum) 0);
	/* a database connection only to be seen in pg_stat_activity */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("pgbr backup");
	pgstat_report_activity(STATE_RUNNING, "pgbr backup: copying files");

	PG_TRY();
	{
		PgbrError	err;
		const PgbrConfig *cfg;
		SSL_CTX    *t = NULL;

		pgbr_error_init(&err);
		cfg = pgbr_backend_config(&err);
		if (cfg == NULL)
			raise_err(&err);
		conn = pgbr_backup_join(helper_shared, cfg, &t);
		tls = t;
		pgbr_stream_run(helper_shared, conn);
		pgbr_conn_free(conn);
		conn = NULL;
		SSL_CTX_free(tls);
		tls = NULL;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		pgbr_conn_free(conn);
		SSL_CTX_free(tls);
		helper_fail(edata, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();

	LWLockAcquire(helper_shared->lock, LW_EXCLUSIVE);
	if (helper_shared->generation == generation)
		helper_shared->helper_done[index] = true;
	LWLockRelease(helper_shared->lock);
	proc_exit(0);
}
