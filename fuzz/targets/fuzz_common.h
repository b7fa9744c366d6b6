/*
 * fuzz_common.h
 *		Helpers shared by the libFuzzer targets of fuzz/targets/: a cursor
 *		over the fuzzer's bytes, an assertion that turns a broken property
 *		into a crash the fuzzer keeps, and the decoding of one message body
 *		exactly as pgbr-server (requests) and the clients (answers) decode
 *		it, with the properties every successful decode must have.
 *
 * Header-only, included once per target.  Each target is one .c file with
 * LLVMFuzzerTestOneInput; fuzz/fuzz.mk links it with common/ built with
 * -fsanitize=fuzzer-no-link,address,undefined.
 */
#ifndef PGBR_FUZZ_COMMON_H
#define PGBR_FUZZ_COMMON_H

#include "pgbr_manifest.h"
#include "pgbr_proto.h"
#include "pgbr_wal.h"

#include <stdio.h>
#include <stdlib.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A property that does not hold is a bug: report it and abort, so that
 * libFuzzer saves the input as a crash artifact.
 */
#define FUZZ_CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "FUZZ PROPERTY FAILED at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

/* a cursor over the input: takes bytes from the front */
typedef struct FuzzIn
{
	const uint8_t *p;
	size_t		left;
} FuzzIn;

static inline uint8_t
fuzz_u8(FuzzIn *in)
{
	uint8_t		v;

	if (in->left == 0)
		return 0;
	v = *in->p++;
	in->left--;
	return v;
}

static inline uint32_t
fuzz_u32(FuzzIn *in)
{
	uint32_t	v = 0;

	for (int i = 0; i < 4; i++)
		v = (v << 8) | fuzz_u8(in);
	return v;
}

/* a NUL-terminated copy of the next n bytes (caller frees) */
static inline char *
fuzz_str(FuzzIn *in, size_t n)
{
	char	   *s;

	if (n > in->left)
		n = in->left;
	s = malloc(n + 1);
	memcpy(s, in->p, n);
	s[n] = '\0';
	in->p += n;
	in->left -= n;
	return s;
}

/* ---- properties of what decoders accept ---- */

/* no control characters, no "."/".." or empty component, relative, bounded */
static inline bool
fuzz_path_contained(const char *path, size_t max)
{
	size_t		len = strlen(path);
	const char *c = path;

	if (len == 0 || len > max || path[0] == '/')
		return false;
	for (const char *q = path; *q; q++)
		if ((unsigned char) *q < 0x20 || *q == 0x7f)
			return false;
	while (*c)
	{
		size_t		n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
		if (*c == '/')
			c++;
	}
	return path[len - 1] != '/';
}

/* a label as docs/backup-protocol.md spells it, checked character by character */
static inline bool
fuzz_label_shape(const char *s)
{
	static const char *const shapes[] = {
		"99999999-999999F",
		"99999999-999999F_99999999-999999D",
		"99999999-999999F_99999999-999999I",
	};

	for (size_t k = 0; k < PGBR_LENGTHOF(shapes); k++)
	{
		const char *t = shapes[k];
		size_t		i;

		if (strlen(s) != strlen(t))
			continue;
		for (i = 0; t[i]; i++)
			if (t[i] == '9' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != t[i])
				break;
		if (t[i] == '\0')
			return true;
	}
	return false;
}

/* a WAL name a client can make the server use: no separator, no dot-dot */
static inline void
fuzz_check_wal_name(const char *name)
{
	PgbrWalKind k = pgbr_wal_kind(name);

	if (k == PGBR_WAL_INVALID)
		return;
	FUZZ_CHECK(strchr(name, '/') == NULL && strstr(name, "..") == NULL && name[0] != '.' &&
			   strlen(name) <= 40 && strlen(name) >= 16,
			   "pgbr_wal_kind accepted \"%s\" as kind %d", name, (int) k);
	for (const char *p = name; *p; p++)
		FUZZ_CHECK((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') ||
				   (*p >= 'a' && *p <= 'z') || *p == '.',
				   "pgbr_wal_kind accepted \"%s\" with byte 0x%02x", name, (unsigned char) *p);
}

/* every successfully parsed manifest entry stays inside its backup */
static inline void
fuzz_check_entry(const PgbrManifestEntry *e)
{
	FUZZ_CHECK(e->kind == 'f' || e->kind == 'd' || e->kind == 'l', "kind %d", e->kind);
	FUZZ_CHECK(fuzz_path_contained(e->path, PGBR_PATH_MAX),
			   "manifest path \"%s\" accepted", e->path);
	FUZZ_CHECK(e->bundle[0] == '\0' ||
			   (fuzz_path_contained(e->bundle, PGBR_LABEL_MAX) && strchr(e->bundle, '/') == NULL),
			   "bundle \"%s\" accepted", e->bundle);
	FUZZ_CHECK(e->reference[0] == '\0' || fuzz_label_shape(e->reference),
			   "reference \"%s\" accepted", e->reference);
	FUZZ_CHECK(e->compress <= PGBR_COMPRESS_ZST, "compress %u", e->compress);
	FUZZ_CHECK(e->mode <= 07777, "mode %o", e->mode);
}

/*
 * Parses a manifest line; when it is accepted, checks it, formats it and
 * parses the result again: the second parse must give the same entry.
 */
static inline bool
fuzz_manifest_line(const char *line, size_t len)
{
	PgbrManifestEntry *e = malloc(sizeof(PgbrManifestEntry));
	PgbrManifestEntry *e2 = malloc(sizeof(PgbrManifestEntry));
	PgbrError	err;
	PgbrBuf		out;
	bool		ok;

	pgbr_error_init(&err);
	ok = pgbr_manifest_entry_parse(line, len, e, &err);
	FUZZ_CHECK(ok != pgbr_error_is_set(&err), "result %d but error code %d", ok, err.code);
	if (ok)
	{
		size_t		tabs = 0,
					n = len;

		/* exactly 13 fields: 12 tabs in what remains without the line end */
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		for (size_t i = 0; i < n; i++)
			tabs += line[i] == '\t';
		FUZZ_CHECK(tabs == 12, "manifest line with %zu tabs accepted", tabs);
		fuzz_check_entry(e);
		FUZZ_CHECK(pgbr_manifest_cmp(e->path, e->kind, e->path, e->kind) == 0,
				   "cmp(x, x) != 0 for \"%s\"", e->path);
		pgbr_buf_init(&out);
		pgbr_manifest_entry_format(e, &out);
		pgbr_error_init(&err);
		FUZZ_CHECK(pgbr_manifest_entry_parse((const char *) out.data, out.len, e2, &err),
				   "formatted entry does not parse again: %s: %s", (const char *) out.data,
				   err.message);
		FUZZ_CHECK(e->kind == e2->kind && strcmp(e->path, e2->path) == 0 &&
				   e->size == e2->size && e->mtime == e2->mtime && e->mode == e2->mode &&
				   e->has_sha == e2->has_sha &&
				   (!e->has_sha || memcmp(e->sha256, e2->sha256, 32) == 0) &&
				   e->repo_size == e2->repo_size &&
				   strcmp(e->reference, e2->reference) == 0 &&
				   strcmp(e->bundle, e2->bundle) == 0 && e->offset == e2->offset &&
				   e->compress == e2->compress &&
				   strcmp(e->bad_pages, e2->bad_pages) == 0 &&
				   strcmp(e->target, e2->target) == 0,
				   "format/parse round trip changed the entry: %s", (const char *) out.data);
		pgbr_buf_release(&out);
	}
	free(e);
	free(e2);
	return ok;
}

/* ---- message bodies ---- */

/* decode succeeded: encoding the result must give back the same bytes */
static inline void
fuzz_same_bytes(const PgbrBuf *b, const uint8_t *data, size_t len, const char *what)
{
	FUZZ_CHECK(b->len == len && (len == 0 || memcmp(b->data, data, len) == 0),
			   "%s: decode + encode is not the identity (%zu bytes in, %zu out)", what, len,
			   b->len);
}

/* a sequence of n strings, with the bounds the server uses for that request */
static inline bool
fuzz_strs(const uint8_t *data, size_t len, int n, const size_t *maxlens, const char *what)
{
	char	   *out[4];
	PgbrError	err;
	bool		ok;

	for (int i = 0; i < n; i++)
		out[i] = malloc(maxlens[i] + 1);
	pgbr_error_init(&err);
	ok = pgbr_strs_decode(data, len, n, out, maxlens, &err);
	FUZZ_CHECK(ok != pgbr_error_is_set(&err), "%s: result %d, error code %d", what, ok, err.code);
	if (ok)
	{
		PgbrBuf		b;

		for (int i = 0; i < n; i++)
			FUZZ_CHECK(strlen(out[i]) <= maxlens[i], "%s: string %d too long", what, i);
		pgbr_buf_init(&b);
		pgbr_strs_encode(&b, n, (const char *const *) out);
		fuzz_same_bytes(&b, data, len, what);
		pgbr_buf_release(&b);
	}
	for (int i = 0; i < n; i++)
		free(out[i]);
	return ok;
}

/* a single string of at most maxlen bytes; copy into *copy if wanted */
static inline bool
fuzz_name(const uint8_t *data, size_t len, size_t maxlen, char **copy)
{
	char	   *name = malloc(maxlen + 1);
	PgbrError	err;
	bool		ok;

	pgbr_error_init(&err);
	ok = pgbr_name_decode(data, len, name, maxlen, &err);
	FUZZ_CHECK(ok != pgbr_error_is_set(&err), "name: result %d, error code %d", ok, err.code);
	if (ok)
	{
		PgbrBuf		b;

		FUZZ_CHECK(strlen(name) <= maxlen, "name of %zu bytes accepted", strlen(name));
		pgbr_buf_init(&b);
		pgbr_name_encode(&b, name);
		fuzz_same_bytes(&b, data, len, "name");
		pgbr_buf_release(&b);
	}
	if (copy && ok)
		*copy = name;
	else
		free(name);
	return ok;
}

/* BACKUP_END: key=value lines as repo-server/backup_commit.c splits them */
static inline void
fuzz_kv_lines(char *text)
{
	char	   *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *key,
				   *value;

		if (pgbr_kv_split(line, &key, &value))
			FUZZ_CHECK(key[0] != '\0' && strchr(key, '=') == NULL,
					   "kv_split gave key \"%s\"", key);
	}
}

/*
 * Decodes one payload the way the receiver of a frame of this type does.
 * Requests are decoded as repo-server/ does; OK, ERROR and END as the
 * clients (tool, extension) and the server (END of an upload) do.
 */
static inline void
fuzz_decode_body(uint8_t type, const uint8_t *data, size_t len)
{
	PgbrError	err;
	PgbrBuf		b;

	pgbr_error_init(&err);
	pgbr_buf_init(&b);
	switch (type)
	{
		case PGBR_MSG_HELLO:
			{
				PgbrHello	h;

				if (pgbr_hello_decode(data, len, &h, &err))
				{
					FUZZ_CHECK(h.magic == PGBR_PROTO_MAGIC, "HELLO magic %08x", h.magic);
					if (pgbr_stanza_name_valid(h.stanza))
						FUZZ_CHECK(fuzz_path_contained(h.stanza, PGBR_NAME_MAX) &&
								   strchr(h.stanza, '/') == NULL && h.stanza[0] != '.',
								   "stanza name \"%s\" accepted", h.stanza);
					pgbr_hello_encode(&b, &h);
					fuzz_same_bytes(&b, data, len, "HELLO");
				}
				else
					FUZZ_CHECK(pgbr_error_is_set(&err), "HELLO refused without error");
				break;
			}
		case PGBR_MSG_ERROR:
			{
				PgbrError	remote;

				if (pgbr_errmsg_decode(data, len, &remote, &err))
				{
					FUZZ_CHECK(remote.code > 0 && remote.code <= 999, "ERROR code %d", remote.code);
					pgbr_errmsg_encode(&b, &remote);
					fuzz_same_bytes(&b, data, len, "ERROR");
				}
				else
					FUZZ_CHECK(pgbr_error_is_set(&err) && remote.code == 0,
							   "ERROR refused: err %d remote %d", err.code, remote.code);
				break;
			}
		case PGBR_MSG_STANZA_CREATE:
		case PGBR_MSG_STANZA_GET:
			{
				PgbrStanzaMsg m;

				if (pgbr_stanza_decode(data, len, &m, &err))
				{
					pgbr_stanza_encode(&b, &m);
					fuzz_same_bytes(&b, data, len, "STANZA");
				}
				break;
			}
		case PGBR_MSG_WAL_PUT:
			{
				PgbrWalMsg	m;

				if (pgbr_wal_msg_decode(data, len, &m, &err))
				{
					FUZZ_CHECK(m.compress <= PGBR_COMPRESS_ZST, "compress %u", m.compress);
					fuzz_check_wal_name(m.name);
					pgbr_wal_msg_encode(&b, &m);
					fuzz_same_bytes(&b, data, len, "WAL_PUT");
				}
				break;
			}
		case PGBR_MSG_WAL_GET:
		case PGBR_MSG_WAL_FIND:
		case PGBR_MSG_MANIFEST_GET:
			{
				char	   *name = NULL;

				if (fuzz_name(data, len, PGBR_NAME_MAX, &name))
				{
					fuzz_check_wal_name(name);
					if (pgbr_label_valid(name))
						FUZZ_CHECK(fuzz_label_shape(name), "label \"%s\" accepted", name);
					free(name);
				}
				break;
			}
		case PGBR_MSG_BACKUP_BEGIN:
			{
				static const size_t maxlens[] = {7, 31, 15, 15};

				fuzz_strs(data, len, 4, maxlens, "BACKUP_BEGIN");
				break;
			}
		case PGBR_MSG_BACKUP_JOIN:
			{
				static const size_t maxlens[] = {PGBR_NAME_MAX, PGBR_NAME_MAX};

				fuzz_strs(data, len, 2, maxlens, "BACKUP_JOIN");
				break;
			}
		case PGBR_MSG_FILE_PUT:
			{
				char	   *line = NULL;

				if (fuzz_name(data, len, PGBR_TEXT_MAX, &line))
				{
					fuzz_manifest_line(line, strlen(line));
					free(line);
				}
				break;
			}
		case PGBR_MSG_FILE_GET:
			{
				char	   *out[2];
				static const size_t maxlens[] = {PGBR_NAME_MAX, PGBR_TEXT_MAX};

				out[0] = malloc(PGBR_NAME_MAX + 1);
				out[1] = malloc(PGBR_TEXT_MAX + 1);
				if (fuzz_strs(data, len, 2, maxlens, "FILE_GET") &&
					pgbr_strs_decode(data, len, 2, out, maxlens, &err))
				{
					if (pgbr_label_valid(out[0]))
						FUZZ_CHECK(fuzz_label_shape(out[0]), "label \"%s\" accepted", out[0]);
					fuzz_manifest_line(out[1], strlen(out[1]));
				}
				free(out[0]);
				free(out[1]);
				break;
			}
		case PGBR_MSG_BACKUP_END:
			{
				char	   *text = NULL;

				if (fuzz_name(data, len, PGBR_TEXT_MAX, &text))
				{
					fuzz_kv_lines(text);
					free(text);
				}
				break;
			}
		case PGBR_MSG_END:
			{
				/* a file upload's trailer: SHA-256 then the bad-pages string */
				PgbrReader	r;
				uint8_t		sha[32];
				char		bad[512];

				pgbr_reader_init(&r, data, len);
				pgbr_reader_bytes(&r, sha, 32);
				pgbr_reader_str(&r, bad, sizeof(bad) - 1);
				if (pgbr_reader_done(&r))
					FUZZ_CHECK(strlen(bad) < sizeof(bad) && len == 32 + 4 + strlen(bad),
							   "END trailer of %zu bytes", len);
				break;
			}
		case PGBR_MSG_OK:
			{
				/* answers: ping version, INFO text, BACKUP_BEGIN, WAL_GET, STANZA_GET */
				static const size_t four[] = {PGBR_NAME_MAX, PGBR_NAME_MAX, PGBR_NAME_MAX,
				PGBR_NAME_MAX};
				PgbrWalMsg	m;
				PgbrStanzaMsg st;

				fuzz_name(data, len, PGBR_TEXT_MAX, NULL);
				fuzz_strs(data, len, 4, four, "OK of BACKUP_BEGIN");
				if (pgbr_wal_msg_decode(data, len, &m, &err))
					fuzz_check_wal_name(m.name);
				pgbr_error_init(&err);
				(void) pgbr_stanza_decode(data, len, &st, &err);
				break;
			}
		default:
			/* DATA, PING, INFO, EXPIRE, VERIFY, BACKUP_ABORT: no body to decode */
			break;
	}
	pgbr_buf_release(&b);
}

#endif							/* PGBR_FUZZ_COMMON_H */
