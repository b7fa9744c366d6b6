/*
 * pgbr_sink.c
 *		Generic pipeline stages: checksum, buffer, file descriptor, peek.
 *		Compression stages are in pgbr_zstd.c.
 */
#include "pgbr_sink.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

bool
pgbr_sink_write(PgbrSink *sink, const void *data, size_t len, PgbrError *err)
{
	if (sink == NULL || len == 0)
		return true;
	sink->bytes_in += len;
	return sink->write(sink, data, len, err);
}

bool
pgbr_sink_finish(PgbrSink *sink, PgbrError *err)
{
	if (sink == NULL)
		return true;
	if (sink->finish)
		return sink->finish(sink, err);
	return pgbr_sink_finish(sink->next, err);
}

void
pgbr_sink_free(PgbrSink *sink)
{
	if (sink == NULL)
		return;
	if (sink->destroy)
		sink->destroy(sink);
	pgbr_free(sink);
}

void
pgbr_sink_free_chain(PgbrSink *sink)
{
	while (sink)
	{
		PgbrSink   *next = sink->next;

		pgbr_sink_free(sink);
		sink = next;
	}
}

/* ---- SHA-256 ---- */

typedef struct ShaSink
{
	PgbrSink	base;
	PgbrSha256 *ctx;			/* plain SHA-256, or */
	PgbrFileSum *fs;			/* the checksum of a file in a backup */
	uint8_t		result[PGBR_SHA256_LEN];
} ShaSink;

static bool
sha_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	ShaSink    *s = (ShaSink *) self;

	if (s->fs)
		pgbr_filesum_update(s->fs, data, len);
	else
		pgbr_sha256_update(s->ctx, data, len);
	return pgbr_sink_write(self->next, data, len, err);
}

static bool
sha_finish(PgbrSink *self, PgbrError *err)
{
	ShaSink    *s = (ShaSink *) self;

	if (s->fs)
		pgbr_filesum_final(s->fs, s->result);
	else
		pgbr_sha256_final(s->ctx, s->result);
	return pgbr_sink_finish(self->next, err);
}

static void
sha_destroy(PgbrSink *self)
{
	pgbr_sha256_free(((ShaSink *) self)->ctx);
	pgbr_filesum_free(((ShaSink *) self)->fs);
}

/* file: the checksum of a file in a backup, else plain SHA-256 */
static PgbrSink *
sha_sink_create(PgbrSink *next, bool file, PgbrError *err)
{
	ShaSink    *s = pgbr_malloc(sizeof(ShaSink));

	if (s == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	memset(s, 0, sizeof(ShaSink));
	s->base.write = sha_write;
	s->base.finish = sha_finish;
	s->base.destroy = sha_destroy;
	s->base.next = next;
	if (file ? (s->fs = pgbr_filesum_create(err)) == NULL :
		(s->ctx = pgbr_sha256_create(err)) == NULL)
	{
		pgbr_free(s);
		return NULL;
	}
	return &s->base;
}

PgbrSink *
pgbr_sink_sha256_create(PgbrSink *next, PgbrError *err)
{
	return sha_sink_create(next, false, err);
}

PgbrSink *
pgbr_sink_filesum_create(PgbrSink *next, PgbrError *err)
{
	return sha_sink_create(next, true, err);
}

void
pgbr_sink_sha256_result(PgbrSink *sink, uint8_t out[PGBR_SHA256_LEN])
{
	memcpy(out, ((ShaSink *) sink)->result, PGBR_SHA256_LEN);
}

/* ---- buffer ---- */

typedef struct BufSink
{
	PgbrSink	base;
	PgbrBuf    *buf;
} BufSink;

static bool
buf_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	(void) err;
	pgbr_buf_put(((BufSink *) self)->buf, data, len);
	return true;
}

PgbrSink *
pgbr_sink_buf_create(PgbrBuf *buf)
{
	BufSink    *s = pgbr_malloc(sizeof(BufSink));

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(BufSink));
	s->base.write = buf_write;
	s->buf = buf;
	return &s->base;
}

/* ---- file descriptor ---- */

typedef struct FdSink
{
	PgbrSink	base;
	int			fd;
	char		name[1024];
} FdSink;

static bool
fd_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	FdSink	   *s = (FdSink *) self;

	while (len > 0)
	{
		ssize_t		n = write(s->fd, data, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE,
									"could not write file \"%s\"", s->name);
		}
		data += n;
		len -= (size_t) n;
	}
	return true;
}

PgbrSink *
pgbr_sink_fd_create(int fd, const char *name)
{
	FdSink	   *s = pgbr_malloc(sizeof(FdSink));

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(FdSink));
	s->base.write = fd_write;
	s->fd = fd;
	snprintf(s->name, sizeof(s->name), "%s", name);
	return &s->base;
}

/* ---- peek ---- */

typedef struct PeekSink
{
	PgbrSink	base;
	size_t		want;
	PgbrBuf		seen;
} PeekSink;

static bool
peek_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	PeekSink   *s = (PeekSink *) self;

	if (s->seen.len < s->want)
	{
		size_t		n = s->want - s->seen.len;

		pgbr_buf_put(&s->seen, data, n < len ? n : len);
	}
	return pgbr_sink_write(self->next, data, len, err);
}

static void
peek_destroy(PgbrSink *self)
{
	pgbr_buf_release(&((PeekSink *) self)->seen);
}

PgbrSink *
pgbr_sink_peek_create(size_t want, PgbrSink *next)
{
	PeekSink   *s = pgbr_malloc(sizeof(PeekSink));

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(PeekSink));
	s->base.write = peek_write;
	s->base.destroy = peek_destroy;
	s->base.next = next;
	s->want = want;
	pgbr_buf_init(&s->seen);
	return &s->base;
}

const uint8_t *
pgbr_sink_peek_data(PgbrSink *sink, size_t *len)
{
	PeekSink   *s = (PeekSink *) sink;

	*len = s->seen.len;
	return s->seen.data;
}
