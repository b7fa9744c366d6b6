/*
 * fuzz_zstd.c
 *		libFuzzer target: the zstd decompression stage, which pgbr-server
 *		runs on the start of every pushed WAL file (compressed by the
 *		client, until the segment header is out) and the tool on every
 *		file it restores.  The first input byte chooses how
 *		the rest is cut into writes (as DATA frames cut a stream); the
 *		output goes through the SHA-256 stage into a sink that stops after
 *		PGBR_FUZZ_ZSTD_MAX (1 MB) bytes, so a small input that expands a lot (a
 *		"zstd bomb") costs bounded time, as the server's size check bounds
 *		it.  Small inputs are also compressed and decompressed again: the
 *		round trip must give them back.
 */
#include "fuzz_common.h"
#include "pgbr_sink.h"

#define PGBR_FUZZ_ZSTD_MAX	(1024 * 1024)

typedef struct CapSink
{
	PgbrSink	base;
	uint64_t	seen;
	PgbrBuf    *keep;			/* NULL: count only */
} CapSink;

static bool
cap_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	CapSink    *s = (CapSink *) self;

	s->seen += len;
	if (s->seen > PGBR_FUZZ_ZSTD_MAX)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "more output than the fuzzer allows");
	if (s->keep)
		pgbr_buf_put(s->keep, data, len);
	return true;
}

static CapSink *
cap_create(PgbrBuf *keep)
{
	CapSink    *s = calloc(1, sizeof(CapSink));

	s->base.write = cap_write;
	s->keep = keep;
	return s;
}

/* pushes data through sink in pieces of `step` bytes; then finishes */
static bool
push(PgbrSink *sink, const uint8_t *data, size_t len, size_t step, PgbrError *err)
{
	while (len > 0)
	{
		size_t		n = len < step ? len : step;

		if (!pgbr_sink_write(sink, data, n, err))
			return false;
		data += n;
		len -= n;
	}
	return pgbr_sink_finish(sink, err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 4096, 131072};
	PgbrError	err;
	CapSink    *cap;
	PgbrSink   *sha,
			   *dec;
	size_t		step;
	bool		ok;

	if (size < 1)
		return 0;
	step = steps[data[0] % PGBR_LENGTHOF(steps)];
	data++;
	size--;

	pgbr_error_init(&err);
	cap = cap_create(NULL);
	sha = pgbr_sink_sha256_create(&cap->base, &err);
	dec = pgbr_sink_zstd_decompress_create(sha, &err);
	FUZZ_CHECK(sha && dec, "could not create the stages: %s", err.message);
	ok = push(dec, data, size, step, &err);
	FUZZ_CHECK(ok != pgbr_error_is_set(&err), "decompress result %d, code %d", ok, err.code);
	FUZZ_CHECK(ok || err.code == PGBR_ERR_FORMAT, "decompress failed with code %d: %s",
			   err.code, err.message);
	pgbr_sink_free(dec);
	pgbr_sink_free(sha);
	free(cap);

	if (size <= 8192)
	{
		PgbrBuf		packed,
					back;
		PgbrSink   *enc,
				   *bufsink;
		CapSink    *keep;

		pgbr_buf_init(&packed);
		pgbr_buf_init(&back);
		pgbr_error_init(&err);
		bufsink = pgbr_sink_buf_create(&packed);
		enc = pgbr_sink_zstd_compress_create(1, 0, bufsink, &err);
		FUZZ_CHECK(enc && push(enc, data, size, step, &err), "compress: %s", err.message);
		pgbr_sink_free(enc);
		pgbr_sink_free(bufsink);

		keep = cap_create(&back);
		dec = pgbr_sink_zstd_decompress_create(&keep->base, &err);
		FUZZ_CHECK(dec && push(dec, packed.data, packed.len, step, &err),
				   "decompressing what we compressed failed: %s", err.message);
		FUZZ_CHECK(back.len == size && (size == 0 || memcmp(back.data, data, size) == 0),
				   "zstd round trip changed %zu bytes into %zu", size, back.len);
		pgbr_sink_free(dec);
		free(keep);
		pgbr_buf_release(&packed);
		pgbr_buf_release(&back);
	}
	return 0;
}
