/*
 * test_checksum.c
 *		SHA-256 (one-shot, streaming, as a pipeline stage) and hex.
 */
#include "pgbr_checksum.h"
#include "pgbr_sink.h"
#include "unit.h"

#include <inttypes.h>
#include <stdlib.h>

static const char *const sha_empty =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *const sha_abc =
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *const sha_448 =	/* FIPS 180-2 two-block message */
	"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char *const sha_million_a =
	"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

static void
hex_of(const uint8_t sum[PGBR_SHA256_LEN], char hex[PGBR_SHA256_HEXLEN + 1])
{
	pgbr_hex_encode(sum, PGBR_SHA256_LEN, hex);
}

static uint64_t rng = 0x9E3779B97F4A7C15;

static uint8_t
rnd(void)
{
	return unit_rnd(&rng);
}

static void
test_vectors(void)
{
	uint8_t		sum[PGBR_SHA256_LEN];
	char		hex[PGBR_SHA256_HEXLEN + 1];
	char	   *million = malloc(1000000);

	pgbr_sha256("", 0, sum);
	hex_of(sum, hex);
	is_str(hex, sha_empty, "one-shot SHA-256 of \"\"");

	pgbr_sha256(NULL, 0, sum);
	hex_of(sum, hex);
	is_str(hex, sha_empty, "one-shot SHA-256 of (NULL, 0)");

	pgbr_sha256("abc", 3, sum);
	hex_of(sum, hex);
	is_str(hex, sha_abc, "one-shot SHA-256 of \"abc\"");

	pgbr_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, sum);
	hex_of(sum, hex);
	is_str(hex, sha_448, "one-shot SHA-256 of the 448-bit vector");

	memset(million, 'a', 1000000);
	pgbr_sha256(million, 1000000, sum);
	hex_of(sum, hex);
	is_str(hex, sha_million_a, "one-shot SHA-256 of a million 'a'");
	free(million);
}

static void
test_streaming(void)
{
	PgbrError	err;
	PgbrSha256 *ctx;
	uint8_t		sum[PGBR_SHA256_LEN],
				want[PGBR_SHA256_LEN];
	char		hex[PGBR_SHA256_HEXLEN + 1];
	size_t		len = 300007;
	uint8_t    *data = malloc(len);
	static const size_t pieces[] = {1, 2, 3, 55, 56, 63, 64, 65, 4093, 131071};

	for (size_t i = 0; i < len; i++)
		data[i] = rnd();
	pgbr_sha256(data, len, want);

	pgbr_error_init(&err);
	ctx = pgbr_sha256_create(&err);
	ok(ctx != NULL && !pgbr_error_is_set(&err), "sha256_create");

	pgbr_sha256_final(ctx, sum);
	hex_of(sum, hex);
	is_str(hex, sha_empty, "streaming: no update gives the empty vector");

	pgbr_sha256_update(ctx, "a", 1);
	pgbr_sha256_update(ctx, NULL, 0);
	pgbr_sha256_update(ctx, "bc", 2);
	pgbr_sha256_final(ctx, sum);
	hex_of(sum, hex);
	is_str(hex, sha_abc, "streaming: \"a\" + \"\" + \"bc\" = SHA-256(\"abc\")");

	/* final resets: the next message starts fresh */
	pgbr_sha256_update(ctx, "abc", 3);
	pgbr_sha256_final(ctx, sum);
	hex_of(sum, hex);
	is_str(hex, sha_abc, "final resets the context for reuse");

	for (size_t p = 0; p < PGBR_LENGTHOF(pieces); p++)
	{
		for (size_t off = 0; off < len; off += pieces[p])
			pgbr_sha256_update(ctx, data + off, off + pieces[p] <= len ? pieces[p] : len - off);
		pgbr_sha256_final(ctx, sum);
		is_mem(sum, want, PGBR_SHA256_LEN, "streaming in pieces of %zu equals one-shot", pieces[p]);
	}

	/* irregular pieces */
	{
		size_t		off = 0;

		while (off < len)
		{
			size_t		n = (size_t) rnd() * 37 % 9000;

			if (n > len - off)
				n = len - off;
			pgbr_sha256_update(ctx, data + off, n);
			off += n;
		}
		pgbr_sha256_final(ctx, sum);
		is_mem(sum, want, PGBR_SHA256_LEN, "streaming in irregular pieces equals one-shot");
	}
	pgbr_sha256_free(ctx);
	pgbr_sha256_free(NULL);
	ok(true, "pgbr_sha256_free(NULL) is a no-op");
	free(data);
}

static void
test_sink(void)
{
	PgbrError	err;
	PgbrBuf		out;
	PgbrSink   *buf,
			   *sha;
	uint8_t		sum[PGBR_SHA256_LEN],
				want[PGBR_SHA256_LEN];
	char		hex[PGBR_SHA256_HEXLEN + 1];
	size_t		len = 200003;
	uint8_t    *data = malloc(len);
	bool		writes_ok = true;

	for (size_t i = 0; i < len; i++)
		data[i] = rnd();
	pgbr_sha256(data, len, want);

	pgbr_buf_init(&out);
	buf = pgbr_sink_buf_create(&out);
	pgbr_error_init(&err);
	sha = pgbr_sink_sha256_create(buf, &err);
	ok(sha != NULL, "sha256 sink created");
	for (size_t off = 0, n = 1; off < len; off += n, n = n * 3 + 1)
	{
		if (n > len - off)
			n = len - off;
		if (!pgbr_sink_write(sha, data + off, n, &err))
			writes_ok = false;
	}
	ok(writes_ok, "sha256 sink: writes succeed");
	ok(pgbr_sink_finish(sha, &err), "sha256 sink: finish succeeds");
	is_int((long long) sha->bytes_in, (long long) len, "sha256 sink: bytes_in counts every byte");
	is_int((long long) buf->bytes_in, (long long) len, "next stage received every byte");
	is_int((long long) out.len, (long long) len, "passed-through length");
	is_mem(out.data, data, len, "sha256 sink passes the data through unchanged");
	pgbr_sink_sha256_result(sha, sum);
	is_mem(sum, want, PGBR_SHA256_LEN, "sha256 sink result equals one-shot");
	pgbr_sink_free_chain(sha);
	pgbr_buf_release(&out);

	/* no next stage: output discarded, checksum still computed */
	pgbr_error_init(&err);
	sha = pgbr_sink_sha256_create(NULL, &err);
	ok(pgbr_sink_write(sha, "ab", 2, &err) && pgbr_sink_write(sha, "c", 1, &err) &&
	   pgbr_sink_finish(sha, &err), "sha256 sink without next: write and finish");
	pgbr_sink_sha256_result(sha, sum);
	hex_of(sum, hex);
	is_str(hex, sha_abc, "sha256 sink without next: SHA-256(\"abc\")");
	is_int((long long) sha->bytes_in, 3, "sha256 sink without next: bytes_in 3");
	pgbr_sink_free(sha);

	/* empty stream */
	sha = pgbr_sink_sha256_create(NULL, &err);
	ok(pgbr_sink_write(sha, "", 0, &err) && pgbr_sink_finish(sha, &err), "empty stream");
	pgbr_sink_sha256_result(sha, sum);
	hex_of(sum, hex);
	is_str(hex, sha_empty, "sha256 sink of nothing: the empty vector");
	is_int((long long) sha->bytes_in, 0, "sha256 sink of nothing: bytes_in 0");
	pgbr_sink_free(sha);
	free(data);
}

static void
test_hex(void)
{
	static const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff, 0x10};
	char		hex[2 * sizeof(bytes) + 1];
	uint8_t		back[sizeof(bytes)];
	uint8_t		all[256],
				all_back[256];
	char		all_hex[513];
	uint8_t		untouched[4];

	pgbr_hex_encode(bytes, sizeof(bytes), hex);
	is_str(hex, "00017f80abcdefff10", "hex_encode: lowercase, two digits per byte");
	ok(pgbr_hex_decode(hex, back, sizeof(bytes)) && memcmp(back, bytes, sizeof(bytes)) == 0,
	   "hex_decode inverts hex_encode");
	ok(pgbr_hex_decode("00017F80ABCDEFFF10", back, sizeof(bytes)) &&
	   memcmp(back, bytes, sizeof(bytes)) == 0, "hex_decode accepts uppercase");

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t) i;
	pgbr_hex_encode(all, 256, all_hex);
	ok(strlen(all_hex) == 512 && pgbr_hex_decode(all_hex, all_back, 256) &&
	   memcmp(all, all_back, 256) == 0, "hex round trip of every byte value");

	pgbr_hex_encode(bytes, 0, hex);
	is_str(hex, "", "hex_encode of 0 bytes is \"\"");
	ok(pgbr_hex_decode("", back, 0), "hex_decode of \"\" into 0 bytes");

	ok(!pgbr_hex_decode("0g", back, 1), "bad hex digit g refused");
	ok(!pgbr_hex_decode("g0", back, 1), "bad hex digit in the high nibble refused");
	ok(!pgbr_hex_decode("0G", back, 1), "bad uppercase hex digit G refused");
	ok(!pgbr_hex_decode("@0", back, 1) && !pgbr_hex_decode("0`", back, 1) &&
	   !pgbr_hex_decode("/0", back, 1) && !pgbr_hex_decode("0:", back, 1),
	   "characters next to the digit ranges refused");
	ok(!pgbr_hex_decode("0 ", back, 1), "space refused");
	ok(!pgbr_hex_decode("-1", back, 1), "sign refused");
	ok(!pgbr_hex_decode("0x", back, 1), "x refused");
	ok(!pgbr_hex_decode("abcd", back, 1), "too long refused");
	ok(!pgbr_hex_decode("abc", back, 2), "odd length refused");
	ok(!pgbr_hex_decode("ab", back, 2), "too short refused");
	ok(!pgbr_hex_decode("", back, 1), "empty for 1 byte refused");
	memset(untouched, 0, sizeof(untouched));
	ok(!pgbr_hex_decode("abcd", untouched, 4), "too short for 4 bytes refused");

	/* a SHA-256 hex: 64 characters to 32 bytes */
	{
		uint8_t		sum[PGBR_SHA256_LEN];
		char		h[PGBR_SHA256_HEXLEN + 1];

		ok(pgbr_hex_decode(sha_abc, sum, PGBR_SHA256_LEN), "decode a SHA-256 hex");
		pgbr_hex_encode(sum, PGBR_SHA256_LEN, h);
		is_str(h, sha_abc, "SHA-256 hex round trip");
		ok(!pgbr_hex_decode(sha_abc, sum, PGBR_SHA256_LEN - 1), "SHA-256 hex into 31 bytes refused");
	}
}

/* the checksum of a file in a backup, computed here from its definition */
static void
filesum_expected(const uint8_t *data, uint64_t size, uint8_t out[PGBR_SHA256_LEN])
{
	uint64_t	n;
	uint8_t    *cat;
	size_t		taglen = strlen(PGBR_FILESUM_TAG);

	if (size <= PGBR_FILESUM_PIECE)
	{
		pgbr_sha256(data, (size_t) size, out);
		return;
	}
	n = (size + PGBR_FILESUM_PIECE - 1) / PGBR_FILESUM_PIECE;
	cat = malloc(taglen + (size_t) n * PGBR_SHA256_LEN);
	memcpy(cat, PGBR_FILESUM_TAG, taglen);
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t	off = i * PGBR_FILESUM_PIECE;
		uint64_t	len = size - off < PGBR_FILESUM_PIECE ? size - off : PGBR_FILESUM_PIECE;

		pgbr_sha256(data + off, (size_t) len, cat + taglen + i * PGBR_SHA256_LEN);
	}
	pgbr_sha256(cat, taglen + (size_t) n * PGBR_SHA256_LEN, out);
	free(cat);
}

static void
test_filesum(void)
{
	const uint64_t sizes[] = {0, 1, PGBR_FILESUM_PIECE - 1, PGBR_FILESUM_PIECE,
		PGBR_FILESUM_PIECE + 1, 2 * PGBR_FILESUM_PIECE + 12345};
	uint64_t	max = sizes[PGBR_LENGTHOF(sizes) - 1];
	uint8_t    *data = malloc((size_t) max);
	PgbrError	err;
	PgbrFileSum *fs;
	uint8_t		want[PGBR_SHA256_LEN],
				got[PGBR_SHA256_LEN],
				plain[PGBR_SHA256_LEN];

	for (uint64_t i = 0; i < max; i++)
		data[i] = rnd();
	pgbr_error_init(&err);
	fs = pgbr_filesum_create(&err);
	ok(fs != NULL, "filesum context created");
	for (size_t k = 0; k < PGBR_LENGTHOF(sizes); k++)
	{
		uint64_t	size = sizes[k];
		uint64_t	off = 0;
		uint64_t	n = pgbr_filesum_pieces(size);
		uint8_t		(*pieces)[PGBR_SHA256_LEN] = malloc((size_t) n * PGBR_SHA256_LEN);
		PgbrSink   *sink;

		filesum_expected(data, size, want);
		/* odd chunks, so that piece boundaries fall inside them */
		while (off < size)
		{
			uint64_t	len = size - off < 1000003 ? size - off : 1000003;

			pgbr_filesum_update(fs, data + off, (size_t) len);
			off += len;
		}
		pgbr_filesum_final(fs, got);
		is_mem(got, want, PGBR_SHA256_LEN, "filesum of %" PRIu64 " bytes, streamed", size);

		/* the pieces' digests combined give the same */
		for (uint64_t i = 0; i < n; i++)
		{
			uint64_t	poff = i * PGBR_FILESUM_PIECE;
			uint64_t	plen = size - poff < PGBR_FILESUM_PIECE ? size - poff : PGBR_FILESUM_PIECE;

			pgbr_sha256(data + poff, (size_t) plen, pieces[i]);
		}
		pgbr_filesum_combine(fs, (const uint8_t (*)[PGBR_SHA256_LEN]) pieces, size, got);
		is_mem(got, want, PGBR_SHA256_LEN, "filesum of %" PRIu64 " bytes, from %" PRIu64 " piece(s)",
			   size, n);
		free(pieces);

		/* and the pipeline stage */
		sink = pgbr_sink_filesum_create(NULL, &err);
		ok(sink && pgbr_sink_write(sink, data, (size_t) size, &err) && pgbr_sink_finish(sink, &err),
		   "filesum stage takes %" PRIu64 " bytes", size);
		pgbr_sink_sha256_result(sink, got);
		is_mem(got, want, PGBR_SHA256_LEN, "filesum stage of %" PRIu64 " bytes", size);
		pgbr_sink_free(sink);

		/* up to one piece it is the plain SHA-256, beyond it is not */
		pgbr_sha256(data, (size_t) size, plain);
		if (size <= PGBR_FILESUM_PIECE)
			is_mem(want, plain, PGBR_SHA256_LEN, "%" PRIu64 " bytes: plain SHA-256", size);
		else
			ok(memcmp(want, plain, PGBR_SHA256_LEN) != 0, "%" PRIu64 " bytes: not the plain SHA-256",
			   size);
	}
	is_int(pgbr_filesum_pieces(0), 1, "an empty file is one piece");
	is_int(pgbr_filesum_pieces(PGBR_FILESUM_PIECE), 1, "a file of one piece's size is one piece");
	is_int(pgbr_filesum_pieces(PGBR_FILESUM_PIECE + 1), 2, "one byte more is two pieces");
	pgbr_filesum_free(fs);
	free(data);
}

int
main(void)
{
	test_vectors();
	test_streaming();
	test_sink();
	test_hex();
	test_filesum();
	return done_testing();
}
