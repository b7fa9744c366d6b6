/*
 * pgbr-rawclient.c
 *		A test-only client that speaks the pgbr protocol over mutual TLS but
 *		sends whatever it is told, valid or not: names with "..", NUL bytes
 *		or too many characters, frames of unknown types or oversized
 *		lengths, raw bytes, one byte a second, or nothing at all.  It prints
 *		one line per answer, so regress/t/040_hostile.pl can check what
 *		pgbr-server does with hostile input through the real protocol.
 *		Built by fuzz/fuzz.mk (make fuzz/pgbr-rawclient); never installed.
 *
 * Usage:
 *	pgbr-rawclient --port=N --ca=FILE [--cert=FILE --key=FILE]
 *				   [--host=localhost] [--timeout=SECONDS] [--tls1.2] STEP...
 *
 * A STEP is NAME or NAME:ARG[:ARG...]; the last argument takes the rest of
 * the step, colons included.  "-" reads more steps from stdin, one a line.
 * String arguments understand \t \n \\ and \xHH (\x00 puts a NUL into a
 * length-prefixed string); HEX arguments are hex digits.  "@label@" and
 * "@token@" are replaced by what the last backup-begin answered.
 *
 *	ping | hello:STANZA[:PROGRAM] | stanza-create:SYSID:PGVERSION:SEGSIZE
 *	stanza-get | wal-put:NAME[:HEX] | wal-seg:NAME:SYSID:SEGSIZE[:PGMAJOR]
 *	wal-synth:NAME:SYSID:SEGSIZE[:SEED]	(wal-seg with pseudo-random content
 *						after the header; prints SENT ... sha256=HEX first)
 *	wal-get:NAME | wal-find:NAME | manifest-get:LABEL | file-get:LABEL:LINE
 *	backup-begin:TYPE:SYSID:PGVERSION[:FROM] | backup-join:LABEL:TOKEN
 *	file-put:LINE[:HEX] | backup-end:TEXT | backup-abort | info | expire
 *	verify
 *	frame:TYPE:HEX		a frame of any type (name or 0-255), then one answer
 *	send:TYPE:HEX		the same without reading an answer
 *	recv				read one answer
 *	raw:HEX				bytes written into the TLS stream as they are
 *	junk:N[:SEED]		N pseudo-random bytes written into the TLS stream
 *	oversize:TYPE:LEN	a header announcing LEN bytes, then up to 64 kB
 *	slow:HEX:MS			the bytes one per TLS record, MS milliseconds apart
 *	idle:SECONDS		send nothing; report whether the server closes
 *	renegotiate			ask for a TLS renegotiation (needs --tls1.2)
 *	sleep:SECONDS | reconnect
 *
 * Output lines: CONNECTED <tls version>, OK <step> ..., ERROR <step> [NNN]
 * message, STREAM <step> <n> bytes sha256=<hex> ..., SENT <step> <name> <n>
 * bytes sha256=<hex> (wal-synth), CLOSED <step> after <s>s: <why>, IDLE ...,
 * SLOW ..., SKIPPED <step>.  Exit status 0 when every step was understood
 * (whatever the server answered), 2 on a usage error, 3 when the first
 * connection failed.
 */
#include "rawclient.h"
#include "pgbr_checksum.h"
#include "pgbr_wal.h"
#include "../regress/unit/wal_page.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

const char *opt_host = "localhost";
int			opt_port = 0;
static const char *opt_ca = NULL;
static const char *opt_cert = NULL;
static const char *opt_key = NULL;
int			opt_timeout = 60;
static bool opt_tls12 = false;

SSL_CTX    *ctx;
PgbrConn   *conn;
char		var_label[PGBR_NAME_MAX + 1] = "";
char		var_token[PGBR_NAME_MAX + 1] = "";

double
now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

void
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "pgbr-rawclient: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

/* ---- argument decoding ---- */

/* a string argument with escapes; the length may include NUL bytes */
size_t
unescape(const char *s, char *out, size_t outlen)
{
	size_t		n = 0;

	while (*s && n + 1 < outlen)
	{
		if (*s == '\\' && s[1])
		{
			s++;
			if (*s == 't')
				out[n++] = '\t';
			else if (*s == 'n')
				out[n++] = '\n';
			else if (*s == 'r')
				out[n++] = '\r';
			else if (*s == 'x' && s[1] && s[2])
			{
				char		hex[3] = {s[1], s[2], 0};

				out[n++] = (char) strtoul(hex, NULL, 16);
				s += 2;
			}
			else
				out[n++] = *s;
			s++;
		}
		else
			out[n++] = *s++;
	}
	out[n] = '\0';
	return n;
}

size_t
hexdecode(const char *s, uint8_t *out, size_t outlen)
{
	size_t		n = 0;

	while (s[0] && s[1] && n < outlen)
	{
		char		hex[3] = {s[0], s[1], 0};
		char	   *end;

		out[n++] = (uint8_t) strtoul(hex, &end, 16);
		if (*end != '\0')
			usage_error("invalid hex \"%s\"", s);
		s += 2;
	}
	if (s[0])
		usage_error("odd number of hex digits or data too long: \"%s\"", s);
	return n;
}

/* a printable, quoted rendering of bytes for the output */
void
print_escaped(const uint8_t *p, size_t len, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < len && i < max; i++)
	{
		if (p[i] == '"' || p[i] == '\\')
			printf("\\%c", p[i]);
		else if (p[i] == '\n')
			printf("\\n");
		else if (p[i] == '\t')
			printf("\\t");
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			printf("\\x%02x", p[i]);
		else
			putchar(p[i]);
	}
	if (len > max)
		printf("...");
	putchar('"');
}

int
msg_type(const char *s)
{
	char	   *end;
	long		v = strtol(s, &end, 10);

	if (*end == '\0' && end != s && v >= 0 && v <= 255)
		return (int) v;
	for (int t = 1; t <= PGBR_MSG_TYPE_MAX; t++)
		if (strcmp(pgbr_msg_name(t), s) == 0)
			return t;
	usage_error("unknown message type \"%s\"", s);
	return -1;
}

/* ---- connection ---- */

bool
connect_server(void)
{
	PgbrError	err;

	pgbr_error_init(&err);
	conn = pgbr_conn_connect(opt_host, opt_port, ctx, opt_timeout * 1000, NULL, NULL, &err);
	if (conn == NULL)
	{
		printf("CONNECT-FAILED [%03d] %s\n", err.code, err.message);
		return false;
	}
	printf("CONNECTED %s\n", SSL_get_version(pgbr_conn_ssl(conn)));
	return true;
}

void
closed(const char *step, double t0, const PgbrError *err)
{
	printf("CLOSED %s after %.1fs: [%03d] %s\n", step, now() - t0, err->code, err->message);
	pgbr_conn_free(conn);
	conn = NULL;
}

/* writes bytes into the TLS stream, waiting on the non-blocking socket */
bool
write_raw(const uint8_t *data, size_t len, PgbrError *err)
{
	SSL		   *ssl = pgbr_conn_ssl(conn);
	int			fd = pgbr_conn_fd(conn);

	while (len > 0)
	{
		int			rc;

		ERR_clear_error();
		rc = SSL_write(ssl, data, (int) len);
		if (rc > 0)
		{
			data += rc;
			len -= (size_t) rc;
			continue;
		}
		switch (SSL_get_error(ssl, rc))
		{
			case SSL_ERROR_WANT_WRITE:
			case SSL_ERROR_WANT_READ:
				{
					struct pollfd p = {fd, POLLOUT | POLLIN, 0};

					if (poll(&p, 1, opt_timeout * 1000) <= 0)
						return pgbr_error_set(err, PGBR_ERR_TIMEOUT, "write timed out");
					break;
				}
			default:
				return pgbr_error_set(err, PGBR_ERR_PROTOCOL, "write failed: %s",
									  errno ? strerror(errno) : "connection closed");
		}
	}
	return true;
}

/* ---- answers ---- */

/* prints an OK body: as strings if it is a sequence of them, else its size */
static void
print_ok_body(const PgbrBuf *b)
{
	PgbrReader	r;
	int			n = 0;

	if (b->len == 0)
		return;
	pgbr_reader_init(&r, b->data, b->len);
	while (!r.failed && r.pos < r.len)
	{
		uint32_t	len = pgbr_reader_u32(&r);

		if (r.failed || len > r.len - r.pos)
		{
			r.failed = true;
			break;
		}
		r.pos += len;
		n++;
	}
	if (r.failed || n == 0)
	{
		printf(" n=%zu", b->len);
		return;
	}
	pgbr_reader_init(&r, b->data, b->len);
	for (int i = 0; i < n; i++)
	{
		uint32_t	len = pgbr_reader_u32(&r);

		putchar(' ');
		print_escaped(r.data + r.pos, len, 400);
		r.pos += len;
	}
}

/*
 * Reads the answer to a request.  stream: OK is followed by DATA... END.
 * Returns false when the connection is gone.  OK body left in *body.
 */
bool
read_answer(const char *step, bool stream, PgbrBuf *body)
{
	PgbrFrameHeader hdr;
	PgbrError	err;
	double		t0 = now();

	pgbr_error_init(&err);
	if (!pgbr_conn_recv(conn, &hdr, body, &err))
	{
		closed(step, t0, &err);
		return false;
	}
	if (hdr.type == PGBR_MSG_ERROR)
	{
		PgbrError	remote;

		if (pgbr_errmsg_decode(body->data, body->len, &remote, &err))
			printf("ERROR %s [%03d] %s\n", step, remote.code, remote.message);
		else
			printf("ERROR %s (malformed: %s)\n", step, err.message);
		return true;
	}
	if (hdr.type != PGBR_MSG_OK)
	{
		printf("UNEXPECTED %s %s n=%u\n", step, pgbr_msg_name(hdr.type), hdr.length);
		return true;
	}
	printf("OK %s", step);
	print_ok_body(body);
	printf("\n");
	if (stream)
	{
		PgbrBuf		data,
					first;
		uint64_t	total = 0;
		uint8_t		sum[PGBR_SHA256_LEN];
		char		hex[PGBR_SHA256_HEXLEN + 1];
		PgbrSha256 *sha = pgbr_sha256_create(&err);

		pgbr_buf_init(&data);
		pgbr_buf_init(&first);
		for (;;)
		{
			if (!pgbr_conn_recv(conn, &hdr, &data, &err))
			{
				closed(step, t0, &err);
				pgbr_sha256_free(sha);
				pgbr_buf_release(&data);
				pgbr_buf_release(&first);
				return false;
			}
			if (hdr.type == PGBR_MSG_DATA)
			{
				pgbr_sha256_update(sha, data.data, data.len);
				total += data.len;
				if (first.len < 64)
					pgbr_buf_put(&first, data.data, data.len < 64 ? data.len : 64);
				continue;
			}
			if (hdr.type == PGBR_MSG_ERROR)
			{
				PgbrError	remote;

				if (pgbr_errmsg_decode(data.data, data.len, &remote, &err))
					printf("ERROR %s [%03d] %s (after %" PRIu64 " bytes)\n", step, remote.code,
						   remote.message, total);
				break;
			}
			pgbr_sha256_final(sha, sum);
			pgbr_hex_encode(sum, PGBR_SHA256_LEN, hex);
			printf("STREAM %s %" PRIu64 " bytes sha256=%s %s trailer=", step, total, hex,
				   pgbr_msg_name(hdr.type));
			print_escaped(data.data, data.len, 200);
			printf(" first=");
			print_escaped(first.data, first.len, 64);
			printf("\n");
			break;
		}
		pgbr_sha256_free(sha);
		pgbr_buf_release(&data);
		pgbr_buf_release(&first);
	}
	return true;
}

bool
send_frame(const char *step, uint8_t type, const void *payload, size_t len)
{
	PgbrError	err;
	double		t0 = now();

	pgbr_error_init(&err);
	if (!pgbr_conn_send(conn, type, payload, len, &err) || !pgbr_conn_flush(conn, &err))
	{
		closed(step, t0, &err);
		return false;
	}
	return true;
}

/*
 * queues a frame without sending it: the frames of one request go out
 * together when the answer is read, so a server that refuses the first one
 * and closes cannot make a later write fail before its answer is read
 */
bool
queue_frame(const char *step, uint8_t type, const void *payload, size_t len)
{
	PgbrError	err;
	double		t0 = now();

	pgbr_error_init(&err);
	if (!pgbr_conn_send(conn, type, payload, len, &err))
	{
		closed(step, t0, &err);
		return false;
	}
	return true;
}

/* request with a body, then its answer */
void
request(const char *step, uint8_t type, const PgbrBuf *b, bool stream)
{
	PgbrBuf		body;

	if (!send_frame(step, type, b ? b->data : NULL, b ? b->len : 0))
		return;
	pgbr_buf_init(&body);
	read_answer(step, stream, &body);
	pgbr_buf_release(&body);
}

/* a string body whose bytes may include NUL (length-prefixed) */
void
put_bytes_str(PgbrBuf *b, const char *arg)
{
	char	   *tmp = malloc(strlen(arg) + 1);
	size_t		n = unescape(arg, tmp, strlen(arg) + 1);

	pgbr_buf_put_u32(b, (uint32_t) n);
	pgbr_buf_put(b, tmp, n);
	free(tmp);
}

/* DATA (if any) and END with the SHA-256 (and the bad-pages string) */
bool
send_content(const char *step, const uint8_t *data, size_t len, bool bad_pages)
{
	uint8_t		sum[PGBR_SHA256_LEN];
	PgbrBuf		end;
	bool		ok;

	for (size_t off = 0; off < len; off += PGBR_CHUNK_SIZE)
		if (!queue_frame(step, PGBR_MSG_DATA, data + off,
						 len - off < PGBR_CHUNK_SIZE ? len - off : PGBR_CHUNK_SIZE))
			return false;
	pgbr_sha256(data, len, sum);
	pgbr_buf_init(&end);
	pgbr_buf_put(&end, sum, sizeof(sum));
	if (bad_pages)
		pgbr_buf_put_str(&end, "");
	ok = queue_frame(step, PGBR_MSG_END, end.data, end.len);
	pgbr_buf_release(&end);
	return ok;
}

void
wal_put(const char *step, const char *name_arg, const uint8_t *data, size_t len)
{
	PgbrBuf		b,
				body;

	pgbr_buf_init(&b);
	put_bytes_str(&b, name_arg);
	pgbr_buf_put_u64(&b, len);
	{
		uint8_t		sum[PGBR_SHA256_LEN];

		pgbr_sha256(data, len, sum);
		pgbr_buf_put(&b, sum, sizeof(sum));
	}
	pgbr_buf_put_u8(&b, PGBR_COMPRESS_NONE);
	if (queue_frame(step, PGBR_MSG_WAL_PUT, b.data, b.len) && send_content(step, data, len, false))
	{
		pgbr_buf_init(&body);
		read_answer(step, false, &body);
		pgbr_buf_release(&body);
	}
	pgbr_buf_release(&b);
}

/* a WAL segment whose long header matches its name */
uint8_t *
make_segment(const char *name, uint64_t sysid, uint32_t seg_size, int major)
{
	uint8_t    *seg = calloc(1, seg_size);
	uint32_t	tli;
	uint64_t	segno,
				pageaddr;
	uint16_t	magic = major == 16 ? 0xD113 : major == 17 ? 0xD116 : major == 18 ? 0xD118 : 0xD110;

	if (seg == NULL || seg_size < 64 || !pgbr_wal_segment_parse(name, seg_size, &tli, &segno))
		usage_error("cannot make a segment named \"%s\"", name);
	pageaddr = segno * seg_size;
	test_wal_long_header(seg, magic, TEST_XLP_LONG_HEADER, tli, pageaddr, sysid, seg_size, 8192);
	return seg;
}

int
main(int argc, char **argv)
{
	PgbrError	err;
	int			first = argc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strncmp(a, "--host=", 7) == 0)
			opt_host = a + 7;
		else if (strncmp(a, "--port=", 7) == 0)
			opt_port = atoi(a + 7);
		else if (strncmp(a, "--ca=", 5) == 0)
			opt_ca = a + 5;
		else if (strncmp(a, "--cert=", 7) == 0)
			opt_cert = a + 7;
		else if (strncmp(a, "--key=", 6) == 0)
			opt_key = a + 6;
		else if (strncmp(a, "--timeout=", 10) == 0)
			opt_timeout = atoi(a + 10);
		else if (strcmp(a, "--tls1.2") == 0)
			opt_tls12 = true;
		else if (strncmp(a, "--", 2) == 0)
			usage_error("unknown option \"%s\"", a);
		else
		{
			first = i;
			break;
		}
	}
	if (opt_port <= 0 || opt_ca == NULL || opt_timeout <= 0)
		usage_error("%s", "--port and --ca are required (see the comment at the top of pgbr-rawclient.c)");

	signal(SIGPIPE, SIG_IGN);
	pgbr_error_init(&err);
	ctx = pgbr_client_tls_ctx_files(opt_cert, opt_key, opt_ca, &err);
	if (ctx == NULL)
	{
		printf("CONNECT-FAILED [%03d] %s\n", err.code, err.message);
		return 3;
	}
	if (opt_tls12)
	{
		/* TLS 1.2, and let this side ask for renegotiation: the server must refuse */
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_clear_options(ctx, SSL_OP_NO_RENEGOTIATION);
	}
	if (!connect_server())
		return 3;
	for (int i = first; i < argc; i++)
	{
		if (strcmp(argv[i], "-") == 0)
		{
			char	   *line = NULL;
			size_t		cap = 0;
			ssize_t		len;

			while ((len = getline(&line, &cap, stdin)) > 0)
			{
				while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
					line[--len] = '\0';
				if (len > 0 && line[0] != '#')
					run_step(line);
			}
			free(line);
		}
		else
			run_step(argv[i]);
	}
	pgbr_conn_free(conn);
	SSL_CTX_free(ctx);
	return 0;
}
