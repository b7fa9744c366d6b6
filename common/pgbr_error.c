/*
 * pgbr_error.c
 *		Error structs filled by common/ code.
 */
#include "pgbr_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>

void *
pgbr_malloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

#ifdef FRONTEND
	if (p == NULL)
	{
		fprintf(stderr, "ERROR: [%03d]: out of memory\n", PGBR_ERR_MEMORY);
		exit(PGBR_ERR_MEMORY);
	}
#endif
	return p;
}

void *
pgbr_realloc(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size ? size : 1);

#ifdef FRONTEND
	if (p == NULL)
	{
		fprintf(stderr, "ERROR: [%03d]: out of memory\n", PGBR_ERR_MEMORY);
		exit(PGBR_ERR_MEMORY);
	}
#endif
	return p;
}

char *
pgbr_strdup(const char *s)
{
	size_t		len = strlen(s) + 1;
	char	   *p = pgbr_malloc(len);

	if (p)
		memcpy(p, s, len);
	return p;
}

void
pgbr_free(void *ptr)
{
	free(ptr);
}

void
pgbr_error_init(PgbrError *err)
{
	err->code = 0;
	err->message[0] = '\0';
	err->hint[0] = '\0';
}

static void error_vset(PgbrError *err, int code, const char *fmt, va_list ap) PGBR_PRINTF(3, 0);

static void
error_vset(PgbrError *err, int code, const char *fmt, va_list ap)
{
	err->code = code;
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	err->hint[0] = '\0';
}

bool
pgbr_error_set(PgbrError *err, int code, const char *fmt,...)
{
	va_list		ap;

	if (err->code != 0)
		return false;
	va_start(ap, fmt);
	error_vset(err, code, fmt, ap);
	va_end(ap);
	return false;
}

bool
pgbr_error_errno(PgbrError *err, int code, const char *fmt,...)
{
	int			save_errno = errno;
	va_list		ap;
	size_t		len;

	if (err->code != 0)
		return false;
	va_start(ap, fmt);
	error_vset(err, code, fmt, ap);
	va_end(ap);
	len = strlen(err->message);
	snprintf(err->message + len, sizeof(err->message) - len, ": %s",
			 strerror(save_errno));
	return false;
}

bool
pgbr_error_ssl(PgbrError *err, int code, const char *fmt,...)
{
	va_list		ap;
	unsigned long e;
	size_t		len;

	if (err->code != 0)
	{
		ERR_clear_error();
		return false;
	}
	va_start(ap, fmt);
	error_vset(err, code, fmt, ap);
	va_end(ap);
	/* report the oldest error: it is the cause, the rest are consequences */
	e = ERR_get_error();
	if (e != 0)
	{
		char		buf[256];

		ERR_error_string_n(e, buf, sizeof(buf));
		len = strlen(err->message);
		snprintf(err->message + len, sizeof(err->message) - len, ": %s",
				 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : buf);
	}
	ERR_clear_error();
	return false;
}

void
pgbr_error_hint(PgbrError *err, const char *fmt,...)
{
	va_list		ap;

	if (err->hint[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void
pgbr_error_copy(PgbrError *dst, const PgbrError *src)
{
	memcpy(dst, src, sizeof(PgbrError));
}
