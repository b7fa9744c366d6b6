# shellcheck shell=bash
# bench/lib.sh - what the benchmark scripts share (sourced by bench.sh,
# bench-backup.sh and bench-s3.sh).  The script sets BENCH_NAME (the prefix
# of its error messages) and RUN_USER (the unprivileged user that runs the
# clusters and servers) before it sources this file.

die()  { printf '%s: ERROR: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }
say()  { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
as_user() { runuser -u "$RUN_USER" -- "$@"; }
mk() { as_user mkdir -p "$@"; }
# stdin to the file $1, readable by the group only
writef() { as_user tee "$1" >/dev/null; as_user chmod 0640 "$1"; }

# a process that exists and is not a zombie
pid_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

stop_pid() {   # pid: SIGTERM, wait up to 10 s, then SIGKILL
	local pid=$1
	[ -n "$pid" ] || return 0
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

ready_count() {   # datadir: .ready files in archive_status
	local n
	ready_count_to n "$1"
	printf '%s' "$n"
}

# the same into the variable $1, without the subshell of $(ready_count)
ready_count_to() {   # var datadir
	local _n=0 _f
	for _f in "$2"/pg_wal/archive_status/*.ready; do
		[ -e "$_f" ] && _n=$((_n + 1))
	done
	printf -v "$1" '%s' "$_n"
}

# Sleeps $1 seconds without starting a process: sleep(1) is a fork and an
# exec, which ten times a second in a sampling loop costs the measured
# programs a few per cent of a core.  The read waits on a pipe nobody
# writes to (opened read-write: no end of file), for the timeout.
nap() {
	[ -n "${NAP_FD:-}" ] || exec {NAP_FD}<> <(:)
	read -r -t "$1" -u "$NAP_FD" _ || true
}

# openssl as RUN_USER; its output only when it fails
ossl() {
	local out
	out=$(as_user openssl "$@" 2>&1) || { printf '%s\n' "$out" >&2; die "openssl $1 failed"; }
}

# a CA (ca.crt, ca.key) and certificates for backup-srv and pg1-srv signed
# by it, each also naming localhost and 127.0.0.1, in the existing
# directory $1 (owned by RUN_USER)
make_certs() {
	local c=$1 host
	ossl req -new -x509 -days 2 -nodes -newkey rsa:2048 -subj "/CN=bench-ca" \
		-keyout "$c/ca.key" -out "$c/ca.crt"
	for host in backup-srv pg1-srv; do
		printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$host" |
			as_user tee "$c/$host.ext" >/dev/null
		ossl req -new -nodes -newkey rsa:2048 -subj "/CN=$host" -keyout "$c/$host.key" -out "$c/$host.csr"
		ossl x509 -req -days 2 -in "$c/$host.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" \
			-CAcreateserial -extfile "$c/$host.ext" -out "$c/$host.crt"
		rm -f "$c/$host.csr" "$c/$host.ext"
	done
	as_user chmod 0600 "$c"/*.key
}

# busy: something listens, or any socket (even a client's) uses the port
port_busy() {
	if command -v ss >/dev/null; then
		[ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ] && return 0
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

declare -A TAKEN=()
free_port() {   # variable: a free TCP port on 127.0.0.1, not given out before
	local p
	for _ in $(seq 1 200); do
		# below Linux's ephemeral range (32768-60999) that clients draw from
		p=$((20000 + RANDOM % 12000))
		[ -n "${TAKEN[$p]:-}" ] && continue
		if ! port_busy "$p"; then
			TAKEN[$p]=1
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free TCP port found"
}
