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

/* ---- checksum of a file in a backup ---- */

struct PgbrFileSum
{
	PgbrSha256 *piece;			/* the piece being read */
	PgbrSha256 *root;			/* tag + digests of the pieces closed */
	uint64_t	in_piece;		/* bytes of the current piece so far */
	uint64_t	closed;			/* pieces closed */
};

PgbrFileSum *
pgbr_filesum_create(PgbrError *err)
{
	PgbrFileSum *fs = pgbr_malloc(sizeof(PgbrFileSum));

	if (fs == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	memset(fs, 0, sizeof(PgbrFileSum));
	if ((fs->piece = pgbr_sha256_create(err)) == NULL ||
		(fs->root = pgbr_sha256_create(err)) == NULL)
	{
		pgbr_filesum_free(fs);
		return NULL;
	}
	return fs;
}

/* the digest of the next piece goes to the root (the tag before the first) */
static void
filesum_add_digest(PgbrFileSum *fs, const uint8_t d[PGBR_SHA256_LEN])
{
	if (fs->closed == 0)
		pgbr_sha256_update(fs->root, PGBR_FILESUM_TAG, strlen(PGBR_FILESUM_TAG));
	pgbr_sha256_update(fs->root, d, PGBR_SHA256_LEN);
	fs->closed++;
}

/* a full piece is followed by more data: its digest goes to the root */
static void
filesum_close_piece(PgbrFileSum *fs)
{
	uint8_t		d[PGBR_SHA256_LEN];

	pgbr_sha256_final(fs->piece, d);
	filesum_add_digest(fs, d);
	fs->in_piece = 0;
}

void
pgbr_filesum_update(PgbrFileSum *fs, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0)
	{
		size_t		n;

		/* closed only once more data comes: a file of one piece stays plain */
		if (fs->in_piece == PGBR_FILESUM_PIECE)
			filesum_close_piece(fs);
		n = (uint64_t) len < PGBR_FILESUM_PIECE - fs->in_piece ? len :
			(size_t) (PGBR_FILESUM_PIECE - fs->in_piece);
		pgbr_sha256_update(fs->piece, p, n);
		fs->in_piece += n;
		p += n;
		len -= n;
	}
}

void
pgbr_filesum_final(PgbrFileSum *fs, uint8_t out[PGBR_SHA256_LEN])
{
	if (fs->closed == 0)
		pgbr_sha256_final(fs->piece, out);
	else
	{
		filesum_close_piece(fs);	/* the last piece, not empty */
		pgbr_sha256_final(fs->root, out);
	}
	fs->in_piece = fs->closed = 0;
}

void
pgbr_filesum_free(PgbrFileSum *fs)
{
	if (fs == NULL)
		return;
	pgbr_sha256_free(fs->piece);
	pgbr_sha256_free(fs->root);
	pgbr_free(fs);
}

uint64_t
pgbr_filesum_pieces(uint64_t size)
{
	return size <= PGBR_FILESUM_PIECE ? 1 : (size + PGBR_FILESUM_PIECE - 1) / PGBR_FILESUM_PIECE;
}

void
pgbr_filesum_combine(PgbrFileSum *fs, const uint8_t (*pieces)[PGBR_SHA256_LEN], uint64_t size,
					 uint8_t out[PGBR_SHA256_LEN])
{
	uint64_t	n = pgbr_filesum_pieces(size);

	if (n == 1)
	{
		memcpy(out, pieces[0], PGBR_SHA256_LEN);
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		filesum_add_digest(fs, pieces[i]);
	pgbr_sha256_final(fs->root, out);
	fs->closed = 0;
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
