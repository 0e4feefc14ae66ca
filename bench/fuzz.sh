#!/usr/bin/env bash
# fuzz.sh - the long libFuzzer runs of the harnesses of tests/fuzz/ (one core).
#   scripts/build.sh --fuzz                  # build-fuzz/fuzz/fuzz_{frontend,run,config,data,image}
#   bench/fuzz.sh                            # all four, default budgets
#   bench/fuzz.sh --runs 100000 frontend     # N executions each
#   bench/fuzz.sh --time 300 run config      # S seconds each
#   bench/fuzz.sh --keep-going run           # restart after each crash until the budget is spent
# Default budgets: 10^6 executions for frontend, config, data and image; 600 s for
# run (each of its executions JIT-compiles).  The harnesses run one after
# the other, one process each (a single core), with the dictionary
# tests/fuzz/dam.dict, from the corpus build-fuzz/corpus/<harness>/ (seeded
# by tests/fuzz/seeds.sh; the new entries libFuzzer finds stay there for the
# next run).  Crash, leak, timeout and out-of-memory reproducers go to
# build-fuzz/artifacts/<harness>/, logs to build-fuzz/logs/<harness>.log.
# libFuzzer stops at the first crash; with --keep-going the harness is
# restarted (at most 50 times) and the executions add up.
# Prints per harness: executions, wall time, exec/s, crashes, the coverage
# libFuzzer reports at the end (cov: edges, ft: features) and the corpus size.
# Exit status 1 if any harness found a crash.  $DAM_FUZZ_BUILD picks
# another build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DAM_FUZZ_BUILD:-build-fuzz}
mode=default; budget=; keep=0
harnesses=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs|--time) mode=${1#--}; budget=${2:?"$1 needs a number"}; shift 2 ;;
    --keep-going) keep=1; shift ;;
    frontend|run|config|data|image) harnesses+=("$1"); shift ;;
    *) echo "usage: bench/fuzz.sh [--runs N | --time SECONDS] [--keep-going] [frontend|run|config|data|image ...]" >&2
       exit 2 ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=(frontend config data image run)
for h in "${harnesses[@]}"; do
  [ -x "$B/fuzz/fuzz_$h" ] || { echo "bench/fuzz.sh: no $B/fuzz/fuzz_$h (scripts/build.sh --fuzz)" >&2; exit 1; }
done
tests/fuzz/seeds.sh "$B/corpus" >/dev/null
mkdir -p "$B/logs"

# Largest input per harness, and extra flags: fuzz_run focuses on the inputs
# that reach the JIT (most mutants fail in the front end, which fuzz_frontend
# covers).
max_len() { case $1 in frontend) echo 8192 ;; run|config) echo 4096 ;; data|image) echo 8192 ;; esac; }
extra() {
  case $1 in run) echo "-focus_function=jit_compile" ;; esac
}

# One libFuzzer process on harness $1 with budget flag $2; appends to the log.
fuzz_once() {
  local part=$log.part rc=0
  "$B/fuzz/fuzz_$1" "$2" -dict=tests/fuzz/dam.dict -max_len="$(max_len "$1")" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$art" \
    $(extra "$1") "$B/corpus/$1" >"$part" 2>&1 || rc=$?
  cat "$part" >>"$log"
  return $rc
}

status=0
printf '%-9s %12s %9s %9s %8s %7s %7s %7s\n' harness executions seconds exec/s crashes cov ft corpus
for h in "${harnesses[@]}"; do
  kind=$mode; amount=$budget
  if [ "$kind" = default ]; then
    if [ "$h" = run ]; then kind=time; amount=600; else kind=runs; amount=1000000; fi
  fi
  art=$B/artifacts/$h/
  mkdir -p "$art"
  before=$(ls "$art" | wc -l)
  log=$B/logs/$h.log
  : >"$log"
  t0=$(date +%s)
  execs=0; starts=0; rc=0
  while [ $starts -lt 50 ]; do
    if [ "$kind" = runs ]; then left=$((amount - execs)); flag=-runs=$left
    else left=$((amount - ($(date +%s) - t0))); flag=-max_total_time=$left; fi
    [ $left -gt 0 ] || break
    starts=$((starts + 1))
    rc=0
    fuzz_once "$h" "$flag" || rc=$?
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log.part")
    execs=$((execs + ${n:-0}))
    [ $rc -ne 0 ] && [ $keep -eq 1 ] || break
  done
  secs=$(( $(date +%s) - t0 ))
  last=$(grep -aE '^#[0-9]+' "$log.part" | grep -a ' cov: ' | tail -1 || true)
  rm -f "$log.part"
  cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$last")
  crashes=$(( $(ls "$art" | wc -l) - before ))
  printf '%-9s %12s %9s %9s %8s %7s %7s %7s\n' "$h" "$execs" "$secs" "$((execs / (secs ? secs : 1)))" \
    "$crashes" "${cov:-?}" "${ft:-?}" "$(ls "$B/corpus/$h" | wc -l)"
  if [ $rc -ne 0 ] || [ "$crashes" -gt 0 ]; then
    status=1
    grep -aE '^==[0-9]+==.*ERROR|SUMMARY:|Test unit written' "$log" | sed 's/^/    /'
  fi
done
exit $status
