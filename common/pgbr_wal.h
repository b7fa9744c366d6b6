/*
 * pgbr_wal.h
 *		WAL file names and the WAL segment header, without PostgreSQL
 *		headers (the layout is stable across 15-18, see pg-internals.md).
 */
#ifndef PGBR_WAL_H
#define PGBR_WAL_H

#include "pgbr_error.h"

#define PGBR_WAL_SEG_NAME_LEN	24
#define PGBR_WAL_LONG_HEADER_SIZE	40

typedef enum PgbrWalKind
{
	PGBR_WAL_INVALID = 0,
	PGBR_WAL_SEGMENT,			/* 000000010000000000000003 */
	PGBR_WAL_PARTIAL,			/* 000000010000000000000003.partial */
	PGBR_WAL_BACKUP,			/* 000000010000000000000003.00000028.backup */
	PGBR_WAL_HISTORY			/* 00000002.history */
} PgbrWalKind;

/* classifies a name the archiver or restore_command passes; no paths */
extern PgbrWalKind pgbr_wal_kind(const char *name);

/* true for kinds whose content starts with a WAL page header */
static inline bool
pgbr_wal_kind_has_header(PgbrWalKind k)
{
	return k == PGBR_WAL_SEGMENT || k == PGBR_WAL_PARTIAL;
}

typedef struct PgbrWalHeader
{
	uint16_t	magic;
	uint16_t	info;
	uint32_t	tli;
	uint64_t	pageaddr;
	uint64_t	system_id;
	uint32_t	seg_size;
	uint32_t	block_size;
} PgbrWalHeader;

/* parses the long page header at the start of a segment (little-endian) */
extern bool pgbr_wal_header_parse(const uint8_t *data, size_t len, PgbrWalHeader *h,
								  PgbrError *err);

/* PostgreSQL major version (15, 16, ...) of a XLOG_PAGE_MAGIC, 0 if unknown */
extern int	pgbr_wal_magic_version(uint16_t magic);

/*
 * Checks that a segment header belongs to the cluster (system id, segment
 * size, page magic of its major version unless pg_version is 0) and to the
 * file name (timeline, position).  `name` is the segment or partial name.
 */
extern bool pgbr_wal_header_check(const PgbrWalHeader *h, const char *name,
								  uint64_t system_id, uint32_t seg_size, uint32_t pg_version,
								  PgbrError *err);

/* timeline and segment number from a segment name */
extern bool pgbr_wal_segment_parse(const char *name, uint32_t seg_size, uint32_t *tli,
								   uint64_t *segno);
extern void pgbr_wal_segment_name(char *out, uint32_t tli, uint64_t segno, uint32_t seg_size);

/* segment name holding an LSN "X/X" string; false if unparsable */
extern bool pgbr_lsn_parse(const char *s, uint64_t *lsn);

#endif							/* PGBR_WAL_H */
