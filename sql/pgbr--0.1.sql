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
