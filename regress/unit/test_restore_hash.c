/*
 * test_restore_hash.c
 *		restore --delta's checksum of a big local file, its pieces hashed on
 *		several threads (tool/restore_hash.c), against the streamed file sum.
 */
#include "pgbr_checksum.h"
#include "restore_hash.h"
#include "unit.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t rng = 0x2545F4914F6CDD1D;

static uint8_t
rnd(void)
{
	return unit_rnd(&rng);
}

int
main(void)
{
	/* three pieces, the last short and not a multiple of 4096 (O_DIRECT's tail) */
	const uint64_t size = 2 * PGBR_FILESUM_PIECE + 40961;
	uint8_t    *data = malloc((size_t) size);
	char		path[] = "/tmp/pgbr-test-restore-hash-XXXXXX";
	int			fd = mkstemp(path);
	PgbrError	err;
	PgbrFileSum *fs;
	uint8_t		want[PGBR_SHA256_LEN],
				got[PGBR_SHA256_LEN];
	bool		complete;

	ok(fd >= 0, "temporary file %s", path);
	for (uint64_t i = 0; i < size; i++)
		data[i] = rnd();
	ok(write(fd, data, (size_t) size) == (ssize_t) size, "wrote %" PRIu64 " bytes", size);
	fs = pgbr_filesum_create(&err);
	pgbr_filesum_update(fs, data, (size_t) size);
	pgbr_filesum_final(fs, want);

	for (int threads = 1; threads <= 4; threads++)
	{
		pgbr_error_init(&err);
		memset(got, 0, sizeof(got));
		ok(restore_hash_file(path, size, threads, got, &complete, &err) && complete,
		   "%d thread(s): hashed", threads);
		is_mem(got, want, PGBR_SHA256_LEN, "%d thread(s): the streamed file sum", threads);
	}

	/* a changed byte in the last piece changes it */
	data[size - 1] ^= 1;
	ok(pwrite(fd, data + size - 1, 1, (off_t) (size - 1)) == 1, "one byte changed");
	pgbr_error_init(&err);
	ok(restore_hash_file(path, size, 2, got, &complete, &err) && complete, "hashed again");
	ok(memcmp(got, want, PGBR_SHA256_LEN) != 0, "the changed file has another checksum");

	/* a file shorter than the manifest says: incomplete, not an error */
	ok(ftruncate(fd, (off_t) (size - 100)) == 0, "file truncated");
	pgbr_error_init(&err);
	ok(restore_hash_file(path, size, 3, got, &complete, &err) && !complete,
	   "a short file is reported incomplete");

	/* a file that is not there: the error names it */
	close(fd);
	unlink(path);
	pgbr_error_init(&err);
	ok(!restore_hash_file(path, size, 2, got, &complete, &err), "a missing file fails");
	like(err.message, path, "the error names the file");

	pgbr_filesum_free(fs);
	free(data);
	return done_testing();
}
