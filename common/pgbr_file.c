/*
 * pgbr_file.c
 *		Small durable-file helpers.
 */
#include "pgbr_file.h"

#include <fcntl.h>
#include <unistd.h>

bool
pgbr_fsync_dir(const char *path, PgbrError *err)
{
	int			fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open directory \"%s\"", path);
	if (fsync(fd) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync directory \"%s\"", path);
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

void
pgbr_start_writeback(int fd, uint64_t offset, uint64_t len)
{
	(void) sync_file_range(fd, (off_t) offset, (off_t) len, SYNC_FILE_RANGE_WRITE);
}

void
pgbr_writeback_step(int fd, uint64_t written, uint64_t *started, uint64_t every)
{
	if (written > *started && written - *started >= every)
	{
		pgbr_start_writeback(fd, *started, written - *started);
		*started = written;
	}
}
