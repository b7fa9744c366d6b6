/*
 * pgbr_checksum.h
 *		SHA-256 of streams (OpenSSL EVP).
 */
#ifndef PGBR_CHECKSUM_H
#define PGBR_CHECKSUM_H

#include "pgbr_error.h"

#define PGBR_SHA256_LEN		32
#define PGBR_SHA256_HEXLEN	64

typedef struct PgbrSha256 PgbrSha256;

extern PgbrSha256 *pgbr_sha256_create(PgbrError *err);
extern void pgbr_sha256_update(PgbrSha256 *ctx, const void *data, size_t len);
/* finishes and resets the context for reuse */
extern void pgbr_sha256_final(PgbrSha256 *ctx, uint8_t out[PGBR_SHA256_LEN]);
extern void pgbr_sha256_free(PgbrSha256 *ctx);

/* one-shot */
extern void pgbr_sha256(const void *data, size_t len, uint8_t out[PGBR_SHA256_LEN]);

/*
 * The checksum of a file in a backup.  Up to PGBR_FILESUM_PIECE bytes it is
 * the SHA-256 of the content.  A larger file is cut into pieces of
 * PGBR_FILESUM_PIECE bytes (the last may be shorter) and its checksum is the
 * SHA-256 of PGBR_FILESUM_TAG followed by the SHA-256 of each piece, in
 * order: the pieces of a 1 GB relation segment can then be hashed on
 * several cores (restore --delta does), where one SHA-256 over it keeps
 * one core busy for about a second.
 */
#define PGBR_FILESUM_PIECE	((uint64_t) 64 * 1024 * 1024)
#define PGBR_FILESUM_TAG	"pgbr-sha256-pieces-64MiB"

typedef struct PgbrFileSum PgbrFileSum;

extern PgbrFileSum *pgbr_filesum_create(PgbrError *err);
extern void pgbr_filesum_update(PgbrFileSum *fs, const void *data, size_t len);
/* finishes and resets for the next file */
extern void pgbr_filesum_final(PgbrFileSum *fs, uint8_t out[PGBR_SHA256_LEN]);
extern void pgbr_filesum_free(PgbrFileSum *fs);

/* pieces of a file of size bytes (at least one) */
extern uint64_t pgbr_filesum_pieces(uint64_t size);

/*
 * The checksum of a file of size bytes from the SHA-256 of each of its
 * pieces, computed with fs, which must be between files (just created, or
 * after a final) and is so again afterwards
 */
extern void pgbr_filesum_combine(PgbrFileSum *fs, const uint8_t (*pieces)[PGBR_SHA256_LEN],
								 uint64_t size, uint8_t out[PGBR_SHA256_LEN]);

/* hex is 65 bytes (NUL-terminated) */
extern void pgbr_hex_encode(const uint8_t *in, size_t len, char *hex);
extern bool pgbr_hex_decode(const char *hex, uint8_t *out, size_t len);

#endif							/* PGBR_CHECKSUM_H */
