/*
 * s3_xml.h
 *		Reading S3's answers: the few XML documents pgbr needs (error,
 *		ListObjectsV2 page, InitiateMultipartUploadResult) and the two date
 *		formats.  A careful scan, not a general XML parser: S3 escapes '<'
 *		and '&' in text, so an element's content never contains markup.
 *		Pure functions, unit-tested in regress/unit/test_s3_sign.c.
 */
#ifndef PGBR_SERVER_S3_XML_H
#define PGBR_SERVER_S3_XML_H

#include "pgbr_buf.h"

/*
 * Finds the first <tag>...</tag> (or <tag/>) in [p, end).  On success
 * *vs and *ve delimit the raw content and *after points past the closing
 * tag.  False if there is none.
 */
extern bool s3_xml_element(const char *p, const char *end, const char *tag,
						   const char **vs, const char **ve, const char **after);

/*
 * Decodes the entities (&lt; &gt; &amp; &quot; &apos; &#N; &#xH;) of
 * [s, e) into out (reset first, NUL-terminated).  False on a malformed
 * entity or one that decodes to NUL.
 */
extern bool s3_xml_decode(const char *s, const char *e, PgbrBuf *out);

/* decoded text of the first <tag> of doc into out[outlen] ("" if absent) */
extern void s3_xml_text(const char *doc, size_t len, const char *tag, char *out, size_t outlen);

/* one entry of a listing page: an object or a common prefix */
typedef struct S3ListItem
{
	const char *key;			/* decoded, full key or prefix */
	bool		is_prefix;
	uint64_t	size;
	int64_t		mtime;			/* LastModified, seconds since the epoch */
} S3ListItem;

/* return false to stop (setting err to fail) */
typedef bool (*S3ListItemFn) (void *arg, const S3ListItem *item, PgbrError *err);

/*
 * Parses one ListObjectsV2 page, calling fn for each <Contents> and each
 * <CommonPrefixes>.  *truncated and next_token (NextContinuationToken,
 * decoded) tell whether another page follows; *stopped is set when fn
 * returned false.  False with err set on a malformed page or fn's error.
 */
extern bool s3_xml_list_page(const char *doc, size_t len, S3ListItemFn fn, void *arg,
							 bool *truncated, PgbrBuf *next_token, bool *stopped,
							 PgbrError *err);

/* "2019-10-12T17:50:30.000Z" -> epoch seconds; -1 if malformed */
extern int64_t s3_parse_iso8601(const char *s);

/* "Tue, 26 Nov 2026 10:00:00 GMT" (RFC 7231 IMF-fixdate) -> epoch; -1 if malformed */
extern int64_t s3_parse_http_date(const char *s);

#endif							/* PGBR_SERVER_S3_XML_H */
