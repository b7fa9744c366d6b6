/*
 * shmem.c
 *		Shared memory for backups (state of the running backup, progress).
 *		Only available when pgbr is in shared_preload_libraries.
 */
#include "pgbr_ext.h"

void
pgbr_shmem_init_hooks(void)
{
}
