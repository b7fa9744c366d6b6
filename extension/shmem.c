/*
 * shmem.c
 *		Shared memory for backups: the one backup slot of the cluster
 *		(state of the running backup, its progress, the result for the
 *		waiting session).  Only available when pgbr is in
 *		shared_preload_libraries: PostgreSQL 15 hands out shared memory to
 *		libraries loaded by the postmaster only.
 */
#include "backup.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#define PGBR_TRANCHE	"pgbr"

static PgbrBackupShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
pgbr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(PgbrBackupShared)));
	RequestNamedLWLockTranche(PGBR_TRANCHE, 1);
}

static void
pgbr_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pgbr backup", sizeof(PgbrBackupShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(PgbrBackupShared));
		shared->lock = &(GetNamedLWLockTranche(PGBR_TRANCHE))->lock;
		shared->state = PGBR_STATE_IDLE;
		pg_atomic_init_u32(&shared->phase, PGBR_PHASE_STARTING);
		pg_atomic_init_u64(&shared->next_entry, 0);
		pg_atomic_init_u64(&shared->entries_ready, 0);
		pg_atomic_init_u32(&shared->list_complete, 0);
		pg_atomic_init_u64(&shared->files_total, 0);
		pg_atomic_init_u64(&shared->files_done, 0);
		pg_atomic_init_u64(&shared->bytes_total, 0);
		pg_atomic_init_u64(&shared->bytes_done, 0);
		pg_atomic_init_u32(&shared->checksum_files, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
pgbr_shmem_init_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgbr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgbr_shmem_startup;
}

PgbrBackupShared *
pgbr_backup_shared(void)
{
	return shared;
}

const char *
pgbr_phase_name(int phase)
{
	switch (phase)
	{
		case PGBR_PHASE_STARTING:
			return "starting";
		case PGBR_PHASE_CHECKPOINT:
			return "waiting for checkpoint";
		case PGBR_PHASE_LISTING:
			return "listing files";
		case PGBR_PHASE_COPYING:
			return "copying files";
		case PGBR_PHASE_STOPPING:
			return "stopping backup";
		case PGBR_PHASE_ARCHIVE_WAIT:
			return "waiting for WAL archiving";
		case PGBR_PHASE_COMMITTING:
			return "committing";
		case PGBR_PHASE_STANDBY_WAIT:
			return "waiting for replay on the standby";
	}
	return "unknown";
}

void
pgbr_shared_error_set(PgbrSharedError *dst, const ErrorData *edata)
{
	dst->sqlstate = edata->sqlerrcode;
	strlcpy(dst->message, edata->message ? edata->message : "unknown error",
			sizeof(dst->message));
	strlcpy(dst->detail, edata->detail ? edata->detail : "", sizeof(dst->detail));
	strlcpy(dst->hint, edata->hint ? edata->hint : "", sizeof(dst->hint));
}

void
pgbr_shared_error_raise(const PgbrSharedError *e)
{
	ereport(ERROR,
			(errcode(e->sqlstate ? e->sqlstate : ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg_internal("%s", e->message),
			 e->detail[0] ? errdetail_internal("%s", e->detail) : 0,
			 e->hint[0] ? errhint("%s", e->hint) : 0));
}
