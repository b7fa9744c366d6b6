/*
 * pgbr_buf.c
 *		Growable buffer and bounds-checked reader.
 */
#include "pgbr_buf.h"

#include <stdarg.h>
#include <stdio.h>

void
pgbr_buf_init(PgbrBuf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

void
pgbr_buf_reset(PgbrBuf *buf)
{
	buf->len = 0;
}

void
pgbr_buf_release(PgbrBuf *buf)
{
	pgbr_free(buf->data);
	pgbr_buf_init(buf);
}

void
pgbr_buf_reserve(PgbrBuf *buf, size_t extra)
{
	size_t		need = buf->len + extra + 1;	/* room for a terminator */

	if (need <= buf->cap)
		return;
	if (buf->cap == 0)
		buf->cap = 256;
	while (buf->cap < need)
		buf->cap *= 2;
	buf->data = pgbr_realloc(buf->data, buf->cap);
}

void
pgbr_buf_put(PgbrBuf *buf, const void *data, size_t len)
{
	pgbr_buf_reserve(buf, len);
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = 0;
}

void
pgbr_buf_put_u8(PgbrBuf *buf, uint8_t v)
{
	pgbr_buf_put(buf, &v, 1);
}

void
pgbr_buf_put_u16(PgbrBuf *buf, uint16_t v)
{
	uint8_t		b[2] = {(uint8_t) (v >> 8), (uint8_t) v};

	pgbr_buf_put(buf, b, 2);
}

void
pgbr_buf_put_u32(PgbrBuf *buf, uint32_t v)
{
	uint8_t		b[4];

	pgbr_put_be32(b, v);
	pgbr_buf_put(buf, b, 4);
}

void
pgbr_buf_put_u64(PgbrBuf *buf, uint64_t v)
{
	pgbr_buf_put_u32(buf, (uint32_t) (v >> 32));
	pgbr_buf_put_u32(buf, (uint32_t) v);
}

void
pgbr_buf_put_str(PgbrBuf *buf, const char *s)
{
	size_t		len = s ? strlen(s) : 0;

	pgbr_buf_put_u32(buf, (uint32_t) len);
	pgbr_buf_put(buf, s, len);
}

void
pgbr_buf_printf(PgbrBuf *buf, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	pgbr_buf_reserve(buf, (size_t) n);
	va_start(ap, fmt);
	vsnprintf((char *) buf->data + buf->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t) n;
}

void
pgbr_reader_init(PgbrReader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->failed = false;
}

static bool
reader_need(PgbrReader *r, size_t n)
{
	if (r->failed || r->len - r->pos < n)
	{
		r->failed = true;
		return false;
	}
	return true;
}

uint8_t
pgbr_reader_u8(PgbrReader *r)
{
	if (!reader_need(r, 1))
		return 0;
	return r->data[r->pos++];
}

uint16_t
pgbr_reader_u16(PgbrReader *r)
{
	uint16_t	v;

	if (!reader_need(r, 2))
		return 0;
	v = (uint16_t) ((r->data[r->pos] << 8) | r->data[r->pos + 1]);
	r->pos += 2;
	return v;
}

uint32_t
pgbr_reader_u32(PgbrReader *r)
{
	uint32_t	v;

	if (!reader_need(r, 4))
		return 0;
	v = pgbr_get_be32(r->data + r->pos);
	r->pos += 4;
	return v;
}

uint64_t
pgbr_reader_u64(PgbrReader *r)
{
	uint64_t	hi,
				lo;

	if (!reader_need(r, 8))
		return 0;
	hi = pgbr_reader_u32(r);
	lo = pgbr_reader_u32(r);
	return (hi << 32) | lo;
}

bool
pgbr_reader_bytes(PgbrReader *r, void *out, size_t len)
{
	if (!reader_need(r, len))
	{
		memset(out, 0, len);
		return false;
	}
	memcpy(out, r->data + r->pos, len);
	r->pos += len;
	return true;
}

bool
pgbr_reader_str(PgbrReader *r, char *out, size_t maxlen)
{
	uint32_t	len = pgbr_reader_u32(r);

	out[0] = '\0';
	if (r->failed)
		return false;
	if (len > maxlen || !reader_need(r, len) ||
		memchr(r->data + r->pos, '\0', len) != NULL)
	{
		r->failed = true;
		return false;
	}
	memcpy(out, r->data + r->pos, len);
	out[len] = '\0';
	r->pos += len;
	return true;
}

bool
pgbr_reader_done(const PgbrReader *r)
{
	return !r->failed && r->pos == r->len;
}
