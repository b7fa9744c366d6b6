/*
 * fuzz_wal.c
 *		libFuzzer target: WAL file names, LSNs and the segment header.
 *
 *		Input: one byte choosing the segment size (a power of two from 1 MB
 *		to 1 GB, or any non-zero 32-bit value read from the input), a name
 *		up to the first newline, then the first bytes of the WAL file.  The
 *		name goes through pgbr_wal_kind (the only check between a client's
 *		WAL name and a repository path), pgbr_wal_segment_parse (round trip
 *		through pgbr_wal_segment_name) and pgbr_lsn_parse (round trip
 *		through "%X/%X"); the bytes through pgbr_wal_header_parse and
 *		pgbr_wal_header_check, with the system identifier the header itself
 *		carries or another one, and the major version its page magic says
 *		(or no version check).
 */
#include "fuzz_common.h"

#include <inttypes.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzIn		in = {data, size};
	uint8_t		sel = fuzz_u8(&in);
	uint32_t	seg_size;
	const uint8_t *nl;
	char	   *name;
	uint8_t    *head;
	size_t		hlen;
	PgbrWalKind kind;
	uint32_t	tli;
	uint64_t	segno,
				lsn;
	PgbrWalHeader h;
	PgbrError	err;

	if (sel & 0x80)
	{
		seg_size = fuzz_u32(&in);
		if (seg_size == 0)
			seg_size = 1;
	}
	else
		seg_size = UINT32_C(1) << (20 + (sel % 11));

	nl = memchr(in.p, '\n', in.left);
	name = fuzz_str(&in, nl ? (size_t) (nl - in.p) : in.left);
	(void) fuzz_u8(&in);		/* the newline */
	hlen = in.left;
	head = malloc(hlen ? hlen : 1);
	memcpy(head, in.p, hlen);

	/* names */
	kind = pgbr_wal_kind(name);
	fuzz_check_wal_name(name);
	if (pgbr_wal_segment_parse(name, seg_size, &tli, &segno))
	{
		char		again[25];

		pgbr_wal_segment_name(again, tli, segno, seg_size);
		FUZZ_CHECK(strncmp(again, name, 24) == 0,
				   "segment name round trip: \"%.24s\" -> tli %u segno %" PRIu64 " -> \"%s\" (segment size %u)",
				   name, tli, segno, again, seg_size);
	}
	else if (kind == PGBR_WAL_SEGMENT && (seg_size & (seg_size - 1)) == 0 &&
			 seg_size >= (1u << 20))
	{
		/* a valid segment name fails only when its segment is out of range */
		uint32_t	seg = (uint32_t) strtoul(name + 16, NULL, 16);

		FUZZ_CHECK(seg >= (uint32_t) (UINT64_C(0x100000000) / seg_size),
				   "segment \"%s\" refused for segment size %u", name, seg_size);
	}
	if (pgbr_lsn_parse(name, &lsn))
	{
		char		again[32];
		uint64_t	lsn2;

		snprintf(again, sizeof(again), "%X/%X", (uint32_t) (lsn >> 32), (uint32_t) lsn);
		FUZZ_CHECK(pgbr_lsn_parse(again, &lsn2) && lsn2 == lsn, "LSN round trip of \"%s\"", name);
		FUZZ_CHECK(strlen(name) <= 17 && strchr(name, '/') != NULL, "LSN \"%s\" accepted", name);
	}

	/* segment header */
	pgbr_error_init(&err);
	if (pgbr_wal_header_parse(head, hlen, &h, &err))
	{
		uint64_t	sysid = (sel & 0x40) ? h.system_id : h.system_id ^ 1;
		int			major = pgbr_wal_magic_version(h.magic);
		uint32_t	pg_version = (sel & 0x20) ? 0 : (uint32_t) (major ? major : 16) * 10000 + 4;

		FUZZ_CHECK(hlen >= PGBR_WAL_LONG_HEADER_SIZE, "header parsed from %zu bytes", hlen);
		pgbr_error_init(&err);
		if (pgbr_wal_header_check(&h, name, sysid, seg_size, pg_version, &err))
		{
			FUZZ_CHECK(pg_version == 0 || major == (int) (pg_version / 10000),
					   "page magic 0x%04X accepted for PostgreSQL %u", h.magic, pg_version);
			FUZZ_CHECK(h.system_id == sysid && h.seg_size == seg_size,
					   "header of another cluster accepted");
			FUZZ_CHECK(pgbr_wal_segment_parse(name, seg_size, &tli, &segno) && h.tli == tli &&
					   h.pageaddr == segno * (uint64_t) seg_size,
					   "header for another position accepted for \"%s\"", name);
		}
		else
			FUZZ_CHECK(pgbr_error_is_set(&err), "header check failed without an error");
	}
	else
		FUZZ_CHECK(err.code == PGBR_ERR_FORMAT, "header parse code %d", err.code);

	free(head);
	free(name);
	return 0;
}
