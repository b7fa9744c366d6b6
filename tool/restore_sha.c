/*
 * restore_sha.c
 *		SHA-256 and writing on helper threads for the restore workers.
 *
 * Why: restoring or comparing a big file is hashing (SHA-NI: about 1 GB/s
 * a core) plus decompressing and writing (or reading) it, one after the
 * other on one core, and a cluster's biggest relation segment is then the
 * critical path of the whole restore.  With the hashing on one thread and
 * the write() on another the three overlap as soon as cores are free (the
 * other workers finish their smaller files first), and none is longer than
 * the hashing.  Small files are hashed and written inline: a thread
 * hand-over per file would cost more than it saves.
 *
 * The ring: the caller fills slot `submitted % SLOTS` and submits it; each
 * active stage (hasher, writer) works through the slots in order and
 * counts them in its `done`.  A slot is given out again only when every
 * active stage has passed it, so the caller never overwrites bytes a stage
 * has not read.  The digest context and the writer's fields are only
 * touched by their thread while it is behind `submitted`, and by the
 * caller once the stages have caught up (the mutex orders the two).
 */
#include "restore_sha.h"
#include "restore_fsync.h"
#include "pgbr_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * A big file is written with O_DIRECT (slots are aligned to DIRECT_ALIGN
 * and a multiple of it, but its last one): gigabytes copied into the page
 * cache cost about half a second of kernel CPU per GB (perf: page-cache
 * copy, page allocation, ext4 delayed allocation, writeback), which on a
 * restore using every core comes straight off the wall time; and a restore
 * larger than memory would only evict what the host had cached.
 */
#define DIRECT_ALIGN		4096

/* writeback of a big file is started every WRITEBACK_AFTER bytes */
#define WRITEBACK_AFTER		(8 * 1024 * 1024)

/* a helper thread working through the ring in order */
typedef struct Stage
{
	pthread_t	thread;
	bool		started;
	bool		active;			/* works on this file */
	uint64_t	done;			/* slots of this file it has finished */
	pthread_cond_t work;		/* it waits: submitted > done, or stop */
} Stage;

struct RestoreSha
{
	PgbrFileSum *sha;
	uint8_t    *slots[RESTORE_SHA_SLOTS];
	size_t		lens[RESTORE_SHA_SLOTS];
	uint64_t	submitted;		/* slots handed over since begin */
	uint64_t	bytes;
	bool		threaded;		/* this file: hashed on the hasher */
	bool		writing;		/* this file: written by the writer */
	bool		stop;
	Stage		hasher;
	Stage		writer;
	/* the writer's file; its first error */
	int			wfd;
	char		wname[1024];
	int			werrno;
	bool		direct;			/* wfd has O_DIRECT */
	uint64_t	written;
	uint64_t	flushed;		/* writeback started up to here */
	pthread_mutex_t mutex;
	pthread_cond_t done;		/* caller waits: a stage advanced */
};

static bool
write_fd(int fd, const uint8_t *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, data, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return false;
		}
		data += n;
		len -= (size_t) n;
	}
	return true;
}

static void
hash_slot(RestoreSha *p, const uint8_t *data, size_t len)
{
	pgbr_filesum_update(p->sha, data, len);
}

/* back to buffered writes (a tail not a multiple of the block size) */
static void
direct_off(RestoreSha *p)
{
	int			fl = fcntl(p->wfd, F_GETFL);

	if (fl >= 0)
		(void) fcntl(p->wfd, F_SETFL, fl & ~O_DIRECT);
	p->direct = false;
}

static void
write_slot(RestoreSha *p, const uint8_t *data, size_t len)
{
	if (p->werrno != 0)
		return;					/* after an error: only keep pace */
	if (p->direct && len % DIRECT_ALIGN != 0)
		direct_off(p);
	if (p->direct && !write_fd(p->wfd, data, len))
	{
		/* a file system may refuse it after all: buffered from here */
		if (errno != EINVAL)
		{
			p->werrno = errno ? errno : EIO;
			return;
		}
		direct_off(p);
		if (lseek(p->wfd, (off_t) p->written, SEEK_SET) < 0)
		{
			p->werrno = errno;
			return;
		}
	}
	if (!p->direct && !write_fd(p->wfd, data, len))
	{
		p->werrno = errno ? errno : EIO;
		return;
	}
	p->written += len;
	/* so that the final fsync does not wait for the whole file */
	pgbr_writeback_step(p->wfd, p->written, &p->flushed, WRITEBACK_AFTER);
}

typedef struct StageArg
{
	RestoreSha *p;
	Stage	   *st;
	void		(*fn) (RestoreSha *p, const uint8_t *data, size_t len);
} StageArg;

static void *
stage_main(void *arg)
{
	StageArg	a = *(StageArg *) arg;
	RestoreSha *p = a.p;
	Stage	   *st = a.st;

	pgbr_free(arg);
	pthread_mutex_lock(&p->mutex);
	for (;;)
	{
		uint64_t	seq;

		while (!p->stop && (!st->active || st->done == p->submitted))
			pthread_cond_wait(&st->work, &p->mutex);
		if (!st->active || st->done == p->submitted)
			break;				/* stop, nothing left */
		seq = st->done;
		pthread_mutex_unlock(&p->mutex);
		a.fn(p, p->slots[seq % RESTORE_SHA_SLOTS], p->lens[seq % RESTORE_SHA_SLOTS]);
		pthread_mutex_lock(&p->mutex);
		st->done++;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mutex);
	return NULL;
}

static bool
stage_start(RestoreSha *p, Stage *st, void (*fn) (RestoreSha *, const uint8_t *, size_t),
			PgbrError *err)
{
	StageArg   *a = pgbr_malloc(sizeof(StageArg));
	sigset_t	all,
				old;
	int			rc;

	a->p = p;
	a->st = st;
	a->fn = fn;
	/* signals are for the worker's main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&st->thread, NULL, stage_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		pgbr_free(a);
		errno = rc;
		return pgbr_error_errno(err, PGBR_ERR_RUNTIME, "could not start a restore thread");
	}
	st->started = true;
	return true;
}

RestoreSha *
restore_sha_create(PgbrError *err)
{
	RestoreSha *p = pgbr_malloc(sizeof(RestoreSha));

	memset(p, 0, sizeof(RestoreSha));
	p->sha = pgbr_filesum_create(err);
	if (p->sha == NULL)
	{
		pgbr_free(p);
		return NULL;
	}
	for (int i = 0; i < RESTORE_SHA_SLOTS; i++)
		if (posix_memalign((void **) &p->slots[i], DIRECT_ALIGN, RESTORE_SHA_SLOT_SIZE) != 0)
		{
			pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
			for (int j = 0; j < i; j++)
				free(p->slots[j]);
			pgbr_filesum_free(p->sha);
			pgbr_free(p);
			return NULL;
		}
	p->wfd = -1;
	pthread_mutex_init(&p->mutex, NULL);
	pthread_cond_init(&p->done, NULL);
	pthread_cond_init(&p->hasher.work, NULL);
	pthread_cond_init(&p->writer.work, NULL);
	return p;
}

/* waits until the stages of this file have finished slot upto - 1 */
static void
wait_stages(RestoreSha *p, uint64_t upto)
{
	if (!p->hasher.active && !p->writer.active)
		return;
	pthread_mutex_lock(&p->mutex);
	while ((p->hasher.active && p->hasher.done < upto) ||
		   (p->writer.active && p->writer.done < upto))
		pthread_cond_wait(&p->done, &p->mutex);
	pthread_mutex_unlock(&p->mutex);
}

void
restore_sha_free(RestoreSha *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mutex);
	p->stop = true;
	pthread_cond_signal(&p->hasher.work);
	pthread_cond_signal(&p->writer.work);
	pthread_mutex_unlock(&p->mutex);
	if (p->hasher.started)
		pthread_join(p->hasher.thread, NULL);
	if (p->writer.started)
		pthread_join(p->writer.thread, NULL);
	pthread_mutex_destroy(&p->mutex);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->hasher.work);
	pthread_cond_destroy(&p->writer.work);
	for (int i = 0; i < RESTORE_SHA_SLOTS; i++)
		free(p->slots[i]);		/* posix_memalign */
	pgbr_filesum_free(p->sha);
	pgbr_free(p);
}

bool
restore_sha_begin(RestoreSha *p, bool threaded, int wfd, const char *wname, PgbrError *err)
{
	uint8_t		discard[PGBR_SHA256_LEN];

	/* an earlier file may have stopped half way: let the stages drain */
	wait_stages(p, p->submitted);
	pgbr_filesum_final(p->sha, discard);	/* resets the context */
	pthread_mutex_lock(&p->mutex);
	p->submitted = p->hasher.done = p->writer.done = 0;
	p->hasher.active = p->writer.active = false;
	pthread_mutex_unlock(&p->mutex);
	p->bytes = 0;
	p->threaded = p->writing = false;
	p->wfd = wfd;
	snprintf(p->wname, sizeof(p->wname), "%s", wname ? wname : "");
	p->werrno = 0;
	p->direct = false;
	p->written = p->flushed = 0;
	if (threaded && !p->hasher.started && !stage_start(p, &p->hasher, hash_slot, err))
		return false;
	if (threaded && wfd >= 0 && !p->writer.started && !stage_start(p, &p->writer, write_slot, err))
		return false;
	p->threaded = threaded;
	p->writing = threaded && wfd >= 0;
	if (p->writing)
	{
		int			fl = fcntl(wfd, F_GETFL);

		/* a file system without direct I/O (tmpfs) says EINVAL: buffered */
		p->direct = fl >= 0 && fcntl(wfd, F_SETFL, fl | O_DIRECT) == 0;
	}
	pthread_mutex_lock(&p->mutex);
	p->hasher.active = p->threaded;
	p->writer.active = p->writing;
	pthread_mutex_unlock(&p->mutex);
	return true;
}

void
restore_sha_wait(RestoreSha *p)
{
	wait_stages(p, p->submitted);
}

bool
restore_sha_writes(RestoreSha *p)
{
	return p->writing;
}

uint8_t *
restore_sha_slot(RestoreSha *p)
{
	uint64_t	seq = p->submitted;

	/* slot seq was last used by seq - SLOTS: wait until it is done with */
	if (seq >= RESTORE_SHA_SLOTS)
		wait_stages(p, seq - RESTORE_SHA_SLOTS + 1);
	return p->slots[seq % RESTORE_SHA_SLOTS];
}

void
restore_sha_submit(RestoreSha *p, size_t len)
{
	uint64_t	seq = p->submitted;

	p->bytes += len;
	p->lens[seq % RESTORE_SHA_SLOTS] = len;
	if (!p->threaded)
	{
		pgbr_filesum_update(p->sha, p->slots[seq % RESTORE_SHA_SLOTS], len);
		p->submitted++;
		return;
	}
	pthread_mutex_lock(&p->mutex);
	p->submitted++;
	pthread_cond_signal(&p->hasher.work);
	if (p->writing)
		pthread_cond_signal(&p->writer.work);
	pthread_mutex_unlock(&p->mutex);
}

bool
restore_sha_end(RestoreSha *p, uint8_t out[PGBR_SHA256_LEN], uint64_t *bytes, PgbrError *err)
{
	wait_stages(p, p->submitted);
	pgbr_filesum_final(p->sha, out);
	*bytes = p->bytes;
	if (p->writing && p->werrno != 0)
	{
		errno = p->werrno;
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write file \"%s\"", p->wname);
	}
	return true;
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
} FileSink;

/* submits the slot; written here unless the pipe's writer thread does */
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
	if (!restore_sha_writes(s->pipe) && !write_fd(s->fd, slot, len))
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write file \"%s\"",
								s->name);
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
	return restore_sha_end(s->pipe, s->result, &s->bytes, err);
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
	s->base.bytes_in = 0;
	memset(s->result, 0, sizeof(s->result));
	return restore_sha_begin(s->pipe, threaded, fd, name, err);
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
