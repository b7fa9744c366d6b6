/*
 * pgbr_log.h
 *		Console and file logging of the frontend programs, in pgBackRest's
 *		shape: "P00   INFO: message".  Frontend only.
 */
#ifndef PGBR_LOG_H
#define PGBR_LOG_H

#include "pgbr_error.h"

#ifndef FRONTEND
#error "pgbr_log.h is for the frontend programs only"
#endif

typedef enum PgbrLogLevel
{
	PGBR_LOG_OFF = 0,
	PGBR_LOG_ERROR,
	PGBR_LOG_WARN,
	PGBR_LOG_INFO,
	PGBR_LOG_DETAIL,
	PGBR_LOG_DEBUG,
	PGBR_LOG_TRACE
} PgbrLogLevel;

extern PgbrLogLevel pgbr_log_level_parse(const char *s);

/*
 * console: level printed on stdout (errors always go to stderr);
 * timestamps: prefix each line with the time (the server does).
 */
extern void pgbr_log_setup(PgbrLogLevel console, bool timestamps);
/* also append to this file at this level (NULL: none); false if unopenable */
extern bool pgbr_log_set_file(const char *path, PgbrLogLevel level, PgbrError *err);
extern void pgbr_log_set_process(int process_id);

extern void pgbr_log(PgbrLogLevel level, const char *fmt,...) PGBR_PRINTF(2, 3);

/* "ERROR: [NNN]: message" (+ "HINT: ...") on stderr and in the log file */
extern void pgbr_log_error(const PgbrError *err);

#endif							/* PGBR_LOG_H */
