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

/* hex is 65 bytes (NUL-terminated) */
extern void pgbr_hex_encode(const uint8_t *in, size_t len, char *hex);
extern bool pgbr_hex_decode(const char *hex, uint8_t *out, size_t len);

#endif							/* PGBR_CHECKSUM_H */
