/*
 * gen-seeds.c
 *		Writes the seed corpus of the fuzz targets (fuzz/corpus/TARGET/NAME)
 *		with the real encoders, so the seeds follow the wire format:
 *		valid examples of every message body, a whole conversation as a
 *		frame stream, manifests, configuration files, WAL names with their
 *		segment headers, zstd streams.  Run by "make fuzz-seeds"; the output
 *		is committed.
 */
#include "pgbr_config.h"
#include "pgbr_manifest.h"
#include "pgbr_proto.h"
#include "pgbr_sink.h"
#include "pgbr_wal.h"
#include "../regress/unit/wal_page.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *outdir;

static void
put_file(const char *target, const char *name, const void *data, size_t len)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
	{
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

/* a body seed: first byte selects the type (see fuzz_body.c) */
static void
body(const char *name, uint8_t type, const PgbrBuf *b)
{
	PgbrBuf		s;

	pgbr_buf_init(&s);
	pgbr_buf_put_u8(&s, (uint8_t) (type - 1));
	pgbr_buf_put(&s, b->data, b->len);
	put_file("body", name, s.data, s.len);
	pgbr_buf_release(&s);
}

static void
frame(PgbrBuf *stream, uint8_t type, const PgbrBuf *b)
{
	uint8_t		h[PGBR_FRAME_HEADER_SIZE];

	pgbr_frame_header_encode(h, type, (uint32_t) (b ? b->len : 0));
	pgbr_buf_put(stream, h, sizeof(h));
	if (b)
		pgbr_buf_put(stream, b->data, b->len);
}

static const char *const manifest_lines[] = {
	"d\tbase\t0\t1700000000\t700\t-\t0\t-\t-\t0\t0\t-\t-",
	"d\tbase/1\t0\t1700000000\t700\t-\t0\t-\t-\t0\t0\t-\t-",
	"f\tbase/1/1259\t8192\t1700000000\t600\t"
	"6f1ed002ab5595859014ebf0951522d9e1a0e3f4d1d5e5d6b6f6a5e1b2c3d4e5\t123\t-\t-\t0\t1\t-\t-",
	"f\tbase/1/1259_fsm\t24576\t1700000000\t600\t"
	"00000000000000000000000000000000000000000000000000000000000000ff\t80\t20251117-134141F\t-\t0\t1\t-\t-",
	"f\tglobal/pg_control\t8192\t1700000001\t600\t"
	"aa00000000000000000000000000000000000000000000000000000000000000\t8192\t-\t123-1\t4096\t0\t3,17\t-",
	"l\tpg_tblspc/16384\t0\t1700000000\t777\t-\t0\t-\t-\t0\t0\t-\t/srv/ts1",
	"f\tPG_VERSION\t3\t-5\t0644\t-\t3\t20251117-134141F_20251118-010203I\t-\t0\t0\t-\t-",
};

static void
seeds_body_frame(void)
{
	PgbrBuf		b,
				stream;
	PgbrHello	h;
	PgbrStanzaMsg st;
	PgbrWalMsg	w;
	PgbrError	e;

	pgbr_buf_init(&b);
	pgbr_buf_init(&stream);

	memset(&h, 0, sizeof(h));
	h.magic = PGBR_PROTO_MAGIC;
	h.version = PGBR_PROTOCOL_VERSION;
	snprintf(h.program, sizeof(h.program), "archive-push");
	snprintf(h.stanza, sizeof(h.stanza), "demo");
	pgbr_hello_encode(&b, &h);
	body("hello", PGBR_MSG_HELLO, &b);
	frame(&stream, PGBR_MSG_HELLO, &b);
	pgbr_buf_reset(&b);

	pgbr_error_init(&e);
	pgbr_error_set(&e, PGBR_ERR_ACCESS, "client certificate CN \"x\" is not authorized");
	pgbr_error_hint(&e, "Add tls-server-auth=x=demo to the server's configuration.");
	pgbr_errmsg_encode(&b, &e);
	body("error", PGBR_MSG_ERROR, &b);
	pgbr_buf_reset(&b);

	st.system_id = UINT64_C(7300000000000000001);
	st.pg_version = 150004;
	st.seg_size = 16 * 1024 * 1024;
	pgbr_stanza_encode(&b, &st);
	body("stanza-create", PGBR_MSG_STANZA_CREATE, &b);
	frame(&stream, PGBR_MSG_STANZA_CREATE, &b);
	pgbr_buf_reset(&b);

	memset(&w, 0, sizeof(w));
	snprintf(w.name, sizeof(w.name), "000000010000000000000003");
	w.size = 16 * 1024 * 1024;
	memset(w.sha256, 0x5a, 32);
	w.compress = PGBR_COMPRESS_ZST;
	pgbr_wal_msg_encode(&b, &w);
	body("wal-put", PGBR_MSG_WAL_PUT, &b);
	frame(&stream, PGBR_MSG_WAL_PUT, &b);
	pgbr_buf_reset(&b);
	pgbr_buf_put(&b, "\x28\xb5\x2f\xfd", 4);
	frame(&stream, PGBR_MSG_DATA, &b);
	pgbr_buf_reset(&b);
	pgbr_buf_put(&b, w.sha256, 32);
	frame(&stream, PGBR_MSG_END, &b);
	pgbr_buf_reset(&b);

	snprintf(w.name, sizeof(w.name), "00000002.history");
	w.compress = PGBR_COMPRESS_NONE;
	pgbr_wal_msg_encode(&b, &w);
	body("wal-put-history", PGBR_MSG_WAL_PUT, &b);
	pgbr_buf_reset(&b);

	pgbr_name_encode(&b, "000000010000000000000003.00000028.backup");
	body("wal-get", PGBR_MSG_WAL_GET, &b);
	frame(&stream, PGBR_MSG_WAL_GET, &b);
	pgbr_buf_reset(&b);
	pgbr_name_encode(&b, "000000010000000000000004.partial");
	body("wal-find", PGBR_MSG_WAL_FIND, &b);
	pgbr_buf_reset(&b);
	pgbr_name_encode(&b, "20251117-134141F");
	body("manifest-get", PGBR_MSG_MANIFEST_GET, &b);
	frame(&stream, PGBR_MSG_MANIFEST_GET, &b);
	pgbr_buf_reset(&b);

	{
		const char *begin[] = {"incr", "7300000000000000001", "150004", "primary"};
		const char *join[] = {"20251117-134141F", "0123456789abcdef0123456789abcdef"};
		const char *get[] = {"20251117-134141F", manifest_lines[2]};
		const char *answer[] = {"20251117-134141F_20251118-010203I", "20251117-134141F",
		"incr", "0123456789abcdef0123456789abcdef"};

		pgbr_strs_encode(&b, 4, begin);
		body("backup-begin", PGBR_MSG_BACKUP_BEGIN, &b);
		frame(&stream, PGBR_MSG_BACKUP_BEGIN, &b);
		pgbr_buf_reset(&b);
		pgbr_strs_encode(&b, 2, join);
		body("backup-join", PGBR_MSG_BACKUP_JOIN, &b);
		frame(&stream, PGBR_MSG_BACKUP_JOIN, &b);
		pgbr_buf_reset(&b);
		pgbr_strs_encode(&b, 2, get);
		body("file-get", PGBR_MSG_FILE_GET, &b);
		frame(&stream, PGBR_MSG_FILE_GET, &b);
		pgbr_buf_reset(&b);
		pgbr_strs_encode(&b, 4, answer);
		body("ok-backup-begin", PGBR_MSG_OK, &b);
		pgbr_buf_reset(&b);
	}
	for (size_t i = 0; i < PGBR_LENGTHOF(manifest_lines); i++)
	{
		char		name[32];

		pgbr_name_encode(&b, manifest_lines[i]);
		snprintf(name, sizeof(name), "file-put-%zu", i);
		body(name, PGBR_MSG_FILE_PUT, &b);
		frame(&stream, PGBR_MSG_FILE_PUT, &b);
		pgbr_buf_reset(&b);
		if (manifest_lines[i][0] == 'f')
		{
			pgbr_buf_put(&b, "data", 4);
			frame(&stream, PGBR_MSG_DATA, &b);
			pgbr_buf_reset(&b);
			pgbr_buf_put(&b, w.sha256, 32);
			pgbr_buf_put_str(&b, i == 4 ? "3,17" : "");
			body(i == 4 ? "end-trailer-bad-pages" : "end-trailer", PGBR_MSG_END, &b);
			frame(&stream, PGBR_MSG_END, &b);
			pgbr_buf_reset(&b);
		}
	}
	pgbr_name_encode(&b, "timestamp-start=1700000000\ntimestamp-stop=1700000100\n"
					 "lsn-start=0/3000028\nlsn-stop=0/3000120\n"
					 "wal-start=000000010000000000000003\nwal-stop=000000010000000000000003\n"
					 "backup-from=primary\n");
	body("backup-end", PGBR_MSG_BACKUP_END, &b);
	frame(&stream, PGBR_MSG_BACKUP_END, &b);
	pgbr_buf_reset(&b);
	frame(&stream, PGBR_MSG_PING, NULL);
	frame(&stream, PGBR_MSG_INFO, NULL);
	frame(&stream, PGBR_MSG_VERIFY, NULL);
	put_file("frame", "conversation", stream.data, stream.len);

	/* small streams: one frame each, and the refused headers */
	pgbr_buf_reset(&stream);
	frame(&stream, PGBR_MSG_PING, NULL);
	put_file("frame", "ping", stream.data, stream.len);
	{
		static const uint8_t big[] = {7, 0, 0, 0, 0x00, 0x10, 0x00, 0x01};
		static const uint8_t unknown[] = {0xff, 0, 0, 0, 0, 0, 0, 0};
		static const uint8_t flags[] = {4, 1, 0, 0, 0, 0, 0, 0};

		put_file("frame", "oversized", big, sizeof(big));
		put_file("frame", "unknown-type", unknown, sizeof(unknown));
		put_file("frame", "flags", flags, sizeof(flags));
	}
	pgbr_buf_release(&b);
	pgbr_buf_release(&stream);
}

static void
seeds_manifest(void)
{
	PgbrBuf		m;

	pgbr_buf_init(&m);
	pgbr_buf_printf(&m, "[backup]\nlabel=20251117-134141F_20251118-010203I\ntype=incr\n"
					"prior=20251117-134141F\nsystem-id=7300000000000000001\npg-version=150004\n"
					"timestamp-start=1700000000\ntimestamp-stop=1700000100\n"
					"lsn-start=0/3000028\nlsn-stop=0/3000120\n"
					"wal-start=000000010000000000000003\nwal-stop=000000010000000000000003\n"
					"backup-from=primary\nsize=40963\ndelta=8195\nrepo-size=8318\n"
					"file-total=4\nerror-pages=1\n[files]\n");
	for (size_t i = 0; i < PGBR_LENGTHOF(manifest_lines); i++)
		pgbr_buf_printf(&m, "%s\n", manifest_lines[i]);
	put_file("manifest", "incr", m.data, m.len);
	pgbr_buf_reset(&m);
	pgbr_buf_printf(&m, "[files]\n%s\n%s", manifest_lines[0], manifest_lines[2]);
	put_file("manifest", "no-final-newline", m.data, m.len);
	pgbr_buf_reset(&m);
	pgbr_buf_printf(&m, "[files]\n"
					"f\t../../stanza.info\t1\t0\t600\t-\t1\t-\t-\t0\t0\t-\t-\n"
					"f\ta\t1\t0\t600\t-\t1\t-\t../x\t0\t0\t-\t-\n"
					"f\t/etc/passwd\t1\t0\t600\t-\t1\t-\t-\t0\t0\t-\t-\n");
	put_file("manifest", "escapes", m.data, m.len);
	pgbr_buf_release(&m);
}

static void
seeds_config(void)
{
	static const char server[] =
		"[global]\nrepo1-path=/backup_space\nrepo1-retention-full=2\nrepo1-bundle=y\n"
		"tls-server-address=*\ntls-server-cert-file=/etc/pgbr/certs/backup-srv.crt\n"
		"tls-server-key-file=/etc/pgbr/certs/backup-srv.key\n"
		"tls-server-ca-file=/etc/pgbr/certs/ca.crt\n"
		"tls-server-auth=pg1-srv=demo\ntls-server-auth=pg2-srv=demo,other\n"
		"tls-server-max-connections=128\n";
	static const char client[] =
		"# a PostgreSQL host\n[global]\nrepo1-host=backup-srv\n"
		"repo1-host-cert-file=/etc/pgbr/certs/pg1-srv.crt\n"
		"repo1-host-key-file=/etc/pgbr/certs/pg1-srv.key\n"
		"repo1-host-ca-file=/etc/pgbr/certs/ca.crt\ncompress-type=zst\n"
		"log-level-console=info\n\n[demo]\npg1-path=/var/lib/postgresql/15/main\n"
		"recovery-option=primary_conninfo=host=pg1\nrecovery-option=x=y\n"
		"process-max = 4\r\n; comment\nstart-fast=y\n";

	put_file("config", "server", server, sizeof(server) - 1);
	put_file("config", "client", client, sizeof(client) - 1);
}

static void
seed_wal(const char *file, uint8_t sel, const char *name, uint32_t tli, uint64_t pageaddr,
		 uint64_t sysid, uint32_t seg)
{
	uint8_t		b[256];
	size_t		n = 0;
	uint8_t		h[PGBR_WAL_LONG_HEADER_SIZE];

	b[n++] = sel;
	memcpy(b + n, name, strlen(name));
	n += strlen(name);
	b[n++] = '\n';
	test_wal_long_header(h, TEST_WAL_MAGIC_PG15, TEST_XLP_LONG_HEADER, tli, pageaddr, sysid, seg, 8192);
	memcpy(b + n, h, sizeof(h));
	n += sizeof(h);
	put_file("wal", file, b, n);
}

static void
seeds_wal(void)
{
	/* sel 4 | 0x40: 16 MB segments, the header's own system identifier */
	seed_wal("segment", 0x44, "000000010000000000000003", 1, UINT64_C(3) << 24,
			 UINT64_C(7300000000000000001), 16u << 20);
	seed_wal("segment-high", 0x44, "0000000A00000001000000FF", 10,
			 (UINT64_C(1) << 32) + (UINT64_C(0xFF) << 24), 1, 16u << 20);
	seed_wal("partial", 0x60, "000000020000000000000007.partial", 2, UINT64_C(7) << 20, 5,
			 1u << 20);
	seed_wal("backup", 0x04, "000000010000000000000003.00000028.backup", 1, 0, 0, 0);
	seed_wal("history", 0x04, "00000002.history", 0, 0, 0, 0);
	seed_wal("lsn", 0x04, "16/B374D848", 0, 0, 0, 0);
	seed_wal("escape", 0x04, "../../000000010000000000000003", 0, 0, 0, 0);
}

static void
seeds_zstd(void)
{
	static const char text[] =
		"pgbr pipeline pgbr pipeline pgbr pipeline 0123456789 abcdefghijklmnopqrstuvwxyz";
	PgbrBuf		out;
	PgbrError	err;
	PgbrSink   *bufsink,
			   *enc;
	uint8_t		step;

	for (int k = 0; k < 2; k++)
	{
		pgbr_buf_init(&out);
		pgbr_error_init(&err);
		step = (uint8_t) (k == 0 ? 3 : 0);	/* 7-byte or 1-byte writes */
		pgbr_buf_put_u8(&out, step);
		bufsink = pgbr_sink_buf_create(&out);
		enc = pgbr_sink_zstd_compress_create(3, 0, bufsink, &err);
		if (enc == NULL || !pgbr_sink_write(enc, text, k == 0 ? sizeof(text) - 1 : 0, &err) ||
			!pgbr_sink_finish(enc, &err))
		{
			fprintf(stderr, "zstd: %s\n", err.message);
			exit(1);
		}
		put_file("zstd", k == 0 ? "text" : "empty", out.data, out.len);
		pgbr_sink_free(enc);
		pgbr_sink_free(bufsink);
		pgbr_buf_release(&out);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	for (size_t i = 0; i < PGBR_LENGTHOF(manifest_lines); i++)
	{
		PgbrManifestEntry e;
		PgbrError	err;

		pgbr_error_init(&err);
		if (!pgbr_manifest_entry_parse(manifest_lines[i], strlen(manifest_lines[i]), &e, &err))
		{
			fprintf(stderr, "seed manifest line %zu does not parse: %s\n", i, err.message);
			return 1;
		}
	}
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
	{
		perror(outdir);
		return 1;
	}
	seeds_body_frame();
	seeds_manifest();
	seeds_config();
	seeds_wal();
	seeds_zstd();
	printf("seeds written to %s\n", outdir);
	return 0;
}
