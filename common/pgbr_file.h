/*
 * pgbr_file.h
 *		Small durable-file helpers shared by the server and the tool.
 */
#ifndef PGBR_FILE_H
#define PGBR_FILE_H

#include "pgbr_error.h"

/* fsync a directory, so entries created or renamed in it survive a crash */
extern bool pgbr_fsync_dir(const char *path, PgbrError *err);

/*
 * Starts the writeback of [offset, offset + len) of fd (len 0: to the end)
 * without waiting for it, so that a later fsync or syncfs finds the data on
 * its way to disk.  A hint: a failure shows at that fsync.
 */
extern void pgbr_start_writeback(int fd, uint64_t offset, uint64_t len);

/*
 * For a file written in order: once written - *started is at least every
 * bytes (every 0: any), starts the writeback of that range and moves
 * *started up to written.
 */
extern void pgbr_writeback_step(int fd, uint64_t written, uint64_t *started, uint64_t every);

#endif							/* PGBR_FILE_H */
