/*
 * test_config.c
 *		The INI configuration: sections, precedence, defaults, repeatable
 *		options and the errors, which name the option, the file and the line.
 */
#include "pgbr_config.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CONF "/etc/pgbr/unit.conf"

/* loads text into a fresh config; *cfgp is the config (free it) */
static bool
load(PgbrConfig **cfgp, const char *text, PgbrError *err)
{
	*cfgp = pgbr_config_create();
	pgbr_error_init(err);
	return pgbr_config_load_text(*cfgp, text, strlen(text), CONF, err);
}

/* expects the text to be refused; checks the message holds each needle */
static void
refused(const char *desc, const char *text, const char *const *needles, const char *hint_needle)
{
	PgbrConfig *cfg;
	PgbrError	err;

	ok(!load(&cfg, text, &err), "%s: refused", desc);
	is_int(err.code, PGBR_ERR_OPTION, "%s: option error", desc);
	for (; needles && *needles; needles++)
		like(err.message, *needles, "%s: message contains \"%s\"", desc, *needles);
	if (hint_needle)
		like(err.hint, hint_needle, "%s: hint contains \"%s\"", desc, hint_needle);
	pgbr_config_free(cfg);
}

static const char sample[] =
	"# pgbr test configuration\n"	/* 1 */
	"[global]\n"				/* 2 */
	"repo1-path=/var/lib/pgbr\n"	/* 3 */
	"compress-level=5\n"		/* 4 */
	"tls-server-port=9000\n"	/* 5 */
	"start-fast=y\n"			/* 6 */
	"tls-server-auth=client-a=demo\n"	/* 7 */
	"tls-server-auth=client-b=*\n"	/* 8 */
	"recovery-option=a=1\n"		/* 9 */
	"\n"						/* 10 */
	"[demo]\n"					/* 11 */
	"compress-level=7\n"		/* 12 */
	"pg1-path=/srv/demo\n"		/* 13 */
	"tls-server-auth=client-c=demo\n"	/* 14 */
	"tls-server-auth=client-d=demo,other\n"	/* 15 */
	"tls-server-auth=client-e=demo\n"	/* 16 */
	"\n"						/* 17 */
	"[other]\n"					/* 18 */
	"compress-level=9\n"		/* 19 */
	"start-fast=n\n";			/* 20 */

static void
test_precedence(void)
{
	PgbrConfig *cfg;
	PgbrError	err;
	const char *const *v;
	int			n;

	ok(load(&cfg, sample, &err), "sample loads");
	if (pgbr_error_is_set(&err))
		diag("%s", err.message);

	/* no stanza: [global] only */
	ok(pgbr_config_stanza(cfg) == NULL, "no stanza set");
	is_str(pgbr_config_get(cfg, "compress-level"), "5", "no stanza: global compress-level");
	is_int(pgbr_config_get_int(cfg, "compress-level"), 5, "get_int of global value");
	is_str(pgbr_config_get(cfg, "pg1-path"), NULL, "no stanza: stanza-only option unset");
	is_str(pgbr_config_source(cfg, "compress-level"), CONF ":4", "source of global value is file:4");

	/* [demo] overrides [global] */
	pgbr_config_set_stanza(cfg, "demo");
	is_str(pgbr_config_stanza(cfg), "demo", "stanza is demo");
	is_str(pgbr_config_get(cfg, "compress-level"), "7", "demo: stanza overrides global");
	is_str(pgbr_config_source(cfg, "compress-level"), CONF ":12", "demo: source is file:12");
	is_str(pgbr_config_get(cfg, "pg1-path"), "/srv/demo", "demo: stanza-only option");
	is_str(pgbr_config_get(cfg, "repo1-path"), "/var/lib/pgbr", "demo: global value inherited");
	is_int(pgbr_config_get_int(cfg, "tls-server-port"), 9000, "demo: global int inherited");
	ok(pgbr_config_get_bool(cfg, "start-fast"), "demo: global bool y inherited");

	/* [other] overrides differently, and its n beats global's y */
	pgbr_config_set_stanza(cfg, "other");
	is_str(pgbr_config_get(cfg, "compress-level"), "9", "other: its own value");
	ok(!pgbr_config_get_bool(cfg, "start-fast"), "other: n overrides global y");
	is_str(pgbr_config_get(cfg, "pg1-path"), NULL, "other: demo's value does not leak");

	/* a stanza without a section gets global */
	pgbr_config_set_stanza(cfg, "nosection");
	is_str(pgbr_config_get(cfg, "compress-level"), "5", "stanza without section: global value");

	/* the same as seen from a stanza given per call (pgbr-server) */
	is_str(pgbr_config_get_for(cfg, "demo", "compress-level"), "7", "get_for demo: its section");
	is_int(pgbr_config_get_int_for(cfg, "other", "compress-level"), 9, "get_int_for other");
	ok(!pgbr_config_get_bool_for(cfg, "other", "start-fast"), "get_bool_for other: n");
	ok(pgbr_config_get_bool_for(cfg, "demo", "start-fast"), "get_bool_for demo: global y");
	is_str(pgbr_config_get_for(cfg, NULL, "compress-level"), "5", "get_for NULL: global");
	is_str(pgbr_config_get_for(cfg, "nosection", "pg1-path"), NULL, "get_for: unset stays unset");
	is_str(pgbr_config_stanza(cfg), "nosection", "get_for leaves the set stanza alone");

	/* command line overrides both */
	pgbr_config_set_stanza(cfg, "demo");
	pgbr_error_init(&err);
	ok(pgbr_config_set_option(cfg, "compress-level", "11", &err), "set_option compress-level=11");
	is_str(pgbr_config_get(cfg, "compress-level"), "11", "command line overrides stanza");
	is_str(pgbr_config_source(cfg, "compress-level"), "command line", "source is command line");
	pgbr_config_set_stanza(cfg, NULL);
	is_str(pgbr_config_get(cfg, "compress-level"), "11", "command line overrides global");
	ok(pgbr_config_set_option(cfg, "compress-level", "12", &err), "set_option again");
	is_str(pgbr_config_get(cfg, "compress-level"), "12", "the last command line value wins");
	ok(pgbr_config_set_option(cfg, "start-fast", "n", &err) &&
	   !pgbr_config_get_bool(cfg, "start-fast"), "command line n overrides file y");

	/* repeatable: most specific level only, in order */
	pgbr_config_set_stanza(cfg, "demo");
	n = pgbr_config_get_list(cfg, "tls-server-auth", &v);
	ok(n == 3 && strcmp(v[0], "client-c=demo") == 0 &&
	   strcmp(v[1], "client-d=demo,other") == 0 && strcmp(v[2], "client-e=demo") == 0,
	   "demo: tls-server-auth is demo's three values, in order (got %d)", n);
	n = pgbr_config_get_list(cfg, "recovery-option", &v);
	ok(n == 1 && strcmp(v[0], "a=1") == 0, "demo: recovery-option from global (value keeps its '=')");
	pgbr_config_set_stanza(cfg, "other");
	n = pgbr_config_get_list(cfg, "tls-server-auth", &v);
	ok(n == 2 && strcmp(v[0], "client-a=demo") == 0 && strcmp(v[1], "client-b=*") == 0,
	   "other: tls-server-auth is global's two values, in order (got %d)", n);
	n = pgbr_config_get_list(cfg, "tablespace-map", &v);
	ok(n == 0, "unset repeatable option: empty list");
	n = pgbr_config_get_list(cfg, "no-such-option", &v);
	ok(n == 0, "unknown option: empty list");

	ok(pgbr_config_set_option(cfg, "recovery-option", "x=1", &err) &&
	   pgbr_config_set_option(cfg, "recovery-option", "y=2", &err) &&
	   pgbr_config_set_option(cfg, "recovery-option", "z=3", &err),
	   "set_option recovery-option three times");
	pgbr_config_set_stanza(cfg, "demo");
	n = pgbr_config_get_list(cfg, "recovery-option", &v);
	ok(n == 3 && strcmp(v[0], "x=1") == 0 && strcmp(v[1], "y=2") == 0 &&
	   strcmp(v[2], "z=3") == 0,
	   "command line recovery-option replaces the file's, in order (got %d)", n);
	ok(pgbr_config_set_option(cfg, "tls-server-auth", "cli=demo", &err), "set_option tls-server-auth");
	n = pgbr_config_get_list(cfg, "tls-server-auth", &v);
	ok(n == 1 && strcmp(v[0], "cli=demo") == 0,
	   "command line tls-server-auth replaces the stanza's (got %d)", n);
	pgbr_config_free(cfg);
}

static void
test_defaults(void)
{
	PgbrConfig *cfg = pgbr_config_create();

	is_str(pgbr_config_get(cfg, "tls-server-address"), "localhost", "default tls-server-address");
	is_int(pgbr_config_get_int(cfg, "tls-server-port"), 8433, "default tls-server-port");
	is_int(pgbr_config_get_int(cfg, "repo1-host-port"), 8433, "default repo1-host-port");
	is_str(pgbr_config_get(cfg, "compress-type"), "zst", "default compress-type");
	is_int(pgbr_config_get_int(cfg, "compress-level"), 3, "default compress-level");
	is_int(pgbr_config_get_int(cfg, "process-max"), 1, "default process-max");
	is_str(pgbr_config_get(cfg, "pg1-socket-path"), "/var/run/postgresql", "default pg1-socket-path");
	is_str(pgbr_config_get(cfg, "log-level-console"), "warn", "default log-level-console");
	ok(!pgbr_config_get_bool(cfg, "start-fast"), "default start-fast is n");
	ok(!pgbr_config_get_bool(cfg, "delta"), "default delta is n");
	is_str(pgbr_config_get(cfg, "repo1-path"), NULL, "repo1-path has no default");
	is_int(pgbr_config_get_int(cfg, "repo1-retention-full"), 0, "get_int of an unset option is 0");
	is_str(pgbr_config_source(cfg, "tls-server-port"), "default", "source of a default");
	is_str(pgbr_config_get(cfg, "no-such-option"), NULL, "unknown option: NULL");
	ok(pgbr_config_known("repo1-path") && pgbr_config_known("tls-server-auth"), "known options");
	ok(!pgbr_config_known("no-such-option") && !pgbr_config_known(""), "unknown options");
	ok(pgbr_config_path(cfg) == NULL, "no path before a file is loaded");
	pgbr_config_free(cfg);
	pgbr_config_free(NULL);
	ok(true, "pgbr_config_free(NULL) is a no-op");
}

static void
test_syntax(void)
{
	PgbrConfig *cfg;
	PgbrError	err;

	ok(load(&cfg,
			"; a comment\n"
			"   # an indented comment\n"
			"[global]\n"
			"# repo1-path=/commented/out\n"
			"; no-such-option=1\n"
			"\t;\tno-such-option=2\n"
			"  compress-level   =   4   \n"
			"repo1-path\t=\t/a b/c \t\n"
			"pg1-user=\n"		/* empty string: refused? see below */
			, &err) == false, "empty string value refused");
	like(err.message, "pg1-user", "empty value: message names the option");
	like(err.message, CONF ":9", "empty value: message names file:line");
	pgbr_config_free(cfg);

	ok(load(&cfg,
			"; a comment\n"
			"   # an indented comment\n"
			"[global]\n"
			"# repo1-path=/commented/out\n"
			"; no-such-option=1\n"
			"\t;\tno-such-option=2\n"
			"  compress-level   =   4   \n"
			"repo1-path\t=\t/a b/c \t\n"
			"recovery-option = primary_conninfo = 'host=x' \n",
			&err), "comments with # and ; (also indented) are skipped");
	if (pgbr_error_is_set(&err))
		diag("%s", err.message);
	is_str(pgbr_config_get(cfg, "compress-level"), "4", "spaces around name, = and value trimmed");
	is_str(pgbr_config_get(cfg, "repo1-path"), "/a b/c", "tabs trimmed, inner space kept");
	is_str(pgbr_config_source(cfg, "repo1-path"), CONF ":8", "line numbers count comments");
	{
		const char *const *v;

		ok(pgbr_config_get_list(cfg, "recovery-option", &v) == 1 &&
		   strcmp(v[0], "primary_conninfo = 'host=x'") == 0,
		   "value split at the first =, later = kept");
	}
	pgbr_config_free(cfg);

	/* CRLF line ends */
	ok(load(&cfg, "[global]\r\nrepo1-path=/crlf\r\n\r\n[demo]\r\npg1-port=5433\r\n", &err),
	   "CRLF file loads");
	is_str(pgbr_config_get(cfg, "repo1-path"), "/crlf", "CRLF: no \\r in the value");
	pgbr_config_set_stanza(cfg, "demo");
	is_int(pgbr_config_get_int(cfg, "pg1-port"), 5433, "CRLF: section header recognised");
	pgbr_config_free(cfg);

	/* no newline at the end, empty text */
	ok(load(&cfg, "[global]\nrepo1-path=/last", &err) &&
	   strcmp(pgbr_config_get(cfg, "repo1-path"), "/last") == 0, "last line without newline");
	pgbr_config_free(cfg);
	ok(load(&cfg, "", &err), "empty text loads");
	pgbr_config_free(cfg);

	/* same option in two sections is not a repetition */
	ok(load(&cfg, "[global]\nrepo1-path=/a\n[demo]\nrepo1-path=/b\n", &err),
	   "same option in [global] and [demo] is fine");
	pgbr_config_free(cfg);

	/* boundaries of integer ranges accepted */
	ok(load(&cfg, "[global]\ntls-server-port=65535\ncompress-level=-7\npg1-port=1\n", &err),
	   "integer range boundaries accepted");
	is_int(pgbr_config_get_int(cfg, "compress-level"), -7, "negative integer value");
	pgbr_config_free(cfg);

	/* a section name of 64 characters is fine */
	{
		char		text[200];

		snprintf(text, sizeof(text), "[%.64s]\nrepo1-path=/x\n",
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		ok(load(&cfg, text, &err), "section name of 64 chars accepted");
		pgbr_config_free(cfg);
		snprintf(text, sizeof(text), "[%.65s]\nrepo1-path=/x\n",
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		ok(!load(&cfg, text, &err), "section name of 65 chars refused");
		like(err.message, CONF ":1", "long section name: file:line");
		pgbr_config_free(cfg);
	}
}

static void
test_errors(void)
{
	PgbrConfig *cfg;
	PgbrError	err;

	refused("unknown option",
			"[global]\nrepo1-path=/x\nbogus-option=1\n",
			(const char *[]) {"bogus-option", CONF ":3", NULL}, NULL);
	refused("unknown option in a stanza section",
			"[global]\n\n[demo]\n\n\nrepo1-pth=/x\n",
			(const char *[]) {"repo1-pth", CONF ":6", NULL}, NULL);

	refused("non-repeatable option repeated",
			"[global]\nrepo1-path=/a\ncompress-level=3\nrepo1-path=/b\n",
			(const char *[]) {"repo1-path", CONF ":4", CONF ":2", "global", NULL}, NULL);
	refused("non-repeatable option repeated in a reopened section",
			"[demo]\npg1-path=/a\n[global]\nrepo1-path=/x\n[demo]\npg1-path=/b\n",
			(const char *[]) {"pg1-path", CONF ":6", CONF ":2", "demo", NULL}, NULL);

	refused("bad boolean",
			"[global]\nstart-fast=x\n",
			(const char *[]) {"start-fast", "\"x\"", CONF ":2", NULL}, "y or n");
	refused("boolean 'yes'",
			"[global]\ndelta=yes\n",
			(const char *[]) {"delta", CONF ":2", NULL}, "y or n");

	refused("integer above range",
			"[global]\ntls-server-port=70000\n",
			(const char *[]) {"tls-server-port", "70000", "65535", CONF ":2", NULL}, NULL);
	refused("integer below range",
			"[global]\ncompress-level=-8\n",
			(const char *[]) {"compress-level", "-8", CONF ":2", NULL}, NULL);
	refused("integer zero below range",
			"[global]\n\ntls-server-port=0\n",
			(const char *[]) {"tls-server-port", CONF ":3", NULL}, NULL);
	refused("integer overflowing 64 bits",
			"[global]\nprocess-max=99999999999999999999\n",
			(const char *[]) {"process-max", CONF ":2", NULL}, NULL);
	refused("integer with trailing text",
			"[global]\nprocess-max=4x\n",
			(const char *[]) {"process-max", "4x", CONF ":2", NULL}, NULL);
	refused("integer with inner space",
			"[global]\nprocess-max=1 2\n",
			(const char *[]) {"process-max", CONF ":2", NULL}, NULL);

	refused("invalid enum",
			"[global]\ncompress-type=lz4\n",
			(const char *[]) {"compress-type", "lz4", CONF ":2", NULL}, NULL);
	ok(load(&cfg, "[global]\ncompress-type=lz4\n", &err) == false, "invalid enum refused (again)");
	ok(strstr(err.message, "zst") != NULL || strstr(err.hint, "zst") != NULL,
	   "invalid enum: error lists the valid value zst");
	ok(strstr(err.message, "none") != NULL || strstr(err.hint, "none") != NULL,
	   "invalid enum: error lists the valid value none");
	pgbr_config_free(cfg);
	refused("enum prefix of a valid value",
			"[global]\ncompress-type=zs\n",
			(const char *[]) {"compress-type", NULL}, NULL);
	refused("enum valid value plus suffix",
			"[global]\nlog-level-console=infox\n",
			(const char *[]) {"log-level-console", NULL}, NULL);
	refused("enum is case-sensitive",
			"[global]\ncompress-type=ZST\n",
			(const char *[]) {"compress-type", NULL}, NULL);

	refused("option outside any section",
			"# leading comment\nrepo1-path=/x\n[global]\n",
			(const char *[]) {"repo1-path", "outside", CONF ":2", NULL}, NULL);

	refused("unterminated section header",
			"[global]\nrepo1-path=/x\n[demo\n",
			(const char *[]) {"[demo", CONF ":3", NULL}, NULL);
	refused("empty section header",
			"[]\nrepo1-path=/x\n",
			(const char *[]) {CONF ":1", NULL}, NULL);
	refused("text after a section header",
			"[global]x\n",
			(const char *[]) {CONF ":1", NULL}, NULL);

	refused("line without =",
			"[global]\nrepo1-path /x\n",
			(const char *[]) {"repo1-path /x", CONF ":2", NULL}, NULL);

	/* NUL byte: load_text with an explicit length */
	cfg = pgbr_config_create();
	pgbr_error_init(&err);
	{
		static const char text[] = "[global]\nrepo1-path=/x\0/y\n";

		ok(!pgbr_config_load_text(cfg, text, sizeof(text) - 1, CONF, &err),
		   "NUL byte in the file refused");
		like(err.message, CONF, "NUL byte: message names the file");
		like(err.message, "NUL", "NUL byte: message says NUL");
	}
	pgbr_config_free(cfg);

	/* command line errors */
	cfg = pgbr_config_create();
	pgbr_error_init(&err);
	ok(!pgbr_config_set_option(cfg, "bogus-flag", "1", &err), "set_option unknown option refused");
	like(err.message, "bogus-flag", "set_option unknown: names the option");
	pgbr_error_init(&err);
	ok(!pgbr_config_set_option(cfg, "compress-type", "lz4", &err), "set_option bad enum refused");
	like(err.message, "command line", "set_option bad value: says command line");
	like(err.message, "compress-type", "set_option bad value: names the option");
	pgbr_error_init(&err);
	ok(!pgbr_config_set_option(cfg, "start-fast", "true", &err), "set_option bad bool refused");
	like(err.hint, "y or n", "set_option bad bool: hint says y or n");
	pgbr_error_init(&err);
	ok(!pgbr_config_set_option(cfg, "pg1-port", "65536", &err), "set_option int out of range refused");
	ok(pgbr_config_get(cfg, "pg1-port") != NULL &&
	   strcmp(pgbr_config_get(cfg, "pg1-port"), "5432") == 0,
	   "a refused value does not replace the default");
	pgbr_config_free(cfg);

	/* a refused file leaves earlier lines: the error is what matters */
	ok(!load(&cfg, "[global]\nrepo1-path=/x\n[global\n", &err) && err.code == PGBR_ERR_OPTION,
	   "first error stops the load");
	pgbr_config_free(cfg);
}

static char *
write_tmp(const char *text)
{
	char	   *path = pgbr_strdup("/tmp/pgbr_unit_conf_XXXXXX");
	int			fd = mkstemp(path);
	size_t		len = strlen(text);

	if (fd < 0 || write(fd, text, len) != (ssize_t) len)
	{
		perror("write_tmp");
		exit(2);
	}
	close(fd);
	return path;
}

static void
test_files(void)
{
	PgbrConfig *cfg;
	PgbrError	err;
	char	   *path;
	char		want[300];

	/* missing file */
	cfg = pgbr_config_create();
	pgbr_error_init(&err);
	ok(pgbr_config_load_file(cfg, "/nonexistent/pgbr/unit.conf", true, &err) &&
	   !pgbr_error_is_set(&err), "missing file with missing_ok: success, no error");
	is_str(pgbr_config_get(cfg, "compress-type"), "zst", "missing file: defaults apply");
	pgbr_config_free(cfg);

	cfg = pgbr_config_create();
	pgbr_error_init(&err);
	ok(!pgbr_config_load_file(cfg, "/nonexistent/pgbr/unit.conf", false, &err),
	   "missing file without missing_ok: refused");
	is_int(err.code, PGBR_ERR_FILE_OPEN, "missing file: file open error");
	like(err.message, "/nonexistent/pgbr/unit.conf", "missing file: message names the file");
	like(err.message, "No such file", "missing file: message has the cause");
	pgbr_config_free(cfg);

	/* missing_ok covers a missing file only: a symlink loop is still an error */
	{
		char		loop[64];

		snprintf(loop, sizeof(loop), "/tmp/pgbr_unit_loop_%d", (int) getpid());
		unlink(loop);
		if (symlink(loop, loop) == 0)
		{
			cfg = pgbr_config_create();
			pgbr_error_init(&err);
			ok(!pgbr_config_load_file(cfg, loop, true, &err) && err.code == PGBR_ERR_FILE_OPEN,
			   "unreadable file (symlink loop) with missing_ok: still an error");
			like(err.message, loop, "symlink loop: message names the file");
			pgbr_config_free(cfg);
			unlink(loop);
		}
		else
			ok(false, "could not create a symlink loop in /tmp");
	}

	/* a real file */
	path = write_tmp("[global]\nrepo1-path=/var/lib/pgbr\n\n[demo]\npg1-path=/srv/demo\n");
	cfg = pgbr_config_create();
	pgbr_error_init(&err);
	ok(pgbr_config_load_file(cfg, path, false, &err), "load_file of a real file");
	is_str(pgbr_config_path(cfg), path, "config path is the file");
	pgbr_config_set_stanza(cfg, "demo");
	is_str(pgbr_config_get(cfg, "pg1-path"), "/srv/demo", "load_file: stanza value");
	snprintf(want, sizeof(want), "%s:5", path);
	is_str(pgbr_config_source(cfg, "pg1-path"), want, "load_file: source is path:line");

	/* require */
	pgbr_error_init(&err);
	ok(pgbr_config_require(cfg, "repo1-path", &err) && !pgbr_error_is_set(&err),
	   "require of a set option");
	ok(pgbr_config_require(cfg, "tls-server-port", &err), "require of an option with a default");
	ok(!pgbr_config_require(cfg, "tls-server-cert-file", &err), "require of an unset option fails");
	is_int(err.code, PGBR_ERR_OPTION_REQUIRED, "require: option-required error");
	like(err.message, "tls-server-cert-file", "require: message names the option");
	ok(strstr(err.message, path) != NULL || strstr(err.hint, path) != NULL,
	   "require: error (message or hint) names the file");
	pgbr_config_free(cfg);
	unlink(path);
	pgbr_free(path);

	/* errors from a file name the file and line */
	path = write_tmp("[global]\n\n\nrepo1-path=/x\nrepo1-retention-full=0\n");
	cfg = pgbr_config_create();
	pgbr_error_init(&err);
	ok(!pgbr_config_load_file(cfg, path, false, &err), "load_file with a bad value refused");
	snprintf(want, sizeof(want), "%s:5", path);
	like(err.message, want, "load_file: message names path:5");
	like(err.message, "repo1-retention-full", "load_file: message names the option");
	pgbr_config_free(cfg);
	unlink(path);
	pgbr_free(path);

	/* a NUL byte in a real file */
	{
		char	   *p = pgbr_strdup("/tmp/pgbr_unit_conf_XXXXXX");
		int			fd = mkstemp(p);
		static const char text[] = "[global]\nrepo1-path=/x\0\n";

		if (fd < 0 || write(fd, text, sizeof(text) - 1) != (ssize_t) sizeof(text) - 1)
			exit(2);
		close(fd);
		cfg = pgbr_config_create();
		pgbr_error_init(&err);
		ok(!pgbr_config_load_file(cfg, p, false, &err), "load_file: NUL byte in the file refused");
		like(err.message, p, "load_file NUL: message names the file");
		pgbr_config_free(cfg);
		unlink(p);
		pgbr_free(p);
	}

	/* a directory is not a configuration file */
	cfg = pgbr_config_create();
	pgbr_error_init(&err);
	ok(!pgbr_config_load_file(cfg, "/tmp", false, &err) && pgbr_error_is_set(&err),
	   "load_file of a directory refused");
	pgbr_config_free(cfg);
}

int
main(void)
{
	test_precedence();
	test_defaults();
	test_syntax();
	test_errors();
	test_files();
	return done_testing();
}
