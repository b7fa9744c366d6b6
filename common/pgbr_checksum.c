/*
 * pgbr_checksum.c
 *		SHA-256 of streams.
 */
#include "pgbr_checksum.h"

#include <openssl/evp.h>

struct PgbrSha256
{
	EVP_MD_CTX *md;
};

PgbrSha256 *
pgbr_sha256_create(PgbrError *err)
{
	PgbrSha256 *ctx = pgbr_malloc(sizeof(PgbrSha256));

	if (ctx == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	ctx->md = EVP_MD_CTX_new();
	if (ctx->md == NULL || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1)
	{
		pgbr_error_ssl(err, PGBR_ERR_RUNTIME, "could not initialise SHA-256");
		pgbr_sha256_free(ctx);
		return NULL;
	}
	return ctx;
}

void
pgbr_sha256_update(PgbrSha256 *ctx, const void *data, size_t len)
{
	if (len > 0)
		EVP_DigestUpdate(ctx->md, data, len);
}

void
pgbr_sha256_final(PgbrSha256 *ctx, uint8_t out[PGBR_SHA256_LEN])
{
	unsigned int n = PGBR_SHA256_LEN;

	EVP_DigestFinal_ex(ctx->md, out, &n);
	EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL);
}

void
pgbr_sha256_free(PgbrSha256 *ctx)
{
	if (ctx == NULL)
		return;
	EVP_MD_CTX_free(ctx->md);
	pgbr_free(ctx);
}

void
pgbr_sha256(const void *data, size_t len, uint8_t out[PGBR_SHA256_LEN])
{
	unsigned int n = PGBR_SHA256_LEN;

	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void
pgbr_hex_encode(const uint8_t *in, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		hex[2 * i] = digits[in[i] >> 4];
		hex[2 * i + 1] = digits[in[i] & 15];
	}
	hex[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
pgbr_hex_decode(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != 2 * len)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		int			hi = hexval(hex[2 * i]);
		int			lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t) ((hi << 4) | lo);
	}
	return true;
}
