#!/usr/bin/env bash
# fuzz.sh - the long libFuzzer runs of the harnesses of tests/fuzz/ (one core).
#   scripts/build.sh --fuzz                  # build-fuzz/fuzz/fuzz_{frontend,run,config,data}
#   bench/fuzz.sh                            # all four, default budgets
#   bench/fuzz.sh --runs 100000 frontend     # N executions each
#   bench/fuzz.sh --time 300 run config      # S seconds each
# Default budgets: 10^6 executions for frontend, config and data; 600 s for
# run (each of its executions JIT-compiles).  The harnesses run one after
# the other, one process each (a single core), with the dictionary
# tests/fuzz/dam.dict, from the corpus build-fuzz/corpus/<harness>/ (seeded
# by tests/fuzz/seeds.sh; the new entries libFuzzer finds stay there for the
# next run).  Crash, leak, timeout and out-of-memory reproducers go to
# build-fuzz/artifacts/<harness>/, logs to build-fuzz/logs/<harness>.log.
# Prints per harness: executions, wall time, exec/s, crashes, the coverage
# libFuzzer reports at the end (cov: edges, ft: features) and the corpus size.
# Exit status 1 if any harness stopped on a crash.  $DAM_FUZZ_BUILD picks
# another build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DAM_FUZZ_BUILD:-build-fuzz}
mode=default; budget=
harnesses=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs|--time) mode=${1#--}; budget=${2:?"$1 needs a number"}; shift 2 ;;
    frontend|run|config|data) harnesses+=("$1"); shift ;;
    *) echo "usage: bench/fuzz.sh [--runs N | --time SECONDS] [frontend|run|config|data ...]" >&2
       exit 2 ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=(frontend config data run)
for h in "${harnesses[@]}"; do
  [ -x "$B/fuzz/fuzz_$h" ] || { echo "bench/fuzz.sh: no $B/fuzz/fuzz_$h (scripts/build.sh --fuzz)" >&2; exit 1; }
done
tests/fuzz/seeds.sh "$B/corpus" >/dev/null
mkdir -p "$B/logs"

# Largest input per harness, and extra flags: see tests/libfuzz.t for why
# fuzz_data's malloc limit is raised (tests/fuzz/pending/data/).
max_len() { case $1 in frontend) echo 8192 ;; run|config) echo 4096 ;; data) echo 8192 ;; esac; }
extra() { case $1 in data) echo "-malloc_limit_mb=4352" ;; esac; }

status=0
printf '%-9s %12s %9s %9s %8s %7s %7s %7s\n' harness executions seconds exec/s crashes cov ft corpus
for h in "${harnesses[@]}"; do
  case $mode in
    runs) lim=(-runs="$budget") ;;
    time) lim=(-max_total_time="$budget") ;;
    *) if [ "$h" = run ]; then lim=(-max_total_time=600); else lim=(-runs=1000000); fi ;;
  esac
  art=$B/artifacts/$h/
  mkdir -p "$art"
  before=$(ls "$art" | wc -l)
  log=$B/logs/$h.log
  t0=$(date +%s.%N)
  rc=0
  "$B/fuzz/fuzz_$h" "${lim[@]}" -dict=tests/fuzz/dam.dict -max_len="$(max_len "$h")" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$art" \
    $(extra "$h") "$B/corpus/$h" >"$log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | grep ' cov: ' | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$last")
  crashes=$(( $(ls "$art" | wc -l) - before ))
  printf '%-9s %12s %9.0f %9s %8s %7s %7s %7s\n' "$h" "${execs:-?}" "$(awk "BEGIN { print $t1 - $t0 }")" \
    "${rate:-?}" "$crashes" "${cov:-?}" "${ft:-?}" "$(ls "$B/corpus/$h" | wc -l)"
  if [ $rc -ne 0 ] || [ "$crashes" -gt 0 ]; then
    status=1
    grep -E '^==[0-9]+==|ERROR:|SUMMARY:|Test unit written' "$log" | head -5 | sed 's/^/    /'
  fi
done
exit $status
