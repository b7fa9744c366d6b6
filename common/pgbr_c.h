/*
 * pgbr_c.h
 *		Base definitions for the code in common/, which is compiled twice:
 *		once into pgbr.so (backend) and once, with -DFRONTEND, into the
 *		pgbr-server and pgbr programs.  This is the only header that knows
 *		about FRONTEND; nothing in common/ includes PostgreSQL headers.
 */
#ifndef PGBR_C_H
#define PGBR_C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PGBR_VERSION			"0.1.0"
#define PGBR_PROTOCOL_VERSION	1

/* size of the raw-data chunks streamed through pipelines and frames */
#define PGBR_CHUNK_SIZE			(128 * 1024)

#if defined(__GNUC__) || defined(__clang__)
#define PGBR_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#define PGBR_UNUSED			__attribute__((unused))
#else
#define PGBR_PRINTF(f, a)
#define PGBR_UNUSED
#endif

#define PGBR_LENGTHOF(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * Allocation.  common/ always uses malloc: callers own what they get and
 * free it with the matching _free function, which keeps the code identical
 * on both sides.  Allocation failure aborts on the frontend; in the backend
 * it is reported as an error by the caller (the functions return NULL).
 */
extern void *pgbr_malloc(size_t size);
extern void *pgbr_realloc(void *ptr, size_t size);
extern char *pgbr_strdup(const char *s);
extern void pgbr_free(void *ptr);

#endif							/* PGBR_C_H */
