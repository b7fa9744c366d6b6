/*
 * test_pipeline.c
 *		Chains of sinks: read -> sha256 -> zstd compress -> zstd decompress
 *		-> sha256 -> buffer; the peek and fd stages; error propagation.
 */
#include "pgbr_sink.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t rng = 0xC0FFEE1234567ULL;

static uint8_t
rnd(void)
{
	return unit_rnd(&rng);
}

static uint8_t *
make_data(size_t len)
{
	uint8_t    *d = malloc(len + 1);

	/* half random, half repetitive: both block kinds in the zstd stream */
	for (size_t i = 0; i < len; i++)
		d[i] = (i / 50000) % 2 ? rnd() : (uint8_t) ("pgbr pipeline "[i % 14]);
	return d;
}

static char *
tmp_file_with(const uint8_t *data, size_t len)
{
	char	   *path = pgbr_strdup("/tmp/pgbr_unit_pipe_XXXXXX");
	int			fd = mkstemp(path);

	if (fd < 0 || write(fd, data, len) != (ssize_t) len)
	{
		printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
	return path;
}

/* reads a file in PGBR_CHUNK_SIZE pieces into a sink, like the archiver */
static bool
push_file(const char *path, PgbrSink *sink, PgbrError *err)
{
	uint8_t    *chunk = malloc(PGBR_CHUNK_SIZE);
	int			fd = open(path, O_RDONLY);
	bool		r = fd >= 0;

	if (fd < 0)
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
	while (r)
	{
		ssize_t		n = read(fd, chunk, PGBR_CHUNK_SIZE);

		if (n < 0)
			r = pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not read \"%s\"", path);
		else if (n == 0)
			break;
		else
			r = pgbr_sink_write(sink, chunk, (size_t) n, err);
	}
	if (r)
		r = pgbr_sink_finish(sink, err);
	if (fd >= 0)
		close(fd);
	free(chunk);
	return r;
}

static void
test_chain(size_t len, int workers)
{
	uint8_t    *data = make_data(len);
	char	   *path = tmp_file_with(data, len);
	uint8_t		want[PGBR_SHA256_LEN],
				sum_in[PGBR_SHA256_LEN],
				sum_out[PGBR_SHA256_LEN];
	PgbrBuf		out;
	PgbrError	err;
	PgbrSink   *bufsink,
			   *sha_out,
			   *dec,
			   *enc,
			   *sha_in;

	pgbr_sha256(data, len, want);
	pgbr_buf_init(&out);
	pgbr_error_init(&err);
	bufsink = pgbr_sink_buf_create(&out);
	sha_out = pgbr_sink_sha256_create(bufsink, &err);
	dec = pgbr_sink_zstd_decompress_create(sha_out, &err);
	enc = pgbr_sink_zstd_compress_create(3, workers, dec, &err);
	sha_in = pgbr_sink_sha256_create(enc, &err);
	ok(bufsink && sha_out && dec && enc && sha_in, "chain of %zu bytes, workers %d: every stage created", len, workers);

	ok(push_file(path, sha_in, &err), "chain of %zu bytes: read, write and finish succeed", len);
	if (pgbr_error_is_set(&err))
		diag("%s", err.message);
	ok(out.len == len && (len == 0 || memcmp(out.data, data, len) == 0),
	   "chain of %zu bytes: output equals input", len);
	pgbr_sink_sha256_result(sha_in, sum_in);
	pgbr_sink_sha256_result(sha_out, sum_out);
	is_mem(sum_in, want, PGBR_SHA256_LEN, "chain of %zu bytes: checksum before compression", len);
	is_mem(sum_out, sum_in, PGBR_SHA256_LEN, "chain of %zu bytes: checksum after decompression matches", len);
	ok(sha_in->bytes_in == len && sha_out->bytes_in == len && bufsink->bytes_in == len,
	   "chain of %zu bytes: bytes_in at both ends is %zu", len, len);
	ok(enc->bytes_in == len && dec->bytes_in > 0 && (len < 65536 || dec->bytes_in < len),
	   "chain of %zu bytes: compressed %llu bytes between the zstd stages", len,
	   (unsigned long long) dec->bytes_in);
	pgbr_sink_free_chain(sha_in);
	pgbr_buf_release(&out);
	unlink(path);
	pgbr_free(path);
	free(data);
}

static void
test_peek(void)
{
	static const struct
	{
		size_t		want;
		size_t		chunk;
	}			cases[] = {{0, 7}, {1, 1}, {10, 3}, {10, 10}, {10, 11}, {40, 7}, {40, 40},
	{100000, 4093}, {100000, 131071}, {300000, 4096}};
	size_t		len = 200000;
	uint8_t    *data = make_data(len);

	for (size_t i = 0; i < PGBR_LENGTHOF(cases); i++)
	{
		PgbrBuf		out;
		PgbrError	err;
		PgbrSink   *peek;
		const uint8_t *seen;
		size_t		seen_len = 12345;
		size_t		expect = cases[i].want < len ? cases[i].want : len;
		bool		r = true;

		pgbr_buf_init(&out);
		pgbr_error_init(&err);
		peek = pgbr_sink_peek_create(cases[i].want, pgbr_sink_buf_create(&out));
		for (size_t off = 0; off < len && r; off += cases[i].chunk)
			r = pgbr_sink_write(peek, data + off,
								len - off < cases[i].chunk ? len - off : cases[i].chunk, &err);
		r = r && pgbr_sink_finish(peek, &err);
		seen = pgbr_sink_peek_data(peek, &seen_len);
		ok(r && seen_len == expect && (expect == 0 || memcmp(seen, data, expect) == 0),
		   "peek %zu in chunks of %zu: keeps exactly the first %zu bytes (got %zu)",
		   cases[i].want, cases[i].chunk, expect, seen_len);
		ok(out.len == len && memcmp(out.data, data, len) == 0,
		   "peek %zu in chunks of %zu: passes everything on", cases[i].want, cases[i].chunk);
		pgbr_sink_free_chain(peek);
		pgbr_buf_release(&out);
	}

	/* nothing written */
	{
		PgbrSink   *peek = pgbr_sink_peek_create(40, NULL);
		size_t		n = 99;
		PgbrError	err;

		pgbr_error_init(&err);
		(void) pgbr_sink_peek_data(peek, &n);
		ok(n == 0 && pgbr_sink_finish(peek, &err), "peek with nothing written: 0 bytes, finish ok");
		pgbr_sink_free(peek);
	}
	free(data);
}

static void
test_fd(void)
{
	int			p[2];
	PgbrSink   *fdsink;
	PgbrError	err;
	char		got[64];
	ssize_t		n;

	/* pipe */
	if (pipe(p) != 0)
	{
		printf("Bail out! pipe: %s\n", strerror(errno));
		exit(1);
	}
	pgbr_error_init(&err);
	fdsink = pgbr_sink_fd_create(p[1], "pipe");
	ok(pgbr_sink_write(fdsink, "hello, ", 7, &err) && pgbr_sink_write(fdsink, "pipe", 4, &err) &&
	   pgbr_sink_finish(fdsink, &err), "fd sink: writes to a pipe");
	pgbr_sink_free(fdsink);
	close(p[1]);
	n = read(p[0], got, sizeof(got) - 1);
	got[n > 0 ? n : 0] = '\0';
	is_str(got, "hello, pipe", "fd sink: the pipe carries the data");
	close(p[0]);

	/* temporary file, several MB through a checksum stage */
	{
		size_t		len = 3 * 1024 * 1024 + 17;
		uint8_t    *data = make_data(len);
		uint8_t    *back = malloc(len);
		FILE	   *f = tmpfile();
		int			fd = fileno(f);
		PgbrSink   *sha;
		size_t		total = 0;
		uint8_t		sum[PGBR_SHA256_LEN],
					want[PGBR_SHA256_LEN];
		bool		r = true;

		pgbr_error_init(&err);
		fdsink = pgbr_sink_fd_create(fd, "tmpfile");
		sha = pgbr_sink_sha256_create(fdsink, &err);
		for (size_t off = 0; off < len && r; off += 65521)
			r = pgbr_sink_write(sha, data + off, len - off < 65521 ? len - off : 65521, &err);
		ok(r && pgbr_sink_finish(sha, &err), "fd sink: %zu bytes to a temporary file", len);
		lseek(fd, 0, SEEK_SET);
		while (total < len && (n = read(fd, back + total, len - total)) > 0)
			total += (size_t) n;
		ok(total == len && memcmp(back, data, len) == 0, "fd sink: the file holds the data");
		ok(lseek(fd, 0, SEEK_END) == (off_t) len, "fd sink: file size %zu", len);
		pgbr_sink_sha256_result(sha, sum);
		pgbr_sha256(data, len, want);
		is_mem(sum, want, PGBR_SHA256_LEN, "fd sink behind sha256: checksum of the data");
		pgbr_sink_free_chain(sha);
		fclose(f);
		free(data);
		free(back);
	}
}

static void
test_errors(void)
{
	PgbrError	err;
	PgbrSink   *fdsink,
			   *sha,
			   *enc;
	int			fd;
	const char *name = "/var/lib/pgbr/archive/demo/000000010000000000000001.zst";
	uint8_t    *data = make_data(1024 * 1024);
	bool		r = true;

	/* a closed descriptor */
	fd = dup(1);
	close(fd);
	pgbr_error_init(&err);
	fdsink = pgbr_sink_fd_create(fd, name);
	sha = pgbr_sink_sha256_create(fdsink, &err);
	ok(!pgbr_sink_write(sha, "abc", 3, &err), "closed fd behind sha256: write fails");
	is_int(err.code, PGBR_ERR_FILE_WRITE, "closed fd: file write error");
	like(err.message, name, "closed fd: message names the file");
	like(err.message, strerror(EBADF), "closed fd: message has the cause");
	pgbr_sink_free_chain(sha);

	/* three stages deep, behind the compressor: at write or at finish */
	pgbr_error_init(&err);
	fdsink = pgbr_sink_fd_create(fd, name);
	enc = pgbr_sink_zstd_compress_create(1, 0, fdsink, &err);
	sha = pgbr_sink_sha256_create(enc, &err);
	for (size_t off = 0; off < 1024 * 1024 && r; off += 65536)
		r = pgbr_sink_write(sha, data + off, 65536, &err);
	if (r)
		r = pgbr_sink_finish(sha, &err);
	ok(!r, "closed fd behind sha256 -> zstd: the caller sees the failure");
	like(err.message, name, "closed fd behind zstd: message names the file");
	is_int(err.code, PGBR_ERR_FILE_WRITE, "closed fd behind zstd: file write error");
	pgbr_sink_free_chain(sha);

	/* a pipe without reader: EPIPE (SIGPIPE ignored, as the programs do) */
	{
		int			p[2];
		struct sigaction sa,
					old;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, &old);
		if (pipe(p) == 0)
		{
			close(p[0]);
			pgbr_error_init(&err);
			fdsink = pgbr_sink_fd_create(p[1], "reader-gone");
			ok(!pgbr_sink_write(fdsink, "x", 1, &err) && strstr(err.message, "reader-gone") != NULL,
			   "pipe without reader: write fails naming the sink");
			pgbr_sink_free(fdsink);
			close(p[1]);
		}
		sigaction(SIGPIPE, &old, NULL);
	}

	/* the decompressor reports corrupt input to the caller of pgbr_sink_write */
	{
		PgbrBuf		out;
		PgbrSink   *dec;

		pgbr_buf_init(&out);
		pgbr_error_init(&err);
		dec = pgbr_sink_zstd_decompress_create(pgbr_sink_buf_create(&out), &err);
		sha = pgbr_sink_sha256_create(dec, &err);
		ok(!pgbr_sink_write(sha, "this is not zstd", 16, &err) && err.code == PGBR_ERR_FORMAT,
		   "corrupt input two stages down: write fails with a format error");
		pgbr_sink_free_chain(sha);
		pgbr_buf_release(&out);
	}

	/* the first error wins */
	pgbr_error_init(&err);
	pgbr_error_set(&err, PGBR_ERR_CHECKSUM, "first");
	fdsink = pgbr_sink_fd_create(fd, name);
	ok(!pgbr_sink_write(fdsink, "x", 1, &err) && err.code == PGBR_ERR_CHECKSUM &&
	   strcmp(err.message, "first") == 0, "a later failure does not replace the first error");
	pgbr_sink_free(fdsink);

	free(data);
}

static void
test_null(void)
{
	PgbrError	err;
	PgbrSink   *buf;
	PgbrBuf		b;

	pgbr_error_init(&err);
	pgbr_sink_free(NULL);
	pgbr_sink_free_chain(NULL);
	ok(true, "pgbr_sink_free(NULL) and pgbr_sink_free_chain(NULL) are no-ops");
	ok(pgbr_sink_write(NULL, "abc", 3, &err) && !pgbr_error_is_set(&err),
	   "write to no sink discards");
	ok(pgbr_sink_finish(NULL, &err), "finish of no sink succeeds");

	pgbr_buf_init(&b);
	buf = pgbr_sink_buf_create(&b);
	ok(pgbr_sink_write(buf, "", 0, &err) && buf->bytes_in == 0 && b.len == 0,
	   "a zero-length write passes nothing and counts nothing");
	ok(pgbr_sink_write(buf, "abc", 3, &err) && pgbr_sink_write(buf, "de", 2, &err) &&
	   pgbr_sink_finish(buf, &err) && buf->bytes_in == 5 && b.len == 5 &&
	   memcmp(b.data, "abcde", 5) == 0, "buffer sink appends and counts");
	pgbr_sink_free(buf);
	pgbr_buf_release(&b);
}

int
main(void)
{
	test_chain(0, 0);
	test_chain(1, 0);
	test_chain(PGBR_CHUNK_SIZE, 0);
	test_chain(5 * 1024 * 1024 + 3, 0);
	test_chain(5 * 1024 * 1024 + 3, 2);
	test_peek();
	test_fd();
	test_errors();
	test_null();
	return done_testing();
}
