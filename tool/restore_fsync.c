/*
 * restore_fsync.c
 *		Deferred fsync for the restore workers.
 *
 * Why: an fsync right after writing a file waits for its data and for a
 * journal commit of its own; with a thousand files that is a thousand
 * commits, and for a 1 GB segment half a second of waiting at the end of
 * the critical path (strace -T of a pgbench -s 100 restore).  Here the
 * writeback of a file is started (sync_file_range, SYNC_FILE_RANGE_WRITE:
 * no waiting) as soon as it is complete - big files also while they are
 * written, see restore_sha.c - and its fsync is issued RESTORE_FSYNC_RING
 * files later: its data is then written already, and one journal commit
 * covers the metadata of many files.  A worker reports success only after
 * restore_fsync_drain, so every file is durable before the restore goes on
 * to the directories and to pg_control.  Memory and open files are bounded
 * by the ring.
 */
#include "restore_fsync.h"
#include "pgbr_file.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

typedef struct Held
{
	int			fd;
	char		name[PATH_MAX];
} Held;

struct RestoreFsync
{
	Held		held[RESTORE_FSYNC_RING];
	int			head;			/* oldest */
	int			n;
};

RestoreFsync *
restore_fsync_create(void)
{
	RestoreFsync *f = pgbr_malloc(sizeof(RestoreFsync));

	f->head = f->n = 0;
	return f;
}

void
restore_fsync_free(RestoreFsync *f)
{
	if (f == NULL)
		return;
	for (int i = 0; i < f->n; i++)
		close(f->held[(f->head + i) % RESTORE_FSYNC_RING].fd);
	pgbr_free(f);
}

/* fsyncs and closes the oldest file held */
static bool
sync_oldest(RestoreFsync *f, PgbrError *err)
{
	Held	   *h = &f->held[f->head];
	bool		ok = true;

	f->head = (f->head + 1) % RESTORE_FSYNC_RING;
	f->n--;
	if (fsync(h->fd) != 0)
		ok = pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync \"%s\"", h->name);
	if (close(h->fd) != 0 && ok)
		ok = pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write \"%s\"", h->name);
	return ok;
}

bool
restore_fsync_add(RestoreFsync *f, int fd, const char *name, PgbrError *err)
{
	Held	   *h;

	if (f->n == RESTORE_FSYNC_RING && !sync_oldest(f, err))
	{
		close(fd);
		return false;
	}
	pgbr_start_writeback(fd, 0, 0);
	h = &f->held[(f->head + f->n) % RESTORE_FSYNC_RING];
	h->fd = fd;
	snprintf(h->name, sizeof(h->name), "%s", name);
	f->n++;
	return true;
}

bool
restore_fsync_drain(RestoreFsync *f, PgbrError *err)
{
	while (f->n > 0)
		if (!sync_oldest(f, err))
			return false;
	return true;
}
