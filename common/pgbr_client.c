/*
 * pgbr_client.c
 *		Client requests shared by the extension and the pgbr tool.
 */
#include "pgbr_client.h"
#include "pgbr_tls.h"

#include <errno.h>
#include <fcntl.h>
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
		pgbr_sink_zstd_compress_restart(s->zst, out);
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
