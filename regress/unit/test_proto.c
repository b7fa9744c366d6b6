/*
 * test_proto.c
 *		Frame headers and message bodies of the pgbr protocol.
 */
#include "pgbr_proto.h"
#include "unit.h"

#include <stdio.h>

/* ---- frame headers ---- */

static void
test_frame_roundtrip(void)
{
	static const uint32_t lengths[] = {0, 1, 255, 256, 65535, 65536, 12345678 % PGBR_FRAME_MAX,
	PGBR_FRAME_MAX - 1, PGBR_FRAME_MAX};
	bool		all_ok = true;
	uint8_t		h[PGBR_FRAME_HEADER_SIZE];
	PgbrFrameHeader hdr;
	PgbrError	err;

	for (int type = 1; type <= PGBR_MSG_TYPE_MAX; type++)
		for (size_t i = 0; i < PGBR_LENGTHOF(lengths); i++)
		{
			pgbr_error_init(&err);
			memset(h, 0xAA, sizeof(h));
			pgbr_frame_header_encode(h, (uint8_t) type, lengths[i]);
			memset(&hdr, 0xAA, sizeof(hdr));
			if (!pgbr_frame_header_decode(h, &hdr, &err) || hdr.type != type ||
				hdr.flags != 0 || hdr.length != lengths[i] || pgbr_error_is_set(&err))
			{
				diag("type %d length %u: %s", type, lengths[i], err.message);
				all_ok = false;
			}
		}
	ok(all_ok, "frame header: encode/decode round trip for every type and boundary lengths");

	pgbr_frame_header_encode(h, PGBR_MSG_WAL_PUT, 0x01020304);
	{
		static const uint8_t want[] = {7, 0, 0, 0, 0x01, 0x02, 0x03, 0x04};

		is_mem(h, want, 8, "frame header layout: type, flags 0, reserved 0, big-endian length");
	}

	for (int type = 1; type <= PGBR_MSG_TYPE_MAX; type++)
		if (strcmp(pgbr_msg_name(type), "unknown") == 0)
			ok(false, "pgbr_msg_name(%d) has a name", type);
	is_str(pgbr_msg_name(PGBR_MSG_HELLO), "HELLO", "pgbr_msg_name(HELLO)");
	is_str(pgbr_msg_name(PGBR_MSG_BACKUP_JOIN), "BACKUP_JOIN", "pgbr_msg_name(last type)");
	is_str(pgbr_msg_name(0), "unknown", "pgbr_msg_name(0)");
	is_str(pgbr_msg_name(PGBR_MSG_TYPE_MAX + 1), "unknown", "pgbr_msg_name(MAX + 1)");
	is_str(pgbr_msg_name(-1), "unknown", "pgbr_msg_name(-1)");
	is_str(pgbr_msg_name(1000), "unknown", "pgbr_msg_name(1000)");
}

static void
test_frame_refused(void)
{
	static const int bad_types[] = {0, PGBR_MSG_TYPE_MAX + 1, 0x7F, 0x80, 0xFF};
	uint8_t		h[PGBR_FRAME_HEADER_SIZE];
	PgbrFrameHeader hdr;
	PgbrError	err;
	char		want[64];

	for (size_t i = 0; i < PGBR_LENGTHOF(bad_types); i++)
	{
		pgbr_error_init(&err);
		pgbr_frame_header_encode(h, (uint8_t) bad_types[i], 10);
		ok(!pgbr_frame_header_decode(h, &hdr, &err), "type %d refused", bad_types[i]);
		is_int(err.code, PGBR_ERR_PROTOCOL, "type %d: protocol error", bad_types[i]);
		snprintf(want, sizeof(want), "type %d", bad_types[i]);
		like(err.message, want, "type %d: message names the type", bad_types[i]);
	}

	/* reserved bits: flags byte and the two reserved bytes, each bit */
	for (int byte = 1; byte <= 3; byte++)
	{
		bool		all = true;

		for (int bit = 0; bit < 8; bit++)
		{
			pgbr_error_init(&err);
			pgbr_frame_header_encode(h, PGBR_MSG_PING, 0);
			h[byte] = (uint8_t) (1 << bit);
			if (pgbr_frame_header_decode(h, &hdr, &err) || err.code != PGBR_ERR_PROTOCOL ||
				strstr(err.message, "reserved") == NULL)
			{
				diag("byte %d bit %d: %s", byte, bit, err.message);
				all = false;
			}
		}
		ok(all, "reserved header byte %d: every bit set is refused, message says reserved", byte);
	}

	/* length limit */
	pgbr_error_init(&err);
	pgbr_frame_header_encode(h, PGBR_MSG_DATA, PGBR_FRAME_MAX + 1);
	ok(!pgbr_frame_header_decode(h, &hdr, &err), "length PGBR_FRAME_MAX + 1 refused");
	is_int(err.code, PGBR_ERR_PROTOCOL, "oversized: protocol error");
	snprintf(want, sizeof(want), "%d", PGBR_FRAME_MAX);
	like(err.message, want, "oversized: message mentions the limit");
	like(err.message, "DATA", "oversized: message names the message type");

	pgbr_error_init(&err);
	pgbr_frame_header_encode(h, PGBR_MSG_DATA, 0xFFFFFFFF);
	ok(!pgbr_frame_header_decode(h, &hdr, &err), "length 0xFFFFFFFF refused");

	pgbr_error_init(&err);
	pgbr_frame_header_encode(h, PGBR_MSG_DATA, PGBR_FRAME_MAX);
	ok(pgbr_frame_header_decode(h, &hdr, &err) && hdr.length == PGBR_FRAME_MAX &&
	   !pgbr_error_is_set(&err), "length exactly PGBR_FRAME_MAX accepted");
}

/* ---- bodies ---- */

typedef bool (*DecodeFn) (const void *data, size_t len, PgbrError *err);

static PgbrHello hello_out;
static PgbrWalMsg wal_out;
static PgbrStanzaMsg stanza_out;
static PgbrError remote_out;
static char name_out[PGBR_NAME_MAX + 1];

static bool
dec_hello(const void *d, size_t l, PgbrError *e)
{
	return pgbr_hello_decode(d, l, &hello_out, e);
}

static bool
dec_wal(const void *d, size_t l, PgbrError *e)
{
	return pgbr_wal_msg_decode(d, l, &wal_out, e);
}

static bool
dec_stanza(const void *d, size_t l, PgbrError *e)
{
	return pgbr_stanza_decode(d, l, &stanza_out, e);
}

static bool
dec_errmsg(const void *d, size_t l, PgbrError *e)
{
	return pgbr_errmsg_decode(d, l, &remote_out, e);
}

static bool
dec_name(const void *d, size_t l, PgbrError *e)
{
	return pgbr_name_decode(d, l, name_out, PGBR_NAME_MAX, e);
}

/*
 * Every proper prefix of a valid body and the body plus one trailing byte
 * are refused with a protocol error; the body itself is accepted.
 */
static void
check_framing(const char *what, DecodeFn fn, const PgbrBuf *body)
{
	PgbrError	err;
	uint8_t    *copy = pgbr_malloc(body->len + 1);
	size_t		bad_prefix = (size_t) -1;

	memcpy(copy, body->data, body->len);
	for (size_t n = 0; n < body->len; n++)
	{
		pgbr_error_init(&err);
		if (fn(copy, n, &err) || err.code != PGBR_ERR_PROTOCOL)
		{
			bad_prefix = n;
			break;
		}
	}
	ok(bad_prefix == (size_t) -1, "%s: every prefix (0..%zu bytes) refused", what,
	   body->len - 1);
	if (bad_prefix != (size_t) -1)
		diag("prefix of %zu bytes accepted or wrong code", bad_prefix);

	for (int g = 0; g < 2; g++)
	{
		pgbr_error_init(&err);
		copy[body->len] = g ? 0xFF : 0x00;
		ok(!fn(copy, body->len + 1, &err) && err.code == PGBR_ERR_PROTOCOL,
		   "%s: one trailing byte 0x%02X refused", what, g ? 0xFF : 0x00);
	}
	pgbr_error_init(&err);
	ok(fn(copy, body->len, &err) && !pgbr_error_is_set(&err), "%s: the full body accepted", what);
	pgbr_free(copy);
}

static void
test_hello(void)
{
	PgbrHello	in,
				out;
	PgbrBuf		b;
	PgbrError	err;
	char		s64[65],
				s65[66];

	memset(&in, 0, sizeof(in));
	in.magic = 0;				/* the encoder writes the magic itself */
	in.version = PGBR_PROTOCOL_VERSION;
	strcpy(in.program, "archive-push");
	strcpy(in.stanza, "demo");
	pgbr_buf_init(&b);
	pgbr_hello_encode(&b, &in);
	is_int((long long) pgbr_get_be32(b.data), PGBR_PROTO_MAGIC, "HELLO: encoder writes the magic");

	pgbr_error_init(&err);
	memset(&out, 0x55, sizeof(out));
	ok(pgbr_hello_decode(b.data, b.len, &out, &err), "HELLO: decodes");
	ok(out.magic == PGBR_PROTO_MAGIC && out.version == PGBR_PROTOCOL_VERSION &&
	   strcmp(out.program, "archive-push") == 0 && strcmp(out.stanza, "demo") == 0,
	   "HELLO: round trip");
	check_framing("HELLO", dec_hello, &b);

	/* bad magic, each byte */
	for (int i = 0; i < 4; i++)
	{
		pgbr_error_init(&err);
		b.data[i] ^= 0x01;
		ok(!pgbr_hello_decode(b.data, b.len, &out, &err) && err.code == PGBR_ERR_PROTOCOL,
		   "HELLO: magic byte %d changed: refused", i);
		like(err.message, "magic", "HELLO: bad magic byte %d: message says magic", i);
		b.data[i] ^= 0x01;
	}

	/* field limits: 64 accepted, 65 refused, for program and stanza */
	memset(s64, 'p', 64);
	s64[64] = '\0';
	memset(s65, 'p', 65);
	s65[65] = '\0';
	for (int field = 0; field < 2; field++)
	{
		const char *fname = field ? "stanza" : "program";

		for (int l = 0; l < 2; l++)
		{
			const char *s = l ? s65 : s64;

			pgbr_buf_reset(&b);
			pgbr_buf_put_u32(&b, PGBR_PROTO_MAGIC);
			pgbr_buf_put_u16(&b, 1);
			pgbr_buf_put_str(&b, field ? "archive-push" : s);
			pgbr_buf_put_str(&b, field ? s : "demo");
			pgbr_error_init(&err);
			if (l)
				ok(!pgbr_hello_decode(b.data, b.len, &out, &err) &&
				   err.code == PGBR_ERR_PROTOCOL,
				   "HELLO: %s of 65 bytes refused", fname);
			else
				ok(pgbr_hello_decode(b.data, b.len, &out, &err) &&
				   strlen(field ? out.stanza : out.program) == 64,
				   "HELLO: %s of 64 bytes accepted", fname);
		}
	}

	/* embedded NUL in program, then in stanza */
	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, PGBR_PROTO_MAGIC);
	pgbr_buf_put_u16(&b, 1);
	pgbr_buf_put_u32(&b, 4);
	pgbr_buf_put(&b, "ab\0c", 4);
	pgbr_buf_put_str(&b, "demo");
	pgbr_error_init(&err);
	ok(!pgbr_hello_decode(b.data, b.len, &out, &err) && err.code == PGBR_ERR_PROTOCOL,
	   "HELLO: NUL inside program refused");

	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, PGBR_PROTO_MAGIC);
	pgbr_buf_put_u16(&b, 1);
	pgbr_buf_put_str(&b, "archive-push");
	pgbr_buf_put_u32(&b, 5);
	pgbr_buf_put(&b, "demo\0", 5);
	pgbr_error_init(&err);
	ok(!pgbr_hello_decode(b.data, b.len, &out, &err) && err.code == PGBR_ERR_PROTOCOL,
	   "HELLO: NUL at the end of stanza refused");

	pgbr_buf_release(&b);
}

static void
test_wal_msg(void)
{
	PgbrWalMsg	in,
				out;
	PgbrBuf		b;
	PgbrError	err;
	char		s65[66];

	memset(&in, 0, sizeof(in));
	strcpy(in.name, "000000010000000A000000FF");
	in.size = UINT64_C(0x0000000101000000);
	for (int i = 0; i < 32; i++)
		in.sha256[i] = (uint8_t) (0xF0 ^ i);
	in.compress = PGBR_COMPRESS_ZST;
	pgbr_buf_init(&b);
	pgbr_wal_msg_encode(&b, &in);
	is_int((long long) b.len, 4 + 24 + 8 + 32 + 1, "WAL: body length");

	pgbr_error_init(&err);
	memset(&out, 0x55, sizeof(out));
	ok(pgbr_wal_msg_decode(b.data, b.len, &out, &err), "WAL: decodes");
	ok(strcmp(out.name, in.name) == 0 && out.size == in.size &&
	   memcmp(out.sha256, in.sha256, 32) == 0 && out.compress == PGBR_COMPRESS_ZST,
	   "WAL: round trip");
	check_framing("WAL", dec_wal, &b);

	/* compress byte out of range */
	b.data[b.len - 1] = 2;
	pgbr_error_init(&err);
	ok(!pgbr_wal_msg_decode(b.data, b.len, &out, &err) && err.code == PGBR_ERR_PROTOCOL,
	   "WAL: compress 2 refused");
	b.data[b.len - 1] = PGBR_COMPRESS_NONE;
	pgbr_error_init(&err);
	ok(pgbr_wal_msg_decode(b.data, b.len, &out, &err) && out.compress == PGBR_COMPRESS_NONE,
	   "WAL: compress none accepted");

	/* name of 65 bytes */
	memset(s65, 'A', 65);
	s65[65] = '\0';
	pgbr_buf_reset(&b);
	pgbr_buf_put_str(&b, s65);
	pgbr_buf_put_u64(&b, 1);
	pgbr_buf_put(&b, in.sha256, 32);
	pgbr_buf_put_u8(&b, 0);
	pgbr_error_init(&err);
	ok(!pgbr_wal_msg_decode(b.data, b.len, &out, &err) && err.code == PGBR_ERR_PROTOCOL,
	   "WAL: name of 65 bytes refused");

	/* NUL in name */
	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, 24);
	pgbr_buf_put(&b, "00000001000000000000000\0", 24);
	pgbr_buf_put_u64(&b, 1);
	pgbr_buf_put(&b, in.sha256, 32);
	pgbr_buf_put_u8(&b, 0);
	pgbr_error_init(&err);
	ok(!pgbr_wal_msg_decode(b.data, b.len, &out, &err) && err.code == PGBR_ERR_PROTOCOL,
	   "WAL: NUL in name refused");

	pgbr_buf_release(&b);
}

static void
test_stanza_msg(void)
{
	PgbrStanzaMsg in = {UINT64_C(7710802738502011671), 150020, 16 * 1024 * 1024},
				out;
	PgbrBuf		b;
	PgbrError	err;

	pgbr_buf_init(&b);
	pgbr_stanza_encode(&b, &in);
	is_int((long long) b.len, 16, "stanza: body length");
	pgbr_error_init(&err);
	memset(&out, 0, sizeof(out));
	ok(pgbr_stanza_decode(b.data, b.len, &out, &err) && out.system_id == in.system_id &&
	   out.pg_version == in.pg_version && out.seg_size == in.seg_size,
	   "stanza: round trip");
	check_framing("stanza", dec_stanza, &b);
	pgbr_buf_release(&b);
}

static void
test_errmsg(void)
{
	PgbrError	e,
				remote,
				err;
	PgbrBuf		b;
	char	   *big;

	pgbr_error_init(&e);
	pgbr_error_set(&e, PGBR_ERR_ARCHIVE_MISMATCH, "WAL file \"%s\" is from another cluster",
				   "000000010000000000000001");
	pgbr_error_hint(&e, "Check the stanza.");
	pgbr_buf_init(&b);
	pgbr_errmsg_encode(&b, &e);
	pgbr_error_init(&err);
	ok(pgbr_errmsg_decode(b.data, b.len, &remote, &err) &&
	   remote.code == PGBR_ERR_ARCHIVE_MISMATCH &&
	   strcmp(remote.message, e.message) == 0 && strcmp(remote.hint, e.hint) == 0,
	   "error: round trip of code, message, hint");
	check_framing("error", dec_errmsg, &b);

	/* code 0 and > 999 refused, remote left clean */
	for (int i = 0; i < 2; i++)
	{
		uint32_t	code = i ? 1000 : 0;

		pgbr_buf_reset(&b);
		pgbr_buf_put_u32(&b, code);
		pgbr_buf_put_str(&b, "m");
		pgbr_buf_put_str(&b, "");
		pgbr_error_init(&err);
		ok(!pgbr_errmsg_decode(b.data, b.len, &remote, &err) && err.code == PGBR_ERR_PROTOCOL &&
		   remote.code == 0 && remote.message[0] == '\0',
		   "error: code %u refused, remote cleared", code);
	}

	/* message limit 1023, hint limit 511 */
	big = pgbr_malloc(2000);
	for (int field = 0; field < 2; field++)
	{
		size_t		limit = field ? sizeof(e.hint) - 1 : sizeof(e.message) - 1;

		for (int over = 0; over < 2; over++)
		{
			bool		r;

			memset(big, 'm', limit + (size_t) over);
			big[limit + (size_t) over] = '\0';
			pgbr_buf_reset(&b);
			pgbr_buf_put_u32(&b, 57);
			pgbr_buf_put_str(&b, field ? "m" : big);
			pgbr_buf_put_str(&b, field ? big : "h");
			pgbr_error_init(&err);
			r = pgbr_errmsg_decode(b.data, b.len, &remote, &err);
			if (over)
				ok(!r && err.code == PGBR_ERR_PROTOCOL, "error: %s of %zu bytes refused",
				   field ? "hint" : "message", limit + 1);
			else
				ok(r && strlen(field ? remote.hint : remote.message) == limit,
				   "error: %s of %zu bytes accepted", field ? "hint" : "message", limit);
		}
	}
	pgbr_free(big);

	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, 57);
	pgbr_buf_put_u32(&b, 3);
	pgbr_buf_put(&b, "a\0b", 3);
	pgbr_buf_put_str(&b, "");
	pgbr_error_init(&err);
	ok(!pgbr_errmsg_decode(b.data, b.len, &remote, &err), "error: NUL in message refused");
	pgbr_buf_release(&b);
}

static void
test_name(void)
{
	PgbrBuf		b;
	PgbrError	err;
	char		out[PGBR_NAME_MAX + 1];
	char		small[9];

	pgbr_buf_init(&b);
	pgbr_name_encode(&b, "00000002.history");
	pgbr_error_init(&err);
	ok(pgbr_name_decode(b.data, b.len, out, PGBR_NAME_MAX, &err) &&
	   strcmp(out, "00000002.history") == 0, "name: round trip");
	check_framing("name", dec_name, &b);
	pgbr_error_init(&err);
	ok(!pgbr_name_decode(b.data, b.len, small, 8, &err) && err.code == PGBR_ERR_PROTOCOL,
	   "name: longer than the caller's maxlen refused");
	pgbr_buf_reset(&b);
	pgbr_buf_put_u32(&b, 2);
	pgbr_buf_put(&b, "\0x", 2);
	pgbr_error_init(&err);
	ok(!pgbr_name_decode(b.data, b.len, out, PGBR_NAME_MAX, &err), "name: leading NUL refused");
	pgbr_buf_release(&b);
}

static void
test_strs(void)
{
	const char *in[4] = {"incr", "7710802738502011671", "150020", ""};
	char		a[PGBR_NAME_MAX + 1],
				b[PGBR_NAME_MAX + 1],
				c[PGBR_NAME_MAX + 1],
				d[PGBR_NAME_MAX + 1];
	char	   *const out[4] = {a, b, c, d};
	const size_t maxlens[4] = {4, PGBR_NAME_MAX, PGBR_NAME_MAX, PGBR_NAME_MAX};
	PgbrBuf		buf;
	PgbrError	err;
	size_t		n;

	pgbr_buf_init(&buf);
	pgbr_strs_encode(&buf, 4, in);
	is_int((long long) buf.len, 4 * 4 + 4 + 19 + 6, "strs: body length");
	pgbr_error_init(&err);
	ok(pgbr_strs_decode(buf.data, buf.len, 4, out, maxlens, &err) &&
	   strcmp(a, "incr") == 0 && strcmp(b, in[1]) == 0 && strcmp(c, "150020") == 0 &&
	   d[0] == '\0', "strs: round trip of four strings (the last empty)");

	n = buf.len;
	{
		size_t		bad = (size_t) -1;

		for (size_t l = 0; l < n; l++)
		{
			pgbr_error_init(&err);
			if (pgbr_strs_decode(buf.data, l, 4, out, maxlens, &err) ||
				err.code != PGBR_ERR_PROTOCOL)
			{
				bad = l;
				break;
			}
		}
		/* the last string is empty: cutting its length field still fails */
		ok(bad == (size_t) -1, "strs: every prefix refused%s", bad == (size_t) -1 ? "" : " (not all)");
	}
	pgbr_error_init(&err);
	ok(!pgbr_strs_decode(buf.data, n, 3, out, maxlens, &err), "strs: four strings where three expected");
	pgbr_error_init(&err);
	ok(!pgbr_strs_decode(buf.data, n, 5, (char *const[]) {a, b, c, d, a},
						 (const size_t[]) {4, 64, 64, 64, 64}, &err),
	   "strs: four strings where five expected");
	pgbr_error_init(&err);
	ok(!pgbr_strs_decode(buf.data, n, 4, out, (const size_t[]) {3, 64, 64, 64}, &err),
	   "strs: a string longer than its maxlen refused");
	pgbr_buf_put_u8(&buf, 0);
	pgbr_error_init(&err);
	ok(!pgbr_strs_decode(buf.data, buf.len, 4, out, maxlens, &err), "strs: trailing byte refused");
	pgbr_error_init(&err);
	ok(pgbr_strs_decode("", 0, 0, out, maxlens, &err), "strs: zero strings from an empty body");
	pgbr_buf_release(&buf);
}

static void
test_stanza_names(void)
{
	char		s64[65],
				s65[66];

	memset(s64, 'a', 64);
	s64[64] = '\0';
	memset(s65, 'a', 65);
	s65[65] = '\0';

	ok(pgbr_stanza_name_valid("demo"), "stanza name \"demo\" valid");
	ok(pgbr_stanza_name_valid("my_stanza-1.x"), "stanza name \"my_stanza-1.x\" valid");
	ok(pgbr_stanza_name_valid("A"), "stanza name \"A\" valid");
	ok(pgbr_stanza_name_valid(s64), "stanza name of 64 chars valid");
	ok(!pgbr_stanza_name_valid(s65), "stanza name of 65 chars invalid");
	ok(!pgbr_stanza_name_valid(""), "empty stanza name invalid");
	ok(!pgbr_stanza_name_valid(".."), "stanza name \"..\" invalid");
	ok(!pgbr_stanza_name_valid("."), "stanza name \".\" invalid");
	ok(!pgbr_stanza_name_valid(".hidden"), "stanza name with leading dot invalid");
	ok(!pgbr_stanza_name_valid("a/b"), "stanza name \"a/b\" invalid");
	ok(!pgbr_stanza_name_valid("/demo"), "stanza name \"/demo\" invalid");
	ok(!pgbr_stanza_name_valid("a\\b"), "stanza name with backslash invalid");
	ok(!pgbr_stanza_name_valid("my stanza"), "stanza name with a space invalid");
	ok(!pgbr_stanza_name_valid("demo\n"), "stanza name with a newline invalid");
	ok(!pgbr_stanza_name_valid("d\xc3\xa9mo"), "stanza name with non-ASCII invalid");
	ok(!pgbr_stanza_name_valid("[demo]"), "stanza name with brackets invalid");
}

int
main(void)
{
	test_frame_roundtrip();
	test_frame_refused();
	test_hello();
	test_wal_msg();
	test_stanza_msg();
	test_errmsg();
	test_name();
	test_strs();
	test_stanza_names();
	return done_testing();
}
