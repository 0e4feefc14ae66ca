#!/usr/bin/env bash
# libfuzz.t - short coverage-guided runs of the libFuzzer harnesses (tests/fuzz/).
#
# Needs the fuzz build (scripts/build.sh --fuzz): $DAM_FUZZ_BUILD, else
# ./build-fuzz; without it the test is skipped.  Each harness (frontend, run,
# config, data, image) fuzzes for LIBFUZZ_TIME seconds (default 12; seed
# LIBFUZZ_SEED, default 1) from a fresh copy of the seed corpus
# (tests/fuzz/seeds.sh) with the dictionary tests/fuzz/dam.dict, and must
# exit 0 with no crash, leak, sanitizer or timeout report and no artifact;
# the number of executions and the coverage are printed as diagnostics.
# Then every reproducer under tests/fuzz/regress/<harness>/ (crashes found
# by fuzzing and since fixed) runs through its harness once and must pass.
# Reproducers of crashes not fixed yet wait in tests/fuzz/pending/.
set -u
B=${DAM_FUZZ_BUILD:-$PWD/build-fuzz}
T=${LIBFUZZ_TIME:-12}
SEED=${LIBFUZZ_SEED:-1}
harnesses="frontend run config data image"
for h in $harnesses; do
  if [ ! -x "$B/fuzz/fuzz_$h" ]; then
    echo "1..0 # SKIP no fuzz build ($B/fuzz/fuzz_$h; scripts/build.sh --fuzz)"
    exit 0
  fi
done
shopt -s nullglob
regress=()
for h in $harnesses; do
  for f in tests/fuzz/regress/$h/*; do regress+=("$h:$f"); done
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "1..$((5 + ${#regress[@]}))"
if ! tests/fuzz/seeds.sh "$tmp/corpus" >"$tmp/seeds.log" 2>&1; then
  sed 's/^/# /' "$tmp/seeds.log"
fi
export UBSAN_OPTIONS=print_stacktrace=1
# Per-harness extra flags.  fuzz_run: focus on the inputs that reach the
# JIT.
extra() {
  case $1 in run) echo "-focus_function=jit_compile" ;; esac
}
bad_report='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|==[0-9]+==ERROR|SUMMARY: |Test unit written|ALARM: working on the last Unit'

n=0
for h in $harnesses; do
  n=$((n + 1))
  mkdir -p "$tmp/art/$h"
  log=$tmp/$h.log
  "$B/fuzz/fuzz_$h" -dict=tests/fuzz/dam.dict -max_total_time="$T" -seed="$SEED" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$tmp/art/$h/" \
    $(extra "$h") "$tmp/corpus/$h" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -aE '^#[0-9]+' "$log" | tail -1 | sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1, ft \2/p')
  arts=$(ls "$tmp/art/$h" | wc -l)
  if [ $rc -eq 0 ] && [ "${execs:-0}" -gt 0 ] && [ "$arts" -eq 0 ] && ! grep -aEq "$bad_report" "$log"; then
    echo "ok $n - fuzz_$h: ${execs} executions in ${T} s, no crash or leak"
  else
    echo "not ok $n - fuzz_$h: exit status $rc, ${execs:-no} executions, $arts artifacts"
    grep -aE -A40 "$bad_report" "$log" | head -60 | sed 's/^/#   ! /'
    for a in "$tmp/art/$h"/*; do
      echo "#   reproducer $(basename "$a") (base64): $(head -c 600 "$a" | base64 -w0)"
    done
  fi
  echo "# fuzz_$h: ${execs:-0} executions, ${rate:-0} exec/s, ${cov:-no coverage line}"
done

pending=(tests/fuzz/pending/*/*)
[ ${#pending[@]} -eq 0 ] || echo "# ${#pending[@]} reproducers of open bugs wait in tests/fuzz/pending/ (not run)"
for r in "${regress[@]}"; do
  n=$((n + 1))
  h=${r%%:*}; f=${r#*:}
  log=$tmp/regress.log
  "$B/fuzz/fuzz_$h" -runs=1 -rss_limit_mb=2048 -timeout=10 "$f" >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ] && ! grep -aEq "$bad_report" "$log"; then
    echo "ok $n - regression $f (fuzz_$h)"
  else
    echo "not ok $n - regression $f (fuzz_$h): exit status $rc"
    grep -aE -A30 "$bad_report" "$log" | head -40 | sed 's/^/#   ! /'
  fi
done
