/*
 * restore_fsync.h
 *		Deferred fsync of the files a restore worker writes: writeback is
 *		started when a file is complete, the fsync itself comes up to
 *		RESTORE_FSYNC_RING files later (or at restore_fsync_drain), when
 *		the data is on its way or on disk already.
 */
#ifndef RESTORE_FSYNC_H
#define RESTORE_FSYNC_H

#include "pgbr_error.h"

#define RESTORE_FSYNC_RING	128

typedef struct RestoreFsync RestoreFsync;

extern RestoreFsync *restore_fsync_create(void);

/* closes what is still open without syncing it; _free(NULL) is a no-op */
extern void restore_fsync_free(RestoreFsync *f);

/*
 * Takes over fd (a complete file; name for messages): starts its
 * writeback, and fsyncs and closes the oldest file held when the ring is
 * full.  fd is closed even on failure.
 */
extern bool restore_fsync_add(RestoreFsync *f, int fd, const char *name, PgbrError *err);

/* fsyncs and closes every file held: they are durable when it returns true */
extern bool restore_fsync_drain(RestoreFsync *f, PgbrError *err);

#endif							/* RESTORE_FSYNC_H */
