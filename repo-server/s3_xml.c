/*
 * s3_xml.c
 *		Scanning S3's XML answers and dates (s3_xml.h).
 *
 * Only elements whose content is text are looked at, and S3 escapes '<'
 * and '&' in text, so finding "<Key>" and the next "</Key>" is exact.  A
 * key is decoded (entities) before anyone sees it: keys are what the
 * driver turns back into repository names.
 */
#include "s3_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

bool
s3_xml_element(const char *p, const char *end, const char *tag, const char **vs,
			   const char **ve, const char **after)
{
	size_t		tl = strlen(tag);

	while (p < end)
	{
		const char *lt = memchr(p, '<', (size_t) (end - p));
		const char *q;

		if (lt == NULL)
			return false;
		q = lt + 1;
		if ((size_t) (end - q) > tl && memcmp(q, tag, tl) == 0)
		{
			q += tl;
			if (*q == '>' || *q == ' ')
			{
				const char *gt = memchr(q, '>', (size_t) (end - q));
				const char *close;

				if (gt == NULL)
					return false;
				if (gt[-1] == '/')
				{
					*vs = *ve = gt;
					*after = gt + 1;
					return true;
				}
				/* the closing tag: "</tag>" */
				for (close = gt + 1; close < end; close++)
				{
					close = memchr(close, '<', (size_t) (end - close));
					if (close == NULL)
						return false;
					if ((size_t) (end - close) >= tl + 3 && close[1] == '/' &&
						memcmp(close + 2, tag, tl) == 0 && close[2 + tl] == '>')
					{
						*vs = gt + 1;
						*ve = close;
						*after = close + tl + 3;
						return true;
					}
				}
				return false;
			}
			if (q[0] == '/' && q[1] == '>')
			{
				*vs = *ve = q;
				*after = q + 2;
				return true;
			}
		}
		p = lt + 1;
	}
	return false;
}

static void
put_utf8(PgbrBuf *out, unsigned long cp)
{
	uint8_t		b[4];

	if (cp < 0x80)
		pgbr_buf_put_u8(out, (uint8_t) cp);
	else if (cp < 0x800)
	{
		b[0] = (uint8_t) (0xc0 | (cp >> 6));
		b[1] = (uint8_t) (0x80 | (cp & 0x3f));
		pgbr_buf_put(out, b, 2);
	}
	else if (cp < 0x10000)
	{
		b[0] = (uint8_t) (0xe0 | (cp >> 12));
		b[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
		b[2] = (uint8_t) (0x80 | (cp & 0x3f));
		pgbr_buf_put(out, b, 3);
	}
	else
	{
		b[0] = (uint8_t) (0xf0 | (cp >> 18));
		b[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
		b[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
		b[3] = (uint8_t) (0x80 | (cp & 0x3f));
		pgbr_buf_put(out, b, 4);
	}
}

bool
s3_xml_decode(const char *s, const char *e, PgbrBuf *out)
{
	static const struct
	{
		const char *name;
		char		c;
	}			named[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};

	pgbr_buf_reset(out);
	pgbr_buf_reserve(out, (size_t) (e - s));
	while (s < e)
	{
		const char *semi;
		size_t		n;
		bool		found = false;

		if (*s != '&')
		{
			if (*s == '\0')
				return false;
			pgbr_buf_put_u8(out, (uint8_t) *s++);
			continue;
		}
		semi = memchr(s, ';', (size_t) (e - s));
		if (semi == NULL || semi - s > 12)
			return false;
		n = (size_t) (semi - s - 1);
		if (n >= 2 && s[1] == '#')
		{
			char		num[12];
			char	   *endp;
			unsigned long cp;
			bool		hex = s[2] == 'x' || s[2] == 'X';

			memcpy(num, s + 2 + hex, n - 1 - hex);
			num[n - 1 - hex] = '\0';
			if (num[0] == '\0')
				return false;
			cp = strtoul(num, &endp, hex ? 16 : 10);
			if (*endp != '\0' || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
				return false;
			put_utf8(out, cp);
			found = true;
		}
		else
			for (size_t i = 0; i < PGBR_LENGTHOF(named); i++)
				if (strlen(named[i].name) == n && memcmp(s + 1, named[i].name, n) == 0)
				{
					pgbr_buf_put_u8(out, (uint8_t) named[i].c);
					found = true;
					break;
				}
		if (!found)
			return false;
		s = semi + 1;
	}
	pgbr_buf_reserve(out, 0);
	out->data[out->len] = '\0';
	return true;
}

void
s3_xml_text(const char *doc, size_t len, const char *tag, char *out, size_t outlen)
{
	const char *vs,
			   *ve,
			   *after;
	PgbrBuf		b;

	out[0] = '\0';
	if (doc == NULL || !s3_xml_element(doc, doc + len, tag, &vs, &ve, &after))
		return;
	pgbr_buf_init(&b);
	if (s3_xml_decode(vs, ve, &b))
		snprintf(out, outlen, "%s", (const char *) b.data);
	pgbr_buf_release(&b);
}

/* a decimal number filling [s, e) exactly */
static bool
parse_u64(const char *s, const char *e, uint64_t *v)
{
	*v = 0;
	if (s == e || e - s > 19)
		return false;
	for (; s < e; s++)
	{
		if (*s < '0' || *s > '9')
			return false;
		*v = *v * 10 + (uint64_t) (*s - '0');
	}
	return true;
}

static bool
malformed(PgbrError *err, const char *what)
{
	return pgbr_error_set(err, PGBR_ERR_FORMAT, "malformed S3 listing: %s", what);
}

bool
s3_xml_list_page(const char *doc, size_t len, S3ListItemFn fn, void *arg, bool *truncated,
				 PgbrBuf *next_token, bool *stopped, PgbrError *err)
{
	const char *end = doc + len;
	const char *p;
	const char *vs,
			   *ve,
			   *after;
	PgbrBuf		key;
	bool		ok = true;

	*truncated = false;
	*stopped = false;
	pgbr_buf_reset(next_token);
	if (!s3_xml_element(doc, end, "ListBucketResult", &vs, &ve, &after))
		return malformed(err, "no ListBucketResult element");
	/* stay inside the result from here on */
	doc = vs;
	end = ve;
	pgbr_buf_init(&key);

	for (p = doc; ok && !*stopped && s3_xml_element(p, end, "Contents", &vs, &ve, &after); p = after)
	{
		const char *ks,
				   *ke,
				   *a2;
		S3ListItem	item;
		char		lm[64];

		memset(&item, 0, sizeof(item));
		if (!s3_xml_element(vs, ve, "Key", &ks, &ke, &a2) || !s3_xml_decode(ks, ke, &key) ||
			key.len == 0)
		{
			ok = malformed(err, "a Contents element without a valid Key");
			break;
		}
		if (!s3_xml_element(vs, ve, "Size", &ks, &ke, &a2) || !parse_u64(ks, ke, &item.size))
		{
			ok = malformed(err, "a Contents element without a valid Size");
			break;
		}
		s3_xml_text(vs, (size_t) (ve - vs), "LastModified", lm, sizeof(lm));
		item.mtime = s3_parse_iso8601(lm);
		if (item.mtime < 0)
		{
			ok = malformed(err, "a Contents element without a valid LastModified");
			break;
		}
		item.key = (const char *) key.data;
		if (!fn(arg, &item, err))
		{
			*stopped = true;
			ok = !pgbr_error_is_set(err);
		}
	}
	for (p = doc; ok && !*stopped && s3_xml_element(p, end, "CommonPrefixes", &vs, &ve, &after); p = after)
	{
		const char *ks,
				   *ke,
				   *a2;
		S3ListItem	item;

		memset(&item, 0, sizeof(item));
		if (!s3_xml_element(vs, ve, "Prefix", &ks, &ke, &a2) || !s3_xml_decode(ks, ke, &key) ||
			key.len == 0)
		{
			ok = malformed(err, "a CommonPrefixes element without a valid Prefix");
			break;
		}
		item.key = (const char *) key.data;
		item.is_prefix = true;
		if (!fn(arg, &item, err))
		{
			*stopped = true;
			ok = !pgbr_error_is_set(err);
		}
	}
	if (ok && s3_xml_element(doc, end, "IsTruncated", &vs, &ve, &after))
		*truncated = ve - vs == 4 && memcmp(vs, "true", 4) == 0;
	if (ok && *truncated)
	{
		if (!s3_xml_element(doc, end, "NextContinuationToken", &vs, &ve, &after) ||
			!s3_xml_decode(vs, ve, next_token) || next_token->len == 0)
			ok = malformed(err, "IsTruncated without a NextContinuationToken");
	}
	pgbr_buf_release(&key);
	return ok;
}

/* n digits at s as a number, -1 if not digits */
static int
digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int64_t
to_epoch(int year, int mon, int mday, int hour, int min, int sec)
{
	struct tm	tm;

	if (year < 1970 || mon < 1 || mon > 12 || mday < 1 || mday > 31 || hour < 0 || hour > 23 ||
		min < 0 || min > 59 || sec < 0 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = mday;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	return (int64_t) timegm(&tm);
}

int64_t
s3_parse_iso8601(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS[.fff]Z */
	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':')
		return -1;
	return to_epoch(digits(s, 4), digits(s + 5, 2), digits(s + 8, 2), digits(s + 11, 2),
					digits(s + 14, 2), digits(s + 17, 2));
}

int64_t
s3_parse_http_date(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *m;
	int			mon;

	/* "Tue, 26 Nov 2026 10:00:00 GMT" */
	if (strlen(s) < 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
		s[16] != ' ' || s[19] != ':' || s[22] != ':' || strncmp(s + 25, " GMT", 4) != 0)
		return -1;
	m = strstr(months, (char[4]) {s[8], s[9], s[10], '\0'});
	if (m == NULL || (m - months) % 3 != 0)
		return -1;
	mon = (int) (m - months) / 3 + 1;
	return to_epoch(digits(s + 12, 4), mon, digits(s + 5, 2), digits(s + 17, 2),
					digits(s + 20, 2), digits(s + 23, 2));
}
