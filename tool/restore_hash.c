/*
 * restore_hash.c
 *		The checksum of a big local file for restore --delta, its 64 MiB
 *		pieces read and hashed on several threads.
 *
 * Why: one SHA-256 stream over a 1 GB relation segment keeps one core busy
 * for about a second, and a delta restore of a cluster is mostly that.  A
 * file over PGBR_FILESUM_PIECE bytes has a checksum made of the SHA-256 of
 * its pieces (pgbr_checksum.h), so each thread claims the next piece, reads
 * it with its own descriptor (O_DIRECT where the file system allows: the
 * files a restore wrote with O_DIRECT are not in the page cache, and the
 * disk is faster than the hashing) and hashes it; the caller combines the
 * digests in piece order.
 */
#include "restore_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define HASH_READ_SIZE		(1024 * 1024)
#define HASH_ALIGN			4096
#define HASH_THREADS_MAX	8

typedef struct HashJob
{
	const char *path;
	uint64_t	size;
	uint64_t	npieces;
	uint8_t		(*digests)[PGBR_SHA256_LEN];
	pthread_mutex_t mutex;
	uint64_t	next;			/* next piece to claim */
	bool		short_file;		/* a piece ended before its end */
	bool		failed;			/* first error in err */
	PgbrError	err;
} HashJob;

/* reads up to len bytes at off; fewer only at the end of the file */
static ssize_t
read_full(int fd, uint8_t *buf, size_t len, uint64_t off, bool *direct)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		n = pread(fd, buf + done, len - done, (off_t) (off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && *direct)
		{
			/* refused after all (or an unaligned rest): buffered */
			int			fl = fcntl(fd, F_GETFL);

			if (fl >= 0)
				(void) fcntl(fd, F_SETFL, fl & ~O_DIRECT);
			*direct = false;
			continue;
		}
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t) n;
	}
	return (ssize_t) done;
}

static void
job_fail(HashJob *job, int code, const char *what)
{
	int			save = errno;

	pthread_mutex_lock(&job->mutex);
	if (!job->failed)
	{
		errno = save;
		pgbr_error_errno(&job->err, code, "could not %s \"%s\"", what, job->path);
		job->failed = true;
	}
	pthread_mutex_unlock(&job->mutex);
}

static void *
hash_main(void *arg)
{
	HashJob    *job = arg;
	PgbrSha256 *sha;
	uint8_t    *buf = NULL;
	int			fd;
	bool		direct;
	PgbrError	err;

	pgbr_error_init(&err);
	fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECT);
	direct = fd >= 0;
	if (fd < 0)
		fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
	{
		job_fail(job, PGBR_ERR_FILE_OPEN, "open");
		return NULL;
	}
	if (!direct)
		(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	sha = pgbr_sha256_create(&err);
	if (sha == NULL || posix_memalign((void **) &buf, HASH_ALIGN, HASH_READ_SIZE) != 0)
	{
		pgbr_sha256_free(sha);
		close(fd);
		errno = ENOMEM;
		job_fail(job, PGBR_ERR_MEMORY, "allocate memory to read");
		return NULL;
	}
	for (;;)
	{
		uint64_t	piece,
					off,
					end;
		bool		stop;

		pthread_mutex_lock(&job->mutex);
		stop = job->failed || job->short_file || job->next >= job->npieces;
		piece = stop ? 0 : job->next++;
		pthread_mutex_unlock(&job->mutex);
		if (stop)
			break;
		off = piece * PGBR_FILESUM_PIECE;
		end = off + PGBR_FILESUM_PIECE < job->size ? off + PGBR_FILESUM_PIECE : job->size;
		while (off < end)
		{
			size_t		want = end - off < HASH_READ_SIZE ? (size_t) (end - off) : HASH_READ_SIZE;
			ssize_t		n = read_full(fd, buf, want, off, &direct);

			if (n < 0)
			{
				job_fail(job, PGBR_ERR_FILE_READ, "read");
				break;
			}
			pgbr_sha256_update(sha, buf, (size_t) n);
			off += (uint64_t) n;
			if ((size_t) n < want)
			{
				pthread_mutex_lock(&job->mutex);
				job->short_file = true;
				pthread_mutex_unlock(&job->mutex);
				break;
			}
		}
		pgbr_sha256_final(sha, job->digests[piece]);
	}
	pgbr_sha256_free(sha);
	free(buf);
	close(fd);
	return NULL;
}

bool
restore_hash_file(const char *path, uint64_t size, int threads, uint8_t out[PGBR_SHA256_LEN],
				  bool *complete, PgbrError *err)
{
	HashJob		job;
	pthread_t	tid[HASH_THREADS_MAX];
	int			started = 0;
	PgbrFileSum *fs;
	sigset_t	all,
				old;

	memset(&job, 0, sizeof(job));
	job.path = path;
	job.size = size;
	job.npieces = pgbr_filesum_pieces(size);
	job.digests = pgbr_malloc((size_t) job.npieces * PGBR_SHA256_LEN);
	fs = pgbr_filesum_create(err);
	if (fs == NULL)
	{
		pgbr_free(job.digests);
		return false;
	}
	pgbr_error_init(&job.err);
	pthread_mutex_init(&job.mutex, NULL);
	if (threads > HASH_THREADS_MAX)
		threads = HASH_THREADS_MAX;
	if ((uint64_t) threads > job.npieces)
		threads = (int) job.npieces;

	/* signals are for the worker's main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 1; i < threads; i++)
		if (pthread_create(&tid[started], NULL, hash_main, &job) == 0)
			started++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	hash_main(&job);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_destroy(&job.mutex);

	*complete = !job.short_file;
	if (!job.failed && !job.short_file)
		pgbr_filesum_combine(fs, (const uint8_t (*)[PGBR_SHA256_LEN]) job.digests, size, out);
	pgbr_filesum_free(fs);
	pgbr_free(job.digests);
	if (job.failed)
	{
		*err = job.err;
		return false;
	}
	return true;
}
