/*
 * s3_sign.c
 *		AWS Signature Version 4 (s3_sign.h).
 *
 * Written from AWS's description of SigV4 for S3 ("Authenticating
 * Requests: Using the Authorization Header"), not with libcurl's
 * CURLOPT_AWS_SIGV4: Debian 12's curl 7.88 signs the query string as
 * written and leaves out x-amz-content-sha256, both of which RGW refuses.
 */
#include "s3_sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>

static const char hexdigits[] = "0123456789abcdef";

static void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* the buffer's bytes as a C string (PgbrBuf keeps room for a terminator) */
static const char *
cstr(PgbrBuf *b)
{
	pgbr_buf_reserve(b, 0);
	b->data[b->len] = '\0';
	return (const char *) b->data;
}

void
s3_uri_encode(PgbrBuf *out, const char *s, bool keep_slash)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		unsigned char c = *p;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && keep_slash))
			pgbr_buf_put_u8(out, c);
		else
		{
			char		enc[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 0xf]};

			pgbr_buf_put(out, enc, 3);
		}
	}
	cstr(out);
}

void
s3_sha256_hex(const void *data, size_t len, char *out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	hex_encode(md, sizeof(md), out);
}

static void
hmac_sha256(const void *key, size_t keylen, const char *msg, unsigned char *out)
{
	unsigned int outlen = SHA256_DIGEST_LENGTH;

	HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) msg, strlen(msg), out, &outlen);
}

/* one query parameter with its name and value already encoded */
typedef struct EncodedParam
{
	char	   *name;
	char	   *value;
} EncodedParam;

static char *
encode_dup(const char *s)
{
	PgbrBuf		b;

	pgbr_buf_init(&b);
	s3_uri_encode(&b, s ? s : "", false);
	return (char *) b.data;
}

static int
cmp_param(const void *a, const void *b)
{
	const EncodedParam *pa = a;
	const EncodedParam *pb = b;
	int			c = strcmp(pa->name, pb->name);

	return c != 0 ? c : strcmp(pa->value, pb->value);
}

void
s3_canonical_query(const S3Param *query, int nquery, PgbrBuf *out)
{
	EncodedParam *ep;

	pgbr_buf_reset(out);
	cstr(out);
	if (nquery <= 0)
		return;
	ep = pgbr_malloc(sizeof(EncodedParam) * (size_t) nquery);
	for (int i = 0; i < nquery; i++)
	{
		ep[i].name = encode_dup(query[i].name);
		ep[i].value = encode_dup(query[i].value);
	}
	/* byte order of the encoded names, as SigV4 asks */
	qsort(ep, (size_t) nquery, sizeof(EncodedParam), cmp_param);
	for (int i = 0; i < nquery; i++)
	{
		pgbr_buf_printf(out, "%s%s=%s", i ? "&" : "", ep[i].name, ep[i].value);
		pgbr_free(ep[i].name);
		pgbr_free(ep[i].value);
	}
	pgbr_free(ep);
	cstr(out);
}

/* a header with its name lower-cased and its value trimmed */
typedef struct CanonHeader
{
	char	   *name;
	char	   *value;
} CanonHeader;

static int
cmp_header(const void *a, const void *b)
{
	return strcmp(((const CanonHeader *) a)->name, ((const CanonHeader *) b)->name);
}

/* trims, and folds runs of spaces into one, as SigV4's Trimall does */
static char *
trimall(const char *v)
{
	char	   *out = pgbr_malloc(strlen(v ? v : "") + 1);
	char	   *o = out;
	bool		space = false;

	for (const char *p = v ? v : ""; *p; p++)
	{
		if (*p == ' ' || *p == '\t')
		{
			space = o != out;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = false;
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

void
s3_canonical_request(const S3SignRequest *req, PgbrBuf *out, PgbrBuf *signed_headers)
{
	CanonHeader *h = pgbr_malloc(sizeof(CanonHeader) * (size_t) (req->nheaders > 0 ? req->nheaders : 1));
	PgbrBuf		q;

	pgbr_buf_init(&q);
	s3_canonical_query(req->query, req->nquery, &q);
	pgbr_buf_reset(out);
	pgbr_buf_reset(signed_headers);
	pgbr_buf_printf(out, "%s\n%s\n%s\n", req->method, req->uri, cstr(&q));
	for (int i = 0; i < req->nheaders; i++)
	{
		h[i].name = pgbr_strdup(req->headers[i].name);
		for (char *p = h[i].name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char) (*p - 'A' + 'a');
		h[i].value = trimall(req->headers[i].value);
	}
	qsort(h, (size_t) req->nheaders, sizeof(CanonHeader), cmp_header);
	for (int i = 0; i < req->nheaders; i++)
	{
		pgbr_buf_printf(out, "%s:%s\n", h[i].name, h[i].value);
		pgbr_buf_printf(signed_headers, "%s%s", i ? ";" : "", h[i].name);
		pgbr_free(h[i].name);
		pgbr_free(h[i].value);
	}
	pgbr_free(h);
	pgbr_buf_printf(out, "\n%s\n%s", cstr(signed_headers), req->payload_hash);
	cstr(out);
	pgbr_buf_release(&q);
}

/* "20130524/us-east-1/s3/aws4_request" */
static void
scope(const S3SignRequest *req, char *out, size_t outlen)
{
	snprintf(out, outlen, "%.8s/%s/%s/aws4_request", req->amz_date, req->region, req->service);
}

void
s3_string_to_sign(const S3SignRequest *req, PgbrBuf *out)
{
	PgbrBuf		canon;
	PgbrBuf		sh;
	char		hash[S3_SHA256_HEX_LEN + 1];
	char		sc[256];

	pgbr_buf_init(&canon);
	pgbr_buf_init(&sh);
	s3_canonical_request(req, &canon, &sh);
	s3_sha256_hex(canon.data, canon.len, hash);
	scope(req, sc, sizeof(sc));
	pgbr_buf_reset(out);
	pgbr_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n%s\n%s", req->amz_date, sc, hash);
	cstr(out);
	pgbr_buf_release(&canon);
	pgbr_buf_release(&sh);
}

void
s3_signature(const S3SignRequest *req, const char *secret, char *out)
{
	PgbrBuf		sts;
	PgbrBuf		k;
	char		date[9];
	unsigned char key[SHA256_DIGEST_LENGTH];
	unsigned char sig[SHA256_DIGEST_LENGTH];

	pgbr_buf_init(&sts);
	pgbr_buf_init(&k);
	s3_string_to_sign(req, &sts);
	snprintf(date, sizeof(date), "%.8s", req->amz_date);
	pgbr_buf_printf(&k, "AWS4%s", secret);
	hmac_sha256(k.data, k.len, date, key);
	hmac_sha256(key, sizeof(key), req->region, key);
	hmac_sha256(key, sizeof(key), req->service, key);
	hmac_sha256(key, sizeof(key), "aws4_request", key);
	hmac_sha256(key, sizeof(key), cstr(&sts), sig);
	hex_encode(sig, sizeof(sig), out);
	/* the secret-derived bytes do not outlive the call */
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(k.data, k.len);
	pgbr_buf_release(&k);
	pgbr_buf_release(&sts);
}

void
s3_authorization(const S3SignRequest *req, const char *access_key, const char *secret,
				 PgbrBuf *out)
{
	PgbrBuf		canon;
	PgbrBuf		sh;
	char		sig[S3_SHA256_HEX_LEN + 1];
	char		sc[256];

	pgbr_buf_init(&canon);
	pgbr_buf_init(&sh);
	s3_canonical_request(req, &canon, &sh);
	s3_signature(req, secret, sig);
	scope(req, sc, sizeof(sc));
	pgbr_buf_reset(out);
	pgbr_buf_printf(out, "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
					access_key, sc, cstr(&sh), sig);
	cstr(out);
	pgbr_buf_release(&canon);
	pgbr_buf_release(&sh);
}
