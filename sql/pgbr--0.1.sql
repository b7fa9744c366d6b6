/* pgbr--0.1.sql */

\echo Use "CREATE EXTENSION pgbr" to load this file. \quit

CREATE FUNCTION pgbr_stanza_create()
RETURNS text
AS 'MODULE_PATHNAME', 'pgbr_stanza_create'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION pgbr_stanza_create() IS
'register this cluster under pgbr.stanza in the repository';

CREATE FUNCTION pgbr_check()
RETURNS text
AS 'MODULE_PATHNAME', 'pgbr_check'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION pgbr_check() IS
'switch WAL and wait until the segment is in the repository';

REVOKE ALL ON FUNCTION pgbr_stanza_create() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgbr_check() FROM PUBLIC;

-- backups (need pgbr in shared_preload_libraries)

CREATE FUNCTION pgbr_backup(type text DEFAULT 'incr')
RETURNS text
AS 'MODULE_PATHNAME', 'pgbr_backup'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION pgbr_backup(text) IS
'run a full, diff or incr backup in a background worker and return its label';

CREATE PROCEDURE pgbr_backup_run(type text DEFAULT 'incr', INOUT label text DEFAULT NULL)
AS 'MODULE_PATHNAME', 'pgbr_backup_run'
LANGUAGE C;

COMMENT ON PROCEDURE pgbr_backup_run(text, text) IS
'pgbr_backup() for CALL: outside a transaction block the session holds no snapshot while it waits';

-- the standby's side of a backup taken from the standby (backup-standby):
-- the primary's backup worker CALLs it on the standby over libpq
CREATE PROCEDURE pgbr_backup_standby_copy(
    stanza text,
    label text,
    token text,
    prior text,
    start_lsn pg_lsn,
    INOUT result text DEFAULT NULL)
AS 'MODULE_PATHNAME', 'pgbr_backup_standby_copy'
LANGUAGE C;

COMMENT ON PROCEDURE pgbr_backup_standby_copy(text, text, text, text, pg_lsn, text) IS
'on a standby: send the standby''s files of a backup the primary runs (called by the primary''s backup worker)';

CREATE FUNCTION pgbr_info(
    OUT label text,
    OUT type text,
    OUT prior text,
    OUT timestamp_start timestamptz,
    OUT timestamp_stop timestamptz,
    OUT wal_start text,
    OUT wal_stop text,
    OUT database_size bigint,
    OUT backup_size bigint,
    OUT repository_size bigint,
    OUT lsn_start pg_lsn,
    OUT lsn_stop pg_lsn,
    OUT backup_from text,
    OUT file_total bigint,
    OUT error_pages bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pgbr_info'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION pgbr_info() IS
'the backups of this stanza in the repository, oldest first';

CREATE FUNCTION pgbr_backup_progress(
    OUT phase text,
    OUT files_done bigint,
    OUT files_total bigint,
    OUT bytes_done bigint,
    OUT bytes_total bigint,
    OUT label text,
    OUT type text,
    OUT pid integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pgbr_backup_progress'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW pgbr_progress AS
    SELECT * FROM pgbr_backup_progress();

COMMENT ON VIEW pgbr_progress IS
'the backup that runs now: one row, or none';

REVOKE ALL ON FUNCTION pgbr_backup(text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE pgbr_backup_run(text, text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE pgbr_backup_standby_copy(text, text, text, text, pg_lsn, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgbr_info() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgbr_backup_progress() FROM PUBLIC;
REVOKE ALL ON pgbr_progress FROM PUBLIC;
