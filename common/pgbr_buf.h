/*
 * pgbr_buf.h
 *		A growable byte buffer with big-endian encoders, and a bounds-checked
 *		reader for decoding untrusted bytes (network frames, repository files).
 */
#ifndef PGBR_BUF_H
#define PGBR_BUF_H

#include "pgbr_error.h"

typedef struct PgbrBuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} PgbrBuf;

extern void pgbr_buf_init(PgbrBuf *buf);
extern void pgbr_buf_reset(PgbrBuf *buf);	/* len = 0, keeps memory */
extern void pgbr_buf_release(PgbrBuf *buf);	/* frees memory */
extern void pgbr_buf_reserve(PgbrBuf *buf, size_t extra);
extern void pgbr_buf_put(PgbrBuf *buf, const void *data, size_t len);
extern void pgbr_buf_put_u8(PgbrBuf *buf, uint8_t v);
extern void pgbr_buf_put_u16(PgbrBuf *buf, uint16_t v);
extern void pgbr_buf_put_u32(PgbrBuf *buf, uint32_t v);
extern void pgbr_buf_put_u64(PgbrBuf *buf, uint64_t v);
/* string: u32 length + bytes (no terminator); NULL is written as "" */
extern void pgbr_buf_put_str(PgbrBuf *buf, const char *s);
extern void pgbr_buf_printf(PgbrBuf *buf, const char *fmt,...) PGBR_PRINTF(2, 3);

/*
 * Reader over bytes it does not own.  Every get checks the remaining
 * length first; after the first failure `failed` is set and every later get
 * returns zero values, so a decoder checks once at the end.
 */
typedef struct PgbrReader
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	bool		failed;
} PgbrReader;

extern void pgbr_reader_init(PgbrReader *r, const void *data, size_t len);
extern uint8_t pgbr_reader_u8(PgbrReader *r);
extern uint16_t pgbr_reader_u16(PgbrReader *r);
extern uint32_t pgbr_reader_u32(PgbrReader *r);
extern uint64_t pgbr_reader_u64(PgbrReader *r);
extern bool pgbr_reader_bytes(PgbrReader *r, void *out, size_t len);

/*
 * Copies a string of at most maxlen bytes into out (size maxlen + 1),
 * NUL-terminated.  A longer string or one containing a NUL byte fails.
 */
extern bool pgbr_reader_str(PgbrReader *r, char *out, size_t maxlen);
/* true when everything was consumed and nothing failed */
extern bool pgbr_reader_done(const PgbrReader *r);

/* big-endian helpers for fixed headers */
static inline void
pgbr_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static inline uint32_t
pgbr_get_be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

#endif							/* PGBR_BUF_H */
