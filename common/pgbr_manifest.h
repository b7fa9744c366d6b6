/*
 * pgbr_manifest.h
 *		The backup manifest: one line per file, directory or link of the
 *		backed-up cluster, tab-separated, sorted in walk order (see
 *		pgbr_manifest_cmp), after a [backup] header of key=value lines.
 *		The same line format is the body of a FILE_PUT request and of the
 *		backup worker's file list, so one parser serves all three.
 *
 *	  kind path size mtime mode sha256 repo-size reference bundle offset
 *	  compress bad-pages target
 *
 * kind is f (file), d (directory) or l (symbolic link, e.g. a
 * tablespace); "-" stands for an empty field; mode is octal; sha256 is the
 * checksum of the raw content (pgbr_filesum_*: the SHA-256 of the content,
 * for files over 64 MiB that of the SHA-256 of its 64 MiB pieces); reference is the label of the backup holding the data
 * when it is not this one; bundle and offset locate a small file packed
 * into a bundle; bad-pages lists block numbers whose page checksum failed.
 */
#ifndef PGBR_MANIFEST_H
#define PGBR_MANIFEST_H

#include "pgbr_buf.h"

#include <sys/types.h>
#include "pgbr_proto.h"

#define PGBR_LABEL_MAX	64

typedef struct PgbrManifestEntry
{
	char		kind;			/* 'f', 'd', 'l' */
	char		path[PGBR_PATH_MAX + 1];
	uint64_t	size;
	int64_t		mtime;
	uint32_t	mode;
	bool		has_sha;
	uint8_t		sha256[32];
	uint64_t	repo_size;		/* bytes stored in the repository */
	char		reference[PGBR_LABEL_MAX + 1];	/* "" = this backup */
	char		bundle[PGBR_LABEL_MAX + 1]; /* "" = stored as its own file */
	uint64_t	offset;			/* in the bundle */
	uint8_t		compress;		/* PgbrCompress */
	char		bad_pages[512]; /* "" or comma-separated block numbers */
	char		target[PGBR_PATH_MAX + 1];	/* links */
} PgbrManifestEntry;

extern void pgbr_manifest_entry_init(PgbrManifestEntry *e);

/* appends the entry as one line, with its newline */
extern void pgbr_manifest_entry_format(const PgbrManifestEntry *e, PgbrBuf *out);

/* parses one line (without or with its trailing newline) */
extern bool pgbr_manifest_entry_parse(const char *line, size_t len, PgbrManifestEntry *e,
									  PgbrError *err);

/*
 * Walk order: paths compared bytewise, a directory as if its path ended
 * in '/'.  A depth-first walk that visits the entries of each directory in
 * this order produces the whole tree in this order, so a walk and a
 * manifest can be merged as two sorted streams.
 */
extern int	pgbr_manifest_cmp(const char *a, char akind, const char *b, char bkind);

/*
 * A path from a client or a manifest that may be used under a directory:
 * relative, no "." or ".." component, no empty component, no control
 * characters, not too long.
 */
extern bool pgbr_path_safe(const char *path);

/* a backup label: YYYYMMDD-HHMMSSF, or <full>_YYYYMMDD-HHMMSS[DI] */
extern bool pgbr_label_valid(const char *label);

/*
 * Reads lines from a file descriptor with a bounded buffer.  Lines longer
 * than the buffer are an error.
 */
typedef ssize_t (*PgbrLineSource) (void *arg, void *buf, size_t len, PgbrError *err);

typedef struct PgbrLineReader
{
	int			fd;
	PgbrLineSource source;		/* instead of fd when set */
	void	   *source_arg;
	char	   *buf;
	size_t		cap;
	size_t		start;
	size_t		end;
	bool		eof;
	uint64_t	lineno;
} PgbrLineReader;

extern void pgbr_line_reader_init(PgbrLineReader *r, int fd);
/* reads through source (returns bytes, 0 at the end, -1 with err set) */
extern void pgbr_line_reader_init_source(PgbrLineReader *r, PgbrLineSource source, void *arg);
extern void pgbr_line_reader_free(PgbrLineReader *r);

/*
 * Next line (NUL-terminated, without its newline) in *line; returns
 * false at end of file (err not set) or on error (err set).
 */
extern bool pgbr_line_reader_next(PgbrLineReader *r, char **line, size_t *len, PgbrError *err);

/* pgBackRest's size format: "512B", "22.7MB", "1.5GB" */
extern void pgbr_size_format(uint64_t bytes, char *out, size_t outlen);

/* "key=value" header line helpers; false when the line is not one */
extern bool pgbr_kv_split(char *line, char **key, char **value);

#endif							/* PGBR_MANIFEST_H */
