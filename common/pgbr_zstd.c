/*
 * pgbr_zstd.c
 *		Streaming zstd compression and decompression stages for the
 *		pipeline of pgbr_sink.h.
 */
#include "pgbr_sink.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>

/* ZSTD_c_stableInBuffer (in libzstd since 1.4.6; refused by older ones) */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

typedef struct ZstdSink
{
	PgbrSink	base;
	ZSTD_CCtx  *cctx;
	ZSTD_DCtx  *dctx;
	uint8_t    *out;
	size_t		outsize;
	bool		frame_done;		/* decompress: last frame fully decoded */
	bool		any_input;		/* compress: since the frame began */
	bool		threaded;		/* compress: zstd may start worker threads */
	/* compress, frame of announced size: its input, kept in one piece */
	bool		contiguous;
	uint8_t    *whole;
	size_t		whole_cap;
	ZSTD_inBuffer whole_in;
} ZstdSink;

static bool
zc_out(ZstdSink *s, ZSTD_inBuffer *in, ZSTD_EndDirective op, size_t *rc, PgbrError *err)
{
	ZSTD_outBuffer out = {s->out, s->outsize, 0};

	*rc = ZSTD_compressStream2(s->cctx, &out, in, op);
	if (ZSTD_isError(*rc))
		return pgbr_error_set(err, PGBR_ERR_COMPRESS, "zstd compression failed: %s",
							  ZSTD_getErrorName(*rc));
	return out.pos == 0 || pgbr_sink_write(s->base.next, s->out, out.pos, err);
}

static bool
zc_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	ZstdSink   *s = (ZstdSink *) self;
	ZSTD_inBuffer in = {data, len, 0};

	if (s->contiguous)
	{
		size_t		rc;

		if (len > s->whole_cap - s->whole_in.size)
			return pgbr_error_set(err, PGBR_ERR_COMPRESS,
								  "more data to compress than announced (%zu bytes)",
								  s->whole_cap);
		memcpy(s->whole + s->whole_in.size, data, len);
		s->whole_in.size += len;
		/* zstd takes only whole blocks from a stable buffer, and says it took all */
		while (s->whole_in.pos < s->whole_in.size)
			if (!zc_out(s, &s->whole_in, ZSTD_e_continue, &rc, err))
				return false;
		return true;
	}
	while (in.pos < in.size)
	{
		ZSTD_outBuffer out = {s->out, s->outsize, 0};
		size_t		rc;

		if (s->threaded && !s->any_input)
		{
			sigset_t	all,
						old;

			/*
			 * zstd starts its worker threads on the first call of a frame
			 * (of the first frame, or after a change of their number).
			 * They must never run a signal handler of the host process (a
			 * PostgreSQL backend's handlers expect its main thread), and
			 * new threads inherit the signal mask of their creator: block
			 * everything for the duration of this call.
			 */
			sigfillset(&all);
			pthread_sigmask(SIG_BLOCK, &all, &old);
			rc = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_continue);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			s->any_input = true;
		}
		else
			rc = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_continue);

		if (ZSTD_isError(rc))
			return pgbr_error_set(err, PGBR_ERR_COMPRESS, "zstd compression failed: %s",
								  ZSTD_getErrorName(rc));
		if (out.pos > 0 && !pgbr_sink_write(self->next, s->out, out.pos, err))
			return false;
	}
	return true;
}

static bool
zc_finish(PgbrSink *self, PgbrError *err)
{
	ZstdSink   *s = (ZstdSink *) self;
	ZSTD_inBuffer in = {NULL, 0, 0};
	size_t		rc;

	if (s->contiguous)
	{
		do
		{
			if (!zc_out(s, &s->whole_in, ZSTD_e_end, &rc, err))
				return false;
		} while (rc != 0);
		return pgbr_sink_finish(self->next, err);
	}
	do
	{
		ZSTD_outBuffer out = {s->out, s->outsize, 0};

		rc = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_end);
		if (ZSTD_isError(rc))
			return pgbr_error_set(err, PGBR_ERR_COMPRESS, "zstd compression failed: %s",
								  ZSTD_getErrorName(rc));
		if (out.pos > 0 && !pgbr_sink_write(self->next, s->out, out.pos, err))
			return false;
	} while (rc != 0);
	return pgbr_sink_finish(self->next, err);
}

static void
zstd_destroy(PgbrSink *self)
{
	ZstdSink   *s = (ZstdSink *) self;

	ZSTD_freeCCtx(s->cctx);
	ZSTD_freeDCtx(s->dctx);
	pgbr_free(s->out);
	pgbr_free(s->whole);
}

static ZstdSink *
zstd_sink_alloc(size_t outsize, PgbrSink *next, PgbrError *err)
{
	ZstdSink   *s = pgbr_malloc(sizeof(ZstdSink));

	if (s == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	memset(s, 0, sizeof(ZstdSink));
	s->base.destroy = zstd_destroy;
	s->base.next = next;
	s->outsize = outsize;
	s->out = pgbr_malloc(outsize);
	if (s->out == NULL)
	{
		pgbr_free(s);
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	return s;
}

PgbrSink *
pgbr_sink_zstd_compress_create(int level, int workers, PgbrSink *next, PgbrError *err)
{
	ZstdSink   *s = zstd_sink_alloc(ZSTD_CStreamOutSize(), next, err);

	if (s == NULL)
		return NULL;
	s->base.write = zc_write;
	s->base.finish = zc_finish;
	s->cctx = ZSTD_createCCtx();
	if (s->cctx == NULL ||
		ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level)) ||
		ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1)))
	{
		pgbr_sink_free(&s->base);
		pgbr_error_set(err, PGBR_ERR_COMPRESS, "could not create zstd compressor at level %d",
					   level);
		return NULL;
	}
	/* the strongest levels would use windows a bounded reader refuses */
	if (level > 19)
		(void) ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_windowLog, PGBR_ZSTD_WINDOW_LOG_MAX);
	/* a libzstd built without threads refuses this: compress on one then */
	if (workers > 0)
		s->threaded = !ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_nbWorkers, workers));
	return &s->base;
}

void
pgbr_sink_zstd_compress_restart(PgbrSink *sink, PgbrSink *next)
{
	ZstdSink   *s = (ZstdSink *) sink;

	/* keeps the parameters, the allocated tables and zstd's threads */
	(void) ZSTD_CCtx_reset(s->cctx, ZSTD_reset_session_only);
	if (s->contiguous)
		(void) ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_stableInBuffer, 0);
	s->contiguous = false;
	s->any_input = false;
	s->base.next = next;
	s->base.bytes_in = 0;
}

void
pgbr_sink_zstd_compress_expect(PgbrSink *sink, uint64_t size)
{
	ZstdSink   *s = (ZstdSink *) sink;

	if (s->any_input || s->threaded || size > PGBR_ZSTD_WHOLE_MAX)
		return;
	/* the window stays that of the level: no larger than the source anyway */
	if (ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(s->cctx, size)))
		return;
	if (size > s->whole_cap)
	{
		uint8_t    *p = pgbr_malloc(size > 0 ? (size_t) size : 1);

		if (p == NULL)
			return;
		pgbr_free(s->whole);
		s->whole = p;
		s->whole_cap = (size_t) size;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_stableInBuffer, 1)))
		return;
	s->contiguous = true;
	s->whole_in.src = s->whole;
	s->whole_in.size = 0;
	s->whole_in.pos = 0;
}

bool
pgbr_sink_zstd_compress_job_size(PgbrSink *sink, size_t bytes)
{
	ZstdSink   *s = (ZstdSink *) sink;

	if (!s->threaded || bytes > INT_MAX ||
		ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_jobSize, (int) bytes)))
		return false;
	/* 1: no overlap; each job starts without its predecessor's tail */
	(void) ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_overlapLog, 1);
	return true;
}

static bool
zd_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	ZstdSink   *s = (ZstdSink *) self;
	ZSTD_inBuffer in = {data, len, 0};

	s->any_input = true;
	while (in.pos < in.size)
	{
		ZSTD_outBuffer out = {s->out, s->outsize, 0};
		size_t		rc = ZSTD_decompressStream(s->dctx, &out, &in);

		if (ZSTD_isError(rc))
			return pgbr_error_set(err, PGBR_ERR_FORMAT,
								  "zstd data is corrupt: %s", ZSTD_getErrorName(rc));
		s->frame_done = (rc == 0);
		if (out.pos > 0 && !pgbr_sink_write(self->next, s->out, out.pos, err))
			return false;
	}

	/*
	 * Drain output still buffered in the decoder: with a full output
	 * buffer, zstd may hold back data even after consuming all input.
	 */
	for (;;)
	{
		ZSTD_outBuffer out = {s->out, s->outsize, 0};
		ZSTD_inBuffer none = {NULL, 0, 0};
		size_t		rc = ZSTD_decompressStream(s->dctx, &out, &none);

		if (ZSTD_isError(rc))
			return pgbr_error_set(err, PGBR_ERR_FORMAT,
								  "zstd data is corrupt: %s", ZSTD_getErrorName(rc));
		if (out.pos == 0)
			break;
		s->frame_done = (rc == 0);
		if (!pgbr_sink_write(self->next, s->out, out.pos, err))
			return false;
	}
	return true;
}

static bool
zd_finish(PgbrSink *self, PgbrError *err)
{
	ZstdSink   *s = (ZstdSink *) self;

	if (!s->any_input || !s->frame_done)
		return pgbr_error_set(err, PGBR_ERR_FORMAT,
							  "zstd data is truncated");
	return pgbr_sink_finish(self->next, err);
}

PgbrSink *
pgbr_sink_zstd_decompress_create(PgbrSink *next, PgbrError *err)
{
	ZstdSink   *s = zstd_sink_alloc(ZSTD_DStreamOutSize(), next, err);

	if (s == NULL)
		return NULL;
	s->base.write = zd_write;
	s->base.finish = zd_finish;
	s->dctx = ZSTD_createDCtx();
	if (s->dctx == NULL)
	{
		pgbr_sink_free(&s->base);
		pgbr_error_set(err, PGBR_ERR_COMPRESS, "could not create zstd decompressor");
		return NULL;
	}
	return &s->base;
}

void
pgbr_sink_zstd_limit_window(PgbrSink *sink, int window_log)
{
	ZstdSink   *s = (ZstdSink *) sink;

	(void) ZSTD_DCtx_setParameter(s->dctx, ZSTD_d_windowLogMax, window_log);
}
