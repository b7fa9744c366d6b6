/*
 * s3.h
 *		A small S3 client on libcurl: the requests the S3 storage driver
 *		needs, signed with SigV4 (s3_sign.h), on one reused connection.
 *
 * Every request has a connect timeout and a low-speed limit of io-timeout
 * seconds, so none can hang.  Transient failures (connection refused or
 * reset, timeouts, 5xx, 429, SlowDown, RequestTimeout) are retried up to
 * 4 times with 100 ms doubling pauses; every body is in memory and can be
 * sent again.  Other failures fill err with the HTTP status, S3's error
 * Code and Message, the key and the bucket:
 *
 *	 S3 PUT "demo/archive/x": 403 SignatureDoesNotMatch (...) in bucket "pgbr"
 *
 * A client belongs to one process and is not thread-safe.
 */
#ifndef PGBR_SERVER_S3_H
#define PGBR_SERVER_S3_H

#include "pgbr_buf.h"
#include "s3_xml.h"

typedef struct S3Client S3Client;

typedef struct S3Options
{
	const char *endpoint;		/* "host", "host:port", "http://host:port", "https://..." */
	const char *bucket;
	const char *region;
	const char *access_key;
	const char *secret_key;
	bool		path_style;		/* host/bucket/key instead of bucket.host/key */
	bool		verify_tls;
	const char *ca_file;		/* NULL: the system's CAs */
	int			io_timeout_s;
} S3Options;

/* what a request learnt besides its body */
typedef struct S3Response
{
	long		status;			/* HTTP status */
	char		etag[128];		/* ETag header, quotes kept */
	char		content_range[128];
	int64_t		date;			/* Date header, epoch seconds; 0 if none */
	uint64_t	content_length;
} S3Response;

/* checks the options (endpoint syntax); does not connect */
extern S3Client *s3_client_create(const S3Options *opt, PgbrError *err);
extern void s3_client_free(S3Client *c);

/* true when requests go over plain http */
extern bool s3_client_plain_http(const S3Client *c);

/* PUT of a whole object (signed payload) */
extern bool s3_put(S3Client *c, const char *key, const void *data, size_t len, PgbrError *err);

/*
 * GET of bytes [offset, offset + len) into out (reset first); len 0 =
 * to the end.  404 and 416 are not errors: see resp->status.  A body
 * larger than len (a server ignoring Range) fails.
 */
extern bool s3_get(S3Client *c, const char *key, uint64_t offset, uint64_t len, PgbrBuf *out,
				   S3Response *resp, PgbrError *err);

/* HEAD: *exists and (if it exists) *size */
extern bool s3_head(S3Client *c, const char *key, bool *exists, uint64_t *size,
					PgbrError *err);

/* DELETE; a missing key is not an error */
extern bool s3_delete(S3Client *c, const char *key, PgbrError *err);

/*
 * ListObjectsV2 of prefix (delimiter NULL = everything below), following
 * continuation tokens; fn sees every object and common prefix, and may
 * issue requests on c itself.  *server_date (may be NULL) is the Date
 * header of the first page: S3's clock.
 */
extern bool s3_list(S3Client *c, const char *prefix, const char *delimiter, S3ListItemFn fn,
					void *arg, int64_t *server_date, PgbrError *err);

/* multipart upload; upload_id is reset and filled by create */
extern bool s3_multipart_create(S3Client *c, const char *key, PgbrBuf *upload_id,
								PgbrError *err);
/* part numbers from 1; etag receives the part's ETag */
extern bool s3_multipart_part(S3Client *c, const char *key, const char *upload_id, int part,
							  const void *data, size_t len, char *etag, size_t etaglen,
							  PgbrError *err);
extern bool s3_multipart_complete(S3Client *c, const char *key, const char *upload_id,
								  char *const *etags, int nparts, PgbrError *err);
extern bool s3_multipart_abort(S3Client *c, const char *key, const char *upload_id,
							   PgbrError *err);

/* server-side copy of object from to object to (same bucket) */
extern bool s3_copy(S3Client *c, const char *from, const char *to, PgbrError *err);

#endif							/* PGBR_SERVER_S3_H */
