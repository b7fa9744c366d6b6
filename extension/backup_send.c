/*
 * backup_send.c
 *		A stream of a backup: one session to the repository that claims
 *		entries of the file list and sends them with FILE_PUT.
 *
 * A file is read in chunks and pushed through read -> checksum -> [zstd]
 * -> DATA frames (the checksum: pgbr_filesum, SHA-256 of the content or of
 * its 64 MiB pieces); the END frame that closes it carries it and the
 * blocks whose page checksum failed, so the content is read once and never
 * held whole in memory.  Exactly the size in the list is sent: a file that
 * shrank is padded with zeros, growth is ignored (WAL replay repairs both),
 * a file that vanished is skipped.
 *
 * What a small file costs matters as much as the bytes: a cluster of ten
 * thousand tables is forty thousand files of a few kilobytes.  So a stream
 * keeps, for all its files, one SHA-256 context, one zstd compressor (its
 * tables allocated once, sized for each file by announcing its size) and
 * one DATA stage; it reads the file list through small caches instead of
 * two preads per entry; it sends the list's line as it is; and it reads
 * the answers lazily: up to PIPELINE_MAX FILE_PUTs may be in flight, so
 * files never wait for a round trip, and answers already received are
 * collected now and then, not polled for after every file.
 */
#include "backup.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/bufpage.h"
#include "storage/checksum.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include <openssl/ssl.h>

/*
 * FILE_PUTs in flight at most.  The server answers each one (some 40 bytes
 * with TLS): the answers of a full window must fit in the socket buffers,
 * or the server would block writing them while we block writing files.
 */
#define PIPELINE_MAX		256
/* files sent between two looks for answers that arrived meanwhile */
#define COLLECT_EVERY		32
/* index records and list bytes read at once */
#define INDEX_CACHE			256
#define LIST_CACHE			(64 * 1024)
/* page checksum failures logged per file; the rest are only counted */
#define BAD_PAGES_LOGGED	5

StaticAssertDecl(PGBR_CHUNK_SIZE % BLCKSZ == 0, "chunks must hold whole pages");

typedef struct Stream
{
	PgbrBackupShared *shared;
	PgbrConn   *conn;
	int			list_fd;
	int			index_fd;
	int			fd;				/* file being sent, -1 if none */
	PgbrManifestEntry *e;
	char	   *line;			/* the entry's list line, without newline */
	size_t		line_len;
	uint8	   *chunk;
	uint8	   *page;
	PgbrBuf		body;
	PgbrBuf		answer;
	int			pending;		/* FILE_PUTs without their answer yet */
	int			since_collect;	/* files sent since answers were collected */

	/* caches of the index and list files (read-only while streams run) */
	uint8	   *index_cache;
	uint64		index_first;	/* entry of index_cache[0] */
	uint64		index_count;	/* records in index_cache */
	char	   *list_cache;
	uint64		list_first;		/* list offset of list_cache[0] */
	size_t		list_len;		/* bytes in list_cache */

	/*
	 * The stages, kept for all files of the stream: read -> checksum (sha, a
	 * pgbr_filesum reset by each final) -> [zst or zst_mt] -> DATA frames (data).  head
	 * is where the content of the file being sent goes.
	 */
	PgbrFileSum *sha;
	PgbrSink   *zst;			/* one thread */
	PgbrSink   *zst_mt;			/* large files: two threads; on first use */
	PgbrSink   *data;
	PgbrSink   *head;
} Stream;

/* blocks of one file whose checksum failed */
typedef struct BadPages
{
	char		list[sizeof(((PgbrManifestEntry *) 0)->bad_pages)];
	size_t		len;
	int			count;
} BadPages;

/* ---- helpers ---- */

static void
raise_err(PgbrError *err)
{
	pgbr_ereport(ERROR, err);
}

static void
chain_free(Stream *s)
{
	pgbr_filesum_free(s->sha);
	pgbr_sink_free(s->zst);
	pgbr_sink_free(s->zst_mt);
	pgbr_sink_free(s->data);
	s->sha = NULL;
	s->zst = s->zst_mt = s->data = s->head = NULL;
}

/*
 * Files at least this large are compressed by zstd on two threads: one
 * stream holding a 1 GB relation segment would otherwise keep a single
 * core busy while the others wait.
 */
#define THREADED_COMPRESS_MIN	(32 * 1024 * 1024)

/*
 * Files up to this size are announced to the compressor: zstd then sizes
 * its window and tables for the file (a few kilobytes for most relation
 * files, instead of clearing about a megabyte of tables per file at level
 * 3) and compresses it from one buffer, which the compressor keeps for the
 * next files: this size bounds it.
 */
#define ANNOUNCE_MAX			(1024 * 1024)

/*
 * zstd's jobs for those two threads.  Its default at level 3 (8 MiB, four
 * windows) made the process grow by about 50 MiB while it compressed a
 * large file.  Independent 2 MiB jobs hold about 17 MiB; measured on a
 * 512 MiB slice of random bytes they cost 3.6-3.8 CPU-s against 3.9-4.3 for
 * 1 MiB jobs overlapping by zstd's default (3.4-3.8 for the default 8 MiB
 * jobs), and on a pgbench_accounts segment 2.2 against 2.4 CPU-s, with 3 %
 * smaller output.
 */
#define THREADED_JOB_SIZE		(2 * 1024 * 1024)

static PgbrSink *
compressor_create(Stream *s, int level, int workers)
{
	PgbrError	err;
	PgbrSink   *z;

	pgbr_error_init(&err);
	z = pgbr_sink_zstd_compress_create(level, workers, s->data, &err);
	if (z == NULL)
		raise_err(&err);
	if (workers > 0)
		(void) pgbr_sink_zstd_compress_job_size(z, THREADED_JOB_SIZE);
	return z;
}

/*
 * Gets the stages ready for a file of `size` bytes: read -> SHA-256 ->
 * [zstd] -> DATA.  The stages are created on first use and then only
 * restarted.
 */
static void
chain_start(Stream *s, PgbrCompress compress, int level, uint64 size)
{
	PgbrError	err;

	pgbr_error_init(&err);
	if (s->data == NULL && (s->data = pgbr_sink_data_create(s->conn)) == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (s->sha == NULL && (s->sha = pgbr_filesum_create(&err)) == NULL)
		raise_err(&err);
	s->head = s->data;
	if (compress != PGBR_COMPRESS_ZST)
		return;
	if (size >= THREADED_COMPRESS_MIN)
	{
		if (s->zst_mt == NULL)
			s->zst_mt = compressor_create(s, level, 2);
		s->head = s->zst_mt;
	}
	else
	{
		if (s->zst == NULL)
			s->zst = compressor_create(s, level, 0);
		s->head = s->zst;
	}
	pgbr_sink_zstd_compress_restart(s->head, s->data);
	if (size <= ANNOUNCE_MAX)
		pgbr_sink_zstd_compress_expect(s->head, size);
}

/* content of the file being sent, through the stages */
static void
chain_write(Stream *s, const void *data, size_t len)
{
	PgbrError	err;

	pgbr_error_init(&err);
	pgbr_filesum_update(s->sha, data, len);
	if (!pgbr_sink_write(s->head, data, len, &err))
		raise_err(&err);
}

/* FILE_PUT with the line text (without its newline) */
static void
send_line_text(Stream *s, const char *line, size_t len)
{
	PgbrError	err;

	pgbr_error_init(&err);
	/* as pgbr_name_encode(), without the strlen */
	pgbr_buf_reset(&s->body);
	pgbr_buf_put_u32(&s->body, (uint32) len);
	pgbr_buf_put(&s->body, line, len);
	if (!pgbr_conn_send(s->conn, PGBR_MSG_FILE_PUT, s->body.data, s->body.len, &err))
		raise_err(&err);
}

/* FILE_PUT of an entry changed since it was read from the list */
static void
send_line(Stream *s, const PgbrManifestEntry *e)
{
	PgbrBuf		line;

	pgbr_buf_init(&line);
	pgbr_manifest_entry_format(e, &line);
	send_line_text(s, (const char *) line.data, line.len - 1);	/* without newline */
	pgbr_buf_release(&line);
}

/* closes the content: END with the SHA-256 and the bad pages */
static void
send_end(Stream *s, const char *bad_pages)
{
	PgbrError	err;
	uint8		sum[PGBR_SHA256_LEN];

	pgbr_error_init(&err);
	if (!pgbr_sink_finish(s->head, &err))
		raise_err(&err);
	pgbr_filesum_final(s->sha, sum);
	pgbr_buf_reset(&s->body);
	pgbr_buf_put(&s->body, sum, sizeof(sum));
	pgbr_buf_put_str(&s->body, bad_pages);
	if (!pgbr_conn_send(s->conn, PGBR_MSG_END, s->body.data, s->body.len, &err))
		raise_err(&err);
}

/*
 * Whether an answer has arrived: TLS read ahead (see pgbr_stream_run) may
 * hold it before it is a record SSL_pending counts, so look there before
 * polling the socket.
 */
static bool
answer_ready(Stream *s)
{
	return SSL_has_pending(pgbr_conn_ssl(s->conn)) || pgbr_conn_readable(s->conn);
}

/*
 * Answers of FILE_PUTs: until at most `keep` are outstanding, or, with
 * only_ready, as many as arrived already (never waiting).
 */
static void
collect_answers(Stream *s, int keep, bool only_ready)
{
	PgbrError	err;

	pgbr_error_init(&err);
	while (s->pending > keep)
	{
		if (only_ready && !answer_ready(s))
			return;
		if (!pgbr_conn_expect_ok(s->conn, &s->answer, &err))
			raise_err(&err);
		s->pending--;
	}
}

/*
 * After each FILE_PUT: waits only when the window is full, and otherwise
 * takes the answers that arrived every COLLECT_EVERY files (looking costs
 * a poll, and reading flushes what is buffered for the server).  A full
 * window means the server is behind: waiting for half of it, not for one
 * answer, keeps the server busy with the other half and spares a flush
 * and a wait per file.
 */
static void
sent_one(Stream *s)
{
	s->pending++;
	if (s->pending >= PIPELINE_MAX)
		collect_answers(s, PIPELINE_MAX / 2, false);
	else if (++s->since_collect < COLLECT_EVERY)
		return;
	s->since_collect = 0;
	collect_answers(s, 0, true);
}

/* reads up to len bytes, fewer only at end of file */
static size_t
read_full(int fd, uint8 *buf, size_t len, const char *path)
{
	size_t		got = 0;

	while (got < len)
	{
		ssize_t		n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", path)));
		if (n == 0)
			break;
		got += (size_t) n;
	}
	return got;
}

/*
 * The next chunk of a file as it is sent: at most PGBR_CHUNK_SIZE bytes of
 * the e->size the list gave, zero-padded once the file turned out shorter
 * (it shrank during the backup; WAL replay fixes it).  Returns the chunk's
 * length; *got is what was really read.
 */
static size_t
next_chunk(Stream *s, int fd, const PgbrManifestEntry *e, uint64 done, bool *eof, size_t *got)
{
	size_t		want = (size_t) Min(e->size - done, (uint64) PGBR_CHUNK_SIZE);

	*got = *eof ? 0 : read_full(fd, s->chunk, want, e->path);
	if (*got < want)
	{
		*eof = true;
		memset(s->chunk + *got, 0, want - *got);
	}
	return want;
}

static void
bad_page_add(BadPages *bp, BlockNumber blk)
{
	char		num[16];
	int			n = snprintf(num, sizeof(num), "%s%u", bp->len ? "," : "", blk);

	bp->count++;
	/* the list is bounded; the count and the log have them all */
	if (bp->len + n < sizeof(bp->list))
	{
		memcpy(bp->list + bp->len, num, n + 1);
		bp->len += n;
	}
}

/*
 * Verifies the pages of a chunk as basebackup.c does: new pages and pages
 * changed since the backup started (WAL replay rewrites them) are skipped;
 * a mismatch is re-read once, since a read racing with a write can see
 * half a page, and only a second mismatch counts.  The re-read page is the
 * one sent.
 */
static void
verify_pages(Stream *s, int fd, const char *path, uint8 *buf, int npages,
			 BlockNumber first, uint32 segno, BadPages *bp)
{
	XLogRecPtr	start = s->shared->start_lsn;

	for (int i = 0; i < npages; i++)
	{
		char	   *page = (char *) buf + (size_t) i * BLCKSZ;
		BlockNumber blk = first + i;
		uint16		sum;
		uint16		expected;
		ssize_t		n;

		if (PageIsNew(page) || PageGetLSN(page) >= start)
			continue;
		sum = pg_checksum_page(page, blk + segno * RELSEG_SIZE);
		if (sum == ((PageHeader) page)->pd_checksum)
			continue;

		do
			n = pread(fd, s->page, BLCKSZ, (off_t) blk * BLCKSZ);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", path)));
		if (n != BLCKSZ)
			continue;			/* truncated meanwhile: nothing to verify */
		memcpy(page, s->page, BLCKSZ);
		if (PageIsNew(page) || PageGetLSN(page) >= start)
			continue;
		sum = pg_checksum_page(page, blk + segno * RELSEG_SIZE);
		expected = ((PageHeader) page)->pd_checksum;
		if (sum == expected)
			continue;
		if (bp->count < BAD_PAGES_LOGGED)
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("checksum verification failed in file \"%s\", block %u: calculated %X but expected %X",
							path, blk, sum, expected)));
		bad_page_add(bp, blk);
	}
}

static void
check_abort(PgbrBackupShared *shared)
{
	PgbrSharedError e;

	if (!shared->abort)
		return;
	LWLockAcquire(shared->lock, LW_SHARED);
	e = shared->stream_error;
	LWLockRelease(shared->lock);
	if (e.message[0] == '\0')
		strlcpy(e.message, "the backup was aborted", sizeof(e.message));
	pgbr_shared_error_raise(&e);
}

/*
 * Pushes exactly e->size bytes of fd into the chain (zero padding past an
 * early end of file), verifying page checksums of relation files.
 */
static void
push_content(Stream *s, int fd, const PgbrManifestEntry *e, BadPages *bp)
{
	uint64		done = 0;
	bool		eof = false;
	uint32		segno = 0;
	bool		verify = s->shared->verify_checksums && pgbr_relation_file(e->path, &segno);

	while (done < e->size)
	{
		size_t		got;
		size_t		want = next_chunk(s, fd, e, done, &eof, &got);

		if (verify)
		{
			verify_pages(s, fd, e->path, s->chunk, (int) (got / BLCKSZ),
						 (BlockNumber) (done / BLCKSZ), segno, bp);
			/* a partial page: the rest of the file cannot be verified */
			if (got % BLCKSZ != 0 || eof)
				verify = false;
		}
		chain_write(s, s->chunk, want);
		done += want;
		pg_atomic_fetch_add_u64(&s->shared->bytes_done, want);
		CHECK_FOR_INTERRUPTS();
		check_abort(s->shared);
	}
}

/* checksum of exactly e->size bytes of fd, as push_content would send them */
static bool
same_content(Stream *s, int fd, const PgbrManifestEntry *e)
{
	PgbrError	err;
	uint8		sum[PGBR_SHA256_LEN];
	uint64		done = 0;
	bool		eof = false;

	pgbr_error_init(&err);
	if (s->sha == NULL && (s->sha = pgbr_filesum_create(&err)) == NULL)
		raise_err(&err);
	while (done < e->size)
	{
		size_t		got;
		size_t		want = next_chunk(s, fd, e, done, &eof, &got);

		pgbr_filesum_update(s->sha, s->chunk, want);
		done += want;
		CHECK_FOR_INTERRUPTS();
	}
	pgbr_filesum_final(s->sha, sum);
	return memcmp(sum, e->sha256, sizeof(sum)) == 0;
}

static void
send_file(Stream *s, PgbrManifestEntry *e)
{
	BadPages	bp;

	memset(&bp, 0, sizeof(bp));
	if (e->reference[0] && !s->shared->delta)
	{
		/* unchanged by size and time: the prior's data, no reading */
		send_line_text(s, s->line, s->line_len);
		sent_one(s);
		pg_atomic_fetch_add_u64(&s->shared->bytes_done, e->size);
		return;
	}

	s->fd = open(e->path, O_RDONLY | PG_BINARY);
	if (s->fd < 0)
	{
		if (errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", e->path)));
		/* removed since the walk: not in this backup, WAL replay agrees */
		ereport(DEBUG1, (errmsg_internal("skip file removed by database \"%s\"", e->path)));
		pg_atomic_fetch_add_u64(&s->shared->bytes_done, e->size);
		return;
	}

	if (e->reference[0])
	{
		/* delta: same size and time is not enough, the checksum decides */
		if (same_content(s, s->fd, e))
		{
			send_line_text(s, s->line, s->line_len);
			sent_one(s);
			pg_atomic_fetch_add_u64(&s->shared->bytes_done, e->size);
			close(s->fd);
			s->fd = -1;
			return;
		}
		if (lseek(s->fd, 0, SEEK_SET) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not seek in file \"%s\": %m", e->path)));
		e->reference[0] = '\0';
		e->has_sha = false;
		e->repo_size = 0;
		e->bundle[0] = '\0';
		e->offset = 0;
		e->compress = (uint8) s->shared->compress;
		e->bad_pages[0] = '\0';
		send_line(s, e);
	}
	else
		send_line_text(s, s->line, s->line_len);

	chain_start(s, (PgbrCompress) e->compress, s->shared->compress_level, e->size);
	push_content(s, s->fd, e, &bp);
	send_end(s, bp.list);
	close(s->fd);
	s->fd = -1;
	sent_one(s);

	if (bp.count > 0)
	{
		if (bp.count > BAD_PAGES_LOGGED)
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("file \"%s\" has a total of %d checksum verification failures",
							e->path, bp.count)));
		pg_atomic_fetch_add_u32(&s->shared->checksum_files, 1);
	}
}

static void
read_failed(Stream *s, uint64 idx, const char *path)
{
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not read entry " UINT64_FORMAT " of file \"%s\": %m", idx, path)));
}

/*
 * Reads entry idx of the list into s->line and s->e.  The streams claim
 * neighbouring entries, so both files are read through caches: a block of
 * index records, a window of the list.
 */
static void
read_entry(Stream *s, uint64 idx)
{
	uint8	   *rec;
	uint64		off;
	uint32		len;
	PgbrError	err;

	if (idx < s->index_first || idx >= s->index_first + s->index_count)
	{
		uint64		n = Min((uint64) INDEX_CACHE,
							pg_atomic_read_u64(&s->shared->entries_ready) - idx);
		ssize_t		got;

		errno = 0;
		got = pg_pread(s->index_fd, s->index_cache, n * PGBR_INDEX_RECORD,
					   (off_t) (idx * PGBR_INDEX_RECORD));
		if (got < (ssize_t) PGBR_INDEX_RECORD)
			read_failed(s, idx, s->shared->index_path);
		s->index_first = idx;
		s->index_count = (uint64) got / PGBR_INDEX_RECORD;
	}
	rec = s->index_cache + (idx - s->index_first) * PGBR_INDEX_RECORD;
	memcpy(&off, rec, sizeof(off));
	memcpy(&len, rec + sizeof(off), sizeof(len));
	if (len == 0 || len > PGBR_TEXT_MAX)
	{
		errno = EINVAL;
		read_failed(s, idx, s->shared->list_path);
	}
	if (off < s->list_first || off + len > s->list_first + s->list_len)
	{
		ssize_t		got;

		errno = 0;
		got = pg_pread(s->list_fd, s->list_cache, LIST_CACHE, (off_t) off);
		if (got < (ssize_t) len)
			read_failed(s, idx, s->shared->list_path);
		s->list_first = off;
		s->list_len = (size_t) got;
	}
	memcpy(s->line, s->list_cache + (off - s->list_first), len);
	s->line[len] = '\0';
	s->line_len = len;
	pgbr_error_init(&err);
	if (!pgbr_manifest_entry_parse(s->line, len, s->e, &err))
		raise_err(&err);
	/* the line as sent: without its newline */
	if (s->line[len - 1] == '\n')
		s->line[--s->line_len] = '\0';
}

/*
 * Whether the list has entry idx, waiting while the walk may still write
 * it.  Frames already queued go out before a wait.
 */
static bool
wait_listed(Stream *s, uint64 idx)
{
	for (;;)
	{
		PgbrError	err;

		if (idx < pg_atomic_read_u64(&s->shared->entries_ready))
		{
			pg_read_barrier();	/* pairs with publish()'s write barrier */
			return true;
		}
		if (pg_atomic_read_u32(&s->shared->list_complete))
		{
			pg_read_barrier();
			return idx < pg_atomic_read_u64(&s->shared->entries_ready);
		}
		check_abort(s->shared);
		pgbr_error_init(&err);
		if (!pgbr_conn_flush(s->conn, &err))
			raise_err(&err);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 2,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

void
pgbr_stream_run(PgbrBackupShared *shared, PgbrConn *conn)
{
	Stream		s;

	memset(&s, 0, sizeof(s));
	s.shared = shared;
	s.conn = conn;
	s.fd = -1;
	s.e = palloc(sizeof(PgbrManifestEntry));
	s.line = palloc(PGBR_TEXT_MAX + 1);
	s.chunk = palloc(PGBR_CHUNK_SIZE);
	s.page = palloc(BLCKSZ);
	s.index_cache = palloc(INDEX_CACHE * PGBR_INDEX_RECORD);
	s.list_cache = palloc(LIST_CACHE);
	pgbr_buf_init(&s.body);
	pgbr_buf_init(&s.answer);
	/* the walk has created both files once it has published or ended */
	(void) wait_listed(&s, 0);
	s.list_fd = open(shared->list_path, O_RDONLY | PG_BINARY);
	s.index_fd = open(shared->index_path, O_RDONLY | PG_BINARY);

	/*
	 * Read whatever the socket holds, not one TLS record (two reads) at a
	 * time: the answers of small files come one record each.
	 */
	SSL_set_read_ahead(pgbr_conn_ssl(conn), 1);

	PG_TRY();
	{
		if (s.list_fd < 0 || s.index_fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m",
							s.list_fd < 0 ? shared->list_path : shared->index_path)));
		for (;;)
		{
			uint64		idx;

			check_abort(shared);
			idx = pg_atomic_fetch_add_u64(&shared->next_entry, 1);
			if (!wait_listed(&s, idx))
				break;
			read_entry(&s, idx);
			if (s.e->kind == 'f')
			{
				send_file(&s, s.e);
				pg_atomic_fetch_add_u64(&shared->files_done, 1);
			}
			else
			{
				send_line_text(&s, s.line, s.line_len);
				sent_one(&s);
			}
		}
		collect_answers(&s, 0, false);
	}
	PG_FINALLY();
	{
		chain_free(&s);
		if (s.fd >= 0)
			close(s.fd);
		if (s.list_fd >= 0)
			close(s.list_fd);
		if (s.index_fd >= 0)
			close(s.index_fd);
		pgbr_buf_release(&s.body);
		pgbr_buf_release(&s.answer);
	}
	PG_END_TRY();
}

void
pgbr_stream_send_content(PgbrConn *conn, const char *path, const char *data, size_t len,
						 uint32 mode, int64 mtime, PgbrCompress compress, int level)
{
	Stream		s;
	PgbrManifestEntry *e = palloc(sizeof(PgbrManifestEntry));
	PgbrError	err;

	memset(&s, 0, sizeof(s));
	s.conn = conn;
	pgbr_buf_init(&s.body);
	pgbr_buf_init(&s.answer);
	pgbr_manifest_entry_init(e);
	e->kind = 'f';
	strlcpy(e->path, path, sizeof(e->path));
	e->size = len;
	e->mtime = mtime;
	e->mode = mode;
	e->compress = (uint8) compress;
	pgbr_error_init(&err);
	PG_TRY();
	{
		send_line(&s, e);
		chain_start(&s, compress, level, len);
		chain_write(&s, data, len);
		send_end(&s, "");
		s.pending = 1;
		collect_answers(&s, 0, false);
	}
	PG_FINALLY();
	{
		chain_free(&s);
		pgbr_buf_release(&s.body);
		pgbr_buf_release(&s.answer);
	}
	PG_END_TRY();
	pfree(e);
}
