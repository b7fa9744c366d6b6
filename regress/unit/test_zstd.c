/*
 * test_zstd.c
 *		The zstd compression and decompression stages: round trips in odd
 *		chunk sizes (one thread and two workers), truncated, corrupted and
 *		empty input.
 */
#include "pgbr_sink.h"
#include "unit.h"

#include <dirent.h>
#include <stdlib.h>
#include <zstd.h>

static uint64_t rng;

static uint8_t
rnd(void)
{
	return unit_rnd(&rng);
}

/* random (incompressible) or text-like (compressible, yet not trivial) */
static uint8_t *
make_data(size_t len, bool compressible, uint64_t seed)
{
	static const char words[] = "archive push of segment 000000010000000A000000FF done; ";
	uint8_t    *d = malloc(len + 1);

	rng = seed;
	for (size_t i = 0; i < len; i++)
	{
		if (compressible)
			d[i] = (uint8_t) words[(i + i / 4096) % (sizeof(words) - 1)] ^ (rnd() < 4 ? 0x20 : 0);
		else
			d[i] = rnd();
	}
	return d;
}

/* pushes data through a sink in pieces of `chunk` bytes, then finishes */
static bool
feed(PgbrSink *sink, const uint8_t *data, size_t len, size_t chunk, PgbrError *err,
	 bool *write_failed)
{
	*write_failed = false;
	for (size_t off = 0; off < len; off += chunk)
	{
		size_t		n = len - off < chunk ? len - off : chunk;

		if (!pgbr_sink_write(sink, data + off, n, err))
		{
			*write_failed = true;
			return false;
		}
	}
	return pgbr_sink_finish(sink, err);
}

static bool
compress_buf(const uint8_t *data, size_t len, size_t chunk, int workers, PgbrBuf *out,
			 uint64_t *bytes_in, PgbrError *err)
{
	PgbrSink   *z = pgbr_sink_zstd_compress_create(3, workers, pgbr_sink_buf_create(out), err);
	bool		wf;
	bool		r;

	if (z == NULL)
		return false;
	r = feed(z, data, len, chunk, err, &wf);
	if (bytes_in)
		*bytes_in = z->bytes_in;
	pgbr_sink_free_chain(z);
	return r;
}

/* decompresses; *write_failed tells whether write or finish failed */
static bool
decompress_buf(const uint8_t *data, size_t len, size_t chunk, PgbrBuf *out, PgbrError *err,
			   bool *write_failed)
{
	PgbrSink   *z = pgbr_sink_zstd_decompress_create(pgbr_sink_buf_create(out), err);
	bool		r;

	*write_failed = false;
	if (z == NULL)
		return false;
	r = feed(z, data, len, chunk, err, write_failed);
	pgbr_sink_free_chain(z);
	return r;
}

static void
test_roundtrips(void)
{
	static const size_t sizes[] = {0, 1, 4095, 65537, 1024 * 1024 + 3};
	static const size_t chunks[] = {1, 7, 4093, 131071};
	static const int workers[] = {0, 2};

	for (size_t si = 0; si < PGBR_LENGTHOF(sizes); si++)
		for (int comp = 0; comp < 2; comp++)
		{
			size_t		len = sizes[si];
			uint8_t    *data = make_data(len, comp, 0x1234 + si);

			for (size_t wi = 0; wi < PGBR_LENGTHOF(workers); wi++)
				for (size_t ci = 0; ci < PGBR_LENGTHOF(chunks); ci++)
				{
					PgbrBuf		c,
								d;
					PgbrError	err;
					uint64_t	bytes_in = 0;
					bool		wf,
								cok,
								dok;
					size_t		chunk = chunks[ci];
					char		what[128];

					snprintf(what, sizeof(what), "%s %zu bytes, chunks of %zu, workers %d",
							 comp ? "compressible" : "random", len, chunk, workers[wi]);
					pgbr_buf_init(&c);
					pgbr_buf_init(&d);
					pgbr_error_init(&err);
					cok = compress_buf(data, len, chunk, workers[wi], &c, &bytes_in, &err);
					dok = cok && decompress_buf(c.data, c.len, chunk, &d, &err, &wf);
					ok(cok && dok && bytes_in == len && d.len == len &&
					   (len == 0 || memcmp(d.data, data, len) == 0),
					   "round trip: %s", what);
					if (pgbr_error_is_set(&err))
						diag("%s", err.message);
					if (!cok || !dok || d.len != len)
						diag("compressed %zu bytes, decompressed %zu", c.len, d.len);

					/* once per input: the stream is a checksummed zstd frame */
					if (ci == 0 && wi == 0)
					{
						/* RFC 8878: magic, then Frame_Header_Descriptor bit 2 */
						static const uint8_t magic[4] = {0x28, 0xB5, 0x2F, 0xFD};

						ok(c.len >= 5 && memcmp(c.data, magic, 4) == 0 && (c.data[4] & 0x04) != 0,
						   "compressed %s %zu bytes: zstd frame with Content_Checksum_flag",
						   comp ? "compressible" : "random", len);
						if (comp && len >= 65537)
							ok(c.len < len / 4, "compressible %zu bytes shrink (to %zu)", len, c.len);
						if (!comp && len >= 65537)
							ok(c.len < len + len / 100, "random %zu bytes barely grow (to %zu)",
							   len, c.len);
						/* libzstd itself agrees */
						{
							uint8_t    *plain = malloc(len + 1);
							ZSTD_DCtx  *dctx = ZSTD_createDCtx();
							ZSTD_inBuffer in = {c.data, c.len, 0};
							ZSTD_outBuffer o = {plain, len + 1, 0};
							size_t		r = ZSTD_decompressStream(dctx, &o, &in);

							ok(r == 0 && in.pos == c.len && o.pos == len &&
							   memcmp(plain, data, len) == 0,
							   "libzstd decodes the compressed %s %zu bytes",
							   comp ? "compressible" : "random", len);
							ZSTD_freeDCtx(dctx);
							free(plain);
						}
					}
					pgbr_buf_release(&c);
					pgbr_buf_release(&d);
				}
			free(data);
		}
}

/* several compressed inputs for the damage tests */
typedef struct Sample
{
	const char *what;
	uint8_t    *plain;
	size_t		plain_len;
	PgbrBuf		z;
} Sample;

static void
make_sample(Sample *s, const char *what, size_t len, bool comp, int workers)
{
	PgbrError	err;

	s->what = what;
	s->plain = make_data(len, comp, 0xABCDEF + len);
	s->plain_len = len;
	pgbr_buf_init(&s->z);
	pgbr_error_init(&err);
	if (!compress_buf(s->plain, len, 65536, workers, &s->z, NULL, &err))
	{
		printf("Bail out! could not compress sample %s: %s\n", what, err.message);
		exit(1);
	}
}

static void
free_sample(Sample *s)
{
	free(s->plain);
	pgbr_buf_release(&s->z);
}

static void
test_truncated(Sample *s)
{
	size_t		n = s->z.len;
	size_t		cuts[] = {1, 3, 4, 5, 6, 12, n / 3, n / 2, n - 5, n - 4, n - 3, n - 1};

	for (size_t i = 0; i < PGBR_LENGTHOF(cuts); i++)
	{
		PgbrBuf		out;
		PgbrError	err;
		bool		wf,
					r;

		if (cuts[i] == 0 || cuts[i] >= n)
			continue;
		pgbr_buf_init(&out);
		pgbr_error_init(&err);
		r = decompress_buf(s->z.data, cuts[i], 4093, &out, &err, &wf);
		ok(!r && !wf && err.code == PGBR_ERR_FORMAT,
		   "%s cut to %zu of %zu bytes: writes accepted, finish fails", s->what, cuts[i], n);
		like(err.message, "truncated", "%s cut to %zu: message says truncated", s->what, cuts[i]);
		pgbr_buf_release(&out);
	}
}

/* decompresses z with byte pos xor x; true if an error was raised */
static bool
corrupt_detected(Sample *s, size_t pos, uint8_t x, bool *same_output, PgbrError *err)
{
	PgbrBuf		out;
	bool		wf,
				r;

	s->z.data[pos] ^= x;
	pgbr_buf_init(&out);
	pgbr_error_init(err);
	r = decompress_buf(s->z.data, s->z.len, 4093, &out, err, &wf);
	s->z.data[pos] ^= x;
	*same_output = out.len == s->plain_len &&
		(s->plain_len == 0 || memcmp(out.data, s->plain, s->plain_len) == 0);
	pgbr_buf_release(&out);
	return !r && pgbr_error_is_set(err);
}

static void
test_corrupted(Sample *s, bool raw_blocks)
{
	size_t		n = s->z.len;
	size_t		positions[] = {n / 5, n / 4, n / 3, n / 2, 2 * n / 3, 3 * n / 4, n - 8,
	n - 5, n - 4, n - 3, n - 2, n - 1};

	for (size_t i = 0; i < PGBR_LENGTHOF(positions); i++)
	{
		PgbrError	err;
		bool		same;

		ok(corrupt_detected(s, positions[i], 0xFF, &same, &err),
		   "%s: byte %zu of %zu inverted: error", s->what, positions[i], n);
		if (!pgbr_error_is_set(&err))
			diag("no error, output %s", same ? "identical" : "DIFFERENT");
		else if (err.code != PGBR_ERR_FORMAT)
			diag("code %d: %s", err.code, err.message);

		/* in stored blocks every bit is content: one flipped bit is caught */
		if (raw_blocks)
			ok(corrupt_detected(s, positions[i], 0x01, &same, &err),
			   "%s: bit 0 of byte %zu flipped: error", s->what, positions[i]);
	}
}

/*
 * Every position, every single-byte inversion and single-bit flip: either
 * an error, or (bits zstd never reads) exactly the original output; never
 * different data reported as good.
 */
static void
test_corrupted_everywhere(Sample *s)
{
	size_t		n = s->z.len;
	size_t		silent_bad = 0,
				undetected_inversions = 0,
				harmless = 0;

	for (size_t pos = 0; pos < n; pos++)
	{
		for (int bit = -1; bit < 8; bit++)
		{
			PgbrError	err;
			bool		same;
			uint8_t		x = bit < 0 ? 0xFF : (uint8_t) (1 << bit);

			if (!corrupt_detected(s, pos, x, &same, &err))
			{
				if (!same)
				{
					if (silent_bad++ < 5)
						diag("byte %zu xor 0x%02X: no error and different output", pos, x);
				}
				else if (bit < 0)
				{
					if (undetected_inversions++ < 5)
						diag("byte %zu inverted: no error (output identical)", pos);
				}
				else
					harmless++;
			}
		}
	}
	ok(silent_bad == 0, "%s: no corruption of any of the %zu bytes yields different data silently",
	   s->what, n);
	ok(undetected_inversions == 0, "%s: inverting any one of the %zu bytes is an error",
	   s->what, n);
	if (harmless)
		diag("%zu single-bit flips hit bits zstd ignores (output unchanged)", harmless);
}

static void
test_damage(void)
{
	Sample		rnd_small,
				rnd_big,
				txt_small,
				txt_big,
				txt_mt;

	make_sample(&rnd_small, "random 4095", 4095, false, 0);
	make_sample(&rnd_big, "random 1MB+3", 1024 * 1024 + 3, false, 0);
	make_sample(&txt_small, "compressible 4095", 4095, true, 0);
	make_sample(&txt_big, "compressible 1MB+3", 1024 * 1024 + 3, true, 0);
	make_sample(&txt_mt, "compressible 1MB+3 workers=2", 1024 * 1024 + 3, true, 2);

	test_truncated(&rnd_small);
	test_truncated(&rnd_big);
	test_truncated(&txt_small);
	test_truncated(&txt_big);
	test_truncated(&txt_mt);

	test_corrupted(&rnd_small, true);
	test_corrupted(&rnd_big, true);
	test_corrupted(&txt_small, false);
	test_corrupted(&txt_big, false);
	test_corrupted(&txt_mt, false);

	test_corrupted_everywhere(&txt_small);

	/* frame header: the checksum flag cleared, the magic broken */
	{
		PgbrError	err;
		bool		same;

		ok(corrupt_detected(&txt_small, 4, 0x04, &same, &err),
		   "frame header with the checksum flag cleared: error");
		for (size_t pos = 0; pos < 4; pos++)
			ok(corrupt_detected(&txt_small, pos, 0x01, &same, &err),
			   "frame magic byte %zu changed: error", pos);
	}

	/* trailing garbage after a complete frame */
	{
		PgbrBuf		z,
					out;
		PgbrError	err;
		bool		wf;

		pgbr_buf_init(&z);
		pgbr_buf_put(&z, txt_small.z.data, txt_small.z.len);
		pgbr_buf_put(&z, "garbage!", 8);
		pgbr_buf_init(&out);
		pgbr_error_init(&err);
		ok(!decompress_buf(z.data, z.len, 4093, &out, &err, &wf) && pgbr_error_is_set(&err),
		   "garbage after the frame: error");
		pgbr_buf_release(&out);

		/* one byte of garbage */
		z.len = txt_small.z.len + 1;
		z.data[z.len - 1] = 0x28;	/* first byte of the zstd magic */
		pgbr_buf_init(&out);
		pgbr_error_init(&err);
		ok(!decompress_buf(z.data, z.len, 4093, &out, &err, &wf) && pgbr_error_is_set(&err),
		   "one byte of a second frame after the first: error");
		pgbr_buf_release(&out);
		pgbr_buf_release(&z);
	}

	/* not zstd at all */
	{
		PgbrBuf		out;
		PgbrError	err;
		bool		wf;

		pgbr_buf_init(&out);
		pgbr_error_init(&err);
		ok(!decompress_buf(rnd_small.plain, 4095, 4093, &out, &err, &wf) && wf &&
		   err.code == PGBR_ERR_FORMAT, "random bytes: write fails");
		like(err.message, "corrupt", "random bytes: message says corrupt");
		pgbr_buf_release(&out);
	}

	free_sample(&rnd_small);
	free_sample(&rnd_big);
	free_sample(&txt_small);
	free_sample(&txt_big);
	free_sample(&txt_mt);
}

static int
count_threads(void)
{
	DIR		   *d = opendir("/proc/self/task");
	struct dirent *e;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* workers > 0 really compresses on threads (libzstd here is built with them) */
static void
test_workers(void)
{
	size_t		len = 4 * 1024 * 1024;
	uint8_t    *data = make_data(len, true, 77);
	PgbrBuf		c;
	PgbrError	err;
	PgbrSink   *z;
	int			before = count_threads(),
				during;
	ZSTD_bounds b = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);

	if (ZSTD_isError(b.error) || b.upperBound < 2)
	{
		skip("libzstd %s has no worker threads", ZSTD_versionString());
		free(data);
		return;
	}
	pgbr_buf_init(&c);
	pgbr_error_init(&err);
	z = pgbr_sink_zstd_compress_create(3, 2, pgbr_sink_buf_create(&c), &err);
	ok(z != NULL && pgbr_sink_write(z, data, len, &err), "workers=2: compressor takes 4MB");
	during = count_threads();
	ok(before > 0 && during >= before + 2, "workers=2: two more threads (%d before, %d during)",
	   before, during);
	ok(pgbr_sink_finish(z, &err), "workers=2: finish");
	pgbr_sink_free_chain(z);
	ok(count_threads() == before, "workers=2: threads gone after free");
	pgbr_buf_release(&c);
	free(data);
}

static void
test_empty(void)
{
	PgbrBuf		out;
	PgbrError	err;
	PgbrSink   *z;

	/* no input at all */
	pgbr_buf_init(&out);
	pgbr_error_init(&err);
	z = pgbr_sink_zstd_decompress_create(pgbr_sink_buf_create(&out), &err);
	ok(z != NULL, "decompressor created");
	ok(!pgbr_sink_finish(z, &err), "decompress of no input: finish fails");
	is_int(err.code, PGBR_ERR_FORMAT, "no input: format error");
	like(err.message, "truncated", "no input: message says truncated");
	pgbr_sink_free_chain(z);

	/* zero-length writes only */
	pgbr_error_init(&err);
	z = pgbr_sink_zstd_decompress_create(pgbr_sink_buf_create(&out), &err);
	ok(pgbr_sink_write(z, "", 0, &err) && !pgbr_sink_finish(z, &err),
	   "decompress of zero-length writes only: finish fails");
	pgbr_sink_free_chain(z);
	is_int((long long) out.len, 0, "nothing was output");
	pgbr_buf_release(&out);

	/* compressing nothing gives a valid frame that decompresses to nothing */
	{
		PgbrBuf		c,
					d;
		bool		wf;

		pgbr_buf_init(&c);
		pgbr_buf_init(&d);
		pgbr_error_init(&err);
		ok(compress_buf(NULL, 0, 1, 0, &c, NULL, &err) && c.len > 0,
		   "compressing nothing gives a frame (%zu bytes)", c.len);
		ok(decompress_buf(c.data, c.len, 1, &d, &err, &wf) && d.len == 0,
		   "the empty frame decompresses to nothing");
		pgbr_buf_release(&c);
		pgbr_buf_release(&d);
	}
}

int
main(void)
{
	test_roundtrips();
	test_damage();
	test_workers();
	test_empty();
	return done_testing();
}
