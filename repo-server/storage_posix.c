/*
 * storage_posix.c
 *		The repository as a directory tree under repo1-path.
 *
 * A file is written as "<dir>/.<name>.<pid>.tmp", fsynced, renamed and its
 * directory fsynced; temporary names are never listed.  Directories are
 * created on demand (mode 0750), each new one made durable in its parent.
 * Nothing below the root is followed through a symbolic link: a link
 * planted inside the repository is refused, not served.
 */
#include "storage.h"
#include "pgbr_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct PosixState
{
	char	   *root;
} PosixState;

/*
 * A deferred file (backup data, made durable by one syncfs when the backup
 * commits) has its writeback started every WRITEBACK_KICK bytes while it is
 * written, and for the rest when it is closed: the data is then on its way
 * to disk during the backup, and the syncfs at the commit does not find a
 * whole backup's worth still in the page cache, with the CPUs idle while it
 * waits.  (Non-deferred files are fsynced when committed.)
 */
#define WRITEBACK_KICK	((uint64_t) 8 * 1024 * 1024)

struct StorageFile
{
	Storage    *st;
	int			fd;
	bool		deferred;
	uint64_t	written;		/* bytes written */
	uint64_t	kicked;			/* bytes whose writeback was started */
	char		tmp[STORAGE_PATH_MAX];
	char		final[STORAGE_PATH_MAX];
};

struct StorageRead
{
	Storage    *st;
	int			fd;
	bool		whole;
	uint64_t	left;
	char		full[STORAGE_PATH_MAX];
};

struct StorageLock
{
	Storage    *st;
	int			fd;
};

static const char *
root_of(Storage *st)
{
	return ((PosixState *) st->priv)->root;
}

static bool
full_path(Storage *st, char *out, const char *path, PgbrError *err)
{
	return storage_path(out, err, "%s%s%s", root_of(st), path[0] ? "/" : "", path);
}

/* refuses a path that goes through a symbolic link below the root */
static bool
no_links(Storage *st, const char *full, PgbrError *err)
{
	const char *root = root_of(st);
	size_t		rl = strlen(root);
	char		buf[STORAGE_PATH_MAX];

	if (strncmp(full, root, rl) != 0 || full[rl] != '/')
		return true;
	snprintf(buf, sizeof(buf), "%s", full);
	for (char *p = buf + rl + 1;; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			char		c = *p;
			struct stat sb;

			*p = '\0';
			if (lstat(buf, &sb) != 0)
			{
				if (errno == ENOENT)
					return true;
				return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not stat \"%s\"", buf);
			}
			if (S_ISLNK(sb.st_mode))
				return pgbr_error_set(err, PGBR_ERR_FILE_OPEN,
									  "\"%s\" is a symbolic link: pgbr-server does not follow links inside repo1-path",
									  buf);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return true;
}

static bool
fsync_dir(Storage *st, const char *full, PgbrError *err)
{
	return no_links(st, full, err) && pgbr_fsync_dir(full, err);
}

/* creates the missing directories of full (not its last component) */
static bool
mkdir_parents(Storage *st, const char *full, PgbrError *err)
{
	char		buf[STORAGE_PATH_MAX];
	char	   *last;
	struct stat sb;
	size_t		rl = strlen(root_of(st));

	snprintf(buf, sizeof(buf), "%s", full);
	last = strrchr(buf, '/');
	if (last == NULL || (size_t) (last - buf) <= rl)
		return true;
	*last = '\0';
	if (stat(buf, &sb) == 0)
		return S_ISDIR(sb.st_mode) ? no_links(st, buf, err) :
			pgbr_error_set(err, PGBR_ERR_FILE_WRITE, "\"%s\" exists and is not a directory", buf);
	if (!no_links(st, buf, err))
		return false;
	for (char *p = buf + rl + 1;; p++)
	{
		char		c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) == 0)
		{
			char	   *slash = strrchr(buf, '/');

			/* the new entry must survive a crash: fsync its parent */
			*slash = '\0';
			if (!pgbr_fsync_dir(buf, err))
				return false;
			*slash = '/';
		}
		else if (errno != EEXIST)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create directory \"%s\"", buf);
		*p = c;
		if (c == '\0')
			break;
	}
	return true;
}

static bool
posix_open(Storage *st, const PgbrConfig *cfg, PgbrError *err)
{
	const char *path = pgbr_config_get(cfg, "repo1-path");
	PosixState *ps;
	size_t		len;

	if (path == NULL || path[0] != '/')
	{
		pgbr_error_set(err, PGBR_ERR_OPTION_REQUIRED,
					   "option repo1-path must be an absolute path for repo1-type=posix");
		return false;
	}
	ps = pgbr_malloc(sizeof(PosixState));
	ps->root = pgbr_strdup(path);
	len = strlen(ps->root);
	while (len > 1 && ps->root[len - 1] == '/')
		ps->root[--len] = '\0';
	st->priv = ps;
	st->atomic_names = true;
	snprintf(st->where, sizeof(st->where), "repo1-path \"%s\"", ps->root);
	return true;
}

static void
posix_close(Storage *st)
{
	PosixState *ps = st->priv;

	if (ps)
	{
		pgbr_free(ps->root);
		pgbr_free(ps);
	}
	st->priv = NULL;
}

static StorageFile *
posix_create(Storage *st, const char *path, int flags, PgbrError *err)
{
	StorageFile *f = pgbr_malloc(sizeof(StorageFile));
	const char *target;

	memset(f, 0, sizeof(StorageFile));
	f->st = st;
	f->deferred = (flags & STORAGE_DEFER_SYNC) != 0;
	if (!full_path(st, f->final, path, err) || !mkdir_parents(st, f->final, err))
	{
		pgbr_free(f);
		return NULL;
	}
	if (f->deferred)
	{
		target = f->final;
		f->fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	}
	else
	{
		const char *slash = strrchr(f->final, '/');

		if (!storage_path(f->tmp, err, "%.*s/.%s.%d.tmp", (int) (slash - f->final), f->final,
						  slash + 1, (int) getpid()))
		{
			pgbr_free(f);
			return NULL;
		}
		target = f->tmp;
		f->fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	}
	if (f->fd < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not create file \"%s\"", target);
		pgbr_free(f);
		return NULL;
	}
	return f;
}

static bool
posix_write(StorageFile *f, const void *data, size_t len, PgbrError *err)
{
	const uint8_t *p = data;

	while (len > 0)
	{
		ssize_t		n = write(f->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write file \"%s\"",
									f->deferred ? f->final : f->tmp);
		p += n;
		len -= (size_t) n;
		f->written += (uint64_t) n;
	}
	if (f->deferred)
		pgbr_writeback_step(f->fd, f->written, &f->kicked, WRITEBACK_KICK);
	return true;
}

static void
posix_discard(StorageFile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	unlink(f->deferred ? f->final : f->tmp);
	pgbr_free(f);
}

static bool
posix_commit(StorageFile *f, const char *final, PgbrError *err)
{
	char		dir[STORAGE_PATH_MAX];
	bool		ok;

	if (final != NULL)
	{
		char		full[STORAGE_PATH_MAX];

		if (!full_path(f->st, full, final, err) || !mkdir_parents(f->st, full, err))
		{
			posix_discard(f);
			return false;
		}
		if (f->deferred && strcmp(full, f->final) != 0)
		{
			if (rename(f->final, full) != 0)
			{
				pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not rename \"%s\" to \"%s\"",
								 f->final, full);
				posix_discard(f);
				return false;
			}
		}
		memcpy(f->final, full, sizeof(full));
	}
	if (f->deferred)
	{
		pgbr_writeback_step(f->fd, f->written, &f->kicked, 0);
		ok = close(f->fd) == 0 ||
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not close file \"%s\"", f->final);
		f->fd = -1;
		if (!ok)
			posix_discard(f);
		else
			pgbr_free(f);
		return ok;
	}
	if (fsync(f->fd) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync file \"%s\"", f->tmp);
		posix_discard(f);
		return false;
	}
	ok = close(f->fd) == 0;
	f->fd = -1;
	if (!ok)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not close file \"%s\"", f->tmp);
		posix_discard(f);
		return false;
	}
	if (rename(f->tmp, f->final) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not rename \"%s\" to \"%s\"", f->tmp,
						 f->final);
		posix_discard(f);
		return false;
	}
	snprintf(dir, sizeof(dir), "%s", f->final);
	*strrchr(dir, '/') = '\0';
	ok = fsync_dir(f->st, dir, err);
	pgbr_free(f);
	return ok;
}

static StorageRead *
posix_read_open(Storage *st, const char *path, uint64_t offset, uint64_t length, bool *missing,
				PgbrError *err)
{
	StorageRead *r = pgbr_malloc(sizeof(StorageRead));

	*missing = false;
	memset(r, 0, sizeof(StorageRead));
	r->st = st;
	r->fd = -1;
	r->whole = length == UINT64_MAX;
	r->left = length;
	if (!full_path(st, r->full, path, err) || !no_links(st, r->full, err))
	{
		pgbr_free(r);
		return NULL;
	}
	r->fd = open(r->full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (r->fd < 0)
	{
		if (errno == ENOENT)
			*missing = true;
		else
			pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", r->full);
		pgbr_free(r);
		return NULL;
	}
	if (offset > 0 && lseek(r->fd, (off_t) offset, SEEK_SET) < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not seek in \"%s\"", r->full);
		close(r->fd);
		pgbr_free(r);
		return NULL;
	}
	return r;
}

static ssize_t
posix_read(StorageRead *r, void *buf, size_t len, PgbrError *err)
{
	ssize_t		n;

	if (!r->whole && r->left < len)
		len = (size_t) r->left;
	if (len == 0)
		return 0;
	do
		n = read(r->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not read \"%s\"", r->full);
		return -1;
	}
	if (n == 0 && !r->whole)
	{
		pgbr_error_set(err, PGBR_ERR_FILE_READ, "\"%s\" ends before the range that was asked for",
					   r->full);
		return -1;
	}
	if (!r->whole)
		r->left -= (uint64_t) n;
	return n;
}

static void
posix_read_close(StorageRead *r)
{
	if (r->fd >= 0)
		close(r->fd);
	pgbr_free(r);
}

/* ".<name>.<pid>.tmp": a file being written */
static bool
is_temporary(const char *name)
{
	size_t		len = strlen(name);

	return name[0] == '.' && len > 5 && strcmp(name + len - 4, ".tmp") == 0;
}

static bool
posix_list(Storage *st, const char *dir, const char *prefix, StorageListFn fn, void *arg,
		   PgbrError *err)
{
	char		full[STORAGE_PATH_MAX];
	size_t		plen = strlen(prefix);
	DIR		   *d;
	struct dirent *de;
	bool		ok = true;

	if (!full_path(st, full, dir, err) || !no_links(st, full, err))
		return false;
	d = opendir(full);
	if (d == NULL)
		return errno == ENOENT || errno == ENOTDIR ? true :
			pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open directory \"%s\"", full);
	while ((de = readdir(d)) != NULL)
	{
		StorageEntry e;
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			strncmp(de->d_name, prefix, plen) != 0 || is_temporary(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		{
			if (errno == ENOENT)
				continue;		/* removed meanwhile */
			ok = pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not stat \"%s/%s\"", full,
								  de->d_name);
			break;
		}
		if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode))
			continue;			/* links and the like are not ours */
		e.name = de->d_name;
		e.is_dir = S_ISDIR(sb.st_mode);
		e.size = e.is_dir ? 0 : (uint64_t) sb.st_size;
		e.mtime = (int64_t) sb.st_mtime;
		if (!fn(arg, &e, err))
		{
			ok = !pgbr_error_is_set(err);
			break;
		}
	}
	closedir(d);
	return ok;
}

static bool
posix_exists(Storage *st, const char *path, bool *exists, PgbrError *err)
{
	char		full[STORAGE_PATH_MAX];
	struct stat sb;

	*exists = false;
	if (!full_path(st, full, path, err) || !no_links(st, full, err))
		return false;
	if (lstat(full, &sb) == 0)
		*exists = true;
	else if (errno != ENOENT && errno != ENOTDIR)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not stat \"%s\"", full);
	return true;
}

static bool
posix_remove(Storage *st, const char *path, PgbrError *err)
{
	char		full[STORAGE_PATH_MAX];

	if (!full_path(st, full, path, err) || !no_links(st, full, err))
		return false;
	if (unlink(full) != 0)
		return errno == ENOENT ? true :
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", full);
	*strrchr(full, '/') = '\0';
	return pgbr_fsync_dir(full, err);
}

static bool
remove_full_tree(const char *full, PgbrError *err)
{
	struct stat sb;
	DIR		   *d;
	struct dirent *de;
	bool		ok = true;

	if (lstat(full, &sb) != 0)
		return errno == ENOENT ? true :
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not stat \"%s\"", full);
	if (!S_ISDIR(sb.st_mode))
		return unlink(full) == 0 || errno == ENOENT ||
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", full);
	d = opendir(full);
	if (d == NULL)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", full);
	while (ok && (de = readdir(d)) != NULL)
	{
		char		child[STORAGE_PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ok = storage_path(child, err, "%s/%s", full, de->d_name) && remove_full_tree(child, err);
	}
	closedir(d);
	if (ok && rmdir(full) != 0 && errno != ENOENT)
		ok = pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", full);
	return ok;
}

static bool
posix_remove_tree(Storage *st, const char *dir, PgbrError *err)
{
	char		full[STORAGE_PATH_MAX];

	if (!full_path(st, full, dir, err) || !no_links(st, full, err) ||
		!remove_full_tree(full, err))
		return false;
	*strrchr(full, '/') = '\0';
	return pgbr_fsync_dir(full, err);
}

static bool
posix_sync(Storage *st, const char *dir, PgbrError *err)
{
	char		full[STORAGE_PATH_MAX];
	int			fd;
	bool		ok;

	if (!full_path(st, full, dir, err))
		return false;
	fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not open \"%s\"", full);
	ok = syncfs(fd) == 0 ||
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not flush \"%s\" to disk", full);
	close(fd);
	return ok;
}

static StorageLock *
posix_lock(Storage *st, const char *path, int wait_ms, PgbrError *err)
{
	char		full[STORAGE_PATH_MAX];
	int			fd;
	struct timespec start;

	if (!full_path(st, full, path, err) || !mkdir_parents(st, full, err))
		return NULL;
	fd = open(full, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open lock file \"%s\"", full);
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (flock(fd, LOCK_EX | (wait_ms < 0 ? 0 : LOCK_NB)) != 0)
	{
		struct timespec now;
		struct timespec pause = {0, 10 * 1000 * 1000};

		if (errno == EINTR)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (errno == EWOULDBLOCK &&
			(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < wait_ms)
		{
			nanosleep(&pause, NULL);
			continue;
		}
		if (errno == EWOULDBLOCK)
			pgbr_error_set(err, PGBR_ERR_LOCK, "lock \"%s\" is held by another process", full);
		else
			pgbr_error_errno(err, PGBR_ERR_LOCK, "could not lock \"%s\"", full);
		close(fd);
		return NULL;
	}
	{
		StorageLock *l = pgbr_malloc(sizeof(StorageLock));

		l->st = st;
		l->fd = fd;
		return l;
	}
}

static void
posix_lock_refresh(StorageLock *l)
{
	(void) l;					/* a flock lives as long as its descriptor */
}

static void
posix_unlock(StorageLock *l)
{
	close(l->fd);				/* releases the flock */
	pgbr_free(l);
}

const StorageDriver storage_posix_driver = {
	.type = "posix",
	.open = posix_open,
	.close = posix_close,
	.create = posix_create,
	.write = posix_write,
	.commit = posix_commit,
	.discard = posix_discard,
	.read_open = posix_read_open,
	.read = posix_read,
	.read_close = posix_read_close,
	.list = posix_list,
	.exists = posix_exists,
	.remove = posix_remove,
	.remove_tree = posix_remove_tree,
	.sync = posix_sync,
	.lock = posix_lock,
	.lock_refresh = posix_lock_refresh,
	.unlock = posix_unlock,
};
