/*
 * storage_s3_int.h
 *		What storage_s3.c and storage_s3_lock.c share: the driver's state
 *		and how repository paths become keys.
 */
#ifndef PGBR_STORAGE_S3_INT_H
#define PGBR_STORAGE_S3_INT_H

#include "storage.h"
#include "s3.h"

#define S3_KEY_MAX			(STORAGE_PATH_MAX + 1024)

/*
 * Windows read ahead for small ranged reads.  A bundle holds hundreds of
 * small files read one after another (restore, verify): one GET of 4 MiB
 * serves them instead of one GET each.  Objects a reader asks ranges of
 * are never rewritten, and a Storage lives as long as one client session.
 */
#define S3_CACHE_SLOTS		4

typedef struct S3Window
{
	char	   *key;			/* NULL: slot unused */
	uint64_t	off;
	PgbrBuf		data;
	uint64_t	total;			/* the object's size */
	uint64_t	used;			/* for LRU */
} S3Window;

typedef struct S3State
{
	S3Client   *client;
	char	   *bucket;
	char	   *prefix;			/* "" or "a/b/" */
	S3Window	cache[S3_CACHE_SLOTS];
	uint64_t	clock;
} S3State;

extern S3State *s3_state(Storage *st);
/* the key of a repository path, under the prefix */
extern bool s3_key_of(Storage *st, char *out, const char *path, PgbrError *err);
/* "<key of dir>/", or the prefix itself for the root */
extern bool s3_dir_key(Storage *st, char *out, const char *dir, PgbrError *err);

/* storage_s3_lock.c */
extern StorageLock *storage_s3_lock(Storage *st, const char *path, int wait_ms, PgbrError *err);
extern void storage_s3_lock_refresh(StorageLock *l);
extern void storage_s3_unlock(StorageLock *l);

#endif							/* PGBR_STORAGE_S3_INT_H */
