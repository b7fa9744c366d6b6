/*
 * pgbr_ext.h
 *		Declarations shared by the files of the extension.  The seam to
 *		common/: PgbrError becomes an ereport in pgbr_ereport(), waits go
 *		through pgbr_backend_wait().
 */
#ifndef PGBR_EXT_H
#define PGBR_EXT_H

#include "compat.h"

#include <signal.h>

#include "pgbr_client.h"

/* GUCs */
extern char *pgbr_config_file;
extern char *pgbr_stanza;

/* raises err at elevel (ERROR never returns) with its hint */
extern void pgbr_ereport(int elevel, const PgbrError *err);

/*
 * Wait function for common/: waits on the latch and the socket, exits on
 * postmaster death, handles interrupts (a cancelled query stops waiting
 * by ERROR: callers free their connection in PG_FINALLY).  In the archiver,
 * where SIGTERM does not set interrupts, a stop request shortens the wait.
 */
extern int	pgbr_backend_wait(void *arg, int fd, int events, int timeout_ms, PgbrError *err);

/* set by the archiver's stop signal (see archive.c) */
extern volatile sig_atomic_t pgbr_archiver_stopping;

/*
 * The host configuration (pgbr.config, stanza pgbr.stanza), re-read when
 * the file or the GUCs change.  Returns NULL with err on a bad file.  The
 * result stays valid until the next call.
 */
extern const PgbrConfig *pgbr_backend_config(PgbrError *err);
/* changes whenever pgbr_backend_config() re-read the file */
extern uint64 pgbr_backend_config_generation(void);

/* opens an authorised session; ERROR on failure unless err is given */
extern PgbrConn *pgbr_backend_connect(const PgbrConfig *cfg, const char *program,
									  SSL_CTX **ctxp, PgbrError *err);

/* shared memory (needs shared_preload_libraries) */
extern void pgbr_shmem_init_hooks(void);

/* backup worker entry point */
extern PGDLLEXPORT void pgbr_backup_worker_main(Datum arg);

#endif							/* PGBR_EXT_H */
