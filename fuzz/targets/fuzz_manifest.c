/*
 * fuzz_manifest.c
 *		libFuzzer target: a manifest file as the server reads it back from
 *		the repository (MANIFEST_GET answers, merge of part files, verify)
 *		and as the tool reads the manifest it received: lines from
 *		pgbr_line_reader over a file descriptor, the [backup] header as
 *		key=value lines, the [files] lines through pgbr_manifest_entry_parse.
 *		Accepted lines must stay inside the backup, survive format + parse,
 *		and compare consistently in walk order.
 */
#include "fuzz_common.h"

#include <sys/mman.h>
#include <unistd.h>

static int	memfd = -1;

static int
sign(int v)
{
	return (v > 0) - (v < 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PgbrLineReader r;
	PgbrError	err;
	char	   *line;
	size_t		len;
	bool		in_files = false;
	PgbrManifestEntry *prev = malloc(sizeof(PgbrManifestEntry));
	PgbrManifestEntry *cur = malloc(sizeof(PgbrManifestEntry));
	bool		have_prev = false;

	if (memfd < 0)
		memfd = memfd_create("pgbr-fuzz-manifest", 0);
	if (memfd < 0 || ftruncate(memfd, 0) != 0 || lseek(memfd, 0, SEEK_SET) != 0 ||
		(size > 0 && write(memfd, data, size) != (ssize_t) size) ||
		lseek(memfd, 0, SEEK_SET) != 0)
		abort();

	pgbr_error_init(&err);
	pgbr_line_reader_init(&r, memfd);
	while (pgbr_line_reader_next(&r, &line, &len, &err))
	{
		FUZZ_CHECK(strlen(line) <= len && memchr(line, '\n', len) == NULL,
				   "line reader gave a line with a newline or a wrong length");
		if (!in_files)
		{
			char	   *key,
					   *value;
			char	   *copy = strndup(line, len);

			if (strcmp(line, "[files]") == 0)
				in_files = true;
			else if (pgbr_kv_split(copy, &key, &value) && strcmp(key, "label") == 0 &&
					 pgbr_label_valid(value))
				FUZZ_CHECK(fuzz_label_shape(value), "label \"%s\" accepted", value);
			free(copy);
			continue;
		}
		if (!fuzz_manifest_line(line, len))
			continue;
		pgbr_error_init(&err);
		if (!pgbr_manifest_entry_parse(line, len, cur, &err))
			abort();
		if (have_prev)
		{
			int			ab = pgbr_manifest_cmp(prev->path, prev->kind, cur->path, cur->kind);
			int			ba = pgbr_manifest_cmp(cur->path, cur->kind, prev->path, prev->kind);

			FUZZ_CHECK(sign(ab) == -sign(ba), "walk order not antisymmetric: \"%s\" %c / \"%s\" %c",
					   prev->path, prev->kind, cur->path, cur->kind);
		}
		memcpy(prev, cur, sizeof(*cur));
		have_prev = true;
	}
	FUZZ_CHECK(!pgbr_error_is_set(&err) || err.code == PGBR_ERR_FORMAT ||
			   err.code == PGBR_ERR_FILE_READ, "line reader error code %d", err.code);
	pgbr_line_reader_free(&r);
	free(prev);
	free(cur);
	return 0;
}
