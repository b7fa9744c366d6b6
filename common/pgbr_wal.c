/*
 * pgbr_wal.c
 *		WAL names and segment headers.
 */
#include "pgbr_wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define XLP_LONG_HEADER 0x0002

static bool
all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		char		c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

PgbrWalKind
pgbr_wal_kind(const char *name)
{
	size_t		len = strlen(name);

	if (len == 24 && all_hex(name, 24))
		return PGBR_WAL_SEGMENT;
	if (len == 24 + 8 && all_hex(name, 24) && strcmp(name + 24, ".partial") == 0)
		return PGBR_WAL_PARTIAL;
	if (len == 24 + 1 + 8 + 7 && all_hex(name, 24) && name[24] == '.' &&
		all_hex(name + 25, 8) && strcmp(name + 33, ".backup") == 0)
		return PGBR_WAL_BACKUP;
	if (len == 8 + 8 && all_hex(name, 8) && strcmp(name + 8, ".history") == 0)
		return PGBR_WAL_HISTORY;
	return PGBR_WAL_INVALID;
}

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) |
		((uint32_t) p[3] << 24);
}

static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t) le32(p) | ((uint64_t) le32(p + 4) << 32);
}

bool
pgbr_wal_header_parse(const uint8_t *data, size_t len, PgbrWalHeader *h, PgbrError *err)
{
	if (len < PGBR_WAL_LONG_HEADER_SIZE)
		return pgbr_error_set(err, PGBR_ERR_FORMAT,
							  "WAL file is too short for a segment header (%zu bytes)", len);
	h->magic = le16(data);
	h->info = le16(data + 2);
	h->tli = le32(data + 4);
	h->pageaddr = le64(data + 8);
	h->system_id = le64(data + 24);
	h->seg_size = le32(data + 32);
	h->block_size = le32(data + 36);
	if ((h->info & XLP_LONG_HEADER) == 0)
		return pgbr_error_set(err, PGBR_ERR_FORMAT,
							  "WAL file does not start with a long page header");
	return true;
}

int
pgbr_wal_magic_version(uint16_t magic)
{
	switch (magic)
	{
		case 0xD110:
			return 15;
		case 0xD113:
			return 16;
		case 0xD116:
			return 17;
		case 0xD118:
			return 18;
		default:
			return 0;
	}
}

bool
pgbr_wal_segment_parse(const char *name, uint32_t seg_size, uint32_t *tli, uint64_t *segno)
{
	char		part[9];
	uint64_t	per_id;
	uint32_t	log,
				seg;

	if (seg_size == 0 || strlen(name) < 24 || !all_hex(name, 24))
		return false;
	per_id = UINT64_C(0x100000000) / seg_size;
	memcpy(part, name, 8);
	part[8] = '\0';
	*tli = (uint32_t) strtoul(part, NULL, 16);
	memcpy(part, name + 8, 8);
	log = (uint32_t) strtoul(part, NULL, 16);
	memcpy(part, name + 16, 8);
	seg = (uint32_t) strtoul(part, NULL, 16);
	if (seg >= per_id)
		return false;
	*segno = (uint64_t) log * per_id + seg;
	return true;
}

void
pgbr_wal_segment_name(char *out, uint32_t tli, uint64_t segno, uint32_t seg_size)
{
	uint64_t	per_id = UINT64_C(0x100000000) / seg_size;

	snprintf(out, 25, "%08X%08X%08X", tli, (uint32_t) (segno / per_id),
			 (uint32_t) (segno % per_id));
}

bool
pgbr_wal_header_check(const PgbrWalHeader *h, const char *name, uint64_t system_id,
					  uint32_t seg_size, uint32_t pg_version, PgbrError *err)
{
	uint32_t	tli;
	uint64_t	segno;

	if (h->system_id != system_id)
		return pgbr_error_set(err, PGBR_ERR_ARCHIVE_MISMATCH,
							  "WAL file \"%s\" is from another cluster: system identifier %" PRIu64
							  " does not match the stanza's %" PRIu64,
							  name, h->system_id, system_id);
	if (pg_version != 0 && pgbr_wal_magic_version(h->magic) != (int) (pg_version / 10000))
		return pgbr_error_set(err, PGBR_ERR_ARCHIVE_MISMATCH,
							  "WAL file \"%s\" has page magic 0x%04X, not that of PostgreSQL %u of the stanza",
							  name, h->magic, pg_version / 10000);
	if (h->seg_size != seg_size)
		return pgbr_error_set(err, PGBR_ERR_ARCHIVE_MISMATCH,
							  "WAL file \"%s\" has segment size %u, the stanza has %u",
							  name, h->seg_size, seg_size);
	if (!pgbr_wal_segment_parse(name, seg_size, &tli, &segno))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid WAL file name \"%s\"", name);
	if (h->tli != tli || h->pageaddr != segno * (uint64_t) seg_size)
		return pgbr_error_set(err, PGBR_ERR_FORMAT,
							  "WAL file \"%s\" holds timeline %u position %X/%X, not what its name says",
							  name, h->tli, (uint32_t) (h->pageaddr >> 32),
							  (uint32_t) h->pageaddr);
	return true;
}

bool
pgbr_lsn_parse(const char *s, uint64_t *lsn)
{
	uint64_t	part[2] = {0, 0};
	const char *p = s;

	/* strictly "X/X": 1-8 upper or lower hex digits on each side */
	for (int i = 0; i < 2; i++)
	{
		int			digits = 0;

		while ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') || (*p >= 'a' && *p <= 'f'))
		{
			int			d = (*p <= '9') ? *p - '0' : ((*p | 0x20) - 'a' + 10);

			part[i] = part[i] * 16 + (uint64_t) d;
			p++;
			if (++digits > 8)
				return false;
		}
		if (digits == 0)
			return false;
		if (i == 0 && *p++ != '/')
			return false;
	}
	if (*p != '\0')
		return false;
	*lsn = (part[0] << 32) | part[1];
	return true;
}
