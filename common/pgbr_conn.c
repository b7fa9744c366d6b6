/*
 * pgbr_conn.c
 *		Framed TLS connection over a non-blocking socket.
 */
#include "pgbr_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define OUTBUF_FLUSH	(64 * 1024)
#define INBUF_SIZE		(32 * 1024)

struct PgbrConn
{
	int			fd;
	SSL		   *ssl;
	int			timeout_ms;
	PgbrWaitFn	wait;
	void	   *wait_arg;
	char		peer[300];
	PgbrBuf		out;
	uint8_t		in[INBUF_SIZE];
	size_t		inpos;
	size_t		inlen;
	bool		broken;			/* an I/O error happened: no clean shutdown */
	int64_t		deadline;		/* CLOCK_MONOTONIC ms every wait ends by; 0: none */
};

static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
pgbr_conn_set_deadline(PgbrConn *conn, int ms)
{
	conn->deadline = ms > 0 ? monotonic_ms() + ms : 0;
}

int
pgbr_wait_poll(void *arg, int fd, int events, int timeout_ms, PgbrError *err)
{
	struct pollfd p;
	int			rc;

	(void) arg;
	p.fd = fd;
	p.events = (short) (((events & PGBR_WAIT_READ) ? POLLIN : 0) |
						((events & PGBR_WAIT_WRITE) ? POLLOUT : 0));
	p.revents = 0;
	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_RUNTIME, "poll failed");
		return -1;
	}
	return rc > 0 ? 1 : 0;
}

static PgbrConn *
conn_alloc(int fd, int timeout_ms, PgbrWaitFn wait, void *wait_arg)
{
	PgbrConn   *conn = pgbr_malloc(sizeof(PgbrConn));

	if (conn == NULL)
		return NULL;
	memset(conn, 0, sizeof(PgbrConn));
	conn->fd = fd;
	conn->timeout_ms = timeout_ms;
	conn->wait = wait ? wait : pgbr_wait_poll;
	conn->wait_arg = wait_arg;
	pgbr_buf_init(&conn->out);
	return conn;
}

static bool
set_nonblock(int fd, PgbrError *err)
{
	int			flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return pgbr_error_errno(err, PGBR_ERR_RUNTIME, "could not make socket non-blocking");
	return true;
}

static bool
conn_wait(PgbrConn *conn, int events, const char *what, PgbrError *err)
{
	int			timeout = conn->timeout_ms;
	int			rc;

	if (conn->deadline != 0)
	{
		int64_t		left = conn->deadline - monotonic_ms();

		if (left <= 0)
		{
			conn->broken = true;
			return pgbr_error_set(err, PGBR_ERR_TIMEOUT,
								  "timed out waiting for %s %s: the time allowed has passed",
								  conn->peer, what);
		}
		if (left < timeout)
			timeout = (int) left;
	}
	rc = conn->wait(conn->wait_arg, conn->fd, events, timeout, err);

	if (rc < 0)
	{
		conn->broken = true;
		return false;
	}
	if (rc == 0)
	{
		conn->broken = true;
		pgbr_error_set(err, PGBR_ERR_TIMEOUT,
					   "timed out after %d s waiting for %s %s", conn->timeout_ms / 1000,
					   conn->peer, what);
		pgbr_error_hint(err, "Check that the peer is running and reachable; io-timeout sets this limit.");
		return false;
	}
	return true;
}

/*
 * Turns an SSL_* failure into a wait (true) or an error (false).
 */
static bool
ssl_retry(PgbrConn *conn, int rc, const char *what, PgbrError *err)
{
	int			e = SSL_get_error(conn->ssl, rc);

	switch (e)
	{
		case SSL_ERROR_WANT_READ:
			return conn_wait(conn, PGBR_WAIT_READ, what, err);
		case SSL_ERROR_WANT_WRITE:
			return conn_wait(conn, PGBR_WAIT_WRITE, what, err);
		case SSL_ERROR_ZERO_RETURN:
			conn->broken = true;
			return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
								  "connection to %s closed by the peer", conn->peer);
		case SSL_ERROR_SYSCALL:
			conn->broken = true;
			if (ERR_peek_error() != 0)
				return pgbr_error_ssl(err, PGBR_ERR_TLS, "TLS error with %s", conn->peer);
			if (errno == 0 || rc == 0)
				return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
									  "connection to %s closed unexpectedly", conn->peer);
			return pgbr_error_errno(err, PGBR_ERR_PROTOCOL,
									"connection to %s failed", conn->peer);
		default:
			conn->broken = true;
			{
				long		vr = SSL_get_verify_result(conn->ssl);

				if (vr != X509_V_OK)
				{
					ERR_clear_error();
					return pgbr_error_set(err, PGBR_ERR_TLS,
										  "TLS handshake with %s failed: certificate verify failed: %s",
										  conn->peer, X509_verify_cert_error_string(vr));
				}
			}
			return pgbr_error_ssl(err, PGBR_ERR_TLS, "TLS error with %s", conn->peer);
	}
}

static bool
tcp_connect(PgbrConn *conn, const char *host, int port, PgbrError *err)
{
	struct addrinfo hints,
			   *res,
			   *ai;
	char		portstr[16];
	int			rc;
	int			last_errno = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0)
		return pgbr_error_set(err, PGBR_ERR_HOST_CONNECT,
							  "could not resolve repository host \"%s\": %s", host,
							  gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next)
	{
		int			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		int			one = 1;
		PgbrError	werr;

		if (fd < 0)
		{
			last_errno = errno;
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pgbr_error_init(&werr);
		if (!set_nonblock(fd, &werr))
		{
			close(fd);
			continue;
		}
		conn->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS)
		{
			int			w = conn->wait(conn->wait_arg, fd, PGBR_WAIT_WRITE, conn->timeout_ms, err);
			int			soerr = 0;
			socklen_t	sl = sizeof(soerr);

			if (w < 0)
			{
				close(fd);
				freeaddrinfo(res);
				conn->fd = -1;
				return false;
			}
			if (w == 0)
				soerr = ETIMEDOUT;
			else
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
			if (soerr == 0)
				break;
			last_errno = soerr;
		}
		else
			last_errno = errno;
		close(fd);
		conn->fd = -1;
	}
	freeaddrinfo(res);
	if (conn->fd < 0)
	{
		errno = last_errno;
		pgbr_error_errno(err, PGBR_ERR_HOST_CONNECT,
						 "could not connect to repository host %s", conn->peer);
		pgbr_error_hint(err, "Check that pgbr-server runs there and that repo1-host and repo1-host-port are right.");
		return false;
	}
	return true;
}

static bool
is_ip_address(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

PgbrConn *
pgbr_conn_connect(const char *host, int port, SSL_CTX *ctx, int timeout_ms,
				  PgbrWaitFn wait, void *wait_arg, PgbrError *err)
{
	PgbrConn   *conn = conn_alloc(-1, timeout_ms, wait, wait_arg);
	X509_VERIFY_PARAM *param;
	int			rc;

	if (conn == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	snprintf(conn->peer, sizeof(conn->peer), "%s:%d", host, port);
	if (!tcp_connect(conn, host, port, err))
		goto fail;

	conn->ssl = SSL_new(ctx);
	if (conn->ssl == NULL || SSL_set_fd(conn->ssl, conn->fd) != 1)
	{
		pgbr_error_ssl(err, PGBR_ERR_TLS, "could not set up TLS");
		goto fail;
	}
	/* the server's certificate must name the host we asked for */
	param = SSL_get0_param(conn->ssl);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_address(host))
		rc = X509_VERIFY_PARAM_set1_ip_asc(param, host);
	else
	{
		rc = X509_VERIFY_PARAM_set1_host(param, host, 0);
		SSL_set_tlsext_host_name(conn->ssl, host);
	}
	if (rc != 1)
	{
		pgbr_error_ssl(err, PGBR_ERR_TLS, "could not set the expected server name \"%s\"", host);
		goto fail;
	}
	while ((rc = SSL_connect(conn->ssl)) != 1)
	{
		if (!ssl_retry(conn, rc, "during the TLS handshake", err))
		{
			long		vr = SSL_get_verify_result(conn->ssl);

			if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
				pgbr_error_hint(err, "The server certificate does not name \"%s\": set repo1-host to a name in its subject or subjectAltName.", host);
			goto fail;
		}
	}
	return conn;

fail:
	conn->broken = true;
	pgbr_conn_free(conn);
	return NULL;
}

PgbrConn *
pgbr_conn_accept(int fd, SSL_CTX *ctx, int timeout_ms, PgbrError *err)
{
	PgbrConn   *conn = conn_alloc(fd, timeout_ms, NULL, NULL);
	struct sockaddr_storage sa;
	socklen_t	salen = sizeof(sa);
	char		host[256] = "?",
				serv[32] = "?";
	int			one = 1;
	int			rc;

	if (conn == NULL)
	{
		close(fd);
		pgbr_error_set(err, PGBR_ERR_MEMORY, "out of memory");
		return NULL;
	}
	if (getpeername(fd, (struct sockaddr *) &sa, &salen) == 0)
		getnameinfo((struct sockaddr *) &sa, salen, host, sizeof(host), serv, sizeof(serv),
					NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(conn->peer, sizeof(conn->peer), "%s:%s", host, serv);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!set_nonblock(fd, err))
		goto fail;
	/* the handshake (and what the caller reads next) must end in time */
	pgbr_conn_set_deadline(conn, timeout_ms);
	conn->ssl = SSL_new(ctx);
	if (conn->ssl == NULL || SSL_set_fd(conn->ssl, fd) != 1)
	{
		pgbr_error_ssl(err, PGBR_ERR_TLS, "could not set up TLS");
		goto fail;
	}
	while ((rc = SSL_accept(conn->ssl)) != 1)
		if (!ssl_retry(conn, rc, "during the TLS handshake", err))
			goto fail;
	return conn;

fail:
	conn->broken = true;
	pgbr_conn_free(conn);
	return NULL;
}

void
pgbr_conn_free(PgbrConn *conn)
{
	if (conn == NULL)
		return;
	if (conn->ssl)
	{
		/* one non-blocking attempt at close_notify; never wait for it */
		if (!conn->broken)
			(void) SSL_shutdown(conn->ssl);
		SSL_free(conn->ssl);
	}
	ERR_clear_error();
	if (conn->fd >= 0)
		close(conn->fd);
	pgbr_buf_release(&conn->out);
	pgbr_free(conn);
}

SSL *
pgbr_conn_ssl(PgbrConn *conn)
{
	return conn->ssl;
}

int
pgbr_conn_fd(PgbrConn *conn)
{
	return conn->fd;
}

void
pgbr_conn_set_timeout(PgbrConn *conn, int timeout_ms)
{
	conn->timeout_ms = timeout_ms;
}

void
pgbr_conn_set_wait(PgbrConn *conn, PgbrWaitFn wait, void *wait_arg)
{
	conn->wait = wait ? wait : pgbr_wait_poll;
	conn->wait_arg = wait_arg;
}

const char *
pgbr_conn_peer(PgbrConn *conn)
{
	return conn->peer;
}

bool
pgbr_conn_flush(PgbrConn *conn, PgbrError *err)
{
	size_t		done = 0;

	if (conn->broken)
		return pgbr_error_set(err, PGBR_ERR_PROTOCOL, "connection to %s is broken", conn->peer);
	while (done < conn->out.len)
	{
		size_t		n = conn->out.len - done;
		int			rc;

		ERR_clear_error();
		rc = SSL_write(conn->ssl, conn->out.data + done, n > INT32_MAX ? INT32_MAX : (int) n);
		if (rc > 0)
			done += (size_t) rc;
		else if (!ssl_retry(conn, rc, "to accept data", err))
			return false;
	}
	pgbr_buf_reset(&conn->out);
	return true;
}

bool
pgbr_conn_send(PgbrConn *conn, uint8_t type, const void *payload, size_t len, PgbrError *err)
{
	uint8_t		hdr[PGBR_FRAME_HEADER_SIZE];

	if (len > PGBR_FRAME_MAX)
		return pgbr_error_set(err, PGBR_ERR_ASSERT, "frame of %zu bytes exceeds the limit", len);
	pgbr_frame_header_encode(hdr, type, (uint32_t) len);
	pgbr_buf_put(&conn->out, hdr, sizeof(hdr));
	pgbr_buf_put(&conn->out, payload, len);
	if (conn->out.len >= OUTBUF_FLUSH)
		return pgbr_conn_flush(conn, err);
	return true;
}

static bool
conn_read(PgbrConn *conn, void *dst, size_t n, PgbrError *err)
{
	uint8_t    *d = dst;

	while (n > 0)
	{
		int			rc;

		if (conn->inpos < conn->inlen)
		{
			size_t		k = conn->inlen - conn->inpos;

			if (k > n)
				k = n;
			memcpy(d, conn->in + conn->inpos, k);
			conn->inpos += k;
			d += k;
			n -= k;
			continue;
		}
		ERR_clear_error();
		if (n >= INBUF_SIZE)
		{
			/* large reads go straight to the destination */
			rc = SSL_read(conn->ssl, d, n > INT32_MAX ? INT32_MAX : (int) n);
			if (rc > 0)
			{
				d += rc;
				n -= (size_t) rc;
				continue;
			}
		}
		else
		{
			rc = SSL_read(conn->ssl, conn->in, INBUF_SIZE);
			if (rc > 0)
			{
				conn->inpos = 0;
				conn->inlen = (size_t) rc;
				continue;
			}
		}
		/*
		 * Nothing to read yet: what is queued goes out before we wait (the
		 * peer may be waiting for it).  Answers to requests that arrived
		 * together leave together.
		 */
		if (rc <= 0 && conn->out.len > 0 && SSL_get_error(conn->ssl, rc) == SSL_ERROR_WANT_READ)
		{
			if (!pgbr_conn_flush(conn, err))
				return false;
			continue;
		}
		if (!ssl_retry(conn, rc, "to send data", err))
			return false;
	}
	return true;
}

bool
pgbr_conn_recv(PgbrConn *conn, PgbrFrameHeader *hdr, PgbrBuf *payload, PgbrError *err)
{
	uint8_t		raw[PGBR_FRAME_HEADER_SIZE];

	if (conn->broken)
		return pgbr_error_set(err, PGBR_ERR_PROTOCOL, "connection to %s is broken", conn->peer);
	if (!conn_read(conn, raw, sizeof(raw), err))
		return false;
	if (!pgbr_frame_header_decode(raw, hdr, err))
	{
		conn->broken = true;
		return false;
	}
	pgbr_buf_reset(payload);
	pgbr_buf_reserve(payload, hdr->length);
	if (!conn_read(conn, payload->data, hdr->length, err))
		return false;
	payload->len = hdr->length;
	payload->data[payload->len] = 0;
	return true;
}

bool
pgbr_conn_readable(PgbrConn *conn)
{
	struct pollfd p;

	if (conn->inpos < conn->inlen || SSL_pending(conn->ssl) > 0)
		return true;
	p.fd = conn->fd;
	p.events = POLLIN;
	p.revents = 0;
	return poll(&p, 1, 0) > 0;
}

bool
pgbr_conn_expect_ok(PgbrConn *conn, PgbrBuf *payload, PgbrError *err)
{
	PgbrFrameHeader hdr;
	PgbrBuf		local;
	PgbrBuf    *buf = payload;
	bool		ok;

	if (buf == NULL)
	{
		pgbr_buf_init(&local);
		buf = &local;
	}
	ok = pgbr_conn_recv(conn, &hdr, buf, err);
	if (ok && hdr.type == PGBR_MSG_ERROR)
	{
		PgbrError	remote;

		if (pgbr_errmsg_decode(buf->data, buf->len, &remote, err))
			pgbr_error_copy(err, &remote);
		ok = false;
	}
	else if (ok && hdr.type != PGBR_MSG_OK)
	{
		conn->broken = true;
		ok = pgbr_error_set(err, PGBR_ERR_PROTOCOL,
							"unexpected %s message from %s", pgbr_msg_name(hdr.type), conn->peer);
	}
	if (buf == &local)
		pgbr_buf_release(&local);
	return ok;
}

bool
pgbr_conn_send_error(PgbrConn *conn, const PgbrError *e, PgbrError *err)
{
	PgbrBuf		b;
	bool		ok;

	pgbr_buf_init(&b);
	pgbr_errmsg_encode(&b, e);
	ok = pgbr_conn_send(conn, PGBR_MSG_ERROR, b.data, b.len, err) &&
		pgbr_conn_flush(conn, err);
	pgbr_buf_release(&b);
	return ok;
}

typedef struct ConnSink
{
	PgbrSink	base;
	PgbrConn   *conn;
	PgbrSink   *sha;
	bool		send_end;
} ConnSink;

static bool
conn_sink_write(PgbrSink *self, const uint8_t *data, size_t len, PgbrError *err)
{
	ConnSink   *s = (ConnSink *) self;

	while (len > 0)
	{
		size_t		n = len > PGBR_CHUNK_SIZE ? PGBR_CHUNK_SIZE : len;

		if (!pgbr_conn_send(s->conn, PGBR_MSG_DATA, data, n, err))
			return false;
		data += n;
		len -= n;
	}
	return true;
}

static bool
conn_sink_finish(PgbrSink *self, PgbrError *err)
{
	ConnSink   *s = (ConnSink *) self;
	uint8_t		sum[PGBR_SHA256_LEN];

	if (!s->send_end)
		return true;
	if (s->sha == NULL)
		return pgbr_conn_send(s->conn, PGBR_MSG_END, NULL, 0, err);
	pgbr_sink_sha256_result(s->sha, sum);
	return pgbr_conn_send(s->conn, PGBR_MSG_END, sum, sizeof(sum), err);
}

PgbrSink *
pgbr_sink_conn_create(PgbrConn *conn, PgbrSink *sha)
{
	ConnSink   *s = pgbr_malloc(sizeof(ConnSink));

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(ConnSink));
	s->base.write = conn_sink_write;
	s->base.finish = conn_sink_finish;
	s->conn = conn;
	s->sha = sha;
	s->send_end = true;
	return &s->base;
}

PgbrSink *
pgbr_sink_data_create(PgbrConn *conn)
{
	PgbrSink   *sink = pgbr_sink_conn_create(conn, NULL);

	if (sink)
		((ConnSink *) sink)->send_end = false;
	return sink;
}

void
pgbr_sink_conn_set_sha(PgbrSink *sink, PgbrSink *sha)
{
	((ConnSink *) sink)->sha = sha;
}

bool
pgbr_conn_recv_stream(PgbrConn *conn, PgbrSink *sink, PgbrBuf *scratch, PgbrError *err)
{
	for (;;)
	{
		PgbrFrameHeader hdr;

		if (!pgbr_conn_recv(conn, &hdr, scratch, err))
			return false;
		if (hdr.type == PGBR_MSG_DATA)
		{
			if (!pgbr_sink_write(sink, scratch->data, scratch->len, err))
				return false;
		}
		else if (hdr.type == PGBR_MSG_END)
		{
			PgbrBuf		trailer;
			bool		ok;

			/* keep the trailer: finishing the sink may not touch scratch */
			pgbr_buf_init(&trailer);
			pgbr_buf_put(&trailer, scratch->data, scratch->len);
			ok = pgbr_sink_finish(sink, err);
			pgbr_buf_reset(scratch);
			pgbr_buf_put(scratch, trailer.data, trailer.len);
			pgbr_buf_release(&trailer);
			return ok;
		}
		else if (hdr.type == PGBR_MSG_ERROR)
		{
			PgbrError	remote;

			if (pgbr_errmsg_decode(scratch->data, scratch->len, &remote, err))
				pgbr_error_copy(err, &remote);
			return false;
		}
		else
		{
			conn->broken = true;
			return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
								  "unexpected %s message from %s in a data stream",
								  pgbr_msg_name(hdr.type), conn->peer);
		}
	}
}
