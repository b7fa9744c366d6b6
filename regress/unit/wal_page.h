/*
 * wal_page.h
 *		For tests and fuzzing only: the 40-byte long page header that starts
 *		a WAL segment, built byte by byte in PostgreSQL's little-endian
 *		layout (xlp_magic, xlp_info, xlp_tli, xlp_pageaddr, xlp_rem_len,
 *		xlp_sysid, xlp_seg_size, xlp_xlog_blcksz), so that what pgbr parses
 *		is checked against an independent construction.
 */
#ifndef PGBR_TEST_WAL_PAGE_H
#define PGBR_TEST_WAL_PAGE_H

#include <stdint.h>
#include <string.h>

#define TEST_XLP_LONG_HEADER	0x0002
#define TEST_WAL_MAGIC_PG15		0xD110

static inline void
test_wal_long_header(uint8_t h[40], uint16_t magic, uint16_t info, uint32_t tli,
					 uint64_t pageaddr, uint64_t sysid, uint32_t seg_size, uint32_t blcksz)
{
	memset(h, 0, 40);
	h[0] = (uint8_t) magic;
	h[1] = (uint8_t) (magic >> 8);
	h[2] = (uint8_t) info;
	h[3] = (uint8_t) (info >> 8);
	for (int i = 0; i < 4; i++)
		h[4 + i] = (uint8_t) (tli >> (8 * i));
	for (int i = 0; i < 8; i++)
		h[8 + i] = (uint8_t) (pageaddr >> (8 * i));
	/* 16: xlp_rem_len, left 0 */
	for (int i = 0; i < 8; i++)
		h[24 + i] = (uint8_t) (sysid >> (8 * i));
	for (int i = 0; i < 4; i++)
		h[32 + i] = (uint8_t) (seg_size >> (8 * i));
	for (int i = 0; i < 4; i++)
		h[36 + i] = (uint8_t) (blcksz >> (8 * i));
}

#endif							/* PGBR_TEST_WAL_PAGE_H */
