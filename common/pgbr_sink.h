/*
 * pgbr_sink.h
 *		The push pipeline: a chain of stages, each taking bytes with write()
 *		and passing its output to the next stage.  finish() flushes a stage
 *		and then finishes the next one.  Files and WAL flow through such a
 *		chain (read -> checksum -> compress -> frames), so memory stays
 *		bounded by the chunk size whatever the file size.
 */
#ifndef PGBR_SINK_H
#define PGBR_SINK_H

#include "pgbr_buf.h"
#include "pgbr_checksum.h"

typedef struct PgbrSink PgbrSink;

struct PgbrSink
{
	bool		(*write) (PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err);
	bool		(*finish) (PgbrSink *self, PgbrError *err);
	void		(*destroy) (PgbrSink *self);
	PgbrSink   *next;			/* NULL: output is discarded */
	uint64_t	bytes_in;		/* counted by pgbr_sink_write */
};

extern bool pgbr_sink_write(PgbrSink *sink, const void *data, size_t len, PgbrError *err);
extern bool pgbr_sink_finish(PgbrSink *sink, PgbrError *err);
/* frees this stage only; _free(NULL) is a no-op */
extern void pgbr_sink_free(PgbrSink *sink);
/* frees this stage and every stage after it */
extern void pgbr_sink_free_chain(PgbrSink *sink);

/* passes data through unchanged, computing SHA-256 and counting bytes */
extern PgbrSink *pgbr_sink_sha256_create(PgbrSink *next, PgbrError *err);
/* the same with the checksum of a file in a backup (pgbr_filesum_*) */
extern PgbrSink *pgbr_sink_filesum_create(PgbrSink *next, PgbrError *err);
/* valid after finish */
extern void pgbr_sink_sha256_result(PgbrSink *sink, uint8_t out[PGBR_SHA256_LEN]);

/* zstd; workers > 0 compresses on that many threads when libzstd can */
extern PgbrSink *pgbr_sink_zstd_compress_create(int level, int workers, PgbrSink *next,
												PgbrError *err);
/*
 * Makes a compressor that may have been used (finished or not) start a new
 * frame into `next`.  The context keeps its tables and zstd its threads:
 * creating them anew for every file costs more than compressing a small
 * one, and page faults on a 16 MiB WAL segment.
 */
extern void pgbr_sink_zstd_compress_restart(PgbrSink *sink, PgbrSink *next);

/*
 * Announces, before the first write of a frame, that it will hold exactly
 * `size` bytes (more or fewer make the compression fail).  Up to
 * PGBR_ZSTD_WHOLE_MAX bytes, on one thread, the input is then kept in one
 * piece and compressed from there: zstd's streaming buffer is a ring of
 * the window's size, and matches across its wrap-around take the slower
 * two-segment path (a quarter more CPU on WAL segments at level 3, and a
 * slightly larger output).  The buffer is kept for the next frames.
 * Larger sizes, and compressors with threads, stream as before.
 */
#define PGBR_ZSTD_WHOLE_MAX ((uint64_t) 64 * 1024 * 1024)
extern void pgbr_sink_zstd_compress_expect(PgbrSink *sink, uint64_t size);
/*
 * Sets the size of the jobs of a compressor with threads, before its first
 * frame (false: it has none, or libzstd refused), and makes the jobs
 * independent: zstd's default lets each job first load the last quarter
 * window of the one before (256 kB at level 3), a quarter more work for
 * 1 MiB jobs, for a gain in ratio smaller than a job boundary loses.  zstd
 * holds several jobs' input and output: its default at level 3 (8 MiB, four
 * windows) makes about 52 MiB with two threads, 2 MiB jobs 17 MiB, 1 MiB
 * jobs 10 MiB.
 */
extern bool pgbr_sink_zstd_compress_job_size(PgbrSink *sink, size_t bytes);
/* fails on corrupt input, and at finish on truncated input */
extern PgbrSink *pgbr_sink_zstd_decompress_create(PgbrSink *next, PgbrError *err);

/*
 * Refuses frames whose window exceeds 2^window_log bytes (the decoder
 * allocates the window up front: a server bounds what a client can make it
 * hold).  pgbr's own compressor never uses more than 2^24.
 */
#define PGBR_ZSTD_WINDOW_LOG_MAX 24
extern void pgbr_sink_zstd_limit_window(PgbrSink *sink, int window_log);

/* appends to a buffer (tests, small files) */
extern PgbrSink *pgbr_sink_buf_create(PgbrBuf *buf);

/* writes to a file descriptor; name is used in error messages */
extern PgbrSink *pgbr_sink_fd_create(int fd, const char *name);

/* keeps the first `want` bytes seen in a buffer and passes everything on */
extern PgbrSink *pgbr_sink_peek_create(size_t want, PgbrSink *next);
extern const uint8_t *pgbr_sink_peek_data(PgbrSink *sink, size_t *len);

#endif							/* PGBR_SINK_H */
