#!/usr/bin/env bash
# main_job.t - the main job (README command 1, without setup and build) runs
# clean against this build: exit 0, the accuracies it prints are the known
# ones, and no sanitizer report appears (under the ASan/UBSan build,
# scripts/test.sh runs this with detect_leaks=1).
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
DAMC=$DAMC OUT=$tmp/out scripts/main_job.sh >"$tmp/log" 2>"$tmp/err"
st=$?
ok $st "scripts/main_job.sh exits 0 (got $st)"
[ $st = 0 ] || tail -20 "$tmp/err" | sed 's/^/#   /'
! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$tmp/err" "$tmp/log"
ok $? "no sanitizer report"
grep -E 'Sanitizer|runtime error' "$tmp/err" | head -5 | sed 's/^/#   /'
grep -q '^hamming74: 112/112 corrupted words corrected' "$tmp/log"
ok $? "hamming74: 112/112"
if [ -f ../shared/data/published/analog-denseam-parity/model_best.npz ]; then
  grep -q '^parity_et: 52/52 validation strings correct' "$tmp/log"
  ok $? "parity_et: 52/52"
  grep -qE '^  latency +[0-9.e+-]+ s' "$tmp/log"
  ok $? "parity hardware report printed"
else
  n=$((n+1)); echo "ok $n # SKIP no published checkpoint"
  n=$((n+1)); echo "ok $n # SKIP no published checkpoint"
fi
grep -q '^verify: 4/4 rows within tolerance' "$tmp/log"
ok $? "XOR netlist: ngspice agrees with the JIT on 4/4 inputs"
echo "1..$n"
