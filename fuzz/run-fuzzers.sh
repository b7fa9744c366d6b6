#!/bin/bash
#
# fuzz/run-fuzzers.sh SECONDS TARGET...
#
# For each target (built by fuzz/fuzz.mk as fuzz/build/fuzz_TARGET):
#   1. replays every input kept in fuzz/regressions/TARGET/ -- a crash there
#      fails the run.  Inputs named *.pending are known crashes whose fix has
#      not landed: they are listed, not replayed (FUZZ_PENDING=1 replays them
#      too).  Drop the suffix once the fix is in.
#   2. fuzzes for SECONDS seconds (0: replay only), starting from the seeds
#      in fuzz/corpus/TARGET/ plus the working corpus fuzz/build/corpus/TARGET/
#      (new inputs go there, not into the checkout).  libFuzzer first runs
#      every corpus input, so the corpus is replayed as well.
# A crash, leak, sanitizer report, timeout (> 10 s on one input) or
# out-of-memory (> 2 GB) fails the run; the input is saved under
# fuzz/build/artifacts/TARGET/ and the command to reproduce is printed.
# Prints one summary line per target: executions, coverage, corpus size.
#
# Environment: FUZZ_PENDING=1, FUZZ_EXTRA_ARGS (more libFuzzer flags).

set -uo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 SECONDS TARGET..." >&2
	exit 2
fi
seconds=$1
shift
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

build=fuzz/build
failed=0
declare -a summary=()

# libFuzzer flags per target: longest input worth trying
max_len() {
	case $1 in
		frame) echo 65536 ;;
		body) echo 16384 ;;
		manifest) echo 16384 ;;
		config) echo 4096 ;;
		wal) echo 512 ;;
		zstd) echo 16384 ;;
		*) echo 4096 ;;
	esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in "$@"; do
	bin=$build/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "fuzz_$t: not built ($bin missing)" >&2
		failed=1
		summary+=("fuzz_$t: NOT BUILT")
		continue
	fi
	echo "==> fuzz_$t"
	mkdir -p "$build/corpus/$t" "$build/artifacts/$t" "$build/log"

	# 1. regression inputs
	declare -a inputs=()
	pending=0
	if [ -d "fuzz/regressions/$t" ]; then
		while IFS= read -r -d '' f; do
			case $f in
				*.pending)
					pending=$((pending + 1))
					if [ -n "${FUZZ_PENDING:-}" ]; then inputs+=("$f"); fi
					;;
				*/README*) ;;
				*) inputs+=("$f") ;;
			esac
		done < <(find "fuzz/regressions/$t" -type f -print0 | sort -z)
	fi
	reg="0 regression inputs"
	if [ "${#inputs[@]}" -gt 0 ]; then
		log=$build/log/$t.replay.log
		if "$bin" -runs=1 "${inputs[@]}" >"$log" 2>&1; then
			reg="${#inputs[@]} regression inputs pass"
		else
			echo "fuzz_$t: a regression input fails:" >&2
			tail -n 60 "$log" >&2
			reg="REGRESSION INPUT FAILS (log: $log)"
			failed=1
		fi
	fi
	if [ "$pending" -gt 0 ] && [ -n "${FUZZ_PENDING:-}" ]; then
		reg="$reg (of them $pending *.pending)"
	elif [ "$pending" -gt 0 ]; then
		reg="$reg, $pending pending (*.pending, not replayed)"
	fi

	# 2. corpus replay and fuzzing
	declare -a dirs=("$build/corpus/$t")
	if [ -d "fuzz/corpus/$t" ]; then dirs+=("fuzz/corpus/$t"); fi
	declare -a flags=(
		"-timeout=10" "-rss_limit_mb=2048" "-max_len=$(max_len "$t")"
		"-artifact_prefix=$build/artifacts/$t/" "-print_final_stats=1"
	)
	if [ -f "fuzz/dict/$t.dict" ]; then flags+=("-dict=fuzz/dict/$t.dict"); fi
	if [ "$seconds" -gt 0 ]; then
		flags+=("-max_total_time=$seconds")
	else
		flags+=("-runs=0")
	fi
	# shellcheck disable=SC2206  # word splitting wanted
	if [ -n "${FUZZ_EXTRA_ARGS:-}" ]; then flags+=(${FUZZ_EXTRA_ARGS}); fi
	log=$build/log/$t.log
	if "$bin" "${flags[@]}" "${dirs[@]}" >"$log" 2>&1; then
		status=ok
	else
		status=FAILED
		failed=1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
	line=$(printf 'fuzz_%-9s %-6s %9s execs in %ss, cov %s, ft %s, corpus %s; %s' \
		"$t" "$status" "${execs:-?}" "$seconds" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$reg")
	summary+=("$line")
	echo "$line"
	if [ "$status" = FAILED ]; then
		echo "----- fuzz_$t: last lines of $log -----" >&2
		grep -v '^#[0-9]' "$log" | tail -n 80 >&2
		art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		if [ -n "$art" ]; then
			echo "reproduce: $bin $art" >&2
			echo "keep it:   cp $art fuzz/regressions/$t/NAME.pending  (drop .pending once fixed)" >&2
		fi
	fi
done

echo
echo "==================== fuzz summary ===================="
for l in "${summary[@]}"; do echo "  $l"; done
if [ "$failed" -eq 0 ]; then echo "  RESULT: PASS"; else echo "  RESULT: FAIL"; fi
echo "======================================================"
exit "$failed"
