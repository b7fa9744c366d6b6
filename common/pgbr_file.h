/*
 * pgbr_file.h
 *		Small durable-file helpers shared by the server and the tool.
 */
#ifndef PGBR_FILE_H
#define PGBR_FILE_H

#include "pgbr_error.h"

/* fsync a directory, so entries created or renamed in it survive a crash */
extern bool pgbr_fsync_dir(const char *path, PgbrError *err);

#endif							/* PGBR_FILE_H */
