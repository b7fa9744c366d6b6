/*
 * pgbr_manifest.c
 *		Manifest lines, walk order, path and label checks, line reader.
 */
#include "pgbr_manifest.h"
#include "pgbr_checksum.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NFIELDS 13

void
pgbr_manifest_entry_init(PgbrManifestEntry *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = 'f';
}

static void
put_field(PgbrBuf *out, const char *s)
{
	pgbr_buf_put_u8(out, '\t');
	if (s == NULL || s[0] == '\0')
		pgbr_buf_put_u8(out, '-');
	else
		pgbr_buf_put(out, s, strlen(s));
}

void
pgbr_manifest_entry_format(const PgbrManifestEntry *e, PgbrBuf *out)
{
	char		hex[PGBR_SHA256_HEXLEN + 1] = "";

	if (e->has_sha)
		pgbr_hex_encode(e->sha256, 32, hex);
	pgbr_buf_printf(out, "%c\t%s\t%" PRIu64 "\t%" PRId64 "\t%o", e->kind, e->path, e->size,
					e->mtime, e->mode);
	put_field(out, hex);
	pgbr_buf_printf(out, "\t%" PRIu64, e->repo_size);
	put_field(out, e->reference);
	put_field(out, e->bundle);
	pgbr_buf_printf(out, "\t%" PRIu64 "\t%u", e->offset, (unsigned) e->compress);
	put_field(out, e->bad_pages);
	put_field(out, e->target);
	pgbr_buf_put_u8(out, '\n');
}

static bool
parse_u64(const char *s, uint64_t *v)
{
	char	   *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

static bool
copy_field(char *dst, size_t dstlen, const char *src)
{
	if (strcmp(src, "-") == 0)
		src = "";
	if (strlen(src) >= dstlen)
		return false;
	strcpy(dst, src);
	return true;
}

bool
pgbr_manifest_entry_parse(const char *line, size_t len, PgbrManifestEntry *e, PgbrError *err)
{
	char		copy[4096];
	char	   *fields[NFIELDS];
	int			n = 0;
	char	   *p;
	uint64_t	v;

	pgbr_manifest_entry_init(e);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len >= sizeof(copy) || memchr(line, '\0', len) != NULL)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "manifest line is too long or contains NUL");
	memcpy(copy, line, len);
	copy[len] = '\0';
	/* exactly NFIELDS fields: count the separators before splitting */
	for (const char *c = copy; *c; c++)
		if (*c == '\t')
			n++;
	if (n != NFIELDS - 1)
		return pgbr_error_set(err, PGBR_ERR_FORMAT,
							  "manifest line has %d fields, %d expected", n + 1, NFIELDS);
	p = copy;
	for (n = 0; n < NFIELDS; n++)
	{
		char	   *tab = strchr(p, '\t');

		fields[n] = p;
		if (tab)
		{
			*tab = '\0';
			p = tab + 1;
		}
	}
	if (strlen(fields[0]) != 1 || strchr("fdl", fields[0][0]) == NULL)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid manifest entry kind \"%s\"", fields[0]);
	e->kind = fields[0][0];
	if (!copy_field(e->path, sizeof(e->path), fields[1]) || !pgbr_path_safe(e->path))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid path \"%s\" in manifest line", fields[1]);
	if (!parse_u64(fields[2], &e->size))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid size in manifest line for \"%s\"", e->path);
	{
		char	   *end;
		long long	mt;

		errno = 0;
		mt = strtoll(fields[3], &end, 10);
		if (errno != 0 || *end != '\0' || end == fields[3])
			return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid mtime in manifest line for \"%s\"", e->path);
		e->mtime = mt;
	}
	{
		char	   *end;
		unsigned long m;

		errno = 0;
		m = strtoul(fields[4], &end, 8);
		if (errno != 0 || *end != '\0' || end == fields[4] || m > 07777)
			return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid mode in manifest line for \"%s\"", e->path);
		e->mode = (uint32_t) m;
	}
	if (strcmp(fields[5], "-") != 0)
	{
		if (!pgbr_hex_decode(fields[5], e->sha256, 32))
			return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid checksum in manifest line for \"%s\"", e->path);
		e->has_sha = true;
	}
	if (!parse_u64(fields[6], &e->repo_size))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid repository size for \"%s\"", e->path);
	if (!copy_field(e->reference, sizeof(e->reference), fields[7]) ||
		(e->reference[0] && !pgbr_label_valid(e->reference)))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid reference for \"%s\"", e->path);
	if (!copy_field(e->bundle, sizeof(e->bundle), fields[8]) ||
		(e->bundle[0] && !pgbr_path_safe(e->bundle)) || strchr(e->bundle, '/'))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid bundle for \"%s\"", e->path);
	if (!parse_u64(fields[9], &e->offset) || !parse_u64(fields[10], &v) || v > PGBR_COMPRESS_ZST)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid offset or compression for \"%s\"", e->path);
	e->compress = (uint8_t) v;
	if (!copy_field(e->bad_pages, sizeof(e->bad_pages), fields[11]) ||
		!copy_field(e->target, sizeof(e->target), fields[12]))
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "invalid manifest line for \"%s\"", e->path);
	return true;
}

int
pgbr_manifest_cmp(const char *a, char akind, const char *b, char bkind)
{
	const unsigned char *x = (const unsigned char *) a;
	const unsigned char *y = (const unsigned char *) b;

	while (*x && *x == *y)
		x++, y++;
	{
		int			cx = *x ? *x : (akind == 'd' ? '/' : 0);
		int			cy = *y ? *y : (bkind == 'd' ? '/' : 0);

		/* a directory equals its own path: "base" vs "base" */
		if (*x == 0 && *y == 0)
			return 0;
		if (cx != cy)
			return cx - cy;
		/* one is a directory prefix of the other: the directory first */
		return *x == 0 ? -1 : 1;
	}
}

bool
pgbr_path_safe(const char *path)
{
	const char *p = path;
	size_t		len = strlen(path);

	if (len == 0 || len > PGBR_PATH_MAX || path[0] == '/')
		return false;
	for (const char *c = path; *c; c++)
		if ((unsigned char) *c < 0x20 || *c == 0x7f)
			return false;
	while (*p)
	{
		const char *slash = strchr(p, '/');
		size_t		n = slash ? (size_t) (slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p == '/')
		{
			p++;
			if (*p == '\0')
				return false;
		}
	}
	return true;
}

static bool
is_stamp(const char *s)
{
	/* YYYYMMDD-HHMMSS */
	for (int i = 0; i < 15; i++)
	{
		if (i == 8)
		{
			if (s[i] != '-')
				return false;
		}
		else if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

bool
pgbr_label_valid(const char *label)
{
	size_t		len = strlen(label);

	if (len == 16)
		return is_stamp(label) && label[15] == 'F';
	if (len == 16 + 1 + 16)
		return is_stamp(label) && label[15] == 'F' && label[16] == '_' &&
			is_stamp(label + 17) && (label[32] == 'D' || label[32] == 'I');
	return false;
}

#define LINE_BUF_MAX (64 * 1024)

void
pgbr_line_reader_init(PgbrLineReader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->cap = LINE_BUF_MAX;
	r->buf = pgbr_malloc(r->cap + 1);
}

void
pgbr_line_reader_init_source(PgbrLineReader *r, PgbrLineSource source, void *arg)
{
	pgbr_line_reader_init(r, -1);
	r->source = source;
	r->source_arg = arg;
}

void
pgbr_line_reader_free(PgbrLineReader *r)
{
	pgbr_free(r->buf);
	r->buf = NULL;
}

bool
pgbr_line_reader_next(PgbrLineReader *r, char **line, size_t *len, PgbrError *err)
{
	for (;;)
	{
		char	   *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		ssize_t		n;

		if (nl != NULL)
		{
			*nl = '\0';
			*line = r->buf + r->start;
			*len = (size_t) (nl - (r->buf + r->start));
			r->start = (size_t) (nl - r->buf) + 1;
			r->lineno++;
			return true;
		}
		if (r->eof)
		{
			if (r->start < r->end)
			{
				/* last line without newline */
				r->buf[r->end] = '\0';
				*line = r->buf + r->start;
				*len = r->end - r->start;
				r->start = r->end;
				r->lineno++;
				return true;
			}
			return false;
		}
		if (r->start > 0)
		{
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		if (r->end == r->cap)
			return pgbr_error_set(err, PGBR_ERR_FORMAT, "line %" PRIu64 " is longer than %d bytes",
								  r->lineno + 1, LINE_BUF_MAX);
		if (r->source)
		{
			n = r->source(r->source_arg, r->buf + r->end, r->cap - r->end, err);
			if (n < 0)
				return false;
		}
		else
			n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not read manifest");
		}
		if (n == 0)
			r->eof = true;
		r->end += (size_t) n;
	}
}

bool
pgbr_kv_split(char *line, char **key, char **value)
{
	char	   *eq = strchr(line, '=');

	if (eq == NULL || eq == line)
		return false;
	*eq = '\0';
	*key = line;
	*value = eq + 1;
	return true;
}

void
pgbr_size_format(uint64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = {"KB", "MB", "GB", "TB", "PB"};
	double		v = (double) bytes;
	int			u = -1;

	if (bytes < 1024)
	{
		snprintf(out, outlen, "%" PRIu64 "B", bytes);
		return;
	}
	while (v >= 1024.0 && u < 4)
	{
		v /= 1024.0;
		u++;
	}
	snprintf(out, outlen, "%.1f%s", v, units[u]);
}
