/*
 * pgbr_proto.h
 *		The wire protocol between the PostgreSQL hosts and pgbr-server:
 *		frame headers and message bodies.  Pure functions, no I/O: they are
 *		what the fuzzers and unit tests exercise.
 *
 * A frame is an 8-byte header -- type (1), flags (1), reserved (2, zero),
 * payload length (4, big-endian) -- followed by the payload.  A payload
 * longer than PGBR_FRAME_MAX is a protocol error, checked before any
 * memory is allocated for it.  Integers in bodies are big-endian; strings
 * are a u32 length and the bytes, without NUL, bounded per field.
 *
 * Conversation: the client's first frame is HELLO (or PING, which needs no
 * authorisation).  Every request is answered by OK (with a body that
 * depends on the request) or ERROR.  Streams of file content are DATA
 * frames closed by END.
 */
#ifndef PGBR_PROTO_H
#define PGBR_PROTO_H

#include "pgbr_buf.h"

#define PGBR_FRAME_HEADER_SIZE	8
#define PGBR_FRAME_MAX			(1024 * 1024)
#define PGBR_PROTO_MAGIC		0x50474252	/* "PGBR" */

#define PGBR_NAME_MAX			64	/* stanza names, WAL file names */
#define PGBR_PATH_MAX			1024	/* relative paths inside a backup */
#define PGBR_TEXT_MAX			8192	/* messages, labels, free text */

typedef enum PgbrMsgType
{
	PGBR_MSG_HELLO = 1,
	PGBR_MSG_OK = 2,
	PGBR_MSG_ERROR = 3,
	PGBR_MSG_PING = 4,
	PGBR_MSG_STANZA_CREATE = 5,
	PGBR_MSG_STANZA_GET = 6,
	PGBR_MSG_WAL_PUT = 7,
	PGBR_MSG_DATA = 8,
	PGBR_MSG_END = 9,
	PGBR_MSG_WAL_GET = 10,
	PGBR_MSG_WAL_FIND = 11,
	PGBR_MSG_BACKUP_BEGIN = 12,
	PGBR_MSG_FILE_PUT = 13,
	PGBR_MSG_BACKUP_END = 14,
	PGBR_MSG_BACKUP_ABORT = 15,
	PGBR_MSG_INFO = 16,
	PGBR_MSG_MANIFEST_GET = 17,
	PGBR_MSG_FILE_GET = 18,
	PGBR_MSG_EXPIRE = 19,
	PGBR_MSG_VERIFY = 20,
	PGBR_MSG_BACKUP_JOIN = 21,
	PGBR_MSG_TYPE_MAX = 21
} PgbrMsgType;

extern const char *pgbr_msg_name(int type);

typedef struct PgbrFrameHeader
{
	uint8_t		type;
	uint8_t		flags;
	uint32_t	length;
} PgbrFrameHeader;

extern void pgbr_frame_header_encode(uint8_t out[PGBR_FRAME_HEADER_SIZE],
									 uint8_t type, uint32_t length);

/* validates type, reserved bits and length; error says what is wrong */
extern bool pgbr_frame_header_decode(const uint8_t in[PGBR_FRAME_HEADER_SIZE],
									 PgbrFrameHeader *hdr, PgbrError *err);

/* compression of a stored or streamed file */
typedef enum PgbrCompress
{
	PGBR_COMPRESS_NONE = 0,
	PGBR_COMPRESS_ZST = 1
} PgbrCompress;

/* HELLO: first frame of an authenticated session */
typedef struct PgbrHello
{
	uint32_t	magic;
	uint16_t	version;
	char		program[PGBR_NAME_MAX + 1]; /* e.g. "archive-push" */
	char		stanza[PGBR_NAME_MAX + 1];
} PgbrHello;

extern void pgbr_hello_encode(PgbrBuf *buf, const PgbrHello *m);
extern bool pgbr_hello_decode(const void *data, size_t len, PgbrHello *m, PgbrError *err);

/* ERROR: any refusal, with a code the client re-raises */
typedef struct PgbrErrorMsg
{
	uint32_t	code;
	char		message[1024];
	char		hint[512];
} PgbrErrorMsg;

extern void pgbr_errmsg_encode(PgbrBuf *buf, const PgbrError *e);
/* decodes into a PgbrError (error of its own if the body is malformed) */
extern bool pgbr_errmsg_decode(const void *data, size_t len, PgbrError *remote, PgbrError *err);

/* STANZA_CREATE request and STANZA_GET answer */
typedef struct PgbrStanzaMsg
{
	uint64_t	system_id;
	uint32_t	pg_version;		/* e.g. 150000 */
	uint32_t	seg_size;
} PgbrStanzaMsg;

extern void pgbr_stanza_encode(PgbrBuf *buf, const PgbrStanzaMsg *m);
extern bool pgbr_stanza_decode(const void *data, size_t len, PgbrStanzaMsg *m, PgbrError *err);

/* WAL_PUT request (then DATA..., END) and WAL_GET answer (then DATA..., END) */
typedef struct PgbrWalMsg
{
	char		name[PGBR_NAME_MAX + 1];
	uint64_t	size;			/* raw (uncompressed) size */
	uint8_t		sha256[32];		/* of the raw content */
	uint8_t		compress;		/* PgbrCompress of the DATA that follows */
} PgbrWalMsg;

extern void pgbr_wal_msg_encode(PgbrBuf *buf, const PgbrWalMsg *m);
extern bool pgbr_wal_msg_decode(const void *data, size_t len, PgbrWalMsg *m, PgbrError *err);

/* a request whose body is a single name (WAL_GET, WAL_FIND, labels) */
extern void pgbr_name_encode(PgbrBuf *buf, const char *name);
extern bool pgbr_name_decode(const void *data, size_t len, char *name, size_t maxlen,
							 PgbrError *err);

/*
 * Backup, restore and repository requests.  Their bodies are sequences of
 * strings (pgbr_strs_*); numbers travel as decimal text.
 *
 *	BACKUP_BEGIN  type, system-id, pg-version, backup-from ("primary" or
 *				  "standby")  ->  OK: label, prior ("" if none), type (a
 *				  diff/incr without a full becomes "full"), token
 *	BACKUP_JOIN   label, token  ->  OK.  An extra session of the same
 *				  backup (parallel streams); the token proves it belongs.
 *	MANIFEST_GET  label  ->  OK, then DATA... END: the manifest text
 *	FILE_PUT	  manifest line (pgbr_manifest.h).  For kind 'f' without a
 *				  reference, DATA... END follows: the content compressed as
 *				  the line says; END's payload is the SHA-256 of the raw
 *				  content (32 bytes) followed by the bad-pages string
 *				  (u32 length + bytes).  ->  OK: repo-size
 *	BACKUP_END	  key=value lines (timestamps, LSNs, WAL range, ...)  ->
 *				  OK: summary line.  The server commits: writes the manifest
 *				  last, durably, then applies retention.
 *	BACKUP_ABORT  (empty)  ->  OK; the incomplete backup is removed
 *	INFO		  (empty)  ->  OK: key=value text of the stanza and its
 *				  backups (see repo-server/backup.c)
 *	FILE_GET	  label, manifest line  ->  OK, then DATA... END: the
 *				  stored (compressed) content of that file
 *	EXPIRE		  (empty)  ->  OK: report text
 *	VERIFY		  (empty)  ->  OK, then DATA... END: report text; END's
 *				  payload is the number of problems found (decimal text)
 */
extern void pgbr_strs_encode(PgbrBuf *buf, int n, const char *const *strs);

/*
 * Decodes exactly n strings into out[i] (caller buffers of maxlens[i] + 1
 * bytes).  More or fewer strings, or a longer one, is an error.
 */
extern bool pgbr_strs_decode(const void *data, size_t len, int n, char *const *out,
							 const size_t *maxlens, PgbrError *err);

/* true for a name usable as a stanza: [A-Za-z0-9_.-], 1..64, no leading '.' */
extern bool pgbr_stanza_name_valid(const char *name);

#endif							/* PGBR_PROTO_H */
