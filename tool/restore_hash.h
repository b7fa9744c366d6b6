/*
 * restore_hash.h
 *		The checksum of a big local file for restore --delta, its 64 MiB
 *		pieces (pgbr_filesum_*) read and hashed on several threads.
 */
#ifndef RESTORE_HASH_H
#define RESTORE_HASH_H

#include "pgbr_checksum.h"

/*
 * The checksum of the first size bytes of the file at path, on up to
 * threads threads (the caller's included).  *complete is false when the
 * file holds fewer than size bytes (it then differs from the manifest).
 * Returns false with err set when the file cannot be read.
 */
extern bool restore_hash_file(const char *path, uint64_t size, int threads,
							  uint8_t out[PGBR_SHA256_LEN], bool *complete, PgbrError *err);

#endif							/* RESTORE_HASH_H */
