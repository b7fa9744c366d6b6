/*
 * test_buf.c
 *		PgbrBuf encoders and the bounds-checked PgbrReader.
 */
#include "pgbr_buf.h"
#include "unit.h"

#include <stdlib.h>

static void
test_buf_basics(void)
{
	PgbrBuf		b;
	uint8_t    *before;

	pgbr_buf_init(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "init: empty buffer");

	pgbr_buf_put(&b, "hello", 5);
	is_int((long long) b.len, 5, "put: len");
	ok(b.cap > b.len, "put: room for a terminator");
	is_int(b.data[5], 0, "put: data is NUL-terminated");
	is_mem(b.data, "hello", 5, "put: content");

	/* growth across many doublings keeps the content */
	for (int i = 0; i < 10000; i++)
		pgbr_buf_put_u8(&b, (uint8_t) i);
	is_int((long long) b.len, 10005, "growth: len");
	{
		bool		same = true;

		for (int i = 0; i < 10000; i++)
			if (b.data[5 + i] != (uint8_t) i)
				same = false;
		ok(same, "growth: every byte kept");
	}

	before = b.data;
	pgbr_buf_reset(&b);
	is_int((long long) b.len, 0, "reset: len 0");
	ok(b.data == before && b.cap > 0, "reset: memory kept");

	pgbr_buf_put(&b, NULL, 0);
	is_int((long long) b.len, 0, "put of 0 bytes (NULL) is fine");

	pgbr_buf_printf(&b, "%s-%d-%05.1f", "x", 42, 3.5);
	is_str((const char *) b.data, "x-42-003.5", "printf: formats and terminates");
	pgbr_buf_printf(&b, "%s", "");
	is_int((long long) b.len, 10, "printf of an empty string adds nothing");
	pgbr_buf_printf(&b, "%0300d", 7);
	is_int((long long) b.len, 310, "printf: a long result grows the buffer");
	is_int(b.data[310], 0, "printf: terminated after growth");

	pgbr_buf_release(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "release: back to empty");
}

static void
test_big_endian(void)
{
	PgbrBuf		b;
	static const uint8_t want[] = {
		0xAB,
		0x01, 0x02,
		0x01, 0x02, 0x03, 0x04,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00,
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
	};
	uint8_t		raw[4];
	PgbrReader	r;
	char		s[16];

	pgbr_buf_init(&b);
	pgbr_buf_put_u8(&b, 0xAB);
	pgbr_buf_put_u16(&b, 0x0102);
	pgbr_buf_put_u32(&b, 0x01020304);
	pgbr_buf_put_u64(&b, UINT64_C(0x0102030405060708));
	pgbr_buf_put_str(&b, "abc");
	pgbr_buf_put_str(&b, "");
	pgbr_buf_put_str(&b, NULL);
	pgbr_buf_put_u64(&b, UINT64_C(0xFFFFFFFFFFFFFFFE));
	is_int((long long) b.len, (long long) sizeof(want), "encoders: total length");
	is_mem(b.data, want, sizeof(want), "encoders: big-endian layout, str = u32 length + bytes, NULL as \"\"");

	pgbr_put_be32(raw, 0xDEADBEEF);
	ok(raw[0] == 0xDE && raw[1] == 0xAD && raw[2] == 0xBE && raw[3] == 0xEF,
	   "pgbr_put_be32: most significant byte first");
	is_int(pgbr_get_be32(raw), 0xDEADBEEF, "pgbr_get_be32 inverts pgbr_put_be32");

	/* the reader decodes what the encoders wrote */
	pgbr_reader_init(&r, b.data, b.len);
	is_int(pgbr_reader_u8(&r), 0xAB, "reader: u8");
	is_int(pgbr_reader_u16(&r), 0x0102, "reader: u16");
	is_int(pgbr_reader_u32(&r), 0x01020304, "reader: u32");
	ok(pgbr_reader_u64(&r) == UINT64_C(0x0102030405060708), "reader: u64");
	ok(pgbr_reader_str(&r, s, 15) && strcmp(s, "abc") == 0, "reader: str");
	ok(pgbr_reader_str(&r, s, 15) && s[0] == '\0', "reader: empty str");
	ok(pgbr_reader_str(&r, s, 0) && s[0] == '\0', "reader: empty str with maxlen 0");
	ok(!pgbr_reader_done(&r), "reader_done: false while bytes remain");
	ok(pgbr_reader_u64(&r) == UINT64_C(0xFFFFFFFFFFFFFFFE), "reader: u64 high bit");
	ok(!r.failed, "reader: no failure on valid input");
	ok(pgbr_reader_done(&r), "reader_done: true when everything was consumed");
	pgbr_buf_release(&b);
}

/*
 * Every get past the end fails, sets `failed` and yields zero; every later
 * get yields zero too, even where bytes would be left.
 */
static void
test_reader_bounds(void)
{
	static const uint8_t data[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
	PgbrReader	r;
	uint8_t		out[8];
	char		s[16];

	/* each width, with each available length shorter than it */
	for (size_t avail = 0; avail < 1; avail++)
	{
		pgbr_reader_init(&r, data, avail);
		is_int(pgbr_reader_u8(&r), 0, "u8 with %zu bytes: value 0", avail);
		ok(r.failed, "u8 with %zu bytes: failed", avail);
	}
	for (size_t avail = 0; avail < 2; avail++)
	{
		pgbr_reader_init(&r, data, avail);
		is_int(pgbr_reader_u16(&r), 0, "u16 with %zu bytes: value 0", avail);
		ok(r.failed, "u16 with %zu bytes: failed", avail);
	}
	for (size_t avail = 0; avail < 4; avail++)
	{
		pgbr_reader_init(&r, data, avail);
		is_int(pgbr_reader_u32(&r), 0, "u32 with %zu bytes: value 0", avail);
		ok(r.failed, "u32 with %zu bytes: failed", avail);
	}
	for (size_t avail = 0; avail < 8; avail++)
	{
		uint64_t	v;

		pgbr_reader_init(&r, data, avail);
		v = pgbr_reader_u64(&r);
		ok(v == 0, "u64 with %zu bytes: value 0 (got 0x%016llx)", avail,
		   (unsigned long long) v);
		ok(r.failed, "u64 with %zu bytes: failed", avail);
	}
	for (size_t avail = 0; avail < 8; avail++)
	{
		bool		zero = true;

		memset(out, 0xEE, sizeof(out));
		pgbr_reader_init(&r, data, avail);
		ok(!pgbr_reader_bytes(&r, out, 8), "bytes(8) with %zu bytes: returns false", avail);
		ok(r.failed, "bytes(8) with %zu bytes: failed", avail);
		for (int i = 0; i < 8; i++)
			if (out[i] != 0)
				zero = false;
		ok(zero, "bytes(8) with %zu bytes: output zeroed", avail);
	}

	/* exact fits succeed and leave the reader done */
	pgbr_reader_init(&r, data, 8);
	ok(pgbr_reader_bytes(&r, out, 8) && memcmp(out, data, 8) == 0 && pgbr_reader_done(&r),
	   "bytes: exact fit");
	ok(pgbr_reader_bytes(&r, out, 0) && pgbr_reader_done(&r), "bytes(0) at the end succeeds");

	/* after a failure everything is zero, although bytes remain */
	pgbr_reader_init(&r, data, 8);
	is_int(pgbr_reader_u32(&r), 0x11223344, "first u32 read");
	(void) pgbr_reader_u64(&r);	/* 4 bytes left: fails */
	ok(r.failed, "u64 with 4 bytes left: failed");
	is_int(pgbr_reader_u8(&r), 0, "after failure: u8 is 0 although bytes remain");
	is_int(pgbr_reader_u16(&r), 0, "after failure: u16 is 0");
	is_int(pgbr_reader_u32(&r), 0, "after failure: u32 is 0");
	ok(pgbr_reader_u64(&r) == 0, "after failure: u64 is 0");
	ok(!pgbr_reader_bytes(&r, out, 1), "after failure: bytes(1) fails");
	ok(!pgbr_reader_bytes(&r, out, 0), "after failure: even bytes(0) fails");
	strcpy(s, "junk");
	ok(!pgbr_reader_str(&r, s, 15) && s[0] == '\0', "after failure: str fails and is empty");
	ok(!pgbr_reader_done(&r), "reader_done: false after a failure");
	ok(r.failed, "failed stays set");

	/* a failure exactly at the end still makes reader_done false */
	pgbr_reader_init(&r, data, 2);
	(void) pgbr_reader_u16(&r);
	ok(pgbr_reader_done(&r), "reader_done after consuming all");
	(void) pgbr_reader_u8(&r);
	ok(!pgbr_reader_done(&r), "reader_done false after a get past the end");

	/* empty input */
	pgbr_reader_init(&r, NULL, 0);
	ok(pgbr_reader_done(&r), "reader_done on empty input with nothing read");
}

static void
test_reader_str(void)
{
	PgbrBuf		b;
	PgbrReader	r;
	char		s[70];
	char		long64[65],
				long65[66];

	memset(long64, 'x', 64);
	long64[64] = '\0';
	memset(long65, 'y', 65);
	long65[65] = '\0';

	pgbr_buf_init(&b);
	pgbr_buf_put_str(&b, long64);
	pgbr_reader_init(&r, b.data, b.len);
	ok(pgbr_reader_str(&r, s, 64) && strlen(s) == 64 && pgbr_reader_done(&r),
	   "str: exactly maxlen bytes accepted");

	pgbr_buf_reset(&b);
	pgbr_buf_put_str(&b, long65);
	strcpy(s, "junk");
	pgbr_reader_init(&r, b.data, b.len);
	ok(!pgbr_reader_str(&r, s, 64) && r.failed, "str: maxlen + 1 bytes refused");
	is_str(s, "", "str: output empty on refusal");

	/* embedded NUL */
	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, 3);
	pgbr_buf_put(&b, "a\0b", 3);
	pgbr_reader_init(&r, b.data, b.len);
	ok(!pgbr_reader_str(&r, s, 64) && r.failed, "str: embedded NUL refused");
	is_str(s, "", "str: output empty after NUL refusal");

	/* NUL as last byte */
	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, 3);
	pgbr_buf_put(&b, "ab\0", 3);
	pgbr_reader_init(&r, b.data, b.len);
	ok(!pgbr_reader_str(&r, s, 64), "str: trailing NUL refused");

	/* announced length beyond the data */
	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, 10);
	pgbr_buf_put(&b, "abcdefghi", 9);
	pgbr_reader_init(&r, b.data, b.len);
	ok(!pgbr_reader_str(&r, s, 64) && r.failed, "str: length beyond the data refused");

	/* huge announced length with a huge maxlen: no overflow, refused */
	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, 0xFFFFFFFF);
	pgbr_buf_put(&b, "abc", 3);
	pgbr_reader_init(&r, b.data, b.len);
	{
		char	   *big = malloc(16);

		ok(!pgbr_reader_str(&r, big, SIZE_MAX - 1) && r.failed,
		   "str: 0xFFFFFFFF length refused even with a huge maxlen");
		free(big);
	}

	/* truncated length field */
	for (size_t avail = 0; avail < 4; avail++)
	{
		pgbr_reader_init(&r, "\0\0\0\0", avail);
		ok(!pgbr_reader_str(&r, s, 64) && r.failed, "str: length field cut to %zu bytes", avail);
	}
	pgbr_buf_release(&b);
}

int
main(void)
{
	test_buf_basics();
	test_big_endian();
	test_reader_bounds();
	test_reader_str();
	return done_testing();
}
