/*
 * s3.c
 *		The S3 client (s3.h): building, signing, sending and retrying
 *		requests on one libcurl easy handle, and turning S3's answers into
 *		PgbrErrors a user can act on.
 *
 * One easy handle per client: curl_easy_reset() between requests clears
 * the options but keeps the connection, so a stream of requests (WAL
 * pushes, range GETs, listing pages) does not pay a TCP and TLS handshake
 * each.  The Host header is set here, not by curl, so that the value that
 * is signed is the value that is sent.
 */
#include "s3.h"
#include "s3_sign.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define S3_TRIES		4
#define S3_FIRST_PAUSE_MS 100
#define S3_ERRBODY_MAX	(64 * 1024)
#define S3_LIST_MAX		(16 * 1024 * 1024)	/* one listing page */

struct S3Client
{
	CURL	   *curl;
	bool		https;
	char	   *host;			/* as in the URL: "h", "[::1]" */
	char	   *port;			/* "" if none given */
	char	   *bucket;
	char	   *region;
	char	   *access_key;
	char	   *secret_key;
	bool		path_style;
	bool		verify_tls;
	char	   *ca_file;
	int			io_timeout_s;
	char		curl_error[CURL_ERROR_SIZE];
	PgbrBuf		errbody;		/* body of a failed request */
};

/* one request, as the helpers below describe it to s3_request */
typedef struct S3Req
{
	const char *op;				/* for messages: "PUT", "LIST", ... */
	const char *method;
	const char *key;			/* object key; "" = the bucket */
	const char *name;			/* for messages if not key (a listing's prefix) */
	const S3Param *query;
	int			nquery;
	const char *range;			/* "bytes=a-b" or NULL */
	const char *copy_source;	/* x-amz-copy-source: "/bucket/key" encoded */
	const void *body;
	size_t		body_len;
	PgbrBuf    *out;			/* 2xx body, reset first; NULL = discard */
	size_t		out_max;
	bool		ok_404;
	bool		ok_416;
} S3Req;

/* state of one transfer, seen by the curl callbacks */
typedef struct Xfer
{
	S3Client   *c;
	const S3Req *req;
	S3Response *resp;
	size_t		sent;
	bool		overflow;
} Xfer;

static bool curl_ready;

S3Client *
s3_client_create(const S3Options *opt, PgbrError *err)
{
	S3Client   *c;
	const char *ep = opt->endpoint;
	const char *hostend;
	bool		https = true;

	if (strncmp(ep, "https://", 8) == 0)
		ep += 8;
	else if (strncmp(ep, "http://", 7) == 0)
	{
		ep += 7;
		https = false;
	}
	else if (strstr(ep, "://") != NULL)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "invalid value \"%s\" for option \"repo1-s3-endpoint\"",
					   opt->endpoint);
		pgbr_error_hint(err, "Use host, host:port, http://host:port or https://host:port.");
		return NULL;
	}
	if (ep[0] == '[')
		hostend = strchr(ep, ']') ? strchr(ep, ']') + 1 : NULL;
	else
		hostend = ep + strcspn(ep, ":/");
	if (hostend == NULL || hostend == ep ||
		!(*hostend == '\0' || (*hostend == ':' && hostend[1] != '\0' &&
							   strspn(hostend + 1, "0123456789") == strlen(hostend + 1))))
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "invalid value \"%s\" for option \"repo1-s3-endpoint\"",
					   opt->endpoint);
		pgbr_error_hint(err, "Use host, host:port, http://host:port or https://host:port, without a path.");
		return NULL;
	}
	if (!curl_ready)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		{
			pgbr_error_set(err, PGBR_ERR_RUNTIME, "could not initialize libcurl");
			return NULL;
		}
		curl_ready = true;
	}
	c = pgbr_malloc(sizeof(S3Client));
	memset(c, 0, sizeof(S3Client));
	c->curl = curl_easy_init();
	if (c->curl == NULL)
	{
		pgbr_free(c);
		pgbr_error_set(err, PGBR_ERR_RUNTIME, "could not create a libcurl handle");
		return NULL;
	}
	c->https = https;
	c->host = pgbr_malloc((size_t) (hostend - ep) + 1);
	memcpy(c->host, ep, (size_t) (hostend - ep));
	c->host[hostend - ep] = '\0';
	c->port = pgbr_strdup(*hostend == ':' ? hostend + 1 : "");
	c->bucket = pgbr_strdup(opt->bucket);
	c->region = pgbr_strdup(opt->region ? opt->region : "us-east-1");
	c->access_key = pgbr_strdup(opt->access_key);
	c->secret_key = pgbr_strdup(opt->secret_key);
	c->path_style = opt->path_style;
	c->verify_tls = opt->verify_tls;
	c->ca_file = opt->ca_file ? pgbr_strdup(opt->ca_file) : NULL;
	c->io_timeout_s = opt->io_timeout_s > 0 ? opt->io_timeout_s : 30;
	pgbr_buf_init(&c->errbody);
	return c;
}

void
s3_client_free(S3Client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	pgbr_free(c->host);
	pgbr_free(c->port);
	pgbr_free(c->bucket);
	pgbr_free(c->region);
	pgbr_free(c->access_key);
	if (c->secret_key)
		memset(c->secret_key, 0, strlen(c->secret_key));
	pgbr_free(c->secret_key);
	pgbr_free(c->ca_file);
	pgbr_buf_release(&c->errbody);
	pgbr_free(c);
}

bool
s3_client_plain_http(const S3Client *c)
{
	return !c->https;
}

/* ---- curl callbacks ---- */

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	Xfer	   *x = arg;
	size_t		n = size * nitems;
	size_t		left = x->req->body_len - x->sent;

	if (n > left)
		n = left;
	if (n > 0)
		memcpy(buf, (const char *) x->req->body + x->sent, n);
	x->sent += n;
	return n;
}

/* curl rewinds the body when it has to send it again on the same request */
static int
seek_cb(void *arg, curl_off_t offset, int origin)
{
	Xfer	   *x = arg;

	if (origin != SEEK_SET || offset < 0 || (size_t) offset > x->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->sent = (size_t) offset;
	return CURL_SEEKFUNC_OK;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	Xfer	   *x = arg;
	size_t		n = size * nmemb;
	long		status = 0;

	curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
	{
		if (x->req->out == NULL)
			return n;
		if (x->req->out->len + n > x->req->out_max)
		{
			x->overflow = true;
			return 0;			/* aborts the transfer */
		}
		pgbr_buf_put(x->req->out, data, n);
		return n;
	}
	/* an error document: keep its beginning for the message */
	if (x->c->errbody.len < S3_ERRBODY_MAX)
		pgbr_buf_put(&x->c->errbody, data,
					 n < S3_ERRBODY_MAX - x->c->errbody.len ? n : S3_ERRBODY_MAX - x->c->errbody.len);
	return n;
}

/* copies a header's value (trimmed) into out if line is "name: value" */
static bool
header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t		nl = strlen(name);
	size_t		vl;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return false;
	line += nl + 1;
	len -= nl + 1;
	while (len > 0 && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
		len--;
	vl = len < outlen - 1 ? len : outlen - 1;
	memcpy(out, line, vl);
	out[vl] = '\0';
	return true;
}

static size_t
header_cb(char *line, size_t size, size_t nitems, void *arg)
{
	Xfer	   *x = arg;
	size_t		n = size * nitems;
	char		v[128];

	/* a new status line (after "100 Continue"): forget what came before */
	if (n > 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		S3Response *r = x->resp;

		r->etag[0] = r->content_range[0] = '\0';
		r->date = 0;
		r->content_length = 0;
	}
	else if (header_value(line, n, "ETag", v, sizeof(v)))
		snprintf(x->resp->etag, sizeof(x->resp->etag), "%s", v);
	else if (header_value(line, n, "Content-Range", v, sizeof(v)))
		snprintf(x->resp->content_range, sizeof(x->resp->content_range), "%s", v);
	else if (header_value(line, n, "Date", v, sizeof(v)))
		x->resp->date = s3_parse_http_date(v) > 0 ? s3_parse_http_date(v) : 0;
	else if (header_value(line, n, "Content-Length", v, sizeof(v)))
		x->resp->content_length = strtoull(v, NULL, 10);
	return n;
}

/* ---- one request ---- */

static const char *
status_text(long status)
{
	switch (status)
	{
		case 400: return "Bad Request";
		case 401: return "Unauthorized";
		case 403: return "Forbidden";
		case 404: return "Not Found";
		case 405: return "Method Not Allowed";
		case 409: return "Conflict";
		case 411: return "Length Required";
		case 412: return "Precondition Failed";
		case 416: return "Range Not Satisfiable";
		case 429: return "Too Many Requests";
		case 500: return "Internal Server Error";
		case 502: return "Bad Gateway";
		case 503: return "Service Unavailable";
		case 504: return "Gateway Timeout";
		default: return "";
	}
}

static bool
transient_curl(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
			return true;
		default:
			return false;
	}
}

static bool
transient_http(long status, const char *code)
{
	return status >= 500 || status == 429 || strcmp(code, "SlowDown") == 0 ||
		strcmp(code, "RequestTimeout") == 0;
}

static void
pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* builds the request's URL, Host and canonical URI */
static void
build_target(S3Client *c, const S3Req *req, PgbrBuf *url, PgbrBuf *host, PgbrBuf *uri,
			 PgbrBuf *query)
{
	const char *colon = c->port[0] ? ":" : "";

	pgbr_buf_reset(url);
	pgbr_buf_reset(host);
	pgbr_buf_reset(uri);
	if (c->path_style)
	{
		pgbr_buf_printf(host, "%s%s%s", c->host, colon, c->port);
		pgbr_buf_put(uri, "/", 1);
		s3_uri_encode(uri, c->bucket, false);
		if (req->key[0])
			pgbr_buf_put(uri, "/", 1);
	}
	else
	{
		pgbr_buf_printf(host, "%s.%s%s%s", c->bucket, c->host, colon, c->port);
		pgbr_buf_put(uri, "/", 1);
	}
	s3_uri_encode(uri, req->key, true);
	s3_canonical_query(req->query, req->nquery, query);
	pgbr_buf_printf(url, "%s://%s%s%s%s", c->https ? "https" : "http", (const char *) host->data,
					(const char *) uri->data, query->len ? "?" : "", query->len ? (const char *) query->data : "");
}

static struct curl_slist *
add_header(struct curl_slist *list, const char *fmt, const char *value)
{
	char		line[1024];

	snprintf(line, sizeof(line), fmt, value);
	return curl_slist_append(list, line);
}

/*
 * Sends the request once.  Returns the curl result; resp->status holds
 * the HTTP status when the exchange completed.
 */
static CURLcode
send_once(S3Client *c, const S3Req *req, S3Response *resp, Xfer *x)
{
	PgbrBuf		url,
				host,
				uri,
				query,
				auth;
	char		payload_hash[S3_SHA256_HEX_LEN + 1];
	char		amz_date[32];
	time_t		now = time(NULL);
	struct tm	tm;
	S3Param		sh[5];
	int			nsh = 0;
	S3SignRequest sr;
	struct curl_slist *headers = NULL;
	CURL	   *h = c->curl;
	CURLcode	rc;

	pgbr_buf_init(&url);
	pgbr_buf_init(&host);
	pgbr_buf_init(&uri);
	pgbr_buf_init(&query);
	pgbr_buf_init(&auth);
	build_target(c, req, &url, &host, &uri, &query);

	gmtime_r(&now, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	s3_sha256_hex(req->body ? req->body : "", req->body_len, payload_hash);

	sh[nsh++] = (S3Param) {"host", (const char *) host.data};
	sh[nsh++] = (S3Param) {"x-amz-content-sha256", payload_hash};
	sh[nsh++] = (S3Param) {"x-amz-date", amz_date};
	if (req->range)
		sh[nsh++] = (S3Param) {"range", req->range};
	if (req->copy_source)
		sh[nsh++] = (S3Param) {"x-amz-copy-source", req->copy_source};
	memset(&sr, 0, sizeof(sr));
	sr.method = req->method;
	sr.uri = (const char *) uri.data;
	sr.query = req->query;
	sr.nquery = req->nquery;
	sr.headers = sh;
	sr.nheaders = nsh;
	sr.payload_hash = payload_hash;
	sr.amz_date = amz_date;
	sr.region = c->region;
	sr.service = "s3";
	s3_authorization(&sr, c->access_key, c->secret_key, &auth);

	headers = add_header(headers, "Host: %s", (const char *) host.data);
	headers = add_header(headers, "x-amz-content-sha256: %s", payload_hash);
	headers = add_header(headers, "x-amz-date: %s", amz_date);
	headers = add_header(headers, "Authorization: %s", (const char *) auth.data);
	if (req->range)
		headers = add_header(headers, "Range: %s", req->range);
	if (req->copy_source)
		headers = add_header(headers, "x-amz-copy-source: %s", req->copy_source);
	/* no "Expect: 100-continue" round trip before each part */
	headers = curl_slist_append(headers, "Expect:");
	if (strcmp(req->method, "POST") == 0)
		headers = curl_slist_append(headers, "Content-Type: application/xml");

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, (const char *) url.data);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long) c->io_timeout_s);
	/* below 1 byte/s for io-timeout seconds: the transfer is dead */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long) c->io_timeout_s);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "PUT") == 0)
	{
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) req->body_len);
	}
	else if (strcmp(req->method, "POST") == 0)
	{
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *) req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	}
	else if (strcmp(req->method, "DELETE") == 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");

	c->curl_error[0] = '\0';
	pgbr_buf_reset(&c->errbody);
	if (req->out)
		pgbr_buf_reset(req->out);
	memset(resp, 0, sizeof(S3Response));
	x->sent = 0;
	x->overflow = false;
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);

	curl_slist_free_all(headers);
	memset(auth.data, 0, auth.len);
	pgbr_buf_release(&url);
	pgbr_buf_release(&host);
	pgbr_buf_release(&uri);
	pgbr_buf_release(&query);
	pgbr_buf_release(&auth);
	return rc;
}

/* the error for a failed exchange (no HTTP answer) */
static bool
curl_failure(S3Client *c, const S3Req *req, CURLcode rc, int tries, PgbrError *err)
{
	const char *detail = c->curl_error[0] ? c->curl_error : curl_easy_strerror(rc);
	int			code;
	char		after[32] = "";

	if (tries > 1)
		snprintf(after, sizeof(after), " (after %d tries)", tries);
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
			code = PGBR_ERR_HOST_CONNECT;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			code = PGBR_ERR_TIMEOUT;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CACERT_BADFILE:
			code = PGBR_ERR_TLS;
			break;
		default:
			code = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 ?
				PGBR_ERR_FILE_READ : PGBR_ERR_FILE_WRITE;
	}
	pgbr_error_set(err, code, "S3 %s \"%s\" in bucket \"%s\": %s%s", req->op, req->name ? req->name : req->key,
				   c->bucket, detail, after);
	if (code == PGBR_ERR_HOST_CONNECT)
		pgbr_error_hint(err, "Check repo1-s3-endpoint and that the S3 service on \"%s%s%s\" is running.",
						c->host, c->port[0] ? ":" : "", c->port);
	else if (code == PGBR_ERR_TLS)
		pgbr_error_hint(err, "Set repo1-s3-ca-file to the CA that signed the endpoint's certificate%s.",
						c->https ? "" : " (or check the endpoint's scheme)");
	else if (code == PGBR_ERR_TIMEOUT)
		pgbr_error_hint(err, "The S3 service did not answer within io-timeout (%d s).",
						c->io_timeout_s);
	return false;
}

/* the error for an HTTP answer that is not accepted */
static bool
http_failure(S3Client *c, const S3Req *req, long status, int tries, PgbrError *err)
{
	char		code[128];
	char		message[512];
	char		detail[700];
	char		after[32] = "";
	int			ecode = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 ?
		PGBR_ERR_FILE_READ : PGBR_ERR_FILE_WRITE;

	s3_xml_text((const char *) c->errbody.data, c->errbody.len, "Code", code, sizeof(code));
	s3_xml_text((const char *) c->errbody.data, c->errbody.len, "Message", message, sizeof(message));
	if (code[0] == '\0')
		snprintf(code, sizeof(code), "%s", status_text(status));
	if (message[0])
		snprintf(detail, sizeof(detail), "%ld %s (%s)", status, code, message);
	else
		snprintf(detail, sizeof(detail), "%ld %s", status, code);
	if (tries > 1)
		snprintf(after, sizeof(after), " (after %d tries)", tries);
	if (status == 403 || status == 401)
		ecode = PGBR_ERR_ACCESS;
	pgbr_error_set(err, ecode, "S3 %s \"%s\": %s in bucket \"%s\"%s", req->op, req->name ? req->name : req->key, detail,
				   c->bucket, after);
	if (strcmp(code, "SignatureDoesNotMatch") == 0 || strcmp(code, "InvalidAccessKeyId") == 0 ||
		(status == 403 && strcmp(req->method, "HEAD") == 0))
		pgbr_error_hint(err, "Check repo1-s3-key and repo1-s3-key-secret (or PGBR_REPO1_S3_KEY and PGBR_REPO1_S3_KEY_SECRET), and repo1-s3-region.");
	else if (strcmp(code, "AccessDenied") == 0)
		pgbr_error_hint(err, "Check that the owner of repo1-s3-key may use bucket \"%s\".", c->bucket);
	else if (strcmp(code, "NoSuchBucket") == 0)
		pgbr_error_hint(err, "Create bucket \"%s\", or check repo1-s3-bucket and repo1-s3-uri-style.",
						c->bucket);
	else if (strcmp(code, "RequestTimeTooSkewed") == 0)
		pgbr_error_hint(err, "Check this host's clock: S3 refuses requests signed more than 15 minutes off.");
	return false;
}

/*
 * Sends the request, retrying transient failures.  True when the answer
 * is 2xx or an accepted 404/416 (see resp->status).
 */
static bool
s3_request(S3Client *c, const S3Req *req, S3Response *resp, PgbrError *err)
{
	Xfer		x;
	long		pause = S3_FIRST_PAUSE_MS;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.req = req;
	x.resp = resp;
	for (int try = 1;; try++)
	{
		CURLcode	rc = send_once(c, req, resp, &x);
		char		code[128] = "";

		if (rc == CURLE_OK)
		{
			long		st = resp->status;

			s3_xml_text((const char *) c->errbody.data, c->errbody.len, "Code", code, sizeof(code));
			/* a missing bucket is not a missing key */
			if ((st >= 200 && st < 300) ||
				(st == 404 && req->ok_404 && strcmp(code, "NoSuchBucket") != 0) ||
				(st == 416 && req->ok_416))
				return true;
			if (try >= S3_TRIES || !transient_http(st, code))
				return http_failure(c, req, st, try, err);
		}
		else if (x.overflow)
			return pgbr_error_set(err, PGBR_ERR_FORMAT,
								  "S3 %s \"%s\" in bucket \"%s\": the answer is larger than %zu bytes",
								  req->op, req->name ? req->name : req->key, c->bucket, req->out_max);
		else if (try >= S3_TRIES || !transient_curl(rc))
			return curl_failure(c, req, rc, try, err);
		pause_ms(pause);
		pause *= 2;
	}
}

/* ---- the requests ---- */

bool
s3_put(S3Client *c, const char *key, const void *data, size_t len, PgbrError *err)
{
	S3Req		req = {.op = "PUT", .method = "PUT", .key = key, .body = data, .body_len = len};
	S3Response	resp;

	return s3_request(c, &req, &resp, err);
}

bool
s3_get(S3Client *c, const char *key, uint64_t offset, uint64_t len, PgbrBuf *out,
	   S3Response *resp, PgbrError *err)
{
	char		range[80];
	S3Req		req = {.op = "GET", .method = "GET", .key = key, .range = range, .out = out,
	.out_max = len ? (size_t) len : SIZE_MAX, .ok_404 = true, .ok_416 = true};

	if (len)
		snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long) offset,
				 (unsigned long long) (offset + len - 1));
	else
		snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long) offset);
	return s3_request(c, &req, resp, err);
}

bool
s3_head(S3Client *c, const char *key, bool *exists, uint64_t *size, PgbrError *err)
{
	S3Req		req = {.op = "HEAD", .method = "HEAD", .key = key, .ok_404 = true};
	S3Response	resp;

	*exists = false;
	if (!s3_request(c, &req, &resp, err))
		return false;
	*exists = resp.status != 404;
	if (size)
		*size = *exists ? resp.content_length : 0;
	return true;
}

bool
s3_delete(S3Client *c, const char *key, PgbrError *err)
{
	S3Req		req = {.op = "DELETE", .method = "DELETE", .key = key, .ok_404 = true};
	S3Response	resp;

	return s3_request(c, &req, &resp, err);
}

bool
s3_list(S3Client *c, const char *prefix, const char *delimiter, S3ListItemFn fn, void *arg,
		int64_t *server_date, PgbrError *err)
{
	PgbrBuf		page;
	PgbrBuf		token;
	bool		ok = true;
	bool		first = true;

	/* our own buffers: fn may send requests on c while we hold a page */
	pgbr_buf_init(&page);
	pgbr_buf_init(&token);
	if (server_date)
		*server_date = 0;
	for (;;)
	{
		S3Param		q[4];
		int			nq = 0;
		S3Req		req = {.op = "LIST", .method = "GET", .key = "", .out = &page,
		.out_max = S3_LIST_MAX};
		S3Response	resp;
		bool		truncated,
					stopped;

		q[nq++] = (S3Param) {"list-type", "2"};
		q[nq++] = (S3Param) {"prefix", prefix};
		if (delimiter)
			q[nq++] = (S3Param) {"delimiter", delimiter};
		if (token.len)
			q[nq++] = (S3Param) {"continuation-token", (const char *) token.data};
		req.query = q;
		req.nquery = nq;
		req.name = prefix;
		if (!s3_request(c, &req, &resp, err))
		{
			ok = false;
			break;
		}
		if (first && server_date)
			*server_date = resp.date;
		first = false;
		if (!s3_xml_list_page((const char *) page.data, page.len, fn, arg, &truncated, &token,
							  &stopped, err))
		{
			ok = false;
			break;
		}
		if (stopped || !truncated)
			break;
	}
	pgbr_buf_release(&page);
	pgbr_buf_release(&token);
	return ok;
}

bool
s3_multipart_create(S3Client *c, const char *key, PgbrBuf *upload_id, PgbrError *err)
{
	S3Param		q[] = {{"uploads", ""}};
	PgbrBuf		body;
	S3Req		req = {.op = "POST (start multipart upload)", .method = "POST", .key = key,
	.query = q, .nquery = 1, .out = &body, .out_max = S3_ERRBODY_MAX};
	S3Response	resp;
	char		id[1024];
	bool		ok;

	pgbr_buf_init(&body);
	ok = s3_request(c, &req, &resp, err);
	if (ok)
	{
		s3_xml_text((const char *) body.data, body.len, "UploadId", id, sizeof(id));
		if (id[0] == '\0')
			ok = pgbr_error_set(err, PGBR_ERR_FORMAT,
								"S3 POST \"%s\" in bucket \"%s\": no UploadId in the answer", key,
								c->bucket);
		pgbr_buf_reset(upload_id);
		pgbr_buf_printf(upload_id, "%s", id);
	}
	pgbr_buf_release(&body);
	return ok;
}

bool
s3_multipart_part(S3Client *c, const char *key, const char *upload_id, int part,
				  const void *data, size_t len, char *etag, size_t etaglen, PgbrError *err)
{
	char		num[16];
	S3Param		q[] = {{"partNumber", num}, {"uploadId", upload_id}};
	S3Req		req = {.op = "PUT (multipart part)", .method = "PUT", .key = key, .query = q,
	.nquery = 2, .body = data, .body_len = len};
	S3Response	resp;

	snprintf(num, sizeof(num), "%d", part);
	if (!s3_request(c, &req, &resp, err))
		return false;
	if (resp.etag[0] == '\0')
		return pgbr_error_set(err, PGBR_ERR_FORMAT,
							  "S3 PUT \"%s\" part %d in bucket \"%s\": no ETag in the answer", key,
							  part, c->bucket);
	snprintf(etag, etaglen, "%s", resp.etag);
	return true;
}

/*
 * Completing an upload and copying an object may answer 200 and report
 * the failure in the body.
 */
static bool
no_error_in(S3Client *c, const S3Req *req, const PgbrBuf *answer, PgbrError *err)
{
	const char *vs,
			   *ve,
			   *after;
	const char *doc = (const char *) answer->data;
	char		code[128],
				message[512];

	if (answer->len == 0 || !s3_xml_element(doc, doc + answer->len, "Error", &vs, &ve, &after))
		return true;
	s3_xml_text(doc, answer->len, "Code", code, sizeof(code));
	s3_xml_text(doc, answer->len, "Message", message, sizeof(message));
	return pgbr_error_set(err, PGBR_ERR_FILE_WRITE, "S3 %s \"%s\": %s (%s) in bucket \"%s\"",
						  req->op, req->key, code, message, c->bucket);
}

bool
s3_multipart_complete(S3Client *c, const char *key, const char *upload_id, char *const *etags,
					  int nparts, PgbrError *err)
{
	S3Param		q[] = {{"uploadId", upload_id}};
	PgbrBuf		xml;
	PgbrBuf		answer;
	S3Req		req = {.op = "POST (complete multipart upload)", .method = "POST", .key = key,
	.query = q, .nquery = 1, .out = &answer, .out_max = S3_ERRBODY_MAX};
	S3Response	resp;
	bool		ok;

	pgbr_buf_init(&xml);
	pgbr_buf_init(&answer);
	pgbr_buf_printf(&xml, "<CompleteMultipartUpload>");
	for (int i = 0; i < nparts; i++)
		pgbr_buf_printf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
						etags[i]);
	pgbr_buf_printf(&xml, "</CompleteMultipartUpload>");
	req.body = xml.data;
	req.body_len = xml.len;
	ok = s3_request(c, &req, &resp, err) && no_error_in(c, &req, &answer, err);
	pgbr_buf_release(&xml);
	pgbr_buf_release(&answer);
	return ok;
}

bool
s3_multipart_abort(S3Client *c, const char *key, const char *upload_id, PgbrError *err)
{
	S3Param		q[] = {{"uploadId", upload_id}};
	S3Req		req = {.op = "DELETE (abort multipart upload)", .method = "DELETE", .key = key,
	.query = q, .nquery = 1, .ok_404 = true};
	S3Response	resp;

	return s3_request(c, &req, &resp, err);
}

bool
s3_copy(S3Client *c, const char *from, const char *to, PgbrError *err)
{
	PgbrBuf		src;
	PgbrBuf		answer;
	S3Req		req = {.op = "PUT (copy)", .method = "PUT", .key = to, .out = &answer,
	.out_max = S3_ERRBODY_MAX};
	S3Response	resp;
	bool		ok;

	pgbr_buf_init(&src);
	pgbr_buf_init(&answer);
	pgbr_buf_put(&src, "/", 1);
	s3_uri_encode(&src, c->bucket, false);
	pgbr_buf_put(&src, "/", 1);
	s3_uri_encode(&src, from, true);
	req.copy_source = (const char *) src.data;
	ok = s3_request(c, &req, &resp, err) && no_error_in(c, &req, &answer, err);
	pgbr_buf_release(&src);
	pgbr_buf_release(&answer);
	return ok;
}
