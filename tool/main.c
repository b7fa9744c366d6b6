/*
 * main.c
 *		pgbr: the command-line tool.  Parses options and dispatches to the
 *		command.  Exit status 0 on success; on failure one line
 *		"ERROR: [NNN]: message" on stderr and the error code as exit status
 *		(archive-get of a file the repository lacks exits 1 quietly).
 */
#include "tool.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct CommandDef
{
	const char *name;
	ToolCommand fn;
	const char *help;
	bool		hidden;
} CommandDef;

static int	cmd_version(ToolContext *ctx, PgbrError *err);
static int	cmd_help(ToolContext *ctx, PgbrError *err);

static const CommandDef commands[] = {
	{"version", cmd_version, "print the version", false},
	{"help", cmd_help, "print this help", false},
	{"server-ping", cmd_server_ping, "check that the repository server answers (no authorisation needed)", false},
	{"server-hello", cmd_server_hello, "open an authorised session for the stanza and close it", true},
	{"stanza-create", cmd_stanza_create, "register this cluster under the stanza in the repository", false},
	{"check", cmd_check, "switch WAL and wait until the segment is archived", false},
	{"archive-get", cmd_archive_get, "fetch a WAL file for restore_command: archive-get WAL PATH", false},
	{"backup", cmd_backup, "run a backup in the cluster at pg1: --type=full|diff|incr", false},
	{"info", cmd_info, "list the backups and WAL archive of the stanza (--output=text|json)", false},
	{"restore", cmd_restore, "restore a backup into pg1-path (--set, --delta [--force], --type, --target ...)", false},
	{"verify", cmd_verify, "check every file of the stanza in the repository", false},
	{"expire", cmd_expire, "apply the repository's retention now", false},
};

static int
cmd_version(ToolContext *ctx, PgbrError *err)
{
	printf("pgbr %s\n", PGBR_VERSION);
	return 0;
}

static int
cmd_help(ToolContext *ctx, PgbrError *err)
{
	printf("pgbr %s - backups and WAL archive for PostgreSQL over mutual TLS\n\n"
		   "Usage: pgbr [--option=value ...] COMMAND [ARGS]\n\nCommands:\n", PGBR_VERSION);
	for (size_t i = 0; i < PGBR_LENGTHOF(commands); i++)
		if (!commands[i].hidden)
			printf("  %-15s %s\n", commands[i].name, commands[i].help);
	printf("\nOptions (also read from the configuration file, default %s):\n"
		   "  --config=PATH   configuration file (or PGBR_CONFIG)\n"
		   "  --stanza=NAME   the stanza to act on\n"
		   "  --NAME=VALUE    any option of the configuration file, e.g. --log-level-console=info\n"
		   "  --NAME, --no-NAME  a boolean option set to y or n\n"
		   "\nRestore options:\n"
		   "  --set=LABEL               the backup to restore (default: the newest)\n"
		   "  --delta                   reuse the files of pg1-path whose checksum matches\n"
		   "  --force                   with --delta: trust size and modification time instead\n"
		   "  --type=TYPE               default (recover to the end of the archive), immediate,\n"
		   "                            time, xid, lsn, name, standby, preserve or none\n"
		   "  --target=VALUE            the recovery target of --type=time|xid|lsn|name\n"
		   "  --target-exclusive        stop just before the target\n"
		   "  --target-action=ACTION    pause (default), promote or shutdown at the target\n"
		   "  --target-timeline=TLI     recovery_target_timeline\n"
		   "  --recovery-option=K=V     a setting for postgresql.auto.conf (repeatable)\n"
		   "  --tablespace-map=OID=DIR  restore a tablespace elsewhere (repeatable)\n"
		   "\nThe configuration reference is in README.md.\n",
		   PGBR_CONFIG_DEFAULT_PATH);
	return 0;
}

/* boolean options may be given as a bare --name (y) or --no-name (n) */
static bool
parse_option(ToolContext *ctx, const char *arg, PgbrError *err)
{
	const char *body = arg + 2;
	const char *eq = strchr(body, '=');
	char		name[128];
	const char *value;

	if (eq)
	{
		if ((size_t) (eq - body) >= sizeof(name))
			return pgbr_error_set(err, PGBR_ERR_OPTION, "option \"%s\" is too long", arg);
		memcpy(name, body, (size_t) (eq - body));
		name[eq - body] = '\0';
		value = eq + 1;
	}
	else if (strncmp(body, "no-", 3) == 0 && pgbr_config_known(body + 3))
	{
		snprintf(name, sizeof(name), "%s", body + 3);
		value = "n";
	}
	else
	{
		snprintf(name, sizeof(name), "%s", body);
		value = "y";
	}
	if (strcmp(name, "config") == 0 || strcmp(name, "stanza") == 0)
		return true;			/* handled before the file is read */
	return pgbr_config_set_option(ctx->cfg, name, value, err);
}

int
main(int argc, char **argv)
{
	ToolContext ctx;
	PgbrError	err;
	const CommandDef *cmd = NULL;
	int			cmd_index = -1;
	int			rc;

	signal(SIGPIPE, SIG_IGN);
	memset(&ctx, 0, sizeof(ctx));
	pgbr_error_init(&err);
	ctx.config_path = getenv("PGBR_CONFIG");
	ctx.config_explicit = ctx.config_path != NULL;

	/* first pass: --config, --stanza and the command */
	for (int i = 1; i < argc; i++)
	{
		if (strncmp(argv[i], "--config=", 9) == 0)
		{
			ctx.config_path = argv[i] + 9;
			ctx.config_explicit = true;
		}
		else if (strncmp(argv[i], "--stanza=", 9) == 0)
			ctx.stanza = argv[i] + 9;
		else if (strncmp(argv[i], "--", 2) != 0 && cmd_index < 0)
			cmd_index = i;
	}
	if (cmd_index < 0)
	{
		cmd_help(&ctx, &err);
		return PGBR_ERR_COMMAND;
	}
	for (size_t i = 0; i < PGBR_LENGTHOF(commands); i++)
		if (strcmp(commands[i].name, argv[cmd_index]) == 0)
			cmd = &commands[i];
	if (cmd == NULL)
	{
		pgbr_error_set(&err, PGBR_ERR_COMMAND, "invalid command \"%s\"", argv[cmd_index]);
		pgbr_error_hint(&err, "Run \"pgbr help\" for the list of commands.");
		pgbr_log_error(&err);
		return err.code;
	}
	if (ctx.stanza && !pgbr_stanza_name_valid(ctx.stanza))
	{
		pgbr_error_set(&err, PGBR_ERR_OPTION, "invalid stanza name \"%s\"", ctx.stanza);
		pgbr_log_error(&err);
		return err.code;
	}
	if (ctx.config_path == NULL)
		ctx.config_path = PGBR_CONFIG_DEFAULT_PATH;

	ctx.cfg = pgbr_config_create();
	pgbr_config_set_stanza(ctx.cfg, ctx.stanza);
	if (cmd->fn != cmd_version && cmd->fn != cmd_help &&
		!pgbr_config_load_file(ctx.cfg, ctx.config_path, !ctx.config_explicit, &err))
	{
		pgbr_log_error(&err);
		return err.code;
	}
	ctx.args = pgbr_malloc(sizeof(char *) * (size_t) argc);
	for (int i = 1; i < argc; i++)
	{
		if (i == cmd_index)
			continue;
		if (strncmp(argv[i], "--", 2) == 0)
		{
			if (!parse_option(&ctx, argv[i], &err))
			{
				pgbr_log_error(&err);
				return err.code;
			}
		}
		else
			ctx.args[ctx.nargs++] = argv[i];
	}
	pgbr_log_setup(pgbr_log_level_parse(pgbr_config_get(ctx.cfg, "log-level-console")), false);

	rc = cmd->fn(&ctx, &err);
	if (rc != 0 && pgbr_error_is_set(&err))
	{
		pgbr_log_error(&err);
		rc = err.code;
	}
	pgbr_config_free(ctx.cfg);
	pgbr_free(ctx.args);
	return rc;
}
