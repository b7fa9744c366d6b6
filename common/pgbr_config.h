/*
 * pgbr_config.h
 *		The INI configuration of interface.md: one file per host with a
 *		[global] section and one section per stanza, overridden by
 *		--name=value on the command line.  Values are checked against the
 *		option table when read, so every error names the option, the file
 *		and the line.
 *
 * Precedence: command line > [stanza] > [global] > built-in default.
 * Options that may repeat take all their values from the most specific
 * level that sets them.
 */
#ifndef PGBR_CONFIG_H
#define PGBR_CONFIG_H

#include "pgbr_error.h"

#define PGBR_CONFIG_DEFAULT_PATH	"/etc/pgbr/pgbr.conf"
#define PGBR_CONFIG_SECTION_MAX		64

typedef struct PgbrConfig PgbrConfig;

extern PgbrConfig *pgbr_config_create(void);
extern void pgbr_config_free(PgbrConfig *cfg);

/* reads a file; a missing file is an error unless missing_ok */
extern bool pgbr_config_load_file(PgbrConfig *cfg, const char *path, bool missing_ok,
								  PgbrError *err);

/* parses file content already in memory (tests, fuzzing); path is for messages */
extern bool pgbr_config_load_text(PgbrConfig *cfg, const char *text, size_t len,
								  const char *path, PgbrError *err);

/* a --name=value from the command line; validated like a file value */
extern bool pgbr_config_set_option(PgbrConfig *cfg, const char *name, const char *value,
								   PgbrError *err);

/* stanza whose section overrides [global] (NULL: none) */
extern void pgbr_config_set_stanza(PgbrConfig *cfg, const char *stanza);
extern const char *pgbr_config_stanza(const PgbrConfig *cfg);
extern const char *pgbr_config_path(const PgbrConfig *cfg);

/* effective value, or the default, or NULL */
extern const char *pgbr_config_get(const PgbrConfig *cfg, const char *name);
extern int64_t pgbr_config_get_int(const PgbrConfig *cfg, const char *name);
extern bool pgbr_config_get_bool(const PgbrConfig *cfg, const char *name);

/*
 * The same as seen from another stanza than the one set (pgbr-server, which
 * serves every stanza from one configuration)
 */
extern const char *pgbr_config_get_for(const PgbrConfig *cfg, const char *stanza,
									   const char *name);
extern int64_t pgbr_config_get_int_for(const PgbrConfig *cfg, const char *stanza,
									   const char *name);
extern bool pgbr_config_get_bool_for(const PgbrConfig *cfg, const char *stanza,
									 const char *name);

/* values of a repeatable option; returns the count, *values owned by cfg */
extern int	pgbr_config_get_list(const PgbrConfig *cfg, const char *name,
								 const char *const **values);

/* "file:line" or "command line" of the effective value, for messages */
extern const char *pgbr_config_source(const PgbrConfig *cfg, const char *name);

/* error naming the option and the file when it has no value */
extern bool pgbr_config_require(const PgbrConfig *cfg, const char *name, PgbrError *err);

/* true if `name` is a known option */
extern bool pgbr_config_known(const char *name);

#endif							/* PGBR_CONFIG_H */
