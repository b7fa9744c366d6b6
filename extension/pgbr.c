/*
 * pgbr.c
 *		Module entry: GUCs and, when preloaded, shared memory for backups.
 */
#include "pgbr_ext.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

char	   *pgbr_config_file = NULL;
char	   *pgbr_stanza = NULL;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("pgbr.config",
							   "Path of the pgbr configuration file of this host.",
							   NULL,
							   &pgbr_config_file,
							   PGBR_CONFIG_DEFAULT_PATH,
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pgbr.stanza",
							   "Stanza this cluster archives and backs up to.",
							   NULL,
							   &pgbr_stanza,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	MarkGUCPrefixReserved("pgbr");

	if (process_shared_preload_libraries_in_progress)
		pgbr_shmem_init_hooks();
}
