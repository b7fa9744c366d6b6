/*
 * backend.c
 *		The seam between common/ and the backend: errors, waits,
 *		configuration and connections.
 */
#include "pgbr_ext.h"

#include <sys/stat.h>

#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

volatile sig_atomic_t pgbr_archiver_stopping = false;

/* incremented each time pgbr_backend_config() reads the file anew */
static uint64 config_generation = 0;

uint64
pgbr_backend_config_generation(void)
{
	return config_generation;
}

/* once stopping, no wait lasts longer than this */
#define STOPPING_WAIT_MS	3000

void
pgbr_ereport(int elevel, const PgbrError *err)
{
	int			sqlstate;

	switch (err->code)
	{
		case PGBR_ERR_OPTION:
		case PGBR_ERR_OPTION_REQUIRED:
			sqlstate = ERRCODE_CONFIG_FILE_ERROR;
			break;
		case PGBR_ERR_ACCESS:
			sqlstate = ERRCODE_INSUFFICIENT_PRIVILEGE;
			break;
		case PGBR_ERR_HOST_CONNECT:
		case PGBR_ERR_TLS:
		case PGBR_ERR_PROTOCOL:
		case PGBR_ERR_TIMEOUT:
			sqlstate = ERRCODE_CONNECTION_FAILURE;
			break;
		case PGBR_ERR_CHECKSUM:
		case PGBR_ERR_FORMAT:
			sqlstate = ERRCODE_DATA_CORRUPTED;
			break;
		case PGBR_ERR_LOCK:
			sqlstate = ERRCODE_OBJECT_IN_USE;
			break;
		case PGBR_ERR_INTERRUPTED:
			sqlstate = ERRCODE_QUERY_CANCELED;
			break;
		default:
			sqlstate = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
			break;
	}
	ereport(elevel,
			(errcode(sqlstate),
			 errmsg_internal("%s", err->message),
			 err->hint[0] ? errhint("%s", err->hint) : 0));
}

int
pgbr_backend_wait(void *arg, int fd, int events, int timeout_ms, PgbrError *err)
{
	static TimestampTz stop_seen = 0;
	TimestampTz start = GetCurrentTimestamp();
	int			wl = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;
	bool		latch_seen = false;
	int			result = 0;

	if (events & PGBR_WAIT_READ)
		wl |= WL_SOCKET_READABLE;
	if (events & PGBR_WAIT_WRITE)
		wl |= WL_SOCKET_WRITEABLE;

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		remaining = timeout_ms - (long) ((now - start) / 1000);
		int			rc;

		/* once a stop is requested, no wait outlasts STOPPING_WAIT_MS */
		if (pgbr_archiver_stopping || ShutdownRequestPending)
		{
			if (stop_seen == 0)
				stop_seen = now;
			remaining = Min(remaining, STOPPING_WAIT_MS - (long) ((now - stop_seen) / 1000));
		}
		if (remaining <= 0)
			break;
		rc = WaitLatchOrSocket(MyLatch, wl, fd, remaining, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_seen = true;
			if (MyBackendType != B_ARCHIVER)
				CHECK_FOR_INTERRUPTS();
		}
		if (rc & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			result = 1;
			break;
		}
	}

	/*
	 * The latch may have carried someone else's wake-up (the archiver's
	 * stop request, a new segment): hand it back to the main loop.
	 */
	if (latch_seen)
		SetLatch(MyLatch);
	return result;
}

const PgbrConfig *
pgbr_backend_config(PgbrError *err)
{
	static PgbrConfig *cached = NULL;
	static char *cached_path = NULL;
	static char *cached_stanza = NULL;
	static struct timespec cached_mtime;
	static off_t cached_size;
	struct stat st;
	PgbrConfig *cfg;
	const char *path = pgbr_config_file ? pgbr_config_file : PGBR_CONFIG_DEFAULT_PATH;
	const char *stanza = pgbr_stanza ? pgbr_stanza : "";

	if (stanza[0] == '\0')
	{
		pgbr_error_set(err, PGBR_ERR_OPTION_REQUIRED, "pgbr.stanza is not set");
		pgbr_error_hint(err, "Set pgbr.stanza in postgresql.conf to the stanza of this cluster and reload.");
		return NULL;
	}
	if (!pgbr_stanza_name_valid(stanza))
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "pgbr.stanza \"%s\" is not a valid stanza name", stanza);
		return NULL;
	}
	if (stat(path, &st) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not access pgbr configuration file \"%s\"", path);
		pgbr_error_hint(err, "Set pgbr.config to the path of the pgbr configuration file.");
		return NULL;
	}
	if (cached && strcmp(cached_path, path) == 0 && strcmp(cached_stanza, stanza) == 0 &&
		st.st_mtim.tv_sec == cached_mtime.tv_sec && st.st_mtim.tv_nsec == cached_mtime.tv_nsec &&
		st.st_size == cached_size)
		return cached;

	cfg = pgbr_config_create();
	if (cfg == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	pgbr_config_set_stanza(cfg, stanza);
	if (!pgbr_config_load_file(cfg, path, false, err))
	{
		pgbr_config_free(cfg);
		return NULL;
	}
	pgbr_config_free(cached);
	pgbr_free(cached_path);
	pgbr_free(cached_stanza);
	cached = cfg;
	config_generation++;
	cached_path = pgbr_strdup(path);
	cached_stanza = pgbr_strdup(stanza);
	cached_mtime = st.st_mtim;
	cached_size = st.st_size;
	return cached;
}

PgbrConn *
pgbr_backend_connect(const PgbrConfig *cfg, const char *program, SSL_CTX **ctxp, PgbrError *err)
{
	PgbrError	local;
	PgbrError  *e = err ? err : &local;
	PgbrConn   *conn;

	pgbr_error_init(&local);
	*ctxp = pgbr_client_tls_ctx(cfg, true, e);
	conn = *ctxp ? pgbr_client_open(cfg, *ctxp, program, pgbr_config_stanza(cfg),
									pgbr_backend_wait, NULL, e) : NULL;
	if (conn == NULL)
	{
		SSL_CTX_free(*ctxp);
		*ctxp = NULL;
		if (err == NULL)
			pgbr_ereport(ERROR, &local);
	}
	return conn;
}
