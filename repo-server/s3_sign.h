/*
 * s3_sign.h
 *		AWS Signature Version 4 for S3 requests: URI encoding, the canonical
 *		query string, the canonical request, the string to sign and the
 *		Authorization header.  Pure functions (OpenSSL for SHA-256 and HMAC),
 *		no IO, so they are checked against AWS's published examples
 *		(regress/unit/test_s3_sign.c).
 */
#ifndef PGBR_SERVER_S3_SIGN_H
#define PGBR_SERVER_S3_SIGN_H

#include "pgbr_buf.h"

#define S3_SHA256_HEX_LEN	64
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* a query parameter or a header: raw (not encoded) name and value */
typedef struct S3Param
{
	const char *name;
	const char *value;			/* NULL is the same as "" */
} S3Param;

typedef struct S3SignRequest
{
	const char *method;			/* "GET", "PUT", ... */
	const char *uri;			/* path as sent, already encoded: "/bucket/a%24b" */
	const S3Param *query;		/* in any order; encoded and sorted here */
	int			nquery;
	const S3Param *headers;		/* every signed header, host included; any order
								 * and case, values trimmed here */
	int			nheaders;
	const char *payload_hash;	/* hex sha256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;		/* "20130524T000000Z", as in x-amz-date */
	const char *region;			/* "us-east-1" */
	const char *service;		/* "s3" */
} S3SignRequest;

/*
 * Appends s to out, percent-encoding every byte but A-Z a-z 0-9 - _ . ~
 * (and '/' when keep_slash: object keys are encoded per segment).
 */
extern void s3_uri_encode(PgbrBuf *out, const char *s, bool keep_slash);

/* lower-case hex SHA-256 of data into out[S3_SHA256_HEX_LEN + 1] */
extern void s3_sha256_hex(const void *data, size_t len, char *out);

/*
 * The canonical query string "a=1&b=%2F" (sorted by encoded name, then
 * value): what is signed and also what is sent.  out is reset first.
 */
extern void s3_canonical_query(const S3Param *query, int nquery, PgbrBuf *out);

/* the canonical request and the signed header list ("host;x-amz-date") */
extern void s3_canonical_request(const S3SignRequest *req, PgbrBuf *out,
								 PgbrBuf *signed_headers);

/* the string to sign for the request (out is reset first) */
extern void s3_string_to_sign(const S3SignRequest *req, PgbrBuf *out);

/* the hex signature into out[S3_SHA256_HEX_LEN + 1] */
extern void s3_signature(const S3SignRequest *req, const char *secret, char *out);

/*
 * The value of the Authorization header:
 * "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=...,Signature=..." (no spaces after the commas, as in
 * AWS's S3 examples).  out is reset first.
 */
extern void s3_authorization(const S3SignRequest *req, const char *access_key,
							 const char *secret, PgbrBuf *out);

#endif							/* PGBR_SERVER_S3_SIGN_H */
