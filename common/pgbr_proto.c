/*
 * pgbr_proto.c
 *		Frame headers and message bodies of the pgbr protocol.
 */
#include "pgbr_proto.h"

static const char *const msg_names[] = {
	[PGBR_MSG_HELLO] = "HELLO",
	[PGBR_MSG_OK] = "OK",
	[PGBR_MSG_ERROR] = "ERROR",
	[PGBR_MSG_PING] = "PING",
	[PGBR_MSG_STANZA_CREATE] = "STANZA_CREATE",
	[PGBR_MSG_STANZA_GET] = "STANZA_GET",
	[PGBR_MSG_WAL_PUT] = "WAL_PUT",
	[PGBR_MSG_DATA] = "DATA",
	[PGBR_MSG_END] = "END",
	[PGBR_MSG_WAL_GET] = "WAL_GET",
	[PGBR_MSG_WAL_FIND] = "WAL_FIND",
	[PGBR_MSG_BACKUP_BEGIN] = "BACKUP_BEGIN",
	[PGBR_MSG_FILE_PUT] = "FILE_PUT",
	[PGBR_MSG_BACKUP_END] = "BACKUP_END",
	[PGBR_MSG_BACKUP_ABORT] = "BACKUP_ABORT",
	[PGBR_MSG_INFO] = "INFO",
	[PGBR_MSG_MANIFEST_GET] = "MANIFEST_GET",
	[PGBR_MSG_FILE_GET] = "FILE_GET",
	[PGBR_MSG_EXPIRE] = "EXPIRE",
	[PGBR_MSG_VERIFY] = "VERIFY",
	[PGBR_MSG_BACKUP_JOIN] = "BACKUP_JOIN",
};

const char *
pgbr_msg_name(int type)
{
	if (type <= 0 || type > PGBR_MSG_TYPE_MAX || msg_names[type] == NULL)
		return "unknown";
	return msg_names[type];
}

void
pgbr_frame_header_encode(uint8_t out[PGBR_FRAME_HEADER_SIZE], uint8_t type,
						 uint32_t length)
{
	out[0] = type;
	out[1] = 0;
	out[2] = 0;
	out[3] = 0;
	pgbr_put_be32(out + 4, length);
}

bool
pgbr_frame_header_decode(const uint8_t in[PGBR_FRAME_HEADER_SIZE],
						 PgbrFrameHeader *hdr, PgbrError *err)
{
	hdr->type = in[0];
	hdr->flags = in[1];
	hdr->length = pgbr_get_be32(in + 4);

	if (hdr->type == 0 || hdr->type > PGBR_MSG_TYPE_MAX)
		return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
							  "invalid frame: unknown message type %u", hdr->type);
	if (hdr->flags != 0 || in[2] != 0 || in[3] != 0)
		return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
							  "invalid frame: reserved header bits are set");
	if (hdr->length > PGBR_FRAME_MAX)
		return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
							  "invalid frame: %s payload of %u bytes exceeds the limit of %u bytes",
							  pgbr_msg_name(hdr->type), hdr->length,
							  (unsigned) PGBR_FRAME_MAX);
	return true;
}

static bool
decode_failed(PgbrError *err, const char *what)
{
	return pgbr_error_set(err, PGBR_ERR_PROTOCOL, "malformed %s message", what);
}

void
pgbr_hello_encode(PgbrBuf *buf, const PgbrHello *m)
{
	pgbr_buf_put_u32(buf, PGBR_PROTO_MAGIC);
	pgbr_buf_put_u16(buf, m->version);
	pgbr_buf_put_str(buf, m->program);
	pgbr_buf_put_str(buf, m->stanza);
}

bool
pgbr_hello_decode(const void *data, size_t len, PgbrHello *m, PgbrError *err)
{
	PgbrReader	r;

	pgbr_reader_init(&r, data, len);
	m->magic = pgbr_reader_u32(&r);
	if (!r.failed && m->magic != PGBR_PROTO_MAGIC)
		return pgbr_error_set(err, PGBR_ERR_PROTOCOL,
							  "client is not a pgbr client (bad magic in HELLO)");
	m->version = pgbr_reader_u16(&r);
	pgbr_reader_str(&r, m->program, PGBR_NAME_MAX);
	pgbr_reader_str(&r, m->stanza, PGBR_NAME_MAX);
	if (!pgbr_reader_done(&r))
		return decode_failed(err, "HELLO");
	return true;
}

void
pgbr_errmsg_encode(PgbrBuf *buf, const PgbrError *e)
{
	pgbr_buf_put_u32(buf, (uint32_t) e->code);
	pgbr_buf_put_str(buf, e->message);
	pgbr_buf_put_str(buf, e->hint);
}

bool
pgbr_errmsg_decode(const void *data, size_t len, PgbrError *remote, PgbrError *err)
{
	PgbrReader	r;

	pgbr_error_init(remote);
	pgbr_reader_init(&r, data, len);
	remote->code = (int) pgbr_reader_u32(&r);
	pgbr_reader_str(&r, remote->message, sizeof(remote->message) - 1);
	pgbr_reader_str(&r, remote->hint, sizeof(remote->hint) - 1);
	if (!pgbr_reader_done(&r) || remote->code <= 0 || remote->code > 999)
	{
		pgbr_error_init(remote);
		return decode_failed(err, "ERROR");
	}
	return true;
}

void
pgbr_stanza_encode(PgbrBuf *buf, const PgbrStanzaMsg *m)
{
	pgbr_buf_put_u64(buf, m->system_id);
	pgbr_buf_put_u32(buf, m->pg_version);
	pgbr_buf_put_u32(buf, m->seg_size);
}

bool
pgbr_stanza_decode(const void *data, size_t len, PgbrStanzaMsg *m, PgbrError *err)
{
	PgbrReader	r;

	pgbr_reader_init(&r, data, len);
	m->system_id = pgbr_reader_u64(&r);
	m->pg_version = pgbr_reader_u32(&r);
	m->seg_size = pgbr_reader_u32(&r);
	if (!pgbr_reader_done(&r))
		return decode_failed(err, "stanza");
	return true;
}

void
pgbr_wal_msg_encode(PgbrBuf *buf, const PgbrWalMsg *m)
{
	pgbr_buf_put_str(buf, m->name);
	pgbr_buf_put_u64(buf, m->size);
	pgbr_buf_put(buf, m->sha256, 32);
	pgbr_buf_put_u8(buf, m->compress);
}

bool
pgbr_wal_msg_decode(const void *data, size_t len, PgbrWalMsg *m, PgbrError *err)
{
	PgbrReader	r;

	pgbr_reader_init(&r, data, len);
	pgbr_reader_str(&r, m->name, PGBR_NAME_MAX);
	m->size = pgbr_reader_u64(&r);
	pgbr_reader_bytes(&r, m->sha256, 32);
	m->compress = pgbr_reader_u8(&r);
	if (!pgbr_reader_done(&r) || m->compress > PGBR_COMPRESS_ZST)
		return decode_failed(err, "WAL");
	return true;
}

void
pgbr_name_encode(PgbrBuf *buf, const char *name)
{
	pgbr_buf_put_str(buf, name);
}

bool
pgbr_name_decode(const void *data, size_t len, char *name, size_t maxlen,
				 PgbrError *err)
{
	PgbrReader	r;

	pgbr_reader_init(&r, data, len);
	pgbr_reader_str(&r, name, maxlen);
	if (!pgbr_reader_done(&r))
		return decode_failed(err, "name");
	return true;
}

bool
pgbr_stanza_name_valid(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len > PGBR_NAME_MAX || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
	{
		char		c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

void
pgbr_strs_encode(PgbrBuf *buf, int n, const char *const *strs)
{
	for (int i = 0; i < n; i++)
		pgbr_buf_put_str(buf, strs[i]);
}

bool
pgbr_strs_decode(const void *data, size_t len, int n, char *const *out, const size_t *maxlens,
				 PgbrError *err)
{
	PgbrReader	r;

	pgbr_reader_init(&r, data, len);
	for (int i = 0; i < n; i++)
		pgbr_reader_str(&r, out[i], maxlens[i]);
	if (!pgbr_reader_done(&r))
		return decode_failed(err, "request");
	return true;
}
