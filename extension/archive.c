/*
 * archive.c
 *		The archive module (archive_library = 'pgbr').
 *
 * The archiver hands over one WAL file per call.  pgbr keeps one TLS
 * session to the repository server across calls and, when more files are
 * ready, sends the following segments in the same pipelined round trip
 * (archive-push-queue of them), so later calls find their segment already
 * durable and return at once.  A file counts as archived only when the
 * server has acknowledged it, which it does after fsync of the file and
 * its directory.
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

/* files acknowledged ahead of their call */
#define DONE_MAX	128
#define QUEUE_MAX	64

/* after a failed connect, calls fail fast for this long */
#define RECONNECT_DELAY_SEC	2

static PgbrConn *conn = NULL;
static uint64 conn_generation = 0;	/* configuration the session was opened with */
static SSL_CTX *tls = NULL;
static MemoryContext archive_cxt = NULL;
static char done[DONE_MAX][MAXFNAMELEN];
static int	ndone = 0;
static time_t retry_after = 0;
static char last_connect_error[1024];
static pqsigfunc prev_sigusr2 = NULL;

/* the compressor, kept across calls: one per configuration of it */
static PgbrWalSender *sender = NULL;
static PgbrCompress sender_compress;
static int	sender_level;
static int	sender_workers;

static void
disconnect(void)
{
	pgbr_conn_free(conn);
	conn = NULL;
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

static PgbrWalSender *
get_sender(PgbrCompress compress, int level, int workers, PgbrError *err)
{
	if (sender && (sender_compress != compress || sender_level != level ||
				   sender_workers != workers))
	{
		pgbr_wal_sender_free(sender);
		sender = NULL;
	}
	if (sender == NULL)
	{
		sender = pgbr_wal_sender_create(compress, level, workers, err);
		sender_compress = compress;
		sender_level = level;
		sender_workers = workers;
	}
	return sender;
}

static bool
done_take(const char *file)
{
	for (int i = 0; i < ndone; i++)
	{
		if (strcmp(done[i], file) == 0)
		{
			memmove(done[i], done[i + 1], sizeof(done[0]) * (size_t) (ndone - i - 1));
			ndone--;
			return true;
		}
	}
	return false;
}

static void
done_add(const char *file)
{
	if (ndone == DONE_MAX)
	{
		memmove(done[0], done[1], sizeof(done[0]) * (DONE_MAX - 1));
		ndone--;
	}
	strlcpy(done[ndone++], file, MAXFNAMELEN);
}

static bool
done_has(const char *file)
{
	for (int i = 0; i < ndone; i++)
		if (strcmp(done[i], file) == 0)
			return true;
	return false;
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
			strcmp(name, file) <= 0 || done_has(name))
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
	/* a changed configuration (host, port, certificate) needs a new session */
	if (conn && conn_generation != pgbr_backend_config_generation())
		disconnect();
	if (conn)
		return true;
	if (time(NULL) < retry_after)
	{
		pgbr_error_set(err, PGBR_ERR_HOST_CONNECT,
					   "repository host not reachable (retrying in %d s): %s",
					   RECONNECT_DELAY_SEC, last_connect_error);
		return false;
	}
	conn = pgbr_backend_connect(cfg, "archive-push", &tls, err);
	conn_generation = pgbr_backend_config_generation();
	if (conn == NULL)
	{
		retry_after = time(NULL) + RECONNECT_DELAY_SEC;
		strlcpy(last_connect_error, err->message, sizeof(last_connect_error));
		return false;
	}
	return true;
}

/*
 * Sends `file` and the look-ahead segments, then collects the answers.
 * Returns whether `file` itself was archived.
 */
static bool
push(const PgbrConfig *cfg, const char *file, const char *path, PgbrError *err)
{
	char		(*queue)[MAXFNAMELEN];
	int			nqueue;
	int			sent = 0;
	bool		result = false;
	PgbrCompress compress;
	int			level;
	int			workers;

	compress = strcmp(pgbr_config_get(cfg, "compress-type"), "none") == 0 ?
		PGBR_COMPRESS_NONE : PGBR_COMPRESS_ZST;
	level = (int) pgbr_config_get_int(cfg, "compress-level");
	workers = (int) pgbr_config_get_int(cfg, "process-max");
	if (workers <= 1)
		workers = 0;

	if (get_sender(compress, level, workers, err) == NULL)
		return false;
	queue = palloc(sizeof(*queue) * (QUEUE_MAX + 1));
	strlcpy(queue[0], file, MAXFNAMELEN);
	nqueue = 1 + ready_after(file, queue + 1,
							 Min((int) pgbr_config_get_int(cfg, "archive-push-queue"), QUEUE_MAX));

	for (int i = 0; i < nqueue; i++)
	{
		char		p[MAXPGPATH];
		PgbrError	e;

		if (i == 0)
			strlcpy(p, path, sizeof(p));
		else
			snprintf(p, sizeof(p), XLOGDIR "/%s", queue[i]);
		pgbr_error_init(&e);
		if (pgbr_wal_sender_send(sender, conn, queue[i], p, &e))
		{
			sent++;
			continue;
		}
		/* a file that cannot be opened was not started: the stream is intact */
		if (i > 0 && e.code == PGBR_ERR_FILE_OPEN)
			break;
		pgbr_error_copy(err, &e);
		disconnect();
		pfree(queue);
		return false;
	}

	/* answers come in order; a look-ahead failure only loses the head start */
	for (int i = 0; i < sent; i++)
	{
		PgbrError	e;

		pgbr_error_init(&e);
		if (pgbr_conn_expect_ok(conn, NULL, &e))
		{
			if (i == 0)
				result = true;
			else
				done_add(queue[i]);
			continue;
		}
		if (i == 0)
			pgbr_error_copy(err, &e);
		else
			ereport(LOG, (errmsg("pgbr: could not archive \"%s\" ahead of its turn: %s",
								 queue[i], e.message)));
		/* an answered refusal leaves the session usable; anything else not */
		if (e.code == PGBR_ERR_TIMEOUT || e.code == PGBR_ERR_PROTOCOL ||
			e.code == PGBR_ERR_TLS || e.code == PGBR_ERR_RUNTIME)
		{
			disconnect();
			break;
		}
	}
	pfree(queue);
	return result;
}

static bool
archive_file_work(const char *file, const char *path)
{
	PgbrError	err;
	const PgbrConfig *cfg;
	bool		ok;

	if (done_take(file))
	{
		ereport(DEBUG1, (errmsg("pgbr: \"%s\" was already archived ahead", file)));
		return true;
	}
	pgbr_error_init(&err);
	cfg = pgbr_backend_config(&err);
	if (cfg == NULL || !ensure_connected(cfg, &err))
	{
		pgbr_ereport(WARNING, &err);
		return false;
	}
	ok = push(cfg, file, path, &err);
	if (!ok && conn == NULL && err.code != PGBR_ERR_ARCHIVE_DUPLICATE &&
		err.code != PGBR_ERR_ARCHIVE_MISMATCH)
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
	pgbr_wal_sender_free(sender);
	sender = NULL;
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
