/*
 * pgbr_error.h
 *		The error idiom of common/: functions return bool (true = success)
 *		and fill a caller-owned PgbrError.  The first error set wins, so a
 *		cleanup step that fails after the real failure does not hide it.
 */
#ifndef PGBR_ERROR_H
#define PGBR_ERROR_H

#include "pgbr_c.h"

/* error codes, printed as "ERROR: [NNN]: message" by the programs */
typedef enum PgbrErrorCode
{
	PGBR_OK = 0,
	PGBR_ERR_ASSERT = 25,
	PGBR_ERR_FORMAT = 28,		/* malformed data: frame, message, file */
	PGBR_ERR_COMMAND = 29,		/* unknown command or bad arguments */
	PGBR_ERR_OPTION = 31,		/* invalid option or value */
	PGBR_ERR_OPTION_REQUIRED = 37,
	PGBR_ERR_FILE_OPEN = 41,
	PGBR_ERR_FILE_READ = 42,
	PGBR_ERR_FILE_WRITE = 43,
	PGBR_ERR_ARCHIVE_MISMATCH = 44, /* WAL or stanza from another cluster */
	PGBR_ERR_ARCHIVE_DUPLICATE = 45,	/* same WAL name, different content */
	PGBR_ERR_HOST_CONNECT = 46,
	PGBR_ERR_PROTOCOL = 49,
	PGBR_ERR_CHECKSUM = 53,
	PGBR_ERR_STANZA_MISSING = 55,
	PGBR_ERR_NOT_FOUND = 56,
	PGBR_ERR_RUNTIME = 57,
	PGBR_ERR_ACCESS = 58,		/* client not authorised */
	PGBR_ERR_TLS = 59,
	PGBR_ERR_TIMEOUT = 60,
	PGBR_ERR_LOCK = 61,			/* another backup or stanza operation runs */
	PGBR_ERR_COMPRESS = 62,
	PGBR_ERR_INTERRUPTED = 63,
	PGBR_ERR_MEMORY = 64,
	PGBR_ERR_BACKUP = 65,
	PGBR_ERR_RESTORE = 66,
} PgbrErrorCode;

typedef struct PgbrError
{
	int			code;			/* PgbrErrorCode, 0 = no error */
	char		message[1024];
	char		hint[512];		/* empty or a full sentence */
} PgbrError;

extern void pgbr_error_init(PgbrError *err);

/* set the error unless one is set already; always returns false */
extern bool pgbr_error_set(PgbrError *err, int code, const char *fmt,...) PGBR_PRINTF(3, 4);

/* like pgbr_error_set, appending ": <strerror(errno)>" */
extern bool pgbr_error_errno(PgbrError *err, int code, const char *fmt,...) PGBR_PRINTF(3, 4);

/* attach a hint to the error already set, unless it has one */
extern void pgbr_error_hint(PgbrError *err, const char *fmt,...) PGBR_PRINTF(2, 3);

/* attach the OpenSSL error queue text to the message ("...: reason") */
extern bool pgbr_error_ssl(PgbrError *err, int code, const char *fmt,...) PGBR_PRINTF(3, 4);

static inline bool
pgbr_error_is_set(const PgbrError *err)
{
	return err->code != 0;
}

/* copy src into dst (even if dst holds an error: used to re-raise) */
extern void pgbr_error_copy(PgbrError *dst, const PgbrError *src);

#endif							/* PGBR_ERROR_H */
