/*
 * compat.h
 *		Every PG_VERSION_NUM difference the extension cares about, in one
 *		place.  Target: PostgreSQL 15; 16-18 compile through these shims.
 */
#ifndef PGBR_COMPAT_H
#define PGBR_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "pgbr requires PostgreSQL 15 or later"
#endif

/*
 * Archive module API: 15 has the callbacks in postmaster/pgarch.h with no
 * state argument; 16 moved them to archive/archive_module.h, added a state
 * argument and a startup callback, and returns the callbacks.
 */
#if PG_VERSION_NUM >= 160000
#include "archive/archive_module.h"
#define PGBR_ARCHIVE_STATE_ARG		ArchiveModuleState *state,
#define PGBR_ARCHIVE_STATE_ONLY		ArchiveModuleState *state
#else
#include "postmaster/pgarch.h"
#define PGBR_ARCHIVE_STATE_ARG
#define PGBR_ARCHIVE_STATE_ONLY		void
#endif

/*
 * 17+ catch an ERROR thrown by the archive callback and retry; 15 and 16
 * turn it into FATAL, so the module catches its own errors there.
 */
#if PG_VERSION_NUM < 170000
#define PGBR_ARCHIVE_CATCHES_ERRORS 1
#endif

/* bgw_library_name grew to MAXPGPATH in 17: always use sizeof() */

/* 18 replaced pg_attribute_noreturn() by pg_noreturn */
#if PG_VERSION_NUM >= 180000
#define PGBR_NORETURN pg_noreturn
#else
#define PGBR_NORETURN
#endif

/* 16+: the walkable tablespace version directory has the same macro */
#include "catalog/catversion.h"

#endif							/* PGBR_COMPAT_H */
