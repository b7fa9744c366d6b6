/*
 * repo.c
 *		Durable file operations and stanza identity in the repository.
 */
#include "repo.h"
#include "pgbr_file.h"
#include "pgbr_checksum.h"
#include "pgbr_wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

bool
repo_path(char *out, const char *repo, const char *stanza, const char *suffix)
{
	int			n = snprintf(out, REPO_PATH_MAX, "%s/%s%s", repo, stanza, suffix);

	return n > 0 && n < REPO_PATH_MAX;
}

static const char *links_root = NULL;

void
repo_set_root(const char *root)
{
	links_root = root;
}

bool
repo_no_links(const char *path, PgbrError *err)
{
	char		buf[REPO_PATH_MAX];
	size_t		rl;

	if (links_root == NULL)
		return true;
	rl = strlen(links_root);
	while (rl > 1 && links_root[rl - 1] == '/')
		rl--;
	if (strncmp(path, links_root, rl) != 0 || path[rl] != '/')
		return true;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + rl + 1;; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			char		c = *p;
			struct stat st;

			*p = '\0';
			if (buf[strlen(buf) - 1] != '/')
			{
				if (lstat(buf, &st) != 0)
				{
					if (errno == ENOENT)
						return true;
					return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not stat \"%s\"", buf);
				}
				if (S_ISLNK(st.st_mode))
					return pgbr_error_set(err, PGBR_ERR_FILE_OPEN,
										  "\"%s\" is a symbolic link: pgbr-server does not follow links inside repo1-path",
										  buf);
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return true;
}

bool
repo_fsync_dir(const char *path, PgbrError *err)
{
	return repo_no_links(path, err) && pgbr_fsync_dir(path, err);
}

bool
repo_mkdir_p(const char *path, PgbrError *err)
{
	char		buf[REPO_PATH_MAX];
	struct stat st;

	if (!repo_no_links(path, err))
		return false;
	if (stat(path, &st) == 0)
	{
		if (S_ISDIR(st.st_mode))
			return true;
		return pgbr_error_set(err, PGBR_ERR_FILE_WRITE, "\"%s\" exists and is not a directory",
							  path);
	}
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) == 0)
		{
			char	   *slash = strrchr(buf, '/');

			/* make the new entry durable in its parent */
			if (slash && slash != buf)
			{
				*slash = '\0';
				if (!repo_fsync_dir(buf, err))
					return false;
				*slash = '/';
			}
		}
		else if (errno != EEXIST)
			return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create directory \"%s\"",
									buf);
		*p = '/';
	}
	if (mkdir(buf, 0750) != 0 && errno != EEXIST)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not create directory \"%s\"",
								buf);
	{
		char	   *slash = strrchr(buf, '/');

		if (slash && slash != buf)
		{
			*slash = '\0';
			return repo_fsync_dir(buf, err);
		}
	}
	return true;
}

int
repo_tmp_open(const char *dir, const char *name, char *tmppath, PgbrError *err)
{
	int			fd;
	int			n = snprintf(tmppath, REPO_PATH_MAX, "%s/.%s.%d.tmp", dir, name, (int) getpid());

	if (n <= 0 || n >= REPO_PATH_MAX)
	{
		pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "path for \"%s\" is too long", name);
		return -1;
	}
	fd = open(tmppath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not create file \"%s\"", tmppath);
	return fd;
}

bool
repo_commit(int fd, const char *tmppath, const char *final, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	char	   *slash;

	if (fsync(fd) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync file \"%s\"", tmppath);
		close(fd);
		unlink(tmppath);
		return false;
	}
	if (close(fd) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not close file \"%s\"", tmppath);
		unlink(tmppath);
		return false;
	}
	if (rename(tmppath, final) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not rename \"%s\" to \"%s\"",
						 tmppath, final);
		unlink(tmppath);
		return false;
	}
	snprintf(dir, sizeof(dir), "%s", final);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	return repo_fsync_dir(dir, err);
}

bool
repo_write_file(const char *dir, const char *name, const void *data, size_t len,
				PgbrError *err)
{
	char		tmp[REPO_PATH_MAX],
				final[REPO_PATH_MAX];
	int			fd = repo_tmp_open(dir, name, tmp, err);
	const uint8_t *p = data;

	if (fd < 0)
		return false;
	snprintf(final, sizeof(final), "%s/%s", dir, name);
	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write file \"%s\"", tmp);
			close(fd);
			unlink(tmp);
			return false;
		}
		p += n;
		len -= (size_t) n;
	}
	return repo_commit(fd, tmp, final, err);
}

int
repo_lock(const char *repo, const char *stanza, const char *name, bool wait, PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	char		suffix[128];
	int			fd;

	snprintf(suffix, sizeof(suffix), "/%s.lock", name);
	if (!repo_path(path, repo, stanza, suffix))
	{
		pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "lock path is too long");
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open lock file \"%s\"", path);
		return -1;
	}
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0)
	{
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK)
			pgbr_error_set(err, PGBR_ERR_LOCK, "lock \"%s\" is held by another process", path);
		else
			pgbr_error_errno(err, PGBR_ERR_LOCK, "could not lock \"%s\"", path);
		close(fd);
		return -1;
	}
	return fd;
}

void
repo_unlock(int fd)
{
	if (fd >= 0)
		close(fd);				/* releases the flock */
}

bool
repo_stanza_read(const char *repo, const char *stanza, PgbrStanzaMsg *m, bool *exists,
				 PgbrError *err)
{
	char		path[REPO_PATH_MAX];
	FILE	   *f;
	char		line[256];
	int			have = 0;

	*exists = false;
	memset(m, 0, sizeof(*m));
	if (!repo_path(path, repo, stanza, "/stanza.info"))
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "stanza path is too long");
	f = fopen(path, "r");
	if (f == NULL)
	{
		if (errno == ENOENT)
			return true;
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
	}
	while (fgets(line, sizeof(line), f))
	{
		unsigned long long v;

		if (sscanf(line, "system-id=%llu", &v) == 1)
			m->system_id = v, have |= 1;
		else if (sscanf(line, "pg-version=%llu", &v) == 1)
			m->pg_version = (uint32_t) v, have |= 2;
		else if (sscanf(line, "wal-segment-size=%llu", &v) == 1)
			m->seg_size = (uint32_t) v, have |= 4;
	}
	fclose(f);
	if (have != 7)
		return pgbr_error_set(err, PGBR_ERR_FORMAT, "stanza file \"%s\" is damaged", path);
	*exists = true;
	return true;
}

bool
repo_stanza_create(const char *repo, const char *stanza, const PgbrStanzaMsg *m,
				   bool *created, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	PgbrStanzaMsg cur;
	bool		exists;
	PgbrBuf		b;
	bool		ok;

	*created = false;
	if (!repo_path(dir, repo, stanza, "") || !repo_mkdir_p(dir, err))
		return pgbr_error_set(err, PGBR_ERR_FILE_WRITE, "could not create stanza directory");
	if (!repo_stanza_read(repo, stanza, &cur, &exists, err))
		return false;
	if (exists)
	{
		if (cur.system_id != m->system_id || cur.pg_version / 10000 != m->pg_version / 10000)
		{
			pgbr_error_set(err, PGBR_ERR_ARCHIVE_MISMATCH,
						   "stanza \"%s\" already exists for another cluster: the repository has system identifier %" PRIu64 " (PostgreSQL %u), this cluster is %" PRIu64 " (PostgreSQL %u)",
						   stanza, cur.system_id, cur.pg_version / 10000, m->system_id,
						   m->pg_version / 10000);
			pgbr_error_hint(err, "Use another stanza name for this cluster, or check pg1-path.");
			return false;
		}
		return true;
	}
	pgbr_buf_init(&b);
	pgbr_buf_printf(&b, "[db]\nsystem-id=%" PRIu64 "\npg-version=%u\nwal-segment-size=%u\n",
					m->system_id, m->pg_version, m->seg_size);
	ok = repo_write_file(dir, "stanza.info", b.data, b.len, err);
	pgbr_buf_release(&b);
	if (ok)
	{
		char		sub[REPO_PATH_MAX];

		ok = repo_path(sub, repo, stanza, "/archive") && repo_mkdir_p(sub, err) &&
			repo_path(sub, repo, stanza, "/backup") && repo_mkdir_p(sub, err);
		*created = ok;
	}
	return ok;
}

bool
repo_wal_dir(char *out, const char *repo, const char *stanza, const char *name)
{
	char		suffix[64];

	if (pgbr_wal_kind(name) == PGBR_WAL_HISTORY)
		snprintf(suffix, sizeof(suffix), "/archive/timeline");
	else
		snprintf(suffix, sizeof(suffix), "/archive/%.16s", name);
	return repo_path(out, repo, stanza, suffix);
}

bool
repo_wal_find(const char *repo, const char *stanza, const char *name, RepoWalFile *f,
			  bool *found, PgbrError *err)
{
	char		dir[REPO_PATH_MAX];
	DIR		   *d;
	struct dirent *de;
	size_t		nlen = strlen(name);

	*found = false;
	if (!repo_wal_dir(dir, repo, stanza, name))
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "archive path is too long");
	if (!repo_no_links(dir, err))
		return false;
	d = opendir(dir);
	if (d == NULL)
	{
		if (errno == ENOENT)
			return true;
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open directory \"%s\"", dir);
	}
	while ((de = readdir(d)) != NULL)
	{
		const char *rest;
		char		hex[PGBR_SHA256_HEXLEN + 1];

		/* <name>-<64 hex>.zst or .raw */
		if (strncmp(de->d_name, name, nlen) != 0 || de->d_name[nlen] != '-')
			continue;
		rest = de->d_name + nlen + 1;
		if (strlen(rest) != PGBR_SHA256_HEXLEN + 4)
			continue;
		memcpy(hex, rest, PGBR_SHA256_HEXLEN);
		hex[PGBR_SHA256_HEXLEN] = '\0';
		if (!pgbr_hex_decode(hex, f->sha256, PGBR_SHA256_LEN))
			continue;
		if (strcmp(rest + PGBR_SHA256_HEXLEN, ".zst") == 0)
			f->compress = PGBR_COMPRESS_ZST;
		else if (strcmp(rest + PGBR_SHA256_HEXLEN, ".raw") == 0)
			f->compress = PGBR_COMPRESS_NONE;
		else
			continue;
		snprintf(f->path, sizeof(f->path), "%s/%s", dir, de->d_name);
		*found = true;
		break;
	}
	closedir(d);
	return true;
}
