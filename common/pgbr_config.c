/*
 * pgbr_config.c
 *		INI configuration reader.
 */
#include "pgbr_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum OptType
{
	OPT_STRING,
	OPT_INT,
	OPT_BOOL,
	OPT_ENUM
} OptType;

typedef struct OptDef
{
	const char *name;
	OptType		type;
	bool		multi;
	const char *def;			/* default, NULL if none */
	int64_t		min;
	int64_t		max;
	const char *choices;		/* OPT_ENUM: "a|b|c" */
} OptDef;

#define S(n)			{n, OPT_STRING, false, NULL, 0, 0, NULL}
#define SD(n, d)		{n, OPT_STRING, false, d, 0, 0, NULL}
#define M(n)			{n, OPT_STRING, true, NULL, 0, 0, NULL}
#define I(n, d, lo, hi)	{n, OPT_INT, false, d, lo, hi, NULL}
#define B(n, d)			{n, OPT_BOOL, false, d, 0, 0, NULL}
#define E(n, d, c)		{n, OPT_ENUM, false, d, 0, 0, c}

#define LOG_LEVELS "off|error|warn|info|detail|debug|trace"

static const OptDef opt_defs[] = {
	/* repository host */
	S("repo1-path"),
	I("repo1-retention-full", NULL, 1, 9999999),
	I("repo1-retention-diff", NULL, 1, 9999999),
	B("repo1-bundle", "n"),
	I("repo1-bundle-size", "20971520", 1048576, 1073741824),
	I("repo1-bundle-limit", "2097152", 1024, 1073741824),
	B("repo1-block", "n"),
	E("repo1-type", "posix", "posix|s3"),
	/*
	 * repo1-type=s3 (pgBackRest's names).  repo1-path is the key prefix
	 * inside the bucket.  The endpoint is host, host:port or either with
	 * http:// or https:// (the default).  The key and the secret may come
	 * from PGBR_REPO1_S3_KEY and PGBR_REPO1_S3_KEY_SECRET instead, to keep
	 * them out of the file: as with pgBackRest's PGBACKREST_* variables,
	 * the command line wins over the environment, which wins over the file
	 * (repo-server/storage_s3.c).
	 */
	S("repo1-s3-endpoint"),
	S("repo1-s3-bucket"),
	SD("repo1-s3-region", "us-east-1"),
	S("repo1-s3-key"),
	S("repo1-s3-key-secret"),
	E("repo1-s3-uri-style", "host", "host|path"),
	B("repo1-s3-verify-tls", "y"),
	S("repo1-s3-ca-file"),
	SD("tls-server-address", "localhost"),
	I("tls-server-port", "8433", 1, 65535),
	S("tls-server-cert-file"),
	S("tls-server-key-file"),
	S("tls-server-ca-file"),
	M("tls-server-auth"),
	I("tls-server-max-connections", "128", 1, 100000),
	I("tls-server-max-per-client", "32", 1, 100000),
	/* PostgreSQL host */
	S("repo1-host"),
	I("repo1-host-port", "8433", 1, 65535),
	S("repo1-host-cert-file"),
	S("repo1-host-key-file"),
	S("repo1-host-ca-file"),
	E("repo1-host-type", "tls", "tls"),
	S("repo1-host-user"),		/* pgBackRest's; accepted, unused with TLS */
	S("pg1-path"),
	I("pg1-port", "5432", 1, 65535),
	SD("pg1-socket-path", "/var/run/postgresql"),
	SD("pg1-user", "postgres"),
	SD("pg1-database", "postgres"),
	S("pg2-host"),
	S("pg2-path"),
	I("pg2-port", "5432", 1, 65535),
	S("pg2-socket-path"),
	SD("pg2-user", "postgres"),
	SD("pg2-database", "postgres"),
	E("backup-standby", "n", "y|n|prefer"),
	I("backup-standby-lag", "60", 1, 86400),
	E("compress-type", "zst", "zst|none"),
	I("compress-level", "3", -7, 22),
	I("process-max", "1", 1, 64),
	B("start-fast", "n"),
	I("archive-timeout", "60", 1, 86400),
	I("archive-push-queue", "8", 0, 64),
	I("io-timeout", "30", 1, 3600),
	B("delta", "n"),
	B("force", "n"),			/* with delta: size and mtime, not SHA-256 */
	M("recovery-option"),
	M("tablespace-map"),
	E("type", NULL, "full|diff|incr|default|standby|immediate|time|xid|lsn|name|preserve|none"),
	S("target"),
	E("target-action", "pause", "pause|promote|shutdown"),
	S("target-timeline"),
	B("target-exclusive", "n"),
	S("set"),
	E("output", "text", "text|json"),
	E("log-level-console", "warn", LOG_LEVELS),
	E("log-level-file", "info", LOG_LEVELS),
	E("log-level-stderr", "warn", LOG_LEVELS),
	S("log-path"),
};

typedef struct Entry
{
	const OptDef *def;
	char	   *section;		/* NULL: command line */
	char	   *value;
	char	   *source;			/* "file:line" or "command line" */
} Entry;

struct PgbrConfig
{
	Entry	   *entries;
	int			nentries;
	int			cap;
	char	   *stanza;
	char	   *path;
	/* scratch for get_list results */
	const char **list;
	int			listcap;
};

static const OptDef *
find_def(const char *name)
{
	for (size_t i = 0; i < PGBR_LENGTHOF(opt_defs); i++)
		if (strcmp(opt_defs[i].name, name) == 0)
			return &opt_defs[i];
	return NULL;
}

bool
pgbr_config_known(const char *name)
{
	return find_def(name) != NULL;
}

PgbrConfig *
pgbr_config_create(void)
{
	PgbrConfig *cfg = pgbr_malloc(sizeof(PgbrConfig));

	if (cfg)
		memset(cfg, 0, sizeof(PgbrConfig));
	return cfg;
}

void
pgbr_config_free(PgbrConfig *cfg)
{
	if (cfg == NULL)
		return;
	for (int i = 0; i < cfg->nentries; i++)
	{
		pgbr_free(cfg->entries[i].section);
		pgbr_free(cfg->entries[i].value);
		pgbr_free(cfg->entries[i].source);
	}
	pgbr_free(cfg->entries);
	pgbr_free(cfg->stanza);
	pgbr_free(cfg->path);
	pgbr_free(cfg->list);
	pgbr_free(cfg);
}

static bool
check_value(const OptDef *def, const char *value, const char *where, PgbrError *err)
{
	switch (def->type)
	{
		case OPT_STRING:
			if (value[0] == '\0')
				return pgbr_error_set(err, PGBR_ERR_OPTION,
									  "option \"%s\" has an empty value (%s)", def->name, where);
			return true;
		case OPT_BOOL:
			if (strcmp(value, "y") != 0 && strcmp(value, "n") != 0)
			{
				pgbr_error_set(err, PGBR_ERR_OPTION,
							   "invalid value \"%s\" for boolean option \"%s\" (%s)",
							   value, def->name, where);
				pgbr_error_hint(err, "Use y or n.");
				return false;
			}
			return true;
		case OPT_INT:
			{
				char	   *end;
				long long	v;

				errno = 0;
				v = strtoll(value, &end, 10);
				if (errno != 0 || end == value || *end != '\0')
					return pgbr_error_set(err, PGBR_ERR_OPTION,
										  "invalid value \"%s\" for integer option \"%s\" (%s)",
										  value, def->name, where);
				if (v < def->min || v > def->max)
					return pgbr_error_set(err, PGBR_ERR_OPTION,
										  "value %lld for option \"%s\" is out of range %" PRId64 "..%" PRId64 " (%s)",
										  v, def->name, def->min, def->max, where);
				return true;
			}
		case OPT_ENUM:
			{
				size_t		vlen = strlen(value);
				const char *p = def->choices;

				while (*p)
				{
					const char *bar = strchr(p, '|');
					size_t		n = bar ? (size_t) (bar - p) : strlen(p);

					if (n == vlen && strncmp(p, value, n) == 0)
						return true;
					p += n + (bar ? 1 : 0);
				}
				pgbr_error_set(err, PGBR_ERR_OPTION,
							   "invalid value \"%s\" for option \"%s\" (%s)",
							   value, def->name, where);
				pgbr_error_hint(err, "Valid values are: %s.", def->choices);
				return false;
			}
	}
	return true;
}

static void
add_entry(PgbrConfig *cfg, const OptDef *def, const char *section, const char *value,
		  const char *source)
{
	Entry	   *e;

	if (cfg->nentries == cfg->cap)
	{
		cfg->cap = cfg->cap ? cfg->cap * 2 : 32;
		cfg->entries = pgbr_realloc(cfg->entries, sizeof(Entry) * (size_t) cfg->cap);
	}
	e = &cfg->entries[cfg->nentries++];
	e->def = def;
	e->section = section ? pgbr_strdup(section) : NULL;
	e->value = pgbr_strdup(value);
	e->source = pgbr_strdup(source);
}

static bool
same_section(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static Entry *
find_entry(const PgbrConfig *cfg, const OptDef *def, const char *section)
{
	for (int i = 0; i < cfg->nentries; i++)
		if (cfg->entries[i].def == def && same_section(cfg->entries[i].section, section))
			return &cfg->entries[i];
	return NULL;
}

static char *
trim(char *s)
{
	char	   *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

bool
pgbr_config_load_text(PgbrConfig *cfg, const char *text, size_t len, const char *path,
					  PgbrError *err)
{
	char	   *copy = pgbr_malloc(len + 1);
	char	   *line;
	char	   *next;
	char		section[PGBR_CONFIG_SECTION_MAX + 1];
	bool		have_section = false;
	int			lineno = 0;
	bool		ok = true;

	if (cfg->path == NULL || strcmp(cfg->path, path) != 0)
	{
		pgbr_free(cfg->path);
		cfg->path = pgbr_strdup(path);
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (memchr(text, '\0', len) != NULL)
	{
		pgbr_free(copy);
		return pgbr_error_set(err, PGBR_ERR_OPTION,
							  "configuration file \"%s\" contains a NUL byte", path);
	}
	section[0] = '\0';

	for (line = copy; ok && line != NULL; line = next)
	{
		char		where[1100];
		char	   *s,
				   *eq,
				   *name,
				   *value;
		const OptDef *def;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[')
		{
			char	   *close = strchr(s, ']');

			if (close == NULL || close[1] != '\0' || close == s + 1 ||
				(size_t) (close - s - 1) > PGBR_CONFIG_SECTION_MAX)
			{
				ok = pgbr_error_set(err, PGBR_ERR_OPTION,
									"invalid section header \"%s\" (%s)", s, where);
				break;
			}
			*close = '\0';
			snprintf(section, sizeof(section), "%s", s + 1);
			have_section = true;
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL)
		{
			ok = pgbr_error_set(err, PGBR_ERR_OPTION,
								"line is not \"option=value\": \"%s\" (%s)", s, where);
			break;
		}
		*eq = '\0';
		name = trim(s);
		value = trim(eq + 1);
		def = find_def(name);
		if (def == NULL)
		{
			ok = pgbr_error_set(err, PGBR_ERR_OPTION,
								"unknown option \"%s\" (%s)", name, where);
			break;
		}
		if (!have_section)
		{
			ok = pgbr_error_set(err, PGBR_ERR_OPTION,
								"option \"%s\" is outside any section (%s)", name, where);
			pgbr_error_hint(err, "Put it under [global] or a [stanza] section.");
			break;
		}
		if (!check_value(def, value, where, err))
		{
			ok = false;
			break;
		}
		if (!def->multi)
		{
			Entry	   *prev = find_entry(cfg, def, section);

			if (prev != NULL)
			{
				ok = pgbr_error_set(err, PGBR_ERR_OPTION,
									"option \"%s\" is set more than once in section [%s] (%s, first at %s)",
									name, section, where, prev->source);
				break;
			}
		}
		add_entry(cfg, def, section, value, where);
	}
	pgbr_free(copy);
	return ok;
}

bool
pgbr_config_load_file(PgbrConfig *cfg, const char *path, bool missing_ok, PgbrError *err)
{
	FILE	   *f;
	char	   *text = NULL;
	size_t		len = 0,
				cap = 0;
	bool		ok;

	pgbr_free(cfg->path);
	cfg->path = pgbr_strdup(path);
	f = fopen(path, "r");
	if (f == NULL)
	{
		if (errno == ENOENT && missing_ok)
			return true;
		pgbr_error_errno(err, PGBR_ERR_FILE_OPEN,
						 "could not open configuration file \"%s\"", path);
		pgbr_error_hint(err, "Pass the right file with --config=PATH or PGBR_CONFIG.");
		return false;
	}
	for (;;)
	{
		size_t		n;

		if (cap - len < 4096)
		{
			cap = cap ? cap * 2 : 8192;
			if (cap > 16 * 1024 * 1024)
			{
				fclose(f);
				pgbr_free(text);
				return pgbr_error_set(err, PGBR_ERR_OPTION,
									  "configuration file \"%s\" is larger than 16MB", path);
			}
			text = pgbr_realloc(text, cap);
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
	{
		fclose(f);
		pgbr_free(text);
		return pgbr_error_errno(err, PGBR_ERR_FILE_READ,
								"could not read configuration file \"%s\"", path);
	}
	fclose(f);
	ok = pgbr_config_load_text(cfg, text ? text : "", len, path, err);
	pgbr_free(text);
	return ok;
}

bool
pgbr_config_set_option(PgbrConfig *cfg, const char *name, const char *value, PgbrError *err)
{
	const OptDef *def = find_def(name);
	char		where[300];

	if (def == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_OPTION, "unknown option \"--%s\"", name);
		pgbr_error_hint(err, "Run \"pgbr help\" for the list of options.");
		return false;
	}
	snprintf(where, sizeof(where), "command line");
	if (!check_value(def, value, where, err))
		return false;
	if (!def->multi)
	{
		Entry	   *prev = find_entry(cfg, def, NULL);

		if (prev != NULL)
		{
			pgbr_free(prev->value);
			prev->value = pgbr_strdup(value);
			return true;
		}
	}
	add_entry(cfg, def, NULL, value, where);
	return true;
}

void
pgbr_config_set_stanza(PgbrConfig *cfg, const char *stanza)
{
	pgbr_free(cfg->stanza);
	cfg->stanza = stanza ? pgbr_strdup(stanza) : NULL;
}

const char *
pgbr_config_stanza(const PgbrConfig *cfg)
{
	return cfg->stanza;
}

const char *
pgbr_config_path(const PgbrConfig *cfg)
{
	return cfg->path;
}

/*
 * Most specific entry for the option as seen from the given stanza (NULL:
 * [global] only); NULL if only the default applies.
 */
static const Entry *
effective_in(const PgbrConfig *cfg, const OptDef *def, const char *stanza)
{
	const Entry *e = find_entry(cfg, def, NULL);

	if (e == NULL && stanza)
		e = find_entry(cfg, def, stanza);
	if (e == NULL)
		e = find_entry(cfg, def, "global");
	return e;
}

static const Entry *
effective(const PgbrConfig *cfg, const OptDef *def)
{
	return effective_in(cfg, def, cfg->stanza);
}

const char *
pgbr_config_get(const PgbrConfig *cfg, const char *name)
{
	return pgbr_config_get_for(cfg, cfg->stanza, name);
}

int64_t
pgbr_config_get_int(const PgbrConfig *cfg, const char *name)
{
	return pgbr_config_get_int_for(cfg, cfg->stanza, name);
}

bool
pgbr_config_get_bool(const PgbrConfig *cfg, const char *name)
{
	return pgbr_config_get_bool_for(cfg, cfg->stanza, name);
}

const char *
pgbr_config_get_for(const PgbrConfig *cfg, const char *stanza, const char *name)
{
	const OptDef *def = find_def(name);
	const Entry *e;

	if (def == NULL)
		return NULL;
	e = effective_in(cfg, def, stanza);
	return e ? e->value : def->def;
}

int64_t
pgbr_config_get_int_for(const PgbrConfig *cfg, const char *stanza, const char *name)
{
	const char *v = pgbr_config_get_for(cfg, stanza, name);

	return v ? strtoll(v, NULL, 10) : 0;
}

bool
pgbr_config_get_bool_for(const PgbrConfig *cfg, const char *stanza, const char *name)
{
	const char *v = pgbr_config_get_for(cfg, stanza, name);

	return v != NULL && strcmp(v, "y") == 0;
}

int
pgbr_config_get_list(const PgbrConfig *cfg, const char *name, const char *const **values)
{
	PgbrConfig *c = (PgbrConfig *) cfg;
	const OptDef *def = find_def(name);
	const Entry *first;
	int			n = 0;

	*values = NULL;
	if (def == NULL || (first = effective(cfg, def)) == NULL)
		return 0;
	for (int i = 0; i < cfg->nentries; i++)
	{
		if (cfg->entries[i].def != def ||
			!same_section(cfg->entries[i].section, first->section))
			continue;
		if (n == c->listcap)
		{
			c->listcap = c->listcap ? c->listcap * 2 : 16;
			c->list = pgbr_realloc(c->list, sizeof(char *) * (size_t) c->listcap);
		}
		c->list[n++] = cfg->entries[i].value;
	}
	*values = c->list;
	return n;
}

const char *
pgbr_config_source(const PgbrConfig *cfg, const char *name)
{
	const OptDef *def = find_def(name);
	const Entry *e = def ? effective(cfg, def) : NULL;

	return e ? e->source : "default";
}

bool
pgbr_config_require(const PgbrConfig *cfg, const char *name, PgbrError *err)
{
	if (pgbr_config_get(cfg, name) != NULL)
		return true;
	pgbr_error_set(err, PGBR_ERR_OPTION_REQUIRED, "option \"%s\" is required but not set in \"%s\"",
				   name, cfg->path ? cfg->path : PGBR_CONFIG_DEFAULT_PATH);
	pgbr_error_hint(err, "Set %s in the [global] or [%s] section of \"%s\", or pass --%s=VALUE.",
					name, cfg->stanza ? cfg->stanza : "stanza",
					cfg->path ? cfg->path : PGBR_CONFIG_DEFAULT_PATH, name);
	return false;
}
