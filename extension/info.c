/*
 * info.c
 *		pgbr_info(): the backups of the stanza, one row each, from the
 *		repository server's INFO answer (key=value lines; each backup
 *		starts with a backup=<label> line, oldest first).
 */
#include "pgbr_ext.h"
#include "pgbr_manifest.h"

#include <stdlib.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pgbr_info);

/* the answer is bounded by the server (64 x PGBR_TEXT_MAX) */
#define INFO_MAX	(PGBR_TEXT_MAX * 64)

enum
{
	COL_LABEL,
	COL_TYPE,
	COL_PRIOR,
	COL_TS_START,
	COL_TS_STOP,
	COL_WAL_START,
	COL_WAL_STOP,
	COL_DB_SIZE,
	COL_BACKUP_SIZE,
	COL_REPO_SIZE,
	COL_LSN_START,
	COL_LSN_STOP,
	COL_FROM,
	COL_FILE_TOTAL,
	COL_ERROR_PAGES,
	NCOLS
};

typedef struct InfoRow
{
	Datum		values[NCOLS];
	bool		nulls[NCOLS];
	bool		active;
} InfoRow;

static void
row_start(InfoRow *row, const char *label)
{
	for (int i = 0; i < NCOLS; i++)
	{
		row->values[i] = (Datum) 0;
		row->nulls[i] = true;
	}
	row->values[COL_LABEL] = CStringGetTextDatum(label);
	row->nulls[COL_LABEL] = false;
	row->active = true;
}

static void
set_text(InfoRow *row, int col, const char *v)
{
	if (v[0] == '\0')
		return;
	row->values[col] = CStringGetTextDatum(v);
	row->nulls[col] = false;
}

/* a whole decimal number, or false (the column stays NULL) */
static bool
parse_int64(const char *v, int64 *n)
{
	char	   *end;

	errno = 0;
	*n = (int64) strtoll(v, &end, 10);
	return v[0] != '\0' && *end == '\0' && errno == 0;
}

static void
set_int(InfoRow *row, int col, const char *v)
{
	int64		n;

	if (!parse_int64(v, &n))
		return;
	row->values[col] = Int64GetDatum(n);
	row->nulls[col] = false;
}

static void
set_time(InfoRow *row, int col, const char *v)
{
	int64		n;

	if (!parse_int64(v, &n))
		return;
	row->values[col] = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) n));
	row->nulls[col] = false;
}

static void
set_lsn(InfoRow *row, int col, const char *v)
{
	bool		bad = false;
	XLogRecPtr	lsn = pg_lsn_in_internal(v, &bad);

	if (bad)
		return;
	row->values[col] = LSNGetDatum(lsn);
	row->nulls[col] = false;
}

static void
row_set(InfoRow *row, const char *key, const char *value)
{
	if (strcmp(key, "type") == 0)
		set_text(row, COL_TYPE, value);
	else if (strcmp(key, "prior") == 0)
		set_text(row, COL_PRIOR, value);
	else if (strcmp(key, "timestamp-start") == 0)
		set_time(row, COL_TS_START, value);
	else if (strcmp(key, "timestamp-stop") == 0)
		set_time(row, COL_TS_STOP, value);
	else if (strcmp(key, "wal-start") == 0)
		set_text(row, COL_WAL_START, value);
	else if (strcmp(key, "wal-stop") == 0)
		set_text(row, COL_WAL_STOP, value);
	else if (strcmp(key, "size") == 0)
		set_int(row, COL_DB_SIZE, value);
	else if (strcmp(key, "delta") == 0)
		set_int(row, COL_BACKUP_SIZE, value);
	else if (strcmp(key, "repo-size") == 0)
		set_int(row, COL_REPO_SIZE, value);
	else if (strcmp(key, "lsn-start") == 0)
		set_lsn(row, COL_LSN_START, value);
	else if (strcmp(key, "lsn-stop") == 0)
		set_lsn(row, COL_LSN_STOP, value);
	else if (strcmp(key, "backup-from") == 0)
		set_text(row, COL_FROM, value);
	else if (strcmp(key, "file-total") == 0)
		set_int(row, COL_FILE_TOTAL, value);
	else if (strcmp(key, "error-pages") == 0)
		set_int(row, COL_ERROR_PAGES, value);
}

/* INFO: the key=value text of the stanza, palloc'd */
static char *
fetch_info(const PgbrConfig *cfg)
{
	SSL_CTX    *volatile tls = NULL;
	PgbrConn   *volatile conn = NULL;
	PgbrError	err;
	PgbrBuf		b;
	char	   *text = palloc(INFO_MAX + 1);
	volatile bool ok = false;

	pgbr_error_init(&err);
	pgbr_buf_init(&b);
	PG_TRY();
	{
		SSL_CTX    *t;

		conn = pgbr_backend_connect(cfg, "info", &t, NULL);
		tls = t;
		ok = pgbr_conn_send(conn, PGBR_MSG_INFO, NULL, 0, &err) &&
			pgbr_conn_expect_ok(conn, &b, &err) &&
			pgbr_name_decode(b.data, b.len, text, INFO_MAX, &err);
	}
	PG_FINALLY();
	{
		pgbr_conn_free(conn);
		SSL_CTX_free(tls);
		pgbr_buf_release(&b);
	}
	PG_END_TRY();
	if (!ok)
		pgbr_ereport(ERROR, &err);
	return text;
}

Datum
pgbr_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgbrError	err;
	const PgbrConfig *cfg;
	char	   *text;
	char	   *save = NULL;
	InfoRow		row;

	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("must be superuser to run pgbr_info()")));
	pgbr_error_init(&err);
	cfg = pgbr_backend_config(&err);
	if (cfg == NULL)
		pgbr_ereport(ERROR, &err);
	InitMaterializedSRF(fcinfo, 0);
	text = fetch_info(cfg);

	row.active = false;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *key,
				   *value;

		if (!pgbr_kv_split(line, &key, &value))
			continue;
		if (strcmp(key, "backup") == 0)
		{
			if (row.active)
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row.values, row.nulls);
			row_start(&row, value);
		}
		else if (row.active)
			row_set(&row, key, value);
	}
	if (row.active)
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row.values, row.nulls);
	return (Datum) 0;
}
