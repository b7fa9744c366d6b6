/*
 * backup_info.h
 *		What the backup commands of the tool (info, restore, backup, verify,
 *		expire) share: the repository's INFO answer and manifest headers
 *		parsed into structs, pgBackRest's time format, text streams split
 *		into lines.
 */
#ifndef PGBR_BACKUP_INFO_H
#define PGBR_BACKUP_INFO_H

#include "tool.h"
#include "pgbr_manifest.h"

#include <time.h>

/* the [backup] header of a manifest, or one backup of an INFO answer */
typedef struct ToolBackup
{
	char		label[PGBR_LABEL_MAX + 1];
	char		type[8];		/* full, diff, incr */
	char		prior[PGBR_LABEL_MAX + 1];
	uint64_t	system_id;
	uint32_t	pg_version;
	int64_t		timestamp_start;
	int64_t		timestamp_stop;
	char		lsn_start[32];
	char		lsn_stop[32];
	char		wal_start[PGBR_NAME_MAX + 1];
	char		wal_stop[PGBR_NAME_MAX + 1];
	char		backup_from[16];
	uint64_t	size;			/* database size */
	uint64_t	delta;			/* bytes stored by this backup */
	uint64_t	repo_size;
	uint64_t	file_total;
	uint64_t	error_pages;
	char		reference[1024];	/* comma-separated labels, if the server says */
} ToolBackup;

/* applies one key=value of a header; unknown keys are ignored */
extern void tool_backup_set(ToolBackup *b, const char *key, const char *value);

typedef struct ToolRepoInfo
{
	char		stanza[PGBR_NAME_MAX + 1];
	uint64_t	system_id;
	uint32_t	pg_version;
	char		archive_min[PGBR_NAME_MAX + 1];
	char		archive_max[PGBR_NAME_MAX + 1];
	ToolBackup *backups;		/* oldest first */
	int			nbackups;
} ToolRepoInfo;

/* sends INFO and parses the answer */
extern bool tool_repo_info_get(PgbrConn *conn, ToolRepoInfo *info, PgbrError *err);
/* parses an INFO answer (exposed for tests) */
extern bool tool_repo_info_parse(const char *text, size_t len, ToolRepoInfo *info,
								 PgbrError *err);
extern void tool_repo_info_free(ToolRepoInfo *info);
extern const ToolBackup *tool_repo_info_find(const ToolRepoInfo *info, const char *label);

/*
 * Comma-separated labels the backup depends on, oldest first: the
 * server's reference list when it gives one, else the chain of priors.
 */
extern void tool_backup_references(const ToolRepoInfo *info, const ToolBackup *b, char *out,
								   size_t len);

/* "2025-11-17 13:41:41+00": local time and offset, as pgBackRest prints */
extern void tool_time_format(int64_t epoch, char *out, size_t len);

/* "15" for 150000, "9.6" for 90600 */
extern void tool_pg_version_format(uint32_t num, char *out, size_t len);

/*
 * A body that is text: either the raw bytes or one protocol string (u32
 * length + bytes).  Sets *text / *len to the text inside.
 */
extern void tool_body_text(const PgbrBuf *body, const char **text, size_t *len);

/* a sink that calls fn for each complete line (without newline) */
typedef bool (*ToolLineFn) (void *arg, const char *line, size_t len, PgbrError *err);
extern PgbrSink *tool_sink_lines_create(ToolLineFn fn, void *arg);

/* "--name=value" for the "command begin" log line, pgBackRest style */
extern void tool_options_string(ToolContext *ctx, const char *const *names, char *out,
								size_t len);

#endif							/* PGBR_BACKUP_INFO_H */
