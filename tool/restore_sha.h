/*
 * restore_sha.h
 *		SHA-256 of a file's bytes, optionally computed on a helper thread
 *		while the caller produces the next bytes (decompresses them, or
 *		reads them for a delta comparison), and optionally written to the
 *		destination file on a second helper thread.
 *
 * The bytes pass through a small ring of slots owned by the pipe: take a
 * slot, fill it, submit it; a submitted slot is only read afterwards (by
 * the hasher, and by the writer or the caller for write()) until the ring
 * comes round to it again.  Memory: RESTORE_SHA_SLOTS * RESTORE_SHA_SLOT_SIZE per pipe.
 */
#ifndef RESTORE_SHA_H
#define RESTORE_SHA_H

#include "pgbr_checksum.h"
#include "pgbr_sink.h"

#define RESTORE_SHA_SLOT_SIZE	(1024 * 1024)
#define RESTORE_SHA_SLOTS		4

typedef struct RestoreSha RestoreSha;

/* the helper thread is started on the first threaded file */
extern RestoreSha *restore_sha_create(PgbrError *err);

/* stops the helper thread; _free(NULL) is a no-op */
extern void restore_sha_free(RestoreSha *p);

/*
 * Starts a new file: threaded hashes on a helper thread (worth it from a
 * few MiB on, where hashing is as long as the rest of the work) and, with
 * wfd >= 0, writes the slots to wfd on another one (name: for messages).
 */
extern bool restore_sha_begin(RestoreSha *p, bool threaded, int wfd, const char *wname,
							  PgbrError *err);

/* true when the writer thread writes this file's slots */
extern bool restore_sha_writes(RestoreSha *p);

/*
 * Waits until the helper threads are done with what was submitted: before
 * closing wfd after a failure (the number could be reused meanwhile).
 */
extern void restore_sha_wait(RestoreSha *p);

/* the next slot to fill (RESTORE_SHA_SLOT_SIZE bytes) */
extern uint8_t *restore_sha_slot(RestoreSha *p);

/* hands the slot over with its first len bytes */
extern void restore_sha_submit(RestoreSha *p, size_t len);

/*
 * Waits for the helper threads, returns the digest and the number of
 * bytes; false if the writer failed.
 */
extern bool restore_sha_end(RestoreSha *p, uint8_t out[PGBR_SHA256_LEN], uint64_t *bytes,
							PgbrError *err);

/*
 * A pipeline stage (pgbr_sink.h) ending a restore: hashes what it gets
 * through the pipe and writes it to fd in slot-sized writes.  Owned by the
 * caller (not freed by pgbr_sink_free of the stages before it); one file
 * at a time: _begin, then the stages write and finish, then _result.
 * threaded: hashed and written on the helper threads.
 */
extern PgbrSink *restore_sha_file_sink_create(RestoreSha *p);
extern bool restore_sha_file_sink_begin(PgbrSink *sink, int fd, const char *name, bool threaded,
										PgbrError *err);
extern void restore_sha_file_sink_result(PgbrSink *sink, uint8_t out[PGBR_SHA256_LEN],
										 uint64_t *bytes);
extern void restore_sha_file_sink_free(PgbrSink *sink);

#endif							/* RESTORE_SHA_H */
