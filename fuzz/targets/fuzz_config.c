/*
 * fuzz_config.c
 *		libFuzzer target: the INI configuration parser.  The input is a
 *		configuration file; when it loads, every option is read back through
 *		each accessor, with the stanza set to each of the first three section
 *		names that occur; then a command-line value must win over the file,
 *		and the same text is loaded a second time into the same object.
 *		Refusals must name the file.
 */
#include "fuzz_common.h"
#include "pgbr_config.h"

static const char *const options[] = {
	"repo1-path", "repo1-retention-full", "repo1-retention-diff", "repo1-bundle",
	"repo1-bundle-size", "repo1-bundle-limit", "repo1-block", "repo1-type",
	"tls-server-address", "tls-server-port", "tls-server-cert-file", "tls-server-key-file",
	"tls-server-ca-file", "tls-server-auth", "tls-server-max-connections",
	"tls-server-max-per-client", "repo1-host", "repo1-host-port", "repo1-host-cert-file",
	"repo1-host-key-file", "repo1-host-ca-file", "repo1-host-type", "repo1-host-user",
	"pg1-path", "pg1-port", "pg1-socket-path", "pg1-user", "pg1-database", "pg2-host",
	"pg2-path", "pg2-port", "pg2-socket-path", "pg2-user", "pg2-database", "backup-standby",
	"backup-standby-lag", "compress-type", "compress-level", "process-max", "start-fast",
	"archive-timeout", "archive-push-queue", "io-timeout", "delta", "recovery-option",
	"tablespace-map", "type", "target", "target-action", "target-timeline",
	"target-exclusive", "set", "output", "log-level-console", "log-level-file",
	"log-level-stderr", "log-path",
	"no-such-option",
};

static void
read_all(PgbrConfig *cfg)
{
	PgbrError	err;

	for (size_t i = 0; i < PGBR_LENGTHOF(options); i++)
	{
		const char *const *values;
		const char *v = pgbr_config_get(cfg, options[i]);
		int			n;

		FUZZ_CHECK(v == NULL || v[0] != '\0', "empty value accepted for %s", options[i]);
		(void) pgbr_config_get_int(cfg, options[i]);
		(void) pgbr_config_get_bool(cfg, options[i]);
		(void) pgbr_config_source(cfg, options[i]);
		n = pgbr_config_get_list(cfg, options[i], &values);
		FUZZ_CHECK(n >= 0, "get_list < 0");
		for (int k = 0; k < n; k++)
			FUZZ_CHECK(values[k] != NULL && strchr(values[k], '\n') == NULL,
					   "value with a newline for %s", options[i]);
		pgbr_error_init(&err);
		(void) pgbr_config_require(cfg, options[i], &err);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PgbrConfig *cfg = pgbr_config_create();
	PgbrError	err;
	bool		ok;

	pgbr_error_init(&err);
	ok = pgbr_config_load_text(cfg, (const char *) data, size, "fuzz.conf", &err);
	FUZZ_CHECK(ok != pgbr_error_is_set(&err), "load_text %d, code %d", ok, err.code);
	if (!ok)
		FUZZ_CHECK(err.code == PGBR_ERR_OPTION && strstr(err.message, "fuzz.conf") != NULL,
				   "error does not name the file: [%d] %s", err.code, err.message);
	read_all(cfg);
	if (ok)
	{
		/* every section name that occurs, as the stanza */
		const char *p = (const char *) data;
		const char *end = p + size;
		int			sections = 0;

		while (p < end && sections < 3)
		{
			const char *nl = memchr(p, '\n', (size_t) (end - p));
			const char *lend = nl ? nl : end;
			const char *open = memchr(p, '[', (size_t) (lend - p));
			const char *close = open ? memchr(open, ']', (size_t) (lend - open)) : NULL;

			if (open && close && close > open + 1 && close - open - 1 <= PGBR_CONFIG_SECTION_MAX)
			{
				char	   *stanza = strndup(open + 1, (size_t) (close - open - 1));

				pgbr_config_set_stanza(cfg, stanza);
				read_all(cfg);
				free(stanza);
				sections++;
			}
			p = lend + 1;
		}
		pgbr_config_set_stanza(cfg, NULL);
		/* a --name=value over what the file says */
		pgbr_error_init(&err);
		(void) pgbr_config_set_option(cfg, "tls-server-auth", "x=y", &err);
		pgbr_error_init(&err);
		(void) pgbr_config_set_option(cfg, "io-timeout", "7", &err);
		FUZZ_CHECK(pgbr_config_get_int(cfg, "io-timeout") == 7, "command line does not win");
		/* the same text again: any single-valued option is now a duplicate */
		pgbr_error_init(&err);
		(void) pgbr_config_load_text(cfg, (const char *) data, size, "fuzz.conf", &err);
		read_all(cfg);
	}
	pgbr_config_free(cfg);
	return 0;
}
