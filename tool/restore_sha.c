/*
 * restore_sha.c
 *		SHA-256 on a helper thread for the restore workers.
 *
 * Why: restoring or comparing a big file is hashing (SHA-NI: about 1 GB/s
 * a core) plus decompressing and writing (or reading) it, one after the
 * other on one core, and a cluster's biggest relation segment is then the
 * critical path of the whole restore.  With the hashing on a second thread
 * the two halves overlap as soon as a core is free (the other workers
 * finish their smaller files first).  Small files are hashed inline: a
 * thread hand-over per file would cost more than it saves.
 *
 * The ring: the caller fills slot `filled % SLOTS` and submits it; the
 * hasher hashes slots in order and counts them in `hashed`.  A slot is
 * given out again only when hashed has passed it, so the caller never
 * overwrites bytes the hasher has not read.  The digest context is only
 * touched by the hasher while hashed < submitted, and by the caller
 * otherwise (the mutex orders the two).
 */
#include "restore_sha.h"
#include "restore_fsync.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

struct RestoreSha
{
	PgbrSha256 *sha;
	uint8_t    *slots[RESTORE_SHA_SLOTS];
	size_t		lens[RESTORE_SHA_SLOTS];
	uint64_t	submitted;		/* slots handed over since begin */
	uint64_t	hashed;			/* of those, hashed */
	uint64_t	bytes;
	bool		threaded;		/* this file */
	bool		started;		/* the thread runs */
	bool		stop;
	pthread_t	thread;
	pthread_mutex_t mutex;
	pthread_cond_t work;		/* hasher waits: submitted > hashed or stop */
	pthread_cond_t done;		/* caller waits: hashed advanced */
};

static void *
hasher_main(void *arg)
{
	RestoreSha *p = arg;

	pthread_mutex_lock(&p->mutex);
	for (;;)
	{
		uint64_t	seq;

		while (!p->stop && p->hashed == p->submitted)
			pthread_cond_wait(&p->work, &p->mutex);
		if (p->hashed == p->submitted)
			break;				/* stop, nothing left */
		seq = p->hashed;
		pthread_mutex_unlock(&p->mutex);
		pgbr_sha256_update(p->sha, p->slots[seq % RESTORE_SHA_SLOTS],
						   p->lens[seq % RESTORE_SHA_SLOTS]);
		pthread_mutex_lock(&p->mutex);
		p->hashed++;
		pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mutex);
	return NULL;
}

RestoreSha *
restore_sha_create(PgbrError *err)
{
	RestoreSha *p = pgbr_malloc(sizeof(RestoreSha));

	memset(p, 0, sizeof(RestoreSha));
	p->sha = pgbr_sha256_create(err);
	if (p->sha == NULL)
	{
		pgbr_free(p);
		return NULL;
	}
	for (int i = 0; i < RESTORE_SHA_SLOTS; i++)
		p->slots[i] = pgbr_malloc(RESTORE_SHA_SLOT_SIZE);
	pthread_mutex_init(&p->mutex, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	return p;
}

static void
wait_hashed(RestoreSha *p, uint64_t upto)
{
	pthread_mutex_lock(&p->mutex);
	while (p->hashed < upto)
		pthread_cond_wait(&p->done, &p->mutex);
	pthread_mutex_unlock(&p->mutex);
}

void
restore_sha_free(RestoreSha *p)
{
	if (p == NULL)
		return;
	if (p->started)
	{
		pthread_mutex_lock(&p->mutex);
		p->stop = true;
		pthread_cond_signal(&p->work);
		pthread_mutex_unlock(&p->mutex);
		pthread_join(p->thread, NULL);
	}
	pthread_mutex_destroy(&p->mutex);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	for (int i = 0; i < RESTORE_SHA_SLOTS; i++)
		pgbr_free(p->slots[i]);
	pgbr_sha256_free(p->sha);
	pgbr_free(p);
}

bool
restore_sha_begin(RestoreSha *p, bool threaded, PgbrError *err)
{
	uint8_t		discard[PGBR_SHA256_LEN];

	/* an earlier file may have stopped half way: let the hasher drain */
	if (p->started)
		wait_hashed(p, p->submitted);
	pgbr_sha256_final(p->sha, discard);	/* resets the context */
	p->submitted = p->hashed = 0;
	p->bytes = 0;
	p->threaded = false;
	if (threaded && !p->started)
	{
		sigset_t	all,
					old;
		int			rc;

		/* signals are for the worker's main thread */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&p->thread, NULL, hasher_main, p);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0)
		{
			errno = rc;
			return pgbr_error_errno(err, PGBR_ERR_RUNTIME, "could not start a hashing thread");
		}
		p->started = true;
	}
	p->threaded = threaded;
	return true;
}

uint8_t *
restore_sha_slot(RestoreSha *p)
{
	uint64_t	seq = p->submitted;

	/* slot seq was last used by seq - SLOTS: wait until it is hashed */
	if (p->threaded && seq >= RESTORE_SHA_SLOTS)
		wait_hashed(p, seq - RESTORE_SHA_SLOTS + 1);
	return p->slots[seq % RESTORE_SHA_SLOTS];
}

void
restore_sha_submit(RestoreSha *p, size_t len)
{
	uint64_t	seq = p->submitted;

	p->bytes += len;
	if (!p->threaded)
	{
		pgbr_sha256_update(p->sha, p->slots[seq % RESTORE_SHA_SLOTS], len);
		p->submitted++;
		p->hashed++;
		return;
	}
	p->lens[seq % RESTORE_SHA_SLOTS] = len;
	pthread_mutex_lock(&p->mutex);
	p->submitted++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mutex);
}

void
restore_sha_end(RestoreSha *p, uint8_t out[PGBR_SHA256_LEN], uint64_t *bytes)
{
	if (p->threaded)
		wait_hashed(p, p->submitted);
	pgbr_sha256_final(p->sha, out);
	*bytes = p->bytes;
}

/* ---------------------------------------------------------------------- */
/* the file sink */

typedef struct FileSink
{
	PgbrSink	base;
	RestoreSha *pipe;
	int			fd;
	char		name[1024];
	uint8_t    *slot;			/* being filled, NULL: none taken */
	size_t		fill;
	uint8_t		result[PGBR_SHA256_LEN];
	uint64_t	bytes;
	uint64_t	written;
	uint64_t	flushed;		/* writeback started up to here */
} FileSink;

/* writeback of a big file is started every WRITEBACK_AFTER bytes */
#define WRITEBACK_AFTER		(8 * 1024 * 1024)

static bool
write_all(FileSink *s, const uint8_t *data, size_t len, PgbrError *err)
{
	while (len > 0)
	{
		ssize_t		n = write(s->fd, data, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write file \"%s\"",
									s->name);
		}
		data += n;
		len -= (size_t) n;
	}
	return true;
}

/* submits the slot (hashing starts) and writes it meanwhile */
static bool
flush_slot(FileSink *s, PgbrError *err)
{
	uint8_t    *slot = s->slot;
	size_t		len = s->fill;

	s->slot = NULL;
	s->fill = 0;
	if (len == 0)
		return true;
	restore_sha_submit(s->pipe, len);
	if (!write_all(s, slot, len, err))
		return false;
	s->written += len;
	if (s->written - s->flushed >= WRITEBACK_AFTER)
	{
		/* so that the final fsync does not wait for the whole file */
		restore_fsync_start(s->fd, s->flushed, s->written - s->flushed);
		s->flushed = s->written;
	}
	return true;
}

static bool
file_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	FileSink   *s = (FileSink *) self;

	while (len > 0)
	{
		size_t		n;

		if (s->slot == NULL)
			s->slot = restore_sha_slot(s->pipe);
		n = RESTORE_SHA_SLOT_SIZE - s->fill;
		if (n > len)
			n = len;
		memcpy(s->slot + s->fill, data, n);
		s->fill += n;
		data += n;
		len -= n;
		if (s->fill == RESTORE_SHA_SLOT_SIZE && !flush_slot(s, err))
			return false;
	}
	return true;
}

static bool
file_finish(PgbrSink *self, PgbrError *err)
{
	FileSink   *s = (FileSink *) self;

	if (s->slot && !flush_slot(s, err))
		return false;
	restore_sha_end(s->pipe, s->result, &s->bytes);
	return true;
}

PgbrSink *
restore_sha_file_sink_create(RestoreSha *p)
{
	FileSink   *s = pgbr_malloc(sizeof(FileSink));

	memset(s, 0, sizeof(FileSink));
	s->base.write = file_write;
	s->base.finish = file_finish;
	s->pipe = p;
	s->fd = -1;
	return &s->base;
}

bool
restore_sha_file_sink_begin(PgbrSink *sink, int fd, const char *name, bool threaded,
							PgbrError *err)
{
	FileSink   *s = (FileSink *) sink;

	s->fd = fd;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->slot = NULL;
	s->fill = 0;
	s->bytes = 0;
	s->written = s->flushed = 0;
	s->base.bytes_in = 0;
	memset(s->result, 0, sizeof(s->result));
	return restore_sha_begin(s->pipe, threaded, err);
}

void
restore_sha_file_sink_result(PgbrSink *sink, uint8_t out[PGBR_SHA256_LEN], uint64_t *bytes)
{
	FileSink   *s = (FileSink *) sink;

	memcpy(out, s->result, PGBR_SHA256_LEN);
	*bytes = s->bytes;
}

void
restore_sha_file_sink_free(PgbrSink *sink)
{
	pgbr_free(sink);
}
