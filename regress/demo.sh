#!/bin/bash
#
# regress/demo.sh - pgbr end to end on one machine, the way the seed guide
# sets up pgBackRest's TLS server with hosts backup-srv, pg1-srv and pg2-srv
# (here: three directories under /tmp/pgbr-demo, everything on 127.0.0.1).
#
#   sudo ./regress/demo.sh
#
# Installs missing packages, builds and installs pgbr, then as user postgres:
# makes a CA and certificates for backup-srv, pg1-srv and pg2-srv, writes the
# repository host's configuration, starts pgbr-server on 127.0.0.1:8433 (the
# next free port if 8433 is busy) and pings it from pg1-srv.  The server
# keeps running when the script ends; the last lines say how to stop it.
# Running the demo again first stops the server a previous run started.
#
# Environment: PGBR_DEMO_DIR (default /tmp/pgbr-demo), PGBR_DEMO_PORT
# (default 8433), PGBR_SKIP_BUILD=1 (use what is installed), PGBR_BINDIR
# (where pgbr and pgbr-server are, default pg_config --bindir).
#
# Each step is a function step_*; main() lists them in order.

set -euo pipefail

REGRESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$REGRESS_DIR/.." && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$REGRESS_DIR/lib.sh"

DEMO=${PGBR_DEMO_DIR:-/tmp/pgbr-demo}
STANZA=demo
PORT=${PGBR_DEMO_PORT:-8433}
CERTS=$DEMO/certs                 # where the CA signs (the seed's /vagrant/certs)
REPO_HOST=$DEMO/backup-srv        # "backup-srv": config, certs, repository, log
SERVER_CONF=$REPO_HOST/pgbr.conf
SERVER_LOG=$REPO_HOST/pgbr-server.log
SERVER_PIDFILE=$REPO_HOST/pgbr-server.pid
SERVER_PID=
BIN=                              # set by step_packages

STEP=0
step() {
	STEP=$((STEP + 1))
	pgbr_header "step $STEP: $*"
}

# Show a command, then run it as the demo user (postgres when we are root).
run() {
	printf '    $ %s\n' "$*"
	pgbr_as_user "$@"
}

# Same, but its output is shown only if it fails (openssl's progress dots).
run_quiet() {
	printf '    $ %s\n' "$*"
	local out
	if ! out=$(pgbr_as_user "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		return 1
	fi
}

# Write a file as the demo user: write_as_user PATH MODE < content
write_as_user() {
	# shellcheck disable=SC2016  # expanded by the inner sh
	pgbr_as_user sh -c 'umask 077; cat > "$1" && chmod "$2" "$1"' sh "$1" "$2"
}

on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		printf '\nDEMO FAILED in step %s (exit %s)\n' "$STEP" "$rc" >&2
		if [ -n "$SERVER_PID" ] && pgbr_pid_running "$SERVER_PID"; then
			printf 'pgbr-server is still running; stop it with: kill %s\n' "$SERVER_PID" >&2
		fi
	fi
}
trap on_exit EXIT

###########################################################################
# Steps

step_packages() {
	step "packages"
	pgbr_ensure_packages
	pgbr_pg_paths
	BIN=${PGBR_BINDIR:-$PG_BINDIR}
	export PATH="$BIN:$PG_BINDIR:$PATH"
	pgbr_check_user
}

step_build() {
	step "build and install pgbr"
	if [ -n "${PGBR_SKIP_BUILD:-}" ]; then
		pgbr_info "skipped (PGBR_SKIP_BUILD)"
	else
		pgbr_build_install "$REPO"
	fi
	local p
	for p in pgbr pgbr-server; do
		[ -x "$BIN/$p" ] || pgbr_die "$BIN/$p is not installed"
	done
	pgbr_info "$("$BIN/pgbr" version 2>/dev/null || echo "pgbr (version unknown)") in $BIN"
}

# A server left by a previous run is ours if its command line names our
# config file; stop it, then start from an empty demo directory.
step_reset() {
	step "fresh demo directory $DEMO"
	case "$DEMO" in
	/tmp/?* | /var/tmp/?* | */pgbr-demo*) ;;
	*) pgbr_die "PGBR_DEMO_DIR=$DEMO: refusing to empty it (use a path under /tmp or ending in pgbr-demo)" ;;
	esac
	if [ -f "$SERVER_PIDFILE" ]; then
		local old
		old=$(cat "$SERVER_PIDFILE")
		if [ -n "$old" ] && [ -r "/proc/$old/cmdline" ] &&
			tr '\0' ' ' <"/proc/$old/cmdline" | grep -q "pgbr-server.*$SERVER_CONF"; then
			pgbr_info "stopping pgbr-server pid $old left by a previous demo run"
			kill "$old" || true
			local _
			for _ in $(seq 1 100); do
				pgbr_pid_running "$old" || break
				sleep 0.1
			done
			pgbr_pid_running "$old" && pgbr_die "pgbr-server pid $old did not stop"
		fi
	fi
	# clusters a previous run left running
	local d
	for d in "$DEMO/pg2-srv/data" "$DEMO/pg1-srv/data"; do
		if [ -f "$d/postmaster.pid" ]; then
			pgbr_info "stopping the cluster in $d left by a previous demo run"
			pgbr_as_user "$PG_BINDIR/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$DEMO"
	pgbr_scratch_dir "$DEMO"
	run mkdir -p "$CERTS" "$REPO_HOST/repo" "$REPO_HOST/log" \
		"$DEMO/pg1-srv/log" "$DEMO/pg2-srv/log"
	run chmod 700 "$CERTS" "$REPO_HOST/repo"
}

# As in the seed guide (openssl req / x509 -req), plus subjectAltName: the
# pgbr tool checks the server's name against repo1-host, and here that is
# localhost / 127.0.0.1 (there is no DNS entry for backup-srv).
step_certs() {
	step "certificates: CA, backup-srv, pg1-srv, pg2-srv"
	run_quiet openssl req -new -x509 -days 365 -nodes -newkey rsa:2048 \
		-out "$CERTS/ca.crt" -keyout "$CERTS/ca.key" -subj "/CN=root-ca"
	local host san
	for host in backup-srv pg1-srv pg2-srv; do
		if [ "$host" = backup-srv ]; then
			san="DNS:backup-srv,DNS:localhost,IP:127.0.0.1"
		else
			san="DNS:$host"
		fi
		printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" |
			write_as_user "$CERTS/$host.ext" 0644
		run_quiet openssl req -new -nodes -newkey rsa:2048 \
			-out "$CERTS/$host.csr" -keyout "$CERTS/$host.key" -subj "/CN=$host"
		run_quiet openssl x509 -req -in "$CERTS/$host.csr" -days 365 \
			-CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -CAcreateserial \
			-extfile "$CERTS/$host.ext" -out "$CERTS/$host.crt"
		run rm -f "$CERTS/$host.csr" "$CERTS/$host.ext"
	done

	# deploy: each host gets ca.crt and its own certificate and key
	for host in backup-srv pg1-srv pg2-srv; do
		run mkdir -p "$DEMO/$host/certs"
		run cp "$CERTS/ca.crt" "$CERTS/$host.crt" "$CERTS/$host.key" "$DEMO/$host/certs/"
		run chmod -R og-rwx "$DEMO/$host/certs"
	done
}

step_repo_host_config() {
	step "repository host configuration ($SERVER_CONF)"
	if pgbr_port_busy "$PORT"; then
		local p
		for p in $(seq $((PORT + 1)) $((PORT + 100))); do
			if ! pgbr_port_busy "$p"; then
				pgbr_info "port $PORT is busy, using $p"
				PORT=$p
				break
			fi
		done
		pgbr_port_busy "$PORT" && pgbr_die "no free port near $PORT"
	fi
	write_as_user "$SERVER_CONF" 0640 <<EOF
[global]
# repository
repo1-path=$REPO_HOST/repo
repo1-retention-full=2

# logging
log-level-console=info
log-level-file=detail
log-path=$REPO_HOST/log

# tls server
tls-server-address=127.0.0.1
tls-server-port=$PORT
tls-server-cert-file=$REPO_HOST/certs/backup-srv.crt
tls-server-key-file=$REPO_HOST/certs/backup-srv.key
tls-server-ca-file=$REPO_HOST/certs/ca.crt
tls-server-auth=pg1-srv=$STANZA
tls-server-auth=pg2-srv=$STANZA
EOF
	sed 's/^/    | /' "$SERVER_CONF"
}

step_pg_hosts_config() {
	step "PostgreSQL hosts configuration (pg1-srv, pg2-srv)"
	local host
	for host in pg1-srv pg2-srv; do
		write_as_user "$DEMO/$host/pgbr.conf" 0640 <<EOF
[global]
repo1-host=localhost
repo1-host-port=$PORT
repo1-host-cert-file=$DEMO/$host/certs/$host.crt
repo1-host-key-file=$DEMO/$host/certs/$host.key
repo1-host-ca-file=$DEMO/$host/certs/ca.crt
log-level-console=info
log-path=$DEMO/$host/log
EOF
		pgbr_info "$DEMO/$host/pgbr.conf:"
		sed 's/^/    | /' "$DEMO/$host/pgbr.conf"
	done
}

step_server_start() {
	step "start pgbr-server (foreground program, here in the background)"
	printf '    $ pgbr-server --config=%s >%s 2>&1 &\n' "$SERVER_CONF" "$SERVER_LOG"
	# nohup: the server survives the end of this script and of the terminal
	# shellcheck disable=SC2016  # expanded by the inner sh
	SERVER_PID=$(pgbr_as_user sh -c 'cd "$1" && nohup "$2" --config="$3" >>"$4" 2>&1 </dev/null & echo $!' \
		sh "$REPO_HOST" "$BIN/pgbr-server" "$SERVER_CONF" "$SERVER_LOG")
	printf '%s\n' "$SERVER_PID" | write_as_user "$SERVER_PIDFILE" 0644
	# Ready when it logs that it listens (a probe connection would make it
	# log a refused client); after 5 s a TCP probe decides.
	local i
	for i in $(seq 1 100); do
		if ! pgbr_pid_running "$SERVER_PID"; then
			sed 's/^/    | /' "$SERVER_LOG" >&2 || true
			SERVER_PID=
			pgbr_die "pgbr-server exited at start (log above: $SERVER_LOG)"
		fi
		if grep -q 'listening' "$SERVER_LOG" 2>/dev/null ||
			{ [ "$i" -gt 50 ] && pgbr_port_busy "$PORT"; }; then
			pgbr_info "pgbr-server pid $SERVER_PID listens on 127.0.0.1:$PORT"
			sed 's/^/    | /' "$SERVER_LOG"
			return 0
		fi
		sleep 0.1
	done
	sed 's/^/    | /' "$SERVER_LOG" >&2 || true
	pgbr_die "pgbr-server pid $SERVER_PID does not accept connections on port $PORT after 10s"
}

step_ping() {
	step "server-ping from pg1-srv"
	run "$BIN/pgbr" --config="$DEMO/pg1-srv/pgbr.conf" server-ping
}

PG1_PORT=${PGBR_DEMO_PG1_PORT:-5441}
PG2_PORT=${PGBR_DEMO_PG2_PORT:-5442}
PG1_DATA=$DEMO/pg1-srv/data
PG2_DATA=$DEMO/pg2-srv/data
SOCK1=$DEMO/pg1-srv
SOCK2=$DEMO/pg2-srv

psql1() { run "$PG_BINDIR/psql" -X -h "$SOCK1" -p "$PG1_PORT" -d postgres "$@"; }
psql2() { run "$PG_BINDIR/psql" -X -h "$SOCK2" -p "$PG2_PORT" -d postgres "$@"; }

# append stdin to a file as the demo user
append_as_user() {
	# shellcheck disable=SC2016  # expanded by the inner sh
	pgbr_as_user sh -c 'cat >> "$1"' sh "$1"
}

# The seed's pg1-srv: a primary archiving through pgbr, backups from SQL.
step_primary() {
	step "primary pg1-srv: initdb, archive_library = 'pgbr', start"
	local p
	for p in "$PG1_PORT" "$PG2_PORT"; do
		if pgbr_port_busy "$p"; then
			pgbr_die "port $p is busy (set PGBR_DEMO_PG1_PORT / PGBR_DEMO_PG2_PORT)"
		fi
	done
	run_quiet "$PG_BINDIR/initdb" -D "$PG1_DATA" -A peer --data-checksums
	append_as_user "$PG1_DATA/postgresql.conf" <<EOF

# pgbr demo: the seed's pg1-srv
port = $PG1_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK1'
wal_level = replica
archive_mode = on
archive_library = 'pgbr'
shared_preload_libraries = 'pgbr'
pgbr.config = '$DEMO/pg1-srv/pgbr.conf'
pgbr.stanza = '$STANZA'
EOF
	sed -n '/pgbr demo/,$p' "$PG1_DATA/postgresql.conf" | sed 's/^/    | /'
	append_as_user "$DEMO/pg1-srv/pgbr.conf" <<EOF

[$STANZA]
pg1-path=$PG1_DATA
pg1-port=$PG1_PORT
pg1-socket-path=$SOCK1
start-fast=y
EOF
	run "$PG_BINDIR/pg_ctl" -D "$PG1_DATA" -l "$DEMO/pg1-srv/postgresql.log" -w start
}

step_stanza() {
	step "stanza-create and check"
	psql1 -c "CREATE EXTENSION pgbr" -c "SELECT pgbr_stanza_create()"
	run "$BIN/pgbr" --config="$DEMO/pg1-srv/pgbr.conf" --stanza="$STANZA" stanza-create
	run "$BIN/pgbr" --config="$DEMO/pg1-srv/pgbr.conf" --stanza="$STANZA" check
}

step_data() {
	step "some data on the primary"
	psql1 -c "CREATE TABLE select_table (select_column text, n int)" \
		-c "INSERT INTO select_table SELECT 'row ' || g, g FROM generate_series(1, 100) g"
}

step_backup() {
	step "full backup from SQL (a background worker does the work)"
	local off
	off=$(stat -c %s "$DEMO/pg1-srv/postgresql.log")
	psql1 -c "SELECT pgbr_backup('full')"
	pgbr_info "the backup's lines in the PostgreSQL log:"
	tail -c +"$((off + 1))" "$DEMO/pg1-srv/postgresql.log" | grep -E 'backup|archive' | sed 's/^/    | /' || true
}

step_info() {
	step "info, from pg1-srv and from pg2-srv"
	run "$BIN/pgbr" --config="$DEMO/pg1-srv/pgbr.conf" --stanza="$STANZA" info
	run "$BIN/pgbr" --config="$DEMO/pg2-srv/pgbr.conf" --stanza="$STANZA" info
	psql1 -c "SELECT label, type, wal_start, wal_stop, database_size, repository_size FROM pgbr_info()"
}

step_replication_role() {
	step "replication user on the primary (the seed's replic_user)"
	psql1 -c "CREATE ROLE replic_user WITH LOGIN REPLICATION PASSWORD 'mypwd'"
	# first line: pg_hba.conf is read top down and initdb's lines would match first
	run sed -i '1i host replication replic_user 127.0.0.1/32 scram-sha-256' "$PG1_DATA/pg_hba.conf"
	psql1 -c "SELECT pg_reload_conf()"
	printf '127.0.0.1:%s:replication:replic_user:mypwd\n' "$PG1_PORT" | write_as_user "$DEMO/pg2-srv/pgpass" 0600
}

step_standby_restore() {
	step "standby pg2-srv restored from the backup (--type=standby)"
	append_as_user "$DEMO/pg2-srv/pgbr.conf" <<EOF

[$STANZA]
pg1-path=$PG2_DATA
pg1-port=$PG2_PORT
pg1-socket-path=$SOCK2
recovery-option=primary_conninfo=host=127.0.0.1 port=$PG1_PORT user=replic_user passfile=$DEMO/pg2-srv/pgpass
EOF
	run mkdir -p "$PG2_DATA"
	run chmod 700 "$PG2_DATA"
	run "$BIN/pgbr" --config="$DEMO/pg2-srv/pgbr.conf" --stanza="$STANZA" --type=standby restore
	pgbr_info "recovery settings written by the restore:"
	sed -n '/Recovery settings generated by pgbr/,/End of recovery settings/p' "$PG2_DATA/postgresql.auto.conf" | sed 's/^/    | /'
	# One machine plays two hosts: the standby needs its own port, socket
	# and pgbr configuration (on a real pg2-srv these lines are not needed).
	append_as_user "$PG2_DATA/postgresql.conf" <<EOF

# pgbr demo: this copy plays pg2-srv on the same machine
port = $PG2_PORT
unix_socket_directories = '$SOCK2'
pgbr.config = '$DEMO/pg2-srv/pgbr.conf'
EOF
	run "$PG_BINDIR/pg_ctl" -D "$PG2_DATA" -l "$DEMO/pg2-srv/postgresql.log" -w start
}

step_streaming() {
	step "the standby streams from the primary"
	local i state=""
	for i in $(seq 1 60); do
		state=$(pgbr_as_user "$PG_BINDIR/psql" -X -At -h "$SOCK1" -p "$PG1_PORT" -d postgres \
			-c "SELECT state FROM pg_stat_replication WHERE usename = 'replic_user'" 2>/dev/null || true)
		[ "$state" = streaming ] && break
		sleep 1
	done
	[ "$state" = streaming ] || pgbr_die "the standby does not stream (state '$state'); see $DEMO/pg2-srv/postgresql.log"
	psql1 -c "SELECT usename, client_addr, state, sent_lsn, replay_lsn FROM pg_stat_replication"
	pgbr_info "walsender process on pg1-srv:"
	pgrep -a -f 'postgres: walsender' | sed 's/^/    | /' || true
}

step_replicated_row() {
	step "a row written on the primary is read on the standby"
	psql1 -c "INSERT INTO select_table VALUES ('some data', 101)"
	local i n=0
	for i in $(seq 1 30); do
		n=$(pgbr_as_user "$PG_BINDIR/psql" -X -At -h "$SOCK2" -p "$PG2_PORT" -d postgres \
			-c "SELECT count(*) FROM select_table WHERE select_column = 'some data'" 2>/dev/null || echo 0)
		[ "$n" = 1 ] && break
		sleep 0.5
	done
	[ "$n" = 1 ] || pgbr_die "the row did not reach the standby"
	psql2 -c "SELECT * FROM select_table WHERE select_column = 'some data'"
}

# The seed's last section: backups whose data files are read on the standby.
# pgBackRest configures this on the repository host; here the backup runs in
# pg1-srv's background worker, so pg1-srv's pgbr.conf says where the standby
# is (pg2-*).  pg2-srv runs pgbr too (same extension, preloaded) with its own
# certificate, which tls-server-auth already grants the stanza.
step_standby_backup() {
	step "backups from the standby: backup-standby=y on pg1-srv"
	append_as_user "$DEMO/pg1-srv/pgbr.conf" <<EOF
backup-standby=y
pg2-socket-path=$SOCK2
pg2-port=$PG2_PORT
EOF
	pgbr_info "$DEMO/pg1-srv/pgbr.conf:"
	sed 's/^/    | /' "$DEMO/pg1-srv/pgbr.conf"
	pgbr_info "pg2-srv is authorised for the stanza on the repository host:"
	grep '^tls-server-auth=pg2-srv' "$SERVER_CONF" | sed 's/^/    | /'
	local off1 off2
	off1=$(stat -c %s "$DEMO/pg1-srv/postgresql.log")
	off2=$(stat -c %s "$DEMO/pg2-srv/postgresql.log")
	psql1 -c "SELECT pgbr_backup('full')"
	pgbr_info "the backup's lines in pg1-srv's PostgreSQL log:"
	tail -c +"$((off1 + 1))" "$DEMO/pg1-srv/postgresql.log" |
		grep -E 'backup|archive|replay|standby|primary' | sed 's/^/    | /' || true
	pgbr_info "and in pg2-srv's, where the data files were read:"
	tail -c +"$((off2 + 1))" "$DEMO/pg2-srv/postgresql.log" |
		grep -E 'backup [0-9]' | sed 's/^/    | /' || true
	psql1 -c "SELECT label, type, backup_from, wal_start, wal_stop, database_size FROM pgbr_info()"
	run "$BIN/pgbr" --config="$DEMO/pg1-srv/pgbr.conf" --stanza="$STANZA" info
}

step_schedule() {
	step "nightly backups: pg_cron instead of crontab"
	pgbr_info "with shared_preload_libraries = 'pg_cron,pgbr' and CREATE EXTENSION pg_cron:"
	pgbr_info "  SELECT cron.schedule('nightly', '0 23 * * *', \$\$CALL pgbr_backup_run('full')\$\$);"
}

step_done() {
	step "done"
	local owner STOP_PREFIX=""
	if pgbr_is_root; then STOP_PREFIX="runuser -u $PGBR_TEST_USER -- "; fi
	if pgbr_is_root; then owner=$PGBR_TEST_USER; else owner=$(id -un); fi
	cat <<EOF
    demo files:   $DEMO  (owner: $owner)
    pgbr-server:  pid $SERVER_PID on 127.0.0.1:$PORT, log $SERVER_LOG

    pg1-srv:      $PG1_DATA (port $PG1_PORT), log $DEMO/pg1-srv/postgresql.log
    pg2-srv:      $PG2_DATA (port $PG2_PORT, standby), log $DEMO/pg2-srv/postgresql.log

    To stop what this demo started:
        $STOP_PREFIX$PG_BINDIR/pg_ctl -D $PG2_DATA stop
        $STOP_PREFIX$PG_BINDIR/pg_ctl -D $PG1_DATA stop
        kill $SERVER_PID
EOF
}

main() {
	step_packages
	step_build
	step_reset
	step_certs
	step_repo_host_config
	step_pg_hosts_config
	step_server_start
	step_ping
	step_primary
	step_stanza
	step_data
	step_backup
	step_info
	step_replication_role
	step_standby_restore
	step_streaming
	step_replicated_row
	step_standby_backup
	step_schedule
	step_done
}

main "$@"
