/*
 * backup_send.c
 *		A stream of a backup: one session to the repository that claims
 *		entries of the file list and sends them with FILE_PUT.
 *
 * A file is read in chunks and pushed through read -> SHA-256 -> [zstd]
 * -> DATA frames; the END frame that closes it carries the SHA-256 and the
 * blocks whose page checksum failed, so the content is read once and never
 * held whole in memory.  Exactly the size in the list is sent: a file that
 * shrank is padded with zeros, growth is ignored (WAL replay repairs both),
 * a file that vanished is skipped.
 *
 * Answers are read lazily: up to PIPELINE_MAX FILE_PUTs may be in flight,
 * which keeps small files from costing a round trip each.
 */
#include "backup.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/bufpage.h"
#include "storage/checksum.h"

#define PIPELINE_MAX		32
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
	char	   *line;
	uint8	   *chunk;
	uint8	   *page;
	PgbrBuf		body;
	PgbrBuf		answer;
	int			pending;		/* FILE_PUTs without their answer yet */
	PgbrSink   *sha;			/* the chain of the file being sent */
	PgbrSink   *zst;
	PgbrSink   *data;
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
	pgbr_sink_free(s->sha);
	pgbr_sink_free(s->zst);
	pgbr_sink_free(s->data);
	s->sha = s->zst = s->data = NULL;
}

/*
 * Files at least this large are compressed by zstd on two threads: one
 * stream holding a 1 GB relation segment would otherwise keep a single
 * core busy while the others wait.
 */
#define THREADED_COMPRESS_MIN	(32 * 1024 * 1024)

/* read -> sha256 -> [zstd] -> DATA */
static void
chain_create(Stream *s, PgbrCompress compress, int level, uint64 size)
{
	PgbrError	err;

	pgbr_error_init(&err);
	s->data = pgbr_sink_data_create(s->conn);
	if (s->data == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (compress == PGBR_COMPRESS_ZST &&
		(s->zst = pgbr_sink_zstd_compress_create(level, size >= THREADED_COMPRESS_MIN ? 2 : 0,
												 s->data, &err)) == NULL)
		raise_err(&err);
	if ((s->sha = pgbr_sink_sha256_create(s->zst ? s->zst : s->data, &err)) == NULL)
		raise_err(&err);
}

static void
send_line(Stream *s, const PgbrManifestEntry *e)
{
	PgbrError	err;
	PgbrBuf		line;

	pgbr_error_init(&err);
	pgbr_buf_init(&line);
	pgbr_manifest_entry_format(e, &line);
	line.data[--line.len] = '\0';	/* without its newline */
	pgbr_buf_reset(&s->body);
	pgbr_name_encode(&s->body, (const char *) line.data);
	pgbr_buf_release(&line);
	if (!pgbr_conn_send(s->conn, PGBR_MSG_FILE_PUT, s->body.data, s->body.len, &err))
		raise_err(&err);
}

/* closes the content: END with the SHA-256 and the bad pages */
static void
send_end(Stream *s, const char *bad_pages)
{
	PgbrError	err;
	uint8		sum[PGBR_SHA256_LEN];

	pgbr_error_init(&err);
	if (!pgbr_sink_finish(s->sha, &err))
		raise_err(&err);
	pgbr_sink_sha256_result(s->sha, sum);
	pgbr_buf_reset(&s->body);
	pgbr_buf_put(&s->body, sum, sizeof(sum));
	pgbr_buf_put_str(&s->body, bad_pages);
	if (!pgbr_conn_send(s->conn, PGBR_MSG_END, s->body.data, s->body.len, &err))
		raise_err(&err);
}

/* answers of FILE_PUTs: until at most `keep` are outstanding */
static void
collect_answers(Stream *s, int keep, bool only_ready)
{
	PgbrError	err;

	pgbr_error_init(&err);
	while (s->pending > keep)
	{
		if (only_ready && !pgbr_conn_readable(s->conn))
			return;
		if (!pgbr_conn_expect_ok(s->conn, &s->answer, &err))
			raise_err(&err);
		s->pending--;
	}
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
	PgbrError	err;

	pgbr_error_init(&err);
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
		if (!pgbr_sink_write(s->sha, s->chunk, want, &err))
			raise_err(&err);
		done += want;
		pg_atomic_fetch_add_u64(&s->shared->bytes_done, want);
		CHECK_FOR_INTERRUPTS();
		check_abort(s->shared);
	}
}

/* SHA-256 of exactly e->size bytes of fd, as push_content would send them */
static bool
same_content(Stream *s, int fd, const PgbrManifestEntry *e)
{
	PgbrError	err;
	PgbrSha256 *ctx;
	uint8		sum[PGBR_SHA256_LEN];
	uint64		done = 0;
	bool		eof = false;

	pgbr_error_init(&err);
	ctx = pgbr_sha256_create(&err);
	if (ctx == NULL)
		raise_err(&err);
	PG_TRY();
	{
		while (done < e->size)
		{
			size_t		got;
			size_t		want = next_chunk(s, fd, e, done, &eof, &got);

			pgbr_sha256_update(ctx, s->chunk, want);
			done += want;
			CHECK_FOR_INTERRUPTS();
		}
		pgbr_sha256_final(ctx, sum);
	}
	PG_FINALLY();
	{
		pgbr_sha256_free(ctx);
	}
	PG_END_TRY();
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
		send_line(s, e);
		s->pending++;
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
			send_line(s, e);
			s->pending++;
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
	}

	send_line(s, e);
	chain_create(s, (PgbrCompress) e->compress, s->shared->compress_level, e->size);
	push_content(s, s->fd, e, &bp);
	send_end(s, bp.list);
	s->pending++;
	chain_free(s);
	close(s->fd);
	s->fd = -1;

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
read_entry(Stream *s, uint64 idx)
{
	uint8		rec[PGBR_INDEX_RECORD];
	uint64		off;
	uint32		len;
	PgbrError	err;

	if (pg_pread(s->index_fd, rec, sizeof(rec), (off_t) (idx * PGBR_INDEX_RECORD)) != sizeof(rec))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read entry " UINT64_FORMAT " of file \"%s\": %m",
						idx, s->shared->index_path)));
	memcpy(&off, rec, sizeof(off));
	memcpy(&len, rec + sizeof(off), sizeof(len));
	if (len == 0 || len > PGBR_TEXT_MAX ||
		pg_pread(s->list_fd, s->line, len, (off_t) off) != (ssize_t) len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read entry " UINT64_FORMAT " of file \"%s\": %m",
						idx, s->shared->list_path)));
	s->line[len] = '\0';
	pgbr_error_init(&err);
	if (!pgbr_manifest_entry_parse(s->line, len, s->e, &err))
		raise_err(&err);
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
	pgbr_buf_init(&s.body);
	pgbr_buf_init(&s.answer);
	s.list_fd = open(shared->list_path, O_RDONLY | PG_BINARY);
	s.index_fd = open(shared->index_path, O_RDONLY | PG_BINARY);

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
			if (idx >= shared->nentries)
				break;
			read_entry(&s, idx);
			if (s.e->kind == 'f')
			{
				send_file(&s, s.e);
				pg_atomic_fetch_add_u64(&shared->files_done, 1);
			}
			else
			{
				send_line(&s, s.e);
				s.pending++;
			}
			collect_answers(&s, PIPELINE_MAX - 1, false);
			collect_answers(&s, 0, true);
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
		chain_create(&s, compress, level, len);
		if (!pgbr_sink_write(s.sha, data, len, &err))
			raise_err(&err);
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
