#!/bin/bash
#
# regress/run-tests.sh - THE test command of pgbr.
#
#   sudo ./regress/run-tests.sh          (CI and a fresh Debian 12)
#   ./regress/run-tests.sh               (as a normal user: no apt, no
#                                         runuser; install pgbr yourself)
#
# Steps: install missing Debian packages (only when something is missing),
# build with -Werror, make install, unit tests of common/ (make unit),
# pg_regress SQL tests (if regress/sql/*.sql exist), TAP tests regress/t/*.pl.
# PostgreSQL refuses to run as root, so when started as root the SQL and TAP
# tests run as the user "postgres" in a scratch directory it owns.
#
# Environment:
#   PROVE_FLAGS   extra prove flags, e.g. --verbose
#   PROVE_TESTS   tests to run, e.g. "t/001_server.pl" (default t/*.pl)
#   PGBR_SKIP_BUILD=1   do not build/install (use what is installed)
#   PGBR_KEEP=1   keep the scratch directory even when everything passed
#   PGBR_SMALL_FS=DIR   a small file system the test user owns, for the
#                 disk-full test (t/060_diskfull.pl).  As root the script
#                 mounts one itself (tmpfs of PGBR_SMALL_FS_SIZE, default
#                 80m, at $SCRATCH/smallfs, unmounted at exit); without
#                 root, and without this variable, that test fails.
#   PG_TEST_NOCLEAN, PG_TEST_TIMEOUT_DEFAULT, PG_TEST_EXTRA: as in PostgreSQL
#
# Exit status 0 only if every step passed.

set -euo pipefail

REGRESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$REGRESS_DIR/.." && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$REGRESS_DIR/lib.sh"

declare -a SUMMARY=()
FAILED=0

record() {   # record NAME STATUS
	SUMMARY+=("$(printf '%-32s %s' "$1" "$2")")
	if [ "$2" = FAIL ]; then FAILED=1; fi
}

# shellcheck disable=SC2317  # called from the EXIT trap
print_summary() {
	printf '\n==================== pgbr test summary ====================\n'
	local line
	for line in "${SUMMARY[@]}"; do printf '  %s\n' "$line"; done
	if [ "$FAILED" -eq 0 ]; then
		printf '  RESULT: PASS\n'
	else
		printf '  RESULT: FAIL\n'
		if [ -n "${SCRATCH:-}" ] && [ -d "$SCRATCH" ]; then
			printf '  logs: %s\n' "$SCRATCH"
		fi
	fi
	printf '===========================================================\n'
}

# The small file system mounted for t/060_diskfull.pl (set once mounted).
SMALL_FS_MOUNTED=

# shellcheck disable=SC2317  # called from the EXIT trap
unmount_small_fs() {
	[ -n "$SMALL_FS_MOUNTED" ] || return 0
	# a process a failed test left behind may still hold a file there:
	# then detach it lazily (the kernel frees it when that process ends)
	if ! umount "$SMALL_FS_MOUNTED" 2>/dev/null; then
		pgbr_warn "$SMALL_FS_MOUNTED is busy: detaching it (umount -l)"
		umount -l "$SMALL_FS_MOUNTED" || pgbr_warn "could not unmount $SMALL_FS_MOUNTED"
	fi
	if mountpoint -q "$SMALL_FS_MOUNTED" 2>/dev/null; then
		pgbr_warn "$SMALL_FS_MOUNTED is still mounted"
	else
		rmdir "$SMALL_FS_MOUNTED" 2>/dev/null || true
	fi
	SMALL_FS_MOUNTED=
}

# The Ceph cluster started for t/080_s3.pl (set once started); stopped at
# exit, its logs stay in the scratch directory.
CEPH_DIR=
# shellcheck disable=SC2317  # called from the EXIT trap
stop_ceph() {
	[ -n "$CEPH_DIR" ] || return 0
	pgbr_as_user "$SRC/ceph-rgw.sh" stop "$CEPH_DIR" >/dev/null 2>&1 ||
		pgbr_warn "could not stop the Ceph cluster in $CEPH_DIR"
	CEPH_DIR=
}

# Whatever happens (set -e included), say what ran and what did not.
# shellcheck disable=SC2317  # the EXIT trap
on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
		record "aborted (exit $rc)" FAIL
	fi
	# before the scratch directory is removed: it holds the mount point
	unmount_small_fs
	stop_ceph
	print_summary
	if [ "$FAILED" -eq 0 ] && [ -z "${PGBR_KEEP:-}" ] && [ -z "${PG_TEST_NOCLEAN:-}" ] &&
		[ -n "${SCRATCH:-}" ]; then
		rm -rf "$SCRATCH"
	fi
	[ "$FAILED" -eq 0 ] || exit 1
}
trap on_exit EXIT

# In CI, show the logs of what failed (nobody can look at the machine later).
dump_logs() {
	local dir=$1 f
	[ -n "${CI:-}" ] || return 0
	[ -d "$dir" ] || return 0
	while IFS= read -r f; do
		printf '\n----- %s (last 300 lines) -----\n' "$f"
		tail -n 300 "$f" || true
	done < <(find "$dir" -type f \( -name '*.log' -o -name 'regress_log_*' -o -name 'regression.diffs' \) | sort)
}

###########################################################################

pgbr_header "packages"
if pgbr_ensure_packages; then record packages PASS; else record packages FAIL; exit 1; fi

pgbr_pg_paths
export PATH="$PG_BINDIR:$PATH"
pgbr_info "pg_config: $PG_CONFIG (bindir $PG_BINDIR)"
pgbr_check_user

if [ -n "${PGBR_SKIP_BUILD:-}" ]; then
	record "build + install" "SKIP (PGBR_SKIP_BUILD)"
else
	pgbr_header "build and install"
	if pgbr_build_install "$REPO"; then
		record "build + install" PASS
	else
		record "build + install" FAIL
		exit 1
	fi
fi

pgbr_header "unit tests (make unit)"
if make -C "$REPO" unit PG_CONFIG="$PG_CONFIG"; then
	record "unit tests" PASS
else
	record "unit tests" FAIL
fi

# Scratch directory for everything the tests write, owned by the test user.
SCRATCH=${PGBR_SCRATCH:-/tmp/pgbr-test-$$}
pgbr_scratch_dir "$SCRATCH"
pgbr_info "scratch directory: $SCRATCH"

# The test user must be able to read the test sources; a checkout in a
# root-only directory is copied into the scratch directory.
SRC=$REGRESS_DIR
if ! pgbr_user_can_read "$REGRESS_DIR"; then
	pgbr_info "$REGRESS_DIR is not readable by $PGBR_TEST_USER: copying it"
	cp -a "$REGRESS_DIR" "$SCRATCH/regress"
	if pgbr_is_root; then chown -R "$PGBR_TEST_USER": "$SCRATCH/regress"; fi
	SRC=$SCRATCH/regress
fi

# Environment for both kinds of tests (passed through runuser with env).
TEST_ENV=(
	"PATH=$PATH"
	"PG_REGRESS=$PG_REGRESS"
	"TESTDIR=$SCRATCH"
	"PG_CONFIG=$PG_CONFIG"
)
for v in PG_TEST_NOCLEAN PG_TEST_TIMEOUT_DEFAULT PG_TEST_EXTRA PGBR_BIN PGBR_SERVER_BIN; do
	if [ -n "${!v:-}" ]; then TEST_ENV+=("$v=${!v}"); fi
done

###########################################################################
# A small file system for the disk-full test (t/060_diskfull.pl): the
# repository of that test lives there and the test fills it up.  Mounting
# needs root, the test runs as the test user: mount it here, owned by that
# user, and pass it as PGBR_SMALL_FS.  The test fails (it does not skip)
# when it gets none.

if [ -n "${PGBR_SMALL_FS:-}" ]; then
	pgbr_info "small file system for the disk-full test: $PGBR_SMALL_FS (given by PGBR_SMALL_FS)"
	TEST_ENV+=("PGBR_SMALL_FS=$PGBR_SMALL_FS")
	record "small file system" "GIVEN ($PGBR_SMALL_FS)"
elif pgbr_is_root; then
	small_size=${PGBR_SMALL_FS_SIZE:-80m}
	small_dir=$SCRATCH/smallfs
	mkdir -p "$small_dir"
	if mount -t tmpfs -o "size=$small_size,mode=0700,uid=$(id -u "$PGBR_TEST_USER"),gid=$(id -g "$PGBR_TEST_USER")" \
		tmpfs "$small_dir"; then
		SMALL_FS_MOUNTED=$small_dir
		pgbr_info "small file system for the disk-full test: tmpfs of $small_size at $small_dir"
		TEST_ENV+=("PGBR_SMALL_FS=$small_dir")
		record "small file system" "PASS (tmpfs $small_size)"
	else
		pgbr_warn "could not mount a tmpfs of $small_size at $small_dir: t/060_diskfull.pl will fail"
		record "small file system" FAIL
	fi
else
	pgbr_warn "not root: no small file system mounted for the disk-full test; t/060_diskfull.pl will fail (run as root, or set PGBR_SMALL_FS to a small file system you own)"
	record "small file system" "NOT MOUNTED (not root)"
fi

###########################################################################
# A real S3 endpoint for t/080_s3.pl: a one-node Ceph cluster (mon, osd,
# radosgw) from Debian's packages, run by the test user in the scratch
# directory (regress/ceph-rgw.sh; about 30 s to install, 8 s to start).  The
# test gets the endpoint and keys, and the commands that stop and start the
# gateway for its fault test.  When the packages cannot be installed or the
# cluster does not start, the step fails and so does t/080_s3.pl: the S3
# tests never pass without a gateway.  Only started when t/080_s3.pl runs.

wants_s3=
for t in ${PROVE_TESTS:-t/*.pl}; do
	case $t in *080_s3*|t/\*.pl) wants_s3=1 ;; esac
done
if [ -n "$wants_s3" ]; then
	pgbr_header "S3 gateway (Ceph RADOS Gateway on 127.0.0.1, for t/080_s3.pl)"
	ceph_ok=
	if pgbr_is_root; then
		"$SRC/ceph-rgw.sh" install && ceph_ok=1
	elif command -v radosgw >/dev/null && command -v ceph-osd >/dev/null; then
		ceph_ok=1
	else
		pgbr_warn "not root and Ceph is not installed: t/080_s3.pl will fail"
	fi
	if [ -n "$ceph_ok" ]; then
		ceph_port=${PGBR_CEPH_PORT:-7480}
		while pgbr_port_busy "$ceph_port" || pgbr_port_busy $((ceph_port + 1)); do
			ceph_port=$((ceph_port + 50))
		done
		CEPH_DIR=$SCRATCH/ceph
		if pgbr_as_user "$SRC/ceph-rgw.sh" start "$CEPH_DIR" "$ceph_port"; then
			while IFS= read -r line; do
				line=${line#export }
				TEST_ENV+=("$line")
				case $line in
					PGBR_S3_ENDPOINT=*) S3_ENDPOINT=${line#*=} ;;
					PGBR_S3_KEY=*) S3_KEY=${line#*=} ;;
					PGBR_S3_SECRET=*) S3_SECRET=${line#*=} ;;
					PGBR_S3_TLS_ENDPOINT=*) S3_TLS_ENDPOINT=${line#*=} ;;
					PGBR_S3_CA_FILE=*) S3_CA_FILE=${line#*=} ;;
				esac
			done < <(pgbr_as_user "$SRC/ceph-rgw.sh" env "$CEPH_DIR")
			TEST_ENV+=("PGBR_S3_GATEWAY_STOP=$SRC/ceph-rgw.sh stop-rgw $CEPH_DIR")
			TEST_ENV+=("PGBR_S3_GATEWAY_START=$SRC/ceph-rgw.sh start $CEPH_DIR $ceph_port")
			record "S3 gateway (Ceph)" "PASS (127.0.0.1:$ceph_port)"
		else
			record "S3 gateway (Ceph)" FAIL
			dump_logs "$CEPH_DIR/log"
		fi
	else
		record "S3 gateway (Ceph)" FAIL
	fi
fi

###########################################################################
# The promises of the repository's storage interface (repo-server/storage.h),
# checked by regress/storage-conformance against a directory and, when the
# gateway runs, against a bucket of it: atomic commit, discard, multipart,
# ranged reads, listings with pagination, removal, locks.

pgbr_header "storage conformance (posix; s3 when the gateway runs)"
if make -C "$REPO" storage-conformance PG_CONFIG="$PG_CONFIG" >/dev/null; then
	conformance() {   # conformance NAME CONFIG-LINES...
		local name=$1 conf=$SCRATCH/conformance-$1.conf
		shift
		printf '%s\n' '[global]' "$@" >"$conf"
		if "$REPO/regress/storage-conformance" "$conf" >"$SCRATCH/conformance-$name.log" 2>&1; then
			record "storage conformance ($name)" "PASS ($(grep -c '^ok' "$SCRATCH/conformance-$name.log") checks)"
		else
			record "storage conformance ($name)" FAIL
			grep -v '^ok' "$SCRATCH/conformance-$name.log" | tail -n 40
		fi
	}
	mkdir -p "$SCRATCH/conformance-repo"
	conformance posix "repo1-path=$SCRATCH/conformance-repo"
	if [ -n "${S3_ENDPOINT:-}" ]; then
		if pgbr_as_user "$SRC/ceph-rgw.sh" mkbucket "$CEPH_DIR" conformance >/dev/null; then
			conformance s3 repo1-type=s3 repo1-path=/conformance \
				"repo1-s3-endpoint=http://$S3_ENDPOINT" repo1-s3-bucket=conformance \
				repo1-s3-uri-style=path "repo1-s3-key=$S3_KEY" "repo1-s3-key-secret=$S3_SECRET"
			# HTTPS, the certificate checked against the gateway's CA
			STORAGE_LIST_COUNT=20 conformance s3-https repo1-type=s3 repo1-path=/conformance-tls \
				"repo1-s3-endpoint=https://$S3_TLS_ENDPOINT" repo1-s3-bucket=conformance \
				repo1-s3-uri-style=path "repo1-s3-ca-file=$S3_CA_FILE" \
				"repo1-s3-key=$S3_KEY" "repo1-s3-key-secret=$S3_SECRET"
		else
			record "storage conformance (s3)" "FAIL (no bucket)"
		fi
	fi
else
	record "storage conformance" "FAIL (build)"
fi

###########################################################################
# Sanitizers and fuzzing (fuzz/fuzz.mk, included by the Makefile): the unit
# tests of common/ under ASan+UBSan, then every libFuzzer target replays the
# inputs kept in fuzz/regressions/ and its corpus and fuzzes for 10 s (make
# fuzz-short); a crash, leak or sanitizer report fails the step.  Also builds
# fuzz/pgbr-rawclient, the hostile client of t/040_hostile.pl, and hands it
# to the TAP tests (PGBR_RAWCLIENT).  PGBR_SKIP_FUZZ=1 skips the fuzzing.

pgbr_header "sanitizers and fuzzing (make unit-san fuzz-short)"
if make -C "$REPO" unit-san PG_CONFIG="$PG_CONFIG"; then
	record "unit tests (ASan+UBSan)" PASS
else
	record "unit tests (ASan+UBSan)" FAIL
fi
if [ -n "${PGBR_SKIP_FUZZ:-}" ]; then
	record "fuzzing (make fuzz-short)" "SKIP (PGBR_SKIP_FUZZ)"
elif make -C "$REPO" fuzz-short PG_CONFIG="$PG_CONFIG"; then
	record "fuzzing (make fuzz-short)" PASS
else
	record "fuzzing (make fuzz-short)" FAIL
fi
if make -C "$REPO" fuzz/pgbr-rawclient PG_CONFIG="$PG_CONFIG" &&
	install -m 0755 "$REPO/fuzz/pgbr-rawclient" "$SCRATCH/pgbr-rawclient"; then
	TEST_ENV+=("PGBR_RAWCLIENT=$SCRATCH/pgbr-rawclient")
else
	record "build fuzz/pgbr-rawclient" FAIL
fi

###########################################################################
# pg_regress (optional: only if there are SQL tests)

shopt -s nullglob
sql_files=("$SRC"/sql/*.sql)
shopt -u nullglob
if [ "${#sql_files[@]}" -eq 0 ]; then
	record "SQL tests (pg_regress)" "SKIP (no regress/sql/*.sql)"
else
	pgbr_header "SQL tests (pg_regress with a temporary instance)"
	REG_OPTS=(
		"--temp-instance=$SCRATCH/tmp_check_reg"
		"--bindir=$PG_BINDIR"
		"--inputdir=$SRC"
		"--outputdir=$SCRATCH/regress_out"
		"--dbname=contrib_regression"
	)
	# optional extra postgresql.conf lines for the temp instance
	if [ -f "$SRC/pg_regress.conf" ]; then REG_OPTS+=("--temp-config=$SRC/pg_regress.conf"); fi
	if [ -f "$SRC/schedule" ]; then
		REG_OPTS+=("--schedule=$SRC/schedule")
	else
		for f in "${sql_files[@]}"; do
			t=${f##*/}
			REG_OPTS+=("${t%.sql}")
		done
	fi
	pgbr_as_user mkdir -p "$SCRATCH/regress_out"
	if pgbr_as_user env "${TEST_ENV[@]}" "$PG_REGRESS" "${REG_OPTS[@]}"; then
		record "SQL tests (pg_regress)" PASS
	else
		record "SQL tests (pg_regress)" FAIL
		if [ -f "$SCRATCH/regress_out/regression.diffs" ]; then
			pgbr_info "differences: $SCRATCH/regress_out/regression.diffs"
			[ -n "${CI:-}" ] && cat "$SCRATCH/regress_out/regression.diffs"
		fi
		dump_logs "$SCRATCH/regress_out/log"
	fi
fi

###########################################################################
# TAP tests

if pgbr_is_root; then tap_user=$PGBR_TEST_USER; else tap_user=$(id -un); fi
pgbr_header "TAP tests (prove, as $tap_user)"
if [ -n "${PROVE_TESTS:-}" ]; then
	# accept "t/x.pl" as well as "regress/t/x.pl"
	read -r -a tests <<<"$PROVE_TESTS"
	tests=("${tests[@]#regress/}")
else
	mapfile -t tests < <(cd "$SRC" && { compgen -G 't/*.pl' || true; } | sort)
fi
if [ "${#tests[@]}" -eq 0 ]; then
	record "TAP tests (prove)" FAIL
	pgbr_warn "no TAP tests found in $SRC/t"
else
	read -r -a prove_flags <<<"${PROVE_FLAGS:-}"
	if (cd "$SRC" && pgbr_as_user env "${TEST_ENV[@]}" \
		prove -I "$PGXS_PERL" -I perl ${prove_flags[@]+"${prove_flags[@]}"} "${tests[@]}"); then
		record "TAP tests (prove)" PASS
	else
		record "TAP tests (prove)" FAIL
		pgbr_info "TAP logs: $SCRATCH/tmp_check/log"
		dump_logs "$SCRATCH/tmp_check/log"
	fi
fi

exit 0
