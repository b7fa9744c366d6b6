#!/usr/bin/env bash
#
# bench/bench-backup.sh - backup and restore: pgbr against pgBackRest and
# pg_basebackup, in one run, on the same data.
#
# Three data sets, each in its own PostgreSQL 15 cluster (one cluster at a
# time runs, the others are stopped):
#
#   pgbench   pgbench -i -s 100 (about 1.5 GB; compresses about 36:1)
#   random    about 1 GiB of pgcrypto gen_random_bytes() in a bytea table
#             (does not compress)
#   tables    10,000 small tables (id int primary key, v text; 10 rows each:
#             heap, primary key, TOAST table and TOAST index files)
#
# Every data set is loaded with wal_level=minimal, fsync=off and archiving
# off (so that loading does not archive gigabytes of WAL), then the cluster
# is restarted for the measurements with wal_level=replica, archive_mode=on,
# shared_preload_libraries='pgbr', autovacuum=off, and every tool backs up
# that same cluster in sequence:
#
#   pg_basebackup  -Ft -X stream --checkpoint=fast
#                  --compress=server-zstd:level=3,workers=2
#                  (-X stream is the default and what users run; the WAL
#                  streamed meanwhile lands in pg_wal.tar, uncompressed)
#   pgBackRest     the seed guide's TLS layout on loopback: `backup` runs on
#                  the "repository host" side (repo1-path local, pg1-host=
#                  localhost, pg1-host-type=tls) against a pgBackRest TLS
#                  server on the "PostgreSQL host" side; archive-push from
#                  the cluster goes to a second pgBackRest TLS server on the
#                  repository side.  process-max=2, compress-type=zst,
#                  compress-level=3, repo1-bundle=y, start-fast=y, and the
#                  default archive-check=y.
#   pgbr           SELECT pgbr_backup('full'|'incr') in the cluster (the
#                  background worker and process-max - 1 helper), to
#                  pgbr-server over mutual TLS; process-max=2,
#                  compress-level=3, repo1-bundle=y, start-fast=y
#   tar | zstd     tar of the data directory (pg_wal excluded) | zstd -3 -T2,
#                  a reference for what reading + compressing costs
#
# The archiver: PostgreSQL 15 uses archive_library when it is set (pgbr) and
# archive_command otherwise, so before the pgBackRest backups the cluster is
# switched to archive_library = '' + archive_command = 'pgbackrest
# archive-push' (ALTER SYSTEM + pg_reload_conf, after the .ready queue has
# drained; `pgbackrest check` proves it works), and back to archive_library
# = 'pgbr' (pgbr_check() proves it) before the pgbr incr.  Each tool thus
# waits for its own WAL with its own archiver, as its users' clusters do;
# neither needs archive-check=n.  Each archive has gaps where the other tool
# archived, which neither backup needs.  (PostgreSQL 15 restarts an archiver
# that exited because archive_library changed only >= 10 s after its last
# start and only when the postmaster's loop wakes - up to 60 s on an idle
# cluster; the switch polls with new connections until the new archiver
# runs, outside the timings.)  The pgbr and pgBackRest full backups swap
# order in every repetition, so the archiver switches once per repetition,
# and once more before the incr of the tool that is not archiving then.
#
# Before every timed step: CHECKPOINT (the backups' own fast checkpoints then
# cost the same for each tool) and sync (no write-back of the previous step
# bleeds into the next).  The data directory is read once before the first
# measurement, so every tool reads from a warm page cache.
#
# Per data set, in this order (full backups and restores PGBR_BENCH_REPEAT
# times, default 3, the tables give the median):
#   A. full: pg_basebackup, pgbr, pgBackRest, tar|zstd (pgbr and pgBackRest
#      swap places in even repetitions)
#   B. restore of the latest full into an empty directory (pgBackRest, pgbr;
#      swapped in even repetitions; pgBackRest restore from
#      the PostgreSQL-host side over TLS, pgbr restore; process-max=2), then
#      3 small files of each restored directory changed (one deleted, one
#      appended to, one overwritten in place) and `restore --delta` (both
#      compare checksums); the 3 files are checked against their restored
#      checksums afterwards, and (pgbench) pgbr's restored cluster is
#      started, recovers through pgbr archive-get and is counted
#   C. a change, CHECKPOINT, then incr: pgBackRest, pgbr.  The change:
#      pgbench -T 30 (pgbench), 1 % more random rows (random), one UPDATE in
#      every 100th table (tables); the change's WAL is archived by
#      pgBackRest's archive-push (sync), the archiver in place then
#   D. (pgbench) the database grown by PGBR_BENCH_GROW copies of
#      pgbench_accounts, one more pgbr full backup: its memory against the
#      first full backups' (flat as the database grows)
#
# Memory: every 0.1 s the process trees of the cluster, both servers and
# this script are sampled; for pgbr's backup worker processes (backend_type
# 'pgbr backup': the worker "pgbr backup of stanza S" and its helpers
# "pgbr backup process N") the largest VmHWM and RssAnon are reported, and
# the same for pgbr-server's and pgBackRest's processes.  A process living
# less than 0.1 s, or growing in its last 0.1 s, can be missed.
#
# Run as root (clusters and servers run as user postgres via runuser), with
# the installed pgbr (make && make install).  Everything lives in
# /tmp/pgbr-bench-backup (emptied at the start; big outputs - restored
# directories, base backups, tar files - are removed once measured, the rest
# is left for inspection with all processes stopped).  Results in
# /tmp/pgbr-bench-backup/results.txt.
#
# Environment:
#   PGBR_BENCH_DIR        scratch directory (default /tmp/pgbr-bench-backup)
#   PGBR_BENCH_DATASETS   comma list of pgbench,random,tables (default all)
#   PGBR_BENCH_RESTORE    data sets whose restore is measured (default all)
#   PGBR_BENCH_SCALE      pgbench -i scale (default 100)
#   PGBR_BENCH_PGBENCH_T  seconds of pgbench before the incr (default 30)
#   PGBR_BENCH_RANDOM_MB  size of the random table (default 1024)
#   PGBR_BENCH_TABLES     number of small tables (default 10000)
#   PGBR_BENCH_KEEP       1: keep restored directories and base backups
#   PGBR_BENCH_REPEAT     repetitions of every full backup and restore
#                         (default 3; the tables give the median, the
#                         details every value; the incr runs once)
#   PGBR_BENCH_GROW       copies of pgbench_accounts added after the
#                         pgbench incr for one more pgbr full backup, whose
#                         memory is compared with the first ones' (default
#                         1, the database about doubles; 0: none)

set -euo pipefail

BENCH=${PGBR_BENCH_DIR:-/tmp/pgbr-bench-backup}
DATASETS=${PGBR_BENCH_DATASETS:-pgbench,random,tables}
RESTORE_SETS=${PGBR_BENCH_RESTORE:-pgbench,random,tables}
SCALE=${PGBR_BENCH_SCALE:-100}
PGBENCH_T=${PGBR_BENCH_PGBENCH_T:-30}
RANDOM_MB=${PGBR_BENCH_RANDOM_MB:-1024}
TABLES=${PGBR_BENCH_TABLES:-10000}
KEEP=${PGBR_BENCH_KEEP:-0}
REPEAT=${PGBR_BENCH_REPEAT:-3}
GROW=${PGBR_BENCH_GROW:-1}
RUN_USER=postgres
PROCESS_MAX=2
LEVEL=3

ALL_SETS=(pgbench random tables)
declare -A PGPORT=([pgbench]=54341 [random]=54342 [tables]=54343)
CHECK_PORT=54349
STANZA_PREFIX=bb-

BENCH_NAME=bench-backup
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
in_list() { [[ ",$1," == *",$2,"* ]]; }

# ---------------------------------------------------------------- checks

[ "$(id -u)" -eq 0 ] || die "run as root (clusters run as $RUN_USER via runuser)"
id "$RUN_USER" >/dev/null 2>&1 || die "user $RUN_USER does not exist"
case "$BENCH" in
/tmp/?*) ;;
*) die "PGBR_BENCH_DIR=$BENCH: must be under /tmp (it is emptied)" ;;
esac
for ds in ${DATASETS//,/ }; do
	[ -n "${PGPORT[$ds]:-}" ] || die "unknown data set $ds (pgbench, random, tables)"
done
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}
[ -x "$PG_CONFIG" ] || die "pg_config not found"
PG_BINDIR=$("$PG_CONFIG" --bindir)
PG_LIBDIR=$("$PG_CONFIG" --pkglibdir)
for p in initdb pg_ctl psql pgbench pg_basebackup pgbr pgbr-server; do
	[ -x "$PG_BINDIR/$p" ] || die "$PG_BINDIR/$p not found (make && make install)"
done
[ -f "$PG_LIBDIR/pgbr.so" ] || die "$PG_LIBDIR/pgbr.so not found (make && make install)"
[ -f "$("$PG_CONFIG" --sharedir)/extension/pgcrypto.control" ] || die "pgcrypto not installed (postgresql-contrib)"
PGBACKREST=$(command -v pgbackrest || true)
[ -n "$PGBACKREST" ] || die "pgbackrest not found (apt-get install pgbackrest)"
for p in openssl zstd tar; do command -v "$p" >/dev/null || die "$p not found"; done
PGBR=$PG_BINDIR/pgbr

# ---------------------------------------------------------------- cleanup

SERVER_PIDS=()
SAMPLER_PID=
stop_clusters() {
	local d
	for d in "$BENCH"/pg-* "$BENCH"/restore/*; do
		[ -f "$d/postmaster.pid" ] || continue
		as_user "$PG_BINDIR/pg_ctl" -D "$d" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	done
}

stop_servers() {
	local f p
	for f in "$BENCH"/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		if [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "--config=$BENCH/"; then
			stop_pid "$p"
		fi
		rm -f "$f"
	done
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$SAMPLER_PID" ]; then
		touch "$BENCH/sampler.stop" 2>/dev/null
		wait "$SAMPLER_PID" 2>/dev/null
	fi
	stop_clusters
	stop_servers
	exit $rc
}

say "scratch directory $BENCH"
if [ -d "$BENCH" ]; then
	stop_clusters
	stop_servers
	rm -rf "$BENCH"
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
T_START=$EPOCHREALTIME
mkdir -p "$BENCH"
chown "$RUN_USER": "$BENCH"
chmod 0755 "$BENCH"
mk "$BENCH/run" "$BENCH/certs" "$BENCH/pgbr/repo" "$BENCH/pgbr/log" \
	"$BENCH/pgbackrest/repo" "$BENCH/pgbackrest/log-repo" "$BENCH/pgbackrest/log-pg" \
	"$BENCH/pgbackrest/lock-repo" "$BENCH/pgbackrest/lock-pg" "$BENCH/out" "$BENCH/restore" "$BENCH/logs"
as_user chmod 0700 "$BENCH/certs" "$BENCH/pgbr/repo" "$BENCH/pgbackrest/repo"
info "load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GB RAM"
info "pgbr: $("$PGBR" version 2>/dev/null || echo '?'); $("$PGBACKREST" version); $("$PG_BINDIR/pg_basebackup" --version)"
BUSY=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 { printf "%s(%s%%) ", $2, $1 }')
[ -n "$BUSY" ] && info "other processes busy at start: $BUSY"

# ---------------------------------------------------------------- ports

free_port PGBR_PORT
free_port PBR_REPO_PORT
free_port PBR_PG_PORT
info "ports: pgbr-server $PGBR_PORT, pgBackRest server (repository side) $PBR_REPO_PORT, (PostgreSQL side) $PBR_PG_PORT"

# ---------------------------------------------------------------- certificates

say "certificates (CA, backup-srv, pg1-srv; both also name localhost and 127.0.0.1)"
C=$BENCH/certs
make_certs "$C"

# ---------------------------------------------------------------- configuration files

stanza() { printf '%s%s' "$STANZA_PREFIX" "$1"; }

writef "$BENCH/pgbr/server.conf" <<EOF
[global]
repo1-path=$BENCH/pgbr/repo
repo1-bundle=y
log-level-console=info
log-level-file=info
log-path=$BENCH/pgbr/log
tls-server-address=127.0.0.1
tls-server-port=$PGBR_PORT
tls-server-cert-file=$C/backup-srv.crt
tls-server-key-file=$C/backup-srv.key
tls-server-ca-file=$C/ca.crt
tls-server-auth=pg1-srv=*
EOF

PGBR_CONF=$BENCH/pgbr/pgbr.conf
{
	cat <<EOF
[global]
repo1-host=localhost
repo1-host-port=$PGBR_PORT
repo1-host-cert-file=$C/pg1-srv.crt
repo1-host-key-file=$C/pg1-srv.key
repo1-host-ca-file=$C/ca.crt
compress-type=zst
compress-level=$LEVEL
process-max=$PROCESS_MAX
start-fast=y
log-level-console=info
log-path=$BENCH/pgbr/log
EOF
	for ds in "${ALL_SETS[@]}"; do
		printf '\n[%s]\npg1-path=%s\npg1-socket-path=%s\npg1-port=%s\n' \
			"$(stanza "$ds")" "$BENCH/pg-$ds" "$BENCH/run" "${PGPORT[$ds]}"
	done
} | writef "$PGBR_CONF"

# pgBackRest, repository side: runs `backup`, `stanza-create`, `check`, and
# a TLS server for archive-push / restore coming from the PostgreSQL side
PBR_REPO_CONF=$BENCH/pgbackrest/repo.conf
{
	cat <<EOF
[global]
repo1-path=$BENCH/pgbackrest/repo
repo1-bundle=y
process-max=$PROCESS_MAX
compress-type=zst
compress-level=$LEVEL
start-fast=y
log-level-console=info
log-level-file=info
log-path=$BENCH/pgbackrest/log-repo
lock-path=$BENCH/pgbackrest/lock-repo
tls-server-address=127.0.0.1
tls-server-port=$PBR_REPO_PORT
tls-server-cert-file=$C/backup-srv.crt
tls-server-key-file=$C/backup-srv.key
tls-server-ca-file=$C/ca.crt
tls-server-auth=pg1-srv=*
EOF
	for ds in "${ALL_SETS[@]}"; do
		cat <<EOF

[$(stanza "$ds")]
pg1-host=localhost
pg1-host-type=tls
pg1-host-port=$PBR_PG_PORT
pg1-host-cert-file=$C/backup-srv.crt
pg1-host-key-file=$C/backup-srv.key
pg1-host-ca-file=$C/ca.crt
pg1-path=$BENCH/pg-$ds
pg1-socket-path=$BENCH/run
pg1-port=${PGPORT[$ds]}
EOF
	done
} | writef "$PBR_REPO_CONF"

# pgBackRest, PostgreSQL side: archive-push, restore, and a TLS server for
# the repository side's backup.  repo1-path here too: the client sends it
# to the repository's TLS server (bench/bench.sh found that out).
PBR_PG_CONF=$BENCH/pgbackrest/pg.conf
{
	cat <<EOF
[global]
repo1-path=$BENCH/pgbackrest/repo
repo1-host=localhost
repo1-host-type=tls
repo1-host-port=$PBR_REPO_PORT
repo1-host-cert-file=$C/pg1-srv.crt
repo1-host-key-file=$C/pg1-srv.key
repo1-host-ca-file=$C/ca.crt
process-max=$PROCESS_MAX
compress-type=zst
compress-level=$LEVEL
log-level-console=info
log-level-file=info
log-path=$BENCH/pgbackrest/log-pg
lock-path=$BENCH/pgbackrest/lock-pg
tls-server-address=127.0.0.1
tls-server-port=$PBR_PG_PORT
tls-server-cert-file=$C/pg1-srv.crt
tls-server-key-file=$C/pg1-srv.key
tls-server-ca-file=$C/ca.crt
tls-server-auth=backup-srv=*
EOF
	for ds in "${ALL_SETS[@]}"; do
		printf '\n[%s]\npg1-path=%s\npg1-socket-path=%s\npg1-port=%s\n' \
			"$(stanza "$ds")" "$BENCH/pg-$ds" "$BENCH/run" "${PGPORT[$ds]}"
	done
} | writef "$PBR_PG_CONF"

# ---------------------------------------------------------------- servers

# shellcheck disable=SC2016  # $1.. are the inner sh's
start_server() {   # name dir out command...
	local name=$1 dir=$2 out=$3 pid
	shift 3
	pid=$(as_user sh -c 'cd "$1" && out=$2 && shift 2 && exec "$@" >>"$out" 2>&1 </dev/null & echo $!' \
		sh "$dir" "$out" "$@")
	echo "$pid" >"$BENCH/$name.pid"
	SERVER_PIDS+=("$pid")
	printf -v "PID_${name//-/_}" '%s' "$pid"
}

say "servers: pgbr-server, pgBackRest TLS servers (repository side, PostgreSQL side)"
start_server pgbr-server "$BENCH/pgbr" "$BENCH/pgbr/server.out" \
	"$PG_BINDIR/pgbr-server" --config="$BENCH/pgbr/server.conf"
start_server pbr-repo "$BENCH/pgbackrest" "$BENCH/pgbackrest/server-repo.out" \
	"$PGBACKREST" --config="$PBR_REPO_CONF" server
start_server pbr-pg "$BENCH/pgbackrest" "$BENCH/pgbackrest/server-pg.out" \
	"$PGBACKREST" --config="$PBR_PG_CONF" server
ok=0
for _ in $(seq 1 100); do
	for p in "${SERVER_PIDS[@]}"; do
		pid_alive "$p" || { cat "$BENCH"/pgbr/server.out "$BENCH"/pgbackrest/server-*.out >&2; die "a server exited at start"; }
	done
	if grep -q listening "$BENCH/pgbr/server.out" 2>/dev/null &&
		as_user "$PGBACKREST" --config="$PBR_PG_CONF" server-ping >/dev/null 2>&1 &&
		as_user "$PGBACKREST" --config="$PBR_REPO_CONF" server-ping >/dev/null 2>&1; then
		ok=1
		break
	fi
	sleep 0.1
done
[ "$ok" = 1 ] || die "the servers do not answer after 10 s"
as_user "$PGBR" --config="$PGBR_CONF" server-ping >/dev/null 2>&1 || die "pgbr server-ping failed"
# shellcheck disable=SC2154  # set by start_server (printf -v)
info "pgbr-server pid $PID_pgbr_server, pgBackRest repository side $PID_pbr_repo, PostgreSQL side $PID_pbr_pg"

# ---------------------------------------------------------------- clusters

psql_ds() {   # dataset psql-args...
	local ds=$1
	shift
	as_user "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BENCH/run" -p "${PGPORT[$ds]}" -d postgres "$@"
}

pg_start() {   # dataset
	local d=$BENCH/pg-$1
	as_user "$PG_BINDIR/pg_ctl" -D "$d" -l "$BENCH/logs/pg-$1.log" -w -t 120 start >/dev/null ||
		{ tail -20 "$BENCH/logs/pg-$1.log" >&2; die "cluster $1 did not start"; }
}

pg_stop() {   # dataset
	as_user "$PG_BINDIR/pg_ctl" -D "$BENCH/pg-$1" -m fast -w -t 300 stop >/dev/null ||
		die "cluster $1 did not stop"
}

mode_load() {
	writef "$BENCH/pg-$1/bench-mode.conf" <<EOF
# loading: no WAL archived, nothing fsynced (a sync follows the shutdown)
wal_level = minimal
max_wal_senders = 0
archive_mode = off
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

mode_bench() {
	writef "$BENCH/pg-$1/bench-mode.conf" <<EOF
# measuring
wal_level = replica
max_wal_senders = 10
archive_mode = on
fsync = on
synchronous_commit = on
full_page_writes = on
shared_preload_libraries = 'pgbr'
archive_library = 'pgbr'
pgbr.config = '$PGBR_CONF'
pgbr.stanza = '$(stanza "$1")'
max_worker_processes = 16
EOF
}

init_cluster() {   # dataset
	local ds=$1 d=$BENCH/pg-$1
	as_user "$PG_BINDIR/initdb" -D "$d" -U postgres -A trust -N >"$BENCH/logs/initdb-$ds.log" 2>&1 ||
		{ cat "$BENCH/logs/initdb-$ds.log" >&2; die "initdb $ds failed"; }
	as_user tee -a "$d/postgresql.conf" >/dev/null <<EOF

# ---- pgbr bench-backup ----
listen_addresses = ''
port = ${PGPORT[$ds]}
unix_socket_directories = '$BENCH/run'
shared_buffers = 256MB
max_wal_size = 4GB
min_wal_size = 256MB
checkpoint_timeout = 1h
autovacuum = off
log_line_prefix = '%m [%p] %b '
log_min_messages = warning
lc_messages = 'C'
include_if_exists = 'bench-mode.conf'
EOF
}

load_data() {   # dataset
	local ds=$1 rows per b batch=500
	case "$ds" in
	pgbench)
		as_user "$PG_BINDIR/pgbench" -h "$BENCH/run" -p "${PGPORT[$ds]}" -i -s "$SCALE" -q postgres \
			>"$BENCH/logs/pgbench-init.log" 2>&1 || { tail "$BENCH/logs/pgbench-init.log" >&2; die "pgbench -i failed"; }
		;;
	random)
		# 1 KiB values stay in the heap (7 rows per 8 KiB page); the table
		# is created in the same transaction (no WAL with wal_level=minimal)
		rows=$((RANDOM_MB * 1024 * 1024 / 8192 * 7))
		psql_ds "$ds" <<EOF
CREATE EXTENSION pgcrypto;
BEGIN;
CREATE TABLE rnd (id int, b bytea);
ALTER TABLE rnd ALTER b SET STORAGE EXTERNAL;
INSERT INTO rnd SELECT g, gen_random_bytes(1024) FROM generate_series(1, $rows) g;
COMMIT;
VACUUM (FREEZE, ANALYZE) rnd;
EOF
		RANDOM_ROWS=$rows
		;;
	tables)
		for ((b = 0; b < TABLES; b += batch)); do
			per=$((b + batch - 1))
			[ "$per" -ge "$TABLES" ] && per=$((TABLES - 1))
			psql_ds "$ds" -c "DO \$\$ BEGIN FOR i IN $b..$per LOOP
				EXECUTE format('CREATE TABLE small_%s (id int PRIMARY KEY, v text)', i);
				EXECUTE format('INSERT INTO small_%s SELECT g, md5((g * %s)::text) FROM generate_series(1, 10) g', i, i);
				END LOOP; END \$\$"
		done
		;;
	esac
}

change_data() {   # dataset: the change between the full and the incr
	local ds=$1
	case "$ds" in
	pgbench)
		as_user "$PG_BINDIR/pgbench" -h "$BENCH/run" -p "${PGPORT[$ds]}" -T "$PGBENCH_T" postgres \
			>"$BENCH/logs/pgbench-run.log" 2>&1 || { tail "$BENCH/logs/pgbench-run.log" >&2; die "pgbench -T failed"; }
		CHANGE[$ds]="pgbench -T $PGBENCH_T: $(grep -E '^(number of transactions actually processed|tps)' "$BENCH/logs/pgbench-run.log" |
			sed -E 's/number of transactions actually processed: /transactions /; s/ \(without initial connection time\)//' | paste -sd, -)"
		;;
	random)
		psql_ds "$ds" -c "INSERT INTO rnd SELECT g, gen_random_bytes(1024) FROM generate_series($((RANDOM_ROWS + 1)), $((RANDOM_ROWS + RANDOM_ROWS / 100))) g"
		CHANGE[$ds]="$((RANDOM_ROWS / 100)) random rows (1 %) inserted"
		;;
	tables)
		psql_ds "$ds" -c "DO \$\$ BEGIN FOR i IN 0..$((TABLES - 1)) BY 100 LOOP
			EXECUTE format('UPDATE small_%s SET v = v || ''x'' WHERE id = 1', i);
			END LOOP; END \$\$"
		CHANGE[$ds]="one row updated in every 100th table ($(((TABLES + 99) / 100)) tables)"
		;;
	esac
}


wait_archived() {   # dataset: the archive_status queue drained
	local d=$BENCH/pg-$1
	for _ in $(seq 1 1200); do
		[ "$(ready_count "$d")" -eq 0 ] && return 0
		sleep 0.1
	done
	die "$1: $(ready_count "$d") WAL segments still not archived after 120 s (see $BENCH/logs/pg-$1.log)"
}

# PostgreSQL 15 ends the archiver when archive_library changes, and the
# postmaster starts a new one only at least 10 s after the previous start
# (PGARCH_RESTART_INTERVAL) and only when its loop wakes up - which, on an
# idle cluster, can be 60 s later.  New connections wake it: poll until an
# archiver started after the switch runs.
wait_archiver_restarted() {   # dataset since(timestamptz text)
	local n
	for _ in $(seq 1 150); do
		n=$(psql_ds "$1" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'archiver' AND backend_start > '$2'")
		[ "$n" -ge 1 ] && return 0
		sleep 0.2
	done
	die "$1: no archiver process 30 s after switching archive_library"
}

ARCHIVER=
set_archiver() {   # dataset pgbr|pgbackrest
	local ds=$1 tool=$2 st since t0
	st=$(stanza "$ds")
	[ "$ARCHIVER" = "$ds/$tool" ] && return 0
	t0=$EPOCHREALTIME
	wait_archived "$ds"
	since=$(psql_ds "$ds" -c "SELECT now()")
	if [ "$tool" = pgbr ]; then
		psql_ds "$ds" -c "ALTER SYSTEM RESET archive_command" -c "ALTER SYSTEM RESET archive_library" \
			-c "SELECT pg_reload_conf()" >/dev/null
		wait_archiver_restarted "$ds" "$since"
		psql_ds "$ds" -c "SELECT pgbr_check()" >"$BENCH/logs/check-pgbr-$ds.log" 2>&1 ||
			{ cat "$BENCH/logs/check-pgbr-$ds.log" >&2; die "pgbr_check() failed on $ds"; }
	else
		psql_ds "$ds" -c "ALTER SYSTEM SET archive_library = ''" \
			-c "ALTER SYSTEM SET archive_command = '$PGBACKREST --config=$PBR_PG_CONF --stanza=$st archive-push %p'" \
			-c "SELECT pg_reload_conf()" >/dev/null
		wait_archiver_restarted "$ds" "$since"
		as_user "$PGBACKREST" --config="$PBR_REPO_CONF" --stanza="$st" check >"$BENCH/logs/check-pgbackrest-$ds.log" 2>&1 ||
			{ cat "$BENCH/logs/check-pgbackrest-$ds.log" >&2; die "pgbackrest check failed on $ds"; }
	fi
	ARCHIVER=$ds/$tool
	info "archiver of $ds switched to $tool ($(printf '%.1f' "$(calc "$EPOCHREALTIME - $t0")") s)"
}

checkpoint() { psql_ds "$1" -c CHECKPOINT; }

# ---------------------------------------------------------------- memory sampler

# Every 0.1 s: the process trees under the given roots; per class the largest
# VmHWM and RssAnon of one process and the peak of the classes' summed RSS,
# in kB, written to $1 as "class hwm anon rss_sum" lines.
sampler() {
	local out=$1
	shift
	local -a roots=("$@") queue cmd chf
	local -A hwm=() anon=() rsum=() cur=() seen=()
	local pid cls f k v _ h a r
	while [ ! -e "$BENCH/sampler.stop" ]; do
		queue=("${roots[@]}")
		cur=()
		seen=()
		while [ "${#queue[@]}" -gt 0 ]; do
			pid=${queue[0]}
			queue=("${queue[@]:1}")
			[ -n "${seen[$pid]:-}" ] && continue
			seen[$pid]=1
			cmd=()
			{ mapfile -d '' cmd <"/proc/$pid/cmdline"; } 2>/dev/null || continue
			[ "${#cmd[@]}" -gt 0 ] || continue
			case "${cmd[0]}" in
			"postgres: pgbr backup of"*) cls=pgbr-worker ;;
			"postgres: pgbr backup process"*) cls=pgbr-helper ;;
			*/pgbr-server | pgbr-server) cls=pgbr-server ;;
			*/pgbr | pgbr) cls=pgbr-tool ;;
			*pgbackrest*) cls=pgbackrest ;;
			*pg_basebackup*) cls=pg_basebackup ;;
			"postgres: walsender"*) cls=walsender ;;
			*) cls= ;;
			esac
			if [ -n "$cls" ]; then
				h=0 a=0 r=0
				while read -r k v _; do
					case $k in
					VmHWM:) h=$v ;;
					VmRSS:) r=$v ;;
					RssAnon:) a=$v ;;
					esac
				done 2>/dev/null <"/proc/$pid/status" || true
				[ "$h" -gt "${hwm[$cls]:-0}" ] && hwm[$cls]=$h
				[ "$a" -gt "${anon[$cls]:-0}" ] && anon[$cls]=$a
				cur[$cls]=$((${cur[$cls]:-0} + r))
			fi
			for f in /proc/"$pid"/task/*/children; do
				chf=()
				{ read -r -a chf <"$f"; } 2>/dev/null || true
				queue+=("${chf[@]}")
			done
		done
		for cls in "${!cur[@]}"; do
			[ "${cur[$cls]}" -gt "${rsum[$cls]:-0}" ] && rsum[$cls]=${cur[$cls]}
		done
		nap 0.1
	done
	: >"$out"
	for cls in "${!hwm[@]}"; do
		printf '%s %s %s %s\n' "$cls" "${hwm[$cls]}" "${anon[$cls]:-0}" "${rsum[$cls]:-0}" >>"$out"
	done
}

declare -A T=() TS=() FAILNOTE=() RCODE=() SIZE=() MEM=() LABEL=() NOTE=() CHANGE=() DBSIZE=() DBFILES=() LOADT=()
declare -A CHECKED=()
CUR_DS=

# run_timed key log command...: sync, sampler on, wall time of the command
run_timed() {
	local key=$1 log=$2 t0 t1 rc=0 pm='' mem
	shift 2
	mem=$BENCH/mem-${key//[\/|]/_}.txt
	sync
	sleep 0.5
	[ -n "$CUR_DS" ] && [ -f "$BENCH/pg-$CUR_DS/postmaster.pid" ] && pm=$(head -1 "$BENCH/pg-$CUR_DS/postmaster.pid")
	rm -f "$BENCH/sampler.stop"
	# shellcheck disable=SC2086  # pm may be empty
	sampler "$mem" $pm "${SERVER_PIDS[@]}" $$ &
	SAMPLER_PID=$!
	sleep 0.2
	t0=$EPOCHREALTIME
	"$@" >"$log" 2>&1 || rc=$?
	t1=$EPOCHREALTIME
	touch "$BENCH/sampler.stop"
	wait "$SAMPLER_PID" || true
	SAMPLER_PID=
	local t
	t=$(calc "$t1 - $t0")
	TS[$key]="${TS[$key]:+${TS[$key]} }$(printf '%.2f' "$t")"
	# the median of the repetitions so far (the lower middle one when even)
	T[$key]=$(tr ' ' '\n' <<<"${TS[$key]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	[ "${RCODE[$key]:-0}" -ne 0 ] || RCODE[$key]=$rc
	local cls h a r old
	while read -r cls h a r; do
		old=${MEM[$key/$cls]:-0 0 0}
		MEM[$key/$cls]=$(awk -v o="$old" -v h="$h" -v a="$a" -v r="$r" 'BEGIN { split(o, x, " ");
			printf "%d %d %d", (h > x[1] ? h : x[1]), (a > x[2] ? a : x[2]), (r > x[3] ? r : x[3]) }')
	done <"$mem"
	if [ "$rc" -ne 0 ]; then
		FAILNOTE[$key]="FAILED (exit $rc): $(grep -E 'ERROR|FATAL' "$log" | head -2 | tr '\n' ' ')"
		info "$key: FAILED after $t s (exit $rc), see $log:"
		tail -5 "$log" | sed 's/^/      | /'
	else
		info "$key: $(printf '%.2f' "$t") s"
	fi
}

dir_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }

# ---------------------------------------------------------------- the steps

do_basebackup() {   # dataset
	local ds=$1 out=$BENCH/out/basebackup-$1
	rm -rf "$out"
	checkpoint "$ds"
	run_timed "full/pg_basebackup/$ds" "$BENCH/logs/basebackup-$ds.log" \
		as_user timeout 900 "$PG_BINDIR/pg_basebackup" -h "$BENCH/run" -p "${PGPORT[$ds]}" -U postgres \
		-D "$out" -Ft -X stream --checkpoint=fast --compress=server-zstd:level=$LEVEL,workers=$PROCESS_MAX
	SIZE[full/pg_basebackup/$ds]=$(dir_bytes "$out")
	NOTE[full/pg_basebackup/$ds]="base.tar.zst $(($(stat -c %s "$out/base.tar.zst" 2>/dev/null || echo 0) / 1048576)) MiB + pg_wal.tar $(($(stat -c %s "$out/pg_wal.tar" 2>/dev/null || echo 0) / 1048576)) MiB"
	[ "$KEEP" = 1 ] || rm -rf "$out"
}

do_tar() {   # dataset
	local ds=$1 out=$BENCH/out/tar-$1.tar.zst
	checkpoint "$ds"
	# shellcheck disable=SC2016
	run_timed "full/tar|zstd/$ds" "$BENCH/logs/tar-$ds.log" \
		as_user sh -c 'tar -C "$1" --exclude=./pg_wal/* -cf - . 2>/dev/null | zstd -3 -T2 -q -o "$2"' sh "$BENCH/pg-$ds" "$out"
	SIZE[full/tar|zstd/$ds]=$(stat -c %s "$out" 2>/dev/null || echo 0)
	rm -f "$out"
}

do_pgbackrest() {   # dataset full|incr
	local ds=$1 type=$2 st key=$2/pgBackRest/$1 label
	st=$(stanza "$ds")
	set_archiver "$ds" pgbackrest
	checkpoint "$ds"
	CUR_DS=$ds
	run_timed "$key" "$BENCH/logs/pgbackrest-$type-$ds.log" \
		as_user timeout 900 "$PGBACKREST" --config="$PBR_REPO_CONF" --stanza="$st" --type="$type" backup
	label=$(sed -n 's/.*new backup label = \([0-9A-Z_-]*\).*/\1/p' "$BENCH/logs/pgbackrest-$type-$ds.log" | tail -1)
	LABEL[$key]=$label
	if [ -n "$label" ]; then
		SIZE[$key]=$(dir_bytes "$BENCH/pgbackrest/repo/backup/$st/$label")
		NOTE[$key]="$(grep -o -E '(full|incr|diff) backup size = [^,]*, file total = [0-9]+' "$BENCH/logs/pgbackrest-$type-$ds.log" | tail -1)"
	fi
}

do_pgbr() {   # dataset full|incr
	local ds=$1 type=$2 st key=$2/pgbr/$1 label log=$BENCH/logs/pgbr-$2-$1.log off
	st=$(stanza "$ds")
	set_archiver "$ds" pgbr
	checkpoint "$ds"
	CUR_DS=$ds
	off=$(stat -c %s "$BENCH/logs/pg-$ds.log")
	run_timed "$key" "$log" psql_ds "$ds" -c "SELECT pgbr_backup('$type')"
	label=$(grep -E '^[0-9]{8}-[0-9]{6}F' "$log" | tail -1 || true)
	LABEL[$key]=$label
	tail -c +"$((off + 1))" "$BENCH/logs/pg-$ds.log" >"$log.pglog"
	if [ -n "$label" ]; then
		SIZE[$key]=$(dir_bytes "$BENCH/pgbr/repo/$st/backup/$label")
		NOTE[$key]="$(grep -o -E '(full|incr|diff) backup size = [^,]*, file total = [0-9]+' "$log.pglog" | tail -1)"
	fi
}

# Memory as the database grows: the pgbench cluster gets GROW copies of
# pgbench_accounts (archived by pgbr, the archiver in place after the pgbr
# incr), then one pgbr full backup of it is sampled like the others.
do_grown() {   # dataset
	local ds=$1 i
	for ((i = 1; i <= GROW; i++)); do
		psql_ds "$ds" -c "CREATE TABLE accounts_copy_$i AS SELECT * FROM pgbench_accounts" >/dev/null
	done
	DBSIZE[grown/$ds]=$(psql_ds "$ds" -c "SELECT sum(pg_database_size(oid)) FROM pg_database")
	wait_archived "$ds"
	checkpoint "$ds"
	CUR_DS=$ds
	run_timed "grown/pgbr/$ds" "$BENCH/logs/pgbr-grown-$ds.log" psql_ds "$ds" -c "SELECT pgbr_backup('full')"
}

# 3 small files of a restored directory: deleted, appended to, overwritten
# in place (same size, new mtime)
SMALL_FILES=()
pick_small_files() {   # restored dir
	mapfile -t SMALL_FILES < <(cd "$1" && find base -type f -size +0 -size -64k -name '[0-9]*' | sort | head -3)
	[ "${#SMALL_FILES[@]}" -eq 3 ] || die "fewer than 3 small files in $1/base"
}

damage() {   # restored dir: records the checksums first
	local d=$1 f
	(cd "$d" && sha256sum "${SMALL_FILES[@]}") >"$d.sha256"
	rm -f "$d/${SMALL_FILES[0]}"
	printf 'bench-backup was here\n' >>"$d/${SMALL_FILES[1]}"
	f=$d/${SMALL_FILES[2]}
	printf 'bench-backup was here\n' | dd of="$f" bs=1 seek=0 conv=notrunc status=none
	touch "$f"
}

check_damage_repaired() {   # key restored dir
	if (cd "$2" && sha256sum --quiet -c "$2.sha256") >/dev/null 2>&1; then
		CHECKED[$1]="the 3 files are back (sha256)"
	else
		CHECKED[$1]="NOT REPAIRED: $( (cd "$2" && sha256sum -c "$2.sha256" 2>&1) | grep -v ': OK' | head -3 | tr '\n' ' ')"
	fi
}

restore_one() {   # pgBackRest|pgbr dataset dir ["--delta" | "--delta --force"]
	local tool=$1 ds=$2 dir=$3 delta=${4:-} kind=restore st
	st=$(stanza "$ds")
	case $delta in
		*--force*) kind='dforce' ;;
		--delta) kind='delta' ;;
	esac
	# shellcheck disable=SC2086  # $delta: empty, --delta or --delta --force
	if [ "$tool" = pgBackRest ]; then
		run_timed "$kind/pgBackRest/$ds" "$BENCH/logs/$kind-pgbackrest-$ds.log" \
			as_user timeout 900 "$PGBACKREST" --config="$PBR_PG_CONF" --stanza="$st" --pg1-path="$dir" \
			--process-max=$PROCESS_MAX $delta restore
	else
		run_timed "$kind/pgbr/$ds" "$BENCH/logs/$kind-pgbr-$ds.log" \
			as_user timeout 900 "$PGBR" --config="$PGBR_CONF" --stanza="$st" --pg1-path="$dir" \
			--process-max=$PROCESS_MAX $delta restore
	fi
}

do_restores() {   # dataset repetition (odd: pgBackRest first, even: pgbr first)
	local ds=$1 rep=$2 dpbr dpgbr first=pgBackRest second=pgbr
	dpbr=$BENCH/restore/pgbackrest-$ds
	dpgbr=$BENCH/restore/pgbr-$ds
	[ $((rep % 2)) -eq 0 ] && { first=pgbr; second=pgBackRest; }
	declare -A dir=([pgBackRest]=$dpbr [pgbr]=$dpgbr)
	CUR_DS=
	rm -rf "$dpbr" "$dpgbr" "$dpbr.sha256" "$dpgbr.sha256"
	as_user mkdir -m 0700 "$dpbr" "$dpgbr"
	restore_one "$first" "$ds" "${dir[$first]}"
	restore_one "$second" "$ds" "${dir[$second]}"
	SIZE[restore/pgBackRest/$ds]=$(dir_bytes "$dpbr")
	SIZE[restore/pgbr/$ds]=$(dir_bytes "$dpgbr")
	NOTE[restore/pgBackRest/$ds]="$(grep -o -E 'restore size = [^,]*, file total = [0-9]+' "$BENCH/logs/restore-pgbackrest-$ds.log" | tail -1)"
	NOTE[restore/pgbr/$ds]="$(grep -o -E 'restore size = [^,]*, file total = [0-9]+' "$BENCH/logs/restore-pgbr-$ds.log" | tail -1)"

	pick_small_files "$dpgbr"
	damage "$dpbr"
	damage "$dpgbr"
	NOTE[delta/pgbr/$ds]="changed: ${SMALL_FILES[*]}"
	restore_one "$first" "$ds" "${dir[$first]}" --delta
	restore_one "$second" "$ds" "${dir[$second]}" --delta
	# a failure in any repetition is kept
	case "${CHECKED[delta/pgBackRest/$ds]:-}" in NOT*) ;; *) check_damage_repaired "delta/pgBackRest/$ds" "$dpbr" ;; esac
	case "${CHECKED[delta/pgbr/$ds]:-}" in NOT*) ;; *) check_damage_repaired "delta/pgbr/$ds" "$dpgbr" ;; esac
	NOTE[delta/pgbr/$ds]+="; $(grep -o -E 'fetched = .*' "$BENCH/logs/delta-pgbr-$ds.log" | tail -1)"

	# the same damage again, repaired by --delta --force (pgBackRest's: size
	# and modification time decide, no checksum is read)
	pick_small_files "$dpgbr"
	damage "$dpbr"
	damage "$dpgbr"
	restore_one "$first" "$ds" "${dir[$first]}" "--delta --force"
	restore_one "$second" "$ds" "${dir[$second]}" "--delta --force"
	case "${CHECKED[dforce/pgBackRest/$ds]:-}" in NOT*) ;; *) check_damage_repaired "dforce/pgBackRest/$ds" "$dpbr" ;; esac
	case "${CHECKED[dforce/pgbr/$ds]:-}" in NOT*) ;; *) check_damage_repaired "dforce/pgbr/$ds" "$dpgbr" ;; esac

	# pgbr's restored pgbench cluster: starts, recovers through archive-get, counts
	if [ "$ds" = pgbench ] && [ "$rep" -eq "$REPEAT" ] && [ "${RCODE[delta/pgbr/$ds]}" = 0 ]; then
		local n=- rec=t
		printf '\n# bench-backup: start check\nport = %s\narchive_mode = off\n' "$CHECK_PORT" |
			as_user tee -a "$dpgbr/postgresql.auto.conf" >/dev/null
		if as_user "$PG_BINDIR/pg_ctl" -D "$dpgbr" -l "$BENCH/logs/pg-restored-pgbr.log" -w -t 300 start >/dev/null 2>&1; then
			for _ in $(seq 1 600); do
				rec=$(as_user "$PG_BINDIR/psql" -X -At -h "$BENCH/run" -p "$CHECK_PORT" -d postgres \
					-c "SELECT pg_is_in_recovery()" 2>/dev/null || echo t)
				[ "$rec" = f ] && break
				sleep 0.2
			done
			n=$(as_user "$PG_BINDIR/psql" -X -At -h "$BENCH/run" -p "$CHECK_PORT" -d postgres \
				-c "SELECT count(*) FROM pgbench_accounts" 2>/dev/null || echo -)
			as_user "$PG_BINDIR/pg_ctl" -D "$dpgbr" -m fast -w -t 120 stop >/dev/null 2>&1 || true
		fi
		if [ "$n" = "$((SCALE * 100000))" ] && [ "$rec" = f ]; then
			CHECKED[start/pgbr/$ds]="started, recovered through pgbr archive-get, pgbench_accounts has $n rows"
		else
			CHECKED[start/pgbr/$ds]="FAILED: in recovery=$rec, pgbench_accounts count=$n (see $BENCH/logs/pg-restored-pgbr.log)"
		fi
	fi
	[ "$KEEP" = 1 ] || [ "$rep" -lt "$REPEAT" ] || rm -rf "$dpbr" "$dpgbr"
}

# ---------------------------------------------------------------- run

for ds in "${ALL_SETS[@]}"; do
	in_list "$DATASETS" "$ds" || continue
	st=$(stanza "$ds")
	say "data set $ds: load"
	init_cluster "$ds"
	mode_load "$ds"
	pg_start "$ds"
	t0=$EPOCHREALTIME
	load_data "$ds"
	LOADT[$ds]=$(calc "$EPOCHREALTIME - $t0")
	pg_stop "$ds"
	sync
	mode_bench "$ds"
	pg_start "$ds"
	CUR_DS=$ds
	ARCHIVER=$ds/pgbr
	DBSIZE[$ds]=$(psql_ds "$ds" -c "SELECT sum(pg_database_size(oid)) FROM pg_database")
	DBFILES[$ds]=$(find "$BENCH/pg-$ds" -type f | wc -l)
	info "$ds: loaded in $(printf '%.0f' "${LOADT[$ds]}") s; $((DBSIZE[$ds] / 1048576)) MiB in databases, ${DBFILES[$ds]} files in the data directory"

	say "data set $ds: stanzas, archiving check"
	psql_ds "$ds" -c "CREATE EXTENSION pgbr" -c "SELECT pgbr_stanza_create()" >"$BENCH/logs/stanza-pgbr-$ds.log" 2>&1 ||
		{ cat "$BENCH/logs/stanza-pgbr-$ds.log" >&2; die "pgbr stanza create failed ($ds)"; }
	as_user "$PGBACKREST" --config="$PBR_REPO_CONF" --stanza="$st" stanza-create >"$BENCH/logs/stanza-pgbackrest-$ds.log" 2>&1 ||
		{ cat "$BENCH/logs/stanza-pgbackrest-$ds.log" >&2; die "pgbackrest stanza-create failed ($ds)"; }
	psql_ds "$ds" -c "SELECT pgbr_check()" >/dev/null || die "pgbr_check() failed ($ds)"
	# warm page cache for everyone
	find "$BENCH/pg-$ds" -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true

	for ((rep = 1; rep <= REPEAT; rep++)); do
		say "data set $ds: full backups ($rep/$REPEAT)"
		do_basebackup "$ds"
		# alternating order; the archiver switches once per repetition
		if [ $((rep % 2)) -eq 1 ]; then
			do_pgbr "$ds" full
			do_pgbackrest "$ds" full
		else
			do_pgbackrest "$ds" full
			do_pgbr "$ds" full
		fi
		do_tar "$ds"
	done

	if in_list "$RESTORE_SETS" "$ds"; then
		for ((rep = 1; rep <= REPEAT; rep++)); do
			say "data set $ds: restores ($rep/$REPEAT)"
			do_restores "$ds" "$rep"
		done
		CUR_DS=$ds
	fi

	say "data set $ds: change, then incr backups"
	change_data "$ds"
	info "${CHANGE[$ds]}"
	do_pgbackrest "$ds" incr
	do_pgbr "$ds" incr
	if [ "$ds" = pgbench ] && [ "$GROW" -gt 0 ]; then
		say "data set $ds: grown by $GROW copies of pgbench_accounts, then one pgbr full backup (memory)"
		do_grown "$ds"
	fi
	wait_archived "$ds"
	pg_stop "$ds"
	CUR_DS=
done

# ---------------------------------------------------------------- report

fmt_s() { [ -n "${1:-}" ] && printf '%.2f' "$1" || printf -- '-'; }
fmt_mib() { [ -n "${1:-}" ] && awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }' || printf -- '-'; }
ratio() {   # a b
	[ -n "${1:-}" ] && [ -n "${2:-}" ] || { printf -- '-'; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }'
}
goal() {   # a b factor [strict]: a <= factor*b (a < b when strict)
	[ -n "${1:-}" ] && [ -n "${2:-}" ] || { printf 'n/a'; return; }
	awk -v a="$1" -v b="$2" -v f="$3" -v s="${4:-}" 'BEGIN {
		if (s != "") ok = a < f * b; else ok = a <= f * b; printf "%s", ok ? "yes" : "NO" }'
}
ok_time() {   # key: wall time only if the step succeeded
	if [ "${RCODE[$1]:-1}" = 0 ]; then printf '%s' "${T[$1]}"; fi
}
mem_of() {   # key class field(1 hwm, 2 anon, 3 sum) -> MiB
	local v=${MEM[$1/$2]:-}
	[ -n "$v" ] || { printf -- '-'; return; }
	awk -v s="$v" -v f="$3" 'BEGIN { split(s, a, " "); printf "%.1f", a[f] / 1024 }'
}

REPORT=$BENCH/results.txt
{
	echo
	echo "Backup / restore benchmark ($(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), total run $(printf '%.0f' "$(calc "$EPOCHREALTIME - $T_START")") s)"
	echo "pgbr $("$PGBR" version 2>/dev/null | awk '{ print $2 }'), $("$PGBACKREST" version), $("$PG_BINDIR/pg_basebackup" --version | sed 's/ (PostgreSQL)//')"
	echo "all: process-max/workers=$PROCESS_MAX, zstd level $LEVEL, fast checkpoint; pgbr and pgBackRest repo1-bundle=y, over mutual TLS on 127.0.0.1"
	echo "data sets:"
	for ds in "${ALL_SETS[@]}"; do
		[ -n "${DBSIZE[$ds]:-}" ] || continue
		case $ds in
		pgbench) what="pgbench -i -s $SCALE" ;;
		random) what="$RANDOM_MB MiB of gen_random_bytes() in a bytea table" ;;
		tables) what="$TABLES tables (id int primary key, v text), 10 rows each" ;;
		esac
		printf '  %-8s %s: %s MiB in databases, %s files; incr after: %s\n' "$ds" "$what" \
			"$((DBSIZE[$ds] / 1048576))" "${DBFILES[$ds]}" "${CHANGE[$ds]:-}"
	done
	echo
	echo "A. Backups (wall seconds from the command's start to its end, median of $REPEAT runs for full, one run for incr; size: what the backup stored)"
	printf '%-14s %-8s %-5s %9s %10s %9s %9s  %s\n' tool dataset type seconds "size MiB" "vs pgBR" "vs pg_bb" "goal met"
	printf '%-14s %-8s %-5s %9s %10s %9s %9s  %s\n' -------------- -------- ----- --------- ---------- --------- --------- --------
	for ds in "${ALL_SETS[@]}"; do
		[ -n "${DBSIZE[$ds]:-}" ] || continue
		for type in full incr; do
			for tool in pgBackRest pgbr pg_basebackup 'tar|zstd'; do
				k=$type/$tool/$ds
				[ -n "${T[$k]:-}" ] || continue
				pb=$(ok_time "$type/pgBackRest/$ds")
				bb=$(ok_time "$type/pg_basebackup/$ds")
				t=$(ok_time "$k")
				g=
				if [ "$tool" = pgbr ]; then
					if [ "$type" = full ]; then
						g="time<=0.5x pgBR: $(goal "$t" "$pb" 0.5); <=1.3x pg_bb: $(goal "$t" "$bb" 1.3); size<=pgBR+5%: $(goal "${SIZE[$k]:-}" "${SIZE[$type/pgBackRest/$ds]:-}" 1.05)"
					else
						g="faster than pgBR incr: $(goal "$t" "$pb" 1 strict)"
					fi
				fi
				[ "${RCODE[$k]}" = 0 ] || g="FAILED $g"
				printf '%-14s %-8s %-5s %9s %10s %9s %9s  %s\n' "$tool" "$ds" "$type" "$(fmt_s "${T[$k]}")" \
					"$(fmt_mib "${SIZE[$k]:-}")" "$(ratio "$t" "$pb")" "$(ratio "$t" "$bb")" "$g"
			done
		done
	done
	echo "(pg_basebackup size: base.tar.zst + the uncompressed pg_wal.tar of -X stream; tar|zstd: pg_wal excluded, a reference)"
	echo
	echo "B. Restores (median of $REPEAT runs; into an empty directory; delta: after 3 small files changed, --delta, both compare checksums; dforce: the same with --delta --force, size and mtime only)"
	printf '%-14s %-8s %-7s %9s %10s %9s %9s  %s\n' tool dataset kind seconds "size MiB" "vs pgBR" "vs full" "goal met"
	printf '%-14s %-8s %-7s %9s %10s %9s %9s  %s\n' -------------- -------- ------- --------- ---------- --------- --------- --------
	for ds in "${ALL_SETS[@]}"; do
		for kind in restore delta dforce; do
			for tool in pgBackRest pgbr; do
				k=$kind/$tool/$ds
				[ -n "${T[$k]:-}" ] || continue
				t=$(ok_time "$k")
				pb=$(ok_time "$kind/pgBackRest/$ds")
				full=$(ok_time "restore/$tool/$ds")
				g=
				if [ "$tool" = pgbr ]; then
					if [ "$kind" = restore ]; then
						g="<=0.7x pgBR: $(goal "$t" "$pb" 0.7)"
					elif [ "$kind" = dforce ]; then
						g="(no goal: pgBackRest's --force mode)"
					else
						g="<=0.7x pgBR: $(goal "$t" "$pb" 0.7); <=0.2x own full: $(goal "$t" "$full" 0.2)"
					fi
				fi
				[ "${RCODE[$k]}" = 0 ] || g="FAILED $g"
				if [ "$kind" != restore ]; then vf=$(ratio "$t" "$full"); else vf=-; fi
				printf '%-14s %-8s %-7s %9s %10s %9s %9s  %s\n' "$tool" "$ds" "$kind" "$(fmt_s "${T[$k]}")" \
					"$(fmt_mib "${SIZE[$k]:-}")" "$(ratio "$t" "$pb")" "$vf" "$g"
			done
		done
	done
	echo "(size: the restored directory)"
	echo
	echo "C. Memory during the backups (MiB; per process: largest VmHWM / largest RssAnon seen; sum: peak of the summed RSS)"
	printf '%-8s %-5s %-24s %-24s %-20s %-24s\n' dataset type "pgbr worker HWM/anon" "pgbr helper HWM/anon" "pgbr-server sum" "pgBackRest proc HWM/sum"
	for ds in "${ALL_SETS[@]}"; do
		for type in full incr; do
			k=$type/pgbr/$ds
			[ -n "${T[$k]:-}" ] || continue
			kp=$type/pgBackRest/$ds
			printf '%-8s %-5s %-24s %-24s %-20s %-24s\n' "$ds" "$type" \
				"$(mem_of "$k" pgbr-worker 1) / $(mem_of "$k" pgbr-worker 2)" \
				"$(mem_of "$k" pgbr-helper 1) / $(mem_of "$k" pgbr-helper 2)" \
				"$(mem_of "$k" pgbr-server 3)" \
				"$(mem_of "$kp" pgbackrest 1) / $(mem_of "$kp" pgbackrest 3)"
		done
	done
	# flat: per process kind, the largest peak VmHWM of the full backups of
	# the data sets at most 1.25x the smallest, or within 8 MiB (the full
	# backups differ in the size of what they copy; an incr copies little,
	# so its smaller peak says nothing about growth with the data)
	for cls in pgbr-worker pgbr-helper; do
		peaks=$(for k in "${!MEM[@]}"; do
			case $k in full/pgbr/*/"$cls") awk -v s="${MEM[$k]}" 'BEGIN { split(s, a, " "); print a[1], a[2] }' ;; esac
		done | sort -n)
		[ -n "$peaks" ] || continue
		lo=$(head -1 <<<"$peaks" | cut -d' ' -f1)
		hi=$(tail -1 <<<"$peaks" | cut -d' ' -f1)
		alo=$(cut -d' ' -f2 <<<"$peaks" | sort -n | head -1)
		ahi=$(cut -d' ' -f2 <<<"$peaks" | sort -n | tail -1)
		flat=$(awk -v lo="$lo" -v hi="$hi" 'BEGIN { print (hi <= 1.25 * lo || hi - lo <= 8192) ? "yes" : "NO" }')
		printf '%s: peak VmHWM %s..%s MiB, RssAnon %s..%s MiB over the full backups of the data sets; flat across them (max <= 1.25x min or within 8 MiB): %s\n' \
			"$cls" "$(fmt_mib $((lo * 1024)))" "$(fmt_mib $((hi * 1024)))" "$(fmt_mib $((alo * 1024)))" "$(fmt_mib $((ahi * 1024)))" "$flat"
	done
	# flat as the same database grows: the pgbench full backups against the
	# one after the database grew (the same rule)
	if [ -n "${T[grown/pgbr/pgbench]:-}" ] && [ -n "${T[full/pgbr/pgbench]:-}" ]; then
		printf 'as the database grows (pgbench, %s MiB -> %s MiB in databases, one full backup each):' \
			"$((DBSIZE[pgbench] / 1048576))" "$((DBSIZE[grown/pgbench] / 1048576))"
		for cls in pgbr-worker pgbr-helper; do
			lo=${MEM[full/pgbr/pgbench/$cls]:-}
			hi=${MEM[grown/pgbr/pgbench/$cls]:-}
			[ -n "$lo" ] && [ -n "$hi" ] || continue
			printf ' %s HWM %s -> %s MiB, flat: %s;' "$cls" "$(mem_of full/pgbr/pgbench "$cls" 1)" \
				"$(mem_of grown/pgbr/pgbench "$cls" 1)" \
				"$(awk -v a="${lo%% *}" -v b="${hi%% *}" 'BEGIN { print (b <= 1.25 * a || b - a <= 8192) ? "yes" : "NO" }')"
		done
		printf ' (%s s)\n' "$(fmt_s "${T[grown/pgbr/pgbench]}")"
	fi
	echo "restore memory (MiB, per process VmHWM): $(for ds in "${ALL_SETS[@]}"; do
		[ -n "${T[restore/pgbr/$ds]:-}" ] && printf '%s pgbr %s / pgBackRest %s; ' "$ds" \
			"$(mem_of "restore/pgbr/$ds" pgbr-tool 1)" "$(mem_of "restore/pgBackRest/$ds" pgbackrest 1)"
	done)"
	echo
	echo "Details (every run's seconds; the last run's label and summary):"
	for k in $(printf '%s\n' "${!T[@]}" | sort); do
		printf '  %-26s [%s] %s %s%s%s\n' "$k" "${TS[$k]}" "${LABEL[$k]:+label ${LABEL[$k]};}" "${NOTE[$k]:-}" \
			"${CHECKED[$k]:+; ${CHECKED[$k]}}" "${FAILNOTE[$k]:+; ${FAILNOTE[$k]}}"
	done
	for k in "${!CHECKED[@]}"; do
		case $k in start/*) printf '  %-26s %s\n' "$k" "${CHECKED[$k]}" ;; esac
	done
} | tee "$REPORT"

# the logs' problems
{
	for f in "$BENCH"/logs/pg-*.log "$BENCH/pgbr/server.out" "$BENCH"/pgbackrest/server-*.out; do
		[ -f "$f" ] || continue
		n=$(grep -c -E 'WARNING|ERROR|FATAL|PANIC' "$f" || true)
		[ "$n" -gt 0 ] || continue
		echo
		echo "$f: $n WARNING/ERROR/FATAL/PANIC lines, first 8:"
		grep -E 'WARNING|ERROR|FATAL|PANIC' "$f" | head -8 | sed 's/^/    | /'
	done
} | tee -a "$REPORT"
echo
echo "results: $REPORT; logs: $BENCH/logs/, $BENCH/pgbr/, $BENCH/pgbackrest/log-*/"
