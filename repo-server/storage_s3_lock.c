/*
 * storage_s3_lock.c
 *		Locks of the S3 back end (storage.h: lock, lock_refresh, unlock).
 *
 * Ceph 16's RGW has no conditional create (If-None-Match), so a
 * lock is the set of objects under "<path>/": each contender PUTs
 * "<path>/<host>-<pid>-<random>" and lists the prefix; if another live
 * entry is there it deletes its own and tries again a little later.  Two
 * contenders may both back off, but both cannot win: each PUTs before it
 * lists, so the later lister always sees the earlier one.  Holders re-PUT
 * their entry at most once a minute when they handle a request
 * (lock_refresh); a session may idle up to an hour between requests, so
 * an entry is taken for one left by a process that died only once it is
 * two hours old by the S3 server's own clock (the Date of the listing), or
 * at once when it names this host and a process that no longer exists.
 */
#include "storage_s3_int.h"
#include "pgbr_log.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define S3_LOCK_STALE_S		7200
#define S3_LOCK_REFRESH_S	60
#define S3_LOCK_FOREVER_MS	(10 * 60 * 1000)

struct StorageLock
{
	Storage    *st;
	char		key[S3_KEY_MAX];	/* our entry */
	char		body[256];
	struct timespec last_put;
};

typedef struct LockScan
{
	const char *ours;			/* our entry's key */
	int64_t		now;			/* the S3 server's clock */
	char		holder[256];	/* another live entry's name */
	size_t		skip;
	Storage    *st;
} LockScan;

/* "<host>-<pid>-<16 hex>" of this host, whose process is gone */
static bool
owner_gone(const char *owner)
{
	const char *rnd = strrchr(owner, '-');
	const char *p;

	if (rnd == NULL || rnd == owner)
		return false;
	for (p = rnd - 1; p > owner && *p != '-'; p--)
		;
	return *p == '-' && storage_process_gone(owner, (size_t) (p - owner), strtol(p + 1, NULL, 10));
}

static bool
lock_item(void *arg, const S3ListItem *item, PgbrError *err)
{
	LockScan   *ls = arg;

	if (strcmp(item->key, ls->ours) == 0)
		return true;
	if (ls->now - item->mtime > S3_LOCK_STALE_S || owner_gone(item->key + ls->skip))
	{
		PgbrError	e;

		/* left by a process that died: clear it, but it does not count anyway */
		pgbr_error_init(&e);
		pgbr_log(PGBR_LOG_INFO, "removing stale lock entry \"%s\" in %s (%lld s old)", item->key,
				 ls->st->where, (long long) (ls->now - item->mtime));
		(void) s3_delete(s3_state(ls->st)->client, item->key, &e);
		return true;
	}
	if (ls->holder[0] == '\0')
		snprintf(ls->holder, sizeof(ls->holder), "%s", item->key + ls->skip);
	return true;
}

static int64_t
elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t) (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

StorageLock *
storage_s3_lock(Storage *st, const char *path, int wait_ms, PgbrError *err)
{
	S3Client   *c = s3_state(st)->client;
	StorageLock *l = pgbr_malloc(sizeof(StorageLock));
	char		dk[S3_KEY_MAX];
	char		host[128] = "localhost";
	unsigned char rnd[8];
	char		owner[200];
	struct timespec start;
	int64_t		limit = wait_ms < 0 ? S3_LOCK_FOREVER_MS : wait_ms;

	memset(l, 0, sizeof(StorageLock));
	l->st = st;
	gethostname(host, sizeof(host) - 1);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
	{
		pgbr_free(l);
		pgbr_error_ssl(err, PGBR_ERR_RUNTIME, "could not generate random bytes");
		return NULL;
	}
	snprintf(owner, sizeof(owner), "%s-%d-%02x%02x%02x%02x%02x%02x%02x%02x", host, (int) getpid(),
			 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (!s3_dir_key(st, dk, path, err) ||
		(size_t) snprintf(l->key, sizeof(l->key), "%s%s", dk, owner) >= sizeof(l->key))
	{
		pgbr_error_set(err, PGBR_ERR_LOCK, "lock path \"%.80s...\" is too long", path);
		pgbr_free(l);
		return NULL;
	}
	snprintf(l->body, sizeof(l->body), "host=%s\npid=%d\ntime=%lld\n", host, (int) getpid(),
			 (long long) time(NULL));

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;)
	{
		LockScan	ls;
		int64_t		server_now;

		if (!s3_put(c, l->key, l->body, strlen(l->body), err))
			break;
		clock_gettime(CLOCK_MONOTONIC, &l->last_put);
		memset(&ls, 0, sizeof(ls));
		ls.ours = l->key;
		ls.skip = strlen(dk);
		ls.st = st;
		if (!s3_list(c, dk, NULL, lock_item, &ls, &server_now, err))
		{
			PgbrError	e;

			pgbr_error_init(&e);
			(void) s3_delete(c, l->key, &e);
			break;
		}
		if (ls.holder[0] == '\0')
			return l;
		/* someone else holds it (or is trying): step back */
		if (!s3_delete(c, l->key, err))
			break;
		if (elapsed_ms(&start) >= limit)
		{
			pgbr_error_set(err, PGBR_ERR_LOCK, "lock \"%s\" in bucket \"%s\" is held by %s", path,
						   s3_state(st)->bucket, ls.holder);
			pgbr_error_hint(err, "If that process is gone, its entry \"%s%s\" goes stale after %d hours; it may also be deleted by hand.",
							dk, ls.holder, S3_LOCK_STALE_S / 3600);
			break;
		}
		{
			unsigned char b[2];
			long		ms;
			struct timespec ts;

			if (RAND_bytes(b, 2) != 1)
				b[0] = b[1] = 0;
			ms = 50 + ((b[0] << 8) | b[1]) % 251;
			if (ms > limit - elapsed_ms(&start))
				ms = limit - elapsed_ms(&start) > 0 ? (long) (limit - elapsed_ms(&start)) : 0;
			ts.tv_sec = ms / 1000;
			ts.tv_nsec = (ms % 1000) * 1000000L;
			while (nanosleep(&ts, &ts) != 0)
				;
		}
	}
	pgbr_free(l);
	return NULL;
}

void
storage_s3_lock_refresh(StorageLock *l)
{
	PgbrError	e;

	if (elapsed_ms(&l->last_put) < S3_LOCK_REFRESH_S * 1000)
		return;
	pgbr_error_init(&e);
	if (s3_put(s3_state(l->st)->client, l->key, l->body, strlen(l->body), &e))
		clock_gettime(CLOCK_MONOTONIC, &l->last_put);
	else
		pgbr_log(PGBR_LOG_WARN, "could not refresh lock entry \"%s\": %s", l->key, e.message);
}

void
storage_s3_unlock(StorageLock *l)
{
	PgbrError	e;

	pgbr_error_init(&e);
	if (!s3_delete(s3_state(l->st)->client, l->key, &e))
		pgbr_log(PGBR_LOG_WARN, "could not remove lock entry \"%s\" (it goes stale in %d hours): %s",
				 l->key, S3_LOCK_STALE_S / 3600, e.message);
	pgbr_free(l);
}

