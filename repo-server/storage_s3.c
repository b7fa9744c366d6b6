/*
 * storage_s3.c
 *		The repository in an S3 bucket (repo1-type=s3), under the key prefix
 *		repo1-path.  The requests themselves are in s3.c.
 *
 * Writing: a file is buffered up to one part (8 MiB).  One that stays
 * smaller goes up as a single PUT at commit, under its final name; a bigger
 * one becomes a multipart upload whose parts are sent as they fill, so
 * memory stays at one part whatever the file size.  The upload's key is
 * fixed when it starts, before commit may name the file (storage_commit_as),
 * so it goes to a temporary "<dir>/.<name>.<pid>-<random>.tmp", which is
 * completed at commit, copied (server-side) to the final name and removed.
 * Either way the object appears only when S3 confirms the PUT or the copy;
 * a discarded file aborts its upload and never appears.  Listings hide
 * temporary names, as posix's do.
 *
 * Reading: range GETs of 4 MiB windows on the client's reused connection
 * (on loopback RGW, 1 MiB windows read about 300 MiB/s, 4-8 MiB 330-420).
 *
 * Locks: storage_s3_lock.c.
 */
#include "storage.h"
#include "s3.h"
#include "pgbr_log.h"

#include <errno.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "storage_s3_int.h"

#define S3_PART_SIZE		(8 * 1024 * 1024)
#define S3_READ_WINDOW		(4 * 1024 * 1024)

struct StorageFile
{
	Storage    *st;
	char		key[S3_KEY_MAX];
	char		tmpkey[S3_KEY_MAX];	/* of the multipart upload */
	uint8_t    *part;			/* the part being filled */
	size_t		used;
	size_t		cap;
	PgbrBuf		upload_id;		/* empty until a first part is sent */
	char	  **etags;
	int			nparts;
	int			etagcap;
	bool		failed;
};

struct StorageRead
{
	Storage    *st;
	char		key[S3_KEY_MAX];
	uint64_t	pos;			/* next byte to fetch */
	uint64_t	end;			/* one past the last byte wanted; UINT64_MAX: unknown */
	bool		whole;			/* to the end of the object */
	PgbrBuf		win;			/* the window fetched last */
	size_t		wpos;
};


S3State *
s3_state(Storage *st)
{
	return st->priv;
}

bool
s3_key_of(Storage *st, char *out, const char *path, PgbrError *err)
{
	int			n = snprintf(out, S3_KEY_MAX, "%s%s", s3_state(st)->prefix, path);

	if (n < 0 || n >= S3_KEY_MAX)
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "repository path \"%.80s...\" is too long",
							  path);
	return true;
}

/* "<key of dir>/", or the prefix itself for the root */
bool
s3_dir_key(Storage *st, char *out, const char *dir, PgbrError *err)
{
	int			n = snprintf(out, S3_KEY_MAX, "%s%s%s", s3_state(st)->prefix, dir, dir[0] ? "/" : "");

	if (n < 0 || n >= S3_KEY_MAX)
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "repository path \"%.80s...\" is too long",
							  dir);
	return true;
}

/* credentials: command line, then the environment, then the file */
static const char *
credential(const PgbrConfig *cfg, const char *option, const char *envname)
{
	const char *v = pgbr_config_get(cfg, option);
	const char *env = getenv(envname);

	if (v != NULL && strcmp(pgbr_config_source(cfg, option), "command line") == 0)
		return v;
	if (env != NULL && env[0] != '\0')
		return env;
	return v;
}

static bool
s3_open(Storage *st, const PgbrConfig *cfg, PgbrError *err)
{
	static bool warned_http;
	const char *path = pgbr_config_get(cfg, "repo1-path");
	const char *key = credential(cfg, "repo1-s3-key", "PGBR_REPO1_S3_KEY");
	const char *secret = credential(cfg, "repo1-s3-key-secret", "PGBR_REPO1_S3_KEY_SECRET");
	const char *ca = pgbr_config_get(cfg, "repo1-s3-ca-file");
	S3Options	opt;
	S3State    *s;
	PgbrBuf		prefix;

	if (!pgbr_config_require(cfg, "repo1-s3-endpoint", err) ||
		!pgbr_config_require(cfg, "repo1-s3-bucket", err))
		return false;
	if (key == NULL || secret == NULL)
	{
		const char *name = key == NULL ? "repo1-s3-key" : "repo1-s3-key-secret";

		pgbr_error_set(err, PGBR_ERR_OPTION_REQUIRED,
					   "option \"%s\" is required for repo1-type=s3 but not set in \"%s\"", name,
					   pgbr_config_path(cfg) ? pgbr_config_path(cfg) : PGBR_CONFIG_DEFAULT_PATH);
		pgbr_error_hint(err, "Set %s in the [global] section, or %s in pgbr-server's environment.",
						name, key == NULL ? "PGBR_REPO1_S3_KEY" : "PGBR_REPO1_S3_KEY_SECRET");
		return false;
	}

	/* repo1-path is the key prefix: no leading '/', "/" is the bucket root */
	pgbr_buf_init(&prefix);
	for (const char *p = path ? path : ""; *p;)
	{
		size_t		n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		{
			pgbr_buf_release(&prefix);
			pgbr_error_set(err, PGBR_ERR_OPTION,
						   "invalid value \"%s\" for option \"repo1-path\": \".\" and \"..\" are not allowed with repo1-type=s3",
						   path);
			return false;
		}
		pgbr_buf_put(&prefix, p, n);
		pgbr_buf_put(&prefix, "/", 1);
		p += n;
	}
	pgbr_buf_put(&prefix, "", 0);

	memset(&opt, 0, sizeof(opt));
	opt.endpoint = pgbr_config_get(cfg, "repo1-s3-endpoint");
	opt.bucket = pgbr_config_get(cfg, "repo1-s3-bucket");
	opt.region = pgbr_config_get(cfg, "repo1-s3-region");
	opt.access_key = key;
	opt.secret_key = secret;
	opt.path_style = strcmp(pgbr_config_get(cfg, "repo1-s3-uri-style"), "path") == 0;
	opt.verify_tls = pgbr_config_get_bool(cfg, "repo1-s3-verify-tls");
	opt.ca_file = ca;
	opt.io_timeout_s = (int) pgbr_config_get_int(cfg, "io-timeout");

	s = pgbr_malloc(sizeof(S3State));
	memset(s, 0, sizeof(S3State));
	for (int i = 0; i < S3_CACHE_SLOTS; i++)
		pgbr_buf_init(&s->cache[i].data);
	s->client = s3_client_create(&opt, err);
	if (s->client == NULL)
	{
		pgbr_free(s);
		pgbr_buf_release(&prefix);
		return false;
	}
	s->bucket = pgbr_strdup(opt.bucket);
	s->prefix = pgbr_strdup((const char *) prefix.data);
	pgbr_buf_release(&prefix);
	st->priv = s;
	st->atomic_names = false;
	if (s->prefix[0])
		snprintf(st->where, sizeof(st->where), "bucket \"%s\", prefix \"%.*s\"", s->bucket,
				 (int) strlen(s->prefix) - 1, s->prefix);
	else
		snprintf(st->where, sizeof(st->where), "bucket \"%s\"", s->bucket);

	if (s3_client_plain_http(s->client) && !warned_http)
	{
		warned_http = true;
		pgbr_log(PGBR_LOG_WARN,
				 "repo1-s3-endpoint \"%s\" uses plain http: repository data and requests travel unencrypted",
				 opt.endpoint);
	}
	if (!opt.verify_tls && !s3_client_plain_http(s->client))
		pgbr_log(PGBR_LOG_DEBUG, "repo1-s3-verify-tls=n: the certificate of \"%s\" is not checked",
				 opt.endpoint);
	return true;
}

static void
s3_close(Storage *st)
{
	S3State    *s = st->priv;

	if (s == NULL)
		return;
	s3_client_free(s->client);
	for (int i = 0; i < S3_CACHE_SLOTS; i++)
	{
		pgbr_free(s->cache[i].key);
		pgbr_buf_release(&s->cache[i].data);
	}
	pgbr_free(s->bucket);
	pgbr_free(s->prefix);
	pgbr_free(s);
	st->priv = NULL;
}

/* ---- writing ---- */

static StorageFile *
s3_create(Storage *st, const char *path, int flags, PgbrError *err)
{
	StorageFile *f = pgbr_malloc(sizeof(StorageFile));

	(void) flags;				/* a confirmed PUT is durable: nothing to defer */
	memset(f, 0, sizeof(StorageFile));
	f->st = st;
	pgbr_buf_init(&f->upload_id);
	if (!s3_key_of(st, f->key, path, err))
	{
		pgbr_free(f);
		return NULL;
	}
	/* ".<name>.<pid>-<random>.tmp" next to it */
	{
		const char *slash = strrchr(f->key, '/');
		int			dirlen = slash ? (int) (slash - f->key + 1) : 0;
		unsigned char rnd[4] = {0};
		int			n;

		(void) RAND_bytes(rnd, sizeof(rnd));
		n = snprintf(f->tmpkey, sizeof(f->tmpkey), "%.*s.%s.%d-%02x%02x%02x%02x.tmp", dirlen,
					 f->key, f->key + dirlen, (int) getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
		if (n < 0 || (size_t) n >= sizeof(f->tmpkey))
		{
			pgbr_free(f);
			pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "repository path \"%.80s...\" is too long",
						   path);
			return NULL;
		}
	}
	return f;
}

/* sends the full part buffer as the next part of the multipart upload */
static bool
send_part(StorageFile *f, PgbrError *err)
{
	S3Client   *c = s3_state(f->st)->client;
	char		etag[128];

	if (f->upload_id.len == 0 && !s3_multipart_create(c, f->tmpkey, &f->upload_id, err))
		return false;
	if (!s3_multipart_part(c, f->tmpkey, (const char *) f->upload_id.data, f->nparts + 1, f->part,
						   f->used, etag, sizeof(etag), err))
		return false;
	if (f->nparts == f->etagcap)
	{
		f->etagcap = f->etagcap ? f->etagcap * 2 : 16;
		f->etags = pgbr_realloc(f->etags, sizeof(char *) * (size_t) f->etagcap);
	}
	f->etags[f->nparts++] = pgbr_strdup(etag);
	f->used = 0;
	return true;
}

static bool
s3_write(StorageFile *f, const void *data, size_t len, PgbrError *err)
{
	const uint8_t *p = data;

	if (f->failed)
		return pgbr_error_set(err, PGBR_ERR_FILE_WRITE,
							  "S3 PUT \"%s\" in bucket \"%s\": an earlier write failed", f->key,
							  s3_state(f->st)->bucket);
	while (len > 0)
	{
		size_t		n;

		/* a full part goes out only when more data follows it */
		if (f->used == S3_PART_SIZE && !send_part(f, err))
		{
			f->failed = true;
			return false;
		}
		n = S3_PART_SIZE - f->used;
		if (n > len)
			n = len;
		if (f->used + n > f->cap)
		{
			size_t		cap = f->cap ? f->cap : 64 * 1024;

			while (cap < f->used + n)
				cap *= 2;
			if (cap > S3_PART_SIZE)
				cap = S3_PART_SIZE;
			f->part = pgbr_realloc(f->part, cap);
			f->cap = cap;
		}
		memcpy(f->part + f->used, p, n);
		f->used += n;
		p += n;
		len -= n;
	}
	return true;
}

static void
free_file(StorageFile *f)
{
	for (int i = 0; i < f->nparts; i++)
		pgbr_free(f->etags[i]);
	pgbr_free(f->etags);
	pgbr_free(f->part);
	pgbr_buf_release(&f->upload_id);
	pgbr_free(f);
}

static void
abort_upload(StorageFile *f)
{
	PgbrError	e;

	if (f->upload_id.len == 0)
		return;
	pgbr_error_init(&e);
	if (!s3_multipart_abort(s3_state(f->st)->client, f->tmpkey, (const char *) f->upload_id.data, &e))
		pgbr_log(PGBR_LOG_WARN, "could not abort the upload of \"%s\": %s", f->tmpkey, e.message);
}

static void
s3_discard(StorageFile *f)
{
	abort_upload(f);
	free_file(f);
}

static bool
s3_commit(StorageFile *f, const char *final, PgbrError *err)
{
	S3Client   *c = s3_state(f->st)->client;
	char		target[S3_KEY_MAX];
	bool		ok;

	if (final != NULL && !s3_key_of(f->st, target, final, err))
		ok = false;
	else if (final == NULL)
		ok = snprintf(target, sizeof(target), "%s", f->key) > 0;
	else
		ok = true;

	if (!ok)
		;
	else if (f->failed)
		ok = pgbr_error_set(err, PGBR_ERR_FILE_WRITE,
							"S3 PUT \"%s\" in bucket \"%s\": an earlier write failed", f->key,
							s3_state(f->st)->bucket);
	else if (f->upload_id.len == 0)
		ok = s3_put(c, target, f->part, f->used, err);
	else
	{
		ok = (f->used == 0 || send_part(f, err)) &&
			s3_multipart_complete(c, f->tmpkey, (const char *) f->upload_id.data, f->etags,
								  f->nparts, err);
		if (ok)
		{
			PgbrError	e;

			/* the upload is complete: nothing to abort any more, only to remove */
			pgbr_buf_reset(&f->upload_id);
			ok = s3_copy(c, f->tmpkey, target, err);
			pgbr_error_init(&e);
			if (!s3_delete(c, f->tmpkey, &e))
				pgbr_log(PGBR_LOG_WARN, "could not remove temporary object \"%s\": %s", f->tmpkey,
						 e.message);
		}
	}
	if (!ok)
		abort_upload(f);
	free_file(f);
	return ok;
}

/* ---- reading ---- */

static bool
short_read(StorageRead *r, uint64_t total, PgbrError *err)
{
	return pgbr_error_set(err, PGBR_ERR_FILE_READ,
						  "\"%s\" in bucket \"%s\" ends at byte %llu, before the range that was asked for",
						  r->key, s3_state(r->st)->bucket, (unsigned long long) total);
}

/* serves want bytes at r->pos from a read-ahead window, if one has them */
static bool
from_cache(StorageRead *r, uint64_t want)
{
	S3State    *s = s3_state(r->st);

	for (int i = 0; i < S3_CACHE_SLOTS; i++)
	{
		S3Window   *w = &s->cache[i];

		if (w->key == NULL || strcmp(w->key, r->key) != 0 || r->pos < w->off ||
			r->pos + want > w->off + w->data.len)
			continue;
		pgbr_buf_put(&r->win, w->data.data + (r->pos - w->off), (size_t) want);
		r->pos += want;
		w->used = ++s->clock;
		return true;
	}
	return false;
}

/* keeps what a GET returned as a read-ahead window */
static void
to_cache(StorageRead *r, uint64_t off, const PgbrBuf *data, uint64_t total)
{
	S3State    *s = s3_state(r->st);
	S3Window   *w = &s->cache[0];

	for (int i = 1; i < S3_CACHE_SLOTS; i++)
		if (s->cache[i].used < w->used)
			w = &s->cache[i];
	pgbr_free(w->key);
	w->key = pgbr_strdup(r->key);
	w->off = off;
	pgbr_buf_reset(&w->data);
	pgbr_buf_put(&w->data, data->data, data->len);
	w->total = total;
	w->used = ++s->clock;
}

/* fetches the next window; *missing only on the first one */
static bool
fetch(StorageRead *r, bool first, bool *missing, PgbrError *err)
{
	S3Response	resp;
	uint64_t	want = S3_READ_WINDOW;
	uint64_t	ask;
	unsigned long long a,
				b,
				total;

	if (r->end != UINT64_MAX && r->end - r->pos < want)
		want = r->end - r->pos;
	r->wpos = 0;
	pgbr_buf_reset(&r->win);
	if (want == 0)
		return true;
	if (!r->whole && want < S3_READ_WINDOW && from_cache(r, want))
		return true;
	/* a small range of a bigger object: read a whole window ahead */
	ask = !r->whole && want < S3_READ_WINDOW ? S3_READ_WINDOW : want;
	if (!s3_get(s3_state(r->st)->client, r->key, r->pos, ask, &r->win, &resp, err))
		return false;
	if (resp.status == 404)
	{
		if (first)
		{
			*missing = true;
			return false;
		}
		return pgbr_error_set(err, PGBR_ERR_FILE_READ,
							  "\"%s\" in bucket \"%s\" disappeared while it was read", r->key,
							  s3_state(r->st)->bucket);
	}
	if (resp.status == 416)
	{
		/* only an empty object has no byte 0 */
		if (first && r->pos == 0 && r->whole)
		{
			r->end = 0;
			return true;
		}
		return short_read(r, r->pos, err);
	}
	if (resp.status == 200)
	{
		/* a server that ignores Range sent the whole (small) object */
		if (r->pos != 0)
			return pgbr_error_set(err, PGBR_ERR_FILE_READ,
								  "S3 GET \"%s\" in bucket \"%s\": the server ignored the Range header",
								  r->key, s3_state(r->st)->bucket);
		a = 0;
		total = r->win.len;
		b = total ? total - 1 : 0;
	}
	else if (sscanf(resp.content_range, "bytes %llu-%llu/%llu", &a, &b, &total) != 3 ||
			 a != r->pos || b < a || b - a + 1 != r->win.len)
		return pgbr_error_set(err, PGBR_ERR_FILE_READ,
							  "S3 GET \"%s\" in bucket \"%s\": unexpected answer to a range request (Content-Range \"%s\", %zu bytes)",
							  r->key, s3_state(r->st)->bucket, resp.content_range, r->win.len);
	if (ask > want && r->win.len > 0)
	{
		/* keep the whole window, hand out what was asked for */
		to_cache(r, r->pos, &r->win, total);
		if (r->win.len > want)
			r->win.len = (size_t) want;
	}
	if (r->whole)
		r->end = total;
	else if (total < r->end)
		return short_read(r, total, err);
	r->pos += r->win.len;
	if (r->win.len == 0 && r->pos < r->end)
		return short_read(r, r->pos, err);
	return true;
}

static StorageRead *
s3_read_open(Storage *st, const char *path, uint64_t offset, uint64_t length, bool *missing,
			 PgbrError *err)
{
	StorageRead *r = pgbr_malloc(sizeof(StorageRead));

	*missing = false;
	memset(r, 0, sizeof(StorageRead));
	r->st = st;
	pgbr_buf_init(&r->win);
	r->pos = offset;
	r->whole = length == UINT64_MAX || length > UINT64_MAX - offset;
	r->end = r->whole ? UINT64_MAX : offset + length;
	if (!s3_key_of(st, r->key, path, err))
	{
		pgbr_free(r);
		return NULL;
	}
	if (length == 0)
	{
		/* nothing to read, but the caller still learns whether it exists */
		bool		exists;

		if (!s3_head(s3_state(st)->client, r->key, &exists, NULL, err) || !exists)
		{
			*missing = !pgbr_error_is_set(err) && !exists;
			pgbr_free(r);
			return NULL;
		}
		return r;
	}
	if (!fetch(r, true, missing, err))
	{
		pgbr_buf_release(&r->win);
		pgbr_free(r);
		return NULL;
	}
	return r;
}

static ssize_t
s3_read(StorageRead *r, void *buf, size_t len, PgbrError *err)
{
	size_t		n;
	bool		missing = false;

	if (r->wpos == r->win.len)
	{
		if (r->pos >= r->end)
			return 0;
		if (!fetch(r, false, &missing, err))
			return -1;
		if (r->win.len == 0)
			return 0;
	}
	n = r->win.len - r->wpos;
	if (n > len)
		n = len;
	memcpy(buf, r->win.data + r->wpos, n);
	r->wpos += n;
	return (ssize_t) n;
}

static void
s3_read_close(StorageRead *r)
{
	pgbr_buf_release(&r->win);
	pgbr_free(r);
}

/* ---- listing and removing ---- */

typedef struct ListCtx
{
	size_t		skip;			/* length of the listed prefix's directory part */
	StorageListFn fn;
	void	   *arg;
} ListCtx;

static bool
list_item(void *arg, const S3ListItem *item, PgbrError *err)
{
	ListCtx    *ctx = arg;
	StorageEntry e;
	char		name[S3_KEY_MAX];
	size_t		len;

	if (strlen(item->key) <= ctx->skip)
		return true;			/* the directory marker of some tools: "dir/" */
	snprintf(name, sizeof(name), "%s", item->key + ctx->skip);
	len = strlen(name);
	if (item->is_prefix && len > 0 && name[len - 1] == '/')
		name[--len] = '\0';
	if (len == 0)
		return true;
	/* ".<name>.<anything>.tmp" is a file being written (storage.h) */
	if (!item->is_prefix && name[0] == '.' && len > 5 && strcmp(name + len - 4, ".tmp") == 0)
		return true;
	memset(&e, 0, sizeof(e));
	e.name = name;
	e.is_dir = item->is_prefix;
	e.size = item->size;
	e.mtime = item->mtime;
	return ctx->fn(ctx->arg, &e, err);
}

static bool
s3_list_dir(Storage *st, const char *dir, const char *prefix, StorageListFn fn, void *arg,
			PgbrError *err)
{
	char		dk[S3_KEY_MAX];
	char		full[S3_KEY_MAX];
	ListCtx		ctx;

	if (!s3_dir_key(st, dk, dir, err))
		return false;
	if ((size_t) snprintf(full, sizeof(full), "%s%s", dk, prefix) >= sizeof(full))
		return pgbr_error_set(err, PGBR_ERR_FILE_OPEN, "repository path \"%.80s...\" is too long", dir);
	ctx.skip = strlen(dk);
	ctx.fn = fn;
	ctx.arg = arg;
	return s3_list(s3_state(st)->client, full, "/", list_item, &ctx, NULL, err);
}

static bool
any_item(void *arg, const S3ListItem *item, PgbrError *err)
{
	*(bool *) arg = true;
	return false;
}

static bool
s3_exists(Storage *st, const char *path, bool *exists, PgbrError *err)
{
	char		key[S3_KEY_MAX];

	*exists = false;
	if (!s3_key_of(st, key, path, err) || !s3_head(s3_state(st)->client, key, exists, NULL, err))
		return false;
	if (*exists)
		return true;
	/* a "directory": anything below path/ (posix's exists sees them too) */
	if (!s3_dir_key(st, key, path, err))
		return false;
	return s3_list(s3_state(st)->client, key, "/", any_item, exists, NULL, err);
}

static bool
s3_remove(Storage *st, const char *path, PgbrError *err)
{
	char		key[S3_KEY_MAX];

	return s3_key_of(st, key, path, err) && s3_delete(s3_state(st)->client, key, err);
}

static bool
delete_item(void *arg, const S3ListItem *item, PgbrError *err)
{
	return s3_delete(((S3State *) arg)->client, item->key, err);
}

static bool
s3_remove_tree(Storage *st, const char *dir, PgbrError *err)
{
	char		dk[S3_KEY_MAX];

	if (dir[0] == '\0' && s3_state(st)->prefix[0] == '\0')
		return pgbr_error_set(err, PGBR_ERR_ASSERT, "refusing to remove every object of bucket \"%s\"",
							  s3_state(st)->bucket);
	/* s3_list parses a page before fn sees it, so deleting while listing is safe */
	return s3_dir_key(st, dk, dir, err) &&
		s3_list(s3_state(st)->client, dk, NULL, delete_item, s3_state(st), NULL, err);
}

static bool
s3_sync(Storage *st, const char *dir, PgbrError *err)
{
	return true;				/* every commit was confirmed durable */
}

const StorageDriver storage_s3_driver = {
	.type = "s3",
	.open = s3_open,
	.close = s3_close,
	.create = s3_create,
	.write = s3_write,
	.commit = s3_commit,
	.discard = s3_discard,
	.read_open = s3_read_open,
	.read = s3_read,
	.read_close = s3_read_close,
	.list = s3_list_dir,
	.exists = s3_exists,
	.remove = s3_remove,
	.remove_tree = s3_remove_tree,
	.sync = s3_sync,
	.lock = storage_s3_lock,
	.lock_refresh = storage_s3_lock_refresh,
	.unlock = storage_s3_unlock,
};
