/*
 * storage.c
 *		Choosing the repository's back end and the calls every caller uses
 *		(storage.h).  The calls only forward to the driver; the conveniences
 *		at the end are written once on top of them.
 */
#include "storage.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* the driver-specific handles all start with this */
typedef struct StorageHandle
{
	Storage    *st;
} StorageHandle;

Storage *
storage_open(const PgbrConfig *cfg, PgbrError *err)
{
	const char *type = pgbr_config_get(cfg, "repo1-type");
	Storage    *st = pgbr_malloc(sizeof(Storage));

	memset(st, 0, sizeof(Storage));
	if (type == NULL || strcmp(type, "posix") == 0)
		st->driver = &storage_posix_driver;
	else if (strcmp(type, "s3") == 0)
		st->driver = &storage_s3_driver;
	else
	{
		pgbr_free(st);
		pgbr_error_set(err, PGBR_ERR_OPTION, "invalid value \"%s\" for option repo1-type", type);
		pgbr_error_hint(err, "Use posix or s3.");
		return NULL;
	}
	if (!st->driver->open(st, cfg, err))
	{
		pgbr_free(st);
		return NULL;
	}
	return st;
}

void
storage_close(Storage *st)
{
	if (st == NULL)
		return;
	st->driver->close(st);
	pgbr_free(st);
}

StorageFile *
storage_create(Storage *st, const char *path, int flags, PgbrError *err)
{
	return st->driver->create(st, path, flags, err);
}

bool
storage_write(StorageFile *f, const void *data, size_t len, PgbrError *err)
{
	return ((StorageHandle *) f)->st->driver->write(f, data, len, err);
}

bool
storage_commit(StorageFile *f, PgbrError *err)
{
	return ((StorageHandle *) f)->st->driver->commit(f, NULL, err);
}

bool
storage_commit_as(StorageFile *f, const char *final, PgbrError *err)
{
	return ((StorageHandle *) f)->st->driver->commit(f, final, err);
}

void
storage_discard(StorageFile *f)
{
	if (f)
		((StorageHandle *) f)->st->driver->discard(f);
}

StorageRead *
storage_read_open(Storage *st, const char *path, uint64_t offset, uint64_t length,
				  bool *missing, PgbrError *err)
{
	return st->driver->read_open(st, path, offset, length, missing, err);
}

ssize_t
storage_read(StorageRead *r, void *buf, size_t len, PgbrError *err)
{
	return ((StorageHandle *) r)->st->driver->read(r, buf, len, err);
}

void
storage_read_close(StorageRead *r)
{
	if (r)
		((StorageHandle *) r)->st->driver->read_close(r);
}

bool
storage_list(Storage *st, const char *dir, const char *prefix, StorageListFn fn, void *arg,
			 PgbrError *err)
{
	return st->driver->list(st, dir, prefix ? prefix : "", fn, arg, err);
}

bool
storage_exists(Storage *st, const char *path, bool *exists, PgbrError *err)
{
	return st->driver->exists(st, path, exists, err);
}

bool
storage_remove(Storage *st, const char *path, PgbrError *err)
{
	return st->driver->remove(st, path, err);
}

bool
storage_remove_tree(Storage *st, const char *dir, PgbrError *err)
{
	return st->driver->remove_tree(st, dir, err);
}

bool
storage_sync(Storage *st, const char *dir, PgbrError *err)
{
	return st->driver->sync(st, dir, err);
}

StorageLock *
storage_lock(Storage *st, const char *path, int wait_ms, PgbrError *err)
{
	return st->driver->lock(st, path, wait_ms, err);
}

void
storage_lock_refresh(StorageLock *l)
{
	if (l)
		((StorageHandle *) l)->st->driver->lock_refresh(l);
}

void
storage_unlock(StorageLock *l)
{
	if (l)
		((StorageHandle *) l)->st->driver->unlock(l);
}

bool
storage_put(Storage *st, const char *path, const void *data, size_t len, PgbrError *err)
{
	StorageFile *f = storage_create(st, path, 0, err);

	if (f == NULL)
		return false;
	if (!storage_write(f, data, len, err))
	{
		storage_discard(f);
		return false;
	}
	return storage_commit(f, err);
}

bool
storage_get(Storage *st, const char *path, size_t max, PgbrBuf *out, bool *missing,
			PgbrError *err)
{
	StorageRead *r = storage_read_open(st, path, 0, UINT64_MAX, missing, err);
	uint8_t		chunk[8192];
	ssize_t		n;

	pgbr_buf_reset(out);
	if (r == NULL)
		return *missing && !pgbr_error_is_set(err);
	while ((n = storage_read(r, chunk, sizeof(chunk), err)) > 0)
	{
		if (out->len + (size_t) n > max)
		{
			storage_read_close(r);
			return pgbr_error_set(err, PGBR_ERR_FORMAT, "\"%s\" in %s is larger than %zu bytes",
								  path, st->where, max);
		}
		pgbr_buf_put(out, chunk, (size_t) n);
	}
	storage_read_close(r);
	return n == 0;
}

ssize_t
storage_read_source(void *arg, void *buf, size_t len, PgbrError *err)
{
	return storage_read((StorageRead *) arg, buf, len, err);
}

bool
storage_process_gone(const char *host, size_t hostlen, long pid)
{
	char		here[256] = "";

	if (gethostname(here, sizeof(here) - 1) != 0 || strlen(here) != hostlen ||
		strncmp(here, host, hostlen) != 0)
		return false;
	return pid > 0 && kill((pid_t) pid, 0) != 0 && errno == ESRCH;
}

bool
storage_path(char *out, PgbrError *err, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(out, STORAGE_PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= STORAGE_PATH_MAX)
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "repository path \"%.80s...\" is too long",
							  out);
	return true;
}
