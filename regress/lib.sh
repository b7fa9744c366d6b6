# shellcheck shell=bash
#
# regress/lib.sh - shared by regress/run-tests.sh and regress/demo.sh
#
# Source it; it defines functions and variables only (no side effects).
# The caller sets "set -euo pipefail".

# Debian packages the build, the tests and the demo need.
PGBR_PACKAGES=(
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron
	libzstd-dev libssl-dev libpq-dev libipc-run-perl
	openssl make gcc perl
	clang libclang-rt-14-dev
	libcurl4-openssl-dev
)

# The unprivileged user that runs PostgreSQL, the TAP tests and the demo
# when we are started as root (initdb refuses to run as root).
PGBR_TEST_USER=${PGBR_TEST_USER:-postgres}

pgbr_is_root() { [ "$(id -u)" -eq 0 ]; }

# Messages.  Headers are easy to find in a long CI log.
pgbr_header() { printf '\n==> %s\n' "$*"; }
pgbr_info()   { printf '    %s\n' "$*"; }
pgbr_warn()   { printf 'WARNING: %s\n' "$*" >&2; }
pgbr_die()    { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Print the packages of "$@" that are not installed (one per line).
# "dpkg -s" alone is not enough: a removed-but-not-purged package is still
# known to dpkg (Status: deinstall ok config-files).
pgbr_missing_packages() {
	local p
	for p in "$@"; do
		if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$'; then
			printf '%s\n' "$p"
		fi
	done
}

# Install what is missing of PGBR_PACKAGES.  A machine that has everything
# does not touch the network.  Without root we can only tell the user.
pgbr_ensure_packages() {
	local missing
	if ! command -v dpkg >/dev/null 2>&1; then
		pgbr_warn "dpkg not found: not a Debian system, cannot check packages"
		return 0
	fi
	missing=$(pgbr_missing_packages "${PGBR_PACKAGES[@]}")
	if [ -z "$missing" ]; then
		pgbr_info "all needed packages are installed"
		return 0
	fi
	# shellcheck disable=SC2086
	set -- $missing
	if ! pgbr_is_root; then
		pgbr_die "missing packages: $* (run as root, or: sudo apt-get install -y $*)"
	fi
	pgbr_info "installing missing packages: $*"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update || return 1
	apt-get install -y "$@" || return 1
	missing=$(pgbr_missing_packages "${PGBR_PACKAGES[@]}")
	[ -z "$missing" ] || pgbr_die "packages still missing after apt-get install: $missing"
}

# pg_config and the directories derived from it.  Sets PG_CONFIG, PG_BINDIR,
# PGXS_DIR (…/lib/pgxs), PGXS_PERL (TAP modules), PG_REGRESS.
pgbr_pg_paths() {
	PG_CONFIG=${PG_CONFIG:-$(command -v pg_config || true)}
	[ -n "$PG_CONFIG" ] || pgbr_die "pg_config not found (install postgresql-server-dev-15)"
	PG_BINDIR=$("$PG_CONFIG" --bindir)
	PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)
	PGXS_PERL=$PGXS_DIR/src/test/perl
	PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
	export PG_CONFIG PG_BINDIR PGXS_DIR PGXS_PERL PG_REGRESS
}

# Build everything and install it (as root; without root only if the
# PostgreSQL directories happen to be writable, else a warning: the tests
# then use whatever pgbr is already installed).
pgbr_build_install() {
	local repo=$1
	local jobs=${PGBR_MAKE_JOBS:-2}
	pgbr_info "make -j$jobs PROFILE=-Werror"
	# (explicit "|| return": callers use "if pgbr_build_install", where
	# set -e does not apply)
	make -C "$repo" -j"$jobs" PROFILE="-Werror" PG_CONFIG="$PG_CONFIG" || return 1
	if pgbr_is_root || { [ -w "$PG_BINDIR" ] && [ -w "$("$PG_CONFIG" --pkglibdir)" ] &&
		[ -w "$("$PG_CONFIG" --sharedir)/extension" ]; }; then
		pgbr_info "make install"
		make -C "$repo" install PG_CONFIG="$PG_CONFIG" || return 1
	else
		pgbr_warn "not root: skipped 'make install'; the tests use the pgbr already installed in $PG_BINDIR (run 'sudo make install' first)"
	fi
}

# Run a command as the unprivileged user when we are root, else as ourselves.
# Environment variables are passed with "env" so that they survive runuser.
pgbr_as_user() {
	if pgbr_is_root; then
		runuser -u "$PGBR_TEST_USER" -- "$@"
	else
		"$@"
	fi
}

# Make sure the unprivileged user exists (postgresql-common creates it).
pgbr_check_user() {
	if pgbr_is_root; then
		id "$PGBR_TEST_USER" >/dev/null 2>&1 ||
			pgbr_die "user $PGBR_TEST_USER does not exist (it comes with postgresql-15)"
	fi
}

# Create (empty) a scratch directory owned by the user that runs the tests.
pgbr_scratch_dir() {
	local dir=$1
	rm -rf "$dir"
	mkdir -p "$dir"
	if pgbr_is_root; then
		chown "$PGBR_TEST_USER": "$dir"
	fi
	chmod 0755 "$dir"
}

# True if the user that runs the tests can read the files of directory $1
# (and traverse every directory above it).
pgbr_user_can_read() {
	local dir=$1
	# shellcheck disable=SC2016  # $1 is expanded by the inner sh
	pgbr_as_user sh -c '
		test -r "$1" && test -x "$1" || exit 1
		if find "$1" \( ! -readable -o -type d ! -executable \) -print -quit 2>/dev/null | grep -q .; then
			exit 1
		fi
		exit 0' sh "$dir" 2>/dev/null
}

# Is process $1 running?  (kill -0 is not enough: in a container whose
# init does not reap orphans, an exited process stays a zombie.)
pgbr_pid_running() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# Is something listening on 127.0.0.1:$1 ?
pgbr_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
