/*
 * test_wal.c
 *		WAL file names, segment numbers, the long page header and LSNs.
 */
#include "pgbr_wal.h"
#include "unit.h"
#include "wal_page.h"

#include <inttypes.h>
#include <stdio.h>

#define MB (1024u * 1024u)
#define SYSID UINT64_C(7710802738502011671)

static void
test_kind(void)
{
	static const struct
	{
		const char *name;
		PgbrWalKind kind;
	}			cases[] = {
		{"000000010000000000000001", PGBR_WAL_SEGMENT},
		{"00000001000000A0000000FF", PGBR_WAL_SEGMENT},
		{"FFFFFFFFFFFFFFFFFFFFFFFF", PGBR_WAL_SEGMENT},
		{"000000010000000000000003.partial", PGBR_WAL_PARTIAL},
		{"000000010000000000000003.00000028.backup", PGBR_WAL_BACKUP},
		{"00000001000000000000000A.00FFEE28.backup", PGBR_WAL_BACKUP},
		{"00000002.history", PGBR_WAL_HISTORY},
		{"0000000A.history", PGBR_WAL_HISTORY},
		/* invalid */
		{"", PGBR_WAL_INVALID},
		{"00000001000000000000000a", PGBR_WAL_INVALID},	/* lowercase hex */
		{"0000000100000000000000ff", PGBR_WAL_INVALID},
		{"0000000a.history", PGBR_WAL_INVALID},
		{"00000001000000000000000", PGBR_WAL_INVALID},	/* 23 chars */
		{"0000000100000000000000001", PGBR_WAL_INVALID}, /* 25 chars */
		{"../x", PGBR_WAL_INVALID},
		{"..", PGBR_WAL_INVALID},
		{"000000010000000000000001.bad", PGBR_WAL_INVALID},
		{"000000010000000000000001.partialx", PGBR_WAL_INVALID},
		{"000000010000000000000001.partia", PGBR_WAL_INVALID},
		{"000000010000000000000001.PARTIAL", PGBR_WAL_INVALID},
		{"000000010000000000000001.0000002.backup", PGBR_WAL_INVALID},
		{"000000010000000000000001.000000280.backup", PGBR_WAL_INVALID},
		{"000000010000000000000001.0000002g.backup", PGBR_WAL_INVALID},
		{"000000010000000000000001.00000028.backupx", PGBR_WAL_INVALID},
		{"000000010000000000000001_00000028.backup", PGBR_WAL_INVALID},
		{"00000002.histor", PGBR_WAL_INVALID},
		{"0000002.history", PGBR_WAL_INVALID},
		{"000000002.history", PGBR_WAL_INVALID},
		{"pg_wal/000000010000000000000001", PGBR_WAL_INVALID},
		{"/000000010000000000000001", PGBR_WAL_INVALID},
		{"00000001/000000000000000001", PGBR_WAL_INVALID},
		{"00000001000000000000/001", PGBR_WAL_INVALID},
		{"../000000010000000000000001", PGBR_WAL_INVALID},
		{" 00000001000000000000001", PGBR_WAL_INVALID},
		{"00000001000000000000001 ", PGBR_WAL_INVALID},
		{"0000000100000000000000-1", PGBR_WAL_INVALID},
		{"0x0000010000000000000001", PGBR_WAL_INVALID},
	};

	for (size_t i = 0; i < PGBR_LENGTHOF(cases); i++)
		is_int(pgbr_wal_kind(cases[i].name), cases[i].kind, "pgbr_wal_kind(\"%s\")", cases[i].name);

	ok(pgbr_wal_kind_has_header(PGBR_WAL_SEGMENT) && pgbr_wal_kind_has_header(PGBR_WAL_PARTIAL) &&
	   !pgbr_wal_kind_has_header(PGBR_WAL_BACKUP) && !pgbr_wal_kind_has_header(PGBR_WAL_HISTORY) &&
	   !pgbr_wal_kind_has_header(PGBR_WAL_INVALID), "kinds with a page header: segment, partial");
}

static void
test_segments(void)
{
	char		name[PGBR_WAL_SEG_NAME_LEN + 1];
	uint32_t	tli;
	uint64_t	segno;
	static const uint32_t sizes[] = {1 * MB, 16 * MB, 64 * MB, 1024 * MB};

	/* 16 MB: 256 segments per "log id", the last part runs 00..FF */
	pgbr_wal_segment_name(name, 1, 0xFF, 16 * MB);
	is_str(name, "0000000100000000000000FF", "16MB: segment 0xFF");
	pgbr_wal_segment_name(name, 1, 0x100, 16 * MB);
	is_str(name, "000000010000000100000000", "16MB: segment 0x100 wraps to the next log id");
	pgbr_wal_segment_name(name, 0x1A, 0x1234, 16 * MB);
	is_str(name, "0000001A0000001200000034", "16MB: tli 0x1A segment 0x1234");
	ok(pgbr_wal_segment_parse("000000010000000100000000", 16 * MB, &tli, &segno) &&
	   tli == 1 && segno == 0x100, "16MB: parse after the wrap");
	ok(pgbr_wal_segment_parse("0000000100000000000000FF", 16 * MB, &tli, &segno) &&
	   segno == 0xFF, "16MB: parse 0xFF");
	ok(!pgbr_wal_segment_parse("000000010000000000000100", 16 * MB, &tli, &segno),
	   "16MB: last part 0x100 is not a segment");

	/* 1 MB: 4096 segments per log id */
	pgbr_wal_segment_name(name, 1, 0xFF, 1 * MB);
	is_str(name, "0000000100000000000000FF", "1MB: segment 0xFF");
	pgbr_wal_segment_name(name, 1, 0x100, 1 * MB);
	is_str(name, "000000010000000000000100", "1MB: segment 0x100 does not wrap");
	pgbr_wal_segment_name(name, 1, 0x1000, 1 * MB);
	is_str(name, "000000010000000100000000", "1MB: segment 0x1000 wraps");
	ok(pgbr_wal_segment_parse("000000010000000000000100", 1 * MB, &tli, &segno) && segno == 0x100,
	   "1MB: parse 0x100");
	ok(pgbr_wal_segment_parse("000000010000000000000FFF", 1 * MB, &tli, &segno) && segno == 0xFFF,
	   "1MB: parse 0xFFF");
	ok(!pgbr_wal_segment_parse("000000010000000000001000", 1 * MB, &tli, &segno),
	   "1MB: last part 0x1000 is not a segment");

	/* round trips */
	for (size_t s = 0; s < PGBR_LENGTHOF(sizes); s++)
	{
		static const uint64_t segnos[] = {0, 1, 0xFF, 0x100, 0x101, 0xFFF, 0x1000, 123456789,
		UINT64_C(0xFFFFFFFF)};
		bool		all = true;

		for (size_t i = 0; i < PGBR_LENGTHOF(segnos); i++)
		{
			uint64_t	per_id = UINT64_C(0x100000000) / sizes[s];

			/* stay within 64-bit LSNs */
			if (segnos[i] / per_id > 0xFFFFFFFF)
				continue;
			pgbr_wal_segment_name(name, 7, segnos[i], sizes[s]);
			if (strlen(name) != 24 || pgbr_wal_kind(name) != PGBR_WAL_SEGMENT ||
				!pgbr_wal_segment_parse(name, sizes[s], &tli, &segno) ||
				tli != 7 || segno != segnos[i])
			{
				diag("size %u segno %" PRIu64 ": %s", sizes[s], segnos[i], name);
				all = false;
			}
		}
		ok(all, "name/parse round trip with segment size %uMB", sizes[s] / MB);
	}

	/* a partial name parses like its segment */
	ok(pgbr_wal_segment_parse("00000003000000020000000A.partial", 16 * MB, &tli, &segno) &&
	   tli == 3 && segno == 0x20A, "parse of a .partial name");
	ok(!pgbr_wal_segment_parse("0000000100000000000000", 16 * MB, &tli, &segno), "parse: too short");
	ok(!pgbr_wal_segment_parse("00000001000000000000000G", 16 * MB, &tli, &segno), "parse: not hex");
	ok(!pgbr_wal_segment_parse("000000010000000000000001", 0, &tli, &segno), "parse: seg size 0");
}

static void
test_header(void)
{
	uint8_t		raw[64];
	PgbrWalHeader h;
	PgbrError	err;
	const char *name = "000000010000000000000003";

	test_wal_long_header(raw, 0xD110, 0x0002, 1, 0x3000000, SYSID, 16 * MB, 8192);
	{
		static const uint8_t head[16] = {0x10, 0xD1, 0x02, 0x00, 0x01, 0, 0, 0,
		0x00, 0x00, 0x00, 0x03, 0, 0, 0, 0};

		is_mem(raw, head, 16, "synthetic header: little-endian layout");
	}

	pgbr_error_init(&err);
	ok(pgbr_wal_header_parse(raw, 40, &h, &err), "parse a good header");
	ok(h.magic == 0xD110 && h.info == 0x0002 && h.tli == 1 && h.pageaddr == 0x3000000 &&
	   h.system_id == SYSID && h.seg_size == 16 * MB && h.block_size == 8192,
	   "parsed fields");
	is_int(pgbr_wal_magic_version(h.magic), 15, "magic 0xD110 is PostgreSQL 15");
	ok(pgbr_wal_header_check(&h, name, SYSID, 16 * MB, 150000, &err) && !pgbr_error_is_set(&err),
	   "check: good header for %s", name);
	ok(pgbr_wal_header_check(&h, "000000010000000000000003.partial", SYSID, 16 * MB, 150000, &err),
	   "check: good header for the .partial name");

	ok(pgbr_wal_header_parse(raw, sizeof(raw), &h, &err), "parse with more bytes than the header");

	/* other cluster */
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_check(&h, name, SYSID + 1, 16 * MB, 150000, &err), "check: other system id refused");
	is_int(err.code, PGBR_ERR_ARCHIVE_MISMATCH, "other system id: archive mismatch code");
	like(err.message, "another cluster", "other system id: message says another cluster");
	like(err.message, name, "other system id: message names the file");

	/* wrong segment size */
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_check(&h, name, SYSID, 64 * MB, 150000, &err), "check: other segment size refused");
	is_int(err.code, PGBR_ERR_ARCHIVE_MISMATCH, "segment size: archive mismatch code");
	like(err.message, "segment size", "segment size: message says so");

	/* pageaddr does not match the name */
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_check(&h, "000000010000000000000004", SYSID, 16 * MB, 150000, &err),
	   "check: pageaddr of segment 3 under the name of segment 4 refused");
	ok(pgbr_error_is_set(&err) && strstr(err.message, "000000010000000000000004") != NULL,
	   "pageaddr mismatch: message names the file");

	test_wal_long_header(raw, 0xD110, 0x0002, 1, 0x3000000 + 8192, SYSID, 16 * MB, 8192);
	pgbr_error_init(&err);
	ok(pgbr_wal_header_parse(raw, 40, &h, &err) &&
	   !pgbr_wal_header_check(&h, name, SYSID, 16 * MB, 150000, &err),
	   "check: pageaddr inside the segment refused");

	test_wal_long_header(raw, 0xD110, 0x0002, 1, UINT64_C(0x103000000), SYSID, 16 * MB, 8192);
	pgbr_error_init(&err);
	ok(pgbr_wal_header_parse(raw, 40, &h, &err) &&
	   !pgbr_wal_header_check(&h, name, SYSID, 16 * MB, 150000, &err),
	   "check: pageaddr differing only in the high 32 bits refused");
	pgbr_error_init(&err);
	ok(pgbr_wal_header_check(&h, "000000010000000100000003", SYSID, 16 * MB, 150000, &err),
	   "check: high pageaddr 1/3000000 matches 000000010000000100000003");

	/* timeline does not match the name */
	test_wal_long_header(raw, 0xD110, 0x0002, 2, 0x3000000, SYSID, 16 * MB, 8192);
	pgbr_error_init(&err);
	ok(pgbr_wal_header_parse(raw, 40, &h, &err) &&
	   !pgbr_wal_header_check(&h, name, SYSID, 16 * MB, 150000, &err),
	   "check: timeline 2 under a timeline 1 name refused");

	/* name that is not a segment */
	test_wal_long_header(raw, 0xD110, 0x0002, 1, 0x3000000, SYSID, 16 * MB, 8192);
	pgbr_wal_header_parse(raw, 40, &h, &err);
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_check(&h, "00000001.history", SYSID, 16 * MB, 150000, &err),
	   "check: a history name refused");

	/* 1 MB segments */
	test_wal_long_header(raw, 0xD116, 0x0006, 1, 0x300000, SYSID, 1 * MB, 8192);
	pgbr_error_init(&err);
	ok(pgbr_wal_header_parse(raw, 40, &h, &err) &&
	   pgbr_wal_header_check(&h, name, SYSID, 1 * MB, 170000, &err),
	   "1MB segments: segment 3 starts at 0/300000 (other info bits ignored)");
	is_int(pgbr_wal_magic_version(h.magic), 17, "magic 0xD116 is PostgreSQL 17");
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_check(&h, name, SYSID, 1 * MB, 150000, &err) &&
	   err.code == PGBR_ERR_ARCHIVE_MISMATCH && strstr(err.message, "magic") != NULL,
	   "PostgreSQL 17 WAL refused by a PostgreSQL 15 stanza");
	pgbr_error_init(&err);
	ok(pgbr_wal_header_check(&h, name, SYSID, 1 * MB, 0, &err),
	   "pg_version 0 skips the magic check");
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_check(&h, name, SYSID, 16 * MB, 150000, &err),
	   "1MB header checked against a 16MB stanza refused");

	/* short header */
	test_wal_long_header(raw, 0xD110, 0x0002, 1, 0x3000000, SYSID, 16 * MB, 8192);
	for (size_t len = 0; len < 40; len += 13)
	{
		pgbr_error_init(&err);
		ok(!pgbr_wal_header_parse(raw, len, &h, &err) && err.code == PGBR_ERR_FORMAT,
		   "parse: %zu bytes refused", len);
	}
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_parse(raw, 39, &h, &err), "parse: 39 bytes refused");
	like(err.message, "39", "short header: message gives the length");

	/* missing long-header flag */
	test_wal_long_header(raw, 0xD110, 0x0000, 1, 0x3000000, SYSID, 16 * MB, 8192);
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_parse(raw, 40, &h, &err) && err.code == PGBR_ERR_FORMAT,
	   "parse: header without XLP_LONG_HEADER refused");
	like(err.message, "long page header", "no long header: message says so");
	test_wal_long_header(raw, 0xD110, 0x0005, 1, 0x3000000, SYSID, 16 * MB, 8192);
	pgbr_error_init(&err);
	ok(!pgbr_wal_header_parse(raw, 40, &h, &err), "parse: other info bits without 0x0002 refused");

	is_int(pgbr_wal_magic_version(0xD113), 16, "magic 0xD113 is 16");
	is_int(pgbr_wal_magic_version(0xD118), 18, "magic 0xD118 is 18");
	is_int(pgbr_wal_magic_version(0xD111), 0, "magic 0xD111 unknown");
	is_int(pgbr_wal_magic_version(0), 0, "magic 0 unknown");
}

static void
test_lsn(void)
{
	static const struct
	{
		const char *s;
		uint64_t	lsn;
	}			good[] = {
		{"0/0", 0},
		{"0/1", 1},
		{"16/B374D848", UINT64_C(0x16B374D848)},
		{"16/b374d848", UINT64_C(0x16B374D848)},
		{"1/0", UINT64_C(0x100000000)},
		{"FFFFFFFF/FFFFFFFF", UINT64_MAX},
		{"00000001/00000002", UINT64_C(0x100000002)},
	};
	static const char *const bad[] = {
		"", "/", "0", "0/", "/0", "1/2/3", "1//2", "x/1", "1/x", "1/2x", "1/2 ", "G/0",
		"1:2", "1.2",
		/* what PostgreSQL's pg_lsn refuses and scanf would take */
		" 1/2", "1/ 2", "-1/0", "1/-1", "+1/2", "0x1/0", "1/0x2",
		"100000000/0", "0/100000000", "123456789/1",
	};

	for (size_t i = 0; i < PGBR_LENGTHOF(good); i++)
	{
		uint64_t	lsn = 12345;

		ok(pgbr_lsn_parse(good[i].s, &lsn) && lsn == good[i].lsn, "pgbr_lsn_parse(\"%s\")",
		   good[i].s);
	}
	for (size_t i = 0; i < PGBR_LENGTHOF(bad); i++)
	{
		uint64_t	lsn = 0;
		bool		r = pgbr_lsn_parse(bad[i], &lsn);

		ok(!r, "pgbr_lsn_parse(\"%s\") refused", bad[i]);
		if (r)
			diag("accepted as %X/%X", (unsigned) (lsn >> 32), (unsigned) lsn);
	}
}

int
main(void)
{
	test_kind();
	test_segments();
	test_header();
	test_lsn();
	return done_testing();
}
