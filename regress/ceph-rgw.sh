#!/bin/bash
#
# regress/ceph-rgw.sh - a real S3 endpoint for tests: a one-node Ceph cluster
# (one ceph-mon, one ceph-osd, one radosgw) from Debian 12's packages, all of
# it inside one scratch directory, the S3 gateway on 127.0.0.1 only.
#
# Background and measurements: docs/ceph-rgw.md in the shared docs (the
# feasibility study).  There is no mgr, no systemd and nothing in /etc/ceph;
# every daemon and tool is run with "-c DIR/ceph.conf".  The daemons run as
# the user who calls "start" (root in CI); clients reach the gateway over
# HTTP only, so nothing but DIR needs any file permissions.
#
# Usage:
#   ceph-rgw.sh install            install ceph-mon ceph-osd radosgw curl if
#                                  any is missing (needs root; "apt-get
#                                  update" only if the apt lists are empty or
#                                  the first install attempt fails)
#   ceph-rgw.sh start DIR PORT     bootstrap a cluster in DIR, or bring back
#                                  whatever daemon of it is not running.  S3
#                                  on 127.0.0.1:PORT, the monitor on PORT+1,
#                                  the OSD on ports PORT+2..PORT+40, S3 over
#                                  HTTPS on PORT+41 (certificate of a test CA
#                                  in DIR/tls, made at the first start).  Waits
#                                  until S3 answers; prints how long it took.
#   ceph-rgw.sh stop-rgw DIR       stop radosgw only (fault injection)
#   ceph-rgw.sh stop DIR           stop radosgw, then the OSD, then the mon
#   ceph-rgw.sh destroy DIR        stop, then remove DIR
#   ceph-rgw.sh status DIR         exit status 0 if and only if S3 answers
#   ceph-rgw.sh env DIR            print "export" lines for clients:
#                                  PGBR_S3_ENDPOINT, PGBR_S3_KEY,
#                                  PGBR_S3_SECRET, PGBR_S3_REGION, CEPH_CONF,
#                                  PGBR_S3_TLS_ENDPOINT, PGBR_S3_CA_FILE
#   ceph-rgw.sh mkbucket DIR NAME  create bucket NAME (no error if it exists)
#   ceph-rgw.sh selftest DIR       bucket, 20 MiB PUT, list, GET, sha256
#                                  compare, DELETE, all with curl
#
# Typical use from a test driver:
#   R=regress/ceph-rgw.sh
#   sudo $R install && sudo $R start /tmp/ceph-rgw 7480
#   eval "$(sudo $R env /tmp/ceph-rgw)"; sudo $R mkbucket /tmp/ceph-rgw pgbr
#   ... tests talk to http://$PGBR_S3_ENDPOINT/pgbr (path style) ...
#   sudo $R destroy /tmp/ceph-rgw
#
# "start" is idempotent.  On a running cluster it only checks that S3
# answers.  A daemon that is gone (say, after "kill -9" of radosgw) is
# started again and the data stays.  A directory whose bootstrap did not
# finish is wiped and bootstrapped again, and so is a MemStore cluster whose
# OSD is gone (MemStore loses everything when the OSD stops).  The ports a
# daemon needs are checked before it is started; a taken port is an error.
#
# DIR's layout: ceph.conf, params.env (the cluster's settings as KEY=VALUE
# lines, safe to source), keyring (mon. and client.admin), mon.a/, osd.0/
# (BlueStore's sparse "block" file is in there), rgw.a/, run/ (pid files and
# admin sockets), log/ (every daemon's log and the cluster log), crash/.
# The script never wipes or removes a non-empty directory that lacks its own
# params.env.
#
# "stop", "stop-rgw" and "destroy" signal a process only if /proc/PID/comm is
# the daemon's binary name and its command line has the argument
# DIR/ceph.conf: SIGTERM first, SIGKILL after STOP_TIMEOUT seconds.  The
# exception is radosgw when the OSD or the monitor is gone: it cannot shut
# down cleanly then (it hangs until the SIGKILL), so it gets SIGKILL at once.
# Before "start" runs radosgw again, the clients of a radosgw that was killed
# are put on the OSD blocklist, or the watches they leave behind would stall
# the new radosgw's first bucket change for 30 s.  radosgw's RADOS client
# checks for a lagging OSD every 0.5 s instead of 5 s, so that a restarted
# OSD costs its first request at most about 1.5 s instead of up to 15 s.
#
# Environment:
#   S3_ACCESS_KEY   access key of the S3 user (default pgbrtestkey)
#   S3_SECRET_KEY   its secret (default pgbrtestsecret0123456789)
#                   Both are fixed when the cluster is created; later
#                   "start"s use what params.env says.
#   OBJECTSTORE     bluestore (default) or memstore (data in RAM, lost when
#                   the OSD stops; about 3 s faster to start)
#   BLOCK_SIZE      size of BlueStore's sparse block file (default 10G); the
#                   host disk only needs what is written, but the file never
#                   shrinks
#   OSD_MEMORY_TARGET  the OSD's memory target (default 1G)
#   START_TIMEOUT   seconds to wait for each daemon (default 120)
#   STOP_TIMEOUT    seconds between SIGTERM and SIGKILL (default 30)
#   SELFTEST_MIB    object size of the selftest in MiB (default 20)

set -euo pipefail

PROG=${0##*/}
PACKAGES=(ceph-mon ceph-osd radosgw curl)
DEFAULT_ACCESS_KEY=pgbrtestkey
DEFAULT_SECRET_KEY=pgbrtestsecret0123456789
REGION=us-east-1
START_TIMEOUT=${START_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
# sha256 of nothing: the x-amz-content-sha256 of requests without a body
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
PARAMS_MAGIC=PGBR_CEPH_RGW_PARAMS

# --- messages and small helpers ------------------------------------------

say()  { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: WARNING: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
	sed -n '/^# Usage:/,/^# Typical use/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

# Microseconds since the epoch (EPOCHREALTIME may use a locale's comma).
now_us() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((10#$t))"; }
# Seconds since a now_us value, as "12.34".
since() {
	local d=$(( $(now_us) - $1 ))
	printf '%d.%02d' "$((d / 1000000))" "$(( (d % 1000000) / 10000 ))"
}

# "N MiB in S s (R MiB/s)" for N MiB moved since a now_us value.
rate() {
	local mib=$1 d=$(( $(now_us) - $2 ))
	[ "$d" -gt 0 ] || d=1
	printf '%s MiB in %s s (%d MiB/s)' "$mib" "$(since "$2")" "$(( mib * 1000000 / d ))"
}

# Canonical absolute path of DIR (it need not exist yet).
canon_dir() {
	local d
	[ -n "$1" ] || die "DIR must not be empty"
	d=$(realpath -m -- "$1")
	[ "$d" != / ] || die "DIR must not be /"
	printf '%s' "$d"
}

need_cmds() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	[ "${#missing[@]}" -eq 0 ] ||
		die "not found: ${missing[*]} (run: sudo $0 install)"
}

# --- install ----------------------------------------------------------------

missing_packages() {
	local p
	for p in "${PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
			printf '%s\n' "$p"
		fi
	done
}

cmd_install() {
	local t0 missing
	t0=$(now_us)
	command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: not a Debian system"
	missing=$(missing_packages)
	if [ -z "$missing" ]; then
		say "install: ${PACKAGES[*]} already installed"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || die "install needs root; missing: $(echo "$missing" | tr '\n' ' ')"
	export DEBIAN_FRONTEND=noninteractive
	local -a pkgs
	mapfile -t pkgs <<<"$missing"
	if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
		say "install: apt lists are empty, running apt-get update"
		apt-get update
	fi
	say "install: installing ${pkgs[*]}"
	if ! apt-get install -y --no-install-recommends "${pkgs[@]}"; then
		say "install: apt-get install failed; apt-get update, then one more try"
		apt-get update
		apt-get install -y --no-install-recommends "${pkgs[@]}"
	fi
	missing=$(missing_packages)
	[ -z "$missing" ] || die "still missing after apt-get install: $missing"
	say "install: done in $(since "$t0") s"
}

# --- params.env -----------------------------------------------------------

# P_* hold the cluster's settings; load_params fills them from DIR/params.env.
reset_params() {
	P_PORT='' P_OBJECTSTORE='' P_BLOCK_SIZE='' P_OSD_MEM='' P_KEY='' P_SECRET='' P_FSID='' P_READY='' P_DIR=''
}
reset_params

write_params() {
	local tmp=$DIR/params.env.tmp
	cat >"$tmp" <<-EOF
	# $PARAMS_MAGIC: written by regress/ceph-rgw.sh, do not edit.
	# DIR is a scratch Ceph cluster; "ceph-rgw.sh destroy DIR" removes it.
	CEPH_DIR=$DIR
	PORT=$P_PORT
	MON_PORT=$((P_PORT + 1))
	OSD_PORT_MIN=$((P_PORT + 2))
	OSD_PORT_MAX=$((P_PORT + 40))
	OBJECTSTORE=$P_OBJECTSTORE
	BLOCK_SIZE=$P_BLOCK_SIZE
	OSD_MEMORY_TARGET=$P_OSD_MEM
	S3_ENDPOINT=127.0.0.1:$P_PORT
	S3_ACCESS_KEY=$P_KEY
	S3_SECRET_KEY=$P_SECRET
	S3_REGION=$REGION
	FSID=$P_FSID
	READY=$P_READY
	EOF
	mv -f "$tmp" "$DIR/params.env"
}

# True if DIR/params.env exists and was written by this script.
has_own_params() {
	[ -f "$DIR/params.env" ] && head -n 1 "$DIR/params.env" | grep -q "$PARAMS_MAGIC"
}

load_params() {
	local k v
	has_own_params || die "$DIR has no params.env of this script (not a cluster made by $PROG start)"
	reset_params
	while IFS='=' read -r k v; do
		case $k in
		CEPH_DIR) P_DIR=$v ;;
		PORT) P_PORT=$v ;;
		OBJECTSTORE) P_OBJECTSTORE=$v ;;
		BLOCK_SIZE) P_BLOCK_SIZE=$v ;;
		OSD_MEMORY_TARGET) P_OSD_MEM=$v ;;
		S3_ACCESS_KEY) P_KEY=$v ;;
		S3_SECRET_KEY) P_SECRET=$v ;;
		FSID) P_FSID=$v ;;
		READY) P_READY=$v ;;
		esac
	done <"$DIR/params.env"
	[[ $P_PORT =~ ^[0-9]+$ ]] || die "$DIR/params.env: bad PORT '$P_PORT'"
	PORT=$P_PORT
}

# --- validation -------------------------------------------------------------

check_port_arg() {
	[[ $1 =~ ^[0-9]+$ ]] || die "PORT must be a number, not '$1'"
	[ "$1" -ge 1024 ] && [ "$1" -le $((65535 - 41)) ] && return 0
	die "PORT must be between 1024 and $((65535 - 41)) (the cluster uses PORT..PORT+41)"
}

check_settings() {
	[[ $P_KEY =~ ^[A-Za-z0-9]{3,128}$ ]] ||
		die "S3_ACCESS_KEY must be 3-128 letters and digits"
	[[ $P_SECRET =~ ^[A-Za-z0-9+/._-]{8,128}$ ]] ||
		die "S3_SECRET_KEY must be 8-128 characters of A-Z a-z 0-9 + / . _ -"
	case $P_OBJECTSTORE in
	bluestore | memstore) ;;
	*) die "OBJECTSTORE must be bluestore or memstore, not '$P_OBJECTSTORE'" ;;
	esac
	[[ $P_BLOCK_SIZE =~ ^[1-9][0-9]*[KMGT]?$ ]] ||
		die "BLOCK_SIZE must look like 10G (a number with K, M, G or T), not '$P_BLOCK_SIZE'"
	[[ $P_OSD_MEM =~ ^[1-9][0-9]*[KMGT]?$ ]] ||
		die "OSD_MEMORY_TARGET must look like 1G (a number with K, M, G or T), not '$P_OSD_MEM'"
}

# --- processes --------------------------------------------------------------

# daemon name (as in run/NAME.pid) -> binary name (/proc/PID/comm)
daemon_comm() {
	case $1 in
	mon.a) echo ceph-mon ;;
	osd.0) echo ceph-osd ;;
	client.rgw.a) echo radosgw ;;
	*) die "internal: unknown daemon $1" ;;
	esac
}

# True if PID is a live (not zombie) process whose comm is COMM and whose
# command line has the argument DIR/ceph.conf.
is_our_pid() {
	local pid=$1 comm=$2 c stat
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	{ read -r c <"/proc/$pid/comm"; } 2>/dev/null || return 1
	[ "$c" = "$comm" ] || return 1
	# /proc/PID/stat: "PID (COMM) STATE ...".  A zombie (Z) or dead (X)
	# process is gone for our purposes (PID 1 may be slow to reap it), unless
	# only its main thread has exited and other threads still run.
	{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	case ${stat%% *} in
	Z | X)
		local tasks=("/proc/$pid/task/"*)
		[ "${#tasks[@]}" -gt 1 ] || return 1
		;;
	esac
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$DIR/ceph.conf"
}

# Pids of daemon NAME of this cluster: the pid file's, and any other process
# that matches (a daemon whose pid file is gone or not yet written).
daemon_pids() {
	local comm p pid c found=()
	comm=$(daemon_comm "$1")
	if [ -r "$DIR/run/$1.pid" ]; then
		read -r pid <"$DIR/run/$1.pid" || true
		if is_our_pid "${pid:-}" "$comm"; then
			found+=("$pid")
		fi
	fi
	for p in /proc/[0-9]*; do
		pid=${p#/proc/} c=
		{ read -r c <"$p/comm"; } 2>/dev/null || continue
		[ "$c" = "$comm" ] || continue
		case " ${found[*]} " in *" $pid "*) continue ;; esac
		is_our_pid "$pid" "$comm" && found+=("$pid")
	done
	[ "${#found[@]}" -eq 0 ] || printf '%s\n' "${found[@]}"
}

daemon_running() { [ -n "$(daemon_pids "$1")" ]; }

# Wait up to SECONDS for the pids (of binary COMM) to go away.  Prints the
# ones left.
wait_gone() {
	local comm=$1 secs=$2 pids=$3 pid left deadline
	deadline=$(( $(now_us) + secs * 1000000 ))
	while :; do
		left=
		for pid in $pids; do
			if is_our_pid "$pid" "$comm"; then left+=" $pid"; fi
		done
		if [ -z "$left" ] || [ "$(now_us)" -ge "$deadline" ]; then break; fi
		sleep 0.1
	done
	printf '%s' "${left# }"
}

# stop_daemon NAME [kill]: SIGTERM, then SIGKILL if it is still there after
# STOP_TIMEOUT s; with "kill", SIGKILL at once.  Every pid is checked again
# (comm and DIR/ceph.conf) right before it is signalled.
stop_daemon() {
	local name=$1 how=${2:-term} comm pids pid left t0 sigs=
	comm=$(daemon_comm "$name")
	pids=$(daemon_pids "$name" | tr '\n' ' ')
	pids=${pids% }
	[ -n "$pids" ] || return 0
	t0=$(now_us)
	left=$pids
	if [ "$how" != kill ]; then
		for pid in $left; do
			if is_our_pid "$pid" "$comm"; then kill -TERM "$pid" 2>/dev/null || true; fi
		done
		sigs=SIGTERM
		left=$(wait_gone "$comm" "$STOP_TIMEOUT" "$left")
		[ -z "$left" ] || warn "$name ($comm, pid $left) still running ${STOP_TIMEOUT} s after SIGTERM: SIGKILL"
	fi
	if [ -n "$left" ]; then
		for pid in $left; do
			if is_our_pid "$pid" "$comm"; then kill -KILL "$pid" 2>/dev/null || true; fi
		done
		sigs+="${sigs:+ then }SIGKILL"
		left=$(wait_gone "$comm" 10 "$left")
		[ -z "$left" ] || die "$name ($comm, pid $left) survives SIGKILL"
	fi
	rm -f "$DIR/run/$name.pid"
	say "stopped $name ($comm, pid $pids, $sigs) in $(since "$t0") s"
}

# radosgw needs the monitor and the OSD to shut down: without them it hangs
# on SIGTERM until the SIGKILL.  Then it gets SIGKILL at once.
stop_rgw() {
	if daemon_running client.rgw.a && ! { daemon_running osd.0 && daemon_running mon.a; }; then
		say "the OSD or the monitor is not running: radosgw cannot shut down cleanly"
		stop_daemon client.rgw.a kill
	else
		stop_daemon client.rgw.a
	fi
}

# stop_all [kill]: radosgw, then the OSD, then the monitor.
stop_all() {
	if [ "${1:-}" = kill ]; then
		stop_daemon client.rgw.a kill
	else
		stop_rgw
	fi
	stop_daemon osd.0 "${1:-term}"
	stop_daemon mon.a "${1:-term}"
}

# --- ports ------------------------------------------------------------------

# Print the TCP ports (one a line) that something listens on.
listening_ports() {
	if command -v ss >/dev/null 2>&1; then
		ss -Hltn 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -un
	fi
}

# Fail unless TCP ports FROM..TO are free (nothing listens on them).
require_free_ports() {
	local from=$1 to=$2 what=$3 busy=() p ports
	if command -v ss >/dev/null 2>&1; then
		ports=$(listening_ports)
		for p in $ports; do
			[ "$p" -ge "$from" ] && [ "$p" -le "$to" ] && busy+=("$p")
		done
	else
		for ((p = from; p <= to; p++)); do
			if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
				busy+=("$p")
			fi
		done
	fi
	if [ "${#busy[@]}" -gt 0 ]; then
		if command -v ss >/dev/null 2>&1; then
			for p in "${busy[@]}"; do
				ss -Hltnp "sport = :$p" 2>/dev/null | sed 's/^/    /' >&2 || true
			done
		fi
		die "port(s) ${busy[*]} for the $what are taken (needed: $from..$to); choose another PORT"
	fi
}

# --- ceph helpers -----------------------------------------------------------

ceph_cli() {
	timeout 90 ceph -c "$DIR/ceph.conf" --connect-timeout 60 "$@"
}

# Start daemon BINARY with ARGS; its early stderr goes to log/NAME.start.
start_daemon() {
	local name=$1 bin=$2
	shift 2
	if ! "$bin" -c "$DIR/ceph.conf" "$@" >"$DIR/log/$name.start" 2>&1; then
		sed 's/^/    /' "$DIR/log/$name.start" >&2
		tail -n 20 "$DIR/log/$name.log" 2>/dev/null | sed 's/^/    log: /' >&2 || true
		die "$bin for $name did not start"
	fi
}

# Wait until the OSD reports "active" on its admin socket (it has seen
# itself marked up in the OSD map).
wait_osd_active() {
	local t0 deadline
	t0=$(now_us)
	deadline=$(( t0 + START_TIMEOUT * 1000000 ))
	while :; do
		if timeout 10 ceph --admin-daemon "$DIR/run/osd.0.asok" status 2>/dev/null |
			grep -q '"state": "active"'; then
			break
		fi
		if ! daemon_running osd.0; then
			tail -n 30 "$DIR/log/osd.0.log" 2>/dev/null | sed 's/^/    log: /' >&2 || true
			die "ceph-osd exited while starting (see $DIR/log/osd.0.log)"
		fi
		[ "$(now_us)" -lt "$deadline" ] ||
			die "osd.0 not active after ${START_TIMEOUT} s (see $DIR/log/osd.0.log)"
		sleep 0.2
	done
}

# HTTP status of GET / (000 if nothing answers).
s3_http_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/" 2>/dev/null || true
}

s3_answers() { [ "$(s3_http_code)" = 200 ]; }

wait_s3() {
	local t0 deadline
	t0=$(now_us)
	deadline=$(( t0 + START_TIMEOUT * 1000000 ))
	until s3_answers; do
		if ! daemon_running client.rgw.a; then
			tail -n 30 "$DIR/log/client.rgw.a.log" 2>/dev/null | sed 's/^/    log: /' >&2 || true
			die "radosgw exited while starting (see $DIR/log/client.rgw.a.log)"
		fi
		[ "$(now_us)" -lt "$deadline" ] ||
			die "S3 on 127.0.0.1:$PORT does not answer after ${START_TIMEOUT} s (see $DIR/log/client.rgw.a.log)"
		sleep 0.1
	done
}

# Write DIR/ceph.conf (atomically: tools may be reading it).
write_conf() {
	local mon_port=$((PORT + 1)) osd_min=$((PORT + 2)) osd_max=$((PORT + 40))
	local tmp=$DIR/ceph.conf.tmp
	cat >"$tmp" <<-EOF
	# Written by regress/ceph-rgw.sh for the scratch cluster in $DIR.
	[global]
	fsid = $P_FSID
	mon host = [v2:127.0.0.1:$mon_port]
	public addr = 127.0.0.1
	cluster addr = 127.0.0.1
	ms bind msgr1 = false
	ms bind msgr2 = true
	keyring = $DIR/keyring
	auth cluster required = cephx
	auth service required = cephx
	auth client required = cephx
	auth allow insecure global id reclaim = false
	run dir = $DIR/run
	crash dir = $DIR/crash
	osd pool default size = 1
	osd pool default min size = 1
	osd pool default pg num = 8
	osd pool default pgp num = 8
	osd pool default pg autoscale mode = off
	osd crush chooseleaf type = 0
	mon allow pool size one = true
	mon allow pool delete = true
	mon warn on pool no redundancy = false
	paxos propose interval = 0.1

	[mon]
	mon data = $DIR/mon.\$id
	mon cluster log file = $DIR/log/cluster.log
	log file = $DIR/log/\$name.log
	pid file = $DIR/run/\$name.pid
	admin socket = $DIR/run/\$name.asok

	[osd]
	osd data = $DIR/osd.\$id
	osd journal = $DIR/osd.\$id/journal
	keyring = $DIR/osd.\$id/keyring
	log file = $DIR/log/\$name.log
	pid file = $DIR/run/\$name.pid
	admin socket = $DIR/run/\$name.asok
	ms bind port min = $osd_min
	ms bind port max = $osd_max
	osd objectstore = $P_OBJECTSTORE
	osd memory target = $P_OSD_MEM
	bluestore block create = true
	bluestore block size = $P_BLOCK_SIZE
	bluestore fsck on mount = false
	bluestore fsck on mkfs = false
	# BlueStore opens and closes its block device several times while it
	# starts, and each close waits for the aio thread's poll (250 ms).
	bdev aio poll ms = 20
	memstore device bytes = $P_BLOCK_SIZE

	[client.rgw.a]
	rgw data = $DIR/rgw.a
	keyring = $DIR/rgw.a/keyring
	log file = $DIR/log/\$name.log
	pid file = $DIR/run/\$name.pid
	admin socket = $DIR/run/\$name.asok
	rgw frontends = beast endpoint=127.0.0.1:$PORT ssl_endpoint=127.0.0.1:$((PORT + 41)) ssl_certificate=$DIR/tls/rgw.crt ssl_private_key=$DIR/tls/rgw.key
	rgw dns name = s3.localhost
	rgw gc obj min wait = 300
	rgw gc processor period = 300
	# radosgw has several RADOS clients.  One that was idle while the OSD
	# restarted still sends to the old OSD's address and only asks for a
	# new OSD map when its op is "laggy": after objecter timeout (10 s),
	# checked every objecter tick interval (5 s).  That made the first
	# DELETE of a large object after an OSD restart take 14 s; now it is at
	# most 1.5 s.
	objecter tick interval = 0.5
	objecter timeout = 1
	EOF
	if cmp -s "$tmp" "$DIR/ceph.conf"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$DIR/ceph.conf"
	fi
}

# --- start ------------------------------------------------------------------

# Remove everything in DIR (which has our params.env).
wipe_dir() {
	has_own_params || die "refusing to wipe $DIR: it has no params.env of this script"
	find "$DIR" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
}

start_mon() {
	local t
	t=$(now_us)
	require_free_ports "$((PORT + 1))" "$((PORT + 1))" "monitor"
	start_daemon mon.a ceph-mon -i a
	say "mon.a started in $(since "$t") s"
}

start_osd() {
	local t
	t=$(now_us)
	require_free_ports "$((PORT + 2))" "$((PORT + 40))" "OSD"
	start_daemon osd.0 ceph-osd -i 0
	wait_osd_active
	say "osd.0 started and active in $(since "$t") s"
}

# A radosgw that died without shutting down (kill -9, SIGKILL) leaves its
# watches on the notify objects of the control pool.  The OSD keeps them
# until the watch timeout (30 s), and the OSD keeps them across its own
# restart too, so the next radosgw's first metadata change (creating or
# deleting a bucket, say) would hang for up to 30 s.  Before a radosgw is
# started again, every client still watching those objects is stale (no
# radosgw of this cluster runs); adding its address to the OSD blocklist
# makes the OSD drop its watches at once.  The blocklist entry expires after
# an hour; a new radosgw has a new address.
clear_stale_rgw_watches() {
	local objs obj addr addrs=()
	objs=$(timeout 30 rados -c "$DIR/ceph.conf" -p default.rgw.control ls 2>/dev/null) || return 0
	for obj in $objs; do
		while read -r addr; do
			case " ${addrs[*]} " in *" $addr "*) ;; *) addrs+=("$addr") ;; esac
		done < <(timeout 30 rados -c "$DIR/ceph.conf" -p default.rgw.control listwatchers "$obj" 2>/dev/null |
			sed -n 's/^watcher=\([^ ]*\) .*/\1/p')
	done
	for addr in "${addrs[@]}"; do
		if ceph_cli osd blocklist add "$addr" 3600 >/dev/null 2>&1; then
			say "blocklisted $addr, a dead radosgw's client (its watches would stall the next one for 30 s)"
		else
			warn "could not blocklist the dead radosgw client $addr; the first bucket change may take 30 s"
		fi
	done
}

# A CA and the gateway's certificate for its HTTPS endpoint (PORT + 41):
# names 127.0.0.1, s3.localhost and *.s3.localhost (virtual-hosted style).
make_tls() {
	local d=$DIR/tls
	[ -f "$d/rgw.crt" ] && [ -f "$d/ca.crt" ] && return 0
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ceph-rgw test CA" \
		-keyout "$d/ca.key" -out "$d/ca.crt" >/dev/null 2>&1 || die "could not make the test CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=s3.localhost" \
		-keyout "$d/rgw.key" -out "$d/rgw.csr" >/dev/null 2>&1 || die "could not make the gateway's key"
	printf 'subjectAltName = IP:127.0.0.1, DNS:s3.localhost, DNS:*.s3.localhost\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/rgw.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 30 -extfile "$d/ext.cnf" -out "$d/rgw.crt" >/dev/null 2>&1 ||
		die "could not sign the gateway's certificate"
	chmod 600 "$d/ca.key" "$d/rgw.key"
}

start_rgw() {
	local t
	t=$(now_us)
	require_free_ports "$PORT" "$PORT" "S3 gateway"
	require_free_ports "$((PORT + 41))" "$((PORT + 41))" "S3 gateway (HTTPS)"
	make_tls
	[ "$P_READY" != 1 ] || clear_stale_rgw_watches
	start_daemon client.rgw.a radosgw -n client.rgw.a
	wait_s3
	say "radosgw started in $(since "$t") s, S3 answers"
}

bootstrap() {
	local t secret osd_uuid
	mkdir -p "$DIR"
	P_FSID=$(cat /proc/sys/kernel/random/uuid)
	P_READY=0
	write_params
	mkdir -p "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/mon.a" "$DIR/osd.0" "$DIR/rgw.a"
	write_conf

	t=$(now_us)
	ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
	monmaptool --create --clobber --fsid "$P_FSID" \
		--addv a "[v2:127.0.0.1:$((PORT + 1))]" "$DIR/monmap" >/dev/null
	ceph-mon -c "$DIR/ceph.conf" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
		>"$DIR/log/mon.a.mkfs" 2>&1 || { cat "$DIR/log/mon.a.mkfs" >&2; die "ceph-mon --mkfs failed"; }
	say "keys, monmap and mon.a's store made in $(since "$t") s"
	start_mon

	t=$(now_us)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	secret=$(ceph-authtool --gen-print-key)
	printf '{"cephx_secret": "%s"}\n' "$secret" >"$DIR/osd.0/new.json"
	ceph_cli osd new "$osd_uuid" -i "$DIR/osd.0/new.json" >/dev/null
	rm -f "$DIR/osd.0/new.json"
	printf '[osd.0]\n\tkey = %s\n' "$secret" >"$DIR/osd.0/keyring"
	ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --key "$secret" --osd-uuid "$osd_uuid" \
		>"$DIR/log/osd.0.mkfs" 2>&1 || {
		cat "$DIR/log/osd.0.mkfs" >&2
		tail -n 30 "$DIR/log/osd.0.log" 2>/dev/null >&2 || true
		die "ceph-osd --mkfs failed"
	}
	say "osd.0 registered and made ($P_OBJECTSTORE) in $(since "$t") s"
	start_osd

	ceph_cli auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' \
		-o "$DIR/rgw.a/keyring"
	start_rgw

	t=$(now_us)
	timeout 120 radosgw-admin -c "$DIR/ceph.conf" user create --uid pgbr --display-name "pgbr tests" \
		--access-key "$P_KEY" --secret-key "$P_SECRET" >"$DIR/log/user-create.out" 2>&1 || {
		cat "$DIR/log/user-create.out" >&2
		die "radosgw-admin user create failed"
	}
	say "S3 user pgbr created in $(since "$t") s"
	P_READY=1
	write_params
}

cmd_start() {
	local t0 arg_port=$2 recreate=
	t0=$(now_us)
	DIR=$(canon_dir "$1")
	check_port_arg "$arg_port"
	PORT=$arg_port
	need_cmds ceph ceph-mon ceph-osd radosgw radosgw-admin rados ceph-authtool monmaptool curl realpath

	if [ -e "$DIR" ] && [ ! -d "$DIR" ]; then
		die "$DIR exists and is not a directory"
	fi

	if [ -d "$DIR" ] && has_own_params; then
		local want_key=${S3_ACCESS_KEY:-} want_secret=${S3_SECRET_KEY:-}
		load_params
		[ "$P_DIR" = "$DIR" ] ||
			die "$DIR/params.env was written for $P_DIR (moved?); run: $0 destroy $DIR"
		[ "$P_PORT" = "$arg_port" ] ||
			die "the cluster in $DIR uses port $P_PORT, not $arg_port; start it with $P_PORT or destroy it first"
		if [ "$P_READY" = 1 ]; then
			if { [ -n "$want_key" ] && [ "$want_key" != "$P_KEY" ]; } ||
				{ [ -n "$want_secret" ] && [ "$want_secret" != "$P_SECRET" ]; }; then
				warn "S3_ACCESS_KEY/S3_SECRET_KEY differ from those the cluster was created with; using $DIR/params.env's"
			fi
			[ -z "${OBJECTSTORE:-}" ] || [ "$OBJECTSTORE" = "$P_OBJECTSTORE" ] ||
				warn "OBJECTSTORE=$OBJECTSTORE ignored: the cluster in $DIR uses $P_OBJECTSTORE"
			if [ "$P_OBJECTSTORE" = memstore ] && ! daemon_running osd.0; then
				say "MemStore OSD of $DIR is gone (and so is its data): bootstrapping again"
				stop_all kill
				wipe_dir
				recreate=1
			else
				# ceph.conf follows from params.env; writing it again picks
				# up changes of this script for daemons started now.
				[ -n "$P_OSD_MEM" ] || P_OSD_MEM=1G
				check_settings
				write_conf
				local started=
				if ! daemon_running mon.a; then
					start_mon
					started+=" mon"
				fi
				if ! daemon_running osd.0; then
					start_osd
					started+=" osd"
				fi
				if ! daemon_running client.rgw.a; then
					start_rgw
					started+=" rgw"
				else
					wait_s3
				fi
				if [ -z "$started" ]; then
					say "start: cluster in $DIR already running, S3 on 127.0.0.1:$PORT ($(since "$t0") s)"
				else
					say "start: restarted${started} in $DIR in $(since "$t0") s; S3 on 127.0.0.1:$PORT"
				fi
				return 0
			fi
		else
			say "bootstrap of $DIR did not finish before: wiping it and starting over"
			stop_all kill
			wipe_dir
			recreate=1
		fi
	elif [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
		die "refusing to use $DIR: it is not empty and has no params.env of this script"
	fi

	# A new cluster.  One made again in its old directory keeps the settings
	# of its params.env.
	if [ -z "$recreate" ]; then
		P_OBJECTSTORE=${OBJECTSTORE:-bluestore}
		P_BLOCK_SIZE=${BLOCK_SIZE:-10G}
		P_OSD_MEM=${OSD_MEMORY_TARGET:-1G}
		P_KEY=${S3_ACCESS_KEY:-$DEFAULT_ACCESS_KEY}
		P_SECRET=${S3_SECRET_KEY:-$DEFAULT_SECRET_KEY}
	fi
	P_PORT=$arg_port
	check_settings
	require_free_ports "$PORT" "$((PORT + 41))" "cluster"
	say "bootstrapping a new cluster in $DIR ($P_OBJECTSTORE, S3 on 127.0.0.1:$PORT)"
	bootstrap
	say "start: new cluster in $DIR ready in $(since "$t0") s; S3 on 127.0.0.1:$PORT"
}

# --- the other commands -----------------------------------------------------

cmd_stop() {
	local t0
	t0=$(now_us)
	DIR=$(canon_dir "$1")
	stop_all
	say "stop: $DIR stopped in $(since "$t0") s"
}

cmd_stop_rgw() {
	local t0
	t0=$(now_us)
	DIR=$(canon_dir "$1")
	stop_rgw
	say "stop-rgw: radosgw of $DIR stopped in $(since "$t0") s"
}

cmd_destroy() {
	local t0
	t0=$(now_us)
	DIR=$(canon_dir "$1")
	if [ ! -e "$DIR" ]; then
		say "destroy: $DIR does not exist"
		return 0
	fi
	[ -d "$DIR" ] || die "$DIR is not a directory"
	if ! has_own_params && [ -n "$(ls -A "$DIR")" ]; then
		die "refusing to remove $DIR: it is not empty and has no params.env of this script"
	fi
	stop_all
	rm -rf -- "$DIR"
	say "destroy: $DIR removed in $(since "$t0") s"
}

cmd_status() {
	DIR=$(canon_dir "$1")
	load_params
	local d state
	for d in mon.a osd.0 client.rgw.a; do
		state=$(daemon_pids "$d" | tr '\n' ' ' | sed 's/ $//')
		if [ -n "$state" ]; then
			printf '%-13s running (pid %s)\n' "$d" "$state"
		else
			printf '%-13s not running\n' "$d"
		fi
	done
	if s3_answers; then
		echo "S3 answers on http://127.0.0.1:$PORT/"
	else
		echo "S3 does not answer on http://127.0.0.1:$PORT/"
		return 1
	fi
}

cmd_env() {
	DIR=$(canon_dir "$1")
	load_params
	printf 'export PGBR_S3_ENDPOINT=%q\n' "127.0.0.1:$P_PORT"
	printf 'export PGBR_S3_KEY=%q\n' "$P_KEY"
	printf 'export PGBR_S3_SECRET=%q\n' "$P_SECRET"
	printf 'export PGBR_S3_REGION=%q\n' "$REGION"
	printf 'export PGBR_S3_TLS_ENDPOINT=%q\n' "127.0.0.1:$((P_PORT + 41))"
	printf 'export PGBR_S3_CA_FILE=%q\n' "$DIR/tls/ca.crt"
	printf 'export CEPH_CONF=%q\n' "$DIR/ceph.conf"
}

# curl with SigV4 (the credentials go through a config on a pipe, not argv).
# curl 7.88 does not send x-amz-content-sha256, and RGW needs it: callers
# pass it with -H.  Prints the HTTP status on stdout's last line.
s3_curl() {
	curl -sS --aws-sigv4 "aws:amz:$REGION:s3" \
		-K <(printf 'user = "%s:%s"\n' "$P_KEY" "$P_SECRET") \
		-w '\n%{http_code}\n' "$@"
}

check_bucket_name() {
	[[ $1 =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] ||
		die "bad bucket name '$1' (3-63 of a-z 0-9 . -)"
}

# Create bucket NAME; fine if we already own it.
make_bucket() {
	local name=$1 out code
	check_bucket_name "$name"
	out=$(s3_curl -X PUT -H "x-amz-content-sha256: $EMPTY_SHA256" "http://127.0.0.1:$PORT/$name") ||
		die "PUT bucket $name: curl failed"
	code=$(tail -n 1 <<<"$out")
	case $code in
	200) ;;
	409) grep -q BucketAlreadyOwnedByYou <<<"$out" || die "PUT bucket $name: HTTP 409: $out" ;;
	*) die "PUT bucket $name: HTTP $code: $out" ;;
	esac
}

cmd_mkbucket() {
	DIR=$(canon_dir "$1")
	load_params
	make_bucket "$2"
	say "mkbucket: bucket $2 exists on http://127.0.0.1:$PORT/$2"
}

# Expect HTTP status WANT in the last line of OUT.
expect_code() {
	local what=$1 want=$2 out=$3 code
	code=$(tail -n 1 <<<"$out")
	[ "$code" = "$want" ] || die "selftest: $what: HTTP $code, expected $want: $(head -c 2000 <<<"$out")"
}

cmd_selftest() {
	DIR=$(canon_dir "$1")
	load_params
	need_cmds curl sha256sum
	local mib=${SELFTEST_MIB:-20} t0 t bucket key url tmp sum sum2 out steps=
	[[ $mib =~ ^[1-9][0-9]*$ ]] || die "SELFTEST_MIB must be a positive number"
	bucket=pgbr-selftest-$$
	key=dir/obj-$mib-MiB.bin
	url=http://127.0.0.1:$PORT/$bucket
	tmp=$DIR/selftest.$$
	mkdir -p "$tmp"
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf -- '$tmp'" EXIT
	s3_answers || die "selftest: S3 on 127.0.0.1:$PORT does not answer"
	head -c "$((mib * 1048576))" /dev/urandom >"$tmp/up"
	sum=$(sha256sum "$tmp/up" | cut -d' ' -f1)
	t0=$(now_us)

	t=$(now_us)
	make_bucket "$bucket"
	steps+="create bucket $(since "$t") s"

	t=$(now_us)
	out=$(s3_curl -T "$tmp/up" -H "x-amz-content-sha256: $sum" "$url/$key")
	expect_code "PUT $key" 200 "$out"
	steps+=", PUT $(rate "$mib" "$t")"

	t=$(now_us)
	out=$(s3_curl -H "x-amz-content-sha256: $EMPTY_SHA256" "$url?list-type=2&prefix=dir%2F")
	expect_code "LIST" 200 "$out"
	grep -q "<Key>$key</Key>" <<<"$out" || die "selftest: $key not in the listing: $out"
	grep -q "<Size>$((mib * 1048576))</Size>" <<<"$out" || die "selftest: wrong size in the listing: $out"
	steps+=", list $(since "$t") s"

	t=$(now_us)
	out=$(s3_curl -o "$tmp/down" -H "x-amz-content-sha256: $EMPTY_SHA256" "$url/$key")
	expect_code "GET $key" 200 "$out"
	steps+=", GET $(rate "$mib" "$t")"
	sum2=$(sha256sum "$tmp/down" | cut -d' ' -f1)
	[ "$sum" = "$sum2" ] || die "selftest: sha256 differs: put $sum, got $sum2"

	t=$(now_us)
	out=$(s3_curl -X DELETE -H "x-amz-content-sha256: $EMPTY_SHA256" "$url/$key")
	expect_code "DELETE $key" 204 "$out"
	out=$(s3_curl -H "x-amz-content-sha256: $EMPTY_SHA256" "$url/$key")
	expect_code "GET of the deleted $key" 404 "$out"
	out=$(s3_curl -X DELETE -H "x-amz-content-sha256: $EMPTY_SHA256" "$url")
	expect_code "DELETE bucket" 204 "$out"
	steps+=", delete object and bucket $(since "$t") s"

	rm -rf -- "$tmp"
	trap - EXIT
	say "selftest: $steps"
	say "selftest: OK ($mib MiB object, sha256 $sum) in $(since "$t0") s"
}

# --- main -------------------------------------------------------------------

main() {
	[ $# -ge 1 ] || usage
	local cmd=$1
	shift
	case $cmd in
	install) [ $# -eq 0 ] || usage; cmd_install ;;
	start) [ $# -eq 2 ] || usage; cmd_start "$@" ;;
	stop) [ $# -eq 1 ] || usage; cmd_stop "$@" ;;
	stop-rgw) [ $# -eq 1 ] || usage; cmd_stop_rgw "$@" ;;
	destroy) [ $# -eq 1 ] || usage; cmd_destroy "$@" ;;
	status) [ $# -eq 1 ] || usage; cmd_status "$@" ;;
	env) [ $# -eq 1 ] || usage; cmd_env "$@" ;;
	mkbucket) [ $# -eq 2 ] || usage; cmd_mkbucket "$@" ;;
	selftest) [ $# -eq 1 ] || usage; cmd_selftest "$@" ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
