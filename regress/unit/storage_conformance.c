/*
 * storage_conformance.c
 *		The promises of repo-server/storage.h, checked against whichever
 *		back end a pgbr configuration names (repo1-type=posix or s3):
 *
 *		regress/storage-conformance CONFIG [STANZA]
 *
 * Everything is written below "conformance-<pid>/" inside the repository
 * and removed at the end.  Prints "ok N - ..." per check and exits 1 on
 * any failure.  Environment:
 *
 *		STORAGE_LIST_COUNT=N	objects for the pagination check (default
 *								1010 on s3: more than one 1000-key page;
 *								50 on posix)
 *		STORAGE_BIG_MB=N		size of the multipart file (default 20)
 *		STORAGE_BENCH_MB=N		also time a PUT and a GET of N MiB
 */
#include "storage.h"
#include "pgbr_log.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static Storage *st;
static char base[128];

static const char *
P(const char *fmt,...) PGBR_PRINTF(1, 2);

/* a path below base; a few rotating buffers */
static const char *
P(const char *fmt,...)
{
	static char bufs[4][STORAGE_PATH_MAX];
	static int	next;
	char	   *b = bufs[next++ % 4];
	char		tail[STORAGE_PATH_MAX];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(tail, sizeof(tail), fmt, ap);
	va_end(ap);
	snprintf(b, STORAGE_PATH_MAX, "%s/%s", base, tail);
	return b;
}

static void
report(const PgbrError *err)
{
	if (pgbr_error_is_set(err))
		diag("error [%d]: %s%s%s", err->code, err->message, err->hint[0] ? "\nhint: " : "",
			 err->hint);
}

/* deterministic content: byte i of a file seeded s */
static void
fill(uint8_t *buf, size_t len, uint64_t from, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
	{
		uint64_t	x = (from + i) * 2654435761u + seed;

		buf[i] = (uint8_t) (x ^ (x >> 13) ^ (x >> 29));
	}
}

/* writes len bytes of pattern seed in chunks of chunk bytes */
static bool
write_file_as(const char *path, const char *final, uint64_t len, uint32_t seed, size_t chunk,
			  bool commit, PgbrError *err)
{
	StorageFile *f = storage_create(st, path, 0, err);
	uint8_t    *buf = malloc(chunk);
	uint64_t	done = 0;
	bool		ok = f != NULL;

	while (ok && done < len)
	{
		size_t		n = len - done < chunk ? (size_t) (len - done) : chunk;

		fill(buf, n, done, seed);
		ok = storage_write(f, buf, n, err);
		done += n;
	}
	free(buf);
	if (f == NULL)
		return false;
	if (!ok || !commit)
	{
		storage_discard(f);
		return ok;
	}
	return final ? storage_commit_as(f, final, err) : storage_commit(f, err);
}

static bool
write_file(const char *path, uint64_t len, uint32_t seed, size_t chunk, bool commit, PgbrError *err)
{
	return write_file_as(path, NULL, len, seed, chunk, commit, err);
}

/* path exists (true) or not (false); diag on error */
static bool
present(const char *path)
{
	PgbrError	err;
	bool		exists = false;

	pgbr_error_init(&err);
	if (!storage_exists(st, path, &exists, &err))
		report(&err);
	return exists;
}

/* reads [offset, offset + length) and compares it with pattern seed */
static bool
read_check(const char *path, uint64_t offset, uint64_t length, uint64_t want_len, uint32_t seed,
		   size_t chunk, PgbrError *err)
{
	bool		missing;
	StorageRead *r = storage_read_open(st, path, offset, length, &missing, err);
	uint8_t    *buf = malloc(chunk);
	uint8_t    *want = malloc(chunk);
	uint64_t	got = 0;
	ssize_t		n;
	bool		same = true;

	if (r == NULL)
	{
		free(buf);
		free(want);
		if (missing)
			diag("\"%s\" is missing", path);
		return false;
	}
	while ((n = storage_read(r, buf, chunk, err)) > 0)
	{
		fill(want, (size_t) n, offset + got, seed);
		if (same && memcmp(buf, want, (size_t) n) != 0)
		{
			diag("content differs in bytes %llu..%llu", (unsigned long long) (offset + got),
				 (unsigned long long) (offset + got + (uint64_t) n));
			same = false;
		}
		got += (uint64_t) n;
	}
	storage_read_close(r);
	free(buf);
	free(want);
	if (n < 0)
		return false;
	if (got != want_len)
		diag("read %llu bytes, expected %llu", (unsigned long long) got,
			 (unsigned long long) want_len);
	return same && got == want_len;
}

typedef struct Listed
{
	int			n;
	int			dirs;
	bool		saw[8];
	uint64_t	size_a;
	int64_t		mtime_a;
	const char *names[8];
} Listed;

static bool
count_entry(void *arg, const StorageEntry *e, PgbrError *err)
{
	Listed	   *l = arg;

	l->n++;
	if (e->is_dir)
		l->dirs++;
	for (int i = 0; i < 8 && l->names[i]; i++)
		if (strcmp(e->name, l->names[i]) == 0)
		{
			l->saw[i] = true;
			if (i == 0)
			{
				l->size_a = e->size;
				l->mtime_a = e->mtime;
			}
		}
	return true;
}

static bool
list_into(const char *dir, const char *prefix, Listed *l, PgbrError *err)
{
	return storage_list(st, dir, prefix, count_entry, l, err);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
test_small_files(void)
{
	PgbrError	err;
	Listed		l;
	PgbrBuf		b;
	bool		missing;

	pgbr_error_init(&err);
	ok(write_file(P("dir/a"), 1000, 1, 333, true, &err), "create/write/commit a small file");
	report(&err);
	ok(storage_put(st, P("dir/sub/b"), "hello", 5, &err), "storage_put a file one level down");
	report(&err);
	ok(write_file(P("dir/empty"), 0, 0, 1, true, &err), "an empty file");
	report(&err);

	memset(&l, 0, sizeof(l));
	l.names[0] = "a";
	l.names[1] = "sub";
	l.names[2] = "empty";
	ok(list_into(P("dir"), "", &l, &err), "list dir");
	report(&err);
	is_int(l.n, 3, "dir lists three entries");
	ok(l.saw[0] && l.saw[1] && l.saw[2], "names are relative to dir: a, sub, empty");
	is_int(l.dirs, 1, "sub is a directory");
	is_int((long long) l.size_a, 1000, "size of a");
	ok(llabs(l.mtime_a - (int64_t) time(NULL)) < 300, "mtime of a is now (%lld)", (long long) l.mtime_a);

	memset(&l, 0, sizeof(l));
	ok(list_into(P("dir"), "e", &l, &err) && l.n == 1, "list with a name prefix");
	memset(&l, 0, sizeof(l));
	ok(list_into(P("nothing-here"), "", &l, &err) && l.n == 0, "a missing directory lists empty");
	report(&err);

	ok(read_check(P("dir/a"), 0, UINT64_MAX, 1000, 1, 7, &err), "read all of a in 7-byte reads");
	report(&err);
	ok(read_check(P("dir/a"), 100, 250, 250, 1, 64, &err), "ranged read 100..349");
	report(&err);
	ok(read_check(P("dir/a"), 990, UINT64_MAX, 10, 1, 64, &err), "read from 990 to the end");
	report(&err);
	ok(read_check(P("dir/empty"), 0, UINT64_MAX, 0, 0, 64, &err), "read the empty file");
	report(&err);

	pgbr_buf_init(&b);
	ok(storage_get(st, P("dir/sub/b"), 100, &b, &missing, &err) && !missing && b.len == 5 &&
	   memcmp(b.data, "hello", 5) == 0, "storage_get");
	report(&err);
	pgbr_buf_release(&b);

	/* a range past the end is an error that names the file */
	{
		StorageRead *r = storage_read_open(st, P("dir/a"), 900, 200, &missing, &err);
		uint8_t		buf[512];
		ssize_t		n = 0;

		if (r)
		{
			while ((n = storage_read(r, buf, sizeof(buf), &err)) > 0)
				;
			storage_read_close(r);
		}
		ok(pgbr_error_is_set(&err) && strstr(err.message, "dir/a") != NULL,
		   "a range beyond the end fails and names the file");
		if (pgbr_error_is_set(&err))
			diag("%s", err.message);
		pgbr_error_init(&err);
	}
	{
		StorageRead *r = storage_read_open(st, P("dir/a"), 5000, 10, &missing, &err);
		uint8_t		buf[16];

		if (r)
		{
			(void) storage_read(r, buf, sizeof(buf), &err);
			storage_read_close(r);
		}
		ok(!missing && pgbr_error_is_set(&err) && strstr(err.message, "dir/a") != NULL,
		   "a range starting beyond the end fails (at open or first read)");
		if (pgbr_error_is_set(&err))
			diag("%s", err.message);
		pgbr_error_init(&err);
	}

	/* missing files */
	{
		StorageRead *r = storage_read_open(st, P("dir/none"), 0, UINT64_MAX, &missing, &err);

		ok(r == NULL && missing && !pgbr_error_is_set(&err), "missing file: missing=true, no error");
		storage_read_close(r);
		report(&err);
		pgbr_error_init(&err);
		ok(storage_get(st, P("dir/none"), 100, &b, &missing, &err) && missing,
		   "storage_get of a missing file: missing=true");
		report(&err);
	}

	/* discard leaves nothing */
	pgbr_error_init(&err);
	ok(write_file(P("dir/discarded"), 5000, 2, 1000, false, &err), "write a file, then discard it");
	{
		bool		exists = true;

		ok(storage_exists(st, P("dir/discarded"), &exists, &err) && !exists,
		   "a discarded file does not exist");
		report(&err);
		memset(&l, 0, sizeof(l));
		ok(list_into(P("dir"), "disc", &l, &err) && l.n == 0, "nor is it listed");

		ok(storage_exists(st, P("dir/a"), &exists, &err) && exists, "exists: a file");
		ok(storage_exists(st, P("dir/sub"), &exists, &err) && exists, "exists: a directory");
		ok(storage_remove(st, P("dir/a"), &err), "remove a");
		ok(storage_exists(st, P("dir/a"), &exists, &err) && !exists, "a is gone");
		ok(storage_remove(st, P("dir/a"), &err), "removing a missing file is fine");
		report(&err);
	}

	/* commit under a name known only at the end */
	ok(write_file_as(P("dir/x"), P("dir/x-final"), 3000, 5, 1000, true, &err) &&
	   present(P("dir/x-final")) && !present(P("dir/x")),
	   "storage_commit_as: the file appears under the final name only");
	report(&err);
	ok(read_check(P("dir/x-final"), 0, UINT64_MAX, 3000, 5, 4096, &err), "and reads back");
	report(&err);

	/* overwrite: commit replaces */
	ok(storage_put(st, P("dir/sub/b"), "bye", 3, &err) &&
	   storage_get(st, P("dir/sub/b"), 100, &b, &missing, &err) && b.len == 3 &&
	   memcmp(b.data, "bye", 3) == 0, "commit over an existing file replaces it");
	report(&err);
	pgbr_buf_release(&b);
}

static void
test_big_file(void)
{
	PgbrError	err;
	uint64_t	mb = getenv("STORAGE_BIG_MB") ? strtoull(getenv("STORAGE_BIG_MB"), NULL, 10) : 20;
	uint64_t	len = mb * 1024 * 1024 + 12345;
	Listed		l;

	pgbr_error_init(&err);
	ok(write_file(P("big/file"), len, 3, 1000 * 1000, true, &err),
	   "a %llu-byte file (multipart on s3) in 1 MB writes", (unsigned long long) len);
	report(&err);
	ok(read_check(P("big/file"), 0, UINT64_MAX, len, 3, 256 * 1024, &err),
	   "reads back byte-identical");
	report(&err);
	ok(read_check(P("big/file"), 8 * 1024 * 1024 - 100, 3 * 1024 * 1024, 3 * 1024 * 1024, 3,
				  100000, &err), "a 3 MiB range across the part boundary");
	report(&err);
	memset(&l, 0, sizeof(l));
	l.names[0] = "file";
	ok(list_into(P("big"), "", &l, &err) && l.n == 1 && l.size_a == len, "listed with its size");

	ok(write_file_as(P("big/tmpname"), P("big/named"), 9 * 1024 * 1024 + 1, 6, 1024 * 1024, true,
					 &err) && present(P("big/named")) && !present(P("big/tmpname")),
	   "a 9 MiB file committed under a final name");
	report(&err);
	ok(read_check(P("big/named"), 0, UINT64_MAX, 9 * 1024 * 1024 + 1, 6, 65536, &err),
	   "reads back byte-identical");
	report(&err);
	memset(&l, 0, sizeof(l));
	ok(list_into(P("big"), "", &l, &err) && l.n == 2, "big lists file and named, no temporary");
	ok(storage_remove(st, P("big/named"), &err), "remove it");

	/* discarded after more than one part: nothing, not even the parts */
	ok(write_file(P("big/discarded"), 17 * 1024 * 1024, 4, 1024 * 1024, false, &err),
	   "a 17 MiB file written and discarded");
	memset(&l, 0, sizeof(l));
	ok(list_into(P("big"), "", &l, &err) && l.n == 1, "is not listed");
	report(&err);
}

static void
test_pagination(void)
{
	PgbrError	err;
	bool		s3 = strcmp(st->driver->type, "s3") == 0;
	int			count = getenv("STORAGE_LIST_COUNT") ? atoi(getenv("STORAGE_LIST_COUNT")) :
		(s3 ? 1010 : 50);
	int			made = 0;
	bool		good;
	Listed		l;
	double		t0 = now_s();

	pgbr_error_init(&err);
	for (int i = 0; i < count; i++)
	{
		char		body[32];
		int			n = snprintf(body, sizeof(body), "%d", i);

		if (!storage_put(st, P("many/f%05d", i), body, (size_t) n, &err))
			break;
		made++;
	}
	ok(made == count, "created %d small files (%.0f per second)", count, made / (now_s() - t0));
	report(&err);
	memset(&l, 0, sizeof(l));
	l.names[0] = "f00000";
	l.names[1] = "f00999";
	if (count > 1000)
	{
		static char lastname[16];

		snprintf(lastname, sizeof(lastname), "f%05d", count - 1);
		l.names[2] = lastname;
	}
	good = list_into(P("many"), "", &l, &err);
	ok(good && l.n == count, "listing shows all %d (pagination followed)", l.n);
	report(&err);
	if (count > 1000)
		ok(l.saw[0] && l.saw[1] && l.saw[2], "first, 1000th and last are there");
	memset(&l, 0, sizeof(l));
	ok(list_into(P("many"), "f0000", &l, &err) && l.n == (count < 10 ? count : 10),
	   "a name prefix narrows the listing");
	t0 = now_s();
	good = storage_remove_tree(st, P("many"), &err);
	ok(good, "remove_tree of the %d files (%.1f s)", count, now_s() - t0);
	report(&err);
	memset(&l, 0, sizeof(l));
	ok(list_into(P("many"), "", &l, &err) && l.n == 0, "nothing left");
}

static void
test_locks(void)
{
	PgbrError	err;
	StorageLock *a,
			   *b;
	double		t0,
				t1;

	pgbr_error_init(&err);
	a = storage_lock(st, P("lock/backup"), 0, &err);
	ok(a != NULL, "first lock taken");
	report(&err);
	t0 = now_s();
	b = storage_lock(st, P("lock/backup"), 0, &err);
	t1 = now_s() - t0;
	ok(b == NULL && err.code == PGBR_ERR_LOCK, "second lock fails with PGBR_ERR_LOCK");
	ok(t1 < 2.0, "and fails fast (%.3f s)", t1);
	if (pgbr_error_is_set(&err))
		diag("%s", err.message);
	pgbr_error_init(&err);
	t0 = now_s();
	b = storage_lock(st, P("lock/backup"), 700, &err);
	t1 = now_s() - t0;
	ok(b == NULL && err.code == PGBR_ERR_LOCK && t1 >= 0.69,
	   "with wait_ms=700 it fails after waiting (%.3f s)", t1);
	pgbr_error_init(&err);
	storage_lock_refresh(a);
	storage_unlock(a);
	b = storage_lock(st, P("lock/backup"), 0, &err);
	ok(b != NULL, "after unlock it succeeds");
	report(&err);
	a = storage_lock(st, P("lock/other"), 0, &err);
	ok(a != NULL, "a lock of another name is independent");
	storage_unlock(a);
	storage_unlock(b);
}

static void
bench(void)
{
	PgbrError	err;
	uint64_t	mb = getenv("STORAGE_BENCH_MB") ? strtoull(getenv("STORAGE_BENCH_MB"), NULL, 10) : 0;
	uint64_t	len = mb * 1024 * 1024;
	StorageFile *f;
	uint8_t    *buf;
	double		t0,
				t1;
	bool		good;
	bool		missing;

	if (mb == 0)
		return;
	pgbr_error_init(&err);
	buf = malloc(PGBR_CHUNK_SIZE);
	fill(buf, PGBR_CHUNK_SIZE, 0, 9);
	t0 = now_s();
	f = storage_create(st, P("bench/file"), STORAGE_DEFER_SYNC, &err);
	good = f != NULL;
	for (uint64_t done = 0; good && done < len; done += PGBR_CHUNK_SIZE)
		good = storage_write(f, buf, PGBR_CHUNK_SIZE, &err);
	good = good && storage_commit(f, &err) && storage_sync(st, P("bench"), &err);
	t1 = now_s();
	ok(good, "bench: PUT %llu MiB in %.2f s = %.0f MiB/s", (unsigned long long) mb, t1 - t0,
	   mb / (t1 - t0));
	report(&err);
	t0 = now_s();
	{
		StorageRead *r = storage_read_open(st, P("bench/file"), 0, UINT64_MAX, &missing, &err);
		uint64_t	got = 0;
		ssize_t		n = -1;

		while (r && (n = storage_read(r, buf, PGBR_CHUNK_SIZE, &err)) > 0)
			got += (uint64_t) n;
		storage_read_close(r);
		t1 = now_s();
		ok(n == 0 && got == len, "bench: GET %llu MiB in %.2f s = %.0f MiB/s",
		   (unsigned long long) mb, t1 - t0, mb / (t1 - t0));
	}
	report(&err);
	free(buf);
}

/*
 * Small consecutive ranges of two objects read in turn, as a restore reads
 * the files of two bundles: every piece must be right, including the ones
 * an s3 back end serves from the window it read ahead.
 */
static void
test_bundle_reads(void)
{
	PgbrError	err;
	bool		good = true;
	int			pieces = 0;

	pgbr_error_init(&err);
	ok(write_file(P("bundle/one"), 3 * 1024 * 1024 + 777, 11, 65536, true, &err) &&
	   write_file(P("bundle/two"), 5 * 1024 * 1024 + 5, 12, 65536, true, &err),
	   "two bundle-like files of 3 and 5 MiB");
	report(&err);
	for (uint64_t off = 0; good && off < 3 * 1024 * 1024; off += 40961)
	{
		uint64_t	len = 1 + (off * 7) % 40960;

		good = read_check(P("bundle/one"), off, len, len, 11, 8192, &err) &&
			read_check(P("bundle/two"), off * 5 / 3, len, len, 12, 8192, &err);
		pieces += 2;
	}
	ok(good, "%d small ranges read in turn from both come back right", pieces);
	report(&err);
	ok(read_check(P("bundle/one"), 3 * 1024 * 1024, 777, 777, 11, 100, &err),
	   "the last bytes of the first (past a read-ahead window)");
	report(&err);
	pgbr_error_init(&err);
	ok(!read_check(P("bundle/one"), 3 * 1024 * 1024 + 700, 100, 100, 11, 100, &err) &&
	   pgbr_error_is_set(&err), "a small range running past its end still fails");
	pgbr_error_init(&err);
}

int
main(int argc, char **argv)
{
	PgbrConfig *cfg;
	PgbrError	err;

	if (argc < 2 || argc > 3)
	{
		fprintf(stderr, "usage: %s CONFIG [STANZA]\n", argv[0]);
		return 2;
	}
	pgbr_log_setup(PGBR_LOG_WARN, false);
	pgbr_error_init(&err);
	cfg = pgbr_config_create();
	if (!pgbr_config_load_file(cfg, argv[1], false, &err))
	{
		fprintf(stderr, "%s\n", err.message);
		return 2;
	}
	if (argc == 3)
		pgbr_config_set_stanza(cfg, argv[2]);
	st = storage_open(cfg, &err);
	if (!ok(st != NULL, "storage_open (repo1-type=%s)", pgbr_config_get(cfg, "repo1-type")))
	{
		report(&err);
		return done_testing() ? 1 : 1;
	}
	diag("%s", st->where);
	snprintf(base, sizeof(base), "conformance-%d", (int) getpid());

	test_small_files();
	test_bundle_reads();
	test_big_file();
	test_pagination();
	test_locks();
	bench();

	pgbr_error_init(&err);
	ok(storage_remove_tree(st, base, &err), "remove_tree of everything the test wrote");
	report(&err);
	{
		Listed		l;

		memset(&l, 0, sizeof(l));
		ok(list_into(base, "", &l, &err) && l.n == 0, "and nothing is left");
	}
	storage_close(st);
	pgbr_config_free(cfg);
	return done_testing();
}
