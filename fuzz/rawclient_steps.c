/*
 * rawclient_steps.c
 *		The steps of fuzz/pgbr-rawclient: parsing a step and doing it (see
 *		the list at the top of pgbr-rawclient.c).
 */
#include "rawclient.h"
#include "pgbr_checksum.h"
#include "pgbr_wal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

/* splits "a:b:c" into at most max fields; the last takes the rest */
static int
split(char *s, char **f, int max)
{
	int			n = 0;

	while (n < max - 1)
	{
		char	   *c = strchr(s, ':');

		f[n++] = s;
		if (c == NULL)
			return n;
		*c = '\0';
		s = c + 1;
	}
	f[n++] = s;
	return n;
}

/* replaces @label@ and @token@ */
static char *
substitute(const char *in)
{
	PgbrBuf		b;
	const char *p = in;

	pgbr_buf_init(&b);
	while (*p)
	{
		if (strncmp(p, "@label@", 7) == 0)
		{
			pgbr_buf_put(&b, var_label, strlen(var_label));
			p += 7;
		}
		else if (strncmp(p, "@token@", 7) == 0)
		{
			pgbr_buf_put(&b, var_token, strlen(var_token));
			p += 7;
		}
		else
			pgbr_buf_put_u8(&b, (uint8_t) *p++);
	}
	pgbr_buf_put(&b, "", 0);
	return (char *) b.data;
}

static void
need(int n, int want, const char *step)
{
	if (n < want)
		usage_error("step \"%s\" needs more arguments", step);
}

/* waits up to `seconds` for the server to close the connection */
static void
step_idle(double seconds)
{
	double		t0 = now();
	int			fd = pgbr_conn_fd(conn);
	SSL		   *ssl = pgbr_conn_ssl(conn);

	for (;;)
	{
		double		left = seconds - (now() - t0);
		struct pollfd p = {fd, POLLIN, 0};
		uint8_t		byte;
		int			rc;

		if (left <= 0)
		{
			printf("IDLE still open after %.1fs\n", now() - t0);
			return;
		}
		rc = poll(&p, 1, (int) (left * 1000) + 1);
		if (rc <= 0)
			continue;
		ERR_clear_error();
		rc = SSL_read(ssl, &byte, 1);
		if (rc > 0)
		{
			printf("IDLE server sent data after %.1fs\n", now() - t0);
			return;
		}
		if (SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ)
			continue;
		printf("IDLE closed by server after %.1fs\n", now() - t0);
		pgbr_conn_free(conn);
		conn = NULL;
		return;
	}
}

/* one byte per TLS record, ms apart; stops when the server closes */
static void
step_slow(const uint8_t *data, size_t len, int ms)
{
	double		t0 = now();
	int			fd = pgbr_conn_fd(conn);

	for (size_t i = 0; i < len; i++)
	{
		PgbrError	err;
		struct pollfd p = {fd, POLLIN, 0};

		pgbr_error_init(&err);
		/* the server closing shows up as readable (EOF) */
		if (poll(&p, 1, 0) > 0)
		{
			uint8_t		byte;
			int			rc = SSL_read(pgbr_conn_ssl(conn), &byte, 1);

			if (rc <= 0 && SSL_get_error(pgbr_conn_ssl(conn), rc) != SSL_ERROR_WANT_READ)
			{
				printf("SLOW closed by server after %zu of %zu bytes, %.1fs\n", i, len,
					   now() - t0);
				pgbr_conn_free(conn);
				conn = NULL;
				return;
			}
		}
		if (!write_raw(data + i, 1, &err))
		{
			printf("SLOW closed by server after %zu of %zu bytes, %.1fs: %s\n", i, len,
				   now() - t0, err.message);
			pgbr_conn_free(conn);
			conn = NULL;
			return;
		}
		if (i + 1 < len)
		{
			struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
	printf("SLOW sent %zu bytes in %.1fs, connection open\n", len, now() - t0);
}

/* asks for a TLS 1.2 renegotiation (see --tls1.2) */
static void
step_renegotiate(void)
{
	SSL		   *ssl = pgbr_conn_ssl(conn);
	int			fd = pgbr_conn_fd(conn);
	double		t0 = now();

	ERR_clear_error();
	if (SSL_renegotiate(ssl) != 1)
	{
		printf("RENEGOTIATE not started: %s\n", ERR_reason_error_string(ERR_get_error()));
		return;
	}
	for (;;)
	{
		int			rc = SSL_do_handshake(ssl);
		int			e = SSL_get_error(ssl, rc);
		struct pollfd p = {fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};

		if (rc == 1 && !SSL_renegotiate_pending(ssl))
		{
			printf("RENEGOTIATE done in %.1fs\n", now() - t0);
			return;
		}
		if (rc == 1 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		{
			/* the server answers a renegotiation request, or ignores it */
			if (now() - t0 > 5)
			{
				printf("RENEGOTIATE not completed after %.1fs\n", now() - t0);
				return;
			}
			if (rc != 1)
				(void) poll(&p, 1, 1000);
			else
			{
				uint8_t		byte;
				struct pollfd q = {fd, POLLIN, 0};

				if (poll(&q, 1, 1000) > 0 && SSL_read(ssl, &byte, 1) <= 0 &&
					SSL_get_error(ssl, 0) != SSL_ERROR_WANT_READ)
				{
					printf("RENEGOTIATE refused: %s\n",
						   ERR_reason_error_string(ERR_peek_last_error()) ?
						   ERR_reason_error_string(ERR_peek_last_error()) : "connection closed");
					pgbr_conn_free(conn);
					conn = NULL;
					return;
				}
			}
			continue;
		}
		printf("RENEGOTIATE refused: %s\n",
			   ERR_reason_error_string(ERR_peek_last_error()) ?
			   ERR_reason_error_string(ERR_peek_last_error()) : "connection closed");
		pgbr_conn_free(conn);
		conn = NULL;
		return;
	}
}

void
run_step(const char *orig)
{
	char	   *s = substitute(orig);
	char	   *f[6];
	int			n;
	const char *name;
	PgbrBuf		b;
	static uint8_t bin[4 * 1024 * 1024];

	n = split(s, f, 6);
	name = f[0];
	pgbr_buf_init(&b);

	if (strcmp(name, "reconnect") == 0)
	{
		pgbr_conn_free(conn);
		conn = NULL;
		connect_server();
		goto done;
	}
	if (strcmp(name, "sleep") == 0)
	{
		need(n, 2, orig);
		usleep((useconds_t) (atof(f[1]) * 1e6));
		goto done;
	}
	if (conn == NULL)
	{
		printf("SKIPPED %s (not connected)\n", name);
		goto done;
	}

	if (strcmp(name, "ping") == 0)
		request(name, PGBR_MSG_PING, NULL, false);
	else if (strcmp(name, "hello") == 0)
	{
		need(n, 2, orig);
		for (int i = 3; i < n; i++)
			f[i][-1] = ':';
		pgbr_buf_put_u32(&b, PGBR_PROTO_MAGIC);
		pgbr_buf_put_u16(&b, PGBR_PROTOCOL_VERSION);
		put_bytes_str(&b, n > 2 ? f[2] : "rawclient");
		put_bytes_str(&b, f[1]);
		request(name, PGBR_MSG_HELLO, &b, false);
	}
	else if (strcmp(name, "stanza-create") == 0)
	{
		need(n, 4, orig);
		pgbr_buf_put_u64(&b, strtoull(f[1], NULL, 10));
		pgbr_buf_put_u32(&b, (uint32_t) strtoul(f[2], NULL, 10));
		pgbr_buf_put_u32(&b, (uint32_t) strtoul(f[3], NULL, 10));
		request(name, PGBR_MSG_STANZA_CREATE, &b, false);
	}
	else if (strcmp(name, "stanza-get") == 0)
		request(name, PGBR_MSG_STANZA_GET, NULL, false);
	else if (strcmp(name, "wal-put") == 0)
	{
		size_t		len;

		need(n, 2, orig);
		if (n > 2)
		{
			/* name:hex -- the hex is the last field, the name may not hold ':' */
			len = hexdecode(f[2], bin, sizeof(bin));
		}
		else
			len = 0;
		wal_put(name, f[1], bin, len);
	}
	else if (strcmp(name, "wal-seg") == 0)
	{
		uint32_t	seg_size;
		uint8_t    *seg;

		need(n, 4, orig);
		seg_size = (uint32_t) strtoul(f[3], NULL, 10);
		seg = make_segment(f[1], strtoull(f[2], NULL, 10), seg_size, n > 4 ? atoi(f[4]) : 15);
		wal_put(name, f[1], seg, seg_size);
		free(seg);
	}
	else if (strcmp(name, "wal-synth") == 0)
	{
		/*
		 * wal-synth:NAME:SYSID:SEGSIZE[:SEED] -- a segment with a valid long
		 * header (as wal-seg) whose remaining bytes are pseudo-random, a
		 * function of NAME and SEED: every segment differs at every offset,
		 * so a stored or served file with bytes of another segment, or of
		 * another place in the same one, changes its SHA-256.  Prints the
		 * SHA-256 of what it sends, then the answer.
		 */
		uint32_t	seg_size;
		uint8_t    *seg;
		uint64_t	state = UINT64_C(14695981039346656037);
		uint8_t		sum[PGBR_SHA256_LEN];
		char		hex[PGBR_SHA256_HEXLEN + 1];

		need(n, 4, orig);
		seg_size = (uint32_t) strtoul(f[3], NULL, 10);
		seg = make_segment(f[1], strtoull(f[2], NULL, 10), seg_size, 15);
		for (const char *c = f[1]; *c; c++)
			state = (state ^ (uint8_t) *c) * UINT64_C(1099511628211);	/* FNV-1a */
		state ^= n > 4 ? strtoull(f[4], NULL, 10) : 0;
		for (size_t off = PGBR_WAL_LONG_HEADER_SIZE; off < seg_size; off += 8)
		{
			/* splitmix64 */
			uint64_t	z = (state += UINT64_C(0x9E3779B97F4A7C15));

			z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
			z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
			z ^= z >> 31;
			for (size_t i = 0; i < 8 && off + i < seg_size; i++)
				seg[off + i] = (uint8_t) (z >> (8 * i));
		}
		pgbr_sha256(seg, seg_size, sum);
		pgbr_hex_encode(sum, PGBR_SHA256_LEN, hex);
		printf("SENT %s %s %u bytes sha256=%s\n", name, f[1], seg_size, hex);
		wal_put(name, f[1], seg, seg_size);
		free(seg);
	}
	else if (strcmp(name, "wal-get") == 0 || strcmp(name, "wal-find") == 0 ||
			 strcmp(name, "manifest-get") == 0)
	{
		need(n, 2, orig);
		put_bytes_str(&b, f[1]);
		request(name, name[0] == 'm' ? PGBR_MSG_MANIFEST_GET :
				strcmp(name, "wal-get") == 0 ? PGBR_MSG_WAL_GET : PGBR_MSG_WAL_FIND,
				&b, strcmp(name, "wal-find") != 0);
	}
	else if (strcmp(name, "file-get") == 0)
	{
		need(n, 3, orig);
		/* the line is the rest of the step: rejoin what split cut */
		for (int i = 3; i < n; i++)
			f[i][-1] = ':';
		put_bytes_str(&b, f[1]);
		put_bytes_str(&b, f[2]);
		request(name, PGBR_MSG_FILE_GET, &b, true);
	}
	else if (strcmp(name, "backup-begin") == 0)
	{
		PgbrBuf		body;

		need(n, 4, orig);
		put_bytes_str(&b, f[1]);
		put_bytes_str(&b, f[2]);
		put_bytes_str(&b, f[3]);
		put_bytes_str(&b, n > 4 ? f[4] : "primary");
		if (send_frame(name, PGBR_MSG_BACKUP_BEGIN, b.data, b.len))
		{
			char		label[PGBR_NAME_MAX + 1],
						prior[PGBR_NAME_MAX + 1],
						type[PGBR_NAME_MAX + 1],
						token[PGBR_NAME_MAX + 1];
			char	   *out[] = {label, prior, type, token};
			const size_t maxlens[] = {PGBR_NAME_MAX, PGBR_NAME_MAX, PGBR_NAME_MAX, PGBR_NAME_MAX};
			PgbrError	err;

			pgbr_buf_init(&body);
			pgbr_error_init(&err);
			if (read_answer(name, false, &body) &&
				pgbr_strs_decode(body.data, body.len, 4, out, maxlens, &err))
			{
				snprintf(var_label, sizeof(var_label), "%s", label);
				snprintf(var_token, sizeof(var_token), "%s", token);
			}
			pgbr_buf_release(&body);
		}
	}
	else if (strcmp(name, "backup-join") == 0)
	{
		need(n, 3, orig);
		put_bytes_str(&b, f[1]);
		put_bytes_str(&b, f[2]);
		request(name, PGBR_MSG_BACKUP_JOIN, &b, false);
	}
	else if (strcmp(name, "file-put") == 0)
	{
		char		line[PGBR_TEXT_MAX + 1];
		size_t		len = 0;
		char	   *colon;
		bool		has_data;
		PgbrBuf		body;

		need(n, 2, orig);
		for (int i = 2; i < n; i++)
			f[i][-1] = ':';
		/* LINE[:HEX]: data after the last colon when the line has 13 fields */
		colon = strrchr(f[1], ':');
		if (colon && strchr(colon, '\t') == NULL && strstr(colon, "\\t") == NULL)
		{
			*colon = '\0';
			len = hexdecode(colon + 1, bin, sizeof(bin));
		}
		unescape(f[1], line, sizeof(line));
		has_data = line[0] == 'f';
		{
			/* a reference (8th field) means no data follows */
			const char *p = line;

			for (int i = 0; i < 7 && p; i++)
				p = strchr(p, '\t') ? strchr(p, '\t') + 1 : NULL;
			if (p && p[0] != '-')
				has_data = false;
		}
		put_bytes_str(&b, f[1]);
		if (queue_frame(name, PGBR_MSG_FILE_PUT, b.data, b.len) &&
			(!has_data || send_content(name, bin, len, true)))
		{
			pgbr_buf_init(&body);
			read_answer(name, false, &body);
			pgbr_buf_release(&body);
		}
	}
	else if (strcmp(name, "backup-end") == 0)
	{
		need(n, 2, orig);
		for (int i = 2; i < n; i++)
			f[i][-1] = ':';
		put_bytes_str(&b, f[1]);
		request(name, PGBR_MSG_BACKUP_END, &b, false);
	}
	else if (strcmp(name, "backup-abort") == 0)
		request(name, PGBR_MSG_BACKUP_ABORT, NULL, false);
	else if (strcmp(name, "info") == 0)
		request(name, PGBR_MSG_INFO, NULL, false);
	else if (strcmp(name, "expire") == 0)
		request(name, PGBR_MSG_EXPIRE, NULL, false);
	else if (strcmp(name, "verify") == 0)
		request(name, PGBR_MSG_VERIFY, NULL, true);
	else if (strcmp(name, "frame") == 0 || strcmp(name, "send") == 0)
	{
		size_t		len;
		uint8_t		hdr[PGBR_FRAME_HEADER_SIZE];
		PgbrError	err;
		double		t0 = now();

		need(n, 2, orig);
		len = n > 2 ? hexdecode(f[2], bin, sizeof(bin)) : 0;
		/* raw header: the type need not be a known one */
		pgbr_frame_header_encode(hdr, (uint8_t) msg_type(f[1]), (uint32_t) len);
		pgbr_error_init(&err);
		if (!write_raw(hdr, sizeof(hdr), &err) || !write_raw(bin, len, &err))
			closed(name, t0, &err);
		else if (name[0] == 'f')
		{
			PgbrBuf		body;

			pgbr_buf_init(&body);
			read_answer(name, false, &body);
			pgbr_buf_release(&body);
		}
	}
	else if (strcmp(name, "recv") == 0)
	{
		PgbrBuf		body;

		pgbr_buf_init(&body);
		read_answer(name, false, &body);
		pgbr_buf_release(&body);
	}
	else if (strcmp(name, "raw") == 0)
	{
		size_t		len;
		PgbrError	err;
		double		t0 = now();

		need(n, 2, orig);
		len = hexdecode(f[1], bin, sizeof(bin));
		pgbr_error_init(&err);
		if (!write_raw(bin, len, &err))
			closed(name, t0, &err);
	}
	else if (strcmp(name, "junk") == 0)
	{
		size_t		len;
		PgbrError	err;
		double		t0 = now();

		need(n, 2, orig);
		len = (size_t) strtoul(f[1], NULL, 10);
		if (len > sizeof(bin))
			usage_error("junk: at most 4 MB, not \"%s\"", f[1]);
		srandom(n > 2 ? (unsigned) atoi(f[2]) : 1);
		for (size_t i = 0; i < len; i++)
			bin[i] = (uint8_t) random();
		pgbr_error_init(&err);
		if (!write_raw(bin, len, &err))
			closed(name, t0, &err);
	}
	else if (strcmp(name, "oversize") == 0)
	{
		uint8_t		hdr[PGBR_FRAME_HEADER_SIZE];
		uint64_t	len;
		PgbrError	err;
		PgbrBuf		body;
		double		t0 = now();

		need(n, 3, orig);
		len = strtoull(f[2], NULL, 10);
		pgbr_frame_header_encode(hdr, (uint8_t) msg_type(f[1]), (uint32_t) len);
		memset(bin, 'x', 65536);
		pgbr_error_init(&err);
		if (!write_raw(hdr, sizeof(hdr), &err) ||
			!write_raw(bin, len < 65536 ? (size_t) len : 65536, &err))
			closed(name, t0, &err);
		else
		{
			pgbr_buf_init(&body);
			read_answer(name, false, &body);
			pgbr_buf_release(&body);
		}
	}
	else if (strcmp(name, "slow") == 0)
	{
		size_t		len;

		need(n, 3, orig);
		len = hexdecode(f[1], bin, sizeof(bin));
		step_slow(bin, len, atoi(f[2]));
	}
	else if (strcmp(name, "renegotiate") == 0)
		step_renegotiate();
	else if (strcmp(name, "idle") == 0)
	{
		need(n, 2, orig);
		step_idle(atof(f[1]));
	}
	else
		usage_error("unknown step \"%s\"", orig);

done:
	fflush(stdout);
	pgbr_buf_release(&b);
	pgbr_free(s);
}

