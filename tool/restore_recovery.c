/*
 * restore_recovery.c
 *		The recovery settings of a restore: a block in postgresql.auto.conf
 *		(restore_command calling this pgbr binary, the recovery target, the
 *		recovery-option settings) and the signal file that makes PostgreSQL
 *		use them.
 *
 * The block runs from RECOVERY_BLOCK_BEGIN to RECOVERY_BLOCK_END, so that a
 * later restore (or a restore of a backup taken from a restored cluster)
 * replaces it instead of stacking a second one.  Lines outside the block
 * that set what the block sets, or any recovery target, are commented out
 * like pgBackRest does ("# Removed by pgbr restore on ... # line"):
 * PostgreSQL would otherwise honour a stale recovery_target_time, or
 * refuse to start with two recovery targets.
 */
#include "restore.h"
#include "pgbr_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUTO_CONF			"postgresql.auto.conf"
#define AUTO_CONF_TMP		"postgresql.auto.conf.tmp"

typedef struct Setting
{
	char		key[128];
	const char *value;			/* points into options or a buffer that lives as long */
} Setting;

bool
recovery_type_targeted(const char *type)
{
	return strcmp(type, "default") == 0 || strcmp(type, "immediate") == 0 ||
		strcmp(type, "time") == 0 || strcmp(type, "xid") == 0 ||
		strcmp(type, "lsn") == 0 || strcmp(type, "name") == 0;
}

static bool
type_has_target(const char *type)
{
	return strcmp(type, "time") == 0 || strcmp(type, "xid") == 0 ||
		strcmp(type, "lsn") == 0 || strcmp(type, "name") == 0;
}

static bool
type_writes_block(const char *type)
{
	return strcmp(type, "preserve") != 0 && strcmp(type, "none") != 0;
}

/* "primary-conninfo=x" -> key "primary_conninfo", value "x" */
static bool
split_option(const char *opt, char *key, size_t keylen, const char **value, PgbrError *err)
{
	const char *eq = strchr(opt, '=');
	size_t		n;

	if (eq == NULL || eq == opt)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION,
					   "invalid value \"%s\" for option \"recovery-option\"", opt);
		pgbr_error_hint(err, "Use recovery-option=key=value, e.g. recovery-option=primary_conninfo=host=pg1.");
		return false;
	}
	n = (size_t) (eq - opt);
	if (n >= keylen)
		return pgbr_error_set(err, PGBR_ERR_OPTION,
							  "recovery-option key \"%.*s\" is too long", (int) n, opt);
	for (size_t i = 0; i < n; i++)
	{
		char		c = opt[i];

		if (c == '-')
			c = '_';
		if (!(isalnum((unsigned char) c) || c == '_' || c == '.') ||
			(i == 0 && isdigit((unsigned char) c)))
			return pgbr_error_set(err, PGBR_ERR_OPTION,
								  "invalid setting name \"%.*s\" in option \"recovery-option\"",
								  (int) n, opt);
		key[i] = (char) tolower((unsigned char) c);
	}
	key[n] = '\0';
	*value = eq + 1;
	return true;
}

static bool
valid_lsn(const char *s)
{
	const char *slash = strchr(s, '/');

	if (slash == NULL || slash == s || slash[1] == '\0' || slash - s > 8 || strlen(slash + 1) > 8)
		return false;
	for (const char *p = s; *p; p++)
		if (p != slash && !isxdigit((unsigned char) *p))
			return false;
	return true;
}

bool
restore_recovery_check(const RecoverySettings *rs, PgbrError *err)
{
	static const char *const types[] = {"default", "standby", "immediate", "time", "xid",
	"lsn", "name", "preserve", "none"};
	bool		known = false;

	for (size_t i = 0; i < PGBR_LENGTHOF(types); i++)
		if (strcmp(rs->type, types[i]) == 0)
			known = true;
	if (!known)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "invalid restore type \"%s\"", rs->type);
		pgbr_error_hint(err, "Valid restore types are: default, standby, immediate, time, xid, lsn, name, preserve, none.");
		return false;
	}
	if (type_has_target(rs->type) && (rs->target == NULL || rs->target[0] == '\0'))
	{
		pgbr_error_set(err, PGBR_ERR_OPTION_REQUIRED,
					   "option \"--target\" is required when option \"--type\" is \"%s\"",
					   rs->type);
		return false;
	}
	if (!type_has_target(rs->type) && rs->target != NULL)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION,
					   "option \"--target\" is not valid with \"--type=%s\"", rs->type);
		pgbr_error_hint(err, "A target goes with --type=time, xid, lsn or name.");
		return false;
	}
	if (strcmp(rs->type, "lsn") == 0 && !valid_lsn(rs->target))
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "invalid LSN \"%s\" for option \"--target\"",
					   rs->target);
		pgbr_error_hint(err, "An LSN looks like 0/3000028.");
		return false;
	}
	if (strcmp(rs->type, "xid") == 0)
	{
		for (const char *p = rs->target; *p; p++)
			if (!isdigit((unsigned char) *p))
			{
				pgbr_error_set(err, PGBR_ERR_OPTION,
							   "invalid transaction id \"%s\" for option \"--target\"", rs->target);
				return false;
			}
	}
	if (rs->target_action && !type_has_target(rs->type) && strcmp(rs->type, "immediate") != 0)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION,
					   "option \"--target-action\" is not valid with \"--type=%s\"", rs->type);
		pgbr_error_hint(err, "It goes with --type=immediate, time, xid, lsn or name.");
		return false;
	}
	if (rs->target_exclusive && !type_has_target(rs->type))
	{
		pgbr_error_set(err, PGBR_ERR_OPTION,
					   "option \"--target-exclusive\" is not valid with \"--type=%s\"", rs->type);
		return false;
	}
	if (rs->target_timeline && !type_writes_block(rs->type))
	{
		pgbr_error_set(err, PGBR_ERR_OPTION,
					   "option \"--target-timeline\" is not valid with \"--type=%s\"", rs->type);
		return false;
	}
	for (int i = 0; i < rs->noptions; i++)
	{
		char		key[128];
		const char *value;

		if (!split_option(rs->options[i], key, sizeof(key), &value, err))
			return false;
	}
	return true;
}

bool
restore_recovery_preserved(const RecoverySettings *rs, const char *path)
{
	return strcmp(rs->type, "preserve") == 0 &&
		(strcmp(path, AUTO_CONF) == 0 || strcmp(path, "recovery.signal") == 0 ||
		 strcmp(path, "standby.signal") == 0);
}

/* single-quoted for postgresql.conf: ' doubled, \ escaped */
static void
guc_quote(PgbrBuf *out, const char *v)
{
	pgbr_buf_put_u8(out, '\'');
	for (const char *p = v; *p; p++)
	{
		if (*p == '\'')
			pgbr_buf_put(out, "''", 2);
		else if (*p == '\\')
			pgbr_buf_put(out, "\\\\", 2);
		else
			pgbr_buf_put_u8(out, (uint8_t) *p);
	}
	pgbr_buf_put_u8(out, '\'');
}

/* an argument of restore_command: shell-quoted if needed, % doubled */
static void
command_arg(PgbrBuf *out, const char *prefix, const char *v)
{
	bool		plain = true;

	for (const char *p = v; *p; p++)
		if (!(isalnum((unsigned char) *p) || strchr("/._-+=:,@", *p)))
			plain = false;
	pgbr_buf_printf(out, "%s", prefix);
	if (!plain)
		pgbr_buf_put_u8(out, '\'');
	for (const char *p = v; *p; p++)
	{
		if (*p == '%')
			pgbr_buf_put(out, "%%", 2);
		else if (*p == '\'')
			pgbr_buf_put(out, "'\\''", 4);
		else
			pgbr_buf_put_u8(out, (uint8_t) *p);
	}
	if (!plain)
		pgbr_buf_put_u8(out, '\'');
}

static void
restore_command(const RecoverySettings *rs, PgbrBuf *out)
{
	char		exe[PATH_MAX];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		snprintf(exe, sizeof(exe), "pgbr");
	else
	{
		const char *gone = " (deleted)";
		size_t		glen = strlen(gone);

		exe[n] = '\0';
		/* the binary was replaced while we run (an upgrade): name the new one */
		if ((size_t) n > glen && strcmp(exe + n - glen, gone) == 0)
			exe[n - glen] = '\0';
	}
	command_arg(out, "", exe);
	if (rs->config_path)
		command_arg(out, " --config=", rs->config_path);
	command_arg(out, " --stanza=", rs->stanza);
	pgbr_buf_printf(out, " archive-get %%f \"%%p\"");
}

static int
setting_cmp(const void *a, const void *b)
{
	return strcmp(((const Setting *) a)->key, ((const Setting *) b)->key);
}

/* adds or replaces key */
static void
setting_put(Setting *s, int *n, const char *key, const char *value)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(s[i].key, key) == 0)
		{
			s[i].value = value;
			return;
		}
	snprintf(s[*n].key, sizeof(s[*n].key), "%s", key);
	s[*n].value = value;
	(*n)++;
}

/* the setting name a postgresql.conf line sets, lower-cased; false if none */
static bool
line_key(const char *line, size_t len, char *key, size_t keylen)
{
	size_t		i = 0,
				k = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || !(isalpha((unsigned char) line[i]) || line[i] == '_'))
		return false;
	while (i < len && (isalnum((unsigned char) line[i]) || line[i] == '_' || line[i] == '.') &&
		   k + 1 < keylen)
		key[k++] = (char) tolower((unsigned char) line[i++]);
	key[k] = '\0';
	return i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '=');
}

static bool
line_is(const char *line, size_t len, const char *marker)
{
	size_t		m = strlen(marker);

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	return len >= m && memcmp(line, marker, m) == 0;
}

bool
restore_recovery_auto_conf(const RecoverySettings *rs, const char *old, size_t oldlen,
						   const char *now, PgbrBuf *out, PgbrError *err)
{
	Setting    *set = pgbr_malloc(sizeof(Setting) * (size_t) (rs->noptions + 16));
	int			nset = 0;
	PgbrBuf		cmd;
	const char *p = old,
			   *end = old + oldlen;
	bool		has_end_marker = false;
	bool		in_block = false;

	/* what the block sets */
	pgbr_buf_init(&cmd);
	restore_command(rs, &cmd);
	pgbr_buf_put_u8(&cmd, '\0');
	setting_put(set, &nset, "restore_command", (const char *) cmd.data);
	if (strcmp(rs->type, "immediate") == 0)
		setting_put(set, &nset, "recovery_target", "immediate");
	else if (strcmp(rs->type, "time") == 0)
		setting_put(set, &nset, "recovery_target_time", rs->target);
	else if (strcmp(rs->type, "xid") == 0)
		setting_put(set, &nset, "recovery_target_xid", rs->target);
	else if (strcmp(rs->type, "lsn") == 0)
		setting_put(set, &nset, "recovery_target_lsn", rs->target);
	else if (strcmp(rs->type, "name") == 0)
		setting_put(set, &nset, "recovery_target_name", rs->target);
	if (type_has_target(rs->type) && rs->target_exclusive)
		setting_put(set, &nset, "recovery_target_inclusive", "false");
	if (rs->target_action && (type_has_target(rs->type) || strcmp(rs->type, "immediate") == 0))
		setting_put(set, &nset, "recovery_target_action", rs->target_action);
	if (rs->target_timeline)
		setting_put(set, &nset, "recovery_target_timeline", rs->target_timeline);
	for (int i = 0; i < rs->noptions; i++)
	{
		char		key[128];
		const char *value;

		if (!split_option(rs->options[i], key, sizeof(key), &value, err))
		{
			pgbr_buf_release(&cmd);
			pgbr_free(set);
			return false;
		}
		setting_put(set, &nset, key, value);
	}
	qsort(set, (size_t) nset, sizeof(Setting), setting_cmp);

	/* an earlier block is dropped only up to its end marker */
	for (const char *q = old; q < end;)
	{
		const char *nl = memchr(q, '\n', (size_t) (end - q));
		size_t		n = nl ? (size_t) (nl - q) : (size_t) (end - q);

		if (line_is(q, n, RECOVERY_BLOCK_END))
			has_end_marker = true;
		q += n + (nl ? 1 : 0);
	}

	if (oldlen == 0)
		pgbr_buf_printf(out, "# Do not edit this file manually!\n"
						"# It will be overwritten by the ALTER SYSTEM command.\n");
	while (p < end)
	{
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t		n = nl ? (size_t) (nl - p) : (size_t) (end - p);
		char		key[128];
		bool		replaced = false;

		if (in_block)
		{
			if (line_is(p, n, RECOVERY_BLOCK_END))
				in_block = false;
		}
		else if (line_is(p, n, RECOVERY_BLOCK_BEGIN))
			in_block = has_end_marker;
		else
		{
			if (line_key(p, n, key, sizeof(key)))
			{
				if (strncmp(key, "recovery_target", 15) == 0)
					replaced = true;
				for (int i = 0; i < nset && !replaced; i++)
					if (strcmp(set[i].key, key) == 0)
						replaced = true;
			}
			if (replaced)
				pgbr_buf_printf(out, "# Removed by pgbr restore on %s # ", now);
			pgbr_buf_put(out, p, n);
			pgbr_buf_put_u8(out, '\n');
		}
		p += n + (nl ? 1 : 0);
	}

	pgbr_buf_printf(out, "%s\n", RECOVERY_BLOCK_BEGIN);
	for (int i = 0; i < nset; i++)
	{
		pgbr_buf_printf(out, "%s = ", set[i].key);
		guc_quote(out, set[i].value);
		pgbr_buf_put_u8(out, '\n');
	}
	pgbr_buf_printf(out, "%s\n", RECOVERY_BLOCK_END);
	pgbr_buf_release(&cmd);
	pgbr_free(set);
	return true;
}

static bool
read_file(const char *path, PgbrBuf *out, bool *exists, mode_t *mode, PgbrError *err)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t		chunk[8192];

	*exists = false;
	if (fd < 0)
	{
		if (errno == ENOENT)
			return true;
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open \"%s\"", path);
	}
	*exists = true;
	if (fstat(fd, &st) == 0)
		*mode = st.st_mode & 07777;
	for (;;)
	{
		ssize_t		n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			pgbr_error_errno(err, PGBR_ERR_FILE_READ, "could not read \"%s\"", path);
			close(fd);
			return false;
		}
		if (n == 0)
			break;
		pgbr_buf_put(out, chunk, (size_t) n);
	}
	close(fd);
	return true;
}

static bool
write_file(const RecoverySettings *rs, const char *path, const void *data, size_t len,
		   mode_t mode, PgbrError *err)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const uint8_t *p = data;

	if (fd < 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not create \"%s\"", path);
	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write \"%s\"", path);
			close(fd);
			return false;
		}
		p += n;
		len -= (size_t) n;
	}
	if (fchmod(fd, mode) != 0 ||
		(rs->do_chown && fchown(fd, rs->uid, rs->gid) != 0))
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not set mode or owner of \"%s\"", path);
		close(fd);
		return false;
	}
	if (fsync(fd) != 0)
	{
		pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not fsync \"%s\"", path);
		close(fd);
		return false;
	}
	if (close(fd) != 0)
		return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not write \"%s\"", path);
	return true;
}

static bool
remove_if_present(const char *path, bool *removed, PgbrError *err)
{
	if (unlink(path) == 0)
	{
		*removed = true;
		return true;
	}
	if (errno == ENOENT)
		return true;
	return pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not remove \"%s\"", path);
}

bool
restore_recovery_write(const RecoverySettings *rs, PgbrError *err)
{
	char		path[PATH_MAX],
				tmp[PATH_MAX],
				signal_path[PATH_MAX];
	bool		changed = false;

	if (strcmp(rs->type, "preserve") == 0)
	{
		bool		any = false;
		struct stat st;

		snprintf(path, sizeof(path), "%s/recovery.signal", rs->pg_path);
		any = stat(path, &st) == 0;
		snprintf(path, sizeof(path), "%s/standby.signal", rs->pg_path);
		any = any || stat(path, &st) == 0;
		if (!any)
			pgbr_log(PGBR_LOG_WARN, "type=preserve but neither recovery.signal nor standby.signal is in \"%s\": PostgreSQL will only do crash recovery",
					 rs->pg_path);
		return true;
	}

	if (type_writes_block(rs->type))
	{
		PgbrBuf		old,
					out;
		bool		exists;
		mode_t		mode = 0600;
		char		now[64];
		time_t		t = time(NULL);
		struct tm	tm;
		bool		ok;

		localtime_r(&t, &tm);
		strftime(now, sizeof(now), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(path, sizeof(path), "%s/%s", rs->pg_path, AUTO_CONF);
		snprintf(tmp, sizeof(tmp), "%s/%s", rs->pg_path, AUTO_CONF_TMP);
		pgbr_buf_init(&old);
		pgbr_buf_init(&out);
		ok = read_file(path, &old, &exists, &mode, err) &&
			restore_recovery_auto_conf(rs, (const char *) (old.data ? old.data : (uint8_t *) ""),
									   old.len, now, &out, err) &&
			write_file(rs, tmp, out.data, out.len, mode, err);
		pgbr_buf_release(&old);
		pgbr_buf_release(&out);
		if (!ok)
		{
			unlink(tmp);
			return false;
		}
		if (rename(tmp, path) != 0)
		{
			pgbr_error_errno(err, PGBR_ERR_FILE_WRITE, "could not rename \"%s\" to \"%s\"", tmp, path);
			unlink(tmp);
			return false;
		}
		changed = true;
		pgbr_log(PGBR_LOG_INFO, "write updated %s", path);
	}

	/* exactly the signal file the type wants */
	{
		const char *want = strcmp(rs->type, "standby") == 0 ? "standby.signal" :
			recovery_type_targeted(rs->type) ? "recovery.signal" : NULL;
		const char *const names[] = {"recovery.signal", "standby.signal"};

		for (int i = 0; i < 2; i++)
		{
			snprintf(signal_path, sizeof(signal_path), "%s/%s", rs->pg_path, names[i]);
			if (want && strcmp(want, names[i]) == 0)
			{
				if (!write_file(rs, signal_path, "", 0, 0600, err))
					return false;
				changed = true;
				pgbr_log(PGBR_LOG_DETAIL, "write %s", signal_path);
			}
			else if (!remove_if_present(signal_path, &changed, err))
				return false;
		}
	}
	if (changed && !pgbr_fsync_dir(rs->pg_path, err))
		return false;
	return true;
}
