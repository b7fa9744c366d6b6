/*
 * restore_files.c
 *		pgbr restore, pass 4: the files, by process-max workers (forked,
 *		each with its own TLS session); and pass 7, global/pg_control.
 *
 * The workers claim first the biggest files (up to BIG_MAX, biggest first,
 * one at a time per worker: a big file claimed late would be alone on the
 * critical path), then the others in manifest order through a counter in
 * shared memory.  A file whose local copy has the manifest's size and
 * SHA-256 (with force: size and mtime) is kept (delta); any other is
 * fetched with FILE_GET from the backup holding its data (the line's
 * reference, or this backup), up to PIPELINE_MAX requests in flight,
 * decompressed, checked against the manifest's SHA-256 - on helper threads
 * for big files, restore_sha.c - given its mode and mtime, and fsynced
 * (deferred, restore_fsync.c: every file is durable before its worker
 * reports success).
 */
#include "restore_int.h"
#include "pgbr_file.h"
#include "restore_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void
progress(Restore *r, const PgbrManifestEntry *e, const char *abs, const char *what)
{
	uint64_t	done = __atomic_add_fetch(&r->shared->done_bytes, e->size, __ATOMIC_SEQ_CST);
	char		size[32],
				hex[PGBR_SHA256_HEXLEN + 1] = "";
	double		pct = r->size_total ? 100.0 * (double) done / (double) r->size_total : 100.0;

	if (e->has_sha)
		pgbr_hex_encode(e->sha256, PGBR_SHA256_LEN, hex);
	pgbr_size_format(e->size, size, sizeof(size));
	pgbr_log(PGBR_LOG_DETAIL, "restore file %s%s (%s, %.2f%%)%s%s", abs, what, size,
			 pct > 100.0 ? 100.0 : pct, hex[0] ? " checksum " : "", hex);
}

static bool
set_attrs_fd(Restore *r, int fd, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	struct timespec ts[2];

	ts[0].tv_sec = (time_t) e->mtime;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	if (fchmod(fd, e->mode) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not set the mode of \"%s\"", abs);
	if (r->do_chown && fchown(fd, r->uid, r->gid) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not change owner of \"%s\"", abs);
	if (futimens(fd, ts) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not set the time of \"%s\"", abs);
	return true;
}

/* this process's hashing pipe and file sink (restore_sha.c) */
static bool
pipe_open(Restore *r, PgbrError *err)
{
	if (r->sha == NULL && (r->sha = restore_sha_create(err)) == NULL)
		return false;
	if (r->out == NULL)
		r->out = restore_sha_file_sink_create(r->sha);
	return true;
}

static void
pipe_close(Restore *r)
{
	restore_sha_file_sink_free(r->out);
	r->out = NULL;
	restore_sha_free(r->sha);
	r->sha = NULL;
}

/*
 * Delta: does the local file have the manifest's size and SHA-256 (with
 * force: size and mtime)?  1 yes (its mode, mtime and owner are then set),
 * 0 no, -1 error.
 * Read in slots of a megabyte; a big file is read with O_DIRECT and hashed
 * on the hashing thread while the next slot is read.
 */
static int
local_matches(Restore *r, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	struct stat st;
	int			fd;
	uint8_t		sum[PGBR_SHA256_LEN];
	bool		ok = true;
	bool		direct = false;
	uint64_t	total = 0;

	if (lstat(abs, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size != e->size ||
		!e->has_sha)
		return 0;
	/* read only: mode, owner, times and fsync need no write access */
	fd = open(abs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", abs);
		return -1;
	}
	if (r->force)
	{
		if (st.st_mtime != (time_t) e->mtime)
		{
			close(fd);
			return 0;
		}
		goto matches;
	}
	/*
	 * A file of several pieces: the pieces on twice as many threads as
	 * process-max (at least 4), so that a thread hashes while another waits
	 * for the disk (1 GB not in the page cache, 2 cores: 0.84 s on 2
	 * threads, 0.65 s on 4, 1.59 s on one).  Exactly e->size bytes are
	 * hashed: a file that grew meanwhile differs.
	 */
	if (e->size > PGBR_FILESUM_PIECE)
	{
		bool		complete;
		struct stat now;

		if (!restore_hash_file(abs, e->size, 2 * (r->process_max > 2 ? r->process_max : 2), sum,
							   &complete, err))
		{
			close(fd);
			return -1;
		}
		if (!complete || memcmp(sum, e->sha256, PGBR_SHA256_LEN) != 0 ||
			fstat(fd, &now) != 0 || (uint64_t) now.st_size != e->size)
		{
			close(fd);
			return 0;
		}
		goto matches;
	}

	/*
	 * A big file is read with O_DIRECT into the pipe's aligned slots, as it
	 * was written (restore_sha.c): no page-cache copy, and the same speed
	 * whether it is cached or not (the disk is faster than the hashing).
	 */
	if (e->size >= THREADED_SHA_MIN)
	{
		int			fl = fcntl(fd, F_GETFL);

		direct = fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
	}
	if (!direct)
		(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!restore_sha_begin(r->sha, e->size >= THREADED_SHA_MIN, -1, NULL, err))
	{
		close(fd);
		return -1;
	}
	while (ok)
	{
		uint8_t    *slot = restore_sha_slot(r->sha);
		size_t		fill = 0;

		while (fill < RESTORE_SHA_SLOT_SIZE)
		{
			ssize_t		n = read(fd, slot + fill, RESTORE_SHA_SLOT_SIZE - fill);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EINVAL && direct)
			{
				/* refused after all (or an unaligned rest): buffered */
				int			fl = fcntl(fd, F_GETFL);

				if (fl >= 0)
					(void) fcntl(fd, F_SETFL, fl & ~O_DIRECT);
				direct = false;
				continue;
			}
			if (n < 0)
			{
				ok = pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not read \"%s\"", abs);
				break;
			}
			if (n == 0)
				break;
			fill += (size_t) n;
		}
		if (ok && fill > 0)
			restore_sha_submit(r->sha, fill);
		if (fill < RESTORE_SHA_SLOT_SIZE)
			break;
	}
	(void) restore_sha_end(r->sha, sum, &total, err);	/* no writer: no error */
	if (!ok)
	{
		close(fd);
		return -1;
	}
	if (total != e->size || memcmp(sum, e->sha256, PGBR_SHA256_LEN) != 0)
	{
		close(fd);
		return 0;
	}
matches:
	if ((st.st_mode & 07777) != e->mode || st.st_mtime != (time_t) e->mtime ||
		(r->do_chown && (st.st_uid != r->uid || st.st_gid != r->gid)))
	{
		if (!set_attrs_fd(r, fd, e, abs, err) || fsync(fd) != 0)
		{
			if (!pgbr_error_is_set(err))
				pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync \"%s\"", abs);
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 1;
}

/* opens the destination of a file, replacing whatever is in the way */
static int
open_dest(const char *abs, PgbrError *err)
{
	struct stat st;
	int			fd;

	if (lstat(abs, &st) == 0 && !S_ISREG(st.st_mode) && !restore_remove_any(abs, err))
		return -1;
	fd = open(abs, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not create file \"%s\"", abs);
	return fd;
}

static bool
finish_file(Restore *r, int fd, const PgbrManifestEntry *e, const char *abs, PgbrError *err)
{
	if (!set_attrs_fd(r, fd, e, abs, err))
	{
		close(fd);
		return false;
	}
	if (r->fsyncs)
		return restore_fsync_add(r->fsyncs, fd, abs, err);
	if (fsync(fd) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync \"%s\"", abs);
		close(fd);
		return false;
	}
	if (close(fd) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write \"%s\"", abs);
	return true;
}

static const char *
data_label(Restore *r, const PgbrManifestEntry *e)
{
	return e->reference[0] ? e->reference : r->label;
}

static void
backup_name(Restore *r, const PgbrManifestEntry *e, char *out, size_t len)
{
	if (e->reference[0] && strcmp(e->reference, r->label) != 0)
		snprintf(out, len, "backup %s (data in backup %s)", r->label, e->reference);
	else
		snprintf(out, len, "backup %s", r->label);
}

static bool
send_file_get(Restore *r, PgbrConn *conn, const PgbrManifestEntry *e, const char *line,
			  size_t len, PgbrError *err)
{
	PgbrBuf		b;
	char	   *l = pgbr_malloc(len + 1);
	const char *strs[2];
	bool		ok;

	memcpy(l, line, len);
	l[len] = '\0';
	strs[0] = data_label(r, e);
	strs[1] = l;
	pgbr_buf_init(&b);
	pgbr_strs_encode(&b, 2, strs);
	ok = pgbr_conn_send(conn, PGBR_MSG_FILE_GET, b.data, b.len, err);
	pgbr_buf_release(&b);
	pgbr_free(l);
	return ok;
}

/*
 * Receives the answer to a FILE_GET into `dest` (abs unless a temporary
 * name is given), verifying the content against the manifest line.  The
 * stream goes through the decompressor (when compressed) into r->out,
 * which hashes and writes it (restore_sha.c).
 */
static bool
receive_file(Restore *r, PgbrConn *conn, const PgbrManifestEntry *e, const char *abs,
			 const char *dest, PgbrError *err)
{
	PgbrError	e2;
	PgbrSink   *dec = NULL;
	PgbrBuf		trailer;
	uint8_t		sum[PGBR_SHA256_LEN];
	uint64_t	bytes;
	char		bname[200];
	int			fd;
	bool		ok = false;

	backup_name(r, e, bname, sizeof(bname));
	pgbr_error_init(&e2);
	if (!pgbr_conn_expect_ok(conn, NULL, &e2))
	{
		pgbr_error_set(err, e2.code, "could not fetch file \"%s\" of %s: %s", e->path, bname,
					   e2.message);
		if (e2.hint[0])
			pgbr_error_hint(err, "%s", e2.hint);
		return false;
	}
	fd = open_dest(dest, err);
	if (fd < 0)
		return false;
	pgbr_buf_init(&trailer);
	if (!restore_sha_file_sink_begin(r->out, fd, dest, e->size >= THREADED_SHA_MIN, err))
		goto done;
	if (e->compress == PGBR_COMPRESS_ZST &&
		(dec = pgbr_sink_zstd_decompress_create(r->out, err)) == NULL)
		goto done;
	if (!pgbr_conn_recv_stream(conn, dec ? dec : r->out, &trailer, &e2))
	{
		if (e2.code == PGBR_ERR_FORMAT || e2.code == PGBR_ERR_COMPRESS)
			pgbr_error_set(err, PGBR_ERR_CHECKSUM,
						   "file \"%s\" of %s is damaged in the repository: %s", e->path, bname,
						   e2.message);
		else
		{
			pgbr_error_set(err, e2.code, "could not fetch file \"%s\" of %s: %s", e->path, bname,
						   e2.message);
			if (e2.hint[0])
				pgbr_error_hint(err, "%s", e2.hint);
		}
		goto done;
	}
	restore_sha_file_sink_result(r->out, sum, &bytes);
	if (bytes != e->size || !e->has_sha || memcmp(sum, e->sha256, PGBR_SHA256_LEN) != 0)
	{
		char		want[PGBR_SHA256_HEXLEN + 1] = "none",
					got[PGBR_SHA256_HEXLEN + 1];

		if (e->has_sha)
			pgbr_hex_encode(e->sha256, PGBR_SHA256_LEN, want);
		pgbr_hex_encode(sum, PGBR_SHA256_LEN, got);
		pgbr_error_set(err, PGBR_ERR_CHECKSUM,
					   "file \"%s\" of %s is damaged in the repository: SHA-256 %s, expected %s (%" PRIu64 " of %" PRIu64 " bytes)",
					   e->path, bname, got, want, bytes, e->size);
		pgbr_error_hint(err, "Run \"pgbr verify\" and restore another backup set with --set.");
		goto done;
	}
	__atomic_add_fetch(&r->shared->fetched_files, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&r->shared->fetched_bytes, e->size, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&r->shared->repo_bytes, dec ? dec->bytes_in : r->out->bytes_in,
					   __ATOMIC_SEQ_CST);
	ok = true;

done:
	pgbr_sink_free(dec);
	pgbr_buf_release(&trailer);
	if (!ok)
	{
		restore_sha_wait(r->sha);	/* the writer thread may still use fd */
		close(fd);
		return false;
	}
	if (!finish_file(r, fd, e, dest, err))
		return false;
	progress(r, e, abs, "");
	return true;
}

static bool
is_empty_sha(const PgbrManifestEntry *e)
{
	uint8_t		empty[PGBR_SHA256_LEN];

	if (!e->has_sha)
		return true;
	pgbr_sha256("", 0, empty);
	return memcmp(empty, e->sha256, PGBR_SHA256_LEN) == 0;
}

/* FILE_GET requests sent and not yet received, oldest first */
typedef struct Queue
{
	PgbrManifestEntry q[PIPELINE_MAX];
	int			head;
	int			n;
} Queue;

/* receives the oldest request of the queue */
static bool
queue_receive(Restore *r, PgbrConn *conn, Queue *q, PgbrError *err)
{
	PgbrManifestEntry *p = &q->q[q->head];
	char		pabs[PATH_MAX];

	restore_join(pabs, sizeof(pabs), r->pg_path, p->path);
	q->head = (q->head + 1) % PIPELINE_MAX;
	q->n--;
	return receive_file(r, conn, p, pabs, pabs, err);
}

/* a claimed file: kept (delta, preserve), created empty, or requested */
static bool
restore_one(Restore *r, PgbrConn *conn, Queue *q, const PgbrManifestEntry *e,
			const char *line, size_t len, PgbrError *err)
{
	char		abs[PATH_MAX];

	if (strcmp(e->path, TABLESPACE_MAP) == 0)
	{
		__atomic_add_fetch(&r->shared->done_bytes, e->size, __ATOMIC_SEQ_CST);
		return true;
	}
	restore_join(abs, sizeof(abs), r->pg_path, e->path);

	if (restore_recovery_preserved(&r->rs, e->path) && access(abs, F_OK) == 0)
	{
		pgbr_log(PGBR_LOG_DETAIL, "restore file %s - preserved (type=preserve)", abs);
		__atomic_add_fetch(&r->shared->done_bytes, e->size, __ATOMIC_SEQ_CST);
		return true;
	}
	if (r->delta)
	{
		int			m = local_matches(r, e, abs, err);

		if (m < 0)
			return false;
		if (m > 0)
		{
			__atomic_add_fetch(&r->shared->kept_files, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&r->shared->kept_bytes, e->size, __ATOMIC_SEQ_CST);
			progress(r, e, abs, " - exists and matches backup");
			return true;
		}
	}
	if (e->size == 0 && is_empty_sha(e))
	{
		int			fd = open_dest(abs, err);

		if (fd < 0 || !finish_file(r, fd, e, abs, err))
			return false;
		__atomic_add_fetch(&r->shared->fetched_files, 1, __ATOMIC_SEQ_CST);
		progress(r, e, abs, "");
		return true;
	}

	/* fetch, with up to PIPELINE_MAX requests in flight */
	if (q->n == PIPELINE_MAX && !queue_receive(r, conn, q, err))
		return false;
	if (!send_file_get(r, conn, e, line, len, err))
		return false;
	q->q[(q->head + q->n) % PIPELINE_MAX] = *e;
	q->n++;
	return true;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static bool
files_pass(Restore *r, PgbrConn *conn, PgbrError *err)
{
	Shared	   *sh = r->shared;
	MIter		it;
	PgbrManifestEntry e;
	char	   *line;
	size_t		len;
	int			rc;
	uint64_t	idx = 0,
				filenum = 0,
				claim;
	uint64_t	bigs[BIG_MAX];
	int			nbig = sh->nbig,
				bi = 0;
	Queue	   *q = pgbr_malloc(sizeof(Queue));
	bool		ok = true;

	q->head = q->n = 0;

	/*
	 * The biggest files, one at a time: a worker holds no other big file
	 * while it receives one, so the next is taken by whichever worker is
	 * free first.
	 */
	while (ok)
	{
		uint64_t	j;

		if (__atomic_load_n(&sh->failures, __ATOMIC_SEQ_CST) > 0)
			break;
		j = __atomic_fetch_add(&sh->big_next, 1, __ATOMIC_SEQ_CST);
		if (j >= (uint64_t) nbig)
			break;
		len = strlen(sh->big[j].line);
		ok = pgbr_manifest_entry_parse(sh->big[j].line, len, &e, err) &&
			restore_one(r, conn, q, &e, sh->big[j].line, len, err);
		while (ok && q->n > 0)
			ok = queue_receive(r, conn, q, err);
	}
	for (int i = 0; i < nbig; i++)
		bigs[i] = sh->big[i].filenum;
	qsort(bigs, (size_t) nbig, sizeof(uint64_t), u64_cmp);

	/* then the others, in manifest order */
	if (ok && !restore_miter_open(r, &it, err))
		ok = false;
	else if (ok)
	{
		claim = __atomic_fetch_add(&sh->next_file, 1, __ATOMIC_SEQ_CST);
		while (ok)
		{
			uint64_t	num;

			if (__atomic_load_n(&sh->failures, __ATOMIC_SEQ_CST) > 0)
				break;			/* another worker failed: stop */
			rc = restore_miter_next(r, &it, &e, &line, &len, err);
			if (rc <= 0)
			{
				ok = rc == 0;
				break;
			}
			if (e.kind != 'f' || strcmp(e.path, PG_CONTROL) == 0)
				continue;
			num = filenum++;
			while (bi < nbig && bigs[bi] < num)
				bi++;
			if (bi < nbig && bigs[bi] == num)
				continue;		/* done above */
			if (idx++ != claim)
				continue;
			claim = __atomic_fetch_add(&sh->next_file, 1, __ATOMIC_SEQ_CST);
			ok = restore_one(r, conn, q, &e, line, len, err);
		}
		restore_miter_close(&it);
	}
	while (ok && q->n > 0)
	{
		if (__atomic_load_n(&sh->failures, __ATOMIC_SEQ_CST) > 0)
			break;
		ok = queue_receive(r, conn, q, err);
	}
	pgbr_free(q);
	return ok;
}

static void
record_failure(Restore *r, int worker, const PgbrError *e)
{
	WorkerError *we = &r->shared->errors[worker];
	int32_t		seq;

	we->code = e->code ? e->code : PGBR_ERR_RESTORE;
	snprintf(we->message, sizeof(we->message), "%s", e->message);
	snprintf(we->hint, sizeof(we->hint), "%s", e->hint);
	seq = __atomic_fetch_add(&r->shared->failures, 1, __ATOMIC_SEQ_CST);
	if (seq == 0)
		__atomic_store_n(&r->shared->first_failed, worker, __ATOMIC_SEQ_CST);
}

/* one worker: its own session, then its share of the files */
static bool
run_worker(Restore *r, int worker)
{
	PgbrError	err;
	SSL_CTX    *tls;
	PgbrConn   *conn;
	bool		ok;

	pgbr_error_init(&err);
	pgbr_log_set_process(worker + 1);
	conn = tool_connect(r->ctx, "restore", true, &tls, &err);
	r->fsyncs = restore_fsync_create();
	ok = conn != NULL && pipe_open(r, &err) && files_pass(r, conn, &err) &&
		restore_fsync_drain(r->fsyncs, &err);
	if (conn)
		tool_disconnect(conn, tls);
	pipe_close(r);
	restore_fsync_free(r->fsyncs);
	r->fsyncs = NULL;
	if (!ok)
		record_failure(r, worker, &err);
	pgbr_log_set_process(0);
	return ok;
}

bool
restore_workers_run(Restore *r, PgbrError *err)
{
	pid_t		pids[WORKERS_MAX];
	int			n = r->process_max;
	bool		crashed = false;
	char		crash[256] = "";
	pid_t		parent = getpid();

	r->shared->first_failed = -1;
	if (n == 1)
		run_worker(r, 0);
	else
	{
		fflush(NULL);
		for (int i = 0; i < n; i++)
		{
			pids[i] = fork();
			if (pids[i] < 0)
			{
				PgbrError	e;

				pgbr_error_init(&e);
				pgbr_error_errno(&e, PGBR_ERR_RESTORE, "could not start restore worker %d", i + 1);
				record_failure(r, i, &e);
				n = i;
				break;
			}
			if (pids[i] == 0)
			{
				signal(SIGINT, SIG_DFL);
				signal(SIGTERM, SIG_DFL);
				/* a worker does not outlive the restore */
				(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
				if (getppid() != parent)
					_exit(1);
				_exit(run_worker(r, i) ? 0 : 1);
			}
		}
		for (int i = 0; i < n; i++)
		{
			int			status;

			while (waitpid(pids[i], &status, 0) < 0)
			{
				if (errno != EINTR)
				{
					status = 0;
					break;
				}
			}
			if (WIFSIGNALED(status) && !crashed)
			{
				crashed = true;
				snprintf(crash, sizeof(crash), "restore worker %d (pid %d) was terminated by signal %d",
						 i + 1, (int) pids[i], WTERMSIG(status));
			}
		}
	}
	if (r->shared->failures > 0 && r->shared->first_failed >= 0)
	{
		WorkerError *we = &r->shared->errors[r->shared->first_failed];

		pgbr_error_set(err, we->code, "%s", we->message);
		if (we->hint[0])
			pgbr_error_hint(err, "%s", we->hint);
		return false;
	}
	if (crashed)
		return pgbr_error_set(err, PGBR_ERR_RESTORE, "%s", crash);
	return true;
}

/* ---------------------------------------------------------------------- */
/* pass 7: pg_control, last */

bool
restore_pg_control(Restore *r, PgbrError *err)
{
	PgbrManifestEntry e;
	SSL_CTX    *tls;
	PgbrConn   *conn;
	char		abs[PATH_MAX],
				tmp[PATH_MAX],
				dir[PATH_MAX];
	bool		ok;

	if (!pgbr_manifest_entry_parse(r->pg_control_line, strlen(r->pg_control_line), &e, err))
		return false;
	pgbr_log(PGBR_LOG_INFO, "restore %s (performed last to ensure aborted restores cannot be started)",
			 PG_CONTROL);
	restore_join(abs, sizeof(abs), r->pg_path, PG_CONTROL);
	snprintf(tmp, sizeof(tmp), "%s.pgbr.tmp", abs);
	restore_join(dir, sizeof(dir), r->pg_path, "global");
	conn = tool_connect(r->ctx, "restore", true, &tls, err);
	if (conn == NULL)
		return false;
	ok = pipe_open(r, err) &&
		send_file_get(r, conn, &e, r->pg_control_line, strlen(r->pg_control_line), err) &&
		receive_file(r, conn, &e, abs, tmp, err);
	tool_disconnect(conn, tls);
	pipe_close(r);
	if (!ok)
	{
		unlink(tmp);
		return false;
	}
	if (rename(tmp, abs) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not rename \"%s\" to \"%s\"", tmp, abs);
		unlink(tmp);
		return false;
	}
	return pgbr_fsync_dir(dir, err);
}

