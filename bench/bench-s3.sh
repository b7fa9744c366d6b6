#!/usr/bin/env bash
#
# bench/bench-s3.sh - pgbr with its repository in a directory (repo1-type=
# posix) against pgbr with it in an S3 bucket (repo1-type=s3, a one-node
# Ceph RADOS Gateway on 127.0.0.1 started by regress/ceph-rgw.sh), in one
# run, on the same data.
#
# Two PostgreSQL 15 clusters (shared_preload_libraries = 'pgbr', archive_
# library = 'pgbr'), one per back end, each talking mutual TLS to its own
# pgbr-server (the installed binary), both servers running all along:
#
#   1. WAL archiving: each cluster generates the same burst (pgbench -i -s
#      50 + 4,000,000 md5 rows, >= 1 GiB of WAL) while archiving is paused
#      (pgbr.conf points at a closed port); then the file is fixed,
#      pg_reload_conf() wakes the archiver, and the time until no .ready file
#      remains is measured (as in bench/bench.sh).  One segment is read back
#      with `pgbr archive-get` and compared.
#   2. full backup: the burst table is dropped (the clusters now hold what
#      pgbench -i -s 50 made), CHECKPOINT, sync, then SELECT pgbr_backup(
#      'full') (process-max=2, repo1-bundle=y, start-fast=y, zstd level 3).
#   3. restore: `pgbr restore` of that backup into an empty directory
#      (process-max=2).
#
# posix goes first in every step.  CPU-seconds: the cluster's processes (the
# postmaster and its children, living and reaped), pgbr-server (the same),
# the pgbr tool (restore), Ceph's mon + osd + radosgw, and the whole machine
# (/proc/stat, other load included).
#
# Run as root (clusters, servers and Ceph run as user postgres via runuser),
# with the installed pgbr (make && make install).  Ceph's packages are
# installed by `regress/ceph-rgw.sh install` if missing.  Everything lives in
# /tmp/pgbr-bench-s3 (emptied at the start; at the end every process is
# stopped, the Ceph cluster destroyed - its logs are kept in ceph-log/ - and
# the restored directories removed).  Results in /tmp/pgbr-bench-s3/results.txt,
# the servers' logs in log-posix/ and log-s3/.
#
# Environment:
#   PGBR_BENCH_DIR        scratch directory (default /tmp/pgbr-bench-s3)
#   PGBR_BENCH_CAP        seconds at most for one WAL measurement (default 900)
#   PGBR_BENCH_SCALE      pgbench -i scale (default 50)
#   PGBR_BENCH_ROWS       rows of the md5 table of the burst (default 4000000)
#   PGBR_BENCH_CEPH_PORT  first port tried for Ceph (default 7900; S3 there,
#                         the mon and OSD on the next 40; +50 while taken)

set -euo pipefail

BENCH=${PGBR_BENCH_DIR:-/tmp/pgbr-bench-s3}
CAP=${PGBR_BENCH_CAP:-900}
SCALE=${PGBR_BENCH_SCALE:-50}
ROWS=${PGBR_BENCH_ROWS:-4000000}
CEPH_PORT=${PGBR_BENCH_CEPH_PORT:-7900}
RUN_USER=postgres
PROCESS_MAX=2
LEVEL=3
STANZA=bench
BUCKET=pgbr-bench
MIN_BYTES=$((1024 * 1024 * 1024))
KINDS=(posix s3)
declare -A PGPORT=([posix]=54361 [s3]=54362) SRV_PID=() R=()
RGW=$(cd "$(dirname "$0")/.." && pwd)/regress/ceph-rgw.sh
CEPH=$BENCH/ceph

BENCH_NAME=bench-s3
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
now_us() { local t=$EPOCHREALTIME; printf '%s' "${t/./}"; }

# ---------------------------------------------------------------- checks

[ "$(id -u)" -eq 0 ] || die "run as root (clusters run as $RUN_USER via runuser)"
id "$RUN_USER" >/dev/null 2>&1 || die "user $RUN_USER does not exist"
case "$BENCH" in /tmp/?*) ;; *) die "PGBR_BENCH_DIR=$BENCH: must be under /tmp (it is emptied)" ;; esac
[ -r "$RGW" ] || die "$RGW not found"
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)}
[ -x "$PG_CONFIG" ] || die "pg_config not found"
PG_BINDIR=$("$PG_CONFIG" --bindir)
for p in initdb pg_ctl psql pgbench pgbr pgbr-server; do
	[ -x "$PG_BINDIR/$p" ] || die "$PG_BINDIR/$p not found (make && make install)"
done
[ -f "$("$PG_CONFIG" --pkglibdir)/pgbr.so" ] || die "pgbr.so not found (make && make install)"
for p in openssl /usr/bin/time; do command -v "$p" >/dev/null || die "$p not found"; done
PGBR=$PG_BINDIR/pgbr
HZ=$(getconf CLK_TCK)
# a "make install" during the run would mix builds (and crash the clusters
# that have the old pgbr.so mapped): the report says so
installed() { stat -c '%n %Y %s' "$PGBR" "$PG_BINDIR/pgbr-server" "$("$PG_CONFIG" --pkglibdir)/pgbr.so"; }
INSTALLED=$(installed)

# ---------------------------------------------------------------- cleanup

stop_all() {
	local d f p
	for d in "$BENCH"/pg-* "$BENCH"/restore-*; do
		[ -f "$d/postmaster.pid" ] &&
			as_user "$PG_BINDIR/pg_ctl" -D "$d" -m immediate -w -t 30 stop >/dev/null 2>&1
	done
	for f in "$BENCH"/server-*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "--config=$BENCH/" && stop_pid "$p"
		rm -f "$f"
	done
	if [ -f "$CEPH/params.env" ]; then
		rm -rf "$BENCH/ceph-log"
		cp -r "$CEPH/log" "$BENCH/ceph-log" 2>/dev/null
		as_user "$RGW" destroy "$CEPH" >"$BENCH/ceph-destroy.log" 2>&1 || cat "$BENCH/ceph-destroy.log" >&2
	fi
	rm -rf "$BENCH"/restore-*
	return 0
}
cleanup() {
	local rc=$?
	set +e
	[ "$(installed)" = "$INSTALLED" ] || echo "bench-s3: WARNING: the installed pgbr changed during the run (make install?)" >&2
	stop_all
	exit $rc
}

say "scratch directory $BENCH"
[ -d "$BENCH" ] && { (set +e; stop_all); rm -rf "$BENCH"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$BENCH"
chown "$RUN_USER": "$BENCH"
as_user mkdir -p "$BENCH/run" "$BENCH/certs" "$BENCH/repo" "$BENCH/log-posix" "$BENCH/log-s3"
as_user chmod 0700 "$BENCH/certs" "$BENCH/repo"
info "load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs; $("$PGBR" version 2>/dev/null || echo 'pgbr ?')"

# ---------------------------------------------------------------- Ceph

say "Ceph RADOS Gateway ($RGW)"
"$RGW" install >"$BENCH/ceph-install.log" 2>&1 || { cat "$BENCH/ceph-install.log" >&2; die "ceph-rgw.sh install failed"; }
while port_busy "$CEPH_PORT" || port_busy $((CEPH_PORT + 1)) || port_busy $((CEPH_PORT + 2)); do
	CEPH_PORT=$((CEPH_PORT + 50))
done
as_user "$RGW" start "$CEPH" "$CEPH_PORT" >"$BENCH/ceph-start.log" 2>&1 ||
	{ tail -20 "$BENCH/ceph-start.log" >&2; die "Ceph did not start (logs: $CEPH/log)"; }
info "$(tail -1 "$BENCH/ceph-start.log")"
eval "$(as_user "$RGW" env "$CEPH")"
as_user "$RGW" mkbucket "$CEPH" "$BUCKET" >/dev/null || die "bucket $BUCKET not created"
info "S3 on $PGBR_S3_ENDPOINT, bucket $BUCKET"

# ---------------------------------------------------------------- certificates, configuration

say "certificates, configuration, pgbr-servers"
C=$BENCH/certs
make_certs "$C"

declare -A SRV_PORT=()
pick_port() {   # a free port p with p+1 closed too (the paused clients' port), not near one picked before
	local p q
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		for q in "${SRV_PORT[@]}"; do [ $((p - q)) -le 1 ] && [ $((q - p)) -le 1 ] && continue 2; done
		port_busy "$p" || port_busy $((p + 1)) || { printf '%s' "$p"; return 0; }
	done
	die "no free TCP port found"
}
for k in "${KINDS[@]}"; do
	p=$(pick_port)
	SRV_PORT[$k]=$p
	{
		printf '[global]\n'
		if [ "$k" = posix ]; then
			printf 'repo1-path=%s\n' "$BENCH/repo"
		else   # the key and secret come from the environment (start_server)
			printf 'repo1-type=s3\nrepo1-path=/pgbr\nrepo1-s3-endpoint=http://%s\nrepo1-s3-bucket=%s\n' "$PGBR_S3_ENDPOINT" "$BUCKET"
			printf 'repo1-s3-region=%s\nrepo1-s3-uri-style=path\n' "$PGBR_S3_REGION"
		fi
		cat <<EOF
repo1-bundle=y
log-level-console=info
log-level-file=info
log-path=$BENCH/log-$k
tls-server-address=127.0.0.1
tls-server-port=$p
tls-server-cert-file=$C/backup-srv.crt
tls-server-key-file=$C/backup-srv.key
tls-server-ca-file=$C/ca.crt
tls-server-auth=pg1-srv=*
EOF
	} | writef "$BENCH/server-$k.conf"
	for mode in good paused; do
		[ "$mode" = good ] && port=$p || port=$((p + 1))   # paused: a closed port
		writef "$BENCH/client-$k.conf.$mode" <<EOF
[global]
repo1-host=localhost
repo1-host-port=$port
repo1-host-cert-file=$C/pg1-srv.crt
repo1-host-key-file=$C/pg1-srv.key
repo1-host-ca-file=$C/ca.crt
compress-type=zst
compress-level=$LEVEL
process-max=$PROCESS_MAX
archive-push-queue=8
start-fast=y
log-level-console=info
log-path=$BENCH/log-$k

[$STANZA]
pg1-path=$BENCH/pg-$k
pg1-socket-path=$BENCH/run
pg1-port=${PGPORT[$k]}
EOF
	done
	as_user cp -p "$BENCH/client-$k.conf.paused" "$BENCH/client-$k.conf"

	# shellcheck disable=SC2016  # $1.. are the inner sh's
	SRV_PID[$k]=$(PGBR_REPO1_S3_KEY=$PGBR_S3_KEY PGBR_REPO1_S3_KEY_SECRET=$PGBR_S3_SECRET \
		as_user sh -c 'cd "$1" && exec "$2" --config="$3" >>"$4" 2>&1 </dev/null & echo $!' \
		sh "$BENCH" "$PG_BINDIR/pgbr-server" "$BENCH/server-$k.conf" "$BENCH/server-$k.out")
	echo "${SRV_PID[$k]}" >"$BENCH/server-$k.pid"
	for _ in $(seq 1 100); do
		pid_alive "${SRV_PID[$k]}" || { cat "$BENCH/server-$k.out" >&2; die "pgbr-server ($k) exited at start"; }
		grep -q listening "$BENCH/server-$k.out" && break
		sleep 0.1
	done
	info "pgbr-server $k: pid ${SRV_PID[$k]}, port $p"
done

# ---------------------------------------------------------------- clusters, burst

psql_k() { local k=$1; shift; as_user "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BENCH/run" -p "${PGPORT[$k]}" -d postgres "$@"; }

say "clusters; WAL burst in each (pgbench -i -s $SCALE, $ROWS md5 rows), archiving paused"
for k in "${KINDS[@]}"; do
	d=$BENCH/pg-$k
	as_user "$PG_BINDIR/initdb" -D "$d" -U postgres -A trust -N >"$BENCH/initdb-$k.log" 2>&1 ||
		{ cat "$BENCH/initdb-$k.log" >&2; die "initdb $k failed"; }
	as_user tee -a "$d/postgresql.conf" >/dev/null <<EOF

# ---- pgbr bench-s3 ----
listen_addresses = ''
port = ${PGPORT[$k]}
unix_socket_directories = '$BENCH/run'
shared_buffers = 256MB
wal_level = replica
archive_mode = on
max_wal_size = 4GB
min_wal_size = 1GB
wal_keep_size = 4GB
checkpoint_timeout = 1h
autovacuum = off
max_worker_processes = 16
log_line_prefix = '%m [%p] %b '
log_min_messages = warning
lc_messages = 'C'
shared_preload_libraries = 'pgbr'
archive_library = 'pgbr'
pgbr.config = '$BENCH/client-$k.conf'
pgbr.stanza = '$STANZA'
EOF
	as_user "$PG_BINDIR/pg_ctl" -D "$d" -l "$BENCH/pg-$k.log" -w -t 60 start >/dev/null ||
		{ tail -20 "$BENCH/pg-$k.log" >&2; die "cluster $k did not start"; }
	as_user timeout 120 "$PGBR" --config="$BENCH/client-$k.conf.good" --stanza="$STANZA" stanza-create \
		>"$BENCH/stanza-$k.log" 2>&1 || { cat "$BENCH/stanza-$k.log" >&2; die "pgbr stanza-create ($k) failed"; }
	psql_k "$k" -c "CREATE EXTENSION pgbr"
	t0=$EPOCHREALTIME
	lsn0=$(psql_k "$k" -c "SELECT pg_current_wal_lsn()")
	as_user "$PG_BINDIR/pgbench" -h "$BENCH/run" -p "${PGPORT[$k]}" -i -s "$SCALE" -q postgres \
		>"$BENCH/pgbench-$k.log" 2>&1 || { tail "$BENCH/pgbench-$k.log" >&2; die "pgbench -i failed ($k)"; }
	psql_k "$k" -c "CREATE TABLE burst (id bigint, a text, b text, c int)" \
		-c "INSERT INTO burst SELECT g, md5(g::text), md5((g * 7919)::text) || md5((g * 104729)::text), (g % 1000)::int
			FROM generate_series(1::bigint, $ROWS) g"
	lsn1=$(psql_k "$k" -c "SELECT pg_current_wal_lsn()")
	psql_k "$k" -c "SELECT pg_switch_wal()" >/dev/null
	bytes=$(psql_k "$k" -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint")
	[ "$bytes" -ge "$MIN_BYTES" ] || die "the burst of $k is only $bytes bytes of WAL: raise PGBR_BENCH_ROWS"
	R[burst/$k]=$((bytes / 1048576))
	info "$k: $((bytes / 1048576)) MiB of WAL in $(calc "$EPOCHREALTIME - $t0") s"
done
sleep 5   # let the failing archivers settle

# ---------------------------------------------------------------- CPU accounting

# CPU ticks of the processes, of the children they reaped, and of all their
# living descendants (each process counted once: by itself while it lives,
# in its parent's cutime once reaped)
tree_ticks() {
	local p t=0 f
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		[ "${#f[@]}" -gt 14 ] || continue
		# shellcheck disable=SC2046  # a list of pids
		t=$((t + f[11] + f[12] + f[13] + f[14] + $(tree_ticks $(pgrep -P "$p" || true))))
	done
	printf '%s' "$t"
}
ceph_pids() { cat "$CEPH"/run/*.pid 2>/dev/null || true; }
busy_ticks() { local _ u n s irq sirq st; read -r _ u n s _ _ irq sirq st _ </proc/stat; printf '%s' $((u + n + s + irq + sirq + st)); }
postmaster() { head -1 "$BENCH/pg-$1/postmaster.pid"; }

# cpu_begin / cpu_end KEY K: cluster, server, Ceph, machine CPU-seconds into R[KEY/cpu-*/K]
cpu_begin() {
	# shellcheck disable=SC2046  # pid lists
	C0=("$(tree_ticks "$(postmaster "$1")")" "$(tree_ticks "${SRV_PID[$1]}")" "$(tree_ticks $(ceph_pids))" "$(busy_ticks)")
}
cpu_end() {
	local key=$1 k=$2 c1
	# shellcheck disable=SC2046
	c1=("$(tree_ticks "$(postmaster "$k")")" "$(tree_ticks "${SRV_PID[$k]}")" "$(tree_ticks $(ceph_pids))" "$(busy_ticks)")
	R[$key/cpu-pg/$k]=$(calc "(${c1[0]} - ${C0[0]}) / $HZ")
	R[$key/cpu-srv/$k]=$(calc "(${c1[1]} - ${C0[1]}) / $HZ")
	R[$key/cpu-ceph/$k]=$(calc "(${c1[2]} - ${C0[2]}) / $HZ")
	R[$key/cpu-all/$k]=$(calc "(${c1[3]} - ${C0[3]}) / $HZ")
}

# ---------------------------------------------------------------- 1. WAL archiving

for k in "${KINDS[@]}"; do
	d=$BENCH/pg-$k
	segs=$(ready_count "$d")
	say "WAL archiving, $k: $segs segments ready"
	[ "$segs" -ge 64 ] || die "$k: only $segs segments ready"
	mid=$(find "$d/pg_wal/archive_status" -name '*.ready' | sort | sed -n "$((segs / 2))p")
	mid=${mid##*/}
	mid=${mid%.ready}
	failed0=$(psql_k "$k" -c "SELECT failed_count FROM pg_stat_archiver")
	first=
	cpu_begin "$k"
	t0=$EPOCHREALTIME
	t0us=$(now_us)
	as_user cp "$BENCH/client-$k.conf.good" "$BENCH/client-$k.conf.new"
	as_user mv -f "$BENCH/client-$k.conf.new" "$BENCH/client-$k.conf"
	psql_k "$k" -c "SELECT pg_reload_conf()" >/dev/null
	while :; do
		ready_count_to left "$d"
		[ -z "$first" ] && [ "$left" -lt "$segs" ] && first=$(calc "$EPOCHREALTIME - $t0")
		[ "$left" -eq 0 ] && break
		if [ $((${EPOCHREALTIME/./} - t0us)) -ge $((CAP * 1000000)) ]; then
			R[wal-note/$k]="capped at $CAP s: $((segs - left))/$segs archived"
			break
		fi
		nap 0.05
	done
	R[wal-s/$k]=$(calc "$EPOCHREALTIME - $t0")
	cpu_end wal "$k"
	R[wal-segs/$k]=$((segs - left))
	R[wal-rate/$k]=$(calc "${R[wal-segs/$k]} / ${R[wal-s/$k]}")
	R[wal-first/$k]=${first:--}
	R[wal-failed/$k]=$(($(psql_k "$k" -c "SELECT failed_count FROM pg_stat_archiver") - failed0))
	R[wal/cpu-seg/$k]=$(calc "(${R[wal/cpu-pg/$k]} + ${R[wal/cpu-srv/$k]} + ${R[wal/cpu-ceph/$k]}) / ${R[wal-segs/$k]}")
	info "${R[wal-segs/$k]} segments in ${R[wal-s/$k]} s: ${R[wal-rate/$k]} segments/s ${R[wal-note/$k]:-}"
	# one segment from the middle of the burst back from the repository
	seg=$mid
	rm -f "$BENCH/get-$k"
	if as_user "$PGBR" --config="$BENCH/client-$k.conf" --stanza="$STANZA" \
		archive-get "$seg" "$BENCH/get-$k" >"$BENCH/get-$k.log" 2>&1 && cmp -s "$BENCH/get-$k" "$d/pg_wal/$seg"; then
		R[wal-check/$k]="$seg read back with archive-get: identical"
	else
		R[wal-check/$k]="$seg read back with archive-get: FAILED ($(tail -1 "$BENCH/get-$k.log" 2>/dev/null))"
	fi
	rm -f "$BENCH/get-$k"
done

# ---------------------------------------------------------------- 2. full backup, 3. restore

for k in "${KINDS[@]}"; do
	psql_k "$k" -c "DROP TABLE burst" -c "CHECKPOINT"
	R[dbsize/$k]=$(($(psql_k "$k" -c "SELECT sum(pg_database_size(oid)) FROM pg_database") / 1048576))
	find "$BENCH/pg-$k" -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true   # warm page cache
done

for k in "${KINDS[@]}"; do
	say "full backup, $k (${R[dbsize/$k]} MiB in databases)"
	psql_k "$k" -c "CHECKPOINT"
	sync
	cpu_begin "$k"
	t0=$EPOCHREALTIME
	psql_k "$k" -c "SELECT pgbr_backup('full')" >"$BENCH/backup-$k.log" 2>&1 ||
		{ cat "$BENCH/backup-$k.log" >&2; die "pgbr_backup('full') failed ($k)"; }
	R[backup-s/$k]=$(calc "$EPOCHREALTIME - $t0")
	cpu_end backup "$k"
	R[backup-label/$k]=$(tail -1 "$BENCH/backup-$k.log")
	R[backup-repo/$k]=$(grep -F "backup ${R[backup-label/$k]} " "$BENCH/log-$k/pgbr-server.log" |
		grep -o -E 'repository size [0-9.]+[A-Za-z]+' | tail -1 | cut -d' ' -f3)
	info "${R[backup-label/$k]} in ${R[backup-s/$k]} s, ${R[backup-repo/$k]:-?} in the repository"
done

for k in "${KINDS[@]}"; do
	say "restore, $k"
	dir=$BENCH/restore-$k
	as_user mkdir -m 0700 "$dir"
	sync
	cpu_begin "$k"
	t0=$EPOCHREALTIME
	as_user /usr/bin/time -f '%U %S' -o "$BENCH/restore-$k.time" "$PGBR" --config="$BENCH/client-$k.conf" \
		--stanza="$STANZA" --pg1-path="$dir" --process-max=$PROCESS_MAX restore >"$BENCH/restore-$k.log" 2>&1 ||
		{ tail -20 "$BENCH/restore-$k.log" >&2; die "pgbr restore failed ($k)"; }
	R[restore-s/$k]=$(calc "$EPOCHREALTIME - $t0")
	cpu_end restore "$k"
	R[restore/cpu-tool/$k]=$(awk '{ printf "%.2f", $1 + $2 }' "$BENCH/restore-$k.time")
	R[restore-mib/$k]=$(($(du -sb "$dir" | cut -f1) / 1048576))
	R[restore-files/$k]=$(find "$dir" -type f | wc -l)
	info "${R[restore-mib/$k]} MiB, ${R[restore-files/$k]} files in ${R[restore-s/$k]} s"
	rm -rf "$dir"
done

for k in "${KINDS[@]}"; do
	as_user "$PG_BINDIR/pg_ctl" -D "$BENCH/pg-$k" -m fast -w -t 60 stop >/dev/null || true
done

# ---------------------------------------------------------------- report

row() {   # label key [ratio: y]
	local a=${R[$2/posix]:-} b=${R[$2/s3]:-} r=-
	[ -n "$a" ] && [ -n "$b" ] && r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "-" }')
	[ "${3:-y}" = y ] || r=
	printf '  %-38s %10s %10s %9s\n' "$1" "${a:--}" "${b:--}" "$r"
}
cpu_rows() {   # key
	local k
	if [ "$1" = restore ]; then
		row "CPU s: pgbr restore (tool)" "$1/cpu-tool"
	else
		row "CPU s: cluster (postmaster + children)" "$1/cpu-pg"
	fi
	row "CPU s: pgbr-server" "$1/cpu-srv"
	row "CPU s: Ceph mon + osd + radosgw" "$1/cpu-ceph"
	row "CPU s: whole machine" "$1/cpu-all"
	for k in "${KINDS[@]}"; do
		R[$1/cpu-other/$k]=$(calc "${R[$1/cpu-all/$k]} - ${R[$1/cpu-${2:-pg}/$k]} - ${R[$1/cpu-srv/$k]} - ${R[$1/cpu-ceph/$k]}")
	done
	row "CPU s: anything else (other load)" "$1/cpu-other" n
}
{
	echo
	echo "pgbr: repository in a directory (posix) vs in a Ceph RGW bucket (s3) - $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$("$PGBR" version 2>/dev/null); Ceph $(ceph-osd --version 2>/dev/null | awk '{ print $3 }'), S3 over plain http on 127.0.0.1 (path style); pgbr over mutual TLS"
	echo "process-max=$PROCESS_MAX, zstd level $LEVEL, repo1-bundle=y; posix measured first in every step"
	echo
	printf '  %-38s %10s %10s %9s\n' "" posix s3 s3/posix
	echo "1. WAL archiving: burst of ${R[burst/posix]}/${R[burst/s3]} MiB (pgbench -i -s $SCALE + $ROWS md5 rows), from pg_reload_conf() to no .ready left"
	row "segments" wal-segs n
	row "seconds" wal-s
	row "segments/s" wal-rate
	row "seconds until the first was archived" wal-first n
	cpu_rows wal
	row "CPU s per segment (cluster+server+Ceph)" wal/cpu-seg
	row "failed attempts (pg_stat_archiver)" wal-failed n
	echo "2. full backup of pgbench -i -s $SCALE (${R[dbsize/posix]}/${R[dbsize/s3]} MiB in databases), SELECT pgbr_backup('full')"
	row "seconds" backup-s
	row "in the repository (pgbr-server's log)" backup-repo n
	cpu_rows backup
	echo "3. restore of that backup into an empty directory (pgbr restore)"
	row "seconds" restore-s
	row "MiB restored" restore-mib n
	row "files restored" restore-files n
	cpu_rows restore tool
	echo
	for k in "${KINDS[@]}"; do
		echo "$k: WAL ${R[wal-check/$k]}${R[wal-note/$k]:+; ${R[wal-note/$k]}}; backup ${R[backup-label/$k]}"
	done
	[ "$(installed)" = "$INSTALLED" ] || echo "WARNING: the installed pgbr changed during the run (make install?): posix and s3 may have run different builds"
	echo "(s3/posix: the s3 figure divided by the posix one - for seconds and CPU above 1 is slower/costlier,"
	echo " for segments/s below 1 is slower; CPU s: cluster counts the archiver or the backup worker and its helper,"
	echo " whole machine includes every other load; anything else = whole machine - the rows above it)"
	# the paused archivers' failures to connect are expected
	paused='Connection refused|failed too many times|uses plain http'
	for f in "$BENCH"/server-*.out "$BENCH"/pg-*.log; do
		n=$(grep -E 'WARN|ERROR|FATAL|PANIC' "$f" | grep -c -v -E "$paused" || true)
		[ "$n" -gt 0 ] || continue
		echo
		echo "$f: $n WARN/ERROR/FATAL/PANIC lines (besides the paused archiver's), last 5:"
		grep -E 'WARN|ERROR|FATAL|PANIC' "$f" | grep -v -E "$paused" | tail -5 | sed 's/^/    | /'
	done
} | tee "$BENCH/results.txt"
echo
echo "results: $BENCH/results.txt; logs: $BENCH/log-*/, $BENCH/*.log, $BENCH/server-*.out, $BENCH/ceph-log/"
