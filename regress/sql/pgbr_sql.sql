-- The SQL surface of the extension: objects, privileges, argument errors.
CREATE EXTENSION pgbr;

SELECT p.proname, pg_get_function_arguments(p.oid) AS args,
       pg_get_function_result(p.oid) AS result
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname IN ('pgbr_stanza_create', 'pgbr_check')
ORDER BY 1;

-- only superusers may register the stanza or run the check
SELECT has_function_privilege('public', 'pgbr_stanza_create()', 'EXECUTE') AS public_can_create,
       has_function_privilege('public', 'pgbr_check()', 'EXECUTE') AS public_can_check;

-- without pgbr.stanza nothing can work: the error says what to set
SHOW pgbr.stanza;
SELECT pgbr_check();
SELECT pgbr_stanza_create();

-- both settings are reloadable (PGC_SIGHUP), not per session
SET pgbr.stanza = 'demo';

-- a stanza name that could escape the repository is refused
ALTER SYSTEM SET pgbr.stanza = '../other';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT pgbr_check();

-- a configuration file that does not exist is named
ALTER SYSTEM SET pgbr.stanza = 'demo';
ALTER SYSTEM SET pgbr.config = '/nonexistent/pgbr.conf';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT pgbr_check();
SELECT pgbr_stanza_create();

ALTER SYSTEM RESET pgbr.stanza;
ALTER SYSTEM RESET pgbr.config;
SELECT pg_reload_conf();
