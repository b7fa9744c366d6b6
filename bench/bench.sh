#!/usr/bin/env bash
#
# bench/bench.sh - WAL archiving throughput: pgbr against pgBackRest.
#
# One run measures three configurations on the same machine, each on its own
# PostgreSQL 15 cluster holding the same generated WAL burst (>= 1 GiB),
# PGBR_BENCH_REPEAT rounds of each (every round from a copy of the cluster
# taken after its burst, in an order that turns by one each round):
#
#   pgbr               archive_library = 'pgbr'  -> pgbr-server (mutual TLS)
#   pgbackrest sync    archive_command = 'pgbackrest ... archive-push %p'
#                      -> pgbackrest server (TLS)
#   pgbackrest async   the same with archive-async=y, process-max=2
#
# all on 127.0.0.1 with one set of certificates and zstd level 3.  The burst
# is produced while archiving is paused (pgbr: the configuration file points
# at a closed port; pgBackRest: archive_command = 'false'), then archiving is
# switched on (pgbr: the file is fixed; pgBackRest: ALTER SYSTEM) and woken
# with pg_reload_conf(), and the time until no .ready file remains in
# pg_wal/archive_status is measured.  A configuration that has not finished
# after PGBR_BENCH_CAP seconds is stopped there and its rate computed from
# what it archived (the table says so).
#
# Run as root (clusters and servers run as user postgres via runuser).
# Uses the installed pgbr (pg_config --bindir / --pkglibdir): build and
# install first (make && make install).  Everything lives in
# /tmp/pgbr-bench (emptied at the start; left for inspection at the end,
# with all processes stopped).  Results and the logs' problems are printed
# and kept in /tmp/pgbr-bench/results.txt.
#
# Every configuration here is CPU-bound (zstd level 3 on 16 MiB segments is
# most of the work, on both sides of the same machine), so the rates depend
# on the number of CPUs and on whatever else runs meanwhile: the table also
# gives CPU-seconds per segment, which depends much less on other load.
#
# Environment:
#   PGBR_BENCH_DIR          scratch directory (default /tmp/pgbr-bench)
#   PGBR_BENCH_CAP          seconds per configuration at most (default 120)
#   PGBR_BENCH_REPEAT       rounds (default 3; the tables give the median)
#   PGBR_BENCH_SCALE        pgbench -i scale of the burst (default 50)
#   PGBR_BENCH_ROWS         rows of the extra md5 table (default 4000000)
#   PGBR_BENCH_PROCESS_MAX  pgbr process-max (default 2, like pgBackRest async)
#   PGBR_BENCH_QUEUE        pgbr archive-push-queue (default 8)
#   PGBR_BENCH_ONLY         comma list of pgbr,sync,async to measure (default all)

set -euo pipefail

BENCH=${PGBR_BENCH_DIR:-/tmp/pgbr-bench}
CAP=${PGBR_BENCH_CAP:-120}
REPEAT=${PGBR_BENCH_REPEAT:-3}
SCALE=${PGBR_BENCH_SCALE:-50}
ROWS=${PGBR_BENCH_ROWS:-4000000}
PGBR_PROCESS_MAX=${PGBR_BENCH_PROCESS_MAX:-2}
PGBR_QUEUE=${PGBR_BENCH_QUEUE:-8}
ONLY=${PGBR_BENCH_ONLY:-pgbr,sync,async}
RUN_USER=postgres
MIN_BYTES=$((1024 * 1024 * 1024))      # the burst: at least 1 GiB of WAL
MIN_SEGMENTS=64
COMPRESS_LEVEL=3
STANZA_PGBR=bench
STANZA_SYNC=bench-sync
STANZA_ASYNC=bench-async

CONFIGS=(pgbr sync async)
declare -A LABEL=([pgbr]="pgbr (process-max=$PGBR_PROCESS_MAX)" [sync]="pgBackRest sync" [async]="pgBackRest async (process-max=2)")
declare -A SHORT=([pgbr]="pgbr" [sync]="pgBackRest sync" [async]="pgBackRest async")
declare -A PGPORT=([pgbr]=54331 [sync]=54332 [async]=54333)
declare -A R_SEGS R_SECS R_FIRST R_CAPPED R_FAILED R_SRV_HWM R_SRV_RSS R_SRV_CPU R_CLI_CPU \
	R_SYS_CPU R_REPO R_REPO_FILES R_PGLOG R_SRVLOG R_STEADY R_VERIFY CAPPED_ANY FAILED_ALL
declare -a ROUND_ORDER

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
now()  { printf '%s' "$EPOCHREALTIME"; }
now_us() { local t=$EPOCHREALTIME; printf '%s' "${t/./}"; }
calc() { awk "BEGIN { printf \"%s\", $1 }"; }

selected() { [[ ",$ONLY," == *",$1,"* ]]; }

# ---------------------------------------------------------------- checks

[ "$(id -u)" -eq 0 ] || die "run as root (clusters run as $RUN_USER via runuser)"
id "$RUN_USER" >/dev/null 2>&1 || die "user $RUN_USER does not exist"
case "$BENCH" in
/tmp/?*) ;;
*) die "PGBR_BENCH_DIR=$BENCH: must be under /tmp (it is emptied)" ;;
esac
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}
[ -x "$PG_CONFIG" ] || die "pg_config not found"
PG_BINDIR=$("$PG_CONFIG" --bindir)
PG_LIBDIR=$("$PG_CONFIG" --pkglibdir)
PG_VERSION_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
for p in initdb pg_ctl psql pgbench pgbr pgbr-server; do
	[ -x "$PG_BINDIR/$p" ] || die "$PG_BINDIR/$p not found (make && make install)"
done
[ -f "$PG_LIBDIR/pgbr.so" ] || die "$PG_LIBDIR/pgbr.so not found (make && make install)"
PGBACKREST=$(command -v pgbackrest || true)
[ -n "$PGBACKREST" ] || die "pgbackrest not found (apt-get install pgbackrest)"
command -v openssl >/dev/null || die "openssl not found"
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- cleanup

SERVER_PID=
SAMPLER_PID=
stop_clusters() {
	local d
	for d in "$BENCH"/pg-*; do
		[ -f "$d/postmaster.pid" ] || continue
		as_user "$PG_BINDIR/pg_ctl" -D "$d" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	done
}

# pgBackRest's async process daemonizes: find ours by the client
# configuration in its command line (not the server's)
stop_async_leftovers() {
	local p
	for p in $(pgrep -u "$RUN_USER" -x pgbackrest 2>/dev/null || true); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -F -- "--config=$BENCH/pgbackrest/client-"; then
			stop_pid "$p"
		fi
	done
}

cleanup() {
	local rc=$?
	set +e
	[ -n "$SAMPLER_PID" ] && { touch "$BENCH/sampler.stop" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; }
	stop_clusters
	stop_pid "$SERVER_PID"
	stop_async_leftovers
	exit $rc
}

say "scratch directory $BENCH"
if [ -d "$BENCH" ]; then
	stop_clusters
	for f in "$BENCH"/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		if [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "--config=$BENCH/"; then
			stop_pid "$p"
		fi
	done
	stop_async_leftovers
	rm -rf "$BENCH"
fi
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$BENCH"
chown "$RUN_USER": "$BENCH"
chmod 0755 "$BENCH"
mk "$BENCH/run" "$BENCH/certs" "$BENCH/pgbr/repo" "$BENCH/pgbr/log" \
	"$BENCH/pgbackrest/repo" "$BENCH/pgbackrest/log" "$BENCH/pgbackrest/lock" \
	"$BENCH/pgbackrest/spool"
as_user chmod 0700 "$BENCH/certs" "$BENCH/pgbr/repo" "$BENCH/pgbackrest/repo"
info "load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
info "pgbr: $("$PG_BINDIR/pgbr" version 2>/dev/null || echo '?'); $("$PGBACKREST" version)"

# ---------------------------------------------------------------- ports

free_port PGBR_PORT
free_port PBR_PORT
free_port CLOSED_PORT
info "ports: pgbr-server $PGBR_PORT, pgbackrest server $PBR_PORT, closed port for the paused pgbr $CLOSED_PORT"

# ---------------------------------------------------------------- certificates

say "certificates (CA, backup-srv, pg1-srv)"
C=$BENCH/certs
make_certs "$C"

# ---------------------------------------------------------------- configuration files

# pgbr-server (repository host)
writef "$BENCH/pgbr/server.conf" <<EOF
[global]
repo1-path=$BENCH/pgbr/repo
log-level-console=info
log-level-file=info
log-path=$BENCH/pgbr/log
tls-server-address=127.0.0.1
tls-server-port=$PGBR_PORT
tls-server-cert-file=$C/backup-srv.crt
tls-server-key-file=$C/backup-srv.key
tls-server-ca-file=$C/ca.crt
tls-server-auth=pg1-srv=$STANZA_PGBR
EOF

# pgbr on the PostgreSQL host; pgbr.conf.paused points at a closed port
pgbr_client_conf() {
	cat <<EOF
[global]
repo1-host=localhost
repo1-host-port=$1
repo1-host-cert-file=$C/pg1-srv.crt
repo1-host-key-file=$C/pg1-srv.key
repo1-host-ca-file=$C/ca.crt
compress-type=zst
compress-level=$COMPRESS_LEVEL
process-max=$PGBR_PROCESS_MAX
archive-push-queue=$PGBR_QUEUE
log-level-console=warn
log-path=$BENCH/pgbr/log

[$STANZA_PGBR]
pg1-path=$BENCH/pg-pgbr
pg1-socket-path=$BENCH/run
pg1-port=${PGPORT[pgbr]}
EOF
}
pgbr_client_conf "$PGBR_PORT" | writef "$BENCH/pgbr/pgbr.conf.good"
pgbr_client_conf "$CLOSED_PORT" | writef "$BENCH/pgbr/pgbr.conf.paused"
as_user cp -p "$BENCH/pgbr/pgbr.conf.paused" "$BENCH/pgbr/pgbr.conf"
PGBR_CONF=$BENCH/pgbr/pgbr.conf

# pgBackRest server (repository host)
writef "$BENCH/pgbackrest/server.conf" <<EOF
[global]
repo1-path=$BENCH/pgbackrest/repo
log-path=$BENCH/pgbackrest/log
lock-path=$BENCH/pgbackrest/lock
log-level-console=warn
log-level-file=info
tls-server-address=127.0.0.1
tls-server-port=$PBR_PORT
tls-server-cert-file=$C/backup-srv.crt
tls-server-key-file=$C/backup-srv.key
tls-server-ca-file=$C/ca.crt
tls-server-auth=pg1-srv=$STANZA_SYNC,$STANZA_ASYNC
EOF

# pgBackRest on the PostgreSQL host: one file per mode
# repo1-path here too: the client sends it to the TLS server, which would
# otherwise use the default /var/lib/pgbackrest, not its own file's value
pbr_client_conf() {   # stanza mode
	cat <<EOF
[global]
repo1-path=$BENCH/pgbackrest/repo
repo1-host=localhost
repo1-host-type=tls
repo1-host-port=$PBR_PORT
repo1-host-cert-file=$C/pg1-srv.crt
repo1-host-key-file=$C/pg1-srv.key
repo1-host-ca-file=$C/ca.crt
compress-type=zst
compress-level=$COMPRESS_LEVEL
log-path=$BENCH/pgbackrest/log
lock-path=$BENCH/pgbackrest/lock
log-level-console=warn
log-level-file=info
EOF
	if [ "$2" = async ]; then
		cat <<EOF
archive-async=y
spool-path=$BENCH/pgbackrest/spool
process-max=2
EOF
	fi
	cat <<EOF

[$1]
pg1-path=$BENCH/pg-$2
pg1-socket-path=$BENCH/run
pg1-port=${PGPORT[$2]}
EOF
}
pbr_client_conf "$STANZA_SYNC" sync | writef "$BENCH/pgbackrest/client-sync.conf"
pbr_client_conf "$STANZA_ASYNC" async | writef "$BENCH/pgbackrest/client-async.conf"
declare -A PBR_CONF=([sync]=$BENCH/pgbackrest/client-sync.conf [async]=$BENCH/pgbackrest/client-async.conf)
declare -A PBR_STANZA=([sync]=$STANZA_SYNC [async]=$STANZA_ASYNC)

# ---------------------------------------------------------------- clusters

psql_c() {   # config sql...
	local c=$1
	shift
	as_user "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BENCH/run" -p "${PGPORT[$c]}" \
		-d postgres "$@"
}

say "PostgreSQL $PG_VERSION_MAJOR clusters (one per configuration)"
for c in "${CONFIGS[@]}"; do
	d=$BENCH/pg-$c
	as_user "$PG_BINDIR/initdb" -D "$d" -U postgres -A trust -N >"$BENCH/initdb-$c.log" 2>&1 ||
		{ cat "$BENCH/initdb-$c.log" >&2; die "initdb $c failed"; }
	{
		cat <<EOF

# ---- pgbr bench ----
listen_addresses = ''
port = ${PGPORT[$c]}
unix_socket_directories = '$BENCH/run'
shared_buffers = 256MB
wal_level = replica
archive_mode = on
max_wal_size = 4GB
min_wal_size = 1GB
wal_keep_size = 4GB
checkpoint_timeout = 1h
autovacuum = off
log_line_prefix = '%m [%p] %b '
log_min_messages = warning
lc_messages = 'C'
EOF
		if [ "$c" = pgbr ]; then
			cat <<EOF
archive_library = 'pgbr'
pgbr.config = '$PGBR_CONF'
pgbr.stanza = '$STANZA_PGBR'
EOF
		else
			echo "archive_command = 'false'"
		fi
	} | as_user tee -a "$d/postgresql.conf" >/dev/null
	as_user "$PG_BINDIR/pg_ctl" -D "$d" -l "$BENCH/pg-$c.log" -w -t 60 start >/dev/null ||
		{ tail -20 "$BENCH/pg-$c.log" >&2; die "cluster $c did not start"; }
	info "$c: $d, socket $BENCH/run port ${PGPORT[$c]}"
done

# ---------------------------------------------------------------- servers

# shellcheck disable=SC2016  # $1.. are the inner sh's
start_pgbr_server() {
	SERVER_PID=$(as_user sh -c 'cd "$1" && exec "$2" --config="$3" >>"$4" 2>&1 </dev/null & echo $!' \
		sh "$BENCH/pgbr" "$PG_BINDIR/pgbr-server" "$BENCH/pgbr/server.conf" "$BENCH/pgbr/server.out")
	echo "$SERVER_PID" >"$BENCH/server.pid"
	for _ in $(seq 1 100); do
		pid_alive "$SERVER_PID" || { cat "$BENCH/pgbr/server.out" >&2; die "pgbr-server exited at start"; }
		grep -q listening "$BENCH/pgbr/server.out" 2>/dev/null && return 0
		sleep 0.1
	done
	die "pgbr-server does not listen after 10 s"
}

# shellcheck disable=SC2016
start_pbr_server() {
	SERVER_PID=$(as_user sh -c 'cd "$1" && exec "$2" --config="$3" server >>"$4" 2>&1 </dev/null & echo $!' \
		sh "$BENCH/pgbackrest" "$PGBACKREST" "$BENCH/pgbackrest/server.conf" "$BENCH/pgbackrest/server.out")
	echo "$SERVER_PID" >"$BENCH/server.pid"
	for _ in $(seq 1 100); do
		pid_alive "$SERVER_PID" || { cat "$BENCH/pgbackrest/server.out" >&2; die "pgbackrest server exited at start"; }
		if as_user "$PGBACKREST" --config="${PBR_CONF[sync]}" --tls-server-address=127.0.0.1 \
			--tls-server-port="$PBR_PORT" server-ping >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	die "pgbackrest server does not answer after 10 s"
}

stop_server() {
	stop_pid "$SERVER_PID"
	SERVER_PID=
	rm -f "$BENCH/server.pid"
}

say "stanzas"
start_pgbr_server
as_user timeout 60 "$PG_BINDIR/pgbr" --config="$BENCH/pgbr/pgbr.conf.good" --stanza="$STANZA_PGBR" \
	stanza-create >"$BENCH/pgbr/stanza-create.out" 2>&1 ||
	{ cat "$BENCH/pgbr/stanza-create.out" >&2; die "pgbr stanza-create failed"; }
info "pgbr: stanza $STANZA_PGBR created (pgbr stanza-create)"
stop_server

start_pbr_server
for c in sync async; do
	out=$BENCH/pgbackrest/stanza-create-$c.out
	# from the PostgreSQL host over TLS; if pgBackRest insists on the
	# repository host, there (same machine: PostgreSQL is local to it too)
	if as_user timeout 120 "$PGBACKREST" --config="${PBR_CONF[$c]}" --stanza="${PBR_STANZA[$c]}" \
		stanza-create >"$out" 2>&1; then
		info "pgBackRest: stanza ${PBR_STANZA[$c]} created from the PostgreSQL host"
	elif as_user timeout 120 "$PGBACKREST" --config="$BENCH/pgbackrest/server.conf" \
		--stanza="${PBR_STANZA[$c]}" --pg1-path="$BENCH/pg-$c" --pg1-socket-path="$BENCH/run" \
		--pg1-port="${PGPORT[$c]}" stanza-create >>"$out" 2>&1; then
		info "pgBackRest: stanza ${PBR_STANZA[$c]} created on the repository side ($(head -1 "$out"))"
	else
		cat "$out" >&2
		die "pgBackRest stanza-create ${PBR_STANZA[$c]} failed"
	fi
	[ -f "$BENCH/pgbackrest/repo/archive/${PBR_STANZA[$c]}/archive.info" ] ||
		die "pgBackRest stanza-create ${PBR_STANZA[$c]} did not write into $BENCH/pgbackrest/repo"
done
stop_server

# ---------------------------------------------------------------- the burst

# Deterministic, so every cluster gets the same logical content: pgbench's
# tables (very compressible) plus a table of md5 strings (hex: compresses to
# about half).
BURST_SQL=$(cat <<EOF
CREATE TABLE burst (id bigint, a text, b text, c int);
INSERT INTO burst SELECT g, md5(g::text), md5((g * 7919)::text) || md5((g * 104729)::text), (g % 1000)::int
  FROM generate_series(1::bigint, $ROWS) g;
EOF
)

say "WAL burst in each cluster (pgbench -i -s $SCALE, $ROWS md5 rows), archiving paused"
for c in "${CONFIGS[@]}"; do
	selected "$c" || continue
	t0=$(now)
	lsn0=$(psql_c "$c" -c "SELECT pg_current_wal_lsn()")
	as_user timeout 300 "$PG_BINDIR/pgbench" -h "$BENCH/run" -p "${PGPORT[$c]}" -i -s "$SCALE" -q postgres \
		>"$BENCH/pgbench-$c.log" 2>&1 || { tail "$BENCH/pgbench-$c.log" >&2; die "pgbench -i failed ($c)"; }
	printf '%s\n' "$BURST_SQL" | as_user timeout 300 "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$BENCH/run" -p "${PGPORT[$c]}" -d postgres >/dev/null || die "burst SQL failed ($c)"
	lsn1=$(psql_c "$c" -c "SELECT pg_current_wal_lsn()")
	psql_c "$c" -c "SELECT pg_switch_wal()" >/dev/null
	bytes=$(psql_c "$c" -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint")
	info "$c: $(calc "$bytes / 1048576" | cut -d. -f1) MiB of WAL in $(calc "$(now) - $t0" | cut -c1-5) s"
	[ "$bytes" -ge "$MIN_BYTES" ] || die "burst of $c is only $bytes bytes of WAL (< 1 GiB): raise PGBR_BENCH_ROWS/SCALE"
done


# let every failing archiver finish its retries (3 x 1 s) and settle
sleep 5
declare -A READY
for c in "${CONFIGS[@]}"; do
	selected "$c" || continue
	n=$(ready_count "$BENCH/pg-$c")
	info "$c: $n segments ready to archive"
	[ "$n" -ge "$MIN_SEGMENTS" ] || die "$c: only $n segments ready (< $MIN_SEGMENTS)"
	READY[$c]=$n
done

# Every round starts each cluster from a copy of it taken here, stopped
# cleanly with its burst still waiting, and from a repository without its
# WAL, so that all rounds archive the same segments.
say "copies of the clusters with their burst, for $REPEAT rounds"
for c in "${CONFIGS[@]}"; do
	selected "$c" || continue
	as_user "$PG_BINDIR/pg_ctl" -D "$BENCH/pg-$c" -m fast -w -t 120 stop >/dev/null ||
		die "cluster $c did not stop"
	as_user cp -a "$BENCH/pg-$c" "$BENCH/snap-$c"
	# the shutdown may have completed one more segment
	READY[$c]=$(ready_count "$BENCH/snap-$c")
	info "$c: $(du -sm "$BENCH/snap-$c" | cut -f1) MiB in $BENCH/snap-$c, ${READY[$c]} segments ready"
done

# the cluster back to its copy, archiving paused, nothing in the repository
reset_config() {
	local c=$1 d=$BENCH/pg-$c
	rm -rf "$d"
	as_user cp -a "$BENCH/snap-$c" "$d"
	if [ "$c" = pgbr ]; then
		as_user cp -p "$BENCH/pgbr/pgbr.conf.paused" "$PGBR_CONF"
		rm -rf "$BENCH/pgbr/repo/$STANZA_PGBR/archive/"*
	else
		rm -rf "$BENCH/pgbackrest/repo/archive/${PBR_STANZA[$c]}/"*-*/ \
			"$BENCH/pgbackrest/spool/archive/${PBR_STANZA[$c]}"
	fi
}

start_round() {
	local c n
	for c in "${CONFIGS[@]}"; do
		selected "$c" && reset_config "$c"
	done
	sync
	for c in "${CONFIGS[@]}"; do
		selected "$c" || continue
		as_user "$PG_BINDIR/pg_ctl" -D "$BENCH/pg-$c" -l "$BENCH/pg-$c.log" -w -t 120 start >/dev/null ||
			{ tail -20 "$BENCH/pg-$c.log" >&2; die "cluster $c did not start"; }
	done
	# as after the burst: the paused archivers try, fail and settle
	sleep 5
	for c in "${CONFIGS[@]}"; do
		selected "$c" || continue
		n=$(ready_count "$BENCH/pg-$c")
		[ "$n" -eq "${READY[$c]}" ] || die "$c: $n segments ready after the reset, ${READY[$c]} before"
	done
}

# ---------------------------------------------------------------- measurement helpers

# descendants of a process (children, grandchildren, ...)
descendants() {
	local p
	for p in $(pgrep -P "$1" 2>/dev/null || true); do
		printf '%s ' "$p"
		descendants "$p"
	done
}

# Every 0.1 s (bash builtins only, nap instead of sleep, so that sampling
# costs little):
#   server processes: $1 and its descendants (session processes);
#   client processes: the postmaster $2 and its descendants (the archiver,
#     archive_command and what it starts), and orphans (children of pid 1)
#     whose command line contains $3, with their descendants (pgBackRest's
#     async process detaches from the archiver).
# Writes to $4: the largest VmHWM of one server process (kB), the peak of the
# summed RSS of the server processes (kB), and the CPU ticks the server and
# the client processes used since the first look.  Processes that live
# shorter than the interval, and the last < 0.1 s of each, are missed: the
# CPU figures are lower bounds.
sampler() {
	local srv=$1 pm=$2 pat=$3 out=$4
	local max_hwm=0 max_sum=0 first=1 sum line pid rest k v _ page_kb st=0 ct=0
	local -a a cmd queue
	local -A role=() base=() last=() orphan_checked=()
	page_kb=$(($(getconf PAGESIZE) / 1024))

	# children of $1 (all its threads) into the array ch
	local -a ch chf
	children_of() {
		local f
		ch=()
		for f in /proc/"$1"/task/*/children; do
			chf=()
			# (no newline at the end: read "fails" but fills chf)
			{ read -r -a chf <"$f"; } 2>/dev/null || true
			ch+=("${chf[@]}")
		done
	}
	while :; do
		[ -e "$BENCH/sampler.stop" ] && break
		# pgBackRest's detached async process: an orphan with our config
		if [ -n "$pat" ]; then
			children_of 1
			for pid in "${ch[@]}"; do
				[ -n "${orphan_checked[$pid]:-}" ] && continue
				orphan_checked[$pid]=1
				cmd=()
				{ mapfile -d '' cmd <"/proc/$pid/cmdline"; } 2>/dev/null || true
				[[ "${cmd[*]}" == *"$pat"* ]] && [ -z "${role[$pid]:-}" ] && role[$pid]=c
			done
		fi
		# roots, then breadth first through their children
		queue=("$srv" "$pm")
		role[$srv]=s
		role[$pm]=c
		for pid in "${!orphan_checked[@]}"; do
			[ "${role[$pid]:-}" = c ] && [ -e "/proc/$pid" ] && queue+=("$pid")
		done
		sum=0
		while [ "${#queue[@]}" -gt 0 ]; do
			pid=${queue[0]}
			queue=("${queue[@]:1}")
			{ read -r line <"/proc/$pid/stat"; } 2>/dev/null || continue
			rest=${line##*) }
			# shellcheck disable=SC2206  # numbers and one state letter
			a=($rest)
			# a[0] = field 3 (state): utime 14 -> a[11], stime 15 -> a[12], rss 24 -> a[21]
			if [ -z "${base[$pid]+set}" ]; then
				if [ "$first" = 1 ]; then base[$pid]=$((a[11] + a[12])); else base[$pid]=0; fi
			fi
			last[$pid]=$((a[11] + a[12]))
			children_of "$pid"
			for k in "${ch[@]}"; do
				[ -n "${role[$k]:-}" ] || role[$k]=${role[$pid]}
				queue+=("$k")
			done
			if [ "${role[$pid]}" = s ]; then
				sum=$((sum + a[21] * page_kb))
				while read -r k v _; do
					if [ "$k" = VmHWM: ]; then
						[ "$v" -gt "$max_hwm" ] && max_hwm=$v
						break
					fi
				done 2>/dev/null <"/proc/$pid/status" || true
			fi
		done
		[ "$sum" -gt "$max_sum" ] && max_sum=$sum
		first=0
		nap 0.1
	done
	for pid in "${!last[@]}"; do
		case "${role[$pid]}" in
		s) st=$((st + last[$pid] - base[$pid])) ;;
		c) ct=$((ct + last[$pid] - base[$pid])) ;;
		esac
	done
	printf '%s %s %s %s\n' "$max_hwm" "$max_sum" "$st" "$ct" >"$out"
}

# CPU seconds of a process: own time, plus that of its waited-for children
cpu_ticks() {   # pid [with_children]
	local f
	[ -r "/proc/$1/stat" ] || { printf '0'; return; }
	read -r -a f < <(sed 's/^.*) //' "/proc/$1/stat")
	# after "comm)": field 3 is state; utime=14 stime=15 cutime=16 cstime=17 -> index 11..14
	if [ "${2:-}" = children ]; then
		printf '%s' $((f[11] + f[12] + f[13] + f[14]))
	else
		printf '%s' $((f[11] + f[12]))
	fi
}

server_cpu_ticks() {   # the server, its reaped children and its live ones
	local t p
	t=$(cpu_ticks "$SERVER_PID" children)
	for p in $(descendants "$SERVER_PID"); do
		t=$((t + $(cpu_ticks "$p")))
	done
	printf '%s' "$t"
}

system_busy_ticks() {
	local u n s irq sirq st _
	read -r _ u n s _ _ irq sirq st _ </proc/stat
	printf '%s' $((u + n + s + irq + sirq + st))
}

archiver_pid() {   # datadir
	local pm
	pm=$(head -1 "$1/postmaster.pid")
	pgrep -P "$pm" -f '^postgres: archiver' | head -1
}

stat_archiver() {   # config -> "archived_count failed_count"
	psql_c "$1" -F' ' -c "SELECT archived_count, failed_count FROM pg_stat_archiver"
}

log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Problems a log got since byte offset $2: count and the first lines.
log_problems() {   # file offset pattern
	tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -E "$3" || true
}

# ---------------------------------------------------------------- measure

measure() {
	local c=$1
	local d=$BENCH/pg-$c pglog=$BENCH/pg-$c.log segs remaining t0 t1 tfirst="" t
	local off sys0 arch0 arch_pid st0 st1 srvlog srvoff nfirst=0 pm_pid pat hwm rsum sticks cticks

	say "measure: ${LABEL[$c]}"
	if [ "$c" = pgbr ]; then
		start_pgbr_server
		srvlog=$BENCH/pgbr/server.out
	else
		start_pbr_server
		srvlog=$BENCH/pgbackrest/server.out
	fi
	srvoff=$(log_size "$srvlog")
	pm_pid=$(head -1 "$d/postmaster.pid")
	rm -f "$BENCH/sampler.stop"
	if [ "$c" = async ]; then pat=${PBR_CONF[$c]}; else pat=; fi
	sampler "$SERVER_PID" "$pm_pid" "$pat" "$BENCH/sampler-$c.out" &
	SAMPLER_PID=$!
	sleep 0.3   # its first look is the baseline

	segs=$(ready_count "$d")
	off=$(log_size "$pglog")
	st0=$(stat_archiver "$c")
	arch_pid=$(archiver_pid "$d")
	arch0=$(cpu_ticks "$arch_pid" children)
	sys0=$(system_busy_ticks)

	# switch archiving on and wake the archiver
	t0=$(now_us)
	if [ "$c" = pgbr ]; then
		as_user cp "$BENCH/pgbr/pgbr.conf.good" "$PGBR_CONF.new"
		as_user mv -f "$PGBR_CONF.new" "$PGBR_CONF"
		psql_c "$c" -c "SELECT pg_reload_conf()" >/dev/null
	else
		psql_c "$c" -c "ALTER SYSTEM SET archive_command = '$PGBACKREST --config=${PBR_CONF[$c]} --stanza=${PBR_STANZA[$c]} archive-push %p'" \
			-c "SELECT pg_reload_conf()" >/dev/null
	fi

	R_CAPPED[$c]=""
	while :; do
		ready_count_to remaining "$d"
		t=${EPOCHREALTIME/./}
		if [ -z "$tfirst" ] && [ "$remaining" -lt "$segs" ]; then
			tfirst=$t
			nfirst=$((segs - remaining))
		fi
		if [ "$remaining" -eq 0 ]; then
			t1=$t
			break
		fi
		if [ $((t - t0)) -ge $((CAP * 1000000)) ]; then
			t1=$t
			R_CAPPED[$c]="capped at ${CAP}s: $((segs - remaining))/$segs archived"
			break
		fi
		# nothing at all after 30 s: it does not work, do not wait for the cap
		if [ -z "$tfirst" ] && [ $((t - t0)) -ge 30000000 ]; then
			t1=$t
			R_CAPPED[$c]="FAILED: nothing archived in 30 s (see the log below)"
			break
		fi
		nap 0.05
	done

	R_SEGS[$c]=$((segs - remaining))
	R_SECS[$c]=$(calc "($t1 - $t0) / 1000000")
	R_FIRST[$c]=$([ -n "$tfirst" ] && calc "($tfirst - $t0) / 1000000" || echo "-")
	if [ -n "$tfirst" ] && [ "$t1" -gt "$tfirst" ]; then
		R_STEADY[$c]=$(awk -v n=$((R_SEGS[$c] - nfirst)) -v us=$((t1 - tfirst)) 'BEGIN { printf "%.2f", n / (us / 1e6) }')
	else
		R_STEADY[$c]="-"
	fi
	R_SYS_CPU[$c]=$(calc "($(system_busy_ticks) - $sys0) / $CLK_TCK")
	# exact for pgbr and sync: the archiver waits for what it starts
	R_CLI_CPU[$c]=$(($(cpu_ticks "$arch_pid" children) - arch0))
	st1=$(stat_archiver "$c")
	R_FAILED[$c]=$(($(cut -d' ' -f2 <<<"$st1") - $(cut -d' ' -f2 <<<"$st0")))
	FAILED_ALL[$c]=$((${FAILED_ALL[$c]:-0} + R_FAILED[$c]))
	info "$c: ${R_SEGS[$c]}/$segs segments in ${R_SECS[$c]} s (first archived after ${R_FIRST[$c]} s)," \
		"pg_stat_archiver archived +$(($(cut -d' ' -f1 <<<"$st1") - $(cut -d' ' -f1 <<<"$st0"))) failed +${R_FAILED[$c]}"

	# stop the cluster, so that the server's sessions end and their CPU time
	# is counted (fast; immediate after a cap, where a fast shutdown would
	# make the archiver try all that is left)
	if [ "$remaining" -eq 0 ]; then
		as_user "$PG_BINDIR/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null ||
			as_user "$PG_BINDIR/pg_ctl" -D "$d" -m immediate -w -t 60 stop >/dev/null || true
	else
		as_user "$PG_BINDIR/pg_ctl" -D "$d" -m immediate -w -t 60 stop >/dev/null || true
	fi
	sleep 0.5
	touch "$BENCH/sampler.stop"
	wait "$SAMPLER_PID" || true
	SAMPLER_PID=
	read -r hwm rsum sticks cticks <"$BENCH/sampler-$c.out"
	R_SRV_HWM[$c]=$hwm
	R_SRV_RSS[$c]=$rsum
	# both are lower bounds: take the larger
	t=$(server_cpu_ticks)
	[ "$sticks" -gt "$t" ] && t=$sticks
	R_SRV_CPU[$c]=$(calc "$t / $CLK_TCK")
	[ "$cticks" -gt "${R_CLI_CPU[$c]}" ] && R_CLI_CPU[$c]=$cticks
	R_CLI_CPU[$c]=$(calc "${R_CLI_CPU[$c]} / $CLK_TCK")
	[ "$c" = async ] && stop_async_leftovers

	# one segment back from the repository, compared with the original
	local seg got=$BENCH/verify-$c n=$((segs / 2))
	seg=$(printf '00000001%08X%08X' $((n / 256)) $((n % 256)))
	if [ "$c" = pgbr ]; then
		as_user timeout 60 "$PG_BINDIR/pgbr" --config="$BENCH/pgbr/pgbr.conf.good" --stanza="$STANZA_PGBR" \
			archive-get "$seg" "$got" >"$got.out" 2>&1 || true
	else
		as_user timeout 60 "$PGBACKREST" --config="${PBR_CONF[$c]}" --stanza="${PBR_STANZA[$c]}" \
			--no-archive-async archive-get "$seg" "$got" >"$got.out" 2>&1 || true
	fi
	if [ ! -f "$got" ]; then
		R_VERIFY[$c]+="${R_VERIFY[$c]:+; }round $round: archive-get $seg FAILED: $(tail -1 "$got.out")"
	elif [ ! -f "$d/pg_wal/$seg" ]; then
		R_VERIFY[$c]+="${R_VERIFY[$c]:+; }round $round: read back, but the original $seg is gone from pg_wal"
	elif cmp -s "$got" "$d/pg_wal/$seg"; then
		R_VERIFY[$c]+="${R_VERIFY[$c]:+; }round $round: ok ($seg)"
	else
		R_VERIFY[$c]+="${R_VERIFY[$c]:+; }round $round: $seg DIFFERS from the original"
	fi
	rm -f "$got"
	stop_server

	# repository: size and WAL files of this stanza
	if [ "$c" = pgbr ]; then
		R_REPO[$c]=$(du -sb "$BENCH/pgbr/repo" | cut -f1)
		R_REPO_FILES[$c]=$(find "$BENCH/pgbr/repo" -type f -name '0000000*' | grep -c -E '/[0-9A-F]{24}[^/]*$' || true)
	else
		R_REPO[$c]=$(du -sb "$BENCH/pgbackrest/repo/archive/${PBR_STANZA[$c]}" | cut -f1)
		R_REPO_FILES[$c]=$(find "$BENCH/pgbackrest/repo/archive/${PBR_STANZA[$c]}" -type f -name '0000000*' |
			grep -c -E '/[0-9A-F]{24}-[0-9a-f]{40}' || true)
	fi

	# what the logs said, over all rounds
	t=$(log_problems "$pglog" "$off" 'WARNING|ERROR|FATAL|PANIC|LOG:  pgbr' | head -200)
	[ -z "$t" ] || R_PGLOG[$c]+="${R_PGLOG[$c]:+$'\n'}$t"
	t=$(log_problems "$srvlog" "$srvoff" 'ERROR|WARN|refus|FATAL' | head -200)
	[ -z "$t" ] || R_SRVLOG[$c]+="${R_SRVLOG[$c]:+$'\n'}$t"
}

# Each round measures every configuration once, in an order that turns
# by one each round, so that a machine that speeds up or slows down during
# the run does not favour one of them; the tables give the median round.
declare -A X_RATE X_SECS X_CPU
ORDER=(sync async pgbr)
for ((round = 1; round <= REPEAT; round++)); do
	say "round $round/$REPEAT"
	start_round
	order=("${ORDER[@]:$(((round - 1) % 3))}" "${ORDER[@]:0:$(((round - 1) % 3))}")
	ROUND_ORDER[$round]="${order[*]}"
	for c in "${order[@]}"; do
		selected "$c" || continue
		measure "$c"
		X_RATE[$c:$round]=$(calc "${R_SEGS[$c]} / ${R_SECS[$c]}")
		X_SECS[$c:$round]=${R_SECS[$c]}
		X_CPU[$c:$round]=$(awk -v a="${R_SRV_CPU[$c]}" -v b="${R_CLI_CPU[$c]}" -v n="${R_SEGS[$c]}" \
			'BEGIN { if (n > 0) printf "%.3f", (a + b) / n; else print "-" }')
		[ -z "${R_CAPPED[$c]}" ] || CAPPED_ANY[$c]="${CAPPED_ANY[$c]:-}round $round: ${R_CAPPED[$c]}; "
	done
done

# ---------------------------------------------------------------- report

# median of the arguments (the lower middle one when even)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
measured() { [ -n "${X_RATE[$1:1]:-}" ]; }
rates() { local r; for ((r = 1; r <= REPEAT; r++)); do echo "${X_RATE[$1:$r]}"; done; }
rate() { median $(rates "$1"); }
# a/b in one round
round_ratio() { awk -v a="${X_RATE[$1:$3]}" -v b="${X_RATE[$2:$3]}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print 0 }'; }
ratios() { local r; for ((r = 1; r <= REPEAT; r++)); do round_ratio "$1" "$2" "$r"; echo; done; }
ratio() {   # a b -> median of the rounds' a/b, formatted
	if ! measured "$1" || ! measured "$2"; then echo "-"; return; fi
	printf '%.2fx' "$(median $(ratios "$1" "$2"))"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

REPORT=$BENCH/results.txt
{
	echo
	echo "WAL archiving benchmark ($(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo "burst: pgbench -i -s $SCALE + $ROWS md5 rows per cluster; zstd level $COMPRESS_LEVEL everywhere;"
	echo "       pgbr process-max=$PGBR_PROCESS_MAX archive-push-queue=$PGBR_QUEUE; pgBackRest async process-max=2"
	echo "seconds: from switching archiving on (file fixed / ALTER SYSTEM, then pg_reload_conf) to no .ready left"
	echo
	echo "rounds: $REPEAT, each measuring every configuration once (order: ${ROUND_ORDER[*]/%/;}); the median round is given"
	echo
	printf '%-34s %8s %8s %8s %8s %9s %9s\n' configuration segments seconds "seg/s" "MiB/s" "vs sync" "vs async"
	printf '%-34s %8s %8s %8s %8s %9s %9s\n' ---------------------------------- -------- -------- -------- -------- --------- ---------
	for c in sync async pgbr; do
		measured "$c" || continue
		secs=$(median $(for ((r = 1; r <= REPEAT; r++)); do echo "${X_SECS[$c:$r]}"; done))
		printf '%-34s %8s %8.2f %8.2f %8.1f %9s %9s\n' "${LABEL[$c]}" "${R_SEGS[$c]}" "$secs" \
			"$(rate "$c")" "$(calc "$(rate "$c") * 16")" "$(ratio "$c" sync)" "$(ratio "$c" async)"
	done
	echo
	echo "per round: seg/s (CPU-seconds per segment)"
	printf '%-6s' round
	for c in sync async pgbr; do measured "$c" && printf ' %24s' "${SHORT[$c]}"; done
	measured pgbr && measured sync && printf ' %10s' "pgbr/sync"
	measured pgbr && measured async && printf ' %10s' "pgbr/async"
	echo
	for ((r = 1; r <= REPEAT; r++)); do
		printf '%-6s' "$r"
		for c in sync async pgbr; do
			measured "$c" && printf ' %24s' "$(printf '%.2f (%s)' "${X_RATE[$c:$r]}" "${X_CPU[$c:$r]}")"
		done
		measured pgbr && measured sync && printf ' %9.2fx' "$(round_ratio pgbr sync "$r")"
		measured pgbr && measured async && printf ' %9.2fx' "$(round_ratio pgbr async "$r")"
		echo
	done
	echo
	echo "last round, in detail:"
	echo
	printf '%-34s %9s %9s %11s %11s %10s %10s %9s %10s %12s %9s\n' configuration "1st arch" "seg/s>1st" "srv HWM" "srv RSS sum" \
		"srv CPU s" "cli CPU s" "CPU s/seg" "sys CPU s" "repo size" "repo WAL"
	for c in sync async pgbr; do
		[ -n "${R_SECS[$c]:-}" ] || continue
		printf '%-34s %8ss %9s %7s MiB %7s MiB %10s %10s %9s %10s %8s MiB %9s\n' "${LABEL[$c]}" "${R_FIRST[$c]:0:5}" "${R_STEADY[$c]}" \
			"$(mib $((R_SRV_HWM[$c] * 1024)))" "$(mib $((R_SRV_RSS[$c] * 1024)))" "${R_SRV_CPU[$c]}" \
			"${R_CLI_CPU[$c]}" "$(awk -v a="${R_SRV_CPU[$c]}" -v b="${R_CLI_CPU[$c]}" -v n="${R_SEGS[$c]}" \
				'BEGIN { if (n > 0) printf "%.3f", (a + b) / n; else print "-" }')" \
			"${R_SYS_CPU[$c]}" "$(mib "${R_REPO[$c]}")" "${R_REPO_FILES[$c]}"
	done
	echo "(1st arch: seconds until the first segment was archived; seg/s>1st: rate from then on; srv HWM: largest VmHWM of one server process;"
	echo " srv RSS sum: peak of the summed RSS of the server and its session processes, sampled every 0.1 s;"
	echo " srv CPU / cli CPU: CPU-seconds of the server's processes / of the cluster's processes with"
	echo " archive_command and pgBackRest's detached async processes (sampled: lower bounds where"
	echo " processes live shorter than 0.1 s, e.g. pgBackRest's per-connection server processes);"
	echo " CPU s/seg: (srv CPU + cli CPU) / segments: what the machine must spend per segment;"
	echo " sys CPU: CPU-seconds used by the whole machine during the measurement, other load included)"
	for c in sync async pgbr; do
		[ -n "${CAPPED_ANY[$c]:-}" ] && echo "NOTE: ${LABEL[$c]}: ${CAPPED_ANY[$c]}its rate is from what it did"
		[ "${FAILED_ALL[$c]:-0}" -gt 0 ] && echo "NOTE: ${LABEL[$c]}: pg_stat_archiver counted ${FAILED_ALL[$c]} failed attempts"
		[ -n "${R_VERIFY[$c]:-}" ] && echo "${LABEL[$c]}: a segment read back with archive-get: ${R_VERIFY[$c]}"
		if [ -n "${R_SECS[$c]:-}" ] && [ "${R_REPO_FILES[$c]}" -lt "${R_SEGS[$c]}" ]; then
			echo "NOTE: ${LABEL[$c]}: the repository holds ${R_REPO_FILES[$c]} WAL files for ${R_SEGS[$c]} archived"
		fi
	done
	echo
	if measured pgbr && measured sync && measured async; then
		goal() {   # a b factor: on the median of the rounds' ratios, and how many rounds
			local m k=0 r
			m=$(median $(ratios "$1" "$2"))
			for r in $(ratios "$1" "$2"); do
				awk -v x="$r" -v f="$3" 'BEGIN { exit !(x >= f) }' && k=$((k + 1))
			done
			awk -v m="$m" -v f="$3" -v k="$k" -v n="$REPEAT" 'BEGIN {
				if (m <= 0) print "NOT EVALUATED (the pgBackRest run archived nothing)";
				else printf "%.2fx  %s (met in %d of %d rounds)\n", m, (m >= f) ? "MET" : "NOT MET", k, n }'
		}
		echo "goal pgbr >= 3x pgBackRest sync:    $(goal pgbr sync 3)"
		echo "goal pgbr >= 1.5x pgBackRest async: $(goal pgbr async 1.5)"
	fi
} | tee "$REPORT"

for c in sync async pgbr; do
	[ -n "${R_SECS[$c]:-}" ] || continue
	if [ -n "${R_PGLOG[$c]:-}" ]; then
		echo
		echo "PostgreSQL log of ${LABEL[$c]} during the measurement ($(wc -l <<<"${R_PGLOG[$c]}") lines, first 10):"
		head -10 <<<"${R_PGLOG[$c]}" | sed 's/^/    | /'
	fi
	if [ -n "${R_SRVLOG[$c]:-}" ]; then
		echo
		echo "server log of ${LABEL[$c]} during the measurement ($(wc -l <<<"${R_SRVLOG[$c]}") lines, first 10):"
		head -10 <<<"${R_SRVLOG[$c]}" | sed 's/^/    | /'
	fi
done | tee -a "$REPORT"
echo
echo "results: $REPORT; logs: $BENCH/pg-*.log, $BENCH/pgbr/, $BENCH/pgbackrest/log/"
