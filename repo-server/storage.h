/*
 * storage.h
 *		Where the repository's files live: a directory (repo1-type=posix) or
 *		an S3 bucket (repo1-type=s3).  Everything in pgbr-server that reads
 *		or writes the repository goes through this interface.
 *
 * Paths are relative to the repository root ("<stanza>/archive/..."),
 * '/'-separated, without a leading '/', and never contain "." or ".."
 * components: callers build them from checked names only.
 *
 * The promises both back ends keep:
 *
 * - A file being written is invisible under its name until
 *	 storage_commit() returns true; after that it is durable (posix: file
 *	 and directory fsynced; s3: the object store confirmed the PUT or the
 *	 completion of the multipart upload).  storage_discard() leaves nothing
 *	 visible (a multipart upload is aborted).
 * - With STORAGE_DEFER_SYNC (backup data, written by the thousand) posix
 *	 writes the final name directly and skips the fsyncs; the caller calls
 *	 storage_sync() before anything refers to those files.  s3 ignores the
 *	 flag: a confirmed PUT is durable.
 * - Listings show committed files only, never temporary ones (names of
 *	 the form ".<name>.<anything>.tmp" are reserved for them).
 *
 * The interface is small on purpose: create/write/commit, read a range,
 * list one level, remove, and a lock.  A Storage belongs to one process
 * (pgbr-server forks per connection) and is not thread-safe.
 *
 * Every driver's StorageFile, StorageRead and StorageLock struct begins
 * with a "Storage *st" member: storage.c finds the driver through it.
 */
#ifndef PGBR_SERVER_STORAGE_H
#define PGBR_SERVER_STORAGE_H

#include "pgbr_buf.h"
#include "pgbr_config.h"
#include "pgbr_error.h"

#include <sys/types.h>

#define STORAGE_PATH_MAX 4096

typedef struct Storage Storage;
typedef struct StorageFile StorageFile;
typedef struct StorageRead StorageRead;
typedef struct StorageLock StorageLock;

/* storage_create flags */
#define STORAGE_DEFER_SYNC	0x01	/* see above */

/* one entry of a listing */
typedef struct StorageEntry
{
	const char *name;			/* name inside the listed directory */
	bool		is_dir;			/* a "directory" (s3: a common prefix) */
	uint64_t	size;			/* files only */
	int64_t		mtime;			/* files only: seconds since the epoch */
} StorageEntry;

/*
 * Listing callback: return true to go on, false to stop.  Set err (and
 * return false) to fail the listing.
 */
typedef bool (*StorageListFn) (void *arg, const StorageEntry *e, PgbrError *err);

/* one back end; storage_posix.c and storage_s3.c each define one */
typedef struct StorageDriver
{
	const char *type;			/* "posix", "s3" */
	bool		(*open) (Storage *st, const PgbrConfig *cfg, PgbrError *err);
	void		(*close) (Storage *st);

	StorageFile *(*create) (Storage *st, const char *path, int flags, PgbrError *err);
	bool		(*write) (StorageFile *f, const void *data, size_t len, PgbrError *err);
	/*
	 * Makes the file durable and visible, under final if not NULL (a name
	 * known only once the content was received, e.g. one carrying its
	 * checksum; s3: an upload that went multipart is completed under a
	 * temporary name "<dir>/.<name>.<owner>.tmp", copied and removed),
	 * else under the name it was created with.  Frees f.
	 */
	bool		(*commit) (StorageFile *f, const char *final, PgbrError *err);
	void		(*discard) (StorageFile *f);	/* frees f */

	StorageRead *(*read_open) (Storage *st, const char *path, uint64_t offset,
							   uint64_t length, bool *missing, PgbrError *err);
	/* bytes read, 0 at the end of the range, -1 on error */
	ssize_t		(*read) (StorageRead *r, void *buf, size_t len, PgbrError *err);
	void		(*read_close) (StorageRead *r);

	/* entries of dir whose name starts with prefix ("" = all); no order */
	bool		(*list) (Storage *st, const char *dir, const char *prefix, StorageListFn fn,
						 void *arg, PgbrError *err);
	bool		(*exists) (Storage *st, const char *path, bool *exists, PgbrError *err);
	/* a missing file is not an error */
	bool		(*remove) (Storage *st, const char *path, PgbrError *err);
	/* removes dir and everything below it */
	bool		(*remove_tree) (Storage *st, const char *dir, PgbrError *err);
	/* makes what STORAGE_DEFER_SYNC wrote below dir durable */
	bool		(*sync) (Storage *st, const char *dir, PgbrError *err);

	/*
	 * Exclusive lock named path.  wait_ms: 0 = fail at once if it is held,
	 * > 0 = retry until that many ms passed, < 0 = wait as long as it
	 * takes (posix: a blocking flock; s3: retries for 10 minutes).  The
	 * lock is released by unlock or when the process ends (posix); an s3
	 * lock left by a process that died goes stale after a while.
	 */
	StorageLock *(*lock) (Storage *st, const char *path, int wait_ms, PgbrError *err);
	/* keeps a long-held lock fresh (s3); cheap when nothing is due */
	void		(*lock_refresh) (StorageLock *l);
	void		(*unlock) (StorageLock *l);
} StorageDriver;

/* the part of a Storage every driver has; drivers extend it */
struct Storage
{
	const StorageDriver *driver;
	char		where[512];		/* for messages: "repo1-path \"/x\"", "bucket \"b\"" */
	bool		atomic_names;	/* posix: a lock makes check-then-create atomic */
	void	   *priv;			/* driver state */
};

extern const StorageDriver storage_posix_driver;
extern const StorageDriver storage_s3_driver;

/* opens the back end repo1-type names; NULL and err set on failure */
extern Storage *storage_open(const PgbrConfig *cfg, PgbrError *err);
extern void storage_close(Storage *st);

/* the calls, in the order of the driver's members */
extern StorageFile *storage_create(Storage *st, const char *path, int flags, PgbrError *err);
extern bool storage_write(StorageFile *f, const void *data, size_t len, PgbrError *err);
extern bool storage_commit(StorageFile *f, PgbrError *err);
extern bool storage_commit_as(StorageFile *f, const char *final, PgbrError *err);
extern void storage_discard(StorageFile *f);
extern StorageRead *storage_read_open(Storage *st, const char *path, uint64_t offset,
									  uint64_t length, bool *missing, PgbrError *err);
extern ssize_t storage_read(StorageRead *r, void *buf, size_t len, PgbrError *err);
extern void storage_read_close(StorageRead *r);
extern bool storage_list(Storage *st, const char *dir, const char *prefix, StorageListFn fn,
						 void *arg, PgbrError *err);
extern bool storage_exists(Storage *st, const char *path, bool *exists, PgbrError *err);
extern bool storage_remove(Storage *st, const char *path, PgbrError *err);
extern bool storage_remove_tree(Storage *st, const char *dir, PgbrError *err);
extern bool storage_sync(Storage *st, const char *dir, PgbrError *err);
extern StorageLock *storage_lock(Storage *st, const char *path, int wait_ms, PgbrError *err);
extern void storage_lock_refresh(StorageLock *l);
extern void storage_unlock(StorageLock *l);

/* conveniences built on the calls above (storage.c) */

/* writes a small file in one go, durably */
extern bool storage_put(Storage *st, const char *path, const void *data, size_t len,
						PgbrError *err);

/* reads a whole small file (at most max bytes, else an error) into out */
extern bool storage_get(Storage *st, const char *path, size_t max, PgbrBuf *out, bool *missing,
						PgbrError *err);

/* a PgbrLineSource (pgbr_manifest.h) reading the StorageRead given as arg */
extern ssize_t storage_read_source(void *arg, void *buf, size_t len, PgbrError *err);

/*
 * Whether host (hostlen bytes, not terminated) is this host and pid a
 * process that no longer exists there: a lock entry or a backup session it
 * left behind can be disregarded at once.  False when it cannot be told.
 */
extern bool storage_process_gone(const char *host, size_t hostlen, long pid);

/* snprintf into a STORAGE_PATH_MAX buffer; false (err set) if it does not fit */
extern bool storage_path(char *out, PgbrError *err, const char *fmt,...) PGBR_PRINTF(3, 4);

#endif							/* PGBR_SERVER_STORAGE_H */
