/*
 * pgbr_client.c
 *		Client requests shared by the extension and the pgbr tool.
 */
#include "pgbr_client.h"
#include "pgbr_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

SSL_CTX *
pgbr_client_tls_ctx(const PgbrConfig *cfg, bool need_cert, PgbrError *err)
{
	const char *cert = pgbr_config_get(cfg, "repo1-host-cert-file");
	const char *key = pgbr_config_get(cfg, "repo1-host-key-file");

	if (!pgbr_config_require(cfg, "repo1-host-ca-file", err))
		return NULL;
	if (need_cert && (!pgbr_config_require(cfg, "repo1-host-cert-file", err) ||
					  !pgbr_config_require(cfg, "repo1-host-key-file", err)))
		return NULL;
	return pgbr_client_tls_ctx_files(cert, key, pgbr_config_get(cfg, "repo1-host-ca-file"), err);
}

SSL_CTX *
pgbr_client_tls_ctx_files(const char *cert, const char *key, const char *ca, PgbrError *err)
{
	return pgbr_tls_client_ctx(cert, key, ca, err);
}

PgbrConn *
pgbr_client_open(const PgbrConfig *cfg, SSL_CTX *ctx, const char *program, const char *stanza,
				 PgbrWaitFn wait, void *wait_arg, PgbrError *err)
{
	const char *host;
	PgbrConn   *conn;
	PgbrHello	hello;
	PgbrBuf		b;

	if (!pgbr_config_require(cfg, "repo1-host", err))
		return NULL;
	host = pgbr_config_get(cfg, "repo1-host");
	conn = pgbr_conn_connect(host, (int) pgbr_config_get_int(cfg, "repo1-host-port"), ctx,
							 (int) pgbr_config_get_int(cfg, "io-timeout") * 1000,
							 wait, wait_arg, err);
	if (conn == NULL || stanza == NULL)
		return conn;

	memset(&hello, 0, sizeof(hello));
	hello.magic = PGBR_PROTO_MAGIC;
	hello.version = PGBR_PROTOCOL_VERSION;
	snprintf(hello.program, sizeof(hello.program), "%s", program);
	snprintf(hello.stanza, sizeof(hello.stanza), "%s", stanza);
	pgbr_buf_init(&b);
	pgbr_hello_encode(&b, &hello);
	if (!pgbr_conn_send(conn, PGBR_MSG_HELLO, b.data, b.len, err) ||
		!pgbr_conn_expect_ok(conn, NULL, err))
	{
		pgbr_buf_release(&b);
		pgbr_conn_free(conn);
		return NULL;
	}
	pgbr_buf_release(&b);
	return conn;
}

bool
pgbr_client_ping(PgbrConn *conn, char *version, size_t len, PgbrError *err)
{
	PgbrBuf		b;
	bool		ok;

	pgbr_buf_init(&b);
	ok = pgbr_conn_send(conn, PGBR_MSG_PING, NULL, 0, err) &&
		pgbr_conn_expect_ok(conn, &b, err) &&
		pgbr_name_decode(b.data, b.len, version, len - 1, err);
	pgbr_buf_release(&b);
	return ok;
}

bool
pgbr_client_stanza_create(PgbrConn *conn, const PgbrStanzaMsg *m, PgbrError *err)
{
	PgbrBuf		b;
	bool		ok;

	pgbr_buf_init(&b);
	pgbr_stanza_encode(&b, m);
	ok = pgbr_conn_send(conn, PGBR_MSG_STANZA_CREATE, b.data, b.len, err) &&
		pgbr_conn_expect_ok(conn, NULL, err);
	pgbr_buf_release(&b);
	return ok;
}

bool
pgbr_client_stanza_get(PgbrConn *conn, PgbrStanzaMsg *m, PgbrError *err)
{
	PgbrBuf		b;
	bool		ok;

	pgbr_buf_init(&b);
	ok = pgbr_conn_send(conn, PGBR_MSG_STANZA_GET, NULL, 0, err) &&
		pgbr_conn_expect_ok(conn, &b, err) &&
		pgbr_stanza_decode(b.data, b.len, m, err);
	pgbr_buf_release(&b);
	return ok;
}

struct PgbrWalSender
{
	PgbrCompress compress;
	PgbrSink   *zst;			/* kept from file to file; NULL: none */
	uint8_t    *chunk;
};

PgbrWalSender *
pgbr_wal_sender_create(PgbrCompress compress, int level, int workers, PgbrError *err)
{
	PgbrWalSender *s = pgbr_malloc(sizeof(PgbrWalSender));

	if (s == NULL || (s->chunk = pgbr_malloc(PGBR_CHUNK_SIZE)) == NULL)
	{
		pgbr_free(s);
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	s->compress = compress;
	s->zst = NULL;
	if (compress == PGBR_COMPRESS_ZST &&
		(s->zst = pgbr_sink_zstd_compress_create(level, workers, NULL, err)) == NULL)
	{
		pgbr_wal_sender_free(s);
		return NULL;
	}
	return s;
}

void
pgbr_wal_sender_free(PgbrWalSender *s)
{
	if (s == NULL)
		return;
	pgbr_sink_free(s->zst);
	pgbr_free(s->chunk);
	pgbr_free(s);
}

bool
pgbr_wal_sender_send(PgbrWalSender *s, PgbrConn *conn, const char *name, const char *path,
					 PgbrError *err)
{
	PgbrWalMsg	m;
	PgbrBuf		b;
	PgbrSink   *out = NULL,
			   *sha = NULL;
	int			fd;
	bool		ok = false;
	off_t		size;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open WAL file \"%s\"", path);
	size = lseek(fd, 0, SEEK_END);
	if (size < 0 || lseek(fd, 0, SEEK_SET) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not seek in WAL file \"%s\"", path);
		close(fd);
		return false;
	}

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.size = (uint64_t) size;
	m.compress = (uint8_t) s->compress;
	pgbr_buf_init(&b);
	pgbr_wal_msg_encode(&b, &m);
	if (!pgbr_conn_send(conn, PGBR_MSG_WAL_PUT, b.data, b.len, err))
		goto done;

	/* read -> sha256 -> [zstd] -> DATA frames, END carries the checksum */
	out = pgbr_sink_conn_create(conn, NULL);
	if (out == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		goto done;
	}
	if (s->zst)
	{
		pgbr_sink_zstd_compress_restart(s->zst, out);
		pgbr_sink_zstd_compress_expect(s->zst, m.size);
	}
	sha = pgbr_sink_sha256_create(s->zst ? s->zst : out, err);
	if (sha == NULL)
		goto done;
	pgbr_sink_conn_set_sha(out, sha);
	for (;;)
	{
		ssize_t		n = read(fd, s->chunk, PGBR_CHUNK_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not read WAL file \"%s\"", path);
			goto done;
		}
		if (n == 0)
			break;
		if (!pgbr_sink_write(sha, s->chunk, (size_t) n, err))
			goto done;
	}
	if (sha->bytes_in != m.size)
	{
		pgbr_error_set(err, PGBR_ERR_FILE_READ,
					   "WAL file \"%s\" changed size while being read", path);
		goto done;
	}
	ok = pgbr_sink_finish(sha, err);

done:
	/* the compressor outlives this file's output stage */
	if (s->zst)
		pgbr_sink_zstd_compress_restart(s->zst, NULL);
	pgbr_sink_free(sha);
	pgbr_sink_free(out);
	pgbr_buf_release(&b);
	close(fd);
	return ok;
}

bool
pgbr_client_wal_send(PgbrConn *conn, const char *name, const char *path,
					 PgbrCompress compress, int level, int workers, PgbrError *err)
{
	PgbrWalSender *s = pgbr_wal_sender_create(compress, level, workers, err);
	bool		ok;

	if (s == NULL)
		return false;
	ok = pgbr_wal_sender_send(s, conn, name, path, err);
	pgbr_wal_sender_free(s);
	return ok;
}

bool
pgbr_client_wal_get(PgbrConn *conn, const char *name, int fd, const char *path, PgbrError *err)
{
	PgbrBuf		b;
	PgbrWalMsg	m;
	PgbrSink   *file = NULL,
			   *sha = NULL,
			   *dec = NULL;
	uint8_t		sum[PGBR_SHA256_LEN];
	bool		ok = false;

	pgbr_buf_init(&b);
	pgbr_name_encode(&b, name);
	if (!pgbr_conn_send(conn, PGBR_MSG_WAL_GET, b.data, b.len, err) ||
		!pgbr_conn_expect_ok(conn, &b, err) ||
		!pgbr_wal_msg_decode(b.data, b.len, &m, err))
		goto done;

	/* DATA frames -> [zstd decompress] -> sha256 -> file */
	file = pgbr_sink_fd_create(fd, path);
	sha = pgbr_sink_sha256_create(file, err);
	if (file == NULL || sha == NULL)
		goto done;
	if (m.compress == PGBR_COMPRESS_ZST &&
		(dec = pgbr_sink_zstd_decompress_create(sha, err)) == NULL)
		goto done;
	if (!pgbr_conn_recv_stream(conn, dec ? dec : sha, &b, err))
	{
		if (err->code == PGBR_ERR_FORMAT)
		{
			char		msg[sizeof(err->message)];

			snprintf(msg, sizeof(msg), "%s", err->message);
			pgbr_error_init(err);
			pgbr_error_set(err, PGBR_ERR_CHECKSUM,
						   "WAL file \"%s\" in the repository is damaged: %s", name, msg);
		}
		goto done;
	}
	pgbr_sink_sha256_result(sha, sum);
	/* the checksum covers the length too: the server stores no raw size */
	if (memcmp(sum, m.sha256, PGBR_SHA256_LEN) != 0)
	{
		char		want[PGBR_SHA256_HEXLEN + 1],
					got[PGBR_SHA256_HEXLEN + 1];

		pgbr_hex_encode(m.sha256, PGBR_SHA256_LEN, want);
		pgbr_hex_encode(sum, PGBR_SHA256_LEN, got);
		pgbr_error_set(err, PGBR_ERR_CHECKSUM,
					   "WAL file \"%s\" in the repository is damaged: checksum %s, expected %s",
					   name, got, want);
		goto done;
	}
	ok = true;

done:
	pgbr_sink_free(dec);
	pgbr_sink_free(sha);
	pgbr_sink_free(file);
	pgbr_buf_release(&b);
	return ok;
}

bool
pgbr_client_wal_find(PgbrConn *conn, const char *name, bool *found, PgbrError *err)
{
	PgbrBuf		b;
	PgbrError	e2;
	bool		ok;

	*found = false;
	pgbr_buf_init(&b);
	pgbr_name_encode(&b, name);
	pgbr_error_init(&e2);
	ok = pgbr_conn_send(conn, PGBR_MSG_WAL_FIND, b.data, b.len, err) &&
		pgbr_conn_expect_ok(conn, NULL, &e2);
	if (ok)
		*found = true;
	else if (e2.code == PGBR_ERR_NOT_FOUND)
		ok = true;
	else if (pgbr_error_is_set(&e2))
		pgbr_error_copy(err, &e2);
	pgbr_buf_release(&b);
	return ok;
}

/* ---- parallel push streams ---- */

#define PUSH_JOBS_MAX	160
/* files sent on one session before the answer to the first is read */
#define STREAM_PIPELINE 2

typedef enum PushJobState
{
	JOB_FREE = 0,
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_OK,
	JOB_FAILED
} PushJobState;

typedef struct PushJob
{
	PushJobState state;
	bool		urgent;
	uint64_t	seq;
	char		name[PGBR_NAME_MAX + 1];
	char		path[1024];
	PgbrError	err;			/* JOB_FAILED */
} PushJob;

typedef struct PushStream
{
	PgbrPushPool *pool;
	PgbrConn   *conn;
	PgbrWalSender *sender;
	pthread_t	thread;
	bool		started;
	bool		broken;
	int			inflight[STREAM_PIPELINE];	/* job numbers, oldest first */
	int			ninflight;
} PushStream;

struct PgbrPushPool
{
	pthread_mutex_t lock;
	pthread_cond_t work;
	bool		stopping;
	int			nalive;			/* streams not broken */
	uint64_t	seq;
	int			cancel[2];		/* readable once _free starts: ends every wait */
	int			notify[2];		/* a byte per finished job */
	int			nstreams;
	PushStream	streams[PGBR_PUSH_STREAMS_MAX];
	PushJob		jobs[PUSH_JOBS_MAX];
};

/* a session's wait in a stream thread: poll, ended early by _free */
static int
pool_wait(void *arg, int fd, int events, int timeout_ms, PgbrError *err)
{
	PgbrPushPool *pool = arg;
	struct pollfd p[2];
	int			rc;

	p[0].fd = fd;
	p[0].events = (short) (((events & PGBR_WAIT_READ) ? POLLIN : 0) |
						   ((events & PGBR_WAIT_WRITE) ? POLLOUT : 0));
	p[0].revents = 0;
	p[1].fd = pool->cancel[0];
	p[1].events = POLLIN;
	p[1].revents = 0;
	do
		rc = poll(p, 2, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_RUNTIME, "poll failed");
		return -1;
	}
	if (p[1].revents != 0)
	{
		pgbr_error_set(err, PGBR_ERR_INTERRUPTED, "push stopped");
		return -1;
	}
	return rc > 0 ? 1 : 0;
}

/* with the lock held */
static void
job_finish(PgbrPushPool *pool, PushJob *job, const PgbrError *e)
{
	job->state = e ? JOB_FAILED : JOB_OK;
	if (e)
		pgbr_error_copy(&job->err, e);
	/* a full pipe already says "look" */
	if (write(pool->notify[1], "", 1) < 0)
		(void) 0;
}

/* with the lock held: the session is unusable, and what it carried failed */
static void
stream_break(PushStream *st, const PgbrError *e)
{
	PgbrPushPool *pool = st->pool;

	for (int i = 0; i < st->ninflight; i++)
		job_finish(pool, &pool->jobs[st->inflight[i]], e);
	st->ninflight = 0;
	st->broken = true;
	/* nobody left to send what waits: it fails too */
	if (--pool->nalive == 0)
		for (int i = 0; i < PUSH_JOBS_MAX; i++)
			if (pool->jobs[i].state == JOB_QUEUED)
				job_finish(pool, &pool->jobs[i], e);
}

/* with the lock held: the queued job to send first (urgent, then oldest), or -1 */
static int
next_job(PgbrPushPool *pool)
{
	int			best = -1;

	for (int i = 0; i < PUSH_JOBS_MAX; i++)
	{
		PushJob    *j = &pool->jobs[i];

		if (j->state != JOB_QUEUED)
			continue;
		if (best < 0 || (j->urgent && !pool->jobs[best].urgent) ||
			(j->urgent == pool->jobs[best].urgent && j->seq < pool->jobs[best].seq))
			best = i;
	}
	return best;
}

/* errors after which a session cannot carry another request */
static bool
session_lost(const PgbrError *e)
{
	return e->code == PGBR_ERR_TIMEOUT || e->code == PGBR_ERR_PROTOCOL ||
		e->code == PGBR_ERR_TLS || e->code == PGBR_ERR_RUNTIME ||
		e->code == PGBR_ERR_INTERRUPTED || e->code == PGBR_ERR_MEMORY;
}

/*
 * One stream: sends queued files on its session, up to STREAM_PIPELINE
 * ahead of their answers, so that its core compresses the next file while
 * the server makes the previous one durable.
 */
static void *
stream_main(void *arg)
{
	PushStream *st = arg;
	PgbrPushPool *pool = st->pool;

	pthread_mutex_lock(&pool->lock);
	while (!pool->stopping && !st->broken)
	{
		int			j = st->ninflight < STREAM_PIPELINE ? next_job(pool) : -1;
		PgbrError	e;
		bool		ok;

		pgbr_error_init(&e);
		if (j >= 0)
		{
			PushJob    *job = &pool->jobs[j];

			/* a running job is left alone by everyone else: no copy */
			job->state = JOB_RUNNING;
			pthread_mutex_unlock(&pool->lock);
			ok = pgbr_wal_sender_send(st->sender, st->conn, job->name, job->path, &e) &&
				pgbr_conn_flush(st->conn, &e);
			pthread_mutex_lock(&pool->lock);
			if (ok)
				st->inflight[st->ninflight++] = j;
			else
			{
				job_finish(pool, job, &e);
				/* a file that cannot be opened was not started */
				if (e.code != PGBR_ERR_FILE_OPEN)
					stream_break(st, &e);
			}
		}
		else if (st->ninflight > 0)
		{
			pthread_mutex_unlock(&pool->lock);
			ok = pgbr_conn_expect_ok(st->conn, NULL, &e);
			pthread_mutex_lock(&pool->lock);
			j = st->inflight[0];
			st->ninflight--;
			memmove(st->inflight, st->inflight + 1, sizeof(int) * (size_t) st->ninflight);
			job_finish(pool, &pool->jobs[j], ok ? NULL : &e);
			/* an answered refusal leaves the session usable */
			if (!ok && session_lost(&e))
				stream_break(st, &e);
		}
		else
			pthread_cond_wait(&pool->work, &pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

PgbrPushPool *
pgbr_push_pool_create(PgbrConn **conns, int n, PgbrCompress compress, int level,
					  PgbrError *err)
{
	PgbrPushPool *pool = pgbr_malloc(sizeof(PgbrPushPool));
	sigset_t	all,
				old;

	if (pool == NULL)
	{
		for (int i = 0; i < n; i++)
			pgbr_conn_free(conns[i]);
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	memset(pool, 0, sizeof(PgbrPushPool));
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pool->cancel[0] = pool->cancel[1] = pool->notify[0] = pool->notify[1] = -1;
	if (n > PGBR_PUSH_STREAMS_MAX)
	{
		for (int i = PGBR_PUSH_STREAMS_MAX; i < n; i++)
			pgbr_conn_free(conns[i]);
		n = PGBR_PUSH_STREAMS_MAX;
	}
	pool->nstreams = n;
	for (int i = 0; i < n; i++)
	{
		pool->streams[i].pool = pool;
		pool->streams[i].conn = conns[i];
		pgbr_conn_set_wait(conns[i], pool_wait, pool);
	}
	if (pipe2(pool->cancel, O_CLOEXEC) != 0 ||
		pipe2(pool->notify, O_CLOEXEC | O_NONBLOCK) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_RUNTIME, "could not create a pipe");
		pgbr_push_pool_free(pool);
		return NULL;
	}
	for (int i = 0; i < n; i++)
	{
		/* each stream compresses on its own thread: zstd's own threads would only add waits */
		pool->streams[i].sender = pgbr_wal_sender_create(compress, level, 0, err);
		if (pool->streams[i].sender == NULL)
		{
			pgbr_push_pool_free(pool);
			return NULL;
		}
	}

	/*
	 * The threads must never run a signal handler of the host process (a
	 * PostgreSQL backend's handlers expect its main thread); they inherit
	 * the signal mask of their creator.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < n; i++)
	{
		int			rc = pthread_create(&pool->streams[i].thread, NULL, stream_main,
										&pool->streams[i]);

		if (rc != 0)
		{
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			errno = rc;
			pgbr_error_errno(err, PGBR_ERR_RUNTIME, "could not start a push thread");
			pgbr_push_pool_free(pool);
			return NULL;
		}
		pool->streams[i].started = true;
		pool->nalive++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool;
}

void
pgbr_push_pool_free(PgbrPushPool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	if (pool->cancel[1] >= 0 && write(pool->cancel[1], "", 1) < 0)
		(void) 0;
	for (int i = 0; i < pool->nstreams; i++)
	{
		PushStream *st = &pool->streams[i];

		if (st->started)
			pthread_join(st->thread, NULL);
		pgbr_conn_free(st->conn);
		pgbr_wal_sender_free(st->sender);
	}
	for (int i = 0; i < 2; i++)
	{
		if (pool->cancel[i] >= 0)
			close(pool->cancel[i]);
		if (pool->notify[i] >= 0)
			close(pool->notify[i]);
	}
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
	pgbr_free(pool);
}

/* with the lock held */
static int
find_job(PgbrPushPool *pool, const char *name)
{
	for (int i = 0; i < PUSH_JOBS_MAX; i++)
		if (pool->jobs[i].state != JOB_FREE && strcmp(pool->jobs[i].name, name) == 0)
			return i;
	return -1;
}

bool
pgbr_push_pool_submit(PgbrPushPool *pool, const char *name, const char *path, bool urgent)
{
	int			slot = -1;

	if (strlen(name) > PGBR_NAME_MAX || strlen(path) >= sizeof(pool->jobs[0].path))
		return false;
	pthread_mutex_lock(&pool->lock);
	if (pool->nalive == 0 || find_job(pool, name) >= 0)
	{
		pthread_mutex_unlock(&pool->lock);
		return false;
	}
	/* a free slot, else the oldest finished job nobody asked about */
	for (int i = 0; i < PUSH_JOBS_MAX && slot < 0; i++)
		if (pool->jobs[i].state == JOB_FREE)
			slot = i;
	for (int i = 0; i < PUSH_JOBS_MAX && slot < 0; i++)
		if ((pool->jobs[i].state == JOB_OK || pool->jobs[i].state == JOB_FAILED) &&
			(slot < 0 || pool->jobs[i].seq < pool->jobs[slot].seq))
			slot = i;
	if (slot >= 0)
	{
		PushJob    *job = &pool->jobs[slot];

		memset(job, 0, sizeof(PushJob));
		job->state = JOB_QUEUED;
		job->urgent = urgent;
		job->seq = ++pool->seq;
		snprintf(job->name, sizeof(job->name), "%s", name);
		snprintf(job->path, sizeof(job->path), "%s", path);
		pthread_cond_signal(&pool->work);
	}
	pthread_mutex_unlock(&pool->lock);
	return slot >= 0;
}

PgbrPushResult
pgbr_push_pool_result(PgbrPushPool *pool, const char *name, PgbrError *err)
{
	char		drain[64];
	PgbrPushResult r;
	int			j;

	while (read(pool->notify[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&pool->lock);
	j = find_job(pool, name);
	if (j < 0)
		r = PGBR_PUSH_UNKNOWN;
	else if (pool->jobs[j].state == JOB_OK || pool->jobs[j].state == JOB_FAILED)
	{
		r = pool->jobs[j].state == JOB_OK ? PGBR_PUSH_OK : PGBR_PUSH_FAILED;
		if (r == PGBR_PUSH_FAILED)
			pgbr_error_copy(err, &pool->jobs[j].err);
		pool->jobs[j].state = JOB_FREE;
	}
	else
		r = PGBR_PUSH_PENDING;
	pthread_mutex_unlock(&pool->lock);
	return r;
}

bool
pgbr_push_pool_known(PgbrPushPool *pool, const char *name)
{
	bool		known;

	pthread_mutex_lock(&pool->lock);
	known = find_job(pool, name) >= 0;
	pthread_mutex_unlock(&pool->lock);
	return known;
}

int
pgbr_push_pool_unfinished(PgbrPushPool *pool)
{
	int			n = 0;

	pthread_mutex_lock(&pool->lock);
	for (int i = 0; i < PUSH_JOBS_MAX; i++)
		if (pool->jobs[i].state == JOB_QUEUED || pool->jobs[i].state == JOB_RUNNING)
			n++;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

bool
pgbr_push_pool_broken(PgbrPushPool *pool)
{
	bool		broken;

	pthread_mutex_lock(&pool->lock);
	broken = pool->nalive < pool->nstreams;
	pthread_mutex_unlock(&pool->lock);
	return broken;
}

int
pgbr_push_pool_fd(PgbrPushPool *pool)
{
	return pool->notify[0];
}
