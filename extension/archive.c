/*
 * archive.c
 *		The archive module (archive_library = 'pgbr').
 *
 * The archiver hands over one WAL file per call.  pgbr keeps process-max
 * TLS sessions to the repository server across calls, each driven by a
 * thread of its own (pgbr_push_pool in common/pgbr_client.c) that reads,
 * checksums, compresses and sends whole files.  Each call queues its file
 * first and, when more are ready, the following segments
 * (archive-push-queue of them), then waits only for its own file: the
 * streams keep compressing the next segments while the archiver marks
 * this one done, so later calls find theirs already durable and return at
 * once, and every core works on a segment of its own.  A file counts as
 * archived only when the server has acknowledged it, which it does after
 * fsync of the file and its directory.
 *
 * Failures return false, so PostgreSQL retries; nothing here may throw an
 * ERROR out of the callback on 15/16, where it would take the archiver
 * down (see compat.h).
 */
#include "pgbr_ext.h"
#include "pgbr_wal.h"

#include <dirent.h>
#include <signal.h>
#include <time.h>

#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#define QUEUE_MAX	64

/* after a failed connect, calls fail fast for this long */
#define RECONNECT_DELAY_SEC	2

static PgbrPushPool *pool = NULL;
static uint64 pool_generation = 0;	/* configuration the sessions were opened with */
static SSL_CTX *tls = NULL;
static MemoryContext archive_cxt = NULL;
static time_t retry_after = 0;
static char last_connect_error[1024];
static pqsigfunc prev_sigusr2 = NULL;

static void
disconnect(void)
{
	pgbr_push_pool_free(pool);
	pool = NULL;
	SSL_CTX_free(tls);
	tls = NULL;
}

/*
 * The postmaster sends SIGUSR2 when the archiver is to do its last cycle
 * and exit.  Chained in front of pgarch.c's handler, it lets waits on a
 * repository that does not answer end quickly during shutdown.
 */
static void
pgbr_archiver_sigusr2(SIGNAL_ARGS)
{
	pgbr_archiver_stopping = true;
	if (prev_sigusr2 && prev_sigusr2 != SIG_IGN && prev_sigusr2 != SIG_DFL)
		prev_sigusr2(postgres_signal_arg);
}

/*
 * Up to max segments marked .ready that come after `file`, oldest first.
 * Only plain segments of the same timeline are pushed ahead.
 */
static int
ready_after(const char *file, char (*out)[MAXFNAMELEN], int max)
{
	DIR		   *dir;
	struct dirent *de;
	int			n = 0;

	if (max <= 0 || pgbr_wal_kind(file) != PGBR_WAL_SEGMENT)
		return 0;
	dir = AllocateDir(XLOGDIR "/archive_status");
	while (dir && (de = ReadDir(dir, XLOGDIR "/archive_status")) != NULL)
	{
		char		name[MAXFNAMELEN];
		size_t		len = strlen(de->d_name);
		int			pos;

		if (len != 24 + 6 || strcmp(de->d_name + 24, ".ready") != 0)
			continue;
		memcpy(name, de->d_name, 24);
		name[24] = '\0';
		if (pgbr_wal_kind(name) != PGBR_WAL_SEGMENT || strncmp(name, file, 8) != 0 ||
			strcmp(name, file) <= 0 || pgbr_push_pool_known(pool, name))
			continue;
		/* insertion into the sorted list of the smallest `max` names */
		for (pos = n; pos > 0 && strcmp(out[pos - 1], name) > 0; pos--)
			;
		if (pos >= max)
			continue;
		if (n < max)
			n++;
		memmove(out[pos + 1], out[pos], sizeof(out[0]) * (size_t) (n - pos - 1));
		strlcpy(out[pos], name, MAXFNAMELEN);
	}
	if (dir)
		FreeDir(dir);
	return n;
}

static bool
ensure_connected(const PgbrConfig *cfg, PgbrError *err)
{
	PgbrConn   *conns[PGBR_PUSH_STREAMS_MAX];
	int			nstreams;
	PgbrCompress compress;

	/*
	 * A changed configuration (host, port, certificate, compression) needs
	 * new sessions, and so does a broken one: what the others still had
	 * under way is pushed again (the server accepts the same file twice).
	 */
	if (pool && (pool_generation != pgbr_backend_config_generation() ||
				 pgbr_push_pool_broken(pool)))
		disconnect();
	if (pool)
		return true;
	if (time(NULL) < retry_after)
	{
		pgbr_error_set(err, PGBR_ERR_HOST_CONNECT,
					   "repository host not reachable (retrying in %d s): %s",
					   RECONNECT_DELAY_SEC, last_connect_error);
		return false;
	}
	pool_generation = pgbr_backend_config_generation();
	nstreams = (int) Max(1, Min(pgbr_config_get_int(cfg, "process-max"), PGBR_PUSH_STREAMS_MAX));
	compress = strcmp(pgbr_config_get(cfg, "compress-type"), "none") == 0 ?
		PGBR_COMPRESS_NONE : PGBR_COMPRESS_ZST;
	tls = pgbr_client_tls_ctx(cfg, true, err);
	for (int i = 0; tls && i < nstreams; i++)
	{
		conns[i] = pgbr_client_open(cfg, tls, "archive-push", pgbr_config_stanza(cfg),
									pgbr_backend_wait, NULL, err);
		if (conns[i] == NULL)
		{
			while (--i >= 0)
				pgbr_conn_free(conns[i]);
			break;
		}
		if (i == nstreams - 1)
			pool = pgbr_push_pool_create(conns, nstreams, compress,
										 (int) pgbr_config_get_int(cfg, "compress-level"), err);
	}
	if (pool == NULL)
	{
		SSL_CTX_free(tls);
		tls = NULL;
		retry_after = time(NULL) + RECONNECT_DELAY_SEC;
		strlcpy(last_connect_error, err->message, sizeof(last_connect_error));
		return false;
	}
	return true;
}

/*
 * Queues `file` (first) and the look-ahead segments, then waits for the
 * answer about `file`.  Returns whether it was archived.
 */
static bool
push(const PgbrConfig *cfg, const char *file, const char *path, PgbrError *err)
{
	PgbrPushResult r;
	PgbrError	e;
	int			timeout_ms = (int) pgbr_config_get_int(cfg, "io-timeout") * 1000;
	int			ahead;

	pgbr_error_init(&e);
	r = pgbr_push_pool_result(pool, file, &e);
	if (r == PGBR_PUSH_FAILED)
	{
		ereport(LOG, (errmsg("pgbr: could not archive \"%s\" ahead of its turn: %s",
							 file, e.message)));
		pgbr_error_init(&e);
		r = PGBR_PUSH_UNKNOWN;
	}
	if (r == PGBR_PUSH_UNKNOWN)
	{
		if (!pgbr_push_pool_submit(pool, file, path, true))
		{
			pgbr_error_set(err, PGBR_ERR_RUNTIME, "could not queue \"%s\" for archiving", file);
			disconnect();
			return false;
		}
		r = PGBR_PUSH_PENDING;
	}

	/* keep archive-push-queue segments under way behind this one */
	ahead = Min((int) pgbr_config_get_int(cfg, "archive-push-queue"), QUEUE_MAX) -
		pgbr_push_pool_unfinished(pool) + (r == PGBR_PUSH_PENDING ? 1 : 0);
	if (ahead > 0)
	{
		char		(*queue)[MAXFNAMELEN] = palloc(sizeof(*queue) * QUEUE_MAX);
		int			n = ready_after(file, queue, ahead);

		for (int i = 0; i < n; i++)
		{
			char		p[MAXPGPATH];

			snprintf(p, sizeof(p), XLOGDIR "/%s", queue[i]);
			(void) pgbr_push_pool_submit(pool, queue[i], p, false);
		}
		pfree(queue);
	}

	/* every file that finishes wakes this wait; the streams time out on their own */
	while (r == PGBR_PUSH_PENDING)
	{
		int			rc = pgbr_backend_wait(NULL, pgbr_push_pool_fd(pool), PGBR_WAIT_READ,
										   timeout_ms, err);

		if (rc <= 0)
		{
			if (rc == 0 && (pgbr_archiver_stopping || ShutdownRequestPending))
				pgbr_error_set(err, PGBR_ERR_INTERRUPTED,
							   "archiving of \"%s\" interrupted by shutdown", file);
			else if (rc == 0)
				pgbr_error_set(err, PGBR_ERR_TIMEOUT,
							   "timed out after %d s waiting for the push of \"%s\"",
							   timeout_ms / 1000, file);
			disconnect();
			return false;
		}
		r = pgbr_push_pool_result(pool, file, err);
	}
	if (r == PGBR_PUSH_OK)
		return true;
	if (r == PGBR_PUSH_UNKNOWN)
		pgbr_error_set(err, PGBR_ERR_ASSERT, "the push of \"%s\" was lost", file);
	/* a broken session is replaced before the next push */
	if (pgbr_push_pool_broken(pool))
		disconnect();
	return false;
}

static bool
archive_file_work(const char *file, const char *path)
{
	PgbrError	err;
	const PgbrConfig *cfg;
	bool		ok;

	pgbr_error_init(&err);
	cfg = pgbr_backend_config(&err);
	if (cfg == NULL || !ensure_connected(cfg, &err))
	{
		pgbr_ereport(WARNING, &err);
		return false;
	}
	ok = push(cfg, file, path, &err);
	if (!ok && pool == NULL && err.code != PGBR_ERR_ARCHIVE_DUPLICATE &&
		err.code != PGBR_ERR_ARCHIVE_MISMATCH && err.code != PGBR_ERR_INTERRUPTED)
	{
		/* the session broke: one more try on a fresh one */
		PgbrError	again;

		pgbr_error_init(&again);
		if (ensure_connected(cfg, &again) && push(cfg, file, path, &again))
			return true;
	}
	if (!ok)
		pgbr_ereport(WARNING, &err);
	return ok;
}

static bool
pgbr_archive_file(PGBR_ARCHIVE_STATE_ARG const char *file, const char *path)
{
	MemoryContext oldcxt;
	bool		ok = false;

	if (archive_cxt == NULL)
		archive_cxt = AllocSetContextCreate(TopMemoryContext, "pgbr archive",
											ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(archive_cxt);

#ifdef PGBR_ARCHIVE_CATCHES_ERRORS
	{
		sigjmp_buf	local_sigjmp_buf;

		/* an ERROR here would be FATAL for the archiver: make it a retry */
		if (sigsetjmp(local_sigjmp_buf, 1) != 0)
		{
			error_context_stack = NULL;
			HOLD_INTERRUPTS();
			EmitErrorReport();
			FlushErrorState();
			AtEOXact_Files(false);
			disconnect();
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(archive_cxt);
			PG_exception_stack = NULL;
			RESUME_INTERRUPTS();
			return false;
		}
		PG_exception_stack = &local_sigjmp_buf;
		ok = archive_file_work(file, path);
		PG_exception_stack = NULL;
	}
#else
	ok = archive_file_work(file, path);
#endif

	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(archive_cxt);
	return ok;
}

static bool
pgbr_archive_configured(PGBR_ARCHIVE_STATE_ONLY)
{
	PgbrError	err;
	static time_t last_warning = 0;

	pgbr_error_init(&err);
	if (pgbr_backend_config(&err) != NULL)
		return true;
	/* the core WARNING does not say why: say it, at most once a minute */
	if (time(NULL) - last_warning >= 60)
	{
		last_warning = time(NULL);
		pgbr_ereport(WARNING, &err);
	}
	return false;
}

static void
pgbr_archive_shutdown(PGBR_ARCHIVE_STATE_ONLY)
{
	disconnect();
}

#if PG_VERSION_NUM >= 160000
static const ArchiveModuleCallbacks pgbr_archive_callbacks = {
	.startup_cb = NULL,
	.check_configured_cb = pgbr_archive_configured,
	.archive_file_cb = pgbr_archive_file,
	.shutdown_cb = pgbr_archive_shutdown
};

const ArchiveModuleCallbacks *
_PG_archive_module_init(void)
{
	prev_sigusr2 = pqsignal(SIGUSR2, pgbr_archiver_sigusr2);
	return &pgbr_archive_callbacks;
}
#else
PGDLLEXPORT void _PG_archive_module_init(ArchiveModuleCallbacks *cb);

void
_PG_archive_module_init(ArchiveModuleCallbacks *cb)
{
	prev_sigusr2 = pqsignal(SIGUSR2, pgbr_archiver_sigusr2);
	cb->check_configured_cb = pgbr_archive_configured;
	cb->archive_file_cb = pgbr_archive_file;
	cb->shutdown_cb = pgbr_archive_shutdown;
}
#endif
